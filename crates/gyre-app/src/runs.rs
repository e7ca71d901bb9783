//! `gyre runs` and `gyre show`: naming runs by id prefix, `latest`, listing them, and one run
//! with its features' importance.

use crate::explain::Importance;
use crate::train::{RunReport, run_report};
use crate::{App, AppError};
use gyre_store::RunRecord;
use serde::Serialize;

#[derive(Serialize)]
pub struct RunsReport {
    pub runs: Vec<RunReport>,
}

/// `gyre show RUN`: the run and its features' global importance.
#[derive(Serialize)]
pub struct ShowReport {
    #[serde(flatten)]
    pub run: RunReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub importance: Option<Importance>,
    /// Why there is no importance (a learner or a saved model without contributions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub importance_note: Option<String>,
    /// A command learner's or imported run's model: whether there is an ONNX file to serve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_model: Option<ExternalModelNote>,
}

/// What `gyre show` says of a model gyre did not fit.
#[derive(Serialize)]
pub struct ExternalModelNote {
    /// Bytes of its ONNX file; 0 when it has none.
    pub onnx_bytes: usize,
    pub note: String,
}

impl App {
    /// A run by alias (`champion`), `latest`, or unique id prefix.
    pub(crate) fn resolve_run(&mut self, name: &str) -> Result<RunRecord, AppError> {
        if let Some(id) = self.alias_target(name)? {
            let mut m = self.store.read(|tx| tx.runs_with_prefix(&id))?;
            if let Some(r) = m.pop() {
                return Ok(r);
            }
        }
        if name == crate::ship::CHAMPION {
            return Err(AppError::Invalid {
                message: "there is no champion yet".into(),
                hint: Some("promote a run: gyre promote RUN --why TEXT".into()),
            });
        }
        if name == "latest" {
            return self
                .store
                .read(|tx| tx.latest_run())?
                .ok_or_else(|| AppError::Invalid {
                    message: "there are no runs yet".into(),
                    hint: Some("train one: gyre train".into()),
                });
        }
        let mut matches = self.store.read(|tx| tx.runs_with_prefix(name))?;
        match matches.len() {
            1 => Ok(matches.pop().expect("one match")),
            0 => {
                let all = self.store.read(|tx| tx.runs())?;
                let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
                Err(AppError::NotFound {
                    what: "run",
                    name: name.to_string(),
                    suggestion: gyre_core::closest(name, ids).map(String::from),
                })
            }
            n => Err(AppError::invalid(format!(
                "run prefix \"{name}\" matches {n} runs; give more characters"
            ))),
        }
    }

    pub fn runs(&mut self) -> Result<RunsReport, AppError> {
        let runs = self.store.read(|tx| tx.runs())?;
        Ok(RunsReport {
            runs: runs.iter().map(run_report).collect::<Result<_, _>>()?,
        })
    }

    /// `gyre show RUN`: the run's report with its features' global importance.
    pub fn show(&mut self, run: &str) -> Result<ShowReport, AppError> {
        let r = self.resolve_run(run)?;
        let report = self.run_report_with_suites(&r)?;
        let (importance, importance_note) = match self.importance(&r) {
            Ok(i) => (Some(i), None),
            Err(AppError::Learn(e @ gyre_learn::LearnError::NoContributions { .. })) => {
                (None, Some(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        let object = gyre_core::ContentHash::parse(&r.model).ok_or_else(|| {
            gyre_store::StoreError::Corrupt(format!("bad model id in run {}", r.id))
        })?;
        let bytes = self.store.objects().get(&object)?;
        let external_model = if crate::external_model::is_external(&bytes) {
            let m = crate::external_model::load_external(&bytes)?;
            let n = m.onnx.as_ref().map_or(0, |o| o.len());
            Some(ExternalModelNote {
                onnx_bytes: n,
                note: if n > 0 {
                    format!(
                        "an ONNX model of {n} bytes: gyre serve runs it in onnxruntime once \
                         promote has checked it reproduces the run"
                    )
                } else {
                    "no ONNX model: the run can be compared and gated, not served".to_string()
                },
            })
        } else {
            None
        };
        Ok(ShowReport {
            run: report,
            importance,
            importance_note,
            external_model,
        })
    }
}
