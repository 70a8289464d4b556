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

/// `Content-Length` as a number; `None` when absent or not a plain non-negative integer.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
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

/// Whether a client's `X-Request-Id` may be reused: 1 to 64 characters of `[A-Za-z0-9._-]`
/// (anything else could smuggle text into logs, so a new id is made instead).
pub fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether a response is an HTML page (`Content-Type: text/html`, any case and parameters).
pub fn is_html(headers: &http::HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers as map;

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
    fn request_ids() {
        assert!(valid_request_id("8c2f-01.ab_C"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id(&"a".repeat(65)));
    }

}
