//! The edge's metrics: what each request did, summed per rule and per origin. Isolates sum into
//! a [`Slice`] and ship it; the aggregate (a Durable Object in the glue) keeps totals since it
//! started (Prometheus counters) and one slice per minute for the last hour (the dashboard and
//! the alerts). Pure: times come in as arguments.
//!
//! Names match the origin's `/metrics`: `<side>_http_requests_total` and
//! `<side>_http_request_duration_seconds`, the same `status` label and the same buckets
//! ([`super::LATENCY_BUCKETS`]).

use super::alerts::{self, Alert, Thresholds};
pub use super::summary::Summary;
use super::{Histogram, PromText};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One minute, in ms.
pub const MINUTE_MS: u64 = 60_000;
/// Minutes of history kept (the dashboard shows the last hour).
pub const HISTORY_MINUTES: u64 = 60;

/// Cache outcomes that count as served from cache for the hit ratio.
const SERVED_FROM_CACHE: [&str; 4] = ["hit", "stale", "updating", "revalidated"];
/// Cache outcomes that count toward the hit ratio's denominator besides those: the cache was
/// consulted and missed. `bypass` (uncacheable by rule or request) and `none` (admin, errors
/// before the cache) are left out, as Cloudflare leaves out dynamic requests.
const CACHE_MISSES: [&str; 2] = ["miss", "expired"];

/// One finished request, as the glue saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord<'a> {
    /// The rule's name.
    pub rule: &'a str,
    /// Lower-case cache outcome (`hit`, `miss`, `bypass`, …) or `none`.
    pub cache: &'a str,
    /// Response status.
    pub status: u16,
    /// Time to the response headers, seconds.
    pub seconds: f64,
    /// Request body bytes received, when declared (`Content-Length`).
    pub bytes_in: Option<u64>,
    /// Body bytes sent, when known.
    pub bytes_out: Option<u64>,
    /// Refused by the rate limiter.
    pub limited: bool,
}

/// How one origin attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginResult {
    /// The origin answered with this status.
    Status(u16),
    /// No answer: connect error or reset.
    Error,
    /// No answer in time.
    Timeout,
}

impl OriginResult {
    fn label(self) -> String {
        match self {
            Self::Status(s) => s.to_string(),
            Self::Error => "error".into(),
            Self::Timeout => "timeout".into(),
        }
    }
}

/// Per-rule sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleStats {
    /// Requests by `"<cache> <status>"`.
    pub requests: BTreeMap<String, u64>,
    /// Time to response headers.
    pub latency: Histogram,
    /// Request body bytes received (where declared).
    #[serde(default)]
    pub bytes_in: u64,
    /// Body bytes sent (where known).
    pub bytes_out: u64,
    /// Bytes saved by stage (`minify`, `brotli`, `minify_brotli`, `image`).
    pub saved: BTreeMap<String, u64>,
    /// Requests refused by the rate limiter.
    pub limited: u64,
}

/// Per-origin sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OriginStats {
    /// Attempts by status code, `error` or `timeout`.
    pub attempts: BTreeMap<String, u64>,
    /// Time to the origin's response headers.
    pub latency: Histogram,
}

/// Sums over some span of requests; mergeable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// By rule name.
    pub rules: BTreeMap<String, RuleStats>,
    /// By origin URL.
    pub origins: BTreeMap<String, OriginStats>,
}

impl Slice {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.origins.is_empty()
    }

    /// Adds one request.
    pub fn record(&mut self, r: &RequestRecord<'_>) {
        let s = self.rules.entry(r.rule.to_owned()).or_default();
        *s.requests.entry(format!("{} {}", r.cache, r.status)).or_default() += 1;
        s.latency.observe(r.seconds.max(0.0));
        s.bytes_in += r.bytes_in.unwrap_or(0);
        s.bytes_out += r.bytes_out.unwrap_or(0);
        s.limited += u64::from(r.limited);
    }

    /// Adds bytes saved by a stage (known once a streamed body has ended).
    pub fn record_saved(&mut self, rule: &str, stage: &str, bytes_in: u64, bytes_out: u64) {
        let s = self.rules.entry(rule.to_owned()).or_default();
        *s.saved.entry(stage.to_owned()).or_default() += bytes_in.saturating_sub(bytes_out);
    }

    /// Adds body bytes sent whose count was known only at the end of the stream.
    pub fn record_bytes_out(&mut self, rule: &str, bytes: u64) {
        self.rules.entry(rule.to_owned()).or_default().bytes_out += bytes;
    }

    /// Adds one origin attempt.
    pub fn record_origin(&mut self, origin: &str, result: OriginResult, seconds: f64) {
        let s = self.origins.entry(origin.to_owned()).or_default();
        *s.attempts.entry(result.label()).or_default() += 1;
        s.latency.observe(seconds.max(0.0));
    }

    /// Adds another slice.
    pub fn merge(&mut self, other: &Slice) {
        for (name, o) in &other.rules {
            let s = self.rules.entry(name.clone()).or_default();
            for (k, n) in &o.requests {
                *s.requests.entry(k.clone()).or_default() += n;
            }
            s.latency.merge(&o.latency);
            s.bytes_in += o.bytes_in;
            s.bytes_out += o.bytes_out;
            for (k, n) in &o.saved {
                *s.saved.entry(k.clone()).or_default() += n;
            }
            s.limited += o.limited;
        }
        for (url, o) in &other.origins {
            let s = self.origins.entry(url.clone()).or_default();
            for (k, n) in &o.attempts {
                *s.attempts.entry(k.clone()).or_default() += n;
            }
            s.latency.merge(&o.latency);
        }
    }

    /// The figures the dashboard and the alerts use, over this slice.
    pub fn summary(&self) -> Summary {
        summarize(self.rules.values())
    }

    /// The same figures for each rule.
    pub fn rule_summaries(&self) -> BTreeMap<String, Summary> {
        self.rules.iter().map(|(name, s)| (name.clone(), summarize(std::iter::once(s)))).collect()
    }
}

/// The summary of some rules' sums (one rule, or all of them).
fn summarize<'a>(rules: impl Iterator<Item = &'a RuleStats>) -> Summary {
    let mut latency = Histogram::default();
    let mut out = Summary::default();
    let (mut from_cache, mut cache_lookups) = (0u64, 0u64);
    for s in rules {
        latency.merge(&s.latency);
        out.bytes_out += s.bytes_out;
        out.bytes_saved += s.saved.values().sum::<u64>();
        out.limited += s.limited;
        for (k, n) in &s.requests {
            let (cache, status) = k.split_once(' ').unwrap_or((k, "0"));
            out.requests += n;
            if status.parse::<u16>().is_ok_and(|s| s >= 500) {
                out.errors += n;
            }
            if SERVED_FROM_CACHE.contains(&cache) {
                from_cache += n;
                cache_lookups += n;
            } else if CACHE_MISSES.contains(&cache) {
                cache_lookups += n;
            }
        }
    }
    out.p50 = latency.quantile(0.5);
    out.p95 = latency.quantile(0.95);
    out.p99 = latency.quantile(0.99);
    out.hit_ratio = (cache_lookups > 0).then(|| from_cache as f64 / cache_lookups as f64);
    out.error_rate = (out.requests > 0).then(|| out.errors as f64 / out.requests as f64);
    out
}

/// When an isolate ships its sums: `flush_every` after its first request, then `flush_every`
/// after each flush. A new isolate's first request ships nothing: in workerd, shipping on it
/// (the `EdgeMetrics` object's first call) made that answer 11 ms slower (BENCHMARKS.md, cold
/// start). The metrics endpoints flush before they read, so nothing waits on the clock there.
///
/// Beware: an isolate that is evicted before it ships loses what it summed since its last
/// flush, and that now includes its first request (Analytics Engine, when bound, still has
/// every request). Every request after the first was already in that position.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlushClock {
    /// The isolate's first record, or the last flush (ms).
    since: Option<f64>,
}

impl FlushClock {
    /// A request was recorded at `now`: the clock starts with the first one.
    pub fn recorded(&mut self, now: f64) {
        self.since.get_or_insert(now);
    }

    /// The sums were taken for shipping at `now`.
    pub fn flushed(&mut self, now: f64) {
        self.since = Some(now);
    }

    /// Whether `every_ms` has passed since the first record or the last flush.
    pub fn due(&self, now: f64, every_ms: f64) -> bool {
        self.since.is_some_and(|since| now - since >= every_ms)
    }
}

/// One minute of the dashboard's series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// The minute's start, ms since the epoch.
    pub t: u64,
    /// Requests per second over the minute.
    pub rps: f64,
    /// The minute's figures.
    #[serde(flatten)]
    pub summary: Summary,
}

/// Totals since the aggregate started plus a slice per minute for the last hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Since the aggregate started (Prometheus counters).
    pub totals: Slice,
    /// Keyed by minute number (ms / 60 000).
    pub minutes: BTreeMap<u64, Slice>,
}

/// What [`Aggregate::add_batches`] changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changed {
    /// Minutes written to (still within the hour).
    pub touched: std::collections::BTreeSet<u64>,
    /// Minutes dropped from the hour.
    pub dropped: Vec<u64>,
}

/// The storage key of one minute's slice in a metrics object (zero-padded: keys sort by time).
pub fn minute_key(minute: u64) -> String {
    format!("m:{minute:012}")
}

/// The name of metrics object `index` of `shards`.
pub fn shard_name(index: u32) -> String {
    format!("metrics-{index}")
}

impl Aggregate {
    /// Adds a slice recorded during `minute` (ms / 60 000) and drops minutes older than an hour
    /// before `now` (ms). Slices from more than an hour ago still count in the totals.
    pub fn add(&mut self, minute: u64, slice: &Slice, now: u64) {
        self.totals.merge(slice);
        let oldest = (now / MINUTE_MS).saturating_sub(HISTORY_MINUTES - 1);
        if minute >= oldest {
            self.minutes.entry(minute).or_default().merge(slice);
        }
        self.minutes.retain(|m, _| *m >= oldest);
    }

    /// Adds what one isolate shipped (`(minute, slice)` pairs) and says what changed, so the
    /// metrics object writes only that: the totals, the minutes touched, and the minutes that
    /// fell out of the hour (to delete). Storing per minute keeps each write to about two
    /// slices, however long the history.
    pub fn add_batches(&mut self, batches: &[(u64, Slice)], now: u64) -> Changed {
        let before: Vec<u64> = self.minutes.keys().copied().collect();
        for (minute, slice) in batches {
            self.add(*minute, slice, now);
        }
        let touched = batches.iter().map(|(m, _)| *m).filter(|m| self.minutes.contains_key(m)).collect();
        let dropped = before.into_iter().filter(|m| !self.minutes.contains_key(m)).collect();
        Changed { touched, dropped }
    }

    /// Adds another shard's aggregate (readers merge every metrics object's).
    pub fn merge(&mut self, other: &Aggregate) {
        self.totals.merge(&other.totals);
        for (m, s) in &other.minutes {
            self.minutes.entry(*m).or_default().merge(s);
        }
    }

    /// The last hour, one point per minute (empty minutes included), oldest first.
    pub fn series(&self, now: u64) -> Vec<Point> {
        let current = now / MINUTE_MS;
        let empty = Slice::default();
        (current.saturating_sub(HISTORY_MINUTES - 1)..=current)
            .map(|m| {
                let summary = self.minutes.get(&m).unwrap_or(&empty).summary();
                // The current minute has run only partly.
                let secs = if m == current { ((now % MINUTE_MS) as f64 / 1000.0).max(1.0) } else { 60.0 };
                Point { t: m * MINUTE_MS, rps: summary.requests as f64 / secs, summary }
            })
            .collect()
    }

    /// The last `minutes` minutes (the current one included) merged.
    pub fn recent(&self, now: u64, minutes: u64) -> Slice {
        let oldest = (now / MINUTE_MS).saturating_sub(minutes.saturating_sub(1));
        let mut out = Slice::default();
        for (_, s) in self.minutes.range(oldest..) {
            out.merge(s);
        }
        out
    }

    /// The alerts, evaluated over the thresholds' window.
    pub fn alerts(&self, now: u64, t: &Thresholds) -> Vec<Alert> {
        alerts::evaluate(&self.recent(now, t.window_minutes).summary(), t)
    }

    /// Prometheus text for the edge: totals per rule and origin. `pool` adds one line per
    /// origin: `(url, breaker gauge, last health check ok)`.
    pub fn prometheus(&self, now: u64, t: &Thresholds, pool: &[(String, f64, Option<bool>)]) -> String {
        let mut p = PromText::default();
        let rules = &self.totals.rules;
        p.family("edge_http_requests_total", "counter", "Requests answered by the edge, by rule, cache outcome and status.");
        for (rule, s) in rules {
            for (k, n) in &s.requests {
                let (cache, status) = k.split_once(' ').unwrap_or((k, "0"));
                p.sample("edge_http_requests_total", &[("rule", rule), ("cache", cache), ("status", status)], *n as f64);
            }
        }
        p.family("edge_http_request_duration_seconds", "histogram", "Time from request to response headers at the edge.");
        for (rule, s) in rules {
            p.histogram("edge_http_request_duration_seconds", &[("rule", rule)], &s.latency);
        }
        p.family("edge_request_bytes_total", "counter", "Request body bytes received from clients (where declared).");
        for (rule, s) in rules {
            p.sample("edge_request_bytes_total", &[("rule", rule)], s.bytes_in as f64);
        }
        p.family("edge_response_bytes_total", "counter", "Body bytes sent to clients (where the length was known or counted).");
        for (rule, s) in rules {
            p.sample("edge_response_bytes_total", &[("rule", rule)], s.bytes_out as f64);
        }
        p.family("edge_bytes_saved_total", "counter", "Bytes saved by minify, brotli and image encoding (input minus output).");
        for (rule, s) in rules {
            for (stage, n) in &s.saved {
                p.sample("edge_bytes_saved_total", &[("rule", rule), ("stage", stage)], *n as f64);
            }
        }
        p.family("edge_ratelimited_total", "counter", "Requests refused by the rate limiter (429).");
        for (rule, s) in rules {
            p.sample("edge_ratelimited_total", &[("rule", rule)], s.limited as f64);
        }
        p.family("edge_origin_requests_total", "counter", "Attempts sent to each origin, by status (or error, timeout).");
        for (origin, s) in &self.totals.origins {
            for (status, n) in &s.attempts {
                p.sample("edge_origin_requests_total", &[("origin", origin), ("status", status)], *n as f64);
            }
        }
        p.family("edge_origin_request_duration_seconds", "histogram", "Time from sending to an origin to its response headers.");
        for (origin, s) in &self.totals.origins {
            p.histogram("edge_origin_request_duration_seconds", &[("origin", origin)], &s.latency);
        }
        p.family("edge_origin_breaker_state", "gauge", "Circuit breaker per origin: 0 closed, 1 half-open, 2 open.");
        for (origin, gauge, _) in pool {
            p.sample("edge_origin_breaker_state", &[("origin", origin)], *gauge);
        }
        p.family("edge_origin_up", "gauge", "Last active health check of /healthz: 1 passed, 0 failed (absent before the first).");
        for (origin, _, up) in pool {
            if let Some(up) = up {
                p.sample("edge_origin_up", &[("origin", origin)], f64::from(u8::from(*up)));
            }
        }
        p.family("edge_alert_firing", "gauge", "Alert thresholds over the last minutes: 1 firing, 0 not (absent without enough requests).");
        for a in self.alerts(now, t) {
            if let Some(firing) = a.firing {
                p.sample("edge_alert_firing", &[("alert", a.name)], f64::from(u8::from(firing)));
            }
        }
        p.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(rule: &'a str, cache: &'a str, status: u16, seconds: f64) -> RequestRecord<'a> {
        RequestRecord { rule, cache, status, seconds, bytes_in: Some(10), bytes_out: Some(100), limited: status == 429 }
    }

    #[test]
    fn summary_counts_hits_errors_and_quantiles() {
        let mut s = Slice::default();
        for _ in 0..7 {
            s.record(&req("html", "hit", 200, 0.004));
        }
        s.record(&req("html", "stale", 200, 0.004));
        s.record(&req("html", "miss", 200, 0.3));
        s.record(&req("html", "expired", 503, 0.3));
        s.record(&req("api", "bypass", 201, 0.05));
        s.record(&req("api", "none", 429, 0.001));
        s.record_saved("html", "minify_brotli", 1000, 300);
        let sum = s.summary();
        assert_eq!((sum.requests, sum.errors, sum.limited, sum.bytes_out, sum.bytes_saved), (12, 1, 1, 1200, 700));
        assert_eq!(sum.hit_ratio, Some(0.8), "8 of 10 lookups; bypass and none are not lookups");
        assert_eq!(sum.error_rate, Some(1.0 / 12.0));
        assert!(sum.p50.unwrap() <= 0.005 && sum.p99.unwrap() > 0.25, "{sum:?}");
        let rules = s.rule_summaries();
        assert_eq!((rules["html"].requests, rules["html"].hit_ratio), (10, Some(0.8)));
        assert_eq!((rules["api"].requests, rules["api"].hit_ratio, rules["api"].limited), (2, None, 1));
    }

    #[test]
    fn the_flush_clock_starts_at_the_first_record_not_at_zero() {
        let mut clock = FlushClock::default();
        assert!(!clock.due(1e12, 10_000.0), "nothing recorded yet");
        clock.recorded(1_000_000.0);
        assert!(!clock.due(1_000_000.0, 10_000.0), "the first request ships nothing");
        clock.recorded(1_009_000.0);
        assert!(!clock.due(1_009_999.0, 10_000.0), "later records do not move the clock");
        assert!(clock.due(1_010_000.0, 10_000.0));
        clock.flushed(1_010_500.0);
        assert!(!clock.due(1_020_000.0, 10_000.0));
        assert!(clock.due(1_020_500.0, 10_000.0));
    }

    #[test]
    fn minutes_roll_over_an_hour_and_totals_keep_everything() {
        let mut a = Aggregate::default();
        let mut s = Slice::default();
        s.record(&req("html", "hit", 200, 0.01));
        let now = 1_000 * MINUTE_MS + 30_000;
        a.add(1_000 - 70, &s, now);
        a.add(1_000 - 59, &s, now);
        a.add(1_000, &s, now);
        a.add(1_000, &s, now);
        assert_eq!(a.minutes.len(), 2, "the slice from 70 minutes ago is only in the totals");
        assert_eq!(a.totals.summary().requests, 4);
        let series = a.series(now);
        assert_eq!(series.len(), 60);
        assert_eq!(series[0].t, (1_000 - 59) * MINUTE_MS);
        assert_eq!(series[0].summary.requests, 1);
        assert_eq!(series[59].summary.requests, 2);
        assert_eq!(series[59].rps, 2.0 / 30.0, "the current minute counts the seconds so far");
        assert_eq!(series[30].summary.requests, 0);
        assert_eq!(a.recent(now, 5).summary().requests, 2);
        // Keeps working after a JSON round trip (the Durable Object's storage).
        let back: Aggregate = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn shards_write_only_what_changed_and_merge_back_to_one() {
        let mut s = Slice::default();
        s.record(&req("html", "hit", 200, 0.01));
        let now = 1_000 * MINUTE_MS;
        let (mut a, mut b) = (Aggregate::default(), Aggregate::default());
        assert_eq!(a.add_batches(&[(1_000 - 61, s.clone()), (941, s.clone())], now), Changed { touched: [941].into(), dropped: vec![] }, "a slice past the hour goes to the totals only");
        let later = 1_001 * MINUTE_MS;
        let changed = a.add_batches(&[(1_001, s.clone())], later);
        assert_eq!(changed, Changed { touched: [1_001].into(), dropped: vec![941] });
        b.add_batches(&[(1_001, s.clone()), (1_001, s.clone())], later);
        let mut all = Aggregate::default();
        all.merge(&a);
        all.merge(&b);
        assert_eq!((all.totals.summary().requests, all.minutes[&1_001].summary().requests), (5, 3));
        assert!(minute_key(5) < minute_key(40) && shard_name(3) == "metrics-3");
    }

    #[test]
    fn prometheus_names_match_the_origin() {
        let mut a = Aggregate::default();
        let mut s = Slice::default();
        s.record(&req("api", "miss", 200, 0.02));
        s.record_origin("http://127.0.0.1:8080", OriginResult::Status(200), 0.01);
        s.record_origin("http://127.0.0.1:8081", OriginResult::Error, 0.0);
        a.add(0, &s, 0);
        let text = a.prometheus(0, &Thresholds::default(), &[("http://127.0.0.1:8081".into(), 2.0, Some(false))]);
        assert!(text.contains("edge_http_requests_total{rule=\"api\",cache=\"miss\",status=\"200\"} 1\n"), "{text}");
        assert!(text.contains("edge_http_request_duration_seconds_bucket{rule=\"api\",le=\"0.025\"} 1\n"), "{text}");
        assert!(text.contains("edge_request_bytes_total{rule=\"api\"} 10\n"), "{text}");
        assert!(text.contains("edge_origin_requests_total{origin=\"http://127.0.0.1:8081\",status=\"error\"} 1\n"), "{text}");
        assert!(text.contains("edge_origin_breaker_state{origin=\"http://127.0.0.1:8081\"} 2\n"), "{text}");
        assert!(text.contains("edge_origin_up{origin=\"http://127.0.0.1:8081\"} 0\n"), "{text}");
        assert!(!text.contains("edge_alert_firing{"), "one request is not enough to alert: {text}");
    }
}
