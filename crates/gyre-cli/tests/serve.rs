//! `gyre serve`: real HTTP on loopback against a real server process.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Waits until the server says every prediction it handed out is committed to the log.
fn wait_committed(addr: &str, issued: u64) {
    for _ in 0..100 {
        let (_, body) = http(addr, "GET", "/v1/health", b"");
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        if h["log"]["committed_below"].as_u64().unwrap() >= issued {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the log did not commit {issued} predictions");
}

fn train(p: &Project, trees: &str) -> String {
    p.json(&["train", "-p", &format!("num_iterations={trees}")])["run"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Adult's holdout rows as JSON objects, keyed by row id (numbers as numbers, "?" as null).
fn holdout_rows(n: usize) -> Vec<(u64, serde_json::Value)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .enumerate()
        .filter(|(_, l)| l.ends_with(",test"))
        .take(n)
        .map(|(i, l)| {
            let mut m = serde_json::Map::new();
            for (k, v) in header.iter().zip(l.split(',')) {
                if *k == "income" || *k == "split" {
                    continue;
                }
                let value = if v == "?" {
                    serde_json::Value::Null
                } else if let Ok(x) = v.parse::<f64>() {
                    serde_json::json!(x)
                } else {
                    serde_json::json!(v)
                };
                m.insert(k.to_string(), value);
            }
            (i as u64, serde_json::Value::Object(m))
        })
        .collect()
}

#[test]
fn served_predictions_equal_offline_ones_and_bad_requests_get_4xx() {
    let p = Project::new();
    p.import_adult();
    let run = p.json(&["train", "-p", "num_iterations=30"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, ready) = start(&p, &["--timeout", "1s"]);
    assert_eq!(ready["run"], run.as_str());
    let (status, body) = http(&addr, "GET", "/v1/health", b"");
    assert_eq!(status, 200, "{body}");

    // 400 rows: a body over 64 KiB, worked off the connection's thread.
    let rows = holdout_rows(400);
    let req =
        serde_json::json!({ "rows": rows.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() });
    assert!(req.to_string().len() > 64 * 1024);
    let (status, body) = http(&addr, "POST", "/v1/predict", req.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    let preds = served["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 400);
    // Offline predictions of the same run for the same rows.
    let out = p.path().join("offline.csv");
    p.json(&["predictions", &run, "--out", out.to_str().unwrap()]);
    let offline: std::collections::HashMap<u64, (String, f64)> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].parse().unwrap(),
                (c[2].to_string(), c[4].parse().unwrap()),
            )
        })
        .collect();
    for ((id, _), p) in rows.iter().zip(preds) {
        let (label, score) = &offline[id];
        assert_eq!(p["label"].as_str().unwrap(), label, "row {id}");
        assert_eq!(
            p["scores"][1].as_f64().unwrap(),
            *score,
            "row {id}: served score differs"
        );
        assert_eq!(p["model"], run.as_str());
    }

    // Bad requests: 4xx naming the problem, and the server keeps serving.
    let (s, b) = http(&addr, "POST", "/v1/predict", b"{not json");
    assert_eq!(s, 400, "{b}");
    let (s, b) = http(&addr, "POST", "/v1/predict", b"{\"rows\": []}");
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("empty"), "{b}");
    // A row that is not an object is named by its position.
    let (s, b) = http(
        &addr,
        "POST",
        "/v1/predict",
        b"{\"rows\": [{\"age\": 1}, 3]}",
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("row 1"), "{b}");
    let mut missing = rows[0].1.clone();
    missing.as_object_mut().unwrap().remove("age");
    let (s, b) = http(
        &addr,
        "POST",
        "/v1/predict",
        serde_json::json!({ "rows": [missing] })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("age"), "{b}");
    let mut wrong = rows[0].1.clone();
    wrong["age"] = serde_json::json!("old");
    let (s, b) = http(
        &addr,
        "POST",
        "/v1/predict",
        serde_json::json!({ "rows": [wrong] })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("expected a number"), "{b}");
    let mut unseen = rows[0].1.clone();
    unseen["workclass"] = serde_json::json!("Astronaut");
    let (s, b) = http(
        &addr,
        "POST",
        "/v1/predict",
        serde_json::json!({ "rows": [unseen] })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("\"unseen\":[\"workclass\"]"), "{b}");
    let big = vec![b' '; 2 << 20];
    let (s, _) = http(&addr, "POST", "/v1/predict", &big);
    assert_eq!(s, 413);
    assert_eq!(http(&addr, "GET", "/v1/health", b"").0, 200);

    // A body that never finishes arriving: 408 after the timeout, and the server goes on.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"rows\"",
    )
    .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Prometheus metrics: counters, the latency histogram, drift gauges.
    let (s, metrics) = http(&addr, "GET", "/metrics", b"");
    assert_eq!(s, 200);
    for needle in [
        format!("gyre_requests_total{{model=\"{run}\",arm=\"champion\",shadow=\"false\"}} 2"),
        format!("gyre_predictions_total{{model=\"{run}\",arm=\"champion\",shadow=\"false\"}} 401"),
        "gyre_request_duration_seconds_bucket{".into(),
        "le=\"+Inf\"} 2".into(),
        "gyre_errors_total{status=\"400\"} 3".into(),
        "gyre_errors_total{status=\"408\"} 1".into(),
        "gyre_errors_total{status=\"413\"} 1".into(),
        "gyre_errors_total{status=\"422\"} 2".into(),
        format!("gyre_feature_psi{{model=\"{run}\",feature=\"age\"}}"),
        "gyre_score_psi{".into(),
        "gyre_log_pending_records ".into(),
    ] {
        assert!(
            metrics.contains(&needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }

    // SIGTERM: a graceful stop.
    assert_eq!(stop(&mut server), Some(0));
}

#[test]
fn the_ab_split_holds_its_share_keys_stick_and_shadow_is_logged_only() {
    let p = Project::new();
    p.import_adult();
    let champion = train(&p, "10");
    let challenger = train(&p, "20");
    p.json(&["promote", &champion, "--why", "serve it"]);
    let (mut server, addr, ready) = start(&p, &["--challenger", &challenger, "--split", "0.3"]);
    assert_eq!(ready["traffic"], "split 0.3");
    let row = holdout_rows(1).remove(0).1;
    let n = 400;
    let mut to_challenger = 0;
    for i in 0..n {
        let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [row] }));
        assert_eq!(s, 200, "{b}");
        if b["predictions"][0]["model"] == challenger.as_str() {
            to_challenger += 1;
        }
        // The true label comes back for the first 100 answers.
        if i < 100 {
            let id = b["predictions"][0]["id"].as_str().unwrap();
            let (s, _) = post(
                &addr,
                "/v1/feedback",
                &serde_json::json!({ "id": id, "label": "<=50K" }),
            );
            assert_eq!(s, 200);
        }
    }
    // Binomial(400, 0.3): standard deviation 0.023; allow four of them.
    let share = to_challenger as f64 / n as f64;
    assert!((share - 0.3).abs() < 0.092, "challenger share {share}");
    let mut arms = std::collections::HashSet::new();
    for user in 0..20 {
        let key = format!("user-{user}");
        let models: std::collections::HashSet<String> = (0..5)
            .map(|_| {
                let (_, b) = post(
                    &addr,
                    "/v1/predict",
                    &serde_json::json!({ "rows": [row], "key": key }),
                );
                b["predictions"][0]["model"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(models.len(), 1, "key {key} moved between arms");
        arms.extend(models);
    }
    assert_eq!(arms.len(), 2, "20 keys all landed on one arm");
    assert_eq!(stop(&mut server), Some(0));

    // Shadow: the champion answers every request; the challenger is logged beside it.
    let (mut server, addr, _) = start(&p, &["--challenger", &challenger, "--shadow"]);
    let rows: Vec<serde_json::Value> = holdout_rows(150).into_iter().map(|(_, r)| r).collect();
    for chunk in rows.chunks(50) {
        let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": chunk }));
        assert_eq!(s, 200, "{b}");
        for pred in b["predictions"].as_array().unwrap() {
            assert_eq!(pred["model"], champion.as_str());
        }
    }
    assert_eq!(stop(&mut server), Some(0));
    let m = p.json(&["monitor", "--since", "1h"]);
    // Both sessions: the split's 400 + 100 answers and the shadow session's 150.
    assert_eq!(m["predictions"], 650, "{m}");
    let models = m["models"].as_array().unwrap();
    let shadow = models
        .iter()
        .find(|x| x["shadow"] == true)
        .expect("a shadow arm");
    assert_eq!(shadow["model"], challenger.as_str());
    assert_eq!(shadow["predictions"], 150);
    // The A/B test over the split session's feedback: both arms, 100 outcomes, a p-value.
    let ab = &m["ab_test"];
    assert_eq!(
        ab["n_champion"].as_u64().unwrap() + ab["n_challenger"].as_u64().unwrap(),
        100,
        "{ab}"
    );
    let p = ab["p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    let d = &m["shadow_disagreement"];
    assert!(d["low"].as_f64().unwrap() <= d["value"].as_f64().unwrap());
    assert!(d["value"].as_f64().unwrap() < 0.5, "{d}");
}

#[test]
fn promote_and_rollback_swap_the_champion_without_failing_requests() {
    let p = Project::new();
    p.import_adult();
    let first = train(&p, "10");
    let second = train(&p, "20");
    p.json(&["promote", &first, "--why", "serve it"]);
    let (mut server, addr, _) = start(&p, &[]);
    let row = holdout_rows(1).remove(0).1;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (addr, row, done) = (addr.clone(), row.clone(), done.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [row] }));
                seen.push((s, b["predictions"][0]["model"].as_str().map(String::from)));
            }
            seen
        })
    };
    let serving = |addr: &str| {
        let (_, b) = http(addr, "GET", "/v1/health", b"");
        serde_json::from_str::<serde_json::Value>(&b).unwrap()["champion"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let wait_for = |run: &str| {
        for _ in 0..200 {
            if serving(&addr) == run {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the server never switched to {run}");
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.json(&["promote", &second, "--why", "more trees", "--force"]);
    wait_for(&second);
    std::thread::sleep(std::time::Duration::from_millis(200));
    p.json(&["rollback", "--why", "back to the first"]);
    wait_for(&first);
    std::thread::sleep(std::time::Duration::from_millis(200));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = load.join().unwrap();
    assert!(
        seen.iter().all(|(s, _)| *s == 200),
        "a request failed during a swap"
    );
    let models: Vec<&str> = seen.iter().filter_map(|(_, m)| m.as_deref()).collect();
    let a = models
        .iter()
        .position(|m| *m == second)
        .expect("answers by the promoted run");
    assert!(models[..a].iter().all(|m| *m == first));
    assert_eq!(
        *models.last().unwrap(),
        first.as_str(),
        "rollback not picked up"
    );
    assert_eq!(stop(&mut server), Some(0));
}

#[test]
fn feedback_round_trip_becomes_a_new_source() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "20");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, _) = start(&p, &[]);
    let rows = holdout_rows(30);
    let (s, b) = post(
        &addr,
        "/v1/predict",
        &serde_json::json!({ "rows": rows.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() }),
    );
    assert_eq!(s, 200, "{b}");
    let ids: Vec<String> = b["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    // The true labels of those rows, from the file.
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    for ((row, _), id) in rows.iter().zip(&ids).take(20) {
        let label = lines[*row as usize].split(',').nth(14).unwrap();
        let (s, b) = post(
            &addr,
            "/v1/feedback",
            &serde_json::json!({ "id": id, "label": label }),
        );
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["recorded"], true);
    }
    let (s, b) = post(
        &addr,
        "/v1/feedback",
        &serde_json::json!({ "id": "999-1", "label": ">50K" }),
    );
    assert_eq!(s, 404, "{b}");
    let (s, b) = post(
        &addr,
        "/v1/feedback",
        &serde_json::json!({ "id": ids[0], "label": "rich" }),
    );
    assert_eq!(s, 422, "{b}");
    assert!(b["error"].as_str().unwrap().contains("rich"), "{b}");
    let (s, _) = post(
        &addr,
        "/v1/feedback",
        &serde_json::json!({ "label": ">50K" }),
    );
    assert_eq!(s, 400);
    assert_eq!(stop(&mut server), Some(0));

    let m = p.json(&["monitor"]);
    assert_eq!(m["feedback"], 20);
    let champ = &m["models"][0];
    assert_eq!(champ["labelled"], 20);
    let q = &champ["quality"];
    assert!(q["low"].as_f64().unwrap() <= q["value"].as_f64().unwrap());
    assert!(q["value"].as_f64().unwrap() >= 0.5, "{q}");
    assert_eq!(m["errors"]["404"], 1);
    assert_eq!(m["errors"]["422"], 1);

    let r = p.json(&["feedback", "import", "--why", "labels from production"]);
    assert_eq!(r["rows"], 20);
    assert_eq!(r["edit"]["kind"], "add-source");
    let data = p.json(&["data"]);
    let sources = data["datasets"][0]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[1]["rows"], 20);
    assert_eq!(sources[1]["first_row_id"], 48842);
    let text = stdout(&p.run(&["data"]));
    assert!(
        text.contains("48,842 rows (+20 in 1 added source)"),
        "{text}"
    );
    assert_error(
        &p.run(&["feedback", "import", "--why", "again"]),
        &["no new feedback"],
    );
    assert_error(&p.run(&["feedback", "import"]), &["--why"]);
    // Ready for the next turn.
    let next = p.json(&["train", "-p", "num_iterations=10"]);
    assert_eq!(next["version"], r["edit"]["version"]);
}

#[test]
fn kill_9_under_load_loses_nothing_that_was_committed() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "10");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, ready) = start(&p, &[]);
    let session = ready["session"].as_i64().unwrap();
    let row = holdout_rows(1).remove(0).1;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, row, done) = (addr.clone(), row.clone(), done.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while !done.load(std::sync::atomic::Ordering::Relaxed)
                    && std::time::Instant::now() < deadline
                {
                    let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [row] }));
                    if s == 200 {
                        acked.push(b["predictions"][0]["id"].as_str().unwrap().to_string());
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (_, h) = http(&addr, "GET", "/v1/health", b"");
    let committed =
        serde_json::from_str::<serde_json::Value>(&h).unwrap()["log"]["committed_below"]
            .as_i64()
            .unwrap();
    assert!(committed > 0, "nothing committed under load");
    std::thread::sleep(std::time::Duration::from_millis(150));
    std::process::Command::new("kill")
        .args(["-KILL", &server.0.id().to_string()])
        .status()
        .unwrap();
    let _ = server.0.wait();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(acked.len() as i64 >= committed);

    // The log opens, and holds every acknowledged prediction below the committed mark.
    let log = gyre_store::PredictionLog::open(&p.path().join(".gyre")).unwrap();
    let logged: std::collections::HashSet<String> = log
        .served(None)
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    drop(log);
    let mut safe = 0;
    for id in &acked {
        let parsed = gyre_store::PredictionId::parse(id).unwrap();
        assert_eq!(parsed.session, session);
        if parsed.n < committed {
            assert!(
                logged.contains(id),
                "acknowledged and committed {id} is missing"
            );
            safe += 1;
        }
    }
    assert_eq!(
        safe, committed,
        "every committed number was acknowledged once"
    );
    // A restarted server takes a new session, so no id is handed out twice.
    let (mut again, addr, ready) = start(&p, &[]);
    assert_eq!(ready["session"].as_i64().unwrap(), session + 1);
    let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [row] }));
    assert_eq!(s, 200);
    assert!(
        b["predictions"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}-", session + 1))
    );
    assert_eq!(stop(&mut again), Some(0));
    let m = p.json(&["monitor"]);
    assert!(m["predictions"].as_i64().unwrap() > committed);
}

/// Elec2 rows (features only) from the fixture, in time order.
fn elec2_rows() -> (String, Vec<serde_json::Value>) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture("elec2.csv.gz")).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows = lines
        .map(|l| {
            let mut m = serde_json::Map::new();
            for (k, v) in header.iter().zip(l.split(',')) {
                if !matches!(*k, "timestamp" | "class") {
                    m.insert(k.to_string(), serde_json::json!(v.parse::<f64>().unwrap()));
                }
            }
            serde_json::Value::Object(m)
        })
        .collect();
    (text, rows)
}

#[test]
fn replaying_elec2_in_time_order_shows_drift_on_the_features_that_drift() {
    let p = Project::new();
    let (text, rows) = elec2_rows();
    // Train on the first 10,000 half-hours (May to November 1996).
    let early: String = text
        .lines()
        .take(10_001)
        .map(|l| format!("{l}\n"))
        .collect();
    let file = p.write("elec2-early.csv", early.as_bytes());
    p.json(&[
        "import",
        file.to_str().unwrap(),
        "--target",
        "class",
        "--time-column",
        "timestamp",
    ]);
    let run = train(&p, "30");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, _) = start(&p, &[]);
    let replay = |from: usize, to: usize| {
        for chunk in rows[from..to].chunks(200) {
            let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": chunk }));
            assert_eq!(s, 200, "{b}");
        }
    };
    let psi = |m: &serde_json::Value| -> std::collections::HashMap<String, (f64, bool)> {
        m["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["feature"].as_str().unwrap().to_string(),
                    (f["psi"].as_f64().unwrap(), f["drifted"].as_bool().unwrap()),
                )
            })
            .collect()
    };
    // Soon after training: December 1996.
    replay(10_000, 12_000);
    wait_committed(&addr, 2_000);
    let soon = psi(&p.json(&["monitor"]));
    // A time after the first window and before the second.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let since = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Two years on: late 1998, when Victoria's prices and demand and the transfer move.
    replay(40_000, 42_000);
    wait_committed(&addr, 4_000);
    let late_report = p.json(&["monitor", "--since", &since]);
    assert_eq!(late_report["predictions"], 2000);
    // Drift per window of time: the windows hold every row, and a window's PSI is computed on
    // the same bins as the whole report's (one window: the same numbers).
    let windows = late_report["windows"].as_array().unwrap();
    let rows: u64 = windows.iter().map(|w| w["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 2000);
    if windows.len() == 1 {
        for (f, w) in late_report["features"]
            .as_array()
            .unwrap()
            .iter()
            .zip(windows[0]["features"].as_array().unwrap())
        {
            assert_eq!(f["feature"], w["feature"]);
            assert!((f["psi"].as_f64().unwrap() - w["psi"].as_f64().unwrap()).abs() < 1e-12);
        }
    }
    let late = psi(&late_report);
    for feature in ["vicprice", "vicdemand", "transfer"] {
        let (a, _) = soon[feature];
        let (b, drifted) = late[feature];
        assert!(a < 0.1, "{feature}: PSI {a} soon after training");
        assert!(b > 0.25 && drifted, "{feature}: PSI {b} two years on");
    }
    for feature in ["day", "period"] {
        assert!(
            late[feature].0 < 0.1,
            "{feature} is a calendar: it should not drift"
        );
    }
    assert_eq!(stop(&mut server), Some(0));
    // The drift alarms became findings.
    let findings = p.json(&["findings"]);
    let drift: Vec<&serde_json::Value> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "drift")
        .collect();
    assert!(
        drift
            .iter()
            .any(|f| f["title"].as_str().unwrap().contains("vicprice"))
    );
}

#[test]
fn serving_without_a_champion_says_how_to_get_one() {
    let p = Project::new();
    p.import_adult();
    assert_error(
        &p.run(&["serve", "--addr", "127.0.0.1:0"]),
        &["no champion", "gyre promote"],
    );
    assert_error(&p.run(&["monitor"]), &["no champion", "promote"]);
    assert_error(
        &p.run(&["feedback", "import", "--why", "labels"]),
        &["no champion"],
    );
    // Bad serve flags are refused before anything starts.
    assert_error(
        &p.run(&["serve", "--challenger", "latest"]),
        &["--split", "--shadow"],
    );
    assert_error(
        &p.run(&["serve", "--challenger", "latest", "--split", "1.5"]),
        &["--split 1.5", "between 0 and 1"],
    );
    assert_error(
        &p.run(&["monitor", "--since", "last tuesday"]),
        &["--since", "expected a duration"],
    );
}

#[test]
fn sigterm_lets_requests_in_flight_on_every_thread_finish_and_commits_them() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "10");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, _) = start(&p, &[]);
    // Connections are handed to the server's threads in turn: four cover every thread of a
    // small machine. Each sends its headers and half its body, so its request is in flight.
    let rows = holdout_rows(4);
    let mut conns: Vec<(TcpStream, Vec<u8>)> = rows
        .iter()
        .map(|(_, row)| {
            let body = serde_json::json!({ "rows": [row] }).to_string().into_bytes();
            let mut s = TcpStream::connect(&addr).unwrap();
            let head = format!(
                "POST /v1/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&body[..body.len() / 2]).unwrap();
            (s, body)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = server.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The server stops accepting at once, but every request already in flight gets its answer.
    for (s, body) in &mut conns {
        s.write_all(&body[body.len() / 2..]).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"predictions\""), "{answer}");
    }
    assert_eq!(server.0.wait().unwrap().code(), Some(0));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still accepting after exit"
    );
    // And the log holds all four answers.
    let log = gyre_store::PredictionLog::open(&p.path().join(".gyre")).unwrap();
    assert_eq!(log.served(None).unwrap().len(), 4);
}

#[test]
fn sigterm_right_after_the_ready_line_is_a_graceful_stop() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "5");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, _, _) = start(&p, &[]);
    assert_eq!(stop(&mut server), Some(0));
}

/// Issue 25: what a new user hit when serving. Answers name their classes and the fields they
/// did not use; a body over the limit (settable) is a JSON 413; feedback for an id never served
/// is refused, whichever session it names; a busy port says what to do, in JSON with --json,
/// and uses up no log session; monitor's latency is per request, not per row.
#[test]
fn serving_says_what_it_used_and_refuses_what_it_never_served() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "10");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, ready) = start(&p, &["--max-body", "64KiB"]);
    let first_session = ready["session"].as_i64().unwrap();
    let rows = holdout_rows(101);
    let mut with_target = rows[0].1.clone();
    with_target["income"] = serde_json::json!(">50K");
    with_target["agee"] = serde_json::json!(3);
    let (s, b) = post(
        &addr,
        "/v1/predict",
        &serde_json::json!({ "rows": [with_target, rows[1].1] }),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["classes"], serde_json::json!(["<=50K", ">50K"]));
    assert_eq!(
        b["predictions"][0]["ignored"],
        serde_json::json!(["agee", "income"])
    );
    assert!(b["predictions"][1].get("ignored").is_none(), "{b}");
    // 100 rows in one request, then five one-row requests: 105 predictions, 6 requests.
    let batch: Vec<serde_json::Value> = rows[1..].iter().map(|(_, r)| r.clone()).collect();
    let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": batch }));
    assert_eq!(s, 200, "{b}");
    let mut last_id = String::new();
    for (_, r) in rows.iter().take(5) {
        let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [r] }));
        assert_eq!(s, 200, "{b}");
        last_id = b["predictions"][0]["id"].as_str().unwrap().to_string();
    }
    // Over the limit set: JSON like every other error, naming the limit and the flag.
    let big = format!("{{\"rows\": [{}]}}", " ".repeat(70 << 10));
    let (s, b) = http(&addr, "POST", "/v1/predict", big.as_bytes());
    assert_eq!(s, 413, "{b}");
    let e: serde_json::Value = serde_json::from_str(&b).unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("65536") && msg.contains("--max-body"), "{msg}");
    let feedback = |addr: &str, id: &str| {
        post(
            addr,
            "/v1/feedback",
            &serde_json::json!({ "id": id, "label": ">50K" }),
        )
        .0
    };
    assert_eq!(feedback(&addr, &last_id), 200);
    assert_eq!(feedback(&addr, &format!("{first_session}-107")), 404);
    assert_eq!(feedback(&addr, &format!("{first_session}-99999")), 404);
    assert_eq!(feedback(&addr, "not-an-id"), 400);

    // A second server on the same address: exit 2, a hint, JSON on stdout with --json.
    let out = p.run(&["serve", "--addr", &addr, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", stdout(&out)));
    assert!(e["error"].as_str().unwrap().contains(&addr), "{e}");
    assert!(e["hint"].as_str().unwrap().contains("--addr"), "{e}");
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    wait_committed(&addr, 107);
    assert_eq!(stop(&mut server), Some(0));

    // The failed start took no session; predictions of the first stay known, others do not.
    let (mut server, addr, ready) = start(&p, &[]);
    assert_eq!(ready["session"].as_i64(), Some(first_session + 1));
    assert_eq!(feedback(&addr, &format!("{first_session}-106")), 200);
    assert_eq!(feedback(&addr, &format!("{first_session}-107")), 404);
    assert_eq!(feedback(&addr, &format!("{}-0", first_session + 1)), 404);
    assert_eq!(feedback(&addr, &format!("{}-0", first_session + 2)), 404);
    assert_eq!(stop(&mut server), Some(0));

    let m = p.json(&["monitor"]);
    let champ = &m["models"][0];
    assert_eq!(
        (champ["predictions"].as_u64(), champ["requests"].as_u64()),
        (Some(107), Some(7))
    );
}

#[test]
fn explain_adds_each_predictions_contributions_that_add_up_to_its_score() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "10");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, _) = start(&p, &[]);
    let rows: Vec<serde_json::Value> = holdout_rows(3).into_iter().map(|(_, r)| r).collect();
    let (s, plain) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": rows }));
    assert_eq!(s, 200, "{plain}");
    assert!(plain["predictions"][0].get("contributions").is_none());
    let (s, b) = post(
        &addr,
        "/v1/predict",
        &serde_json::json!({ "rows": rows, "explain": true }),
    );
    assert_eq!(s, 200, "{b}");
    for (i, pred) in b["predictions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(pred["scores"], plain["predictions"][i]["scores"]);
        let c = &pred["contributions"];
        assert_eq!(c["class"], ">50K");
        let features = c["features"].as_array().unwrap();
        assert_eq!(features.len(), 14);
        let sum: f64 = features
            .iter()
            .map(|f| f["contribution"].as_f64().unwrap())
            .sum();
        let raw = c["raw_score"].as_f64().unwrap();
        assert!(
            (c["base"].as_f64().unwrap() + sum - raw).abs() < 1e-9,
            "{c}"
        );
        let p1 = pred["scores"][1].as_f64().unwrap();
        assert!((1.0 / (1.0 + (-raw).exp()) - p1).abs() < 1e-9, "{c}");
    }
    assert_eq!(stop(&mut server), Some(0));
}

/// Issue 20: `monitor` applies `train`'s skew rule to served rows: categories and numbers the
/// champion's training rows never had, as a finding with a pasteable predicate.
#[test]
fn served_rows_out_of_the_training_support_are_skew() {
    let p = Project::new();
    p.import_adult();
    let run = train(&p, "10");
    p.json(&["promote", &run, "--why", "serve it"]);
    let (mut server, addr, _) = start(&p, &[]);
    let rows: Vec<serde_json::Value> = holdout_rows(200)
        .into_iter()
        .enumerate()
        .map(|(i, (_, mut r))| {
            if i % 10 == 0 {
                r["workclass"] = serde_json::json!("Astronaut");
                r["age"] = serde_json::json!(150);
            }
            r
        })
        .collect();
    let (s, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": rows }));
    assert_eq!(s, 200, "{b}");
    wait_committed(&addr, 200);
    assert_eq!(stop(&mut server), Some(0));
    let m = p.json(&["monitor"]);
    let skew = m["skew"].as_array().unwrap();
    let of = |c: &str| {
        skew.iter()
            .find(|s| s["column"] == c)
            .unwrap_or_else(|| panic!("{m}"))
    };
    assert_eq!(of("workclass")["predicate"], "workclass IN ('Astronaut')");
    assert_eq!(of("workclass")["rows"], 20);
    assert_eq!(of("age")["what"], "out of range");
    assert_eq!(of("age")["predicate"], "age > 90");
    let f = p.json(&["findings"]);
    assert!(
        f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "skew" && f["title"].as_str().unwrap().contains("served rows")),
        "{f}"
    );
}
