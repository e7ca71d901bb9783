//! Issue 19: learners that are commands, and runs imported from elsewhere. Each broken learner
//! (crash, hang, a row twice, a row skipped, NaN, probabilities that do not sum to 1, wrong
//! columns, no output) gives its clear error and leaves the project as it was; a good one makes
//! an ordinary run that label-issues, ablate, diff and gate work on. The learners that need no
//! Python are shell commands; the tiny Python learner needs pyarrow (`common::require`).

mod common;
use common::*;
use std::path::Path;

/// A tiny learner for the tests: predicts the weighted class shares of its training rows for
/// every row, broken on purpose by `-p mode=...`.
const TINY: &str = r#"
import json, os, subprocess, sys, time
import pyarrow as pa, pyarrow.parquet as pq
spec = json.load(open(os.environ["GYRE_SPEC"]))
mode = spec["params"].get("mode", "ok")
train = pq.read_table(os.environ["GYRE_TRAIN"])
predict = pq.read_table(os.environ["GYRE_PREDICT"])
assert "row_id" in predict.column_names and spec["target"] not in predict.column_names
for f in spec["features"]:
    assert f["name"] in train.column_names and f["name"] in predict.column_names
print(f"tiny: {train.num_rows} rows, mode {mode}", flush=True)
if mode == "crash":
    print("tiny: something broke on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "hang":
    child = subprocess.Popen(["sleep", "600"])
    open(os.path.join(os.environ["GYRE_PROJECT"], "child.pid"), "w").write(str(child.pid))
    time.sleep(600)
labels = train.column(spec["target"]).to_pylist()
weights = train.column("weight").to_pylist()
total = sum(weights)
share = {c: sum(w for l, w in zip(labels, weights) if l == c) / total for c in spec["classes"]}
ids = predict.column("row_id").to_pylist()
cols = {"row_id": ids}
for c in spec["classes"]:
    cols[c] = [share[c]] * len(ids)
if mode == "twice":
    for k in cols:
        cols[k] = cols[k] + cols[k][:1]
if mode == "skip":
    for k in cols:
        cols[k] = cols[k][:-1]
if mode == "nan":
    c = spec["classes"][0]
    cols[c] = [float("nan")] + cols[c][1:]
if mode == "sum":
    for c in spec["classes"]:
        cols[c] = [0.9 * p for p in cols[c]]
if mode == "columns":
    cols["p_" + spec["classes"][0]] = cols.pop(spec["classes"][0])
if mode != "nothing":
    pq.write_table(pa.table(cols), os.environ["GYRE_PREDICTIONS"])
"#;

fn has_pyarrow() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// An Adult project with `learners` appended to its gyre.toml and the tiny learner beside it.
fn project(learners: &str) -> Project {
    let p = Project::new();
    p.import_adult();
    p.write("tiny.py", TINY.as_bytes());
    let toml = p.path().join("gyre.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(learners);
    std::fs::write(&toml, text).unwrap();
    p
}

fn run(p: &Project, args: &[&str]) -> std::process::Output {
    p.run(args)
}

/// A command learner's working directories live in `.gyre/tmp/` while it runs, never after.
fn assert_no_working_dirs(p: &Project) {
    let left: Vec<_> = std::fs::read_dir(p.path().join(".gyre/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("learner"))
        .collect();
    assert!(left.is_empty(), "working directories left: {left:?}");
}

/// Runs a failing command and checks it changed nothing: no journal entry, no object, no run,
/// no working directory left.
fn fails_cleanly(p: &Project, args: &[&str], needles: &[&str]) -> String {
    let before = p.snapshot();
    let runs = run_count(p);
    let out = run(p, args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = assert_error(&out, needles);
    assert_eq!(p.snapshot(), before, "the project changed: {err}");
    assert_eq!(run_count(p), runs);
    assert_no_working_dirs(p);
    err
}

const SHELL_LEARNERS: &str = r#"
[learners.crash]
command = "echo starting; echo 'Traceback: it broke' >&2; exit 3"

[learners.hang]
command = "sleep 300 & echo $! > child.pid; cp child.pid $GYRE_PROJECT/child.pid; sleep 300"
timeout = "1s"

[learners.silent]
command = "true"

[learners.noisy]
command = "echo 'ValueError: a bad input on purpose' >&2; for i in $(seq 30); do echo detail $i >&2; done; exit 1"
"#;

#[test]
fn a_crashing_command_names_itself_its_exit_code_and_its_stderr() {
    let p = project(SHELL_LEARNERS);
    fails_cleanly(
        &p,
        &["train", "--learner", "crash"],
        &["learner \"crash\"", "exit code 3", "Traceback: it broke"],
    );
}

#[test]
fn an_error_long_before_the_last_lines_of_stderr_is_still_named() {
    let p = project(SHELL_LEARNERS);
    let err = fails_cleanly(
        &p,
        &["train", "--learner", "noisy"],
        &[
            "exit code 1",
            "the last error it named: ValueError: a bad input on purpose",
            "detail 30",
        ],
    );
    // The command's lines were shown as progress; the error itself keeps the last twelve.
    let error = &err[err.find("error: learner").unwrap()..];
    assert!(!error.contains("detail 5\n"), "{error}");
}

#[test]
fn a_hanging_command_is_killed_with_its_process_group() {
    let p = project(SHELL_LEARNERS);
    let t = std::time::Instant::now();
    fails_cleanly(
        &p,
        &["train", "--learner", "hang"],
        &["learner \"hang\"", "timed out after 1s", "process group"],
    );
    assert!(t.elapsed().as_secs() < 30, "took {:?}", t.elapsed());
    // The command's own child (a `sleep` in the background) went with it.
    let pid = std::fs::read_to_string(p.path().join("child.pid")).unwrap();
    let pid = pid.trim();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"));
    assert!(!alive, "the learner's child {pid} outlived the timeout");
}

#[test]
fn a_command_that_writes_nothing_is_refused() {
    let p = project(SHELL_LEARNERS);
    fails_cleanly(
        &p,
        &["train", "--learner", "silent"],
        &["learner \"silent\"", "wrote no predictions"],
    );
}

#[test]
fn unknown_learners_and_bad_sections_are_named() {
    let p = project("\n[learners.tiny]\ncommand = \"python3 tiny.py\"\n");
    let out = run(&p, &["train", "--learner", "tinyy"]);
    assert_error(&out, &["unknown learner \"tinyy\"", "gbdt, linear, tiny"]);
    let p = project("\n[learners.tiny]\ncommand = \"python3 tiny.py\"\ntimeout = \"soon\"\n");
    let out = run(&p, &["train", "--learner", "tiny"]);
    assert_error(&out, &["[learners.tiny] timeout", "soon"]);
    let p = project("\n[learners.gbdt]\ncommand = \"python3 tiny.py\"\n");
    let out = run(&p, &["train", "--learner", "gbdt"]);
    assert_error(&out, &["[learners.gbdt]", "built-in"]);
}

/// The tiny learner, and the same with a short timeout for its hanging mode (the other modes
/// get minutes: Python and pyarrow start slowly on a busy machine).
const TINY_LEARNER: &str = "\n[learners.tiny]\ncommand = \"python3 tiny.py\"\ntimeout = \"5m\"\n\
    \n[learners.tinyhang]\ncommand = \"python3 tiny.py\"\ntimeout = \"3s\"\n";

#[test]
fn each_broken_output_gives_its_check_and_leaves_the_project_as_it_was() {
    if !require(
        "pyarrow not installed: pip install pyarrow==26.0.1",
        has_pyarrow(),
    ) {
        return;
    }
    let p = project(TINY_LEARNER);
    let cases: &[(&str, &[&str])] = &[
        ("crash", &["exit code 3", "something broke on purpose"]),
        ("hang", &["timed out after 3s", "process group"]),
        ("twice", &["check \"rows\" failed", "appears twice"]),
        ("skip", &["check \"rows\" failed", "lacks 1 of the 16281"]),
        ("nan", &["check \"finite\" failed", "\"<=50K\" is NaN"]),
        (
            "sum",
            &["check \"probabilities\" failed", "not 1 (tolerance"],
        ),
        (
            "columns",
            &["check \"columns\" failed", "no column \"<=50K\""],
        ),
        ("nothing", &["wrote no predictions"]),
    ];
    for (mode, needles) in cases {
        let param = format!("mode={mode}");
        let learner = if *mode == "hang" { "tinyhang" } else { "tiny" };
        let named = format!("learner \"{learner}\" (python3 tiny.py)");
        let mut all = vec![named.as_str()];
        all.extend_from_slice(needles);
        fails_cleanly(&p, &["train", "--learner", learner, "-p", &param], &all);
    }
}

#[test]
fn a_command_learner_makes_an_ordinary_run() {
    if !require(
        "pyarrow not installed: pip install pyarrow==26.0.1",
        has_pyarrow(),
    ) {
        return;
    }
    let p = project(TINY_LEARNER);
    let gbdt = p.json(&["train", "-p", "num_iterations=20"]);
    let out = run(
        &p,
        &["train", "--learner", "tiny", "-p", "mode=ok", "--seed", "3"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // What the command printed is the run's progress.
    assert!(
        stderr(&out).contains("tiny: 32561 rows"),
        "{}",
        stderr(&out)
    );
    let shown = p.json(&["show", "latest"]);
    assert_eq!(shown["learner"], "tiny");
    assert_eq!(shown["params"]["mode"], "ok");
    assert_eq!(shown["command"]["command"], "python3 tiny.py");
    assert_eq!(shown["external_model"]["onnx_bytes"], 0);
    let human = stdout(&p.run(&["show", "latest"]));
    assert!(human.contains("command python3 tiny.py"), "{human}");
    assert!(human.contains("no ONNX model"), "{human}");
    let hash = shown["command"]["files_hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    // Predicting the class shares: an AUC of one half, an accuracy of the majority's share.
    let auc = shown["metrics"]["holdout"]["auc"].as_f64().unwrap();
    assert!((auc - 0.5).abs() < 1e-9, "{auc}");
    // Changing the learner's file changes the hash.
    let mut text = TINY.to_string();
    text.push_str("# changed\n");
    p.write("tiny.py", text.as_bytes());
    p.json(&["train", "--learner", "tiny", "-p", "mode=ok"]);
    let again = p.json(&["show", "latest"]);
    assert_ne!(again["command"]["files_hash"].as_str().unwrap(), hash);
    let run = again["run"].as_str().unwrap().to_string();
    // Diff and gate against gbdt, from stored predictions.
    let base = gbdt["run"].as_str().unwrap();
    let d = p.json(&["diff", base, &run]);
    assert!(d["metrics"]["auc"]["delta"].as_f64().unwrap() < -0.3, "{d}");
    let g = p.run(&["gate", &run, "--against", base, "--json"]);
    assert_eq!(g.status.code(), Some(1), "{}", stdout(&g));
    // Label issues: one command run per fold.
    let li = p.json(&["label-issues", &run, "--folds", "3", "--top", "5"]);
    assert_eq!(li["folds"], 3, "{li}");
    assert!(li["rows"].as_u64().unwrap() > 30_000, "{li}");
    // Ablation: an edit, a new run, retrained without the edit.
    p.json(&[
        "edit",
        "exclude",
        "--where",
        "age < 18",
        "--why",
        "minors are out of scope",
    ]);
    p.json(&["train", "--learner", "tiny", "-p", "mode=ok"]);
    let ab = p.json(&["ablate", "latest"]);
    assert_eq!(ab["edits"].as_array().unwrap().len(), 1, "{ab}");
    // No working directory is left behind.
    assert_no_working_dirs(&p);
}

#[test]
fn a_run_without_a_model_is_compared_but_never_promoted_or_served() {
    if !require(
        "pyarrow not installed: pip install pyarrow==26.0.1",
        has_pyarrow(),
    ) {
        return;
    }
    let p = project(TINY_LEARNER);
    let t = p.json(&["train", "--learner", "tiny"]);
    let run = t["run"].as_str().unwrap();
    let before = p.snapshot();
    let out = p.run(&["promote", run, "--why", "try", "--force"]);
    assert_error(&out, &[&format!("run {run} cannot be served"), "no model"]);
    assert_eq!(p.snapshot(), before);
    let out = p.run(&["serve", "--addr", "127.0.0.1:0", "--run", run]);
    assert_error(&out, &["cannot be served", "no model"]);
    // It can still be gated.
    let g = p.run(&["gate", run, "--json"]);
    assert!(matches!(g.status.code(), Some(0 | 1)), "{}", stderr(&g));
}

/// Predictions for `gyre runs import`, written as a Parquet file by the test (no Python).
fn write_predictions(path: &Path, ids: &[u64], cols: &[(&str, Vec<f64>)]) {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt64Array};
    use std::sync::Arc;
    let mut columns: Vec<(&str, ArrayRef)> =
        vec![("row_id", Arc::new(UInt64Array::from(ids.to_vec())))];
    for (name, v) in cols {
        columns.push((name, Arc::new(Float64Array::from(v.clone()))));
    }
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The holdout row ids `gyre runs holdout` writes.
fn holdout_ids(p: &Project) -> Vec<u64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt64Type;
    let out = p.path().join("holdout.parquet");
    let r = p.json(&["runs", "holdout", "--out", out.to_str().unwrap()]);
    assert_eq!(r["rows"], 16281);
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for b in reader {
        let b = b.unwrap();
        assert!(b.column_by_name("workclass").is_some());
        assert!(
            b.column_by_name("income").is_none(),
            "the holdout has no labels"
        );
        ids.extend(
            b.column_by_name("row_id")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .values()
                .iter(),
        );
    }
    ids
}

#[test]
fn imported_predictions_are_checked_then_diffed_and_gated_like_any_run() {
    let p = project("");
    let gbdt = p.json(&["train", "-p", "num_iterations=20"]);
    let ids = holdout_ids(&p);
    let n = ids.len();
    // A "notebook" model: a score from the row id's parity, a coin flip's quality.
    let hi: Vec<f64> = ids
        .iter()
        .map(|i| if i % 2 == 0 { 0.7 } else { 0.2 })
        .collect();
    let lo: Vec<f64> = hi.iter().map(|p| 1.0 - p).collect();
    let file = p.path().join("preds.parquet");
    let import = |extra: &[&str]| {
        let mut a = vec![
            "runs",
            "import",
            file.to_str().unwrap(),
            "--name",
            "notebook",
            "--why",
            "the notebook's model",
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = import(&[]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    // Broken files: each check, and the project unchanged.
    let mut twice = ids.clone();
    twice[1] = twice[0];
    write_predictions(
        &file,
        &twice,
        &[("<=50K", lo.clone()), (">50K", hi.clone())],
    );
    fails_cleanly(&p, &args, &["check \"rows\" failed", "appears twice"]);
    write_predictions(
        &file,
        &ids[1..],
        &[("<=50K", lo[1..].to_vec()), (">50K", hi[1..].to_vec())],
    );
    fails_cleanly(&p, &args, &["check \"rows\" failed", "lacks 1 of the"]);
    let mut nan = hi.clone();
    nan[5] = f64::NAN;
    write_predictions(&file, &ids, &[("<=50K", lo.clone()), (">50K", nan)]);
    fails_cleanly(&p, &args, &["check \"finite\" failed", "\">50K\" is NaN"]);
    let half: Vec<f64> = hi.iter().map(|p| p / 2.0).collect();
    write_predictions(&file, &ids, &[("<=50K", lo.clone()), (">50K", half)]);
    fails_cleanly(&p, &args, &["check \"probabilities\" failed", "sum to"]);
    write_predictions(&file, &ids, &[("<=50K", lo.clone()), ("yes", hi.clone())]);
    fails_cleanly(
        &p,
        &args,
        &["check \"columns\" failed", "no column \">50K\""],
    );
    let mut unknown = ids.clone();
    unknown[0] = 10_000_000;
    write_predictions(
        &file,
        &unknown,
        &[("<=50K", lo.clone()), (">50K", hi.clone())],
    );
    fails_cleanly(&p, &args, &["row_id 10000000 was not asked for"]);
    // A good file.
    write_predictions(&file, &ids, &[("<=50K", lo), (">50K", hi)]);
    let r = p.json(&args);
    assert_eq!(r["learner"], "imported");
    assert_eq!(r["imported"]["name"], "notebook");
    assert_eq!(r["rows"]["holdout"].as_u64().unwrap() as usize, n);
    let run = r["run"].as_str().unwrap();
    let log = p.json(&["log"]);
    let last = log["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["why"], "the notebook's model", "{last}");
    let d = p.json(&["diff", gbdt["run"].as_str().unwrap(), run]);
    assert!(
        d["metrics"]["auc"]["candidate"].as_f64().unwrap() < 0.6,
        "{d}"
    );
    let g = p.run(&["gate", run, "--against", gbdt["run"].as_str().unwrap()]);
    assert_eq!(g.status.code(), Some(1), "{}", stdout(&g));
    // No model: it is refused by promote, with the reason.
    let out = p.run(&["promote", run, "--why", "x", "--force"]);
    assert_error(&out, &["cannot be served", "no model"]);
}

#[test]
fn a_working_directory_left_by_a_dead_gyre_is_swept_by_the_next_command() {
    let p = project("");
    // Named as gyre names them: the pid of a process that cannot exist (above pid_max).
    let stale = p.path().join(".gyre/tmp/999999999-learner-x1");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("train.parquet"), b"rows").unwrap();
    p.json(&["runs"]);
    assert!(
        !stale.exists(),
        "the dead process's working directory is still there"
    );
}

#[test]
fn gyre_stopped_by_a_signal_takes_the_command_with_it() {
    let p = project(
        "\n[learners.wait]\ncommand = \"sleep 300 & echo $! > $GYRE_PROJECT/child.pid; sleep 300\"\n",
    );
    let before = p.snapshot();
    let mut gyre = p
        .cmd(&["train", "--learner", "wait"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = p.path().join("child.pid");
    let t = std::time::Instant::now();
    while !pid_file.exists()
        || std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .is_empty()
    {
        assert!(t.elapsed().as_secs() < 60, "the command never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &gyre.id().to_string()])
        .status()
        .unwrap();
    let status = gyre.wait().unwrap();
    assert!(!status.success());
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    let t = std::time::Instant::now();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
    };
    while alive() && t.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!alive(), "the command's child {pid} outlived gyre");
    // Nothing was recorded; the next command sweeps the working directory.
    assert_eq!(p.snapshot(), before);
    assert_no_working_dirs(&p);
}
