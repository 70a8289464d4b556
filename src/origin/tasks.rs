//! The tasks API (`/api/tasks`): list, get, create, update, delete, on an embedded SQLite file.
//!
//! SQLite calls are blocking, so they run on tokio's blocking pool behind one connection; each
//! query is timed into the metrics and logged when slower than the slow-query threshold.

use super::{AppError, AppState, Metrics};
use crate::conditional::{is_not_modified, Validators};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Longest accepted task title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// A task as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    /// Row id.
    pub id: i64,
    /// What to do.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Last change, Unix milliseconds.
    pub updated_at: i64,
}

/// A create or update body; on update, absent fields keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    title: Option<String>,
    done: Option<bool>,
}

/// The task store: one SQLite connection shared by the app.
#[derive(Clone)]
pub struct TaskStore {
    conn: Arc<Mutex<Connection>>,
    slow: Duration,
    metrics: Arc<Metrics>,
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn row_to_task(row: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task { id: row.get(0)?, title: row.get(1)?, done: row.get(2)?, created_at: row.get(3)?, updated_at: row.get(4)? })
}

impl TaskStore {
    /// Opens the database at `path`, creating the file, its directory and the schema if needed.
    pub fn open(path: &std::path::Path, slow: Duration, metrics: Arc<Metrics>) -> Result<Self, AppError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| AppError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS tasks (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               title TEXT NOT NULL,
               done INTEGER NOT NULL DEFAULT 0,
               created_at INTEGER NOT NULL,
               updated_at INTEGER NOT NULL
             );",
        )?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), slow, metrics })
    }

    /// Runs `f` on the connection in the blocking pool, timing it as query `name`.
    async fn run<T, F>(&self, name: &'static str, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let (slow, metrics) = (self.slow, self.metrics.clone());
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| AppError::Internal("database lock poisoned".into()))?;
            let started = Instant::now();
            let result = f(&conn);
            let elapsed = started.elapsed();
            metrics.record_query(name, elapsed, elapsed >= slow);
            if elapsed >= slow {
                tracing::warn!(query = name, ms = elapsed.as_secs_f64() * 1000.0, "slow query");
            }
            Ok(result?)
        })
        .await
        .map_err(|e| AppError::Internal(format!("query task failed: {e}")))?
    }

    /// How many tasks there are.
    pub async fn count(&self) -> Result<i64, AppError> {
        self.run("count", |c| c.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))).await
    }

    async fn list(&self) -> Result<Vec<Task>, AppError> {
        self.run("list", |c| {
            let mut stmt = c.prepare_cached("SELECT id, title, done, created_at, updated_at FROM tasks ORDER BY id")?;
            let rows = stmt.query_map([], row_to_task)?;
            rows.collect()
        })
        .await
    }

    async fn get(&self, id: i64) -> Result<Option<Task>, AppError> {
        self.run("get", move |c| {
            c.query_row("SELECT id, title, done, created_at, updated_at FROM tasks WHERE id = ?1", [id], row_to_task)
                .optional()
        })
        .await
    }

    async fn create(&self, title: String, done: bool) -> Result<Task, AppError> {
        let now = now_millis();
        self.run("create", move |c| {
            c.query_row(
                "INSERT INTO tasks (title, done, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
                 RETURNING id, title, done, created_at, updated_at",
                params![title, done, now],
                row_to_task,
            )
        })
        .await
    }

    async fn update(&self, id: i64, title: Option<String>, done: Option<bool>) -> Result<Option<Task>, AppError> {
        let now = now_millis();
        self.run("update", move |c| {
            c.query_row(
                "UPDATE tasks SET title = COALESCE(?2, title), done = COALESCE(?3, done), updated_at = ?4 WHERE id = ?1
                 RETURNING id, title, done, created_at, updated_at",
                params![id, title, done, now],
                row_to_task,
            )
            .optional()
        })
        .await
    }

    async fn delete(&self, id: i64) -> Result<bool, AppError> {
        self.run("delete", move |c| c.execute("DELETE FROM tasks WHERE id = ?1", [id]).map(|n| n > 0)).await
    }
}

/// The API's routes, relative to `/api/tasks`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{id}", get(get_one).put(update).patch(update).delete(delete))
}

fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::Client(StatusCode::BAD_REQUEST, format!("task id must be a positive integer, got {raw:?}")))
}

fn valid_title(title: &str) -> Result<String, AppError> {
    let t = title.trim();
    if t.is_empty() {
        return Err(AppError::Client(StatusCode::UNPROCESSABLE_ENTITY, "title must not be empty".into()));
    }
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(AppError::Client(StatusCode::UNPROCESSABLE_ENTITY, format!("title must be at most {MAX_TITLE_CHARS} characters")));
    }
    Ok(t.to_owned())
}

/// A JSON representation with an ETag from its bytes, answered 304 when the client has it.
/// `no-cache`: caches may store it but must revalidate, since any write changes it.
fn json_with_validators<T: Serialize>(req: &HeaderMap, value: &T, last_modified: Option<SystemTime>) -> Result<Response, AppError> {
    let body = serde_json::to_vec(value).map_err(|e| AppError::Internal(e.to_string()))?;
    let etag = super::site::etag_of(&body);
    let mut headers = vec![(header::ETAG, etag.clone()), (header::CACHE_CONTROL, "no-cache".to_owned())];
    if let Some(lm) = last_modified {
        headers.push((header::LAST_MODIFIED, httpdate::fmt_http_date(lm)));
    }
    let mut res = if is_not_modified(req, Validators { etag: Some(&etag), last_modified }) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            res.headers_mut().insert(k, v);
        }
    }
    Ok(res)
}

fn millis_to_time(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

async fn list(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let tasks = s.tasks.list().await?;
    let last = tasks.iter().map(|t| t.updated_at).max().map(millis_to_time);
    json_with_validators(&headers, &tasks, last)
}

async fn get_one(State(s): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let task = s.tasks.get(id).await?.ok_or_else(|| AppError::NotFound(format!("task {id}")))?;
    json_with_validators(&headers, &task, Some(millis_to_time(task.updated_at)))
}

async fn create(State(s): State<AppState>, body: Result<Json<TaskInput>, JsonRejection>) -> Result<Response, AppError> {
    let Json(input) = body?;
    let title = valid_title(input.title.as_deref().ok_or_else(|| AppError::Client(StatusCode::UNPROCESSABLE_ENTITY, "title is required".into()))?)?;
    let task = s.tasks.create(title, input.done.unwrap_or(false)).await?;
    let location = format!("/api/tasks/{}", task.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_owned())], Json(task)).into_response())
}

async fn update(State(s): State<AppState>, Path(id): Path<String>, body: Result<Json<TaskInput>, JsonRejection>) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    let Json(input) = body?;
    let title = input.title.as_deref().map(valid_title).transpose()?;
    let task = s.tasks.update(id, title, input.done).await?.ok_or_else(|| AppError::NotFound(format!("task {id}")))?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(task)).into_response())
}

async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let id = parse_id(&id)?;
    if !s.tasks.delete(id).await? {
        return Err(AppError::NotFound(format!("task {id}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
