//! Origin pool glue: sends each origin request to an origin chosen by the core
//! ([`crate::pool::PoolView`]), with a timeout, one retry elsewhere for requests that may be
//! repeated, and breaker bookkeeping. Breaker states are shared through the `OriginPool`
//! Durable Object (one instance) and cached in the isolate for `pool.share_ttl`.

use super::error::EdgeResult;
use super::{load_config, now_ms, observe, Background, Incoming};
use crate::error::EdgeError;
use crate::pool::Attempt;
use crate::proxy;
use crate::config::{EdgeConfig, OriginUrl};
use crate::metrics::aggregate::OriginResult;
use crate::pool::breaker::Breaker;
use crate::pool::PoolView;
use futures_util::future::{select, Either};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;
use worker::*;

/// Durable Object binding holding the shared breaker states and health checks.
pub const POOL_BINDING: &str = "ORIGIN_POOL";
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

/// Sends a request built by `make` for an origin's base URL to the pool: one origin, and on a
/// failure to connect (or a timeout) one more, different origin when `up.retryable`. What an
/// attempt means for the breaker, and what the client is told, is the core's call
/// ([`Attempt`]); a status the platform cannot carry is refused here, before anything touches
/// the response (`websocket`: the request asked for a WebSocket, so a 101 may pass).
pub async fn send(inc: &Incoming, config: &EdgeConfig, up: &proxy::UpstreamRequest, make: impl Fn(&OriginUrl) -> Result<Request>) -> EdgeResult<Response> {
    let retryable = up.retryable;
    let websocket = proxy::is_websocket_upgrade(&up.headers);
    refresh_if_due(inc, config);
    let mut tried: Vec<usize> = Vec::new();
    loop {
        let now = now_ms();
        let choice = match with_local(config, |l| l.view.choose(now as u64, &tried)) {
            Ok(c) => c,
            Err(down) => return Err(EdgeError::AllDown { retry_after_secs: down.retry_after_secs(now as u64) }.into()),
        };
        let Some(origin) = config.origins.get(choice.index).map(|o| &o.url) else {
            return Err(EdgeError::OriginUnreachable.into());
        };
        let req = make(origin)?;
        let t0 = now_ms();
        let result = fetch_with_timeout(req, config.pool.timeout).await;
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
                report(&inc.env, &inc.bg, origin.as_str(), ok, None);
            }
        } else if attempt.needs_confirmation(up.counts_against_origin) {
            confirm(inc, config, choice.index);
        }
        if let Some(res) = response {
            // A 101 answers a WebSocket handshake only (the runtime pairs the socket; the
            // Upgrade header was not forwarded otherwise).
            proxy::passable_status(res.status_code(), websocket)?;
            return Ok(res);
        }
        tried.push(choice.index);
        if !retryable || tried.len() >= 2 || tried.len() >= config.origins.len() {
            // Every origin refusing now means the pool is down: 503 with Retry-After.
            if let Some(down) = with_local(config, |l| l.view.all_down(now)) {
                return Err(EdgeError::AllDown { retry_after_secs: down.retry_after_secs(now) }.into());
            }
            return Err(attempt.error(up.body != proxy::BodyPlan::None).into());
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

/// Tells the shared copy about one result, in the background, and adopts its answer.
pub fn report(env: &Env, bg: &Background, url: &str, ok: bool, check: Option<HealthCheck>) {
    let events = vec![Event { url: url.to_owned(), ok, check }];
    let env = env.clone();
    bg.wait_until(async move {
        if let Err(e) = post_events(&env, &events).await {
            console_error!("edgelayer: reporting to the origin pool object failed: {e}");
        }
    });
}

/// Sends results to the shared copy and adopts the snapshot it answers with.
pub async fn post_events(env: &Env, events: &[Event]) -> Result<Snapshot> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(events)?.into()));
    let snapshot = call(env, Request::new_with_init("https://pool/report", &init)?).await?;
    adopt(env, &snapshot);
    Ok(snapshot)
}

/// Reads the shared copy.
pub async fn snapshot(env: &Env) -> Result<Snapshot> {
    call(env, Request::new("https://pool/snapshot", Method::Get)?).await
}

async fn call(env: &Env, req: Request) -> Result<Snapshot> {
    let stub = env.durable_object(POOL_BINDING)?.get_by_name("pool")?;
    let mut res = stub.fetch_with_request(req).await?;
    if res.status_code() != 200 {
        return Err(Error::RustError(format!("origin pool object answered {}", res.status_code())));
    }
    res.json().await
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
        match snapshot(&env).await {
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

/// The shared breaker states and health checks (one instance, named `pool`). Breaker rules come
/// from the same config as the worker's.
#[durable_object]
pub struct OriginPool {
    state: State,
    env: Env,
    origins: RefCell<Option<BTreeMap<String, OriginHealth>>>,
}

impl DurableObject for OriginPool {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, origins: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let config = match load_config(&self.env) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("invalid edge configuration: {e}"), 500),
        };
        let storage = self.state.storage();
        if self.origins.borrow().is_none() {
            let stored: Option<BTreeMap<String, OriginHealth>> = storage.get("origins").await?;
            let mut slot = self.origins.borrow_mut();
            if slot.is_none() {
                *slot = Some(stored.unwrap_or_default());
            }
        }
        match req.path().as_str() {
            "/report" => {
                let events: Vec<Event> = req.json().await?;
                let now = Date::now().as_millis();
                let copy = {
                    let mut slot = self.origins.borrow_mut();
                    let origins = slot.get_or_insert_with(BTreeMap::new);
                    for e in events {
                        if !config.origins.iter().any(|o| o.url.as_str() == e.url) {
                            continue;
                        }
                        let h = origins.entry(e.url).or_default();
                        if h.breaker.record(&config.pool.breaker, e.ok, now) == crate::pool::breaker::Transition::Opened {
                            h.opened += 1;
                        }
                        if e.check.is_some() {
                            h.last_check = e.check;
                        }
                    }
                    origins.clone()
                };
                storage.put("origins", &copy).await?;
            }
            "/snapshot" => {}
            _ => return Response::error("not found", 404),
        }
        let now = Date::now().as_millis();
        let slot = self.origins.borrow();
        let origins = config.origins.iter().map(|o| (o.url.as_str().to_owned(), slot.as_ref().and_then(|m| m.get(o.url.as_str())).cloned().unwrap_or_default())).collect();
        Response::from_json(&Snapshot { now, origins })
    }
}
