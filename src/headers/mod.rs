//! Security headers: named profiles applied to every response that leaves the worker (cache
//! hits and the edge's own answers included). By default a profile only **adds** what the
//! origin did not send: an origin that sets its own CSP, `X-Frame-Options` or
//! `X-XSS-Protection` keeps them (as a shared cache in front of someone else's site must); a
//! rule with `override_origin_headers = true` replaces them. The `html` profile is at least what helmet sets by default, plus
//! `Permissions-Policy`; `static` (assets of this site: CORP same-site) and `public` (assets
//! other sites embed: CORP cross-origin) send a lockdown CSP and `X-Frame-Options: DENY`,
//! which keep an SVG or an HTML file among the assets from running script or being framed;
//! `api` sends the same CSP; `none` sends nothing. Obsolete headers (`Expect-CT`, an enabled
//! `X-XSS-Protection`) are never sent.
//!
//! # Beware
//! The lockdown CSP also applies to a script loaded as a Web Worker or Service Worker (a worker
//! runs under its own response's CSP): such a file needs a rule with its own `csp`.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// A header profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Pages: strict CSP, framing limited to same origin, CORP same-origin.
    Html,
    /// Images, CSS, JS of this site: CORP same-site (the site and its subdomains may embed
    /// them), lockdown CSP, `X-Frame-Options: DENY`.
    Static,
    /// Assets other sites embed (a CDN's, a widget's): as `Static` with CORP cross-origin.
    Public,
    /// JSON APIs: `default-src 'none'` CSP.
    Api,
    /// Nothing added (hop-by-hop cleanup still happens).
    None,
}

impl Profile {
    /// Parses a profile name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "html" => Ok(Self::Html),
            "static" => Ok(Self::Static),
            "public" => Ok(Self::Public),
            "api" => Ok(Self::Api),
            "none" => Ok(Self::None),
            other => Err(format!("{other:?} is not one of html, static, public, api, none")),
        }
    }

    /// The profile's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Static => "static",
            Self::Public => "public",
            Self::Api => "api",
            Self::None => "none",
        }
    }
}

/// The default page CSP (helmet's default directives; `upgrade-insecure-requests` is added on
/// HTTPS only, so plain-HTTP local development keeps working).
pub const DEFAULT_CSP: &str = "default-src 'self'; base-uri 'self'; font-src 'self' https: data:; form-action 'self'; frame-ancestors 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' https: 'unsafe-inline'";

/// The page CSP for a page known to need no inline styles ([`STRICT_STYLE`]): nothing by
/// default, then what [`DEFAULT_CSP`] allows named directive by directive, with `style-src`
/// down to `'self'` (and the nonce every `<style>` gets).
pub const STRICT_PAGE_CSP: &str = "default-src 'none'; base-uri 'self'; connect-src 'self'; font-src 'self' https: data:; form-action 'self'; frame-ancestors 'self'; frame-src 'self'; img-src 'self' data:; manifest-src 'self'; media-src 'self'; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self'; worker-src 'self'";

/// The header a stored page carries when it needs no inline styles (set at the fill from its
/// body, [`crate::pipeline::fill::record_page_facts`]); never sent on: [`apply`] takes it off.
pub const STRICT_STYLE: &str = "x-edgelayer-strict-style";

/// The API and asset CSP: nothing may load, nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// `Permissions-Policy`: powerful features off unless a page needs them.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()";

/// `Accept-CH` on pages: asks browsers for the hints that `/cdn-cgi/image/width=auto` sizes
/// images by (RFC 8942).
pub const ACCEPT_CH: &str = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width";

/// `Strict-Transport-Security`: one year, subdomains included (HTTPS only).
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// How a response gets its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPolicy {
    /// The profile.
    pub profile: Profile,
    /// A CSP replacing the profile's; `None`: the profile's.
    pub csp: Option<String>,
    /// Keep the origin's own CSP even when `override_origin` replaces its other headers.
    pub keep_origin_csp: bool,
    /// Replace the origin's security headers with the profile's (default false: add only what
    /// the origin did not send).
    pub override_origin: bool,
    /// Never use [`STRICT_PAGE_CSP`], even for pages known to need no inline styles.
    pub inline_styles: bool,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        Self { profile: Profile::Html, csp: None, keep_origin_csp: false, override_origin: false, inline_styles: false }
    }
}

/// Sets `name` unless the origin sent it and the policy leaves the origin's values alone.
fn set(h: &mut HeaderMap, policy: &HeaderPolicy, name: &'static str, value: &str) {
    if !policy.override_origin && h.contains_key(name) {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

/// A CSP nonce's text for 128 random bits: unpadded base64url, 22 characters (the CSP
/// `base64-value` grammar takes `-` and `_`). Hex would be 32: the nonce is written into the
/// CSP and into every `<script>` and `<style>` of a page, so 10 bytes each.
pub fn nonce_text(bits: &[u8; 16]) -> String {
    nonce_of_length(bits, NONCE_MIN_LEN)
}

/// The shortest nonce the edge makes: 22 base64url characters, 128 bits (CSP Level 3 asks for
/// at least that).
pub const NONCE_MIN_LEN: usize = 22;
/// The longest: a page's own nonce longer than this is not matched.
pub const NONCE_MAX_LEN: usize = 64;

/// Random bytes enough for a nonce of [`NONCE_MAX_LEN`] characters.
pub const NONCE_RANDOM_BYTES: usize = NONCE_MAX_LEN * 3 / 4;

/// A nonce of `len` base64url characters from `bits` (which must hold at least `len * 6`
/// bits; fewer characters come out otherwise).
pub fn nonce_of_length(bits: &[u8], len: usize) -> String {
    use base64::Engine;
    let mut text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bits[..bits.len().min(len.div_ceil(4) * 3)]);
    text.truncate(len);
    text
}

/// The stored page's mark: the length of the nonce its origin put on it
/// ([`crate::pipeline::fill::record_page_facts`]), so the edge's nonce is as long and the page
/// leaves no larger than it came; never sent on: [`apply`] takes it off.
pub const NONCE_LENGTH: &str = "x-edgelayer-nonce-length";

/// How long the nonce for a response with these (stored) headers is: the page's own nonce's
/// length from the [`NONCE_LENGTH`] mark, within [`NONCE_MIN_LEN`]..=[`NONCE_MAX_LEN`].
pub fn nonce_length(headers: &HeaderMap) -> usize {
    headers.get(NONCE_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<usize>().ok()).map_or(NONCE_MIN_LEN, |n| n.clamp(NONCE_MIN_LEN, NONCE_MAX_LEN))
}

/// Adds a nonce to a CSP's `script-src` and `style-src` (creating them from `default-src`'s
/// sources when missing). With a nonce, browsers ignore `'unsafe-inline'`.
pub fn csp_with_nonce(csp: &str, nonce: &str) -> String {
    let token = format!("'nonce-{nonce}'");
    let mut directives: Vec<String> = csp.split(';').map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()).collect();
    let default_sources = directives.iter().find_map(|d| d.strip_prefix("default-src ").map(str::to_owned)).unwrap_or_else(|| "'self'".into());
    for name in ["script-src", "style-src"] {
        match directives.iter_mut().find(|d| d.split_whitespace().next() == Some(name)) {
            Some(d) => {
                d.push(' ');
                d.push_str(&token);
            }
            None => directives.push(format!("{name} {default_sources} {token}")),
        }
    }
    directives.join("; ")
}

/// Applies the policy. `https`: the client connection is HTTPS (HSTS and
/// `upgrade-insecure-requests` only then). `nonce`: the per-response CSP nonce, if any.
/// Returns whether the nonce went into the CSP sent (only then must the page carry it): an
/// origin CSP that is kept is never edited, since adding a nonce to it would switch off its
/// `'unsafe-inline'` and break the page.
pub fn apply(policy: &HeaderPolicy, headers: &mut HeaderMap, https: bool, nonce: Option<&str>) -> bool {
    headers.remove("x-powered-by");
    // Strict only with a nonce: the page's own `<style>` elements need it under `style-src 'self'`.
    let strict_style = headers.remove(STRICT_STYLE).is_some() && nonce.is_some() && !policy.inline_styles;
    headers.remove(NONCE_LENGTH);
    let revealing = headers.get(header::SERVER).and_then(|v| v.to_str().ok()).is_some_and(|s| s.bytes().any(|b| b.is_ascii_digit()));
    if revealing {
        headers.remove(header::SERVER);
    }
    if policy.profile == Profile::None {
        return false;
    }
    let p = policy;
    set(headers, p, "x-content-type-options", "nosniff");
    set(headers, p, "x-dns-prefetch-control", "off");
    set(headers, p, "x-download-options", "noopen");
    set(headers, p, "x-permitted-cross-domain-policies", "none");
    set(headers, p, "x-xss-protection", "0");
    set(headers, p, "referrer-policy", "strict-origin-when-cross-origin");
    set(headers, p, "origin-agent-cluster", "?1");
    if https {
        set(headers, p, "strict-transport-security", HSTS);
    }
    match policy.profile {
        Profile::Static | Profile::Public => {
            let corp = if policy.profile == Profile::Static { "same-site" } else { "cross-origin" };
            set(headers, p, "cross-origin-resource-policy", corp);
            set(headers, p, "x-frame-options", "DENY");
        }
        Profile::Api => set(headers, p, "cross-origin-resource-policy", "same-origin"),
        _ => {
            set(headers, p, "cross-origin-resource-policy", "same-origin");
            set(headers, p, "cross-origin-opener-policy", "same-origin");
            set(headers, p, "x-frame-options", "SAMEORIGIN");
            set(headers, p, "permissions-policy", PERMISSIONS_POLICY);
            let page = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.trim_start().starts_with("text/html"));
            if page {
                set(headers, p, "accept-ch", ACCEPT_CH);
            }
        }
    }
    let origin_csp = headers.contains_key(header::CONTENT_SECURITY_POLICY);
    if origin_csp && (policy.keep_origin_csp || !policy.override_origin) {
        return false;
    }
    let base = policy.csp.clone().unwrap_or_else(|| match policy.profile {
        Profile::Html if strict_style => STRICT_PAGE_CSP.into(),
        Profile::Html => DEFAULT_CSP.into(),
        _ => API_CSP.into(),
    });
    let mut csp = match nonce {
        Some(n) => csp_with_nonce(&base, n),
        None => base,
    };
    if https && policy.profile == Profile::Html && !csp.contains("upgrade-insecure-requests") {
        csp.push_str("; upgrade-insecure-requests");
    }
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    nonce.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(policy: &HeaderPolicy, https: bool, origin: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in origin {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        apply(policy, &mut h, https, None);
        h
    }

    #[test]
    fn html_profile_is_at_least_helmet() {
        let h = applied(&HeaderPolicy::default(), true, &[("x-powered-by", "Express"), ("server", "nginx/1.25.3")]);
        for name in [
            "content-security-policy", "strict-transport-security", "x-content-type-options", "x-frame-options", "referrer-policy",
            "cross-origin-opener-policy", "cross-origin-resource-policy", "origin-agent-cluster", "x-dns-prefetch-control",
            "x-permitted-cross-domain-policies", "permissions-policy",
        ] {
            assert!(h.contains_key(name), "{name}");
        }
        assert_eq!(h["x-xss-protection"], "0");
        assert!(h.get("expect-ct").is_none());
        assert!(h.get("x-powered-by").is_none() && h.get("server").is_none());
        assert!(h["content-security-policy"].to_str().unwrap().ends_with("upgrade-insecure-requests"));
        let plain = applied(&HeaderPolicy::default(), false, &[("server", "edge")]);
        assert!(plain.get("strict-transport-security").is_none(), "HSTS only on HTTPS");
        assert!(!plain["content-security-policy"].to_str().unwrap().contains("upgrade-insecure-requests"));
        assert_eq!(plain["server"], "edge", "a Server without a version stays");
        assert!(plain.get("accept-ch").is_none(), "no content type: not a page");
        let page = applied(&HeaderPolicy::default(), false, &[("content-type", "text/html; charset=utf-8")]);
        assert_eq!(page["accept-ch"], ACCEPT_CH);
        let own = applied(&HeaderPolicy::default(), false, &[("content-type", "text/html"), ("accept-ch", "DPR")]);
        assert_eq!(own["accept-ch"], "DPR", "the origin's own Accept-CH stays");
    }

    #[test]
    fn static_api_none_and_origin_csp() {
        let s = applied(&HeaderPolicy { profile: Profile::Static, ..Default::default() }, false, &[]);
        assert_eq!((s["cross-origin-resource-policy"].to_str().unwrap(), s["x-frame-options"].to_str().unwrap()), ("same-site", "DENY"));
        assert_eq!(s["content-security-policy"], API_CSP, "an SVG among the assets runs no script");
        let public = applied(&HeaderPolicy { profile: Profile::Public, ..Default::default() }, false, &[]);
        assert_eq!((public["cross-origin-resource-policy"].to_str().unwrap(), public["content-security-policy"].to_str().unwrap()), ("cross-origin", API_CSP));
        assert_eq!(Profile::parse("public"), Ok(Profile::Public));
        let a = applied(&HeaderPolicy { profile: Profile::Api, ..Default::default() }, false, &[]);
        assert_eq!(a["content-security-policy"], API_CSP);
        let n = applied(&HeaderPolicy { profile: Profile::None, ..Default::default() }, false, &[("x-powered-by", "PHP")]);
        assert_eq!(n.len(), 0);
    }

    #[test]
    fn origin_headers_are_kept_unless_the_rule_overrides() {
        let origin = [("content-security-policy", "default-src *"), ("x-frame-options", "ALLOWALL"), ("x-xss-protection", "1; mode=block")];
        let added = applied(&HeaderPolicy::default(), false, &origin);
        assert_eq!(added["content-security-policy"], "default-src *");
        assert_eq!(added["x-frame-options"], "ALLOWALL");
        assert_eq!(added["x-xss-protection"], "1; mode=block");
        assert_eq!(added["x-content-type-options"], "nosniff", "what the origin did not send is added");
        let over = HeaderPolicy { override_origin: true, ..Default::default() };
        let replaced = applied(&over, false, &origin);
        assert_eq!(replaced["content-security-policy"], DEFAULT_CSP);
        assert_eq!(replaced["x-frame-options"], "SAMEORIGIN");
        assert_eq!(replaced["x-xss-protection"], "0");
        let keep = HeaderPolicy { override_origin: true, keep_origin_csp: true, ..Default::default() };
        assert_eq!(applied(&keep, false, &origin)["content-security-policy"], "default-src *");
        // A kept origin CSP is never given our nonce (it would switch off 'unsafe-inline').
        let mut h = HeaderMap::new();
        h.insert("content-security-policy", HeaderValue::from_static("script-src 'self' 'unsafe-inline'"));
        assert!(!apply(&HeaderPolicy::default(), &mut h, false, Some("n")));
        assert_eq!(h["content-security-policy"], "script-src 'self' 'unsafe-inline'");
        let mut h = HeaderMap::new();
        assert!(apply(&HeaderPolicy::default(), &mut h, false, Some("n")));
        assert!(h["content-security-policy"].to_str().unwrap().contains("'nonce-n'"));
    }

    #[test]
    fn pages_known_to_need_no_inline_styles_get_the_strict_policy() {
        let marked = || {
            let mut h = HeaderMap::new();
            h.insert(STRICT_STYLE, HeaderValue::from_static("1"));
            h
        };
        let mut h = marked();
        assert!(apply(&HeaderPolicy::default(), &mut h, true, Some("n")));
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none';") && csp.contains("style-src 'self' 'nonce-n'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(!h.contains_key(STRICT_STYLE), "the mark is never sent");
        let mut no_nonce = marked();
        apply(&HeaderPolicy::default(), &mut no_nonce, true, None);
        assert!(no_nonce["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"), "without a nonce the page's <style> would be refused");
        let mut opted_out = marked();
        apply(&HeaderPolicy { inline_styles: true, ..Default::default() }, &mut opted_out, true, Some("n"));
        assert!(opted_out["content-security-policy"].to_str().unwrap().contains("'unsafe-inline'"));
        let mut none = marked();
        apply(&HeaderPolicy { profile: Profile::None, ..Default::default() }, &mut none, true, None);
        assert!(none.is_empty(), "taken off under every profile");
    }

    #[test]
    fn nonces_are_22_characters_of_the_csp_grammar() {
        assert_eq!(nonce_of_length(&[0xfb; NONCE_RANDOM_BYTES], 24).len(), 24);
        assert_eq!(nonce_of_length(&[0xfb; NONCE_RANDOM_BYTES], 64).len(), 64);
        assert_eq!(nonce_length(&crate::test_support::headers(&[(NONCE_LENGTH, "24")])), 24);
        assert_eq!(nonce_length(&crate::test_support::headers(&[(NONCE_LENGTH, "8")])), NONCE_MIN_LEN, "never under 128 bits");
        assert_eq!(nonce_length(&crate::test_support::headers(&[(NONCE_LENGTH, "900")])), NONCE_MAX_LEN);
        assert_eq!(nonce_length(&crate::test_support::headers(&[])), NONCE_MIN_LEN);
        let n = nonce_text(&[0xfb; 16]);
        assert_eq!(n.len(), 22);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{n}");
        assert_ne!(nonce_text(&[0; 16]), nonce_text(&[1; 16]));
    }

    #[test]
    fn nonce_goes_into_script_and_style() {
        let csp = csp_with_nonce(DEFAULT_CSP, "abc");
        assert!(csp.contains("script-src 'self' 'nonce-abc'"));
        assert!(csp.contains("style-src 'self' https: 'unsafe-inline' 'nonce-abc'"));
        assert_eq!(csp_with_nonce("default-src 'self'", "n"), "default-src 'self'; script-src 'self' 'nonce-n'; style-src 'self' 'nonce-n'");
    }
}
