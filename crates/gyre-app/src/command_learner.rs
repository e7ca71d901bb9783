//! A learner that is a command (`[learners.NAME]` in gyre.toml), speaking the versioned
//! protocol of docs/learner-protocol.md: gyre writes the training rows, the rows to predict and a
//! JSON spec into a fresh working directory, runs the command there, and checks the predictions
//! it writes before anything is recorded. It plugs into the run path as an ordinary
//! `gyre_learn::Learner`, so train, label-issues (one command run per fold) and ablate use it as
//! they use the built-in learners.
//!
//! The effects live here, not in gyre-learn: files, a child process in a process group of its
//! own (a timeout kills the whole group), and the wall clock.

use crate::config::LearnerConfig;
use crate::external_model::{ExternalInfo, ExternalModel, FeatureSpec};
use crate::{AppError, external_model};
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use gyre_core::{ColumnKind, ContentHash, DatasetSchema};
use gyre_learn::{Column, Features, LearnError, Learner, Model, Progress, SeedEffect, TrainSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The protocol version gyre speaks (`protocol` in the spec).
pub const PROTOCOL_VERSION: u32 = 1;

/// Lines of the command's stderr an error shows.
const STDERR_TAIL: usize = 12;

/// How far a row's class probabilities may sum from 1.
pub const PROBABILITY_TOLERANCE: f64 = 1e-4;

/// A `[learners.NAME]` command with checked params, ready to run.
pub(crate) struct CommandLearner {
    name: String,
    /// The command as configured.
    command: String,
    /// The command with every word that names a project file made absolute.
    resolved: String,
    /// SHA-256 over the files the command names (and `files`), relative path and bytes.
    files_hash: String,
    timeout: Duration,
    root: PathBuf,
    schema: DatasetSchema,
    params: serde_json::Map<String, serde_json::Value>,
}

impl CommandLearner {
    pub(crate) fn new(
        name: &str,
        config: &LearnerConfig,
        root: &Path,
        schema: &DatasetSchema,
        params: &[(String, String)],
    ) -> Result<CommandLearner, AppError> {
        let (resolved, files) = resolve_command(&config.command, root);
        let mut all: Vec<PathBuf> = files;
        for f in &config.files {
            let p = root.join(f);
            if !p.exists() {
                return Err(AppError::invalid(format!(
                    "gyre.toml: [learners.{name}] files: {f:?} does not exist in {}",
                    root.display()
                )));
            }
            all.push(p);
        }
        Ok(CommandLearner {
            name: name.to_string(),
            command: config.command.clone(),
            resolved,
            files_hash: hash_files(root, &all)?,
            timeout: config.timeout(name)?,
            root: root.to_path_buf(),
            schema: schema.clone(),
            params: params
                .iter()
                .map(|(k, v)| (k.clone(), param_value(v)))
                .collect(),
        })
    }

    /// What `gyre show` tells of the learner: the command and the hash of its files.
    pub(crate) fn info(&self) -> CommandInfo {
        CommandInfo {
            name: self.name.clone(),
            command: self.command.clone(),
            files_hash: self.files_hash.clone(),
        }
    }

    fn spec<'a>(
        &'a self,
        task: gyre_learn::Task,
        features: &'a [FeatureSpec],
        seed: u64,
    ) -> Spec<'a> {
        Spec {
            protocol: PROTOCOL_VERSION,
            learner: &self.name,
            task: task_name(task),
            target: &self.schema.target,
            classes: &self.schema.classes,
            features,
            params: &self.params,
            seed,
        }
    }
}

/// The command of a run, as `gyre show` names it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct CommandInfo {
    /// The `[learners.NAME]` it was declared as.
    pub name: String,
    pub command: String,
    /// SHA-256 of the files the command names (path and bytes), so a changed script shows.
    pub files_hash: String,
}

/// The JSON spec a command reads from `GYRE_SPEC`.
#[derive(serde::Serialize)]
struct Spec<'a> {
    protocol: u32,
    learner: &'a str,
    task: &'static str,
    target: &'a str,
    classes: &'a [String],
    features: &'a [FeatureSpec],
    params: &'a serde_json::Map<String, serde_json::Value>,
    seed: u64,
}

pub(crate) fn task_name(task: gyre_learn::Task) -> &'static str {
    match task {
        gyre_learn::Task::Binary => "binary",
        gyre_learn::Task::Multiclass { .. } => "multiclass",
        gyre_learn::Task::Regression => "regression",
    }
}

/// A `-p name=value` as JSON: a number or a boolean when it reads as one, else a string.
fn param_value(v: &str) -> serde_json::Value {
    if let Ok(i) = v.parse::<i64>() {
        return i.into();
    }
    if let Ok(x) = v.parse::<f64>()
        && x.is_finite()
    {
        return x.into();
    }
    match v {
        "true" => true.into(),
        "false" => false.into(),
        _ => v.into(),
    }
}

/// The command with each word that names an existing project file or directory made absolute
/// (so `python learners/mlp.py` runs from the working directory), and those files.
fn resolve_command(command: &str, root: &Path) -> (String, Vec<PathBuf>) {
    let mut files = Vec::new();
    let words: Vec<String> = command
        .split(' ')
        .map(|w| {
            let p = Path::new(w);
            if !w.is_empty() && p.is_relative() && root.join(p).exists() {
                let abs = root.join(p);
                files.push(abs.clone());
                shell_quote(&abs.to_string_lossy())
            } else {
                if p.is_absolute() && p.is_file() {
                    files.push(p.to_path_buf());
                }
                w.to_string()
            }
        })
        .collect();
    (words.join(" "), files)
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// SHA-256 over the files (directories walked, sorted), each as its path relative to `root`
/// and its bytes.
fn hash_files(root: &Path, paths: &[PathBuf]) -> Result<String, AppError> {
    let mut files = Vec::new();
    for p in paths {
        collect_files(p, &mut files);
    }
    files.sort();
    files.dedup();
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap_or(f);
        parts.push(rel.to_string_lossy().as_bytes().to_vec());
        parts.push(std::fs::read(f).map_err(|e| AppError::from(gyre_store::StoreError::io(f, e)))?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    Ok(ContentHash::of_parts(&refs).to_string())
}

fn collect_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_file() {
        out.push(p.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            let name = e.file_name();
            // Caches and VCS folders are not the learner.
            if name == "__pycache__" || name == ".git" {
                continue;
            }
            collect_files(&e.path(), out);
        }
    }
}

impl Learner for CommandLearner {
    fn name(&self) -> &'static str {
        "command"
    }

    fn params(&self) -> serde_json::Value {
        serde_json::Value::Object(self.params.clone())
    }

    fn seed_effect(&self) -> SeedEffect {
        SeedEffect::Drives(vec!["whatever the command draws from GYRE_SPEC's seed"])
    }

    fn fit(
        &self,
        task: gyre_learn::Task,
        data: &TrainSet<'_>,
        seed: u64,
        progress: &dyn Progress,
    ) -> Result<Box<dyn Model>, LearnError> {
        Ok(self.fit_predict(task, data, seed, &[], progress)?.0)
    }

    fn fit_predict(
        &self,
        task: gyre_learn::Task,
        data: &TrainSet<'_>,
        seed: u64,
        predict: &[u32],
        progress: &dyn Progress,
    ) -> Result<(Box<dyn Model>, Vec<f64>), LearnError> {
        let ext = |e: String| LearnError::External(e);
        // In the project's `.gyre/tmp/`, named by this process: removed when the run ends, and
        // by the next command's sweep if gyre dies first.
        let tmp = self.root.join(".gyre").join("tmp");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-learner-", std::process::id()))
            .tempdir_in(&tmp)
            .map_err(|e| {
                ext(format!(
                    "cannot make a working directory in {}: {e}",
                    tmp.display()
                ))
            })?;
        let features = feature_specs(data.features, &self.schema).map_err(ext)?;
        let paths = Paths::in_dir(dir.path());
        let t0 = Instant::now();
        write_inputs(self, task, data, seed, predict, &features, &paths).map_err(ext)?;
        let inputs_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        run_command(self, dir.path(), &paths, progress).map_err(ext)?;
        let command_s = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let scores = read_predictions(
            &paths.predictions,
            task,
            &self.schema.classes,
            predict.len(),
            &|i| u64::from(predict[i]),
        )
        .map_err(|e| ext(format!("learner \"{}\" ({}): {e}", self.name, self.command)))?;
        let onnx = match std::fs::read(&paths.model) {
            Ok(bytes) if !bytes.is_empty() => Some(bytes),
            _ => None,
        };
        let outputs_s = t2.elapsed().as_secs_f64();
        let mut model = ExternalModel::new(
            ExternalInfo {
                origin: external_model::Origin::Command(self.info()),
                task,
                classes: self.schema.classes.clone(),
                features,
            },
            onnx,
        );
        model.timings = vec![
            ("inputs_s", inputs_s),
            ("command_s", command_s),
            ("outputs_s", outputs_s),
        ];
        // `dir` is removed here, on success or failure.
        Ok((Box::new(model), scores))
    }
}

/// The files of one command run.
struct Paths {
    train: PathBuf,
    predict: PathBuf,
    spec: PathBuf,
    predictions: PathBuf,
    model: PathBuf,
}

impl Paths {
    fn in_dir(dir: &Path) -> Paths {
        Paths {
            train: dir.join("train.parquet"),
            predict: dir.join("predict.parquet"),
            spec: dir.join("spec.json"),
            predictions: dir.join("predictions.parquet"),
            model: dir.join("model.onnx"),
        }
    }
}

/// The spec of each feature column given to the learner, from the dataset's schema.
pub(crate) fn feature_specs(
    features: &Features,
    schema: &DatasetSchema,
) -> Result<Vec<FeatureSpec>, String> {
    features
        .names
        .iter()
        .map(|n| {
            let c = schema
                .column(n)
                .ok_or_else(|| format!("feature \"{n}\" is not in the dataset's schema"))?;
            if matches!(n.as_str(), "row_id" | "weight") || *n == schema.target {
                return Err(format!(
                    "feature \"{n}\" has a name the protocol reserves (row_id, weight, the target); \
                     rename it to use a command learner"
                ));
            }
            Ok(FeatureSpec {
                name: n.clone(),
                kind: c.kind,
                categories: if c.kind == ColumnKind::Categorical {
                    c.categories.clone()
                } else {
                    Vec::new()
                },
            })
        })
        .collect()
}

/// One feature column over `rows`, as the protocol writes it: categories as strings, numbers
/// (and booleans as 0/1, times as stored) as float64, missing as null.
pub(crate) fn feature_array(column: &Column, spec: &FeatureSpec, rows: &[u32]) -> ArrayRef {
    match column {
        Column::Categorical { codes, .. } => {
            Arc::new(StringArray::from_iter(rows.iter().map(|&r| {
                spec.categories
                    .get(codes[r as usize] as usize)
                    .map(|s| s.as_str())
            })))
        }
        Column::Numeric(v) => Arc::new(Float64Array::from_iter(rows.iter().map(|&r| {
            let x = v[r as usize];
            x.is_finite().then_some(x)
        }))),
    }
}

fn write_inputs(
    l: &CommandLearner,
    task: gyre_learn::Task,
    data: &TrainSet<'_>,
    seed: u64,
    predict: &[u32],
    features: &[FeatureSpec],
    paths: &Paths,
) -> Result<(), String> {
    let f = data.features;
    let columns = |rows: &[u32]| -> Vec<(Field, ArrayRef)> {
        f.columns
            .iter()
            .zip(features)
            .map(|(c, s)| {
                let a = feature_array(c, s, rows);
                (Field::new(&s.name, a.data_type().clone(), true), a)
            })
            .collect()
    };
    // The training rows (row_id, weight, the features, the target) on a thread of their own,
    // beside the rows to predict and the spec: the files are independent.
    std::thread::scope(|s| {
        let writing_train = s.spawn(|| {
            // Training rows: row_id, weight, the features, the target.
            let rows = data.rows;
            let mut train: Vec<(Field, ArrayRef)> = vec![
                (
                    Field::new("row_id", DataType::UInt64, false),
                    Arc::new(UInt64Array::from_iter_values(
                        rows.iter().map(|&r| r as u64),
                    )),
                ),
                (
                    Field::new("weight", DataType::Float64, false),
                    Arc::new(Float64Array::from_iter_values(
                        rows.iter()
                            .map(|&r| data.weights.map_or(1.0, |w| w[r as usize])),
                    )),
                ),
            ];
            train.extend(columns(rows));
            let target: ArrayRef = match task {
                gyre_learn::Task::Regression => Arc::new(Float64Array::from_iter_values(
                    rows.iter().map(|&r| data.labels[r as usize]),
                )),
                _ => Arc::new(StringArray::from_iter_values(rows.iter().map(|&r| {
                    l.schema.classes[data.labels[r as usize] as usize].as_str()
                }))),
            };
            train.push((
                Field::new(&l.schema.target, target.data_type().clone(), false),
                target,
            ));
            write_parquet(&paths.train, train)
        });
        let others = (|| -> Result<(), String> {
            let mut pred: Vec<(Field, ArrayRef)> = vec![(
                Field::new("row_id", DataType::UInt64, false),
                Arc::new(UInt64Array::from_iter_values(
                    predict.iter().map(|&r| r as u64),
                )),
            )];
            pred.extend(columns(predict));
            write_parquet(&paths.predict, pred)?;
            let spec =
                serde_json::to_vec_pretty(&l.spec(task, features, seed)).expect("spec serializes");
            std::fs::write(&paths.spec, spec)
                .map_err(|e| format!("cannot write {}: {e}", paths.spec.display()))
        })();
        writing_train
            .join()
            .expect("writing the training rows does not panic")?;
        others
    })
}

pub(crate) fn write_parquet(path: &Path, columns: Vec<(Field, ArrayRef)>) -> Result<(), String> {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| format!("cannot build {}: {e}", path.display()))?;
    let file =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // Files read once, on this machine: no compression, no dictionaries, no statistics (each
    // cost more to write than it saves a reader; see BENCHMARKS.md's command-learner row).
    let props = parquet::file::properties::WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    w.write(&batch)
        .and_then(|_| w.close().map(|_| ()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs the command in `dir` with the protocol's environment, its stdout and stderr lines
/// passed to `progress`, the last lines of stderr kept for an error. Past the timeout its whole
/// process group is killed.
fn run_command(
    l: &CommandLearner,
    dir: &Path,
    paths: &Paths,
    progress: &dyn Progress,
) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let what = format!("learner \"{}\" ({})", l.name, l.command);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&l.resolved)
        .current_dir(dir)
        .env("GYRE_TRAIN", &paths.train)
        .env("GYRE_PREDICT", &paths.predict)
        .env("GYRE_SPEC", &paths.spec)
        .env("GYRE_PREDICTIONS", &paths.predictions)
        .env("GYRE_MODEL", &paths.model)
        .env("GYRE_PROJECT", &l.root)
        .env("GYRE_PROTOCOL", PROTOCOL_VERSION.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // A group of its own, so a timeout kills the command and everything it started.
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it asks the kernel to kill the shell if gyre dies, so
    // an interrupted gyre leaves no learner behind.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{what}: cannot start sh: {e}"))?;
    let pgid = child.id() as i32;
    let _registered = groups::Registered::new(pgid);
    let tail: Mutex<Tail> = Mutex::new(Tail::default());
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (status, timed_out) = std::thread::scope(|s| {
        let tail = &tail;
        s.spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                progress.message(&line);
            }
        });
        s.spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                progress.message(&line);
                tail.lock().expect("tail lock").push(line);
            }
        });
        // Waited for on a thread of its own, so its exit is seen at once and the timeout is a
        // channel's.
        let (sender, exited) = std::sync::mpsc::channel();
        s.spawn(move || {
            let _ = sender.send(child.wait());
        });
        let (status, timed_out) = match exited.recv_timeout(l.timeout) {
            Ok(status) => (status, false),
            Err(_) => {
                // SAFETY: kill(2) on our child's process group.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                let status = exited
                    .recv()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the waiting thread ended")));
                (status, true)
            }
        };
        // The command exited, but a process it left in its group may hold the pipes open (and
        // so the readers); the group goes with it.
        // SAFETY: as above.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        (status, timed_out)
    });
    let status = status.map_err(|e| format!("{what}: cannot wait for it: {e}"))?;
    let stderr_note = tail.into_inner().expect("tail lock").note();
    if timed_out {
        return Err(format!(
            "{what} timed out after {} and was killed with its process group; {stderr_note}",
            humantime::format_duration(Duration::from_secs(l.timeout.as_secs().max(1)))
        ));
    }
    if !status.success() {
        let code = match status.code() {
            Some(c) => format!("exit code {c}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("signal {}", status.signal().unwrap_or(0))
            }
        };
        return Err(format!("{what} failed with {code}; {stderr_note}"));
    }
    if !paths.predictions.exists() {
        return Err(format!(
            "{what} exited 0 but wrote no predictions to GYRE_PREDICTIONS; {stderr_note}"
        ));
    }
    Ok(())
}

/// Reads and checks predictions in the protocol's form: `row_id` and, for a classifier, one
/// probability column per class named by the class, for regression a `prediction` column. Every
/// requested row (`row_id(i)` for `i in 0..n`) exactly once, no other row, finite scores,
/// probabilities in [0, 1] summing to 1. Returns gyre's scores in request order.
pub(crate) fn read_predictions(
    path: &Path,
    task: gyre_learn::Task,
    classes: &[String],
    n: usize,
    row_id: &dyn Fn(usize) -> u64,
) -> Result<Vec<f64>, String> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let name = path.display();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| format!("{name} is not a Parquet file: {e}"))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            if n == 0 {
                return Ok(Vec::new());
            }
            return Err(format!("{name} has no rows; expected {n}"));
        }
    };
    let wanted: Vec<String> = match task {
        gyre_learn::Task::Regression => vec!["prediction".to_string()],
        _ => classes.to_vec(),
    };
    let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let expected_cols = || {
        let mut c = vec!["row_id".to_string()];
        c.extend(wanted.iter().cloned());
        c.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for w in std::iter::once("row_id").chain(wanted.iter().map(|s| s.as_str())) {
        if !found.contains(&w) {
            return Err(format!(
                "check \"columns\" failed: {name} has no column \"{w}\"; expected the columns {} \
                 (found {})",
                expected_cols(),
                found
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(extra) = found
        .iter()
        .find(|c| **c != "row_id" && !wanted.iter().any(|w| w == *c))
    {
        return Err(format!(
            "check \"columns\" failed: {name} has a column \"{extra}\" the protocol does not \
             know; expected exactly {}",
            expected_cols()
        ));
    }
    // Request position of each row id.
    let mut position: rustc_hash::FxHashMap<u64, usize> = Default::default();
    position.reserve(n);
    for i in 0..n {
        position.insert(row_id(i), i);
    }
    let k = wanted.len();
    let mut values = vec![f64::NAN; n * k];
    let mut seen_at: Vec<Option<usize>> = vec![None; n];
    let mut line = 0usize;
    for b in &batches {
        let ids = arrow_cast::cast(
            b.column_by_name("row_id").expect("checked"),
            &DataType::UInt64,
        )
        .map_err(|e| format!("check \"columns\" failed: {name}: row_id is not integers: {e}"))?;
        let ids = ids.as_primitive::<arrow_array::types::UInt64Type>();
        let cols: Vec<ArrayRef> = wanted
            .iter()
            .map(|w| {
                arrow_cast::cast(b.column_by_name(w).expect("checked"), &DataType::Float64).map_err(
                    |e| {
                        format!(
                            "check \"columns\" failed: {name}: column \"{w}\" is not numbers: {e}"
                        )
                    },
                )
            })
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            let file_row = line + r;
            if ids.is_null(r) {
                return Err(format!(
                    "check \"rows\" failed: {name} row {file_row}: row_id is null"
                ));
            }
            let id = ids.value(r);
            let Some(&i) = position.get(&id) else {
                return Err(format!(
                    "check \"rows\" failed: {name} row {file_row}: row_id {id} was not asked for"
                ));
            };
            if let Some(first) = seen_at[i] {
                return Err(format!(
                    "check \"rows\" failed: {name}: row_id {id} appears twice (rows {first} and \
                     {file_row}); every requested row must appear exactly once"
                ));
            }
            seen_at[i] = Some(file_row);
            for (c, col) in cols.iter().enumerate() {
                let col = col.as_primitive::<arrow_array::types::Float64Type>();
                let v = if col.is_null(r) {
                    f64::NAN
                } else {
                    col.value(r)
                };
                if !v.is_finite() {
                    return Err(format!(
                        "check \"finite\" failed: {name} row {file_row} (row_id {id}): column \
                         \"{}\" is {v}",
                        wanted[c]
                    ));
                }
                values[i * k + c] = v;
            }
        }
        line += b.num_rows();
    }
    if let Some(i) = seen_at.iter().position(|s| s.is_none()) {
        let missing = seen_at.iter().filter(|s| s.is_none()).count();
        return Err(format!(
            "check \"rows\" failed: {name} lacks {missing} of the {n} requested rows (the first: \
             row_id {}); every requested row must appear exactly once",
            row_id(i)
        ));
    }
    if task == gyre_learn::Task::Regression {
        return Ok(values);
    }
    for i in 0..n {
        let row = &values[i * k..(i + 1) * k];
        if let Some(c) = row
            .iter()
            .position(|&p| !(-PROBABILITY_TOLERANCE..=1.0 + PROBABILITY_TOLERANCE).contains(&p))
        {
            return Err(format!(
                "check \"probabilities\" failed: {name} row {} (row_id {}): the probability of \
                 class \"{}\" is {}, outside [0, 1]",
                seen_at[i].expect("seen"),
                row_id(i),
                wanted[c],
                row[c]
            ));
        }
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > PROBABILITY_TOLERANCE {
            return Err(format!(
                "check \"probabilities\" failed: {name} row {} (row_id {}): the class \
                 probabilities sum to {sum}, not 1 (tolerance {PROBABILITY_TOLERANCE})",
                seen_at[i].expect("seen"),
                row_id(i)
            ));
        }
    }
    Ok(match task {
        gyre_learn::Task::Binary => values.chunks(2).map(|r| r[1] / (r[0] + r[1])).collect(),
        _ => values
            .chunks(k)
            .flat_map(|r| {
                let s: f64 = r.iter().sum();
                r.iter().map(move |p| p / s)
            })
            .collect(),
    })
}

impl crate::App {
    /// The learner named: a built-in one, or a `[learners.NAME]` command of gyre.toml (which
    /// needs the schema of the version it trains on), with the command's description.
    pub(crate) fn learner(
        &self,
        name: &str,
        params: &[(String, String)],
        schema: &DatasetSchema,
    ) -> Result<(Box<dyn Learner>, Option<CommandInfo>), AppError> {
        // Read (and checked) for every learner, so a bad section shows before it is needed.
        let config = crate::config::learners_config(&self.store.config_path())?;
        if gyre_learn::LEARNERS.contains(&name) {
            return Ok((gyre_learn::learner(name, params)?, None));
        }
        if name == "imported" {
            return Err(AppError::Invalid {
                message: "this run was imported (gyre runs import): its predictions were made \
                          elsewhere, so gyre cannot fit its learner again"
                    .into(),
                hint: Some(
                    "label-issues and ablate refit the run's learner; train it as a command \
                     learner ([learners.NAME] in gyre.toml) to use them"
                        .into(),
                ),
            });
        }
        match config.get(name) {
            Some(c) => {
                let l = CommandLearner::new(name, c, self.root(), schema, params)?;
                let info = l.info();
                Ok((Box::new(l), Some(info)))
            }
            None => {
                let mut valid: Vec<&str> = gyre_learn::LEARNERS.to_vec();
                valid.extend(config.keys().map(|k| k.as_str()));
                Err(AppError::Invalid {
                    message: format!(
                        "unknown learner \"{name}\"; valid learners: {}",
                        valid.join(", ")
                    ),
                    hint: Some(
                        "declare a command learner in gyre.toml: [learners.NAME] command = \"...\" \
                         (docs/learner-protocol.md)"
                            .into(),
                    ),
                })
            }
        }
    }
}

/// The process groups of the commands running now, so that gyre stopped by a signal (Ctrl-C,
/// SIGTERM, SIGHUP) takes them with it: in groups of their own, they do not get the terminal's
/// signals, and the parent-death signal reaches only their first process.
mod groups {
    use std::sync::Once;
    use std::sync::atomic::{AtomicI32, Ordering};

    const SLOTS: usize = 256;
    static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
    static INSTALL: Once = Once::new();

    /// A running command's group, registered until dropped.
    pub(super) struct Registered(Option<usize>);

    impl Registered {
        pub(super) fn new(pgid: i32) -> Registered {
            INSTALL.call_once(|| {
                for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    // SAFETY: `on_signal` only calls async-signal-safe functions (kill, signal,
                    // raise) and reads atomics.
                    unsafe {
                        libc::signal(sig, on_signal as *const () as libc::sighandler_t);
                    }
                }
            });
            let slot = GROUPS.iter().position(|g| {
                g.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            });
            Registered(slot)
        }
    }

    impl Drop for Registered {
        fn drop(&mut self) {
            if let Some(i) = self.0 {
                GROUPS[i].store(0, Ordering::SeqCst);
            }
        }
    }

    extern "C" fn on_signal(sig: libc::c_int) {
        for g in &GROUPS {
            let pgid = g.load(Ordering::SeqCst);
            if pgid > 0 {
                // SAFETY: kill(2) is async-signal-safe.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
        }
        // Then die of the signal as gyre would have without this handler.
        // SAFETY: signal(2) and raise(3) are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// The last lines of a command's stderr, and the last line before them that names an error (a
/// Python exception's message often comes long before its last lines).
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    error: Option<String>,
}

impl Tail {
    fn push(&mut self, line: String) {
        if self.lines.len() == STDERR_TAIL {
            let old = self.lines.pop_front().expect("full");
            if looks_like_an_error(&old) {
                self.error = Some(old);
            }
        }
        self.lines.push_back(line);
    }

    fn note(self) -> String {
        if self.lines.is_empty() {
            return "it wrote nothing to stderr".to_string();
        }
        let mut s = String::new();
        if let Some(e) = &self.error
            && !self.lines.iter().any(|l| looks_like_an_error(l))
        {
            let e: String = e.chars().take(500).collect();
            s.push_str(&format!("the last error it named: {e}\n"));
        }
        let lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| l.chars().take(500).collect())
            .collect();
        s.push_str(&format!(
            "last lines of its stderr:\n  {}",
            lines.join("\n  ")
        ));
        s
    }
}

fn looks_like_an_error(line: &str) -> bool {
    line.contains("Error") || line.contains("Exception") || line.starts_with("error")
}
