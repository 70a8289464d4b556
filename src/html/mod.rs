//! Streaming, hydration-safe HTML minification on lol_html: bytes are pushed in with
//! [`Minifier::write`] and flow out to a sink as they are rewritten; nothing waits for the
//! whole page, and memory is bounded by lol_html's per-token limit.
//!
//! Only transforms that keep the parsed tree (modulo whitespace rules) are made, each with its
//! own switch on [`MinifyOptions`]:
//! - runs of ASCII whitespace in ordinary text collapse to one character (a newline if the run
//!   had one, else a space), also across chunk boundaries;
//! - comments are removed, except conditional comments and framework markers
//!   ([`DEFAULT_KEPT_COMMENTS`]);
//! - `application/ld+json` and `application/json` script blocks are re-serialised compactly when
//!   they parse (left alone otherwise);
//! - attributes whose value is the spec's default go ([`DEFAULT_ATTRIBUTES`]). Beware: a page
//!   whose CSS or scripts select on exactly those attributes (`form[method=get]`) stops
//!   matching; `with_remove_default_attributes(false)`;
//! - end tags the next token implies are left out, with one token of lookahead ([`tags`]; the
//!   document's structure as the minifier follows it is in `flow`);
//! - character references are written in their shortest form ([`refs`]);
//! - blank text where it is never rendered goes (head, table parts:
//!   [`tags::whitespace_ignorable_in`]);
//! - `name=""` is written `name`, and HTML elements lose a `/>` the parser ignores; values lose
//!   their quotes only when asked ([`MinifyOptions::with_unquote_attributes`]).
//!
//! Never touched: the content of `pre`, `textarea`, `code`, `listing`, `xmp`, `plaintext`,
//! elements with `xml:space` or an inline `white-space` style, `script`, `style` and `title`
//! (raw text), SVG and MathML text and tags, what attribute values mean, and anything after the
//! memory limit is hit (the rest of the page passes through unmodified).
//!
//! ### Beware
//! Text arrives in chunks that can split a whitespace run or an entity; the collapser carries
//! "the previous chunk ended in whitespace" across chunks and only resets at the end of a text
//! node, and a reference cut by a chunk is held back until the next one. An element whose end
//! tag is implied (omitted in the source) never reports its end, so whitespace stays preserved
//! after it: the safe direction.

mod flow;
pub mod page_facts;
pub mod refs;
pub mod tags;

use flow::{Flow, StartTag};
use lol_html::html_content::{ContentType, TextType};
use lol_html::{bail_out, doc_comments, doc_text, element, end_tag, text, HtmlRewriter, MemorySettings, Settings};
use std::cell::RefCell;
use std::rc::Rc;

/// Comment texts (trimmed) kept by default, matched as prefixes: conditional comments, and the
/// markers SSR frameworks hydrate from (React `$`/`/$`/`$?`/`$!`, Vue and Svelte `[`/`]` and the
/// empty `<!---->`, Astro `astro:`, Knockout `ko`/`/ko`, Lit `lit-part`/`?lit$`, SSI `#`, and
/// "important" `!` comments such as licences).
pub const DEFAULT_KEPT_COMMENTS: &[&str] = &[
    "[if", "<![endif]", "$", "/$", "[", "]", "astro:", "ko ", "/ko", "lit-part", "/lit-part", "?lit$", "#", "!", "HTML_TAG_", "ngsp", "@",
];

pub use tags::DEFAULT_ATTRIBUTES;

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
    unquote_attributes: bool,
    short_start_tags: bool,
    omit_optional_tags: bool,
    shorten_char_refs: bool,
    drop_ignorable_whitespace: bool,
    utf8: bool,
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
            unquote_attributes: false,
            short_start_tags: true,
            omit_optional_tags: true,
            shorten_char_refs: true,
            drop_ignorable_whitespace: true,
            utf8: false,
            kept_comments: DEFAULT_KEPT_COMMENTS.iter().map(|s| (*s).to_owned()).collect(),
            max_memory: DEFAULT_MAX_MEMORY,
            csp_nonce: None,
        }
    }

    /// No minifying, only the nonce: for the per-response pass over an already minified page.
    pub fn nonce_only(nonce: String) -> Self {
        Self::new()
            .with_collapse_whitespace(false)
            .with_remove_comments(false)
            .with_minify_json(false)
            .with_remove_default_attributes(false)
            .with_unquote_attributes(false)
            .with_short_start_tags(false)
            .with_omit_optional_tags(false)
            .with_shorten_char_refs(false)
            .with_drop_ignorable_whitespace(false)
            .with_csp_nonce(Some(nonce))
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

    /// Write attribute values without quotes where the syntax allows
    /// ([`tags::write_start_tag`]).
    /// ### Default
    /// `false`: it saves about 2 % of the bytes, but the page then compresses worse (brotli 11:
    /// 0.1 to 1.3 % larger on the benchmark corpora), and pages go out compressed.
    pub fn with_unquote_attributes(mut self, on: bool) -> Self {
        self.unquote_attributes = on;
        self
    }

    /// Write `name` for `name=""`, and no `/` before `>` on HTML elements (the parser ignores
    /// it there; on SVG and MathML elements it stays).
    /// ### Default
    /// `true`.
    pub fn with_short_start_tags(mut self, on: bool) -> Self {
        self.short_start_tags = on;
        self
    }

    /// Leave out end tags the parser implies from the next token (`</li>` before `<li>`,
    /// `</td>` before `</tr>`, ...; [`tags::OPTIONAL_END`]) and a `<head>` start tag that is
    /// followed by an element.
    /// ### Default
    /// `true`.
    pub fn with_omit_optional_tags(mut self, on: bool) -> Self {
        self.omit_optional_tags = on;
        self
    }

    /// Write character references in their shortest form ([`refs`]).
    /// ### Default
    /// `true`.
    pub fn with_shorten_char_refs(mut self, on: bool) -> Self {
        self.shorten_char_refs = on;
        self
    }

    /// Drop whitespace-only text where it is never rendered: before the document, around
    /// `<head>`, inside it, and between table parts ([`tags::whitespace_ignorable_in`]).
    /// ### Default
    /// `true`.
    pub fn with_drop_ignorable_whitespace(mut self, on: bool) -> Self {
        self.drop_ignorable_whitespace = on;
        self
    }

    /// The document is known to be UTF-8 (its `Content-Type` says so): character references
    /// may become the non-ASCII characters they stand for.
    /// ### Default
    /// `false`.
    pub fn with_utf8(mut self, on: bool) -> Self {
        self.utf8 = on;
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

    /// Whether any transform that reads the document's structure is on (the nonce-only pass
    /// needs none of it).
    fn minifies(&self) -> bool {
        self.collapse_whitespace || self.remove_comments || self.unquote_attributes || self.short_start_tags || self.omit_optional_tags || self.shorten_char_refs || self.drop_ignorable_whitespace || self.remove_default_attributes
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

/// lol_html's namespace for HTML elements (others are SVG or MathML).
const HTML_NS: &str = "http://www.w3.org/1999/xhtml";
/// A boxed byte sink (lol_html's output, the brotli stage's output).
pub type BoxedSink = Box<dyn FnMut(&[u8])>;

/// A streaming minifier: push bytes in, rewritten bytes come out through the sink.
pub struct Minifier {
    rewriter: Option<HtmlRewriter<'static, BoxedSink>>,
    sink: Sink,
    flow: Rc<RefCell<Flow>>,
    /// Set once lol_html bailed out: input goes to the sink unmodified from then on.
    passthrough: bool,
}

impl Minifier {
    /// A minifier writing to `sink`. The handlers only wire lol_html to `flow::Flow`, which
    /// decides.
    pub fn new(options: MinifyOptions, sink: impl FnMut(&[u8]) + 'static) -> Self {
        let sink: Sink = Rc::new(RefCell::new(sink));
        let options = Rc::new(options);
        let flow = Rc::new(RefCell::new(Flow::default()));
        let style = tags::StartTagStyle { unquote: options.unquote_attributes, bare_empty: options.short_start_tags, shorten_refs: options.shorten_char_refs, utf8: options.utf8 };

        let mut element_handlers = Vec::new();
        if options.minifies() {
            let (f, opts) = (flow.clone(), options.clone());
            element_handlers.push(element!("*", move |el| {
                let name = el.tag_name();
                let foreign = el.namespace_uri() != HTML_NS;
                let tag = StartTag {
                    name: &name,
                    foreign,
                    preserves_by_attribute: el.has_attribute("xml:space") || el.get_attribute("style").is_some_and(|s| s.contains("white-space")),
                    can_have_end: el.can_have_content(),
                };
                let closing = f.borrow_mut().start_tag(&tag, opts.omit_optional_tags);
                if let (Some(closing), Some(handlers)) = (closing, el.end_tag_handlers()) {
                    let f = f.clone();
                    handlers.push(end_tag!(move |end| {
                        if f.borrow_mut().end_tag(&closing, &end.name()) {
                            end.remove();
                        }
                        Ok(())
                    }));
                }
                let (omit_head, in_foreign) = {
                    let flow = f.borrow();
                    (opts.omit_optional_tags && el.attributes().is_empty() && flow.head_start_may_go(&name), flow.in_foreign())
                };
                if omit_head {
                    el.start_tag().remove();
                    f.borrow_mut().hold_head_start();
                } else if !in_foreign && (!el.attributes().is_empty() || el.is_self_closing()) {
                    write_tag(el, &name, foreign, &opts, style);
                }
                Ok(())
            }));
        }
        if let Some(nonce) = options.csp_nonce.clone() {
            element_handlers.push(element!("script, style", move |el| {
                el.set_attribute("nonce", &nonce)?;
                Ok(())
            }));
        }
        if options.minify_json {
            let buf: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
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
        if options.minifies() {
            let (f, opts) = (flow.clone(), options.clone());
            document_handlers.push(doc_text!(move |chunk| {
                let mut flow = f.borrow_mut();
                if chunk.text_type() != TextType::Data {
                    flow.raw_text();
                } else if let Some(out) = flow.text(chunk.as_str(), chunk.last_in_text_node(), &opts) {
                    chunk.set_str(out);
                }
                Ok(())
            }));
        }
        if options.remove_comments {
            let (f, opts) = (flow.clone(), options.clone());
            document_handlers.push(doc_comments!(move |c| {
                if f.borrow_mut().comment(!opts.keeps_comment(&c.text())) {
                    c.remove();
                }
                Ok(())
            }));
        }
        // Every byte goes out through here, so a pending tag is written before whatever the
        // next token turned out to be, including tokens no handler sees (stray end tags).
        let (out, f) = (sink.clone(), flow.clone());
        let write: BoxedSink = Box::new(move |bytes: &[u8]| {
            if bytes.is_empty() {
                return;
            }
            let pending = f.try_borrow_mut().ok().and_then(|mut flow| flow.take_pending());
            let mut out = out.borrow_mut();
            if let Some(p) = pending {
                out(p.as_bytes());
            }
            out(bytes);
        });
        // Not strict: markup lol_html cannot place without the whole tree (`<select><title>`)
        // is read by tag name, as today's parser does, instead of failing the page mid-chunk,
        // which would lose the bytes of that chunk.
        let mut settings = Settings::new().with_strict(false).with_memory_settings(
            MemorySettings::new().with_max_allowed_memory_usage(options.max_memory).with_graceful_bail_out_on_memory_limit_exceeded(true),
        );
        for h in element_handlers {
            settings = settings.append_element_content_handler(h);
        }
        for h in document_handlers {
            settings = settings.append_document_content_handler(h);
        }
        // At a bail-out, what the minifier held back (a pending tag, blank text, a cut
        // reference) goes out where it belongs: before lol_html's raw flush of the rest.
        let f = flow.clone();
        settings = settings.append_bail_out_handler(bail_out!(move |_, bail_out| {
            let held = f.borrow_mut().release_all();
            bail_out.append(&held, ContentType::Html);
        }));
        Self { rewriter: Some(HtmlRewriter::new(settings, write)), sink, flow, passthrough: false }
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
                // Graceful bail-out flushed every byte received so far, unmodified, after what
                // the minifier held back (the bail-out handler). An error that is not a bail-out
                // leaves the held bytes here.
                self.rewriter = None;
                self.passthrough = true;
                self.write_out(|flow| flow.release_all());
            }
        }
    }

    /// Finishes the document, flushing what lol_html still holds. A pending end tag the end of
    /// the document implies is dropped.
    pub fn end(mut self) {
        if let Some(r) = self.rewriter.take() {
            let _ = r.end();
        }
        self.write_out(Flow::finish);
    }

    /// Writes what `take` gets from the flow, if anything.
    fn write_out(&mut self, take: impl FnOnce(&mut Flow) -> String) {
        let held = take(&mut self.flow.borrow_mut());
        if !held.is_empty() {
            (self.sink.borrow_mut())(held.as_bytes());
        }
    }

    /// Whether the minifier gave up and is passing input through.
    pub fn bailed_out(&self) -> bool {
        self.passthrough
    }
}

/// Rewrites one start tag in the short form when that is shorter: default attributes dropped
/// (when asked), references shortened, empty values bare and values unquoted per `style`.
fn write_tag(el: &mut lol_html::html_content::Element<'_, '_>, name: &str, foreign: bool, opts: &MinifyOptions, style: tags::StartTagStyle) {
    let self_closing = el.is_self_closing();
    let rel = (name == "link").then(|| el.get_attribute("rel")).flatten();
    let defaults = opts.remove_default_attributes && tags::DEFAULT_ATTRIBUTES.iter().any(|(t, _, _)| *t == name);
    let is_default = |a: &lol_html::html_content::Attribute<'_>, value: &str| defaults && tags::is_default_attribute(name, &a.name(), value, rel.as_deref());
    // Most tags have nothing to shorten: find out before copying anything.
    let worth = style.unquote
        || (style.bare_empty && self_closing && !foreign)
        || el.attributes().iter().any(|a| {
            let value = a.value();
            (style.bare_empty && value.is_empty()) || (style.shorten_refs && value.contains('&')) || is_default(a, &value)
        });
    if !worth {
        return;
    }
    let mut attributes: Vec<tags::RawAttribute> = Vec::with_capacity(el.attributes().len());
    for a in el.attributes() {
        let value = a.value();
        if is_default(a, &value) {
            continue;
        }
        // `name="v"`: the value starts two bytes after the name (`name=v`: one).
        let quoted = match (a.name_source_location(), a.value_source_location()) {
            (Some(n), Some(v)) => v.bytes().start >= n.bytes().end + 2,
            _ => false,
        };
        attributes.push((a.name_preserve_case(), value, quoted));
    }
    let tag = tags::write_start_tag(&el.start_tag().name_preserve_case(), &attributes, foreign && self_closing, style);
    if tag.len() < el.start_tag().source_location().bytes().len() {
        el.start_tag().replace(&tag, ContentType::Html);
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
        assert_eq!(m("<svg><script>a  =  '  x  '</script><style>a  {  }</style></svg>"), "<svg><script>a  =  '  x  '</script><style>a  {  }</style></svg>", "code in SVG is kept");
        assert_eq!(m("<math><math></p><script>a &amp; b  c</script>"), "<math><math></p><script>a &amp; b  c</script>", "a script the parser reads as HTML after </p> broke out");
        assert_eq!(m("<p>a   b\n\n  c</p>"), "<p>a b\nc", "the end tag is implied by the end of the document");
        assert_eq!(m("<pre>a   b\n\n c</pre><p>x  y</p><b>"), "<pre>a   b\n\n c</pre><p>x y</p><b>");
        assert_eq!(m("<textarea>  x   y </textarea>"), "<textarea>  x   y </textarea>");
        assert_eq!(m("<code>a   b</code> c   d"), "<code>a   b</code> c d");
        assert_eq!(m("<div style='white-space: pre'>a   b</div>"), "<div style='white-space: pre'>a   b</div>", "left as it is when not shorter");
        assert_eq!(m("<svg xml:space='preserve'><text>a   b</text></svg>"), "<svg xml:space='preserve'><text>a   b</text></svg>");
        assert_eq!(m("<script>var  a =  1;\n\n</script>"), "<script>var  a =  1;\n\n</script>");
        assert_eq!(m("<style>a  {  }</style>"), "<style>a  {  }</style>");
        assert_eq!(m("<title>a   b</title>"), "<title>a   b</title>");
        assert_eq!(m("<p>a&nbsp;&nbsp; b</p><b>"), "<p>a&nbsp;&nbsp; b</p><b>", "nbsp is not ASCII whitespace (and not UTF-8 here)");
        assert_eq!(m("<p>\u{a0}\u{a0}x</p><b>"), "<p>\u{a0}\u{a0}x</p><b>");
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
    fn optional_end_tags_go_where_the_next_token_implies_them() {
        assert_eq!(m("<ul><li>a</li><li>b</li></ul><b>"), "<ul><li>a<li>b</ul><b>");
        assert_eq!(m("<table><tr><td>1</td><td>2</td></tr></table><b>"), "<table><tr><td>1<td>2</table><b>");
        assert_eq!(m("<table>\n <tr>\n  <td>1</td>\n  <th>2</th>\n </tr>\n</table><b>"), "<table><tr><td>1<th>2</table><b>", "blank text between table parts goes");
        assert_eq!(m("<ul>\n<li>a</li>\n<li>b</li>\n</ul><b>"), "<ul>\n<li>a</li>\n<li>b</li>\n</ul><b>", "a list's whitespace may render (inline items)");
        assert_eq!(m("<dl><dt>a</dt><dd>b</dd><dt>c</dt></dl><b>"), "<dl><dt>a<dd>b<dt>c</dl><b>");
        assert_eq!(m("<select><option value=1>a</option><option>b</option></select><b>"), "<select><option value=1>a<option>b</select><b>");
        assert_eq!(m("<select>\n<option>a</option>\n</select><b>"), "<select>\n<option>a</option>\n</select><b>", "a customizable select renders its whitespace");
        assert_eq!(m("<div><p>a</p></div><p>b</p><div>c</div><b>"), "<div><p>a</div><p>b<div>c</div><b>");
        assert_eq!(m("<p>a</p><span>b</span>"), "<p>a</p><span>b</span>", "a span does not close a p");
        assert_eq!(m("<a href=x><p>a</p></a><b>"), "<a href=x><p>a</p></a><b>", "an a's end tag does not close a p");
        assert_eq!(m("<p>a<div>b</div></p><b>"), "<p>a<div>b</div></p><b>", "the div closed the p early: that </p> makes a new p");
        assert_eq!(m("<p>a</p><table><tr><td>x</td></tr></table><b>"), "<p>a</p><table><tr><td>x</table><b>", "a table nests in a p in quirks mode");
        assert_eq!(m("<ul><li>a<b>c</li></ul><b>"), "<ul><li>a<b>c</li></ul><b>", "an element closed without its end tag: kept");
        assert_eq!(m("<ul><li>a</li><!-- x --><li>b</li></ul><b>"), "<ul><li>a<li>b</ul><b>", "a removed comment is not in the way");
        assert_eq!(m("<ul><li>a</li><!--$--><li>b</li></ul><b>"), "<ul><li>a</li><!--$--><li>b</ul><b>", "a kept comment is");
        assert_eq!(m("<ul><li>a</li></span><li>b</li></ul><b>"), "<ul><li>a</li></span><li>b</ul><b>", "a stray end tag is written after the pending one");
        let page = "<!doctype html>\n<html lang=en>\n<head>\n<title>x</title>\n</head>\n<body>\n<p>x</p>\n</body>\n</html>\n";
        assert_eq!(m(page), "<!doctype html><html lang=en><title>x</title><body>\n<p>x</p>\n\n\n", "text after the body goes into it: kept");
        assert_eq!(m("<b>a</b>   <i>b</i>"), "<b>a</b> <i>b</i>", "text with no element around it is in the body");
        assert_eq!(m("<meta charset=utf-8>\n<title>t</title>\n<p>x</p> <b>y</b>"), "<meta charset=utf-8><title>t</title><p>x</p> <b>y</b>", "the head and body the parser adds");
        let off = String::from_utf8(minify(b"<ul><li>a</li></ul>", MinifyOptions::new().with_omit_optional_tags(false))).unwrap();
        assert_eq!(off, "<ul><li>a</li></ul>");
    }

    #[test]
    fn optional_tags_and_blank_text_keep_the_tree() {
        let pages = [
            "<!doctype html><html><head>\n<meta charset=utf-8>\n<title>t</title>\n</head>\n<body class=x>\n<ul>\n<li>a</li>\n<li>b<ul><li>c</li></ul></li>\n</ul>\n<p>x</p>\n<div><p>y</p></div>\n</body>\n</html>",
            "<!doctype html><table>\n<thead><tr><th>h</th></tr></thead>\n<tbody>\n<tr><td>1</td><td>2</td></tr>\n<tr><td>3</td></tr>\n</tbody>\n<tfoot><tr><td>f</td></tr></tfoot>\n</table>",
            "<p>quirks</p><table><tr><td>a</td></tr></table><p>b</p><form><p>c</p></form>",
            "<!doctype html><select><optgroup label=g><option>a</option><option>b</option></optgroup><optgroup label=h><option>c</option></optgroup></select>",
            "<!doctype html><p>a<svg><path d='M0 0'/><circle r=\"1\" /></svg>b</p><br/><img src=\"a.png\" alt=\"\"/>",
            "<!doctype html><dl><div><dt>a</dt><dd>b</dd></div></dl><ul><li>x</li></ul></span><p>y</p></b>",
        ];
        for page in pages {
            let out = m(page);
            assert_eq!(crate::test_support::html_tree_without_blank_text(&out), crate::test_support::html_tree_without_blank_text(page), "{page}\n→ {out}");
        }
    }

    #[test]
    fn attributes_and_references_written_short() {
        assert_eq!(m("<a href=\"/x\" class=\"a b\" data-x=\"\">&quot;it&#8217;s&quot; &amp; more</a>"), "<a href=\"/x\" class=\"a b\" data-x>\"it&#8217;s\" & more</a>");
        let unquoted = String::from_utf8(minify(b"<a href=\"/x\" class=\"a b\" title='x'>", MinifyOptions::new().with_unquote_attributes(true))).unwrap();
        assert_eq!(unquoted, "<a href=/x class=\"a b\" title=x>");
        let utf8 = String::from_utf8(minify("<p title=\"caf&eacute;\">it&#8217;s&nbsp;x</p><b>".as_bytes(), MinifyOptions::new().with_utf8(true))).unwrap();
        assert_eq!(utf8, "<p title=\"café\">it’s\u{a0}x</p><b>");
        assert_eq!(m("<br/><img src=a.png />"), "<br><img src=a.png>", "the slash means nothing on HTML elements");
        assert_eq!(m("<svg><path d=M0 /><g/></svg>"), "<svg><path d=M0 /><g/></svg>", "and closes foreign ones");
        let quoted = String::from_utf8(minify(b"<a href=\"/x\">&quot;</a>", MinifyOptions::new().with_unquote_attributes(false).with_shorten_char_refs(false))).unwrap();
        assert_eq!(quoted, "<a href=\"/x\">&quot;</a>");
        let refs_across_chunks = {
            let out = Rc::new(RefCell::new(Vec::new()));
            let o = out.clone();
            let mut mf = Minifier::new(MinifyOptions::new(), move |b: &[u8]| o.borrow_mut().extend_from_slice(b));
            for piece in ["<p>a &am", "p; b &q", "uot;</p><b>"] {
                mf.write(piece.as_bytes());
            }
            mf.end();
            String::from_utf8(out.take()).unwrap()
        };
        assert_eq!(refs_across_chunks, "<p>a & b \"</p><b>");
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
    fn ambiguous_markup_loses_nothing() {
        for page in ["<select><title>\n</title></select>x", "<select><xmp><script>\"use strict\";</script></select><p>a   b</p>"] {
            let out = String::from_utf8(minify(page.as_bytes(), MinifyOptions::new())).unwrap();
            assert!(out.len() > page.len() / 2 && out.ends_with(if page.ends_with('x') { "x" } else { "</p>" }), "{page} → {out}");
        }
    }

    #[test]
    fn bails_out_without_losing_bytes() {
        let mut page = String::from("<p>a   b</p><!--");
        page.push_str(&"c".repeat(1100));
        page.push_str("--><p>x   y</p>");
        let out = minify(page.as_bytes(), MinifyOptions::new().with_max_memory(1024));
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("--><p>x   y</p>"), "the rest passes through unmodified: {}", &out[out.len() - 20..]);
        assert!(out.contains(&"c".repeat(1100)), "nothing lost");
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
