//! `TestApp`: a whole node (real event log, real SQLite, store consumer, HTTP on a random
//! loopback port) in a fresh temporary directory, plus helpers to talk to it.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::Value;
use sightline_api::{Node, NodeConfig};

/// One recorder per test process (metrics has a single global recorder).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("recorder")
        })
        .clone()
}

pub struct TestApp {
    pub base: String,
    /// The one-time admin bootstrap token, when auth is on and no user exists.
    pub bootstrap_token: Option<String>,
    pub client: reqwest::Client,
    node: Option<Node>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        Self::spawn_in(tempfile::tempdir().unwrap(), tweak).await
    }

    /// A node on an existing data directory (to restart one: [`Self::stop`], then this).
    pub async fn spawn_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        let mut config = NodeConfig {
            http_addr: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.path().to_owned(),
            ..NodeConfig::default()
        };
        // Behaviour tests run as the loopback admin; `tests/security.rs` turns auth on.
        config.auth.enabled = false;
        tweak(&mut config);
        let node = Node::start(config, Some(prometheus())).await.unwrap();
        Self {
            base: format!("http://{}", node.addr()),
            bootstrap_token: node.bootstrap_token().map(str::to_owned),
            client: reqwest::Client::new(),
            node: Some(node),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(self.url(path_and_query))
            .send()
            .await
            .unwrap()
    }

    /// Every event the query API returns for `query`, following cursors.
    pub async fn all_events(&self, query: &str, page: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("/api/v1/events?limit={page}");
            if !query.is_empty() {
                url.push('&');
                url.push_str(query);
            }
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let res = self.get(&url).await;
            assert_eq!(res.status(), 200, "{url}");
            let body: Value = res.json().await.unwrap();
            out.extend(body["items"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Waits until the store holds `n` events matching `query`; panics after 30 s.
    pub async fn wait_for_events(&self, query: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.all_events(query, 1000).await;
            if events.len() >= n {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events stored for '{query}'",
                events.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }

    /// Shuts the node down gracefully and hands back its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
        self._dir
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
