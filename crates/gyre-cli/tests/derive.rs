//! Derived features (issue 26): `gyre edit add-feature NAME --expr EXPR`, trained on, served and
//! scored offline from the raw fields with the same evaluator, so served == offline.

mod common;
use common::*;
use std::io::Read;

/// A CSV file's rows: header, then cells as text.
fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// A request row from a CSV row: numbers as numbers, empty or `?` as null, text as text.
fn json_row(header: &[String], cells: &[String], skip: &[&str]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in header.iter().zip(cells) {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let value = if v.is_empty() || v == "?" {
            serde_json::Value::Null
        } else if let Ok(x) = v.parse::<f64>() {
            serde_json::json!(x)
        } else {
            serde_json::json!(v)
        };
        m.insert(k.clone(), value);
    }
    serde_json::Value::Object(m)
}

#[test]
fn derived_features_train_serve_and_score_offline_alike() {
    let p = Project::new();
    p.import_adult();
    let e = p.json(&[
        "edit",
        "add-feature",
        "net_gain",
        "--expr",
        "capital_gain - capital_loss",
        "--why",
        "what the capital columns say together",
    ]);
    assert_eq!(e["feature"]["kind"], "numeric");
    let e = p.json(&[
        "edit",
        "add-feature",
        "age_band",
        "--expr",
        "case when age < 30 then 'young' when age < 50 then 'middle' else 'older' end",
        "--why",
        "life stages",
    ]);
    assert_eq!(e["feature"]["kind"], "categorical");
    assert_eq!(
        e["feature"]["expr"],
        "CASE WHEN age < 30 THEN 'young' WHEN age < 50 THEN 'middle' ELSE 'older' END"
    );
    assert_eq!(
        e["feature"]["categories"],
        serde_json::json!(["middle", "older", "young"])
    );
    // Derived features are ordinary columns for predicates and suites.
    p.json(&[
        "suite",
        "add",
        "young",
        "--where",
        "age_band = 'young' AND net_gain > 0",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=30"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&["promote", &run, "--why", "serve it"]);

    // Offline: the whole file scored from its raw columns equals the stored predictions.
    let scored = p.path().join("scored.csv");
    let r = p.json(&[
        "predict",
        &run,
        adult().to_str().unwrap(),
        "--out",
        scored.to_str().unwrap(),
    ]);
    assert_eq!(r["rows"], 48842);
    let stored = p.path().join("stored.csv");
    p.json(&["predictions", &run, "--out", stored.to_str().unwrap()]);
    let (sh, srows) = csv_rows(&std::fs::read_to_string(&stored).unwrap());
    let (oh, orows) = csv_rows(&std::fs::read_to_string(&scored).unwrap());
    let (s_id, s_score) = (0, sh.iter().position(|c| c == "score_>50K").unwrap());
    let o_score = oh.iter().position(|c| c == "score_>50K").unwrap();
    for s in &srows {
        let row: usize = s[s_id].parse().unwrap();
        assert_eq!(orows[row][o_score], s[s_score], "row {row}");
    }

    // Served: raw fields in, the derived features computed by the server.
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let (header, rows) = csv_rows(&text);
    let (mut server, addr, _) = start(&p, &[]);
    let sent: Vec<usize> = srows
        .iter()
        .take(300)
        .map(|s| s[s_id].parse().unwrap())
        .collect();
    let body: Vec<serde_json::Value> = sent
        .iter()
        .map(|&r| json_row(&header, &rows[r], &["income", "split"]))
        .collect();
    let (status, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": body }));
    assert_eq!(status, 200, "{b}");
    for (i, &r) in sent.iter().enumerate() {
        let served = b["predictions"][i]["scores"][1].as_f64().unwrap();
        let offline: f64 = orows[r][o_score].parse().unwrap();
        assert_eq!(served, offline, "row {r}");
        assert!(
            b["predictions"][i].get("ignored").is_none(),
            "{}",
            b["predictions"][i]
        );
    }
    // A request that sends a derived feature is told it is derived (its value is not used).
    let mut with = json_row(&header, &rows[sent[0]], &["income", "split"]);
    with["net_gain"] = serde_json::json!(1e9);
    let (status, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [with] }));
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b["predictions"][0]["derived"],
        serde_json::json!(["net_gain"])
    );
    let offline: f64 = orows[sent[0]][o_score].parse().unwrap();
    assert_eq!(b["predictions"][0]["scores"][1].as_f64().unwrap(), offline);
    // A raw field a derived feature needs is named when missing.
    let mut without = json_row(&header, &rows[sent[0]], &["income", "split"]);
    without.as_object_mut().unwrap().remove("capital_loss");
    let (status, b) = post(
        &addr,
        "/v1/predict",
        &serde_json::json!({ "rows": [without] }),
    );
    assert_eq!(status, 422, "{b}");
    assert!(b["error"].as_str().unwrap().contains("capital_loss"), "{b}");
    // A graceful stop commits the log; monitor watches the raw fields, not the derived ones
    // (served rows do not carry them, so they would read as missing and drift).
    std::process::Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    server.0.wait().unwrap();
    let m = p.json(&["monitor"]);
    assert_eq!(m["predictions"], 301);
    let watched: Vec<&str> = m["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert!(watched.contains(&"capital_gain"), "{watched:?}");
    assert!(
        !watched.contains(&"net_gain") && !watched.contains(&"age_band"),
        "{watched:?}"
    );
    assert!(
        !m["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["drifted"] == true && f["feature"] == "net_gain")
    );

    // Edits on derived features: drop and revert work like any edit; a derived feature that a
    // later edit reads cannot be reverted first.
    let before = p.json(&["data", "--versions"]).to_string();
    let out = p.run(&["edit", "revert", "1", "--why", "undo"]);
    assert_error(&out, &["suite young reads the feature \"net_gain\""]);
    assert_eq!(p.json(&["data", "--versions"]).to_string(), before);
    p.json(&[
        "edit",
        "exclude",
        "--where",
        "age_band = 'older' AND hours_per_week > 80",
        "--why",
        "reads age_band",
    ]);
    let before = p.json(&["data", "--versions"]).to_string();
    let out = p.run(&["edit", "revert", "2", "--why", "undo"]);
    assert_error(
        &out,
        &[
            "edit #3",
            "reads the feature \"age_band\"",
            "revert edit #3",
        ],
    );
    assert_eq!(p.json(&["data", "--versions"]).to_string(), before);
    p.json(&["edit", "drop-feature", "age_band", "--why", "try without"]);
    let again = p.json(&["train", "-p", "num_iterations=5"]);
    assert!(again["run"].is_string());
    // Ablating a derived feature retrains without the edits that read it too, and says so.
    let a = p.json(&["ablate", "latest"]);
    let effects = a["edits"].as_array().unwrap();
    let of = |id: i64| effects.iter().find(|e| e["edit"] == id).unwrap();
    assert_eq!(of(2)["also_without"], serde_json::json!([3, 4]));
    assert!(of(1).get("also_without").is_none(), "{}", of(1));
    // Bad expressions leave the project as it was.
    let snapshot = p.snapshot();
    assert_error(
        &p.run(&[
            "edit",
            "add-feature",
            "z",
            "--expr",
            "LOWER(age)",
            "--why",
            "w",
        ]),
        &["in LOWER(age)", "LOWER takes text", "hint:"],
    );
    assert_error(
        &p.run(&[
            "edit",
            "add-feature",
            "z",
            "--expr",
            "hours_per_weak * 2",
            "--why",
            "w",
        ]),
        &["did you mean \"hours_per_week\""],
    );
    assert_error(
        &p.run(&["edit", "add-feature", "age", "--expr", "1", "--why", "w"]),
        &["\"age\" already exists"],
    );
    assert_error(
        &p.run(&[
            "edit",
            "add-feature",
            "z",
            "--expr",
            "income = '>50K'",
            "--why",
            "w",
        ]),
        &["leaks"],
    );
    assert_eq!(p.snapshot(), snapshot);
}

/// The time column is no feature, but features can be derived from it: the hour and the day of
/// the week of Elec2's half-hourly prices, computed alike in training, offline and in serving.
#[test]
fn features_derived_from_the_time_column() {
    let p = Project::new();
    let elec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/elec2.csv.gz");
    p.json(&[
        "import",
        elec.to_str().unwrap(),
        "--target",
        "class",
        "--time-column",
        "timestamp",
    ]);
    let e = p.json(&[
        "edit",
        "add-feature",
        "hour",
        "--expr",
        "EXTRACT(hour FROM timestamp)",
        "--why",
        "prices follow the day",
    ]);
    assert_eq!(e["feature"]["kind"], "numeric");
    p.json(&[
        "edit",
        "add-feature",
        "weekend",
        "--expr",
        "EXTRACT(dow FROM timestamp) IN (0, 6)",
        "--why",
        "and the week",
    ]);
    assert_error(
        &p.run(&[
            "edit",
            "add-feature",
            "t2",
            "--expr",
            "timestamp",
            "--why",
            "w",
        ]),
        &["is a time, which is not a feature", "EXTRACT"],
    );
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&["promote", &run, "--why", "serve it"]);
    let scored = p.path().join("scored.csv");
    p.json(&[
        "predict",
        &run,
        elec.to_str().unwrap(),
        "--out",
        scored.to_str().unwrap(),
    ]);
    let (oh, orows) = csv_rows(&std::fs::read_to_string(&scored).unwrap());
    let o_score = oh.len() - 1;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&elec).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let (header, rows) = csv_rows(&text);
    let (mut server, addr, _) = start(&p, &[]);
    let picked: Vec<usize> = (0..rows.len()).step_by(rows.len() / 50).collect();
    let body: Vec<serde_json::Value> = picked
        .iter()
        .map(|&r| json_row(&header, &rows[r], &["class"]))
        .collect();
    let (status, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": body }));
    assert_eq!(status, 200, "{b}");
    for (i, &r) in picked.iter().enumerate() {
        let served = b["predictions"][i]["scores"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_f64();
        let offline: f64 = orows[r][o_score].parse().unwrap();
        assert_eq!(served, Some(offline), "row {r}");
    }
    // A time that is not one is named.
    let mut bad = json_row(&header, &rows[0], &["class"]);
    bad["timestamp"] = serde_json::json!("soon");
    let (status, b) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [bad] }));
    assert_eq!(status, 422, "{b}");
    assert!(b["error"].as_str().unwrap().contains("timestamp"), "{b}");
    drop(server.0.kill());
}

/// Rows added later (add-source, feedback import) get the derived features computed as the
/// others, whatever a column of the new file with the same name says.
#[test]
fn added_rows_get_derived_features() {
    let p = Project::new();
    let first = p.write(
        "a.csv",
        b"a,b,split,y\n1,2,train,no\n3,4,train,yes\n5,6,test,no\n7,8,test,yes\n2,2,train,no\n9,9,train,yes\n",
    );
    p.json(&[
        "import",
        first.to_str().unwrap(),
        "--target",
        "y",
        "--split-column",
        "split",
    ]);
    p.json(&[
        "edit",
        "add-feature",
        "s",
        "--expr",
        "a + b",
        "--why",
        "sum",
    ]);
    let more = p.write("b.csv", b"a,b,split,y,s\n10,20,train,yes,999\n");
    let e = p.json(&[
        "edit",
        "add-source",
        more.to_str().unwrap(),
        "--why",
        "more rows",
    ]);
    assert_eq!(e["rows_affected"], 1);
    let w = p.json(&["why", "6"]);
    let s = w["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[0] == "s")
        .unwrap()[1]
        .clone();
    assert_eq!(s, "30");
}

/// A version's derived columns are computed once and kept beside its decoded table; a damaged
/// copy is a miss, computed again, with the same results.
#[test]
fn derived_columns_are_kept_with_their_version() {
    let p = Project::new();
    p.import_adult();
    p.json(&[
        "edit",
        "add-feature",
        "net_gain",
        "--expr",
        "capital_gain - capital_loss",
        "--why",
        "net",
    ]);
    let first = p.json(&["train", "-p", "num_iterations=10"]);
    let dir = p.path().join(".gyre/derived/features-ipc-v1");
    let kept: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(kept.len(), 1, "one version with derived features");
    let again = p.json(&["train", "-p", "num_iterations=10"]);
    assert_eq!(first["metrics"], again["metrics"]);
    let file = kept[0].as_ref().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let third = p.json(&["train", "-p", "num_iterations=10"]);
    assert_eq!(first["metrics"], third["metrics"]);
    let w = p.json(&["why", "0"]);
    assert!(
        w["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v[0] == "net_gain" && v[1] == "2174")
    );
}
