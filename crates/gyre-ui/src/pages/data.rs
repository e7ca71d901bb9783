//! `/data`: each dataset's versions as a timeline of edits (what, why, who, rows affected, and
//! what ablation said each was worth where it was run), and its columns as histograms.
//! Query: `dataset` (default: the project's only one), `row` (jump to a row's story).

use super::{Out, to_json};
use crate::html::{esc, num, run_link, signed};
use crate::svg;
use gyre_app::{App, AppError};
use std::collections::HashMap;
use std::fmt::Write;

pub fn page(app: &mut App, q: &HashMap<String, String>) -> Result<Out, AppError> {
    if let Some(row) = q.get("row").filter(|r| !r.trim().is_empty()) {
        return Ok(Out::Redirect(format!(
            "/rows/{}",
            crate::html::url(row.trim())
        )));
    }
    let dataset = q
        .get("dataset")
        .filter(|d| !d.is_empty())
        .map(String::as_str);
    let data = app.data(dataset)?;
    let Some(ds) = data.datasets.first() else {
        return Ok(Out::Page {
            title: "Data".into(),
            body: "<p>no dataset yet: gyre import FILE --target COLUMN</p>".into(),
            json: to_json(&data),
        });
    };
    let name = dataset.unwrap_or(&ds.name).to_string();
    let versions = app.versions(Some(&name))?;
    let worth = app.ablation_worth()?;
    let histograms = app.column_histograms(Some(&name))?;

    let mut b = String::new();
    if data.datasets.len() > 1 {
        b.push_str("<p>datasets: ");
        for d in &data.datasets {
            let _ = write!(
                b,
                "<a href=\"/data?dataset={}\">{}</a> ",
                crate::html::url(&d.name),
                esc(&d.name)
            );
        }
        b.push_str("</p>");
    }
    let ds = data.datasets.iter().find(|d| d.name == name).unwrap_or(ds);
    let _ = write!(
        b,
        "<p>Dataset <b>{}</b>: {} rows, target <b>{}</b> ({:?}), newest version <span class=\"id\">{}</span>.</p>\
         <form method=\"get\" class=\"filter\"><label>a row's story: row <input name=\"row\" size=\"10\"></label> <button>show</button></form>",
        esc(&ds.name),
        ds.stats.rows,
        esc(&ds.target),
        ds.task,
        esc(crate::html::short(&ds.version))
    );
    b.push_str("<h2>Versions</h2><ol class=\"timeline\">");
    for v in versions.versions.iter().rev() {
        let _ = write!(
            b,
            "<li class=\"version\" data-seq=\"{}\"><div class=\"head\"><span class=\"id\">{}</span> {} <b>{}</b></div>",
            v.seq,
            esc(crate::html::short(&v.version)),
            v.edit.map(|e| format!("edit {e}:")).unwrap_or_default(),
            esc(&v.description)
        );
        let _ = write!(
            b,
            "<p>{} by {} · {} rows affected · {} training rows ({:+}) · {} labels changed</p>",
            esc(&v.created_at),
            esc(v.author.as_deref().unwrap_or("")),
            v.rows_affected,
            v.change.training_rows,
            v.change.training_rows_delta,
            v.change.labels_changed
        );
        if let Some(why) = &v.why {
            let _ = write!(b, "<p class=\"why\">why: {}</p>", esc(why));
        }
        if let Some(e) = v.edit {
            for w in worth.iter().filter(|w| w.edit == e) {
                let d = &w.delta_without;
                let _ = write!(
                    b,
                    "<p class=\"worth\">ablation on {}: {} without it {} [{}, {}] ({})</p>",
                    run_link(&w.run),
                    esc(&w.primary_metric),
                    signed(d.delta),
                    signed(d.ci95[0]),
                    signed(d.ci95[1]),
                    if d.ci95[1] < 0.0 {
                        "the edit helps"
                    } else if d.ci95[0] > 0.0 {
                        "the edit hurts"
                    } else {
                        "within noise"
                    }
                );
            }
        }
        b.push_str("</li>");
    }
    b.push_str("</ol><h2>Columns</h2><div class=\"charts\">");
    for h in &histograms {
        let stats = ds.stats.columns.iter().find(|c| c.name == h.column);
        let _ = write!(
            b,
            "<figure><figcaption>{} ({:?}{}) · {} missing{}</figcaption>",
            esc(&h.column),
            h.kind,
            stats
                .map(|s| format!(", {:?}", s.role).to_lowercase())
                .unwrap_or_default(),
            h.missing,
            stats
                .and_then(|s| s.mean)
                .map(|m| format!(" · mean {}", num(m)))
                .unwrap_or_default()
        );
        let labels: Vec<String> = h.bins.iter().map(|b| b.0.clone()).collect();
        b.push_str(&svg::grouped_bars(
            &format!("column-{}", h.column),
            &labels,
            &[("rows", h.bins.iter().map(|b| b.1 as f64).collect())],
            "",
        ));
        b.push_str("</figure>");
    }
    b.push_str("</div>");
    Ok(Out::Page {
        title: format!("Data: {name}"),
        body: b,
        json: serde_json::json!({
            "data": to_json(&data),
            "versions": to_json(&versions),
            "ablation": to_json(&worth),
            "columns": to_json(&histograms),
        }),
    })
}
