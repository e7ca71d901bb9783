//! `gyre ablate RUN [--jobs N]`.

use crate::cli::Cli;
use crate::output::{self, short};
use std::process::ExitCode;

pub fn run(cli: &Cli, run: &str, jobs: Option<usize>) -> anyhow::Result<ExitCode> {
    let r = super::open_with_executor(cli)?.ablate(run, jobs)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "what each edit is worth to run {} ({}; retrained without it, same learner, params and seed)\n",
        short(&r.run),
        r.primary_metric
    );
    if r.edits.is_empty() {
        s.push_str("  the run's version has no edits\n");
    }
    for e in &r.edits {
        let d = &e.metric_delta_without;
        let verdict = if d.ci95[1] < 0.0 {
            "it helps"
        } else if d.ci95[0] > 0.0 {
            "it hurts"
        } else {
            "no clear effect"
        };
        s.push_str(&format!(
            "  #{} {}\n      why: {}\n      without it: {} {:.4} -> {:.4} ({:+.4}, 95% CI [{:+.4}, {:+.4}]): {verdict}{}\n",
            e.edit,
            e.description,
            e.why,
            r.primary_metric,
            d.base,
            d.candidate,
            d.delta,
            d.ci95[0],
            d.ci95[1],
            if e.cached { " (cached)" } else { "" }
        ));
        for x in &e.suites {
            s.push_str(&format!(
                "      suite {}: {:+.4} [{:+.4}, {:+.4}]\n",
                x.suite, x.delta_without.delta, x.delta_without.ci95[0], x.delta_without.ci95[1]
            ));
        }
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}
