//! `linear`: the simple baseline every tree model should beat. Logistic regression (binary), softmax
//! regression (multiclass) and ridge regression on standardized numeric features (missing values
//! mean-imputed with a missing indicator) and one-hot categories (missing or unseen: all zeros),
//! fitted by full-batch L-BFGS (Nocedal, "Updating quasi-Newton matrices with limited storage",
//! Mathematics of Computation, 1980) on the weighted mean loss plus `l2 / 2 * ||w||^2` (intercepts free).

mod onnx;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::objective::{self, CHUNK};
use crate::params::{ParamSpec, RawParams, at_least, non_negative, positive};
use crate::{
    Column, Features, LearnError, Learner, MODEL_FORMAT, MODEL_VERSION, Model, Progress, Task,
    TrainSet, validate_train_set,
};

/// L-BFGS memory: the number of past steps kept to approximate the inverse hessian.
const HISTORY: usize = 10;

/// Checked linear params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearParams {
    l2: f64,
    max_iter: usize,
    /// Stop when the largest gradient component falls below this.
    tol: f64,
}

impl Default for LinearParams {
    fn default() -> LinearParams {
        LinearParams {
            l2: 1e-4,
            max_iter: 200,
            tol: 1e-6,
        }
    }
}

pub(crate) const SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "l2",
        aliases: &["lambda_l2", "reg_lambda", "alpha"],
    },
    ParamSpec {
        name: "max_iter",
        aliases: &["num_iterations", "max_iterations"],
    },
    ParamSpec {
        name: "tol",
        aliases: &["tolerance"],
    },
];

impl LinearParams {
    pub fn parse(raw: &[(String, String)]) -> Result<LinearParams, LearnError> {
        let r = RawParams::new("linear", SPECS, raw)?;
        let d = LinearParams::default();
        Ok(LinearParams {
            l2: r.f64("l2", d.l2, non_negative)?,
            max_iter: r.i64("max_iter", d.max_iter as i64, at_least(1))? as usize,
            tol: r.f64("tol", d.tol, positive)?,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("params always serialize")
    }
}

/// The linear learner with checked params.
#[derive(Clone, Debug)]
pub struct Linear {
    params: LinearParams,
}

impl Linear {
    pub fn new(params: LinearParams) -> Linear {
        Linear { params }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct NumericEnc {
    feature: usize,
    mean: f64,
    /// 1 / standard deviation (1 for constant columns).
    scale: f64,
    /// Dense slot of the missing indicator, when training saw missing values.
    indicator: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CategoricalEnc {
    feature: usize,
    /// Category code -> one-hot slot (`u32::MAX` for categories never seen in training).
    slot: Vec<u32>,
}

/// How rows become vectors: `dense` slots (numeric then indicators) followed by one-hot slots.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Encoder {
    numeric: Vec<NumericEnc>,
    categorical: Vec<CategoricalEnc>,
    dense: usize,
    dim: usize,
}

impl Encoder {
    fn fit(features: &Features, rows: &[u32]) -> Encoder {
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        let mut onehot = 0usize;
        for (f, col) in features.columns.iter().enumerate() {
            match col {
                Column::Numeric(v) => {
                    let (mut s, mut s2, mut cnt) = (0.0, 0.0, 0usize);
                    for &r in rows {
                        let x = v[r as usize];
                        if x.is_finite() {
                            s += x;
                            cnt += 1;
                        }
                    }
                    let mean = if cnt > 0 { s / cnt as f64 } else { 0.0 };
                    for &r in rows {
                        let x = v[r as usize];
                        if x.is_finite() {
                            s2 += (x - mean) * (x - mean);
                        }
                    }
                    let sd = if cnt > 1 {
                        (s2 / cnt as f64).sqrt()
                    } else {
                        0.0
                    };
                    let scale = if sd > 1e-12 && sd.is_finite() {
                        1.0 / sd
                    } else {
                        1.0
                    };
                    let any_missing = cnt < rows.len();
                    numeric.push(NumericEnc {
                        feature: f,
                        mean,
                        scale,
                        indicator: any_missing.then_some(0),
                    });
                }
                Column::Categorical { codes, cardinality } => {
                    let mut seen = vec![false; *cardinality as usize];
                    for &r in rows {
                        let c = codes[r as usize];
                        if c < *cardinality {
                            seen[c as usize] = true;
                        }
                    }
                    let slot = seen
                        .iter()
                        .map(|&s| {
                            if s {
                                onehot += 1;
                                (onehot - 1) as u32
                            } else {
                                u32::MAX
                            }
                        })
                        .collect();
                    categorical.push(CategoricalEnc { feature: f, slot });
                }
            }
        }
        let mut dense = numeric.len();
        for n in &mut numeric {
            if n.indicator.is_some() {
                n.indicator = Some(dense);
                dense += 1;
            }
        }
        // One-hot slots were numbered from 0; shift them past the dense block.
        for c in &mut categorical {
            for s in &mut c.slot {
                if *s != u32::MAX {
                    *s += dense as u32;
                }
            }
        }
        Encoder {
            numeric,
            categorical,
            dense,
            dim: dense + onehot,
        }
    }

    /// Writes row `r`'s dense values and its one-hot slots (`u32::MAX` when none) into the buffers.
    fn encode(&self, features: &Features, r: usize, dense: &mut [f64], cats: &mut [u32]) {
        dense.fill(0.0);
        for (j, n) in self.numeric.iter().enumerate() {
            let x = match features.columns.get(n.feature) {
                Some(Column::Numeric(v)) => v[r],
                _ => f64::NAN,
            };
            if x.is_finite() {
                dense[j] = (x - n.mean) * n.scale;
            } else if let Some(i) = n.indicator {
                dense[i] = 1.0;
            }
        }
        for (j, c) in self.categorical.iter().enumerate() {
            cats[j] = match features.columns.get(c.feature) {
                Some(Column::Categorical { codes, .. }) => {
                    c.slot.get(codes[r] as usize).copied().unwrap_or(u32::MAX)
                }
                _ => u32::MAX,
            };
        }
    }
}

/// Encoded training rows: a dense block and one-hot slots, row-major. Strides are at least 1 so
/// both buffers have one chunk per row even when a block is empty.
struct Design {
    n: usize,
    dense_stride: usize,
    cats_stride: usize,
    dense: Vec<f64>,
    cats: Vec<u32>,
}

/// Raw scores of one encoded row: `out[c] = b_c0 + sum_j x_j b_c(1+j) + sum_slots b_c(1+slot)`.
fn row_scores(coef: &[f64], width: usize, dense: &[f64], cats: &[u32], out: &mut [f64]) {
    for (c, o) in out.iter_mut().enumerate() {
        let b = &coef[c * width..(c + 1) * width];
        let mut z = b[0];
        for (x, w) in dense.iter().zip(&b[1..]) {
            z += x * w;
        }
        for &s in cats {
            if s != u32::MAX {
                z += b[1 + s as usize];
            }
        }
        *o = z;
    }
}

/// Objective and gradient at `coef`. Chunks are summed in order, so results ignore the thread count.
fn evaluate(
    task: Task,
    design: &Design,
    enc: &Encoder,
    labels: &[f64],
    weights: Option<&[f64]>,
    l2: f64,
    coef: &[f64],
) -> (f64, Vec<f64>) {
    let k = task.outputs();
    let width = 1 + enc.dim;
    let nd = enc.dense;
    let nc = enc.categorical.len();
    let parts: Vec<(f64, f64, Vec<f64>)> = (0..design.n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|ci| {
            let mut g = vec![0.0; coef.len()];
            let (mut loss, mut wsum) = (0.0, 0.0);
            let mut z = vec![0.0; k];
            for i in ci * CHUNK..((ci + 1) * CHUNK).min(design.n) {
                let dense = &design.dense[i * design.dense_stride..][..nd];
                let cats = &design.cats[i * design.cats_stride..][..nc];
                row_scores(coef, width, dense, cats, &mut z);
                let w = weights.map_or(1.0, |w| w[i]);
                let y = labels[i];
                match task {
                    Task::Binary => {
                        let t = z[0];
                        let sp = if t > 0.0 {
                            t + (-t).exp().ln_1p()
                        } else {
                            t.exp().ln_1p()
                        };
                        loss += w * (sp - y * t);
                        z[0] = objective::sigmoid(t) - y;
                    }
                    Task::Multiclass { .. } => {
                        let zy = z[y as usize];
                        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                        loss += w * (lse - zy);
                        objective::softmax(&mut z);
                        z[y as usize] -= 1.0;
                    }
                    Task::Regression => {
                        let d = z[0] - y;
                        loss += w * 0.5 * d * d;
                        z[0] = d;
                    }
                }
                wsum += w;
                for (c, &rc) in z.iter().enumerate() {
                    let r = rc * w;
                    if r == 0.0 {
                        continue;
                    }
                    let gb = &mut g[c * width..(c + 1) * width];
                    gb[0] += r;
                    for (gj, x) in gb[1..=nd].iter_mut().zip(dense) {
                        *gj += r * x;
                    }
                    for &s in cats {
                        if s != u32::MAX {
                            gb[1 + s as usize] += r;
                        }
                    }
                }
            }
            (loss, wsum, g)
        })
        .collect();
    let mut grad = vec![0.0; coef.len()];
    let (mut loss, mut wsum) = (0.0, 0.0);
    for (l, w, g) in &parts {
        loss += l;
        wsum += w;
        for (a, b) in grad.iter_mut().zip(g) {
            *a += b;
        }
    }
    let wsum = if wsum > 0.0 { wsum } else { 1.0 };
    loss /= wsum;
    grad.iter_mut().for_each(|g| *g /= wsum);
    for c in 0..k {
        for j in 1..width {
            let b = coef[c * width + j];
            loss += 0.5 * l2 * b * b;
            grad[c * width + j] += l2 * b;
        }
    }
    (loss, grad)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimizes `f` from `x` by L-BFGS with a backtracking (Armijo) line search.
fn lbfgs(
    mut x: Vec<f64>,
    f: impl Fn(&[f64]) -> (f64, Vec<f64>),
    params: &LinearParams,
    progress: &dyn Progress,
) -> Vec<f64> {
    let (mut fx, mut g) = f(&x);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    for iter in 0..params.max_iter {
        progress.iteration(iter, params.max_iter);
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= params.tol {
            break;
        }
        // Two-loop recursion for d = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            q.iter_mut()
                .zip(&y_hist[i])
                .for_each(|(a, b)| *a -= alpha[i] * b);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / dot(&g, &g).sqrt().max(1e-12),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            q.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(a, b)| *a += (alpha[i] - beta) * b);
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: forget the curvature history and follow the gradient.
            s_hist.clear();
            y_hist.clear();
            let scale = 1.0 / dot(&g, &g).sqrt().max(1e-12);
            d = g.iter().map(|v| -v * scale).collect();
            slope = dot(&g, &d);
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
            let (fn_, gn) = f(&xn);
            if fn_.is_finite() && fn_ <= fx + 1e-4 * step * slope {
                accepted = Some((xn, fn_, gn));
                break;
            }
            step *= 0.5;
        }
        let Some((xn, fn_, gn)) = accepted else { break };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        if dot(&s, &y) > 1e-12 {
            if s_hist.len() == HISTORY {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
        }
        let decrease = fx - fn_;
        x = xn;
        fx = fn_;
        g = gn;
        if decrease <= 1e-13 * fx.abs().max(1.0) {
            break;
        }
    }
    progress.iteration(params.max_iter, params.max_iter);
    x
}

impl Learner for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn seed_effect(&self) -> crate::SeedEffect {
        crate::SeedEffect::Nothing {
            advice: "linear is fit by full-batch L-BFGS from a fixed start, so no seed matters: \
                     measure a noise floor with gbdt and sampling params",
        }
    }

    fn fit(
        &self,
        task: Task,
        data: &TrainSet<'_>,
        _seed: u64,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, LearnError> {
        crate::in_pool(|| self.fit_on_pool(task, data, progress))
    }
}

impl Linear {
    fn fit_on_pool(
        &self,
        task: Task,
        data: &TrainSet<'_>,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, LearnError> {
        // Full-batch L-BFGS from a fixed start is deterministic; the seed has nothing to choose.
        validate_train_set(task, data)?;
        let features = data.features;
        let enc = Encoder::fit(features, data.rows);
        let n = data.rows.len();
        let nc = enc.categorical.len();
        let (ds, cs) = (enc.dense.max(1), nc.max(1));
        let mut design = Design {
            n,
            dense_stride: ds,
            cats_stride: cs,
            dense: vec![0.0; n * ds],
            cats: vec![u32::MAX; n * cs],
        };
        design
            .dense
            .par_chunks_mut(ds)
            .zip(design.cats.par_chunks_mut(cs))
            .zip(data.rows.par_iter())
            .for_each(|((d, c), &r)| {
                enc.encode(features, r as usize, &mut d[..enc.dense], &mut c[..nc])
            });
        let mut labels: Vec<f64> = data.rows.iter().map(|&r| data.labels[r as usize]).collect();
        let weights: Option<Vec<f64>> = data
            .weights
            .map(|w| data.rows.iter().map(|&r| w[r as usize]).collect());

        // Ridge works on standardized targets so `tol` means the same whatever the label's units.
        let (y_mean, y_scale) = if task == Task::Regression {
            let init = objective::init_score(task, &labels, weights.as_deref())[0];
            let wsum: f64 = weights.as_ref().map_or(n as f64, |w| w.iter().sum());
            let var = labels
                .iter()
                .enumerate()
                .map(|(i, y)| weights.as_ref().map_or(1.0, |w| w[i]) * (y - init) * (y - init))
                .sum::<f64>()
                / wsum.max(1e-300);
            let sd = if var > 0.0 && var.is_finite() {
                var.sqrt()
            } else {
                1.0
            };
            labels.iter_mut().for_each(|y| *y = (*y - init) / sd);
            (init, sd)
        } else {
            (0.0, 1.0)
        };

        let k = task.outputs();
        let width = 1 + enc.dim;
        let mut coef = vec![0.0; k * width];
        if task != Task::Regression {
            let init = objective::init_score(task, &labels, weights.as_deref());
            for c in 0..k {
                coef[c * width] = init[c];
            }
        }
        let l2 = self.params.l2;
        let coef = lbfgs(
            coef,
            |b| evaluate(task, &design, &enc, &labels, weights.as_deref(), l2, b),
            &self.params,
            progress,
        );
        Ok(Box::new(LinearModel {
            task,
            params: self.params.clone(),
            feature_names: features.names.to_vec(),
            encoder: enc,
            coef,
            y_mean,
            y_scale,
        }))
    }
}

/// A fitted linear model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LinearModel {
    task: Task,
    params: LinearParams,
    feature_names: Vec<String>,
    encoder: Encoder,
    /// `task.outputs()` blocks of `1 + dim` coefficients: intercept, dense slots, one-hot slots.
    coef: Vec<f64>,
    /// Regression predictions are `raw * y_scale + y_mean`.
    y_mean: f64,
    y_scale: f64,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    version: u32,
    learner: String,
    model: LinearModel,
}

impl LinearModel {
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    pub(crate) fn load(bytes: &[u8]) -> Result<LinearModel, LearnError> {
        let s: Saved = serde_json::from_slice(bytes)
            .map_err(|e| LearnError::CorruptModel(format!("linear model: {e}")))?;
        let m = s.model;
        let e = &m.encoder;
        let ok = m.coef.len() == m.task.outputs() * (1 + e.dim)
            && e.numeric
                .iter()
                .all(|n| n.indicator.is_none_or(|i| i < e.dense))
            && e.categorical.iter().all(|c| {
                c.slot
                    .iter()
                    .all(|&s| s == u32::MAX || (s as usize) < e.dim)
            });
        if !ok {
            return Err(LearnError::CorruptModel(
                "linear model coefficients do not match its encoder".into(),
            ));
        }
        Ok(m)
    }
}

impl Model for LinearModel {
    fn task(&self) -> Task {
        self.task
    }

    fn learner(&self) -> &'static str {
        "linear"
    }

    fn predict(&self, features: &Features, rows: &[u32]) -> Vec<f64> {
        let k = self.task.outputs();
        let enc = &self.encoder;
        let width = 1 + enc.dim;
        let block = |o: &mut [f64], rows: &[u32]| {
            let mut dense = vec![0.0; enc.dense];
            let mut cats = vec![u32::MAX; enc.categorical.len()];
            for (o, &r) in o.chunks_mut(k).zip(rows) {
                enc.encode(features, r as usize, &mut dense, &mut cats);
                row_scores(&self.coef, width, &dense, &cats, o);
            }
        };
        let mut out = vec![0.0; rows.len() * k];
        if rows.len() <= 256 {
            // A served request: on this thread, without a hop to the pool.
            block(&mut out, rows);
        } else {
            crate::in_pool(|| {
                out.par_chunks_mut(k * 256)
                    .zip(rows.par_chunks(256))
                    .for_each(|(o, rows)| block(o, rows))
            });
        }
        if self.task == Task::Regression {
            out.iter_mut()
                .for_each(|v| *v = *v * self.y_scale + self.y_mean);
        }
        objective::transform(self.task, &mut out);
        out
    }

    fn save(&self) -> Vec<u8> {
        let saved = Saved {
            format: MODEL_FORMAT.to_string(),
            version: MODEL_VERSION,
            learner: "linear".to_string(),
            model: self.clone(),
        };
        serde_json::to_vec(&saved).expect("a linear model always serializes")
    }

    fn to_onnx(&self) -> Result<crate::onnx::OnnxModel, LearnError> {
        self.onnx()
    }
}
