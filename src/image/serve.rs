//! What the edge answers for an image request around the pipeline itself: whether the source
//! answer is processed at all, what an oversized source gets, and the headers of the result.

use super::outcome::ImageError;
use crate::error::EdgeError;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// The response header that says what was done.
pub const IMAGE_HEADER: &str = "x-edgelayer-image";

/// The response header that says which URL options were snapped to the ladder or ignored.
pub const OPTIONS_HEADER: &str = "x-edgelayer-image-options";

/// Headers of the source that a new encoding does not inherit (the original bytes keep them).
const SOURCE_ONLY: [HeaderName; 6] = [header::CONTENT_LENGTH, header::CONTENT_TYPE, header::CONTENT_ENCODING, header::ETAG, header::LAST_MODIFIED, header::CONTENT_RANGE];

/// What becomes of the origin's answer for the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceVerdict {
    /// A 200 image: read it (bounded) and process it.
    Process,
    /// Not ours to change (an `auto` rule and not a 200 raster image): the origin's answer as
    /// the normal proxy path would send it, with this `Cache-Status` detail.
    PassThrough(&'static str),
    /// A `/cdn-cgi/image/` URL whose source is unusable.
    Fail(EdgeError),
}

/// Judges the source answer (`auto`: the request came from an `images = "auto"` rule).
pub fn judge_source(status: u16, headers: &HeaderMap, auto: bool, source_path: &str) -> SourceVerdict {
    let is_image = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.trim_start().starts_with("image/") && !t.contains("svg"));
    match (status, auto) {
        (200, true) if is_image => SourceVerdict::Process,
        (_, true) => SourceVerdict::PassThrough("not an image"),
        (200, false) => SourceVerdict::Process,
        (404 | 410, false) => SourceVerdict::Fail(EdgeError::Client(status, format!("image source {source_path} not found"))),
        (s, false) if s >= 500 => SourceVerdict::Fail(EdgeError::Upstream(502, format!("image source failed (origin answered {s})"))),
        (s, false) => SourceVerdict::Fail(EdgeError::Upstream(502, format!("image source not usable (origin answered {s})"))),
    }
}

/// Whether the source bytes themselves answer when processing is not possible (an `auto`
/// rule, or `images.onerror = "original"`); otherwise the error does.
pub fn original_on_error(auto: bool, onerror_original: bool) -> bool {
    auto || onerror_original
}

/// The answer to a source over the byte limit: `Ok` to stream the original through
/// (`Cache-Status` detail `image too large`), else 413.
pub fn too_large(auto: bool, onerror_original: bool, size: u64, limit: u64) -> Result<(), EdgeError> {
    if original_on_error(auto, onerror_original) {
        Ok(())
    } else {
        Err(EdgeError::Client(413, ImageError::SourceTooLarge(size, limit).to_string()))
    }
}

/// The headers of a processed answer: for a new encoding, the source's body headers go and a
/// strong `ETag` of the new bytes comes; always the media type, the length and the note.
pub fn output_headers(headers: &mut HeaderMap, body: &[u8], media: HeaderValue, encoded: bool, note: &str) {
    if encoded {
        for h in &SOURCE_ONLY {
            headers.remove(h);
        }
        let digest = Sha256::digest(body);
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..12]))) {
            headers.insert(header::ETAG, v);
        }
    }
    headers.insert(header::CONTENT_TYPE, media);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Ok(v) = HeaderValue::from_str(note) {
        headers.insert(HeaderName::from_static(IMAGE_HEADER), v);
    }
}

/// The `Vary` value of an image answer: `Accept` always (the format is negotiated), and the
/// client-hint headers when `width=auto` read them.
pub fn vary(client_hints: bool) -> HeaderValue {
    if client_hints {
        HeaderValue::from_static("Accept, Sec-CH-Width, Sec-CH-Viewport-Width, Viewport-Width, Sec-CH-DPR, DPR")
    } else {
        HeaderValue::from_static("Accept")
    }
}

/// The `X-Edgelayer-Image-Options` value for the notes [`super::params::parse`] left; `None`
/// when the URL was taken as written.
pub fn options_note(notes: &[String]) -> Option<HeaderValue> {
    if notes.is_empty() {
        return None;
    }
    HeaderValue::from_str(&notes.join("; ")).ok()
}

/// Whether an error answer becomes a redirect to the source (`onerror=redirect`, Cloudflare's
/// option): for failures to produce the image (too large, undecodable, a failing source), not
/// for a refused request (400, 403, 405) or a source that is not there (404, 410).
pub fn redirects_on_error(onerror_redirect: bool, status: u16) -> bool {
    onerror_redirect && !matches!(status, 400 | 403 | 404 | 405 | 410)
}

/// The source's format for the note (`jpeg`, `png`, ...).
pub fn source_format_name(headers: &HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map_or("unknown", |t| t.split(';').next().unwrap_or(t).trim().trim_start_matches("image/")).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(t: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
        h
    }

    #[test]
    fn sources_are_judged_by_status_type_and_origin_of_the_request() {
        assert_eq!(judge_source(200, &ct("image/jpeg"), true, "/a"), SourceVerdict::Process);
        assert_eq!(judge_source(200, &ct("image/svg+xml"), true, "/a"), SourceVerdict::PassThrough("not an image"));
        assert_eq!(judge_source(304, &ct("image/png"), true, "/a"), SourceVerdict::PassThrough("not an image"));
        let SourceVerdict::Fail(e) = judge_source(404, &ct("text/html"), false, "/a") else { panic!() };
        assert_eq!((e.status(), e.to_string()), (404, "image source /a not found".to_owned()));
        let SourceVerdict::Fail(e) = judge_source(503, &HeaderMap::new(), false, "/a") else { panic!() };
        assert_eq!(e.status(), 502);
        assert!(too_large(true, false, 10, 5).is_ok() && too_large(false, true, 10, 5).is_ok());
        assert_eq!(too_large(false, false, 10, 5).unwrap_err().status(), 413);
    }

    #[test]
    fn vary_notes_and_redirects() {
        assert_eq!(vary(false), "Accept");
        assert!(vary(true).to_str().unwrap().contains("Sec-CH-Width"));
        assert!(options_note(&[]).is_none());
        assert_eq!(options_note(&["w=300 snapped to 256".into(), "trim ignored".into()]).unwrap(), "w=300 snapped to 256; trim ignored");
        assert!(redirects_on_error(true, 413) && redirects_on_error(true, 422) && redirects_on_error(true, 502));
        assert!(!redirects_on_error(true, 403) && !redirects_on_error(true, 404) && !redirects_on_error(false, 422));
    }

    #[test]
    fn a_new_encoding_gets_its_own_etag_and_length() {
        let mut h = ct("image/jpeg");
        h.insert(header::ETAG, HeaderValue::from_static("\"src\""));
        h.insert(header::LAST_MODIFIED, HeaderValue::from_static("x"));
        output_headers(&mut h, b"avif", HeaderValue::from_static("image/avif"), true, "output=avif");
        assert_eq!(h[header::CONTENT_TYPE], "image/avif");
        assert_eq!(h[header::CONTENT_LENGTH], "4");
        assert_ne!(h[header::ETAG], "\"src\"");
        assert!(h.get(header::LAST_MODIFIED).is_none());
        let mut orig = ct("image/jpeg");
        orig.insert(header::ETAG, HeaderValue::from_static("\"src\""));
        output_headers(&mut orig, b"jpeg", HeaderValue::from_static("image/jpeg"), false, "output=original");
        assert_eq!(orig[header::ETAG], "\"src\"", "the original keeps its validators");
        assert_eq!(source_format_name(&ct("image/png; q=1")), "png");
    }
}
