//! Animated GIFs, resized frame by frame: each frame is decoded onto the canvas (the decoder
//! applies disposal), put through the URL's operations and encoded straight away, so memory
//! holds one canvas and the output, never every frame. Guards as imgproxy has: at most
//! `max_animation_frames` frames and `max_animation_pixels` decoded pixels over all frames
//! (Cloudflare's rule: an animation over 50 MP is delivered without transformations); past
//! either, the animation goes through untouched.
//!
//! Beware: only GIF is re-encoded. Animated WebP and APNG pass through (the `image` crate
//! encodes neither as an animation), and a GIF stays a GIF (no animated AVIF/WebP encoder fits).

use super::params::ImageParams;
use super::process::{apply_operations, ImageError, ImageSettings, Probe};
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::{AnimationDecoder, DynamicImage, Frame};
use std::io::Cursor;

/// A resized animation.
#[derive(Debug)]
pub struct Resized {
    /// The GIF bytes.
    pub bytes: Vec<u8>,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Frames written.
    pub frames: usize,
}

/// Why an animation is passed through instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassThrough {
    /// More frames than `max_animation_frames`.
    TooManyFrames,
    /// More decoded pixels, over all frames, than `max_animation_pixels`.
    TooManyPixels,
}

impl PassThrough {
    /// The reason named in the response header.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooManyFrames => "animated: too many frames to resize",
            Self::TooManyPixels => "animated: too many pixels to resize",
        }
    }
}

/// GIF speed 10 (NeuQuant sampling every 10th pixel): what makes per-request re-encoding
/// affordable; colours stay close since each frame gets its own palette.
const GIF_SPEED: i32 = 10;

/// Resizes an animated GIF (`probe` from [`super::process::probe`]).
pub fn resize_gif(source: &[u8], probe: &Probe, params: &ImageParams, settings: &ImageSettings) -> Result<Result<Resized, PassThrough>, ImageError> {
    let decode = |e: image::ImageError| ImageError::Decode(e.to_string());
    let canvas = u64::from(probe.width) * u64::from(probe.height);
    let mut out = Vec::new();
    let mut size = None;
    let mut frames = 0usize;
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, GIF_SPEED);
        encoder.set_repeat(Repeat::Infinite).map_err(|e| ImageError::Encode(e.to_string()))?;
        for frame in GifDecoder::new(Cursor::new(source)).map_err(decode)?.into_frames() {
            frames += 1;
            if frames as u64 > u64::from(settings.max_animation_frames) {
                return Ok(Err(PassThrough::TooManyFrames));
            }
            if frames as u64 * canvas > settings.max_animation_pixels {
                return Ok(Err(PassThrough::TooManyPixels));
            }
            let frame = frame.map_err(decode)?;
            let delay = frame.delay();
            let (image, _) = apply_operations(DynamicImage::ImageRgba8(frame.into_buffer()), params, None)?;
            size = Some((image.width(), image.height()));
            encoder.encode_frame(Frame::from_parts(image.to_rgba8(), 0, 0, delay)).map_err(|e| ImageError::Encode(e.to_string()))?;
        }
    }
    let Some((width, height)) = size else { return Err(ImageError::Decode("the GIF has no frames".into())) };
    Ok(Ok(Resized { bytes: out, width, height, frames }))
}
