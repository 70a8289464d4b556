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
