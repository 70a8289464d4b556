//! `route`: what a request is, decided once from its method, URL and headers: one of the
//! edge's own endpoints, a refusal, a redirect, or something to serve under its rule (an image,
//! a pass to the origin, a range, a cacheable request). The glue matches on [`Route`].

use crate::cache::policy::{request_cacheability, NoCacheReason};
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::image::request::ImageRequest;
use crate::rules::Rule;
use http::{header, HeaderMap, Method};

/// The worker's health endpoint.
pub const HEALTH_PATH: &str = "/__edgelayer/health";
/// The purge endpoint.
pub const PURGE_PATH: &str = "/__edgelayer/purge";

/// The admin pages (all behind the admin token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPage {
    /// Prometheus text.
    Metrics,
    /// JSON for the dashboard and scripts.
    MetricsJson,
    /// The dashboard page.
    Dashboard,
    /// Its script.
    DashboardJs,
    /// Its style sheet.
    DashboardCss,
}

impl AdminPage {
    /// Every page with its path.
    pub const ALL: [(Self, &'static str); 5] = [
        (Self::Metrics, "/__edgelayer/metrics"),
        (Self::MetricsJson, "/__edgelayer/metrics.json"),
        (Self::Dashboard, "/__edgelayer/dashboard"),
        (Self::DashboardJs, "/__edgelayer/dashboard.js"),
        (Self::DashboardCss, "/__edgelayer/dashboard.css"),
    ];

    /// The page at `path`, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, p)| *p == path).map(|(page, _)| *page)
    }
}

/// The edge's own endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/__edgelayer/health`.
    Health,
    /// `/__edgelayer/purge`.
    Purge,
    /// An admin page.
    Admin(AdminPage),
}

/// How a request under a rule is served, once the rate limiter let it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// Resized or re-encoded from its source; `shared`: whether the variant may come from (and
    /// go to) the shared cache, and if not, why.
    Image {
        /// The request.
        request: ImageRequest,
        /// See above.
        shared: Result<(), NoCacheReason>,
    },
    /// Straight to the origin and back, streamed, for this reason.
    Pass(NoCacheReason),
    /// A `Range` request: the stored identity copy cut, or a pass.
    Range,
    /// Through the cache.
    Cached,
}

/// What a request is.
#[derive(Debug, Clone, PartialEq)]
pub enum Route<'a> {
    /// One of the edge's endpoints (no rule).
    Endpoint(Endpoint),
    /// Refused before anything else (a method that must not pass), under `rule`.
    Refuse {
        /// The rule matched.
        rule: &'a Rule,
        /// The answer.
        error: EdgeError,
    },
    /// Plain HTTP on a rule with `https_redirect`: 308 to `location`.
    Redirect {
        /// The rule matched.
        rule: &'a Rule,
        /// The same URL on https.
        location: String,
    },
    /// Served under `rule` (after the rule's rate limit).
    Serve {
        /// The rule matched (an image's is its source path's).
        rule: &'a Rule,
        /// How.
        serve: Serve,
    },
}

/// Methods never passed on: `CONNECT` asks for a tunnel, `TRACE` (and IIS's `TRACK`) echo the
/// request back, credentials included (cross-site tracing).
pub const REFUSED_METHODS: [&str; 3] = ["CONNECT", "TRACE", "TRACK"];

/// Whether a request method may go to the origin. Every other method, unknown extension
/// methods included (`PROPFIND`, `PURGE`), is passed on exactly as sent.
pub fn method_passable(method: &str) -> Result<(), EdgeError> {
    match REFUSED_METHODS.iter().find(|m| m.eq_ignore_ascii_case(method)) {
        Some(_) => Err(EdgeError::MethodNotSupported(method.to_ascii_uppercase())),
        None => Ok(()),
    }
}

/// Routes a request: the edge's endpoints first, then the first matching rule (an image URL
/// takes the rule of its source path: its TTLs, tags and headers).
pub fn route<'a>(config: &'a EdgeConfig, method: &Method, url: &url::Url, headers: &HeaderMap) -> Route<'a> {
    let path = url.path();
    match path {
        HEALTH_PATH => return Route::Endpoint(Endpoint::Health),
        PURGE_PATH => return Route::Endpoint(Endpoint::Purge),
        _ => {}
    }
    if let Some(page) = AdminPage::from_path(path) {
        return Route::Endpoint(Endpoint::Admin(page));
    }
    let host = url.host_str().unwrap_or_default();
    let image = ImageRequest::from_url(path, url.query());
    let rule = match &image {
        Some(i) => config.rules.match_request(&Method::GET, host, &i.source_path),
        None => config.rules.match_request(method, host, path),
    };
    if let Err(error) = method_passable(method.as_str()) {
        return Route::Refuse { rule, error };
    }
    if rule.https_redirect && url.scheme() != "https" {
        let mut target = url.clone();
        let _ = target.set_scheme("https");
        return Route::Redirect { rule, location: target.to_string() };
    }
    let ranged = headers.contains_key(header::RANGE);
    let image = image.or_else(|| {
        let plain_get = matches!(*method, Method::GET | Method::HEAD) && !ranged;
        (rule.images_auto && plain_get).then(|| ImageRequest::auto(path, url.query()))
    });
    // Whether an image may come from (and go to) the shared cache.
    let shared = request_cacheability(&Method::GET, headers, rule);
    let serve = match image {
        Some(request) if !request.auto || shared.is_ok() => Serve::Image { request, shared },
        _ => match request_cacheability(method, headers, rule) {
            Err(reason) => Serve::Pass(reason),
            Ok(()) if ranged => Serve::Range,
            Ok(()) => Serve::Cached,
        },
    };
    Route::Serve { rule, serve }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EdgeConfig {
        let rules = serde_json::json!({ "rules": [
            { "name": "img", "path": "/img/*", "images": "auto", "cache": "override", "edge_ttl": 60 },
            { "name": "secure", "path": "/secure/*", "https_redirect": true },
            { "name": "html", "path": "/*", "cache": "override", "edge_ttl": 60, "bypass_cookies": ["session"] },
        ] });
        EdgeConfig::from_vars(None, Some(rules)).unwrap()
    }

    fn at(config: &EdgeConfig, method: &str, url: &str, headers: &[(&str, &str)]) -> (String, String) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
        }
        let route = route(config, &Method::from_bytes(method.as_bytes()).unwrap(), &url::Url::parse(url).unwrap(), &h);
        match route {
            Route::Endpoint(e) => ("-".into(), format!("{e:?}")),
            Route::Refuse { rule, error } => (rule.name.clone(), format!("refuse {}", error.status())),
            Route::Redirect { rule, location } => (rule.name.clone(), format!("redirect {location}")),
            Route::Serve { rule, serve } => (rule.name.clone(), match serve {
                Serve::Image { request, shared } => format!("image auto={} shared={}", request.auto, shared.is_ok()),
                Serve::Pass(reason) => format!("pass {}", reason.as_str()),
                Serve::Range => "range".into(),
                Serve::Cached => "cached".into(),
            }),
        }
    }

    #[test]
    fn routes_each_kind_of_request() {
        let c = config();
        let r = |m, u, h| at(&c, m, u, h);
        assert_eq!(r("GET", "http://x/__edgelayer/health", &[]).1, "Health");
        assert_eq!(r("POST", "http://x/__edgelayer/purge", &[]).1, "Purge");
        assert_eq!(r("GET", "http://x/__edgelayer/metrics.json", &[]).1, "Admin(MetricsJson)");
        assert_eq!(r("GET", "http://x/", &[]), ("html".into(), "cached".into()));
        assert_eq!(r("HEAD", "http://x/a", &[("range", "bytes=0-1")]), ("html".into(), "range".into()));
        assert_eq!(r("GET", "http://x/a", &[("cookie", "session=1")]), ("html".into(), "pass bypass-cookie".into()));
        assert_eq!(r("PROPFIND", "http://x/a", &[]), ("html".into(), "pass method".into()), "extension methods pass");
        assert_eq!(r("TRACE", "http://x/a", &[]), ("html".into(), "refuse 405".into()));
        assert_eq!(r("GET", "http://x:8787/secure/a?b=1", &[]), ("secure".into(), "redirect https://x:8787/secure/a?b=1".into()));
        assert_eq!(r("GET", "https://x/secure/a", &[]), ("secure".into(), "cached".into()));
    }

    #[test]
    fn images_take_their_source_rule() {
        let c = config();
        assert_eq!(at(&c, "GET", "http://x/cdn-cgi/image/w=64/img/a.png", &[]), ("img".into(), "image auto=false shared=true".into()));
        assert_eq!(at(&c, "GET", "http://x/img/a.png", &[]), ("img".into(), "image auto=true shared=true".into()));
        assert_eq!(at(&c, "GET", "http://x/img/a.png", &[("authorization", "Basic x")]), ("img".into(), "pass authorization".into()), "auto images never share credentials");
        assert_eq!(at(&c, "GET", "http://x/img/a.png", &[("range", "bytes=0-1")]), ("img".into(), "range".into()));
        assert_eq!(at(&c, "POST", "http://x/img/a.png", &[]), ("img".into(), "pass method".into()));
    }

    #[test]
    fn methods_that_cannot_pass() {
        for m in ["GET", "PROPFIND", "PURGE", "MKCOL", "BAN", "QUERY"] {
            assert!(method_passable(m).is_ok(), "{m}");
        }
        for m in ["TRACE", "connect", "TRACK"] {
            assert_eq!(method_passable(m).unwrap_err().status(), 405, "{m}");
        }
    }
}
