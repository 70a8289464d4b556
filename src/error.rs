//! The edge's one error type: everything the worker answers by itself when it cannot (or must
//! not) pass a request on. The status, the public message and extra headers are decided here;
//! the glue turns an [`EdgeError`] into a response that goes through the same last step as a
//! proxied one (security headers, request id, metrics), and logs [`EdgeError::detail`] once with
//! the request id. Internals never reach the client.

use crate::config::error::ConfigError;
use thiserror::Error;

/// Where a fault was (pingora's `ErrorSource`): it decides the status, whether a stale copy may
/// answer instead (origin faults only, RFC 5861 §4), and how loudly it is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The request was refused for what it is (method, size, credentials).
    Client,
    /// The origin did not answer, or answered something that cannot be passed on.
    Origin,
    /// The edge itself: configuration, bindings, platform calls.
    Internal,
}

impl ErrorSource {
    /// Lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Origin => "origin",
            Self::Internal => "internal",
        }
    }
}

/// Why the edge answers by itself. `Display` is the public message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The configuration does not validate (the message names the rule and field, so an
    /// operator sees it on the first request; it holds no secret).
    #[error("invalid edge configuration: {0}")]
    Config(ConfigError),
    /// A method no origin behind a proxy should get: `CONNECT` (a tunnel), `TRACE`/`TRACK`
    /// (they reflect credentials back). 405 without `Allow`, as nginx answers them.
    #[error("the {0} method is not supported here")]
    MethodNotSupported(String),
    /// A method the endpoint does not take; `allow` lists the ones it does.
    #[error("use {allow}")]
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: &'static str,
    },
    /// Credentials are missing or wrong; `challenge` is the `WWW-Authenticate` value.
    #[error("{message}")]
    Unauthorized {
        /// `WWW-Authenticate`.
        challenge: &'static str,
        /// What is required.
        message: &'static str,
    },
    /// An endpoint whose secret is not set.
    #[error("{what} is disabled: set the {secret} secret")]
    Disabled {
        /// The endpoint.
        what: &'static str,
        /// The secret's name.
        secret: String,
    },
    /// Any other client error with its status (400-499) and message.
    #[error("{1}")]
    Client(u16, String),
    /// No answer from the origin (connect failure, reset, timeout).
    #[error("origin unreachable")]
    OriginUnreachable,
    /// No answer to a request with a body: the runtime cannot tell a refused connect from an
    /// origin that refused the body and closed (what a server with a body limit does with an
    /// upload that is too large), so both are said. Never counted as an origin outage.
    #[error("origin unreachable, or it closed the connection while the request body was sent (it may refuse a body this large)")]
    OriginRefusedBody,
    /// The origin did not send response headers within `pool.timeout`.
    #[error("the origin did not answer in time")]
    OriginTimeout,
    /// The origin answered something the runtime could not parse (unknown `Transfer-Encoding`,
    /// a bad `Content-Length`).
    #[error("the origin sent a malformed response")]
    OriginMalformed,
    /// The origin's status cannot be passed on: outside 200-599, or an interim 1xx response
    /// the runtime surfaced as the answer (a `101` without a WebSocket included).
    #[error("the origin sent status {0}, which cannot be passed on")]
    OriginBadStatus(u16),
    /// Every origin's breaker is open and the last-resort attempt failed too.
    #[error("every origin is down; try again shortly")]
    AllDown {
        /// Seconds until a breaker lets a probe through.
        retry_after_secs: u64,
    },
    /// Any other origin or dependency failure with its status (500-599) and message.
    #[error("{1}")]
    Upstream(u16, String),
    /// A platform call failed; the detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl EdgeError {
    /// An error with a given status and public message: a client error for 4xx, an upstream
    /// one otherwise (image processing, dependencies).
    pub fn with_status(status: u16, message: impl Into<String>) -> Self {
        if (400..500).contains(&status) {
            Self::Client(status, message.into())
        } else {
            Self::Upstream(status, message.into())
        }
    }

    /// The response status (always 400-599, so building the response cannot fail).
    pub fn status(&self) -> u16 {
        match self {
            Self::Config(_) | Self::Internal(_) => 500,
            Self::MethodNotSupported(_) | Self::MethodNotAllowed { .. } => 405,
            Self::Unauthorized { .. } => 401,
            Self::Disabled { .. } | Self::AllDown { .. } => 503,
            Self::Client(s, _) => (*s).clamp(400, 499),
            Self::OriginUnreachable | Self::OriginRefusedBody | Self::OriginMalformed | Self::OriginBadStatus(_) => 502,
            Self::OriginTimeout => 504,
            Self::Upstream(s, _) => (*s).clamp(500, 599),
        }
    }

    /// Where the fault was.
    pub fn source(&self) -> ErrorSource {
        match self {
            Self::MethodNotSupported(_) | Self::MethodNotAllowed { .. } | Self::Unauthorized { .. } | Self::Client(..) => ErrorSource::Client,
            Self::OriginUnreachable
            | Self::OriginRefusedBody
            | Self::OriginTimeout
            | Self::OriginMalformed
            | Self::OriginBadStatus(_)
            | Self::AllDown { .. }
            | Self::Upstream(..) => ErrorSource::Origin,
            Self::Config(_) | Self::Disabled { .. } | Self::Internal(_) => ErrorSource::Internal,
        }
    }

    /// Whether a stored copy inside its stale-if-error window may answer instead (RFC 5861 §4:
    /// only when the origin failed).
    pub fn stale_may_answer(&self) -> bool {
        self.source() == ErrorSource::Origin
    }

    /// Extra response headers: `Allow`, `WWW-Authenticate`, `Retry-After`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MethodNotAllowed { allow } => vec![("allow", (*allow).to_owned())],
            Self::Unauthorized { challenge, .. } => vec![("www-authenticate", (*challenge).to_owned())],
            Self::AllDown { retry_after_secs } => vec![("retry-after", retry_after_secs.to_string())],
            _ => Vec::new(),
        }
    }

    /// What to log besides the public message (internal details), if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Internal(d) => Some(d),
            _ => None,
        }
    }

    /// The error body in the client's preferred form: `(content type, body)`.
    pub fn body(&self, accept: Option<&str>, path: &str) -> (&'static str, String) {
        error_body(accept, path, self.status(), &self.to_string())
    }
}

/// A short error body in the form the client prefers: JSON for API clients (an `Accept`
/// naming JSON, or an `/api/` path), HTML otherwise. Returns `(content type, body)`.
pub fn error_body(accept: Option<&str>, path: &str, status: u16, message: &str) -> (&'static str, String) {
    let wants_json = accept.is_some_and(|a| a.contains("json")) || path.starts_with("/api/");
    if wants_json {
        let body = serde_json::json!({ "error": message, "status": status }).to_string();
        ("application/json", body)
    } else {
        let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>{status}</title><h1>{status}</h1><p>{escaped}</p>\n"
        );
        ("text/html; charset=utf-8", body)
    }
}


impl From<ConfigError> for EdgeError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_stay_in_range_and_internals_stay_private() {
        assert_eq!(EdgeError::Client(200, "x".into()).status(), 400);
        assert_eq!(EdgeError::Client(999, "x".into()).status(), 499);
        assert_eq!(EdgeError::Upstream(404, "x".into()).status(), 500);
        let e = EdgeError::Internal("KV binding EDGE_KV: TypeError at 0x1234".into());
        assert_eq!(e.status(), 500);
        assert_eq!(e.to_string(), "internal error");
        let (_, body) = e.body(Some("application/json"), "/");
        assert!(!body.contains("0x1234") && body.contains("internal error"), "{body}");
        assert_eq!(e.detail(), Some("KV binding EDGE_KV: TypeError at 0x1234"));
    }

    #[test]
    fn error_body_negotiates_and_escapes() {
        let (ct, body) = error_body(Some("application/json"), "/", 502, "origin unreachable");
        assert_eq!(ct, "application/json");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"], 502);
        let (ct, _) = error_body(None, "/api/tasks", 502, "x");
        assert_eq!(ct, "application/json");
        let (ct, body) = error_body(Some("text/html"), "/", 502, "<b>");
        assert!(ct.starts_with("text/html"));
        assert!(body.contains("&lt;b&gt;") && !body.contains("<b>"));
    }

    #[test]
    fn origin_faults_allow_stale_and_carry_retry_after() {
        let down = EdgeError::AllDown { retry_after_secs: 7 };
        assert_eq!((down.status(), down.source()), (503, ErrorSource::Origin));
        assert!(down.stale_may_answer());
        assert_eq!(down.headers(), vec![("retry-after", "7".to_owned())]);
        assert_eq!(EdgeError::OriginBadStatus(999).to_string(), "the origin sent status 999, which cannot be passed on");
        assert!(!EdgeError::MethodNotSupported("TRACE".into()).stale_may_answer());
        assert_eq!(EdgeError::MethodNotAllowed { allow: "POST" }.headers(), vec![("allow", "POST".to_owned())]);
    }
}
