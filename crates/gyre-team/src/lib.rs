//! `gyre server`: one address for the whole team. The project's operations over HTTP for
//! clones (`gyre clone`: every command works there), serving replicas (`gyre serve --remote`)
//! and the web UI, with people, tokens and roles. Only this process holds the store's
//! credentials; a client holds a personal token.
//!
//! The API (JSON unless said; every route but `/v1/health` needs `Authorization: Bearer TOKEN`):
//! - `GET /v1/whoami`: the token's person and role.
//! - `GET /v1/project`: the project's settings (gyre.toml without where the store lives).
//! - `POST /v1/tx` `{write, op}`: begins a transaction and runs its first op (`gyre_store::Op`);
//!   `POST /v1/tx/{id}/op`, `/commit`, `/rollback`. Each op needs a role (`Op::needs`), the
//!   server writes the person over any name the op claims (`Op::stamp`), and an op that records
//!   an object needs the object on the server (`Op::objects`).
//! - `HEAD|GET|PUT /v1/objects/{id}`: objects; an upload whose bytes do not hash to its id is
//!   refused.
//! - `POST /v1/log/sessions`, `GET /v1/log/cursor/{replica}`, `POST /v1/log/ship/{replica}`: a
//!   serving replica's sessions and prediction log; `GET /v1/log?...`: the team's log, for a
//!   clone's `gyre monitor`.
//!
//! Security: a token is looked up by its SHA-256 (`gyre_store::people`); an open transaction
//! is usable only with the token that began it; a token is never accepted over plain HTTP from
//! an address other than this machine's unless the operator allows it (`allow_plain_http`:
//! TLS is meant to end at a reverse proxy on this machine, see README); no token, and no
//! query string, is ever written to the server's output.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gyre_app::{Caller, TeamError, TeamService};
use gyre_store::{LogCursor, Op, RawLog};
use std::net::SocketAddr;
use std::sync::Arc;

mod tls;
pub use tls::TlsFiles;

/// The largest JSON request (one op with its records).
pub const MAX_JSON: usize = 16 << 20;

pub struct TeamOptions {
    /// Accept tokens over plain HTTP from other machines (a trusted network, or a reverse proxy
    /// on another host).
    pub allow_plain_http: bool,
    /// The largest object an upload may carry.
    pub max_object: usize,
    /// Serve TLS with this certificate and key (then tokens are welcome from any address).
    pub tls: Option<TlsFiles>,
}

struct Shared {
    service: Arc<TeamService>,
    allow_plain_http: bool,
    tls: bool,
}

/// A JSON error answer: `{"error": ..., "hint": ...}`.
fn error(e: TeamError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::json!({ "error": e.message() });
    if let Some(h) = e.hint() {
        body["hint"] = h.into();
    }
    let mut res = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    res
}

fn json_answer(v: impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

/// Runs blocking work (the store is synchronous) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TeamError> + Send + 'static,
) -> Result<T, TeamError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(TeamError::App(gyre_app::AppError::invalid(format!(
            "the request failed: {e}"
        ))))
    })
}

/// A JSON body, or a 400 naming what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, TeamError> {
    serde_json::from_slice(body).map_err(|e| {
        TeamError::Invalid(format!(
            "the request body is not the JSON expected: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether a request carries a token in any of the places one is read from.
fn carries_token(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::AUTHORIZATION)
        || h.get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.contains("token="))
        || req.uri().query().is_some_and(|q| q.contains("token="))
}

/// Every request: the plain-HTTP rule, then one line of output per answer (method, path
/// without its query, status, milliseconds; never a header or a query).
async fn outer(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if !shared.tls && !peer.ip().is_loopback() && !shared.allow_plain_http && carries_token(&req) {
        return error(TeamError::Forbidden(format!(
            "a token is not accepted over plain HTTP from {}: reach the server through its \
             TLS reverse proxy (see README), or start it with --allow-plain-http on a network \
             you trust",
            peer.ip()
        )));
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status();
    let who = res
        .extensions()
        .get::<Person>()
        .map(|p| format!(" by {}", p.0))
        .unwrap_or_default();
    // Errors, commits and uploads: what changed or failed (reads and their ends would drown
    // them).
    let checked = method == Method::HEAD && status == StatusCode::NOT_FOUND;
    if (status.is_client_error() && !checked)
        || status.is_server_error()
        || path.ends_with("/commit")
        || method == Method::PUT
    {
        eprintln!(
            "gyre server: {method} {path} {} {:.1} ms{who}",
            status.as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    res
}

/// Who a request was from, on its answer (for the server's output line).
#[derive(Clone)]
struct Person(String);

/// The API's routes: the person behind the token, put in the request for the handlers.
async fn authenticate(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let token = bearer(req.headers()).map(String::from);
    let service = shared.service.clone();
    match blocking(move || service.authenticate(token.as_deref())).await {
        Ok(caller) => {
            let person = Person(caller.name.clone());
            req.extensions_mut().insert(caller);
            let mut res = next.run(req).await;
            res.extensions_mut().insert(person);
            res
        }
        Err(e) => error(e),
    }
}

type Me = axum::Extension<Caller>;

/// Runs `f` with the service on the blocking pool (the store is synchronous) and answers its
/// result as JSON, or its error.
async fn reply<T: serde::Serialize + Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&Arc<TeamService>) -> Result<T, TeamError> + Send + 'static,
) -> Response {
    let service = shared.service.clone();
    match blocking(move || f(&service)).await {
        Ok(v) => json_answer(v),
        Err(e) => error(e),
    }
}

async fn whoami(axum::Extension(me): Me) -> Response {
    json_answer(&me)
}

async fn project(State(shared): State<Arc<Shared>>, _me: Me) -> Response {
    reply(&shared, |s| {
        Ok(serde_json::json!({ "config": s.clone_config()? }))
    })
    .await
}

#[derive(serde::Deserialize)]
struct Begin {
    write: bool,
    op: Op,
}

async fn begin(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| {
        let b: Begin = parse(&body)?;
        let (tx, answer) = s.begin(&me, b.write, b.op)?;
        Ok(serde_json::json!({ "tx": tx, "answer": answer }))
    })
    .await
}

async fn tx_op(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| s.op(&me, &id, parse(&body)?)).await
}

async fn tx_end(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Path((id, end)): Path<(String, String)>,
    // Read, though unused: a request whose body is left unread ends its connection, and the
    // client's next request on it would find it closed.
    _body: Bytes,
) -> Response {
    let commit = match end.as_str() {
        "commit" => true,
        "rollback" => false,
        _ => {
            return error(TeamError::NotFound(format!(
                "no such transaction action {end:?}"
            )));
        }
    };
    reply(&shared, move |s| {
        s.finish(&me, &id, commit)?;
        Ok(serde_json::json!({}))
    })
    .await
}

async fn object(
    State(shared): State<Arc<Shared>>,
    _me: Me,
    method: Method,
    Path(id): Path<String>,
) -> Response {
    let service = shared.service.clone();
    if method == Method::HEAD {
        return match blocking(move || service.has_object(&id)).await {
            Ok(true) => StatusCode::OK.into_response(),
            Ok(false) => StatusCode::NOT_FOUND.into_response(),
            Err(e) => error(e),
        };
    }
    match blocking(move || service.object(&id)).await {
        Ok(bytes) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) => error(e),
    }
}

async fn put_object(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| {
        s.put_object(&me, &id, &body)?;
        Ok(serde_json::json!({}))
    })
    .await
}

#[derive(serde::Deserialize)]
struct NewSession {
    champion: String,
    challenger: Option<String>,
    mode: Option<String>,
}

async fn log_session(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| {
        let n: NewSession = parse(&body)?;
        let session =
            s.start_log_session(&me, &n.champion, n.challenger.as_deref(), n.mode.as_deref())?;
        Ok(serde_json::json!({ "session": session }))
    })
    .await
}

async fn log_cursor(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Path(replica): Path<String>,
) -> Response {
    reply(&shared, move |s| s.log_cursor(&me, &replica)).await
}

async fn log_ship(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Path(replica): Path<String>,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| {
        s.ship_log(&me, &replica, &parse::<RawLog>(&body)?)
    })
    .await
}

#[derive(serde::Deserialize)]
struct LogQuery {
    #[serde(default)]
    sessions: i64,
    #[serde(default)]
    served: i64,
    #[serde(default)]
    feedback: i64,
    #[serde(default)]
    errors: i64,
    limit: Option<usize>,
}

async fn log_rows(
    State(shared): State<Arc<Shared>>,
    _me: Me,
    Query(q): Query<LogQuery>,
) -> Response {
    let after = LogCursor {
        sessions: q.sessions,
        served: q.served,
        feedback: q.feedback,
        errors: q.errors,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    reply(&shared, move |s| s.log_after(after, limit)).await
}

#[derive(serde::Deserialize)]
struct NewPerson {
    name: String,
    role: gyre_store::Role,
}

async fn people(State(shared): State<Arc<Shared>>, axum::Extension(me): Me) -> Response {
    reply(&shared, move |s| s.people_list(&me)).await
}

async fn person_add(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| {
        let p: NewPerson = parse(&body)?;
        s.person_add(&me, &p.name, p.role)
    })
    .await
}

#[derive(serde::Deserialize)]
struct NewToken {
    user: Option<String>,
    label: String,
}

#[derive(serde::Deserialize)]
struct TokensQuery {
    user: Option<String>,
}

async fn tokens(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Query(q): Query<TokensQuery>,
) -> Response {
    reply(&shared, move |s| s.token_list(&me, q.user.as_deref())).await
}

async fn token_create(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    body: Bytes,
) -> Response {
    reply(&shared, move |s| {
        let t: NewToken = parse(&body)?;
        s.token_create(&me, t.user.as_deref(), &t.label)
    })
    .await
}

async fn token_revoke(
    State(shared): State<Arc<Shared>>,
    axum::Extension(me): Me,
    Path(id): Path<String>,
    _body: Bytes,
) -> Response {
    reply(&shared, move |s| s.token_revoke(&me, &id)).await
}

async fn health() -> Response {
    json_answer(serde_json::json!({ "ok": true }))
}

async fn not_found() -> Response {
    error(TeamError::NotFound("no such route of the team API".into()))
}

/// The team API's router, with `ui` (the web UI, which checks people's tokens itself) beside it.
pub fn router(service: Arc<TeamService>, ui: Router, options: &TeamOptions) -> Router {
    let shared = Arc::new(Shared {
        service,
        allow_plain_http: options.allow_plain_http,
        tls: options.tls.is_some(),
    });
    let api = Router::new()
        .route("/v1/whoami", get(whoami))
        .route("/v1/project", get(project))
        .route("/v1/tx", post(begin))
        .route("/v1/tx/{id}/op", post(tx_op))
        .route("/v1/tx/{id}/{end}", post(tx_end))
        .route(
            "/v1/objects/{id}",
            get(object)
                .head(object)
                .put(put_object)
                .layer(DefaultBodyLimit::max(options.max_object)),
        )
        .route("/v1/log/sessions", post(log_session))
        .route("/v1/log/cursor/{replica}", get(log_cursor))
        .route("/v1/log/ship/{replica}", post(log_ship))
        .route("/v1/log", get(log_rows))
        .route("/v1/people", get(people).post(person_add))
        .route("/v1/tokens", get(tokens).post(token_create))
        .route("/v1/tokens/{id}/revoke", post(token_revoke))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_JSON));
    Router::new()
        .route("/v1/health", get(health))
        .merge(api)
        .with_state(shared.clone())
        .merge(ui)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared, outer))
}

/// Serves until Ctrl-C or SIGTERM. `ready` is called once it listens.
pub fn serve(
    service: Arc<TeamService>,
    ui: Router,
    options: TeamOptions,
    listener: std::net::TcpListener,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The service's stores (a PostgreSQL client runs a runtime of its own) are dropped after
    // the server's runtime, outside it: this handle outlives every clone the router holds.
    let keep = service.clone();
    let app = router(service, ui, &options);
    // Read before the runtime starts, so a bad file fails `gyre server` at once.
    let tls = options.tls.as_ref().map(tls::server_config).transpose()?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let make = app.into_make_service_with_connect_info::<SocketAddr>();
        match tls {
            None => {
                ready();
                axum::serve(listener, make)
                    .with_graceful_shutdown(stop_signal())
                    .await
            }
            Some(config) => {
                use axum::serve::ListenerExt;
                // tap_io: the identity, through which axum's connect info reads the peer.
                let listener = tls::TlsListener::new(listener, config)?.tap_io(|_| {});
                ready();
                axum::serve(listener, make)
                    .with_graceful_shutdown(stop_signal())
                    .await
            }
        }
    });
    drop(rt);
    drop(keep);
    served
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
    }
}
