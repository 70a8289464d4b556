//! A circuit breaker per origin: closed → open after `failures` connect failures within
//! `window` → after `open_for`, one probe (half-open) → closed on success, open again on
//! failure. Pure: every call takes `now` (ms); the state serialises so a Durable Object can own
//! the shared copy and isolates can cache it.
//!
//! Only failures to get an answer (connect errors, timeouts) count, and only for requests the
//! client could not have caused them with (see [`crate::pool::Attempt::breaker_result`]). An
//! answer, even a 5xx, means the origin is up; its application errors are handled by
//! stale-if-error, not by taking the origin out (nginx's `max_fails` counts the same way).
//! A breaker set up with [`BreakerSettings::with_lone_origin`] never opens: with one origin
//! there is nowhere else to send a request, so refusing would turn a blip into an outage
//! (nginx ignores `max_fails` for a one-server upstream).

use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Breaker thresholds. Fields are private so a setting cannot be invalid; build with `with_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    failures: NonZeroU32,
    window_ms: u64,
    open_ms: u64,
    probe_timeout_ms: u64,
    lone: bool,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl BreakerSettings {
    /// 5 failures in 10 s open the breaker for 10 s; a probe may take 10 s.
    pub const DEFAULT: Self = Self { failures: NonZeroU32::new(5).unwrap(), window_ms: 10_000, open_ms: 10_000, probe_timeout_ms: 10_000, lone: false };

    /// Failures within the window that open the breaker.
    ///
    /// ### Default
    /// 5.
    #[must_use]
    pub const fn with_failures(mut self, n: NonZeroU32) -> Self {
        self.failures = n;
        self
    }

    /// The window failures are counted in, in ms (at least 1).
    ///
    /// ### Default
    /// 10 000.
    #[must_use]
    pub const fn with_window_ms(mut self, ms: u64) -> Self {
        self.window_ms = if ms == 0 { 1 } else { ms };
        self
    }

    /// How long an open breaker refuses before it lets one probe through, in ms.
    ///
    /// ### Default
    /// 10 000.
    #[must_use]
    pub const fn with_open_ms(mut self, ms: u64) -> Self {
        self.open_ms = ms;
        self
    }

    /// How long a half-open probe may take before another one is allowed, in ms.
    ///
    /// ### Default
    /// 10 000.
    #[must_use]
    pub const fn with_probe_timeout_ms(mut self, ms: u64) -> Self {
        self.probe_timeout_ms = ms;
        self
    }

    /// The breaker guards the only origin of the pool: it never opens (failures are not
    /// recorded), so every request is still sent.
    ///
    /// ### Default
    /// false.
    #[must_use]
    pub const fn with_lone_origin(mut self, lone: bool) -> Self {
        self.lone = lone;
        self
    }

    /// Whether this breaker guards a lone origin (never opens).
    pub const fn lone_origin(&self) -> bool {
        self.lone
    }

    /// How long an open breaker refuses, in ms.
    pub const fn open_ms(&self) -> u64 {
        self.open_ms
    }
}

/// The three states, for display and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests are refused until the probe time.
    Open,
    /// One probe is (or may be) in flight.
    HalfOpen,
}

impl BreakerState {
    /// Lower-case name for JSON, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The value of the `edge_origin_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

/// Whether a request may go to the origin now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go.
    Allow,
    /// Half-open: go, as the probe; report the result.
    Probe,
    /// Open: do not send; the breaker may let a probe through at `retry_at` (ms).
    Reject {
        /// When a probe will be allowed.
        retry_at: u64,
    },
}

/// What a recorded result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing.
    None,
    /// The breaker opened (or re-opened after a failed probe).
    Opened,
    /// The breaker closed.
    Closed,
}

/// One origin's breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Breaker {
    /// Recent failure times (ms), oldest first, all within the window.
    Closed {
        /// Failure times in the window.
        failures: Vec<u64>,
    },
    /// Opened at `since`; a probe is allowed from `probe_at`.
    Open {
        /// When it opened.
        since: u64,
        /// When the next probe is allowed.
        probe_at: u64,
    },
    /// A probe was let through; another is allowed after `probe_until`.
    HalfOpen {
        /// When it first opened.
        since: u64,
        /// When the probe's lease ends.
        probe_until: u64,
    },
}

impl Default for Breaker {
    fn default() -> Self {
        Self::Closed { failures: Vec::new() }
    }
}

impl Breaker {
    /// The state as seen at `now`: an open breaker whose probe time has come shows half-open.
    pub fn state(&self, now: u64) -> BreakerState {
        match self {
            Self::Closed { .. } => BreakerState::Closed,
            Self::Open { probe_at, .. } if now < *probe_at => BreakerState::Open,
            Self::Open { .. } | Self::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether [`Breaker::admit`] would let a request through at `now` (no side effect), so
    /// the balancer can skip origins that would refuse.
    pub fn available(&self, now: u64) -> bool {
        match self {
            Self::Closed { .. } => true,
            Self::Open { probe_at, .. } => now >= *probe_at,
            Self::HalfOpen { probe_until, .. } => now >= *probe_until,
        }
    }

    /// When a request would next be admitted (ms); `now` when it would be now.
    pub fn retry_at(&self, now: u64) -> u64 {
        match self {
            Self::Closed { .. } => now,
            Self::Open { probe_at, .. } => (*probe_at).max(now),
            Self::HalfOpen { probe_until, .. } => (*probe_until).max(now),
        }
    }

    /// Asks to send one request at `now`. A due probe takes the half-open lease.
    pub fn admit(&mut self, s: &BreakerSettings, now: u64) -> Admission {
        match *self {
            Self::Closed { .. } => Admission::Allow,
            Self::Open { probe_at, .. } | Self::HalfOpen { probe_until: probe_at, .. } if now < probe_at => Admission::Reject { retry_at: probe_at },
            Self::Open { since, .. } | Self::HalfOpen { since, .. } => {
                *self = Self::HalfOpen { since, probe_until: now + s.probe_timeout_ms };
                Admission::Probe
            }
        }
    }

    /// Takes the half-open lease ahead of the probe time: the pool's last resort when every
    /// origin's breaker is open (the least recently failed one is tried rather than refusing
    /// everyone). Its result closes or re-opens the breaker like a probe's.
    pub fn force_probe(&mut self, s: &BreakerSettings, now: u64) {
        if let Self::Open { since, .. } | Self::HalfOpen { since, .. } = *self {
            *self = Self::HalfOpen { since, probe_until: now + s.probe_timeout_ms };
        }
    }

    /// Records the outcome of one attempt (or one health check) finished at `now`.
    ///
    /// A success closes a half-open breaker, and an open one whose probe time has come (an
    /// active health check is a probe); successes that arrive while it is open and not yet due
    /// were sent before it opened, and change nothing. A lone origin's breaker records no
    /// failure (and so never opens).
    pub fn record(&mut self, s: &BreakerSettings, ok: bool, now: u64) -> Transition {
        if s.lone && !ok {
            return Transition::None;
        }
        match self {
            Self::Closed { failures } => {
                let horizon = now.saturating_sub(s.window_ms);
                failures.retain(|t| *t > horizon);
                if ok {
                    return Transition::None;
                }
                failures.push(now);
                if failures.len() >= s.failures.get() as usize {
                    *self = Self::Open { since: now, probe_at: now + s.open_ms };
                    return Transition::Opened;
                }
                Transition::None
            }
            Self::Open { probe_at, .. } if ok && now < *probe_at => Transition::None,
            Self::Open { .. } | Self::HalfOpen { .. } if ok => {
                *self = Self::default();
                Transition::Closed
            }
            Self::Open { since, .. } | Self::HalfOpen { since, .. } => {
                let since = *since;
                *self = Self::Open { since, probe_at: now + s.open_ms };
                Transition::Opened
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings::DEFAULT.with_failures(NonZeroU32::new(3).unwrap()).with_window_ms(1_000).with_open_ms(5_000).with_probe_timeout_ms(2_000)
    }

    #[test]
    fn opens_after_n_failures_within_the_window_only() {
        let s = settings();
        let mut b = Breaker::default();
        assert_eq!(b.record(&s, false, 0), Transition::None);
        assert_eq!(b.record(&s, false, 900), Transition::None);
        // The first failure left the window: still two.
        assert_eq!(b.record(&s, false, 1_500), Transition::None);
        assert_eq!(b.state(1_500), BreakerState::Closed);
        assert_eq!(b.record(&s, true, 1_600), Transition::None, "successes do not reset a window");
        assert_eq!(b.record(&s, false, 1_700), Transition::Opened);
        assert_eq!(b.state(1_700), BreakerState::Open);
        assert_eq!(b.admit(&s, 1_800), Admission::Reject { retry_at: 6_700 });
        assert!(!b.available(6_699) && b.available(6_700));
    }

    #[test]
    fn half_open_lets_one_probe_then_closes_or_reopens() {
        let s = settings();
        let mut b = Breaker::Open { since: 0, probe_at: 5_000 };
        assert_eq!(b.state(5_000), BreakerState::HalfOpen);
        assert_eq!(b.admit(&s, 5_000), Admission::Probe);
        // The probe holds the lease: others are refused until it ends.
        assert_eq!(b.admit(&s, 5_001), Admission::Reject { retry_at: 7_000 });
        assert_eq!(b.record(&s, false, 5_100), Transition::Opened);
        assert_eq!(b, Breaker::Open { since: 0, probe_at: 10_100 });
        assert_eq!(b.admit(&s, 10_100), Admission::Probe);
        // A probe that never reports: the lease ends and another probe may go.
        assert_eq!(b.admit(&s, 12_100), Admission::Probe);
        assert_eq!(b.record(&s, true, 12_200), Transition::Closed);
        assert_eq!(b.admit(&s, 12_200), Admission::Allow);
        assert_eq!(b.state(12_200), BreakerState::Closed);
    }

    #[test]
    fn early_successes_do_not_close_and_health_checks_probe() {
        let s = settings();
        let mut b = Breaker::Open { since: 0, probe_at: 5_000 };
        assert_eq!(b.record(&s, true, 4_000), Transition::None, "a response sent before it opened");
        assert_eq!(b.state(4_000), BreakerState::Open);
        assert_eq!(b.record(&s, true, 5_000), Transition::Closed, "a health check after the open time");
        let mut b = Breaker::Open { since: 0, probe_at: 5_000 };
        assert_eq!(b.record(&s, false, 4_000), Transition::Opened, "a failed health check extends");
        assert_eq!(b.retry_at(4_000), 9_000);
    }

    #[test]
    fn a_lone_origin_never_opens() {
        let s = settings().with_lone_origin(true);
        let mut b = Breaker::default();
        for t in 0..100 {
            assert_eq!(b.record(&s, false, t), Transition::None);
        }
        assert_eq!(b.state(100), BreakerState::Closed);
        assert_eq!(b.admit(&s, 100), Admission::Allow);
        // A breaker persisted as open before the pool shrank to one origin closes on success.
        let mut b = Breaker::Open { since: 0, probe_at: 5_000 };
        b.force_probe(&s, 10);
        assert_eq!(b.record(&s, true, 20), Transition::Closed);
    }

    #[test]
    fn a_forced_probe_takes_the_lease_and_its_result_counts() {
        let s = settings();
        let mut b = Breaker::Open { since: 0, probe_at: 5_000 };
        b.force_probe(&s, 1_000);
        assert_eq!(b, Breaker::HalfOpen { since: 0, probe_until: 3_000 });
        assert_eq!(b.record(&s, true, 1_100), Transition::Closed, "sent after it opened: a success closes it");
        let mut b = Breaker::Open { since: 0, probe_at: 5_000 };
        b.force_probe(&s, 1_000);
        assert_eq!(b.record(&s, false, 1_100), Transition::Opened);
        assert_eq!(b.retry_at(1_100), 6_100);
        let mut closed = Breaker::default();
        closed.force_probe(&s, 1_000);
        assert_eq!(closed, Breaker::default(), "a closed breaker has no lease to take");
    }

    #[test]
    fn serialises_for_the_shared_copy() {
        let b = Breaker::Open { since: 1, probe_at: 2 };
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, r#"{"state":"open","since":1,"probe_at":2}"#);
        assert_eq!(serde_json::from_str::<Breaker>(&json).unwrap(), b);
    }
}
