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

/// Marks a response with what the cache did and applies the rule's browser TTL.
pub fn annotate(headers: &mut HeaderMap, rule: &Rule, outcome: CacheOutcome, detail: &StatusDetail<'_>) {
    if let Some(cc) = browser_cache_control(rule, headers) {
        headers.insert(header::CACHE_CONTROL, cc);
        headers.remove(header::EXPIRES);
    }
    headers.remove(super::policy::CACHE_TAG);
    headers.insert(X_CACHE, HeaderValue::from_static(outcome.as_str()));
    if let Ok(v) = HeaderValue::from_str(&cache_status(outcome, detail)) {
        headers.insert(CACHE_STATUS, v);
    }
}

/// Client headers for a response served from a stored entry at `now`: the stored headers,
/// `Age` (RFC 9111 §5.1), and [`annotate`].
pub fn served_headers(stored: &HeaderMap, meta: &CacheMeta, rule: &Rule, now: u64, outcome: CacheOutcome, detail: &StatusDetail<'_>) -> HeaderMap {
    let mut headers = stored.clone();
    headers.insert(header::AGE, HeaderValue::from(meta.age_secs(now)));
    annotate(&mut headers, rule, outcome, detail);
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
    fn served_headers_carry_age_and_status() {
        let rule = Rule::default_rule();
        let mut h = HeaderMap::new();
        h.insert("cache-tag", HeaderValue::from_static("secret-tag"));
        let out = served_headers(&h, &meta(), &rule, 25_000, CacheOutcome::Hit, &StatusDetail { ttl: Some(45), ..Default::default() });
        assert_eq!(out["age"], "15");
        assert_eq!(out["x-cache"], "HIT");
        assert_eq!(out["cache-status"], "edgelayer; hit; ttl=45");
        assert!(out.get("cache-tag").is_none(), "tags stay at the edge");
    }
}
