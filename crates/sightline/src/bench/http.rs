//! What the benchmarks need from a node over HTTP: readiness, consumer lag, and reading back
//! every stored event id.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Polls `ready` every `every` until it answers true (a check that errs counts as not yet);
/// fails with `what` and the last error after `timeout`.
async fn poll_until<F, Fut>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut ready: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        // A failed check (a node too busy to answer in time) is "not yet"; the deadline
        // bounds the wait and the last error is reported with it.
        match ready().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(format!("{e:#}")),
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what} within {timeout:?} (last error: {last_error:?})"
        );
        tokio::time::sleep(every).await;
    }
}

/// Waits until `GET /health` answers 200.
pub async fn wait_healthy(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    poll_until(
        timeout,
        Duration::from_millis(20),
        &format!("node at {base} not healthy"),
        || async {
            Ok(client
                .get(format!("{base}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()))
        },
    )
    .await
}

/// The values of the `/metrics` samples named `name` whose labels include every one of
/// `labels` (`key="value"` pairs).
async fn samples(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    labels: &[&str],
) -> anyhow::Result<Vec<f64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect())
}

/// The store consumer's lag on `system-events`, from `/metrics`.
pub async fn store_lag(client: &reqwest::Client, base: &str) -> anyhow::Result<Option<u64>> {
    let lag = samples(
        client,
        base,
        "sightline_consumer_lag_records",
        &["group=\"store\"", "topic=\"system-events\""],
    )
    .await?;
    Ok(lag.first().map(|v| *v as u64))
}

/// Events this node's store consumer wrote, from its `/metrics`.
pub async fn stored_by_node(client: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let label = format!("table=\"{}\"", sightline_store::sink::TABLE_EVENTS);
    let written = samples(
        client,
        base,
        sightline_store::sink::METRIC_WRITTEN,
        &[&label],
    )
    .await?;
    Ok(written.iter().sum::<f64>() as u64)
}

/// Waits until the store consumer has caught up with `system-events`.
pub async fn wait_store_caught_up(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    poll_until(
        timeout,
        Duration::from_millis(100),
        "store did not catch up",
        || async { Ok(store_lag(client, base).await? == Some(0)) },
    )
    .await
}

/// Every stored event id with how often the query API returned it, paging newest first.
pub async fn stored_event_ids(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<HashMap<String, u32>> {
    let mut ids = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = client
            .get(format!("{base}/api/v1/events"))
            .query(&[("limit", "1000")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
        let items = page["items"].as_array().context("page without items")?;
        for item in items {
            let id = item["event_id"].as_str().context("event without id")?;
            *ids.entry(id.to_owned()).or_insert(0) += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(ids),
        }
    }
}
