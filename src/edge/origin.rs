//! Origin fetch: the request the core shaped ([`crate::pipeline::upstream`]) sent to an origin
//! the pool chose ([`crate::pool::PoolView`]), with a timeout, one retry elsewhere when the
//! core allows it, and breaker bookkeeping. Breaker states are shared through the `OriginPool`
//! Durable Object, read through a copy in each data centre's Cache API and kept in the isolate
//! for `pool.share_ttl`; results are reported in batches. The cron's health checks and the
//! confirmations of failures that do not count by themselves go to the object too.

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
use crate::pool::shared::{copy_verdict, news, CopyVerdict, Event, HealthCheck, Snapshot, LEASE_MS, MAX_PENDING_EVENTS};
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
/// How often an isolate sends its queued results at most.
const REPORT_EVERY_MS: f64 = 1_000.0;

struct Local {
    view: PoolView,
    /// When the isolate last adopted a shared copy (its clock, ms).
    fetched_at: f64,
    /// A refresh in flight since then.
    refresh_started: Option<f64>,
    /// Results not yet reported, and when the last report went.
    pending: Vec<Event>,
    last_report: f64,
    /// The end of the last lease this isolate took on the data centre's copy.
    my_lease: u64,
    /// Origins (by index) with a confirming health check in flight.
    confirming: Vec<usize>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

fn with_local<R>(config: &EdgeConfig, f: impl FnOnce(&mut Local) -> R) -> R {
    LOCAL.with(|cell| {
        let mut slot = cell.borrow_mut();
        let local = slot.get_or_insert_with(|| Local { view: PoolView::new(config.origins.clone(), config.pool.breaker), fetched_at: f64::NEG_INFINITY, refresh_started: None, pending: Vec::new(), last_report: f64::NEG_INFINITY, my_lease: 0, confirming: Vec::new() });
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
    let traceparent = inc.trace.outgoing();
    let ids = upstream::RequestIds { request_id: &inc.request_id, traceparent: Some(&traceparent) };
    let up = upstream::upstream_request(&inc.method, &inc.headers, client_body, client, &config.strip_request_headers, &rule.keep_request_headers, &ids, purpose);
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
            t.origin = Some(origin.as_str().to_owned());
        }
        let now = now_ms() as u64;
        let (attempt, response) = match result {
            Ok(res) => (Attempt::Answered, Some(res)),
            Err(None) => (Attempt::TimedOut, None),
            Err(Some(message)) => {
                let attempt = Attempt::from_fetch_error(&message);
                observe::error(Some(&inc.request_id), format_args!("origin {} failed ({attempt:?}): {message}", origin.as_str()));
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
            let transition = with_local(config, |l| l.view.record(choice.index, ok, now));
            if choice.probe || !ok {
                // The isolate's own breaker opening is news to send at once.
                let urgent = transition != crate::pool::breaker::Transition::None;
                report(&inc.env, &inc.bg, config, Event { url: origin.as_str().to_owned(), ok, check: None }, urgent);
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
pub(super) async fn fetch_with_timeout(req: Request, timeout: Duration) -> std::result::Result<Response, Option<String>> {
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

/// Queues one result for the shared copy. The queue goes to the object in the background at
/// most once per [`REPORT_EVERY_MS`] per isolate, or at once when `urgent` (the isolate's own
/// breaker changed state); what is left waits for the next report or refresh.
fn report(env: &Env, bg: &Background, config: &EdgeConfig, event: Event, urgent: bool) {
    let now = now_ms();
    let batch = with_local(config, |l| {
        if l.pending.len() < MAX_PENDING_EVENTS {
            l.pending.push(event);
        }
        (urgent || now - l.last_report >= REPORT_EVERY_MS).then(|| {
            l.last_report = now;
            std::mem::take(&mut l.pending)
        })
    });
    if let Some(events) = batch {
        let env = env.clone();
        bg.wait_until(async move {
            if let Err(e) = send_news(&env, events).await.map(drop) {
                observe::error(None, format_args!("reporting to the origin pool object failed: {e}"));
            }
        });
    }
}

/// Sends the events the data centre's copy does not show yet ([`news`]), under the copy's
/// lease: while another isolate of the data centre holds it (reporting or refreshing), the
/// events wait in this isolate for the next round, judged again on the copy it brings. So an
/// incident costs the object about one report per data centre per lease, not one per isolate.
/// Returns whether the object was called (its answer is then adopted and stored).
async fn send_news(env: &Env, events: Vec<Event>) -> Result<bool> {
    let copy = cached_copy().await;
    let events = news(events, copy.as_ref().map(|(s, _)| s));
    let now = now_ms() as u64;
    match copy {
        Some(_) if events.is_empty() => Ok(false),
        Some((snapshot, (_, lease_until))) if now < lease_until && !holds_lease(env, lease_until) => {
            adopt(env, &snapshot);
            if let Ok(config) = load_config(env) {
                with_local(&config, |l| {
                    let room = MAX_PENDING_EVENTS.saturating_sub(l.pending.len());
                    l.pending.extend(events.into_iter().take(room));
                });
            }
            Ok(false)
        }
        copy => {
            if let Some((snapshot, (fetched_at, _))) = &copy {
                take_lease(env, snapshot, *fetched_at, now + LEASE_MS).await?;
            }
            post_events(env, &events).await?;
            Ok(true)
        }
    }
}

/// Sends results to the shared copy and adopts the snapshot it answers with (also stored as
/// the data centre's copy).
async fn post_events(env: &Env, events: &[Event]) -> Result<Snapshot> {
    let snapshot = origin_pool::report(env, events).await?;
    adopt(env, &snapshot);
    if let Err(e) = store_copy(&snapshot, now_ms() as u64, 0).await {
        observe::error(None, format_args!("storing the pool copy failed: {e}"));
    }
    Ok(snapshot)
}

fn adopt(env: &Env, snapshot: &Snapshot) {
    let Ok(config) = load_config(env) else { return };
    let shared: Vec<(String, Breaker)> = snapshot.origins.iter().map(|(u, h)| (u.clone(), h.breaker.clone())).collect();
    with_local(&config, |l| {
        l.view.adopt(&shared, snapshot.now);
        l.fetched_at = now_ms();
    });
}

/// The Cache API key of the data centre's copy of the shared snapshot (never a client URL:
/// the host is reserved, RFC 2606).
const COPY_KEY: &str = "https://edgelayer-pool.invalid/snapshot";

/// Stores `snapshot` as the data centre's copy, fetched at `fetched_at`; `lease_until`: a
/// refresh is under way until then (0: none).
async fn store_copy(snapshot: &Snapshot, fetched_at: u64, lease_until: u64) -> Result<()> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    // Kept a minute at most; freshness is judged by `fetched_at` (pool.share_ttl).
    headers.set("cache-control", "max-age=60")?;
    headers.set("x-fetched-at", &fetched_at.to_string())?;
    headers.set("x-lease-until", &lease_until.to_string())?;
    let res = Response::from_json(snapshot)?.with_headers(headers);
    Cache::default().put(COPY_KEY, res).await
}

/// Puts the data centre's copy back under this isolate's lease until `lease_until`.
async fn take_lease(env: &Env, snapshot: &Snapshot, fetched_at: u64, lease_until: u64) -> Result<()> {
    if let Ok(config) = load_config(env) {
        with_local(&config, |l| l.my_lease = lease_until);
    }
    store_copy(snapshot, fetched_at, lease_until).await
}

/// Whether the lease ending at `lease_until` is this isolate's own (it does not wait for
/// itself).
fn holds_lease(env: &Env, lease_until: u64) -> bool {
    load_config(env).is_ok_and(|config| with_local(&config, |l| l.my_lease == lease_until))
}

/// The data centre's copy: the snapshot and its `(fetched_at, lease_until)`.
async fn cached_copy() -> Option<(Snapshot, (u64, u64))> {
    let mut res = Cache::default().get(COPY_KEY, false).await.ok()??;
    let number = |name: &str| res.headers().get(name).ok().flatten().and_then(|v| v.parse::<u64>().ok());
    let meta = (number("x-fetched-at")?, number("x-lease-until").unwrap_or(0));
    Some((res.json().await.ok()?, meta))
}

/// Refreshes the isolate's breakers: from the data centre's copy while it is fresh (or while
/// another isolate is fetching a new one), else from the object (the copy is leased first, so
/// the other isolates keep using it meanwhile). Queued reports that are news go instead of a
/// read (the object answers them with its states).
async fn refresh(env: &Env, ttl_ms: u64, pending: Vec<Event>) -> Result<()> {
    if !pending.is_empty() && send_news(env, pending).await? {
        return Ok(());
    }
    let now = now_ms() as u64;
    let cached = cached_copy().await;
    match copy_verdict(cached.as_ref().map(|(_, meta)| *meta), now, ttl_ms) {
        CopyVerdict::UseCached => {
            if let Some((snapshot, _)) = cached {
                adopt(env, &snapshot);
            }
        }
        CopyVerdict::Refresh { lease_until } => {
            if let Some((snapshot, (fetched_at, _))) = &cached {
                take_lease(env, snapshot, *fetched_at, lease_until).await?;
            }
            let snapshot = origin_pool::snapshot(env).await?;
            adopt(env, &snapshot);
            store_copy(&snapshot, now_ms() as u64, 0).await?;
        }
    }
    Ok(())
}

/// Starts a background refresh of the breakers when the isolate's are older than
/// `pool.share_ttl` (the request goes on with what the isolate has).
fn refresh_if_due(inc: &Incoming, config: &EdgeConfig) {
    let now = now_ms();
    let ttl = config.pool.share_ttl.as_millis() as f64;
    let pending = with_local(config, |l| {
        let stuck = l.refresh_started.is_some_and(|t| now - t >= REFRESH_STUCK_MS);
        let due = now - l.fetched_at >= ttl && (l.refresh_started.is_none() || stuck);
        due.then(|| {
            l.refresh_started = Some(now);
            l.last_report = now;
            std::mem::take(&mut l.pending)
        })
    });
    let Some(pending) = pending else { return };
    let env = inc.env.clone();
    let config_ttl = ttl as u64;
    inc.bg.wait_until(async move {
        if let Err(e) = refresh(&env, config_ttl, pending).await {
            observe::error(None, format_args!("refreshing the origin pool copy failed: {e}"));
        }
        if let Ok(config) = load_config(&env) {
            with_local(&config, |l| l.refresh_started = None);
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
            observe::error(None, format_args!("reporting to the origin pool object failed: {e}"));
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
