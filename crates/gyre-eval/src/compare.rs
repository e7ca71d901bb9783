//! Comparing two runs on the same examples: flips (Yan et al., "Positive-Congruent Training",
//! CVPR 2021), backward trust compatibility (Srivastava et al., KDD 2020), McNemar's exact test
//! (Dietterich, Neural Computation 1998), and paired bootstrap intervals of any metric's
//! difference (Efron & Tibshirani 1993; Koehn, EMNLP 2004).
//!
//! The bootstrap draws per-row resample counts once per replicate and scores both runs with the
//! same counts; every metric is a weighted pass over rows presorted once, so a replicate costs
//! O(rows) rather than a sort. Replicates are seeded one by one, so the result does not depend on
//! how they are spread over threads.

use crate::metrics::{Metrics, predicted_classes};
use gyre_core::Task;
use gyre_core::rng::SplitMix64;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flips {
    pub rows: usize,
    /// Right under the base, wrong under the candidate.
    pub negative: usize,
    /// Wrong under the base, right under the candidate.
    pub positive: usize,
    pub negative_rate: f64,
    pub positive_rate: f64,
    /// Share of the base's right answers that the candidate keeps right.
    pub backward_trust_compatibility: f64,
}

/// Flips between two right/wrong vectors over the same rows.
pub fn flips(base_right: &[bool], cand_right: &[bool]) -> Flips {
    let n = base_right.len();
    let (mut neg, mut pos, mut base_ok, mut kept) = (0, 0, 0, 0);
    for (&b, &c) in base_right.iter().zip(cand_right) {
        match (b, c) {
            (true, false) => neg += 1,
            (false, true) => pos += 1,
            _ => {}
        }
        if b {
            base_ok += 1;
            if c {
                kept += 1;
            }
        }
    }
    Flips {
        rows: n,
        negative: neg,
        positive: pos,
        negative_rate: neg as f64 / n.max(1) as f64,
        positive_rate: pos as f64 / n.max(1) as f64,
        backward_trust_compatibility: if base_ok == 0 {
            1.0
        } else {
            kept as f64 / base_ok as f64
        },
    }
}

/// McNemar's exact two-sided p-value: the binomial test of min(b, c) out of b + c at p = 1/2.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Bin(n, 1/2), summed in log space to stay finite for large n.
    let ln2 = std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut terms = Vec::with_capacity(k + 1);
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_choose - n as f64 * ln2);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// One run's outputs on the compared rows, prepared for fast weighted metrics.
pub struct Prepared {
    task: Task,
    classes: usize,
    labels: Vec<f64>,
    scores: Vec<f64>,
    predicted: Vec<u32>,
    /// Per-row log loss and Brier terms: they do not depend on the weights, so a replicate only
    /// sums them (computing the logarithms once saves most of the bootstrap's time).
    row_log_loss: Vec<f64>,
    row_brier: Vec<f64>,
    /// 1.0 where the prediction is right.
    right_f: Vec<f64>,
    /// For each AUC curve (one for binary, one per class for multiclass): rows sorted by score,
    /// whether each is a positive, and the starts of runs of equal scores.
    auc_orders: Vec<Curve>,
}

struct Curve {
    order: Vec<u32>,
    /// 1.0 for a positive row, 0.0 otherwise, in sorted order.
    positive: Vec<f64>,
    starts: Vec<u32>,
}

impl Prepared {
    pub fn new(task: Task, classes: usize, labels: &[f64], scores: &[f64]) -> Prepared {
        let k = if task == Task::Binary { 2 } else { classes };
        let n = labels.len();
        let curve = |col: &dyn Fn(usize) -> f64, pos: &dyn Fn(usize) -> bool| {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by(|&a, &b| col(a as usize).total_cmp(&col(b as usize)));
            let mut starts = Vec::new();
            for (i, &r) in order.iter().enumerate() {
                if i == 0 || col(r as usize) != col(order[i - 1] as usize) {
                    starts.push(i as u32);
                }
            }
            let positive = order
                .iter()
                .map(|&r| f64::from(u8::from(pos(r as usize))))
                .collect();
            Curve {
                order,
                positive,
                starts,
            }
        };
        let auc_orders = match task {
            Task::Binary => vec![curve(&|i| scores[i], &|i| labels[i] == 1.0)],
            Task::Multiclass => (0..k)
                .map(|c| curve(&|i| scores[i * k + c], &|i| labels[i] as usize == c))
                .collect(),
            Task::Regression => Vec::new(),
        };
        let predicted = if task == Task::Regression {
            Vec::new()
        } else {
            predicted_classes(task, k, scores)
        };
        let right_f: Vec<f64> = predicted
            .iter()
            .zip(labels)
            .map(|(&p, &y)| f64::from(u8::from(f64::from(p) == y)))
            .collect();
        let (mut row_log_loss, mut row_brier) = (Vec::new(), Vec::new());
        if task != Task::Regression {
            for i in 0..n {
                let y = labels[i] as usize;
                if task == Task::Binary {
                    let s = scores[i];
                    let py = if y == 1 { s } else { 1.0 - s };
                    row_log_loss.push(-py.clamp(1e-15, 1.0 - 1e-15).ln());
                    row_brier.push((s - y as f64).powi(2));
                } else {
                    let row = &scores[i * k..(i + 1) * k];
                    row_log_loss.push(-row[y].clamp(1e-15, 1.0 - 1e-15).ln());
                    row_brier.push(
                        row.iter()
                            .enumerate()
                            .map(|(c, &pc)| (pc - f64::from(u8::from(c == y))).powi(2))
                            .sum(),
                    );
                }
            }
        }
        Prepared {
            task,
            classes,
            labels: labels.to_vec(),
            scores: scores.to_vec(),
            predicted,
            right_f,
            row_log_loss,
            row_brier,
            auc_orders,
        }
    }

    /// Whether each row is predicted right (classification).
    pub fn right(&self) -> Vec<bool> {
        self.predicted
            .iter()
            .zip(&self.labels)
            .map(|(&p, &y)| f64::from(p) == y)
            .collect()
    }

    /// All metrics with row weights (resample counts); the same numbers as `metrics::metrics`.
    pub fn metrics(&self, w: &[f64]) -> Metrics {
        self.values(w)
            .into_iter()
            .filter(|(_, v)| !v.is_nan())
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// The metrics in a fixed order (NaN where undefined): the bootstrap's inner loop, so it
    /// allocates no map and the row loops have no data-dependent branches.
    fn values(&self, w: &[f64]) -> Vec<(&'static str, f64)> {
        let wsum: f64 = w.iter().sum();
        if wsum == 0.0 {
            return Vec::new();
        }
        if self.task == Task::Regression {
            let mean = self.labels.iter().zip(w).map(|(y, w)| y * w).sum::<f64>() / wsum;
            let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
            for i in 0..self.labels.len() {
                let e = self.scores[i] - self.labels[i];
                se += w[i] * e * e;
                ae += w[i] * e.abs();
                tot += w[i] * (self.labels[i] - mean).powi(2);
            }
            return vec![
                ("mae", ae / wsum),
                ("r2", if tot > 0.0 { 1.0 - se / tot } else { f64::NAN }),
                ("rmse", (se / wsum).sqrt()),
            ];
        }
        let k = if self.task == Task::Binary {
            2
        } else {
            self.classes
        };
        let (mut correct, mut ll, mut brier) = (0.0, 0.0, 0.0);
        let mut tp = vec![0.0; k];
        let mut fp = vec![0.0; k];
        let mut support = vec![0.0; k];
        if self.task == Task::Binary {
            // Two classes: every count is a sum of products kept in registers (indexed
            // accumulators chain through memory when neighbouring rows share a class).
            let (mut pos, mut tp1, mut fp1) = (0.0, 0.0, 0.0);
            for i in 0..self.labels.len() {
                let (wi, y, r) = (w[i], self.labels[i], self.right_f[i]);
                pos += wi * y;
                tp1 += wi * r * y;
                fp1 += wi * (1.0 - r) * (1.0 - y);
                correct += wi * r;
                ll += wi * self.row_log_loss[i];
                brier += wi * self.row_brier[i];
            }
            support = vec![wsum - pos, pos];
            tp = vec![correct - tp1, tp1];
            fp = vec![(wsum - correct) - fp1, fp1];
        } else {
            for i in 0..self.labels.len() {
                let wi = w[i];
                let y = self.labels[i] as usize;
                let p = self.predicted[i] as usize;
                let r = self.right_f[i];
                support[y] += wi;
                tp[y] += wi * r;
                fp[p] += wi * (1.0 - r);
                correct += wi * r;
                ll += wi * self.row_log_loss[i];
                brier += wi * self.row_brier[i];
            }
        }
        let present: Vec<usize> = (0..k).filter(|&c| support[c] > 0.0).collect();
        let f1 = |c: usize| {
            let d = 2.0 * tp[c] + fp[c] + (support[c] - tp[c]);
            if d == 0.0 { 0.0 } else { 2.0 * tp[c] / d }
        };
        let aucs: Vec<f64> = self
            .auc_orders
            .iter()
            .filter_map(|c| weighted_auc(c, w))
            .collect();
        vec![
            ("accuracy", correct / wsum),
            (
                "auc",
                if aucs.is_empty() {
                    f64::NAN
                } else {
                    aucs.iter().sum::<f64>() / aucs.len() as f64
                },
            ),
            (
                "balanced_accuracy",
                present.iter().map(|&c| tp[c] / support[c]).sum::<f64>() / present.len() as f64,
            ),
            ("brier", brier / wsum),
            (
                "f1",
                if self.task == Task::Binary {
                    f1(1)
                } else {
                    present.iter().map(|&c| f1(c)).sum::<f64>() / present.len() as f64
                },
            ),
            ("log_loss", ll / wsum),
        ]
    }
}

/// AUC over presorted rows with weights, ties counted half; `None` when a class is absent.
fn weighted_auc(c: &Curve, w: &[f64]) -> Option<f64> {
    let (mut neg_below, mut area, mut pos_total, mut neg_total) = (0.0, 0.0, 0.0, 0.0);
    if c.starts.len() == c.order.len() {
        // No ties (the usual case for model scores): one tight pass, no groups.
        for (&r, &pos) in c.order.iter().zip(&c.positive) {
            let wr = w[r as usize];
            area += wr * pos * neg_below;
            neg_below += wr * (1.0 - pos);
            pos_total += wr * pos;
        }
        neg_total = neg_below;
        return (pos_total > 0.0 && neg_total > 0.0).then(|| area / (pos_total * neg_total));
    }
    for (g, &s) in c.starts.iter().enumerate() {
        let e = c.starts.get(g + 1).map_or(c.order.len(), |&x| x as usize);
        let (mut pt, mut nt) = (0.0, 0.0);
        for j in s as usize..e {
            let wr = w[c.order[j] as usize];
            let pos = c.positive[j];
            pt += wr * pos;
            nt += wr * (1.0 - pos);
        }
        area += pt * (neg_below + nt / 2.0);
        neg_below += nt;
        pos_total += pt;
        neg_total += nt;
    }
    (pos_total > 0.0 && neg_total > 0.0).then(|| area / (pos_total * neg_total))
}

/// A well-mixed start for replicate `b`. SplitMix64 walks a fixed sequence, so starts that differ
/// by its increment (`seed ^ b * golden`) give shifted copies of one stream: nearly identical
/// resamples and far too narrow intervals. Hashing puts each replicate at an unrelated point.
fn replicate_seed(seed: u64, b: u64) -> u64 {
    let mut h = SplitMix64::new(seed);
    h.next_u64();
    SplitMix64::new(h.next_u64() ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricDelta {
    pub base: f64,
    pub candidate: f64,
    pub delta: f64,
    /// 95% paired bootstrap interval of `delta`.
    pub ci95: [f64; 2],
}

/// Every metric of both runs with the paired bootstrap interval of the difference.
pub fn compare_metrics(
    base: &Prepared,
    cand: &Prepared,
    resamples: usize,
    seed: u64,
) -> std::collections::BTreeMap<String, MetricDelta> {
    let n = base.labels.len();
    let ones = vec![1.0; n];
    let mb = base.metrics(&ones);
    let mc = cand.metrics(&ones);
    let deltas: Vec<Vec<(&'static str, f64)>> = (0..resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = SplitMix64::new(replicate_seed(seed, b as u64));
            let mut w = vec![0.0; n];
            for _ in 0..n {
                w[rng.below(n as u64) as usize] += 1.0;
            }
            let (x, y) = (base.values(&w), cand.values(&w));
            x.iter()
                .zip(y)
                .map(|((k, b), (_, c))| (*k, c - b))
                .collect()
        })
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for (name, &b) in &mb {
        let Some(&c) = mc.get(name) else { continue };
        let mut ds: Vec<f64> = deltas
            .iter()
            .filter_map(|d| d.iter().find(|(k, _)| k == name).map(|(_, v)| *v))
            .filter(|v| !v.is_nan())
            .collect();
        ds.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if ds.is_empty() {
                c - b
            } else {
                ds[((ds.len() - 1) as f64 * p).round() as usize]
            }
        };
        out.insert(
            name.clone(),
            MetricDelta {
                base: b,
                candidate: c,
                delta: c - b,
                ci95: [q(0.025), q(0.975)],
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Scores, metrics};

    #[test]
    fn mcnemar_matches_hand_values() {
        // b=0, c=5: p = 2 * 0.5^5 = 0.0625.
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // b=1, c=9: 2 * (1 + 10) / 1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        assert_eq!(mcnemar_exact(3, 3), 1.0);
        assert!(mcnemar_exact(5000, 5300) < 0.01);
        assert!(mcnemar_exact(5000, 5300) > 0.0);
    }

    #[test]
    fn prepared_metrics_equal_plain_metrics() {
        let mut rng = SplitMix64::new(1);
        let n = 500;
        let labels: Vec<f64> = (0..n).map(|_| (rng.below(2)) as f64).collect();
        let scores: Vec<f64> = (0..n)
            .map(|i| ((rng.below(1000) as f64 / 1000.0) + labels[i]) / 2.0)
            .collect();
        let plain = metrics(&Scores {
            task: Task::Binary,
            classes: 2,
            labels: &labels,
            scores: &scores,
            weights: None,
        });
        let fast = Prepared::new(Task::Binary, 2, &labels, &scores).metrics(&vec![1.0; n]);
        for (k, v) in &plain {
            assert!((v - fast[k]).abs() < 1e-12, "{k}: {v} vs {}", fast[k]);
        }
    }

    #[test]
    fn bootstrap_is_deterministic_and_covers_the_delta() {
        let mut rng = SplitMix64::new(2);
        let n = 2000;
        let labels: Vec<f64> = (0..n).map(|_| rng.below(2) as f64).collect();
        let a: Vec<f64> = (0..n)
            .map(|i| (labels[i] + rng.below(1000) as f64 / 600.0) / 2.7)
            .collect();
        let b: Vec<f64> = (0..n)
            .map(|i| (labels[i] + rng.below(1000) as f64 / 500.0) / 3.0)
            .collect();
        let pa = Prepared::new(Task::Binary, 2, &labels, &a);
        let pb = Prepared::new(Task::Binary, 2, &labels, &b);
        let x = compare_metrics(&pa, &pb, 300, 7);
        let y = compare_metrics(&pa, &pb, 300, 7);
        assert_eq!(x, y);
        let auc = &x["auc"];
        assert!(auc.ci95[0] <= auc.delta && auc.delta <= auc.ci95[1]);
        assert_ne!(compare_metrics(&pa, &pb, 300, 8)["auc"].ci95, auc.ci95);
        // The accuracy interval is as wide as the discordant pairs say: the delta's standard
        // error is about sqrt(discordant) / n, so the 95% interval spans about 3.9 of them.
        let right_a = pa.right();
        let right_b = pb.right();
        let discordant = right_a.iter().zip(&right_b).filter(|(x, y)| x != y).count() as f64;
        let expected = 3.92 * discordant.sqrt() / n as f64;
        let acc = &x["accuracy"];
        let width = acc.ci95[1] - acc.ci95[0];
        assert!(
            acc.ci95[0] <= acc.delta && acc.delta <= acc.ci95[1],
            "{acc:?}"
        );
        assert!(
            width > 0.7 * expected && width < 1.3 * expected,
            "width {width}, expected {expected}"
        );
    }
}
