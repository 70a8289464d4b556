//! Cache decisions (RFC 9111, shared cache), returned as values with reasons: may this request
//! use the cache, may this response be stored and for how long, what the client is told.
//! No I/O and no clock: `now` (Unix ms) comes in.

use super::control::{CacheControl, EdgeDirectives};
use super::meta::{CacheMeta, META_VERSION};
use crate::rules::{CacheMode, Rule};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

/// `Cache-Tag`: comma-separated purge tags from the origin (Cloudflare's header name).
pub const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// Heuristic freshness cap (RFC 9111 §4.2.2 suggests 10% of the time since Last-Modified).
pub const HEURISTIC_MAX_MS: u64 = 24 * 3600 * 1000;

/// Why something was not cached. `as_str` appears in `Cache-Status: detail=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoCacheReason {
    /// The rule says bypass.
    RuleBypass,
    /// Only GET and HEAD are served from cache.
    Method,
    /// A bypass cookie (e.g. a session) is present.
    BypassCookie,
    /// The request carries `Authorization` (RFC 9111 §3.5).
    Authorization,
    /// WebSocket or other upgrade.
    Upgrade,
    /// `Cache-Control: no-store` (§5.2.2.5).
    NoStore,
    /// `Cache-Control: private` (§5.2.2.7).
    Private,
    /// The response sets a cookie.
    SetCookie,
    /// `Vary: *` (§4.1).
    VaryStar,
    /// A status the cache does not store (206, 304, 1xx, or not cacheable without explicit
    /// freshness).
    Status,
    /// No freshness information and no validators.
    NoFreshness,
    /// A `Range` request no fresh stored copy could answer: passed to the origin.
    Range,
}

/// How long an isolate remembers that a key's response was uncacheable (Varnish's
/// hit-for-pass): such requests skip the cache lookup and collapsing and go straight to the
/// origin, whose answer is still judged each time (a cacheable one is stored at once).
pub const HIT_FOR_PASS_MS: u64 = 30_000;

impl NoCacheReason {
    /// Whether the reason comes from the response itself, so the next response for the same key
    /// is likely uncacheable too (grounds for hit-for-pass).
    pub fn is_sticky(&self) -> bool {
        matches!(self, Self::NoStore | Self::Private | Self::SetCookie | Self::VaryStar | Self::Status)
    }

    /// Short name for headers and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RuleBypass => "rule-bypass",
            Self::Method => "method",
            Self::BypassCookie => "bypass-cookie",
            Self::Authorization => "authorization",
            Self::Upgrade => "upgrade",
            Self::NoStore => "no-store",
            Self::Private => "private",
            Self::SetCookie => "set-cookie",
            Self::VaryStar => "vary-star",
            Self::Status => "status",
            Self::NoFreshness => "no-freshness",
            Self::Range => "range",
        }
    }
}

/// The decision on a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cacheability {
    /// Store, with this metadata.
    Store(CacheMeta),
    /// Do not store, for this reason.
    Skip(NoCacheReason),
}

/// Names of cookies sent in `Cookie` headers.
fn cookie_names(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split('=').next().map(str::trim))
}

/// May this request be answered from (and fill) the cache? `Err` says why not.
pub fn request_cacheability(method: &Method, headers: &HeaderMap, rule: &Rule) -> Result<(), NoCacheReason> {
    if matches!(rule.cache, CacheMode::Bypass) {
        return Err(NoCacheReason::RuleBypass);
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(NoCacheReason::Method);
    }
    if headers.contains_key(header::UPGRADE) {
        return Err(NoCacheReason::Upgrade);
    }
    if !rule.bypass_cookies.is_empty() && cookie_names(headers).any(|n| rule.bypass_cookies.iter().any(|b| b == n)) {
        return Err(NoCacheReason::BypassCookie);
    }
    // RFC 9111 §3.5 lets a shared cache reuse responses to authorised requests only when the
    // response opts in; we do not share them at all unless the rule says so.
    if headers.contains_key(header::AUTHORIZATION) && !rule.cache_authorized {
        return Err(NoCacheReason::Authorization);
    }
    Ok(())
}

/// Statuses cacheable by default (RFC 9110 §15.1), i.e. with heuristic freshness.
pub fn heuristically_cacheable(status: u16) -> bool {
    matches!(status, 200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
}

/// A date field as Unix ms; `None` when absent, invalid (RFC 9110 §5.6.7 forms only) or sent
/// more than once (a singleton field with two values cannot be trusted).
fn header_time(headers: &HeaderMap, name: HeaderName, now: u64) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    super::date::parse_http_date(first.to_str().ok()?, now)
}

/// `Age` in seconds: the first member when a list arrives (RFC 9111 §5.1: "a cache encountering
/// a message with a list-based Age field value SHOULD use the first member"); two `Age` lines,
/// which the runtime joins with a comma, are such a list. Invalid values count as 0.
pub fn age_secs(headers: &HeaderMap) -> u64 {
    let Some(first) = headers.get(header::AGE).and_then(|v| v.to_str().ok()) else { return 0 };
    let member = first.split(',').next().unwrap_or("").trim();
    if member.is_empty() || !member.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    member.parse::<u64>().unwrap_or(super::control::MAX_DELTA_SECONDS).min(super::control::MAX_DELTA_SECONDS)
}

/// Whether the response has a validator usable for revalidation.
pub fn has_validators(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED)
}

/// How long past its stale windows an entry is kept: long enough to revalidate it with a 304
/// when it has validators, briefly otherwise (so expiry shows as `EXPIRED`, not `MISS`).
pub fn keep_after_expiry_secs(stored: &HeaderMap) -> u64 {
    if has_validators(stored) { 3600 } else { 60 }
}

/// May this response be stored, and with what freshness? `request_headers` are the client's
/// (for `Authorization` and `Vary`), `now` is when the response arrived (Unix ms).
pub fn response_cacheability(rule: &Rule, path: &str, request_headers: &HeaderMap, status: u16, headers: &HeaderMap, now: u64) -> Cacheability {
    use Cacheability::Skip;
    if status == 206 || status == 304 || status < 200 {
        return Skip(NoCacheReason::Status);
    }
    // RFC 9213: a targeted field (CDN-Cache-Control and kin) replaces Cache-Control and
    // Expires for this cache.
    let edge = EdgeDirectives::from_headers(headers);
    let cc = &edge.cc;
    if cc.has("no-store") {
        return Skip(NoCacheReason::NoStore);
    }
    if cc.has("private") {
        return Skip(NoCacheReason::Private);
    }
    let vary: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    if vary.iter().any(|v| v == "*") {
        return Skip(NoCacheReason::VaryStar);
    }
    if headers.contains_key(header::SET_COOKIE) && !rule.strip_set_cookie {
        return Skip(NoCacheReason::SetCookie);
    }
    if request_headers.contains_key(header::AUTHORIZATION)
        && !rule.cache_authorized
        && !(cc.has("public") || cc.has("s-maxage") || cc.has("must-revalidate"))
    {
        return Skip(NoCacheReason::Authorization);
    }

    let date = header_time(headers, header::DATE, now);
    let (fresh, initial_age) = match rule.cache {
        CacheMode::Bypass => return Skip(NoCacheReason::RuleBypass),
        CacheMode::Override { edge_ttl } => {
            // Errors get `error_ttl` (short) unless `status_ttl` says otherwise: a 404 for a
            // hashed asset that is not deployed yet must not stay for the rule's year.
            let ttl = match rule.status_ttl.get(status) {
                Some(t) => t,
                None if heuristically_cacheable(status) && status >= 400 => rule.error_ttl,
                None if heuristically_cacheable(status) => edge_ttl,
                None => return Skip(NoCacheReason::Status),
            };
            // The edge TTL counts from when the edge got the response.
            (ttl.as_millis() as u64, 0)
        }
        CacheMode::RespectOrigin => {
            // §4.2.1: s-maxage, then max-age, then Expires - Date, then heuristics (§4.2.2).
            // (RFC 9213 §2.2: with a targeted field, Expires is ignored too.)
            let expires = headers.get(header::EXPIRES).filter(|_| edge.targeted.is_none());
            let explicit = cc.seconds("s-maxage").or_else(|| cc.seconds("max-age")).map(|s| s * 1000).or_else(|| {
                expires.map(|_| match (header_time(headers, header::EXPIRES, now), date) {
                    (Some(exp), Some(d)) => exp.saturating_sub(d),
                    (Some(exp), None) => exp.saturating_sub(now),
                    (None, _) => 0, // §5.3: an invalid Expires means already expired
                })
            });
            let fresh = match explicit {
                Some(f) => f,
                None if heuristically_cacheable(status) || cc.has("public") => header_time(headers, header::LAST_MODIFIED, now)
                    .map(|lm| (date.unwrap_or(now).saturating_sub(lm) / 10).min(HEURISTIC_MAX_MS))
                    .unwrap_or(0),
                None => return Skip(NoCacheReason::Status),
            };
            // §4.2.3 corrected initial age (response delay is not known here; omitted).
            let age_value = age_secs(headers) * 1000;
            let apparent = date.map_or(0, |d| now.saturating_sub(d));
            (fresh, apparent.max(age_value))
        }
    };
    // Override mode owns freshness: the origin's no-cache/must-revalidate do not apply (its
    // private/no-store/Set-Cookie still do, above).
    let respect = matches!(rule.cache, CacheMode::RespectOrigin);
    let revalidate = respect && matches!(cc.arg("no-cache"), Some(None));
    if (fresh == 0 || revalidate) && !has_validators(headers) {
        return Skip(NoCacheReason::NoFreshness);
    }
    let secs_ms = |rule_value: Option<std::time::Duration>, directive: &str| {
        rule_value.map(|d| d.as_millis() as u64).or_else(|| cc.seconds(directive).map(|s| s * 1000)).unwrap_or(0)
    };
    let mut tags = rule.tags.clone();
    for t in headers.get_all(CACHE_TAG).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
        let t = t.trim();
        if !t.is_empty() && !tags.iter().any(|x| x == t) {
            tags.push(t.to_owned());
        }
    }
    Cacheability::Store(CacheMeta {
        v: META_VERSION,
        status,
        stored_at: now,
        initial_age,
        fresh,
        swr: secs_ms(rule.stale_while_revalidate, "stale-while-revalidate"),
        sie: secs_ms(rule.stale_if_error, "stale-if-error"),
        revalidate,
        must_revalidate: respect && (cc.has("must-revalidate") || cc.has("proxy-revalidate") || cc.has("s-maxage")),
        tags,
        vary,
        path: path.to_owned(),
        rule: rule.name.clone(),
        index: false,
    })
}

/// Hop-by-hop and edge-internal fields never stored or replayed.
const NOT_STORED: [&str; 9] = ["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "set-cookie", "cache-tag"];

/// The headers to keep with a stored response: the origin's minus hop-by-hop fields,
/// `Set-Cookie` (only stored at all when the rule strips it) and `Cache-Tag` (moved into meta).
/// Fields named by a qualified `no-cache="..."` are dropped too (RFC 9111 §5.2.2.4).
pub fn headers_to_store(headers: &HeaderMap) -> HeaderMap {
    let cc = EdgeDirectives::from_headers(headers).cc;
    let no_cache_fields: Vec<String> = match cc.arg("no-cache") {
        Some(Some(list)) => list.split(',').map(|f| f.trim().to_ascii_lowercase()).collect(),
        _ => Vec::new(),
    };
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if !NOT_STORED.contains(&n) && !no_cache_fields.iter().any(|f| f == n) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// RFC 9111 §3.2 / §4.3.4: fold the header fields of a 304 into the stored ones. Fields that
/// describe the stored body's bytes are kept from the stored response.
pub fn merge_304(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    const KEEP_STORED: [&str; 5] = ["content-length", "content-encoding", "content-range", "content-type", "transfer-encoding"];
    let mut out = stored.clone();
    let fresh = headers_to_store(not_modified);
    for name in fresh.keys() {
        if !KEEP_STORED.contains(&name.as_str()) {
            out.remove(name);
        }
    }
    for (name, value) in &fresh {
        if !KEEP_STORED.contains(&name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Request headers for revalidating a stored response (RFC 9111 §4.3.1).
pub fn revalidation_headers(stored: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    if let Some(etag) = stored.get(header::ETAG) {
        out.push((header::IF_NONE_MATCH, etag.clone()));
    }
    if let Some(lm) = stored.get(header::LAST_MODIFIED) {
        out.push((header::IF_MODIFIED_SINCE, lm.clone()));
    }
    out
}

/// Client fields removed from a request that fills the cache: the edge wants a full,
/// storable response and answers the client's conditionals and ranges itself.
pub const FILL_REQUEST_STRIP: [HeaderName; 5] = [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::IF_MATCH, header::IF_UNMODIFIED_SINCE, header::RANGE];

/// The `Cache-Control` a browser gets for a response with `status`: the rule's browser TTL
/// when set, else the origin's. An error (4xx/5xx) never gets more than the rule's
/// [`Rule::error_ttl_for`], so a mistake is not pinned in browsers either. Returns `None` to
/// leave the origin's header as is.
pub fn browser_cache_control(rule: &Rule, origin: &HeaderMap, status: u16) -> Option<HeaderValue> {
    let cc = CacheControl::from_headers(origin);
    if cc.has("private") || cc.has("no-store") {
        return None; // never loosen what the origin keeps private
    }
    let cap = rule.error_ttl_for(status).map(|d| d.as_secs());
    let ttl = match (rule.browser_ttl.map(|d| d.as_secs()), cap) {
        (Some(t), Some(c)) => t.min(c),
        (Some(t), None) => t,
        // The origin's own header, unless it asks for longer than an error may have.
        (None, Some(c)) if cc.seconds("max-age").is_some_and(|m| m > c) => c,
        (None, _) => return None,
    };
    let value = if ttl == 0 {
        "no-cache".to_owned()
    } else if cc.has("immutable") && cap.is_none() {
        format!("public, max-age={ttl}, immutable")
    } else {
        format!("public, max-age={ttl}")
    };
    HeaderValue::from_str(&value).ok()
}

/// URLs a successful unsafe request invalidates (RFC 9111 §4.4): the target, and `Location` /
/// `Content-Location` on the same host; plus the target's parent path, so a write to
/// `/api/tasks/7` also drops the cached `/api/tasks` collection. Paths are returned.
pub fn invalidation_paths(method: &Method, status: StatusCode, path: &str, host: &str, response: &HeaderMap) -> Vec<String> {
    if method.is_safe() || !(status.is_success() || status.is_redirection()) {
        return Vec::new();
    }
    let mut out = vec![path.to_owned()];
    if let Some((parent, _)) = path.trim_end_matches('/').rsplit_once('/') {
        out.push(if parent.is_empty() { "/".to_owned() } else { parent.to_owned() });
    }
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let Some(v) = response.get(&name).and_then(|v| v.to_str().ok()) else { continue };
        let same_host = match url::Url::parse(v) {
            Ok(u) => u.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host)).then(|| u.path().to_owned()),
            Err(_) if v.starts_with('/') && !v.starts_with("//") => Some(v.split(['?', '#']).next().unwrap_or(v).to_owned()),
            Err(_) => None,
        };
        if let Some(p) = same_host {
            out.push(p);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
