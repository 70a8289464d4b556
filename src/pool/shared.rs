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

/// Whether an isolate may use the copy of the snapshot that its data centre's Cache API holds,
/// or should fetch a new one from the object. Reading through the Cache API makes the object's
/// load about one read per data centre per `ttl`, not one per isolate. `fetched_at` (ms, the
/// isolate clock of whoever stored the copy) and `lease_until` (ms: someone is fetching a new
/// one) come with the copy; the lease keeps the isolates of a data centre from all fetching at
/// once when it goes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyVerdict {
    /// Adopt the cached copy.
    UseCached,
    /// Put the copy back under a lease until `lease_until`, then fetch from the object.
    Refresh {
        /// When the lease ends (ms).
        lease_until: u64,
    },
}

/// How long a refresher holds the lease (ms): longer than an object call takes.
pub const LEASE_MS: u64 = 5_000;

/// See [`CopyVerdict`]. `cached`: `(fetched_at, lease_until)` of the cached copy, if any.
pub fn copy_verdict(cached: Option<(u64, u64)>, now: u64, ttl_ms: u64) -> CopyVerdict {
    match cached {
        Some((fetched_at, lease_until)) if now < fetched_at.saturating_add(ttl_ms) || now < lease_until => CopyVerdict::UseCached,
        _ => CopyVerdict::Refresh { lease_until: now + LEASE_MS },
    }
}

/// The events the shared copy does not know yet, judged on the data centre's copy of it:
/// a failure of an origin the copy already shows open, or a success of one it shows closed,
/// tells the object nothing, so the isolate keeps it to itself. Health checks
/// always go (they are the object's record of the last check). With no copy, everything is
/// news. This is what keeps an incident from sending every isolate's failures to the object:
/// once one report opened the shared breaker, the data centre's copy says so.
pub fn news(events: Vec<Event>, copy: Option<&Snapshot>) -> Vec<Event> {
    let Some(copy) = copy else { return events };
    events
        .into_iter()
        .filter(|e| {
            use super::breaker::BreakerState;
            // Half-open: a probe's result is news either way (it closes or re-opens).
            match copy.origins.iter().find(|(url, _)| *url == e.url).map(|(_, h)| h.breaker.state(copy.now)) {
                _ if e.check.is_some() => true,
                Some(BreakerState::Closed) => !e.ok,
                Some(BreakerState::Open) => e.ok,
                Some(BreakerState::HalfOpen) | None => true,
            }
        })
        .collect()
}

/// The most events an isolate keeps for its next report (past a breaker's threshold, more
/// failures of the same origin add nothing).
pub const MAX_PENDING_EVENTS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn a_fresh_or_leased_copy_is_used_else_one_isolate_refreshes() {
        assert_eq!(copy_verdict(None, 1_000, 5_000), CopyVerdict::Refresh { lease_until: 1_000 + LEASE_MS });
        assert_eq!(copy_verdict(Some((1_000, 0)), 5_999, 5_000), CopyVerdict::UseCached, "younger than the ttl");
        assert_eq!(copy_verdict(Some((1_000, 0)), 6_000, 5_000), CopyVerdict::Refresh { lease_until: 6_000 + LEASE_MS });
        assert_eq!(copy_verdict(Some((1_000, 7_000)), 6_500, 5_000), CopyVerdict::UseCached, "another isolate holds the lease");
        assert_eq!(copy_verdict(Some((1_000, 7_000)), 7_000, 5_000), CopyVerdict::Refresh { lease_until: 7_000 + LEASE_MS }, "a lease that ran out is taken over");
    }

    #[test]
    fn only_news_is_reported() {
        let origins = super::super::parse_origins("http://a, http://b").unwrap();
        let settings = BreakerSettings::DEFAULT.with_failures(NonZeroU32::new(1).unwrap());
        let mut shared = BTreeMap::new();
        apply(&mut shared, vec![Event { url: "http://a".into(), ok: false, check: None }], &origins, &settings, 10);
        let copy = snapshot(&shared, &origins, 20);
        let ev = |url: &str, ok: bool| Event { url: url.into(), ok, check: None };
        let kept = |events: Vec<Event>, copy| news(events, copy).into_iter().map(|e| (e.url, e.ok)).collect::<Vec<_>>();
        assert_eq!(kept(vec![ev("http://a", false), ev("http://b", true)], Some(&copy)), [], "a is known open, b known closed");
        assert_eq!(kept(vec![ev("http://a", true), ev("http://b", false)], Some(&copy)), [("http://a".to_owned(), true), ("http://b".to_owned(), false)]);
        assert_eq!(kept(vec![ev("http://a", false)], None), [("http://a".to_owned(), false)], "no copy: everything is news");
        let check = Event { url: "http://a".into(), ok: false, check: Some(HealthCheck { at: 1, ok: false, ms: 1.0, detail: "503".into() }) };
        assert_eq!(news(vec![check], Some(&copy)).len(), 1, "health checks always go");
        let half_open = snapshot(&shared, &origins, 10 + settings.open_ms() + 1);
        assert_eq!(kept(vec![ev("http://a", false)], Some(&half_open)), [("http://a".to_owned(), false)], "a failed probe re-opens it");
    }

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
