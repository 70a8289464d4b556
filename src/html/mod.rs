//! Streaming, hydration-safe HTML minification on lol_html: bytes are pushed in with
//! [`Minifier::write`] and flow out to a sink as they are rewritten; nothing waits for the
//! whole page, and memory is bounded by lol_html's per-token limit.
//!
//! Only transforms that keep the parsed tree (modulo whitespace rules) are made:
//! - runs of ASCII whitespace in ordinary text collapse to one character (a newline if the run
//!   had one, else a space), also across chunk boundaries;
//! - comments are removed, except conditional comments and framework markers
//!   ([`DEFAULT_KEPT_COMMENTS`]);
//! - `application/ld+json` and `application/json` script blocks are re-serialised compactly when
//!   they parse (left alone otherwise);
//! - attributes whose value is the spec's default go ([`DEFAULT_ATTRIBUTES`]): `type` on
//!   `<script>` (`text/javascript`), on `<style>` and on stylesheet `<link>`s (`text/css`), and
//!   `method="get"` on `<form>`. Beware: a page whose CSS or scripts select on exactly those
//!   attributes (`form[method=get]`) stops matching; `with_remove_default_attributes(false)`.
//!
//! Never touched: the content of `pre`, `textarea`, `code`, `listing`, `xmp`, `plaintext`,
//! elements with `xml:space` or an inline `white-space` style, `script`, `style` and `title`
//! (raw text), attribute values, and anything after the memory limit is hit (the rest of the page
//! passes through unmodified).
//!
//! ### Beware
//! Text arrives in chunks that can split a whitespace run or an entity; the collapser carries
//! "the previous chunk ended in whitespace" across chunks and only resets at the end of a text
//! node. An element whose end tag is implied (omitted) never reports its end, so whitespace
//! stays preserved after it: the safe direction.

pub mod page_facts;

use lol_html::html_content::TextType;
use lol_html::{doc_comments, doc_text, element, end_tag, text, HtmlRewriter, MemorySettings, Settings};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Comment texts (trimmed) kept by default, matched as prefixes: conditional comments, and the
/// markers SSR frameworks hydrate from (React `$`/`/$`/`$?`/`$!`, Vue and Svelte `[`/`]` and the
/// empty `<!---->`, Astro `astro:`, Knockout `ko`/`/ko`, Lit `lit-part`/`?lit$`, SSI `#`, and
/// "important" `!` comments such as licences).
pub const DEFAULT_KEPT_COMMENTS: &[&str] = &[
    "[if", "<![endif]", "$", "/$", "[", "]", "astro:", "ko ", "/ko", "lit-part", "/lit-part", "?lit$", "#", "!", "HTML_TAG_", "ngsp", "@",
];

/// `(element selector, attribute, default value)`: attributes removed when their value, trimmed
/// and compared without case, is the HTML spec's default, so the parsed tree means the same.
pub const DEFAULT_ATTRIBUTES: &[(&str, &str, &str)] = &[
    ("script[type]", "type", "text/javascript"),
    ("style[type]", "type", "text/css"),
    ("link[rel~='stylesheet' i][type]", "type", "text/css"),
    ("form[method]", "method", "get"),
];

/// Largest JSON script body buffered for re-serialisation; larger ones pass unmodified.
pub const MAX_JSON_SCRIPT_BYTES: usize = 256 * 1024;

/// lol_html's memory limit per minifier (buffered token bytes); past it the rest of the page
/// passes through unmodified.
pub const DEFAULT_MAX_MEMORY: usize = 4 * 1024 * 1024;

/// What the minifier does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinifyOptions {
    collapse_whitespace: bool,
    remove_comments: bool,
    minify_json: bool,
    remove_default_attributes: bool,
    kept_comments: Vec<String>,
    max_memory: usize,
    csp_nonce: Option<String>,
}

impl Default for MinifyOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl MinifyOptions {
    /// Every safe transform on, default kept comments and memory limit.
    pub fn new() -> Self {
        Self {
            collapse_whitespace: true,
            remove_comments: true,
            minify_json: true,
            remove_default_attributes: true,
            kept_comments: DEFAULT_KEPT_COMMENTS.iter().map(|s| (*s).to_owned()).collect(),
            max_memory: DEFAULT_MAX_MEMORY,
            csp_nonce: None,
        }
    }

    /// No minifying, only the nonce: for the per-response pass over an already minified page.
    pub fn nonce_only(nonce: String) -> Self {
        Self::new().with_collapse_whitespace(false).with_remove_comments(false).with_minify_json(false).with_remove_default_attributes(false).with_csp_nonce(Some(nonce))
    }

    /// Sets `nonce="..."` on every `<script>` and `<style>` element (for a CSP with that nonce).
    /// ### Default
    /// `None`.
    pub fn with_csp_nonce(mut self, nonce: Option<String>) -> Self {
        self.csp_nonce = nonce;
        self
    }

    /// Collapse whitespace runs in ordinary text.
    /// ### Default
    /// `true`.
    pub fn with_collapse_whitespace(mut self, on: bool) -> Self {
        self.collapse_whitespace = on;
        self
    }

    /// Remove comments not matching the kept list.
    /// ### Default
    /// `true`.
    pub fn with_remove_comments(mut self, on: bool) -> Self {
        self.remove_comments = on;
        self
    }

    /// Re-serialise JSON script blocks compactly.
    /// ### Default
    /// `true`.
    pub fn with_minify_json(mut self, on: bool) -> Self {
        self.minify_json = on;
        self
    }

    /// Drop attributes whose value is the spec's default ([`DEFAULT_ATTRIBUTES`]).
    /// ### Default
    /// `true`.
    pub fn with_remove_default_attributes(mut self, on: bool) -> Self {
        self.remove_default_attributes = on;
        self
    }

    /// Extra comment prefixes to keep, added to the defaults.
    /// ### Default
    /// [`DEFAULT_KEPT_COMMENTS`].
    pub fn with_kept_comments<I: IntoIterator<Item = String>>(mut self, extra: I) -> Self {
        self.kept_comments.extend(extra);
        self
    }

    /// lol_html's memory limit.
    /// ### Default
    /// [`DEFAULT_MAX_MEMORY`].
    pub fn with_max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }

    /// Whether a comment's text is kept.
    pub fn keeps_comment(&self, text: &str) -> bool {
        let t = text.trim();
        t.is_empty() || self.kept_comments.iter().any(|k| t.starts_with(k.as_str()))
    }
}

fn is_ascii_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Collapses whitespace runs in `text`; `prev_ws` says the text before it (same text node)
/// ended in whitespace, so a leading run is dropped. Returns `None` when nothing changes.
pub fn collapse_whitespace(text: &str, prev_ws: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let needs = bytes.windows(2).any(|w| is_ascii_ws(w[0]) && is_ascii_ws(w[1]))
        || bytes.iter().any(|b| matches!(b, b'\t' | b'\r' | b'\x0c'))
        || (prev_ws && bytes.first().copied().is_some_and(is_ascii_ws));
    if !needs {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_run_from_prev = prev_ws;
    while i < bytes.len() {
        if is_ascii_ws(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_ascii_ws(bytes[i]) {
                i += 1;
            }
            if !in_run_from_prev {
                out.push(if bytes[start..i].contains(&b'\n') { '\n' } else { ' ' });
            }
        } else {
            let start = i;
            while i < bytes.len() && !is_ascii_ws(bytes[i]) {
                i += 1;
            }
            out.push_str(&text[start..i]);
        }
        in_run_from_prev = false;
    }
    Some(out)
}

/// Re-serialises a JSON script body compactly, keeping it safe inside `<script>`: `</` and
/// `<!` are written `\u003c/` and `\u003c!` (valid JSON, same value). `None` if it does not parse.
pub fn minify_json_script(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let compact = serde_json::to_string(&value).ok()?;
    Some(compact.replace("</", "\\u003c/").replace("<!", "\\u003c!"))
}

type Sink = Rc<RefCell<dyn FnMut(&[u8])>>;
/// A boxed byte sink (lol_html's output, the brotli stage's output).
pub type BoxedSink = Box<dyn FnMut(&[u8])>;

/// A streaming minifier: push bytes in, rewritten bytes come out through the sink.
pub struct Minifier {
    rewriter: Option<HtmlRewriter<'static, BoxedSink>>,
    sink: Sink,
    /// Set once lol_html bailed out: input goes to the sink unmodified from then on.
    passthrough: bool,
}

impl Minifier {
    /// A minifier writing to `sink`.
    pub fn new(options: MinifyOptions, sink: impl FnMut(&[u8]) + 'static) -> Self {
        let sink: Sink = Rc::new(RefCell::new(sink));
        let options = Rc::new(options);
        let preserve_depth = Rc::new(Cell::new(0u32));
        let prev_ws = Rc::new(Cell::new(false));
        let json_buf: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));

        let mut element_handlers = Vec::new();
        let depth = preserve_depth.clone();
        element_handlers.push(element!("pre, textarea, code, listing, xmp, plaintext, [xml\\:space], [style*='white-space']", move |el| {
            if let Some(handlers) = el.end_tag_handlers() {
                depth.set(depth.get() + 1);
                let d = depth.clone();
                handlers.push(end_tag!(move |_| {
                    d.set(d.get().saturating_sub(1));
                    Ok(())
                }));
            }
            Ok(())
        }));
        if options.remove_default_attributes {
            for (selector, name, default) in DEFAULT_ATTRIBUTES {
                element_handlers.push(element!(*selector, move |el| {
                    if el.get_attribute(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(default)) {
                        el.remove_attribute(name);
                    }
                    Ok(())
                }));
            }
        }
        if let Some(nonce) = options.csp_nonce.clone() {
            element_handlers.push(element!("script, style", move |el| {
                el.set_attribute("nonce", &nonce)?;
                Ok(())
            }));
        }
        if options.minify_json {
            let buf = json_buf.clone();
            element_handlers.push(text!("script[type='application/ld+json'], script[type='application/json']", move |chunk| {
                let mut guard = buf.borrow_mut();
                let b = guard.get_or_insert_with(String::new);
                if b.len() > MAX_JSON_SCRIPT_BYTES {
                    // Overflowed earlier: the buffered part was already emitted; pass the rest.
                    if chunk.last_in_text_node() {
                        *guard = None;
                    }
                    return Ok(());
                }
                b.push_str(chunk.as_str());
                if b.len() > MAX_JSON_SCRIPT_BYTES {
                    let all = std::mem::take(b);
                    chunk.set_str(all);
                    b.push_str(&"x".repeat(MAX_JSON_SCRIPT_BYTES + 1)); // stays "overflowed"
                    if chunk.last_in_text_node() {
                        *guard = None;
                    }
                    return Ok(());
                }
                if chunk.last_in_text_node() {
                    let all = guard.take().unwrap_or_default();
                    let out = minify_json_script(&all).unwrap_or(all);
                    chunk.set_str(out);
                } else {
                    chunk.set_str(String::new());
                }
                Ok(())
            }));
        }

        let mut document_handlers = Vec::new();
        if options.collapse_whitespace {
            let depth = preserve_depth.clone();
            let prev = prev_ws.clone();
            document_handlers.push(doc_text!(move |chunk| {
                if chunk.text_type() != TextType::Data || depth.get() > 0 {
                    prev.set(false);
                    return Ok(());
                }
                let ends_ws = chunk.as_str().as_bytes().last().copied().is_some_and(is_ascii_ws);
                let was_ws = prev.get();
                if let Some(out) = collapse_whitespace(chunk.as_str(), was_ws) {
                    chunk.set_str(out);
                }
                prev.set(if chunk.last_in_text_node() { false } else { ends_ws || (was_ws && chunk.as_str().is_empty()) });
                Ok(())
            }));
        }
        if options.remove_comments {
            let opts = options.clone();
            document_handlers.push(doc_comments!(move |c| {
                if !opts.keeps_comment(&c.text()) {
                    c.remove();
                }
                Ok(())
            }));
        }
        let out = sink.clone();
        let write: BoxedSink = Box::new(move |bytes: &[u8]| (out.borrow_mut())(bytes));
        let mut settings = Settings::new().with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(options.max_memory).with_graceful_bail_out_on_memory_limit_exceeded(true),
        );
        for h in element_handlers {
            settings = settings.append_element_content_handler(h);
        }
        for h in document_handlers {
            settings = settings.append_document_content_handler(h);
        }
        Self { rewriter: Some(HtmlRewriter::new(settings, write)), sink, passthrough: false }
    }

    /// Pushes a chunk. After a bail-out (memory limit) input passes through unmodified, so the
    /// page is never truncated.
    pub fn write(&mut self, chunk: &[u8]) {
        if self.passthrough {
            (self.sink.borrow_mut())(chunk);
            return;
        }
        if let Some(r) = self.rewriter.as_mut() {
            if r.write(chunk).is_err() {
                // Graceful bail-out flushed every byte received so far, unmodified.
                self.rewriter = None;
                self.passthrough = true;
            }
        }
    }

    /// Finishes the document, flushing what lol_html still holds.
    pub fn end(mut self) {
        if let Some(r) = self.rewriter.take() {
            let _ = r.end();
        }
    }

    /// Whether the minifier gave up and is passing input through.
    pub fn bailed_out(&self) -> bool {
        self.passthrough
    }
}

/// Minifies a whole document in memory (tests, benchmarks, small bodies).
pub fn minify(html: &[u8], options: MinifyOptions) -> Vec<u8> {
    let out = Rc::new(RefCell::new(Vec::with_capacity(html.len())));
    let o = out.clone();
    let mut m = Minifier::new(options, move |b: &[u8]| o.borrow_mut().extend_from_slice(b));
    m.write(html);
    m.end();
    Rc::try_unwrap(out).map(RefCell::into_inner).unwrap_or_else(|rc| rc.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> String {
        String::from_utf8(minify(s.as_bytes(), MinifyOptions::new())).unwrap()
    }

    #[test]
    fn collapses_text_whitespace_but_not_preserved_content() {
        assert_eq!(m("<p>a   b\n\n  c</p>"), "<p>a b\nc</p>");
        assert_eq!(m("<pre>a   b\n\n c</pre><p>x  y</p>"), "<pre>a   b\n\n c</pre><p>x y</p>");
        assert_eq!(m("<textarea>  x   y </textarea>"), "<textarea>  x   y </textarea>");
        assert_eq!(m("<code>a   b</code> c   d"), "<code>a   b</code> c d");
        assert_eq!(m("<div style='white-space: pre'>a   b</div>"), "<div style='white-space: pre'>a   b</div>");
        assert_eq!(m("<svg xml:space='preserve'><text>a   b</text></svg>"), "<svg xml:space='preserve'><text>a   b</text></svg>");
        assert_eq!(m("<script>var  a =  1;\n\n</script>"), "<script>var  a =  1;\n\n</script>");
        assert_eq!(m("<style>a  {  }</style>"), "<style>a  {  }</style>");
        assert_eq!(m("<title>a   b</title>"), "<title>a   b</title>");
        assert_eq!(m("<p>a&nbsp;&nbsp; b</p>"), "<p>a&nbsp;&nbsp; b</p>", "nbsp is not ASCII whitespace");
        assert_eq!(m("<p>\u{a0}\u{a0}x</p>"), "<p>\u{a0}\u{a0}x</p>");
        assert_eq!(m("<b>a</b>   <i>b</i>"), "<b>a</b> <i>b</i>", "inline spaces stay (collapsed)");
    }

    #[test]
    fn default_attributes_go_and_nothing_else() {
        assert_eq!(m("<script type=\"text/javascript\">a()</script>"), "<script>a()</script>");
        assert_eq!(m("<script type=' Text/JavaScript '>a()</script>"), "<script>a()</script>");
        assert_eq!(m("<script type=module>a()</script>"), "<script type=module>a()</script>");
        assert_eq!(m("<script type=\"application/javascript\">a()</script>"), "<script type=\"application/javascript\">a()</script>", "equivalent, but not the default's text");
        assert_eq!(m("<style type=text/css>a{}</style>"), "<style>a{}</style>");
        assert_eq!(m("<link rel=stylesheet type=\"text/css\" href=a.css>"), "<link rel=stylesheet href=a.css>");
        assert_eq!(m("<link rel=\"alternate stylesheet\" type=\"text/css\" href=a.css>"), "<link rel=\"alternate stylesheet\" href=a.css>");
        assert_eq!(m("<link rel=preload type=\"text/css\" href=a.css>"), "<link rel=preload type=\"text/css\" href=a.css>", "only stylesheets");
        assert_eq!(m("<form method=GET action=/s><form method=post>"), "<form action=/s><form method=post>");
        let off = String::from_utf8(minify(b"<form method=get>", MinifyOptions::new().with_remove_default_attributes(false))).unwrap();
        assert_eq!(off, "<form method=get>");
        let nonce = String::from_utf8(minify(b"<script type=text/javascript>x</script>", MinifyOptions::nonce_only("n".into()))).unwrap();
        assert_eq!(nonce, "<script type=text/javascript nonce=\"n\">x</script>", "the per-response pass only adds the nonce");
    }

    #[test]
    fn comments_removed_except_markers() {
        assert_eq!(m("a<!-- note -->b"), "ab");
        for kept in ["<!--[if IE]><p>x</p><![endif]-->", "<!--$-->", "<!--/$-->", "<!--[-->", "<!--]-->", "<!---->", "<!-- ko if: x -->", "<!-- /ko -->", "<!--#include virtual=\"x\" -->", "<!--! licence -->", "<!--astro:end-->"] {
            assert_eq!(m(kept), kept, "{kept}");
        }
        let custom = MinifyOptions::new().with_kept_comments(["keep-me".to_owned()]);
        assert_eq!(String::from_utf8(minify(b"<!--keep-me 1--><!--drop-->", custom)).unwrap(), "<!--keep-me 1-->");
    }

    #[test]
    fn json_scripts_reserialised_safely() {
        assert_eq!(m("<script type=\"application/ld+json\">\n { \"a\" : [1, 2] }\n</script>"), "<script type=\"application/ld+json\">{\"a\":[1,2]}</script>");
        let bad = "<script type=\"application/json\">{ not json }</script>";
        assert_eq!(m(bad), bad);
        let tricky = "<script type=\"application/json\">{ \"x\": \"<\\/script><!--\" }</script>";
        assert_eq!(m(tricky), "<script type=\"application/json\">{\"x\":\"\\u003c/script>\\u003c!--\"}</script>");
        assert_eq!(minify_json_script("{\"x\":\"<\\/p>\"}").unwrap(), "{\"x\":\"\\u003c/p>\"}");
    }

    #[test]
    fn nonce_on_every_script_and_style() {
        let out = String::from_utf8(minify(b"<style>a{}</style><script>x()</script><script src=/a.js></script><p>  t  </p>", MinifyOptions::nonce_only("n0".into()))).unwrap();
        assert_eq!(out, "<style nonce=\"n0\">a{}</style><script nonce=\"n0\">x()</script><script src=/a.js nonce=\"n0\"></script><p>  t  </p>");
    }

    #[test]
    fn collapse_across_chunk_boundaries() {
        assert_eq!(collapse_whitespace("a  ", false).as_deref(), Some("a "));
        assert_eq!(collapse_whitespace("  b", true).as_deref(), Some("b"));
        assert_eq!(collapse_whitespace("ab", true), None);
        assert_eq!(collapse_whitespace(" \t\n x", false).as_deref(), Some("\nx"));
    }

    #[test]
    fn random_chunking_matches_whole_input() {
        let page = include_str!("../../assets/site/index.html");
        let whole = minify(page.as_bytes(), MinifyOptions::new());
        let seed: u64 = std::env::var("CHUNK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
        let mut state = seed;
        for round in 0..200 {
            let out = Rc::new(RefCell::new(Vec::new()));
            let o = out.clone();
            let mut mf = Minifier::new(MinifyOptions::new(), move |b: &[u8]| o.borrow_mut().extend_from_slice(b));
            let bytes = page.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let n = 1 + (state >> 33) as usize % 64;
                let end = (i + n).min(bytes.len());
                mf.write(&bytes[i..end]);
                i = end;
            }
            mf.end();
            assert_eq!(*out.borrow(), whole, "seed {seed:#x}, round {round}: chunked output differs");
        }
    }

    #[test]
    fn bails_out_without_losing_bytes() {
        let mut page = String::from("<p>a   b</p><!--");
        page.push_str(&"c".repeat(4096));
        page.push_str("--><p>x   y</p>");
        let out = minify(page.as_bytes(), MinifyOptions::new().with_max_memory(1024));
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("--><p>x   y</p>"), "the rest passes through unmodified: {}", &out[out.len() - 20..]);
        assert!(out.contains(&"c".repeat(4096)), "nothing lost");
    }

    /// Text as the collapser meets it: words, ASCII whitespace of every kind, and a non-ASCII
    /// space (U+00A0), which is content and must survive.
    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("([a-z<>&é\u{a0}]{1,4}|[ \t\n\r\x0c]{1,4}){0,12}").unwrap()
    }

    /// The collapser as the minifier drives it over a text node cut into chunks: each chunk
    /// knows whether the output so far ended in whitespace.
    fn collapse_chunked(pieces: &[&str]) -> String {
        let mut out = String::new();
        for piece in pieces {
            let prev_ws = out.as_bytes().last().copied().is_some_and(is_ascii_ws);
            out.push_str(&collapse_whitespace(piece, prev_ws).unwrap_or_else(|| piece.to_string()));
        }
        out
    }

    fn non_ws(s: &str) -> String {
        s.chars().filter(|c| !c.is_ascii_whitespace() || *c == '\u{a0}').collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Wherever the chunks fall: every non-whitespace character is kept in order, no two
        /// ASCII whitespace characters are left next to each other, a run is kept (as one) exactly
        /// where the input had one, and the result equals the unchunked one but for the kind of
        /// whitespace (a run cut before its newline may come out as a space).
        #[test]
        fn collapses_the_same_across_chunk_boundaries(s in text(), cuts in proptest::collection::vec(0usize..64, 0..4)) {
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).filter(|c| s.is_char_boundary(*c)).collect();
            bounds.sort_unstable();
            bounds.dedup();
            let mut pieces = Vec::new();
            let mut at = 0;
            for b in bounds.into_iter().chain([s.len()]) {
                pieces.push(&s[at..b]);
                at = b;
            }
            let chunked = collapse_chunked(&pieces);
            let whole = collapse_chunked(&[s.as_str()]);
            proptest::prop_assert_eq!(non_ws(&chunked), non_ws(&s));
            proptest::prop_assert!(!chunked.as_bytes().windows(2).any(|w| is_ascii_ws(w[0]) && is_ascii_ws(w[1])), "{chunked:?}");
            let kinds = |t: &str| t.chars().map(|c| if c.is_ascii_whitespace() { ' ' } else { c }).collect::<String>();
            proptest::prop_assert_eq!(kinds(&chunked), kinds(&whole));
        }
    }
}
