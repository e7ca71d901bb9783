//! Import: one input file becomes a typed table with row ids, splits, a schema and statistics.

use crate::infer::{self, Converted, NaTokens};
use crate::input::{self, RawTable};
use crate::split::{self, SplitSpec};
use crate::stats::{self, TableStats};
use crate::{DataError, table};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use gyre_core::{
    ColumnKind, ColumnRole, ColumnSchema, DatasetSchema, ROW_ID, SPLIT, Split, Task, closest,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Everything that decides how a file becomes a table. Part of the source's identity: the same
/// bytes imported with the same options are the same source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportOptions {
    pub target: String,
    pub split: SplitSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_column: Option<String>,
    /// Missing-value tokens; `None` means the defaults ("", "?", "NA", "null").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub na: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// The first row id to assign (0 for a dataset's first source).
    pub first_row_id: u64,
    /// Rows added to an existing dataset (`add-source`): one class, or no holdout rows, is fine.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub appending: bool,
    /// The label made from the file's columns (`--target-expr`); `target` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_expr: Option<gyre_core::Expr>,
    /// Rows whose target is missing: fail on the first (the default) or leave them out.
    #[serde(default, skip_serializing_if = "MissingTarget::is_fail")]
    pub missing_target: MissingTarget,
    /// Columns left out of the features (`--ignore`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// A binary task's positive class (`--positive`; by default the second in sorted order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
}

/// What import does with a row whose target is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingTarget {
    /// Refuse the file, naming the first such row.
    #[default]
    Fail,
    /// Leave such rows out, and count them.
    Drop,
}

impl MissingTarget {
    fn is_fail(&self) -> bool {
        *self == MissingTarget::Fail
    }
}

pub struct Imported {
    pub batch: RecordBatch,
    pub schema: DatasetSchema,
    pub stats: TableStats,
    /// Rows left out because their target was missing (`--missing-target drop`).
    pub dropped_rows: usize,
}

/// Reads and types the file. `on_rows` hears the running count of rows read.
pub fn import(
    path: &Path,
    opts: &ImportOptions,
    on_rows: &dyn Fn(usize),
) -> Result<Imported, DataError> {
    check_fraction(path, &opts.split)?;
    let mut raw = input::read(path, on_rows)?;
    let na = opts.na.clone().map(NaTokens::new).unwrap_or_default();
    let mut ignore = opts.ignore.clone();
    if let Some(expr) = &opts.target_expr {
        derive_target(path, &mut raw, opts, expr, &na)?;
        for c in expr.columns() {
            if !ignore.iter().any(|i| i == c) {
                ignore.push(c.to_string());
            }
        }
    }
    let dropped_rows = drop_missing_targets(path, &mut raw, opts, &na)?;
    for reserved in [ROW_ID, SPLIT] {
        if raw.column_index(reserved).is_some() {
            return Err(DataError::ReservedColumn {
                path: path.into(),
                name: reserved.into(),
            });
        }
    }
    let find = |name: &str| {
        raw.column_index(name)
            .ok_or_else(|| DataError::UnknownColumn {
                path: path.into(),
                name: name.into(),
                suggestion: closest(name, raw.names.iter().map(String::as_str)).map(String::from),
            })
    };
    let target_idx = find(&opts.target)?;
    let split_idx = match &opts.split {
        SplitSpec::Column { column } => Some(find(column)?),
        _ => None,
    };
    let id_idx = opts.id_column.as_deref().map(find).transpose()?;
    let time_name = match &opts.split {
        SplitSpec::Time { column, .. } => Some(column.clone()),
        _ => opts.time_column.clone(),
    };
    let time_idx = time_name.as_deref().map(find).transpose()?;
    let mut ignore_idx = Vec::with_capacity(ignore.len());
    for name in &ignore {
        let i = find(name)?;
        // A column the label is made from may also be the split or time column: it keeps that
        // role (it is no feature either way).
        let derived_from = opts
            .target_expr
            .as_ref()
            .is_some_and(|e| e.columns().contains(&name.as_str()));
        if [split_idx, id_idx, time_idx].contains(&Some(i)) && derived_from {
            continue;
        }
        if Some(i) == split_idx || Some(i) == id_idx || Some(i) == time_idx || i == target_idx {
            return Err(DataError::Invalid {
                path: path.into(),
                message: format!(
                    "--ignore {name}: the column is the target, split, id or time column, which \
                     is no feature already"
                ),
            });
        }
        ignore_idx.push(i);
    }
    let special = [Some(target_idx), split_idx, id_idx, time_idx];
    for (i, a) in special.iter().enumerate() {
        for b in &special[i + 1..] {
            if a.is_some() && a == b {
                return Err(DataError::Invalid {
                    path: path.into(),
                    message: format!(
                        "column \"{}\" cannot have two roles (target, split, id or time)",
                        raw.names[a.unwrap()]
                    ),
                });
            }
        }
    }

    // Every column is independent: type them all in parallel (target and time included).
    let others: Vec<usize> = (0..raw.names.len())
        .filter(|&i| Some(i) != split_idx && i != target_idx && Some(i) != time_idx)
        .collect();
    let (target, time, converted) = std::thread::scope(|s| {
        let target =
            s.spawn(|| convert_target(path, &raw, target_idx, opts.task, opts.appending, &na));
        let time = s.spawn(|| time_idx.map(|i| time_keys(path, &raw, i, &na)).transpose());
        let handles: Vec<_> = others
            .iter()
            .map(|&i| {
                let chunks = &raw.chunks[i];
                let na = &na;
                s.spawn(move || infer::infer(chunks, na))
            })
            .collect();
        let converted: Vec<Converted> = handles
            .into_iter()
            .map(|h| h.join().expect("column typing does not panic"))
            .collect();
        (
            target.join().expect("target typing does not panic"),
            time.join().expect("time parsing does not panic"),
            converted,
        )
    });
    let (target, task, classes) = target?;
    let time = time?;

    let splits = match &opts.split {
        SplitSpec::Column { .. } => column_splits(path, &raw, split_idx.unwrap(), &na)?,
        SplitSpec::Holdout { fraction, seed } => {
            let strata: Vec<u32> = if task.is_classification() {
                target
                    .array
                    .as_dictionary::<Int32Type>()
                    .keys()
                    .values()
                    .iter()
                    .map(|&k| k as u32)
                    .collect()
            } else {
                vec![0; raw.rows]
            };
            split::random_holdout(&strata, *fraction, *seed)
        }
        SplitSpec::Time { fraction, .. } => {
            let (keys, _) = time.as_ref().expect("a time split has a time column");
            split::time_holdout(keys, *fraction)
        }
    };
    for (s, what) in [(Split::Train, "training"), (Split::Holdout, "holdout")] {
        if !opts.appending && !splits.contains(&s) {
            return Err(DataError::Invalid {
                path: path.into(),
                message: format!("the split leaves no {what} rows"),
            });
        }
    }

    let mut by_index: HashMap<usize, (Converted, ColumnRole)> = others
        .iter()
        .copied()
        .zip(converted)
        .map(|(i, c)| {
            (
                i,
                (
                    c,
                    if Some(i) == id_idx {
                        ColumnRole::Id
                    } else if ignore_idx.contains(&i) {
                        ColumnRole::Ignored
                    } else {
                        ColumnRole::Feature
                    },
                ),
            )
        })
        .collect();
    if let Some(i) = id_idx {
        check_unique_ids(path, &raw, &by_index[&i].0)?;
    }
    by_index.insert(target_idx, (target, ColumnRole::Target));
    if let (Some(i), Some((_, array))) = (time_idx, time) {
        by_index.insert(
            i,
            (
                Converted {
                    kind: ColumnKind::Time,
                    array,
                    categories: Vec::new(),
                },
                ColumnRole::Time,
            ),
        );
    }

    let mut columns = Vec::new();
    let mut arrays: Vec<(String, ArrayRef)> = Vec::new();
    for i in 0..raw.names.len() {
        if let Some((c, role)) = by_index.remove(&i) {
            columns.push(ColumnSchema {
                name: raw.names[i].clone(),
                kind: c.kind,
                role,
                categories: if role == ColumnRole::Target {
                    Vec::new()
                } else {
                    c.categories
                },
            });
            arrays.push((raw.names[i].clone(), c.array));
        }
    }
    let row_ids: Vec<u64> = (opts.first_row_id..opts.first_row_id + raw.rows as u64).collect();
    let batch = table::assemble(&row_ids, &splits, arrays)?;
    let positive = check_positive(path, opts, task, &classes)?;
    let schema = DatasetSchema {
        columns,
        target: opts.target.clone(),
        task,
        classes,
        id_column: opts.id_column.clone(),
        time_column: time_name,
        positive,
    };
    let mut stats = stats::describe(&batch, &schema);
    stats.dropped_rows = dropped_rows;
    Ok(Imported {
        batch,
        schema,
        stats,
        dropped_rows,
    })
}

/// The positive class asked for, checked: a binary task's class.
fn check_positive(
    path: &Path,
    opts: &ImportOptions,
    task: Task,
    classes: &[String],
) -> Result<Option<String>, DataError> {
    let Some(p) = &opts.positive else {
        return Ok(None);
    };
    if task != Task::Binary {
        return Err(DataError::Invalid {
            path: path.into(),
            message: format!(
                "--positive {p}: the task is {task}; a positive class is for binary tasks"
            ),
        });
    }
    if !classes.contains(p) {
        return Err(DataError::Invalid {
            path: path.into(),
            message: format!(
                "--positive {p} is not a class of \"{}\" (the classes are {})",
                opts.target,
                classes.join(", ")
            ),
        });
    }
    Ok(Some(p.clone()))
}

/// Makes the label column `opts.target` from `expr` over the file's columns (typed as import
/// types them; the time column as times) and adds it to the raw table as text: a boolean gives
/// the classes `true`/`false`, text its values, a number the number.
fn derive_target(
    path: &Path,
    raw: &mut RawTable,
    opts: &ImportOptions,
    expr: &gyre_core::Expr,
    na: &NaTokens,
) -> Result<(), DataError> {
    let invalid = |message: String| DataError::Invalid {
        path: path.into(),
        message,
    };
    if raw.column_index(&opts.target).is_some() {
        return Err(invalid(format!(
            "--target {} is a column of the file; with --target-expr, --target names the new \
             label (choose a name the file does not use)",
            opts.target
        )));
    }
    let mut columns = Vec::new();
    let mut arrays: Vec<(String, ArrayRef)> = Vec::new();
    for name in expr.columns() {
        let i = raw
            .column_index(name)
            .ok_or_else(|| DataError::UnknownColumn {
                path: path.into(),
                name: name.into(),
                suggestion: closest(name, raw.names.iter().map(String::as_str)).map(String::from),
            })?;
        let c = if opts.time_column.as_deref() == Some(name) {
            let (_, array) = time_keys(path, raw, i, na)?;
            Converted {
                kind: ColumnKind::Time,
                array,
                categories: Vec::new(),
            }
        } else {
            infer::infer(&raw.chunks[i], na)
        };
        columns.push(ColumnSchema {
            name: name.into(),
            kind: c.kind,
            role: ColumnRole::Feature,
            categories: Vec::new(),
        });
        arrays.push((name.to_string(), c.array));
    }
    let schema = DatasetSchema {
        columns,
        target: opts.target.clone(),
        task: Task::Binary,
        classes: Vec::new(),
        id_column: None,
        time_column: None,
        positive: None,
    };
    let kind = expr
        .check(&schema)
        .map_err(|e| invalid(format!("--target-expr: {e}")))?;
    if kind == gyre_core::ExprKind::Time {
        return Err(invalid(format!(
            "--target-expr {expr} is a time; a label is a class or a number"
        )));
    }
    let batch =
        RecordBatch::try_from_iter_with_nullable(arrays.into_iter().map(|(n, a)| (n, a, true)))
            .map_err(|e| invalid(e.to_string()))?;
    let batch = if batch.num_columns() == 0 {
        RecordBatch::try_new_with_options(
            std::sync::Arc::new(arrow_schema::Schema::empty()),
            Vec::new(),
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(raw.rows)),
        )
        .map_err(|e| invalid(e.to_string()))?
    } else {
        batch
    };
    let values = crate::derive::evaluate(expr, &batch)
        .map_err(|e| invalid(format!("--target-expr: {e}")))?;
    let labels: arrow_array::StringArray = match values {
        crate::derive::Values::Bool(v) => v
            .into_iter()
            .map(|b| b.map(|b| if b { "true" } else { "false" }.to_string()))
            .collect(),
        crate::derive::Values::Text(v) => v.into_iter().map(|s| s.map(|s| s.to_string())).collect(),
        crate::derive::Values::Num(v) => v
            .into_iter()
            .map(|x| x.filter(|x| !x.is_nan()).map(infer::format_number))
            .collect(),
        crate::derive::Values::Time(_) | crate::derive::Values::Null => {
            (0..raw.rows).map(|_| None::<String>).collect()
        }
    };
    raw.names.push(opts.target.clone());
    raw.chunks.push(vec![std::sync::Arc::new(labels)]);
    Ok(())
}

/// Rows whose target is missing: with `--missing-target drop` they leave the raw table (the
/// count is returned); with `fail` the target's conversion names the first.
fn drop_missing_targets(
    path: &Path,
    raw: &mut RawTable,
    opts: &ImportOptions,
    na: &NaTokens,
) -> Result<usize, DataError> {
    if opts.missing_target == MissingTarget::Fail {
        return Ok(0);
    }
    let Some(t) = raw.column_index(&opts.target) else {
        return Ok(0);
    };
    let mut keep: Vec<bool> = Vec::with_capacity(raw.rows);
    for chunk in &raw.chunks[t] {
        match chunk.as_string_opt::<i32>() {
            Some(s) => keep.extend(
                s.iter()
                    .map(|v| v.is_some_and(|v| !na.is_missing(v.trim()))),
            ),
            None => keep.extend((0..chunk.len()).map(|i| chunk.is_valid(i))),
        }
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped == 0 {
        return Ok(0);
    }
    let mask = arrow_array::BooleanArray::from(keep);
    for column in raw.chunks.iter_mut() {
        let refs: Vec<&dyn Array> = column.iter().map(|a| a.as_ref()).collect();
        let whole = arrow_select::concat::concat(&refs).map_err(|e| DataError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
        let kept = arrow_select::filter::filter(whole.as_ref(), &mask).map_err(|e| {
            DataError::Invalid {
                path: path.into(),
                message: e.to_string(),
            }
        })?;
        *column = vec![kept];
    }
    raw.rows -= dropped;
    if raw.rows == 0 {
        return Err(DataError::Invalid {
            path: path.into(),
            message: format!("every row's target \"{}\" is missing", opts.target),
        });
    }
    Ok(dropped)
}

fn check_fraction(path: &Path, spec: &SplitSpec) -> Result<(), DataError> {
    let f = match spec {
        SplitSpec::Holdout { fraction, .. } | SplitSpec::Time { fraction, .. } => *fraction,
        SplitSpec::Column { .. } => return Ok(()),
    };
    if f > 0.0 && f < 1.0 {
        Ok(())
    } else {
        Err(DataError::Invalid {
            path: path.into(),
            message: format!("--holdout must be between 0 and 1 (exclusive), got {f}"),
        })
    }
}

/// Types the target and decides the task: text or boolean targets are classification; a numeric
/// target is binary when it holds exactly two integer values, otherwise regression. `--task` overrides.
fn convert_target(
    path: &Path,
    raw: &RawTable,
    idx: usize,
    forced: Option<Task>,
    appending: bool,
    na: &NaTokens,
) -> Result<(Converted, Task, Vec<String>), DataError> {
    let name = &raw.names[idx];
    let chunks = &raw.chunks[idx];
    let bad = |why: String| DataError::BadTarget {
        path: path.into(),
        target: name.clone(),
        why,
    };
    let inferred = infer::infer(chunks, na);
    let task = match forced {
        Some(t) => t,
        None => match inferred.kind {
            ColumnKind::Numeric => {
                let f = inferred.array.as_primitive::<Float64Type>();
                let mut values: Vec<u64> = f
                    .iter()
                    .flatten()
                    .filter(|v| v.fract() == 0.0)
                    .map(f64::to_bits)
                    .collect();
                let all_integers = values.len() == f.len() - f.null_count();
                values.sort_unstable();
                values.dedup();
                if all_integers && values.len() <= 2 {
                    Task::Binary
                } else {
                    Task::Regression
                }
            }
            _ => {
                if inferred.categories.len() > 2 {
                    Task::Multiclass
                } else {
                    Task::Binary
                }
            }
        },
    };
    let converted = if task == Task::Regression {
        match infer::to_numeric(chunks, na) {
            Ok(c) => c,
            Err(cell) => {
                return Err(bad(format!(
                    "has a non-numeric value \"{}\" at {}; regression needs numbers",
                    cell.value,
                    raw.location(cell.row)
                )));
            }
        }
    } else {
        infer::to_categorical(chunks, na)
    };
    if let Some(row) = first_missing(converted.array.as_ref()) {
        return Err(bad(format!(
            "is missing a value at {}; every row needs a target",
            raw.location(row)
        )));
    }
    let classes = converted.categories.clone();
    match task {
        Task::Regression => {}
        _ if classes.len() < 2 && !appending => {
            return Err(bad(format!(
                "has only one class (\"{}\"); a classifier needs at least two",
                classes.first().cloned().unwrap_or_default()
            )));
        }
        Task::Binary if classes.len() > 2 => {
            return Err(bad(format!(
                "has {} classes; --task binary needs exactly two (use --task multiclass)",
                classes.len()
            )));
        }
        _ => {}
    }
    Ok((converted, task, classes))
}

fn first_missing(a: &dyn Array) -> Option<usize> {
    (0..a.len()).find(|&r| table::is_missing(a, r))
}

fn column_splits(
    path: &Path,
    raw: &RawTable,
    idx: usize,
    na: &NaTokens,
) -> Result<Vec<Split>, DataError> {
    let c = infer::to_categorical(&raw.chunks[idx], na);
    let dict = c.array.as_dictionary::<Int32Type>();
    let mut map = Vec::with_capacity(c.categories.len());
    for v in &c.categories {
        map.push(Split::parse(v));
    }
    let mut out = Vec::with_capacity(raw.rows);
    for (row, k) in dict.keys().iter().enumerate() {
        let split = k.and_then(|k| map[k as usize]);
        match split {
            Some(s) => out.push(s),
            None => {
                let value = k
                    .map(|k| c.categories[k as usize].clone())
                    .unwrap_or_else(|| "a missing value".into());
                return Err(DataError::BadValue {
                    path: path.into(),
                    location: format!("{}, column \"{}\"", raw.location(row), raw.names[idx]),
                    what: format!(
                        "split value \"{value}\" is not one of train, valid, test, holdout"
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn time_keys(
    path: &Path,
    raw: &RawTable,
    idx: usize,
    na: &NaTokens,
) -> Result<(Vec<f64>, ArrayRef), DataError> {
    infer::time_keys(&raw.chunks[idx], na).map_err(|cell| DataError::BadValue {
        path: path.into(),
        location: format!("{}, column \"{}\"", raw.location(cell.row), raw.names[idx]),
        what: format!(
            "time value \"{}\" is not a number or a timestamp",
            cell.value
        ),
    })
}

fn check_unique_ids(path: &Path, raw: &RawTable, c: &Converted) -> Result<(), DataError> {
    let name = |row: usize| raw.location(row);
    let array = c.array.as_ref();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(array.len());
    for row in 0..array.len() {
        if table::is_missing(array, row) {
            return Err(DataError::Invalid {
                path: path.into(),
                message: format!("id column is missing a value at {}", name(row)),
            });
        }
        let key = table::display_value(array, row);
        if let Some(first) = seen.insert(key.clone(), row) {
            return Err(DataError::Invalid {
                path: path.into(),
                message: format!(
                    "id column has the value \"{key}\" twice, at {} and {}",
                    name(first),
                    name(row)
                ),
            });
        }
    }
    Ok(())
}
