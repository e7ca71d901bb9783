//! A tiny seeded generator (SplitMix64, Steele, Lea & Flood, OOPSLA 2014) for reproducible
//! shuffles and splits. Always constructed from an explicit seed: gyre has no global RNG.

#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// The next `out.len()` outputs, the same as that many calls of `next_u64`. Each output is
    /// a hash of its position (SplitMix64 is a counter, hashed), so the loop carries nothing from
    /// one output to the next and the compiler vectorizes it.
    #[inline]
    pub fn fill(&mut self, out: &mut [u64]) {
        let s = self.0;
        for (i, o) in out.iter_mut().enumerate() {
            *o = mix(s.wrapping_add((i as u64 + 1).wrapping_mul(GAMMA)));
        }
        self.0 = s.wrapping_add((out.len() as u64).wrapping_mul(GAMMA));
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the tiny bias is irrelevant for shuffles).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_gives_the_outputs_of_next_u64() {
        let mut a = SplitMix64::new(u64::MAX - 3);
        let mut b = a.clone();
        let mut out = [0u64; 37];
        for len in [0, 1, 5, 37] {
            a.fill(&mut out[..len]);
            let one_by_one: Vec<u64> = (0..len).map(|_| b.next_u64()).collect();
            assert_eq!(out[..len], one_by_one[..]);
        }
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn deterministic_by_seed() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        SplitMix64::new(7).shuffle(&mut a);
        SplitMix64::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..100).collect();
        SplitMix64::new(8).shuffle(&mut c);
        assert_ne!(a, c);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
