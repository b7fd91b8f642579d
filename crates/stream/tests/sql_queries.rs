//! Continuous SQL against brute force: a dozen queries — tumbling, hopping and session
//! windows with `WINDOWSTART`/`WINDOWEND`, `HAVING`, `WHERE` with `LIKE`/`IN`/`IS NULL`/JSON
//! paths, `CREATE STREAM … AS SELECT`, arithmetic over aggregates, `EMIT FINAL` — are
//! parsed, planned and fed JSON record bytes; their materialized output (upserts and
//! tombstones applied by key) must equal what plain Rust computes from the same events.
//! Then checkpoint/restore mid-stream must give output identical to an uninterrupted run.

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};
use sightline_stream::sql::{Catalog, OutputRow, Processed, output_key};
use sightline_stream::{Checkpoint, Key, Value, Window};

const STREAM: &str = "CREATE STREAM ev (user_id VARCHAR, event_type VARCHAR, amount DOUBLE, qty INT, region VARCHAR, metadata MAP<VARCHAR, VARCHAR>, ts BIGINT) WITH (KAFKA_TOPIC='shop.events', VALUE_FORMAT='JSON', TIMESTAMP='ts');";

#[derive(Clone, Debug)]
struct Ev {
    user: String,
    kind: &'static str,
    amount: Option<f64>,
    qty: i64,
    region: Option<&'static str>,
    os: Option<&'static str>,
    campaign: Option<&'static str>,
    ts: i64,
}

impl Ev {
    fn json(&self) -> Vec<u8> {
        let mut v = json!({
            "user_id": self.user, "event_type": self.kind, "amount": self.amount,
            "qty": self.qty, "region": self.region, "ts": self.ts,
        });
        if self.os.is_some() || self.campaign.is_some() {
            let mut m = json!({});
            if let Some(os) = self.os {
                m["device"] = json!({ "os": os });
            }
            if let Some(c) = self.campaign {
                m["campaign"] = json!(c);
            }
            v["metadata"] = m;
        }
        serde_json::to_vec(&v).unwrap()
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Deterministic events, time advancing with up to 2 s of disorder (within the default
/// 5 s watermark lag, so nothing is late).
fn events(n: usize, seed: u64) -> Vec<Ev> {
    let mut s = seed;
    let mut t = 1_700_000_000_000i64;
    (0..n)
        .map(|_| {
            let r = xorshift(&mut s);
            t += (r % 1_500) as i64;
            let jitter = ((r >> 12) % 2_000) as i64;
            Ev {
                user: format!("u{}", (r >> 20) % 15),
                kind: ["view", "cart", "purchase", "refund", "view"][((r >> 28) % 5) as usize],
                amount: if (r >> 32).is_multiple_of(10) {
                    None
                } else {
                    Some(((r >> 36) % 50_000) as f64 / 100.0)
                },
                qty: 1 + ((r >> 40) % 5) as i64,
                region: [Some("eu-west"), Some("eu-north"), Some("us-east"), None]
                    [((r >> 44) % 4) as usize],
                os: [Some("ios"), Some("android"), Some("web"), None][((r >> 48) % 4) as usize],
                campaign: [Some("c1"), Some("c2"), None][((r >> 52) % 3) as usize],
                ts: t - jitter,
            }
        })
        .collect()
}

fn catalog(sql: &str) -> Catalog {
    let mut c = Catalog::new();
    c.execute(STREAM).unwrap();
    c.execute(sql).unwrap();
    c
}

/// Feeds every event (two partitions) and flushes; returns every output row.
fn run(c: &mut Catalog, name: &str, evs: &[Ev]) -> Vec<OutputRow> {
    let q = c.query_mut(name).unwrap();
    let mut out = Vec::new();
    for (i, e) in evs.iter().enumerate() {
        let r = q
            .process(&e.json(), (i % 2) as u32, (i / 2) as u64, 0, &mut out)
            .unwrap();
        assert!(!matches!(r, Processed::Late { .. }), "nothing is late here");
    }
    q.flush(&mut out);
    out
}

/// The table downstream: upserts by key, tombstones delete.
fn materialize(rows: &[OutputRow]) -> BTreeMap<String, Json> {
    let mut m = BTreeMap::new();
    for r in rows {
        match &r.value {
            Some(v) => m.insert(r.key.clone(), v.clone()),
            None => m.remove(&r.key),
        };
    }
    m
}

/// EMIT FINAL: exactly one row per key.
fn finals(rows: &[OutputRow]) -> BTreeMap<String, Json> {
    let mut m = BTreeMap::new();
    for r in rows {
        let v = r.value.clone().expect("final rows are never tombstones");
        assert!(m.insert(r.key.clone(), v).is_none(), "duplicate {}", r.key);
    }
    m
}

fn key(parts: Vec<Value>, window_start: Option<i64>) -> String {
    output_key(
        &Key::new(parts),
        window_start.map(|s| Window::new(s, s + 1)),
    )
}

fn s(v: &str) -> Value {
    Value::string(v)
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::string)
}

/// Numbers compare as numbers (1 == 1.0) within a relative 1e-9 (summation order).
#[track_caller]
fn assert_close(got: &BTreeMap<String, Json>, want: &BTreeMap<String, Json>) {
    let gk: BTreeSet<_> = got.keys().collect();
    let wk: BTreeSet<_> = want.keys().collect();
    assert_eq!(gk, wk, "keys differ");
    for (k, w) in want {
        let g = &got[k];
        assert!(close(g, w), "{k}: got {g}, want {w}");
    }
    assert!(!want.is_empty(), "the test must produce rows");
}

fn close(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| close(v, w))
        }
        _ => a == b,
    }
}

fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

fn sum_opt(vals: impl Iterator<Item = Option<f64>>) -> Json {
    let v: Vec<f64> = vals.flatten().collect();
    if v.is_empty() {
        Json::Null
    } else {
        json!(v.iter().sum::<f64>())
    }
}

#[test]
fn tumbling_emit_final_with_window_bounds() {
    let sql = "CREATE TABLE q1 AS SELECT user_id, WINDOWSTART AS ws, WINDOWEND AS we, COUNT(*) AS n, SUM(amount) AS total FROM ev WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id EMIT FINAL;";
    let evs = events(3_000, 1);
    let mut c = catalog(sql);
    let got = finals(&run(&mut c, "q1", &evs));
    let mut groups: BTreeMap<(String, i64), Vec<&Ev>> = BTreeMap::new();
    for e in &evs {
        groups
            .entry((e.user.clone(), floor_to(e.ts, 10_000)))
            .or_default()
            .push(e);
    }
    let want = groups
        .iter()
        .map(|((u, ws), es)| {
            (
                key(vec![s(u)], Some(*ws)),
                json!({"user_id": u, "ws": ws, "we": ws + 10_000, "n": es.len(),
                       "total": sum_opt(es.iter().map(|e| e.amount))}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn hopping_with_where_and_having() {
    let sql = "CREATE TABLE q2 AS SELECT region, WINDOWSTART AS ws, COUNT(*) AS n, MAX(amount) AS max_amount FROM ev WINDOW HOPPING (SIZE 20 SECONDS, ADVANCE BY 5 SECONDS) WHERE region IS NOT NULL GROUP BY region HAVING COUNT(*) >= 3 EMIT FINAL;";
    let evs = events(2_000, 2);
    let mut c = catalog(sql);
    let got = finals(&run(&mut c, "q2", &evs));
    let mut groups: BTreeMap<(&str, i64), Vec<&Ev>> = BTreeMap::new();
    for e in evs.iter().filter(|e| e.region.is_some()) {
        let mut start = floor_to(e.ts, 5_000);
        while start > e.ts - 20_000 {
            groups
                .entry((e.region.unwrap(), start))
                .or_default()
                .push(e);
            start -= 5_000;
        }
    }
    let want = groups
        .iter()
        .filter(|(_, es)| es.len() >= 3)
        .map(|((r, ws), es)| {
            let max = es
                .iter()
                .filter_map(|e| e.amount)
                .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
            (
                key(vec![s(r)], Some(*ws)),
                json!({"region": r, "ws": ws, "n": es.len(), "max_amount": max}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn session_windows_emit_changes_retract_merged_sessions() {
    let sql = "CREATE TABLE q3 AS SELECT user_id, WINDOWSTART AS ws, WINDOWEND AS we, COUNT(*) AS n, LATEST_BY_OFFSET(event_type) AS last_type FROM ev WINDOW SESSION (4 SECONDS) GROUP BY user_id EMIT CHANGES;";
    let evs = events(2_000, 3);
    let mut c = catalog(sql);
    let rows = run(&mut c, "q3", &evs);
    assert!(
        rows.iter().any(|r| r.value.is_none()),
        "some sessions merged"
    );
    let got = materialize(&rows);
    let mut by_user: BTreeMap<&str, Vec<(usize, &Ev)>> = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        by_user.entry(&e.user).or_default().push((i, e));
    }
    let mut want = BTreeMap::new();
    for (u, mut es) in by_user {
        es.sort_by_key(|(i, e)| (e.ts, *i));
        let mut sessions: Vec<Vec<(usize, &Ev)>> = Vec::new();
        for (i, e) in es {
            match sessions.last_mut() {
                Some(cur) if e.ts - cur.last().unwrap().1.ts < 4_000 => cur.push((i, e)),
                _ => sessions.push(vec![(i, e)]),
            }
        }
        for sess in sessions {
            let ws = sess[0].1.ts;
            let we = sess.last().unwrap().1.ts + 4_000;
            let last = sess.iter().max_by_key(|(i, _)| *i).unwrap().1.kind;
            want.insert(
                key(vec![s(u)], Some(ws)),
                json!({"user_id": u, "ws": ws, "we": we, "n": sess.len(), "last_type": last}),
            );
        }
    }
    assert_close(&got, &want);
}

#[test]
fn where_like_in_is_null_and_json_path_group_key() {
    let sql = "CREATE TABLE q4 AS SELECT EXTRACTJSONFIELD(metadata, '$.device.os') AS os, COUNT(*) AS n, COUNT_DISTINCT(user_id) AS users FROM ev WHERE event_type IN ('view', 'cart') AND user_id LIKE 'u1%' AND metadata IS NOT NULL GROUP BY EXTRACTJSONFIELD(metadata, '$.device.os') EMIT CHANGES;";
    let evs = events(2_000, 4);
    let mut c = catalog(sql);
    let got = materialize(&run(&mut c, "q4", &evs));
    let mut groups: BTreeMap<Option<&str>, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for e in &evs {
        let has_metadata = e.os.is_some() || e.campaign.is_some();
        if ["view", "cart"].contains(&e.kind) && e.user.starts_with("u1") && has_metadata {
            let g = groups.entry(e.os).or_default();
            g.0 += 1;
            g.1.insert(&e.user);
        }
    }
    let want = groups
        .iter()
        .map(|(os, (n, users))| {
            (
                key(vec![opt(*os)], None),
                json!({"os": os, "n": n, "users": users.len()}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn stream_as_select_filters_and_projects_with_arrow_paths() {
    let sql = "CREATE STREAM q5 AS SELECT user_id, metadata->'device'->'os' AS os, UCASE(event_type) AS et, amount * 2 AS double_amount FROM ev WHERE metadata->>'campaign' = 'c1' OR region IS NULL;";
    let evs = events(1_000, 5);
    let mut c = catalog(sql);
    let q = c.query("q5").unwrap();
    assert!(!q.is_table());
    assert_eq!(q.output_topic(), "q5");
    let got = finals(&run(&mut c, "q5", &evs));
    let want = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.campaign == Some("c1") || e.region.is_none())
        .map(|(i, e)| {
            (
                format!("{}:{}", i % 2, i / 2),
                json!({"user_id": e.user, "os": e.os, "et": e.kind.to_uppercase(),
                       "double_amount": e.amount.map(|a| a * 2.0)}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn arithmetic_over_aggregates() {
    let sql = "CREATE TABLE q6 AS SELECT user_id, SUM(qty) / COUNT(*) AS avg_qty_int, SUM(amount) / COUNT(amount) AS avg_amount, ROUND(AVG(amount), 2) AS avg_rounded, MAX(qty) - MIN(qty) AS qty_range, COUNT(*) AS n FROM ev GROUP BY user_id EMIT CHANGES;";
    let evs = events(2_000, 6);
    let mut c = catalog(sql);
    let got = materialize(&run(&mut c, "q6", &evs));
    let mut groups: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
    for e in &evs {
        groups.entry(&e.user).or_default().push(e);
    }
    let want: BTreeMap<String, Json> = groups
        .iter()
        .map(|(u, es)| {
            let qty: i64 = es.iter().map(|e| e.qty).sum();
            let amounts: Vec<f64> = es.iter().filter_map(|e| e.amount).collect();
            let avg = amounts.iter().sum::<f64>() / amounts.len() as f64;
            let max = es.iter().map(|e| e.qty).max().unwrap();
            let min = es.iter().map(|e| e.qty).min().unwrap();
            (
                key(vec![s(u)], None),
                json!({"user_id": u, "avg_qty_int": qty / es.len() as i64, "avg_amount": avg,
                       "avg_rounded": (avg * 100.0).round() / 100.0, "qty_range": max - min,
                       "n": es.len()}),
            )
        })
        .collect();
    assert_close(&got, &want);

    // Pull queries over the live table: a scan with a residual filter, and a key lookup.
    let big: Vec<&String> = want
        .iter()
        .filter(|(_, v)| v["n"].as_i64().unwrap() > 130)
        .map(|(k, _)| k)
        .collect();
    let pulled = c
        .pull("SELECT user_id, n FROM q6 WHERE n > 130 LIMIT 1000")
        .unwrap();
    assert_eq!(pulled.len(), big.len());
    assert_eq!(c.pull("SELECT * FROM q6 LIMIT 3").unwrap().len(), 3);
    let one = c.pull("SELECT * FROM q6 WHERE user_id = 'u7'").unwrap();
    assert_eq!(one.len(), 1);
    assert!(close(&one[0], &want[&key(vec![s("u7")], None)]));
}

#[test]
fn case_inside_aggregates_and_topk_in_tumbling_windows() {
    let sql = "CREATE TABLE q7 AS SELECT region, SUM(CASE WHEN event_type = 'purchase' THEN amount ELSE 0 END) AS revenue, COUNT(CASE WHEN event_type = 'refund' THEN 1 END) AS refunds, TOPK(qty, 3) AS top_qty FROM ev WINDOW TUMBLING (SIZE 30 SECONDS) GROUP BY region EMIT FINAL;";
    let evs = events(2_000, 7);
    let mut c = catalog(sql);
    let got = finals(&run(&mut c, "q7", &evs));
    let mut groups: BTreeMap<(Option<&str>, i64), Vec<&Ev>> = BTreeMap::new();
    for e in &evs {
        groups
            .entry((e.region, floor_to(e.ts, 30_000)))
            .or_default()
            .push(e);
    }
    let want = groups
        .iter()
        .map(|((r, ws), es)| {
            // CASE yields NULL for a purchase without an amount: SUM skips it.
            let revenue: f64 = es
                .iter()
                .map(|e| {
                    if e.kind == "purchase" {
                        e.amount.unwrap_or(0.0)
                    } else {
                        0.0
                    }
                })
                .sum();
            let refunds = es.iter().filter(|e| e.kind == "refund").count();
            let mut qty: Vec<i64> = es.iter().map(|e| e.qty).collect();
            qty.sort_unstable_by(|a, b| b.cmp(a));
            qty.truncate(3);
            (
                key(vec![opt(*r)], Some(*ws)),
                json!({"region": r, "revenue": revenue, "refunds": refunds, "top_qty": qty}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn hopping_multi_key_with_window_arithmetic() {
    let sql = "CREATE TABLE q8 AS SELECT region, event_type, WINDOWSTART AS ws, (WINDOWEND - WINDOWSTART) / 1000 AS secs, COUNT(*) AS n, EARLIEST_BY_OFFSET(user_id) AS first_user FROM ev WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY region, event_type EMIT CHANGES;";
    let evs = events(1_500, 8);
    let mut c = catalog(sql);
    let got = materialize(&run(&mut c, "q8", &evs));
    let mut groups: BTreeMap<(Option<&str>, &str, i64), Vec<&Ev>> = BTreeMap::new();
    for e in &evs {
        let mut start = floor_to(e.ts, 5_000);
        while start > e.ts - 10_000 {
            groups.entry((e.region, e.kind, start)).or_default().push(e);
            start -= 5_000;
        }
    }
    let want = groups
        .iter()
        .map(|((r, k, ws), es)| {
            (
                key(vec![opt(*r), s(k)], Some(*ws)),
                json!({"region": r, "event_type": k, "ws": ws, "secs": 10, "n": es.len(),
                       "first_user": es[0].user}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn stream_as_select_with_between_not_coalesce_case() {
    let sql = "CREATE STREAM q9 AS SELECT user_id, COALESCE(region, 'unknown') AS region, LEN(event_type) AS l, CASE WHEN amount > 100 THEN 'big' WHEN amount > 10 THEN 'mid' ELSE 'small' END AS size FROM ev WHERE amount BETWEEN 5 AND 400 AND NOT (event_type = 'refund');";
    let evs = events(1_000, 9);
    let mut c = catalog(sql);
    let got = finals(&run(&mut c, "q9", &evs));
    let want = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e.amount.is_some_and(|a| (5.0..=400.0).contains(&a)) && e.kind != "refund")
        .map(|(i, e)| {
            let a = e.amount.unwrap();
            let size = if a > 100.0 {
                "big"
            } else if a > 10.0 {
                "mid"
            } else {
                "small"
            };
            (
                format!("{}:{}", i % 2, i / 2),
                json!({"user_id": e.user, "region": e.region.unwrap_or("unknown"),
                       "l": e.kind.len(), "size": size}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn global_windowed_aggregate_without_group_by() {
    let sql = "CREATE TABLE q10 AS SELECT WINDOWSTART AS ws, COUNT(*) AS n, STDDEV(qty) AS sd, AVG(qty) AS mean FROM ev WINDOW TUMBLING (SIZE 1 MINUTE) EMIT FINAL;";
    let evs = events(2_000, 10);
    let mut c = catalog(sql);
    let got = finals(&run(&mut c, "q10", &evs));
    let mut groups: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for e in &evs {
        groups
            .entry(floor_to(e.ts, 60_000))
            .or_default()
            .push(e.qty as f64);
    }
    let want = groups
        .iter()
        .map(|(ws, q)| {
            let n = q.len() as f64;
            let mean = q.iter().sum::<f64>() / n;
            let var = q.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (
                key(vec![], Some(*ws)),
                json!({"ws": ws, "n": q.len(), "sd": var.sqrt(), "mean": mean}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn a_stream_query_feeds_a_table_query() {
    let mut c = catalog(
        "CREATE STREAM purchases AS SELECT user_id, metadata->'device'->>'os' AS os, amount FROM ev WHERE event_type = 'purchase';\n\
         CREATE TABLE by_os AS SELECT os, COUNT(*) AS n, SUM(amount) AS total FROM purchases WHERE os IS NOT NULL GROUP BY os;",
    );
    assert_eq!(c.query("by_os").unwrap().source_topic(), "purchases");
    let evs = events(1_500, 11);
    let first = run(&mut c, "purchases", &evs);
    let q = c.query_mut("by_os").unwrap();
    let mut out = Vec::new();
    for (i, r) in first.iter().enumerate() {
        let bytes = serde_json::to_vec(r.value.as_ref().unwrap()).unwrap();
        q.process(&bytes, 0, i as u64, r.event_time, &mut out)
            .unwrap();
    }
    let got = materialize(&out);
    let mut groups: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
    for e in evs.iter().filter(|e| e.kind == "purchase") {
        if let Some(os) = e.os {
            groups.entry(os).or_default().push(e);
        }
    }
    let want = groups
        .iter()
        .map(|(os, es)| {
            (
                key(vec![s(os)], None),
                json!({"os": os, "n": es.len(), "total": sum_opt(es.iter().map(|e| e.amount))}),
            )
        })
        .collect();
    assert_close(&got, &want);
}

#[test]
fn having_on_an_unwindowed_table_emits_tombstones_until_it_holds() {
    let sql = "CREATE TABLE q12 AS SELECT user_id, COUNT(*) AS n FROM ev WHERE region IS NULL OR region NOT IN ('eu-west') AND event_type NOT LIKE '%vie_' GROUP BY user_id HAVING SUM(qty) > 40 EMIT CHANGES;";
    let evs = events(600, 12);
    let mut c = catalog(sql);
    let rows = run(&mut c, "q12", &evs);
    assert!(rows.iter().any(|r| r.value.is_none()));
    let got = materialize(&rows);
    let mut groups: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for e in &evs {
        let keep = e.region.is_none() || (e.region != Some("eu-west") && e.kind != "view");
        if keep {
            let g = groups.entry(&e.user).or_default();
            g.0 += 1;
            g.1 += e.qty;
        }
    }
    let want = groups
        .iter()
        .filter(|(_, (_, q))| *q > 40)
        .map(|(u, (n, _))| (key(vec![s(u)], None), json!({"user_id": u, "n": n})))
        .collect();
    assert_close(&got, &want);
}

/// Checkpoint mid-stream, rebuild the catalog from its SQL definitions, restore, continue:
/// the rows after the restart equal an uninterrupted run's, for every query.
#[test]
fn checkpoint_restore_gives_identical_results() {
    let script = "CREATE TABLE stats AS SELECT user_id, LATEST_BY_OFFSET(event_type) AS last, COUNT(*) AS n, MAX(amount) AS max_amount, SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases FROM ev GROUP BY user_id EMIT CHANGES;\n\
                  CREATE TABLE sessions AS SELECT user_id, WINDOWSTART AS ws, COUNT(*) AS n, COUNT_DISTINCT(region) AS regions FROM ev WINDOW SESSION (3 SECONDS) GROUP BY user_id EMIT CHANGES;\n\
                  CREATE TABLE minutes AS SELECT region, COUNT(*) AS n, P95(amount) AS p95 FROM ev WINDOW TUMBLING (SIZE 20 SECONDS) GROUP BY region EMIT FINAL;";
    let evs = events(4_000, 13);
    let names = ["stats", "sessions", "minutes"];
    let feed = |c: &mut Catalog, range: std::ops::Range<usize>| -> Vec<OutputRow> {
        let mut out = Vec::new();
        for i in range {
            let bytes = evs[i].json();
            for name in names {
                c.query_mut(name)
                    .unwrap()
                    .process(&bytes, (i % 3) as u32, (i / 3) as u64, 0, &mut out)
                    .unwrap();
            }
        }
        out
    };
    let mut uninterrupted = catalog(script);
    let mut reference = feed(&mut uninterrupted, 0..evs.len());
    for name in names {
        uninterrupted.query_mut(name).unwrap().flush(&mut reference);
    }

    let mut c = catalog(script);
    let mut rows = Vec::new();
    let mut cut = 0;
    for restart in [700, 1_900, 3_100] {
        rows.extend(feed(&mut c, cut..restart));
        cut = restart;
        let mut ck = Checkpoint::default();
        c.checkpoint_into(&mut ck);
        let bytes = ck.encode().unwrap();
        let defs = serde_json::to_string(&c.definitions()).unwrap();
        drop(c);
        c = Catalog::from_definitions(&serde_json::from_str(&defs).unwrap()).unwrap();
        c.restore_from(&mut Checkpoint::decode(&bytes).unwrap())
            .unwrap();
    }
    rows.extend(feed(&mut c, cut..evs.len()));
    for name in names {
        c.query_mut(name).unwrap().flush(&mut rows);
    }
    assert_eq!(rows, reference);
    assert_eq!(
        c.pull("SELECT * FROM stats WHERE user_id = 'u3'").unwrap(),
        uninterrupted
            .pull("SELECT * FROM stats WHERE user_id = 'u3'")
            .unwrap()
    );
}

#[test]
fn pull_queries_on_a_windowed_table_see_window_bounds() {
    let mut c = catalog(
        "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user_id;",
    );
    let q = c.query_mut("per_user").unwrap();
    let mut out = Vec::new();
    for (i, (user, ts)) in [("a", 1_000), ("a", 12_000), ("b", 12_500), ("a", 13_000)]
        .into_iter()
        .enumerate()
    {
        let bytes = serde_json::to_vec(&json!({"user_id": user, "ts": ts})).unwrap();
        q.process(&bytes, 0, i as u64, 0, &mut out).unwrap();
    }
    assert_eq!(out.last().unwrap().key, r#"["a"]@10000"#);
    assert_eq!(
        c.pull("SELECT * FROM per_user WHERE user_id = 'a'")
            .unwrap(),
        vec![
            json!({"user_id": "a", "n": 1, "WINDOWSTART": 0, "WINDOWEND": 10_000}),
            json!({"user_id": "a", "n": 2, "WINDOWSTART": 10_000, "WINDOWEND": 20_000}),
        ]
    );
    assert_eq!(
        c.pull("SELECT user_id, n FROM per_user WHERE user_id = 'a' AND WINDOWSTART >= 10000")
            .unwrap(),
        vec![json!({"user_id": "a", "n": 2})]
    );
    assert_eq!(
        c.pull("SELECT user_id FROM per_user WHERE WINDOWEND = 20000")
            .unwrap(),
        vec![json!({"user_id": "a"}), json!({"user_id": "b"})]
    );
}
