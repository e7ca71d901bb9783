//! `gyre label-issues` on generated data with planted label noise, its cache, and bad input.

mod common;
use common::*;

#[test]
fn planted_label_noise_is_found() {
    // y = (x1 + x2 > 1) with three classes by thirds of x1 + x2; then 4% of labels flipped.
    let p = Project::new();
    let mut csv = String::from("x1,x2,noise,y\n");
    let mut rng = Lcg::new(11);
    let mut next = || rng.next_f64();
    let mut flipped = Vec::new();
    for i in 0..3000u64 {
        let (a, b, c) = (next(), next(), next());
        let t = ((a + b) / 2.0 * 3.0).floor().min(2.0) as usize;
        let y = if next() < 0.04 {
            flipped.push(i);
            (t + 1 + (next() * 2.0) as usize) % 3
        } else {
            t
        };
        csv.push_str(&format!("{a},{b},{c},c{y}\n"));
    }
    let f = p.write("noisy.csv", csv.as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.2",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=60"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let r = p.json(&["label-issues", &run]);
    assert_eq!(r["cached"], false);
    assert_eq!(r["reliable"], true, "{}", r["reason"]);
    let found: Vec<u64> = r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["row"].as_u64().unwrap())
        .collect();
    // Only training rows are checked; count the planted flips among them.
    let data = p.json(&["data", "--version", r["version"].as_str().unwrap()]);
    assert_eq!(r["rows"], data["training_rows"]);
    let hits = found.iter().filter(|x| flipped.contains(x)).count() as f64;
    let precision = hits / found.len() as f64;
    let flipped_in_train = flipped.len() as f64 * 0.8;
    let recall = hits / flipped_in_train;
    assert!(precision > 0.6, "precision {precision}");
    assert!(
        recall > 0.6,
        "recall {recall} (hits {hits} of about {flipped_in_train})"
    );
    // The second call reads the cached fold predictions and agrees.
    let again = p.json(&["label-issues", &run, "--top", "5"]);
    assert_eq!(again["cached"], true);
    assert_eq!(again["issues"].as_array().unwrap().len(), 5);
    assert_eq!(again["issues"][0], r["issues"][0]);
    assert_error(
        &p.run(&["label-issues", &run, "--folds", "1"]),
        &["--folds must be at least 2"],
    );
}

/// Issue 20: features that say almost nothing about clean labels. Confident learning still
/// flags rows (the ones the weak model is unsure of); the result says it is not reliable and
/// why, lists rows only when asked, and opens no finding.
#[test]
fn a_weak_model_on_clean_labels_is_not_reliable() {
    let p = Project::new();
    let mut csv = String::from("x,noise,y\n");
    let mut rng = Lcg::new(41);
    let mut next = || rng.next_f64();
    for _ in 0..3000 {
        let (x, noise) = (next(), next());
        // Labels are what they are (no flips); x moves the odds only from 0.45 to 0.55.
        let y = next() < 0.45 + 0.1 * x;
        csv.push_str(&format!("{x},{noise},{}\n", if y { "yes" } else { "no" }));
    }
    let f = p.write("weak.csv", csv.as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.2",
        "--seed",
        "5",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=30"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let r = p.json(&["label-issues", &run]);
    assert_eq!(r["reliable"], false, "{r}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("AUC") && reason.contains("below 0.75"),
        "{reason}"
    );
    assert!(r["oof_quality"]["value"].as_f64().unwrap() < 0.75);
    assert!(r["flagged"].as_u64().unwrap() > 0);
    assert!(r["expected_issues"].as_f64().unwrap() > 0.0);
    assert!(r["issues"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["findings"]["new"], serde_json::json!([]));
    let findings = p.json(&["findings"]);
    assert!(
        findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "label-issues"),
        "{findings}"
    );
    // --top still lists the least likely labels, and the words say what they likely are.
    let top = p.json(&["label-issues", &run, "--top", "3"]);
    assert_eq!(top["issues"].as_array().unwrap().len(), 3);
    let text = stdout(&p.run(&["label-issues", &run, "--top", "3"]));
    assert!(
        text.contains("not reliable: the out-of-fold model separates the classes weakly")
            && text.contains("likely hard rows"),
        "{text}"
    );
}

/// Issue 20: Adult with 3% of its training labels flipped (seeded) is a reliable result, and
/// the flips are found as well as BENCHMARKS.md reports (precision 0.255, recall 0.753 there,
/// with numpy's flips).
#[test]
fn adult_with_planted_flips_is_reliable() {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap()),
        &mut text,
    )
    .unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let train: Vec<usize> = (1..lines.len())
        .filter(|&i| lines[i].ends_with(",train"))
        .collect();
    let mut rng = 77u64;
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < train.len() * 3 / 100 {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        chosen.insert(train[(rng >> 33) as usize % train.len()]);
    }
    for &i in &chosen {
        let l = &lines[i];
        lines[i] = if l.contains(",>50K,") {
            l.replace(",>50K,", ",<=50K,")
        } else {
            l.replace(",<=50K,", ",>50K,")
        };
    }
    let p = Project::new();
    let f = p.write("noisy-adult.csv", (lines.join("\n") + "\n").as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "income",
        "--split-column",
        "split",
    ]);
    let run = p.json(&[
        "train",
        "-p",
        "num_iterations=200",
        "-p",
        "learning_rate=0.05",
    ])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let r = p.json(&["label-issues", &run]);
    assert_eq!(r["reliable"], true, "{}", r["reason"]);
    assert!(r["reason"].is_null());
    // Row ids are file order (0-based data rows), so a flipped line i is row i - 1.
    let planted: std::collections::BTreeSet<u64> = chosen.iter().map(|&i| i as u64 - 1).collect();
    let found: Vec<u64> = r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["row"].as_u64().unwrap())
        .collect();
    assert_eq!(found.len() as u64, r["flagged"].as_u64().unwrap());
    let hits = found.iter().filter(|x| planted.contains(x)).count() as f64;
    let (precision, recall) = (hits / found.len() as f64, hits / planted.len() as f64);
    assert!(
        precision > 0.23 && recall > 0.72,
        "precision {precision}, recall {recall}"
    );
    assert!(!r["findings"]["new"].as_array().unwrap().is_empty());
}

#[test]
fn regression_runs_have_no_label_issues() {
    let p = Project::new();
    let csv: String = std::iter::once("x,y\n".to_string())
        .chain((0..200).map(|i| format!("{i},{}.5\n", i * 3)))
        .collect();
    let f = p.write("r.csv", csv.as_bytes());
    p.json(&["import", f.to_str().unwrap(), "--target", "y"]);
    p.json(&[
        "train",
        "-p",
        "num_iterations=5",
        "-p",
        "min_data_in_leaf=5",
    ]);
    assert_error(
        &p.run(&["label-issues", "latest"]),
        &["regression", "classes"],
    );
}

#[test]
fn findings_open_link_edits_and_close_when_a_run_no_longer_fails() {
    // Labels follow x, except inside a = 'a2' AND b = 'b1', where they are coin flips.
    let p = Project::new();
    let f = p.write("f.csv", planted_slice_csv().as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.5",
        "--seed",
        "2",
    ]);
    let t = p.json(&["train", "-p", "num_iterations=40"]);
    assert!(!t["findings"]["new"].as_array().unwrap().is_empty());
    let findings = p.json(&["findings"]);
    let slice = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["detail"]["predicate"] == "a = 'a2' AND b = 'b1'")
        .expect("the planted slice is a finding")
        .clone();
    let id = slice["id"].to_string();
    assert_eq!(slice["state"], "open");
    assert_error(&p.run(&["finding", "fix", &id]), &["--why"]);
    p.json(&["finding", "fix", &id, "--why", "the labels there are wrong"]);
    let e = p.json(&[
        "edit",
        "relabel",
        "--where",
        "a = 'a2' AND b = 'b1' AND x > 0.5",
        "--to",
        "yes",
        "--why",
        "ground truth from the source system",
    ]);
    p.json(&[
        "edit",
        "relabel",
        "--where",
        "a = 'a2' AND b = 'b1' AND x <= 0.5",
        "--to",
        "no",
        "--why",
        "ground truth from the source system",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=40"]);
    let after = p.json(&["findings"]);
    let f = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == slice["id"])
        .unwrap()
        .clone();
    assert_eq!(f["state"], "fixed", "{f}");
    assert_eq!(f["fixed_by"], run["run"]);
    assert_eq!(f["edits"][0], e["edit"]);
    assert_error(
        &p.run(&["finding", "accept", &id, "--why", "x"]),
        &["already fixed"],
    );
    assert_error(
        &p.run(&["finding", "accept", "999", "--why", "x"]),
        &["does not exist"],
    );
    // Accepting another one is recorded in the journal with its reason.
    let other = after["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["state"] == "open");
    if let Some(o) = other {
        p.json(&[
            "finding",
            "accept",
            &o["id"].to_string(),
            "--why",
            "rare, and costly to fix",
        ]);
        let log = p.json(&["log"]);
        assert!(
            log["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["why"] == "rare, and costly to fix")
        );
    }
}
