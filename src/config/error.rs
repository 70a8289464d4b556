//! Configuration errors: which field (of which rule) was wrong and why. A leaf: every module
//! that validates part of the config reports through it.

use thiserror::Error;

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
    /// A rule's field could not be used.
    #[error("config rule #{index} {name:?} field `{field}`: {reason}")]
    Rule {
        /// 1-based position in `rules`.
        index: usize,
        /// The rule's name.
        name: String,
        /// The field, as named in wrangler.toml.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl ConfigError {
    /// An error in rule number `index` (0-based) called `name`.
    pub fn rule(index: usize, name: &str, field: &'static str, reason: String) -> Self {
        Self::Rule { index: index + 1, name: name.to_owned(), field, reason }
    }
}
