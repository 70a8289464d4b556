//! What the edge remembers about a stored response, beside its headers and body. Encoded as a
//! versioned JSON header on the stored copy, so the Cache API stores it with the body.

use serde::{Deserialize, Serialize};

/// Header carrying [`CacheMeta`] on stored responses (never sent to clients).
pub const META_HEADER: &str = "x-edgelayer-meta";

/// The encoding version; entries with another version are ignored (treated as misses).
pub const META_VERSION: u8 = 1;

/// Freshness and identity of a stored response. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMeta {
    /// [`META_VERSION`].
    pub v: u8,
    /// The origin's status (the stored copy may use another status for the Cache API).
    pub status: u16,
    /// When the response was received (RFC 9111 §4.2.3 `response_time`).
    pub stored_at: u64,
    /// Corrected initial age at `stored_at`, in ms (RFC 9111 §4.2.3).
    pub initial_age: u64,
    /// Freshness lifetime, ms (RFC 9111 §4.2.1).
    pub fresh: u64,
    /// stale-while-revalidate window after expiry, ms (RFC 5861 §3).
    pub swr: u64,
    /// stale-if-error window after expiry, ms (RFC 5861 §4).
    pub sie: u64,
    /// `no-cache`: must be validated before each use (RFC 9111 §5.2.2.4).
    pub revalidate: bool,
    /// `must-revalidate`/`proxy-revalidate`/`s-maxage`: never served stale (RFC 9111 §5.2.2.2).
    pub must_revalidate: bool,
    /// Purge tags (rule tags + the origin's `Cache-Tag`).
    pub tags: Vec<String>,
    /// Request header names the response varies on (lower case).
    pub vary: Vec<String>,
    /// The URL path the entry was stored for (prefix and URL purges match on it).
    pub path: String,
    /// The rule that stored it.
    pub rule: String,
    /// A variant index: the entry at the primary key of a response with `Vary`, which only
    /// lists the `vary` names; the variants live at their own keys.
    #[serde(default)]
    pub index: bool,
}

/// How a stored response may be used at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fresh: serve it.
    Fresh,
    /// Stale. The flags say what the stale windows still allow.
    Stale {
        /// Inside stale-while-revalidate: serve now, refresh in the background.
        while_revalidate: bool,
        /// Inside stale-if-error: serve if the origin fails.
        if_error: bool,
    },
}

impl CacheMeta {
    /// Current age in ms (RFC 9111 §4.2.3: corrected initial age + resident time).
    pub fn age_ms(&self, now: u64) -> u64 {
        self.initial_age + now.saturating_sub(self.stored_at)
    }

    /// Current age in whole seconds, for the `Age` header.
    pub fn age_secs(&self, now: u64) -> u64 {
        self.age_ms(now) / 1000
    }

    /// Seconds of freshness left (negative when stale), for `Cache-Status: ttl`.
    pub fn ttl_secs(&self, now: u64) -> i64 {
        (self.fresh as i64 - self.age_ms(now) as i64).div_euclid(1000)
    }

    /// RFC 9111 §4.2: fresh while `freshness_lifetime > current_age`.
    pub fn freshness(&self, now: u64) -> Freshness {
        let age = self.age_ms(now);
        if !self.revalidate && self.fresh > age {
            return Freshness::Fresh;
        }
        let stale_for = age.saturating_sub(self.fresh);
        let may_serve_stale = !self.revalidate && !self.must_revalidate;
        Freshness::Stale {
            while_revalidate: may_serve_stale && stale_for < self.swr,
            if_error: may_serve_stale && stale_for < self.sie,
        }
    }

    /// How long the storage should keep the entry, in seconds: fresh time left plus the longest
    /// stale window or `keep_secs`, whichever is longer (time to revalidate an expired entry
    /// with a 304, or to report it as expired).
    pub fn storage_ttl_secs(&self, now: u64, keep_secs: u64) -> u64 {
        let left = self.fresh.saturating_sub(self.age_ms(now)) / 1000;
        let stale = self.swr.max(self.sie) / 1000;
        (left + stale.max(keep_secs)).max(1)
    }

    /// Encodes for [`META_HEADER`].
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Decodes a [`META_HEADER`] value; `None` for garbage or another version.
    pub fn decode(value: &str) -> Option<Self> {
        serde_json::from_str::<Self>(value).ok().filter(|m| m.v == META_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta() -> CacheMeta {
        CacheMeta {
            v: META_VERSION,
            status: 200,
            stored_at: 1_000_000,
            initial_age: 2_000,
            fresh: 60_000,
            swr: 30_000,
            sie: 300_000,
            revalidate: false,
            must_revalidate: false,
            tags: vec!["a".into()],
            vary: vec![],
            path: "/x".into(),
            rule: "r".into(),
            index: false,
        }
    }

    #[test]
    fn ages_and_windows() {
        let m = meta();
        assert_eq!(m.age_secs(1_000_000), 2, "initial age counts");
        assert_eq!(m.freshness(1_057_999), Freshness::Fresh);
        assert_eq!(m.freshness(1_058_000), Freshness::Stale { while_revalidate: true, if_error: true }, "§4.2: lifetime must exceed age");
        assert_eq!(m.freshness(1_088_000), Freshness::Stale { while_revalidate: false, if_error: true });
        assert_eq!(m.freshness(1_358_000), Freshness::Stale { while_revalidate: false, if_error: false });
        assert_eq!(m.ttl_secs(1_000_000), 58);
        assert_eq!(m.ttl_secs(1_059_000), -1);
    }

    #[test]
    fn must_revalidate_and_no_cache_forbid_stale() {
        let m = CacheMeta { must_revalidate: true, ..meta() };
        assert_eq!(m.freshness(1_060_000), Freshness::Stale { while_revalidate: false, if_error: false });
        let m = CacheMeta { revalidate: true, ..meta() };
        assert_eq!(m.freshness(1_000_001), Freshness::Stale { while_revalidate: false, if_error: false }, "no-cache is never fresh");
    }

    #[test]
    fn roundtrip_and_versioning() {
        let m = meta();
        assert_eq!(CacheMeta::decode(&m.encode()), Some(m.clone()));
        let old = CacheMeta { v: 0, ..m };
        assert_eq!(CacheMeta::decode(&old.encode()), None);
        assert_eq!(CacheMeta::decode("{garbage"), None);
    }

    #[test]
    fn storage_ttl_covers_stale_windows() {
        let m = meta();
        assert_eq!(m.storage_ttl_secs(1_000_000, 60), 58 + 300);
        let m = CacheMeta { swr: 0, sie: 0, ..meta() };
        assert_eq!(m.storage_ttl_secs(1_000_000, 3600), 58 + 3600);
        assert_eq!(m.storage_ttl_secs(9_000_000, 0), 1);
    }
}
