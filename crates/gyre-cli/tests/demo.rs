//! `gyre demo` end to end: it tells the whole loop and leaves an ordinary project behind.

mod common;
use common::*;

#[test]
fn demo_runs_the_loop_and_leaves_a_project() {
    let p = Project::empty();
    let dir = p.path().join("demo");
    let out = p.run(&["demo", "--dir", dir.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for needle in [
        "Imported 48,842 rows",
        "becomes the champion",
        "Where does it fail?",
        "labels look wrong",
        "A suite named women",
        "Steering: relabel",
        "(edit 1: ",
        "Example by example",
        "McNemar",
        "as good as the champion's, within noise",
        "The gate",
        "gyre log",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The directory is an ordinary project: the journal, two runs, a champion.
    let log = std::process::Command::new(bin())
        .args(["log", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(log.status.code(), Some(0));
    let log: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| {
        e["why"]
            .as_str()
            .is_some_and(|w| w.contains("confident learning"))
    }));
    let runs = std::process::Command::new(bin())
        .args(["runs", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);
    let champion = std::process::Command::new(bin())
        .args(["show", "champion", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(champion.status.code() == Some(0), "{}", stderr(&champion));
    // The diff names what its slices measure (newly wrong answers, not an error) and explains
    // the score and why McNemar and the AUC interval can disagree.
    let runs = runs["runs"].as_array().unwrap();
    let diff = std::process::Command::new(bin())
        .args([
            "diff",
            runs[1]["run"].as_str().unwrap(),
            runs[0]["run"].as_str().unwrap(),
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let diff = stdout(&diff);
    for needle in [
        "negative-flip rate",
        "(score: SliceLine's rank",
        "why McNemar says chance",
    ] {
        assert!(diff.contains(needle), "missing {needle:?} in:\n{diff}");
    }
    assert!(!diff.contains(", error "), "{diff}");

    // --json: one object with the outcome.
    let dir2 = p.path().join("demo2");
    let out = p.run(&["demo", "--dir", dir2.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["relabelled"], 50);
    assert!(v["auc_champion"].as_f64().unwrap() > 0.92);
    // The demo refuses to overwrite a project.
    assert_error(
        &p.run(&["demo", "--dir", dir.to_str().unwrap()]),
        &["already a gyre project"],
    );
}
