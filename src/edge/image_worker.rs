//! The image worker's entry (the `image-worker` feature): the main worker, built without the
//! codecs, sends it a source and a job through its `IMAGES` Service Binding
//! ([`crate::image::service`]). It has no routes of its own (`images/wrangler.toml`).

use crate::image::service::{self, Job};
use worker::*;

#[event(fetch)]
async fn fetch(mut req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    if req.method() != Method::Post {
        return Response::error("the image worker takes POSTed jobs from the edge", 405);
    }
    let job: Job = match req.headers().get(service::JOB_HEADER)?.as_deref().map(service::from_header) {
        Some(Ok(job)) => job,
        Some(Err(e)) => return Response::error(format!("bad {}: {e}", service::JOB_HEADER), 400),
        None => return Response::error(format!("no {} header", service::JOB_HEADER), 400),
    };
    // The declared length first (the runtime holds a body to it), so nothing larger is read.
    let limit = job.source_limit();
    match req.headers().get("content-length")?.and_then(|v| v.parse::<u64>().ok()) {
        Some(n) if n <= limit => {}
        _ => return Response::error(format!("the source must come with a Content-Length of at most {limit} bytes"), 413),
    }
    let source = req.bytes().await?;
    let (reply, body) = service::run(&job, &source);
    let mut res = Response::from_bytes(body)?;
    res.headers_mut().set(service::REPLY_HEADER, &service::to_header(&reply))?;
    res.headers_mut().set(service::MEMORY_HEADER, &super::images::wasm_memory_mib().to_string())?;
    Ok(res)
}
