//! `gyre label-issues RUN [--top N] [--folds K]`.

use crate::cli::Cli;
use crate::output::{self, count, short};
use std::process::ExitCode;

pub fn run(cli: &Cli, run: &str, top: Option<usize>, folds: usize) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.label_issues(run, folds, top)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "{} of {} training rows look mislabelled (run {}, {} folds{})\n",
        count(r.flagged as u64),
        count(r.rows as u64),
        short(&r.run),
        r.folds,
        if r.cached { ", cached" } else { "" }
    );
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
