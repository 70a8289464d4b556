//! The Worker glue (wasm32 only): moves requests and bytes between the platform and the pure
//! core. Decisions come from the core: rules ([`crate::rules`]), cache policy
//! ([`crate::cache`]), header policy and error bodies ([`crate::proxy`]).

mod error;
mod images;
mod limit;
mod limiter;
mod observe;
mod pool;
mod purge;
mod store;

use crate::cache::key::primary_key;
use crate::cache::policy::{self, Cacheability};
use crate::cache::status::{CacheOutcome, StatusDetail};
use crate::cache::stored::{self, annotate, served_headers};
use crate::cache::Freshness;
use crate::compress;
use crate::config::{ConfigError, EdgeConfig};
use crate::error::EdgeError;
use error::{AppError, EdgeResult};
use crate::html::MinifyOptions;
use crate::metrics::aggregate::RequestRecord;
use crate::proxy::{self, ClientInfo};
use crate::rules::Rule;
use crate::transform::{self, BodyTransform, TransformPlan};
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use store::{Collapse, Found, L1Entry, Lookup};
use worker::*;

/// The worker's own health endpoint (checks config, KV and the Durable Object).
const HEALTH_PATH: &str = "/__edgelayer/health";
/// The purge endpoint.
const PURGE_PATH: &str = "/__edgelayer/purge";
/// KV binding: ban list (purges), rate-limit tiers, allow and deny lists.
const KV_BINDING: &str = "EDGE_KV";
/// Durable Object binding used for exact counters.
const LIMITER_BINDING: &str = "RATE_LIMITER";

thread_local! {
    /// The config, parsed and validated once per isolate.
    static CONFIG: OnceCell<std::result::Result<Rc<EdgeConfig>, ConfigError>> = const { OnceCell::new() };
}

fn load_config(env: &Env) -> std::result::Result<Rc<EdgeConfig>, ConfigError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            let origin = env.var("ORIGIN_URL").ok().map(|v| v.to_string());
            let table = env.object_var::<serde_json::Value>("EDGELAYER").ok();
            EdgeConfig::from_vars(origin.as_deref(), table).map(Rc::new)
        })
        .clone()
    })
}

/// Where background work goes: `waitUntil` of the fetch or scheduled event being handled.
#[derive(Clone)]
pub(crate) struct Background(Rc<dyn Fn(BackgroundTask)>);

type BackgroundTask = Pin<Box<dyn Future<Output = ()>>>;

impl Background {
    fn of_fetch(ctx: Context) -> Self {
        let ctx = Rc::new(ctx);
        Self(Rc::new(move |f| ctx.wait_until(f)))
    }

    fn of_schedule(ctx: ScheduleContext) -> Self {
        Self(Rc::new(move |f| ctx.wait_until(f)))
    }

    /// Runs `f` after the response, within the event's lifetime.
    pub(crate) fn wait_until(&self, f: impl Future<Output = ()> + 'static) {
        (self.0)(Box::pin(f))
    }
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

/// What the pipeline knows about the incoming request, converted once.
struct Incoming {
    method: http::Method,
    url: Url,
    headers: HeaderMap,
    path: String,
    host: String,
    client_ip: Option<String>,
    started: f64,
    /// `X-Request-Id`: the client's when it is a sane token, else a new one; sent to the origin.
    request_id: String,
    env: Env,
    bg: Background,
    /// Shared with the requests derived from this one (image sources, background refreshes).
    timing: Rc<RefCell<Timing>>,
}

impl Incoming {
    /// The same client request aimed at another method and URL (an image's source, a refresh).
    fn derive(&self, method: http::Method, url: Url) -> Incoming {
        Incoming {
            method,
            path: url.path().to_owned(),
            url,
            headers: self.headers.clone(),
            host: self.host.clone(),
            client_ip: self.client_ip.clone(),
            started: self.started,
            request_id: self.request_id.clone(),
            env: self.env.clone(),
            bg: self.bg.clone(),
            timing: self.timing.clone(),
        }
    }

    /// Awaits a cache operation, adding its time to `cache` in `Server-Timing`.
    async fn time_cache<T>(&self, f: impl Future<Output = T>) -> T {
        let t0 = now_ms();
        let out = f.await;
        let mut t = self.timing.borrow_mut();
        t.cache_ms = Some(t.cache_ms.unwrap_or(0.0) + now_ms() - t0);
        out
    }

    fn accept(&self) -> Option<&str> {
        self.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
    }


    fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// Times for `Server-Timing` and the metrics.
#[derive(Default)]
struct Timing {
    cache_ms: Option<f64>,
    origin_ms: Option<f64>,
    /// What rewrote the body, and how long it took when it was not streamed.
    transform: Option<(&'static str, Option<f64>)>,
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    Ok(handle(req, env, Background::of_fetch(ctx)).await)
}

/// The Cron Trigger: health checks of every origin, then cache warming, then the metrics.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let config = match load_config(&env) {
        Ok(c) => c,
        Err(e) => return console_error!("edgelayer: {e}"),
    };
    match pool::check_all(&env, &config).await {
        Ok(s) => console_log!("edgelayer: health checks: {}", s.to_json()),
        Err(e) => console_error!("edgelayer: health checks could not be recorded: {e}"),
    }
    let bg = Background::of_schedule(ctx);
    for url in &config.pool.warm {
        match warm(url, &env, &bg).await {
            Ok(note) => console_log!("edgelayer: warmed {url}: {note}"),
            Err(e) => console_error!("edgelayer: warming {url} failed: {e}"),
        }
    }
    if let Err(e) = observe::flush(&env).await {
        console_error!("edgelayer: shipping metrics failed: {e}");
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
/// edge's own errors included, goes through [`finish`] and [`stamp`].
async fn handle(req: Request, env: Env, bg: Background) -> Response {
    let inc = match Incoming::new(&req, env, bg) {
        Ok(inc) => inc,
        Err(e) => {
            console_error!("edgelayer: unreadable request: {}", e.0);
            return bare_error(400, "bad request");
        }
    };
    let config = load_config(&inc.env);
    let routed = match &config {
        Ok(config) => route(req, &inc, config).await,
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
    let res = match routed.result {
        Ok(res) => Ok(res),
        Err(AppError(e)) => error::response(&inc, &e),
    };
    let https = inc.url.scheme() == "https";
    match res.and_then(|res| finish(res, &inc, rule, https, &routed.extra, routed.limited)).and_then(|res| stamp(res, &inc)) {
        Ok(res) => res,
        Err(e) => {
            console_error!("edgelayer: {} {} {}: building the response failed: {e}", inc.request_id, inc.method, inc.path);
            bare_error(500, "internal error")
        }
    }
}

/// The answer when even an error response cannot be built (a plain text body; cannot fail).
fn bare_error(status: u16, message: &str) -> Response {
    Response::error(message, status).unwrap_or_else(|_| Response::builder().with_status(500).empty())
}

impl Incoming {
    /// Reads the platform request once: method as sent (extension methods included), URL,
    /// headers, client address and request id.
    fn new(req: &Request, env: Env, bg: Background) -> EdgeResult<Self> {
        let started = now_ms();
        let url = req.url()?;
        let mut headers = to_header_map(req.headers());
        // Cloudflare (and Miniflare) hand workers `Accept-Encoding: br, gzip` whatever the
        // client sent and transcode on the way out; the client's own value is in
        // `cf.clientAcceptEncoding`. Negotiating on it picks the variant the client really gets.
        if let Some(client_ae) = client_accept_encoding(req) {
            match HeaderValue::from_str(&client_ae) {
                Ok(v) if !client_ae.is_empty() => headers.insert(header::ACCEPT_ENCODING, v),
                _ => headers.remove(header::ACCEPT_ENCODING),
            };
        }
        // The client's id when it is a sane token, else Cloudflare's ray id, else a new one.
        let request_id = ["x-request-id", "cf-ray"]
            .iter()
            .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).filter(|id| proxy::valid_request_id(id)))
            .map(str::to_owned)
            .or_else(new_request_id)
            .unwrap_or_default();
        // The raw method: worker's `Method` maps what it does not know (PROPFIND, PURGE) to GET.
        let raw_method = req.inner().method();
        let method = http::Method::from_bytes(raw_method.as_bytes()).map_err(|_| EdgeError::Client(400, "invalid method".into()))?;
        Ok(Incoming {
            method,
            path: url.path().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            client_ip: headers.get(&proxy::CF_CONNECTING_IP).and_then(|v| v.to_str().ok()).map(str::to_owned),
            headers,
            url,
            started,
            request_id,
            env,
            bg,
            timing: Rc::default(),
        })
    }
}

/// `Server-Timing` and `X-Request-Id` on every response (WebSocket handshakes pass untouched).
fn stamp(res: Response, inc: &Incoming) -> Result<Response> {
    if res.status_code() == 101 {
        return Ok(res);
    }
    let mut res = res;
    let t = inc.timing.borrow();
    let timing = proxy::ServerTiming { total_ms: now_ms() - inc.started, cache_ms: t.cache_ms, origin_ms: t.origin_ms, transform: t.transform };
    let headers = res.headers_mut();
    headers.append("server-timing", &timing.header())?;
    headers.set("x-request-id", &inc.request_id)?;
    Ok(res)
}

/// What routing produced: the response (or the error to answer with), the rule it ran under
/// (`None`: the edge's own endpoints, or a failure before a rule was chosen) and the
/// rate-limit headers to add.
struct Routed<'a> {
    result: EdgeResult<Response>,
    rule: Option<&'a Rule>,
    extra: Vec<(&'static str, String)>,
    limited: bool,
}

impl<'a> Routed<'a> {
    fn edge(result: EdgeResult<Response>) -> Self {
        Self { result, rule: None, extra: Vec::new(), limited: false }
    }
}

/// Chooses what the request is (the edge's own endpoints, a redirect, an image, a pass, a
/// range, a cacheable request) and runs it.
async fn route<'a>(req: Request, inc: &Incoming, config: &'a Rc<EdgeConfig>) -> Routed<'a> {
    let env = &inc.env;
    match inc.path.as_str() {
        HEALTH_PATH => return Routed::edge(health(env, config, inc).await),
        PURGE_PATH => return Routed::edge(purge::handle(req, env, config, inc).await),
        _ => {}
    }
    if let Some(res) = observe::admin(env, config, inc).await {
        return Routed::edge(res);
    }
    // Image URLs take the rule of their source path (its TTLs, tags and headers).
    let image = images::ImageRequest::from_url(&inc.path, inc.url.query());
    let rule = match &image {
        Some(i) => config.rules.match_request(&http::Method::GET, &inc.host, &i.source_path),
        None => config.rules.match_request(&inc.method, &inc.host, &inc.path),
    };
    let routed = |result: EdgeResult<Response>, extra: Vec<(&'static str, String)>, limited: bool| Routed { result, rule: Some(rule), extra, limited };
    if let Err(e) = proxy::method_passable(inc.method.as_str()) {
        return routed(Err(e.into()), Vec::new(), false);
    }
    if rule.https_redirect && inc.url.scheme() != "https" {
        return routed(https_redirect(inc), Vec::new(), false);
    }
    let limit_headers = match limit::enforce(env, config, inc, rule).await {
        Ok(limit::Verdict::Respond(res)) => return routed(Ok(res), Vec::new(), true),
        Ok(limit::Verdict::Proceed(h)) => h,
        Err(e) => return routed(Err(e), Vec::new(), false),
    };
    let image = image.or_else(|| {
        let plain_get = matches!(inc.method, http::Method::GET | http::Method::HEAD) && !inc.headers.contains_key(header::RANGE);
        (rule.images_auto && plain_get).then(|| images::ImageRequest::auto(&inc.path, inc.url.query()))
    });
    // Whether the image may come from (and go to) the shared cache.
    let shared = policy::request_cacheability(&http::Method::GET, &inc.headers, rule);
    let result = match image {
        Some(i) if !i.auto || shared.is_ok() => images::handle(env, &inc.bg, config, inc, rule, i, shared).await,
        _ => match policy::request_cacheability(&inc.method, &inc.headers, rule) {
            Err(reason) => pass(req, config, inc, rule, reason.as_str()).await,
            Ok(()) if inc.headers.contains_key(header::RANGE) => ranged(req, env, config, inc, rule).await,
            Ok(()) => cached(env, &inc.bg, config, inc, rule).await,
        },
    };
    routed(result, limit_headers, false)
}

/// 308 to the same URL on https.
fn https_redirect(inc: &Incoming) -> EdgeResult<Response> {
    let mut target = inc.url.clone();
    let _ = target.set_scheme("https");
    let headers = Headers::new();
    headers.set("location", target.as_str())?;
    Ok(Response::empty()?.with_status(308).with_headers(headers))
}

/// Last step for every response leaving the worker (hits and the edge's own answers
/// included): security headers, rate-limit headers and, for rules with CSP nonces, a fresh
/// nonce in the CSP and in every `<script>`/`<style>` of HTML pages. WebSocket handshakes pass
/// untouched. Also where each request is counted (`limited`: the rate limiter answered).
fn finish(res: Response, inc: &Incoming, rule: &Rule, https: bool, extra: &[(&'static str, String)], limited: bool) -> Result<Response> {
    let status = res.status_code();
    let mut headers = to_header_map(res.headers());
    let cache = CacheOutcome::metric_label(headers.get(crate::cache::stored::X_CACHE).and_then(|v| v.to_str().ok()));
    let bytes_out = if inc.method == http::Method::HEAD || matches!(status, 101 | 204 | 304) {
        Some(0)
    } else {
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
    };
    let seconds = (now_ms() - inc.started) / 1000.0;
    let bytes_in = inc.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    observe::request(inc, &RequestRecord { rule: &rule.name, cache, status, seconds, bytes_in, bytes_out, limited });
    observe::flush_if_due(&inc.env, &inc.bg);
    if status == 101 {
        return Ok(res);
    }
    let nonce = transform::wants_nonce(rule, status, &headers).then(new_nonce).flatten();
    let nonced = crate::headers::apply(&rule.headers, &mut headers, https, nonce.as_deref());
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(HeaderName::from_static(k), v);
        }
    }
    let Some(nonce) = nonce.filter(|_| nonced) else {
        return Ok(res.with_headers(to_headers(&headers)?));
    };
    transform::nonced_headers(&mut headers);
    let res = if inc.method == http::Method::HEAD {
        res
    } else {
        let plan = TransformPlan { minify: true, coding: None, vary_encoding: false };
        transformed(res, &plan, MinifyOptions::nonce_only(nonce), 0, None)?
    };
    Ok(res.with_status(status).with_headers(to_headers(&headers)?))
}

/// 64 random bits, hex: a request id when the client sent none.
fn new_request_id() -> Option<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// 128 random bits, hex: a CSP nonce.
fn new_nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `request.cf.clientAcceptEncoding`, when the platform replaced the client's header.
fn client_accept_encoding(req: &Request) -> Option<String> {
    let cf = js_sys::Reflect::get(req.inner(), &"cf".into()).ok()?;
    if cf.is_undefined() || cf.is_null() {
        return None;
    }
    js_sys::Reflect::get(&cf, &"clientAcceptEncoding".into()).ok()?.as_string()
}

/// Sends the request to the origin pool, shaped by the core for `purpose`
/// ([`proxy::upstream_request`]). `body`: the client's request, whose body stream goes
/// upstream as is (nothing buffered) when the shaped request sends one.
async fn fetch_origin(inc: &Incoming, config: &EdgeConfig, rule: &Rule, body: Option<&Request>, purpose: proxy::UpstreamPurpose<'_>) -> EdgeResult<Response> {
    let client = ClientInfo { ip: inc.client_ip.as_deref(), scheme: inc.url.scheme(), host: Some(&inc.host) };
    let client_body = match body {
        Some(_) => proxy::ClientBody::from_headers(&inc.headers, config.pool.buffer_body),
        None => proxy::ClientBody::NONE,
    };
    let up = proxy::upstream_request(&inc.method, &inc.headers, client_body, client, &config.strip_request_headers, &rule.keep_request_headers, &inc.request_id, purpose);
    let platform_headers = to_headers(&up.headers)?;
    let body: Option<wasm_bindgen::JsValue> = match (up.body, body) {
        (proxy::BodyPlan::None, _) | (_, None) => None,
        (proxy::BodyPlan::Streamed, Some(req)) => req.inner().body().map(Into::into),
        (proxy::BodyPlan::Buffered, Some(req)) => {
            let promise = req.inner().array_buffer().map_err(|e| EdgeError::Internal(format!("{e:?}")))?;
            let bytes = wasm_bindgen_futures::JsFuture::from(promise).await.map_err(|_| EdgeError::Client(400, "the request body could not be read".into()))?;
            Some(js_sys::Uint8Array::new(&bytes).into())
        }
    };
    let path_and_query = inc.path_and_query();
    let make = |origin: &crate::config::OriginUrl| -> Result<Request> {
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
    pool::send(inc, config, &up, make).await
}

/// The origin's response headers, hop-by-hop fields (and those `Connection` names) removed,
/// so nothing hop-by-hop is stored, replayed or passed on (RFC 9110 §7.6.1).
fn origin_headers(res: &Response) -> HeaderMap {
    let mut headers = to_header_map(res.headers());
    proxy::strip_hop_by_hop(&mut headers);
    headers
}

/// Builds the client response: status, headers, body (dropped for HEAD).
/// `manual`: the body is already encoded as `Content-Encoding` says; send it as it is.
fn respond(inc: &Incoming, status: u16, headers: HeaderMap, body: ResponseBody, manual: bool) -> EdgeResult<Response> {
    let body = if inc.method == http::Method::HEAD || status == 304 || status == 204 { ResponseBody::Empty } else { body };
    let builder = Response::builder().with_status(status).with_headers(to_headers(&headers)?);
    let builder = if manual { builder.with_encode_body(EncodeBody::Manual) } else { builder };
    Ok(builder.body(body))
}

/// Streams an origin body through the plan's pipeline (minifier, brotli). `meter`: the rule and
/// stage to credit the bytes sent and saved to, once the body has ended.
fn transformed(res: Response, plan: &TransformPlan, options: MinifyOptions, quality: u32, meter: Option<(String, &'static str)>) -> Result<Response> {
    // Bodies come as streams (origin, Cache API) or bytes (L1): stream either.
    let (_, body) = res.into_parts();
    let upstream: futures_util::stream::LocalBoxStream<'static, Result<Vec<u8>>> = match body {
        ResponseBody::Stream(s) => ByteStream::from(s).boxed_local(),
        ResponseBody::Body(bytes) => futures_util::stream::once(async move { Ok(bytes) }).boxed_local(),
        ResponseBody::Empty => futures_util::stream::empty().boxed_local(),
    };
    let pipeline = BodyTransform::new(plan, options, quality);
    // (bytes in, bytes out) so far.
    let counted = (0u64, 0u64);
    let out = futures_util::stream::unfold((upstream, Some(pipeline), counted, meter), |(mut upstream, pipeline, (mut seen, mut sent), meter)| async move {
        let mut pipeline = pipeline?;
        loop {
            match upstream.next().await {
                Some(Ok(chunk)) => {
                    seen += chunk.len() as u64;
                    let bytes = pipeline.push(&chunk);
                    if !bytes.is_empty() {
                        sent += bytes.len() as u64;
                        return Some((Ok::<Vec<u8>, Error>(bytes), (upstream, Some(pipeline), (seen, sent), meter)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (upstream, None, (seen, sent), None))),
                None => {
                    let last = pipeline.finish();
                    if let Some((rule, stage)) = &meter {
                        let total = sent + last.len() as u64;
                        observe::record(|s| {
                            s.record_saved(rule, stage, seen, total);
                            s.record_bytes_out(rule, total);
                        });
                    }
                    return Some((Ok(last), (upstream, None, (seen, sent), None)));
                }
            }
        }
    });
    Response::from_stream(out)
}

/// Plans and applies transforms to an origin response: the new headers go into `headers`; the
/// returned response carries the (possibly rewritten) body; `decide` says whether it will be
/// cached, which picks the brotli quality.
fn transform_origin(inc: &Incoming, config: &EdgeConfig, rule: &Rule, res: Response, status: u16, headers: &mut HeaderMap, decide: impl FnOnce(&HeaderMap) -> bool) -> EdgeResult<Response> {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let plan = transform::plan(rule, &inc.headers, &inc.method, status, headers);
    transform::apply_headers(&plan, headers);
    let cacheable = decide(headers);
    let Some(stage) = plan.stage() else {
        return Ok(res);
    };
    inc.timing.borrow_mut().transform = Some((stage, None));
    Ok(transformed(res, &plan, config.minify.clone(), compress::brotli_quality(cacheable, length), Some((rule.name.clone(), stage)))?)
}

/// Answers from a stored response: 304 when the client's validators match, else the body.
fn serve_stored(inc: &Incoming, rule: &Rule, meta: &crate::cache::CacheMeta, stored: &HeaderMap, body: ResponseBody, outcome: CacheOutcome, detail: StatusDetail<'_>) -> EdgeResult<Response> {
    let now = now_ms() as u64;
    let mut headers = served_headers(stored, meta, rule, now, outcome, &detail);
    let manual = transform::serve_encoding(&inc.headers, &mut headers, rule.csp_nonce);
    if stored::not_modified(&inc.headers, meta.status, &mut headers, now) {
        return respond(inc, 304, headers, ResponseBody::Empty, false);
    }
    respond(inc, meta.status, headers, body, manual)
}

/// Not cacheable: stream both ways; unsafe methods that succeed invalidate what they changed.
async fn pass(req: Request, config: &EdgeConfig, inc: &Incoming, rule: &Rule, reason: &str) -> EdgeResult<Response> {
    let res = fetch_origin(inc, config, rule, Some(&req), proxy::UpstreamPurpose::Pass).await?;
    if res.status_code() == 101 {
        // WebSocket: the platform pairs the sockets; the response must pass through untouched.
        return Ok(res);
    }
    let status = res.status_code();
    let mut headers = origin_headers(&res);
    // `pool::send` let only 200-599 through, so the status converts.
    let code = StatusCode::from_u16(status).map_err(|_| EdgeError::OriginBadStatus(status))?;
    let paths = policy::invalidation_paths(&inc.method, code, &inc.path, &inc.host, &headers);
    if !paths.is_empty() {
        invalidate(config, inc, &paths).await;
    }
    let res = transform_origin(inc, config, rule, res, status, &mut headers, |_| false)?;
    let manual = transform::serve_encoding(&inc.headers, &mut headers, rule.csp_nonce);
    annotate(&mut headers, rule, status, CacheOutcome::Bypass, &StatusDetail { fwd_status: Some(status), detail: Some(reason), ..Default::default() });
    let (_, body) = res.into_parts();
    respond(inc, status, headers, body, manual)
}

/// RFC 9111 §4.4: drop stored responses for `paths` (every key spec of the rule that matches).
async fn invalidate(config: &EdgeConfig, inc: &Incoming, paths: &[String]) {
    for path in paths {
        let rule = config.rules.match_request(&http::Method::GET, &inc.host, path);
        let key = primary_key(inc.url.scheme(), &inc.host, path, None, &rule.cache_key, &inc.headers);
        if let Err(e) = store::delete(&key).await {
            console_error!("edgelayer: invalidating {key} failed: {e}");
        }
    }
    store::l1_invalidate(&config.l1, Some(paths));
}

/// Range requests: a fresh stored copy answers (the platform cuts the range); anything else
/// goes to the origin with the range, and the partial answer is not stored.
async fn ranged(req: Request, env: &Env, config: &EdgeConfig, inc: &Incoming, rule: &Rule) -> EdgeResult<Response> {
    let now = now_ms() as u64;
    let primary = primary_key(inc.url.scheme(), &inc.host, &inc.path, inc.url.query(), &rule.cache_key, &inc.headers);
    let bans = store::bans(env, config.ban_refresh.as_millis() as u64, now).await;
    let range = inc.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // Ranges are cut from the identity copy (byte ranges of a brotli variant mean nothing to
    // a client that asked for the representation), whatever the client accepts.
    let identity = stored::identity_request(&inc.headers);
    if let Ok(Lookup::Found(found)) = inc.time_cache(store::lookup(&primary, &identity, &bans, range)).await {
        if found.meta.freshness(now) == Freshness::Fresh {
            let status = found.response.status_code();
            let meta = found.meta;
            let mut headers = served_headers(&found.headers, &meta, rule, now, CacheOutcome::Hit, &StatusDetail { ttl: Some(meta.ttl_secs(now)), ..Default::default() });
            if headers.contains_key(header::CONTENT_ENCODING) && found.headers.get(header::VARY).is_some_and(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))) {
                // Only an encoded variant was stored: not ours to cut.
                return pass(req, config, inc, rule, "range").await;
            }
            // The platform's cut of the body: its length and range replace the stored ones.
            for name in [header::CONTENT_LENGTH, header::CONTENT_RANGE] {
                match found.response.headers().get(name.as_str())?.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    Some(v) => headers.insert(name, v),
                    None => headers.remove(name),
                };
            }
            let (_, body) = found.response.into_parts();
            let status = if status == 206 { 206 } else { meta.status };
            let manual = headers.contains_key(header::CONTENT_ENCODING);
            return respond(inc, status, headers, body, manual);
        }
    }
    pass(req, config, inc, rule, "range").await
}

/// The cacheable path: L1, then the Cache API, then the origin (collapsed).
async fn cached(env: &Env, ctx: &Background, config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule) -> EdgeResult<Response> {
    let now = now_ms() as u64;
    let primary = primary_key(inc.url.scheme(), &inc.host, &inc.path, inc.url.query(), &rule.cache_key, &inc.headers);
    let bans = store::bans(env, config.ban_refresh.as_millis() as u64, now).await;
    if let Some(e) = store::l1_get(&config.l1, &primary, &inc.headers, now) {
        if !crate::cache::bans::is_banned(&bans, &e.meta) && e.meta.freshness(now) == Freshness::Fresh {
            let detail = StatusDetail { ttl: Some(e.meta.ttl_secs(now)), detail: Some("l1"), ..Default::default() };
            return serve_stored(inc, rule, &e.meta, &e.headers, ResponseBody::Body(e.body.clone()), CacheOutcome::Hit, detail);
        }
    }

    // Hit-for-pass: the key's last answer was uncacheable; skip lookup and collapsing.
    let mut vary_miss = false;
    let mut guard = None;
    if !store::is_hit_for_pass(&primary, now) {
        match inc.time_cache(store::lookup(&primary, &inc.headers, &bans, None)).await {
            Ok(Lookup::Found(found)) => match found.meta.freshness(now) {
                Freshness::Fresh => return serve_hit(inc, config, rule, &primary, found, now).await,
                Freshness::Stale { while_revalidate: true, .. } => {
                    let (meta, headers) = (found.meta.clone(), found.headers.clone());
                    let refresh = refresh_in_background(config.clone(), inc, rule.clone(), primary.clone(), meta.clone(), headers.clone());
                    ctx.wait_until(refresh);
                    let (_, body) = found.response.into_parts();
                    let detail = StatusDetail { ttl: Some(meta.ttl_secs(now)), ..Default::default() };
                    return serve_stored(inc, rule, &meta, &headers, body, CacheOutcome::Updating, detail);
                }
                Freshness::Stale { if_error, .. } => return revalidate(ctx, config, inc, rule, &primary, found, if_error).await,
            },
            Ok(Lookup::Miss { vary_miss: v }) => vary_miss = v,
            Err(e) => console_error!("edgelayer: cache lookup failed: {e}"),
        }
        match store::collapse(&primary).await {
            Collapse::Leader(g) => guard = Some(g),
            Collapse::Followed => {
                if let Ok(Lookup::Found(found)) = inc.time_cache(store::lookup(&primary, &inc.headers, &bans, None)).await {
                    if found.meta.freshness(now_ms() as u64) == Freshness::Fresh {
                        return serve_hit(inc, config, rule, &primary, found, now_ms() as u64).await;
                    }
                }
            }
        }
    }
    let res = fetch_origin(inc, config, rule, None, proxy::UpstreamPurpose::Fill { validators: &[] }).await?;
    fill(ctx, config, inc, rule, &primary, res, CacheOutcome::Miss, vary_miss, guard)
}

/// A fresh hit from L2; small bodies are also kept in L1.
async fn serve_hit(inc: &Incoming, config: &EdgeConfig, rule: &Rule, primary: &str, found: Found, now: u64) -> EdgeResult<Response> {
    let detail = StatusDetail { ttl: Some(found.meta.ttl_secs(now)), ..Default::default() };
    let small = found.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()).is_some_and(|n| config.l1.admits(n));
    let Found { meta, headers, mut response } = found;
    if small {
        let body = response.bytes().await?;
        store::l1_put(&config.l1, primary, &inc.headers, L1Entry { meta: meta.clone(), headers: headers.clone(), body: body.clone() }, now);
        return serve_stored(inc, rule, &meta, &headers, ResponseBody::Body(body), CacheOutcome::Hit, detail);
    }
    let (_, body) = response.into_parts();
    serve_stored(inc, rule, &meta, &headers, body, CacheOutcome::Hit, detail)
}

/// Stores the origin's response when policy allows (in the background, body teed) and answers.
#[allow(clippy::too_many_arguments)]
fn fill(ctx: &Background, config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, primary: &str, res: Response, outcome: CacheOutcome, vary_miss: bool, guard: Option<store::LeaderGuard>) -> EdgeResult<Response> {
    let now = now_ms() as u64;
    let status = res.status_code();
    let mut headers = origin_headers(&res);
    let mut decision = None;
    let mut res = transform_origin(inc, config, rule, res, status, &mut headers, |h| {
        let d = policy::response_cacheability(rule, &inc.path, &inc.headers, status, h, now);
        let store = matches!(d, Cacheability::Store(_));
        decision = Some(d);
        store
    })?;
    let decision = decision.unwrap_or(Cacheability::Skip(policy::NoCacheReason::Status));
    let detail = match &decision {
        Cacheability::Store(meta) => StatusDetail { ttl: Some(meta.ttl_secs(now)), fwd_status: Some(status), stored: true, vary_miss, ..Default::default() },
        Cacheability::Skip(reason) => StatusDetail { fwd_status: Some(status), detail: Some(reason.as_str()), vary_miss, ..Default::default() },
    };
    match &decision {
        Cacheability::Skip(reason) if reason.is_sticky() => store::set_hit_for_pass(primary, Some(now + policy::HIT_FOR_PASS_MS)),
        _ => store::set_hit_for_pass(primary, None),
    }
    if let Cacheability::Store(meta) = decision {
        let store_headers = policy::headers_to_store(&headers);
        let ttl = meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&store_headers));
        let copy = res.cloned()?;
        let job = store_in_background(config.clone(), primary.to_owned(), inc.headers.clone(), meta, store_headers, copy, ttl, guard);
        ctx.wait_until(job);
    }
    annotate(&mut headers, rule, status, outcome, &detail);
    let manual = transform::serve_encoding(&inc.headers, &mut headers, rule.csp_nonce);
    // For HEAD the GET body feeds the cache copy only; `respond` sends none.
    let (_, body) = res.into_parts();
    respond(inc, status, headers, body, manual)
}

#[allow(clippy::too_many_arguments)]
async fn store_in_background(config: Rc<EdgeConfig>, primary: String, request: HeaderMap, meta: crate::cache::CacheMeta, headers: HeaderMap, mut copy: Response, ttl: u64, guard: Option<store::LeaderGuard>) {
    // Read up to the L1 entry size: small bodies (length known or not, e.g. after minify or
    // brotli) are stored from bytes and kept in L1; larger ones continue as a stream.
    let limit = config.l1.entry_limit();
    let result = async {
        if matches!(copy.body(), ResponseBody::Empty) {
            // A 204 (or any empty body) has no stream to read.
            return store::put(&primary, &request, &meta, &headers, ResponseBody::Body(Vec::new()), ttl).await;
        }
        let mut upstream = copy.stream()?;
        let mut buf = Vec::new();
        loop {
            match upstream.next().await {
                Some(chunk) => {
                    buf.extend_from_slice(&chunk?);
                    if buf.len() > limit {
                        let rest = futures_util::stream::once(async move { Ok::<Vec<u8>, Error>(buf) }).chain(upstream);
                        let (_, body) = Response::from_stream(rest)?.into_parts();
                        return store::put(&primary, &request, &meta, &headers, body, ttl).await;
                    }
                }
                None => break,
            }
        }
        store::put(&primary, &request, &meta, &headers, ResponseBody::Body(buf.clone()), ttl).await?;
        if limit > 0 {
            store::l1_put(&config.l1, &primary, &request, L1Entry { meta: meta.clone(), headers: headers.clone(), body: buf }, now_ms() as u64);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        console_error!("edgelayer: cache put for {primary} failed: {e}");
    }
    drop(guard);
}

/// Stale and not servable as is: revalidate with the origin (RFC 9111 §4.3), falling back to
/// the stale copy on origin errors when stale-if-error allows (RFC 5861 §4).
async fn revalidate(ctx: &Background, config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, primary: &str, stale: Found, if_error: bool) -> EdgeResult<Response> {
    let conditional = policy::revalidation_headers(&stale.headers);
    let res = fetch_origin(inc, config, rule, None, proxy::UpstreamPurpose::Fill { validators: &conditional }).await;
    let now = now_ms() as u64;
    let serve_stale = |stale: Found, fwd_status: Option<u16>| {
        let detail = StatusDetail { ttl: Some(stale.meta.ttl_secs(now)), fwd_status, ..Default::default() };
        let (_, body) = stale.response.into_parts();
        serve_stored(inc, rule, &stale.meta, &stale.headers, body, CacheOutcome::Stale, detail)
    };
    match res {
        Err(AppError(e)) if if_error && e.stale_may_answer() => serve_stale(stale, Some(e.status())),
        Err(e) => Err(e),
        Ok(r) if r.status_code() >= 500 && if_error => serve_stale(stale, Some(r.status_code())),
        Ok(r) if r.status_code() == 304 => {
            let merged = policy::merge_304(&stale.headers, &origin_headers(&r));
            let Found { meta: old, mut response, .. } = stale;
            match policy::response_cacheability(rule, &inc.path, &inc.headers, old.status, &merged, now) {
                Cacheability::Store(meta) => {
                    let ttl = meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&merged));
                    let copy = response.cloned()?;
                    let detail = StatusDetail { ttl: Some(meta.ttl_secs(now)), fwd_status: Some(304), stored: true, ..Default::default() };
                    ctx.wait_until(store_in_background(config.clone(), primary.to_owned(), inc.headers.clone(), meta.clone(), merged.clone(), copy, ttl, None));
                    let (_, body) = response.into_parts();
                    serve_stored(inc, rule, &meta, &merged, body, CacheOutcome::Revalidated, detail)
                }
                Cacheability::Skip(reason) => {
                    let detail = StatusDetail { fwd_status: Some(304), detail: Some(reason.as_str()), ..Default::default() };
                    let (_, body) = response.into_parts();
                    serve_stored(inc, rule, &old, &merged, body, CacheOutcome::Revalidated, detail)
                }
            }
        }
        Ok(r) => fill(ctx, config, inc, rule, primary, r, CacheOutcome::Expired, false, None),
    }
}

/// stale-while-revalidate: refresh the entry after the stale copy was served. Only one refresh
/// per key runs in an isolate at a time.
fn refresh_in_background(config: Rc<EdgeConfig>, inc: &Incoming, rule: Rule, primary: String, stale: crate::cache::CacheMeta, stale_headers: HeaderMap) -> impl std::future::Future<Output = ()> + 'static {
    let inc = inc.derive(http::Method::GET, inc.url.clone());
    async move {
        let Some(guard) = store::try_lead(&primary) else {
            return;
        };
        let conditional = policy::revalidation_headers(&stale_headers);
        let now = now_ms() as u64;
        match fetch_origin(&inc, &config, &rule, None, proxy::UpstreamPurpose::Fill { validators: &conditional }).await {
            Ok(r) if r.status_code() == 304 => {
                let merged = policy::merge_304(&stale_headers, &origin_headers(&r));
                if let Cacheability::Store(meta) = policy::response_cacheability(&rule, &inc.path, &inc.headers, stale.status, &merged, now) {
                    // Re-read the stored body to store it again under the new freshness.
                    if let Ok(Lookup::Found(found)) = store::lookup(&primary, &inc.headers, &[], None).await {
                        let ttl = meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&merged));
                        store_in_background(config.clone(), primary.clone(), inc.headers.clone(), meta, merged, found.response, ttl, Some(guard)).await;
                    }
                }
            }
            Ok(r) if r.status_code() < 500 => {
                let status = r.status_code();
                let mut headers = origin_headers(&r);
                let decide = |h: &HeaderMap| matches!(policy::response_cacheability(&rule, &inc.path, &inc.headers, status, h, now), Cacheability::Store(_));
                let Ok(body) = transform_origin(&inc, &config, &rule, r, status, &mut headers, decide) else {
                    return;
                };
                if let Cacheability::Store(meta) = policy::response_cacheability(&rule, &inc.path, &inc.headers, status, &headers, now) {
                    let store_headers = policy::headers_to_store(&headers);
                    let ttl = meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&store_headers));
                    store_in_background(config.clone(), primary.clone(), inc.headers.clone(), meta, store_headers, body, ttl, Some(guard)).await;
                }
            }
            Ok(r) => console_error!("edgelayer: {} background refresh of {primary} got {}", inc.request_id, r.status_code()),
            Err(AppError(e)) => console_error!("edgelayer: {} background refresh of {primary} failed: {e}", inc.request_id),
        }
    }
}

/// `GET /__edgelayer/health`. Without the admin token: `{"status":"ok"}` once the config
/// parses, and nothing else (no origin URLs, no binding is touched, so it costs nothing to
/// poll). With it: whether KV and the Durable Objects answer (reads only) and the pool's
/// breakers; 503 when one does not.
async fn health(env: &Env, config: &EdgeConfig, inc: &Incoming) -> EdgeResult<Response> {
    if !matches!(inc.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }.into());
    }
    let headers = Headers::new();
    headers.set("cache-control", "no-store")?;
    headers.set("content-type", "application/json")?;
    if !observe::is_admin(env, config, inc) {
        return Ok(Response::ok(r#"{"status":"ok"}"#)?.with_headers(headers));
    }
    let kv = match env.kv(KV_BINDING) {
        Ok(kv) => match kv.get("edgelayer:health").text().await {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("error: {e}"),
        },
        Err(e) => format!("missing binding: {e}"),
    };
    let durable_object = match limiter::ping(env, LIMITER_BINDING).await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let origin_pool = match pool::snapshot(env).await {
        Ok(s) => s.to_json(),
        Err(e) => serde_json::json!(format!("error: {e}")),
    };
    let ok = kv == "ok" && durable_object == "ok" && origin_pool.is_array();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "origins": origin_pool,
        "rules": config.rules.rules().len(),
        "kv": kv,
        "durable_object": durable_object,
    });
    Ok(Response::ok(body.to_string())?.with_status(if ok { 200 } else { 503 }).with_headers(headers))
}
