//! Throughput of continuous SQL end to end on record bytes (no log): JSON decoding, the
//! compiled `WHERE`/key/aggregate-input expressions, the window operator and the JSON
//! output rows — the ksqlDB e-commerce `session_stats` query over 200,000 records, and a
//! windowed query with a `WHERE` for comparison; plus JSON decoding alone.
//!
//! `cargo bench -p sightline-stream --bench sql -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sightline_stream::sql::Catalog;

const RECORDS: usize = 200_000;
const SESSIONS: u64 = 20_000;

const STREAM: &str = "CREATE STREAM events_stream (session_id VARCHAR, user_id VARCHAR, event_type VARCHAR, cart_total DOUBLE, ts BIGINT) WITH (KAFKA_TOPIC='ecommerce.events', VALUE_FORMAT='JSON', TIMESTAMP='ts');";
const SESSION_STATS: &str = "CREATE TABLE session_stats AS SELECT session_id, LATEST_BY_OFFSET(user_id) AS user_id, COUNT(*) AS events_count, MAX(cart_total) AS cart_value, SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchase_count FROM events_stream GROUP BY session_id EMIT CHANGES;";
const PER_MINUTE: &str = "CREATE TABLE purchases_per_minute AS SELECT event_type, COUNT(*) AS n, AVG(cart_total) AS avg_cart FROM events_stream WINDOW TUMBLING (SIZE 1 MINUTE) WHERE event_type IN ('purchase', 'checkout_started') GROUP BY event_type EMIT FINAL;";

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Shopping events as JSON bytes, 4 per millisecond, up to 1 s out of order.
fn records() -> Vec<Vec<u8>> {
    let kinds = [
        "product_viewed",
        "product_viewed",
        "added_to_cart",
        "checkout_started",
        "purchase",
    ];
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    (0..RECORDS)
        .map(|i| {
            let r = xorshift(&mut rng);
            let session = r % SESSIONS;
            let ts = 1_700_000_000_000 + (i / 4) as i64 - ((r >> 20) % 1_000) as i64;
            format!(
                r#"{{"session_id":"sess-{session}","user_id":"user-{}","event_type":"{}","cart_total":{}.{:02},"ts":{ts},"page":"/p/{}"}}"#,
                session / 3,
                kinds[((r >> 32) % 5) as usize],
                (r >> 40) % 500,
                (r >> 50) % 100,
                (r >> 24) % 1_000,
            )
            .into_bytes()
        })
        .collect()
}

fn run(c: &mut Criterion, group_name: &str, table_sql: &str, table: &str, input: &[Vec<u8>]) {
    let mut group = c.benchmark_group("sql");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.bench_function(group_name, |b| {
        b.iter(|| {
            let mut catalog = Catalog::new();
            catalog
                .execute(&format!("{STREAM}\n{table_sql}"))
                .expect("valid SQL");
            let q = catalog.query_mut(table).expect("query exists");
            let mut out = Vec::with_capacity(4_096);
            let mut emitted = 0usize;
            for (i, bytes) in input.iter().enumerate() {
                let _ = q.process(bytes, (i % 4) as u32, (i / 4) as u64, 0, &mut out);
                if out.len() >= 4_096 {
                    emitted += out.len();
                    out.clear();
                }
            }
            black_box(emitted + out.len())
        })
    });
    group.finish();
}

fn session_stats(c: &mut Criterion) {
    let input = records();
    run(
        c,
        "session_stats_json_200k",
        SESSION_STATS,
        "session_stats",
        &input,
    );
    run(
        c,
        "tumbling_where_emit_final_json_200k",
        PER_MINUTE,
        "purchases_per_minute",
        &input,
    );
    let mut catalog = Catalog::new();
    catalog.execute(STREAM).expect("valid SQL");
    let def = catalog.stream("events_stream").expect("declared").clone();
    let mut group = c.benchmark_group("sql");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.bench_function("json_decode_only_200k", |b| {
        let mut row = Vec::new();
        b.iter(|| {
            let mut ok = 0usize;
            for bytes in &input {
                ok += usize::from(def.decode_into(bytes, &mut row).is_ok());
            }
            black_box(ok)
        })
    });
    group.finish();
}

criterion_group!(benches, session_stats);
criterion_main!(benches);
