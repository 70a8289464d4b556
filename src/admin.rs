//! Admin endpoint authentication: a token compared in constant time, given as a bearer token
//! (scripts, Prometheus) or as the password of HTTP Basic auth (browsers, for the dashboard).

use base64::Engine as _;

/// Whether an `Authorization` header carries `Bearer <expected>`. Compares in time independent
/// of where the bytes differ; an empty expected token never matches.
pub fn bearer_token_matches(authorization: Option<&str>, expected: &str) -> bool {
    let Some(given) = authorization.and_then(|a| {
        let (scheme, token) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    }) else {
        return false;
    };
    constant_time_eq(given, expected)
}

/// Whether an `Authorization` header carries the token, as `Bearer <token>` or as HTTP Basic
/// credentials whose password is the token (any user name).
pub fn admin_token_matches(authorization: Option<&str>, expected: &str) -> bool {
    if bearer_token_matches(authorization, expected) {
        return true;
    }
    let Some((scheme, encoded)) = authorization.and_then(|a| a.trim().split_once(' ')) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return false;
    };
    text.split_once(':').is_some_and(|(_, password)| constant_time_eq(password, expected))
}

/// Compares in time independent of where the bytes differ (`subtle`); an empty expected
/// token never matches.
fn constant_time_eq(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer() {
        assert!(bearer_token_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(bearer_token_matches(Some("bearer  s3cret "), "s3cret"));
        assert!(!bearer_token_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_token_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_token_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_token_matches(None, "s3cret"));
        assert!(!bearer_token_matches(Some("Bearer "), ""));
    }

    #[test]
    fn basic_password_or_bearer() {
        // "admin:s3cret" and "admin:wrong"
        assert!(admin_token_matches(Some("Basic YWRtaW46czNjcmV0"), "s3cret"));
        assert!(admin_token_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!admin_token_matches(Some("Basic YWRtaW46d3Jvbmc="), "s3cret"));
        assert!(!admin_token_matches(Some("Basic !!!"), "s3cret"));
        assert!(!admin_token_matches(None, "s3cret"));
    }
}
