//! Whether confident learning's suspects can be told from hard rows. Confident learning
//! (Northcutt, Jiang & Chuang, JAIR 70, 2021) flags rows whose given label the out-of-fold model
//! finds unlikely; when that model is weak, or the data is noisy by nature, it flags many rows
//! whose labels are right but hard, and a list of tens of thousands of rows says nothing.
//!
//! `expected_issues` is the number of rows confident learning flags when every label is right
//! but as uncertain as the model believes: labels drawn from the out-of-fold probabilities
//! themselves (y_i ~ p_i, [`DRAWS`] seeded draws, their mean), the probabilities kept; a
//! parametric bootstrap of the labels (Efron & Tibshirani, "An Introduction to the Bootstrap",
//! 1993, ch. 6). It is reported beside the flagged count, as a scale: how many suspects the
//! model's own uncertainty alone produces.
//!
//! It is not a test. Out-of-fold probabilities are roughly calibrated *to the labels they were
//! trained on*, flips included, so labels drawn from them are flagged about as often as the
//! real ones whatever the share of flips: on Adult, 1,736 flagged against 1,732 expected with
//! no planted flips, and 2,914 against 2,926 with 3% flipped, where 748 of the 977 flips are
//! among the flagged. A rule "flagged < 2 x expected" would call every calibrated result
//! unreliable. What decides whether suspects can be told from hard rows is how sharply the
//! out-of-fold model separates the classes (confident learning assumes its probabilities
//! approach the true label's): a result is unreliable when a binary AUC is below [`MIN_AUC`],
//! or (multiclass) when the accuracy removes less than [`MIN_GAIN`] of the errors of always
//! answering the most common label.

use crate::label_issues::flag;
use crate::metrics::auc_binary;
use gyre_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// A binary out-of-fold model below this AUC separates the classes too weakly.
pub const MIN_AUC: f64 = 0.75;
/// A multiclass out-of-fold model must remove at least this share of the majority rate's
/// errors: (accuracy - majority) / (1 - majority).
pub const MIN_GAIN: f64 = 0.25;
/// Label draws averaged for `expected_issues`.
pub const DRAWS: usize = 3;

/// How well the out-of-fold model does, the figure the quality check reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OofQuality {
    /// `auc` (binary) or `accuracy` (multiclass).
    pub metric: String,
    pub value: f64,
    /// What it is compared with: the threshold AUC, or the majority label's rate.
    pub baseline: f64,
}

/// Whether a confident-learning result lists label errors or hard rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    pub reliable: bool,
    /// Rows confident learning flags from the model's own uncertainty alone (module doc).
    pub expected_issues: f64,
    pub quality: Option<OofQuality>,
    /// Why it is not reliable, in words (empty when it is).
    pub reasons: Vec<String>,
}

/// Rows confident learning flags, averaged over `draws` label sets drawn from `probs` (row-major
/// `n * k`) with `seed`.
pub fn expected_issues(probs: &[f64], k: usize, draws: usize, seed: u64) -> f64 {
    let n = probs.len() / k.max(1);
    if n == 0 || draws == 0 {
        return 0.0;
    }
    let mut rng = SplitMix64::new(seed);
    let mut total = 0usize;
    let mut labels = vec![0usize; n];
    for _ in 0..draws {
        for (i, label) in labels.iter_mut().enumerate() {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let row = &probs[i * k..(i + 1) * k];
            let mut acc = 0.0;
            *label = k - 1;
            for (j, &pj) in row.iter().enumerate() {
                acc += pj;
                if u < acc {
                    *label = j;
                    break;
                }
            }
        }
        total += flag(&labels, probs, k)
            .flagged
            .iter()
            .filter(|&&f| f)
            .count();
    }
    total as f64 / draws as f64
}

/// The out-of-fold model's quality and whether it is too weak, with the reason.
fn quality(labels: &[usize], probs: &[f64], k: usize) -> Option<(OofQuality, Option<String>)> {
    let n = labels.len();
    if n == 0 {
        return None;
    }
    if k == 2 {
        let scores: Vec<f64> = (0..n).map(|i| probs[i * 2 + 1]).collect();
        let positive: Vec<bool> = labels.iter().map(|&y| y == 1).collect();
        let auc = auc_binary(&scores, &positive, None)?;
        let weak = (auc < MIN_AUC).then(|| {
            format!(
                "the out-of-fold model separates the classes weakly (AUC {auc:.3}, below \
                 {MIN_AUC}), so rows it is unsure of look like label errors"
            )
        });
        return Some((
            OofQuality {
                metric: "auc".into(),
                value: auc,
                baseline: MIN_AUC,
            },
            weak,
        ));
    }
    let mut counts = vec![0usize; k];
    for &y in labels {
        counts[y] += 1;
    }
    let majority = *counts.iter().max().expect("k > 0") as f64 / n as f64;
    let right = (0..n)
        .filter(|&i| {
            let row = &probs[i * k..(i + 1) * k];
            let best = (0..k)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .expect("k > 0");
            best == labels[i]
        })
        .count();
    let accuracy = right as f64 / n as f64;
    let gain = if majority < 1.0 {
        (accuracy - majority) / (1.0 - majority)
    } else {
        1.0
    };
    let weak = (gain < MIN_GAIN).then(|| {
        format!(
            "the out-of-fold model's accuracy {accuracy:.3} is barely above always answering the \
             most common label ({majority:.3}): it removes {:.0}% of that rule's errors, below \
             {:.0}%",
            100.0 * gain.max(0.0),
            100.0 * MIN_GAIN
        )
    });
    Some((
        OofQuality {
            metric: "accuracy".into(),
            value: accuracy,
            baseline: majority,
        },
        weak,
    ))
}

/// Judges a confident-learning result over the rows labelled `labels`, from the out-of-fold
/// `probs` (row-major `n * k`); `seed` draws the labels of `expected_issues`.
pub fn assess(labels: &[usize], probs: &[f64], k: usize, seed: u64) -> Reliability {
    let expected = expected_issues(probs, k, DRAWS, seed);
    let mut reasons = Vec::new();
    let quality = quality(labels, probs, k).map(|(q, weak)| {
        reasons.extend(weak);
        q
    });
    Reliability {
        reliable: reasons.is_empty(),
        expected_issues: expected,
        quality,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(labels: &[usize], probs: &[f64], k: usize) -> usize {
        flag(labels, probs, k)
            .flagged
            .iter()
            .filter(|&&f| f)
            .count()
    }

    #[test]
    fn a_weak_model_on_clean_labels_is_unreliable_and_says_why() {
        // Labels drawn from probabilities near 0.5: every label is right as drawn, and none can
        // be told from a hard row.
        let mut rng = SplitMix64::new(7);
        let n = 4000;
        let mut probs = Vec::with_capacity(2 * n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let p1 = 0.4 + rng.below(200) as f64 / 1000.0;
            probs.extend([1.0 - p1, p1]);
            labels.push(usize::from(rng.below(1000) < (p1 * 1000.0) as u64));
        }
        let r = assess(&labels, &probs, 2, 1);
        assert!(!r.reliable, "{r:?}");
        assert_eq!(r.reasons.len(), 1, "{r:?}");
        assert!(r.reasons[0].contains("AUC 0.5"), "{r:?}");
        // What it flags is what uncertainty alone flags.
        let f = flagged(&labels, &probs, 2) as f64;
        assert!((r.expected_issues - f).abs() < 0.25 * f, "{r:?} {f}");
    }

    #[test]
    fn a_sharp_model_with_flipped_labels_is_reliable() {
        let mut rng = SplitMix64::new(8);
        let n = 4000;
        let mut probs = Vec::with_capacity(3 * n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let t = rng.below(3) as usize;
            let jitter = rng.below(100) as f64 / 1000.0;
            for c in 0..3 {
                probs.push(if c == t {
                    0.9 - jitter
                } else {
                    0.05 + jitter / 2.0
                });
            }
            labels.push(if rng.below(100) < 5 { (t + 1) % 3 } else { t });
        }
        let r = assess(&labels, &probs, 3, 1);
        assert!(r.reliable, "{r:?}");
        assert_eq!(r.quality.as_ref().unwrap().metric, "accuracy");
        assert!(r.expected_issues > 0.0);
        // The same seed, the same draws.
        assert_eq!(r, assess(&labels, &probs, 3, 1));
    }

    #[test]
    fn a_multiclass_model_barely_above_the_majority_is_unreliable() {
        // Always about the class frequencies: accuracy is the majority rate.
        let n = 3000;
        let mut rng = SplitMix64::new(9);
        let labels: Vec<usize> = (0..n)
            .map(|_| match rng.below(10) {
                0..5 => 0,
                5..8 => 1,
                _ => 2,
            })
            .collect();
        let probs: Vec<f64> = (0..n)
            .flat_map(|_| {
                let j = rng.below(50) as f64 / 1000.0;
                [0.5 - j, 0.3 + j / 2.0, 0.2 + j / 2.0]
            })
            .collect();
        let r = assess(&labels, &probs, 3, 2);
        assert!(!r.reliable, "{r:?}");
        assert!(r.reasons[0].contains("most common label"), "{r:?}");
    }
}
