//! Printing: JSON or readable text on stdout, errors with hints on stderr. A closed pipe
//! (`gyre log | head`) is not an error.

use serde::Serialize;
use std::io::Write;

/// Writes text to stdout; a broken pipe ends output quietly.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write output: {e}");
    }
}

pub fn json<T: Serialize>(value: &T) {
    let mut s = serde_json::to_string_pretty(value).expect("reports serialize");
    s.push('\n');
    print(&s);
}

/// Reports an error on stderr; with `--json`, also as one JSON object on stdout
/// (`{"error", "causes", "hint"}`), so a script reading stdout always reads JSON.
pub fn error(err: &anyhow::Error, as_json: bool) {
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    let hint = err
        .downcast_ref::<gyre_app::AppError>()
        .and_then(|e| e.hint());
    let mut msg = format!("error: {err}");
    for cause in &causes {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    if let Some(hint) = &hint {
        msg.push_str(&format!("\nhint: {hint}"));
    }
    eprintln!("{msg}");
    if as_json {
        json(&serde_json::json!({
            "error": err.to_string(),
            "causes": causes,
            "hint": hint,
        }));
    }
}

/// 48842 -> "48,842".
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number with few significant digits, for tables.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{}", v as i64)
    } else if v.abs() >= 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
