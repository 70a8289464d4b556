//! `Cache-Control` parsing (RFC 9111 §5.2), kept apart from interpreting it (see `policy`).
//! A hand-written tokenizer: directives are case-insensitive tokens with optional token or
//! quoted-string arguments; commas inside quotes do not split.

use http::HeaderMap;

/// Targeted cache-control fields (RFC 9213) this cache obeys, most specific first: Cloudflare's
/// own, then the CDN-wide one, then `Surrogate-Control` (Fastly, Varnish and Akamai's Edge
/// Architecture field). The first with a valid, non-empty value replaces `Cache-Control` and
/// `Expires` for the edge; all three are removed before the client.
pub const TARGETED_FIELDS: [&str; 3] = ["cloudflare-cdn-cache-control", "cdn-cache-control", "surrogate-control"];

/// The directives that decide caching at the edge, and where they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeDirectives {
    /// The directives.
    pub cc: CacheControl,
    /// The targeted field they came from; `None`: `Cache-Control` (and `Expires` applies).
    pub targeted: Option<&'static str>,
}

impl EdgeDirectives {
    /// RFC 9213 §2.2: the first targeted field with a valid, non-empty value wins and
    /// `Cache-Control`/`Expires` are ignored; otherwise `Cache-Control` applies. An invalid
    /// targeted field is ignored as a whole (§2.1).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        for name in TARGETED_FIELDS {
            let lines: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            if lines.is_empty() {
                continue;
            }
            let joined = lines.join(", ");
            let cc = if name == "surrogate-control" { Self::surrogate(&joined) } else { Self::structured(&joined) };
            if let Some(cc) = cc.filter(|cc| !cc.is_empty()) {
                return Self { cc, targeted: Some(name) };
            }
        }
        Self { cc: CacheControl::from_headers(headers), targeted: None }
    }

    /// A targeted field as a Structured Fields Dictionary (RFC 9213 §2.1): integers and
    /// tokens/strings become arguments, `?1` (or a bare key) a flag; `?0` leaves the directive
    /// out. `None` when it does not parse.
    fn structured(value: &str) -> Option<CacheControl> {
        let dict: sfv::Dictionary = sfv::Parser::new(value).parse().ok()?;
        let mut directives = Vec::with_capacity(dict.len());
        for (key, entry) in &dict {
            let sfv::ListEntry::Item(item) = entry else { continue };
            let arg = match &item.bare_item {
                sfv::BareItem::Boolean(false) => continue,
                sfv::BareItem::Boolean(true) => None,
                sfv::BareItem::Integer(n) => Some(n.to_string()),
                sfv::BareItem::Token(t) => Some(t.as_str().to_owned()),
                sfv::BareItem::String(t) => Some(t.as_str().to_owned()),
                _ => continue,
            };
            directives.push((key.as_str().to_owned(), arg));
        }
        Some(CacheControl { directives })
    }

    /// `Surrogate-Control` uses Cache-Control syntax, and Edge Architecture's `max-age=N+M`
    /// (fresh for N; the `+M` stale allowance is dropped here).
    fn surrogate(value: &str) -> Option<CacheControl> {
        let mut cc = CacheControl::parse_all([value]);
        for (name, arg) in &mut cc.directives {
            if name == "max-age" {
                if let Some((fresh, _)) = arg.as_deref().and_then(|a| a.split_once('+')) {
                    *arg = Some(fresh.to_owned());
                }
            }
        }
        Some(cc)
    }
}

/// Largest delta-seconds value honoured (RFC 9111 §1.2.2: 2^31).
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// Parsed directives, in order, names lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    directives: Vec<(String, Option<String>)>,
}

impl CacheControl {
    /// Parses every `Cache-Control` field in `headers` (multiple fields are one list).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::parse_all(headers.get_all(http::header::CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok()))
    }

    /// Parses field values.
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut directives = Vec::new();
        for value in values {
            let mut chars = value.chars().peekable();
            loop {
                while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '=' || c == ',' || c.is_whitespace() {
                        break;
                    }
                    name.push(c.to_ascii_lowercase());
                    chars.next();
                }
                while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                    chars.next();
                }
                let mut arg = None;
                if chars.peek() == Some(&'=') {
                    chars.next();
                    let mut v = String::new();
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        while let Some(c) = chars.next() {
                            match c {
                                '\\' => v.extend(chars.next()),
                                '"' => break,
                                c => v.push(c),
                            }
                        }
                    } else {
                        while let Some(&c) = chars.peek() {
                            if c == ',' || c.is_whitespace() {
                                break;
                            }
                            v.push(c);
                            chars.next();
                        }
                    }
                    arg = Some(v);
                }
                // Skip anything up to the next comma (junk after an argument).
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
                if !name.is_empty() {
                    directives.push((name, arg));
                }
                if chars.next().is_none() {
                    break;
                }
            }
        }
        Self { directives }
    }

    /// Whether a directive is present (with or without argument).
    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// A directive's argument; `Some(None)` when present without one.
    pub fn arg(&self, name: &str) -> Option<Option<&str>> {
        self.directives.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_deref())
    }

    /// A delta-seconds directive. `None`: absent. Present but invalid (no number, or duplicated
    /// with different values) gives `Some(0)`: RFC 9111 §4.2.1 says to treat such freshness
    /// information as stale. Values are capped at [`MAX_DELTA_SECONDS`].
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let mut found: Option<u64> = None;
        for (n, v) in &self.directives {
            if n != name {
                continue;
            }
            let parsed = v.as_deref().and_then(|v| {
                if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
                    Some(v.parse::<u64>().unwrap_or(MAX_DELTA_SECONDS).min(MAX_DELTA_SECONDS))
                } else {
                    None
                }
            });
            let value = parsed.unwrap_or(0);
            found = match found {
                Some(prev) if prev != value => Some(0),
                _ => Some(value),
            };
        }
        found
    }

    /// Whether there are no directives.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn tokenizes_quoted_lists_and_case() {
        let cc = CacheControl::parse_all(["Public, MAX-AGE=60, no-cache=\"set-cookie, x-a\"", "s-maxage = 5 ,must-revalidate"]);
        assert!(cc.has("public"));
        assert_eq!(cc.seconds("max-age"), Some(60));
        assert_eq!(cc.arg("no-cache"), Some(Some("set-cookie, x-a")));
        assert!(cc.has("must-revalidate"));
        assert!(!cc.has("private"));
    }


    #[test]
    fn targeted_fields_win_in_cloudflare_order() {
        let h = headers(&[("cache-control", "no-store"), ("cdn-cache-control", "max-age=60"), ("cloudflare-cdn-cache-control", "max-age=5, stale-if-error=30")]);
        let d = EdgeDirectives::from_headers(&h);
        assert_eq!(d.targeted, Some("cloudflare-cdn-cache-control"));
        assert_eq!((d.cc.seconds("max-age"), d.cc.seconds("stale-if-error"), d.cc.has("no-store")), (Some(5), Some(30), false));
        let d = EdgeDirectives::from_headers(&headers(&[("cache-control", "no-store"), ("cdn-cache-control", "max-age=60")]));
        assert_eq!((d.targeted, d.cc.seconds("max-age"), d.cc.has("no-store")), (Some("cdn-cache-control"), Some(60), false));
        let d = EdgeDirectives::from_headers(&headers(&[("cache-control", "max-age=60"), ("cdn-cache-control", "private")]));
        assert!(d.cc.has("private") && d.cc.seconds("max-age").is_none());
        let d = EdgeDirectives::from_headers(&headers(&[("cdn-cache-control", "no-cache=\"set-cookie\", max-age=9"), ("cdn-cache-control", "must-revalidate")]));
        assert_eq!((d.cc.arg("no-cache"), d.cc.seconds("max-age"), d.cc.has("must-revalidate")), (Some(Some("set-cookie")), Some(9), true), "lines are one dictionary");
        let d = EdgeDirectives::from_headers(&headers(&[("surrogate-control", "max-age=30+60, no-store-remote"), ("cache-control", "private")]));
        assert_eq!((d.targeted, d.cc.seconds("max-age"), d.cc.has("private")), (Some("surrogate-control"), Some(30), false));
    }

    #[test]
    fn invalid_or_empty_targeted_fields_are_ignored() {
        for bad in ["max-age=\"60", "max-age=60,", "MAX-AGE=60", ""] {
            let d = EdgeDirectives::from_headers(&headers(&[("cache-control", "max-age=7"), ("cdn-cache-control", bad)]));
            assert_eq!((d.targeted, d.cc.seconds("max-age")), (None, Some(7)), "{bad:?}");
        }
        let d = EdgeDirectives::from_headers(&headers(&[("cdn-cache-control", "private=?0"), ("cache-control", "max-age=7")]));
        assert_eq!(d.targeted, None, "only ?0 flags: empty, so Cache-Control applies");
    }

    #[test]
    fn invalid_or_conflicting_seconds_are_stale() {
        assert_eq!(CacheControl::parse_all(["max-age=abc"]).seconds("max-age"), Some(0));
        assert_eq!(CacheControl::parse_all(["max-age"]).seconds("max-age"), Some(0));
        assert_eq!(CacheControl::parse_all(["max-age=5, max-age=10"]).seconds("max-age"), Some(0));
        assert_eq!(CacheControl::parse_all(["max-age=5, max-age=5"]).seconds("max-age"), Some(5));
        assert_eq!(CacheControl::parse_all(["max-age=99999999999999999999"]).seconds("max-age"), Some(MAX_DELTA_SECONDS));
        assert_eq!(CacheControl::parse_all(["max-age=\"7\""]).seconds("max-age"), Some(7));
        assert_eq!(CacheControl::parse_all([""]).seconds("max-age"), None);
    }

    /// A directive name as caches see them (RFC 9110 token characters).
    fn name() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z][a-zA-Z0-9!#$%&'*+.^_`|~-]{0,12}").unwrap()
    }

    /// An argument: a token, or a quoted string that may hold commas, spaces, `=` and escapes.
    fn arg() -> impl proptest::strategy::Strategy<Value = Option<(bool, String)>> {
        use proptest::prelude::*;
        proptest::option::of(prop_oneof![
            proptest::string::string_regex("[a-zA-Z0-9.-]{1,8}").unwrap().prop_map(|t| (false, t)),
            proptest::string::string_regex("[ a-zA-Z0-9,=;\\\\\"-]{0,12}").unwrap().prop_map(|t| (true, t)),
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// Any bytes at all parse without a panic, and `seconds` stays within RFC 9111's cap.
        #[test]
        fn never_panics(value in ".{0,64}") {
            let cc = CacheControl::parse_all([value.as_str()]);
            proptest::prop_assert!(cc.seconds("max-age").is_none_or(|s| s <= MAX_DELTA_SECONDS));
        }

        /// Written directives come back as they were: names lower-cased, quoted arguments
        /// unescaped (commas inside quotes do not split), across any number of field lines.
        #[test]
        fn serialised_directives_round_trip(directives in proptest::collection::vec((name(), arg()), 1..8), split in 0usize..8) {
            let written: Vec<String> = directives.iter().map(|(n, a)| match a {
                None => n.clone(),
                Some((false, t)) => format!("{n}={t}"),
                Some((true, t)) => format!("{n}=\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
            }).collect();
            let split = split.min(written.len());
            let lines = [written[..split].join(", "), written[split..].join(",")];
            let cc = CacheControl::parse_all(lines.iter().map(String::as_str));
            let want: Vec<(String, Option<String>)> = directives.iter().map(|(n, a)| (n.to_ascii_lowercase(), a.as_ref().map(|(_, t)| t.clone()))).collect();
            proptest::prop_assert_eq!(&cc.directives, &want);
        }
    }
}
