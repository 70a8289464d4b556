//! Rate limiting: a pure GCRA step (the algorithm governor uses), the quota it runs on, the
//! response headers, and client keys. Storage (one Durable Object per key) is the glue's.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT). A request at `now` is
//! allowed when `TAT - now <= tolerance`, and then moves TAT one emission interval forward. With
//! `burst = limit` this admits exactly `limit` requests at once and then one every
//! `window / limit`: a sliding window without per-request logs.

pub mod block;
pub mod key;

use std::num::NonZeroU32;

/// A quota: `limit` requests per `window_ms`, of which up to `burst` may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: NonZeroU32,
    window_ms: u64,
    burst: NonZeroU32,
}

/// Shortest window accepted: 1 s.
pub const MIN_WINDOW_MS: u64 = 1_000;
/// Longest window accepted: 1 day.
pub const MAX_WINDOW_MS: u64 = 86_400_000;

impl Quota {
    /// A quota; `None` when the window is outside 1 s ..= 1 day (so a `Quota` is always valid).
    /// `burst` defaults to `limit`.
    pub fn new(limit: NonZeroU32, window_ms: u64, burst: Option<NonZeroU32>) -> Option<Self> {
        (MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&window_ms).then_some(Self { limit, window_ms, burst: burst.unwrap_or(limit) })
    }

    /// Requests per window.
    pub fn limit(&self) -> u32 {
        self.limit.get()
    }

    /// The window, ms.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Requests allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// Time between replenished requests, ms (fractional).
    fn interval(&self) -> f64 {
        self.window_ms as f64 / self.limit.get() as f64
    }

    fn tolerance(&self) -> f64 {
        self.interval() * (self.burst.get() - 1) as f64
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Allowed.
    Allow {
        /// Requests still allowed right now.
        remaining: u32,
        /// Seconds until the full burst is available again.
        reset_secs: u64,
    },
    /// Denied.
    Deny {
        /// Seconds until one request will be allowed (`Retry-After`).
        retry_after_secs: u64,
        /// Seconds until the full burst is available again.
        reset_secs: u64,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
}

fn ceil_secs(ms: f64) -> u64 {
    (ms.max(0.0) / 1000.0).ceil() as u64
}

/// One GCRA step for a request at `now` (Unix ms) against the stored TAT (`None`: never seen).
/// Returns the decision and the TAT to store (unchanged on a denial).
pub fn check(quota: &Quota, tat: Option<f64>, now: u64) -> (Decision, f64) {
    let now = now as f64;
    let t = quota.interval();
    let tat = tat.unwrap_or(now).max(now);
    let allow_at = tat - quota.tolerance();
    if now < allow_at {
        let d = Decision::Deny { retry_after_secs: ceil_secs(allow_at - now).max(1), reset_secs: ceil_secs(tat - now) };
        return (d, tat);
    }
    let new_tat = tat + t;
    let remaining = ((now + quota.tolerance() - new_tat) / t).floor() + 1.0;
    let d = Decision::Allow { remaining: remaining.max(0.0) as u32, reset_secs: ceil_secs(new_tat - now) };
    (d, new_tat)
}

/// The rate-limit response headers: `X-RateLimit-*` and the IETF fields of
/// draft-ietf-httpapi-ratelimit-headers-10 (`RateLimit-Policy: "name";q=100;w=60`,
/// `RateLimit: "name";r=42;t=17`).
pub fn headers(policy: &str, quota: &Quota, decision: &Decision) -> Vec<(&'static str, String)> {
    let (remaining, reset) = match decision {
        Decision::Allow { remaining, reset_secs } => (*remaining, *reset_secs),
        Decision::Deny { reset_secs, .. } => (0, *reset_secs),
    };
    let window = quota.window_ms().div_ceil(1000);
    let mut out = vec![
        ("x-ratelimit-limit", quota.limit().to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
    ];
    // Structured Fields lists (RFC 9651) serialised by `sfv`: the policy name is an
    // sf-string, quoted and escaped; a name that cannot be one leaves the IETF fields out.
    let field = |params: [(&'static str, u64); 2]| {
        let mut list = sfv::ListSerializer::new();
        let mut item = list.bare_item(sfv::StringRef::from_str(policy).ok()?);
        for (k, v) in params {
            item = item.parameter(sfv::KeyRef::constant(k), sfv::Integer::try_from(v).ok()?);
        }
        let _ = item;
        list.finish()
    };
    if let Some(v) = field([("q", u64::from(quota.limit())), ("w", window)]) {
        out.push(("ratelimit-policy", v));
    }
    if let Some(v) = field([("r", u64::from(remaining)), ("t", reset)]) {
        out.push(("ratelimit", v));
    }
    if let Decision::Deny { retry_after_secs, .. } = decision {
        out.push(("retry-after", retry_after_secs.to_string()));
    }
    out
}

/// The JSON problem body (RFC 9457) of a 429.
pub fn problem_body(policy: &str, retry_after_secs: u64) -> String {
    serde_json::json!({
        "type": "https://edgelayer.dev/problems/rate-limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": format!("rate limit \"{policy}\" exceeded; retry in {retry_after_secs} s"),
        "retry_after": retry_after_secs,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: u32, window_ms: u64, burst: Option<u32>) -> Quota {
        Quota::new(NonZeroU32::new(limit).unwrap(), window_ms, burst.and_then(NonZeroU32::new)).unwrap()
    }

    /// Runs `n` requests at the given times with a fake clock; returns how many were allowed.
    fn run(quota: &Quota, times: impl IntoIterator<Item = u64>) -> (u32, Option<f64>) {
        let mut tat = None;
        let mut allowed = 0;
        for now in times {
            let (d, t) = check(quota, tat, now);
            tat = Some(t);
            allowed += u32::from(d.allowed());
        }
        (allowed, tat)
    }

    #[test]
    fn quotas_cannot_be_invalid() {
        assert!(Quota::new(NonZeroU32::new(1).unwrap(), 999, None).is_none());
        assert!(Quota::new(NonZeroU32::new(1).unwrap(), 86_400_001, None).is_none());
        assert!(Quota::new(NonZeroU32::new(1).unwrap(), 1_000, None).is_some());
    }

    #[test]
    fn a_burst_admits_exactly_the_limit() {
        for limit in [1, 10, 100, 1000] {
            let quota = q(limit, 60_000, None);
            let (allowed, _) = run(&quota, std::iter::repeat_n(5_000, 5000));
            assert_eq!(allowed, limit, "limit {limit}");
        }
    }

    #[test]
    fn the_window_slides() {
        let quota = q(10, 10_000, None); // one request per second replenished
        let mut tat = run(&quota, std::iter::repeat_n(0, 10)).1;
        let (d, t) = check(&quota, tat, 500);
        assert_eq!(d, Decision::Deny { retry_after_secs: 1, reset_secs: 10 });
        tat = Some(t);
        let (d, t) = check(&quota, tat, 1_000);
        assert!(d.allowed(), "one interval later one more is allowed: {d:?}");
        let (d, _) = check(&quota, Some(t), 1_000);
        assert!(!d.allowed());
        let (d, _) = check(&quota, Some(t), 11_000);
        assert_eq!(d, Decision::Allow { remaining: 9, reset_secs: 1 }, "a full window later the burst is back");
    }

    #[test]
    fn remaining_counts_down_and_burst_caps_it() {
        let quota = q(100, 60_000, Some(5));
        let mut tat = None;
        let mut seen = Vec::new();
        for _ in 0..6 {
            let (d, t) = check(&quota, tat, 0);
            tat = Some(t);
            seen.push(d);
        }
        let rem: Vec<_> = seen.iter().map(|d| match d { Decision::Allow { remaining, .. } => *remaining as i64, _ => -1 }).collect();
        assert_eq!(rem, [4, 3, 2, 1, 0, -1]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// GCRA never admits more than the burst plus one per interval elapsed, whatever the
        /// arrival times (governor's invariant).
        #[test]
        fn never_more_than_burst_plus_elapsed_over_interval(limit in 1u32..50, window in 1_000u64..120_000, burst_pick in 0u32..50, gaps in proptest::collection::vec(0u64..5_000, 1..400)) {
            let burst = 1 + burst_pick % limit;
            let quota = q(limit, window, Some(burst));
            let mut now = 0u64;
            let times: Vec<u64> = gaps.iter().map(|g| { now += g; now }).collect();
            let (allowed, _) = run(&quota, times);
            let bound = burst as f64 + now as f64 / quota.interval();
            proptest::prop_assert!(allowed as f64 <= bound.floor() + 1e-9, "{allowed} > {bound}");
        }

        /// A denial's `Retry-After` is exact to the second: a request that many seconds later
        /// is admitted.
        #[test]
        fn retry_after_is_enough(limit in 1u32..20, window in 1_000u64..60_000, extra in 1usize..30, start in 0u64..1_000_000) {
            let quota = q(limit, window, None);
            let mut tat = None;
            let mut last = None;
            for _ in 0..(limit as usize + extra) {
                let (d, t) = check(&quota, tat, start);
                tat = Some(t);
                last = Some(d);
            }
            let Some(Decision::Deny { retry_after_secs, .. }) = last else { return Err(proptest::test_runner::TestCaseError::fail("over the limit must deny")) };
            let (after, _) = check(&quota, tat, start + retry_after_secs * 1000);
            proptest::prop_assert!(after.allowed(), "still denied {retry_after_secs} s later");
        }
    }

    #[test]
    fn header_syntax() {
        let quota = q(100, 60_000, None);
        let h = headers("default", &quota, &Decision::Allow { remaining: 42, reset_secs: 17 });
        assert!(h.contains(&("ratelimit-policy", "\"default\";q=100;w=60".into())));
        let quoted = headers("a\"b", &quota, &Decision::Allow { remaining: 1, reset_secs: 2 });
        assert!(quoted.contains(&("ratelimit", "\"a\\\"b\";r=1;t=2".into())), "{quoted:?}");
        assert!(h.contains(&("ratelimit", "\"default\";r=42;t=17".into())));
        assert!(h.contains(&("x-ratelimit-remaining", "42".into())));
        let h = headers("default", &quota, &Decision::Deny { retry_after_secs: 3, reset_secs: 60 });
        assert!(h.contains(&("retry-after", "3".into())));
        assert!(h.contains(&("ratelimit", "\"default\";r=0;t=60".into())));
        let body: serde_json::Value = serde_json::from_str(&problem_body("default", 3)).unwrap();
        assert_eq!(body["status"], 429);
    }
}
