//! Command-line arguments (the only place clap is used).

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The commands by the loop's stages, in the order a turn takes them: `gyre --help` lists them
/// this way (clap lists subcommands in one flat list). Every command is in exactly one stage;
/// a test checks it.
const STAGES: &[(&str, &[&str])] = &[
    ("Start", &["init", "demo", "store"]),
    ("Work as a team", &["server", "clone"]),
    ("Import", &["import", "data"]),
    (
        "Train",
        &["train", "sweep", "runs", "show", "predictions", "predict"],
    ),
    (
        "Look: where it fails",
        &[
            "slices",
            "label-issues",
            "suite",
            "suites",
            "findings",
            "finding",
            "why",
        ],
    ),
    ("Steer: change the data, with a reason", &["edit", "ablate"]),
    (
        "Compare and ship",
        &["diff", "gate", "promote", "rollback", "aliases", "export"],
    ),
    ("Serve and watch", &["serve", "monitor", "feedback"]),
    ("History", &["log"]),
    ("Beyond one machine", &["worker"]),
    ("See it all", &["ui"]),
];

impl Cli {
    /// Parses the command line, with `--help` listing the commands by stage.
    pub fn parse_grouped() -> Cli {
        use clap::FromArgMatches;
        let cmd = Cli::command();
        let template = format!(
            "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{}Options:\n{{options}}{{after-help}}",
            grouped_commands(&cmd)
        );
        let matches = cmd.help_template(template).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// The subcommands under their stages' headings, each with its one-line help.
fn grouped_commands(cmd: &clap::Command) -> String {
    let about = |name: &str| {
        cmd.find_subcommand(name)
            .and_then(|c| c.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let width = STAGES
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (stage, names) in STAGES {
        out.push_str(&format!("{stage}:\n"));
        for name in *names {
            out.push_str(&format!("  {name:<width$}  {}\n", about(name)));
        }
        out.push('\n');
    }
    out
}

/// `gyre -V`: the version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GYRE_COMMIT"), ")");

/// `gyre --version`: also the CPU features the build may use, and those this CPU has (the
/// bootstrap picks AVX-512 or AVX2 kernels at run time).
fn long_version() -> &'static str {
    static LONG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LONG.get_or_init(|| {
        let mut built = Vec::new();
        let mut here: Vec<&str> = Vec::new();
        macro_rules! features {
            ($($f:tt),*) => {$(
                if cfg!(target_feature = $f) { built.push($f); }
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!($f) { here.push($f); }
            )*};
        }
        features!(
            "sse4.2", "popcnt", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw"
        );
        format!(
            "{VERSION}\ntarget: {} {}\nbuilt for: {}\nthis CPU: {}",
            std::env::consts::ARCH,
            std::env::consts::OS,
            if built.is_empty() {
                "the architecture's baseline".to_string()
            } else {
                built.join(" ")
            },
            if here.is_empty() {
                "baseline".to_string()
            } else {
                here.join(" ")
            }
        )
    })
}

#[derive(Parser, Debug)]
#[command(
    name = "gyre",
    version = VERSION,
    long_version = long_version(),
    about = "The whole iteration loop of one ML model: import, train, find failures, steer, compare, ship, watch"
)]
pub struct Cli {
    /// The project directory (default: the nearest directory upward with gyre.toml)
    #[arg(long, global = true, env = "GYRE_PROJECT", value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the readable summary
    #[arg(long, global = true)]
    pub json: bool,
    /// Where sweep trials, label-issue folds and ablation retrains run: local (this machine's
    /// cores) or ray (the cluster at GYRE_RAY_URL, token RAY_AUTH_TOKEN); default gyre.toml's
    /// [executor] kind, else local
    #[arg(long, global = true, env = "GYRE_EXECUTOR", value_name = "local|ray")]
    pub executor: Option<ExecutorArg>,
    #[command(subcommand)]
    pub command: Command,
}

/// A team store: metadata in PostgreSQL, objects in an S3-compatible bucket. Credentials come
/// from the environment and the usual files, never from the command line or gyre.toml.
#[derive(Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The team store's metadata: postgres://USER@HOST:PORT/DATABASE (password from
    /// PGPASSWORD or ~/.pgpass)
    #[arg(long, value_name = "URL", requires = "objects")]
    pub store: Option<String>,
    /// The team store's objects: s3://BUCKET/PREFIX (keys from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)
    #[arg(long, value_name = "URL", requires = "store")]
    pub objects: Option<String>,
    /// The S3-compatible endpoint (MinIO, Ceph, Garage...): default AWS_ENDPOINT_URL, else AWS
    #[arg(long, value_name = "URL", requires = "objects")]
    pub endpoint: Option<String>,
    /// The bucket's region: default AWS_REGION, else us-east-1
    #[arg(long, requires = "objects")]
    pub region: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum StoreAction {
    /// Copy the project, every object, run, edit, journal entry and alias move, into a new
    /// project in DIR: on the team store with --store and --objects, else embedded
    Copy {
        /// The new project's directory (or --to DIR)
        #[arg(conflicts_with = "to", required_unless_present = "to")]
        dir: Option<PathBuf>,
        /// The new project's directory
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// How `gyre server` serves.
#[derive(Args, Debug, Clone)]
pub struct ServerRunArgs {
    /// The address to listen on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub addr: String,
    /// Make (or join) the team store's project here first: its metadata
    #[command(flatten)]
    pub store: StoreArgs,
    /// Accept tokens over plain HTTP from other machines (by default only this machine's, where
    /// a TLS reverse proxy runs; see README)
    #[arg(long)]
    pub allow_plain_http: bool,
    /// The largest object an upload may carry
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = crate::commands::parse_size)]
    pub max_object: usize,
    /// Serve HTTPS with this certificate chain (PEM); with --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ServerAction {
    /// The people of the project: add one with a role, or list them
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Personal tokens: create one, list them, revoke one
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add a person; prints their first token, once
    Add {
        /// The person's name (letters, digits, '.', '_', '-', '@'), as the journal will show it
        name: String,
        /// viewer (reads), member (also imports, edits, trains, triages, serves), maintainer
        /// (also promotes, rolls back, manages people)
        #[arg(long, value_parser = ["viewer", "member", "maintainer"])]
        role: String,
    },
    /// The people and their roles
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Make another token for a person (in a clone: yourself by default); printed once
    Create {
        /// The person (or --user NAME)
        #[arg(value_name = "NAME", conflicts_with = "user")]
        name: Option<String>,
        /// The person
        #[arg(long)]
        user: Option<String>,
        /// What it is for (a laptop, a replica)
        #[arg(long, default_value = "token")]
        label: String,
    },
    /// Tokens (never their secrets): id, person, label, made, revoked (in a clone: yours)
    List {
        /// Only this person's
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id, or every live token of a person: refused from the next request on
    Revoke {
        /// The token's id (tok_...), from `gyre server token list`
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Every live token of this person (a laptop lost, someone leaving)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a project: gyre.toml and .gyre/ (metadata and objects), or one on the team store
    Init {
        /// Where to create it (default: the current directory)
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Where the project's metadata and objects live; copy it to another store
    Store {
        #[command(subcommand)]
        action: Option<StoreAction>,
    },
    /// The team server: the project over HTTP with people, tokens and roles (and its web UI)
    #[command(args_conflicts_with_subcommands = true)]
    Server {
        #[command(subcommand)]
        action: Option<ServerAction>,
        #[command(flatten)]
        run: ServerRunArgs,
    },
    /// Work on a team server's project from DIR: every command works there (token from GYRE_TOKEN)
    Clone {
        /// The server: https://gyre.team.internal (or http://127.0.0.1:PORT)
        url: String,
        /// The new directory
        dir: PathBuf,
    },
    /// Import a CSV, CSV.gz or Parquet file as a dataset
    Import(ImportArgs),
    /// Describe datasets: versions, schema, column statistics, labels, splits
    Data {
        /// Only this dataset
        name: Option<String>,
        /// The chain of versions: each edit, why, and what it changed
        #[arg(long)]
        versions: bool,
        /// Materialize this past version (a unique id prefix) and describe it
        #[arg(long, value_name = "V")]
        version: Option<String>,
    },
    /// Change the data with a reason: each edit makes a new version
    Edit(EditArgs),
    /// Define a suite: a named set of holdout rows with optional requirements
    Suite {
        #[command(subcommand)]
        command: SuiteCommand,
    },
    /// List suites
    Suites,
    /// Failure slices of a run (SliceLine): where its error is far above average
    Slices(SlicesArgs),
    /// Compare two runs example by example: deltas with intervals, flips, McNemar, slices that got worse
    Diff {
        /// The base run (id prefix, alias or `latest`)
        base: String,
        /// The candidate run
        candidate: String,
        /// Only this suite
        #[arg(long)]
        suite: Option<String>,
        /// List the flipped rows
        #[arg(long)]
        rows: bool,
        /// Bootstrap resamples (default from [gate] in gyre.toml)
        #[arg(long)]
        resamples: Option<usize>,
    },
    /// Check a run against the promotion policy ([gate] in gyre.toml); exit 1 when it fails
    Gate {
        /// The run to check: an id (or unique prefix), an alias, or `latest`
        run: String,
        /// The run to compare against (default: the champion)
        #[arg(long, value_name = "REF")]
        against: Option<String>,
    },
    /// Make a run the champion (or another alias) if it passes the gate
    Promote {
        /// The run: an id (or unique prefix), an alias, or `latest`
        run: String,
        #[command(flatten)]
        why: Why,
        /// Promote even if the gate fails (recorded)
        #[arg(long)]
        force: bool,
        /// The alias to move (default: champion)
        #[arg(long, value_name = "NAME")]
        alias: Option<String>,
    },
    /// Move the champion (or another alias) back to the run it pointed at before
    Rollback {
        #[command(flatten)]
        why: Why,
        /// The alias to move back (default: champion)
        #[arg(long, value_name = "NAME")]
        alias: Option<String>,
    },
    /// Every alias with its full history: from, to, who, when, why, forced
    Aliases,
    /// A row's story: its values, the edits that touched it and why, its labels, its predictions
    Why {
        /// A row id (or --id-column key)
        row: String,
        /// The dataset (default: the project's only dataset)
        #[arg(long)]
        dataset: Option<String>,
        /// The run whose score is broken down by feature (default: the champion)
        #[arg(long)]
        run: Option<String>,
    },
    /// What each edit is worth: retrain without it and compare, for every edit in the run's version
    Ablate {
        /// A run id (or unique prefix), alias, or `latest`
        run: String,
        /// How many retrains at once (default: all)
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Serve the champion (and a challenger beside it) over HTTP until SIGTERM or Ctrl-C
    Serve {
        /// The address to listen on (port 0 picks a free one)
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// The champion: an alias (followed: promote and rollback take effect live) or a run
        #[arg(long, default_value = "champion")]
        run: String,
        /// A challenger run or alias, served beside the champion
        #[arg(long)]
        challenger: Option<String>,
        /// Share of requests the challenger answers (0..1; sticky by the request's "key")
        #[arg(long, requires = "challenger", conflicts_with = "shadow")]
        split: Option<f64>,
        /// The challenger scores every request in the shadow: logged, never returned
        #[arg(long, requires = "challenger")]
        shadow: bool,
        /// Answer 408 to a request (body included) that takes longer than this
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Answer 413 to a request body larger than this (1MiB holds about 3,000 Adult rows)
        #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = crate::commands::parse_size)]
        max_body: usize,
        /// A replica of the team server's project: load the champion from it, follow its alias,
        /// and ship the prediction log to it (kept here first)
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        /// The replica's directory (default: a clone under ~/.cache/gyre/replicas, one per
        /// server and port)
        #[arg(long, value_name = "DIR", requires = "remote")]
        dir: Option<PathBuf>,
    },
    /// The project in a browser: runs, diffs, label review, findings, data, monitor, journal
    Ui {
        /// The address to listen on; any address but loopback needs a token
        #[arg(long, default_value = "127.0.0.1:8765")]
        addr: String,
        /// Require a token on every request even on loopback (one is generated and printed)
        #[arg(long)]
        token: bool,
    },
    /// Drift, online quality per model, shadow disagreement, latency and errors from the prediction log
    Monitor {
        /// Only what was served since then: a duration back (30m, 2h, 7d) or a time (2026-11-27)
        #[arg(long)]
        since: Option<String>,
    },
    /// Feedback labels sent to the server
    Feedback {
        #[command(subcommand)]
        command: FeedbackCommand,
    },
    /// Findings to triage: failing slices, suites and suspected label errors
    Findings,
    /// Decide on a finding: accept it (let it slide) or fix it (the next edits are linked)
    Finding {
        /// accept or fix
        #[arg(value_parser = ["accept", "fix"])]
        decision: String,
        /// The finding's number
        id: i64,
        #[command(flatten)]
        why: Why,
    },
    /// The whole loop on the bundled UCI Adult data, in a new project directory
    Demo {
        /// Where to create the demo project (default: ./gyre-demo, or -2, -3... if taken)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Suspected label errors in a run's training rows (confident learning on K-fold predictions)
    LabelIssues {
        /// A run id (or unique prefix), alias, or `latest`
        run: String,
        /// Keep only the N most suspicious
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Cross-validation folds
        #[arg(long, default_value_t = 5)]
        folds: usize,
    },
    /// The journal: everything done to this project, by whom, when and why
    Log,
    /// Train a learner on the current dataset version and evaluate it on every suite
    Train(TrainArgs),
    /// Search a learner's params (grid, random, log ranges) with successive halving; `sweep show ID` ranks a sweep's trials
    Sweep {
        #[command(subcommand)]
        action: Option<SweepAction>,
        #[command(flatten)]
        args: SweepArgs,
    },
    /// Run one unit of parallel work and store its result (what the Ray executor runs on each node)
    Worker {
        /// The unit, as JSON (see docs: units are named by their inputs)
        unit: String,
    },
    /// List runs (with --sort, --where or --limit, one page of them); `runs import` records predictions made elsewhere
    Runs {
        /// Sort by a field: created, id, learner, seed, who, a metric (auc) or a param (num_leaves); - first for descending
        #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
        sort: Option<String>,
        /// Only runs matching every condition, e.g. "auc >= 0.92, learner = gbdt" (ops: = != < <= > >= ~)
        #[arg(long = "where", value_name = "CONDITIONS")]
        filter: Option<String>,
        /// Runs per page
        #[arg(long)]
        limit: Option<usize>,
        /// Runs to skip
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[command(subcommand)]
        action: Option<RunsAction>,
    },
    /// Show one run: learner, params, version, metrics, timings
    Show {
        /// A run id (or unique prefix), or `latest`
        run: String,
    },
    /// Score a CSV or Parquet file with a run, offline: the same checks and numbers as serving
    Predict {
        /// A run id (or unique prefix), alias, or `latest`
        run: String,
        /// The rows to score (.csv, .csv.gz or .parquet), with a column per feature; other
        /// columns are ignored (and listed)
        file: PathBuf,
        /// The output file: .csv or .parquet (written whole, or not at all)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// An input column to copy into the output before the predictions, e.g. an id (repeatable)
        #[arg(long, value_name = "COL")]
        keep: Vec<String>,
    },
    /// Write a run's per-example predictions to CSV or Parquet
    Predictions {
        /// A run id (or unique prefix), or `latest`
        run: String,
        /// The suite whose rows to write (default: holdout)
        #[arg(long)]
        suite: Option<String>,
        /// The output file: .csv or .parquet
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Export a run for other tools: ONNX model, its inputs, predictions, model card
    Export {
        /// A run id (or unique prefix), alias, or `latest`
        run: String,
        /// The directory to write into (created; must be empty unless --force)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write into a non-empty directory, replacing the export's files there
        #[arg(long)]
        force: bool,
    },
}

/// `gyre runs import` and `gyre runs holdout`.
#[derive(Subcommand, Debug)]
pub enum RunsAction {
    /// Record predictions made elsewhere (a notebook, another team) for a version's holdout rows
    /// as a run, checked as a command learner's are (docs/learner-protocol.md); `gyre runs
    /// holdout` writes the rows to predict
    Import {
        /// Parquet: `row_id` and one probability column per class (named by the class), or
        /// `prediction` for regression; every holdout row exactly once
        predictions: PathBuf,
        /// A name for the run, shown with it
        #[arg(long)]
        name: String,
        /// Why it is imported (kept in the journal)
        #[arg(long)]
        why: String,
        /// The ONNX model that made the predictions, so the run can be served
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// The dataset version predicted (default: the latest)
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// The dataset (default: the project's only dataset)
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Write a version's holdout rows (`row_id` and the features, as a command learner reads
    /// them) to Parquet: what an imported run must predict
    Holdout {
        /// The output file (.parquet)
        #[arg(long)]
        out: PathBuf,
        /// The dataset version (default: the latest)
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// The dataset (default: the project's only dataset)
        #[arg(long)]
        dataset: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The learner: gbdt (gradient-boosted trees), linear, or a command of gyre.toml's [learners]
    #[arg(long, default_value = "gbdt")]
    pub learner: String,
    /// A learner parameter, e.g. -p num_iterations=200 -p learning_rate=0.05 (repeatable)
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// The random seed (bagging, feature sampling, validation share)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train K runs with seeds SEED..SEED+K-1 and report the flips between them (the noise floor)
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub seeds: usize,
    /// The dataset version (default: the latest)
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// The dataset (default: the project's only dataset)
    #[arg(long)]
    pub dataset: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutorArg {
    Local,
    Ray,
}

#[derive(Subcommand, Debug)]
pub enum SweepAction {
    /// A sweep's finished trials ranked on the holdout, with intervals, and whether the best is
    /// distinguishable from the runner-up
    Show {
        /// The sweep's id (or a unique prefix), or `latest`
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The learner: gbdt, linear, or a command of gyre.toml's [learners]
    #[arg(long, default_value = "gbdt")]
    pub learner: String,
    /// A param to search: KEY=V1,V2,.. (values), KEY=LO..HI (uniform), KEY=LO..HI:log
    /// (log-uniform), or KEY=V (fixed; for the budget, its full value) (repeatable)
    #[arg(
        short = 'p',
        long = "param",
        value_name = "KEY=SPEC",
        allow_hyphen_values = true
    )]
    pub params: Vec<String>,
    /// How many trials (default: every point of a grid, else 16 random ones)
    #[arg(long, value_name = "N")]
    pub trials: Option<usize>,
    /// The seed of the draws, the validation rows and the fits
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fit every trial with K seeds (SEED..SEED+K-1); a finished trial is a seed group
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub seeds: usize,
    /// Fit every trial at the full budget (no successive halving)
    #[arg(long)]
    pub no_early_stop: bool,
    /// Keep the best 1/ETA of each rung
    #[arg(long, default_value_t = 3)]
    pub eta: usize,
    /// The first rung's budget (default: the full budget / ETA^3)
    #[arg(long, value_name = "N")]
    pub min_budget: Option<usize>,
    /// The param that is the budget, for a command learner (epochs, trees); gbdt's is
    /// num_iterations, linear's max_iter
    #[arg(long, value_name = "PARAM")]
    pub budget: Option<String>,
    /// The dataset version (default: the latest)
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// The dataset (default: the project's only dataset)
    #[arg(long)]
    pub dataset: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TaskArg {
    Binary,
    Multiclass,
    Regression,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MissingTargetArg {
    /// Refuse the file, naming the first row without a target
    Fail,
    /// Leave rows without a target out, and count them
    Drop,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file to import (.csv, .csv.gz or .parquet)
    pub path: PathBuf,
    /// The column to predict (with --target-expr: the name of the label it makes)
    #[arg(long, value_name = "COL")]
    pub target: String,
    /// Make the label from the file's columns, e.g. "arr_delay > 15" (classes true/false) or
    /// "CASE WHEN arr_delay > 15 THEN 'late' ELSE 'on_time' END"; the columns it reads are
    /// left out of the features
    #[arg(long, value_name = "EXPR")]
    pub target_expr: Option<String>,
    /// Rows whose target is missing (NULL)
    #[arg(long, value_enum, default_value = "fail")]
    pub missing_target: MissingTargetArg,
    /// Leave a column out of the features; it stays a column for predicates, slices and why
    /// (repeatable)
    #[arg(long, value_name = "COL")]
    pub ignore: Vec<String>,
    /// A binary task's positive class, the one precision, recall, F1 and average precision
    /// are about (default: the second class in sorted order)
    #[arg(long, value_name = "CLASS")]
    pub positive: Option<String>,
    /// The dataset's name (default: the file's name without extensions)
    #[arg(long)]
    pub name: Option<String>,
    /// A column whose values (train, valid, test, holdout) assign the splits
    #[arg(long, value_name = "COL", conflicts_with = "holdout")]
    pub split_column: Option<String>,
    /// Fraction of rows held out for evaluation (default 0.2; stratified by class; with
    /// --time-column, the latest rows)
    #[arg(long, value_name = "FRAC")]
    pub holdout: Option<f64>,
    /// Seed of the holdout draw
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// A time column: hold out the latest rows; never used as a feature
    #[arg(long, value_name = "COL")]
    pub time_column: Option<String>,
    /// A unique key column, kept as each row's key and never used as a feature
    #[arg(long, value_name = "COL")]
    pub id_column: Option<String>,
    /// Values read as missing (replaces the defaults "", "?", "NA", "null"); repeatable
    #[arg(long, value_name = "VALUE", num_args = 1)]
    pub na: Vec<String>,
    /// The task (default: inferred from the target)
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// The dataset (default: the project's only dataset)
    #[arg(long, global = true)]
    pub dataset: Option<String>,
    #[command(subcommand)]
    pub kind: EditCommand,
}

/// The reason every edit and decision must give; required, so it shows in the usage line.
#[derive(Args, Debug, Clone)]
pub struct Why {
    /// Why: kept with the change in the journal, for whoever reads it later
    #[arg(long, value_name = "TEXT")]
    pub why: String,
}

#[derive(Subcommand, Debug)]
pub enum EditCommand {
    /// Leave matching training rows out of training
    Exclude {
        /// The training rows to leave out: a SQL predicate, e.g. "age < 18 AND workclass = 'Never-worked'"
        #[arg(long = "where", value_name = "PRED")]
        predicate: String,
        #[command(flatten)]
        why: Why,
    },
    /// Bring back matching training rows an earlier exclude removed
    Include {
        /// The excluded training rows to bring back: a SQL predicate, e.g. "age >= 17"
        #[arg(long = "where", value_name = "PRED")]
        predicate: String,
        #[command(flatten)]
        why: Why,
    },
    /// Fix labels of listed rows or of matching rows, in every split
    Relabel {
        /// Row ids (or --id-column keys), comma-separated
        #[arg(
            long,
            value_delimiter = ',',
            value_name = "IDS",
            conflicts_with = "predicate"
        )]
        rows: Option<Vec<String>>,
        /// Or the rows matching a SQL predicate, e.g. "workclass = 'Never-worked'"
        #[arg(long = "where", value_name = "PRED")]
        predicate: Option<String>,
        /// The new label
        #[arg(long, value_name = "LABEL")]
        to: String,
        /// Allow a label that is not yet a class
        #[arg(long)]
        new_class: bool,
        #[command(flatten)]
        why: Why,
    },
    /// Multiply the training weight of matching training rows
    Weight {
        /// The training rows to reweight: a SQL predicate, e.g. "sex = 'Female' AND age < 25"
        #[arg(long = "where", value_name = "PRED")]
        predicate: String,
        /// The factor (positive)
        #[arg(long, value_name = "FACTOR", allow_negative_numbers = true)]
        by: f64,
        #[command(flatten)]
        why: Why,
    },
    /// Append the rows of another file with the same columns (fresh row ids)
    AddSource {
        /// The file (.csv, .csv.gz or .parquet)
        path: PathBuf,
        /// Join the file's other columns onto the rows with the same key: one column, or several
        /// separated by commas (origin,time_hour); a key must name one row of the file
        #[arg(long, value_name = "COL[,COL...]")]
        key: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Stop using a column as a feature
    DropFeature {
        /// The column
        column: String,
        #[command(flatten)]
        why: Why,
    },
    /// Add a feature computed from each row's columns by a SQL expression; serving and gyre
    /// predict compute it from the raw fields the same way
    AddFeature {
        /// The new feature's name
        name: String,
        /// A SQL expression over the row's columns, e.g. "capital_gain - capital_loss",
        /// "CASE WHEN age < 30 THEN 'young' ELSE 'older' END", "EXTRACT(hour FROM departure)"
        #[arg(long, value_name = "EXPR")]
        expr: String,
        #[command(flatten)]
        why: Why,
    },
    /// Undo an earlier edit
    Revert {
        /// The edit's number (see gyre data --versions)
        edit: i64,
        #[command(flatten)]
        why: Why,
    },
}

#[derive(Subcommand, Debug)]
pub enum SuiteCommand {
    /// Add a suite
    Add {
        /// The suite's name
        name: String,
        /// Holdout rows matching this predicate
        #[arg(long = "where", value_name = "PRED")]
        predicate: Option<String>,
        /// Or these rows (ids or --id-column keys), comma-separated
        #[arg(long, value_delimiter = ',', value_name = "IDS")]
        rows: Option<Vec<String>>,
        /// A requirement such as 'accuracy>=0.85' (repeatable)
        #[arg(long = "require", value_name = "METRIC>=X")]
        requirements: Vec<String>,
        /// The dataset (default: the project's only dataset)
        #[arg(long)]
        dataset: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct SlicesArgs {
    /// A run id (or unique prefix), or `latest`
    pub run: String,
    /// Look only at this suite's rows (default: holdout)
    #[arg(long)]
    pub suite: Option<String>,
    /// How many slices
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// The most predicates per slice
    #[arg(long, default_value_t = 3)]
    pub max_level: usize,
    /// The fewest rows per slice
    #[arg(long, default_value_t = 32)]
    pub min_support: usize,
    /// Weight of error against size in the score, in (0, 1]
    #[arg(long, default_value_t = 0.95)]
    pub alpha: f64,
    /// A slice whose rows overlap a better one's by at least this Jaccard similarity is shown
    /// under it as another description of the same rows, in (0, 1]
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
    /// The per-example error: error (0/1, squared for regression) or log_loss
    #[arg(long)]
    pub error: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum FeedbackCommand {
    /// The served rows that received a true label become a new source of the dataset (an add-source edit)
    Import {
        #[command(flatten)]
        why: Why,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_exactly_one_stage_of_the_help() {
        let cmd = Cli::command();
        let listed: Vec<&str> = STAGES.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            let times = listed.iter().filter(|n| **n == name).count();
            assert_eq!(times, 1, "{name} is listed {times} times in STAGES");
        }
        for name in &listed {
            assert!(
                cmd.find_subcommand(name).is_some(),
                "STAGES names {name}, no such command"
            );
        }
        let help = grouped_commands(&cmd);
        let train = help.find("\n  train ").unwrap();
        let import = help.find("\n  import ").unwrap();
        let serve = help.find("\n  serve ").unwrap();
        assert!(import < train && train < serve, "{help}");
    }

    #[test]
    fn a_required_why_shows_in_the_usage_line() {
        let mut cmd = Cli::command();
        for path in [
            &["promote"][..],
            &["rollback"],
            &["finding"],
            &["feedback", "import"],
            &["edit", "exclude"],
            &["edit", "relabel"],
        ] {
            let mut c = &mut cmd;
            for p in path {
                c = c.find_subcommand_mut(p).unwrap();
            }
            let usage = c.render_usage().to_string();
            assert!(usage.contains("--why <TEXT>"), "{path:?}: {usage}");
        }
    }

    #[test]
    fn the_version_names_the_commit_and_the_cpu_features() {
        let commit = env!("GYRE_COMMIT");
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{commit}"
        );
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")));
        assert!(VERSION.contains(commit));
        let long = long_version();
        assert!(long.starts_with(VERSION));
        assert!(
            long.contains("\nbuilt for: ") && long.contains("\nthis CPU: "),
            "{long}"
        );
    }

    #[test]
    fn every_argument_has_help() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                if a.get_help().is_none() && !["help", "version"].contains(&a.get_id().as_str()) {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for s in c.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "gyre", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
