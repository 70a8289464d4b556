//! Compression: content-coding negotiation (RFC 9110 §12.5.3), which responses are worth
//! compressing, at what brotli quality, and a streaming brotli encoder.
//!
//! ### Levels and why
//! - [`DYNAMIC_QUALITY`] (5) for responses compressed on the fly and not cached: brotli 5 is
//!   several times faster than 11 and already beats gzip -6 on size, so per-request CPU stays
//!   small (Workers bill CPU time, and every miss pays it).
//! - [`STATIC_QUALITY`] (11) for cacheable responses: compressed once on the fill, stored
//!   compressed, and every hit is then free of compression CPU; the extra CPU buys the smallest
//!   bytes for every later client. Bodies above [`STATIC_MAX_Q11_BYTES`] (or of unknown length)
//!   use [`STATIC_LARGE_QUALITY`] (9) to stay within the CPU budget of one request.
//! - gzip clients (no `br`) get gzip from the platform (`Content-Encoding: gzip` with automatic
//!   body encoding), so gzip needs no code of ours.

pub mod brotli_stage;

pub use brotli_stage::BrotliEncoder;

/// Brotli quality for responses compressed per request.
pub const DYNAMIC_QUALITY: u32 = 5;
/// Brotli quality for cacheable responses (compressed once, stored compressed).
pub const STATIC_QUALITY: u32 = 11;
/// Brotli quality for cacheable responses too large for quality 11 in one request.
pub const STATIC_LARGE_QUALITY: u32 = 9;
/// Largest known length compressed at [`STATIC_QUALITY`].
pub const STATIC_MAX_Q11_BYTES: u64 = 1024 * 1024;
/// Bodies shorter than this (when the length is known) are not compressed: the saving is
/// smaller than the framing and the CPU.
pub const MIN_COMPRESS_BYTES: u64 = 512;

/// Whether a media type is text-like and worth compressing.
pub fn is_compressible(content_type: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || matches!(
            ct.as_str(),
            "application/json" | "application/javascript" | "application/x-javascript" | "application/xml" | "image/svg+xml" | "application/wasm" | "application/manifest+json" | "image/x-icon"
        )
}

/// The brotli quality for a response: high when it will be cached, fast otherwise.
pub fn brotli_quality(cacheable: bool, content_length: Option<u64>) -> u32 {
    match (cacheable, content_length) {
        (false, _) => DYNAMIC_QUALITY,
        (true, Some(n)) if n <= STATIC_MAX_Q11_BYTES => STATIC_QUALITY,
        (true, _) => STATIC_LARGE_QUALITY,
    }
}
/// A content coding the edge can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Coding {
    /// No coding.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// Brotli (RFC 7932).
    Br,
}

impl Coding {
    /// The token used in `Content-Encoding` / `Accept-Encoding`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Br => "br",
        }
    }
}

/// The coding to send for an `Accept-Encoding` value: highest q-value wins, ties go to
/// `br`, then `gzip`, then `identity`. `*` stands for codings not listed. `identity` is
/// acceptable unless refused with `q=0` (directly or through `*;q=0`); an empty or absent
/// header means identity only. When nothing is acceptable, identity is returned (servers commonly
/// do so rather than answer 406).
pub fn preferred_coding(accept_encoding: &str) -> Coding {
    let listed: Vec<(String, f32)> = crate::qvalue::parse(accept_encoding).into_iter().map(|w| (w.name, w.q)).collect();
    let star = listed.iter().find(|(n, _)| n == "*").map(|(_, q)| *q);
    let q = |c: Coding| -> f32 {
        let names: &[&str] = match c {
            Coding::Br => &["br"],
            Coding::Gzip => &["gzip", "x-gzip"],
            Coding::Identity => &["identity"],
        };
        match listed.iter().find(|(n, _)| names.contains(&n.as_str())) {
            Some((_, q)) => *q,
            // Unlisted identity is acceptable (unless `*;q=0`) but least preferred.
            None if c == Coding::Identity => star.map_or(0.001, |s| if s == 0.0 { 0.0 } else { 0.001 }),
            None => star.unwrap_or(0.0),
        }
    };
    let mut best = (Coding::Identity, q(Coding::Identity));
    for c in [Coding::Gzip, Coding::Br] {
        let qc = q(c);
        if qc > 0.0 && qc >= best.1 {
            best = (c, qc);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_types_and_quality() {
        for ct in ["text/html; charset=utf-8", "text/css", "application/json", "application/ld+json", "image/svg+xml", "application/javascript", "text/plain"] {
            assert!(is_compressible(ct), "{ct}");
        }
        for ct in ["image/png", "image/jpeg", "application/octet-stream", "video/mp4", "font/woff2", ""] {
            assert!(!is_compressible(ct), "{ct}");
        }
        assert_eq!(brotli_quality(false, Some(10)), DYNAMIC_QUALITY);
        assert_eq!(brotli_quality(true, Some(10_000)), STATIC_QUALITY);
        assert_eq!(brotli_quality(true, Some(5 << 20)), STATIC_LARGE_QUALITY);
        assert_eq!(brotli_quality(true, None), STATIC_LARGE_QUALITY);
    }

    #[test]
    fn negotiation_table() {
        let cases = [
            ("", Coding::Identity),
            ("gzip, deflate, br, zstd", Coding::Br),
            ("gzip", Coding::Gzip),
            ("br;q=0.5, gzip;q=0.8", Coding::Gzip),
            ("br;q=0.8, gzip;q=0.8", Coding::Br),
            ("*", Coding::Br),
            ("*;q=0.5, gzip;q=0", Coding::Br),
            ("br;q=0, gzip;q=0", Coding::Identity),
            ("identity", Coding::Identity),
            ("identity;q=1, br;q=0.1", Coding::Identity),
            ("x-gzip", Coding::Gzip),
            ("BR;Q=1", Coding::Br),
            ("br;q=garbage", Coding::Identity),
            ("deflate", Coding::Identity),
        ];
        for (header, want) in cases {
            assert_eq!(preferred_coding(header), want, "{header:?}");
        }
    }
}
