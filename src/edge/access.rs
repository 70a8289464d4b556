//! Rate limiting and access lists at the edge: deny list (403), allow list (never limited),
//! API-key tiers, and the per-key Durable Object check. Lists and tiers come from KV
//! (`deny:<ip>`, `allow:<ip>`, `apikey:<key>` → policy name), cached in the isolate.

use super::context::{now_ms, Incoming, KV_BINDING};
use super::error::EdgeResult;
use super::objects::rate_limiter;
use super::observe;
use super::response::EdgeResponse;
use http::{HeaderMap, HeaderName, HeaderValue};
use crate::config::{EdgeConfig, RateLimitPolicy};
use crate::ratelimit::block::{Counted, RefusedKeys};
use crate::ratelimit::key::{client_ip_key, KeyInputs};
use crate::ratelimit::{self, Decision};
use crate::rules::Rule;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::*;

/// Most KV answers cached per isolate.
const MAX_CACHED: usize = 10_000;

thread_local! {
    static KV_CACHE: RefCell<HashMap<String, (Option<String>, u64)>> = RefCell::new(HashMap::new());
}

/// A KV read through the isolate cache (`None`: absent; errors count as absent, logged).
/// Errors are logged with `request_id` and the key's kind only (`apikey:` keys hold secrets).
async fn kv_get(env: &Env, request_id: &str, key: &str, ttl_ms: u64, now: u64) -> Option<String> {
    if let Some(v) = KV_CACHE.with(|c| c.borrow().get(key).filter(|(_, at)| now.saturating_sub(*at) < ttl_ms).map(|(v, _)| v.clone())) {
        return v;
    }
    let value = match env.kv(KV_BINDING) {
        Ok(kv) => kv.get(key).text().await.unwrap_or_else(|e| {
            let kind = key.split_once(':').map_or("?", |(k, _)| k);
            observe::error(Some(request_id), format_args!("KV read of a {kind}: key failed: {e}"));
            None
        }),
        Err(_) => None,
    };
    KV_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAX_CACHED {
            c.clear();
        }
        c.insert(key.to_owned(), (value.clone(), now));
    });
    value
}

thread_local! {
    /// Keys this isolate knows are refused, each until an instant the key's object gave.
    static REFUSED: RefCell<RefusedKeys> = RefCell::new(RefusedKeys::default());
}

/// What limiting decided for a request.
pub enum Verdict {
    /// Go on; add these headers to the response; settle the reservation once its status is
    /// known (policies that count only some responses).
    Proceed(Vec<(&'static str, String)>, Option<Reservation>),
    /// Answer with this response (403, 429 or the policy's own, or 503 when failing closed).
    Respond(EdgeResponse),
}

/// A request admitted under a policy that counts only some responses: its quota is given
/// back unless the response counts.
pub struct Reservation {
    object: String,
    policy: RateLimitPolicy,
}

/// Gives the reserved request back when `status` does not count (in the background).
pub fn settle(inc: &Incoming, reservation: Option<Reservation>, status: u16) {
    let Some(Reservation { object, policy }) = reservation else { return };
    if policy.counted.counts(status) {
        return;
    }
    let env = inc.env.clone();
    let id = inc.request_id.clone();
    inc.bg.wait_until(async move {
        if let Err(e) = rate_limiter::refund_remote(&env, &object, &policy.quota).await {
            observe::error(Some(&id), format_args!("rate limiter refund for {}: {e}", policy.name));
        }
    });
}

/// An RFC 9457 problem answer with extra headers.
fn problem(status: u16, body: String, extra: &[(&'static str, String)]) -> EdgeResponse {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(HeaderName::from_static(k), v);
        }
    }
    EdgeResponse::bytes(status, headers, body)
}

fn simple_problem(status: u16, title: &str, detail: &str) -> EdgeResponse {
    problem(status, serde_json::json!({ "type": "about:blank", "title": title, "status": status, "detail": detail }).to_string(), &[])
}

/// Applies access lists and the rule's rate limit.
pub async fn enforce(env: &Env, config: &EdgeConfig, inc: &Incoming, rule: &Rule) -> EdgeResult<Verdict> {
    let now = now_ms() as u64;
    let ttl = config.kv_cache_ttl.as_millis() as u64;
    let ip = inc.client_ip.as_deref().and_then(|ip| client_ip_key(ip, 64));
    if let Some(ip) = &ip {
        if kv_get(env, &inc.request_id, &format!("deny:{ip}"), ttl, now).await.is_some() {
            return Ok(Verdict::Respond(simple_problem(403, "Forbidden", "this client is blocked")));
        }
    }
    let Some(mut policy) = rule.rate_limit.as_deref().and_then(|p| config.rate_limits.get(p)) else {
        return Ok(Verdict::Proceed(Vec::new(), None));
    };
    if let Some(ip) = &ip {
        if kv_get(env, &inc.request_id, &format!("allow:{ip}"), ttl, now).await.is_some() {
            return Ok(Verdict::Proceed(Vec::new(), None));
        }
    }
    if let Some(api_key) = inc.headers.get(config.api_key_header.as_str()).and_then(|v| v.to_str().ok()) {
        if let Some(tier) = kv_get(env, &inc.request_id, &format!("apikey:{}", api_key.trim()), ttl, now).await {
            match config.rate_limits.get(tier.trim()) {
                Some(p) => policy = p,
                None => observe::error(Some(&inc.request_id), format_args!("API key tier {tier:?} is not a policy; using {}", policy.name)),
            }
        }
    }
    decide(env, inc, policy).await
}

/// The refusal a policy sends: its own response, or the 429 problem JSON; always with the
/// rate-limit headers.
fn refusal(policy: &RateLimitPolicy, retry_after_secs: u64, headers: &[(&'static str, String)]) -> EdgeResponse {
    match &policy.response {
        None => problem(429, ratelimit::problem_body(&policy.name, retry_after_secs), headers),
        Some(custom) => {
            let mut res = problem(custom.status, custom.body.clone(), headers);
            if let Ok(v) = HeaderValue::from_str(&custom.content_type) {
                res.headers.insert(http::header::CONTENT_TYPE, v);
            }
            res
        }
    }
}

async fn decide(env: &Env, inc: &Incoming, policy: &RateLimitPolicy) -> EdgeResult<Verdict> {
    let inputs = KeyInputs { client_ip: inc.client_ip.as_deref(), headers: &inc.headers, path: &inc.path, query: inc.url.query(), country: inc.cf.country.as_deref(), asn: inc.cf.asn };
    let Some(key) = ratelimit::key::request_key(&policy.key, &inputs) else {
        return Ok(Verdict::Proceed(Vec::new(), None));
    };
    let object = format!("{}|{key}", policy.name);
    let now = now_ms() as u64;
    // A key this isolate knows is refused costs no object call.
    let remembered = REFUSED.with(|r| r.borrow_mut().refused_until(&object, now));
    let decision = match remembered {
        Some(until) => {
            let secs = (until - now).div_ceil(1000).max(1);
            Decision::Deny { retry_after_secs: secs, reset_secs: secs }
        }
        None => match rate_limiter::check_remote(env, &object, &policy.quota, policy.block_for_ms).await {
            Ok(checked) => {
                if let Some(until) = checked.refused_until {
                    REFUSED.with(|r| r.borrow_mut().remember(&object, until, now_ms() as u64));
                }
                checked.decision
            }
            Err(e) => {
                observe::error(Some(&inc.request_id), format_args!("rate limiter {} unreachable: {e}", policy.name));
                if policy.fail_closed {
                    return Ok(Verdict::Respond(simple_problem(503, "Service Unavailable", "rate limiter unavailable")));
                }
                return Ok(Verdict::Proceed(vec![("x-ratelimit-status", "unavailable".into())], None));
            }
        },
    };
    let headers = ratelimit::headers(&policy.name, &policy.quota, &decision);
    match decision {
        Decision::Deny { retry_after_secs, .. } if !policy.log_only => Ok(Verdict::Respond(refusal(policy, retry_after_secs, &headers))),
        Decision::Deny { .. } => {
            let mut headers = headers;
            headers.retain(|(k, _)| *k != "retry-after");
            headers.push(("x-ratelimit-status", "would-limit".into()));
            Ok(Verdict::Proceed(headers, None))
        }
        Decision::Allow { .. } => {
            let reservation = (policy.counted != Counted::All).then(|| Reservation { object, policy: policy.clone() });
            Ok(Verdict::Proceed(headers, reservation))
        }
    }
}
