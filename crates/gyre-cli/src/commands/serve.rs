//! `gyre serve [--addr HOST:PORT] [--run REF]`.

use crate::cli::Cli;
use crate::output::{self, short};
use std::process::ExitCode;

pub fn run(cli: &Cli, addr: &str, run: &str) -> anyhow::Result<ExitCode> {
    let model = super::open(cli)?.serving_model(run)?;
    let id = model.run.clone();
    let json = cli.json;
    gyre_server::serve(model, addr, &|bound| {
        if json {
            // One line, so a supervising process can read the bound address as soon as it is ready.
            output::print(&format!(
                "{}\n",
                serde_json::json!({ "addr": bound.to_string(), "run": id })
            ));
        } else {
            output::print(&format!(
                "serving run {} on http://{bound}  (POST /v1/predict, GET /v1/health; Ctrl-C stops)\n",
                short(&id)
            ));
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot serve on {addr}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
