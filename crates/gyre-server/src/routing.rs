//! Which arm answers a request: a share of traffic to the challenger (sticky by key), or the
//! champion answering while the challenger scores in its shadow.

use gyre_core::rng::SplitMix64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Traffic {
    /// This share of requests, in [0, 1], is answered by the challenger.
    Split(f64),
    /// The champion answers every request; the challenger scores it too, logged only.
    Shadow,
}

impl std::fmt::Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Traffic::Split(s) => write!(f, "split {s}"),
            Traffic::Shadow => write!(f, "shadow"),
        }
    }
}

/// A uniform number in [0, 1) from 64 bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a request goes to the challenger. With a key the choice depends on the key alone
/// (FNV-1a, then SplitMix64's mixer), so a user stays on one arm; without one, on the request's
/// number.
pub fn to_challenger(key: Option<&str>, request: u64, share: f64) -> bool {
    let bits = match key {
        Some(k) => {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in k.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            SplitMix64::new(h).next_u64()
        }
        None => SplitMix64::new(request ^ 0x9e37_79b9_7f4a_7c15).next_u64(),
    };
    unit(bits) < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_holds_and_keys_are_sticky() {
        let n = 100_000;
        let by_request = (0..n).filter(|&i| to_challenger(None, i, 0.1)).count();
        assert!(
            (by_request as f64 / n as f64 - 0.1).abs() < 0.005,
            "{by_request}"
        );
        let by_key = (0..n)
            .filter(|i| to_challenger(Some(&format!("user-{i}")), 0, 0.3))
            .count();
        assert!((by_key as f64 / n as f64 - 0.3).abs() < 0.01, "{by_key}");
        for i in 0..100 {
            let k = format!("user-{i}");
            let first = to_challenger(Some(&k), 0, 0.5);
            assert!((1..50).all(|r| to_challenger(Some(&k), r, 0.5) == first));
        }
        assert!(!(0..1000).any(|i| to_challenger(None, i, 0.0)));
        assert!((0..1000).all(|i| to_challenger(None, i, 1.0)));
    }
}
