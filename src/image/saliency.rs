//! `gravity=auto`: where a crop keeps the most detail. A cheap saliency: the crop window with
//! the most edge energy (the sum of luma gradients) on a small copy of the image, as the
//! entropy crops of image servers do.

use image::DynamicImage;

/// Longest side of the copy the energy is measured on.
const PROBE_SIDE: u32 = 96;

/// The top-left corner of the `cw`×`ch` window of `image` with the most edge energy.
pub fn best_crop(image: &DynamicImage, cw: u32, ch: u32) -> (u32, u32) {
    let (w, h) = (image.width(), image.height());
    if cw >= w && ch >= h {
        return (0, 0);
    }
    let scale = (f64::from(PROBE_SIDE) / f64::from(w.max(h))).min(1.0);
    let (sw, sh) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
    let small = image.resize_exact(sw, sh, image::imageops::FilterType::Triangle).to_luma8();
    // Edge energy per pixel, then a summed-area table over it.
    let px = |x: u32, y: u32| i32::from(small.get_pixel(x.min(sw - 1), y.min(sh - 1)).0[0]);
    let mut sat = vec![0i64; ((sw + 1) * (sh + 1)) as usize];
    let idx = |x: u32, y: u32| (y * (sw + 1) + x) as usize;
    for y in 0..sh {
        for x in 0..sw {
            let e = i64::from((px(x + 1, y) - px(x, y)).abs() + (px(x, y + 1) - px(x, y)).abs());
            sat[idx(x + 1, y + 1)] = e + sat[idx(x, y + 1)] + sat[idx(x + 1, y)] - sat[idx(x, y)];
        }
    }
    let (ww, wh) = (((f64::from(cw) * scale).round() as u32).clamp(1, sw), ((f64::from(ch) * scale).round() as u32).clamp(1, sh));
    let mut best = (0u32, 0u32, i64::MIN);
    for y in 0..=(sh - wh) {
        for x in 0..=(sw - ww) {
            let sum = sat[idx(x + ww, y + wh)] - sat[idx(x, y + wh)] - sat[idx(x + ww, y)] + sat[idx(x, y)];
            if sum > best.2 {
                best = (x, y, sum);
            }
        }
    }
    let back = |v: u32, max: u32| ((f64::from(v) / scale).round() as u32).min(max);
    (back(best.0, w.saturating_sub(cw)), back(best.1, h.saturating_sub(ch)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_goes_where_the_detail_is() {
        // A flat image with a checkerboard in its right third.
        let img = image::RgbImage::from_fn(300, 100, |x, y| if x >= 200 && (x / 5 + y / 5) % 2 == 0 { image::Rgb([0, 0, 0]) } else { image::Rgb([200, 200, 200]) });
        let (x, y) = best_crop(&DynamicImage::ImageRgb8(img), 100, 100);
        assert!(x >= 180, "crop at x={x}");
        assert_eq!(y, 0);
        let flat = DynamicImage::ImageRgb8(image::RgbImage::new(50, 50));
        assert_eq!(best_crop(&flat, 60, 60), (0, 0), "nothing to crop");
    }
}
