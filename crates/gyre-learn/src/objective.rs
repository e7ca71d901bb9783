//! Losses on raw scores shared by the learners: binary log loss, softmax cross-entropy and squared error.

use rayon::prelude::*;

use crate::Task;

/// Rows per parallel chunk; fixed so chunked work never depends on the thread count.
pub(crate) const CHUNK: usize = 4096;

/// Hessians are floored so a confident row cannot make a leaf's denominator vanish.
const MIN_HESS: f64 = 1e-16;

pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// In-place softmax over one row of raw scores.
pub(crate) fn softmax(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

/// Turns raw scores (row-major, `task.outputs()` per row) into predictions.
pub(crate) fn transform(task: Task, raw: &mut [f64]) {
    match task {
        Task::Binary => raw.par_iter_mut().for_each(|v| *v = sigmoid(*v)),
        Task::Multiclass { classes } => raw.par_chunks_mut(classes).for_each(softmax),
        Task::Regression => {}
    }
}

/// The starting raw score: the weighted prior (log-odds, log class priors, mean).
pub(crate) fn init_score(task: Task, labels: &[f64], weights: Option<&[f64]>) -> Vec<f64> {
    let w = |i: usize| weights.map_or(1.0, |w| w[i]);
    let total: f64 = (0..labels.len()).map(w).sum();
    if total <= 0.0 {
        return vec![0.0; task.outputs()];
    }
    match task {
        Task::Binary => {
            let pos: f64 = (0..labels.len()).map(|i| w(i) * labels[i]).sum();
            let p = (pos / total).clamp(1e-15, 1.0 - 1e-15);
            vec![(p / (1.0 - p)).ln()]
        }
        Task::Multiclass { classes } => {
            let mut sums = vec![0.0; classes];
            for (i, &y) in labels.iter().enumerate() {
                sums[y as usize] += w(i);
            }
            sums.iter().map(|s| (s / total).max(1e-15).ln()).collect()
        }
        Task::Regression => {
            let s: f64 = (0..labels.len()).map(|i| w(i) * labels[i]).sum();
            vec![s / total]
        }
    }
}

/// Gradients and hessians of the loss at `scores` (row-major n x k), written class-major
/// (`grad[c * n + i]`) because each class grows its own tree. Row weights multiply both.
pub(crate) fn gradients(
    task: Task,
    scores: &[f64],
    labels: &[f64],
    weights: Option<&[f64]>,
    grad: &mut [f64],
    hess: &mut [f64],
) {
    let n = labels.len();
    match task {
        Task::Binary | Task::Regression => {
            grad.par_chunks_mut(CHUNK)
                .zip(hess.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(ci, (g, h))| {
                    let base = ci * CHUNK;
                    for j in 0..g.len() {
                        let i = base + j;
                        let w = weights.map_or(1.0, |w| w[i]);
                        let (gi, hi) = if task == Task::Binary {
                            let p = sigmoid(scores[i]);
                            (p - labels[i], (p * (1.0 - p)).max(MIN_HESS))
                        } else {
                            (scores[i] - labels[i], 1.0)
                        };
                        g[j] = gi * w;
                        h[j] = hi * w;
                    }
                });
        }
        Task::Multiclass { classes: k } => {
            // LightGBM's factor k/(k-1) makes softmax hessians comparable with the binary case.
            let factor = k as f64 / (k as f64 - 1.0);
            let rows: Vec<(Vec<f64>, Vec<f64>)> = (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|ci| {
                    let lo = ci * CHUNK;
                    let hi = (lo + CHUNK).min(n);
                    let mut g = vec![0.0; (hi - lo) * k];
                    let mut h = vec![0.0; (hi - lo) * k];
                    let mut p = vec![0.0; k];
                    for i in lo..hi {
                        p.copy_from_slice(&scores[i * k..(i + 1) * k]);
                        softmax(&mut p);
                        let w = weights.map_or(1.0, |w| w[i]);
                        let y = labels[i] as usize;
                        for c in 0..k {
                            let t = if c == y { 1.0 } else { 0.0 };
                            g[(i - lo) * k + c] = (p[c] - t) * w;
                            h[(i - lo) * k + c] = (factor * p[c] * (1.0 - p[c])).max(MIN_HESS) * w;
                        }
                    }
                    (g, h)
                })
                .collect();
            for (ci, (g, h)) in rows.iter().enumerate() {
                let lo = ci * CHUNK;
                for j in 0..g.len() / k {
                    for c in 0..k {
                        grad[c * n + lo + j] = g[j * k + c];
                        hess[c * n + lo + j] = h[j * k + c];
                    }
                }
            }
        }
    }
}

/// Weighted mean loss at `scores` (row-major n x k): log loss, cross-entropy or squared error.
pub(crate) fn loss(task: Task, scores: &[f64], labels: &[f64], weights: Option<&[f64]>) -> f64 {
    let k = task.outputs();
    let n = labels.len();
    // Chunk partial sums are added in chunk order, so the result does not depend on thread count.
    let parts: Vec<(f64, f64)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|ci| {
            let (mut s, mut sw) = (0.0, 0.0);
            let mut p = vec![0.0; k];
            for i in ci * CHUNK..((ci + 1) * CHUNK).min(n) {
                let w = weights.map_or(1.0, |w| w[i]);
                let l = match task {
                    Task::Binary => {
                        let z = scores[i];
                        // log(1 + e^z) - y z, written to stay finite for large |z|.
                        let softplus = if z > 0.0 {
                            z + (-z).exp().ln_1p()
                        } else {
                            z.exp().ln_1p()
                        };
                        softplus - labels[i] * z
                    }
                    Task::Multiclass { .. } => {
                        p.copy_from_slice(&scores[i * k..(i + 1) * k]);
                        softmax(&mut p);
                        -(p[labels[i] as usize].max(1e-300)).ln()
                    }
                    Task::Regression => {
                        let d = scores[i] - labels[i];
                        d * d
                    }
                };
                s += w * l;
                sw += w;
            }
            (s, sw)
        })
        .collect();
    let (s, sw) = parts.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    if sw > 0.0 { s / sw } else { 0.0 }
}
