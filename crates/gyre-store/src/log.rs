//! The prediction log: what the server answered, the errors it returned, and the true labels that
//! came back as feedback. It lives in its own SQLite file, `.gyre/log.db`, beside the metadata:
//! it grows with traffic, is written by the server at request rate, and must never slow or lock
//! the metadata that every command reads.
//!
//! Durability: the server appends in batches, one transaction each, with `synchronous=FULL`, so a
//! committed batch survives a crash of the process or of the machine, and a crash loses at most the
//! batch not yet committed. SQLite's journal guarantees that a torn batch is rolled back on the
//! next open, never half applied.
//!
//! Prediction ids are `SESSION-N`: every server start takes a new session number in its own
//! committed transaction, so an id handed out before a crash is never reused after it.

use crate::StoreError;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::path::Path;

const LOG_FILE: &str = "log.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    champion TEXT NOT NULL,
    challenger TEXT,
    mode TEXT
);
CREATE TABLE IF NOT EXISTS served (
    session INTEGER NOT NULL,
    n INTEGER NOT NULL,
    time TEXT NOT NULL,
    model TEXT NOT NULL,
    arm TEXT NOT NULL,
    shadow INTEGER NOT NULL,
    key TEXT,
    features TEXT NOT NULL,
    label TEXT NOT NULL,
    scores TEXT NOT NULL,
    unseen TEXT,
    latency_us INTEGER NOT NULL,
    PRIMARY KEY (session, n, shadow)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL,
    n INTEGER NOT NULL,
    label TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_id ON feedback(session, n);
CREATE TABLE IF NOT EXISTS errors (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    status INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS served_append_only_u BEFORE UPDATE ON served
    BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS served_append_only_d BEFORE DELETE ON served
    BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS feedback_append_only_u BEFORE UPDATE ON feedback
    BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS feedback_append_only_d BEFORE DELETE ON feedback
    BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
";

/// A prediction id: the server session and the request's number in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PredictionId {
    pub session: i64,
    pub n: i64,
}

impl PredictionId {
    pub fn parse(text: &str) -> Option<PredictionId> {
        let (s, n) = text.split_once('-')?;
        Some(PredictionId {
            session: s.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

impl std::fmt::Display for PredictionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.session, self.n)
    }
}

/// One served prediction. A shadow prediction has the id of the answer it shadowed.
#[derive(Clone, Debug)]
pub struct ServedRecord {
    pub id: PredictionId,
    pub time: String,
    pub model: String,
    /// `champion` or `challenger`.
    pub arm: String,
    pub shadow: bool,
    pub key: Option<String>,
    /// The request row as JSON.
    pub features: String,
    pub label: String,
    /// The scores as a JSON array.
    pub scores: String,
    /// Unseen categorical fields as a JSON array, when any.
    pub unseen: Option<String>,
    pub latency_us: u64,
}

#[derive(Clone, Debug)]
pub struct FeedbackRecord {
    pub seq: i64,
    pub id: PredictionId,
    pub label: String,
    pub time: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ErrorRecord {
    pub time: String,
    pub status: u16,
    pub message: String,
}

/// What one batch appends.
#[derive(Default)]
pub struct LogBatch {
    pub served: Vec<ServedRecord>,
    pub feedback: Vec<(PredictionId, String, String)>,
    pub errors: Vec<ErrorRecord>,
}

impl LogBatch {
    pub fn len(&self) -> usize {
        self.served.len() + self.feedback.len() + self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct PredictionLog {
    conn: Connection,
}

/// The prediction id in columns `first` (session) and `first + 1` (number) of a result row.
const SERVED_COLUMNS: &str =
    "session, n, time, model, arm, shadow, key, features, label, scores, unseen, latency_us";

/// A `served` row selected as [`SERVED_COLUMNS`].
fn served_at(r: &rusqlite::Row) -> rusqlite::Result<ServedRecord> {
    Ok(ServedRecord {
        id: id_at(r, 0)?,
        time: r.get(2)?,
        model: r.get(3)?,
        arm: r.get(4)?,
        shadow: r.get(5)?,
        key: r.get(6)?,
        features: r.get(7)?,
        label: r.get(8)?,
        scores: r.get(9)?,
        unseen: r.get(10)?,
        latency_us: r.get::<_, i64>(11)? as u64,
    })
}

fn id_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<PredictionId> {
    Ok(PredictionId {
        session: r.get(first)?,
        n: r.get(first + 1)?,
    })
}

impl PredictionLog {
    /// Opens (creating if absent) the log of the project whose state directory is `state`.
    pub fn open(state: &Path) -> Result<PredictionLog, StoreError> {
        let conn = Connection::open(state.join(LOG_FILE))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(PredictionLog { conn })
    }

    /// Starts a server session, committed before the first request is answered.
    pub fn start_session(
        &mut self,
        time: &str,
        champion: &str,
        challenger: Option<&str>,
        mode: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (started_at, champion, challenger, mode) VALUES (?1, ?2, ?3, ?4)",
            params![time, champion, challenger, mode],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Appends a batch in one transaction: all of it or none of it.
    pub fn append(&mut self, batch: &LogBatch) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut served = tx.prepare_cached(
                "INSERT INTO served (session, n, time, model, arm, shadow, key, features, label,
                 scores, unseen, latency_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for r in &batch.served {
                served.execute(params![
                    r.id.session,
                    r.id.n,
                    r.time,
                    r.model,
                    r.arm,
                    r.shadow,
                    r.key,
                    r.features,
                    r.label,
                    r.scores,
                    r.unseen,
                    r.latency_us as i64
                ])?;
            }
            let mut feedback = tx.prepare_cached(
                "INSERT INTO feedback (session, n, label, time) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, label, time) in &batch.feedback {
                feedback.execute(params![id.session, id.n, label, time])?;
            }
            let mut errors = tx
                .prepare_cached("INSERT INTO errors (time, status, message) VALUES (?1, ?2, ?3)")?;
            for e in &batch.errors {
                errors.execute(params![e.time, e.status, e.message])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Served predictions at or after `since` (RFC 3339 text, compared as text), in order. A
    /// scan: an index on time would cost every insert at serving rate, for a query run by hand.
    pub fn served(&self, since: Option<&str>) -> Result<Vec<ServedRecord>, StoreError> {
        let mut out = Vec::new();
        self.served_each(since, |r| out.push(r))?;
        Ok(out)
    }

    /// Hands each served prediction at or after `since` to `f` as it is read, in id order (an
    /// answer, then its shadow row): for reports over more rows than memory holds.
    pub fn served_each(
        &self,
        since: Option<&str>,
        mut f: impl FnMut(ServedRecord),
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SERVED_COLUMNS} FROM served WHERE time >= ?1 ORDER BY session, n, shadow"
        ))?;
        let mut rows = stmt.query([since.unwrap_or("")])?;
        while let Some(r) = rows.next()? {
            f(served_at(r)?);
        }
        Ok(())
    }

    /// The answer given under prediction `id` (not its shadow row), if it is in the log.
    pub fn answer(&self, id: PredictionId) -> Result<Option<ServedRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SERVED_COLUMNS} FROM served WHERE session = ?1 AND n = ?2 AND shadow = 0"
        ))?;
        let mut rows = stmt.query([id.session, id.n])?;
        Ok(match rows.next()? {
            Some(r) => Some(served_at(r)?),
            None => None,
        })
    }

    /// Feedback in arrival order, after the feedback numbered `after` (0 for all).
    pub fn feedback(&self, after: i64) -> Result<Vec<FeedbackRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, session, n, label, time FROM feedback WHERE seq > ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([after], |r| {
            Ok(FeedbackRecord {
                seq: r.get(0)?,
                id: id_at(r, 1)?,
                label: r.get(3)?,
                time: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Errors returned at or after `since`.
    pub fn errors(&self, since: Option<&str>) -> Result<Vec<ErrorRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT time, status, message FROM errors WHERE time >= ?1 ORDER BY seq")?;
        let rows = stmt.query_map([since.unwrap_or("")], |r| {
            Ok(ErrorRecord {
                time: r.get(0)?,
                status: r.get::<_, i64>(1)? as u16,
                message: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(n: i64) -> ServedRecord {
        ServedRecord {
            id: PredictionId { session: 1, n },
            time: format!("2026-01-01T00:00:{n:02}Z"),
            model: "m".into(),
            arm: "champion".into(),
            shadow: false,
            key: None,
            features: "{}".into(),
            label: "a".into(),
            scores: "[1.0]".into(),
            unseen: None,
            latency_us: 5,
        }
    }

    #[test]
    fn batches_append_whole_and_history_cannot_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        assert_eq!(log.start_session("t", "run", None, None).unwrap(), 1);
        let batch = LogBatch {
            served: (0..3).map(served).collect(),
            ..LogBatch::default()
        };
        log.append(&batch).unwrap();
        // A batch with a duplicate id fails as a whole: nothing of it is kept.
        let bad = LogBatch {
            served: vec![served(3), served(0)],
            ..LogBatch::default()
        };
        assert!(log.append(&bad).is_err());
        let rows = log.served(None).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].id, PredictionId { session: 1, n: 2 });
        assert_eq!(log.served(Some("2026-01-01T00:00:02Z")).unwrap().len(), 1);
        assert!(log.conn.execute("DELETE FROM served", []).is_err());
        drop(log);
        let mut again = PredictionLog::open(dir.path()).unwrap();
        assert_eq!(again.served(None).unwrap().len(), 3);
        assert_eq!(again.start_session("t", "run", None, None).unwrap(), 2);
    }

    #[test]
    fn prediction_ids_round_trip() {
        let id = PredictionId {
            session: 12,
            n: 345,
        };
        assert_eq!(PredictionId::parse(&id.to_string()), Some(id));
        assert_eq!(PredictionId::parse("12"), None);
        assert_eq!(PredictionId::parse("a-1"), None);
    }
}
