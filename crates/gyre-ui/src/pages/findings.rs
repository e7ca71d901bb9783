//! `/findings`: triage open findings: accept (let it slide) or fix, each with a reason.
//! Query: `state` (`open` by default, or `accepted`, `fixing`, `fixed`, `all`), `kind`.

use super::{Out, to_json};
use crate::html::{esc, run_link};
use gyre_app::{App, AppError};
use std::collections::HashMap;
use std::fmt::Write;

pub fn page(app: &mut App, q: &HashMap<String, String>) -> Result<Out, AppError> {
    let report = app.findings()?;
    let state = q.get("state").map_or("open", String::as_str);
    let kind = q.get("kind").filter(|k| !k.is_empty());
    let shown: Vec<_> = report
        .findings
        .iter()
        .filter(|f| state == "all" || f.state == state)
        .filter(|f| kind.is_none_or(|k| &f.kind == k))
        .collect();
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=\"get\" class=\"filter\"><label>state <select name=\"state\">{}</select></label> \
         <label>kind <input name=\"kind\" size=\"10\" value=\"{}\"></label> <button>filter</button></form>",
        ["open", "accepted", "fixing", "fixed", "all"]
            .iter()
            .map(|s| format!(
                "<option{}>{s}</option>",
                if *s == state { " selected" } else { "" }
            ))
            .collect::<String>(),
        esc(kind.map_or("", String::as_str))
    );
    if shown.is_empty() {
        b.push_str("<p>no findings here</p>");
    }
    b.push_str("<ol class=\"findings\">");
    for f in &shown {
        let _ = write!(
            b,
            "<li class=\"finding {state}\" id=\"finding-{id}\"><div class=\"head\">#{id} <span class=\"kind\">{kind}</span> \
             <b>{title}</b> · found by {run} · <span class=\"state\">{state}</span></div>",
            id = f.id,
            kind = esc(&f.kind),
            title = esc(&f.title),
            run = run_link(&f.run),
            state = esc(&f.state)
        );
        if !f.history.is_empty() {
            b.push_str("<ul class=\"history\">");
            for e in &f.history {
                let _ = write!(
                    b,
                    "<li>{} {} by {}{}</li>",
                    esc(&e.time),
                    esc(&e.state),
                    esc(&e.who),
                    e.why
                        .as_deref()
                        .map(|w| format!(": {}", esc(w)))
                        .unwrap_or_default()
                );
            }
            b.push_str("</ul>");
        }
        if f.state == "open" || f.state == "fixing" {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/findings/{}/decide\" class=\"action\">\
                 <label>why <input name=\"why\" required size=\"50\"></label> \
                 <button name=\"decision\" value=\"accept\">accept (let it slide)</button> \
                 <button name=\"decision\" value=\"fix\">fix (the next edits are linked)</button></form>",
                f.id
            );
        }
        b.push_str("</li>");
    }
    b.push_str("</ol>");
    Ok(Out::Page {
        title: format!("Findings ({} {state})", shown.len()),
        body: b,
        json: to_json(&report),
    })
}

/// POST `/findings/{id}/decide` with `decision` (`accept` or `fix`) and `why`.
pub fn decide(app: &mut App, id: i64, form: &HashMap<String, String>) -> Result<Out, AppError> {
    let decision = form.get("decision").map_or("", String::as_str);
    app.finding_decide(id, decision, form.get("why").map(String::as_str))?;
    Ok(Out::Redirect(format!("/findings?state=all#finding-{id}")))
}
