//! `gbdt`: gradient-boosted decision trees in the style of LightGBM.
//!
//! Modelled on Ke, Meng, Finley, Wang, Chen, Ma, Ye and Liu, "LightGBM: A Highly Efficient Gradient
//! Boosting Decision Tree", NeurIPS 2017: features are bucketed into at most `max_bin` quantile bins,
//! trees grow leaf-wise (best-first) from gradient/hessian histograms with histogram subtraction,
//! missing values learn a default direction per split, and categorical features split natively on
//! category sets found by sorting categories by gradient/hessian. Param names follow LightGBM's.
//! Histograms are built by default from gradients quantized to small integers (Shi et al.,
//! "Quantized Training of Gradient Boosting Decision Trees", NeurIPS 2022; `quantize`), as LightGBM
//! does with `use_quantized_grad`; `use_quantized_grad=false` sums the real gradients instead.
//! This is our own code, not a binding; GOSS and exclusive feature bundling are not implemented.

mod model;
mod onnx;
mod quantize;
mod runtime;
mod shap;
mod tree;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use model::GbdtModel;

use crate::binning::BinnedFeatures;
use crate::params::{ParamSpec, RawParams, at_least, fraction, non_negative, positive};
use crate::rng::Rng;
use crate::{
    LearnError, Learner, Model, Progress, SeedEffect, Task, TrainSet, objective, validate_train_set,
};
use model::FlatTree;
use quantize::Quantized;
use tree::{Grower, TrainBins, TreeConfig};

/// Checked gbdt params: every value is in range once `parse` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    num_iterations: usize,
    learning_rate: f64,
    num_leaves: usize,
    /// `<= 0` means no limit, as in LightGBM.
    max_depth: i64,
    min_data_in_leaf: usize,
    min_sum_hessian_in_leaf: f64,
    min_gain_to_split: f64,
    lambda_l2: f64,
    /// Largest |leaf output| before the learning rate; 0 means no limit. `None` ("auto") is 0 except
    /// for multiclass, where it is 5: softmax leaves with tiny hessians otherwise take huge Newton
    /// steps on rare classes and the scores diverge (LightGBM's defaults do this on KDD Cup 99).
    #[serde(with = "auto_f64")]
    max_delta_step: Option<f64>,
    feature_fraction: f64,
    bagging_fraction: f64,
    bagging_freq: usize,
    max_bin: usize,
    cat_smooth: f64,
    cat_l2: f64,
    max_cat_threshold: usize,
    max_cat_to_onehot: usize,
    min_data_per_group: usize,
    early_stopping_rounds: usize,
    validation_fraction: f64,
    /// Histograms from gradients quantized to small integers ([`quantize`]); on by default. Models
    /// saved before the param existed were trained without it.
    #[serde(default)]
    use_quantized_grad: bool,
}

impl Default for GbdtParams {
    fn default() -> GbdtParams {
        GbdtParams {
            num_iterations: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: -1,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            min_gain_to_split: 0.0,
            lambda_l2: 0.0,
            max_delta_step: None,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            bagging_freq: 0,
            max_bin: 255,
            cat_smooth: 10.0,
            cat_l2: 10.0,
            max_cat_threshold: 32,
            max_cat_to_onehot: 4,
            min_data_per_group: 100,
            early_stopping_rounds: 0,
            validation_fraction: 0.1,
            use_quantized_grad: true,
        }
    }
}

/// The "auto" `max_delta_step` for multiclass.
const MULTICLASS_MAX_DELTA_STEP: f64 = 5.0;

/// Serializes an optional number as the number or "auto".
mod auto_f64 {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => x.serialize(s),
            None => "auto".serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            N(f64),
            S(String),
        }
        match V::deserialize(d)? {
            V::N(x) => Ok(Some(x)),
            V::S(s) if s == "auto" => Ok(None),
            V::S(s) => Err(serde::de::Error::custom(format!(
                "expected a number or \"auto\", got \"{s}\""
            ))),
        }
    }
}

/// Accepted names; aliases are LightGBM's (and scikit-learn's) common spellings.
pub(crate) const SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "num_iterations",
        aliases: &[
            "trees",
            "num_trees",
            "n_estimators",
            "num_iteration",
            "num_tree",
            "num_round",
            "num_boost_round",
        ],
    },
    ParamSpec {
        name: "learning_rate",
        aliases: &["eta", "shrinkage_rate"],
    },
    ParamSpec {
        name: "num_leaves",
        aliases: &["num_leaf", "max_leaves", "max_leaf"],
    },
    ParamSpec {
        name: "max_depth",
        aliases: &[],
    },
    ParamSpec {
        name: "min_data_in_leaf",
        aliases: &[
            "min_data_per_leaf",
            "min_data",
            "min_child_samples",
            "min_samples_leaf",
        ],
    },
    ParamSpec {
        name: "min_sum_hessian_in_leaf",
        aliases: &["min_sum_hessian", "min_hessian", "min_child_weight"],
    },
    ParamSpec {
        name: "min_gain_to_split",
        aliases: &["min_split_gain"],
    },
    ParamSpec {
        name: "lambda_l2",
        aliases: &["reg_lambda", "lambda"],
    },
    ParamSpec {
        name: "max_delta_step",
        aliases: &["max_leaf_output", "max_tree_output"],
    },
    ParamSpec {
        name: "feature_fraction",
        aliases: &["sub_feature", "colsample_bytree"],
    },
    ParamSpec {
        name: "bagging_fraction",
        aliases: &["sub_row", "subsample"],
    },
    ParamSpec {
        name: "bagging_freq",
        aliases: &["subsample_freq"],
    },
    ParamSpec {
        name: "max_bin",
        aliases: &[],
    },
    ParamSpec {
        name: "cat_smooth",
        aliases: &[],
    },
    ParamSpec {
        name: "cat_l2",
        aliases: &[],
    },
    ParamSpec {
        name: "max_cat_threshold",
        aliases: &[],
    },
    ParamSpec {
        name: "max_cat_to_onehot",
        aliases: &[],
    },
    ParamSpec {
        name: "min_data_per_group",
        aliases: &[],
    },
    ParamSpec {
        name: "early_stopping_rounds",
        aliases: &["early_stopping_round", "early_stopping", "n_iter_no_change"],
    },
    ParamSpec {
        name: "validation_fraction",
        aliases: &[],
    },
    ParamSpec {
        name: "use_quantized_grad",
        aliases: &[],
    },
];

impl GbdtParams {
    /// Checks raw params; this is the only way to get a `GbdtParams` other than the defaults.
    pub fn parse(raw: &[(String, String)]) -> Result<GbdtParams, LearnError> {
        let r = RawParams::new("gbdt", SPECS, raw)?;
        let d = GbdtParams::default();
        let u = |v: i64| v as usize;
        Ok(GbdtParams {
            num_iterations: u(r.i64("num_iterations", d.num_iterations as i64, at_least(1))?),
            learning_rate: r.f64("learning_rate", d.learning_rate, positive)?,
            num_leaves: u(r.i64("num_leaves", d.num_leaves as i64, |v| {
                (!(2..=131_072).contains(&v)).then_some("must be between 2 and 131072")
            })?),
            max_depth: r.i64("max_depth", d.max_depth, |_| None)?,
            min_data_in_leaf: u(r.i64(
                "min_data_in_leaf",
                d.min_data_in_leaf as i64,
                at_least(0),
            )?),
            min_sum_hessian_in_leaf: r.f64(
                "min_sum_hessian_in_leaf",
                d.min_sum_hessian_in_leaf,
                non_negative,
            )?,
            min_gain_to_split: r.f64("min_gain_to_split", d.min_gain_to_split, non_negative)?,
            lambda_l2: r.f64("lambda_l2", d.lambda_l2, non_negative)?,
            max_delta_step: if r.is("max_delta_step", "auto") {
                None
            } else {
                r.f64("max_delta_step", -1.0, non_negative)
                    .map(|v| (v >= 0.0).then_some(v))?
            },
            feature_fraction: r.f64("feature_fraction", d.feature_fraction, fraction)?,
            bagging_fraction: r.f64("bagging_fraction", d.bagging_fraction, fraction)?,
            bagging_freq: u(r.i64("bagging_freq", d.bagging_freq as i64, at_least(0))?),
            max_bin: u(r.i64("max_bin", d.max_bin as i64, |v| {
                (!(2..=255).contains(&v)).then_some("must be between 2 and 255")
            })?),
            cat_smooth: r.f64("cat_smooth", d.cat_smooth, non_negative)?,
            cat_l2: r.f64("cat_l2", d.cat_l2, non_negative)?,
            max_cat_threshold: u(r.i64(
                "max_cat_threshold",
                d.max_cat_threshold as i64,
                at_least(1),
            )?),
            max_cat_to_onehot: u(r.i64(
                "max_cat_to_onehot",
                d.max_cat_to_onehot as i64,
                at_least(1),
            )?),
            min_data_per_group: u(r.i64(
                "min_data_per_group",
                d.min_data_per_group as i64,
                at_least(0),
            )?),
            early_stopping_rounds: u(r.i64(
                "early_stopping_rounds",
                d.early_stopping_rounds as i64,
                at_least(0),
            )?),
            validation_fraction: r.f64("validation_fraction", d.validation_fraction, |v| {
                (!(v > 0.0 && v < 1.0)).then_some("must be in (0, 1)")
            })?,
            use_quantized_grad: r.bool("use_quantized_grad", d.use_quantized_grad)?,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("params always serialize")
    }

    pub(crate) fn from_json(v: &serde_json::Value) -> Result<GbdtParams, serde_json::Error> {
        GbdtParams::deserialize(v)
    }

    pub fn num_iterations(&self) -> usize {
        self.num_iterations
    }

    pub fn max_bin(&self) -> usize {
        self.max_bin
    }

    fn tree_config(&self, task: Task) -> TreeConfig {
        TreeConfig {
            num_leaves: self.num_leaves,
            max_depth: if self.max_depth > 0 {
                self.max_depth as usize
            } else {
                0
            },
            min_data_in_leaf: self.min_data_in_leaf.min(u32::MAX as usize) as u32,
            min_sum_hessian_in_leaf: self.min_sum_hessian_in_leaf,
            min_gain_to_split: self.min_gain_to_split,
            lambda_l2: self.lambda_l2,
            max_delta_step: self.max_delta_step.unwrap_or(match task {
                Task::Multiclass { .. } => MULTICLASS_MAX_DELTA_STEP,
                Task::Binary | Task::Regression => 0.0,
            }),
            learning_rate: self.learning_rate,
            cat_smooth: self.cat_smooth,
            cat_l2: self.cat_l2,
            max_cat_threshold: self.max_cat_threshold,
            max_cat_to_onehot: self.max_cat_to_onehot,
            min_data_per_group: self.min_data_per_group.min(u32::MAX as usize) as u32,
        }
    }
}

/// The gbdt learner with checked params.
#[derive(Clone, Debug)]
pub struct Gbdt {
    params: GbdtParams,
}

impl Gbdt {
    pub fn new(params: GbdtParams) -> Gbdt {
        Gbdt { params }
    }

    /// Fits on a table binned beforehand, so repeated fits on one table (folds, seeds, edits) bin once.
    /// `binned` must come from `data.features`; its `max_bin` wins over the params' one.
    pub fn fit_binned(
        &self,
        task: Task,
        data: &TrainSet<'_>,
        binned: &BinnedFeatures,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<GbdtModel, LearnError> {
        validate_train_set(task, data)?;
        let features = data.features;
        if binned.rows != features.rows || binned.features.len() != features.columns.len() {
            return Err(LearnError::BinnedMismatch(format!(
                "{} rows x {} features binned, table has {} x {}",
                binned.rows,
                binned.features.len(),
                features.rows,
                features.columns.len()
            )));
        }
        let p = &self.params;
        let k = task.outputs();
        let mut rng = Rng::new(seed);
        let mut holdout_rng = rng.fork();
        let mut bag_rng = rng.fork();
        let mut feature_rng = rng.fork();

        let (train_rows, valid_rows) = holdout(data.rows, p, &mut holdout_rng);
        let n = train_rows.len();
        let cols: Vec<Vec<u8>> = binned
            .codes
            .par_iter()
            .map(|c| train_rows.iter().map(|&r| c[r as usize]).collect())
            .collect();
        let bins = TrainBins::new(cols, &binned.features);
        let gather =
            |rows: &[u32], v: &[f64]| -> Vec<f64> { rows.iter().map(|&r| v[r as usize]).collect() };
        let labels = gather(&train_rows, data.labels);
        let weights = data.weights.map(|w| gather(&train_rows, w));
        let valid_labels = gather(&valid_rows, data.labels);
        let valid_weights = data.weights.map(|w| gather(&valid_rows, w));

        let init = objective::init_score(task, &labels, weights.as_deref());
        let mut scores: Vec<f64> = init.iter().copied().cycle().take(n * k).collect();
        let mut valid_scores: Vec<f64> = init
            .iter()
            .copied()
            .cycle()
            .take(valid_rows.len() * k)
            .collect();
        let mut grad = vec![0.0; n * k];
        let mut hess = vec![0.0; n * k];

        let cfg = p.tree_config(task);
        let mut grower = Grower::new(&bins, &cfg);
        let num_features = features.columns.len();
        let mut used = vec![true; num_features];
        let all_rows: Vec<u32> = (0..n as u32).collect();
        let mut bag: Vec<u32> = all_rows.clone();
        let mut out_of_bag: Vec<u32> = Vec::new();
        let mut rows_buf: Vec<u32> = Vec::with_capacity(n);
        let mut quant = Quantized::default();
        let bagging = p.bagging_fraction < 1.0 && p.bagging_freq > 0;

        let early = p.early_stopping_rounds > 0 && !valid_rows.is_empty();
        let mut best_loss = if early {
            objective::loss(task, &valid_scores, &valid_labels, valid_weights.as_deref())
        } else {
            f64::INFINITY
        };
        let mut best_iter = 0usize;
        let mut trees: Vec<FlatTree> = Vec::with_capacity(p.num_iterations * k);

        for iter in 0..p.num_iterations {
            if bagging && iter % p.bagging_freq == 0 {
                bag.clear();
                out_of_bag.clear();
                for &i in &all_rows {
                    if bag_rng.next_f64() < p.bagging_fraction {
                        bag.push(i);
                    } else {
                        out_of_bag.push(i);
                    }
                }
                if bag.is_empty() {
                    // A tiny table can draw an empty bag; an unbagged round beats a panic.
                    bag.extend_from_slice(&all_rows);
                    out_of_bag.clear();
                }
            }
            objective::gradients(
                task,
                &scores,
                &labels,
                weights.as_deref(),
                &mut grad,
                &mut hess,
            );
            for c in 0..k {
                sample_features(&mut used, p.feature_fraction, &mut feature_rng);
                rows_buf.clear();
                rows_buf.extend_from_slice(&bag);
                let (g, h) = (&grad[c * n..(c + 1) * n], &hess[c * n..(c + 1) * n]);
                if p.use_quantized_grad {
                    quant.update(g, h, quantize::key(iter, c));
                }
                let (tree, ranges) = grower.grow(
                    g,
                    h,
                    p.use_quantized_grad.then_some(&quant),
                    &mut rows_buf,
                    &used,
                );
                for (leaf, &(s, e)) in ranges.iter().enumerate() {
                    let v = tree.leaf_values[leaf];
                    for &i in &rows_buf[s..e] {
                        scores[i as usize * k + c] += v;
                    }
                }
                for &i in &out_of_bag {
                    let leaf = tree.leaf_binned(&binned.features, |f| bins.cols[f][i as usize]);
                    scores[i as usize * k + c] += tree.leaf_values[leaf];
                }
                valid_scores
                    .par_chunks_mut(k)
                    .zip(valid_rows.par_iter())
                    .for_each(|(s, &r)| {
                        let leaf =
                            tree.leaf_binned(&binned.features, |f| binned.codes[f][r as usize]);
                        s[c] += tree.leaf_values[leaf];
                    });
                trees.push(FlatTree::from_tree(&tree, &binned.features));
            }
            progress.iteration(iter + 1, p.num_iterations);
            if early {
                let loss =
                    objective::loss(task, &valid_scores, &valid_labels, valid_weights.as_deref());
                if loss < best_loss {
                    best_loss = loss;
                    best_iter = iter + 1;
                } else if iter + 1 - best_iter >= p.early_stopping_rounds {
                    break;
                }
            }
        }
        if early {
            trees.truncate(best_iter * k);
        }
        let model = GbdtModel::new(task, p.clone(), features.names.to_vec(), init, trees)?;
        if cfg!(debug_assertions) && !early {
            // Trees were applied to training rows through bin codes; the model walks real values.
            // Both must reach the same leaves, which makes the sums bit-identical.
            let raw = model.predict_raw(features, &train_rows);
            assert!(
                raw.iter()
                    .zip(&scores)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "flattened trees disagree with binned training"
            );
        }
        Ok(model)
    }
}

/// Splits the training rows into those trees learn from and the early-stopping holdout, both sorted
/// so training reads the table in order.
fn holdout(rows: &[u32], p: &GbdtParams, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
    if p.early_stopping_rounds == 0 || rows.len() < 2 {
        return (rows.to_vec(), Vec::new());
    }
    let mut shuffled = rows.to_vec();
    rng.shuffle(&mut shuffled);
    let nv = ((rows.len() as f64 * p.validation_fraction).round() as usize).min(rows.len() - 1);
    let mut valid = shuffled[..nv].to_vec();
    let mut train = shuffled[nv..].to_vec();
    valid.sort_unstable();
    train.sort_unstable();
    (train, valid)
}

/// Picks `round(fraction * features)` features (at least one) for the next tree.
fn sample_features(used: &mut [bool], fraction: f64, rng: &mut Rng) {
    if fraction >= 1.0 {
        used.iter_mut().for_each(|u| *u = true);
        return;
    }
    let m = used.len();
    let take = ((m as f64 * fraction).round() as usize).clamp(1, m);
    let mut idx: Vec<usize> = (0..m).collect();
    for i in 0..take {
        let j = i + rng.below(m - i);
        idx.swap(i, j);
    }
    used.iter_mut().for_each(|u| *u = false);
    for &i in &idx[..take] {
        used[i] = true;
    }
}

impl Learner for Gbdt {
    fn name(&self) -> &'static str {
        "gbdt"
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn seed_effect(&self) -> SeedEffect {
        let p = &self.params;
        let mut drives = Vec::new();
        if p.bagging_fraction < 1.0 && p.bagging_freq > 0 {
            drives.push("bagging (bagging_fraction < 1, bagging_freq > 0)");
        }
        if p.feature_fraction < 1.0 {
            drives.push("feature sampling (feature_fraction < 1)");
        }
        if p.early_stopping_rounds > 0 && p.validation_fraction > 0.0 {
            drives.push("the early-stopping validation rows (early_stopping_rounds > 0)");
        }
        if drives.is_empty() {
            SeedEffect::Nothing {
                advice: "let it sample, e.g. -p bagging_fraction=0.8 -p bagging_freq=1 \
                         -p feature_fraction=0.8",
            }
        } else {
            SeedEffect::Drives(drives)
        }
    }

    fn fit(
        &self,
        task: Task,
        data: &TrainSet<'_>,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, LearnError> {
        validate_train_set(task, data)?;
        crate::in_pool(|| {
            let binned = BinnedFeatures::new(data.features, self.params.max_bin);
            Ok(Box::new(self.fit_binned(task, data, &binned, seed, progress)?) as Box<dyn Model>)
        })
    }
}
