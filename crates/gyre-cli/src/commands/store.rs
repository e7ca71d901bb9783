//! `gyre store` (where the project lives) and `gyre store copy DIR [--store URL --objects URL]`.

use crate::cli::{Cli, StoreAction, StoreArgs};
use crate::output;
use gyre_app::{StoreConfig, StoreLocation};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;

/// The team store named by `--store`/`--objects`, if any.
pub fn team_config(args: &StoreArgs) -> Option<StoreConfig> {
    args.store.as_ref().map(|metadata| StoreConfig {
        metadata: Some(metadata.clone()),
        objects: args.objects.clone(),
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
    })
}

/// One line naming where a project's metadata and objects live.
pub fn describe(s: &StoreLocation) -> String {
    match (&s.metadata, &s.objects) {
        (Some(m), Some(_)) if s.backend == "server" => {
            format!(
                "a clone of the team server {m}: metadata and objects there, objects cached in .gyre/"
            )
        }
        (Some(m), Some(o)) => format!("team store: metadata in {m}, objects in {o}"),
        _ => "embedded store: metadata and objects in .gyre/".into(),
    }
}

pub fn run(cli: &Cli, action: Option<&StoreAction>) -> anyhow::Result<ExitCode> {
    let mut app = super::open(cli)?;
    match action {
        None => {
            let loc = app.store_location()?;
            if cli.json {
                output::json(&loc);
            } else {
                let root = app
                    .root()
                    .canonicalize()
                    .unwrap_or(app.root().to_path_buf());
                output::print(&format!("{}\n{}\n", root.display(), describe(&loc)));
            }
        }
        Some(StoreAction::Copy { dir, to, store }) => {
            let dir = dir.as_ref().or(to.as_ref()).expect("clap requires one");
            let bar = if cli.json {
                ProgressBar::hidden()
            } else {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template("copying objects {pos}/{len} {wide_bar} {eta}")
                        .expect("valid template"),
                );
                b
            };
            let team = team_config(store);
            let result = app.copy_store(dir, team.as_ref(), |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            });
            bar.finish_and_clear();
            let r = result?;
            if cli.json {
                output::json(&r);
            } else {
                let rows = |t: &str| r.rows.get(t).copied().unwrap_or(0);
                output::print(&format!(
                    "copied {} to {}\n  from the {}\n  to the {}\n  {} objects ({:.1} MB), {} runs, {} edits, \
                     {} journal entries, {} alias moves; both sides read back the same\n",
                    r.from.display(),
                    r.to.display(),
                    describe(&r.from_store),
                    describe(&r.to_store),
                    r.objects,
                    r.object_bytes as f64 / 1e6,
                    rows("runs"),
                    rows("edits"),
                    rows("journal"),
                    rows("alias_events"),
                ));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
