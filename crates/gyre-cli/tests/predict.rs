//! `gyre predict RUN FILE --out FILE`: offline scoring with the same checks and numbers as
//! serving (issue 25).

mod common;
use common::*;
use std::collections::HashMap;
use std::io::Read;

/// The bundled Adult file's lines (header first).
fn adult_lines() -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(String::from).collect()
}

/// A CSV file's rows as maps from column to text.
fn read_csv(path: &std::path::Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    rdr.records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn a_whole_file_scores_as_the_run_scored_its_holdout() {
    let p = Project::new();
    p.import_adult();
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let out = p.path().join("all.csv");
    let r = p.json(&[
        "predict",
        &run,
        adult().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--keep",
        "split",
    ]);
    assert_eq!(r["rows"], 48842);
    assert_eq!(r["classes"], serde_json::json!(["<=50K", ">50K"]));
    assert_eq!(r["ignored"], serde_json::json!(["income"]));
    let predicted: u64 = r["predicted"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(predicted, 48842);
    let scored = read_csv(&out);
    assert_eq!(scored.len(), 48842);
    // The stored holdout predictions of the run: row ids are the file's row numbers.
    let stored_path = p.path().join("holdout.csv");
    p.json(&["predictions", &run, "--out", stored_path.to_str().unwrap()]);
    let stored = read_csv(&stored_path);
    assert!(stored.len() > 10_000);
    for s in &stored {
        let row: usize = s["row_id"].parse().unwrap();
        let mine = &scored[row];
        assert_eq!(mine["split"], "test", "row {row}");
        assert_eq!(mine["prediction"], s["prediction"], "row {row}");
        for c in ["score_<=50K", "score_>50K"] {
            let (a, b): (f64, f64) = (mine[c].parse().unwrap(), s[c].parse().unwrap());
            assert_eq!(a.to_bits(), b.to_bits(), "row {row} {c}: {a} vs {b}");
        }
    }
    // Readable output names the file, the labels and what was ignored.
    let again = p.path().join("again.parquet");
    let text = stdout(&p.run(&[
        "predict",
        "latest",
        adult().to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]));
    assert!(text.contains("scored 48,842 rows"), "{text}");
    assert!(text.contains("ignored: income, split"), "{text}");
    assert!(again.exists());
}

#[test]
fn rows_that_do_not_fit_are_named_and_nothing_is_written() {
    let p = Project::new();
    p.import_adult();
    let run = p.json(&["train", "-p", "num_iterations=5"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let lines = adult_lines();
    let header = &lines[0];
    let age_at = header.split(',').position(|c| c == "age").unwrap();
    let work_at = header.split(',').position(|c| c == "workclass").unwrap();
    let with = |i: usize, value: &str, at: usize| {
        let mut cells: Vec<&str> = lines[i].split(',').collect();
        cells[at] = value;
        cells.join(",")
    };
    // Line 3 has an age that is not a number.
    let bad = p.write(
        "bad.csv",
        format!("{header}\n{}\n{}\n", lines[1], with(2, "old", age_at)).as_bytes(),
    );
    let out = p.path().join("out.csv");
    let o = out.to_str().unwrap();
    assert_error(
        &p.run(&["predict", &run, bad.to_str().unwrap(), "--out", o]),
        &[
            "bad.csv",
            "line 3",
            "column \"age\"",
            "\"old\" is not a number",
        ],
    );
    assert!(!out.exists());
    // A feature's column missing from the file: named, with the nearest column.
    let renamed = p.write(
        "renamed.csv",
        format!("{}\n{}\n", header.replace("age,", "agee,"), lines[1]).as_bytes(),
    );
    assert_error(
        &p.run(&["predict", &run, renamed.to_str().unwrap(), "--out", o]),
        &["needs the feature \"age\"", "did you mean \"agee\""],
    );
    assert_error(
        &p.run(&[
            "predict",
            &run,
            renamed.to_str().unwrap(),
            "--out",
            "x.json",
        ]),
        &["x.json", ".csv or .parquet"],
    );
    // An unseen category is read as missing and counted, as serving does.
    let unseen = p.write(
        "unseen.csv",
        format!(
            "{header}\n{}\n{}\n",
            with(1, "Astronaut", work_at),
            lines[2]
        )
        .as_bytes(),
    );
    let r = p.json(&["predict", &run, unseen.to_str().unwrap(), "--out", o]);
    assert_eq!(r["rows"], 2);
    assert_eq!(r["unseen"], serde_json::json!({ "workclass": 1 }));
    assert_eq!(read_csv(&out).len(), 2);
    let out = p.run(&["predict", &run, "nope.csv", "--out", o, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(e["error"].as_str().unwrap().contains("nope.csv"), "{e}");
}
