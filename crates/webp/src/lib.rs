//! Lossy WebP encoding with libwebp, the reference encoder (what `cwebp`, Pillow, libvips and
//! Cloudflare use), behind a safe function.
//!
//! No pure-Rust lossy WebP encoder fits: `image-webp` writes lossless only, `webp-rust` 0.3
//! produced files libwebp decodes to the wrong picture, `zenwebp` is AGPL. So libwebp's C
//! source is compiled in, for wasm32 with clang and wasi-libc's headers. On
//! `wasm32-unknown-unknown` nothing provides a C library; the encoder calls four of its
//! functions, and the `libc_shim` module provides them on Rust's allocator.
//!
//! Beware: this crate holds the project's only `unsafe` code (the FFI call and the shims);
//! `edgelayer` itself forbids it.

// Exported under the C names on wasm32 only; natively the functions are only tested.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod libc_shim;

/// The largest width or height a WebP can have (`WEBP_MAX_DIMENSION`).
pub const MAX_SIDE: u32 = 16383;

/// Why nothing was encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A side is 0 or larger than [`MAX_SIDE`].
    Size(u32, u32),
    /// The pixel buffer is not `width × height × channels` bytes.
    Buffer,
    /// libwebp returned nothing (out of memory, or a bad picture).
    Encoder,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size(w, h) => write!(f, "a WebP is 1 to {MAX_SIDE} pixels a side, not {w}x{h}"),
            Self::Buffer => f.write_str("the pixel buffer does not match the size"),
            Self::Encoder => f.write_str("libwebp could not encode the picture"),
        }
    }
}

impl std::error::Error for Error {}

/// Lossy WebP (VP8, libwebp's default method 4) of 8-bit RGB (`alpha` false) or RGBA rows,
/// packed without padding; `quality` 0-100 as in `cwebp -q`. An alpha channel is kept,
/// compressed losslessly, as `cwebp` does.
pub fn encode_lossy(pixels: &[u8], width: u32, height: u32, alpha: bool, quality: f32) -> Result<Vec<u8>, Error> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::Size(width, height));
    }
    let channels: usize = if alpha { 4 } else { 3 };
    let stride = width as usize * channels;
    if pixels.len() != stride * height as usize {
        return Err(Error::Buffer);
    }
    let (w, h, stride) = (width as i32, height as i32, stride as i32); // ≤ 16383 × 4: no overflow
    let quality = quality.clamp(0.0, 100.0);
    let mut out: *mut u8 = std::ptr::null_mut();
    // SAFETY: `pixels` holds `height` rows of `stride` bytes (checked above) and outlives the
    // call; libwebp writes a buffer it allocated to `out` and returns its length (0 on
    // failure), which is copied and then freed with libwebp's own `WebPFree`.
    let bytes = unsafe {
        let len = if alpha {
            libwebp_sys::WebPEncodeRGBA(pixels.as_ptr(), w, h, stride, quality, &mut out)
        } else {
            libwebp_sys::WebPEncodeRGB(pixels.as_ptr(), w, h, stride, quality, &mut out)
        };
        let bytes = if len == 0 || out.is_null() { None } else { Some(std::slice::from_raw_parts(out, len).to_vec()) };
        if !out.is_null() {
            libwebp_sys::WebPFree(out.cast());
        }
        bytes
    };
    bytes.ok_or(Error::Encoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rgb_and_rgba_as_riff_webp() {
        let rgb: Vec<u8> = (0..64 * 48).flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 5) as u8, 90]).collect();
        let out = encode_lossy(&rgb, 64, 48, false, 75.0).unwrap();
        assert_eq!((&out[0..4], &out[8..16]), (&b"RIFF"[..], &b"WEBPVP8 "[..]), "plain lossy VP8");
        let rgba: Vec<u8> = (0..16 * 16).flat_map(|i| [200, 10, 10, (i % 16 * 16) as u8]).collect();
        let out = encode_lossy(&rgba, 16, 16, true, 75.0).unwrap();
        assert_eq!(&out[12..16], b"VP8X", "an extended file, for the alpha chunk");
        assert!(out.windows(4).any(|w| w == b"ALPH"));
    }

    #[test]
    fn lower_quality_is_smaller() {
        let rgb: Vec<u8> = (0..128 * 128u32).flat_map(|i| [(i * 7 % 251) as u8, (i * 13 % 241) as u8, (i % 128) as u8]).collect();
        let hi = encode_lossy(&rgb, 128, 128, false, 90.0).unwrap();
        let lo = encode_lossy(&rgb, 128, 128, false, 30.0).unwrap();
        assert!(lo.len() < hi.len(), "{} vs {}", lo.len(), hi.len());
    }

    #[test]
    fn bad_sizes_are_errors_not_crashes() {
        assert_eq!(encode_lossy(&[], 0, 4, false, 75.0), Err(Error::Size(0, 4)));
        assert_eq!(encode_lossy(&[0; 3], 16384, 1, false, 75.0), Err(Error::Size(16384, 1)));
        assert_eq!(encode_lossy(&[0; 5], 1, 2, false, 75.0), Err(Error::Buffer));
    }
}
