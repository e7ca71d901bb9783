//! `gyre monitor [--since T]`, `gyre feedback import --why TEXT`.

use crate::cli::Cli;
use crate::output::{self, count, short};
use std::process::ExitCode;

pub fn run(cli: &Cli, since: Option<&str>) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.monitor(since)?;
    if cli.json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = format!(
        "champion {}: {} predictions answered{}, {} feedback labels\n",
        short(&r.champion),
        count(r.predictions as u64),
        r.since
            .as_ref()
            .map(|t| format!(" since {t}"))
            .unwrap_or_default(),
        count(r.feedback as u64)
    );
    if r.predictions == 0 {
        s.push_str("nothing served yet: start `gyre serve` and send POST /v1/predict\n");
        output::print(&s);
        return Ok(ExitCode::SUCCESS);
    }
    s.push_str("\nmodels\n");
    for m in &r.models {
        let quality = match &m.quality {
            Some(q) => format!(
                "{} {:.3} [{:.3}, {:.3}] from {} labels",
                m.quality_metric, q.value, q.low, q.high, m.labelled
            ),
            None => "no feedback yet".into(),
        };
        s.push_str(&format!(
            "  {} {:<10}{} {:>9} predictions in {:>9} requests  handler p50 {:.2} ms  p99 {:.2} ms per request  {}\n",
            short(&m.model),
            m.arm,
            if m.shadow { " (shadow)" } else { "         " },
            count(m.predictions as u64),
            count(m.requests as u64),
            m.latency_p50_ms,
            m.latency_p99_ms,
            quality
        ));
    }
    for k in &r.skew {
        s.push_str(&format!(
            "  skew: {} served rows ({:.1}%) have {}; the model can only guess there: {}\n",
            count(k.rows as u64),
            100.0 * k.share,
            k.describe(),
            k.predicate
        ));
    }
    if let Some(d) = &r.shadow_disagreement {
        s.push_str(&format!(
            "  the shadow challenger disagrees with the answer on {:.1}% of rows [{:.1}%, {:.1}%]\n",
            100.0 * d.value,
            100.0 * d.low,
            100.0 * d.high
        ));
    }
    if let Some(t) = &r.ab_test {
        s.push_str(&format!(
            "  A/B: champion right on {:.1}% of {} labelled answers, challenger on {:.1}% of {}; \
             always-valid p = {:.3}{}\n",
            100.0 * t.champion_rate,
            count(t.n_champion as u64),
            100.0 * t.challenger_rate,
            count(t.n_challenger as u64),
            t.p_value,
            if t.p_value < 0.05 {
                " (a real difference; safe to stop the test)"
            } else {
                " (no difference shown yet; keep the test running)"
            }
        ));
    }
    s.push_str(&format!(
        "\ndrift of served inputs against the champion's training rows (PSI: <0.1 stable, 0.1-0.25 moderate, >0.25 major)\n  {:<20} {:>7} {:<9} {:<15} {:>8}\n",
        "feature", "PSI", "level", "method", "distance"
    ));
    if !r.enough_rows {
        s.push_str(&format!(
            "  (fewer than {} rows: too few to call drift; the numbers are shown as they are)\n",
            gyre_app::MONITOR_MIN_ROWS
        ));
    }
    let mut features = r.features.clone();
    features.sort_by(|a, b| b.psi.total_cmp(&a.psi));
    for f in &features {
        s.push_str(&format!(
            "  {:<20} {:>7.3} {:<9} {:<15} {:>8.3}{}\n",
            f.feature,
            f.psi,
            f.level,
            f.method,
            f.distance,
            if f.drifted { "  DRIFT" } else { "" }
        ));
    }
    if r.features.iter().any(|f| f.sampled) {
        s.push_str(&format!(
            "  (distances of numeric features on a uniform sample of {} served values each; PSI counts every row)\n",
            count(gyre_app::MONITOR_DISTANCE_SAMPLE as u64)
        ));
    }
    if let (Some(p), Some(level)) = (r.score_psi, r.score_level) {
        s.push_str(&format!(
            "  score PSI against the holdout's scores: {p:.3} ({level})\n"
        ));
    }
    if !r.errors.is_empty() {
        let e: Vec<String> = r.errors.iter().map(|(k, v)| format!("{v} x {k}")).collect();
        s.push_str(&format!("\nerrors: {}\n", e.join(", ")));
    }
    if !r.findings.new.is_empty() {
        s.push_str(&format!(
            "\nnew drift findings: {} (gyre findings)\n",
            r.findings.new.len()
        ));
    }
    output::print(&s);
    Ok(ExitCode::SUCCESS)
}

pub fn feedback_import(cli: &Cli, why: Option<&str>) -> anyhow::Result<ExitCode> {
    let r = super::open(cli)?.feedback_import(why)?;
    if cli.json {
        output::json(&r);
    } else {
        output::print(&format!(
            "{} labelled served rows added to {} (edit #{}, version {}){}\nnext: gyre train\n",
            r.rows,
            r.dataset,
            r.edit.edit,
            short(&r.edit.version),
            if r.unmatched > 0 {
                format!("; {} labels had no logged prediction", r.unmatched)
            } else {
                String::new()
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}
