//! The origin's metrics: request counts and latency per route, SQLite query timings, exposed
//! as Prometheus text at `/metrics` (names prefixed `origin_`; the worker uses `edge_`).

use super::AppState;
use crate::metrics::{Histogram, PromText};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    queries: BTreeMap<&'static str, Histogram>,
    slow_queries: BTreeMap<&'static str, u64>,
}

/// Metric store of the origin (one mutex; contention is negligible at demo scale).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            *m.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
            m.latency.entry(route.to_owned()).or_default().observe(elapsed.as_secs_f64());
        }
    }

    /// Records one SQLite query's duration, and whether it counted as slow.
    pub fn record_query(&self, name: &'static str, elapsed: Duration, slow: bool) {
        if let Ok(mut m) = self.inner.lock() {
            m.queries.entry(name).or_default().observe(elapsed.as_secs_f64());
            if slow {
                *m.slow_queries.entry(name).or_default() += 1;
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut p = PromText::default();
        let Ok(m) = self.inner.lock() else { return String::new() };
        p.family("origin_http_requests_total", "counter", "HTTP requests served by the origin.");
        for ((method, route, status), n) in &m.requests {
            p.sample("origin_http_requests_total", &[("method", method), ("route", route), ("status", &status.to_string())], *n as f64);
        }
        p.family("origin_http_request_duration_seconds", "histogram", "Time to produce a response.");
        for (route, h) in &m.latency {
            p.histogram("origin_http_request_duration_seconds", &[("route", route)], h);
        }
        p.family("origin_sqlite_query_duration_seconds", "histogram", "SQLite query time.");
        for (query, h) in &m.queries {
            p.histogram("origin_sqlite_query_duration_seconds", &[("query", query)], h);
        }
        p.family("origin_sqlite_slow_queries_total", "counter", "Queries slower than the slow-query threshold.");
        for (query, n) in &m.slow_queries {
            p.sample("origin_sqlite_slow_queries_total", &[("query", query)], *n as f64);
        }
        p.finish()
    }
}

/// Middleware: times every request and records it under its route pattern (`static` for the
/// site fallback, so arbitrary paths cannot blow up label cardinality).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or("static", |p| p.as_str()).to_owned();
    let header = |h: &axum::http::HeaderMap, name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request_id = header(req.headers(), "x-request-id");
    // The edge's traceparent: the trace id joins this line to the edge's log line.
    let trace = header(req.headers(), "traceparent").and_then(|t| crate::trace::parse(&t));
    let path = req.uri().path().to_owned();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    state.metrics.record_request(&method, &route, res.status().as_u16(), elapsed);
    tracing::info!(
        target: "access",
        method,
        path,
        status = res.status().as_u16(),
        ms = elapsed.as_secs_f64() * 1000.0,
        request_id = request_id.as_deref().unwrap_or(""),
        trace_id = trace.as_ref().map_or("", |(t, _, _)| t.as_str()),
        parent_id = trace.as_ref().map_or("", |(_, p, _)| p.as_str()),
    );
    res
}

/// `GET /metrics`.
pub async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4"), ("cache-control", "no-store")], state.metrics.render())
}
