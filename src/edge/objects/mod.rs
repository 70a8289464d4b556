//! The three Durable Objects, each thin (it keeps state; the core decides), and the one way the
//! worker calls them.
//!
//! - [`rate_limiter::RateLimiter`]: one instance per (policy, key): exact GCRA counting.
//! - [`origin_pool::OriginPool`]: one instance: the breakers and health checks all isolates
//!   share.
//! - [`edge_metrics::EdgeMetrics`]: one instance: the rolling metrics aggregate.

pub mod edge_metrics;
pub mod origin_pool;
pub mod rate_limiter;

use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Env, Error, Method, Request, RequestInit, Result};

/// Calls `path` on the object named `instance` of `binding`: a POST with `body` as JSON, or a
/// GET without one; the answer must be a 200 with a JSON body.
pub async fn call<T: DeserializeOwned>(env: &Env, binding: &str, instance: &str, path: &str, body: Option<&impl Serialize>) -> Result<T> {
    let stub = env.durable_object(binding)?.get_by_name(instance)?;
    // The URL only carries the path to the object (its host is never resolved).
    let url = format!("https://object{path}");
    let req = match body {
        Some(b) => {
            let mut init = RequestInit::new();
            init.with_method(Method::Post).with_body(Some(serde_json::to_string(b)?.into()));
            Request::new_with_init(&url, &init)?
        }
        None => Request::new(&url, Method::Get)?,
    };
    let mut res = stub.fetch_with_request(req).await?;
    if res.status_code() != 200 {
        return Err(Error::RustError(format!("{binding} object answered {}", res.status_code())));
    }
    res.json().await
}

/// No body, for [`call`]'s GETs.
pub const NO_BODY: Option<&()> = None;
