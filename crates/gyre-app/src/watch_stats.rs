//! Running statistics for `gyre monitor`: it reads the prediction log once, row by row, so its
//! memory depends on the number of features, bins and feedback labels, not on how many
//! predictions were served.

use gyre_core::rng::SplitMix64;

/// Handler latencies in whole microseconds: exact counts below [`Latencies::EXACT_US`], the
/// rare slower ones kept as values. Percentiles are exact.
#[derive(Default)]
pub struct Latencies {
    counts: Vec<u64>,
    over: Vec<u64>,
    n: u64,
}

impl Latencies {
    pub const EXACT_US: usize = 100_000;

    pub fn add(&mut self, us: u64) {
        self.n += 1;
        match usize::try_from(us) {
            Ok(i) if i < Self::EXACT_US => {
                if self.counts.is_empty() {
                    self.counts.resize(Self::EXACT_US, 0);
                }
                self.counts[i] += 1;
            }
            _ => self.over.push(us),
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    /// The value at rank `round((n - 1) * q)` of the sorted latencies, in milliseconds (0 when
    /// there are none).
    pub fn percentile_ms(&mut self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((self.n - 1) as f64 * q).round() as u64;
        let mut below = 0;
        for (us, &c) in self.counts.iter().enumerate() {
            below += c;
            if rank < below {
                return us as f64 / 1000.0;
            }
        }
        self.over.sort_unstable();
        self.over[(rank - below) as usize] as f64 / 1000.0
    }
}

/// Mean and variance by Welford's update (stable in one pass).
#[derive(Default)]
pub struct Running {
    pub n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample standard deviation (0 for fewer than two values).
    pub fn sd(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }
}

/// A uniform sample of at most `cap` values from a stream (Vitter's Algorithm R), seeded, so the
/// same log gives the same sample. Below the cap it holds every value.
pub struct Reservoir {
    pub values: Vec<f64>,
    seen: u64,
    cap: usize,
    rng: SplitMix64,
}

impl Reservoir {
    pub fn new(cap: usize, seed: u64) -> Reservoir {
        Reservoir {
            values: Vec::new(),
            seen: 0,
            cap,
            rng: SplitMix64::new(seed),
        }
    }

    pub fn add(&mut self, x: f64) {
        self.seen += 1;
        if self.values.len() < self.cap {
            self.values.push(x);
        } else {
            let j = self.rng.below(self.seen) as usize;
            if j < self.cap {
                self.values[j] = x;
            }
        }
    }

    /// Whether values were left out (more than `cap` seen).
    pub fn sampled(&self) -> bool {
        self.seen > self.cap as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_match_sorting_the_values() {
        let mut rng = SplitMix64::new(4);
        let values: Vec<u64> = (0..5000)
            .map(|i| {
                if i % 97 == 0 {
                    100_000 + rng.below(5_000_000)
                } else {
                    rng.below(3000)
                }
            })
            .collect();
        let mut l = Latencies::default();
        for &v in &values {
            l.add(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let i = ((sorted.len() - 1) as f64 * q).round() as usize;
            assert_eq!(l.percentile_ms(q), sorted[i] as f64 / 1000.0, "q {q}");
        }
        assert_eq!(Latencies::default().percentile_ms(0.5), 0.0);
    }

    #[test]
    fn welford_matches_the_two_pass_formulas() {
        let xs = [3.5, 1e9 + 1.0, 1e9 + 2.0, 1e9 + 4.0, -2.25];
        let mut r = Running::default();
        for &x in &xs {
            r.add(x);
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!((r.mean() - mean).abs() < 1e-6);
        assert!((r.sd() - sd).abs() / sd < 1e-9);
    }

    #[test]
    fn reservoir_keeps_everything_below_the_cap_and_samples_uniformly_above() {
        let mut small = Reservoir::new(10, 1);
        (0..7).for_each(|i| small.add(f64::from(i)));
        assert_eq!(small.values, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(!small.sampled());

        // 1000 from 0..100_000: the sample's mean is near the stream's (sd of the mean ~ 913).
        let mut big = Reservoir::new(1000, 2);
        (0..100_000).for_each(|i| big.add(f64::from(i)));
        assert!(big.sampled());
        assert_eq!(big.values.len(), 1000);
        let mean = big.values.iter().sum::<f64>() / 1000.0;
        assert!((mean - 49_999.5).abs() < 4.0 * 913.0, "{mean}");
        // A later part of the stream is represented, not only the first values.
        assert!(big.values.iter().filter(|&&v| v >= 50_000.0).count() > 400);
    }
}
