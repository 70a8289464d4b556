//! Proof that minification keeps the parsed tree: original and minified pages are parsed by
//! html5ever and compared, modulo the whitespace rules (ASCII whitespace runs in ordinary text
//! are equivalent to one space), removed comments and compacted JSON scripts. Run over the
//! fixture pages, whole and in random chunk sizes (seed printed; `CHUNK_SEED` replays one).

use edgelayer::html::{minify, Minifier, MinifyOptions};
use html5ever::tendril::TendrilSink;
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// A comparable node: element (name, attributes, children), text, or kept comment.
#[derive(Debug, PartialEq)]
enum N {
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

fn normalize(h: &Handle, preserve: bool, json: bool, opts: &MinifyOptions) -> Vec<N> {
    let mut out: Vec<N> = Vec::new();
    for child in h.children.borrow().iter() {
        match &child.data {
            NodeData::Element { name, attrs, .. } => {
                let tag = name.local.to_string();
                let attrs: Vec<(String, String)> = attrs.borrow().iter().map(|a| (a.name.local.to_string(), a.value.to_string())).collect();
                let keeps = preserve
                    || PRESERVE.contains(&tag.as_str())
                    || attrs.iter().any(|(k, v)| k == "xml:space" || k == "space" || (k == "style" && v.contains("white-space")));
                let is_json = tag == "script" && attrs.iter().any(|(k, v)| k == "type" && (v == "application/ld+json" || v == "application/json"));
                out.push(N::El(tag, attrs, normalize(child, keeps, is_json, opts)));
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
            }
        }
    }
    out
}

fn tree(html: &[u8]) -> Vec<N> {
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).from_utf8().read_from(&mut &html[..]).expect("parse");
    normalize(&dom.document, false, false, &MinifyOptions::new())
}

fn pages() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut out = Vec::new();
    for dir in ["site", "fixtures/html"] {
        for e in std::fs::read_dir(root.join(dir)).expect("fixtures") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "html") {
                out.push((p.display().to_string(), std::fs::read(&p).expect("read")));
            }
        }
    }
    assert!(out.len() >= 6, "fixture pages missing");
    out
}

fn chunked(page: &[u8], seed: u64) -> Vec<u8> {
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = out.clone();
    let mut m = Minifier::new(MinifyOptions::new(), move |b: &[u8]| o.borrow_mut().extend_from_slice(b));
    let max = std::env::var("CHUNK_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(97usize);
    let mut state = seed;
    let mut i = 0;
    while i < page.len() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let end = (i + 1 + (state >> 33) as usize % max).min(page.len());
        m.write(&page[i..end]);
        i = end;
    }
    m.end();
    let v = out.borrow().clone();
    v
}

#[test]
fn minified_pages_parse_to_the_same_tree_and_are_smaller() {
    for (name, page) in pages() {
        let min = minify(&page, MinifyOptions::new());
        assert_eq!(tree(&page), tree(&min), "{name}: trees differ");
        assert!(min.len() < page.len(), "{name}: {} -> {} bytes", page.len(), min.len());
    }
}

#[test]
fn random_chunking_gives_the_same_tree_and_bytes() {
    let base_seed: u64 = std::env::var("CHUNK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    for (name, page) in pages() {
        let whole = minify(&page, MinifyOptions::new());
        for k in 0..30u64 {
            let seed = base_seed.wrapping_add(k);
            let out = chunked(&page, seed);
            assert!(out == whole, "{name}: chunked output differs (replay with CHUNK_SEED={seed})");
        }
        assert_eq!(tree(&page), tree(&whole), "{name}");
    }
    println!("random chunking base seed: {base_seed}");
}

#[test]
fn specific_markers_and_preserved_blocks_survive() {
    let page = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fixtures/html/frameworks.html")).unwrap();
    let out = String::from_utf8(minify(&page, MinifyOptions::new())).unwrap();
    for kept in ["<!--$-->", "<!--/$-->", "<!--$?-->", "<!--[-->", "<!--]-->", "<!---->", "<!-- ko foreach: items -->", "<!--astro:end-->", "<!--#include", "<!--! Licence", "<!--[if lt IE 9]>"] {
        assert!(out.contains(kept), "{kept} was removed");
    }
    assert!(!out.contains("build: 2026") && !out.contains("React 18 streaming"), "plain comments removed");
    assert!(out.contains("<pre>\n  keep   this\n      exactly\n  </pre>"));
    assert!(out.contains("data-x=\"  spaced   value \""));
    assert!(out.contains(r#"{"@context":"https://schema.org","@type":"Organization","name":"Acme \u003c/script> Co","url":"https://example.com"}"#), "{out}");
    assert!(out.contains("{ this is not json </script>"));
}
