//! Image glue: `/cdn-cgi/image/<options>/<source>` and rules with `images = "auto"`. Fetches
//! the source from the origin (never elsewhere), hands the bytes to [`crate::image::process`],
//! and caches each variant under (source, canonical options, Accept bucket), collapsing
//! concurrent requests for one variant so each is encoded once.

use super::store::{self, Collapse, L1Entry, Lookup};
use super::error::EdgeResult;
use super::{fetch_origin, now_ms, origin_headers, respond, serve_stored, Background, Incoming};
use crate::error::EdgeError;
use crate::cache::policy::{self, Cacheability, NoCacheReason};
use crate::cache::status::{CacheOutcome, StatusDetail};
use crate::cache::stored::annotate;
use crate::cache::Freshness;
use crate::config::EdgeConfig;
use crate::image::negotiate::accept_bucket;
use crate::image::params;
use crate::image::process::{self, ImageError, Outcome};
use crate::image::sign;
use crate::rules::Rule;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use std::rc::Rc;
use worker::*;

/// Headers of the source that a new encoding does not inherit (the original bytes keep them).
const SOURCE_ONLY: [HeaderName; 6] = [header::CONTENT_LENGTH, header::CONTENT_TYPE, header::CONTENT_ENCODING, header::ETAG, header::LAST_MODIFIED, header::CONTENT_RANGE];

/// The response header that says what was done.
const IMAGE_HEADER: &str = "x-edgelayer-image";

/// An image request, recognised from the URL or the rule.
pub struct ImageRequest {
    /// The options segment (`""` for rule-driven requests).
    pub options: String,
    /// The source path (with a leading `/`).
    pub source_path: String,
    /// The source query, if any (`sig` removed).
    pub source_query: Option<String>,
    /// Came from a rule (`images = "auto"`): failures and non-images pass through untouched.
    pub auto: bool,
}

impl ImageRequest {
    /// `/cdn-cgi/image/...` URLs.
    pub fn from_url(path: &str, query: Option<&str>) -> Option<Self> {
        let (options, source_path) = params::split_path(path)?;
        Some(Self { options: options.to_owned(), source_path, source_query: sign::source_query(query), auto: false })
    }

    /// A request on a path whose rule has `images = "auto"`.
    pub fn auto(path: &str, query: Option<&str>) -> Self {
        Self { options: String::new(), source_path: path.to_owned(), source_query: query.map(str::to_owned), auto: true }
    }
}

/// The request as the origin should see it: the source's URL, conditionals and range dropped.
fn source_incoming(inc: &Incoming, req: &ImageRequest) -> Incoming {
    let mut url = inc.url.clone();
    url.set_path(&req.source_path);
    url.set_query(req.source_query.as_deref());
    inc.derive(http::Method::GET, url)
}

fn with_vary(res: Response) -> EdgeResult<Response> {
    let mut res = res;
    res.headers_mut().append("vary", "Accept")?;
    Ok(res)
}

/// Serves an image request. `rule` is the source path's rule (TTLs, tags, headers);
/// `cacheability`: whether the request may use the shared cache (no credentials, bypass
/// cookies or bypass rule), and if not, why.
pub async fn handle(env: &Env, ctx: &Background, config: &Rc<EdgeConfig>, inc: &Incoming, rule: &Rule, req: ImageRequest, cacheability: std::result::Result<(), NoCacheReason>) -> EdgeResult<Response> {
    let shared = cacheability.is_ok();
    if !matches!(inc.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }.into());
    }
    let params = match params::parse(&req.options, &config.images.limits) {
        Ok(p) => p,
        Err(e) => return Err(EdgeError::Client(400, e.to_string()).into()),
    };
    if let (Some(secret), false) = (&config.images.signing_key_secret, req.auto) {
        let Ok(key) = env.secret(secret) else {
            console_error!("edgelayer: image signing secret {secret} is not set");
            return Err(EdgeError::Internal(format!("image signing secret {secret} is not set")).into());
        };
        if !sign::verify(key.to_string().as_bytes(), &inc.path, inc.url.query()) {
            return Err(EdgeError::with_status(403, "missing or invalid image URL signature (sig)").into());
        }
    }
    let accept = inc.accept().unwrap_or("").to_owned();
    let source = match &req.source_query {
        Some(q) => format!("{}?{q}", req.source_path),
        None => req.source_path.clone(),
    };
    let key = format!("{}://{}{}{}/{}#{}", inc.url.scheme(), inc.host, params::PREFIX, params::canonical(&params), source.trim_start_matches('/'), accept_bucket(&accept));
    // The Cache API ignores fragments: carry the bucket in the path's query instead.
    let key = key.replacen('#', if source.contains('?') { "&edgelayer-accept=" } else { "?edgelayer-accept=" }, 1);
    let now = now_ms() as u64;
    let bans = store::bans(env, config.ban_refresh.as_millis() as u64, now).await;
    if let Some(e) = store::l1_get(&config.l1, &key, &inc.headers, now).filter(|_| shared) {
        if !crate::cache::bans::is_banned(&bans, &e.meta) && e.meta.freshness(now) == Freshness::Fresh {
            let detail = StatusDetail { ttl: Some(e.meta.ttl_secs(now)), detail: Some("l1"), ..Default::default() };
            return with_vary(serve_stored(inc, rule, &e.meta, &e.headers, ResponseBody::Body(e.body.clone()), CacheOutcome::Hit, detail)?);
        }
    }
    let lookup_fresh = || async {
        match inc.time_cache(store::lookup(&key, &inc.headers, &bans, None)).await {
            Ok(Lookup::Found(found)) if found.meta.freshness(now_ms() as u64) == Freshness::Fresh => Some(found),
            _ => None,
        }
    };
    if let Some(found) = if shared { lookup_fresh().await } else { None } {
        let detail = StatusDetail { ttl: Some(found.meta.ttl_secs(now)), ..Default::default() };
        let (_, body) = found.response.into_parts();
        return with_vary(serve_stored(inc, rule, &found.meta, &found.headers, body, CacheOutcome::Hit, detail)?);
    }
    let guard = match if shared { Some(store::collapse(&key).await) } else { None } {
        None => None,
        Some(Collapse::Leader(g)) => Some(g),
        Some(Collapse::Followed) => {
            if let Some(found) = lookup_fresh().await {
                let detail = StatusDetail { ttl: Some(found.meta.ttl_secs(now)), detail: Some("collapsed"), ..Default::default() };
                let (_, body) = found.response.into_parts();
                return with_vary(serve_stored(inc, rule, &found.meta, &found.headers, body, CacheOutcome::Hit, detail)?);
            }
            None
        }
    };

    let src = source_incoming(inc, &req);
    let mut res = fetch_origin(&src, config, rule, None, crate::proxy::UpstreamPurpose::Fill { validators: &[] }).await?;
    let status = res.status_code();
    let mut headers = origin_headers(&res);
    let is_image = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.trim_start().starts_with("image/") && !t.contains("svg"));
    if status != 200 || (req.auto && !is_image) {
        if req.auto {
            // Not ours to change: the origin's answer as the normal proxy path would send it.
            annotate(&mut headers, rule, status, CacheOutcome::Bypass, &StatusDetail { fwd_status: Some(status), detail: Some("not an image"), ..Default::default() });
            let (_, body) = res.into_parts();
            let manual = headers.contains_key(header::CONTENT_ENCODING);
            return respond(inc, status, headers, body, manual);
        }
        return match status {
            404 | 410 => Err(EdgeError::with_status(status, format!("image source {} not found", req.source_path)).into()),
            s if s >= 500 => Err(EdgeError::Upstream(502, format!("image source failed (origin answered {s})")).into()),
            s => Err(EdgeError::Upstream(502, format!("image source not usable (origin answered {s})")).into()),
        };
    }

    // Read the source, bounded: the limit is checked on the declared length, then as bytes come.
    let limit = config.images.settings.max_source_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut source_bytes = Vec::new();
    let declared_too_large = declared.is_some_and(|n| n > limit);
    let mut rest = None;
    if !declared_too_large {
        let mut stream = res.stream()?;
        while let Some(chunk) = stream.next().await {
            source_bytes.extend_from_slice(&chunk?);
            if source_bytes.len() as u64 > limit {
                rest = Some(stream);
                break;
            }
        }
    }
    if declared_too_large || rest.is_some() {
        if req.auto || config.images.onerror_original {
            // Too big to process: the source goes out untouched, streamed (what was read first).
            annotate(&mut headers, rule, status, CacheOutcome::Bypass, &StatusDetail { fwd_status: Some(status), detail: Some("image too large"), ..Default::default() });
            let manual = headers.contains_key(header::CONTENT_ENCODING);
            let body = match rest {
                Some(stream) => {
                    let head = futures_util::stream::once(async move { Ok::<Vec<u8>, Error>(source_bytes) });
                    Response::from_stream(head.chain(stream))?.into_parts().1
                }
                None => res.into_parts().1,
            };
            return respond(inc, status, headers, body, manual);
        }
        let size = declared.unwrap_or(source_bytes.len() as u64);
        return Err(EdgeError::with_status(413, ImageError::SourceTooLarge(size, limit).to_string()).into());
    }

    let started = now_ms();
    let outcome = process::process(&source_bytes, &params, &accept, &config.images.settings);
    let ms = now_ms() - started;
    inc.timing.borrow_mut().transform = Some(("image", Some(ms)));
    let source_type = source_format_name(&headers);
    let note = match &outcome {
        Ok(o) => o.describe(&source_type, source_bytes.len(), ms),
        Err(e) if req.auto || config.images.onerror_original => process::describe_error(e, &source_type, source_bytes.len(), ms),
        Err(e) => return Err(EdgeError::with_status(e.status(), e.to_string()).into()),
    };
    let source_media = || headers.get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let source_len = source_bytes.len() as u64;
    let (body, media, encoded) = match outcome {
        Ok(Outcome::Encoded { bytes, format, .. }) => (bytes, HeaderValue::from_static(format.media_type()), true),
        Ok(Outcome::Original { .. }) | Err(_) => (source_bytes, source_media(), false),
    };

    if encoded {
        super::observe::record(|s| s.record_saved(&rule.name, "image", source_len, body.len() as u64));
        for h in &SOURCE_ONLY {
            headers.remove(h);
        }
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>());
        if let Ok(v) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, v);
        }
    }
    headers.insert(header::CONTENT_TYPE, media);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Ok(v) = HeaderValue::from_str(&note) {
        headers.insert(HeaderName::from_static(IMAGE_HEADER), v);
    }
    let now = now_ms() as u64;
    let decision = match cacheability {
        Ok(()) => policy::response_cacheability(rule, &req.source_path, &inc.headers, 200, &headers, now),
        Err(reason) => Cacheability::Skip(reason),
    };
    let detail = match &decision {
        Cacheability::Store(meta) => StatusDetail { ttl: Some(meta.ttl_secs(now)), fwd_status: Some(status), stored: true, ..Default::default() },
        Cacheability::Skip(reason) => StatusDetail { fwd_status: Some(status), detail: Some(reason.as_str()), ..Default::default() },
    };
    if let Cacheability::Store(meta) = decision {
        let store_headers = policy::headers_to_store(&headers);
        let ttl = meta.storage_ttl_secs(now, policy::keep_after_expiry_secs(&store_headers));
        let (config, request, copy) = (config.clone(), inc.headers.clone(), body.clone());
        ctx.wait_until(async move {
            let l1 = L1Entry { meta: meta.clone(), headers: store_headers.clone(), body: copy.clone() };
            match store::put(&key, &request, &meta, &store_headers, ResponseBody::Body(copy), ttl).await {
                Ok(()) if config.l1.admits(l1.body.len()) => store::l1_put(&config.l1, &key, &request, l1, now_ms() as u64),
                Ok(()) => {}
                Err(e) => console_error!("edgelayer: cache put for {key} failed: {e}"),
            }
            drop(guard);
        });
    }
    annotate(&mut headers, rule, 200, CacheOutcome::Miss, &detail);
    with_vary(respond(inc, 200, headers, ResponseBody::Body(body), false)?)
}

fn source_format_name(headers: &HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map_or("unknown", |t| t.split(';').next().unwrap_or(t).trim().trim_start_matches("image/")).to_owned()
}
