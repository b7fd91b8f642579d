//! The `EventLog` contract, written once and run against every backend (`embedded.rs`
//! against the on-disk log, `kafka.rs` against a Kafka-protocol broker). A backend passes
//! only if it behaves exactly like the others: placement, order, offsets, headers,
//! timestamps, commits and resumption.
//!
//! Every test takes a log and a fresh name prefix, so runs on a shared broker never see
//! each other's topics or groups.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sightline_log::{
    Delivered, EventLog, LogError, Record, TopicConfig, next_positions, partition_for,
};

/// How long a test waits for records it knows are there.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn record(key: &str, i: usize) -> Record {
    Record::new(
        Some(key),
        format!("{{\"i\":{i}}}").into_bytes(),
        1_700_000_000_000 + i as i64,
    )
    .with_header("correlation_id", format!("c{i}"))
}

/// Reads until `n` records arrived (or fails after [`PATIENCE`]).
pub async fn read_n(sub: &mut Box<dyn sightline_log::Subscription>, n: usize) -> Vec<Delivered> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while out.len() < n {
        let batch = tokio::time::timeout_at(deadline, sub.next_batch(n - out.len()))
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} records arrived", out.len()))
            .expect("next_batch");
        out.extend(batch);
    }
    out
}

/// Asserts that nothing more arrives within a short wait.
pub async fn assert_quiet(sub: &mut Box<dyn sightline_log::Subscription>) {
    if let Ok(batch) = tokio::time::timeout(Duration::from_millis(500), sub.next_batch(10)).await {
        panic!("unexpected records: {:?}", batch.expect("next_batch"));
    }
}

macro_rules! log_conformance_tests {
    ($factory:expr) => {
        log_conformance_tests!(@each $factory;
            records_round_trip_with_keys_headers_and_timestamps,
            keys_choose_partitions_like_kafka_and_keep_their_order,
            unkeyed_records_spread_over_partitions,
            commits_resume_a_group_where_it_stopped,
            groups_read_independently,
            stats_count_what_was_appended,
            creating_a_topic_twice_keeps_its_partitions,
            unknown_topics_are_refused,
            next_batch_is_cancel_safe,
        );
    };
    (@each $factory:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let (log, prefix, _guard) = ($factory)().await;
                $crate::conformance::$test(&*log, &prefix).await;
            }
        )*
    };
}

pub async fn records_round_trip_with_keys_headers_and_timestamps(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-rt");
    log.create_topic(&topic, TopicConfig::with_partitions(2))
        .await
        .expect("create");
    let records: Vec<Record> = (0..20).map(|i| record(&format!("k{}", i % 3), i)).collect();
    let offsets = log.append(&topic, records.clone()).await.expect("append");
    assert_eq!(offsets.len(), records.len());

    let mut sub = log
        .subscribe(&format!("{p}-g"), &[&topic])
        .await
        .expect("subscribe");
    let got = read_n(&mut sub, records.len()).await;
    let by_position: HashMap<(u32, u64), &Delivered> =
        got.iter().map(|d| ((d.partition, d.offset), d)).collect();
    for (record, offset) in records.iter().zip(&offsets) {
        let d = by_position
            .get(&(offset.partition, offset.offset))
            .unwrap_or_else(|| panic!("no record at {offset:?}"));
        assert_eq!(&d.record, record, "record at {offset:?}");
        assert_eq!(&*d.topic, topic);
    }
    assert_quiet(&mut sub).await;
}

pub async fn keys_choose_partitions_like_kafka_and_keep_their_order(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-order");
    log.create_topic(&topic, TopicConfig::with_partitions(3))
        .await
        .expect("create");
    let keys: Vec<String> = (0..7).map(|k| format!("service-{k}")).collect();
    // Several appends of mixed keys, as concurrent HTTP batches would produce.
    let mut sent = 0;
    for chunk in 0..6 {
        let batch: Vec<Record> = (0..50)
            .map(|j| {
                let i = chunk * 50 + j;
                record(&keys[i % keys.len()], i)
            })
            .collect();
        sent += batch.len();
        log.append(&topic, batch).await.expect("append");
    }
    let mut sub = log
        .subscribe(&format!("{p}-g"), &[&topic])
        .await
        .expect("subscribe");
    let got = read_n(&mut sub, sent).await;
    let mut last_per_key: HashMap<Vec<u8>, (u64, i64)> = HashMap::new();
    for d in &got {
        let key = d.record.key.clone().expect("keyed");
        assert_eq!(d.partition, partition_for(&key, 3), "murmur2 placement");
        if let Some((offset, ts)) = last_per_key.get(&key) {
            assert!(d.offset > *offset, "offsets grow per key");
            assert!(d.record.timestamp > *ts, "per-key order kept");
        }
        last_per_key.insert(key, (d.offset, d.record.timestamp));
    }
    assert_eq!(last_per_key.len(), keys.len());
}

pub async fn unkeyed_records_spread_over_partitions(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-unkeyed");
    log.create_topic(&topic, TopicConfig::with_partitions(4))
        .await
        .expect("create");
    let records: Vec<Record> = (0..40)
        .map(|i| Record::new(None, vec![b'x'; 8], i))
        .collect();
    let offsets = log.append(&topic, records).await.expect("append");
    let mut per_partition: BTreeMap<u32, usize> = BTreeMap::new();
    for o in &offsets {
        *per_partition.entry(o.partition).or_default() += 1;
    }
    assert_eq!(
        per_partition.len(),
        4,
        "every partition used: {per_partition:?}"
    );
}

pub async fn commits_resume_a_group_where_it_stopped(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-resume");
    let group = format!("{p}-g");
    log.create_topic(&topic, TopicConfig::with_partitions(2))
        .await
        .expect("create");
    let records: Vec<Record> = (0..100)
        .map(|i| record(&format!("k{}", i % 5), i))
        .collect();
    log.append(&topic, records).await.expect("append");
    assert_eq!(
        log.committed(&group, &topic).await.expect("committed"),
        vec![None, None],
        "nothing committed yet"
    );

    let mut first = Vec::new();
    {
        let mut sub = log.subscribe(&group, &[&topic]).await.expect("subscribe");
        first.extend(read_n(&mut sub, 40).await);
        // Commit only what was "processed": the first 40 delivered.
        sub.commit(&next_positions(&first)).await.expect("commit");
    }
    let committed = log.committed(&group, &topic).await.expect("committed");
    for pos in next_positions(&first) {
        assert_eq!(committed[pos.partition as usize], Some(pos.offset));
    }

    // A new member resumes exactly after the commit: each record once, none skipped.
    let mut sub = log.subscribe(&group, &[&topic]).await.expect("resubscribe");
    let rest = read_n(&mut sub, 100 - first.len()).await;
    let mut seen: Vec<(u32, u64)> = first
        .iter()
        .chain(&rest)
        .map(|d| (d.partition, d.offset))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len(),
        100,
        "every record exactly once across the restart"
    );
    assert_quiet(&mut sub).await;
}

pub async fn groups_read_independently(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-groups");
    log.create_topic(&topic, TopicConfig::with_partitions(2))
        .await
        .expect("create");
    log.append(&topic, (0..10).map(|i| record("k", i)).collect())
        .await
        .expect("append");
    let mut a = log
        .subscribe(&format!("{p}-a"), &[&topic])
        .await
        .expect("a");
    let got = read_n(&mut a, 10).await;
    a.commit(&next_positions(&got)).await.expect("commit a");
    let mut b = log
        .subscribe(&format!("{p}-b"), &[&topic])
        .await
        .expect("b");
    assert_eq!(
        read_n(&mut b, 10).await.len(),
        10,
        "b starts from the beginning"
    );
}

pub async fn stats_count_what_was_appended(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-stats");
    log.create_topic(&topic, TopicConfig::with_partitions(3))
        .await
        .expect("create");
    let offsets = log
        .append(
            &topic,
            (0..30).map(|i| record(&format!("k{i}"), i)).collect(),
        )
        .await
        .expect("append");
    let stats = log.stats().await.expect("stats");
    let t = stats
        .iter()
        .find(|t| t.name == topic)
        .expect("topic in stats");
    assert_eq!(t.partitions.len(), 3);
    assert_eq!(t.config.partitions, 3);
    let mut expected = [0u64; 3];
    for o in &offsets {
        expected[o.partition as usize] = expected[o.partition as usize].max(o.offset + 1);
    }
    for part in &t.partitions {
        assert_eq!(part.end_offset, expected[part.partition as usize]);
        assert_eq!(part.start_offset, 0);
    }
}

pub async fn creating_a_topic_twice_keeps_its_partitions(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-twice");
    log.create_topic(&topic, TopicConfig::with_partitions(2))
        .await
        .expect("create");
    let again = TopicConfig {
        partitions: 5,
        retention_ms: Some(3_600_000),
        retention_bytes: None,
    };
    log.create_topic(&topic, again).await.expect("create again");
    let stats = log.stats().await.expect("stats");
    let t = stats.iter().find(|t| t.name == topic).expect("topic");
    assert_eq!(t.partitions.len(), 2, "partition count is fixed");
}

pub async fn unknown_topics_are_refused(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-never-created");
    let err = log
        .append(&topic, vec![record("k", 0)])
        .await
        .expect_err("append to an unknown topic");
    assert!(
        matches!(err, LogError::UnknownTopic(ref t) if *t == topic),
        "{err}"
    );
    let err = log
        .subscribe(&format!("{p}-g"), &[&topic])
        .await
        .expect_err("subscribe to an unknown topic");
    assert!(matches!(err, LogError::UnknownTopic(_)), "{err}");
}

pub async fn next_batch_is_cancel_safe(log: &dyn EventLog, p: &str) {
    let topic = format!("{p}-cancel");
    log.create_topic(&topic, TopicConfig::with_partitions(1))
        .await
        .expect("create");
    let mut sub = log
        .subscribe(&format!("{p}-g"), &[&topic])
        .await
        .expect("subscribe");
    // Abandon a few waits while nothing is there …
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(200), sub.next_batch(10))
                .await
                .is_err()
        );
    }
    // … then everything appended afterwards still arrives, once.
    log.append(&topic, (0..5).map(|i| record("k", i)).collect())
        .await
        .expect("append");
    let got = read_n(&mut sub, 5).await;
    let offsets: Vec<u64> = got.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    assert_quiet(&mut sub).await;
}
