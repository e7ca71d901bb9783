//! End-to-end checks of the linear baseline.

mod common;

use common::*;
use gyre_learn::{Model, NoProgress, Task, TrainSet, learner, load_model};

fn fit(
    p: &[(&str, &str)],
    task: Task,
    d: &Dataset,
    rows: &[u32],
    weights: Option<&[f64]>,
) -> Box<dyn Model> {
    let l = learner("linear", &params(p)).unwrap();
    l.fit(
        task,
        &TrainSet {
            features: &d.features,
            rows,
            labels: &d.labels,
            weights,
        },
        1,
        &NoProgress,
    )
    .unwrap()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn adult_binary_auc() {
    let d = adult();
    let m = fit(&[], Task::Binary, d, &d.train, None);
    let a = auc(&m.predict(&d.features, &d.test), &labels_of(d, &d.test));
    eprintln!("linear adult test auc {a:.4}");
    assert!(a > 0.88, "auc {a}");
}

#[test]
fn kdd_multiclass_probabilities() {
    let d = kdd();
    let k = d.classes.len();
    let m = fit(&[], Task::Multiclass { classes: k }, d, &d.train, None);
    let p = m.predict(&d.features, &d.test);
    for row in p.chunks(k) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let acc = accuracy(&p, k, &labels_of(d, &d.test));
    eprintln!("linear kdd accuracy {acc:.4}");
    assert!(acc > 0.95, "accuracy {acc}");
}

#[test]
fn bike_ridge_beats_the_mean() {
    let d = bike();
    let m = fit(&[], Task::Regression, d, &d.train, None);
    let r = r2(&m.predict(&d.features, &d.test), &labels_of(d, &d.test));
    eprintln!("linear bike r2 {r:.4}");
    assert!(r > 0.3, "r2 {r}");
}

#[test]
fn deterministic_across_threads_and_save_load() {
    let d = adult();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fit(&[("max_iter", "50")], Task::Binary, d, &d.train, None))
    };
    let m1 = run(1);
    let m3 = run(3);
    let p1 = bits(&m1.predict(&d.features, &d.test));
    assert_eq!(p1, bits(&m3.predict(&d.features, &d.test)));
    let back = load_model(&m1.save()).unwrap();
    assert_eq!(back.learner(), "linear");
    assert_eq!(p1, bits(&back.predict(&d.features, &d.test)));
    assert_eq!(back.save(), m1.save());
}

#[test]
fn row_weights_change_the_model() {
    let d = adult();
    let up: Vec<f64> = d
        .labels
        .iter()
        .map(|&y| if y == 1.0 { 5.0 } else { 1.0 })
        .collect();
    let plain = fit(&[], Task::Binary, d, &d.train, None).predict(&d.features, &d.test);
    let heavy = fit(&[], Task::Binary, d, &d.train, Some(&up)).predict(&d.features, &d.test);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(
        mean(&heavy) > mean(&plain) + 0.1,
        "{} vs {}",
        mean(&heavy),
        mean(&plain)
    );
}
