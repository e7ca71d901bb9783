//! A linear model as standard ONNX operators: the encoder (standardized numeric features with
//! missing ones imputed by the mean and flagged, one-hot categories) as vector operations over
//! the input columns, then one matrix product per block of slots and the link function.

use super::LinearModel;
use crate::onnx::{Attr, Graph, INPUT, OnnxModel, TensorData, standard_opsets};
use crate::{LearnError, Task};

/// TensorProto.DataType DOUBLE, for Cast.
const DOUBLE: i64 = 11;

impl LinearModel {
    /// The model as an ONNX graph (see `crate::onnx` for its input and output).
    pub(super) fn onnx(&self) -> Result<OnnxModel, LearnError> {
        let k = self.task.outputs();
        let enc = &self.encoder;
        let width = 1 + enc.dim;
        // Weight of slot `s` for output `c`.
        let w = |s: usize, c: usize| self.coef[c * width + 1 + s];
        let mut g = Graph::new("gyre_linear", self.feature_names.len());
        let mut terms = Vec::new();
        let to_double = || vec![("to", Attr::Int(DOUBLE))];

        let num = &enc.numeric;
        if !num.is_empty() {
            let n = num.len() as i64;
            let idx = g.constant(
                "numeric_columns",
                &[n],
                TensorData::Int64(num.iter().map(|e| e.feature as i64).collect()),
            );
            let x = g.op("Gather", &[INPUT, &idx], vec![("axis", Attr::Int(1))]);
            // gyre treats NaN and +-inf as missing.
            let nan = g.op("IsNaN", &[&x], vec![]);
            let inf = g.op("IsInf", &[&x], vec![]);
            let missing = g.op("Or", &[&nan, &inf], vec![]);
            let mean = g.constant(
                "mean",
                &[n],
                TensorData::Double(num.iter().map(|e| e.mean).collect()),
            );
            let scale = g.constant(
                "scale",
                &[n],
                TensorData::Double(num.iter().map(|e| e.scale).collect()),
            );
            let centered = g.op("Sub", &[&x, &mean], vec![]);
            let z = g.op("Mul", &[&centered, &scale], vec![]);
            let zero = g.constant("zero", &[], TensorData::Double(vec![0.0]));
            let z = g.op("Where", &[&missing, &zero, &z], vec![]);
            let wn = g.constant(
                "numeric_weights",
                &[n, k as i64],
                TensorData::Double(
                    (0..num.len())
                        .flat_map(|j| (0..k).map(move |c| w(j, c)))
                        .collect(),
                ),
            );
            terms.push(g.op("MatMul", &[&z, &wn], vec![]));
            if num.iter().any(|e| e.indicator.is_some()) {
                let flags = g.op("Cast", &[&missing], to_double());
                let wi = g.constant(
                    "missing_weights",
                    &[n, k as i64],
                    TensorData::Double(
                        num.iter()
                            .flat_map(|e| (0..k).map(move |c| e.indicator.map_or(0.0, |i| w(i, c))))
                            .collect(),
                    ),
                );
                terms.push(g.op("MatMul", &[&flags, &wi], vec![]));
            }
        }

        // One column per (feature, code seen in training): 1 where the row has that code.
        let onehot: Vec<(usize, usize, usize)> = enc
            .categorical
            .iter()
            .flat_map(|e| {
                e.slot
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s != u32::MAX)
                    .map(|(code, &s)| (e.feature, code, s as usize))
            })
            .collect();
        if !onehot.is_empty() {
            let m = onehot.len() as i64;
            let idx = g.constant(
                "category_columns",
                &[m],
                TensorData::Int64(onehot.iter().map(|o| o.0 as i64).collect()),
            );
            let codes = g.constant(
                "category_codes",
                &[m],
                TensorData::Double(onehot.iter().map(|o| o.1 as f64).collect()),
            );
            let x = g.op("Gather", &[INPUT, &idx], vec![("axis", Attr::Int(1))]);
            let hit = g.op("Equal", &[&x, &codes], vec![]);
            let h = g.op("Cast", &[&hit], to_double());
            let wc = g.constant(
                "category_weights",
                &[m, k as i64],
                TensorData::Double(
                    onehot
                        .iter()
                        .flat_map(|o| (0..k).map(move |c| w(o.2, c)))
                        .collect(),
                ),
            );
            terms.push(g.op("MatMul", &[&h, &wc], vec![]));
        }

        let Some((first, rest)) = terms.split_first() else {
            return Err(LearnError::InvalidTask(
                "a linear model without features has no ONNX form".into(),
            ));
        };
        let b = g.constant(
            "intercept",
            &[k as i64],
            TensorData::Double((0..k).map(|c| self.coef[c * width]).collect()),
        );
        let mut raw = g.op("Add", &[first, &b], vec![]);
        for t in rest {
            raw = g.op("Add", &[&raw, t], vec![]);
        }
        if self.task == Task::Regression {
            let s = g.constant("y_scale", &[], TensorData::Double(vec![self.y_scale]));
            let m = g.constant("y_mean", &[], TensorData::Double(vec![self.y_mean]));
            let scaled = g.op("Mul", &[&raw, &s], vec![]);
            raw = g.op("Add", &[&scaled, &m], vec![]);
        }
        Ok(g.finish(self.task, &raw, standard_opsets()))
    }
}
