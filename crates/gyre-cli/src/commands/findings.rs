//! `gyre findings`, `gyre finding accept|fix ID --why TEXT`.

use crate::cli::Cli;
use crate::output::{self, short};
use gyre_app::Finding;
use std::process::ExitCode;

fn line(f: &Finding) -> String {
    let mut s = format!("#{:<4} {:<9} {:<13} {}\n", f.id, f.state, f.kind, f.title);
    s.push_str(&format!(
        "      found by run {} at {}",
        short(&f.run),
        f.created_at
    ));
    if let Some(r) = &f.fixed_by {
        s.push_str(&format!("; fixed by run {}", short(r)));
    }
    if !f.edits.is_empty() {
        let e: Vec<String> = f.edits.iter().map(|e| format!("#{e}")).collect();
        s.push_str(&format!("; edits {}", e.join(", ")));
    }
    if let Some(why) = f.history.iter().rev().find_map(|e| e.why.as_ref()) {
        s.push_str(&format!("\n      why: {why}"));
    }
    s.push('\n');
    s
}

pub fn list(cli: &Cli) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.findings()?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    if r.findings.is_empty() {
        output::print(
            "no findings yet: gyre train records its worst slices and failed suites here\n",
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    for f in &r.findings {
        s.push_str(&line(f));
    }
    s.push_str("\ndecide: gyre finding accept ID --why TEXT  |  gyre finding fix ID --why TEXT\n");
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

pub fn decide(cli: &Cli, decision: &str, id: i64, why: Option<&str>) -> anyhow::Result<ExitCode> {
    let f = super::open(cli)?.finding_decide(id, decision, why)?;
    if cli.json {
        output::json(&f);
    } else {
        output::print(&line(&f));
    }
    Ok(ExitCode::SUCCESS)
}
