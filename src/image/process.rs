//! The image pipeline: probe the header (size and pixel limits before any decoding), decode,
//! honour EXIF orientation, resize, encode each negotiated candidate and keep the smallest,
//! or hand back the original bytes when nothing beats them. Pure: bytes in, bytes out; the
//! caller times it.

use super::exif;
use super::geometry::{self, Geometry};
use super::negotiate::{self, OutputFormat};
use super::params::{ImageParams, Metadata};
use image::codecs::avif::AvifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits, RgbaImage};
use std::io::Cursor;

/// Engine settings (`[vars.EDGELAYER.images]`); see [`ImageSettings::default`] for the
/// defaults and BENCHMARKS.md for the measurements behind the AVIF ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSettings {
    /// Largest source accepted, in bytes (default 16 MiB).
    pub max_source_bytes: u64,
    /// Largest source accepted, in pixels, read from the header before decoding (default 12.6 MP,
    /// 4096×3072: a 12 MP JPEG peaks at 54 MB baseline, 75 MB progressive, while a 14.7 MP
    /// progressive one reached 140 MB, over the Workers 128 MB limit; see BENCHMARKS.md).
    pub max_source_pixels: u64,
    /// JPEG quality when the URL sets none (default 85, Cloudflare's).
    pub jpeg_quality: u8,
    /// AVIF quality when the URL sets none (default 70: about 0.4× the bytes of JPEG q85 on
    /// our photo set; see [`avif_quality_for`]).
    pub avif_quality: u8,
    /// AVIF encoder speed 1..=10 (default 10: the only speed affordable per request in a
    /// Worker; output is cached per variant).
    pub avif_speed: u8,
    /// AVIF is only tried when neither output side exceeds this (default 1200, Cloudflare's cap).
    pub avif_max_side: u32,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self { max_source_bytes: 16 << 20, max_source_pixels: 12_600_000, jpeg_quality: 85, avif_quality: 70, avif_speed: 10, avif_max_side: 1200 }
    }
}

/// Why an image could not be produced; each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The source is larger than `max_source_bytes`.
    #[error("the source image is {0} bytes; the limit is {1}")]
    SourceTooLarge(u64, u64),
    /// The header declares more than `max_source_pixels` (a decompression bomb, or just huge).
    #[error("the source image is {0}x{1} pixels; the limit is {2} pixels")]
    TooManyPixels(u32, u32, u64),
    /// Not a format the edge decodes (JPEG, PNG, GIF, WebP).
    #[error("the source is not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    /// The source claims a supported format but does not decode.
    #[error("the source image could not be decoded: {0}")]
    Decode(String),
    /// An encoder failed.
    #[error("the image could not be encoded: {0}")]
    Encode(String),
}

impl ImageError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::SourceTooLarge(..) | Self::TooManyPixels(..) => 413,
            Self::Unsupported => 415,
            Self::Decode(_) => 422,
            Self::Encode(_) => 500,
        }
    }
}

/// One encoded candidate and its size, for the response header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// Its format.
    pub format: OutputFormat,
    /// Its size in bytes.
    pub bytes: usize,
}

/// What the pipeline produced.
#[derive(Debug)]
pub enum Outcome {
    /// A new encoding, smaller than the source.
    Encoded {
        /// The bytes.
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
        reason: &'static str,
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

/// What the header says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The container format.
    pub format: ImageFormat,
    /// Width as stored (before EXIF orientation).
    pub width: u32,
    /// Height as stored.
    pub height: u32,
}

/// Reads format and dimensions from the header and enforces the byte and pixel limits.
pub fn probe(source: &[u8], settings: &ImageSettings) -> Result<Probe, ImageError> {
    if source.len() as u64 > settings.max_source_bytes {
        return Err(ImageError::SourceTooLarge(source.len() as u64, settings.max_source_bytes));
    }
    let reader = ImageReader::new(Cursor::new(source)).with_guessed_format().map_err(|e| ImageError::Decode(e.to_string()))?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)) => f,
        _ => return Err(ImageError::Unsupported),
    };
    let (width, height) = reader.into_dimensions().map_err(|e| ImageError::Decode(e.to_string()))?;
    if u64::from(width) * u64::from(height) > settings.max_source_pixels {
        return Err(ImageError::TooManyPixels(width, height, settings.max_source_pixels));
    }
    Ok(Probe { format, width, height })
}

/// Whether the source holds more than one frame (GIF, APNG, animated WebP).
fn is_animated(source: &[u8], format: ImageFormat) -> Result<bool, ImageError> {
    let decode = |e: image::ImageError| ImageError::Decode(e.to_string());
    Ok(match format {
        ImageFormat::Gif => image::codecs::gif::GifDecoder::new(Cursor::new(source)).map_err(decode)?.into_frames().take(2).count() > 1,
        ImageFormat::Png => image::codecs::png::PngDecoder::new(Cursor::new(source)).map_err(decode)?.is_apng().map_err(decode)?,
        ImageFormat::WebP => image::codecs::webp::WebPDecoder::new(Cursor::new(source)).map_err(decode)?.has_animation(),
        _ => false,
    })
}

/// A decoded, oriented image with what the encoders may carry over.
struct Decoded {
    image: DynamicImage,
    icc: Option<Vec<u8>>,
    exif: Option<Vec<u8>>,
}

fn decode(source: &[u8], probe: &Probe) -> Result<Decoded, ImageError> {
    let err = |e: image::ImageError| ImageError::Decode(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(source));
    reader.set_format(probe.format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(probe.width);
    limits.max_image_height = Some(probe.height);
    // Room for a 16-bit RGBA decode plus the decoder's own buffers, and no more.
    limits.max_alloc = Some(u64::from(probe.width) * u64::from(probe.height) * 8 + (16 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(err)?;
    let orientation = decoder.orientation().map_err(err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let exif = decoder.exif_metadata().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(err)?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, icc, exif })
}

/// Eight bits per channel, and no alpha channel when every pixel is opaque (so JPEG and
/// smaller encodings qualify).
fn normalise(image: DynamicImage) -> DynamicImage {
    let opaque = |img: &DynamicImage| match img {
        DynamicImage::ImageLumaA8(b) => b.pixels().all(|p| p.0[1] == u8::MAX),
        DynamicImage::ImageRgba8(b) => b.pixels().all(|p| p.0[3] == u8::MAX),
        DynamicImage::ImageLumaA16(b) => b.pixels().all(|p| p.0[1] == u16::MAX),
        DynamicImage::ImageRgba16(b) => b.pixels().all(|p| p.0[3] == u16::MAX),
        DynamicImage::ImageRgba32F(b) => b.pixels().all(|p| p.0[3] >= 1.0),
        _ => true,
    };
    let grey = matches!(image, DynamicImage::ImageLuma8(_) | DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_));
    match (grey, opaque(&image)) {
        (true, true) if matches!(image, DynamicImage::ImageLuma8(_)) => image,
        (true, true) => DynamicImage::ImageLuma8(image.to_luma8()),
        (true, false) if matches!(image, DynamicImage::ImageLumaA8(_)) => image,
        (true, false) => DynamicImage::ImageLumaA8(image.to_luma_alpha8()),
        (false, true) if matches!(image, DynamicImage::ImageRgb8(_)) => image,
        (false, true) => DynamicImage::ImageRgb8(image.to_rgb8()),
        (false, false) if matches!(image, DynamicImage::ImageRgba8(_)) => image,
        (false, false) => DynamicImage::ImageRgba8(image.to_rgba8()),
    }
}

/// Resizes as planned, with a Lanczos3 convolution in `fast_image_resize` (8-bit
/// intermediates: memory stays near the size of the output, where the `image` crate's own
/// resize holds a 16-byte-per-pixel float copy), then crops or pads.
fn resize(image: DynamicImage, plan: &Geometry, background: [u8; 4]) -> Result<DynamicImage, ImageError> {
    let mut out = image;
    if (plan.scaled_width, plan.scaled_height) != (out.width(), out.height()) {
        let mut dst = DynamicImage::new(plan.scaled_width, plan.scaled_height, out.color());
        let options = fast_image_resize::ResizeOptions::new().resize_alg(fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3));
        fast_image_resize::Resizer::new().resize(&out, &mut dst, &options).map_err(|e| ImageError::Decode(format!("resize: {e}")))?;
        out = dst;
    }
    if let Some((x, y, cw, ch)) = plan.crop {
        out = out.crop_imm(x, y, cw, ch);
    }
    if let Some((cw, ch, x, y)) = plan.pad {
        let mut canvas = RgbaImage::from_pixel(cw, ch, image::Rgba(background));
        image::imageops::overlay(&mut canvas, &out.to_rgba8(), i64::from(x), i64::from(y));
        out = DynamicImage::ImageRgba8(canvas);
    }
    Ok(out)
}

/// Encodes `image` as `format` (`quality` on the JPEG scale; `None`: the settings' default). `icc` and `exif` go along where the format carries them.
pub fn encode(image: &DynamicImage, format: OutputFormat, quality: Option<u8>, settings: &ImageSettings, icc: Option<&[u8]>, exif: Option<&[u8]>) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let err = |e: image::ImageError| ImageError::Encode(e.to_string());
    let (w, h) = (image.width(), image.height());
    let with_meta = |enc: &mut dyn ImageEncoder| {
        if let Some(p) = icc {
            let _ = enc.set_icc_profile(p.to_vec());
        }
        if let Some(e) = exif {
            let _ = enc.set_exif_metadata(e.to_vec());
        }
    };
    match format {
        OutputFormat::Jpeg => {
            // JPEG has no alpha: flatten onto white (only reached for explicit format=jpeg).
            let flat;
            let img = if image.color().has_alpha() {
                flat = DynamicImage::ImageRgb8(flatten(image));
                &flat
            } else {
                image
            };
            let mut enc = JpegEncoder::new_with_quality(&mut out, quality.unwrap_or(settings.jpeg_quality));
            with_meta(&mut enc);
            enc.write_image(img.as_bytes(), w, h, img.color().into()).map_err(err)?;
        }
        OutputFormat::Png => {
            let mut enc = PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive);
            with_meta(&mut enc);
            enc.write_image(image.as_bytes(), w, h, image.color().into()).map_err(err)?;
        }
        OutputFormat::Webp => {
            let mut enc = WebPEncoder::new_lossless(&mut out);
            with_meta(&mut enc);
            enc.write_image(image.as_bytes(), w, h, image.color().into()).map_err(err)?;
        }
        OutputFormat::Avif => {
            let converted;
            let img = match image {
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
                i => {
                    converted = if i.color().has_alpha() { DynamicImage::ImageRgba8(i.to_rgba8()) } else { DynamicImage::ImageRgb8(i.to_rgb8()) };
                    &converted
                }
            };
            let q = quality.map_or(settings.avif_quality, avif_quality_for);
            let mut enc = AvifEncoder::new_with_speed_quality(&mut out, settings.avif_speed, q).with_num_threads(Some(1));
            if let Some(e) = exif {
                let _ = enc.set_exif_metadata(e.to_vec());
            }
            enc.write_image(img.as_bytes(), w, h, img.color().into()).map_err(err)?;
        }
    }
    Ok(out)
}

/// Maps a URL quality (JPEG scale) to the AVIF encoder's (q − 15, so the default q85 maps to
/// the default AVIF 70). ravif's scale runs lower than libjpeg's for the same look; the
/// offset follows cavif's advice and our SSIM table in BENCHMARKS.md.
pub fn avif_quality_for(jpeg_quality: u8) -> u8 {
    jpeg_quality.saturating_sub(15).max(1)
}

fn flatten(image: &DynamicImage) -> image::RgbImage {
    let rgba = image.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    })
}

/// Whether an ICC profile is sRGB, by its description (every common sRGB profile names itself
/// "sRGB"; wide-gamut ones say "Display P3", "Adobe RGB", ...).
fn is_srgb_profile(icc: &[u8]) -> bool {
    icc.windows(4).any(|w| w == b"sRGB") || icc.windows(8).any(|w| w == b"s\0R\0G\0B\0")
}

fn source_format(format: ImageFormat) -> OutputFormat {
    match format {
        ImageFormat::Jpeg => OutputFormat::Jpeg,
        ImageFormat::WebP => OutputFormat::Webp,
        _ => OutputFormat::Png,
    }
}

/// A decoded, oriented, resized image ready for the encoders.
pub struct Prepared {
    /// The pixels (8 bits per channel; alpha only when some pixel is not opaque).
    pub image: DynamicImage,
    /// What the header said.
    pub probe: Probe,
    /// Source dimensions after orientation.
    pub source: (u32, u32),
    /// The source's ICC profile, carried over where the format allows.
    pub icc: Option<Vec<u8>>,
    /// The EXIF block to write (`metadata` option), if any.
    pub exif: Option<Vec<u8>>,
}

/// Probes, decodes, orients and resizes; `Ok(None)` for an animation to pass through.
pub fn prepare(source: &[u8], params: &ImageParams, settings: &ImageSettings) -> Result<Option<Prepared>, ImageError> {
    let probe = probe(source, settings)?;
    if is_animated(source, probe.format)? && !params.first_frame {
        return Ok(None);
    }
    let Decoded { image, icc, exif } = decode(source, &probe)?;
    let src_dims = (image.width(), image.height());
    let image = normalise(image);
    let plan = geometry::plan(src_dims.0, src_dims.1, params);
    let image = resize(image, &plan, params.background)?;
    let exif = match params.metadata {
        Metadata::None => None,
        Metadata::Copyright => exif.as_deref().and_then(|e| exif::keep(e, exif::COPYRIGHT_TAGS)),
        Metadata::Keep => exif.as_deref().and_then(|e| exif::keep(e, exif::KEEP_TAGS)),
    };
    Ok(Some(Prepared { image, probe, source: src_dims, icc, exif }))
}

/// Runs the pipeline. `accept` is the client's `Accept` header ("" when absent).
pub fn process(source: &[u8], params: &ImageParams, accept: &str, settings: &ImageSettings) -> Result<Outcome, ImageError> {
    let Some(Prepared { image, probe, source: src_dims, icc, exif }) = prepare(source, params, settings)? else {
        return Ok(Outcome::Original { reason: "animated", tried: Vec::new() });
    };
    let (width, height) = (image.width(), image.height());
    let has_alpha = image.color().has_alpha();
    let src_fmt = source_format(probe.format);
    let mut formats = negotiate::candidates(params.format, accept, src_fmt, has_alpha);
    // AVIF is expensive (capped by size) and cannot carry an ICC profile here: a source with
    // a non-sRGB profile (Display P3, Adobe RGB) would change colour, so it gets no AVIF.
    formats.retain(|f| *f != OutputFormat::Avif || (width.max(height) <= settings.avif_max_side && icc.as_deref().is_none_or(is_srgb_profile)));
    if formats.is_empty() {
        formats.push(if has_alpha { OutputFormat::Png } else { OutputFormat::Jpeg });
    }
    // GIFs are read by every client; other sources only when the client takes their format.
    let original_ok = probe.format == ImageFormat::Gif || negotiate::accepts(accept, src_fmt);

    let mut best: Option<(Vec<u8>, OutputFormat)> = None;
    let mut tried = Vec::new();
    for format in formats {
        let bytes = encode(&image, format, params.quality, settings, icc.as_deref(), exif.as_deref())?;
        tried.push(Tried { format, bytes: bytes.len() });
        if best.as_ref().is_none_or(|(b, _)| bytes.len() < b.len()) {
            best = Some((bytes, format));
        }
    }
    let Some((bytes, format)) = best else { return Ok(Outcome::Original { reason: "no candidate", tried }) };
    if original_ok && bytes.len() >= source.len() {
        return Ok(Outcome::Original { reason: "not smaller than the source", tried });
    }
    Ok(Outcome::Encoded { bytes, format, width, height, source: src_dims, tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_profiles_are_recognised_by_name() {
        assert!(is_srgb_profile(b"....desc....sRGB IEC61966-2.1...."));
        assert!(is_srgb_profile(b"mluc....s\0R\0G\0B\0"), "UTF-16 descriptions (v4 profiles)");
        assert!(!is_srgb_profile(b"....desc....Display P3...."));
        assert!(!is_srgb_profile(b""));
    }

    #[test]
    fn describes_what_was_done() {
        let tried = vec![Tried { format: OutputFormat::Avif, bytes: 900 }, Tried { format: OutputFormat::Jpeg, bytes: 1200 }];
        let enc = Outcome::Encoded { bytes: vec![0; 900], format: OutputFormat::Avif, width: 256, height: 171, source: (600, 400), tried: tried.clone() };
        assert_eq!(enc.describe("jpeg", 5000, 12.4), "source=jpeg;600x400;5000 output=avif;256x171;900 tried=avif:900,jpeg:1200 ms=12");
        let orig = Outcome::Original { reason: "animated", tried: Vec::new() };
        assert_eq!(orig.describe("gif", 700, 0.0), "original=gif;700 reason=\"animated\" tried= ms=0");
        assert_eq!(describe_error(&ImageError::Unsupported, "svg+xml", 10, 1.0), "original=svg+xml;10 error=\"the source is not a JPEG, PNG, GIF or WebP image\" ms=1");
    }

    #[test]
    fn avif_quality_follows_the_url_quality() {
        assert_eq!(avif_quality_for(85), ImageSettings::default().avif_quality);
        assert_eq!(avif_quality_for(10), 1, "never zero");
    }
}
