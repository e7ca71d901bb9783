//! Suites: named evaluation sets over holdout rows (a predicate or listed rows), with optional
//! requirements (`accuracy>=0.85`). Every run is scored on every suite from its stored
//! predictions, including suites added after the run: no retraining.

use crate::predictions::{self, Predictions};
use crate::table_view::LoadedVersion;
use crate::{App, AppError, now};
use gyre_core::{ContentHash, DatasetName, Predicate, Task, closest};
use gyre_eval::metrics::{self, Metrics, Scores};
use gyre_store::{NewJournalEntry, RunRecord, StoreError, SuiteRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const HOLDOUT: &str = "holdout";

/// `METRIC >= VALUE` and friends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Requirement {
    pub metric: String,
    pub op: String,
    pub value: f64,
}

impl Requirement {
    pub fn parse(text: &str, task: Task) -> Result<Requirement, AppError> {
        let t = text.replace(' ', "");
        let (metric, op, value) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| {
                t.split_once(op)
                    .map(|(m, v)| (m.to_string(), op.to_string(), v.to_string()))
            })
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "requirement \"{text}\" is not METRIC>=VALUE (or <=, >, <), e.g. accuracy>=0.85"
                ))
            })?;
        let valid = metrics::metric_names(task);
        if !valid.contains(&metric.as_str()) {
            return Err(AppError::Invalid {
                message: format!(
                    "unknown metric \"{metric}\" in requirement \"{text}\"; valid for {task}: {}",
                    valid.join(", ")
                ),
                hint: closest(&metric, valid.iter().copied()).map(|s| format!("did you mean {s}?")),
            });
        }
        let value: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "requirement \"{text}\": \"{value}\" is not a number"
                ))
            })?;
        Ok(Requirement { metric, op, value })
    }

    pub fn holds(&self, actual: f64) -> bool {
        match self.op.as_str() {
            ">=" => actual >= self.value,
            "<=" => actual <= self.value,
            ">" => actual > self.value,
            _ => actual < self.value,
        }
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.metric, self.op, self.value)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<Predicate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<u64>>,
    #[serde(default)]
    pub requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Suite {
    pub name: String,
    pub dataset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<u64>>,
    pub requirements: Vec<String>,
    pub created_at: String,
    pub author: String,
    #[serde(skip)]
    pub definition: SuiteDefinition,
}

#[derive(Serialize)]
pub struct SuitesReport {
    pub suites: Vec<Suite>,
}

/// One suite's result for one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteResult {
    pub name: String,
    pub passed: bool,
    pub rows: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// A run's stored predictions on one suite, with the version they came from.
pub(crate) struct ScoredRun {
    pub run: String,
    pub suite: String,
    pub task: Task,
    pub classes: usize,
    pub loaded: LoadedVersion,
    /// Indices into `loaded.data.batch` of the suite's rows, in prediction order.
    pub table_rows: Vec<usize>,
    pub labels: Vec<f64>,
    pub scores: Vec<f64>,
}

impl App {
    pub fn suite_add(
        &mut self,
        name: &str,
        predicate: Option<&str>,
        rows: Option<&[String]>,
        requirements: &[String],
        dataset: Option<&str>,
    ) -> Result<Suite, AppError> {
        if name == HOLDOUT {
            return Err(AppError::invalid(
                "\"holdout\" always exists; choose another name",
            ));
        }
        DatasetName::parse(name)
            .map_err(|e| AppError::invalid(e.replace("dataset name", "suite name")))?;
        if self
            .store
            .read(|tx| tx.suites())?
            .iter()
            .any(|s| s.name == name)
        {
            return Err(AppError::invalid(format!(
                "suite \"{name}\" already exists"
            )));
        }
        let dataset = self.resolve_dataset(dataset)?;
        let loaded = self.load_version(&dataset, None)?;
        let predicate = predicate
            .map(|p| {
                Predicate::parse_checked(p, &loaded.schema).map_err(|e| AppError::Invalid {
                    message: format!("--where: {e}"),
                    hint: e.hint(),
                })
            })
            .transpose()?;
        let rows = rows
            .map(|r| self.resolve_rows(&loaded.data, &loaded.schema, r))
            .transpose()?;
        if predicate.is_none() && rows.is_none() {
            return Err(AppError::invalid(
                "a suite needs --where PRED or --rows IDS",
            ));
        }
        let requirements = requirements
            .iter()
            .map(|r| Requirement::parse(r, loaded.schema.task))
            .collect::<Result<Vec<_>, _>>()?;
        let definition = SuiteDefinition {
            predicate,
            rows,
            requirements,
        };
        let time = now();
        let record = SuiteRecord {
            name: name.to_string(),
            dataset: dataset.clone(),
            definition: serde_json::to_string(&definition).expect("suites serialize"),
            created_at: time.clone(),
            author: self.user.clone(),
        };
        let (user, command) = (self.user.clone(), self.command.clone());
        self.store.write(|tx| {
            tx.insert_suite(&record)?;
            tx.append_journal(&NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why: None,
                objects: &[format!("suite:{name}")],
            })
        })?;
        suite_of(&record)
    }

    pub fn suites(&mut self) -> Result<SuitesReport, AppError> {
        let records = self.store.read(|tx| tx.suites())?;
        Ok(SuitesReport {
            suites: records.iter().map(suite_of).collect::<Result<_, _>>()?,
        })
    }

    pub(crate) fn suite_named(&mut self, name: &str) -> Result<Option<Suite>, AppError> {
        if name == HOLDOUT {
            return Ok(None);
        }
        let records = self.store.read(|tx| tx.suites())?;
        match records.iter().find(|r| r.name == name) {
            Some(r) => Ok(Some(suite_of(r)?)),
            None => {
                let mut names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
                names.push(HOLDOUT);
                Err(AppError::NotFound {
                    what: "suite",
                    name: name.to_string(),
                    suggestion: closest(name, names).map(String::from),
                })
            }
        }
    }

    /// A run's predictions and its version, restricted to a suite's rows (`suite` is None for
    /// the whole holdout); the caller has resolved both.
    pub(crate) fn scored_run(
        &mut self,
        record: &RunRecord,
        suite_name: &str,
        suite: Option<&Suite>,
    ) -> Result<ScoredRun, AppError> {
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let preds = self.run_predictions(record, &loaded)?;
        let keep = suite_mask(suite, &loaded, &preds.row_ids);
        let ids = gyre_data::table::row_ids(&loaded.data.batch);
        let k = outputs(loaded.schema.task, loaded.schema.classes.len());
        let mut table_rows = Vec::new();
        let mut labels = Vec::new();
        let mut scores = Vec::new();
        for (i, &id) in preds.row_ids.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let r = ids.binary_search(&id).map_err(|_| {
                StoreError::Corrupt(format!(
                    "run {} predicts row {id}, which is not in its version",
                    record.id
                ))
            })?;
            table_rows.push(r);
            labels.push(preds.labels[i]);
            scores.extend_from_slice(&preds.scores[i * k..(i + 1) * k]);
        }
        Ok(ScoredRun {
            run: record.id.clone(),
            suite: suite_name.to_string(),
            task: loaded.schema.task,
            classes: loaded.schema.classes.len(),
            loaded,
            table_rows,
            labels,
            scores,
        })
    }

    pub(crate) fn run_predictions(
        &mut self,
        record: &RunRecord,
        loaded: &LoadedVersion,
    ) -> Result<Predictions, AppError> {
        self.read_run_predictions(record, loaded, true)
    }

    /// A run's stored row ids and scores, without its stored labels (`labels` is empty).
    pub(crate) fn run_scores(
        &mut self,
        record: &RunRecord,
        loaded: &LoadedVersion,
    ) -> Result<Predictions, AppError> {
        self.read_run_predictions(record, loaded, false)
    }

    fn read_run_predictions(
        &mut self,
        record: &RunRecord,
        loaded: &LoadedVersion,
        labels: bool,
    ) -> Result<Predictions, AppError> {
        let object = ContentHash::parse(&record.predictions).ok_or_else(|| {
            StoreError::Corrupt(format!("bad predictions id in run {}", record.id))
        })?;
        let bytes = self.store.objects().get_mapped(&object)?;
        predictions::read(bytes, &loaded.schema, labels)
    }

    /// Every suite's metrics and requirement checks for a run (holdout first).
    pub(crate) fn evaluate_suites(
        &mut self,
        record: &RunRecord,
    ) -> Result<(BTreeMap<String, Metrics>, Vec<SuiteResult>), AppError> {
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let preds = self.run_predictions(record, &loaded)?;
        self.evaluate_suites_of(record, &loaded, &preds, None)
    }

    /// [`Self::evaluate_suites`] with the run's version and predictions at hand (train has both,
    /// and the holdout's metrics too: `holdout`, the metrics of every row of `preds`).
    pub(crate) fn evaluate_suites_of(
        &mut self,
        record: &RunRecord,
        loaded: &LoadedVersion,
        preds: &Predictions,
        holdout: Option<&Metrics>,
    ) -> Result<(BTreeMap<String, Metrics>, Vec<SuiteResult>), AppError> {
        let mut suites: Vec<Option<Suite>> = vec![None];
        for s in self.suites()?.suites {
            if s.dataset == record.dataset {
                suites.push(Some(s));
            }
        }
        let task = loaded.schema.task;
        let k = outputs(task, loaded.schema.classes.len());
        let mut all = BTreeMap::new();
        let mut results = Vec::new();
        for s in &suites {
            let name = s.as_ref().map_or(HOLDOUT.to_string(), |s| s.name.clone());
            if let (None, Some(m)) = (s, holdout) {
                all.insert(name.clone(), m.clone());
                results.push(SuiteResult {
                    name,
                    passed: true,
                    rows: preds.labels.len(),
                    failures: Vec::new(),
                });
                continue;
            }
            let keep = suite_mask(s.as_ref(), loaded, &preds.row_ids);
            let mut labels = Vec::new();
            let mut scores = Vec::new();
            for (i, &m) in keep.iter().enumerate() {
                if m {
                    labels.push(preds.labels[i]);
                    scores.extend_from_slice(&preds.scores[i * k..(i + 1) * k]);
                }
            }
            let m = metrics::metrics_for(
                loaded.schema.positive_index(),
                &Scores {
                    task,
                    classes: loaded.schema.classes.len(),
                    labels: &labels,
                    scores: &scores,
                    weights: None,
                },
            );
            let mut failures = Vec::new();
            if let Some(s) = s {
                for r in &s.definition.requirements {
                    match m.get(&r.metric) {
                        Some(&v) if r.holds(v) => {}
                        Some(&v) => failures.push(format!("{r} (got {v:.4})")),
                        None => {
                            failures.push(format!("{r} (not defined on {} rows)", labels.len()))
                        }
                    }
                }
            }
            results.push(SuiteResult {
                name: name.clone(),
                passed: failures.is_empty(),
                rows: labels.len(),
                failures,
            });
            all.insert(name, m);
        }
        Ok((all, results))
    }
}

pub(crate) fn outputs(task: Task, classes: usize) -> usize {
    if task == Task::Multiclass { classes } else { 1 }
}

/// The values of the rows `mask` keeps (a suite's, say), `width` values per row.
pub(crate) fn masked(mask: &[bool], v: &[f64], width: usize) -> Vec<f64> {
    mask.iter()
        .enumerate()
        .filter(|(_, m)| **m)
        .flat_map(|(j, _)| v[j * width..(j + 1) * width].iter().copied())
        .collect()
}

/// Which predicted rows belong to a suite (all of them for holdout).
pub(crate) fn suite_mask(
    suite: Option<&Suite>,
    loaded: &LoadedVersion,
    row_ids: &[u64],
) -> Vec<bool> {
    let Some(s) = suite else {
        return vec![true; row_ids.len()];
    };
    if let Some(rows) = &s.definition.rows {
        return row_ids
            .iter()
            .map(|id| rows.binary_search(id).is_ok())
            .collect();
    }
    let p = s
        .definition
        .predicate
        .as_ref()
        .expect("a suite has rows or a predicate");
    // The predicate is evaluated on the predicted rows the table still has, not on all of it.
    let ids = gyre_data::table::row_ids(&loaded.data.batch);
    let found: Vec<Option<usize>> = row_ids
        .iter()
        .map(|id| ids.binary_search(id).ok())
        .collect();
    let table_rows: Vec<usize> = found.iter().flatten().copied().collect();
    let mut matches = loaded.data.matching_rows(p, &table_rows).into_iter();
    found
        .iter()
        .map(|r| r.is_some() && matches.next().expect("one answer per row found"))
        .collect()
}

pub(crate) fn suite_of(r: &SuiteRecord) -> Result<Suite, AppError> {
    let definition: SuiteDefinition = serde_json::from_str(&r.definition)
        .map_err(|e| StoreError::Corrupt(format!("suite {}: {e}", r.name)))?;
    Ok(Suite {
        name: r.name.clone(),
        dataset: r.dataset.clone(),
        predicate: definition.predicate.as_ref().map(|p| p.to_string()),
        rows: definition.rows.clone(),
        requirements: definition
            .requirements
            .iter()
            .map(|q| q.to_string())
            .collect(),
        created_at: r.created_at.clone(),
        author: r.author.clone(),
        definition,
    })
}
