//! Learners for gyre: a LightGBM-style gradient-boosted tree learner (`gbdt`) and a linear baseline
//! (`linear`), picked by name at run time through object-safe `Learner` and `Model` traits.
//!
//! Invariants: the crate is pure. There is no clock, no global random number generator (every random
//! choice comes from the seed given to `fit`), and no I/O. Training is deterministic: the same data,
//! params and seed give bit-identical models and predictions whatever the number of threads.
//!
//! Flow, as in the rest of gyre: unchecked params (`&[(String, String)]`) are parsed once by
//! [`learner`] into checked params ([`GbdtParams`], [`LinearParams`]), which fit a [`Model`].
//!
//! # Model format, version 1
//! `Model::save` writes one JSON object; [`load_model`] reads the header and dispatches on `learner`.
//! Floats are written in shortest round-trip form, so a loaded model predicts bit-identically.
//! ```text
//! {"format": "gyre-model", "version": 1, "learner": "gbdt" | "linear", ...}
//! ```
//! `gbdt` adds `task` (`"binary"`, `{"multiclass":{"classes":k}}`, `"regression"`), `params` (every
//! param, defaults filled in), `feature_names`, `init_score` (one raw score per output) and `trees`:
//! iteration-major, `outputs` trees per iteration (tree `t` adds to output `t % outputs`). A tree is
//! arrays over its internal nodes: `feature`, `threshold` (finite values `<= threshold` go left),
//! `cat` (-1 for numeric nodes, else an index into the category sets), `default_left` (where
//! missing, non-finite and unseen values go), `left`/`right` (`>= 0`: internal node, `< 0`: leaf
//! `!child`), `cat_offsets`/`cat_bits` (set `i` is the u32 words `cat_bits[cat_offsets[i]..
//! cat_offsets[i+1]]`; bit `c` set sends category code `c` left; codes past the words follow
//! `default_left`), `leaf_value` (already scaled by the learning rate) and `leaf_count` (the
//! training rows of the tree's bag in each leaf, which contributions weigh by; absent in models
//! saved before it was added, which predict but cannot explain). A tree with no
//! internal nodes is the single leaf 0. Raw scores go through the sigmoid (binary), softmax
//! (multiclass) or nothing (regression).
//!
//! `linear` adds `model`: `task`, `params`, `feature_names`, `encoder` (per numeric feature its
//! `mean`, `scale` = 1/sd and the dense slot of its missing `indicator`; per categorical feature the
//! one-hot `slot` of each code), `coef` (per output: intercept, then one weight per slot) and
//! `y_mean`/`y_scale` (regression predictions are `raw * y_scale + y_mean`).
//!
//! A reader must reject an unknown `format` or `version`; new fields may be added within a version.

mod binning;
mod contributions;
mod error;
mod gbdt;
mod linear;
mod objective;
pub mod onnx;
mod params;
mod rng;

use arrow_buffer::{ArrowNativeType, ScalarBuffer};
use serde::{Deserialize, Serialize};

pub use binning::{BinnedFeatures, bin_features};
pub use contributions::Contributions;
pub use error::LearnError;
pub use gbdt::{Gbdt, GbdtModel, GbdtParams};
pub use linear::{Linear, LinearModel, LinearParams};

/// What a model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Binary,
    Multiclass { classes: usize },
    Regression,
}

impl Task {
    /// Values predicted per row: 1 for binary and regression, one probability per class otherwise.
    pub fn outputs(&self) -> usize {
        match self {
            Task::Binary | Task::Regression => 1,
            Task::Multiclass { classes } => *classes,
        }
    }
}

/// One feature column over all rows of a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// NaN means missing; +-inf is treated as missing too.
    Numeric(Values<f64>),
    /// `u32::MAX` means missing; codes >= `cardinality` are treated as unseen, which is missing too.
    Categorical {
        codes: Values<u32>,
        cardinality: u32,
    },
}

/// A column's values: a vector of their own, or an Arrow buffer shared with the table they come
/// from, so a stored table's columns are trained on without a copy (for Adult, copying them was
/// half of `gyre train`'s load; see BENCHMARKS.md). Read as a slice.
#[derive(Clone)]
pub struct Values<T: ArrowNativeType>(Repr<T>);

#[derive(Clone)]
enum Repr<T: ArrowNativeType> {
    Owned(Vec<T>),
    Shared(ScalarBuffer<T>),
}

impl<T: ArrowNativeType> Values<T> {
    /// The values of an Arrow buffer, read in place.
    pub fn shared(buffer: ScalarBuffer<T>) -> Values<T> {
        Values(Repr::Shared(buffer))
    }

    /// The values as a vector of their own, copied first if shared.
    pub fn to_mut(&mut self) -> &mut Vec<T> {
        if let Repr::Shared(s) = &self.0 {
            self.0 = Repr::Owned(s.to_vec());
        }
        match &mut self.0 {
            Repr::Owned(v) => v,
            Repr::Shared(_) => unreachable!("made owned just above"),
        }
    }
}

impl<T: ArrowNativeType> std::ops::Deref for Values<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Shared(s) => s,
        }
    }
}

impl<T: ArrowNativeType> From<Vec<T>> for Values<T> {
    fn from(v: Vec<T>) -> Values<T> {
        Values(Repr::Owned(v))
    }
}

impl<T: ArrowNativeType> FromIterator<T> for Values<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Values<T> {
        Values(Repr::Owned(iter.into_iter().collect()))
    }
}

impl<T: ArrowNativeType> PartialEq for Values<T> {
    fn eq(&self, other: &Values<T>) -> bool {
        **self == **other
    }
}

impl<T: ArrowNativeType> std::fmt::Debug for Values<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical { codes, .. } => codes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A feature table, column-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Shared, so that a table made per request (serving) does not copy every name.
    pub names: std::sync::Arc<[String]>,
    pub columns: Vec<Column>,
    pub rows: usize,
}

/// The rows of a table a learner trains on. Edits exclude rows by leaving them out of `rows`, so the
/// table itself is never copied.
#[derive(Clone, Copy, Debug)]
pub struct TrainSet<'a> {
    pub features: &'a Features,
    /// Indices of the training rows within `features`.
    pub rows: &'a [u32],
    /// One label per row of `features`: the class index as f64 for classification, the value for regression.
    pub labels: &'a [f64],
    /// One weight per row of `features` when given.
    pub weights: Option<&'a [f64]>,
}

/// Reports training progress; called from the training thread once per boosting round or solver iteration.
pub trait Progress: Sync {
    fn iteration(&self, done: usize, total: usize);
    /// A line of progress in words (what a command learner prints).
    fn message(&self, _line: &str) {}
}

/// A `Progress` that ignores every report.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn iteration(&self, _done: usize, _total: usize) {}
}

/// What the seed chooses in a fit with given params: runs that differ only by seed measure
/// the noise floor only when it chooses something.
#[derive(Clone, Debug, PartialEq)]
pub enum SeedEffect {
    /// What it chooses, in words (`"bagging"`, ...).
    Drives(Vec<&'static str>),
    /// It changes nothing: fits with any seed are identical; `advice` says what would change that.
    Nothing { advice: &'static str },
}

/// A learning algorithm with checked params, ready to fit.
pub trait Learner: Send + Sync {
    fn name(&self) -> &'static str;
    /// The validated params with every default filled in.
    fn params(&self) -> serde_json::Value;
    /// What the seed chooses with these params.
    fn seed_effect(&self) -> SeedEffect;
    fn fit(
        &self,
        task: Task,
        data: &TrainSet<'_>,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, LearnError>;
    /// Fits, then predicts `predict` (indices into `data.features`, as for [`Model::predict`]).
    /// A learner that is a process of its own (gyre-app's command learner) trains and predicts
    /// in one run, so every caller that needs both asks for both at once.
    fn fit_predict(
        &self,
        task: Task,
        data: &TrainSet<'_>,
        seed: u64,
        predict: &[u32],
        progress: &dyn Progress,
    ) -> Result<(Box<dyn Model>, Vec<f64>), LearnError> {
        let model = self.fit(task, data, seed, progress)?;
        let scores = model.predict(data.features, predict);
        Ok((model, scores))
    }
}

/// A fitted model.
pub trait Model: Send + Sync {
    fn task(&self) -> Task;
    fn learner(&self) -> &'static str;
    /// Row-major, `rows.len() * task.outputs()` values: the probability of class 1 for binary, class
    /// probabilities (summing to 1) for multiclass, the value for regression. `features` must have the
    /// training table's columns in the same order; a column of the wrong kind reads as missing.
    /// Panics if a row index is out of range for `features`.
    fn predict(&self, features: &Features, rows: &[u32]) -> Vec<f64>;
    /// Each row's feature contributions to its raw score (see [`Contributions`]), with the same
    /// reading of `features` as `predict`. Fails for a learner, or a saved model, without them.
    fn contributions(
        &self,
        features: &Features,
        rows: &[u32],
    ) -> Result<Contributions, LearnError> {
        let _ = (features, rows);
        Err(LearnError::NoContributions {
            learner: self.learner(),
            reason: "only gbdt models explain their predictions".into(),
        })
    }
    /// Seconds spent in named parts of the fit that the run's timings should show (a command
    /// learner's own time, and gyre's writing and checking of its files); none by default.
    fn fit_timings(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// The model in gyre's versioned model format: JSON `{"format":"gyre-model","version":1,"learner":..}`.
    fn save(&self) -> Vec<u8>;
    /// The model as an ONNX graph that computes what `predict` does (see [`onnx`]).
    fn to_onnx(&self) -> Result<onnx::OnnxModel, LearnError>;
}

/// Runs `f` on a rayon worker. Parallel calls made from a thread outside the pool each pay a
/// cross-thread hand-off and wake-up; a fit makes tens of thousands of them (measured on Adult from
/// the CLI: 36k context switches, 0.53 s, against 2.5k and 0.31 s inside a pool). From a worker,
/// rayon runs nested work in place and steals the rest.
pub(crate) fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use std::sync::OnceLock;
    if rayon::current_thread_index().is_some() {
        return f();
    }
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("gyre-learn-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Runs `f` on a pool of its own with `threads` workers: for several fits at once (ablation), each
/// on one thread, instead of all of them sharing the one pool, where a worker waiting on its
/// own parallel step steals another fit's whole job and the fits delay each other. Results do
/// not depend on the thread count.
pub fn on_own_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("gyre-job-{i}"))
        .build()
    {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// The learners [`learner`] knows, by name.
pub const LEARNERS: &[&str] = &["gbdt", "linear"];

/// Format tag and version written by every `Model::save`.
pub(crate) const MODEL_FORMAT: &str = "gyre-model";
pub(crate) const MODEL_VERSION: u32 = 1;

/// The one place params are checked: turns a learner name and raw `name=value` params into a learner.
pub fn learner(name: &str, params: &[(String, String)]) -> Result<Box<dyn Learner>, LearnError> {
    match name {
        "gbdt" => Ok(Box::new(Gbdt::new(GbdtParams::parse(params)?))),
        "linear" => Ok(Box::new(Linear::new(LinearParams::parse(params)?))),
        _ => Err(LearnError::UnknownLearner {
            name: name.to_string(),
            valid: LEARNERS.iter().map(|s| s.to_string()).collect(),
        }),
    }
}

/// The canonical name of param `key` of a built-in learner (an alias resolved), or None when
/// the learner is not built in or has no such param.
pub fn canonical_param(learner: &str, key: &str) -> Option<&'static str> {
    let specs: &[params::ParamSpec] = match learner {
        "gbdt" => gbdt::SPECS,
        "linear" => linear::SPECS,
        _ => return None,
    };
    let key = key.trim();
    specs
        .iter()
        .find(|s| s.name == key || s.aliases.contains(&key))
        .map(|s| s.name)
}

/// The param that sets how much a built-in learner fits (gbdt's trees, linear's iterations):
/// the budget successive halving grows.
pub fn budget_param(learner: &str) -> Option<&'static str> {
    match learner {
        "gbdt" => Some("num_iterations"),
        "linear" => Some("max_iter"),
        _ => None,
    }
}

/// Reads a model written by `Model::save`, whatever learner wrote it.
pub fn load_model(bytes: &[u8]) -> Result<Box<dyn Model>, LearnError> {
    #[derive(Deserialize)]
    struct Header {
        format: String,
        version: u32,
        learner: String,
    }
    let header: Header = serde_json::from_slice(bytes)
        .map_err(|e| LearnError::CorruptModel(format!("cannot read model header: {e}")))?;
    if header.format != MODEL_FORMAT {
        return Err(LearnError::CorruptModel(format!(
            "format is \"{}\", expected \"{MODEL_FORMAT}\"",
            header.format
        )));
    }
    if header.version != MODEL_VERSION {
        return Err(LearnError::UnsupportedModelVersion {
            version: header.version,
            supported: MODEL_VERSION,
        });
    }
    match header.learner.as_str() {
        "gbdt" => Ok(Box::new(GbdtModel::load(bytes)?)),
        "linear" => Ok(Box::new(LinearModel::load(bytes)?)),
        other => Err(LearnError::CorruptModel(format!(
            "unknown learner \"{other}\" in model"
        ))),
    }
}

/// Checks what every learner needs from a training set, so each learner can index without checks.
pub(crate) fn validate_train_set(task: Task, data: &TrainSet<'_>) -> Result<(), LearnError> {
    if let Task::Multiclass { classes } = task
        && classes < 2
    {
        return Err(LearnError::InvalidTask(format!(
            "multiclass needs at least 2 classes, got {classes}"
        )));
    }
    let f = data.features;
    if f.names.len() != f.columns.len() {
        return Err(LearnError::ShapeMismatch {
            what: "feature names",
            expected: f.columns.len(),
            found: f.names.len(),
        });
    }
    for (name, col) in f.names.iter().zip(&f.columns) {
        if col.len() != f.rows {
            return Err(LearnError::ColumnLength {
                column: name.clone(),
                expected: f.rows,
                found: col.len(),
            });
        }
    }
    if data.labels.len() != f.rows {
        return Err(LearnError::ShapeMismatch {
            what: "labels",
            expected: f.rows,
            found: data.labels.len(),
        });
    }
    if let Some(w) = data.weights
        && w.len() != f.rows
    {
        return Err(LearnError::ShapeMismatch {
            what: "weights",
            expected: f.rows,
            found: w.len(),
        });
    }
    if data.rows.is_empty() {
        return Err(LearnError::NoTrainingRows);
    }
    for &r in data.rows {
        let row = r as usize;
        if row >= f.rows {
            return Err(LearnError::RowOutOfRange { row, rows: f.rows });
        }
        let y = data.labels[row];
        let bad = match task {
            Task::Binary => (y != 0.0 && y != 1.0).then_some("binary labels must be 0 or 1"),
            Task::Multiclass { classes } => (!(y >= 0.0 && y < classes as f64 && y.fract() == 0.0))
                .then_some("class labels must be integers in 0..classes"),
            Task::Regression => (!y.is_finite()).then_some("regression labels must be finite"),
        };
        if let Some(reason) = bad {
            return Err(LearnError::InvalidLabel {
                row,
                value: y,
                reason: reason.to_string(),
            });
        }
        if let Some(w) = data.weights
            && !(w[row] >= 0.0 && w[row].is_finite())
        {
            return Err(LearnError::InvalidWeight { row, value: w[row] });
        }
    }
    Ok(())
}

#[cfg(test)]
mod param_name_tests {
    #[test]
    fn aliases_resolve_to_the_canonical_name_and_budgets_are_named() {
        assert_eq!(
            super::canonical_param("gbdt", "trees"),
            Some("num_iterations")
        );
        assert_eq!(
            super::canonical_param("gbdt", " num_leaves "),
            Some("num_leaves")
        );
        assert_eq!(
            super::canonical_param("linear", "num_iterations"),
            Some("max_iter")
        );
        assert_eq!(super::canonical_param("gbdt", "nonsense"), None);
        assert_eq!(super::canonical_param("mlp", "trees"), None);
        for l in super::LEARNERS {
            let b = super::budget_param(l).expect("every built-in learner has a budget");
            assert_eq!(super::canonical_param(l, b), Some(b));
        }
        assert_eq!(super::budget_param("mlp"), None);
    }
}
