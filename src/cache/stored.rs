//! The shape of a stored response and of what a client is told.
//!
//! The Cache API applies its own HTTP semantics to what it stores (it refuses `private`,
//! `no-store`, `Set-Cookie`, honours `max-age`, matches `Vary`). To own the semantics, the
//! origin's `Cache-Control`, `Expires` and `Vary` are stored renamed, the real status and
//! freshness live in [`CacheMeta`], and the stored copy carries only a storage lifetime.

use super::meta::{CacheMeta, META_HEADER};
use super::policy::browser_cache_control;
use super::status::{cache_status, CacheOutcome, StatusDetail};
use crate::rules::Rule;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Renamed fields: (origin name, stored name). `Content-Encoding` is renamed so the platform
/// stores compressed bytes as opaque bytes and never re-encodes them.
const RENAMED: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "x-edgelayer-cc"),
    (header::EXPIRES, "x-edgelayer-expires"),
    (header::VARY, "x-edgelayer-vary"),
    (header::CONTENT_ENCODING, "x-edgelayer-ce"),
];

/// `X-Cache`: the short cache outcome.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// `Cache-Status` (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Headers for the stored copy: `headers` (already filtered by `headers_to_store`) with the
/// caching fields renamed, the meta attached and a storage lifetime for the platform.
pub fn to_storage(headers: &HeaderMap, meta: &CacheMeta, storage_ttl_secs: u64) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len() + 2);
    for (name, value) in headers {
        if name == header::AGE {
            continue;
        }
        match RENAMED.iter().find(|(n, _)| n == name) {
            Some((_, stored)) => out.append(HeaderName::from_static(stored), value.clone()),
            None => out.append(name.clone(), value.clone()),
        };
    }
    if let Ok(v) = HeaderValue::from_str(&meta.encode()) {
        out.insert(HeaderName::from_static(META_HEADER), v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={storage_ttl_secs}")) {
        out.insert(header::CACHE_CONTROL, v);
    }
    out
}

/// The meta and the origin's headers back from a stored copy; `None` when the entry was not
/// written by this version of edgelayer.
pub fn from_storage(stored: &HeaderMap) -> Option<(CacheMeta, HeaderMap)> {
    let meta = CacheMeta::decode(stored.get(META_HEADER)?.to_str().ok()?)?;
    let mut out = HeaderMap::with_capacity(stored.len());
    for (name, value) in stored {
        if name == header::CACHE_CONTROL || name.as_str() == META_HEADER {
            continue;
        }
        match RENAMED.iter().find(|(_, s)| *s == name.as_str()) {
            Some((origin, _)) => out.append(origin.clone(), value.clone()),
            None => out.append(name.clone(), value.clone()),
        };
    }
    Some((meta, out))
}

/// Marks a response (with `status`) with what the cache did, applies the rule's browser TTL,
/// and removes what is for this cache only: `Cache-Tag` and the targeted cache-control fields
/// (RFC 9213), which would otherwise steer caches downstream.
pub fn annotate(headers: &mut HeaderMap, rule: &Rule, status: u16, outcome: CacheOutcome, detail: &StatusDetail<'_>) {
    if let Some(cc) = browser_cache_control(rule, headers, status) {
        headers.insert(header::CACHE_CONTROL, cc);
        headers.remove(header::EXPIRES);
    }
    headers.remove(super::policy::CACHE_TAG);
    for name in super::control::TARGETED_FIELDS {
        headers.remove(name);
    }
    headers.insert(X_CACHE, HeaderValue::from_static(outcome.as_str()));
    if let Ok(v) = HeaderValue::from_str(&cache_status(outcome, detail)) {
        headers.insert(CACHE_STATUS, v);
    }
}

/// Whether a stored answer becomes a `304 Not Modified` for this request (RFC 9110 §13.2: only
/// for a stored 200 whose validators match the client's conditionals). A stored response
/// without `Last-Modified` is judged on its `Date` for `If-Modified-Since` (RFC 9111 §4.3.2).
/// When it is a 304, the fields describing the body are dropped from `headers`.
pub fn not_modified(request: &HeaderMap, status: u16, headers: &mut HeaderMap, now: u64) -> bool {
    let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok());
    let date_of = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| super::date::parse_http_date(v, now));
    let last_modified = date_of(header::LAST_MODIFIED).or_else(|| date_of(header::DATE)).map(|ms| std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    if status != 200 || !crate::conditional::is_not_modified(request, crate::conditional::Validators { etag, last_modified }) {
        return false;
    }
    for name in [header::CONTENT_LENGTH, header::CONTENT_TYPE, header::CONTENT_ENCODING] {
        headers.remove(name);
    }
    true
}

/// The request headers that select the identity variant of a stored response (no
/// `Accept-Encoding`): what a `Range` request is cut from.
pub fn identity_request(request: &HeaderMap) -> HeaderMap {
    let mut h = request.clone();
    h.remove(header::ACCEPT_ENCODING);
    h
}

/// Client headers for a response served from a stored entry at `now`: the stored headers,
/// `Age` (RFC 9111 §5.1), and [`annotate`].
pub fn served_headers(stored: &HeaderMap, meta: &CacheMeta, rule: &Rule, now: u64, outcome: CacheOutcome, detail: &StatusDetail<'_>) -> HeaderMap {
    let mut headers = stored.clone();
    headers.insert(header::AGE, HeaderValue::from(meta.age_secs(now)));
    annotate(&mut headers, rule, meta.status, outcome, detail);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::meta::META_VERSION;

    fn meta() -> CacheMeta {
        CacheMeta {
            v: META_VERSION,
            status: 404,
            stored_at: 10_000,
            initial_age: 0,
            fresh: 60_000,
            swr: 0,
            sie: 0,
            revalidate: false,
            must_revalidate: false,
            tags: vec![],
            vary: vec!["accept".into()],
            path: "/p".into(),
            rule: "default".into(),
            index: false,
        }
    }

    #[test]
    fn storage_roundtrip_hides_caching_fields_from_the_platform() {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static("private-ish, max-age=0"));
        h.insert("vary", HeaderValue::from_static("Accept"));
        h.insert("expires", HeaderValue::from_static("0"));
        h.insert("age", HeaderValue::from_static("9"));
        h.insert("etag", HeaderValue::from_static("\"e\""));
        h.insert("content-encoding", HeaderValue::from_static("br"));
        let stored = to_storage(&h, &meta(), 120);
        assert!(stored.get("content-encoding").is_none());
        assert_eq!(stored["cache-control"], "public, max-age=120");
        assert!(stored.get("vary").is_none() && stored.get("expires").is_none() && stored.get("age").is_none());
        let (m, back) = from_storage(&stored).unwrap();
        assert_eq!(m, meta());
        assert_eq!(back["cache-control"], "private-ish, max-age=0");
        assert_eq!(back["vary"], "Accept");
        assert_eq!(back["etag"], "\"e\"");
        assert_eq!(back["content-encoding"], "br");
        assert!(back.get(META_HEADER).is_none());
        assert!(from_storage(&h).is_none(), "foreign entries are ignored");
    }

    #[test]
    fn not_modified_only_for_matching_200s() {
        let mut request = HeaderMap::new();
        request.insert("if-none-match", HeaderValue::from_static("W/\"e\""));
        let stored = |h: &mut HeaderMap| {
            h.insert("etag", HeaderValue::from_static("W/\"e\""));
            h.insert("content-length", HeaderValue::from_static("10"));
            h.insert("content-type", HeaderValue::from_static("text/css"));
            h.insert("content-encoding", HeaderValue::from_static("br"));
        };
        let mut h = HeaderMap::new();
        stored(&mut h);
        assert!(not_modified(&request, 200, &mut h, 0));
        assert!(h.get("content-length").is_none() && h.get("content-type").is_none() && h.get("content-encoding").is_none());
        assert_eq!(h["etag"], "W/\"e\"");
        let mut h = HeaderMap::new();
        stored(&mut h);
        assert!(!not_modified(&request, 404, &mut h, 0), "only a stored 200 answers 304");
        assert!(!not_modified(&HeaderMap::new(), 200, &mut h, 0), "no conditional, no 304");
        assert_eq!(h["content-length"], "10", "untouched when not a 304");
    }

    #[test]
    fn if_modified_since_uses_the_stored_date_without_last_modified() {
        // RFC 9111 §4.3.2: the Date of the stored response stands in for Last-Modified.
        let mut stored = HeaderMap::new();
        stored.insert("date", HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        let ims = |v: &'static str| {
            let mut r = HeaderMap::new();
            r.insert("if-modified-since", HeaderValue::from_static(v));
            r
        };
        assert!(not_modified(&ims("Sun, 06 Nov 1994 08:49:37 GMT"), 200, &mut stored.clone(), 0));
        assert!(!not_modified(&ims("Sat, 05 Nov 1994 08:49:37 GMT"), 200, &mut stored.clone(), 0), "older than the copy");
        stored.insert("last-modified", HeaderValue::from_static("Mon, 07 Nov 1994 08:49:37 GMT"));
        assert!(!not_modified(&ims("Sun, 06 Nov 1994 08:49:37 GMT"), 200, &mut stored, 0), "Last-Modified wins when present");
    }

    #[test]
    fn served_headers_carry_age_and_status() {
        let rule = Rule::default_rule();
        let mut h = HeaderMap::new();
        h.insert("cache-tag", HeaderValue::from_static("secret-tag"));
        h.insert("cdn-cache-control", HeaderValue::from_static("max-age=60"));
        h.insert("surrogate-control", HeaderValue::from_static("max-age=60"));
        let out = served_headers(&h, &meta(), &rule, 25_000, CacheOutcome::Hit, &StatusDetail { ttl: Some(45), ..Default::default() });
        assert_eq!(out["age"], "15");
        assert_eq!(out["x-cache"], "HIT");
        assert_eq!(out["cache-status"], "edgelayer;hit;ttl=45");
        assert!(out.get("cache-tag").is_none(), "tags stay at the edge");
        assert!(out.get("cdn-cache-control").is_none() && out.get("surrogate-control").is_none(), "targeted fields stay at the edge");
    }
}
