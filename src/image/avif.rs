//! AVIF encoding on rav1e with 4:2:0 chroma, the layout libavif, Pillow and browsers' own
//! encoders use for photos.
//!
//! ravif (what the `image` crate calls) only writes 4:4:4: full-resolution colour planes cost
//! bytes and encode time that the eye, and luma SSIM, hardly see. Here the RGB is averaged
//! over 2×2 blocks before the YCbCr conversion (the conversion is linear, so this is the same
//! as averaging the chroma planes), coded as one 8-bit still key frame, and wrapped by
//! `avif-serialize`. Alpha, when present, is a second monochrome frame, as in ravif. The
//! `npm run bench:images` rate-distortion table measures the difference.
//!
//! Beware: rav1e panics on a zero-sized frame, so the caller's sizes are checked first.

use image::DynamicImage;
use rav1e::prelude::{ChromaSamplePosition, ChromaSampling, ColorDescription, ColorPrimaries, Config, Context, EncoderConfig, EncoderStatus, FrameType, MatrixCoefficients, PixelRange, Rational, SpeedSettings, TransferCharacteristics, Tune};

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

/// rav1e's preset for `speed`, with what a single still picture does not need switched off
/// and ravif's still-image tweaks for the rest (16×16 partitions only at speed 9 and 10, no
/// CDEF or loop restoration at these qualities, rate estimated in the transform domain at 10).
/// On the bench's photos this halves the encode time of plain presets at the same bytes and
/// SSIM.
fn speed_settings(speed: u8) -> SpeedSettings {
    use rav1e::prelude::{BlockSize, PartitionRange, SceneDetectionSpeed};
    let speed = speed.clamp(1, 10);
    let mut s = SpeedSettings::from_preset(speed);
    s.multiref = false;
    s.rdo_lookahead_frames = 1;
    s.scene_detection_mode = SceneDetectionSpeed::None;
    s.motion.include_near_mvs = false;
    s.partition.partition_range = match speed {
        9.. => PartitionRange::new(BlockSize::BLOCK_16X16, BlockSize::BLOCK_16X16),
        5.. => PartitionRange::new(BlockSize::BLOCK_8X8, BlockSize::BLOCK_16X16),
        _ => PartitionRange::new(BlockSize::BLOCK_4X4, BlockSize::BLOCK_16X16),
    };
    s.prediction.fine_directional_intra = speed <= 6;
    s.transform.reduced_tx_set = speed == 4 || speed >= 9;
    s.transform.enable_inter_tx_split = speed >= 9;
    s.transform.tx_domain_rate = speed >= 10;
    s.transform.rdo_tx_decision = speed <= 4;
    s.fast_deblock = speed >= 7;
    s.cdef = false;
    s.lrf = false;
    s
}

/// Encodes one frame of `width`×`height` whose planes `fill` writes; returns the AV1 payload.
fn encode_frame<P: rav1e::Pixel>(width: usize, height: usize, chroma: ChromaSampling, quality: u8, speed: u8, colour: Option<ColorDescription>, fill: impl FnOnce(&mut rav1e::prelude::Frame<P>)) -> Result<Vec<u8>, String> {
    let q = quantizer(quality);
    let config = Config::new()
        .with_encoder_config(EncoderConfig {
            width,
            height,
            time_base: Rational::new(1, 1),
            bit_depth: 8,
            chroma_sampling: chroma,
            chroma_sample_position: ChromaSamplePosition::Unknown,
            pixel_range: PixelRange::Full,
            color_description: colour,
            still_picture: true,
            quantizer: q,
            min_quantizer: q as u8,
            bitrate: 0,
            tune: Tune::Psychovisual,
            tiles: 1,
            speed_settings: speed_settings(speed),
            ..EncoderConfig::default()
        })
        .with_threads(1);
    let mut ctx: Context<P> = config.new_context().map_err(|e| e.to_string())?;
    let mut frame = ctx.new_frame();
    fill(&mut frame);
    ctx.send_frame(frame).map_err(|e| e.to_string())?;
    ctx.flush();
    let mut out = Vec::new();
    loop {
        match ctx.receive_packet() {
            Ok(mut packet) if packet.frame_type == FrameType::KEY => out.append(&mut packet.data),
            Ok(_) => {}
            Err(EncoderStatus::Encoded | EncoderStatus::LimitReached) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(out)
}

/// Writes rows of `width` values from `value(x, y)` into a frame plane.
fn fill_plane<P: rav1e::Pixel>(plane: &mut rav1e::prelude::Plane<P>, width: usize, height: usize, value: impl Fn(usize, usize) -> P) {
    let stride = plane.cfg.stride;
    let origin = plane.cfg.yorigin * stride + plane.cfg.xorigin;
    let data = &mut plane.data[origin..];
    for y in 0..height {
        if let Some(row) = data.get_mut(y * stride..y * stride + width) {
            for (x, px) in row.iter_mut().enumerate() {
                *px = value(x, y);
            }
        }
    }
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
    let colour = Some(ColorDescription { color_primaries: ColorPrimaries::BT709, transfer_characteristics: TransferCharacteristics::SRGB, matrix_coefficients: MatrixCoefficients::BT601 });
    let color = encode_frame::<u8>(w, h, ChromaSampling::Cs420, quality, speed, colour, |frame| {
        let [yp, up, vp] = &mut frame.planes;
        fill_plane(yp, w, h, |x, y| to_u8(luma(px(x, y))));
        fill_plane(up, cw, ch, |x, y| {
            let c = block(x, y);
            to_u8((c[2] - luma(c)) * 0.5 / (1.0 - KB) + 128.0)
        });
        fill_plane(vp, cw, ch, |x, y| {
            let c = block(x, y);
            to_u8((c[0] - luma(c)) * 0.5 / (1.0 - KR) + 128.0)
        });
    })?;
    let alpha = if has_alpha {
        Some(encode_frame::<u8>(w, h, ChromaSampling::Cs400, quality.max(80), speed, None, |frame| fill_plane(&mut frame.planes[0], w, h, |x, y| rgba.get_pixel(x as u32, y as u32).0[3]))?)
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
