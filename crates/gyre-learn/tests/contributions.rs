//! Per-row contributions (TreeSHAP) on real data: with the base value they add up to the raw
//! score of every row, missing values and category splits included; models without them say so.

mod common;

use common::*;
use gyre_learn::{Column, GbdtModel, LearnError, Model, NoProgress, Task, TrainSet, learner};

fn fit_gbdt(p: &[(&str, &str)], task: Task, d: &Dataset) -> GbdtModel {
    let data = TrainSet {
        features: &d.features,
        rows: &d.train,
        labels: &d.labels,
        weights: None,
    };
    let m = learner("gbdt", &params(p))
        .unwrap()
        .fit(task, &data, 7, &NoProgress)
        .unwrap();
    GbdtModel::load(&m.save()).unwrap()
}

/// Rows to explain: the first 3000 test rows and every tenth training row up to 1000.
fn some_rows(d: &Dataset) -> Vec<u32> {
    let test = d.test.iter().take(3000);
    let train = d.train.iter().step_by(10).take(1000);
    test.chain(train).copied().collect()
}

/// The largest |base + sum of contributions - raw score| over `rows` and outputs.
fn additivity_error(m: &GbdtModel, d: &Dataset, rows: &[u32]) -> f64 {
    let c = m.contributions(&d.features, rows).unwrap();
    let raw = m.predict_raw(&d.features, rows);
    let k = c.outputs;
    assert_eq!(
        (c.rows(), c.features),
        (rows.len(), d.features.columns.len())
    );
    let mut worst = 0.0f64;
    for i in 0..rows.len() {
        for o in 0..k {
            let total = c.base[o] + c.row(i, o).iter().sum::<f64>();
            worst = worst.max((total - raw[i * k + o]).abs());
        }
    }
    worst
}

#[test]
fn contributions_add_up_to_the_raw_score_on_adult() {
    let d = adult();
    let m = fit_gbdt(
        &[
            ("trees", "100"),
            ("bagging_fraction", "0.8"),
            ("bagging_freq", "1"),
            ("feature_fraction", "0.8"),
        ],
        Task::Binary,
        d,
    );
    let rows = some_rows(d);
    let missing = rows
        .iter()
        .filter(|&&r| {
            d.features.columns.iter().any(|c| match c {
                Column::Numeric(v) => v[r as usize].is_nan(),
                Column::Categorical { codes, .. } => codes[r as usize] == u32::MAX,
            })
        })
        .count();
    assert!(missing > 100, "only {missing} rows with a missing value");
    let err = additivity_error(&m, d, &rows);
    eprintln!(
        "adult: largest additivity error {err:e} over {} rows",
        rows.len()
    );
    assert!(err < 1e-9, "{err:e}");

    // Category splits carry weight: some categorical feature moves some row's log-odds.
    let c = m.contributions(&d.features, &rows).unwrap();
    let categorical: Vec<usize> = (0..d.features.columns.len())
        .filter(|&f| matches!(d.features.columns[f], Column::Categorical { .. }))
        .collect();
    assert!(
        (0..rows.len()).any(|i| categorical.iter().any(|&f| c.row(i, 0)[f].abs() > 0.1)),
        "no categorical feature contributes"
    );
}

#[test]
fn contributions_add_up_to_the_raw_score_per_class_and_for_regression() {
    let kdd = kdd();
    let m = fit_gbdt(
        &[("num_iterations", "20")],
        Task::Multiclass {
            classes: kdd.classes.len(),
        },
        kdd,
    );
    let err = additivity_error(&m, kdd, &some_rows(kdd));
    eprintln!("kdd: largest additivity error {err:e}");
    assert!(err < 1e-9, "kdd {err:e}");

    let bike = bike();
    let m = fit_gbdt(&[("num_iterations", "100")], Task::Regression, bike);
    let err = additivity_error(&m, bike, &some_rows(bike));
    eprintln!("bike: largest additivity error {err:e}");
    assert!(err < 1e-9, "bike {err:e}");
}

#[test]
fn a_model_saved_before_leaf_counts_predicts_but_cannot_explain() {
    let d = bike();
    let m = fit_gbdt(&[("num_iterations", "5")], Task::Regression, d);
    let mut v: serde_json::Value = serde_json::from_slice(&m.save()).unwrap();
    for t in v["trees"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("leaf_count");
    }
    let old_bytes = v.to_string().into_bytes();
    let old = gyre_learn::load_model(&old_bytes).unwrap();
    let rows = &d.test[..50];
    assert_eq!(old.predict(&d.features, rows), m.predict(&d.features, rows));
    let again = String::from_utf8(old.save()).unwrap();
    assert!(
        !again.contains("leaf_count"),
        "saved again without leaf counts"
    );
    match old.contributions(&d.features, rows) {
        Err(e @ LearnError::NoContributions { .. }) => {
            assert!(e.to_string().contains("retrain it"), "{e}")
        }
        other => panic!("expected no contributions, got {:?}", other.map(|c| c.base)),
    }
}

#[test]
fn linear_models_give_no_contributions() {
    let d = bike();
    let data = TrainSet {
        features: &d.features,
        rows: &d.train,
        labels: &d.labels,
        weights: None,
    };
    let m = learner("linear", &[])
        .unwrap()
        .fit(Task::Regression, &data, 1, &NoProgress)
        .unwrap();
    let e = m.contributions(&d.features, &d.test[..3]).unwrap_err();
    assert!(
        matches!(
            e,
            LearnError::NoContributions {
                learner: "linear",
                ..
            }
        ),
        "{e}"
    );
}
