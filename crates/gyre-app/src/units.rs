//! Units of parallel work: the independent fits that `label-issues`' folds, `ablate`'s retrains
//! and a sweep's trials (with their seeds) are made of, and the executors that run them.
//!
//! A unit is named by its inputs (the hash of its description, which names runs and versions,
//! both immutable) and its result is one object of the project's store, found through the cache
//! entry `unit:KEY`. So a unit run twice gives the same entry, a finished unit is never run
//! again, and any process that can open the project's store (the team store, or a team server's
//! clone) can run one: `gyre worker UNIT` does, on a Ray cluster. The local executor runs the
//! same fits on this machine's cores, in this process, on the data it has already loaded.
//!
//! Claims keep two drivers from running a unit twice: before a driver hands units to a cluster
//! it claims each one for a lease, renewed while the job runs; a second driver that finds a live
//! claim waits for that unit's result instead, and takes the unit over when the lease lapses (its
//! driver died). The store has no update, so a claim is a log: `claim:KEY:N` for N = 0, 1, ...,
//! each entry written with "insert unless present", so of two drivers writing the same N one wins.

use crate::{App, AppError, now};
use gyre_core::ContentHash;
use gyre_learn::Progress;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One fit, described by what it reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unit {
    /// Fold `fold` of `label-issues` on run `run`: fit on the other folds, score this one.
    Fold {
        run: String,
        folds: usize,
        fold: usize,
    },
    /// One retrain of `ablate` on run `run`: its version without edit `edit` (and the edits
    /// that depend on it).
    Ablation { run: String, edit: i64 },
    /// One trial of a sweep at one budget, with one seed.
    Trial(TrialUnit),
}

/// A sweep trial's fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialUnit {
    pub dataset: String,
    pub version: String,
    pub learner: String,
    /// Every param of the trial, its budget (trees, iterations) included.
    pub params: Vec<(String, String)>,
    pub seed: u64,
    /// The sweep's seed: it draws the validation rows a rung scores on.
    pub split_seed: u64,
    /// A rung of successive halving scores the trial on the validation part of the training
    /// rows; a finished trial is fit on every training row and predicts the holdout.
    pub finish: bool,
}

/// Kind of the cache entries that point at units' results.
pub(crate) const UNIT_CACHE: &str = "unit";
/// How long a claim holds without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often a driver renews its claims and looks for results.
const RENEW_EVERY: Duration = Duration::from_secs(15);

impl Unit {
    /// The unit's name: the hash of its description.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("a unit serializes");
        ContentHash::of_parts(&[b"gyre-unit-v1", &json]).to_string()
    }

    /// A short description for progress lines and errors.
    pub fn describe(&self) -> String {
        match self {
            Unit::Fold { run, folds, fold } => {
                format!("fold {}/{folds} of run {}", fold + 1, short(run))
            }
            Unit::Ablation { run, edit } => {
                format!("run {} without edit #{edit}", short(run))
            }
            Unit::Trial(t) => {
                let params: Vec<String> =
                    t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "{} trial {} seed {}{}",
                    t.learner,
                    params.join(" "),
                    t.seed,
                    if t.finish { " (finished)" } else { "" }
                )
            }
        }
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Where a worker finds the project.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProjectRef {
    /// The project's gyre.toml, for a project on the team store or a team server's clone: a
    /// worker anywhere writes it into a fresh directory and opens that. Secrets are never in
    /// it (credentials come from the environment).
    Config { text: String },
    /// The project's directory, for an embedded project: only a cluster on this machine (or
    /// one that shares the directory) can use it.
    Dir { path: PathBuf },
}

/// What a remote executor is asked to run.
#[derive(Clone, Debug, Serialize)]
pub struct RemoteJob {
    /// What the work is, for the cluster's job list ("label-issues of run 1a2b3c").
    pub label: String,
    pub project: ProjectRef,
    pub units: Vec<Unit>,
}

/// What a finished remote job says.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RemoteSummary {
    /// The cluster's name for the job.
    pub job: String,
    /// Units started again after their worker died.
    pub retries: usize,
}

/// An executor that runs units elsewhere (a Ray cluster). Each worker opens the project as
/// `job.project` says and stores its unit's result itself; the driver (this process) records
/// what the results mean.
pub trait RemoteExecutor: Send + Sync {
    /// Its name in reports ("ray").
    fn name(&self) -> &'static str;
    /// Where it runs, for reports (no secrets).
    fn address(&self) -> String;
    /// Runs the job to its end. Calls `tick` between polls: it renews the driver's claims and
    /// counts finished units (`Ok(true)` when every unit has its result); an error from it
    /// stops the job. Messages (retries, the cluster's words) go to `progress`.
    fn run(
        &self,
        job: &RemoteJob,
        tick: &mut dyn FnMut() -> Result<bool, AppError>,
        progress: &dyn Progress,
    ) -> Result<RemoteSummary, AppError>;
}

/// Which executor runs a command's units.
#[derive(Clone, Default)]
pub enum Executor {
    /// This machine's cores, in this process.
    #[default]
    Local,
    Remote(Arc<dyn RemoteExecutor>),
}

impl Executor {
    pub fn name(&self) -> &'static str {
        match self {
            Executor::Local => "local",
            Executor::Remote(r) => r.name(),
        }
    }
}

/// A claim's content (an object of the store, so that every backend can check it exists).
#[derive(Serialize, Deserialize)]
struct Claim {
    owner: String,
    /// Seconds since the Unix epoch when the claim lapses unless renewed.
    until: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What `gyre worker` did.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerReport {
    pub unit: String,
    pub key: String,
    pub object: String,
    /// The result was already in the store (another attempt finished it).
    pub already: bool,
    pub seconds: f64,
}

impl App {
    /// The executor this App's units run on (`--executor`, or `[executor]` in gyre.toml).
    pub fn set_executor(&mut self, executor: Executor) {
        self.executor = executor;
    }

    /// Where label-issues and ablate report their units' progress on a remote executor.
    pub fn set_unit_progress(&mut self, progress: Arc<dyn Progress + Send>) {
        self.unit_progress = progress;
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The project's `[executor]` settings.
    pub fn executor_config(&self) -> Result<crate::ExecutorConfig, AppError> {
        crate::config::executor_config(&self.store.config_path())
    }

    /// The stored result of a unit, if it has one.
    pub(crate) fn unit_result(&mut self, unit: &Unit) -> Result<Option<Vec<u8>>, AppError> {
        let key = format!("unit:{}", unit.key());
        let obj = self.store.read(|tx| tx.cache(&key))?;
        match obj.and_then(|o| ContentHash::parse(&o)) {
            Some(h) => Ok(Some(self.store.objects().get(&h)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Stores a unit's result (object first, then its cache entry).
    pub(crate) fn put_unit_result(
        &mut self,
        unit: &Unit,
        bytes: &[u8],
    ) -> Result<String, AppError> {
        let obj = self.store.objects().put(bytes)?;
        let key = format!("unit:{}", unit.key());
        let time = now();
        self.store
            .write(|tx| tx.put_cache(&key, UNIT_CACHE, obj.as_str(), &time))?;
        Ok(obj.to_string())
    }

    /// `gyre worker`: runs one unit and stores its result, unless it is stored already.
    pub fn run_unit(&mut self, unit: &Unit) -> Result<WorkerReport, AppError> {
        let t0 = Instant::now();
        let key = unit.key();
        let cache_key = format!("unit:{key}");
        if let Some(obj) = self.store.read(|tx| tx.cache(&cache_key))? {
            return Ok(WorkerReport {
                unit: unit.describe(),
                key,
                object: obj,
                already: true,
                seconds: t0.elapsed().as_secs_f64(),
            });
        }
        let bytes = match unit {
            Unit::Fold { run, folds, fold } => self.fold_unit(run, *folds, *fold)?,
            Unit::Ablation { run, edit } => self.ablation_unit(run, *edit)?,
            Unit::Trial(t) => self.trial_unit(t)?,
        };
        let object = self.put_unit_result(unit, &bytes)?;
        Ok(WorkerReport {
            unit: unit.describe(),
            key,
            object,
            already: false,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Where a worker elsewhere finds this project.
    fn project_ref(&self) -> Result<ProjectRef, AppError> {
        if self.store.is_team() || self.store.server().is_some() {
            let path = self.store.config_path();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| AppError::from(gyre_store::StoreError::io(&path, e)))?;
            Ok(ProjectRef::Config { text })
        } else {
            Ok(ProjectRef::Dir {
                path: self.root().to_path_buf(),
            })
        }
    }

    /// Runs `units` on the remote executor and returns their results in order. Units already
    /// done are not run; units another driver holds a live claim on are waited for.
    pub(crate) fn run_remote(
        &mut self,
        remote: &dyn RemoteExecutor,
        label: &str,
        units: &[Unit],
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<u8>>, AppError> {
        Ok(self.run_remote_counted(remote, label, units, progress)?.0)
    }

    /// `run_remote`, and how many units were started again after their worker died.
    pub(crate) fn run_remote_counted(
        &mut self,
        remote: &dyn RemoteExecutor,
        label: &str,
        units: &[Unit],
        progress: &dyn Progress,
    ) -> Result<(Vec<Vec<u8>>, usize), AppError> {
        let owner = self.driver_name();
        let mut retries = 0;
        let total = units.len();
        let mut results: Vec<Option<Vec<u8>>> = vec![None; total];
        // Claims this driver holds: (unit index, next claim number).
        let mut held: Vec<(usize, u64)> = Vec::new();
        let mut last_renewal = Instant::now();
        loop {
            let mut todo = Vec::new();
            let mut waiting = 0;
            for (i, u) in units.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                if let Some(r) = self.unit_result(u)? {
                    results[i] = Some(r);
                    continue;
                }
                if held.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                match self.claim(u, &owner)? {
                    Some(next) => {
                        held.push((i, next));
                        todo.push(i);
                    }
                    None => waiting += 1,
                }
            }
            let done = results.iter().filter(|r| r.is_some()).count();
            progress.iteration(done, total);
            if done == total {
                break;
            }
            if !todo.is_empty() {
                let job = RemoteJob {
                    label: label.to_string(),
                    project: self.project_ref()?,
                    units: todo.iter().map(|&i| units[i].clone()).collect(),
                };
                progress.message(&format!(
                    "{label}: {} unit(s) on {} at {}{}",
                    job.units.len(),
                    remote.name(),
                    remote.address(),
                    if waiting > 0 {
                        format!(", {waiting} held by another driver")
                    } else {
                        String::new()
                    }
                ));
                let summary = {
                    let this = &mut *self;
                    let (held, results) = (&mut held, &mut results);
                    let mut tick = || -> Result<bool, AppError> {
                        if last_renewal.elapsed() >= RENEW_EVERY {
                            for (i, next) in held.iter_mut() {
                                *next = this.renew(&units[*i], &owner, *next)?;
                            }
                            last_renewal = Instant::now();
                        }
                        let mut all = true;
                        for &i in &todo {
                            if results[i].is_none() {
                                match this.unit_result(&units[i])? {
                                    Some(r) => results[i] = Some(r),
                                    None => all = false,
                                }
                            }
                        }
                        progress.iteration(results.iter().filter(|r| r.is_some()).count(), total);
                        Ok(all)
                    };
                    match remote.run(&job, &mut tick, progress) {
                        Ok(s) => s,
                        Err(e) => {
                            // Another driver (or this command again) may take them at once.
                            for (i, next) in std::mem::take(held) {
                                let _ = this.release(&units[i], &owner, next);
                            }
                            return Err(e);
                        }
                    }
                };
                retries += summary.retries;
                if summary.retries > 0 {
                    progress.message(&format!(
                        "{label}: {} unit(s) retried after their worker died (job {})",
                        summary.retries, summary.job
                    ));
                }
                held.retain(|(i, _)| !todo.contains(i));
                for &i in &todo {
                    if results[i].is_none() {
                        results[i] = self.unit_result(&units[i])?;
                    }
                    if results[i].is_none() {
                        return Err(AppError::invalid(format!(
                            "{} finished on {} without storing its result (job {})",
                            units[i].describe(),
                            remote.name(),
                            summary.job
                        )));
                    }
                }
            } else {
                // Every unit left is another driver's: wait for its results, or its lease.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok((
            results
                .into_iter()
                .map(|r| r.expect("every unit done"))
                .collect(),
            retries,
        ))
    }

    /// This driver's name in claims: who, where, which process, since when.
    pub(crate) fn driver_name(&self) -> String {
        format!(
            "{}@{}:{}:{}",
            self.user,
            hostname(),
            std::process::id(),
            unix_now()
        )
    }

    /// Claims `unit` for `owner` unless another owner holds a live claim: the next claim
    /// number to write when renewing, or None.
    fn claim(&mut self, unit: &Unit, owner: &str) -> Result<Option<u64>, AppError> {
        self.claim_key(&unit.key(), owner)
    }

    /// Claims the work named `key` for `owner` (see `claim`).
    pub(crate) fn claim_key(&mut self, key: &str, owner: &str) -> Result<Option<u64>, AppError> {
        let (mut n, mut last) = (0u64, None);
        loop {
            let k = format!("claim:{key}:{n}");
            match self.store.read(|tx| tx.cache(&k))? {
                Some(obj) => {
                    last = Some(obj);
                    n += 1;
                }
                None => break,
            }
        }
        if let Some(obj) = last.and_then(|o| ContentHash::parse(&o)) {
            let c: Claim = serde_json::from_slice(&self.store.objects().get(&obj)?)
                .map_err(|e| AppError::invalid(format!("claim of unit {key} unreadable: {e}")))?;
            if c.owner != owner && c.until > unix_now() {
                return Ok(None);
            }
        }
        match self.write_claim(key, owner, n)? {
            true => Ok(Some(n + 1)),
            false => Ok(None),
        }
    }

    /// Renews this driver's claim: writes claim number `next`; the next number to write.
    fn renew(&mut self, unit: &Unit, owner: &str, next: u64) -> Result<u64, AppError> {
        let key = unit.key();
        if !self.write_claim(&key, owner, next)? {
            return Err(AppError::invalid(format!(
                "{} was taken over by another driver while this one ran it (its lease lapsed)",
                unit.describe()
            )));
        }
        Ok(next + 1)
    }

    /// Gives up this driver's claim (a claim that lapsed at once), for a job that failed.
    fn release(&mut self, unit: &Unit, owner: &str, next: u64) -> Result<(), AppError> {
        self.write_claim_until(&unit.key(), owner, next, 0)?;
        Ok(())
    }

    /// Writes claim `n` of unit `key` for `owner`; whether it is ours (another driver may
    /// have written the same number first).
    fn write_claim(&mut self, key: &str, owner: &str, n: u64) -> Result<bool, AppError> {
        self.write_claim_until(key, owner, n, unix_now() + LEASE.as_secs())
    }

    fn write_claim_until(
        &mut self,
        key: &str,
        owner: &str,
        n: u64,
        until: u64,
    ) -> Result<bool, AppError> {
        let claim = Claim {
            owner: owner.to_string(),
            until,
        };
        let obj = self
            .store
            .objects()
            .put(&serde_json::to_vec(&claim).expect("a claim serializes"))?;
        let k = format!("claim:{key}:{n}");
        let time = now();
        let written = self.store.write(|tx| {
            tx.put_cache(&k, "claim", obj.as_str(), &time)?;
            tx.cache(&k)
        })?;
        Ok(written.as_deref() == Some(obj.as_str()))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_named_by_their_inputs() {
        let a = Unit::Fold {
            run: "r1".into(),
            folds: 5,
            fold: 0,
        };
        let b = Unit::Fold {
            run: "r1".into(),
            folds: 5,
            fold: 1,
        };
        assert_eq!(a.key(), a.clone().key());
        assert_ne!(a.key(), b.key());
        let json = serde_json::to_string(&a).unwrap();
        let back: Unit = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let t = Unit::Trial(TrialUnit {
            dataset: "d".into(),
            version: "v".into(),
            learner: "gbdt".into(),
            params: vec![("num_leaves".into(), "15".into())],
            seed: 0,
            split_seed: 0,
            finish: false,
        });
        let mut t2 = t.clone();
        if let Unit::Trial(x) = &mut t2 {
            x.finish = true;
        }
        assert_ne!(t.key(), t2.key());
        assert!(t.describe().contains("num_leaves=15"));
    }
}
