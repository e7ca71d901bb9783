//! Distinct failure slices: SliceLine's top candidates grouped by the rows they select, so that
//! one group of rows described several ways (KDD Cup 99: 132 rows as `service`, `protocol` and
//! a byte count; flights: five top slices of a diff over much the same 200 rows) is reported
//! once, its other descriptions shown under it.
//!
//! The overlap rule. Two slices A and B select mostly the same rows when the Jaccard similarity
//! of their row sets (Jaccard, "The distribution of the flora in the alpine zone", New Phytologist
//! 11(2), 1912), J = |A ∩ B| / |A ∪ B|, is at least `overlap` (default 0.5). At 0.5 the rule
//! has a plain reading: since |A ∪ B| >= max(|A|, |B|), J >= 0.5 means that the shared rows are
//! at least half of *each* slice, so each one's error is mostly made of the other's rows and
//! fixing one mostly fixes the other. A sharper region inside a slice (a child with less than
//! half its parent's rows) stays a slice of its own: it says where inside the parent the
//! errors are.
//!
//! The grouping is the leader algorithm (Hartigan, "Clustering Algorithms", Wiley 1975, ch. 3):
//! candidates in SliceLine's order (best score first); each joins the reported slice it
//! overlaps most (J >= `overlap`; ties to the better one) as another description of the same
//! rows, or else becomes a reported slice itself while fewer than K are. So the reported slices
//! are the best-scoring ones whose rows are distinct, and each description is shown once.
//! SliceLine is asked for [`CANDIDATES_PER_SLICE`] times K candidates, so that K distinct
//! groups can usually be filled; when they fill fewer, once more for
//! [`MOST_CANDIDATES_PER_SLICE`] times K; when even those are mostly one group, fewer than K
//! slices are reported (KDD's 20,000-row fixture, whose holdout has three wrong rows).

use crate::slices::{Slice, SliceFeature, SliceParams, find_slices_with_rows};

/// How many SliceLine candidates are searched per slice to report.
pub const CANDIDATES_PER_SLICE: usize = 4;
/// How many at most, when the first search's candidates fill fewer than K groups.
pub const MOST_CANDIDATES_PER_SLICE: usize = 16;

/// A reported slice and the other descriptions of (mostly) its rows, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceGroup {
    pub slice: Slice,
    pub also: Vec<Alternative>,
}

/// Another description of a reported slice's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Alternative {
    pub slice: Slice,
    /// Jaccard similarity of its rows and the reported slice's.
    pub jaccard: f64,
}

/// The top K distinct slices (K = `p.k`, overlap rule `p.overlap`), each with its alternatives.
pub fn find_slice_groups(
    features: &[SliceFeature],
    errors: &[f64],
    p: &SliceParams,
) -> Vec<SliceGroup> {
    let mut per_slice = CANDIDATES_PER_SLICE;
    loop {
        let wide = SliceParams {
            k: p.k.saturating_mul(per_slice),
            ..*p
        };
        let candidates = find_slices_with_rows(features, errors, &wide);
        // Fewer candidates than asked for are all there are: a wider search finds no more.
        let all_found = candidates.len() < wide.k;
        let groups = group(candidates, p.k, p.overlap);
        if groups.len() >= p.k || all_found || per_slice >= MOST_CANDIDATES_PER_SLICE {
            return groups;
        }
        per_slice = MOST_CANDIDATES_PER_SLICE;
    }
}

/// Jaccard similarity of two row bitsets of the given sizes.
fn jaccard(a: &[u64], b: &[u64], size_a: usize, size_b: usize) -> f64 {
    let both: usize = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x & y).count_ones() as usize)
        .sum();
    let union = size_a + size_b - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

/// Groups `candidates` (best first, each with its row bitset) by the leader algorithm: at most
/// `k` groups. A description selecting exactly a shown one's rows with predicates that only add
/// to it (`a = 1 AND b = 2` when `a = 1` already holds exactly those rows) says nothing new and
/// is left out.
pub fn group(candidates: Vec<(Slice, Vec<u64>)>, k: usize, overlap: f64) -> Vec<SliceGroup> {
    let mut groups: Vec<SliceGroup> = Vec::new();
    let mut leaders: Vec<Vec<u64>> = Vec::new();
    for (slice, rows) in candidates {
        let best = leaders
            .iter()
            .enumerate()
            .map(|(g, lead)| (g, jaccard(&rows, lead, slice.size, groups[g].slice.size)))
            .filter(|&(_, j)| j >= overlap)
            .fold(None::<(usize, f64)>, |best, (g, j)| match best {
                Some((_, bj)) if bj >= j => best,
                _ => Some((g, j)),
            });
        match best {
            Some((g, j)) => {
                let group = &mut groups[g];
                let redundant = j == 1.0
                    && std::iter::once(&group.slice)
                        .chain(
                            group
                                .also
                                .iter()
                                .filter(|a| a.jaccard == 1.0)
                                .map(|a| &a.slice),
                        )
                        .any(|shown| {
                            shown
                                .predicates
                                .iter()
                                .all(|p| slice.predicates.contains(p))
                        });
                if !redundant {
                    group.also.push(Alternative { slice, jaccard: j });
                }
            }
            None if groups.len() < k => {
                groups.push(SliceGroup {
                    slice,
                    also: Vec::new(),
                });
                leaders.push(rows);
            }
            None => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_core::rng::SplitMix64;

    fn feature(codes: Vec<u32>, values: u32) -> SliceFeature {
        SliceFeature { codes, values }
    }

    #[test]
    fn one_group_of_rows_described_three_ways_is_one_slice_with_two_alternatives() {
        // a, b and c are perfectly correlated (the same partition, relabelled), d is noise;
        // the errors are high where a = 1 (= b = 2 = c = 0) and where d = 3.
        let n = 6000;
        let mut rng = SplitMix64::new(11);
        let a: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
        let b: Vec<u32> = a.iter().map(|&x| (x + 1) % 4).collect();
        let c: Vec<u32> = a.iter().map(|&x| 3 - ((x + 2) % 4)).collect();
        let d: Vec<u32> = (0..n).map(|_| rng.below(5) as u32).collect();
        let errors: Vec<f64> = (0..n)
            .map(|i| {
                let p = if a[i] == 1 {
                    55
                } else if d[i] == 3 {
                    35
                } else {
                    8
                };
                f64::from(u8::from(rng.below(100) < p))
            })
            .collect();
        let feats = vec![
            feature(a.clone(), 4),
            feature(b, 4),
            feature(c, 4),
            feature(d, 5),
        ];
        let p = SliceParams {
            k: 3,
            ..SliceParams::default()
        };
        let groups = find_slice_groups(&feats, &errors, &p);
        let head = &groups[0];
        assert_eq!(head.slice.predicates, vec![(0, 1)], "{groups:#?}");
        let also: Vec<&[(usize, u32)]> = head
            .also
            .iter()
            .filter(|x| x.jaccard == 1.0)
            .map(|x| x.slice.predicates.as_slice())
            .collect();
        assert_eq!(also, vec![&[(1, 2)][..], &[(2, 0)][..]], "{groups:#?}");
        // No reported slice repeats another's rows, and no description only adds predicates
        // to one shown before it with the same rows (`a = 1 AND b = 2`).
        assert!(
            groups
                .iter()
                .skip(1)
                .all(|g| g.slice.predicates != vec![(1, 2)])
        );
        for g in &groups {
            let shown: Vec<&Slice> = std::iter::once(&g.slice)
                .chain(g.also.iter().map(|x| &x.slice))
                .collect();
            for (i, x) in g.also.iter().enumerate().filter(|(_, x)| x.jaccard == 1.0) {
                let earlier = &shown[..=i];
                assert!(
                    !earlier
                        .iter()
                        .any(|s| s.predicates.iter().all(|p| x.slice.predicates.contains(p))),
                    "{groups:#?}"
                );
            }
        }
        // The second group is the noise feature's bad value, not a twin of the first.
        assert!(groups[1].slice.predicates.contains(&(3, 3)), "{groups:#?}");
    }

    #[test]
    fn overlap_is_jaccard_and_the_threshold_is_inclusive() {
        let slice = |f: usize, size: usize, score: f64| Slice {
            predicates: vec![(f, 0)],
            size,
            error: 0.5,
            score,
        };
        // Rows 0..64 (64), 0..32 (32: J = 0.5), 40..104 (64: J = 24/104), 0..31 (J < 0.5).
        let bits = |lo: usize, hi: usize| {
            let mut b = vec![0u64; 2];
            for r in lo..hi {
                b[r / 64] |= 1 << (r % 64);
            }
            b
        };
        let cands = vec![
            (slice(0, 64, 4.0), bits(0, 64)),
            (slice(1, 32, 3.0), bits(0, 32)),
            (slice(2, 64, 2.0), bits(40, 104)),
            (slice(3, 31, 1.0), bits(0, 31)),
        ];
        let groups = group(cands.clone(), 10, 0.5);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].also.len(), 1);
        assert_eq!(groups[0].also[0].jaccard, 0.5);
        assert_eq!(groups[1].slice.predicates, vec![(2, 0)]);
        // k caps the groups, not the alternatives: the fourth candidate is dropped.
        let two = group(cands, 2, 0.5);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].also.len(), 1);
    }
}
