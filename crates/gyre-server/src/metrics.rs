//! `GET /metrics` in Prometheus' text exposition format (version 0.0.4), every name prefixed
//! `gyre_`. Written by hand: a handful of counters, one histogram family and gauges do not earn a
//! metrics crate's compile time, and the format is a stable, documented text format.

use gyre_app::{ServedPrediction, ServingModel, watched_score};
use gyre_eval::drift;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Default)]
struct ModelStats {
    requests: u64,
    predictions: u64,
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    models: Mutex<BTreeMap<(String, &'static str, bool), ModelStats>>,
    errors: Mutex<BTreeMap<u16, u64>>,
    feedback: AtomicU64,
    shadow_errors: AtomicU64,
    swaps: AtomicU64,
}

impl Metrics {
    pub fn predicted(
        &self,
        model: &str,
        arm: &'static str,
        shadow: bool,
        rows: usize,
        latency: Duration,
    ) {
        let secs = latency.as_secs_f64();
        let mut models = self.models.lock().expect("metrics lock");
        // A handful of entries: a scan finds one without building an owned key per request.
        let found = models
            .iter_mut()
            .find(|((m, a, sh), _)| m == model && *a == arm && *sh == shadow)
            .map(|(_, s)| s);
        let s = match found {
            Some(s) => s,
            None => models.entry((model.to_string(), arm, shadow)).or_default(),
        };
        s.requests += 1;
        s.predictions += rows as u64;
        s.sum_seconds += secs;
        if let Some(b) = BUCKETS.iter().position(|&b| secs <= b) {
            s.buckets[b] += 1;
        }
    }

    pub fn error(&self, status: u16) {
        *self
            .errors
            .lock()
            .expect("metrics lock")
            .entry(status)
            .or_insert(0) += 1;
    }

    pub fn feedback(&self) {
        self.feedback.fetch_add(1, Ordering::Relaxed);
    }

    pub fn shadow_error(&self) {
        self.shadow_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn swapped(&self) {
        self.swaps.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(
        &self,
        champion: &ServingModel,
        live: &LiveDrift,
        log_failures: u64,
        log_pending: i64,
    ) -> String {
        let mut t = String::new();
        let models = self.models.lock().expect("metrics lock");
        let label = |(model, arm, shadow): &(String, &str, bool)| {
            format!("model=\"{model}\",arm=\"{arm}\",shadow=\"{shadow}\"")
        };
        t.push_str("# HELP gyre_requests_total Prediction requests answered, per model.\n# TYPE gyre_requests_total counter\n");
        for (k, s) in models.iter() {
            let _ = writeln!(t, "gyre_requests_total{{{}}} {}", label(k), s.requests);
        }
        t.push_str("# HELP gyre_predictions_total Rows predicted, per model.\n# TYPE gyre_predictions_total counter\n");
        for (k, s) in models.iter() {
            let _ = writeln!(
                t,
                "gyre_predictions_total{{{}}} {}",
                label(k),
                s.predictions
            );
        }
        t.push_str("# HELP gyre_request_duration_seconds Time to answer a prediction request, per model.\n# TYPE gyre_request_duration_seconds histogram\n");
        for (k, s) in models.iter() {
            let l = label(k);
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += c;
                let _ = writeln!(
                    t,
                    "gyre_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                t,
                "gyre_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                s.requests
            );
            let _ = writeln!(
                t,
                "gyre_request_duration_seconds_sum{{{l}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                t,
                "gyre_request_duration_seconds_count{{{l}}} {}",
                s.requests
            );
        }
        drop(models);
        t.push_str("# HELP gyre_errors_total Requests answered with an error, per HTTP status.\n# TYPE gyre_errors_total counter\n");
        for (status, n) in self.errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(t, "gyre_errors_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            t,
            "# HELP gyre_shadow_errors_total Requests the shadow challenger could not score.\n# TYPE gyre_shadow_errors_total counter\ngyre_shadow_errors_total {}",
            self.shadow_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            t,
            "# HELP gyre_feedback_total Feedback labels received.\n# TYPE gyre_feedback_total counter\ngyre_feedback_total {}",
            self.feedback.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            t,
            "# HELP gyre_model_swaps_total Times an alias move swapped the served models.\n# TYPE gyre_model_swaps_total counter\ngyre_model_swaps_total {}",
            self.swaps.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            t,
            "# HELP gyre_log_write_failures_total Log records that could not be committed.\n# TYPE gyre_log_write_failures_total counter\ngyre_log_write_failures_total {log_failures}"
        );
        let _ = writeln!(
            t,
            "# HELP gyre_log_pending_records Log records waiting to be committed.\n# TYPE gyre_log_pending_records gauge\ngyre_log_pending_records {log_pending}"
        );
        let _ = writeln!(
            t,
            "# HELP gyre_observed_rows Served rows binned for drift since the champion started serving.\n# TYPE gyre_observed_rows gauge\ngyre_observed_rows{{model=\"{}\"}} {}",
            champion.run,
            live.rows()
        );
        t.push_str("# HELP gyre_feature_psi Population stability index of served inputs against the champion's training rows.\n# TYPE gyre_feature_psi gauge\n");
        for (j, f) in champion.reference.features.iter().enumerate() {
            let _ = writeln!(
                t,
                "gyre_feature_psi{{model=\"{}\",feature=\"{}\"}} {}",
                champion.run,
                escape(&f.name),
                drift::psi(&f.expected, &live.feature(j))
            );
        }
        t.push_str("# HELP gyre_score_psi Population stability index of the champion's served scores against its holdout scores.\n# TYPE gyre_score_psi gauge\n");
        let _ = writeln!(
            t,
            "gyre_score_psi{{model=\"{}\"}} {}",
            champion.run,
            drift::psi(&champion.reference.score.expected, &live.score())
        );
        t
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counter shards: each serving thread counts into its own, so threads do not fight over the
/// same cache lines on every request; a reader sums them.
const SHARDS: usize = 8;

std::thread_local! {
    /// This thread's shard, assigned in turn as threads first count.
    static SHARD: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) as usize % SHARDS
    };
}

/// One shard's bin counts: per feature, then the score's.
struct Counts {
    rows: AtomicU64,
    features: Vec<Vec<AtomicU64>>,
    score: Vec<AtomicU64>,
}

/// Bin counts of the inputs and scores served since the champion started serving.
pub struct LiveDrift {
    shards: Vec<Counts>,
    champion: std::sync::Arc<ServingModel>,
    /// The reference features' names, hashed once for every request's lookups.
    names: Vec<gyre_app::FieldName>,
}

fn zeros(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn sum(shards: &[Counts], counts: impl Fn(&Counts) -> &[AtomicU64]) -> Vec<f64> {
    let mut out = vec![0.0; counts(&shards[0]).len()];
    for s in shards {
        for (o, c) in out.iter_mut().zip(counts(s)) {
            *o += c.load(Ordering::Relaxed) as f64;
        }
    }
    out
}

impl LiveDrift {
    pub fn new(champion: &std::sync::Arc<ServingModel>) -> LiveDrift {
        let r = &champion.reference;
        LiveDrift {
            shards: (0..SHARDS)
                .map(|_| Counts {
                    rows: AtomicU64::new(0),
                    features: r.features.iter().map(|f| zeros(f.bins())).collect(),
                    score: zeros(r.score.bins()),
                })
                .collect(),
            champion: champion.clone(),
            names: r
                .features
                .iter()
                .map(|f| gyre_app::FieldName::new(&f.name))
                .collect(),
        }
    }

    /// Counts a served row; `p` is the champion's prediction for it (none when another arm answered).
    pub fn observe(&self, row: &gyre_app::RequestRow, p: Option<&ServedPrediction>) {
        let r = &self.champion.reference;
        let shard = &self.shards[SHARD.with(|s| *s)];
        shard.rows.fetch_add(1, Ordering::Relaxed);
        for ((f, name), counts) in r.features.iter().zip(&self.names).zip(&shard.features) {
            counts[f.bin_of(row.get_named(name))].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(p) = p {
            let s = watched_score(self.champion.task, &p.scores);
            shard.score[drift::numeric_bin(&r.score.edges, s)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rows observed, over all shards.
    fn rows(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.rows.load(Ordering::Relaxed))
            .sum()
    }

    /// Feature `j`'s bin counts, over all shards.
    fn feature(&self, j: usize) -> Vec<f64> {
        sum(&self.shards, |s| &s.features[j])
    }

    fn score(&self) -> Vec<f64> {
        sum(&self.shards, |s| &s.score)
    }
}
