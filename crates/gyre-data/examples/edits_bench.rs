//! Benchmark: applying edits to a materialized version, and materializing a large version.
//!
//! Run: cargo run --release -p gyre-data --example edits_bench [FLIGHTS.csv.gz]
//! 1. UCI Adult (data/adult/adult.csv.gz): apply 100 edits (exclude, include, weight, relabel with
//!    predicates over numeric and categorical columns) to the imported table; median of 5.
//! 2. With a path to flights-3m.csv.gz: the stored table is decoded from its Parquet bytes and 3
//!    edits are applied, which is what every command does to materialize a version; median of 3.

use gyre_core::{EditKind, Predicate};
use gyre_data::version::Materialized;
use gyre_data::{ImportOptions, SplitSpec};
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn import(path: &Path, opts: &ImportOptions) -> (Vec<u8>, gyre_core::DatasetSchema) {
    let imported = gyre_data::import(path, opts, &|_| {}).expect("import");
    (
        gyre_data::table::to_parquet(&imported.batch).unwrap(),
        imported.schema,
    )
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let adult = root.join("data/adult/adult.csv.gz");
    let (bytes, schema) = import(
        &adult,
        &ImportOptions {
            target: "income".into(),
            split: SplitSpec::Column {
                column: "split".into(),
            },
            time_column: None,
            id_column: None,
            na: None,
            task: None,
            first_row_id: 0,
            appending: false,
            target_expr: None,
            missing_target: Default::default(),
            ignore: Vec::new(),
            positive: None,
        },
    );
    let base = Materialized::base(
        gyre_data::table::from_parquet(bytes.into()).unwrap(),
        schema,
    );
    let texts = [
        "age < {}",
        "hours_per_week >= {} AND sex = 'Female'",
        "workclass IN ('Private', 'Self-emp-inc') AND age BETWEEN 20 AND {}",
        "education LIKE 'Some%' OR capital_gain > {}",
        "occupation IS NULL AND age > {}",
    ];
    let edits: Vec<EditKind> = (0..100)
        .map(|i| {
            let p =
                Predicate::parse(&texts[i % texts.len()].replace("{}", &(20 + i % 40).to_string()))
                    .unwrap();
            match i % 4 {
                0 => EditKind::Exclude { predicate: p },
                1 => EditKind::Include { predicate: p },
                2 => EditKind::Weight {
                    predicate: p,
                    by: 1.5,
                },
                _ => EditKind::Relabel {
                    rows: None,
                    predicate: Some(p),
                    to: ">50K".into(),
                },
            }
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..5 {
        let mut m = base.clone();
        let t = Instant::now();
        for e in &edits {
            m.apply(e).unwrap();
        }
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "adult: 100 edits applied to {} rows: median {:.1} ms (runs {})",
        base.batch.num_rows(),
        1000.0 * median(times.clone()),
        times
            .iter()
            .map(|t| format!("{:.1}", 1000.0 * t))
            .collect::<Vec<_>>()
            .join(", ")
    );

    if let Some(flights) = std::env::args().nth(1) {
        let (bytes, schema) = import(
            Path::new(&flights),
            &ImportOptions {
                target: "delay".into(),
                split: SplitSpec::Time {
                    column: "date".into(),
                    fraction: 0.2,
                },
                time_column: Some("date".into()),
                id_column: None,
                na: None,
                task: None,
                first_row_id: 0,
                appending: false,
                target_expr: None,
                missing_target: Default::default(),
                ignore: Vec::new(),
                positive: None,
            },
        );
        let edits = [
            EditKind::Exclude {
                predicate: Predicate::parse("distance < 100").unwrap(),
            },
            EditKind::Weight {
                predicate: Predicate::parse("origin IN ('ORD', 'ATL')").unwrap(),
                by: 2.0,
            },
            EditKind::Relabel {
                rows: Some((0..50).collect()),
                predicate: None,
                to: "0".into(),
            },
        ];
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let batch = gyre_data::table::from_parquet(bytes.clone().into()).unwrap();
            let mut m = Materialized::base(batch, schema.clone());
            for e in &edits {
                m.apply(e).unwrap();
            }
            rows = m.batch.num_rows();
            times.push(t.elapsed().as_secs_f64());
        }
        println!(
            "flights: materialize {rows} rows (decode Parquet + 3 edits): median {:.2} s (runs {})",
            median(times.clone()),
            times
                .iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
