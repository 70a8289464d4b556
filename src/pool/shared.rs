//! The pool as all isolates share it: what an isolate reports ([`Event`]: an attempt's or a
//! health check's result) and what the `OriginPool` Durable Object keeps and answers
//! ([`Snapshot`]). The object only stores; [`apply`] decides, with the same breaker rules as the
//! isolates.

use super::breaker::{Breaker, BreakerSettings, Transition};
use super::Origin;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One result for the shared copy.
#[derive(Debug, Serialize, Deserialize)]
pub struct Event {
    /// The origin's base URL.
    pub url: String,
    /// Answered (or passed the health check).
    pub ok: bool,
    /// Set for active health checks.
    pub check: Option<HealthCheck>,
}

/// The last active health check of an origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthCheck {
    /// When, ms since the epoch.
    pub at: u64,
    /// Passed (2xx).
    pub ok: bool,
    /// How long it took, ms.
    pub ms: f64,
    /// The status, or the error.
    pub detail: String,
}

/// One origin in the shared copy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OriginHealth {
    /// Its breaker.
    pub breaker: Breaker,
    /// The last health check.
    pub last_check: Option<HealthCheck>,
    /// Times its breaker opened.
    pub opened: u64,
}

/// What the object answers: every configured origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The object's clock, ms.
    pub now: u64,
    /// By base URL, in config order.
    pub origins: Vec<(String, OriginHealth)>,
}

impl Snapshot {
    /// `(url, breaker gauge, last check passed)` per origin, for Prometheus text.
    pub fn gauges(&self) -> Vec<(String, f64, Option<bool>)> {
        self.origins.iter().map(|(url, h)| (url.clone(), h.breaker.state(self.now).gauge(), h.last_check.as_ref().map(|c| c.ok))).collect()
    }

    /// JSON for the dashboard: state names included.
    pub fn to_json(&self) -> serde_json::Value {
        let origins: Vec<_> = self
            .origins
            .iter()
            .map(|(url, h)| serde_json::json!({ "url": url, "state": h.breaker.state(self.now).as_str(), "breaker": h.breaker, "opened": h.opened, "last_check": h.last_check }))
            .collect();
        serde_json::json!(origins)
    }
}

/// Folds reported events into the shared states at `now`: each event of a configured origin
/// is recorded on its breaker (counting openings); a health check also becomes its last check.
/// Events of origins no longer configured are ignored.
pub fn apply(shared: &mut BTreeMap<String, OriginHealth>, events: Vec<Event>, origins: &[Origin], settings: &BreakerSettings, now: u64) {
    for e in events {
        if !origins.iter().any(|o| o.url.as_str() == e.url) {
            continue;
        }
        let h = shared.entry(e.url).or_default();
        if h.breaker.record(settings, e.ok, now) == Transition::Opened {
            h.opened += 1;
        }
        if e.check.is_some() {
            h.last_check = e.check;
        }
    }
}

/// The snapshot of `shared` for the configured origins, in config order (origins never
/// reported yet show a closed breaker).
pub fn snapshot(shared: &BTreeMap<String, OriginHealth>, origins: &[Origin], now: u64) -> Snapshot {
    let origins = origins.iter().map(|o| (o.url.as_str().to_owned(), shared.get(o.url.as_str()).cloned().unwrap_or_default())).collect();
    Snapshot { now, origins }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn events_open_shared_breakers_and_record_checks() {
        let origins = super::super::parse_origins("http://a, http://b").unwrap();
        let settings = BreakerSettings::DEFAULT.with_failures(NonZeroU32::new(2).unwrap());
        let mut shared = BTreeMap::new();
        let fail = |url: &str| Event { url: url.into(), ok: false, check: None };
        apply(&mut shared, vec![fail("http://a"), fail("http://a"), fail("http://gone")], &origins, &settings, 10);
        let check = HealthCheck { at: 20, ok: true, ms: 1.0, detail: "200".into() };
        apply(&mut shared, vec![Event { url: "http://b".into(), ok: true, check: Some(check) }], &origins, &settings, 20);
        let snap = snapshot(&shared, &origins, 30);
        assert_eq!(snap.origins.len(), 2, "the unknown origin is not kept");
        assert_eq!((snap.origins[0].1.opened, snap.origins[0].1.breaker.state(30).as_str()), (1, "open"));
        assert_eq!(snap.origins[1].1.last_check.as_ref().map(|c| c.ok), Some(true));
        assert_eq!(snap.gauges()[0].1, 2.0);
        assert_eq!(snap.to_json()[0]["state"], "open");
    }
}
