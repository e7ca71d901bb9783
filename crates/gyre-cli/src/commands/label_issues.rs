//! `gyre label-issues RUN [--top N] [--folds K]`.

use crate::cli::Cli;
use crate::output::{self, count, short};
use std::process::ExitCode;

pub fn run(cli: &Cli, run: &str, top: Option<usize>, folds: usize) -> anyhow::Result<ExitCode> {
    let r = super::open_with_executor(cli)?.label_issues(run, folds, top)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "{} of {} training rows look mislabelled (run {}, {} folds{})\n  about {} would be \
         flagged were every label right but as uncertain as the model believes: the count is a \
         scale, the ranking (least likely label first) is the evidence\n",
        count(r.flagged as u64),
        count(r.rows as u64),
        short(&r.run),
        r.folds,
        if r.cached { ", cached" } else { "" },
        count(r.expected_issues.round() as u64)
    );
    if let Some(reason) = r.reason.as_deref().filter(|_| !r.reliable) {
        s.push_str(&format!(
            "  not reliable: {reason}\n  these are likely hard rows, not wrong labels; no finding opened\n"
        ));
        if r.issues.is_empty() {
            s.push_str("  (--top N lists the least likely labels anyway)\n");
        }
    }
    if !r.issues.is_empty() {
        s.push_str(&format!(
            "  {:>8}  {:<12} {:<12} {:>10}  {:>10}\n",
            "row", "given", "suggested", "p(given)", "p(sugg.)"
        ));
    }
    for x in &r.issues {
        s.push_str(&format!(
            "  {:>8}  {:<12} {:<12} {:>10.3}  {:>10.3}\n",
            x.row, x.given, x.suggested, x.self_confidence, x.confidence
        ));
    }
    if let Some(first) = r.issues.first() {
        s.push_str(&format!(
            "\nto fix one after checking it: gyre edit relabel --rows {} --to '{}' --why \"checked\"\n",
            first.row, first.suggested
        ));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
