//! `gyre ui`: the project in a browser, served by the gyre binary itself.
//!
//! Pages are rendered on the server from the same `gyre-app` reports the CLI prints with
//! `--json` (each page answers `?format=json` with those reports), so a page and the CLI can
//! never disagree. Writes (promote, label review, finding decisions) call the same `gyre-app`
//! functions as the CLI: the same checks, reasons, journal entries and transactions.
//!
//! Security: loopback by default; any other address needs a token, which every request must
//! carry (a bearer header, or a cookie set by visiting once with `?token=`). Requests that change
//! the project must come from the UI's own pages (the Origin check below). A strict Content
//! Security Policy allows only the UI's own script file, so markup that slipped through the
//! escaping still could not run a script.

mod html;
mod pages;
mod svg;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gyre_app::{App, AppError, ProjectLocation};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use pages::Out;

/// Options of `gyre ui`.
pub struct UiOptions {
    /// Required on every request when set (always set when the address is not loopback).
    pub token: Option<String>,
    /// The people of `gyre server`: every request needs one of their tokens, acts as its
    /// person, and changes need the person's role (a promotion: maintainer; a review or a
    /// finding's decision: member). Replaces `token`.
    pub people: Option<Arc<gyre_app::TeamService>>,
    /// Pages are served over HTTPS (`gyre server --tls-cert`): the token's cookie is `Secure`,
    /// never sent over plain HTTP.
    pub https: bool,
}

tokio::task_local! {
    /// The person a request of `gyre server`'s UI is from.
    static CALLER: gyre_app::Caller;
}

/// The UI's state: the project and a few open `App`s to serve requests with.
pub struct Ui {
    root: PathBuf,
    project: String,
    pool: Mutex<Vec<App>>,
    token_hash: Option<[u8; 32]>,
    people: Option<Arc<gyre_app::TeamService>>,
    https: bool,
}

type Query_ = Query<HashMap<String, String>>;

const TOKEN_COOKIE: &str = "gyre_ui_token";

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Ui {
    pub fn new(root: &Path, options: UiOptions) -> Result<Arc<Ui>, AppError> {
        // Open once now so a bad project fails at start, not on the first page.
        let app = App::open(ProjectLocation::Explicit(root), "gyre ui")?;
        let project = root
            .canonicalize()
            .unwrap_or_else(|_| root.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into());
        Ok(Arc::new(Ui {
            root: root.to_path_buf(),
            project,
            pool: Mutex::new(vec![app]),
            token_hash: options.token.as_deref().map(digest),
            people: options.people,
            https: options.https,
        }))
    }

    /// Runs `f` with an `App` whose journal entries name `command`.
    fn with_app<T>(&self, command: &str, f: impl FnOnce(&mut App) -> T) -> Result<T, AppError> {
        let pooled = self.pool.lock().expect("app pool").pop();
        let mut app = match pooled {
            Some(app) => app,
            None => App::open(ProjectLocation::Explicit(&self.root), command)?,
        };
        app.set_command(command);
        let out = f(&mut app);
        self.pool.lock().expect("app pool").push(app);
        Ok(out)
    }

    fn token_ok(&self, given: &str) -> bool {
        match &self.token_hash {
            None => true,
            // Equal digests, compared without an early exit.
            Some(want) => {
                digest(given)
                    .iter()
                    .zip(want)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
        }
    }
}

/// The router of every page, action and asset.
pub fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/runs", get(runs))
        .route("/runs/{run}", get(run))
        .route("/diff", get(diff_pick))
        .route("/diff/{base}/{candidate}", get(diff))
        .route("/diff/{base}/{candidate}/promote", post(promote))
        .route("/review/{run}", get(review))
        .route("/review/{run}/apply", post(review_apply))
        .route("/findings", get(findings))
        .route("/findings/{id}/decide", post(finding_decide))
        .route("/data", get(data))
        .route("/rows/{row}", get(row))
        .route("/monitor", get(monitor))
        .route("/journal", get(journal))
        .route("/assets/{name}", get(asset))
        .layer(middleware::from_fn_with_state(ui.clone(), guard))
        .with_state(ui)
}

/// Token and same-origin checks, and the security headers of every answer.
async fn guard(State(ui): State<Arc<Ui>>, req: Request, next: Next) -> Response {
    if ui.people.is_some() {
        return people_guard(ui, req, next).await;
    }
    if ui.token_hash.is_some() {
        if let Some(t) = query_token(&req) {
            // A first visit with ?token=: keep it in a cookie and drop it from the address, so
            // links and history never carry it.
            if !ui.token_ok(&t) {
                return unauthorized();
            }
            return keep_token_in_cookie(&req, &t, ui.https);
        }
        if !request_token(req.headers()).is_some_and(|t| ui.token_ok(&t)) {
            return unauthorized();
        }
    }
    if req.method() != axum::http::Method::GET && !same_origin(req.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "cross-site request refused: changes must come from the UI's own pages\n",
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    secure_headers(&mut res);
    res
}

fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A token given in the address (`?token=`, a first visit).
fn query_token(req: &Request) -> Option<String> {
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_string)
    })
}

/// The token of a request: a bearer header, else the UI's cookie.
fn request_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{TOKEN_COOKIE}=")));
    bearer.or(cookie).map(|t| t.trim().to_string())
}

/// `gyre server`'s UI: a person's token (`?token=` once, kept in a cookie), the person's role
/// for changes, and the person named in what they change.
async fn people_guard(ui: Arc<Ui>, req: Request, next: Next) -> Response {
    let people = ui.people.clone().expect("people mode");
    let in_query = query_token(&req);
    let given = in_query.clone().or_else(|| request_token(req.headers()));
    let check = people.clone();
    let caller = tokio::task::spawn_blocking(move || check.authenticate(given.as_deref()))
        .await
        .ok()
        .and_then(Result::ok);
    let Some(caller) = caller else {
        return unauthorized();
    };
    if let Some(t) = in_query {
        return keep_token_in_cookie(&req, &t, ui.https);
    }
    if req.method() != axum::http::Method::GET {
        if !same_origin(req.headers()) {
            return (
                StatusCode::FORBIDDEN,
                "cross-site request refused: changes must come from the UI's own pages\n",
            )
                .into_response();
        }
        let needs = if req.uri().path().ends_with("/promote") {
            gyre_app::Role::Maintainer
        } else {
            gyre_app::Role::Member
        };
        if let Err(e) = caller.require(needs, "do this") {
            return (StatusCode::FORBIDDEN, format!("{}\n", e.message())).into_response();
        }
    }
    let mut res = CALLER.scope(caller, next.run(req)).await;
    secure_headers(&mut res);
    res
}

/// A first visit with `?token=`: the token goes into a cookie and out of the address (links and
/// history never carry it), and the page is asked for again without it.
fn keep_token_in_cookie(req: &Request, t: &str, https: bool) -> Response {
    let rest: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.starts_with("token=") && !kv.is_empty())
        .collect();
    let to = if rest.is_empty() {
        req.uri().path().to_string()
    } else {
        format!("{}?{}", req.uri().path(), rest.join("&"))
    };
    let mut res = redirect(&to);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{TOKEN_COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict{}",
        if https { "; Secure" } else { "" }
    )) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a token is required: open the address gyre ui printed (with ?token=...) or send Authorization: Bearer TOKEN\n",
    )
        .into_response()
}

/// A browser names the page a request came from: Origin must be this server. A request
/// without Origin and without Sec-Fetch-Site is not from a browser (curl, a script) and
/// cannot be forged by a page.
fn same_origin(h: &HeaderMap) -> bool {
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let bare = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            bare.is_some() && bare == host
        }
        None => match h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some(site) => site == "same-origin" || site == "none",
            None => true,
        },
    }
}

fn redirect(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .body(Body::empty())
        .expect("redirect response")
}

/// Runs a page on the blocking pool (the store and the learners are synchronous).
async fn answer(
    ui: Arc<Ui>,
    command: String,
    json: bool,
    f: impl FnOnce(&mut App) -> Result<Out, AppError> + Send + 'static,
) -> Response {
    let project = ui.project.clone();
    let person = CALLER.try_with(|c| c.name.clone()).ok();
    let result = tokio::task::spawn_blocking(move || {
        ui.with_app(&command, |app| {
            if let Some(p) = &person {
                app.set_user(p);
            }
            f(app)
        })
    })
    .await;
    let out = match result {
        Ok(Ok(Ok(out))) => out,
        Ok(Ok(Err(e)) | Err(e)) => Out::Error(e),
        Err(join) => Out::Error(AppError::invalid(format!("the page failed: {join}"))),
    };
    out.into_response(&project, json)
}

fn wants_json(q: &HashMap<String, String>, headers: &HeaderMap) -> bool {
    q.get("format").is_some_and(|f| f == "json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.starts_with("application/json"))
}

async fn overview(State(ui): State<Arc<Ui>>, Query(q): Query_, h: HeaderMap) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, pages::overview::page).await
}

async fn runs(State(ui): State<Arc<Ui>>, Query(q): Query_, h: HeaderMap) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::runs::page(app, &q)
    })
    .await
}

async fn run(
    State(ui): State<Arc<Ui>>,
    UrlPath(run): UrlPath<String>,
    Query(q): Query_,
    h: HeaderMap,
) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::run::page(app, &run)
    })
    .await
}

async fn diff_pick(Query(q): Query_) -> Response {
    match (q.get("base"), q.get("candidate")) {
        (Some(b), Some(c)) if !b.is_empty() && !c.is_empty() => {
            redirect(&format!("/diff/{}/{}", html::url(b), html::url(c)))
        }
        _ => redirect("/runs?pick=1"),
    }
}

async fn diff(
    State(ui): State<Arc<Ui>>,
    UrlPath((base, candidate)): UrlPath<(String, String)>,
    Query(q): Query_,
    h: HeaderMap,
) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::diff::page(app, &base, &candidate, &q, None)
    })
    .await
}

async fn promote(
    State(ui): State<Arc<Ui>>,
    UrlPath((base, candidate)): UrlPath<(String, String)>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let command = format!("gyre ui: promote {candidate}");
    answer(ui, command, false, move |app| {
        pages::diff::promote(app, &base, &candidate, &form)
    })
    .await
}

async fn review(
    State(ui): State<Arc<Ui>>,
    UrlPath(run): UrlPath<String>,
    Query(q): Query_,
    h: HeaderMap,
) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::review::page(app, &run, &q)
    })
    .await
}

async fn review_apply(
    State(ui): State<Arc<Ui>>,
    UrlPath(run): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let command = format!("gyre ui: label review of run {run}");
    answer(ui, command, true, move |app| {
        pages::review::apply(app, &run, &body)
    })
    .await
}

async fn findings(State(ui): State<Arc<Ui>>, Query(q): Query_, h: HeaderMap) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::findings::page(app, &q)
    })
    .await
}

async fn finding_decide(
    State(ui): State<Arc<Ui>>,
    UrlPath(id): UrlPath<i64>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let decision = form.get("decision").cloned().unwrap_or_default();
    let command = format!("gyre ui: finding {id} {decision}");
    answer(ui, command, false, move |app| {
        pages::findings::decide(app, id, &form)
    })
    .await
}

async fn data(State(ui): State<Arc<Ui>>, Query(q): Query_, h: HeaderMap) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::data::page(app, &q)
    })
    .await
}

async fn row(
    State(ui): State<Arc<Ui>>,
    UrlPath(row): UrlPath<String>,
    Query(q): Query_,
    h: HeaderMap,
) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::rows::page(app, &row, &q)
    })
    .await
}

async fn monitor(State(ui): State<Arc<Ui>>, Query(q): Query_, h: HeaderMap) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::monitor::page(app, &q)
    })
    .await
}

async fn journal(State(ui): State<Arc<Ui>>, Query(q): Query_, h: HeaderMap) -> Response {
    let json = wants_json(&q, &h);
    answer(ui, "gyre ui".into(), json, move |app| {
        pages::journal::page(app, &q)
    })
    .await
}

/// The UI's own files, compiled into the binary (nothing to install, works offline).
async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "ui.css" => (include_str!("../assets/ui.css"), "text/css; charset=utf-8"),
        "ui.js" => (
            include_str!("../assets/ui.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Serves the UI on `listener` until Ctrl-C or SIGTERM. `ready` is called once it listens.
pub fn serve(
    ui: Arc<Ui>,
    listener: std::net::TcpListener,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The open projects are dropped after the runtime, outside it: a PostgreSQL client (a
    // team project's) runs a runtime of its own and may not be dropped inside another.
    let keep = ui.clone();
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        ready();
        axum::serve(listener, router(ui))
            .with_graceful_shutdown(stop_signal())
            .await
    });
    drop(rt);
    drop(keep);
    served
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
