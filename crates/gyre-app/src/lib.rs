//! gyre's API: each command is a function that changes or reads the project and returns a report
//! (a serializable value). The CLI prints reports; the server will return them as JSON.
//!
//! This crate owns the effects the pure crates must not have: the clock, the user's name, and the
//! order of writes (objects first, then one metadata transaction with its journal entry).

mod ablate;
mod command_learner;
mod config;
mod curves;
mod data;
mod diff;
mod edit;
mod error;
mod explain;
mod export;
mod external_model;
mod feedback;
mod findings;
mod import;
mod journal;
mod label_issues;
mod model_card;
mod monitor;
mod onnx_runtime;
mod predict_file;
mod prediction_log;
mod predictions;
mod remote;
mod request_row;
mod review;
mod runs;
mod runs_import;
mod serving;
mod ship;
mod skew;
mod slicing;
mod suites;
mod sweep;
mod table_view;
mod team_server;
mod team_store;
mod train;
mod units;
mod watch_stats;
mod why;

pub use ablate::{AblateReport, EditWorth};
pub use command_learner::{CommandInfo, PROTOCOL_VERSION};
pub use config::{ExecutorConfig, GateConfig, LearnerConfig, default_config};
pub use curves::CurvesReport;
pub use data::{ColumnHistogram, DataReport, DatasetReport, VersionReport, VersionsReport};
pub use diff::{DiffReport, DiffRequest};
pub use edit::{EditReport, EditSpec};
pub use error::AppError;
pub use explain::{
    Explanation, FeatureContribution, FeatureImportance, Importance, RowContributions,
};
pub use export::{ExportReport, ExportRequest, ExportedFile, InputFeature, InputsSpec, OnnxReport};
pub use feedback::FeedbackImportReport;
pub use findings::{DataChecks, Finding, FindingChanges, FindingsReport};
pub use gyre_eval::slices::SliceParams;
pub use gyre_learn::{LEARNERS, Progress};
pub use gyre_store::StoreConfig;
pub use gyre_store::{CONFIG_FILE, Role};
pub use gyre_store::{CompareOp, JournalQuery, RunField, RunFilter, RunsQuery, StoreError};
pub use import::{ImportReport, ImportRequest};
pub use journal::{JournalPageReport, LogReport};
pub use label_issues::{LabelIssueRow, LabelIssuesReport};
pub use monitor::{
    DISTANCE_SAMPLE as MONITOR_DISTANCE_SAMPLE, DriftReference, FeatureDrift, FeatureReference,
    MIN_ROWS as MONITOR_MIN_ROWS, MonitorReport, watched_score,
};
pub use predict_file::{PredictFileReport, PredictFileRequest};
pub use prediction_log::{LogWriter, timestamp};
pub use predictions::PredictionsReport;
pub use remote::{CloneReport, SHIP_EVERY, Shipper, clone_project};
pub use request_row::{FieldName, FieldValue, RequestRow};
pub use review::{LabelDecision, ReviewReport, RowDecision, RowsTable, ShownRow};
pub use runs::{
    ExternalModelNote, MAX_PAGE, RunBrief, RunsPageReport, ShowReport, parse_run_filters, run_field,
};
pub use runs_import::{HoldoutReport, ImportRunRequest, ImportedFrom};
pub use serving::{FieldError, ServedPrediction, ServingModel};
pub use ship::{AliasHistory, AliasesReport, GateReport, PromoteReport};
pub use skew::{Leak, Skew};
pub use slicing::{SliceAlso, SliceRow, SlicesReport, SlicesRequest};
pub use suites::{Suite, SuiteResult, SuitesReport};
pub use sweep::{SweepReport, SweepRequest};
pub use team_server::{Caller, TeamError, TeamService, people};
pub use team_store::{CopyReport, StoreLocation, init_with};
pub use train::{RunReport, SeedFloor, SeedsNote, TrainReport, TrainRequest};
pub use units::{
    Executor, ProjectRef, RemoteExecutor, RemoteJob, RemoteSummary, TrialUnit, Unit, WorkerReport,
};
pub use why::WhyReport;

use gyre_store::Store;
use std::path::{Path, PathBuf};

/// Who is acting and on what: the context every command runs in.
pub struct App {
    store: Store,
    user: String,
    command: String,
    /// The last version materialized, by dataset (see `load_version`).
    loaded: Option<(String, table_view::LoadedVersion)>,
    /// Where units of parallel work run (see `units`).
    executor: units::Executor,
    /// Where commands without a progress argument (label-issues, ablate) report their units.
    unit_progress: std::sync::Arc<dyn Progress + Send>,
}

/// Where to look for the project.
pub enum ProjectLocation<'a> {
    /// `--project DIR` or `$GYRE_PROJECT`.
    Explicit(&'a Path),
    /// The nearest directory upward from here with `gyre.toml`.
    Discover(&'a Path),
}

#[derive(serde::Serialize)]
pub struct InitReport {
    pub project: PathBuf,
    pub config: PathBuf,
    /// Where its metadata and objects live.
    pub store: StoreLocation,
    /// The team store already held the team's project, which this directory now works on.
    pub joined: bool,
}

/// Creates a project in `dir` on the embedded store.
pub fn init(dir: &Path, command: &str) -> Result<InitReport, AppError> {
    init_with(dir, command, None)
}

impl App {
    /// Opens the project. `command` is the command line as typed, kept in the journal.
    pub fn open(at: ProjectLocation<'_>, command: &str) -> Result<App, AppError> {
        let root = match at {
            ProjectLocation::Explicit(dir) => {
                if !dir.join(gyre_store::CONFIG_FILE).is_file() {
                    return Err(gyre_store::StoreError::NoProject {
                        start: dir.to_path_buf(),
                    }
                    .into());
                }
                dir.to_path_buf()
            }
            ProjectLocation::Discover(start) => gyre_store::discover(start)?,
        };
        let store = Store::open(&root)?;
        // On a team server's clone the person is whoever the token belongs to (the server
        // records that name, whatever this process says).
        let user = match store.server() {
            Some(server) => server.whoami()?.name,
            None => current_user(),
        };
        Ok(App {
            store,
            user,
            command: command.to_string(),
            loaded: None,
            executor: units::Executor::Local,
            unit_progress: std::sync::Arc::new(gyre_learn::NoProgress),
        })
    }

    /// The command line kept in the journal for what this `App` does next (a long-lived face
    /// such as the web UI names each action it takes).
    pub fn set_command(&mut self, command: &str) {
        self.command = command.to_string();
    }

    /// The person acting, as a server authenticated them (the web UI of `gyre server` names
    /// each request's person).
    pub fn set_user(&mut self, name: &str) {
        self.user = name.to_string();
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Appends this command to the journal in its own transaction (for commands whose only change is the entry).
    fn record(&mut self, why: Option<&str>, objects: &[String]) -> Result<(), AppError> {
        let time = now();
        let (user, command) = (self.user.clone(), self.command.clone());
        self.store.write(|tx| {
            tx.append_journal(&gyre_store::NewJournalEntry {
                time: &time,
                user: &user,
                command: &command,
                why,
                objects,
            })
            .map_err(AppError::from)
        })?;
        Ok(())
    }
}

/// The non-empty reason a change needs; `what` says what needs it ("every edit").
pub(crate) fn require_why<'a>(
    why: Option<&'a str>,
    what: &str,
    hint: Option<&str>,
) -> Result<&'a str, AppError> {
    why.map(str::trim)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| AppError::Invalid {
            message: format!("{what} needs a reason: --why TEXT"),
            hint: hint.map(String::from),
        })
}

/// `$GYRE_USER`, else the OS user (from the environment, else the password file).
fn current_user() -> String {
    ["GYRE_USER", "USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .or_else(os_user_name)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of this process's real uid in /etc/passwd (Unix without $USER, e.g. cron or CI).
fn os_user_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
    })
}

/// Wall-clock time, UTC, RFC 3339 with milliseconds.
fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
