//! `/cdn-cgi/image/<options>/<source path>` (Cloudflare's URL format): options are
//! comma-separated `key=value` pairs. Parsed once into [`ImageParams`], bounded by
//! [`ImageLimits`]; anything outside them is a 400 with a message saying what is allowed
//! (as Next.js does for its width ladder), so the URL space cannot be used to bust the cache
//! or burn CPU.

use std::fmt;

/// The URL prefix of resizing requests.
pub const PREFIX: &str = "/cdn-cgi/image/";

/// How the image fits the requested box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

/// Requested output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

/// Metadata kept in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Padding colour (`fit=pad`), RGBA.
    pub background: [u8; 4],
    /// Metadata to keep.
    pub metadata: Metadata,
    /// Animated sources: `false` passes them through untouched; `true` uses the first frame.
    pub first_frame: bool,
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
}

/// The default width ladder (Next.js' device and image sizes, merged).
pub const DEFAULT_WIDTHS: [u32; 16] = [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840];
/// The default allowed qualities.
pub const DEFAULT_QUALITIES: [u8; 5] = [50, 60, 75, 85, 90];
/// Largest `dpr`.
pub const MAX_DPR: u32 = 2;

impl Default for ImageLimits {
    fn default() -> Self {
        Self { widths: DEFAULT_WIDTHS.to_vec(), qualities: DEFAULT_QUALITIES.to_vec(), max_dimension: 4096 }
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

fn hex_colour(v: &str) -> Option<[u8; 4]> {
    let h = v.strip_prefix('#').unwrap_or(v);
    let byte = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    let nib = |i: usize| u8::from_str_radix(h.get(i..i + 1)?, 16).ok().map(|n| n * 17);
    match h.len() {
        3 => Some([nib(0)?, nib(1)?, nib(2)?, 255]),
        6 => Some([byte(0)?, byte(2)?, byte(4)?, 255]),
        8 => Some([byte(0)?, byte(2)?, byte(4)?, byte(6)?]),
        _ => None,
    }
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

/// Parses and validates the options segment.
pub fn parse(options: &str, limits: &ImageLimits) -> Result<ImageParams, ParamError> {
    let err = |m: String| Err(ParamError(m));
    let mut p = ImageParams { width: None, height: None, fit: Fit::default(), quality: None, format: FormatRequest::default(), background: [255, 255, 255, 255], metadata: Metadata::default(), first_frame: false };
    let mut dpr = 1u32;
    let ladder = || limits.widths.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    for pair in options.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else { return err(format!("option {pair:?} must be key=value")) };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "width" | "w" | "height" | "h" => {
                let n: u32 = match value.parse() {
                    Ok(n) if limits.widths.contains(&n) => n,
                    _ => return err(format!("{key}={value} is not allowed; use one of {}", ladder())),
                };
                if key.starts_with('w') { p.width = Some(n) } else { p.height = Some(n) }
            }
            "quality" | "q" => match value.parse::<u8>() {
                Ok(q) if limits.qualities.contains(&q) => p.quality = Some(q),
                _ => return err(format!("quality={value} is not allowed; use one of {}", limits.qualities.iter().map(u8::to_string).collect::<Vec<_>>().join(", "))),
            },
            "fit" => {
                p.fit = match value {
                    "scale-down" => Fit::ScaleDown,
                    "contain" => Fit::Contain,
                    "cover" => Fit::Cover,
                    "crop" => Fit::Crop,
                    "pad" => Fit::Pad,
                    _ => return err(format!("fit={value} is not one of scale-down, contain, cover, crop, pad")),
                }
            }
            "format" | "f" => {
                p.format = match value {
                    "auto" => FormatRequest::Auto,
                    "avif" => FormatRequest::Avif,
                    "webp" => FormatRequest::Webp,
                    "jpeg" | "jpg" => FormatRequest::Jpeg,
                    "png" => FormatRequest::Png,
                    _ => return err(format!("format={value} is not one of auto, avif, webp, jpeg, png")),
                }
            }
            "dpr" => {
                dpr = match value.parse::<u32>() {
                    Ok(d @ 1..=MAX_DPR) => d,
                    _ => return err(format!("dpr={value} must be a whole number from 1 to {MAX_DPR}")),
                }
            }
            "background" => p.background = hex_colour(value).ok_or_else(|| ParamError(format!("background={value} is not a hex colour like #fff or #ffffff")))?,
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
            _ => return err(format!("unknown option {key:?}")),
        }
    }
    for side in [&mut p.width, &mut p.height].into_iter().flatten() {
        *side *= dpr;
        if *side > limits.max_dimension {
            return err(format!("{side} px exceeds the largest output side, {} px", limits.max_dimension));
        }
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
    parts.push(format!("f={:?}", p.format).to_ascii_lowercase());
    if p.fit == Fit::Pad {
        parts.push(format!("bg={:02x}{:02x}{:02x}{:02x}", p.background[0], p.background[1], p.background[2], p.background[3]));
    }
    parts.push(format!("meta={:?}", p.metadata).to_ascii_lowercase());
    if p.first_frame {
        parts.push("anim=false".into());
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
        let d = parse("w=640,dpr=2", &l).unwrap();
        assert_eq!(d.width, Some(1280), "dpr multiplies");
        let pad = parse("w=256,fit=pad,background=#0f0", &l).unwrap();
        assert_eq!(pad.background, [0, 255, 0, 255]);
        assert!(canonical(&pad).contains("bg=00ff00ff"));
        assert!(parse("anim=false", &l).unwrap().first_frame);
        assert_eq!(parse("", &l).unwrap().fit, Fit::ScaleDown);
    }

    #[test]
    fn abuse_guards_say_what_is_allowed() {
        let l = ImageLimits::default();
        for (bad, want) in [
            ("w=641", "use one of 16, 32"),
            ("q=74", "use one of 50, 60, 75, 85, 90"),
            ("dpr=3", "from 1 to 2"),
            ("w=3840,dpr=2", "exceeds the largest output side"),
            ("fit=stretch", "not one of"),
            ("format=gif", "not one of"),
            ("background=red", "hex colour"),
            ("blur=5", "unknown option"),
            ("w", "key=value"),
            ("w=-5", "is not allowed"),
        ] {
            let e = parse(bad, &l).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
