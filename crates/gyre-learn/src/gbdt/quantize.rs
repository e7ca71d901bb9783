//! Quantized gradients for histogram construction (Shi, Ke, Wang, Chen, Liu and Bian, "Quantized
//! Training of Gradient Boosting Decision Trees", NeurIPS 2022; LightGBM's `use_quantized_grad`).
//!
//! Each row's gradient and hessian are rounded stochastically to small integers, and the two plus a
//! row count are packed into one `u64`, so a histogram bin takes one integer add per row instead of
//! three floating-point read-modify-writes, and bins are 8 bytes instead of 24. Integer sums are
//! exact, so histograms do not depend on the order rows are added in, hence not on the thread count.
//!
//! Layout of a packed value: bits 0..16 count rows, bits 16..36 sum quantized hessians (never
//! negative), bits 36..64 sum quantized gradients (two's complement). Sums of at most [`BLOCK`] rows
//! never carry from one field into the next; longer runs are flushed into [`Wide`] sums.
//!
//! Rounding noise is a hash of (iteration, class, row), not of the fit's seed: a fit stays a pure
//! function of its data and params when nothing else is sampled, so seeds still choose nothing with
//! default params.

use rayon::prelude::*;

/// Largest |quantized gradient| and largest quantized hessian.
pub(crate) const LEVELS: i64 = 63;

/// Most rows summed in packed form before flushing: 16,384 rows of hessian at most 63 fill 20 bits.
pub(crate) const BLOCK: usize = 16_384;

const N_BITS: u32 = 16;
const H_SHIFT: u32 = 16;
const H_MASK: u64 = (1 << 20) - 1;
const G_SHIFT: u32 = 36;

/// Rows per parallel task when quantizing.
const CHUNK: usize = 16_384;

/// Exact integer sums of quantized gradients, hessians and rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Wide {
    pub g: i64,
    pub h: i64,
    pub n: u64,
}

impl Wide {
    /// Adds a packed sum of at most [`BLOCK`] rows.
    #[inline]
    pub(crate) fn add_packed(&mut self, x: u64) {
        self.g += (x as i64) >> G_SHIFT;
        self.h += ((x >> H_SHIFT) & H_MASK) as i64;
        self.n += x & ((1 << N_BITS) - 1);
    }

    #[inline]
    pub(crate) fn add(&mut self, o: &Wide) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
}

/// One fit's quantized gradients for the current tree, and the scales back to real values.
#[derive(Debug, Default)]
pub(crate) struct Quantized {
    pub packed: Vec<u64>,
    pub g_scale: f64,
    pub h_scale: f64,
}

impl Quantized {
    /// Quantizes `grad` and `hess` (one class's slices) with rounding noise keyed by `key`.
    pub(crate) fn update(&mut self, grad: &[f64], hess: &[f64], key: u64) {
        // One pass for the three extremes; max and min are exact whatever the grouping.
        let (max_g, min_h, max_h) = grad
            .par_chunks(CHUNK)
            .zip(hess.par_chunks(CHUNK))
            .map(|(g, h)| {
                let mut m = (0.0f64, f64::INFINITY, 0.0f64);
                for (&g, &h) in g.iter().zip(h) {
                    m = (m.0.max(g.abs()), m.1.min(h), m.2.max(h));
                }
                m
            })
            .reduce(
                || (0.0, f64::INFINITY, 0.0),
                |a, b| (a.0.max(b.0), a.1.min(b.1), a.2.max(b.2)),
            );
        let levels = LEVELS as f64;
        let g_inv = if max_g > 0.0 { levels / max_g } else { 0.0 };
        let h_inv = if max_h > 0.0 { levels / max_h } else { 0.0 };
        // A constant hessian (regression, unweighted) quantizes exactly, with no rounding noise.
        let h_const = min_h == max_h;
        self.g_scale = if max_g > 0.0 { max_g / levels } else { 0.0 };
        self.h_scale = if max_h > 0.0 { max_h / levels } else { 0.0 };
        self.packed.resize(grad.len(), 0);
        self.packed
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(ci, out)| {
                let base = ci * CHUNK;
                for (j, o) in out.iter_mut().enumerate() {
                    let i = base + j;
                    let z = noise(key, i);
                    let ug = (z >> 40) as f64 * (1.0 / (1u64 << 24) as f64);
                    let uh = (z & 0xFF_FFFF) as f64 * (1.0 / (1u64 << 24) as f64);
                    let qg = floor_small(grad[i] * g_inv + ug).clamp(-LEVELS, LEVELS);
                    let qh = if h_const {
                        LEVELS
                    } else {
                        floor_small(hess[i] * h_inv + uh).clamp(0, LEVELS)
                    };
                    *o = pack(qg, qh);
                }
            });
    }
}

/// `x.floor()` for `x` in [-LEVELS - 1, LEVELS + 1] (NaN gives -LEVELS - 1): truncation of a
/// positive number, which needs no libm call on the baseline x86_64 target.
#[inline]
fn floor_small(x: f64) -> i64 {
    const OFF: f64 = (LEVELS + 2) as f64;
    (x + OFF).max(0.0) as i64 - (LEVELS + 2)
}

#[inline]
fn pack(qg: i64, qh: i64) -> u64 {
    ((qg << G_SHIFT) as u64)
        .wrapping_add((qh as u64) << H_SHIFT)
        .wrapping_add(1)
}

/// Rounding noise of row `i`: one multiply-xorshift of the row's index; rounding needs noise
/// uncorrelated with gradients, not a strong generator.
#[inline]
fn noise(key: u64, i: usize) -> u64 {
    let z = (key ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z ^ (z >> 29)
}

/// SplitMix64's finalizer: a well-mixed 64-bit hash of a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The rounding key of one tree.
pub(crate) fn key(iteration: usize, class: usize) -> u64 {
    mix(((iteration as u64) << 16) ^ class as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_sums_unpack_exactly_up_to_a_block() {
        let mut w = Wide::default();
        let mut x = 0u64;
        for i in 0..BLOCK {
            let qg = if i % 3 == 0 { -LEVELS } else { LEVELS - 1 };
            x = x.wrapping_add(pack(qg, LEVELS));
        }
        w.add_packed(x);
        let neg = BLOCK.div_ceil(3) as i64;
        assert_eq!(w.g, -neg * LEVELS + (BLOCK as i64 - neg) * (LEVELS - 1));
        assert_eq!(w.h, BLOCK as i64 * LEVELS);
        assert_eq!(w.n, BLOCK as u64);
        let mut all_neg = Wide::default();
        all_neg.add_packed((0..BLOCK).fold(0u64, |a, _| a.wrapping_add(pack(-LEVELS, 0))));
        assert_eq!(all_neg.g, -(BLOCK as i64) * LEVELS);
        assert_eq!((all_neg.h, all_neg.n), (0, BLOCK as u64));
    }

    #[test]
    fn rounding_is_unbiased_and_fixed_by_its_key() {
        let n = 200_000;
        let grad: Vec<f64> = (0..n).map(|i| ((i % 97) as f64 - 48.0) / 31.0).collect();
        let hess: Vec<f64> = (0..n).map(|i| 0.05 + (i % 13) as f64 / 20.0).collect();
        let mut a = Quantized::default();
        a.update(&grad, &hess, key(3, 0));
        let mut b = Quantized::default();
        b.update(&grad, &hess, key(3, 0));
        assert_eq!(a.packed, b.packed, "same key, same rounding");
        b.update(&grad, &hess, key(4, 0));
        assert_ne!(a.packed, b.packed, "another tree, other rounding");
        let mut w = Wide::default();
        for c in a.packed.chunks(BLOCK) {
            w.add_packed(c.iter().fold(0u64, |s, &x| s.wrapping_add(x)));
        }
        let (g, h): (f64, f64) = (grad.iter().sum(), hess.iter().sum());
        assert_eq!(w.n, n as u64);
        // Stochastic rounding keeps sums unbiased: the error is about sqrt(n) scale units (under 5
        // sigma here), where always rounding down would be off by n/2.
        assert!(
            (w.g as f64 * a.g_scale - g).abs() < 1500.0 * a.g_scale,
            "{} vs {g}",
            w.g
        );
        assert!(
            (w.h as f64 * a.h_scale - h).abs() < 1500.0 * a.h_scale,
            "{} vs {h}",
            w.h
        );
    }

    #[test]
    fn a_constant_hessian_quantizes_exactly() {
        let grad = vec![0.5, -1.0, 0.25];
        let mut q = Quantized::default();
        q.update(&grad, &[1.0; 3], key(0, 0));
        for &x in &q.packed {
            let mut w = Wide::default();
            w.add_packed(x);
            assert_eq!((w.h as f64 * q.h_scale, w.n), (1.0, 1));
        }
    }
}
