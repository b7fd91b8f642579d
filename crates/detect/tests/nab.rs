//! The NAB harness end to end on a tiny corpus written to a temporary directory: loading,
//! window mapping, normalisation (perfect = 100, null = 0) and the results files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sightline_detect::nab::{self, Corpus};

fn corpus_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").join("folder");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(dir.path().join("labels")).unwrap();
    let mut csv = String::from("timestamp,value\n");
    for i in 0..200 {
        csv.push_str(&format!(
            "2014-04-01 {:02}:{:02}:00,{}\n",
            i / 60,
            i % 60,
            i % 7
        ));
    }
    std::fs::write(data.join("a.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("labels").join("combined_windows.json"),
        r#"{"folder/a.csv": [["2014-04-01 01:40:00.000000", "2014-04-01 01:59:00.000000"]],
            "folder/missing.csv": []}"#,
    )
    .unwrap();
    dir
}

#[test]
fn loads_windows_as_row_ranges_and_normalises() {
    let dir = corpus_dir();
    let corpus = Corpus::load(dir.path()).unwrap();
    assert_eq!(corpus.files.len(), 1);
    assert_eq!(corpus.files[0].windows, vec![(100, 119)]);
    assert_eq!(corpus.profiles.len(), 3);

    let mut perfect = vec![0.0; 200];
    perfect[100] = 1.0;
    let report = nab::score_corpus(&corpus, &[perfect], None).unwrap();
    assert!((report.standard.score - 100.0).abs() < 1e-9);
    assert!((report.reward_low_fn.score - 100.0).abs() < 1e-9);
    assert_eq!(report.standard.detected_windows, 1);

    let null = nab::score_corpus(&corpus, &[vec![0.0; 200]], None).unwrap();
    assert!(null.standard.score.abs() < 1e-9);
    assert_eq!(null.standard.null, -1.0);

    // one extra false positive before the window costs fpWeight: (1 − 0.11 + 1) / 2
    let mut one_fp = vec![0.0; 200];
    one_fp[100] = 1.0;
    one_fp[50] = 1.0;
    let r = nab::score_corpus(&corpus, &[one_fp], Some(0.5)).unwrap();
    assert!(
        (r.standard.score - 100.0 * (1.0 - 0.11 + 1.0) / 2.0).abs() < 1e-9,
        "{}",
        r.standard.score
    );
}

#[test]
fn writes_nab_results_files() {
    let dir = corpus_dir();
    let out = tempfile::tempdir().unwrap();
    let report = nab::run(dir.path(), None, Some(out.path())).unwrap();
    assert_eq!(report.files.len(), 1);
    let text = std::fs::read_to_string(out.path().join("folder").join("sightline_a.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,value,anomaly_score,label");
    assert_eq!(lines.len(), 201);
    assert!(lines[101].ends_with(",1") && lines[100].ends_with(",0"));
    let json = serde_json::to_value(&report).unwrap();
    for key in ["standard", "reward_low_fp", "reward_low_fn", "files"] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
}
