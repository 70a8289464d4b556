//! Conditional GET/HEAD evaluation (RFC 9110 §13): decides whether a `304 Not Modified` answers.
//!
//! Used by the origin for its own resources and (later) by the edge cache for stored responses.

use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
use http::HeaderMap;
use std::time::SystemTime;

/// The validators of a selected representation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'a> {
    /// The entity tag, with quotes and an optional `W/` prefix, as sent in `ETag`.
    pub etag: Option<&'a str>,
    /// The `Last-Modified` time, if known.
    pub last_modified: Option<SystemTime>,
}

/// Strips a weak prefix: RFC 9110 §8.8.3.2 weak comparison ignores it.
fn opaque(tag: &str) -> &str {
    tag.trim().strip_prefix("W/").unwrap_or(tag.trim())
}

/// RFC 9110 §13.1.2: does an `If-None-Match` value match the current ETag (weak comparison)?
fn none_match_matches(if_none_match: &str, etag: Option<&str>) -> bool {
    if if_none_match.trim() == "*" {
        // "*" matches whenever a current representation exists; the caller has one.
        return true;
    }
    let Some(current) = etag.map(opaque) else { return false };
    if_none_match.split(',').any(|candidate| opaque(candidate) == current)
}

/// Whether a GET or HEAD with these request headers should be answered `304 Not Modified`.
///
/// RFC 9110 §13.2.2 order: `If-None-Match` decides when present; only without it is
/// `If-Modified-Since` evaluated (§13.1.3), and an unparseable date is ignored.
pub fn is_not_modified(request: &HeaderMap, current: Validators<'_>) -> bool {
    let inm: Vec<&str> = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !inm.is_empty() {
        return inm.iter().any(|v| none_match_matches(v, current.etag));
    }
    let (Some(ims), Some(last_modified)) = (
        request
            .get(IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()),
        current.last_modified,
    ) else {
        return false;
    };
    // HTTP dates have one-second resolution: compare at that resolution.
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    secs(last_modified) <= secs(ims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn headers(pairs: &[(&http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn table() {
        let lm = at(1_700_000_000);
        let lm_str = httpdate::fmt_http_date(lm);
        let older = httpdate::fmt_http_date(at(1_600_000_000));
        let v = Validators { etag: Some("\"abc\""), last_modified: Some(lm) };
        type Case<'a> = (&'a [(&'a http::HeaderName, &'a str)], bool, &'a str);
        let cases: &[Case] = &[
            (&[], false, "no condition"),
            (&[(&IF_NONE_MATCH, "\"abc\"")], true, "§13.1.2 strong match"),
            (&[(&IF_NONE_MATCH, "W/\"abc\"")], true, "§13.1.2 weak comparison"),
            (&[(&IF_NONE_MATCH, "\"x\", \"abc\"")], true, "§13.1.2 list"),
            (&[(&IF_NONE_MATCH, "*")], true, "§13.1.2 star"),
            (&[(&IF_NONE_MATCH, "\"x\"")], false, "§13.1.2 mismatch"),
            (&[(&IF_MODIFIED_SINCE, &lm_str)], true, "§13.1.3 equal date"),
            (&[(&IF_MODIFIED_SINCE, &older)], false, "§13.1.3 modified since"),
            (&[(&IF_MODIFIED_SINCE, "garbage")], false, "§13.1.3 bad date ignored"),
            (&[(&IF_NONE_MATCH, "\"x\""), (&IF_MODIFIED_SINCE, &lm_str)], false, "§13.2.2 INM wins"),
        ];
        for (hs, want, why) in cases {
            assert_eq!(is_not_modified(&headers(hs), v), *want, "{why}");
        }
    }

    #[test]
    fn no_validators_never_304_except_star() {
        let none = Validators::default();
        assert!(!is_not_modified(&headers(&[(&IF_NONE_MATCH, "\"a\"")]), none));
        assert!(is_not_modified(&headers(&[(&IF_NONE_MATCH, "*")]), none));
        assert!(!is_not_modified(&headers(&[(&IF_MODIFIED_SINCE, "Tue, 15 Nov 1994 08:12:31 GMT")]), none));
    }
}
