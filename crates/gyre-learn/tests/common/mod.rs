//! Test fixtures: reading the gzipped CSVs in tests/data into `Features`, plus metrics.
#![allow(dead_code)]

use std::io::Read;
use std::sync::OnceLock;

use gyre_learn::{Column, Features};

pub struct Dataset {
    pub features: Features,
    pub labels: Vec<f64>,
    pub train: Vec<u32>,
    pub test: Vec<u32>,
    /// Class names for classification, by label index.
    pub classes: Vec<String>,
}

pub fn read_csv_gz(name: &str) -> Vec<Vec<String>> {
    // The repo's bundled data and fixtures (see data/adult/SOURCE.txt and fixtures/SOURCE.txt).
    let rel = match name {
        "adult.csv.gz" => "data/adult/adult.csv.gz",
        "hour.csv.gz" => "fixtures/bike-hour.csv.gz",
        "kddcup-20k.csv.gz" => "fixtures/kddcup-20k.csv.gz",
        other => panic!("unknown fixture {other}"),
    };
    let path = format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .collect()
}

/// Numeric when every non-"?" value parses as f64, else categorical codes from a sorted dictionary.
pub fn to_column(values: &[&str]) -> Column {
    if values.iter().all(|v| *v == "?" || v.parse::<f64>().is_ok()) {
        Column::Numeric(
            values
                .iter()
                .map(|v| v.parse().unwrap_or(f64::NAN))
                .collect(),
        )
    } else {
        let mut dict: Vec<&str> = values.iter().copied().filter(|v| *v != "?").collect();
        dict.sort_unstable();
        dict.dedup();
        let codes = values
            .iter()
            .map(|v| {
                if *v == "?" {
                    u32::MAX
                } else {
                    dict.binary_search(v).unwrap() as u32
                }
            })
            .collect();
        Column::Categorical {
            codes,
            cardinality: dict.len() as u32,
        }
    }
}

pub fn features_from(rows: &[Vec<String>], names: &[String], keep: &[usize]) -> Features {
    let columns = keep
        .iter()
        .map(|&j| to_column(&rows.iter().map(|r| r[j].as_str()).collect::<Vec<_>>()))
        .collect();
    Features {
        names: keep.iter().map(|&j| names[j].clone()).collect(),
        columns,
        rows: rows.len(),
    }
}

/// A seeded hash in [0, 1) for reproducible holdouts.
pub fn unit_hash(i: u64, seed: u64) -> f64 {
    let mut z = i.wrapping_add(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

pub fn adult() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| {
        let mut rows = read_csv_gz("adult.csv.gz");
        let header = rows.remove(0);
        let label = header.iter().position(|h| h == "income").unwrap();
        let split = header.iter().position(|h| h == "split").unwrap();
        let keep: Vec<usize> = (0..header.len())
            .filter(|&j| j != label && j != split)
            .collect();
        let features = features_from(&rows, &header, &keep);
        let labels = rows
            .iter()
            .map(|r| {
                if r[label].starts_with(">50K") {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let train = (0..rows.len() as u32)
            .filter(|&i| rows[i as usize][split] == "train")
            .collect();
        let test = (0..rows.len() as u32)
            .filter(|&i| rows[i as usize][split] == "test")
            .collect();
        Dataset {
            features,
            labels,
            train,
            test,
            classes: vec!["<=50K".into(), ">50K".into()],
        }
    })
}

pub fn kdd() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| {
        let mut rows = read_csv_gz("kddcup-20k.csv.gz");
        rows.remove(0); // the header
        let ncol = rows[0].len();
        let names: Vec<String> = (0..ncol).map(|j| format!("c{j}")).collect();
        let keep: Vec<usize> = (0..ncol - 1).collect();
        let features = features_from(&rows, &names, &keep);
        let mut classes: Vec<String> = rows.iter().map(|r| r[ncol - 1].clone()).collect();
        classes.sort();
        classes.dedup();
        let labels = rows
            .iter()
            .map(|r| classes.binary_search(&r[ncol - 1]).unwrap() as f64)
            .collect();
        let (train, test) = holdout(rows.len(), 0.2, 7);
        Dataset {
            features,
            labels,
            train,
            test,
            classes,
        }
    })
}

pub fn bike() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| {
        let mut rows = read_csv_gz("hour.csv.gz");
        let header = rows.remove(0);
        let target = header.iter().position(|h| h == "cnt").unwrap();
        let drop = ["instant", "dteday", "casual", "registered", "cnt"];
        let keep: Vec<usize> = (0..header.len())
            .filter(|&j| !drop.contains(&header[j].as_str()))
            .collect();
        let features = features_from(&rows, &header, &keep);
        let labels = rows.iter().map(|r| r[target].parse().unwrap()).collect();
        let (train, test) = holdout(rows.len(), 0.2, 11);
        Dataset {
            features,
            labels,
            train,
            test,
            classes: vec![],
        }
    })
}

pub fn holdout(n: usize, fraction: f64, seed: u64) -> (Vec<u32>, Vec<u32>) {
    (0..n as u32).partition(|&i| unit_hash(i as u64, seed) >= fraction)
}

pub fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Area under the ROC curve, with ties counted half.
pub fn auc(scores: &[f64], labels: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] == 1.0 {
                rank_sum += avg_rank;
                pos += 1.0;
            }
        }
        i = j + 1;
    }
    let neg = scores.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

pub fn labels_of(d: &Dataset, rows: &[u32]) -> Vec<f64> {
    rows.iter().map(|&r| d.labels[r as usize]).collect()
}

pub fn r2(pred: &[f64], y: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_res: f64 = pred.iter().zip(y).map(|(p, t)| (p - t) * (p - t)).sum();
    let ss_tot: f64 = y.iter().map(|t| (t - mean) * (t - mean)).sum();
    1.0 - ss_res / ss_tot
}

pub fn accuracy(probs: &[f64], k: usize, y: &[f64]) -> f64 {
    let hits = probs
        .chunks(k)
        .zip(y)
        .filter(|(p, t)| {
            let arg = (0..k).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            arg as f64 == **t
        })
        .count();
    hits as f64 / y.len() as f64
}
