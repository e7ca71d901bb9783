//! Describing a table back to its owner: per-column statistics, the label distribution and split sizes.

use crate::table;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{Array, RecordBatch};
use gyre_core::{ColumnKind, ColumnRole, DatasetSchema, Split, Task};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many values of each kind to list as "top".
const TOP: usize = 5;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub name: String,
    pub kind: ColumnKind,
    pub role: ColumnRole,
    pub missing: usize,
    pub distinct: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Most frequent values with their counts (categorical and boolean columns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<ValueCount>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: String,
    pub count: usize,
}

/// One class's count, overall and per split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelCount {
    pub label: String,
    pub count: usize,
    pub by_split: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    pub rows: usize,
    pub splits: BTreeMap<String, usize>,
    pub columns: Vec<ColumnStats>,
    /// Class counts for classification; empty for regression (see the target's column stats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelCount>,
    /// Rows of the file left out at import because their target was missing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_rows: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub fn describe(batch: &RecordBatch, schema: &DatasetSchema) -> TableStats {
    let splits = table::splits(batch);
    let mut split_sizes: BTreeMap<String, usize> = BTreeMap::new();
    for s in Split::ALL {
        let n = splits.iter().filter(|&&x| x == s).count();
        if n > 0 || s != Split::Valid {
            split_sizes.insert(s.as_str().to_string(), n);
        }
    }
    let columns = schema
        .columns
        .iter()
        .map(|c| {
            let array = batch
                .column_by_name(&c.name)
                .expect("schema columns are in the table");
            column_stats(c.name.clone(), c.kind, c.role, array.as_ref())
        })
        .collect();
    let mut labels = Vec::new();
    if schema.task != Task::Regression {
        let target = batch
            .column_by_name(&schema.target)
            .expect("target in table")
            .as_dictionary::<Int32Type>();
        let mut counts = vec![[0usize; 3]; schema.classes.len()];
        for (row, k) in target.keys().iter().enumerate() {
            if let Some(k) = k {
                counts[k as usize][split_index(splits[row])] += 1;
            }
        }
        labels = schema
            .classes
            .iter()
            .zip(counts)
            .map(|(label, c)| LabelCount {
                label: label.clone(),
                count: c.iter().sum(),
                by_split: Split::ALL
                    .iter()
                    .filter(|s| split_sizes.contains_key(s.as_str()))
                    .map(|s| (s.as_str().to_string(), c[split_index(*s)]))
                    .collect(),
            })
            .collect();
    }
    TableStats {
        dropped_rows: 0,
        rows: batch.num_rows(),
        splits: split_sizes,
        columns,
        labels,
    }
}

fn split_index(s: Split) -> usize {
    match s {
        Split::Train => 0,
        Split::Valid => 1,
        Split::Holdout => 2,
    }
}

fn column_stats(
    name: String,
    kind: ColumnKind,
    role: ColumnRole,
    array: &dyn Array,
) -> ColumnStats {
    let mut s = ColumnStats {
        name,
        kind,
        role,
        missing: 0,
        distinct: 0,
        min: None,
        max: None,
        mean: None,
        top: Vec::new(),
    };
    if let Some(f) = array.as_primitive_opt::<Float64Type>() {
        let mut distinct: FxHashSet<u64> = FxHashSet::default();
        let (mut sum, mut n) = (0.0f64, 0usize);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in f.iter() {
            match v {
                Some(v) if v.is_finite() => {
                    distinct.insert(v.to_bits());
                    sum += v;
                    n += 1;
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                _ => s.missing += 1,
            }
        }
        s.distinct = distinct.len();
        if n > 0 {
            s.min = Some(lo);
            s.max = Some(hi);
            s.mean = Some(sum / n as f64);
        }
    } else if let Some(d) = array.as_dictionary_opt::<Int32Type>() {
        let values = d.values().as_string::<i32>();
        let mut counts = vec![0usize; values.len()];
        for k in d.keys().iter() {
            match k {
                Some(k) => counts[k as usize] += 1,
                None => s.missing += 1,
            }
        }
        s.distinct = counts.iter().filter(|&&c| c > 0).count();
        s.top = top_values(
            counts
                .iter()
                .enumerate()
                .map(|(i, &c)| (values.value(i).to_string(), c)),
        );
    } else if let Some(b) = array.as_boolean_opt() {
        let (mut t, mut f) = (0, 0);
        for v in b.iter() {
            match v {
                Some(true) => t += 1,
                Some(false) => f += 1,
                None => s.missing += 1,
            }
        }
        s.distinct = usize::from(t > 0) + usize::from(f > 0);
        s.top = top_values([("true".to_string(), t), ("false".to_string(), f)]);
    } else {
        // Time columns stored as timestamps.
        s.missing = array.null_count();
        if let Some(t) = array.as_primitive_opt::<arrow_array::types::TimestampNanosecondType>() {
            s.distinct = t.values().iter().collect::<FxHashSet<_>>().len();
            s.min = t.values().iter().min().map(|&v| v as f64);
            s.max = t.values().iter().max().map(|&v| v as f64);
        }
    }
    s
}

fn top_values(counts: impl IntoIterator<Item = (String, usize)>) -> Vec<ValueCount> {
    let mut v: Vec<(String, usize)> = counts.into_iter().filter(|(_, c)| *c > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter()
        .take(TOP)
        .map(|(value, count)| ValueCount { value, count })
        .collect()
}
