//! Images: `/cdn-cgi/image/<options>/<source>` and rules with `images = "auto"`. The variant
//! is looked up like any cached answer ([`super::flow::fresh_or_lead`]); on a miss the source is
//! read from the copy an earlier size kept, or fetched from the origin (never elsewhere), read
//! bounded and kept when its rule allows; then handed to the image pipeline
//! (`crate::image::process`, with the `codecs` feature), and the result planned and stored by the
//! same [`crate::pipeline::fill`] step as a proxied answer.

use super::cache_api::{self, Found, Lookup};
use super::context::{now_ms, Incoming};
use super::error::{AppError, EdgeResult};
use super::flow::{self, Looked};
use super::origin;
use super::response::{self, EdgeResponse, Outgoing};
use crate::cache::key::{image_key, image_source_key};
use crate::cache::policy::NoCacheReason;
use crate::cache::status::{CacheOutcome, StatusDetail};
use crate::cache::stored::annotate;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::image::negotiate::accept_bucket;
use crate::image::outcome::{self, ImageError, ImageSettings, Outcome};
#[cfg(not(feature = "codecs"))]
use crate::image::service::{self, Job, Reply, Task};
use crate::image::request::ImageRequest;
use crate::image::serve::{self, SourceVerdict};
use crate::image::params::{ClientHints, FormatRequest, ImageParams};
use crate::image::{params, sign};
use crate::pipeline::fill::{self, Fill, ForRequest};
use crate::pipeline::lookup::{self, Phase};
use crate::pipeline::upstream::UpstreamPurpose;
use crate::proxy::content_length;
use crate::rules::Rule;
use http::{header, HeaderValue};
use std::rc::Rc;
use worker::ResponseBody;

/// The headers every image answer carries: `Vary` (the format is negotiated, and `width=auto`
/// reads client hints) and what was snapped or ignored in the URL.
fn decorated(out: Outgoing, params: &ImageParams) -> Outgoing {
    match out {
        Outgoing::Edge(mut res) => {
            res.headers.append(header::VARY, serve::vary(params.client_hints));
            if let Some(note) = serve::options_note(&params.notes) {
                res.headers.insert(serve::OPTIONS_HEADER, note);
            }
            Outgoing::Edge(res)
        }
        other => other,
    }
}

/// `onerror=redirect`: a temporary redirect to the unresized source, never stored.
fn redirect_to_source(inc: &Incoming, req: &ImageRequest) -> Outgoing {
    let mut url = inc.url.clone();
    url.set_path(&req.source_path);
    url.set_query(req.source_query.as_deref());
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    EdgeResponse::new(&inc.method, 302, headers, ResponseBody::Empty, false).into()
}

/// Serves an image request under its source path's rule (TTLs, tags, headers). `shared`:
/// whether the variant may come from (and go to) the shared cache, and if not, why.
pub async fn handle(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, req: ImageRequest, shared: Result<(), NoCacheReason>) -> EdgeResult<Outgoing> {
    if !matches!(inc.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }.into());
    }
    let hints = ClientHints::from_headers(&inc.headers);
    let params = params::parse_with_hints(&req.options, &config.images.limits, &hints).map_err(|e| EdgeError::Client(400, e.to_string()))?;
    if let (Some(secret), false) = (&config.images.signing_key_secret, req.auto) {
        let key = inc.env.secret(secret).map_err(|_| EdgeError::Internal(format!("image signing secret {secret} is not set")))?;
        if !sign::verify(key.to_string().as_bytes(), &inc.path, inc.url.query()) {
            return Err(EdgeError::Client(403, "missing or invalid image URL signature (sig)".into()).into());
        }
    }
    match variant(config, inc, rule, &req, &params, shared).await {
        Err(AppError(e)) if serve::redirects_on_error(params.onerror_redirect, e.status()) => Ok(redirect_to_source(inc, &req)),
        other => other.map(|out| decorated(out, &params)),
    }
}

/// The variant `params` asks for: from the cache, or made from the source and stored.
async fn variant(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, req: &ImageRequest, params: &ImageParams, shared: Result<(), NoCacheReason>) -> EdgeResult<Outgoing> {
    let accept = inc.accept().unwrap_or("").to_owned();
    let key = image_key(inc.url.scheme(), &inc.host, &params::canonical(params), &req.source(), accept_bucket(&accept));
    let guard = match shared {
        Ok(()) => match flow::fresh_or_lead(config, inc, rule, &key).await {
            Looked::Fresh(res) => return Ok(res.into()),
            Looked::Miss(guard) => guard,
        },
        Err(_) => None,
    };

    let original = serve::original_on_error(req.auto, config.images.onerror_original);
    // The source: kept from an earlier size when it may be shared, else fetched (and kept).
    let source_key = image_source_key(inc.url.scheme(), &inc.host, &req.source());
    let stored = match shared {
        Ok(()) => stored_source(config, inc, &source_key).await,
        Err(_) => None,
    };
    let (mut headers, source_bytes) = match stored {
        Some(found) => found,
        None => match fetch_source(config, inc, rule, req, shared, source_key).await? {
            Ok(fetched) => fetched,
            Err(answer) => return Ok(answer),
        },
    };

    let started = now_ms();
    if params.format == FormatRequest::Json {
        let json = describe_json(inc, &source_bytes, params, &config.images.settings).await.map_err(|e| EdgeError::with_status(e.status(), e.to_string()))?;
        let note = format!("source={};{} output=json ms={:.0}", serve::source_format_name(&headers), source_bytes.len(), now_ms() - started);
        serve::output_headers(&mut headers, json.as_bytes(), HeaderValue::from_static("application/json"), true, &note);
        return Ok(store_and_answer(config, inc, rule, req, key, headers, json.into_bytes(), shared, guard));
    }
    let (outcome, memory_mib) = transform(inc, &source_bytes, params, &accept, &config.images.settings).await;
    let ms = now_ms() - started;
    inc.timing.borrow_mut().transform = Some(("image", Some(ms)));
    let source_type = serve::source_format_name(&headers);
    let note = match &outcome {
        Ok(o) => o.describe(&source_type, source_bytes.len(), ms),
        Err(e) if original => outcome::describe_error(e, &source_type, source_bytes.len(), ms),
        Err(e) => return Err(EdgeError::with_status(e.status(), e.to_string()).into()),
    };
    let note = format!("{note} mem_mib={memory_mib}");
    let source_media = headers.get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let source_len = source_bytes.len() as u64;
    let (body, media, encoded) = match outcome {
        Ok(Outcome::Encoded { bytes, format, .. }) => (bytes, HeaderValue::from_static(format.media_type()), true),
        Ok(Outcome::Original { .. }) | Err(_) => (source_bytes, source_media, false),
    };
    if encoded {
        super::observe::record(|s| s.record_saved(&rule.name, "image", source_len, body.len() as u64));
    }
    serve::output_headers(&mut headers, &body, media, encoded, &note);
    Ok(store_and_answer(config, inc, rule, req, key, headers, body, shared, guard))
}

/// A fresh, unbanned copy of the source that an earlier variant kept (see [`fetch_source`]).
async fn stored_source(config: &EdgeConfig, inc: &Incoming, key: &str) -> Option<(http::HeaderMap, Vec<u8>)> {
    let now = now_ms() as u64;
    let bans = cache_api::bans(&inc.env, config.ban_refresh.as_millis() as u64, now).await;
    match inc.time_cache(cache_api::lookup(key, &inc.headers, &bans, None)).await {
        Ok(Lookup::Found(found)) if lookup::phase(&found.meta, now) == Phase::Hit => {
            let Found { headers, response, .. } = found;
            let bytes = response::read_bounded(response.into_parts().1, config.images.settings.max_source_bytes).await.ok()?.ok()?;
            Some((headers, bytes))
        }
        _ => None,
    }
}

/// Fetches the source from the origin and reads it, bounded; when the origin's answer may be
/// stored (the source rule's policy, as for any fill), a copy is kept under `key` for the next
/// size, so a page's `srcset` costs the origin one fetch. `Err`: what to answer instead (the
/// origin's error passed through, or a source too large to process, streamed untouched).
async fn fetch_source(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, req: &ImageRequest, shared: Result<(), NoCacheReason>, key: String) -> EdgeResult<Result<(http::HeaderMap, Vec<u8>), Outgoing>> {
    let mut url = inc.url.clone();
    url.set_path(&req.source_path);
    url.set_query(req.source_query.as_deref());
    let src = inc.derive(http::Method::GET, url);
    let res = origin::fetch(&src, config, rule, None, UpstreamPurpose::Fill { validators: &[] }).await?;
    let status = res.status_code();
    let mut headers = origin::headers_of(&res);
    match serve::judge_source(status, &headers, req.auto, &req.source_path) {
        SourceVerdict::Process => {}
        SourceVerdict::Fail(e) => return Err(e.into()),
        SourceVerdict::PassThrough(detail) => {
            annotate(&mut headers, rule, status, CacheOutcome::Bypass, &StatusDetail { fwd_status: Some(status), detail: Some(detail), ..Default::default() });
            let manual = headers.contains_key(header::CONTENT_ENCODING);
            return Ok(Err(EdgeResponse::new(&inc.method, status, headers, res.into_parts().1, manual).into()));
        }
    }

    // Read the source, bounded: the limit is checked on the declared length, then as bytes come.
    let limit = config.images.settings.max_source_bytes;
    let declared = content_length(&headers);
    let source_bytes = match declared.filter(|n| *n > limit) {
        Some(n) => Err((n, res.into_parts().1)),
        None => response::read_bounded(res.into_parts().1, limit).await?.map_err(|rest| (declared.unwrap_or(limit + 1), rest)),
    };
    let source_bytes = match source_bytes {
        Ok(bytes) => bytes,
        Err((size, rest)) => {
            // Too big to process: the source goes out untouched, streamed (what was read first).
            serve::too_large(req.auto, config.images.onerror_original, size, limit)?;
            annotate(&mut headers, rule, status, CacheOutcome::Bypass, &StatusDetail { fwd_status: Some(status), detail: Some("image too large"), ..Default::default() });
            let manual = headers.contains_key(header::CONTENT_ENCODING);
            return Ok(Err(EdgeResponse::new(&inc.method, status, headers, rest, manual).into()));
        }
    };
    if shared.is_ok() {
        let for_req = ForRequest { rule, path: &req.source_path, method: &http::Method::GET, headers: &inc.headers };
        let plan = fill::plan(for_req, status, headers.clone(), now_ms() as u64, Fill::Cache { outcome: CacheOutcome::Miss, vary_miss: false, shared });
        if let Some(store) = plan.store {
            inc.bg.wait_until(cache_api::fill_in_background(inc.request_id.clone(), config.l1, key, inc.headers.clone(), store, ResponseBody::Body(source_bytes.clone()), None));
        }
    }
    Ok(Ok((headers, source_bytes)))
}

/// The image pipeline: here when this worker is built with the codecs, else in the image
/// worker behind the `IMAGES` Service Binding ([`crate::image::service`]). Also returns the
/// wasm memory of the isolate that ran it (see [`wasm_memory_mib`]).
async fn transform(inc: &Incoming, source: &[u8], params: &ImageParams, accept: &str, settings: &ImageSettings) -> (Result<Outcome, ImageError>, usize) {
    #[cfg(feature = "codecs")]
    {
        let _ = inc;
        (crate::image::process::process(source, params, accept, settings), wasm_memory_mib())
    }
    #[cfg(not(feature = "codecs"))]
    match ask_image_worker(inc, Task::Transform { params: params.clone(), accept: accept.to_owned() }, settings, source).await {
        Ok((Reply::Transformed(result), memory)) => (result, memory),
        Ok((Reply::Described(_), memory)) => (Err(ImageError::Service("a description where an image was asked for".into())), memory),
        Err(e) => (Err(e), 0),
    }
}

/// `format=json`, here or in the image worker, like [`transform`].
async fn describe_json(inc: &Incoming, source: &[u8], params: &ImageParams, settings: &ImageSettings) -> Result<String, ImageError> {
    #[cfg(feature = "codecs")]
    {
        let _ = inc;
        crate::image::process::describe_json(source, params, settings)
    }
    #[cfg(not(feature = "codecs"))]
    match ask_image_worker(inc, Task::Describe { params: params.clone() }, settings, source).await? {
        (Reply::Described(result), _) => result,
        (Reply::Transformed(_), _) => Err(ImageError::Service("an image where a description was asked for".into())),
    }
}

/// Sends the source and a job to the image worker; 501 when none is bound. With the reply, the
/// image worker's wasm memory in MiB.
#[cfg(not(feature = "codecs"))]
async fn ask_image_worker(inc: &Incoming, task: Task, settings: &ImageSettings, source: &[u8]) -> Result<(Reply, usize), ImageError> {
    let failed = |e: worker::Error| ImageError::Service(e.to_string());
    let Ok(fetcher) = inc.env.service(IMAGE_WORKER_BINDING) else { return Err(ImageError::NotBuilt) };
    let headers = worker::Headers::new();
    headers.set(service::JOB_HEADER, &service::to_header(&Job { task, settings: settings.clone() })).map_err(failed)?;
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post).with_headers(headers).with_body(Some(js_sys::Uint8Array::from(source).into()));
    let mut res = fetcher.fetch("https://edgelayer-images/", Some(init)).await.map_err(failed)?;
    let Some(reply) = res.headers().get(service::REPLY_HEADER).map_err(failed)? else {
        return Err(ImageError::Service(format!("it answered HTTP {} without a reply", res.status_code())));
    };
    let memory = res.headers().get(service::MEMORY_HEADER).ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
    let body = res.bytes().await.map_err(failed)?;
    Ok((service::read_reply(&reply, body).map_err(ImageError::Service)?, memory))
}

/// The Service Binding to the image worker (`images/wrangler.toml`).
#[cfg(not(feature = "codecs"))]
const IMAGE_WORKER_BINDING: &str = "IMAGES";

/// The isolate's wasm memory in MiB: the high-water mark of every request so far (wasm memory
/// only grows), so in a fresh isolate it is what this request needed. Part of the 128 MB limit.
#[cfg(feature = "codecs")]
pub(super) fn wasm_memory_mib() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) / 16 // 64 KiB pages
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

/// Plans the made variant like any origin answer, stores it in the background when allowed,
/// and answers it.
#[allow(clippy::too_many_arguments)]
fn store_and_answer(config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, req: &ImageRequest, key: String, headers: http::HeaderMap, body: Vec<u8>, shared: Result<(), NoCacheReason>, guard: Option<cache_api::LeaderGuard>) -> Outgoing {
    let for_req = ForRequest { rule, path: &req.source_path, method: &http::Method::GET, headers: &inc.headers };
    let plan = fill::plan(for_req, 200, headers, now_ms() as u64, Fill::Cache { outcome: CacheOutcome::Miss, vary_miss: false, shared });
    if let Some(store) = plan.store.clone() {
        inc.bg.wait_until(cache_api::fill_in_background(inc.request_id.clone(), config.l1, key, inc.headers.clone(), store, ResponseBody::Body(body.clone()), guard));
    }
    EdgeResponse::new(&inc.method, 200, plan.headers, ResponseBody::Body(body), plan.manual).into()
}
