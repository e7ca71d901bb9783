//! The pictures of one run's holdout predictions: ROC and precision-recall curves with their
//! thresholds, a reliability diagram with the expected calibration error, a confusion matrix,
//! and for regression predicted-against-actual points and a residual histogram.
//!
//! Curves are computed exactly (one point per distinct score) and then thinned to at most
//! `MAX_POINTS` points for drawing, always keeping the first and the last.
//! ECE is the binned form of Guo et al., "On Calibration of Modern Neural Networks" (ICML 2017):
//! the row-weighted mean gap between confidence and accuracy over equal-width bins.

use crate::metrics::{Scores, predicted_classes};
use gyre_core::Task;
use serde::Serialize;

/// Points kept per curve for drawing.
pub const MAX_POINTS: usize = 200;
/// Bins of the reliability diagram.
pub const CALIBRATION_BINS: usize = 10;
/// Points kept for a regression's predicted-against-actual plot.
pub const MAX_SCATTER: usize = 2000;

/// One point of a ROC or precision-recall curve, at a decision threshold on the positive score.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CurvePoint {
    pub threshold: f64,
    /// ROC: false positive rate; PR: recall.
    pub x: f64,
    /// ROC: true positive rate; PR: precision.
    pub y: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub rows: usize,
    /// Mean predicted probability (binary: of the positive class; multiclass: of the predicted class).
    pub confidence: f64,
    /// Observed rate (binary: of the positive class; multiclass: of correct answers).
    pub observed: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub bins: Vec<CalibrationBin>,
    pub ece: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Confusion {
    /// `counts[actual][predicted]`, in class order.
    pub counts: Vec<Vec<u64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistogramBin {
    pub lower: f64,
    pub upper: f64,
    pub rows: usize,
}

/// Everything drawn on a run's page, from its stored holdout predictions.
#[derive(Clone, Debug, Serialize, Default)]
pub struct RunCurves {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roc: Option<Vec<CurvePoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr: Option<Vec<CurvePoint>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
    /// Regression: (actual, predicted) for at most `MAX_SCATTER` rows, every k-th.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_vs_actual: Option<Vec<(f64, f64)>>,
    /// Regression: residuals (predicted - actual) on 30 equal-width bins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residuals: Option<Vec<HistogramBin>>,
}

/// The curves of `s`; `positive` is the positive class's index for a binary task (0 or 1).
pub fn run_curves(s: &Scores<'_>, positive: usize) -> RunCurves {
    match s.task {
        Task::Binary => {
            let score: Vec<f64> = s
                .scores
                .iter()
                .map(|&p| if positive == 1 { p } else { 1.0 - p })
                .collect();
            let is_pos: Vec<bool> = s.labels.iter().map(|&l| l as usize == positive).collect();
            let (roc, pr) = roc_pr(&score, &is_pos);
            let predicted = predicted_classes(s.task, 2, s.scores);
            RunCurves {
                roc: Some(thin(roc)),
                pr: Some(thin(pr)),
                calibration: Some(calibration(
                    score.iter().zip(&is_pos).map(|(&p, &y)| (p, y)),
                )),
                confusion: Some(confusion(2, s.labels, &predicted)),
                ..RunCurves::default()
            }
        }
        Task::Multiclass => {
            let k = s.classes;
            let predicted = predicted_classes(s.task, k, s.scores);
            let pairs = s
                .scores
                .chunks(k)
                .zip(&predicted)
                .zip(s.labels)
                .map(|((row, &c), &l)| (row[c as usize], c as f64 == l));
            RunCurves {
                calibration: Some(calibration(pairs)),
                confusion: Some(confusion(k, s.labels, &predicted)),
                ..RunCurves::default()
            }
        }
        Task::Regression => {
            let n = s.labels.len();
            let step = n.div_ceil(MAX_SCATTER).max(1);
            let scatter = (0..n)
                .step_by(step)
                .map(|i| (s.labels[i], s.scores[i]))
                .collect();
            let residuals: Vec<f64> = s.scores.iter().zip(s.labels).map(|(p, a)| p - a).collect();
            RunCurves {
                predicted_vs_actual: Some(scatter),
                residuals: Some(histogram(&residuals, 30)),
                ..RunCurves::default()
            }
        }
    }
}

/// Exact ROC and precision-recall curves: one point per distinct score, highest first.
fn roc_pr(score: &[f64], is_pos: &[bool]) -> (Vec<CurvePoint>, Vec<CurvePoint>) {
    let mut order: Vec<usize> = (0..score.len()).filter(|&i| score[i].is_finite()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let pos = order.iter().filter(|&&i| is_pos[i]).count() as f64;
    let neg = order.len() as f64 - pos;
    let mut roc = vec![CurvePoint {
        threshold: f64::INFINITY,
        x: 0.0,
        y: 0.0,
    }];
    let mut pr = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let t = score[order[i]];
        while i < order.len() && score[order[i]] == t {
            if is_pos[order[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        roc.push(CurvePoint {
            threshold: t,
            x: if neg > 0.0 { fp / neg } else { 0.0 },
            y: if pos > 0.0 { tp / pos } else { 0.0 },
        });
        pr.push(CurvePoint {
            threshold: t,
            x: if pos > 0.0 { tp / pos } else { 0.0 },
            y: tp / (tp + fp),
        });
    }
    (roc, pr)
}

/// At most `MAX_POINTS` evenly spaced points of `points`, the first and last always kept.
fn thin(points: Vec<CurvePoint>) -> Vec<CurvePoint> {
    let n = points.len();
    if n <= MAX_POINTS {
        return points;
    }
    (0..MAX_POINTS)
        .map(|j| points[j * (n - 1) / (MAX_POINTS - 1)].clone())
        .collect()
}

/// Equal-width bins over [0, 1] of (probability, outcome) pairs, and the ECE over them.
fn calibration(pairs: impl Iterator<Item = (f64, bool)>) -> Calibration {
    let b = CALIBRATION_BINS;
    let mut sum_p = vec![0.0; b];
    let mut hits = vec![0usize; b];
    let mut rows = vec![0usize; b];
    let mut n = 0usize;
    for (p, y) in pairs.filter(|(p, _)| p.is_finite()) {
        let k = ((p.clamp(0.0, 1.0) * b as f64) as usize).min(b - 1);
        sum_p[k] += p;
        hits[k] += usize::from(y);
        rows[k] += 1;
        n += 1;
    }
    let mut ece = 0.0;
    let bins = (0..b)
        .map(|k| {
            let (confidence, observed) = if rows[k] > 0 {
                (sum_p[k] / rows[k] as f64, hits[k] as f64 / rows[k] as f64)
            } else {
                (0.0, 0.0)
            };
            if n > 0 {
                ece += rows[k] as f64 / n as f64 * (confidence - observed).abs();
            }
            CalibrationBin {
                lower: k as f64 / b as f64,
                upper: (k + 1) as f64 / b as f64,
                rows: rows[k],
                confidence,
                observed,
            }
        })
        .collect();
    Calibration { bins, ece }
}

fn confusion(k: usize, labels: &[f64], predicted: &[u32]) -> Confusion {
    let mut counts = vec![vec![0u64; k]; k];
    for (&l, &p) in labels.iter().zip(predicted) {
        let (a, p) = (l as usize, p as usize);
        if a < k && p < k {
            counts[a][p] += 1;
        }
    }
    Confusion { counts }
}

/// Equal-width bins between the smallest and largest finite value.
pub fn histogram(values: &[f64], bins: usize) -> Vec<HistogramBin> {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return Vec::new();
    }
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut rows = vec![0usize; bins];
    for v in values.iter().copied().filter(|v| v.is_finite()) {
        rows[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    rows.into_iter()
        .enumerate()
        .map(|(k, rows)| HistogramBin {
            lower: lo + k as f64 * width,
            upper: lo + (k + 1) as f64 * width,
            rows,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(labels: &[f64], scores: &[f64]) -> RunCurves {
        run_curves(
            &Scores {
                task: Task::Binary,
                classes: 2,
                labels,
                scores,
                weights: None,
            },
            1,
        )
    }

    #[test]
    fn roc_area_matches_auc_and_ends_at_one() {
        let labels = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let scores = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
        let c = binary(&labels, &scores);
        let roc = c.roc.unwrap();
        assert_eq!((roc[0].x, roc[0].y), (0.0, 0.0));
        let last = roc.last().unwrap();
        assert_eq!((last.x, last.y), (1.0, 1.0));
        let area: f64 = roc
            .windows(2)
            .map(|w| (w[1].x - w[0].x) * (w[1].y + w[0].y) / 2.0)
            .sum();
        let auc = crate::metrics::auc_binary(&scores, &labels.map(|l| l == 1.0), None).unwrap();
        assert!((area - auc).abs() < 1e-12, "{area} vs {auc}");
        // Precision at the highest threshold: the top score is a positive.
        assert_eq!(c.pr.unwrap()[0].y, 1.0);
    }

    #[test]
    fn confusion_and_calibration_count_every_row() {
        let labels = [0.0, 0.0, 1.0, 1.0];
        let scores = [0.05, 0.95, 0.95, 0.15];
        let c = binary(&labels, &scores);
        assert_eq!(c.confusion.unwrap().counts, vec![vec![1, 1], vec![1, 1]]);
        let cal = c.calibration.unwrap();
        assert_eq!(cal.bins.iter().map(|b| b.rows).sum::<usize>(), 4);
        // Bin 0.0-0.1 holds 0.05 (a negative): confidence 0.05, observed 0.
        assert!((cal.bins[0].confidence - 0.05).abs() < 1e-12);
        // Bins: 0.05 (negative), 0.15 (positive), and 0.95 twice with one positive.
        assert!((cal.ece - (0.05 + 0.85 + 2.0 * 0.45) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn thinning_keeps_ends() {
        let pts: Vec<CurvePoint> = (0..1000)
            .map(|i| CurvePoint {
                threshold: i as f64,
                x: i as f64,
                y: 0.0,
            })
            .collect();
        let t = thin(pts);
        assert_eq!(t.len(), MAX_POINTS);
        assert_eq!(t[0].x, 0.0);
        assert_eq!(t.last().unwrap().x, 999.0);
    }

    #[test]
    fn histogram_puts_the_maximum_in_the_last_bin() {
        let h = histogram(&[0.0, 1.0, 2.0, f64::NAN], 2);
        assert_eq!(h.iter().map(|b| b.rows).collect::<Vec<_>>(), vec![1, 2]);
    }
}
