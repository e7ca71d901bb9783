//! The team store through the real binary: PostgreSQL (a throwaway cluster) and an
//! S3-compatible server (moto) on loopback, credentials from the environment, several
//! working directories and processes on one project.

mod common;
use common::*;
use std::process::Stdio;

fn entries(p: &Project) -> Vec<serde_json::Value> {
    p.json(&["log"])["entries"].as_array().unwrap().clone()
}

fn run_ids(p: &Project) -> Vec<String> {
    p.json(&["runs"])["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_team_project_runs_the_loop_and_a_teammate_sees_all_of_it() {
    let Some(team) = TeamStore::new() else { return };
    let ana = team.project();
    let toml = std::fs::read_to_string(ana.path().join("gyre.toml")).unwrap();
    assert!(
        toml.contains("[store]") && toml.contains(&team.objects),
        "{toml}"
    );
    assert!(!toml.contains(gyre_testkit::PG_PASSWORD) && !toml.contains(gyre_testkit::S3_SECRET));
    assert!(
        !ana.path().join(".gyre/gyre.db").exists(),
        "no SQLite metadata in a team project"
    );
    ana.import_adult();
    let e = ana.json(&[
        "edit",
        "exclude",
        "--where",
        "age < 20",
        "--why",
        "teenagers are not our users",
    ]);
    let r = ana.json(&["train", "-p", "num_iterations=20", "--seed", "7"]);
    assert_eq!(r["version"], e["version"]);
    let promoted = ana.json(&["promote", r["run"].as_str().unwrap(), "--why", "first"]);
    assert_eq!(promoted["promoted"], true);

    // A teammate's fresh directory joins the same project: nothing cached, everything seen.
    let mut bo = Project::empty();
    bo.env = team.env.clone();
    let init = bo.json(&[
        "init",
        "--store",
        &team.metadata,
        "--objects",
        &team.objects,
    ]);
    assert_eq!(init["joined"], true, "{init}");
    assert_eq!(init["store"]["backend"], "team");
    assert_eq!(run_ids(&bo), run_ids(&ana));
    assert_eq!(
        bo.json(&["data", "--versions"]),
        ana.json(&["data", "--versions"])
    );
    assert_eq!(bo.json(&["aliases"]), ana.json(&["aliases"]));
    // Training on the same version with the same seed downloads the table (checked by hash)
    // and gives the same model.
    let again = bo.json(&["train", "-p", "num_iterations=20", "--seed", "7"]);
    assert_eq!(again["metrics"], r["metrics"]);
    assert_eq!(again["version"], r["version"]);
    let d = bo.json(&[
        "diff",
        r["run"].as_str().unwrap(),
        again["run"].as_str().unwrap(),
    ]);
    assert_eq!(
        (&d["flips"]["negative"], &d["flips"]["positive"]),
        (&0.into(), &0.into()),
        "{d}"
    );
    // Each sees the other's journal, with who did what.
    let seen_by_ana = entries(&ana);
    assert_eq!(seen_by_ana, entries(&bo));
    assert!(seen_by_ana.iter().any(|e| {
        e["command"]
            .as_str()
            .unwrap()
            .starts_with("gyre init --store")
    }),);
    let text = serde_json::to_string(&seen_by_ana).unwrap();
    assert!(!text.contains(gyre_testkit::PG_PASSWORD) && !text.contains(gyre_testkit::S3_SECRET));
    // Without the password, a clear error and no secret.
    let mut nopw = bo.cmd(&["runs"]);
    nopw.env_remove("PGPASSWORD").env("HOME", bo.path());
    let out = nopw.output().unwrap();
    let err = assert_error(&out, &["PostgreSQL", "PGPASSWORD"]);
    assert!(!err.contains(gyre_testkit::PG_PASSWORD));
}

/// `threads` processes each make `each` edits of one dataset at once.
fn edit_concurrently(p: &Project, threads: usize, each: usize) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..each {
                    let k = t * each + i;
                    let out = p.run(&[
                        "edit",
                        "exclude",
                        "--where",
                        &format!("x = {k}"),
                        "--why",
                        &format!("w{k}"),
                    ]);
                    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
                }
            });
        }
    });
}

fn small_csv(p: &Project) -> std::path::PathBuf {
    let mut csv = String::from("x,z,y,split\n");
    for i in 0..400 {
        let split = if i % 4 == 0 { "test" } else { "train" };
        csv.push_str(&format!(
            "{},{},{},{split}\n",
            i % 20,
            i % 7,
            (i % 3 == 0) as u8
        ));
    }
    p.write("small.csv", csv.as_bytes())
}

fn import_small(p: &Project) {
    let f = small_csv(p);
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--split-column",
        "split",
    ]);
}

/// Two people editing one dataset at once both get their edits, numbered in order, and every
/// version is the one its chain of edits gives: the same edits made one after the other in a
/// fresh project give the same version ids.
fn concurrent_edits_keep_their_order(p: &Project) {
    import_small(p);
    edit_concurrently(p, 2, 5);
    let chain = p.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(chain.len(), 11, "the import and ten edits");
    let edits: Vec<i64> = chain[1..]
        .iter()
        .map(|v| v["edit"].as_i64().unwrap())
        .collect();
    assert_eq!(
        edits,
        (edits[0]..edits[0] + 10).collect::<Vec<_>>(),
        "numbered in order"
    );
    let replay = Project::new();
    import_small(&replay);
    for v in &chain[1..] {
        let why = v["why"].as_str().unwrap();
        let k = &why[1..];
        replay.json(&[
            "edit",
            "exclude",
            "--where",
            &format!("x = {k}"),
            "--why",
            why,
        ]);
    }
    let replayed = replay.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .clone();
    let ids = |c: &[serde_json::Value]| c.iter().map(|v| v["version"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&chain), ids(&replayed));
}

#[test]
fn concurrent_edits_keep_their_order_on_the_embedded_store() {
    concurrent_edits_keep_their_order(&Project::new());
}

#[test]
fn concurrent_edits_keep_their_order_on_the_team_store() {
    let Some(team) = TeamStore::new() else { return };
    concurrent_edits_keep_their_order(&team.project());
}

/// Promotes from two processes at once: every move names the run it replaced (no move is
/// lost), and a promote that lost the race says who moved the alias.
fn promotes_are_compare_and_set(p: &Project) {
    import_small(p);
    let runs: Vec<String> = (0..6)
        .map(|s| {
            p.json(&["train", "-p", "num_iterations=5", "--seed", &s.to_string()])["run"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let outcomes: Vec<(i32, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|r| {
                s.spawn(move || {
                    let out = p.run(&["promote", r, "--force", "--why", "race"]);
                    (out.status.code().unwrap_or(-1), stderr(&out))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (code, err) in &outcomes {
        assert!(
            *code == 0 || err.contains("moved while this promote was decided"),
            "{code}: {err}"
        );
    }
    let history = p.json(&["aliases"])["aliases"][0]["history"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        history.len(),
        outcomes.iter().filter(|o| o.0 == 0).count(),
        "one move per promote that succeeded"
    );
    for pair in history.windows(2) {
        assert_eq!(pair[1]["previous"], pair[0]["run"], "{history:?}");
    }
}

#[test]
fn promotes_are_compare_and_set_on_the_embedded_store() {
    promotes_are_compare_and_set(&Project::new());
}

#[test]
fn promotes_are_compare_and_set_on_the_team_store() {
    let Some(team) = TeamStore::new() else { return };
    promotes_are_compare_and_set(&team.project());
}

#[test]
fn store_copy_moves_a_project_to_the_team_store_and_back_losslessly() {
    let Some(team) = TeamStore::new() else { return };
    let local = Project::new();
    import_small(&local);
    local.json(&["edit", "exclude", "--where", "x = 3", "--why", "noise"]);
    let r = local.json(&["train", "-p", "num_iterations=10"]);
    local.json(&["promote", r["run"].as_str().unwrap(), "--why", "first"]);
    local.json(&["train", "--learner", "linear"]);
    let before = (
        entries(&local),
        local.json(&["runs"]),
        local.json(&["aliases"]),
        local.json(&["data", "--versions"]),
    );
    let objects_before = files_under(&local.path().join(".gyre/objects"));

    let shared_dir = tempfile::tempdir().unwrap();
    let mut copy = local.cmd(&[
        "store",
        "copy",
        shared_dir.path().join("p").to_str().unwrap(),
        "--store",
        &team.metadata,
        "--objects",
        &team.objects,
        "--json",
    ]);
    copy.envs(team.env.iter().map(|(k, v)| (k, v)));
    let out = copy.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["objects"], objects_before.len());
    assert_eq!(report["to_store"]["backend"], "team");

    let mut shared = Project::empty();
    shared.env = team.env.clone();
    let shared_root = shared_dir.path().join("p");
    let back_dir = tempfile::tempdir().unwrap();
    let back_root = back_dir.path().join("p");
    let mut back_copy = shared.cmd(&[
        "store",
        "copy",
        "--to",
        back_root.to_str().unwrap(),
        "--json",
    ]);
    back_copy.current_dir(&shared_root);
    let out = back_copy.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let back = Project {
        dir: back_dir,
        env: Vec::new(),
    };
    let in_back = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--json", "--project", back_root.to_str().unwrap()]);
        let out = back.run(&a);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let mut log_back = in_back(&["log"])["entries"].as_array().unwrap().clone();
    // Each copy adds one entry to its destination saying where it came from.
    let from_team = log_back.pop().unwrap();
    assert!(
        from_team["why"].as_str().unwrap().contains("(team)"),
        "{from_team}"
    );
    let from_local = log_back.pop().unwrap();
    assert!(from_local["why"].as_str().unwrap().contains("(embedded)"));
    assert_eq!(log_back, before.0);
    assert_eq!(in_back(&["runs"]), before.1);
    assert_eq!(in_back(&["aliases"]), before.2);
    assert_eq!(in_back(&["data", "--versions"]), before.3);
    let rel = |root: &std::path::Path, files: Vec<std::path::PathBuf>| {
        files
            .into_iter()
            .map(|f| f.strip_prefix(root).unwrap().to_path_buf())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rel(&back_root, files_under(&back_root.join(".gyre/objects"))),
        rel(local.path(), objects_before)
    );
    // The source says where it was copied to; a second copy into the now full team store is
    // refused, and leaves no project behind.
    let last = entries(&local).pop().unwrap();
    assert!(last["why"].as_str().unwrap().contains("copied to"));
    let again_dir = tempfile::tempdir().unwrap();
    let mut again = local.cmd(&[
        "store",
        "copy",
        again_dir.path().to_str().unwrap(),
        "--store",
        &team.metadata,
        "--objects",
        &team.objects,
    ]);
    again.envs(team.env.iter().map(|(k, v)| (k, v)));
    let out = again.output().unwrap();
    assert_error(&out, &["already holds a project"]);
    assert!(!again_dir.path().join("gyre.toml").exists());
}

#[test]
fn the_database_or_the_object_server_killed_mid_train_loses_nothing_committed() {
    if !require(
        "PostgreSQL: apt-get install postgresql",
        gyre_testkit::postgres_bin().is_some(),
    ) {
        return;
    }
    let pg = gyre_testkit::Postgres::start().unwrap();
    let Ok(s3) = gyre_testkit::S3::start() else {
        require("an S3 server: pip install 'moto[server]'", false);
        return;
    };
    let mut p = Project::empty();
    p.env = vec![
        ("PGPASSWORD".into(), gyre_testkit::PG_PASSWORD.into()),
        ("AWS_ACCESS_KEY_ID".into(), "k".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "s".into()),
        ("AWS_ENDPOINT_URL".into(), s3.endpoint()),
    ];
    let url = pg.new_database();
    let bucket = s3.new_bucket();
    p.json(&["init", "--store", &url, "--objects", &bucket]);
    p.import_adult();
    let first = p.json(&["train", "-p", "num_iterations=10"]);
    let committed = (entries(&p), run_ids(&p));

    // Each fault: a long train started, the server killed while it fits, the train fails
    // and records nothing.
    let train_killing = |kill: &dyn Fn(), rate: &str| {
        let child = p
            .cmd(&[
                "train",
                "-p",
                "num_iterations=3000",
                "-p",
                "num_leaves=63",
                "-p",
                rate,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        kill();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "stdout {} stderr {}",
            stdout(&out),
            stderr(&out)
        );
        stderr(&out)
    };
    let err = train_killing(&|| pg.kill(), "learning_rate=0.1");
    assert!(err.contains("PostgreSQL"), "{err}");
    pg.restart().unwrap();
    assert_eq!(
        (entries(&p), run_ids(&p)),
        committed,
        "nothing half-written"
    );

    // Afterwards the store works, and what it records points at objects that exist: a fresh
    // directory (nothing cached) compares the two runs' predictions from the bucket.
    let second = p.json(&["train", "-p", "num_iterations=10", "--seed", "1"]);
    let mut fresh = Project::empty();
    fresh.env = p.env.clone();
    fresh.json(&["init", "--store", &url, "--objects", &bucket]);
    fresh.json(&[
        "diff",
        first["run"].as_str().unwrap(),
        second["run"].as_str().unwrap(),
    ]);
    let committed = (entries(&p), run_ids(&p));
    // Another model: the first try's model and predictions did reach the bucket (and the
    // cache, which the killed server's loss of its memory would make lie).
    let err = train_killing(&|| s3.kill(), "learning_rate=0.2");
    assert!(err.contains("object store"), "{err}");
    assert_eq!(
        (entries(&p), run_ids(&p)),
        committed,
        "a run whose model did not reach the bucket is not recorded"
    );
}

#[test]
fn trains_run_in_parallel_from_two_directories_of_one_team_project() {
    let Some(team) = TeamStore::new() else { return };
    let ana = team.project();
    import_small(&ana);
    let bo = team.project();
    let runs: Vec<serde_json::Value> = std::thread::scope(|s| {
        let a = s.spawn(|| ana.json(&["train", "-p", "num_iterations=30", "--seed", "1"]));
        let b = s.spawn(|| bo.json(&["train", "--learner", "linear"]));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let ids = run_ids(&ana);
    assert_eq!(ids.len(), 2);
    for r in &runs {
        assert!(ids.contains(&r["run"].as_str().unwrap().to_string()));
    }
    // Each directory's journal holds both trains, by whom they were made.
    let trains = entries(&bo)
        .into_iter()
        .filter(|e| e["command"].as_str().unwrap().starts_with("gyre train"))
        .count();
    assert_eq!(trains, 2);
}

/// Decisions on one finding from four processes at once: each is recorded on top of the one
/// before it or refused (no decision overwrites another unseen: the finding's history never
/// holds the same state twice in a row).
fn finding_decisions_are_compare_and_set(p: &Project) {
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
    p.json(&["train", "-p", "num_iterations=40"]);
    let first = p.json(&["findings"])["findings"][0]["id"].clone();
    let id = first.to_string();
    let outcomes: Vec<(i32, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = ["accept", "fix", "accept", "fix"]
            .iter()
            .map(|d| {
                let id = &id;
                s.spawn(move || {
                    let out = p.run(&["finding", d, id, "--why", "race"]);
                    (out.status.code().unwrap_or(-1), stderr(&out))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (code, err) in &outcomes {
        assert!(
            *code == 0
                || err.contains("changed while this decision was made")
                || err.contains("is already"),
            "{code}: {err}"
        );
    }
    let finding = p.json(&["findings"])["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == first)
        .unwrap()
        .clone();
    let states: Vec<String> = finding["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states.len(),
        1 + outcomes.iter().filter(|o| o.0 == 0).count(),
        "{states:?}"
    );
    for pair in states.windows(2) {
        assert_ne!(pair[0], pair[1], "{states:?}");
    }
}

#[test]
fn finding_decisions_are_compare_and_set_on_the_embedded_store() {
    finding_decisions_are_compare_and_set(&Project::new());
}

#[test]
fn finding_decisions_are_compare_and_set_on_the_team_store() {
    let Some(team) = TeamStore::new() else { return };
    finding_decisions_are_compare_and_set(&team.project());
}
