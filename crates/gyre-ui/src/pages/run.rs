//! `/runs/{run}`: metrics; ROC and precision-recall curves (the threshold on hover); the
//! reliability diagram with ECE; the confusion matrix; feature importance; failure slices as
//! bars of size and error; suites. Regression: predicted against actual, and residuals.

use super::{Out, to_json};
use crate::html::{esc, num, table, url};
use crate::svg::{self, Series, XyChart};
use gyre_app::{App, AppError, CurvesReport, ShowReport, SlicesRequest};
use std::fmt::Write;

pub fn page(app: &mut App, run: &str) -> Result<Out, AppError> {
    let shown = app.show(run)?;
    let id = shown.run.run.clone();
    let curves = app.run_curves(&id)?;
    let slices = app.slices(&SlicesRequest {
        run: id.clone(),
        suite: None,
        params: gyre_eval::slices::SliceParams::default(),
        error: None,
    })?;
    let mut b = String::new();
    summary(&mut b, &shown);
    charts(&mut b, &curves);
    importance(&mut b, &shown);

    let _ = write!(
        b,
        "<h2>Failure slices</h2><p>Where the {} is far above its average ({}) on {} rows; a bar's length is the slice's error, its label the rows it holds.</p>",
        esc(slices.error_metric),
        num(slices.average_error),
        slices.rows
    );
    if slices.slices.is_empty() {
        b.push_str("<p>no slice stands out</p>");
    } else {
        let max = slices.slices.iter().map(|s| s.error).fold(0.0, f64::max);
        let items: Vec<(String, f64, String)> = slices
            .slices
            .iter()
            .map(|s| {
                (
                    format!("{} ({} rows)", s.predicate, s.size),
                    s.error,
                    format!(
                        "{}: {} rows, error {} ({:.1}x average)",
                        s.predicate,
                        s.size,
                        num(s.error),
                        s.error_ratio
                    ),
                )
            })
            .collect();
        b.push_str(&svg::hbars("slices", &items, max));
    }
    let _ = write!(
        b,
        "<p><a href=\"/review/{}\">review this run's suspected label errors</a></p>",
        url(&id)
    );
    Ok(Out::Page {
        title: format!("Run {}", crate::html::short(&id)),
        body: b,
        json: serde_json::json!({
            "show": to_json(&shown),
            "curves": to_json(&curves),
            "slices": to_json(&slices),
        }),
    })
}

fn summary(b: &mut String, shown: &ShowReport) {
    let r = &shown.run;
    let _ = write!(
        b,
        "<dl class=\"facts\"><dt>run</dt><dd class=\"id\">{}</dd><dt>learner</dt><dd>{}</dd>\
         <dt>dataset</dt><dd>{}</dd><dt>version</dt><dd class=\"id\">{}</dd><dt>seed</dt><dd>{}</dd>\
         <dt>created</dt><dd>{} by {}</dd><dt>params</dt><dd class=\"params\"><code>{}</code></dd></dl>",
        esc(&r.run),
        esc(&r.learner),
        esc(&r.dataset),
        esc(&r.version),
        r.seed,
        esc(&r.created_at),
        esc(&r.created_by),
        esc(&r
            .params
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default())
    );
    b.push_str("<h2>Metrics</h2>");
    let names: Vec<&String> = r
        .metrics
        .get("holdout")
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let mut header = vec!["suite"];
    header.extend(names.iter().map(|n| n.as_str()));
    b.push_str(&table(
        "metrics",
        &header,
        r.metrics.iter().map(|(suite, m)| {
            let mut row = vec![esc(suite)];
            row.extend(names.iter().map(|n| {
                let v = m.get(*n).map_or(String::new(), |v| num(*v));
                format!(
                    "<span data-suite=\"{}\" data-metric=\"{}\">{v}</span>",
                    esc(suite),
                    esc(n)
                )
            }));
            row
        }),
    ));
    b.push_str("<h2>Suites</h2>");
    b.push_str(&table(
        "suites",
        &["suite", "rows", "result"],
        r.suites.iter().map(|s| {
            vec![
                esc(&s.name),
                s.rows.to_string(),
                if s.passed {
                    "<span class=\"pass\">passed</span>".into()
                } else {
                    format!(
                        "<span class=\"fail\">FAILED</span> {}",
                        esc(&s.failures.join("; "))
                    )
                },
            ]
        }),
    ));
}

fn charts(b: &mut String, c: &CurvesReport) {
    b.push_str("<h2>Curves</h2><div class=\"charts\">");
    let positive = c.positive_class.as_deref().unwrap_or("positive");
    if let Some(roc) = &c.curves.roc {
        let auc: f64 = roc
            .windows(2)
            .map(|w| (w[1].x - w[0].x) * (w[1].y + w[0].y) / 2.0)
            .sum();
        let _ = write!(
            b,
            "<figure><figcaption>ROC ({} positive; area {})</figcaption>",
            esc(positive),
            num(auc)
        );
        b.push_str(&svg::xy(&XyChart {
            id: "roc",
            x_label: "false positive rate",
            y_label: "true positive rate",
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            series: vec![Series {
                name: "roc".into(),
                class: "s0",
                points: roc.iter().map(|p| (p.x, p.y)).collect(),
                tips: roc
                    .iter()
                    .map(|p| {
                        format!(
                            "threshold {}: true positive rate {}, false positive rate {}",
                            threshold(p.threshold),
                            num(p.y),
                            num(p.x)
                        )
                    })
                    .collect(),
                line: true,
            }],
            diagonal: true,
        }));
        b.push_str("</figure>");
    }
    if let Some(pr) = &c.curves.pr {
        let _ = write!(
            b,
            "<figure><figcaption>Precision and recall of {}</figcaption>",
            esc(positive)
        );
        b.push_str(&svg::xy(&XyChart {
            id: "pr",
            x_label: "recall",
            y_label: "precision",
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            series: vec![Series {
                name: "pr".into(),
                class: "s0",
                points: pr.iter().map(|p| (p.x, p.y)).collect(),
                tips: pr
                    .iter()
                    .map(|p| {
                        format!(
                            "threshold {}: precision {}, recall {}",
                            threshold(p.threshold),
                            num(p.y),
                            num(p.x)
                        )
                    })
                    .collect(),
                line: true,
            }],
            diagonal: false,
        }));
        b.push_str("</figure>");
    }
    if let Some(cal) = &c.curves.calibration {
        let used: Vec<_> = cal.bins.iter().filter(|b| b.rows > 0).collect();
        let _ = write!(
            b,
            "<figure><figcaption>Reliability (ECE {})</figcaption>",
            num(cal.ece)
        );
        b.push_str(&svg::xy(&XyChart {
            id: "reliability",
            x_label: "predicted probability",
            y_label: "observed rate",
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            series: vec![Series {
                name: "bins".into(),
                class: "s0",
                points: used.iter().map(|b| (b.confidence, b.observed)).collect(),
                tips: used
                    .iter()
                    .map(|b| {
                        format!(
                            "{:.1}-{:.1}: {} rows, predicted {}, observed {}",
                            b.lower,
                            b.upper,
                            b.rows,
                            num(b.confidence),
                            num(b.observed)
                        )
                    })
                    .collect(),
                line: true,
            }],
            diagonal: true,
        }));
        b.push_str("</figure>");
    }
    if let (Some(points), Some(res)) = (&c.curves.predicted_vs_actual, &c.curves.residuals) {
        let lo = points
            .iter()
            .flat_map(|&(a, p)| [a, p])
            .fold(f64::INFINITY, f64::min);
        let hi = points
            .iter()
            .flat_map(|&(a, p)| [a, p])
            .fold(f64::NEG_INFINITY, f64::max);
        b.push_str("<figure><figcaption>Predicted against actual</figcaption>");
        b.push_str(&svg::xy(&XyChart {
            id: "predicted-actual",
            x_label: "actual",
            y_label: "predicted",
            x: (lo, hi),
            y: (lo, hi),
            series: vec![Series {
                name: "rows".into(),
                class: "s0",
                points: points.clone(),
                tips: points
                    .iter()
                    .map(|(a, p)| format!("actual {}, predicted {}", num(*a), num(*p)))
                    .collect(),
                line: false,
            }],
            diagonal: true,
        }));
        b.push_str("</figure><figure><figcaption>Residuals (predicted - actual)</figcaption>");
        let labels: Vec<String> = res
            .iter()
            .map(|b| format!("{}..{}", num(b.lower), num(b.upper)))
            .collect();
        b.push_str(&svg::grouped_bars(
            "residuals",
            &labels,
            &[("rows", res.iter().map(|b| b.rows as f64).collect())],
            "",
        ));
        b.push_str("</figure>");
    }
    b.push_str("</div>");
    if let Some(conf) = &c.curves.confusion {
        b.push_str("<h2>Confusion matrix</h2><table class=\"confusion\" id=\"confusion\"><thead><tr><th>actual \\ predicted</th>");
        for name in &c.classes {
            let _ = write!(b, "<th>{}</th>", esc(name));
        }
        b.push_str("</tr></thead><tbody>");
        let max = conf
            .counts
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(1)
            .max(1);
        for (i, row) in conf.counts.iter().enumerate() {
            let _ = write!(
                b,
                "<tr><th>{}</th>",
                esc(c.classes.get(i).map_or("", String::as_str))
            );
            for (j, &n) in row.iter().enumerate() {
                // Shade by count in ten steps (classes in CSS: no inline styles under the CSP).
                let shade = (n * 9).div_ceil(max);
                let _ = write!(
                    b,
                    "<td class=\"num shade{shade}{}\" data-count=\"{n}\">{n}</td>",
                    if i == j { " diag" } else { "" }
                );
            }
            b.push_str("</tr>");
        }
        b.push_str("</tbody></table>");
    }
}

fn threshold(t: f64) -> String {
    if t.is_infinite() {
        "above every score".into()
    } else {
        num(t)
    }
}

fn importance(b: &mut String, shown: &ShowReport) {
    b.push_str("<h2>Feature importance</h2>");
    match (&shown.importance, &shown.importance_note) {
        (Some(i), _) => {
            let _ = write!(
                b,
                "<p>Mean |contribution| to the score ({}) over {} holdout rows.</p>",
                esc(&i.scale),
                i.rows
            );
            let max = i
                .features
                .iter()
                .map(|f| f.mean_abs_contribution)
                .fold(0.0, f64::max);
            let items: Vec<(String, f64, String)> = i
                .features
                .iter()
                .map(|f| {
                    (
                        f.feature.clone(),
                        f.mean_abs_contribution,
                        format!("{}: {}", f.feature, num(f.mean_abs_contribution)),
                    )
                })
                .collect();
            b.push_str(&svg::hbars("importance", &items, max));
        }
        (None, Some(note)) => {
            let _ = write!(b, "<p>none: {}</p>", esc(note));
        }
        _ => b.push_str("<p>none</p>"),
    }
}
