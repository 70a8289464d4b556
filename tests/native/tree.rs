//! Tree comparison for minified HTML, shared by the tests and the minify benchmark: parse with
//! html5ever and normalise by the minifier's rules (ASCII whitespace runs in ordinary text are
//! one space; removed comments vanish and their neighbouring texts merge; JSON scripts compare
//! as JSON values; whitespace-only text is absent where it is never rendered: directly in the
//! document, `<html>`, `<head>`, table parts and select lists).

use edgelayer::html::{tags, MinifyOptions};
use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};

/// A comparable node: element (name, attributes, children), text, or kept comment.
#[derive(Debug, PartialEq)]
pub enum N {
    El(String, Vec<(String, String)>, Vec<N>),
    Text(String),
    Comment(String),
    Json(serde_json::Value),
}

const PRESERVE: [&str; 10] = ["pre", "textarea", "code", "listing", "xmp", "plaintext", "script", "style", "title", "noscript"];

fn collapse(s: &str) -> String {
    let mut out = String::new();
    let mut ws = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c') {
            if !ws {
                out.push(' ');
            }
            ws = true;
        } else {
            out.push(c);
            ws = false;
        }
    }
    out
}

/// How strictly trees are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// The minifier's own rules: blank text goes only where it is never rendered.
    Ours,
    /// The definition: whitespace-only runs anywhere (blank text, and the whitespace
    /// at either end of a text), comments, and attributes whose value is the spec's default
    /// (also `type=text` on inputs and `type=submit` on buttons), attributes in any order.
    Loose,
}

fn normalize(h: &Handle, preserve: bool, json: bool, opts: &MinifyOptions, path: &mut Vec<String>, rules: Rules) -> Vec<N> {
    let mut out: Vec<N> = Vec::new();
    for child in h.children.borrow().iter() {
        match &child.data {
            NodeData::Element { name, attrs, .. } => {
                let tag = name.local.to_string();
                let attrs: Vec<(String, String)> = attrs.borrow().iter().map(|a| (a.name.local.to_string(), a.value.to_string())).collect();
                let html_ns = name.ns == html5ever::ns!(html);
                // `title` is raw text only in HTML; SVG's `script` and `style` hold code too.
                let keeps = preserve
                    || (PRESERVE.contains(&tag.as_str()) && (html_ns || tag != "title"))
                    || attrs.iter().any(|(k, v)| k == "xml:space" || k == "space" || (k == "style" && v.contains("white-space")));
                let is_json = tag == "script" && attrs.iter().any(|(k, v)| k == "type" && (v == "application/ld+json" || v == "application/json"));
                // Attributes whose value is the spec's default mean the same as none.
                let stylesheet = attrs.iter().any(|(k, v)| k == "rel" && v.split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case("stylesheet")));
                let default = |k: &str, v: &str| {
                    let v = v.trim().to_ascii_lowercase();
                    matches!((tag.as_str(), k, v.as_str()), ("script", "type", "text/javascript") | ("style", "type", "text/css") | ("form", "method", "get"))
                        || (tag == "link" && stylesheet && k == "type" && v == "text/css")
                        || (rules == Rules::Loose && matches!((tag.as_str(), k, v.as_str()), ("input", "type", "text") | ("button", "type", "submit")))
                };
                let mut attrs: Vec<(String, String)> = attrs.into_iter().filter(|(k, v)| !default(k, v)).collect();
                if rules == Rules::Loose {
                    attrs.sort(); // the order of attributes means nothing to a page
                }
                path.push(tag.clone());
                let kids = normalize(child, keeps, is_json, opts, path, rules);
                path.pop();
                out.push(N::El(tag, attrs, kids));
            }
            NodeData::Text { contents } => {
                let t = contents.borrow().to_string();
                if let Some(N::Text(prev)) = out.last_mut() {
                    prev.push_str(&t); // comments removed between texts merge them
                } else {
                    out.push(N::Text(t));
                }
            }
            NodeData::Comment { contents } if opts.keeps_comment(contents) => out.push(N::Comment(contents.to_string())),
            _ => {}
        }
    }
    let blank = |n: &N| matches!(n, N::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()));
    let names: Vec<&str> = path.iter().map(String::as_str).collect();
    if !preserve && (rules == Rules::Loose || tags::whitespace_ignorable_in(&names, false)) {
        out.retain(|n| !blank(n));
    }
    for n in &mut out {
        if let N::Text(t) = n {
            if json {
                if let Ok(v) = serde_json::from_str(t) {
                    *n = N::Json(v);
                    continue;
                }
            }
            if !preserve {
                *t = collapse(t);
                if rules == Rules::Loose {
                    *t = t.trim_matches(' ').to_owned();
                }
            }
        }
    }
    out
}

/// The normalised tree of a document, by the minifier's rules.
pub fn tree(html: &[u8]) -> Vec<N> {
    tree_by(html, Rules::Ours)
}

/// The normalised tree of a document, by the given rules.
pub fn tree_by(html: &[u8], rules: Rules) -> Vec<N> {
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).from_utf8().read_from(&mut &html[..]).expect("parse");
    normalize(&dom.document, false, false, &MinifyOptions::new(), &mut Vec::new(), rules)
}

