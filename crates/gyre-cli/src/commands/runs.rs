//! `gyre runs`, `gyre show RUN`, `gyre predictions RUN --out FILE`, `gyre predict RUN FILE --out FILE`.

use crate::cli::Cli;
use crate::output::{self, count, num, short};
use std::path::Path;
use std::process::ExitCode;

/// Runs plain `gyre runs` lists: the newest, oldest first (a team's store may hold 100,000).
const NEWEST: usize = 50;

/// `gyre runs`: the newest runs, oldest first, and how many there are in all.
pub fn list(cli: &Cli) -> anyhow::Result<ExitCode> {
    let query = gyre_app::RunsQuery {
        sort: gyre_app::run_field("created")?,
        descending: true,
        filters: Vec::new(),
        limit: NEWEST,
        offset: 0,
    };
    let mut report = super::open(cli)?.runs_page(&query)?;
    report.runs.reverse();
    if cli.json {
        output::json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    if report.runs.is_empty() {
        output::print("no runs yet\n\nnext: gyre train\n");
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = runs_table(&report.runs);
    if report.total > report.runs.len() {
        s.push_str(&format!(
            "\nthe newest {} of {} runs; --sort, --where, --limit and --offset page through all\n",
            report.runs.len(),
            count(report.total as u64)
        ));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

/// `gyre runs --sort FIELD --where CONDITIONS --limit N --offset N`: one page, from the store.
pub fn page(
    cli: &Cli,
    sort: Option<&str>,
    filter: Option<&str>,
    limit: Option<usize>,
    offset: usize,
) -> anyhow::Result<ExitCode> {
    let sort = sort.unwrap_or("-created");
    let (descending, name) = match sort.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sort),
    };
    let query = gyre_app::RunsQuery {
        sort: gyre_app::run_field(name)?,
        descending,
        filters: gyre_app::parse_run_filters(filter.unwrap_or(""))?,
        limit: limit.unwrap_or(50),
        offset,
    };
    let report = super::open(cli)?.runs_page(&query)?;
    if cli.json {
        output::json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = runs_table(&report.runs);
    s.push_str(&format!(
        "\n{}-{} of {} runs\n",
        if report.total == 0 { 0 } else { offset + 1 },
        (offset + report.runs.len()).min(report.total),
        report.total
    ));
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

fn runs_table(runs: &[gyre_app::RunReport]) -> String {
    let mut s = format!(
        "{:<12}  {:<24}  {:<7}  {:<12}  {:>5}  {}\n",
        "run", "created", "learner", "version", "seed", "holdout"
    );
    for r in runs {
        let primary = r
            .metrics
            .get("holdout")
            .and_then(|m| m.get(&r.primary_metric))
            .map_or("n/a".to_string(), |v| {
                format!("{} {v:.4}", r.primary_metric)
            });
        s.push_str(&format!(
            "{:<12}  {:<24}  {:<7}  {:<12}  {:>5}  {}\n",
            short(&r.run),
            r.created_at,
            r.learner,
            short(&r.version),
            r.seed,
            primary
        ));
    }
    s
}

pub fn show(cli: &Cli, run: &str) -> anyhow::Result<ExitCode> {
    let shown = super::open(cli)?.show(run)?;
    let r = &shown.run;
    let code = if r.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    if cli.json {
        output::json(&shown);
        return Ok(code);
    }
    let mut s = super::train::run_summary(r);
    s.push_str(&format!("  created {} by {}\n", r.created_at, r.created_by));
    s.push_str(&format!("  params  {}\n", r.params));
    let suites: Vec<String> = r
        .suites
        .iter()
        .map(|x| format!("{} {}", x.name, if x.passed { "passed" } else { "FAILED" }))
        .collect();
    s.push_str(&format!("  suites  {}\n", suites.join(", ")));
    if let Some(c) = &r.git_commit {
        s.push_str(&format!("  git     {c}\n"));
    }
    if let Some(m) = &shown.external_model {
        s.push_str(&format!("  model   {}\n", m.note));
    }
    if let Some(i) = &shown.importance {
        s.push_str(&importance(i));
    } else if let Some(note) = &shown.importance_note {
        s.push_str(&format!("  importance: none ({note})\n"));
    }
    output::print(&s);
    Ok(code)
}

/// Features shown by importance in the readable output; `--json` has every one.
const TOP_FEATURES: usize = 10;

/// The features' global importance: mean |contribution| over the holdout, largest first.
fn importance(i: &gyre_app::Importance) -> String {
    let over = match i.sample_seed {
        Some(seed) => format!(
            "a sample of {} of the {} holdout rows (seed {seed})",
            count(i.rows as u64),
            count(i.holdout_rows as u64)
        ),
        None => format!("{} holdout rows", count(i.rows as u64)),
    };
    let mut s = format!(
        "  importance (mean |contribution| to the score, in {}, over {over}):\n",
        i.scale
    );
    let shown = &i.features[..i.features.len().min(TOP_FEATURES)];
    let w = shown.iter().map(|f| f.feature.len()).max().unwrap_or(7);
    for f in shown {
        s.push_str(&format!(
            "    {:<w$}  {}\n",
            f.feature,
            num(f.mean_abs_contribution)
        ));
    }
    if i.features.len() > shown.len() {
        s.push_str(&format!(
            "    and {} more features (--json lists every one)\n",
            i.features.len() - shown.len()
        ));
    }
    s
}

pub fn predictions(
    cli: &Cli,
    run: &str,
    suite: Option<&str>,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.export_predictions(run, suite, out)?;
    if cli.json {
        output::json(&r);
    } else {
        output::print(&format!(
            "wrote {} predictions of run {} on {} to {} ({})\n",
            count(r.rows as u64),
            short(&r.run),
            r.suite,
            r.out.display(),
            r.format
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `gyre predict RUN FILE --out FILE [--keep COL]...`.
pub fn predict(
    cli: &Cli,
    run: &str,
    file: &Path,
    out: &Path,
    keep: &[String],
) -> anyhow::Result<ExitCode> {
    let bar = if cli.json {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("scoring {pos} rows ({elapsed})")
                .expect("valid template"),
        );
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
        b
    };
    let result = super::open(cli)?.predict_file(
        &gyre_app::PredictFileRequest {
            run,
            input: file,
            out,
            keep,
        },
        &|rows| bar.set_position(rows as u64),
    );
    bar.finish_and_clear();
    let r = result?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "scored {} rows of {} with run {} in {:.2}s: {} ({})\n",
        count(r.rows as u64),
        r.input.display(),
        short(&r.run),
        r.seconds,
        r.out.display(),
        r.format
    );
    if !r.predicted.is_empty() {
        let labels: Vec<String> = r
            .predicted
            .iter()
            .map(|(l, n)| format!("{l} {}", count(*n as u64)))
            .collect();
        s.push_str(&format!("  predicted: {}\n", labels.join(", ")));
    }
    if !r.classes.is_empty() {
        s.push_str(&format!(
            "  columns: {}prediction, {}\n",
            r.kept.iter().map(|k| format!("{k}, ")).collect::<String>(),
            r.classes
                .iter()
                .map(|c| format!("score_{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (feature, n) in &r.unseen {
        s.push_str(&format!(
            "  {feature}: {} rows with a category never seen in training (read as missing)\n",
            count(*n as u64)
        ));
    }
    if !r.ignored.is_empty() {
        s.push_str(&format!(
            "  not features of the model, ignored: {}\n",
            r.ignored.join(", ")
        ));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

/// `gyre runs import` and `gyre runs holdout`.
pub fn action(cli: &Cli, action: &crate::cli::RunsAction) -> anyhow::Result<ExitCode> {
    use crate::cli::RunsAction;
    match action {
        RunsAction::Import {
            predictions,
            name,
            why,
            model,
            version,
            dataset,
        } => {
            let report = super::open(cli)?.import_run(&gyre_app::ImportRunRequest {
                predictions: predictions.clone(),
                name: name.clone(),
                why: why.clone(),
                model: model.clone(),
                dataset: dataset.clone(),
                version: version.clone(),
            })?;
            Ok(super::train::print_report(cli, &report))
        }
        RunsAction::Holdout {
            out,
            version,
            dataset,
        } => {
            let r = super::open(cli)?.write_holdout(dataset.as_deref(), version.as_deref(), out)?;
            if cli.json {
                output::json(&r);
            } else {
                output::print(&format!(
                    "wrote {} holdout rows of {} version {} to {} (row_id and {} features)\n\nnext: predict them, then gyre runs import PREDICTIONS --name NAME --why TEXT\n",
                    count(r.rows as u64),
                    r.dataset,
                    short(&r.version),
                    r.out.display(),
                    r.features
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
