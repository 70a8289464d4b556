//! The base URL of one origin, validated once.

use super::error::ConfigError;

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

    /// Where it points, `scheme://host[:port]`, for a log line: without the credentials a base
    /// URL may carry, and without its path.
    pub fn origin(&self) -> String {
        url::Url::parse(&self.0).map_or_else(|_| "?".to_owned(), |u| u.origin().ascii_serialization())
    }
}
