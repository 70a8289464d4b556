//! `fill`: from an origin's answer to a plan, decided in one place and returned as a value:
//! how the body is transformed (minify, brotli and its quality), what is stored and for how
//! long, whether the key goes hit-for-pass, and the client's headers. The glue streams the body
//! through [`FillPlan::transform`], tees it into the store when [`FillPlan::store`] says so, and
//! answers with [`FillPlan::headers`].

use crate::cache::meta::CacheMeta;
use crate::cache::policy::{self, Cacheability, NoCacheReason};
use crate::cache::status::{CacheOutcome, StatusDetail};
use crate::cache::stored::annotate;
use crate::compress;
use crate::proxy::content_length;
use crate::rules::Rule;
use crate::transform::{self, TransformPlan};
use http::{HeaderMap, Method};

/// What becomes of the key's hit-for-pass mark in the isolate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitForPass {
    /// The answer was uncacheable for a reason that will likely hold: skip lookups and
    /// collapsing for this key until `until` (ms).
    Mark {
        /// When the mark ends.
        until: u64,
    },
    /// Cacheable (or uncacheable by chance): clear any mark.
    Clear,
    /// Not a cache fill: leave it.
    Keep,
}

/// A response to store.
#[derive(Debug, Clone, PartialEq)]
pub struct StorePlan {
    /// Its freshness and identity.
    pub meta: CacheMeta,
    /// The headers kept with it (hop-by-hop, `Set-Cookie` and `Cache-Tag` gone).
    pub headers: HeaderMap,
    /// How long the platform keeps it.
    pub ttl_secs: u64,
    /// What to learn from the page's body, when the whole body is read before the store
    /// ([`record_page_facts`]).
    pub page_facts: PageScan,
}

/// What a page's body is scanned for at the fill ([`crate::html::page_facts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageScan {
    /// A nonce page: mark it [`crate::headers::STRICT_STYLE`] when it needs no inline styles.
    pub strict_style: bool,
    /// Store up to this many `Link` preloads with it (Early Hints); 0: none.
    pub early_hints: usize,
}

impl PageScan {
    /// What `rule` wants learnt from an answer with `status` and `headers`: only for pages.
    pub fn of(rule: &Rule, status: u16, headers: &HeaderMap) -> Self {
        if status != 200 || !crate::proxy::is_html(headers) {
            return Self::default();
        }
        Self { strict_style: transform::wants_nonce(rule, status, headers), early_hints: rule.early_hints }
    }

    /// Whether there is anything to learn.
    pub fn wanted(&self) -> bool {
        self.strict_style || self.early_hints > 0
    }
}

/// Adds what `scan` asks to the stored headers of a page whose whole `body` was read: the
/// [`crate::headers::STRICT_STYLE`] mark when it needs no inline styles (later answers from the
/// entry drop `'unsafe-inline'` from `style-src`), and a `Link` preload for each of the first
/// resources it fetches from its origin (Cloudflare sends them as 103 Early Hints on later
/// answers), after the origin's own `Link` fields and never repeating one of their URLs.
pub fn record_page_facts(headers: &mut HeaderMap, body: &[u8], scan: PageScan) {
    headers.remove(crate::headers::STRICT_STYLE);
    headers.remove(crate::headers::NONCE_LENGTH);
    if !scan.wanted() {
        return;
    }
    let facts = crate::html::page_facts::scan([body]);
    if scan.strict_style && !facts.needs_inline_styles {
        headers.insert(crate::headers::STRICT_STYLE, http::HeaderValue::from_static("1"));
    }
    if let Some(len) = facts.nonce_len.filter(|_| scan.strict_style) {
        headers.insert(crate::headers::NONCE_LENGTH, http::HeaderValue::from(len));
    }
    let origin_links: Vec<String> = headers.get_all(http::header::LINK).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    let new = facts.preloads.iter().filter(|p| !origin_links.iter().any(|l| l.contains(&format!("<{}>", p.href))));
    for preload in new.take(scan.early_hints) {
        if let Ok(v) = http::HeaderValue::from_str(&preload.link_value()) {
            headers.append(http::header::LINK, v);
        }
    }
}

/// The plan for one origin answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FillPlan {
    /// The status sent.
    pub status: u16,
    /// What the body goes through.
    pub transform: TransformPlan,
    /// Brotli quality when [`FillPlan::transform`] brotli-encodes (q11 for what is stored,
    /// q5 per request).
    pub brotli_quality: u32,
    /// Store it, or not.
    pub store: Option<StorePlan>,
    /// The key's hit-for-pass mark.
    pub hit_for_pass: HitForPass,
    /// The client's headers.
    pub headers: HeaderMap,
    /// The body is sent already encoded (brotli made here).
    pub manual: bool,
}

/// Where the answer came from and what the cache did, for `X-Cache`/`Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// A cache fill: a miss (`vary_miss`: the key existed, the variant did not) or a stale
    /// entry replaced (`Expired`); `shared`: whether the response may be stored at all, and if
    /// not, why (credentials, bypass cookies: the request decided).
    Cache {
        /// `Miss` or `Expired`.
        outcome: CacheOutcome,
        /// See [`crate::cache::status::StatusDetail::vary_miss`].
        vary_miss: bool,
        /// See above.
        shared: Result<(), NoCacheReason>,
    },
    /// Passed through, never stored, for this reason.
    Pass(NoCacheReason),
}

/// What the edge knows of the request an answer is for.
#[derive(Debug, Clone, Copy)]
pub struct ForRequest<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// The path the entry is stored for.
    pub path: &'a str,
    /// The client's method.
    pub method: &'a Method,
    /// The client's headers.
    pub headers: &'a HeaderMap,
}

/// Plans an origin answer with `status` and `origin` headers (hop-by-hop fields already gone)
/// received at `now`.
pub fn plan(req: ForRequest<'_>, status: u16, origin: HeaderMap, now: u64, fill: Fill) -> FillPlan {
    let ForRequest { rule, path, method, headers: request } = req;
    let length = content_length(&origin);
    let transform = transform::plan(rule, request, method, status, &origin);
    let mut headers = origin;
    // Only the edge says a page needs no inline styles or how long its nonce is, from the
    // body it stored.
    headers.remove(crate::headers::STRICT_STYLE);
    headers.remove(crate::headers::NONCE_LENGTH);
    transform::apply_headers(&transform, &mut headers);
    let (decision, outcome, vary_miss, cache_fill) = match fill {
        Fill::Cache { outcome, vary_miss, shared: Ok(()) } => (policy::response_cacheability(rule, path, request, status, &headers, now), outcome, vary_miss, true),
        Fill::Cache { outcome, vary_miss, shared: Err(reason) } => (Cacheability::Skip(reason), outcome, vary_miss, true),
        Fill::Pass(reason) => (Cacheability::Skip(reason), CacheOutcome::Bypass, false, false),
    };
    let brotli_quality = compress::brotli_quality(matches!(decision, Cacheability::Store(_)), length);
    let hit_for_pass = match &decision {
        _ if !cache_fill => HitForPass::Keep,
        Cacheability::Skip(reason) if reason.is_sticky() => HitForPass::Mark { until: now + policy::HIT_FOR_PASS_MS },
        _ => HitForPass::Clear,
    };
    let detail = match &decision {
        Cacheability::Store(meta) => StatusDetail { ttl: Some(meta.ttl_secs(now)), fwd_status: Some(status), stored: true, vary_miss, ..Default::default() },
        Cacheability::Skip(reason) => StatusDetail { fwd_status: Some(status), detail: Some(reason.as_str()), vary_miss, ..Default::default() },
    };
    let store = match decision {
        Cacheability::Store(meta) => {
            let stored = policy::headers_to_store(&headers);
            let ttl_secs = meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&stored));
            let page_facts = PageScan::of(rule, status, &stored);
            Some(StorePlan { meta, headers: stored, ttl_secs, page_facts })
        }
        Cacheability::Skip(_) => None,
    };
    annotate(&mut headers, rule, status, outcome, &detail);
    let manual = transform::serve_encoding(request, &mut headers, rule.csp_nonce);
    FillPlan { status, transform, brotli_quality, store, hit_for_pass, headers, manual }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers as h;
    use crate::test_support::rule;

    const MISS: Fill = Fill::Cache { outcome: CacheOutcome::Miss, vary_miss: false, shared: Ok(()) };

    #[test]
    fn a_cacheable_page_is_minified_brotli_11_and_stored() {
        let r = rule(serde_json::json!({ "cache": "override", "edge_ttl": 300, "minify": true }));
        let req = h(&[("accept-encoding", "br")]);
        let for_req = ForRequest { rule: &r, path: "/", method: &Method::GET, headers: &req };
        let p = plan(for_req, 200, h(&[("content-type", "text/html"), ("content-length", "5000"), ("etag", "\"e\"")]), 1_000, MISS);
        assert!(p.transform.minify && p.manual);
        assert_eq!(p.brotli_quality, 11, "stored: compressed once, at q11");
        let store = p.store.expect("stored");
        assert_eq!((store.meta.fresh, store.headers["content-encoding"].to_str().unwrap()), (300_000, "br"));
        assert_eq!(p.hit_for_pass, HitForPass::Clear);
        assert_eq!(p.headers["etag"], "W/\"e\"");
        assert_eq!(p.headers["cache-status"], "edgelayer;fwd=uri-miss;fwd-status=200;ttl=300;stored");
    }

    #[test]
    fn uncacheable_answers_go_hit_for_pass_and_are_compressed_per_request() {
        let r = Rule::default_rule();
        let req = h(&[("accept-encoding", "br")]);
        let for_req = ForRequest { rule: &r, path: "/", method: &Method::GET, headers: &req };
        let p = plan(for_req, 200, h(&[("content-type", "application/json"), ("cache-control", "no-store")]), 1_000, MISS);
        assert!(p.store.is_none());
        assert_eq!(p.hit_for_pass, HitForPass::Mark { until: 1_000 + policy::HIT_FOR_PASS_MS });
        assert_eq!(p.brotli_quality, compress::brotli_quality(false, None));
        assert!(p.headers["cache-status"].to_str().unwrap().ends_with("detail=no-store"));
        let unshared = Fill::Cache { outcome: CacheOutcome::Miss, vary_miss: false, shared: Err(NoCacheReason::Authorization) };
        let p = plan(for_req, 200, h(&[("cache-control", "max-age=60")]), 1_000, unshared);
        assert!(p.store.is_none(), "the request decided: never shared");
        assert_eq!(p.hit_for_pass, HitForPass::Clear, "not the response's fault");
    }

    #[test]
    fn a_pass_is_annotated_and_never_stored() {
        let r = Rule::default_rule();
        let for_req = ForRequest { rule: &r, path: "/", method: &Method::POST, headers: &HeaderMap::new() };
        let p = plan(for_req, 201, h(&[("cache-control", "max-age=60")]), 0, Fill::Pass(NoCacheReason::Method));
        assert!(p.store.is_none());
        assert_eq!(p.hit_for_pass, HitForPass::Keep);
        assert_eq!(p.headers["x-cache"], "BYPASS");
        assert_eq!(p.headers["cache-status"], "edgelayer;fwd=bypass;fwd-status=201;detail=method");
    }

    #[test]
    fn page_facts_mark_strict_pages_and_store_preloads() {
        let page = br#"<head><link rel=stylesheet href=/a.css><script src=/a.js defer></script><script src=/b.js></script><script src=/c.js></script></head>"#;
        let mut stored = h(&[("content-type", "text/html"), ("link", "</a.css>; rel=preload; as=style"), (crate::headers::STRICT_STYLE, "1")]);
        record_page_facts(&mut stored, page, PageScan { strict_style: true, early_hints: 2 });
        assert_eq!(stored[crate::headers::STRICT_STYLE], "1");
        let links: Vec<_> = stored.get_all("link").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        assert_eq!(links, ["</a.css>; rel=preload; as=style", "</a.js>; rel=preload; as=script", "</b.js>; rel=preload; as=script"], "the origin's own first, none twice, at most 2 added");
        let mut styled = h(&[(crate::headers::STRICT_STYLE, "1")]);
        record_page_facts(&mut styled, b"<p style=x>", PageScan { strict_style: true, early_hints: 0 });
        assert!(!styled.contains_key(crate::headers::STRICT_STYLE), "an origin's mark is not kept");
        let mut own_nonce = h(&[(crate::headers::NONCE_LENGTH, "40")]);
        record_page_facts(&mut own_nonce, b"<script nonce=abcdefghijklmnopqrstuvwxyz01>x()</script>", PageScan { strict_style: true, early_hints: 0 });
        assert_eq!(own_nonce[crate::headers::NONCE_LENGTH], "28", "the page's own nonce length, not the origin's header");
        let mut off = HeaderMap::new();
        record_page_facts(&mut off, page, PageScan::default());
        assert!(off.is_empty());
        let r = rule(serde_json::json!({ "early_hints": true, "early_hints_max": 4 }));
        assert_eq!(PageScan::of(&r, 200, &h(&[("content-type", "text/html; charset=utf-8")])), PageScan { strict_style: false, early_hints: 4 });
        assert_eq!(PageScan::of(&r, 404, &h(&[("content-type", "text/html")])), PageScan::default(), "pages only");
        assert_eq!(PageScan::of(&r, 200, &h(&[("content-type", "text/css")])), PageScan::default());
    }
}
