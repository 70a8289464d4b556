//! What the edge learns from a page's HTML when it stores it, in one lol_html pass:
//!
//! - whether it needs inline styles from its CSP: a `style="…"` attribute, a stylesheet linked
//!   by an absolute URL (maybe another origin, which `style-src 'self'` would refuse) or an
//!   `@import` inside a `<style>`. A page without any of them keeps working under a `style-src`
//!   of `'self'` plus the nonce every `<style>` gets, which is what lets pages drop
//!   `'unsafe-inline'` and `https:` from `style-src` ([`crate::headers::STRICT_PAGE_CSP`]);
//! - how long a nonce its origin put on its scripts and styles is ([`PageFacts::nonce_len`]);
//! - what it will fetch first from its own origin, for Early Hints ([`Preload`]): stylesheets,
//!   scripts that are not `async` (blocking or deferred, the page waits for both before
//!   `DOMContentLoaded`), module scripts, and fonts it preloads itself. Only relative URLs: an
//!   absolute one may be another origin, which a preload from here would not help.
//!
//! # Beware
//! Scripts that set `element.setAttribute("style", …)` are invisible here; CSSOM changes
//! (`element.style.color = …`) are allowed by CSP and fine. A rule with `inline_styles = true`
//! keeps the relaxed policy for origins whose scripts do the former.

use lol_html::{element, text, HtmlRewriter, Settings};
use std::cell::{Cell, RefCell};

/// One resource a page fetches first: a `Link` header value for Early Hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    /// The URL as the page wrote it (relative).
    pub href: String,
    /// `style`, `script`, `font`, or `modulepreload` for a module script.
    pub kind: &'static str,
}

impl Preload {
    /// The `Link` field value: `</a.css>; rel=preload; as=style` (fonts are fetched in CORS
    /// mode, so their preload says `crossorigin`).
    pub fn link_value(&self) -> String {
        let href = self.href.replace(['<', '>', ' '], "");
        match self.kind {
            "modulepreload" => format!("<{href}>; rel=modulepreload"),
            "font" => format!("<{href}>; rel=preload; as=font; crossorigin"),
            kind => format!("<{href}>; rel=preload; as={kind}"),
        }
    }
}

/// What [`scan`] learnt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageFacts {
    /// The page needs the relaxed `style-src`.
    pub needs_inline_styles: bool,
    /// What it fetches first, in document order, without repeats.
    pub preloads: Vec<Preload>,
    /// The length of the nonce the page's own `<script>` or `<style>` carries (its origin
    /// made one): the edge's nonces for it are as long, so the page does not grow.
    pub nonce_len: Option<usize>,
}

/// A relative URL (`/a.css`, `a.css`), not `//host/…` or `scheme:…`.
fn is_relative(href: &str) -> bool {
    !href.starts_with("//") && !href.split_once(':').is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)))
}

/// True when the page needs the relaxed `style-src` (see the module docs). A page lol_html
/// cannot read counts as needing it.
pub fn needs_inline_styles(page: &[u8]) -> bool {
    scan([page]).needs_inline_styles
}

/// Scans a page that arrives in pieces (an `@import` may be cut between two of them). A page
/// lol_html cannot read needs inline styles and preloads nothing.
pub fn scan<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> PageFacts {
    let preloads: RefCell<Vec<Preload>> = RefCell::new(Vec::new());
    let add = |href: Option<String>, kind: &'static str| {
        let Some(href) = href.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty() && is_relative(h)) else { return };
        let mut list = preloads.borrow_mut();
        if !list.iter().any(|p| p.href == href) {
            list.push(Preload { href, kind });
        }
    };
    let needs = Cell::new(false);
    let nonce_len: Cell<Option<usize>> = Cell::new(None);
    let import_tail = Cell::new(String::new());
    let settings = Settings::new()
        .append_element_content_handler(element!("*[style]", |_| {
                needs.set(true);
                Ok(())
            }))
        .append_element_content_handler(element!("link[rel][href]", |el| {
            let rel = el.get_attribute("rel").unwrap_or_default().to_ascii_lowercase();
            let has = |token: &str| rel.split_ascii_whitespace().any(|t| t == token);
            let href = el.get_attribute("href");
            // Absolute (`https://…`, `//…`): maybe another origin.
            if has("stylesheet") && !href.as_deref().is_some_and(|h| is_relative(h.trim())) {
                needs.set(true);
            }
            if has("stylesheet") {
                add(href, "style");
            } else if has("preload") && el.get_attribute("as").is_some_and(|a| a.eq_ignore_ascii_case("font")) {
                add(href, "font");
            }
            Ok(())
        }))
        .append_element_content_handler(element!("script[nonce], style[nonce]", |el| {
            if nonce_len.get().is_none() {
                nonce_len.set(el.get_attribute("nonce").map(|n| n.trim().len()).filter(|n| *n > 0));
            }
            Ok(())
        }))
        .append_element_content_handler(element!("script[src]", |el| {
            if el.get_attribute("async").is_none() {
                let module = el.get_attribute("type").is_some_and(|t| t.trim().eq_ignore_ascii_case("module"));
                add(el.get_attribute("src"), if module { "modulepreload" } else { "script" });
            }
            Ok(())
        }))
        .append_element_content_handler(text!("style", |t| {
                // `@import` may be cut between chunks: keep the chunk's last few bytes.
                let mut seen = import_tail.take();
                seen.push_str(t.as_str());
                if seen.to_ascii_lowercase().contains("@import") {
                    needs.set(true);
                }
                let keep = seen.char_indices().rev().nth(6).map_or(0, |(i, _)| i);
                import_tail.set(if t.last_in_text_node() { String::new() } else { seen[keep..].to_owned() });
                Ok(())
            }));
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let unreadable = PageFacts { needs_inline_styles: true, preloads: Vec::new(), nonce_len: None };
    for chunk in chunks {
        if rewriter.write(chunk).is_err() {
            return unreadable;
        }
    }
    if rewriter.end().is_err() {
        return unreadable;
    }
    PageFacts { needs_inline_styles: needs.get(), preloads: preloads.take(), nonce_len: nonce_len.get() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_attributes_foreign_sheets_and_imports_need_inline_styles() {
        assert!(!needs_inline_styles(b"<html><head><style>p{color:red}</style><link rel=stylesheet href=/static/a.css></head><body><p class=x>hi</p></body></html>"));
        assert!(needs_inline_styles(b"<p style=\"color:red\">hi</p>"));
        assert!(needs_inline_styles(b"<svg><rect style='fill:red'/></svg>"));
        assert!(needs_inline_styles(b"<link rel=\"preload stylesheet\" href=\"https://fonts.example/css\">"));
        assert!(needs_inline_styles(b"<link rel=stylesheet href=//cdn.example/a.css>"));
        assert!(!needs_inline_styles(b"<link rel=icon href=https://cdn.example/i.png><link rel=stylesheet href=a.css>"), "not a stylesheet; a relative one");
        assert!(needs_inline_styles(b"<style>@IMPORT url(x.css);</style>"));
        assert!(!needs_inline_styles(b"<script>var s = '<p style=x>';</script><textarea><b style=x></textarea>"), "text, not elements");
    }

    #[test]
    fn preloads_are_what_the_page_fetches_first_from_its_origin() {
        let page = br#"<head><link rel=stylesheet href="/static/a.css"><link rel=stylesheet href="https://cdn.example/b.css">
            <link rel="preload" as="font" href="/f.woff2" crossorigin><link rel=icon href=/i.png>
            <script src="/static/a.js" defer></script><script src=/x.js async></script><script type=module src=m.js></script>
            <script src="/static/a.js"></script><script>inline()</script></head>"#;
        let facts = scan([&page[..]]);
        let links: Vec<String> = facts.preloads.iter().map(Preload::link_value).collect();
        assert_eq!(links, ["</static/a.css>; rel=preload; as=style", "</f.woff2>; rel=preload; as=font; crossorigin", "</static/a.js>; rel=preload; as=script", "<m.js>; rel=modulepreload"]);
        assert!(facts.needs_inline_styles, "the CDN stylesheet");
        assert_eq!(facts.nonce_len, None);
        assert_eq!(scan([&b"<style>a{}</style><script nonce=\"abcdefghijklmnopqrstuvwx\">x()</script><style nonce=ab>"[..]]).nonce_len, Some(24), "the first one");
        assert_eq!(Preload { href: "/a b>.css".into(), kind: "style" }.link_value(), "</ab.css>; rel=preload; as=style", "nothing can break out of <>");
    }

    #[test]
    fn every_cut_gives_the_same_answer() {
        let pages: [&[u8]; 3] = [
            b"<style>a{} @import 'x.css'; b{}</style>",
            b"<head><style>a{color:red}</style></head><body><p>@import in text is fine</p></body>",
            b"<div><span style='x'>a</span></div>",
        ];
        for page in pages {
            let whole = needs_inline_styles(page);
            for cut in 1..page.len() {
                let (a, b) = page.split_at(cut);
                assert_eq!(scan([a, b]).needs_inline_styles, whole, "{:?} cut at {cut}", String::from_utf8_lossy(page));
            }
        }
        assert!(needs_inline_styles(pages[0]) && !needs_inline_styles(pages[1]) && needs_inline_styles(pages[2]));
    }
}
