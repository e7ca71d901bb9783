//! Watching a served model: drift of the served inputs against the champion's training rows, the
//! score distribution against its holdout scores, online quality per model from feedback, the
//! challenger's disagreement under shadow traffic, latency and errors. Statistics: gyre-eval's
//! `drift` (ALGORITHMS.md "Drift"). A feature whose drift is major becomes a finding.

use crate::findings::{FindingChanges, FindingDetail};
use crate::request_row::{FieldValue, RequestRow};
use crate::table_view::LoadedVersion;
use crate::watch_stats::{Latencies, Reservoir, Running};
use crate::{App, AppError, now};
use gyre_core::{ColumnKind, Task};
use gyre_eval::drift;
use gyre_learn::Column;
use gyre_store::{FindingRecord, PredictionId};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Fewer served rows than this are too few to call drift.
pub const MIN_ROWS: usize = 100;

/// The most served values per numeric feature that KS and Wasserstein compare (a seeded uniform
/// sample beyond that): both need the values sorted, PSI only bin counts.
pub const DISTANCE_SAMPLE: usize = 1_000_000;

/// One feature's reference distribution: bins fixed on the training rows.
pub struct FeatureReference {
    pub name: String,
    pub kind: ColumnKind,
    /// Decile cut points (numeric features).
    pub edges: Vec<f64>,
    /// Category -> bin (categorical features); the last bin holds missing and unseen values.
    /// FxHash: the server looks up every categorical field of every request here.
    pub categories: FxHashMap<String, usize>,
    /// Training rows per bin.
    pub expected: Vec<f64>,
    /// The training values, sorted, NaN removed (numeric), for KS and Wasserstein.
    pub sorted: Vec<f64>,
}

impl FeatureReference {
    pub fn bins(&self) -> usize {
        self.expected.len()
    }

    fn categorical(&self) -> bool {
        self.kind == ColumnKind::Categorical
    }

    /// The value a served field holds, as a number (NaN for missing) for numeric features.
    pub fn number(&self, v: Option<&FieldValue>) -> f64 {
        v.map_or(f64::NAN, FieldValue::number)
    }

    /// The bin a served value falls in.
    pub fn bin_of(&self, v: Option<&FieldValue>) -> usize {
        if self.categorical() {
            let missing = self.bins() - 1;
            match v.and_then(FieldValue::text) {
                Some(s) => self.categories.get(s).copied().unwrap_or(missing),
                None => missing,
            }
        } else {
            drift::numeric_bin(&self.edges, self.number(v))
        }
    }

    /// A readable name for each bin, in bin order (the UI draws reference and live counts on
    /// these same bins).
    pub fn bin_labels(&self) -> Vec<String> {
        let n = self.bins();
        if self.categorical() {
            let mut labels = vec![String::new(); n];
            for (name, &b) in &self.categories {
                labels[b] = name.clone();
            }
            labels[n - 1] = "missing or unseen".into();
            return labels;
        }
        let e = &self.edges;
        (0..n)
            .map(|b| match b {
                _ if b == n - 1 => "missing".to_string(),
                0 => format!("<= {}", short_number(e[0])),
                _ if b == e.len() => format!("> {}", short_number(e[e.len() - 1])),
                _ => format!("{}..{}", short_number(e[b - 1]), short_number(e[b])),
            })
            .collect()
    }

    fn numeric(name: &str, kind: ColumnKind, values: impl Iterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.collect();
        let edges = drift::decile_edges(&sorted);
        let mut expected = vec![0.0; edges.len() + 2];
        for &x in &sorted {
            expected[drift::numeric_bin(&edges, x)] += 1.0;
        }
        sorted.retain(|x| !x.is_nan());
        sorted.sort_by(f64::total_cmp);
        FeatureReference {
            name: name.to_string(),
            kind,
            edges,
            categories: FxHashMap::default(),
            expected,
            sorted,
        }
    }
}

fn short_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}").trim_end_matches('0').to_string()
    }
}

/// Served values kept per numeric feature and window for its KS test (a seeded reservoir).
const WINDOW_SAMPLE: usize = 500;
/// Hour windows until the log spans more than this many hours; then day windows.
const MAX_HOUR_WINDOWS: usize = 72;

/// Drift in one window of time: PSI on the reference bins and, for numeric features, KS
/// against the training values (on a sample of the window's values).
#[derive(Clone, Debug, Serialize)]
pub struct DriftWindow {
    /// The window's first hour (`2026-12-04T18`) or day (`2026-12-04`), UTC.
    pub start: String,
    pub rows: usize,
    pub features: Vec<WindowDrift>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WindowDrift {
    pub feature: String,
    pub psi: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<drift::Ks>,
}

/// One window's running counts while the log is read.
struct WindowCounts {
    rows: usize,
    bins: Vec<Vec<f64>>,
    samples: Vec<Reservoir>,
}

impl WindowCounts {
    fn new(reference: &DriftReference, key: &str) -> WindowCounts {
        // Seeded by the window's key (FNV-1a), so a window's sample does not depend on others.
        let seed = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        WindowCounts {
            rows: 0,
            bins: reference
                .features
                .iter()
                .map(|f| vec![0.0; f.bins()])
                .collect(),
            samples: (0..reference.features.len())
                .map(|j| Reservoir::new(WINDOW_SAMPLE, seed ^ (0x7769_6e64 + j as u64)))
                .collect(),
        }
    }

    fn merge(&mut self, other: WindowCounts) {
        self.rows += other.rows;
        for (a, b) in self.bins.iter_mut().zip(other.bins) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.samples.iter_mut().zip(other.samples) {
            for v in b.values {
                a.add(v);
            }
        }
    }
}

/// Day windows from hour windows (keys `YYYY-MM-DDTHH` become `YYYY-MM-DD`).
fn by_day(windows: BTreeMap<String, WindowCounts>) -> BTreeMap<String, WindowCounts> {
    let mut days: BTreeMap<String, WindowCounts> = BTreeMap::new();
    for (key, w) in windows {
        let day = key[..key.len().min(10)].to_string();
        match days.get_mut(&day) {
            Some(d) => d.merge(w),
            None => {
                days.insert(day, w);
            }
        }
    }
    days
}

/// One bin of a feature: training (reference) and served (live) rows, on the same bins.
#[derive(Clone, Debug, Serialize)]
pub struct DriftBin {
    pub bin: String,
    pub reference: f64,
    pub live: f64,
}

/// The champion's reference distributions: every feature over its training rows, and its score
/// over its holdout predictions.
pub struct DriftReference {
    pub features: Vec<FeatureReference>,
    pub score: FeatureReference,
}

/// The one number per prediction whose distribution is watched: P(second class) for binary,
/// the top probability for multiclass, the value for regression.
pub fn watched_score(task: Task, scores: &[f64]) -> f64 {
    match task {
        Task::Binary => scores
            .get(1)
            .or(scores.first())
            .copied()
            .unwrap_or(f64::NAN),
        Task::Multiclass => scores.iter().copied().fold(f64::NAN, f64::max),
        Task::Regression => scores.first().copied().unwrap_or(f64::NAN),
    }
}

/// Builds the reference from a loaded version (its training rows) and the run's holdout scores
/// (already reduced by [`watched_score`]).
pub(crate) fn drift_reference(loaded: &LoadedVersion, holdout_scores: &[f64]) -> DriftReference {
    let features = loaded.features();
    let train = loaded.train_rows();
    let mut out = Vec::new();
    for (name, column) in features.names.iter().zip(&features.columns) {
        // A derived feature is a function of raw fields that are watched themselves; served rows
        // carry only the raw fields, so it would read as missing in every one of them.
        if loaded.data.derived.iter().any(|(d, _)| d == name) {
            continue;
        }
        let schema = loaded.schema.column(name).expect("feature in schema");
        out.push(match column {
            Column::Numeric(v) => {
                FeatureReference::numeric(name, schema.kind, train.iter().map(|&r| v[r as usize]))
            }
            Column::Categorical { codes, cardinality } => {
                let k = *cardinality as usize;
                let mut expected = vec![0.0; k + 1];
                for &r in &train {
                    let c = codes[r as usize];
                    expected[if c == u32::MAX { k } else { c as usize }] += 1.0;
                }
                FeatureReference {
                    name: name.clone(),
                    kind: ColumnKind::Categorical,
                    edges: Vec::new(),
                    categories: schema
                        .categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.clone(), i))
                        .collect(),
                    expected,
                    sorted: Vec::new(),
                }
            }
        });
    }
    DriftReference {
        features: out,
        score: FeatureReference::numeric(
            "score",
            ColumnKind::Numeric,
            holdout_scores.iter().copied(),
        ),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub kind: ColumnKind,
    pub psi: f64,
    /// stable, moderate or major (PSI's reading).
    pub level: &'static str,
    /// `wasserstein` (normed, numeric) or `jensen-shannon` (categorical).
    pub method: &'static str,
    pub distance: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<drift::Ks>,
    /// PSI major, or the distance above its threshold.
    pub drifted: bool,
    /// The bins PSI was computed on, with both counts.
    pub bins: Vec<DriftBin>,
    /// KS and the distance used a uniform sample of [`DISTANCE_SAMPLE`] served values (there
    /// were more); PSI and Jensen-Shannon always count every row.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sampled: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// One (model, arm, shadow) group's running figures while the log is read.
#[derive(Default)]
struct Group {
    predictions: usize,
    /// One figure per request (a request's rows share its latency).
    latency: Latencies,
    labelled: usize,
    /// Classification: labelled predictions judged, and how many were right.
    judged: usize,
    right: usize,
    /// Regression: absolute errors against the feedback labels.
    errors: Running,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelWatch {
    pub model: String,
    pub arm: String,
    pub shadow: bool,
    pub predictions: usize,
    /// The requests that asked for them (a request may carry many rows).
    pub requests: usize,
    /// Per request, not per row: time inside the server's handler, from the parsed request to
    /// the response (network and queueing before the handler are not included; the load test
    /// measures those).
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// Predictions with a feedback label.
    pub labelled: usize,
    /// accuracy (classification) or mae (regression), from feedback.
    pub quality_metric: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Interval>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MonitorReport {
    pub since: Option<String>,
    pub champion: String,
    /// Answered predictions (shadow ones not counted).
    pub predictions: usize,
    /// Whether there are enough answered rows ([`MIN_ROWS`]) to call drift.
    pub enough_rows: bool,
    /// Feedback labels received in all (`--since` selects predictions, not feedback).
    pub feedback: usize,
    pub models: Vec<ModelWatch>,
    pub features: Vec<FeatureDrift>,
    /// The same drift per window of time (hours, or days past 72 hours), oldest first.
    pub windows: Vec<DriftWindow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_psi: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_level: Option<&'static str>,
    /// Share of shadowed requests where the challenger's label differs from the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_disagreement: Option<Interval>,
    /// Under an A/B split, with feedback on both arms: accuracy of each arm and the always-valid
    /// p-value of their difference (mSPRT), safe to read at any time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ab_test: Option<gyre_eval::online::Msprt>,
    pub errors: BTreeMap<u16, usize>,
    /// Served rows with values the champion's training rows never had (the rule of `train`'s
    /// skew check).
    pub skew: Vec<crate::skew::Skew>,
    pub findings: FindingChanges,
}

/// Wilson score interval (95%) for a proportion.
fn wilson(successes: usize, n: usize) -> Interval {
    let (k, n) = (successes as f64, n as f64);
    let z = gyre_eval::compare::Z95;
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    Interval {
        value: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// `--since`: a duration back from now (`30m`, `2h`, `7d`) or a time (`2026-11-27`,
/// `2026-11-27T10:00:00Z`), as RFC 3339 text comparable with the log's times.
pub fn parse_since(text: &str) -> Result<String, AppError> {
    if let Ok(d) = humantime::parse_duration(text) {
        let t = std::time::SystemTime::now()
            .checked_sub(d)
            .unwrap_or(std::time::UNIX_EPOCH);
        return Ok(humantime::format_rfc3339_millis(t).to_string());
    }
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    match humantime::parse_rfc3339_weak(full.trim_end_matches('Z')) {
        Ok(t) => Ok(humantime::format_rfc3339_millis(t).to_string()),
        Err(_) => Err(AppError::invalid(format!(
            "--since {text:?}: expected a duration (30m, 2h, 7d) or a time (2026-11-27, 2026-11-27T10:00:00Z)"
        ))),
    }
}

impl App {
    /// The reference distributions of a run (alias or id).
    pub fn drift_reference(&mut self, run: &str) -> Result<DriftReference, AppError> {
        let record = self.resolve_run(run)?;
        let loaded = self.load_version(&record.dataset, Some(&record.version))?;
        let preds = self.run_predictions(&record, &loaded)?;
        let k = crate::suites::outputs(loaded.schema.task, loaded.schema.classes.len());
        let scores: Vec<f64> = preds
            .scores
            .chunks(k)
            .map(|s| served_scores(loaded.schema.task, s))
            .map(|s| watched_score(loaded.schema.task, &s))
            .collect();
        Ok(drift_reference(&loaded, &scores))
    }

    /// `gyre monitor`: what the prediction log says since `since`.
    pub fn monitor(&mut self, since: Option<&str>) -> Result<MonitorReport, AppError> {
        let since = since.map(parse_since).transpose()?;
        let champion = self
            .alias_target(crate::ship::CHAMPION)?
            .ok_or_else(|| AppError::invalid("no champion yet: promote a run first"))?;
        let record = self.resolve_run(&champion)?;
        let reference = self.drift_reference(&champion)?;
        let schema = self
            .load_version(&record.dataset, Some(&record.version))?
            .schema;
        let log = self.log_to_read()?;
        let feedback = log.feedback(0)?;
        let errors_list = log.errors(since.as_deref())?;
        // The latest feedback label per prediction id.
        let labels: HashMap<PredictionId, &str> =
            feedback.iter().map(|f| (f.id, f.label.as_str())).collect();
        let regression = schema.task == Task::Regression;

        // One pass over the served rows, in id order (an answer, then its shadow row). Memory
        // holds bin counts, latency counts, a bounded sample per numeric feature and the answers
        // that have feedback, never the rows themselves.
        let mut answered = 0usize;
        let mut actual: Vec<Vec<f64>> = reference
            .features
            .iter()
            .map(|f| vec![0.0; f.bins()])
            .collect();
        let mut values: Vec<Reservoir> = (0..reference.features.len())
            .map(|j| Reservoir::new(DISTANCE_SAMPLE, 0x6d6f_6e69 + j as u64))
            .collect();
        let mut score_bins = vec![0.0; reference.score.bins()];
        let mut scored = 0usize;
        let mut groups: BTreeMap<(String, String, bool), Group> = BTreeMap::new();
        // For the shadow pairs: the last answer read; for the A/B test: each labelled answer's
        // arm and label.
        let mut last_answer: Option<(PredictionId, String)> = None;
        let (mut shadowed, mut disagreed) = (0usize, 0usize);
        let mut labelled_answers: HashMap<PredictionId, (bool, String)> = HashMap::new();
        let mut windows: BTreeMap<String, WindowCounts> = BTreeMap::new();
        let mut daily = false;
        let mut watches: Vec<Option<crate::skew::SkewWatch>> = reference
            .features
            .iter()
            .map(|f| {
                if f.categorical() {
                    Some(crate::skew::SkewWatch::categories(
                        &f.name,
                        f.categories.keys().map(String::as_str),
                    ))
                } else {
                    crate::skew::SkewWatch::numbers(&f.name, f.sorted.iter().copied())
                }
            })
            .collect();
        log.served_each(since.as_deref(), |r| {
            let g = match groups
                .iter_mut()
                .find(|((m, a, sh), _)| *m == r.model && *a == r.arm && *sh == r.shadow)
            {
                Some((_, g)) => g,
                None => groups
                    .entry((r.model.clone(), r.arm.clone(), r.shadow))
                    .or_default(),
            };
            g.predictions += 1;
            if r.id.n == r.request {
                g.latency.add(r.latency_us);
            }
            if let Some(truth) = labels.get(&r.id) {
                if regression {
                    if let (Ok(p), Ok(t)) = (r.label.parse::<f64>(), truth.parse::<f64>()) {
                        g.errors.add((p - t).abs());
                    }
                } else {
                    g.judged += 1;
                    g.right += usize::from(r.label == *truth);
                }
                g.labelled += 1;
            }
            if r.shadow {
                if let Some((id, label)) = &last_answer
                    && *id == r.id
                {
                    shadowed += 1;
                    disagreed += usize::from(*label != r.label);
                }
                return;
            }
            answered += 1;
            // Each served row is parsed once and binned into every feature's counts (a row that
            // does not parse counts as all missing).
            let row = RequestRow::parse(&r.features).ok();
            let row = row.as_ref();
            let key = &r.time[..r.time.len().min(if daily { 10 } else { 13 })];
            if !windows.contains_key(key) {
                if !daily && windows.len() >= MAX_HOUR_WINDOWS {
                    daily = true;
                    windows = by_day(std::mem::take(&mut windows));
                }
                let key = &r.time[..r.time.len().min(if daily { 10 } else { 13 })];
                if !windows.contains_key(key) {
                    windows.insert(key.to_string(), WindowCounts::new(&reference, key));
                }
            }
            let key = &r.time[..r.time.len().min(if daily { 10 } else { 13 })];
            let window = windows.get_mut(key).expect("the row's window");
            window.rows += 1;
            for (j, f) in reference.features.iter().enumerate() {
                let v = row.and_then(|row| row.get(&f.name));
                let bin = f.bin_of(v);
                actual[j][bin] += 1.0;
                window.bins[j][bin] += 1.0;
                if !f.categorical() {
                    let x = f.number(v);
                    if !x.is_nan() {
                        window.samples[j].add(x);
                    }
                }
                if let Some(w) = &mut watches[j] {
                    if f.categorical() {
                        w.text(v.and_then(FieldValue::text));
                    } else {
                        w.number(f.number(v));
                    }
                }
                if !f.categorical() {
                    let x = f.number(v);
                    if !x.is_nan() {
                        values[j].add(x);
                    }
                }
            }
            if r.model == champion
                && let Ok(s) = serde_json::from_str::<Vec<f64>>(r.scores.get())
            {
                let s = watched_score(schema.task, &s);
                score_bins[drift::numeric_bin(&reference.score.edges, s)] += 1.0;
                scored += 1;
            }
            if labels.contains_key(&r.id) {
                labelled_answers.insert(r.id, (r.arm == "challenger", r.label.clone()));
            }
            last_answer = Some((r.id, r.label));
        })?;
        drop(log);

        let enough = answered >= MIN_ROWS;
        let mut skew: Vec<crate::skew::Skew> = if enough {
            watches
                .into_iter()
                .flatten()
                .filter_map(|w| w.finish(answered))
                .collect()
        } else {
            Vec::new()
        };
        skew.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.column.cmp(&b.column)));
        let mut features = Vec::new();
        if answered > 0 {
            for ((f, actual), values) in reference.features.iter().zip(&actual).zip(values) {
                let sampled = values.sampled();
                let mut values = values.values;
                values.sort_by(f64::total_cmp);
                let psi = drift::psi(&f.expected, actual);
                let (method, distance, ks) = if f.categorical() {
                    (
                        "jensen-shannon",
                        drift::js_distance(&f.expected, actual),
                        None,
                    )
                } else {
                    (
                        "wasserstein",
                        drift::wasserstein_normed(&f.sorted, &values),
                        Some(drift::ks_two_sample(&f.sorted, &values)),
                    )
                };
                features.push(FeatureDrift {
                    feature: f.name.clone(),
                    kind: f.kind,
                    psi,
                    level: drift::psi_level(psi),
                    method,
                    distance,
                    ks,
                    drifted: enough
                        && (psi > drift::PSI_MAJOR || distance > drift::DISTANCE_THRESHOLD),
                    sampled,
                    bins: f
                        .bin_labels()
                        .into_iter()
                        .zip(f.expected.iter().zip(actual))
                        .map(|(bin, (&reference, &live))| DriftBin {
                            bin,
                            reference,
                            live,
                        })
                        .collect(),
                });
            }
        }
        let windows: Vec<DriftWindow> = windows
            .into_iter()
            .map(|(start, w)| DriftWindow {
                start,
                rows: w.rows,
                features: reference
                    .features
                    .iter()
                    .zip(w.bins.iter().zip(w.samples))
                    .map(|(f, (bins, sample))| WindowDrift {
                        feature: f.name.clone(),
                        psi: drift::psi(&f.expected, bins),
                        ks: (!f.categorical() && !sample.values.is_empty()).then(|| {
                            let mut v = sample.values;
                            v.sort_by(f64::total_cmp);
                            drift::ks_two_sample(&f.sorted, &v)
                        }),
                    })
                    .collect(),
            })
            .collect();
        let score_psi = (scored > 0).then(|| drift::psi(&reference.score.expected, &score_bins));

        // Per model and arm: volume, latency, quality from feedback.
        let models = groups
            .into_iter()
            .map(|((model, arm, shadow), mut g)| {
                let quality = (g.labelled > 0).then(|| {
                    if regression {
                        let n = g.errors.n.max(1) as f64;
                        let half = gyre_eval::compare::Z95 * g.errors.sd() / n.sqrt();
                        Interval {
                            value: g.errors.mean(),
                            low: g.errors.mean() - half,
                            high: g.errors.mean() + half,
                        }
                    } else {
                        wilson(g.right, g.judged)
                    }
                });
                ModelWatch {
                    model,
                    arm,
                    shadow,
                    predictions: g.predictions,
                    requests: g.latency.len() as usize,
                    latency_p50_ms: g.latency.percentile_ms(0.5),
                    latency_p99_ms: g.latency.percentile_ms(0.99),
                    labelled: g.labelled,
                    quality_metric: if regression { "mae" } else { "accuracy" },
                    quality,
                }
            })
            .collect();

        // Shadow: the challenger's label against the answer, request by request.
        let shadow_disagreement = (shadowed > 0).then(|| wilson(disagreed, shadowed));

        // A/B: outcomes of answered predictions in the order their feedback arrived.
        let ab_test = if regression {
            None
        } else {
            let mut seen = std::collections::HashSet::new();
            let outcomes: Vec<(bool, bool)> = feedback
                .iter()
                .filter(|f| seen.insert(f.id))
                .filter_map(|f| {
                    let (challenger, label) = labelled_answers.get(&f.id)?;
                    Some((*challenger, *label == labels[&f.id]))
                })
                .collect();
            gyre_eval::online::msprt(outcomes, gyre_eval::online::DEFAULT_TAU)
        };
        let mut errors = BTreeMap::new();
        for e in &errors_list {
            *errors.entry(e.status).or_insert(0) += 1;
        }
        let findings = if enough {
            self.findings_after_monitor(&record, &features, &skew)?
        } else {
            FindingChanges::default()
        };
        Ok(MonitorReport {
            since,
            champion,
            predictions: answered,
            enough_rows: enough,
            feedback: feedback.len(),
            models,
            features,
            windows,
            score_psi,
            score_level: score_psi.map(drift::psi_level),
            shadow_disagreement,
            ab_test,
            errors,
            skew,
            findings,
        })
    }

    /// Drifted features become findings; earlier drift findings whose feature is stable again
    /// are marked fixed.
    fn findings_after_monitor(
        &mut self,
        champion: &gyre_store::RunRecord,
        features: &[FeatureDrift],
        skew: &[crate::skew::Skew],
    ) -> Result<FindingChanges, AppError> {
        let mut records = Vec::new();
        for s in skew {
            records.push(FindingRecord {
                id: 0,
                kind: "skew".into(),
                key: format!("served-skew:{}:{}:{}", champion.dataset, s.column, s.what),
                title: format!(
                    "skew: {} served rows ({:.1}%) have {}: {}",
                    s.rows,
                    100.0 * s.share,
                    s.describe(),
                    s.predicate
                ),
                detail: serde_json::to_string(&FindingDetail::Skew {
                    dataset: champion.dataset.clone(),
                    served: true,
                    skew: s.clone(),
                })
                .expect("serializes"),
                run: champion.id.clone(),
                created_at: now(),
            });
        }
        for f in features.iter().filter(|f| f.drifted) {
            records.push(FindingRecord {
                id: 0,
                kind: "drift".into(),
                key: format!("drift:{}:{}", champion.dataset, f.feature),
                title: format!(
                    "served {} drifted from training (PSI {:.2}, {} {:.2})",
                    f.feature, f.psi, f.method, f.distance
                ),
                detail: serde_json::to_string(&FindingDetail::Drift {
                    dataset: champion.dataset.clone(),
                    feature: f.feature.clone(),
                    psi: f.psi,
                    method: f.method.to_string(),
                    distance: f.distance,
                })
                .expect("serializes"),
                run: champion.id.clone(),
                created_at: now(),
            });
        }
        let mut fixed = Vec::new();
        for f in self
            .findings()?
            .findings
            .into_iter()
            .filter(|f| f.state != "fixed" && f.kind == "skew")
        {
            if let Ok(FindingDetail::Skew {
                dataset,
                served: true,
                skew: old,
            }) = serde_json::from_value::<FindingDetail>(f.detail.clone())
                && dataset == champion.dataset
                && !skew
                    .iter()
                    .any(|s| s.column == old.column && s.what == old.what)
            {
                fixed.push(f.id);
            }
        }
        for f in self
            .findings()?
            .findings
            .into_iter()
            .filter(|f| f.state != "fixed" && f.kind == "drift")
        {
            if let Ok(FindingDetail::Drift {
                dataset, feature, ..
            }) = serde_json::from_value::<FindingDetail>(f.detail.clone())
                && dataset == champion.dataset
                && features.iter().any(|d| d.feature == feature && !d.drifted)
            {
                fixed.push(f.id);
            }
        }
        self.commit_findings(champion, &records, &fixed)
    }
}

/// Scores as the server returns them: both class probabilities for binary.
pub(crate) fn served_scores(task: Task, s: &[f64]) -> Vec<f64> {
    match task {
        Task::Binary => vec![1.0 - s[0], s[0]],
        _ => s.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> DriftReference {
        let f = FeatureReference::numeric("x", ColumnKind::Numeric, (0..100).map(f64::from));
        let score = FeatureReference::numeric("score", ColumnKind::Numeric, (0..10).map(f64::from));
        DriftReference {
            features: vec![f],
            score,
        }
    }

    #[test]
    fn hour_windows_merge_into_days_keeping_every_count() {
        let r = reference();
        let mut hours = BTreeMap::new();
        for (key, n) in [
            ("2026-12-04T10", 3),
            ("2026-12-04T11", 4),
            ("2026-12-05T00", 5),
        ] {
            let mut w = WindowCounts::new(&r, key);
            w.rows = n;
            w.bins[0][0] = n as f64;
            w.samples[0].add(n as f64);
            hours.insert(key.to_string(), w);
        }
        let days = by_day(hours);
        let keys: Vec<&String> = days.keys().collect();
        assert_eq!(keys, ["2026-12-04", "2026-12-05"]);
        let d = &days["2026-12-04"];
        assert_eq!((d.rows, d.bins[0][0]), (7, 7.0));
        assert_eq!(d.samples[0].values.len(), 2);
    }
}
