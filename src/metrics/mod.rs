//! Metric primitives and Prometheus text exposition (format 0.0.4), shared by the origin's
//! `/metrics` and the worker's metrics, so both sides use the same names, units and buckets.
//! Values in, text out: no clocks, no globals.

pub mod aggregate;
pub mod alerts;
pub mod log;
pub mod summary;

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Latency buckets in seconds, shared by the origin and the edge: 1 ms to 10 s, with a bound at
/// 2 s so the p95 alert threshold falls on a bucket edge.
pub const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0];

/// A cumulative histogram with fixed upper bounds (Prometheus semantics). Serialises without
/// its bounds (they are [`LATENCY_BUCKETS`] when read back), so isolates can ship it cheaply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "HistogramWire", into = "HistogramWire")]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A latency histogram as shipped between isolates and stored: counts, sum, count.
#[derive(Serialize, Deserialize)]
struct HistogramWire {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl From<HistogramWire> for Histogram {
    /// Counts that do not fit [`LATENCY_BUCKETS`] (data from another version) start empty
    /// rather than being read against the wrong bounds.
    fn from(w: HistogramWire) -> Self {
        let mut h = Histogram::default();
        if w.counts.len() == h.counts.len() && w.counts.iter().sum::<u64>() == w.count {
            (h.counts, h.sum, h.count) = (w.counts, w.sum, w.count);
        }
        h
    }
}

impl From<Histogram> for HistogramWire {
    fn from(h: Histogram) -> Self {
        Self { counts: h.counts, sum: h.sum, count: h.count }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new(&LATENCY_BUCKETS)
    }
}

impl Histogram {
    /// A histogram with the given ascending upper bounds (an `+Inf` bucket is implied).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    /// Records one observation.
    pub fn observe(&mut self, value: f64) {
        let i = self.bounds.iter().position(|b| value <= *b).unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of all observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Adds another histogram's observations (same bounds; a mismatched one is ignored, since
    /// adding different buckets would be wrong).
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() != self.counts.len() || other.bounds != self.bounds {
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// An estimate of quantile `q` (0..=1) by linear interpolation inside the bucket, as
    /// Prometheus' `histogram_quantile` does. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            if (seen + c) as f64 >= rank && *c > 0 {
                let lower = if i == 0 { 0.0 } else { self.bounds[i - 1] };
                let Some(upper) = self.bounds.get(i).copied() else { return Some(lower) };
                let within = (rank - seen as f64) / *c as f64;
                return Some(lower + (upper - lower) * within);
            }
            seen += c;
        }
        self.bounds.last().copied()
    }
}

/// Builds Prometheus text, one metric family at a time.
#[derive(Debug, Default)]
pub struct PromText {
    out: String,
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], extra: Option<(&str, &str)>) {
    let all: Vec<(&str, &str)> = labels.iter().copied().chain(extra).collect();
    if all.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{k}=\"{v}\"");
    }
    out.push('}');
}

impl PromText {
    /// Starts a metric family with its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of a counter or gauge.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        let mut cumulative = 0;
        for (i, c) in h.counts.iter().enumerate() {
            cumulative += c;
            let le = h.bounds.get(i).map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(("le", &le)));
            let _ = writeln!(self.out, " {cumulative}");
        }
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.sum);
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
        self
    }

    /// The finished exposition text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_inf() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.7, 5.0] {
            h.observe(v);
        }
        let mut p = PromText::default();
        p.family("x_seconds", "histogram", "test").histogram("x_seconds", &[("route", "/a\"b")], &h);
        let text = p.finish();
        assert!(text.contains("x_seconds_bucket{route=\"/a\\\"b\",le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("le=\"1\"} 3\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_count{route=\"/a\\\"b\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_sum{route=\"/a\\\"b\"} 6.25\n"), "{text}");
    }

    #[test]
    fn quantile_interpolates_within_bucket() {
        let mut h = Histogram::new(&[1.0, 2.0]);
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..10 {
            h.observe(1.5);
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 - 1.5).abs() < 1e-9, "{p50}");
        h.observe(100.0);
        assert_eq!(h.quantile(1.0), Some(2.0), "+Inf bucket reports its lower bound");
    }

    #[test]
    fn merges_and_round_trips_through_json() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.observe(0.003);
        b.observe(3.0);
        b.observe(0.003);
        let b: Histogram = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!((a.sum() - 3.006).abs() < 1e-9);
        assert!(a.quantile(0.5).unwrap() < 0.005);
        let mut other = Histogram::new(&[1.0]);
        other.observe(0.5);
        a.merge(&other);
        assert_eq!(a.count(), 3, "different bounds are not added");
    }
}
