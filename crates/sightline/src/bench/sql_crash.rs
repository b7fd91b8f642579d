//! Crash equivalence of continuous SQL: a node runs several windowed queries (tumbling,
//! hopping, session, unwindowed) over a deterministic stream while it is killed with
//! SIGKILL at random points and restarted; at the end every table must equal what the
//! same queries produce in one uninterrupted in-process run, with no row stored twice.
//!
//! The stream is posted to a user topic in `kills + 1` chunks, each acknowledged (durable)
//! before the node is killed, so the input is exactly known; the kills land while the
//! queries are still working through the chunk (the report says how many found a backlog).
//! Event times rise with the record number, and a final record per partition moves every
//! watermark past the last real window, so which windows close does not depend on how the
//! node's batches happened to fall.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use sightline_stream::sql::Catalog;

use super::node::NodeProcess;
use super::{emit, http};

/// The source topic.
const TOPIC: &str = "crash.events";
const BASE_MS: i64 = 1_700_000_000_000;
/// Event-time step between records.
const STEP_MS: i64 = 10;
/// Keys of the closing records: enough that every partition gets some.
const CLOSERS: usize = 64;

const SQL: &str = "
CREATE STREAM crash_src (k VARCHAR, v DOUBLE, ts BIGINT)
  WITH (KAFKA_TOPIC='crash.events', VALUE_FORMAT='JSON', TIMESTAMP='ts');
CREATE TABLE crash_tumbling AS
  SELECT k, COUNT(*) AS n, SUM(v) AS total, AVG(v) AS mean, P99(v) AS p99
  FROM crash_src WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT CHANGES;
CREATE TABLE crash_hopping AS
  SELECT k, COUNT(*) AS n, MAX(v) AS top, MIN(v) AS bottom
  FROM crash_src WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 30 SECONDS) GROUP BY k EMIT FINAL;
CREATE TABLE crash_sessions AS
  SELECT k, COUNT(*) AS n, SUM(v) AS total
  FROM crash_src WINDOW SESSION (20 SECONDS) GROUP BY k EMIT FINAL;
CREATE TABLE crash_totals AS
  SELECT k, COUNT(*) AS n, SUM(v) AS total, LATEST_BY_OFFSET(v) AS last
  FROM crash_src GROUP BY k EMIT CHANGES;
";

const TABLES: [&str; 4] = [
    "crash_tumbling",
    "crash_hopping",
    "crash_sessions",
    "crash_totals",
];

/// Options of `sightline bench sql-crash`.
#[derive(Debug, clap::Args)]
pub struct SqlCrashArgs {
    /// Records in the stream.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// How many times to kill -9 the node.
    #[arg(long, default_value_t = 5)]
    kills: u32,
    /// Distinct group keys.
    #[arg(long, default_value_t = 200)]
    keys: usize,
    /// Seed for the values and the kill schedule.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Data directory for the node (default: a fresh temporary directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

/// What the harness found, per table and overall.
#[derive(Debug, Serialize)]
pub struct SqlCrashReport {
    events: usize,
    kills: u32,
    /// Kills that found the queries with unprocessed records.
    kills_mid_stream: u32,
    tables: Vec<TableReport>,
    elapsed_secs: f64,
    passed: bool,
}

#[derive(Debug, Serialize)]
struct TableReport {
    table: String,
    /// Rows of the uninterrupted in-process run.
    expected_rows: usize,
    /// Rows the node stored.
    stored_rows: usize,
    /// Expected rows the node lacks or holds with other values.
    missing_or_different: usize,
    /// Stored rows beyond the expected ones (a duplicate or a row that should not exist).
    unexpected: usize,
}

impl fmt::Display for SqlCrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        writeln!(f, "sql crash test {verdict}")?;
        writeln!(
            f,
            "  {} records, {} kills ({} with a backlog)",
            self.events, self.kills, self.kills_mid_stream
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "  {:<16} expected {:>6}  stored {:>6}  missing/different {}  unexpected {}",
                t.table, t.expected_rows, t.stored_rows, t.missing_or_different, t.unexpected
            )?;
        }
        write!(f, "  elapsed {:.1} s", self.elapsed_secs)
    }
}

/// Record `i` of the stream (and its key).
fn record(i: usize, keys: usize, rng: &mut rand::rngs::StdRng) -> (String, Value) {
    let k = format!("k{}", (i * 31) % keys);
    let v = (rng.random_range(0..100_000) as f64) / 100.0;
    let ts = BASE_MS + i as i64 * STEP_MS;
    (k.clone(), json!({ "k": k, "v": v, "ts": ts }))
}

/// The closing records: far enough ahead to close every real window, on every partition.
fn closers(events: usize) -> Vec<(String, Value)> {
    let ts = BASE_MS + events as i64 * STEP_MS + 10 * 60_000;
    (0..CLOSERS)
        .map(|c| {
            let k = format!("~closer-{c}");
            (k.clone(), json!({ "k": k, "v": 0.0, "ts": ts }))
        })
        .collect()
}

/// A row as compared: its JSON text with keys sorted (serde_json's maps are ordered).
fn canonical(row: &Value) -> String {
    row.to_string()
}

/// The tables of an uninterrupted in-process run: per table, its final rows as a pull
/// query returns them (`SELECT *`), excluding the closing records' keys.
fn reference(stream: &[(String, Value)]) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut catalog = Catalog::new();
    catalog.execute(SQL).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tables = BTreeMap::new();
    for table in TABLES {
        let query = catalog.query_mut(table).context("query compiled")?;
        let mut latest: BTreeMap<String, Value> = BTreeMap::new();
        let mut out = Vec::new();
        for (offset, (_, value)) in stream.iter().enumerate() {
            let bytes = serde_json::to_vec(value)?;
            query
                .process(&bytes, 0, offset as u64, 0, &mut out)
                .map_err(|e| anyhow::anyhow!("reference record {offset}: {e}"))?;
            for row in out.drain(..) {
                match row.value {
                    Some(Value::Object(mut obj)) => {
                        if let Some(w) = row.window {
                            obj.insert("WINDOWSTART".into(), json!(w.start));
                            obj.insert("WINDOWEND".into(), json!(w.end));
                        }
                        latest.insert(row.key, Value::Object(obj));
                    }
                    _ => {
                        latest.remove(&row.key);
                    }
                }
            }
        }
        let rows = latest
            .values()
            .filter(|r| !is_closer(r))
            .map(canonical)
            .collect();
        tables.insert(table.to_owned(), rows);
    }
    Ok(tables)
}

fn is_closer(row: &Value) -> bool {
    row["k"].as_str().is_some_and(|k| k.starts_with("~closer"))
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let res = client
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = res.status();
    let text = res.text().await?;
    anyhow::ensure!(status.is_success(), "POST {path}: {status}: {text}");
    Ok(serde_json::from_str(&text)?)
}

/// Appends records to the source topic; fails unless every one is acknowledged.
async fn append(
    client: &reqwest::Client,
    base: &str,
    chunk: &[(String, Value)],
) -> anyhow::Result<()> {
    for batch in chunk.chunks(2_000) {
        let body: Vec<Value> = batch
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        let report = post(
            client,
            base,
            &format!("/api/v1/topics/{TOPIC}/records"),
            &Value::Array(body),
        )
        .await?;
        anyhow::ensure!(
            report["accepted"].as_u64() == Some(batch.len() as u64),
            "not every record was accepted: {report}"
        );
    }
    Ok(())
}

/// Total unprocessed source records over the queries (`None` when a lag is unknown).
async fn total_lag(client: &reqwest::Client, base: &str) -> anyhow::Result<Option<u64>> {
    let list: Value = client
        .get(format!("{base}/api/v1/queries"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut total = 0;
    for item in list["items"].as_array().context("items")? {
        if item["kind"] == "stream" {
            continue;
        }
        match item["lag"].as_u64() {
            Some(lag) => total += lag,
            None => return Ok(None),
        }
    }
    Ok(Some(total))
}

/// The rows the node stored for `table`, as a pull query returns them.
async fn stored(client: &reqwest::Client, base: &str, table: &str) -> anyhow::Result<Vec<String>> {
    let body = post(
        client,
        base,
        "/api/v1/query",
        &json!({ "sql": format!("SELECT * FROM {table} LIMIT 100000") }),
    )
    .await?;
    Ok(body["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .filter(|r| !is_closer(r))
        .map(canonical)
        .collect())
}

fn compare(table: &str, expected: &[String], got: &[String]) -> TableReport {
    let mut want: BTreeMap<&str, i64> = BTreeMap::new();
    for r in expected {
        *want.entry(r).or_default() += 1;
    }
    let mut unexpected = 0;
    for r in got {
        match want.get_mut(r.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => unexpected += 1,
        }
    }
    TableReport {
        table: table.to_owned(),
        expected_rows: expected.len(),
        stored_rows: got.len(),
        missing_or_different: want.values().filter(|n| **n > 0).map(|n| *n as usize).sum(),
        unexpected,
    }
}

pub async fn run(args: SqlCrashArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.keys > 0 && args.events > 0,
        "--events and --keys must be positive"
    );
    let started = Instant::now();
    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("sightline-sql-crash-{}", uuid::Uuid::now_v7())),
            true,
        ),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut stream: Vec<(String, Value)> = (0..args.events)
        .map(|i| record(i, args.keys, &mut rng))
        .collect();
    stream.extend(closers(args.events));
    let expected = reference(&stream)?;

    let env = vec![("SIGHTLINE_STREAM__CHECKPOINT_INTERVAL_MS", "200".to_owned())];
    let mut node = NodeProcess::new(dir.clone(), "all", env).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    http::wait_healthy(&client, &node.base(), Duration::from_secs(60)).await?;
    post(
        &client,
        &node.base(),
        "/api/v1/queries",
        &json!({ "sql": SQL }),
    )
    .await?;

    let chunks = args.kills as usize + 1;
    let per_chunk = stream.len().div_ceil(chunks);
    let mut kills_mid_stream = 0;
    for (i, chunk) in stream.chunks(per_chunk).enumerate() {
        append(&client, &node.base(), chunk).await?;
        if i + 1 == chunks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        if total_lag(&client, &node.base()).await.ok().flatten() != Some(0) {
            kills_mid_stream += 1;
        }
        node.kill().await?;
        node.start().await?;
        http::wait_healthy(&client, &node.base(), Duration::from_secs(60)).await?;
    }

    // Done when every query has committed past the whole stream.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if total_lag(&client, &node.base()).await.ok().flatten() == Some(0) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the queries never caught up; see {}",
            dir.join("node.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut tables = Vec::new();
    for table in TABLES {
        let got = stored(&client, &node.base(), table).await?;
        tables.push(compare(table, &expected[table], &got));
    }
    node.kill().await?;
    let passed = tables
        .iter()
        .all(|t| t.missing_or_different == 0 && t.unexpected == 0 && t.expected_rows > 0);
    let report = SqlCrashReport {
        events: args.events,
        kills: args.kills,
        kills_mid_stream,
        tables,
        elapsed_secs: started.elapsed().as_secs_f64(),
        passed,
    };
    emit(&report, args.json)?;
    if temporary && passed {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
