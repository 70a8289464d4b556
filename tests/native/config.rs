//! The shipped wrangler.toml (every environment) validates, and bad configs are caught.

use edgelayer::check::check_wrangler_toml;
use edgelayer::config::EdgeConfig;
use edgelayer::rules::CacheMode;
use http::Method;
use std::time::Duration;

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml")).expect("wrangler.toml")
}

#[test]
fn every_environment_validates() {
    let results = check_wrangler_toml(&shipped()).unwrap();
    assert!(results.len() >= 2, "top level and shared_cache");
    for (env, r) in results {
        assert!(r.is_ok(), "{env}: {r:?}");
    }
}

#[test]
fn shipped_rules_follow_the_seed_design() {
    let doc: serde_json::Value = toml::from_str(&shipped()).unwrap();
    let cfg = EdgeConfig::from_vars_json(&doc["vars"]).unwrap();
    let rule = |p: &str| cfg.rules.match_request(&Method::GET, "demo", p);
    assert_eq!(rule("/static/app.e33b2218.css").cache, CacheMode::Override { edge_ttl: Duration::from_secs(31_536_000) });
    assert_eq!(rule("/img/coffee.jpg").cache, CacheMode::Override { edge_ttl: Duration::from_secs(31_536_000) });
    assert_eq!(rule("/api/tasks").cache, CacheMode::Override { edge_ttl: Duration::from_secs(300) });
    let html = rule("/about");
    assert_eq!(html.cache, CacheMode::Override { edge_ttl: Duration::from_secs(300) });
    assert!(html.stale_while_revalidate.is_some());
    assert_eq!(rule("/admin/users").cache, CacheMode::Bypass);
    // Sign-ins: only failures spend the quota, then 15 minutes in the penalty box.
    assert_eq!(cfg.rules.match_request(&Method::POST, "demo", "/login").rate_limit.as_deref(), Some("login"));
    let login = &cfg.rate_limits["login"];
    assert!(login.counted.counts(401) && !login.counted.counts(200));
    assert_eq!((login.block_for_ms, login.response.as_ref().map(|r| r.status)), (900_000, Some(429)));
    let shared: EdgeConfig = EdgeConfig::from_vars_json(&doc["env"]["shared_cache"]["vars"]).unwrap();
    assert_eq!(shared.rules.match_request(&Method::GET, "x", "/static/x").cache, CacheMode::RespectOrigin);
}

#[test]
fn a_bad_rule_is_reported_with_its_name_and_field() {
    let bad = shipped().replace("edge_ttl = \"5m\"\nbrowser_ttl = 0", "edge_ttl = \"5 minutes\"\nbrowser_ttl = 0");
    assert_ne!(bad, shipped(), "the replacement must hit");
    let results = check_wrangler_toml(&bad).unwrap();
    let (_, top) = &results[0];
    let err = top.as_ref().unwrap_err();
    assert!(err.contains("\"api\"") && err.contains("edge_ttl"), "{err}");
    assert!(check_wrangler_toml("not = [toml").is_err());
}
