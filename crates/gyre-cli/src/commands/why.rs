//! `gyre why ROW`.

use crate::cli::Cli;
use crate::output::{self, num, short};
use std::process::ExitCode;

/// Contributions shown in the readable output; `--json` has every feature's.
const TOP: usize = 10;

pub fn run(
    cli: &Cli,
    row: &str,
    dataset: Option<&str>,
    run: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.why(row, dataset, run)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "row {} of {} ({} split{})\n",
        r.row,
        r.dataset,
        r.split.as_str(),
        if r.split == gyre_core::Split::Holdout {
            String::new()
        } else if r.in_training {
            format!(", used for training, weight {}", r.weight)
        } else {
            ", left out of training".to_string()
        }
    );
    let width = r.values.iter().map(|(k, _)| k.len()).max().unwrap_or(4);
    for (k, v) in &r.values {
        s.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    if r.label_history.len() > 1 {
        s.push_str(&format!(
            "  label history: {}\n",
            r.label_history.join(" -> ")
        ));
    }
    if r.edits.is_empty() {
        s.push_str("no edit has touched it\n");
    } else {
        s.push_str("edits that touched it:\n");
        for e in &r.edits {
            s.push_str(&format!(
                "  #{} {}: {}{}\n      why: {} ({}, {})\n",
                e.edit,
                e.description,
                e.effect,
                e.reverted_by
                    .map(|x| format!(" (reverted by #{x})"))
                    .unwrap_or_default(),
                e.why,
                e.author,
                e.time
            ));
        }
    }
    if !r.predictions.is_empty() {
        s.push_str("predictions:\n");
        for p in &r.predictions {
            s.push_str(&format!(
                "  run {} ({})  {}{}{}\n",
                short(&p.run),
                p.learner,
                p.prediction,
                match p.correct {
                    Some(true) => "  right",
                    Some(false) => "  wrong",
                    None => "",
                },
                p.flip.map(|f| format!("  ({f} flip)")).unwrap_or_default()
            ));
        }
    } else if r.split != gyre_core::Split::Holdout {
        s.push_str("runs predict holdout rows only; this is a training row\n");
    }
    if let Some(e) = &r.explanation {
        s.push_str(&explanation(e));
    } else if let Some(note) = &r.explanation_note {
        s.push_str(&format!("no breakdown of the score: {note}\n"));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

/// Why run `e.run` scored the row as it did: its largest contributions, by magnitude.
fn explanation(e: &gyre_app::Explanation) -> String {
    let c = &e.contributions;
    let answer = match e.probability {
        Some(p) => format!("{} (probability {})", e.prediction, num(p)),
        None => e.prediction.clone(),
    };
    let of = c
        .class
        .as_ref()
        .map(|k| format!(" of {k}"))
        .unwrap_or_default();
    let mut s = format!(
        "why run {} says {answer}:\n  {}{of} {} = the training average {} + these contributions\n",
        short(&e.run),
        c.scale,
        num(c.raw_score),
        num(c.base),
    );
    let shown = &c.features[..c.features.len().min(TOP)];
    let fw = shown.iter().map(|f| f.feature.len()).max().unwrap_or(7);
    let vw = shown
        .iter()
        .map(|f| f.value.as_deref().map_or(0, str::len))
        .max()
        .unwrap_or(5);
    for f in shown {
        s.push_str(&format!(
            "  {:<fw$}  {:<vw$}  {:+.4}\n",
            f.feature,
            f.value.as_deref().unwrap_or(""),
            f.contribution
        ));
    }
    if c.features.len() > shown.len() {
        s.push_str(&format!(
            "  and {} more features (--json lists every one)\n",
            c.features.len() - shown.len()
        ));
    }
    s
}
