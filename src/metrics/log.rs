//! One structured JSON line per request (Workers Logs and Logpush take `console.log` lines as
//! they are): who asked for what, under which rule, what the cache and the origin did, how long
//! it took, how big it was, and the rate-limit verdict. Nothing secret goes in: no header
//! values, no cookies, and the query string only where the rule says `log_query = true`.
//! Sampled by request id (so one request is logged whole or not at all), server errors always.

use serde::Serialize;

/// One request's log line.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLine<'a> {
    /// Unix ms at the start of the request.
    pub ts: u64,
    /// `X-Request-Id`.
    pub request_id: &'a str,
    /// The W3C trace id (see [`crate::trace`]).
    pub trace_id: &'a str,
    /// The rule name.
    pub rule: &'a str,
    /// The method.
    pub method: &'a str,
    /// The host asked for.
    pub host: &'a str,
    /// The path.
    pub path: &'a str,
    /// The query, only where the rule allows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<&'a str>,
    /// The status sent.
    pub status: u16,
    /// The cache outcome (`hit`, `miss`, `stale`, `bypass`, ...).
    pub cache: &'a str,
    /// The origin that answered, if one was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'a str>,
    /// Time to the response headers, ms.
    pub ms: f64,
    /// Time spent waiting for the origin, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_ms: Option<f64>,
    /// Request body bytes, when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Response body bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// `ok` or `limited`.
    pub limit: &'static str,
    /// `request.cf.country`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<&'a str>,
    /// `request.cf.colo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub colo: Option<&'a str>,
}

impl RequestLine<'_> {
    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One error or notice line: what went wrong (or was done) outside the request's own line,
/// with the request id when it belongs to a request, so the two can be joined.
#[derive(Debug, Clone, Serialize)]
pub struct EventLine<'a> {
    /// Unix ms.
    pub ts: u64,
    /// `error` or `info`.
    pub level: &'static str,
    /// The request it belongs to (`None`: cron, background shipping, isolate start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// What happened.
    pub msg: &'a str,
}

impl EventLine<'_> {
    /// The JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Whether a request is logged at `rate` (0..=1): always for a server error, else when the
/// request id falls in the sampled share (FNV-1a of the id, so the choice is stable).
pub fn sampled(request_id: &str, rate: f64, status: u16) -> bool {
    if status >= 500 || rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    let hash = request_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % 10_000) < (rate * 10_000.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>() -> RequestLine<'a> {
        RequestLine {
            ts: 1,
            request_id: "r1",
            trace_id: "t1",
            rule: "api",
            method: "GET",
            host: "example.com",
            path: "/api/tasks",
            query: None,
            status: 200,
            cache: "hit",
            origin: None,
            ms: 1.5,
            origin_ms: None,
            bytes_in: None,
            bytes_out: Some(10),
            limit: "ok",
            country: None,
            colo: None,
        }
    }

    #[test]
    fn a_line_is_one_json_object_without_empty_fields() {
        let json: serde_json::Value = serde_json::from_str(&line().to_json()).unwrap();
        assert_eq!((json["rule"].as_str(), json["status"].as_u64(), json["bytes_out"].as_u64()), (Some("api"), Some(200), Some(10)));
        assert!(json.get("query").is_none() && json.get("origin").is_none());
        assert!(!line().to_json().contains('\n'));
    }

    #[test]
    fn event_lines_carry_the_request_id_when_there_is_one() {
        let e = EventLine { ts: 5, level: "error", request_id: Some("r\"1"), msg: "cache put failed:\nquota" };
        let json: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!((json["request_id"].as_str(), json["msg"].as_str()), (Some("r\"1"), Some("cache put failed:\nquota")));
        assert!(!e.to_json().contains('\n'), "one line, whatever the message holds");
        let cron = EventLine { request_id: None, ..e };
        assert!(!cron.to_json().contains("request_id"));
    }

    #[test]
    fn sampling_is_stable_and_keeps_errors() {
        assert!(sampled("any", 1.0, 200) && !sampled("any", 0.0, 200) && sampled("any", 0.0, 502));
        let ids: Vec<String> = (0..10_000).map(|i| format!("{i:016x}")).collect();
        let kept = ids.iter().filter(|id| sampled(id, 0.1, 200)).count();
        assert!((800..1200).contains(&kept), "about a tenth: {kept}");
        assert!(ids.iter().all(|id| sampled(id, 0.1, 200) == sampled(id, 0.1, 200)));
    }
}
