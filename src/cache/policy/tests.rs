//! Table tests of the cache policy: (rule, request, response, now) -> decision, each row
//! citing the RFC section it checks.

use super::*;
use crate::test_support::headers as h;
use crate::test_support::rule;
use crate::cache::meta::Freshness;

const NOW: u64 = 1_700_000_000_000;

fn date(offset_secs: i64) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis((NOW as i64 + offset_secs * 1000) as u64))
}



fn respect() -> Rule {
    rule(serde_json::json!({}))
}

/// Expected outcome: Ok((fresh_secs, initial_age_secs)) or Err(reason).
type Want = Result<(u64, u64), NoCacheReason>;

fn check(why: &str, r: &Rule, req: &[(&str, &str)], status: u16, res: &[(&str, &str)], want: Want) {
    let got = response_cacheability(r, "/p", &h(req), status, &h(res), NOW);
    match (got, want) {
        (Cacheability::Store(m), Ok((fresh, age))) => {
            assert_eq!((m.fresh / 1000, m.initial_age / 1000), (fresh, age), "{why}");
        }
        (Cacheability::Skip(got), Err(want)) => assert_eq!(got, want, "{why}"),
        (got, want) => panic!("{why}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn respect_origin_freshness_table() {
    let r = respect();
    let d0 = date(0);
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, Vec<(&'a str, String)>, Want);
    let rows: Vec<Row> = vec![
        ("§5.2.2.10 s-maxage beats max-age", vec![], 200, vec![("cache-control", "max-age=10, s-maxage=60".into())], Ok((60, 0))),
        ("§5.2.2.1 max-age", vec![], 200, vec![("cache-control", "max-age=10".into())], Ok((10, 0))),
        ("§5.3 Expires minus Date", vec![], 200, vec![("date", d0.clone()), ("expires", date(120))], Ok((120, 0))),
        ("§5.3 invalid Expires is stale: needs a validator", vec![], 200, vec![("expires", "0".into())], Err(NoCacheReason::NoFreshness)),
        ("§5.3 invalid Expires with ETag is stored stale", vec![], 200, vec![("expires", "0".into()), ("etag", "\"a\"".into())], Ok((0, 0))),
        ("§5.2.2.1 max-age beats Expires", vec![], 200, vec![("cache-control", "max-age=5".into()), ("expires", date(999))], Ok((5, 0))),
        ("§4.2.2 heuristic: 10% of Date - Last-Modified", vec![], 200, vec![("date", d0.clone()), ("last-modified", date(-1000))], Ok((100, 0))),
        ("§4.2.2 heuristic capped at a day", vec![], 200, vec![("date", d0.clone()), ("last-modified", date(-10_000_000))], Ok((86_400, 0))),
        ("§4.2.2 no heuristic for 302", vec![], 302, vec![("last-modified", date(-1000))], Err(NoCacheReason::Status)),
        ("§3 explicit freshness makes 302 storable", vec![], 302, vec![("cache-control", "max-age=30".into())], Ok((30, 0))),
        ("§4.2.3 Age header counts", vec![], 200, vec![("cache-control", "max-age=60".into()), ("age", "15".into())], Ok((60, 15))),
        ("§4.2.3 apparent age from Date", vec![], 200, vec![("cache-control", "max-age=60".into()), ("date", date(-20)), ("age", "5".into())], Ok((60, 20))),
        ("§5.2.2.5 no-store", vec![], 200, vec![("cache-control", "max-age=60, no-store".into())], Err(NoCacheReason::NoStore)),
        ("§5.2.2.7 private", vec![], 200, vec![("cache-control", "private, max-age=60".into())], Err(NoCacheReason::Private)),
        ("§5.2.2.7 qualified private is still private here", vec![], 200, vec![("cache-control", "private=\"x\", max-age=60".into())], Err(NoCacheReason::Private)),
        ("§5.2.2.4 no-cache with validator: stored, revalidated each use", vec![], 200, vec![("cache-control", "no-cache".into()), ("etag", "\"v\"".into())], Ok((0, 0))),
        ("§5.2.2.4 no-cache without validator: useless to store", vec![], 200, vec![("cache-control", "no-cache".into())], Err(NoCacheReason::NoFreshness)),
        ("§4.1 Vary: * never matches", vec![], 200, vec![("cache-control", "max-age=60".into()), ("vary", "accept, *".into())], Err(NoCacheReason::VaryStar)),
        ("never share Set-Cookie", vec![], 200, vec![("cache-control", "max-age=60".into()), ("set-cookie", "s=1".into())], Err(NoCacheReason::SetCookie)),
        ("§3.5 Authorization without opt-in", vec![("authorization", "Bearer x")], 200, vec![("cache-control", "max-age=60".into())], Err(NoCacheReason::Authorization)),
        ("§3.5 Authorization with public", vec![("authorization", "Bearer x")], 200, vec![("cache-control", "public, max-age=60".into())], Ok((60, 0))),
        ("§3.5 Authorization with s-maxage", vec![("authorization", "Bearer x")], 200, vec![("cache-control", "s-maxage=60".into())], Ok((60, 0))),
        ("§3 206 is never stored", vec![], 206, vec![("cache-control", "max-age=60".into())], Err(NoCacheReason::Status)),
        ("§3 a 500 needs explicit freshness", vec![], 500, vec![], Err(NoCacheReason::Status)),
        ("§4.2.2 404 is heuristically cacheable but has no Last-Modified", vec![], 404, vec![], Err(NoCacheReason::NoFreshness)),
        ("§5.1 a list-valued Age uses its first member", vec![], 200, vec![("cache-control", "max-age=3600".into()), ("age", "7200, 0".into())], Ok((3600, 7200))),
        ("§5.1 two Age lines are a list too", vec![], 200, vec![("cache-control", "max-age=3600".into()), ("age", "7200".into()), ("age", "0".into())], Ok((3600, 7200))),
        ("§5.1 an invalid Age is ignored", vec![], 200, vec![("cache-control", "max-age=60".into()), ("age", "-5".into())], Ok((60, 0))),
        ("RFC 9110 §5.6.7 asctime Expires", vec![], 200, vec![("date", "Thu Aug  8 02:01:08 2050".into()), ("expires", "Thu Aug  8 02:01:18 2050".into())], Ok((10, 0))),
        ("RFC 9110 §5.6.7 RFC 850 Expires", vec![], 200, vec![("date", "Thu, 18 Aug 2050 02:01:08 GMT".into()), ("expires", "Thursday, 18-Aug-50 02:01:18 GMT".into())], Ok((10, 0))),
        ("RFC 9110 §5.6.7 names in any case", vec![], 200, vec![("date", "THU, 18 AUG 2050 02:01:08 gmt".into()), ("expires", "thu, 18 aug 2050 02:01:18 GMT".into())], Ok((10, 0))),
        ("§5.3 Expires in UTC is invalid", vec![], 200, vec![("date", d0.clone()), ("expires", "Thu, 18 Aug 2050 02:01:18 UTC".into()), ("etag", "\"e\"".into())], Ok((0, 0))),
        ("§5.3 two Expires lines are invalid", vec![], 200, vec![("date", d0.clone()), ("expires", date(60)), ("expires", date(120)), ("etag", "\"e\"".into())], Ok((0, 0))),
        ("§3 a 204 is storable like a 200", vec![], 204, vec![("cache-control", "max-age=60".into())], Ok((60, 0))),
        ("RFC 9213 CDN-Cache-Control stores what Cache-Control forbids", vec![], 200, vec![("cache-control", "no-store".into()), ("cdn-cache-control", "max-age=60".into())], Ok((60, 0))),
        ("RFC 9213 CDN-Cache-Control: private", vec![], 200, vec![("cache-control", "max-age=60".into()), ("cdn-cache-control", "private".into())], Err(NoCacheReason::Private)),
        ("RFC 9213 CDN-Cache-Control: no-store", vec![], 200, vec![("cache-control", "max-age=60".into()), ("cdn-cache-control", "no-store".into())], Err(NoCacheReason::NoStore)),
        ("RFC 9213 CDN-Cache-Control: no-cache needs a validator", vec![], 200, vec![("cache-control", "max-age=60".into()), ("cdn-cache-control", "no-cache".into())], Err(NoCacheReason::NoFreshness)),
        ("RFC 9213 §2.2 Expires is ignored with a targeted field", vec![], 200, vec![("date", d0.clone()), ("expires", date(600)), ("cdn-cache-control", "max-age=5".into())], Ok((5, 0))),
        ("RFC 9213 Cloudflare-CDN-Cache-Control beats CDN-Cache-Control", vec![], 200, vec![("cdn-cache-control", "max-age=60".into()), ("cloudflare-cdn-cache-control", "max-age=7".into())], Ok((7, 0))),
        ("RFC 9213 §2.1 an invalid targeted field is ignored", vec![], 200, vec![("cache-control", "max-age=9".into()), ("cdn-cache-control", "max-age=\"60".into())], Ok((9, 0))),
        ("Surrogate-Control max-age=N+M for the edge", vec![], 200, vec![("cache-control", "private".into()), ("surrogate-control", "max-age=30+60".into())], Ok((30, 0))),
    ];
    for (why, req, status, res, want) in rows {
        let res: Vec<(&str, &str)> = res.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check(why, &r, &req, status, &res, want);
    }
}

#[test]
fn override_mode_table() {
    let r = rule(serde_json::json!({ "cache": "override", "edge_ttl": 300, "status_ttl": { "404": 30, "503": 5 } }));
    check("override ignores max-age=0", &r, &[], 200, &[("cache-control", "max-age=0")], Ok((300, 0)));
    check("override ignores Age", &r, &[], 200, &[("age", "100")], Ok((300, 0)));
    let Cacheability::Store(m) = response_cacheability(&r, "/p", &h(&[]), 200, &h(&[("cache-control", "no-cache, must-revalidate")]), NOW) else { panic!() };
    assert!(!m.revalidate && !m.must_revalidate, "override owns freshness");
    assert_eq!(m.freshness(NOW + 1000), Freshness::Fresh);
    check("override still refuses no-store", &r, &[], 200, &[("cache-control", "no-store")], Err(NoCacheReason::NoStore));
    check("override still refuses private", &r, &[], 200, &[("cache-control", "private")], Err(NoCacheReason::Private));
    check("override still refuses Set-Cookie", &r, &[], 200, &[("set-cookie", "a=b")], Err(NoCacheReason::SetCookie));
    check("per-status TTL", &r, &[], 404, &[], Ok((30, 0)));
    check("per-status TTL makes 503 storable", &r, &[], 503, &[], Ok((5, 0)));
    check("other 5xx are not stored", &r, &[], 502, &[], Err(NoCacheReason::Status));
    check("errors get error_ttl (1 minute), not the edge TTL", &r, &[], 410, &[], Ok((60, 0)));
    check("a 204 is stored like a 200", &r, &[], 204, &[], Ok((300, 0)));
    let year = rule(serde_json::json!({ "cache": "override", "edge_ttl": "1y" }));
    check("a missing hashed asset is not pinned for a year", &year, &[], 404, &[], Ok((60, 0)));
    let ranges = rule(serde_json::json!({ "cache": "override", "edge_ttl": "1y", "error_ttl": "10s", "status_ttl": { "4xx": "2m", ">=500": "5s" } }));
    check("status class", &ranges, &[], 404, &[], Ok((120, 0)));
    check("status comparison makes 5xx storable", &ranges, &[], 502, &[], Ok((5, 0)));
    let fresh = rule(serde_json::json!({ "cache": "override", "edge_ttl": "1y", "error_ttl": "10s" }));
    check("error_ttl", &fresh, &[], 404, &[], Ok((10, 0)));
    check("RFC 9213 targeted private is still private in override", &year, &[], 200, &[("cdn-cache-control", "private")], Err(NoCacheReason::Private));
    let strip = rule(serde_json::json!({ "cache": "override", "edge_ttl": 60, "strip_set_cookie": true }));
    check("strip_set_cookie opts in", &strip, &[], 200, &[("set-cookie", "a=b")], Ok((60, 0)));
}

#[test]
fn stale_windows_from_rule_or_origin() {
    let r = respect();
    let Cacheability::Store(m) = response_cacheability(&r, "/p", &h(&[]), 200, &h(&[("cache-control", "max-age=10, stale-while-revalidate=20, stale-if-error=30")]), NOW) else { panic!() };
    assert_eq!((m.swr, m.sie), (20_000, 30_000), "RFC 5861 §3, §4");
    let r = rule(serde_json::json!({ "stale_while_revalidate": 5, "stale_if_error": "1d" }));
    let Cacheability::Store(m) = response_cacheability(&r, "/p", &h(&[]), 200, &h(&[("cache-control", "max-age=10, stale-while-revalidate=20")]), NOW) else { panic!() };
    assert_eq!((m.swr, m.sie), (5_000, 86_400_000), "the rule wins");
    let Cacheability::Store(m) = response_cacheability(&respect(), "/p", &h(&[]), 200, &h(&[("cache-control", "s-maxage=10, stale-if-error=60")]), NOW) else { panic!() };
    assert!(m.must_revalidate, "§5.2.2.10 s-maxage implies proxy-revalidate");
    assert_eq!(m.freshness(NOW + 11_000), Freshness::Stale { while_revalidate: false, if_error: false });
}

#[test]
fn tags_from_rule_and_origin() {
    let r = rule(serde_json::json!({ "cache": "override", "edge_ttl": 60, "tags": ["site"] }));
    let Cacheability::Store(m) = response_cacheability(&r, "/p", &h(&[]), 200, &h(&[("cache-tag", "a, b,site"), ("cache-tag", "c")]), NOW) else { panic!() };
    assert_eq!(m.tags, ["site", "a", "b", "c"]);
}

#[test]
fn request_bypass_reasons() {
    let r = rule(serde_json::json!({ "cache": "override", "edge_ttl": 60, "bypass_cookies": ["session"] }));
    let ok = |m: Method, hs: &[(&str, &str)]| request_cacheability(&m, &h(hs), &r);
    assert_eq!(ok(Method::GET, &[]), Ok(()));
    assert_eq!(ok(Method::HEAD, &[]), Ok(()));
    assert_eq!(ok(Method::POST, &[]), Err(NoCacheReason::Method));
    assert_eq!(ok(Method::GET, &[("cookie", "theme=dark; session=abc")]), Err(NoCacheReason::BypassCookie));
    assert_eq!(ok(Method::GET, &[("cookie", "sessionx=abc")]), Ok(()));
    assert_eq!(ok(Method::GET, &[("authorization", "Basic x")]), Err(NoCacheReason::Authorization));
    assert_eq!(ok(Method::GET, &[("upgrade", "websocket")]), Err(NoCacheReason::Upgrade));
    let b = rule(serde_json::json!({ "cache": "bypass" }));
    assert_eq!(request_cacheability(&Method::GET, &h(&[]), &b), Err(NoCacheReason::RuleBypass));
}

#[test]
fn stored_headers_and_304_merge() {
    let stored = headers_to_store(&h(&[
        ("content-type", "text/html"),
        ("set-cookie", "a=1"),
        ("cache-tag", "x"),
        ("connection", "close"),
        ("cache-control", "max-age=5, no-cache=\"x-debug\""),
        ("x-debug", "secret"),
        ("etag", "\"1\""),
    ]));
    assert!(stored.get("set-cookie").is_none() && stored.get("cache-tag").is_none() && stored.get("connection").is_none());
    assert!(stored.get("x-debug").is_none(), "§5.2.2.4 qualified no-cache field dropped");
    let merged = merge_304(&stored, &h(&[("cache-control", "max-age=99"), ("etag", "\"1\""), ("content-length", "0"), ("x-new", "y")]));
    assert_eq!(merged["cache-control"], "max-age=99");
    assert_eq!(merged["x-new"], "y");
    assert_eq!(merged["content-type"], "text/html");
    assert!(merged.get("content-length").is_none(), "§3.2 a 304's Content-Length never replaces the body's");
    let cond = revalidation_headers(&merged);
    assert_eq!(cond, vec![(header::IF_NONE_MATCH, HeaderValue::from_static("\"1\""))]);
}

#[test]
fn browser_ttl_rewrites_only_when_set_and_never_loosens_private() {
    let r = rule(serde_json::json!({ "cache": "override", "edge_ttl": 60, "browser_ttl": 30 }));
    assert_eq!(browser_cache_control(&r, &h(&[("cache-control", "max-age=0")]), 200).unwrap(), "public, max-age=30");
    assert_eq!(browser_cache_control(&r, &h(&[("cache-control", "max-age=9, immutable")]), 200).unwrap(), "public, max-age=30, immutable");
    assert_eq!(browser_cache_control(&r, &h(&[("cache-control", "private")]), 200), None);
    let zero = rule(serde_json::json!({ "browser_ttl": 0 }));
    assert_eq!(browser_cache_control(&zero, &h(&[]), 200).unwrap(), "no-cache");
    assert_eq!(browser_cache_control(&respect(), &h(&[("cache-control", "max-age=1")]), 200), None);
}

#[test]
fn errors_never_get_a_long_browser_ttl() {
    let year = rule(serde_json::json!({ "cache": "override", "edge_ttl": "1y", "browser_ttl": "1y" }));
    assert_eq!(browser_cache_control(&year, &h(&[("cache-control", "public, max-age=31536000, immutable")]), 404).unwrap(), "public, max-age=60");
    assert_eq!(browser_cache_control(&year, &h(&[]), 200).unwrap(), "public, max-age=31536000");
    let r = rule(serde_json::json!({ "cache": "override", "edge_ttl": "1y", "browser_ttl": "1y", "status_ttl": { "404": "5m" } }));
    assert_eq!(browser_cache_control(&r, &h(&[]), 404).unwrap(), "public, max-age=300", "the status's own edge TTL caps it");
    assert_eq!(browser_cache_control(&respect(), &h(&[("cache-control", "max-age=86400")]), 500).unwrap(), "public, max-age=60", "even the origin's own");
    assert_eq!(browser_cache_control(&respect(), &h(&[("cache-control", "max-age=30")]), 500), None, "a short one stays");
}

#[test]
fn invalidation_targets() {
    let res = h(&[("location", "/api/tasks/8"), ("content-location", "https://evil.example/x")]);
    let got = invalidation_paths(&Method::POST, StatusCode::CREATED, "/api/tasks", "shop.example", &res);
    assert_eq!(got, ["/api", "/api/tasks", "/api/tasks/8"].map(String::from), "§4.4 target, same-host Location; parent");
    let got = invalidation_paths(&Method::DELETE, StatusCode::NO_CONTENT, "/api/tasks/7", "h", &HeaderMap::new());
    assert_eq!(got, ["/api/tasks", "/api/tasks/7"].map(String::from));
    assert!(invalidation_paths(&Method::GET, StatusCode::OK, "/x", "h", &HeaderMap::new()).is_empty(), "safe methods invalidate nothing");
    assert!(invalidation_paths(&Method::POST, StatusCode::INTERNAL_SERVER_ERROR, "/x", "h", &HeaderMap::new()).is_empty(), "§4.4 only non-error responses");
}
