//! The Ray executor against a real Ray head node (Ray from PyPI, token auth on, 2 CPUs) and a
//! project on the team store (PostgreSQL and an S3 server on loopback): label-issue folds,
//! ablation retrains and sweep trials run as Ray jobs of `gyre worker` units and give what the
//! local executor gives; a worker killed mid-unit is retried; a unit that fails for good fails
//! the command with its error and records nothing; Ctrl-C stops the job on the cluster; two
//! drivers on one sweep run no unit twice.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The gyre that drives Ray: a copy of the test binary without its debug sections (a debug
/// build is too big for a Ray package), which uploads itself as the job's working_dir.
fn driver_binary(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("gyre");
    let ok = Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(&out)
        .arg(bin())
        .status()
        .is_ok_and(|s| s.success());
    require("strip (binutils), to send a debug build to Ray", ok).then_some(out)
}

struct Driver<'a> {
    bin: &'a Path,
    project: &'a Project,
    ray: &'a gyre_testkit::Ray,
}

impl Driver<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin);
        c.args(args)
            .args(["--executor", "ray"])
            .current_dir(self.project.path())
            .env("GYRE_USER", "tester")
            .env_remove("GYRE_PROJECT")
            .envs(self.project.env.iter().map(|(k, v)| (k, v)))
            .env("GYRE_RAY_URL", &self.ray.url)
            .env("RAY_AUTH_TOKEN", &self.ray.token);
        c
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd(&[args, &["--json"]].concat()).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "gyre {args:?} on Ray failed: {}",
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(&[args, &["--json"]].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// The pids of `gyre worker` processes running a unit whose JSON contains `marker`.
fn workers(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "worker") && args.iter().any(|a| a.contains(marker)) {
            out.push(pid);
        }
    }
    out
}

/// Waits for a `gyre worker` whose unit contains `marker`; its pid.
fn wait_for_worker(marker: &str, driver: &mut Child) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(&pid) = workers(marker).first() {
            return pid;
        }
        if let Ok(Some(status)) = driver.try_wait() {
            panic!("the driver ended ({status}) before a worker of {marker} was seen");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no worker of {marker} within 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

/// Every Ray job's (status, logs), through the Jobs REST API.
fn jobs(ray: &gyre_testkit::Ray) -> Vec<(String, String)> {
    let get = |path: &str| -> serde_json::Value {
        let mut res = ureq::get(format!("{}{path}", ray.url))
            .header("authorization", format!("Bearer {}", ray.token))
            .call()
            .unwrap();
        serde_json::from_slice(&res.body_mut().read_to_vec().unwrap()).unwrap()
    };
    get("/api/jobs/")
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            let id = j["submission_id"].as_str().unwrap();
            let logs = get(&format!("/api/jobs/{id}/logs"))["logs"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (j["status"].as_str().unwrap().to_string(), logs)
        })
        .collect()
}

/// What must match between the executors: each finished trial's params, holdout metric and
/// interval, and every rung's scores.
fn sweep_outcome(r: &serde_json::Value) -> serde_json::Value {
    let ranking: Vec<serde_json::Value> = r["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serde_json::json!([t["trial"], t["params"], t["metric"], t["ci95"]]))
        .collect();
    serde_json::json!({"ranking": ranking, "rungs": r["sweep"]["rungs"], "id": r["sweep"]["id"]})
}

#[test]
fn ray_runs_folds_trials_and_retrains_as_the_local_executor_does() {
    let Some(team) = TeamStore::new() else { return };
    let Some(ray) = ray_head() else { return };
    let tools = tempfile::tempdir().unwrap();
    let Some(bin) = driver_binary(tools.path()) else {
        return;
    };
    let local = Project::new();
    let remote = team.project();
    let ray_driver = Driver {
        bin: &bin,
        project: &remote,
        ray: &ray,
    };
    for p in [&local, &remote] {
        p.import_adult();
        p.json(&[
            "edit",
            "exclude",
            "--where",
            "age < 20",
            "--why",
            "not our users",
        ]);
        p.json(&[
            "edit",
            "exclude",
            "--where",
            "hours_per_week > 80",
            "--why",
            "misreported hours",
        ]);
        p.json(&["train", "-p", "num_iterations=20", "--seed", "3"]);
    }

    // A wrong token: refused, and the error says which variable to set (never the token).
    let out = ray_driver
        .cmd(&["label-issues", "latest", "--folds", "5"])
        .env("RAY_AUTH_TOKEN", "not-the-token")
        .output()
        .unwrap();
    let err = assert_error(&out, &["RAY_AUTH_TOKEN is not the cluster's token"]);
    assert!(
        !err.contains("not-the-token") && !err.contains(&ray.token),
        "{err}"
    );

    // Label-issue folds: the same suspects, in the same order, with the same probabilities.
    let want = local.json(&["label-issues", "latest", "--folds", "5", "--top", "50"]);
    let got = ray_driver.json(&["label-issues", "latest", "--folds", "5", "--top", "50"]);
    assert_eq!(got["cached"], false);
    for k in ["flagged", "rows", "issues", "expected_issues"] {
        assert_eq!(got[k], want[k], "label-issues {k}");
    }
    // Done once: the local cache of the out-of-fold probabilities answers the second time.
    let again = ray_driver.json(&["label-issues", "latest", "--folds", "5", "--top", "50"]);
    assert_eq!(again["cached"], true);

    // Ablation retrains: each edit's worth, with its interval, as the local executor says.
    let want = local.json(&["ablate", "latest"]);
    let got = ray_driver.json(&["ablate", "latest"]);
    assert_eq!(got["edits"], want["edits"]);
    assert_eq!(got["edits"].as_array().unwrap().len(), 2);

    // Seeds: each seed's fit a unit; the same runs and the same noise floor.
    let seeds = [
        "train",
        "-p",
        "num_iterations=20",
        "-p",
        "feature_fraction=0.7",
        "--seeds",
        "3",
    ];
    let want = local.json(&seeds);
    let got = ray_driver.json(&seeds);
    let metrics = |r: &serde_json::Value| -> Vec<serde_json::Value> {
        r["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["metrics"].clone())
            .collect()
    };
    assert_eq!(metrics(&got).len(), 3);
    assert_eq!(metrics(&got), metrics(&want));
    assert_eq!(
        got["seed_floor"]["mean_flip_rate"],
        want["seed_floor"]["mean_flip_rate"]
    );

    // A sweep whose first worker is killed mid-unit: the unit is retried, and the sweep is the
    // local executor's.
    let sweep = [
        "sweep",
        "-p",
        "num_leaves=7,15,31",
        "-p",
        "learning_rate=0.05..0.3:log",
        "-p",
        "num_iterations=27",
        "--trials",
        "6",
        "--seed",
        "1",
    ];
    let want = local.json(&sweep);
    let mut driver = ray_driver.spawn(&sweep);
    let victim = wait_for_worker("\"kind\":\"trial\"", &mut driver);
    // SAFETY: a pid of a process we saw run `gyre worker`.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let out = finish(driver);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["sweep"]["retries"], 1, "{}", stderr(&out));
    assert_eq!(sweep_outcome(&got), sweep_outcome(&want));
    assert_eq!(got["sweep"]["executor"], "ray");
    assert_eq!(want["sweep"]["units"], got["sweep"]["units"]);
    // Finished trials are runs, tagged with the sweep.
    let best = got["ranking"][0]["runs"][0].as_str().unwrap();
    let shown = remote.json(&["show", best]);
    assert_eq!(shown["run"], best);
    assert_eq!(shown["sweep"], got["sweep"]["id"]);
    let id = got["sweep"]["id"].as_str().unwrap();
    assert_eq!(remote.json(&["sweep", "show", &id[..8]])["sweep"]["id"], id);

    // Two drivers on one sweep: both answer, one records it, and no unit runs twice.
    let runs_before = run_count(&remote);
    let twice = [&sweep[..9], &["--seed", "2"]].concat();
    let (a, b) = (ray_driver.spawn(&twice), ray_driver.spawn(&twice));
    let (a, b) = (finish(a), finish(b));
    for o in [&a, &b] {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    }
    let (ja, jb): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&a.stdout).unwrap(),
        serde_json::from_slice(&b.stdout).unwrap(),
    );
    assert_eq!(sweep_outcome(&ja), sweep_outcome(&jb));
    assert_eq!(
        run_count(&remote) - runs_before,
        ja["ranking"].as_array().unwrap().len(),
        "the sweep's runs are recorded once"
    );
    let mut done: Vec<String> = Vec::new();
    for (_, logs) in jobs(&ray) {
        for line in logs.lines() {
            if let Some((_, j)) = line.split_once("GYRE-DONE ") {
                let v: serde_json::Value = serde_json::from_str(j).unwrap();
                done.push(v["unit"].to_string());
            }
        }
    }
    let n = done.len();
    done.sort();
    done.dedup();
    assert_eq!(done.len(), n, "a unit ran twice on Ray");

    // Ctrl-C on the driver stops the job on the cluster and records nothing.
    let runs_before = run_count(&remote);
    let stopped = [&sweep[..9], &["--seed", "3"]].concat();
    let mut driver = ray_driver.spawn(&stopped);
    wait_for_worker("\"seed\":3", &mut driver);
    // SAFETY: our child's pid.
    unsafe { libc::kill(driver.id() as i32, libc::SIGINT) };
    let out = finish(driver);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    let start = Instant::now();
    loop {
        let statuses: Vec<String> = jobs(&ray).into_iter().map(|(s, _)| s).collect();
        if statuses.iter().any(|s| s == "STOPPED")
            && !statuses.iter().any(|s| s == "RUNNING" || s == "PENDING")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job was not stopped: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(run_count(&remote), runs_before);

    // A unit that fails for good (its workers cannot reach the store: the password is in a
    // file only the driver has) fails the command with the unit's error, and nothing is kept.
    let pgpass = tools.path().join("pgpass");
    std::fs::write(&pgpass, format!("*:*:*:*:{}\n", gyre_testkit::PG_PASSWORD)).unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let journal = remote.json(&["log"])["entries"].as_array().unwrap().len();
    let out = ray_driver
        .cmd(&["label-issues", "latest", "--folds", "3"])
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    let err = assert_error(&out, &["fold", "failed on Ray", "PGPASSWORD"]);
    assert!(!err.contains(gyre_testkit::PG_PASSWORD), "{err}");
    assert_eq!(
        remote.json(&["log"])["entries"].as_array().unwrap().len(),
        journal
    );
    // The failed job gave its claims up: run again where the workers reach the store, the
    // same folds run at once (no lease to wait out) and are computed, not found half-done.
    let out = ray_driver
        .cmd(&["label-issues", "latest", "--folds", "3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 unit(s) on ray"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("held by another driver"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains(", cached"), "{}", stdout(&out));

    // A team server's clone: the workers reach the project through the server, with the
    // person's token, as every command of the clone does.
    let home = Project::new();
    let token = home.json(&["server", "user", "add", "ana", "--role", "member"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut server, addr, _) = spawn_ready(&home, &["server", "--addr", "127.0.0.1:0", "--json"]);
    let mut clone = Project::empty();
    clone.env = vec![("GYRE_TOKEN".into(), token.clone())];
    let work = clone.path().join("work");
    let out = clone.run(&["clone", &format!("http://{addr}"), work.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    clone
        .env
        .push(("GYRE_PROJECT".into(), work.to_string_lossy().into()));
    clone.import_adult();
    clone.json(&["train", "-p", "num_iterations=10"]);
    let through_server = Driver {
        bin: &bin,
        project: &clone,
        ray: &ray,
    };
    let got = through_server.json(&["label-issues", "latest", "--folds", "2"]);
    assert_eq!((&got["cached"], &got["folds"]), (&false.into(), &2.into()));
    let again = clone.json(&["label-issues", "latest", "--folds", "2"]);
    assert_eq!(
        again["cached"], true,
        "the workers stored the folds on the server"
    );
    assert_eq!(again["issues"], got["issues"]);
    assert_eq!(stop(&mut server), Some(0));
    ray.stop();
}
