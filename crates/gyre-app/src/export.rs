//! `gyre export RUN --out DIR`: a run in forms other tools read. `model.onnx` (the model as
//! ONNX, giving gyre's own predictions), `inputs.json` (how to feed it), `predictions.parquet`
//! (the stored per-example holdout predictions), `holdout_inputs.parquet` (the holdout rows as
//! model.onnx reads them, so anyone can reproduce the predictions) and `MODEL_CARD.md`.

use crate::model_card::{self, Card, SuiteCard};
use crate::predictions::Predictions;
use crate::slicing::SlicesRequest;
use crate::suites::{HOLDOUT, masked, outputs, suite_mask};
use crate::table_view::LoadedVersion;
use crate::{App, AppError};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use gyre_core::{ColumnKind, ContentHash};
use gyre_learn::{Column, Features, onnx};
use gyre_store::{RunRecord, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bootstrap replicates and seed of the model card's metric intervals (fixed, so exporting a
/// run twice writes the same card).
const INTERVAL_RESAMPLES: usize = 500;
const INTERVAL_SEED: u64 = 0;
/// Failure slices listed in the card.
const CARD_SLICES: usize = 5;

/// What `gyre export` was asked.
pub struct ExportRequest<'a> {
    pub run: &'a str,
    pub out: &'a Path,
    /// Write into a directory that already holds files (replacing the export's own).
    pub force: bool,
}

#[derive(Serialize)]
pub struct ExportReport {
    pub run: String,
    pub out: PathBuf,
    pub files: Vec<ExportedFile>,
    pub onnx: OnnxReport,
}

#[derive(Serialize)]
pub struct ExportedFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Serialize)]
pub struct OnnxReport {
    pub ir_version: i64,
    /// Opset per domain (`ai.onnx`, `ai.onnx.ml`).
    pub opset: BTreeMap<String, i64>,
    pub inputs: InputsSpec,
}

/// How to feed model.onnx and read what it gives: `inputs.json`, and the model's metadata.
#[derive(Clone, Debug, Serialize)]
pub struct InputsSpec {
    pub input: &'static str,
    pub dtype: &'static str,
    /// `["N", F]`.
    pub shape: (String, usize),
    pub missing: &'static str,
    pub unseen: &'static str,
    pub features: Vec<InputFeature>,
    pub output: OutputSpec,
}

#[derive(Clone, Debug, Serialize)]
pub struct InputFeature {
    pub index: usize,
    pub name: String,
    pub kind: &'static str,
    /// A categorical feature's categories: the code of each is its index here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputSpec {
    pub name: &'static str,
    pub dtype: &'static str,
    /// What each output column is: a class's probability (gyre's class order) or the value.
    pub columns: Vec<String>,
}

impl App {
    pub fn export(&mut self, req: &ExportRequest<'_>) -> Result<ExportReport, AppError> {
        let record = self.resolve_run(req.run)?;
        check_dir(req.out, req.force)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let object = ContentHash::parse(&record.model)
            .ok_or_else(|| StoreError::Corrupt(format!("bad model id in run {}", record.id)))?;
        let model = crate::external_model::load_model(&self.store.objects().get(&object)?)?;
        let features = loaded.features();
        let spec = inputs_spec(&loaded.schema, &features, model.task());
        let onnx_model = onnx_model(model.as_ref(), &record, &spec)?;

        let pred_object = ContentHash::parse(&record.predictions).ok_or_else(|| {
            StoreError::Corrupt(format!("bad predictions id in run {}", record.id))
        })?;
        let predictions = self.store.objects().get(&pred_object)?;
        let preds = self.run_predictions(&record, &loaded)?;
        let holdout_inputs = holdout_inputs(&record, &loaded, &features, &preds.row_ids)?;

        // The card: the run with every suite scored now, intervals, slices and edits.
        let report = self.run_report_with_suites(&record)?;
        let suites = self.suite_cards(&record, &loaded, &preds)?;
        let slices = self.slices(&SlicesRequest {
            run: record.id.clone(),
            suite: None,
            params: Default::default(),
            error: None,
        })?;
        let entry = self.version_entry(&record.dataset, Some(&record.version))?;
        let edits = self.edits_upto(&record.dataset, entry.edit)?;
        let card = model_card::render(&Card {
            run: &report,
            classes: &loaded.schema.classes,
            edits: gyre_core::edit::effective(&edits),
            suites: &suites,
            slices: &slices,
            slices_shown: CARD_SLICES,
            resamples: INTERVAL_RESAMPLES,
            seed: INTERVAL_SEED,
            inputs: &spec,
        });

        // Everything is computed: now the files, each written whole or not at all.
        std::fs::create_dir_all(req.out).map_err(|e| StoreError::io(req.out, e))?;
        let inputs_json = serde_json::to_vec_pretty(&spec).expect("the inputs spec serializes");
        let mut files = Vec::new();
        for (name, bytes) in [
            ("model.onnx", &onnx_model.to_bytes()[..]),
            ("inputs.json", &inputs_json[..]),
            ("predictions.parquet", &predictions[..]),
            ("holdout_inputs.parquet", &holdout_inputs[..]),
            ("MODEL_CARD.md", card.as_bytes()),
        ] {
            gyre_store::write_atomic(&req.out.join(name), bytes)?;
            files.push(ExportedFile {
                name: name.to_string(),
                bytes: bytes.len() as u64,
                sha256: ContentHash::of(bytes).as_str().to_string(),
            });
        }
        Ok(ExportReport {
            run: record.id,
            out: req.out.to_path_buf(),
            files,
            onnx: OnnxReport {
                ir_version: onnx::IR_VERSION,
                opset: onnx_model
                    .opsets
                    .iter()
                    .map(|(d, v)| {
                        let d = if d.is_empty() { "ai.onnx" } else { d.as_str() };
                        (d.to_string(), *v)
                    })
                    .collect(),
                inputs: spec,
            },
        })
    }

    /// Each suite of the run's dataset (holdout first) for the card, with the 95% interval of
    /// every metric on its rows.
    fn suite_cards(
        &mut self,
        record: &RunRecord,
        loaded: &LoadedVersion,
        preds: &Predictions,
    ) -> Result<Vec<SuiteCard>, AppError> {
        let task = loaded.schema.task;
        let classes = loaded.schema.classes.len();
        let k = outputs(task, classes);
        let defined: Vec<crate::Suite> = self
            .suites()?
            .suites
            .into_iter()
            .filter(|s| s.dataset == record.dataset)
            .collect();
        let mut cards = Vec::new();
        for def in std::iter::once(None).chain(defined.iter().map(Some)) {
            let keep = suite_mask(def, loaded, &preds.row_ids);
            let labels = masked(&keep, &preds.labels, 1);
            let scores = masked(&keep, &preds.scores, k);
            let intervals = if labels.is_empty() {
                BTreeMap::new()
            } else {
                let p = gyre_eval::compare::Prepared::for_positive(
                    task,
                    classes,
                    loaded.schema.positive_index(),
                    &labels,
                    &scores,
                );
                gyre_eval::compare::metric_intervals(&p, INTERVAL_RESAMPLES, INTERVAL_SEED)
            };
            cards.push(SuiteCard {
                name: def.map_or(HOLDOUT.to_string(), |s| s.name.clone()),
                definition: match def {
                    None => "every holdout row".to_string(),
                    Some(s) => match (&s.predicate, &s.rows) {
                        (Some(p), _) => format!("holdout rows where {p}"),
                        (_, Some(r)) => format!("{} listed holdout rows", r.len()),
                        _ => String::new(),
                    },
                },
                requirements: def.map(|s| s.requirements.clone()).unwrap_or_default(),
                intervals,
            });
        }
        Ok(cards)
    }
}

/// The run's model as ONNX, with the run and the input contract in its metadata.
fn onnx_model(
    model: &dyn gyre_learn::Model,
    record: &RunRecord,
    spec: &InputsSpec,
) -> Result<onnx::OnnxModel, AppError> {
    let mut m = model.to_onnx()?;
    m.doc = format!(
        "gyre run {} ({} on {} version {}); input and output: inputs.json, also in metadata \
         gyre.inputs",
        record.id, record.learner, record.dataset, record.version
    );
    m.metadata = vec![
        ("gyre.run".into(), record.id.clone()),
        ("gyre.learner".into(), record.learner.clone()),
        ("gyre.dataset".into(), record.dataset.clone()),
        ("gyre.version".into(), record.version.clone()),
        (
            "gyre.inputs".into(),
            serde_json::to_string(spec).expect("the inputs spec serializes"),
        ),
    ];
    Ok(m)
}

/// Checks `dir` may be written into: new (it is created when the files are ready), empty, or
/// `force`.
fn check_dir(dir: &Path, force: bool) -> Result<(), AppError> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(AppError::Invalid {
            message: format!("{}: not a directory", dir.display()),
            hint: Some("give --out a directory to create, or an empty one".into()),
        });
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    if entries.next().is_some() && !force {
        return Err(AppError::Invalid {
            message: format!("{}: directory is not empty", dir.display()),
            hint: Some(
                "give --out a new or empty directory, or pass --force to replace the export's \
                 files there"
                    .into(),
            ),
        });
    }
    Ok(())
}

/// The input contract: features in training order, categories by code, NaN for missing.
fn inputs_spec(
    schema: &gyre_core::DatasetSchema,
    features: &Features,
    task: gyre_learn::Task,
) -> InputsSpec {
    let list = features
        .names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let col = schema.columns.iter().find(|c| &c.name == name);
            let kind = col.map_or(ColumnKind::Numeric, |c| c.kind);
            InputFeature {
                index,
                name: name.clone(),
                kind: match kind {
                    ColumnKind::Categorical => "categorical",
                    ColumnKind::Boolean => "boolean",
                    _ => "numeric",
                },
                categories: if kind == ColumnKind::Categorical {
                    col.map(|c| c.categories.clone()).unwrap_or_default()
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    InputsSpec {
        input: onnx::INPUT,
        dtype: "double",
        shape: ("N".to_string(), features.columns.len()),
        missing: "NaN (as are +-inf for numeric features)",
        unseen: "NaN: a category not in the feature's list is treated as missing, as gyre's server \
                 does",
        features: list,
        output: OutputSpec {
            name: onnx::output_name(task),
            dtype: "double",
            columns: match task {
                gyre_learn::Task::Regression => vec![schema.target.clone()],
                _ => schema.classes.iter().map(|c| format!("P({c})")).collect(),
            },
        },
    }
}

/// The predicted rows' features as model.onnx takes them: `row_id`, then one double column per
/// feature (category codes; NaN for missing, non-finite or unseen values).
fn holdout_inputs(
    record: &RunRecord,
    loaded: &LoadedVersion,
    features: &Features,
    row_ids: &[u64],
) -> Result<Vec<u8>, AppError> {
    let ids = loaded.row_ids();
    let table_rows = row_ids
        .iter()
        .map(|id| {
            ids.binary_search(id).map_err(|_| {
                AppError::from(StoreError::Corrupt(format!(
                    "run {} predicts row {id}, which is not in its version",
                    record.id
                )))
            })
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let mut fields = vec![Field::new("row_id", DataType::UInt64, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(row_ids.to_vec()))];
    for (name, col) in features.names.iter().zip(&features.columns) {
        let values: Float64Array = table_rows
            .iter()
            .map(|&r| {
                Some(match col {
                    Column::Numeric(v) if v[r].is_finite() => v[r],
                    Column::Categorical { codes, cardinality } if codes[r] < *cardinality => {
                        f64::from(codes[r])
                    }
                    _ => f64::NAN,
                })
            })
            .collect();
        fields.push(Field::new(name, DataType::Float64, false));
        arrays.push(Arc::new(values));
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns match fields");
    Ok(gyre_data::table::to_parquet_numbers(&batch)?)
}
