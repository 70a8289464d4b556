//! Fan-in of the shared state: calls per second and bytes written per second into each Durable
//! Object, for the design before issue 17 and for today's, at a given number of isolates.
//! A model, not a load test: it multiplies the intervals the code uses (the defaults in
//! `edgelayer::config`) by the isolate count, and measures the bytes of each write by
//! serialising realistic metrics slices with the real types.
//!
//! `cargo bench --bench fanin` (or `npm run bench:fanin`); `ISOLATES=20000 COLOS=330 ...` to
//! change the scenario.

use edgelayer::config::{DEFAULT_FLUSH_EVERY, DEFAULT_METRICS_SHARDS, DEFAULT_SHARE_TTL};
use edgelayer::metrics::aggregate::{Aggregate, OriginResult, RequestRecord, Slice, HISTORY_MINUTES, MINUTE_MS};
use edgelayer::pool::shared::LEASE_MS;

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A minute of traffic as the shipped config sees it: 7 rules, each with hits, misses and a
/// few statuses, latencies across the buckets, 2 origins.
fn busy_slice(seed: u64) -> Slice {
    let mut s = Slice::default();
    let rules = ["html", "api", "images", "hashed-static", "login", "admin", "lab"];
    let outcomes = ["hit", "miss", "expired", "stale", "revalidated", "bypass", "none"];
    let statuses = [200, 304, 404, 429, 500, 503];
    let mut n = seed;
    for rule in rules {
        for (i, cache) in outcomes.iter().enumerate() {
            for (j, status) in statuses.iter().enumerate() {
                n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if (n >> 60) < 6 || (i + j) % 5 == 0 {
                    let seconds = [0.0007, 0.004, 0.02, 0.09, 0.4, 1.5, 3.0][(n >> 33) as usize % 7];
                    s.record(&RequestRecord { rule, cache, status: *status, seconds, bytes_in: Some(100), bytes_out: Some(20_000), limited: *status == 429 });
                }
            }
        }
        s.record_saved(rule, "minify_brotli", 100_000, 20_000);
        s.record_saved(rule, "image", 500_000, 80_000);
    }
    for origin in ["https://origin-1.example", "https://origin-2.example"] {
        for status in [OriginResult::Status(200), OriginResult::Status(304), OriginResult::Status(503), OriginResult::Error, OriginResult::Timeout] {
            s.record_origin(origin, status, 0.05);
        }
    }
    s
}

/// Share of isolates in each data centre: Zipf (s = 1) over `colos`, the busiest first.
fn colo_shares(colos: usize) -> Vec<f64> {
    let h: f64 = (1..=colos).map(|k| 1.0 / k as f64).sum();
    (1..=colos).map(|k| 1.0 / (k as f64 * h)).collect()
}

fn main() {
    let isolates = env("ISOLATES", 10_000.0);
    let colos = env("COLOS", 300.0) as usize;
    // An object call from a far data centre (the lease must outlast it).
    let rtt_s = env("OBJECT_RTT_MS", 150.0) / 1000.0;
    let scrape_s = env("SCRAPE_EVERY_S", 15.0);
    let shards = f64::from(DEFAULT_METRICS_SHARDS);
    let flush_s = DEFAULT_FLUSH_EVERY.as_secs_f64();
    let share_s = DEFAULT_SHARE_TTL.as_secs_f64();
    assert!(rtt_s * 1000.0 < LEASE_MS as f64, "the lease must outlast an object call");

    // Bytes of one write, with the real types.
    let now = 10_000 * MINUTE_MS;
    let mut hour = Aggregate::default();
    for m in 0..HISTORY_MINUTES {
        hour.add(10_000 - m, &busy_slice(m), now);
    }
    let whole = serde_json::to_vec(&hour).map(|v| v.len()).unwrap_or(0) as f64;
    let minute = serde_json::to_vec(&busy_slice(1)).map(|v| v.len()).unwrap_or(0) as f64;
    let totals = serde_json::to_vec(&hour.totals).map(|v| v.len()).unwrap_or(0) as f64;
    let per_add_new = totals + minute;

    let shares = colo_shares(colos);
    let top = shares[0] * isolates;

    println!("fan-in at {isolates} isolates over {colos} data centres (Zipf: the busiest has {top:.0}), object call {:.0} ms", rtt_s * 1000.0);
    println!("every isolate busy: it ships metrics and refreshes breakers at each interval\n");
    println!("| object | design | calls/s into the busiest object | bytes written/s into it | how |");
    println!("|---|---|---:|---:|---|");
    // Before: one EdgeMetrics object, every isolate every 2 s, the whole aggregate rewritten.
    let old_metrics = isolates / 2.0;
    println!("| EdgeMetrics | before | {:.0} | {:.0} MB/s | 1 object; each isolate every 2 s; rewrites the whole hour ({:.0} KB) |", old_metrics, old_metrics * whole / 1e6, whole / 1e3);
    let new_metrics = isolates / (flush_s * shards) + shards / scrape_s / shards;
    println!(
        "| EdgeMetrics | now | {:.1} | {:.2} MB/s | {} shards, each isolate on one, every {} s; writes totals + 1 minute ({:.0} KB); + 1 read per scrape every {} s |",
        new_metrics,
        isolates / (flush_s * shards) * per_add_new / 1e6,
        shards,
        flush_s,
        per_add_new / 1e3,
        scrape_s
    );
    // Before: one OriginPool object; every isolate refreshed every 5 s at most (its stuck
    // guard held refreshes back whatever share_ttl said) and reported every failure.
    let old_pool = isolates / 5.0;
    println!("| OriginPool reads | before | {old_pool:.0} | 0 | 1 object; each isolate every 5 s (share_ttl 1 s, held back by the stuck guard) |");
    // Now: each data centre reads through its Cache API copy: one object read per data centre
    // per share_ttl, plus isolates that find the copy stale in the instant before the lease
    // is written (a local Cache API put, ~5 ms).
    let lease_gap_s = 0.005;
    let races: f64 = shares.iter().map(|s| s * isolates * lease_gap_s / share_s).sum();
    let new_pool = colos as f64 / share_s + races / share_s;
    println!("| OriginPool reads | now | {new_pool:.1} | 0 | 1 object read through each data centre's Cache API copy every {share_s} s (leased while one isolate refreshes it) |");
    // Reports during an incident: one origin stops answering every request.
    let req_per_isolate = env("ORIGIN_REQ_PER_ISOLATE", 5.0);
    let old_incident = isolates * req_per_isolate;
    println!("| OriginPool reports, origin down | before | {old_incident:.0} | {:.0} KB/s | every failed request of every isolate ({req_per_isolate} req/s each) until its local breaker opens |", old_incident * 2_000.0 / 1e3);
    // Now: only news (once a report opened the shared breaker, the data centre's copy shows it
    // and its isolates keep their failures), and under the copy's lease: one reporter per data
    // centre per lease, plus those that find no lease in the instant before it is written.
    let lease_s = LEASE_MS as f64 / 1000.0;
    let onset: f64 = shares.iter().map(|s| 1.0 + s * isolates * lease_gap_s).sum::<f64>() / lease_s;
    println!("| OriginPool reports, origin down | now | {onset:.0} while the shared breaker opens, then ~0 | {:.0} KB/s | only what the data centre's copy does not show yet, one reporter per data centre per {lease_s} s lease |", onset * 2_000.0 / 1e3);
    println!("\nbusiest object, calls/s: metrics shard {new_metrics:.1}, pool reads {new_pool:.1}, pool reports during an incident {onset:.0} (target: at most ~100)");
}
