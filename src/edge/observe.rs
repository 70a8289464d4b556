//! Metrics glue: each isolate sums requests into a [`Slice`] per minute and ships it every few
//! seconds to the `EdgeMetrics` Durable Object (one instance), which keeps the aggregate
//! ([`Aggregate`]: totals plus the last hour by minute). Every request is also written to
//! Workers Analytics Engine when `EDGE_ANALYTICS` is bound. The admin endpoints serve the
//! aggregate as Prometheus text, as JSON and as a dashboard.

use super::error::EdgeResult;
use super::pool;
use super::{now_ms, Background, Incoming};
use crate::error::EdgeError;
use crate::admin::admin_token_matches;
use crate::config::EdgeConfig;
use crate::metrics::aggregate::{Aggregate, RequestRecord, Slice, MINUTE_MS};
use crate::metrics::alerts::Thresholds;
use std::cell::RefCell;
use worker::*;

/// Durable Object binding holding the aggregate.
pub const METRICS_BINDING: &str = "EDGE_METRICS";
/// Analytics Engine dataset binding (optional).
pub const ANALYTICS_BINDING: &str = "EDGE_ANALYTICS";
/// How often an isolate ships its sums.
const FLUSH_EVERY_MS: f64 = 2_000.0;

/// Prometheus text.
pub const METRICS_PATH: &str = "/__edgelayer/metrics";
/// JSON for the dashboard and scripts.
pub const METRICS_JSON_PATH: &str = "/__edgelayer/metrics.json";
/// The dashboard page and its script.
pub const DASHBOARD_PATH: &str = "/__edgelayer/dashboard";
const DASHBOARD_JS_PATH: &str = "/__edgelayer/dashboard.js";
const DASHBOARD_CSS_PATH: &str = "/__edgelayer/dashboard.css";

const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("../../assets/dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard/dashboard.css");

#[derive(Default)]
struct Buffer {
    /// Finished minutes not shipped yet, and the current one (last).
    minutes: Vec<(u64, Slice)>,
    last_flush: f64,
}

thread_local! {
    static BUFFER: RefCell<Buffer> = RefCell::new(Buffer::default());
}

/// Adds to the isolate's sums for the current minute.
pub fn record(f: impl FnOnce(&mut Slice)) {
    let minute = now_ms() as u64 / MINUTE_MS;
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        if b.minutes.last().is_none_or(|(m, _)| *m != minute) {
            b.minutes.push((minute, Slice::default()));
        }
        if let Some((_, slice)) = b.minutes.last_mut() {
            f(slice);
        }
    });
}

fn take() -> Vec<(u64, Slice)> {
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        b.last_flush = now_ms();
        std::mem::take(&mut b.minutes).into_iter().filter(|(_, s)| !s.is_empty()).collect()
    })
}

fn put_back(batches: Vec<(u64, Slice)>) {
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        for (minute, slice) in batches {
            match b.minutes.iter_mut().find(|(m, _)| *m == minute) {
                Some((_, s)) => s.merge(&slice),
                None => b.minutes.push((minute, slice)),
            }
        }
        b.minutes.sort_by_key(|(m, _)| *m);
    });
}

/// Ships the isolate's sums now.
pub async fn flush(env: &Env) -> Result<()> {
    let batches = take();
    if batches.is_empty() {
        return Ok(());
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(&batches)?.into()));
    let result = async {
        let stub = env.durable_object(METRICS_BINDING)?.get_by_name("metrics")?;
        let res = stub.fetch_with_request(Request::new_with_init("https://metrics/add", &init)?).await?;
        if res.status_code() != 200 {
            return Err(Error::RustError(format!("metrics object answered {}", res.status_code())));
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        // Kept for the next flush rather than lost.
        put_back(batches);
    }
    result
}

/// Ships the sums in the background when the last flush is a few seconds old.
pub fn flush_if_due(env: &Env, bg: &Background) {
    let due = BUFFER.with(|b| {
        let b = b.borrow();
        !b.minutes.is_empty() && now_ms() - b.last_flush >= FLUSH_EVERY_MS
    });
    if due {
        let env = env.clone();
        bg.wait_until(async move {
            if let Err(e) = flush(&env).await {
                console_error!("edgelayer: shipping metrics failed: {e}");
            }
        });
    }
}

/// Records one finished request: the isolate's sums, and Analytics Engine when bound.
pub fn request(inc: &Incoming, r: &RequestRecord<'_>) {
    record(|s| s.record(r));
    if let Ok(dataset) = inc.env.analytics_engine(ANALYTICS_BINDING) {
        let timing = inc.timing.borrow();
        let point = AnalyticsEngineDataPointBuilder::new()
            .indexes([r.rule])
            .add_blob(r.rule)
            .add_blob(r.cache)
            .add_blob(inc.method.as_str())
            .add_blob(r.status.to_string().as_str())
            .add_blob(inc.request_id.as_str())
            .add_double(r.seconds * 1000.0)
            .add_double(timing.origin_ms.unwrap_or(0.0))
            .add_double(r.bytes_out.unwrap_or(0) as f64)
            .add_double(r.bytes_in.unwrap_or(0) as f64)
            .build();
        if let Err(e) = dataset.write_data_point(&point) {
            console_error!("edgelayer: analytics engine write failed: {e}");
        }
    }
}

/// Whether the request carries the admin token (and one is configured).
pub fn is_admin(env: &Env, config: &EdgeConfig, inc: &Incoming) -> bool {
    let Ok(token) = env.secret(&config.admin_token_secret).map(|s| s.to_string()) else { return false };
    admin_token_matches(inc.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()), &token)
}

/// Serves the admin endpoints; `None` for other paths. Every one needs the admin token.
pub async fn admin(env: &Env, config: &EdgeConfig, inc: &Incoming) -> Option<EdgeResult<Response>> {
    let path = inc.path.as_str();
    if ![METRICS_PATH, METRICS_JSON_PATH, DASHBOARD_PATH, DASHBOARD_JS_PATH, DASHBOARD_CSS_PATH].contains(&path) {
        return None;
    }
    Some(admin_response(env, config, inc, path).await)
}

async fn admin_response(env: &Env, config: &EdgeConfig, inc: &Incoming, path: &str) -> EdgeResult<Response> {
    if !matches!(inc.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }.into());
    }
    if env.secret(&config.admin_token_secret).is_err() {
        return Err(EdgeError::Disabled { what: "the admin endpoints", secret: config.admin_token_secret.clone() }.into());
    }
    if !is_admin(env, config, inc) {
        return Err(EdgeError::Unauthorized {
            challenge: "Basic realm=\"edgelayer admin\", charset=\"UTF-8\"",
            message: "the admin token is required (Bearer, or as the Basic auth password)",
        }
        .into());
    }
    let headers = Headers::new();
    headers.set("cache-control", "no-store")?;
    headers.set("x-content-type-options", "nosniff")?;
    match path {
        DASHBOARD_PATH => {
            headers.set("content-type", "text/html; charset=utf-8")?;
            headers.set("content-security-policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")?;
            return Ok(Response::ok(DASHBOARD_HTML)?.with_headers(headers));
        }
        DASHBOARD_JS_PATH => {
            headers.set("content-type", "text/javascript; charset=utf-8")?;
            return Ok(Response::ok(DASHBOARD_JS)?.with_headers(headers));
        }
        DASHBOARD_CSS_PATH => {
            headers.set("content-type", "text/css; charset=utf-8")?;
            return Ok(Response::ok(DASHBOARD_CSS)?.with_headers(headers));
        }
        _ => {}
    }
    // This isolate's latest sums first, so what was just served is in the answer.
    if let Err(e) = flush(env).await {
        console_error!("edgelayer: shipping metrics failed: {e}");
    }
    let aggregate = match read_aggregate(env).await {
        Ok(a) => a,
        Err(e) => return Err(EdgeError::Upstream(502, format!("metrics unavailable: {e}")).into()),
    };
    let pool = pool::snapshot(env).await.ok();
    let now = now_ms() as u64;
    let thresholds = Thresholds::SEED;
    if path == METRICS_PATH {
        headers.set("content-type", "text/plain; version=0.0.4; charset=utf-8")?;
        let gauges = pool.as_ref().map(pool::Snapshot::gauges).unwrap_or_default();
        return Ok(Response::ok(aggregate.prometheus(now, &thresholds, &gauges))?.with_headers(headers));
    }
    let hour = aggregate.recent(now, crate::metrics::aggregate::HISTORY_MINUTES);
    let body = serde_json::json!({
        "generated_at": now,
        "thresholds": thresholds,
        "alerts": aggregate.alerts(now, &thresholds),
        "last_hour": hour.summary(),
        "rules": hour.rule_summaries(),
        "series": aggregate.series(now),
        "pool": pool.as_ref().map(pool::Snapshot::to_json),
    });
    headers.set("content-type", "application/json")?;
    Ok(Response::ok(body.to_string())?.with_headers(headers))
}

async fn read_aggregate(env: &Env) -> Result<Aggregate> {
    let stub = env.durable_object(METRICS_BINDING)?.get_by_name("metrics")?;
    let mut res = stub.fetch_with_str("https://metrics/aggregate").await?;
    if res.status_code() != 200 {
        return Err(Error::RustError(format!("metrics object answered {}", res.status_code())));
    }
    res.json().await
}

/// The rolling aggregate (one instance, named `metrics`): merges what isolates ship, keeps the
/// totals and the last hour, persisted so a restart keeps the history.
#[durable_object]
pub struct EdgeMetrics {
    state: State,
    aggregate: RefCell<Option<Aggregate>>,
}

impl DurableObject for EdgeMetrics {
    fn new(state: State, _env: Env) -> Self {
        Self { state, aggregate: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        if self.aggregate.borrow().is_none() {
            let stored: Option<Aggregate> = storage.get("aggregate").await.unwrap_or(None);
            let mut slot = self.aggregate.borrow_mut();
            if slot.is_none() {
                *slot = Some(stored.unwrap_or_default());
            }
        }
        match req.path().as_str() {
            "/add" => {
                let batches: Vec<(u64, Slice)> = req.json().await?;
                let now = Date::now().as_millis();
                let copy = {
                    let mut slot = self.aggregate.borrow_mut();
                    let agg = slot.get_or_insert_with(Aggregate::default);
                    for (minute, slice) in &batches {
                        agg.add(*minute, slice, now);
                    }
                    agg.clone()
                };
                storage.put("aggregate", &copy).await?;
                Response::ok("ok")
            }
            "/aggregate" => {
                let slot = self.aggregate.borrow();
                Response::from_json(slot.as_ref().unwrap_or(&Aggregate::default()))
            }
            _ => Response::error("not found", 404),
        }
    }
}
