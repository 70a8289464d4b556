//! The image pipeline on real files (assets/site/img, assets/fixtures/images; see assets/README.md):
//! orientation, CMYK, grey, 16-bit, alpha, animation, limits, metadata, and the rule that the
//! output is never larger than the source.

use edgelayer::image::negotiate::OutputFormat;
use edgelayer::image::params::{parse, ImageLimits};
use edgelayer::image::process::{process, ImageError, ImageSettings, Outcome};
use image::{DynamicImage, GenericImageView};

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const LEGACY: &str = "*/*";

fn asset(path: &str) -> Vec<u8> {
    let p = format!("{}/assets/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn run(path: &str, options: &str, accept: &str) -> Result<Outcome, ImageError> {
    process(&asset(path), &parse(options, &ImageLimits::default()).expect("options"), accept, &ImageSettings::default())
}

fn encoded(outcome: Outcome) -> (Vec<u8>, OutputFormat, u32, u32) {
    match outcome {
        Outcome::Encoded { bytes, format, width, height, .. } => (bytes, format, width, height),
        Outcome::Original { reason, tried } => panic!("served the original ({reason}; tried {tried:?})"),
    }
}

/// Mean absolute difference per channel of two same-size images, 0..255.
fn mean_diff(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

fn reference(path: &str, w: u32, h: u32) -> DynamicImage {
    image::load_from_memory(&asset(path)).expect("decode").resize_exact(w, h, image::imageops::FilterType::Lanczos3)
}

#[test]
fn resizes_a_photo_and_keeps_it_faithful() {
    let (bytes, format, w, h) = encoded(run("site/img/coffee.jpg", "w=256", LEGACY).unwrap());
    assert_eq!((format, w, h), (OutputFormat::Jpeg, 256, 171));
    let out = image::load_from_memory(&bytes).unwrap();
    assert_eq!(out.dimensions(), (256, 171));
    let d = mean_diff(&out, &reference("site/img/coffee.jpg", 256, 171));
    assert!(d < 4.0, "mean difference {d}");
}

#[test]
fn honours_exif_orientation_and_drops_metadata_by_default() {
    // rotated.jpg holds coffee.jpg turned 90° counter-clockwise, tagged orientation 6.
    let (bytes, _, w, h) = encoded(run("fixtures/images/rotated.jpg", "w=256", LEGACY).unwrap());
    assert_eq!((w, h), (256, 171), "upright: landscape like the original");
    let d = mean_diff(&image::load_from_memory(&bytes).unwrap(), &reference("site/img/coffee.jpg", 256, 171));
    assert!(d < 6.0, "mean difference to the upright original {d}");
    assert!(!bytes.windows(8).any(|w| w == b"edgelaye"), "metadata=none strips the copyright");
}

#[test]
fn metadata_copyright_keeps_only_copyright_and_artist() {
    for accept in [LEGACY, CHROME] {
        let outcome = run("fixtures/images/rotated.jpg", "w=256,metadata=copyright", accept).unwrap();
        let (bytes, ..) = encoded(outcome);
        assert!(bytes.windows(18).any(|w| w == b"(c) edgelayer test"), "{accept}: copyright kept");
        assert!(bytes.windows(11).any(|w| w == b"Test Artist"));
        if let Ok(img) = image::load_from_memory(&bytes) {
            assert_eq!(img.dimensions(), (256, 171), "orientation not applied twice");
        }
    }
}

#[test]
fn cmyk_grey_and_16_bit_sources() {
    let (bytes, ..) = encoded(run("fixtures/images/cmyk.jpg", "w=256", LEGACY).unwrap());
    let d = mean_diff(&image::load_from_memory(&bytes).unwrap(), &reference("site/img/coffee.jpg", 256, 171));
    assert!(d < 8.0, "CMYK converted to the right colours: mean difference {d}");

    let (bytes, format, ..) = encoded(run("fixtures/images/grey.jpg", "w=256", LEGACY).unwrap());
    assert_eq!(format, OutputFormat::Jpeg);
    assert!(matches!(image::load_from_memory(&bytes).unwrap(), DynamicImage::ImageLuma8(_)), "grey stays one channel");

    let (bytes, format, w, h) = encoded(run("fixtures/images/rgb16.png", "w=128", LEGACY).unwrap());
    assert_eq!((format, w, h), (OutputFormat::Png, 128, 96));
    assert!(matches!(image::load_from_memory(&bytes).unwrap(), DynamicImage::ImageRgb8(_)));
}

#[test]
fn alpha_is_kept() {
    for accept in [LEGACY, "image/webp,*/*"] {
        let (bytes, format, ..) = encoded(run("site/img/badge.png", "w=128", accept).unwrap());
        let img = image::load_from_memory(&bytes).unwrap();
        assert!(img.color().has_alpha(), "{format:?}");
        assert!(img.to_rgba8().pixels().any(|p| p.0[3] < 255), "transparent pixels survive ({format:?})");
    }
    let explicit = run("site/img/badge.png", "w=128,f=jpeg", LEGACY).unwrap();
    assert!(matches!(encoded(explicit).1, OutputFormat::Png), "JPEG cannot carry alpha: PNG instead");
}

#[test]
fn avif_for_browsers_that_take_it_and_never_larger_than_the_source() {
    let (bytes, format, ..) = encoded(run("site/img/coffee.jpg", "w=384", CHROME).unwrap());
    assert_eq!(format, OutputFormat::Avif);
    assert_eq!(&bytes[4..12], b"ftypavif");
    for path in ["site/img/coffee.jpg", "site/img/chelsea.jpg", "site/img/badge.png", "fixtures/images/grey.jpg", "fixtures/images/rgb16.png"] {
        let size = asset(path).len();
        for (opts, accept) in [("", LEGACY), ("q=90", LEGACY), ("w=256,f=png", LEGACY), ("w=128,f=webp", LEGACY), ("w=256", CHROME), ("w=128,f=webp", CHROME)] {
            {
                if let Outcome::Encoded { bytes, .. } = run(path, opts, accept).unwrap() {
                    assert!(bytes.len() < size, "{path} {opts} {accept}: {} >= {size}", bytes.len());
                }
            }
        }
    }
    // A re-encode of the same JPEG at the same size does not beat the source: the original.
    assert!(matches!(run("site/img/chelsea.jpg", "q=90", LEGACY).unwrap(), Outcome::Original { .. }));
}

#[test]
fn animations_pass_through_unless_the_first_frame_is_asked_for() {
    assert!(matches!(run("site/img/spinner.gif", "w=64", CHROME).unwrap(), Outcome::Original { reason, .. } if reason == "animated"));
    let (bytes, _, w, _) = encoded(run("site/img/spinner.gif", "w=32,anim=false", LEGACY).unwrap());
    assert_eq!(w, 32);
    assert!(image::load_from_memory(&bytes).is_ok());
}

#[test]
fn bad_sources_are_clear_errors() {
    let started = std::time::Instant::now();
    let bomb = run("fixtures/images/bomb.png", "w=256", LEGACY).unwrap_err();
    assert_eq!(bomb, ImageError::TooManyPixels(20000, 20000, 12_600_000));
    assert_eq!(bomb.status(), 413);
    assert!(started.elapsed().as_millis() < 1000, "refused from the header, not decoded");
    let cut = run("fixtures/images/truncated.jpg", "w=256", LEGACY).map(|_| ()).unwrap_err();
    assert!(matches!(cut, ImageError::Decode(_)), "{cut:?}");
    assert_eq!(cut.status(), 422);
    let text = process(b"<html>not an image</html>", &parse("", &ImageLimits::default()).unwrap(), LEGACY, &ImageSettings::default());
    assert_eq!(text.unwrap_err().status(), 415);
    let small = ImageSettings { max_source_bytes: 1000, ..ImageSettings::default() };
    let big = process(&asset("site/img/coffee.jpg"), &parse("", &ImageLimits::default()).unwrap(), LEGACY, &small);
    assert_eq!(big.unwrap_err().status(), 413);
}

#[test]
fn fit_modes_produce_the_box() {
    let (_, _, w, h) = encoded(run("site/img/coffee.jpg", "w=256,h=256,fit=cover", LEGACY).unwrap());
    assert_eq!((w, h), (256, 256));
    let (bytes, _, w, h) = encoded(run("site/img/coffee.jpg", "w=256,h=256,fit=pad,background=#ff0000", LEGACY).unwrap());
    assert_eq!((w, h), (256, 256));
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let corner = img.get_pixel(0, 0).0;
    assert!(corner[0] > 200 && corner[1] < 60 && corner[2] < 60, "padding is the background: {corner:?}");
}

#[test]
fn a_jpeg_cut_inside_its_scan_is_refused_not_served_grey() {
    let cut = run("fixtures/images/cut.jpg", "w=256", LEGACY).map(|_| ()).unwrap_err();
    assert_eq!((cut.clone(), cut.status()), (ImageError::Truncated, 422));
}

#[test]
fn webp_with_alpha_keeps_its_transparency_in_every_output() {
    for (accept, want) in [("image/webp,*/*", OutputFormat::Webp), (LEGACY, OutputFormat::Png)] {
        let outcome = run("fixtures/images/alpha.webp", "w=128,f=auto", accept).unwrap();
        let (bytes, format, w, h) = encoded(outcome);
        assert_eq!((format, w, h), (want, 128, 96), "{accept}");
        let img = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(img.get_pixel(0, 0).0[3], 0, "{accept}: the corner stays clear");
        assert_eq!(img.get_pixel(64, 48).0[3], 255, "{accept}: the disc stays opaque");
    }
}

#[test]
fn animated_gifs_are_resized_frame_by_frame_within_their_guards() {
    use image::AnimationDecoder;
    let (bytes, format, w, h) = encoded(run("fixtures/images/animated.gif", "w=64", CHROME).unwrap());
    assert_eq!((format, w, h), (OutputFormat::Gif, 64, 48));
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&bytes)).unwrap().into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3, "every frame kept");
    assert!(frames.iter().all(|f| f.buffer().dimensions() == (64, 48) && f.delay().numer_denom_ms() == (100, 1)), "sizes and delays kept");
    let first = DynamicImage::ImageRgba8(frames[0].buffer().clone());
    let second = DynamicImage::ImageRgba8(frames[1].buffer().clone());
    assert!(mean_diff(&first, &second) > 5.0, "the frames still differ (the animation moves)");

    let p = parse("w=64", &ImageLimits::default()).unwrap();
    let src = asset("fixtures/images/animated.gif");
    let few_frames = ImageSettings { max_animation_frames: 2, ..ImageSettings::default() };
    assert!(matches!(process(&src, &p, LEGACY, &few_frames).unwrap(), Outcome::Original { reason, .. } if reason == "animated: too many frames to resize"));
    let few_pixels = ImageSettings { max_animation_pixels: 120 * 90 * 2, ..ImageSettings::default() };
    assert!(matches!(process(&src, &p, LEGACY, &few_pixels).unwrap(), Outcome::Original { reason, .. } if reason == "animated: too many pixels to resize"));
    assert!(matches!(run("fixtures/images/animated.gif", "w=640", LEGACY).unwrap(), Outcome::Original { reason, .. } if reason == "animated"), "nothing to change");
    let (bytes, _, w, h) = encoded(run("fixtures/images/animated.gif", "w=64,anim=false", LEGACY).unwrap());
    assert_eq!((w, h), (64, 48));
    assert!(image::load_from_memory(&bytes).is_ok());
}

#[test]
fn avif_sources_go_through_to_clients_that_take_them() {
    assert!(matches!(run("fixtures/images/photo.avif", "w=256", CHROME).unwrap(), Outcome::Original { reason, .. } if reason == "avif source (passed through)"));
    let refused = run("fixtures/images/photo.avif", "w=256", "image/webp,image/png").unwrap_err();
    assert_eq!((refused.clone(), refused.status()), (ImageError::AvifSource, 415));
}

/// Mean absolute difference between horizontally neighbouring pixels: detail left.
fn detail(img: &DynamicImage) -> f64 {
    let g = img.to_luma8();
    let (w, h) = g.dimensions();
    let sum: u64 = (0..h).flat_map(|y| (1..w).map(move |x| (x, y))).map(|(x, y)| u64::from(g.get_pixel(x, y).0[0].abs_diff(g.get_pixel(x - 1, y).0[0]))).sum();
    sum as f64 / f64::from((w - 1) * h)
}

#[test]
fn rotate_flip_blur_sharpen_and_gravity() {
    let (_, _, w, h) = encoded(run("site/img/coffee.jpg", "w=256,rotate=90", LEGACY).unwrap());
    assert_eq!((w, h), (256, 384), "the box applies to the turned image (600x400 turned: 400x600)");
    let plain = image::load_from_memory(&encoded(run("site/img/coffee.jpg", "w=256,q=90", LEGACY).unwrap()).0).unwrap();
    let flipped = image::load_from_memory(&encoded(run("site/img/coffee.jpg", "w=256,q=90,flip=h", LEGACY).unwrap()).0).unwrap();
    assert!(mean_diff(&flipped.fliph(), &plain) < 3.0, "flip=h mirrors");
    let blurred = image::load_from_memory(&encoded(run("site/img/coffee.jpg", "w=256,q=90,blur=20", LEGACY).unwrap()).0).unwrap();
    let sharpened = image::load_from_memory(&encoded(run("site/img/coffee.jpg", "w=256,q=90,sharpen=5", LEGACY).unwrap()).0).unwrap();
    assert!(detail(&blurred) < detail(&plain) * 0.6, "blur removes detail: {} vs {}", detail(&blurred), detail(&plain));
    assert!(detail(&sharpened) > detail(&plain), "sharpen adds contrast at edges");
    let (_, _, w, h) = encoded(run("site/img/coffee.jpg", "w=128,h=128,fit=cover,gravity=auto", LEGACY).unwrap());
    assert_eq!((w, h), (128, 128));
}

#[test]
fn json_reports_sizes_without_an_image() {
    use edgelayer::image::process::describe_json;
    let p = parse("w=256,format=json", &ImageLimits::default()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&describe_json(&asset("fixtures/images/rotated.jpg"), &p, &ImageSettings::default()).unwrap()).unwrap();
    assert_eq!((json["width"].as_u64(), json["height"].as_u64()), (Some(256), Some(171)));
    assert_eq!((json["original"]["width"].as_u64(), json["original"]["height"].as_u64()), (Some(600), Some(400)), "upright (EXIF orientation 6)");
    assert_eq!(json["original"]["format"], "image/jpeg");
    assert_eq!(json["original"]["file_size"], asset("fixtures/images/rotated.jpg").len());
}

fn has_icc(jpeg: &[u8]) -> bool {
    jpeg.windows(12).any(|w| w == b"ICC_PROFILE\0")
}

#[test]
fn colour_profiles_end_as_srgb_without_a_profile() {
    // CMYK with its (64 kB) CMYK profile: right colours, and the profile does not ride along.
    let src = asset("fixtures/images/cmyk-icc.jpg");
    assert!(has_icc(&src));
    let (bytes, format, ..) = encoded(run("fixtures/images/cmyk-icc.jpg", "w=256", LEGACY).unwrap());
    assert_eq!(format, OutputFormat::Jpeg);
    assert!(!has_icc(&bytes), "no CMYK profile on an RGB JPEG");
    assert!(bytes.len() < 30_000, "{} bytes: no 64 kB table either", bytes.len());
    let d = mean_diff(&image::load_from_memory(&bytes).unwrap(), &reference("site/img/coffee.jpg", 256, 171));
    assert!(d < 8.0, "CMYK colours: mean difference {d}");

    // Adobe RGB pixels: converted, they match the sRGB original; taken as sRGB they would not.
    let (bytes, ..) = encoded(run("fixtures/images/adobergb.jpg", "w=256", LEGACY).unwrap());
    assert!(!has_icc(&bytes));
    let converted = mean_diff(&image::load_from_memory(&bytes).unwrap(), &reference("site/img/coffee.jpg", 256, 171));
    let naive = mean_diff(&reference("fixtures/images/adobergb.jpg", 256, 171), &reference("site/img/coffee.jpg", 256, 171));
    assert!(converted < 4.0 && converted < naive / 2.0, "converted {converted}, as if sRGB {naive}");

    // Non-sRGB profiles no longer keep AVIF away.
    for path in ["fixtures/images/adobergb.jpg", "fixtures/images/grey-gamma.jpg", "fixtures/images/cmyk-icc.jpg"] {
        assert_eq!(encoded(run(path, "w=384", CHROME).unwrap()).1, OutputFormat::Avif, "{path}");
    }
}

#[test]
fn never_larger_than_the_source_for_any_accept() {
    // A WebP with alpha asked of a client that names no WebP but takes anything: the original.
    let src = asset("fixtures/images/alpha.webp");
    for accept in [LEGACY, "image/*", "image/png,image/*;q=0.8", ""] {
        match run("fixtures/images/alpha.webp", "w=384", accept).unwrap() {
            Outcome::Encoded { bytes, .. } => assert!(bytes.len() < src.len(), "{accept:?}: {} >= {}", bytes.len(), src.len()),
            Outcome::Original { .. } => {}
        }
    }
    assert!(matches!(run("fixtures/images/alpha.webp", "w=384", LEGACY).unwrap(), Outcome::Original { .. }), "PNG of the same pixels is larger");
}
