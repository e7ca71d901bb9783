//! `/monitor`: per feature, training (reference) and served (live) histograms on the same bins
//! (counts, or shares with `percent=1`), PSI and KS; online quality per model; the A/B test;
//! latency percentiles; errors. Query: `since` (`2h`, `7d`, a date), `percent`.

use super::{Out, to_json};
use crate::html::{esc, num, pct, run_link, table};
use crate::svg;
use gyre_app::{App, AppError};
use std::collections::HashMap;
use std::fmt::Write;

pub fn page(app: &mut App, q: &HashMap<String, String>) -> Result<Out, AppError> {
    let since = q.get("since").filter(|s| !s.is_empty()).map(String::as_str);
    let percent = q.get("percent").is_some_and(|p| p == "1");
    let has_log = app.root().join(".gyre").join("log.db").is_file();
    if !has_log {
        return Ok(Out::Page {
            title: "Monitor".into(),
            body: "<p>no prediction log yet: serve the champion with <code>gyre serve</code></p>"
                .into(),
            json: serde_json::json!({ "predictions": 0 }),
        });
    }
    let m = app.monitor(since)?;
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=\"get\" class=\"filter\"><label>since <input name=\"since\" size=\"12\" value=\"{}\" placeholder=\"2h, 7d, 2026-11-27\"></label> \
         <label><input type=\"checkbox\" name=\"percent\" value=\"1\"{}> percent</label> <button>show</button></form>\
         <p>Champion {} · <b>{}</b> predictions · {} feedback labels{}</p>",
        esc(since.unwrap_or("")),
        if percent { " checked" } else { "" },
        run_link(&m.champion),
        m.predictions,
        m.feedback,
        if m.enough_rows {
            String::new()
        } else {
            " · too few predictions to call drift".into()
        }
    );
    b.push_str("<h2>Models</h2>");
    b.push_str(&table(
        "models",
        &[
            "model",
            "arm",
            "shadow",
            "predictions",
            "requests",
            "p50 ms",
            "p99 ms",
            "labelled",
            "quality",
        ],
        m.models.iter().map(|w| {
            vec![
                run_link(&w.model),
                esc(&w.arm),
                if w.shadow {
                    "yes".into()
                } else {
                    String::new()
                },
                w.predictions.to_string(),
                w.requests.to_string(),
                format!("{:.3}", w.latency_p50_ms),
                format!("{:.3}", w.latency_p99_ms),
                w.labelled.to_string(),
                w.quality
                    .as_ref()
                    .map(|i| {
                        format!(
                            "{} {} [{}, {}]",
                            w.quality_metric,
                            num(i.value),
                            num(i.low),
                            num(i.high)
                        )
                    })
                    .unwrap_or_default(),
            ]
        }),
    ));
    if let Some(ab) = &m.ab_test {
        let _ = write!(
            b,
            "<h2>A/B test</h2><p id=\"ab\">champion {} on {} rows, challenger {} on {} rows: difference {} (always-valid p = {}){}</p>",
            num(ab.champion_rate),
            ab.n_champion,
            num(ab.challenger_rate),
            ab.n_challenger,
            num(ab.delta),
            num(ab.p_value),
            if ab.p_value < 0.05 {
                ": a real difference"
            } else {
                ": not yet distinguishable"
            }
        );
    }
    if let Some(d) = &m.shadow_disagreement {
        let _ = write!(
            b,
            "<p>Shadow disagreement {} [{}, {}]</p>",
            pct(d.value),
            pct(d.low),
            pct(d.high)
        );
    }
    if let Some(psi) = m.score_psi {
        let _ = write!(
            b,
            "<p>Score PSI {} ({})</p>",
            num(psi),
            esc(m.score_level.unwrap_or(""))
        );
    }
    if !m.errors.is_empty() {
        b.push_str("<h2>Errors</h2>");
        b.push_str(&table(
            "errors",
            &["status", "requests"],
            m.errors
                .iter()
                .map(|(s, n)| vec![s.to_string(), n.to_string()]),
        ));
    }
    b.push_str("<h2>Features</h2>");
    b.push_str(&table(
        "drift",
        &["feature", "PSI", "level", "distance", "KS p", "drifted"],
        m.features.iter().map(|f| {
            vec![
                format!("<a href=\"#drift-{0}\">{0}</a>", esc(&f.feature)),
                num(f.psi),
                esc(f.level),
                format!("{} {}", esc(f.method), num(f.distance)),
                f.ks.as_ref().map(|k| num(k.p_value)).unwrap_or_default(),
                if f.drifted {
                    "<b>yes</b>".into()
                } else {
                    String::new()
                },
            ]
        }),
    ));
    if m.windows.len() > 1 {
        b.push_str(
            "<h2>Drift over time</h2><p>PSI per window against the training rows; hover a cell for KS.</p>\
             <table class=\"windows\" id=\"windows\"><thead><tr><th>feature</th>",
        );
        for w in &m.windows {
            let _ = write!(b, "<th title=\"{} rows\">{}</th>", w.rows, esc(&w.start));
        }
        b.push_str("</tr></thead><tbody>");
        for (j, f) in m.features.iter().enumerate() {
            let _ = write!(b, "<tr><th>{}</th>", esc(&f.feature));
            for w in &m.windows {
                if let Some(d) = w.features.get(j) {
                    let level = if d.psi > 0.25 {
                        "major"
                    } else if d.psi > 0.1 {
                        "moderate"
                    } else {
                        "stable"
                    };
                    let ks =
                        d.ks.as_ref()
                            .map(|k| format!("; KS {} (p {})", num(k.statistic), num(k.p_value)))
                            .unwrap_or_default();
                    let _ = write!(
                        b,
                        "<td class=\"num psi-{level}\" title=\"{}: PSI {}{ks} on {} rows\">{}</td>",
                        esc(&w.start),
                        num(d.psi),
                        w.rows,
                        num(d.psi)
                    );
                }
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("<div class=\"charts\">");
    for f in &m.features {
        let (rt, lt): (f64, f64) = f
            .bins
            .iter()
            .fold((0.0, 0.0), |(a, c), x| (a + x.reference, c + x.live));
        let scale = |v: f64, total: f64| {
            if percent && total > 0.0 {
                100.0 * v / total
            } else {
                v
            }
        };
        let labels: Vec<String> = f.bins.iter().map(|x| x.bin.clone()).collect();
        let _ = write!(
            b,
            "<figure id=\"drift-{}\"><figcaption>{} · PSI {} ({})</figcaption>",
            esc(&f.feature),
            esc(&f.feature),
            num(f.psi),
            esc(f.level)
        );
        b.push_str(&svg::grouped_bars(
            &format!("hist-{}", f.feature),
            &labels,
            &[
                (
                    "training",
                    f.bins.iter().map(|x| scale(x.reference, rt)).collect(),
                ),
                ("served", f.bins.iter().map(|x| scale(x.live, lt)).collect()),
            ],
            if percent { "%" } else { "" },
        ));
        b.push_str("</figure>");
    }
    b.push_str("</div>");
    Ok(Out::Page {
        title: "Monitor".into(),
        body: b,
        json: to_json(&m),
    })
}
