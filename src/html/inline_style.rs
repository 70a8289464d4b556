//! Whether a page needs inline styles from its CSP: a `style="…"` attribute, a stylesheet
//! linked by an absolute URL (maybe another origin, which `style-src 'self'` would refuse) or an
//! `@import` inside a `<style>`. A page without any of them keeps working under a `style-src`
//! of `'self'` plus the nonce every `<style>` gets, which is what lets pages drop
//! `'unsafe-inline'` and `https:` from `style-src` ([`crate::headers::STRICT_PAGE_CSP`]).
//!
//! # Beware
//! Scripts that set `element.setAttribute("style", …)` are invisible here; CSSOM changes
//! (`element.style.color = …`) are allowed by CSP and fine. A rule with `inline_styles = true`
//! keeps the relaxed policy for origins whose scripts do the former.

use lol_html::{element, text, HtmlRewriter, Settings};
use std::cell::Cell;

/// True when the page needs the relaxed `style-src` (see the module docs). A page lol_html
/// cannot read counts as needing it.
pub fn needs_inline_styles(page: &[u8]) -> bool {
    needs_inline_styles_in_chunks([page])
}

/// [`needs_inline_styles`] for a page that arrives in pieces (an `@import` may be cut between
/// two of them).
pub fn needs_inline_styles_in_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let needs = Cell::new(false);
    let import_tail = Cell::new(String::new());
    let settings = Settings::new()
        .append_element_content_handler(element!("*[style]", |_| {
                needs.set(true);
                Ok(())
            }))
        .append_element_content_handler(element!("link[rel][href]", |el| {
                let stylesheet = el.get_attribute("rel").is_some_and(|r| r.split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case("stylesheet")));
                let href = el.get_attribute("href").unwrap_or_default();
                let href = href.trim();
                // Absolute (`https://…`, `//…`): maybe another origin.
                let absolute = href.starts_with("//") || href.split_once(':').is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)));
                if stylesheet && absolute {
                    needs.set(true);
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
    for chunk in chunks {
        if rewriter.write(chunk).is_err() {
            return true;
        }
    }
    if rewriter.end().is_err() {
        return true;
    }
    needs.get()
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
                assert_eq!(needs_inline_styles_in_chunks([a, b]), whole, "{:?} cut at {cut}", String::from_utf8_lossy(page));
            }
        }
        assert!(needs_inline_styles(pages[0]) && !needs_inline_styles(pages[1]) && needs_inline_styles(pages[2]));
    }
}
