//! `gyre demo`: one turn of the loop on the bundled UCI Adult data, told in plain words: import,
//! train a champion, find where it fails and which labels look wrong, make one edit with a reason,
//! train a challenger, compare them example by example, and let the gate decide.

use crate::cli::Cli;
use crate::output::{self, count, short};
use gyre_app::{
    App, DiffRequest, EditSpec, ImportRequest, ProjectLocation, SliceParams, SlicesRequest,
    TrainRequest,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// UCI Adult (Becker & Kohavi 1996, CC BY 4.0), bundled so the demo needs no network.
const ADULT: &[u8] = include_bytes!("../../../../data/adult/adult.csv.gz");

/// How many of the most certain label suspects the demo relabels.
const RELABEL: usize = 50;

#[derive(Serialize)]
struct DemoReport {
    dir: PathBuf,
    champion: String,
    challenger: String,
    edits: Vec<i64>,
    relabelled: usize,
    auc_champion: f64,
    auc_challenger: f64,
    negative_flips: usize,
    positive_flips: usize,
    mcnemar_p: f64,
    gate_passed: bool,
    promoted: bool,
}

struct Story {
    quiet: bool,
}

impl Story {
    fn say(&self, text: &str) {
        if !self.quiet {
            output::print(text);
        }
    }
}

struct Bar(ProgressBar);

impl gyre_app::Progress for Bar {
    fn iteration(&self, done: usize, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
    }
}

fn bar(quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template(&format!("  {what} {{bar:30}} {{pos}}/{{len}} trees"))
            .expect("valid template"),
    );
    b
}

fn pick_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let cwd = std::env::current_dir()?;
    let mut candidate = cwd.join("gyre-demo");
    let mut n = 2;
    while candidate.exists() {
        candidate = cwd.join(format!("gyre-demo-{n}"));
        n += 1;
    }
    Ok(candidate)
}

pub fn run(cli: &Cli, dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let story = Story { quiet: cli.json };
    let dir = pick_dir(dir)?;
    let cmd = super::command_line();
    story.say("gyre demo: one turn of the model-improvement loop on the UCI Adult census data\n");
    story.say("(predict whether a person earns more than $50K a year from 14 census fields)\n\n");

    // 1. A project and the data.
    let init = gyre_app::init(&dir, &cmd)?;
    let data_dir = init.project.join("data");
    std::fs::create_dir_all(&data_dir)?;
    let csv = data_dir.join("adult.csv.gz");
    std::fs::write(&csv, ADULT)?;
    let mut app = App::open(ProjectLocation::Explicit(&init.project), &cmd)?;
    let imp = app.import(
        &ImportRequest {
            path: csv.clone(),
            target: "income".into(),
            split_column: Some("split".into()),
            ..Default::default()
        },
        &|_| {},
    )?;
    story.say(&format!(
        "1. Imported {} rows into a new project at {}.\n   {} rows train the model; {} are held out to test it.\n\n",
        count(imp.rows),
        init.project.display(),
        count(imp.splits.get("train").copied().unwrap_or(0) as u64),
        count(imp.splits.get("holdout").copied().unwrap_or(0) as u64)
    ));
    app.suite_add("women", Some("sex = 'Female'"), None, &[], None)?;
    story.say(
        "   A suite named women watches the held-out women (sex = 'Female'): every run is scored\n   on it, and the gate will not let a challenger do significantly worse there.\n\n",
    );

    // 2. The champion.
    let params = vec![
        ("num_iterations".to_string(), "200".to_string()),
        ("learning_rate".to_string(), "0.05".to_string()),
    ];
    story.say("2. Training the first model (gradient-boosted trees, 200 trees)...\n");
    let b = bar(story.quiet, "champion  ");
    let champ = app.train(
        &TrainRequest {
            params: params.clone(),
            ..Default::default()
        },
        &Bar(b.clone()),
    )?;
    b.finish_and_clear();
    let champ_run = champ.run.run.clone();
    let auc = |r: &gyre_app::RunReport| r.metrics["holdout"]["auc"];
    let acc = |r: &gyre_app::RunReport| r.metrics["holdout"]["accuracy"];
    story.say(&format!(
        "   Run {} is right on {:.1}% of the held-out people (AUC {:.4}), trained in {:.2} s.\n",
        short(&champ_run),
        100.0 * acc(&champ.run),
        auc(&champ.run),
        champ.run.timings.get("train_s").copied().unwrap_or(0.0)
    ));
    app.promote(
        &champ_run,
        None,
        Some("the first model: our baseline"),
        false,
    )?;
    story.say("   It becomes the champion: the model we would serve.\n\n");

    // 3. Where it fails.
    let slices = app.slices(&SlicesRequest {
        run: champ_run.clone(),
        suite: None,
        params: SliceParams {
            k: 3,
            ..Default::default()
        },
        error: None,
    })?;
    story.say(&format!(
        "3. Where does it fail? Overall it is wrong {:.1}% of the time, but much more often here:\n",
        100.0 * slices.average_error
    ));
    for s in &slices.slices {
        story.say(&format!(
            "   - {}  ({} people, wrong {:.0}% of the time)\n",
            s.predicate,
            count(s.size as u64),
            100.0 * s.error
        ));
    }
    let issues = app.label_issues(&champ_run, 5, None)?;
    story.say(&format!(
        "\n   Which training labels look wrong? Cross-validating the same model (5 folds) flags {} of {} rows.\n   The most certain ones:\n",
        count(issues.flagged as u64),
        count(issues.rows as u64)
    ));
    for x in issues.issues.iter().take(3) {
        story.say(&format!(
            "   - row {}: labelled {}, but the model gives {:.1}% to {}\n",
            x.row,
            x.given,
            100.0 * x.confidence,
            x.suggested
        ));
    }

    // 4. One edit, with a reason.
    let chosen: Vec<String> = issues
        .issues
        .iter()
        .filter(|x| x.confidence >= 0.95)
        .take(RELABEL)
        .map(|x| x.row.to_string())
        .collect();
    let to_high: Vec<String> = issues
        .issues
        .iter()
        .filter(|x| x.confidence >= 0.95 && chosen.contains(&x.row.to_string()))
        .filter(|x| x.suggested == ">50K")
        .map(|x| x.row.to_string())
        .collect();
    let to_low: Vec<String> = chosen
        .iter()
        .filter(|r| !to_high.contains(r))
        .cloned()
        .collect();
    let why = "confident learning: the champion's 5-fold predictions disagree with these labels at >= 95% (demo: trusted without a manual check)";
    let mut edits: Vec<i64> = Vec::new();
    for (rows, to) in [(&to_low, "<=50K"), (&to_high, ">50K")] {
        if rows.is_empty() {
            continue;
        }
        let e = app.edit(
            None,
            &EditSpec::Relabel {
                rows: Some(rows.clone()),
                predicate: None,
                to: to.into(),
                new_class: false,
            },
            Some(why),
        )?;
        edits.push(e.edit);
    }
    let parts: Vec<String> = [(&to_low, "<=50K"), (&to_high, ">50K")]
        .iter()
        .filter(|(rows, _)| !rows.is_empty())
        .zip(&edits)
        .map(|((rows, to), e)| format!("edit {e}: {} rows to {to}", rows.len()))
        .collect();
    story.say(&format!(
        "\n4. Steering: relabel the {} training rows the model is most certain about, one edit per\n   new label ({}), with the reason\n   \"{why}\".\n   (In a real project someone checks them first; every edit is kept with its reason: gyre log.)\n\n",
        chosen.len(),
        parts.join("; ")
    ));

    // 5. The challenger, compared example by example.
    story.say("5. Training the challenger on the edited data, same settings...\n");
    let b = bar(story.quiet, "challenger");
    let chal = app.train(
        &TrainRequest {
            params,
            ..Default::default()
        },
        &Bar(b.clone()),
    )?;
    b.finish_and_clear();
    let chal_run = chal.run.run.clone();
    let d = app.diff(&DiffRequest {
        base: champ_run.clone(),
        candidate: chal_run.clone(),
        suite: None,
        rows: false,
        resamples: None,
        seed: None,
    })?;
    let m = &d.metrics["auc"];
    let f = d.flips.clone().unwrap_or_default();
    let p = d.mcnemar_p.unwrap_or(1.0);
    story.say(&format!(
        "   Run {}: AUC {:.4} -> {:.4} ({:+.4}; 95% interval [{:+.4}, {:+.4}]).\n",
        short(&chal_run),
        m.base,
        m.candidate,
        m.delta,
        m.ci95[0],
        m.ci95[1]
    ));
    story.say(&format!(
        "   Example by example: {} people it now gets wrong that the champion got right, {} the other way.\n",
        f.negative, f.positive
    ));
    story.say(&format!(
        "   McNemar's test on those flips: p = {:.3}, {}.\n",
        p,
        if p < 0.05 {
            "more flips one way than chance would give"
        } else {
            "as many each way as chance would give"
        }
    ));
    if let Some(why) = super::diff::significance_note(&d) {
        story.say(&wrap(&format!("({why})"), 96, "   "));
    }
    if let Some(s) = d.regressed_slices.first() {
        story.say(&format!(
            "   Where it got worse most: {} ({} people)\n",
            s.predicate,
            count(s.size as u64)
        ));
    }

    // 6. The gate decides.
    let promote = app.promote(
        &chal_run,
        None,
        Some("relabelled the most certain label errors"),
        false,
    )?;
    story.say("\n6. The gate (the promotion policy in gyre.toml):\n");
    for c in &promote.gate.checks {
        story.say(&format!(
            "   [{}] {}: {}\n",
            if c.passed { "ok" } else { "FAIL" },
            c.name,
            c.detail
        ));
    }
    if promote.promoted {
        story.say(&format!(
            "   Passed: run {} is the new champion.\n",
            short(&chal_run)
        ));
    } else {
        story.say(&format!(
            "   Not promoted: run {} stays champion. The edits stay recorded; undo them with\n   {}, or try another lever.\n",
            short(&champ_run),
            edits
                .iter()
                .map(|e| format!("gyre edit revert {e} --why \"...\""))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    story.say(&format!(
        "\nThe project is an ordinary gyre project. Go on by hand:\n  cd {}\n  gyre log          # everything done, by whom and why\n  gyre runs         # both runs\n  gyre diff {} {}\n  gyre slices champion\n  gyre aliases      # the champion's history\n  gyre serve        # serve the champion over HTTP (add --challenger RUN --shadow)\n  gyre monitor      # drift and online quality of what was served\n  gyre ui           # all of it in a browser: runs, the diff, label review, data, journal\n",
        init.project.display(),
        short(&champ_run),
        short(&chal_run)
    ));
    if cli.json {
        output::json(&DemoReport {
            dir: init.project.clone(),
            champion: champ_run,
            challenger: chal_run,
            edits,
            relabelled: chosen.len(),
            auc_champion: m.base,
            auc_challenger: m.candidate,
            negative_flips: f.negative,
            positive_flips: f.positive,
            mcnemar_p: p,
            gate_passed: promote.gate.passed,
            promoted: promote.promoted,
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` as lines of at most `width` characters, each starting with `indent`.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > width {
            out.push_str(&format!("{indent}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{indent}{line}\n"));
    }
    out
}
