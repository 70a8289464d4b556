//! Worker configuration: parsed from wrangler.toml `[vars]` once, validated into typed values.
//!
//! Loading (reading the platform's env) lives in the glue; this module only parses strings, so a
//! bad config is caught by `cargo test` and answered at runtime with an error naming the field.

pub mod duration;
pub mod error;
pub mod origin_url;

use crate::rules::{RawRule, RuleSet};
use duration::RawDuration;
use error::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// The origin used when `ORIGIN_URL` is not set: the demo origin's default address.
pub const DEFAULT_ORIGIN_URL: &str = "http://127.0.0.1:8080";

/// The in-isolate L1 cache in front of the Cache API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Settings {
    /// Total body bytes held per isolate; 0 turns L1 off.
    pub max_bytes: usize,
    /// Largest single entry.
    pub max_entry_bytes: usize,
    /// Longest an entry is served from L1. A purge cannot reach other isolates' L1, so this
    /// bounds how stale a purged entry can be served there.
    pub max_ttl: Duration,
}

impl L1Settings {
    /// The largest body kept in L1; 0 when L1 is off.
    pub fn entry_limit(&self) -> usize {
        if self.max_bytes > 0 {
            self.max_entry_bytes
        } else {
            0
        }
    }

    /// Whether a body of `len` bytes may be kept in L1.
    pub fn admits(&self, len: usize) -> bool {
        self.max_bytes > 0 && len <= self.max_entry_bytes
    }
}

/// L1 defaults: 8 MiB per isolate, entries up to 256 KiB, served at most 5 s.
pub const L1_DEFAULTS: L1Settings = L1Settings { max_bytes: 8 << 20, max_entry_bytes: 256 << 10, max_ttl: Duration::from_secs(5) };

/// How long an isolate reuses the purge (ban) list before reading it again.
pub const DEFAULT_BAN_REFRESH: Duration = Duration::from_secs(2);

/// The `EDGELAYER` table of `[vars]`, as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// L1 settings.
    pub l1: Option<RawL1>,
    /// Name of the secret holding the purge API's bearer token (default `PURGE_TOKEN`).
    pub purge_token_secret: Option<String>,
    /// See [`DEFAULT_BAN_REFRESH`].
    pub ban_refresh: Option<RawDuration>,
    /// Rate-limit policies by name.
    #[serde(default)]
    pub rate_limits: std::collections::BTreeMap<String, RawRateLimit>,
    /// Request logs.
    pub logs: Option<RawLogs>,
    /// Metrics shipping and alert delivery.
    pub metrics: Option<RawMetrics>,
    /// Header carrying API keys (looked up in KV as `apikey:<key>` → policy name).
    pub api_key_header: Option<String>,
    /// How long an isolate reuses KV answers (tiers, allow and deny lists).
    pub kv_cache_ttl: Option<RawDuration>,
    /// Comment prefixes the minifier keeps, besides its defaults (framework markers).
    #[serde(default)]
    pub minify_kept_comments: Vec<String>,
    /// The minifier drops attributes whose value is the spec's default (default true; see
    /// [`crate::html::DEFAULT_ATTRIBUTES`]).
    pub minify_default_attributes: Option<bool>,
    /// The minifier leaves out end tags the next token implies (default true).
    pub minify_optional_tags: Option<bool>,
    /// The minifier writes character references in their shortest form (default true).
    pub minify_char_refs: Option<bool>,
    /// The minifier drops blank text where it is never rendered: head, table parts (default true).
    pub minify_ignorable_whitespace: Option<bool>,
    /// The minifier writes `name` for `name=""` and no `/>` on HTML elements (default true).
    pub minify_short_start_tags: Option<bool>,
    /// The minifier writes attribute values without quotes where it may (default false: the
    /// page then compresses worse).
    pub minify_unquote_attributes: Option<bool>,
    /// Image resizing settings.
    pub images: Option<RawImages>,
    /// Origin pool: breaker, timeouts, health checks and cache warming.
    pub pool: Option<RawPool>,
    /// Name of the secret holding the admin token (metrics, dashboard); default `ADMIN_TOKEN`.
    pub admin_token_secret: Option<String>,
    /// Request headers never passed to the origin (default [`crate::proxy::DEFAULT_STRIPPED`]).
    pub strip_request_headers: Option<Vec<String>>,
}

/// `[vars.EDGELAYER.pool]` as written (the origins themselves are `ORIGIN_URL`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// Connect failures within `window` that open an origin's breaker.
    pub failures: Option<u32>,
    /// See `failures`.
    pub window: Option<RawDuration>,
    /// How long an open breaker refuses before one probe.
    pub open_for: Option<RawDuration>,
    /// Longest wait for an origin's response headers.
    pub timeout: Option<RawDuration>,
    /// How long an isolate reuses the shared breaker states.
    pub share_ttl: Option<RawDuration>,
    /// Path the cron health check fetches on each origin.
    pub health_path: Option<String>,
    /// Absolute URLs (as clients use them) fetched through the worker on every cron run.
    #[serde(default)]
    pub warm: Vec<String>,
    /// Request bodies up to this many bytes are read in full before they go upstream.
    pub buffer_body: Option<u64>,
}

/// The validated pool settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Breaker thresholds.
    pub breaker: crate::pool::breaker::BreakerSettings,
    /// Longest wait for an origin's response headers (then the attempt counts as failed).
    pub timeout: Duration,
    /// How old the shared breaker states may get, in an isolate and in each data centre's
    /// copy ([`DEFAULT_SHARE_TTL`]).
    pub share_ttl: Duration,
    /// Path the health check fetches.
    pub health_path: String,
    /// URLs warmed on every cron run.
    pub warm: Vec<url::Url>,
    /// Request bodies up to this many bytes are buffered ([`crate::pipeline::upstream::BodyPlan`]); 0:
    /// every body is streamed.
    pub buffer_body: u64,
}

/// Default `pool.share_ttl`: how old the breaker states an isolate uses, and each data
/// centre's Cache API copy of them, may get. The object is read about once per data centre per
/// `share_ttl` (60 reads/s over 300 data centres at 5 s; `npm run bench:fanin`).
pub const DEFAULT_SHARE_TTL: Duration = Duration::from_secs(5);

/// Default `metrics.shards`.
pub const DEFAULT_METRICS_SHARDS: u32 = 16;

/// Default `metrics.flush_every`: each isolate ships its metrics this often (62.5 calls/s per
/// shard at 10,000 isolates and 16 shards; `npm run bench:fanin`).
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(10);

/// Default `pool.buffer_body`: 256 KiB. Held in full, a body reaches the origin in one write,
/// so an origin that answers early (a 413, a 405) and closes still has its answer read: in
/// workerd, 12 of 12 at 256 KiB and 512 KiB, 11 of 12 at 1 MiB, none at 4 MB.
pub const DEFAULT_BUFFER_BODY: u64 = 256 << 10;

/// An optional duration field: its value, or `default` when unset; errors name the field.
fn duration_field(field: &'static str, v: Option<RawDuration>, default: Duration) -> Result<Duration, ConfigError> {
    Ok(v.map(|d| d.to_duration()).transpose().map_err(|reason| ConfigError::Invalid { field, reason })?.unwrap_or(default))
}

impl PoolConfig {
    fn from_raw(raw: RawPool) -> Result<Self, ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        let dur = |field: &'static str, v: Option<RawDuration>, default: u64| -> Result<Duration, ConfigError> {
            let d = duration_field(field, v, Duration::from_secs(default))?;
            if d.is_zero() {
                return Err(invalid(field, "must be at least 1s".into()));
            }
            Ok(d)
        };
        let failures = std::num::NonZeroU32::new(raw.failures.unwrap_or(5)).ok_or_else(|| invalid("pool.failures", "must be above 0".into()))?;
        let window = dur("pool.window", raw.window, 10)?;
        let open_for = dur("pool.open_for", raw.open_for, 10)?;
        let timeout = dur("pool.timeout", raw.timeout, 15)?;
        let share_ttl = dur("pool.share_ttl", raw.share_ttl, DEFAULT_SHARE_TTL.as_secs())?;
        let health_path = raw.health_path.unwrap_or_else(|| "/healthz".into());
        if !health_path.starts_with('/') {
            return Err(invalid("pool.health_path", format!("{health_path:?} must start with /")));
        }
        let warm = raw
            .warm
            .iter()
            .map(|u| match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
                _ => Err(invalid("pool.warm", format!("{u:?} is not an absolute http(s) URL"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let breaker = crate::pool::breaker::BreakerSettings::DEFAULT
            .with_failures(failures)
            .with_window_ms(window.as_millis() as u64)
            .with_open_ms(open_for.as_millis() as u64)
            .with_probe_timeout_ms(timeout.as_millis() as u64);
        let buffer_body = raw.buffer_body.unwrap_or(DEFAULT_BUFFER_BODY);
        if buffer_body > 16 << 20 {
            return Err(invalid("pool.buffer_body", format!("{buffer_body} is above 16 MiB (128 MB isolates hold every buffered request at once)")));
        }
        Ok(Self { breaker, timeout, share_ttl, health_path, warm, buffer_body })
    }
}

/// `[vars.EDGELAYER.images]` as written; every field optional (defaults in
/// [`crate::image::params::ImageLimits`] and [`crate::image::outcome::ImageSettings`]).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawImages {
    /// Allowed widths and heights (before `dpr`).
    pub widths: Option<Vec<u32>>,
    /// Allowed qualities.
    pub qualities: Option<Vec<u8>>,
    /// Largest output side.
    pub max_dimension: Option<u32>,
    /// Largest source in bytes.
    pub max_source_bytes: Option<u64>,
    /// Largest source in pixels.
    pub max_source_pixels: Option<u64>,
    /// Default JPEG quality.
    pub jpeg_quality: Option<u8>,
    /// Default AVIF quality.
    pub avif_quality: Option<u8>,
    /// AVIF encoder speed 1..=10.
    pub avif_speed: Option<u8>,
    /// Decode JPEGs at 1/2, 1/4 or 1/8 size when the output is that much smaller (default true).
    pub shrink_on_load: Option<bool>,
    /// Largest output side AVIF is tried for.
    pub avif_max_side: Option<u32>,
    /// Animated GIFs with more frames pass through unresized.
    pub max_animation_frames: Option<u32>,
    /// Animated GIFs with more pixels over all frames pass through unresized.
    pub max_animation_pixels: Option<u64>,
    /// Name of the secret holding the URL signing key; set: unsigned URLs are refused.
    pub signing_key_secret: Option<String>,
    /// On a decode or encode failure: `error` (default: 4xx/5xx) or `original` (the source bytes).
    pub onerror: Option<String>,
    /// Off-ladder widths, heights and qualities: `snap` (default) or `strict` (400).
    pub ladder: Option<String>,
    /// Options not implemented here: `ignore` (default) or `reject` (400).
    pub unknown_options: Option<String>,
}

/// Validated image settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfig {
    /// What URLs may ask for.
    pub limits: crate::image::params::ImageLimits,
    /// Engine settings.
    pub settings: crate::image::outcome::ImageSettings,
    /// Secret name of the signing key, when URLs must be signed.
    pub signing_key_secret: Option<String>,
    /// Serve the original bytes when processing fails.
    pub onerror_original: bool,
}

impl ImageConfig {
    fn from_raw(raw: RawImages) -> Result<Self, ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        let d = Self::default();
        let max_dimension = raw.max_dimension.unwrap_or(d.limits.max_dimension);
        if !(16..=16384).contains(&max_dimension) {
            return Err(invalid("images.max_dimension", format!("{max_dimension} is not within 16..=16384")));
        }
        let widths = raw.widths.unwrap_or(d.limits.widths);
        if widths.is_empty() || widths.iter().any(|w| *w == 0 || *w > max_dimension) {
            return Err(invalid("images.widths", format!("{widths:?}: need at least one width, each 1..={max_dimension}")));
        }
        let qualities = raw.qualities.unwrap_or(d.limits.qualities);
        if qualities.is_empty() || qualities.iter().any(|q| !(1..=100).contains(q)) {
            return Err(invalid("images.qualities", format!("{qualities:?}: need at least one quality, each 1..=100")));
        }
        let quality = |field: &'static str, v: Option<u8>, default: u8| match v.unwrap_or(default) {
            q @ 1..=100 => Ok(q),
            q => Err(invalid(field, format!("{q} is not within 1..=100"))),
        };
        let avif_speed = raw.avif_speed.unwrap_or(d.settings.avif_speed);
        if !(1..=10).contains(&avif_speed) {
            return Err(invalid("images.avif_speed", format!("{avif_speed} is not within 1..=10")));
        }
        let settings = crate::image::outcome::ImageSettings {
            max_source_bytes: raw.max_source_bytes.unwrap_or(d.settings.max_source_bytes),
            max_source_pixels: raw.max_source_pixels.unwrap_or(d.settings.max_source_pixels),
            jpeg_quality: quality("images.jpeg_quality", raw.jpeg_quality, d.settings.jpeg_quality)?,
            avif_quality: quality("images.avif_quality", raw.avif_quality, d.settings.avif_quality)?,
            avif_speed,
            avif_max_side: raw.avif_max_side.unwrap_or(d.settings.avif_max_side),
            max_animation_frames: raw.max_animation_frames.unwrap_or(d.settings.max_animation_frames),
            max_animation_pixels: raw.max_animation_pixels.unwrap_or(d.settings.max_animation_pixels),
            shrink_on_load: raw.shrink_on_load.unwrap_or(d.settings.shrink_on_load),
        };
        if settings.max_source_bytes == 0 || settings.max_source_pixels == 0 {
            return Err(invalid("images.max_source_bytes", "source limits must be above 0".into()));
        }
        let onerror_original = match raw.onerror.as_deref().unwrap_or("error") {
            "error" => false,
            "original" => true,
            other => return Err(invalid("images.onerror", format!("{other:?} is not error or original"))),
        };
        if raw.signing_key_secret.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("images.signing_key_secret", "must not be empty".into()));
        }
        let ladder = match raw.ladder.as_deref().unwrap_or("snap") {
            "snap" => crate::image::params::Ladder::Snap,
            "strict" => crate::image::params::Ladder::Strict,
            other => return Err(invalid("images.ladder", format!("{other:?} is not snap or strict"))),
        };
        let unknown = match raw.unknown_options.as_deref().unwrap_or("ignore") {
            "ignore" => crate::image::params::UnknownOptions::Ignore,
            "reject" => crate::image::params::UnknownOptions::Reject,
            other => return Err(invalid("images.unknown_options", format!("{other:?} is not ignore or reject"))),
        };
        Ok(Self { limits: crate::image::params::ImageLimits { widths, qualities, max_dimension, ladder, unknown }, settings, signing_key_secret: raw.signing_key_secret, onerror_original })
    }
}

/// A rate-limit policy as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Requests per window.
    pub limit: u32,
    /// Window, 1 s ..= 1 day.
    pub window: RawDuration,
    /// Requests allowed at once (default: `limit`).
    pub burst: Option<u32>,
    /// Key parts: `ip`, `ip/N`, `header:NAME`, `jwt_sub` (default `["ip"]`).
    pub key: Option<Vec<String>>,
    /// `block` (429, default) or `log` (count and annotate only).
    pub action: Option<String>,
    /// When the limiter cannot be reached: `open` (allow, default) or `closed` (503).
    pub fail: Option<String>,
    /// Which responses spend quota: `"all"` (default), `"failures"` (status >= 400) or a list
    /// of statuses, classes and ranges (`["401", "403"]`).
    pub count: Option<RawCount>,
    /// Once the limit is hit, the key is refused for this long (default: no penalty).
    pub block_for: Option<RawDuration>,
    /// The refusal to send instead of the default 429 problem JSON.
    pub response: Option<RawLimitResponse>,
}

/// `logs` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    /// Share of requests logged, 0..=1 (default 1; server errors always).
    pub sample: Option<f64>,
}

/// `metrics` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// See [`MetricsConfig::shards`].
    pub shards: Option<u32>,
    /// See [`MetricsConfig::flush_every`].
    pub flush_every: Option<RawDuration>,
    /// See [`MetricsConfig::alert_webhook_secret`].
    pub alert_webhook_secret: Option<String>,
    /// See [`MetricsConfig::dashboard_url`].
    pub dashboard_url: Option<String>,
}

/// How the isolates' metrics reach the `EdgeMetrics` objects, and where alerts go.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Metrics objects the isolates spread over (each isolate ships to one, chosen at random;
    /// readers merge them all): 1 to 64, default 16.
    pub shards: u32,
    /// How often an isolate ships its sums (1 s to 1 min, default 10 s).
    pub flush_every: Duration,
    /// The secret holding the alert webhook URL (default `ALERT_WEBHOOK_URL`; unset: alerts
    /// are shown but not sent).
    pub alert_webhook_secret: String,
    /// Link to the dashboard put in alert messages.
    pub dashboard_url: Option<url::Url>,
}

impl MetricsConfig {
    fn from_raw(raw: RawMetrics) -> Result<Self, ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        let shards = raw.shards.unwrap_or(DEFAULT_METRICS_SHARDS);
        if !(1..=64).contains(&shards) {
            return Err(invalid("metrics.shards", format!("{shards} is not within 1..=64")));
        }
        let flush_every = duration_field("metrics.flush_every", raw.flush_every, DEFAULT_FLUSH_EVERY)?;
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&flush_every) {
            return Err(invalid("metrics.flush_every", "must be between 1s and 1m".into()));
        }
        let alert_webhook_secret = raw.alert_webhook_secret.unwrap_or_else(|| "ALERT_WEBHOOK_URL".into());
        if alert_webhook_secret.is_empty() {
            return Err(invalid("metrics.alert_webhook_secret", "must not be empty".into()));
        }
        let dashboard_url = raw
            .dashboard_url
            .map(|u| url::Url::parse(&u).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| invalid("metrics.dashboard_url", format!("{u:?} is not an http(s) URL"))))
            .transpose()?;
        Ok(Self { shards, flush_every, alert_webhook_secret, dashboard_url })
    }
}

/// `count` as written: one word or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCount {
    /// `"all"`, `"failures"` or one status.
    One(String),
    /// Statuses, classes and ranges.
    Many(Vec<String>),
}

/// A policy's own refusal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimitResponse {
    /// 400-599 (default 429).
    pub status: Option<u16>,
    /// Default `text/plain; charset=utf-8`.
    pub content_type: Option<String>,
    /// The body.
    pub body: String,
}

/// A policy's own refusal, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitResponse {
    /// 400-599.
    pub status: u16,
    /// The media type.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// A validated rate-limit policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitPolicy {
    /// Its name (appears in `RateLimit-Policy`).
    pub name: String,
    /// The quota.
    pub quota: crate::ratelimit::Quota,
    /// Key composition.
    pub key: Vec<crate::ratelimit::key::KeyPart>,
    /// Log only, never block.
    pub log_only: bool,
    /// Deny (503) when the limiter is unreachable.
    pub fail_closed: bool,
    /// Which responses spend quota.
    pub counted: crate::ratelimit::block::Counted,
    /// The penalty once the limit is hit, ms (0: none).
    pub block_for_ms: u64,
    /// The refusal to send (`None`: 429 problem JSON).
    pub response: Option<LimitResponse>,
}

/// L1 settings as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawL1 {
    /// See [`L1Settings::max_bytes`].
    pub max_bytes: Option<usize>,
    /// See [`L1Settings::max_entry_bytes`].
    pub max_entry_bytes: Option<usize>,
    /// See [`L1Settings::max_ttl`].
    pub max_ttl: Option<RawDuration>,
}

/// The worker's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    /// Where requests are proxied to (`ORIGIN_URL`: one or more, with weights).
    pub origins: Vec<crate::pool::Origin>,
    /// Breaker, timeouts, health checks and warming.
    pub pool: PoolConfig,
    /// Secret name of the admin token (metrics, dashboard).
    pub admin_token_secret: String,
    /// Per-path rules.
    pub rules: RuleSet,
    /// The in-isolate cache.
    pub l1: L1Settings,
    /// Secret name of the purge token.
    pub purge_token_secret: String,
    /// Ban list reuse time.
    pub ban_refresh: Duration,
    /// Rate-limit policies by name.
    pub rate_limits: std::collections::BTreeMap<String, RateLimitPolicy>,
    /// Share of requests that get a log line, 0..=1 (server errors always do).
    pub log_sample: f64,
    /// Metrics shipping and alert delivery.
    pub metrics: MetricsConfig,
    /// API key header (lower case).
    pub api_key_header: String,
    /// KV answer reuse time in an isolate.
    pub kv_cache_ttl: Duration,
    /// Minifier settings (defaults plus configured kept comments).
    pub minify: crate::html::MinifyOptions,
    /// Image resizing.
    pub images: ImageConfig,
    /// Request headers stripped before the origin (rules may keep some by name).
    pub strip_request_headers: Vec<http::HeaderName>,
}

impl EdgeConfig {
    /// One line for the log when an isolate starts with this config: what it will serve with,
    /// so an operator sees a deploy's config took (and a broken one is logged instead).
    pub fn summary(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let origins = self.origins.iter().map(|o| o.url.origin()).collect::<Vec<_>>().join(", ");
        format!("{}, {}: {origins}", plural(self.rules.rules().len(), "rule", "rules"), plural(self.origins.len(), "origin", "origins"))
    }

    /// Builds the config from the raw `[vars]`: `ORIGIN_URL` and the `EDGELAYER` table (as the
    /// JSON the platform hands over). `None` means the var is unset.
    pub fn from_vars(origin_url: Option<&str>, edgelayer: Option<serde_json::Value>) -> Result<Self, ConfigError> {
        let origins = crate::pool::parse_origins(origin_url.unwrap_or(DEFAULT_ORIGIN_URL))?;
        let raw: RawConfig = match edgelayer {
            None => RawConfig::default(),
            Some(v) => serde_json::from_value(v).map_err(|e| ConfigError::Invalid { field: "EDGELAYER", reason: e.to_string() })?,
        };
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        let l1_raw = raw.l1.unwrap_or_default();
        let l1 = L1Settings {
            max_bytes: l1_raw.max_bytes.unwrap_or(L1_DEFAULTS.max_bytes),
            max_entry_bytes: l1_raw.max_entry_bytes.unwrap_or(L1_DEFAULTS.max_entry_bytes),
            max_ttl: duration_field("l1.max_ttl", l1_raw.max_ttl, L1_DEFAULTS.max_ttl)?,
        };
        if l1.max_bytes > 0 && l1.max_entry_bytes > l1.max_bytes {
            return Err(invalid("l1.max_entry_bytes", "must not exceed l1.max_bytes".into()));
        }
        let ban_refresh = duration_field("ban_refresh", raw.ban_refresh, DEFAULT_BAN_REFRESH)?;
        let purge_token_secret = raw.purge_token_secret.unwrap_or_else(|| "PURGE_TOKEN".into());
        if purge_token_secret.is_empty() {
            return Err(invalid("purge_token_secret", "must not be empty".into()));
        }
        let mut rate_limits = std::collections::BTreeMap::new();
        for (name, r) in raw.rate_limits {
            let field = |f: &'static str, reason: String| ConfigError::Invalid { field: f, reason: format!("rate_limits.{name}: {reason}") };
            let window = r.window.to_duration().map_err(|e| field("window", e))?;
            let limit = std::num::NonZeroU32::new(r.limit).ok_or_else(|| field("limit", "must be above 0".into()))?;
            let burst = r.burst.map(|b| std::num::NonZeroU32::new(b).ok_or_else(|| field("burst", "must be above 0".into()))).transpose()?;
            let quota = crate::ratelimit::Quota::new(limit, window.as_millis() as u64, burst).ok_or_else(|| field("window", "must be between 1s and 1d".into()))?;
            let key = r.key.unwrap_or_else(|| vec!["ip".into()]).iter().map(|k| crate::ratelimit::key::KeyPart::parse(k).map_err(|e| field("key", e))).collect::<Result<Vec<_>, _>>()?;
            if key.is_empty() {
                return Err(field("key", "must name at least one part".into()));
            }
            let log_only = match r.action.as_deref().unwrap_or("block") {
                "block" => false,
                "log" => true,
                other => return Err(field("action", format!("{other:?} is not block or log"))),
            };
            let fail_closed = match r.fail.as_deref().unwrap_or("open") {
                "open" => false,
                "closed" => true,
                other => return Err(field("fail", format!("{other:?} is not open or closed"))),
            };
            let counted = match r.count {
                None => Ok(crate::ratelimit::block::Counted::All),
                Some(RawCount::One(one)) => crate::ratelimit::block::Counted::parse(&[one]),
                Some(RawCount::Many(list)) => crate::ratelimit::block::Counted::parse(&list),
            }
            .map_err(|e| field("count", e))?;
            let block_for_ms = match r.block_for {
                None => 0,
                Some(d) => {
                    let d = d.to_duration().map_err(|e| field("block_for", e))?;
                    if d > std::time::Duration::from_secs(86_400) {
                        return Err(field("block_for", "must be at most 1d".into()));
                    }
                    d.as_millis() as u64
                }
            };
            let response = match r.response {
                None => None,
                Some(raw) => {
                    let status = raw.status.unwrap_or(429);
                    if !(400..=599).contains(&status) {
                        return Err(field("response", format!("status {status} is not within 400-599")));
                    }
                    let content_type = raw.content_type.unwrap_or_else(|| "text/plain; charset=utf-8".into());
                    if http::HeaderValue::from_str(&content_type).is_err() {
                        return Err(field("response", format!("content_type {content_type:?} is not a header value")));
                    }
                    Some(LimitResponse { status, content_type, body: raw.body })
                }
            };
            rate_limits.insert(name.clone(), RateLimitPolicy { name, quota, key, log_only, fail_closed, counted, block_for_ms, response });
        }
        let rules = RuleSet::from_raw(raw.rules)?;
        for (i, rule) in rules.rules().iter().enumerate() {
            if let Some(p) = rule.rate_limit.as_deref().filter(|p| !rate_limits.contains_key(*p)) {
                return Err(ConfigError::rule(i, &rule.name, "rate_limit", format!("{p:?} is not a policy in rate_limits")));
            }
        }
        let kv_cache_ttl = duration_field("kv_cache_ttl", raw.kv_cache_ttl, Duration::from_secs(30))?;
        let api_key_header = raw.api_key_header.unwrap_or_else(|| "x-api-key".into()).to_ascii_lowercase();
        if http::HeaderName::from_bytes(api_key_header.as_bytes()).is_err() {
            return Err(invalid("api_key_header", format!("{api_key_header:?} is not a header name")));
        }
        if let Some(bad) = raw.minify_kept_comments.iter().find(|c| c.trim().is_empty()) {
            return Err(invalid("minify_kept_comments", format!("{bad:?}: an empty prefix would keep every comment")));
        }
        let minify = crate::html::MinifyOptions::new()
            .with_kept_comments(raw.minify_kept_comments)
            .with_remove_default_attributes(raw.minify_default_attributes.unwrap_or(true))
            .with_omit_optional_tags(raw.minify_optional_tags.unwrap_or(true))
            .with_shorten_char_refs(raw.minify_char_refs.unwrap_or(true))
            .with_drop_ignorable_whitespace(raw.minify_ignorable_whitespace.unwrap_or(true))
            .with_short_start_tags(raw.minify_short_start_tags.unwrap_or(true))
            .with_unquote_attributes(raw.minify_unquote_attributes.unwrap_or(false));
        let images = ImageConfig::from_raw(raw.images.unwrap_or_default())?;
        let mut pool = PoolConfig::from_raw(raw.pool.unwrap_or_default())?;
        pool.breaker = pool.breaker.with_lone_origin(origins.len() == 1);
        let admin_token_secret = raw.admin_token_secret.unwrap_or_else(|| "ADMIN_TOKEN".into());
        if admin_token_secret.is_empty() {
            return Err(invalid("admin_token_secret", "must not be empty".into()));
        }
        let strip_request_headers = match raw.strip_request_headers {
            None => crate::proxy::DEFAULT_STRIPPED.iter().map(|h| http::HeaderName::from_static(h)).collect(),
            Some(list) => list
                .iter()
                .map(|h| http::HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| invalid("strip_request_headers", format!("{h:?} is not a header name"))))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let log_sample = raw.logs.and_then(|l| l.sample).unwrap_or(1.0);
        if !(0.0..=1.0).contains(&log_sample) {
            return Err(invalid("logs.sample", format!("{log_sample} is not within 0..=1")));
        }
        let metrics = MetricsConfig::from_raw(raw.metrics.unwrap_or_default())?;
        Ok(Self { origins, pool, admin_token_secret, rules, l1, purge_token_secret, ban_refresh, rate_limits, log_sample, metrics, api_key_header, kv_cache_ttl, minify, images, strip_request_headers })
    }

    /// Validates the `[vars]` of a wrangler.toml (as JSON): the same path the worker takes.
    pub fn from_vars_json(vars: &serde_json::Value) -> Result<Self, ConfigError> {
        let origin = vars.get("ORIGIN_URL").and_then(|v| v.as_str());
        Self::from_vars(origin, vars.get("EDGELAYER").cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::origin_url::OriginUrl;
    use super::*;

    #[test]
    fn default_origin_is_the_demo_origin() {
        let cfg = EdgeConfig::from_vars(None, None).unwrap();
        assert_eq!(cfg.origins[0].url.as_str(), "http://127.0.0.1:8080");
        assert_eq!(cfg.origins.len(), 1);
    }

    #[test]
    fn summary_names_the_rules_and_origins() {
        let cfg = EdgeConfig::from_vars(Some("http://a.example, http://user:secret@b.example:8080/base"), Some(serde_json::json!({ "rules": [{ "name": "all", "path": "/*" }] }))).unwrap();
        assert_eq!(cfg.summary(), "1 rule, 2 origins: http://a.example, http://b.example:8080", "no credentials, no path");
        let one = EdgeConfig::from_vars(None, None).unwrap();
        assert!(one.summary().ends_with("1 origin: http://127.0.0.1:8080"), "{}", one.summary());
    }

    #[test]
    fn origin_leaves_out_credentials_and_path() {
        assert_eq!(OriginUrl::parse("ORIGIN_URL", "https://user:secret@example.com:8443/base/").unwrap().origin(), "https://example.com:8443");
        assert_eq!(OriginUrl::parse("ORIGIN_URL", "http://127.0.0.1:80").unwrap().origin(), "http://127.0.0.1");
    }

    #[test]
    fn join_keeps_path_and_query_verbatim() {
        let o = OriginUrl::parse("ORIGIN_URL", "https://example.com/").unwrap();
        assert_eq!(o.join("/a/b?x=1&y=%20"), "https://example.com/a/b?x=1&y=%20");
        let o = OriginUrl::parse("ORIGIN_URL", "http://127.0.0.1:9000/base").unwrap();
        assert_eq!(o.join("/p"), "http://127.0.0.1:9000/base/p");
    }

    #[test]
    fn table_errors_name_the_field() {
        let err = EdgeConfig::from_vars(None, Some(serde_json::json!({ "rulez": [] }))).unwrap_err();
        assert!(err.to_string().contains("EDGELAYER") && err.to_string().contains("rulez"), "{err}");
        let err = EdgeConfig::from_vars(None, Some(serde_json::json!({ "l1": { "max_ttl": "soon" } }))).unwrap_err();
        assert!(err.to_string().contains("l1.max_ttl"), "{err}");
        let cfg = EdgeConfig::from_vars(None, Some(serde_json::json!({ "l1": { "max_bytes": 0 } }))).unwrap();
        assert_eq!(cfg.l1.max_bytes, 0);
        assert_eq!(cfg.l1.entry_limit(), 0, "L1 off keeps nothing");
        assert!(!cfg.l1.admits(0));
        assert_eq!(L1_DEFAULTS.entry_limit(), 256 << 10);
        assert!(L1_DEFAULTS.admits(256 << 10) && !L1_DEFAULTS.admits((256 << 10) + 1));
        let cfg = EdgeConfig::from_vars(None, Some(serde_json::json!({ "minify_kept_comments": ["google_ad_section"] }))).unwrap();
        assert!(cfg.minify.keeps_comment(" google_ad_section_start ") && cfg.minify.keeps_comment("$") && !cfg.minify.keeps_comment("note"));
        assert!(EdgeConfig::from_vars(None, Some(serde_json::json!({ "minify_kept_comments": [" "] }))).is_err());
    }

    #[test]
    fn image_settings_validate() {
        let cfg = EdgeConfig::from_vars(None, Some(serde_json::json!({ "images": { "widths": [320, 640], "avif_speed": 6, "onerror": "original" } }))).unwrap();
        assert_eq!(cfg.images.limits.widths, [320, 640]);
        assert_eq!(cfg.images.settings.avif_speed, 6);
        assert!(cfg.images.onerror_original);
        for (bad, field) in [
            (serde_json::json!({ "widths": [] }), "images.widths"),
            (serde_json::json!({ "widths": [99999] }), "images.widths"),
            (serde_json::json!({ "qualities": [0] }), "images.qualities"),
            (serde_json::json!({ "avif_speed": 11 }), "images.avif_speed"),
            (serde_json::json!({ "jpeg_quality": 101 }), "images.jpeg_quality"),
            (serde_json::json!({ "onerror": "redirect" }), "images.onerror"),
            (serde_json::json!({ "ladder": "loose" }), "images.ladder"),
            (serde_json::json!({ "unknown_options": "maybe" }), "images.unknown_options"),
            (serde_json::json!({ "max_source_pixels": 0 }), "images.max_source_bytes"),
        ] {
            let err = EdgeConfig::from_vars(None, Some(serde_json::json!({ "images": bad }))).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn rate_limit_policies_validate() {
        let ok = serde_json::json!({
            "rate_limits": { "default": { "limit": 100, "window": "1m" }, "keys": { "limit": 5, "window": "1s", "key": ["header:x-api-key", "ip/48"], "action": "log", "fail": "closed" } },
            "rules": [{ "name": "api", "path": "/api/*", "rate_limit": "default" }]
        });
        let cfg = EdgeConfig::from_vars(None, Some(ok)).unwrap();
        assert_eq!(cfg.rate_limits["default"].quota.limit(), 100);
        assert!(cfg.rate_limits["keys"].log_only && cfg.rate_limits["keys"].fail_closed);
        for (bad, want) in [
            (serde_json::json!({ "rate_limits": { "x": { "limit": 0, "window": 60 } } }), "rate_limits.x: must be above 0"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": "2d" } } }), "between 1s and 1d"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "key": ["cookie"] } } }), "rate_limits.x"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "action": "shout" } } }), "block or log"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "count": "some" } } }), "rate_limits.x: \"some\" is not a status"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "count": [] } } }), "field `count`"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "block_for": "2d" } } }), "field `block_for`"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "response": { "status": 200, "body": "" } } } }), "status 200 is not within 400-599"),
            (serde_json::json!({ "rate_limits": { "x": { "limit": 1, "window": 60, "response": { "body": "", "content_type": "a\nb" } } } }), "content_type"),
            (serde_json::json!({ "rules": [{ "name": "r", "path": "/", "rate_limit": "nope" }] }), "rule #1 \"r\" field `rate_limit`"),
            (serde_json::json!({ "rules": [{ "name": "r", "path": "/", "headers": "fancy" }] }), "field `headers`"),
            (serde_json::json!({ "logs": { "sample": 1.5 } }), "field `logs.sample`"),
            (serde_json::json!({ "metrics": { "shards": 0 } }), "field `metrics.shards`"),
            (serde_json::json!({ "metrics": { "flush_every": "2m" } }), "field `metrics.flush_every`"),
            (serde_json::json!({ "metrics": { "dashboard_url": "ftp://x" } }), "field `metrics.dashboard_url`"),
        ] {
            let err = EdgeConfig::from_vars(None, Some(bad.clone())).unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn stripped_request_headers_default_and_validate() {
        let cfg = EdgeConfig::from_vars(None, None).unwrap();
        assert!(cfg.strip_request_headers.iter().any(|h| h == "x-original-url"));
        assert!(cfg.pool.breaker.lone_origin(), "one origin: its breaker never opens");
        let cfg = EdgeConfig::from_vars(Some("http://a, http://b"), Some(serde_json::json!({ "strip_request_headers": ["X-Debug"] }))).unwrap();
        assert_eq!(cfg.strip_request_headers, ["x-debug"]);
        assert!(!cfg.pool.breaker.lone_origin());
        let err = EdgeConfig::from_vars(None, Some(serde_json::json!({ "strip_request_headers": ["a b"] }))).unwrap_err().to_string();
        assert!(err.contains("strip_request_headers"), "{err}");
        let err = EdgeConfig::from_vars(None, Some(serde_json::json!({ "rules": [{ "name": "r", "path": "/", "keep_request_headers": ["a b"] }] }))).unwrap_err().to_string();
        assert!(err.contains("rule #1 \"r\" field `keep_request_headers`"), "{err}");
    }

    #[test]
    fn bad_origins_name_the_field() {
        for bad in ["ftp://x", "not a url", "http://x/?q=1", "http://x/#f", ""] {
            let err = OriginUrl::parse("ORIGIN_URL", bad).unwrap_err();
            assert!(err.to_string().starts_with("config field `ORIGIN_URL`"), "{bad}: {err}");
        }
    }

    #[test]
    fn pool_settings_validate_and_name_the_field() {
        let cfg = EdgeConfig::from_vars(Some("http://a:1 weight=2, http://b:2"), Some(serde_json::json!({ "pool": { "failures": 2, "open_for": "3s", "warm": ["https://example.com/"] } }))).unwrap();
        assert_eq!(cfg.origins.len(), 2);
        assert_eq!(cfg.pool.breaker.open_ms(), 3_000);
        assert_eq!(cfg.pool.health_path, "/healthz");
        assert_eq!(cfg.admin_token_secret, "ADMIN_TOKEN");
        for (pool, field) in [(serde_json::json!({ "failures": 0 }), "pool.failures"), (serde_json::json!({ "open_for": 0 }), "pool.open_for"), (serde_json::json!({ "warm": ["/relative"] }), "pool.warm"), (serde_json::json!({ "health_path": "healthz" }), "pool.health_path")] {
            let err = EdgeConfig::from_vars(None, Some(serde_json::json!({ "pool": pool }))).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}
