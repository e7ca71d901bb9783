//! Per-row feature contributions: why a model gave a row its score, as one number per feature
//! that, added to a base value, gives the row's raw score (for gbdt, SHAP values by TreeSHAP).

/// Each row's contributions to each raw output (log-odds for binary, one logit per class for
/// multiclass, the value for regression): `base[o]` plus the row's contributions to output `o`
/// is the row's raw score for `o`.
#[derive(Clone, Debug, PartialEq)]
pub struct Contributions {
    /// Per output, the expected raw score: what a row's contributions start from.
    pub base: Vec<f64>,
    /// Row `r`, output `o`, feature `f` at `(r * outputs + o) * features + f`.
    pub values: Vec<f64>,
    pub outputs: usize,
    /// Features per row, in the model's training order.
    pub features: usize,
}

impl Contributions {
    pub fn rows(&self) -> usize {
        self.values.len() / (self.outputs * self.features).max(1)
    }

    /// One row's contributions to one output, one per feature.
    pub fn row(&self, row: usize, output: usize) -> &[f64] {
        let at = (row * self.outputs + output) * self.features;
        &self.values[at..at + self.features]
    }
}
