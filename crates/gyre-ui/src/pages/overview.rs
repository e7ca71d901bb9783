//! `/`: the champion and its alias history, the newest runs, open findings, the newest journal
//! entries, and the monitor's summary when the project has a prediction log.

use super::{Out, to_json};
use crate::html::{esc, num, run_link, table};
use gyre_app::{App, AppError, JournalQuery, RunField, RunsQuery};

const NEWEST: usize = 8;

pub fn page(app: &mut App) -> Result<Out, AppError> {
    let aliases = app.aliases()?;
    let runs = app.runs_page(&RunsQuery {
        sort: RunField::Created,
        descending: true,
        filters: Vec::new(),
        limit: NEWEST,
        offset: 0,
    })?;
    let findings = app.findings()?;
    let open: Vec<_> = findings
        .findings
        .iter()
        .filter(|f| f.state == "open")
        .collect();
    let journal = app.journal_page(&JournalQuery {
        limit: NEWEST,
        ..JournalQuery::default()
    })?;
    let has_log = app.root().join(".gyre").join("log.db").is_file();
    let champion = aliases.aliases.iter().find(|a| a.alias == "champion");
    let monitor = if has_log && champion.is_some() {
        Some(app.monitor(None)?)
    } else {
        None
    };

    let mut b = String::new();
    b.push_str("<section class=\"cards\">");
    match champion {
        Some(c) => {
            b.push_str(&format!(
                "<div class=\"card\" id=\"champion\"><h2>Champion</h2><p class=\"big\">{}</p><ol class=\"history\">",
                run_link(&c.run)
            ));
            for e in c.history.iter().rev() {
                b.push_str(&format!(
                    "<li><span class=\"when\">{}</span> {} {} by {}{}: {}</li>",
                    esc(&e.time),
                    esc(&e.action),
                    run_link(&e.run),
                    esc(&e.who),
                    if e.forced { " <b>(forced)</b>" } else { "" },
                    esc(&e.why)
                ));
            }
            b.push_str("</ol></div>");
        }
        None => b.push_str(
            "<div class=\"card\" id=\"champion\"><h2>Champion</h2><p>none yet: promote a run from a diff page</p></div>",
        ),
    }
    b.push_str(&format!(
        "<div class=\"card\"><h2>Findings</h2><p class=\"big\"><a href=\"/findings\">{} open</a></p><p>{} in all</p></div>",
        open.len(),
        findings.findings.len()
    ));
    if let Some(m) = &monitor {
        let drifted = m.features.iter().filter(|f| f.drifted).count();
        b.push_str(&format!(
            "<div class=\"card\" id=\"monitor-summary\"><h2><a href=\"/monitor\">Monitor</a></h2>\
             <p class=\"big\">{} predictions</p><p>{} feedback labels · {} drifted features{}</p></div>",
            m.predictions,
            m.feedback,
            drifted,
            m.models
                .first()
                .map(|w| format!(" · p99 {:.2} ms", w.latency_p99_ms))
                .unwrap_or_default()
        ));
    }
    b.push_str("</section>");

    b.push_str("<h2>Newest runs</h2>");
    b.push_str(&table(
        "runs",
        &["run", "created", "by", "learner", "holdout"],
        runs.runs.iter().map(|r| {
            let primary = r
                .metrics
                .get("holdout")
                .and_then(|m| m.get(&r.primary_metric))
                .map_or("n/a".into(), |v| {
                    format!("{} {}", r.primary_metric, num(*v))
                });
            vec![
                run_link(&r.run),
                esc(&r.created_at),
                esc(&r.created_by),
                esc(&r.learner),
                esc(&primary),
            ]
        }),
    ));
    b.push_str(&format!(
        "<p><a href=\"/runs\">all {} runs</a></p>",
        runs.total
    ));

    b.push_str("<h2>Open findings</h2>");
    if open.is_empty() {
        b.push_str("<p>none</p>");
    } else {
        b.push_str(&table(
            "findings",
            &["#", "kind", "finding", "run"],
            open.iter().take(NEWEST).map(|f| {
                vec![
                    f.id.to_string(),
                    esc(&f.kind),
                    esc(&f.title),
                    run_link(&f.run),
                ]
            }),
        ));
    }

    b.push_str("<h2>Newest journal entries</h2>");
    b.push_str(&table(
        "journal",
        &["#", "when", "who", "command", "why"],
        journal.entries.iter().map(|e| {
            vec![
                e.seq.to_string(),
                esc(&e.time),
                esc(&e.user),
                format!("<code>{}</code>", esc(&e.command)),
                esc(e.why.as_deref().unwrap_or("")),
            ]
        }),
    ));
    if let Some(m) = &monitor
        && let Some(ab) = &m.ab_test
    {
        b.push_str(&format!(
            "<p>A/B test: always-valid p = {}</p>",
            esc(&num(ab.p_value))
        ));
    }
    Ok(Out::Page {
        title: "Overview".into(),
        body: b,
        json: serde_json::json!({
            "aliases": to_json(&aliases),
            "runs": to_json(&runs),
            "open_findings": open.iter().map(|f| f.id).collect::<Vec<_>>(),
            "journal": to_json(&journal),
            "monitor": monitor.as_ref().map(to_json),
        }),
    })
}
