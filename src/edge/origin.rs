//! Origin fetch: the request the core shaped ([`crate::pipeline::upstream`]) sent to an origin
//! the pool chose ([`crate::pool::PoolView`]), with a timeout, one retry elsewhere when the
//! core allows it, and breaker bookkeeping. Breaker states are shared through the `OriginPool`
//! Durable Object and cached in the isolate for `pool.share_ttl`; the cron's health checks and
//! the confirmations of failures that do not count by themselves go there too.

use super::context::{load_config, now_ms, to_headers, Background, Incoming};
use super::error::EdgeResult;
use super::objects::origin_pool;
use super::observe;
use crate::config::origin_url::OriginUrl;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::metrics::aggregate::OriginResult;
use crate::pipeline::upstream::{self, BodyPlan, ClientBody, UpstreamPurpose, UpstreamRequest};
use crate::pool::breaker::Breaker;
use crate::pool::shared::{Event, HealthCheck, Snapshot};
use crate::pool::{Attempt, PoolView};
use crate::proxy::{self, ClientInfo};
use crate::rules::Rule;
use futures_util::future::{select, Either};
use std::cell::RefCell;
use std::time::Duration;
use worker::*;

/// A snapshot refresh that has not finished after this long may be started again (workerd can
/// cancel a background task, which would otherwise block refreshes for good).
const REFRESH_STUCK_MS: f64 = 5_000.0;

struct Local {
    view: PoolView,
    fetched_at: f64,
    refresh_started: f64,
    /// Origins (by index) with a confirming health check in flight.
    confirming: Vec<usize>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

fn with_local<R>(config: &EdgeConfig, f: impl FnOnce(&mut Local) -> R) -> R {
    LOCAL.with(|cell| {
        let mut slot = cell.borrow_mut();
        let local = slot.get_or_insert_with(|| Local { view: PoolView::new(config.origins.clone(), config.pool.breaker), fetched_at: f64::NEG_INFINITY, refresh_started: f64::NEG_INFINITY, confirming: Vec::new() });
        f(local)
    })
}

/// Sends the client's request (or a fill for it) to the origin pool, shaped by the core for
/// `purpose`. `body`: the client's request, whose body goes upstream as the core planned
/// (held in full up to `pool.buffer_body`, streamed beyond).
pub async fn fetch(inc: &Incoming, config: &EdgeConfig, rule: &Rule, body: Option<&Request>, purpose: UpstreamPurpose<'_>) -> EdgeResult<Response> {
    let client = ClientInfo { ip: inc.client_ip.as_deref(), scheme: inc.url.scheme(), host: Some(&inc.host) };
    let client_body = match body {
        Some(_) => ClientBody::from_headers(&inc.headers, config.pool.buffer_body),
        None => ClientBody::NONE,
    };
    let up = upstream::upstream_request(&inc.method, &inc.headers, client_body, client, &config.strip_request_headers, &rule.keep_request_headers, &inc.request_id, purpose);
    let platform_headers = to_headers(&up.headers)?;
    let body: Option<wasm_bindgen::JsValue> = match (up.body, body) {
        (BodyPlan::None, _) | (_, None) => None,
        (BodyPlan::Streamed, Some(req)) => req.inner().body().map(Into::into),
        (BodyPlan::Buffered, Some(req)) => {
            let promise = req.inner().array_buffer().map_err(|e| EdgeError::Internal(format!("{e:?}")))?;
            let bytes = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|_| EdgeError::Client(400, "the request body could not be read".into()))?;
            Some(js_sys::Uint8Array::new(&bytes).into())
        }
    };
    let path_and_query = inc.path_and_query();
    let make = |origin: &OriginUrl| -> Result<Request> {
        // Built on web_sys directly: worker's `Method` would turn PROPFIND or PURGE into GET.
        let init = web_sys::RequestInit::new();
        init.set_method(up.method.as_str());
        init.set_headers(platform_headers.as_ref());
        init.set_redirect(web_sys::RequestRedirect::Manual);
        if let Some(body) = &body {
            init.set_body(body);
        }
        Ok(web_sys::Request::new_with_str_and_init(&origin.join(&path_and_query), &init)?.into())
    };
    send(inc, config, &up, make).await
}

/// Sends a request built by `make` for an origin's base URL to the pool: one origin, and one
/// more when the core allows a retry. What an attempt means for the breaker, and what the
/// client is told, is the core's call ([`Attempt`]); a status the platform cannot carry is
/// refused here, before anything touches the response.
async fn send(inc: &Incoming, config: &EdgeConfig, up: &UpstreamRequest, make: impl Fn(&OriginUrl) -> Result<Request>) -> EdgeResult<Response> {
    let websocket = proxy::is_websocket_upgrade(&up.headers);
    refresh_if_due(inc, config);
    let mut tried: Vec<usize> = Vec::new();
    loop {
        let now = now_ms();
        let choice = with_local(config, |l| l.view.choose(now as u64, &tried)).map_err(|down| EdgeError::AllDown { retry_after_secs: down.retry_after_secs(now as u64) })?;
        let Some(origin) = config.origins.get(choice.index).map(|o| &o.url) else {
            return Err(EdgeError::OriginUnreachable.into());
        };
        let t0 = now_ms();
        let result = fetch_with_timeout(make(origin)?, config.pool.timeout).await;
        let elapsed = now_ms() - t0;
        {
            let mut t = inc.timing.borrow_mut();
            t.origin_ms = Some(t.origin_ms.unwrap_or(0.0) + elapsed);
        }
        let now = now_ms() as u64;
        let (attempt, response) = match result {
            Ok(res) => (Attempt::Answered, Some(res)),
            Err(None) => (Attempt::TimedOut, None),
            Err(Some(message)) => {
                let attempt = Attempt::from_fetch_error(&message);
                console_error!("edgelayer: {} origin {} failed ({attempt:?}): {message}", inc.request_id, origin.as_str());
                (attempt, None)
            }
        };
        let metric = match (&response, attempt) {
            (Some(res), _) => OriginResult::Status(res.status_code()),
            (None, Attempt::TimedOut) => OriginResult::Timeout,
            (None, _) => OriginResult::Error,
        };
        observe::record(|s| s.record_origin(origin.as_str(), metric, elapsed / 1000.0));
        if let Some(ok) = attempt.breaker_result(up.counts_against_origin) {
            with_local(config, |l| l.view.record(choice.index, ok, now));
            if choice.probe || !ok {
                report(&inc.env, &inc.bg, origin.as_str(), ok);
            }
        } else if attempt.needs_confirmation(up.counts_against_origin) {
            confirm(inc, config, choice.index);
        }
        if let Some(res) = response {
            // A 101 answers a WebSocket handshake only (the runtime pairs the socket; the
            // Upgrade header was not forwarded otherwise).
            upstream::passable_status(res.status_code(), websocket)?;
            return Ok(res);
        }
        tried.push(choice.index);
        if !with_local(config, |l| l.view.may_retry(up.retryable, tried.len(), attempt)) {
            // Every origin refusing now means the pool is down: 503 with Retry-After.
            if let Some(down) = with_local(config, |l| l.view.all_down(now)) {
                return Err(EdgeError::AllDown { retry_after_secs: down.retry_after_secs(now) }.into());
            }
            return Err(attempt.error(up.body != BodyPlan::None).into());
        }
    }
}

/// Fetches with a deadline for the response headers. `Err(None)`: timed out (the request is
/// aborted); `Err(Some(message))`: the fetch failed.
async fn fetch_with_timeout(req: Request, timeout: Duration) -> std::result::Result<Response, Option<String>> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(req);
    let sent = fetch.send_with_signal(&signal);
    let delay = Delay::from(timeout);
    futures_util::pin_mut!(sent, delay);
    match select(sent, delay).await {
        Either::Left((Ok(res), _)) => Ok(res),
        Either::Left((Err(e), _)) => Err(Some(e.to_string())),
        Either::Right(_) => {
            controller.abort();
            Err(None)
        }
    }
}

/// Tells the shared copy about one result, in the background, and adopts its answer.
fn report(env: &Env, bg: &Background, url: &str, ok: bool) {
    let events = vec![Event { url: url.to_owned(), ok, check: None }];
    let env = env.clone();
    bg.wait_until(async move {
        if let Err(e) = post_events(&env, &events).await {
            console_error!("edgelayer: reporting to the origin pool object failed: {e}");
        }
    });
}

/// Sends results to the shared copy and adopts the snapshot it answers with.
async fn post_events(env: &Env, events: &[Event]) -> Result<Snapshot> {
    let snapshot = origin_pool::report(env, events).await?;
    adopt(env, &snapshot);
    Ok(snapshot)
}

fn adopt(env: &Env, snapshot: &Snapshot) {
    let Ok(config) = load_config(env) else { return };
    let shared: Vec<(String, Breaker)> = snapshot.origins.iter().map(|(u, h)| (u.clone(), h.breaker.clone())).collect();
    with_local(&config, |l| {
        l.view.adopt(&shared);
        l.fetched_at = now_ms();
    });
}

/// Starts a background refresh of the shared copy when the cached one is older than
/// `pool.share_ttl` (the request goes on with what the isolate has).
fn refresh_if_due(inc: &Incoming, config: &EdgeConfig) {
    let now = now_ms();
    let due = with_local(config, |l| {
        let due = now - l.fetched_at >= config.pool.share_ttl.as_millis() as f64 && now - l.refresh_started >= REFRESH_STUCK_MS;
        if due {
            l.refresh_started = now;
        }
        due
    });
    if !due {
        return;
    }
    let env = inc.env.clone();
    inc.bg.wait_until(async move {
        match origin_pool::snapshot(&env).await {
            Ok(s) => adopt(&env, &s),
            Err(e) => console_error!("edgelayer: reading the origin pool object failed: {e}"),
        }
    });
}

/// One active health check: `GET <origin><health_path>`, 2xx passes.
async fn check_origin(config: &EdgeConfig, origin: &OriginUrl) -> Event {
    let url = origin.join(&config.pool.health_path);
    let t0 = now_ms();
    let result = match Request::new(&url, Method::Get) {
        Ok(req) => fetch_with_timeout(req, config.pool.timeout.min(Duration::from_secs(5))).await,
        Err(e) => Err(Some(e.to_string())),
    };
    let ms = now_ms() - t0;
    let (ok, detail) = match result {
        Ok(res) => ((200..300).contains(&res.status_code()), res.status_code().to_string()),
        Err(Some(e)) => (false, e),
        Err(None) => (false, "timeout".to_owned()),
    };
    Event { url: origin.as_str().to_owned(), ok, check: Some(HealthCheck { at: now_ms() as u64, ok, ms, detail }) }
}

/// Confirms a failure that does not count by itself (a request with a body got no answer)
/// with a health check of that origin, in the background; its result counts. One check per
/// origin at a time per isolate.
fn confirm(inc: &Incoming, config: &EdgeConfig, index: usize) {
    let start = with_local(config, |l| {
        let idle = !l.confirming.contains(&index);
        if idle {
            l.confirming.push(index);
        }
        idle
    });
    let Some(origin) = config.origins.get(index).map(|o| o.url.clone()).filter(|_| start) else { return };
    let env = inc.env.clone();
    inc.bg.wait_until(async move {
        let Ok(config) = load_config(&env) else { return };
        let event = check_origin(&config, &origin).await;
        with_local(&config, |l| {
            l.view.record(index, event.ok, now_ms() as u64);
            l.confirming.retain(|i| *i != index);
        });
        if let Err(e) = post_events(&env, &[event]).await {
            console_error!("edgelayer: reporting to the origin pool object failed: {e}");
        }
    });
}

/// Active health checks (the cron trigger): `GET <origin><health_path>` on every origin, each
/// result recorded in the shared copy. Returns the snapshot after them.
pub async fn check_all(env: &Env, config: &EdgeConfig) -> Result<Snapshot> {
    let checks = config.origins.iter().map(|o| check_origin(config, &o.url));
    let events = futures_util::future::join_all(checks).await;
    post_events(env, &events).await
}

/// The origin's response headers, hop-by-hop fields (and those `Connection` names) removed,
/// so nothing hop-by-hop is stored, replayed or passed on (RFC 9110 §7.6.1): the one
/// conversion in of an origin answer.
pub fn headers_of(res: &Response) -> http::HeaderMap {
    let mut headers = super::context::to_header_map(res.headers());
    proxy::strip_hop_by_hop(&mut headers);
    headers
}
