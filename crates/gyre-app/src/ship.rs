//! The gate, aliases, promotion and rollback. The gate checks a candidate against the champion
//! under the policy in `gyre.toml` `[gate]`; `promote` moves an alias only through the gate
//! (unless forced, which is recorded); every move is appended to the alias's history.

use crate::config::gate_config;
use crate::diff::{DiffReport, DiffRequest};
use crate::{App, AppError, now};
use gyre_store::{AliasEvent, NewJournalEntry};
use serde::{Deserialize, Serialize};

pub const CHAMPION: &str = "champion";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GateReport {
    pub run: String,
    /// The run it was checked against (none before the first promotion).
    pub against: Option<String>,
    pub passed: bool,
    pub checks: Vec<Check>,
}

#[derive(Serialize)]
pub struct PromoteReport {
    pub alias: String,
    pub run: String,
    pub previous: Option<String>,
    pub forced: bool,
    pub gate: GateReport,
    /// False when the gate failed and nothing moved.
    pub promoted: bool,
}

#[derive(Serialize)]
pub struct AliasHistory {
    pub alias: String,
    pub run: String,
    pub history: Vec<AliasEvent>,
}

#[derive(Serialize)]
pub struct AliasesReport {
    pub aliases: Vec<AliasHistory>,
}

impl App {
    /// The run an alias points at now.
    pub(crate) fn alias_target(&mut self, alias: &str) -> Result<Option<String>, AppError> {
        Ok(self
            .store
            .read(|tx| tx.alias_events())?
            .into_iter()
            .rev()
            .find(|e| e.alias == alias)
            .map(|e| e.run))
    }

    pub fn gate(&mut self, run: &str, against: Option<&str>) -> Result<GateReport, AppError> {
        let cand = self.resolve_run(run)?;
        let against = match against {
            Some(a) => Some(self.resolve_run(a)?.id),
            None => self.alias_target(CHAMPION)?,
        };
        self.gate_runs(&cand.id, against.as_deref())
    }

    fn gate_runs(&mut self, cand_id: &str, against: Option<&str>) -> Result<GateReport, AppError> {
        let cfg = gate_config(&self.store.config_path())?;
        let cand = self.resolve_run(cand_id)?;
        let (_, suites) = self.evaluate_suites(&cand)?;
        let mut checks = Vec::new();
        for s in suites.iter().filter(|s| s.name != "holdout") {
            checks.push(Check {
                name: format!("suite {} requirements", s.name),
                passed: s.passed,
                detail: if s.passed {
                    "met".into()
                } else {
                    s.failures.join("; ")
                },
            });
        }
        let against = match against {
            Some(a) if a != cand.id => Some(self.resolve_run(a)?),
            _ => None,
        };
        if let Some(base) = &against {
            let d: DiffReport = self.diff_runs(
                base,
                &cand,
                &DiffRequest {
                    base: base.id.clone(),
                    candidate: cand.id.clone(),
                    suite: None,
                    rows: false,
                    resamples: None,
                    seed: None,
                },
            )?;
            let primary = d.primary_metric.clone();
            let higher = !matches!(primary.as_str(), "rmse" | "mae" | "log_loss" | "brier");
            let m = d.metrics.get(&primary).ok_or_else(|| {
                AppError::invalid(format!(
                    "[gate] primary_metric \"{primary}\" is not a metric of this task ({})",
                    d.metrics.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let worse = if higher {
                m.ci95[1] < 0.0
            } else {
                m.ci95[0] > 0.0
            };
            checks.push(Check {
                name: format!("{primary} as good as the champion's, within noise"),
                passed: !worse,
                detail: format!(
                    "champion {:.4}, candidate {:.4}, delta {:+.4}, 95% CI [{:+.4}, {:+.4}]{}",
                    m.base,
                    m.candidate,
                    m.delta,
                    m.ci95[0],
                    m.ci95[1],
                    if worse {
                        ": the whole interval is on the worse side of 0, so the drop is not noise"
                    } else {
                        ""
                    }
                ),
            });
            if let Some(min) = cfg.min_improvement {
                let gain = if higher { m.delta } else { -m.delta };
                checks.push(Check {
                    name: format!("{primary} improves by at least {min}"),
                    passed: gain >= min,
                    detail: format!("improvement {gain:+.4}"),
                });
            }
            if cfg.suites_not_worse {
                for s in d.suites.iter().filter(|s| s.name != "holdout") {
                    if let Some(sm) = s.metrics.get(&primary) {
                        let worse = if higher {
                            sm.ci95[1] < 0.0
                        } else {
                            sm.ci95[0] > 0.0
                        };
                        checks.push(Check {
                            name: format!(
                                "suite {} as good as under the champion, within noise",
                                s.name
                            ),
                            passed: !worse,
                            detail: format!(
                                "{primary} {:.4} -> {:.4} ({:+.4}, 95% CI [{:+.4}, {:+.4}]) on {} rows",
                                sm.base, sm.candidate, sm.delta, sm.ci95[0], sm.ci95[1], s.rows
                            ),
                        });
                    }
                }
            }
            if let Some(f) = &d.flips {
                checks.push(Check {
                    name: "negative flip rate within budget".into(),
                    passed: f.negative_rate <= cfg.max_negative_flip_rate,
                    detail: format!(
                        "{} negative flips of {} rows ({:.2}%), budget {:.2}%",
                        f.negative,
                        f.rows,
                        100.0 * f.negative_rate,
                        100.0 * cfg.max_negative_flip_rate
                    ),
                });
                if cfg.max_flip_multiple_of_seed_floor > 0.0
                    && let Some(floor) = d.seed_floor
                {
                    let cap = cfg.max_flip_multiple_of_seed_floor * floor;
                    checks.push(Check {
                        name: "negative flips within the seed floor multiple".into(),
                        passed: f.negative_rate <= cap,
                        detail: format!(
                            "{:.2}% against {:.1} x seed floor {:.2}% = {:.2}%",
                            100.0 * f.negative_rate,
                            cfg.max_flip_multiple_of_seed_floor,
                            100.0 * floor,
                            100.0 * cap
                        ),
                    });
                }
            }
        } else {
            checks.push(Check {
                name: "champion comparison".into(),
                passed: true,
                detail: "no champion yet: nothing to compare against".into(),
            });
        }
        Ok(GateReport {
            run: cand.id.clone(),
            against: against.map(|a| a.id),
            passed: checks.iter().all(|c| c.passed),
            checks,
        })
    }

    pub fn promote(
        &mut self,
        run: &str,
        alias: Option<&str>,
        why: Option<&str>,
        force: bool,
    ) -> Result<PromoteReport, AppError> {
        let why = crate::require_why(why, "moving an alias", None)?;
        let alias = alias.unwrap_or(CHAMPION).to_string();
        check_alias_name(&alias)?;
        let cand = self.resolve_run(run)?;
        // Even --force cannot make a run servable that is not.
        self.check_servable(&cand)?;
        let previous = self.alias_target(&alias)?;
        if previous.as_deref() == Some(cand.id.as_str()) {
            return Err(AppError::invalid(format!(
                "run {} is already {alias}",
                cand.id
            )));
        }
        let gate = self.gate_runs(&cand.id, previous.as_deref())?;
        let promoted = gate.passed || force;
        if promoted {
            self.record_alias_move(
                &alias,
                &cand.id,
                previous.clone(),
                "promote",
                why,
                force && !gate.passed,
                Some(&gate),
            )?;
        }
        Ok(PromoteReport {
            alias,
            run: cand.id,
            previous,
            forced: force && !gate.passed,
            gate,
            promoted,
        })
    }

    pub fn rollback(
        &mut self,
        alias: Option<&str>,
        why: Option<&str>,
    ) -> Result<AliasHistory, AppError> {
        let why = crate::require_why(why, "moving an alias", None)?;
        let alias = alias.unwrap_or(CHAMPION).to_string();
        let events = self.store.read(|tx| tx.alias_events())?;
        let last = events
            .iter()
            .rev()
            .find(|e| e.alias == alias)
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "alias \"{alias}\" was never set; nothing to roll back"
                ))
            })?;
        let previous = last.previous.clone().ok_or_else(|| AppError::Invalid {
            message: format!(
                "{alias} has no previous run to roll back to (run {} was the first)",
                last.run
            ),
            hint: Some("promote another run instead".into()),
        })?;
        let current = last.run.clone();
        self.record_alias_move(
            &alias,
            &previous,
            Some(current),
            "rollback",
            why,
            false,
            None,
        )?;
        self.alias_history(&alias)
    }

    #[allow(clippy::too_many_arguments)]
    fn record_alias_move(
        &mut self,
        alias: &str,
        run: &str,
        previous: Option<String>,
        action: &str,
        why: &str,
        forced: bool,
        gate: Option<&GateReport>,
    ) -> Result<(), AppError> {
        let time = now();
        let event = AliasEvent {
            seq: 0,
            alias: alias.to_string(),
            run: run.to_string(),
            previous,
            action: action.to_string(),
            who: self.user.clone(),
            time: time.clone(),
            why: why.to_string(),
            forced,
            gate: gate.map(|g| serde_json::to_string(g).expect("gate serializes")),
        };
        let (user, command) = (self.user.clone(), self.command.clone());
        self.store.write(|tx| {
            // Compare-and-set: the alias must still point where it did when this move was
            // decided (and its gate ran); someone else's move in between wins, and this one
            // says whose it was.
            let events = tx.alias_events()?;
            let now_at = events.iter().rev().find(|e| e.alias == alias);
            if now_at.map(|e| &e.run) != event.previous.as_ref() {
                let moved = now_at.expect("a move happened, so there is a latest one");
                return Err(AppError::Invalid {
                    message: format!(
                        "{alias} moved while this {action} was decided: {} moved it to run {} \
                         ({}, at {}: {}); nothing changed",
                        moved.who, moved.run, moved.action, moved.time, moved.why
                    ),
                    hint: Some(format!(
                        "look at gyre aliases, then {action} again (the gate runs against the new \
                         {alias})"
                    )),
                });
            }
            tx.insert_alias_event(&event)?;
            tx.append_journal(&NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why: Some(why),
                objects: &[format!("alias:{alias}"), format!("run:{run}")],
            })?;
            Ok::<_, AppError>(())
        })?;
        Ok(())
    }

    fn alias_history(&mut self, alias: &str) -> Result<AliasHistory, AppError> {
        let history: Vec<AliasEvent> = self
            .store
            .read(|tx| tx.alias_events())?
            .into_iter()
            .filter(|e| e.alias == alias)
            .collect();
        Ok(AliasHistory {
            alias: alias.to_string(),
            run: history.last().map(|e| e.run.clone()).unwrap_or_default(),
            history,
        })
    }

    pub fn aliases(&mut self) -> Result<AliasesReport, AppError> {
        let events = self.store.read(|tx| tx.alias_events())?;
        let mut names: Vec<String> = events.iter().map(|e| e.alias.clone()).collect();
        names.sort();
        names.dedup();
        let mut aliases = Vec::new();
        for n in names {
            aliases.push(self.alias_history(&n)?);
        }
        Ok(AliasesReport { aliases })
    }
}

fn check_alias_name(alias: &str) -> Result<(), AppError> {
    if alias == "latest" || gyre_core::DatasetName::parse(alias).is_err() {
        return Err(AppError::invalid(format!(
            "\"{alias}\" cannot be an alias: use letters, digits, '-', '_' or '.', and not \"latest\""
        )));
    }
    Ok(())
}
