//! Behaviour of the embedded log through its public contract: durability across reopen,
//! ordering, consumer groups, segment rolling, retention, and recovery from damaged tails.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod conformance;

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use sightline_log::{EmbeddedLog, EventLog, FsyncPolicy, LogConfig, Position, Record, TopicConfig};

/// A fresh log in a temporary directory, for the shared contract suite.
async fn embedded_backend() -> (std::sync::Arc<dyn EventLog>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
    (std::sync::Arc::new(log), "t".to_owned(), dir)
}

mod contract {
    use super::*;
    log_conformance_tests!(embedded_backend);
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        ..LogConfig::default()
    }
}

fn rec(key: &str, i: usize) -> Record {
    Record::new(
        Some(key),
        format!("{{\"i\":{i}}}").into_bytes(),
        1_700_000_000_000 + i as i64,
    )
    .with_header("correlation_id", format!("c{i}"))
}

/// Reads everything up to the current end offsets with a fresh group.
async fn read_all(log: &EmbeddedLog, topic: &str, group: &str) -> Vec<(u32, u64, Record)> {
    let total: u64 = log
        .stats()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.name == topic)
        .flat_map(|t| t.partitions)
        .map(|p| p.end_offset - p.start_offset)
        .sum();
    let mut sub = log.subscribe(group, &[topic]).await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        for d in sub.next_batch(1000).await.unwrap() {
            out.push((d.partition, d.offset, d.record));
        }
    }
    out
}

#[tokio::test]
async fn appended_records_survive_reopen_in_order_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
        log.create_topic("t", TopicConfig::with_partitions(3))
            .await
            .unwrap();
        for i in 0..500 {
            let key = format!("svc-{}", i % 7);
            let off = log.append("t", vec![rec(&key, i)]).await.unwrap();
            assert_eq!(off.len(), 1);
        }
    }
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    let all = read_all(&log, "t", "g").await;
    assert_eq!(all.len(), 500);
    // Within a partition offsets are dense and records keep their append order.
    let mut by_partition: HashMap<u32, Vec<(u64, usize)>> = HashMap::new();
    for (p, off, r) in &all {
        let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
        by_partition
            .entry(*p)
            .or_default()
            .push((*off, v["i"].as_u64().unwrap() as usize));
    }
    for list in by_partition.values() {
        for (k, w) in list.windows(2).enumerate() {
            assert_eq!(w[1].0, w[0].0 + 1, "dense offsets at {k}");
            assert!(w[1].1 > w[0].1, "append order kept");
        }
    }
    // Same key → same partition.
    let mut key_partition: HashMap<Vec<u8>, u32> = HashMap::new();
    for (p, _, r) in &all {
        assert_eq!(
            *key_partition.entry(r.key.clone().unwrap()).or_insert(*p),
            *p
        );
        assert!(r.header("correlation_id").is_some());
    }
    // Several segments were rolled and all are readable.
    let files = std::fs::read_dir(dir.path().join("topics/t/0"))
        .unwrap()
        .count();
    assert!(files > 2, "expected rolled segments, found {files}");
}

#[tokio::test]
async fn concurrent_appends_get_unique_dense_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", TopicConfig::with_partitions(2))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for b in 0..25 {
                let batch = (0..20)
                    .map(|i| rec(&format!("k{w}-{i}"), w * 10_000 + b * 100 + i))
                    .collect();
                offsets.extend(log.append("t", batch).await.unwrap());
            }
            offsets
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        for o in t.await.unwrap() {
            assert!(seen.insert(o), "offset {o:?} handed out twice");
        }
    }
    assert_eq!(seen.len(), 8 * 25 * 20);
    for p in 0..2 {
        let mut offs: Vec<u64> = seen
            .iter()
            .filter(|o| o.partition == p)
            .map(|o| o.offset)
            .collect();
        offs.sort_unstable();
        assert_eq!(offs, (0..offs.len() as u64).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn committed_offsets_resume_a_group_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .await
            .unwrap();
        log.append("t", (0..10).map(|i| rec("k", i)).collect())
            .await
            .unwrap();
        let mut sub = log.subscribe("g", &["t"]).await.unwrap();
        let batch = sub.next_batch(4).await.unwrap();
        assert_eq!(batch.len(), 4);
        sub.commit(&[batch[3].next_position()]).await.unwrap();
        assert_eq!(log.committed("g", "t").await.unwrap(), vec![Some(4)]);
    }
    let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
    let mut sub = log.subscribe("g", &["t"]).await.unwrap();
    let batch = sub.next_batch(100).await.unwrap();
    assert_eq!(
        batch.iter().map(|d| d.offset).collect::<Vec<_>>(),
        (4..10).collect::<Vec<_>>()
    );
    // A seek replays from anywhere without committing.
    sub.seek(&Position {
        topic: "t".into(),
        partition: 0,
        offset: 1,
    })
    .unwrap();
    assert_eq!(sub.next_batch(1).await.unwrap()[0].offset, 1);
    assert_eq!(log.committed("g", "t").await.unwrap(), vec![Some(4)]);
}

#[tokio::test]
async fn a_waiting_consumer_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", TopicConfig::with_partitions(4))
        .await
        .unwrap();
    let mut sub = log.subscribe("g", &["t"]).await.unwrap();
    let waiter = tokio::spawn(async move { sub.next_batch(10).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    log.append("t", vec![rec("k", 1)]).await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn retention_by_size_and_age_drops_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), small_segments()).unwrap();
    let config = TopicConfig {
        partitions: 1,
        retention_ms: None,
        retention_bytes: Some(10_000),
    };
    log.create_topic("t", config).await.unwrap();
    for i in 0..400 {
        log.append("t", vec![rec("k", i)]).await.unwrap();
    }
    let before = log.stats().await.unwrap()[0].partitions[0].clone();
    assert!(log.enforce_retention(i64::MAX / 2).unwrap() > 0);
    let after = log.stats().await.unwrap()[0].partitions[0].clone();
    assert!(after.size_bytes <= 10_000 + 4096, "{after:?}");
    assert!(after.start_offset > 0);
    assert_eq!(after.end_offset, before.end_offset);
    // A group behind the retained start skips to it.
    let all = read_all(&log, "t", "late").await;
    assert_eq!(all.first().unwrap().1, after.start_offset);

    // Age: every sealed segment is older than "now"; only the active one stays.
    log.create_topic(
        "t",
        TopicConfig {
            partitions: 1,
            retention_ms: Some(1),
            retention_bytes: None,
        },
    )
    .await
    .unwrap();
    log.enforce_retention(1_800_000_000_000).unwrap();
    let segments = std::fs::read_dir(dir.path().join("topics/t/0"))
        .unwrap()
        .count();
    assert_eq!(segments, 1);
}

#[tokio::test]
async fn interval_fsync_policy_acknowledges_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        fsync: FsyncPolicy::Interval { interval_ms: 10 },
        ..LogConfig::default()
    };
    {
        let log = EmbeddedLog::open(dir.path(), config.clone()).unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .await
            .unwrap();
        log.append("t", (0..50).map(|i| rec("k", i)).collect())
            .await
            .unwrap();
    }
    let log = EmbeddedLog::open(dir.path(), config).unwrap();
    assert_eq!(read_all(&log, "t", "g").await.len(), 50);
}

#[tokio::test]
async fn rejects_bad_names_unknown_topics_and_oversized_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(
        dir.path(),
        LogConfig {
            max_record_bytes: 100,
            ..LogConfig::default()
        },
    )
    .unwrap();
    assert!(
        log.create_topic("../escape", TopicConfig::with_partitions(1))
            .await
            .is_err()
    );
    assert!(log.append("missing", vec![rec("k", 1)]).await.is_err());
    log.create_topic("t", TopicConfig::with_partitions(1))
        .await
        .unwrap();
    let big = Record::new(None, vec![b'x'; 200], 0);
    assert!(matches!(
        log.append("t", vec![big]).await,
        Err(sightline_log::LogError::RecordTooLarge { .. })
    ));
}

// ---- recovery property -------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<usize>),
    Reopen,
    /// Cut the active segment to `fraction` of its length.
    Truncate(f64),
    /// Flip one byte at `fraction` of the active segment.
    Corrupt(f64),
    /// Append garbage to the active segment.
    Garbage(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(0usize..300, 1..8).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        1 => (0.0f64..1.0).prop_map(Op::Truncate),
        1 => (0.0f64..1.0).prop_map(Op::Corrupt),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Op::Garbage),
    ]
}

fn frame_size(r: &Record) -> u64 {
    let headers: usize = r
        .headers
        .iter()
        .map(|(k, v)| 2 + k.len() + 4 + v.len())
        .sum();
    (8 + 8 + 8 + 4 + r.key.as_ref().map_or(0, Vec::len) + 2 + headers + 4 + r.value.len()) as u64
}

fn active_segment(dir: &Path) -> (u64, std::path::PathBuf) {
    let part = dir.join("topics/t/0");
    let mut files: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let last = files.pop().unwrap();
    let base = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    (base, last)
}

/// Records of the active segment that survive damage at byte `at`: those ending at or before it.
fn surviving(expected: &[Record], base: u64, at: u64) -> usize {
    let mut end = 0;
    let mut n = base as usize;
    for r in &expected[base as usize..] {
        end += frame_size(r);
        if end > at {
            break;
        }
        n += 1;
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reopen_returns_exactly_the_valid_prefix(ops in proptest::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig { segment_bytes: 1024, ..LogConfig::default() };
            let mut log = EmbeddedLog::open(dir.path(), config.clone()).unwrap();
            log.create_topic("t", TopicConfig::with_partitions(1)).await.unwrap();
            let mut expected: Vec<Record> = Vec::new();
            let mut counter = 0;
            for op in ops {
                match op {
                    Op::Append(sizes) => {
                        let batch: Vec<Record> = sizes.iter().map(|&s| {
                            counter += 1;
                            Record::new(Some("k"), vec![b'a' + (counter % 26) as u8; s], counter as i64)
                        }).collect();
                        let offs = log.append("t", batch.clone()).await.unwrap();
                        prop_assert_eq!(offs[0].offset as usize, expected.len());
                        expected.extend(batch);
                    }
                    Op::Reopen => {
                        drop(log);
                        log = EmbeddedLog::open(dir.path(), config.clone()).unwrap();
                    }
                    Op::Truncate(f) | Op::Corrupt(f) => {
                        drop(log);
                        let (base, path) = active_segment(dir.path());
                        let len = std::fs::metadata(&path).unwrap().len();
                        if len > 0 {
                            let at = ((len as f64) * f) as u64;
                            if matches!(op, Op::Truncate(_)) {
                                std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(at).unwrap();
                            } else {
                                let mut bytes = std::fs::read(&path).unwrap();
                                bytes[at as usize] ^= 0x5a;
                                std::fs::write(&path, bytes).unwrap();
                            }
                            expected.truncate(surviving(&expected, base, at));
                        }
                        log = EmbeddedLog::open(dir.path(), config.clone()).unwrap();
                    }
                    Op::Garbage(bytes) => {
                        drop(log);
                        let (_, path) = active_segment(dir.path());
                        use std::io::Write;
                        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&bytes).unwrap();
                        log = EmbeddedLog::open(dir.path(), config.clone()).unwrap();
                    }
                }
            }
            let got = read_all(&log, "t", &format!("check-{counter}")).await;
            prop_assert_eq!(got.len(), expected.len());
            for ((_, off, r), (i, e)) in got.iter().zip(expected.iter().enumerate()) {
                prop_assert_eq!(*off, i as u64);
                prop_assert_eq!(r, e);
            }
            Ok(())
        })?;
    }
}
