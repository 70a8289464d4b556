//! Builders the unit tests share (compiled for tests only).

use crate::rules::{RawRule, Rule};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers from `(name, value)` pairs; repeated names become repeated fields.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(HeaderName::from_bytes(k.as_bytes()).expect("header name"), HeaderValue::from_str(v).expect("header value"));
    }
    m
}

/// A validated rule from its JSON fields (`name` and `path = "/*"` are filled in).
pub fn rule(json: serde_json::Value) -> Rule {
    let mut j = json;
    j["name"] = "t".into();
    j["path"] = "/*".into();
    serde_json::from_value::<RawRule>(j).expect("raw rule").validate(0).expect("valid rule")
}

/// The parsed document (html5ever) written back out: two inputs give the same string exactly
/// when they parse to the same tree.
pub fn html_tree(html: &str) -> String {
    use html5ever::tendril::TendrilSink;
    let dom = html5ever::parse_document(markup5ever_rcdom::RcDom::default(), Default::default()).one(html);
    let mut out = Vec::new();
    let doc: markup5ever_rcdom::SerializableHandle = dom.document.clone().into();
    html5ever::serialize(&mut out, &doc, Default::default()).expect("serialize");
    String::from_utf8_lossy(&out).into_owned()
}

/// The characters raw text `s` means in a page's body, as a browser parses them.
pub fn html_text(s: &str) -> String {
    html_tree(&format!("<!doctype html><body>{s}"))
}

/// The value a raw attribute value means (written between double quotes), as parsed.
pub fn html_attribute(s: &str) -> String {
    html_tree(&format!("<!doctype html><body><p title=\"{s}\">"))
}

/// [`html_tree`] with whitespace-only text left out (outside `pre` and `textarea`): the tree
/// as far as rendering goes where the minifier drops blank text.
pub fn html_tree_without_blank_text(html: &str) -> String {
    use html5ever::tendril::TendrilSink;
    use markup5ever_rcdom::{Handle, NodeData};
    fn prune(h: &Handle) {
        let keep_blank = matches!(&h.data, NodeData::Element { name, .. } if matches!(&*name.local, "pre" | "textarea"));
        h.children.borrow_mut().retain(|c| keep_blank || !matches!(&c.data, NodeData::Text { contents } if contents.borrow().bytes().all(|b| b.is_ascii_whitespace())));
        for c in h.children.borrow().iter() {
            prune(c);
        }
    }
    let dom = html5ever::parse_document(markup5ever_rcdom::RcDom::default(), Default::default()).one(html);
    prune(&dom.document);
    let mut out = Vec::new();
    let doc: markup5ever_rcdom::SerializableHandle = dom.document.clone().into();
    html5ever::serialize(&mut out, &doc, Default::default()).expect("serialize");
    String::from_utf8_lossy(&out).into_owned()
}
