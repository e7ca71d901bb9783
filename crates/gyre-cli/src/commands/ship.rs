//! `gyre gate`, `gyre promote`, `gyre rollback`, `gyre aliases`.

use crate::cli::Cli;
use crate::output::{self, short};
use gyre_app::GateReport;
use std::process::ExitCode;

fn checks_text(g: &GateReport) -> String {
    let mut s = format!(
        "gate for run {}{}: {}\n",
        short(&g.run),
        g.against
            .as_ref()
            .map(|a| format!(" against {}", short(a)))
            .unwrap_or_default(),
        if g.passed { "PASSED" } else { "FAILED" }
    );
    for c in &g.checks {
        s.push_str(&format!(
            "  [{}] {}: {}\n",
            if c.passed { "ok" } else { "FAIL" },
            c.name,
            c.detail
        ));
    }
    s
}

pub fn gate(cli: &Cli, run: &str, against: Option<&str>) -> anyhow::Result<ExitCode> {
    let g = super::open(cli)?.gate(run, against)?;
    if cli.json {
        output::json(&g);
    } else {
        output::print(&checks_text(&g));
    }
    Ok(if g.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn promote(
    cli: &Cli,
    run: &str,
    why: Option<&str>,
    force: bool,
    alias: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.promote(run, alias, why, force)?;
    if cli.json {
        output::json(&r);
    } else {
        let mut s = checks_text(&r.gate);
        if r.promoted {
            s.push_str(&format!(
                "{} is now run {}{}{}\n",
                r.alias,
                short(&r.run),
                r.previous
                    .as_ref()
                    .map(|p| format!(" (was {})", short(p)))
                    .unwrap_or_default(),
                if r.forced {
                    ", FORCED past a failing gate"
                } else {
                    ""
                }
            ));
        } else {
            s.push_str(&format!(
                "not promoted: {} stays {}\nhint: fix what failed, or pass --force to promote anyway (it is recorded)\n",
                r.alias,
                r.previous.as_deref().map(short).unwrap_or("unset")
            ));
        }
        output::print(&s);
    }
    Ok(if r.promoted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn rollback(cli: &Cli, why: Option<&str>, alias: Option<&str>) -> anyhow::Result<ExitCode> {
    let h = super::open(cli)?.rollback(alias, why)?;
    if cli.json {
        output::json(&h);
    } else {
        output::print(&format!("{} is back to run {}\n", h.alias, short(&h.run)));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn aliases(cli: &Cli) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.aliases()?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    if r.aliases.is_empty() {
        s.push_str("no aliases yet\n\nnext: gyre promote RUN --why TEXT\n");
    }
    for a in &r.aliases {
        s.push_str(&format!("{} -> {}\n", a.alias, short(&a.run)));
        for e in &a.history {
            s.push_str(&format!(
                "  {}  {:<8} {} -> {}  by {}{}: {}\n",
                e.time,
                e.action,
                e.previous.as_deref().map(short).unwrap_or("(none)"),
                short(&e.run),
                e.who,
                if e.forced { " (forced)" } else { "" },
                e.why
            ));
        }
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
