//! A model gyre did not fit: the output of a command learner or a run imported with
//! `gyre runs import`. What gyre keeps of it is where it came from, the features and classes it
//! was asked about, and the ONNX file it may have left, which `gyre serve` runs through
//! onnxruntime (`onnx_runtime`).
//!
//! # Stored form, version 1
//! One line of JSON (`{"format":"gyre-external-model","version":1,...}`, compact, so it holds no
//! newline), a newline, then the ONNX bytes as they were written (none when there is no model).
//! Other models are gyre-learn's JSON (`gyre_learn::load_model`); [`load_model`] reads both.

use crate::command_learner::CommandInfo;
use crate::onnx_runtime::OnnxRunner;
use gyre_core::ColumnKind;
use gyre_learn::{Features, LearnError, Model, Task};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const FORMAT: &str = "gyre-external-model";
const VERSION: u32 = 1;

/// A feature as the protocol describes it (spec.json's `features`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureSpec {
    pub name: String,
    pub kind: ColumnKind,
    /// A categorical feature's categories, in code order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// Where an external model came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A command learner's run.
    Command(CommandInfo),
    /// `gyre runs import`: the predictions file's name and the SHA-256 of its bytes.
    Imported { file: String, sha256: String },
}

/// What is stored of an external model besides its ONNX bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExternalInfo {
    pub origin: Origin,
    pub task: Task,
    pub classes: Vec<String>,
    pub features: Vec<FeatureSpec>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    learner: String,
    #[serde(flatten)]
    info: ExternalInfo,
    onnx_bytes: usize,
}

/// A model gyre did not fit, with the ONNX file it may have.
pub struct ExternalModel {
    pub(crate) info: ExternalInfo,
    pub(crate) onnx: Option<Vec<u8>>,
    /// The model loaded into onnxruntime, on first use.
    runner: OnceLock<Result<OnnxRunner, String>>,
    /// Where a command learner's fit spent its time (not stored).
    pub(crate) timings: Vec<(&'static str, f64)>,
}

impl ExternalModel {
    pub(crate) fn new(info: ExternalInfo, onnx: Option<Vec<u8>>) -> ExternalModel {
        ExternalModel {
            info,
            onnx,
            runner: OnceLock::new(),
            timings: Vec::new(),
        }
    }

    fn learner_name(&self) -> &'static str {
        match self.info.origin {
            Origin::Command(_) => "command",
            Origin::Imported { .. } => "imported",
        }
    }

    /// The model in onnxruntime, or why it cannot be served: no ONNX file, no runtime, or a
    /// graph whose inputs or outputs gyre cannot map (see docs/learner-protocol.md).
    pub(crate) fn runner(&self) -> Result<&OnnxRunner, String> {
        self.runner
            .get_or_init(|| match &self.onnx {
                None => Err(format!(
                    "the run has no model: its {} wrote no ONNX file, so gyre has nothing to \
                     serve (it can still be compared, gated and diffed)",
                    match self.info.origin {
                        Origin::Command(_) => "learner",
                        Origin::Imported { .. } => "import (--model)",
                    }
                )),
                Some(bytes) => OnnxRunner::new(bytes, &self.info),
            })
            .as_ref()
            .map_err(|e| e.clone())
    }
}

impl Model for ExternalModel {
    fn task(&self) -> Task {
        self.info.task
    }

    fn learner(&self) -> &'static str {
        self.learner_name()
    }

    /// Runs the ONNX model. Serving and `gyre predict` check [`ExternalModel::runner`] when they
    /// load the model, so a model that cannot run is refused there, not here.
    fn predict(&self, features: &Features, rows: &[u32]) -> Vec<f64> {
        let runner = self
            .runner()
            .unwrap_or_else(|e| panic!("an external model was used without its check: {e}"));
        runner
            .predict(features, rows)
            .unwrap_or_else(|e| panic!("onnxruntime failed on checked input: {e}"))
    }

    fn fit_timings(&self) -> Vec<(&'static str, f64)> {
        self.timings.clone()
    }

    fn save(&self) -> Vec<u8> {
        let header = Header {
            format: FORMAT.into(),
            version: VERSION,
            learner: self.learner_name().into(),
            info: self.info.clone(),
            onnx_bytes: self.onnx.as_ref().map_or(0, |o| o.len()),
        };
        let mut out = serde_json::to_vec(&header).expect("header serializes");
        out.push(b'\n');
        if let Some(o) = &self.onnx {
            out.extend_from_slice(o);
        }
        out
    }

    fn to_onnx(&self) -> Result<gyre_learn::onnx::OnnxModel, LearnError> {
        Err(LearnError::External(format!(
            "a {} run's model is the ONNX file its author wrote; gyre exports only models it fit",
            self.learner_name()
        )))
    }
}

/// Whether `bytes` are an external model's stored form.
pub(crate) fn is_external(bytes: &[u8]) -> bool {
    bytes.starts_with(br#"{"format":"gyre-external-model""#)
}

/// Reads a stored external model.
pub(crate) fn load_external(bytes: &[u8]) -> Result<ExternalModel, LearnError> {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| LearnError::CorruptModel("external model without its header line".into()))?;
    let header: Header = serde_json::from_slice(&bytes[..end])
        .map_err(|e| LearnError::CorruptModel(format!("external model header: {e}")))?;
    if header.format != FORMAT {
        return Err(LearnError::CorruptModel(format!(
            "format is \"{}\", expected \"{FORMAT}\"",
            header.format
        )));
    }
    if header.version != VERSION {
        return Err(LearnError::UnsupportedModelVersion {
            version: header.version,
            supported: VERSION,
        });
    }
    let onnx = &bytes[end + 1..];
    if onnx.len() != header.onnx_bytes {
        return Err(LearnError::CorruptModel(format!(
            "external model has {} ONNX bytes, its header says {}",
            onnx.len(),
            header.onnx_bytes
        )));
    }
    Ok(ExternalModel::new(
        header.info,
        (!onnx.is_empty()).then(|| onnx.to_vec()),
    ))
}

/// Reads any stored model: gyre-learn's own, or an external one.
pub(crate) fn load_model(bytes: &[u8]) -> Result<Box<dyn Model>, LearnError> {
    if is_external(bytes) {
        Ok(Box::new(load_external(bytes)?))
    } else {
        gyre_learn::load_model(bytes)
    }
}

/// How far a served score may be from the run's recorded one: onnxruntime computes trees and
/// networks in float32, a Python learner's predictions are float64. Probabilities are compared
/// as they are; a regression's values relative to the largest of them (float32 sums of a
/// hundred trees differ from float64 ones by about 1e-7 of their scale).
pub const REPRODUCE_TOLERANCE: f64 = 1e-5;

/// Holdout rows run through the ONNX model when a run is promoted or served.
const REPRODUCE_ROWS: usize = 256;

impl crate::App {
    /// Refuses a run gyre cannot serve: an external run without an ONNX model, one onnxruntime
    /// cannot load or map to the run's features, or one whose scores on the first holdout rows
    /// differ from the run's recorded predictions by more than [`REPRODUCE_TOLERANCE`]. Runs of
    /// gyre's own learners pass untouched.
    pub(crate) fn check_servable(
        &mut self,
        record: &gyre_store::RunRecord,
    ) -> Result<(), crate::AppError> {
        let object = gyre_core::ContentHash::parse(&record.model).ok_or_else(|| {
            gyre_store::StoreError::Corrupt(format!("bad model id in run {}", record.id))
        })?;
        let bytes = self.store.objects().get(&object)?;
        if !is_external(&bytes) {
            return Ok(());
        }
        let model = load_external(&bytes)?;
        let refuse = |why: String| crate::AppError::Invalid {
            message: format!("run {} cannot be served: {why}", record.id),
            hint: Some(
                "it can still be compared and gated (gyre diff, gyre gate); to serve it, have \
                 its learner write an ONNX model to GYRE_MODEL (or import it with --model), \
                 see docs/learner-protocol.md"
                    .into(),
            ),
        };
        let runner = model.runner().map_err(&refuse)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let stored = self.run_scores(record, &loaded)?;
        let width = model.info.task.outputs();
        let index: rustc_hash::FxHashMap<u64, u32> = loaded
            .row_ids()
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        let n = stored.row_ids.len().min(REPRODUCE_ROWS);
        let rows: Vec<u32> = stored.row_ids[..n]
            .iter()
            .map(|id| index.get(id).copied())
            .collect::<Option<_>>()
            .ok_or_else(|| refuse("its holdout rows are not in its version".into()))?;
        let features = loaded.features();
        let served = runner.predict(&features, &rows).map_err(&refuse)?;
        let recorded = &stored.scores[..n * width];
        let tolerance = match model.info.task {
            Task::Regression => {
                REPRODUCE_TOLERANCE * recorded.iter().fold(1.0f64, |m, v| m.max(v.abs()))
            }
            _ => REPRODUCE_TOLERANCE,
        };
        for (i, (a, b)) in served.iter().zip(recorded).enumerate() {
            if (a - b).abs() > tolerance || !a.is_finite() {
                return Err(refuse(format!(
                    "its ONNX model does not reproduce the run's predictions: row_id {} scores \
                     {a} in onnxruntime, {b} as recorded (tolerance {tolerance:.3e}); \
                     was the model exported from the same fit, with the inputs the protocol \
                     describes?",
                    stored.row_ids[i / width]
                )));
            }
        }
        Ok(())
    }
}
