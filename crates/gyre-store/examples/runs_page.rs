//! Times `Tx::runs_page` on a project: `cargo run --release -p gyre-store --example runs_page -- DIR`
//! (bench/ui.py makes a project with 100,000 runs). Prints each query's median of 7.

use gyre_store::{CompareOp, RunField, RunFilter, RunsQuery, Store};

fn main() {
    let dir = std::env::args().nth(1).expect("a project directory");
    let mut store = Store::open(std::path::Path::new(&dir)).expect("a project");
    let f = |field: RunField, op, value: &str| RunFilter {
        field,
        op,
        value: value.into(),
    };
    let auc = || RunField::Metric("auc".into());
    let queries = [
        ("newest", RunField::Created, vec![], 0),
        ("by auc", auc(), vec![], 0),
        (
            "by auc, auc >= 0.9 and num_leaves = 31",
            auc(),
            vec![
                f(auc(), CompareOp::Ge, "0.9"),
                f(RunField::Param("num_leaves".into()), CompareOp::Eq, "31"),
            ],
            0,
        ),
        (
            "by auc, num_leaves = 31 (20% of runs)",
            auc(),
            vec![f(RunField::Param("num_leaves".into()), CompareOp::Eq, "31")],
            0,
        ),
        (
            "newest, seed = 7 (0.1% of runs)",
            RunField::Created,
            vec![f(RunField::Seed, CompareOp::Eq, "7")],
            0,
        ),
        (
            "by learning_rate, learner = gbdt, offset 50000",
            RunField::Param("learning_rate".into()),
            vec![f(RunField::Learner, CompareOp::Eq, "gbdt")],
            50_000,
        ),
    ];
    for (name, sort, filters, offset) in queries {
        let q = RunsQuery {
            sort,
            descending: true,
            filters,
            limit: 50,
            offset,
        };
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let t = std::time::Instant::now();
                let page = store.read(|tx| tx.runs_page(&q)).expect("a page");
                assert!(!page.runs.is_empty() || page.total <= offset);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!("{name:<50} {:7.1} ms", times[3]);
    }
}
