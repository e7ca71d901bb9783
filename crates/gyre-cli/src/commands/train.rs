//! `gyre train`.

use crate::cli::{Cli, TrainArgs};
use crate::output::{self, count, short};
use gyre_app::{Progress, RunReport, TrainRequest};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;

/// Training progress on stderr; indicatif draws nothing when stderr is not a terminal. What a
/// command learner prints goes to stderr too, line by line, except with `--json`.
pub(crate) struct Bar(pub ProgressBar, pub bool);

impl Progress for Bar {
    fn iteration(&self, done: usize, total: usize) {
        if self.0.length() != Some(total as u64) {
            self.0.set_length(total as u64);
            self.0.reset();
        }
        self.0.set_position(done as u64);
    }

    fn message(&self, line: &str) {
        if self.1 {
            self.0.suspend(|| eprintln!("{line}"));
        }
    }
}

pub fn run(cli: &Cli, args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let mut params = Vec::new();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            anyhow::bail!("parameter \"{p}\" is not KEY=VALUE (for example -p num_iterations=200)");
        };
        params.push((k.trim().to_string(), v.trim().to_string()));
    }
    let req = TrainRequest {
        dataset: args.dataset.clone(),
        version: args.version.clone(),
        learner: args.learner.clone(),
        params,
        seed: args.seed,
        seeds: args.seeds,
    };
    let mut app = super::open_with_executor(cli)?;
    let bar = progress_bar(cli, "training {bar:30} {pos}/{len} ({elapsed})");
    let result = app.train(&req, &Bar(bar.clone(), !cli.json));
    bar.finish_and_clear();
    let report = result?;
    Ok(print_report(cli, &report))
}

/// A progress bar on stderr drawn with `template`, hidden with `--json`.
pub(crate) fn progress_bar(cli: &Cli, template: &str) -> ProgressBar {
    if cli.json {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(0);
    b.set_style(ProgressStyle::with_template(template).expect("valid template"));
    // Only show it when the work takes noticeable time.
    b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    b
}

/// A training report (or an imported run's), readable or as JSON; exit 1 when a suite fails.
pub fn print_report(cli: &Cli, report: &gyre_app::TrainReport) -> ExitCode {
    let code = if report.runs.iter().chain([&report.run]).all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if cli.json {
        output::json(report);
        return code;
    }
    let mut s = String::new();
    let runs: Vec<&RunReport> = if report.runs.is_empty() {
        vec![&report.run]
    } else {
        report.runs.iter().collect()
    };
    for r in &runs {
        s.push_str(&run_summary(r));
    }
    if !report.run.slices.is_empty() {
        s.push_str("  where it fails most (holdout slices; gyre slices RUN for more):\n");
        s.push_str(&super::slices::table(&report.run.slices, "error"));
    }
    if let Some(f) = &report.seed_floor {
        match f.mean_flip_rate {
            Some(rate) => s.push_str(&format!(
                "\nseed noise floor: {:.2}% of holdout examples flip between seeds alone (mean over {} pairs; the seed chose {})\n",
                100.0 * rate,
                f.pairs.len(),
                f.seed_drives.join(", ")
            )),
            None => s.push_str("\nseed noise floor: not defined for regression\n"),
        }
    }
    for k in &report.checks.skew {
        s.push_str(&format!(
            "  skew: {} holdout rows ({:.1}%) have {}; the model can only guess there: {}\n",
            count(k.rows as u64),
            100.0 * k.share,
            k.describe(),
            k.predicate
        ));
    }
    for l in &report.checks.leaks {
        s.push_str(&format!(
            "  leak? {} alone predicts the label on the training rows ({} {:.4}): a column made from the label, or recorded after it? (gyre edit drop-feature {})\n",
            l.column, l.measure, l.value, l.column
        ));
    }
    if let Some(n) = &report.seeds_note {
        s.push_str(&format!("\nseeds: {}\n", n.note));
    }
    if !report.findings.new.is_empty() || !report.findings.fixed.is_empty() {
        s.push_str(&format!(
            "  findings: {} new, {} fixed by this run (gyre findings)\n",
            report.findings.new.len(),
            report.findings.fixed.len()
        ));
    }
    s.push_str(&format!(
        "\nnext: gyre show {}   |   gyre predictions {} --out preds.csv\n",
        short(&report.run.run),
        short(&report.run.run)
    ));
    output::print(&s);
    code
}

/// A few readable lines about one run.
pub fn run_summary(r: &RunReport) -> String {
    let mut s = format!(
        "run {}: {} on {} version {} (seed {}), {} train rows, {} holdout rows\n",
        short(&r.run),
        r.learner,
        r.dataset,
        short(&r.version),
        r.seed,
        count(r.rows.train as u64),
        count(r.rows.holdout as u64)
    );
    if let Some(p) = &r.positive_class {
        s.push_str(&format!(
            "  positive class {p} (precision, recall, f1 and average_precision are its)\n"
        ));
    }
    for (suite, m) in &r.metrics {
        let primary = m.get(&r.primary_metric).copied();
        let others: Vec<String> = m
            .iter()
            .filter(|(k, _)| **k != r.primary_metric)
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        s.push_str(&format!(
            "  {suite}: {} {}   ({})\n",
            r.primary_metric,
            primary.map_or("n/a".to_string(), |v| format!("{v:.4}")),
            others.join(", ")
        ));
    }
    for x in r.suites.iter().filter(|x| !x.passed) {
        s.push_str(&format!(
            "  suite {} FAILED: {}\n",
            x.name,
            x.failures.join("; ")
        ));
    }
    if let Some(c) = &r.command {
        s.push_str(&format!(
            "  command {} (learner {}, files sha256 {})\n",
            c.command,
            c.name,
            &c.files_hash[..12.min(c.files_hash.len())]
        ));
    }
    if let Some(i) = &r.imported {
        s.push_str(&format!(
            "  imported as \"{}\" from {} (sha256 {}){}\n",
            i.name,
            i.predictions,
            &i.predictions_sha256[..12.min(i.predictions_sha256.len())],
            i.model
                .as_ref()
                .map(|m| format!(", model {m}"))
                .unwrap_or_else(|| ", no model".into())
        ));
    }
    if let Some(sweep) = &r.sweep {
        s.push_str(&format!(
            "  a finished trial of sweep {sweep} (gyre sweep show {sweep})\n"
        ));
    }
    let t = |k: &str| r.timings.get(k).copied().unwrap_or(0.0);
    s.push_str(&format!(
        "  time: train {:.2}s, evaluate {:.2}s\n",
        t("train_s"),
        t("evaluate_s")
    ));
    s
}
