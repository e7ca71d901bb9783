//! Finding, creating and opening a project; transactions over its metadata.
//!
//! A project's metadata lives in one of two backends: the embedded store (`.gyre/gyre.db`,
//! SQLite, the default) or the team store (PostgreSQL, named by `[store] metadata` in
//! gyre.toml, with objects in an S3-compatible bucket named by `[store] objects`). Both serve
//! the same operations ([`Tx`]); the conformance tests run each against both.

use crate::migrations::MIGRATIONS;
use crate::remote::Remote;
use crate::sql::Conn;
use crate::{Objects, StoreError, pg};
use rusqlite::Connection;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "gyre.toml";
pub const STATE_DIR: &str = ".gyre";
const DB_FILE: &str = "gyre.db";

/// An open project: its root directory, metadata connection and object store.
pub struct Store {
    root: PathBuf,
    db: Db,
    objects: Objects,
}

/// The metadata connection (one per open store: the size of a variant does not matter).
#[allow(clippy::large_enum_variant)]
enum Db {
    Lite(Connection),
    Pg {
        client: postgres::Client,
        statements: HashMap<String, postgres::Statement>,
        /// To connect again when the server dropped the connection (a restart, a failover)
        /// while a long-lived face (`gyre ui`, `gyre serve`) held it.
        url: String,
    },
    /// A team server holds the store (`[server] url`): every operation is a request to it.
    Server(std::sync::Arc<crate::client::ServerClient>),
}

impl Db {
    /// A PostgreSQL connection found closed is made again before the next transaction (one
    /// interrupted mid-transaction has failed that transaction; nothing half-done remains).
    /// A connection the server ended while idle (a restart, a failover) often shows as closed
    /// only when used: when beginning a transaction finds it so, nothing was done yet, and the
    /// transaction begins again on a new connection, once (see `Store::write` and `read`).
    fn reconnect_if_closed(&mut self) -> Result<(), StoreError> {
        if let Db::Pg {
            client,
            statements,
            url,
        } = self
            && client.is_closed()
        {
            reconnect(client, statements, url)?;
        }
        Ok(())
    }
}

fn reconnect(
    client: &mut postgres::Client,
    statements: &mut HashMap<String, postgres::Statement>,
    url: &str,
) -> Result<(), StoreError> {
    *client = pg::connect(url)?;
    statements.clear();
    Ok(())
}

/// A metadata transaction: everything inside commits together or not at all.
pub struct Tx<'a>(pub(crate) Conn<'a>);

impl Tx<'_> {
    /// Whether this transaction is on the team store (PostgreSQL).
    pub fn is_team(&self) -> bool {
        self.0.is_postgres()
    }
}

/// The `[store]` section of gyre.toml: where a team project's metadata and objects live.
/// Never credentials: those come from the environment and the usual files (see `pg` and
/// `remote`).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://USER@HOST:PORT/DATABASE`.
    pub metadata: Option<String>,
    /// `s3://BUCKET/PREFIX`.
    pub objects: Option<String>,
    /// The S3-compatible endpoint (`http://127.0.0.1:9000`); default AWS_ENDPOINT_URL, else AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The bucket's region; default AWS_REGION, else us-east-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl StoreConfig {
    /// The `[store]` section of a gyre.toml text (`None` for an embedded project).
    pub fn from_config_text(text: &str, path: &Path) -> Result<Option<StoreConfig>, StoreError> {
        #[derive(serde::Deserialize)]
        struct File {
            store: Option<StoreConfig>,
        }
        let f: File = toml::from_str(text).map_err(|e| {
            StoreError::Config(format!("{}: {}", path.display(), e.to_string().trim()))
        })?;
        if let Some(c) = &f.store {
            c.check()
                .map_err(|e| StoreError::Config(format!("{}: [store] {e}", path.display())))?;
        }
        Ok(f.store)
    }

    /// Both locations given and well formed, with no secret in either.
    pub fn check(&self) -> Result<(), StoreError> {
        match (&self.metadata, &self.objects) {
            (Some(m), Some(o)) => {
                pg::parse_url(m)?;
                crate::remote::parse_s3_url(o)?;
                Ok(())
            }
            (None, None) => Err(StoreError::Config(
                "names neither metadata nor objects; remove it for an embedded project".into(),
            )),
            _ => Err(StoreError::Config(
                "needs both metadata = \"postgres://...\" and objects = \"s3://...\" (a team \
                 store keeps both where the whole team reaches them)"
                    .into(),
            )),
        }
    }

    /// The section as gyre.toml text.
    pub fn to_toml(&self) -> String {
        #[derive(serde::Serialize)]
        struct File<'a> {
            store: &'a StoreConfig,
        }
        toml::to_string(&File { store: self }).expect("strings serialize")
    }

    /// Where the metadata lives, without secrets (for messages and reports).
    pub fn metadata_shown(&self) -> Option<String> {
        self.metadata.as_deref().map(pg::redact)
    }
}

fn read_store_config(root: &Path) -> Result<Option<StoreConfig>, StoreError> {
    let path = root.join(CONFIG_FILE);
    let text = fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
    StoreConfig::from_config_text(&text, &path)
}

/// The `[server] url` of a gyre.toml text: the team server a cloned project works through.
pub fn server_url(text: &str, path: &Path) -> Result<Option<String>, StoreError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Server {
        url: String,
    }
    #[derive(serde::Deserialize)]
    struct File {
        server: Option<Server>,
    }
    let f: File = toml::from_str(text)
        .map_err(|e| StoreError::Config(format!("{}: {}", path.display(), e.to_string().trim())))?;
    match f.server {
        Some(s) => crate::client::check_server_url(&s.url)
            .map(Some)
            .map_err(|e| StoreError::Config(format!("{}: [server] {e}", path.display()))),
        None => Ok(None),
    }
}

/// Opens a team store's connection and bucket, bringing the schema up to date.
fn open_team(state: &Path, c: &StoreConfig) -> Result<(Db, Objects), StoreError> {
    let url = c.metadata.as_deref().expect("checked");
    let mut client = pg::connect(url)?;
    pg::migrate(&mut client, url)?;
    let remote = Remote::new(
        c.objects.as_deref().expect("checked"),
        c.endpoint.as_deref(),
        c.region.as_deref(),
    )?;
    Ok((
        Db::Pg {
            client,
            statements: HashMap::new(),
            url: url.to_string(),
        },
        Objects::with_remote(state, remote),
    ))
}

/// The nearest directory from `start` upward that holds `gyre.toml`.
pub fn discover(start: &Path) -> Result<PathBuf, StoreError> {
    let start = start.canonicalize().map_err(|e| StoreError::io(start, e))?;
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        if d.join(CONFIG_FILE).is_file() {
            return Ok(d.to_path_buf());
        }
        dir = d.parent();
    }
    Err(StoreError::NoProject { start })
}

impl Store {
    /// Creates a project in `dir` (made if absent) with the given `gyre.toml` text. Refuses to
    /// touch a directory that already holds a project. The state directory is built under a
    /// temporary name and renamed into place, and `gyre.toml` is written last, so an interrupted
    /// init leaves no half-made project behind.
    pub fn init(dir: &Path, config_text: &str) -> Result<PathBuf, StoreError> {
        let made_dir = !dir.exists();
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let root = dir.canonicalize().map_err(|e| StoreError::io(dir, e))?;
        if root.join(CONFIG_FILE).exists() || root.join(STATE_DIR).exists() {
            return Err(StoreError::AlreadyProject { path: root });
        }
        let team = StoreConfig::from_config_text(config_text, &root.join(CONFIG_FILE));
        let team = match team {
            Ok(t) => t,
            Err(e) => {
                if made_dir {
                    let _ = fs::remove_dir(&root);
                }
                return Err(e);
            }
        };
        let staging = root.join(format!(".gyre.init-{}", std::process::id()));
        let build = || -> Result<(), StoreError> {
            fs::create_dir_all(staging.join("objects")).map_err(|e| StoreError::io(&staging, e))?;
            fs::create_dir_all(staging.join("tmp")).map_err(|e| StoreError::io(&staging, e))?;
            let server = server_url(config_text, &root.join(CONFIG_FILE))?;
            match &team {
                // A clone of a team server: the server holds the store; here only the cache.
                _ if server.is_some() => {}
                // The team's database and bucket: reached (and the schema made or brought up
                // to date) before the project exists, so a wrong URL leaves nothing behind.
                Some(c) => drop(open_team(&staging, c)?),
                None => {
                    let mut conn = connect(&staging.join(DB_FILE))?;
                    migrate(&mut conn, &staging)?;
                    conn.close().map_err(|(_, e)| StoreError::Sql(e))?;
                }
            }
            Ok(())
        };
        if let Err(e) = build() {
            let _ = fs::remove_dir_all(&staging);
            if made_dir {
                // The directory this init made, now empty again (remove_dir keeps a full one).
                let _ = fs::remove_dir(&root);
            }
            return Err(e);
        }
        fs::rename(&staging, root.join(STATE_DIR)).map_err(|e| StoreError::io(&root, e))?;
        write_atomic(&root.join(CONFIG_FILE), config_text.as_bytes())?;
        Ok(root)
    }

    /// Opens the project rooted at `root`, bringing its schema up to date and clearing
    /// temporary files left by writers that died.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let state = root.join(STATE_DIR);
        if !root.join(CONFIG_FILE).is_file() || !state.is_dir() {
            return Err(StoreError::NoProject {
                start: root.to_path_buf(),
            });
        }
        let path = root.join(CONFIG_FILE);
        let text = fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
        let (db, objects) = match (server_url(&text, &path)?, read_store_config(root)?) {
            (Some(url), _) => {
                let client = std::sync::Arc::new(crate::client::ServerClient::new(&url)?);
                let objects = Objects::with_server(&state, client.clone());
                (Db::Server(client), objects)
            }
            (None, Some(c)) => open_team(&state, &c)?,
            (None, None) => {
                let mut conn = connect(&state.join(DB_FILE))?;
                migrate(&mut conn, root)?;
                (Db::Lite(conn), Objects::new(&state))
            }
        };
        let _ = fs::create_dir_all(state.join("tmp"));
        objects.sweep_abandoned();
        Ok(Store {
            root: root.to_path_buf(),
            db,
            objects,
        })
    }

    /// After a bulk load into PostgreSQL: fresh planner statistics, and the visibility map
    /// set so that index-only scans need not visit the table (until autovacuum came by, a
    /// filtered listing of 100,000 runs took 300 ms instead of 70). Nothing for SQLite.
    pub(crate) fn vacuum_analyze(&mut self) -> Result<(), StoreError> {
        if let Db::Pg { client, .. } = &mut self.db {
            client.batch_execute("VACUUM (ANALYZE)")?;
        }
        Ok(())
    }

    /// Whether this project's metadata and objects are the team store.
    pub fn is_team(&self) -> bool {
        matches!(self.db, Db::Pg { .. })
    }

    /// The team server this project works through (a clone), if any.
    pub fn server(&self) -> Option<&crate::client::ServerClient> {
        match &self.db {
            Db::Server(s) => Some(s),
            _ => None,
        }
    }

    /// The team store's object bucket (`s3://...`), for reports.
    pub fn objects_location(&self) -> Option<&str> {
        self.objects.remote().map(Remote::url)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// Opens the project's prediction log (`.gyre/log.db`), creating it on first use.
    pub fn prediction_log(&self) -> Result<crate::PredictionLog, StoreError> {
        crate::PredictionLog::open(&self.root.join(STATE_DIR))
    }

    /// Runs `f` in one transaction; commits when it returns Ok, rolls back otherwise. Write
    /// transactions of a project are serialized: SQLite's write lock, PostgreSQL's advisory
    /// lock (see `pg`), each taken when the transaction begins.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.db.reconnect_if_closed()?;
        match &mut self.db {
            Db::Lite(conn) => {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(StoreError::from)?;
                let tx = Tx(Conn::Lite(tx));
                let out = f(&tx)?;
                let Conn::Lite(tx) = tx.0 else { unreachable!() };
                tx.commit().map_err(StoreError::from)?;
                Ok(out)
            }
            Db::Pg {
                client,
                statements,
                url,
            } => {
                let mut retried = false;
                loop {
                    let failed = match client
                        .build_transaction()
                        .isolation_level(postgres::IsolationLevel::ReadCommitted)
                        .start()
                    {
                        Ok(mut tx) => {
                            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&pg::WRITE_LOCK])
                                .map_err(StoreError::from)?;
                            let tx = Tx(Conn::Pg {
                                tx: std::cell::RefCell::new(tx),
                                statements: std::cell::RefCell::new(statements),
                            });
                            let out = f(&tx)?;
                            let Conn::Pg { tx, .. } = tx.0 else {
                                unreachable!()
                            };
                            tx.into_inner().commit().map_err(StoreError::from)?;
                            return Ok(out);
                        }
                        Err(e) => e,
                    };
                    if retried || !client.is_closed() {
                        return Err(StoreError::from(failed).into());
                    }
                    retried = true;
                    reconnect(client, statements, url)?;
                }
            }
            Db::Server(client) => {
                let tx = Tx(Conn::Server(crate::client::ServerTx::new(client, true)));
                let out = f(&tx);
                let Conn::Server(tx) = tx.0 else {
                    unreachable!()
                };
                match out {
                    Ok(out) => {
                        tx.finish(true)?;
                        Ok(out)
                    }
                    Err(e) => {
                        // The server also drops a transaction left idle; this only frees it sooner.
                        let _ = tx.finish(false);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Read-only access outside a write transaction: one consistent snapshot.
    pub fn read<T, E>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.db.reconnect_if_closed()?;
        match &mut self.db {
            Db::Lite(conn) => {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
                    .map_err(StoreError::from)?;
                f(&Tx(Conn::Lite(tx)))
            }
            Db::Pg {
                client,
                statements,
                url,
            } => {
                let mut retried = false;
                loop {
                    let failed = match client
                        .build_transaction()
                        .isolation_level(postgres::IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start()
                    {
                        Ok(tx) => {
                            return f(&Tx(Conn::Pg {
                                tx: std::cell::RefCell::new(tx),
                                statements: std::cell::RefCell::new(statements),
                            }));
                        }
                        Err(e) => e,
                    };
                    if retried || !client.is_closed() {
                        return Err(StoreError::from(failed).into());
                    }
                    retried = true;
                    reconnect(client, statements, url)?;
                }
            }
            Db::Server(client) => {
                let tx = Tx(Conn::Server(crate::client::ServerTx::new(client, false)));
                let out = f(&tx);
                let Conn::Server(tx) = tx.0 else {
                    unreachable!()
                };
                let _ = tx.finish(false);
                out
            }
        }
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Each commit is durable when it returns: one fsync of the write-ahead log. The log is not
    // copied into the database when a command ends (each command did that, with two fsyncs and
    // the log deleted and made again by the next writer); it is checkpointed when it passes
    // 256 pages (1 MB), which bounds what the next command to open the project reads to rebuild
    // the log's index. An edit went from four fsyncs to one (strace).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    conn.pragma_update(None, "wal_autocheckpoint", 256)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, root: &Path) -> Result<(), StoreError> {
    // Up to date (the usual case): no write lock taken. Else the version is read again under
    // the lock, in case another process migrated meanwhile.
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            path: root.to_path_buf(),
            found: current,
            known,
        });
    }
    for sql in &MIGRATIONS[current as usize..] {
        tx.execute_batch(sql)?;
    }
    if current < known {
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.commit()?;
    Ok(())
}

/// Writes a file whole or not at all: a temporary sibling, fsync, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let run = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    run().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}
