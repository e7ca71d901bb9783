//! Static charts as SVG, drawn on the server: no chart library to vendor, and a chart is in the
//! page the moment it loads. A point's value shows on hover through its `<title>`.

use crate::html::esc;
use std::fmt::Write;

const W: f64 = 420.0;
const H: f64 = 300.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 36.0;
const PAD_T: f64 = 12.0;
const PAD_R: f64 = 12.0;

pub struct Series {
    pub name: String,
    /// CSS class: `s0`, `s1`, ...
    pub class: &'static str,
    pub points: Vec<(f64, f64)>,
    /// One hover text per point; points with one are drawn as dots.
    pub tips: Vec<String>,
    pub line: bool,
}

pub struct XyChart<'a> {
    pub id: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: (f64, f64),
    pub y: (f64, f64),
    pub series: Vec<Series>,
    /// Draw the line y = x (ROC's chance line, a perfect calibration, predicted = actual).
    pub diagonal: bool,
}

fn scale(v: f64, (lo, hi): (f64, f64), a: f64, b: f64) -> f64 {
    if hi > lo {
        a + (v - lo) / (hi - lo) * (b - a)
    } else {
        a
    }
}

fn axes(s: &mut String, x: (f64, f64), y: (f64, f64), x_label: &str, y_label: &str) {
    let (x0, x1, y0, y1) = (PAD_L, W - PAD_R, H - PAD_B, PAD_T);
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\"/>\
         <line class=\"axis\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\"/>"
    );
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let (vx, vy) = (x.0 + f * (x.1 - x.0), y.0 + f * (y.1 - y.0));
        let (px, py) = (scale(vx, x, x0, x1), scale(vy, y, y0, y1));
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            y0 + 14.0,
            tick(vx),
            x0 - 4.0,
            py + 4.0,
            tick(vy)
        );
    }
    let _ = write!(
        s,
        "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text class=\"label\" transform=\"translate(12,{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (x0 + x1) / 2.0,
        H - 4.0,
        esc(x_label),
        (y0 + y1) / 2.0,
        esc(y_label)
    );
}

fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 || (v.fract() == 0.0 && v.abs() < 1e12) {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub fn xy(c: &XyChart<'_>) -> String {
    let mut s = format!(
        "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(c.id),
        esc(&format!("{} against {}", c.y_label, c.x_label))
    );
    axes(&mut s, c.x, c.y, c.x_label, c.y_label);
    let px = |v: f64| scale(v, c.x, PAD_L, W - PAD_R);
    let py = |v: f64| scale(v, c.y, H - PAD_B, PAD_T);
    if c.diagonal {
        let lo = c.x.0.max(c.y.0);
        let hi = c.x.1.min(c.y.1);
        let _ = write!(
            s,
            "<line class=\"diagonal\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
            px(lo),
            py(lo),
            px(hi),
            py(hi)
        );
    }
    for series in &c.series {
        let _ = write!(
            s,
            "<g class=\"series {}\" data-name=\"{}\" data-points=\"{}\">",
            series.class,
            esc(&series.name),
            series.points.len()
        );
        if series.line && series.points.len() > 1 {
            s.push_str("<polyline points=\"");
            for &(x, y) in &series.points {
                let _ = write!(s, "{:.1},{:.1} ", px(x), py(y));
            }
            s.push_str("\"/>");
        }
        for (i, &(x, y)) in series.points.iter().enumerate() {
            if let Some(tip) = series.tips.get(i) {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\"><title>{}</title></circle>",
                    px(x),
                    py(y),
                    if series.line { 2.5 } else { 2.0 },
                    esc(tip)
                );
            }
        }
        s.push_str("</g>");
    }
    if c.series.len() > 1 {
        for (i, series) in c.series.iter().enumerate() {
            let _ = write!(
                s,
                "<text class=\"legend {}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                series.class,
                PAD_L + 8.0,
                PAD_T + 12.0 + 14.0 * i as f64,
                esc(&series.name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars: a label, a length and a hover text each; `max` is the full length.
pub fn hbars(id: &str, items: &[(String, f64, String)], max: f64) -> String {
    let row = 22.0;
    let label_w = 260.0;
    let w = 640.0;
    let h = row * items.len() as f64 + 8.0;
    let mut s = format!(
        "<svg class=\"chart bars\" id=\"{}\" viewBox=\"0 0 {w} {h}\" data-bars=\"{}\">",
        esc(id),
        items.len()
    );
    for (i, (label, value, tip)) in items.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let len = if max > 0.0 {
            (value / max).clamp(0.0, 1.0) * (w - label_w - 70.0)
        } else {
            0.0
        };
        let shown: String = label.chars().take(44).collect();
        let _ = write!(
            s,
            "<g class=\"bar\"><title>{}</title><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"{:.1}\"/>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            esc(tip),
            label_w - 6.0,
            y + 14.0,
            esc(&shown),
            y + 3.0,
            row - 6.0,
            label_w + len + 4.0,
            y + 14.0,
            esc(&crate::html::num(*value))
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars of several series on the same bins, side by side (a histogram pair).
pub fn grouped_bars(id: &str, bins: &[String], series: &[(&str, Vec<f64>)], unit: &str) -> String {
    let n = bins.len().max(1);
    let k = series.len().max(1);
    let (w, h) = (560.0, 220.0);
    let (x0, x1, y0, y1) = (PAD_L, w - PAD_R, h - 60.0, PAD_T);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max);
    let mut s = format!(
        "<svg class=\"chart hist\" id=\"{}\" viewBox=\"0 0 {w} {h}\" data-bins=\"{n}\">",
        esc(id)
    );
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\"/>\
         <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        x0 - 4.0,
        y1 + 8.0,
        esc(&format!("{}{unit}", tick(max)))
    );
    let slot = (x1 - x0) / n as f64;
    let bar = slot * 0.8 / k as f64;
    for (b, label) in bins.iter().enumerate() {
        for (j, (name, values)) in series.iter().enumerate() {
            let v = values.get(b).copied().unwrap_or(0.0);
            let hgt = if max > 0.0 { v / max * (y0 - y1) } else { 0.0 };
            let x = x0 + slot * b as f64 + slot * 0.1 + bar * j as f64;
            let _ = write!(
                s,
                "<rect class=\"s{j}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{hgt:.1}\">\
                 <title>{}: {} {}{unit}</title></rect>",
                y0 - hgt,
                esc(label),
                esc(name),
                esc(&tick_value(v))
            );
        }
        let shown: String = label.chars().take(14).collect();
        let _ = write!(
            s,
            "<text class=\"tick\" transform=\"translate({:.1},{:.1}) rotate(-40)\" text-anchor=\"end\">{}</text>",
            x0 + slot * (b as f64 + 0.5),
            y0 + 10.0,
            esc(&shown)
        );
    }
    for (j, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            s,
            "<text class=\"legend s{j}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            x1 - 140.0,
            y1 + 12.0 + 14.0 * j as f64,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

fn tick_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Metrics where a smaller value is better (the forest plot colours by better or worse).
pub fn lower_is_better(metric: &str) -> bool {
    matches!(
        metric,
        "log_loss" | "brier" | "rmse" | "mae" | "mse" | "ece" | "error"
    )
}

/// A forest plot: each row's estimate and 95% interval around zero, coloured by whether the
/// whole interval is on the better side (`up`), the worse side (`down`) or straddles zero.
pub fn forest(id: &str, rows: &[(String, f64, f64, f64)]) -> String {
    let row = 24.0;
    let (w, label_w) = (640.0, 170.0);
    let h = row * rows.len() as f64 + 30.0;
    let span = rows
        .iter()
        .flat_map(|&(_, d, lo, hi)| [d.abs(), lo.abs(), hi.abs()])
        .filter(|v| v.is_finite())
        .fold(1e-9_f64, f64::max);
    let (x0, x1) = (label_w, w - 20.0);
    let px = |v: f64| scale(v, (-span, span), x0, x1);
    let mut s = format!(
        "<svg class=\"chart forest\" id=\"{}\" viewBox=\"0 0 {w} {h}\" data-rows=\"{}\">\
         <line class=\"zero\" x1=\"{:.1}\" y1=\"0\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
        esc(id),
        rows.len(),
        px(0.0),
        px(0.0),
        h - 20.0
    );
    for (i, (name, d, lo, hi)) in rows.iter().enumerate() {
        let y = 14.0 + row * i as f64;
        let sign = if lower_is_better(name) { -1.0 } else { 1.0 };
        let (blo, bhi) = if sign > 0.0 { (*lo, *hi) } else { (-hi, -lo) };
        let class = if blo > 0.0 {
            "up"
        } else if bhi < 0.0 {
            "down"
        } else {
            "noise"
        };
        let _ = write!(
            s,
            "<g class=\"{class}\"><title>{}: {:+.4} [{:+.4}, {:+.4}]</title>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\"/></g>",
            esc(name),
            d,
            lo,
            hi,
            label_w - 8.0,
            y + 4.0,
            esc(name),
            px(*lo),
            px(*hi),
            px(*d)
        );
    }
    let _ = write!(
        s,
        "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:+.4}</text>\
         <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">0</text>\
         <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:+.4}</text></svg>",
        x0,
        h - 6.0,
        -span,
        px(0.0),
        h - 6.0,
        x1,
        h - 6.0,
        span
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hover_texts_are_escaped_and_counted() {
        let svg = xy(&XyChart {
            id: "roc",
            x_label: "fpr",
            y_label: "tpr",
            x: (0.0, 1.0),
            y: (0.0, 1.0),
            series: vec![Series {
                name: "<b>".into(),
                class: "s0",
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                tips: vec!["t <1>".into(), "t 2".into()],
                line: true,
            }],
            diagonal: true,
        });
        assert!(svg.contains("data-points=\"2\""));
        assert!(svg.contains("<title>t &lt;1&gt;</title>"));
        assert!(!svg.contains("<b>"));
    }
}
