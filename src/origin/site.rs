//! The demo site: files under the assets directory, loaded into memory once at start and served
//! with honest validators and a `Cache-Control` chosen by kind.

use super::{AppError, AppState};
use crate::conditional::{is_not_modified, Validators};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

/// Cache lifetime for files whose name carries a content hash: they never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache lifetime for images (not content-hashed, so they may change, but rarely).
pub const IMAGES: &str = "public, max-age=86400";
/// Cache lifetime for HTML pages: short, as their content changes with deploys.
pub const PAGES: &str = "public, max-age=60";
/// Cache lifetime for anything else.
pub const OTHER: &str = "public, max-age=300";

/// One file of the site with its precomputed headers.
#[derive(Debug)]
struct File {
    body: Bytes,
    content_type: &'static str,
    etag: String,
    last_modified: SystemTime,
    cache_control: &'static str,
}

/// The demo site, keyed by URL path (`/index.html`, `/static/app.3f2a9c1b.css`, ...).
#[derive(Debug, Default)]
pub struct Site {
    files: HashMap<String, File>,
}

/// The media type for a file extension.
fn content_type(ext: &str) -> &'static str {
    match ext {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Whether a file name carries a content hash: `name.<8+ hex digits>.ext`.
pub fn is_content_hashed(file_name: &str) -> bool {
    let mut parts = file_name.rsplit('.');
    let (_ext, hash) = (parts.next(), parts.next());
    parts.next().is_some() && hash.is_some_and(|h| h.len() >= 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The cache policy for a file, by kind.
fn cache_control(file_name: &str, content_type: &str) -> &'static str {
    if is_content_hashed(file_name) {
        IMMUTABLE
    } else if content_type.starts_with("image/") {
        IMAGES
    } else if content_type.starts_with("text/html") {
        PAGES
    } else {
        OTHER
    }
}

/// A strong ETag from the content: the first 16 hex digits of its SHA-256.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex = hex::encode(&digest[..8]);
    format!("\"{hex}\"")
}

impl Site {
    /// Reads every file under `root` into memory.
    pub fn load(root: &Path) -> Result<Self, AppError> {
        let mut site = Self::default();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| AppError::Internal(format!("cannot read assets dir {}: {e}", dir.display())))?;
            for entry in entries {
                let entry = entry.map_err(|e| AppError::Internal(e.to_string()))?;
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let body = std::fs::read(&path).map_err(|e| AppError::Internal(format!("{}: {e}", path.display())))?;
                let rel = path.strip_prefix(root).map_err(|e| AppError::Internal(e.to_string()))?;
                let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
                let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let ext = name.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
                let content_type = content_type(&ext);
                let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                site.files.insert(
                    url,
                    File {
                        etag: etag_of(&body),
                        body: Bytes::from(body),
                        content_type,
                        last_modified: modified,
                        cache_control: cache_control(&name, content_type),
                    },
                );
            }
        }
        Ok(site)
    }

    /// The file for a URL path: exact, then `index.html` for directories, then `.html` added.
    fn lookup(&self, path: &str) -> Option<&File> {
        if path.ends_with('/') {
            return self.files.get(&format!("{path}index.html"));
        }
        self.files.get(path).or_else(|| self.files.get(&format!("{path}.html")))
    }

    /// How many files were loaded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file was loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Serves a site file for GET and HEAD (axum strips the body for HEAD, keeping the length).
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let err = AppError::Client(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed here", req.method()));
        let mut res = err.into_response();
        res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let Some(file) = state.site.lookup(req.uri().path()) else {
        let body = state.site.lookup("/404.html").map(|f| f.body.clone()).unwrap_or_else(|| Bytes::from_static(b"not found"));
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=30")],
            body,
        )
            .into_response();
    };
    let validators = Validators { etag: Some(&file.etag), last_modified: Some(file.last_modified) };
    let common = [
        (header::ETAG, file.etag.clone()),
        (header::LAST_MODIFIED, httpdate::fmt_http_date(file.last_modified)),
        (header::CACHE_CONTROL, file.cache_control.to_owned()),
    ];
    if is_not_modified(req.headers(), validators) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, file.content_type)], file.body.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        assert!(is_content_hashed("app.3f2a9c1b.css"));
        assert!(is_content_hashed("vendor.min.0123456789abcdef.js"));
        assert!(!is_content_hashed("app.css"));
        assert!(!is_content_hashed("3f2a9c1b.css"));
        assert!(!is_content_hashed("app.nothex12.css"));
    }

    #[test]
    fn policy_by_kind() {
        assert_eq!(cache_control("app.3f2a9c1b.css", "text/css"), IMMUTABLE);
        assert_eq!(cache_control("cat.jpg", "image/jpeg"), IMAGES);
        assert_eq!(cache_control("index.html", "text/html; charset=utf-8"), PAGES);
        assert_eq!(cache_control("robots.txt", "text/plain"), OTHER);
    }
}
