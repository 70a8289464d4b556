//! The demo origin: an axum app serving the demo site, a tasks API on SQLite, `/healthz`,
//! `/metrics`, a WebSocket echo and (with `--lab`) httpbin-style routes for tests.
//!
//! [`app`] builds the router from [`AppState`] so tests drive it with `oneshot`; `main` only
//! parses flags, binds and serves.

mod error;
pub mod lab;
mod login;
mod observe;
pub mod raw_lab;
mod site;
mod tasks;
mod unread_body;

pub use error::AppError;
pub use observe::Metrics;
pub use site::Site;
pub use tasks::TaskStore;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::{middleware, Json, Router};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Command-line and environment settings of the origin.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "origin", about = "edgelayer demo origin")]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "ORIGIN_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory of the demo site (HTML, CSS, JS, images).
    #[arg(long, env = "ORIGIN_ASSETS", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/site"))]
    pub assets: PathBuf,
    /// SQLite file for the tasks API; created on first run.
    #[arg(long, env = "ORIGIN_DATA", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/origin-data/tasks.sqlite3"))]
    pub data: PathBuf,
    /// Turn on the `/lab/*` test routes (set status, delay, headers; count hits).
    #[arg(long, env = "ORIGIN_LAB")]
    pub lab: bool,
    /// Queries slower than this many milliseconds are logged as slow.
    #[arg(long, env = "ORIGIN_SLOW_QUERY_MS", default_value_t = 20)]
    pub slow_query_ms: u64,
    /// Largest accepted request body for the API, in bytes.
    #[arg(long, env = "ORIGIN_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// With `--lab`: also serve the raw lab (hand-written HTTP/1.1 that can misbehave) here.
    #[arg(long, env = "ORIGIN_LAB_RAW_ADDR", requires = "lab")]
    pub lab_raw_addr: Option<SocketAddr>,
}

/// Shared state of the origin app.
#[derive(Clone)]
pub struct AppState {
    /// The demo site, loaded into memory at start.
    pub site: Arc<Site>,
    /// The tasks store.
    pub tasks: TaskStore,
    /// Request and query metrics.
    pub metrics: Arc<Metrics>,
    /// Hit counters of the lab routes; `None` when `--lab` is off.
    pub lab: Option<Arc<lab::LabState>>,
}

impl AppState {
    /// Loads the site and opens (creating if needed) the database.
    pub fn open(settings: &Settings) -> Result<Self, AppError> {
        let metrics = Arc::new(Metrics::default());
        Ok(Self {
            site: Arc::new(Site::load(&settings.assets)?),
            tasks: TaskStore::open(&settings.data, Duration::from_millis(settings.slow_query_ms), metrics.clone())?,
            metrics,
            lab: settings.lab.then(Default::default),
        })
    }
}

/// The origin's router.
pub fn app(state: AppState, max_body: usize) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(observe::metrics_text))
        .route("/ws/echo", any(ws_echo))
        .route("/login", post(login::login).layer(DefaultBodyLimit::max(16 * 1024)))
        .nest("/api/tasks", tasks::routes().layer(DefaultBodyLimit::max(max_body)));
    if state.lab.is_some() {
        router = router.merge(lab::routes());
    }
    router
        .fallback(site::serve)
        .layer(middleware::from_fn(unread_body::close_if_unread))
        .layer(middleware::from_fn_with_state(state.clone(), observe::track))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let tasks = state.tasks.count().await?;
    Ok(([("cache-control", "no-store")], Json(serde_json::json!({ "status": "ok", "tasks": tasks }))))
}

async fn ws_echo(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
