//! Proof that minification keeps the parsed tree: original and minified pages are parsed by
//! html5ever and compared, modulo the whitespace rules (ASCII whitespace runs in ordinary text
//! are equivalent to one space), removed comments and compacted JSON scripts. Run over the
//! fixture pages, whole and in random chunk sizes (seed printed; `CHUNK_SEED` replays one).

use crate::tree::tree;
use edgelayer::html::{minify, Minifier, MinifyOptions};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

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
fn no_page_leaves_larger_than_it_came_with_its_nonces() {
    // Minified at the fill, then the per-response nonce pass, as a cache hit is served.
    for (name, page) in pages() {
        let stored = minify(&page, MinifyOptions::new());
        let served = minify(&stored, MinifyOptions::nonce_only(edgelayer::headers::nonce_text(&[9; 16])));
        assert!(served.len() <= page.len(), "{name}: {} -> {} bytes", page.len(), served.len());
    }
}

#[test]
fn pages_nested_deeper_than_any_real_one_keep_their_tree() {
    // Past the tracked depth the minifier stops following the structure (so a hostile page of
    // 100,000 nested elements costs linear time, not quadratic; 150 repeats (300 to 450 levels) show it here, a depth
    // html5ever can still check): what it still does keeps the
    // tree, and the whitespace and comments it can judge without the structure still go.
    for unit in ["<div>\n  <p>a   b", "<ul><li>x</li>\n<li>", "<table><tr><td>1</td>\n<td>", "<span><!-- c --><b>"] {
        let page = format!("<!doctype html>{}", unit.repeat(150));
        let min = minify(page.as_bytes(), MinifyOptions::new());
        assert_eq!(tree(page.as_bytes()), tree(&min), "{unit}");
        assert!(min.len() < page.len() || !unit.contains("  "), "{unit}: {} -> {}", page.len(), min.len());
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

#[test]
fn default_attributes_go_and_the_tree_means_the_same() {
    let page = br#"<!doctype html><html><head><script type="text/javascript">a()</script><style type="text/css">p{}</style>
<link rel="stylesheet" type="text/css" href="/a.css"><link rel="preload" type="text/css" href="/b.css"></head>
<body><form method="GET" action="/s"><input type="text" name=q></form><script type="module">b()</script></body></html>"#;
    let out = minify(page, MinifyOptions::new());
    assert_eq!(tree(page), tree(&out), "trees differ");
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("text/javascript") && !text.contains("method=") && text.matches("text/css").count() == 1, "{text}");
    assert!(text.contains(r#"<input type="text" name=q>"#) && text.contains(r#"type="module""#), "only the listed defaults: {text}");
}

#[test]
fn a_50_mb_page_streams_with_bounded_lag() {
    // Output must keep pace with input: the bytes held inside the minifier never exceed a small
    // bound, whatever the page size (no buffering of the page).
    let unit = b"<div class=\"row\">\n    <p>Some   text   here</p>\n    <!-- note -->\n</div>\n";
    let total = 50 * 1024 * 1024;
    let out = Rc::new(RefCell::new(0usize));
    let o = out.clone();
    let mut m = Minifier::new(MinifyOptions::new(), move |b: &[u8]| *o.borrow_mut() += b.len());
    let chunk: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
    let (mut fed, mut max_lag, mut min_ratio) = (0usize, 0usize, f64::MAX);
    while fed < total {
        m.write(&chunk);
        fed += chunk.len();
        let emitted = *out.borrow();
        // Output is smaller than input; compare against what input minifies to, roughly.
        max_lag = max_lag.max(fed.saturating_sub(emitted * unit.len() / 44));
        min_ratio = min_ratio.min(emitted as f64 / fed as f64);
    }
    m.end();
    assert!(min_ratio > 0.4, "output stalled: {min_ratio}");
    assert!(max_lag < 1024 * 1024, "held back {max_lag} bytes");
    assert!(*out.borrow() < total);
}

/// Random markup, well-formed or not: elements from the lists, tables and forms the optional
/// tag rules touch, with or without their end tags, stray end tags, blank and
/// reference-carrying text, comments, and attributes quoted every way.
fn markup() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let text = prop_oneof![
        Just("x".to_owned()),
        Just(" ".to_owned()),
        Just("\n  ".to_owned()),
        Just("a &amp; b".to_owned()),
        Just("&quot;q&quot;&#8217;".to_owned()),
        Just("1 &lt; 2".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just("<!--$-->".to_owned()),
        Just("</span>".to_owned()),
        Just("</p>".to_owned()),
        Just("<br/>".to_owned()),
        Just("<img src=\"a.png\" alt=\"\">".to_owned()),
    ];
    let tags = [
        "ul", "ol", "li", "p", "div", "span", "b", "a", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "select", "option", "optgroup", "dl", "dt", "dd", "section", "svg", "path", "pre", "form", "head", "body", "html", "caption", "h2", "button", "textarea", "i", "title", "colgroup", "col", "datalist", "math", "script", "style", "code",
    ];
    let attrs = prop_oneof![Just(""), Just(" class=\"a b\""), Just(" id='x'"), Just(" href=\"/q?a=1&amp;b=2\""), Just(" value=\"\""), Just(" title=\"it&#39;s\"")];
    text.prop_recursive(4, 48, 6, move |inner| {
        (proptest::sample::select(tags.to_vec()), attrs.clone(), proptest::collection::vec(inner, 0..5), any::<bool>(), any::<bool>()).prop_map(|(tag, attr, kids, close, self_close)| {
            let open = if self_close && tag == "path" { format!("<{tag}{attr}/>") } else { format!("<{tag}{attr}>") };
            format!("{open}{}{}", kids.concat(), if close { format!("</{tag}>") } else { String::new() })
        })
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// Whatever the markup and wherever the chunks fall, the minified page parses to the same
    /// tree (html5ever, normalised by the minifier's rules).
    #[test]
    fn random_markup_keeps_its_tree(body in markup(), doctype in proptest::bool::ANY, seed in 0u64..1000) {
        let page = format!("{}{body}\n", if doctype { "<!doctype html>\n" } else { "" });
        let min = chunked(page.as_bytes(), seed);
        proptest::prop_assert_eq!(tree(page.as_bytes()), tree(&min), "{}\n→ {}", page, String::from_utf8_lossy(&min));
    }
}
