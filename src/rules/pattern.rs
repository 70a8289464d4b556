//! Path patterns for rules: globs where `*` matches any run of characters, `/` included
//! (the Cloudflare rules convention), compiled once at config load.

/// A compiled path glob. `/static/*` matches `/static/a/b.css`; `*.css` matches any CSS path;
/// a pattern without `*` matches that exact path only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    /// The literal pieces between stars; `anchored_end` is false when the pattern ends in `*`.
    pieces: Vec<String>,
    anchored_start: bool,
    anchored_end: bool,
}

impl PathPattern {
    /// Compiles a glob. Patterns must start with `/` or `*`.
    pub fn parse(source: &str) -> Result<Self, String> {
        if !(source.starts_with('/') || source.starts_with('*')) {
            return Err(format!("{source:?} must start with '/' or '*'"));
        }
        if source.contains("**") {
            return Err(format!("{source:?}: '*' already matches across '/', write a single '*'"));
        }
        Ok(Self {
            source: source.to_owned(),
            pieces: source.split('*').map(str::to_owned).collect(),
            anchored_start: !source.starts_with('*'),
            anchored_end: !source.ends_with('*'),
        })
    }

    /// Whether `path` matches. Greedy-free: each literal piece is found leftmost in turn, which
    /// is exact for `*`-only globs.
    pub fn matches(&self, path: &str) -> bool {
        let n = self.pieces.len();
        if n == 1 {
            return path == self.pieces[0];
        }
        let mut rest = path;
        for (i, piece) in self.pieces.iter().enumerate() {
            if i == 0 {
                if self.anchored_start {
                    let Some(r) = rest.strip_prefix(piece.as_str()) else { return false };
                    rest = r;
                }
                continue;
            }
            if i == n - 1 {
                return !self.anchored_end || rest.ends_with(piece.as_str());
            }
            let Some(at) = rest.find(piece.as_str()) else { return false };
            rest = &rest[at + piece.len()..];
        }
        true
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("/static/*", "/static/app.css", true),
            ("/static/*", "/static/a/b/c.js", true),
            ("/static/*", "/static", false),
            ("/static/*", "/other/static/x", false),
            ("*.css", "/a/b.css", true),
            ("*.css", "/a/b.css.map", false),
            ("/api/*/items", "/api/v1/items", true),
            ("/api/*/items", "/api/v1/items/2", false),
            ("/about", "/about", true),
            ("/about", "/about/", false),
            ("/*", "/", true),
            ("*", "/anything", true),
            ("/a*b*c", "/axxbyyc", true),
            ("/a*b*c", "/axxcyyb", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(PathPattern::parse(pattern).unwrap().matches(path), want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn bad_patterns() {
        assert!(PathPattern::parse("static/*").is_err());
        assert!(PathPattern::parse("/a/**").is_err());
    }
}
