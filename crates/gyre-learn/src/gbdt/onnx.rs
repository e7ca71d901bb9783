//! A gbdt model as one `TreeEnsemble` node (`ai.onnx.ml` opset 5) and the link function.
//!
//! Each stored node maps to one ensemble node: a numeric node to `BRANCH_LEQ` on its double
//! threshold, with `default_left` as its missing-value track (NaN goes left exactly when gyre
//! sends a missing value left); a categorical node to `BRANCH_MEMBER` over the codes that go
//! the non-default way, so that NaN and any code outside the set take the default side, as in
//! gyre. The initial scores come first as one-leaf trees, so every output's sum starts and
//! proceeds in gyre's order.

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
            let (mut l, mut r) = (child(t.left[i]), child(t.right[i]));
            if t.cat[i] < 0 {
                self.mode.push(BRANCH_LEQ);
                self.split.push(t.threshold[i]);
                self.missing_true.push(i64::from(t.default_left[i]));
            } else {
                // gyre sends a code left when its bit is set, and missing values and codes past
                // the set's words to the default side. So the member set lists the codes that
                // go the non-default way (in the words, bit set or clear), its true side is
                // that way, and everything else (NaN, codes past the words, non-codes) takes
                // the false side: the default.
                let away = !t.default_left[i];
                let codes: Vec<f64> = t
                    .set(i)
                    .iter()
                    .enumerate()
                    .flat_map(|(w, &bits)| {
                        (0..32)
                            .filter(move |b| (bits >> b & 1 == 1) == away)
                            .map(move |b| (w * 32 + b) as f64)
                    })
                    .collect();
                if !away {
                    std::mem::swap(&mut l, &mut r);
                }
                if codes.is_empty() {
                    // Every value goes the default way: a comparison no value passes.
                    self.mode.push(BRANCH_LT);
                    self.split.push(f64::NEG_INFINITY);
                } else {
                    self.mode.push(BRANCH_MEMBER);
                    self.split.push(0.0);
                    self.members.extend(codes);
                    self.members.push(f64::NAN);
                }
                self.missing_true.push(0);
            }
            self.true_id.push(l.0);
            self.true_leaf.push(l.1);
            self.false_id.push(r.0);
            self.false_leaf.push(r.1);
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
        let mut g = Graph::new("gyre_gbdt", self.feature_names.len());
        let raw = g.op_in(
            ML_DOMAIN,
            "TreeEnsemble",
            &[INPUT],
            self.ensemble().attrs(k),
        );
        g.finish(self.task, &raw, ml_opsets())
    }

    fn ensemble(&self) -> Ensemble {
        let k = self.task.outputs();
        let mut e = Ensemble::default();
        for (c, &v) in self.init_score.iter().enumerate() {
            e.constant(c, v);
        }
        for (t, tree) in self.trees.iter().enumerate() {
            e.tree(tree, t % k);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, Features, GbdtParams, Learner, NoProgress, Task, TrainSet};

    /// Raw scores as `TreeEnsemble` defines them (SUM, no post transform), from the attribute
    /// arrays: a node goes to its true side when its comparison holds, or when the value is
    /// NaN and the node's missing track is true.
    fn eval(e: &Ensemble, targets: usize, row: &[f64]) -> Vec<f64> {
        let mut sets = Vec::new();
        let mut members = e.members.split(|v| v.is_nan());
        for &m in &e.mode {
            sets.push(if m == BRANCH_MEMBER {
                members.next().unwrap().to_vec()
            } else {
                Vec::new()
            });
        }
        let mut out = vec![0.0; targets];
        for &root in &e.roots {
            let mut i = root as usize;
            let leaf = loop {
                let x = row[e.feature[i] as usize];
                let holds = match e.mode[i] {
                    BRANCH_LEQ => x <= e.split[i],
                    BRANCH_LT => x < e.split[i],
                    BRANCH_MEMBER => sets[i].contains(&x),
                    m => panic!("mode {m} not written"),
                };
                let yes = holds || (x.is_nan() && e.missing_true[i] == 1);
                let (next, is_leaf) = if yes {
                    (e.true_id[i], e.true_leaf[i])
                } else {
                    (e.false_id[i], e.false_leaf[i])
                };
                if is_leaf == 1 {
                    break next as usize;
                }
                i = next as usize;
            };
            out[e.leaf_target[leaf] as usize] += e.leaf_weight[leaf];
        }
        out
    }

    /// Every row's raw scores from the ensemble equal gyre's reference walk, bit for bit.
    fn check(model: &GbdtModel, features: &Features) {
        let k = model.task.outputs();
        let e = model.ensemble();
        let rows: Vec<u32> = (0..features.rows as u32).collect();
        let want = model.predict_raw_reference(features, &rows);
        for &r in &rows {
            let row: Vec<f64> = features
                .columns
                .iter()
                .map(|c| match c {
                    Column::Numeric(v) => v[r as usize],
                    Column::Categorical { codes, cardinality } => {
                        let c = codes[r as usize];
                        if c < *cardinality {
                            f64::from(c)
                        } else {
                            f64::NAN
                        }
                    }
                })
                .collect();
            let got = eval(&e, k, &row);
            assert_eq!(
                got,
                want[r as usize * k..(r as usize + 1) * k],
                "row {row:?}"
            );
        }
    }

    /// Trees written by hand: a numeric node over a category set whose missing values go
    /// left, a category set that is empty (only missing goes left), and a lone leaf.
    #[test]
    fn every_kind_of_node_maps_to_the_same_leaf() {
        let params = GbdtParams::parse(&[]).unwrap().to_json();
        // Codes 1 and 3 go left; missing goes left, so (as `FlatTree::from_tree` writes it)
        // the unseen codes 4.. in the word are set too.
        let cat_bits: u32 = 0b1010 | !0b1111;
        let json = serde_json::json!({
            "format": "gyre-model", "version": 1, "learner": "gbdt", "task": "binary",
            "params": params, "feature_names": ["x", "c"], "init_score": [0.5],
            "trees": [
                {"feature": [0, 1], "threshold": [1.5, 0.0], "cat": [-1, 0],
                 "default_left": [false, true], "left": [1, -1], "right": [-3, -2],
                 "cat_offsets": [0, 1], "cat_bits": [cat_bits], "leaf_value": [0.1, -0.2, 0.3]},
                {"feature": [1], "threshold": [0.0], "cat": [0], "default_left": [true],
                 "left": [-1], "right": [-2], "cat_offsets": [0, 0], "cat_bits": [],
                 "leaf_value": [1.0, -1.0]},
                {"feature": [], "threshold": [], "cat": [], "default_left": [], "left": [],
                 "right": [], "cat_offsets": [0], "cat_bits": [], "leaf_value": [0.25]}
            ]
        });
        let model = GbdtModel::load(&serde_json::to_vec(&json).unwrap()).unwrap();
        let (mut xs, mut cs) = (Vec::new(), Vec::new());
        for x in [f64::NAN, 0.0, 1.5, 2.0] {
            for c in [u32::MAX, 0, 1, 2, 3, 7] {
                xs.push(x);
                cs.push(c);
            }
        }
        let rows = xs.len();
        let features = Features {
            names: vec!["x".to_string(), "c".to_string()].into(),
            columns: vec![
                Column::Numeric(xs.into()),
                Column::Categorical {
                    codes: cs.into(),
                    cardinality: 4,
                },
            ],
            rows,
        };
        check(&model, &features);
    }

    /// A fitted multiclass model with missing values and a categorical feature.
    #[test]
    fn a_fitted_model_maps_to_the_same_scores() {
        let n = 900;
        let xs: Vec<f64> = (0..n)
            .map(|i| {
                if i % 7 == 0 {
                    f64::NAN
                } else {
                    (i % 31) as f64
                }
            })
            .collect();
        let cs: Vec<u32> = (0..n)
            .map(|i| {
                if i % 11 == 0 {
                    u32::MAX
                } else {
                    (i * 7 % 9) as u32
                }
            })
            .collect();
        let labels: Vec<f64> = (0..n)
            .map(|i| ((i * 7 % 9) % 3 + usize::from(i % 31 > 20)) as f64 % 3.0)
            .collect();
        let features = Features {
            names: vec!["x".to_string(), "c".to_string()].into(),
            columns: vec![
                Column::Numeric(xs.into()),
                Column::Categorical {
                    codes: cs.into(),
                    cardinality: 9,
                },
            ],
            rows: n,
        };
        let rows: Vec<u32> = (0..n as u32).collect();
        let params = [("num_iterations", "5"), ("min_data_per_group", "10")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let fitted = crate::Gbdt::new(GbdtParams::parse(&params).unwrap())
            .fit(
                Task::Multiclass { classes: 3 },
                &TrainSet {
                    features: &features,
                    rows: &rows,
                    labels: &labels,
                    weights: None,
                },
                1,
                &NoProgress,
            )
            .unwrap();
        let model = GbdtModel::load(&fitted.save()).unwrap();
        assert!(model.trees.iter().any(|t| t.cat.iter().any(|&c| c >= 0)));
        check(&model, &features);
    }
}
