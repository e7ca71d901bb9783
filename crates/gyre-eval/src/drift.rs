//! Drift between a reference sample (the training data) and a current one (served traffic), per
//! feature. The methods and thresholds are those of ALGORITHMS.md "Drift":
//!
//! - Population Stability Index over bins fixed on the reference (deciles for numbers, one bin per
//!   category), each with an epsilon so an empty bin does not divide by zero; < 0.1 stable,
//!   0.1-0.25 moderate, > 0.25 major (Siddiqi, "Credit Risk Scorecards", 2006).
//! - Two-sample Kolmogorov-Smirnov for numeric features, with the asymptotic p-value
//!   (Press et al., "Numerical Recipes", 3rd ed., 14.3.3).
//! - Jensen-Shannon distance (base 2, so in [0, 1]) for categorical features, and the Wasserstein
//!   distance normed by the reference's standard deviation for numeric ones, both with threshold
//!   0.1: the defaults Evidently documents for references above 1000 rows.
//!
//! Missing values get a bin of their own, so a feature that starts arriving empty drifts too.

use serde::Serialize;

/// Added to every bin's share before PSI's logarithm.
pub const PSI_EPSILON: f64 = 1e-4;
pub const PSI_MODERATE: f64 = 0.1;
pub const PSI_MAJOR: f64 = 0.25;
/// Threshold for the normed Wasserstein distance and the Jensen-Shannon distance.
pub const DISTANCE_THRESHOLD: f64 = 0.1;

/// Cut points at the reference's deciles (NaN ignored, repeated cuts merged). A value `x` falls in
/// bin `i` when it is above `i` cut points; NaN falls in the last bin, `edges.len() + 1`.
pub fn decile_edges(reference: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = reference.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10)
        .map(|d| v[((v.len() - 1) * d) / 10])
        .collect::<Vec<_>>();
    edges.dedup();
    edges
}

/// The bin of `x` under `edges` (see [`decile_edges`]); there are `edges.len() + 2` bins.
pub fn numeric_bin(edges: &[f64], x: f64) -> usize {
    if x.is_nan() {
        edges.len() + 1
    } else {
        edges.partition_point(|&e| e < x)
    }
}

/// PSI = sum over bins of (a - e) * ln(a / e), with `a` and `e` the current and reference shares.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    let (te, ta) = (expected.iter().sum::<f64>(), actual.iter().sum::<f64>());
    if te <= 0.0 || ta <= 0.0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e / te + PSI_EPSILON, a / ta + PSI_EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// PSI's reading: stable, moderate or major.
pub fn psi_level(psi: f64) -> &'static str {
    if psi > PSI_MAJOR {
        "major"
    } else if psi >= PSI_MODERATE {
        "moderate"
    } else {
        "stable"
    }
}

/// Jensen-Shannon distance between two histograms over the same bins, base 2 (0 same, 1 disjoint).
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let (tp, tq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if tp <= 0.0 || tq <= 0.0 {
        return 0.0;
    }
    let mut d = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / tp, b / tq);
        let m = 0.5 * (a + b);
        if a > 0.0 {
            d += 0.5 * a * (a / m).log2();
        }
        if b > 0.0 {
            d += 0.5 * b * (b / m).log2();
        }
    }
    d.max(0.0).sqrt()
}

/// Kolmogorov-Smirnov: the statistic D and its asymptotic p-value.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ks {
    pub statistic: f64,
    pub p_value: f64,
}

/// Two-sample KS over sorted, NaN-free samples.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Ks {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return Ks {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let ne = (n * m) as f64 / (n + m) as f64;
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    Ks {
        statistic: d,
        p_value: kolmogorov_q(lambda),
    }
}

/// Q_KS(lambda) = 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 lambda^2).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The first Wasserstein distance between two sorted, NaN-free samples, divided by the
/// reference's standard deviation (not divided when the reference is constant).
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> f64 {
    let (n, m) = (reference.len(), current.len());
    if n == 0 || m == 0 {
        return 0.0;
    }
    // Integrate |F_ref(x) - F_cur(x)| over the merged support.
    let (mut i, mut j) = (0, 0);
    let mut prev = reference[0].min(current[0]);
    let mut w = 0.0;
    while i < n || j < m {
        let x = match (reference.get(i), current.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        w += (i as f64 / n as f64 - j as f64 / m as f64).abs() * (x - prev);
        while i < n && reference[i] <= x {
            i += 1;
        }
        while j < m && current[j] <= x {
            j += 1;
        }
        prev = x;
    }
    let mean = reference.iter().sum::<f64>() / n as f64;
    let var = reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
    let sd = var.sqrt();
    // A constant reference (its spread only rounding noise) cannot scale the distance: it is
    // reported in the feature's own units.
    if sd > 1e-9 * (1.0 + mean.abs()) {
        w / sd
    } else {
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_core::rng::SplitMix64;

    fn normal(rng: &mut SplitMix64, n: usize, mean: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                // Box-Muller.
                let unit = |r: &mut SplitMix64| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let (u, v) = (unit(rng).max(1e-12), unit(rng));
                mean + (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    fn histogram(edges: &[f64], xs: &[f64]) -> Vec<f64> {
        let mut h = vec![0.0; edges.len() + 2];
        for &x in xs {
            h[numeric_bin(edges, x)] += 1.0;
        }
        h
    }

    #[test]
    fn same_distribution_is_stable_and_a_shift_is_major() {
        let mut rng = SplitMix64::new(7);
        let reference = normal(&mut rng, 20_000, 0.0);
        let same = normal(&mut rng, 5_000, 0.0);
        let shifted = normal(&mut rng, 5_000, 1.0);
        let edges = decile_edges(&reference);
        assert_eq!(edges.len(), 9);
        let e = histogram(&edges, &reference);
        assert!(psi(&e, &histogram(&edges, &same)) < PSI_MODERATE);
        let p = psi(&e, &histogram(&edges, &shifted));
        assert!(p > PSI_MAJOR, "{p}");
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v
        };
        let (r, s, t) = (sorted(&reference), sorted(&same), sorted(&shifted));
        assert!(ks_two_sample(&r, &s).p_value > 0.01);
        let ks = ks_two_sample(&r, &t);
        assert!(ks.statistic > 0.3 && ks.p_value < 1e-10, "{ks:?}");
        // A shift by one standard deviation moves the normed Wasserstein distance by about 1.
        let w = wasserstein_normed(&r, &t);
        assert!((w - 1.0).abs() < 0.1, "{w}");
        assert!(wasserstein_normed(&r, &s) < DISTANCE_THRESHOLD);
    }

    #[test]
    fn ks_and_wasserstein_match_hand_computed_values() {
        // F_a steps at 1,2,3; F_b at 2,3,4: the largest gap is 1/3, the area between them 1.
        let (a, b) = ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]);
        assert!((ks_two_sample(&a, &b).statistic - 1.0 / 3.0).abs() < 1e-12);
        let sd = (2.0f64 / 3.0).sqrt();
        assert!((wasserstein_normed(&a, &b) - 1.0 / sd).abs() < 1e-12);
    }

    #[test]
    fn js_distance_bounds_and_missing_values_bin() {
        assert!(js_distance(&[1.0, 1.0], &[2.0, 2.0]).abs() < 1e-12);
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        let edges = [1.0, 2.0];
        assert_eq!(numeric_bin(&edges, f64::NAN), 3);
        assert_eq!(numeric_bin(&edges, 0.5), 0);
        assert_eq!(numeric_bin(&edges, 1.0), 0);
        assert_eq!(numeric_bin(&edges, 1.5), 1);
        assert_eq!(numeric_bin(&edges, 9.0), 2);
        assert_eq!(psi_level(0.05), "stable");
        assert_eq!(psi_level(0.2), "moderate");
        assert_eq!(psi_level(0.3), "major");
    }
}
