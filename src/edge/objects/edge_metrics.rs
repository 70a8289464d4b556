//! The `EdgeMetrics` Durable Object (one instance, named `metrics`): the rolling aggregate
//! behind `/__edgelayer/metrics` and the dashboard. Isolates ship per-minute slices
//! ([`ship`]); the admin pages read it ([`read`]).

use super::{call, NO_BODY};
use crate::metrics::aggregate::{Aggregate, Slice};
use std::cell::RefCell;
use worker::*;

/// Its binding.
pub const BINDING: &str = "EDGE_METRICS";
const INSTANCE: &str = "metrics";

/// Adds per-minute slices to the aggregate.
pub async fn ship(env: &Env, batches: &[(u64, Slice)]) -> Result<()> {
    let _: bool = call(env, BINDING, INSTANCE, "/add", Some(&batches)).await?;
    Ok(())
}

/// The aggregate.
pub async fn read(env: &Env) -> Result<Aggregate> {
    call(env, BINDING, INSTANCE, "/aggregate", NO_BODY).await
}

/// The rolling aggregate (one instance, named `metrics`): merges what isolates ship, keeps the
/// totals and the last hour, persisted so a restart keeps the history.
#[durable_object]
pub struct EdgeMetrics {
    state: State,
    aggregate: RefCell<Option<Aggregate>>,
}

impl DurableObject for EdgeMetrics {
    fn new(state: State, _env: Env) -> Self {
        Self { state, aggregate: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        if self.aggregate.borrow().is_none() {
            let stored: Option<Aggregate> = storage.get("aggregate").await.unwrap_or(None);
            let mut slot = self.aggregate.borrow_mut();
            if slot.is_none() {
                *slot = Some(stored.unwrap_or_default());
            }
        }
        match req.path().as_str() {
            "/add" => {
                let batches: Vec<(u64, Slice)> = req.json().await?;
                let now = Date::now().as_millis();
                let copy = {
                    let mut slot = self.aggregate.borrow_mut();
                    let agg = slot.get_or_insert_with(Aggregate::default);
                    for (minute, slice) in &batches {
                        agg.add(*minute, slice, now);
                    }
                    agg.clone()
                };
                storage.put("aggregate", &copy).await?;
                Response::from_json(&true)
            }
            "/aggregate" => {
                let slot = self.aggregate.borrow();
                Response::from_json(slot.as_ref().unwrap_or(&Aggregate::default()))
            }
            _ => Response::error("not found", 404),
        }
    }
}
