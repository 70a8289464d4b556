//! The image pipeline as a second worker. The main worker, built without the codecs, sends the
//! source bytes and a [`Job`] through a Service Binding (`IMAGES`) to a worker built from this
//! crate with the `image-worker` feature, which runs [`run`] and answers a [`Reply`] plus the
//! encoded bytes. The codecs are most of the wasm, and a cold isolate pays for compiling them
//! on its first request, whatever the route (BENCHMARKS.md, "Cold start"); split this way, only
//! image misses do.
//!
//! Both ends are here, pure: the job and the reply travel as base64url JSON in one header each,
//! the pixels as the body. Beware: the reply's [`Outcome::Encoded`] has no bytes until
//! [`read_reply`] puts the body back into it.

use super::outcome::{ImageError, ImageSettings, Outcome};
use super::params::ImageParams;
use base64::Engine;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The header that carries the [`Job`].
pub const JOB_HEADER: &str = "x-edgelayer-image-job";
/// The header that carries the [`Reply`].
pub const REPLY_HEADER: &str = "x-edgelayer-image-reply";
/// The header with the image worker's wasm memory in MiB after the job (wasm memory only
/// grows: in a fresh isolate, the job's peak), for `X-Edgelayer-Image`'s `mem_mib`.
pub const MEMORY_HEADER: &str = "x-edgelayer-image-memory-mib";
/// The largest source the image worker reads whatever a job says (64 MiB): the job comes in
/// the same request as the bytes, so it cannot be the only bound.
pub const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// What to do with the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// The pipeline: decode, resize, encode the negotiated format.
    Transform {
        /// The parsed URL options.
        params: ImageParams,
        /// The client's `Accept` ("" when absent).
        accept: String,
    },
    /// `format=json`: the output size and what the source is.
    Describe {
        /// The parsed URL options.
        params: ImageParams,
    },
}

/// A request to the image worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// What to do.
    pub task: Task,
    /// The main worker's engine settings (limits, qualities, speed).
    pub settings: ImageSettings,
}

impl Job {
    /// The most source bytes the image worker reads for this job: the job's own limit, never
    /// over [`MAX_SOURCE_BYTES`].
    pub fn source_limit(&self) -> u64 {
        self.settings.max_source_bytes.min(MAX_SOURCE_BYTES)
    }
}

/// The image worker's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// What [`Task::Transform`] produced (an encoding's bytes are the body).
    Transformed(Result<Outcome, ImageError>),
    /// What [`Task::Describe`] produced.
    Described(Result<String, ImageError>),
}

/// A value as a header: base64url of its JSON.
pub fn to_header<T: Serialize>(value: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// A value back from [`to_header`]'s form.
pub fn from_header<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()).map_err(|e| format!("not base64url: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("not a valid message: {e}"))
}

/// The image worker's side: runs `job` on `source`; the reply and the body to send (an
/// encoding's bytes, else nothing).
#[cfg(feature = "codecs")]
pub fn run(job: &Job, source: &[u8]) -> (Reply, Vec<u8>) {
    use super::process;
    match &job.task {
        Task::Transform { params, accept } => {
            let mut result = process::process(source, params, accept, &job.settings);
            let body = match &mut result {
                Ok(Outcome::Encoded { bytes, .. }) => std::mem::take(bytes),
                _ => Vec::new(),
            };
            (Reply::Transformed(result), body)
        }
        Task::Describe { params } => (Reply::Described(process::describe_json(source, params, &job.settings)), Vec::new()),
    }
}

/// The main worker's side: the reply from its header and the body, with an encoding's bytes
/// put back.
pub fn read_reply(header: &str, body: Vec<u8>) -> Result<Reply, String> {
    let mut reply: Reply = from_header(header)?;
    if let Reply::Transformed(Ok(Outcome::Encoded { bytes, .. })) = &mut reply {
        *bytes = body;
    }
    Ok(reply)
}

#[cfg(all(test, feature = "codecs"))]
mod tests {
    use super::*;
    use crate::image::params::{parse, ImageLimits};

    #[test]
    fn a_job_through_the_service_gives_what_the_pipeline_gives_locally() {
        let photo = include_bytes!("../../assets/site/img/coffee.jpg");
        let params = parse("width=128", &ImageLimits::default()).unwrap();
        let settings = ImageSettings::default();
        let accept = "image/avif,image/webp,*/*";
        let job = Job { task: Task::Transform { params: params.clone(), accept: accept.into() }, settings: settings.clone() };
        let sent: Job = from_header(&to_header(&job)).unwrap();
        assert_eq!(sent, job);
        let (reply, body) = run(&sent, photo);
        let back = read_reply(&to_header(&reply), body).unwrap();
        let local = crate::image::process::process(photo, &params, accept, &settings).unwrap();
        match (back, local) {
            (Reply::Transformed(Ok(Outcome::Encoded { bytes: a, format: fa, width: wa, .. })), Outcome::Encoded { bytes: b, format: fb, width: wb, .. }) => {
                assert_eq!((fa, wa), (fb, wb));
                assert_eq!(a, b, "the same bytes");
            }
            other => panic!("{other:?}"),
        }
        // Errors and `format=json` travel too.
        let (reply, _) = run(&Job { task: Task::Transform { params: params.clone(), accept: String::new() }, settings: settings.clone() }, b"not an image");
        assert!(matches!(read_reply(&to_header(&reply), Vec::new()), Ok(Reply::Transformed(Err(ImageError::Unsupported)))));
        let (reply, _) = run(&Job { task: Task::Describe { params }, settings }, photo);
        assert!(matches!(read_reply(&to_header(&reply), Vec::new()), Ok(Reply::Described(Ok(json))) if json.starts_with(r#"{"width":128"#)));
        let greedy = Job { task: Task::Describe { params: parse("", &ImageLimits::default()).unwrap() }, settings: ImageSettings { max_source_bytes: u64::MAX, ..ImageSettings::default() } };
        assert_eq!(greedy.source_limit(), MAX_SOURCE_BYTES, "a job cannot lift the worker's own cap");
        assert!(from_header::<Job>("%%%").is_err() && from_header::<Job>("e30").is_err(), "garbage is an error, not a panic");
    }
}
