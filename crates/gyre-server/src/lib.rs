//! gyre's HTTP side. Today: `POST /v1/predict` with the champion's model (or any run's), and
//! `GET /v1/health`, on axum. Requests are checked against the run's schema; a malformed body or
//! row is a 4xx that names the field, and the server keeps serving.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gyre_app::ServingModel;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Served {
    pub model: ServingModel,
    next_id: AtomicU64,
}

#[derive(Deserialize)]
struct PredictRequest {
    rows: Vec<serde_json::Map<String, serde_json::Value>>,
    #[allow(dead_code)]
    key: Option<String>,
}

#[derive(Serialize)]
struct Prediction {
    id: String,
    model: String,
    label: String,
    scores: Vec<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unseen: Vec<String>,
}

#[derive(Serialize)]
struct PredictResponse {
    predictions: Vec<Prediction>,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn predict(State(s): State<Arc<Served>>, body: axum::body::Bytes) -> Response {
    let req: PredictRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid request body: {e}"),
            );
        }
    };
    match s.model.predict(&req.rows) {
        Ok(preds) => {
            let predictions = preds
                .into_iter()
                .map(|p| Prediction {
                    id: format!("p{}", s.next_id.fetch_add(1, Ordering::Relaxed)),
                    model: s.model.run.clone(),
                    label: p.label,
                    scores: p.scores,
                    unseen: p.unseen,
                })
                .collect();
            Json(PredictResponse { predictions }).into_response()
        }
        Err(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("row {}: field \"{}\": {}", e.row, e.field, e.error),
        ),
    }
}

async fn health(State(s): State<Arc<Served>>) -> Response {
    Json(serde_json::json!({ "status": "ok", "model": s.model.run })).into_response()
}

pub fn router(model: ServingModel) -> Router {
    let state = Arc::new(Served {
        model,
        next_id: AtomicU64::new(0),
    });
    Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/health", get(health))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests. `ready` hears the bound address.
pub fn serve(
    model: ServingModel,
    addr: &str,
    ready: &dyn Fn(std::net::SocketAddr),
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        ready(listener.local_addr()?);
        axum::serve(listener, router(model))
            .with_graceful_shutdown(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            })
            .await
    })
}
