//! `gyre runs import PREDICTIONS --name NAME --why TEXT [--model model.onnx]`: a run whose
//! holdout predictions were made elsewhere (a notebook, another team's pipeline). The file is
//! checked as a command learner's output is (docs/learner-protocol.md: `row_id`, one column per
//! class or `prediction`; every holdout row of the version exactly once), then recorded through
//! `train`'s path, so the run diffs, gates and promotes like any other.

use crate::command_learner::{self, feature_specs};
use crate::external_model::{ExternalInfo, ExternalModel, Origin};
use crate::table_view::LoadedVersion;
use crate::train::{TrainReport, TrainRequest};
use crate::{App, AppError};
use gyre_core::ContentHash;
use gyre_learn::{LearnError, Learner, Model, Progress, SeedEffect, TrainSet};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What `gyre runs import` was asked.
#[derive(Clone, Debug)]
pub struct ImportRunRequest {
    pub predictions: PathBuf,
    pub name: String,
    pub why: String,
    pub model: Option<PathBuf>,
    pub dataset: Option<String>,
    pub version: Option<String>,
}

/// Where an imported run came from, kept with the run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImportedFrom {
    /// The name given with `--name`.
    pub name: String,
    /// The predictions file as given, and the SHA-256 of its bytes.
    pub predictions: String,
    pub predictions_sha256: String,
    /// The ONNX model given with `--model`, and the SHA-256 of its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
}

impl App {
    /// Checks and records predictions made elsewhere as a run of the version (default: latest).
    pub fn import_run(&mut self, req: &ImportRunRequest) -> Result<TrainReport, AppError> {
        crate::require_why(Some(&req.why), "importing a run", None)?;
        if req.name.trim().is_empty() {
            return Err(AppError::invalid("--name must not be empty"));
        }
        let train = TrainRequest {
            dataset: req.dataset.clone(),
            version: req.version.clone(),
            learner: "imported".into(),
            params: Vec::new(),
            seed: 0,
            seeds: 1,
        };
        self.train_from(
            &train,
            crate::train::Source::Import(req),
            &gyre_learn::NoProgress,
        )
    }
}

/// A "learner" that fits nothing: its predictions are the file's, checked against the rows asked.
struct Imported {
    predictions: PathBuf,
    bytes_hash: String,
    onnx: Option<Vec<u8>>,
    row_ids: Vec<u64>,
    schema: gyre_core::DatasetSchema,
    name: String,
}

/// The learner that records `req`'s file for `loaded`, and what the run keeps of where it came from.
pub(crate) fn imported_learner(
    req: &ImportRunRequest,
    loaded: &LoadedVersion,
) -> Result<(Box<dyn Learner>, ImportedFrom), AppError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| AppError::from(gyre_store::StoreError::io(p, e)))
    };
    let bytes = read(&req.predictions)?;
    let predictions_sha256 = ContentHash::of(&bytes).to_string();
    let onnx = match &req.model {
        Some(m) => {
            let b = read(m)?;
            if b.is_empty() {
                return Err(AppError::invalid(format!("{} is empty", m.display())));
            }
            Some(b)
        }
        None => None,
    };
    let from = ImportedFrom {
        name: req.name.trim().to_string(),
        predictions: req.predictions.display().to_string(),
        predictions_sha256: predictions_sha256.clone(),
        model: req.model.as_ref().map(|m| m.display().to_string()),
        model_sha256: onnx.as_ref().map(|b| ContentHash::of(b).to_string()),
    };
    Ok((
        Box::new(Imported {
            predictions: req.predictions.clone(),
            bytes_hash: predictions_sha256,
            onnx,
            row_ids: loaded.row_ids().to_vec(),
            schema: loaded.schema.clone(),
            name: from.name.clone(),
        }),
        from,
    ))
}

impl Learner for Imported {
    fn name(&self) -> &'static str {
        "imported"
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name })
    }

    fn seed_effect(&self) -> SeedEffect {
        SeedEffect::Nothing {
            advice: "an imported run's predictions are given, not fitted",
        }
    }

    fn fit(
        &self,
        task: gyre_learn::Task,
        data: &TrainSet<'_>,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, LearnError> {
        Ok(self.fit_predict(task, data, seed, &[], progress)?.0)
    }

    fn fit_predict(
        &self,
        task: gyre_learn::Task,
        data: &TrainSet<'_>,
        _seed: u64,
        predict: &[u32],
        _progress: &dyn Progress,
    ) -> Result<(Box<dyn Model>, Vec<f64>), LearnError> {
        let scores = command_learner::read_predictions(
            &self.predictions,
            task,
            &self.schema.classes,
            predict.len(),
            &|i| self.row_ids[predict[i] as usize],
        )
        .map_err(|e| {
            LearnError::External(format!(
                "{e}\n(the holdout rows of the version, by their row_id, are what an import \
                 predicts; `gyre runs import --help` says how to get them)"
            ))
        })?;
        let features = feature_specs(data.features, &self.schema).map_err(LearnError::External)?;
        let model = ExternalModel::new(
            ExternalInfo {
                origin: Origin::Imported {
                    file: self.predictions.display().to_string(),
                    sha256: self.bytes_hash.clone(),
                },
                task,
                classes: self.schema.classes.clone(),
                features,
            },
            self.onnx.clone(),
        );
        Ok((Box::new(model), scores))
    }
}

/// What `gyre runs holdout` wrote.
#[derive(Serialize)]
pub struct HoldoutReport {
    pub dataset: String,
    pub version: String,
    pub out: PathBuf,
    pub rows: usize,
    pub features: usize,
}

impl App {
    /// Writes a version's holdout rows (`row_id`, then the features as a command learner reads
    /// them) to a Parquet file: the rows an imported run predicts.
    pub fn write_holdout(
        &mut self,
        dataset: Option<&str>,
        version: Option<&str>,
        out: &std::path::Path,
    ) -> Result<HoldoutReport, AppError> {
        if out.extension().and_then(|e| e.to_str()) != Some("parquet") {
            return Err(AppError::invalid(format!(
                "{}: the holdout rows are written as Parquet; name the file .parquet",
                out.display()
            )));
        }
        let dataset = self.resolve_dataset(dataset)?;
        let loaded = self.load_version(&dataset, version)?;
        let features = loaded.features();
        let specs = feature_specs(&features, &loaded.schema).map_err(AppError::invalid)?;
        let holdout: Vec<u32> = (0..loaded.splits().len() as u32)
            .filter(|&r| loaded.splits()[r as usize] == gyre_core::Split::Holdout)
            .collect();
        let ids = loaded.row_ids();
        let mut columns: Vec<(arrow_schema::Field, arrow_array::ArrayRef)> = vec![(
            arrow_schema::Field::new("row_id", arrow_schema::DataType::UInt64, false),
            std::sync::Arc::new(arrow_array::UInt64Array::from_iter_values(
                holdout.iter().map(|&r| ids[r as usize]),
            )),
        )];
        for (c, s) in features.columns.iter().zip(&specs) {
            let a = command_learner::feature_array(c, s, &holdout);
            columns.push((
                arrow_schema::Field::new(&s.name, a.data_type().clone(), true),
                a,
            ));
        }
        // Written beside the target and renamed, so the file is whole or absent.
        let tmp = out.with_extension("parquet.tmp");
        command_learner::write_parquet(&tmp, columns).map_err(AppError::invalid)?;
        std::fs::rename(&tmp, out)
            .map_err(|e| AppError::from(gyre_store::StoreError::io(out, e)))?;
        Ok(HoldoutReport {
            dataset,
            version: loaded.version.clone(),
            out: out.to_path_buf(),
            rows: holdout.len(),
            features: specs.len(),
        })
    }
}
