//! Bodies and the one response type the glue passes around: an [`EdgeResponse`] keeps its
//! headers as `http` headers until the very end, so a request converts headers once in and
//! once out. Bodies stream (origin, Cache API) or are bytes (L1, images); the transform stages
//! (minifier, brotli, the CSP nonce pass) run on the stream.

use super::context::to_headers;
use super::observe;
use crate::html::MinifyOptions;
use crate::pipeline::finish::body_allowed;
use crate::transform::{BodyTransform, TransformPlan};
use futures_util::StreamExt;
use http::HeaderMap;
use worker::{ByteStream, EncodeBody, Error, Response, ResponseBody, Result};

/// A response on its way out: status, `http` headers, body.
pub struct EdgeResponse {
    /// The status (200-599: origin statuses are checked before they get here).
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: ResponseBody,
    /// The body is already encoded as `Content-Encoding` says: the platform sends it as is.
    pub manual: bool,
}

impl EdgeResponse {
    /// A response to a request with `method`; the body is dropped where none may be sent.
    pub fn new(method: &http::Method, status: u16, headers: HeaderMap, body: ResponseBody, manual: bool) -> Self {
        let body = if body_allowed(method, status) { body } else { ResponseBody::Empty };
        Self { status, headers, body, manual }
    }

    /// A small answer the edge makes itself (JSON, text, pages).
    pub fn bytes(status: u16, headers: HeaderMap, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers, body: ResponseBody::Body(body.into()), manual: false }
    }

    /// The platform response: the one header conversion out.
    pub fn into_platform(self) -> Result<Response> {
        let builder = Response::builder().with_status(self.status).with_headers(to_headers(&self.headers)?);
        let builder = if self.manual { builder.with_encode_body(EncodeBody::Manual) } else { builder };
        Ok(builder.body(self.body))
    }
}

/// What leaves the worker: an edge response, or a WebSocket handshake handed through
/// untouched (the platform pairs the sockets).
pub enum Outgoing {
    /// Anything but a handshake.
    Edge(EdgeResponse),
    /// A 101 from the origin.
    Upgrade(Response),
}

impl From<EdgeResponse> for Outgoing {
    fn from(r: EdgeResponse) -> Self {
        Self::Edge(r)
    }
}

/// A body as a byte stream, whatever it came as.
fn stream_of(body: ResponseBody) -> futures_util::stream::LocalBoxStream<'static, Result<Vec<u8>>> {
    match body {
        ResponseBody::Stream(s) => ByteStream::from(s).boxed_local(),
        ResponseBody::Body(bytes) => futures_util::stream::once(async move { Ok(bytes) }).boxed_local(),
        ResponseBody::Empty => futures_util::stream::empty().boxed_local(),
    }
}

/// Streams a body through the plan's stages (minifier, brotli). `meter`: the rule and stage to
/// credit the bytes sent and saved to, once the body has ended.
pub fn transformed(body: ResponseBody, plan: &TransformPlan, options: MinifyOptions, quality: u32, meter: Option<(String, &'static str)>) -> Result<ResponseBody> {
    let upstream = stream_of(body);
    let pipeline = BodyTransform::new(plan, options, quality);
    // (bytes in, bytes out) so far.
    let counted = (0u64, 0u64);
    let out = futures_util::stream::unfold((upstream, Some(pipeline), counted, meter), |(mut upstream, pipeline, (mut seen, mut sent), meter)| async move {
        let mut pipeline = pipeline?;
        loop {
            match upstream.next().await {
                Some(Ok(chunk)) => {
                    seen += chunk.len() as u64;
                    let bytes = pipeline.push(&chunk);
                    if !bytes.is_empty() {
                        sent += bytes.len() as u64;
                        return Some((Ok::<Vec<u8>, Error>(bytes), (upstream, Some(pipeline), (seen, sent), meter)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (upstream, None, (seen, sent), None))),
                None => {
                    let last = pipeline.finish();
                    if let Some((rule, stage)) = &meter {
                        let total = sent + last.len() as u64;
                        observe::record(|s| {
                            s.record_saved(rule, stage, seen, total);
                            s.record_bytes_out(rule, total);
                        });
                    }
                    return Some((Ok(last), (upstream, None, (seen, sent), None)));
                }
            }
        }
    });
    Ok(Response::from_stream(out)?.into_parts().1)
}

/// Two copies of a body: one for the client, one for the cache.
pub fn tee(body: ResponseBody) -> Result<(ResponseBody, ResponseBody)> {
    match body {
        ResponseBody::Empty => Ok((ResponseBody::Empty, ResponseBody::Empty)),
        ResponseBody::Body(bytes) => Ok((ResponseBody::Body(bytes.clone()), ResponseBody::Body(bytes))),
        ResponseBody::Stream(stream) => {
            let pair = stream.tee();
            let a: web_sys::ReadableStream = pair.get(0).into();
            let b: web_sys::ReadableStream = pair.get(1).into();
            Ok((ResponseBody::Stream(a), ResponseBody::Stream(b)))
        }
    }
}

/// Reads a body to its end, or stops once it exceeds `limit` bytes: `Ok(Err(rest))` then hands
/// back what was read and the rest of the stream, so nothing is lost.
pub async fn read_bounded(body: ResponseBody, limit: u64) -> Result<std::result::Result<Vec<u8>, ResponseBody>> {
    let mut stream = stream_of(body);
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() as u64 > limit {
            let head = futures_util::stream::once(async move { Ok::<Vec<u8>, Error>(buf) });
            return Ok(Err(Response::from_stream(head.chain(stream))?.into_parts().1));
        }
    }
    Ok(Ok(buf))
}
