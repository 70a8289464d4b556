//! AVIF encoding on libaom (`crates/aom`) with 4:2:0 chroma, the layout libavif, Pillow and
//! browsers' own encoders use for photos.
//!
//! The RGB is averaged over 2×2 blocks before the YCbCr conversion (the conversion is linear,
//! so this is the same as averaging the chroma planes), coded as one 8-bit still key frame in
//! libaom's all-intra mode, tuned for SSIM, and wrapped by `avif-serialize`. Alpha, when
//! present, is a second, monochrome frame. libaom replaced rav1e here: in the worker it
//! encodes about 4× faster at a speed that gives smaller files (BENCHMARKS.md, "AVIF on
//! libaom").
//!
//! Beware: `crates/aom` checks sizes and settings before libaom sees them; what libaom still
//! refuses is an error here, and an internal libaom failure traps the image worker.

use image::DynamicImage;
use edgelayer_aom::{encode_still, Picture};

/// BT.601 luma weights (R, G, B): libavif's default matrix for 8-bit RGB, and Safari's
/// assumption when a file carries no `colr` box.
const KR: f32 = 0.299;
const KB: f32 = 0.114;

/// The quantiser for a quality 1..=100 on ravif's scale (so the settings and the bench's
/// earlier tables keep their meaning).
fn quantizer(quality: u8) -> usize {
    let q = f32::from(quality.clamp(1, 100)) / 100.0;
    let x = if q >= 0.82 {
        (1.0 - q) * 2.6
    } else if q > 0.25 {
        1.0 - 0.125 - q * 0.5
    } else {
        1.0 - q
    };
    (x * 255.0).round().clamp(0.0, 255.0) as usize
}

/// How many constant-quality steps finer than the quantiser's own level AVIF is coded: the
/// least at which the default quality keeps every image of the bench's corpus over SSIM 0.90
/// at 384 and 1200 wide (BENCHMARKS.md, "AVIF on libaom": 3 steps left the worst at 0.890).
const CQ_FINER: usize = 4;

/// libaom's settings for a quality on ravif's scale and a speed 1..=10: the constant-quality
/// level is the quantiser index over 4 (libaom's own mapping, to within one step) less
/// [`CQ_FINER`], `cpu-used` is the speed (10 gives 9, libaom's fastest in all-intra mode),
/// tuned for SSIM.
fn aom_settings(quality: u8, speed: u8, cicp: (u8, u8, u8)) -> edgelayer_aom::Settings {
    let cq_level = ((quantizer(quality) + 2) / 4).saturating_sub(CQ_FINER).min(63) as u8;
    edgelayer_aom::Settings { cq_level, cpu_used: speed.clamp(1, 9), tune_ssim: true, cicp }
}

/// AVIF from 8-bit pixels (grey or RGB, with or without alpha): 4:2:0 BT.601 full-range colour,
/// alpha as a monochrome frame. `quality` 1..=100 on ravif's scale; `speed` 1..=10.
pub fn encode(image: &DynamicImage, quality: u8, speed: u8, exif: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w == 0 || h == 0 {
        return Err("an AVIF needs at least one pixel".into());
    }
    let has_alpha = image.color().has_alpha();
    let rgba = image.to_rgba8();
    let px = |x: usize, y: usize| -> [f32; 3] {
        let p = rgba.get_pixel(x.min(w - 1) as u32, y.min(h - 1) as u32).0;
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    };
    let luma = |[r, g, b]: [f32; 3]| KR * r + (1.0 - KR - KB) * g + KB * b;
    let to_u8 = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    // The mean colour of each 2×2 block (edge pixels repeat on odd sizes).
    let block = |cx: usize, cy: usize| -> [f32; 3] {
        let mut sum = [0.0; 3];
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let p = px(cx * 2 + dx, cy * 2 + dy);
            for (s, v) in sum.iter_mut().zip(p) {
                *s += v / 4.0;
            }
        }
        sum
    };
    let mut y = Vec::with_capacity(w * h);
    for yy in 0..h {
        y.extend((0..w).map(|x| to_u8(luma(px(x, yy)))));
    }
    let (mut u, mut v) = (Vec::with_capacity(cw * ch), Vec::with_capacity(cw * ch));
    for cy in 0..ch {
        for cx in 0..cw {
            let c = block(cx, cy);
            u.push(to_u8((c[2] - luma(c)) * 0.5 / (1.0 - KB) + 128.0));
            v.push(to_u8((c[0] - luma(c)) * 0.5 / (1.0 - KR) + 128.0));
        }
    }
    // CICP: BT.709 primaries, sRGB transfer, BT.601 matrix.
    let picture = Picture { width: w as u32, height: h as u32, y: &y, u: &u, v: &v };
    let color = encode_still(&picture, &aom_settings(quality, speed, (1, 13, 6))).map_err(|e| e.to_string())?;
    let alpha = if has_alpha {
        let a: Vec<u8> = rgba.pixels().map(|p| p.0[3]).collect();
        let plane = Picture { width: w as u32, height: h as u32, y: &a, u: &[], v: &[] };
        Some(encode_still(&plane, &aom_settings(quality.max(80), speed, (2, 2, 2))).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut file = avif_serialize::Aviffy::new();
    file.set_chroma_subsampling((true, true)).set_seq_profile(0).set_full_color_range(true).set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601);
    if let Some(e) = exif {
        file.set_exif(e.to_vec());
    }
    let mut out = Vec::new();
    file.write(&mut out, &color, alpha.as_deref(), w as u32, h as u32, 8).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_picture_gives_the_same_bytes_at_every_speed() {
        let photo = image::load_from_memory(include_bytes!("../../assets/site/img/coffee.jpg")).unwrap().resize(128, 128, image::imageops::FilterType::Triangle);
        // 128×85: odd sides, which libaom reads rounded up to even.
        for speed in [6, 8, 10] {
            let first = encode(&photo, 70, speed, None).unwrap();
            assert_eq!(encode(&photo, 70, speed, None).unwrap(), first, "speed {speed}");
        }
    }

    #[test]
    fn default_quality_is_cq_30_and_speed_is_libaoms_range() {
        // The default AVIF quality, 70, at the level BENCHMARKS.md measured ("AVIF on libaom").
        assert_eq!(aom_settings(70, 8, (1, 13, 6)).cq_level, 30);
        assert!(aom_settings(90, 8, (1, 13, 6)).cq_level < 30, "higher quality, finer level");
        assert_eq!(aom_settings(1, 8, (1, 13, 6)).cq_level, 63 - CQ_FINER as u8);
        assert_eq!((aom_settings(70, 10, (1, 13, 6)).cpu_used, aom_settings(70, 0, (1, 13, 6)).cpu_used), (9, 1));
    }

    #[test]
    fn quantizer_follows_ravif_scale() {
        assert_eq!(quantizer(100), 0);
        assert!(quantizer(70) > quantizer(85), "lower quality, coarser quantiser");
        assert_eq!(quantizer(0), quantizer(1), "clamped");
    }

    #[test]
    fn writes_a_420_avif_with_and_without_alpha() {
        let rgb = DynamicImage::ImageRgb8(image::RgbImage::from_fn(33, 17, |x, y| image::Rgb([(x * 7) as u8, (y * 13) as u8, 90])));
        let out = encode(&rgb, 70, 10, None).unwrap();
        assert_eq!(&out[4..8], b"ftyp");
        // av1C: byte 2 holds twelve_bit, monochrome, subsampling_x, subsampling_y (bits 5..2).
        let av1c = out.windows(4).position(|w| w == b"av1C").unwrap() + 4;
        assert_eq!(out[av1c + 2] & 0b0000_1100, 0b0000_1100, "4:2:0");
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(16, 16, |x, _| image::Rgba([200, 10, 10, (x * 16) as u8])));
        let with_alpha = encode(&rgba, 70, 10, Some(b"II*\0")).unwrap();
        assert!(with_alpha.windows(4).filter(|w| *w == b"av1C").count() >= 2, "a colour and an alpha item");
        assert!(encode(&DynamicImage::new_rgb8(0, 4), 70, 10, None).is_err());
    }
}
