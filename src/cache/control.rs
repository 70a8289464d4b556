//! `Cache-Control` parsing (RFC 9111 §5.2), kept apart from interpreting it (see `policy`).
//! A hand-written tokenizer: directives are case-insensitive tokens with optional token or
//! quoted-string arguments; commas inside quotes do not split.

use http::HeaderMap;

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
    fn invalid_or_conflicting_seconds_are_stale() {
        assert_eq!(CacheControl::parse_all(["max-age=abc"]).seconds("max-age"), Some(0));
        assert_eq!(CacheControl::parse_all(["max-age"]).seconds("max-age"), Some(0));
        assert_eq!(CacheControl::parse_all(["max-age=5, max-age=10"]).seconds("max-age"), Some(0));
        assert_eq!(CacheControl::parse_all(["max-age=5, max-age=5"]).seconds("max-age"), Some(5));
        assert_eq!(CacheControl::parse_all(["max-age=99999999999999999999"]).seconds("max-age"), Some(MAX_DELTA_SECONDS));
        assert_eq!(CacheControl::parse_all(["max-age=\"7\""]).seconds("max-age"), Some(7));
        assert_eq!(CacheControl::parse_all([""]).seconds("max-age"), None);
    }
}
