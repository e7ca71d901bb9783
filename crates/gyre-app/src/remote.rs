//! A project worked on through a team server: `gyre clone URL DIR` (every command then works in
//! DIR: metadata through the server, objects fetched once into DIR's cache and uploaded by the
//! commands that make them), the team's prediction log read by `gyre monitor` in a clone, and
//! serving replicas (`gyre serve --remote URL`) that ship their log to the server.

use crate::{App, AppError, ProjectLocation, now};
use gyre_store::{
    CONFIG_FILE, LogCursor, PredictionLog, RawLog, STATE_DIR, ServerClient, Store, WhoAmI,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The clone's copy of the team's prediction log (apart from `.gyre/log.db`, which holds what a
/// replica served itself).
const TEAM_LOG: &str = "team-log.db";
/// The name a serving replica keeps across restarts (its log's cursor on the server).
const REPLICA_FILE: &str = "replica";
/// Rows per table per shipment.
const SHIP_ROWS: usize = 500;
/// How often a replica ships its log.
pub const SHIP_EVERY: Duration = Duration::from_millis(250);

#[derive(serde::Serialize)]
pub struct CloneReport {
    pub project: PathBuf,
    pub server: String,
    /// Who the token belongs to, and their role.
    pub person: String,
    pub role: gyre_store::Role,
    /// The clone's gyre.toml: the project's settings and `[server] url`.
    pub config: PathBuf,
}

#[derive(serde::Deserialize)]
struct ProjectAnswer {
    config: String,
}

/// `gyre clone URL DIR`: a directory that works on the server's project.
pub fn clone_project(url: &str, dir: &Path, command: &str) -> Result<CloneReport, AppError> {
    let client = ServerClient::new(url)?;
    let me: WhoAmI = client.whoami()?;
    let project: ProjectAnswer = client.get("/v1/project")?;
    let text = format!(
        "{}\n# A clone of the team server's project: its metadata and objects live there, reached\n\
         # with the token in GYRE_TOKEN (or ~/.config/gyre/config.toml); objects are cached in .gyre.\n\
         [server]\nurl = {}\n",
        project.config.trim_end(),
        toml_string(client.url())
    );
    let root = Store::init(dir, &text)?;
    // Opened once, so a clone that cannot work fails here (a clone changes nothing: no
    // journal entry, and a viewer may clone).
    App::open(ProjectLocation::Explicit(&root), command)?;
    Ok(CloneReport {
        config: root.join(CONFIG_FILE),
        project: root,
        server: client.url().to_string(),
        person: me.name,
        role: me.role,
    })
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl App {
    /// The team server this project works through, if it is a clone.
    pub fn server_url(&self) -> Option<String> {
        self.store.server().map(|s| s.url().to_string())
    }

    /// The prediction log to read: the project's own, or on a clone the team's (every
    /// replica's traffic), brought up to date from the server first.
    pub(crate) fn log_to_read(&mut self) -> Result<PredictionLog, AppError> {
        let Some(server) = self.store.server() else {
            return Ok(self.store.prediction_log()?);
        };
        let path = self.store.root().join(STATE_DIR).join(TEAM_LOG);
        let mut copy = PredictionLog::open_file(&path)?;
        loop {
            let c = copy.cursor("server")?;
            let raw: RawLog = server.get(&format!(
                "/v1/log?sessions={}&served={}&feedback={}&errors={}&limit=2000",
                c.sessions, c.served, c.feedback, c.errors
            ))?;
            if raw.is_empty() {
                break;
            }
            copy.append_raw("server", &raw)?;
        }
        Ok(copy)
    }

    /// Starts a session in the project's log: on a clone (a serving replica) numbered by the
    /// team server's log, so prediction ids never collide between replicas.
    pub(crate) fn start_log_session(
        &mut self,
        log: &mut PredictionLog,
        champion: &str,
        challenger: Option<&str>,
        mode: Option<&str>,
    ) -> Result<i64, AppError> {
        let time = now();
        match self.store.server() {
            None => Ok(log.start_session(&time, champion, challenger, mode)?),
            Some(server) => {
                #[derive(serde::Deserialize)]
                struct Session {
                    session: i64,
                }
                let s: Session = server.post(
                    "/v1/log/sessions",
                    &serde_json::json!({
                        "champion": champion, "challenger": challenger, "mode": mode
                    }),
                )?;
                log.start_session_numbered(s.session, &time, champion, challenger, mode)?;
                Ok(s.session)
            }
        }
    }

    /// The name this replica ships its log under: made once, kept in `.gyre/replica`.
    pub fn replica_name(&self) -> Result<String, AppError> {
        let path = self.store.root().join(STATE_DIR).join(REPLICA_FILE);
        if let Ok(name) = std::fs::read_to_string(&path)
            && !name.trim().is_empty()
        {
            return Ok(name.trim().to_string());
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| {
                h.trim()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(40)
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "replica".into());
        let name = format!("{host}-{}", gyre_store::hex(&gyre_store::random_bytes(4)?));
        gyre_store::write_atomic(&path, name.as_bytes())?;
        Ok(name)
    }

    /// Starts shipping this replica's prediction log to the team server: every
    /// [`SHIP_EVERY`], what the server has not received yet. A server out of reach is tried
    /// again (the log keeps everything meanwhile); [`Shipper::finish`] ships the rest.
    pub fn start_shipping(&mut self) -> Result<Shipper, AppError> {
        let Some(server) = self.store.server() else {
            return Err(AppError::invalid(
                "only a clone of a team server ships its prediction log",
            ));
        };
        let client = Arc::new(ServerClient::new(server.url())?);
        let replica = self.replica_name()?;
        let log = self.store.prediction_log()?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = ShipState {
            client,
            replica: replica.clone(),
            cursor: None,
            log,
            out_of_reach: false,
        };
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("gyre-ship".into())
                .spawn(move || ship_loop(state, &stop))
                .map_err(|e| AppError::invalid(format!("cannot start shipping the log: {e}")))?
        };
        Ok(Shipper {
            replica,
            stop,
            thread: Some(thread),
        })
    }
}

/// People and tokens: on the server's own project directly, on a clone through the server (whose
/// rules apply: a maintainer manages everyone's, anyone their own tokens).
impl App {
    fn local_root_for_people(&self) -> Result<PathBuf, AppError> {
        Ok(self.store.root().to_path_buf())
    }

    pub fn people_add(
        &mut self,
        name: &str,
        role: gyre_store::Role,
    ) -> Result<crate::team_server::people::NewToken, AppError> {
        match self.store.server() {
            Some(s) => Ok(s.post(
                "/v1/people",
                &serde_json::json!({ "name": name, "role": role }),
            )?),
            None => crate::team_server::people::add(
                &self.local_root_for_people()?,
                name,
                role,
                &self.user,
            ),
        }
    }

    pub fn people_list(&mut self) -> Result<Vec<gyre_store::PersonRecord>, AppError> {
        match self.store.server() {
            Some(s) => Ok(s.get("/v1/people")?),
            None => crate::team_server::people::list(&self.local_root_for_people()?),
        }
    }

    /// A new token for `user` (on a clone: yourself when none is named).
    pub fn token_create(
        &mut self,
        user: Option<&str>,
        label: &str,
    ) -> Result<crate::team_server::people::NewToken, AppError> {
        match self.store.server() {
            Some(s) => Ok(s.post(
                "/v1/tokens",
                &serde_json::json!({ "user": user, "label": label }),
            )?),
            None => {
                let user = user.ok_or_else(|| AppError::invalid("name the person: --user NAME"))?;
                crate::team_server::people::create_token(
                    &self.local_root_for_people()?,
                    user,
                    label,
                    &self.user,
                )
            }
        }
    }

    pub fn token_list(
        &mut self,
        user: Option<&str>,
    ) -> Result<Vec<gyre_store::TokenRecord>, AppError> {
        match self.store.server() {
            Some(s) => {
                // On a clone, your own unless a person is named.
                let me = self.user.clone();
                let who = user.unwrap_or(&me);
                Ok(s.get(&format!("/v1/tokens?user={}", url_component(who)))?)
            }
            None => crate::team_server::people::tokens(&self.local_root_for_people()?, user),
        }
    }

    /// Revokes every live token of a person.
    pub fn tokens_revoke_of(
        &mut self,
        user: &str,
    ) -> Result<Vec<gyre_store::TokenRecord>, AppError> {
        let mut live: Vec<String> = self
            .token_list(Some(user))?
            .into_iter()
            .filter(|t| t.revoked_at.is_none())
            .map(|t| t.id)
            .collect();
        // On a clone, the token this request uses goes last: revoked first, it would refuse
        // the rest.
        if let Some(server) = self.store.server() {
            let mine = server.whoami()?.token;
            live.sort_by_key(|id| *id == mine);
        }
        live.iter().map(|id| self.token_revoke(id)).collect()
    }

    pub fn token_revoke(&mut self, id: &str) -> Result<gyre_store::TokenRecord, AppError> {
        match self.store.server() {
            Some(s) => Ok(s.post(
                &format!("/v1/tokens/{}/revoke", url_component(id)),
                &serde_json::json!({}),
            )?),
            None => {
                crate::team_server::people::revoke(&self.local_root_for_people()?, id, &self.user)
            }
        }
    }
}

/// Percent-encodes a URL path or query component.
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct ShipState {
    client: Arc<ServerClient>,
    replica: String,
    /// What the server has received (asked again after a failure).
    cursor: Option<LogCursor>,
    log: PredictionLog,
    out_of_reach: bool,
}

impl ShipState {
    /// Ships until nothing is left; false when the server could not be reached.
    fn ship_all(&mut self) -> bool {
        loop {
            match self.ship_once() {
                Ok(true) => continue,
                Ok(false) => {
                    if self.out_of_reach {
                        eprintln!(
                            "gyre serve: the team server answers again; the log is caught up"
                        );
                        self.out_of_reach = false;
                    }
                    return true;
                }
                Err(e) => {
                    self.cursor = None;
                    if !self.out_of_reach {
                        eprintln!(
                            "gyre serve: cannot ship the prediction log ({e}); it is kept here and shipped when the server answers"
                        );
                        self.out_of_reach = true;
                    }
                    return false;
                }
            }
        }
    }

    /// One shipment; true when there may be more.
    fn ship_once(&mut self) -> Result<bool, AppError> {
        let cursor = match self.cursor {
            Some(c) => c,
            None => self
                .client
                .get(&format!("/v1/log/cursor/{}", self.replica))?,
        };
        self.cursor = Some(cursor);
        let raw = self.log.raw_after(cursor, SHIP_ROWS)?;
        if raw.is_empty() {
            return Ok(false);
        }
        let full = raw.served.len() == SHIP_ROWS
            || raw.feedback.len() == SHIP_ROWS
            || raw.errors.len() == SHIP_ROWS
            || raw.sessions.len() == SHIP_ROWS;
        let now: LogCursor = self
            .client
            .post(&format!("/v1/log/ship/{}", self.replica), &raw)?;
        self.cursor = Some(now);
        Ok(full)
    }
}

fn ship_loop(mut state: ShipState, stop: &AtomicBool) {
    let mut wait = SHIP_EVERY;
    while !stop.load(Ordering::Acquire) {
        if state.ship_all() {
            wait = SHIP_EVERY;
        } else {
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        let until = std::time::Instant::now() + wait;
        while !stop.load(Ordering::Acquire) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The last shipment, after the server's log writer committed everything.
    for _ in 0..3 {
        if state.ship_all() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "gyre serve: some of the prediction log is not on the team server yet; it is kept in .gyre/log.db and shipped by the next gyre serve --remote from this directory"
    );
}

/// A replica's log shipping, running.
pub struct Shipper {
    pub replica: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shipper {
    /// Ships what is left and stops (call after the server committed its log).
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
