//! Quantile binning of feature columns into u8 codes: gbdt trains on bins, never on raw values.
//!
//! Every feature gets at most `max_bin` value bins plus one last bin for missing values (NaN, +-inf,
//! missing or unseen categories), so a code always fits in a u8. A `BinnedFeatures` covers every row
//! of a table and depends on no labels, so one binning serves every fit on that table.

use rayon::prelude::*;

use crate::{Column, Features};

/// Rows sampled to find numeric bin edges on big tables (LightGBM's `bin_construct_sample_cnt`).
const BIN_SAMPLE_ROWS: usize = 200_000;

/// How one feature's values map to bins.
#[derive(Clone, Debug)]
pub(crate) enum BinMap {
    /// Value `v` goes to the first bin `i` with `v <= upper[i]`; the last upper bound is +inf.
    Numeric { upper: Vec<f64> },
    /// Category `c < cat_to_bin.len()` (the cardinality) goes to `cat_to_bin[c]`; bins are ordered by decreasing frequency and
    /// categories that were never seen (or too rare to keep) share the missing bin.
    Categorical { cat_to_bin: Vec<u8> },
}

/// The binning of one feature.
#[derive(Clone, Debug)]
pub(crate) struct FeatureBins {
    pub(crate) map: BinMap,
    /// Number of bins including the missing bin, which is always the last one.
    pub(crate) num_bins: usize,
}

impl FeatureBins {
    pub(crate) fn missing_bin(&self) -> u8 {
        (self.num_bins - 1) as u8
    }

    pub(crate) fn is_categorical(&self) -> bool {
        matches!(self.map, BinMap::Categorical { .. })
    }
}

/// Bin codes for every row and feature of a table, column-major, computed once and reused across fits.
#[derive(Clone, Debug)]
pub struct BinnedFeatures {
    pub(crate) rows: usize,
    pub(crate) max_bin: usize,
    pub(crate) features: Vec<FeatureBins>,
    pub(crate) codes: Vec<Vec<u8>>,
}

impl BinnedFeatures {
    /// Bins every column of `features`; `max_bin` is clamped to 2..=255 value bins per feature.
    pub fn new(features: &Features, max_bin: usize) -> BinnedFeatures {
        let max_bin = max_bin.clamp(2, 255);
        let rows = features.rows;
        let (features_bins, codes): (Vec<FeatureBins>, Vec<Vec<u8>>) = features
            .columns
            .par_iter()
            .map(|col| bin_column(col, rows, max_bin))
            .unzip();
        BinnedFeatures {
            rows,
            max_bin,
            features: features_bins,
            codes,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn num_features(&self) -> usize {
        self.features.len()
    }

    pub fn max_bin(&self) -> usize {
        self.max_bin
    }

    /// Bins per feature, including the missing bin.
    pub fn num_bins(&self, feature: usize) -> usize {
        self.features[feature].num_bins
    }
}

/// Bins a table once so several gbdt fits (folds, seeds, edits) can share it via `Gbdt::fit_binned`.
pub fn bin_features(features: &Features, max_bin: usize) -> BinnedFeatures {
    BinnedFeatures::new(features, max_bin)
}

fn bin_column(col: &Column, rows: usize, max_bin: usize) -> (FeatureBins, Vec<u8>) {
    match col {
        Column::Numeric(values) => {
            let values = &values[..rows.min(values.len())];
            let step = values.len().div_ceil(BIN_SAMPLE_ROWS).max(1);
            let sample: Vec<f64> = values
                .iter()
                .step_by(step)
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            let upper = numeric_upper_bounds(sample, max_bin);
            let missing = upper.len() as u8;
            let codes = values
                .iter()
                .map(|&v| {
                    if v.is_finite() {
                        upper.partition_point(|&u| u < v) as u8
                    } else {
                        missing
                    }
                })
                .collect();
            let num_bins = upper.len() + 1;
            (
                FeatureBins {
                    map: BinMap::Numeric { upper },
                    num_bins,
                },
                codes,
            )
        }
        Column::Categorical {
            codes: cats,
            cardinality,
        } => {
            let cats = &cats[..rows.min(cats.len())];
            let mut counts = vec![0usize; *cardinality as usize];
            for &c in cats {
                if c < *cardinality {
                    counts[c as usize] += 1;
                }
            }
            let mut kept: Vec<u32> = (0..*cardinality)
                .filter(|&c| counts[c as usize] > 0)
                .collect();
            // Most frequent first, ties by code, so the cap drops the rarest deterministically.
            kept.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
            kept.truncate(max_bin);
            let missing = kept.len() as u8;
            let mut cat_to_bin = vec![missing; *cardinality as usize];
            for (bin, &c) in kept.iter().enumerate() {
                cat_to_bin[c as usize] = bin as u8;
            }
            let codes = cats
                .iter()
                .map(|&c| {
                    if c < *cardinality {
                        cat_to_bin[c as usize]
                    } else {
                        missing
                    }
                })
                .collect();
            let num_bins = kept.len() + 1;
            (
                FeatureBins {
                    map: BinMap::Categorical { cat_to_bin },
                    num_bins,
                },
                codes,
            )
        }
    }
}

/// A cut strictly between two distinct values, which cannot overflow for huge magnitudes.
fn midpoint(a: f64, b: f64) -> f64 {
    let m = a / 2.0 + b / 2.0;
    if m < b && m >= a { m } else { a }
}

/// Upper bounds of value bins: one bin per distinct value when there are few, otherwise bins of about
/// equal counts where a very frequent value gets a bin of its own (as LightGBM's greedy binning).
fn numeric_upper_bounds(mut values: Vec<f64>, max_bin: usize) -> Vec<f64> {
    if values.is_empty() {
        return vec![f64::INFINITY];
    }
    values.sort_unstable_by(|a, b| a.total_cmp(b));
    let mut distinct: Vec<f64> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for v in values {
        if distinct.last() == Some(&v) {
            *counts.last_mut().unwrap() += 1;
        } else {
            distinct.push(v);
            counts.push(1);
        }
    }
    let n = distinct.len();
    let mut upper = Vec::with_capacity(max_bin.min(n));
    if n <= max_bin {
        for i in 0..n - 1 {
            upper.push(midpoint(distinct[i], distinct[i + 1]));
        }
    } else {
        let mut rest_rows: usize = counts.iter().sum();
        let mut rest_bins = max_bin;
        let mut acc = 0usize;
        for i in 0..n - 1 {
            acc += counts[i];
            let target = rest_rows as f64 / rest_bins as f64;
            let next_is_big = counts[i + 1] as f64 >= target;
            if acc as f64 >= target || next_is_big {
                upper.push(midpoint(distinct[i], distinct[i + 1]));
                rest_rows -= acc;
                rest_bins -= 1;
                acc = 0;
                if rest_bins == 1 {
                    break;
                }
            }
        }
    }
    upper.push(f64::INFINITY);
    upper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let f = Features {
            names: vec!["x".into()].into(),
            columns: vec![Column::Numeric(
                vec![1.0, 2.0, f64::NAN, 2.0, 3.0, f64::INFINITY].into(),
            )],
            rows: 6,
        };
        let b = BinnedFeatures::new(&f, 255);
        assert_eq!(b.codes[0], vec![0, 1, 3, 1, 2, 3]);
        assert_eq!(b.features[0].num_bins, 4);
    }

    #[test]
    fn many_values_respect_max_bin() {
        let v: Vec<f64> = (0..10_000).map(|i| ((i * 7919) % 10_007) as f64).collect();
        let f = Features {
            names: vec!["x".into()].into(),
            columns: vec![Column::Numeric(v.into())],
            rows: 10_000,
        };
        let b = BinnedFeatures::new(&f, 16);
        assert!(b.features[0].num_bins <= 17);
        let mut counts = vec![0; b.features[0].num_bins];
        for &c in &b.codes[0] {
            counts[c as usize] += 1;
        }
        assert!(counts[..16].iter().all(|&c| c > 300), "{counts:?}");
    }

    #[test]
    fn categories_beyond_cap_share_missing_bin() {
        let codes = vec![0, 0, 0, 1, 1, 2, u32::MAX, 9];
        let f = Features {
            names: vec!["c".into()].into(),
            columns: vec![Column::Categorical {
                codes: codes.into(),
                cardinality: 3,
            }],
            rows: 8,
        };
        let b = BinnedFeatures::new(&f, 2);
        assert_eq!(b.codes[0], vec![0, 0, 0, 1, 1, 2, 2, 2]);
    }
}
