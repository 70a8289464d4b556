//! The `RateLimiter` Durable Object: one instance per (policy, key), so counting is exact per key
//! and no object is global. It runs the pure step ([`crate::ratelimit::block::admit`]: GCRA and
//! the penalty box) on its state, kept in memory and persisted. Reading, deciding and updating
//! the in-memory state happen with no `await` in between, so concurrent requests cannot
//! interleave: under any concurrency exactly the quota is admitted. `/refund` gives one request
//! back (a response the policy does not count).

use super::{call, NO_BODY};
use crate::ratelimit::block::{admit, refund, KeyState};
use crate::ratelimit::{Decision, Quota};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::num::NonZeroU32;
use worker::*;

/// What the worker asks.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckRequest {
    /// Quota limit.
    pub limit: u32,
    /// Quota window, ms.
    pub window_ms: u64,
    /// Quota burst.
    pub burst: u32,
    /// The penalty once the quota is spent, ms (0: none).
    #[serde(default)]
    pub block_for_ms: u64,
}

/// What the object answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckReply {
    /// Allowed.
    pub allowed: bool,
    /// Requests left now.
    pub remaining: u32,
    /// Seconds until the full burst is back.
    pub reset_secs: u64,
    /// Seconds until the next request is allowed (denials).
    pub retry_after_secs: u64,
    /// Denials: every check is refused until then, ms (what the isolate may remember).
    #[serde(default)]
    pub refused_until: Option<u64>,
}

/// Exact per-key counters (declared in wrangler.toml with its migration).
#[cfg_attr(not(feature = "image-worker"), durable_object)]
pub struct RateLimiter {
    state: State,
    key: RefCell<KeyState>,
    loaded: Cell<bool>,
}

impl RateLimiter {
    /// Loads the stored state once (input gates hold other events while the read is in flight).
    async fn load(&self) -> Result<()> {
        if !self.loaded.get() {
            let storage = self.state.storage();
            let stored: Option<KeyState> = storage.get("state").await?;
            // Before the penalty box only the TAT was kept.
            let stored = match stored {
                Some(s) => s,
                None => KeyState { tat: storage.get("tat").await?, blocked_until: None },
            };
            if !self.loaded.get() {
                *self.key.borrow_mut() = stored;
                self.loaded.set(true);
            }
        }
        Ok(())
    }
}

#[cfg(not(feature = "image-worker"))]
impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state, key: RefCell::new(KeyState::default()), loaded: Cell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/check" | "/refund" => {
                let ask: CheckRequest = req.json().await?;
                let (Some(limit), Some(burst)) = (NonZeroU32::new(ask.limit), NonZeroU32::new(ask.burst)) else {
                    return Response::error("bad quota", 400);
                };
                let Some(quota) = Quota::new(limit, ask.window_ms, Some(burst)) else { return Response::error("bad quota", 400) };
                self.load().await?;
                let now = Date::now().as_millis();
                if req.path() == "/refund" {
                    let after = {
                        let mut key = self.key.borrow_mut();
                        *key = refund(&quota, *key, now);
                        *key
                    };
                    self.state.storage().put("state", after).await?;
                    return Response::from_json(&serde_json::json!({ "ok": true }));
                }
                let (admission, before) = {
                    let mut key = self.key.borrow_mut();
                    let before = *key;
                    let a = admit(&quota, ask.block_for_ms, before, now);
                    *key = a.state;
                    (a, before)
                };
                if admission.state != before {
                    self.state.storage().put("state", admission.state).await?;
                }
                let reply = match admission.decision {
                    Decision::Allow { remaining, reset_secs } => CheckReply { allowed: true, remaining, reset_secs, retry_after_secs: 0, refused_until: None },
                    Decision::Deny { retry_after_secs, reset_secs } => CheckReply { allowed: false, remaining: 0, reset_secs, retry_after_secs, refused_until: admission.refused_until },
                };
                Response::from_json(&reply)
            }
            "/ping" => {
                // A read proves storage answers; health checks write nothing.
                let _: Option<KeyState> = self.state.storage().get("state").await?;
                Response::from_json(&serde_json::json!({ "ok": true }))
            }
            _ => Response::error("not found", 404),
        }
    }
}

/// Its binding.
pub const BINDING: &str = "RATE_LIMITER";

/// Pings the health-check instance (it reads its storage; nothing is written).
pub async fn ping(env: &Env) -> Result<()> {
    let reply: serde_json::Value = call(env, BINDING, "health", "/ping", NO_BODY).await?;
    if reply["ok"] == true {
        Ok(())
    } else {
        Err(Error::RustError("bad ping reply".into()))
    }
}

/// What the object said to one check.
pub struct Checked {
    /// Allowed or denied, with the header figures.
    pub decision: Decision,
    /// Denials: refused until then, ms.
    pub refused_until: Option<u64>,
}

/// Asks the object for `name` (policy and key) whether one more request fits the quota, with a
/// penalty of `block_for_ms` once it does not.
pub async fn check_remote(env: &Env, name: &str, quota: &Quota, block_for_ms: u64) -> Result<Checked> {
    let ask = CheckRequest { limit: quota.limit(), window_ms: quota.window_ms(), burst: quota.burst(), block_for_ms };
    let r: CheckReply = call(env, BINDING, name, "/check", Some(&ask)).await?;
    let decision = if r.allowed {
        Decision::Allow { remaining: r.remaining, reset_secs: r.reset_secs }
    } else {
        Decision::Deny { retry_after_secs: r.retry_after_secs, reset_secs: r.reset_secs }
    };
    Ok(Checked { decision, refused_until: r.refused_until })
}

/// Gives one admitted request back to the object for `name` (its response did not count).
pub async fn refund_remote(env: &Env, name: &str, quota: &Quota) -> Result<()> {
    let ask = CheckRequest { limit: quota.limit(), window_ms: quota.window_ms(), burst: quota.burst(), block_for_ms: 0 };
    let _: serde_json::Value = call(env, BINDING, name, "/refund", Some(&ask)).await?;
    Ok(())
}
