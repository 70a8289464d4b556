//! Metrics glue: each isolate sums requests into a [`Slice`] per minute and ships it every
//! `metrics.flush_every` to one of the `EdgeMetrics` shards (picked at random when the isolate
//! starts), which keep the aggregates (totals plus the last hour by minute). Every request is
//! also written to Workers Analytics Engine when `EDGE_ANALYTICS` is bound, and logged as one
//! JSON line (sampled).

use super::context::{now_ms, Background, Incoming};
use super::objects::edge_metrics;
use crate::config::{EdgeConfig, MetricsConfig};
use crate::metrics::aggregate::{FlushClock, RequestRecord, Slice, MINUTE_MS};
use std::cell::RefCell;
use worker::*;

/// Analytics Engine dataset binding (optional).
pub const ANALYTICS_BINDING: &str = "EDGE_ANALYTICS";

#[derive(Default)]
struct Buffer {
    /// Finished minutes not shipped yet, and the current one (last).
    minutes: Vec<(u64, Slice)>,
    clock: FlushClock,
    /// The metrics shard this isolate ships to (random, drawn once).
    shard: Option<u32>,
}

thread_local! {
    static BUFFER: RefCell<Buffer> = RefCell::new(Buffer::default());
}

/// Adds to the isolate's sums for the current minute.
pub fn record(f: impl FnOnce(&mut Slice)) {
    let now = now_ms();
    let minute = now as u64 / MINUTE_MS;
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        b.clock.recorded(now);
        if b.minutes.last().is_none_or(|(m, _)| *m != minute) {
            b.minutes.push((minute, Slice::default()));
        }
        if let Some((_, slice)) = b.minutes.last_mut() {
            f(slice);
        }
    });
}

fn take() -> Vec<(u64, Slice)> {
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        b.clock.flushed(now_ms());
        std::mem::take(&mut b.minutes).into_iter().filter(|(_, s)| !s.is_empty()).collect()
    })
}

fn put_back(batches: Vec<(u64, Slice)>) {
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        for (minute, slice) in batches {
            match b.minutes.iter_mut().find(|(m, _)| *m == minute) {
                Some((_, s)) => s.merge(&slice),
                None => b.minutes.push((minute, slice)),
            }
        }
        b.minutes.sort_by_key(|(m, _)| *m);
    });
}

/// This isolate's shard of `shards`: drawn once, at random, so isolates spread evenly.
fn shard(shards: u32) -> u32 {
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        let drawn = *b.shard.get_or_insert_with(|| {
            let mut bytes = [0u8; 4];
            // Without randomness every isolate would pick shard 0: correct, only less spread.
            getrandom::fill(&mut bytes).map_or(0, |()| u32::from_le_bytes(bytes))
        });
        drawn % shards.max(1)
    })
}

/// Ships the isolate's sums now.
pub async fn flush(env: &Env, shards: u32) -> Result<()> {
    let batches = take();
    if batches.is_empty() {
        return Ok(());
    }
    let result = edge_metrics::ship(env, shard(shards), &batches).await;
    if result.is_err() {
        // Kept for the next flush rather than lost.
        put_back(batches);
    }
    result
}

/// Ships the sums in the background when `metrics.flush_every` has passed ([`FlushClock`]).
pub fn flush_if_due(env: &Env, bg: &Background, settings: &MetricsConfig) {
    let every = settings.flush_every.as_millis() as f64;
    let due = BUFFER.with(|b| {
        let b = b.borrow();
        !b.minutes.is_empty() && b.clock.due(now_ms(), every)
    });
    if due {
        let env = env.clone();
        let shards = settings.shards;
        bg.wait_until(async move {
            if let Err(e) = flush(&env, shards).await {
                error(None, format_args!("shipping metrics failed: {e}"));
            }
        });
    }
}

/// Evaluates the alerts over their window on every shard's figures (the cron, once a
/// minute); the `alerts` object posts the webhook when one starts or ends.
pub async fn announce_alerts(env: &Env, config: &EdgeConfig) -> Result<()> {
    let now = now_ms() as u64;
    let aggregate = edge_metrics::read(env, config.metrics.shards).await?;
    let window = aggregate.recent(now, crate::metrics::alerts::Thresholds::SEED.window_minutes).summary();
    let told = edge_metrics::announce(env, window, now).await?;
    if !told.changes.is_empty() {
        info(format_args!("alerts changed: {} (webhook delivered: {:?})", serde_json::Value::from(told.changes), told.delivered));
    }
    Ok(())
}

/// Logs an error as one JSON line (Workers Logs / Logpush read `console.error` lines), with
/// the request id when it belongs to a request, so it joins that request's line.
pub fn error(request_id: Option<&str>, msg: impl std::fmt::Display) {
    let msg = msg.to_string();
    console_error!("{}", crate::metrics::log::EventLine { ts: now_ms() as u64, level: "error", request_id, msg: &msg }.to_json());
}

/// Logs a notice (cron runs) as one JSON line.
pub fn info(msg: impl std::fmt::Display) {
    let msg = msg.to_string();
    console_log!("{}", crate::metrics::log::EventLine { ts: now_ms() as u64, level: "info", request_id: None, msg: &msg }.to_json());
}

/// Records one finished request: the isolate's sums, its log line (sampled at `log_sample`;
/// `log_query`: the rule lets the query into it), and Analytics Engine when bound.
pub fn request(inc: &Incoming, r: &RequestRecord<'_>, log_sample: f64, log_query: bool) {
    record(|s| s.record(r));
    let timing = inc.timing.borrow();
    if crate::metrics::log::sampled(&inc.request_id, log_sample, r.status) {
        let line = crate::metrics::log::RequestLine {
            ts: inc.started as u64,
            request_id: &inc.request_id,
            trace_id: &inc.trace.trace_id,
            rule: r.rule,
            method: inc.method.as_str(),
            host: &inc.host,
            path: &inc.path,
            query: inc.url.query().filter(|_| log_query),
            status: r.status,
            cache: r.cache,
            origin: timing.origin.as_deref(),
            ms: (r.seconds * 10_000.0).round() / 10.0,
            origin_ms: timing.origin_ms.map(|m| (m * 10.0).round() / 10.0),
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            limit: if r.limited { "limited" } else { "ok" },
            country: inc.cf.country.as_deref(),
            colo: inc.cf.colo.as_deref(),
        };
        console_log!("{}", line.to_json());
    }
    if let Ok(dataset) = inc.env.analytics_engine(ANALYTICS_BINDING) {
        let point = AnalyticsEngineDataPointBuilder::new()
            .indexes([r.rule])
            .add_blob(r.rule)
            .add_blob(r.cache)
            .add_blob(inc.method.as_str())
            .add_blob(r.status.to_string().as_str())
            .add_blob(inc.request_id.as_str())
            .add_blob(inc.host.as_str())
            .add_blob(inc.cf.country.as_deref().unwrap_or(""))
            .add_blob(inc.cf.colo.as_deref().unwrap_or(""))
            .add_double(r.seconds * 1000.0)
            .add_double(timing.origin_ms.unwrap_or(0.0))
            .add_double(r.bytes_out.unwrap_or(0) as f64)
            .add_double(r.bytes_in.unwrap_or(0) as f64)
            .build();
        if let Err(e) = dataset.write_data_point(&point) {
            console_error!("edgelayer: analytics engine write failed: {e}");
        }
    }
}

