//! Issue 19 end to end with the real scikit-learn example (`examples/learners/sklearn_hgb.py`):
//! trained as a command learner, compared with a gbdt champion, promoted through the gate,
//! served from its ONNX file by onnxruntime, and served == offline within 1e-5. Needs Python
//! with scikit-learn, skl2onnx, onnxruntime, pandas and pyarrow (`.ci/run` installs them).

mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;

const PACKAGES: &str = "scikit-learn, skl2onnx, onnxruntime, pandas or pyarrow not installed: \
    pip install scikit-learn==1.9.1 skl2onnx==1.20.0 onnx==1.23.2 protobuf==6.33.6 \
    onnxruntime==1.32.0 pandas==3.1.1 pyarrow==26.0.1";

fn has_packages() -> bool {
    std::process::Command::new("python3")
        .args([
            "-c",
            "import sklearn, skl2onnx, onnxruntime, pandas, pyarrow",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// An Adult project with the repository's example learners declared.
fn project() -> Project {
    let p = Project::new();
    p.import_adult();
    declare_examples(&p);
    p
}

fn declare_examples(p: &Project) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/learners");
    std::fs::create_dir(p.path().join("learners")).unwrap();
    for f in ["sklearn_hgb.py", "mlp.py"] {
        std::fs::copy(examples.join(f), p.path().join("learners").join(f)).unwrap();
    }
    let toml = p.path().join("gyre.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(
        "\n[learners.sklearn]\ncommand = \"python3 learners/sklearn_hgb.py\"\ntimeout = \"10m\"\n\
         \n[learners.mlp]\ncommand = \"python3 learners/mlp.py\"\ntimeout = \"10m\"\n",
    );
    std::fs::write(&toml, text).unwrap();
}

/// The holdout rows as JSON request rows, by row id (`gyre runs holdout`).
fn holdout_rows(p: &Project) -> Vec<(u64, serde_json::Value)> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};
    let out = p.path().join("holdout.parquet");
    p.json(&["runs", "holdout", "--out", out.to_str().unwrap()]);
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let schema = b.schema();
        let ids = b.column(0).as_primitive::<UInt64Type>();
        for r in 0..b.num_rows() {
            let mut row = serde_json::Map::new();
            for (f, col) in schema.fields().iter().zip(b.columns()).skip(1) {
                let v = if col.is_null(r) {
                    serde_json::Value::Null
                } else if let Some(s) = col.as_string_opt::<i32>() {
                    s.value(r).into()
                } else {
                    col.as_primitive::<Float64Type>().value(r).into()
                };
                row.insert(f.name().clone(), v);
            }
            rows.push((ids.value(r), serde_json::Value::Object(row)));
        }
    }
    rows
}

/// A run's stored holdout score of the second class, by row id (`gyre predictions`).
fn stored_scores(p: &Project, run: &str) -> HashMap<u64, f64> {
    stored_column(p, run, "score_>50K")
}

/// One column of a run's stored holdout predictions, by row id.
fn stored_column(p: &Project, run: &str, column: &str) -> HashMap<u64, f64> {
    let out = p.path().join(format!("{run}.csv"));
    p.json(&["predictions", run, "--out", out.to_str().unwrap()]);
    let mut r = csv::Reader::from_path(&out).unwrap();
    let headers = r.headers().unwrap().clone();
    let id = headers.iter().position(|h| h == "row_id").unwrap();
    let score = headers.iter().position(|h| h == column).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[id].parse().unwrap(), rec[score].parse().unwrap())
        })
        .collect()
}

#[test]
fn the_sklearn_challenger_is_trained_compared_promoted_and_served_as_offline() {
    if !require(PACKAGES, has_packages()) {
        return;
    }
    let p = project();
    let gbdt = p.json(&[
        "train",
        "-p",
        "num_iterations=200",
        "-p",
        "learning_rate=0.05",
    ]);
    let gbdt = gbdt["run"].as_str().unwrap().to_string();
    p.json(&["promote", &gbdt, "--why", "the gbdt champion"]);
    let t = p.json(&[
        "train",
        "--learner",
        "sklearn",
        "-p",
        "max_iter=200",
        "--seed",
        "3",
    ]);
    let run = t["run"].as_str().unwrap().to_string();
    assert_eq!(t["learner"], "sklearn");
    assert_eq!(t["command"]["command"], "python3 learners/sklearn_hgb.py");
    let auc = t["metrics"]["holdout"]["auc"].as_f64().unwrap();
    assert!(auc > 0.9, "a real model: auc {auc}");
    // Compared with the champion from stored predictions; through the gate.
    let d = p.json(&["diff", "champion", &run]);
    assert!(d["metrics"]["auc"]["ci95"].is_array(), "{d}");
    let promoted = p.json(&["promote", &run, "--why", "the sklearn challenger"]);
    assert_eq!(promoted["promoted"], true, "{promoted}");
    assert_eq!(promoted["forced"], false);

    // Served from its ONNX file, with the gbdt run in the shadow: what the server answers is
    // what the run recorded offline.
    let rows = holdout_rows(&p);
    let stored = stored_scores(&p, &run);
    let (mut server, addr, ready) = start(&p, &["--challenger", &gbdt, "--shadow"]);
    assert!(ready.to_string().contains(&run[..12]), "{ready}");
    let mut worst = 0.0f64;
    let mut checked = 0;
    for chunk in rows.chunks(500).take(4) {
        let body = serde_json::json!({
            "rows": chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()
        });
        let (status, answer) = post(&addr, "/v1/predict", &body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["classes"], serde_json::json!(["<=50K", ">50K"]));
        for ((id, _), pred) in chunk.iter().zip(answer["predictions"].as_array().unwrap()) {
            assert_eq!(
                pred["model"].as_str().unwrap(),
                &run[..pred["model"].as_str().unwrap().len()]
            );
            let served = pred["scores"][1].as_f64().unwrap();
            worst = worst.max((served - stored[id]).abs());
            checked += 1;
        }
    }
    assert_eq!(checked, 2000);
    assert!(worst <= 1e-5, "served and offline differ by {worst}");
    // The same request contract: a missing field is refused, naming it.
    let mut bad = rows[0].1.clone();
    bad.as_object_mut().unwrap().remove("age");
    let (status, answer) = post(&addr, "/v1/predict", &serde_json::json!({ "rows": [bad] }));
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("age"), "{answer}");
    assert_eq!(stop(&mut server), Some(0));

    // Offline scoring of a file goes through the same model.
    let scored = p.path().join("scored.csv");
    let out = p.run(&[
        "predict",
        "champion",
        adult().to_str().unwrap(),
        "--out",
        scored.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_mlp_example_is_served_as_offline_too() {
    if !require(PACKAGES, has_packages()) {
        return;
    }
    let p = project();
    let t = p.json(&[
        "train",
        "--learner",
        "mlp",
        "-p",
        "hidden=16",
        "-p",
        "epochs=3",
        "--seed",
        "1",
    ]);
    let run = t["run"].as_str().unwrap().to_string();
    // Promote checks onnxruntime reproduces the recorded predictions (first holdout rows).
    p.json(&["promote", &run, "--why", "the first champion"]);
    let rows = holdout_rows(&p);
    let stored = stored_scores(&p, &run);
    let (mut server, addr, _) = start(&p, &[]);
    let chunk = &rows[..300];
    let body =
        serde_json::json!({ "rows": chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() });
    let (status, answer) = post(&addr, "/v1/predict", &body);
    assert_eq!(status, 200, "{answer}");
    for ((id, _), pred) in chunk.iter().zip(answer["predictions"].as_array().unwrap()) {
        let served = pred["scores"][1].as_f64().unwrap();
        assert!(
            (served - stored[id]).abs() <= 1e-5,
            "row {id}: {served} vs {}",
            stored[id]
        );
    }
    assert_eq!(stop(&mut server), Some(0));
}

#[test]
fn a_regressor_is_promoted_and_served_as_offline() {
    if !require(PACKAGES, has_packages()) {
        return;
    }
    let p = Project::new();
    p.json(&[
        "import",
        fixture("bike-hour.csv.gz").to_str().unwrap(),
        "--target",
        "cnt",
    ]);
    declare_examples(&p);
    let t = p.json(&["train", "--learner", "sklearn", "-p", "max_iter=30"]);
    assert_eq!(t["task"], "regression");
    let run = t["run"].as_str().unwrap().to_string();
    p.json(&["promote", &run, "--why", "a regressor"]);
    let rows = holdout_rows(&p);
    let stored = stored_column(&p, &run, "prediction");
    let scale = stored.values().fold(1.0f64, |m, v| m.max(v.abs()));
    let (mut server, addr, _) = start(&p, &[]);
    let chunk = &rows[..300];
    let body =
        serde_json::json!({ "rows": chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() });
    let (status, answer) = post(&addr, "/v1/predict", &body);
    assert_eq!(status, 200, "{answer}");
    for ((id, _), pred) in chunk.iter().zip(answer["predictions"].as_array().unwrap()) {
        let served = pred["scores"][0].as_f64().unwrap();
        // float32 tree sums: within 1e-5 of the values' scale.
        assert!(
            (served - stored[id]).abs() <= 1e-5 * scale,
            "row {id}: {served} vs {} (scale {scale})",
            stored[id]
        );
    }
    assert_eq!(stop(&mut server), Some(0));
}

#[test]
fn a_multiclass_mlp_is_promoted_and_served_as_offline() {
    if !require(PACKAGES, has_packages()) {
        return;
    }
    let p = Project::new();
    p.json(&[
        "import",
        fixture("kddcup-20k.csv.gz").to_str().unwrap(),
        "--target",
        "label",
    ]);
    declare_examples(&p);
    let t = p.json(&[
        "train",
        "--learner",
        "mlp",
        "-p",
        "hidden=16",
        "-p",
        "epochs=2",
        "--seed",
        "2",
    ]);
    assert_eq!(t["task"], "multiclass");
    let run = t["run"].as_str().unwrap().to_string();
    p.json(&["promote", &run, "--why", "a multiclass net"]);
    // Every class's stored score, in the order of the predictions file's columns.
    let out = p.path().join("preds.csv");
    p.json(&["predictions", &run, "--out", out.to_str().unwrap()]);
    let mut r = csv::Reader::from_path(&out).unwrap();
    let headers = r.headers().unwrap().clone();
    let classes: Vec<String> = headers
        .iter()
        .filter_map(|h| h.strip_prefix("score_").map(String::from))
        .collect();
    let first = headers
        .iter()
        .position(|h| h.starts_with("score_"))
        .unwrap();
    let mut stored: HashMap<u64, Vec<f64>> = HashMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let scores = (0..classes.len())
            .map(|c| rec[first + c].parse().unwrap())
            .collect();
        stored.insert(rec[0].parse().unwrap(), scores);
    }
    let rows = holdout_rows(&p);
    let (mut server, addr, _) = start(&p, &[]);
    let chunk = &rows[..200];
    let body =
        serde_json::json!({ "rows": chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() });
    let (status, answer) = post(&addr, "/v1/predict", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["classes"], serde_json::json!(classes));
    for ((id, _), pred) in chunk.iter().zip(answer["predictions"].as_array().unwrap()) {
        let served = pred["scores"].as_array().unwrap();
        assert_eq!(served.len(), classes.len());
        for (s, o) in served.iter().zip(&stored[id]) {
            assert!(
                (s.as_f64().unwrap() - o).abs() <= 1e-5,
                "row {id}: {s} vs {o}"
            );
        }
    }
    assert_eq!(stop(&mut server), Some(0));
}

/// A notebook's model: trained on Adult's CSV with pandas and scikit-learn, predicting the rows
/// `gyre runs holdout` wrote, exported with skl2onnx.
const NOTEBOOK: &str = r#"
import sys
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
adult, holdout, preds, model = sys.argv[1:5]
df = pd.read_csv(adult, na_values="?")
df = df[df["split"] == "train"]
rows = pd.read_parquet(holdout)
cat = [c for c in rows.columns if c != "row_id" and not pd.api.types.is_numeric_dtype(rows[c])]
num = [c for c in rows.columns if c != "row_id" and c not in cat]
def frame(d):
    d = d.copy()
    for c in cat:
        d[c] = d[c].fillna("").astype(str)
    for c in num:
        d[c] = d[c].astype("float32").fillna(0.0)
    return d[cat + num]
pipe = Pipeline([("enc", ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), cat),
                                             ("n", StandardScaler(), num)])),
                 ("lr", LogisticRegression(max_iter=300))])
pipe.fit(frame(df), df["income"])
p = pipe.predict_proba(frame(rows))
out = pd.DataFrame({"row_id": rows["row_id"]})
for i, c in enumerate(pipe.classes_):
    out[c] = p[:, i]
out.to_parquet(preds, index=False)
# The same rows with every probability pulled toward one half: not what the model gives.
off = out.copy()
for c in pipe.classes_:
    off[c] = 0.9 * off[c] + 0.05
off.to_parquet(preds + ".off.parquet", index=False)
types = [(c, StringTensorType([None, 1])) for c in cat] + [(c, FloatTensorType([None, 1])) for c in num]
onx = to_onnx(pipe, initial_types=types, options={id(pipe.steps[-1][1]): {"zipmap": False}})
open(model, "wb").write(onx.SerializeToString())
# As skl2onnx exports by default: probabilities through a ZipMap (a sequence of maps).
zipped = to_onnx(pipe, initial_types=types)
open(model + ".zipmap.onnx", "wb").write(zipped.SerializeToString())
"#;

#[test]
fn a_notebooks_run_is_imported_with_its_model_promoted_and_served() {
    if !require(PACKAGES, has_packages()) {
        return;
    }
    let p = Project::new();
    p.import_adult();
    let gbdt = p.json(&["train", "-p", "num_iterations=30"]);
    p.json(&["promote", gbdt["run"].as_str().unwrap(), "--why", "gbdt"]);
    let rows = holdout_rows(&p);
    let script = p.write("notebook.py", NOTEBOOK.as_bytes());
    let (preds, model) = (p.path().join("preds.parquet"), p.path().join("model.onnx"));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(adult())
        .arg(p.path().join("holdout.parquet"))
        .arg(&preds)
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = p.json(&[
        "runs",
        "import",
        preds.to_str().unwrap(),
        "--name",
        "notebook-lr",
        "--why",
        "the notebook's logistic regression",
        "--model",
        model.to_str().unwrap(),
    ]);
    let run = r["run"].as_str().unwrap().to_string();
    assert_eq!(r["imported"]["model"], model.to_str().unwrap());
    let auc = r["metrics"]["holdout"]["auc"].as_f64().unwrap();
    assert!(auc > 0.85, "{auc}");
    // Through the gate with --force if a linear model loses to the trees: what matters here is
    // that it can be served, which promote checks before anything else.
    let promoted = p.run(&[
        "promote",
        &run,
        "--why",
        "the notebook",
        "--force",
        "--json",
    ]);
    assert_eq!(promoted.status.code(), Some(0), "{}", stderr(&promoted));
    let stored = stored_scores(&p, &run);
    let (mut server, addr, _) = start(&p, &[]);
    let chunk = &rows[..300];
    let body =
        serde_json::json!({ "rows": chunk.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>() });
    let (status, answer) = post(&addr, "/v1/predict", &body);
    assert_eq!(status, 200, "{answer}");
    for ((id, _), pred) in chunk.iter().zip(answer["predictions"].as_array().unwrap()) {
        let served = pred["scores"][1].as_f64().unwrap();
        assert!(
            (served - stored[id]).abs() <= 1e-5,
            "row {id}: {served} vs {}",
            stored[id]
        );
    }
    assert_eq!(stop(&mut server), Some(0));
    // Predictions the model does not give: imported (they are checked as predictions, and
    // pass), compared, but refused by promote, naming a row and both numbers.
    let off = p.path().join("preds.parquet.off.parquet");
    let r = p.json(&[
        "runs",
        "import",
        off.to_str().unwrap(),
        "--name",
        "mismatched",
        "--why",
        "predictions that are not the model's",
        "--model",
        model.to_str().unwrap(),
    ]);
    let bad = r["run"].as_str().unwrap();
    p.json(&["diff", &run, bad]);
    let before = p.snapshot();
    let out = p.run(&["promote", bad, "--why", "x", "--force"]);
    assert_error(
        &out,
        &[
            "cannot be served",
            "does not reproduce the run's predictions",
            "row_id",
        ],
    );
    assert_eq!(p.snapshot(), before);
    // Models onnxruntime cannot serve: a file that is not ONNX, and a ZipMap output. Each run
    // is recorded (it can be compared) and refused by promote with the reason.
    let junk = p.write("junk.onnx", b"not a model");
    let zipmap = p.path().join("model.onnx.zipmap.onnx");
    for (file, needle) in [
        (junk.to_str().unwrap(), "onnxruntime cannot load the model"),
        (zipmap.to_str().unwrap(), "ZipMap"),
    ] {
        let r = p.json(&[
            "runs",
            "import",
            preds.to_str().unwrap(),
            "--name",
            "unservable",
            "--why",
            "a model gyre cannot run",
            "--model",
            file,
        ]);
        let id = r["run"].as_str().unwrap();
        p.json(&["diff", &run, id]);
        let out = p.run(&["promote", id, "--why", "x", "--force"]);
        assert_error(&out, &["cannot be served", needle]);
        let out = p.run(&["serve", "--addr", "127.0.0.1:0", "--run", id]);
        assert_error(&out, &["cannot be served", needle]);
    }
}
