//! Alert thresholds (from the seed design): p95 latency above 2 s, error rate above 5 %, hit
//! ratio below 70 %, each over the last few minutes and only with enough requests to mean
//! something.

use super::summary::Summary;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// What was last announced for each alert (`true`: firing), kept by the metrics object so a
/// message goes out once per start and once per end, however often the alerts are evaluated.
pub type Announced = BTreeMap<String, bool>;

/// An alert that started or ended since the last announcement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The alert's name.
    pub name: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// The current value.
    pub value: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// `above` or `below`.
    pub fires_when: &'static str,
}

/// The alerts whose state differs from `announced`. An alert without a verdict (too few
/// requests) changes nothing: a quiet night neither resolves nor fires anything. Alerts never
/// announced count as not firing, so only a start is news for them.
pub fn changes(alerts: &[Alert], announced: &Announced) -> Vec<Change> {
    alerts
        .iter()
        .filter_map(|a| {
            let firing = a.firing?;
            let was = announced.get(a.name).copied().unwrap_or(false);
            (firing != was).then_some(Change { name: a.name, state: if firing { "firing" } else { "resolved" }, value: a.value, threshold: a.threshold, fires_when: a.fires_when })
        })
        .collect()
}

/// `announced` after `changes` were delivered.
pub fn record_delivered(announced: &mut Announced, changes: &[Change]) {
    for c in changes {
        announced.insert(c.name.to_owned(), c.state == "firing");
    }
}

/// The webhook's JSON body for `changes` (one message for all of them): a `text` line that
/// chat webhooks (Slack, Mattermost, Google Chat) show as it is, and the figures for machines.
/// `at`: ms since the epoch; `dashboard`: a link for whoever reads it.
pub fn message(changes: &[Change], window: &Summary, t: &Thresholds, at: u64, dashboard: Option<&str>) -> serde_json::Value {
    let parts: Vec<String> = changes
        .iter()
        .map(|c| {
            let value = c.value.map_or_else(|| "n/a".to_owned(), |v| format_value(c.name, v));
            let verb = if c.state == "firing" { "FIRING" } else { "resolved" };
            format!("{verb}: {} is {value} ({} {})", c.name, c.fires_when, format_value(c.name, c.threshold))
        })
        .collect();
    let mut text = format!("edgelayer: {} over the last {} minutes ({} requests)", parts.join("; "), t.window_minutes, window.requests);
    if let Some(url) = dashboard {
        text.push_str(&format!(" {url}"));
    }
    serde_json::json!({
        "text": text,
        "source": "edgelayer",
        "at": at,
        "alerts": changes,
        "window_minutes": t.window_minutes,
        "figures": window,
        "dashboard": dashboard,
    })
}

fn format_value(name: &str, v: f64) -> String {
    match name {
        "p95_latency" => format!("{:.0} ms", v * 1000.0),
        _ => format!("{:.1} %", v * 100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_and_an_end_are_each_announced_once() {
        let t = Thresholds::SEED;
        let bad = Summary { requests: 100, errors: 6, error_rate: Some(0.06), hit_ratio: Some(0.9), p95: Some(0.2), ..Default::default() };
        let mut announced = Announced::new();
        let first = changes(&evaluate(&bad, &t), &announced);
        assert_eq!(first.iter().map(|c| (c.name, c.state)).collect::<Vec<_>>(), [("error_rate", "firing")], "quiet alerts never announced are not news");
        record_delivered(&mut announced, &first);
        assert!(changes(&evaluate(&bad, &t), &announced).is_empty(), "still firing: no second message");
        let few = Summary { requests: 3, ..Default::default() };
        assert!(changes(&evaluate(&few, &t), &announced).is_empty(), "no verdict changes nothing");
        let good = Summary { errors: 0, error_rate: Some(0.0), ..bad.clone() };
        let end = changes(&evaluate(&good, &t), &announced);
        assert_eq!(end.iter().map(|c| (c.name, c.state)).collect::<Vec<_>>(), [("error_rate", "resolved")]);
        // Not delivered (the webhook failed): the same change is due again next time.
        assert_eq!(changes(&evaluate(&good, &t), &announced), end);
        let msg = message(&first, &bad, &t, 1_700_000_000_000, Some("https://edge.example/__edgelayer/dashboard"));
        assert_eq!(msg["alerts"][0]["name"], "error_rate");
        assert_eq!(msg["figures"]["requests"], 100);
        let text = msg["text"].as_str().unwrap();
        assert!(text.contains("FIRING: error_rate is 6.0 % (above 5.0 %)") && text.contains("last 5 minutes") && text.ends_with("/__edgelayer/dashboard"), "{text}");
    }

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
