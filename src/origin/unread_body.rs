//! `Connection: close` on an answer given before the request body was read to its end.
//!
//! hyper closes such a connection right after the response (it will not read an unknown amount
//! of body to find where the next request starts), but it does not say so in the response. A
//! client that keeps connections alive, such as the Workers runtime in front of this origin,
//! then puts the socket back in its pool and may send its next request on it while the close
//! is on its way: that request fails with "Network connection lost", and if it was a `PATCH`
//! or `POST` nobody may send it again. Measured before this layer: a `PROPFIND` with a 241 KiB
//! body got its 405 and the socket closed 6 ms later, with no `Connection` header.
//!
//! RFC 9112 §9.6: a server that is going to close the connection sends `Connection: close`.
//! With it the runtime opens a fresh connection for the next request.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Middleware: answers get `Connection: close` when the request had a body that the handler
/// did not read to its end.
pub async fn close_if_unread(req: Request, next: Next) -> Response {
    if !has_body(&req) {
        return next.run(req).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| Body::new(Watched { inner, finished: finished.clone() }));
    let mut res = next.run(req).await;
    if !finished.load(Ordering::Acquire) {
        res.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Whether the request announces a body (RFC 9112 §6.3: a `Transfer-Encoding`, or a
/// `Content-Length` other than 0).
fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(TRANSFER_ENCODING) || h.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
}

/// The request body, noting when it has been read to its end.
struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/read", post(|body: Bytes| async move { body.len().to_string() }))
            .route("/ignore", post(|| async { "not read" }))
            .layer(axum::middleware::from_fn(close_if_unread))
    }

    async fn connection(path: &str, body: &'static str) -> Option<String> {
        let req = Request::post(path).header(CONTENT_LENGTH, body.len()).body(Body::from(body)).unwrap();
        let res = app().oneshot(req).await.unwrap();
        res.headers().get(CONNECTION).map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn an_unread_body_closes_the_connection() {
        assert_eq!(connection("/ignore", "payload").await.as_deref(), Some("close"));
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_or_none_keeps_it() {
        assert_eq!(connection("/read", "payload").await, None);
        assert_eq!(connection("/ignore", "").await, None, "Content-Length: 0 is no body");
    }
}
