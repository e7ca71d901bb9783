//! `gyre init`, `gyre import` and `gyre data` on real files, including every bad input the
//! foundation issue lists: each is a clear message, exit 2, and nothing written.

mod common;
use common::*;

#[test]
fn adult_imports_with_its_split_column() {
    let p = Project::new();
    let r = p.import_adult();
    assert_eq!(r["dataset"], "adult");
    assert_eq!(r["rows"], 48842);
    assert_eq!(r["splits"]["train"], 32561);
    assert_eq!(r["splits"]["holdout"], 16281);
    assert_eq!(r["task"], "binary");
    assert_eq!(r["already_imported"], false);
    let cols = r["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 15, "the split column is consumed");
    let workclass = cols.iter().find(|c| c["name"] == "workclass").unwrap();
    assert_eq!(workclass["kind"], "categorical");
    assert_eq!(workclass["missing"], 2799, "'?' is missing by default");
    let age = cols.iter().find(|c| c["name"] == "age").unwrap();
    assert_eq!(age["kind"], "numeric");

    let data = p.json(&["data"]);
    let d = &data["datasets"][0];
    assert_eq!(d["name"], "adult");
    assert_eq!(d["version"], r["version"]);
    let labels = d["labels"].as_array().unwrap();
    assert_eq!(labels[0]["label"], "<=50K");
    assert_eq!(labels[0]["count"], 37155);
    assert_eq!(labels[1]["count"], 11687);
    let sex = d["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sex")
        .unwrap();
    assert_eq!(sex["top"][0]["value"], "Male");
    assert_eq!(sex["top"][0]["count"], 32650);

    // The readable form says the same.
    let out = p.run(&["data", "adult"]);
    let text = stdout(&out);
    assert!(text.contains("48,842 rows"), "{text}");
    assert!(text.contains("train 32,561"), "{text}");
}

#[test]
fn importing_the_same_bytes_twice_writes_nothing() {
    let p = Project::new();
    let first = p.import_adult();
    let before = p.snapshot();
    let second = p.import_adult();
    assert_eq!(second["already_imported"], true);
    assert_eq!(first["version"], second["version"]);
    assert_eq!(first["source"], second["source"]);
    assert_eq!(p.snapshot(), before);
}

#[test]
fn journal_records_user_command_and_objects() {
    let p = Project::new();
    let r = p.import_adult();
    let log = p.json(&["log"]);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["command"], "gyre init");
    assert_eq!(entries[1]["user"], "tester");
    assert!(
        entries[1]["command"]
            .as_str()
            .unwrap()
            .starts_with("gyre import ")
    );
    let objects: Vec<&str> = entries[1]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(objects.contains(&format!("version:{}", r["version"].as_str().unwrap()).as_str()));
    assert!(objects.contains(&"dataset:adult"));
}

#[test]
fn row_ids_follow_file_order_and_holdout_is_stratified_and_seeded() {
    let p = Project::new();
    let mut csv = String::from("x,color,y\n");
    for i in 0..1000 {
        let y = if i % 4 == 0 { "yes" } else { "no" };
        csv.push_str(&format!("{i},{},{y}\n", ["red", "blue"][i % 2]));
    }
    let f = p.write("toy.csv", csv.as_bytes());
    let r = p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.2",
        "--seed",
        "7",
    ]);
    assert_eq!(r["splits"]["holdout"], 200);
    assert_eq!(r["splits"]["train"], 800);
    let d = p.json(&["data", "toy"]);
    let yes = d["datasets"][0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == "yes")
        .unwrap()
        .clone();
    assert_eq!(yes["by_split"]["holdout"], 50, "stratified: 20% of 250");
    // Same seed, new project: the same version (the split is part of it).
    let q = Project::new();
    let f2 = q.write("toy.csv", csv.as_bytes());
    let r2 = q.json(&[
        "import",
        f2.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.2",
        "--seed",
        "7",
    ]);
    assert_eq!(r["version"], r2["version"]);
}

#[test]
fn time_column_holds_out_the_latest_rows() {
    let p = Project::new();
    let mut csv = String::from("when,x,y\n");
    for i in 0..100 {
        // Out of order in the file; the latest 10 by time are 90..99.
        let t = (i * 37) % 100;
        csv.push_str(&format!(
            "2001-01-01T00:{:02},{},{}\n",
            t % 60,
            t,
            t as f64 * 0.5
        ));
    }
    let f = p.write("times.csv", csv.as_bytes());
    let r = p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--time-column",
        "x",
        "--holdout",
        "0.1",
    ]);
    assert_eq!(r["task"], "regression");
    assert_eq!(r["splits"]["holdout"], 10);
    let x = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "x")
        .unwrap()
        .clone();
    assert_eq!(x["role"], "time");
}

#[test]
fn parquet_and_gzip_inputs_are_read() {
    let p = Project::new();
    // Write a small gzip CSV and import it; then a Parquet file made by gyre itself.
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"a,b,label\n1,x,0\n2,y,1\n3,x,0\n4,y,1\n5,x,1\n")
        .unwrap();
    let f = p.write("small.csv.gz", &gz.finish().unwrap());
    let r = p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "label",
        "--holdout",
        "0.4",
    ]);
    assert_eq!(r["rows"], 5);
    assert_eq!(
        r["task"], "binary",
        "two integer values make a binary target"
    );
    // The stored object is Parquet: import it as a new dataset.
    let objects = files_under(&p.path().join(".gyre/objects"));
    assert_eq!(objects.len(), 1);
    let pq = p.path().join("copy.parquet");
    std::fs::copy(&objects[0], &pq).unwrap();
    let out = p.run(&[
        "import",
        pq.to_str().unwrap(),
        "--target",
        "label",
        "--json",
    ]);
    // Its row_id column is reserved: a clear refusal, with a hint.
    assert_error(&out, &["row_id", "reserved", "--id-column"]);
}

#[test]
fn id_column_must_be_unique() {
    let p = Project::new();
    let f = p.write("ids.csv", b"id,x,y\na,1,0\nb,2,1\na,3,0\nc,4,1\n");
    let out = p.run(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--id-column",
        "id",
    ]);
    assert_error(&out, &["\"a\" twice", "line 2", "line 4"]);
    let f = p.write("ids2.csv", b"id,x,y\na,1,0\nb,2,1\nd,3,0\nc,4,1\nf,5,0\n");
    let r = p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--id-column",
        "id",
    ]);
    let id = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "id")
        .unwrap()
        .clone();
    assert_eq!(id["role"], "id");
}

/// Runs an import that must fail, and checks the message and that nothing was written.
fn bad_import(p: &Project, file: &std::path::Path, extra: &[&str], needles: &[&str]) {
    let before = p.snapshot();
    let mut args = vec!["import", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = p.run(&args);
    assert_error(&out, needles);
    assert_eq!(p.snapshot(), before, "a failed import wrote something");
    assert!(files_under(&p.path().join(".gyre/tmp")).is_empty());
}

#[test]
fn ragged_rows_name_the_line() {
    let p = Project::new();
    let f = p.write("ragged.csv", b"a,b,y\n1,2,0\n3,4,1\n5,1\n6,7,0\n");
    bad_import(
        &p,
        &f,
        &["--target", "y"],
        &["ragged.csv", "line 4", "expected 3 fields, found 2"],
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let p = Project::new();
    let f = p.write("bad.csv", b"a,b,y\n1,x,0\n2,\xff\xfe,1\n");
    bad_import(
        &p,
        &f,
        &["--target", "y"],
        &["bad.csv", "invalid UTF-8", "line 3"],
    );
}

#[test]
fn empty_and_header_only_files() {
    let p = Project::new();
    let f = p.write("empty.csv", b"");
    bad_import(&p, &f, &["--target", "y"], &["empty.csv", "empty"]);
    let f = p.write("header.csv", b"a,b,y\n");
    bad_import(&p, &f, &["--target", "y"], &["header.csv", "no data rows"]);
}

#[test]
fn duplicate_column_names() {
    let p = Project::new();
    let f = p.write("dup.csv", b"a,b,a,y\n1,2,3,0\n");
    bad_import(
        &p,
        &f,
        &["--target", "y"],
        &["dup.csv", "duplicate column name \"a\"", "columns 1 and 3"],
    );
}

#[test]
fn unknown_target_suggests_the_closest() {
    let p = Project::new();
    let adult = adult();
    bad_import(
        &p,
        &adult,
        &["--target", "incme", "--split-column", "split"],
        &["column \"incme\" not found", "did you mean \"income\""],
    );
}

#[test]
fn one_class_target() {
    let p = Project::new();
    let f = p.write("one.csv", b"a,y\n1,yes\n2,yes\n3,yes\n");
    bad_import(
        &p,
        &f,
        &["--target", "y"],
        &["one.csv", "only one class", "\"yes\""],
    );
}

#[test]
fn missing_and_non_numeric_targets() {
    let p = Project::new();
    let f = p.write("nan.csv", b"a,y\n1,0.5\n2,NA\n3,1.5\n");
    bad_import(
        &p,
        &f,
        &["--target", "y"],
        &["target column \"y\"", "missing a value at line 3"],
    );
    let f = p.write("text.csv", b"a,y\n1,0.5\n2,high\n3,1.5\n");
    bad_import(
        &p,
        &f,
        &["--target", "y", "--task", "regression"],
        &["non-numeric value \"high\" at line 3"],
    );
}

#[test]
fn bad_split_values_name_the_line() {
    let p = Project::new();
    let f = p.write("split.csv", b"a,s,y\n1,train,0\n2,test,1\n3,dev,0\n");
    bad_import(
        &p,
        &f,
        &["--target", "y", "--split-column", "s"],
        &["line 4", "\"dev\"", "train, valid, test, holdout"],
    );
}

#[test]
fn unknown_file_type_directory_and_missing_path() {
    let p = Project::new();
    let f = p.write("data.xlsx", b"PK\x03\x04 not really");
    bad_import(
        &p,
        &f,
        &["--target", "y"],
        &["data.xlsx", "unknown file type"],
    );
    let d = p.path().join("somedir");
    std::fs::create_dir(&d).unwrap();
    bad_import(&p, &d, &["--target", "y"], &["somedir", "is a directory"]);
    let missing = p.path().join("nope.csv");
    bad_import(
        &p,
        &missing,
        &["--target", "y"],
        &["nope.csv", "no such file"],
    );
}

#[test]
fn init_refuses_an_existing_project() {
    let p = Project::new();
    let config = std::fs::read(p.path().join("gyre.toml")).unwrap();
    let out = p.run(&["init"]);
    assert_error(&out, &["already a gyre project"]);
    assert_eq!(std::fs::read(p.path().join("gyre.toml")).unwrap(), config);
    let out = p.run(&["init", p.path().to_str().unwrap()]);
    assert_error(&out, &["already a gyre project"]);
}

#[test]
fn commands_outside_a_project_say_how_to_create_one() {
    let p = Project::empty();
    for args in [
        vec!["data"],
        vec!["log"],
        vec!["import", "x.csv", "--target", "y"],
    ] {
        let out = p.run(&args);
        assert_error(&out, &["not inside a gyre project", "gyre init"]);
    }
    assert!(!p.path().join(".gyre").exists());
}

#[test]
fn project_is_found_from_a_subdirectory_and_by_flag() {
    let p = Project::new();
    let sub = p.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let out = std::process::Command::new(bin())
        .args(["log", "--json"])
        .current_dir(&sub)
        .env_remove("GYRE_PROJECT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let elsewhere = Project::empty();
    let out = elsewhere.run(&["--project", p.path().to_str().unwrap(), "log", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = elsewhere
        .cmd(&["log", "--json"])
        .env("GYRE_PROJECT", p.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_decoded_table_cache_is_only_a_shortcut() {
    // Import keeps the decoded table as an Arrow IPC file beside the Parquet object of record.
    // A damaged or deleted file is a miss: the answer is the same, and the file is written
    // again.
    let p = Project::new();
    p.import_adult();
    let ipc: Vec<_> = files_under(&p.path().join(".gyre/derived"))
        .into_iter()
        .filter(|o| std::fs::read(o).unwrap().starts_with(b"ARROW1"))
        .collect();
    assert_eq!(ipc.len(), 1, "one cached table after import");
    let ipc = &ipc[0];
    let good = std::fs::read(ipc).unwrap();
    let row = |p: &Project| p.json(&["why", "48000"]);
    let expected = row(&p);
    assert_eq!(
        expected["values"][0],
        serde_json::json!(["age", "44"]),
        "{expected}"
    );
    std::fs::write(ipc, &good[..good.len() / 2]).unwrap();
    assert_eq!(row(&p), expected);
    assert_eq!(std::fs::read(ipc).unwrap(), good, "healed");
    // Damage that keeps the length (a flipped bit in the data) is caught by the checksum.
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 0x04;
    std::fs::write(ipc, &flipped).unwrap();
    assert_eq!(row(&p), expected);
    assert_eq!(std::fs::read(ipc).unwrap(), good, "healed again");
    // An empty file (a crash right after the rename) cannot be mapped, and is a miss too.
    std::fs::write(ipc, b"").unwrap();
    assert_eq!(row(&p), expected);
    assert_eq!(std::fs::read(ipc).unwrap(), good, "healed from empty");
    std::fs::remove_file(ipc).unwrap();
    assert_eq!(row(&p), expected);
    assert_eq!(std::fs::read(ipc).unwrap(), good, "written again");
}

/// Flights as a new user had them (issue 20): the label is made from a measurement
/// (`late = arr_delay > 15`), cancelled flights have no arrival delay, and the columns that
/// leak the label must not be features.
fn flights_csv(p: &Project) -> std::path::PathBuf {
    let mut text = String::from("origin,distance,dep_delay,arr_delay,carrier\n");
    // A fixed pseudo-random sequence (a linear congruential generator, seed 7).
    let mut rng = Lcg::new(7);
    let mut next = || rng.next_f64();
    for i in 0..600 {
        let origin = ["JFK", "LGA", "EWR"][i % 3];
        let distance = 200.0 + 2000.0 * next();
        let dep = (next() * 60.0 - 10.0).round();
        let arr = if i % 50 == 7 {
            String::new()
        } else {
            format!("{}", (dep + next() * 20.0 - 8.0).round())
        };
        let carrier = ["AA", "B6", "DL", "UA"][(next() * 4.0) as usize];
        text.push_str(&format!("{origin},{distance:.0},{dep},{arr},{carrier}\n"));
    }
    p.write("flights.csv", text.as_bytes())
}

#[test]
fn a_label_made_from_a_measurement_leaves_its_inputs_out() {
    let p = Project::new();
    let file = flights_csv(&p);
    let f = file.to_str().unwrap();
    // Cancelled flights (no arr_delay) have no label: by default the first one is named.
    let out = p.run(&[
        "import",
        f,
        "--target",
        "late",
        "--target-expr",
        "arr_delay > 15",
    ]);
    assert_error(&out, &["late", "line 9", "--missing-target drop"]);
    assert_eq!(p.snapshot().1.len(), 0, "nothing stored");
    // A label name that is already a column is refused.
    assert_error(
        &p.run(&[
            "import",
            f,
            "--target",
            "origin",
            "--target-expr",
            "arr_delay > 15",
        ]),
        &["--target origin is a column of the file"],
    );
    assert_error(
        &p.run(&[
            "import",
            f,
            "--target",
            "late",
            "--target-expr",
            "arr_dealy > 15",
        ]),
        &["arr_dealy", "did you mean \"arr_delay\""],
    );
    let r = p.json(&[
        "import",
        f,
        "--target",
        "late",
        "--target-expr",
        "arr_delay > 15",
        "--missing-target",
        "drop",
        "--ignore",
        "dep_delay",
    ]);
    assert_eq!(r["dropped_rows"], 12);
    assert_eq!(r["rows"], 588);
    assert_eq!(r["task"], "binary");
    assert_eq!(r["classes"], serde_json::json!(["false", "true"]));
    assert_eq!(r["ignored"], serde_json::json!(["dep_delay", "arr_delay"]));
    let role = |name: &str| {
        r["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["role"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(role("arr_delay"), "ignored");
    assert_eq!(role("dep_delay"), "ignored");
    assert_eq!(role("distance"), "feature");
    assert_eq!(role("late"), "target");
    // Ignored columns are no features, yet predicates and suites read them.
    p.json(&[
        "suite",
        "add",
        "delayed_departures",
        "--where",
        "dep_delay > 30",
    ]);
    let t = p.json(&["train", "-p", "num_iterations=10"]);
    assert!(t["run"].is_string());
    let m = &t["metrics"];
    assert!(m.get("delayed_departures").is_some(), "{m}");
    // The same bytes with the same options are the same source; other options another one.
    let again = p.json(&[
        "import",
        f,
        "--target",
        "late",
        "--target-expr",
        "arr_delay > 15",
        "--missing-target",
        "drop",
        "--ignore",
        "dep_delay",
    ]);
    assert_eq!(again["already_imported"], true);
    // A CASE label names its classes.
    let q = Project::new();
    let file = flights_csv(&q);
    let r = q.json(&[
        "import",
        file.to_str().unwrap(),
        "--target",
        "status",
        "--target-expr",
        "CASE WHEN arr_delay IS NULL THEN 'cancelled' WHEN arr_delay > 15 THEN 'late' ELSE 'on_time' END",
    ]);
    assert_eq!(r["task"], "multiclass");
    assert_eq!(
        r["classes"],
        serde_json::json!(["cancelled", "late", "on_time"])
    );
    assert_eq!(r["dropped_rows"], 0);
}
