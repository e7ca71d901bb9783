//! Online A/B comparison that may be looked at any time: the mixture sequential probability
//! ratio test (mSPRT) of Johari, Koomen, Pekelis & Walsh, "Peeking at A/B Tests: Why It Matters,
//! and What to Do About It" (KDD 2017), for the difference of two proportions (here: the share
//! of served predictions that feedback says were right, challenger minus champion).
//!
//! With the difference estimate `d` after some feedback, its variance `v` (normal approximation,
//! `p_a(1-p_a)/n_a + p_b(1-p_b)/n_b`) and a normal mixing distribution N(0, tau^2) over the true
//! difference, the mixture likelihood ratio against "no difference" is
//! `L = sqrt(v / (v + tau^2)) * exp(d^2 tau^2 / (2 v (v + tau^2)))`; the always-valid p-value is
//! `min(1, 1 / max L)` over every point so far, so stopping whenever it drops below alpha keeps
//! the false positive rate at alpha however often the team looks.

use serde::Serialize;

/// The mixing distribution's scale: differences in accuracy of a few points are what a
/// challenger usually brings; a tau near the expected effect gives the test its power there.
pub const DEFAULT_TAU: f64 = 0.05;

#[derive(Clone, Debug, Serialize)]
pub struct Msprt {
    pub n_champion: usize,
    pub n_challenger: usize,
    pub champion_rate: f64,
    pub challenger_rate: f64,
    /// Challenger minus champion.
    pub delta: f64,
    /// Always-valid p-value of "no difference".
    pub p_value: f64,
    pub tau: f64,
}

/// Runs the test over outcomes in arrival order: `(challenger?, right?)`. `None` until both arms
/// have an outcome.
pub fn msprt(outcomes: impl IntoIterator<Item = (bool, bool)>, tau: f64) -> Option<Msprt> {
    let (mut n, mut k) = ([0usize; 2], [0usize; 2]);
    let mut max_ratio = 1.0f64;
    let tau2 = tau * tau;
    for (challenger, right) in outcomes {
        let arm = usize::from(challenger);
        n[arm] += 1;
        k[arm] += usize::from(right);
        if n[0] == 0 || n[1] == 0 {
            continue;
        }
        let p = [k[0] as f64 / n[0] as f64, k[1] as f64 / n[1] as f64];
        let v = p[0] * (1.0 - p[0]) / n[0] as f64 + p[1] * (1.0 - p[1]) / n[1] as f64;
        if v <= 0.0 {
            // Every outcome alike on both arms so far: no evidence either way yet.
            continue;
        }
        let d = p[1] - p[0];
        let log_ratio = 0.5 * (v / (v + tau2)).ln() + d * d * tau2 / (2.0 * v * (v + tau2));
        max_ratio = max_ratio.max(log_ratio.exp());
    }
    if n[0] == 0 || n[1] == 0 {
        return None;
    }
    let p = [k[0] as f64 / n[0] as f64, k[1] as f64 / n[1] as f64];
    Some(Msprt {
        n_champion: n[0],
        n_challenger: n[1],
        champion_rate: p[0],
        challenger_rate: p[1],
        delta: p[1] - p[0],
        p_value: (1.0 / max_ratio).min(1.0),
        tau,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_core::rng::SplitMix64;

    fn stream(rng: &mut SplitMix64, n: usize, pa: f64, pb: f64) -> Vec<(bool, bool)> {
        let unit = |r: &mut SplitMix64| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        (0..n)
            .map(|_| {
                let b = unit(rng) < 0.5;
                let p = if b { pb } else { pa };
                (b, unit(rng) < p)
            })
            .collect()
    }

    #[test]
    fn peeking_at_every_event_keeps_false_positives_near_alpha() {
        // A/A: no difference. The p-value is checked after every single event (what a team
        // refreshing a dashboard does); a fixed-sample test would cross 0.05 far more often.
        let mut rng = SplitMix64::new(17);
        let trials = 300;
        let rejected = (0..trials)
            .filter(|_| {
                msprt(stream(&mut rng, 3000, 0.8, 0.8), DEFAULT_TAU)
                    .unwrap()
                    .p_value
                    < 0.05
            })
            .count();
        assert!(
            rejected as f64 / (trials as f64) < 0.06,
            "{rejected} of {trials}"
        );
    }

    #[test]
    fn a_real_difference_is_found() {
        let mut rng = SplitMix64::new(3);
        let r = msprt(stream(&mut rng, 6000, 0.80, 0.85), DEFAULT_TAU).unwrap();
        assert!(r.p_value < 0.01, "{r:?}");
        assert!(r.delta > 0.02);
        assert!(msprt([(false, true), (false, false)], DEFAULT_TAU).is_none());
    }
}
