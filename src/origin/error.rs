//! The origin's one error type; every handler failure becomes a JSON `{error, status}` response.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error a handler returns; its status decides the response, its message is public.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The client sent something unusable (status 4xx).
    #[error("{1}")]
    Client(StatusCode, String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A storage failure (details logged, message generic).
    #[error("database error")]
    Database(#[from] rusqlite::Error),
    /// Anything else internal.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Client(status, _) => *status,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        // axum picks the right 4xx: 400 bad syntax, 415 wrong content type, 413 too large,
        // 422 wrong shape.
        Self::Client(rejection.status(), rejection.body_text())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let body = Json(serde_json::json!({ "error": self.to_string(), "status": status.as_u16() }));
        (status, [("cache-control", "no-store")], body).into_response()
    }
}
