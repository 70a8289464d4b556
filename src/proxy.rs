//! Proxy policy: what the worker sends upstream and what it tells the client about errors.
//!
//! Pure functions over `http` types; the glue converts platform headers once at the edge.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy must not forward, plus `Host`, which the
/// fetch to the origin sets itself. `Upgrade` is kept for WebSocket handshakes.
const HOP_BY_HOP: [&str; 8] = [
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
/// named in `Connection`), plus forwarding headers. `X-Forwarded-For` is appended to, as nginx's
/// `$proxy_add_x_forwarded_for` does; `CF-Connecting-IP` is set from the platform only.
pub fn upstream_headers(incoming: &HeaderMap, client: ClientInfo<'_>) -> HeaderMap {
    let websocket = is_websocket_upgrade(incoming);
    let connection_listed: Vec<String> = incoming
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !(websocket && t == "upgrade"))
        .collect();
    let mut out = HeaderMap::with_capacity(incoming.len() + 4);
    for (name, value) in incoming {
        let n = name.as_str();
        let dropped = HOP_BY_HOP.contains(&n)
            || name == header::HOST
            || (name == header::UPGRADE && !websocket)
            || connection_listed.iter().any(|c| c == n)
            || name == CF_CONNECTING_IP
            || name == X_REAL_IP;
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
        let out = upstream_headers(&inc, CLIENT);
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
        let out = upstream_headers(&inc, CLIENT);
        assert_eq!(out["cf-connecting-ip"], "203.0.113.7");
        assert_eq!(out["x-real-ip"], "203.0.113.7");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 203.0.113.7");
        let out = upstream_headers(&HeaderMap::new(), CLIENT);
        assert_eq!(out["x-forwarded-for"], "203.0.113.7");
        let spoofed = map(&[("cf-connecting-ip", "6.6.6.6"), ("x-real-ip", "6.6.6.6")]);
        let out = upstream_headers(&spoofed, ClientInfo { ip: None, ..CLIENT });
        assert!(!out.contains_key("cf-connecting-ip"), "spoofed client header must not pass");
        assert!(!out.contains_key("x-real-ip"), "spoofed client header must not pass");
    }

    #[test]
    fn websocket_handshake_keeps_upgrade() {
        let inc = map(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        let out = upstream_headers(&inc, CLIENT);
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
