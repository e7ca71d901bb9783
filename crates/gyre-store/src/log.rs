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
//!
//! Storage: a batch's served predictions are one row of `served_batches`, their records encoded
//! as JSON arrays one after another and compressed with zstd (the request rows of one model
//! repeat their field names, so a batch shrinks by an order of magnitude; one insert per batch
//! instead of one per prediction). The row keeps the batch's session, its lowest and highest
//! request numbers and its earliest and latest times, so a lookup by id or time decodes only the
//! batches that can hold it. Logs written before this format keep their `served` table, read
//! as before; new predictions are never written there.

use crate::StoreError;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::value::RawValue;
use std::path::Path;

const LOG_FILE: &str = "log.db";

/// The log's layout version (`PRAGMA user_version`): 2 added `served_batches`.
const LOG_VERSION: i64 = 2;
/// The encoding of `served_batches.data` written by this gyre: 3 adds to each record the
/// number of the first prediction of its request, so latency (one figure per request) is
/// counted once per request, not once per row. 2, still read, keeps the JSON fields (the row,
/// the scores, the unseen fields) as JSON text inside the record; 1, still read, kept them as
/// JSON strings, which cost the writer an escaping pass and zstd longer input for the same data.
const BATCH_FORMAT: i64 = 3;
/// Format 2: as 3 without the request's first number (each record reads as its own request).
const BATCH_FORMAT_NO_REQUEST: i64 = 2;
/// The first batch format, read but no longer written.
const BATCH_FORMAT_STRINGS: i64 = 1;
/// zstd level for batches: the fastest, since the writer shares the cores with the requests.
const BATCH_LEVEL: i32 = 1;

/// A served prediction as the server holds it, borrowed: [`EncodedRecord::new`] writes it in
/// its batch form without copying its fields first.
pub struct Served<'a, S: Serialize, U: Serialize> {
    pub id: PredictionId,
    pub shadow: bool,
    /// RFC 3339.
    pub time: &'a str,
    pub model: &'a str,
    pub arm: &'a str,
    pub key: Option<&'a str>,
    /// The request row's JSON text, as sent.
    pub features: &'a RawValue,
    pub label: &'a str,
    /// Written as JSON: a list of numbers.
    pub scores: &'a S,
    /// Written as JSON: a list of field names.
    pub unseen: Option<&'a U>,
    /// The request's time in the handler: one figure shared by the request's rows.
    pub latency_us: u64,
    /// The number (`N` of `SESSION-N`) of the request's first prediction.
    pub request: i64,
}

/// One served record in its batch form (format 3): the JSON array `[n, shadow, time, model,
/// arm, key, features, label, scores, unseen, latency_us, request]` (the session is the batch's), with
/// the JSON fields as JSON. Encoded by the request that served it, into one buffer: the
/// record's fields are never copied into strings of their own, and the log's writer only
/// concatenates and compresses.
#[derive(Clone, Debug)]
pub struct EncodedRecord {
    pub id: PredictionId,
    pub shadow: bool,
    /// Where the time's text lies in `json`, when it needed no escaping (always, for RFC
    /// 3339); else the time itself.
    time: Result<std::ops::Range<usize>, String>,
    json: Vec<u8>,
}

impl EncodedRecord {
    pub fn new<S: Serialize, U: Serialize>(r: &Served<'_, S, U>) -> EncodedRecord {
        fn put<T: Serialize + ?Sized>(json: &mut Vec<u8>, v: &T) {
            // Writing these types into a Vec cannot fail (maps with non-string keys can, and
            // none is written here).
            serde_json::to_writer(&mut *json, v).expect("a served field encodes");
            json.push(b',');
        }
        let mut json = Vec::with_capacity(r.features.get().len() + 160);
        json.push(b'[');
        put(&mut json, &r.id.n);
        put(&mut json, &r.shadow);
        // The time's text between its quotes, kept by position when it was written unescaped.
        let at = json.len() + 1;
        put(&mut json, r.time);
        let time = if json[at..json.len() - 2] == *r.time.as_bytes() {
            Ok(at..at + r.time.len())
        } else {
            Err(r.time.to_string())
        };
        put(&mut json, r.model);
        put(&mut json, r.arm);
        put(&mut json, &r.key);
        put(&mut json, r.features);
        put(&mut json, r.label);
        put(&mut json, r.scores);
        put(&mut json, &r.unseen);
        put(&mut json, &r.latency_us);
        serde_json::to_writer(&mut json, &r.request).expect("a number encodes");
        json.push(b']');
        EncodedRecord {
            id: r.id,
            shadow: r.shadow,
            time,
            json,
        }
    }

    fn time(&self) -> &str {
        match &self.time {
            Ok(range) => std::str::from_utf8(&self.json[range.clone()]).expect("copied from a str"),
            Err(time) => time,
        }
    }
}

#[cfg(test)]
impl ServedRecord {
    /// This record in its batch form (the server encodes from what it holds, `Served`).
    fn encode(&self) -> EncodedRecord {
        EncodedRecord::new(&Served {
            id: self.id,
            shadow: self.shadow,
            time: &self.time,
            model: &self.model,
            arm: &self.arm,
            key: self.key.as_deref(),
            features: &self.features,
            label: &self.label,
            scores: &self.scores,
            unseen: self.unseen.as_ref(),
            latency_us: self.latency_us,
            request: self.request,
        })
    }
}

/// A record of format 3.
#[derive(serde::Deserialize)]
struct RecordIn(
    i64,
    bool,
    String,
    String,
    String,
    Option<String>,
    Box<RawValue>,
    String,
    Box<RawValue>,
    Option<Box<RawValue>>,
    u64,
    i64,
);

/// A record of format 2: without its request's first number.
#[derive(serde::Deserialize)]
struct RecordInNoRequest(
    i64,
    bool,
    String,
    String,
    String,
    Option<String>,
    Box<RawValue>,
    String,
    Box<RawValue>,
    Option<Box<RawValue>>,
    u64,
);

/// A record of format 1: the JSON fields as strings holding JSON text.
#[derive(serde::Deserialize)]
struct RecordInStrings(
    i64,
    bool,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    u64,
);

impl RecordInNoRequest {
    /// Each record of the older formats reads as a request of its own.
    fn into_record(self) -> RecordIn {
        let RecordInNoRequest(
            n,
            shadow,
            time,
            model,
            arm,
            key,
            features,
            label,
            scores,
            unseen,
            us,
        ) = self;
        RecordIn(
            n, shadow, time, model, arm, key, features, label, scores, unseen, us, n,
        )
    }
}

impl RecordInStrings {
    fn into_record(self) -> Result<RecordIn, serde_json::Error> {
        let RecordInStrings(n, shadow, time, model, arm, key, features, label, scores, unseen, us) =
            self;
        Ok(RecordInNoRequest(
            n,
            shadow,
            time,
            model,
            arm,
            key,
            RawValue::from_string(features)?,
            label,
            RawValue::from_string(scores)?,
            unseen.map(RawValue::from_string).transpose()?,
            us,
        )
        .into_record())
    }
}

/// Largest decompressed batch read back (4,096 records of up to 256 KiB each): a damaged frame
/// header cannot make a read allocate more.
const BATCH_DECODED_MAX: u64 = 1 << 30;

/// The batch compressor: zstd at [`BATCH_LEVEL`] with a checksum of the content in every frame,
/// so a damaged batch fails to read instead of decoding into other values.
fn batch_compressor() -> Result<zstd::bulk::Compressor<'static>, StoreError> {
    let fail = |e: std::io::Error| StoreError::Corrupt(format!("zstd: {e}"));
    let mut c = zstd::bulk::Compressor::new(BATCH_LEVEL).map_err(fail)?;
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(fail)?;
    Ok(c)
}

/// A batch's data: its records (all of one session) one after another, compressed.
fn encode_batch(
    compressor: &mut zstd::bulk::Compressor<'static>,
    records: &[&EncodedRecord],
) -> Result<Vec<u8>, StoreError> {
    let mut json = Vec::with_capacity(records.iter().map(|r| r.json.len()).sum());
    for r in records {
        json.extend_from_slice(&r.json);
    }
    compressor
        .compress(&json)
        .map_err(|e| StoreError::Corrupt(format!("a log batch does not compress: {e}")))
}

/// The records of one stored batch (`seq` names it in errors).
fn decode_batch(
    seq: i64,
    session: i64,
    format: i64,
    records: i64,
    data: &[u8],
) -> Result<Vec<ServedRecord>, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("prediction log batch {seq}: {what}"));
    if !(BATCH_FORMAT_STRINGS..=BATCH_FORMAT).contains(&format) {
        return Err(corrupt(format!(
            "format {format} is not one this gyre reads (it reads {BATCH_FORMAT_STRINGS} to \
             {BATCH_FORMAT}); a newer gyre wrote it"
        )));
    }
    // The output buffer is the size the frame header states, refused past a bound, so a
    // damaged header cannot make the read allocate without limit; the checksum catches the rest.
    let size = match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(n)) if n <= BATCH_DECODED_MAX => n as usize,
        Ok(Some(n)) => return Err(corrupt(format!("claims {n} bytes decompressed"))),
        Ok(None) | Err(_) => return Err(corrupt("no readable zstd frame header".into())),
    };
    let json = zstd::bulk::decompress(data, size).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::new();
    let records_of = serde_json::Deserializer::from_slice(&json);
    let decoded: Box<dyn Iterator<Item = serde_json::Result<RecordIn>>> = match format {
        BATCH_FORMAT_STRINGS => Box::new(
            records_of
                .into_iter::<RecordInStrings>()
                .map(|r| r.and_then(RecordInStrings::into_record)),
        ),
        BATCH_FORMAT_NO_REQUEST => Box::new(
            records_of
                .into_iter::<RecordInNoRequest>()
                .map(|r| r.map(RecordInNoRequest::into_record)),
        ),
        _ => Box::new(records_of.into_iter::<RecordIn>()),
    };
    for r in decoded {
        let RecordIn(
            n,
            shadow,
            time,
            model,
            arm,
            key,
            features,
            label,
            scores,
            unseen,
            latency_us,
            request,
        ) = r.map_err(|e| corrupt(e.to_string()))?;
        out.push(ServedRecord {
            id: PredictionId { session, n },
            time,
            model,
            arm,
            shadow,
            key,
            features,
            label,
            scores,
            unseen,
            latency_us,
            request,
        });
    }
    if out.len() as i64 != records {
        return Err(corrupt(format!(
            "{} records where {records} were written",
            out.len()
        )));
    }
    Ok(out)
}

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
CREATE TABLE IF NOT EXISTS served_batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL,
    first_n INTEGER NOT NULL,
    last_n INTEGER NOT NULL,
    records INTEGER NOT NULL,
    first_time TEXT NOT NULL,
    last_time TEXT NOT NULL,
    format INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS served_batches_n ON served_batches(session, first_n, last_n);
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL,
    n INTEGER NOT NULL,
    label TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_id ON feedback(session, n);
CREATE TABLE IF NOT EXISTS shipped (
    source TEXT PRIMARY KEY,
    sessions INTEGER NOT NULL,
    served INTEGER NOT NULL,
    feedback INTEGER NOT NULL,
    errors INTEGER NOT NULL
);
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
CREATE TRIGGER IF NOT EXISTS served_batches_append_only_u BEFORE UPDATE ON served_batches
    BEGIN SELECT RAISE(ABORT, 'the prediction log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS served_batches_append_only_d BEFORE DELETE ON served_batches
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
    pub features: Box<RawValue>,
    pub label: String,
    /// The scores as a JSON array.
    pub scores: Box<RawValue>,
    /// Unseen categorical fields as a JSON array, when any.
    pub unseen: Option<Box<RawValue>>,
    /// The request's time in the handler, shared by its rows.
    pub latency_us: u64,
    /// The number of the request's first prediction: a record with `id.n == request` stands for
    /// its request (records of older logs each stand for one).
    pub request: i64,
}

/// A served record ordered by id, answer before its shadow row.
struct InIdOrder(ServedRecord);

impl InIdOrder {
    fn key(&self) -> (PredictionId, bool) {
        (self.0.id, self.0.shadow)
    }
}

impl PartialEq for InIdOrder {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for InIdOrder {}

impl PartialOrd for InIdOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InIdOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
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
    pub served: Vec<EncodedRecord>,
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
    pub(crate) conn: Connection,
    compressor: zstd::bulk::Compressor<'static>,
}

/// The columns of a `served` row, in the order [`served_at`] reads them.
const SERVED_COLUMNS: &str =
    "session, n, time, model, arm, shadow, key, features, label, scores, unseen, latency_us";

/// A `served` row selected as [`SERVED_COLUMNS`].
fn served_at(r: &rusqlite::Row) -> rusqlite::Result<ServedRecord> {
    // JSON text, checked: the column is TEXT, not known to hold JSON.
    let json = |i: usize, text: String| -> rusqlite::Result<Box<RawValue>> {
        RawValue::from_string(text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    Ok(ServedRecord {
        id: id_at(r, 0)?,
        time: r.get(2)?,
        model: r.get(3)?,
        arm: r.get(4)?,
        shadow: r.get(5)?,
        key: r.get(6)?,
        features: json(7, r.get(7)?)?,
        label: r.get(8)?,
        scores: json(9, r.get(9)?)?,
        unseen: match r.get::<_, Option<String>>(10)? {
            Some(text) => Some(json(10, text)?),
            None => None,
        },
        latency_us: r.get::<_, i64>(11)? as u64,
        request: r.get(1)?,
    })
}

/// The prediction id in columns `first` (session) and `first + 1` (number) of a result row.
fn id_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<PredictionId> {
    Ok(PredictionId {
        session: r.get(first)?,
        n: r.get(first + 1)?,
    })
}

impl PredictionLog {
    /// Opens (creating if absent) the log of the project whose state directory is `state`.
    pub fn open(state: &Path) -> Result<PredictionLog, StoreError> {
        Self::open_file(&state.join(LOG_FILE))
    }

    /// Opens (creating if absent) a log file by its path (a clone's copy of the team's log).
    pub fn open_file(path: &Path) -> Result<PredictionLog, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > LOG_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                known: LOG_VERSION,
            });
        }
        conn.execute_batch(SCHEMA)?;
        if found < LOG_VERSION {
            conn.pragma_update(None, "user_version", LOG_VERSION)?;
        }
        Ok(PredictionLog {
            conn,
            compressor: batch_compressor()?,
        })
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

    /// Appends a batch in one transaction: all of it or none of it. Its served records become
    /// one `served_batches` row per session; a batch that repeats a prediction id (an answer, or
    /// a shadow row, twice) is refused whole.
    pub fn append(&mut self, batch: &LogBatch) -> Result<(), StoreError> {
        let mut sessions: std::collections::BTreeMap<i64, Vec<&EncodedRecord>> = Default::default();
        for r in &batch.served {
            sessions.entry(r.id.session).or_default().push(r);
        }
        // Checked and encoded before the transaction, which then only writes.
        let mut rows = Vec::with_capacity(sessions.len());
        for (session, records) in &sessions {
            let mut ids: Vec<(i64, bool)> = records.iter().map(|r| (r.id.n, r.shadow)).collect();
            ids.sort_unstable();
            if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
                return Err(StoreError::Corrupt(format!(
                    "a log batch repeats prediction {session}-{}{}",
                    w[0].0,
                    if w[0].1 { " (shadow)" } else { "" }
                )));
            }
            let times = records.iter().map(|r| r.time());
            rows.push((
                *session,
                ids[0].0,
                ids[ids.len() - 1].0,
                records.len() as i64,
                times.clone().min().unwrap_or_default(),
                times.max().unwrap_or_default(),
                encode_batch(&mut self.compressor, records)?,
            ));
        }
        let tx = self.conn.transaction()?;
        {
            let mut served = tx.prepare_cached(
                "INSERT INTO served_batches (session, first_n, last_n, records, first_time,
                 last_time, format, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (session, first, last, records, first_time, last_time, data) in &rows {
                served.execute(params![
                    session,
                    first,
                    last,
                    records,
                    first_time,
                    last_time,
                    BATCH_FORMAT,
                    data
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
    /// answer, then its shadow row): for reports over more rows than memory holds. Rows of the
    /// `served` table of older logs come first: their sessions are the older ones, unless a gyre
    /// from before batches served again after this one (it would write rows that come first
    /// here, out of session order, and would not see the batches at all).
    pub fn served_each(
        &self,
        since: Option<&str>,
        mut f: impl FnMut(ServedRecord),
    ) -> Result<(), StoreError> {
        let since = since.unwrap_or("");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {SERVED_COLUMNS} FROM served WHERE time >= ?1 ORDER BY session, n, shadow"
        ))?;
        let mut rows = stmt.query([since])?;
        while let Some(r) = rows.next()? {
            f(served_at(r)?);
        }
        // Batches by their lowest number. Requests finish out of order, so a batch can hold a
        // number below the highest of an earlier batch: records wait in a heap until no batch
        // still to read can hold a smaller id (every later batch starts at or above this one).
        let mut stmt = self.conn.prepare(
            "SELECT seq, session, first_n, records, format, data FROM served_batches
             WHERE last_time >= ?1 ORDER BY session, first_n",
        )?;
        let mut rows = stmt.query([since])?;
        let mut waiting = std::collections::BinaryHeap::new();
        while let Some(r) = rows.next()? {
            let (seq, session, first_n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            while let Some(std::cmp::Reverse(InIdOrder(top))) = waiting.peek()
                && (top.id.session, top.id.n) < (session, first_n)
            {
                let std::cmp::Reverse(InIdOrder(top)) = waiting.pop().expect("peeked");
                f(top);
            }
            let data = r.get_ref(5)?.as_blob().map_err(rusqlite::Error::from)?;
            for rec in decode_batch(seq, session, r.get(4)?, r.get(3)?, data)? {
                if rec.time.as_str() >= since {
                    waiting.push(std::cmp::Reverse(InIdOrder(rec)));
                }
            }
        }
        while let Some(std::cmp::Reverse(InIdOrder(rec))) = waiting.pop() {
            f(rec);
        }
        Ok(())
    }

    /// The answers given under `ids` (not their shadow rows) that are in the log, by id. Reads
    /// the batches' id ranges first and decodes only the batches that can hold a wanted id.
    pub fn answers(
        &self,
        ids: &[PredictionId],
    ) -> Result<std::collections::HashMap<PredictionId, ServedRecord>, StoreError> {
        let mut out = std::collections::HashMap::new();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SERVED_COLUMNS} FROM served WHERE session = ?1 AND n = ?2 AND shadow = 0"
        ))?;
        for id in ids {
            if let Some(r) = stmt.query([id.session, id.n])?.next()? {
                out.insert(*id, served_at(r)?);
            }
        }
        let wanted: std::collections::BTreeSet<PredictionId> = ids
            .iter()
            .filter(|id| !out.contains_key(id))
            .copied()
            .collect();
        if wanted.is_empty() {
            return Ok(out);
        }
        let mut holding = Vec::new();
        // From the index alone (it covers these columns): no page of batch data is read.
        let mut ranges = self.conn.prepare(
            "SELECT seq, session, first_n, last_n FROM served_batches INDEXED BY served_batches_n",
        )?;
        let mut rows = ranges.query([])?;
        while let Some(r) = rows.next()? {
            let (session, first, last): (i64, i64, i64) = (r.get(1)?, r.get(2)?, r.get(3)?);
            if first > last {
                return Err(StoreError::Corrupt(format!(
                    "prediction log batch {}: numbers {first} to {last}",
                    r.get::<_, i64>(0)?
                )));
            }
            let range = PredictionId { session, n: first }..=PredictionId { session, n: last };
            if wanted.range(range).next().is_some() {
                holding.push(r.get::<_, i64>(0)?);
            }
        }
        let mut batch = self.conn.prepare_cached(
            "SELECT session, format, records, data FROM served_batches WHERE seq = ?1",
        )?;
        for seq in holding {
            let mut rows = batch.query([seq])?;
            let Some(r) = rows.next()? else { continue };
            let data = r.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
            for rec in decode_batch(seq, r.get(0)?, r.get(1)?, r.get(2)?, data)? {
                if !rec.shadow && wanted.contains(&rec.id) {
                    out.insert(rec.id, rec);
                }
            }
        }
        Ok(out)
    }

    /// Per session, one more than the highest prediction number committed: every id below it
    /// was served (ids are taken in order and a batch commits whole). Sessions that served
    /// nothing are absent.
    pub fn served_counts(&self) -> Result<std::collections::BTreeMap<i64, i64>, StoreError> {
        let mut counts = std::collections::BTreeMap::new();
        for sql in [
            "SELECT session, MAX(last_n) FROM served_batches GROUP BY session",
            "SELECT session, MAX(n) FROM served GROUP BY session",
        ] {
            let mut stmt = self.conn.prepare(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let (session, last): (i64, i64) = (r.get(0)?, r.get(1)?);
                let c = counts.entry(session).or_insert(0);
                *c = (*c).max(last + 1);
            }
        }
        Ok(counts)
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

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    fn served(n: i64) -> ServedRecord {
        ServedRecord {
            id: PredictionId { session: 1, n },
            time: format!("2026-01-01T00:00:{n:02}Z"),
            model: "m".into(),
            arm: "champion".into(),
            shadow: false,
            key: None,
            features: raw("{}"),
            label: "a".into(),
            scores: raw("[1.0]"),
            unseen: None,
            latency_us: 5,
            request: n,
        }
    }

    #[test]
    fn batches_append_whole_and_history_cannot_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        assert_eq!(log.start_session("t", "run", None, None).unwrap(), 1);
        let batch = LogBatch {
            served: (0..3).map(|n| served(n).encode()).collect(),
            ..LogBatch::default()
        };
        log.append(&batch).unwrap();
        // A batch that repeats an id fails as a whole: nothing of it is kept.
        let bad = LogBatch {
            served: [served(3), served(4), served(3)]
                .iter()
                .map(ServedRecord::encode)
                .collect(),
            ..LogBatch::default()
        };
        let err = log.append(&bad).unwrap_err().to_string();
        assert!(err.contains("repeats prediction 1-3"), "{err}");
        let rows = log.served(None).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].id, PredictionId { session: 1, n: 2 });
        assert_eq!(log.served(Some("2026-01-01T00:00:02Z")).unwrap().len(), 1);
        assert!(log.conn.execute("DELETE FROM served_batches", []).is_err());
        assert!(
            log.conn
                .execute("UPDATE served_batches SET records = 0", [])
                .is_err()
        );
        drop(log);
        let mut again = PredictionLog::open(dir.path()).unwrap();
        assert_eq!(again.served(None).unwrap().len(), 3);
        assert_eq!(again.start_session("t", "run", None, None).unwrap(), 2);
    }

    fn append(log: &mut PredictionLog, served: Vec<ServedRecord>) {
        log.append(&LogBatch {
            served: served.iter().map(ServedRecord::encode).collect(),
            ..LogBatch::default()
        })
        .unwrap();
    }

    fn shadow(n: i64) -> ServedRecord {
        ServedRecord {
            shadow: true,
            arm: "challenger".into(),
            ..served(n)
        }
    }

    fn ids(records: &[ServedRecord]) -> Vec<(i64, i64, bool)> {
        records
            .iter()
            .map(|r| (r.id.session, r.id.n, r.shadow))
            .collect()
    }

    #[test]
    fn records_come_back_in_id_order_across_batches_that_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        log.start_session("t", "run", None, None).unwrap();
        // Requests finish out of order: 2 lands after 3 and 4; the shadow of 5 is in one batch
        // and its answer in the next; a second session follows.
        let batches = [
            vec![served(0), served(1), served(3)],
            vec![served(4), served(2), shadow(5)],
            vec![served(5), served(6)],
        ];
        for b in &batches {
            append(&mut log, b.clone());
        }
        let other = ServedRecord {
            id: PredictionId { session: 2, n: 0 },
            ..served(9)
        };
        append(&mut log, vec![other]);
        let all = log.served(None).unwrap();
        let mut want: Vec<(i64, i64, bool)> = (0..7).map(|n| (1, n, false)).collect();
        want.insert(6, (1, 5, true));
        want.push((2, 0, false));
        assert_eq!(ids(&all), want);
        assert_eq!(all[6].arm, "challenger");
        // Every field survives the batch encoding.
        assert_eq!(all[0].features.get(), "{}");
        assert_eq!(all[0].scores.get(), "[1.0]");
        assert_eq!(all[0].latency_us, 5);
        // Times filter inside a batch too (record n has second n).
        let late = log.served(Some("2026-01-01T00:00:04Z")).unwrap();
        assert_eq!(
            ids(&late),
            vec![
                (1, 4, false),
                (1, 5, false),
                (1, 5, true),
                (1, 6, false),
                (2, 0, false)
            ]
        );
        // Answers by id: shadow rows are not answers; unknown ids are absent.
        let wanted = [
            PredictionId { session: 1, n: 2 },
            PredictionId { session: 1, n: 5 },
            PredictionId { session: 2, n: 0 },
            PredictionId { session: 1, n: 99 },
        ];
        let found = log.answers(&wanted).unwrap();
        assert_eq!(found.len(), 3);
        assert!(!found[&wanted[1]].shadow);
        assert_eq!(found[&wanted[2]].time, "2026-01-01T00:00:09Z");
    }

    #[test]
    fn a_log_written_row_by_row_before_batches_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        {
            // The layout of the first format: one `served` row per prediction, no version.
            let conn = Connection::open(dir.path().join(LOG_FILE)).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.pragma_update(None, "user_version", 0).unwrap();
            for n in [1, 0] {
                conn.execute(
                    &format!(
                        "INSERT INTO served ({SERVED_COLUMNS}) VALUES (1, ?1, ?2, 'm', 'champion', 0, NULL, '{{\"a\":1}}', 'yes', '[0.5]', NULL, 7)"
                    ),
                    params![n, format!("2026-01-01T00:00:0{n}Z")],
                )
                .unwrap();
            }
        }
        let mut log = PredictionLog::open(dir.path()).unwrap();
        let next = ServedRecord {
            id: PredictionId { session: 2, n: 0 },
            ..served(3)
        };
        append(&mut log, vec![next]);
        let all = log.served(None).unwrap();
        assert_eq!(ids(&all), vec![(1, 0, false), (1, 1, false), (2, 0, false)]);
        assert_eq!(all[1].features.get(), "{\"a\":1}");
        let found = log
            .answers(&[
                PredictionId { session: 1, n: 1 },
                PredictionId { session: 2, n: 0 },
            ])
            .unwrap();
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn every_field_survives_its_encoding_escapes_included() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        let odd = ServedRecord {
            time: "2026-01-01T00:00:03Z \"odd\" \\ \u{1}".into(),
            model: "m\"x".into(),
            arm: "challenger".into(),
            shadow: true,
            key: Some("k\\y".into()),
            features: raw(r#"{"a": "x\"y", "b": [1, null]}"#),
            label: ">50\"K".into(),
            scores: raw("[0.25,0.75]"),
            unseen: Some(raw(r#"["a","b"]"#)),
            latency_us: u64::MAX,
            request: 6,
            ..served(7)
        };
        // The escaped time still bounds its batch (the batch's earliest and latest time).
        append(&mut log, vec![served(6), odd.clone()]);
        let (first, last): (String, String) = log
            .conn
            .query_row(
                "SELECT first_time, last_time FROM served_batches",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (first.as_str(), last.as_str()),
            (
                "2026-01-01T00:00:03Z \"odd\" \\ \u{1}",
                "2026-01-01T00:00:06Z"
            )
        );
        let back = log.served(None).unwrap();
        let got = &back[1];
        assert_eq!(
            (
                &got.time, &got.model, &got.arm, got.shadow, &got.key, &got.label
            ),
            (&odd.time, &odd.model, &odd.arm, true, &odd.key, &odd.label)
        );
        assert_eq!(got.features.get(), odd.features.get());
        assert_eq!(got.scores.get(), "[0.25,0.75]");
        assert_eq!(got.unseen.as_ref().unwrap().get(), r#"["a","b"]"#);
        assert_eq!((got.id, got.latency_us, got.request), (odd.id, u64::MAX, 6));
    }

    #[test]
    fn a_batch_of_the_first_format_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        // Format 1 as the gyre before format 2 wrote it: the JSON fields as JSON strings.
        let records = concat!(
            r#"[0,false,"2026-01-01T00:00:00Z","m","champion",null,"{\"a\":\"x\\\"y\"}","yes","[0.25,0.75]","[\"a\"]",7]"#,
            r#"[1,true,"2026-01-01T00:00:01Z","c","challenger","k","{}","no","[1.0]",null,8]"#
        );
        let data = batch_compressor()
            .unwrap()
            .compress(records.as_bytes())
            .unwrap();
        log.conn
            .execute(
                "INSERT INTO served_batches (session, first_n, last_n, records, first_time,
                 last_time, format, data) VALUES (1, 0, 1, 2, '2026-01-01T00:00:00Z',
                 '2026-01-01T00:00:01Z', 1, ?1)",
                [&data],
            )
            .unwrap();
        append(&mut log, vec![served(2)]);
        let all = log.served(None).unwrap();
        assert_eq!(ids(&all), vec![(1, 0, false), (1, 1, true), (1, 2, false)]);
        assert_eq!(all[0].features.get(), r#"{"a":"x\"y"}"#);
        assert_eq!(all[0].scores.get(), "[0.25,0.75]");
        assert_eq!(all[0].unseen.as_ref().map(|u| u.get()), Some(r#"["a"]"#));
        assert_eq!((all[1].key.as_deref(), all[1].latency_us), (Some("k"), 8));
        assert!(all[1].unseen.is_none());
        // A format-1 string that is not JSON text names the batch.
        let bad = batch_compressor()
            .unwrap()
            .compress(br#"[3,false,"t","m","champion",null,"{not json","a","[1]",null,1]"#)
            .unwrap();
        log.conn
            .execute(
                "INSERT INTO served_batches (session, first_n, last_n, records, first_time,
                 last_time, format, data) VALUES (1, 3, 3, 1, 't', 't', 1, ?1)",
                [&bad],
            )
            .unwrap();
        let err = log.served(None).unwrap_err().to_string();
        assert!(err.contains("prediction log batch 3"), "{err}");
    }

    #[test]
    fn served_counts_name_what_each_session_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        assert!(log.served_counts().unwrap().is_empty());
        append(&mut log, vec![served(0), served(1), served(4)]);
        let other = ServedRecord {
            id: PredictionId { session: 3, n: 0 },
            ..served(0)
        };
        append(&mut log, vec![other]);
        let counts = log.served_counts().unwrap();
        assert_eq!(counts.into_iter().collect::<Vec<_>>(), vec![(1, 5), (3, 1)]);
    }

    /// Format 2 (before records named their request) reads each record as its own request.
    #[test]
    fn a_batch_of_the_second_format_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let log = PredictionLog::open(dir.path()).unwrap();
        let records = concat!(
            r#"[0,false,"2026-01-01T00:00:00Z","m","champion",null,{"a":1},"yes",[0.25,0.75],null,7]"#,
            r#"[1,false,"2026-01-01T00:00:00Z","m","champion",null,{"a":2},"no",[0.5,0.5],["a"],7]"#
        );
        let data = batch_compressor()
            .unwrap()
            .compress(records.as_bytes())
            .unwrap();
        log.conn
            .execute(
                "INSERT INTO served_batches (session, first_n, last_n, records, first_time,
                 last_time, format, data) VALUES (1, 0, 1, 2, '2026-01-01T00:00:00Z',
                 '2026-01-01T00:00:00Z', 2, ?1)",
                [&data],
            )
            .unwrap();
        let all = log.served(None).unwrap();
        assert_eq!(ids(&all), vec![(1, 0, false), (1, 1, false)]);
        assert_eq!((all[0].request, all[1].request), (0, 1));
        assert_eq!(all[1].features.get(), r#"{"a":2}"#);
        assert_eq!(all[1].unseen.as_ref().map(|u| u.get()), Some(r#"["a"]"#));
    }

    #[test]
    fn batches_are_compressed_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PredictionLog::open(dir.path()).unwrap();
        let rows: Vec<ServedRecord> = (0..1000)
            .map(|n| ServedRecord {
                features: raw(&format!(
                    "{{\"age\":{},\"workclass\":\"Private\",\"hours_per_week\":{}}}",
                    20 + n % 50,
                    n % 60
                )),
                ..served(n)
            })
            .collect();
        let raw: usize = rows
            .iter()
            .map(|r| r.features.get().len() + r.time.len() + 20)
            .sum();
        append(&mut log, rows);
        let stored: i64 = log
            .conn
            .query_row("SELECT length(data) FROM served_batches", [], |r| r.get(0))
            .unwrap();
        assert!(
            (stored as usize) * 5 < raw,
            "{stored} bytes stored for {raw} of records"
        );
        assert_eq!(log.served(None).unwrap().len(), 1000);
        // Damage the batch behind the append-only guard: reading names the batch, whether the
        // damage hits the content (the frame's checksum), the header's size or the whole frame.
        log.conn
            .execute_batch("DROP TRIGGER served_batches_append_only_u;")
            .unwrap();
        let good: Vec<u8> = log
            .conn
            .query_row("SELECT data FROM served_batches", [], |r| r.get(0))
            .unwrap();
        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x10;
        let huge = zstd::bulk::compress(&vec![b' '; 1 << 20], 1).unwrap();
        let mut claims_more = huge.clone();
        // The frame header's content size (a 4-byte field after magic and descriptor bytes
        // for this size) raised past the bound.
        claims_more[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        for (damaged, why) in [
            (flipped, ""),
            (claims_more, "claims 4294967295 bytes"),
            (vec![0, 1, 2, 3], "no readable zstd frame header"),
        ] {
            log.conn
                .execute("UPDATE served_batches SET data = ?1", [&damaged])
                .unwrap();
            let err = log.served(None).unwrap_err().to_string();
            assert!(
                err.contains("prediction log batch 1") && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn a_log_from_a_newer_gyre_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join(LOG_FILE)).unwrap();
        conn.pragma_update(None, "user_version", LOG_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = PredictionLog::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("newer gyre"), "{err}");
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
