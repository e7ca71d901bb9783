//! `gyre sweep`, `gyre sweep show ID`, and `gyre worker UNIT`.

use super::train::{Bar, progress_bar};
use crate::cli::{Cli, SweepAction, SweepArgs};
use crate::output::{self, short};
use gyre_app::{SweepReport, SweepRequest, Unit};
use std::process::ExitCode;

pub fn run(cli: &Cli, action: Option<&SweepAction>, args: &SweepArgs) -> anyhow::Result<ExitCode> {
    if let Some(SweepAction::Show { id }) = action {
        let report = super::open(cli)?.sweep_show(id)?;
        print_report(cli, &report);
        return Ok(ExitCode::SUCCESS);
    }
    let req = SweepRequest {
        dataset: args.dataset.clone(),
        version: args.version.clone(),
        learner: args.learner.clone(),
        space: args.params.clone(),
        trials: args.trials,
        seed: args.seed,
        seeds: args.seeds,
        early_stop: !args.no_early_stop,
        eta: args.eta,
        min_budget: args.min_budget,
        budget: args.budget.clone(),
    };
    let mut app = super::open_with_executor(cli)?;
    let bar = progress_bar(cli, "sweeping {bar:30} {pos}/{len} units ({elapsed})");
    let result = app.sweep(&req, &Bar(bar.clone(), !cli.json));
    bar.finish_and_clear();
    print_report(cli, &result?);
    Ok(ExitCode::SUCCESS)
}

fn params_text(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_report(cli: &Cli, r: &SweepReport) {
    if cli.json {
        output::json(r);
        return;
    }
    let s = &r.sweep;
    let finished = r.ranking.len();
    let mut out = format!(
        "sweep {}: {} trial(s) of {} on {} (version {}), {} unit(s){} in {:.1} s on {}{}\n",
        s.id,
        s.trials.len(),
        s.learner,
        s.dataset,
        short(&s.version),
        s.units,
        if s.retries > 0 {
            format!(" ({} started again after their worker died)", s.retries)
        } else {
            String::new()
        },
        s.seconds,
        s.executor,
        if r.already {
            " (ran before: nothing fit again)"
        } else {
            ""
        }
    );
    let better = |a: f64, b: f64| if s.higher_is_better { a > b } else { a < b };
    for (i, rung) in s.rungs.iter().enumerate() {
        let best =
            rung.scores
                .iter()
                .filter(|x| !x.score.is_nan())
                .fold(None::<f64>, |m, x| match m {
                    Some(m) if !better(x.score, m) => Some(m),
                    _ => Some(x.score),
                });
        out.push_str(&format!(
            "  rung {}: {} trial(s) at {}={}, best {} {} on validation rows\n",
            i + 1,
            rung.scores.len(),
            s.budget_param.as_deref().unwrap_or("budget"),
            rung.budget,
            s.primary_metric,
            best.map_or("-".to_string(), |b| format!("{b:.4}"))
        ));
    }
    if finished == 0 {
        out.push_str("  no trial finished\n");
        output::print(&out);
        return;
    }
    out.push_str(&format!(
        "\n{finished} finished trial(s) on the holdout ({}, 95% interval{}):\n",
        s.primary_metric,
        if s.seeds > 1 {
            format!("; the mean of {} seeds", s.seeds)
        } else {
            String::new()
        }
    ));
    out.push_str(&format!(
        "  {:>4}  {:>5}  {:>8}  {:<19}  {:<12}  params\n",
        "rank", "trial", &s.primary_metric, "95% interval", "run"
    ));
    for t in &r.ranking {
        out.push_str(&format!(
            "  {:>4}  {:>5}  {:>8.4}  {:<19}  {:<12}  {}\n",
            t.rank,
            format!("#{}", t.trial),
            t.metric,
            t.ci95
                .map_or("-".to_string(), |c| format!("[{:.4}, {:.4}]", c[0], c[1])),
            short(t.runs.first().map_or("", String::as_str)),
            params_text(&t.params)
        ));
    }
    if let Some(b) = &r.best_vs_runner_up {
        out.push_str(&format!(
            "\nbest (#{}) vs runner-up (#{}): {:+.4} [{:+.4}, {:+.4}]: {}\n",
            b.best,
            b.runner_up,
            b.delta.delta,
            b.delta.ci95[0],
            b.delta.ci95[1],
            if b.distinguishable {
                "distinguishable"
            } else {
                "not distinguishable (the interval holds no difference): pick on something else, or fit more seeds"
            }
        ));
    }
    if let (Some(first), Some(second)) = (r.ranking.first(), r.ranking.get(1)) {
        out.push_str(&format!(
            "next: gyre diff {} {}   then: gyre promote {}\n",
            short(&second.runs[0]),
            short(&first.runs[0]),
            short(&first.runs[0])
        ));
    }
    output::print(&out);
}

/// `gyre worker UNIT`: one unit, its result stored in the project's store.
pub fn worker(cli: &Cli, unit: &str) -> anyhow::Result<ExitCode> {
    let unit: Unit = serde_json::from_str(unit)
        .map_err(|e| anyhow::anyhow!("the unit is not a unit's JSON: {e}"))?;
    let r = super::open(cli)?.run_unit(&unit)?;
    if cli.json {
        output::json(&r);
    } else {
        output::print(&format!(
            "{}: {} in {:.2} s (unit {})\n",
            r.unit,
            if r.already { "already done" } else { "done" },
            r.seconds,
            short(&r.key)
        ));
    }
    Ok(ExitCode::SUCCESS)
}
