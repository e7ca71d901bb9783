//! Finding, creating and opening a project; transactions over its metadata.

use crate::migrations::MIGRATIONS;
use crate::{Objects, StoreError};
use rusqlite::{Connection, Transaction};
use std::fs;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "gyre.toml";
pub const STATE_DIR: &str = ".gyre";
const DB_FILE: &str = "gyre.db";

/// An open project: its root directory, metadata connection and object store.
pub struct Store {
    root: PathBuf,
    conn: Connection,
    objects: Objects,
}

/// A metadata transaction: everything inside commits together or not at all.
pub struct Tx<'a>(pub(crate) Transaction<'a>);

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
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let root = dir.canonicalize().map_err(|e| StoreError::io(dir, e))?;
        if root.join(CONFIG_FILE).exists() || root.join(STATE_DIR).exists() {
            return Err(StoreError::AlreadyProject { path: root });
        }
        let staging = root.join(format!(".gyre.init-{}", std::process::id()));
        let build = || -> Result<(), StoreError> {
            fs::create_dir_all(staging.join("objects")).map_err(|e| StoreError::io(&staging, e))?;
            fs::create_dir_all(staging.join("tmp")).map_err(|e| StoreError::io(&staging, e))?;
            let mut conn = connect(&staging.join(DB_FILE))?;
            migrate(&mut conn, &staging)?;
            conn.close().map_err(|(_, e)| StoreError::Sql(e))?;
            Ok(())
        };
        if let Err(e) = build() {
            let _ = fs::remove_dir_all(&staging);
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
        let mut conn = connect(&state.join(DB_FILE))?;
        migrate(&mut conn, root)?;
        let objects = Objects::new(&state);
        let _ = fs::create_dir_all(state.join("tmp"));
        objects.sweep_abandoned();
        Ok(Store {
            root: root.to_path_buf(),
            conn,
            objects,
        })
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

    /// Runs `f` in one transaction; commits when it returns Ok, rolls back otherwise.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let tx = Tx(tx);
        let out = f(&tx)?;
        tx.0.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Read-only access outside a write transaction.
    pub fn read<T, E>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let tx = Tx(tx);
        f(&tx)
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
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
