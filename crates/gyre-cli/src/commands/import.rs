//! `gyre import PATH --target COL ...`.

use crate::cli::{Cli, ImportArgs, TaskArg};
use crate::output::{self, count, short};
use gyre_app::ImportRequest;
use gyre_core::Task;
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::time::Duration;

pub fn run(cli: &Cli, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let mut app = super::open(cli)?;
    let req = ImportRequest {
        path: args.path.clone(),
        target: args.target.clone(),
        name: args.name.clone(),
        split_column: args.split_column.clone(),
        holdout: args.holdout,
        seed: args.seed,
        time_column: args.time_column.clone(),
        id_column: args.id_column.clone(),
        na: (!args.na.is_empty()).then(|| args.na.clone()),
        task: args.task.map(|t| match t {
            TaskArg::Binary => Task::Binary,
            TaskArg::Multiclass => Task::Multiclass,
            TaskArg::Regression => Task::Regression,
        }),
        target_expr: args.target_expr.clone(),
        drop_missing_target: args.missing_target == crate::cli::MissingTargetArg::Drop,
        ignore: args.ignore.clone(),
        positive: args.positive.clone(),
    };
    let bar = if cli.json {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} reading {msg} rows ({elapsed})")
                .expect("valid template"),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        b
    };
    let result = app.import(&req, &|rows| bar.set_message(count(rows as u64)));
    bar.finish_and_clear();
    let r = result?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    if r.already_imported {
        s.push_str(&format!(
            "already imported: {} is dataset \"{}\" (nothing written)\n",
            args.path.display(),
            r.dataset
        ));
    } else {
        s.push_str(&format!(
            "imported {} as dataset \"{}\": {} rows, {} columns\n",
            args.path.display(),
            r.dataset,
            count(r.rows),
            r.columns.len()
        ));
    }
    s.push_str(&format!("  task     {} on \"{}\"", r.task, r.target));
    if !r.classes.is_empty() {
        s.push_str(&format!(" (classes: {})", r.classes.join(", ")));
    }
    if let Some(p) = &r.positive_class {
        s.push_str(&format!(
            "\n  positive {p}{}",
            if args.positive.is_some() {
                ""
            } else {
                " (by default the second class; --positive CLASS to choose)"
            }
        ));
    }
    s.push('\n');
    let splits: Vec<String> = r
        .splits
        .iter()
        .map(|(k, v)| format!("{k} {}", count(*v as u64)))
        .collect();
    s.push_str(&format!("  splits   {}\n", splits.join(", ")));
    if r.dropped_rows > 0 {
        s.push_str(&format!(
            "  dropped  {} rows whose target was missing (--missing-target drop)\n",
            count(r.dropped_rows as u64)
        ));
    }
    if !r.ignored.is_empty() {
        s.push_str(&format!(
            "  ignored  {} (no features; still columns for predicates, slices and why)\n",
            r.ignored.join(", ")
        ));
    }
    s.push_str(&format!("  version  {}\n  columns\n", short(&r.version)));
    let width = r.columns.iter().map(|c| c.name.len()).max().unwrap_or(4);
    for c in &r.columns {
        s.push_str(&format!(
            "    {:<width$}  {:<11}  {:<7}  {} missing\n",
            c.name,
            c.kind.as_str(),
            format!("{:?}", c.role).to_lowercase(),
            count(c.missing as u64)
        ));
    }
    s.push_str(&format!("\nnext: gyre data {}\n", r.dataset));
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
