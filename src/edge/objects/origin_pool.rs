//! The `OriginPool` Durable Object (one instance, named `pool`): the breaker states and health
//! checks every isolate shares. It stores; [`crate::pool::shared::apply`] decides, with the
//! same config as the worker's.

use super::{call, NO_BODY};
use crate::edge::context::load_config;
use crate::pool::shared::{self, Event, OriginHealth, Snapshot};
use std::cell::RefCell;
use std::collections::BTreeMap;
use worker::*;

/// Its binding.
pub const BINDING: &str = "ORIGIN_POOL";
const INSTANCE: &str = "pool";

/// Sends results to the shared copy; returns the snapshot it answers with.
pub async fn report(env: &Env, events: &[Event]) -> Result<Snapshot> {
    call(env, BINDING, INSTANCE, "/report", Some(&events)).await
}

/// Reads the shared copy.
pub async fn snapshot(env: &Env) -> Result<Snapshot> {
    call(env, BINDING, INSTANCE, "/snapshot", NO_BODY).await
}

/// The shared breaker states and health checks.
#[cfg_attr(not(feature = "image-worker"), durable_object)]
pub struct OriginPool {
    state: State,
    env: Env,
    origins: RefCell<Option<BTreeMap<String, OriginHealth>>>,
}

#[cfg(not(feature = "image-worker"))]
impl DurableObject for OriginPool {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, origins: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let config = match load_config(&self.env) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("invalid edge configuration: {e}"), 500),
        };
        let storage = self.state.storage();
        if self.origins.borrow().is_none() {
            let stored: Option<BTreeMap<String, OriginHealth>> = storage.get("origins").await?;
            let mut slot = self.origins.borrow_mut();
            if slot.is_none() {
                *slot = Some(stored.unwrap_or_default());
            }
        }
        match req.path().as_str() {
            "/report" => {
                let events: Vec<Event> = req.json().await?;
                let copy = {
                    let mut slot = self.origins.borrow_mut();
                    let origins = slot.get_or_insert_with(BTreeMap::new);
                    shared::apply(origins, events, &config.origins, &config.pool.breaker, Date::now().as_millis());
                    origins.clone()
                };
                storage.put("origins", &copy).await?;
            }
            "/snapshot" => {}
            _ => return Response::error("not found", 404),
        }
        let slot = self.origins.borrow();
        let empty = BTreeMap::new();
        Response::from_json(&shared::snapshot(slot.as_ref().unwrap_or(&empty), &config.origins, Date::now().as_millis()))
    }
}
