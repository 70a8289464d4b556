//! The image pipeline: probe the header (size and pixel limits before any decoding), decode,
//! honour EXIF orientation, resize, encode each negotiated candidate and keep the smallest,
//! or hand back the original bytes when nothing beats them. Pure: bytes in, bytes out; the
//! caller times it.

use super::exif;
use super::geometry::{self, Geometry};
use super::negotiate::{self, OutputFormat};
pub use super::params::JpegMode;
use super::params::{Fit, Flip, Gravity, ImageParams, Metadata};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits, RgbaImage};
use std::io::Cursor;
pub use super::outcome::{describe_error, ImageError, ImageSettings, Outcome, Tried};

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
        Some(ImageFormat::Avif) => return Err(ImageError::AvifSource),
        _ if is_avif(source) => return Err(ImageError::AvifSource),
        _ => return Err(ImageError::Unsupported),
    };
    if format == ImageFormat::Jpeg && !jpeg_is_complete(source) {
        return Err(ImageError::Truncated);
    }
    let (width, height) = reader.into_dimensions().map_err(|e| ImageError::Decode(e.to_string()))?;
    if u64::from(width) * u64::from(height) > settings.max_source_pixels {
        return Err(ImageError::TooManyPixels(width, height, settings.max_source_pixels));
    }
    Ok(Probe { format, width, height })
}

/// Whether the bytes are an AVIF file (an ISO-BMFF `ftyp` box with an AVIF brand).
fn is_avif(source: &[u8]) -> bool {
    source.get(4..8) == Some(b"ftyp") && source.get(8..source.len().min(64)).is_some_and(|b| b.windows(4).any(|w| w == b"avif" || w == b"avis"))
}

/// Whether a JPEG has its end-of-image marker after its last start-of-scan: a file cut inside
/// its image data decodes without error into a partly grey picture, so the cut is caught here.
/// (`FF D9` cannot occur inside entropy-coded data, where every `FF` is followed by `00` or a
/// restart marker; an EXIF thumbnail's own markers come before the main scans.)
fn jpeg_is_complete(source: &[u8]) -> bool {
    let last_sos = source.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_eoi = source.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    match (last_sos, last_eoi) {
        (Some(sos), Some(eoi)) => eoi > sos,
        (None, _) => true, // cut inside the headers: the decoder reports that itself
        (Some(_), None) => false,
    }
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

/// The source's size once its EXIF orientation is applied, read from the header.
fn upright_size(source: &[u8], probe: &Probe) -> Result<(u32, u32), ImageError> {
    use image::metadata::Orientation::{Rotate270, Rotate270FlipH, Rotate90, Rotate90FlipH};
    let err = |e: image::ImageError| ImageError::Decode(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(source));
    reader.set_format(probe.format);
    let orientation = reader.into_decoder().map_err(err)?.orientation().map_err(err)?;
    let quarter = matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH);
    Ok(if quarter { (probe.height, probe.width) } else { (probe.width, probe.height) })
}

/// Shrink-on-load: the power of two (1, 2, 4 or 8) a JPEG can be decoded smaller by, in the
/// DCT domain, for this request, as libvips and Pillow's `draft` do. The decoded image stays at
/// least [`SHRINK_HEADROOM`] times the size the resize goes to, so the Lanczos step still has
/// pixels to work with; 1 when the URL keeps the full size, crops or pads from it.
pub fn jpeg_shrink(upright: (u32, u32), params: &ImageParams) -> u32 {
    let (sw, sh) = params.turned(upright);
    let plan = geometry::plan(sw, sh, params);
    let factor = (f64::from(sw) / f64::from(plan.scaled_width.max(1))).min(f64::from(sh) / f64::from(plan.scaled_height.max(1)));
    [8, 4, 2].into_iter().find(|s| f64::from(*s) * SHRINK_HEADROOM <= factor).unwrap_or(1)
}

/// How much larger than the resize target a shrunk decode stays (see [`jpeg_shrink`]), as in
/// libvips: at 1× (Pillow's `draft`), a 2560-pixel photo shrunk to 1280 then resized to 1200
/// lost up to 0.012 SSIM against a full-size resize (the scaled DCT leaves aliasing a small
/// resize cannot remove); at 2× no photo lost more than 0.0007. BENCHMARKS.md, "Images".
pub const SHRINK_HEADROOM: f64 = 2.0;

/// Decodes a JPEG at 1/`shrink` of its size with `jpeg-decoder`'s scaled inverse DCT; `None`
/// for what it does not produce directly (CMYK, 16-bit), which the full decoder handles.
fn decode_jpeg_scaled(source: &[u8], probe: &Probe, shrink: u32) -> Result<Option<Decoded>, ImageError> {
    let err = |e: jpeg_decoder::Error| ImageError::Decode(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(source));
    decoder.read_info().map_err(err)?;
    // CMYK and 16-bit are left to the full decoder before any pixel is decoded here.
    let Some(format) = decoder.info().map(|i| i.pixel_format) else { return Ok(None) };
    if !matches!(format, jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::RGB24) {
        return Ok(None);
    }
    let want = |side: u32| u16::try_from(side.div_ceil(shrink)).unwrap_or(u16::MAX);
    let (w, h) = decoder.scale(want(probe.width), want(probe.height)).map_err(err)?;
    // Room for the scaled pixels and the coefficients of a progressive file, and no more.
    decoder.set_max_decoding_buffer_size(usize::try_from(u64::from(probe.width) * u64::from(probe.height) * 8 + (16 << 20)).unwrap_or(usize::MAX));
    let pixels = decoder.decode().map_err(err)?;
    let (w, h) = (u32::from(w), u32::from(h));
    let image = match format {
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    let Some(mut image) = image else { return Ok(None) };
    let exif = decoder.exif_data().map(<[u8]>::to_vec);
    if let Some(orientation) = exif.as_deref().and_then(image::metadata::Orientation::from_exif_chunk) {
        image.apply_orientation(orientation);
    }
    Ok(Some(Decoded { image, icc: decoder.icc_profile(), exif }))
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
fn resize(image: DynamicImage, plan: &mut Geometry, params: &ImageParams) -> Result<DynamicImage, ImageError> {
    let background = params.background;
    let mut out = image;
    if (plan.scaled_width, plan.scaled_height) != (out.width(), out.height()) {
        let mut dst = DynamicImage::new(plan.scaled_width, plan.scaled_height, out.color());
        let options = fast_image_resize::ResizeOptions::new().resize_alg(fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3));
        fast_image_resize::Resizer::new().resize(&out, &mut dst, &options).map_err(|e| ImageError::Decode(format!("resize: {e}")))?;
        out = dst;
    }
    if let Some((x, y, cw, ch)) = plan.crop {
        let (x, y) = if params.gravity == Gravity::Auto && matches!(params.fit, Fit::Cover | Fit::Crop) { super::saliency::best_crop(&out, cw, ch) } else { (x, y) };
        out = out.crop_imm(x, y, cw, ch);
    }
    if let Some((cw, ch, x, y)) = plan.pad {
        let mut canvas = RgbaImage::from_pixel(cw, ch, image::Rgba(background));
        image::imageops::overlay(&mut canvas, &out.to_rgba8(), i64::from(x), i64::from(y));
        out = DynamicImage::ImageRgba8(canvas);
    }
    Ok(out)
}

/// Encodes `image` as `format` (`quality` on the JPEG scale; `None`: the settings' default;
/// `jpeg`: how a JPEG is written). `icc` and `exif` go along where the format carries them.
pub fn encode(image: &DynamicImage, format: OutputFormat, quality: Option<u8>, jpeg: JpegMode, settings: &ImageSettings, icc: Option<&[u8]>, exif: Option<&[u8]>) -> Result<Vec<u8>, ImageError> {
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
            out = encode_jpeg(img, quality.unwrap_or(settings.jpeg_quality), jpeg, icc, exif)?;
        }
        OutputFormat::Png => {
            let mut enc = PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive);
            with_meta(&mut enc);
            enc.write_image(image.as_bytes(), w, h, image.color().into()).map_err(err)?;
        }
        OutputFormat::Gif => {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.encode(&image.to_rgba8(), w, h, image::ExtendedColorType::Rgba8).map_err(err)?;
        }
        OutputFormat::Webp => out = super::webp::encode(image, quality.unwrap_or(settings.jpeg_quality), exif).map_err(ImageError::Encode)?,
        OutputFormat::Avif => {
            let q = quality.map_or(settings.avif_quality, avif_quality_for);
            out = super::avif::encode(image, q, settings.avif_speed, exif).map_err(ImageError::Encode)?;
        }
    }
    Ok(out)
}

/// JPEG with `jpeg-encoder`: optimised Huffman tables, 4:2:0 chroma (Pillow's and libjpeg's
/// default) and, unless `mode` says baseline, progressive scans (`cjpeg -progressive
/// -optimize`). The tables change only how the same quantised pixels are coded.
fn encode_jpeg(image: &DynamicImage, quality: u8, mode: JpegMode, icc: Option<&[u8]>, exif: Option<&[u8]>) -> Result<Vec<u8>, ImageError> {
    let (Ok(w), Ok(h)) = (u16::try_from(image.width()), u16::try_from(image.height())) else {
        return Err(ImageError::Encode("JPEG is limited to 65,535 pixels a side".into()));
    };
    let converted;
    let (data, colour) = match image {
        DynamicImage::ImageLuma8(i) => (i.as_raw().as_slice(), jpeg_encoder::ColorType::Luma),
        DynamicImage::ImageRgb8(i) => (i.as_raw().as_slice(), jpeg_encoder::ColorType::Rgb),
        other => {
            converted = other.to_rgb8();
            (converted.as_raw().as_slice(), jpeg_encoder::ColorType::Rgb)
        }
    };
    let mut out = Vec::new();
    let err = |e: jpeg_encoder::EncodingError| ImageError::Encode(e.to_string());
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_progressive(mode == JpegMode::Progressive);
    enc.set_optimized_huffman_tables(true);
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    if let Some(e) = exif {
        // An APP1 EXIF segment: "Exif\0\0", then the TIFF data the source carried.
        let mut segment = b"Exif\0\0".to_vec();
        segment.extend_from_slice(e);
        let _ = enc.add_app_segment(1, segment); // too large: left out
    }
    if let Some(p) = icc {
        let _ = enc.add_icc_profile(p);
    }
    enc.encode(data, w, h, colour).map_err(err)?;
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
    /// What became of the source's colour profile (outputs carry none: they are sRGB).
    pub colour: super::icc::Conversion,
    /// The EXIF block to write (`metadata` option), if any.
    pub exif: Option<Vec<u8>>,
}

/// The URL's operations on decoded, upright pixels, in Cloudflare's order: rotate and flip
/// (the requested box is for the turned image), resize (crop, pad), blur, sharpen. Also
/// returns the turned size (the "source" the box was applied to). `full`: the source's
/// upright size when `image` was decoded smaller ([`jpeg_shrink`]), so the output is planned
/// as from the full image and comes out the same size.
pub(super) fn apply_operations(image: DynamicImage, params: &ImageParams, full: Option<(u32, u32)>) -> Result<(DynamicImage, (u32, u32)), ImageError> {
    let image = match params.rotate {
        90 => image.rotate90(),
        180 => image.rotate180(),
        270 => image.rotate270(),
        _ => image,
    };
    let image = match params.flip {
        Flip::None => image,
        Flip::Horizontal => image.fliph(),
        Flip::Vertical => image.flipv(),
        Flip::Both => image.fliph().flipv(),
    };
    let turned = match full {
        Some(upright) => params.turned(upright),
        None => (image.width(), image.height()),
    };
    let mut plan = geometry::plan(turned.0, turned.1, params);
    let image = resize(image, &mut plan, params)?;
    let image = match params.blur {
        Some(b) => image.blur(f32::from(b) / 2.0),
        None => image,
    };
    let image = match params.sharpen {
        // Cloudflare's 0..10 onto an unsharp mask: radius up to 2.5 px, no threshold.
        Some(s) => image.unsharpen(f32::from(s) / 40.0 + 0.5, 0),
        None => image,
    };
    Ok((image, turned))
}

/// Probes, decodes, orients and resizes; `Ok(None)` for an animation to pass through.
pub fn prepare(source: &[u8], params: &ImageParams, settings: &ImageSettings) -> Result<Option<Prepared>, ImageError> {
    let probe = probe(source, settings)?;
    if is_animated(source, probe.format)? && !params.first_frame {
        return Ok(None);
    }
    let upright = upright_size(source, &probe)?;
    let shrink = if probe.format == ImageFormat::Jpeg && settings.shrink_on_load { jpeg_shrink(upright, params) } else { 1 };
    let scaled = if shrink > 1 { decode_jpeg_scaled(source, &probe, shrink)? } else { None };
    let Decoded { image, icc, exif } = match scaled {
        Some(decoded) => decoded,
        None => decode(source, &probe)?,
    };
    let mut image = normalise(image);
    let colour = super::icc::to_srgb(&mut image, icc.as_deref());
    let (image, src_dims) = apply_operations(image, params, Some(upright))?;
    // Padding with an opaque colour leaves an alpha channel with nothing in it: drop it, so the
    // image qualifies for JPEG.
    let image = normalise(image);
    let exif = match params.metadata {
        Metadata::None => None,
        Metadata::Copyright => exif.as_deref().and_then(|e| exif::keep(e, exif::COPYRIGHT_TAGS)),
        Metadata::Keep => exif.as_deref().and_then(|e| exif::keep(e, exif::KEEP_TAGS)),
    };
    Ok(Some(Prepared { image, probe, source: src_dims, colour, exif }))
}

/// The `format=json` answer, Cloudflare's shape: the output size the options give and what the
/// source is (`{"width","height","original":{"file_size","width","height","format"}}`). Read
/// from the header and the EXIF orientation only: no pixel is decoded.
pub fn describe_json(source: &[u8], params: &ImageParams, settings: &ImageSettings) -> Result<String, ImageError> {
    let probe = probe(source, settings)?;
    let oriented = upright_size(source, &probe)?;
    let (sw, sh) = params.turned(oriented);
    let plan = geometry::plan(sw, sh, params);
    let (width, height) = match (plan.pad, plan.crop) {
        (Some((w, h, ..)), _) => (w, h),
        (None, Some((_, _, w, h))) => (w, h),
        (None, None) => (plan.scaled_width, plan.scaled_height),
    };
    let media = probe.format.to_mime_type();
    Ok(format!(r#"{{"width":{width},"height":{height},"original":{{"file_size":{},"width":{},"height":{},"format":"{media}"}}}}"#, source.len(), oriented.0, oriented.1))
}

/// An animation: a GIF the URL changes is resized frame by frame (GIF is read by every client,
/// so the original answers when it is smaller); anything else goes through untouched.
fn animated(source: &[u8], params: &ImageParams, settings: &ImageSettings) -> Result<Outcome, ImageError> {
    let probe = probe(source, settings)?;
    let (sw, sh) = params.turned((probe.width, probe.height));
    let plan = geometry::plan(sw, sh, params);
    let unchanged = (plan.scaled_width, plan.scaled_height) == (sw, sh) && plan.crop.is_none() && plan.pad.is_none() && params.rotate == 0 && params.flip == Flip::None && params.blur.is_none() && params.sharpen.is_none();
    if probe.format != ImageFormat::Gif || unchanged {
        return Ok(Outcome::Original { reason: "animated".into(), tried: Vec::new() });
    }
    match super::animation::resize_gif(source, &probe, params, settings)? {
        Err(pass) => Ok(Outcome::Original { reason: pass.reason().into(), tried: Vec::new() }),
        Ok(r) => {
            let tried = vec![Tried { format: OutputFormat::Gif, bytes: r.bytes.len() }];
            if r.bytes.len() >= source.len() {
                return Ok(Outcome::Original { reason: "not smaller than the source".into(), tried });
            }
            Ok(Outcome::Encoded { width: r.width, height: r.height, bytes: r.bytes, format: OutputFormat::Gif, source: (sw, sh), tried })
        }
    }
}

/// Runs the pipeline. `accept` is the client's `Accept` header ("" when absent).
pub fn process(source: &[u8], params: &ImageParams, accept: &str, settings: &ImageSettings) -> Result<Outcome, ImageError> {
    let prepared = match prepare(source, params, settings) {
        // No AVIF decoder fits the worker: the source itself goes to a client that takes it.
        Err(ImageError::AvifSource) if negotiate::accepts_as_original(accept, OutputFormat::Avif) => return Ok(Outcome::Original { reason: "avif source (passed through)".into(), tried: Vec::new() }),
        other => other?,
    };
    let Some(Prepared { image, probe, source: src_dims, colour: _, exif }) = prepared else {
        return animated(source, params, settings);
    };
    let (width, height) = (image.width(), image.height());
    let has_alpha = image.color().has_alpha();
    let src_fmt = source_format(probe.format);
    let mut formats = negotiate::candidates(params.format, accept, src_fmt, has_alpha);
    // AVIF is expensive: capped by size (every source is sRGB by now, so colour is no bar).
    formats.retain(|f| *f != OutputFormat::Avif || width.max(height) <= settings.avif_max_side);
    if formats.is_empty() {
        formats.push(if has_alpha { OutputFormat::Png } else { OutputFormat::Jpeg });
    }
    // The original may answer whenever the client takes its type, wildcards included (they
    // name the URL's own type as much as any): then nothing larger than the source goes out.
    // GIFs are read by every client.
    let original_ok = probe.format == ImageFormat::Gif || negotiate::accepts_as_original(accept, src_fmt);

    // Most preferred first, and the first that beats the source wins: the "never larger" check
    // needs only the source's size, so the other candidates are not encoded (each AVIF or JPEG
    // encode is most of a miss's time). Without a usable original the first one wins outright.
    let mut best: Option<(Vec<u8>, OutputFormat)> = None;
    let mut tried = Vec::new();
    for format in formats {
        let bytes = encode(&image, format, params.quality, params.jpeg, settings, None, exif.as_deref())?;
        tried.push(Tried { format, bytes: bytes.len() });
        let wins = !original_ok || bytes.len() < source.len();
        if best.as_ref().is_none_or(|(b, _)| bytes.len() < b.len()) {
            best = Some((bytes, format));
        }
        if wins {
            break;
        }
    }
    let Some((bytes, format)) = best else { return Ok(Outcome::Original { reason: "no candidate".into(), tried }) };
    if original_ok && bytes.len() >= source.len() {
        return Ok(Outcome::Original { reason: "not smaller than the source".into(), tried });
    }
    Ok(Outcome::Encoded { bytes, format, width, height, source: src_dims, tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_jpegs_and_avif_sources_are_recognised() {
        assert!(jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0xD9]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 3]), "cut inside the scan");
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xD9, 0xFF, 0xDA, 1]), "a thumbnail's end marker does not count");
        assert!(jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xE0]), "cut in the headers: the decoder says so");
        assert!(is_avif(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1"));
        assert!(!is_avif(b"\0\0\0\x1cftypisom\0\0\0\0mp41"));
        assert_eq!(ImageError::Truncated.status(), 422);
        assert_eq!(ImageError::AvifSource.status(), 415);
    }

    #[test]
    fn jpegs_are_progressive_unless_asked_for_baseline() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])));
        let settings = ImageSettings::default();
        let has_marker = |bytes: &[u8], m: u8| bytes.windows(2).any(|w| w == [0xFF, m]);
        let progressive = encode(&img, OutputFormat::Jpeg, Some(80), JpegMode::Progressive, &settings, None, Some(b"II*\0")).unwrap();
        let baseline = encode(&img, OutputFormat::Jpeg, Some(80), JpegMode::Baseline, &settings, None, None).unwrap();
        assert!(has_marker(&progressive, 0xC2) && !has_marker(&progressive, 0xC0), "SOF2");
        assert!(has_marker(&baseline, 0xC0) && !has_marker(&baseline, 0xC2), "SOF0");
        assert!(progressive.windows(6).any(|w| w == b"Exif\0\0"), "EXIF goes along in APP1");
        for bytes in [&progressive, &baseline] {
            let back = image::load_from_memory(bytes).unwrap();
            assert_eq!((back.width(), back.height()), (64, 48));
        }
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(8, 8, image::Luma([90])));
        assert!(image::load_from_memory(&encode(&grey, OutputFormat::Jpeg, None, JpegMode::Progressive, &settings, None, None).unwrap()).is_ok());
    }

    #[test]
    fn the_first_candidate_that_beats_the_source_is_the_only_one_encoded() {
        let settings = ImageSettings::default();
        let params = crate::image::params::parse("", &crate::image::params::ImageLimits::default()).unwrap();
        let formats = |outcome: Outcome| match outcome {
            Outcome::Encoded { tried, .. } | Outcome::Original { tried, .. } => tried.iter().map(|t| t.format).collect::<Vec<_>>(),
        };
        let photo = include_bytes!("../../assets/site/img/coffee.jpg");
        assert_eq!(formats(process(photo, &params, "image/avif,image/webp,*/*", &settings).unwrap()), [OutputFormat::Avif], "AVIF beat the source: no JPEG encoded");
        // A flat pattern: a small PNG that AVIF does not beat, so the next candidate is tried.
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([(x / 16 * 40) as u8, (y / 16 * 60) as u8, 90])));
        let png = encode(&img, OutputFormat::Png, None, JpegMode::Progressive, &settings, None, None).unwrap();
        let outcome = process(&png, &params, "image/avif,image/webp,*/*", &settings).unwrap();
        assert!(matches!(outcome, Outcome::Encoded { format: OutputFormat::Webp, .. }), "{outcome:?}");
        assert_eq!(formats(outcome), [OutputFormat::Avif, OutputFormat::Webp], "lossy WebP beat it");
        let outcome = process(&png, &params, "image/avif,*/*", &settings).unwrap();
        assert!(matches!(outcome, Outcome::Original { .. }), "{outcome:?}");
        assert_eq!(formats(outcome), [OutputFormat::Avif, OutputFormat::Png]);
    }

    #[test]
    fn describes_what_was_done() {
        let tried = vec![Tried { format: OutputFormat::Avif, bytes: 900 }, Tried { format: OutputFormat::Jpeg, bytes: 1200 }];
        let enc = Outcome::Encoded { bytes: vec![0; 900], format: OutputFormat::Avif, width: 256, height: 171, source: (600, 400), tried: tried.clone() };
        assert_eq!(enc.describe("jpeg", 5000, 12.4), "source=jpeg;600x400;5000 output=avif;256x171;900 tried=avif:900,jpeg:1200 ms=12");
        let orig = Outcome::Original { reason: "animated".into(), tried: Vec::new() };
        assert_eq!(orig.describe("gif", 700, 0.0), "original=gif;700 reason=\"animated\" tried= ms=0");
        assert_eq!(describe_error(&ImageError::Unsupported, "svg+xml", 10, 1.0), "original=svg+xml;10 error=\"the source is not a JPEG, PNG, GIF or WebP image\" ms=1");
    }

    #[test]
    fn json_describes_the_output_without_decoding() {
        let mut png = Vec::new();
        DynamicImage::new_rgb8(600, 400).write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
        let limits = crate::image::params::ImageLimits::default();
        let p = crate::image::params::parse("width=256,format=json", &limits).unwrap();
        let json = describe_json(&png, &p, &ImageSettings::default()).unwrap();
        assert_eq!(json, format!(r#"{{"width":256,"height":171,"original":{{"file_size":{},"width":600,"height":400,"format":"image/png"}}}}"#, png.len()));
        let turned = crate::image::params::parse("width=96,rotate=90,fit=pad,height=96,format=json", &limits).unwrap();
        assert!(describe_json(&png, &turned, &ImageSettings::default()).unwrap().starts_with(r#"{"width":96,"height":96,"original":{"file_size"#));
        assert_eq!(describe_json(b"not an image", &p, &ImageSettings::default()), Err(ImageError::Unsupported));
    }

    #[test]
    fn jpegs_much_larger_than_the_output_are_decoded_smaller() {
        let limits = crate::image::params::ImageLimits::default();
        let p = |o: &str| crate::image::params::parse(o, &limits).unwrap();
        assert_eq!(jpeg_shrink((4000, 3000), &p("width=1200")), 1, "3.3x: no room for the headroom");
        assert_eq!(jpeg_shrink((4000, 3000), &p("width=384")), 4);
        assert_eq!(jpeg_shrink((8000, 6000), &p("width=256")), 8);
        assert_eq!(jpeg_shrink((4000, 3000), &p("width=3000")), 1);
        assert_eq!(jpeg_shrink((4000, 3000), &p("")), 1, "full size");
        assert_eq!(jpeg_shrink((3000, 4000), &p("width=750,rotate=90")), 2, "the box is for the turned image");
        assert_eq!(jpeg_shrink((4000, 3000), &p("width=500,height=3000,fit=cover")), 1, "cover scales to the larger side");

        // The same output size as from the full decode, and nearly the same pixels.
        let photo = include_bytes!("../../assets/site/img/coffee.jpg");
        let settings = ImageSettings::default();
        let full_settings = ImageSettings { shrink_on_load: false, ..ImageSettings::default() };
        for options in ["width=64", "width=130,height=130,fit=cover", "width=100,rotate=90"] {
            let shrunk = prepare(photo, &p(options), &settings).unwrap().unwrap();
            let full = prepare(photo, &p(options), &full_settings).unwrap().unwrap();
            assert_eq!((shrunk.image.width(), shrunk.image.height()), (full.image.width(), full.image.height()), "{options}");
            assert_eq!(shrunk.source, full.source, "{options}: the source size reported is the full one");
            let (a, b) = (shrunk.image.to_rgb8(), full.image.to_rgb8());
            let diff = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.as_raw().len() as f64;
            assert!(diff < 4.0, "{options}: mean difference {diff}");
        }
        // CMYK: no scaled decode, the full decoder's pixels at the same size.
        let cmyk = include_bytes!("../../assets/fixtures/images/cmyk.jpg");
        let (shrunk, full) = (prepare(cmyk, &p("width=64"), &settings).unwrap().unwrap(), prepare(cmyk, &p("width=64"), &full_settings).unwrap().unwrap());
        assert_eq!(shrunk.image.as_bytes(), full.image.as_bytes());
    }

    #[test]
    fn avif_quality_follows_the_url_quality() {
        assert_eq!(avif_quality_for(85), ImageSettings::default().avif_quality);
        assert_eq!(avif_quality_for(10), 1, "never zero");
    }
}
