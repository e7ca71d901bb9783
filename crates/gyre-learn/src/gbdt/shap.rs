//! Why a gbdt gave a row its score: each feature's exact Shapley value in the raw score, by
//! path-dependent TreeSHAP.
//!
//! Lundberg, Erion, Chen, DeGrave, Prutkin, Nair, Katz, Himmelfarb, Bansal and Lee, "From local
//! explanations to global understanding with explainable AI for trees", Nature Machine
//! Intelligence 2 (2020), Algorithm 2 (first in Lundberg, Erion and Lee, "Consistent
//! individualized feature attribution for tree ensembles", arXiv:1802.03888, 2018).
//! The value of a feature subset S for a row is a tree's expected output given the row's values
//! of S: a node on a feature in S sends the row the way prediction does, a node on any other
//! feature sends it down both sides, weighted by the training rows that went each way (the
//! node's cover). Shapley values of that game by enumeration cost 2^M subsets; TreeSHAP gets
//! them in O(L D^2) per tree (L leaves, depth D) by carrying down each path, for every subset
//! size, the share of subsets that reach the node (EXTEND), and taking a feature out again when
//! it repeats lower down or at a leaf (UNWIND). A row's contributions plus the base value (the
//! initial score and each tree's cover-weighted mean leaf) are its raw score.

use super::model::FlatTree;

/// The trees' covers, ready for TreeSHAP.
#[derive(Clone, Debug)]
pub(super) struct Covers {
    /// Per tree, per node (internal nodes, then leaf `l` as node `internal + l`): training rows.
    node: Vec<Vec<f64>>,
    /// Per output, the initial score plus its trees' cover-weighted mean leaves.
    base: Vec<f64>,
}

impl Covers {
    /// Fails, saying why, for trees saved without leaf counts or whose nodes share children.
    pub(super) fn new(trees: &[FlatTree], init_score: &[f64]) -> Result<Covers, String> {
        let k = init_score.len();
        let mut base = init_score.to_vec();
        let mut node = Vec::with_capacity(trees.len());
        for (t, tree) in trees.iter().enumerate() {
            let internal = tree.feature.len();
            if internal == 0 {
                base[t % k] += tree.leaf_value[0];
                node.push(vec![1.0]);
                continue;
            }
            if tree.leaf_count.is_empty() {
                return Err(
                    "it was saved before gyre stored the training rows per leaf; retrain it".into(),
                );
            }
            let mut parents = vec![0u32; internal + tree.leaf_value.len()];
            let mut cover = vec![0.0; parents.len()];
            for (l, &c) in tree.leaf_count.iter().enumerate() {
                cover[internal + l] = f64::from(c);
            }
            // Children come after their parent, so one backward pass sums every subtree.
            for i in (0..internal).rev() {
                let (l, r) = (at(tree, tree.left[i]), at(tree, tree.right[i]));
                parents[l] += 1;
                parents[r] += 1;
                cover[i] = cover[l] + cover[r];
            }
            if parents[1..].iter().any(|&p| p != 1) {
                return Err(format!("tree {t} is not a tree: its nodes share children"));
            }
            base[t % k] += tree
                .leaf_value
                .iter()
                .zip(&cover[internal..])
                .map(|(v, c)| v * c)
                .sum::<f64>()
                / cover[0];
            node.push(cover);
        }
        Ok(Covers { node, base })
    }

    /// Per output, the expected raw score over the training rows.
    pub(super) fn base(&self) -> &[f64] {
        &self.base
    }

    pub(super) fn tree(&self, t: usize) -> &[f64] {
        &self.node[t]
    }
}

/// A child reference as a node number: internal nodes, then leaves.
fn at(tree: &FlatTree, child: i32) -> usize {
    if child >= 0 {
        child as usize
    } else {
        tree.feature.len() + !child as usize
    }
}

/// One step of a path: the split's feature, the share of training rows that follow it
/// (`zero`: the feature is not in the subset), whether the row follows it (`one`), and the
/// proportion of subsets of this element's size that reach here (`weight`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Element {
    feature: usize,
    zero: f64,
    one: f64,
    weight: f64,
}

/// The feature of the path's first element, which stands for no split.
const NO_FEATURE: usize = usize::MAX;

/// Adds one tree's contributions for one row to `phi` (one value per feature). `goes_left(i)`
/// is where the row goes at internal node `i`; `cover` is the tree's from [`Covers::tree`];
/// `path` is scratch space, reused between calls.
pub(super) fn add_tree(
    tree: &FlatTree,
    cover: &[f64],
    goes_left: impl Fn(usize) -> bool,
    phi: &mut [f64],
    path: &mut Vec<Element>,
) {
    if tree.feature.is_empty() {
        return;
    }
    path.clear();
    let mut walk = Walk {
        tree,
        cover,
        goes_left,
        phi,
        path,
    };
    walk.visit(0, 0, 0, 1.0, 1.0, NO_FEATURE);
}

struct Walk<'a, F> {
    tree: &'a FlatTree,
    cover: &'a [f64],
    goes_left: F,
    phi: &'a mut [f64],
    /// The paths of the nodes being visited, one after another: each node copies its parent's.
    path: &'a mut Vec<Element>,
}

impl<F: Fn(usize) -> bool> Walk<'_, F> {
    /// RECURSE: visits `node`, reached by a split on `feature` with fractions `zero` and `one`,
    /// below a parent whose path is the `parent_len` elements at `parent`.
    fn visit(
        &mut self,
        node: usize,
        parent: usize,
        parent_len: usize,
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        let start = self.path.len();
        self.path.extend_from_within(parent..parent + parent_len);
        self.path.push(Element {
            feature,
            zero,
            one,
            weight: 0.0,
        });
        extend(&mut self.path[start..]);
        let mut len = parent_len + 1;
        let internal = self.tree.feature.len();
        if node >= internal {
            let v = self.tree.leaf_value[node - internal];
            let seg = &self.path[start..start + len];
            for (i, e) in seg.iter().enumerate().skip(1) {
                self.phi[e.feature] += unwound_sum(seg, i) * (e.one - e.zero) * v;
            }
        } else {
            let f = self.tree.feature[node] as usize;
            let (l, r) = (
                at(self.tree, self.tree.left[node]),
                at(self.tree, self.tree.right[node]),
            );
            let (hot, cold) = if (self.goes_left)(node) {
                (l, r)
            } else {
                (r, l)
            };
            let (mut z, mut o) = (1.0, 1.0);
            // A feature split again: undo its earlier split and fold it into this one.
            if let Some(k) = self.path[start..start + len]
                .iter()
                .position(|e| e.feature == f)
            {
                (z, o) = (self.path[start + k].zero, self.path[start + k].one);
                unwind(&mut self.path[start..start + len], k);
                len -= 1;
            }
            let c = self.cover[node];
            let (hot_share, cold_share) = (self.cover[hot] / c, self.cover[cold] / c);
            self.visit(hot, start, len, hot_share * z, o, f);
            self.visit(cold, start, len, cold_share * z, 0.0, f);
        }
        self.path.truncate(start);
    }
}

/// EXTEND: `seg`'s last element was just pushed; grows every subset size's weight by it.
fn extend(seg: &mut [Element]) {
    let d = seg.len() - 1;
    let (zero, one) = (seg[d].zero, seg[d].one);
    seg[d].weight = if d == 0 { 1.0 } else { 0.0 };
    let n = (d + 1) as f64;
    for i in (0..d).rev() {
        seg[i + 1].weight += one * seg[i].weight * (i + 1) as f64 / n;
        seg[i].weight = zero * seg[i].weight * (d - i) as f64 / n;
    }
}

/// UNWIND: takes element `k` out of `seg`, leaving the weights as if it had never been
/// extended by; the first `seg.len() - 1` elements are then the path.
fn unwind(seg: &mut [Element], k: usize) {
    let d = seg.len() - 1;
    let (zero, one) = (seg[k].zero, seg[k].one);
    let n = (d + 1) as f64;
    let mut next = seg[d].weight;
    for i in (0..d).rev() {
        if one != 0.0 {
            let w = seg[i].weight;
            seg[i].weight = next * n / ((i + 1) as f64 * one);
            next = w - seg[i].weight * zero * (d - i) as f64 / n;
        } else {
            seg[i].weight = seg[i].weight * n / (zero * (d - i) as f64);
        }
    }
    for i in k..d {
        seg[i].feature = seg[i + 1].feature;
        seg[i].zero = seg[i + 1].zero;
        seg[i].one = seg[i + 1].one;
    }
}

/// The total weight `seg` would have with element `k` unwound, without changing it.
fn unwound_sum(seg: &[Element], k: usize) -> f64 {
    let d = seg.len() - 1;
    let (zero, one) = (seg[k].zero, seg[k].one);
    let mut total = 0.0;
    if one != 0.0 {
        let mut next = seg[d].weight;
        for i in (0..d).rev() {
            let w = next / ((i + 1) as f64 * one);
            total += w;
            next = seg[i].weight - w * zero * (d - i) as f64;
        }
    } else {
        for i in (0..d).rev() {
            total += seg[i].weight / (zero * (d - i) as f64);
        }
    }
    total * (d + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::{GbdtModel, GbdtParams};
    use crate::rng::Rng;
    use crate::{Column, Features, Learner, NoProgress, Task, TrainSet};

    /// Features of the small ensembles: numeric, numeric, categorical (8 codes), numeric.
    const M: usize = 4;
    const CATEGORICAL: u32 = 2;

    /// Where a row of real values (NaN for missing, codes as f64) goes at internal node `i`,
    /// read from the stored arrays as `FlatTree::leaf_by_value` does, not from the runtime.
    fn goes_left_by_value(tree: &FlatTree, i: usize, row: &[f64]) -> bool {
        let x = row[tree.feature[i] as usize];
        if x.is_nan() {
            tree.default_left[i]
        } else if tree.cat[i] < 0 {
            x <= tree.threshold[i]
        } else {
            let c = x as u32;
            match tree.set(i).get((c / 32) as usize) {
                Some(w) => w >> (c % 32) & 1 == 1,
                None => tree.default_left[i],
            }
        }
    }

    /// The path-dependent expectation of the tree's output given the features in `known`:
    /// TreeSHAP's game, by its definition (Algorithm 1 of Lundberg et al.).
    fn expected(tree: &FlatTree, cover: &[f64], node: usize, row: &[f64], known: u32) -> f64 {
        let internal = tree.feature.len();
        if node >= internal {
            return tree.leaf_value[node - internal];
        }
        let (l, r) = (at(tree, tree.left[node]), at(tree, tree.right[node]));
        if known >> tree.feature[node] & 1 == 1 {
            let next = if goes_left_by_value(tree, node, row) {
                l
            } else {
                r
            };
            expected(tree, cover, next, row, known)
        } else {
            (cover[l] * expected(tree, cover, l, row, known)
                + cover[r] * expected(tree, cover, r, row, known))
                / cover[node]
        }
    }

    /// Shapley values by enumerating every subset of the other features.
    fn brute_force(tree: &FlatTree, cover: &[f64], row: &[f64]) -> [f64; M] {
        let fact = |n: usize| (1..=n).product::<usize>() as f64;
        let v = |s: u32| expected(tree, cover, 0, row, s);
        std::array::from_fn(|i| {
            (0..1u32 << M)
                .filter(|s| s >> i & 1 == 0)
                .map(|s| {
                    let size = s.count_ones() as usize;
                    fact(size) * fact(M - size - 1) / fact(M) * (v(s | 1 << i) - v(s))
                })
                .sum()
        })
    }

    fn row_values(features: &Features, r: usize) -> Vec<f64> {
        features
            .columns
            .iter()
            .map(|c| match c {
                Column::Numeric(v) if v[r].is_finite() => v[r],
                Column::Categorical { codes, .. } if codes[r] != u32::MAX => f64::from(codes[r]),
                _ => f64::NAN,
            })
            .collect()
    }

    /// Checks a model's contributions for `rows` against brute force and its raw scores;
    /// returns the largest differences from each.
    fn check(model: &GbdtModel, features: &Features, rows: &[u32]) -> (f64, f64) {
        let c = model.contributions(features, rows).unwrap();
        let raw = model.predict_raw(features, rows);
        let covers = model.covers.as_ref().unwrap();
        let k = model.task.outputs();
        let (mut brute_err, mut sum_err) = (0.0f64, 0.0f64);
        for (i, &r) in rows.iter().enumerate() {
            let row = row_values(features, r as usize);
            let mut want = vec![[0.0; M]; k];
            for (t, tree) in model.trees.iter().enumerate() {
                if !tree.feature.is_empty() {
                    let phi = brute_force(tree, covers.tree(t), &row);
                    for f in 0..M {
                        want[t % k][f] += phi[f];
                    }
                }
            }
            for (o, want) in want.iter().enumerate() {
                let got = c.row(i, o);
                for f in 0..M {
                    brute_err = brute_err.max((got[f] - want[f]).abs());
                }
                let total = c.base[o] + got.iter().sum::<f64>();
                sum_err = sum_err.max((total - raw[i * k + o]).abs());
            }
        }
        (brute_err, sum_err)
    }

    /// Random rows over the four features: about a tenth missing, some categories unseen.
    fn random_features(rng: &mut Rng, n: usize) -> Features {
        let numeric = |rng: &mut Rng| -> Column {
            Column::Numeric(
                (0..n)
                    .map(|_| {
                        if rng.below(10) == 0 {
                            f64::NAN
                        } else {
                            rng.below(12) as f64 * 0.5
                        }
                    })
                    .collect(),
            )
        };
        let (a, b) = (numeric(rng), numeric(rng));
        let cat = Column::Categorical {
            codes: (0..n)
                .map(|_| match rng.below(12) {
                    0 => u32::MAX,
                    c => c as u32 - 1,
                })
                .collect(),
            cardinality: 8,
        };
        let d = numeric(rng);
        Features {
            names: (0..M).map(|f| format!("f{f}")).collect::<Vec<_>>().into(),
            columns: vec![a, b, cat, d],
            rows: n,
        }
    }

    /// A random proper tree of `leaves` leaves, with random leaf counts.
    fn random_tree(rng: &mut Rng, leaves: usize) -> FlatTree {
        let mut t =
            FlatTree::without_nodes((0..leaves).map(|_| rng.next_f64() * 2.0 - 1.0).collect());
        t.leaf_count = (0..leaves).map(|_| 1 + rng.below(40) as u32).collect();
        grow(&mut t, rng, leaves, &mut 0);
        t
    }

    /// Adds a subtree of `n` leaves (numbered from `next_leaf`) and returns its reference.
    fn grow(t: &mut FlatTree, rng: &mut Rng, n: usize, next_leaf: &mut i32) -> i32 {
        if n == 1 {
            *next_leaf += 1;
            return !(*next_leaf - 1);
        }
        let f = rng.below(M) as u32;
        t.feature.push(f);
        let default_left = rng.below(2) == 0;
        t.default_left.push(default_left);
        if f == CATEGORICAL {
            t.cat.push((t.cat_offsets.len() - 1) as i32);
            // Codes 0..6 at random, plus the unseen ones inside the word when missing goes left,
            // as `FlatTree::from_tree` writes sets.
            let mut w = rng.next_u64() as u32 & 0x3f;
            if default_left {
                w |= !0x3f;
            }
            t.cat_bits.push(w);
            t.cat_offsets.push(t.cat_bits.len() as u32);
            t.threshold.push(0.0);
        } else {
            t.cat.push(-1);
            t.threshold.push(rng.below(12) as f64 * 0.5 + 0.25);
        }
        let me = t.feature.len() - 1;
        t.left.push(0);
        t.right.push(0);
        let left = 1 + rng.below(n - 1);
        t.left[me] = grow(t, rng, left, next_leaf);
        t.right[me] = grow(t, rng, n - left, next_leaf);
        me as i32
    }

    #[test]
    fn random_ensembles_match_brute_force_shapley_values() {
        let mut rng = Rng::new(17);
        let features = random_features(&mut rng, 300);
        let rows: Vec<u32> = (0..300).collect();
        let (mut brute, mut sum) = (0.0f64, 0.0f64);
        for (task, trees) in [
            (Task::Regression, 3),
            (Task::Binary, 4),
            (Task::Multiclass { classes: 3 }, 6),
        ] {
            for _ in 0..5 {
                // Up to 12 leaves over 4 features: features repeat along paths.
                let trees: Vec<FlatTree> = (0..trees)
                    .map(|_| {
                        let leaves = 1 + rng.below(12);
                        random_tree(&mut rng, leaves)
                    })
                    .collect();
                let init = (0..task.outputs()).map(|o| o as f64 * 0.3 - 0.2).collect();
                let names = features.names.to_vec();
                let model =
                    GbdtModel::new(task, GbdtParams::default(), names, init, trees).unwrap();
                let (b, s) = check(&model, &features, &rows);
                brute = brute.max(b);
                sum = sum.max(s);
            }
        }
        eprintln!("random ensembles: brute force {brute:e}, additivity {sum:e}");
        assert!(
            brute < 1e-9,
            "largest difference from brute force {brute:e}"
        );
        assert!(sum < 1e-9, "largest additivity error {sum:e}");
    }

    #[test]
    fn fitted_ensembles_match_brute_force_shapley_values() {
        let mut rng = Rng::new(5);
        let n = 2000;
        let features = random_features(&mut rng, n);
        let x = |f: usize, r: usize| match &features.columns[f] {
            Column::Numeric(v) => v[r],
            Column::Categorical { codes, .. } => f64::from(codes[r]),
        };
        let rows: Vec<u32> = (0..n as u32).collect();
        let (mut brute, mut sum) = (0.0f64, 0.0f64);
        for task in [
            Task::Binary,
            Task::Regression,
            Task::Multiclass { classes: 3 },
        ] {
            let labels: Vec<f64> = (0..n)
                .map(|r| {
                    let a = if x(0, r).is_nan() { 3.0 } else { x(0, r) };
                    let b = if x(1, r).is_nan() { 1.0 } else { x(1, r) };
                    let c = if [1.0, 4.0, 5.0].contains(&x(2, r)) {
                        2.0
                    } else {
                        0.0
                    };
                    let s = a - b + c + rng.next_f64() * 2.0;
                    match task {
                        Task::Binary => f64::from(s > 3.0),
                        Task::Regression => s,
                        Task::Multiclass { .. } => ((s / 2.5).clamp(0.0, 2.0)).floor(),
                    }
                })
                .collect();
            let params: Vec<(String, String)> = [
                ("num_iterations", "4"),
                ("num_leaves", "7"),
                ("min_data_in_leaf", "10"),
                ("max_cat_to_onehot", "2"),
                ("min_data_per_group", "5"),
                ("bagging_fraction", "0.7"),
                ("bagging_freq", "1"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let learner = crate::gbdt::Gbdt::new(GbdtParams::parse(&params).unwrap());
            let data = TrainSet {
                features: &features,
                rows: &rows[..1500],
                labels: &labels,
                weights: None,
            };
            let model = learner.fit(task, &data, 3, &NoProgress).unwrap();
            let model = GbdtModel::load(&model.save()).unwrap();
            assert!(
                model.trees.iter().any(|t| t.cat.iter().any(|&c| c >= 0)),
                "a categorical split"
            );
            let (b, s) = check(&model, &features, &rows[1500..]);
            brute = brute.max(b);
            sum = sum.max(s);
        }
        eprintln!("fitted ensembles: brute force {brute:e}, additivity {sum:e}");
        assert!(
            brute < 1e-9,
            "largest difference from brute force {brute:e}"
        );
        assert!(sum < 1e-9, "largest additivity error {sum:e}");
    }
}
