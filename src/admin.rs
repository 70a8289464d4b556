//! Admin endpoint authentication: a bearer token compared in constant time.

/// Whether an `Authorization` header carries `Bearer <expected>`. Compares in time independent
/// of where the bytes differ; an empty expected token never matches.
pub fn bearer_token_matches(authorization: Option<&str>, expected: &str) -> bool {
    let Some(given) = authorization.and_then(|a| {
        let (scheme, token) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    }) else {
        return false;
    };
    if expected.is_empty() || given.len() != expected.len() {
        return false;
    }
    given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
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
}
