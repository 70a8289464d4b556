//! An image request as the edge recognises it: a `/cdn-cgi/image/<options>/<source>` URL, or
//! a plain path whose rule says `images = "auto"`.

use super::{params, sign};

/// An image request, recognised from the URL or the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    /// The options segment (`""` for rule-driven requests).
    pub options: String,
    /// The source path (with a leading `/`).
    pub source_path: String,
    /// The source query, if any (`sig` removed).
    pub source_query: Option<String>,
    /// Came from a rule (`images = "auto"`): failures and non-images pass through untouched.
    pub auto: bool,
}

impl ImageRequest {
    /// `/cdn-cgi/image/...` URLs; `None` for any other path.
    pub fn from_url(path: &str, query: Option<&str>) -> Option<Self> {
        let (options, source_path) = params::split_path(path)?;
        Some(Self { options: options.to_owned(), source_path, source_query: sign::source_query(query), auto: false })
    }

    /// A request on a path whose rule has `images = "auto"`.
    pub fn auto(path: &str, query: Option<&str>) -> Self {
        Self { options: String::new(), source_path: path.to_owned(), source_query: query.map(str::to_owned), auto: true }
    }

    /// The source's path and query, as the origin is asked for it.
    pub fn source(&self) -> String {
        match &self.source_query {
            Some(q) => format!("{}?{q}", self.source_path),
            None => self.source_path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_cdn_cgi_urls_and_drops_the_signature() {
        let r = ImageRequest::from_url("/cdn-cgi/image/w=64/img/a.png", Some("v=2&sig=abc")).unwrap();
        assert_eq!((r.options.as_str(), r.source().as_str(), r.auto), ("w=64", "/img/a.png?v=2", false));
        assert_eq!(ImageRequest::from_url("/img/a.png", None), None);
        assert_eq!(ImageRequest::auto("/img/a.png", None).source(), "/img/a.png");
    }
}
