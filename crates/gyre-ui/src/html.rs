//! HTML by hand: every string that came from data goes through [`esc`]. A template engine would
//! add a proc-macro build for a dozen pages whose whole safety rule is this one function.

use std::fmt::Write;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A number as the CLI shows metrics: four decimals, or an integer as it is.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else if x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

pub fn signed(x: f64) -> String {
    format!("{x:+.4}")
}

pub fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// The first 12 characters of an id, as the CLI shows it.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn run_link(id: &str) -> String {
    format!(
        "<a class=\"id\" href=\"/runs/{}\">{}</a>",
        url(id),
        esc(short(id))
    )
}

pub fn row_link(row: u64) -> String {
    format!("<a href=\"/rows/{row}\">{row}</a>")
}

/// A table: header cells (escaped) and rows of cells that are already HTML.
pub fn table(class: &str, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut s = format!("<table class=\"{class}\"><thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

pub const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/findings", "Findings"),
    ("/data", "Data"),
    ("/monitor", "Monitor"),
    ("/journal", "Journal"),
    ("/review/champion", "Label review"),
];

/// The whole page around a body.
pub fn layout(title: &str, project: &str, body: &str) -> String {
    let mut nav = String::new();
    for (href, name) in NAV {
        let _ = write!(nav, "<a href=\"{href}\">{name}</a>");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · gyre</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/assets/ui.css\">\
         <script src=\"/assets/ui.js\" defer></script></head><body>\
         <header><span class=\"brand\">gyre</span><span class=\"project\">{p}</span><nav>{nav}</nav></header>\
         <main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title),
        p = esc(project),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(url("a b/<c>"), "a%20b%2F%3Cc%3E");
    }
}
