//! The glue's one error type: a core [`EdgeError`] (status and public message decided in the
//! core), with `From<worker::Error>` so a failed platform call raised with `?` becomes a 500
//! that still goes through `finish` (security headers, request id, metrics) instead of
//! escaping `#[event(fetch)]` as the runtime's bare 500.

use super::context::Incoming;
use super::observe;
use super::response::EdgeResponse;
use crate::error::{EdgeError, ErrorSource};
use http::{HeaderMap, HeaderName, HeaderValue};

/// An error on the way to a response.
#[derive(Debug)]
pub struct AppError(pub EdgeError);

impl From<worker::Error> for AppError {
    fn from(e: worker::Error) -> Self {
        Self(EdgeError::Internal(e.to_string()))
    }
}

impl From<EdgeError> for AppError {
    fn from(e: EdgeError) -> Self {
        Self(e)
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        Self(EdgeError::Internal(e.to_string()))
    }
}

/// The glue's result type.
pub type EdgeResult<T> = std::result::Result<T, AppError>;

/// The client's response for an error, logged once with the request id (server-side faults
/// only; client errors are the client's business).
pub fn response(inc: &Incoming, e: &EdgeError) -> EdgeResponse {
    if e.source() != ErrorSource::Client {
        match e.detail() {
            Some(d) => observe::error(Some(&inc.request_id), format_args!("{} {} ({}): {e}: {d}", inc.method, inc.path, e.source().as_str())),
            None => observe::error(Some(&inc.request_id), format_args!("{} {} ({}): {e}", inc.method, inc.path, e.source().as_str())),
        }
    }
    let (content_type, body) = e.body(inc.accept(), &inc.path);
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in e.headers() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    // `status()` is 400-599 by construction, so the platform response can be built.
    EdgeResponse::new(&inc.method, e.status(), headers, worker::ResponseBody::Body(body.into_bytes()), false)
}
