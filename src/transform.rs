//! Response transforms: whether a response is minified and/or compressed for a client, how its
//! headers change, and the body pipeline (minifier → brotli) the glue streams bytes through.

use crate::cache::CacheControl;
use crate::compress::{self, BrotliEncoder, Coding};
use crate::html::{BoxedSink, Minifier, MinifyOptions};
use crate::rules::Rule;
use http::header::{self, HeaderMap, HeaderValue};
use http::Method;
use std::cell::RefCell;
use std::rc::Rc;

/// What to do to one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransformPlan {
    /// Minify HTML.
    pub minify: bool,
    /// The coding the client gets: `Br` is encoded by us, `Gzip` by the platform, `Identity` none.
    pub coding: Option<Coding>,
    /// The response is compressible, so it varies on `Accept-Encoding`.
    pub vary_encoding: bool,
    /// The page says it is UTF-8 (`charset=utf-8`): the minifier may write characters for
    /// references.
    pub utf8: bool,
}

impl TransformPlan {
    /// Whether the body bytes change (the glue must stream them through [`BodyTransform`]).
    pub fn rewrites_body(&self) -> bool {
        self.minify || self.coding == Some(Coding::Br)
    }

    /// The name of what rewrites the body, for `Server-Timing` and the bytes-saved metric:
    /// `minify`, `brotli` or `minify_brotli`; `None` when the body passes unchanged.
    pub fn stage(&self) -> Option<&'static str> {
        match (self.minify, self.coding == Some(Coding::Br)) {
            (true, true) => Some("minify_brotli"),
            (true, false) => Some("minify"),
            (false, true) => Some("brotli"),
            (false, false) => None,
        }
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Decides the transforms for a response to a request. Applies only to full 200 responses
/// without an existing `Content-Encoding` and without `Cache-Control: no-transform`; HEAD gets
/// the same plan (its headers must match GET's).
pub fn plan(rule: &Rule, request: &HeaderMap, method: &Method, status: u16, response: &HeaderMap) -> TransformPlan {
    let content_type = header_str(response, header::CONTENT_TYPE).unwrap_or("");
    let already_encoded = header_str(response, header::CONTENT_ENCODING).is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    if status != 200 || already_encoded || CacheControl::from_headers(response).has("no-transform") || (method != Method::GET && method != Method::HEAD) {
        return TransformPlan::default();
    }
    let minify = rule.minify && content_type.trim_start().to_ascii_lowercase().starts_with("text/html");
    let compressible = rule.compress && compress::is_compressible(content_type);
    let length = header_str(response, header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    let worth = length.is_none_or(|n| n >= compress::MIN_COMPRESS_BYTES);
    // With CSP nonces the page is rewritten per response after the cache, so it is stored as
    // identity and the platform compresses it on the way out (see `serve_encoding`).
    let coding = (compressible && worth && !rule.csp_nonce)
        .then(|| compress::preferred_coding(header_str(request, header::ACCEPT_ENCODING).unwrap_or("")))
        .filter(|c| *c != Coding::Identity);
    TransformPlan { minify, coding, vary_encoding: compressible, utf8: minify && declares_utf8(content_type) }
}

/// Whether a `Content-Type` names UTF-8 as the charset.
fn declares_utf8(content_type: &str) -> bool {
    content_type.split(';').skip(1).filter_map(|p| p.split_once('=')).any(|(k, v)| k.trim().eq_ignore_ascii_case("charset") && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8"))
}

/// Applies a plan's header changes to the response as produced (and stored):
/// `Vary: Accept-Encoding`; and when the body changes, no `Content-Length` (the new length is not
/// known up front), a weak `ETag` (RFC 9110 §8.8.3: the bytes differ from the origin's), and
/// `Content-Encoding: br` for brotli. Gzip is not applied here: the platform encodes it on the
/// way out, so it is added by [`serve_encoding`] to the outgoing headers only.
pub fn apply_headers(plan: &TransformPlan, headers: &mut HeaderMap) {
    if plan.vary_encoding {
        let has = headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding") || v.trim() == "*");
        if !has {
            headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    if plan.rewrites_body() {
        headers.remove(header::CONTENT_LENGTH);
        weaken_etag(headers);
    }
    if plan.coding == Some(Coding::Br) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
    }
}

/// The outgoing step for any response (fresh or stored): an identity body that varies on
/// `Accept-Encoding` (i.e. is compressible) goes out gzip-encoded, by the platform, to clients
/// that prefer gzip, and brotli-encoded by the platform too when `platform_br` (pages rewritten
/// per response, which cannot be stored compressed). Returns whether the body bytes are already
/// encoded (then the glue must send them as they are).
pub fn serve_encoding(request: &HeaderMap, stored: &mut HeaderMap, platform_br: bool) -> bool {
    if let Some(enc) = header_str(stored, header::CONTENT_ENCODING) {
        return !enc.trim().eq_ignore_ascii_case("identity");
    }
    let vary_ae = stored.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).any(|v| v.to_ascii_lowercase().contains("accept-encoding"));
    let coding = match compress::preferred_coding(header_str(request, header::ACCEPT_ENCODING).unwrap_or("")) {
        Coding::Gzip => Some("gzip"),
        Coding::Br if platform_br => Some("br"),
        _ => None,
    };
    if let (true, Some(c)) = (vary_ae, coding) {
        stored.insert(header::CONTENT_ENCODING, HeaderValue::from_static(c));
        stored.remove(header::CONTENT_LENGTH);
        // The platform's encoding changes the bytes: the identity copy's strong ETag must not
        // name them (RFC 9110 §8.8.3).
        weaken_etag(stored);
    }
    false
}

/// Makes a strong `ETag` weak (`"x"` → `W/"x"`): the representation's bytes differ from the
/// ones the origin tagged.
pub fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(etag) = header_str(headers, header::ETAG).filter(|e| !e.starts_with("W/")) {
        if let Ok(v) = HeaderValue::from_str(&format!("W/{etag}")) {
            headers.insert(header::ETAG, v);
        }
    }
}

/// Whether a response gets a per-response CSP nonce: the rule asks for it and it is a full
/// HTML page.
pub fn wants_nonce(rule: &Rule, status: u16, headers: &HeaderMap) -> bool {
    rule.csp_nonce && status == 200 && crate::proxy::is_html(headers)
}

/// Header changes for a page rewritten with a fresh nonce: the length changes, and validators go,
/// since a browser revalidating with a 304 would pair its old body's nonce with the new CSP.
pub fn nonced_headers(headers: &mut HeaderMap) {
    for h in [header::ETAG, header::LAST_MODIFIED, header::CONTENT_LENGTH] {
        headers.remove(h);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
}

type Out = Rc<RefCell<Vec<u8>>>;
/// The brotli stage, shared with the minifier's sink (which writes into it).
type BrotliCell = Rc<RefCell<Option<BrotliEncoder<BoxedSink>>>>;

/// The body pipeline: push origin bytes in, take transformed bytes out.
pub struct BodyTransform {
    minifier: Option<Minifier>,
    brotli: BrotliCell,
    out: Out,
}

impl BodyTransform {
    /// A pipeline for a plan; `brotli_quality` is used when the plan's coding is brotli.
    /// (`plan.minify` runs the HTML stage with `minify`'s options, which may be nonce-only.)
    pub fn new(plan: &TransformPlan, minify: MinifyOptions, brotli_quality: u32) -> Self {
        let out: Out = Rc::new(RefCell::new(Vec::new()));
        let brotli: BrotliCell = Rc::new(RefCell::new(None));
        if plan.coding == Some(Coding::Br) {
            let o = out.clone();
            let sink: BoxedSink = Box::new(move |b: &[u8]| o.borrow_mut().extend_from_slice(b));
            *brotli.borrow_mut() = Some(BrotliEncoder::new(brotli_quality, sink));
        }
        let minifier = plan.minify.then(|| {
            let (b, o) = (brotli.clone(), out.clone());
            Minifier::new(minify, move |bytes: &[u8]| match b.borrow_mut().as_mut() {
                Some(enc) => enc.write(bytes),
                None => o.borrow_mut().extend_from_slice(bytes),
            })
        });
        Self { minifier, brotli, out }
    }

    fn feed(&mut self, chunk: &[u8]) {
        // The minifier's sink borrows the encoder itself, so no borrow is held around it.
        if let Some(m) = &mut self.minifier {
            return m.write(chunk);
        }
        match self.brotli.borrow_mut().as_mut() {
            Some(enc) => enc.write(chunk),
            None => self.out.borrow_mut().extend_from_slice(chunk),
        }
    }

    /// Pushes a chunk; returns the bytes ready to send (possibly none).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.feed(chunk);
        std::mem::take(&mut *self.out.borrow_mut())
    }

    /// Ends the stream; returns the remaining bytes.
    pub fn finish(mut self) -> Vec<u8> {
        if let Some(m) = self.minifier.take() {
            m.end();
        }
        if let Some(enc) = self.brotli.borrow_mut().take() {
            enc.finish();
        }
        let rest = std::mem::take(&mut *self.out.borrow_mut());
        rest
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stage_names_what_rewrites_the_body() {
        let plan = |minify, coding| TransformPlan { minify, coding, vary_encoding: true, utf8: false };
        assert_eq!(plan(true, Some(Coding::Br)).stage(), Some("minify_brotli"));
        assert_eq!(plan(true, Some(Coding::Gzip)).stage(), Some("minify"), "gzip is the platform's");
        assert_eq!(plan(false, Some(Coding::Br)).stage(), Some("brotli"));
        assert_eq!(plan(false, Some(Coding::Gzip)).stage(), None);
        assert_eq!(plan(false, None).stage(), None);
    }

    use super::*;
    use crate::test_support::headers as h;
    use std::io::Read;

    fn html_rule() -> Rule {
        Rule { minify: true, ..Rule::default_rule() }
    }

    #[test]
    fn plan_table() {
        let html = h(&[("content-type", "text/html; charset=utf-8"), ("content-length", "5000")]);
        let br = h(&[("accept-encoding", "gzip, br")]);
        let p = plan(&html_rule(), &br, &Method::GET, 200, &html);
        assert_eq!(p, TransformPlan { minify: true, coding: Some(Coding::Br), vary_encoding: true, utf8: true });
        assert!(!plan(&html_rule(), &br, &Method::GET, 200, &h(&[("content-type", "text/html; charset=ISO-8859-1")])).utf8, "only a page that says UTF-8");
        assert!(plan(&html_rule(), &br, &Method::GET, 200, &h(&[("content-type", "text/html;charset=\"UTF-8\"")])).utf8);
        assert_eq!(plan(&html_rule(), &h(&[]), &Method::GET, 200, &html).coding, None, "no Accept-Encoding: identity");
        assert_eq!(plan(&html_rule(), &h(&[("accept-encoding", "gzip")]), &Method::GET, 200, &html).coding, Some(Coding::Gzip));
        assert!(!plan(&Rule::default_rule(), &br, &Method::GET, 200, &html).minify, "minify is off unless the rule says so");
        assert_eq!(plan(&html_rule(), &br, &Method::HEAD, 200, &html), p, "HEAD plans like GET");
        assert_eq!(plan(&html_rule(), &br, &Method::GET, 206, &html), TransformPlan::default());
        let encoded = h(&[("content-type", "text/html"), ("content-encoding", "gzip")]);
        assert_eq!(plan(&html_rule(), &br, &Method::GET, 200, &encoded), TransformPlan::default(), "never re-compress");
        let nt = h(&[("content-type", "text/html"), ("cache-control", "public, no-transform")]);
        assert_eq!(plan(&html_rule(), &br, &Method::GET, 200, &nt), TransformPlan::default());
        let tiny = h(&[("content-type", "text/css"), ("content-length", "100")]);
        assert_eq!(plan(&html_rule(), &br, &Method::GET, 200, &tiny).coding, None, "below the threshold");
        let png = h(&[("content-type", "image/png"), ("content-length", "9000")]);
        assert_eq!(plan(&html_rule(), &br, &Method::GET, 200, &png), TransformPlan::default());
        let off = Rule { compress: false, ..html_rule() };
        assert_eq!(plan(&off, &br, &Method::GET, 200, &html).coding, None);
        let nonce = Rule { csp_nonce: true, ..html_rule() };
        assert_eq!(plan(&nonce, &br, &Method::GET, 200, &html), TransformPlan { minify: true, coding: None, vary_encoding: true, utf8: true }, "stored identity");
    }

    #[test]
    fn header_changes() {
        let p = TransformPlan { minify: true, coding: Some(Coding::Br), vary_encoding: true, utf8: false };
        let mut gz = h(&[("content-length", "10")]);
        apply_headers(&TransformPlan { minify: false, coding: Some(Coding::Gzip), vary_encoding: true, utf8: false }, &mut gz);
        assert!(gz.get("content-encoding").is_none(), "gzip is the platform's, added only on the way out");
        let mut headers = h(&[("content-length", "10"), ("etag", "\"x\""), ("vary", "Accept-Language")]);
        apply_headers(&p, &mut headers);
        assert!(headers.get("content-length").is_none());
        assert_eq!(headers["etag"], "W/\"x\"");
        assert_eq!(headers["content-encoding"], "br");
        let vary: Vec<_> = headers.get_all("vary").iter().collect();
        assert_eq!(vary, ["Accept-Language", "Accept-Encoding"]);
        let mut again = headers.clone();
        apply_headers(&p, &mut again);
        assert_eq!(again.get_all("vary").iter().count(), 2, "idempotent");
        let mut stored = h(&[("vary", "Accept-Encoding"), ("content-length", "10"), ("etag", "\"v1\"")]);
        assert!(!serve_encoding(&h(&[("accept-encoding", "gzip")]), &mut stored, false));
        assert_eq!(stored["content-encoding"], "gzip");
        assert_eq!(stored["etag"], "W/\"v1\"", "the platform's gzip changes the bytes: weak ETag");
        let mut identity = h(&[("vary", "Accept-Encoding"), ("etag", "\"v1\"")]);
        serve_encoding(&h(&[]), &mut identity, false);
        assert_eq!(identity["etag"], "\"v1\"", "identity bytes keep the strong ETag");
        assert!(serve_encoding(&h(&[]), &mut h(&[("content-encoding", "br")]), false));
        let mut page = h(&[("vary", "Accept-Encoding")]);
        assert!(!serve_encoding(&h(&[("accept-encoding", "br")]), &mut page, true));
        assert_eq!(page["content-encoding"], "br", "the platform compresses per-response pages");
    }

    #[test]
    fn nonce_only_for_html_pages_of_nonce_rules() {
        let nonce = Rule { csp_nonce: true, ..Rule::default_rule() };
        let html = h(&[("content-type", "text/html; charset=utf-8"), ("etag", "\"e\""), ("content-length", "9")]);
        assert!(wants_nonce(&nonce, 200, &html));
        assert!(!wants_nonce(&nonce, 404, &html));
        assert!(!wants_nonce(&nonce, 200, &h(&[("content-type", "text/css")])));
        assert!(!wants_nonce(&Rule::default_rule(), 200, &html));
        let mut out = html.clone();
        nonced_headers(&mut out);
        assert!(out.get("etag").is_none() && out.get("content-length").is_none());
        assert_eq!(out["cache-control"], "private, no-cache");
    }

    #[test]
    fn pipeline_minifies_then_compresses_in_any_chunking() {
        let page = include_bytes!("../assets/site/index.html");
        let p = TransformPlan { minify: true, coding: Some(Coding::Br), vary_encoding: true, utf8: false };
        let mut t = BodyTransform::new(&p, MinifyOptions::new(), 5);
        let mut out = Vec::new();
        for chunk in page.chunks(37) {
            out.extend(t.push(chunk));
        }
        out.extend(t.finish());
        let mut back = Vec::new();
        brotli::Decompressor::new(&out[..], 4096).read_to_end(&mut back).unwrap();
        assert_eq!(back, crate::html::minify(page, MinifyOptions::new()));
        assert!(out.len() < page.len() / 2);
        let only_min = TransformPlan { minify: true, coding: None, vary_encoding: true, utf8: false };
        let mut t = BodyTransform::new(&only_min, MinifyOptions::new(), 5);
        let mut out = t.push(page);
        out.extend(t.finish());
        assert_eq!(out, crate::html::minify(page, MinifyOptions::new()));
    }
}
