//! `/diff/{base}/{candidate}`: metric deltas with their intervals as a forest plot, the flips
//! (filterable, each row linking to its story), regressed slices, suites before and after, the
//! gate's verdict with its reasons, and Promote: a reason, the gate, and forcing past a failed
//! gate only with a second, explicit confirmation and its own reason (as `--force` does).
//! Query: `flips` (`negative`, `positive` or `all`), `label` (rows with this label), `offset`.

use super::{Out, pager, param_usize, to_json};
use crate::html::{esc, num, pct, row_link, run_link, signed, table, url};
use crate::svg;
use gyre_app::{App, AppError, DiffRequest};
use std::collections::HashMap;
use std::fmt::Write;

const FLIPS_PAGE: usize = 100;

/// The diff page; `notice` is what a promote attempt said (shown above the form).
pub fn page(
    app: &mut App,
    base: &str,
    candidate: &str,
    q: &HashMap<String, String>,
    notice: Option<String>,
) -> Result<Out, AppError> {
    let report = app.diff(&DiffRequest {
        base: base.to_string(),
        candidate: candidate.to_string(),
        suite: None,
        rows: true,
        resamples: None,
        seed: None,
    })?;
    let gate = app.gate(&report.candidate, None)?;
    let champion = app
        .aliases()?
        .aliases
        .into_iter()
        .find(|a| a.alias == "champion")
        .map(|a| a.run);

    let mut b = String::new();
    let _ = write!(
        b,
        "<p>Base {} against candidate {} on {} holdout rows, scored on the labels of version <span class=\"id\">{}</span>.</p>",
        run_link(&report.base),
        run_link(&report.candidate),
        report.rows,
        esc(crate::html::short(&report.labels_version))
    );
    if let Some(n) = &notice {
        let _ = write!(b, "<p class=\"notice\" id=\"notice\">{}</p>", esc(n));
    }

    b.push_str("<h2>Metrics</h2>");
    let rows: Vec<(String, f64, f64, f64)> = report
        .metrics
        .iter()
        .map(|(name, d)| (name.clone(), d.delta, d.ci95[0], d.ci95[1]))
        .collect();
    b.push_str(&svg::forest("forest", &rows));
    b.push_str(&table(
        "metrics",
        &["metric", "base", "candidate", "delta", "95% interval"],
        report.metrics.iter().map(|(name, d)| {
            vec![
                esc(name),
                num(d.base),
                num(d.candidate),
                format!(
                    "<span data-metric=\"{}\">{}</span>",
                    esc(name),
                    signed(d.delta)
                ),
                format!("[{}, {}]", signed(d.ci95[0]), signed(d.ci95[1])),
            ]
        }),
    ));
    if let Some(f) = &report.flips {
        let _ = write!(
            b,
            "<p>Flips: <b>{}</b> rows the candidate now gets wrong ({}), {} it now gets right ({}); McNemar p = {}.</p>",
            f.negative,
            pct(f.negative_rate),
            f.positive,
            pct(f.positive_rate),
            report.mcnemar_p.map_or("n/a".into(), num)
        );
    }

    gate_section(
        &mut b,
        &report.base,
        &report.candidate,
        &gate,
        champion.as_deref(),
    );

    b.push_str("<h2>Suites, before and after</h2>");
    let primary = report.primary_metric.clone();
    b.push_str(&table(
        "suites",
        &[
            "suite",
            "rows",
            &format!("{primary} base"),
            &format!("{primary} candidate"),
            "delta",
            "95% interval",
        ],
        report.suites.iter().map(|s| {
            let d = s.metrics.get(&primary);
            vec![
                esc(&s.name),
                s.rows.to_string(),
                d.map_or(String::new(), |d| num(d.base)),
                d.map_or(String::new(), |d| num(d.candidate)),
                d.map_or(String::new(), |d| signed(d.delta)),
                d.map_or(String::new(), |d| {
                    format!("[{}, {}]", signed(d.ci95[0]), signed(d.ci95[1]))
                }),
            ]
        }),
    ));

    b.push_str("<h2>Where the candidate got worse</h2>");
    if report.regressed_slices.is_empty() {
        b.push_str("<p>no slice of rows got worse more than chance</p>");
    } else {
        let max = report
            .regressed_slices
            .iter()
            .map(|s| s.error)
            .fold(0.0, f64::max);
        let items: Vec<(String, f64, String)> = report
            .regressed_slices
            .iter()
            .map(|s| {
                (
                    format!("{} ({} rows)", s.predicate, s.size),
                    s.error,
                    format!(
                        "{}: negative-flip rate {} in {} rows",
                        s.predicate,
                        num(s.error),
                        s.size
                    ),
                )
            })
            .collect();
        b.push_str(&svg::hbars("regressed", &items, max));
    }

    // The flips, filtered and paged here (the report holds every one).
    let kind = q.get("flips").map_or("negative", String::as_str);
    let label = q.get("label").filter(|l| !l.is_empty());
    let all = report.flipped_rows.as_deref().unwrap_or(&[]);
    let chosen: Vec<_> = all
        .iter()
        .filter(|r| kind == "all" || r.kind == kind)
        .filter(|r| label.is_none_or(|l| &r.label == l))
        .collect();
    let offset = param_usize(q, "offset", 0);
    let _ = write!(
        b,
        "<h2 id=\"flips\">Flipped rows</h2><form method=\"get\" class=\"filter\">\
         <label>show <select name=\"flips\">{}</select></label> \
         <label>label <input name=\"label\" value=\"{}\" size=\"12\"></label> <button>filter</button></form>",
        ["negative", "positive", "all"]
            .iter()
            .map(|k| format!(
                "<option{}>{k}</option>",
                if *k == kind { " selected" } else { "" }
            ))
            .collect::<String>(),
        esc(label.map_or("", String::as_str))
    );
    b.push_str(&table(
        "flips",
        &["row", "label", "base said", "candidate says", "flip"],
        chosen.iter().skip(offset).take(FLIPS_PAGE).map(|r| {
            vec![
                row_link(r.row),
                esc(&r.label),
                esc(&r.base),
                esc(&r.candidate),
                esc(r.kind),
            ]
        }),
    ));
    b.push_str(&pager(
        &format!("/diff/{}/{}", url(base), url(candidate)),
        q,
        offset,
        FLIPS_PAGE,
        chosen.len(),
    ));
    Ok(Out::Page {
        title: format!(
            "Diff {} → {}",
            crate::html::short(&report.base),
            crate::html::short(&report.candidate)
        ),
        body: b,
        json: serde_json::json!({ "diff": to_json(&report), "gate": to_json(&gate) }),
    })
}

fn gate_section(
    b: &mut String,
    base: &str,
    candidate: &str,
    gate: &gyre_app::GateReport,
    champion: Option<&str>,
) {
    let _ = write!(
        b,
        "<h2>Gate</h2><p id=\"verdict\" class=\"{}\">The candidate {} the gate{}.</p><ul class=\"checks\">",
        if gate.passed { "pass" } else { "fail" },
        if gate.passed { "passes" } else { "fails" },
        gate.against
            .as_deref()
            .map(|a| format!(" against the champion {}", crate::html::short(a)))
            .unwrap_or_else(|| " (there is no champion yet)".into())
    );
    for c in &gate.checks {
        let _ = write!(
            b,
            "<li class=\"{}\">[{}] {}: {}</li>",
            if c.passed { "pass" } else { "fail" },
            if c.passed { "ok" } else { "FAIL" },
            esc(&c.name),
            esc(&c.detail)
        );
    }
    b.push_str("</ul>");
    if champion == Some(gate.run.as_str()) {
        b.push_str("<p>The candidate is the champion.</p>");
        return;
    }
    let action = format!("/diff/{}/{}/promote", url(base), url(candidate));
    let expected = esc(champion.unwrap_or(""));
    let _ = write!(
        b,
        "<form method=\"post\" action=\"{action}\" id=\"promote\" class=\"action\">\
         <input type=\"hidden\" name=\"expected_champion\" value=\"{expected}\">\
         <label>why <input name=\"why\" required size=\"60\" placeholder=\"the reason, kept in the journal\"></label> \
         <button name=\"force\" value=\"no\">promote through the gate</button></form>"
    );
    if !gate.passed {
        let _ = write!(
            b,
            "<details id=\"force\"><summary>Force past the failed gate</summary>\
             <form method=\"post\" action=\"{action}\" class=\"action danger\">\
             <input type=\"hidden\" name=\"expected_champion\" value=\"{expected}\">\
             <input type=\"hidden\" name=\"force\" value=\"yes\">\
             <label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I know the gate failed and promote anyway</label><br>\
             <label>why force <input name=\"why\" required size=\"60\" placeholder=\"why the failed checks do not matter here\"></label> \
             <button>force promote</button></form></details>"
        );
    }
}

/// POST `/diff/{base}/{candidate}/promote`: `why`, `force` (`yes` needs `confirm=yes`), and
/// `expected_champion` (the champion the page showed: if it moved since, nothing happens).
pub fn promote(
    app: &mut App,
    base: &str,
    candidate: &str,
    form: &HashMap<String, String>,
) -> Result<Out, AppError> {
    let why = form.get("why").map(|w| w.trim()).filter(|w| !w.is_empty());
    let force = form.get("force").is_some_and(|f| f == "yes");
    if force && form.get("confirm").is_none_or(|c| c != "yes") {
        return Err(AppError::invalid(
            "forcing past a failed gate needs the explicit confirmation",
        ));
    }
    let aliases = app.aliases()?;
    let current = aliases.aliases.iter().find(|a| a.alias == "champion");
    let expected = form.get("expected_champion").map_or("", String::as_str);
    let now = current.map_or("", |a| a.run.as_str());
    if let Some(a) = current
        && now != expected
    {
        let moved = a.history.last();
        return Err(AppError::invalid(format!(
            "the champion moved since this page was loaded: it is now {}{}; reload the diff and decide again",
            crate::html::short(now),
            moved
                .map(|e| format!(" ({} by {} at {})", e.action, e.who, e.time))
                .unwrap_or_default()
        )));
    }
    let report = app.promote(candidate, None, why, force)?;
    let notice = if report.promoted {
        format!(
            "Promoted {} to champion{}.",
            crate::html::short(&report.run),
            if report.forced {
                " (forced past the failed gate)"
            } else {
                ""
            }
        )
    } else {
        "Not promoted: the gate failed (see its checks). Force it only with a reason.".to_string()
    };
    page(app, base, candidate, &HashMap::new(), Some(notice))
}
