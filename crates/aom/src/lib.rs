//! AV1 still pictures with libaom, the reference encoder (what libavif, and so Pillow and
//! Chrome's own AVIF encoder, use), behind one safe function. `edgelayer`'s `image::avif`
//! wraps the output in an AVIF container.
//!
//! libaom's portable C code is built for wasm32 by CMake with clang and wasi-libc's headers
//! (`cmake/`). Run without SIMD, at the speeds used here, it still encodes about 4× faster
//! than rav1e did in the worker (BENCHMARKS.md, "AVIF on libaom").
//!
//! Beware:
//! - This crate and `edgelayer-webp` hold the project's `unsafe` code (the FFI calls and the
//!   C library shims); `edgelayer` forbids it.
//! - wasm has no `setjmp`. libaom jumps back to its `setjmp` only on an internal error (an
//!   allocation failing, a parameter it refuses); on wasm32 that `longjmp` traps, which ends
//!   the request in the image worker (the edge answers 502, or the original with
//!   `onerror = "original"`), and the worker's instance is reset. Sizes and settings are
//!   checked here first, so the parameters libaom refuses never reach it.
//! - The allocator (`malloc`, `calloc`, `realloc`, `free`) and `qsort` come from
//!   `edgelayer-webp`'s shim, which the image worker links too.

#![allow(unsafe_code)]

// Exported under the C names on wasm32 only; natively the functions are only tested.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod libc_shim;

use libaom_sys as aom;
use std::mem::MaybeUninit;

/// The largest width or height encoded here (AVIF's common limit is 8K; libaom's own is 65536).
pub const MAX_SIDE: u32 = 16384;

/// One picture to encode: 8-bit planes, 4:2:0 (chroma planes `(w+1)/2 × (h+1)/2`), or
/// monochrome (`u` and `v` empty), rows packed without padding.
pub struct Picture<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma (or the single plane of a monochrome picture).
    pub y: &'a [u8],
    /// Cb, or empty for monochrome.
    pub u: &'a [u8],
    /// Cr, or empty for monochrome.
    pub v: &'a [u8],
}

/// How to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Constant-quality level 0..=63 (lower is better; libavif maps its quality 50 to 32).
    pub cq_level: u8,
    /// libaom's `cpu-used` in all-intra mode, 0..=9 (higher is faster).
    pub cpu_used: u8,
    /// Tune for SSIM rather than PSNR.
    pub tune_ssim: bool,
    /// CICP colour primaries, transfer characteristics and matrix coefficients (ignored for
    /// monochrome).
    pub cicp: (u8, u8, u8),
}

/// Why nothing was encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A side is 0 or larger than [`MAX_SIDE`].
    Size(u32, u32),
    /// A plane's length does not match the size.
    Buffer,
    /// A setting is out of range.
    Setting,
    /// libaom refused or failed (its error code).
    Encoder(u32),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Size(w, h) => write!(f, "an AV1 picture here is 1 to {MAX_SIDE} pixels a side, not {w}x{h}"),
            Self::Buffer => f.write_str("a plane does not match the picture's size"),
            Self::Setting => f.write_str("cq_level is 0..=63 and cpu_used 0..=9"),
            Self::Encoder(code) => write!(f, "libaom failed (error {code})"),
        }
    }
}

impl std::error::Error for Error {}

/// Encodes `picture` as one AV1 still key frame (a reduced still-picture header), full-range;
/// returns the OBUs.
pub fn encode_still(picture: &Picture<'_>, settings: &Settings) -> Result<Vec<u8>, Error> {
    let (w, h) = (picture.width, picture.height);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(Error::Size(w, h));
    }
    if settings.cq_level > 63 || settings.cpu_used > 9 {
        return Err(Error::Setting);
    }
    let monochrome = picture.u.is_empty() && picture.v.is_empty();
    let chroma = (w as usize).div_ceil(2) * (h as usize).div_ceil(2);
    if picture.y.len() != w as usize * h as usize || (!monochrome && (picture.u.len() != chroma || picture.v.len() != chroma)) {
        return Err(Error::Buffer);
    }
    // One buffer in the layout `aom_img_wrap` reads for I420: the luma plane's width and
    // height rounded up to even (it reads that many, so the last column and row repeat), then
    // the two chroma planes (chroma at mid-grey for a monochrome picture; it is not coded).
    let (w, h, cw) = (w as usize, h as usize, (w as usize).div_ceil(2));
    let (pw, ph) = (cw * 2, h.div_ceil(2) * 2);
    let mut frame = Vec::with_capacity(pw * ph + 2 * chroma);
    for row in picture.y.chunks_exact(w).chain(std::iter::repeat_n(&picture.y[(h - 1) * w..], ph - h)) {
        frame.extend_from_slice(row);
        frame.resize(frame.len() + pw - w, row[w - 1]);
    }
    if monochrome {
        frame.resize(pw * ph + 2 * chroma, 128);
    } else {
        frame.extend_from_slice(picture.u);
        frame.extend_from_slice(picture.v);
    }
    // SAFETY: the sizes were checked above and `frame` has the layout `aom_img_wrap` expects
    // for them; `frame` outlives the encoder's use of it (libaom copies the picture during
    // `aom_codec_encode`); the context is destroyed on every path once initialised; packet
    // data is copied before the next libaom call.
    unsafe { encode_i420(&mut frame, picture.width, picture.height, monochrome, settings) }
}

extern "C" {
    /// The C library's (natively) or the shim's (wasm32). libaom draws a seed (film grain's)
    /// with `rand()`; the sequence restarts for every picture, so no encode depends on the
    /// ones before it.
    fn srand(seed: std::ffi::c_uint);
}

unsafe fn encode_i420(frame: &mut [u8], w: u32, h: u32, monochrome: bool, settings: &Settings) -> Result<Vec<u8>, Error> {
    srand(1);
    let iface = aom::aom_codec_av1_cx();
    let mut cfg = MaybeUninit::<aom::aom_codec_enc_cfg_t>::zeroed().assume_init();
    check(aom::aom_codec_enc_config_default(iface, &mut cfg, aom::AOM_USAGE_ALL_INTRA))?;
    cfg.g_w = w;
    cfg.g_h = h;
    cfg.g_limit = 1;
    cfg.g_threads = 1;
    cfg.g_lag_in_frames = 0;
    cfg.kf_max_dist = 0;
    cfg.rc_end_usage = aom::AOM_Q;
    cfg.rc_min_quantizer = 0;
    cfg.rc_max_quantizer = 63;
    cfg.monochrome = u32::from(monochrome);
    let mut ctx = MaybeUninit::<aom::aom_codec_ctx_t>::zeroed().assume_init();
    check(aom::aom_codec_enc_init_ver(&mut ctx, iface, &cfg, 0, aom::AOM_ENCODER_ABI_VERSION as i32))?;
    let result = encode_with(&mut ctx, frame, w, h, settings);
    aom::aom_codec_destroy(&mut ctx);
    result
}

unsafe fn encode_with(ctx: &mut aom::aom_codec_ctx_t, frame: &mut [u8], w: u32, h: u32, s: &Settings) -> Result<Vec<u8>, Error> {
    let control = |ctx: &mut aom::aom_codec_ctx_t, id: u32, value: i32| check(aom::aom_codec_control(ctx, id as i32, value));
    control(ctx, aom::AOME_SET_CPUUSED, i32::from(s.cpu_used))?;
    control(ctx, aom::AOME_SET_CQ_LEVEL, i32::from(s.cq_level))?;
    control(ctx, aom::AOME_SET_TUNING, if s.tune_ssim { aom::AOM_TUNE_SSIM as i32 } else { aom::AOM_TUNE_PSNR as i32 })?;
    control(ctx, aom::AV1E_SET_COLOR_RANGE, 1)?;
    control(ctx, aom::AV1E_SET_COLOR_PRIMARIES, i32::from(s.cicp.0))?;
    control(ctx, aom::AV1E_SET_TRANSFER_CHARACTERISTICS, i32::from(s.cicp.1))?;
    control(ctx, aom::AV1E_SET_MATRIX_COEFFICIENTS, i32::from(s.cicp.2))?;
    let mut img = MaybeUninit::<aom::aom_image_t>::zeroed().assume_init();
    if aom::aom_img_wrap(&mut img, aom::AOM_IMG_FMT_I420, w, h, 1, frame.as_mut_ptr()).is_null() {
        return Err(Error::Buffer);
    }
    img.range = aom::AOM_CR_FULL_RANGE;
    check(aom::aom_codec_encode(ctx, &img, 0, 1, 0))?;
    let mut out = Vec::new();
    drain(ctx, &mut out);
    // Flush: a single frame with no lag is usually out already.
    check(aom::aom_codec_encode(ctx, std::ptr::null(), 0, 1, 0))?;
    drain(ctx, &mut out);
    if out.is_empty() {
        return Err(Error::Encoder(0));
    }
    Ok(out)
}

unsafe fn drain(ctx: &mut aom::aom_codec_ctx_t, out: &mut Vec<u8>) {
    let mut iter = std::ptr::null();
    loop {
        let pkt = aom::aom_codec_get_cx_data(ctx, &mut iter);
        if pkt.is_null() {
            return;
        }
        if (*pkt).kind == aom::AOM_CODEC_CX_FRAME_PKT {
            let f = (*pkt).data.frame;
            if !f.buf.is_null() {
                out.extend_from_slice(std::slice::from_raw_parts(f.buf.cast::<u8>(), f.sz));
            }
        }
    }
}

fn check(code: aom::aom_codec_err_t) -> Result<(), Error> {
    if code == aom::AOM_CODEC_OK {
        Ok(())
    } else {
        Err(Error::Encoder(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let y = (0..w * h).map(|i| ((i % w) * 255 / w) as u8).collect();
        let c = (w as usize).div_ceil(2) * (h as usize).div_ceil(2);
        (y, vec![100; c], vec![150; c])
    }

    const SETTINGS: Settings = Settings { cq_level: 32, cpu_used: 9, tune_ssim: true, cicp: (1, 13, 6) };

    #[test]
    fn encodes_a_still_picture_with_a_sequence_header() {
        let (y, u, v) = gradient(33, 17);
        let out = encode_still(&Picture { width: 33, height: 17, y: &y, u: &u, v: &v }, &SETTINGS).unwrap();
        // OBU header byte: type in bits 6..3; a temporal delimiter (2), then the sequence
        // header (1).
        let types: Vec<u8> = [out[0], out[2]].iter().map(|b| (b >> 3) & 0xf).collect();
        assert_eq!(types, [2, 1], "{:02x?}", &out[..8]);
        assert_eq!(encode_still(&Picture { width: 33, height: 17, y: &y, u: &u, v: &v }, &SETTINGS).unwrap(), out, "the same bytes each time");
        let mono = encode_still(&Picture { width: 33, height: 17, y: &y, u: &[], v: &[] }, &SETTINGS).unwrap();
        assert!(mono.len() < out.len() + 64);
    }

    /// On wasm32 an internal libaom error traps, so the smallest and thinnest pictures must
    /// encode without one (natively the same C code reports it as an error instead).
    #[test]
    fn encodes_one_pixel_and_one_pixel_wide_pictures() {
        for (w, h) in [(1, 1), (1, 9), (9, 1), (2, 3), (1024, 1), (1, 1024)] {
            let (y, u, v) = gradient(w, h);
            for (cpu_used, cq_level) in [(6, 0), (9, 63)] {
                let s = Settings { cpu_used, cq_level, ..SETTINGS };
                assert!(encode_still(&Picture { width: w, height: h, y: &y, u: &u, v: &v }, &s).is_ok(), "{w}x{h} at {s:?}");
                assert!(encode_still(&Picture { width: w, height: h, y: &y, u: &[], v: &[] }, &s).is_ok(), "{w}x{h} monochrome at {s:?}");
            }
        }
    }

    #[test]
    fn refuses_bad_sizes_buffers_and_settings_before_libaom() {
        let (y, u, v) = gradient(8, 8);
        let pic = |w, h| Picture { width: w, height: h, y: &y, u: &u, v: &v };
        assert_eq!(encode_still(&pic(0, 8), &SETTINGS), Err(Error::Size(0, 8)));
        assert_eq!(encode_still(&pic(MAX_SIDE + 1, 8), &SETTINGS), Err(Error::Size(MAX_SIDE + 1, 8)));
        assert_eq!(encode_still(&pic(8, 7), &SETTINGS), Err(Error::Buffer));
        assert_eq!(encode_still(&Picture { width: 8, height: 8, y: &y, u: &u, v: &[] }, &SETTINGS), Err(Error::Buffer));
        assert_eq!(encode_still(&pic(8, 8), &Settings { cq_level: 64, ..SETTINGS }), Err(Error::Setting));
        assert_eq!(encode_still(&pic(8, 8), &Settings { cpu_used: 10, ..SETTINGS }), Err(Error::Setting));
    }
}
