//! `/review/{run}`: label review of a run's suspected label errors, keyboard first.
//! j/k move; a accepts the suggestion; g keeps the given label; x excludes the row; 1-9 pick a
//! class; u undoes; Enter applies the queued decisions with the batch's reason (typed once,
//! kept until changed). Decisions become the CLI's edits through `App::review_labels`.
//! Query: `limit` (suspects shown, default 200), `folds` (default 5).

use super::{Out, param_usize, to_json};
use crate::html::{esc, num, row_link, run_link, url};
use gyre_app::{App, AppError, RowDecision};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write;

const SHOWN: usize = 200;

pub fn page(app: &mut App, run: &str, q: &HashMap<String, String>) -> Result<Out, AppError> {
    app.set_command(&format!("gyre ui: label-issues {run}"));
    let limit = param_usize(q, "limit", SHOWN);
    let folds = param_usize(q, "folds", 5);
    let issues = app.label_issues(run, folds, Some(limit))?;
    let brief = app.run_brief(&issues.run)?;
    let ids: Vec<u64> = issues.issues.iter().map(|i| i.row).collect();
    let rows = app.rows_table(Some(&brief.dataset), &ids)?;
    let schema_classes = brief.classes;
    let kept = app.kept_labels(&brief.dataset)?;
    let by_row: HashMap<u64, &gyre_app::ShownRow> = rows.rows.iter().map(|r| (r.row, r)).collect();

    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Run {} flags {} of {} training rows as suspected label errors ({}-fold confident learning); {}.</p>",
        run_link(&issues.run),
        issues.flagged,
        issues.rows,
        issues.folds,
        if issues.reliable {
            "the out-of-fold model is strong enough for its suspects to be worth a look".to_string()
        } else {
            format!(
                "<b>not reliable</b>: {}",
                esc(issues
                    .reason
                    .as_deref()
                    .unwrap_or("the suspects look like hard rows"))
            )
        }
    );
    let classes_json = serde_json::to_string(&schema_classes).unwrap_or_else(|_| "[]".into());
    let _ = write!(
        b,
        "<section id=\"review\" data-run=\"{run}\" data-apply=\"/review/{run_url}/apply\" data-classes=\"{classes}\">\
         <div class=\"review-bar\"><label>reason for this batch <input id=\"why\" size=\"60\" placeholder=\"e.g. checked against the source records\"></label>\
         <span id=\"pending\">0 decisions queued</span> <button id=\"apply\">apply (Enter)</button></div>\
         <p class=\"keys\">keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous · <kbd>a</kbd> accept the suggestion · \
         <kbd>g</kbd> keep the given label · <kbd>x</kbd> exclude the row · <kbd>1</kbd>-<kbd>9</kbd> pick a class ({class_keys}) · \
         <kbd>u</kbd> undo · <kbd>Enter</kbd> apply</p><p id=\"status\" role=\"status\"></p><ol class=\"suspects\">",
        run = esc(&issues.run),
        run_url = url(&issues.run),
        classes = esc(&classes_json),
        class_keys = schema_classes
            .iter()
            .take(9)
            .enumerate()
            .map(|(i, c)| format!("{} {}", i + 1, esc(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, s) in issues.issues.iter().enumerate() {
        let shown = by_row.get(&s.row);
        let state = match shown {
            Some(r) if !r.in_training => "excluded".to_string(),
            Some(r) if r.label != s.given => format!("relabelled to {}", r.label),
            _ if kept.binary_search(&s.row).is_ok() => "kept the given label".to_string(),
            _ => String::new(),
        };
        let _ = write!(
            b,
            "<li class=\"suspect{}\" tabindex=\"-1\" data-row=\"{}\" data-given=\"{}\" data-suggested=\"{}\">\
             <div class=\"head\"><span class=\"n\">{}</span> row {} · given <b class=\"given\">{}</b> ({}) · suggested <b class=\"suggested\">{}</b> ({}) \
             <span class=\"decision\">{}</span></div>",
            if i == 0 { " current" } else { "" },
            s.row,
            esc(&s.given),
            esc(&s.suggested),
            i + 1,
            row_link(s.row),
            esc(&s.given),
            num(s.self_confidence),
            esc(&s.suggested),
            num(s.confidence),
            esc(&state)
        );
        if let Some(r) = shown {
            b.push_str("<dl class=\"values\">");
            for (c, v) in rows.columns.iter().zip(&r.values) {
                let _ = write!(b, "<dt>{}</dt><dd>{}</dd>", esc(c), esc(v));
            }
            b.push_str("</dl>");
        }
        b.push_str("</li>");
    }
    b.push_str("</ol></section>");
    Ok(Out::Page {
        title: format!("Label review of {}", crate::html::short(&issues.run)),
        body: b,
        json: serde_json::json!({ "label_issues": to_json(&issues), "rows": to_json(&rows) }),
    })
}

#[derive(Deserialize)]
struct ApplyBody {
    why: Option<String>,
    decisions: Vec<RowDecision>,
}

/// POST `/review/{run}/apply` with `{"why": ..., "decisions": [{"row": 7, "decision":
/// "relabel", "to": ">50K"}, {"row": 9, "decision": "keep"}, ...]}`.
pub fn apply(app: &mut App, run: &str, body: &[u8]) -> Result<Out, AppError> {
    let body: ApplyBody = serde_json::from_slice(body).map_err(|e| {
        AppError::invalid(format!(
            "the decisions are not valid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let dataset = app.run_brief(run)?.dataset;
    let report = app.review_labels(Some(&dataset), &body.decisions, body.why.as_deref())?;
    Ok(Out::Json(to_json(&report)))
}
