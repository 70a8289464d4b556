//! `/cdn-cgi/image/<options>/<source path>` (Cloudflare's URL format): options are
//! comma-separated `key=value` pairs, values percent-decoded. Parsed once into
//! [`ImageParams`], bounded by [`ImageLimits`] so the URL space cannot be used to bust the cache
//! or burn CPU: by default a width, height or quality off the ladder snaps to the nearest
//! allowed value and an option this edge does not implement is ignored (both said in
//! [`ImageParams::notes`], sent as a response header), so existing Cloudflare markup keeps
//! working; `ladder = "strict"` and `unknown_options = "reject"` answer those with a 400 that
//! says what is allowed.

use std::fmt;

/// The URL prefix of resizing requests.
pub const PREFIX: &str = "/cdn-cgi/image/";

/// How the image fits the requested box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Fit {
    /// Shrink to fit inside the box, never enlarge (the default).
    #[default]
    ScaleDown,
    /// Fit inside the box, enlarging if needed.
    Contain,
    /// Fill the box, cropping the overflow.
    Cover,
    /// Like cover, but never enlarges.
    Crop,
    /// Fit inside the box and pad to its exact size with `background`.
    Pad,
    /// Stretch to exactly the box, ignoring the aspect ratio.
    Squeeze,
}

/// Where a crop (`fit=cover`/`crop`) keeps the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Gravity {
    /// The middle (the default).
    #[default]
    Centre,
    /// A point, in thousandths of the width and height (`0.25x0.5`; `left` is `0x0.5`).
    Point(u16, u16),
    /// The most detailed part: the window with the most edge energy (a cheap saliency).
    Auto,
}

/// Mirroring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Flip {
    /// None (the default).
    #[default]
    None,
    /// Left to right.
    Horizontal,
    /// Top to bottom.
    Vertical,
    /// Both.
    Both,
}

/// How a JPEG is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum JpegMode {
    /// Progressive (the default, as Cloudflare's `format=jpeg`).
    #[default]
    Progressive,
    /// Sequential, for clients that cannot show progressive JPEGs (`format=baseline-jpeg`).
    Baseline,
}

/// Requested output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FormatRequest {
    /// Negotiate from `Accept` (the default).
    #[default]
    Auto,
    /// AVIF.
    Avif,
    /// WebP.
    Webp,
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// No image: JSON with the source's and the output's dimensions and format.
    Json,
}

/// Metadata kept in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Metadata {
    /// Strip everything (the default).
    #[default]
    None,
    /// Keep copyright where the format allows.
    Copyright,
    /// Keep what the encoder can carry.
    Keep,
}

/// Validated resizing options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageParams {
    /// Target width in pixels after `dpr` (`None`: the source's).
    pub width: Option<u32>,
    /// Target height in pixels after `dpr` (`None`: the source's).
    pub height: Option<u32>,
    /// Fit mode.
    pub fit: Fit,
    /// Quality 1..=100 for lossy formats (`None`: the encoder default).
    pub quality: Option<u8>,
    /// Output format.
    pub format: FormatRequest,
    /// How a JPEG is written: `format=baseline-jpeg` asks for a sequential one.
    pub jpeg: JpegMode,
    /// Padding colour (`fit=pad`), RGBA.
    pub background: [u8; 4],
    /// Metadata to keep.
    pub metadata: Metadata,
    /// Animated sources: `false` passes them through untouched; `true` uses the first frame.
    pub first_frame: bool,
    /// Crop position for `cover` and `crop`.
    pub gravity: Gravity,
    /// Clockwise rotation after EXIF orientation: 0, 90, 180 or 270.
    pub rotate: u16,
    /// Mirroring after rotation.
    pub flip: Flip,
    /// Gaussian blur radius, 1..=250 (`None`: none).
    pub blur: Option<u8>,
    /// Unsharp-mask strength in tenths, 1..=100 (Cloudflare's 0.1..=10).
    pub sharpen: Option<u8>,
    /// On an error, redirect to the source image rather than answer an error.
    pub onerror_redirect: bool,
    /// `width=auto` read the client hints: the answer varies on [`ClientHints::HEADERS`].
    pub client_hints: bool,
    /// What was changed or ignored to honour the URL (snapped values, options not
    /// implemented), for the `X-Edgelayer-Image-Options` header; empty when nothing was.
    pub notes: Vec<String>,
}

impl ImageParams {
    /// A size as the URL's `rotate` turns it: the box the resize is planned in.
    pub fn turned(&self, (width, height): (u32, u32)) -> (u32, u32) {
        if self.rotate % 180 == 90 {
            (height, width)
        } else {
            (width, height)
        }
    }
}

/// Whether an off-ladder width, height or quality snaps or is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ladder {
    /// Snap to the nearest allowed value (the default).
    #[default]
    Snap,
    /// 400, listing the allowed values.
    Strict,
}

/// What an option this edge does not implement gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownOptions {
    /// Ignored (noted in the response header); the default, so Cloudflare markup works.
    #[default]
    Ignore,
    /// 400.
    Reject,
}

/// Client hints for `width=auto` (RFC 8942): `Sec-CH-Width` (device pixels),
/// `Viewport-Width` (CSS pixels) and `Sec-CH-DPR`/`DPR`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClientHints {
    /// `Sec-CH-Width`.
    pub width: Option<u32>,
    /// `Sec-CH-Viewport-Width` or `Viewport-Width`.
    pub viewport_width: Option<u32>,
    /// `Sec-CH-DPR` or `DPR`.
    pub dpr: Option<f32>,
}

impl ClientHints {
    /// The hints `width=auto` reads, and that its responses vary on.
    pub const HEADERS: [&'static str; 5] = ["sec-ch-width", "sec-ch-viewport-width", "viewport-width", "sec-ch-dpr", "dpr"];

    /// Reads the hints from request headers.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f32>().ok()).filter(|n| n.is_finite() && *n > 0.0);
        Self {
            width: num("sec-ch-width").map(|w| w.round() as u32),
            viewport_width: num("sec-ch-viewport-width").or_else(|| num("viewport-width")).map(|w| w.round() as u32),
            dpr: num("sec-ch-dpr").or_else(|| num("dpr")),
        }
    }

    /// The width the client will show the image at, in device pixels, if it said.
    fn device_width(&self) -> Option<u32> {
        self.width.or_else(|| self.viewport_width.map(|v| (v as f32 * self.dpr.unwrap_or(1.0).clamp(1.0, MAX_DPR as f32)).round() as u32))
    }
}

/// Bounds on what may be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLimits {
    /// Allowed widths (and heights), before `dpr`; a request must use one of them.
    pub widths: Vec<u32>,
    /// Allowed qualities.
    pub qualities: Vec<u8>,
    /// Largest output side in pixels (after `dpr`).
    pub max_dimension: u32,
    /// Off-ladder values: snap or refuse.
    pub ladder: Ladder,
    /// Options not implemented here: ignore or refuse.
    pub unknown: UnknownOptions,
}

/// The default width ladder (Next.js' device and image sizes, merged).
pub const DEFAULT_WIDTHS: [u32; 16] = [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840];
/// The default allowed qualities.
pub const DEFAULT_QUALITIES: [u8; 5] = [50, 60, 75, 85, 90];
/// Largest `dpr`.
pub const MAX_DPR: u32 = 2;

impl Default for ImageLimits {
    fn default() -> Self {
        Self { widths: DEFAULT_WIDTHS.to_vec(), qualities: DEFAULT_QUALITIES.to_vec(), max_dimension: 4096, ladder: Ladder::Snap, unknown: UnknownOptions::Ignore }
    }
}

/// Why a resizing URL is refused (a 400, with this message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

/// Cloudflare options this edge knows but does not implement (ignored, or refused in strict
/// mode, with that said).
pub const NOT_IMPLEMENTED: [&str; 13] = ["brightness", "contrast", "gamma", "saturation", "trim", "border", "compression", "slow-connection-quality", "segment", "zoom", "draw", "fit-border", "dither"];

/// The allowed value nearest to `n` (the larger one on a tie).
fn nearest<T: Copy + Into<i64>>(allowed: &[T], n: i64) -> Option<T> {
    allowed.iter().copied().min_by_key(|a| ((*a).into() - n).abs() * 2 - i64::from((*a).into() > n))
}

/// Splits a resizing path into its options and the source path (with a leading `/`).
/// `None` when the path is not a resizing URL.
pub fn split_path(path: &str) -> Option<(&str, String)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (options, source) = rest.split_once('/')?;
    if source.is_empty() {
        return None;
    }
    Some((options, format!("/{source}")))
}

/// Parses and validates the options segment (no client hints: `width=auto` keeps the source
/// width).
pub fn parse(options: &str, limits: &ImageLimits) -> Result<ImageParams, ParamError> {
    parse_with_hints(options, limits, &ClientHints::default())
}

/// Parses and validates the options segment; `hints` resolve `width=auto`.
pub fn parse_with_hints(options: &str, limits: &ImageLimits, hints: &ClientHints) -> Result<ImageParams, ParamError> {
    let err = |m: String| Err(ParamError(m));
    let mut p = ImageParams {
        width: None,
        height: None,
        fit: Fit::default(),
        quality: None,
        format: FormatRequest::default(),
        jpeg: JpegMode::default(),
        background: [255, 255, 255, 255],
        metadata: Metadata::default(),
        first_frame: false,
        gravity: Gravity::default(),
        rotate: 0,
        flip: Flip::default(),
        blur: None,
        sharpen: None,
        onerror_redirect: false,
        client_hints: false,
        notes: Vec::new(),
    };
    let mut dpr = 1.0f32;
    let ladder = || limits.widths.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let strict = limits.ladder == Ladder::Strict;
    for pair in options.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key, raw)) = pair.split_once('=') else { return err(format!("option {pair:?} must be key=value")) };
        let key = key.trim();
        let decoded = percent_encoding::percent_decode_str(raw.trim()).decode_utf8_lossy();
        let value = decoded.trim();
        match key {
            "width" | "w" | "height" | "h" => {
                let is_width = key.starts_with('w');
                let wanted: Option<u32> = if value == "auto" && is_width {
                    p.client_hints = true;
                    match hints.device_width() {
                        Some(w) => Some(w),
                        None => {
                            p.notes.push("width=auto without client hints: source width".into());
                            continue;
                        }
                    }
                } else {
                    value.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 1.0).map(|n| n.round() as u32)
                };
                let Some(wanted) = wanted else { return err(format!("{key}={value} is not a width in pixels; use one of {}", ladder())) };
                let n = if limits.widths.contains(&wanted) {
                    wanted
                } else if strict && value != "auto" {
                    return err(format!("{key}={value} is not allowed; use one of {}", ladder()));
                } else {
                    let Some(n) = nearest(&limits.widths, i64::from(wanted)) else { return err("no widths are allowed".into()) };
                    p.notes.push(format!("{key}={value} snapped to {n}"));
                    n
                };
                if is_width { p.width = Some(n) } else { p.height = Some(n) }
            }
            "quality" | "q" => {
                // Cloudflare's perceptual levels, onto the default ladder's steps.
                let level = match value {
                    "high" => Some(90.0),
                    "medium-high" => Some(85.0),
                    "medium-low" => Some(75.0),
                    "low" => Some(60.0),
                    _ => None,
                };
                let Some(wanted) = level.or_else(|| value.parse::<f64>().ok()).filter(|q| (1.0..=100.0).contains(q)).map(|q| q.round() as u8) else {
                    return err(format!("quality={value} must be 1 to 100, or high, medium-high, medium-low, low"));
                };
                p.quality = Some(if limits.qualities.contains(&wanted) {
                    wanted
                } else if strict {
                    return err(format!("quality={value} is not allowed; use one of {}", limits.qualities.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")));
                } else {
                    let Some(q) = nearest(&limits.qualities, i64::from(wanted)) else { return err("no qualities are allowed".into()) };
                    p.notes.push(format!("quality={value} snapped to {q}"));
                    q
                });
            }
            "fit" => {
                p.fit = match value {
                    "scale-down" => Fit::ScaleDown,
                    "contain" => Fit::Contain,
                    "cover" => Fit::Cover,
                    "crop" => Fit::Crop,
                    "pad" => Fit::Pad,
                    "squeeze" => Fit::Squeeze,
                    _ => return err(format!("fit={value} is not one of scale-down, contain, cover, crop, pad, squeeze")),
                }
            }
            "format" | "f" => {
                p.jpeg = if value == "baseline-jpeg" { JpegMode::Baseline } else { JpegMode::Progressive };
                p.format = match value {
                    "auto" => FormatRequest::Auto,
                    "avif" => FormatRequest::Avif,
                    "webp" => FormatRequest::Webp,
                    "jpeg" | "jpg" | "baseline-jpeg" => FormatRequest::Jpeg,
                    "png" => FormatRequest::Png,
                    "json" => FormatRequest::Json,
                    _ => return err(format!("format={value} is not one of auto, avif, webp, jpeg, png, json")),
                }
            }
            "dpr" => {
                let Some(d) = value.parse::<f32>().ok().filter(|d| d.is_finite() && *d > 0.0) else { return err(format!("dpr={value} must be a number from 1 to {MAX_DPR}")) };
                dpr = if (1.0..=MAX_DPR as f32).contains(&d) {
                    d
                } else if strict {
                    return err(format!("dpr={value} must be a number from 1 to {MAX_DPR}"));
                } else {
                    let c = d.clamp(1.0, MAX_DPR as f32);
                    p.notes.push(format!("dpr={value} snapped to {c}"));
                    c
                };
            }
            "background" => p.background = super::colour::parse(value).ok_or_else(|| ParamError(format!("background={value} is not a CSS colour (#fff, #ffffff, rgb(…), a name)")))?,
            "metadata" => {
                p.metadata = match value {
                    "none" => Metadata::None,
                    "copyright" => Metadata::Copyright,
                    "keep" => Metadata::Keep,
                    _ => return err(format!("metadata={value} is not one of none, copyright, keep")),
                }
            }
            "anim" => {
                p.first_frame = match value {
                    "true" => false,
                    "false" => true,
                    _ => return err(format!("anim={value} must be true or false")),
                }
            }
            "gravity" | "g" => {
                p.gravity = match value {
                    "auto" => Gravity::Auto,
                    "center" | "centre" => Gravity::Centre,
                    // Face detection is not implemented: the most detailed region instead.
                    "face" if limits.unknown == UnknownOptions::Ignore => {
                        p.notes.push("gravity=face not implemented: gravity=auto".into());
                        Gravity::Auto
                    }
                    "left" => Gravity::Point(0, 500),
                    "right" => Gravity::Point(1000, 500),
                    "top" => Gravity::Point(500, 0),
                    "bottom" => Gravity::Point(500, 1000),
                    xy => {
                        let point = xy.split_once('x').and_then(|(x, y)| Some((x.parse::<f32>().ok()?, y.parse::<f32>().ok()?))).filter(|(x, y)| (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y));
                        match point {
                            Some((x, y)) => Gravity::Point((x * 1000.0).round() as u16, (y * 1000.0).round() as u16),
                            None => return err(format!("gravity={value} is not auto, left, right, top, bottom or XxY with 0..1 coordinates")),
                        }
                    }
                }
            }
            "rotate" => {
                p.rotate = match value.parse::<u16>() {
                    Ok(r @ (0 | 90 | 180 | 270)) => r,
                    _ => return err(format!("rotate={value} is not 90, 180 or 270")),
                }
            }
            "flip" => {
                p.flip = match value {
                    "h" => Flip::Horizontal,
                    "v" => Flip::Vertical,
                    "hv" | "vh" => Flip::Both,
                    _ => return err(format!("flip={value} is not h, v or hv")),
                }
            }
            "blur" => match value.parse::<f32>() {
                Ok(b) if (0.0..=250.0).contains(&b) => p.blur = (b >= 1.0).then(|| b.round() as u8),
                _ => return err(format!("blur={value} must be 1 to 250")),
            },
            "sharpen" => match value.parse::<f32>() {
                Ok(s) if (0.0..=10.0).contains(&s) => p.sharpen = (s > 0.0).then(|| ((s * 10.0).round() as u8).max(1)),
                _ => return err(format!("sharpen={value} must be 0 to 10")),
            },
            "onerror" => match value {
                "redirect" => p.onerror_redirect = true,
                _ => return err(format!("onerror={value} is not redirect")),
            },
            // `trim.left=…` and friends are parts of `trim`.
            other if NOT_IMPLEMENTED.contains(&other.split('.').next().unwrap_or(other)) || limits.unknown == UnknownOptions::Ignore => {
                if limits.unknown == UnknownOptions::Reject {
                    return err(format!("{other} is not implemented here"));
                }
                p.notes.push(format!("{other} ignored"));
            }
            other => return err(format!("unknown option {other:?}")),
        }
    }
    for side in [&mut p.width, &mut p.height].into_iter().flatten() {
        let scaled = (*side as f32 * dpr).round() as u32;
        if scaled > limits.max_dimension {
            if strict {
                return err(format!("{scaled} px exceeds the largest output side, {} px", limits.max_dimension));
            }
            p.notes.push(format!("{scaled} px capped at {}", limits.max_dimension));
        }
        *side = scaled.min(limits.max_dimension);
    }
    Ok(p)
}

/// The canonical options string: the same params always give the same text, so equivalent URLs
/// (`w=640,q=75` and `quality=75,width=640`) share one cache entry.
pub fn canonical(p: &ImageParams) -> String {
    let mut parts = Vec::new();
    if let Some(w) = p.width {
        parts.push(format!("w={w}"));
    }
    if let Some(h) = p.height {
        parts.push(format!("h={h}"));
    }
    parts.push(format!("fit={:?}", p.fit).to_ascii_lowercase());
    if let Some(q) = p.quality {
        parts.push(format!("q={q}"));
    }
    parts.push(if p.jpeg == JpegMode::Baseline { "f=baseline-jpeg".into() } else { format!("f={:?}", p.format).to_ascii_lowercase() });
    if p.fit == Fit::Pad {
        parts.push(format!("bg={:02x}{:02x}{:02x}{:02x}", p.background[0], p.background[1], p.background[2], p.background[3]));
    }
    parts.push(format!("meta={:?}", p.metadata).to_ascii_lowercase());
    if p.first_frame {
        parts.push("anim=false".into());
    }
    if matches!(p.fit, Fit::Cover | Fit::Crop) {
        match p.gravity {
            Gravity::Centre => {}
            Gravity::Auto => parts.push("g=auto".into()),
            Gravity::Point(x, y) => parts.push(format!("g={x}x{y}")),
        }
    }
    if p.rotate != 0 {
        parts.push(format!("rot={}", p.rotate));
    }
    if p.flip != Flip::None {
        parts.push(format!("flip={:?}", p.flip).to_ascii_lowercase());
    }
    if let Some(b) = p.blur {
        parts.push(format!("blur={b}"));
    }
    if let Some(s) = p.sharpen {
        parts.push(format!("sharpen={s}"));
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cloudflare_urls() {
        assert_eq!(split_path("/cdn-cgi/image/w=640,q=75/img/coffee.jpg"), Some(("w=640,q=75", "/img/coffee.jpg".into())));
        assert_eq!(split_path("/cdn-cgi/image/w=640/"), None);
        assert_eq!(split_path("/img/coffee.jpg"), None);
    }

    #[test]
    fn parses_and_canonicalises() {
        let l = ImageLimits::default();
        let a = parse("width=640,quality=75,fit=cover,format=webp", &l).unwrap();
        let b = parse(" f=webp , q=75,w=640,fit=cover", &l).unwrap();
        assert_eq!(a, b);
        assert_eq!(canonical(&a), "w=640,fit=cover,q=75,f=webp,meta=none");
        let (jpeg, baseline) = (parse("w=640,f=jpeg", &l).unwrap(), parse("w=640,format=baseline-jpeg", &l).unwrap());
        assert!(jpeg.jpeg == JpegMode::Progressive && baseline.jpeg == JpegMode::Baseline && baseline.format == FormatRequest::Jpeg);
        assert_ne!(canonical(&jpeg), canonical(&baseline), "their own cache entries");
        let d = parse("w=640,dpr=2", &l).unwrap();
        assert_eq!(d.width, Some(1280), "dpr multiplies");
        let pad = parse("w=256,fit=pad,background=#0f0", &l).unwrap();
        assert_eq!(pad.background, [0, 255, 0, 255]);
        assert!(canonical(&pad).contains("bg=00ff00ff"));
        assert!(parse("anim=false", &l).unwrap().first_frame);
        assert_eq!(parse("", &l).unwrap().fit, Fit::ScaleDown);
    }

    fn strict() -> ImageLimits {
        ImageLimits { ladder: Ladder::Strict, unknown: UnknownOptions::Reject, ..ImageLimits::default() }
    }

    #[test]
    fn strict_mode_says_what_is_allowed() {
        let l = strict();
        for (bad, want) in [
            ("w=641", "use one of 16, 32"),
            ("q=74", "use one of 50, 60, 75, 85, 90"),
            ("dpr=3", "from 1 to 2"),
            ("w=3840,dpr=2", "exceeds the largest output side"),
            ("fit=stretch", "not one of"),
            ("format=gif", "not one of"),
            ("background=blurple", "CSS colour"),
            ("brightness=1.2", "not implemented"),
            ("frobnicate=1", "unknown option"),
            ("w", "key=value"),
            ("w=-5", "is not a width"),
            ("rotate=45", "90, 180 or 270"),
            ("gravity=2x0", "XxY"),
        ] {
            let e = parse(bad, &l).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn cloudflare_markup_works_unchanged_by_default() {
        let l = ImageLimits::default();
        let p = parse("width=800,quality=80,dpr=3,brightness=1.2,frobnicate=1", &l).unwrap();
        assert_eq!((p.width, p.quality), (Some(828 * 2), Some(85)), "snapped: 800 to 828 (then dpr 3 capped at 2), 80 to 85 (a tie goes up)");
        assert_eq!(p.notes, ["width=800 snapped to 828", "quality=80 snapped to 85", "dpr=3 snapped to 2", "brightness ignored", "frobnicate ignored"]);
        let c = parse("background=%23ff0000,fit=pad,w=256", &l).unwrap();
        assert_eq!(c.background, [255, 0, 0, 255], "percent-decoded");
        assert_eq!(parse("background=red,fit=pad", &l).unwrap().background, [255, 0, 0, 255]);
        let ops = parse("rotate=90,flip=hv,blur=10,sharpen=1.5,gravity=0.25x0.75,fit=cover,w=256,h=256,onerror=redirect", &l).unwrap();
        assert_eq!((ops.rotate, ops.flip, ops.blur, ops.sharpen, ops.gravity, ops.onerror_redirect), (90, Flip::Both, Some(10), Some(15), Gravity::Point(250, 750), true));
        assert_eq!(canonical(&ops), "w=256,h=256,fit=cover,f=auto,meta=none,g=250x750,rot=90,flip=both,blur=10,sharpen=15");
        assert_eq!(parse("gravity=left,fit=crop", &l).unwrap().gravity, Gravity::Point(0, 500));
        assert_eq!(parse("fit=squeeze", &l).unwrap().fit, Fit::Squeeze);
        assert_eq!(parse("format=json", &l).unwrap().format, FormatRequest::Json);
        assert_eq!(parse("w=3840,dpr=2", &l).unwrap().width, Some(4096), "capped, not refused");
    }

    #[test]
    fn perceptual_qualities_face_gravity_and_trim_parts() {
        let l = ImageLimits::default();
        assert_eq!(parse("q=high", &l).unwrap().quality, Some(90));
        assert_eq!(parse("quality=medium-low", &l).unwrap().quality, Some(75));
        assert!(parse("q=best", &l).unwrap_err().0.contains("high, medium-high"));
        let face = parse("g=face", &l).unwrap();
        assert_eq!((face.gravity, face.notes[0].as_str()), (Gravity::Auto, "gravity=face not implemented: gravity=auto"));
        let reject = ImageLimits { unknown: UnknownOptions::Reject, ..ImageLimits::default() };
        assert!(parse("g=face", &reject).is_err());
        assert_eq!(parse("trim.left=5", &reject).unwrap_err().0, "trim.left is not implemented here");
        assert_eq!(parse("trim.left=5", &l).unwrap().notes, vec!["trim.left ignored".to_owned()]);
    }

    #[test]
    fn width_auto_from_client_hints() {
        let l = ImageLimits::default();
        let hints = ClientHints { width: Some(700), ..Default::default() };
        assert_eq!(parse_with_hints("w=auto", &l, &hints).unwrap().width, Some(750), "device pixels, snapped to the ladder");
        let viewport = ClientHints { viewport_width: Some(400), dpr: Some(2.0), ..Default::default() };
        assert_eq!(parse_with_hints("width=auto", &l, &viewport).unwrap().width, Some(828), "CSS pixels × DPR");
        let none = parse("w=auto", &l).unwrap();
        assert_eq!((none.width, none.notes.len()), (None, 1), "no hints: the source width");
        assert_eq!(parse_with_hints("w=auto", &strict(), &hints).unwrap().width, Some(750), "auto always snaps");
        let mut h = http::HeaderMap::new();
        h.insert("sec-ch-viewport-width", http::HeaderValue::from_static("390"));
        h.insert("sec-ch-dpr", http::HeaderValue::from_static("3"));
        let parsed = ClientHints::from_headers(&h);
        assert_eq!((parsed.viewport_width, parsed.device_width()), (Some(390), Some(780)), "DPR capped at 2");
    }
}
