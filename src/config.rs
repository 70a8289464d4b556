//! Worker configuration: parsed from wrangler.toml `[vars]` once, validated into typed values.
//!
//! Loading (reading the platform's env) lives in the glue; this module only parses strings, so a
//! bad config is caught by `cargo test` and answered at runtime with an error naming the field.

use thiserror::Error;

/// The origin used when `ORIGIN_URL` is not set: the demo origin's default address.
pub const DEFAULT_ORIGIN_URL: &str = "http://127.0.0.1:8080";

/// A configuration error: which field was wrong and why.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field's value could not be used.
    #[error("config field `{field}`: {reason}")]
    Invalid {
        /// The field, as named in wrangler.toml.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// The base URL of an origin: `http` or `https`, a host, no query or fragment.
///
/// Kept without a trailing slash so that appending a request's path-and-query is plain
/// concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginUrl(String);

impl OriginUrl {
    /// Parses and validates an origin base URL; `field` names it in the error.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { field, reason };
        let url = url::Url::parse(raw.trim()).map_err(|e| invalid(format!("{raw:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("{raw:?} must use http or https")));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!("{raw:?} has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(format!("{raw:?} must not have a query or fragment")));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The URL to fetch at the origin for a request's `path_and_query` (which starts with `/`).
    pub fn join(&self, path_and_query: &str) -> String {
        let mut out = String::with_capacity(self.0.len() + path_and_query.len());
        out.push_str(&self.0);
        if !path_and_query.starts_with('/') {
            out.push('/');
        }
        out.push_str(path_and_query);
        out
    }

    /// The base URL as a string, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The worker's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Where requests are proxied to.
    pub origin: OriginUrl,
}

impl EdgeConfig {
    /// Builds the config from the raw `[vars]` values; `None` means the var is unset.
    pub fn from_vars(origin_url: Option<&str>) -> Result<Self, ConfigError> {
        Ok(Self {
            origin: OriginUrl::parse("ORIGIN_URL", origin_url.unwrap_or(DEFAULT_ORIGIN_URL))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_origin_is_the_demo_origin() {
        let cfg = EdgeConfig::from_vars(None).unwrap();
        assert_eq!(cfg.origin.as_str(), "http://127.0.0.1:8080");
    }

    #[test]
    fn join_keeps_path_and_query_verbatim() {
        let o = OriginUrl::parse("ORIGIN_URL", "https://example.com/").unwrap();
        assert_eq!(o.join("/a/b?x=1&y=%20"), "https://example.com/a/b?x=1&y=%20");
        let o = OriginUrl::parse("ORIGIN_URL", "http://127.0.0.1:9000/base").unwrap();
        assert_eq!(o.join("/p"), "http://127.0.0.1:9000/base/p");
    }

    #[test]
    fn bad_origins_name_the_field() {
        for bad in ["ftp://x", "not a url", "http://x/?q=1", "http://x/#f", ""] {
            let err = OriginUrl::parse("ORIGIN_URL", bad).unwrap_err();
            assert!(err.to_string().starts_with("config field `ORIGIN_URL`"), "{bad}: {err}");
        }
    }
}
