//! `gyre log`.

use crate::cli::Cli;
use crate::output;
use std::process::ExitCode;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let report = super::open(cli)?.log()?;
    if cli.json {
        output::json(&report);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    for e in &report.entries {
        s.push_str(&format!("#{:<4} {}  {}\n", e.seq, e.time, e.user));
        s.push_str(&format!("      {}\n", e.command));
        if let Some(why) = &e.why {
            s.push_str(&format!("      why: {why}\n"));
        }
        if !e.objects.is_empty() {
            let objs: Vec<String> = e.objects.iter().map(|o| shorten_object(o)).collect();
            s.push_str(&format!("      touched: {}\n", objs.join(", ")));
        }
    }
    if report.entries.is_empty() {
        s.push_str("the journal is empty\n");
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

/// `version:abcdef...` -> `version:abcdef123456`.
fn shorten_object(o: &str) -> String {
    match o.split_once(':') {
        Some((kind, id)) if id.len() == 64 => format!("{kind}:{}", output::short(id)),
        _ => o.to_string(),
    }
}
