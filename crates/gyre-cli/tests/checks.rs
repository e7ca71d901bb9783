//! Data checks of every `gyre train` (issue 20): skew between the training and holdout rows
//! (a month never trained on, an unseen category, numbers beyond the training range) and
//! features that leak the label, each a finding with counts and a pasteable predicate.

mod common;
use common::*;

/// A year of daily rows (fixed pseudo-random values, seed 11): `day` a timestamp, `shop` a
/// category (shop "new" opens in December only), `amount` a number that grows over the year,
/// `label` yes/no, and `refund` a column recorded after the label (it equals it).
fn year_csv(p: &Project) -> std::path::PathBuf {
    let mut rng = Lcg::new(11);
    let mut next = || rng.next_f64();
    let mut text = String::from("day,shop,amount,label,refund\n");
    let days_in = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    for (m, &days) in days_in.iter().enumerate() {
        for d in 1..=days {
            for k in 0..4 {
                let shop = if m == 11 && k == 0 {
                    "new"
                } else {
                    ["a", "b", "c"][k % 3]
                };
                let amount = (m as f64 + 1.0) * 10.0 + next() * 5.0;
                let label = if next() < 0.3 + 0.02 * m as f64 {
                    "yes"
                } else {
                    "no"
                };
                text.push_str(&format!(
                    "2025-{:02}-{d:02}T{:02}:00,{shop},{amount:.2},{label},{label}\n",
                    m + 1,
                    6 + 3 * k
                ));
            }
        }
    }
    p.write("year.csv", text.as_bytes())
}

#[test]
fn skew_and_leaks_become_findings_with_pasteable_predicates() {
    let p = Project::new();
    let file = year_csv(&p);
    p.json(&[
        "import",
        file.to_str().unwrap(),
        "--target",
        "label",
        "--time-column",
        "day",
        "--holdout",
        "0.2",
    ]);
    p.json(&[
        "edit",
        "add-feature",
        "month",
        "--expr",
        "EXTRACT(month FROM day)",
        "--why",
        "seasons",
    ]);
    let t = p.json(&["train", "-p", "num_iterations=10"]);
    let skew = t["checks"]["skew"].as_array().unwrap();
    let of = |c: &str| skew.iter().find(|s| s["column"] == c);
    // The latest 20% of the year: mid-October to December; November and December never trained.
    let month = of("month").unwrap_or_else(|| panic!("no month skew: {}", t["checks"]));
    assert_eq!(month["what"], "unseen values");
    assert_eq!(month["predicate"], "month IN (11, 12)");
    assert_eq!(month["rows"], (30 + 31) * 4);
    let shop = of("shop").unwrap();
    assert_eq!(shop["what"], "unseen categories");
    assert_eq!(shop["predicate"], "shop IN ('new')");
    assert_eq!(shop["rows"], 31);
    let amount = of("amount").unwrap();
    assert_eq!(amount["what"], "out of range");
    assert!(
        amount["predicate"]
            .as_str()
            .unwrap()
            .starts_with("amount > 10"),
        "{amount}"
    );
    // The column recorded after the label leaks it.
    let leaks = t["checks"]["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0]["column"], "refund");
    // Each is a finding whose predicate pastes into a suite.
    let f = p.json(&["findings"]);
    let findings = f["findings"].as_array().unwrap();
    let skews: Vec<&serde_json::Value> = findings.iter().filter(|f| f["kind"] == "skew").collect();
    assert_eq!(skews.len(), 3, "{f}");
    assert!(findings.iter().any(|f| f["kind"] == "leak"));
    p.json(&[
        "suite",
        "add",
        "unseen_months",
        "--where",
        month["predicate"].as_str().unwrap(),
    ]);
    // Dropping the leak fixes its finding on the next run; the skew stays open.
    p.json(&[
        "edit",
        "drop-feature",
        "refund",
        "--why",
        "recorded after the label",
    ]);
    let t2 = p.json(&["train", "-p", "num_iterations=10"]);
    assert!(t2["checks"]["leaks"].as_array().unwrap().is_empty());
    let f = p.json(&["findings"]);
    let leak = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "leak")
        .unwrap();
    assert_eq!(leak["state"], "fixed");
    let text = stdout(&p.run(&["train", "-p", "num_iterations=10"]));
    assert!(
        text.contains("month values never seen in training (12, 11)"),
        "{text}"
    );
}
