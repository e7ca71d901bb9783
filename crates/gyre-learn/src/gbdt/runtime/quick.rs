//! Scoring by QuickScorer (Lucchese, Nardini, Orlando, Perego, Tonellotto, Venturini,
//! "QuickScorer: a Fast Algorithm to Rank Documents with Additive Ensembles of Regression Trees",
//! SIGIR 2015), over the runtime's codes.
//!
//! Each tree keeps a bit per leaf, its leaves numbered left to right. A node whose test is false
//! for the row (the row goes right) rules out every leaf of its left subtree: one AND with a mask.
//! Once every false node of every tree has been applied, the row's leaf in a tree is its lowest
//! bit still set (the leftmost leaf no false node ruled out is the one the walk reaches; the
//! paper's Theorem 1). The false nodes are found feature by feature, not tree by tree:
//! - a numeric node is false for a present value when its interval ends below the value's code:
//!   each code has its own list, or, where those would take too much memory, the feature's nodes
//!   sorted by that end give a code's false nodes as a prefix of one list;
//! - for a missing value (code 0), the false nodes are those that send missing right: a list;
//! - a categorical feature has a list per code (`Coding::Categorical`: the categories some node's
//!   set spells out, plus missing and one code for all the others).
//!
//! In a code's own list a tree has one entry, the AND of its false nodes' masks.
//!
//! A row then costs one pass over contiguous (tree, mask) pairs, without the dependent loads of
//! a walk from node to node: that chain of loads is what bounds a walk.
//! A model qualifies when every tree is a proper tree of at most 64 leaves and its entries and
//! lists number at most `MAX_ENTRIES`; any other model keeps the walk
//! (`GbdtModel::prediction_engine` says which).

use super::{Coding, Runtime};

/// Entries and lists at most (an entry 8 or 16 bytes, a list 8): a categorical feature has a list
/// per code with up to one entry per tree, so many categories split in many trees could need
/// many; past this the model keeps the walk.
const MAX_ENTRIES: usize = 1 << 20;

/// A numeric feature gets a list per code (one entry per tree) when that takes at most this
/// many entries (codes times the trees that split it); else prefixes of one sorted list (one
/// entry per node). On Adult's 200 trees all the lists take 92k entries (0.7 MB, counted in a
/// one-off instrumented build), and per-code lists took a lone row 1.5 -> 1.1 us, a block
/// 0.75 -> 0.6 us per row (`bench_adult`, alternating builds).
pub(super) const PER_CODE_MAX: usize = 1 << 16;

/// A tree's bit per leaf: 32 bits when every tree has at most 32 leaves (the lists then take
/// 8 bytes an entry instead of 16), else 64.
pub(crate) trait LeafBits:
    Copy + std::fmt::Debug + std::ops::BitAnd<Output = Self> + std::ops::BitAndAssign
{
    const ALL: Self;
    const LEAVES: usize;
    /// From a 64-bit mask whose bits past `LEAVES` are all set.
    fn narrow(mask: u64) -> Self;
    fn lowest(self) -> u32;
}

impl LeafBits for u32 {
    const ALL: u32 = u32::MAX;
    const LEAVES: usize = 32;
    fn narrow(mask: u64) -> u32 {
        mask as u32
    }
    fn lowest(self) -> u32 {
        self.trailing_zeros()
    }
}

impl LeafBits for u64 {
    const ALL: u64 = u64::MAX;
    const LEAVES: usize = 64;
    fn narrow(mask: u64) -> u64 {
        mask
    }
    fn lowest(self) -> u32 {
        self.trailing_zeros()
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry<M> {
    /// Zeros at the leaves of the node's left subtree.
    mask: M,
    tree: u32,
}

/// Work space of [`QuickScorer::add_scores_rows`]: each tree's leaf bits, reused between rows.
#[derive(Default)]
pub(crate) struct QuickSpace {
    narrow: Vec<u32>,
    wide: Vec<u64>,
}

/// The model's lists, with masks as narrow as its largest tree allows.
#[derive(Clone, Debug)]
pub(crate) enum QuickScorer {
    Narrow(Lists<u32>),
    Wide(Lists<u64>),
}

/// The false-node lists of a model's trees (see the module comment).
#[derive(Clone, Debug)]
pub(crate) struct Lists<M> {
    /// The features some node reads, each with the index of its code 0 in `lists` (its codes'
    /// lists follow in order).
    used: Vec<(u32, u32)>,
    /// A code's false nodes: a range of `entries`.
    lists: Vec<[u32; 2]>,
    entries: Vec<Entry<M>>,
    /// Tree `t`'s leaf values, left to right, start at `leaf_start[t]` in `values`.
    leaf_start: Vec<u32>,
    values: Vec<f64>,
}

impl QuickScorer {
    /// `None` when a tree is not a proper tree of at most 64 leaves, or the lists grow too large.
    pub(super) fn new(rt: &Runtime, per_code_max: usize) -> Option<QuickScorer> {
        let most = rt
            .trees
            .iter()
            .map(|t| t.leaf_value.len())
            .max()
            .unwrap_or(0);
        if most <= u32::LEAVES {
            Lists::new(rt, per_code_max).map(QuickScorer::Narrow)
        } else {
            Lists::new(rt, per_code_max).map(QuickScorer::Wide)
        }
    }

    /// Adds each tree's leaf value for one coded row to `out[t % out.len()]`, in tree order (the
    /// same sums as the walk, bit for bit). `bits` is scratch space.
    #[cfg(test)]
    pub(crate) fn add_scores(&self, row: &[u32], out: &mut [f64], bits: &mut QuickSpace) {
        match self {
            QuickScorer::Narrow(l) => l.add_scores(row, out, &mut bits.narrow),
            QuickScorer::Wide(l) => l.add_scores(row, out, &mut bits.wide),
        }
    }

    /// [`QuickScorer::add_scores`] for a block of coded rows (`nf` codes each), `k` outputs
    /// per row in `out`: the same sums, bit for bit.
    pub(crate) fn add_scores_rows(
        &self,
        rows: &[u32],
        nf: usize,
        k: usize,
        out: &mut [f64],
        bits: &mut QuickSpace,
    ) {
        match self {
            QuickScorer::Narrow(l) => l.add_scores_rows(rows, nf, k, out, &mut bits.narrow),
            QuickScorer::Wide(l) => l.add_scores_rows(rows, nf, k, out, &mut bits.wide),
        }
    }
}

/// Rows whose leaf values are added together in [`Lists::add_scores_rows`].
const ROWS_TOGETHER: usize = 4;

impl<M: LeafBits> Lists<M> {
    fn new(rt: &Runtime, per_code_max: usize) -> Option<Lists<M>> {
        let nf = rt.coding.len();
        let mut leaf_start = Vec::with_capacity(rt.trees.len());
        let mut values = Vec::new();
        // Per feature, its nodes as (tree, node's mask, node index).
        let mut by_feature: Vec<Vec<(u32, u64, u32)>> = vec![Vec::new(); nf];
        for (t, tree) in rt.trees.iter().enumerate() {
            let leaves = tree.leaf_value.len();
            if leaves > M::LEAVES || tree.internal + 1 != leaves {
                return None;
            }
            let mut order = Vec::with_capacity(leaves);
            let mut masks = vec![0u64; tree.internal];
            let mut seen = vec![false; tree.nodes.len()];
            in_order(tree, 0, &mut order, &mut masks, &mut seen)?;
            if order.len() != leaves {
                return None;
            }
            leaf_start.push(values.len() as u32);
            values.extend(order.iter().map(|&l| tree.leaf_value[l]));
            for (i, n) in tree.nodes[..tree.internal].iter().enumerate() {
                by_feature[n.feature as usize].push((t as u32, masks[i], i as u32));
            }
        }
        let mut used = Vec::new();
        let mut lists = Vec::new();
        let mut entries: Vec<Entry<M>> = Vec::new();
        for (f, nodes) in by_feature.iter().enumerate() {
            if nodes.is_empty() {
                continue;
            }
            used.push((f as u32, lists.len() as u32));
            let entry = |&(t, mask, _): &(u32, u64, u32)| Entry {
                mask: M::narrow(mask),
                tree: t,
            };
            let node = |&(t, _, i): &(u32, u64, u32)| &rt.trees[t as usize].nodes[i as usize];
            match &rt.coding[f] {
                Coding::Numeric { cuts } => {
                    // A node is left for codes `low..=end` (`low` 0 when missing goes left, else
                    // 1). Missing: the nodes with `low` 1.
                    let start = entries.len() as u32;
                    push_merged(
                        &mut entries,
                        nodes.iter().filter(|n| node(n).bits as u32 == 1).map(entry),
                    );
                    lists.push([start, entries.len() as u32]);
                    // Present: code `c >= 1` is past the ends below `c`.
                    let end = |n: &(u32, u64, u32)| {
                        let b = node(n).bits;
                        (b as u32) + (b >> 32) as u32
                    };
                    let codes = cuts.len() as u32 + 1;
                    // Each code's own list, one entry per tree, within `per_code_max` entries;
                    // else the prefixes of one list sorted by interval end.
                    let trees = {
                        let mut t: Vec<u32> = nodes.iter().map(|n| n.0).collect();
                        t.dedup();
                        t.len()
                    };
                    if codes as usize * trees <= per_code_max {
                        for c in 1..=codes {
                            let start = entries.len() as u32;
                            push_merged(
                                &mut entries,
                                nodes.iter().filter(|n| end(n) < c).map(entry),
                            );
                            lists.push([start, entries.len() as u32]);
                        }
                    } else {
                        let mut sorted = nodes.clone();
                        sorted.sort_by_key(end);
                        let base = entries.len() as u32;
                        entries.extend(sorted.iter().map(entry));
                        for c in 1..=codes {
                            let below = sorted.partition_point(|n| end(n) < c) as u32;
                            lists.push([base, base + below]);
                        }
                    }
                }
                Coding::Categorical { limit } => {
                    for c in 0..limit + 2 {
                        let start = entries.len() as u32;
                        push_merged(
                            &mut entries,
                            nodes
                                .iter()
                                .filter(|n| !rt.goes_left(node(n), c))
                                .map(entry),
                        );
                        lists.push([start, entries.len() as u32]);
                        if entries.len() + lists.len() > MAX_ENTRIES {
                            return None;
                        }
                    }
                }
                Coding::Unused => unreachable!("a node reads a feature with a coding"),
            }
            if entries.len() + lists.len() > MAX_ENTRIES {
                return None;
            }
        }
        Some(Lists {
            used,
            lists,
            entries,
            leaf_start,
            values,
        })
    }

    /// With one output, the rows of a block are taken [`ROWS_TOGETHER`] at a time: their
    /// leaves found one row after another, then their leaf values added tree by tree, one sum
    /// per row, side by side (a row's sum is a chain of dependent adds, one per tree, which
    /// alone kept the CPU waiting on each add). Each row still adds its trees in order.
    fn add_scores_rows(
        &self,
        rows: &[u32],
        nf: usize,
        k: usize,
        out: &mut [f64],
        bits: &mut Vec<M>,
    ) {
        if k != 1 {
            for (o, row) in out.chunks_mut(k).zip(rows.chunks(nf)) {
                self.add_scores(row, o, bits);
            }
            return;
        }
        let trees = self.leaf_start.len();
        bits.clear();
        bits.resize(ROWS_TOGETHER * trees, M::ALL);
        for (outs, group) in out
            .chunks_mut(ROWS_TOGETHER)
            .zip(rows.chunks(ROWS_TOGETHER * nf))
        {
            if outs.len() < ROWS_TOGETHER {
                for (o, row) in outs.chunks_mut(1).zip(group.chunks(nf)) {
                    self.add_scores(row, o, bits);
                }
                return;
            }
            for (b, row) in bits.chunks_mut(trees).zip(group.chunks(nf)) {
                b.fill(M::ALL);
                self.false_nodes(row, b);
            }
            let mut sums: [f64; ROWS_TOGETHER] = outs.try_into().expect("a full group");
            for t in 0..trees {
                let start = self.leaf_start[t];
                for (j, sum) in sums.iter_mut().enumerate() {
                    *sum += self.values[(start + bits[j * trees + t].lowest()) as usize];
                }
            }
            outs.copy_from_slice(&sums);
        }
    }

    /// Clears, in each tree's bits, the leaves that the row's false nodes rule out.
    #[inline(always)]
    fn false_nodes(&self, row: &[u32], bits: &mut [M]) {
        for &(f, first) in &self.used {
            let [start, end] = self.lists[(first + row[f as usize]) as usize];
            for e in &self.entries[start as usize..end as usize] {
                bits[e.tree as usize] &= e.mask;
            }
        }
        debug_assert!(
            self.leaf_start
                .iter()
                .zip(bits.iter())
                .enumerate()
                .all(|(t, (&start, &b))| {
                    let end = self
                        .leaf_start
                        .get(t + 1)
                        .map_or(self.values.len(), |&e| e as usize);
                    (start + b.lowest()) < end as u32
                }),
            "a tree's lowest leaf bit lies past its leaves"
        );
    }

    fn add_scores(&self, row: &[u32], out: &mut [f64], bits: &mut Vec<M>) {
        bits.clear();
        bits.resize(self.leaf_start.len(), M::ALL);
        self.false_nodes(row, bits);
        let leaf_values = self
            .leaf_start
            .iter()
            .zip(bits.iter())
            .map(|(&start, &b)| self.values[(start + b.lowest()) as usize]);
        if let [one] = out {
            // One output: the sum stays in a register. Adding through `out[class]` stored and
            // reloaded it per tree, a third of this function's time in a served request.
            *one = leaf_values.fold(*one, |sum, v| sum + v);
            return;
        }
        let k = out.len();
        let mut class = 0;
        for v in leaf_values {
            out[class] += v;
            class = if class + 1 == k { 0 } else { class + 1 };
        }
    }
}

/// Appends a code's list, in tree order, with one entry per tree: the AND of its nodes' masks.
/// Fewer entries, and no two in a row that update the same tree's bits (each would wait for the
/// other's store).
fn push_merged<M: LeafBits>(entries: &mut Vec<Entry<M>>, list: impl Iterator<Item = Entry<M>>) {
    let start = entries.len();
    for e in list {
        match entries[start..].last_mut() {
            Some(last) if last.tree == e.tree => last.mask &= e.mask,
            _ => entries.push(e),
        }
    }
}

/// Numbers the leaves under `node` left to right into `order` (leaf ids) and sets each internal
/// node's mask; `None` when a node is reached twice (not a proper tree). Recursion depth is
/// bounded by the 64 leaves.
fn in_order(
    tree: &super::Tree,
    node: usize,
    order: &mut Vec<usize>,
    masks: &mut [u64],
    seen: &mut [bool],
) -> Option<()> {
    if std::mem::replace(&mut seen[node], true) {
        return None;
    }
    if node >= tree.internal {
        order.push(node - tree.internal);
        return Some(());
    }
    let [left, right] = tree.nodes[node].children.map(|c| c as usize);
    let first = order.len();
    in_order(tree, left, order, masks, seen)?;
    let end = order.len();
    in_order(tree, right, order, masks, seen)?;
    // Leaves `first..end` (fewer than 64 of them, so the shift cannot overflow).
    masks[node] = !(((1u64 << (end - first)) - 1) << first);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::super::model::FlatTree;
    use super::*;
    use crate::rng::Rng;

    /// A random proper tree of `leaves` leaves over features 0 and 1 (numeric, thresholds on a
    /// small grid so that nodes share cuts) and 2 (categorical, sets of up to three words: past
    /// one 64-bit mask of codes).
    fn random_tree(rng: &mut Rng, leaves: usize) -> FlatTree {
        let mut t = FlatTree::without_nodes((0..leaves).map(|l| l as f64 * 0.25 - 1.0).collect());
        grow(&mut t, rng, leaves, &mut 0);
        // Leaf ids in a random order, not left to right, so the scorer's own numbering matters.
        let mut perm: Vec<i32> = (0..leaves as i32).collect();
        rng.shuffle(&mut perm);
        for c in t.left.iter_mut().chain(t.right.iter_mut()) {
            if *c < 0 {
                *c = !perm[!*c as usize];
            }
        }
        let mut values = vec![0.0; leaves];
        for (l, &p) in perm.iter().enumerate() {
            values[p as usize] = t.leaf_value[l];
        }
        t.leaf_value = values;
        t
    }

    /// Adds a subtree of `n` leaves (numbered from `next_leaf`) and returns its reference.
    fn grow(t: &mut FlatTree, rng: &mut Rng, n: usize, next_leaf: &mut i32) -> i32 {
        if n == 1 {
            *next_leaf += 1;
            return !(*next_leaf - 1);
        }
        let f = rng.below(3);
        t.feature.push(f as u32);
        t.default_left.push(rng.below(2) == 0);
        if f == 2 {
            t.cat.push((t.cat_offsets.len() - 1) as i32);
            let words = 1 + rng.below(3);
            t.cat_bits
                .extend((0..words).map(|_| rng.next_u64() as u32 & rng.next_u64() as u32));
            t.cat_offsets.push(t.cat_bits.len() as u32);
            t.threshold.push(0.0);
        } else {
            t.cat.push(-1);
            t.threshold.push(rng.below(12) as f64 - 4.0);
        }
        t.left.push(0);
        t.right.push(0);
        let i = t.feature.len() - 1;
        let k = 1 + rng.below(n - 1);
        t.left[i] = grow(t, rng, k, next_leaf);
        t.right[i] = grow(t, rng, n - k, next_leaf);
        i as i32
    }

    /// Every code of every feature of `rt`: the range a coded row's values come from.
    fn code_counts(rt: &Runtime) -> Vec<u32> {
        rt.coding
            .iter()
            .map(|c| match c {
                Coding::Numeric { cuts } => cuts.len() as u32 + 2,
                Coding::Categorical { limit } => limit + 2,
                Coding::Unused => 1,
            })
            .collect()
    }

    fn random_row(rng: &mut Rng, codes: &[u32]) -> Vec<u32> {
        codes
            .iter()
            .map(|&n| rng.below(n as usize) as u32)
            .collect()
    }

    #[test]
    fn per_code_and_prefix_lists_reach_the_walks_leaves() {
        let mut rng = Rng::new(7);
        let kinds = [Some(false), Some(false), Some(true)];
        for leaves in [1, 2, 5, 31, 32, 33, 64] {
            let trees: Vec<FlatTree> = (0..40).map(|_| random_tree(&mut rng, leaves)).collect();
            for t in &trees {
                t.validate(3).unwrap();
            }
            // One tree at a time (its leaf values differ, so the score names the leaf), then the
            // forest: every tree's lists side by side, and their sum in tree order.
            for (trees, rows) in trees[..10]
                .iter()
                .map(|t| (std::slice::from_ref(t), 100))
                .chain([(&trees[..], 300)])
            {
                let rt = Runtime::new(trees, &kinds);
                let codes = code_counts(&rt);
                for per_code_max in [0, usize::MAX] {
                    let q = QuickScorer::new(&rt, per_code_max).expect("proper trees");
                    let mut space = QuickSpace::default();
                    let mut block = Vec::new();
                    let mut walks = Vec::new();
                    for _ in 0..rows {
                        let row = random_row(&mut rng, &codes);
                        let mut walk = 0.0;
                        for t in 0..rt.num_trees() {
                            walk += rt.leaf_value(t, rt.leaf(t, &row));
                        }
                        let mut quick = [0.0];
                        q.add_scores(&row, &mut quick, &mut space);
                        assert_eq!(
                            quick[0].to_bits(),
                            walk.to_bits(),
                            "{} trees of {leaves} leaves, row {row:?}",
                            trees.len()
                        );
                        block.extend_from_slice(&row);
                        walks.push(walk);
                    }
                    // The rows as one block, taken several at a time (the row count is not a
                    // multiple of ROWS_TOGETHER: the last ones alone), then with 2 outputs.
                    let nf = codes.len();
                    let used = rows - 1;
                    let mut out = vec![0.0; used];
                    q.add_scores_rows(&block[..used * nf], nf, 1, &mut out, &mut space);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&out), bits(&walks[..used]), "block of {used}");
                    let mut two = vec![0.0; 2 * used];
                    q.add_scores_rows(&block[..used * nf], nf, 2, &mut two, &mut space);
                    for (r, o) in two.chunks(2).enumerate() {
                        let mut want = [0.0; 2];
                        q.add_scores(&block[r * nf..(r + 1) * nf], &mut want, &mut space);
                        assert_eq!(bits(o), bits(&want), "2 outputs, row {r}");
                    }
                }
            }
        }
    }
}
