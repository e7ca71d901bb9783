//! `/rows/{row}`: a row's story (`gyre why`): its values, the edits that touched it and why, its
//! labels, its predictions across runs, and the champion's reasons for its score.
//! Query: `dataset`, `run` (whose score is explained).

use super::{Out, to_json};
use crate::html::{esc, num, run_link, table};
use crate::svg;
use gyre_app::{App, AppError};
use std::collections::HashMap;
use std::fmt::Write;

pub fn page(app: &mut App, row: &str, q: &HashMap<String, String>) -> Result<Out, AppError> {
    let dataset = q
        .get("dataset")
        .filter(|d| !d.is_empty())
        .map(String::as_str);
    let run = q.get("run").filter(|d| !d.is_empty()).map(String::as_str);
    let why = app.why(row, dataset, run)?;
    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Dataset {} · split {:?} · {} · weight {} · labels: {}</p>",
        esc(&why.dataset),
        why.split,
        if why.in_training {
            "trained on"
        } else {
            "not trained on"
        },
        num(why.weight),
        esc(&why.label_history.join(" → "))
    );
    b.push_str("<h2>Values</h2>");
    b.push_str(&table(
        "values",
        &["column", "value"],
        why.values.iter().map(|(c, v)| vec![esc(c), esc(v)]),
    ));
    b.push_str("<h2>Edits that touched it</h2>");
    if why.edits.is_empty() {
        b.push_str("<p>none</p>");
    } else {
        b.push_str(&table(
            "edits",
            &["edit", "what", "effect on this row", "why", "who", "when"],
            why.edits.iter().map(|e| {
                vec![
                    format!(
                        "{}{}",
                        e.edit,
                        e.reverted_by
                            .map(|r| format!(" (reverted by {r})"))
                            .unwrap_or_default()
                    ),
                    esc(&e.description),
                    esc(&e.effect),
                    esc(&e.why),
                    esc(&e.author),
                    esc(&e.time),
                ]
            }),
        ));
    }
    b.push_str("<h2>Predictions across runs</h2>");
    b.push_str(&table(
        "predictions",
        &["run", "created", "learner", "prediction", "right", "flip"],
        why.predictions.iter().map(|p| {
            vec![
                run_link(&p.run),
                esc(&p.created_at),
                esc(&p.learner),
                esc(&p.prediction),
                p.correct.map_or(
                    String::new(),
                    |c| {
                        if c { "yes".into() } else { "no".into() }
                    },
                ),
                esc(p.flip.unwrap_or("")),
            ]
        }),
    ));
    if let Some(e) = &why.explanation {
        let v = serde_json::to_value(e).unwrap_or_default();
        let _ = write!(
            b,
            "<h2>Why {} scored it so</h2><p>prediction {} · base {} + contributions = {} ({})</p>",
            run_link(v["run"].as_str().unwrap_or("")),
            esc(v["prediction"].as_str().unwrap_or("")),
            num(v["base"].as_f64().unwrap_or(f64::NAN)),
            num(v["raw_score"].as_f64().unwrap_or(f64::NAN)),
            esc(v["scale"].as_str().unwrap_or(""))
        );
        let items: Vec<(String, f64, String)> = v["features"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        let c = f["contribution"].as_f64().unwrap_or(0.0);
                        let label = format!(
                            "{} = {}",
                            f["feature"].as_str().unwrap_or(""),
                            f["value"].as_str().unwrap_or("")
                        );
                        (label.clone(), c.abs(), format!("{label}: {c:+.4}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let max = items.iter().map(|i| i.1).fold(0.0, f64::max);
        b.push_str(&svg::hbars("contributions", &items, max));
    } else if let Some(note) = &why.explanation_note {
        let _ = write!(b, "<p>{}</p>", esc(note));
    }
    Ok(Out::Page {
        title: format!("Row {}", why.row),
        body: b,
        json: to_json(&why),
    })
}
