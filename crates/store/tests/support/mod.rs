//! Shared PostgreSQL test plumbing: where the test server is, and a fresh store in a
//! schema of its own per test, dropped afterwards.
//!
//! The PostgreSQL tests need a running server (the project's test script starts one).
//! When it cannot be reached they fail, loudly, instead of passing without testing.

#![allow(clippy::unwrap_used, dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sightline_store::{PgConfig, PgStore};
use sqlx::{Connection as _, Executor as _};

/// The test server: `SIGHTLINE_TEST_PG_URL`, or the local default.
pub fn pg_url() -> String {
    std::env::var("SIGHTLINE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A name no other test (in this or a concurrent process) uses: `<prefix>_<pid>_<time>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() % 1_000_000_000_000);
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Panics with instructions when `result` says the server is unreachable.
pub fn require_pg<T, E: std::fmt::Display>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is not reachable at {} ({error}). The PostgreSQL store tests need a \
             running server: start it (the project's test script does), or point \
             SIGHTLINE_TEST_PG_URL at one.",
            pg_url()
        )
    })
}

/// The config of a store in `schema` of the test server.
pub fn pg_config(schema: &str) -> PgConfig {
    PgConfig {
        url: pg_url(),
        max_connections: 4,
        schema: Some(schema.to_owned()),
        ..PgConfig::default()
    }
}

/// A fresh store in a new schema `test_…`; drop the schema with [`drop_schema`].
pub async fn fresh_pg_store() -> (PgStore, String) {
    let schema = unique_name("test");
    let store = require_pg(PgStore::connect(&pg_config(&schema)).await);
    (store, schema)
}

/// Drops `schema` and everything in it (best effort: a failure is only reported).
pub async fn drop_schema(schema: String) {
    let dropped = async {
        let mut conn = sqlx::PgConnection::connect(&pg_url()).await?;
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        conn.execute(sql.as_str()).await?;
        conn.close().await
    }
    .await;
    if let Err(error) = dropped {
        eprintln!("could not drop test schema {schema}: {error}");
    }
}
