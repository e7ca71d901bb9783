//! One module per subcommand; `run` dispatches.

mod ablate;
mod data;
mod demo;
mod diff;
mod edit;
mod export;
mod findings;
mod import;
mod init;
mod label_issues;
mod log;
mod monitor;
mod runs;
mod serve;
mod server;
mod ship;
mod slices;
mod store;
mod suites;
mod sweep;
mod train;
mod ui;
mod why;

use crate::cli::{Cli, Command};
use gyre_app::{App, ProjectLocation};
pub use serve::parse_size;
use std::process::ExitCode;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Init { dir, store } => init::run(cli, dir.as_deref(), store),
        Command::Store { action } => store::run(cli, action.as_ref()),
        Command::Server { action, run } => server::run(cli, action.as_ref(), run),
        Command::Clone { url, dir } => server::clone(cli, url, dir),
        Command::Import(args) => import::run(cli, args),
        Command::Data {
            name,
            versions,
            version,
        } => data::run(cli, name.as_deref(), *versions, version.as_deref()),
        Command::Edit(args) => edit::run(cli, args),
        Command::Suite { command } => suites::add(cli, command),
        Command::Suites => suites::list(cli),
        Command::Slices(args) => slices::run(cli, args),
        Command::Diff {
            base,
            candidate,
            suite,
            rows,
            resamples,
        } => diff::run(cli, base, candidate, suite.as_deref(), *rows, *resamples),
        Command::Gate { run, against } => ship::gate(cli, run, against.as_deref()),
        Command::Promote {
            run,
            why,
            force,
            alias,
        } => ship::promote(cli, run, Some(&why.why), *force, alias.as_deref()),
        Command::Rollback { why, alias } => ship::rollback(cli, Some(&why.why), alias.as_deref()),
        Command::Aliases => ship::aliases(cli),
        Command::Demo { dir } => demo::run(cli, dir.as_deref()),
        Command::Findings => findings::list(cli),
        Command::Ui { addr, token } => ui::run(cli, addr, *token),
        Command::Serve {
            addr,
            run,
            challenger,
            split,
            shadow,
            timeout,
            max_body,
            remote,
            dir,
        } => serve::run(
            cli,
            &serve::ServeArgs {
                addr,
                run,
                challenger: challenger.as_deref(),
                split: *split,
                shadow: *shadow,
                timeout: *timeout,
                max_body: *max_body,
                remote: remote.as_deref(),
                dir: dir.as_deref(),
            },
        ),
        Command::Monitor { since } => monitor::run(cli, since.as_deref()),
        Command::Feedback {
            command: crate::cli::FeedbackCommand::Import { why },
        } => monitor::feedback_import(cli, Some(&why.why)),
        Command::Ablate { run, jobs } => ablate::run(cli, run, *jobs),
        Command::Why { row, dataset, run } => {
            why::run(cli, row, dataset.as_deref(), run.as_deref())
        }
        Command::Finding { decision, id, why } => {
            findings::decide(cli, decision, *id, Some(&why.why))
        }
        Command::LabelIssues { run, top, folds } => label_issues::run(cli, run, *top, *folds),
        Command::Log => log::run(cli),
        Command::Train(args) => train::run(cli, args),
        Command::Sweep { action, args } => sweep::run(cli, action.as_ref(), args),
        Command::Worker { unit } => sweep::worker(cli, unit),
        Command::Runs {
            action: Some(action),
            ..
        } => runs::action(cli, action),
        Command::Runs {
            action: None,
            sort,
            filter,
            limit,
            offset,
        } => {
            if sort.is_none() && filter.is_none() && limit.is_none() && *offset == 0 {
                runs::list(cli)
            } else {
                runs::page(cli, sort.as_deref(), filter.as_deref(), *limit, *offset)
            }
        }
        Command::Show { run } => runs::show(cli, run),
        Command::Predict {
            run,
            file,
            out,
            keep,
        } => runs::predict(cli, run, file, out, keep),
        Command::Predictions { run, suite, out } => {
            runs::predictions(cli, run, suite.as_deref(), out)
        }
        Command::Export { run, out, force } => export::run(cli, run, out, *force),
    }
}

/// The command line as typed, for the journal.
pub fn command_line() -> String {
    let mut parts = vec!["gyre".to_string()];
    for a in std::env::args().skip(1) {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            parts.push(format!("'{}'", a.replace('\'', "'\\''")));
        } else {
            parts.push(a);
        }
    }
    parts.join(" ")
}

/// Opens the project named by `--project`/`$GYRE_PROJECT`, or the one around the current directory.
pub fn open(cli: &Cli) -> anyhow::Result<App> {
    let cwd = std::env::current_dir()?;
    let at = match &cli.project {
        Some(p) => ProjectLocation::Explicit(p),
        None => ProjectLocation::Discover(&cwd),
    };
    Ok(App::open(at, &command_line())?)
}

/// `open`, with the executor that runs the command's units of parallel work: `--executor`
/// (or GYRE_EXECUTOR), else gyre.toml's `[executor] kind`, else local.
pub fn open_with_executor(cli: &Cli) -> anyhow::Result<App> {
    let mut app = open(cli)?;
    let config = app.executor_config()?;
    let ray = match cli.executor {
        Some(e) => e == crate::cli::ExecutorArg::Ray,
        None => config.kind.as_deref() == Some("ray"),
    };
    if ray {
        let ray = gyre_ray::RayConfig::from_env(config.ray_url.as_deref(), config.gyre.as_deref())?;
        app.set_executor(gyre_app::Executor::Remote(std::sync::Arc::new(
            gyre_ray::RayExecutor::new(ray),
        )));
        if !cli.json {
            app.set_unit_progress(std::sync::Arc::new(Said::default()));
        }
    }
    Ok(app)
}

/// Progress of units on a cluster, on stderr: its messages, and each change of the count.
#[derive(Default)]
struct Said(std::sync::Mutex<Option<usize>>);

impl gyre_app::Progress for Said {
    fn iteration(&self, done: usize, total: usize) {
        let mut last = self.0.lock().expect("progress");
        if *last != Some(done) {
            *last = Some(done);
            eprintln!("{done}/{total} units done");
        }
    }

    fn message(&self, line: &str) {
        eprintln!("{line}");
    }
}
