//! `upstream`: the request the edge sends to the origin, decided from the client's (pingora's
//! `upstream_request_filter`, kept pure), and what of the origin's answer may be handed to the
//! platform at all.

use crate::error::EdgeError;
use crate::proxy::ClientInfo;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Why the edge sends a request to the origin.
#[derive(Debug, Clone, Copy)]
pub enum UpstreamPurpose<'a> {
    /// Passing the client's request on (method, conditionals, range and body as sent).
    Pass,
    /// Filling or revalidating the cache: a full response is wanted whatever the client
    /// asked, so `HEAD` becomes `GET`, the client's conditionals and range go, and the stored
    /// copy's validators (if revalidating) are added.
    Fill {
        /// `If-None-Match` / `If-Modified-Since` from the stored copy.
        validators: &'a [(HeaderName, HeaderValue)],
    },
}

/// The request to send to the origin, decided from the client's (pingora's
/// `upstream_request_filter`, kept pure).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    /// The method, extension methods (`PROPFIND`, `PURGE`) kept as sent.
    pub method: http::Method,
    /// The headers.
    pub headers: HeaderMap,
    /// How the client's body goes along (never for GET or HEAD, never for a fill).
    pub body: BodyPlan,
    /// Whether the pool may send it again elsewhere after an attempt got no answer: an
    /// idempotent method whose body (if any) is held in full.
    pub retryable: bool,
    /// Whether a failed attempt counts against the origin's breaker: only bodyless idempotent
    /// requests ([`crate::pool::retryable`]); a client cannot make those fail.
    pub counts_against_origin: bool,
}

/// How a request body is sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body.
    None,
    /// Read in full first (its declared length is at most `pool.buffer_body`), as nginx's
    /// `proxy_request_buffering` does: the origin gets the body in one write, so an origin that
    /// answers early (a 413, a 405) and closes still has its answer read; and the request can
    /// be sent again.
    Buffered,
    /// Streamed as it arrives (larger or of unknown length): nothing is held in memory.
    Streamed,
}

impl BodyPlan {
    /// The plan for a body of `declared` length (`None`: unknown, chunked) when bodies up to
    /// `buffer_limit` bytes are held (0: always stream).
    pub fn for_length(declared: Option<u64>, buffer_limit: u64) -> Self {
        match declared {
            Some(0) => Self::None,
            Some(n) if n <= buffer_limit => Self::Buffered,
            _ => Self::Streamed,
        }
    }
}

/// What the edge knows of the client's body: whether there is one, and its declared length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBody {
    /// The request carries a body (a length above 0, or chunked).
    pub present: bool,
    /// `Content-Length`, when declared.
    pub declared: Option<u64>,
    /// Bodies up to this many bytes are buffered (`pool.buffer_body`).
    pub buffer_limit: u64,
}

impl ClientBody {
    /// No body (fills, derived requests).
    pub const NONE: Self = Self { present: false, declared: None, buffer_limit: 0 };

    /// From the request headers.
    pub fn from_headers(headers: &HeaderMap, buffer_limit: u64) -> Self {
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        let present = match declared {
            Some(n) => n > 0,
            None => headers.contains_key(header::TRANSFER_ENCODING),
        };
        Self { present, declared, buffer_limit }
    }
}

/// The ids an origin request carries: `X-Request-Id`, and the `traceparent` of the edge's
/// span ([`crate::trace::TraceContext::outgoing`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestIds<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The `traceparent` to send (`None`: none).
    pub traceparent: Option<&'a str>,
}

/// Shapes the upstream request. `strip`/`keep`: see [`crate::proxy::upstream_headers`]; `request_id` is
/// passed on as `X-Request-Id`; `body`: what the client sent.
#[allow(clippy::too_many_arguments)]
pub fn upstream_request(method: &http::Method, incoming: &HeaderMap, body: ClientBody, client: ClientInfo<'_>, strip: &[HeaderName], keep: &[HeaderName], ids: &RequestIds<'_>, purpose: UpstreamPurpose<'_>) -> UpstreamRequest {
    let mut headers = crate::proxy::upstream_headers(incoming, client, strip, keep);
    let mut method = method.clone();
    let bodyless_method = method == http::Method::GET || method == http::Method::HEAD;
    let send_body = match purpose {
        UpstreamPurpose::Pass => body.present && !bodyless_method,
        UpstreamPurpose::Fill { validators } => {
            for h in &crate::cache::policy::FILL_REQUEST_STRIP {
                headers.remove(h);
            }
            for (k, v) in validators {
                headers.insert(k.clone(), v.clone());
            }
            if method == http::Method::HEAD {
                method = http::Method::GET;
            }
            false
        }
    };
    if let Ok(id) = HeaderValue::from_str(ids.request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), id);
    }
    // The edge's span becomes the origin's parent; `tracestate` passes as the client sent it.
    if let Some(tp) = ids.traceparent.and_then(|t| HeaderValue::from_str(t).ok()) {
        headers.insert(HeaderName::from_static("traceparent"), tp);
    }
    let plan = if send_body { BodyPlan::for_length(body.declared, body.buffer_limit).max_present() } else { BodyPlan::None };
    let retryable = method.is_idempotent() && plan != BodyPlan::Streamed;
    let counts_against_origin = crate::pool::retryable(&method, plan != BodyPlan::None);
    UpstreamRequest { method, headers, body: plan, retryable, counts_against_origin }
}

impl BodyPlan {
    /// A body known to be present is never planned as absent (`Content-Length: 0` aside, which
    /// [`ClientBody`] reports as no body).
    fn max_present(self) -> Self {
        if self == Self::None { Self::Streamed } else { self }
    }
}

/// Whether the origin's status can be handed to the platform: 200-599, or 101 when the request
/// asked for a WebSocket and the runtime paired one. Anything else (an interim 1xx the runtime
/// surfaced as the answer, a status like 999) is answered 502: building a platform response
/// with it would abort the isolate.
pub fn passable_status(status: u16, websocket: bool) -> Result<(), EdgeError> {
    match status {
        200..=599 => Ok(()),
        101 if websocket => Ok(()),
        other => Err(EdgeError::OriginBadStatus(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers as map;

    const CLIENT: ClientInfo<'static> = ClientInfo { ip: Some("203.0.113.7"), scheme: "https", host: Some("shop.example") };

    #[test]
    fn upstream_requests_for_pass_and_fill() {
        let inc = map(&[("if-none-match", "\"c\""), ("range", "bytes=0-1"), ("expect", "100-continue"), ("x-original-url", "/admin")]);
        let strip = [HeaderName::from_static("x-original-url")];
        let streamed = ClientBody { present: true, declared: None, buffer_limit: 1 << 20 };
        let pass = upstream_request(&http::Method::from_bytes(b"PROPFIND").unwrap(), &inc, streamed, CLIENT, &strip, &[], &RequestIds { request_id: "rid-1", traceparent: None }, UpstreamPurpose::Pass);
        assert_eq!(pass.method.as_str(), "PROPFIND", "extension methods are sent as they came");
        assert!(pass.body == BodyPlan::Streamed && !pass.retryable && !pass.counts_against_origin);
        assert_eq!((pass.headers["if-none-match"].to_str().unwrap(), pass.headers["x-request-id"].to_str().unwrap()), ("\"c\"", "rid-1"));
        assert!(!pass.headers.contains_key("expect") && !pass.headers.contains_key("x-original-url"));
        let mut traced = HeaderMap::new();
        traced.insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        traced.insert("tracestate", HeaderValue::from_static("vendor=1"));
        let edge_span = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01";
        let t = upstream_request(&http::Method::GET, &traced, ClientBody::NONE, CLIENT, &[], &[], &RequestIds { request_id: "r", traceparent: Some(edge_span) }, UpstreamPurpose::Pass);
        assert_eq!((t.headers["traceparent"].to_str().unwrap(), t.headers["tracestate"].to_str().unwrap()), (edge_span, "vendor=1"), "the edge's span is the origin's parent");
        let get = upstream_request(&http::Method::GET, &HeaderMap::new(), streamed, CLIENT, &[], &[], &RequestIds { request_id: "r", traceparent: None }, UpstreamPurpose::Pass);
        assert!(get.body == BodyPlan::None && get.retryable && get.counts_against_origin, "a GET's body is never sent");
        let small = ClientBody { present: true, declared: Some(512), buffer_limit: 1 << 20 };
        let put = upstream_request(&http::Method::PUT, &HeaderMap::new(), small, CLIENT, &[], &[], &RequestIds { request_id: "r", traceparent: None }, UpstreamPurpose::Pass);
        assert!(put.body == BodyPlan::Buffered && put.retryable && !put.counts_against_origin, "a held body can be sent again, but a failure is not the origin's fault");
        let post = upstream_request(&http::Method::POST, &HeaderMap::new(), small, CLIENT, &[], &[], &RequestIds { request_id: "r", traceparent: None }, UpstreamPurpose::Pass);
        assert!(post.body == BodyPlan::Buffered && !post.retryable, "POST is never repeated");
        assert_eq!(BodyPlan::for_length(Some(2 << 20), 1 << 20), BodyPlan::Streamed);
        assert_eq!(BodyPlan::for_length(Some(10), 0), BodyPlan::Streamed, "0 turns buffering off");
        let h = map(&[("content-length", "0")]);
        assert!(!ClientBody::from_headers(&h, 10).present);
        assert!(ClientBody::from_headers(&map(&[("transfer-encoding", "chunked")]), 10).present);
        let validators = [(header::IF_NONE_MATCH, HeaderValue::from_static("\"stored\""))];
        let fill = upstream_request(&http::Method::HEAD, &inc, ClientBody::NONE, CLIENT, &strip, &[], &RequestIds { request_id: "r", traceparent: None }, UpstreamPurpose::Fill { validators: &validators });
        assert_eq!(fill.method, http::Method::GET, "a HEAD miss fills with a GET");
        assert_eq!(fill.headers["if-none-match"], "\"stored\"");
        assert!(!fill.headers.contains_key("range") && fill.body == BodyPlan::None && fill.retryable);
    }

    #[test]
    fn statuses_that_cannot_pass() {
        for s in [200, 204, 304, 404, 599] {
            assert!(passable_status(s, false).is_ok(), "{s}");
        }
        for s in [100, 102, 103, 999, 600, 0] {
            assert_eq!(passable_status(s, false).unwrap_err().status(), 502, "{s}");
        }
        assert!(passable_status(101, true).is_ok());
        assert!(passable_status(101, false).is_err(), "a 101 without a WebSocket");
    }
}
