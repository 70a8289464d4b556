//! Output-format negotiation for images from `Accept` (RFC 9110 §12.5.1, q-values).
//!
//! The caller encodes the candidates in order until one is smaller than the source, never
//! serving one larger than the source: the source's own format is always the last candidate
//! (sent as the original bytes when nothing beats it). As from Cloudflare, `format=auto` gives
//! AVIF to a client that lists it, else lossy WebP to one that lists that, else the source's
//! format.

use super::params::FormatRequest;

/// A format the edge can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OutputFormat {
    /// AVIF (lossy, expensive to encode).
    Avif,
    /// WebP (lossy, libwebp; alpha kept).
    Webp,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (resized animations only: a still GIF becomes PNG).
    Gif,
}

impl OutputFormat {
    /// The media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Self::Avif => "image/avif",
            Self::Webp => "image/webp",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
        }
    }
}

/// The q-value `accept` gives a media type (`type/*` and `*/*` count; absent: 0).
fn q_for(accept: &str, media_type: &str) -> f32 {
    let (major, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    let mut best: Option<(u8, f32)> = None; // (specificity, q)
    for w in crate::qvalue::parse(accept) {
        let specificity = if w.name == media_type {
            3
        } else if w.name == format!("{major}/*") {
            2
        } else if w.name == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, w.q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// Whether the client accepts a format. `*/*` and `image/*` do not count for AVIF and WebP:
/// browsers that send only those cannot be assumed to decode them (as Cloudflare and imgproxy do).
pub fn accepts(accept: &str, format: OutputFormat) -> bool {
    match format {
        OutputFormat::Avif | OutputFormat::Webp => {
            let mt = format.media_type();
            crate::qvalue::parse(accept).iter().any(|w| w.name == mt) && q_for(accept, mt) > 0.0
        }
        _ => accept.trim().is_empty() || q_for(accept, format.media_type()) > 0.0,
    }
}

/// The candidates to encode, most preferred first; the last is the source format (`source`).
pub fn candidates(request: FormatRequest, accept: &str, source: OutputFormat, has_alpha: bool) -> Vec<OutputFormat> {
    let mut out = Vec::new();
    match request {
        FormatRequest::Avif => out.push(OutputFormat::Avif),
        FormatRequest::Webp => out.push(OutputFormat::Webp),
        FormatRequest::Jpeg if !has_alpha => out.push(OutputFormat::Jpeg),
        FormatRequest::Png | FormatRequest::Jpeg => out.push(OutputFormat::Png),
        FormatRequest::Auto | FormatRequest::Json => {
            if accepts(accept, OutputFormat::Avif) {
                out.push(OutputFormat::Avif);
            }
            if accepts(accept, OutputFormat::Webp) {
                out.push(OutputFormat::Webp);
            }
        }
    }
    // The source format last, or (for a WebP source and a client without WebP) the classic
    // format that keeps the image's alpha.
    let last = if accepts(accept, source) { source } else if has_alpha { OutputFormat::Png } else { OutputFormat::Jpeg };
    if !out.contains(&last) {
        out.push(last);
    }
    out
}

/// Whether the client takes `format` as the URL's own bytes: listed, or matched by `image/*`
/// or `*/*` (unlike [`accepts`], where wildcards do not opt in to a format the edge would
/// choose), or sent no `Accept` at all.
pub fn accepts_as_original(accept: &str, format: OutputFormat) -> bool {
    accept.trim().is_empty() || q_for(accept, format.media_type()) > 0.0
}

/// The `Accept` bucket for the cache key: which modern formats the client takes. Four values
/// instead of every browser's spelling of `Accept`.
pub fn accept_bucket(accept: &str) -> &'static str {
    match (accepts(accept, OutputFormat::Avif), accepts(accept, OutputFormat::Webp)) {
        (true, true) => "avif+webp",
        (true, false) => "avif",
        (false, true) => "webp",
        (false, false) => "legacy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutputFormat::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const SAFARI_OLD: &str = "image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const CURL: &str = "*/*";

    #[test]
    fn accept_parsing() {
        assert!(accepts(CHROME, Avif) && accepts(CHROME, Webp) && accepts(CHROME, Jpeg));
        assert!(!accepts(SAFARI_OLD, Avif) && accepts(SAFARI_OLD, Webp));
        assert!(!accepts(CURL, Avif) && !accepts(CURL, Webp) && accepts(CURL, Jpeg), "wildcards do not opt in to new formats");
        assert!(!accepts("image/avif;q=0, image/*", Avif));
        assert!(!accepts("image/jpeg;q=0, image/png", Jpeg));
        assert!(accepts("", Jpeg), "no Accept: anything");
        assert_eq!(accept_bucket(CHROME), "avif+webp");
        assert_eq!(accept_bucket(SAFARI_OLD), "webp");
        assert_eq!(accept_bucket(CURL), "legacy");
    }

    #[test]
    fn candidates_end_with_the_source() {
        assert_eq!(candidates(FormatRequest::Auto, CHROME, Jpeg, false), [Avif, Webp, Jpeg]);
        assert_eq!(candidates(FormatRequest::Auto, SAFARI_OLD, Jpeg, false), [Webp, Jpeg], "lossy WebP for photos too");
        assert_eq!(candidates(FormatRequest::Auto, CHROME, Png, true), [Avif, Webp, Png]);
        assert_eq!(candidates(FormatRequest::Auto, CURL, Jpeg, false), [Jpeg]);
        assert_eq!(candidates(FormatRequest::Webp, CURL, Jpeg, false), [Webp, Jpeg], "an explicit format is honoured");
        assert_eq!(candidates(FormatRequest::Jpeg, CHROME, Png, true), [Png], "JPEG cannot carry alpha");
        assert_eq!(candidates(FormatRequest::Auto, CURL, Webp, false), [Jpeg], "a WebP source for a client without WebP");
        assert_eq!(candidates(FormatRequest::Auto, CURL, Webp, true), [Png]);
    }
}
