//! Findings: failures worth a decision. Every `gyre train` turns its worst holdout slices and its
//! failed suite requirements into findings, `gyre label-issues` its suspects; the team accepts one
//! (lets it slide, with a reason) or starts fixing it (the next edits are linked to it). A later
//! run that no longer shows the failure marks it fixed, naming that run. A slice finding is one
//! group of rows: its other descriptions (`also`) open no findings of their own.

use crate::slicing::SliceRow;
use crate::suites::{ScoredRun, SuiteResult};
use crate::{App, AppError, now};
use gyre_core::Predicate;
use gyre_store::{FindingEvent, FindingRecord, NewJournalEntry, RunRecord};
use serde::{Deserialize, Serialize};

/// A slice becomes a finding when its error is at least this many times the average.
pub const SLICE_RATIO: f64 = 2.0;
/// How many other descriptions of a slice finding's rows it keeps (the best; `gyre slices` lists
/// them all).
const ALSO_KEPT: usize = 5;
/// A label-issues finding is fixed when fewer than this share of its rows are still suspected.
const STILL_SUSPECT: f64 = 0.2;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FindingDetail {
    Slice {
        dataset: String,
        predicate: String,
        size: usize,
        error: f64,
        error_ratio: f64,
        /// Other descriptions of (mostly) the same rows.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<String>,
    },
    Suite {
        dataset: String,
        suite: String,
        failures: Vec<String>,
    },
    LabelIssues {
        dataset: String,
        version: String,
        rows: Vec<u64>,
    },
    /// Evaluated rows with values the training rows never had (see `skew`).
    Skew {
        dataset: String,
        /// Found by `gyre monitor` in served rows (else by `gyre train` in holdout rows).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        served: bool,
        #[serde(flatten)]
        skew: crate::skew::Skew,
    },
    /// A feature that alone predicts the label almost perfectly on the training rows.
    Leak {
        dataset: String,
        #[serde(flatten)]
        leak: crate::skew::Leak,
    },
    /// Served inputs of a feature drifted from the champion's training rows (`gyre monitor`).
    Drift {
        dataset: String,
        feature: String,
        psi: f64,
        method: String,
        distance: f64,
    },
}

/// What a run's data checks found: skew between training and evaluated rows, and leaks.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DataChecks {
    pub skew: Vec<crate::skew::Skew>,
    pub leaks: Vec<crate::skew::Leak>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub id: i64,
    pub kind: String,
    pub title: String,
    /// open, accepted, fixing or fixed.
    pub state: String,
    /// The run that found it.
    pub run: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_by: Option<String>,
    /// Edits made while it was being fixed.
    pub edits: Vec<i64>,
    pub detail: serde_json::Value,
    pub history: Vec<FindingEvent>,
}

#[derive(Serialize)]
pub struct FindingsReport {
    pub findings: Vec<Finding>,
}

/// What a run changed among findings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FindingChanges {
    pub new: Vec<i64>,
    pub fixed: Vec<i64>,
}

impl App {
    pub fn findings(&mut self) -> Result<FindingsReport, AppError> {
        let records = self.store.read(|tx| tx.findings())?;
        // Each finding's events, in their order: grouped once (a scan of every event per finding
        // grew with the square of a project's history).
        let mut events: rustc_hash::FxHashMap<i64, Vec<FindingEvent>> = Default::default();
        for e in self.store.read(|tx| tx.finding_events())? {
            events.entry(e.finding).or_default().push(e);
        }
        let findings = records
            .into_iter()
            .map(|r| {
                let history: Vec<FindingEvent> = events.remove(&r.id).unwrap_or_default();
                let state = history
                    .iter()
                    .rev()
                    .find(|e| e.state != "edit")
                    .map_or("open".to_string(), |e| e.state.clone());
                let fixed_by = history
                    .iter()
                    .rev()
                    .find(|e| e.state == "fixed")
                    .and_then(|e| e.run.clone());
                Finding {
                    id: r.id,
                    kind: r.kind,
                    title: r.title,
                    state,
                    run: r.run,
                    created_at: r.created_at,
                    fixed_by,
                    edits: history.iter().filter_map(|e| e.edit).collect(),
                    detail: serde_json::from_str(&r.detail).unwrap_or_default(),
                    history,
                }
            })
            .collect();
        Ok(FindingsReport { findings })
    }

    /// `accept` (let it slide) or `fix` (start fixing; the next edits are linked).
    pub fn finding_decide(
        &mut self,
        id: i64,
        decision: &str,
        why: Option<&str>,
    ) -> Result<Finding, AppError> {
        let why = crate::require_why(why, "a decision on a finding", None)?;
        let state = match decision {
            "accept" => "accepted",
            "fix" => "fixing",
            other => return Err(AppError::invalid(format!("unknown decision {other}"))),
        };
        // The finding's last change as this decision sees it: read before its state, and
        // checked again under the write lock below.
        let last_event =
            |events: Vec<FindingEvent>| events.into_iter().rev().find(|e| e.finding == id);
        let seen = self
            .store
            .read(|tx| tx.finding_events())
            .map(last_event)?
            .map(|e| e.seq);
        let current = self
            .findings()?
            .findings
            .into_iter()
            .find(|f| f.id == id)
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "finding #{id} does not exist (gyre findings lists them)"
                ))
            })?;
        if current.state == "fixed" {
            return Err(AppError::invalid(format!(
                "finding #{id} is already fixed (by run {})",
                current.fixed_by.unwrap_or_default()
            )));
        }
        if current.state == state {
            return Err(AppError::invalid(format!(
                "finding #{id} is already {state}"
            )));
        }
        let time = now();
        let (user, command) = (self.user.clone(), self.command.clone());
        self.store.write(|tx| {
            // Compare-and-set: a decision made meanwhile by someone else stands, and this one
            // is refused, naming it.
            if let Some(other) = last_event(tx.finding_events()?)
                && Some(other.seq) != seen
            {
                return Err(AppError::Invalid {
                    message: format!(
                        "finding #{id} changed while this decision was made: {} set it {} at {}{}; \
                         nothing changed",
                        other.who,
                        other.state,
                        other.time,
                        other.why.map(|w| format!(" ({w})")).unwrap_or_default()
                    ),
                    hint: Some(format!("look at gyre finding {id}, then decide again")),
                });
            }
            tx.insert_finding_event(&FindingEvent {
                seq: 0,
                finding: id,
                state: state.into(),
                why: Some(why.into()),
                who: user.clone(),
                time: time.clone(),
                run: None,
                edit: None,
            })?;
            tx.append_journal(&NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why: Some(why),
                objects: &[format!("finding:{id}")],
            })?;
            Ok::<_, AppError>(())
        })?;
        Ok(self
            .findings()?
            .findings
            .into_iter()
            .find(|f| f.id == id)
            .expect("exists"))
    }

    /// The findings being fixed, which the next edit is linked to ([`link_edit`]).
    pub(crate) fn fixing_findings(&mut self) -> Result<Vec<i64>, AppError> {
        Ok(self
            .findings()?
            .findings
            .iter()
            .filter(|f| f.state == "fixing")
            .map(|f| f.id)
            .collect())
    }

    /// What a run changes in the findings: its slices and failed suites as new findings, and the
    /// earlier ones it no longer shows, to mark fixed. Written by [`record_findings`], in the
    /// transaction that stores the run.
    pub(crate) fn findings_of_run(
        &mut self,
        run: &RunRecord,
        slices: &[SliceRow],
        suites: &[SuiteResult],
        checks: &DataChecks,
        scored: Option<ScoredRun>,
    ) -> Result<(Vec<FindingRecord>, Vec<i64>), AppError> {
        // Earlier findings not yet fixed: a group of rows already open under one of its
        // descriptions is not opened again under another.
        let open: Vec<Finding> = self
            .findings()?
            .findings
            .into_iter()
            .filter(|f| f.state != "fixed")
            .collect();
        let open_slices: Vec<String> = open
            .iter()
            .filter_map(|f| match serde_json::from_value(f.detail.clone()) {
                Ok(FindingDetail::Slice {
                    dataset, predicate, ..
                }) if dataset == run.dataset => Some(predicate),
                _ => None,
            })
            .collect();
        let mut new_records = Vec::new();
        for s in &checks.skew {
            new_records.push(FindingRecord {
                id: 0,
                kind: "skew".into(),
                key: format!("skew:{}:{}:{}", run.dataset, s.column, s.what),
                title: format!(
                    "skew: {} evaluated rows ({:.1}%) have {}: {}",
                    s.rows,
                    100.0 * s.share,
                    s.describe(),
                    s.predicate
                ),
                detail: serde_json::to_string(&FindingDetail::Skew {
                    dataset: run.dataset.clone(),
                    served: false,
                    skew: s.clone(),
                })
                .expect("serializes"),
                run: run.id.clone(),
                created_at: now(),
            });
        }
        for l in &checks.leaks {
            new_records.push(FindingRecord {
                id: 0,
                kind: "leak".into(),
                key: format!("leak:{}:{}", run.dataset, l.column),
                title: format!(
                    "leak? {} alone predicts the label on the training rows ({} {:.4})",
                    l.column, l.measure, l.value
                ),
                detail: serde_json::to_string(&FindingDetail::Leak {
                    dataset: run.dataset.clone(),
                    leak: l.clone(),
                })
                .expect("serializes"),
                run: run.id.clone(),
                created_at: now(),
            });
        }
        for s in slices.iter().filter(|s| s.error_ratio >= SLICE_RATIO) {
            if s.also.iter().any(|a| open_slices.contains(&a.predicate)) {
                continue;
            }
            new_records.push(FindingRecord {
                id: 0,
                kind: "slice".into(),
                key: format!("slice:{}:{}", run.dataset, s.predicate),
                title: format!("error {:.1}x average where {}", s.error_ratio, s.predicate),
                detail: serde_json::to_string(&FindingDetail::Slice {
                    dataset: run.dataset.clone(),
                    predicate: s.predicate.clone(),
                    size: s.size,
                    error: s.error,
                    error_ratio: s.error_ratio,
                    also: s
                        .also
                        .iter()
                        .take(ALSO_KEPT)
                        .map(|a| a.predicate.clone())
                        .collect(),
                })
                .expect("serializes"),
                run: run.id.clone(),
                created_at: now(),
            });
        }
        for s in suites.iter().filter(|s| !s.passed) {
            new_records.push(FindingRecord {
                id: 0,
                kind: "suite".into(),
                key: format!("suite:{}:{}", run.dataset, s.name),
                title: format!("suite {} fails: {}", s.name, s.failures.join("; ")),
                detail: serde_json::to_string(&FindingDetail::Suite {
                    dataset: run.dataset.clone(),
                    suite: s.name.clone(),
                    failures: s.failures.clone(),
                })
                .expect("serializes"),
                run: run.id.clone(),
                created_at: now(),
            });
        }
        // Which earlier findings this run no longer shows.
        let mut fixed = Vec::new();
        let needs_eval = open.iter().any(|f| f.kind == "slice");
        // The run's holdout scores: as the caller has them, else read back.
        let scored = match (needs_eval, scored) {
            (false, _) => None,
            (true, Some(s)) => Some(s),
            (true, None) => Some(self.scored_run(run, crate::suites::HOLDOUT, None)?),
        };
        // The run's per-example errors and their mean, for every slice finding.
        let errs = scored.as_ref().map(|s| {
            let errs = crate::slicing::errors(s.task, s.classes, &s.labels, &s.scores);
            let avg = errs.iter().sum::<f64>() / errs.len().max(1) as f64;
            (errs, avg)
        });
        for f in &open {
            let Ok(detail) = serde_json::from_value::<FindingDetail>(f.detail.clone()) else {
                continue;
            };
            match detail {
                FindingDetail::Slice {
                    dataset, predicate, ..
                } if dataset == run.dataset => {
                    let scored = scored.as_ref().expect("scored when slice findings exist");
                    let Ok(p) = Predicate::parse_checked(&predicate, &scored.loaded.schema) else {
                        continue;
                    };
                    let (errs, avg) = errs.as_ref().expect("errors when slice findings exist");
                    // Only the scored rows are read (a third of Adult's table for its holdout).
                    let matches = scored.loaded.data.matching_rows(&p, &scored.table_rows);
                    let inside: Vec<f64> = matches
                        .iter()
                        .zip(errs)
                        .filter(|(m, _)| **m)
                        .map(|(_, e)| *e)
                        .collect();
                    let ratio =
                        inside.iter().sum::<f64>() / inside.len().max(1) as f64 / avg.max(1e-12);
                    if !inside.is_empty() && ratio < SLICE_RATIO {
                        fixed.push(f.id);
                    }
                }
                FindingDetail::Suite { dataset, suite, .. }
                    if dataset == run.dataset
                        && suites.iter().any(|s| s.name == suite && s.passed) =>
                {
                    fixed.push(f.id);
                }
                FindingDetail::Skew {
                    dataset,
                    served: false,
                    skew,
                } if dataset == run.dataset
                    && !checks
                        .skew
                        .iter()
                        .any(|s| s.column == skew.column && s.what == skew.what) =>
                {
                    fixed.push(f.id);
                }
                FindingDetail::Leak { dataset, leak }
                    if dataset == run.dataset
                        && !checks.leaks.iter().any(|l| l.column == leak.column) =>
                {
                    fixed.push(f.id);
                }
                _ => {}
            }
        }
        Ok((new_records, fixed))
    }

    /// Records a label-issues result as a finding; marks earlier ones mostly resolved as fixed.
    pub(crate) fn findings_after_label_issues(
        &mut self,
        run: &RunRecord,
        flagged_rows: &[u64],
    ) -> Result<FindingChanges, AppError> {
        let mut fixed = Vec::new();
        for f in self
            .findings()?
            .findings
            .into_iter()
            .filter(|f| f.state != "fixed")
        {
            if let Ok(FindingDetail::LabelIssues {
                dataset,
                version,
                rows,
            }) = serde_json::from_value::<FindingDetail>(f.detail.clone())
                && dataset == run.dataset
                && version != run.version
            {
                let still = rows
                    .iter()
                    .filter(|r| flagged_rows.binary_search(r).is_ok())
                    .count();
                if (still as f64) < STILL_SUSPECT * rows.len() as f64 {
                    fixed.push(f.id);
                }
            }
        }
        let mut records = Vec::new();
        if !flagged_rows.is_empty() {
            records.push(FindingRecord {
                id: 0,
                kind: "label-issues".into(),
                key: format!("label-issues:{}:{}", run.dataset, run.version),
                title: format!(
                    "{} training labels look wrong (confident learning)",
                    flagged_rows.len()
                ),
                detail: serde_json::to_string(&FindingDetail::LabelIssues {
                    dataset: run.dataset.clone(),
                    version: run.version.clone(),
                    rows: flagged_rows.to_vec(),
                })
                .expect("serializes"),
                run: run.id.clone(),
                created_at: now(),
            });
        }
        self.commit_findings(run, &records, &fixed)
    }

    pub(crate) fn commit_findings(
        &mut self,
        run: &RunRecord,
        records: &[FindingRecord],
        fixed: &[i64],
    ) -> Result<FindingChanges, AppError> {
        let time = now();
        let user = self.user.clone();
        let recorded = self
            .store
            .write(|tx| record_findings(tx, run, records, fixed, &user, &time));
        match recorded {
            // A viewer of a team server looks without recording: the findings are opened by
            // the next member whose command finds them.
            Err(AppError::Store(gyre_store::StoreError::Denied { status: 403, .. })) => {
                Ok(FindingChanges::default())
            }
            other => other,
        }
    }
}

/// Links `edit` to the findings `fixing`, in the transaction `tx` that stores the edit.
pub(crate) fn link_edit(
    tx: &gyre_store::Tx<'_>,
    edit: i64,
    fixing: &[i64],
    user: &str,
    time: &str,
) -> Result<(), AppError> {
    for &finding in fixing {
        tx.insert_finding_event(&FindingEvent {
            seq: 0,
            finding,
            state: "edit".into(),
            why: None,
            who: user.to_string(),
            time: time.to_string(),
            run: None,
            edit: Some(edit),
        })?;
    }
    Ok(())
}

/// Writes findings in the transaction `tx`: `records` opened (unless open already) and `fixed`
/// marked fixed, by `run`.
pub(crate) fn record_findings(
    tx: &gyre_store::Tx<'_>,
    run: &RunRecord,
    records: &[FindingRecord],
    fixed: &[i64],
    user: &str,
    time: &str,
) -> Result<FindingChanges, AppError> {
    let event = |finding: i64, state: &str| FindingEvent {
        seq: 0,
        finding,
        state: state.into(),
        why: None,
        who: user.to_string(),
        time: time.to_string(),
        run: Some(run.id.clone()),
        edit: None,
    };
    let mut changes = FindingChanges::default();
    for r in records {
        let (id, is_new) = tx.upsert_finding(r)?;
        if is_new {
            tx.insert_finding_event(&event(id, "open"))?;
            changes.new.push(id);
        }
    }
    for &id in fixed {
        tx.insert_finding_event(&event(id, "fixed"))?;
        changes.fixed.push(id);
    }
    Ok(changes)
}
