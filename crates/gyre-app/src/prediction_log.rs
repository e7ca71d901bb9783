//! The server's side of the prediction log: requests hand their records to a writer thread, which
//! commits them in batches (gyre-store's `PredictionLog`, one transaction a batch).
//!
//! The bound, as documented for users: a batch is committed when it holds [`BATCH_MAX`] records
//! or its oldest record has waited [`FLUSH_EVERY`], whichever comes first, and on shutdown. A
//! crash (even `kill -9`, even of the machine) loses the records not yet committed: normally the
//! last [`FLUSH_EVERY`] of traffic; if the disk falls behind, at most [`QUEUE_MAX`] waiting
//! records plus the batch being written, because then a request waits for room in the queue
//! (back-pressure: the log stays complete and memory stays bounded). Committed batches are never
//! corrupted. `flushed_through` tells a client which prediction ids are safe.

use crate::{App, AppError, now};
use gyre_store::{EncodedRecord, ErrorRecord, LogBatch, PredictionId, PredictionLog};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a record waits before its batch is committed.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// The most records in one batch.
pub const BATCH_MAX: usize = 4096;
/// The most records waiting for the writer; a request that finds the queue full waits.
pub const QUEUE_MAX: usize = 65_536;

enum Record {
    Served(EncodedRecord),
    Feedback(PredictionId, String, String),
    Error(ErrorRecord),
    /// Commit what is pending and stop.
    Finish,
}

/// The handle the server's request handlers share (behind the server's `Arc`).
pub struct LogWriter {
    /// Shared by the request handlers without a lock.
    tx: SyncSender<Record>,
    /// Records handed to the writer and not yet committed (or failed), for `/metrics`.
    pending: Arc<AtomicI64>,
    pub session: i64,
    /// What earlier sessions served: per session, one more than its highest committed number.
    earlier: std::collections::BTreeMap<i64, i64>,
    /// A serving replica's: feedback may name a prediction another replica served (behind one
    /// load balancer, feedback comes to any of them). Its session is checked when the log
    /// reaches the team server, which numbered every replica's sessions.
    other_replicas: bool,
    next: AtomicI64,
    /// The highest request number of this session whose records are all committed, plus one.
    flushed: Arc<AtomicI64>,
    failures: Arc<AtomicU64>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl App {
    /// Opens the prediction log, starts a new session in it (committed before returning) and the
    /// writer thread.
    pub fn prediction_log_writer(
        &mut self,
        champion: &str,
        challenger: Option<&str>,
        mode: Option<&str>,
    ) -> Result<LogWriter, AppError> {
        let mut log = self.store.prediction_log()?;
        let earlier = log.served_counts()?;
        let session = self.start_log_session(&mut log, champion, challenger, mode)?;
        let other_replicas = self.server_url().is_some();
        let (tx, rx) = sync_channel(QUEUE_MAX);
        let flushed = Arc::new(AtomicI64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let pending = Arc::new(AtomicI64::new(0));
        let thread = {
            let (flushed, failures, pending) = (flushed.clone(), failures.clone(), pending.clone());
            std::thread::Builder::new()
                .name("gyre-log".into())
                .spawn(move || write_loop(log, rx, &flushed, &failures, &pending))
                .map_err(|e| AppError::invalid(format!("cannot start the log writer: {e}")))?
        };
        Ok(LogWriter {
            tx,
            pending,
            session,
            earlier,
            other_replicas,
            next: AtomicI64::new(0),
            flushed,
            failures,
            thread: Mutex::new(Some(thread)),
        })
    }
}

fn write_loop(
    mut log: PredictionLog,
    rx: Receiver<Record>,
    flushed: &AtomicI64,
    failures: &AtomicU64,
    pending: &AtomicI64,
) {
    lower_priority();
    let mut batch = LogBatch::default();
    let mut open = true;
    // Request numbers committed above the contiguous prefix `flushed` (records can arrive out of
    // order when requests run in parallel).
    let mut ahead = std::collections::BTreeSet::new();
    while open {
        // Park until the first record of a batch: one wake-up per batch, not one per request.
        match rx.recv() {
            Ok(Record::Finish) | Err(_) => open = false,
            Ok(r) => push(&mut batch, r),
        }
        let started = Instant::now();
        // Gather the rest without blocking the senders: drain, nap, drain, until the batch is
        // full or its first record has waited FLUSH_EVERY.
        while open {
            loop {
                match rx.try_recv() {
                    Ok(Record::Finish) | Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                    Ok(r) => {
                        push(&mut batch, r);
                        if batch.len() >= BATCH_MAX {
                            break;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            let waited = started.elapsed();
            if !open || batch.len() >= BATCH_MAX || waited >= FLUSH_EVERY {
                break;
            }
            std::thread::sleep((FLUSH_EVERY - waited).min(Duration::from_millis(10)));
        }
        if !batch.is_empty() {
            let records = batch.len() as i64;
            match log.append(&batch) {
                Ok(()) => {
                    // The answer is what a client holds; its shadow row does not count.
                    ahead.extend(batch.served.iter().filter(|r| !r.shadow).map(|r| r.id.n));
                    let mut prefix = flushed.load(Ordering::Acquire);
                    while ahead.remove(&prefix) {
                        prefix += 1;
                    }
                    flushed.store(prefix, Ordering::Release);
                }
                Err(e) => {
                    failures.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    eprintln!("gyre serve: the prediction log could not be written: {e}");
                }
            }
            pending.fetch_sub(records, Ordering::Relaxed);
            batch = LogBatch::default();
        }
    }
}

/// The writer yields the CPU to request handlers: on a small machine its commits otherwise show up
/// in the requests' tail latency. (Linux: `setpriority` on a thread id affects that thread only.)
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on this thread's own id; failure only leaves the priority as is.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

fn push(batch: &mut LogBatch, r: Record) {
    match r {
        Record::Served(s) => batch.served.push(s),
        Record::Feedback(id, label, time) => batch.feedback.push((id, label, time)),
        Record::Error(e) => batch.errors.push(e),
        Record::Finish => {}
    }
}

impl LogWriter {
    /// Numbers `count` predictions of one request. Take them once the predictions exist and send
    /// every one's record with [`LogWriter::served`] right away: `flushed_through` waits for each
    /// number taken.
    pub fn take_ids(&self, count: usize) -> Vec<PredictionId> {
        let first = self.next.fetch_add(count as i64, Ordering::AcqRel);
        (first..first + count as i64)
            .map(|n| PredictionId {
                session: self.session,
                n,
            })
            .collect()
    }

    /// Queues a record; waits while the queue is full. After `finish` the writer is gone and
    /// the record is dropped (the server has stopped answering by then).
    fn send(&self, r: Record) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(r).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn served(&self, record: EncodedRecord) {
        self.send(Record::Served(record));
    }

    pub fn feedback(&self, id: PredictionId, label: String) {
        self.send(Record::Feedback(id, label, now()));
    }

    pub fn error(&self, status: u16, message: String) {
        self.send(Record::Error(ErrorRecord {
            time: now(),
            status,
            message,
        }));
    }

    /// Predictions of this session numbered below this have been handed out.
    pub fn issued(&self) -> i64 {
        self.next.load(Ordering::Acquire)
    }

    /// Whether a prediction with this id was answered: issued by this session, or committed to
    /// the log by an earlier one.
    pub fn was_served(&self, id: PredictionId) -> bool {
        if id.session == self.session {
            (0..self.issued()).contains(&id.n)
        } else if let Some(&count) = self.earlier.get(&id.session) {
            (0..count).contains(&id.n)
        } else {
            self.other_replicas && id.session > 0 && id.n >= 0
        }
    }

    /// Predictions of this session numbered below this are committed.
    pub fn flushed_through(&self) -> i64 {
        self.flushed.load(Ordering::Acquire)
    }

    /// Records that could not be written (disk full, ...), for `/metrics`.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Records queued or in the batch being written, not yet committed.
    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Commits what is pending and stops the writer.
    pub fn finish(&self) {
        if let Some(t) = self.thread.lock().expect("log thread").take() {
            let _ = self.tx.send(Record::Finish);
            let _ = t.join();
        }
    }
}

/// The time now, as the log records it.
pub fn timestamp() -> String {
    now()
}
