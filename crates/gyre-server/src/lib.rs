//! gyre's HTTP side (axum on tokio): the champion, and optionally a challenger beside it (A/B
//! split or shadow), at `POST /v1/predict`; true labels at `POST /v1/feedback`; `GET /v1/health`;
//! `GET /metrics` in Prometheus text format. Every answer goes to the prediction log
//! (gyre-app's `LogWriter`, committed in batches). The champion follows its alias: a watcher
//! thread reads it every [`POLL_EVERY`] and swaps models between requests, so `gyre promote` and
//! `gyre rollback` take effect without a restart and without failing a request in flight.

mod metrics;
mod routing;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gyre_app::{App, LogWriter, RequestRow, ServingModel};
use gyre_store::{EncodedRecord, PredictionId, Served};
use metrics::{LiveDrift, Metrics};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use routing::Traffic;

/// By default, request bodies above this (1 MiB, about 3,000 Adult rows) are refused with 413.
pub const BODY_LIMIT: usize = 1 << 20;
/// By default, a request (body included) that takes longer is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the watcher reads the aliases.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// What is being served: swapped whole when an alias moves.
pub struct Models {
    pub champion: Arc<ServingModel>,
    pub challenger: Option<Arc<ServingModel>>,
    /// Served inputs binned against the champion's training data.
    drift: Arc<LiveDrift>,
}

impl Models {
    pub fn new(champion: ServingModel, challenger: Option<ServingModel>) -> Models {
        let champion = Arc::new(champion);
        Models {
            drift: Arc::new(LiveDrift::new(&champion)),
            champion,
            challenger: challenger.map(Arc::new),
        }
    }
}

/// How to serve: which references the watcher follows, and the challenger's share.
pub struct ServeOptions {
    /// An alias (followed) or a run.
    pub champion: String,
    pub challenger: Option<String>,
    pub traffic: Option<Traffic>,
    /// A request (body included) that takes longer is answered 408.
    pub timeout: Duration,
    /// Request bodies above this many bytes are answered 413.
    pub body_limit: usize,
}

struct Shared {
    models: RwLock<Arc<Models>>,
    /// Bumped after each swap, so a thread knows when its view of `models` is stale.
    generation: AtomicU64,
    /// This server's number in the process (a thread's cached view names the server it is of).
    id: u64,
    traffic: Option<Traffic>,
    log: LogWriter,
    metrics: Metrics,
    requests: AtomicU64,
    timeout: Duration,
    body_limit: usize,
}

#[derive(Deserialize)]
struct PredictRequest<'a> {
    /// Each row's JSON text, borrowed from the body: read into a `RequestRow` next, and kept
    /// as sent for the prediction log.
    #[serde(borrow)]
    rows: Vec<&'a RawValue>,
    key: Option<String>,
    /// Whether each answer gives its features' contributions to the score.
    #[serde(default)]
    explain: bool,
}

/// One answer, borrowing what the request already holds.
#[derive(Serialize)]
struct Prediction<'a> {
    /// `SESSION-N`, written as text without a string of its own.
    #[serde(serialize_with = "as_text")]
    id: PredictionId,
    model: &'a str,
    label: String,
    scores: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unseen: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignored: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    derived: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contributions: Option<gyre_app::RowContributions>,
}

fn as_text<S: serde::Serializer>(id: &PredictionId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

#[derive(Serialize)]
struct PredictResponse<'a> {
    predictions: Vec<Prediction<'a>>,
    /// The classes in the order of every prediction's `scores` (absent for regression).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    classes: &'a [String],
}

impl Shared {
    fn models(&self) -> Arc<Models> {
        self.models.read().expect("models lock").clone()
    }

    /// Runs `f` on the models being served, as this thread last saw them: on a request's path
    /// it touches no shared lock or reference count (both are cache lines every thread writes),
    /// only the generation, which changes when a swap happens. (A thread that gets no request
    /// after a swap keeps the old models alive until it does: at most one old set per thread.)
    fn with_models<R>(&self, f: impl FnOnce(&Models) -> R) -> R {
        std::thread_local! {
            /// This thread's view: (server, generation, models).
            static SEEN: std::cell::RefCell<Option<(u64, u64, Arc<Models>)>> =
                const { std::cell::RefCell::new(None) };
        }
        let me = self.id;
        let generation = self.generation.load(Ordering::Acquire);
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            if !matches!(&*seen, Some((s, g, _)) if *s == me && *g == generation) {
                *seen = Some((me, generation, self.models()));
            }
            f(&seen.as_ref().expect("set just above").2)
        })
    }

    fn error(&self, status: StatusCode, message: String) -> Response {
        self.metrics.error(status.as_u16());
        self.log.error(status.as_u16(), message.clone());
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// Bodies larger than this (a few hundred rows) are worked on tokio's blocking pool: the
/// connections handed to this request's thread keep being answered meanwhile.
const INLINE_BODY_MAX: usize = 64 * 1024;

/// The request's body, or the JSON error every other failure gives (413 over the limit),
/// boxed: a response is large beside the body's handle.
fn body_or_error(
    s: &Shared,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, Box<Response>> {
    body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "request body over the limit of {} bytes (gyre serve --max-body sets it)",
                s.body_limit
            )
        } else {
            format!("cannot read the request body: {}", e.body_text())
        };
        Box::new(s.error(status, message))
    })
}

async fn predict(
    State(s): State<Arc<Shared>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let start = Instant::now();
    let body = match body_or_error(&s, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if body.len() <= INLINE_BODY_MAX {
        return predict_body(&s, &body, start);
    }
    let shared = s.clone();
    match tokio::task::spawn_blocking(move || predict_body(&shared, &body, start)).await {
        Ok(r) => r,
        Err(e) => s.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's worker failed: {e}"),
        ),
    }
}

fn predict_body(s: &Shared, body: &[u8], start: Instant) -> Response {
    let req: PredictRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return s.error(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}"),
            );
        }
    };
    if req.rows.is_empty() {
        return s.error(StatusCode::BAD_REQUEST, "\"rows\" is empty".into());
    }
    let mut rows = Vec::with_capacity(req.rows.len());
    for (i, raw) in req.rows.iter().enumerate() {
        match RequestRow::parse(raw) {
            Ok(r) => rows.push(r),
            Err(e) => {
                return s.error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid request body: row {i}: {e}"),
                );
            }
        }
    }
    let (key, explain) = (req.key.as_deref(), req.explain);
    s.with_models(|models| answer(s, models, &rows, key, explain, start))
}

/// The rest of `predict`, with the models to use.
fn answer(
    s: &Shared,
    models: &Models,
    rows: &[RequestRow],
    key: Option<&str>,
    explain: bool,
    start: Instant,
) -> Response {
    let n = s.requests.fetch_add(1, Ordering::Relaxed);
    let (answer, arm, shadow) = match (&models.challenger, s.traffic) {
        (Some(c), Some(Traffic::Split(share))) if routing::to_challenger(key, n, share) => {
            (c, "challenger", None)
        }
        (Some(c), Some(Traffic::Shadow)) => (&models.champion, "champion", Some(c)),
        _ => (&models.champion, "champion", None),
    };
    let preds = match answer.predict_explained(rows, explain) {
        Ok(p) => p,
        Err(e) => {
            return s.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("row {}: field \"{}\": {}", e.row, e.field, e.error),
            );
        }
    };
    let shadowed = shadow.and_then(|c| match c.predict(rows) {
        Ok(p) => Some((c, p)),
        Err(_) => {
            s.metrics.shadow_error();
            None
        }
    });
    let ids = s.log.take_ids(preds.len());
    let request = ids[0].n;
    let latency = start.elapsed();
    let latency_us = latency.as_micros() as u64;
    let time = gyre_app::timestamp();
    // The log keeps each row's JSON as it was sent.
    let record = |id: PredictionId,
                  row: &RequestRow,
                  model: &str,
                  arm: &str,
                  shadow: bool,
                  p: &gyre_app::ServedPrediction| {
        EncodedRecord::new(&Served {
            id,
            shadow,
            time: &time,
            model,
            arm,
            key,
            features: row.json,
            label: &p.label,
            scores: &p.scores,
            unseen: (!p.unseen.is_empty()).then_some(&p.unseen),
            latency_us,
            request,
        })
    };
    if let Some((c, sp)) = &shadowed {
        for ((id, p), row) in ids.iter().zip(sp).zip(rows) {
            s.log
                .served(record(*id, row, &c.run, "challenger", true, p));
        }
        s.metrics
            .predicted(&c.run, "challenger", true, sp.len(), latency);
    }
    for ((id, p), row) in ids.iter().zip(&preds).zip(rows) {
        s.log.served(record(*id, row, &answer.run, arm, false, p));
        models.drift.observe(row, (arm == "champion").then_some(p));
    }
    s.metrics
        .predicted(&answer.run, arm, false, preds.len(), latency);
    let predictions = ids
        .into_iter()
        .zip(preds)
        .map(|(id, p)| Prediction {
            id,
            model: &answer.run,
            label: p.label,
            scores: p.scores,
            unseen: p.unseen,
            ignored: p.ignored,
            derived: p.derived,
            contributions: p.contributions,
        })
        .collect();
    let classes: &[String] = if answer.task == gyre_core::Task::Regression {
        &[]
    } else {
        &answer.classes
    };
    Json(PredictResponse {
        predictions,
        classes,
    })
    .into_response()
}

async fn feedback(
    State(s): State<Arc<Shared>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body_or_error(&s, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return s.error(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}"),
            );
        }
    };
    let Some(id_text) = v.get("id").and_then(|i| i.as_str()) else {
        return s.error(
            StatusCode::BAD_REQUEST,
            "field \"id\": expected the prediction id as a string".into(),
        );
    };
    let Some(label) = v.get("label") else {
        return s.error(StatusCode::BAD_REQUEST, "field \"label\": missing".into());
    };
    let Some(id) = PredictionId::parse(id_text) else {
        return s.error(
            StatusCode::BAD_REQUEST,
            format!("field \"id\": {id_text:?} is not a prediction id (SESSION-N, e.g. \"1-0\")"),
        );
    };
    if !s.log.was_served(id) {
        return s.error(
            StatusCode::NOT_FOUND,
            format!("field \"id\": no prediction {id_text:?} was served"),
        );
    }
    let label = match s.models().champion.check_label(label) {
        Ok(l) => l,
        Err(e) => {
            return s.error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("field \"label\": {e}"),
            );
        }
    };
    s.log.feedback(id, label.clone());
    s.metrics.feedback();
    Json(serde_json::json!({ "id": id.to_string(), "label": label, "recorded": true }))
        .into_response()
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let m = s.models();
    Json(serde_json::json!({
        "status": "ok",
        "champion": m.champion.run,
        "challenger": m.challenger.as_ref().map(|c| c.run.clone()),
        "traffic": s.traffic.map(|t| t.to_string()),
        "log": {
            "session": s.log.session,
            // Every prediction of this session numbered below this is committed to the log.
            "committed_below": s.log.flushed_through(),
        },
    }))
    .into_response()
}

async fn prometheus(State(s): State<Arc<Shared>>) -> Response {
    let m = s.models();
    let text = s
        .metrics
        .render(&m.champion, &m.drift, s.log.failures(), s.log.pending());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Answers 408 when a request, its body included, takes longer than the timeout.
async fn time_limit(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(s.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => s.error(
            StatusCode::REQUEST_TIMEOUT,
            format!("request took longer than {:?}", s.timeout),
        ),
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/feedback", post(feedback))
        .route("/v1/health", get(health))
        .route("/metrics", get(prometheus))
        .layer(DefaultBodyLimit::max(shared.body_limit))
        .layer(middleware::from_fn_with_state(shared.clone(), time_limit))
        .with_state(shared)
}

/// Follows the aliases: when the champion's (or challenger's) reference names another run, loads
/// it and swaps it in. Errors are reported and the current models kept.
fn watch(mut app: App, options: &ServeOptions, shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL_EVERY);
        let current = shared.models();
        let champion = app.run_id(&options.champion);
        let challenger = options
            .challenger
            .as_ref()
            .map(|c| app.run_id(c))
            .transpose();
        let (Ok(champion), Ok(challenger)) = (champion, challenger) else {
            continue;
        };
        let same_challenger =
            challenger.as_deref() == current.challenger.as_ref().map(|c| c.run.as_str());
        if champion == current.champion.run && same_challenger {
            continue;
        }
        let load = |app: &mut App, run: &str, now: &Arc<ServingModel>| {
            if run == now.run {
                Ok(now.clone())
            } else {
                app.serving_model(run).map(Arc::new)
            }
        };
        let next_champion = load(&mut app, &champion, &current.champion);
        let next_challenger = match (&challenger, &current.challenger) {
            (Some(run), Some(now)) => load(&mut app, run, now).map(Some),
            (Some(run), None) => app.serving_model(run).map(|m| Some(Arc::new(m))),
            (None, _) => Ok(None),
        };
        match (next_champion, next_challenger) {
            (Ok(ch), Ok(cl)) => {
                let drift = if ch.run == current.champion.run {
                    current.drift.clone()
                } else {
                    Arc::new(LiveDrift::new(&ch))
                };
                eprintln!("gyre serve: now serving champion {}", ch.run);
                *shared.models.write().expect("models lock") = Arc::new(Models {
                    champion: ch,
                    challenger: cl,
                    drift,
                });
                shared.generation.fetch_add(1, Ordering::Release);
                shared.metrics.swapped();
            }
            (Err(e), _) | (_, Err(e)) => eprintln!("gyre serve: cannot load a new model: {e}"),
        }
    }
}

/// Serves on `listener` (bound by the caller, so a busy address fails before a log session is
/// started) until SIGTERM or Ctrl-C, then finishes in-flight requests and commits the log.
/// `app` is the project (the watcher reads aliases through it); `ready` hears the bound address.
pub fn serve(
    app: App,
    models: Models,
    log: LogWriter,
    options: ServeOptions,
    listener: std::net::TcpListener,
    ready: &dyn Fn(std::net::SocketAddr),
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        models: RwLock::new(Arc::new(models)),
        generation: AtomicU64::new(0),
        id: {
            static SERVERS: AtomicU64 = AtomicU64::new(0);
            SERVERS.fetch_add(1, Ordering::Relaxed)
        },
        traffic: options.traffic,
        log,
        metrics: Metrics::default(),
        requests: AtomicU64::new(0),
        timeout: options.timeout,
        body_limit: options.body_limit,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (shared, stop) = (shared.clone(), stop.clone());
        std::thread::Builder::new()
            .name("gyre-alias-watch".into())
            .spawn(move || watch(app, &options, &shared, &stop))?
    };
    // One single-threaded runtime per core. The first also accepts connections and hands them
    // out in turn; a connection then lives on one thread, so its requests never hop between
    // threads (the wake-ups of a work-stealing scheduler cost more than the handler on a small
    // machine).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let serve_on = |listener: Handoff, mut stop: tokio::sync::watch::Receiver<bool>| {
        std::future::IntoFuture::into_future(
            axum::serve(listener, router(shared.clone())).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            }),
        )
    };
    // Whatever happens here, the watcher is stopped and the log committed below.
    let served = (|| -> std::io::Result<()> {
        let first_rt = runtime()?;
        listener.set_nonblocking(true)?;
        let listener = first_rt.block_on(async { tokio::net::TcpListener::from_std(listener) })?;
        let bound = listener.local_addr()?;
        // The handlers exist before the address is announced: a SIGTERM or Ctrl-C right after it
        // is a graceful stop, not the default action.
        let (mut term, mut interrupt) = first_rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })?;
        let mut senders = Vec::new();
        let mut handoffs = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            senders.push(tx);
            handoffs.push(Handoff {
                incoming: rx,
                local: bound,
            });
        }
        std::thread::scope(|scope| -> std::io::Result<()> {
            let mut handoffs = handoffs.into_iter();
            let mine = handoffs.next().expect("at least one thread");
            let mut handles = Vec::new();
            for h in handoffs {
                let (stop, serve_on) = (stop_rx.clone(), &serve_on);
                handles.push(scope.spawn(move || -> std::io::Result<()> {
                    runtime()?.block_on(serve_on(h, stop))
                }));
            }
            ready(bound);
            let stop_tx = &stop_tx;
            let result = first_rt.block_on(async {
                let accept = tokio::spawn(hand_out(listener, senders, stop_rx.clone()));
                // Either signal stops every thread's server; each finishes its requests in flight.
                let signals = tokio::spawn(async move {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                });
                let serve = serve_on(mine, stop_rx.clone());
                tokio::pin!(serve);
                let r = tokio::select! {
                    r = &mut serve => r,
                    _ = signals => {
                        let _ = stop_tx.send(true);
                        serve.await
                    }
                };
                let _ = stop_tx.send(true);
                let _ = accept.await;
                r
            });
            for h in handles {
                h.join().expect("a server thread does not panic")?;
            }
            result
        })
    })();
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    shared.log.finish();
    served
}

/// Connections accepted on the first thread, handed to another thread's runtime.
struct Handoff {
    incoming: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl axum::serve::Listener for Handoff {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.incoming.recv().await {
                // Registered with this thread's runtime here.
                Some((stream, peer)) => match tokio::net::TcpStream::from_std(stream) {
                    Ok(s) => return (s, peer),
                    Err(e) => eprintln!("gyre serve: cannot take a connection from {peer}: {e}"),
                },
                // The acceptor has stopped: no more connections, the server is shutting down.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Accepts connections and hands them to the threads in turn, until stopped.
async fn hand_out(
    listener: tokio::net::TcpListener,
    threads: Vec<tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, std::net::SocketAddr)>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next = 0;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        // Answers go out as soon as they are written (no Nagle wait behind an unacknowledged
        // one); a connection that refuses the option is served without it.
        let accepted = accepted.and_then(|(s, peer)| {
            let _ = s.set_nodelay(true);
            Ok((s.into_std()?, peer))
        });
        match accepted {
            Ok(mut conn) => {
                // A thread whose runtime is gone passes the connection on to the next one.
                for _ in 0..threads.len() {
                    let sent = threads[next].send(conn);
                    next = (next + 1) % threads.len();
                    match sent {
                        Ok(()) => break,
                        Err(back) => conn = back.0,
                    }
                }
            }
            // Out of file descriptors and the like: report, pause, go on (as axum does).
            Err(e) => {
                eprintln!("gyre serve: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
