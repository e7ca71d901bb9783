//! `gyre sweep`: a search over a learner's params (a grid, random values, uniform or
//! log-uniform ranges) with successive halving on its budget (trees or iterations), after Li et
//! al., "A System for Massively Parallel Hyperparameter Tuning" (ASHA, MLSys 2020): every trial
//! starts at a small budget, scored on a validation part of the training rows; the best 1/eta
//! go on at eta times the budget, until the survivors (at least two) are fit at the full budget
//! on every training row. Those finished trials are ordinary runs (tagged with the sweep, a
//! trial with several seeds a seed group), so `gyre diff`, `promote` and the rest take them.
//!
//! Rungs are synchronous here (a rung's trials all finish before the next rung starts): each
//! rung is one batch for the executor, which is what a cluster job is. The trials of a rung run
//! in parallel, on this machine's cores or as units on a Ray cluster (see `units`).

use crate::table_view::LoadedVersion;
use crate::units::{Executor, TrialUnit, Unit};
use crate::{App, AppError, now};
use gyre_core::ContentHash;
use gyre_core::rng::SplitMix64;
use gyre_eval::compare::{MetricDelta, Prepared, compare_metric, metric_intervals};
use gyre_eval::metrics::{self, Scores};
use gyre_learn::{Features, Learner, Model, NoProgress, Progress, SeedEffect, TrainSet};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Instant;

/// What `gyre sweep` was asked.
#[derive(Clone, Debug)]
pub struct SweepRequest {
    pub dataset: Option<String>,
    pub version: Option<String>,
    pub learner: String,
    /// `KEY=V1,V2,..` (values), `KEY=LO..HI` (uniform), `KEY=LO..HI:log` (log-uniform), or
    /// `KEY=V` (fixed).
    pub space: Vec<String>,
    /// How many trials; by default every point of a grid, or 16 random ones.
    pub trials: Option<usize>,
    pub seed: u64,
    /// Seeds per trial: each unit of a trial is fit with each, its score their mean.
    pub seeds: usize,
    /// Successive halving on the budget; without it every trial is fit at the full budget.
    pub early_stop: bool,
    pub eta: usize,
    /// The smallest budget of a rung (default: the full budget / eta^3).
    pub min_budget: Option<usize>,
    /// The param that is the budget (needed for a command learner; gbdt's is num_iterations,
    /// linear's max_iter).
    pub budget: Option<String>,
}

impl Default for SweepRequest {
    fn default() -> Self {
        SweepRequest {
            dataset: None,
            version: None,
            learner: "gbdt".into(),
            space: Vec::new(),
            trials: None,
            seed: 0,
            seeds: 1,
            early_stop: true,
            eta: 3,
            min_budget: None,
            budget: None,
        }
    }
}

/// One axis of the search.
#[derive(Clone, Debug, PartialEq)]
enum Axis {
    Values(Vec<String>),
    Range {
        lo: f64,
        hi: f64,
        log: bool,
        int: bool,
    },
}

/// Parses `KEY=SPEC` into the param's name and its axis.
fn parse_axis(raw: &str) -> Result<(String, Axis), AppError> {
    let bad = |why: &str| AppError::Invalid {
        message: format!("-p {raw}: {why}"),
        hint: Some(
            "a sweep param is KEY=V1,V2,.. (values), KEY=LO..HI (uniform) or KEY=LO..HI:log \
                 (log-uniform), e.g. -p num_leaves=15,31,63 -p learning_rate=0.01..0.2:log"
                .into(),
        ),
    };
    let Some((k, spec)) = raw.split_once('=') else {
        return Err(bad("not KEY=SPEC"));
    };
    let (k, spec) = (k.trim(), spec.trim());
    if k.is_empty() || spec.is_empty() {
        return Err(bad("empty name or value"));
    }
    if let Some((lo, rest)) = spec.split_once("..") {
        let (hi, log) = match rest.strip_suffix(":log") {
            Some(h) => (h, true),
            None => (rest, false),
        };
        let num = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("\"{}\" is not a number", t.trim())))
        };
        let (l, h) = (num(lo)?, num(hi)?);
        if l >= h {
            return Err(bad("the range's low end must be below its high end"));
        }
        if log && l <= 0.0 {
            return Err(bad("a log range needs a positive low end"));
        }
        let int = [lo, hi].iter().all(|t| t.trim().parse::<i64>().is_ok());
        return Ok((
            k.to_string(),
            Axis::Range {
                lo: l,
                hi: h,
                log,
                int,
            },
        ));
    }
    let values: Vec<String> = spec.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(bad("an empty value in the list"));
    }
    Ok((k.to_string(), Axis::Values(values)))
}

/// A value written with four significant digits (enough for a learning rate, short to read).
fn format_value(v: f64, int: bool) -> String {
    if int {
        return format!("{}", v.round() as i64);
    }
    let mag = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The trials' params: every grid point when the axes are all value lists (and `trials` is
/// absent or at least the grid), else `trials` draws (16 by default) from the seed.
fn draw_trials(
    axes: &[(String, Axis)],
    trials: Option<usize>,
    seed: u64,
) -> Result<Vec<Vec<(String, String)>>, AppError> {
    if trials == Some(0) {
        return Err(AppError::invalid("--trials must be at least 1"));
    }
    let all_values = axes.iter().all(|(_, a)| matches!(a, Axis::Values(_)));
    let mut rng = SplitMix64::new(seed ^ 0x5EE9_0000_7121_A115);
    if all_values {
        let mut grid: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (k, a) in axes {
            let Axis::Values(vs) = a else { unreachable!() };
            grid = grid
                .into_iter()
                .flat_map(|p| {
                    vs.iter().map(move |v| {
                        let mut q = p.clone();
                        q.push((k.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        match trials {
            Some(n) if n < grid.len() => {
                rng.shuffle(&mut grid);
                grid.truncate(n);
                Ok(grid)
            }
            _ => Ok(grid),
        }
    } else {
        let n = trials.unwrap_or(16);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut p = Vec::new();
            for (k, a) in axes {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let v = match a {
                    Axis::Values(vs) => vs[rng.below(vs.len() as u64) as usize].clone(),
                    Axis::Range { lo, hi, log, int } => {
                        let x = if *log {
                            (lo.ln() + u * (hi.ln() - lo.ln())).exp()
                        } else {
                            lo + u * (hi - lo)
                        };
                        format_value(x.clamp(*lo, *hi), *int)
                    }
                };
                p.push((k.clone(), v));
            }
            out.push(p);
        }
        Ok(out)
    }
}

/// The budgets of the rungs, smallest first (the last is the full budget), and how many trials
/// each rung keeps: the best ceil(n / eta) of the rung before, and never fewer than two.
fn rungs(trials: usize, full: usize, min: usize, eta: usize) -> Vec<(usize, usize)> {
    let mut budgets = vec![full];
    while let Some(&b) = budgets.last() {
        let next = b / eta;
        if next < min.max(1) || next == b {
            break;
        }
        budgets.push(next);
    }
    budgets.reverse();
    let mut out = Vec::new();
    let mut n = trials;
    for (i, &b) in budgets.iter().enumerate() {
        out.push((b, n));
        if i + 1 < budgets.len() {
            n = n.div_ceil(eta).max(2).min(n);
        }
    }
    out
}

/// A rung's result of one trial.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RungScore {
    pub trial: usize,
    /// The primary metric on the validation rows (the mean over the trial's seeds).
    pub score: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RungRecord {
    pub budget: usize,
    pub scores: Vec<RungScore>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRecord {
    pub trial: usize,
    pub params: Vec<(String, String)>,
    /// The budget at which successive halving stopped it; none for a finished trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<usize>,
    /// A finished trial's runs (one per seed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
}

/// What a sweep did, as stored (`sweep:ID` in the cache) and shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepRecord {
    pub id: String,
    pub dataset: String,
    pub version: String,
    pub learner: String,
    pub space: Vec<String>,
    pub seed: u64,
    pub seeds: usize,
    pub budget_param: Option<String>,
    pub eta: usize,
    pub primary_metric: String,
    pub higher_is_better: bool,
    pub rungs: Vec<RungRecord>,
    pub trials: Vec<TrialRecord>,
    pub executor: String,
    /// Units fit, over every rung and seed.
    pub units: usize,
    /// Units started again after their worker died (on a cluster).
    #[serde(default)]
    pub retries: usize,
    pub seconds: f64,
    pub created_at: String,
}

/// A finished trial in the ranking.
#[derive(Clone, Debug, Serialize)]
pub struct RankedTrial {
    pub rank: usize,
    pub trial: usize,
    pub params: Vec<(String, String)>,
    pub runs: Vec<String>,
    /// The primary metric on the holdout (the mean over the trial's runs).
    pub metric: f64,
    /// Its 95% bootstrap interval (of the first run).
    pub ci95: Option<[f64; 2]>,
}

/// The best finished trial against the runner-up, paired on the holdout rows.
#[derive(Clone, Debug, Serialize)]
pub struct BestVsRunnerUp {
    pub best: usize,
    pub runner_up: usize,
    /// best minus runner-up, with its 95% interval.
    pub delta: MetricDelta,
    /// Whether the interval leaves out no difference.
    pub distinguishable: bool,
}

/// `gyre sweep` and `gyre sweep show`.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    pub sweep: SweepRecord,
    pub ranking: Vec<RankedTrial>,
    pub best_vs_runner_up: Option<BestVsRunnerUp>,
    /// This sweep had run before: nothing was fit again.
    pub already: bool,
}

/// A trial's fit as a unit gives it back: a rung's score, or a finished fit's model and
/// holdout scores.
pub(crate) enum TrialOutcome {
    Scored(f64),
    Finished {
        model: Box<dyn Model>,
        scores: Vec<f64>,
    },
}

/// The rows a trial reads, shared by every trial of a sweep.
pub(crate) struct TrialRows {
    features: Features,
    labels: Vec<f64>,
    weights: Option<Vec<f64>>,
    train: Vec<u32>,
    /// The training rows a rung fits on, and the ones it scores.
    fit: Vec<u32>,
    validation: Vec<u32>,
    holdout: Vec<u32>,
    task: gyre_learn::Task,
    core_task: gyre_core::Task,
    classes: usize,
    positive: usize,
    schema: gyre_core::DatasetSchema,
    /// The metric a rung ranks on.
    primary: &'static str,
}

impl TrialRows {
    /// A fifth of the training rows, drawn from the sweep's seed, are a rung's validation rows.
    fn of(loaded: &LoadedVersion, seed: u64) -> TrialRows {
        let train = loaded.train_rows();
        let mut shuffled = train.clone();
        SplitMix64::new(seed ^ 0x0A11_DA7E_5EED_0001).shuffle(&mut shuffled);
        let cut = (shuffled.len() / 5)
            .max(1)
            .min(shuffled.len().saturating_sub(1));
        let mut validation = shuffled[..cut].to_vec();
        let mut fit = shuffled[cut..].to_vec();
        validation.sort_unstable();
        fit.sort_unstable();
        let splits = loaded.splits();
        TrialRows {
            features: loaded.features(),
            labels: loaded.labels(),
            weights: loaded.weights().map(<[f64]>::to_vec),
            holdout: (0..splits.len() as u32)
                .filter(|&r| splits[r as usize] == gyre_core::Split::Holdout)
                .collect(),
            train,
            fit,
            validation,
            task: loaded.learn_task(),
            core_task: loaded.schema.task,
            classes: loaded.schema.classes.len(),
            positive: loaded.schema.positive_index(),
            schema: loaded.schema.clone(),
            primary: metrics::primary(loaded.schema.task).name,
        }
    }

    /// Fits one trial unit with `learner` (built for its params).
    fn fit(&self, learner: &dyn Learner, unit: &TrialUnit) -> Result<TrialOutcome, AppError> {
        let (rows, predict) = if unit.finish {
            (&self.train, &self.holdout)
        } else {
            (&self.fit, &self.validation)
        };
        let (model, scores) = learner.fit_predict(
            self.task,
            &TrainSet {
                features: &self.features,
                rows,
                labels: &self.labels,
                weights: self.weights.as_deref(),
            },
            unit.seed,
            predict,
            &NoProgress,
        )?;
        if unit.finish {
            return Ok(TrialOutcome::Finished { model, scores });
        }
        let labels: Vec<f64> = predict.iter().map(|&r| self.labels[r as usize]).collect();
        let m = metrics::metrics_for(
            self.positive,
            &Scores {
                task: self.core_task,
                classes: self.classes,
                labels: &labels,
                scores: &scores,
                weights: None,
            },
        );
        let score = m.get(self.primary).copied().unwrap_or(f64::NAN);
        Ok(TrialOutcome::Scored(score))
    }
}

/// A trial unit's result as stored: `{"score":..}` for a rung; for a finished fit, a JSON
/// header naming the model's object, a newline, then the holdout scores (f64, little-endian).
#[derive(Serialize, Deserialize)]
struct StoredTrial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
}

/// One finished fit: its model and holdout scores.
type Fit = (Box<dyn Model>, Vec<f64>);

/// A finished trial's fits, handed to `train_from` as its learner: each seed's model and holdout
/// scores, made by the trial's units.
pub(crate) struct Prefit {
    /// The sweep whose trial these fits are, if any.
    pub sweep: Option<String>,
    pub command: Option<crate::CommandInfo>,
    learner: Box<dyn Learner>,
    first_seed: u64,
    fits: Vec<Mutex<Option<Fit>>>,
}

impl Learner for Prefit {
    fn name(&self) -> &'static str {
        self.learner.name()
    }

    fn params(&self) -> serde_json::Value {
        self.learner.params()
    }

    fn seed_effect(&self) -> SeedEffect {
        self.learner.seed_effect()
    }

    fn fit(
        &self,
        task: gyre_learn::Task,
        data: &TrainSet<'_>,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, gyre_learn::LearnError> {
        Ok(self.fit_predict(task, data, seed, &[], progress)?.0)
    }

    fn fit_predict(
        &self,
        _task: gyre_learn::Task,
        _data: &TrainSet<'_>,
        seed: u64,
        _predict: &[u32],
        _progress: &dyn Progress,
    ) -> Result<(Box<dyn Model>, Vec<f64>), gyre_learn::LearnError> {
        let i = seed.wrapping_sub(self.first_seed) as usize;
        self.fits
            .get(i)
            .and_then(|m| m.lock().expect("prefit").take())
            .ok_or_else(|| {
                gyre_learn::LearnError::CorruptModel(format!(
                    "the sweep has no fit for seed {seed}"
                ))
            })
    }
}

impl App {
    /// `gyre worker` for a trial: fits it on the project's version and stores what it gives.
    pub(crate) fn trial_unit(&mut self, t: &TrialUnit) -> Result<Vec<u8>, AppError> {
        let loaded = self.load_version(&t.dataset, Some(&t.version))?;
        let (learner, _) = self.learner(&t.learner, &t.params, &loaded.schema)?;
        let rows = TrialRows::of(&loaded, t.split_seed);
        let outcome = rows.fit(learner.as_ref(), t)?;
        self.encode_trial(outcome)
    }

    fn encode_trial(&mut self, outcome: TrialOutcome) -> Result<Vec<u8>, AppError> {
        Ok(match outcome {
            TrialOutcome::Scored(score) => serde_json::to_vec(&StoredTrial {
                score: Some(score),
                model: None,
            })
            .expect("serializes"),
            TrialOutcome::Finished { model, scores } => {
                let obj = self.store.objects().put(&model.save())?;
                let mut out = serde_json::to_vec(&StoredTrial {
                    score: None,
                    model: Some(obj.to_string()),
                })
                .expect("serializes");
                out.push(b'\n');
                for s in scores {
                    out.extend(s.to_le_bytes());
                }
                out
            }
        })
    }

    fn decode_trial(&mut self, bytes: &[u8], what: &str) -> Result<TrialOutcome, AppError> {
        let bad = || AppError::invalid(format!("the stored result of {what} is malformed"));
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        let head: StoredTrial = serde_json::from_slice(&bytes[..end]).map_err(|_| bad())?;
        match (head.score, head.model) {
            (Some(s), None) => Ok(TrialOutcome::Scored(s)),
            (None, Some(m)) => {
                let h = ContentHash::parse(&m).ok_or_else(bad)?;
                let model = gyre_learn::load_model(&self.store.objects().get(&h)?)?;
                let tail = bytes.get(end + 1..).unwrap_or_default();
                if tail.len() % 8 != 0 {
                    return Err(bad());
                }
                let scores = tail
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                Ok(TrialOutcome::Finished { model, scores })
            }
            _ => Err(bad()),
        }
    }

    /// `train --seeds K` on a remote executor: each seed's fit on every training row, with its
    /// holdout scores, as a unit there.
    pub(crate) fn fit_seeds_remotely(
        &mut self,
        remote: &dyn crate::units::RemoteExecutor,
        req: &crate::TrainRequest,
        progress: &dyn Progress,
    ) -> Result<Option<Prefit>, AppError> {
        let dataset = self.resolve_dataset(req.dataset.as_deref())?;
        let loaded = self.load_version(&dataset, req.version.as_deref())?;
        let (learner, command) = self.learner(&req.learner, &req.params, &loaded.schema)?;
        // Seeds that choose nothing are one fit: `train` fits it here and says why.
        if matches!(learner.seed_effect(), SeedEffect::Nothing { .. }) {
            return Ok(None);
        }
        let units: Vec<Unit> = (0..req.seeds as u64)
            .map(|k| {
                Unit::Trial(TrialUnit {
                    dataset: dataset.clone(),
                    version: loaded.version.clone(),
                    learner: req.learner.clone(),
                    params: req.params.clone(),
                    seed: req.seed + k,
                    split_seed: 0,
                    finish: true,
                })
            })
            .collect();
        let label = format!("train {} seeds on {dataset}", req.seeds);
        let results = self.run_remote(remote, &label, &units, progress)?;
        let mut fits = Vec::new();
        for (bytes, u) in results.iter().zip(&units) {
            match self.decode_trial(bytes, &u.describe())? {
                TrialOutcome::Finished { model, scores } => {
                    fits.push(Mutex::new(Some((model, scores))))
                }
                TrialOutcome::Scored(_) => {
                    return Err(AppError::invalid("a seed's fit came back scored"));
                }
            }
        }
        Ok(Some(Prefit {
            sweep: None,
            command,
            learner,
            first_seed: req.seed,
            fits,
        }))
    }

    /// `gyre sweep`.
    pub fn sweep(
        &mut self,
        req: &SweepRequest,
        progress: &dyn Progress,
    ) -> Result<SweepReport, AppError> {
        let t0 = Instant::now();
        if req.seeds == 0 {
            return Err(AppError::invalid("--seeds must be at least 1"));
        }
        if req.eta < 2 {
            return Err(AppError::invalid("--eta must be at least 2"));
        }
        let mut axes = Vec::new();
        for raw in &req.space {
            let (k, a) = parse_axis(raw)?;
            if axes.iter().any(|(n, _): &(String, Axis)| *n == k) {
                return Err(AppError::invalid(format!("-p {k} is given twice")));
            }
            axes.push((k, a));
        }
        let searched: Vec<&(String, Axis)> = axes
            .iter()
            .filter(|(_, a)| !matches!(a, Axis::Values(v) if v.len() == 1))
            .collect();
        if searched.is_empty() {
            return Err(AppError::Invalid {
                message: "nothing to search: every -p has one value".into(),
                hint: Some("give a list (-p num_leaves=15,31,63) or a range (-p learning_rate=0.01..0.2:log)".into()),
            });
        }
        let dataset = self.resolve_dataset(req.dataset.as_deref())?;
        let loaded = self.load_version(&dataset, req.version.as_deref())?;
        let version = loaded.version.clone();
        let task = loaded.schema.task;
        let primary = metrics::primary(task);
        let fixed: Vec<(String, String)> = axes
            .iter()
            .filter_map(|(k, a)| match a {
                Axis::Values(v) if v.len() == 1 => Some((k.clone(), v[0].clone())),
                _ => None,
            })
            .collect();
        // The budget: its param and full value (a fixed -p of it, or the learner's default).
        let (budget_param, full) = if req.early_stop {
            let (name, full) =
                self.budget_of(&req.learner, req.budget.as_deref(), &fixed, &loaded)?;
            if searched
                .iter()
                .any(|(k, _)| same_param(&req.learner, k, &name))
            {
                return Err(AppError::Invalid {
                    message: format!(
                        "{name} is the budget successive halving sets; it cannot be searched too"
                    ),
                    hint: Some(format!(
                        "fix it (-p {name}=N is the full budget) or sweep with --no-early-stop"
                    )),
                });
            }
            (Some(name), full)
        } else {
            (None, 0)
        };
        let fixed: Vec<(String, String)> = fixed
            .into_iter()
            .filter(|(k, _)| {
                budget_param
                    .as_deref()
                    .is_none_or(|b| !same_param(&req.learner, k, b))
            })
            .collect();
        let drawn = draw_trials(
            &searched.iter().map(|x| (*x).clone()).collect::<Vec<_>>(),
            req.trials,
            req.seed,
        )?;
        let trials: Vec<Vec<(String, String)>> = drawn
            .into_iter()
            .map(|p| fixed.iter().cloned().chain(p).collect())
            .collect();
        let plan = match &budget_param {
            Some(_) => {
                let min = req.min_budget.unwrap_or((full / req.eta.pow(3)).max(1));
                rungs(trials.len(), full, min, req.eta)
            }
            None => vec![(0, trials.len())],
        };
        let id = ContentHash::of_parts(&[
            b"gyre-sweep-v1",
            dataset.as_bytes(),
            version.as_bytes(),
            req.learner.as_bytes(),
            serde_json::to_string(&(&req.space, req.trials, req.seed, req.seeds))
                .expect("serializes")
                .as_bytes(),
            serde_json::to_string(&(&budget_param, &plan))
                .expect("serializes")
                .as_bytes(),
        ])
        .as_str()[..12]
            .to_string();
        if let Some(done) = self.stored_sweep(&id)? {
            let mut report = self.sweep_report(done)?;
            report.already = true;
            return Ok(report);
        }
        // Every trial's learner is checked before anything is fit.
        let with_budget = |p: &[(String, String)], b: usize| -> Vec<(String, String)> {
            let mut q = p.to_vec();
            if let Some(name) = &budget_param {
                q.push((name.clone(), b.to_string()));
            }
            q
        };
        for p in &trials {
            self.learner(&req.learner, &with_budget(p, full.max(1)), &loaded.schema)?;
        }
        let rows = TrialRows::of(&loaded, req.seed);
        let executor = self.executor.clone();
        let total_units: usize = plan.iter().map(|(_, n)| n * req.seeds).sum();
        let mut units_done = 0;
        let mut retries = 0;
        let mut alive: Vec<usize> = (0..trials.len()).collect();
        let mut rung_records = Vec::new();
        let mut stopped: Vec<Option<usize>> = vec![None; trials.len()];
        let mut finished: Vec<(usize, Vec<Fit>)> = Vec::new();
        for (r, &(budget, keep)) in plan.iter().enumerate() {
            let finish = r + 1 == plan.len();
            if r > 0 {
                // The best `keep` of the rung before go on.
                let last: &RungRecord = rung_records.last().expect("a rung before");
                let mut order: Vec<&RungScore> = last.scores.iter().collect();
                order.sort_by(|a, b| {
                    let (x, y) = (a.score, b.score);
                    let c = if primary.higher_is_better {
                        y.total_cmp(&x)
                    } else {
                        x.total_cmp(&y)
                    };
                    // NaN scores (a metric undefined on the validation rows) go last.
                    x.is_nan()
                        .cmp(&y.is_nan())
                        .then(c)
                        .then(a.trial.cmp(&b.trial))
                });
                let kept: Vec<usize> = order.iter().take(keep).map(|s| s.trial).collect();
                for &t in &alive {
                    if !kept.contains(&t) {
                        stopped[t] = Some(plan[r - 1].0);
                    }
                }
                alive = kept;
                alive.sort_unstable();
            }
            progress.message(&format!(
                "{}: {} trial(s){}{}",
                if finish {
                    "finishing".to_string()
                } else {
                    format!("rung {}/{}", r + 1, plan.len() - 1)
                },
                alive.len(),
                match &budget_param {
                    Some(name) => format!(" at {name}={budget}"),
                    None => String::new(),
                },
                if req.seeds > 1 {
                    format!(", {} seeds each", req.seeds)
                } else {
                    String::new()
                }
            ));
            let units: Vec<Unit> = alive
                .iter()
                .flat_map(|&t| {
                    (0..req.seeds as u64).map({
                        let params = with_budget(&trials[t], budget);
                        let (dataset, version, learner) = (&dataset, &version, &req.learner);
                        move |k| {
                            Unit::Trial(TrialUnit {
                                dataset: dataset.clone(),
                                version: version.clone(),
                                learner: learner.clone(),
                                params: params.clone(),
                                seed: req.seed + k,
                                split_seed: req.seed,
                                finish,
                            })
                        }
                    })
                })
                .collect();
            let (outcomes, retried) = self.run_trials(&executor, &rows, &units, &id, |n| {
                progress.iteration(units_done + n, total_units)
            })?;
            retries += retried;
            units_done += units.len();
            progress.iteration(units_done, total_units);
            let mut per_trial = outcomes.into_iter();
            if finish {
                for &t in &alive {
                    let mut fits = Vec::new();
                    for _ in 0..req.seeds {
                        match per_trial.next().expect("one outcome per unit") {
                            TrialOutcome::Finished { model, scores } => fits.push((model, scores)),
                            TrialOutcome::Scored(_) => {
                                return Err(AppError::invalid("a finished trial came back scored"));
                            }
                        }
                    }
                    finished.push((t, fits));
                }
            } else {
                let mut scores = Vec::new();
                for &t in &alive {
                    let mut sum = 0.0;
                    for _ in 0..req.seeds {
                        match per_trial.next().expect("one outcome per unit") {
                            TrialOutcome::Scored(s) => sum += s,
                            TrialOutcome::Finished { .. } => {
                                return Err(AppError::invalid("a rung's trial came back finished"));
                            }
                        }
                    }
                    scores.push(RungScore {
                        trial: t,
                        score: sum / req.seeds as f64,
                    });
                }
                rung_records.push(RungRecord { budget, scores });
            }
        }
        // Of two drivers that ran the same sweep (the second waited for the first's units),
        // one records it.
        let owner = self.driver_name();
        let record_key = format!("sweep-record:{id}");
        if self.claim_key(&record_key, &owner)?.is_none() {
            // Its claim lapses if it died; then this driver records the sweep.
            let waited = Instant::now();
            while self.claim_key(&record_key, &owner)?.is_none() {
                if let Some(done) = self.stored_sweep(&id)? {
                    let mut report = self.sweep_report(done)?;
                    report.already = true;
                    return Ok(report);
                }
                if waited.elapsed() > std::time::Duration::from_secs(600) {
                    return Err(AppError::invalid(format!(
                        "sweep {id} is being recorded by another driver, which has not finished \
                         in 10 minutes"
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
        if let Some(done) = self.stored_sweep(&id)? {
            let mut report = self.sweep_report(done)?;
            report.already = true;
            return Ok(report);
        }
        // Each finished trial becomes runs through `train`'s own path (metrics, suites,
        // findings, the journal), with its units' fits.
        let mut trial_records: Vec<TrialRecord> = trials
            .iter()
            .enumerate()
            .map(|(t, p)| TrialRecord {
                trial: t,
                params: p.clone(),
                stopped_at: stopped[t],
                runs: Vec::new(),
            })
            .collect();
        for (t, fits) in finished {
            let params = with_budget(&trials[t], full);
            let (learner, command) = self.learner(&req.learner, &params, &loaded.schema)?;
            let prefit = Prefit {
                sweep: Some(id.clone()),
                command,
                learner,
                first_seed: req.seed,
                fits: fits.into_iter().map(|f| Mutex::new(Some(f))).collect(),
            };
            let train = crate::TrainRequest {
                dataset: Some(dataset.clone()),
                version: Some(version.clone()),
                learner: req.learner.clone(),
                params,
                seed: req.seed,
                seeds: req.seeds,
            };
            let report =
                self.train_from(&train, crate::train::Source::Units(prefit), &NoProgress)?;
            trial_records[t].runs = if report.runs.is_empty() {
                vec![report.run.run.clone()]
            } else {
                report.runs.iter().map(|r| r.run.clone()).collect()
            };
        }
        let record = SweepRecord {
            id: id.clone(),
            dataset,
            version,
            learner: req.learner.clone(),
            space: req.space.clone(),
            seed: req.seed,
            seeds: req.seeds,
            budget_param,
            eta: req.eta,
            primary_metric: primary.name.to_string(),
            higher_is_better: primary.higher_is_better,
            rungs: rung_records,
            trials: trial_records,
            executor: executor.name().to_string(),
            units: units_done,
            retries,
            seconds: t0.elapsed().as_secs_f64(),
            created_at: now(),
        };
        let obj = self
            .store
            .objects()
            .put(&serde_json::to_vec(&record).expect("a sweep serializes"))?;
        let (user, command, time) = (self.user.clone(), self.command.clone(), now());
        let key = format!("sweep:{id}");
        let objects: Vec<String> = std::iter::once(format!("sweep:{id}"))
            .chain(
                record
                    .trials
                    .iter()
                    .flat_map(|t| t.runs.iter().map(|r| format!("run:{r}"))),
            )
            .collect();
        self.store.write(|tx| {
            tx.put_cache(&key, "sweep", obj.as_str(), &time)?;
            tx.append_journal(&gyre_store::NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why: None,
                objects: &objects,
            })
        })?;
        self.sweep_report(record)
    }

    /// Runs a rung's units on the executor: their outcomes in order.
    fn run_trials(
        &mut self,
        executor: &Executor,
        rows: &TrialRows,
        units: &[Unit],
        sweep: &str,
        done: impl Fn(usize) + Sync,
    ) -> Result<(Vec<TrialOutcome>, usize), AppError> {
        match executor {
            Executor::Remote(remote) => {
                let label = format!("sweep {sweep}");
                struct Counting<'a, F: Fn(usize) + Sync>(&'a F);
                impl<F: Fn(usize) + Sync> Progress for Counting<'_, F> {
                    fn iteration(&self, done: usize, _total: usize) {
                        (self.0)(done)
                    }
                }
                let (results, retries) =
                    self.run_remote_counted(remote.as_ref(), &label, units, &Counting(&done))?;
                let outcomes = results
                    .iter()
                    .zip(units)
                    .map(|(b, u)| self.decode_trial(b, &u.describe()))
                    .collect::<Result<_, _>>()?;
                Ok((outcomes, retries))
            }
            Executor::Local => {
                let mut learners = Vec::new();
                for u in units {
                    let Unit::Trial(t) = u else {
                        unreachable!("a sweep's units are trials")
                    };
                    learners.push(self.learner(&t.learner, &t.params, &rows.schema)?.0);
                }
                // As many fits at once as cores, each on one thread (see ablate).
                let threads = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(units.len().max(1));
                let next = std::sync::atomic::AtomicUsize::new(0);
                let count = std::sync::atomic::AtomicUsize::new(0);
                let out: Vec<Mutex<Option<Result<TrialOutcome, AppError>>>> =
                    units.iter().map(|_| Mutex::new(None)).collect();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(Unit::Trial(t)) = units.get(i) else {
                                    break;
                                };
                                let r = gyre_learn::on_own_threads(1, || {
                                    rows.fit(learners[i].as_ref(), t)
                                });
                                let failed = r.is_err();
                                *out[i].lock().expect("outcome") = Some(r);
                                done(count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                                if failed {
                                    // The other threads finish their units; no new ones start.
                                    next.store(units.len(), std::sync::atomic::Ordering::Relaxed);
                                    break;
                                }
                            }
                        });
                    }
                });
                let mut results = Vec::new();
                for (o, u) in out.into_iter().zip(units) {
                    match o.into_inner().expect("outcome") {
                        Some(r) => results.push(
                            r.map_err(|e| AppError::invalid(format!("{}: {e}", u.describe())))?,
                        ),
                        None => return Err(AppError::invalid("a sweep unit did not run")),
                    }
                }
                Ok((results, 0))
            }
        }
    }

    /// The budget param of `learner` and its full value.
    fn budget_of(
        &self,
        learner: &str,
        named: Option<&str>,
        fixed: &[(String, String)],
        loaded: &LoadedVersion,
    ) -> Result<(String, usize), AppError> {
        let name = match (named, gyre_learn::budget_param(learner)) {
            (Some(n), _) => n.to_string(),
            (None, Some(b)) => b.to_string(),
            (None, None) => {
                return Err(AppError::Invalid {
                    message: format!(
                        "successive halving needs the param of {learner} that is its budget"
                    ),
                    hint: Some(
                        "name it with --budget PARAM (epochs, trees) and give its full value \
                         with -p PARAM=N, or sweep with --no-early-stop"
                            .into(),
                    ),
                });
            }
        };
        // Its full value: a fixed -p of it (or of an alias), else the learner's default.
        let (l, _) = self.learner(learner, fixed, &loaded.schema)?;
        let value = l
            .params()
            .get(&name)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .or_else(|| {
                fixed
                    .iter()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| v.parse().ok())
            })
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "the budget {name} has no whole value: give it with -p {name}=N"
                ))
            })?;
        if value < 2 {
            return Err(AppError::invalid(format!(
                "the full budget {name}={value} leaves nothing to halve"
            )));
        }
        Ok((name, value as usize))
    }

    fn stored_sweep(&mut self, id: &str) -> Result<Option<SweepRecord>, AppError> {
        let key = format!("sweep:{id}");
        let Some(obj) = self
            .store
            .read(|tx| tx.cache(&key))?
            .and_then(|o| ContentHash::parse(&o))
        else {
            return Ok(None);
        };
        let bytes = self.store.objects().get(&obj)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AppError::invalid(format!("sweep {id} is unreadable: {e}")))
    }

    /// `gyre sweep show ID` (a unique prefix).
    pub fn sweep_show(&mut self, id: &str) -> Result<SweepReport, AppError> {
        let all = self.store.read(|tx| tx.caches_of_kind("sweep"))?;
        let matching: Vec<&str> = all
            .iter()
            .filter_map(|(k, _, _)| k.strip_prefix("sweep:"))
            .filter(|k| k.starts_with(id))
            .collect();
        // `latest`: the newest sweep (the cache lists oldest first).
        let matching = match (id, all.last()) {
            ("latest", Some((k, _, _))) => vec![k.strip_prefix("sweep:").unwrap_or(k)],
            _ => matching,
        };
        match matching.as_slice() {
            [one] => {
                let one = one.to_string();
                let record = self.stored_sweep(&one)?.expect("listed");
                self.sweep_report(record)
            }
            [] => Err(AppError::NotFound {
                what: "sweep",
                name: id.to_string(),
                suggestion: all
                    .last()
                    .and_then(|(k, _, _)| k.strip_prefix("sweep:"))
                    .map(str::to_string),
            }),
            _ => Err(AppError::invalid(format!(
                "sweep {id} is ambiguous: {}",
                matching.join(", ")
            ))),
        }
    }

    /// Ranks a sweep's finished trials on the holdout, with intervals.
    fn sweep_report(&mut self, sweep: SweepRecord) -> Result<SweepReport, AppError> {
        let gate = crate::config::gate_config(&self.store.config_path())?;
        let mut ranked: Vec<(RankedTrial, Prepared)> = Vec::new();
        for t in sweep.trials.iter().filter(|t| !t.runs.is_empty()) {
            let mut metric_sum = 0.0;
            let mut first = None;
            for r in &t.runs {
                let record = self.resolve_run(r)?;
                let loaded = self.load_version(&record.dataset, Some(&record.version))?;
                let preds = self.run_predictions(&record, &loaded)?;
                let prepared = Prepared::for_positive(
                    loaded.schema.task,
                    loaded.schema.classes.len(),
                    loaded.schema.positive_index(),
                    &preds.labels,
                    &preds.scores,
                );
                metric_sum += prepared
                    .metrics()
                    .get(sweep.primary_metric.as_str())
                    .copied()
                    .unwrap_or(f64::NAN);
                if first.is_none() {
                    first = Some(prepared);
                }
            }
            let prepared = first.expect("a finished trial has runs");
            let ci95 = metric_intervals(&prepared, gate.bootstrap_resamples, gate.bootstrap_seed)
                .get(sweep.primary_metric.as_str())
                .copied();
            ranked.push((
                RankedTrial {
                    rank: 0,
                    trial: t.trial,
                    params: t.params.clone(),
                    runs: t.runs.clone(),
                    metric: metric_sum / t.runs.len() as f64,
                    ci95,
                },
                prepared,
            ));
        }
        ranked.sort_by(|(a, _), (b, _)| {
            let c = if sweep.higher_is_better {
                b.metric.total_cmp(&a.metric)
            } else {
                a.metric.total_cmp(&b.metric)
            };
            c.then(a.trial.cmp(&b.trial))
        });
        let best_vs_runner_up = match ranked.as_slice() {
            [(best, pb), (second, ps), ..] => compare_metric(
                ps,
                pb,
                &sweep.primary_metric,
                gate.bootstrap_resamples,
                gate.bootstrap_seed,
            )
            .map(|delta| BestVsRunnerUp {
                best: best.trial,
                runner_up: second.trial,
                distinguishable: delta.ci95[0] > 0.0 || delta.ci95[1] < 0.0,
                delta,
            }),
            _ => None,
        };
        let ranking = ranked
            .into_iter()
            .enumerate()
            .map(|(i, (mut t, _))| {
                t.rank = i + 1;
                t
            })
            .collect();
        Ok(SweepReport {
            sweep,
            ranking,
            best_vs_runner_up,
            already: false,
        })
    }
}

/// Whether param `k` of `learner` is `budget` (or one of its aliases: the learner reads the
/// same value from either).
fn same_param(learner: &str, k: &str, budget: &str) -> bool {
    k == budget || gyre_learn::canonical_param(learner, k).is_some_and(|c| c == budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_values_ranges_and_log_ranges() {
        assert_eq!(
            parse_axis("num_leaves=15,31,63").unwrap(),
            (
                "num_leaves".into(),
                Axis::Values(vec!["15".into(), "31".into(), "63".into()])
            )
        );
        assert_eq!(
            parse_axis("learning_rate=0.01..0.2:log").unwrap().1,
            Axis::Range {
                lo: 0.01,
                hi: 0.2,
                log: true,
                int: false
            }
        );
        assert_eq!(
            parse_axis("min_data_in_leaf=5..100").unwrap().1,
            Axis::Range {
                lo: 5.0,
                hi: 100.0,
                log: false,
                int: true
            }
        );
        for bad in ["x", "=1", "a=0.2..0.1", "a=0..1:log", "a=1,,2", "a=x..2"] {
            let e = parse_axis(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn a_grid_is_every_point_unless_fewer_trials_are_asked() {
        let axes = vec![parse_axis("a=1,2,3").unwrap(), parse_axis("b=x,y").unwrap()];
        let all = draw_trials(&axes, None, 0).unwrap();
        assert_eq!(all.len(), 6);
        let mut seen: Vec<String> = all.iter().map(|p| format!("{p:?}")).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6);
        let some = draw_trials(&axes, Some(4), 7).unwrap();
        assert_eq!(some.len(), 4);
        assert!(some.iter().all(|p| all.contains(p)));
        assert_eq!(some, draw_trials(&axes, Some(4), 7).unwrap());
    }

    #[test]
    fn random_draws_stay_in_their_ranges_and_log_ranges_spread_by_decade() {
        let axes = vec![
            parse_axis("lr=0.001..1:log").unwrap(),
            parse_axis("leaves=8..64").unwrap(),
        ];
        let trials = draw_trials(&axes, Some(400), 3).unwrap();
        assert_eq!(trials.len(), 400);
        let mut below_01 = 0;
        for p in &trials {
            let lr: f64 = p[0].1.parse().unwrap();
            assert!((0.001..=1.0).contains(&lr), "{lr}");
            below_01 += usize::from(lr < 0.01);
            let leaves: i64 = p[1].1.parse().unwrap();
            assert!((8..=64).contains(&leaves));
        }
        // A third of the log range lies below 0.01 (a uniform draw would put 1% there).
        assert!((90..=180).contains(&below_01), "{below_01}");
    }

    #[test]
    fn rungs_halve_by_eta_down_to_two_finalists() {
        assert_eq!(
            rungs(32, 270, 10, 3),
            vec![(10, 32), (30, 11), (90, 4), (270, 2)]
        );
        assert_eq!(rungs(4, 100, 100, 3), vec![(100, 4)]);
        assert_eq!(rungs(2, 9, 1, 3), vec![(1, 2), (3, 2), (9, 2)]);
    }

    #[test]
    fn values_print_with_four_significant_digits() {
        assert_eq!(format_value(0.012345678, false), "0.01235");
        assert_eq!(format_value(0.2, false), "0.2");
        assert_eq!(format_value(123.456, false), "123.5");
        assert_eq!(format_value(31.6, true), "32");
    }
}
