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
