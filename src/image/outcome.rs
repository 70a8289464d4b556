//! What the image engine is told and what it answers, kept apart from the codecs so a worker
//! built without them (the `codecs` feature off) still reads its config, names its errors and
//! describes an outcome it got from elsewhere.

use super::negotiate::OutputFormat;

/// Engine settings (`[vars.EDGELAYER.images]`); see [`ImageSettings::default`] for the
/// defaults and BENCHMARKS.md for the measurements behind the AVIF ones.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageSettings {
    /// Largest source accepted, in bytes (default 16 MiB).
    pub max_source_bytes: u64,
    /// Largest source accepted, in pixels, read from the header before decoding (default 12.6 MP,
    /// 4096×3072: a 12 MP JPEG peaks at 54 MB baseline, 75 MB progressive, while a 14.7 MP
    /// progressive one reached 140 MB, over the Workers 128 MB limit; see BENCHMARKS.md).
    pub max_source_pixels: u64,
    /// JPEG and WebP quality when the URL sets none (default 85, Cloudflare's).
    pub jpeg_quality: u8,
    /// AVIF quality when the URL sets none (default 70: about 0.4× the bytes of JPEG q85 on
    /// our photo set; see `process::avif_quality_for`).
    pub avif_quality: u8,
    /// AVIF encoder speed 1..=10, libaom's `cpu-used` in all-intra mode (10 gives 9). Default
    /// 8: a third of the encode time of 6 (the Pillow peer's speed), which gives 9-11 % fewer
    /// bytes at the same mean SSIM; see BENCHMARKS.md, "What a level per image could buy".
    pub avif_speed: u8,
    /// AVIF is only tried when neither output side exceeds this (default 1200, Cloudflare's cap;
    /// above it a client that takes WebP gets WebP, as from Cloudflare).
    pub avif_max_side: u32,
    /// Animated GIFs with more frames pass through unresized (default 300).
    pub max_animation_frames: u32,
    /// Animated GIFs whose frames hold more pixels in all pass through unresized (default
    /// 50 MP: Cloudflare delivers animations over that untransformed).
    pub max_animation_pixels: u64,
    /// Decode JPEGs smaller when the output is much smaller (`process::jpeg_shrink`; default on).
    pub shrink_on_load: bool,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self { max_source_bytes: 16 << 20, max_source_pixels: 12_600_000, jpeg_quality: 85, avif_quality: 70, avif_speed: 8, avif_max_side: 1200, max_animation_frames: 300, max_animation_pixels: 50_000_000, shrink_on_load: true }
    }
}

/// Why an image could not be produced; each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ImageError {
    /// The source is larger than `max_source_bytes`.
    #[error("the source image is {0} bytes; the limit is {1}")]
    SourceTooLarge(u64, u64),
    /// The header declares more than `max_source_pixels` (a decompression bomb, or just huge).
    #[error("the source image is {0}x{1} pixels; the limit is {2} pixels")]
    TooManyPixels(u32, u32, u64),
    /// This worker was built without the image codecs (the `codecs` cargo feature) and has no
    /// image worker bound (`IMAGES`).
    #[error("image transformations are not built into this worker and no image worker is bound")]
    NotBuilt,
    /// The image worker could not be reached or answered something unreadable.
    #[error("the image worker failed: {0}")]
    Service(String),
    /// Not a format the edge decodes (JPEG, PNG, GIF, WebP).
    #[error("the source is not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    /// The source claims a supported format but does not decode.
    #[error("the source image could not be decoded: {0}")]
    Decode(String),
    /// The source ends before its image data does (a JPEG without its end marker): decoding it
    /// would give a partly grey picture.
    #[error("the source image is truncated")]
    Truncated,
    /// An AVIF source and a client that does not take AVIF: no AVIF decoder fits the worker.
    #[error("the source is AVIF, which this edge passes through but cannot decode; ask with an Accept that takes image/avif")]
    AvifSource,
    /// An encoder failed.
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

impl ImageError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::SourceTooLarge(..) | Self::TooManyPixels(..) => 413,
            Self::Unsupported | Self::AvifSource => 415,
            Self::Decode(_) | Self::Truncated => 422,
            Self::Encode(_) => 500,
            Self::NotBuilt => 501,
            Self::Service(_) => 502,
        }
    }
}

/// One encoded candidate and its size, for the response header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tried {
    /// Its format.
    pub format: OutputFormat,
    /// Its size in bytes.
    pub bytes: usize,
}

/// What the pipeline produced.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// A new encoding, smaller than the source.
    Encoded {
        /// The bytes (carried apart from the rest between workers: see `image::service`).
        #[serde(skip)]
        bytes: Vec<u8>,
        /// Their format.
        format: OutputFormat,
        /// Output width.
        width: u32,
        /// Output height.
        height: u32,
        /// Source dimensions (after orientation).
        source: (u32, u32),
        /// Every candidate encoded, in order.
        tried: Vec<Tried>,
    },
    /// Serve the original bytes, for this reason.
    Original {
        /// Why (for the response header).
        reason: std::borrow::Cow<'static, str>,
        /// Candidates encoded before giving up, if any.
        tried: Vec<Tried>,
    },
}

fn subtype(format: OutputFormat) -> &'static str {
    format.media_type().trim_start_matches("image/")
}

fn tried_list(tried: &[Tried]) -> String {
    tried.iter().map(|t| format!("{}:{}", subtype(t.format), t.bytes)).collect::<Vec<_>>().join(",")
}

impl Outcome {
    /// The `X-Edgelayer-Image` value: what came in, what went out, every candidate's size, and
    /// the time taken (`source_type`: the source's media subtype).
    pub fn describe(&self, source_type: &str, source_len: usize, ms: f64) -> String {
        match self {
            Self::Encoded { bytes, format, width, height, source, tried } => format!(
                "source={source_type};{}x{};{source_len} output={};{width}x{height};{} tried={} ms={ms:.0}",
                source.0,
                source.1,
                subtype(*format),
                bytes.len(),
                tried_list(tried)
            ),
            Self::Original { reason, tried } => format!("original={source_type};{source_len} reason={reason:?} tried={} ms={ms:.0}", tried_list(tried)),
        }
    }
}

/// The `X-Edgelayer-Image` value when the original is served because processing failed.
pub fn describe_error(error: &ImageError, source_type: &str, source_len: usize, ms: f64) -> String {
    format!("original={source_type};{source_len} error={:?} ms={ms:.0}", error.to_string())
}
