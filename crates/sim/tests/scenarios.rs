//! The scenarios' generators, in-process: determinism, the shopping funnel's invariants
//! and ground truth, and the incidents scenario's graph, faults and cascades.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use sightline_model::{IngestContext, SourceType, Topology};
use sightline_sim::scenario::ecommerce::{
    EVENT_TYPES, EcommerceConfig, EcommerceEvent, EcommerceGenerator, MAX_SESSION_EVENTS,
};
use sightline_sim::scenario::incidents::{
    FaultKind, GroundTruth, IncidentsConfig, Item, SERVICES, Scenario,
};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const STEP: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(86_400);

// ---------------------------------------------------------------------------------------
// Ecommerce

fn shop(seed: u64, n: usize) -> (Vec<EcommerceEvent>, EcommerceGenerator) {
    let mut g = EcommerceGenerator::new(EcommerceConfig::default(), seed);
    let events = (0..n)
        .map(|i| g.next_event(T0 + i as i64 * 7))
        .collect::<Vec<_>>();
    (events, g)
}

#[test]
fn shopping_is_deterministic_by_seed() {
    let (a, ga) = shop(42, 5_000);
    let (b, gb) = shop(42, 5_000);
    assert_eq!(a, b);
    assert_eq!(ga.truth(), gb.truth());
    let (c, _) = shop(43, 5_000);
    assert_ne!(a, c);
    // Batches too, byte for byte.
    let body = |seed| {
        let mut g = EcommerceGenerator::new(EcommerceConfig::default(), seed);
        let mut out = Vec::new();
        let mut all = Vec::new();
        for i in 0..20 {
            g.write_batch(T0 + i * 1000, 100, &mut out).unwrap();
            all.extend_from_slice(&out);
        }
        all
    };
    assert_eq!(body(9), body(9));
}

#[test]
fn sessions_follow_the_funnel() {
    let (events, g) = shop(7, 60_000);
    let mut by_session: BTreeMap<&str, Vec<&EcommerceEvent>> = BTreeMap::new();
    let mut interleaved = 0;
    for (i, e) in events.iter().enumerate() {
        assert!(EVENT_TYPES.contains(&e.event_type.as_str()), "{e:?}");
        assert!(
            e.cart_total >= 0.0 && e.price > 0.0 && e.quantity >= 1,
            "{e:?}"
        );
        assert!(["new", "returning", "vip"].contains(&e.user_segment.as_str()));
        assert!(!e.device.is_empty() && e.country.len() == 2);
        assert_eq!(e.timestamp, T0 + i as i64 * 7);
        if i > 0 && events[i - 1].session_id != e.session_id {
            interleaved += 1;
        }
        by_session.entry(&e.session_id).or_default().push(e);
    }
    // Many sessions are open at once: consecutive records mostly belong to different ones.
    assert!(interleaved > events.len() * 9 / 10, "{interleaved}");
    let mut converted: HashMap<&str, (u32, u32)> = HashMap::new();
    let mut checkouts = 0;
    for (id, session) in &by_session {
        assert_eq!(session[0].event_type, "product_viewed", "{id}");
        assert!(session.len() as u32 <= MAX_SESSION_EVENTS);
        let user = &session[0].user_id;
        let mut cart_cents: i64 = 0;
        let mut checkout_seen = false;
        let mut purchases = 0;
        for e in session {
            assert_eq!(&e.user_id, user, "one user per session");
            assert_eq!(e.user_segment, session[0].user_segment);
            let line = (e.price * 100.0).round() as i64 * i64::from(e.quantity);
            match e.event_type.as_str() {
                "added_to_cart" => cart_cents += line,
                "removed_from_cart" => cart_cents -= line,
                "checkout_started" => {
                    assert!(cart_cents > 0, "checkout with an empty cart in {id}");
                    checkout_seen = true;
                    checkouts += 1;
                }
                "purchase" => {
                    assert!(checkout_seen, "purchase before checkout in {id}");
                    assert!(cart_cents > 0);
                    purchases += 1;
                }
                _ => {}
            }
            assert!(cart_cents >= 0, "{id}");
            assert_eq!(
                (e.cart_total * 100.0).round() as i64,
                cart_cents,
                "{id}: {e:?}"
            );
        }
        assert!(purchases <= 1, "a purchase ends the session");
        if purchases == 1 {
            assert_eq!(session.last().unwrap().event_type, "purchase");
        }
        let c = converted.entry(&session[0].user_segment).or_default();
        c.0 += 1;
        c.1 += purchases;
    }
    assert!(checkouts > 100, "{checkouts}");
    let rate = |seg: &str| {
        let (sessions, bought) = converted[seg];
        f64::from(bought) / f64::from(sessions)
    };
    // Most sessions leave without buying; vip converts far more than new.
    assert!(rate("new") > 0.005 && rate("new") < 0.2, "{}", rate("new"));
    assert!(
        rate("vip") > 2.0 * rate("new"),
        "{} vs {}",
        rate("vip"),
        rate("new")
    );
    assert!(rate("returning") > rate("new"));
    // Every event type occurs.
    let types: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.len(), EVENT_TYPES.len());
    assert_eq!(g.records(), events.len() as u64);
}

#[test]
fn ground_truth_matches_the_records() {
    let mut g = EcommerceGenerator::new(EcommerceConfig::default(), 3);
    let mut out = Vec::new();
    let mut records = Vec::new();
    for i in 0..50 {
        g.write_batch(T0 + i * 100, 400, &mut out).unwrap();
        let batch: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap();
        for envelope in batch {
            let obj = envelope.as_object().unwrap();
            assert_eq!(obj.len(), 2, "{envelope}");
            assert_eq!(envelope["key"], envelope["value"]["session_id"]);
            records.push(envelope["value"].clone());
        }
    }
    // What the stream SQL computes, by session.
    #[derive(Default, Debug, PartialEq)]
    struct Agg {
        count: u64,
        max_cart: f64,
        purchases: u64,
        latest_user: String,
    }
    let mut agg: BTreeMap<String, Agg> = BTreeMap::new();
    for r in &records {
        for field in [
            "event_id",
            "session_id",
            "user_id",
            "event_type",
            "product_id",
            "category",
            "price",
            "quantity",
            "cart_total",
            "user_segment",
            "device",
            "country",
            "timestamp",
        ] {
            assert!(!r[field].is_null(), "{field} missing in {r}");
        }
        let a = agg
            .entry(r["session_id"].as_str().unwrap().to_owned())
            .or_default();
        a.count += 1;
        a.max_cart = a.max_cart.max(r["cart_total"].as_f64().unwrap());
        a.purchases += u64::from(r["event_type"] == "purchase");
        a.latest_user = r["user_id"].as_str().unwrap().to_owned();
    }
    let truth = g.truth();
    assert_eq!(truth.records, records.len() as u64);
    assert_eq!(truth.sessions.len(), agg.len());
    assert_eq!(truth.topic, "ecommerce.events");
    for (id, a) in &agg {
        let t = &truth.sessions[id];
        assert_eq!(t.events_count, a.count, "{id}");
        assert_eq!(t.cart_value, a.max_cart, "{id}");
        assert_eq!(t.purchase_count, a.purchases, "{id}");
        assert_eq!(t.user_id, a.latest_user, "{id}");
    }
    assert_eq!(
        truth.event_counts.values().sum::<u64>(),
        records.len() as u64
    );
    // The truth survives a JSON round trip (the --ground-truth file).
    let json = serde_json::to_string(truth).unwrap();
    assert_eq!(
        &serde_json::from_str::<sightline_sim::scenario::ecommerce::EcommerceTruth>(&json).unwrap(),
        truth
    );
}

// ---------------------------------------------------------------------------------------
// Incidents

/// Every item of a run, as (timestamp, JSON).
fn collect(s: Scenario) -> Vec<Item> {
    s.collect()
}

/// `series[(service, metric)]`: values by timestamp.
type Series = HashMap<(String, String), BTreeMap<i64, f64>>;

fn metrics(items: &[Item]) -> Series {
    let mut out: Series = HashMap::new();
    for item in items {
        if let Item::Metric(m) = item {
            out.entry((
                m.service_name.clone().unwrap(),
                m.metric_type.clone().unwrap(),
            ))
            .or_default()
            .insert(
                item.timestamp_ms(),
                m.value.as_ref().unwrap().as_f64().unwrap(),
            );
        }
    }
    out
}

fn mean(series: &BTreeMap<i64, f64>, from: i64, to: i64) -> f64 {
    let v: Vec<f64> = series.range(from..to).map(|(_, v)| *v).collect();
    assert!(!v.is_empty(), "no points in {from}..{to}");
    v.iter().sum::<f64>() / v.len() as f64
}

fn day_run(seed: u64, faults: Option<usize>) -> Scenario {
    Scenario::with_config(
        seed,
        T0,
        DAY,
        STEP,
        IncidentsConfig {
            faults,
            ..IncidentsConfig::default()
        },
    )
}

#[test]
fn incidents_are_deterministic_by_seed() {
    let json = |seed| {
        let s = Scenario::new(seed, T0, Duration::from_secs(6 * 3600), STEP);
        let truth = serde_json::to_string(s.ground_truth()).unwrap();
        let items: Vec<serde_json::Value> = s.map(|i| i.to_json()).collect();
        (truth, items)
    };
    let a = json(5);
    assert_eq!(a, json(5));
    let b = json(6);
    assert_ne!(a.0, b.0);
    assert_ne!(a.1, b.1);
}

#[test]
fn incidents_items_are_valid_ordered_and_cover_the_graph() {
    let s = day_run(11, None);
    let truth = s.ground_truth().clone();
    assert_eq!(
        (truth.start_ms, truth.end_ms, truth.step_ms),
        (T0, T0 + 86_400_000, 10_000)
    );
    truth.topology.validate().unwrap();
    assert!(truth.topology.services.len() >= 10);
    assert_eq!(truth.topology.services.len(), SERVICES.len());
    // A deep graph: the edge reaches the database through at least three hops.
    assert!(
        truth
            .topology
            .upstream_of("frontend")
            .contains("postgres-db")
    );
    assert!(truth.topology.downstream_of("postgres-db").len() >= 6);
    let items = collect(s);
    let ctx = IngestContext::new(SourceType::Http, truth.end_ms, "t");
    let mut last = i64::MIN;
    let mut ids = BTreeSet::new();
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for item in &items {
        let ts = item.timestamp_ms();
        assert!(ts >= last, "out of order at {ts}");
        assert!((truth.start_ms..truth.end_ms).contains(&ts));
        last = ts;
        match item {
            Item::Metric(m) => {
                let m = m.clone().normalize(&ctx).unwrap();
                assert!(m.value >= 0.0 && m.value.is_finite());
                if m.metric_type.ends_with("_usage") {
                    assert!(m.value <= 100.0);
                }
                if m.metric_type == "error_rate" {
                    assert!(m.value <= 1.0);
                }
            }
            Item::Event(e) => {
                let e = e.clone().normalize(&ctx).unwrap();
                assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
                *kinds.entry(e.event_type).or_default() += 1;
            }
        }
    }
    let series = metrics(&items);
    // Every service reports every metric at every step.
    assert_eq!(series.len(), SERVICES.len() * 5);
    assert!(series.values().all(|s| s.len() == 8_640));
    for kind in ["INFO", "WARNING", "ERROR", "DEPLOYMENT"] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "{kinds:?}");
    }
    // The day curve: the edge is busier mid-afternoon than at night (UTC).
    let rr = &series[&("frontend".to_owned(), "request_rate".to_owned())];
    let at_hour = |h: i64| {
        let day_start = T0 - T0.rem_euclid(86_400_000) + 86_400_000;
        let from = day_start + h * 3_600_000;
        let (from, to) = if from >= T0 + 86_400_000 {
            (from - 86_400_000, from - 86_400_000 + 3_600_000)
        } else {
            (from, from + 3_600_000)
        };
        mean(rr, from, to)
    };
    assert!(
        at_hour(14) > 2.0 * at_hour(3),
        "{} vs {}",
        at_hour(14),
        at_hour(3)
    );
    // Latency and CPU follow load.
    let cpu = &series[&("catalog".to_owned(), "cpu_usage".to_owned())];
    let cpu_at = |h: i64| {
        let day_start = T0 - T0.rem_euclid(86_400_000);
        let from = day_start + h * 3_600_000 + if h < 22 { 86_400_000 } else { 0 };
        mean(cpu, from, from + 3_600_000)
    };
    assert!(
        cpu_at(15) > cpu_at(3) + 15.0,
        "{} vs {}",
        cpu_at(15),
        cpu_at(3)
    );
}

#[test]
fn every_fault_kind_is_injected_once_a_day_spaced_out() {
    for seed in [1, 2, 3] {
        let s = Scenario::new(seed, T0, 2 * DAY, STEP);
        let t = s.ground_truth();
        assert_eq!(t.faults.len(), 10);
        for day in t.faults.chunks(5) {
            let kinds: BTreeSet<FaultKind> = day.iter().map(|f| f.kind).collect();
            assert_eq!(kinds.len(), 5, "{:?}", day);
        }
        for pair in t.faults.windows(2) {
            // At least half an hour of calm between faults.
            assert!(pair[1].start_ms >= pair[0].end_ms + 1_800_000, "{pair:?}");
        }
        for f in &t.faults {
            assert!(f.start_ms >= t.start_ms + 1_800_000 && f.end_ms <= t.end_ms);
            assert_eq!(f.affected_services[0], f.root_cause_service);
            assert!(t.topology.services.contains_key(&f.root_cause_service));
            let unique: BTreeSet<&String> = f.affected_services.iter().collect();
            assert_eq!(unique.len(), f.affected_services.len());
            match f.kind {
                FaultKind::TrafficSpike => {
                    assert_eq!(f.root_cause_service, "frontend");
                    assert_eq!(f.affected_services.len(), SERVICES.len());
                }
                FaultKind::DependencyLatency => {
                    assert!(
                        ["postgres-db", "redis-cache", "inventory"]
                            .contains(&f.root_cause_service.as_str())
                    );
                    // The cascade reaches callers, all of them downstream of the root.
                    assert!(f.affected_services.len() >= 3, "{f:?}");
                    let downstream = t.topology.downstream_of(&f.root_cause_service);
                    assert!(
                        f.affected_services[1..]
                            .iter()
                            .all(|s| downstream.contains(s))
                    );
                }
                FaultKind::BadDeployment => assert!(f.version.is_some()),
                _ => {}
            }
        }
    }
    // A configurable count; and the truth round-trips, its topology as a Topology.
    let s = Scenario::with_config(
        4,
        T0,
        Duration::from_secs(6 * 3600),
        STEP,
        IncidentsConfig {
            faults: Some(5),
            ..IncidentsConfig::default()
        },
    );
    assert_eq!(s.ground_truth().faults.len(), 5);
    let json = serde_json::to_string(s.ground_truth()).unwrap();
    let back: GroundTruth = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, s.ground_truth());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let topology: Topology = serde_json::from_value(v["topology"].clone()).unwrap();
    topology.validate().unwrap();
}

/// The metric each kind moves on its root cause.
fn signal(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::CpuHog => "cpu_usage",
        FaultKind::MemoryLeak => "memory_usage",
        FaultKind::BadDeployment => "error_rate",
        FaultKind::DependencyLatency => "latency_ms",
        FaultKind::TrafficSpike => "request_rate",
    }
}

#[test]
fn faults_are_abnormal_during_and_normal_outside() {
    for seed in [21, 22] {
        let faulty = day_run(seed, None);
        let truth = faulty.ground_truth().clone();
        let with = metrics(&collect(faulty));
        // The same day without faults: the counterfactual baseline.
        let without = metrics(&collect(day_run(seed, Some(0))));
        for f in &truth.faults {
            let key = (f.root_cause_service.clone(), signal(f.kind).to_owned());
            let (a, b) = (&with[&key], &without[&key]);
            // During: the second half of the fault (leaks ramp; cascades take a moment).
            let mid = f.start_ms + (f.end_ms - f.start_ms) / 2;
            let (during, base) = (mean(a, mid, f.end_ms), mean(b, mid, f.end_ms));
            let abnormal = match f.kind {
                FaultKind::CpuHog => during > base + 25.0,
                FaultKind::MemoryLeak => during > base + 15.0,
                FaultKind::BadDeployment => during > 0.1 && base < 0.01,
                FaultKind::DependencyLatency => during > 3.0 * base,
                FaultKind::TrafficSpike => during > 2.5 * base,
            };
            assert!(abnormal, "seed {seed} {f:?}: {during} vs {base}");
            // Before and (after the cascade drains) after: as without the fault.
            for (from, to) in [
                (f.start_ms - 1_800_000, f.start_ms),
                (f.end_ms + 600_000, f.end_ms + 2_400_000),
            ] {
                let (x, y) = (mean(a, from, to), mean(b, from, to));
                let close = match f.kind {
                    FaultKind::CpuHog | FaultKind::MemoryLeak => (x - y).abs() < 4.0,
                    FaultKind::BadDeployment => (x - y).abs() < 0.002,
                    _ => (x - y).abs() < 0.15 * y,
                };
                assert!(close, "seed {seed} {f:?} in {from}..{to}: {x} vs {y}");
            }
            // Every affected service's metrics move.
            if f.kind == FaultKind::DependencyLatency {
                for s in &f.affected_services {
                    let key = (s.clone(), "latency_ms".to_owned());
                    let (d, b) = (
                        mean(&with[&key], mid, f.end_ms),
                        mean(&without[&key], mid, f.end_ms),
                    );
                    assert!(d > 1.2 * b, "{s} in {f:?}: {d} vs {b}");
                }
            }
        }
    }
}

#[test]
fn latency_cascades_from_the_root_to_its_callers() {
    let mut checked = 0;
    for seed in 30..34 {
        let faulty = day_run(seed, None);
        let truth = faulty.ground_truth().clone();
        let with = metrics(&collect(faulty));
        let without = metrics(&collect(day_run(seed, Some(0))));
        for f in truth
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::DependencyLatency)
        {
            // When each affected service's latency first exceeds 1.3 × the counterfactual.
            let crossing = |s: &str| {
                let key = (s.to_owned(), "latency_ms".to_owned());
                let base = &without[&key];
                with[&key]
                    .range(f.start_ms..f.end_ms)
                    .find(|(t, v)| **v > 1.3 * base[*t])
                    .map(|(t, _)| *t)
                    .unwrap_or_else(|| panic!("{s} never rises in {f:?}"))
            };
            let root = crossing(&f.root_cause_service);
            let mut previous = root;
            for s in &f.affected_services[1..] {
                let t = crossing(s);
                assert!(
                    t > root,
                    "{s} rose at {t}, before its root cause at {root}: {f:?}"
                );
                previous = previous.max(t);
            }
            // The root also rises at (about) the fault's start.
            assert!(root - f.start_ms <= 60_000, "{f:?}");
            checked += 1;
        }
    }
    assert!(checked >= 4);
}

#[test]
fn a_bad_deployment_comes_first_then_errors_then_a_rollback() {
    let s = day_run(8, None);
    let truth = s.ground_truth().clone();
    let items = collect(s);
    let f = truth
        .faults
        .iter()
        .find(|f| f.kind == FaultKind::BadDeployment)
        .unwrap();
    let events: Vec<serde_json::Value> = items
        .iter()
        .filter(|i| matches!(i, Item::Event(_)))
        .map(Item::to_json)
        .filter(|e| e["service_name"] == f.root_cause_service.as_str())
        .collect();
    let deploy = events
        .iter()
        .find(|e| e["event_type"] == "DEPLOYMENT" && e["timestamp"] == f.start_ms)
        .unwrap_or_else(|| panic!("no deployment at the start of {f:?}"));
    assert_eq!(deploy["metadata"]["version"], f.version.as_deref().unwrap());
    let rollback = events
        .iter()
        .find(|e| e["event_type"] == "DEPLOYMENT" && e["timestamp"] == f.end_ms)
        .unwrap();
    assert_eq!(rollback["metadata"]["rollback"], true);
    let errors_in = |from: i64, to: i64| {
        events
            .iter()
            .filter(|e| e["event_type"] == "ERROR")
            .filter(|e| (from..to).contains(&e["timestamp"].as_i64().unwrap()))
            .count()
    };
    let len = f.end_ms - f.start_ms;
    let during = errors_in(f.start_ms, f.end_ms);
    let before = errors_in(f.start_ms - len, f.start_ms);
    assert!(during > 10 * before.max(1), "{during} vs {before}");
    // The errors carry the faulty version.
    assert!(
        events.iter().any(|e| e["event_type"] == "ERROR"
            && e["metadata"]["version"] == f.version.as_deref().unwrap())
    );
}
