//! Per-path rules: what the edge does for a request (cache mode and TTLs, cache key, bypass
//! conditions, tags). Parsed from wrangler.toml `[vars.EDGELAYER]` into [`RawRule`]s, validated
//! once into [`Rule`]s; a bad rule names itself and the field.
//!
//! **Matching: first match wins**, in file order, like Varnish `vcl_recv` branches and nginx
//! regex locations: put specific rules first and catch-alls last. A request no rule matches gets
//! [`Rule::default_rule`]: a plain RFC 9111 shared cache that respects the origin's headers.

mod pattern;

pub use pattern::PathPattern;

use crate::config::duration::RawDuration;
use crate::config::error::ConfigError;
use http::{HeaderName, Method};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How the edge caches what a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// RFC 9111 shared-cache semantics from the origin's headers.
    RespectOrigin,
    /// Store for `edge_ttl` whatever the origin's freshness headers say (never what is
    /// `private`, `no-store` or carries `Set-Cookie`: those stay uncacheable).
    Override {
        /// How long a stored response is fresh.
        edge_ttl: Duration,
    },
    /// Never look up or store.
    Bypass,
}

impl CacheMode {
    /// The name used in config and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RespectOrigin => "respect_origin",
            Self::Override { .. } => "override",
            Self::Bypass => "bypass",
        }
    }
}

/// Which query parameters are part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueryKey {
    /// All parameters (the default).
    #[default]
    All,
    /// None: `?utm=x` and `?` share one entry.
    Ignore,
    /// Only these parameters.
    Include(Vec<String>),
    /// All but these parameters.
    Exclude(Vec<String>),
}

/// Which statuses a `status_ttl` entry covers: `"404"`, `"4xx"`, `">=500"`, `">400"`,
/// `"<=299"`, `"<300"` or `"500-503"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest status covered.
    pub from: u16,
    /// Highest status covered.
    pub to: u16,
}

impl StatusRange {
    /// Parses one `status_ttl` key.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a status (404), a class (4xx), a comparison (>=500) or a range (500-503) within 100-599");
        let code = |t: &str| t.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c)).ok_or_else(bad);
        let t = s.trim();
        let (from, to) = if let Some(n) = t.strip_prefix(">=") {
            (code(n)?, 599)
        } else if let Some(n) = t.strip_prefix("<=") {
            (100, code(n)?)
        } else if let Some(n) = t.strip_prefix('>') {
            (code(n)?.checked_add(1).ok_or_else(bad)?, 599)
        } else if let Some(n) = t.strip_prefix('<') {
            (100, code(n)?.checked_sub(1).ok_or_else(bad)?)
        } else if let Some((a, b)) = t.split_once('-') {
            (code(a)?, code(b)?)
        } else if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
            let c = class.parse::<u16>().ok().filter(|c| (1..=5).contains(c)).ok_or_else(bad)?;
            (c * 100, c * 100 + 99)
        } else {
            let c = code(t)?;
            (c, c)
        };
        if from > to || to > 599 {
            return Err(bad());
        }
        Ok(Self { from, to })
    }

    /// Whether `status` is covered.
    pub fn contains(&self, status: u16) -> bool {
        (self.from..=self.to).contains(&status)
    }
}

/// Edge TTLs by status in `override` rules. The narrowest matching entry wins (`404` over
/// `4xx` over `>=400`), so specific overrides sit beside broad ones in any order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusTtls(Vec<(StatusRange, Duration)>);

impl StatusTtls {
    /// Builds the table; entries are kept narrowest first.
    pub fn new(mut entries: Vec<(StatusRange, Duration)>) -> Self {
        entries.sort_by_key(|(r, _)| (r.to - r.from, r.from));
        Self(entries)
    }

    /// The TTL configured for `status`, if any entry covers it.
    pub fn get(&self, status: u16) -> Option<Duration> {
        self.0.iter().find(|(r, _)| r.contains(status)).map(|(_, d)| *d)
    }

    /// Whether no entry is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The default `error_ttl`: how long an `override` rule keeps an error (4xx/5xx) it may store,
/// and the longest browser TTL an error is sent with. Short on purpose: a deploy race or a
/// typo must not pin a 404 for the rule's `edge_ttl` (a year for hashed assets).
pub const DEFAULT_ERROR_TTL: Duration = Duration::from_secs(60);

/// What distinguishes cache entries besides scheme, host and path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheKeySpec {
    /// Query parameters in the key.
    pub query: QueryKey,
    /// Sort the kept parameters so `?a=1&b=2` and `?b=2&a=1` share an entry.
    pub sort_query: bool,
    /// Request headers whose values are part of the key (lower-case names).
    pub headers: Vec<HeaderName>,
    /// Cookies whose values are part of the key.
    pub cookies: Vec<String>,
}

/// Default `early_hints_max`: enough for a page's stylesheets, blocking scripts and fonts
/// without turning the 103 into a list of everything.
pub const DEFAULT_EARLY_HINTS: usize = 8;

/// A validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Name, for errors, logs and the `Cache-Status` detail.
    pub name: String,
    /// Path globs; the rule matches when any does.
    pub paths: Vec<PathPattern>,
    /// Methods the rule applies to; `None`: all.
    pub methods: Option<Vec<Method>>,
    /// Host the rule applies to (lower case; `*.example.com` for subdomains); `None`: any.
    pub host: Option<String>,
    /// Cache mode.
    pub cache: CacheMode,
    /// `Cache-Control: max-age` sent to browsers; `None`: pass the origin's header through.
    pub browser_ttl: Option<Duration>,
    /// Serve stale this long while refreshing in the background (RFC 5861). `None`: the origin's
    /// `stale-while-revalidate`, if any.
    pub stale_while_revalidate: Option<Duration>,
    /// Serve stale this long when the origin fails (RFC 5861). `None`: the origin's
    /// `stale-if-error`, if any.
    pub stale_if_error: Option<Duration>,
    /// Edge TTL per status or status range in override mode (e.g. cache 404s for a minute).
    pub status_ttl: StatusTtls,
    /// Edge TTL of errors (status >= 400) in override mode that `status_ttl` does not cover,
    /// and the cap on their browser TTL in any mode. Default [`DEFAULT_ERROR_TTL`].
    pub error_ttl: Duration,
    /// Cache key composition.
    pub cache_key: CacheKeySpec,
    /// Bypass the cache when the request carries any of these cookies (e.g. a session).
    pub bypass_cookies: Vec<String>,
    /// Cache tags added to everything stored under this rule (besides the origin's `Cache-Tag`).
    pub tags: Vec<String>,
    /// Share responses to requests with `Authorization` (RFC 9111 §3.5 allows it only with
    /// `public`, `s-maxage` or `must-revalidate`; this opt-in allows it always). Default false.
    pub cache_authorized: bool,
    /// Store responses that carry `Set-Cookie`, dropping the cookie from the stored copy.
    /// Default false: such responses are never stored.
    pub strip_set_cookie: bool,
    /// Minify HTML responses (default false: off for unknown origins).
    pub minify: bool,
    /// Brotli/gzip-compress text responses for clients that accept it (default true).
    pub compress: bool,
    /// Security headers for responses under this rule.
    pub headers: crate::headers::HeaderPolicy,
    /// Put a per-response nonce in the CSP and in every `<script>`/`<style>` tag of HTML.
    pub csp_nonce: bool,
    /// `Link` preloads stored with this rule's pages (Early Hints): at most this many; 0: off.
    pub early_hints: usize,
    /// Redirect plain-HTTP requests to HTTPS (308).
    pub https_redirect: bool,
    /// Name of the rate-limit policy (`EDGELAYER.rate_limits`); `None`: not limited.
    pub rate_limit: Option<String>,
    /// `images = "auto"`: GET requests are served as `/cdn-cgi/image/format=auto/<path>`
    /// (format negotiation without resizing). Default off.
    pub images_auto: bool,
    /// Request headers this rule passes to the origin although `strip_request_headers` lists
    /// them (lower case).
    pub keep_request_headers: Vec<HeaderName>,
    /// Request log lines carry the query string (default false: it may hold tokens or
    /// personal data).
    pub log_query: bool,
}

impl Rule {
    /// The browser TTL cap for a response with `status`: errors never get more than the edge
    /// keeps them for (`status_ttl`, else `error_ttl`); `None` for other statuses.
    pub fn error_ttl_for(&self, status: u16) -> Option<Duration> {
        (status >= 400).then(|| self.status_ttl.get(status).unwrap_or(self.error_ttl))
    }

    /// The rule for requests no configured rule matches: respect the origin (RFC 9111).
    pub fn default_rule() -> Self {
        Self {
            name: "default".into(),
            paths: vec![PathPattern::parse("*").unwrap_or_else(|_| unreachable!("'*' is a valid pattern"))],
            methods: None,
            host: None,
            cache: CacheMode::RespectOrigin,
            browser_ttl: None,
            stale_while_revalidate: None,
            stale_if_error: None,
            status_ttl: StatusTtls::default(),
            error_ttl: DEFAULT_ERROR_TTL,
            cache_key: CacheKeySpec::default(),
            bypass_cookies: Vec::new(),
            tags: Vec::new(),
            cache_authorized: false,
            strip_set_cookie: false,
            minify: false,
            compress: true,
            headers: crate::headers::HeaderPolicy::default(),
            csp_nonce: false,
            early_hints: 0,
            https_redirect: false,
            rate_limit: None,
            images_auto: false,
            keep_request_headers: Vec::new(),
            log_query: false,
        }
    }

    /// The rule the edge's own answers run under (health, purge, admin, and errors before a
    /// rule was chosen): never cached, API security headers, counted as `edgelayer`.
    pub fn edge_rule() -> Self {
        Self {
            name: "edgelayer".into(),
            cache: CacheMode::Bypass,
            headers: crate::headers::HeaderPolicy { profile: crate::headers::Profile::Api, ..Default::default() },
            ..Self::default_rule()
        }
    }

    fn matches(&self, method: &Method, host: &str, path: &str) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix) && host[..host.len() - suffix.len()].ends_with('.'),
                None => host.eq_ignore_ascii_case(h),
            },
        };
        host_ok && self.methods.as_ref().is_none_or(|m| m.contains(method)) && self.paths.iter().any(|p| p.matches(path))
    }
}

/// The ordered rules; first match wins.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    rules: Vec<Rule>,
    fallback: Rule,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self { rules: Vec::new(), fallback: Rule::default_rule() }
    }
}

impl RuleSet {
    /// The first rule matching the request, or the default rule.
    pub fn match_request(&self, method: &Method, host: &str, path: &str) -> &Rule {
        self.rules.iter().find(|r| r.matches(method, host, path)).unwrap_or(&self.fallback)
    }

    /// The configured rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Validates raw rules.
    pub fn from_raw(raw: Vec<RawRule>) -> Result<Self, ConfigError> {
        let mut rules = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let rule = r.validate(i)?;
            if rules.iter().any(|other: &Rule| other.name == rule.name) {
                return Err(ConfigError::rule(i, &rule.name, "name", "is used by an earlier rule".into()));
            }
            rules.push(rule);
        }
        Ok(Self { rules, fallback: Rule::default_rule() })
    }
}

/// One string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// How the query string enters the key, as written in config.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCacheKey {
    /// `"all"` (default) or `"none"`.
    pub query: Option<String>,
    /// Keep only these parameters.
    pub include_query: Option<Vec<String>>,
    /// Drop these parameters.
    pub exclude_query: Option<Vec<String>>,
    /// Sort parameters (default true).
    pub sort_query: Option<bool>,
    /// Request headers in the key.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Cookies in the key.
    #[serde(default)]
    pub cookies: Vec<String>,
}

/// A rule as written in wrangler.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name.
    pub name: Option<String>,
    /// Path glob, or a list of them (required).
    pub path: Option<OneOrMany>,
    /// Methods, e.g. `["GET", "HEAD"]`.
    pub methods: Option<Vec<String>>,
    /// Host, exact or `*.example.com`.
    pub host: Option<String>,
    /// `"respect_origin"` (default), `"override"` or `"bypass"`.
    pub cache: Option<String>,
    /// Edge TTL for `override`.
    pub edge_ttl: Option<RawDuration>,
    /// Browser TTL; absent: respect the origin.
    pub browser_ttl: Option<RawDuration>,
    /// RFC 5861 stale-while-revalidate window.
    pub stale_while_revalidate: Option<RawDuration>,
    /// RFC 5861 stale-if-error window.
    pub stale_if_error: Option<RawDuration>,
    /// Edge TTL per status code or range (`{ "404" = 60, "5xx" = "10s" }`).
    #[serde(default)]
    pub status_ttl: BTreeMap<String, RawDuration>,
    /// See [`Rule::error_ttl`].
    pub error_ttl: Option<RawDuration>,
    /// Cache key composition.
    #[serde(default)]
    pub cache_key: RawCacheKey,
    /// Cookies whose presence bypasses the cache.
    #[serde(default)]
    pub bypass_cookies: Vec<String>,
    /// Tags for purge.
    #[serde(default)]
    pub tags: Vec<String>,
    /// See [`Rule::cache_authorized`].
    #[serde(default)]
    pub cache_authorized: bool,
    /// See [`Rule::strip_set_cookie`].
    #[serde(default)]
    pub strip_set_cookie: bool,
    /// See [`Rule::minify`].
    #[serde(default)]
    pub minify: bool,
    /// See [`Rule::compress`].
    pub compress: Option<bool>,
    /// Header profile: `html` (default), `static`, `api`, `none`.
    pub headers: Option<String>,
    /// A CSP replacing the profile's.
    pub csp: Option<String>,
    /// Keep the origin's CSP when it sends one.
    #[serde(default)]
    pub keep_origin_csp: bool,
    /// Pages under this rule always keep `'unsafe-inline'` in `style-src` (their scripts set
    /// `style` attributes); see [`crate::html::page_facts`].
    #[serde(default)]
    pub inline_styles: bool,
    /// Send `Link` preloads (Early Hints) for what this rule's pages fetch first.
    #[serde(default)]
    pub early_hints: bool,
    /// At most this many preloads per page (default [`DEFAULT_EARLY_HINTS`]).
    pub early_hints_max: Option<u32>,
    /// See [`Rule::csp_nonce`].
    #[serde(default)]
    pub csp_nonce: bool,
    /// See [`Rule::https_redirect`].
    #[serde(default)]
    pub https_redirect: bool,
    /// See [`Rule::rate_limit`].
    pub rate_limit: Option<String>,
    /// `auto` (see [`Rule::images_auto`]) or `off` (default).
    pub images: Option<String>,
    /// See [`Rule::keep_request_headers`].
    #[serde(default)]
    pub keep_request_headers: Vec<String>,
    /// Replace the origin's own security headers with the profile's (default false: only add
    /// what the origin did not send).
    #[serde(default)]
    pub override_origin_headers: bool,
    /// See [`Rule::log_query`].
    #[serde(default)]
    pub log_query: bool,
}


fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl RawRule {
    /// Validates into a [`Rule`]; `index` is its position (for messages).
    pub fn validate(self, index: usize) -> Result<Rule, ConfigError> {
        let name = self.name.clone().unwrap_or_else(|| format!("rule-{}", index + 1));
        let err = |field: &'static str, reason: String| ConfigError::rule(index, &name, field, reason);
        let dur = |field: &'static str, d: &Option<RawDuration>| d.as_ref().map(|d| d.to_duration().map_err(|e| err(field, e))).transpose();

        let paths = match &self.path {
            None => return Err(err("path", "is required".into())),
            Some(OneOrMany::One(p)) => vec![p.clone()],
            Some(OneOrMany::Many(ps)) if ps.is_empty() => return Err(err("path", "must list at least one pattern".into())),
            Some(OneOrMany::Many(ps)) => ps.clone(),
        };
        let paths = paths.iter().map(|p| PathPattern::parse(p).map_err(|e| err("path", e))).collect::<Result<Vec<_>, _>>()?;
        let methods = self
            .methods
            .as_ref()
            .map(|ms| ms.iter().map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| err("methods", format!("{m:?} is not a method")))).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        let host = self.host.as_ref().map(|h| h.trim().to_ascii_lowercase());
        if host.as_deref().is_some_and(|h| h.is_empty() || h.contains('/') || h[h.find("*.").map_or(0, |i| i + 2)..].contains('*')) {
            return Err(err("host", format!("{:?} must be a host name or *.domain", self.host.unwrap_or_default())));
        }
        let edge_ttl = dur("edge_ttl", &self.edge_ttl)?;
        let cache = match self.cache.as_deref().unwrap_or("respect_origin") {
            "respect_origin" => CacheMode::RespectOrigin,
            "bypass" => CacheMode::Bypass,
            "override" => CacheMode::Override { edge_ttl: edge_ttl.filter(|d| !d.is_zero()).ok_or_else(|| err("edge_ttl", "must be set above 0 when cache = \"override\"".into()))? },
            other => return Err(err("cache", format!("{other:?} is not one of respect_origin, override, bypass"))),
        };
        if edge_ttl.is_some() && !matches!(cache, CacheMode::Override { .. }) {
            return Err(err("edge_ttl", "applies only with cache = \"override\"".into()));
        }
        let mut status_ttl = Vec::new();
        for (status, ttl) in &self.status_ttl {
            let range = StatusRange::parse(status).map_err(|e| err("status_ttl", e))?;
            status_ttl.push((range, ttl.to_duration().map_err(|e| err("status_ttl", e))?));
        }
        let status_ttl = StatusTtls::new(status_ttl);
        let error_ttl = dur("error_ttl", &self.error_ttl)?.unwrap_or(DEFAULT_ERROR_TTL);
        let k = &self.cache_key;
        let query = match (k.query.as_deref(), &k.include_query, &k.exclude_query) {
            (None | Some("all"), None, None) => QueryKey::All,
            (Some("none"), None, None) => QueryKey::Ignore,
            (None, Some(inc), None) => QueryKey::Include(inc.clone()),
            (None, None, Some(exc)) => QueryKey::Exclude(exc.clone()),
            (Some(q), None, None) => return Err(err("cache_key.query", format!("{q:?} is not \"all\" or \"none\""))),
            _ => return Err(err("cache_key", "set only one of query, include_query, exclude_query".into())),
        };
        let headers = k.headers.iter().map(|h| HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| err("cache_key.headers", format!("{h:?} is not a header name")))).collect::<Result<Vec<_>, _>>()?;
        for c in k.cookies.iter().chain(&self.bypass_cookies) {
            if !is_token(c) {
                return Err(err("cookies", format!("{c:?} is not a cookie name")));
            }
        }
        for t in &self.tags {
            if t.is_empty() || t.len() > 128 || t.contains(',') || t.chars().any(char::is_whitespace) {
                return Err(err("tags", format!("{t:?} must be 1..128 characters without spaces or commas")));
            }
        }
        if self.cache_authorized && matches!(cache, CacheMode::Bypass) {
            return Err(err("cache_authorized", "has no effect with cache = \"bypass\"".into()));
        }
        Ok(Rule {
            name: name.clone(),
            paths,
            methods,
            host,
            cache,
            browser_ttl: dur("browser_ttl", &self.browser_ttl)?,
            stale_while_revalidate: dur("stale_while_revalidate", &self.stale_while_revalidate)?,
            stale_if_error: dur("stale_if_error", &self.stale_if_error)?,
            status_ttl,
            error_ttl,
            cache_key: CacheKeySpec { query, sort_query: k.sort_query.unwrap_or(true), headers, cookies: k.cookies.clone() },
            bypass_cookies: self.bypass_cookies,
            tags: self.tags,
            cache_authorized: self.cache_authorized,
            strip_set_cookie: self.strip_set_cookie,
            minify: self.minify,
            compress: self.compress.unwrap_or(true),
            headers: crate::headers::HeaderPolicy {
                profile: crate::headers::Profile::parse(self.headers.as_deref().unwrap_or("html")).map_err(|e| err("headers", e))?,
                csp: self.csp.clone(),
                keep_origin_csp: self.keep_origin_csp,
                override_origin: self.override_origin_headers,
                inline_styles: self.inline_styles,
            },
            csp_nonce: self.csp_nonce,
            early_hints: match (self.early_hints, self.early_hints_max) {
                (false, _) => 0,
                (true, None) => DEFAULT_EARLY_HINTS,
                (true, Some(n @ 1..=32)) => n as usize,
                (true, Some(n)) => return Err(err("early_hints_max", format!("{n} is not within 1..=32"))),
            },
            https_redirect: self.https_redirect,
            rate_limit: self.rate_limit.clone(),
            images_auto: match self.images.as_deref().unwrap_or("off") {
                "off" => false,
                "auto" if matches!(cache, CacheMode::Bypass) => return Err(err("images", "\"auto\" needs a cache: encoding on every request is too expensive".into())),
                "auto" => true,
                other => return Err(err("images", format!("{other:?} is not auto or off"))),
            },
            keep_request_headers: self
                .keep_request_headers
                .iter()
                .map(|h| HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| err("keep_request_headers", format!("{h:?} is not a header name"))))
                .collect::<Result<Vec<_>, _>>()?,
            log_query: self.log_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: serde_json::Value) -> RawRule {
        serde_json::from_value(json).unwrap()
    }

    fn set(rules: serde_json::Value) -> Result<RuleSet, ConfigError> {
        RuleSet::from_raw(serde_json::from_value(rules).unwrap())
    }

    #[test]
    fn first_match_wins_and_default_respects_origin() {
        let rs = set(serde_json::json!([
            { "name": "admin", "path": ["/admin/*", "/metrics"], "cache": "bypass" },
            { "name": "static", "path": "/static/*", "cache": "override", "edge_ttl": "1y" },
            { "name": "all", "path": "/*", "cache": "override", "edge_ttl": "5m" },
        ]))
        .unwrap();
        let m = |p: &str| rs.match_request(&Method::GET, "x", p).name.clone();
        assert_eq!(m("/admin/users"), "admin");
        assert_eq!(m("/metrics"), "admin", "any listed path matches");
        assert_eq!(m("/static/a.css"), "static");
        assert_eq!(m("/"), "all");
        assert_eq!(rs.match_request(&Method::GET, "x", "/static/a.css").cache, CacheMode::Override { edge_ttl: Duration::from_secs(31_536_000) });
        let empty = RuleSet::default();
        assert_eq!(empty.match_request(&Method::GET, "x", "/any").cache, CacheMode::RespectOrigin);
    }

    #[test]
    fn method_and_host_conditions() {
        let rs = set(serde_json::json!([
            { "name": "get-api", "path": "/api/*", "methods": ["get", "HEAD"], "host": "*.example.com", "cache": "override", "edge_ttl": 300 },
        ]))
        .unwrap();
        assert_eq!(rs.match_request(&Method::GET, "api.example.com", "/api/x").name, "get-api");
        assert_eq!(rs.match_request(&Method::POST, "api.example.com", "/api/x").name, "default");
        assert_eq!(rs.match_request(&Method::GET, "example.com", "/api/x").name, "default");
        assert_eq!(rs.match_request(&Method::GET, "evilexample.com", "/api/x").name, "default");
    }

    #[test]
    fn errors_name_rule_and_field() {
        let cases = [
            (serde_json::json!([{ "name": "a", "cache": "bypass" }]), "rule #1 \"a\" field `path`"),
            (serde_json::json!([{ "name": "a", "path": "x" }]), "field `path`"),
            (serde_json::json!([{ "name": "a", "path": [] }]), "field `path`"),
            (serde_json::json!([{ "path": "/", "cache": "override" }]), "rule #1 \"rule-1\" field `edge_ttl`"),
            (serde_json::json!([{ "name": "a", "path": "/", "cache": "sometimes" }]), "field `cache`"),
            (serde_json::json!([{ "name": "a", "path": "/", "edge_ttl": 5 }]), "field `edge_ttl`"),
            (serde_json::json!([{ "name": "a", "path": "/", "browser_ttl": "5 parsecs" }]), "field `browser_ttl`"),
            (serde_json::json!([{ "name": "a", "path": "/", "status_ttl": { "999": 5 } }]), "field `status_ttl`"),
            (serde_json::json!([{ "name": "a", "path": "/", "methods": ["G T"] }]), "field `methods`"),
            (serde_json::json!([{ "name": "a", "path": "/", "early_hints": true, "early_hints_max": 0 }]), "field `early_hints_max`"),
            (serde_json::json!([{ "name": "a", "path": "/", "bypass_cookies": ["a b"] }]), "field `cookies`"),
            (serde_json::json!([{ "name": "a", "path": "/" }, { "name": "a", "path": "/b" }]), "rule #2 \"a\" field `name`"),
            (serde_json::json!([{ "name": "a", "path": "/", "cache_key": { "query": "none", "include_query": ["x"] } }]), "field `cache_key`"),
        ];
        for (rules, want) in cases {
            let err = set(rules.clone()).unwrap_err().to_string();
            assert!(err.contains(want), "{rules}: {err}");
        }
    }

    #[test]
    fn durations() {
        for (text, secs) in [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86_400), ("1y", 31_536_000), ("45", 45)] {
            assert_eq!(RawDuration::Text(text.into()).to_duration().unwrap().as_secs(), secs, "{text}");
        }
        assert!(RawDuration::Text("m5".into()).to_duration().is_err());
        assert!(RawDuration::Text("99999999999999999999y".into()).to_duration().is_err());
        let r = raw(serde_json::json!({ "name": "x", "path": "/", "cache": "override", "edge_ttl": "10m", "status_ttl": { "404": "1m" } }));
        assert_eq!(r.validate(0).unwrap().status_ttl.get(404), Some(Duration::from_secs(60)));
    }

    #[test]
    fn status_ttl_ranges_narrowest_first() {
        let r = raw(serde_json::json!({ "name": "x", "path": "/", "cache": "override", "edge_ttl": "1y", "error_ttl": "30s",
            "status_ttl": { ">=400": "2m", "4xx": "1m", "404": "10s", "500-503": "5s", "<300": "1d" } }));
        let rule = r.validate(0).unwrap();
        let ttl = |s| rule.status_ttl.get(s).map(|d| d.as_secs());
        assert_eq!([ttl(404), ttl(410), ttl(502), ttl(504), ttl(200), ttl(301)], [Some(10), Some(60), Some(5), Some(120), Some(86_400), None]);
        assert_eq!(rule.error_ttl, Duration::from_secs(30));
        for (key, ok) in [("4xx", true), ("XX", false), ("6xx", false), (">=600", false), ("503-500", false), (">599", false), ("<100", false), ("abc", false), ("99", false)] {
            assert_eq!(StatusRange::parse(key).is_ok(), ok, "{key}");
        }
        assert_eq!(StatusRange::parse(">404").unwrap(), StatusRange { from: 405, to: 599 });
    }
}
