//! `gyre.toml`: the project's settings, written with commented defaults by `gyre init`, read and
//! checked (unknown keys and wrong types are errors that name the key).

use crate::AppError;
use serde::Deserialize;
use std::path::Path;

/// The text `gyre init` writes.
pub fn default_config() -> String {
    format!(
        r#"# gyre project settings.
[project]
# Written by gyre {version}.
format = 1

# The promotion policy checked by `gyre gate` and `gyre promote`.
[gate]
# The metric that decides (default: auc for classification, rmse for regression).
# primary_metric = "auc"
# The candidate must not be significantly worse than the champion on the primary metric
# (95% paired bootstrap interval). To also demand a gain, set the smallest one accepted:
# min_improvement = 0.001
# Negative flips (right under the champion, wrong under the candidate), as a share of rows.
max_negative_flip_rate = 0.05
# When a seed noise floor is known (gyre train --seeds K), also cap negative flips at this
# multiple of it; 0 turns the check off.
max_flip_multiple_of_seed_floor = 0.0
# No suite may be significantly worse than under the champion.
suites_not_worse = true
bootstrap_resamples = 1000
bootstrap_seed = 0

# Learners that are commands (docs/learner-protocol.md), used as `gyre train --learner NAME`:
# [learners.mlp]
# command = "python learners/mlp.py"
# timeout = "20m"

# Where sweeps, label-issue folds and ablation retrains run: "local" (this machine's cores) or
# "ray" (a Ray cluster at GYRE_RAY_URL, token from RAY_AUTH_TOKEN); --executor wins. Ray's
# workers open the project's store, so a project on Ray lives on the team store.
# [executor]
# kind = "ray"
# ray_url = "http://ray-head:8265"
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    #[allow(dead_code)]
    project: Option<toml::Table>,
    #[serde(default)]
    gate: GateConfig,
    #[serde(default)]
    learners: std::collections::BTreeMap<String, LearnerConfig>,
    /// Where a team project's metadata and objects live: read by gyre-store.
    #[serde(default)]
    #[allow(dead_code)]
    store: Option<toml::Table>,
    /// The team server a cloned project works through: read by gyre-store.
    #[serde(default)]
    #[allow(dead_code)]
    server: Option<toml::Table>,
    #[serde(default)]
    executor: ExecutorConfig,
}

/// The `[executor]` section: where units of parallel work (sweep trials, label-issue folds,
/// ablation retrains) run unless `--executor` says.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// `local` (this machine's cores; the default) or `ray`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The Ray dashboard's address (`http://HEAD:8265`); `GYRE_RAY_URL` wins.
    #[serde(default)]
    pub ray_url: Option<String>,
    /// The gyre binary on the cluster's nodes (an image that has it); without it, this gyre
    /// goes to the cluster as the job's working_dir package.
    #[serde(default)]
    pub gyre: Option<String>,
}

/// The `[executor]` section of the project's gyre.toml.
pub fn executor_config(path: &Path) -> Result<ExecutorConfig, AppError> {
    let c = read(path)?.executor;
    if let Some(k) = &c.kind
        && k != "local"
        && k != "ray"
    {
        return Err(AppError::invalid(format!(
            "{}: [executor] kind = {k:?}: choose \"local\" or \"ray\"",
            path.display()
        )));
    }
    Ok(c)
}

/// A `[learners.NAME]` section: a learner that is a command (docs/learner-protocol.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerConfig {
    /// Run by `sh -c` in a fresh working directory; words naming a project file are made absolute.
    pub command: String,
    /// How long one run may take (`"90s"`, `"20m"`); past it the command's process group is
    /// killed. Default one hour.
    #[serde(default)]
    pub timeout: Option<String>,
    /// More files or directories (relative to the project) whose contents the run's hash covers,
    /// besides those the command names.
    #[serde(default)]
    pub files: Vec<String>,
}

/// gyre.toml's text without its `[store]` section (the settings a copy of the project keeps
/// while its store changes); comments and the other sections stay as written.
pub fn without_store_section(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t == "[store]" || t.starts_with("[store.");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The default limit of one command learner run.
pub const DEFAULT_LEARNER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl LearnerConfig {
    /// The timeout, checked.
    pub fn timeout(&self, name: &str) -> Result<std::time::Duration, AppError> {
        match &self.timeout {
            None => Ok(DEFAULT_LEARNER_TIMEOUT),
            Some(t) => humantime::parse_duration(t.trim()).map_err(|e| AppError::Invalid {
                message: format!("gyre.toml: [learners.{name}] timeout = {t:?}: {e}"),
                hint: Some("write a duration such as \"90s\" or \"20m\"".into()),
            }),
        }
    }
}

/// The `[learners.*]` sections of the project's `gyre.toml`, by name. A built-in learner's name
/// cannot be taken.
pub fn learners_config(
    path: &Path,
) -> Result<std::collections::BTreeMap<String, LearnerConfig>, AppError> {
    let file = read(path)?;
    for (name, l) in &file.learners {
        if gyre_learn::LEARNERS.contains(&name.as_str()) || name == "imported" {
            return Err(AppError::invalid(format!(
                "{}: [learners.{name}] takes the name of a built-in learner (or of imported \
                 runs); choose another",
                path.display()
            )));
        }
        if l.command.trim().is_empty() {
            return Err(AppError::invalid(format!(
                "{}: [learners.{name}] command is empty",
                path.display()
            )));
        }
        l.timeout(name)?;
    }
    Ok(file.learners)
}

fn read(path: &Path) -> Result<ConfigFile, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::from(gyre_store::StoreError::io(path, e)))?;
    toml::from_str(&text).map_err(|e| AppError::Invalid {
        message: format!("{}: {}", path.display(), e.to_string().trim()),
        hint: Some("see the keys that `gyre init` writes, and docs/learner-protocol.md".into()),
    })
}

/// The `[gate]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    pub primary_metric: Option<String>,
    pub min_improvement: Option<f64>,
    pub max_negative_flip_rate: f64,
    pub max_flip_multiple_of_seed_floor: f64,
    pub suites_not_worse: bool,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            primary_metric: None,
            min_improvement: None,
            max_negative_flip_rate: 0.05,
            max_flip_multiple_of_seed_floor: 0.0,
            suites_not_worse: true,
            bootstrap_resamples: 1000,
            bootstrap_seed: 0,
        }
    }
}

/// Reads the project's `gyre.toml`.
pub fn gate_config(path: &Path) -> Result<GateConfig, AppError> {
    let g = read(path)?.gate;
    if !(0.0..=1.0).contains(&g.max_negative_flip_rate) {
        return Err(AppError::invalid(format!(
            "{}: [gate] max_negative_flip_rate must be between 0 and 1, got {}",
            path.display(),
            g.max_negative_flip_rate
        )));
    }
    if g.bootstrap_resamples == 0 {
        return Err(AppError::invalid(format!(
            "{}: [gate] bootstrap_resamples must be at least 1",
            path.display()
        )));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_parses_to_the_defaults() {
        let f: ConfigFile = toml::from_str(&default_config()).unwrap();
        assert_eq!(f.gate.max_negative_flip_rate, 0.05);
        assert!(f.gate.suites_not_worse);
    }

    #[test]
    fn learner_sections_are_checked_and_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gyre.toml");
        std::fs::write(
            &p,
            "[learners.mlp]\ncommand = \"python3 mlp.py\"\ntimeout = \"90s\"\n",
        )
        .unwrap();
        let l = learners_config(&p).unwrap();
        assert_eq!(l["mlp"].command, "python3 mlp.py");
        assert_eq!(l["mlp"].timeout("mlp").unwrap().as_secs(), 90);
        for (text, needle) in [
            ("[learners.mlp]\ncomand = \"x\"\n", "comand"),
            ("[learners.mlp]\ncommand = \"  \"\n", "command is empty"),
            (
                "[learners.mlp]\ncommand = \"x\"\ntimeout = \"later\"\n",
                "timeout",
            ),
            ("[learners.linear]\ncommand = \"x\"\n", "built-in"),
            ("[learners.imported]\ncommand = \"x\"\n", "built-in"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = learners_config(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn bad_gate_sections_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gyre.toml");
        std::fs::write(&p, "[gate]\nmax_negative_flip_rate = \"lots\"\n").unwrap();
        let e = gate_config(&p).unwrap_err().to_string();
        assert!(e.contains("max_negative_flip_rate"), "{e}");
        std::fs::write(&p, "[gate]\nmax_negative_fliprate = 0.1\n").unwrap();
        let e = gate_config(&p).unwrap_err().to_string();
        assert!(e.contains("max_negative_fliprate"), "{e}");
    }
}
