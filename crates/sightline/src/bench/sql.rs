//! Continuous SQL end to end, on a node in a child process: (1) throughput — records
//! posted to a user topic as fast as the node acknowledges them while the rollups and three
//! queries run, timed until every query has committed past the last record; (2) latency —
//! records posted at a steady rate, each carrying its send time, which an `EMIT CHANGES`
//! query passes through to its rows; a WebSocket push client measures send → row received.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};

use super::node::NodeProcess;
use super::{emit, http, percentile};

const TOPIC: &str = "bench.events";

const SQL: &str = "
CREATE STREAM bench_src (k VARCHAR, v DOUBLE, ts BIGINT, sent_us BIGINT)
  WITH (KAFKA_TOPIC='bench.events', VALUE_FORMAT='JSON', TIMESTAMP='ts');
CREATE TABLE bench_minutely AS
  SELECT k, COUNT(*) AS n, SUM(v) AS total, AVG(v) AS mean, P99(v) AS p99
  FROM bench_src WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT FINAL;
CREATE TABLE bench_hopping AS
  SELECT k, COUNT(*) AS n, MAX(v) AS top
  FROM bench_src WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE) GROUP BY k EMIT FINAL;
CREATE TABLE bench_latest AS
  SELECT k, COUNT(*) AS n, LATEST_BY_OFFSET(sent_us) AS sent_us
  FROM bench_src GROUP BY k EMIT CHANGES;
";

/// Options of `sightline bench sql`.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// Records for the throughput phase.
    #[arg(long, default_value_t = 300_000)]
    events: usize,
    /// Offered rate of the latency phase, records/s.
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Length of the latency phase.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Distinct keys.
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    /// Data directory for the node (default: a fresh temporary directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct SqlReport {
    events: usize,
    /// Records/s acknowledged while posting as fast as possible.
    ingest_per_sec: f64,
    /// Records/s from the first post until all three queries committed the last record.
    end_to_end_per_sec: f64,
    latency_rate: u64,
    latency_sent: u64,
    latency_rows: usize,
    /// Send → `EMIT CHANGES` row received over the WebSocket, ms.
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
}

impl fmt::Display for SqlReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "continuous SQL (rollups + 3 queries)")?;
        writeln!(
            f,
            "  throughput  {} records: ingest {:.0}/s, end to end {:.0}/s",
            self.events, self.ingest_per_sec, self.end_to_end_per_sec
        )?;
        write!(
            f,
            "  latency     at {}/s ({} sent, {} rows): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.latency_rate,
            self.latency_sent,
            self.latency_rows,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.latency_max_ms
        )
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn batch(from: usize, n: usize, keys: usize) -> Value {
    let base = now_us() / 1000;
    let sent = now_us();
    Value::Array(
        (from..from + n)
            .map(|i| {
                let k = format!("k{}", i % keys);
                json!({"key": k, "value": {"k": k, "v": (i % 997) as f64, "ts": base, "sent_us": sent}})
            })
            .collect(),
    )
}

async fn post(client: &reqwest::Client, base: &str, body: &Value) -> anyhow::Result<()> {
    let res = client
        .post(format!("{base}/api/v1/topics/{TOPIC}/records"))
        .json(body)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "post: {}", res.status());
    Ok(())
}

async fn total_lag(client: &reqwest::Client, base: &str) -> anyhow::Result<Option<u64>> {
    let list: Value = client
        .get(format!("{base}/api/v1/queries"))
        .send()
        .await?
        .json()
        .await?;
    let mut total = 0;
    for item in list["items"].as_array().context("items")? {
        if item["kind"] != "stream" {
            match item["lag"].as_u64() {
                Some(l) => total += l,
                None => return Ok(None),
            }
        }
    }
    Ok(Some(total))
}

pub async fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("sightline-bench-sql-{}", uuid::Uuid::now_v7())),
            true,
        ),
    };
    let node = NodeProcess::new(dir.clone(), "all", Vec::new()).await?;
    let base = node.base();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    http::wait_healthy(&client, &base, Duration::from_secs(60)).await?;
    let res = client
        .post(format!("{base}/api/v1/queries"))
        .json(&json!({ "sql": SQL }))
        .send()
        .await?;
    anyhow::ensure!(
        res.status().is_success(),
        "creating the queries: {}",
        res.text().await?
    );

    // Throughput: four clients post batches of 2,000 as fast as they are acknowledged.
    let started = Instant::now();
    let per_client = args.events.div_ceil(4);
    let mut clients = Vec::new();
    for c in 0..4 {
        let (client, base, keys) = (client.clone(), base.clone(), args.keys);
        let (from, to) = (c * per_client, ((c + 1) * per_client).min(args.events));
        clients.push(tokio::spawn(async move {
            let mut i = from;
            while i < to {
                let n = 2_000.min(to - i);
                post(&client, &base, &batch(i, n, keys)).await?;
                i += n;
            }
            anyhow::Ok(())
        }));
    }
    for c in clients {
        c.await??;
    }
    let ingested = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while total_lag(&client, &base).await.ok().flatten() != Some(0) {
        anyhow::ensure!(Instant::now() < deadline, "the queries never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let processed = started.elapsed();

    // Latency: a push client on the EMIT CHANGES query, records at a steady rate.
    let url = format!(
        "{}/api/v1/queries/bench_latest/changes",
        base.replacen("http", "ws", 1)
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("connecting the push client")?;
    let receiver = tokio::spawn(async move {
        let mut socket = socket;
        let mut latencies = Vec::new();
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_secs(5), socket.next()).await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg
                && let Ok(change) = serde_json::from_str::<Value>(&text)
                && let Some(sent) = change["row"]["sent_us"].as_i64()
            {
                latencies.push((now_us() - sent) as f64 / 1000.0);
            }
        }
        latencies
    });
    let per_tick = (args.rate / 100).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let until = Instant::now() + args.duration;
    let mut sent = 0;
    while Instant::now() < until {
        tick.tick().await;
        let (client, base, body) = (
            client.clone(),
            base.clone(),
            batch(sent, per_tick, args.keys),
        );
        tokio::spawn(async move { post(&client, &base, &body).await });
        sent += per_tick;
    }
    let mut latencies = receiver.await?;
    latencies.sort_by(f64::total_cmp);
    drop(node);
    let report = SqlReport {
        events: args.events,
        ingest_per_sec: args.events as f64 / ingested.as_secs_f64(),
        end_to_end_per_sec: args.events as f64 / processed.as_secs_f64(),
        latency_rate: args.rate,
        latency_sent: sent as u64,
        latency_rows: latencies.len(),
        latency_p50_ms: percentile(&latencies, 50.0),
        latency_p99_ms: percentile(&latencies, 99.0),
        latency_max_ms: latencies.last().copied().unwrap_or(0.0),
    };
    emit(&report, args.json)?;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::SUCCESS)
}
