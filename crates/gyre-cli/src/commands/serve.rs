//! `gyre serve [--addr HOST:PORT] [--run REF] [--challenger REF (--split F | --shadow)]`.

use crate::cli::Cli;
use crate::output::{self, short};
use gyre_server::{Models, ServeOptions, Traffic};
use std::process::ExitCode;

pub fn run(
    cli: &Cli,
    addr: &str,
    run: &str,
    challenger: Option<&str>,
    (split, shadow): (Option<f64>, bool),
    timeout: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let traffic = match (challenger, split, shadow) {
        (None, _, _) => None,
        (Some(_), Some(f), false) => {
            if !(0.0..=1.0).contains(&f) {
                return Err(gyre_app::AppError::invalid(format!(
                    "--split {f}: expected a share between 0 and 1"
                ))
                .into());
            }
            Some(Traffic::Split(f))
        }
        (Some(_), None, true) => Some(Traffic::Shadow),
        (Some(_), _, _) => {
            return Err(gyre_app::AppError::invalid(
                "--challenger needs --split SHARE or --shadow",
            )
            .into());
        }
    };
    let mut app = super::open(cli)?;
    let champion = app.serving_model(run)?;
    let challenger_model = challenger.map(|c| app.serving_model(c)).transpose()?;
    let log = app.prediction_log_writer(
        &champion.run,
        challenger_model.as_ref().map(|c| c.run.as_str()),
        traffic.map(|t| t.to_string()).as_deref(),
    )?;
    let (id, challenger_id) = (
        champion.run.clone(),
        challenger_model.as_ref().map(|c| c.run.clone()),
    );
    let session = log.session;
    let json = cli.json;
    let options = ServeOptions {
        champion: run.to_string(),
        challenger: challenger.map(String::from),
        traffic,
        timeout,
    };
    gyre_server::serve(
        app,
        Models::new(champion, challenger_model),
        log,
        options,
        addr,
        &|bound| {
            if json {
                // One line, so a supervising process can read the bound address when it is ready.
                output::print(&format!(
                    "{}\n",
                    serde_json::json!({
                        "addr": bound.to_string(),
                        "run": id,
                        "challenger": challenger_id,
                        "traffic": traffic.map(|t| t.to_string()),
                        "session": session,
                    })
                ));
            } else {
                let mut s = format!("serving champion {} on http://{bound}\n", short(&id));
                if let (Some(c), Some(t)) = (&challenger_id, traffic) {
                    s.push_str(&format!("  challenger {} ({t})\n", short(c)));
                }
                s.push_str(
                    "  POST /v1/predict  POST /v1/feedback  GET /v1/health  GET /metrics\n  \
                     every answer is logged (.gyre/log.db); `gyre monitor` reads it; Ctrl-C stops\n",
                );
                output::print(&s);
            }
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot serve on {addr}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
