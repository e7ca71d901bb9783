//! Splits: which rows train and which are held out, from a split column, a seeded (stratified)
//! fraction, or the latest fraction by time.

use gyre_core::Split;
use gyre_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// How the import assigns splits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SplitSpec {
    /// Values train/valid/test/holdout (case-insensitive) in this column; the column is consumed.
    Column { column: String },
    /// A seeded random fraction held out, stratified by class for classification.
    Holdout { fraction: f64, seed: u64 },
    /// The latest `fraction` of rows by the time column are held out.
    Time { column: String, fraction: f64 },
}

/// Holds out `fraction` of the rows, stratified (each stratum, e.g. each class, keeps its share),
/// chosen with a seeded shuffle. The total is `round(n * fraction)`; per-stratum counts are
/// proportional with the remainder going to the largest fractional parts (Hamilton's method),
/// so small data still gets a holdout.
pub fn random_holdout(strata: &[u32], fraction: f64, seed: u64) -> Vec<Split> {
    let n_strata = strata.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); n_strata];
    for (row, &s) in strata.iter().enumerate() {
        members[s as usize].push(row as u32);
    }
    let total = (strata.len() as f64 * fraction).round() as usize;
    let quotas: Vec<f64> = members.iter().map(|m| m.len() as f64 * fraction).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut by_remainder: Vec<usize> = (0..n_strata).collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut missing = total.saturating_sub(counts.iter().sum());
    for &s in &by_remainder {
        if missing == 0 {
            break;
        }
        if counts[s] < members[s].len() {
            counts[s] += 1;
            missing -= 1;
        }
    }
    let mut rng = SplitMix64::new(seed);
    let mut out = vec![Split::Train; strata.len()];
    for (rows, &k) in members.iter_mut().zip(&counts) {
        rng.shuffle(rows);
        for &r in &rows[..k.min(rows.len())] {
            out[r as usize] = Split::Holdout;
        }
    }
    out
}

/// Holds out the latest `fraction` of rows by `keys`; ties keep file order.
pub fn time_holdout(keys: &[f64], fraction: f64) -> Vec<Split> {
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_by(|&a, &b| keys[a as usize].total_cmp(&keys[b as usize]));
    let k = (keys.len() as f64 * fraction).round() as usize;
    let mut out = vec![Split::Train; keys.len()];
    for &r in &order[keys.len() - k.min(keys.len())..] {
        out[r as usize] = Split::Holdout;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_holdout_keeps_class_shares() {
        let strata: Vec<u32> = (0..1000).map(|i| u32::from(i % 10 == 0)).collect();
        let s = random_holdout(&strata, 0.2, 42);
        let held_pos = (0..1000)
            .filter(|&i| strata[i] == 1 && s[i] == Split::Holdout)
            .count();
        let held = s.iter().filter(|&&x| x == Split::Holdout).count();
        assert_eq!(held, 200);
        assert_eq!(held_pos, 20);
        assert_eq!(s, random_holdout(&strata, 0.2, 42));
        assert_ne!(s, random_holdout(&strata, 0.2, 43));
    }

    #[test]
    fn tiny_data_still_gets_a_holdout() {
        let s = random_holdout(&[0, 0, 1, 1], 0.2, 1);
        assert_eq!(s.iter().filter(|&&x| x == Split::Holdout).count(), 1);
    }

    #[test]
    fn time_holdout_takes_the_latest() {
        let keys = [5.0, 1.0, 4.0, 2.0, 3.0];
        let s = time_holdout(&keys, 0.4);
        assert_eq!(
            s,
            vec![
                Split::Holdout,
                Split::Train,
                Split::Holdout,
                Split::Train,
                Split::Train
            ]
        );
    }
}
