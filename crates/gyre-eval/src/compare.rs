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
    /// 1 where the prediction is right.
    right_bit: Vec<u8>,
    /// 1 where the label is the second class (binary).
    label_bit: Vec<u8>,
    /// For each AUC curve (one for binary, one per class for multiclass): rows sorted by score,
    /// whether each is a positive, and the starts of runs of equal scores.
    auc_orders: Vec<Curve>,
}

pub(crate) struct Curve {
    order: Vec<u32>,
    /// 1 for a positive row, 0 otherwise, in sorted order.
    positive: Vec<u8>,
    starts: Vec<u32>,
}

impl Prepared {
    /// As [`Prepared::new`], with a binary task's positive class `positive` (0 or 1): the
    /// metrics of the positive class are about it.
    pub fn for_positive(
        task: Task,
        classes: usize,
        positive: usize,
        labels: &[f64],
        scores: &[f64],
    ) -> Prepared {
        match crate::metrics::oriented(task, positive, labels, scores) {
            Some((l, s)) => Prepared::new(task, classes, &l, &s),
            None => Prepared::new(task, classes, labels, scores),
        }
    }

    pub fn new(task: Task, classes: usize, labels: &[f64], scores: &[f64]) -> Prepared {
        let k = if task == Task::Binary { 2 } else { classes };
        let n = labels.len();
        let curve = |col: &dyn Fn(usize) -> f64, pos: &dyn Fn(usize) -> bool| {
            let order = crate::metrics::order_by_score(n, col);
            let mut starts = Vec::new();
            for (i, &r) in order.iter().enumerate() {
                if i == 0 || col(r as usize) != col(order[i - 1] as usize) {
                    starts.push(i as u32);
                }
            }
            let positive = order.iter().map(|&r| u8::from(pos(r as usize))).collect();
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
        let right_bit: Vec<u8> = predicted
            .iter()
            .zip(labels)
            .map(|(&p, &y)| u8::from(f64::from(p) == y))
            .collect();
        let label_bit: Vec<u8> = labels.iter().map(|&y| u8::from(y == 1.0)).collect();
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
            right_bit,
            label_bit,
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

    /// All metrics with every row counted once; the same numbers as `metrics::metrics`.
    pub fn metrics(&self) -> Metrics {
        self.values(&vec![1; self.labels.len()], true)
            .into_iter()
            .filter(|(_, v)| !v.is_nan())
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    /// The metrics in a fixed order (NaN where undefined) with each row counted `w[row]` times:
    /// the bootstrap's inner loop. Counts are small integers, so every count-based sum (and the
    /// AUC's pair counts) is exact integer arithmetic, whose one-cycle additions keep the loops
    /// fast; only log loss, Brier and regression errors are floating-point sums.
    fn values(&self, w: &[u8], with_auc: bool) -> Vec<(&'static str, f64)> {
        let wsum: u64 = w.iter().map(|&x| u64::from(x)).sum();
        if wsum == 0 {
            return Vec::new();
        }
        let wsum_f = wsum as f64;
        if self.task == Task::Regression {
            let mean = self
                .labels
                .iter()
                .zip(w)
                .map(|(y, &w)| y * f64::from(w))
                .sum::<f64>()
                / wsum_f;
            let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
            for i in 0..self.labels.len() {
                let wi = f64::from(w[i]);
                let e = self.scores[i] - self.labels[i];
                se += wi * e * e;
                ae += wi * e.abs();
                tot += wi * (self.labels[i] - mean).powi(2);
            }
            return vec![
                ("mae", ae / wsum_f),
                ("r2", if tot > 0.0 { 1.0 - se / tot } else { f64::NAN }),
                ("rmse", (se / wsum_f).sqrt()),
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
            // Counts as integers (a replicate's counts stay far below 2^32); only the log loss
            // and Brier sums are floating point.
            let n = self.labels.len();
            let (w, label_bit, right_bit) = (&w[..n], &self.label_bit[..n], &self.right_bit[..n]);
            let (mut pos, mut tp1, mut fp1, mut right) = (0u32, 0u32, 0u32, 0u32);
            for ((&wi, &y), &r) in w.iter().zip(label_bit).zip(right_bit) {
                let (wi, y, r) = (u32::from(wi), u32::from(y), u32::from(r));
                pos += wi * y;
                tp1 += wi * r * y;
                fp1 += wi * (1 - r) * (1 - y);
                right += wi * r;
            }
            // The two float sums in LANES independent partial sums, added in a fixed order at
            // the end: one running sum makes each row wait for the previous add.
            const LANES: usize = 8;
            let (mut ll_lanes, mut brier_lanes) = ([0.0f64; LANES], [0.0f64; LANES]);
            let ww = w.chunks_exact(LANES);
            let lls = self.row_log_loss[..n].chunks_exact(LANES);
            let brs = self.row_brier[..n].chunks_exact(LANES);
            let tail = n - n % LANES;
            for ((wc, lc), bc) in ww.zip(lls).zip(brs) {
                for l in 0..LANES {
                    let wl = f64::from(wc[l]);
                    ll_lanes[l] += wl * lc[l];
                    brier_lanes[l] += wl * bc[l];
                }
            }
            ll = ll_lanes.iter().sum();
            brier = brier_lanes.iter().sum();
            for i in tail..n {
                ll += f64::from(w[i]) * self.row_log_loss[i];
                brier += f64::from(w[i]) * self.row_brier[i];
            }
            correct = f64::from(right);
            let (pos, tp1, fp1) = (f64::from(pos), f64::from(tp1), f64::from(fp1));
            support = vec![wsum_f - pos, pos];
            tp = vec![correct - tp1, tp1];
            fp = vec![(wsum_f - correct) - fp1, fp1];
        } else {
            for i in 0..self.labels.len() {
                let wi = f64::from(w[i]);
                let y = self.labels[i] as usize;
                let p = self.predicted[i] as usize;
                let r = f64::from(self.right_bit[i]);
                support[y] += wi;
                tp[y] += wi * r;
                fp[p] += wi * (1.0 - r);
                correct += wi * r;
                ll += wi * self.row_log_loss[i];
                brier += wi * self.row_brier[i];
            }
        }
        let wsum = wsum_f;
        let present: Vec<usize> = (0..k).filter(|&c| support[c] > 0.0).collect();
        let f1 = |c: usize| {
            let d = 2.0 * tp[c] + fp[c] + (support[c] - tp[c]);
            if d == 0.0 { 0.0 } else { 2.0 * tp[c] / d }
        };
        let aucs: Vec<f64> = if with_auc {
            self.auc_orders
                .iter()
                .filter_map(|c| weighted_auc(c, w))
                .collect()
        } else {
            Vec::new()
        };
        let mut out = vec![
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
        ];
        if self.task == Task::Binary {
            let called = tp[1] + fp[1];
            out.push((
                "average_precision",
                if with_auc {
                    weighted_average_precision(&self.auc_orders[0], w).unwrap_or(f64::NAN)
                } else {
                    f64::NAN
                },
            ));
            out.push(("precision", if called > 0.0 { tp[1] / called } else { 0.0 }));
            out.push((
                "recall",
                if support[1] > 0.0 {
                    tp[1] / support[1]
                } else {
                    f64::NAN
                },
            ));
        }
        out
    }
}

/// Average precision of one curve with each row counted `w[row]` times (as
/// `metrics::average_precision`: tied scores ranked together, descending). One pass from the
/// top score down; the share of positives is applied at the end.
fn weighted_average_precision(c: &Curve, w: &[u8]) -> Option<f64> {
    let (mut tp, mut fp, mut sum) = (0u64, 0u64, 0.0f64);
    if c.starts.len() == c.order.len() {
        // No ties (the usual case for model scores): a row is a group.
        for (&r, &pos) in c.order.iter().zip(&c.positive).rev() {
            let wr = u64::from(w[r as usize]);
            if wr == 0 {
                continue;
            }
            if pos == 1 {
                tp += wr;
                sum += wr as f64 * (tp as f64 / (tp + fp) as f64);
            } else {
                fp += wr;
            }
        }
    } else {
        let mut end = c.order.len();
        for &start in c.starts.iter().rev() {
            let mut group_tp = 0u64;
            for j in start as usize..end {
                let wr = u64::from(w[c.order[j] as usize]);
                if c.positive[j] == 1 {
                    group_tp += wr;
                } else {
                    fp += wr;
                }
            }
            end = start as usize;
            tp += group_tp;
            if group_tp > 0 {
                sum += group_tp as f64 * (tp as f64 / (tp + fp) as f64);
            }
        }
    }
    (tp > 0).then(|| sum / tp as f64)
}

/// Two binary runs on the same rows, laid out for the paired bootstrap's inner loop: one pass
/// over a replicate's counts gives every metric's difference. The counts of right predictions
/// and true positives of both runs are integer sums of 0/1 columns; log loss and Brier enter
/// only as their per-row differences (candidate minus base), since a replicate's difference of
/// two weighted means over the same counts is the weighted mean of the differences.
struct PairedBinary {
    label_bit: Vec<u8>,
    right_base: Vec<u8>,
    tp_base: Vec<u8>,
    right_cand: Vec<u8>,
    tp_cand: Vec<u8>,
    d_log_loss: Vec<f64>,
    d_brier: Vec<f64>,
}

/// Partial sums of the paired bootstrap's float sums: row i adds to lane i % LANES.
const LANES: usize = 8;

/// Replicates of the paired bootstrap computed together (see `PairedBinary::group_deltas`).
const GROUP: usize = 8;
/// Rows per block of the grouped bootstrap: a multiple of 4 (a random number's rows) and of
/// LANES; a block's per-row differences (16 KB) stay in L1 while the group reads them.
const BLOCK: usize = 1024;

/// The counts of one block, per replicate of a group.
type GroupCounts = [[u8; BLOCK]; GROUP];
/// Lane sums, per replicate of a group.
type GroupLanes = [[f64; LANES]; GROUP];

/// Adds the first `rows` (a multiple of LANES) of a block to each replicate's lane sums:
/// `ll[r][i % LANES] += counts[r][i] * dl[i]`, `br` likewise with `db`, row after row.
#[inline(always)]
fn group_lane_sums_here(
    counts: &GroupCounts,
    dl: &[f64],
    db: &[f64],
    rows: usize,
    ll: &mut GroupLanes,
    br: &mut GroupLanes,
) {
    for c in (0..rows).step_by(LANES) {
        for r in 0..GROUP {
            for l in 0..LANES {
                let wf = f64::from(counts[r][c + l]);
                ll[r][l] += wf * dl[c + l];
                br[r][l] += wf * db[c + l];
            }
        }
    }
}

/// [`group_lane_sums_here`] in AVX-512, written out: a replicate's eight lanes are one register
/// per sum, the group's sixteen sums stay in registers, and each row chunk's differences are
/// loaded once for all of them. The same multiplies and adds in the same order: the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn group_lane_sums_avx512(
    counts: &GroupCounts,
    dl: &[f64],
    db: &[f64],
    rows: usize,
    ll: &mut GroupLanes,
    br: &mut GroupLanes,
) {
    use std::arch::x86_64::*;
    assert!(rows <= BLOCK && rows <= dl.len() && rows <= db.len() && rows.is_multiple_of(LANES));
    // SAFETY: each array holds LANES (8) f64, one 8-wide load.
    let mut al: [__m512d; GROUP] =
        std::array::from_fn(|r| unsafe { _mm512_loadu_pd(ll[r].as_ptr()) });
    let mut ab: [__m512d; GROUP] =
        std::array::from_fn(|r| unsafe { _mm512_loadu_pd(br[r].as_ptr()) });
    for c in (0..rows).step_by(LANES) {
        // SAFETY: c + LANES <= rows <= the lengths of dl and db, asserted above.
        let (x, y) = unsafe {
            (
                _mm512_loadu_pd(dl.as_ptr().add(c)),
                _mm512_loadu_pd(db.as_ptr().add(c)),
            )
        };
        for r in 0..GROUP {
            let w8 = u64::from_le_bytes(counts[r][c..c + LANES].try_into().expect("LANES counts"));
            let w = _mm512_cvtepi64_pd(_mm512_cvtepu8_epi64(_mm_cvtsi64_si128(w8 as i64)));
            al[r] = _mm512_add_pd(al[r], _mm512_mul_pd(w, x));
            ab[r] = _mm512_add_pd(ab[r], _mm512_mul_pd(w, y));
        }
    }
    for r in 0..GROUP {
        // SAFETY: each array holds 8 f64, one 8-wide store.
        unsafe {
            _mm512_storeu_pd(ll[r].as_mut_ptr(), al[r]);
            _mm512_storeu_pd(br[r].as_mut_ptr(), ab[r]);
        }
    }
}

/// [`group_lane_sums_here`] in AVX2, written out: two replicates at a time (their eight sums
/// of two registers each fit AVX2's sixteen registers), each chunk's differences loaded once
/// for both. The same multiplies and adds in the same order: the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn group_lane_sums_avx2(
    counts: &GroupCounts,
    dl: &[f64],
    db: &[f64],
    rows: usize,
    ll: &mut GroupLanes,
    br: &mut GroupLanes,
) {
    use std::arch::x86_64::*;
    assert!(rows <= BLOCK && rows <= dl.len() && rows <= db.len() && rows.is_multiple_of(LANES));
    for pair in (0..GROUP).step_by(2) {
        // Per replicate of the pair: [ll low, ll high, br low, br high].
        // SAFETY: each array holds 8 f64; the loads read its halves.
        let mut acc: [[__m256d; 4]; 2] = std::array::from_fn(|k| unsafe {
            let (l, b) = (ll[pair + k].as_ptr(), br[pair + k].as_ptr());
            [
                _mm256_loadu_pd(l),
                _mm256_loadu_pd(l.add(4)),
                _mm256_loadu_pd(b),
                _mm256_loadu_pd(b.add(4)),
            ]
        });
        for c in (0..rows).step_by(LANES) {
            // SAFETY: c + LANES <= rows <= the lengths of dl and db, asserted above.
            let (x_lo, x_hi, y_lo, y_hi) = unsafe {
                let (p, q) = (dl.as_ptr().add(c), db.as_ptr().add(c));
                (
                    _mm256_loadu_pd(p),
                    _mm256_loadu_pd(p.add(4)),
                    _mm256_loadu_pd(q),
                    _mm256_loadu_pd(q.add(4)),
                )
            };
            for (k, a) in acc.iter_mut().enumerate() {
                let w8 = u64::from_le_bytes(
                    counts[pair + k][c..c + LANES]
                        .try_into()
                        .expect("LANES counts"),
                );
                let w8 = _mm_cvtsi64_si128(w8 as i64);
                let w_lo = _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(w8));
                let w_hi = _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_srli_si128::<4>(w8)));
                a[0] = _mm256_add_pd(a[0], _mm256_mul_pd(w_lo, x_lo));
                a[1] = _mm256_add_pd(a[1], _mm256_mul_pd(w_hi, x_hi));
                a[2] = _mm256_add_pd(a[2], _mm256_mul_pd(w_lo, y_lo));
                a[3] = _mm256_add_pd(a[3], _mm256_mul_pd(w_hi, y_hi));
            }
        }
        for (k, a) in acc.iter().enumerate() {
            // SAFETY: each array holds 8 f64; the stores write its halves.
            unsafe {
                let (l, b) = (ll[pair + k].as_mut_ptr(), br[pair + k].as_mut_ptr());
                _mm256_storeu_pd(l, a[0]);
                _mm256_storeu_pd(l.add(4), a[1]);
                _mm256_storeu_pd(b, a[2]);
                _mm256_storeu_pd(b.add(4), a[3]);
            }
        }
    }
}

/// Candidate minus base of every metric but the AUC from a replicate's sums: the weighted
/// counts `[total, positives, right and true positives of the base, of the candidate]` and the
/// weighted sums of the log loss and Brier differences; empty when every count is 0.
fn metric_deltas(ints: [u32; 6], ll: f64, br: f64) -> Vec<(&'static str, f64)> {
    let [total, pos, rb, tb, rc, tc] = ints;
    if total == 0 {
        return Vec::new();
    }
    let (t, p) = (f64::from(total), f64::from(pos));
    let b = binary_counts_metrics(t, p, f64::from(rb), f64::from(tb));
    let c = binary_counts_metrics(t, p, f64::from(rc), f64::from(tc));
    vec![
        ("accuracy", c[0] - b[0]),
        ("auc", f64::NAN),
        ("balanced_accuracy", c[1] - b[1]),
        ("brier", br / t),
        ("f1", c[2] - b[2]),
        ("log_loss", ll / t),
        // Resampled apart (it needs the score order): see `compare_metrics`.
        ("average_precision", f64::NAN),
        ("precision", c[3] - b[3]),
        ("recall", c[4] - b[4]),
    ]
}

/// A binary run's count-based metrics from its weighted counts: total `w`, positives `pos`,
/// right predictions `right`, true positives `tp` (as `Prepared::values` defines them):
/// accuracy, balanced accuracy, F1, precision and recall.
fn binary_counts_metrics(w: f64, pos: f64, right: f64, tp: f64) -> [f64; 5] {
    let fp = w - pos - right + tp;
    let support = [w - pos, pos];
    let tps = [right - tp, tp];
    // The mean recall over the classes present (no allocation: this runs twice per replicate).
    let (mut recall_sum, mut present) = (0.0, 0.0);
    for c in 0..2 {
        if support[c] > 0.0 {
            recall_sum += tps[c] / support[c];
            present += 1.0;
        }
    }
    let balanced = recall_sum / present;
    let d = 2.0 * tp + fp + (pos - tp);
    let f1 = if d == 0.0 { 0.0 } else { 2.0 * tp / d };
    let called = tp + fp;
    let precision = if called > 0.0 { tp / called } else { 0.0 };
    let recall = if pos > 0.0 { tp / pos } else { f64::NAN };
    [right / w, balanced, f1, precision, recall]
}

impl PairedBinary {
    fn new(base: &Prepared, cand: &Prepared) -> PairedBinary {
        let and = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(x, y)| x & y).collect();
        let minus = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x - y).collect();
        PairedBinary {
            label_bit: base.label_bit.clone(),
            right_base: base.right_bit.clone(),
            tp_base: and(&base.right_bit, &base.label_bit),
            right_cand: cand.right_bit.clone(),
            tp_cand: and(&cand.right_bit, &cand.label_bit),
            d_log_loss: minus(&cand.row_log_loss, &base.row_log_loss),
            d_brier: minus(&cand.row_brier, &base.row_brier),
        }
    }

    /// Candidate minus base of every metric but the AUC, each row counted `w[row]` times, in
    /// `Prepared::values`' order, one replicate at a time: the definition the grouped
    /// bootstrap ([`Self::group_deltas`]) is tested against, bit for bit.
    #[cfg(test)]
    fn deltas_here(&self, w: &[u8]) -> Vec<(&'static str, f64)> {
        let n = self.label_bit.len();
        let w = &w[..n];
        let mut ints = [0u32; 6];
        for i in 0..n {
            let wi = u32::from(w[i]);
            ints[0] += wi;
            ints[1] += wi * u32::from(self.label_bit[i]);
            ints[2] += wi * u32::from(self.right_base[i]);
            ints[3] += wi * u32::from(self.tp_base[i]);
            ints[4] += wi * u32::from(self.right_cand[i]);
            ints[5] += wi * u32::from(self.tp_cand[i]);
        }
        // The float sums in LANES partial sums (row i in lane i % LANES, in row order), the
        // lanes added in order, then the last `n % LANES` rows one by one.
        let tail = n - n % LANES;
        let (mut ll, mut br) = ([0.0f64; LANES], [0.0f64; LANES]);
        for i in 0..tail {
            let wf = f64::from(w[i]);
            ll[i % LANES] += wf * self.d_log_loss[i];
            br[i % LANES] += wf * self.d_brier[i];
        }
        let (mut ll, mut br): (f64, f64) = (ll.iter().sum(), br.iter().sum());
        for i in tail..n {
            ll += f64::from(w[i]) * self.d_log_loss[i];
            br += f64::from(w[i]) * self.d_brier[i];
        }
        metric_deltas(ints, ll, br)
    }

    /// The deltas of replicates `first..first + count` (each with its counts from
    /// [`replicate_seed`] and [`poisson_counts`]), computed together a block of rows at a time:
    /// one read of a block's per-row differences serves every replicate of the group, and their
    /// sums are independent chains the CPU runs side by side (one replicate at a time read 256
    /// KB per replicate on Adult and waited on each add). Each replicate's sums are added in
    /// the same order as the one-replicate definition the tests hold it to: the same values,
    /// bit for bit.
    fn group_deltas(&self, seed: u64, first: usize, count: usize) -> Vec<Vec<(&'static str, f64)>> {
        #[cfg(target_arch = "x86_64")]
        if avx512() {
            // SAFETY: this CPU has the AVX-512 subsets the function is compiled for, checked.
            return unsafe { self.group_deltas_avx512(seed, first, count) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: this CPU has AVX2, checked just above.
            return unsafe { self.group_deltas_avx2(seed, first, count) };
        }
        self.group_deltas_here(seed, first, count)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    fn group_deltas_avx512(
        &self,
        seed: u64,
        first: usize,
        count: usize,
    ) -> Vec<Vec<(&'static str, f64)>> {
        // The closure is compiled with this function's features, so it may call the kernel.
        self.group_deltas_with(seed, first, count, |c, x, y, n, l, b| {
            group_lane_sums_avx512(c, x, y, n, l, b)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn group_deltas_avx2(
        &self,
        seed: u64,
        first: usize,
        count: usize,
    ) -> Vec<Vec<(&'static str, f64)>> {
        self.group_deltas_with(seed, first, count, |c, x, y, n, l, b| {
            group_lane_sums_avx2(c, x, y, n, l, b)
        })
    }

    fn group_deltas_here(
        &self,
        seed: u64,
        first: usize,
        count: usize,
    ) -> Vec<Vec<(&'static str, f64)>> {
        self.group_deltas_with(seed, first, count, group_lane_sums_here)
    }

    /// The grouped deltas, with the float lane sums from `lane_sums`.
    #[inline(always)]
    fn group_deltas_with(
        &self,
        seed: u64,
        first: usize,
        count: usize,
        lane_sums: impl Fn(&GroupCounts, &[f64], &[f64], usize, &mut GroupLanes, &mut GroupLanes),
    ) -> Vec<Vec<(&'static str, f64)>> {
        assert!(count <= GROUP);
        let n = self.label_bit.len();
        let tail = n - n % LANES;
        let mut rngs: Vec<SplitMix64> = (first..first + count)
            .map(|b| SplitMix64::new(replicate_seed(seed, b as u64)))
            .collect();
        let mut counts = [[0u8; BLOCK]; GROUP];
        let mut ints = [[0u32; 6]; GROUP];
        let mut ll = [[0.0f64; LANES]; GROUP];
        let mut br = [[0.0f64; LANES]; GROUP];
        // The counts of the last `n % LANES` rows, added one by one after the lanes.
        let mut tail_counts = [[0u8; LANES]; GROUP];
        for start in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - start);
            let rows = start..start + len;
            let (label, rb, tb) = (
                &self.label_bit[rows.clone()],
                &self.right_base[rows.clone()],
                &self.tp_base[rows.clone()],
            );
            let (rc, tc) = (&self.right_cand[rows.clone()], &self.tp_cand[rows.clone()]);
            for (r, rng) in rngs.iter_mut().enumerate() {
                let w = &mut counts[r][..len.next_multiple_of(4)];
                poisson_fill(rng, w);
                let w = &w[..len];
                // In locals, which the compiler keeps in vector registers.
                let (mut t, mut p, mut b1, mut b2, mut c1, mut c2) = (0u32, 0, 0, 0, 0, 0);
                for i in 0..len {
                    let wi = u32::from(w[i]);
                    t += wi;
                    p += wi * u32::from(label[i]);
                    b1 += wi * u32::from(rb[i]);
                    b2 += wi * u32::from(tb[i]);
                    c1 += wi * u32::from(rc[i]);
                    c2 += wi * u32::from(tc[i]);
                }
                let s = &mut ints[r];
                s[0] += t;
                s[1] += p;
                s[2] += b1;
                s[3] += b2;
                s[4] += c1;
                s[5] += c2;
            }
            // The float sums: this block's rows below `tail` in lanes, chunk by chunk, every
            // replicate of the group per chunk (all GROUP of them, a fixed count the compiler
            // unrolls; the counts of replicates past `count` stay 0).
            let full = len.min(tail.saturating_sub(start));
            let (dl, db) = (&self.d_log_loss[start..], &self.d_brier[start..]);
            lane_sums(&counts, dl, db, full, &mut ll, &mut br);
            for i in full..len {
                for r in 0..count {
                    tail_counts[r][start + i - tail] = counts[r][i];
                }
            }
        }
        (0..count)
            .map(|r| {
                let (mut l, mut b): (f64, f64) = (ll[r].iter().sum(), br[r].iter().sum());
                for i in tail..n {
                    let wf = f64::from(tail_counts[r][i - tail]);
                    l += wf * self.d_log_loss[i];
                    b += wf * self.d_brier[i];
                }
                metric_deltas(ints[r], l, b)
            })
            .collect()
    }
}

/// AUC over presorted rows with row counts, ties counted half; `None` when a class is absent.
/// Pair counts are integers: exact, and a one-cycle add carries the running count of negatives.
fn weighted_auc(c: &Curve, w: &[u8]) -> Option<f64> {
    let (mut neg_below, mut pos_total) = (0u64, 0u64);
    // Twice the area, so tied pairs (counted half) stay integers.
    let mut area2 = 0u64;
    if c.starts.len() == c.order.len() {
        // No ties (the usual case for model scores): one tight pass, no groups.
        for (&r, &pos) in c.order.iter().zip(&c.positive) {
            let wr = u64::from(w[r as usize]);
            let p = u64::from(pos);
            area2 += wr * p * neg_below;
            neg_below += wr * (1 - p);
            pos_total += wr * p;
        }
        area2 *= 2;
    } else {
        for (g, &s) in c.starts.iter().enumerate() {
            let e = c.starts.get(g + 1).map_or(c.order.len(), |&x| x as usize);
            let (mut pt, mut nt) = (0u64, 0u64);
            for j in s as usize..e {
                let wr = u64::from(w[c.order[j] as usize]);
                let p = u64::from(c.positive[j]);
                pt += wr * p;
                nt += wr * (1 - p);
            }
            area2 += pt * (2 * neg_below + nt);
            neg_below += nt;
            pos_total += pt;
        }
    }
    let neg_total = neg_below;
    (pos_total > 0 && neg_total > 0)
        .then(|| area2 as f64 / (2.0 * pos_total as f64 * neg_total as f64))
}

/// A well-mixed start for replicate `b`. SplitMix64 walks a fixed sequence, so starts that differ
/// by its increment (`seed ^ b * golden`) give shifted copies of one stream: nearly identical
/// resamples and far too narrow intervals. Hashing puts each replicate at an unrelated point.
fn replicate_seed(seed: u64, b: u64) -> u64 {
    let mut h = SplitMix64::new(seed);
    h.next_u64();
    SplitMix64::new(h.next_u64() ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// The standard normal's 97.5% quantile.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Midranks (1-based, ties get their average rank) of the rows `order` lists in ascending score
/// order, written to `out[row]`.
fn midranks(order: &[u32], score: &[f64], out: &mut [f64]) {
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && score[order[j] as usize] == score[order[i] as usize] {
            j += 1;
        }
        let rank = (i + 1 + j) as f64 / 2.0;
        for &r in &order[i..j] {
            out[r as usize] = rank;
        }
        i = j;
    }
}

/// DeLong, DeLong & Clarke-Pearson (Biometrics 44(3), 1988): the two runs' AUCs and the
/// variance of their difference on the same rows, from the structural components of each AUC,
/// computed with midranks as in Sun & Xu (IEEE Signal Processing Letters 21(11), 2014):
/// V10 of a positive = (rank among all - rank among positives) / negatives, V01 of a negative =
/// 1 - (rank among all - rank among negatives) / positives. `None` when a class is absent.
pub(crate) fn delong_paired(
    a: &Curve,
    b: &Curve,
    sa: &[f64],
    sb: &[f64],
) -> Option<(f64, f64, f64)> {
    let n = a.order.len();
    let mut positive = vec![false; n];
    for (&r, &p) in a.order.iter().zip(&a.positive) {
        positive[r as usize] = p == 1;
    }
    let m_pos = positive.iter().filter(|&&p| p).count();
    let m_neg = n - m_pos;
    if m_pos < 2 || m_neg < 2 {
        return None;
    }
    // Structural components of one run: (V10 per positive, V01 per negative), in row order.
    let components = |c: &Curve, s: &[f64]| {
        let mut all = vec![0.0; n];
        midranks(&c.order, s, &mut all);
        let pos_order: Vec<u32> = c
            .order
            .iter()
            .copied()
            .filter(|&r| positive[r as usize])
            .collect();
        let neg_order: Vec<u32> = c
            .order
            .iter()
            .copied()
            .filter(|&r| !positive[r as usize])
            .collect();
        let mut within = vec![0.0; n];
        midranks(&pos_order, s, &mut within);
        midranks(&neg_order, s, &mut within);
        let mut v10 = Vec::with_capacity(m_pos);
        let mut v01 = Vec::with_capacity(m_neg);
        for r in 0..n {
            if positive[r] {
                v10.push((all[r] - within[r]) / m_neg as f64);
            } else {
                v01.push(1.0 - (all[r] - within[r]) / m_pos as f64);
            }
        }
        (v10, v01)
    };
    let (a10, a01) = components(a, sa);
    let (b10, b01) = components(b, sb);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (auc_a, auc_b) = (mean(&a10), mean(&b10));
    // Variance of the difference: the covariance structure collapses to the sample variance of
    // the per-row differences of the components.
    let var_of_diff = |x: &[f64], y: &[f64]| {
        let d: Vec<f64> = x.iter().zip(y).map(|(p, q)| p - q).collect();
        let md = mean(&d);
        d.iter().map(|v| (v - md).powi(2)).sum::<f64>() / (d.len() - 1) as f64
    };
    let var = var_of_diff(&a10, &b10) / m_pos as f64 + var_of_diff(&a01, &b01) / m_neg as f64;
    Some((auc_a, auc_b, var))
}

/// `floor(P(X <= k) * 65536)` for X ~ Poisson(1), k = 0..6.
const POISSON1_CDF16: [u16; 7] = [24109, 48218, 60273, 64291, 65296, 65497, 65530];

/// Bootstrap counts by the Poisson bootstrap: each row is drawn Poisson(1) times, independently
/// (Hanley & MacGibbon 2006, "Creating non-parametric bootstrap samples using Poisson
/// frequencies"; Chamandy et al. 2012 use it at scale). It has the multinomial bootstrap's
/// asymptotics, and is generated in one sequential pass, four rows per random number, where
/// the multinomial needs a random scatter of n draws. Counts above 7 (probability 1e-5) are 7.
pub fn poisson_counts(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: this CPU has the AVX-512 subsets the function is compiled for, checked.
        return unsafe { poisson_counts_avx512(rng, n) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: this CPU has AVX2, checked just above.
        return unsafe { poisson_counts_avx2(rng, n) };
    }
    poisson_counts_here(rng, n)
}

/// [`poisson_counts`] compiled for AVX2: twice the lanes for the random numbers' 64-bit
/// arithmetic and the counts' 16-bit compares. The same values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn poisson_counts_avx2(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    poisson_counts_here(rng, n)
}

/// [`poisson_counts`] compiled for AVX-512: 64-bit multiplies in one instruction (AVX2 has
/// none, and builds each of SplitMix64's from three 32-bit ones), and eight lanes of them.
/// The same values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn poisson_counts_avx512(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    poisson_counts_here(rng, n)
}

/// Whether this CPU has the AVX-512 subsets the bootstrap's AVX-512 builds use.
#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

#[inline(always)]
fn poisson_counts_here(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    // Four rows per random number, its 16-bit quarters from the lowest. Each stage is a loop
    // without a dependency between iterations, which the compiler vectorizes: the random
    // numbers (`SplitMix64::fill`), their quarters, and each quarter's count by comparing it
    // with the seven thresholds (a 64K-entry table took a load per row, from L2: 2.5x slower
    // than this in `bench/turn_ab.py`'s `diff.bootstrap_s`).
    let mut counts = vec![0u8; n.next_multiple_of(4)];
    poisson_fill(rng, &mut counts);
    counts.truncate(n);
    counts
}

/// The next `out.len()` (a multiple of 4) Poisson counts of `rng`'s sequence: filling a vector
/// in pieces, one after another, gives the values of filling it at once.
#[inline(always)]
fn poisson_fill(rng: &mut SplitMix64, out: &mut [u8]) {
    const WORDS: usize = 64;
    debug_assert!(out.len().is_multiple_of(4));
    let mut words = [0u64; WORDS];
    let mut quarters = [0u16; 4 * WORDS];
    for block in out.chunks_mut(4 * WORDS) {
        let words = &mut words[..block.len() / 4];
        rng.fill(words);
        for (q, w) in quarters.chunks_exact_mut(4).zip(words.iter()) {
            for (l, x) in q.iter_mut().enumerate() {
                *x = (w >> (16 * l)) as u16;
            }
        }
        for (c, &u) in block.iter_mut().zip(&quarters) {
            *c = POISSON1_CDF16.iter().map(|&t| u8::from(u >= t)).sum();
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricDelta {
    pub base: f64,
    pub candidate: f64,
    pub delta: f64,
    /// 95% interval of `delta`: paired bootstrap; for a binary task's AUC, DeLong's.
    pub ci95: [f64; 2],
}

/// A binary task's AUC of both runs with DeLong's 95% interval of the difference.
fn delong_delta(base: &Prepared, cand: &Prepared) -> Option<MetricDelta> {
    let (b, c, var) = delong_paired(
        &base.auc_orders[0],
        &cand.auc_orders[0],
        &base.scores,
        &cand.scores,
    )?;
    let half = Z95 * var.max(0.0).sqrt();
    Some(MetricDelta {
        base: b,
        candidate: c,
        delta: c - b,
        ci95: [c - b - half, c - b + half],
    })
}

/// One metric of both runs with the interval of the difference: for a binary task's AUC by
/// DeLong alone (no resampling at all), otherwise as [`compare_metrics`] gives it.
pub fn compare_metric(
    base: &Prepared,
    cand: &Prepared,
    metric: &str,
    resamples: usize,
    seed: u64,
) -> Option<MetricDelta> {
    if metric == "auc" && base.task == Task::Binary {
        return delong_delta(base, cand);
    }
    compare_metrics_with(base, cand, resamples, seed, metric == "average_precision").remove(metric)
}

/// Percentile bootstrap 95% intervals of every metric of one run on its rows (the Poisson
/// bootstrap with `resamples` replicates from `seed`): a model card's intervals, where there is
/// no second run to pair with. A metric undefined in every replicate has no interval.
pub fn metric_intervals(
    run: &Prepared,
    resamples: usize,
    seed: u64,
) -> std::collections::BTreeMap<String, [f64; 2]> {
    let n = run.labels.len();
    let replicates: Vec<Vec<(&'static str, f64)>> = (0..resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng = SplitMix64::new(replicate_seed(seed, b as u64));
            run.values(&poisson_counts(&mut rng, n), true)
        })
        .collect();
    let mut out = std::collections::BTreeMap::new();
    for name in run.metrics().into_keys() {
        let mut vs: Vec<f64> = replicates
            .iter()
            .filter_map(|r| r.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
            .filter(|v| !v.is_nan())
            .collect();
        if vs.is_empty() {
            continue;
        }
        vs.sort_by(f64::total_cmp);
        let q = |p: f64| vs[((vs.len() - 1) as f64 * p).round() as usize];
        out.insert(name, [q(0.025), q(0.975)]);
    }
    out
}

/// The most bootstrap replicates for a binary task's average precision interval in
/// [`compare_metrics`].
pub const AP_RESAMPLES: usize = 200;

/// Every metric of both runs with the paired bootstrap interval of the difference, but a
/// binary task's average precision (see [`compare_metrics_with`]).
pub fn compare_metrics(
    base: &Prepared,
    cand: &Prepared,
    resamples: usize,
    seed: u64,
) -> std::collections::BTreeMap<String, MetricDelta> {
    compare_metrics_with(base, cand, resamples, seed, false)
}

/// Every metric of both runs with the paired bootstrap interval of the difference; a binary
/// task's average precision only with `average_precision`, since its replicates cost more than
/// all the others together (each walks both runs' rows in score order): asked for when the
/// dataset chose its positive class or the gate decides on it.
pub fn compare_metrics_with(
    base: &Prepared,
    cand: &Prepared,
    resamples: usize,
    seed: u64,
    average_precision: bool,
) -> std::collections::BTreeMap<String, MetricDelta> {
    let n = base.labels.len();
    let mb = base.metrics();
    let mc = cand.metrics();
    // Binary AUC: DeLong's analytic interval instead of resampling the curve (ALGORITHMS.md).
    let delong = base.task == Task::Binary;
    let auc_delta = if delong {
        delong_delta(base, cand)
    } else {
        None
    };
    let deltas: Vec<Vec<(&'static str, f64)>> = if delong {
        let paired = PairedBinary::new(base, cand);
        (0..resamples.div_ceil(GROUP))
            .into_par_iter()
            .flat_map_iter(|g| {
                let first = g * GROUP;
                paired.group_deltas(seed, first, GROUP.min(resamples - first))
            })
            .collect()
    } else {
        (0..resamples)
            .into_par_iter()
            .map(|b| {
                let mut rng = SplitMix64::new(replicate_seed(seed, b as u64));
                let w = poisson_counts(&mut rng, n);
                let (x, y) = (base.values(&w, true), cand.values(&w, true));
                x.iter()
                    .zip(y)
                    .map(|((k, b), (_, c))| (*k, c - b))
                    .collect()
            })
            .collect()
    };
    // Binary average precision needs each replicate's score order, which the paired pass does
    // not keep: its replicates are drawn here, as the generic path draws them, at most
    // [`AP_RESAMPLES`] of them (each walks both runs' rows in score order: with all of them
    // `gyre diff` took 0.22 s instead of 0.03 s on Adult's two suites).
    let ap_deltas: Vec<f64> = if delong && average_precision {
        (0..resamples.min(AP_RESAMPLES))
            .into_par_iter()
            .filter_map(|b| {
                let mut rng = SplitMix64::new(replicate_seed(seed, b as u64));
                let w = poisson_counts(&mut rng, n);
                let x = weighted_average_precision(&base.auc_orders[0], &w)?;
                let y = weighted_average_precision(&cand.auc_orders[0], &w)?;
                Some(y - x)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut out = std::collections::BTreeMap::new();
    for (name, &b) in &mb {
        let Some(&c) = mc.get(name) else { continue };
        if delong && name == "average_precision" && !average_precision {
            continue;
        }
        let mut ds: Vec<f64> = if delong && name == "average_precision" {
            ap_deltas.clone()
        } else {
            deltas
                .iter()
                .filter_map(|d| d.iter().find(|(k, _)| k == name).map(|(_, v)| *v))
                .filter(|v| !v.is_nan())
                .collect()
        };
        ds.sort_by(f64::total_cmp);
        if name == "auc" && delong {
            if let Some(d) = &auc_delta {
                out.insert(name.clone(), d.clone());
            }
            continue;
        }
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
    fn delong_agrees_with_the_auc_and_with_a_bootstrap_of_it() {
        let mut rng = SplitMix64::new(11);
        let n = 3000;
        let labels: Vec<f64> = (0..n).map(|_| rng.below(2) as f64).collect();
        // Scores with ties (rounded), so midranks matter.
        let noisy = |rng: &mut SplitMix64, y: f64, spread: f64| {
            ((y + rng.below(1000) as f64 / spread) * 50.0).round() / 50.0
        };
        let a: Vec<f64> = labels.iter().map(|&y| noisy(&mut rng, y, 700.0)).collect();
        let b: Vec<f64> = labels.iter().map(|&y| noisy(&mut rng, y, 500.0)).collect();
        let pa = Prepared::new(Task::Binary, 2, &labels, &a);
        let pb = Prepared::new(Task::Binary, 2, &labels, &b);
        let (auc_a, auc_b, var) =
            delong_paired(&pa.auc_orders[0], &pb.auc_orders[0], &a, &b).unwrap();
        assert!((auc_a - pa.metrics()["auc"]).abs() < 1e-12);
        assert!((auc_b - pb.metrics()["auc"]).abs() < 1e-12);
        // The bootstrap's spread of the AUC difference, with the multinomial resample.
        let mut diffs = Vec::new();
        for rep in 0..400 {
            let mut r = SplitMix64::new(replicate_seed(5, rep));
            let mut w = vec![0u8; n];
            for _ in 0..n {
                w[r.below(n as u64) as usize] += 1;
            }
            let x = weighted_auc(&pa.auc_orders[0], &w).unwrap();
            let y = weighted_auc(&pb.auc_orders[0], &w).unwrap();
            diffs.push(y - x);
        }
        let m = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let sd =
            (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64).sqrt();
        let ratio = var.sqrt() / sd;
        assert!(
            (0.85..1.15).contains(&ratio),
            "DeLong sd {} vs bootstrap sd {sd}",
            var.sqrt()
        );
        // And compare_metrics reports DeLong's interval around the delta.
        let cmp = compare_metrics(&pa, &pb, 50, 1);
        let auc = &cmp["auc"];
        let half = (auc.ci95[1] - auc.ci95[0]) / 2.0;
        assert!((half - Z95 * var.sqrt()).abs() < 1e-12);
        assert!((auc.delta - (auc_b - auc_a)).abs() < 1e-12);
    }

    #[test]
    fn poisson_counts_are_each_random_numbers_quarters_counted_in_order() {
        // The plain definition: one `next_u64` per four rows, lowest quarter first, each quarter
        // counted against the thresholds. Both compiled versions must give exactly this.
        for n in [0, 1, 3, 4, 255, 256, 257, 1023, 5000] {
            let mut rng = SplitMix64::new(n as u64 + 11);
            let mut plain = Vec::new();
            while plain.len() < n {
                let bits = rng.next_u64();
                for l in 0..4 {
                    let u = (bits >> (16 * l)) as u16;
                    plain.push(POISSON1_CDF16.iter().filter(|&&t| u >= t).count() as u8);
                }
            }
            plain.truncate(n);
            let mut a = SplitMix64::new(n as u64 + 11);
            assert_eq!(poisson_counts(&mut a, n), plain, "n {n}");
            let mut b = SplitMix64::new(n as u64 + 11);
            assert_eq!(poisson_counts_here(&mut b, n), plain, "n {n}");
            // Each build this CPU can run, whichever `poisson_counts` chose.
            #[cfg(target_arch = "x86_64")]
            {
                let seeded = || SplitMix64::new(n as u64 + 11);
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 checked just above.
                    let got = unsafe { poisson_counts_avx2(&mut seeded(), n) };
                    assert_eq!(got, plain, "avx2, n {n}");
                }
                if avx512() {
                    // SAFETY: the AVX-512 subsets checked just above.
                    let got = unsafe { poisson_counts_avx512(&mut seeded(), n) };
                    assert_eq!(got, plain, "avx512, n {n}");
                }
            }
            // And the generator is left where the plain one is.
            assert_eq!(a.next_u64(), rng.next_u64());
        }
    }

    #[test]
    fn rows_by_score_are_a_stable_sort_by_total_order() {
        let mut rng = SplitMix64::new(8);
        let specials = [
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
        ];
        for n in [0, 1, 2, 17, 1000] {
            let scores: Vec<f64> = (0..n)
                .map(|_| match rng.below(4) {
                    0 => specials[rng.below(specials.len() as u64) as usize],
                    1 => rng.below(5) as f64 / 4.0,
                    _ => (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5,
                })
                .collect();
            let mut want: Vec<u32> = (0..n as u32).collect();
            want.sort_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
            assert_eq!(
                crate::metrics::order_by_score(n, |r| scores[r]),
                want,
                "n {n}"
            );
        }
    }

    #[test]
    fn poisson_counts_have_poisson_frequencies() {
        let mut rng = SplitMix64::new(9);
        let w = poisson_counts(&mut rng, 400_000);
        let n = w.len() as f64;
        let share = |k: u8| w.iter().filter(|&&x| x == k).count() as f64 / n;
        let e = std::f64::consts::E;
        assert!((share(0) - 1.0 / e).abs() < 0.003);
        assert!((share(1) - 1.0 / e).abs() < 0.003);
        assert!((share(2) - 0.5 / e).abs() < 0.003);
        assert!((share(3) - 1.0 / (6.0 * e)).abs() < 0.002);
        let mean = w.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        assert!((mean - 1.0).abs() < 0.005, "{mean}");
    }

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

    /// The bootstrap's fast metrics with unit weights equal `metrics::metrics`.
    fn assert_prepared_matches_plain(task: Task, classes: usize, labels: &[f64], scores: &[f64]) {
        let plain = metrics(&Scores {
            task,
            classes,
            labels,
            scores,
            weights: None,
        });
        let fast = Prepared::new(task, classes, labels, scores).metrics();
        for (k, v) in &plain {
            assert!((v - fast[k]).abs() < 1e-12, "{k}: {v} vs {}", fast[k]);
        }
    }

    #[test]
    fn prepared_metrics_equal_plain_metrics() {
        let mut rng = SplitMix64::new(1);
        let n = 500;
        let labels: Vec<f64> = (0..n).map(|_| (rng.below(2)) as f64).collect();
        let scores: Vec<f64> = (0..n)
            .map(|i| ((rng.below(1000) as f64 / 1000.0) + labels[i]) / 2.0)
            .collect();
        assert_prepared_matches_plain(Task::Binary, 2, &labels, &scores);
    }

    #[test]
    fn prepared_metrics_equal_plain_metrics_without_ties_and_for_multiclass() {
        let mut rng = SplitMix64::new(3);
        let n = 777;
        let labels: Vec<f64> = (0..n).map(|_| rng.below(2) as f64).collect();
        // Distinct scores: the AUC's no-ties pass.
        let scores: Vec<f64> = (0..n)
            .map(|i| (labels[i] + (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) / 2.0)
            .collect();
        assert_prepared_matches_plain(Task::Binary, 2, &labels, &scores);
        let k = 3;
        let labels: Vec<f64> = (0..n).map(|_| rng.below(k) as f64).collect();
        let mut scores = Vec::new();
        for &y in &labels {
            let raw: Vec<f64> = (0..k)
                .map(|c| rng.below(100) as f64 + if c as f64 == y { 60.0 } else { 1.0 })
                .collect();
            let total: f64 = raw.iter().sum();
            scores.extend(raw.iter().map(|r| r / total));
        }
        assert_prepared_matches_plain(Task::Multiclass, k as usize, &labels, &scores);
    }

    #[test]
    fn paired_binary_deltas_equal_the_difference_of_each_runs_values() {
        // The bootstrap's fused pass against the two runs computed apart, on resamples (ties
        // and absent classes included): counts exactly, float means to rounding.
        let mut rng = SplitMix64::new(5);
        let n = 1001;
        let labels: Vec<f64> = (0..n).map(|_| rng.below(2) as f64).collect();
        let a: Vec<f64> = (0..n).map(|_| rng.below(20) as f64 / 20.0).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.below(1000) as f64 / 1000.0).collect();
        let (pa, pb) = (
            Prepared::new(Task::Binary, 2, &labels, &a),
            Prepared::new(Task::Binary, 2, &labels, &b),
        );
        let paired = PairedBinary::new(&pa, &pb);
        let only_negatives: Vec<u8> = labels.iter().map(|&y| u8::from(y == 0.0)).collect();
        for w in [
            poisson_counts(&mut rng, n),
            poisson_counts(&mut rng, n),
            only_negatives,
        ] {
            let (x, y) = (pa.values(&w, false), pb.values(&w, false));
            let got = paired.deltas_here(&w);
            assert_eq!(got.len(), x.len());
            for ((name, d), ((k, vb), (_, vc))) in got.iter().zip(x.iter().zip(&y)) {
                assert_eq!(name, k);
                let want = vc - vb;
                if want.is_nan() {
                    assert!(d.is_nan(), "{name}");
                } else if ["log_loss", "brier"].contains(name) {
                    assert!((d - want).abs() < 1e-12, "{name}: {d} vs {want}");
                } else {
                    assert_eq!(*d, want, "{name}");
                }
            }
        }
        assert!(paired.deltas_here(&vec![0; n]).is_empty());
    }

    #[test]
    fn grouped_replicates_equal_one_at_a_time_bit_for_bit() {
        // Row counts around the block (1024) and lane (8) sizes; groups full and partial.
        let bits = |d: &[(&str, f64)]| {
            d.iter()
                .map(|(k, v)| (k.to_string(), v.to_bits()))
                .collect::<Vec<_>>()
        };
        for n in [1, 7, 8, 9, 1023, 1024, 1025, 3001] {
            let mut rng = SplitMix64::new(n as u64);
            let labels: Vec<f64> = (0..n).map(|_| rng.below(2) as f64).collect();
            let a: Vec<f64> = (0..n).map(|_| rng.below(20) as f64 / 20.0).collect();
            let b: Vec<f64> = (0..n).map(|_| rng.below(1000) as f64 / 1000.0).collect();
            let (pa, pb) = (
                Prepared::new(Task::Binary, 2, &labels, &a),
                Prepared::new(Task::Binary, 2, &labels, &b),
            );
            let paired = PairedBinary::new(&pa, &pb);
            let seed = 11;
            for (first, count) in [(0, GROUP), (8, 3), (40, 1)] {
                let want: Vec<_> = (first..first + count)
                    .map(|r| {
                        let w =
                            poisson_counts(&mut SplitMix64::new(replicate_seed(seed, r as u64)), n);
                        bits(&paired.deltas_here(&w))
                    })
                    .collect();
                let got = |d: Vec<Vec<(&str, f64)>>| d.iter().map(|d| bits(d)).collect::<Vec<_>>();
                assert_eq!(got(paired.group_deltas(seed, first, count)), want, "n {n}");
                assert_eq!(
                    got(paired.group_deltas_here(seed, first, count)),
                    want,
                    "n {n}"
                );
                // Each build this CPU can run, whichever `group_deltas` chose.
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: AVX2 checked just above.
                        let d = unsafe { paired.group_deltas_avx2(seed, first, count) };
                        assert_eq!(got(d), want, "avx2, n {n}");
                    }
                    if avx512() {
                        // SAFETY: the AVX-512 subsets checked just above.
                        let d = unsafe { paired.group_deltas_avx512(seed, first, count) };
                        assert_eq!(got(d), want, "avx512, n {n}");
                    }
                }
            }
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
        // The resampled intervals depend on the seed (the binary AUC's is analytic).
        assert_ne!(
            compare_metrics(&pa, &pb, 300, 8)["log_loss"].ci95,
            x["log_loss"].ci95
        );
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

    /// One run's accuracy interval holds the accuracy, is about as wide as the normal
    /// approximation says (p(1-p)/n), and is the same for the same seed.
    #[test]
    fn metric_intervals_bracket_the_metric_at_the_expected_width() {
        let mut rng = SplitMix64::new(3);
        let n = 4000;
        let labels: Vec<f64> = (0..n).map(|_| rng.below(2) as f64).collect();
        let scores: Vec<f64> = labels
            .iter()
            .map(|&y| y * 0.3 + rng.below(1000) as f64 / 1000.0 * 0.7)
            .collect();
        let p = Prepared::new(Task::Binary, 2, &labels, &scores);
        let iv = metric_intervals(&p, 400, 9);
        let acc = p.metrics()["accuracy"];
        let [lo, hi] = iv["accuracy"];
        assert!(lo < acc && acc < hi, "{lo} {acc} {hi}");
        let expected = 2.0 * Z95 * (acc * (1.0 - acc) / n as f64).sqrt();
        let width = hi - lo;
        assert!(
            width > 0.7 * expected && width < 1.3 * expected,
            "width {width}, expected {expected}"
        );
        assert!(iv.contains_key("auc") && iv.contains_key("log_loss"));
        assert_eq!(iv, metric_intervals(&p, 400, 9));
    }
}
