//! The figures the dashboard and the alerts read over a span (one minute, the last hour, one
//! rule). A leaf shared by the aggregate, which computes it, and the alerts, which judge it.

use serde::{Deserialize, Serialize};

/// Figures over a span.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests.
    pub requests: u64,
    /// Responses with status ≥ 500.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: Option<f64>,
    /// Served from cache / cache lookups (bypassed requests are not lookups).
    pub hit_ratio: Option<f64>,
    /// Latency quantiles, seconds.
    pub p50: Option<f64>,
    /// See `p50`.
    pub p95: Option<f64>,
    /// See `p50`.
    pub p99: Option<f64>,
    /// Body bytes sent.
    pub bytes_out: u64,
    /// Bytes saved by minify, brotli and images.
    pub bytes_saved: u64,
    /// Requests refused by the rate limiter.
    pub limited: u64,
}
