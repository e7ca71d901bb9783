//! The prediction engine: the model's trees over small integer codes instead of real values.
//!
//! Every numeric feature's values are cut only at the thresholds the trees use, so a value can be
//! replaced by its code: 0 for missing, else 1 + the number of thresholds below it. A numeric node
//! then sends a row left when the code lies in an interval, which also encodes where missing goes
//! (`x <= t_j` holds exactly when the code is at most `j + 1`, and code 0 is inside the interval
//! only when missing goes left). A categorical feature's code is 0 for missing, 1 + the category
//! code below the largest set any node spells out, and one code for every category past it (all
//! of them follow each node's default side); a node's set over these codes is a 64-bit mask, or
//! words in a side table when the feature has more than 62 such categories.
//!
//! A row is then one small integer per feature. Trees of at most 64 leaves are scored by
//! QuickScorer (`quick`): per feature and code, the nodes that send a row right, applied as masks
//! to a bitset of leaves per tree. Other trees are walked: a step is one node load, one code load
//! and integer arithmetic without a branch on the node's kind (trees mix kinds, so such a branch
//! mispredicts); a block of rows goes down each tree node by node (`leaves_by_node`), a lone row
//! down eight trees at once (`leaves_of_trees`).
//! Predictions are the same as walking real values by the stored thresholds, bit for bit (tested,
//! and checked against the binned training scores in debug builds).

mod quick;

use super::model::FlatTree;
use crate::{Column, Features};
pub(crate) use quick::{QuickScorer, QuickSpace};

/// How a feature's values become codes.
#[derive(Clone, Debug)]
enum Coding {
    /// No node reads the feature: every row gets code 0.
    Unused,
    /// Code = 1 + the number of `cuts` below the value; 0 for missing and non-finite values.
    Numeric { cuts: Vec<f64> },
    /// Code = 1 + category for categories below `limit`, `limit + 1` for the others, 0 for missing.
    Categorical { limit: u32 },
}

const NUMERIC: u8 = 0;
const SMALL_SET: u8 = 1;
const LARGE_SET: u8 = 2;

/// One internal node.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Numeric: the interval's low code (low 32 bits) and its width (high 32 bits). Small set: bit
    /// `code` set means the row goes left. Large set: the first word of the set in `large_sets`.
    bits: u64,
    /// Left then right child, indexed by "goes right" (a leaf is a node of its own, see `Tree`).
    children: [i32; 2],
    feature: u32,
    kind: u8,
}

/// A tree's internal nodes, then one node per leaf whose children are the node itself, so a
/// walk that reaches a leaf stays there: lanes walking together need no test of which ended.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
    leaf_value: Vec<f64>,
    /// Internal nodes; leaf `l` is node `internal + l`.
    internal: usize,
    /// Internal nodes on the longest path from the root.
    depth: usize,
}

/// Work space of [`Runtime::leaves_by_node`]: two row lists and the nodes still to visit.
#[derive(Default)]
pub(crate) struct WalkSpace {
    idx: Vec<u32>,
    scratch: Vec<u32>,
    stack: Vec<(usize, usize, usize, bool)>,
}

/// The trees of a model, ready to walk coded rows.
#[derive(Clone, Debug)]
pub(crate) struct Runtime {
    coding: Vec<Coding>,
    trees: Vec<Tree>,
    large_sets: Vec<u64>,
    /// The QuickScorer lists every prediction uses, when the trees qualify.
    quick: Option<QuickScorer>,
}

impl Runtime {
    /// `categorical[f]` says how the trees split feature `f` (`None`: not at all).
    pub(crate) fn new(trees: &[FlatTree], categorical: &[Option<bool>]) -> Runtime {
        let mut coding: Vec<Coding> = categorical
            .iter()
            .map(|c| match c {
                None => Coding::Unused,
                Some(false) => Coding::Numeric { cuts: Vec::new() },
                Some(true) => Coding::Categorical { limit: 0 },
            })
            .collect();
        for t in trees {
            for i in 0..t.feature.len() {
                match &mut coding[t.feature[i] as usize] {
                    Coding::Numeric { cuts } => cuts.push(t.threshold[i]),
                    Coding::Categorical { limit } => {
                        *limit = (*limit).max(32 * t.set(i).len() as u32)
                    }
                    Coding::Unused => unreachable!("every split feature has a coding"),
                }
            }
        }
        for c in &mut coding {
            if let Coding::Numeric { cuts } = c {
                // By bits, as the lookup below is by `total_cmp`: -0.0 and 0.0 stay two cuts
                // (`x <= t` treats them alike, and so do their codes).
                cuts.sort_by(f64::total_cmp);
                cuts.dedup_by(|a, b| a.to_bits() == b.to_bits());
            }
        }
        let mut large_sets = Vec::new();
        let trees = trees
            .iter()
            .map(|t| {
                let internal = t.feature.len();
                let to_node = |c: i32| if c >= 0 { c } else { internal as i32 + !c };
                let mut nodes: Vec<Node> = (0..internal)
                    .map(|i| {
                        let mut n = node(t, i, &coding[t.feature[i] as usize], &mut large_sets);
                        n.children = n.children.map(to_node);
                        n
                    })
                    .collect();
                nodes.extend((0..t.leaf_value.len()).map(|l| {
                    let me = (internal + l) as i32;
                    Node {
                        bits: 0,
                        children: [me, me],
                        feature: 0,
                        kind: NUMERIC,
                    }
                }));
                Tree {
                    depth: depth(t),
                    nodes,
                    leaf_value: t.leaf_value.clone(),
                    internal,
                }
            })
            .collect();
        let mut rt = Runtime {
            coding,
            trees,
            large_sets,
            quick: None,
        };
        // Built with the model, not on its first prediction, which would be a served request.
        rt.quick = QuickScorer::new(&rt, quick::PER_CODE_MAX);
        rt
    }

    /// The model's QuickScorer lists, `None` when its trees do not qualify (then prediction
    /// walks the trees).
    pub(crate) fn quick(&self) -> Option<&QuickScorer> {
        self.quick.as_ref()
    }

    pub(crate) fn num_features(&self) -> usize {
        self.coding.len()
    }

    /// Codes `rows` of `features` into `buf`, row-major, one code per feature. Columns of the
    /// wrong kind, and absent ones, read as missing.
    pub(crate) fn code_rows(&self, features: &Features, rows: &[u32], buf: &mut Vec<u32>) {
        let nf = self.coding.len().max(1);
        buf.clear();
        buf.resize(rows.len() * nf, 0);
        for (f, coding) in self.coding.iter().enumerate() {
            match (coding, features.columns.get(f)) {
                (Coding::Numeric { cuts }, Some(Column::Numeric(v))) => {
                    for (i, &r) in rows.iter().enumerate() {
                        let x = v[r as usize];
                        if x.is_finite() {
                            buf[i * nf + f] = 1 + cuts.partition_point(|&c| c < x) as u32;
                        }
                    }
                }
                (Coding::Categorical { limit }, Some(Column::Categorical { codes, .. })) => {
                    for (i, &r) in rows.iter().enumerate() {
                        let c = codes[r as usize];
                        if c != u32::MAX {
                            buf[i * nf + f] = 1 + c.min(*limit);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub(crate) fn num_trees(&self) -> usize {
        self.trees.len()
    }

    pub(crate) fn leaf_value(&self, tree: usize, leaf: usize) -> f64 {
        self.trees[tree].leaf_value[leaf]
    }

    #[inline(always)]
    fn goes_left(&self, n: &Node, code: u32) -> bool {
        if n.kind == LARGE_SET {
            let w = self.large_sets[n.bits as usize + (code / 64) as usize];
            return w >> (code % 64) & 1 == 1;
        }
        // Both answers from registers, then a select: no branch on the (mixed) node kinds.
        let numeric = code.wrapping_sub(n.bits as u32) <= (n.bits >> 32) as u32;
        let in_set = n.bits >> (code % 64) & 1 == 1;
        if n.kind == NUMERIC { numeric } else { in_set }
    }

    /// Whether one coded row goes left at internal node `node` of tree `t` (numbered as in the
    /// stored tree): the decision prediction takes there, for walks that visit both sides
    /// (TreeSHAP).
    pub(crate) fn goes_left_at(&self, t: usize, node: usize, row: &[u32]) -> bool {
        let n = &self.trees[t].nodes[node];
        self.goes_left(n, row[n.feature as usize])
    }

    /// The leaf one coded row reaches in tree `t`.
    #[inline]
    pub(crate) fn leaf(&self, t: usize, row: &[u32]) -> usize {
        let tree = &self.trees[t];
        let mut i = 0usize;
        while i < tree.internal {
            let n = &tree.nodes[i];
            i = n.children[usize::from(!self.goes_left(n, row[n.feature as usize]))] as usize;
        }
        i - tree.internal
    }

    /// The leaf (numbered within tree `t`) each of `n` coded rows reaches, into `leaf_of`
    /// (row-major `rows`, `nf` codes each). Node by node instead of row by row: the rows at a
    /// node are split into its two children's lists, so each row takes the steps of its own
    /// path (a lockstep walk of 8 rows took the tree's depth, 1.8x the steps on Adult), and the
    /// loop over a node's rows has no dependent loads and tests one node whose kind is known
    /// outside the loop.
    /// `space` is reused between calls.
    pub(crate) fn leaves_by_node(
        &self,
        t: usize,
        rows: &[u32],
        nf: usize,
        n: usize,
        leaf_of: &mut [u32],
        space: &mut WalkSpace,
    ) {
        let WalkSpace {
            idx,
            scratch,
            stack,
        } = space;
        let tree = &self.trees[t];
        idx.clear();
        idx.extend(0..n as u32);
        scratch.clear();
        scratch.resize(n, 0);
        stack.clear();
        // (node, its rows' range, whether they sit in `scratch` rather than `idx`): a node's
        // split writes into the other buffer, so nothing is copied back.
        stack.push((0, 0, n, false));
        while let Some((node, start, end, in_scratch)) = stack.pop() {
            let (from, to) = if in_scratch {
                (&scratch[..], &mut idx[..])
            } else {
                (&idx[..], &mut scratch[..])
            };
            if node >= tree.internal {
                let leaf = (node - tree.internal) as u32;
                for &r in &from[start..end] {
                    leaf_of[r as usize] = leaf;
                }
                continue;
            }
            let nd = tree.nodes[node];
            let f = nd.feature as usize;
            let (mut lo, mut hi) = (start, end);
            let part = (&from[start..end], rows, nf, f, to, &mut lo, &mut hi);
            match nd.kind {
                NUMERIC => {
                    let (low, span) = (nd.bits as u32, (nd.bits >> 32) as u32);
                    split(part, |code| code.wrapping_sub(low) <= span);
                }
                SMALL_SET => split(part, |code| nd.bits >> (code % 64) & 1 == 1),
                _ => split(part, |code| self.goes_left(&nd, code)),
            }
            // A child no row reaches is not visited (so the work is bounded by the rows' paths,
            // even in a tree whose nodes share children).
            if lo < end {
                stack.push((nd.children[1] as usize, lo, end, !in_scratch));
            }
            if start < lo {
                stack.push((nd.children[0] as usize, start, lo, !in_scratch));
            }
        }
    }

    /// The leaves one coded row reaches in trees `first..first + LANES`, walked together the
    /// same way as `leaves` walks rows: for a lone row (a served request), the trees' walks are
    /// the independent chains that overlap. Eight trees differ more in depth than one tree's
    /// rows do, so the walk stops once every lane sits on a leaf (checked every two steps).
    #[inline]
    pub(crate) fn leaves_of_trees<const LANES: usize>(
        &self,
        first: usize,
        row: &[u32],
    ) -> [usize; LANES] {
        let trees: &[Tree; LANES] = self.trees[first..first + LANES]
            .try_into()
            .expect("LANES trees");
        let depth = trees.iter().map(|t| t.depth).max().unwrap_or(0);
        let mut at = [0usize; LANES];
        let mut steps = 0;
        while steps < depth {
            for _ in 0..2 {
                for (a, tree) in at.iter_mut().zip(trees) {
                    let n = &tree.nodes[*a];
                    *a = n.children[usize::from(!self.goes_left(n, row[n.feature as usize]))]
                        as usize;
                }
            }
            steps += 2;
            if at.iter().zip(trees).all(|(&a, t)| a >= t.internal) {
                break;
            }
        }
        std::array::from_fn(|l| at[l] - trees[l].internal)
    }
}

/// Splits the rows `idx` (into `rows`, `nf` codes each) by feature `f`: left-goers fill
/// `scratch` from `lo` up, the others from `hi` down. Every row is written at both ends of the
/// free space; the end it belongs to claims the slot, the other write lands in space a later
/// row fills. No branch on the outcome.
#[inline(always)]
fn split(
    (idx, rows, nf, f, scratch, lo, hi): (
        &[u32],
        &[u32],
        usize,
        usize,
        &mut [u32],
        &mut usize,
        &mut usize,
    ),
    goes_left: impl Fn(u32) -> bool,
) {
    for &r in idx {
        let left = goes_left(rows[r as usize * nf + f]);
        scratch[*lo] = r;
        scratch[*hi - 1] = r;
        *lo += usize::from(left);
        *hi -= usize::from(!left);
    }
}

/// Internal nodes on the longest path from the root of `t`.
/// Children come after their parent (a stored tree is checked for it), so one backward pass
/// has every child's depth before its parent: linear time, no recursion, whatever the shape.
fn depth(t: &FlatTree) -> usize {
    let mut below = vec![0usize; t.feature.len()];
    for i in (0..t.feature.len()).rev() {
        let child = |c: i32| if c < 0 { 0 } else { below[c as usize] };
        below[i] = 1 + child(t.left[i]).max(child(t.right[i]));
    }
    below.first().copied().unwrap_or(0)
}

/// Node `i` of `t` over the codes of its feature.
fn node(t: &FlatTree, i: usize, coding: &Coding, large_sets: &mut Vec<u64>) -> Node {
    let default_left = t.default_left[i];
    let (kind, bits) =
        match coding {
            Coding::Numeric { cuts } => {
                let j = cuts
                    .binary_search_by(|c| c.total_cmp(&t.threshold[i]))
                    .expect("every threshold is a cut") as u64;
                let low = u64::from(!default_left);
                (NUMERIC, low | (j + 1 - low) << 32)
            }
            Coding::Categorical { limit } => {
                let set = t.set(i);
                // Codes past the stored words follow the default side (see `FlatTree`).
                let goes_left = |code: u32| match code {
                    0 => default_left,
                    _ => {
                        let c = code - 1;
                        match set.get((c / 32) as usize) {
                            Some(w) if c < *limit => w >> (c % 32) & 1 == 1,
                            _ => default_left,
                        }
                    }
                };
                let codes = limit + 2;
                if codes <= 64 {
                    let mask = (0..codes).fold(0u64, |m, c| m | u64::from(goes_left(c)) << c);
                    (SMALL_SET, mask)
                } else {
                    let start = large_sets.len() as u64;
                    large_sets.extend((0..codes.div_ceil(64)).map(|w| {
                        (0..64).fold(0u64, |m, b| m | u64::from(goes_left(w * 64 + b)) << b)
                    }));
                    (LARGE_SET, start)
                }
            }
            Coding::Unused => unreachable!("every split feature has a coding"),
        };
    Node {
        bits,
        children: [t.left[i], t.right[i]],
        feature: t.feature[i],
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree over one numeric feature: node 0 splits at `a`, its right child at `b`.
    fn stump(a: f64, b: f64, default_left: [bool; 2]) -> FlatTree {
        FlatTree {
            feature: vec![0, 0],
            threshold: vec![a, b],
            cat: vec![-1, -1],
            default_left: default_left.to_vec(),
            left: vec![!0, !1],
            right: vec![1, !2],
            cat_offsets: vec![0],
            cat_bits: Vec::new(),
            leaf_value: vec![1.0, 2.0, 3.0],
            leaf_count: Vec::new(),
        }
    }

    #[test]
    fn signed_zero_thresholds_and_missing_go_where_the_stored_tree_says() {
        // -0.0 and 0.0 are equal to `<=` but differ in bits: both must stay cuts.
        let trees = [
            stump(-0.0, 0.0, [true, false]),
            stump(0.0, 1.5, [false, true]),
            stump(-1.0, -0.0, [false, false]),
        ];
        let rt = Runtime::new(&trees, &[Some(false)]);
        let column = vec![
            -2.0,
            -1.0,
            -0.0,
            0.0,
            1.0,
            1.5,
            2.0,
            f64::NAN,
            f64::INFINITY,
        ];
        let features = crate::Features {
            names: vec!["x".into()].into(),
            rows: column.len(),
            columns: vec![crate::Column::Numeric(column.clone().into())],
        };
        let rows: Vec<u32> = (0..column.len() as u32).collect();
        let mut codes = Vec::new();
        rt.code_rows(&features, &rows, &mut codes);
        for (t, tree) in trees.iter().enumerate() {
            for (r, &x) in column.iter().enumerate() {
                let x = if x.is_finite() { x } else { f64::NAN };
                assert_eq!(
                    rt.leaf(t, &codes[r..r + 1]),
                    tree.leaf_by_value(&[x]),
                    "tree {t}, x {x}"
                );
            }
        }
    }
}
