//! Image benchmark (issue 5): `npm run bench:images` (corpus: tests/bench/image-corpus.sh).
//!
//! First issue 15's tables: shrink-on-load against the full decode, the two JPEG encoders side
//! by side, and `format=auto` encoding only the first candidate that beats the source against
//! every candidate (`IMAGES_QUICK=1` stops there); then the rate-distortion curves behind the
//! default qualities (`-- --rd` prints only these; `-- --avif-bound` what a level per image
//! could save). `-- --score` scores the side-by-side run
//! with the Pillow peer that images-worker.mjs makes. Then per image
//! and format: output bytes, SSIM against the resized reference (the pixels the
//! encoders were given), and encode time natively (median of 3). Then the AVIF speed/quality
//! grid behind the defaults, what `format=auto` saves for a Chrome `Accept`, and peak memory
//! (VmHWM, peak resident set, of a child process that runs one request) for 12 MP and 14.7 MP
//! JPEGs. SSIM: mean over 8×8 luma windows at stride 4 (the libvpx/ffmpeg formulation); AVIF
//! is decoded for scoring with Debian's `avifdec` (libavif-bin) when present.
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

use edgelayer::image::negotiate::{candidates, OutputFormat};
use edgelayer::image::params::FormatRequest;
use edgelayer::image::params::{parse, ImageLimits};
use edgelayer::image::process::{encode, prepare, process, ImageSettings, JpegMode, Outcome};
use image::DynamicImage;
use std::path::{Path, PathBuf};
use std::time::Instant;

const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

/// Luma of the image composited onto white (colours under transparent pixels do not count).
fn luma(img: &DynamicImage) -> (Vec<f64>, usize, usize) {
    let rgba = img.to_rgba8();
    let v = rgba
        .pixels()
        .map(|p| {
            let a = f64::from(p.0[3]) / 255.0;
            let c = |i: usize| f64::from(p.0[i]) * a + 255.0 * (1.0 - a);
            0.299 * c(0) + 0.587 * c(1) + 0.114 * c(2)
        })
        .collect();
    (v, rgba.width() as usize, rgba.height() as usize)
}

/// Mean SSIM of two same-size images over 8×8 luma windows at stride 4.
fn ssim(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let ((x, w, h), (y, _, _)) = (luma(a), luma(b));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut total, mut n) = (0.0, 0usize);
    for wy in (0..h.saturating_sub(7)).step_by(4) {
        for wx in (0..w.saturating_sub(7)).step_by(4) {
            let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for j in wy..wy + 8 {
                for i in wx..wx + 8 {
                    let (p, q) = (x[j * w + i], y[j * w + i]);
                    sx += p;
                    sy += q;
                    sxx += p * p;
                    syy += q * q;
                    sxy += p * q;
                }
            }
            let m = 64.0;
            let (mx, my) = (sx / m, sy / m);
            let (vx, vy, cov) = (sxx / m - mx * mx, syy / m - my * my, sxy / m - mx * my);
            total += ((2.0 * mx * my + c1) * (2.0 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
            n += 1;
        }
    }
    if n == 0 {
        1.0
    } else {
        total / n as f64
    }
}

/// Decodes an output for scoring (`avifdec` for AVIF; `None` when it is missing).
fn decode(bytes: &[u8], format: OutputFormat) -> Option<DynamicImage> {
    if format != OutputFormat::Avif {
        return image::load_from_memory(bytes).ok();
    }
    let dir = std::env::temp_dir();
    let (src, dst) = (dir.join(format!("edgelayer-bench-{}.avif", std::process::id())), dir.join(format!("edgelayer-bench-{}.png", std::process::id())));
    std::fs::write(&src, bytes).ok()?;
    let ok = std::process::Command::new("avifdec").arg(&src).arg(&dst).stdout(std::process::Stdio::null()).status().ok()?.success();
    let img = if ok { image::open(&dst).ok() } else { None };
    let _ = (std::fs::remove_file(&src), std::fs::remove_file(&dst));
    img
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = ["site/img/coffee.jpg", "site/img/chelsea.jpg", "site/img/badge.png"].iter().map(|p| root.join("assets").join(p)).collect();
    let dir = root.join("target/corpus/images");
    let mut extra: Vec<PathBuf> = std::fs::read_dir(&dir).map(|d| d.filter_map(|e| Some(e.ok()?.path())).filter(|p| !p.to_string_lossy().contains("mp.jpg") && p.extension().is_some()).collect()).unwrap_or_default();
    extra.sort();
    if extra.is_empty() {
        eprintln!("(no corpus in {}: run tests/bench/image-corpus.sh for the photos)", dir.display());
    }
    files.extend(extra);
    files
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Child mode: runs one request on `file` with `options` and prints the peak resident set.
fn peak_child(file: &str, options: &str) {
    let status = |key: &str| -> u64 { std::fs::read_to_string("/proc/self/status").ok().and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())).unwrap_or(0) };
    let bytes = std::fs::read(file).expect("read source");
    let before = status("VmHWM:");
    let params = parse(options, &ImageLimits::default()).expect("options");
    let start = Instant::now();
    let out = process(&bytes, &params, CHROME, &ImageSettings { max_source_pixels: 20_000_000, ..ImageSettings::default() }).expect("process");
    let ms = start.elapsed().as_millis();
    let (fmt, size) = match out {
        Outcome::Encoded { format, bytes, .. } => (format!("{format:?}"), bytes.len()),
        Outcome::Original { .. } => ("original".to_owned(), bytes.len()),
    };
    println!("{} {} {} {fmt} {size} {ms}", before, status("VmHWM:"), bytes.len());
}

/// JPEG bytes, SSIM and time from image's baseline encoder (4:2:2, standard Huffman tables)
/// and from the pipeline's (`jpeg-encoder`: progressive, optimised tables, 4:2:0), on the same
/// resized pixels and quality (issue 15).
fn jpeg_encoders(files: &[PathBuf], settings: &ImageSettings) {
    println!("## JPEG encoders side by side: image's baseline vs the pipeline's (same pixels, same quality)\n");
    println!("| width | quality | images | baseline bytes | ours | ours / baseline | baseline SSIM (mean) | ours | baseline ms (total) | ours |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for spec in ["w=384", "w=1200"] {
        for quality in [80u8, 85] {
            let (mut n, mut base_bytes, mut our_bytes, mut base_ssim, mut our_ssim, mut base_ms, mut our_ms) = (0, 0, 0, 0.0, 0.0, 0.0, 0.0);
            for file in files {
                let source = std::fs::read(file).expect("read");
                let params = parse(spec, &ImageLimits::default()).expect("params");
                let Ok(Some(prep)) = prepare(&source, &params, settings) else { continue };
                if prep.image.color().has_alpha() {
                    continue;
                }
                let rgb = DynamicImage::ImageRgb8(prep.image.to_rgb8());
                let baseline = || {
                    let mut out = Vec::new();
                    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(&rgb).expect("baseline");
                    out
                };
                let base = baseline();
                let ours = encode(&rgb, OutputFormat::Jpeg, Some(quality), JpegMode::Progressive, settings, None, None).expect("encode");
                base_ms += median_ms(3, || {
                    let _ = baseline();
                });
                our_ms += median_ms(3, || {
                    let _ = encode(&rgb, OutputFormat::Jpeg, Some(quality), JpegMode::Progressive, settings, None, None);
                });
                base_ssim += decode(&base, OutputFormat::Jpeg).map_or(0.0, |d| ssim(&rgb, &d));
                our_ssim += decode(&ours, OutputFormat::Jpeg).map_or(0.0, |d| ssim(&rgb, &d));
                base_bytes += base.len();
                our_bytes += ours.len();
                n += 1;
            }
            let nf = f64::from(n.max(1));
            println!(
                "| {} | {quality} | {n} | {base_bytes} | {our_bytes} | {:.3} | {:.4} | {:.4} | {base_ms:.0} | {our_ms:.0} |",
                &spec[2..],
                our_bytes as f64 / base_bytes.max(1) as f64,
                base_ssim / nf,
                our_ssim / nf
            );
        }
    }
    println!();
}

/// `format=auto` with Chrome's `Accept` at w=384 (the test): the pipeline (the first
/// candidate that beats the source wins) next to the rule it replaced (encode every candidate,
/// keep the smallest), bytes served and time, over every still image.
fn first_winner_vs_smallest(files: &[PathBuf], settings: &ImageSettings) {
    println!("## format=auto, w=384, Chrome's Accept: first candidate that beats the source vs every candidate encoded (ms include decode and resize)\n");
    println!("| image | served now | bytes | ms | every candidate: served | bytes | ms |");
    println!("|---|---|---:|---:|---|---:|---:|");
    let params = parse("w=384", &ImageLimits::default()).expect("params");
    let (mut now_total, mut old_total, mut now_ms, mut old_ms) = (0, 0, 0.0, 0.0);
    for file in files {
        let source = std::fs::read(file).expect("read");
        if !matches!(prepare(&source, &params, settings), Ok(Some(_))) {
            continue; // animations and what does not decode
        }
        let t = Instant::now();
        let Ok(now) = process(&source, &params, CHROME, settings) else { continue };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let (now_fmt, now_len) = match &now {
            Outcome::Encoded { format, bytes, .. } => (format!("{format:?}"), bytes.len()),
            Outcome::Original { .. } => ("original".to_owned(), source.len()),
        };
        let t = Instant::now();
        let Ok(Some(prep)) = prepare(&source, &params, settings) else { continue }; // timed like process's
        let has_alpha = prep.image.color().has_alpha();
        let src_fmt = match image::guess_format(&source) {
            Ok(image::ImageFormat::Png) => OutputFormat::Png,
            Ok(image::ImageFormat::Gif) => OutputFormat::Gif,
            Ok(image::ImageFormat::WebP) => OutputFormat::Webp,
            _ => OutputFormat::Jpeg,
        };
        let mut smallest: Option<(OutputFormat, usize)> = None;
        for fmt in candidates(FormatRequest::Auto, CHROME, src_fmt, has_alpha) {
            if fmt == OutputFormat::Avif && prep.image.width().max(prep.image.height()) > settings.avif_max_side {
                continue;
            }
            let len = encode(&prep.image, fmt, None, JpegMode::Progressive, settings, None, None).map_or(usize::MAX, |b| b.len());
            if smallest.is_none_or(|(_, s)| len < s) {
                smallest = Some((fmt, len));
            }
        }
        let old = t.elapsed().as_secs_f64() * 1000.0;
        let (old_fmt, old_len) = match smallest {
            Some((f, len)) if len < source.len() => (format!("{f:?}"), len),
            _ => ("original".to_owned(), source.len()),
        };
        println!("| {} | {now_fmt} | {now_len} | {ms:.0} | {old_fmt} | {old_len} | {old:.0} |", name(file));
        now_total += now_len;
        old_total += old_len;
        now_ms += ms;
        old_ms += old;
    }
    println!(
        "| **total** | | {now_total} | {now_ms:.0} | | {old_total} | {old_ms:.0} |\n\nbytes {:.3}× and time {:.2}× the every-candidate rule's\n",
        now_total as f64 / old_total.max(1) as f64,
        now_ms / old_ms.max(1e-9)
    );
}

/// The source decoded upright (EXIF orientation applied), for the scoring reference.
fn upright(path: &str) -> DynamicImage {
    let mut decoder = image::ImageReader::open(path).expect("open").with_guessed_format().expect("format").into_decoder().expect("decoder");
    let orientation = image::ImageDecoder::orientation(&mut decoder).expect("orientation");
    let mut img = DynamicImage::from_decoder(decoder).expect("decode");
    img.apply_orientation(orientation);
    img
}

/// One request scored: edge bytes, edge SSIM, Pillow bytes, Pillow SSIM.
type Scored = (usize, f64, usize, f64);

/// `--score`: the side-by-side run's outputs (target/image-outputs, written by
/// images-worker.mjs) scored against one reference per output size: the source resized with
/// the `image` crate's own float Lanczos3, which neither server uses. Prints bytes and SSIM
/// per request, then per options and `Accept` and in all: the bytes ratio, mean and min SSIM.
fn score() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/image-outputs");
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        println!("(no target/image-outputs/manifest.json: node tests/bench/images-worker.mjs writes it)");
        return;
    };
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest");
    let format_of = |t: &str| match t {
        "image/avif" => OutputFormat::Avif,
        "image/webp" => OutputFormat::Webp,
        "image/png" => OutputFormat::Png,
        "image/gif" => OutputFormat::Gif,
        _ => OutputFormat::Jpeg,
    };
    println!("\n## Side by side with the Pillow peer: bytes and SSIM (luma, against the source resized by image's float Lanczos3)\n");
    println!("| image | options | Accept | edge | bytes | SSIM | Pillow | bytes | SSIM |");
    println!("|---|---|---|---|---:|---:|---|---:|---:|");
    let mut groups: Vec<(String, Vec<Scored>)> = Vec::new();
    let mut sources: std::collections::HashMap<String, DynamicImage> = std::collections::HashMap::new();
    for entry in manifest.as_array().into_iter().flatten() {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let source = text(&entry["source"]);
        let src = sources.entry(source.clone()).or_insert_with(|| upright(&source)).clone();
        let mut scored = Vec::new();
        for side in ["edge", "pillow"] {
            let s = &entry[side];
            let bytes = std::fs::read(dir.join(text(&s["file"]))).expect("output");
            let out = decode(&bytes, format_of(&text(&s["type"])));
            let score = out.map_or(f64::NAN, |o| {
                let reference = src.resize_exact(o.width(), o.height(), image::imageops::FilterType::Lanczos3);
                ssim(&reference, &o)
            });
            scored.push((text(&s["type"]), bytes.len(), score));
        }
        let (options, accept) = (text(&entry["options"]), text(&entry["accept"]));
        println!(
            "| {} | {options} | {accept} | {} | {} | {:.4} | {} | {} | {:.4} |",
            name(Path::new(&source)),
            scored[0].0.trim_start_matches("image/"),
            scored[0].1,
            scored[0].2,
            scored[1].0.trim_start_matches("image/"),
            scored[1].1,
            scored[1].2
        );
        let key = format!("{options}, {accept}");
        let row = (scored[0].1, scored[0].2, scored[1].1, scored[1].2);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    println!("\n| options, Accept | requests | edge bytes | Pillow bytes | ratio | edge SSIM mean | min | Pillow SSIM mean | min |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let all: Vec<_> = groups.iter().flat_map(|(_, r)| r.iter().copied()).collect();
    for (key, rows) in groups.iter().chain(std::iter::once(&("**all**".to_owned(), all))) {
        let sum = |f: fn(&Scored) -> f64| rows.iter().map(f).sum::<f64>();
        let min = |f: fn(&Scored) -> f64| rows.iter().map(f).fold(f64::INFINITY, f64::min);
        let n = rows.len().max(1) as f64;
        let (eb, pb) = (sum(|r| r.0 as f64), sum(|r| r.2 as f64));
        println!("| {key} | {} | {eb:.0} | {pb:.0} | **{:.3}** | {:.4} | {:.4} | {:.4} | {:.4} |", rows.len(), eb / pb.max(1.0), sum(|r| r.1) / n, min(|r| r.1), sum(|r| r.3) / n, min(|r| r.3));
    }
}

/// Shrink-on-load (issue 15): JPEGs decoded at 1/2, 1/4 or 1/8 size before the resize, against
/// the full decode: time to the resized pixels (median of 3) and how close those pixels are to
/// the reference (SSIM against image's float Lanczos3 from the full source; no encoder involved).
fn shrink_on_load(files: &[PathBuf]) {
    println!("## Shrink-on-load: decode + resize, full decode vs DCT-scaled decode (no encoding; SSIM of the resized pixels)\n");
    println!("| image | width | shrink | full ms | shrunk ms | ratio | full SSIM | shrunk SSIM |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let on = ImageSettings::default();
    let off = ImageSettings { shrink_on_load: false, ..ImageSettings::default() };
    let mut jpegs: Vec<PathBuf> = files.iter().filter(|f| f.extension().is_some_and(|e| e == "jpg")).cloned().collect();
    let twelve = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/corpus/images/twelve-mp.jpg");
    if twelve.exists() {
        jpegs.push(twelve);
    }
    let (mut full_total, mut shrunk_total) = (0.0, 0.0);
    for file in &jpegs {
        let source = std::fs::read(file).expect("read");
        let reference_source = upright(&file.to_string_lossy());
        for width in [384u32, 1200] {
            let params = parse(&format!("width={width}"), &ImageLimits::default()).expect("params");
            let Ok(Some(full)) = prepare(&source, &params, &off) else { continue };
            let Ok(Some(shrunk)) = prepare(&source, &params, &on) else { continue };
            let (w, h) = (full.image.width(), full.image.height());
            let shrink = edgelayer::image::process::jpeg_shrink(full.source, &params);
            let full_ms = median_ms(3, || {
                let _ = prepare(&source, &params, &off);
            });
            let shrunk_ms = median_ms(3, || {
                let _ = prepare(&source, &params, &on);
            });
            full_total += full_ms;
            shrunk_total += shrunk_ms;
            let reference = reference_source.resize_exact(w, h, image::imageops::FilterType::Lanczos3);
            println!("| {} | {width} | {shrink} | {full_ms:.0} | {shrunk_ms:.0} | {:.2} | {:.4} | {:.4} |", name(file), shrunk_ms / full_ms, ssim(&reference, &full.image), ssim(&reference, &shrunk.image));
        }
    }
    println!("| **total** | | | {full_total:.0} | {shrunk_total:.0} | {:.2} | | |\n", shrunk_total / full_total.max(1e-9));
}

/// The rate-distortion curves behind the default qualities (issue 15): for each encoder and
/// quality, total bytes and mean and min SSIM over the still images at the side-by-side run's
/// widths, scored like `--score` (against image's float Lanczos3 resize of the source), so the
/// rows can be read against the Pillow peer's totals there.
fn rd_curves(files: &[PathBuf], settings: &ImageSettings) {
    println!("## Rate-distortion: bytes and SSIM per encoder quality (URL quality scale; reference as in the side-by-side table)\n");
    println!("| width | format | quality | images | bytes | SSIM mean | min | encode ms (total) |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for width in [384u32, 1200] {
        let params = parse(&format!("width={width}"), &ImageLimits::default()).expect("params");
        let mut prepared = Vec::new();
        for file in files {
            let Ok(source) = std::fs::read(file) else { continue };
            let Ok(Some(prep)) = prepare(&source, &params, settings) else { continue };
            let reference = upright(&file.to_string_lossy()).resize_exact(prep.image.width(), prep.image.height(), image::imageops::FilterType::Lanczos3);
            prepared.push((prep.image, reference));
        }
        let grid: &[(OutputFormat, &[u8])] = &[(OutputFormat::Avif, &[60, 70, 75, 80, 85, 90]), (OutputFormat::Webp, &[70, 75, 80, 85]), (OutputFormat::Jpeg, &[70, 75, 80, 85])];
        for &(format, qualities) in grid {
            for &quality in qualities {
                let (mut bytes, mut scores, mut ms) = (0, Vec::new(), 0.0);
                for (img, reference) in &prepared {
                    if format == OutputFormat::Jpeg && img.color().has_alpha() {
                        continue;
                    }
                    let t = Instant::now();
                    let out = encode(img, format, Some(quality), JpegMode::Progressive, settings, None, None).expect("encode");
                    ms += t.elapsed().as_secs_f64() * 1000.0;
                    bytes += out.len();
                    if let Some(d) = decode(&out, format) {
                        scores.push(ssim(reference, &d));
                    }
                }
                let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
                let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
                println!("| {width} | {format:?} | {quality} | {} | {bytes} | {mean:.4} | {min:.4} | {ms:.0} |", scores.len());
            }
        }
    }
    println!();
}

/// One image at one AVIF level: file bytes and SSIM.
type Level = (usize, f64);

/// The least total bytes over `images` (each a list of levels) whose mean SSIM is at least
/// `mean` with every image at `floor` or more, each image at a level of its own: a knapsack
/// solved exactly over SSIM sums in steps of 1e-4. `None` when no choice meets both.
fn least_bytes(images: &[Vec<Level>], mean: f64, floor: f64) -> Option<usize> {
    // State: the sum of SSIM (×1e4) reached → the fewest bytes that reach it.
    let mut reach: Vec<(i64, usize)> = vec![(0, 0)];
    for levels in images {
        let mut next: Vec<(i64, usize)> = Vec::new();
        for &(sum, bytes) in &reach {
            for &(b, s) in levels.iter().filter(|l| l.1 >= floor) {
                next.push((sum + (s * 1e4) as i64, bytes + b));
            }
        }
        // Keep the pareto front: more SSIM for fewer bytes.
        next.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        reach.clear();
        for (sum, bytes) in next {
            if reach.last().is_none_or(|&(_, best)| bytes < best) {
                reach.push((sum, bytes));
            }
        }
    }
    let need = (mean * 1e4) as i64 * images.len() as i64;
    reach.iter().filter(|r| r.0 >= need).map(|r| r.1).min()
}

/// The Pillow peer's Chrome rows of the side-by-side run (target/image-outputs): per width,
/// total bytes and mean SSIM, scored like `--score`.
fn peer_chrome_rows() -> Vec<(u32, usize, f64)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/image-outputs");
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else { return Vec::new() };
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest");
    let mut rows: Vec<(u32, usize, f64, usize)> = Vec::new();
    for entry in manifest.as_array().into_iter().flatten() {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let options = text(&entry["options"]);
        let Some(width) = options.strip_prefix("width=").and_then(|o| o.split(',').next()).and_then(|w| w.parse::<u32>().ok()) else { continue };
        if text(&entry["accept"]) != "Chrome" || text(&entry["pillow"]["type"]) != "image/avif" {
            continue;
        }
        let bytes = std::fs::read(dir.join(text(&entry["pillow"]["file"]))).expect("output");
        let Some(out) = decode(&bytes, OutputFormat::Avif) else { continue };
        let reference = upright(&text(&entry["source"])).resize_exact(out.width(), out.height(), image::imageops::FilterType::Lanczos3);
        let score = ssim(&reference, &out);
        match rows.iter_mut().find(|r| r.0 == width) {
            Some(r) => (r.1, r.2, r.3) = (r.1 + bytes.len(), r.2 + score, r.3 + 1),
            None => rows.push((width, bytes.len(), score, 1)),
        }
    }
    rows.into_iter().map(|(w, b, s, n)| (w, b, s / n as f64)).collect()
}

/// `--avif-bound` (issue 15): what a level chosen per image, with hindsight, could save at each
/// AVIF speed. Every image is encoded at a grid of levels; then, against the Pillow peer's
/// Chrome rows of the side-by-side run, the least bytes with mean SSIM at least the peer's and
/// every image at 0.90 or more, one level for all (what the edge does) and one per image (a
/// bound no per-request rule can beat, as it knows every image's curve).
fn avif_bound(files: &[PathBuf]) {
    let peer = peer_chrome_rows();
    if peer.is_empty() {
        println!("(no Pillow AVIF rows in target/image-outputs: run images-worker.mjs first)");
        return;
    }
    println!("## AVIF: one level for all images against a level per image (hindsight), per speed\n");
    println!("| width | speed | Pillow bytes | SSIM mean | one level: bytes | ratio | per image: bytes | ratio | encode ms at the default level |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // URL qualities; AVIF's own is 15 lower (constant-quality levels about 14 to 44).
    let qualities: Vec<u8> = (55..=100).step_by(3).collect();
    for (width, peer_bytes, peer_mean) in peer {
        let params = parse(&format!("width={width}"), &ImageLimits::default()).expect("params");
        let mut prepared = Vec::new();
        for file in files {
            let Ok(source) = std::fs::read(file) else { continue };
            let Ok(Some(prep)) = prepare(&source, &params, &ImageSettings::default()) else { continue };
            let reference = upright(&file.to_string_lossy()).resize_exact(prep.image.width(), prep.image.height(), image::imageops::FilterType::Lanczos3);
            prepared.push((prep.image, reference));
        }
        for speed in [8u8, 7, 6] {
            let settings = ImageSettings { avif_speed: speed, ..ImageSettings::default() };
            let mut curves: Vec<Vec<Level>> = Vec::new();
            let mut default_ms = 0.0;
            for (img, reference) in &prepared {
                let mut levels = Vec::new();
                for &q in &qualities {
                    let t = Instant::now();
                    let out = encode(img, OutputFormat::Avif, Some(q), JpegMode::Progressive, &settings, None, None).expect("encode");
                    if q == 85 {
                        default_ms += t.elapsed().as_secs_f64() * 1000.0;
                    }
                    let score = decode(&out, OutputFormat::Avif).map_or(0.0, |d| ssim(reference, &d));
                    levels.push((out.len(), score));
                }
                curves.push(levels);
            }
            let one = (0..qualities.len())
                .filter_map(|i| {
                    let row: Vec<Level> = curves.iter().map(|c| c[i]).collect();
                    let mean = row.iter().map(|l| l.1).sum::<f64>() / row.len() as f64;
                    (mean >= peer_mean && row.iter().all(|l| l.1 >= 0.90)).then(|| row.iter().map(|l| l.0).sum::<usize>())
                })
                .min();
            let each = least_bytes(&curves, peer_mean, 0.90);
            let cell = |b: Option<usize>| b.map_or(("none".to_owned(), "–".to_owned()), |b| (b.to_string(), format!("{:.3}", b as f64 / peer_bytes as f64)));
            let ((ob, or), (eb, er)) = (cell(one), cell(each));
            println!("| {width} | {speed} | {peer_bytes} | {peer_mean:.4} | {ob} | {or} | {eb} | {er} | {default_ms:.0} |");
        }
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--peak") {
        peak_child(&args[i + 1], &args[i + 2]);
        return;
    }
    if args.iter().any(|a| a == "--score") {
        score();
        return;
    }
    if args.iter().any(|a| a == "--shrink") {
        shrink_on_load(&corpus());
        return;
    }
    if args.iter().any(|a| a == "--avif-bound") {
        avif_bound(&corpus());
        return;
    }
    if args.iter().any(|a| a == "--rd") {
        rd_curves(&corpus(), &ImageSettings::default());
        return;
    }
    let settings = ImageSettings::default();
    let files = corpus();
    shrink_on_load(&files);
    jpeg_encoders(&files, &settings);
    first_winner_vs_smallest(&files, &settings);
    if std::env::var("IMAGES_QUICK").is_ok() {
        return;
    }
    rd_curves(&files, &settings);

    println!("## Per image and format (w=1200, scale-down; native, release build)\n");
    println!("| image | source | output | format | bytes | vs source | SSIM | encode ms |");
    println!("|---|---|---|---|---:|---:|---:|---:|");
    let (mut total_src, mut total_auto) = (0usize, 0usize);
    let mut auto_rows = Vec::new();
    for file in &files {
        let source = std::fs::read(file).expect("read");
        let params = parse("w=1200", &ImageLimits::default()).expect("params");
        let Some(prep) = prepare(&source, &params, &settings).expect("prepare") else {
            continue;
        };
        let decode_ms = median_ms(3, || {
            let _ = prepare(&source, &params, &settings);
        });
        let (w, h) = (prep.image.width(), prep.image.height());
        let fmts = [OutputFormat::Jpeg, OutputFormat::Avif, OutputFormat::Webp, OutputFormat::Png];
        for fmt in fmts {
            if fmt == OutputFormat::Jpeg && prep.image.color().has_alpha() {
                continue;
            }
            let out = encode(&prep.image, fmt, None, JpegMode::Progressive, &settings, None, None).expect("encode");
            let runs = if fmt == OutputFormat::Avif { 1 } else { 3 };
            let ms = median_ms(runs, || {
                let _ = encode(&prep.image, fmt, None, JpegMode::Progressive, &settings, None, None);
            });
            let score = decode(&out, fmt).map_or("n/a".to_owned(), |d| format!("{:.4}", ssim(&prep.image, &d)));
            println!(
                "| {} | {}×{} {} KB | {w}×{h} | {fmt:?} | {} | {:.0} % | {score} | {ms:.0} |",
                name(file),
                prep.source.0,
                prep.source.1,
                source.len() / 1024,
                out.len(),
                100.0 * out.len() as f64 / source.len() as f64
            );
        }
        println!("| {} | decode + resize | | | | | | {decode_ms:.0} |", name(file));
        let auto = process(&source, &parse("", &ImageLimits::default()).expect("p"), CHROME, &settings).expect("auto");
        let (fmt, size) = match &auto {
            Outcome::Encoded { format, bytes, .. } => (format!("{format:?}"), bytes.len()),
            Outcome::Original { reason, .. } => (format!("original ({reason})"), source.len()),
        };
        total_src += source.len();
        total_auto += size;
        auto_rows.push(format!("| {} | {} | {fmt} | {size} | {:.0} % |", name(file), source.len(), 100.0 * size as f64 / source.len() as f64));
    }

    println!("\n## format=auto, no resize, Chrome's Accept (AVIF capped at {} px, so large photos stay JPEG or original)\n", settings.avif_max_side);
    println!("| image | source bytes | served | bytes | of source |");
    println!("|---|---:|---|---:|---:|");
    for r in &auto_rows {
        println!("{r}");
    }
    println!("| **total** | {total_src} | | {total_auto} | {:.0} % (saved {} bytes) |", 100.0 * total_auto as f64 / total_src.max(1) as f64, total_src - total_auto);

    println!("\n## AVIF speed × quality at w=750 (photos; bytes relative to JPEG q85 of the same pixels)\n");
    println!("| speed | quality | bytes vs JPEG q85 (median) | SSIM (mean) | JPEG q85 SSIM (mean) | encode ms (total) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let photos: Vec<_> = files.iter().filter(|f| f.extension().is_some_and(|e| e == "jpg")).collect();
    let preps: Vec<DynamicImage> = photos.iter().filter_map(|f| prepare(&std::fs::read(f).ok()?, &parse("w=750", &ImageLimits::default()).ok()?, &settings).ok().flatten().map(|p| p.image)).collect();
    let jpegs: Vec<(usize, f64)> = preps
        .iter()
        .map(|img| {
            let j = encode(img, OutputFormat::Jpeg, Some(85), JpegMode::Progressive, &settings, None, None).expect("jpeg");
            (j.len(), decode(&j, OutputFormat::Jpeg).map_or(0.0, |d| ssim(img, &d)))
        })
        .collect();
    let jpeg_ssim = jpegs.iter().map(|j| j.1).sum::<f64>() / jpegs.len().max(1) as f64;
    for speed in [6u8, 8, 10] {
        for quality in [55u8, 70, 80] {
            let s = ImageSettings { avif_speed: speed, avif_quality: quality, ..settings.clone() };
            let (mut ratios, mut scores, mut ms) = (Vec::new(), Vec::new(), 0.0);
            for (img, (jlen, _)) in preps.iter().zip(&jpegs) {
                let t = Instant::now();
                let a = encode(img, OutputFormat::Avif, None, JpegMode::Progressive, &s, None, None).expect("avif");
                ms += t.elapsed().as_secs_f64() * 1000.0;
                ratios.push(a.len() as f64 / *jlen as f64);
                if let Some(d) = decode(&a, OutputFormat::Avif) {
                    scores.push(ssim(img, &d));
                }
            }
            ratios.sort_by(f64::total_cmp);
            let score = if scores.is_empty() { "n/a".to_owned() } else { format!("{:.4}", scores.iter().sum::<f64>() / scores.len() as f64) };
            println!("| {speed} | {quality} | {:.2} | {score} | {jpeg_ssim:.4} | {ms:.0} |", ratios.get(ratios.len() / 2).copied().unwrap_or(0.0));
        }
    }

    println!("\n## Peak memory of one request (VmHWM of a child process; source read into memory first)\n");
    println!("| source | options | baseline KB | peak KB | served | bytes | ms |");
    println!("|---|---|---:|---:|---|---:|---:|");
    let big = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/corpus/images/flow-14mp.jpg");
    if big.exists() {
        // A 12 MP (4000×3000) JPEG cut from the 14.7 MP photo, q90.
        let twelve = std::env::temp_dir().join("edgelayer-12mp.jpg");
        let img = image::open(&big).expect("open").crop_imm(0, 0, 4000, 2880);
        let img = img.resize_exact(4000, 3000, image::imageops::FilterType::Triangle);
        let mut out = std::fs::File::create(&twelve).expect("create");
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).expect("encode 12 MP");
        let progressive = big.with_file_name("progressive-12mp.jpg");
        let mut runs = vec![(&twelve, "w=1200"), (&twelve, "w=3840"), (&big, "w=1200"), (&big, "")];
        if progressive.exists() {
            runs.extend([(&progressive, "w=1200"), (&progressive, "")]);
        }
        for (file, opts) in runs {
            let me = std::env::current_exe().expect("exe");
            let o = std::process::Command::new(me).args(["--peak", &file.to_string_lossy(), opts]).output().expect("child");
            let line = String::from_utf8_lossy(&o.stdout);
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 6 {
                println!("| {} ({} KB) | {opts:?} | {} | {} | {} | {} | {} |", name(file), f[2].parse::<usize>().unwrap_or(0) / 1024, f[0], f[1], f[3], f[4], f[5]);
            } else {
                println!("| {} | {opts:?} | failed: {} |", name(file), String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            }
        }
    } else {
        println!("(no target/corpus/images/flow-14mp.jpg: run tests/bench/image-corpus.sh)");
    }
}
