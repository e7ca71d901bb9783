//! Failure slices by SliceLine (Sagadeeva & Boehm, "SliceLine: Fast, Linear-Algebra-based Slice
//! Finding for ML Model Debugging", SIGMOD 2021): the exact top-K conjunctions of feature = value
//! predicates whose error is high relative to their size, found level by level with the paper's
//! size, error and score upper bounds pruning candidates before they are evaluated.
//!
//! Row sets are bitsets, so evaluating a candidate is an AND and a popcount plus a sum of the
//! errors of its rows. The error vector can be anything per row: 0/1 error, log loss, squared
//! error, or a negative-flip indicator between two runs.

use rustc_hash::FxHashMap;

/// One discretized feature: a value code per row (`None` = the row has no value code, which
/// cannot happen for features where missing is its own value).
pub struct SliceFeature {
    /// Code of each row in `0..values`.
    pub codes: Vec<u32>,
    pub values: u32,
}

#[derive(Clone, Copy, Debug)]
pub struct SliceParams {
    /// How many slices to return.
    pub k: usize,
    /// The most predicates in one slice.
    pub max_level: usize,
    /// The fewest rows a slice may have.
    pub min_support: usize,
    /// Weight of error against size in the score, in (0, 1].
    pub alpha: f64,
    /// The Jaccard similarity of row sets at which a slice is reported as another description
    /// of a better one's rows rather than as a slice of its own, in (0, 1]
    /// ([`crate::slice_groups`]; [`find_slices`] itself does not group).
    pub overlap: f64,
}

impl Default for SliceParams {
    fn default() -> Self {
        SliceParams {
            k: 10,
            max_level: 3,
            min_support: 32,
            alpha: 0.95,
            overlap: 0.5,
        }
    }
}

/// A found slice: its predicates as (feature index, value code), sorted by feature.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub predicates: Vec<(usize, u32)>,
    pub size: usize,
    /// Mean error inside the slice.
    pub error: f64,
    pub score: f64,
}

type Key = Vec<(usize, u32)>;

#[derive(Clone, Copy)]
struct Stats {
    size: usize,
    err_sum: f64,
    err_max: f64,
}

fn score(alpha: f64, mean_err: f64, n: usize, size: usize, err_sum: f64) -> f64 {
    if size == 0 || mean_err <= 0.0 {
        return f64::NEG_INFINITY;
    }
    alpha * ((err_sum / size as f64) / mean_err - 1.0)
        - (1.0 - alpha) * (n as f64 / size as f64 - 1.0)
}

/// The paper's upper bound of any child's score from bounds on its size, error sum and max error:
/// the score's maximum over sizes in [min_support, size_ub] with error sum min(err_ub, size * max_ub).
fn score_ub(
    p: &SliceParams,
    mean_err: f64,
    n: usize,
    size_ub: usize,
    err_ub: f64,
    max_ub: f64,
) -> f64 {
    if size_ub < p.min_support {
        return f64::NEG_INFINITY;
    }
    let mut best = f64::NEG_INFINITY;
    let mut try_size = |s: usize| {
        if s >= p.min_support && s <= size_ub && s > 0 {
            let e = err_ub.min(s as f64 * max_ub);
            best = best.max(score(p.alpha, mean_err, n, s, e));
        }
    };
    try_size(p.min_support);
    try_size(size_ub);
    if max_ub > 0.0 {
        let knee = (err_ub / max_ub).floor() as usize;
        try_size(knee);
        try_size(knee + 1);
    }
    best
}

/// The error vector in the form a row set's statistics are quickest to take from: a bitset when
/// every error is 0 or 1 (0/1 error, the negative-flip indicator), so a slice's error sum is one
/// more AND and popcount; otherwise the values, summed over the set's rows.
enum Errors<'a> {
    Bits(Vec<u64>),
    Values(&'a [f64]),
}

impl<'a> Errors<'a> {
    fn new(errors: &'a [f64]) -> Errors<'a> {
        if errors.iter().all(|&e| e == 0.0 || e == 1.0) {
            let mut bits = vec![0u64; errors.len().div_ceil(64)];
            for (r, &e) in errors.iter().enumerate() {
                if e == 1.0 {
                    bits[r / 64] |= 1 << (r % 64);
                }
            }
            Errors::Bits(bits)
        } else {
            Errors::Values(errors)
        }
    }

    /// Size, error sum and largest error of the rows in `a AND b` (the same numbers, bit for
    /// bit, whichever form the errors take: 0/1 sums are exact integers in an f64).
    #[inline(always)]
    fn stats_and(&self, a: &[u64], b: &[u64]) -> Stats {
        let mut size = 0u64;
        match self {
            Errors::Bits(e) => {
                let mut err = 0u64;
                for ((&x, &y), &z) in a.iter().zip(b).zip(e) {
                    let w = x & y;
                    size += u64::from(w.count_ones());
                    err += u64::from((w & z).count_ones());
                }
                Stats {
                    size: size as usize,
                    err_sum: err as f64,
                    err_max: if err > 0 { 1.0 } else { 0.0 },
                }
            }
            Errors::Values(errors) => {
                let (mut err_sum, mut err_max) = (0.0, 0.0f64);
                for (w, (&x, &y)) in a.iter().zip(b).enumerate() {
                    let mut word = x & y;
                    size += u64::from(word.count_ones());
                    while word != 0 {
                        let e = errors[w * 64 + word.trailing_zeros() as usize];
                        err_sum += e;
                        err_max = err_max.max(e);
                        word &= word - 1;
                    }
                }
                Stats {
                    size: size as usize,
                    err_sum,
                    err_max,
                }
            }
        }
    }
}

/// A valid slice of the current level: its predicates and statistics. Its rows are not kept:
/// they are the AND of its predicates' value sets, formed again when its children are made
/// (kept, one bitset per valid slice was most of the search's memory and page faults).
struct Node {
    key: Key,
    stats: Stats,
}

/// The top-K slices by score (only slices scoring above 0, i.e. worse than average once size is
/// accounted for), best first. Deterministic: ties break by fewer predicates, then predicates.
/// Exact: slices selecting the same rows as a better one are kept (grouping them is
/// [`crate::slice_groups`]'s work).
pub fn find_slices(features: &[SliceFeature], errors: &[f64], p: &SliceParams) -> Vec<Slice> {
    find_slices_with_rows(features, errors, p)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// [`find_slices`], each slice with its rows as a bitset (bit `r % 64` of word `r / 64`).
pub fn find_slices_with_rows(
    features: &[SliceFeature],
    errors: &[f64],
    p: &SliceParams,
) -> Vec<(Slice, Vec<u64>)> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vpopcntdq") {
            // SAFETY: this CPU has the features the function is compiled for, checked.
            return unsafe { find_slices_avx512(features, errors, p) };
        }
        if has!("popcnt") {
            // SAFETY: this CPU has POPCNT, checked just above.
            return unsafe { find_slices_popcnt(features, errors, p) };
        }
    }
    find_slices_here(features, errors, p)
}

/// [`find_slices_with_rows`] compiled with AVX-512's vector popcount: the row-set sizes and
/// error sums are popcounts of ANDed bitsets, which the baseline x86-64 build (no POPCNT
/// instruction) counts with shifts, masks and byte sums. The same slices.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,avx2,avx512f,avx512bw,avx512vl,avx512vpopcntdq")]
fn find_slices_avx512(
    features: &[SliceFeature],
    errors: &[f64],
    p: &SliceParams,
) -> Vec<(Slice, Vec<u64>)> {
    find_slices_here(features, errors, p)
}

/// [`find_slices_with_rows`] compiled with the POPCNT instruction. The same slices.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn find_slices_popcnt(
    features: &[SliceFeature],
    errors: &[f64],
    p: &SliceParams,
) -> Vec<(Slice, Vec<u64>)> {
    find_slices_here(features, errors, p)
}

#[inline(always)]
fn find_slices_here(
    features: &[SliceFeature],
    errors: &[f64],
    p: &SliceParams,
) -> Vec<(Slice, Vec<u64>)> {
    let n = errors.len();
    if n == 0 || p.k == 0 {
        return Vec::new();
    }
    let mean_err = errors.iter().sum::<f64>() / n as f64;
    if mean_err <= 0.0 {
        return Vec::new();
    }
    let words = n.div_ceil(64);
    let errs = Errors::new(errors);
    let all = vec![u64::MAX; words];
    // Level 1: one bitset per feature value, `basic[feature][value]`.
    let basic: Vec<Vec<Vec<u64>>> = features
        .iter()
        .map(|feat| {
            let mut sets = vec![vec![0u64; words]; feat.values as usize];
            for (r, &c) in feat.codes.iter().enumerate() {
                if c < feat.values {
                    sets[c as usize][r / 64] |= 1 << (r % 64);
                }
            }
            sets
        })
        .collect();
    // The top K with their row sets (for grouping the same rows described several ways).
    let mut top: Vec<(Slice, Vec<u64>)> = Vec::new();
    let kth = |top: &Vec<(Slice, Vec<u64>)>| {
        if top.len() < p.k {
            0.0
        } else {
            top[p.k - 1].0.score
        }
    };
    // Whether a slice with these statistics scores its way into the top K as it stands.
    let may_enter = |top: &Vec<(Slice, Vec<u64>)>, st: &Stats| {
        let sc = score(p.alpha, mean_err, n, st.size, st.err_sum);
        sc > 0.0 && st.size >= p.min_support && (top.len() < p.k || sc > kth(top))
    };
    let consider =
        |top: &mut Vec<(Slice, Vec<u64>)>, key: &[(usize, u32)], st: &Stats, bits: &[u64]| {
            if may_enter(top, st) {
                let sc = score(p.alpha, mean_err, n, st.size, st.err_sum);
                top.push((
                    Slice {
                        predicates: key.to_vec(),
                        size: st.size,
                        error: st.err_sum / st.size as f64,
                        score: sc,
                    },
                    bits.to_vec(),
                ));
                top.sort_by(|a, b| {
                    b.0.score
                        .total_cmp(&a.0.score)
                        .then(a.0.predicates.len().cmp(&b.0.predicates.len()))
                        .then(a.0.predicates.cmp(&b.0.predicates))
                });
                top.truncate(p.k);
            }
        };

    // Valid slices of the current level, sorted by key: enough support and some error (else no
    // child can score).
    let mut level: Vec<Node> = Vec::new();
    for (f, sets) in basic.iter().enumerate() {
        for (v, bits) in sets.iter().enumerate() {
            let st = errs.stats_and(bits, &all);
            // A value every row has selects nothing: it would only repeat its children's parents.
            if st.size >= p.min_support && st.size < n && st.err_sum > 0.0 {
                let key = vec![(f, v as u32)];
                consider(&mut top, &key, &st, bits);
                level.push(Node { key, stats: st });
            }
        }
    }

    // The rows of a slice: the AND of its predicates' value sets.
    let rows_of = |key: &[(usize, u32)], out: &mut Vec<u64>| {
        out.clear();
        out.extend_from_slice(&basic[key[0].0][key[0].1 as usize]);
        for &(f, v) in &key[1..] {
            for (o, &b) in out.iter_mut().zip(&basic[f][v as usize]) {
                *o &= b;
            }
        }
    };
    let (mut a_bits, mut bits) = (Vec::with_capacity(words), Vec::with_capacity(words));
    let mut parent = Vec::new();
    for l in 2..=p.max_level {
        // The last level's slices have no children: their rows are needed only by a slice
        // that enters the top K (usually the last level has the most candidates, and their
        // bitsets were most of the search's allocation and page faults).
        let last = l == p.max_level;
        let index: FxHashMap<&[(usize, u32)], usize> = level
            .iter()
            .enumerate()
            .map(|(i, node)| (node.key.as_slice(), i))
            .collect();
        let mut next: Vec<Node> = Vec::new();
        // Candidates as Apriori builds them (Agrawal & Srikant, VLDB 1994): two parents that
        // share every predicate but the last, whose last predicates are on different
        // features. Every child whose parents are all valid arises exactly once, in ascending
        // key order, since the level is sorted.
        let mut g = 0;
        while g < level.len() {
            let prefix = &level[g].key[..level[g].key.len() - 1];
            let end = g + level[g..]
                .iter()
                .take_while(|x| &x.key[..x.key.len() - 1] == prefix)
                .count();
            for i in g..end {
                rows_of(&level[i].key, &mut a_bits);
                for j in i + 1..end {
                    let (a, b) = (&level[i], &level[j]);
                    let (la, lb) = (a.key[a.key.len() - 1], b.key[b.key.len() - 1]);
                    if la.0 == lb.0 {
                        continue;
                    }
                    let mut cand: Key = Vec::with_capacity(a.key.len() + 1);
                    cand.extend_from_slice(&a.key);
                    cand.push(lb);
                    // Bounds from all parents; a missing parent was invalid, so the child is
                    // too. `a` and `b` are the parents that each lack one of the last two predicates;
                    // the loop looks up the others.
                    let mut size_ub = a.stats.size.min(b.stats.size);
                    let mut err_ub = a.stats.err_sum.min(b.stats.err_sum);
                    let mut max_ub = a.stats.err_max.min(b.stats.err_max);
                    let mut all_parents = true;
                    for skip in 0..cand.len() - 2 {
                        parent.clear();
                        parent.extend(
                            cand.iter()
                                .enumerate()
                                .filter(|(i, _)| *i != skip)
                                .map(|(_, x)| *x),
                        );
                        match index.get(parent.as_slice()) {
                            Some(&k) => {
                                let st = &level[k].stats;
                                size_ub = size_ub.min(st.size);
                                err_ub = err_ub.min(st.err_sum);
                                max_ub = max_ub.min(st.err_max);
                            }
                            None => {
                                all_parents = false;
                                break;
                            }
                        }
                    }
                    if !all_parents {
                        continue;
                    }
                    let ub = score_ub(p, mean_err, n, size_ub, err_ub, max_ub);
                    if ub <= kth(&top) {
                        continue;
                    }
                    let value_rows = &basic[lb.0][lb.1 as usize];
                    let st = errs.stats_and(&a_bits, value_rows);
                    if st.size >= p.min_support && st.err_sum > 0.0 {
                        if may_enter(&top, &st) {
                            bits.clear();
                            bits.extend(a_bits.iter().zip(value_rows).map(|(x, y)| x & y));
                            consider(&mut top, &cand, &st, &bits);
                        }
                        if !last {
                            next.push(Node {
                                key: cand,
                                stats: st,
                            });
                        }
                    }
                }
            }
            g = end;
        }
        drop(index);
        if next.is_empty() {
            break;
        }
        level = next;
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_core::rng::SplitMix64;

    #[test]
    fn finds_a_planted_two_feature_slice() {
        // Errors are noise (10%) everywhere except where a = 2 AND b = 1, where they are 80%.
        let n = 20_000;
        let mut rng = SplitMix64::new(3);
        let a: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
        let b: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        let c: Vec<u32> = (0..n).map(|_| rng.below(5) as u32).collect();
        let errors: Vec<f64> = (0..n)
            .map(|i| {
                let p = if a[i] == 2 && b[i] == 1 { 0.8 } else { 0.1 };
                f64::from(u8::from((rng.below(1000) as f64) < p * 1000.0))
            })
            .collect();
        let feats = vec![
            SliceFeature {
                codes: a,
                values: 4,
            },
            SliceFeature {
                codes: b,
                values: 3,
            },
            SliceFeature {
                codes: c,
                values: 5,
            },
        ];
        let top = find_slices(&feats, &errors, &SliceParams::default());
        assert_eq!(top[0].predicates, vec![(0, 2), (1, 1)], "{top:?}");
        assert!(top[0].error > 0.7);
        // Exactness: the best slice's stats match a direct count.
        let size = (0..n)
            .filter(|&i| feats[0].codes[i] == 2 && feats[1].codes[i] == 1)
            .count();
        assert_eq!(top[0].size, size);
    }

    #[test]
    fn the_same_rows_described_twice_are_both_found_the_shorter_first() {
        // b is a relabelling of a: every a-value slice has a b-value twin with the same rows.
        let n = 4000;
        let mut rng = SplitMix64::new(4);
        let a: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
        let b: Vec<u32> = a.iter().map(|&x| 3 - x).collect();
        let errors: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from(rng.below(100) < if a[i] == 1 { 60 } else { 10 })))
            .collect();
        let feats = vec![
            SliceFeature {
                codes: a,
                values: 4,
            },
            SliceFeature {
                codes: b,
                values: 4,
            },
        ];
        // Exact top K: the twin is there, with the same statistics, and the conjunction of the
        // two (the same rows again) after both. Grouping them is `slice_groups`' work.
        let top = find_slices(&feats, &errors, &SliceParams::default());
        let keys: Vec<&[(usize, u32)]> = top.iter().take(3).map(|s| &s.predicates[..]).collect();
        assert_eq!(
            keys,
            [&[(0, 1)][..], &[(1, 2)], &[(0, 1), (1, 2)]],
            "{top:?}"
        );
        assert_eq!((top[0].size, top[0].score), (top[1].size, top[1].score));
    }

    #[test]
    fn nothing_to_find_without_errors() {
        let feats = vec![SliceFeature {
            codes: vec![0, 1, 0, 1],
            values: 2,
        }];
        assert!(find_slices(&feats, &[0.0; 4], &SliceParams::default()).is_empty());
    }

    #[test]
    fn pruning_keeps_the_exact_top_k() {
        // Compare against brute force over all 1- and 2-predicate slices.
        let n = 3000;
        let mut rng = SplitMix64::new(9);
        let feats: Vec<SliceFeature> = (0..4)
            .map(|_| SliceFeature {
                codes: (0..n).map(|_| rng.below(3) as u32).collect(),
                values: 3,
            })
            .collect();
        let errors: Vec<f64> = (0..n)
            .map(|i| {
                let bump = if feats[1].codes[i] == 0 { 300 } else { 0 }
                    + if feats[3].codes[i] == 2 { 200 } else { 0 };
                f64::from(u8::from(rng.below(1000) < 100 + bump))
            })
            .collect();
        let p = SliceParams {
            k: 5,
            max_level: 2,
            min_support: 10,
            alpha: 0.95,
            overlap: 0.5,
        };
        let top = find_slices(&feats, &errors, &p);
        let mean = errors.iter().sum::<f64>() / n as f64;
        let mut all = Vec::new();
        for f in 0..4 {
            for v in 0..3u32 {
                let rows: Vec<usize> = (0..n).filter(|&i| feats[f].codes[i] == v).collect();
                all.push((vec![(f, v)], rows));
                for g in f + 1..4 {
                    for w in 0..3u32 {
                        let rows: Vec<usize> = (0..n)
                            .filter(|&i| feats[f].codes[i] == v && feats[g].codes[i] == w)
                            .collect();
                        all.push((vec![(f, v), (g, w)], rows));
                    }
                }
            }
        }
        let mut scored: Vec<(f64, Vec<(usize, u32)>)> = all
            .into_iter()
            .filter(|(_, rows)| rows.len() >= p.min_support)
            .map(|(k, rows)| {
                let e: f64 = rows.iter().map(|&i| errors[i]).sum();
                (score(p.alpha, mean, n, rows.len(), e), k)
            })
            .filter(|(s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(a.1.len().cmp(&b.1.len()))
                .then(a.1.cmp(&b.1))
        });
        let expect: Vec<Vec<(usize, u32)>> = scored.into_iter().take(5).map(|(_, k)| k).collect();
        let got: Vec<Vec<(usize, u32)>> = top.into_iter().map(|s| s.predicates).collect();
        assert_eq!(got, expect);
    }

    /// Every conjunction of up to `p.max_level` predicates on distinct features, scored
    /// directly from the rows: the exact top K that SliceLine's pruning must reproduce.
    fn brute_force(feats: &[SliceFeature], errors: &[f64], p: &SliceParams) -> Vec<Slice> {
        let n = errors.len();
        let mean = errors.iter().sum::<f64>() / n as f64;
        let mut found = Vec::new();
        let mut stack: Vec<Vec<(usize, u32)>> = vec![Vec::new()];
        while let Some(key) = stack.pop() {
            if !key.is_empty() {
                let rows: Vec<usize> = (0..n)
                    .filter(|&i| key.iter().all(|&(f, v)| feats[f].codes[i] == v))
                    .collect();
                let e: f64 = rows.iter().map(|&i| errors[i]).sum();
                let sc = score(p.alpha, mean, n, rows.len(), e);
                if rows.len() >= p.min_support && sc > 0.0 {
                    found.push(Slice {
                        predicates: key.clone(),
                        size: rows.len(),
                        error: e / rows.len() as f64,
                        score: sc,
                    });
                }
            }
            if key.len() < p.max_level {
                let from = key.last().map_or(0, |&(f, _)| f + 1);
                for (f, feat) in feats.iter().enumerate().skip(from) {
                    for v in 0..feat.values {
                        let mut k = key.clone();
                        k.push((f, v));
                        stack.push(k);
                    }
                }
            }
        }
        found.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.predicates.len().cmp(&b.predicates.len()))
                .then(a.predicates.cmp(&b.predicates))
        });
        found.truncate(p.k);
        found
    }

    #[test]
    fn exact_top_k_at_three_levels_for_zero_one_and_real_errors() {
        // A planted three-feature slice among five features; 0/1 errors take the bitset path,
        // graded errors the per-row sums. Both must equal brute force, slice for slice.
        let n = 2500;
        let mut rng = SplitMix64::new(21);
        let feats: Vec<SliceFeature> = (0..5)
            .map(|f| SliceFeature {
                codes: (0..n).map(|_| rng.below(2 + f as u64 % 3) as u32).collect(),
                values: 2 + f as u32 % 3,
            })
            .collect();
        let planted =
            |i: usize| feats[0].codes[i] == 1 && feats[2].codes[i] == 0 && feats[4].codes[i] == 2;
        let zero_one: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from(rng.below(100) < if planted(i) { 70 } else { 15 })))
            .collect();
        let graded: Vec<f64> = zero_one
            .iter()
            .map(|&e| e * (0.25 + rng.below(1000) as f64 / 1000.0))
            .collect();
        let p = SliceParams {
            k: 8,
            max_level: 3,
            min_support: 8,
            alpha: 0.95,
            overlap: 0.5,
        };
        for errors in [&zero_one, &graded] {
            let got = find_slices_with_rows(&feats, errors, &p);
            let slices: Vec<Slice> = got.iter().map(|(s, _)| s.clone()).collect();
            assert_eq!(slices, brute_force(&feats, errors, &p));
            // Each slice's rows are those its predicates select.
            for (s, rows) in &got {
                for i in 0..n {
                    let inside = s.predicates.iter().all(|&(f, v)| feats[f].codes[i] == v);
                    assert_eq!(rows[i / 64] >> (i % 64) & 1 == 1, inside, "{s:?} row {i}");
                }
            }
            // Every build this CPU can run, whichever `find_slices` chose.
            assert_eq!(find_slices_here(&feats, errors, &p), got);
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("popcnt") {
                    // SAFETY: POPCNT checked just above.
                    assert_eq!(unsafe { find_slices_popcnt(&feats, errors, &p) }, got);
                }
                if has!("avx512f")
                    && has!("avx512bw")
                    && has!("avx512vl")
                    && has!("avx512vpopcntdq")
                {
                    // SAFETY: the features checked just above.
                    assert_eq!(unsafe { find_slices_avx512(&feats, errors, &p) }, got);
                }
            }
            assert!(
                slices
                    .iter()
                    .any(|s| s.predicates == vec![(0, 1), (2, 0), (4, 2)]),
                "{slices:?}"
            );
        }
    }
}
