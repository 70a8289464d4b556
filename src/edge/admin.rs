//! The edge's own endpoints behind the admin token: the Prometheus text, the JSON and the
//! dashboard ([`page`]), and the health endpoint ([`health`], minimal without the token).

use super::context::{now_ms, Incoming, KV_BINDING};
use super::error::EdgeResult;
use super::objects::{edge_metrics, origin_pool, rate_limiter};
use super::observe;
use super::response::EdgeResponse;
use crate::admin::admin_token_matches;
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::metrics::alerts::Thresholds;
use crate::pipeline::route::AdminPage;
use crate::pool::shared::Snapshot;
use http::{HeaderMap, HeaderValue};
use worker::Env;

const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("../../assets/dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard/dashboard.css");
/// The dashboard's own CSP: nothing but its script, style and same-origin fetches.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Whether the request carries the admin token (and one is configured).
pub fn is_admin(env: &Env, config: &EdgeConfig, inc: &Incoming) -> bool {
    let Ok(token) = env.secret(&config.admin_token_secret).map(|s| s.to_string()) else { return false };
    admin_token_matches(inc.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()), &token)
}

fn headers(content_type: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h
}

/// Serves an admin page. Every one needs the admin token.
pub async fn page(env: &Env, config: &EdgeConfig, inc: &Incoming, page: AdminPage) -> EdgeResult<EdgeResponse> {
    if !matches!(inc.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }.into());
    }
    if env.secret(&config.admin_token_secret).is_err() {
        return Err(EdgeError::Disabled { what: "the admin endpoints", secret: config.admin_token_secret.clone() }.into());
    }
    if !is_admin(env, config, inc) {
        return Err(EdgeError::Unauthorized { challenge: "Basic realm=\"edgelayer admin\", charset=\"UTF-8\"", message: "the admin token is required (Bearer, or as the Basic auth password)" }.into());
    }
    let (content_type, body) = match page {
        AdminPage::Dashboard => {
            let mut h = headers("text/html; charset=utf-8");
            h.insert(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DASHBOARD_CSP));
            return Ok(EdgeResponse::bytes(200, h, DASHBOARD_HTML));
        }
        AdminPage::DashboardJs => ("text/javascript; charset=utf-8", DASHBOARD_JS.to_owned()),
        AdminPage::DashboardCss => ("text/css; charset=utf-8", DASHBOARD_CSS.to_owned()),
        AdminPage::Metrics | AdminPage::MetricsJson => {
            // This isolate's latest sums first, so what was just served is in the answer.
            if let Err(e) = observe::flush(env, config.metrics.shards).await {
                observe::error(Some(&inc.request_id), format_args!("shipping metrics failed: {e}"));
            }
            let aggregate = edge_metrics::read(env, config.metrics.shards).await.map_err(|e| EdgeError::Upstream(502, format!("metrics unavailable: {e}")))?;
            let pool = origin_pool::snapshot(env).await.ok();
            let now = now_ms() as u64;
            let thresholds = Thresholds::SEED;
            if page == AdminPage::Metrics {
                let gauges = pool.as_ref().map(Snapshot::gauges).unwrap_or_default();
                ("text/plain; version=0.0.4; charset=utf-8", aggregate.prometheus(now, &thresholds, &gauges))
            } else {
                let hour = aggregate.recent(now, crate::metrics::aggregate::HISTORY_MINUTES);
                let body = serde_json::json!({
                    "generated_at": now,
                    "thresholds": thresholds,
                    "alerts": aggregate.alerts(now, &thresholds),
                    "last_hour": hour.summary(),
                    "rules": hour.rule_summaries(),
                    "series": aggregate.series(now),
                    "pool": pool.as_ref().map(Snapshot::to_json),
                });
                ("application/json", body.to_string())
            }
        }
    };
    Ok(EdgeResponse::bytes(200, headers(content_type), body))
}

/// `GET /__edgelayer/health`. Without the admin token: `{"status":"ok"}` once the config
/// parses, and nothing else (no origin URLs, no binding is touched, so it costs nothing to
/// poll). With it: whether KV and the Durable Objects answer (reads only) and the pool's
/// breakers; 503 when one does not.
pub async fn health(env: &Env, config: &EdgeConfig, inc: &Incoming) -> EdgeResult<EdgeResponse> {
    if !matches!(inc.method, http::Method::GET | http::Method::HEAD) {
        return Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }.into());
    }
    if !is_admin(env, config, inc) {
        return Ok(EdgeResponse::bytes(200, headers("application/json"), r#"{"status":"ok"}"#));
    }
    let kv = match env.kv(KV_BINDING) {
        Ok(kv) => match kv.get("edgelayer:health").text().await {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("error: {e}"),
        },
        Err(e) => format!("missing binding: {e}"),
    };
    let durable_object = match rate_limiter::ping(env).await {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let origin_pool = match origin_pool::snapshot(env).await {
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
    Ok(EdgeResponse::bytes(if ok { 200 } else { 503 }, headers("application/json"), body.to_string()))
}
