//! `gyre serve`: real HTTP on loopback against a real server process.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Kills the server if the test fails before it stops it, so no process outlives the test.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
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
    let mut server = Server(
        p.cmd(&["serve", "--addr", "127.0.0.1:0", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&first).unwrap();
    let addr = ready["addr"].as_str().unwrap().to_string();
    assert_eq!(ready["run"], run.as_str());
    let (status, body) = http(&addr, "GET", "/v1/health", b"");
    assert_eq!(status, 200, "{body}");

    let rows = holdout_rows(40);
    let req =
        serde_json::json!({ "rows": rows.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() });
    let (status, body) = http(&addr, "POST", "/v1/predict", req.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    let preds = served["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 40);
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

    // SIGTERM: a graceful stop.
    let pid = server.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = server.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn serving_without_a_champion_says_how_to_get_one() {
    let p = Project::new();
    p.import_adult();
    assert_error(
        &p.run(&["serve", "--addr", "127.0.0.1:0"]),
        &["no champion", "gyre promote"],
    );
}
