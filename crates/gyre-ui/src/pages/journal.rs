//! `/journal`: who did what, when and why; filtered by person, command and time, newest first.
//! Query: `user`, `command` (text it contains), `since`, `until`, `offset`, `limit`.

use super::{Out, pager, param_usize, to_json};
use crate::html::{esc, table};
use gyre_app::{App, AppError, JournalQuery};
use std::collections::HashMap;
use std::fmt::Write;

const PAGE: usize = 100;

pub fn page(app: &mut App, q: &HashMap<String, String>) -> Result<Out, AppError> {
    let text = |k: &str| q.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let query = JournalQuery {
        user: text("user"),
        command: text("command"),
        since: text("since"),
        until: text("until"),
        limit: param_usize(q, "limit", PAGE),
        offset: param_usize(q, "offset", 0),
    };
    let page = app.journal_page(&query)?;
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=\"get\" class=\"filter\"><label>who <select name=\"user\"><option value=\"\">anyone</option>{}</select></label> \
         <label>command <input name=\"command\" size=\"16\" value=\"{}\" placeholder=\"promote\"></label> \
         <label>since <input name=\"since\" size=\"12\" value=\"{}\" placeholder=\"7d, 2026-11-27\"></label> \
         <label>until <input name=\"until\" size=\"12\" value=\"{}\"></label> <button>filter</button></form>",
        page.users
            .iter()
            .map(|u| format!(
                "<option{}>{}</option>",
                if query.user.as_deref() == Some(u.as_str()) {
                    " selected"
                } else {
                    ""
                },
                esc(u)
            ))
            .collect::<String>(),
        esc(query.command.as_deref().unwrap_or("")),
        esc(query.since.as_deref().unwrap_or("")),
        esc(query.until.as_deref().unwrap_or(""))
    );
    b.push_str(&table(
        "journal",
        &["#", "when", "who", "command", "why", "touched"],
        page.entries.iter().map(|e| {
            vec![
                e.seq.to_string(),
                esc(&e.time),
                esc(&e.user),
                format!("<code>{}</code>", esc(&e.command)),
                esc(e.why.as_deref().unwrap_or("")),
                esc(&e.objects.join(", ")),
            ]
        }),
    ));
    b.push_str(&pager("/journal", q, page.offset, page.limit, page.total));
    Ok(Out::Page {
        title: "Journal".into(),
        body: b,
        json: to_json(&page),
    })
}
