//! Moving the prediction log between machines: a serving replica ships what it logged to the
//! team server, and a cloned project copies the team's log to read it (`gyre monitor`).
//!
//! Rows travel as they are stored (a served batch keeps its compressed records), after a
//! cursor: per table, the highest row number (`seq`) of the sender already received. The
//! receiver keeps each sender's cursor in `shipped`, moved in the same transaction as the rows
//! it appends, so a batch sent twice (the answer was lost, the replica restarted) is appended
//! once: nothing lost, nothing twice.
//!
//! Prediction ids stay unique across replicas because a replica's sessions are numbered by
//! the team server's log ([`PredictionLog::start_session_numbered`]).

use crate::{PredictionLog, StoreError};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// Per table, the highest row number received from one sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub sessions: i64,
    pub served: i64,
    pub feedback: i64,
    pub errors: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawSession {
    pub id: i64,
    pub started_at: String,
    pub champion: String,
    pub challenger: Option<String>,
    pub mode: Option<String>,
}

/// A served batch as stored, its data as hex (JSON carries no bytes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawBatch {
    pub seq: i64,
    pub session: i64,
    pub first_n: i64,
    pub last_n: i64,
    pub records: i64,
    pub first_time: String,
    pub last_time: String,
    pub format: i64,
    pub data: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawFeedback {
    pub seq: i64,
    pub session: i64,
    pub n: i64,
    pub label: String,
    pub time: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawError {
    pub seq: i64,
    pub time: String,
    pub status: i64,
    pub message: String,
}

/// Rows of a log after a cursor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RawLog {
    pub sessions: Vec<RawSession>,
    pub served: Vec<RawBatch>,
    pub feedback: Vec<RawFeedback>,
    pub errors: Vec<RawError>,
}

impl RawLog {
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.served.is_empty()
            && self.feedback.is_empty()
            && self.errors.is_empty()
    }

    /// The cursor after these rows (`from`'s, or further, where a table sent none).
    pub fn end(&self, from: LogCursor) -> LogCursor {
        let last = |ids: &mut dyn Iterator<Item = i64>, had: i64| ids.fold(had, i64::max);
        LogCursor {
            sessions: last(&mut self.sessions.iter().map(|r| r.id), from.sessions),
            served: last(&mut self.served.iter().map(|r| r.seq), from.served),
            feedback: last(&mut self.feedback.iter().map(|r| r.seq), from.feedback),
            errors: last(&mut self.errors.iter().map(|r| r.seq), from.errors),
        }
    }
}

/// What a log has received from `source` (a transaction reads it through its connection).
fn cursor_of(conn: &rusqlite::Connection, source: &str) -> Result<LogCursor, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT sessions, served, feedback, errors FROM shipped WHERE source = ?1",
    )?;
    let mut rows = st.query([source])?;
    Ok(match rows.next()? {
        Some(r) => LogCursor {
            sessions: r.get(0)?,
            served: r.get(1)?,
            feedback: r.get(2)?,
            errors: r.get(3)?,
        },
        None => LogCursor::default(),
    })
}

fn unhex(text: &str) -> Result<Vec<u8>, StoreError> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(StoreError::Invalid("a log batch's data is not hex".into()));
    }
    bytes
        .chunks_exact(2)
        .map(|p| match (digit(p[0]), digit(p[1])) {
            (Some(hi), Some(lo)) => Ok((hi << 4) | lo),
            _ => Err(StoreError::Invalid("a log batch's data is not hex".into())),
        })
        .collect()
}

impl PredictionLog {
    /// Starts a session with the number the team server gave it (a serving replica's).
    pub fn start_session_numbered(
        &mut self,
        id: i64,
        time: &str,
        champion: &str,
        challenger: Option<&str>,
        mode: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sessions (id, started_at, champion, challenger, mode) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, time, champion, challenger, mode],
        )?;
        Ok(())
    }

    /// Up to `limit` rows of each table after `after`, in order.
    pub fn raw_after(&self, after: LogCursor, limit: usize) -> Result<RawLog, StoreError> {
        let limit = limit as i64;
        let mut out = RawLog::default();
        let mut st = self.conn.prepare(
            "SELECT id, started_at, champion, challenger, mode FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        out.sessions = st
            .query_map(params![after.sessions, limit], |r| {
                Ok(RawSession {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    champion: r.get(2)?,
                    challenger: r.get(3)?,
                    mode: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT seq, session, first_n, last_n, records, first_time, last_time, format, data
             FROM served_batches WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        out.served = st
            .query_map(params![after.served, limit], |r| {
                let data: Vec<u8> = r.get(8)?;
                Ok(RawBatch {
                    seq: r.get(0)?,
                    session: r.get(1)?,
                    first_n: r.get(2)?,
                    last_n: r.get(3)?,
                    records: r.get(4)?,
                    first_time: r.get(5)?,
                    last_time: r.get(6)?,
                    format: r.get(7)?,
                    data: crate::hex(&data),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT seq, session, n, label, time FROM feedback WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        out.feedback = st
            .query_map(params![after.feedback, limit], |r| {
                Ok(RawFeedback {
                    seq: r.get(0)?,
                    session: r.get(1)?,
                    n: r.get(2)?,
                    label: r.get(3)?,
                    time: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT seq, time, status, message FROM errors WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        out.errors = st
            .query_map(params![after.errors, limit], |r| {
                Ok(RawError {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    status: r.get(2)?,
                    message: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(out)
    }

    /// Whether this log numbered the session.
    pub fn has_session(&self, id: i64) -> Result<bool, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM sessions WHERE id = ?1")?;
        Ok(st.query([id])?.next()?.is_some())
    }

    /// What this log has received from `source`.
    pub fn cursor(&self, source: &str) -> Result<LogCursor, StoreError> {
        cursor_of(&self.conn, source)
    }

    /// Appends the rows `source` sent that this log has not received yet, and moves its
    /// cursor, in one transaction. Sessions the log already holds (a replica's, numbered
    /// here) are not added again. Returns the cursor after.
    pub fn append_raw(&mut self, source: &str, raw: &RawLog) -> Result<LogCursor, StoreError> {
        let tx = self.conn.transaction()?;
        let had = cursor_of(&tx, source)?;
        for s in raw.sessions.iter().filter(|s| s.id > had.sessions) {
            tx.execute(
                "INSERT INTO sessions (id, started_at, champion, challenger, mode)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![s.id, s.started_at, s.champion, s.challenger, s.mode],
            )?;
        }
        for b in raw.served.iter().filter(|b| b.seq > had.served) {
            if b.first_n > b.last_n || b.records < 1 {
                return Err(StoreError::Invalid(format!(
                    "log batch {} of {source}: numbers {} to {} in {} records",
                    b.seq, b.first_n, b.last_n, b.records
                )));
            }
            tx.execute(
                "INSERT INTO served_batches (session, first_n, last_n, records, first_time,
                 last_time, format, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    b.session,
                    b.first_n,
                    b.last_n,
                    b.records,
                    b.first_time,
                    b.last_time,
                    b.format,
                    unhex(&b.data)?
                ],
            )?;
        }
        for f in raw.feedback.iter().filter(|f| f.seq > had.feedback) {
            tx.execute(
                "INSERT INTO feedback (session, n, label, time) VALUES (?1, ?2, ?3, ?4)",
                params![f.session, f.n, f.label, f.time],
            )?;
        }
        for e in raw.errors.iter().filter(|e| e.seq > had.errors) {
            tx.execute(
                "INSERT INTO errors (time, status, message) VALUES (?1, ?2, ?3)",
                params![e.time, e.status, e.message],
            )?;
        }
        let now = raw.end(had);
        tx.execute(
            "INSERT INTO shipped (source, sessions, served, feedback, errors) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (source) DO UPDATE SET sessions = ?2, served = ?3, feedback = ?4, errors = ?5",
            params![source, now.sessions, now.served, now.feedback, now.errors],
        )?;
        tx.commit()?;
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncodedRecord, LogBatch, PredictionId, Served};

    fn batch(session: i64, ns: std::ops::Range<i64>) -> LogBatch {
        let features = serde_json::value::RawValue::from_string("{\"x\":1}".into()).unwrap();
        LogBatch {
            served: ns
                .map(|n| {
                    EncodedRecord::new(&Served {
                        id: PredictionId { session, n },
                        shadow: false,
                        time: "2026-12-05T10:00:00.000Z",
                        model: "m",
                        arm: "champion",
                        key: None,
                        features: &features,
                        label: "a",
                        scores: &vec![0.5],
                        unseen: None::<&Vec<String>>,
                        latency_us: 10,
                        request: n,
                    })
                })
                .collect(),
            feedback: vec![(PredictionId { session, n: 0 }, "a".into(), "t".into())],
            errors: Vec::new(),
        }
    }

    #[test]
    fn hex_goes_there_and_back_and_refuses_what_is_not_hex() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&crate::hex(&bytes)).unwrap(), bytes);
        for bad in ["abc", "zz", "aé b", "éé", "0x"] {
            assert!(unhex(bad).is_err(), "{bad}");
        }
    }

    /// A replica's rows reach the server once however often they are sent, and two replicas'
    /// sessions (numbered by the server) never collide.
    #[test]
    fn shipping_twice_appends_once() {
        let (a, b, s) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let mut server = PredictionLog::open(s.path()).unwrap();
        let mut ra = PredictionLog::open(a.path()).unwrap();
        let mut rb = PredictionLog::open(b.path()).unwrap();
        let sa = server.start_session("t", "run-a", None, None).unwrap();
        let sb = server.start_session("t", "run-a", None, None).unwrap();
        ra.start_session_numbered(sa, "t", "run-a", None, None)
            .unwrap();
        rb.start_session_numbered(sb, "t", "run-a", None, None)
            .unwrap();
        ra.append(&batch(sa, 0..3)).unwrap();
        rb.append(&batch(sb, 0..2)).unwrap();
        let raw_a = ra.raw_after(LogCursor::default(), 100).unwrap();
        let c1 = server.append_raw("a", &raw_a).unwrap();
        let c2 = server.append_raw("a", &raw_a).unwrap();
        assert_eq!(c1, c2);
        server
            .append_raw("b", &rb.raw_after(LogCursor::default(), 100).unwrap())
            .unwrap();
        ra.append(&batch(sa, 3..5)).unwrap();
        let more = ra.raw_after(server.cursor("a").unwrap(), 100).unwrap();
        assert_eq!(more.served.len(), 1);
        server.append_raw("a", &more).unwrap();
        let served = server.served(None).unwrap();
        let mut ids: Vec<String> = served.iter().map(|r| r.id.to_string()).collect();
        ids.sort();
        let mut want: Vec<String> = (0..5)
            .map(|n| format!("{sa}-{n}"))
            .chain((0..2).map(|n| format!("{sb}-{n}")))
            .collect();
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(server.feedback(0).unwrap().len(), 3);
    }
}
