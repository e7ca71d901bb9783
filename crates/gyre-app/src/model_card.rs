//! `MODEL_CARD.md` of an export: what the run is, what data it saw and why the data is what it
//! is (the edits and their reasons), how well it does with intervals, where it fails, which
//! suites it passes, and how to feed the exported model. Every string from users (reasons,
//! predicates, names, categories) is escaped, so it reads as text, never as Markdown.

use crate::export::InputsSpec;
use crate::{RunReport, SlicesReport};
use gyre_core::Edit;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One suite's part of the card: what it is and its metrics' intervals.
pub(crate) struct SuiteCard {
    pub name: String,
    pub definition: String,
    pub requirements: Vec<String>,
    /// 95% interval per metric.
    pub intervals: BTreeMap<String, [f64; 2]>,
}

pub(crate) struct Card<'a> {
    /// The run with every suite scored (metrics and requirement checks).
    pub run: &'a RunReport,
    pub classes: &'a [String],
    /// The edits in effect in the run's version, oldest first.
    pub edits: Vec<&'a Edit>,
    pub suites: &'a [SuiteCard],
    pub slices: &'a SlicesReport,
    pub slices_shown: usize,
    pub resamples: usize,
    pub seed: u64,
    pub inputs: &'a InputsSpec,
}

/// Categories listed per feature in the card; inputs.json has them all.
const CATEGORIES_SHOWN: usize = 12;

/// Text as Markdown shows it literally, on one line (safe in a table cell).
pub(crate) fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            '&' => out.push_str("&amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// A gyre identifier or value (a run id, a param, a metric name) as inline code: backticks
/// cannot end it early and a pipe cannot end a table cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'").replace('|', "\\|"))
}

/// A value with four decimals, or as given when it is large.
fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

pub(crate) fn render(c: &Card<'_>) -> String {
    let r = c.run;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(s, "# Model card: run {}\n", code(&r.run));
    let _ = writeln!(
        s,
        "Written by `gyre export`. The model is in `model.onnx` (how to feed it: the last \
         section and `inputs.json`); its per-example holdout predictions are in \
         `predictions.parquet`.\n"
    );
    overview(&mut s, c);
    data(&mut s, c);
    metrics(&mut s, c);
    slices(&mut s, c);
    suites(&mut s, c);
    usage(&mut s, c);
    s
}

fn overview(s: &mut String, c: &Card<'_>) {
    let r = c.run;
    let task = match r.task {
        gyre_core::Task::Regression => "regression".to_string(),
        t => format!(
            "{t}; classes, in order: {}",
            c.classes
                .iter()
                .map(|x| md(x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let gyre = match &r.git_commit {
        Some(g) => format!("{} (project at git commit {})", md(&r.gyre_version), md(g)),
        None => md(&r.gyre_version),
    };
    let _ = writeln!(s, "## Run\n\n| | |\n|---|---|");
    for (k, v) in [
        ("run", code(&r.run)),
        ("learner", md(&r.learner)),
        ("seed", r.seed.to_string()),
        ("task", task),
        ("dataset", md(&r.dataset)),
        ("data version", code(&r.version)),
        (
            "rows",
            format!("{} training, {} holdout", r.rows.train, r.rows.holdout),
        ),
        (
            "trained",
            format!("{} by {}", md(&r.created_at), md(&r.created_by)),
        ),
        ("gyre", gyre),
    ] {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s, "\nParams (every default filled in):\n");
    match r.params.as_object() {
        Some(p) if !p.is_empty() => {
            for (k, v) in p {
                let _ = writeln!(s, "- {} = {}", code(k), code(&v.to_string()));
            }
        }
        _ => {
            let _ = writeln!(s, "- {}", code(&r.params.to_string()));
        }
    }
    s.push('\n');
}

fn data(s: &mut String, c: &Card<'_>) {
    let _ = writeln!(s, "## Data\n");
    if c.edits.is_empty() {
        let _ = writeln!(
            s,
            "Version {} of dataset {} is the data as imported: no edits.\n",
            code(&c.run.version),
            md(&c.run.dataset)
        );
        return;
    }
    let _ = writeln!(
        s,
        "Version {} of dataset {} is the data as imported with these edits, oldest first \
         (reverted edits and their reverts left out), each with the reason given for it:\n",
        code(&c.run.version),
        md(&c.run.dataset)
    );
    let _ = writeln!(
        s,
        "| edit | kind | change | rows affected | author | time | why |\n|---|---|---|---|---|---|---|"
    );
    for e in &c.edits {
        let _ = writeln!(
            s,
            "| #{} | {} | {} | {} | {} | {} | {} |",
            e.id,
            e.kind.name(),
            md(&e.kind.describe()),
            e.rows_affected,
            md(&e.author),
            md(&e.time),
            md(&e.why)
        );
    }
    s.push('\n');
}

fn metrics(s: &mut String, c: &Card<'_>) {
    let _ = writeln!(
        s,
        "## Metrics\n\nOn each suite's rows of the holdout. 95% intervals: percentile bootstrap \
         over the suite's rows ({} Poisson replicates, seed {}).\n",
        c.resamples, c.seed
    );
    for suite in c.suites {
        let Some(m) = c.run.metrics.get(&suite.name) else {
            continue;
        };
        let rows = c
            .run
            .suites
            .iter()
            .find(|x| x.name == suite.name)
            .map_or(0, |x| x.rows);
        let _ = writeln!(s, "### {} ({rows} rows)\n", md(&suite.name));
        let _ = writeln!(s, "| metric | value | 95% interval |\n|---|---|---|");
        for (name, v) in m {
            let primary = if *name == c.run.primary_metric {
                " (primary)"
            } else {
                ""
            };
            let iv = suite
                .intervals
                .get(name)
                .map_or("n/a".to_string(), |[lo, hi]| {
                    format!("[{}, {}]", num(*lo), num(*hi))
                });
            let _ = writeln!(s, "| {}{primary} | {} | {iv} |", code(name), num(*v));
        }
        s.push('\n');
    }
}

fn slices(s: &mut String, c: &Card<'_>) {
    let sl = c.slices;
    let _ = writeln!(s, "## Failure slices\n");
    if sl.slices.is_empty() {
        let _ = writeln!(
            s,
            "No holdout slice has an error far above the average ({} {} over {} rows).\n",
            sl.error_metric,
            num(sl.average_error),
            sl.rows
        );
        return;
    }
    let _ = writeln!(
        s,
        "The holdout slices where the {} is highest above its average of {} over {} rows \
         (SliceLine; all of them: `gyre slices {}`):\n",
        sl.error_metric.replace('_', " "),
        num(sl.average_error),
        sl.rows,
        c.run.run
    );
    let _ = writeln!(
        s,
        "| slice | rows | {} | x average |\n|---|---|---|---|",
        sl.error_metric.replace('_', " ")
    );
    for x in sl.slices.iter().take(c.slices_shown) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} |",
            md(&x.predicate),
            x.size,
            num(x.error),
            x.error_ratio
        );
    }
    s.push('\n');
}

fn suites(s: &mut String, c: &Card<'_>) {
    let _ = writeln!(
        s,
        "## Suites\n\n| suite | rows | definition | requirements | result |\n|---|---|---|---|---|"
    );
    for suite in c.suites {
        let Some(res) = c.run.suites.iter().find(|x| x.name == suite.name) else {
            continue;
        };
        let reqs = if suite.requirements.is_empty() {
            "none".to_string()
        } else {
            md(&suite.requirements.join(", "))
        };
        let result = if res.passed {
            "passed".to_string()
        } else {
            format!("FAILED: {}", md(&res.failures.join("; ")))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {reqs} | {result} |",
            md(&suite.name),
            res.rows,
            md(&suite.definition)
        );
    }
    s.push('\n');
}

fn usage(s: &mut String, c: &Card<'_>) {
    let i = c.inputs;
    let _ = writeln!(
        s,
        "## Using model.onnx\n\nInput `{}`: a {} tensor [N, {}], one row per example, the \
         features in the order below. A categorical feature is given as its category's code \
         (its position in the feature's list, from 0); a missing value as NaN (gyre treats \
         +-inf as missing too); a category not in the list (unseen in the data) as NaN, which \
         is what gyre's server does with it. Output `{}`: a {} tensor [N, {}]: {}. \
         `holdout_inputs.parquet` holds the holdout rows in this form, and feeding them to the \
         model gives `predictions.parquet`'s scores. The model needs an ONNX runtime with \
         `ai.onnx.ml` opset 5 and its `TreeEnsemble` (tested with onnxruntime 1.32).\n",
        i.input,
        i.dtype,
        i.shape.1,
        i.output.name,
        i.output.dtype,
        i.output.columns.len(),
        md(&i.output.columns.join(", "))
    );
    let _ = writeln!(
        s,
        "| column | feature | kind | categories (code: value) |\n|---|---|---|---|"
    );
    for f in &i.features {
        let cats = if f.categories.is_empty() {
            String::new()
        } else {
            let mut shown: Vec<String> = f
                .categories
                .iter()
                .take(CATEGORIES_SHOWN)
                .enumerate()
                .map(|(code, v)| format!("{code}: {}", md(v)))
                .collect();
            if f.categories.len() > CATEGORIES_SHOWN {
                shown.push(format!(
                    "... ({} in all, in inputs.json)",
                    f.categories.len()
                ));
            }
            shown.join(", ")
        };
        let _ = writeln!(s, "| {} | {} | {} | {cats} |", f.index, md(&f.name), f.kind);
    }
    let _ = writeln!(
        s,
        "\n```python\nimport numpy as np, onnxruntime as ort\n\
         session = ort.InferenceSession(\"model.onnx\")\n\
         x = np.full((1, {}), np.nan)  # fill in one row per example, columns as above\n\
         {} = session.run([\"{}\"], {{\"{}\": x}})[0]\n```",
        i.shape.1, i.output.name, i.output.name, i.input
    );
}

#[cfg(test)]
mod tests {
    use super::{code, md};

    #[test]
    fn user_text_is_escaped_for_markdown() {
        assert_eq!(md("plain text, 0.85"), "plain text, 0.85");
        assert_eq!(md("a | b"), "a \\| b");
        assert_eq!(md("*bold* _it_ `code`"), "\\*bold\\* \\_it\\_ \\`code\\`");
        assert_eq!(md("<script>&"), "\\<script\\>&amp;");
        assert_eq!(md("[link](x)"), "\\[link\\](x)");
        assert_eq!(md("two\nlines"), "two lines");
        assert_eq!(md("back\\slash"), "back\\\\slash");
        assert_eq!(code("num_leaves"), "`num_leaves`");
        assert_eq!(code("a`b|c"), "`a'b\\|c`");
    }
}
