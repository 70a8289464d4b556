//! httpbin-style routes for tests and demos, on only with `--lab`.
//!
//! `ANY /lab/<anything>?status=&delay_ms=&header=Name:Value&body=` answers with that status,
//! after that delay, with those headers, and counts hits per path; without `body` it echoes the
//! request as JSON. When a `header=ETag:...` is set, conditional GETs get a 304.
//! `repeat=N` repeats `body` N times (up to 64 MiB). `after=N&then_status=S` switches to status `S` from hit `N+1` on (an origin that starts
//! failing); `after=N&then_header=Name:Value` likewise replaces a header (an origin whose caching
//! headers change). `file=NAME` answers with a file of `assets/fixtures/images` (image tests:
//! corrupt files, decompression bombs) with its media type. `GET /_lab/hits?path=/lab/x` reads a path's hit count; `DELETE /_lab/hits` resets all.

use super::{AppError, AppState};
use crate::conditional::{is_not_modified, Validators};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Longest delay a lab route will sleep, so a test cannot hang the origin.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// Files `file=` may name.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fixtures/images");
/// Largest request body the echo route reads.
pub const MAX_ECHO_BODY: usize = 64 * 1024 * 1024;

/// Hit counters per path.
#[derive(Default)]
pub struct LabState {
    hits: Mutex<HashMap<String, u64>>,
}

impl LabState {
    /// Counts one hit on `path` and returns the count so far (a poisoned lock counts nothing).
    pub fn hit(&self, path: &str) -> u64 {
        let Ok(mut hits) = self.hits.lock() else { return 0 };
        let n = hits.entry(path.to_owned()).or_default();
        *n += 1;
        *n
    }
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/lab/{*rest}", any(respond)).route("/_lab/hits", get(hits).delete(reset))
}

fn lab(state: &AppState) -> Result<&LabState, AppError> {
    state.lab.as_deref().ok_or_else(|| AppError::NotFound("lab".into()))
}

async fn respond(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let hit = lab(&state)?.hit(&path);
    let mut status = StatusCode::OK;
    let mut delay = Duration::ZERO;
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let mut fixed_body: Option<String> = None;
    let mut fixed_file: Option<Bytes> = None;
    let (mut after, mut then_status) = (None::<u64>, None::<StatusCode>);
    let mut repeat = 1usize;
    let mut then_headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let bad = |m: String| AppError::Client(StatusCode::BAD_REQUEST, m);
    for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "status" => status = v.parse::<u16>().ok().and_then(|s| StatusCode::from_u16(s).ok()).ok_or_else(|| bad(format!("bad status {v:?}")))?,
            "delay_ms" => delay = Duration::from_millis(v.parse().map_err(|_| bad(format!("bad delay_ms {v:?}")))?).min(MAX_DELAY),
            "header" => {
                let (name, value) = v.split_once(':').ok_or_else(|| bad(format!("header must be Name:Value, got {v:?}")))?;
                let name = HeaderName::try_from(name.trim()).map_err(|_| bad(format!("bad header name {name:?}")))?;
                let value = HeaderValue::try_from(value.trim()).map_err(|_| bad(format!("bad header value {value:?}")))?;
                headers.push((name, value));
            }
            "body" => fixed_body = Some(v.into_owned()),
            "file" => {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') || v.starts_with('.') {
                    return Err(bad(format!("bad file name {v:?}")));
                }
                let bytes = std::fs::read(format!("{FIXTURES}/{v}")).map_err(|_| AppError::NotFound(format!("fixture {v}")))?;
                let media = match v.rsplit('.').next() {
                    Some("png") => "image/png",
                    Some("jpg") => "image/jpeg",
                    Some("gif") => "image/gif",
                    Some("webp") => "image/webp",
                    Some("avif") => "image/avif",
                    _ => "application/octet-stream",
                };
                headers.insert(0, (HeaderName::from_static("content-type"), HeaderValue::from_static(media)));
                fixed_file = Some(Bytes::from(bytes));
            }
            "repeat" => repeat = v.parse().map_err(|_| bad(format!("bad repeat {v:?}")))?,
            "then_header" => {
                let (name, value) = v.split_once(':').ok_or_else(|| bad(format!("then_header must be Name:Value, got {v:?}")))?;
                let name = HeaderName::try_from(name.trim()).map_err(|_| bad(format!("bad header name {name:?}")))?;
                let value = HeaderValue::try_from(value.trim()).map_err(|_| bad(format!("bad header value {value:?}")))?;
                then_headers.push((name, value));
            }
            "after" => after = Some(v.parse().map_err(|_| bad(format!("bad after {v:?}")))?),
            "then_status" => then_status = Some(v.parse::<u16>().ok().and_then(|s| StatusCode::from_u16(s).ok()).ok_or_else(|| bad(format!("bad then_status {v:?}")))?),
            _ => {}
        }
    }
    if after.is_some_and(|a| hit > a) {
        status = then_status.unwrap_or(status);
        for (name, value) in then_headers {
            headers.retain(|(n, _)| *n != name);
            headers.push((name, value));
        }
    }
    // Read the whole request body (bounded) so the echo can report its size: proves the edge
    // streamed every byte through.
    let received = axum::body::to_bytes(body, MAX_ECHO_BODY).await.map_err(|_| AppError::Client(StatusCode::PAYLOAD_TOO_LARGE, "body too large".into()))?;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let etag = headers.iter().find(|(n, _)| n == "etag").and_then(|(_, v)| v.to_str().ok());
    let conditional = (parts.method == Method::GET || parts.method == Method::HEAD) && etag.is_some() && is_not_modified(&parts.headers, Validators { etag, last_modified: None });
    let mut res = if conditional {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some(bytes) = fixed_file {
        (status, bytes).into_response()
    } else if let Some(text) = fixed_body {
        if text.len().saturating_mul(repeat) > MAX_ECHO_BODY {
            return Err(bad("body × repeat exceeds 64 MiB".into()));
        }
        (status, Bytes::from(text.repeat(repeat))).into_response()
    } else {
        let request_headers: HashMap<&str, &str> = parts.headers.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
        let echo = serde_json::json!({
            "method": parts.method.as_str(),
            "path": path,
            "query": parts.uri.query(),
            "hits": hit,
            "headers": request_headers,
            "body_bytes": received.len(),
        });
        (status, Json(echo)).into_response()
    };
    // The first `header=` for a name replaces the default; later ones add values.
    let mut seen: Vec<HeaderName> = Vec::new();
    for (name, value) in headers {
        if seen.contains(&name) {
            res.headers_mut().append(name, value);
        } else {
            res.headers_mut().insert(name.clone(), value);
            seen.push(name);
        }
    }
    Ok(res)
}

async fn hits(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let path = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "path")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| AppError::Client(StatusCode::BAD_REQUEST, "path query parameter is required".into()))?;
    let n = lab(&state)?.hits.lock().map_err(|_| AppError::Internal("lock".into()))?.get(&path).copied().unwrap_or(0);
    Ok(([("cache-control", "no-store")], Json(serde_json::json!({ "path": path, "hits": n }))).into_response())
}

async fn reset(State(state): State<AppState>) -> Result<Response, AppError> {
    lab(&state)?.hits.lock().map_err(|_| AppError::Internal("lock".into()))?.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}
