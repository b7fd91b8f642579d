//! NAB scoring, as `nab/sweeper.py` and `nab/optimizer.py` of numenta/NAB (v1.1) do it.
//!
//! Every row gets a *sweep score* (the score it would contribute if it were flagged):
//! inside a labelled window, `S(-(right − i + 1)/width) · tpWeight / S(-1)` — so the first
//! row of a window is worth exactly `tpWeight` and later rows less; outside a window,
//! `S(|prevRight − i| / (prevWidth − 1)) · fpWeight` (negative, smaller right after a
//! window), or `−fpWeight` before the first window, where `S(x) = 2/(1 + e^{5x}) − 1`
//! (−1 beyond x > 3). Rows in the probationary period (the first
//! `min(⌊0.15·n⌋, 750)` rows) are not scored.
//!
//! For a threshold `t`, the rows with anomaly score ≥ `t` are detections: each window
//! scores the best (= earliest) detection inside it, or `−fnWeight` when it has none, and
//! every detection outside a window adds its (negative) sweep score. The optimiser sweeps
//! every distinct anomaly score as a threshold over the whole corpus (plus 1.1, "flag
//! nothing") and keeps the best total. Scores are normalised as NAB's runner does:
//! `100 · (raw − null) / (perfect − null)`, where `null` is the optimised score of a
//! detector that always answers 0 and `perfect = windows · tpWeight`.

use serde::{Deserialize, Serialize};

/// One profile's costs (`profiles.json`'s `CostMatrix`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostMatrix {
    /// Weight of a true positive.
    #[serde(rename = "tpWeight")]
    pub tp_weight: f64,
    /// Weight of a false positive.
    #[serde(rename = "fpWeight")]
    pub fp_weight: f64,
    /// Weight of a missed window.
    #[serde(rename = "fnWeight")]
    pub fn_weight: f64,
    /// Weight of a true negative (unused by NAB's scorer; kept for completeness).
    #[serde(rename = "tnWeight", default)]
    pub tn_weight: f64,
}

/// Where a row sits for scoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// In the probationary period: never scored.
    Probationary,
    /// Outside every window: a detection here is a false positive.
    Outside,
    /// Inside the window with this corpus-wide id.
    Window(usize),
}

/// One scorable row: its anomaly score, where it sits, and its sweep score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoredRow {
    /// The detector's anomaly score (NaN counts as 0).
    pub anomaly_score: f64,
    /// Its position class.
    pub kind: RowKind,
    /// The score it contributes if flagged (see the module docs).
    pub sweep_score: f64,
}

/// NAB's scaled sigmoid.
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * relative_position).exp()) - 1.0
    }
}

/// NAB's probationary length: `min(⌊0.15·n⌋, 0.15·5000)`.
pub fn probationary_length(rows: usize) -> usize {
    ((0.15 * rows as f64).floor()).min(750.0) as usize
}

/// The sweep rows of one file. `windows` are inclusive row-index ranges, sorted and
/// disjoint; `first_window_id` makes window ids unique across a corpus.
pub fn sweep_rows(
    anomaly_scores: &[f64],
    windows: &[(usize, usize)],
    first_window_id: usize,
    cost: &CostMatrix,
) -> Vec<ScoredRow> {
    let n = anomaly_scores.len();
    let probation = probationary_length(n);
    let max_tp = scaled_sigmoid(-1.0);
    let mut out = Vec::with_capacity(n);
    let mut next_window = 0usize;
    let mut current: Option<(usize, usize, usize)> = None; // (id, right, width)
    let mut previous: Option<(usize, usize)> = None; // (right, width)
    for (i, &score) in anomaly_scores.iter().enumerate() {
        if current.is_none()
            && let Some(&(left, right)) = windows.get(next_window)
            && i == left
        {
            current = Some((first_window_id + next_window, right, right - left + 1));
            next_window += 1;
        }
        let (kind, sweep) = match current {
            Some((id, right, width)) => {
                let position = -((right - i + 1) as f64) / width as f64;
                (
                    RowKind::Window(id),
                    scaled_sigmoid(position) * cost.tp_weight / max_tp,
                )
            }
            None => {
                let unweighted = match previous {
                    None => -1.0,
                    Some((right, width)) => {
                        scaled_sigmoid(i.abs_diff(right) as f64 / (width as f64 - 1.0))
                    }
                };
                (RowKind::Outside, unweighted * cost.fp_weight)
            }
        };
        let kind = if i >= probation {
            kind
        } else {
            RowKind::Probationary
        };
        out.push(ScoredRow {
            anomaly_score: if score.is_nan() { 0.0 } else { score },
            kind,
            sweep_score: sweep,
        });
        if let Some((_, right, width)) = current
            && i == right
        {
            previous = Some((right, width));
            current = None;
        }
    }
    out
}

/// The corpus score at one threshold, with its detection counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdScore {
    /// Rows with anomaly score ≥ this are detections (1.1: none).
    pub threshold: f64,
    /// Raw NAB score.
    pub score: f64,
    /// Flagged rows inside windows.
    pub tp: usize,
    /// Flagged rows outside windows.
    pub fp: usize,
    /// Unflagged rows inside windows.
    #[serde(rename = "fn")]
    pub fn_: usize,
    /// Unflagged rows outside windows.
    pub tn: usize,
}

/// Scores every candidate threshold (each distinct anomaly score, descending, after 1.1),
/// exactly as NAB's `calcScoreByThreshold`.
pub fn scores_by_threshold(
    rows: &[ScoredRow],
    window_count: usize,
    cost: &CostMatrix,
) -> Vec<ThresholdScore> {
    let mut scorable: Vec<&ScoredRow> = rows
        .iter()
        .filter(|r| r.kind != RowKind::Probationary)
        .collect();
    scorable.sort_by(|a, b| b.anomaly_score.total_cmp(&a.anomaly_score));
    // Only windows with at least one scorable row count (as NAB's scoreParts).
    let mut part: Vec<Option<f64>> = vec![None; window_count];
    for r in &scorable {
        if let RowKind::Window(id) = r.kind
            && let Some(p) = part.get_mut(id)
        {
            *p = Some(-cost.fn_weight);
        }
    }
    let mut total: f64 = part.iter().flatten().sum();
    let mut tn = scorable
        .iter()
        .filter(|r| r.kind == RowKind::Outside)
        .count();
    let mut fn_ = scorable.len() - tn;
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut out = Vec::new();
    let mut threshold = 1.1;
    for r in scorable {
        if r.anomaly_score != threshold {
            out.push(ThresholdScore {
                threshold,
                score: total,
                tp,
                fp,
                fn_,
                tn,
            });
            threshold = r.anomaly_score;
        }
        match r.kind {
            RowKind::Window(id) => {
                tp += 1;
                fn_ -= 1;
                if let Some(Some(p)) = part.get_mut(id)
                    && r.sweep_score > *p
                {
                    total += r.sweep_score - *p;
                    *p = r.sweep_score;
                }
            }
            _ => {
                fp += 1;
                tn -= 1;
                total += r.sweep_score;
            }
        }
    }
    out.push(ThresholdScore {
        threshold,
        score: total,
        tp,
        fp,
        fn_,
        tn,
    });
    out
}

/// The best threshold (NAB's optimiser: highest score; among equal scores the first, i.e.
/// the highest threshold).
pub fn optimize(rows: &[ScoredRow], window_count: usize, cost: &CostMatrix) -> ThresholdScore {
    let all = scores_by_threshold(rows, window_count, cost);
    let mut best = all[0];
    for s in &all[1..] {
        if s.score > best.score {
            best = *s;
        }
    }
    best
}

/// The score at a fixed threshold (rows with anomaly score ≥ `threshold` are detections),
/// as NAB's `scoreDataSet`.
pub fn score_at(
    rows: &[ScoredRow],
    window_count: usize,
    cost: &CostMatrix,
    threshold: f64,
) -> ThresholdScore {
    let all = scores_by_threshold(rows, window_count, cost);
    // the last row whose threshold is ≥ the asked one
    let mut chosen = all[0];
    for s in &all {
        if s.threshold >= threshold {
            chosen = *s;
        } else {
            break;
        }
    }
    ThresholdScore {
        threshold,
        ..chosen
    }
}

/// NAB's normalisation: 100 · (raw − null) / (perfect − null).
pub fn normalize(raw: f64, null: f64, perfect: f64) -> f64 {
    if perfect - null == 0.0 {
        0.0
    } else {
        100.0 * (raw - null) / (perfect - null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: CostMatrix = CostMatrix {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
        tn_weight: 1.0,
    };

    /// 100 rows (probation 15), one window at rows 40..=49.
    fn file(scores: &[(usize, f64)]) -> Vec<ScoredRow> {
        let mut s = vec![0.0; 100];
        for &(i, v) in scores {
            s[i] = v;
        }
        sweep_rows(&s, &[(40, 49)], 0, &STANDARD)
    }

    fn normalized(rows: &[ScoredRow]) -> f64 {
        let null_rows: Vec<ScoredRow> = rows
            .iter()
            .map(|r| ScoredRow {
                anomaly_score: 0.0,
                ..*r
            })
            .collect();
        let null = optimize(&null_rows, 1, &STANDARD).score;
        normalize(
            optimize(rows, 1, &STANDARD).score,
            null,
            1.0 * STANDARD.tp_weight,
        )
    }

    #[test]
    fn sigmoid_values_match_nab() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-12);
        assert!((scaled_sigmoid(-0.5) - 0.848_283_639_957_512_9).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        assert_eq!(probationary_length(100), 15);
        assert_eq!(probationary_length(22_695), 750);
    }

    #[test]
    fn perfect_detector_scores_100_and_null_scores_0() {
        assert!((normalized(&file(&[(40, 1.0)])) - 100.0).abs() < 1e-9);
        assert!(normalized(&file(&[])).abs() < 1e-12);
    }

    #[test]
    fn only_the_first_detection_in_a_window_counts() {
        let one = optimize(&file(&[(40, 1.0)]), 1, &STANDARD).score;
        let many = optimize(&file(&[(40, 1.0), (42, 1.0), (49, 1.0)]), 1, &STANDARD).score;
        assert_eq!(one, many);
        // a late detection is worth the sigmoid of its position
        let late = optimize(&file(&[(45, 1.0)]), 1, &STANDARD).score;
        let expected = scaled_sigmoid(-5.0 / 10.0) / scaled_sigmoid(-1.0);
        assert!((late - expected).abs() < 1e-12, "{late} vs {expected}");
    }

    #[test]
    fn false_positives_cost_what_the_formula_says() {
        // before any window: −fpWeight
        let rows = file(&[(40, 1.0), (20, 1.0)]);
        let s = optimize(&rows, 1, &STANDARD);
        assert!((s.score - (1.0 - 0.11)).abs() < 1e-12, "{}", s.score);
        assert_eq!((s.tp, s.fp), (1, 1));
        // after the window, at distance 5 from its right edge (width 10):
        // S(5/9) · 0.11
        let rows = file(&[(40, 1.0), (54, 1.0)]);
        let s = score_at(&rows, 1, &STANDARD, 0.5);
        let fp = scaled_sigmoid(5.0 / 9.0) * 0.11;
        assert!(
            (s.score - (1.0 + fp)).abs() < 1e-12,
            "{} vs {}",
            s.score,
            1.0 + fp
        );
        // the optimiser may prefer to raise the threshold over an FP it cannot avoid:
        // here the FP is scored 0.9, the TP 0.8 — threshold 0.8 keeps both (1 + fp > −1).
        let rows = file(&[(40, 0.8), (20, 0.9)]);
        let best = optimize(&rows, 1, &STANDARD);
        assert_eq!(best.threshold, 0.8);
    }

    #[test]
    fn missed_window_costs_fn_weight_and_probation_is_ignored() {
        let s = optimize(&file(&[(5, 1.0)]), 1, &STANDARD);
        assert_eq!(s.score, -1.0);
        // a window entirely inside the probation period is not scored at all
        let mut scores = vec![0.0; 100];
        scores[2] = 1.0;
        let rows = sweep_rows(&scores, &[(1, 5)], 0, &STANDARD);
        assert_eq!(optimize(&rows, 1, &STANDARD).score, 0.0);
    }
}
