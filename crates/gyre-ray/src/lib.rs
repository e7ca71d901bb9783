//! gyre's Ray executor: runs units of parallel work (sweep trials, label-issue folds, ablation
//! retrains; see gyre-app's `units`) as one Ray job per batch, through Ray's Jobs REST API
//! (submit, poll, logs, stop; bearer token auth with `RAY_AUTH_TOKEN`). The job runs
//! `gyre_ray.py`, which starts one Ray task per unit, each running `gyre worker UNIT`; the gyre
//! binary reaches the cluster as the job's working_dir package (uploaded once, named by its
//! content) or is already there (`[executor] gyre = PATH` for an image that has it). Workers
//! read and write through the project's store, never Ray's object store; this process records
//! what their results mean.
//!
//! Why not Ray's Python client or `ray job submit`: the REST API is the stable way in from
//! another language, and needs no Python on the driver's machine.

mod package;

use gyre_app::{AppError, Progress, ProjectRef, RemoteExecutor, RemoteJob, RemoteSummary};
use serde::Deserialize;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The wrapper run on the cluster (`python gyre_ray.py`).
pub const WRAPPER: &str = include_str!("gyre_ray.py");

/// The largest request body Ray's dashboard takes (its package upload limit).
const MAX_PACKAGE: usize = 100 << 20;

/// Credentials a worker needs to open the project's store, passed to the job when set here
/// (they show in the job's runtime_env to whoever holds the cluster's token).
const PASSED_ENV: &[&str] = &[
    "PGPASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "GYRE_TOKEN",
    "GYRE_ALLOW_PLAIN_HTTP",
];

/// How to reach a Ray cluster and where its workers find gyre.
#[derive(Clone, Debug)]
pub struct RayConfig {
    /// The dashboard's address (`http://HOST:8265`), from `GYRE_RAY_URL` or `[executor] ray_url`.
    pub url: String,
    /// `RAY_AUTH_TOKEN`, when the cluster has token auth on.
    pub token: Option<String>,
    /// The gyre binary on the cluster's nodes (an image that has it); without it, this
    /// process's own binary goes up as the job's working_dir package.
    pub gyre: Option<String>,
    /// The Python that runs the wrapper on the cluster.
    pub python: String,
    /// Attempts per unit whose worker is killed.
    pub attempts: usize,
}

impl RayConfig {
    /// From the environment: `GYRE_RAY_URL` (else `url`), `RAY_AUTH_TOKEN`, and
    /// `GYRE_RAY_BINARY` (else `gyre`), the gyre binary on the cluster's nodes.
    pub fn from_env(url: Option<&str>, gyre: Option<&str>) -> Result<RayConfig, AppError> {
        let url = std::env::var("GYRE_RAY_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| url.map(str::to_string))
            .ok_or_else(|| AppError::Invalid {
                message: "the Ray executor needs the cluster's address".into(),
                hint: Some(
                    "set GYRE_RAY_URL=http://HEAD:8265 (the dashboard's address), or \
                     ray_url under [executor] in gyre.toml"
                        .into(),
                ),
            })?;
        let url = url.trim().trim_end_matches('/').to_string();
        let token = std::env::var("RAY_AUTH_TOKEN")
            .ok()
            .filter(|s| !s.trim().is_empty());
        check_url(&url, token.is_some())?;
        Ok(RayConfig {
            url,
            token,
            gyre: std::env::var("GYRE_RAY_BINARY")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .or_else(|| gyre.map(str::to_string)),
            python: std::env::var("GYRE_RAY_PYTHON").unwrap_or_else(|_| "python".into()),
            attempts: 3,
        })
    }
}

/// A token goes over plain HTTP only to this machine, unless `GYRE_ALLOW_PLAIN_HTTP=1`.
fn check_url(url: &str, with_token: bool) -> Result<(), AppError> {
    let rest = url
        .strip_prefix("http://")
        .map(|r| (r, false))
        .or_else(|| url.strip_prefix("https://").map(|r| (r, true)));
    let Some((rest, tls)) = rest else {
        return Err(AppError::invalid(format!(
            "GYRE_RAY_URL {url} is not an http:// or https:// address"
        )));
    };
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    let loopback = host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]");
    let allowed = std::env::var("GYRE_ALLOW_PLAIN_HTTP").is_ok_and(|v| v == "1");
    if with_token && !tls && !loopback && !allowed {
        return Err(AppError::Invalid {
            message: format!(
                "GYRE_RAY_URL {url} is plain HTTP to another machine: RAY_AUTH_TOKEN would cross \
                 the network readable"
            ),
            hint: Some(
                "put the dashboard behind HTTPS, or set GYRE_ALLOW_PLAIN_HTTP=1 on a network you trust"
                    .into(),
            ),
        });
    }
    Ok(())
}

/// Set by SIGINT while a job runs: the poll loop stops the job on the cluster.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT sets `INTERRUPTED` while this lives; the handler before comes back after.
struct CatchInterrupt(libc::sighandler_t);

impl CatchInterrupt {
    fn new() -> CatchInterrupt {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        CatchInterrupt(unsafe { libc::signal(libc::SIGINT, handler) })
    }
}

impl Drop for CatchInterrupt {
    fn drop(&mut self) {
        // SAFETY: puts back the disposition `signal` returned.
        unsafe { libc::signal(libc::SIGINT, self.0) };
    }
}

/// Runs units as Ray jobs.
pub struct RayExecutor {
    config: RayConfig,
    agent: ureq::Agent,
    /// The working_dir package's URI, once uploaded (or found) in this process.
    package: OnceLock<String>,
}

#[derive(Deserialize)]
struct JobInfo {
    status: String,
    #[serde(default)]
    message: Option<String>,
}

impl RayExecutor {
    pub fn new(config: RayConfig) -> RayExecutor {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        RayExecutor {
            config,
            agent,
            package: OnceLock::new(),
        }
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> AppError {
        AppError::invalid(format!("Ray at {}: {what}: {e}", self.config.url))
    }

    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.config.token {
            Some(t) => req.header("authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    /// An answer's status and body; 401/403 say which token to set.
    fn answer(
        &self,
        what: &str,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, Vec<u8>), AppError> {
        let mut res = res.map_err(|e| self.failed(what, e))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| self.failed(what, e))?;
        if status == 401 || status == 403 {
            return Err(AppError::Invalid {
                message: format!(
                    "Ray at {} refused {what} (HTTP {status}): {}",
                    self.config.url,
                    if self.config.token.is_some() {
                        "RAY_AUTH_TOKEN is not the cluster's token"
                    } else {
                        "the cluster has token auth on"
                    }
                ),
                hint: Some("set RAY_AUTH_TOKEN to the cluster's token".into()),
            });
        }
        Ok((status, body))
    }

    fn get(&self, path: &str) -> Result<(u16, Vec<u8>), AppError> {
        let res = self
            .auth(self.agent.get(format!("{}{path}", self.config.url)))
            .call();
        self.answer(&format!("GET {path}"), res)
    }

    fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<(u16, Vec<u8>), AppError> {
        let res = self
            .auth(self.agent.post(format!("{}{path}", self.config.url)))
            .header("content-type", "application/json")
            .send(serde_json::to_vec(body).expect("serializes").as_slice());
        self.answer(&format!("POST {path}"), res)
    }

    /// The job's working_dir: the wrapper, and this gyre binary unless the cluster has one.
    /// Named by its content, so it is uploaded once per build.
    fn working_dir(&self, progress: &dyn Progress) -> Result<String, AppError> {
        if let Some(uri) = self.package.get() {
            return Ok(uri.clone());
        }
        let binary = match &self.config.gyre {
            Some(_) => None,
            None => {
                let exe =
                    std::env::current_exe().map_err(|e| self.failed("this gyre's path", e))?;
                Some(std::fs::read(&exe).map_err(|e| self.failed(&exe.display().to_string(), e))?)
            }
        };
        let name = package::name(WRAPPER.as_bytes(), binary.as_deref());
        let uri = format!("gcs://{name}");
        let path = format!("/api/packages/gcs/{name}");
        let (status, _) = self.get(&path)?;
        if status != 200 {
            progress.message(&format!(
                "uploading gyre to the cluster ({} MB, once per build)",
                binary.as_ref().map_or(0, |b| b.len() >> 20)
            ));
            let zip = package::zip(&[
                ("gyre_ray.py", WRAPPER.as_bytes(), 0o644),
                ("gyre", binary.as_deref().unwrap_or_default(), 0o755),
            ])?;
            if zip.len() > MAX_PACKAGE {
                return Err(AppError::Invalid {
                    message: format!(
                        "this gyre binary is {} MB ({} MB packed), over the {} MB a Ray \
                         package may be (a debug build?)",
                        binary.as_ref().map_or(0, |b| b.len() >> 20),
                        zip.len() >> 20,
                        MAX_PACKAGE >> 20
                    ),
                    hint: Some(
                        "run a release build (cargo build --release), or put gyre on the \
                         cluster's nodes and name it with gyre = PATH under [executor]"
                            .into(),
                    ),
                });
            }
            let res = self
                .auth(self.agent.put(format!("{}{path}", self.config.url)))
                .header("content-type", "application/zip")
                .send(zip.as_slice());
            let (status, body) = self.answer(&format!("PUT {path}"), res)?;
            if !(200..300).contains(&status) {
                return Err(self.failed(
                    "uploading the working_dir package",
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                ));
            }
        }
        let _ = self.package.set(uri.clone());
        Ok(uri)
    }

    fn stop(&self, job: &str) {
        let _ = self.post_json(&format!("/api/jobs/{job}/stop"), &serde_json::json!({}));
    }

    fn logs(&self, job: &str) -> String {
        #[derive(Deserialize)]
        struct Logs {
            logs: String,
        }
        self.get(&format!("/api/jobs/{job}/logs"))
            .ok()
            .and_then(|(_, b)| serde_json::from_slice::<Logs>(&b).ok())
            .map(|l| l.logs)
            .unwrap_or_default()
    }
}

/// The last lines of a log, for an error.
fn tail(logs: &str, lines: usize) -> String {
    let all: Vec<&str> = logs.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl RemoteExecutor for RayExecutor {
    fn name(&self) -> &'static str {
        "ray"
    }

    fn address(&self) -> String {
        self.config.url.clone()
    }

    fn run(
        &self,
        job: &RemoteJob,
        tick: &mut dyn FnMut() -> Result<bool, AppError>,
        progress: &dyn Progress,
    ) -> Result<RemoteSummary, AppError> {
        let working_dir = self.working_dir(progress)?;
        let mut env = serde_json::Map::new();
        env.insert(
            "GYRE_UNITS".into(),
            serde_json::to_string(&job.units)
                .expect("units serialize")
                .into(),
        );
        env.insert(
            "GYRE_ATTEMPTS".into(),
            self.config.attempts.to_string().into(),
        );
        match &job.project {
            ProjectRef::Config { text } => {
                env.insert("GYRE_PROJECT_TOML".into(), text.clone().into())
            }
            ProjectRef::Dir { path } => {
                env.insert("GYRE_PROJECT_DIR".into(), path.display().to_string().into())
            }
        };
        if let Some(g) = &self.config.gyre {
            env.insert("GYRE_BIN".into(), g.clone().into());
        }
        for name in PASSED_ENV {
            if let Ok(v) = std::env::var(name) {
                env.insert((*name).into(), v.into());
            }
        }
        let body = serde_json::json!({
            "entrypoint": format!("{} gyre_ray.py", self.config.python),
            "runtime_env": { "working_dir": working_dir, "env_vars": env },
            "metadata": { "gyre": job.label },
        });
        let (status, answer) = self.post_json("/api/jobs/", &body)?;
        if !(200..300).contains(&status) {
            return Err(self.failed(
                "submitting the job",
                format!("HTTP {status}: {}", String::from_utf8_lossy(&answer)),
            ));
        }
        #[derive(Deserialize)]
        struct Submitted {
            submission_id: String,
        }
        let id = serde_json::from_slice::<Submitted>(&answer)
            .map_err(|e| self.failed("the job's id", e))?
            .submission_id;
        progress.message(&format!("Ray job {id} submitted"));
        let interrupt = CatchInterrupt::new();
        let outcome = loop {
            std::thread::sleep(Duration::from_millis(300));
            if INTERRUPTED.load(Ordering::SeqCst) {
                self.stop(&id);
                break Err(AppError::invalid(format!(
                    "interrupted: Ray job {id} stopped on the cluster; nothing was recorded"
                )));
            }
            if let Err(e) = tick() {
                self.stop(&id);
                break Err(e);
            }
            let (status, body) = match self.get(&format!("/api/jobs/{id}")) {
                Ok(x) => x,
                Err(e) => {
                    self.stop(&id);
                    break Err(e);
                }
            };
            if status != 200 {
                break Err(self.failed(&format!("job {id}"), format!("HTTP {status}")));
            }
            let info: JobInfo =
                serde_json::from_slice(&body).map_err(|e| self.failed("the job's status", e))?;
            match info.status.as_str() {
                "SUCCEEDED" => break Ok(()),
                "FAILED" | "STOPPED" => {
                    let logs = self.logs(&id);
                    let failure = logs
                        .lines()
                        .rev()
                        .find_map(|l| l.strip_prefix("GYRE-FAILED "))
                        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
                    let message = match failure {
                        Some(f) => format!(
                            "{} failed on Ray (job {id}): {}",
                            f.get("unit")
                                .and_then(
                                    |u| serde_json::from_value::<gyre_app::Unit>(u.clone()).ok()
                                )
                                .map_or_else(|| "a unit".to_string(), |u| u.describe()),
                            f.get("stderr")
                                .and_then(|s| s.as_str())
                                .unwrap_or_default()
                                .trim()
                        ),
                        None => format!(
                            "Ray job {id} {}: {}\n--- the job's last log lines ---\n{}",
                            info.status.to_lowercase(),
                            info.message.unwrap_or_default(),
                            tail(&logs, 20)
                        ),
                    };
                    break Err(AppError::invalid(message));
                }
                _ => {}
            }
        };
        drop(interrupt);
        outcome?;
        tick()?;
        let logs = self.logs(&id);
        // The wrapper's summary counts the attempts its tasks made; without it (a cluster that
        // drops task output), the retries its tasks printed.
        let retries = logs
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("GYRE-SUMMARY "))
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v.get("retries").and_then(|r| r.as_u64()))
            .map_or_else(
                || logs.lines().filter(|l| l.contains("GYRE-RETRY ")).count(),
                |r| r as usize,
            );
        Ok(RemoteSummary { job: id, retries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cross_plain_http_only_to_this_machine() {
        assert!(check_url("http://127.0.0.1:8265", true).is_ok());
        assert!(check_url("http://localhost:8265", true).is_ok());
        assert!(check_url("https://ray.example:8265", true).is_ok());
        assert!(check_url("http://ray.example:8265", false).is_ok());
        let e = check_url("http://ray.example:8265", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain HTTP"), "{e}");
        assert!(check_url("ray.example:8265", false).is_err());
    }

    #[test]
    fn the_tail_of_a_log_is_its_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
