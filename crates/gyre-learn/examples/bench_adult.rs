//! Benchmark: gbdt on Adult (train split) with LightGBM-comparable settings, 2 threads
//! (or THREADS).
//! Run: cargo run --release --example bench_adult [runs]   (THREADS=1 for single-thread cost)
//! Compare with bench/adult_vs_lightgbm.py, which trains LightGBM the same way.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use gyre_learn::{NoProgress, Task, TrainSet, learner};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(5, |s| s.parse().expect("runs"));
    let d = adult();
    // THREADS overrides the thread count (default 2, as the LightGBM script).
    let threads: usize = std::env::var("THREADS").map_or(2, |s| s.parse().expect("THREADS"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let l = learner(
        "gbdt",
        &params(&[
            ("num_iterations", "200"),
            ("learning_rate", "0.05"),
            ("num_leaves", "31"),
        ]),
    )
    .unwrap();
    let data = TrainSet {
        features: &d.features,
        rows: &d.train,
        labels: &d.labels,
        weights: None,
    };
    let mut times = Vec::new();
    let mut model = None;
    for _ in 0..runs {
        let t = Instant::now();
        let m = pool.install(|| l.fit(Task::Binary, &data, 1, &NoProgress).unwrap());
        times.push(t.elapsed().as_secs_f64());
        model = Some(m);
    }
    times.sort_by(f64::total_cmp);
    let m = model.unwrap();
    let mut predict_s = f64::INFINITY;
    let mut p = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        p = pool.install(|| m.predict(&d.features, &d.test));
        predict_s = predict_s.min(t.elapsed().as_secs_f64());
    }
    let a = auc(&p, &labels_of(d, &d.test));
    // One row per call, as a served request predicts (on this thread, no pool).
    let mut one_row_s = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for &r in &d.test {
            std::hint::black_box(m.predict(&d.features, &[r]));
        }
        one_row_s = one_row_s.min(t.elapsed().as_secs_f64() / d.test.len() as f64);
    }
    println!(
        "gyre gbdt: train rows {} | fit median {:.3}s (min {:.3}s, max {:.3}s, {runs} runs) | test AUC {a:.5} | predict {:.2} us/row (best of 5) | one row per call {:.2} us (best of 5) | {threads} threads",
        d.train.len(),
        times[runs / 2],
        times[0],
        times[runs - 1],
        predict_s * 1e6 / d.test.len() as f64,
        one_row_s * 1e6
    );

    // The linear baseline on the same rows, for scale.
    let lin = learner("linear", &[]).unwrap();
    let t = Instant::now();
    let m = pool.install(|| lin.fit(Task::Binary, &data, 1, &NoProgress).unwrap());
    let fit_s = t.elapsed().as_secs_f64();
    let a = auc(&m.predict(&d.features, &d.test), &labels_of(d, &d.test));
    println!("gyre linear: fit {fit_s:.3}s | test AUC {a:.5} | {threads} threads");
}
