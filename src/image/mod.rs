//! Image resizing and format negotiation (Cloudflare's `/cdn-cgi/image/` URLs, and rules with
//! `images = "auto"`): the URL grammar and its abuse guards ([`params`]), signed URLs
//! ([`sign`]), output geometry ([`geometry`]), `Accept` negotiation ([`negotiate`]) and the
//! decode → resize → encode pipeline that never returns more bytes than the source
//! (`process`, with AVIF written by `avif` and lossy WebP by `webp`: all only with the `codecs` cargo feature, on by
//! default; its settings and answers are in [`outcome`]). Pure: the Worker glue fetches the source and caches the variant.

#[cfg(feature = "codecs")]
pub mod animation;
#[cfg(feature = "codecs")]
pub mod avif;
pub mod colour;
pub mod exif;
pub mod geometry;
#[cfg(feature = "codecs")]
pub mod icc;
pub mod negotiate;
pub mod outcome;
pub mod params;
#[cfg(feature = "codecs")]
pub mod process;
pub mod request;
#[cfg(feature = "codecs")]
pub mod saliency;
pub mod serve;
pub mod service;
pub mod sign;
#[cfg(feature = "codecs")]
pub mod webp;
