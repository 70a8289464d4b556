//! Who a request counts against: the client IP (from `CF-Connecting-IP` only; IPv6 grouped by
//! prefix), an API key header, a user id header, a JWT's `sub` (decoded, not verified: anyone can
//! send any `sub` and so spend another user's budget; combine it with `ip` where that matters),
//! or a combination.

use http::HeaderMap;
use std::net::IpAddr;

/// One part of a rate-limit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client IP; IPv6 addresses are grouped by this prefix length (default 64).
    Ip {
        /// IPv6 prefix length (0..=128).
        v6_prefix: u8,
    },
    /// The value of this header (e.g. `x-api-key`).
    Header(String),
    /// The `sub` claim of a `Bearer` JWT in `Authorization`.
    JwtSub,
}

impl KeyPart {
    /// Parses `ip`, `ip/48`, `header:x-api-key`, `jwt_sub`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "ip" => Ok(Self::Ip { v6_prefix: 64 }),
            "jwt_sub" => Ok(Self::JwtSub),
            other => {
                if let Some(p) = other.strip_prefix("ip/") {
                    let v6_prefix: u8 = p.parse().ok().filter(|n| *n <= 128).ok_or_else(|| format!("{other:?}: prefix must be 0..=128"))?;
                    return Ok(Self::Ip { v6_prefix });
                }
                if let Some(h) = other.strip_prefix("header:") {
                    let h = h.trim().to_ascii_lowercase();
                    if http::HeaderName::from_bytes(h.as_bytes()).is_err() || h.is_empty() {
                        return Err(format!("{other:?}: not a header name"));
                    }
                    return Ok(Self::Header(h));
                }
                Err(format!("{other:?} is not ip, ip/N, header:NAME or jwt_sub"))
            }
        }
    }
}

/// The client IP as used for limiting: IPv4 as is, IPv6 masked to `v6_prefix` bits.
pub fn client_ip_key(ip: &str, v6_prefix: u8) -> Option<String> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = if v6_prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(v6_prefix.min(128))) };
            Some(format!("{}/{v6_prefix}", std::net::Ipv6Addr::from(bits & mask)))
        }
    }
}

/// The `sub` claim of `Authorization: Bearer <jwt>`, decoded without verification.
pub fn jwt_sub(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth.trim().strip_prefix("Bearer ").or_else(|| auth.trim().strip_prefix("bearer "))?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match &claims["sub"] {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Base64url (RFC 4648 §5) as JWTs use it, padding tolerated; plain base64 accepted too.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let s = s.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s)).ok()
}

/// The key for a request, or `None` when a part is missing (e.g. no API key header): such
/// requests are not counted under this key.
pub fn request_key(parts: &[KeyPart], client_ip: Option<&str>, headers: &HeaderMap) -> Option<String> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(match p {
            KeyPart::Ip { v6_prefix } => format!("ip={}", client_ip_key(client_ip?, *v6_prefix)?),
            KeyPart::Header(h) => format!("{h}={}", headers.get(h.as_str())?.to_str().ok()?.trim()),
            KeyPart::JwtSub => format!("sub={}", jwt_sub(headers)?),
        });
    }
    Some(out.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn ipv6_grouped_by_prefix() {
        assert_eq!(client_ip_key("2001:db8:1:2:3:4:5:6", 64).unwrap(), "2001:db8:1:2::/64");
        assert_eq!(client_ip_key("2001:db8:1:2:ffff::1", 64), client_ip_key("2001:db8:1:2::9", 64), "same /64");
        assert_ne!(client_ip_key("2001:db8:1:3::1", 64), client_ip_key("2001:db8:1:2::1", 64));
        assert_eq!(client_ip_key("2001:db8:1:3::1", 48).unwrap(), "2001:db8:1::/48");
        assert_eq!(client_ip_key("203.0.113.9", 64).unwrap(), "203.0.113.9");
        assert_eq!(client_ip_key("not-an-ip", 64), None);
    }

    #[test]
    fn parts_and_keys() {
        assert_eq!(KeyPart::parse("ip/56").unwrap(), KeyPart::Ip { v6_prefix: 56 });
        assert_eq!(KeyPart::parse("header:X-API-Key").unwrap(), KeyPart::Header("x-api-key".into()));
        assert!(KeyPart::parse("ip/129").is_err() && KeyPart::parse("cookie").is_err() && KeyPart::parse("header:").is_err());
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k1"));
        // {"sub":"user-7"} as base64url
        h.insert("authorization", HeaderValue::from_static("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTcifQ.sig"));
        let parts = [KeyPart::Ip { v6_prefix: 64 }, KeyPart::Header("x-api-key".into()), KeyPart::JwtSub];
        assert_eq!(request_key(&parts, Some("198.51.100.1"), &h).unwrap(), "ip=198.51.100.1&x-api-key=k1&sub=user-7");
        assert_eq!(request_key(&parts, None, &h), None, "no client IP: not counted under an ip key");
        assert_eq!(jwt_sub(&HeaderMap::new()), None);
    }
}
