//! What the benchmarks need from a node over HTTP: readiness, consumer lag, and reading back
//! every stored event id.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Waits until `GET /health` answers 200.
pub async fn wait_healthy(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "node at {base} not healthy after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The store consumer's lag on `system-events`, from `/metrics`.
pub async fn store_lag(client: &reqwest::Client, base: &str) -> anyhow::Result<Option<u64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("sightline_consumer_lag_records{"))
        .filter(|l| l.contains("group=\"store\"") && l.contains("topic=\"system-events\""))
        .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64))
}

/// Waits until the store consumer has caught up with `system-events`.
pub async fn wait_store_caught_up(
    client: &reqwest::Client,
    base: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if store_lag(client, base).await? == Some(0) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "store did not catch up within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
