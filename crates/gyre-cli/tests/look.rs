//! `gyre label-issues` on generated data with planted label noise, its cache, and bad input.

mod common;
use common::*;

#[test]
fn planted_label_noise_is_found() {
    // y = (x1 + x2 > 1) with three classes by thirds of x1 + x2; then 4% of labels flipped.
    let p = Project::new();
    let mut csv = String::from("x1,x2,noise,y\n");
    let mut s: u64 = 11;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as f64 / (1u64 << 31) as f64
    };
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
    let mut csv = String::from("a,b,x,y\n");
    let mut s: u64 = 21;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    for _ in 0..6000 {
        let (a, b) = (next() % 4, next() % 3);
        let x = (next() % 1000) as f64 / 1000.0;
        let y = if a == 2 && b == 1 {
            next() % 2 == 0
        } else {
            x > 0.5
        };
        csv.push_str(&format!("a{a},b{b},{x},{}\n", if y { "yes" } else { "no" }));
    }
    let f = p.write("f.csv", csv.as_bytes());
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
