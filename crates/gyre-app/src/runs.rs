//! `gyre runs` and `gyre show`: naming runs by id prefix, `latest`, listing them, and one run
//! with its features' importance.

use crate::explain::Importance;
use crate::train::{RunReport, run_report};
use crate::{App, AppError};
use gyre_store::{CompareOp, RunField, RunFilter, RunRecord, RunsQuery};
use serde::Serialize;

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

/// `gyre runs --sort ... --where ...` and the UI's runs table: one page of the runs that match.
#[derive(Serialize)]
pub struct RunsPageReport {
    pub runs: Vec<RunReport>,
    /// Runs that match the filters, in all.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// Most runs one page may hold.
pub const MAX_PAGE: usize = 1000;

/// A sort or filter field by name: `created`, `id`, `dataset`, `version`, `learner`, `seed`,
/// `who` (or `created_by`), `metrics.NAME` / `params.NAME`, or a bare name: a holdout metric
/// when gyre knows it as one, else a param.
pub fn run_field(name: &str) -> Result<RunField, AppError> {
    let name = name.trim();
    let field = match name {
        "created" | "created_at" | "when" => RunField::Created,
        "id" | "run" => RunField::Id,
        "dataset" => RunField::Dataset,
        "version" => RunField::Version,
        "learner" => RunField::Learner,
        "seed" => RunField::Seed,
        "who" | "created_by" => RunField::CreatedBy,
        _ => {
            if let Some(m) = name.strip_prefix("metrics.") {
                RunField::Metric(m.to_string())
            } else if let Some(p) = name.strip_prefix("params.") {
                RunField::Param(p.to_string())
            } else if is_metric(name) {
                RunField::Metric(name.to_string())
            } else {
                RunField::Param(name.to_string())
            }
        }
    };
    if let RunField::Metric(n) | RunField::Param(n) = &field
        && !gyre_store::is_identifier(n)
    {
        return Err(AppError::Invalid {
            message: format!("\"{name}\" is not a field of a run"),
            hint: Some(
                "fields: created, id, dataset, version, learner, seed, who, a metric (auc, metrics.NAME) or a param (num_leaves, params.NAME)".into(),
            ),
        });
    }
    Ok(field)
}

fn is_metric(name: &str) -> bool {
    [
        gyre_core::Task::Binary,
        gyre_core::Task::Multiclass,
        gyre_core::Task::Regression,
    ]
    .iter()
    .any(|&t| gyre_eval::metrics::metric_names(t).contains(&name))
        || name == "average_precision"
        || name == "precision"
        || name == "recall"
}

/// Filters as text: conditions joined by `AND` or commas, each `FIELD OP VALUE` with OP one of
/// `= != < <= > >= ~` (`~` contains). `auc >= 0.92, learner = gbdt`.
pub fn parse_run_filters(text: &str) -> Result<Vec<RunFilter>, AppError> {
    let mut out = Vec::new();
    let normalized = text.replace(" AND ", ",").replace(" and ", ",");
    for (i, cond) in normalized.split(',').enumerate() {
        let cond = cond.trim();
        if cond.is_empty() {
            continue;
        }
        // Two-character operators first.
        let ops = [
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("!=", CompareOp::Ne),
            ("<>", CompareOp::Ne),
            ("=", CompareOp::Eq),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
            ("~", CompareOp::Contains),
        ];
        let Some((at, sym, op)) = ops
            .iter()
            .filter_map(|(sym, op)| cond.find(sym).map(|at| (at, *sym, *op)))
            .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))
        else {
            return Err(AppError::Invalid {
                message: format!("condition {} \"{cond}\" has no operator", i + 1),
                hint: Some("write FIELD OP VALUE, e.g. auc >= 0.92 or learner = gbdt (OP: = != < <= > >= ~)".into()),
            });
        };
        let field = run_field(&cond[..at])?;
        let value = cond[at + sym.len()..]
            .trim()
            .trim_matches(|c| c == '\'' || c == '"')
            .to_string();
        if value.is_empty() {
            return Err(AppError::invalid(format!(
                "condition {} \"{cond}\" has no value after {sym}",
                i + 1
            )));
        }
        out.push(RunFilter { field, op, value });
    }
    Ok(out)
}

impl App {
    /// One page of runs, sorted and filtered by the store (never every run in memory).
    pub fn runs_page(&mut self, query: &RunsQuery) -> Result<RunsPageReport, AppError> {
        let mut q = query.clone();
        q.limit = q.limit.clamp(1, MAX_PAGE);
        let page = self.store.read(|tx| tx.runs_page(&q))?;
        Ok(RunsPageReport {
            runs: page.runs.iter().map(run_report).collect::<Result<_, _>>()?,
            total: page.total,
            offset: q.offset,
            limit: q.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_fields_operators_and_values() {
        let f = parse_run_filters("auc >= 0.92, learner = 'gbdt' AND num_leaves != 31").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].field, RunField::Metric("auc".into()));
        assert_eq!(f[0].op, CompareOp::Ge);
        assert_eq!(f[0].value, "0.92");
        assert_eq!(f[1].field, RunField::Learner);
        assert_eq!(f[1].value, "gbdt");
        assert_eq!(f[2].field, RunField::Param("num_leaves".into()));
        assert_eq!(f[2].op, CompareOp::Ne);
        let err = parse_run_filters("auc 0.9").unwrap_err().to_string();
        assert!(err.contains("no operator"), "{err}");
        let err = parse_run_filters("x') OR 1=1 -- = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a field of a run"), "{err}");
    }
}

/// What a view needs to know of a run without evaluating it: its id, dataset and classes.
#[derive(Serialize)]
pub struct RunBrief {
    pub run: String,
    pub dataset: String,
    pub task: gyre_core::Task,
    pub classes: Vec<String>,
}

impl App {
    pub fn run_brief(&mut self, run: &str) -> Result<RunBrief, AppError> {
        let r = self.resolve_run(run)?;
        let schema = self.dataset_record(&r.dataset)?;
        Ok(RunBrief {
            run: r.id,
            dataset: r.dataset,
            task: schema.task,
            classes: schema.classes,
        })
    }
}
