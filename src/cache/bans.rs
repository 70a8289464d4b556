//! Purge by URL, prefix or tag, as bans (the Varnish model): the Cache API cannot list or
//! delete by pattern, so a purge records "nothing matching X stored before T is served"; lookups
//! check entries against the ban list, and matching entries count as misses.

use super::meta::CacheMeta;
use serde::{Deserialize, Serialize};

/// What a ban matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum BanTarget {
    /// Every variant and query of this exact path.
    Path(String),
    /// Every path starting with this prefix.
    Prefix(String),
    /// Every entry carrying this tag.
    Tag(String),
}

/// A recorded purge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// What it matches.
    #[serde(flatten)]
    pub target: BanTarget,
    /// When it was issued (Unix ms); entries stored at or after this are not affected.
    pub at: u64,
}

impl Ban {
    /// Whether this ban hides the entry.
    pub fn hides(&self, meta: &CacheMeta) -> bool {
        meta.stored_at <= self.at
            && match &self.target {
                BanTarget::Path(p) => meta.path == *p,
                BanTarget::Prefix(p) => meta.path.starts_with(p.as_str()),
                BanTarget::Tag(t) => meta.tags.iter().any(|x| x == t),
            }
    }
}

/// Whether any ban hides the entry.
pub fn is_banned(bans: &[Ban], meta: &CacheMeta) -> bool {
    bans.iter().any(|b| b.hides(meta))
}

/// A purge request body: `{"urls": [...], "prefixes": [...], "tags": [...]}`. URLs may be
/// absolute or paths; prefixes are paths.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// URLs (or paths) to purge, every variant.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Path prefixes to purge.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Tags to purge.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Most targets one purge request may carry.
pub const MAX_PURGE_TARGETS: usize = 100;

impl PurgeRequest {
    /// The bans this purge issues at `now`, or why the request is invalid.
    pub fn into_bans(self, now: u64) -> Result<Vec<Ban>, String> {
        let total = self.urls.len() + self.prefixes.len() + self.tags.len();
        if total == 0 {
            return Err("give at least one of urls, prefixes, tags".into());
        }
        if total > MAX_PURGE_TARGETS {
            return Err(format!("at most {MAX_PURGE_TARGETS} targets per request"));
        }
        let mut bans = Vec::with_capacity(total);
        for u in self.urls {
            let path = if u.starts_with('/') {
                u.split(['?', '#']).next().unwrap_or("/").to_owned()
            } else {
                url::Url::parse(&u).map_err(|_| format!("{u:?} is not a URL or path"))?.path().to_owned()
            };
            bans.push(Ban { target: BanTarget::Path(path), at: now });
        }
        for p in self.prefixes {
            if !p.starts_with('/') {
                return Err(format!("prefix {p:?} must start with '/'"));
            }
            bans.push(Ban { target: BanTarget::Prefix(p), at: now });
        }
        for t in self.tags {
            if t.is_empty() || t.contains(',') {
                return Err(format!("tag {t:?} is empty or has a comma"));
            }
            bans.push(Ban { target: BanTarget::Tag(t), at: now });
        }
        Ok(bans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::meta::META_VERSION;

    fn meta(path: &str, tags: &[&str], stored_at: u64) -> CacheMeta {
        CacheMeta {
            v: META_VERSION,
            status: 200,
            stored_at,
            initial_age: 0,
            fresh: 1000,
            swr: 0,
            sie: 0,
            revalidate: false,
            must_revalidate: false,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            vary: vec![],
            path: path.into(),
            rule: "r".into(),
            index: false,
        }
    }

    #[test]
    fn bans_hide_only_older_matching_entries() {
        let bans = PurgeRequest { urls: vec!["https://x.example/a?q=1".into()], prefixes: vec!["/blog/".into()], tags: vec!["t1".into()] }.into_bans(100).unwrap();
        assert!(is_banned(&bans, &meta("/a", &[], 50)), "url purge covers every query and variant of the path");
        assert!(!is_banned(&bans, &meta("/a", &[], 150)), "stored after the purge");
        assert!(!is_banned(&bans, &meta("/ab", &[], 50)));
        assert!(is_banned(&bans, &meta("/blog/x/y", &[], 50)));
        assert!(!is_banned(&bans, &meta("/blogroll", &[], 50)));
        assert!(is_banned(&bans, &meta("/z", &["t0", "t1"], 50)));
        assert!(!is_banned(&bans, &meta("/z", &["t2"], 50)));
    }

    #[test]
    fn purge_request_validation() {
        assert!(PurgeRequest::default().into_bans(1).is_err());
        assert!(PurgeRequest { prefixes: vec!["blog".into()], ..Default::default() }.into_bans(1).is_err());
        assert!(PurgeRequest { urls: vec!["::".into()], ..Default::default() }.into_bans(1).is_err());
        assert!(PurgeRequest { tags: vec!["x".into(); 101], ..Default::default() }.into_bans(1).is_err());
        let json = serde_json::to_string(&Ban { target: BanTarget::Tag("t".into()), at: 5 }).unwrap();
        assert_eq!(json, r#"{"kind":"tag","value":"t","at":5}"#);
    }
}
