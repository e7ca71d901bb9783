//! `gyre why ROW`.

use crate::cli::Cli;
use crate::output::{self, short};
use std::process::ExitCode;

pub fn run(cli: &Cli, row: &str, dataset: Option<&str>) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.why(row, dataset)?;
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
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
