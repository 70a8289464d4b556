//! Rate limiting and access lists at the edge: deny list (403), allow list (never limited),
//! API-key tiers, and the per-key Durable Object check. Lists and tiers come from KV
//! (`deny:<ip>`, `allow:<ip>`, `apikey:<key>` → policy name), cached in the isolate.

use super::context::{now_ms, Incoming, KV_BINDING};
use super::error::EdgeResult;
use super::objects::rate_limiter;
use super::response::EdgeResponse;
use http::{HeaderMap, HeaderName, HeaderValue};
use crate::config::{EdgeConfig, RateLimitPolicy};
use crate::ratelimit::{self, key::client_ip_key, Decision};
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
async fn kv_get(env: &Env, key: &str, ttl_ms: u64, now: u64) -> Option<String> {
    if let Some(v) = KV_CACHE.with(|c| c.borrow().get(key).filter(|(_, at)| now.saturating_sub(*at) < ttl_ms).map(|(v, _)| v.clone())) {
        return v;
    }
    let value = match env.kv(KV_BINDING) {
        Ok(kv) => kv.get(key).text().await.unwrap_or_else(|e| {
            console_error!("edgelayer: KV {key}: {e}");
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

/// What limiting decided for a request.
pub enum Verdict {
    /// Go on; add these headers to the response.
    Proceed(Vec<(&'static str, String)>),
    /// Answer with this response (403, 429, or 503 when failing closed).
    Respond(EdgeResponse),
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
        if kv_get(env, &format!("deny:{ip}"), ttl, now).await.is_some() {
            return Ok(Verdict::Respond(simple_problem(403, "Forbidden", "this client is blocked")));
        }
    }
    let Some(mut policy) = rule.rate_limit.as_deref().and_then(|p| config.rate_limits.get(p)) else {
        return Ok(Verdict::Proceed(Vec::new()));
    };
    if let Some(ip) = &ip {
        if kv_get(env, &format!("allow:{ip}"), ttl, now).await.is_some() {
            return Ok(Verdict::Proceed(Vec::new()));
        }
    }
    if let Some(api_key) = inc.headers.get(config.api_key_header.as_str()).and_then(|v| v.to_str().ok()) {
        if let Some(tier) = kv_get(env, &format!("apikey:{}", api_key.trim()), ttl, now).await {
            match config.rate_limits.get(tier.trim()) {
                Some(p) => policy = p,
                None => console_error!("edgelayer: API key tier {tier:?} is not a policy; using {}", policy.name),
            }
        }
    }
    decide(env, inc, policy).await
}

async fn decide(env: &Env, inc: &Incoming, policy: &RateLimitPolicy) -> EdgeResult<Verdict> {
    let Some(key) = ratelimit::key::request_key(&policy.key, inc.client_ip.as_deref(), &inc.headers) else {
        return Ok(Verdict::Proceed(Vec::new()));
    };
    let decision = match rate_limiter::check_remote(env, &format!("{}|{key}", policy.name), &policy.quota).await {
        Ok(d) => d,
        Err(e) => {
            console_error!("edgelayer: {} rate limiter unreachable: {e}", inc.request_id);
            if policy.fail_closed {
                return Ok(Verdict::Respond(simple_problem(503, "Service Unavailable", "rate limiter unavailable")));
            }
            return Ok(Verdict::Proceed(vec![("x-ratelimit-status", "unavailable".into())]));
        }
    };
    let headers = ratelimit::headers(&policy.name, &policy.quota, &decision);
    match decision {
        Decision::Deny { retry_after_secs, .. } if !policy.log_only => Ok(Verdict::Respond(problem(429, ratelimit::problem_body(&policy.name, retry_after_secs), &headers))),
        Decision::Deny { .. } => {
            let mut headers = headers;
            headers.retain(|(k, _)| *k != "retry-after");
            headers.push(("x-ratelimit-status", "would-limit".into()));
            Ok(Verdict::Proceed(headers))
        }
        Decision::Allow { .. } => Ok(Verdict::Proceed(headers)),
    }
}
