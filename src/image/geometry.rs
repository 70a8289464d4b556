//! Output geometry from the source size and the requested box, with Cloudflare's fit modes.

use super::params::{Fit, Gravity, ImageParams};

/// How to get from the source to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Width to resize to.
    pub scaled_width: u32,
    /// Height to resize to.
    pub scaled_height: u32,
    /// Then crop `(x, y, width, height)` (cover, crop).
    pub crop: Option<(u32, u32, u32, u32)>,
    /// Then pad onto a `(width, height)` canvas at `(x, y)` (pad).
    pub pad: Option<(u32, u32, u32, u32)>,
}

fn scaled(side: u32, scale: f64) -> u32 {
    ((f64::from(side) * scale).round() as u32).max(1)
}

/// Plans the resize of a `sw`×`sh` source (after orientation) for `p`.
pub fn plan(sw: u32, sh: u32, p: &ImageParams) -> Geometry {
    let (fw, fh) = (f64::from(sw.max(1)), f64::from(sh.max(1)));
    let same = Geometry { scaled_width: sw, scaled_height: sh, crop: None, pad: None };
    let scale_to = |s: f64| Geometry { scaled_width: scaled(sw, s), scaled_height: scaled(sh, s), crop: None, pad: None };
    let (w, h) = match (p.width, p.height) {
        (None, None) => return same,
        // One side given: every fit scales proportionally to it; scale-down never enlarges.
        (Some(w), None) => {
            let s = f64::from(w) / fw;
            return scale_to(if p.fit == Fit::ScaleDown || p.fit == Fit::Crop { s.min(1.0) } else { s });
        }
        (None, Some(h)) => {
            let s = f64::from(h) / fh;
            return scale_to(if p.fit == Fit::ScaleDown || p.fit == Fit::Crop { s.min(1.0) } else { s });
        }
        (Some(w), Some(h)) => (w, h),
    };
    let inside = (f64::from(w) / fw).min(f64::from(h) / fh);
    let cover = (f64::from(w) / fw).max(f64::from(h) / fh);
    match p.fit {
        Fit::ScaleDown => scale_to(inside.min(1.0)),
        Fit::Contain => scale_to(inside),
        Fit::Pad => {
            let g = scale_to(inside);
            let (cw, ch) = (w.max(g.scaled_width), h.max(g.scaled_height));
            Geometry { pad: Some((cw, ch, (cw - g.scaled_width) / 2, (ch - g.scaled_height) / 2)), ..g }
        }
        Fit::Squeeze => Geometry { scaled_width: w, scaled_height: h, crop: None, pad: None },
        Fit::Cover | Fit::Crop => {
            let s = if p.fit == Fit::Crop { cover.min(1.0) } else { cover };
            let g = scale_to(s);
            let (cw, ch) = (w.min(g.scaled_width), h.min(g.scaled_height));
            // The crop keeps the gravity point where it is in the frame (`Auto` is decided on
            // the pixels, by the pipeline; the centre stands in here).
            let (gx, gy) = match p.gravity {
                Gravity::Point(x, y) => (u64::from(x.min(1000)), u64::from(y.min(1000))),
                Gravity::Centre | Gravity::Auto => (500, 500),
            };
            let at = |spare: u32, g: u64| ((u64::from(spare) * g + 500) / 1000) as u32;
            let crop = ((cw, ch) != (g.scaled_width, g.scaled_height)).then(|| (at(g.scaled_width - cw, gx), at(g.scaled_height - ch, gy), cw, ch));
            Geometry { crop, ..g }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::params::{parse, ImageLimits};

    fn g(sw: u32, sh: u32, opts: &str) -> Geometry {
        plan(sw, sh, &parse(opts, &ImageLimits::default()).unwrap())
    }

    #[test]
    fn fit_modes() {
        assert_eq!(g(1000, 500, ""), Geometry { scaled_width: 1000, scaled_height: 500, crop: None, pad: None });
        assert_eq!(g(1000, 500, "w=640").scaled_height, 320);
        assert_eq!(g(400, 200, "w=640").scaled_width, 400, "scale-down never enlarges");
        assert_eq!(g(400, 200, "w=640,fit=contain").scaled_width, 640);
        let sd = g(1000, 500, "w=256,h=256");
        assert_eq!((sd.scaled_width, sd.scaled_height), (256, 128));
        let cover = g(1000, 500, "w=256,h=256,fit=cover");
        assert_eq!((cover.scaled_width, cover.scaled_height), (512, 256));
        assert_eq!(cover.crop, Some((128, 0, 256, 256)));
        let crop_small = g(100, 50, "w=256,h=256,fit=crop");
        assert_eq!((crop_small.scaled_width, crop_small.scaled_height, crop_small.crop), (100, 50, None), "crop never enlarges");
        let crop = g(1000, 500, "w=256,h=128,fit=crop");
        assert_eq!((crop.scaled_width, crop.scaled_height, crop.crop), (256, 128, None));
        let pad = g(1000, 500, "w=256,h=256,fit=pad");
        assert_eq!((pad.scaled_width, pad.scaled_height), (256, 128));
        assert_eq!(pad.pad, Some((256, 256, 0, 64)));
        assert_eq!(g(1, 5000, "w=16").scaled_height, 5000, "scale-down keeps a source narrower than the box");
        assert_eq!(g(5000, 1, "w=16").scaled_height, 1, "never zero");
    }
}
