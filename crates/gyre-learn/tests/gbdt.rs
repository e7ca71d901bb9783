//! End-to-end checks of the gbdt learner on real data sets and on cases built to show one behaviour.

mod common;

use common::*;
use gyre_learn::{Column, Features, Model, NoProgress, Task, TrainSet, learner, load_model};

fn fit(
    name: &str,
    p: &[(&str, &str)],
    task: Task,
    d: &Dataset,
    rows: &[u32],
    weights: Option<&[f64]>,
    seed: u64,
) -> Box<dyn Model> {
    let l = learner(name, &params(p)).unwrap();
    let data = TrainSet {
        features: &d.features,
        rows,
        labels: &d.labels,
        weights,
    };
    l.fit(task, &data, seed, &NoProgress).unwrap()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn adult_binary_auc() {
    let d = adult();
    let m = fit(
        "gbdt",
        &[
            ("trees", "200"),
            ("learning_rate", "0.05"),
            ("num_leaves", "31"),
        ],
        Task::Binary,
        d,
        &d.train,
        None,
        1,
    );
    let p = m.predict(&d.features, &d.test);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
    let a = auc(&p, &labels_of(d, &d.test));
    eprintln!("gbdt adult test auc {a:.4}");
    assert!(a > 0.92, "auc {a}");
}

#[test]
fn kdd_multiclass_accuracy() {
    let d = kdd();
    let k = d.classes.len();
    let m = fit(
        "gbdt",
        &[("num_iterations", "30")],
        Task::Multiclass { classes: k },
        d,
        &d.train,
        None,
        1,
    );
    let p = m.predict(&d.features, &d.test);
    assert_eq!(p.len(), d.test.len() * k);
    for row in p.chunks(k) {
        let s: f64 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-9, "probabilities sum to {s}");
    }
    let acc = accuracy(&p, k, &labels_of(d, &d.test));
    eprintln!("gbdt kdd accuracy {acc:.4} over {k} classes");
    assert!(acc > 0.98, "accuracy {acc}");
}

#[test]
fn bike_regression_r2() {
    let d = bike();
    let m = fit(
        "gbdt",
        &[("num_iterations", "200")],
        Task::Regression,
        d,
        &d.train,
        None,
        1,
    );
    let p = m.predict(&d.features, &d.test);
    let r = r2(&p, &labels_of(d, &d.test));
    eprintln!("gbdt bike r2 {r:.4}");
    assert!(r > 0.85, "r2 {r}");
}

#[test]
fn same_seed_gives_identical_predictions_whatever_the_threads() {
    let d = adult();
    let p = [
        ("trees", "30"),
        ("feature_fraction", "0.7"),
        ("bagging_fraction", "0.8"),
        ("bagging_freq", "1"),
    ];
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let m = fit("gbdt", &p, Task::Binary, d, &d.train, None, 42);
            bits(&m.predict(&d.features, &d.test))
        })
    };
    let one = run(1);
    assert_eq!(one, run(1), "same seed, same pool");
    assert_eq!(one, run(2), "1 thread vs 2 threads");
    assert_eq!(one, run(4), "1 thread vs 4 threads");
    let other_seed =
        bits(&fit("gbdt", &p, Task::Binary, d, &d.train, None, 43).predict(&d.features, &d.test));
    assert_ne!(
        one, other_seed,
        "the seed drives bagging and feature sampling"
    );
}

#[test]
fn multiclass_deterministic_across_threads() {
    let d = kdd();
    let k = d.classes.len();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let m = fit(
                "gbdt",
                &[("trees", "5")],
                Task::Multiclass { classes: k },
                d,
                &d.train,
                None,
                3,
            );
            bits(&m.predict(&d.features, &d.test))
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn rows_walked_together_reach_the_same_leaves_as_rows_walked_alone() {
    // A batch walks rows eight at a time, level by level; one row walks alone. Same numbers.
    for (task, d) in [
        (Task::Binary, adult()),
        (
            Task::Multiclass {
                classes: kdd().classes.len(),
            },
            kdd(),
        ),
    ] {
        let m = fit("gbdt", &[("trees", "20")], task, d, &d.train, None, 9);
        let rows: Vec<u32> = d.test.iter().copied().take(301).collect();
        let together = m.predict(&d.features, &rows);
        let alone: Vec<f64> = rows
            .iter()
            .flat_map(|&r| m.predict(&d.features, &[r]))
            .collect();
        assert_eq!(bits(&together), bits(&alone));
    }
}

/// One dataset per task: Adult (binary), Bike (regression), KDD (multiclass).
fn every_task() -> [(Task, &'static Dataset); 3] {
    [
        (Task::Binary, adult()),
        (Task::Regression, bike()),
        (
            Task::Multiclass {
                classes: kdd().classes.len(),
            },
            kdd(),
        ),
    ]
}

#[test]
fn save_load_round_trip_is_bit_identical() {
    for (task, d) in every_task() {
        let m = fit("gbdt", &[("trees", "10")], task, d, &d.train, None, 5);
        let bytes = m.save();
        let head: serde_json_head::Head = serde_json_head::parse(&bytes);
        assert_eq!(
            (head.format.as_str(), head.version, head.learner.as_str()),
            ("gyre-model", 1, "gbdt")
        );
        let back = load_model(&bytes).unwrap();
        assert_eq!(back.task(), task);
        assert_eq!(back.learner(), "gbdt");
        assert_eq!(
            bits(&m.predict(&d.features, &d.test)),
            bits(&back.predict(&d.features, &d.test))
        );
        assert_eq!(
            back.save(),
            bytes,
            "saving a loaded model gives the same bytes"
        );
    }
}

/// Minimal header reader so the test checks the documented format without a serde_json dev-dependency.
mod serde_json_head {
    pub struct Head {
        pub format: String,
        pub version: u32,
        pub learner: String,
    }
    fn field<'a>(s: &'a str, key: &str) -> &'a str {
        let at = s.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
        let rest = &s[at..];
        let end = rest.find([',', '}']).unwrap();
        rest[..end].trim_matches('"')
    }
    pub fn parse(bytes: &[u8]) -> Head {
        let s = std::str::from_utf8(bytes).unwrap();
        Head {
            format: field(s, "format").into(),
            version: field(s, "version").parse().unwrap(),
            learner: field(s, "learner").into(),
        }
    }
}

#[test]
fn corrupt_models_are_rejected() {
    assert!(matches!(
        load_model(b"not json"),
        Err(gyre_learn::LearnError::CorruptModel(_))
    ));
    let d = adult();
    let m = fit(
        "gbdt",
        &[("trees", "2")],
        Task::Binary,
        d,
        &d.train[..2000],
        None,
        5,
    );
    let s = String::from_utf8(m.save()).unwrap();
    let bumped = s.replacen("\"version\":1", "\"version\":99", 1);
    assert!(matches!(
        load_model(bumped.as_bytes()),
        Err(gyre_learn::LearnError::UnsupportedModelVersion { version: 99, .. })
    ));
    let broken = s.replacen("\"left\":[", "\"left\":[77,", 1);
    assert!(load_model(broken.as_bytes()).is_err());

    // A numeric node moved onto a feature other nodes split as categorical.
    let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let trees = v["trees"].as_array_mut().unwrap();
    let nodes = |t: &serde_json::Value| -> Vec<(u64, i64)> {
        let f = t["feature"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap());
        let c = t["cat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap());
        f.zip(c).collect()
    };
    let categorical = trees
        .iter()
        .flat_map(nodes)
        .find(|(_, c)| *c >= 0)
        .map(|(f, _)| f)
        .expect("Adult's trees split a category");
    let (t, i) = (0..trees.len())
        .find_map(|t| {
            nodes(&trees[t])
                .iter()
                .position(|(_, c)| *c < 0)
                .map(|i| (t, i))
        })
        .expect("and a number");
    trees[t]["feature"][i] = serde_json::json!(categorical);
    match load_model(v.to_string().as_bytes()) {
        Err(gyre_learn::LearnError::CorruptModel(m)) => {
            assert!(m.contains("both as numeric and as categorical"), "{m}")
        }
        other => panic!("loaded: {:?}", other.map(|m| m.learner())),
    }
}

#[test]
fn row_weights_change_the_model() {
    let d = adult();
    let rows = &d.train[..8000];
    let ones = vec![1.0; d.features.rows];
    let up: Vec<f64> = d
        .labels
        .iter()
        .map(|&y| if y == 1.0 { 5.0 } else { 1.0 })
        .collect();
    let p = [("trees", "20")];
    let plain = fit("gbdt", &p, Task::Binary, d, rows, None, 1).predict(&d.features, &d.test);
    let unit = fit("gbdt", &p, Task::Binary, d, rows, Some(&ones), 1).predict(&d.features, &d.test);
    let heavy = fit("gbdt", &p, Task::Binary, d, rows, Some(&up), 1).predict(&d.features, &d.test);
    assert_eq!(bits(&plain), bits(&unit), "unit weights are no weights");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&heavy) > mean(&plain) + 0.1,
        "{} vs {}",
        mean(&heavy),
        mean(&plain)
    );
}

fn log_loss(p: &[f64], y: &[f64]) -> f64 {
    p.iter()
        .zip(y)
        .map(|(&p, &y)| -(if y == 1.0 { p } else { 1.0 - p }).max(1e-15).ln())
        .sum::<f64>()
        / p.len() as f64
}

#[test]
fn native_categorical_splits_beat_one_hot() {
    // The label depends on whether the category is in a random half of 50 categories: one native
    // split separates them, while one-hot columns need a split per category.
    let n = 10_000;
    let k = 50u32;
    let in_set: Vec<bool> = (0..k).map(|c| unit_hash(c as u64, 99) < 0.5).collect();
    let codes: Vec<u32> = (0..n)
        .map(|i| (unit_hash(i as u64, 1) * k as f64) as u32)
        .collect();
    let labels: Vec<f64> = (0..n)
        .map(|i| {
            let p = if in_set[codes[i] as usize] { 0.8 } else { 0.2 };
            if unit_hash(i as u64, 2) < p { 1.0 } else { 0.0 }
        })
        .collect();
    let native = Features {
        names: vec!["cat".into()].into(),
        columns: vec![Column::Categorical {
            codes: codes.clone().into(),
            cardinality: k,
        }],
        rows: n,
    };
    let onehot = Features {
        names: (0..k).map(|c| format!("is_{c}")).collect(),
        columns: (0..k)
            .map(|c| Column::Numeric(codes.iter().map(|&x| (x == c) as u8 as f64).collect()))
            .collect(),
        rows: n,
    };
    let as_number = Features {
        names: vec!["code".into()].into(),
        columns: vec![Column::Numeric(codes.iter().map(|&c| c as f64).collect())],
        rows: n,
    };
    let (train, test) = holdout(n, 0.3, 5);
    let y_test: Vec<f64> = test.iter().map(|&i| labels[i as usize]).collect();
    let l = learner(
        "gbdt",
        &params(&[
            ("trees", "3"),
            ("num_leaves", "4"),
            ("learning_rate", "0.5"),
        ]),
    )
    .unwrap();
    let score = |f: &Features| {
        let m = l
            .fit(
                Task::Binary,
                &TrainSet {
                    features: f,
                    rows: &train,
                    labels: &labels,
                    weights: None,
                },
                1,
                &NoProgress,
            )
            .unwrap();
        let p = m.predict(f, &test);
        (auc(&p, &y_test), log_loss(&p, &y_test))
    };
    let (a_native, ll_native) = score(&native);
    let (a_onehot, ll_onehot) = score(&onehot);
    let (a_number, ll_number) = score(&as_number);
    eprintln!("auc native {a_native:.4} one-hot {a_onehot:.4} numeric code {a_number:.4}");
    eprintln!("log loss native {ll_native:.4} one-hot {ll_onehot:.4} numeric code {ll_number:.4}");
    assert!(a_native > 0.78, "native auc {a_native}");
    assert!(a_native > a_onehot + 0.05 && ll_native < ll_onehot - 0.02);
    assert!(a_native > a_number + 0.05 && ll_native < ll_number - 0.02);
}

#[test]
fn missingness_that_predicts_the_label_is_used() {
    let n = 6000;
    let x: Vec<f64> = (0..n)
        .map(|i| {
            if unit_hash(i as u64, 3) < 0.3 {
                f64::NAN
            } else {
                unit_hash(i as u64, 4)
            }
        })
        .collect();
    let labels: Vec<f64> = (0..n)
        .map(|i| {
            let p = if x[i].is_nan() { 0.9 } else { 0.1 + 0.2 * x[i] };
            if unit_hash(i as u64, 5) < p { 1.0 } else { 0.0 }
        })
        .collect();
    let f = Features {
        names: vec!["x".into()].into(),
        columns: vec![Column::Numeric(x.clone().into())],
        rows: n,
    };
    let rows: Vec<u32> = (0..n as u32).collect();
    let m = learner("gbdt", &params(&[("trees", "20")]))
        .unwrap()
        .fit(
            Task::Binary,
            &TrainSet {
                features: &f,
                rows: &rows,
                labels: &labels,
                weights: None,
            },
            1,
            &NoProgress,
        )
        .unwrap();
    let probe = Features {
        names: vec!["x".into()].into(),
        columns: vec![Column::Numeric(
            vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1, 0.5, 0.9].into(),
        )],
        rows: 6,
    };
    let p = m.predict(&probe, &[0, 1, 2, 3, 4, 5]);
    eprintln!("missing-probe predictions {p:?}");
    assert!(
        p[0] > 0.8 && p[1] > 0.8 && p[2] > 0.8,
        "missing and inf rows: {p:?}"
    );
    assert!(p[3..].iter().all(|&v| v < 0.4), "present rows: {p:?}");
}

#[test]
fn nan_and_inf_features_are_missing_not_panics() {
    let n = 500;
    let v: Vec<f64> = (0..n)
        .map(|i| match i % 7 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            _ => i as f64,
        })
        .collect();
    let codes: Vec<u32> = (0..n)
        .map(|i| if i % 5 == 0 { u32::MAX } else { (i % 4) as u32 })
        .collect();
    let f = Features {
        names: vec!["v".into(), "c".into()].into(),
        columns: vec![
            Column::Numeric(v.into()),
            Column::Categorical {
                codes: codes.into(),
                cardinality: 4,
            },
        ],
        rows: n,
    };
    let labels: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
    let rows: Vec<u32> = (0..n as u32).collect();
    for name in ["gbdt", "linear"] {
        for task in [
            Task::Binary,
            Task::Regression,
            Task::Multiclass { classes: 3 },
        ] {
            let y: Vec<f64> = if task == Task::Binary {
                labels.iter().map(|&l| (l > 0.0) as u8 as f64).collect()
            } else {
                labels.clone()
            };
            let m = learner(
                name,
                &params(&[("min_data_in_leaf", "5")][..if name == "gbdt" { 1 } else { 0 }]),
            )
            .unwrap()
            .fit(
                task,
                &TrainSet {
                    features: &f,
                    rows: &rows,
                    labels: &y,
                    weights: None,
                },
                1,
                &NoProgress,
            )
            .unwrap();
            // Unseen category codes and wrong-kind columns must not panic either.
            let probe = Features {
                names: f.names.clone(),
                columns: vec![
                    Column::Numeric(vec![f64::NAN, 3.0].into()),
                    Column::Categorical {
                        codes: vec![17, u32::MAX].into(),
                        cardinality: 18,
                    },
                ],
                rows: 2,
            };
            for p in [m.predict(&f, &rows), m.predict(&probe, &[0, 1])] {
                assert!(p.iter().all(|x| x.is_finite()), "{name} {task:?}");
            }
        }
    }
}

#[test]
fn early_stopping_truncates_to_the_best_iteration() {
    let d = bike();
    // Every third row: the table is in time order, so a prefix would not resemble the test rows.
    let rows: Vec<u32> = d.train.iter().copied().step_by(3).collect();
    let rows = &rows[..];
    let l = learner(
        "gbdt",
        &params(&[
            ("trees", "2000"),
            ("learning_rate", "0.3"),
            ("early_stopping_rounds", "10"),
        ]),
    )
    .unwrap();
    let data = TrainSet {
        features: &d.features,
        rows,
        labels: &d.labels,
        weights: None,
    };
    let m = l.fit(Task::Regression, &data, 1, &NoProgress).unwrap();
    let saved = String::from_utf8(m.save()).unwrap();
    let trees = saved.matches("\"leaf_value\"").count();
    eprintln!("early stopping kept {trees} trees");
    assert!(trees > 10 && trees < 1990, "{trees} trees");
    let r = r2(&m.predict(&d.features, &d.test), &labels_of(d, &d.test));
    assert!(r > 0.8, "r2 {r}");
}

#[test]
fn progress_is_reported_every_iteration() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl gyre_learn::Progress for Count {
        fn iteration(&self, done: usize, total: usize) {
            assert!(done <= total);
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let d = bike();
    let c = Count(Default::default());
    let l = learner("gbdt", &params(&[("trees", "7")])).unwrap();
    l.fit(
        Task::Regression,
        &TrainSet {
            features: &d.features,
            rows: &d.train[..1000],
            labels: &d.labels,
            weights: None,
        },
        1,
        &c,
    )
    .unwrap();
    assert_eq!(c.0.load(std::sync::atomic::Ordering::Relaxed), 7);
}

#[test]
fn binned_features_can_be_reused_across_fits() {
    let d = adult();
    let binned = gyre_learn::bin_features(&d.features, 255);
    let g =
        gyre_learn::Gbdt::new(gyre_learn::GbdtParams::parse(&params(&[("trees", "10")])).unwrap());
    let data = TrainSet {
        features: &d.features,
        rows: &d.train,
        labels: &d.labels,
        weights: None,
    };
    let a = g
        .fit_binned(Task::Binary, &data, &binned, 1, &NoProgress)
        .unwrap();
    let b = learner("gbdt", &params(&[("trees", "10")]))
        .unwrap()
        .fit(Task::Binary, &data, 1, &NoProgress)
        .unwrap();
    assert_eq!(
        bits(&a.predict(&d.features, &d.test)),
        bits(&b.predict(&d.features, &d.test))
    );
}

#[test]
fn unseen_categories_follow_missing() {
    // Missing categories predict the label; unseen codes at prediction time must go the same way.
    let n = 6000;
    let codes: Vec<u32> = (0..n)
        .map(|i| {
            if unit_hash(i as u64, 8) < 0.3 {
                u32::MAX
            } else {
                (unit_hash(i as u64, 9) * 10.0) as u32
            }
        })
        .collect();
    let labels: Vec<f64> = (0..n)
        .map(|i| {
            let p = if codes[i] == u32::MAX {
                0.9
            } else {
                0.1 + 0.05 * codes[i] as f64
            };
            if unit_hash(i as u64, 10) < p {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let f = Features {
        names: vec!["c".into()].into(),
        columns: vec![Column::Categorical {
            codes: codes.into(),
            cardinality: 10,
        }],
        rows: n,
    };
    let rows: Vec<u32> = (0..n as u32).collect();
    let m = learner("gbdt", &params(&[("trees", "20")]))
        .unwrap()
        .fit(
            Task::Binary,
            &TrainSet {
                features: &f,
                rows: &rows,
                labels: &labels,
                weights: None,
            },
            1,
            &NoProgress,
        )
        .unwrap();
    let probe = Features {
        names: vec!["c".into()].into(),
        columns: vec![Column::Categorical {
            codes: vec![u32::MAX, 10, 31, 40, 1_000_000, 0].into(),
            cardinality: 1_000_001,
        }],
        rows: 6,
    };
    let p = m.predict(&probe, &[0, 1, 2, 3, 4, 5]);
    eprintln!("unseen-category predictions {p:?}");
    assert!(
        p[..5].iter().all(|&v| v == p[0]),
        "missing and unseen codes differ: {p:?}"
    );
    assert!(p[0] > 0.8 && p[5] < 0.3, "{p:?}");
}

#[test]
fn prediction_engine_agrees_with_a_plain_walk_of_the_stored_trees() {
    // The engine predicts over integer codes derived from the trees' thresholds and sets; the
    // reference walks real values down the stored arrays. Same numbers, bit for bit, on held-out
    // rows, on rows with values knocked out, and on rows with categories no tree has seen.
    // KDD's `service` has more categories than one 64-bit mask holds (the side-table path).
    // Three engines: QuickScorer with 32-bit leaf masks (31 leaves), with 64-bit ones (63), and
    // the walks by node and by lone row (127 leaves, too many for QuickScorer).
    for ((task, d), leaves) in every_task()
        .into_iter()
        .flat_map(|t| ["31", "63", "127"].map(|l| (t, l)))
    {
        let binned = gyre_learn::bin_features(&d.features, 255);
        let m = gyre_learn::Gbdt::new(
            gyre_learn::GbdtParams::parse(&params(&[("trees", "30"), ("num_leaves", leaves)]))
                .unwrap(),
        )
        .fit_binned(
            task,
            &TrainSet {
                features: &d.features,
                rows: &d.train,
                labels: &d.labels,
                weights: None,
            },
            &binned,
            4,
            &NoProgress,
        )
        .unwrap();
        let engine = match leaves {
            "31" => "quickscorer-32",
            "63" => "quickscorer-64",
            _ => "walk",
        };
        assert_eq!(m.prediction_engine(), engine, "{task:?}, {leaves} leaves");
        let rows: Vec<u32> = d.test.iter().copied().take(2003).collect();
        assert_eq!(
            bits(&m.predict_raw(&d.features, &rows)),
            bits(&m.predict_raw_reference(&d.features, &rows))
        );
        let lone: Vec<f64> = rows[..50]
            .iter()
            .flat_map(|&r| m.predict_raw(&d.features, &[r]))
            .collect();
        assert_eq!(
            bits(&lone),
            bits(&m.predict_raw_reference(&d.features, &rows[..50]))
        );

        // Knock out every fifth value (NaN, infinity, missing category) and move every third
        // category past the dictionary.
        let mut damaged = d.features.clone();
        for (f, col) in damaged.columns.iter_mut().enumerate() {
            match col {
                Column::Numeric(v) => {
                    for (i, x) in v.to_mut().iter_mut().enumerate() {
                        if (i + f) % 5 == 0 {
                            *x = if i % 2 == 0 { f64::NAN } else { f64::INFINITY };
                        }
                    }
                }
                Column::Categorical { codes, cardinality } => {
                    let card = *cardinality;
                    for (i, c) in codes.to_mut().iter_mut().enumerate() {
                        if (i + f) % 5 == 0 {
                            *c = u32::MAX;
                        } else if (i + f) % 3 == 0 {
                            *c = card + (i as u32 % 100);
                        }
                    }
                    *cardinality += 100;
                }
            }
        }
        assert_eq!(
            bits(&m.predict_raw(&damaged, &rows)),
            bits(&m.predict_raw_reference(&damaged, &rows))
        );
        let lone: Vec<f64> = rows[..50]
            .iter()
            .flat_map(|&r| m.predict_raw(&damaged, &[r]))
            .collect();
        assert_eq!(
            bits(&lone),
            bits(&m.predict_raw_reference(&damaged, &rows[..50])),
            "{leaves} leaves"
        );
    }
}

#[test]
fn a_model_whose_nodes_share_children_loads_in_linear_time() {
    // A stored tree may have a node whose two children are the same node: 60 such nodes in a
    // chain have 2^60 root-to-leaf walks by recursion. Loading must not explore them.
    let d = adult();
    let m = fit(
        "gbdt",
        &[("trees", "1")],
        Task::Binary,
        d,
        &d.train[..2000],
        None,
        1,
    );
    let mut v: serde_json::Value = serde_json::from_slice(&m.save()).unwrap();
    let n = 60;
    let tree = serde_json::json!({
        "feature": vec![0; n],
        "threshold": (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        "cat": vec![-1; n],
        "default_left": vec![true; n],
        "left": (0..n).map(|i| if i + 1 < n { (i + 1) as i64 } else { !0 }).collect::<Vec<_>>(),
        "right": (0..n).map(|i| if i + 1 < n { (i + 1) as i64 } else { !1 }).collect::<Vec<_>>(),
        "cat_offsets": [0],
        "cat_bits": [],
        "leaf_value": (0..=n).map(|i| i as f64).collect::<Vec<_>>(),
    });
    v["trees"] = serde_json::json!([tree]);
    let loaded = load_model(v.to_string().as_bytes()).unwrap();
    // Not a proper tree, so QuickScorer must not take it.
    let gbdt = gyre_learn::GbdtModel::load(v.to_string().as_bytes()).unwrap();
    assert_eq!(gbdt.prediction_engine(), "walk");
    // Every row walks the chain to the last node, which sends age <= 59 to leaf 0 (value 0) and
    // older rows to leaf 1 (value 1): their log-odds differ by exactly 1.
    let Column::Numeric(age) = &d.features.columns[0] else {
        panic!("age is numeric")
    };
    let young = *d.test.iter().find(|&&r| age[r as usize] <= 59.0).unwrap();
    let old = *d.test.iter().find(|&&r| age[r as usize] > 59.0).unwrap();
    let p = loaded.predict(&d.features, &[young, old]);
    let logit = |p: f64| (p / (1.0 - p)).ln();
    assert!((logit(p[1]) - logit(p[0]) - 1.0).abs() < 1e-9, "{p:?}");
}

/// Issue 24: quantized gradients (Shi et al., NeurIPS 2022) are the default; exact histograms stay
/// one param away, and both keep Adult's AUC within 0.002 of each other.
#[test]
fn quantized_gradients_keep_adult_auc_and_can_be_turned_off() {
    let d = adult();
    let y = labels_of(d, &d.test);
    let auc_with = |q: &str| {
        let p = [
            ("trees", "200"),
            ("learning_rate", "0.05"),
            ("use_quantized_grad", q),
        ];
        auc(
            &fit("gbdt", &p, Task::Binary, d, &d.train, None, 0).predict(&d.features, &d.test),
            &y,
        )
    };
    let (quantized, exact) = (auc_with("true"), auc_with("false"));
    eprintln!("adult AUC quantized {quantized:.5}, exact {exact:.5}");
    assert!((quantized - exact).abs() < 0.002, "{quantized} vs {exact}");
    assert!(
        learner("gbdt", &params(&[("use_quantized_grad", "maybe")])).is_err(),
        "a bool param takes true or false"
    );
}

/// Quantized histograms over a wide table (column by column, not row-wise) and exact ones each
/// give the same model whatever the thread count.
#[test]
fn wide_table_identical_whatever_the_threads_quantized_or_not() {
    let (n, m) = (6_000usize, 80usize);
    let columns: Vec<Column> = (0..m)
        .map(|f| {
            Column::Numeric(
                (0..n)
                    .map(|i| unit_hash(i as u64, 100 + f as u64))
                    .collect::<Vec<f64>>()
                    .into(),
            )
        })
        .collect();
    let labels: Vec<f64> = (0..n)
        .map(|i| {
            let s = unit_hash(i as u64, 100) + unit_hash(i as u64, 101) + unit_hash(i as u64, 7);
            (s > 1.5) as u8 as f64
        })
        .collect();
    let f = Features {
        names: (0..m).map(|c| format!("x{c}")).collect(),
        columns,
        rows: n,
    };
    let rows: Vec<u32> = (0..n as u32).collect();
    for q in ["true", "false"] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let l = learner(
                    "gbdt",
                    &params(&[("trees", "10"), ("use_quantized_grad", q)]),
                )
                .unwrap();
                let data = TrainSet {
                    features: &f,
                    rows: &rows,
                    labels: &labels,
                    weights: None,
                };
                let model = l.fit(Task::Binary, &data, 1, &NoProgress).unwrap();
                bits(&model.predict(&f, &rows))
            })
        };
        let one = run(1);
        assert_eq!(one, run(2), "use_quantized_grad={q}: 1 vs 2 threads");
        assert_eq!(one, run(3), "use_quantized_grad={q}: 1 vs 3 threads");
    }
}
