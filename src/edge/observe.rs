//! Metrics glue: each isolate sums requests into a [`Slice`] per minute and ships it every few
//! seconds to the `EdgeMetrics` Durable Object (one instance), which keeps the aggregate
//! (totals plus the last hour by minute). Every request is also written to Workers Analytics
//! Engine when `EDGE_ANALYTICS` is bound.

use super::context::{now_ms, Background, Incoming};
use super::objects::edge_metrics;
use crate::metrics::aggregate::{RequestRecord, Slice, MINUTE_MS};
use std::cell::RefCell;
use worker::*;

/// Analytics Engine dataset binding (optional).
pub const ANALYTICS_BINDING: &str = "EDGE_ANALYTICS";
/// How often an isolate ships its sums.
const FLUSH_EVERY_MS: f64 = 2_000.0;

#[derive(Default)]
struct Buffer {
    /// Finished minutes not shipped yet, and the current one (last).
    minutes: Vec<(u64, Slice)>,
    last_flush: f64,
}

thread_local! {
    static BUFFER: RefCell<Buffer> = RefCell::new(Buffer::default());
}

/// Adds to the isolate's sums for the current minute.
pub fn record(f: impl FnOnce(&mut Slice)) {
    let minute = now_ms() as u64 / MINUTE_MS;
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
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
        b.last_flush = now_ms();
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

/// Ships the isolate's sums now.
pub async fn flush(env: &Env) -> Result<()> {
    let batches = take();
    if batches.is_empty() {
        return Ok(());
    }
    let result = edge_metrics::ship(env, &batches).await;
    if result.is_err() {
        // Kept for the next flush rather than lost.
        put_back(batches);
    }
    result
}

/// Ships the sums in the background when the last flush is a few seconds old.
pub fn flush_if_due(env: &Env, bg: &Background) {
    let due = BUFFER.with(|b| {
        let b = b.borrow();
        !b.minutes.is_empty() && now_ms() - b.last_flush >= FLUSH_EVERY_MS
    });
    if due {
        let env = env.clone();
        bg.wait_until(async move {
            if let Err(e) = flush(&env).await {
                console_error!("edgelayer: shipping metrics failed: {e}");
            }
        });
    }
}

/// Records one finished request: the isolate's sums, and Analytics Engine when bound.
pub fn request(inc: &Incoming, r: &RequestRecord<'_>) {
    record(|s| s.record(r));
    if let Ok(dataset) = inc.env.analytics_engine(ANALYTICS_BINDING) {
        let timing = inc.timing.borrow();
        let point = AnalyticsEngineDataPointBuilder::new()
            .indexes([r.rule])
            .add_blob(r.rule)
            .add_blob(r.cache)
            .add_blob(inc.method.as_str())
            .add_blob(r.status.to_string().as_str())
            .add_blob(inc.request_id.as_str())
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

