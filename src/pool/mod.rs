//! The origin pool: which origins there are, how requests are spread over them, and when one is
//! taken out. Pure; the glue keeps one [`PoolView`] per isolate and shares breaker states
//! through a Durable Object.
//!
//! Spreading is **smooth weighted round robin** (nginx's `upstream` algorithm): over any run of
//! requests each healthy origin gets its weight's share, interleaved rather than in bursts, and
//! the choice depends on nothing noisy. Least-recent-latency was the alternative; with one view
//! per isolate it chases noise from a handful of samples and herds every isolate onto the origin
//! that happened to be fastest, so latency is reported (Server-Timing, metrics) but not used to
//! route.

pub mod breaker;
pub mod shared;

use crate::config::error::ConfigError;
use crate::config::origin_url::OriginUrl;
use breaker::{Admission, Breaker, BreakerSettings};
use std::num::NonZeroU32;

/// One origin of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Its base URL.
    pub url: OriginUrl,
    /// Its share of requests relative to the others.
    pub weight: NonZeroU32,
}

/// Parses `ORIGIN_URL`: one base URL, or several separated by commas, each optionally followed
/// by `weight=N` (default 1): `"http://10.0.0.1:8080 weight=3, http://10.0.0.2:8080"`.
pub fn parse_origins(raw: &str) -> Result<Vec<Origin>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { field: "ORIGIN_URL", reason };
    let mut out: Vec<Origin> = Vec::new();
    for entry in raw.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(invalid(format!("{raw:?} has an empty entry")));
        }
        let mut parts = entry.split_whitespace();
        let url = OriginUrl::parse("ORIGIN_URL", parts.next().unwrap_or_default())?;
        let mut weight = NonZeroU32::MIN;
        for option in parts {
            let w = option.strip_prefix("weight=").ok_or_else(|| invalid(format!("{option:?} in {entry:?} is not weight=N")))?;
            weight = w.parse::<u32>().ok().filter(|w| *w <= 1000).and_then(NonZeroU32::new).ok_or_else(|| invalid(format!("weight {w:?} in {entry:?} is not within 1..=1000")))?;
        }
        if out.iter().any(|o| o.url == url) {
            return Err(invalid(format!("{} is listed twice", url.as_str())));
        }
        out.push(Origin { url, weight });
    }
    Ok(out)
}

/// Whether a request may be sent again, to another origin, after an attempt got no answer:
/// idempotent methods (RFC 9110 §9.2.2) without a body. A body is streamed through, never
/// buffered, so once sent it cannot be sent again; POST and PATCH are never repeated.
///
/// Beware: the runtime keeps origin connections alive and cannot tell a refused connect from a
/// kept-alive socket the origin had just closed. An origin that closes after an answer without
/// saying `Connection: close` (hyper does when it answers before reading a body) can lose the
/// next request on that socket: a GET is sent again here, a PATCH gets a 502, as with nginx.
/// The demo origin says it (`origin::unread_body`).
///
/// The same requests are the only ones whose failures count against an origin's breaker: a
/// client cannot make a bodyless GET fail, but it can make an upload fail (a body the origin
/// refuses and closes on, a body that never ends), and one client must never be able to take
/// the site down for everyone.
pub fn retryable(method: &http::Method, has_body: bool) -> bool {
    method.is_idempotent() && !has_body
}

/// How one attempt at an origin ended, as the glue saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Response headers arrived (any status; a body that breaks off later is still an answer).
    Answered,
    /// The runtime reported no answer: connect failure, reset, or the connection closed
    /// before response headers (it cannot tell these apart: all read "Network connection lost").
    NoAnswer,
    /// No response headers within `pool.timeout` (the request was aborted).
    TimedOut,
    /// Bytes came back that the runtime could not parse (unknown `Transfer-Encoding`, a bad
    /// `Content-Length`): the origin is up, the response is broken.
    Malformed,
}

impl Attempt {
    /// Classifies a failed fetch by the runtime's message. workerd says "Network connection
    /// lost." for a refused connect and for a reset alike; parse failures name the header
    /// ("invalid Content-Length header value") or are an "internal error". Only the first kind
    /// may be an outage; a broken response proves the origin is up.
    pub fn from_fetch_error(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        let no_answer = ["connection", "connect", "refused", "reset", "dns", "resolve", "unreachable", "no such host", "timed out", "timeout"];
        if no_answer.iter().any(|k| m.contains(k)) {
            Self::NoAnswer
        } else {
            Self::Malformed
        }
    }

    /// What the attempt means for the origin's breaker: `Some(true)` it is up, `Some(false)` a
    /// failure to count, `None` nothing to record. Failures count only for requests the client
    /// could not have made fail (`counts`: see [`retryable`]).
    pub fn breaker_result(self, counts: bool) -> Option<bool> {
        match self {
            Self::Answered | Self::Malformed => Some(true),
            Self::NoAnswer | Self::TimedOut if counts => Some(false),
            Self::NoAnswer | Self::TimedOut => None,
        }
    }

    /// Whether a failure that does not count ([`Attempt::breaker_result`] gave `None`) should
    /// be confirmed with a health check of that origin: the check is bodyless and idempotent,
    /// so its failure counts. A dead origin then still opens its breaker under write-only
    /// traffic, while an upload the origin refused costs one cheap check that passes.
    pub fn needs_confirmation(self, counts: bool) -> bool {
        matches!(self, Self::NoAnswer | Self::TimedOut) && !counts
    }

    /// The client's answer when this was the last attempt (`has_body`: the request streamed a
    /// body, so a lost connection most likely means the origin refused it).
    pub fn error(self, has_body: bool) -> crate::error::EdgeError {
        use crate::error::EdgeError;
        match self {
            Self::NoAnswer if has_body => EdgeError::OriginRefusedBody,
            Self::Answered | Self::NoAnswer => EdgeError::OriginUnreachable,
            Self::TimedOut => EdgeError::OriginTimeout,
            Self::Malformed => EdgeError::OriginMalformed,
        }
    }
}

/// Smooth weighted round robin state (one counter per origin).
#[derive(Debug, Clone, Default)]
pub struct Balancer {
    current: Vec<i64>,
}

impl Balancer {
    /// Picks among the origins whose `eligible(i)` holds; `None` when none is.
    pub fn pick(&mut self, weights: &[NonZeroU32], eligible: impl Fn(usize) -> bool) -> Option<usize> {
        self.current.resize(weights.len(), 0);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, w) in weights.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            self.current[i] += i64::from(w.get());
            total += i64::from(w.get());
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }
}

/// The pool as one isolate sees it: the origins, their breakers (refreshed from the shared
/// copy), and the balancer.
#[derive(Debug, Clone)]
pub struct PoolView {
    origins: Vec<Origin>,
    weights: Vec<NonZeroU32>,
    breakers: Vec<Breaker>,
    balancer: Balancer,
    settings: BreakerSettings,
    /// When the last shared copy adopted was taken (the object's clock, ms).
    shared_at: u64,
}

/// The origin to send a request to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Index into the pool.
    pub index: usize,
    /// Whether this request is the half-open probe (report its result).
    pub probe: bool,
}

/// No origin can take the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllDown {
    /// When the first breaker lets a probe through (ms).
    pub retry_at: u64,
}

impl AllDown {
    /// The `Retry-After` value at `now` (ms): whole seconds until a probe, at least 1.
    pub fn retry_after_secs(&self, now: u64) -> u64 {
        self.retry_at.saturating_sub(now).div_ceil(1000).max(1)
    }
}

impl PoolView {
    /// A view with every breaker closed.
    pub fn new(origins: Vec<Origin>, settings: BreakerSettings) -> Self {
        let weights = origins.iter().map(|o| o.weight).collect();
        let breakers = vec![Breaker::default(); origins.len()];
        Self { origins, weights, breakers, balancer: Balancer::default(), settings, shared_at: 0 }
    }

    /// The origins.
    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    /// The breakers, in origin order.
    pub fn breakers(&self) -> &[Breaker] {
        &self.breakers
    }

    /// Chooses an origin for one attempt at `now`, skipping `tried` (a retry goes elsewhere)
    /// and origins whose breaker refuses. A due probe takes its breaker's half-open lease; any
    /// request may be the probe. When every untried origin's breaker refuses, the least
    /// recently failed one is tried anyway (as a probe): refusing everyone would turn an origin
    /// that is back, or a breaker opened by a blip, into an outage. When every origin was tried
    /// (a retry in a pool of one), any may be chosen again.
    pub fn choose(&mut self, now: u64, tried: &[usize]) -> Result<Choice, AllDown> {
        // Every origin tried already (a pool of one): the retry may go to any.
        let tried = if (0..self.origins.len()).all(|i| tried.contains(&i)) { &[][..] } else { tried };
        let breakers = &self.breakers;
        let usable = |i: usize| !tried.contains(&i) && breakers[i].available(now);
        if let Some(index) = self.balancer.pick(&self.weights, usable) {
            match self.breakers[index].admit(&self.settings, now) {
                Admission::Allow => return Ok(Choice { index, probe: false }),
                Admission::Probe => return Ok(Choice { index, probe: true }),
                // `available` said yes a moment ago; fall through to the last resort.
                Admission::Reject { .. } => {}
            }
        }
        let last_resort = (0..self.breakers.len()).filter(|i| !tried.contains(i)).min_by_key(|i| self.breakers[*i].retry_at(now));
        match last_resort {
            Some(index) => {
                self.breakers[index].force_probe(&self.settings, now);
                Ok(Choice { index, probe: true })
            }
            None => Err(self.all_down(now).unwrap_or(AllDown { retry_at: now })),
        }
    }

    /// Whether a request that got no answer after `tried` attempts is sent once more: only a
    /// retryable one, at most twice in all. The retry goes to another origin when there is one
    /// ([`PoolView::choose`] skips the tried), else to the same one: a fresh connection, since
    /// a pooled keep-alive connection the origin had just closed reads as no answer too.
    /// A timeout is not retried on the same origin: it would only double the wait.
    pub fn may_retry(&self, retryable: bool, tried: usize, attempt: Attempt) -> bool {
        let same_origin = tried >= self.origins.len();
        retryable && tried < 2 && !(same_origin && attempt == Attempt::TimedOut)
    }

    /// `Some` when every origin's breaker refuses at `now` (the pool is down: answer 503 with
    /// `Retry-After`); `None` while at least one admits. A lone origin is never down.
    pub fn all_down(&self, now: u64) -> Option<AllDown> {
        if self.breakers.iter().any(|b| b.available(now)) {
            return None;
        }
        let retry_at = self.breakers.iter().map(|b| b.retry_at(now)).min().unwrap_or(now);
        Some(AllDown { retry_at })
    }

    /// Records an attempt's outcome locally (the shared copy is told separately).
    pub fn record(&mut self, index: usize, ok: bool, now: u64) -> breaker::Transition {
        match self.breakers.get_mut(index) {
            Some(b) => b.record(&self.settings, ok, now),
            None => breaker::Transition::None,
        }
    }

    /// Replaces the local breakers with the shared copy taken at `taken_at` (the object's
    /// clock), matched by URL (unknown URLs are ignored, missing ones stay as they are). A copy
    /// older than the last one adopted is ignored (a cached copy can arrive after a newer
    /// answer); returns whether it was adopted.
    pub fn adopt(&mut self, shared: &[(String, Breaker)], taken_at: u64) -> bool {
        if taken_at < self.shared_at {
            return false;
        }
        self.shared_at = taken_at;
        for (url, b) in shared {
            if let Some(i) = self.origins.iter().position(|o| o.url.as_str() == url) {
                self.breakers[i] = b.clone();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn parses_lists_with_weights_and_names_bad_entries() {
        let o = parse_origins("http://a:1 weight=3, https://b/").unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!((o[0].url.as_str(), o[0].weight.get()), ("http://a:1", 3));
        assert_eq!((o[1].url.as_str(), o[1].weight.get()), ("https://b", 1));
        for bad in ["", "http://a,", "http://a weight=0", "http://a w=2", "ftp://a", "http://a, http://a/"] {
            let e = parse_origins(bad).unwrap_err().to_string();
            assert!(e.contains("ORIGIN_URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_bodyless_idempotent_requests_are_retried() {
        assert!(retryable(&http::Method::GET, false));
        assert!(retryable(&http::Method::DELETE, false));
        assert!(!retryable(&http::Method::PUT, true), "its body was streamed");
        assert!(!retryable(&http::Method::POST, false));
        assert!(!retryable(&http::Method::PATCH, false));
    }

    #[test]
    fn attempts_count_against_an_origin_only_when_the_client_could_not_cause_them() {
        assert_eq!(Attempt::from_fetch_error("Error: Network connection lost."), Attempt::NoAnswer);
        assert_eq!(Attempt::from_fetch_error("invalid Content-Length header value; cl = x, 3"), Attempt::Malformed);
        assert_eq!(Attempt::from_fetch_error("Error: internal error; reference = qr3oflr"), Attempt::Malformed);
        // A GET that got no answer counts; an upload that got none does not (the origin may
        // have refused the body and closed); a broken or any-status answer means "up".
        assert_eq!(Attempt::NoAnswer.breaker_result(retryable(&http::Method::GET, false)), Some(false));
        assert_eq!(Attempt::TimedOut.breaker_result(true), Some(false));
        assert_eq!(Attempt::NoAnswer.breaker_result(retryable(&http::Method::POST, true)), None);
        assert!(Attempt::NoAnswer.needs_confirmation(false) && Attempt::TimedOut.needs_confirmation(false), "confirmed by a health check");
        assert!(!Attempt::NoAnswer.needs_confirmation(true) && !Attempt::Malformed.needs_confirmation(false));
        assert_eq!(Attempt::Malformed.breaker_result(true), Some(true));
        assert_eq!(Attempt::Answered.breaker_result(false), Some(true));
        assert_eq!(Attempt::NoAnswer.error(true).status(), 502);
        assert!(Attempt::NoAnswer.error(true).to_string().contains("request body"));
        assert_eq!(Attempt::NoAnswer.error(false).to_string(), "origin unreachable");
        assert_eq!(Attempt::TimedOut.error(false).status(), 504);
    }

    #[test]
    fn smooth_weighted_round_robin_interleaves_by_weight() {
        let mut b = Balancer::default();
        let weights = [nz(5), nz(1), nz(1)];
        let picks: Vec<usize> = (0..7).map(|_| b.pick(&weights, |_| true).unwrap()).collect();
        // nginx's example: a a b a c a a, every 7 picks.
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let mut counts = [0; 3];
        for _ in 0..700 {
            counts[b.pick(&weights, |_| true).unwrap()] += 1;
        }
        assert_eq!(counts, [500, 100, 100]);
        assert_eq!(b.pick(&weights, |i| i == 2), Some(2));
        assert_eq!(b.pick(&weights, |_| false), None);
    }

    #[test]
    fn failing_origin_is_taken_out_and_retries_go_elsewhere() {
        let settings = BreakerSettings::DEFAULT.with_failures(nz(2)).with_open_ms(1_000).with_probe_timeout_ms(2_000);
        let mut pool = PoolView::new(parse_origins("http://a, http://b").unwrap(), settings);
        let first = pool.choose(0, &[]).unwrap();
        let retry = pool.choose(0, &[first.index]).unwrap();
        assert_ne!(first.index, retry.index);
        assert_eq!(pool.choose(0, &[0, 1]).map(|c| c.probe), Ok(false), "every origin tried: any may take the retry");
        pool.record(0, false, 10);
        pool.record(0, false, 20);
        for _ in 0..10 {
            assert_eq!(pool.choose(30, &[]).unwrap().index, 1);
        }
        assert_eq!(pool.all_down(30), None);
        pool.record(1, false, 30);
        pool.record(1, false, 40);
        assert_eq!(pool.all_down(50), Some(AllDown { retry_at: 1_020 }));
        // Every breaker open: the least recently failed origin is still tried, as a probe...
        assert_eq!(pool.choose(50, &[]), Ok(Choice { index: 0, probe: true }));
        // ...and a retry goes to the other one; only when both were tried is there nothing left.
        assert_eq!(pool.choose(50, &[0]), Ok(Choice { index: 1, probe: true }));
        assert!(pool.choose(50, &[0, 1]).is_ok(), "both tried: the least recently failed again");
        // Both forced probes failed: both re-open.
        pool.record(0, false, 60);
        pool.record(1, false, 60);
        assert_eq!(pool.all_down(61), Some(AllDown { retry_at: 1_060 }));
        // After the open time any request (a POST too) may be the probe.
        let probe = pool.choose(1_060, &[]).unwrap();
        assert!(probe.probe);
        assert_eq!(pool.record(probe.index, true, 1_070), breaker::Transition::Closed);
        assert_eq!(pool.breakers()[probe.index], Breaker::default());
        assert_eq!(pool.all_down(1_070), None);
        assert_eq!(AllDown { retry_at: 1_040 }.retry_after_secs(1_021), 1);
        assert_eq!(AllDown { retry_at: 9_000 }.retry_after_secs(1_000), 8);
        assert_eq!(AllDown { retry_at: 9_001 }.retry_after_secs(1_000), 9);
        assert_eq!(AllDown { retry_at: 0 }.retry_after_secs(1_000), 1);
    }

    #[test]
    fn adopts_the_shared_copy_by_url() {
        let mut pool = PoolView::new(parse_origins("http://a, http://b").unwrap(), BreakerSettings::DEFAULT);
        assert!(pool.adopt(&[("http://b".into(), Breaker::Open { since: 0, probe_at: 100 }), ("http://gone".into(), Breaker::default())], 10));
        assert_eq!(pool.breakers()[1], Breaker::Open { since: 0, probe_at: 100 });
        assert!(!pool.adopt(&[("http://b".into(), Breaker::default())], 9), "an older copy (from a cache) is not adopted");
        assert_eq!(pool.breakers()[1], Breaker::Open { since: 0, probe_at: 100 });
        assert_eq!(pool.choose(50, &[]).unwrap().index, 0);
        assert_eq!(pool.choose(50, &[]).unwrap().index, 0);
    }

    #[test]
    fn retries_once_elsewhere_and_only_when_allowed() {
        let pool = PoolView::new(parse_origins("http://a, http://b, http://c").unwrap(), BreakerSettings::DEFAULT);
        assert!(pool.may_retry(true, 1, Attempt::NoAnswer) && pool.may_retry(true, 1, Attempt::TimedOut));
        assert!(!pool.may_retry(true, 2, Attempt::NoAnswer), "two attempts at most");
        assert!(!pool.may_retry(false, 1, Attempt::NoAnswer), "a POST is sent once");
        let mut lone = PoolView::new(parse_origins("http://a").unwrap(), BreakerSettings::DEFAULT);
        assert!(lone.may_retry(true, 1, Attempt::NoAnswer), "once more, on a fresh connection");
        assert!(!lone.may_retry(true, 1, Attempt::TimedOut), "a timeout would only double the wait");
        assert_eq!(lone.choose(0, &[0]), Ok(Choice { index: 0, probe: false }));
    }

    #[test]
    fn a_lone_origin_is_never_down() {
        let settings = BreakerSettings::DEFAULT.with_failures(nz(1)).with_lone_origin(true);
        let mut pool = PoolView::new(parse_origins("http://only").unwrap(), settings);
        for t in 0..50 {
            pool.record(0, false, t);
        }
        assert_eq!(pool.all_down(50), None);
        assert_eq!(pool.choose(50, &[]), Ok(Choice { index: 0, probe: false }));
    }
}
