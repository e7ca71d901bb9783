//! "Why this prediction": `gyre why ROW` breaks the champion's score into feature
//! contributions (TreeSHAP) that add up to it, and `gyre show` lists global importance.

mod common;
use common::*;

fn train(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    p.json(&all)["run"].as_str().unwrap().to_string()
}

/// base + contributions = raw score, and the raw score's sigmoid is the stated probability.
fn check_adds_up(e: &serde_json::Value) {
    let features = e["features"].as_array().unwrap();
    assert_eq!(features.len(), 14, "every feature of Adult: {e}");
    let sum: f64 = features
        .iter()
        .map(|f| f["contribution"].as_f64().unwrap())
        .sum();
    let (base, raw) = (
        e["base"].as_f64().unwrap(),
        e["raw_score"].as_f64().unwrap(),
    );
    assert!((base + sum - raw).abs() < 1e-9, "{base} + {sum} != {raw}");
    let magnitudes: Vec<f64> = features
        .iter()
        .map(|f| f["contribution"].as_f64().unwrap().abs())
        .collect();
    assert!(magnitudes.windows(2).all(|w| w[0] >= w[1]), "largest first");
    let positive = 1.0 / (1.0 + (-raw).exp());
    let p = e["probability"].as_f64().unwrap();
    let said = if e["prediction"] == ">50K" {
        positive
    } else {
        1.0 - positive
    };
    assert!(
        (p - said).abs() < 1e-9,
        "probability {p}, from the raw score {said}"
    );
    assert_eq!(e["class"], ">50K");
    assert_eq!(e["scale"], "log-odds");
}

#[test]
fn why_breaks_the_champions_score_into_contributions_that_add_up() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, &["-p", "num_iterations=30"]);
    p.json(&["promote", &run, "--why", "explain it"]);

    // A holdout row: its explanation agrees with the prediction stored for it.
    let w = p.json(&["why", "32561"]);
    let e = &w["explanation"];
    assert_eq!(e["run"], run.as_str());
    check_adds_up(e);
    assert_eq!(e["prediction"], w["predictions"][0]["prediction"]);
    let age = e["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "age")
        .unwrap();
    assert_eq!(age["value"], "25");

    // A training row, with a missing value: the model and the row's features are enough.
    let t = p.json(&["why", "14"]);
    assert_eq!(t["split"], "train");
    check_adds_up(&t["explanation"]);
    let text = stdout(&p.run(&["why", "14"]));
    assert!(text.contains("log-odds of >50K"), "{text}");
    assert!(text.contains("--json lists every one"), "{text}");

    // A learner without contributions: asked for, an error naming it; by default, a note.
    let linear = train(&p, &["--learner", "linear"]);
    assert_error(
        &p.run(&["why", "32561", "--run", &linear]),
        &["linear model gives no contributions"],
    );
    p.json(&["promote", &linear, "--why", "try linear", "--force"]);
    let w = p.json(&["why", "32561"]);
    assert!(w.get("explanation").is_none(), "{w}");
    assert!(
        w["explanation_note"]
            .as_str()
            .unwrap()
            .contains("no contributions"),
        "{w}"
    );
}

#[test]
fn show_lists_importance_over_a_fixed_sample_of_the_holdout() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, &["-p", "num_iterations=30"]);
    let s = p.json(&["show", &run]);
    assert_eq!(s["run"], run.as_str(), "the run's report is still there");
    let i = &s["importance"];
    assert_eq!(i["rows"], 2000);
    assert_eq!(i["holdout_rows"], 16281);
    assert_eq!(i["sample_seed"], 20);
    let values: Vec<f64> = i["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["mean_abs_contribution"].as_f64().unwrap())
        .collect();
    assert_eq!(values.len(), 14);
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "largest first");
    assert!(values[0] > 0.1, "{i}");
    assert_eq!(p.json(&["show", &run])["importance"], *i, "the same sample");
    let text = stdout(&p.run(&["show", &run]));
    assert!(
        text.contains("over a sample of 2,000 of the 16,281 holdout rows (seed 20)"),
        "{text}"
    );
}
