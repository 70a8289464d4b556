//! Image resizing and format negotiation (Cloudflare's `/cdn-cgi/image/` URLs, and rules with
//! `images = "auto"`): the URL grammar and its abuse guards ([`params`]), signed URLs
//! ([`sign`]), output geometry ([`geometry`]), `Accept` negotiation ([`negotiate`]) and the
//! decode → resize → encode pipeline that never returns more bytes than the source
//! ([`process`]), with AVIF written by [`avif`]. Pure: the Worker glue fetches the source and caches the variant.

pub mod animation;
pub mod avif;
pub mod colour;
pub mod exif;
pub mod geometry;
pub mod icc;
pub mod negotiate;
pub mod params;
pub mod process;
pub mod request;
pub mod saliency;
pub mod serve;
pub mod sign;
