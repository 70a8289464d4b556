//! `lookup`: the cache state machine (pingora-cache's `HttpCache` phases). What a stored entry
//! found for a request allows ([`phase`]), what a revalidation's answer means
//! ([`after_revalidation`]: one table, for a client waiting and for a background refresh alike),
//! and how a stored entry is answered ([`serve_stored`]).

use crate::cache::meta::{CacheMeta, Freshness};
use crate::cache::policy::{self, Cacheability};
use crate::cache::status::{CacheOutcome, StatusDetail};
use crate::cache::stored::{self, served_headers};
use crate::error::EdgeError;
use crate::rules::Rule;
use http::HeaderMap;

/// What to do with an entry found in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fresh: serve it (`HIT`).
    Hit,
    /// Stale within stale-while-revalidate: serve it now (`UPDATING`), refresh in the
    /// background (RFC 5861 §3).
    ServeAndRefresh,
    /// Stale otherwise: revalidate with the origin first (RFC 9111 §4.3); `if_error`: the
    /// stale copy may answer if the origin fails (RFC 5861 §4).
    Revalidate {
        /// Inside stale-if-error.
        if_error: bool,
    },
}

/// The phase of an entry at `now`.
pub fn phase(meta: &CacheMeta, now: u64) -> Phase {
    match meta.freshness(now) {
        Freshness::Fresh => Phase::Hit,
        Freshness::Stale { while_revalidate: true, .. } => Phase::ServeAndRefresh,
        Freshness::Stale { if_error, .. } => Phase::Revalidate { if_error },
    }
}

/// What the origin's answer to a revalidation means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revalidation {
    /// Keep serving the stored copy (`STALE`): the origin failed, or answered 5xx, inside
    /// stale-if-error. `fwd_status`: what it answered, if anything.
    UseStale {
        /// The origin's status, or the edge's error status when it did not answer.
        fwd_status: u16,
    },
    /// `304`: the stored copy is good again with the 304's headers merged in
    /// ([`refresh_after_304`]).
    NotModified,
    /// A full answer replaces the entry (`EXPIRED`; stored if it may be).
    Replace,
    /// The origin failed and no stale copy may answer: the error goes to the client.
    Fail,
}

/// The revalidation table. `answer`: the origin's status, or why there was none.
pub fn after_revalidation(answer: Result<u16, &EdgeError>, if_error: bool) -> Revalidation {
    match answer {
        Err(e) if if_error && e.stale_may_answer() => Revalidation::UseStale { fwd_status: e.status() },
        Err(_) => Revalidation::Fail,
        Ok(304) => Revalidation::NotModified,
        Ok(s) if s >= 500 && if_error => Revalidation::UseStale { fwd_status: s },
        Ok(_) => Revalidation::Replace,
    }
}

/// A stored entry refreshed by a 304: the merged headers (RFC 9111 §4.3.4) and whether (and
/// how) it may be stored again.
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    /// The stored headers with the 304's merged in.
    pub headers: HeaderMap,
    /// Store again with this meta, or why not (it is still served, once).
    pub decision: Cacheability,
    /// The storage lifetime when stored.
    pub ttl_secs: u64,
}

/// Folds a 304 into the stale entry and judges the result as the origin's answer.
pub fn refresh_after_304(rule: &Rule, path: &str, request: &HeaderMap, stale: &CacheMeta, stale_headers: &HeaderMap, not_modified: &HeaderMap, now: u64) -> Refreshed {
    let headers = policy::merge_304(stale_headers, not_modified);
    let decision = policy::response_cacheability(rule, path, request, stale.status, &headers, now);
    let ttl_secs = match &decision {
        Cacheability::Store(meta) => meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&headers)),
        Cacheability::Skip(_) => 0,
    };
    Refreshed { headers, decision, ttl_secs }
}

/// How a stored entry is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The status: the stored one, or 304 when the client's validators match.
    pub status: u16,
    /// The client's headers.
    pub headers: HeaderMap,
    /// The body is already encoded as `Content-Encoding` says (send it as is).
    pub manual: bool,
    /// Whether the stored body is sent (not for a 304).
    pub with_body: bool,
}

/// Answers from a stored entry at `now`: `Age`, the cache's status, the browser TTL, the
/// encoding, and a 304 when the client's validators match (RFC 9110 §13.2).
pub fn serve_stored(rule: &Rule, meta: &CacheMeta, stored: &HeaderMap, request: &HeaderMap, now: u64, outcome: CacheOutcome, detail: &StatusDetail<'_>) -> Served {
    let mut headers = served_headers(stored, meta, rule, now, outcome, detail);
    let manual = crate::transform::serve_encoding(request, &mut headers, rule.csp_nonce);
    if stored::not_modified(request, meta.status, &mut headers, now) {
        return Served { status: 304, headers, manual: false, with_body: false };
    }
    Served { status: meta.status, headers, manual, with_body: true }
}

/// The `Cache-Status` detail for serving an entry (its freshness left).
pub fn hit_detail(meta: &CacheMeta, now: u64, detail: Option<&'static str>) -> StatusDetail<'static> {
    StatusDetail { ttl: Some(meta.ttl_secs(now)), detail, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::meta::META_VERSION;
    use http::HeaderValue;

    fn meta(fresh: u64, swr: u64, sie: u64) -> CacheMeta {
        CacheMeta { v: META_VERSION, status: 200, stored_at: 0, initial_age: 0, fresh, swr, sie, revalidate: false, must_revalidate: false, tags: vec![], vary: vec![], path: "/p".into(), rule: "r".into(), index: false }
    }

    #[test]
    fn phases_by_freshness_and_windows() {
        let m = meta(10_000, 5_000, 60_000);
        assert_eq!(phase(&m, 9_999), Phase::Hit);
        assert_eq!(phase(&m, 12_000), Phase::ServeAndRefresh);
        assert_eq!(phase(&m, 20_000), Phase::Revalidate { if_error: true });
        assert_eq!(phase(&m, 80_000), Phase::Revalidate { if_error: false });
        let strict = CacheMeta { must_revalidate: true, ..m };
        assert_eq!(phase(&strict, 12_000), Phase::Revalidate { if_error: false }, "must-revalidate: never stale");
    }

    #[test]
    fn one_revalidation_table() {
        use Revalidation::*;
        let down = EdgeError::OriginUnreachable;
        let refused = EdgeError::MethodNotSupported("TRACE".into());
        let rows: [(Result<u16, &EdgeError>, bool, Revalidation); 9] = [
            (Err(&down), true, UseStale { fwd_status: 502 }),
            (Err(&down), false, Fail),
            (Err(&refused), true, Fail),
            (Ok(304), true, NotModified),
            (Ok(304), false, NotModified),
            (Ok(503), true, UseStale { fwd_status: 503 }),
            (Ok(503), false, Replace),
            (Ok(200), true, Replace),
            (Ok(404), true, Replace),
        ];
        for (answer, if_error, want) in rows {
            assert_eq!(after_revalidation(answer, if_error), want, "{answer:?} if_error={if_error}");
        }
    }

    #[test]
    fn a_304_refreshes_the_entry() {
        let rule = Rule::default_rule();
        let mut stored = HeaderMap::new();
        stored.insert("etag", HeaderValue::from_static("\"v\""));
        stored.insert("cache-control", HeaderValue::from_static("max-age=1"));
        let mut nm = HeaderMap::new();
        nm.insert("cache-control", HeaderValue::from_static("max-age=60"));
        let r = refresh_after_304(&rule, "/p", &HeaderMap::new(), &meta(1_000, 0, 0), &stored, &nm, 5_000);
        assert_eq!(r.headers["cache-control"], "max-age=60");
        let Cacheability::Store(m) = r.decision else { panic!("stored again") };
        assert_eq!((m.fresh, m.stored_at), (60_000, 5_000));
        assert!(r.ttl_secs >= 60);
    }

    #[test]
    fn stored_entries_answer_304_to_matching_validators() {
        let rule = Rule::default_rule();
        let mut stored = HeaderMap::new();
        stored.insert("etag", HeaderValue::from_static("\"v\""));
        stored.insert("content-length", HeaderValue::from_static("3"));
        let m = meta(60_000, 0, 0);
        let s = serve_stored(&rule, &m, &stored, &HeaderMap::new(), 1_000, CacheOutcome::Hit, &hit_detail(&m, 1_000, None));
        assert_eq!((s.status, s.with_body, s.headers["x-cache"].to_str().unwrap()), (200, true, "HIT"));
        let mut inm = HeaderMap::new();
        inm.insert("if-none-match", HeaderValue::from_static("\"v\""));
        let s = serve_stored(&rule, &m, &stored, &inm, 1_000, CacheOutcome::Hit, &hit_detail(&m, 1_000, None));
        assert_eq!((s.status, s.with_body), (304, false));
        assert!(s.headers.get("content-length").is_none());
    }
}
