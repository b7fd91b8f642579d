//! The NAB (Numenta Anomaly Benchmark) quality harness: runs the default metric detector
//! over a NAB corpus and scores it with NAB's own rules ([`scoring`]), so the detector
//! users get out of the box has a number comparable with published results.
//!
//! The corpus layout is NAB's: `data/<folder>/<file>.csv` (`timestamp,value`),
//! `labels/combined_windows.json` (`"folder/file.csv"` → `[[start, end], …]`) and
//! optionally `profiles.json` (the cost matrices; NAB's three are built in). Only files
//! that have an entry in the labels are scored, as in NAB.

pub mod scoring;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::ensemble::EnsembleConfig;
use crate::{DetectError, Detector, DetectorSpec};
use scoring::{CostMatrix, ScoredRow, ThresholdScore};

/// One data file of the corpus.
#[derive(Clone, Debug)]
pub struct DataFile {
    /// `folder/file.csv`.
    pub name: String,
    /// Timestamps as written in the file.
    pub raw_timestamps: Vec<String>,
    /// Timestamps, epoch milliseconds (the CSV's naive times read as UTC).
    pub timestamps_ms: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
    /// Labelled anomaly windows as inclusive row ranges.
    pub windows: Vec<(usize, usize)>,
}

/// A loaded NAB corpus.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Data files, sorted by name.
    pub files: Vec<DataFile>,
    /// Profiles (name → cost matrix).
    pub profiles: BTreeMap<String, CostMatrix>,
}

fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .ok()
}

#[derive(Deserialize)]
struct ProfileEntry {
    #[serde(rename = "CostMatrix")]
    cost_matrix: CostMatrix,
}

/// NAB's three profiles, used when the corpus has no `profiles.json`.
pub fn default_profiles() -> BTreeMap<String, CostMatrix> {
    let p = |fp, fnw| CostMatrix {
        tp_weight: 1.0,
        fp_weight: fp,
        fn_weight: fnw,
        tn_weight: 1.0,
    };
    BTreeMap::from([
        ("standard".to_string(), p(0.11, 1.0)),
        ("reward_low_FP_rate".to_string(), p(0.22, 1.0)),
        ("reward_low_FN_rate".to_string(), p(0.11, 2.0)),
    ])
}

impl Corpus {
    /// Loads a corpus from a NAB directory.
    pub fn load(dir: &Path) -> Result<Corpus, DetectError> {
        let labels_path = dir.join("labels").join("combined_windows.json");
        let text = std::fs::read_to_string(&labels_path).map_err(DetectError::io(&labels_path))?;
        let labels: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(&text)
            .map_err(|e| DetectError::bad_input(&labels_path, e.to_string()))?;

        let profiles_path = dir.join("profiles.json");
        let profiles = if profiles_path.exists() {
            let text =
                std::fs::read_to_string(&profiles_path).map_err(DetectError::io(&profiles_path))?;
            let entries: BTreeMap<String, ProfileEntry> = serde_json::from_str(&text)
                .map_err(|e| DetectError::bad_input(&profiles_path, e.to_string()))?;
            entries
                .into_iter()
                .map(|(k, v)| (k, v.cost_matrix))
                .collect()
        } else {
            default_profiles()
        };

        let mut files = Vec::new();
        for (name, windows) in labels {
            let path = dir.join("data").join(&name);
            if !path.exists() {
                continue;
            }
            files.push(load_file(&path, &name, &windows, &labels_path)?);
        }
        if files.is_empty() {
            return Err(DetectError::bad_input(
                dir,
                "no labelled data files found under data/",
            ));
        }
        Ok(Corpus { files, profiles })
    }

    /// Total labelled windows.
    pub fn window_count(&self) -> usize {
        self.files.iter().map(|f| f.windows.len()).sum()
    }
}

fn load_file(
    path: &Path,
    name: &str,
    windows: &[Vec<String>],
    labels_path: &Path,
) -> Result<DataFile, DetectError> {
    let text = std::fs::read_to_string(path).map_err(DetectError::io(path))?;
    let mut file = DataFile {
        name: name.to_string(),
        raw_timestamps: Vec::new(),
        timestamps_ms: Vec::new(),
        values: Vec::new(),
        windows: Vec::new(),
    };
    let mut times = Vec::new();
    for (line_no, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad =
            |what: &str| DetectError::bad_input(path, format!("line {}: {what}", line_no + 1));
        let (ts, value) = line
            .split_once(',')
            .ok_or_else(|| bad("expected timestamp,value"))?;
        let t = parse_time(ts).ok_or_else(|| bad("bad timestamp"))?;
        let v: f64 = value.trim().parse().map_err(|_| bad("bad value"))?;
        file.raw_timestamps.push(ts.trim().to_string());
        file.timestamps_ms.push(t.and_utc().timestamp_millis());
        file.values.push(v);
        times.push(t);
    }
    for w in windows {
        let [start, end] = w.as_slice() else {
            return Err(DetectError::bad_input(
                labels_path,
                format!("{name}: a window is not [start, end]"),
            ));
        };
        let (Some(start), Some(end)) = (parse_time(start), parse_time(end)) else {
            return Err(DetectError::bad_input(
                labels_path,
                format!("{name}: bad window timestamp"),
            ));
        };
        let left = times.partition_point(|t| *t < start);
        let right = times.partition_point(|t| *t <= end);
        if right > left {
            file.windows.push((left, right - 1));
        }
    }
    file.windows.sort_unstable();
    Ok(file)
}

/// Runs a fresh detector of `spec` over one file: one anomaly score per row.
pub fn detect_file(file: &DataFile, spec: &DetectorSpec) -> Vec<f64> {
    let mut detector = spec.build();
    file.timestamps_ms
        .iter()
        .zip(&file.values)
        .map(|(&t, &v)| detector.observe(t, v).score)
        .collect()
}

/// Runs the detector over every file (files spread over the available cores; results do
/// not depend on the spread).
pub fn detect_corpus(corpus: &Corpus, spec: &DetectorSpec) -> Vec<Vec<f64>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); corpus.files.len()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(&mut results);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = corpus.files.get(i) else {
                        break;
                    };
                    let scores = detect_file(file, spec);
                    if let Ok(mut guard) = out.lock() {
                        guard[i] = scores;
                    }
                }
            });
        }
    });
    results
}

/// One profile's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileScore {
    /// Normalised NAB score (null detector 0, perfect 100).
    pub score: f64,
    /// The threshold used (optimised unless one was given).
    pub threshold: f64,
    /// Raw score at that threshold.
    pub raw: f64,
    /// Raw score of the null detector.
    pub null: f64,
    /// Raw score of a perfect detector.
    pub perfect: f64,
    /// Windows with at least one detection.
    pub detected_windows: usize,
    /// Flagged rows outside windows.
    pub false_positive_rows: usize,
}

/// One file's result at the standard profile's threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileScore {
    /// `folder/file.csv`.
    pub file: String,
    /// Rows.
    pub rows: usize,
    /// Labelled windows.
    pub windows: usize,
    /// Windows detected (first detection inside the window).
    pub detected_windows: usize,
    /// Flagged rows outside windows (after the probation period).
    pub false_positive_rows: usize,
    /// Raw standard-profile score of this file.
    pub raw_standard: f64,
}

/// The benchmark result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NabReport {
    /// Standard profile.
    pub standard: ProfileScore,
    /// `reward_low_FP_rate` profile.
    pub reward_low_fp: ProfileScore,
    /// `reward_low_FN_rate` profile.
    pub reward_low_fn: ProfileScore,
    /// Per-file breakdown.
    pub files: Vec<FileScore>,
}

fn corpus_rows(corpus: &Corpus, scores: &[Vec<f64>], cost: &CostMatrix) -> Vec<ScoredRow> {
    let mut rows = Vec::new();
    let mut first_id = 0;
    for (file, s) in corpus.files.iter().zip(scores) {
        rows.extend(scoring::sweep_rows(s, &file.windows, first_id, cost));
        first_id += file.windows.len();
    }
    rows
}

fn detected(rows: &[ScoredRow], threshold: f64) -> (usize, usize) {
    let mut windows = std::collections::BTreeSet::new();
    let mut fps = 0;
    for r in rows {
        if r.anomaly_score >= threshold {
            match r.kind {
                scoring::RowKind::Window(id) => {
                    windows.insert(id);
                }
                scoring::RowKind::Outside => fps += 1,
                scoring::RowKind::Probationary => {}
            }
        }
    }
    (windows.len(), fps)
}

/// Scores one profile: optimises the threshold (or uses `threshold`) and normalises.
pub fn score_profile(
    corpus: &Corpus,
    scores: &[Vec<f64>],
    cost: &CostMatrix,
    threshold: Option<f64>,
) -> ProfileScore {
    let windows = corpus.window_count();
    let rows = corpus_rows(corpus, scores, cost);
    let chosen: ThresholdScore = match threshold {
        Some(t) => scoring::score_at(&rows, windows, cost, t),
        None => scoring::optimize(&rows, windows, cost),
    };
    let zeros: Vec<Vec<f64>> = scores.iter().map(|s| vec![0.0; s.len()]).collect();
    let null = scoring::optimize(&corpus_rows(corpus, &zeros, cost), windows, cost).score;
    let perfect = windows as f64 * cost.tp_weight;
    let (detected_windows, false_positive_rows) = detected(&rows, chosen.threshold);
    ProfileScore {
        score: scoring::normalize(chosen.score, null, perfect),
        threshold: chosen.threshold,
        raw: chosen.score,
        null,
        perfect,
        detected_windows,
        false_positive_rows,
    }
}

/// Scores a corpus given per-file anomaly scores.
pub fn score_corpus(
    corpus: &Corpus,
    scores: &[Vec<f64>],
    threshold: Option<f64>,
) -> Result<NabReport, DetectError> {
    let profile = |name: &str| {
        corpus
            .profiles
            .get(name)
            .copied()
            .or_else(|| default_profiles().get(name).copied())
            .ok_or_else(|| DetectError::InvalidConfig(format!("no NAB profile {name}")))
    };
    let standard_cost = profile("standard")?;
    let standard = score_profile(corpus, scores, &standard_cost, threshold);
    let reward_low_fp = score_profile(corpus, scores, &profile("reward_low_FP_rate")?, threshold);
    let reward_low_fn = score_profile(corpus, scores, &profile("reward_low_FN_rate")?, threshold);
    let mut files = Vec::new();
    let mut first_id = 0;
    for (file, s) in corpus.files.iter().zip(scores) {
        let rows = scoring::sweep_rows(s, &file.windows, first_id, &standard_cost);
        let at = scoring::score_at(
            &rows,
            first_id + file.windows.len(),
            &standard_cost,
            standard.threshold,
        );
        let (detected_windows, false_positive_rows) = detected(&rows, standard.threshold);
        files.push(FileScore {
            file: file.name.clone(),
            rows: file.values.len(),
            windows: file.windows.len(),
            detected_windows,
            false_positive_rows,
            raw_standard: at.score,
        });
        first_id += file.windows.len();
    }
    Ok(NabReport {
        standard,
        reward_low_fp,
        reward_low_fn,
        files,
    })
}

/// Writes one NAB results CSV per file (`timestamp,value,anomaly_score,label`) under
/// `dir/<folder>/sightline_<file>.csv`, NAB's `results/<detector>/` layout.
pub fn write_results(
    dir: &Path,
    corpus: &Corpus,
    scores: &[Vec<f64>],
) -> Result<Vec<PathBuf>, DetectError> {
    let mut written = Vec::new();
    for (file, s) in corpus.files.iter().zip(scores) {
        let rel = Path::new(&file.name);
        let folder = rel.parent().unwrap_or(Path::new(""));
        let fname = rel
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("file.csv");
        let out_dir = dir.join(folder);
        std::fs::create_dir_all(&out_dir).map_err(DetectError::io(&out_dir))?;
        let path = out_dir.join(format!("sightline_{fname}"));
        let mut text = String::from("timestamp,value,anomaly_score,label\n");
        let mut w = 0;
        for (i, ((ts, v), score)) in file
            .raw_timestamps
            .iter()
            .zip(&file.values)
            .zip(s)
            .enumerate()
        {
            while w < file.windows.len() && file.windows[w].1 < i {
                w += 1;
            }
            let label = u8::from(file.windows.get(w).is_some_and(|&(l, r)| l <= i && i <= r));
            text.push_str(&format!("{ts},{v},{score},{label}\n"));
        }
        std::fs::write(&path, text).map_err(DetectError::io(&path))?;
        written.push(path);
    }
    Ok(written)
}

/// Loads, detects with the default ensemble and scores in one call (what
/// `sightline bench nab` runs).
pub fn run(
    dir: &Path,
    threshold: Option<f64>,
    results_dir: Option<&Path>,
) -> Result<NabReport, DetectError> {
    run_with(dir, &EnsembleConfig::default(), threshold, results_dir)
}

/// [`run`] with a given ensemble configuration.
pub fn run_with(
    dir: &Path,
    config: &EnsembleConfig,
    threshold: Option<f64>,
    results_dir: Option<&Path>,
) -> Result<NabReport, DetectError> {
    run_spec(
        dir,
        &DetectorSpec::Ensemble(config.clone()),
        threshold,
        results_dir,
    )
}

/// [`run`] with any detector (to compare the building blocks with the ensemble).
pub fn run_spec(
    dir: &Path,
    spec: &DetectorSpec,
    threshold: Option<f64>,
    results_dir: Option<&Path>,
) -> Result<NabReport, DetectError> {
    let corpus = Corpus::load(dir)?;
    let scores = detect_corpus(&corpus, spec);
    if let Some(out) = results_dir {
        write_results(out, &corpus, &scores)?;
    }
    score_corpus(&corpus, &scores, threshold)
}

impl std::fmt::Display for NabReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "NAB benchmark (default detector)")?;
        for (name, p) in [
            ("standard", &self.standard),
            ("reward_low_FP_rate", &self.reward_low_fp),
            ("reward_low_FN_rate", &self.reward_low_fn),
        ] {
            writeln!(
                f,
                "  {name:20} {:6.2}  (threshold {:.4}, raw {:.3}, windows detected {}, false-positive rows {})",
                p.score, p.threshold, p.raw, p.detected_windows, p.false_positive_rows
            )?;
        }
        let windows: usize = self.files.iter().map(|x| x.windows).sum();
        writeln!(f, "  files {}, windows {windows}", self.files.len())?;
        for x in &self.files {
            writeln!(
                f,
                "    {:58} windows {}/{}  fp rows {:3}  raw {:+.3}",
                x.file, x.detected_windows, x.windows, x.false_positive_rows, x.raw_standard
            )?;
        }
        Ok(())
    }
}
