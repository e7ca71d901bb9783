//! `gyre export`: the exported model.onnx, run by onnxruntime (from Python) over the holdout
//! rows, gives the predictions gyre stored, for gbdt and linear on each task; the model card
//! names the edits' reasons, the metrics and the suites; a non-empty directory is refused and
//! an unknown run named.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Largest difference allowed between onnxruntime's outputs and gyre's stored predictions.
const TOLERANCE: f64 = 1e-6;

/// Whether `python3` can import what check_onnx.py needs; a test without it skips (see
/// `common::require`).
fn onnxruntime() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import onnxruntime, numpy, pyarrow"])
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        "onnxruntime not installed: pip install onnxruntime numpy pyarrow",
        ok,
    )
}

/// Runs an export's model.onnx over its holdout rows with onnxruntime; returns the largest
/// absolute difference from predictions.parquet (and checks the model's metadata names the run).
fn onnx_max_diff(dir: &Path, run: &str) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/check_onnx.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_onnx.py failed: {}",
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metadata_run"], run);
    assert!(v["rows"].as_u64().unwrap() > 0);
    let diff = v["max_abs_diff"].as_f64().unwrap();
    eprintln!(
        "{}: onnxruntime {} on {} rows ({} missing cells): max abs difference {diff:e}",
        dir.display(),
        v["onnxruntime"],
        v["rows"],
        v["missing_cells"]
    );
    diff
}

/// Trains with `args`, exports the run into `name`, and checks the export against
/// onnxruntime when `ort` (it is there). Returns the export's JSON report.
fn train_export_check(p: &Project, ort: bool, args: &[&str], name: &str) -> serde_json::Value {
    let mut a = vec!["train"];
    a.extend_from_slice(args);
    let run = p.json(&a)["run"].as_str().unwrap().to_string();
    let dir = p.path().join(name);
    let r = p.json(&["export", &run, "--out", dir.to_str().unwrap()]);
    assert_eq!(r["run"], run.as_str());
    if ort {
        let diff = onnx_max_diff(&dir, &run);
        assert!(diff <= TOLERANCE, "{name}: max abs difference {diff}");
    }
    r
}

fn bike_project() -> Project {
    // casual + registered = cnt, a leak: import the file without those two columns.
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(fixture("bike-hour.csv.gz")).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let cleaned: String = text
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let mut keep = c[..14].to_vec();
            keep.push(c[16]);
            keep.join(",") + "\n"
        })
        .collect();
    let p = Project::new();
    let f = p.write("bike.csv", cleaned.as_bytes());
    p.json(&[
        "import",
        f.to_str().unwrap(),
        "--target",
        "cnt",
        "--id-column",
        "instant",
    ]);
    p
}

#[test]
fn binary_gbdt_and_linear_on_adult_match_onnxruntime_and_the_card_says_why() {
    let ort = onnxruntime();
    let p = Project::new();
    p.import_adult();
    p.json(&[
        "edit",
        "exclude",
        "--where",
        "age < 18",
        "--why",
        "minors are not our market | legal asked",
    ]);
    p.json(&[
        "suite",
        "add",
        "young",
        "--where",
        "age < 30",
        "--require",
        "accuracy>=0.8",
    ]);
    let r = train_export_check(&p, ort, &["-p", "num_iterations=20"], "gbdt");
    let names: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "model.onnx",
            "inputs.json",
            "predictions.parquet",
            "holdout_inputs.parquet",
            "MODEL_CARD.md"
        ]
    );
    let dir = p.path().join("gbdt");
    for f in r["files"].as_array().unwrap() {
        let bytes = std::fs::read(dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["bytes"], bytes.len());
        assert_eq!(f["sha256"], gyre_core::ContentHash::of(&bytes).as_str());
    }
    assert_eq!(r["onnx"]["opset"]["ai.onnx.ml"], 5);
    let inputs = &r["onnx"]["inputs"];
    assert_eq!(inputs["input"], "features");
    assert_eq!(inputs["shape"][1], 14);
    assert_eq!(inputs["features"][1]["name"], "workclass");
    assert_eq!(inputs["features"][1]["categories"][3], "Private");
    assert_eq!(inputs["output"]["name"], "probabilities");
    assert_eq!(inputs["output"]["columns"][1], "P(>50K)");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("inputs.json")).unwrap()).unwrap();
    assert_eq!(&spec, inputs);

    // The predictions are the run's stored ones, byte for byte.
    let stored = p.path().join("stored.parquet");
    p.json(&["predictions", "latest", "--out", stored.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(stored).unwrap(),
        std::fs::read(dir.join("predictions.parquet")).unwrap()
    );

    let card = std::fs::read_to_string(dir.join("MODEL_CARD.md")).unwrap();
    for needle in [
        "minors are not our market \\| legal asked",
        "exclude where age \\< 18",
        "| `auc` (primary) |",
        "95% interval",
        "### young (",
        "accuracy\\>=0.8",
        "## Failure slices",
        "| 1 | workclass | categorical | 0: Federal-gov,",
        "`num_iterations` = `20`",
    ] {
        assert!(card.contains(needle), "the card lacks {needle:?}:\n{card}");
    }
    // Every metric row has an interval that holds the value.
    let holdout = card.split("### holdout").nth(1).unwrap();
    let auc_row = holdout.lines().find(|l| l.starts_with("| `auc`")).unwrap();
    let cells: Vec<&str> = auc_row.split('|').map(str::trim).collect();
    let auc: f64 = cells[2].parse().unwrap();
    let (lo, hi) = cells[3]
        .trim_matches(|c| c == '[' || c == ']')
        .split_once(", ")
        .unwrap();
    let (lo, hi): (f64, f64) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(lo < auc && auc < hi && hi - lo < 0.05, "{auc_row}");

    // Readable output lists the files; a non-empty directory is refused, unless --force.
    let again = p.run(&["export", "latest", "--out", dir.to_str().unwrap()]);
    assert_error(&again, &["directory is not empty", "hint:", "--force"]);
    let forced = p.run(&[
        "export",
        "latest",
        "--out",
        dir.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    let text = stdout(&forced);
    for name in names {
        assert!(text.contains(name), "{text}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let lin = train_export_check(&p, ort, &["--learner", "linear"], "linear");
    assert!(lin["onnx"]["opset"].get("ai.onnx.ml").is_none());
}

#[test]
fn multiclass_gbdt_and_linear_on_kdd_match_onnxruntime() {
    let ort = onnxruntime();
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
    let r = train_export_check(&p, ort, &["-p", "num_iterations=10"], "gbdt");
    let classes = r["onnx"]["inputs"]["output"]["columns"].as_array().unwrap();
    assert!(classes.len() > 2 && classes.contains(&"P(smurf)".into()));
    train_export_check(
        &p,
        ort,
        &["--learner", "linear", "-p", "max_iter=30"],
        "linear",
    );
}

#[test]
fn regression_gbdt_and_linear_on_bike_sharing_match_onnxruntime() {
    let ort = onnxruntime();
    let p = bike_project();
    let r = train_export_check(&p, ort, &["-p", "num_iterations=30"], "gbdt");
    assert_eq!(r["onnx"]["inputs"]["output"]["name"], "prediction");
    assert_eq!(r["onnx"]["inputs"]["output"]["columns"][0], "cnt");
    train_export_check(&p, ort, &["--learner", "linear"], "linear");
}

#[test]
fn an_unknown_run_is_named_and_nothing_is_written() {
    let p = Project::new();
    let dir = p.path().join("out");
    let out = p.run(&["export", "nope", "--out", dir.to_str().unwrap()]);
    assert_error(&out, &["run \"nope\" not found"]);
    assert!(!dir.exists());
}
