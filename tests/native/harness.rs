//! Shared test helpers: an origin app over a temporary database, and one-shot requests.

use axum::body::Body;
use axum::http::{Request, Response};
use edgelayer::origin::{app, AppState, Settings};
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

/// The demo site shipped in the repo.
pub fn site_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/site")
}

/// Settings for a test origin whose database lives in `dir`.
pub fn settings(dir: &Path, lab: bool) -> Settings {
    Settings {
        addr: "127.0.0.1:0".parse().expect("addr"),
        assets: site_dir(),
        data: dir.join("db/tasks.sqlite3"),
        lab,
        slow_query_ms: 20,
        max_body: 1024,
        lab_raw_addr: None,
    }
}

/// An origin router plus the temp dir that holds its database.
pub struct TestOrigin {
    pub router: axum::Router,
    pub settings: Settings,
    pub _dir: tempfile::TempDir,
}

impl TestOrigin {
    pub fn new(lab: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = settings(dir.path(), lab);
        let state = AppState::open(&settings).expect("open origin");
        Self { router: app(state, settings.max_body), settings, _dir: dir }
    }

    /// Rebuilds the app from the same settings, as a restart would.
    pub fn restart(&mut self) {
        let state = AppState::open(&self.settings).expect("reopen origin");
        self.router = app(state, self.settings.max_body);
    }

    pub async fn send(&self, req: Request<Body>) -> (Response<Body>, Vec<u8>) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes().to_vec();
        (Response::from_parts(parts, Body::empty()), bytes)
    }

    pub async fn get(&self, uri: &str) -> (Response<Body>, Vec<u8>) {
        self.send(Request::get(uri).body(Body::empty()).expect("request")).await
    }

    pub async fn json(&self, method: &str, uri: &str, body: &str) -> (Response<Body>, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        let (res, bytes) = self.send(req).await;
        let value = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).expect("json body") };
        (res, value)
    }
}
