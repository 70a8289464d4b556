//! `POST /__edgelayer/purge` with `Authorization: Bearer <secret>`: purge by URL, prefix or tag.
//! Validation and matching live in [`crate::cache::bans`]; this moves the request into KV.

use super::cache_api;
use super::context::{now_ms, Incoming};
use super::error::EdgeResult;
use super::response::EdgeResponse;
use crate::error::EdgeError;
use crate::admin::bearer_token_matches;
use crate::cache::bans::PurgeRequest;
use crate::cache::key::primary_key;
use crate::config::EdgeConfig;
use worker::*;

/// Largest purge request body read.
const MAX_BODY: usize = 64 * 1024;

/// Handles the purge endpoint.
pub async fn handle(mut req: Request, env: &Env, config: &EdgeConfig, inc: &Incoming) -> EdgeResult<EdgeResponse> {
    if inc.method != http::Method::POST {
        return Err(EdgeError::MethodNotAllowed { allow: "POST" }.into());
    }
    let Ok(token) = env.secret(&config.purge_token_secret).map(|s| s.to_string()) else {
        return Err(EdgeError::Disabled { what: "purge", secret: config.purge_token_secret.clone() }.into());
    };
    let auth = inc.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !bearer_token_matches(auth, &token) {
        return Err(EdgeError::Unauthorized { challenge: "Bearer realm=\"edgelayer\"", message: "a valid bearer token is required" }.into());
    }
    // Bounded before reading: a declared length over the limit is refused unread.
    if inc.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok()).is_some_and(|n| n > MAX_BODY) {
        return Err(EdgeError::Client(413, "purge request too large".into()).into());
    }
    let body = req.bytes().await?;
    if body.len() > MAX_BODY {
        return Err(EdgeError::Client(413, "purge request too large".into()).into());
    }
    let purge: PurgeRequest = serde_json::from_slice(&body).map_err(|e| EdgeError::Client(400, format!("bad purge request: {e}")))?;
    let counts = serde_json::json!({ "urls": purge.urls.len(), "prefixes": purge.prefixes.len(), "tags": purge.tags.len() });
    let now = now_ms() as u64;
    let bans = purge.into_bans(now).map_err(|e| EdgeError::Client(400, e))?;
    // Exact URLs are also deleted from the Cache API right away (their variant index with them).
    for ban in &bans {
        if let crate::cache::bans::BanTarget::Path(path) = &ban.target {
            let rule = config.rules.match_request(&http::Method::GET, &inc.host, path);
            let key = primary_key(inc.url.scheme(), &inc.host, path, None, &rule.cache_key, &inc.headers);
            if let Err(e) = cache_api::delete(&key).await {
                super::observe::error(Some(&inc.request_id), format_args!("purge delete {key}: {e}"));
            }
        }
    }
    cache_api::add_bans(env, &bans).await?;
    cache_api::l1_invalidate(&config.l1, None);
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(EdgeResponse::bytes(200, headers, serde_json::json!({ "purged": counts, "at": now }).to_string()))
}
