//! Edits, versions, suites and slices through the real binary on Adult and generated data.

mod common;
use common::*;
use std::io::Read;

fn adult_project() -> Project {
    let p = Project::new();
    p.import_adult();
    p
}

/// Adult's rows as (split, age, income), straight from the file: an independent count.
fn adult_rows() -> Vec<(String, f64, String)> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(adult()).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[15].to_string(), c[0].parse().unwrap(), c[14].to_string())
        })
        .collect()
}

/// Imports a generated CSV whose target is `y` and whose `split` column says train or test.
fn import_with_split(p: &Project, file: &std::path::Path) -> serde_json::Value {
    p.json(&[
        "import",
        file.to_str().unwrap(),
        "--target",
        "y",
        "--split-column",
        "split",
    ])
}

fn versions(p: &Project) -> Vec<serde_json::Value> {
    p.json(&["data", "--versions"])["versions"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn exclude_include_revert_and_the_version_chain() {
    let p = adult_project();
    let v0 = p.json(&["data"])["datasets"][0]["version"].clone();
    let young_train = adult_rows()
        .iter()
        .filter(|(s, age, _)| s == "train" && *age < 20.0)
        .count() as u64;

    let e = p.json(&[
        "edit",
        "exclude",
        "--where",
        "age < 20",
        "--why",
        "teenagers are not our users",
    ]);
    assert_eq!(e["rows_affected"], young_train);
    assert_ne!(e["version"], v0);
    let r = p.json(&["train", "-p", "num_iterations=10"]);
    assert_eq!(r["rows"]["train"], 32561 - young_train);
    assert_eq!(
        r["rows"]["holdout"], 16281,
        "evaluation rows are never dropped"
    );
    assert_eq!(r["version"], e["version"]);

    let inc = p.json(&[
        "edit",
        "include",
        "--where",
        "age < 18",
        "--why",
        "keep the youngest after all",
    ]);
    let under18 = adult_rows()
        .iter()
        .filter(|(s, a, _)| s == "train" && *a < 18.0)
        .count() as u64;
    assert_eq!(inc["rows_affected"], under18);

    let rev = p.json(&[
        "edit",
        "revert",
        &inc["edit"].to_string(),
        "--why",
        "changed my mind",
    ]);
    assert_eq!(
        rev["version"], e["version"],
        "revert gives back the version before"
    );
    let rev0 = p.json(&[
        "edit",
        "revert",
        &e["edit"].to_string(),
        "--why",
        "undo all",
    ]);
    assert_eq!(rev0["version"], v0, "and back to the original");

    let chain = versions(&p);
    assert_eq!(chain.len(), 5);
    assert_eq!(chain[1]["why"], "teenagers are not our users");
    assert_eq!(
        chain[1]["change"]["training_rows_delta"],
        -(young_train as i64)
    );
    assert_eq!(chain[4]["version"], v0);
    // A past version materializes exactly.
    let past = p.json(&["data", "--version", &e["version"].as_str().unwrap()[..10]]);
    assert_eq!(past["excluded_rows"], young_train);
    // Reverting twice, or a revert, is refused.
    let out = p.run(&["edit", "revert", &e["edit"].to_string(), "--why", "again"]);
    assert_error(&out, &["already reverted"]);
    let out = p.run(&["edit", "revert", "999", "--why", "x"]);
    assert_error(&out, &["edit #999 does not exist"]);
    // The journal keeps the reasons.
    let log = p.json(&["log"]);
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["why"] == "changed my mind")
    );
}

#[test]
fn relabel_weight_and_drop_feature() {
    let p = adult_project();
    let rows = adult_rows();
    let ids = [0usize, 1, 7, 32561];
    let differing = ids.iter().filter(|&&i| rows[i].2 != ">50K").count() as u64;
    let r = p.json(&[
        "edit",
        "relabel",
        "--rows",
        "0,1,7,32561",
        "--to",
        ">50K",
        "--why",
        "checked by hand",
    ]);
    assert_eq!(r["rows_affected"], differing);
    let d = p.json(&["data", "--version", r["version"].as_str().unwrap()]);
    let high = d["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == ">50K")
        .unwrap()["count"]
        .as_u64()
        .unwrap();
    assert_eq!(high, 11687 + differing, "relabel applies in every split");

    let w = p.json(&[
        "edit",
        "weight",
        "--where",
        "sex = 'Female'",
        "--by",
        "2",
        "--why",
        "under-served",
    ]);
    let women_train = 10771; // train rows with sex = Female in adult.data
    assert_eq!(w["rows_affected"], women_train);
    let dropped = p.json(&[
        "edit",
        "drop-feature",
        "fnlwgt",
        "--why",
        "a sampling weight, not a feature",
    ]);
    let v = p.json(&["data", "--version", dropped["version"].as_str().unwrap()]);
    assert_eq!(v["dropped_features"][0], "fnlwgt");
    assert_eq!(v["weighted_rows"], women_train);
    let t = p.json(&["train", "-p", "num_iterations=10"]);
    assert_eq!(t["version"], dropped["version"]);
}

#[test]
fn bad_edits_are_refused_and_write_nothing() {
    let p = adult_project();
    let check = |args: &[&str], needles: &[&str]| {
        let before = p.snapshot();
        let chain = versions(&p).len();
        assert_error(&p.run(args), needles);
        assert_eq!(p.snapshot(), before);
        assert_eq!(versions(&p).len(), chain);
    };
    check(&["edit", "exclude", "--where", "age < 20"], &["--why"]);
    check(
        &["edit", "exclude", "--where", "agee < 20", "--why", "x"],
        &["\"agee\" not found", "did you mean \"age\""],
    );
    check(
        &["edit", "exclude", "--where", "age = 'old'", "--why", "x"],
        &["type mismatch", "\"age\" is numeric", "'old' is text"],
    );
    check(
        &["edit", "exclude", "--where", "age <", "--why", "x"],
        &["cannot parse"],
    );
    check(
        &[
            "edit", "relabel", "--rows", "99999999", "--to", ">50K", "--why", "x",
        ],
        &["row \"99999999\" does not exist"],
    );
    check(
        &[
            "edit", "relabel", "--rows", "1", "--to", "maybe", "--why", "x",
        ],
        &["not one of the classes", "--new-class"],
    );
    check(
        &[
            "edit", "weight", "--where", "age < 20", "--by", "0", "--why", "x",
        ],
        &["positive"],
    );
    check(
        &[
            "edit", "weight", "--where", "age < 20", "--by", "-1", "--why", "x",
        ],
        &["positive"],
    );
    check(
        &["edit", "drop-feature", "income", "--why", "x"],
        &["target"],
    );
    check(
        &["edit", "drop-feature", "agge", "--why", "x"],
        &["did you mean \"age\""],
    );
}

#[test]
fn suites_are_scored_lazily_and_requirements_gate_the_exit_code() {
    let p = adult_project();
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    p.json(&[
        "suite",
        "add",
        "women",
        "--where",
        "sex = 'Female'",
        "--require",
        "accuracy>=0.99",
    ]);
    p.json(&["suite", "add", "old", "--where", "age >= 60"]);
    let out = p.run(&["show", &run, "--json"]);
    assert_eq!(out.status.code(), Some(1), "a failed requirement is exit 1");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let women = shown["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "women")
        .unwrap()
        .clone();
    assert_eq!(women["passed"], false);
    assert_eq!(
        women["rows"], 5421,
        "holdout rows with sex = Female in adult.test"
    );
    assert!(shown["metrics"]["women"]["accuracy"].is_number());
    assert!(shown["metrics"]["old"]["auc"].is_number());
    let suites = p.json(&["suites"]);
    assert_eq!(suites["suites"].as_array().unwrap().len(), 2);

    assert_error(
        &p.run(&["suite", "add", "x", "--where", "sexx = 'Female'"]),
        &["did you mean \"sex\""],
    );
    assert_error(
        &p.run(&[
            "suite",
            "add",
            "x",
            "--where",
            "age > 1",
            "--require",
            "acuracy>=0.5",
        ]),
        &["unknown metric", "accuracy", "log_loss"],
    );
    assert_error(
        &p.run(&["suite", "add", "holdout", "--where", "age > 1"]),
        &["always exists"],
    );
    assert_error(
        &p.run(&["suite", "add", "women", "--where", "age > 1"]),
        &["already exists"],
    );
    assert_error(
        &p.run(&["slices", &run, "--suite", "wmen"]),
        &["suite \"wmen\" not found", "women"],
    );
    assert_error(&p.run(&["slices", &run, "--k", "0"]), &["--k"]);
}

#[test]
fn printed_slices_paste_into_suites_and_select_the_same_rows() {
    let p = adult_project();
    let trained = p.json(&["train", "-p", "num_iterations=30"]);
    let run = trained["run"].as_str().unwrap().to_string();
    let slices = p.json(&["slices", &run, "--k", "5"]);
    assert_eq!(slices["cached"], false);
    // A run never changes, so the same search is answered from the cache, identically; the
    // default search was made (and cached) by `train` itself, and its top three are the run's.
    let again = p.json(&["slices", &run, "--k", "5"]);
    assert_eq!(again["cached"], true);
    assert_eq!(again["slices"], slices["slices"]);
    let default = p.json(&["slices", &run]);
    assert_eq!(default["cached"], true);
    // A cache entry whose object is gone or damaged is a miss: the search runs again, gives the
    // same answer, and storing it heals the object.
    let stored_searches: Vec<_> = files_under(&p.path().join(".gyre").join("objects"))
        .into_iter()
        .filter(|f| {
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(f).unwrap())
                .is_ok_and(|v| v.get("slices").is_some() && v.get("error_metric").is_some())
        })
        .collect();
    assert_eq!(stored_searches.len(), 2, "train's default search and --k 5");
    std::fs::remove_file(&stored_searches[0]).unwrap();
    std::fs::write(&stored_searches[1], b"not json").unwrap();
    for cached in [false, true] {
        let k5 = p.json(&["slices", &run, "--k", "5"]);
        let k10 = p.json(&["slices", &run]);
        assert_eq!(k5["slices"], slices["slices"]);
        assert_eq!(k10["slices"], default["slices"]);
        assert_eq!(
            (&k5["cached"], &k10["cached"]),
            (&cached.into(), &cached.into())
        );
    }
    let top: Vec<&serde_json::Value> = default["slices"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .collect();
    let in_run: Vec<&serde_json::Value> = trained["slices"].as_array().unwrap().iter().collect();
    assert_eq!(
        top.iter().map(|s| &s["predicate"]).collect::<Vec<_>>(),
        in_run.iter().map(|s| &s["predicate"]).collect::<Vec<_>>()
    );
    let list = slices["slices"].as_array().unwrap();
    assert!(!list.is_empty());
    for (i, s) in list.iter().enumerate() {
        let name = format!("slice{i}");
        p.json(&[
            "suite",
            "add",
            &name,
            "--where",
            s["predicate"].as_str().unwrap(),
        ]);
        let shown = p.run(&["show", &run, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        let suite = v["suites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name.as_str())
            .unwrap()
            .clone();
        assert_eq!(suite["rows"], s["size"], "{}", s["predicate"]);
        let err = 1.0 - v["metrics"][&name]["accuracy"].as_f64().unwrap();
        assert!((err - s["error"].as_f64().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn a_planted_slice_is_found_first() {
    // Labels follow x exactly, except inside a = 'a2' AND b = 'b1', where they are noise.
    let p = Project::new();
    let mut csv = String::from("a,b,c,x,y\n");
    let mut rng = Lcg::new(7);
    let mut next = || rng.next_u64();
    for _ in 0..6000 {
        let a = next() % 4;
        let b = next() % 3;
        let c = next() % 5;
        let x = (next() % 1000) as f64 / 1000.0;
        let noisy = a == 2 && b == 1;
        let y = if noisy { next() % 2 == 0 } else { x > 0.5 };
        csv.push_str(&format!(
            "a{a},b{b},c{c},{x},{}\n",
            if y { "yes" } else { "no" }
        ));
    }
    let f = p.write("planted.csv", csv.as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.5",
        "--seed",
        "3",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=50"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let slices = p.json(&["slices", &run, "--k", "3", "--max-level", "2"]);
    assert_eq!(
        slices["slices"][0]["predicate"], "a = 'a2' AND b = 'b1'",
        "{slices}"
    );
}

#[test]
fn a_rows_story_and_what_each_edit_is_worth() {
    let p = adult_project();
    p.json(&["train", "-p", "num_iterations=20"]);
    p.json(&[
        "edit",
        "relabel",
        "--rows",
        "32561",
        "--to",
        ">50K",
        "--why",
        "payroll says so",
    ]);
    let ex = p.json(&[
        "edit",
        "exclude",
        "--where",
        "age < 18",
        "--why",
        "minors are out of scope",
    ]);
    p.json(&[
        "edit",
        "weight",
        "--where",
        "sex = 'Female'",
        "--by",
        "2",
        "--why",
        "under-served",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();

    let w = p.json(&["why", "32561"]);
    assert_eq!(w["split"], "holdout");
    assert_eq!(w["label_history"], serde_json::json!(["<=50K", ">50K"]));
    assert_eq!(w["edits"][0]["why"], "payroll says so");
    assert_eq!(w["predictions"].as_array().unwrap().len(), 2);
    // A young woman in training: excluded, weighted.
    let rows = adult_rows();
    let young = rows
        .iter()
        .position(|(s, a, _)| s == "train" && *a < 18.0)
        .unwrap();
    let y = p.json(&["why", &young.to_string()]);
    assert_eq!(y["in_training"], false);
    assert!(
        y["edits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["edit"] == ex["edit"] && e["effect"] == "left out of training")
    );
    assert_error(&p.run(&["why", "999999"]), &["does not exist"]);

    let a = p.json(&["ablate", &run]);
    let edits = a["edits"].as_array().unwrap();
    assert_eq!(edits.len(), 3);
    for e in edits {
        let d = &e["metric_delta_without"];
        let (lo, hi, delta) = (
            d["ci95"][0].as_f64().unwrap(),
            d["ci95"][1].as_f64().unwrap(),
            d["delta"].as_f64().unwrap(),
        );
        assert!(lo <= delta && delta <= hi);
        assert_eq!(e["cached"], false);
    }
    let again = p.json(&["ablate", &run, "--jobs", "1"]);
    assert!(
        again["edits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["cached"] == true)
    );
    assert_eq!(
        again["edits"][0]["metric_delta_without"],
        edits[0]["metric_delta_without"]
    );
    let log = p.json(&["log"]);
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["command"].as_str().unwrap().starts_with("gyre ablate"))
    );
}

#[test]
fn add_source_appends_rows_with_fresh_ids_and_reverts_cleanly() {
    let p = Project::new();
    let first = p.write("a.csv", b"x,color,split,y\n1,red,train,no\n2,blue,train,yes\n3,red,test,no\n4,blue,test,yes\n5,red,train,no\n6,blue,train,yes\n");
    import_with_split(&p, &first);
    let v0 = p.json(&["data"])["datasets"][0]["version"].clone();
    // New rows, one with a colour the dataset has not seen.
    let more = p.write(
        "b.csv",
        b"x,color,split,y\n7,green,train,yes\n8,red,train,no\n9,blue,test,yes\n",
    );
    let e = p.json(&[
        "edit",
        "add-source",
        more.to_str().unwrap(),
        "--why",
        "feedback from March",
    ]);
    assert_eq!(e["rows_affected"], 3);
    let v = p.json(&["data", "--version", e["version"].as_str().unwrap()]);
    assert_eq!(v["rows"], 9);
    assert_eq!(v["training_rows"], 6);
    let w = p.json(&["why", "6"]);
    assert_eq!(
        w["values"][1][1], "green",
        "row ids continue the count: the new file's first row is 6"
    );
    let why8 = p.json(&["why", "8"]);
    assert_eq!(why8["split"], "holdout");
    // The same file again is refused; a different schema names the columns.
    assert_error(
        &p.run(&[
            "edit",
            "add-source",
            more.to_str().unwrap(),
            "--why",
            "again",
        ]),
        &["already added"],
    );
    let other = p.write("c.csv", b"x,shade,split,y\n1,red,train,no\n");
    assert_error(
        &p.run(&["edit", "add-source", other.to_str().unwrap(), "--why", "x"]),
        &[
            "c.csv",
            "missing from the new file: color",
            "not in the dataset: shade",
        ],
    );
    let r = p.json(&[
        "edit",
        "revert",
        &e["edit"].to_string(),
        "--why",
        "March was bad data",
    ]);
    assert_eq!(r["version"], v0);
    assert_eq!(
        p.json(&["data", "--version", r["version"].as_str().unwrap()])["rows"],
        6
    );
}

#[test]
fn slices_of_log_loss() {
    let p = adult_project();
    let run = p.json(&["train", "-p", "num_iterations=20"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let s = p.json(&["slices", &run, "--error", "log_loss", "--k", "3"]);
    assert_eq!(s["error_metric"], "log_loss");
    assert!(!s["slices"].as_array().unwrap().is_empty());
    assert!(s["average_error"].as_f64().unwrap() > 0.2);
    assert_error(
        &p.run(&["slices", &run, "--error", "hinge"]),
        &["--error hinge", "log_loss"],
    );
}

#[test]
fn add_source_with_a_key_joins_new_columns() {
    let p = Project::new();
    let first = p.write(
        "a.csv",
        b"id,color,split,y\n10,red,train,no\n11,blue,train,yes\n12,red,test,no\n13,blue,test,yes\n14,red,train,no\n15,blue,train,yes\n",
    );
    import_with_split(&p, &first);
    let v0 = p.json(&["data"])["datasets"][0]["version"].clone();
    let extra = p.write(
        "extra.csv",
        b"id,score,region\n11,0.9,north\n10,0.1,south\n13,0.8,north\n99,0.5,west\n",
    );
    let e = p.json(&[
        "edit",
        "add-source",
        extra.to_str().unwrap(),
        "--key",
        "id",
        "--why",
        "scores from the CRM",
    ]);
    assert_eq!(e["rows_affected"], 3, "ids 10, 11 and 13 match");
    assert_eq!(e["unmatched_rows"], 3, "ids 12, 14 and 15 do not");
    let w = p.json(&["why", "1"]);
    let values: std::collections::HashMap<String, String> = w["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[0].as_str().unwrap().to_string(),
                v[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(values["score"], "0.9");
    assert_eq!(values["region"], "north");
    let w4 = p.json(&["why", "4"]);
    assert!(
        w4["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v[0] == "score" && v[1] == "NULL")
    );
    // The new columns are features and can be filtered on.
    p.json(&[
        "edit",
        "exclude",
        "--where",
        "region = 'south'",
        "--why",
        "south is another market",
    ]);
    // Bad joins name the problem.
    let dup = p.write("dup.csv", b"id,z\n10,1\n10,2\n");
    assert_error(
        &p.run(&[
            "edit",
            "add-source",
            dup.to_str().unwrap(),
            "--key",
            "id",
            "--why",
            "x",
        ]),
        &["the key (10) appears twice"],
    );
    let again = p.write("again.csv", b"id,score\n10,1\n");
    assert_error(
        &p.run(&[
            "edit",
            "add-source",
            again.to_str().unwrap(),
            "--key",
            "id",
            "--why",
            "x",
        ]),
        &["\"score\" is already in the dataset"],
    );
    assert_error(
        &p.run(&[
            "edit",
            "add-source",
            extra.to_str().unwrap(),
            "--key",
            "idd",
            "--why",
            "x",
        ]),
        &["key column \"idd\" not found", "did you mean \"id\""],
    );
    // Reverting the exclude and the join gives back the first version.
    let chain = versions(&p);
    let exclude_edit = chain.last().unwrap()["edit"].to_string();
    p.json(&["edit", "revert", &exclude_edit, "--why", "undo"]);
    let r = p.json(&[
        "edit",
        "revert",
        &e["edit"].to_string(),
        "--why",
        "the CRM scores were stale",
    ]);
    assert_eq!(r["version"], v0);
    p.json(&[
        "train",
        "-p",
        "num_iterations=5",
        "-p",
        "min_data_in_leaf=1",
    ]);
}

/// A seeded binary dataset as CSV: `x` numeric, `color` categorical, `split`, `y`; `y` depends on
/// both with noise, so a model and its metrics are not trivial.
fn generated_csv(rows: usize, seed: u64, split: impl Fn(usize) -> &'static str) -> Vec<u8> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut out = String::from("x,color,split,y\n");
    for i in 0..rows {
        let x = (next() * 100.0).round();
        let color = ["red", "green", "blue"][(next() * 3.0) as usize % 3];
        let p = x / 100.0 * 0.6 + if color == "red" { 0.3 } else { 0.0 };
        let y = if next() < p { "yes" } else { "no" };
        out.push_str(&format!("{x},{color},{},{y}\n", split(i)));
    }
    out.into_bytes()
}

/// Ablation retrains exactly what a train on the version without the edit gives (here an
/// add-source edit, applied on a worker thread from its preloaded table), and one worker
/// (`--jobs 1`, taking the variants in turn) gives the same report as one per variant.
#[test]
fn ablate_matches_a_train_without_the_edit_whatever_the_jobs() {
    let build = || {
        let p = Project::new();
        let first = p.write(
            "a.csv",
            &generated_csv(600, 7, |i| if i % 4 == 0 { "test" } else { "train" }),
        );
        import_with_split(&p, &first);
        let more = p.write("b.csv", &generated_csv(300, 8, |_| "train"));
        let added = p.json(&[
            "edit",
            "add-source",
            more.to_str().unwrap(),
            "--why",
            "more of the same",
        ]);
        let excluded = p.json(&[
            "edit",
            "exclude",
            "--where",
            "color = 'green' AND x < 30",
            "--why",
            "noisy corner",
        ]);
        let run = p.json(&["train", "-p", "num_iterations=15", "--seed", "3"])["run"]
            .as_str()
            .unwrap()
            .to_string();
        (p, run, added["edit"].clone(), excluded["edit"].clone())
    };
    let (a, run_a, added, excluded) = build();
    let (b, run_b, _, _) = build();
    assert_error(
        &a.run(&["ablate", &run_a, "--jobs", "0"]),
        &["--jobs must be at least 1"],
    );
    let one = a.json(&["ablate", &run_a, "--jobs", "1"]);
    let many = b.json(&["ablate", &run_b]);
    let effects = |r: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        r["edits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["cached"], false);
                (e["edit"].clone(), e["metric_delta_without"].clone())
            })
            .collect()
    };
    assert_eq!(effects(&one).len(), 2);
    assert_eq!(effects(&one), effects(&many));

    // By hand: revert the add-source edit and train with the same learner, params and seed.
    a.json(&[
        "edit",
        "revert",
        &added.to_string(),
        "--why",
        "what was it worth?",
    ]);
    let by_hand = a.json(&["train", "-p", "num_iterations=15", "--seed", "3"]);
    let effect = one["edits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["edit"] == added)
        .unwrap();
    // The same model; the diff's AUC sums in another order than the run's metrics.
    let (ablated, trained) = (
        effect["metric_delta_without"]["candidate"]
            .as_f64()
            .unwrap(),
        by_hand["metrics"]["holdout"]["auc"].as_f64().unwrap(),
    );
    assert!((ablated - trained).abs() < 1e-12, "{ablated} vs {trained}");
    assert_ne!(
        effect["metric_delta_without"]["candidate"], effect["metric_delta_without"]["base"],
        "300 more training rows change the model"
    );
    assert!(effects(&one).iter().any(|(e, _)| *e == excluded));
}

#[test]
fn diff_compares_the_rows_both_runs_predicted_when_a_source_added_holdout_rows() {
    // 200 rows, every fourth held out; then a source adds 40 rows, 10 of them held out, so the
    // second run predicts 60 holdout rows and the first 50: the diff takes the 50 they share.
    let csv = |from: usize, to: usize| {
        let mut s = String::from("x,color,split,y\n");
        for i in from..to {
            let color = ["red", "blue", "green"][i % 3];
            let split = if i % 4 == 0 { "test" } else { "train" };
            let y = if (i * 7) % 10 > 4 || (color == "red" && i % 5 == 0) {
                "yes"
            } else {
                "no"
            };
            s.push_str(&format!("{i},{color},{split},{y}\n"));
        }
        s
    };
    let p = Project::new();
    import_with_split(&p, &p.write("a.csv", csv(0, 200).as_bytes()));
    let train = |p: &Project| {
        p.json(&["train", "-p", "num_iterations=10"])["run"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = train(&p);
    let more = p.write("b.csv", csv(200, 240).as_bytes());
    p.json(&[
        "edit",
        "add-source",
        more.to_str().unwrap(),
        "--why",
        "more",
    ]);
    let b = train(&p);
    for (base, cand) in [(&a, &b), (&b, &a)] {
        let d = p.json(&["diff", base, cand, "--rows"]);
        assert_eq!(d["rows"], 50, "{base} against {cand}");
        assert_eq!(d["flips"]["rows"], 50);
        for f in d["flipped_rows"].as_array().unwrap() {
            assert!(
                f["row"].as_u64().unwrap() < 200,
                "a row only one run predicted: {f}"
            );
        }
    }
    // The same runs the other way round: the same flips, each kind swapped.
    let ab = p.json(&["diff", &a, &b]);
    let ba = p.json(&["diff", &b, &a]);
    assert!(
        ab["flips"]["negative"].as_u64().unwrap() + ab["flips"]["positive"].as_u64().unwrap() > 0
    );
    assert_eq!(ab["flips"]["negative"], ba["flips"]["positive"]);
    assert_eq!(ab["flips"]["positive"], ba["flips"]["negative"]);
}

/// Issue 20: one group of rows described three ways (three perfectly correlated columns) is one
/// reported slice with two other descriptions, in `slices`, in `train`'s summary and in its
/// findings (one finding for the group, not three).
#[test]
fn one_group_of_rows_described_three_ways_is_one_slice() {
    // Labels follow x, except where a = 'a2' (= b = 'b3' = c = 'c1'), where they are noise.
    let p = Project::new();
    let mut csv = String::from("a,b,c,d,x,y\n");
    let mut rng = Lcg::new(31);
    let mut next = || rng.next_u64();
    for _ in 0..6000 {
        let (a, d) = (next() % 4, next() % 5);
        let x = (next() % 1000) as f64 / 1000.0;
        let y = if a == 2 { next() % 2 == 0 } else { x > 0.5 };
        csv.push_str(&format!(
            "a{a},b{},c{},d{d},{x},{}\n",
            (a + 1) % 4,
            3 - a,
            if y { "yes" } else { "no" }
        ));
    }
    let f = p.write("three.csv", csv.as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "y",
        "--holdout",
        "0.5",
        "--seed",
        "4",
    ]);
    let t = p.json(&["train", "-p", "num_iterations=40"]);
    let run = t["run"].as_str().unwrap().to_string();
    let names = ["a = 'a2'", "b = 'b3'", "c = 'c1'"];
    let slices = p.json(&["slices", &run, "--k", "3", "--max-level", "2"]);
    let top = &slices["slices"][0];
    assert_eq!(top["predicate"], names[0], "{slices}");
    let exact: Vec<&serde_json::Value> = top["also"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["jaccard"] == 1.0)
        .map(|x| &x["predicate"])
        .collect();
    assert_eq!(exact, [names[1], names[2]], "{slices}");
    assert_eq!(top["also"][0]["size"], top["size"]);
    // No other reported slice is one of the three descriptions.
    for s in slices["slices"].as_array().unwrap().iter().skip(1) {
        assert!(!names.contains(&s["predicate"].as_str().unwrap()), "{s}");
    }
    // Shown under the slice, not as slices of their own.
    let text = stdout(&p.run(&["slices", &run, "--k", "3", "--max-level", "2"]));
    assert!(
        text.contains("      same rows as: b = 'b3' (") && text.contains("exactly these rows"),
        "{text}"
    );
    assert!(!text.contains(". b = 'b3'\n"), "{text}");
    // `train`'s summary and its findings: one group, one finding.
    assert_eq!(t["slices"][0]["predicate"], names[0], "{t}");
    assert_eq!(t["slices"][0]["also"].as_array().unwrap().len(), 2, "{t}");
    let findings = p.json(&["findings"]);
    let about: Vec<&serde_json::Value> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| names.contains(&f["detail"]["predicate"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(about.len(), 1, "{findings}");
    assert_eq!(about[0]["detail"]["also"], serde_json::json!(names[1..]));
    // --overlap is checked.
    assert_error(
        &p.run(&["slices", &run, "--overlap", "0"]),
        &["--overlap must be in (0, 1]"],
    );
}

/// Issue 20 on KDD Cup 99's fixture: its holdout has a handful of wrong rows, and SliceLine's
/// top ten are descriptions of much the same few dozen rows around them. Reported slices are
/// distinct groups (pairwise Jaccard below 0.5, counted independently through suites on
/// `(A) AND (B)`), and the overlapping descriptions are under them.
#[test]
fn kdd_slices_are_distinct_groups_of_rows() {
    let p = Project::new();
    let f = fixture("kddcup-20k.csv.gz");
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "label",
        "--seed",
        "1",
    ]);
    let run = p.json(&["train", "-p", "num_iterations=30"])["run"]
        .as_str()
        .unwrap()
        .to_string();
    let grouped = p.json(&["slices", &run]);
    // Only exactly the same rows grouped: the search as it was before the overlap rule, but
    // for exact duplicates, which it dropped.
    let exact = p.json(&["slices", &run, "--overlap", "1"]);
    let list = grouped["slices"].as_array().unwrap();
    let exact_list = exact["slices"].as_array().unwrap();
    assert_eq!(exact_list.len(), 10, "{exact}");
    assert!(list.len() < exact_list.len(), "{grouped}");
    assert!(
        list.iter()
            .any(|s| !s["also"].as_array().unwrap().is_empty())
    );
    // Rows of a predicate on the holdout, through a suite.
    let mut suites = 0;
    let mut rows = |predicate: &str| {
        suites += 1;
        let name = format!("s{suites}");
        p.json(&["suite", "add", &name, "--where", predicate]);
        let shown = p.json(&["show", &run]);
        shown["suites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name.as_str())
            .unwrap()["rows"]
            .as_f64()
            .unwrap()
    };
    let jaccard =
        |rows: &mut dyn FnMut(&str) -> f64, a: &serde_json::Value, b: &serde_json::Value| {
            let (pa, pb) = (
                a["predicate"].as_str().unwrap(),
                b["predicate"].as_str().unwrap(),
            );
            let both = rows(&format!("({pa}) AND ({pb})"));
            both / (a["size"].as_f64().unwrap() + b["size"].as_f64().unwrap() - both)
        };
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            let j = jaccard(&mut rows, a, b);
            assert!(
                j < 0.5,
                "{} and {}: jaccard {j}",
                a["predicate"],
                b["predicate"]
            );
        }
        if let Some(alt) = a["also"].as_array().unwrap().last() {
            let j = jaccard(&mut rows, a, alt);
            assert!(
                (j - alt["jaccard"].as_f64().unwrap()).abs() < 1e-12,
                "{alt}"
            );
            assert!(j >= 0.5);
        }
    }
}

/// Issue 20: a join on a key of several columns (the weather at an airport in an hour).
#[test]
fn add_source_joins_on_a_key_of_several_columns() {
    let p = Project::new();
    let first = p.write(
        "flights.csv",
        b"origin,hour,distance,split,y\nJFK,6,100,train,no\nJFK,7,200,train,yes\nLGA,6,300,test,no\nLGA,7,400,test,yes\nEWR,6,500,train,no\nEWR,7,600,train,yes\n",
    );
    import_with_split(&p, &first);
    let weather = p.write(
        "weather.csv",
        b"origin,hour,wind\nJFK,6,10\nJFK,7,30\nLGA,7,25\nLGA,8,5\n",
    );
    let e = p.json(&[
        "edit",
        "add-source",
        weather.to_str().unwrap(),
        "--key",
        "origin, hour",
        "--why",
        "wind at the origin in the hour of departure",
    ]);
    assert_eq!(
        (e["rows_affected"].as_u64(), e["unmatched_rows"].as_u64()),
        (Some(3), Some(3))
    );
    let w = p.json(&["why", "3"]);
    let wind = w["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[0] == "wind")
        .unwrap()[1]
        .clone();
    assert_eq!(wind, "25");
    let dup = p.write("dup.csv", b"origin,hour,gust\nJFK,6,1\nJFK,6,2\nJFK,7,3\n");
    assert_error(
        &p.run(&[
            "edit",
            "add-source",
            dup.to_str().unwrap(),
            "--key",
            "origin,hour",
            "--why",
            "x",
        ]),
        &["the key (JFK, 6) appears twice", "columns origin,hour"],
    );
    assert_error(
        &p.run(&[
            "edit",
            "add-source",
            dup.to_str().unwrap(),
            "--key",
            "origin,houre",
            "--why",
            "x",
        ]),
        &["key column \"houre\" not found", "did you mean \"hour\""],
    );
}
