//! `gyre diff`, `gate`, `promote`, `rollback`, `aliases` through the real binary on Adult.

mod common;
use common::*;

/// Adult with a women suite, a champion trained on everything, and a challenger trained after
/// excluding women from training (a harmful edit).
fn harmful_setup() -> (Project, String, String) {
    let p = Project::new();
    p.import_adult();
    p.json(&["suite", "add", "women", "--where", "sex = 'Female'"]);
    let champ = p.json(&["train", "-p", "num_iterations=60"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&["promote", &champ, "--why", "first model"]);
    p.json(&[
        "edit",
        "exclude",
        "--where",
        "sex = 'Female'",
        "--why",
        "see what happens without women",
    ]);
    let cand = p.json(&["train", "-p", "num_iterations=60"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    (p, champ, cand)
}

fn predictions(p: &Project, run: &str) -> Vec<(String, String)> {
    let out = p.path().join(format!("{run}.csv"));
    p.json(&["predictions", run, "--out", out.to_str().unwrap()]);
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[1].to_string(), c[2].to_string())
        })
        .collect()
}

#[test]
fn diff_agrees_with_an_independent_count_and_the_gate_names_the_suite() {
    let (p, champ, cand) = harmful_setup();
    let d = p.json(&["diff", "champion", &cand]);
    assert_eq!(d["base"], champ.as_str());
    // Independent: flips and McNemar from the exported predictions.
    let a = predictions(&p, &champ);
    let b = predictions(&p, &cand);
    assert_eq!(a.len(), b.len());
    let (mut neg, mut pos) = (0u64, 0u64);
    for ((la, pa), (lb, pb)) in a.iter().zip(&b) {
        assert_eq!(la, lb);
        match (pa == la, pb == lb) {
            (true, false) => neg += 1,
            (false, true) => pos += 1,
            _ => {}
        }
    }
    assert_eq!(d["flips"]["negative"], neg);
    assert_eq!(d["flips"]["positive"], pos);
    let n = neg + pos;
    let k = neg.min(pos);
    // P(X <= k), X ~ Bin(n, 1/2), by the recurrence C(n, i+1) = C(n, i) (n - i) / (i + 1).
    let mut term = 0.5f64.powi(n as i32);
    let mut tail = 0.0;
    for i in 0..=k {
        tail += term;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    let p_value = (2.0 * tail).min(1.0);
    let got = d["mcnemar_p"].as_f64().unwrap();
    assert!(
        (got - p_value).abs() <= 1e-12 * p_value.max(1e-300),
        "{got} vs {p_value}"
    );

    // The same seed gives the same intervals.
    let again = p.json(&["diff", "champion", &cand]);
    assert_eq!(d["metrics"], again["metrics"]);
    let auc = &d["metrics"]["auc"];
    let (lo, hi) = (
        auc["ci95"][0].as_f64().unwrap(),
        auc["ci95"][1].as_f64().unwrap(),
    );
    assert!(lo <= auc["delta"].as_f64().unwrap() && auc["delta"].as_f64().unwrap() <= hi);
    assert!(!d["regressed_slices"].as_array().unwrap().is_empty());

    // The gate fails and names the suite; promote refuses; nothing moves.
    let out = p.run(&["gate", &cand, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["passed"], false);
    let failed: Vec<String> = g["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        failed.iter().any(|n| n.contains("suite women")),
        "{failed:?}"
    );
    let out = p.run(&["promote", &cand, "--why", "try"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(p.json(&["show", "champion"])["run"], champ.as_str());
}

#[test]
fn promotion_history_survives_and_rollback_moves_back() {
    let (p, champ, cand) = harmful_setup();
    let r = p.json(&["promote", &cand, "--force", "--why", "the business asked"]);
    assert_eq!(r["forced"], true);
    assert_eq!(p.json(&["show", "champion"])["run"], cand.as_str());
    let back = p.json(&["rollback", "--why", "women got worse"]);
    assert_eq!(back["run"], champ.as_str());
    // A new process reads the same, complete history.
    let a = p.json(&["aliases"]);
    let h = a["aliases"][0]["history"].as_array().unwrap();
    assert_eq!(a["aliases"][0]["alias"], "champion");
    assert_eq!(h.len(), 3);
    assert_eq!(h[1]["forced"], true);
    assert_eq!(h[1]["who"], "tester");
    assert_eq!(h[2]["action"], "rollback");
    assert_eq!(h[2]["why"], "women got worse");
    assert_eq!(h[2]["previous"], cand.as_str());
    // Any alias name works.
    p.json(&[
        "promote",
        &cand,
        "--alias",
        "challenger",
        "--force",
        "--why",
        "for the A/B",
    ]);
    assert_eq!(p.json(&["show", "challenger"])["run"], cand.as_str());
}

#[test]
fn bad_references_and_policies() {
    let (p, champ, _cand) = harmful_setup();
    let typo = format!("{}z", &champ[..11]);
    assert_error(
        &p.run(&["diff", &typo, "latest"]),
        &["not found", "did you mean"],
    );
    assert_error(
        &p.run(&["diff", "champion", &champ]),
        &["two different runs"],
    );
    assert_error(&p.run(&["promote", "latest"]), &["--why"]);
    let q = Project::new();
    q.import_adult();
    let run = q.json(&["train", "-p", "num_iterations=5"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(&q.run(&["rollback", "--why", "x"]), &["never set"]);
    q.json(&["promote", &run, "--why", "first"]);
    assert_error(&q.run(&["rollback", "--why", "x"]), &["no previous run"]);
    // A malformed [gate] section names the key; nothing moves.
    let cfg = p.path().join("gyre.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "max_negative_flip_rate = 0.05",
            "max_negative_flip_rate = \"5%\"",
        ),
    )
    .unwrap();
    assert_error(&p.run(&["gate", "latest"]), &["max_negative_flip_rate"]);
    let before = p.snapshot();
    assert_error(
        &p.run(&["promote", "latest", "--why", "x"]),
        &["max_negative_flip_rate"],
    );
    assert_eq!(p.snapshot(), before);
}
