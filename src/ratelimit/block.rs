//! The abuse rules around the GCRA step: a penalty box (`block_for`: once a key hits its limit
//! it is refused for that long, whatever the quota would allow), responses that do not count
//! (`count`: a login limit spends quota on failures only), and the isolate's memory of keys
//! known to be refused, so refused traffic costs no Durable Object call.
//!
//! Exactness: a request is admitted only by the key's Durable Object, which runs [`admit`]
//! with no `await` between reading and writing its state. Counting only some statuses is done by
//! reserving first and refunding after the response ([`refund`]), so at most `limit` requests
//! that might count are ever in flight or counted: concurrency can only refuse early, never
//! admit more. The isolate memory ([`RefusedKeys`]) holds a key only until the exact instant the
//! object said it refuses until, so it never refuses a request the object would admit (up to the
//! clock difference between the isolate and the object).

use super::{check, Decision, Quota};
use crate::rules::StatusRange;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What one key's Durable Object keeps.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct KeyState {
    /// The GCRA theoretical arrival time, ms (`None`: never seen).
    pub tat: Option<f64>,
    /// Refused until then, ms (the penalty box).
    pub blocked_until: Option<u64>,
}

/// The outcome of [`admit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    /// Allowed or denied, with the header figures.
    pub decision: Decision,
    /// The state to keep.
    pub state: KeyState,
    /// On a denial, the instant (ms) until which every check of this key is refused: what the
    /// isolate may remember.
    pub refused_until: Option<u64>,
}

fn ceil_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// One check at `now` (ms) with a penalty of `block_for_ms` (0: none) once the quota is spent.
pub fn admit(quota: &Quota, block_for_ms: u64, state: KeyState, now: u64) -> Admission {
    if let Some(until) = state.blocked_until.filter(|u| *u > now) {
        let secs = ceil_secs(until - now);
        return Admission { decision: Decision::Deny { retry_after_secs: secs, reset_secs: secs }, state, refused_until: Some(until) };
    }
    let (decision, tat) = check(quota, state.tat, now);
    let state = KeyState { tat: Some(tat), blocked_until: None };
    match decision {
        Decision::Allow { .. } => Admission { decision, state, refused_until: None },
        Decision::Deny { .. } if block_for_ms > 0 => {
            let until = now.saturating_add(block_for_ms);
            let secs = ceil_secs(block_for_ms);
            Admission { decision: Decision::Deny { retry_after_secs: secs, reset_secs: secs }, state: KeyState { blocked_until: Some(until), ..state }, refused_until: Some(until) }
        }
        Decision::Deny { .. } => {
            // GCRA refuses until TAT − tolerance; the ms is rounded up so that the isolate never
            // refuses past the object.
            let allow_at = (tat - quota.tolerance()).ceil().max(now as f64) as u64;
            Admission { decision, state, refused_until: Some(allow_at) }
        }
    }
}

/// Gives back one request admitted at some point (its response did not count): the TAT moves
/// one interval back, never before `now`.
pub fn refund(quota: &Quota, state: KeyState, now: u64) -> KeyState {
    let tat = state.tat.map(|t| t - quota.interval()).filter(|t| *t > now as f64);
    KeyState { tat, ..state }
}

/// Which responses spend quota.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Counted {
    /// Every request (the default).
    #[default]
    All,
    /// Only responses with these statuses (`failures`: `>=400`).
    Statuses(Vec<StatusRange>),
}

impl Counted {
    /// Parses `all`, `failures` or a list of statuses, classes and ranges (`["401", "403"]`).
    pub fn parse(values: &[String]) -> Result<Self, String> {
        match values {
            [one] if one == "all" => Ok(Self::All),
            [one] if one == "failures" => Ok(Self::Statuses(vec![StatusRange { from: 400, to: 599 }])),
            [] => Err("must be \"all\", \"failures\" or a list of statuses".into()),
            list => list.iter().map(|s| StatusRange::parse(s)).collect::<Result<Vec<_>, _>>().map(Self::Statuses),
        }
    }

    /// Whether a response with `status` spends quota.
    pub fn counts(&self, status: u16) -> bool {
        match self {
            Self::All => true,
            Self::Statuses(ranges) => ranges.iter().any(|r| r.contains(status)),
        }
    }
}

/// Keys an isolate knows are refused, each until an instant. Bounded: when full, expired keys
/// go first, then everything (a flood of distinct keys must not grow memory).
#[derive(Debug, Default)]
pub struct RefusedKeys {
    until: HashMap<String, u64>,
}

/// Most keys remembered per isolate.
pub const MAX_REFUSED_KEYS: usize = 10_000;

impl RefusedKeys {
    /// Until when `key` is refused, if it is at `now`.
    pub fn refused_until(&mut self, key: &str, now: u64) -> Option<u64> {
        match self.until.get(key) {
            Some(u) if *u > now => Some(*u),
            Some(_) => {
                self.until.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers that `key` is refused until `until`.
    pub fn remember(&mut self, key: &str, until: u64, now: u64) {
        if until <= now {
            return;
        }
        if self.until.len() >= MAX_REFUSED_KEYS {
            self.until.retain(|_, u| *u > now);
            if self.until.len() >= MAX_REFUSED_KEYS {
                self.until.clear();
            }
        }
        self.until.insert(key.to_owned(), until);
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn q(limit: u32, window_ms: u64) -> Quota {
        Quota::new(NonZeroU32::new(limit).unwrap(), window_ms, None).unwrap()
    }

    #[test]
    fn the_penalty_box_holds_past_the_quota() {
        let quota = q(5, 10_000); // one request back every 2 s
        let mut state = KeyState::default();
        let mut admitted = 0;
        for _ in 0..1000 {
            let a = admit(&quota, 3_000, state, 0);
            state = a.state;
            admitted += u32::from(a.decision.allowed());
        }
        assert_eq!(admitted, 5, "exactly the limit");
        assert_eq!(state.blocked_until, Some(3_000));
        let held = admit(&quota, 3_000, state, 2_500);
        assert!(!held.decision.allowed(), "GCRA alone would admit one at 2 s; the box holds");
        assert_eq!((held.refused_until, held.decision), (Some(3_000), Decision::Deny { retry_after_secs: 1, reset_secs: 1 }));
        assert!(admit(&quota, 3_000, held.state, 3_000).decision.allowed(), "out of the box");
    }

    #[test]
    fn without_a_box_the_refusal_ends_when_gcra_allows() {
        let quota = q(2, 2_000);
        let mut state = KeyState::default();
        for _ in 0..2 {
            state = admit(&quota, 0, state, 0).state;
        }
        let denied = admit(&quota, 0, state, 0);
        assert_eq!(denied.refused_until, Some(1_000));
        assert!(!admit(&quota, 0, denied.state, 999).decision.allowed());
        assert!(admit(&quota, 0, denied.state, 1_000).decision.allowed(), "refused_until is exact, not later");
    }

    #[test]
    fn refunds_give_the_request_back() {
        let quota = q(3, 60_000);
        let mut state = KeyState::default();
        for _ in 0..100 {
            let a = admit(&quota, 0, state, 0);
            state = if a.decision.allowed() { refund(&quota, a.state, 0) } else { a.state };
        }
        assert!(admit(&quota, 0, state, 0).decision.allowed(), "successes never spend quota");
        assert_eq!(refund(&quota, KeyState::default(), 0), KeyState::default());
    }

    #[test]
    fn counted_statuses() {
        assert_eq!(Counted::parse(&["all".into()]).unwrap(), Counted::All);
        let failures = Counted::parse(&["failures".into()]).unwrap();
        assert!(failures.counts(401) && failures.counts(503) && !failures.counts(200) && !failures.counts(302));
        let list = Counted::parse(&["401".into(), "403".into()]).unwrap();
        assert!(list.counts(403) && !list.counts(404));
        assert!(Counted::parse(&[]).is_err() && Counted::parse(&["lots".into()]).is_err());
    }

    #[test]
    fn refused_keys_expire_and_stay_bounded() {
        let mut keys = RefusedKeys::default();
        keys.remember("a", 100, 0);
        assert_eq!(keys.refused_until("a", 50), Some(100));
        assert_eq!(keys.refused_until("a", 100), None, "expired at the instant");
        assert!(keys.is_empty());
        keys.remember("past", 10, 20);
        assert!(keys.is_empty(), "an instant already gone is not kept");
        for i in 0..MAX_REFUSED_KEYS + 5 {
            keys.remember(&format!("k{i}"), 1_000, 0);
        }
        assert!(keys.len() <= MAX_REFUSED_KEYS);
    }

    proptest::proptest! {
        /// Whatever the arrivals: the isolate memory never refuses what the object admits, and
        /// without refunds the box never admits more than the plain quota would.
        #[test]
        fn memory_never_refuses_what_the_object_admits(gaps in proptest::collection::vec(0u64..1_500, 1..300), block in 0u64..5_000, refund_every in 0usize..4) {
            let quota = q(4, 4_000);
            let (mut state, mut plain_tat) = (KeyState::default(), None);
            let (mut memory, mut now) = (RefusedKeys::default(), 0u64);
            let (mut admitted, mut plain) = (0u32, 0u32);
            for (i, g) in gaps.iter().enumerate() {
                now += g;
                let remembered = memory.refused_until("k", now);
                let a = admit(&quota, block, state, now);
                state = a.state;
                if a.decision.allowed() {
                    proptest::prop_assert!(remembered.is_none(), "memory refused at {} what the object admitted", now);
                    admitted += 1;
                    if refund_every > 0 && i % refund_every == 0 {
                        state = refund(&quota, state, now);
                    }
                } else if let Some(u) = a.refused_until {
                    memory.remember("k", u, now);
                }
                let (d, t) = check(&quota, plain_tat, now);
                plain_tat = Some(t);
                plain += u32::from(d.allowed());
            }
            if refund_every == 0 {
                proptest::prop_assert!(admitted <= plain, "{} admitted with the box, {} without", admitted, plain);
            }
        }
    }
}
