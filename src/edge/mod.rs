//! The Worker glue (wasm32 only): an executor for the pure pipeline ([`crate::pipeline`]). It
//! reads the platform request once, routes it, carries out what the core decides, and hands
//! one response back to the platform. One file per platform role:
//!
//! | file | role |
//! |---|---|
//! | `mod.rs` | the events (`fetch`, `scheduled`) and dispatch on [`crate::pipeline::route::Route`] |
//! | `context.rs` | the request context, background work, the config, header conversion |
//! | `response.rs` | bodies and the one response type ([`response::EdgeResponse`]) |
//! | `flow.rs` | the cache flows: pass, range, cached (lookup, revalidation, fill) |
//! | `cache_api.rs` | the Cache API (L2), L1, bans, collapsing, hit-for-pass |
//! | `origin.rs` | origin fetch through the pool, health checks |
//! | `images.rs` | image variants |
//! | `access.rs` | access lists and rate limits |
//! | `admin.rs`, `purge.rs` | the edge's own endpoints |
//! | `observe.rs` | metrics slices and Analytics Engine |
//! | `objects/` | the three Durable Objects |
//! | `error.rs` | the glue's error type |

// The image worker exports only its own entry (`image_worker.rs`): no Cron Trigger and no
// Durable Objects, so the linker leaves the rest of the edge out of its wasm. Through those
// exports the edge had been 2.8 MB of its 9.1 MB (BENCHMARKS.md, "The image worker's size").
// The glue is still compiled there, so both builds check it.
#![cfg_attr(feature = "image-worker", allow(dead_code, unused_imports))]

mod access;
mod admin;
mod cache_api;
pub(crate) mod context;
mod error;
mod flow;
#[cfg(feature = "image-worker")]
mod image_worker;
mod images;
mod objects;
mod observe;
mod origin;
mod purge;
mod response;

use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::pipeline::finish;
use crate::pipeline::route::{self, Endpoint, Route, Serve};
use crate::rules::Rule;
use context::{load_config, new_nonce, Background, Incoming};
use error::{AppError, EdgeResult};
use response::{EdgeResponse, Outgoing};
use worker::*;

/// The edge (the image worker, `image-worker` feature, has its own entry).
#[cfg(not(feature = "image-worker"))]
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    Ok(handle(req, env, Background::of_fetch(ctx)).await)
}

/// Called once as the isolate starts, by the entry module (`.ci/worker-shim.mjs`) with the
/// `env` of `cloudflare:workers`: the config is read and validated then, not during the first
/// request (about 8 ms of a cold first request in workerd; BENCHMARKS.md, cold start), and a
/// broken one is logged at once. Every request still answers a broken config with its 500.
///
/// A good config is logged too, as one line. That line is also the isolate's first
/// `console.log`, which cost a cold first request about 3 ms in workerd (its formatter is
/// compiled on first use). On Cloudflare an isolate usually starts during the TLS handshake.
#[cfg(not(feature = "image-worker"))]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = "__edgelayer_start")]
pub fn start(env: wasm_bindgen::JsValue) {
    use wasm_bindgen::JsCast;
    match load_config(&env.unchecked_into::<Env>()) {
        Ok(config) => observe::info(format_args!("started: {}", config.summary())),
        Err(e) => observe::error(None, format_args!("{e}")),
    }
}

/// The Cron Trigger: health checks of every origin, then cache warming, then the metrics.
#[cfg(not(feature = "image-worker"))]
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let config = match load_config(&env) {
        Ok(c) => c,
        Err(e) => return observe::error(None, e),
    };
    match origin::check_all(&env, &config).await {
        Ok(s) => observe::info(format_args!("health checks: {}", s.to_json())),
        Err(e) => observe::error(None, format_args!("health checks could not be recorded: {e}")),
    }
    let bg = Background::of_schedule(ctx);
    for url in &config.pool.warm {
        match warm(url, &env, &bg).await {
            Ok(note) => observe::info(format_args!("warmed {url}: {note}")),
            Err(e) => observe::error(None, format_args!("warming {url} failed: {e}")),
        }
    }
    if let Err(e) = observe::flush(&env, config.metrics.shards).await {
        observe::error(None, format_args!("shipping metrics failed: {e}"));
    }
    if let Err(e) = observe::announce_alerts(&env, &config).await {
        observe::error(None, format_args!("evaluating alerts failed: {e}"));
    }
}

/// Requests `url` through the pipeline as a browser would (brotli-capable), reading the body
/// so that the cache fill completes.
async fn warm(url: &Url, env: &Env, bg: &Background) -> Result<String> {
    let headers = Headers::new();
    headers.set("accept", "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8")?;
    headers.set("accept-encoding", "br, gzip")?;
    headers.set("user-agent", "edgelayer-warm/1")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let mut res = handle(Request::new_with_init(url.as_str(), &init)?, env.clone(), bg.clone()).await;
    let status = res.status_code();
    let cache = res.headers().get("x-cache")?.unwrap_or_default();
    let bytes = res.bytes().await?.len();
    Ok(format!("{status} {cache} {bytes} bytes"))
}

/// The whole pipeline for one request (client or warming). Never fails: every answer, the
/// edge's own errors included, goes through [`finish::finish`].
async fn handle(req: Request, env: Env, bg: Background) -> Response {
    let inc = match Incoming::new(&req, env, bg) {
        Ok(inc) => inc,
        Err(e) => {
            observe::error(None, format_args!("unreadable request: {e}"));
            return bare_error(e.status(), "bad request");
        }
    };
    let config = load_config(&inc.env);
    // Logs and metrics go on with defaults when the config is broken (its 500 is logged).
    let settings = config.as_deref().ok();
    let log_sample = settings.map_or(1.0, |c| c.log_sample);
    let routed = match &config {
        Ok(config) => dispatch(req, &inc, config).await,
        Err(e) => Routed::edge(Err(EdgeError::Config(e.clone()).into())),
    };
    let edge_rule;
    let rule = match routed.rule {
        Some(r) => r,
        None => {
            edge_rule = Rule::edge_rule();
            &edge_rule
        }
    };
    let out = match routed.result {
        Ok(out) => out,
        Err(AppError(e)) => error::response(&inc, &e).into(),
    };
    let status = match &out {
        Outgoing::Edge(res) => res.status,
        Outgoing::Upgrade(_) => 101,
    };
    access::settle(&inc, routed.reservation, status);
    let res = match out {
        Outgoing::Edge(res) => last_step(res, &inc, rule, &routed.extra, routed.limited, settings),
        Outgoing::Upgrade(res) => {
            // A WebSocket handshake passes untouched; it is still counted.
            let record = crate::metrics::aggregate::RequestRecord { rule: &rule.name, cache: "none", status: 101, seconds: (context::now_ms() - inc.started) / 1000.0, bytes_in: None, bytes_out: Some(0), limited: false };
            observe::request(&inc, &record, log_sample, rule.log_query);
            Ok(res)
        }
    };
    res.unwrap_or_else(|e| {
        observe::error(Some(&inc.request_id), format_args!("{} {}: building the response failed: {e}", inc.method, inc.path));
        bare_error(500, "internal error")
    })
}

/// The answer when even an error response cannot be built (a plain text body; cannot fail).
fn bare_error(status: u16, message: &str) -> Response {
    Response::error(message, status).unwrap_or_else(|_| Response::builder().with_status(500).empty())
}

/// [`finish::finish`] on the `http` headers, the nonce pass when it says so, `Server-Timing`
/// and `X-Request-Id`, the metrics record, then the one conversion to the platform's response.
fn last_step(mut res: EdgeResponse, inc: &Incoming, rule: &Rule, extra: &[(&'static str, String)], limited: bool, settings: Option<&EdgeConfig>) -> Result<Response> {
    let https = inc.url.scheme() == "https";
    let nonce = crate::transform::wants_nonce(rule, res.status, &res.headers).then(|| new_nonce(crate::headers::nonce_length(&res.headers))).flatten();
    let seconds = (context::now_ms() - inc.started) / 1000.0;
    let done = finish::finish(rule, &inc.method, &inc.headers, res.status, &mut res.headers, https, nonce.as_deref(), extra, seconds, limited);
    observe::request(inc, &done.record, settings.map_or(1.0, |c| c.log_sample), rule.log_query);
    if let Some(config) = settings {
        observe::flush_if_due(&inc.env, &inc.bg, &config.metrics);
    }
    if let (true, Some(nonce)) = (done.nonce_body, nonce) {
        let plan = crate::transform::TransformPlan { minify: true, ..Default::default() };
        res.body = response::transformed(res.body, &plan, crate::html::MinifyOptions::nonce_only(nonce), 0, None)?;
    }
    finish::stamp(&mut res.headers, &inc.request_id, &inc.server_timing());
    res.into_platform()
}

/// What dispatch produced: the response (or the error to answer with), the rule it ran under
/// (`None`: the edge's own endpoints, or a failure before a rule was chosen) and the
/// rate-limit headers to add.
struct Routed<'a> {
    result: EdgeResult<Outgoing>,
    rule: Option<&'a Rule>,
    extra: Vec<(&'static str, String)>,
    limited: bool,
    /// Quota reserved under a policy that counts only some statuses.
    reservation: Option<access::Reservation>,
}

impl Routed<'_> {
    fn edge(result: EdgeResult<Outgoing>) -> Self {
        Self { result, rule: None, extra: Vec::new(), limited: false, reservation: None }
    }
}

/// A future polled through a vtable, so that its state machine stays a wasm function of its
/// own. Awaited directly, every route's state machine is inlined into [`handle`]'s (118 KB of
/// wasm in one function), and V8, which compiles each function on its first call, compiled all
/// of it on an isolate's first request, whatever the route.
fn apart<'a, T>(f: impl std::future::Future<Output = T> + 'a) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>> {
    Box::pin(f)
}

/// Carries out the route the core chose.
async fn dispatch<'a>(req: Request, inc: &Incoming, config: &'a std::rc::Rc<crate::config::EdgeConfig>) -> Routed<'a> {
    let env = &inc.env;
    let rule = match route::route(config, &inc.method, &inc.url, &inc.headers) {
        Route::Endpoint(endpoint) => {
            let result = match endpoint {
                Endpoint::Health => apart(admin::health(env, config, inc)).await,
                Endpoint::Purge => apart(purge::handle(req, env, config, inc)).await,
                Endpoint::Admin(page) => apart(admin::page(env, config, inc, page)).await,
            };
            return Routed::edge(result.map(Into::into));
        }
        Route::Refuse { rule, error } => return Routed { result: Err(error.into()), rule: Some(rule), extra: Vec::new(), limited: false, reservation: None },
        Route::Redirect { rule, location } => {
            let mut headers = http::HeaderMap::new();
            let result = http::HeaderValue::from_str(&location).map_err(|_| EdgeError::Client(400, "bad request URL".into()).into()).map(|v| {
                headers.insert(http::header::LOCATION, v);
                EdgeResponse::new(&inc.method, 308, headers, ResponseBody::Empty, false).into()
            });
            return Routed { result, rule: Some(rule), extra: Vec::new(), limited: false, reservation: None };
        }
        Route::Serve { rule, serve } => (rule, serve),
    };
    let (rule, serve) = rule;
    let extra = match apart(access::enforce(env, config, inc, rule)).await {
        Ok(access::Verdict::Respond(res)) => return Routed { result: Ok(res.into()), rule: Some(rule), extra: Vec::new(), limited: true, reservation: None },
        Ok(access::Verdict::Proceed(h, reservation)) => (h, reservation),
        Err(e) => return Routed { result: Err(e), rule: Some(rule), extra: Vec::new(), limited: false, reservation: None },
    };
    let (extra, reservation) = extra;
    let result = match serve {
        Serve::Image { request, shared } => apart(images::handle(config, inc, rule, request, shared)).await,
        Serve::Pass(reason) => apart(flow::pass(req, config, inc, rule, reason)).await,
        Serve::Range => apart(flow::ranged(req, config, inc, rule)).await,
        Serve::Cached => apart(flow::cached(config, inc, rule)).await.map(Into::into),
    };
    Routed { result, rule: Some(rule), extra, limited: false, reservation }
}
