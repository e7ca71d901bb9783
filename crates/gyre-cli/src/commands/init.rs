//! `gyre init [DIR]`.

use crate::cli::Cli;
use crate::output;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: &Cli, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let dir = dir.or(cli.project.as_deref()).unwrap_or(&cwd);
    let report = gyre_app::init(dir, &super::command_line())?;
    if cli.json {
        output::json(&report);
    } else {
        output::print(&format!(
            "created a gyre project in {}\n  settings: {}\n\nnext: gyre import FILE --target COLUMN\n",
            report.project.display(),
            report.config.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}
