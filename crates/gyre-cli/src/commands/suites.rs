//! `gyre suite add NAME --where PRED [--require 'METRIC>=X']`, `gyre suites`.

use crate::cli::{Cli, SuiteCommand};
use crate::output;
use std::process::ExitCode;

pub fn add(cli: &Cli, command: &SuiteCommand) -> anyhow::Result<ExitCode> {
    let SuiteCommand::Add {
        name,
        predicate,
        rows,
        requirements,
        dataset,
    } = command;
    let s = super::open(cli)?.suite_add(
        name,
        predicate.as_deref(),
        rows.as_deref(),
        requirements,
        dataset.as_deref(),
    )?;
    if cli.json {
        output::json(&s);
    } else {
        output::print(&format!(
            "added suite {}: {}{}\n\nevery run is scored on it from now on, earlier runs included (gyre show RUN)\n",
            s.name,
            s.predicate.clone().unwrap_or_else(|| format!(
                "{} listed rows",
                s.rows.as_ref().map_or(0, |r| r.len())
            )),
            if s.requirements.is_empty() {
                String::new()
            } else {
                format!("; requires {}", s.requirements.join(", "))
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(cli: &Cli) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.suites()?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::from("holdout      every holdout row (always there)\n");
    for x in &r.suites {
        s.push_str(&format!(
            "{:<12} {}{}\n",
            x.name,
            x.predicate.clone().unwrap_or_else(|| format!(
                "{} listed rows",
                x.rows.as_ref().map_or(0, |r| r.len())
            )),
            if x.requirements.is_empty() {
                String::new()
            } else {
                format!("   requires {}", x.requirements.join(", "))
            }
        ));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
