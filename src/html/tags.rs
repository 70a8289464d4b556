//! Tag-level rules of the minifier, as pure functions: how short a start tag can be written
//! (bare empty attributes, no `/` on HTML elements, unquoted values), which end tags the HTML parser implies
//! (WHATWG HTML §13.1.2.4 "Optional tags", checked against the tree construction rules of
//! §13.2.6), and where whitespace-only text is never rendered.
//!
//! ### Beware
//! The optional-tag rules are stricter than the spec's authoring rules: they hold for any input
//! the minifier sees, not only conforming documents. An end tag is omitted only when the very
//! next token (after dropped comments and ignorable whitespace) closes the element in the
//! parser the same way, and only for elements whose content the minifier saw close cleanly
//! (the caller tracks that).

use super::refs;

/// Elements whose end tag may be implied by what follows them.
pub const OPTIONAL_END: &[&str] = &["li", "dt", "dd", "p", "option", "optgroup", "td", "th", "tr", "thead", "tbody", "tfoot", "head", "body", "html"];

/// Start tags that close an open `p` (tree construction "in body": "if the stack of open
/// elements has a p element in button scope, then close a p element"). A `p` that had one of
/// these inside it was closed early, so its own end tag is not implied.
const CLOSES_P: &[&str] = &[
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav", "ol", "p",
    "search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "listing", "form", "li", "dd", "dt", "plaintext", "table", "hr", "xmp",
];

/// Whether a start tag named `name` closes an open `p`.
pub fn closes_p(name: &str) -> bool {
    CLOSES_P.contains(&name)
}

/// Whether a start tag named `name` can close elements that are still open (a quick test
/// before [`closes_p`], [`end_implied_by_start`] and [`closes_container`] look at each).
pub fn may_close_open_elements(name: &str) -> bool {
    closes_p(name) || matches!(name, "li" | "dt" | "dd" | "option" | "optgroup" | "td" | "th" | "tr" | "tbody" | "tfoot" | "select" | "input" | "keygen" | "textarea" | "table")
}

/// Whether a start tag named `next`, met while `top` is the innermost open element, makes
/// the parser close an open `container` that the minifier would otherwise take for still open
/// (so blank text later in the container is not judged by its name): a `<select>` closes on
/// another select or a form control; a table on a table started directly inside it.
pub fn closes_container(container: &str, top: &str, next: &str) -> bool {
    match container {
        "select" => matches!(next, "select" | "input" | "keygen" | "textarea"),
        "table" => next == "table" && matches!(top, "table" | "tbody" | "thead" | "tfoot" | "tr"),
        _ => false,
    }
}

/// Whether the parser makes an element for the start tag `name` inside the open elements
/// `below` (outermost first). It does not for a `<select>` inside a select (that closes it), a
/// `<form>` inside a form, table parts outside a table, or `<html>`, `<head>` and `<body>`
/// anywhere but their own place or once the body began (`seen_element`: an element was
/// opened before; `body_seen`: a body); such an element's end tag implies nothing.
pub fn opened_by_parser<S: AsRef<str>>(name: &str, below: &[S], seen_element: bool, body_seen: bool) -> bool {
    let inside = |n: &str| below.iter().any(|e| e.as_ref() == n);
    match name {
        "html" => below.is_empty() && !seen_element,
        "head" | "body" => in_structural_place(name, below) && !body_seen,
        "select" => !inside("select"),
        "form" => !inside("form"),
        "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "caption" | "colgroup" | "col" => inside("table"),
        _ => true,
    }
}

/// Whether a start tag named `next` (or text: `#text`) directly inside the table part `top` is
/// fostered out of the table: the parser then inserts it before the table, and may reopen
/// formatting elements around it, so blank text after it may land outside the table.
pub fn fostered(top: &str, next: &str) -> bool {
    matches!(top, "table" | "tbody" | "thead" | "tfoot" | "tr") && !matches!(next, "caption" | "colgroup" | "col" | "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "script" | "style" | "template" | "table")
}

/// Whether the end tag `</owner>`, when its element is open and in scope, closes every element
/// opened inside it (the parser's "generate implied end tags" then "pop until"). The end tag of
/// a phrasing element (`</span>`, `</b>`) is ignored or runs the adoption agency instead when a
/// block is open inside it.
pub fn end_closes_everything_inside(owner: &str) -> bool {
    matches!(
        owner,
        "address" | "article" | "aside" | "blockquote" | "center" | "details" | "dialog" | "dir" | "div" | "dl" | "fieldset" | "figcaption" | "figure" | "footer" | "header" | "hgroup" | "listing"
            | "main" | "menu" | "nav" | "ol" | "pre" | "search" | "section" | "summary" | "ul" | "li" | "dd" | "dt" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "body" | "html" | "td" | "th" | "tr"
            | "table" | "tbody" | "thead" | "tfoot" | "caption"
    )
}

/// Whether `</open>` may be left out when the next token is the start tag `<next>`, `parent`
/// being the element around both.
pub fn end_implied_by_start(open: &str, next: &str, parent: Option<&str>) -> bool {
    match open {
        "li" => next == "li",
        "dt" | "dd" => matches!(next, "dt" | "dd"),
        // The start tags that close a p in button scope, less those the spec does not list
        // for omission (their closing is a parse error path), `table` (it nests inside a p
        // in quirks mode) and `form` (ignored while another form is open).
        "p" => closes_p(next) && !matches!(next, "center" | "dir" | "listing" | "plaintext" | "xmp" | "li" | "dd" | "dt" | "table" | "form"),
        // Outside a select the parser nests option groups.
        "option" => matches!(next, "option" | "optgroup") && matches!(parent, Some("select" | "optgroup" | "datalist")),
        "optgroup" => next == "optgroup" && parent == Some("select"),
        "td" | "th" => matches!(next, "td" | "th"),
        "tr" => next == "tr",
        "thead" | "tbody" => matches!(next, "tbody" | "tfoot"),
        // "not immediately followed by ASCII whitespace or a comment": an element is fine,
        // but for `<html>` (and `<head>` after a head), which the parser skips without
        // leaving the after-head or after-body mode, so a comment after them lands elsewhere.
        "head" => !matches!(next, "html" | "head"),
        "body" | "html" => next != "html",
        _ => false,
    }
}

/// Whether `</open>` may be left out when the next token is the end tag `</parent>`: the
/// parent's end tag closes `open` on the way (generate implied end tags, or the table modes'
/// "close the cell / row / body").
pub fn end_implied_by_end(open: &str, parent: &str) -> bool {
    match open {
        "li" => matches!(parent, "ul" | "ol" | "menu"),
        "dt" | "dd" => matches!(parent, "dl" | "div"),
        "p" => matches!(
            parent,
            "address" | "article" | "aside" | "blockquote" | "details" | "dialog" | "div" | "fieldset" | "figcaption" | "figure" | "footer" | "header" | "hgroup" | "li" | "main" | "menu" | "nav" | "ol" | "search" | "section" | "summary" | "ul" | "dd" | "dt" | "td" | "th" | "caption"
        ),
        "option" => matches!(parent, "select" | "optgroup" | "datalist"),
        "optgroup" => parent == "select",
        "td" | "th" => parent == "tr",
        "tr" => matches!(parent, "tbody" | "thead" | "tfoot" | "table"),
        "tbody" | "tfoot" => parent == "table",
        "body" => parent == "html",
        _ => false,
    }
}

/// Whether an element named `name` inside the open elements `below` (outermost first) is the
/// document's own `<html>`, `<head>` or `<body>` (anywhere else the parser ignores the tag);
/// other elements always are what they say.
pub fn in_structural_place<S: AsRef<str>>(name: &str, below: &[S]) -> bool {
    match name {
        "html" => below.is_empty(),
        "head" | "body" => match below {
            [] => true,
            [only] => only.as_ref() == "html",
            _ => false,
        },
        _ => true,
    }
}

/// Whether `</open>` may be left out at the end of the document (the parser closes everything
/// there).
pub fn end_implied_at_eof(open: &str) -> bool {
    OPTIONAL_END.contains(&open)
}

/// Elements the parser keeps in `<head>`; any other start tag there closes the head.
const HEAD_CONTENT: &[&str] = &["base", "basefont", "bgsound", "link", "meta", "title", "noscript", "noframes", "style", "script", "template"];

/// Elements the parser opens on its own before a start tag, as far as the minifier's
/// whitespace decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implied {
    /// None.
    Nothing,
    /// `<head>` (head content before any element).
    Head,
    /// `<body>` (content at the top level or directly in `<html>`).
    Body,
    /// `</head>` then `<body>` (body content inside the head).
    HeadEndAndBody,
}

/// What the start tag `<name>` implies when the innermost open element is `parent` (`None`:
/// none; `seen`: an element was opened before), so that blank text after it is not taken for
/// text outside the body.
pub fn implied_by_start(parent: Option<&str>, seen: bool, name: &str) -> Implied {
    let structural = matches!(name, "html" | "head" | "body");
    match parent {
        None if !seen && HEAD_CONTENT.contains(&name) => Implied::Head,
        None | Some("html") if !structural => Implied::Body,
        Some("head") if !HEAD_CONTENT.contains(&name) && !structural => Implied::HeadEndAndBody,
        _ => Implied::Nothing,
    }
}

/// What text that is not blank implies when the innermost open element is `parent`: outside
/// any element or directly in `<html>`, a body; in the head, the head's end and a body.
pub fn implied_by_text(parent: Option<&str>) -> Implied {
    match parent {
        None | Some("html") => Implied::Body,
        Some("head") => Implied::HeadEndAndBody,
        _ => Implied::Nothing,
    }
}

/// Whether whitespace-only text inside the open elements `stack` (outermost first) is never
/// rendered: at the document level, directly in `<html>` (outside head and body), in `<head>`
/// (not displayed) and between table parts (CSS drops it). Not in a `<select>`: a
/// customizable select (`appearance: base-select`) renders its content. Each of
/// these holds only where the parser really builds that structure, so the whole stack is
/// checked: a `<tr>` outside a table or a `<head>` inside the body is ignored by the parser,
/// and its text belongs to the element around it. Once a body was opened (`body_seen`), text
/// outside it goes into it, so it is kept.
pub fn whitespace_ignorable_in<S: AsRef<str>>(stack: &[S], body_seen: bool) -> bool {
    let Some((top, below)) = stack.split_last() else {
        return !body_seen;
    };
    let parent = below.last().map(AsRef::as_ref);
    let table_ok = |at: usize| {
        stack.get(at).is_some_and(|t| t.as_ref() == "table")
            && !stack[..at].iter().any(|e| matches!(e.as_ref(), "svg" | "math" | "select" | "option" | "optgroup" | "template" | "table" | "tbody" | "thead" | "tfoot" | "tr" | "colgroup"))
    };
    match top.as_ref() {
        "html" => below.is_empty() && !body_seen,
        "head" => in_structural_place("head", below),
        "table" => table_ok(below.len()),
        "tbody" | "thead" | "tfoot" | "colgroup" => parent == Some("table") && table_ok(below.len() - 1),
        "tr" => match parent {
            Some("table") => table_ok(below.len() - 1),
            Some("tbody" | "thead" | "tfoot") => below.len() >= 2 && table_ok(below.len() - 2),
            _ => false,
        },
        _ => false,
    }
}

/// `(element, attribute, default value)`: attributes removed when their value, trimmed and
/// compared without case, is the HTML spec's default, so the parsed tree means the same (`type`
/// on a `<link>` only when it is a stylesheet link).
pub const DEFAULT_ATTRIBUTES: &[(&str, &str, &str)] = &[("script", "type", "text/javascript"), ("style", "type", "text/css"), ("link", "type", "text/css"), ("form", "method", "get")];

/// Whether attribute `attr="value"` on element `tag` is the spec's default
/// ([`DEFAULT_ATTRIBUTES`]); `rel` is the element's `rel` attribute (for `<link>`).
pub fn is_default_attribute(tag: &str, attr: &str, value: &str, rel: Option<&str>) -> bool {
    let Some((_, _, default)) = DEFAULT_ATTRIBUTES.iter().find(|(t, a, _)| *t == tag && attr.eq_ignore_ascii_case(a)) else {
        return false;
    };
    if tag == "link" && !rel.is_some_and(|r| r.split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case("stylesheet"))) {
        return false;
    }
    value.trim().eq_ignore_ascii_case(default)
}

/// Whether an attribute value may be written without quotes (HTML syntax "unquoted attribute
/// value"): not empty, and no whitespace, quotes, `=`, `<`, `>` or `` ` ``.
pub fn unquotable(value: &str) -> bool {
    !value.is_empty() && !value.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'"' | b'\'' | b'=' | b'<' | b'>' | b'`'))
}

/// How [`write_start_tag`] writes a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartTagStyle {
    /// Values without quotes where the syntax allows.
    pub unquote: bool,
    /// `name` for `name=""`.
    pub bare_empty: bool,
    /// Shorten character references in values ([`refs::shorten_in_attribute`]).
    pub shorten_refs: bool,
    /// Non-ASCII characters may be written as themselves.
    pub utf8: bool,
}

/// One attribute as the source has it: name, raw value (references undecoded), and whether the
/// value was in quotes.
pub type RawAttribute = (String, String, bool);

/// Writes a start tag from its raw parts. A value keeps its quotes unless `style.unquote` (or
/// it had none and needs none). `self_closing` keeps `/>`: pass it only for foreign (SVG,
/// MathML) elements, where it closes the element; on HTML elements the parser ignores it.
pub fn write_start_tag(name: &str, attributes: &[RawAttribute], self_closing: bool, style: StartTagStyle) -> String {
    let mut out = String::with_capacity(2 + name.len() + attributes.iter().map(|(n, v, _)| n.len() + v.len() + 4).sum::<usize>());
    out.push('<');
    out.push_str(name);
    let mut last_unquoted = false;
    for (attr, raw, quoted) in attributes {
        out.push(' ');
        out.push_str(attr);
        let shortened = if style.shorten_refs { refs::shorten_in_attribute(raw, style.utf8) } else { None };
        let value = shortened.as_deref().unwrap_or(raw);
        last_unquoted = false;
        if style.bare_empty && value.is_empty() {
            continue;
        }
        out.push('=');
        if (style.unquote || !quoted) && unquotable(value) {
            out.push_str(value);
            last_unquoted = true;
        } else if value.contains('"') {
            if value.contains('\'') {
                out.push('"');
                out.push_str(&value.replace('"', "&quot;"));
                out.push('"');
            } else {
                out.push('\'');
                out.push_str(value);
                out.push('\'');
            }
        } else {
            out.push('"');
            out.push_str(value);
            out.push('"');
        }
    }
    if self_closing {
        // `a=b/>` would read the slash into the value.
        out.push_str(if last_unquoted { " />" } else { "/>" });
    } else {
        out.push('>');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: StartTagStyle = StartTagStyle { unquote: true, bare_empty: true, shorten_refs: true, utf8: true };

    fn attrs(pairs: &[(&str, &str)]) -> Vec<RawAttribute> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned(), true)).collect()
    }

    #[test]
    fn start_tags_are_written_short() {
        assert_eq!(write_start_tag("a", &attrs(&[("href", "/x/"), ("class", "a b"), ("id", "")]), false, SHORT), "<a href=/x/ class=\"a b\" id>");
        assert_eq!(write_start_tag("img", &attrs(&[("alt", "it's")]), false, SHORT), "<img alt=\"it's\">");
        assert_eq!(write_start_tag("img", &attrs(&[("alt", "say \"hi\"")]), false, SHORT), "<img alt='say \"hi\"'>");
        assert_eq!(write_start_tag("img", &attrs(&[("alt", "a\"b'c")]), false, SHORT), "<img alt=\"a&quot;b'c\">");
        assert_eq!(write_start_tag("path", &attrs(&[("d", "M0")]), true, SHORT), "<path d=M0 />");
        assert_eq!(write_start_tag("path", &attrs(&[("d", "M 0")]), true, SHORT), "<path d=\"M 0\"/>");
        assert_eq!(write_start_tag("a", &attrs(&[("href", "?a=1&amp;b=2")]), false, SHORT), "<a href=\"?a=1&b=2\">", "= keeps the quotes (the syntax forbids it unquoted)");
        let quoted = StartTagStyle { unquote: false, bare_empty: false, shorten_refs: false, utf8: false };
        assert_eq!(write_start_tag("a", &attrs(&[("href", "x"), ("id", "")]), false, quoted), "<a href=\"x\" id=\"\">");
        let as_written = vec![("href".to_owned(), "x".to_owned(), false), ("title".to_owned(), "y".to_owned(), true)];
        assert_eq!(write_start_tag("a", &as_written, false, quoted), "<a href=x title=\"y\">", "quotes stay as the source had them");
    }

    #[test]
    fn written_start_tags_parse_to_the_same_element() {
        let cases: &[&[(&str, &str)]] = &[
            &[("href", "/a/b/"), ("title", "x=y"), ("data-x", "`")],
            &[("value", ""), ("class", "a\tb"), ("alt", "a\"b'c")],
            &[("src", "x.png?w=1&amp;h=2"), ("alt", "&copy; caf&eacute;")],
        ];
        for case in cases {
            let raw: String = case.iter().map(|(n, v)| format!(" {n}=\"{}\"", v.replace('"', "&quot;"))).collect();
            let ours = write_start_tag("img", &attrs(case), false, SHORT);
            assert_eq!(crate::test_support::html_tree(&format!("<body>{ours}x")), crate::test_support::html_tree(&format!("<body><img{raw}>x")), "{ours}");
        }
    }

    #[test]
    fn implied_end_tags() {
        assert!(end_implied_by_start("li", "li", Some("body")) && !end_implied_by_start("li", "p", Some("body")));
        assert!(end_implied_by_start("p", "div", Some("body")) && end_implied_by_start("p", "p", Some("body")) && !end_implied_by_start("p", "span", Some("body")) && !end_implied_by_start("p", "li", Some("body")));
        assert!(!end_implied_by_start("p", "table", Some("body")) && !end_implied_by_start("p", "form", Some("body")), "quirks mode nests a table in a p; a second form is ignored");
        assert!(end_implied_by_start("td", "th", Some("body")) && !end_implied_by_start("td", "tr", Some("body")));
        assert!(closes_container("select", "option", "input") && closes_container("table", "tr", "table") && !closes_container("table", "td", "table"));
        assert!(!opened_by_parser("select", &["body", "select"], true, true) && !opened_by_parser("tr", &["body", "div"], true, true) && opened_by_parser("tr", &["body", "table"], true, true));
        assert!(opened_by_parser("head", &["html"], true, false) && !opened_by_parser("head", &["html"], true, true), "a head after the body is ignored");
        assert!(may_close_open_elements("li") && may_close_open_elements("div") && !may_close_open_elements("span"));
        assert!(fostered("tr", "br") && fostered("table", "div") && !fostered("tr", "td") && !fostered("td", "div"));
        assert!(end_closes_everything_inside("div") && !end_closes_everything_inside("span") && !end_closes_everything_inside("b"));
        assert!(end_implied_by_end("td", "tr") && end_implied_by_end("tr", "table") && end_implied_by_end("p", "div"));
        assert!(!end_implied_by_end("p", "span") && !end_implied_by_end("p", "a") && !end_implied_by_end("p", "body"), "these end tags do not close a p");
        assert!(!end_implied_by_end("li", "div"));
        assert_eq!(implied_by_start(None, false, "meta"), Implied::Head);
        assert_eq!(implied_by_start(None, false, "p"), Implied::Body);
        assert_eq!(implied_by_start(Some("html"), true, "div"), Implied::Body);
        assert_eq!(implied_by_start(Some("head"), true, "div"), Implied::HeadEndAndBody);
        assert_eq!(implied_by_start(Some("head"), true, "meta"), Implied::Nothing);
        assert!(whitespace_ignorable_in(&["html", "body", "table", "tbody", "tr"], true) && whitespace_ignorable_in::<&str>(&[], false) && whitespace_ignorable_in(&["html", "head"], false));
        assert!(!whitespace_ignorable_in(&["html", "body", "ul"], true) && !whitespace_ignorable_in(&["html", "body"], true));
        assert!(!whitespace_ignorable_in(&["html"], true) && !whitespace_ignorable_in::<&str>(&[], true), "after the body, text goes into it");
        assert!(!whitespace_ignorable_in(&["body", "thead", "head"], true), "a head in the body is ignored by the parser");
        assert!(!whitespace_ignorable_in(&["body", "div", "tr"], true) && !whitespace_ignorable_in(&["body", "svg", "table"], true), "no table there");
    }
}
