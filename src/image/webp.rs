//! Lossy WebP: libwebp's encoder (crates/webp) at the URL's quality, with the EXIF the URL's
//! `metadata` keeps written into the container, as `cwebp -metadata exif` does.
//!
//! libwebp's simple API writes a bare `VP8 ` file, or `VP8X` + `ALPH` + `VP8 ` when there is
//! alpha; EXIF needs the extended (`VP8X`) layout, with its flag set and an `EXIF` chunk after
//! the image data (the WebP container specification's chunk order).

use image::DynamicImage;
use std::borrow::Cow;

/// `VP8X` flag: the file has an EXIF chunk.
const EXIF_FLAG: u8 = 0x08;

/// Lossy WebP of `image` at `quality` (0-100, the JPEG scale the URL uses), alpha kept.
pub fn encode(image: &DynamicImage, quality: u8, exif: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let (w, h) = (image.width(), image.height());
    // No copy when the pixels are already 8-bit RGB or RGBA (what `process::normalise` leaves).
    let (alpha, pixels): (bool, Cow<'_, [u8]>) = match image {
        DynamicImage::ImageRgb8(b) => (false, Cow::Borrowed(b.as_raw())),
        DynamicImage::ImageRgba8(b) => (true, Cow::Borrowed(b.as_raw())),
        other if other.color().has_alpha() => (true, Cow::Owned(other.to_rgba8().into_raw())),
        other => (false, Cow::Owned(other.to_rgb8().into_raw())),
    };
    let out = edgelayer_webp::encode_lossy(&pixels, w, h, alpha, f32::from(quality)).map_err(|e| e.to_string())?;
    Ok(match exif {
        Some(e) if !e.is_empty() => with_exif(&out, e, w, h).unwrap_or(out),
        _ => out,
    })
}

/// The chunks of a RIFF WebP file after its 12-byte header: (fourcc, payload).
fn chunks(file: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    if file.get(0..4)? != b"RIFF" || file.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 12;
    while at < file.len() {
        let fourcc: [u8; 4] = file.get(at..at + 4)?.try_into().ok()?;
        let len = u32::from_le_bytes(file.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        out.push((fourcc, file.get(at + 8..at + 8 + len)?));
        at += 8 + len + len % 2;
    }
    Some(out)
}

/// `file` rewritten with an `EXIF` chunk holding `exif`; `None` when `file` is not a WebP
/// this module understands (the caller then serves it without).
fn with_exif(file: &[u8], exif: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    let mut chunks = chunks(file)?;
    let mut vp8x;
    match chunks.first() {
        Some((id, payload)) if id == b"VP8X" && payload.len() == 10 => {
            vp8x = payload.to_vec();
            vp8x[0] |= EXIF_FLAG;
        }
        Some((id, _)) if id == b"VP8 " || id == b"VP8L" => {
            let (w, h) = (width.checked_sub(1)?.to_le_bytes(), height.checked_sub(1)?.to_le_bytes());
            vp8x = vec![EXIF_FLAG, 0, 0, 0, w[0], w[1], w[2], h[0], h[1], h[2]];
            chunks.insert(0, (*b"VP8X", &[]));
        }
        _ => return None,
    }
    chunks.push((*b"EXIF", exif));
    let mut body = b"WEBP".to_vec();
    for (i, (id, payload)) in chunks.iter().enumerate() {
        let payload: &[u8] = if i == 0 { &vp8x } else { payload };
        body.extend_from_slice(id);
        body.extend_from_slice(&u32::try_from(payload.len()).ok()?.to_le_bytes());
        body.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).ok()?.to_le_bytes());
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x + y) * 2) as u8])))
    }

    #[test]
    fn lossy_webp_decodes_to_the_picture() {
        let src = photo(96, 64);
        let out = encode(&src, 85, None).unwrap();
        assert_eq!(&out[12..16], b"VP8 ", "lossy");
        let back = image::load_from_memory(&out).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (96, 64));
        let err = back.pixels().zip(src.to_rgb8().pixels()).map(|(a, b)| (0..3).map(|i| (i32::from(a.0[i]) - i32::from(b.0[i])).abs()).sum::<i32>()).sum::<i32>() as f64 / (96.0 * 64.0 * 3.0);
        assert!(err < 4.0, "mean error {err}");
    }

    #[test]
    fn exif_goes_into_an_extended_file_that_still_decodes() {
        let exif = b"II*\0\x08\0\0\0\0\0\0\0\0";
        for src in [photo(31, 17), DynamicImage::ImageRgba8(image::RgbaImage::from_fn(31, 17, |x, _| image::Rgba([200, 10, 10, (x * 8) as u8])))] {
            let out = encode(&src, 80, Some(exif)).unwrap();
            let parts = chunks(&out).unwrap();
            assert_eq!(&parts[0].0, b"VP8X");
            assert_eq!(parts[0].1[0] & EXIF_FLAG, EXIF_FLAG);
            assert_eq!(u32::from_le_bytes([parts[0].1[4], parts[0].1[5], parts[0].1[6], 0]) + 1, 31, "canvas width");
            assert_eq!(parts.last().unwrap(), &(*b"EXIF", &exif[..]));
            assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize + 8, out.len(), "RIFF size");
            let mut decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&out)).unwrap();
            assert_eq!(image::ImageDecoder::exif_metadata(&mut decoder).unwrap().as_deref(), Some(&exif[..]));
            assert_eq!(image::load_from_memory(&out).unwrap().width(), 31);
        }
    }

    #[test]
    fn what_is_not_a_webp_is_left_alone() {
        assert_eq!(with_exif(b"RIFF\0\0\0\0WAVE", b"x", 1, 1), None);
        assert_eq!(with_exif(b"RIFF\x10\0\0\0WEBPVP8 \xff\0\0\0", b"x", 1, 1), None, "a chunk longer than the file");
    }
}
