//! The `RateLimiter` Durable Object: one instance per (policy, key), so counting is exact per key
//! and no object is global. It runs the pure GCRA step ([`crate::ratelimit::check`]) on its TAT,
//! kept in memory and persisted. Reading, deciding and updating the in-memory TAT happen with no
//! `await` in between, so concurrent requests cannot interleave: under any concurrency exactly
//! the quota is admitted.

use super::{call, NO_BODY};
use crate::ratelimit::{check, Decision, Quota};
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
}

/// Exact per-key counters (declared in wrangler.toml with its migration).
#[durable_object]
pub struct RateLimiter {
    state: State,
    tat: RefCell<Option<f64>>,
    loaded: Cell<bool>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state, tat: RefCell::new(None), loaded: Cell::new(false) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/check" => {
                let ask: CheckRequest = req.json().await?;
                let (Some(limit), Some(burst)) = (NonZeroU32::new(ask.limit), NonZeroU32::new(ask.burst)) else {
                    return Response::error("bad quota", 400);
                };
                let Some(quota) = Quota::new(limit, ask.window_ms, Some(burst)) else { return Response::error("bad quota", 400) };
                let storage = self.state.storage();
                if !self.loaded.get() {
                    // Input gates hold other events while this read is in flight.
                    let stored: Option<f64> = storage.get("tat").await?;
                    if !self.loaded.get() {
                        *self.tat.borrow_mut() = stored;
                        self.loaded.set(true);
                    }
                }
                let now = Date::now().as_millis();
                let (decision, new_tat) = {
                    let mut tat = self.tat.borrow_mut();
                    let (d, t) = check(&quota, *tat, now);
                    *tat = Some(t);
                    (d, t)
                };
                if decision.allowed() {
                    storage.put("tat", new_tat).await?;
                }
                let reply = match decision {
                    Decision::Allow { remaining, reset_secs } => CheckReply { allowed: true, remaining, reset_secs, retry_after_secs: 0 },
                    Decision::Deny { retry_after_secs, reset_secs } => CheckReply { allowed: false, remaining: 0, reset_secs, retry_after_secs },
                };
                Response::from_json(&reply)
            }
            "/ping" => {
                // A read proves storage answers; health checks write nothing.
                let _: Option<f64> = self.state.storage().get("tat").await?;
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

/// Asks the object for `name` (policy and key) whether one more request fits the quota.
pub async fn check_remote(env: &Env, name: &str, quota: &Quota) -> Result<Decision> {
    let ask = CheckRequest { limit: quota.limit(), window_ms: quota.window_ms(), burst: quota.burst() };
    let r: CheckReply = call(env, BINDING, name, "/check", Some(&ask)).await?;
    Ok(if r.allowed {
        Decision::Allow { remaining: r.remaining, reset_secs: r.reset_secs }
    } else {
        Decision::Deny { retry_after_secs: r.retry_after_secs, reset_secs: r.reset_secs }
    })
}
