//! The cache flows, carrying out what the pipeline decides: a pass to the origin, a range cut
//! from the stored identity copy, and the cacheable path (L1, then the Cache API, then the
//! origin, collapsed), with background refreshes and revalidations. Every branch is a value
//! from [`crate::pipeline`]; this file only moves bodies and calls the platform.

use super::cache_api::{self, Collapse, Found, L1Entry, LeaderGuard, Lookup};
use super::context::{now_ms, Incoming};
use super::error::{AppError, EdgeResult};
use super::{observe, origin};
use super::response::{self, EdgeResponse, Outgoing};
use crate::cache::bans::is_banned;
use crate::cache::key::primary_key;
use crate::cache::meta::CacheMeta;
use crate::cache::policy::{self, Cacheability, NoCacheReason};
use crate::cache::status::{CacheOutcome, StatusDetail};
use crate::cache::stored::identity_request;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::pipeline::fill::{self, Fill, FillPlan, ForRequest, StorePlan};
use crate::pipeline::lookup::{self, Phase, Revalidation};
use crate::pipeline::upstream::UpstreamPurpose;
use crate::proxy::content_length;
use crate::rules::Rule;
use http::{header, HeaderMap, StatusCode};
use std::rc::Rc;
use worker::{Request, Response, ResponseBody, Result};

/// The request as the fill planner sees it.
fn for_request<'a>(inc: &'a Incoming, rule: &'a Rule) -> ForRequest<'a> {
    ForRequest { rule, path: &inc.path, method: &inc.method, headers: &inc.headers }
}

/// Runs a plan's body transform (minifier, brotli) on `body`, if it has one.
fn transform_body(inc: &Incoming, config: &EdgeConfig, rule: &Rule, plan: &FillPlan, body: ResponseBody) -> Result<ResponseBody> {
    let Some(stage) = plan.transform.stage() else { return Ok(body) };
    inc.timing.borrow_mut().transform = Some((stage, None));
    response::transformed(body, &plan.transform, config.minify.clone().with_utf8(plan.transform.utf8), plan.brotli_quality, Some((rule.name.clone(), stage)))
}

/// Answers from a stored entry (a 304 when the client's validators match).
fn serve_stored(inc: &Incoming, rule: &Rule, meta: &CacheMeta, stored: &HeaderMap, body: ResponseBody, outcome: CacheOutcome, detail: StatusDetail<'_>) -> EdgeResponse {
    let served = lookup::serve_stored(rule, meta, stored, &inc.headers, now_ms() as u64, outcome, &detail);
    let body = if served.with_body { body } else { ResponseBody::Empty };
    EdgeResponse::new(&inc.method, served.status, served.headers, body, served.manual)
}

/// Not cacheable: stream both ways; unsafe methods that succeed invalidate what they changed.
pub async fn pass(req: Request, config: &EdgeConfig, inc: &Incoming, rule: &Rule, reason: NoCacheReason) -> EdgeResult<Outgoing> {
    let res = origin::fetch(inc, config, rule, Some(&req), UpstreamPurpose::Pass).await?;
    if res.status_code() == 101 {
        // WebSocket: the platform pairs the sockets; the response must pass through untouched.
        return Ok(Outgoing::Upgrade(res));
    }
    let status = res.status_code();
    let headers = origin::headers_of(&res);
    // `origin::fetch` let only 200-599 through, so the status converts.
    let code = StatusCode::from_u16(status).map_err(|_| EdgeError::OriginBadStatus(status))?;
    let paths = policy::invalidation_paths(&inc.method, code, &inc.path, &inc.host, &headers);
    if !paths.is_empty() {
        invalidate(config, inc, &paths).await;
    }
    let plan = fill::plan(for_request(inc, rule), status, headers, now_ms() as u64, Fill::Pass(reason));
    let body = transform_body(inc, config, rule, &plan, res.into_parts().1)?;
    Ok(EdgeResponse::new(&inc.method, plan.status, plan.headers, body, plan.manual).into())
}

/// RFC 9111 §4.4: drop stored responses for `paths` (every key spec of the rule that matches).
async fn invalidate(config: &EdgeConfig, inc: &Incoming, paths: &[String]) {
    for path in paths {
        let rule = config.rules.match_request(&http::Method::GET, &inc.host, path);
        let key = primary_key(inc.url.scheme(), &inc.host, path, None, &rule.cache_key, &inc.headers);
        if let Err(e) = cache_api::delete(&key).await {
            observe::error(Some(&inc.request_id), format_args!("invalidating {key} failed: {e}"));
        }
    }
    cache_api::l1_invalidate(&config.l1, Some(paths));
}

/// Range requests: the fresh stored identity copy answers, whatever the client accepts (the
/// platform cuts the range: 206); anything else goes to the origin with the range, unstored.
pub async fn ranged(req: Request, config: &EdgeConfig, inc: &Incoming, rule: &Rule) -> EdgeResult<Outgoing> {
    let now = now_ms() as u64;
    let primary = primary_key(inc.url.scheme(), &inc.host, &inc.path, inc.url.query(), &rule.cache_key, &inc.headers);
    let bans = cache_api::bans(&inc.env, config.ban_refresh.as_millis() as u64, now).await;
    let range = inc.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    if let Ok(Lookup::Found(found)) = inc.time_cache(cache_api::lookup(&primary, &identity_request(&inc.headers), &bans, range)).await {
        if lookup::phase(&found.meta, now) == Phase::Hit {
            let status = if found.response.status_code() == 206 { 206 } else { found.meta.status };
            let meta = found.meta;
            let mut headers = crate::cache::stored::served_headers(&found.headers, &meta, rule, now, CacheOutcome::Hit, &lookup::hit_detail(&meta, now, None));
            // The platform's cut of the body: its length and range replace the stored ones.
            let cut = origin::headers_of(&found.response);
            for name in [header::CONTENT_LENGTH, header::CONTENT_RANGE] {
                match cut.get(&name) {
                    Some(v) => headers.insert(name, v.clone()),
                    None => headers.remove(name),
                };
            }
            // An encoding the origin applied itself is the representation the range is of.
            let manual = headers.contains_key(header::CONTENT_ENCODING);
            return Ok(EdgeResponse::new(&inc.method, status, headers, found.response.into_parts().1, manual).into());
        }
    }
    pass(req, config, inc, rule, NoCacheReason::Range).await
}

/// A fresh, unbanned L1 entry for `key`, answered.
fn l1_hit(config: &EdgeConfig, inc: &Incoming, rule: &Rule, key: &str, bans: &[crate::cache::bans::Ban], now: u64) -> Option<EdgeResponse> {
    let e = cache_api::l1_get(&config.l1, key, &inc.headers, now)?;
    (!is_banned(bans, &e.meta) && lookup::phase(&e.meta, now) == Phase::Hit).then(|| serve_stored(inc, rule, &e.meta, &e.headers, ResponseBody::Body(e.body.clone()), CacheOutcome::Hit, lookup::hit_detail(&e.meta, now, Some("l1"))))
}

/// What a lookup that only serves fresh entries found.
pub enum Looked {
    /// A fresh entry, answered.
    Fresh(EdgeResponse),
    /// Nothing fresh: produce it; the guard (when this request leads) releases collapsed
    /// followers once the fill is stored.
    Miss(Option<LeaderGuard>),
}

/// L1, then the Cache API, then collapsing, for answers that are only ever served fresh (image
/// variants: a stale one is made again rather than revalidated).
pub async fn fresh_or_lead(config: &EdgeConfig, inc: &Incoming, rule: &Rule, key: &str) -> Looked {
    let now = now_ms() as u64;
    let bans = cache_api::bans(&inc.env, config.ban_refresh.as_millis() as u64, now).await;
    if let Some(res) = l1_hit(config, inc, rule, key, &bans, now) {
        return Looked::Fresh(res);
    }
    let bans = &bans;
    let fresh = |detail: Option<&'static str>| async move {
        match inc.time_cache(cache_api::lookup(key, &inc.headers, bans, None)).await {
            Ok(Lookup::Found(found)) if lookup::phase(&found.meta, now_ms() as u64) == Phase::Hit => {
                let d = lookup::hit_detail(&found.meta, now_ms() as u64, detail);
                Some(serve_stored(inc, rule, &found.meta, &found.headers, found.response.into_parts().1, CacheOutcome::Hit, d))
            }
            _ => None,
        }
    };
    if let Some(res) = fresh(None).await {
        return Looked::Fresh(res);
    }
    match cache_api::collapse(key).await {
        Collapse::Leader(g) => Looked::Miss(Some(g)),
        Collapse::Followed => match fresh(Some("collapsed")).await {
            Some(res) => Looked::Fresh(res),
            None => Looked::Miss(None),
        },
    }
}

/// The cacheable path: L1, then the Cache API, then the origin (collapsed).
pub async fn cached(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule) -> EdgeResult<EdgeResponse> {
    let now = now_ms() as u64;
    let primary = primary_key(inc.url.scheme(), &inc.host, &inc.path, inc.url.query(), &rule.cache_key, &inc.headers);
    let bans = cache_api::bans(&inc.env, config.ban_refresh.as_millis() as u64, now).await;
    if let Some(res) = l1_hit(config, inc, rule, &primary, &bans, now) {
        return Ok(res);
    }
    // Hit-for-pass: the key's last answer was uncacheable; skip lookup and collapsing.
    let mut vary_miss = false;
    let mut guard = None;
    if !cache_api::is_hit_for_pass(&primary, now) {
        match inc.time_cache(cache_api::lookup(&primary, &inc.headers, &bans, None)).await {
            Ok(Lookup::Found(found)) => match lookup::phase(&found.meta, now) {
                Phase::Hit => return serve_hit(inc, config, rule, &primary, found, now).await,
                Phase::ServeAndRefresh => {
                    inc.bg.wait_until(refresh_in_background(config.clone(), inc, rule.clone(), primary.clone(), found.meta.clone(), found.headers.clone()));
                    let detail = lookup::hit_detail(&found.meta, now, None);
                    return Ok(serve_stored(inc, rule, &found.meta, &found.headers, found.response.into_parts().1, CacheOutcome::Updating, detail));
                }
                Phase::Revalidate { if_error } => return revalidate(config, inc, rule, &primary, found, if_error).await,
            },
            Ok(Lookup::Miss { vary_miss: v }) => vary_miss = v,
            Err(e) => observe::error(Some(&inc.request_id), format_args!("cache lookup failed: {e}")),
        }
        match cache_api::collapse(&primary).await {
            Collapse::Leader(g) => guard = Some(g),
            Collapse::Followed => {
                if let Ok(Lookup::Found(found)) = inc.time_cache(cache_api::lookup(&primary, &inc.headers, &bans, None)).await {
                    let now = now_ms() as u64;
                    if lookup::phase(&found.meta, now) == Phase::Hit {
                        return serve_hit(inc, config, rule, &primary, found, now).await;
                    }
                }
            }
        }
    }
    let res = origin::fetch(inc, config, rule, None, UpstreamPurpose::Fill { validators: &[] }).await?;
    fill(config, inc, rule, &primary, res, CacheOutcome::Miss, vary_miss, guard)
}

/// A fresh hit from L2; small bodies are also kept in L1.
async fn serve_hit(inc: &Incoming, config: &EdgeConfig, rule: &Rule, primary: &str, found: Found, now: u64) -> EdgeResult<EdgeResponse> {
    let detail = lookup::hit_detail(&found.meta, now, None);
    let small = content_length(&found.headers).is_some_and(|n| config.l1.admits(n as usize));
    let Found { meta, headers, mut response } = found;
    if small {
        let body = response.bytes().await?;
        cache_api::l1_put(&config.l1, primary, &inc.headers, L1Entry { meta: meta.clone(), headers: headers.clone(), body: body.clone() }, now);
        return Ok(serve_stored(inc, rule, &meta, &headers, ResponseBody::Body(body), CacheOutcome::Hit, detail));
    }
    Ok(serve_stored(inc, rule, &meta, &headers, response.into_parts().1, CacheOutcome::Hit, detail))
}

/// Stores the origin's response when the plan says so (in the background, body teed) and
/// answers.
#[allow(clippy::too_many_arguments)]
fn fill(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, primary: &str, res: Response, outcome: CacheOutcome, vary_miss: bool, guard: Option<LeaderGuard>) -> EdgeResult<EdgeResponse> {
    let status = res.status_code();
    let plan = fill::plan(for_request(inc, rule), status, origin::headers_of(&res), now_ms() as u64, Fill::Cache { outcome, vary_miss, shared: Ok(()) });
    cache_api::set_hit_for_pass(primary, plan.hit_for_pass);
    let mut body = transform_body(inc, config, rule, &plan, res.into_parts().1)?;
    if let Some(store) = plan.store.clone() {
        let (client, copy) = response::tee(body)?;
        body = client;
        inc.bg.wait_until(cache_api::fill_in_background(inc.request_id.clone(), config.l1, primary.to_owned(), inc.headers.clone(), store, copy, guard));
    }
    // For HEAD the GET body feeds the cache copy only; the response carries none.
    Ok(EdgeResponse::new(&inc.method, plan.status, plan.headers, body, plan.manual))
}

/// Stale and not servable as is: revalidate with the origin (RFC 9111 §4.3); the answer is
/// judged by [`lookup::after_revalidation`].
async fn revalidate(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, primary: &str, stale: Found, if_error: bool) -> EdgeResult<EdgeResponse> {
    let validators = policy::revalidation_headers(&stale.headers);
    let res = origin::fetch(inc, config, rule, None, UpstreamPurpose::Fill { validators: &validators }).await;
    let now = now_ms() as u64;
    let answer = res.as_ref().map(Response::status_code).map_err(|AppError(e)| e);
    match (lookup::after_revalidation(answer, if_error), res) {
        (Revalidation::UseStale { fwd_status }, _) => {
            let detail = StatusDetail { ttl: Some(stale.meta.ttl_secs(now)), fwd_status: Some(fwd_status), ..Default::default() };
            Ok(serve_stored(inc, rule, &stale.meta, &stale.headers, stale.response.into_parts().1, CacheOutcome::Stale, detail))
        }
        (Revalidation::Fail, Err(e)) => Err(e),
        (Revalidation::NotModified, Ok(r)) => {
            let refreshed = lookup::refresh_after_304(rule, &inc.path, &inc.headers, &stale.meta, &stale.headers, &origin::headers_of(&r), now);
            let body = stale.response.into_parts().1;
            match refreshed.decision {
                Cacheability::Store(meta) => {
                    let (client, copy) = response::tee(body)?;
                    let store = StorePlan { meta: meta.clone(), headers: refreshed.headers.clone(), ttl_secs: refreshed.ttl_secs, page_facts: fill::PageScan::of(rule, 200, &refreshed.headers) };
                    inc.bg.wait_until(cache_api::fill_in_background(inc.request_id.clone(), config.l1, primary.to_owned(), inc.headers.clone(), store, copy, None));
                    let detail = StatusDetail { ttl: Some(meta.ttl_secs(now)), fwd_status: Some(304), stored: true, ..Default::default() };
                    Ok(serve_stored(inc, rule, &meta, &refreshed.headers, client, CacheOutcome::Revalidated, detail))
                }
                Cacheability::Skip(reason) => {
                    let detail = StatusDetail { fwd_status: Some(304), detail: Some(reason.as_str()), ..Default::default() };
                    Ok(serve_stored(inc, rule, &stale.meta, &refreshed.headers, body, CacheOutcome::Revalidated, detail))
                }
            }
        }
        (_, Ok(r)) => fill(config, inc, rule, primary, r, CacheOutcome::Expired, false, None),
        (_, Err(e)) => Err(e),
    }
}

/// stale-while-revalidate: refresh the entry after the stale copy was served, judged by the
/// same table as a revalidation the client waits for (the stale copy may keep answering).
/// Only one refresh per key runs in an isolate at a time.
fn refresh_in_background(config: Rc<EdgeConfig>, inc: &Incoming, rule: Rule, primary: String, stale: CacheMeta, stale_headers: HeaderMap) -> impl std::future::Future<Output = ()> + 'static {
    let inc = inc.derive(http::Method::GET, inc.url.clone());
    async move {
        let Some(guard) = cache_api::try_lead(&primary) else { return };
        let validators = policy::revalidation_headers(&stale_headers);
        let res = origin::fetch(&inc, &config, &rule, None, UpstreamPurpose::Fill { validators: &validators }).await;
        let now = now_ms() as u64;
        let answer = res.as_ref().map(Response::status_code).map_err(|AppError(e)| e);
        match (lookup::after_revalidation(answer, true), res) {
            (Revalidation::NotModified, Ok(r)) => {
                let refreshed = lookup::refresh_after_304(&rule, &inc.path, &inc.headers, &stale, &stale_headers, &origin::headers_of(&r), now);
                // Re-read the stored body to store it again under the new freshness.
                if let (Cacheability::Store(meta), Ok(Lookup::Found(found))) = (refreshed.decision, cache_api::lookup(&primary, &inc.headers, &[], None).await) {
                    let page_facts = fill::PageScan::of(&rule, 200, &refreshed.headers);
                    let store = StorePlan { meta, headers: refreshed.headers, ttl_secs: refreshed.ttl_secs, page_facts };
                    cache_api::fill_in_background(inc.request_id.clone(), config.l1, primary.clone(), inc.headers.clone(), store, found.response.into_parts().1, Some(guard)).await;
                }
            }
            (Revalidation::Replace, Ok(r)) => {
                let plan = fill::plan(for_request(&inc, &rule), r.status_code(), origin::headers_of(&r), now, Fill::Cache { outcome: CacheOutcome::Expired, vary_miss: false, shared: Ok(()) });
                let Some(store) = plan.store.clone() else { return };
                match transform_body(&inc, &config, &rule, &plan, r.into_parts().1) {
                    Ok(body) => cache_api::fill_in_background(inc.request_id.clone(), config.l1, primary.clone(), inc.headers.clone(), store, body, Some(guard)).await,
                    Err(e) => observe::error(Some(&inc.request_id), format_args!("background refresh of {primary}: {e}")),
                }
            }
            (Revalidation::UseStale { fwd_status }, _) => observe::error(Some(&inc.request_id), format_args!("background refresh of {primary} got {fwd_status}; the stale copy stays")),
            (_, Err(AppError(e))) => observe::error(Some(&inc.request_id), format_args!("background refresh of {primary} failed: {e}")),
            (_, Ok(r)) => observe::error(Some(&inc.request_id), format_args!("background refresh of {primary} got {}", r.status_code())),
        }
    }
}
