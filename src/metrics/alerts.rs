//! Alert thresholds (from the seed design): p95 latency above 2 s, error rate above 5 %, hit
//! ratio below 70 %, each over the last few minutes and only with enough requests to mean
//! something.

use super::summary::Summary;
use serde::Serialize;

/// When an alert fires. Fields are public: every combination is meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// p95 latency above this fires `p95_latency` (seconds).
    pub p95_seconds: f64,
    /// 5xx share above this fires `error_rate`.
    pub error_rate: f64,
    /// Hit ratio below this fires `hit_ratio`.
    pub hit_ratio: f64,
    /// Minutes evaluated (the current one included).
    pub window_minutes: u64,
    /// Fewer requests (or cache lookups, for the hit ratio) than this: no verdict.
    pub min_requests: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::SEED
    }
}

impl Thresholds {
    /// The seed design's thresholds over 5 minutes, with at least 20 requests.
    pub const SEED: Self = Self { p95_seconds: 2.0, error_rate: 0.05, hit_ratio: 0.70, window_minutes: 5, min_requests: 20 };
}

/// One alert's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `p95_latency`, `error_rate` or `hit_ratio`.
    pub name: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// `above` or `below`: which side fires.
    pub fires_when: &'static str,
    /// The current value, if there is one.
    pub value: Option<f64>,
    /// Firing; `None` without enough requests.
    pub firing: Option<bool>,
}

/// Evaluates the thresholds on a summary of the window.
pub fn evaluate(s: &Summary, t: &Thresholds) -> Vec<Alert> {
    let enough = s.requests >= t.min_requests;
    let above = |name, threshold: f64, value: Option<f64>| Alert { name, threshold, fires_when: "above", value, firing: value.filter(|_| enough).map(|v| v > threshold) };
    let mut hit = Alert { name: "hit_ratio", threshold: t.hit_ratio, fires_when: "below", value: s.hit_ratio, firing: None };
    // The ratio needs lookups, not just requests: an API-only minute has none.
    if enough {
        hit.firing = s.hit_ratio.map(|v| v < t.hit_ratio);
    }
    vec![above("p95_latency", t.p95_seconds, s.p95), above("error_rate", t.error_rate, s.error_rate), hit]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_on_each_threshold_and_waits_for_enough_requests() {
        let t = Thresholds::SEED;
        let quiet = Summary { requests: 100, errors: 1, error_rate: Some(0.01), hit_ratio: Some(0.9), p95: Some(0.2), ..Default::default() };
        assert!(evaluate(&quiet, &t).iter().all(|a| a.firing == Some(false)));
        let bad = Summary { requests: 100, errors: 6, error_rate: Some(0.06), hit_ratio: Some(0.5), p95: Some(2.5), ..Default::default() };
        let alerts = evaluate(&bad, &t);
        assert!(alerts.iter().all(|a| a.firing == Some(true)), "{alerts:?}");
        let few = Summary { requests: 3, ..bad };
        assert!(evaluate(&few, &t).iter().all(|a| a.firing.is_none()));
        let no_lookups = Summary { hit_ratio: None, ..quiet };
        assert_eq!(evaluate(&no_lookups, &t)[2].firing, None);
    }
}
