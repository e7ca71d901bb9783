//! `gyre sweep` on the local executor: successive halving, finished trials as runs tagged with
//! the sweep, the ranking, a sweep answered from the store when run again, and its errors.

mod common;
use common::*;

#[test]
fn a_sweep_halves_its_trials_and_finishes_the_best_as_runs() {
    let p = Project::new();
    p.import_adult();
    let args = [
        "sweep",
        "-p",
        "num_leaves=7,15,31",
        "-p",
        "learning_rate=0.05..0.3:log",
        "-p",
        "num_iterations=27",
        "--trials",
        "7",
    ];
    let r = p.json(&args);
    let sweep = &r["sweep"];
    // Rungs at 1, 3 and 9 trees (27 / 3^k), keeping the best third (never fewer than two).
    let rungs: Vec<(u64, usize)> = sweep["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["budget"].as_u64().unwrap(),
                g["scores"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(rungs, vec![(1, 7), (3, 3), (9, 2)]);
    assert_eq!(sweep["units"], 7 + 3 + 2 + 2);
    let trials = sweep["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 7);
    let finished: Vec<&serde_json::Value> = trials
        .iter()
        .filter(|t| t["runs"].as_array().is_some_and(|r| !r.is_empty()))
        .collect();
    assert_eq!(finished.len(), 2);
    assert_eq!(
        trials.iter().filter(|t| t["stopped_at"].is_u64()).count(),
        5
    );
    // The rung's two best went on: each finished trial led its rung.
    let last = &sweep["rungs"][2]["scores"];
    for t in &finished {
        assert!(
            last.as_array()
                .unwrap()
                .iter()
                .any(|s| s["trial"] == t["trial"])
        );
    }
    // The ranking: the finished trials by holdout AUC, each with its interval around it.
    let ranking = r["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 2);
    assert!(ranking[0]["metric"].as_f64() >= ranking[1]["metric"].as_f64());
    for t in ranking {
        let (m, ci) = (t["metric"].as_f64().unwrap(), &t["ci95"]);
        assert!(
            ci[0].as_f64().unwrap() <= m && m <= ci[1].as_f64().unwrap(),
            "{t}"
        );
        // Each is an ordinary run, fit at the full budget and tagged with its sweep.
        let run = t["runs"][0].as_str().unwrap();
        let shown = p.json(&["show", run]);
        assert_eq!(shown["sweep"], sweep["id"]);
        assert_eq!(shown["params"]["num_iterations"], 27, "{shown}");
    }
    let b = &r["best_vs_runner_up"];
    assert_eq!(b["best"], ranking[0]["trial"]);
    let (lo, hi) = (
        b["delta"]["ci95"][0].as_f64().unwrap(),
        b["delta"]["ci95"][1].as_f64().unwrap(),
    );
    assert_eq!(b["distinguishable"], lo > 0.0 || hi < 0.0);

    // Run again: answered from the store, nothing fit or recorded again.
    let runs = run_count(&p);
    let again = p.json(&args);
    assert_eq!(again["already"], true);
    assert_eq!(again["sweep"]["id"], sweep["id"]);
    assert_eq!(run_count(&p), runs);
    let shown = p.json(&["sweep", "show", "latest"]);
    assert_eq!(shown["ranking"], r["ranking"]);
    let out = p.run(&["sweep", "show", sweep["id"].as_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("finished trial(s) on the holdout"), "{text}");
    assert!(text.contains("best (#"), "{text}");
}

#[test]
fn without_early_stopping_every_trial_finishes_with_its_seeds() {
    let p = Project::new();
    p.import_adult();
    let r = p.json(&[
        "sweep",
        "-p",
        "num_leaves=7,15,31",
        "-p",
        "num_iterations=10",
        "-p",
        "feature_fraction=0.7",
        "--no-early-stop",
        "--seeds",
        "2",
    ]);
    assert!(r["sweep"]["rungs"].as_array().unwrap().is_empty());
    let trials = r["sweep"]["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3, "a grid is every point");
    for t in trials {
        assert_eq!(t["runs"].as_array().unwrap().len(), 2, "{t}");
    }
    assert_eq!(r["ranking"].as_array().unwrap().len(), 3);
    assert_eq!(r["sweep"]["units"], 6);
}

#[test]
fn sweeps_refuse_what_they_cannot_search() {
    let p = Project::new();
    p.import_adult();
    let check = |args: &[&str], needles: &[&str]| {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        for n in needles {
            assert!(stderr(&out).contains(n), "{args:?}: {}", stderr(&out));
        }
    };
    check(&["sweep", "-p", "num_leaves=15"], &["nothing to search"]);
    check(
        &["sweep", "-p", "trees=10,20"],
        &["budget", "-p num_iterations=N", "--no-early-stop"],
    );
    check(
        &["sweep", "-p", "learning_rate=0.2..0.01:log"],
        &["learning_rate=0.2..0.01:log", "low end"],
    );
    check(&["sweep", "-p", "learning_rate=0..1:log"], &["positive"]);
    check(&["sweep", "-p", "nonsense=1,2"], &["nonsense"]);
    check(&["sweep", "show", "nope"], &["nope"]);
    check(
        &["worker", "{\"kind\":\"fold\"}"],
        &["not a unit's JSON", "run"],
    );
    check(&["worker", "not json"], &["not a unit's JSON"]);
    assert_eq!(run_count(&p), 0);
}

/// The Ray executor's errors a user meets before any cluster answers: no address, nothing
/// listening there, a token about to cross the network in the clear.
#[test]
fn the_ray_executor_says_what_is_missing() {
    let p = Project::new();
    p.import_adult();
    let sweep = ["--executor", "ray", "sweep", "-p", "num_leaves=7,15"];
    let mut no_url = p.cmd(&sweep);
    no_url
        .env_remove("GYRE_RAY_URL")
        .env_remove("RAY_AUTH_TOKEN");
    let out = no_url.output().unwrap();
    assert_error(&out, &["the cluster's address", "GYRE_RAY_URL"]);

    let port = gyre_testkit::free_port();
    let mut closed = p.cmd(&sweep);
    closed
        .env("GYRE_RAY_URL", format!("http://127.0.0.1:{port}"))
        .env("RAY_AUTH_TOKEN", "secret-token-0123");
    let out = closed.output().unwrap();
    let err = assert_error(&out, &[&format!("Ray at http://127.0.0.1:{port}")]);
    assert!(!err.contains("secret-token-0123"), "{err}");

    let mut plain = p.cmd(&sweep);
    plain
        .env("GYRE_RAY_URL", "http://ray-head.invalid:8265")
        .env("RAY_AUTH_TOKEN", "secret-token-0123")
        .env_remove("GYRE_ALLOW_PLAIN_HTTP");
    let out = plain.output().unwrap();
    let err = assert_error(&out, &["plain HTTP", "GYRE_ALLOW_PLAIN_HTTP"]);
    assert!(!err.contains("secret-token-0123"), "{err}");

    let mut kind = p.cmd(&["sweep", "-p", "num_leaves=7,15"]);
    kind.env("GYRE_EXECUTOR", "slurm");
    let out = kind.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("slurm"), "{}", stderr(&out));
    assert_eq!(run_count(&p), 0, "nothing was recorded");
}
