//! Shortest character references: `&quot;` → `"`, `&#8217;` → `’`, `&amp;` → `&` where the
//! HTML tokenizer reads the result back as the same characters (WHATWG HTML §13.2.5.72-80).
//! Pure functions over raw markup (entities still in it), one for text and one for attribute
//! values.
//!
//! ### Beware
//! - A reference is only replaced by a non-ASCII character when the document is known to be
//!   UTF-8 (`utf8`); otherwise the bytes written might not mean that character.
//! - References without their `;`, numeric ones in the C1 range (which the parser remaps to
//!   windows-1252), and ones that produce whitespace, controls, `<`, `&` in ambiguous places,
//!   quotes in attributes or noncharacters stay as they are.
//! - `&amp;` is only shortened when the character after it is known and cannot start a
//!   reference; a reference at the very end of a chunk is left alone (the caller holds back an
//!   unfinished one with [`incomplete_tail`]).

/// Named references worth shortening (common in CMS output), with the character each means.
/// Every name here is terminated by `;` in the input, so no legacy prefix rule applies.
const NAMED: &[(&str, char)] = &[
    ("nbsp", '\u{a0}'), ("copy", '©'), ("reg", '®'), ("trade", '™'), ("mdash", '—'), ("ndash", '–'),
    ("hellip", '…'), ("lsquo", '‘'), ("rsquo", '’'), ("ldquo", '“'), ("rdquo", '”'), ("sbquo", '‚'),
    ("bdquo", '„'), ("laquo", '«'), ("raquo", '»'), ("lsaquo", '‹'), ("rsaquo", '›'), ("middot", '·'),
    ("bull", '•'), ("times", '×'), ("divide", '÷'), ("deg", '°'), ("euro", '€'), ("pound", '£'),
    ("yen", '¥'), ("cent", '¢'), ("sect", '§'), ("para", '¶'), ("plusmn", '±'), ("micro", 'µ'),
    ("larr", '←'), ("rarr", '→'), ("uarr", '↑'), ("darr", '↓'), ("harr", '↔'), ("hearts", '♥'),
    ("frac12", '½'), ("frac14", '¼'), ("frac34", '¾'), ("iexcl", '¡'), ("iquest", '¿'),
    ("aacute", 'á'), ("agrave", 'à'), ("acirc", 'â'), ("auml", 'ä'), ("aring", 'å'), ("atilde", 'ã'),
    ("ccedil", 'ç'), ("eacute", 'é'), ("egrave", 'è'), ("ecirc", 'ê'), ("euml", 'ë'), ("iacute", 'í'),
    ("igrave", 'ì'), ("icirc", 'î'), ("iuml", 'ï'), ("ntilde", 'ñ'), ("oacute", 'ó'), ("ograve", 'ò'),
    ("ocirc", 'ô'), ("ouml", 'ö'), ("otilde", 'õ'), ("oslash", 'ø'), ("uacute", 'ú'), ("ugrave", 'ù'),
    ("ucirc", 'û'), ("uuml", 'ü'), ("yacute", 'ý'), ("szlig", 'ß'), ("Eacute", 'É'), ("Auml", 'Ä'),
    ("Ouml", 'Ö'), ("Uuml", 'Ü'), ("Aring", 'Å'), ("AElig", 'Æ'), ("aelig", 'æ'), ("Ccedil", 'Ç'),
    ("apos", '\''), ("quot", '"'), ("gt", '>'), ("lt", '<'), ("amp", '&'),
    ("sol", '/'), ("colon", ':'), ("comma", ','), ("period", '.'), ("lpar", '('), ("rpar", ')'),
];

/// Longest reference looked at (`&#x10FFFF;` and the longest name above fit).
const MAX_REF: usize = 12;

/// A reference at `s[0]` (which is `&`): its length in bytes and the character it means, when
/// it is terminated by `;` and decodes to one known character.
fn parse_ref(s: &str) -> Option<(usize, char)> {
    let b = s.as_bytes();
    let end = b.iter().take(MAX_REF).position(|&c| c == b';')?;
    let body = &s[1..end];
    let c = if let Some(num) = body.strip_prefix('#') {
        let (digits, radix) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (num, 10),
        };
        if digits.is_empty() || !digits.bytes().all(|d| (d as char).is_digit(radix)) {
            return None;
        }
        let n = u32::from_str_radix(digits, radix).ok()?;
        if (0x80..=0x9f).contains(&n) {
            return None; // remapped to windows-1252 by the parser
        }
        char::from_u32(n)?
    } else {
        NAMED.iter().find(|(name, _)| *name == body)?.1
    };
    Some((end + 1, c))
}

/// Whether `c` may be written as itself wherever text or an attribute value may hold it (the
/// context rules for `&`, `<` and quotes are applied by the callers).
fn writable(c: char, utf8: bool) -> bool {
    if c.is_ascii() {
        return c.is_ascii_graphic();
    }
    let n = c as u32;
    let noncharacter = (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe;
    utf8 && !c.is_control() && !noncharacter && c != '\u{feff}' && !(0x2028..=0x2029).contains(&n)
}

/// Whether an `&` followed by `next` is read back as a literal `&` in text: anything but an
/// ASCII alphanumeric (a possible named reference) or `#` (a numeric one). `None`: not known.
fn amp_literal_in_text(next: Option<u8>) -> bool {
    next.is_some_and(|c| !c.is_ascii_alphanumeric() && c != b'#' && c != b'&')
}

/// Replaces each complete reference in `raw` by its character where `shorten(c, rest)` says
/// so (`rest`: the bytes after the reference). `None` when nothing changes.
fn replace_refs(raw: &str, shorten: impl Fn(char, &[u8]) -> bool) -> Option<String> {
    if !raw.as_bytes().contains(&b'&') {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let (mut copied, mut i) = (0, 0);
    while let Some(off) = raw[i..].find('&') {
        let at = i + off;
        let Some((len, c)) = parse_ref(&raw[at..]) else {
            i = at + 1;
            continue;
        };
        if shorten(c, &raw.as_bytes()[at + len..]) {
            out.push_str(&raw[copied..at]);
            out.push(c);
            copied = at + len;
        }
        i = at + len;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&raw[copied..]);
    Some(out)
}

/// Shortens references in raw text (data state). `next` is the byte that follows `text` in the
/// document, when known (`Some(b'<')` at the end of a text node). `None` when nothing changes.
pub fn shorten_in_text(text: &str, next: Option<u8>, utf8: bool) -> Option<String> {
    replace_refs(text, |c, rest| {
        let after = rest.first().copied().or(if rest.is_empty() { next } else { None });
        match c {
            '&' => amp_literal_in_text(after),
            // `<` is text only when what follows cannot open a tag.
            '<' => after.is_some_and(|n| n.is_ascii_whitespace() || n.is_ascii_digit() || n == b'='),
            _ => writable(c, utf8),
        }
    })
}

/// Shortens references in a raw attribute value (entities still in it). Quotes, `<`, `>` and
/// `` ` `` stay encoded (so the value's quoting choices do not change); `&amp;` becomes `&`
/// when what follows cannot be read as a reference inside an attribute (a legacy name followed
/// by `=` or an alphanumeric is not one: `?a=1&amp;b=2` → `?a=1&b=2`). `None` when nothing
/// changes.
pub fn shorten_in_attribute(value: &str, utf8: bool) -> Option<String> {
    replace_refs(value, |c, rest| match c {
        '&' => amp_literal_in_attribute(rest),
        '"' | '\'' | '<' | '>' | '`' | '=' => false,
        _ => writable(c, utf8),
    })
}

/// Whether `&` followed by `rest` (the rest of an attribute value) is read as a literal `&`:
/// `rest` starts with neither an alphanumeric nor `#` nor another `&` (whose decoding could
/// change what follows), or it starts with an alphanumeric run ended by `=` (the tokenizer
/// never decodes a reference there inside an attribute: a `;`-terminated name cannot contain
/// `=`, and a legacy name followed by `=` or an alphanumeric is flushed as it is).
fn amp_literal_in_attribute(rest: &[u8]) -> bool {
    match rest.first() {
        None => true,
        Some(c) if c.is_ascii_alphanumeric() => {
            let run = rest.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            rest.get(run) == Some(&b'=')
        }
        Some(c) => *c != b'#' && *c != b'&',
    }
}

/// Where a reference that may be unfinished starts at the end of a text chunk (an `&` with no
/// `;` or space after it within 12 bytes), or a finished one whose following byte is
/// not yet known: the caller holds `text[i..]` back and prepends it to the next chunk.
pub fn incomplete_tail(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let from = b.len().saturating_sub(MAX_REF + 1);
    let at = b[from..].iter().rposition(|&c| c == b'&')? + from;
    let tail = &b[at + 1..];
    let ended = tail.iter().position(|c| c.is_ascii_whitespace() || *c == b'<' || *c == b'&');
    match ended {
        Some(_) => None,
        None => Some(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        shorten_in_text(s, Some(b'<'), true).unwrap_or_else(|| s.to_owned())
    }

    fn a(s: &str) -> String {
        shorten_in_attribute(s, true).unwrap_or_else(|| s.to_owned())
    }

    #[test]
    fn text_references_become_characters() {
        assert_eq!(t("It&#8217;s &quot;x&quot; &amp; y &gt; z"), "It’s \"x\" & y > z");
        assert_eq!(t("a&nbsp;b &copy; 2024&hellip;"), "a\u{a0}b © 2024…");
        assert_eq!(t("&#x2F;&#47;&#39;&apos;"), "//''");
    }

    #[test]
    fn text_references_that_must_stay() {
        assert_eq!(t("&amp;copy; &amp;#38; &amp;&amp;"), "&amp;copy; &amp;#38; &amp;&", "an & that would start a reference stays");
        assert_eq!(t("&lt;p&gt; &lt;/x"), "&lt;p> &lt;/x", "a < that would open a tag stays");
        assert_eq!(t("1 &lt; 2 &lt;= 3"), "1 < 2 <= 3");
        assert_eq!(t("&#10;&#32;&#9;&#13;&#0;&#150;"), "&#10;&#32;&#9;&#13;&#0;&#150;", "whitespace, controls and C1 stay");
        assert_eq!(t("&copy &nbspx &unknown; &#xZZ; &#;"), "&copy &nbspx &unknown; &#xZZ; &#;", "no ;, unknown or malformed: untouched");
        assert_eq!(t("&#xFFFE;&#xFDD0;&#xD800;"), "&#xFFFE;&#xFDD0;&#xD800;");
        assert_eq!(shorten_in_text("&amp;", None, true), None, "what follows is not known");
        assert_eq!(shorten_in_text("&amp; x", None, true).as_deref(), Some("& x"));
    }

    #[test]
    fn non_ascii_only_for_utf8() {
        assert_eq!(shorten_in_text("&rsquo;&quot;", Some(b'<'), false).as_deref(), Some("&rsquo;\""));
        assert_eq!(shorten_in_attribute("&eacute;&#47;", false).as_deref(), Some("&eacute;/"));
    }

    #[test]
    fn attribute_references() {
        assert_eq!(a("/s?a=1&amp;b=2&amp;copy=3"), "/s?a=1&b=2&copy=3");
        assert_eq!(a("/s?a=1&amp;copy;x&amp;b"), "/s?a=1&amp;copy;x&amp;b", "a name ended by ; or by the value's end could decode");
        assert_eq!(a("x &amp; y&amp;"), "x & y&");
        assert_eq!(a("&amp;#38;&amp;&amp;x=1"), "&amp;#38;&amp;&x=1");
        assert_eq!(a("&quot;&#39;&lt;&gt;&#96;&#61;"), "&quot;&#39;&lt;&gt;&#96;&#61;", "quoting-relevant characters stay encoded");
        assert_eq!(a("caf&eacute; &#8212;"), "café —");
    }

    #[test]
    fn incomplete_tails_are_held_back() {
        assert_eq!(incomplete_tail("abc &am"), Some(4));
        assert_eq!(incomplete_tail("abc &amp;"), Some(4), "complete, but what follows is unknown");
        assert_eq!(incomplete_tail("abc & x"), None);
        assert_eq!(incomplete_tail("abc"), None);
        assert_eq!(incomplete_tail(&format!("&{}", "a".repeat(40))), None, "too long to be a reference");
    }

    proptest::proptest! {
        /// Whatever the text, the shortened form decodes (html5ever) to the same characters.
        #[test]
        fn shortened_text_reads_back_the_same(s in "([a-z0-9 =;#]|< |&(amp|lt|gt|quot|nbsp|copy|rsquo|#38|#60|#8217|#x26|#39);?){0,12}") {
            let short = shorten_in_text(&s, Some(b'<'), true).unwrap_or_else(|| s.clone());
            proptest::prop_assert_eq!(crate::test_support::html_text(&short), crate::test_support::html_text(&s));
        }

        /// Whatever the value, the shortened form decodes to the same attribute value.
        #[test]
        fn shortened_attribute_reads_back_the_same(s in "([a-z0-9 =;#?/]|&(amp|lt|quot|nbsp|copy|eacute|#38|#8217|#x26);?){0,12}") {
            let short = shorten_in_attribute(&s, true).unwrap_or_else(|| s.clone());
            proptest::prop_assert_eq!(crate::test_support::html_attribute(&short), crate::test_support::html_attribute(&s));
        }
    }
}
