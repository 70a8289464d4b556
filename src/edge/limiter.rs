//! The `RateLimiter` Durable Object: one instance per counter key holds exact counts in its
//! SQLite-backed storage. For now it answers a storage-backed ping used by the health check.

use worker::*;

/// Exact per-key counters (declared in wrangler.toml with its migration).
#[durable_object]
pub struct RateLimiter {
    state: State,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/ping" => {
                let storage = self.state.storage();
                let pings: u64 = storage.get("pings").await?.unwrap_or(0) + 1;
                storage.put("pings", pings).await?;
                Response::from_json(&serde_json::json!({ "pings": pings }))
            }
            _ => Response::error("not found", 404),
        }
    }
}

/// Pings the health-check instance; returns how many pings it has stored.
pub async fn ping(env: &Env, binding: &str) -> Result<u64> {
    let stub = env.durable_object(binding)?.get_by_name("health")?;
    let mut res = stub.fetch_with_str("https://limiter/ping").await?;
    let body: serde_json::Value = res.json().await?;
    body["pings"].as_u64().ok_or_else(|| Error::RustError("bad ping reply".into()))
}
