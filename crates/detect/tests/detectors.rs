//! Every detector on synthetic series with known anomalies (spike, level shift, seasonal
//! break, drift) and on normal series; state round-trips; memory bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sightline_detect::changepoint::{ChangePointConfig, ChangePointDetector};
use sightline_detect::ensemble::{Ensemble, EnsembleConfig};
use sightline_detect::event_rate::{EventRateConfig, EventRateDetector};
use sightline_detect::ewma::{EwmaConfig, EwmaDetector};
use sightline_detect::new_pattern::{NewPatternConfig, NewPatternDetector, PatternVerdict};
use sightline_detect::seasonal::{SeasonalConfig, SeasonalDetector};
use sightline_detect::threshold::{Direction, ThresholdConfig};
use sightline_detect::zscore::{RobustZScoreDetector, ZScoreConfig, ZScoreDetector};
use sightline_detect::{
    AnyDetector, DetectConfig, Detector, DetectorSpec, SeriesDetectors, Verdict,
};
use sightline_model::{Metric, Severity};

/// Deterministic noise: a 64-bit LCG mapped to ~N(0, 1) (sum of 4 uniforms, rescaled).
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) / (4.0f64 / 12.0).sqrt()
    }
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// A noisy flat series around 100 (σ 2).
fn flat(n: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| (i as i64 * MINUTE, 100.0 + 2.0 * noise.normal()))
        .collect()
}

/// A noisy daily pattern, hourly points.
fn daily(n: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut noise = Noise(seed);
    (0..n)
        .map(|i| {
            let phase = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
            (
                i as i64 * HOUR,
                100.0 + 40.0 * phase.sin() + 2.0 * noise.normal(),
            )
        })
        .collect()
}

fn run(d: &mut dyn Detector, series: &[(i64, f64)]) -> Vec<Verdict> {
    series.iter().map(|&(t, v)| d.observe(t, v)).collect()
}

fn flagged(verdicts: &[Verdict]) -> Vec<usize> {
    verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| v.anomalous)
        .map(|(i, _)| i)
        .collect()
}

fn point_detectors() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(ZScoreDetector::new(ZScoreConfig::default())),
        Box::new(RobustZScoreDetector::new(ZScoreConfig::default())),
        Box::new(EwmaDetector::new(EwmaConfig::default())),
    ]
}

#[test]
fn point_detectors_flag_a_spike_and_stay_quiet_on_noise() {
    for mut d in point_detectors() {
        let mut s = flat(2_000, 7);
        s[1_500].1 += 40.0; // 20σ
        let v = run(d.as_mut(), &s);
        assert!(v[1_500].anomalous, "{} missed the spike", d.name());
        assert!(v[1_500].score > 0.999);
        let false_alarms = flagged(&v).into_iter().filter(|&i| i != 1_500).count();
        assert!(
            false_alarms <= 2,
            "{}: {false_alarms} false alarms on noise",
            d.name()
        );
        assert!(v[1_500].expected_low < 100.0 && v[1_500].expected_high > 100.0);
    }
}

#[test]
fn point_detectors_flag_a_level_shift() {
    for mut d in point_detectors() {
        let mut s = flat(2_000, 11);
        for p in &mut s[1_000..] {
            p.1 += 30.0;
        }
        let v = run(d.as_mut(), &s);
        assert!(v[1_000].anomalous, "{} missed the shift", d.name());
    }
}

#[test]
fn threshold_fires_on_slow_drift_only_after_for() {
    let mut d = DetectorSpec::Threshold(ThresholdConfig {
        limit: 150.0,
        direction: Direction::Above,
        for_ms: 10 * MINUTE,
    })
    .build();
    // drifts from 100 up by 0.1 per minute: crosses 150 at minute 500
    let s: Vec<(i64, f64)> = (0..1_000)
        .map(|i| (i * MINUTE, 100.0 + 0.1 * i as f64))
        .collect();
    let v = run(&mut d, &s);
    let first = flagged(&v)[0];
    assert_eq!(first, 511, "fires 10 minutes after the first breach at 501");
}

#[test]
fn changepoint_finds_a_level_shift_quickly_and_not_noise() {
    let mut d = ChangePointDetector::new(ChangePointConfig::default());
    let mut s = flat(1_200, 5);
    for p in &mut s[800..] {
        p.1 += 15.0;
    }
    let v = run(&mut d, &s);
    let hits = flagged(&v);
    assert!(
        hits.iter().any(|&i| (800..810).contains(&i)),
        "hits {hits:?}"
    );
    assert!(
        hits.iter().all(|&i| i >= 800),
        "false alarms before the shift: {hits:?}"
    );
    assert!(d.held() <= ChangePointConfig::default().max_run_length);
}

fn seasonal_config() -> SeasonalConfig {
    SeasonalConfig {
        season_ms: 24 * HOUR,
        history: 24 * 10,
        refit_every: 24,
        min_history: 24 * 4,
        level: 0.99,
    }
}

#[test]
fn seasonal_flags_a_broken_day_but_not_the_normal_pattern() {
    let mut d = SeasonalDetector::new(seasonal_config());
    let mut s = daily(24 * 20, 3);
    // day 15 goes flat at the daily mean: inside the usual range, but not at that hour
    for p in &mut s[24 * 15..24 * 16] {
        p.1 = 100.0;
    }
    let v = run(&mut d, &s);
    let hits = flagged(&v);
    let in_break = hits
        .iter()
        .filter(|&&i| (24 * 15..24 * 16).contains(&i))
        .count();
    assert!(
        in_break >= 6,
        "only {in_break} of the broken day's hours flagged: {hits:?}"
    );
    let before = hits
        .iter()
        .filter(|&&i| (24 * 5..24 * 15).contains(&i))
        .count();
    assert!(before <= 6, "{before} false alarms on 10 normal days");
    assert_eq!(d.season_points(), Some(24));
    assert!(d.held() <= 24 * 10);
}

#[test]
fn seasonal_follows_a_steady_trend() {
    let mut d = SeasonalDetector::new(SeasonalConfig {
        season_ms: 0,
        ..seasonal_config()
    });
    let mut noise = Noise(9);
    let s: Vec<(i64, f64)> = (0..600)
        .map(|i| (i * HOUR, 50.0 + 0.5 * i as f64 + noise.normal()))
        .collect();
    let v = run(&mut d, &s);
    let alarms = flagged(&v[200..]).len();
    assert!(alarms <= 8, "{alarms} alarms on a clean linear trend");
}

#[test]
fn ensemble_flags_spike_shift_and_seasonal_break_once_each() {
    let config = EnsembleConfig {
        season_ms: 24 * HOUR,
        ..EnsembleConfig::default()
    };
    let mut s = daily(24 * 40, 21);
    s[24 * 20 + 5].1 += 60.0; // spike
    for p in &mut s[24 * 28..24 * 29] {
        p.1 = 100.0; // broken day
    }
    for p in &mut s[24 * 34..] {
        p.1 += 80.0; // level shift
    }
    let mut d = Ensemble::new(config);
    let v = run(&mut d, &s);
    let hits = flagged(&v);
    assert!(hits.contains(&(24 * 20 + 5)), "spike missed: {hits:?}");
    assert!(
        hits.iter().any(|&i| (24 * 28..24 * 29).contains(&i)),
        "broken day missed: {hits:?}"
    );
    assert!(
        hits.iter().any(|&i| (24 * 34..24 * 34 + 3).contains(&i)),
        "shift missed: {hits:?}"
    );
    // suppression: the shift alerts once, not every point after it
    let after_shift = hits.iter().filter(|&&i| i >= 24 * 34).count();
    assert!(after_shift <= 3, "{after_shift} alerts for one shift");
    let normal = hits
        .iter()
        .filter(|&&i| (24 * 8..24 * 20).contains(&i))
        .count();
    assert!(normal <= 1, "{normal} alerts on normal days: {hits:?}");
}

#[test]
fn event_rate_flags_a_burst_and_not_steady_traffic() {
    let mut d = EventRateDetector::new(EventRateConfig::default());
    let mut noise = Noise(4);
    let counts: Vec<f64> = (0..300)
        .map(|_| (20.0 + 4.5 * noise.normal()).round().max(0.0))
        .collect();
    let mut hits = Vec::new();
    for (i, c) in counts.iter().enumerate() {
        if d.observe(i as i64 * MINUTE, *c).anomalous {
            hits.push(i);
        }
    }
    assert!(hits.len() <= 1, "false alarms on steady traffic: {hits:?}");
    let burst = d.observe(300 * MINUTE, 80.0);
    assert!(burst.anomalous && burst.score > 0.9999);
    assert!(burst.expected_high < 80.0);
    // a quiet service: a couple of errors is not a page
    let mut quiet = EventRateDetector::new(EventRateConfig::default());
    for i in 0..50 {
        quiet.observe(i * MINUTE, 0.0);
    }
    assert!(!quiet.observe(50 * MINUTE, 3.0).anomalous);
    assert!(quiet.observe(51 * MINUTE, 12.0).anomalous);
}

#[test]
fn new_pattern_flags_first_error_of_a_fingerprint_per_service_within_the_cap() {
    let mut d = NewPatternDetector::new(NewPatternConfig {
        max_fingerprints_per_service: 3,
        max_services: 2,
        warmup_events: 0,
        learning_period_ms: 0,
        severity: None,
    });
    assert_eq!(
        d.observe_parts("api", "fp-a", Severity::High, "ERROR", 0),
        PatternVerdict::New
    );
    assert_eq!(
        d.observe_parts("api", "fp-a", Severity::High, "ERROR", 0),
        PatternVerdict::Known
    );
    assert_eq!(
        d.observe_parts("api", "fp-b", Severity::Info, "INFO", 0),
        PatternVerdict::Ignored
    );
    // same fingerprint, other service: new there
    assert_eq!(
        d.observe_parts("db", "fp-a", Severity::Critical, "ERROR", 0),
        PatternVerdict::New
    );
    for fp in ["fp-b", "fp-c", "fp-d"] {
        assert_eq!(
            d.observe_parts("api", fp, Severity::High, "ERROR", 0),
            PatternVerdict::New
        );
    }
    assert_eq!(d.remembered("api"), 3);
    // fp-a was least recently seen and got evicted: new again
    assert_eq!(
        d.observe_parts("api", "fp-a", Severity::High, "ERROR", 0),
        PatternVerdict::New
    );
    // a third service evicts the least recently active one (db)
    d.observe_parts("web", "x", Severity::High, "ERROR", 0);
    assert_eq!(d.services(), 2);
    assert_eq!(d.remembered("db"), 0);
}

#[test]
fn new_pattern_learns_a_service_s_routine_errors_silently_during_its_learning_period() {
    let mut d = NewPatternDetector::new(NewPatternConfig {
        learning_period_ms: HOUR,
        ..NewPatternConfig::default()
    });
    let t0 = 1_700_000_000_000;
    for (i, fp) in ["timeout", "500", "conn-reset"].iter().enumerate() {
        assert_eq!(
            d.observe_parts(
                "api",
                fp,
                Severity::High,
                "ERROR",
                t0 + i as i64 * 10 * MINUTE
            ),
            PatternVerdict::Known,
            "{fp} is routine: learned during the first hour"
        );
    }
    // After the hour, a fingerprint never seen is new; the learned ones are not.
    let later = t0 + 2 * HOUR;
    assert_eq!(
        d.observe_parts("api", "timeout", Severity::High, "ERROR", later),
        PatternVerdict::Known
    );
    assert_eq!(
        d.observe_parts(
            "api",
            "NullPointerException",
            Severity::High,
            "ERROR",
            later
        ),
        PatternVerdict::New
    );
    // Another service starts its own learning period at its first error.
    assert_eq!(
        d.observe_parts("db", "deadlock", Severity::High, "ERROR", later),
        PatternVerdict::Known
    );
}

fn all_specs() -> Vec<DetectorSpec> {
    vec![
        DetectorSpec::Threshold(ThresholdConfig {
            limit: 110.0,
            direction: Direction::Above,
            for_ms: 5 * MINUTE,
        }),
        DetectorSpec::Zscore(ZScoreConfig::default()),
        DetectorSpec::RobustZscore(ZScoreConfig::default()),
        DetectorSpec::Ewma(EwmaConfig::default()),
        DetectorSpec::Seasonal(SeasonalConfig {
            season_ms: 24 * HOUR,
            ..seasonal_config()
        }),
        DetectorSpec::Changepoint(ChangePointConfig::default()),
        DetectorSpec::Ensemble(EnsembleConfig {
            season_ms: 24 * HOUR,
            ..EnsembleConfig::default()
        }),
    ]
}

#[test]
fn state_round_trips_and_continues_identically() {
    let mut s = daily(24 * 12, 8);
    s[24 * 10].1 += 80.0;
    let (first, second) = s.split_at(24 * 8);
    for spec in all_specs() {
        let mut original: AnyDetector = spec.build();
        run(&mut original, first);
        let bytes = postcard::to_stdvec(&original).unwrap();
        let mut restored: AnyDetector = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            restored,
            original,
            "{} state differs after postcard",
            original.name()
        );
        let json = serde_json::to_string(&original).unwrap();
        let mut from_json: AnyDetector = serde_json::from_str(&json).unwrap();
        let a = run(&mut original, second);
        let b = run(&mut restored, second);
        let c = run(&mut from_json, second);
        assert_eq!(a, b, "{} diverged after restore", original.name());
        assert_eq!(a, c, "{} diverged after a JSON restore", original.name());
    }
}

#[test]
fn windows_and_histories_stay_bounded() {
    let s = flat(5_000, 2);
    let mut z = ZScoreDetector::new(ZScoreConfig {
        window: 100,
        ..ZScoreConfig::default()
    });
    let mut r = RobustZScoreDetector::new(ZScoreConfig {
        window: 100,
        ..ZScoreConfig::default()
    });
    let mut e = Ensemble::new(EnsembleConfig {
        max_history: 1_000,
        ..EnsembleConfig::default()
    });
    let mut c = ChangePointDetector::new(ChangePointConfig {
        max_run_length: 50,
        ..ChangePointConfig::default()
    });
    run(&mut z, &s);
    run(&mut r, &s);
    run(&mut e, &s);
    run(&mut c, &s);
    assert_eq!(z.held(), 100);
    assert_eq!(r.held(), 100);
    assert_eq!(e.held(), 1_000);
    assert_eq!(c.held(), 50);
}

fn metric(service: &str, metric_type: &str, t: i64, value: f64) -> Metric {
    Metric {
        service_name: service.into(),
        metric_type: metric_type.into(),
        value,
        tags: Default::default(),
        timestamp: t,
        received_at: t,
        correlation_id: String::new(),
    }
}

#[test]
fn registry_routes_series_caps_them_and_explains_anomalies() {
    let config: DetectConfig = serde_json::from_str(
        r#"{"max_series": 3,
            "rules": [{"service": "checkout*", "metric_type": "latency_ms",
                       "detectors": [{"kind": "robust_zscore", "window": 200}]}],
            "default": [{"kind": "ewma"}]}"#,
    )
    .unwrap();
    let mut reg = SeriesDetectors::new(config).unwrap();
    let s = flat(500, 13);
    let mut anomalies = Vec::new();
    for &(t, v) in &s {
        anomalies.extend(reg.observe(&metric("checkout-eu", "latency_ms", t, v), t + 5));
    }
    assert!(anomalies.is_empty(), "{anomalies:?}");
    let found = reg.observe(&metric("checkout-eu", "latency_ms", 500 * MINUTE, 812.0), 1);
    assert_eq!(found.len(), 1);
    let a = &found[0];
    assert_eq!(a.detector, "robust_zscore");
    assert!(
        a.explanation
            .starts_with("latency_ms 812 ms on checkout-eu is "),
        "{}",
        a.explanation
    );
    assert!(
        a.explanation.contains("above its rolling median"),
        "{}",
        a.explanation
    );
    // same input → same id (idempotent upserts after a replay)
    let mut again = SeriesDetectors::new(serde_json::from_str(r#"{"rules": [{"service": "checkout*", "metric_type": "latency_ms", "detectors": [{"kind": "robust_zscore", "window": 200}]}]}"#).unwrap()).unwrap();
    for &(t, v) in &s {
        again.observe(&metric("checkout-eu", "latency_ms", t, v), 0);
    }
    assert_eq!(
        again.observe(&metric("checkout-eu", "latency_ms", 500 * MINUTE, 812.0), 2)[0].id,
        a.id
    );
    // the series cap
    for i in 0..10 {
        reg.observe(&metric(&format!("svc-{i}"), "cpu_usage", 0, 1.0), 0);
    }
    assert_eq!(reg.len(), 3);
    assert_eq!(reg.evicted(), 8);
    // and the whole registry checkpoints
    let bytes = postcard::to_stdvec(&reg).unwrap();
    let mut back: SeriesDetectors = postcard::from_bytes(&bytes).unwrap();
    back.set_config(DetectConfig::default()).unwrap();
    assert_eq!(back.len(), reg.len());
    assert_eq!(postcard::to_stdvec(&back).unwrap(), bytes);
}
