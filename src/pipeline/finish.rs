//! `finish`: the last step of every response that leaves the worker (proxied, stored, or the
//! edge's own answer): security headers, rate-limit headers, the CSP nonce decision, the
//! `Server-Timing` value, and the metrics record. The glue runs it once, on `http` headers,
//! just before the one conversion to the platform's.

use crate::cache::status::CacheOutcome;
use crate::cache::stored::X_CACHE;
use crate::metrics::aggregate::RequestRecord;
use crate::proxy::content_length;
use crate::rules::Rule;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Method;

/// Whether a response may carry a body: none for HEAD, 101, 204 and 304 (RFC 9110 §6.4.1).
pub fn body_allowed(method: &Method, status: u16) -> bool {
    *method != Method::HEAD && !matches!(status, 101 | 204 | 304)
}

/// What was decided for one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished<'a> {
    /// The nonce went into the CSP: the glue must stream the HTML body through the nonce pass.
    pub nonce_body: bool,
    /// The metrics record.
    pub record: RequestRecord<'a>,
}

/// Finishes a response with `status` and `headers` under `rule`. `nonce`: a fresh nonce when
/// [`crate::transform::wants_nonce`] said so; `extra`: rate-limit headers; `seconds`: time to
/// the response headers; `limited`: the rate limiter answered.
#[allow(clippy::too_many_arguments)]
pub fn finish<'a>(rule: &'a Rule, method: &Method, request: &HeaderMap, status: u16, headers: &mut HeaderMap, https: bool, nonce: Option<&str>, extra: &[(&'static str, String)], seconds: f64, limited: bool) -> Finished<'a> {
    let cache = CacheOutcome::metric_label(headers.get(X_CACHE).and_then(|v| v.to_str().ok()));
    let bytes_out = if body_allowed(method, status) { content_length(headers) } else { Some(0) };
    let record = RequestRecord { rule: &rule.name, cache, status, seconds, bytes_in: content_length(request), bytes_out, limited };
    if status == 101 {
        return Finished { nonce_body: false, record };
    }
    let nonced = crate::headers::apply(&rule.headers, headers, https, nonce);
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(HeaderName::from_static(k), v);
        }
    }
    if nonced {
        crate::transform::nonced_headers(headers);
    }
    Finished { nonce_body: nonced && *method != Method::HEAD, record }
}

/// `X-Request-Id` and `Server-Timing` (appended, so a `Server-Timing` of the origin stays).
pub fn stamp(headers: &mut HeaderMap, request_id: &str, timing: &ServerTiming) {
    if let Ok(v) = HeaderValue::from_str(&timing.header()) {
        headers.append(HeaderName::from_static("server-timing"), v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_format() {
        let t = ServerTiming { total_ms: 31.25, cache_ms: Some(0.5), origin_ms: Some(30.0), transform: Some(("minify_brotli", None)) };
        assert_eq!(t.header(), "edge;dur=1.2, cache;dur=0.5, origin;dur=30.0, transform;desc=\"minify_brotli\"");
        let t = ServerTiming { total_ms: -1.0, transform: Some(("image", Some(12.0))), ..Default::default() };
        assert_eq!(t.header(), "edge;dur=0.0, transform;dur=12.0;desc=\"image\"");
    }

    #[test]
    fn finish_counts_adds_headers_and_decides_the_nonce() {
        let mut rule = Rule::default_rule();
        rule.csp_nonce = true;
        let mut h = HeaderMap::new();
        h.insert("x-cache", HeaderValue::from_static("HIT"));
        h.insert("content-length", HeaderValue::from_static("120"));
        let extra = [("ratelimit", "\"default\";r=9;t=60".to_owned())];
        let f = finish(&rule, &Method::GET, &HeaderMap::new(), 200, &mut h, false, Some("abc"), &extra, 0.5, false);
        assert!(f.nonce_body);
        assert_eq!((f.record.cache, f.record.bytes_out, f.record.rule), ("hit", Some(120), "default"));
        assert!(h["content-security-policy"].to_str().unwrap().contains("'nonce-abc'"));
        assert_eq!(h["ratelimit"], "\"default\";r=9;t=60");
        let mut head = HeaderMap::new();
        head.insert("content-length", HeaderValue::from_static("120"));
        let f = finish(&rule, &Method::HEAD, &HeaderMap::new(), 200, &mut head, false, None, &[], 0.1, true);
        assert_eq!((f.record.bytes_out, f.record.limited, f.nonce_body), (Some(0), true, false));
        assert!(!body_allowed(&Method::GET, 304) && !body_allowed(&Method::GET, 204) && body_allowed(&Method::POST, 201));
    }

    #[test]
    fn stamp_appends_timing_and_sets_the_id() {
        let mut h = HeaderMap::new();
        h.insert("server-timing", HeaderValue::from_static("db;dur=3"));
        stamp(&mut h, "r-1", &ServerTiming { total_ms: 2.0, ..Default::default() });
        assert_eq!(h.get_all("server-timing").iter().count(), 2);
        assert_eq!(h["x-request-id"], "r-1");
    }
}
