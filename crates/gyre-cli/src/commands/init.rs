//! `gyre init [DIR] [--store URL --objects URL]`.

use crate::cli::{Cli, StoreArgs};
use crate::output;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: &Cli, dir: Option<&Path>, store: &StoreArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let dir = dir.or(cli.project.as_deref()).unwrap_or(&cwd);
    let team = super::store::team_config(store);
    let report = gyre_app::init_with(dir, &super::command_line(), team.as_ref())?;
    if cli.json {
        output::json(&report);
    } else {
        let what = if report.joined {
            "joined the team's project; working directory"
        } else {
            "created a gyre project in"
        };
        let next = if report.joined {
            "next: gyre runs, gyre log"
        } else {
            "next: gyre import FILE --target COLUMN"
        };
        output::print(&format!(
            "{what} {}\n  settings: {}\n  {}\n\n{next}\n",
            report.project.display(),
            report.config.display(),
            super::store::describe(&report.store),
        ));
    }
    Ok(ExitCode::SUCCESS)
}
