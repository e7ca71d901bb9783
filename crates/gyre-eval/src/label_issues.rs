//! Label errors by confident learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating
//! Uncertainty in Dataset Labels", JAIR 70, 2021): per-class thresholds on out-of-fold
//! probabilities, the confident joint, its calibration to the label counts, and pruning by noise
//! rate; suspects are ranked by self-confidence (the probability of the given label).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelIssue {
    /// Index into the rows given.
    pub index: usize,
    pub given: usize,
    pub suggested: usize,
    /// Out-of-fold probability of the suggested label.
    pub confidence: f64,
    /// Out-of-fold probability of the given label (lower is more suspicious).
    pub self_confidence: f64,
}

/// Result of confident learning over a set of rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Estimate {
    /// Per-class thresholds t_j: the mean probability of class j over rows labelled j.
    pub thresholds: Vec<f64>,
    /// The confident joint C[given][true] (counts, before calibration).
    pub confident_joint: Vec<Vec<usize>>,
    /// Suspected label errors, most suspicious first.
    pub issues: Vec<LabelIssue>,
}

/// The rows confident learning flags, with the thresholds and the confident joint that chose
/// them.
pub(crate) struct Flags {
    pub thresholds: Vec<f64>,
    pub confident_joint: Vec<Vec<usize>>,
    pub flagged: Vec<bool>,
}

/// Steps 2 to 5 of confident learning: thresholds, the confident joint, its calibration and
/// pruning by noise rate. `labels[i]` in `0..k`; `probs` is row-major `n * k`.
pub(crate) fn flag(labels: &[usize], probs: &[f64], k: usize) -> Flags {
    let n = labels.len();
    let p = |i: usize, j: usize| probs[i * k + j];
    let mut counts = vec![0usize; k];
    let mut sums = vec![0.0; k];
    for i in 0..n {
        counts[labels[i]] += 1;
        sums[labels[i]] += p(i, labels[i]);
    }
    let thresholds: Vec<f64> = (0..k)
        .map(|j| {
            if counts[j] > 0 {
                sums[j] / counts[j] as f64
            } else {
                1.0
            }
        })
        .collect();

    // Confident joint: each row counts once, under the most probable class above its threshold.
    let mut cj = vec![vec![0usize; k]; k];
    for i in 0..n {
        let mut best: Option<usize> = None;
        for j in 0..k {
            if p(i, j) >= thresholds[j] && best.is_none_or(|b| p(i, j) > p(i, b)) {
                best = Some(j);
            }
        }
        if let Some(j) = best {
            cj[labels[i]][j] += 1;
        }
    }

    // Calibrate each row of the joint to the label counts, then normalize: Q ~ p(given, true).
    let mut q = vec![vec![0.0; k]; k];
    for i in 0..k {
        let row: usize = cj[i].iter().sum();
        if row == 0 {
            continue;
        }
        for j in 0..k {
            q[i][j] = cj[i][j] as f64 / row as f64 * counts[i] as f64 / n as f64;
        }
    }

    // Prune by noise rate: for each off-diagonal cell, the n * Q[i][j] rows labelled i with the
    // largest margin p_j - p_i are suspects.
    let mut flagged = vec![false; n];
    let mut by_label: Vec<Vec<usize>> = vec![Vec::new(); k];
    for i in 0..n {
        by_label[labels[i]].push(i);
    }
    for i in 0..k {
        for j in 0..k {
            if i == j {
                continue;
            }
            let m = (n as f64 * q[i][j]).round() as usize;
            if m == 0 {
                continue;
            }
            let mut rows = by_label[i].clone();
            rows.sort_by(|&a, &b| {
                (p(b, j) - p(b, i))
                    .total_cmp(&(p(a, j) - p(a, i)))
                    .then(a.cmp(&b))
            });
            for &r in rows.iter().take(m) {
                flagged[r] = true;
            }
        }
    }
    Flags {
        thresholds,
        confident_joint: cj,
        flagged,
    }
}

/// `labels[i]` in `0..k`; `probs` is row-major `n * k` out-of-fold probabilities.
pub fn find_label_issues(labels: &[usize], probs: &[f64], k: usize) -> Estimate {
    let n = labels.len();
    let p = |i: usize, j: usize| probs[i * k + j];
    let Flags {
        thresholds,
        confident_joint: cj,
        flagged,
    } = flag(labels, probs, k);
    // The suggestion is the most probable other class (a row can be caught through any cell).
    let suggest = |i: usize| {
        (0..k)
            .filter(|&j| j != labels[i])
            .max_by(|&a, &b| p(i, a).total_cmp(&p(i, b)).then(b.cmp(&a)))
            .unwrap_or(labels[i])
    };
    let mut issues: Vec<LabelIssue> = (0..n)
        .filter(|&i| flagged[i])
        .map(|i| {
            let s = suggest(i);
            LabelIssue {
                index: i,
                given: labels[i],
                suggested: s,
                confidence: p(i, s),
                self_confidence: p(i, labels[i]),
            }
        })
        .collect();
    issues.sort_by(|a, b| {
        a.self_confidence
            .total_cmp(&b.self_confidence)
            .then(a.index.cmp(&b.index))
    });
    Estimate {
        thresholds,
        confident_joint: cj,
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_core::rng::SplitMix64;

    #[test]
    fn finds_flipped_labels_when_the_model_is_confident() {
        let mut rng = SplitMix64::new(5);
        let n = 2000;
        let truth: Vec<usize> = (0..n).map(|_| rng.below(3) as usize).collect();
        let mut labels = truth.clone();
        let mut flipped = Vec::new();
        for i in 0..n {
            if rng.below(100) < 5 {
                labels[i] = (truth[i] + 1 + rng.below(2) as usize) % 3;
                flipped.push(i);
            }
        }
        // A good model: 0.8 on the true class, the rest spread, with a little jitter.
        let mut probs = Vec::new();
        for &t in &truth {
            let j = rng.below(100) as f64 / 1000.0;
            for c in 0..3 {
                probs.push(if c == t { 0.8 - j } else { 0.1 + j / 2.0 });
            }
        }
        let est = find_label_issues(&labels, &probs, 3);
        let found: Vec<usize> = est.issues.iter().map(|x| x.index).collect();
        let hits = found.iter().filter(|i| flipped.contains(i)).count();
        let precision = hits as f64 / found.len() as f64;
        let recall = hits as f64 / flipped.len() as f64;
        assert!(
            precision > 0.95 && recall > 0.9,
            "precision {precision}, recall {recall}"
        );
        for x in &est.issues {
            assert_eq!(x.suggested, truth[x.index]);
        }
    }
}
