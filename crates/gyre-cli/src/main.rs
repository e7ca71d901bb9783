//! The `gyre` binary: parse arguments, run one command, print its report, exit 0 (ok),
//! 1 (a check failed) or 2 (an error).

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse_grouped();
    match commands::run(&args) {
        Ok(code) => code,
        Err(err) => {
            output::error(&err, args.json);
            ExitCode::from(2)
        }
    }
}
