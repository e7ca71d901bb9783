//! A gbdt model as one `TreeEnsemble` node (`ai.onnx.ml` opset 5) and the link function.
//!
//! Each stored node maps to one ensemble node: numeric nodes to `BRANCH_LEQ` on the double
//! threshold, categorical nodes to `BRANCH_MEMBER` over the codes their set sends left, and
//! `default_left` to the node's missing-value track (NaN goes left exactly when gyre sends a
//! missing value left). The initial scores come first as one-leaf trees, so every output's sum
//! starts and proceeds in gyre's order.

use super::GbdtModel;
use super::model::FlatTree;
use crate::onnx::{Attr, Graph, INPUT, ML_DOMAIN, OnnxModel, Tensor, TensorData, ml_opsets};

/// `nodes_modes` values of `TreeEnsemble`.
const BRANCH_LEQ: u8 = 0;
const BRANCH_LT: u8 = 1;
const BRANCH_MEMBER: u8 = 6;
/// `aggregate_function` SUM and `post_transform` NONE.
const SUM: i64 = 1;
const NONE: i64 = 0;

/// The ensemble's attribute arrays, filled tree by tree.
#[derive(Default)]
struct Ensemble {
    roots: Vec<i64>,
    feature: Vec<i64>,
    mode: Vec<u8>,
    split: Vec<f64>,
    true_id: Vec<i64>,
    true_leaf: Vec<i64>,
    false_id: Vec<i64>,
    false_leaf: Vec<i64>,
    missing_true: Vec<i64>,
    /// Each member node's codes, then a NaN.
    members: Vec<f64>,
    leaf_target: Vec<i64>,
    leaf_weight: Vec<f64>,
}

impl Ensemble {
    fn leaf(&mut self, target: usize, value: f64) -> i64 {
        self.leaf_target.push(target as i64);
        self.leaf_weight.push(value);
        (self.leaf_weight.len() - 1) as i64
    }

    /// A tree that adds `value` to every row: one node whose two sides are leaves of that value
    /// (an ensemble tree needs a root node).
    fn constant(&mut self, target: usize, value: f64) {
        self.roots.push(self.feature.len() as i64);
        let (a, b) = (self.leaf(target, value), self.leaf(target, value));
        self.feature.push(0);
        self.mode.push(BRANCH_LEQ);
        self.split.push(0.0);
        self.true_id.push(a);
        self.true_leaf.push(1);
        self.false_id.push(b);
        self.false_leaf.push(1);
        self.missing_true.push(0);
    }

    fn tree(&mut self, t: &FlatTree, target: usize) {
        if t.feature.is_empty() {
            self.constant(target, t.leaf_value[0]);
            return;
        }
        let base = self.feature.len() as i64;
        let first_leaf = self.leaf_weight.len() as i64;
        self.roots.push(base);
        // A child `>= 0` is a node of this tree, `< 0` the leaf `!child`.
        let child = |c: i32| {
            if c >= 0 {
                (base + i64::from(c), 0)
            } else {
                (first_leaf + i64::from(!c), 1)
            }
        };
        for i in 0..t.feature.len() {
            self.feature.push(i64::from(t.feature[i]));
            if t.cat[i] < 0 {
                self.mode.push(BRANCH_LEQ);
                self.split.push(t.threshold[i]);
            } else {
                let codes: Vec<f64> = t
                    .set(i)
                    .iter()
                    .enumerate()
                    .flat_map(|(w, &bits)| {
                        (0..32)
                            .filter(move |b| bits >> b & 1 == 1)
                            .map(move |b| (w * 32 + b) as f64)
                    })
                    .collect();
                if codes.is_empty() {
                    // No code goes left, only (maybe) missing: a comparison no code passes.
                    self.mode.push(BRANCH_LT);
                    self.split.push(-1.0);
                } else {
                    self.mode.push(BRANCH_MEMBER);
                    self.split.push(0.0);
                    self.members.extend(codes);
                    self.members.push(f64::NAN);
                }
            }
            let (l, l_leaf) = child(t.left[i]);
            let (r, r_leaf) = child(t.right[i]);
            self.true_id.push(l);
            self.true_leaf.push(l_leaf);
            self.false_id.push(r);
            self.false_leaf.push(r_leaf);
            self.missing_true.push(i64::from(t.default_left[i]));
        }
        for &v in &t.leaf_value {
            self.leaf(target, v);
        }
    }

    fn attrs(self, targets: usize) -> Vec<(&'static str, Attr)> {
        let double = |v: Vec<f64>| Attr::Tensor(Tensor::vector(TensorData::Double(v)));
        let mut a = vec![
            ("aggregate_function", Attr::Int(SUM)),
            ("post_transform", Attr::Int(NONE)),
            ("n_targets", Attr::Int(targets as i64)),
            ("tree_roots", Attr::Ints(self.roots)),
            ("nodes_featureids", Attr::Ints(self.feature)),
            (
                "nodes_modes",
                Attr::Tensor(Tensor::vector(TensorData::Uint8(self.mode))),
            ),
            ("nodes_splits", double(self.split)),
            ("nodes_truenodeids", Attr::Ints(self.true_id)),
            ("nodes_trueleafs", Attr::Ints(self.true_leaf)),
            ("nodes_falsenodeids", Attr::Ints(self.false_id)),
            ("nodes_falseleafs", Attr::Ints(self.false_leaf)),
            (
                "nodes_missing_value_tracks_true",
                Attr::Ints(self.missing_true),
            ),
            ("leaf_targetids", Attr::Ints(self.leaf_target)),
            ("leaf_weights", double(self.leaf_weight)),
        ];
        if !self.members.is_empty() {
            a.push(("membership_values", double(self.members)));
        }
        a
    }
}

impl GbdtModel {
    /// The model as an ONNX graph (see `crate::onnx` for its input and output).
    pub(super) fn onnx(&self) -> OnnxModel {
        let k = self.task.outputs();
        let mut e = Ensemble::default();
        for (c, &v) in self.init_score.iter().enumerate() {
            e.constant(c, v);
        }
        for (t, tree) in self.trees.iter().enumerate() {
            e.tree(tree, t % k);
        }
        let mut g = Graph::new("gyre_gbdt", self.feature_names.len());
        let raw = g.op_in(ML_DOMAIN, "TreeEnsemble", &[INPUT], e.attrs(k));
        g.finish(self.task, &raw, ml_opsets())
    }
}
