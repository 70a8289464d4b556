//! Colour profiles: every output is sRGB and carries no profile. A source with a profile that
//! is not sRGB has its pixels converted (`moxcms`); a CMYK profile describes the CMYK samples
//! the decoder already turned into RGB, so it is dropped (carried over, it made an RGB image
//! look wrong in every colour-managed browser); an sRGB one is dropped as redundant (a few KB).
//! With no profile left, AVIF (which cannot carry one here) is open to every source.

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// What became of the source's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// No profile: the pixels are taken as sRGB.
    None,
    /// An sRGB profile, dropped.
    Srgb,
    /// A profile for the CMYK samples, dropped (the decoder converted them).
    CmykDropped,
    /// Another RGB or grey profile: the pixels were converted to sRGB.
    Converted,
    /// A profile that could not be read or applied: dropped, pixels unchanged.
    Unusable,
}

impl Conversion {
    /// Short name for the `X-Edgelayer-Image` note.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Srgb => "srgb",
            Self::CmykDropped => "cmyk-dropped",
            Self::Converted => "converted-to-srgb",
            Self::Unusable => "unusable-dropped",
        }
    }
}

/// Whether an ICC profile is sRGB, by its description (every common sRGB profile names itself
/// "sRGB"; wide-gamut ones say "Display P3", "Adobe RGB", ...).
pub fn is_srgb_profile(icc: &[u8]) -> bool {
    icc.windows(4).any(|w| w == b"sRGB") || icc.windows(8).any(|w| w == b"s\0R\0G\0B\0")
}

/// Brings an 8-bit image (as [`super::process`] normalises it) to sRGB under its profile.
pub fn to_srgb(image: &mut DynamicImage, icc: Option<&[u8]>) -> Conversion {
    let Some(icc) = icc else { return Conversion::None };
    let Ok(profile) = ColorProfile::new_from_slice(icc) else { return Conversion::Unusable };
    match profile.color_space {
        DataColorSpace::Cmyk => return Conversion::CmykDropped,
        DataColorSpace::Rgb if is_srgb_profile(icc) => return Conversion::Srgb,
        DataColorSpace::Rgb | DataColorSpace::Gray => {}
        _ => return Conversion::Unusable,
    }
    let srgb = ColorProfile::new_srgb();
    let layout = match image {
        DynamicImage::ImageRgb8(_) if profile.color_space == DataColorSpace::Rgb => Layout::Rgb,
        DynamicImage::ImageRgba8(_) if profile.color_space == DataColorSpace::Rgb => Layout::Rgba,
        DynamicImage::ImageLuma8(_) if profile.color_space == DataColorSpace::Gray => Layout::Gray,
        DynamicImage::ImageLumaA8(_) if profile.color_space == DataColorSpace::Gray => Layout::GrayAlpha,
        _ => return Conversion::Unusable,
    };
    // Grey stays grey: the sRGB grey profile (sRGB's tone curve) is the destination.
    let dst = if matches!(layout, Layout::Gray | Layout::GrayAlpha) { ColorProfile::new_gray_with_gamma(2.2) } else { srgb };
    let Ok(transform) = profile.create_transform_8bit(layout, &dst, layout, TransformOptions::default()) else { return Conversion::Unusable };
    let pixels: &mut [u8] = match image {
        DynamicImage::ImageRgb8(b) => b.as_mut(),
        DynamicImage::ImageRgba8(b) => b.as_mut(),
        DynamicImage::ImageLuma8(b) => b.as_mut(),
        DynamicImage::ImageLumaA8(b) => b.as_mut(),
        _ => return Conversion::Unusable,
    };
    let src = pixels.to_vec();
    match transform.transform(&src, pixels) {
        Ok(()) => Conversion::Converted,
        Err(_) => {
            pixels.copy_from_slice(&src);
            Conversion::Unusable
        }
    }
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
    fn wide_gamut_pixels_are_converted_and_cmyk_profiles_dropped() {
        // Pure P3 red is outside sRGB: converted, it clips to (or near) sRGB red.
        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        let mut img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(4, 4, image::Rgb([255, 0, 0])));
        assert_eq!(to_srgb(&mut img, Some(&p3)), Conversion::Converted);
        let px = img.to_rgb8().get_pixel(0, 0).0;
        assert!(px[0] == 255 && px[1] < 40 && px[2] < 40, "{px:?}");
        // A mid P3 grey is the same grey in sRGB (same white point and tone curve).
        let mut grey = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(2, 2, image::Rgb([128, 128, 128])));
        to_srgb(&mut grey, Some(&p3));
        let g = grey.to_rgb8().get_pixel(0, 0).0;
        assert!(g.iter().all(|c| c.abs_diff(128) <= 2), "{g:?}");
        let mut cmyk_header = vec![0u8; 132];
        cmyk_header[16..20].copy_from_slice(b"CMYK");
        let mut rgb = DynamicImage::ImageRgb8(image::RgbImage::new(2, 2));
        assert!(matches!(to_srgb(&mut rgb, Some(&cmyk_header)), Conversion::CmykDropped | Conversion::Unusable), "never carried onto RGB");
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        assert!(matches!(to_srgb(&mut rgb, Some(&srgb)), Conversion::Srgb | Conversion::Converted));
        assert_eq!(to_srgb(&mut rgb, None), Conversion::None);
    }
}
