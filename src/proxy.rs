//! Proxy policy: what the worker sends upstream and what it tells the client about errors.
//!
//! Pure functions over `http` types; the glue converts platform headers once at the edge.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy must not forward, plus `Host`, which the
/// fetch to the origin sets itself. `Upgrade` is kept for WebSocket handshakes.
const HOP_BY_HOP: [&str; 9] = [
    // Expectations are the edge's to meet (RFC 9110 §10.1.1): forwarded, `100-continue` makes
    // the origin send an interim 100 that the runtime surfaces as the final answer.
    "expect",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
];

/// `CF-Connecting-IP`: the client address as Cloudflare saw it.
pub const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");
/// `X-Forwarded-For`: the chain of client addresses.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Real-IP`: the client address (nginx convention). Sent as well because the Workers runtime
/// controls `CF-Connecting-IP` on outbound requests (workerd drops the one a worker sets).
pub const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// `X-Forwarded-Proto`: the scheme the client used.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the host the client asked for.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Request headers that steer some origins' routing or method but that no cache key covers, so a
/// response shaped by one could be stored and served to everyone (cache poisoning): stripped
/// before the origin by default (`strip_request_headers`; a rule keeps one with
/// `keep_request_headers`). `X-Forwarded-Host` and `X-Forwarded-Proto` are overwritten instead.
pub const DEFAULT_STRIPPED: [&str; 12] = [
    "x-original-url",
    "x-rewrite-url",
    "x-host",
    "x-forwarded-scheme",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-forwarded-ssl",
    "forwarded",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Methods never passed on: `CONNECT` asks for a tunnel, `TRACE` (and IIS's `TRACK`) echo the
/// request back, credentials included (cross-site tracing).
pub const REFUSED_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];

/// Whether a request method may go to the origin. Every other method, unknown extension
/// methods included (`PROPFIND`, `PURGE`), is passed on exactly as sent.
pub fn method_passable(method: &str) -> Result<(), crate::error::EdgeError> {
    match REFUSED_METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)) {
        Some(_) => Err(crate::error::EdgeError::MethodNotSupported(method.to_ascii_uppercase())),
        None => Ok(()),
    }
}

/// Whether the origin's status can be handed to the platform: 200-599, or 101 when the request
/// asked for a WebSocket and the runtime paired one. Anything else (an interim 1xx the runtime
/// surfaced as the answer, a status like 999) is answered 502: building a platform response
/// with it would abort the isolate.
pub fn passable_status(status: u16, websocket: bool) -> Result<(), crate::error::EdgeError> {
    match status {
        200..=599 => Ok(()),
        101 if websocket => Ok(()),
        other => Err(crate::error::EdgeError::OriginBadStatus(other)),
    }
}

/// Header names listed in `Connection` fields (lower case).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Removes hop-by-hop fields from an origin response, and every field its `Connection` names
/// (RFC 9110 §7.6.1), so none is stored or passed on.
pub fn strip_hop_by_hop(response: &mut HeaderMap) {
    for name in connection_listed(response) {
        response.remove(name.as_str());
    }
    for name in HOP_BY_HOP.iter().filter(|n| **n != "expect") {
        response.remove(*name);
    }
}

/// What the edge knows about the client connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo<'a> {
    /// The client IP from the platform (`CF-Connecting-IP`), never from client-supplied headers.
    pub ip: Option<&'a str>,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host the client asked for.
    pub host: Option<&'a str>,
}

/// Whether the request asks for a WebSocket upgrade (RFC 6455 §4.1).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The headers to send to the origin: the client's, minus hop-by-hop ones (and the headers
/// named in `Connection`) and `strip` (unkeyed routing headers, see [`DEFAULT_STRIPPED`]), plus
/// forwarding headers; `keep` (the rule's `keep_request_headers`) exempts names from `strip`.
/// `X-Forwarded-For` is appended to, as nginx's `$proxy_add_x_forwarded_for` does;
/// `CF-Connecting-IP` is set from the platform only.
pub fn upstream_headers(incoming: &HeaderMap, client: ClientInfo<'_>, strip: &[HeaderName], keep: &[HeaderName]) -> HeaderMap {
    let websocket = is_websocket_upgrade(incoming);
    let connection_listed: Vec<String> = connection_listed(incoming).into_iter().filter(|t| !(websocket && t == "upgrade")).collect();
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let n = name.as_str();
        let dropped = HOP_BY_HOP.contains(&n)
            || name == header::HOST
            || (name == header::UPGRADE && !websocket)
            || connection_listed.iter().any(|c| c == n)
            || name == CF_CONNECTING_IP
            || name == X_REAL_IP
            || (strip.contains(name) && !keep.contains(name));
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    if websocket {
        out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    }
    if let Some(ip) = client.ip.and_then(|ip| HeaderValue::from_str(ip).ok()) {
        let chain = match incoming.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prev) if !prev.trim().is_empty() => HeaderValue::from_str(&format!("{prev}, {}", client.ip.unwrap_or_default())).ok(),
            _ => Some(ip.clone()),
        };
        out.insert(CF_CONNECTING_IP, ip.clone());
        out.insert(X_REAL_IP, ip);
        if let Some(chain) = chain {
            out.insert(X_FORWARDED_FOR, chain);
        }
    }
    if let Ok(v) = HeaderValue::from_str(client.scheme) {
        out.insert(X_FORWARDED_PROTO, v);
    }
    if let Some(v) = client.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        out.insert(X_FORWARDED_HOST, v);
    }
    out
}

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

/// Shapes the upstream request. `strip`/`keep`: see [`upstream_headers`]; `request_id` is
/// passed on as `X-Request-Id`; `body`: what the client sent.
#[allow(clippy::too_many_arguments)]
pub fn upstream_request(method: &http::Method, incoming: &HeaderMap, body: ClientBody, client: ClientInfo<'_>, strip: &[HeaderName], keep: &[HeaderName], request_id: &str, purpose: UpstreamPurpose<'_>) -> UpstreamRequest {
    let mut headers = upstream_headers(incoming, client, strip, keep);
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
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), id);
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

/// The parts of `Server-Timing` (W3C Server Timing) the edge reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerTiming {
    /// From request to response headers at the edge, ms.
    pub total_ms: f64,
    /// Cache lookups (L1 and the Cache API), ms.
    pub cache_ms: Option<f64>,
    /// Waiting for origin response headers (all attempts), ms.
    pub origin_ms: Option<f64>,
    /// What rewrote the body (`minify`, `brotli`, `minify_brotli`, `image`), and its time when
    /// it ran before the headers (streamed rewrites run while the body is sent: no duration).
    pub transform: Option<(&'static str, Option<f64>)>,
}

impl ServerTiming {
    /// The header value: `edge` is the time spent at the edge itself (total minus origin).
    pub fn header(&self) -> String {
        let origin = self.origin_ms.unwrap_or(0.0).max(0.0);
        let mut s = format!("edge;dur={:.1}", (self.total_ms - origin).max(0.0));
        if let Some(c) = self.cache_ms {
            s.push_str(&format!(", cache;dur={:.1}", c.max(0.0)));
        }
        if self.origin_ms.is_some() {
            s.push_str(&format!(", origin;dur={origin:.1}"));
        }
        match self.transform {
            Some((stage, Some(ms))) => s.push_str(&format!(", transform;dur={:.1};desc=\"{stage}\"", ms.max(0.0))),
            Some((stage, None)) => s.push_str(&format!(", transform;desc=\"{stage}\"")),
            None => {}
        }
        s
    }
}

/// Whether a client's `X-Request-Id` may be reused: 1 to 64 characters of `[A-Za-z0-9._-]`
/// (anything else could smuggle text into logs, so a new id is made instead).
pub fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const CLIENT: ClientInfo<'static> = ClientInfo { ip: Some("203.0.113.7"), scheme: "https", host: Some("shop.example") };

    #[test]
    fn drops_hop_by_hop_and_connection_listed() {
        let inc = map(&[
            ("host", "shop.example"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("accept", "text/html"),
        ]);
        let out = upstream_headers(&inc, CLIENT, &[], &[]);
        for gone in ["host", "connection", "x-secret", "keep-alive", "te", "upgrade"] {
            assert!(!out.contains_key(gone), "{gone} forwarded");
        }
        assert_eq!(out["accept"], "text/html");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "shop.example");
    }

    #[test]
    fn client_ip_comes_from_platform_and_xff_is_appended() {
        let inc = map(&[("cf-connecting-ip", "6.6.6.6"), ("x-forwarded-for", "10.0.0.1")]);
        let out = upstream_headers(&inc, CLIENT, &[], &[]);
        assert_eq!(out["cf-connecting-ip"], "203.0.113.7");
        assert_eq!(out["x-real-ip"], "203.0.113.7");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 203.0.113.7");
        let out = upstream_headers(&HeaderMap::new(), CLIENT, &[], &[]);
        assert_eq!(out["x-forwarded-for"], "203.0.113.7");
        let spoofed = map(&[("cf-connecting-ip", "6.6.6.6"), ("x-real-ip", "6.6.6.6")]);
        let out = upstream_headers(&spoofed, ClientInfo { ip: None, ..CLIENT }, &[], &[]);
        assert!(!out.contains_key("cf-connecting-ip"), "spoofed client header must not pass");
        assert!(!out.contains_key("x-real-ip"), "spoofed client header must not pass");
    }

    #[test]
    fn expect_and_unkeyed_routing_headers_never_reach_the_origin() {
        let strip: Vec<HeaderName> = DEFAULT_STRIPPED.iter().map(|h| HeaderName::from_static(h)).collect();
        let mut pairs: Vec<(&str, &str)> = DEFAULT_STRIPPED.iter().map(|h| (*h, "/admin")).collect();
        pairs.extend([("expect", "100-continue"), ("x-forwarded-host", "evil.example"), ("x-forwarded-proto", "gopher"), ("accept", "*/*")]);
        let out = upstream_headers(&map(&pairs), CLIENT, &strip, &[]);
        for gone in DEFAULT_STRIPPED.iter().chain(&["expect"]) {
            assert!(!out.contains_key(*gone), "{gone} forwarded");
        }
        assert_eq!(out["x-forwarded-host"], "shop.example", "overwritten, not passed");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["accept"], "*/*");
        // A rule that keeps one by name.
        let keep = [HeaderName::from_static("x-http-method-override")];
        let out = upstream_headers(&map(&pairs), CLIENT, &strip, &keep);
        assert_eq!(out["x-http-method-override"], "/admin");
        assert!(!out.contains_key("x-original-url"));
    }

    #[test]
    fn upstream_requests_for_pass_and_fill() {
        let inc = map(&[("if-none-match", "\"c\""), ("range", "bytes=0-1"), ("expect", "100-continue"), ("x-original-url", "/admin")]);
        let strip = [HeaderName::from_static("x-original-url")];
        let streamed = ClientBody { present: true, declared: None, buffer_limit: 1 << 20 };
        let pass = upstream_request(&http::Method::from_bytes(b"PROPFIND").unwrap(), &inc, streamed, CLIENT, &strip, &[], "rid-1", UpstreamPurpose::Pass);
        assert_eq!(pass.method.as_str(), "PROPFIND", "extension methods are sent as they came");
        assert!(pass.body == BodyPlan::Streamed && !pass.retryable && !pass.counts_against_origin);
        assert_eq!((pass.headers["if-none-match"].to_str().unwrap(), pass.headers["x-request-id"].to_str().unwrap()), ("\"c\"", "rid-1"));
        assert!(!pass.headers.contains_key("expect") && !pass.headers.contains_key("x-original-url"));
        let get = upstream_request(&http::Method::GET, &HeaderMap::new(), streamed, CLIENT, &[], &[], "r", UpstreamPurpose::Pass);
        assert!(get.body == BodyPlan::None && get.retryable && get.counts_against_origin, "a GET's body is never sent");
        let small = ClientBody { present: true, declared: Some(512), buffer_limit: 1 << 20 };
        let put = upstream_request(&http::Method::PUT, &HeaderMap::new(), small, CLIENT, &[], &[], "r", UpstreamPurpose::Pass);
        assert!(put.body == BodyPlan::Buffered && put.retryable && !put.counts_against_origin, "a held body can be sent again, but a failure is not the origin's fault");
        let post = upstream_request(&http::Method::POST, &HeaderMap::new(), small, CLIENT, &[], &[], "r", UpstreamPurpose::Pass);
        assert!(post.body == BodyPlan::Buffered && !post.retryable, "POST is never repeated");
        assert_eq!(BodyPlan::for_length(Some(2 << 20), 1 << 20), BodyPlan::Streamed);
        assert_eq!(BodyPlan::for_length(Some(10), 0), BodyPlan::Streamed, "0 turns buffering off");
        let h = map(&[("content-length", "0")]);
        assert!(!ClientBody::from_headers(&h, 10).present);
        assert!(ClientBody::from_headers(&map(&[("transfer-encoding", "chunked")]), 10).present);
        let validators = [(header::IF_NONE_MATCH, HeaderValue::from_static("\"stored\""))];
        let fill = upstream_request(&http::Method::HEAD, &inc, ClientBody::NONE, CLIENT, &strip, &[], "r", UpstreamPurpose::Fill { validators: &validators });
        assert_eq!(fill.method, http::Method::GET, "a HEAD miss fills with a GET");
        assert_eq!(fill.headers["if-none-match"], "\"stored\"");
        assert!(!fill.headers.contains_key("range") && fill.body == BodyPlan::None && fill.retryable);
    }

    #[test]
    fn methods_and_statuses_that_cannot_pass() {
        for m in ["GET", "PROPFIND", "PURGE", "MKCOL", "BAN", "QUERY"] {
            assert!(method_passable(m).is_ok(), "{m}");
        }
        for m in ["TRACE", "connect", "TRACK"] {
            assert_eq!(method_passable(m).unwrap_err().status(), 405, "{m}");
        }
        for s in [200, 204, 304, 404, 599] {
            assert!(passable_status(s, false).is_ok(), "{s}");
        }
        for s in [100, 102, 103, 999, 600, 0] {
            assert_eq!(passable_status(s, false).unwrap_err().status(), 502, "{s}");
        }
        assert!(passable_status(101, true).is_ok());
        assert!(passable_status(101, false).is_err(), "a 101 without a WebSocket");
    }

    #[test]
    fn connection_listed_response_fields_are_removed() {
        let mut h = map(&[("connection", "x-secret, close"), ("x-secret", "1"), ("keep-alive", "timeout=5"), ("transfer-encoding", "chunked"), ("etag", "\"e\"")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["etag"], "\"e\"");
    }

    #[test]
    fn websocket_handshake_keeps_upgrade() {
        let inc = map(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        let out = upstream_headers(&inc, CLIENT, &[], &[]);
        assert_eq!(out["upgrade"], "websocket");
        assert_eq!(out["connection"], "Upgrade");
        assert_eq!(out["sec-websocket-key"], "k");
    }

    #[test]
    fn server_timing_format() {
        let t = ServerTiming { total_ms: 31.25, cache_ms: Some(0.5), origin_ms: Some(30.0), transform: Some(("minify_brotli", None)) };
        assert_eq!(t.header(), "edge;dur=1.2, cache;dur=0.5, origin;dur=30.0, transform;desc=\"minify_brotli\"");
        let t = ServerTiming { total_ms: -1.0, transform: Some(("image", Some(12.0))), ..Default::default() };
        assert_eq!(t.header(), "edge;dur=0.0, transform;dur=12.0;desc=\"image\"");
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id("8c2f-01.ab_C"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id(&"a".repeat(65)));
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
}
