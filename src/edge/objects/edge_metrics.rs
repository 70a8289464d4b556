//! The `EdgeMetrics` Durable Objects. `metrics.shards` instances (`metrics-0`, `metrics-1`,
//! ...) take the isolates' shipments: each isolate picks one at random when it starts, so no
//! single object takes every isolate's calls. Each keeps totals plus the last hour by minute,
//! stored per minute (a shipment writes the totals and the minute it touched, not the whole
//! hour). Readers (the admin pages, the cron) merge every shard ([`read`]). One more instance,
//! `alerts`, remembers which alerts were announced and posts the webhook ([`announce`]).

use super::{call, NO_BODY};
use crate::edge::context::load_config;
use crate::edge::origin::fetch_with_timeout;
use crate::metrics::aggregate::{minute_key, shard_name, Aggregate, Slice};
use crate::metrics::alerts::{self, Announced, Change, Thresholds};
use crate::metrics::summary::Summary;
use js_sys::{Object, Reflect};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::time::Duration;
use worker::*;

/// Its binding.
pub const BINDING: &str = "EDGE_METRICS";
const ALERTS_INSTANCE: &str = "alerts";
const TOTALS_KEY: &str = "totals";
const ANNOUNCED_KEY: &str = "announced";
/// Longest wait for the alert webhook.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Adds per-minute slices to metrics object `shard`.
pub async fn ship(env: &Env, shard: u32, batches: &[(u64, Slice)]) -> Result<()> {
    let _: bool = call(env, BINDING, &shard_name(shard), "/add", Some(&batches)).await?;
    Ok(())
}

/// Every shard's aggregate, merged (one call per shard, concurrently).
pub async fn read(env: &Env, shards: u32) -> Result<Aggregate> {
    let names: Vec<String> = (0..shards).map(shard_name).collect();
    let reads = names.iter().map(|name| call::<Aggregate>(env, BINDING, name, "/aggregate", NO_BODY));
    let mut merged = Aggregate::default();
    for part in futures_util::future::join_all(reads).await {
        merged.merge(&part?);
    }
    Ok(merged)
}

/// What the cron sends the `alerts` instance: the figures over the alert window.
#[derive(Serialize, Deserialize)]
struct Evaluate {
    window: Summary,
    at: u64,
}

/// What the `alerts` instance answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Announcement {
    /// Alerts that started or ended since the last announcement.
    pub changes: Vec<serde_json::Value>,
    /// Whether the webhook took the message (`None`: nothing to send, or no webhook set).
    pub delivered: Option<bool>,
}

/// Evaluates the alerts on `window` (the merged figures of the last minutes) in the `alerts`
/// instance, which posts one message to the webhook when an alert starts or ends.
pub async fn announce(env: &Env, window: Summary, at: u64) -> Result<Announcement> {
    call(env, BINDING, ALERTS_INSTANCE, "/alerts", Some(&Evaluate { window, at })).await
}

/// A metrics shard (or the `alerts` instance): totals and the last hour, persisted per minute
/// so a restart keeps the history.
#[cfg_attr(not(feature = "image-worker"), durable_object)]
pub struct EdgeMetrics {
    state: State,
    env: Env,
    aggregate: RefCell<Option<Aggregate>>,
}

impl EdgeMetrics {
    /// The aggregate, read from storage on first use.
    async fn load(&self) -> Result<()> {
        if self.aggregate.borrow().is_some() {
            return Ok(());
        }
        let storage = self.state.storage();
        let totals: Option<Slice> = stored_json(&storage.get::<String>(TOTALS_KEY).await.ok().flatten());
        let mut aggregate = Aggregate { totals: totals.unwrap_or_default(), ..Default::default() };
        let minutes = storage.list_with_options(ListOptions::new().prefix("m:")).await?;
        for entry in minutes.entries() {
            let Ok(pair) = entry.map(|e| js_sys::Array::from(&e)) else { continue };
            let (key, value) = (pair.get(0).as_string(), pair.get(1).as_string());
            let minute = key.as_deref().and_then(|k| k.strip_prefix("m:")).and_then(|m| m.parse::<u64>().ok());
            if let (Some(minute), Some(slice)) = (minute, stored_json::<Slice>(&value)) {
                aggregate.minutes.insert(minute, slice);
            }
        }
        let mut slot = self.aggregate.borrow_mut();
        if slot.is_none() {
            *slot = Some(aggregate);
        }
        Ok(())
    }

    /// `/add`: merges the batches, then writes the totals and the minutes touched and deletes
    /// the minutes that left the hour.
    async fn add(&self, batches: Vec<(u64, Slice)>) -> Result<()> {
        let now = Date::now().as_millis();
        let (changed, writes) = {
            let mut slot = self.aggregate.borrow_mut();
            let agg = slot.get_or_insert_with(Aggregate::default);
            let changed = agg.add_batches(&batches, now);
            let writes = Object::new();
            Reflect::set(&writes, &TOTALS_KEY.into(), &serde_json::to_string(&agg.totals)?.into())?;
            for m in &changed.touched {
                if let Some(slice) = agg.minutes.get(m) {
                    Reflect::set(&writes, &minute_key(*m).into(), &serde_json::to_string(slice)?.into())?;
                }
            }
            (changed, writes)
        };
        let storage = self.state.storage();
        storage.put_multiple_raw(writes).await?;
        if !changed.dropped.is_empty() {
            storage.delete_multiple(changed.dropped.iter().map(|m| minute_key(*m)).collect()).await?;
        }
        Ok(())
    }

    /// `/alerts`: what changed since the last announcement, sent to the webhook; only a
    /// delivered message is remembered, so a failed one is sent again next time.
    async fn alerts(&self, ev: Evaluate) -> Result<Announcement> {
        let storage = self.state.storage();
        let mut announced: Announced = stored_json(&storage.get::<String>(ANNOUNCED_KEY).await.ok().flatten()).unwrap_or_default();
        let thresholds = Thresholds::SEED;
        let changes: Vec<Change> = alerts::changes(&alerts::evaluate(&ev.window, &thresholds), &announced);
        let config = load_config(&self.env).map_err(|e| Error::RustError(e.to_string()))?;
        let webhook = self.env.secret(&config.metrics.alert_webhook_secret).ok().map(|s| s.to_string()).filter(|s| !s.is_empty());
        let delivered = match (changes.is_empty(), webhook) {
            (false, Some(url)) => {
                let dashboard = config.metrics.dashboard_url.as_ref().map(url::Url::as_str);
                let body = alerts::message(&changes, &ev.window, &thresholds, ev.at, dashboard).to_string();
                let headers = Headers::new();
                headers.set("content-type", "application/json")?;
                let mut init = RequestInit::new();
                init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
                let ok = match fetch_with_timeout(Request::new_with_init(&url, &init)?, WEBHOOK_TIMEOUT).await {
                    Ok(res) => (200..300).contains(&res.status_code()),
                    Err(_) => false,
                };
                if ok {
                    alerts::record_delivered(&mut announced, &changes);
                    storage.put(ANNOUNCED_KEY, serde_json::to_string(&announced)?).await?;
                }
                Some(ok)
            }
            _ => None,
        };
        let changes = changes.iter().map(serde_json::to_value).collect::<std::result::Result<_, _>>()?;
        Ok(Announcement { changes, delivered })
    }
}

/// A JSON string from storage, parsed (`None`: absent or unreadable).
fn stored_json<T: serde::de::DeserializeOwned>(value: &Option<String>) -> Option<T> {
    value.as_deref().and_then(|v| serde_json::from_str(v).ok())
}

#[cfg(not(feature = "image-worker"))]
impl DurableObject for EdgeMetrics {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, aggregate: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/add" => {
                let batches: Vec<(u64, Slice)> = req.json().await?;
                self.load().await?;
                self.add(batches).await?;
                Response::from_json(&true)
            }
            "/aggregate" => {
                self.load().await?;
                let slot = self.aggregate.borrow();
                Response::from_json(slot.as_ref().unwrap_or(&Aggregate::default()))
            }
            "/alerts" => {
                let ev: Evaluate = req.json().await?;
                Response::from_json(&self.alerts(ev).await?)
            }
            _ => Response::error("not found", 404),
        }
    }
}
