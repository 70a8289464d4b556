//! What the cache did, told to the client: `X-Cache` (short, nginx-style) and `Cache-Status`
//! (RFC 9211).

/// The cache's part in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Served fresh from cache.
    Hit,
    /// Not in cache; fetched (and stored if allowed).
    Miss,
    /// Served stale because the origin failed (stale-if-error).
    Stale,
    /// Served stale while a background refresh runs (stale-while-revalidate).
    Updating,
    /// Stale entry revalidated with the origin (304) and served.
    Revalidated,
    /// The cache was not used.
    Bypass,
    /// Stale entry replaced by a full response from the origin.
    Expired,
}

impl CacheOutcome {
    /// The `X-Cache` value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Updating => "UPDATING",
            Self::Revalidated => "REVALIDATED",
            Self::Bypass => "BYPASS",
            Self::Expired => "EXPIRED",
        }
    }
}

impl CacheOutcome {
    /// Every outcome, for parsing.
    pub const ALL: [Self; 7] = [Self::Hit, Self::Miss, Self::Stale, Self::Updating, Self::Revalidated, Self::Bypass, Self::Expired];

    /// The metric label for a response's `X-Cache` value: the lower-case outcome, or `none`
    /// when the cache had no part (or the value is not ours).
    pub fn metric_label(x_cache: Option<&str>) -> &'static str {
        const LABELS: [&str; 7] = ["hit", "miss", "stale", "updating", "revalidated", "bypass", "expired"];
        let Some(v) = x_cache else { return "none" };
        Self::ALL.iter().position(|o| o.as_str().eq_ignore_ascii_case(v.trim())).map_or("none", |i| LABELS[i])
    }
}

/// Name of this cache in `Cache-Status`.
pub const CACHE_NAME: &str = "edgelayer";

/// Details for one `Cache-Status` entry.
#[derive(Debug, Clone, Default)]
pub struct StatusDetail<'a> {
    /// Freshness left in seconds (negative: stale), when a stored response was used or stored.
    pub ttl: Option<i64>,
    /// Status of the forwarded request, when the origin was asked.
    pub fwd_status: Option<u16>,
    /// Whether the response was stored.
    pub stored: bool,
    /// Extra detail (a reason, a rule).
    pub detail: Option<&'a str>,
    /// The primary key existed but no variant matched (`fwd=vary-miss`).
    pub vary_miss: bool,
}

/// The `Cache-Status` value (RFC 9211 §2), serialised as a Structured Fields list (RFC 9651)
/// by `sfv`, so a detail that is not a token is quoted and escaped.
pub fn cache_status(outcome: CacheOutcome, d: &StatusDetail<'_>) -> String {
    let key = sfv::KeyRef::constant;
    let mut list = sfv::ListSerializer::new();
    let mut item = list.bare_item(sfv::TokenRef::constant(CACHE_NAME));
    item = match outcome {
        CacheOutcome::Hit | CacheOutcome::Updating | CacheOutcome::Stale => item.parameter(key("hit"), true),
        CacheOutcome::Miss if d.vary_miss => item.parameter(key("fwd"), sfv::TokenRef::constant("vary-miss")),
        CacheOutcome::Miss => item.parameter(key("fwd"), sfv::TokenRef::constant("uri-miss")),
        CacheOutcome::Revalidated | CacheOutcome::Expired => item.parameter(key("fwd"), sfv::TokenRef::constant("stale")),
        CacheOutcome::Bypass => item.parameter(key("fwd"), sfv::TokenRef::constant("bypass")),
    };
    if outcome == CacheOutcome::Stale {
        item = item.parameter(key("fwd"), sfv::TokenRef::constant("stale"));
    }
    if let Some(st) = d.fwd_status {
        item = item.parameter(key("fwd-status"), sfv::Integer::from(st));
    }
    if let Some(ttl) = d.ttl.and_then(|t| sfv::Integer::try_from(t).ok()) {
        item = item.parameter(key("ttl"), ttl);
    }
    if d.stored {
        item = item.parameter(key("stored"), true);
    }
    let detail = d.detail.or(match outcome {
        CacheOutcome::Updating => Some("stale-while-revalidate"),
        CacheOutcome::Stale => Some("stale-if-error"),
        _ => None,
    });
    if let Some(detail) = detail {
        // A token if it can be one, else a quoted string; neither (not ASCII): left out.
        match (sfv::TokenRef::from_str(detail), sfv::StringRef::from_str(detail)) {
            (Ok(token), _) => item = item.parameter(key("detail"), token),
            (_, Ok(text)) => item = item.parameter(key("detail"), text),
            _ => {}
        }
    }
    let _ = item;
    list.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9211_shapes() {
        let d = |ttl, fwd_status, stored, detail| StatusDetail { ttl, fwd_status, stored, detail, vary_miss: false };
        assert_eq!(cache_status(CacheOutcome::Hit, &d(Some(42), None, false, None)), "edgelayer;hit;ttl=42");
        assert_eq!(cache_status(CacheOutcome::Miss, &d(Some(300), Some(200), true, None)), "edgelayer;fwd=uri-miss;fwd-status=200;ttl=300;stored");
        assert_eq!(cache_status(CacheOutcome::Bypass, &d(None, Some(200), false, Some("method"))), "edgelayer;fwd=bypass;fwd-status=200;detail=method");
        assert_eq!(cache_status(CacheOutcome::Updating, &d(Some(-3), None, false, None)), "edgelayer;hit;ttl=-3;detail=stale-while-revalidate");
        assert_eq!(cache_status(CacheOutcome::Stale, &d(Some(-9), Some(503), false, None)), "edgelayer;hit;fwd=stale;fwd-status=503;ttl=-9;detail=stale-if-error");
        assert_eq!(cache_status(CacheOutcome::Revalidated, &d(Some(60), Some(304), true, None)), "edgelayer;fwd=stale;fwd-status=304;ttl=60;stored");
        assert_eq!(cache_status(CacheOutcome::Miss, &StatusDetail { vary_miss: true, ..Default::default() }), "edgelayer;fwd=vary-miss");
        assert_eq!(cache_status(CacheOutcome::Bypass, &d(None, None, false, Some("a b"))), "edgelayer;fwd=bypass;detail=\"a b\"");
        assert_eq!(cache_status(CacheOutcome::Bypass, &d(None, None, false, Some("say \"hi\""))), "edgelayer;fwd=bypass;detail=\"say \\\"hi\\\"\"", "quotes escaped");
        assert_eq!(cache_status(CacheOutcome::Bypass, &d(None, None, false, Some("naïve"))), "edgelayer;fwd=bypass", "not ASCII: left out, never malformed");
    }

    #[test]
    fn metric_labels() {
        assert_eq!(CacheOutcome::metric_label(Some("HIT")), "hit");
        assert_eq!(CacheOutcome::metric_label(Some("EXPIRED")), "expired");
        assert_eq!(CacheOutcome::metric_label(Some("TCP_HIT from squid")), "none");
        assert_eq!(CacheOutcome::metric_label(None), "none");
    }
}
