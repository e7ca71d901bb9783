//! `gyre diff BASE CANDIDATE [--suite NAME] [--rows]`.

use crate::cli::Cli;
use crate::output::{self, count, short};
use gyre_app::{DiffReport, DiffRequest};
use std::process::ExitCode;

pub fn run(
    cli: &Cli,
    base: &str,
    candidate: &str,
    suite: Option<&str>,
    rows: bool,
    resamples: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let d = super::open(cli)?.diff(&DiffRequest {
        base: base.into(),
        candidate: candidate.into(),
        suite: suite.map(String::from),
        rows,
        resamples,
        seed: None,
    })?;
    if cli.json {
        output::json(&d);
    } else {
        output::print(&text(&d));
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable diff: the verdict in words first, then the numbers.
pub fn text(d: &DiffReport) -> String {
    let mut s = format!(
        "diff {} (base) -> {} (candidate) on {} holdout rows, labels of version {}\n",
        short(&d.base),
        short(&d.candidate),
        count(d.rows as u64),
        short(&d.labels_version)
    );
    if let Some(p) = &d.positive_class {
        s.push_str(&format!(
            "  positive class {p} (precision, recall, f1, average_precision)\n"
        ));
    }
    for (name, m) in &d.metrics {
        let mark = if *name == d.primary_metric { "*" } else { " " };
        let sig = if m.ci95[0] > 0.0 || m.ci95[1] < 0.0 {
            " (significant)"
        } else {
            ""
        };
        s.push_str(&format!(
            " {mark}{name:<18} {:.4} -> {:.4}  {:+.4}  95% CI [{:+.4}, {:+.4}]{sig}\n",
            m.base, m.candidate, m.delta, m.ci95[0], m.ci95[1]
        ));
    }
    if let (Some(f), Some(p)) = (&d.flips, d.mcnemar_p) {
        s.push_str(&format!(
            "  flips: {} examples got worse (negative flips, {:.2}%), {} got better; McNemar p = {}\n",
            count(f.negative as u64),
            100.0 * f.negative_rate,
            count(f.positive as u64),
            pvalue(p)
        ));
        s.push_str(&format!(
            "  the candidate keeps {:.2}% of the base's right answers (backward trust compatibility)\n",
            100.0 * f.backward_trust_compatibility
        ));
        if let Some(floor) = d.seed_floor {
            s.push_str(&format!(
                "  seed noise floor: {:.2}% of examples flip between seeds alone\n",
                100.0 * floor
            ));
        }
    }
    for sd in d.suites.iter().filter(|x| x.name != "holdout") {
        if let Some(m) = sd.metrics.get(&d.primary_metric) {
            s.push_str(&format!(
                "  suite {:<12} {} {:.4} -> {:.4} ({:+.4}, CI [{:+.4}, {:+.4}]) on {} rows{}\n",
                sd.name,
                d.primary_metric,
                m.base,
                m.candidate,
                m.delta,
                m.ci95[0],
                m.ci95[1],
                count(sd.rows as u64),
                sd.flips
                    .as_ref()
                    .map(|f| format!(", {} negative flips", f.negative))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(why) = significance_note(d) {
        s.push_str(&format!("  {why}\n"));
    }
    if !d.regressed_slices.is_empty() {
        s.push_str(
            "  where the candidate got worse (the share of rows it newly gets wrong, by slice):\n",
        );
        s.push_str(&super::slices::table(
            &d.regressed_slices,
            "negative-flip rate",
        ));
    }
    if let Some(rows) = &d.flipped_rows {
        s.push_str("  flipped rows (row, label, base -> candidate):\n");
        for r in rows {
            s.push_str(&format!(
                "    {:>8}  {}  {} -> {}  ({})\n",
                r.row, r.label, r.base, r.candidate, r.kind
            ));
        }
    }
    s
}

/// When McNemar's test and the primary metric's interval disagree, why both can be right:
/// they ask different questions of the same rows.
pub fn significance_note(d: &DiffReport) -> Option<String> {
    let p = d.mcnemar_p?;
    let m = d.metrics.get(&d.primary_metric)?;
    let interval_significant = m.ci95[0] > 0.0 || m.ci95[1] < 0.0;
    let flips_significant = p < 0.05;
    if interval_significant == flips_significant {
        return None;
    }
    Some(if interval_significant {
        format!(
            "why McNemar says chance while the {} interval excludes 0: McNemar counts only the \
             rows whose right/wrong answer flipped, which are about as many each way; the {} \
             interval weighs every row's score, and a small shift shared by many rows is real \
             even when few answers flip",
            d.primary_metric, d.primary_metric
        )
    } else {
        format!(
            "why McNemar says real while the {} interval includes 0: many more answers flipped one \
             way than the other, but the scores moved too little overall to move {} beyond noise",
            d.primary_metric, d.primary_metric
        )
    })
}

/// A p-value readably: three decimals, or scientific notation when tiny.
fn pvalue(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}
