//! The fitted gbdt model: trees flattened into arrays on real feature values, so prediction needs no
//! binning, plus its versioned save format.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::GbdtParams;
use super::runtime::{QuickScorer, QuickSpace, Runtime, WalkSpace};
use super::shap::{self, Covers};
use super::tree::{BinSplit, Tree};
use crate::binning::{BinMap, FeatureBins};
use crate::{
    Column, Contributions, Features, LearnError, MODEL_FORMAT, MODEL_VERSION, Model, Task,
    objective,
};

/// Rows per parallel prediction task.
const PREDICT_CHUNK: usize = 1024;
/// From this many rows a block is walked node by node; fewer walk row by row.
const BY_NODE_MIN_ROWS: usize = 16;

/// One tree as stored: arrays over internal nodes, then leaf values. Child references `>= 0` are
/// internal nodes and `< 0` are leaf `!child`; a tree without internal nodes is the single leaf 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FlatTree {
    pub(super) feature: Vec<u32>,
    /// Numeric nodes send finite values `<= threshold` left.
    pub(super) threshold: Vec<f64>,
    /// `-1` for numeric nodes, else the index of the node's category set in `cat_offsets`.
    pub(super) cat: Vec<i32>,
    /// Where missing values (and, for categorical nodes, codes beyond the set) go.
    pub(super) default_left: Vec<bool>,
    pub(super) left: Vec<i32>,
    pub(super) right: Vec<i32>,
    /// Category set `i` is `cat_bits[cat_offsets[i]..cat_offsets[i + 1]]`: bit `c` set means code `c` goes left.
    pub(super) cat_offsets: Vec<u32>,
    pub(super) cat_bits: Vec<u32>,
    pub(super) leaf_value: Vec<f64>,
    /// Training rows of the tree's bag that reached each leaf (an internal node's count is the
    /// sum of its leaves'): the covers TreeSHAP weighs by. Empty in models saved before they
    /// were stored, which predict but cannot explain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) leaf_count: Vec<u32>,
}

/// A gradient-boosted tree ensemble: `init_score` plus, per iteration, one tree per output.
#[derive(Clone, Debug)]
pub struct GbdtModel {
    pub(super) task: Task,
    params: GbdtParams,
    pub(super) feature_names: Vec<String>,
    pub(super) init_score: Vec<f64>,
    pub(super) trees: Vec<FlatTree>,
    /// The trees as prediction walks them (see `runtime`).
    runtime: Runtime,
    /// The trees' covers for contributions, or why there are none.
    pub(super) covers: Result<Covers, String>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    version: u32,
    learner: String,
    task: Task,
    params: serde_json::Value,
    feature_names: Vec<String>,
    init_score: Vec<f64>,
    trees: Vec<FlatTree>,
}

impl FlatTree {
    /// The leaf values, no internal node yet: nodes are pushed onto its arrays.
    pub(super) fn without_nodes(leaf_value: Vec<f64>) -> FlatTree {
        FlatTree {
            feature: Vec::new(),
            threshold: Vec::new(),
            cat: Vec::new(),
            default_left: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
            cat_offsets: vec![0],
            cat_bits: Vec::new(),
            leaf_value,
            leaf_count: Vec::new(),
        }
    }

    /// Moves a tree from bin codes to real values: thresholds become bin upper bounds and bin sets
    /// become category-code sets.
    pub(crate) fn from_tree(tree: &Tree, feats: &[FeatureBins]) -> FlatTree {
        let mut t = FlatTree::without_nodes(tree.leaf_values.clone());
        t.leaf_count = tree.leaf_counts.clone();
        for n in &tree.nodes {
            t.feature.push(n.feature as u32);
            t.default_left.push(n.default_left);
            t.left.push(n.left);
            t.right.push(n.right);
            match (&n.split, &feats[n.feature].map) {
                (BinSplit::Numeric { threshold }, BinMap::Numeric { upper }) => {
                    let u = upper[*threshold as usize];
                    // The top bin's bound is +inf, which JSON cannot hold; every finite value is <= MAX.
                    t.threshold.push(if u.is_finite() { u } else { f64::MAX });
                    t.cat.push(-1);
                }
                (BinSplit::Categorical { left }, BinMap::Categorical { cat_to_bin, .. }) => {
                    let in_set = |b: u8| left[(b >> 6) as usize] >> (b & 63) & 1 == 1;
                    let codes: Vec<usize> = (0..cat_to_bin.len())
                        .filter(|&c| in_set(cat_to_bin[c]))
                        .collect();
                    // Codes past the stored words follow default_left, so when missing goes left the set
                    // must spell out every known code; otherwise it can stop at the last code in it.
                    let len = if n.default_left {
                        cat_to_bin.len()
                    } else {
                        codes.last().map_or(0, |c| c + 1)
                    };
                    let mut words = vec![0u32; len.div_ceil(32)];
                    for c in codes {
                        words[c / 32] |= 1 << (c % 32);
                    }
                    if n.default_left {
                        // Codes past the cardinality but inside the last word are unseen: default side.
                        for c in cat_to_bin.len()..words.len() * 32 {
                            words[c / 32] |= 1 << (c % 32);
                        }
                    }
                    t.cat.push((t.cat_offsets.len() - 1) as i32);
                    t.cat_bits.extend_from_slice(&words);
                    t.cat_offsets.push(t.cat_bits.len() as u32);
                    t.threshold.push(0.0);
                }
                _ => unreachable!("split kind always matches the feature's binning"),
            }
        }
        t
    }

    pub(super) fn validate(&self, num_features: usize) -> Result<(), String> {
        let n = self.feature.len();
        let lens = [
            self.threshold.len(),
            self.cat.len(),
            self.default_left.len(),
            self.left.len(),
            self.right.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err("node arrays differ in length".into());
        }
        if self.leaf_value.len() != n + 1 {
            return Err(format!(
                "{} internal nodes need {} leaves, found {}",
                n,
                n + 1,
                self.leaf_value.len()
            ));
        }
        if self.cat_offsets.first() != Some(&0)
            || self.cat_offsets.windows(2).any(|w| w[0] > w[1])
            || *self.cat_offsets.last().unwrap() as usize != self.cat_bits.len()
        {
            return Err("category set offsets are inconsistent".into());
        }
        for i in 0..n {
            if self.feature[i] as usize >= num_features {
                return Err(format!(
                    "node {i} uses feature {} of {num_features}",
                    self.feature[i]
                ));
            }
            if self.cat[i] >= 0 && self.cat[i] as usize + 1 >= self.cat_offsets.len() {
                return Err(format!("node {i} refers to a missing category set"));
            }
            for c in [self.left[i], self.right[i]] {
                let ok = if c >= 0 {
                    (c as usize) < n && c as usize > i
                } else {
                    (!c as usize) <= n
                };
                if !ok {
                    return Err(format!("node {i} has an invalid child {c}"));
                }
            }
        }
        if !self.leaf_count.is_empty() && self.leaf_count.len() != self.leaf_value.len() {
            return Err(format!(
                "{} leaves have {} leaf counts",
                self.leaf_value.len(),
                self.leaf_count.len()
            ));
        }
        if self.leaf_count.contains(&0) {
            return Err("a leaf count is 0".into());
        }
        if self
            .leaf_value
            .iter()
            .chain(&self.threshold)
            .any(|v| !v.is_finite())
        {
            return Err("non-finite threshold or leaf value".into());
        }
        Ok(())
    }

    /// The leaf a row of real values reaches, straight from the stored arrays (NaN for missing,
    /// category codes as f64): the reference the prediction engine is tested against.
    pub(super) fn leaf_by_value(&self, row: &[f64]) -> usize {
        if self.feature.is_empty() {
            return 0;
        }
        let mut i = 0usize;
        loop {
            let x = row[self.feature[i] as usize];
            let left = if x.is_nan() {
                self.default_left[i]
            } else if self.cat[i] < 0 {
                x <= self.threshold[i]
            } else {
                let c = x as u32;
                match self.set(i).get((c / 32) as usize) {
                    Some(w) => w >> (c % 32) & 1 == 1,
                    None => self.default_left[i],
                }
            };
            let next = if left { self.left[i] } else { self.right[i] };
            if next < 0 {
                return !next as usize;
            }
            i = next as usize;
        }
    }

    /// The category set of categorical node `i`, as words over category codes.
    pub(super) fn set(&self, i: usize) -> &[u32] {
        let k = self.cat[i] as usize;
        &self.cat_bits[self.cat_offsets[k] as usize..self.cat_offsets[k + 1] as usize]
    }
}

impl GbdtModel {
    /// Fails (a corrupt model) when a feature is split both as numeric and as categorical: the
    /// prediction engine codes each feature one way, as its binning in training does.
    pub(crate) fn new(
        task: Task,
        params: GbdtParams,
        feature_names: Vec<String>,
        init_score: Vec<f64>,
        trees: Vec<FlatTree>,
    ) -> Result<GbdtModel, LearnError> {
        // Per feature, whether the trees split it as categorical (`None` when unused), so a column
        // of the other kind can read as missing.
        let mut categorical: Vec<Option<bool>> = vec![None; feature_names.len()];
        for (i, t) in trees.iter().enumerate() {
            for (&f, &c) in t.feature.iter().zip(&t.cat) {
                let k = &mut categorical[f as usize];
                if k.is_some_and(|was| was != (c >= 0)) {
                    return Err(LearnError::CorruptModel(format!(
                        "tree {i}: feature {:?} is split both as numeric and as categorical",
                        feature_names[f as usize]
                    )));
                }
                *k = Some(c >= 0);
            }
        }
        let runtime = Runtime::new(&trees, &categorical);
        let covers = Covers::new(&trees, &init_score);
        Ok(GbdtModel {
            task,
            params,
            feature_names,
            init_score,
            trees,
            runtime,
            covers,
        })
    }

    /// Which engine predicts: "quickscorer-32" or "quickscorer-64" (leaf masks of that many
    /// bits), or "walk" for trees QuickScorer does not take. For tests and diagnostics.
    #[doc(hidden)]
    pub fn prediction_engine(&self) -> &'static str {
        match self.runtime.quick() {
            Some(QuickScorer::Narrow(_)) => "quickscorer-32",
            Some(QuickScorer::Wide(_)) => "quickscorer-64",
            None => "walk",
        }
    }

    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Boosting iterations kept (after early stopping); each has `task.outputs()` trees.
    pub fn num_iterations(&self) -> usize {
        self.trees.len() / self.task.outputs()
    }

    pub fn num_trees(&self) -> usize {
        self.trees.len()
    }

    /// Raw scores before the link function (log-odds, class logits, values), row-major.
    pub fn predict_raw(&self, features: &Features, rows: &[u32]) -> Vec<f64> {
        let k = self.task.outputs();
        let mut out = vec![0.0; rows.len() * k];
        if rows.len() <= PREDICT_CHUNK {
            // One block (a served request): on this thread, without a hop to the pool.
            self.predict_block(features, rows, &mut out, &mut Vec::new());
            return out;
        }
        crate::in_pool(|| {
            out.par_chunks_mut(PREDICT_CHUNK * k)
                .zip(rows.par_chunks(PREDICT_CHUNK))
                .for_each_init(Vec::new, |buf, (out, rows)| {
                    self.predict_block(features, rows, out, buf)
                })
        });
        out
    }

    /// Each row's feature contributions to its raw scores by TreeSHAP (see `shap`), rows in
    /// parallel; a row's decisions are prediction's, so base plus contributions is its raw score.
    pub fn contributions(
        &self,
        features: &Features,
        rows: &[u32],
    ) -> Result<Contributions, LearnError> {
        let covers = self
            .covers
            .as_ref()
            .map_err(|reason| LearnError::NoContributions {
                learner: "gbdt",
                reason: reason.clone(),
            })?;
        let k = self.task.outputs();
        let nf = self.feature_names.len();
        let width = self.runtime.num_features().max(1);
        let mut values = vec![0.0; rows.len() * k * nf];
        // Rows per task: one row costs about as much as predicting hundreds.
        const CHUNK: usize = 16;
        let chunk = |out: &mut [f64], rows: &[u32], space: &mut (Vec<u32>, Vec<shap::Element>)| {
            let (codes, path) = space;
            self.runtime.code_rows(features, rows, codes);
            for (out, row) in out.chunks_mut(k * nf).zip(codes.chunks(width)) {
                for (t, tree) in self.trees.iter().enumerate() {
                    let phi = &mut out[(t % k) * nf..(t % k + 1) * nf];
                    let goes_left = |i: usize| self.runtime.goes_left_at(t, i, row);
                    shap::add_tree(tree, covers.tree(t), goes_left, phi, path);
                }
            }
        };
        if nf == 0 {
            // No features, nothing to attribute (and no chunks of width 0).
        } else if rows.len() <= CHUNK {
            // A served request's rows: on this thread, without a hop to the pool.
            chunk(&mut values, rows, &mut Default::default());
        } else {
            crate::in_pool(|| {
                values
                    .par_chunks_mut(CHUNK * k * nf)
                    .zip(rows.par_chunks(CHUNK))
                    .for_each_init(Default::default, |space, (out, rows)| {
                        chunk(out, rows, space)
                    })
            });
        }
        Ok(Contributions {
            base: covers.base().to_vec(),
            values,
            outputs: k,
            features: nf,
        })
    }

    /// Raw scores computed the slow, obvious way: each row's real values walked down each stored
    /// tree in turn. For tests of the prediction engine, which must agree bit for bit.
    #[doc(hidden)]
    pub fn predict_raw_reference(&self, features: &Features, rows: &[u32]) -> Vec<f64> {
        let k = self.task.outputs();
        let mut out = Vec::with_capacity(rows.len() * k);
        for &r in rows {
            let row: Vec<f64> = (0..self.feature_names.len())
                .map(|f| match features.columns.get(f) {
                    Some(Column::Numeric(v)) if v[r as usize].is_finite() => v[r as usize],
                    Some(Column::Categorical { codes, .. }) if codes[r as usize] != u32::MAX => {
                        f64::from(codes[r as usize])
                    }
                    _ => f64::NAN,
                })
                .collect();
            let mut o = self.init_score.clone();
            for (t, tree) in self.trees.iter().enumerate() {
                o[t % k] += tree.leaf_value[tree.leaf_by_value(&row)];
            }
            out.extend(o);
        }
        out
    }

    /// Raw scores of a block of rows into `out`; `buf` is scratch space for their features.
    fn predict_block(
        &self,
        features: &Features,
        rows: &[u32],
        out: &mut [f64],
        buf: &mut Vec<u32>,
    ) {
        let k = self.task.outputs();
        let nf = self.runtime.num_features().max(1);
        self.runtime.code_rows(features, rows, buf);
        for o in out.chunks_mut(k) {
            o.copy_from_slice(&self.init_score);
        }
        // Each row adds the trees in their order, whichever way its leaves are found, so the sum
        // never depends on scheduling or on the block a row falls in.
        if let Some(quick) = self.runtime.quick() {
            // QuickScorer: on Adult's 200 trees, 1.3 -> 0.6 us per row for a block and 4.9 ->
            // 1.1 us for a lone row against the walks below (`cargo run --release -p gyre-learn
            // --example bench_adult`, alternating with the build before QuickScorer); a block's
            // rows then four at a time, 0.49-0.64 -> 0.42-0.49 us (alternating with the build
            // before that change).
            let mut space = QuickSpace::default();
            quick.add_scores_rows(buf, nf, k, out, &mut space);
        } else if rows.len() >= BY_NODE_MIN_ROWS {
            self.walk_by_node(buf, nf, out);
        } else {
            self.walk_alone(buf, nf, out);
        }
    }

    /// Raw scores of a block of coded rows, each tree walked node by node
    /// (`Runtime::leaves_by_node`).
    fn walk_by_node(&self, buf: &[u32], nf: usize, out: &mut [f64]) {
        let k = self.task.outputs();
        let n = out.len() / k;
        let mut leaf_of = vec![0u32; n];
        let mut space = WalkSpace::default();
        for t in 0..self.runtime.num_trees() {
            self.runtime
                .leaves_by_node(t, buf, nf, n, &mut leaf_of, &mut space);
            for (o, &leaf) in out.chunks_mut(k).zip(&leaf_of) {
                o[t % k] += self.runtime.leaf_value(t, leaf as usize);
            }
        }
    }

    /// Raw scores of a few coded rows, each walking alone, LANES trees at once. A function of
    /// its own: inlined beside the block walk, the eight-lane walk made the compiler lay out the
    /// block walk worse (block prediction 1.30 -> 1.68 us per row in `bench_adult`).
    #[inline(never)]
    fn walk_alone(&self, buf: &[u32], nf: usize, out: &mut [f64]) {
        let k = self.task.outputs();
        let nt = self.runtime.num_trees();
        const LANES: usize = 8;
        let trees_full = nt - nt % LANES;
        for (o, row) in out.chunks_mut(k).zip(buf.chunks(nf)) {
            // Tree t adds to output t % k, in tree order; the output index cycles instead of a
            // division per tree.
            let mut class = 0;
            for first in (0..trees_full).step_by(LANES) {
                let leaves = self.runtime.leaves_of_trees::<LANES>(first, row);
                for (l, leaf) in leaves.into_iter().enumerate() {
                    o[class] += self.runtime.leaf_value(first + l, leaf);
                    class = if class + 1 == k { 0 } else { class + 1 };
                }
            }
            for t in trees_full..nt {
                o[class] += self.runtime.leaf_value(t, self.runtime.leaf(t, row));
                class = if class + 1 == k { 0 } else { class + 1 };
            }
        }
    }

    /// A saved gbdt model (`load_model` reads any learner's). For tests and diagnostics.
    #[doc(hidden)]
    pub fn load(bytes: &[u8]) -> Result<GbdtModel, LearnError> {
        let s: Saved = serde_json::from_slice(bytes)
            .map_err(|e| LearnError::CorruptModel(format!("gbdt model: {e}")))?;
        let params = GbdtParams::from_json(&s.params)
            .map_err(|e| LearnError::CorruptModel(format!("gbdt params: {e}")))?;
        let k = s.task.outputs();
        if s.init_score.len() != k || !s.trees.len().is_multiple_of(k) {
            return Err(LearnError::CorruptModel(format!(
                "gbdt model does not have {k} outputs"
            )));
        }
        for (i, t) in s.trees.iter().enumerate() {
            t.validate(s.feature_names.len())
                .map_err(|e| LearnError::CorruptModel(format!("tree {i}: {e}")))?;
        }
        GbdtModel::new(s.task, params, s.feature_names, s.init_score, s.trees)
    }
}

impl Model for GbdtModel {
    fn task(&self) -> Task {
        self.task
    }

    fn learner(&self) -> &'static str {
        "gbdt"
    }

    fn predict(&self, features: &Features, rows: &[u32]) -> Vec<f64> {
        let mut raw = self.predict_raw(features, rows);
        objective::transform(self.task, &mut raw);
        raw
    }

    fn contributions(
        &self,
        features: &Features,
        rows: &[u32],
    ) -> Result<Contributions, LearnError> {
        GbdtModel::contributions(self, features, rows)
    }

    fn save(&self) -> Vec<u8> {
        let saved = Saved {
            format: MODEL_FORMAT.to_string(),
            version: MODEL_VERSION,
            learner: "gbdt".to_string(),
            task: self.task,
            params: self.params.to_json(),
            feature_names: self.feature_names.clone(),
            init_score: self.init_score.clone(),
            trees: self.trees.clone(),
        };
        serde_json::to_vec(&saved).expect("a gbdt model always serializes")
    }

    fn to_onnx(&self) -> Result<crate::onnx::OnnxModel, LearnError> {
        Ok(self.onnx())
    }
}
