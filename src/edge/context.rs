//! The request context: the platform request read once ([`Incoming`]), where background work
//! goes ([`Background`]), the times `Server-Timing` reports, the isolate's config, and the two
//! header conversions (platform ↔ `http`) everything else avoids repeating.

use crate::config::error::ConfigError;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::pipeline::finish::ServerTiming;
use crate::proxy;
use crate::trace::TraceContext;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use std::cell::{OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use worker::{Context, Env, Headers, Request, Result, ScheduleContext, Url};

/// KV binding: ban list (purges), rate-limit tiers, allow and deny lists.
pub const KV_BINDING: &str = "EDGE_KV";

thread_local! {
    /// The config, parsed and validated once per isolate.
    static CONFIG: OnceCell<std::result::Result<Rc<EdgeConfig>, ConfigError>> = const { OnceCell::new() };
}

/// The isolate's config (parsed on first use, which is the isolate's start, then shared; an
/// error is kept and reported on every request, naming the field).
pub fn load_config(env: &Env) -> std::result::Result<Rc<EdgeConfig>, ConfigError> {
    CONFIG.with(|cell| cell.get_or_init(|| read_config(env)).clone())
}

/// Parses and validates the config. Kept out of [`load_config`], which every request calls:
/// inlined there, serde's code made that function 49 KB, compiled by V8 on a cold isolate's
/// first request although only the cached path runs (2-3 ms).
#[inline(never)]
fn read_config(env: &Env) -> std::result::Result<Rc<EdgeConfig>, ConfigError> {
    let origin = env.var("ORIGIN_URL").ok().map(|v| v.to_string());
    let table = env.object_var::<serde_json::Value>("EDGELAYER").ok();
    EdgeConfig::from_vars(origin.as_deref(), table).map(Rc::new)
}

/// Where background work goes: `waitUntil` of the fetch or scheduled event being handled.
#[derive(Clone)]
pub struct Background(Rc<dyn Fn(BackgroundTask)>);

type BackgroundTask = Pin<Box<dyn Future<Output = ()>>>;

impl Background {
    /// Background work of a fetch event.
    #[cfg_attr(feature = "image-worker", allow(dead_code))] // the image worker has its own entry
    pub fn of_fetch(ctx: Context) -> Self {
        let ctx = Rc::new(ctx);
        Self(Rc::new(move |f| ctx.wait_until(f)))
    }

    /// Background work of a scheduled event.
    pub fn of_schedule(ctx: ScheduleContext) -> Self {
        Self(Rc::new(move |f| ctx.wait_until(f)))
    }

    /// Runs `f` after the response, within the event's lifetime.
    pub fn wait_until(&self, f: impl Future<Output = ()> + 'static) {
        (self.0)(Box::pin(f))
    }
}

/// Milliseconds on the platform clock (it advances only across I/O inside Workers).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

// Headers cross the wasm boundary as one string each way (`name NUL value NUL ...`; a NUL
// cannot occur in a field): one crossing instead of three per field, which is what a request
// spent most of its time on (a V8 profile under wrk: string decoding, `append`, wasm-to-js).
#[wasm_bindgen::prelude::wasm_bindgen(inline_js = r#"
export function edgelayer_headers_from_flat(flat) {
  const h = new Headers();
  const p = flat.split('\0');
  for (let i = 0; i + 1 < p.length; i += 2) h.append(p[i], p[i + 1]);
  return h;
}
export function edgelayer_headers_to_flat(h) {
  let s = '';
  for (const [k, v] of h) s += k + '\0' + v + '\0';
  return s;
}
"#)]
extern "C" {
    #[wasm_bindgen::prelude::wasm_bindgen(catch)]
    fn edgelayer_headers_from_flat(flat: &str) -> std::result::Result<web_sys::Headers, wasm_bindgen::JsValue>;
    fn edgelayer_headers_to_flat(headers: &web_sys::Headers) -> String;
}

/// Platform headers to `http` ones (invalid names or values are skipped, never fatal).
pub fn to_header_map(headers: &Headers) -> HeaderMap {
    let flat = edgelayer_headers_to_flat(&headers.0);
    let mut map = HeaderMap::new();
    let mut parts = flat.split('\0');
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            map.append(n, v);
        }
    }
    map
}

/// `http` headers to the platform's (values that are not visible ASCII are skipped: the
/// platform would refuse them).
pub fn to_headers(map: &HeaderMap) -> Result<Headers> {
    let mut flat = String::with_capacity(map.len() * 32);
    for (name, value) in map {
        if let Ok(v) = value.to_str() {
            flat.push_str(name.as_str());
            flat.push('\0');
            flat.push_str(v);
            flat.push('\0');
        }
    }
    edgelayer_headers_from_flat(&flat).map(Headers).map_err(worker::Error::from)
}

/// `n` random bytes as hex (request ids, CSP nonces).
fn random_hex<const N: usize>() -> Option<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// A CSP nonce of `len` base64url characters, at least 128 random bits
/// ([`crate::headers::nonce_of_length`]).
pub fn new_nonce(len: usize) -> Option<String> {
    let mut bytes = [0u8; crate::headers::NONCE_RANDOM_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    Some(crate::headers::nonce_of_length(&bytes, len))
}

/// Times for `Server-Timing` and the metrics.
#[derive(Default)]
pub struct Timing {
    /// Cache lookups, ms.
    pub cache_ms: Option<f64>,
    /// Origin attempts, ms.
    pub origin_ms: Option<f64>,
    /// The origin asked last (for the log line).
    pub origin: Option<String>,
    /// What rewrote the body, and how long it took when it was not streamed.
    pub transform: Option<(&'static str, Option<f64>)>,
}

/// What the pipeline knows about the incoming request, read from the platform once.
pub struct Incoming {
    /// The method as sent (extension methods included).
    pub method: http::Method,
    /// The URL.
    pub url: Url,
    /// The headers (`Accept-Encoding` is the client's own, see [`Incoming::new`]).
    pub headers: HeaderMap,
    /// `url.path()`.
    pub path: String,
    /// `url.host_str()`.
    pub host: String,
    /// The platform's `CF-Connecting-IP`.
    pub client_ip: Option<String>,
    /// `request.cf.country`, `.asn` and `.colo` (placeholders under wrangler dev and Miniflare).
    pub cf: CfInfo,
    /// The W3C trace this request belongs to, and the edge's span in it.
    pub trace: TraceContext,
    /// When the request arrived, ms.
    pub started: f64,
    /// `X-Request-Id`: the client's when it is a sane token, else a new one; sent to the origin.
    pub request_id: String,
    /// The bindings.
    pub env: Env,
    /// Background work.
    pub bg: Background,
    /// Shared with the requests derived from this one (image sources, background refreshes).
    pub timing: Rc<RefCell<Timing>>,
}

impl Incoming {
    /// Reads the platform request once: method as sent, URL, headers, client address and id.
    pub fn new(req: &Request, env: Env, bg: Background) -> std::result::Result<Self, EdgeError> {
        let started = now_ms();
        let url = req.url().map_err(|e| EdgeError::Client(400, format!("bad request URL: {e}")))?;
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
            .or_else(random_hex::<8>)
            .unwrap_or_default();
        // The raw method: worker's `Method` maps what it does not know (PROPFIND, PURGE) to GET.
        let method = http::Method::from_bytes(req.inner().method().as_bytes()).map_err(|_| EdgeError::Client(400, "invalid method".into()))?;
        Ok(Incoming {
            method,
            path: url.path().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            client_ip: headers.get(&proxy::CF_CONNECTING_IP).and_then(|v| v.to_str().ok()).map(str::to_owned),
            cf: CfInfo::of(req),
            trace: TraceContext::continue_or_start(headers.get("traceparent").and_then(|v| v.to_str().ok()), &random_hex::<16>().unwrap_or_else(|| "1".repeat(32)), &random_hex::<8>().unwrap_or_else(|| "1".repeat(16))),
            headers,
            url,
            started,
            request_id,
            env,
            bg,
            timing: Rc::default(),
        })
    }

    /// The same client request aimed at another method and URL (an image's source, a refresh).
    pub fn derive(&self, method: http::Method, url: Url) -> Incoming {
        Incoming {
            method,
            path: url.path().to_owned(),
            url,
            headers: self.headers.clone(),
            host: self.host.clone(),
            client_ip: self.client_ip.clone(),
            cf: self.cf.clone(),
            trace: self.trace.clone(),
            started: self.started,
            request_id: self.request_id.clone(),
            env: self.env.clone(),
            bg: self.bg.clone(),
            timing: self.timing.clone(),
        }
    }

    /// Awaits a cache operation, adding its time to `cache` in `Server-Timing`.
    pub async fn time_cache<T>(&self, f: impl Future<Output = T>) -> T {
        let t0 = now_ms();
        let out = f.await;
        let mut t = self.timing.borrow_mut();
        t.cache_ms = Some(t.cache_ms.unwrap_or(0.0) + now_ms() - t0);
        out
    }

    /// The client's `Accept`.
    pub fn accept(&self) -> Option<&str> {
        self.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
    }

    /// The path and query, as the origin is asked for them.
    pub fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }

    /// `Server-Timing` so far.
    pub fn server_timing(&self) -> ServerTiming {
        let t = self.timing.borrow();
        ServerTiming { total_ms: now_ms() - self.started, cache_ms: t.cache_ms, origin_ms: t.origin_ms, transform: t.transform }
    }
}

/// One field of `request.cf` (placeholders locally; absent for requests a worker makes itself).
fn cf_field(req: &Request, name: &str) -> Option<wasm_bindgen::JsValue> {
    let cf = js_sys::Reflect::get(req.inner(), &"cf".into()).ok()?;
    if cf.is_undefined() || cf.is_null() {
        return None;
    }
    js_sys::Reflect::get(&cf, &name.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// `request.cf.clientAcceptEncoding`, when the platform replaced the client's header.
fn client_accept_encoding(req: &Request) -> Option<String> {
    cf_field(req, "clientAcceptEncoding")?.as_string()
}

/// What Cloudflare says about the client and the data centre (rate-limit keys, logs).
#[derive(Debug, Clone, Default)]
pub struct CfInfo {
    /// The client's country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// The client's network (autonomous system number).
    pub asn: Option<u32>,
    /// The data centre (IATA code).
    pub colo: Option<String>,
}

impl CfInfo {
    fn of(req: &Request) -> Self {
        Self {
            country: cf_field(req, "country").and_then(|v| v.as_string()),
            asn: cf_field(req, "asn").and_then(|v| v.as_f64()).filter(|n| (0.0..=u32::MAX as f64).contains(n)).map(|n| n as u32),
            colo: cf_field(req, "colo").and_then(|v| v.as_string()),
        }
    }
}
