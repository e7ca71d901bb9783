//! The one place params are checked: `learner(name, params)` and the errors users see.

mod common;

use common::params;
use gyre_learn::{LEARNERS, LearnError, learner};

fn err(name: &str, p: &[(&str, &str)]) -> LearnError {
    match learner(name, &params(p)) {
        Ok(_) => panic!("{name} {p:?} should be rejected"),
        Err(e) => e,
    }
}

#[test]
fn unknown_learner_lists_the_valid_ones() {
    let e = err("xgboost", &[]);
    assert!(matches!(&e, LearnError::UnknownLearner { name, .. } if name == "xgboost"));
    assert_eq!(
        e.to_string(),
        "unknown learner \"xgboost\"; valid learners: gbdt, linear"
    );
    assert_eq!(LEARNERS, &["gbdt", "linear"]);
}

#[test]
fn unknown_param_lists_the_valid_ones() {
    let e = err("gbdt", &[("num_leavs", "8")]);
    assert!(matches!(&e, LearnError::UnknownParam { param, .. } if param == "num_leavs"));
    let msg = e.to_string();
    assert!(msg.starts_with("unknown param \"num_leavs\" for learner \"gbdt\"; valid params: num_iterations, learning_rate, num_leaves"), "{msg}");
    let e = err("linear", &[("learning_rate", "0.1")]);
    assert_eq!(
        e.to_string(),
        "unknown param \"learning_rate\" for learner \"linear\"; valid params: l2, max_iter, tol"
    );
}

#[test]
fn invalid_values_name_the_param_and_value() {
    let cases: &[(&str, &str, &str)] = &[
        ("learning_rate", "-0.1", "must be positive"),
        ("trees", "0", "must be at least 1"),
        ("feature_fraction", "0", "must be in (0, 1]"),
        ("bagging_fraction", "1.5", "must be in (0, 1]"),
        ("num_leaves", "abc", "not a number"),
        ("num_leaves", "3.5", "not an integer"),
        ("learning_rate", "NaN", "must be finite"),
        ("max_bin", "1000", "must be between 2 and 255"),
    ];
    for &(param, value, reason) in cases {
        let e = err("gbdt", &[(param, value)]);
        match &e {
            LearnError::InvalidParam {
                param: p,
                value: v,
                reason: r,
                learner,
            } => {
                assert_eq!(
                    (p.as_str(), v.as_str(), r.as_str(), *learner),
                    (param, value, reason, "gbdt")
                );
            }
            other => panic!("{param}={value}: {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            format!(
                "invalid value \"{value}\" for param \"{param}\" of learner \"gbdt\": {reason}"
            )
        );
    }
    assert!(matches!(
        err("linear", &[("l2", "-1")]),
        LearnError::InvalidParam { .. }
    ));
    assert!(matches!(
        err("linear", &[("max_iter", "0")]),
        LearnError::InvalidParam { .. }
    ));
}

#[test]
fn aliases_resolve_and_conflicts_are_rejected() {
    let l = learner("gbdt", &params(&[("n_estimators", "7"), ("eta", "0.3")])).unwrap();
    let p = l.params();
    assert_eq!(p["num_iterations"], 7);
    assert_eq!(p["learning_rate"], 0.3);
    assert_eq!(p["num_leaves"], 31, "defaults are filled in");
    assert_eq!(p["max_delta_step"], "auto");
    let e = err("gbdt", &[("trees", "7"), ("num_iterations", "9")]);
    assert!(e.to_string().contains("already given as \"trees\""), "{e}");
    assert_eq!(
        learner("gbdt", &params(&[("max_delta_step", "2")]))
            .unwrap()
            .params()["max_delta_step"],
        2.0
    );
}

#[test]
fn defaults_are_reported() {
    let g = learner("gbdt", &[]).unwrap();
    assert_eq!(g.name(), "gbdt");
    let p = g.params();
    for (k, v) in [
        ("learning_rate", 0.1),
        ("lambda_l2", 0.0),
        ("feature_fraction", 1.0),
        ("cat_smooth", 10.0),
    ] {
        assert_eq!(p[k], v, "{k}");
    }
    for (k, v) in [
        ("num_iterations", 100),
        ("num_leaves", 31),
        ("max_depth", -1),
        ("min_data_in_leaf", 20),
        ("max_bin", 255),
        ("max_cat_threshold", 32),
        ("min_data_per_group", 100),
        ("early_stopping_rounds", 0),
    ] {
        assert_eq!(p[k], v, "{k}");
    }
    let l = learner("linear", &[]).unwrap();
    assert_eq!(l.name(), "linear");
    assert_eq!(l.params()["max_iter"], 200);
}
