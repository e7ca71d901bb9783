//! One module per page. A page function reads through `gyre-app` and returns the HTML body and
//! the JSON it was drawn from (the CLI's `--json` reports).

pub mod data;
pub mod diff;
pub mod findings;
pub mod journal;
pub mod monitor;
pub mod overview;
pub mod review;
pub mod rows;
pub mod run;
pub mod runs;

use crate::html::{esc, layout};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use gyre_app::AppError;
use serde_json::Value;

/// What a page or an action answers.
pub enum Out {
    Page {
        title: String,
        body: String,
        json: Value,
    },
    /// JSON only (an action called from the page's script).
    Json(Value),
    /// After a form post: go to this page.
    Redirect(String),
    Error(AppError),
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Invalid { .. } | AppError::Data(_) | AppError::Learn(_) => {
            StatusCode::BAD_REQUEST
        }
        AppError::Store(gyre_app::StoreError::Invalid(_)) => StatusCode::BAD_REQUEST,
        AppError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl Out {
    pub fn into_response(self, project: &str, json: bool) -> Response {
        match self {
            Out::Page {
                title,
                body,
                json: v,
            } => {
                if json {
                    axum::Json(v).into_response()
                } else {
                    (
                        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                        layout(&title, project, &body),
                    )
                        .into_response()
                }
            }
            Out::Json(v) => axum::Json(v).into_response(),
            Out::Redirect(to) => crate::redirect(&to),
            Out::Error(e) => {
                let status = status_of(&e);
                let hint = e.hint();
                if json {
                    let mut v = serde_json::json!({ "error": e.to_string() });
                    if let Some(h) = hint {
                        v["hint"] = Value::String(h);
                    }
                    return (status, axum::Json(v)).into_response();
                }
                let mut body = format!("<p class=\"error\">{}</p>", esc(&e.to_string()));
                if let Some(h) = hint {
                    body.push_str(&format!("<p class=\"hint\">{}</p>", esc(&h)));
                }
                (
                    status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    layout("Error", project, &body),
                )
                    .into_response()
            }
        }
    }
}

/// A query parameter as a number, with a default.
pub(crate) fn param_usize(
    q: &std::collections::HashMap<String, String>,
    name: &str,
    default: usize,
) -> usize {
    q.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Pager links: previous and next page of `total` items, keeping the other query parameters.
pub(crate) fn pager(
    path: &str,
    q: &std::collections::HashMap<String, String>,
    offset: usize,
    limit: usize,
    total: usize,
) -> String {
    let link = |off: usize| {
        let mut params: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "offset" && k.as_str() != "format")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        params.push(("offset".into(), off.to_string()));
        let qs: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", crate::html::url(k), crate::html::url(v)))
            .collect();
        format!("{path}?{}", esc(&qs.join("&")))
    };
    let mut s = format!(
        "<nav class=\"pager\"><span>{}–{} of {total}</span>",
        if total == 0 { 0 } else { offset + 1 },
        (offset + limit).min(total)
    );
    if offset > 0 {
        s.push_str(&format!(
            " <a rel=\"prev\" href=\"{}\">previous</a>",
            link(offset.saturating_sub(limit))
        ));
    }
    if offset + limit < total {
        s.push_str(&format!(
            " <a rel=\"next\" href=\"{}\">next</a>",
            link(offset + limit)
        ));
    }
    s.push_str("</nav>");
    s
}
