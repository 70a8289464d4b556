//! The Worker glue (wasm32 only): moves requests and bytes between the platform and the pure
//! core. No decisions live here: header policy, error bodies and timing text come from
//! [`crate::proxy`], the config from [`crate::config`].

mod limiter;

use crate::config::{ConfigError, EdgeConfig};
use crate::proxy::{self, ClientInfo};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::cell::OnceCell;
use worker::*;

/// The path of the worker's own health endpoint (checks config, KV and the Durable Object).
const HEALTH_PATH: &str = "/__edgelayer/health";
/// KV binding shared by later features (rate-limit tiers, allow/deny lists, tag index).
const KV_BINDING: &str = "EDGE_KV";
/// Durable Object binding used for exact counters.
const LIMITER_BINDING: &str = "RATE_LIMITER";

thread_local! {
    /// The config, parsed and validated once per isolate.
    static CONFIG: OnceCell<std::result::Result<EdgeConfig, ConfigError>> = const { OnceCell::new() };
}

fn load_config(env: &Env) -> std::result::Result<EdgeConfig, ConfigError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            let origin = env.var("ORIGIN_URL").ok().map(|v| v.to_string());
            let table = env.object_var::<serde_json::Value>("EDGELAYER").ok();
            EdgeConfig::from_vars(origin.as_deref(), table)
        })
        .clone()
    })
}

/// Milliseconds on the platform clock (it advances only across I/O inside Workers).
fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Platform headers to `http` ones (invalid names or values are skipped, never fatal).
fn to_header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.entries() {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            map.append(n, v);
        }
    }
    map
}

fn to_headers(map: &HeaderMap) -> Result<Headers> {
    let headers = Headers::new();
    for (name, value) in map {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v)?;
        }
    }
    Ok(headers)
}

/// A short error response in the client's preferred form.
fn error_response(req: &Request, status: u16, message: &str) -> Result<Response> {
    let accept = req.headers().get("accept").ok().flatten();
    let (content_type, body) = proxy::error_body(accept.as_deref(), &req.path(), status, message);
    let headers = Headers::new();
    headers.set("content-type", content_type)?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::ok(body)?.with_status(status).with_headers(headers))
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    let started = now_ms();
    let config = match load_config(&env) {
        Ok(c) => c,
        Err(e) => {
            console_error!("edgelayer: {e}");
            return error_response(&req, 500, &format!("invalid edge configuration: {e}"));
        }
    };
    if req.path() == HEALTH_PATH {
        return health(&env, &config).await;
    }
    forward(req, &config, started).await
}

/// Proxies one request to the origin, streaming the body both ways.
async fn forward(req: Request, config: &EdgeConfig, started: f64) -> Result<Response> {
    let url = req.url()?;
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let incoming = to_header_map(req.headers());
    let client_ip = req.headers().get("cf-connecting-ip")?;
    let client = ClientInfo { ip: client_ip.as_deref(), scheme: url.scheme(), host: url.host_str() };
    let upstream_headers = proxy::upstream_headers(&incoming, client);

    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(to_headers(&upstream_headers)?).with_redirect(RequestRedirect::Manual);
    if !matches!(req.method(), Method::Get | Method::Head) {
        // The client's body stream is handed to the upstream request as is: nothing buffered.
        init.with_body(req.inner().body().map(Into::into));
    }
    let upstream = Request::new_with_init(&config.origin.join(&path_and_query), &init)?;

    let origin_started = now_ms();
    let response = match Fetch::Request(upstream).send().await {
        Ok(r) => r,
        Err(e) => {
            console_error!("edgelayer: origin fetch failed: {e}");
            return error_response(&req, 502, "origin unreachable");
        }
    };
    let origin_ms = now_ms() - origin_started;

    if response.status_code() == 101 {
        // WebSocket: the platform pairs the sockets; the response must pass through untouched.
        return Ok(response);
    }
    let status = response.status_code();
    // Fetched headers are immutable: `clone` copies them into a new, mutable set.
    let headers = response.headers().clone();
    let edge_ms = now_ms() - started - origin_ms;
    headers.append("server-timing", &proxy::server_timing(edge_ms, Some(origin_ms)))?;
    let (_, body) = response.into_parts();
    Ok(Response::builder().with_status(status).with_headers(headers).body(body))
}

/// `GET /__edgelayer/health`: the config parsed, and the KV and Durable Object bindings answer.
async fn health(env: &Env, config: &EdgeConfig) -> Result<Response> {
    let kv = match env.kv(KV_BINDING) {
        Ok(kv) => match kv.get("edgelayer:health").text().await {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("error: {e}"),
        },
        Err(e) => format!("missing binding: {e}"),
    };
    let durable_object = match limiter::ping(env, LIMITER_BINDING).await {
        Ok(n) => format!("ok ({n} pings)"),
        Err(e) => format!("error: {e}"),
    };
    let ok = kv == "ok" && durable_object.starts_with("ok");
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "origin": config.origin.as_str(),
        "kv": kv,
        "durable_object": durable_object,
    });
    let headers = Headers::new();
    headers.set("cache-control", "no-store")?;
    Ok(Response::from_json(&body)?.with_status(if ok { 200 } else { 503 }).with_headers(headers))
}
