//! `/runs`: every run, sorted and filtered by the store, a page at a time; pick two to diff.
//! Query: `sort` (a field; `-` first for descending; default `-created`), `where` (conditions
//! such as `auc >= 0.92, learner = gbdt`), `limit`, `offset`.

use super::{Out, pager, param_usize, to_json};
use crate::html::{esc, num, run_link, url};
use gyre_app::{App, AppError, RunsQuery, parse_run_filters, run_field};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

pub const PAGE: usize = 50;

pub fn page(app: &mut App, q: &HashMap<String, String>) -> Result<Out, AppError> {
    let sort_text = q
        .get("sort")
        .filter(|s| !s.is_empty())
        .map_or("-created", String::as_str);
    let (descending, sort_name) = match sort_text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sort_text),
    };
    let filter_text = q.get("where").map_or("", String::as_str);
    let query = RunsQuery {
        sort: run_field(sort_name)?,
        descending,
        filters: parse_run_filters(filter_text)?,
        limit: param_usize(q, "limit", PAGE),
        offset: param_usize(q, "offset", 0),
    };
    let page = app.runs_page(&query)?;
    let champion = app
        .aliases()?
        .aliases
        .into_iter()
        .filter(|a| a.alias == "champion")
        .map(|a| a.run)
        .next();

    // Metric columns: every holdout metric on this page. Param columns: those that differ
    // between the page's runs (the rest are shown on hover).
    let metric_names: BTreeSet<&str> = page
        .runs
        .iter()
        .filter_map(|r| r.metrics.get("holdout"))
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    let mut param_values: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &page.runs {
        if let Some(obj) = r.params.as_object() {
            for (k, v) in obj {
                param_values.entry(k).or_default().insert(v.to_string());
            }
        }
    }
    let varying: Vec<&str> = param_values
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| *k)
        .collect();

    let sort_link = |field: &str, label: &str| {
        let next = if sort_name == field && !descending {
            format!("-{field}")
        } else if sort_name == field
            || matches!(field, "created" | "learner" | "who" | "dataset" | "seed")
        {
            // Descending now, or a field read best from the start: ascending.
            field.to_string()
        } else {
            format!("-{field}")
        };
        let arrow = if sort_name == field {
            if descending { " ▼" } else { " ▲" }
        } else {
            ""
        };
        format!(
            "<a href=\"/runs?sort={}&amp;where={}\">{}{arrow}</a>",
            url(&next),
            url(filter_text),
            esc(label)
        )
    };

    let mut b = String::new();
    let _ = write!(
        b,
        "<form class=\"filter\" method=\"get\" action=\"/runs\">\
         <label>where <input name=\"where\" size=\"50\" value=\"{}\" placeholder=\"auc >= 0.92, learner = gbdt, num_leaves = 31\"></label>\
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><button>filter</button></form>",
        esc(filter_text),
        esc(sort_text)
    );
    b.push_str("<form method=\"get\" action=\"/diff\" id=\"pick\"><table class=\"runs\"><thead><tr><th title=\"base\">base</th><th title=\"candidate\">cand.</th>");
    for (f, l) in [
        ("id", "run"),
        ("created", "created"),
        ("who", "by"),
        ("learner", "learner"),
        ("dataset", "dataset"),
        ("version", "version"),
        ("seed", "seed"),
    ] {
        let _ = write!(b, "<th>{}</th>", sort_link(f, l));
    }
    for m in &metric_names {
        let _ = write!(b, "<th class=\"num\">{}</th>", sort_link(m, m));
    }
    for p in &varying {
        let _ = write!(b, "<th>{}</th>", sort_link(&format!("params.{p}"), p));
    }
    b.push_str("</tr></thead><tbody>");
    for r in &page.runs {
        let all_params = r
            .params
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let badge = if champion.as_deref() == Some(r.run.as_str()) {
            " <span class=\"badge\">champion</span>"
        } else {
            ""
        };
        let _ = write!(
            b,
            "<tr data-run=\"{id}\" title=\"{params}\"><td><input type=\"radio\" name=\"base\" value=\"{id}\"></td>\
             <td><input type=\"radio\" name=\"candidate\" value=\"{id}\"></td><td>{link}{badge}</td><td>{created}</td><td>{who}</td>\
             <td>{learner}</td><td>{dataset}</td><td class=\"id\">{version}</td><td>{seed}</td>",
            id = esc(&r.run),
            params = esc(&all_params),
            link = run_link(&r.run),
            created = esc(&r.created_at),
            who = esc(&r.created_by),
            learner = esc(&r.learner),
            dataset = esc(&r.dataset),
            version = esc(crate::html::short(&r.version)),
            seed = r.seed
        );
        for m in &metric_names {
            let v = r
                .metrics
                .get("holdout")
                .and_then(|x| x.get(*m))
                .map_or(String::new(), |v| num(*v));
            let _ = write!(b, "<td class=\"num\" data-metric=\"{}\">{v}</td>", esc(m));
        }
        for p in &varying {
            let v = r.params.get(*p).map_or(String::new(), |v| v.to_string());
            let _ = write!(b, "<td>{}</td>", esc(&v));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table><button id=\"diff-picked\">diff the two picked</button></form>");
    b.push_str(&pager("/runs", q, page.offset, page.limit, page.total));
    Ok(Out::Page {
        title: format!("Runs ({})", page.total),
        body: b,
        json: to_json(&page),
    })
}
