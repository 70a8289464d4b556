//! `POST /__edgelayer/purge` with `Authorization: Bearer <secret>`: purge by URL, prefix or tag.
//! Validation and matching live in [`crate::cache::bans`]; this moves the request into KV.

use super::{store, Incoming};
use crate::admin::bearer_token_matches;
use crate::cache::bans::PurgeRequest;
use crate::cache::key::primary_key;
use crate::config::EdgeConfig;
use worker::*;

/// Largest purge request body read.
const MAX_BODY: usize = 64 * 1024;

/// Handles the purge endpoint.
pub async fn handle(mut req: Request, env: &Env, config: &EdgeConfig, inc: &Incoming) -> Result<Response> {
    if req.method() != Method::Post {
        return inc.error(405, "use POST");
    }
    let Ok(token) = env.secret(&config.purge_token_secret).map(|s| s.to_string()) else {
        return inc.error(503, &format!("purge is disabled: set the {} secret", config.purge_token_secret));
    };
    let auth = req.headers().get("authorization")?;
    if !bearer_token_matches(auth.as_deref(), &token) {
        let mut res = inc.error(401, "a valid bearer token is required")?;
        res.headers_mut().set("www-authenticate", "Bearer realm=\"edgelayer\"")?;
        return Ok(res);
    }
    let body = req.bytes().await?;
    if body.len() > MAX_BODY {
        return inc.error(413, "purge request too large");
    }
    let purge: PurgeRequest = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return inc.error(400, &format!("bad purge request: {e}")),
    };
    let counts = serde_json::json!({ "urls": purge.urls.len(), "prefixes": purge.prefixes.len(), "tags": purge.tags.len() });
    let now = super::now_ms() as u64;
    let bans = match purge.into_bans(now) {
        Ok(b) => b,
        Err(e) => return inc.error(400, &e),
    };
    // Exact URLs are also deleted from the Cache API right away (their variant index with them).
    for ban in &bans {
        if let crate::cache::bans::BanTarget::Path(path) = &ban.target {
            let rule = config.rules.match_request(&http::Method::GET, &inc.host, path);
            let key = primary_key(inc.url.scheme(), &inc.host, path, None, &rule.cache_key, &inc.headers);
            if let Err(e) = store::delete(&key).await {
                console_error!("edgelayer: purge delete {key}: {e}");
            }
        }
    }
    store::add_bans(env, &bans).await?;
    store::l1_invalidate(&config.l1, None);
    Response::from_json(&serde_json::json!({ "purged": counts, "at": now }))
}
