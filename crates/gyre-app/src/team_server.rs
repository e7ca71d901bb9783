//! The server side of the team API (`gyre server`): who a token belongs to, transactions held
//! for clients, objects checked against their hashes, the team's prediction log, and the
//! people and tokens of the project. The HTTP face (gyre-team) calls these; only this process
//! holds the store's credentials.
//!
//! A client's transaction runs on a thread of its own that holds one of the pooled stores
//! inside `Store::write` (or `read`) and runs the operations the client sends, one by one, until
//! the client commits or rolls back, or leaves it idle (rolled back: [`IDLE`] for a read,
//! [`WRITE_IDLE`] for a write, which holds the project's write lock). So a remote
//! transaction has exactly the local one's guarantees: writers serialized, the compare-and-set
//! of edits, promotions and finding decisions, all or nothing.

use crate::{AppError, now};
use gyre_core::ContentHash;
use gyre_store::{
    LogCursor, Objects, Op, PersonRecord, PredictionLog, RawLog, Role, Store, StoreError,
    TokenRecord,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A read transaction left without a request this long is rolled back (its client died or hung).
pub const IDLE: Duration = Duration::from_secs(30);
/// The same for a write transaction: it holds the project's write lock, which every other
/// writer waits for (gyre's own write transactions are a few quick operations).
pub const WRITE_IDLE: Duration = Duration::from_secs(5);
/// The most transactions open at once; a client beyond it is asked to retry.
pub const MAX_OPEN: usize = 64;
/// Open stores kept for the next transaction.
const POOL_KEEP: usize = 8;

/// The person a request is from, as the server authenticated them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// The token's public id (never the token).
    pub token: String,
    #[serde(skip)]
    token_hash: String,
}

impl Caller {
    /// Refuses a caller whose role is below `needs`.
    pub fn require(&self, needs: Role, what: &str) -> Result<(), TeamError> {
        if self.role >= needs {
            Ok(())
        } else {
            Err(TeamError::Forbidden(format!(
                "{} is a {} and may not {what} (needs {needs})",
                self.name, self.role
            )))
        }
    }
}

/// An error with the HTTP status it answers as.
#[derive(Debug)]
pub enum TeamError {
    Unauthorized(String),
    Forbidden(String),
    /// A request that cannot be done as asked (400).
    Invalid(String),
    NotFound(String),
    /// A request that conflicts with the project's state (409).
    Conflict(String),
    /// Too many open transactions (503: retry).
    Busy(String),
    App(AppError),
}

impl TeamError {
    pub fn status(&self) -> u16 {
        match self {
            TeamError::Unauthorized(_) => 401,
            TeamError::Forbidden(_) => 403,
            TeamError::Invalid(_) => 400,
            TeamError::NotFound(_) => 404,
            TeamError::Conflict(_) => 409,
            TeamError::Busy(_) => 503,
            TeamError::App(AppError::Store(e)) => store_status(e),
            TeamError::App(AppError::NotFound { .. }) => 404,
            TeamError::App(AppError::Invalid { .. } | AppError::Data(_)) => 400,
            TeamError::App(_) => 500,
        }
    }

    pub fn message(&self) -> String {
        match self {
            TeamError::Unauthorized(m)
            | TeamError::Forbidden(m)
            | TeamError::Invalid(m)
            | TeamError::NotFound(m)
            | TeamError::Conflict(m)
            | TeamError::Busy(m) => m.clone(),
            TeamError::App(e) => e.to_string(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            TeamError::App(e) => e.hint(),
            _ => None,
        }
    }
}

fn store_status(e: &StoreError) -> u16 {
    match e {
        StoreError::Invalid(_) | StoreError::Config(_) => 400,
        StoreError::MissingObject { .. } => 409,
        StoreError::Denied { status, .. } => *status,
        // A broken constraint (a duplicate id, a foreign key) is the request's conflict with
        // what the store holds, not the server's failure.
        e if e.is_conflict() => 409,
        _ => 500,
    }
}

impl From<AppError> for TeamError {
    fn from(e: AppError) -> Self {
        TeamError::App(e)
    }
}

impl From<StoreError> for TeamError {
    fn from(e: StoreError) -> Self {
        TeamError::App(AppError::Store(e))
    }
}

/// A message to a transaction's thread (one at a time: the size of a variant does not matter).
#[allow(clippy::large_enum_variant)]
enum Msg {
    Op(Op, Sender<Result<serde_json::Value, TeamError>>),
    End {
        commit: bool,
        reply: Sender<Result<(), TeamError>>,
    },
}

struct Session {
    /// Whose transaction it is: only the same token may use it.
    token_hash: String,
    write: bool,
    to: Sender<Msg>,
}

/// How a transaction's thread stopped.
enum Ended {
    Rollback(Sender<Result<(), TeamError>>),
    Idle,
    Store(StoreError),
}

impl From<StoreError> for Ended {
    fn from(e: StoreError) -> Self {
        Ended::Store(e)
    }
}

/// The team server's state.
pub struct TeamService {
    root: PathBuf,
    objects: Objects,
    pool: Mutex<Vec<Store>>,
    sessions: Mutex<HashMap<String, Session>>,
    /// The team's prediction log: every replica's traffic.
    log: Mutex<PredictionLog>,
}

impl TeamService {
    /// Opens the project at `root` to serve it.
    pub fn open(root: &Path) -> Result<Arc<TeamService>, AppError> {
        let store = Store::open(root)?;
        if store.server().is_some() {
            return Err(AppError::invalid(format!(
                "{} is a clone of a team server: serve the project where its store is",
                root.display()
            )));
        }
        let log = store.prediction_log()?;
        Ok(Arc::new(TeamService {
            root: root.to_path_buf(),
            objects: store.objects().clone(),
            pool: Mutex::new(vec![store]),
            sessions: Mutex::new(HashMap::new()),
            log: Mutex::new(log),
        }))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn take_store(&self) -> Result<Store, AppError> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(s) => Ok(s),
            None => Ok(Store::open(&self.root)?),
        }
    }

    fn give_store(&self, store: Store) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL_KEEP {
            pool.push(store);
        }
    }

    /// A short read on a pooled store.
    fn read<T>(
        &self,
        f: impl FnOnce(&gyre_store::Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, TeamError> {
        let mut store = self.take_store()?;
        let out = store.read(f);
        self.give_store(store);
        Ok(out?)
    }

    /// The person holding `token`, or 401.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Caller, TeamError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(TeamError::Unauthorized(
                "a token is required: send Authorization: Bearer TOKEN".into(),
            ));
        };
        let hash = gyre_store::token_hash(token);
        match self.read(|tx| tx.token_holder(&hash))? {
            Some((t, p)) => Ok(Caller {
                name: p.name,
                role: p.role,
                token: t.id,
                token_hash: hash,
            }),
            None => Err(TeamError::Unauthorized(
                "the token is unknown or revoked".into(),
            )),
        }
    }

    /// The project's gyre.toml as a clone keeps it: its settings, without where the store
    /// lives (a clone reaches the store through this server only).
    pub fn clone_config(&self) -> Result<String, TeamError> {
        let path = self.root.join(gyre_store::CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TeamError::App(StoreError::io(&path, e).into()))?;
        let mut doc: toml::Table = toml::from_str(&text)
            .map_err(|e| TeamError::App(AppError::invalid(format!("{}: {e}", path.display()))))?;
        doc.remove("store");
        doc.remove("server");
        Ok(toml::to_string(&doc).unwrap_or_default())
    }

    /// Begins a transaction for `caller` and runs its first op; returns the transaction's id
    /// and the op's answer.
    pub fn begin(
        self: &Arc<Self>,
        caller: &Caller,
        write: bool,
        op: Op,
    ) -> Result<(String, serde_json::Value), TeamError> {
        if write {
            caller.require(Role::Member, "change the project")?;
        }
        let id = gyre_store::hex(&gyre_store::random_bytes(16)?);
        let (to, from) = channel();
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if sessions.len() >= MAX_OPEN {
                return Err(TeamError::Busy(format!(
                    "{MAX_OPEN} transactions are open; retry in a moment"
                )));
            }
            sessions.insert(
                id.clone(),
                Session {
                    token_hash: caller.token_hash.clone(),
                    write,
                    to,
                },
            );
        }
        let store = match self.take_store() {
            Ok(s) => s,
            Err(e) => {
                self.forget(&id);
                return Err(e.into());
            }
        };
        let me = self.clone();
        let tx_id = id.clone();
        let person = caller.name.clone();
        std::thread::Builder::new()
            .name("gyre-team-tx".into())
            .spawn(move || me.run_session(store, write, &person, from, &tx_id))
            .map_err(|e| {
                self.forget(&id);
                TeamError::App(AppError::invalid(format!(
                    "cannot start a transaction: {e}"
                )))
            })?;
        match self.op(caller, &id, op) {
            Ok(answer) => Ok((id, answer)),
            Err(e) => {
                let _ = self.finish(caller, &id, false);
                Err(e)
            }
        }
    }

    fn forget(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    fn session(&self, caller: &Caller, id: &str) -> Result<(Sender<Msg>, bool), TeamError> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get(id) {
            Some(s) if s.token_hash == caller.token_hash => Ok((s.to.clone(), s.write)),
            _ => Err(TeamError::NotFound(format!(
                "no open transaction {id} of yours (it ended, or was left idle: {} s for a read, {} s for a write, and rolled back)",
                IDLE.as_secs(),
                WRITE_IDLE.as_secs()
            ))),
        }
    }

    /// Runs one op in the caller's open transaction.
    pub fn op(
        &self,
        caller: &Caller,
        id: &str,
        mut op: Op,
    ) -> Result<serde_json::Value, TeamError> {
        let needs = op.needs();
        caller.require(needs, &op.action())?;
        let (to, write) = self.session(caller, id)?;
        if op.writes() && !write {
            return Err(TeamError::Invalid(format!(
                "{} changes the project: begin a write transaction",
                op.name()
            )));
        }
        op.stamp(&caller.name);
        for object in op.objects() {
            let id = ContentHash::parse(object)
                .ok_or_else(|| TeamError::Invalid(format!("{object:?} is not an object id")))?;
            if !self.objects.contains(&id) {
                return Err(TeamError::Conflict(format!(
                    "object {id} is not on the server: upload it before recording it"
                )));
            }
        }
        let (reply, answer) = channel();
        to.send(Msg::Op(op, reply)).map_err(|_| self.ended(id))?;
        answer.recv().map_err(|_| self.ended(id))?
    }

    fn ended(&self, id: &str) -> TeamError {
        self.forget(id);
        TeamError::NotFound(format!("transaction {id} has ended"))
    }

    /// Commits or rolls back the caller's transaction.
    pub fn finish(&self, caller: &Caller, id: &str, commit: bool) -> Result<(), TeamError> {
        let (to, _) = self.session(caller, id)?;
        let (reply, answer) = channel();
        to.send(Msg::End { commit, reply })
            .map_err(|_| self.ended(id))?;
        let out = answer.recv().map_err(|_| self.ended(id))?;
        self.forget(id);
        out
    }

    /// A transaction's thread: the store's own transaction, driven by messages.
    fn run_session(
        &self,
        mut store: Store,
        write: bool,
        person: &str,
        from: Receiver<Msg>,
        id: &str,
    ) {
        let mut commit_reply: Option<Sender<Result<(), TeamError>>> = None;
        let serve = |tx: &gyre_store::Tx<'_>,
                     commit_reply: &mut Option<Sender<Result<(), TeamError>>>|
         -> Result<(), Ended> {
            loop {
                match from.recv_timeout(if write { WRITE_IDLE } else { IDLE }) {
                    Ok(Msg::Op(op, reply)) => {
                        let _ = reply.send(op.apply(tx).map_err(TeamError::from));
                    }
                    Ok(Msg::End {
                        commit: true,
                        reply,
                    }) if write => {
                        *commit_reply = Some(reply);
                        return Ok(());
                    }
                    Ok(Msg::End { reply, .. }) => return Err(Ended::Rollback(reply)),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                        return Err(Ended::Idle);
                    }
                }
            }
        };
        let out = if write {
            store.write(|tx| serve(tx, &mut commit_reply))
        } else {
            store.read(|tx| serve(tx, &mut commit_reply))
        };
        self.forget(id);
        match out {
            Ok(()) => {
                if let Some(reply) = commit_reply {
                    let _ = reply.send(Ok(()));
                } else if !write {
                    // A read "committed": nothing to keep.
                }
            }
            Err(Ended::Rollback(reply)) => {
                let _ = reply.send(Ok(()));
            }
            Err(Ended::Idle) => {
                eprintln!(
                    "gyre server: a {} transaction of {person} was left idle and was rolled back",
                    if write { "write" } else { "read" }
                );
            }
            Err(Ended::Store(e)) => {
                if let Some(reply) = commit_reply {
                    let _ = reply.send(Err(e.into()));
                }
            }
        }
        self.give_store(store);
    }

    /// Whether the server holds the object.
    pub fn has_object(&self, id: &str) -> Result<bool, TeamError> {
        Ok(self.objects.contains(&object_id(id)?))
    }

    /// An object's bytes (mapped), or 404.
    pub fn object(&self, id: &str) -> Result<bytes::Bytes, TeamError> {
        let id = object_id(id)?;
        match self.objects.get_mapped(&id) {
            Ok(b) => Ok(b),
            Err(StoreError::MissingObject { .. }) => {
                Err(TeamError::NotFound(format!("no object {id}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores an uploaded object after checking its bytes hash to the id it was sent as.
    pub fn put_object(&self, caller: &Caller, id: &str, bytes: &[u8]) -> Result<(), TeamError> {
        caller.require(Role::Member, "upload objects")?;
        let want = object_id(id)?;
        let got = ContentHash::of(bytes);
        if got != want {
            return Err(TeamError::Invalid(format!(
                "the bytes sent as object {want} hash to {got}: nothing stored"
            )));
        }
        self.objects.put(bytes)?;
        Ok(())
    }

    /// Numbers a serving replica's session in the team's log.
    pub fn start_log_session(
        &self,
        caller: &Caller,
        champion: &str,
        challenger: Option<&str>,
        mode: Option<&str>,
    ) -> Result<i64, TeamError> {
        caller.require(Role::Member, "serve the project")?;
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        Ok(log.start_session(&now(), champion, challenger, mode)?)
    }

    /// What the team's log has received from a replica.
    pub fn log_cursor(&self, caller: &Caller, replica: &str) -> Result<LogCursor, TeamError> {
        caller.require(Role::Member, "serve the project")?;
        check_replica(replica)?;
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        Ok(log.cursor(&replica_source(&caller.name, replica))?)
    }

    /// Appends what a replica logged (once, however often it is sent).
    pub fn ship_log(
        &self,
        caller: &Caller,
        replica: &str,
        raw: &RawLog,
    ) -> Result<LogCursor, TeamError> {
        caller.require(Role::Member, "serve the project")?;
        check_replica(replica)?;
        // A replica ships only sessions this log numbered.
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let mut sessions: Vec<i64> = raw
            .served
            .iter()
            .map(|b| b.session)
            .chain(raw.feedback.iter().map(|f| f.session))
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        if let Some(s) = sessions
            .into_iter()
            .find(|s| !log.has_session(*s).unwrap_or(false))
        {
            return Err(TeamError::Invalid(format!(
                "session {s} was not started through this server"
            )));
        }
        Ok(log.append_raw(&replica_source(&caller.name, replica), raw)?)
    }

    /// The team's log after a cursor (a clone copies it to read it).
    pub fn log_after(&self, after: LogCursor, limit: usize) -> Result<RawLog, TeamError> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        Ok(log.raw_after(after, limit)?)
    }
}

/// People and tokens through the API: a maintainer manages everyone's; anyone makes, lists and
/// revokes their own.
impl TeamService {
    pub fn people_list(&self, caller: &Caller) -> Result<Vec<PersonRecord>, TeamError> {
        caller.require(Role::Maintainer, "list the people")?;
        Ok(people::list(&self.root)?)
    }

    pub fn person_add(
        &self,
        caller: &Caller,
        name: &str,
        role: Role,
    ) -> Result<people::NewToken, TeamError> {
        caller.require(Role::Maintainer, "add people")?;
        Ok(people::add(&self.root, name, role, &caller.name)?)
    }

    pub fn token_create(
        &self,
        caller: &Caller,
        user: Option<&str>,
        label: &str,
    ) -> Result<people::NewToken, TeamError> {
        let who = user.unwrap_or(&caller.name);
        if who != caller.name {
            caller.require(Role::Maintainer, "make tokens for other people")?;
        }
        Ok(people::create_token(&self.root, who, label, &caller.name)?)
    }

    pub fn token_list(
        &self,
        caller: &Caller,
        user: Option<&str>,
    ) -> Result<Vec<TokenRecord>, TeamError> {
        if user != Some(caller.name.as_str()) {
            caller.require(Role::Maintainer, "list other people's tokens")?;
        }
        Ok(people::tokens(&self.root, user)?)
    }

    pub fn token_revoke(&self, caller: &Caller, id: &str) -> Result<TokenRecord, TeamError> {
        let all = people::tokens(&self.root, None)?;
        let owner = all.iter().find(|t| t.id == id).map(|t| t.person.clone());
        if owner.as_deref() != Some(caller.name.as_str()) {
            caller.require(Role::Maintainer, "revoke other people's tokens")?;
        }
        Ok(people::revoke(&self.root, id, &caller.name)?)
    }
}

/// The log's name for a replica's rows: its person's and its own (two people's replicas of
/// the same name never share a cursor).
fn replica_source(person: &str, replica: &str) -> String {
    format!("{person}/{replica}")
}

fn check_replica(name: &str) -> Result<(), TeamError> {
    if !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(TeamError::Invalid(format!(
            "{name:?} is not a replica name (letters, digits, '-', '_', '.')"
        )))
    }
}

/// An object id from a URL: 64 hex digits and nothing else (no path can be formed from it).
fn object_id(id: &str) -> Result<ContentHash, TeamError> {
    ContentHash::parse(id)
        .ok_or_else(|| TeamError::Invalid(format!("{id:?} is not an object id (64 hex digits)")))
}

/// People and tokens, managed on the server's own store (`gyre server user add`, `gyre server
/// token ...`): the operator's commands, run where the store's credentials are.
pub mod people {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct NewToken {
        pub person: String,
        pub role: Role,
        pub id: String,
        /// Shown once: the store keeps only its hash.
        pub token: String,
    }

    fn open(root: &Path) -> Result<Store, AppError> {
        let store = Store::open(root)?;
        if store.server().is_some() {
            return Err(AppError::invalid(
                "people and tokens are managed where the server runs (its project directory)",
            ));
        }
        Ok(store)
    }

    /// Adds a person with a role and makes their first token.
    pub fn add(root: &Path, name: &str, role: Role, by: &str) -> Result<NewToken, AppError> {
        gyre_store::check_person_name(name)?;
        let mut store = open(root)?;
        let time = now();
        let (secret, token) = gyre_store::new_token(name, "first token", &time)?;
        store.write(|tx| {
            if tx.person(name)?.is_some() {
                return Err(AppError::invalid(format!(
                    "{name} is already a person of this project (gyre server token create --user {name} makes another token)"
                )));
            }
            tx.insert_person(&PersonRecord {
                name: name.into(),
                role,
                created_at: time.clone(),
                created_by: by.into(),
            })?;
            tx.insert_token(&token)?;
            tx.append_journal(&gyre_store::NewJournalEntry {
                time: &time,
                user: by,
                command: &format!("gyre server user add {name} --role {role}"),
                why: None,
                objects: &[],
            })?;
            Ok(())
        })?;
        Ok(NewToken {
            person: name.into(),
            role,
            id: token.id,
            token: secret,
        })
    }

    pub fn list(root: &Path) -> Result<Vec<PersonRecord>, AppError> {
        let mut store = open(root)?;
        Ok(store.read(|tx| tx.people())?)
    }

    /// Makes another token for a person.
    pub fn create_token(
        root: &Path,
        name: &str,
        label: &str,
        by: &str,
    ) -> Result<NewToken, AppError> {
        let mut store = open(root)?;
        let time = now();
        let (secret, token) = gyre_store::new_token(name, label, &time)?;
        let role = store.write(|tx| {
            let Some(p) = tx.person(name)? else {
                return Err(AppError::NotFound {
                    what: "person",
                    name: name.into(),
                    suggestion: gyre_core::suggest::closest(
                        name,
                        tx.people()?.iter().map(|p| p.name.as_str()),
                    )
                    .map(String::from),
                });
            };
            tx.insert_token(&token)?;
            tx.append_journal(&gyre_store::NewJournalEntry {
                time: &time,
                user: by,
                command: &format!("gyre server token create --user {name}"),
                why: None,
                objects: &[],
            })?;
            Ok(p.role)
        })?;
        Ok(NewToken {
            person: name.into(),
            role,
            id: token.id,
            token: secret,
        })
    }

    pub fn tokens(root: &Path, person: Option<&str>) -> Result<Vec<TokenRecord>, AppError> {
        let mut store = open(root)?;
        Ok(store.read(|tx| tx.tokens(person))?)
    }

    /// Revokes a token by its id; the server refuses it from its next request on.
    pub fn revoke(root: &Path, id: &str, by: &str) -> Result<TokenRecord, AppError> {
        let mut store = open(root)?;
        let time = now();
        store.write(|tx| {
            let all = tx.tokens(None)?;
            let Some(t) = all.iter().find(|t| t.id == id).cloned() else {
                return Err(AppError::NotFound {
                    what: "token",
                    name: id.into(),
                    suggestion: None,
                });
            };
            if !tx.revoke_token(id, &time)? {
                return Err(AppError::invalid(format!("token {id} is already revoked")));
            }
            tx.append_journal(&gyre_store::NewJournalEntry {
                time: &time,
                user: by,
                command: &format!("gyre server token revoke {id}"),
                why: None,
                objects: &[],
            })?;
            Ok(TokenRecord {
                revoked_at: Some(time.clone()),
                ..t
            })
        })
    }
}
