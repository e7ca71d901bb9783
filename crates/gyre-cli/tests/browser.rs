//! `gyre ui` in a real browser: Debian's chromium driven by Playwright for Python
//! (`tests/browser/ui_e2e.py`). Every page loads without a script error, the plots hold the
//! run's data, back and forward work, ten label suspects are decided with the keyboard and
//! become edits, and promotion from the diff page respects the gate. Needs `chromium` and
//! Playwright for Python; without them the test says so (and fails under
//! GYRE_REQUIRE_SERVICES=1, as in CI).

mod common;
use common::*;

fn browser_available() -> bool {
    let chromium = std::env::var("GYRE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    std::path::Path::new(&chromium).is_file()
        && std::process::Command::new("python3")
            .args(["-c", "import playwright.sync_api"])
            .output()
            .is_ok_and(|o| o.status.success())
}

#[test]
fn the_ui_works_in_a_real_browser() {
    if !require(
        "a browser (chromium and Playwright for Python)",
        browser_available(),
    ) {
        return;
    }
    let p = Project::new();
    p.import_adult();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "-p", "num_iterations=40"];
        args.extend_from_slice(extra);
        p.json(&args)["run"].as_str().unwrap().to_string()
    };
    let base = train(&[]);
    p.json(&["promote", &base, "--why", "first model"]);
    let worse = train(&["-p", "num_leaves=3"]);
    // The same recipe again: the same predictions, so it passes the gate.
    let same = train(&[]);
    let versions_before = p.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .len();

    let (_server, addr, _) = spawn_ready(&p, &["ui", "--addr", "127.0.0.1:0", "--json"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui_e2e.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([&addr, &base, &worse, &same])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    // What the browser did is in the project, as the CLI sees it.
    let versions = p.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .clone();
    assert!(versions.len() > versions_before, "the review made edits");
    for v in &versions[versions_before..] {
        assert_eq!(v["why"], "checked the census forms for these rows");
    }
    let aliases = p.json(&["aliases"]);
    assert_eq!(aliases["aliases"][0]["run"].as_str(), Some(same.as_str()));
    let log = p.json(&["log"]);
    let commands: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["command"].as_str().unwrap())
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("gyre ui: label review"))
    );
    assert!(commands.iter().any(|c| c.starts_with("gyre ui: promote")));
}
