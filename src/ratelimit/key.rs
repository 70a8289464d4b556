//! Who a request counts against: the client IP (from `CF-Connecting-IP` only; IPv6 grouped by
//! prefix), an API key header, a user id header, a JWT's `sub` (decoded, not verified: anyone can
//! send any `sub` and so spend another user's budget; combine it with `ip` where that matters),
//! a cookie, a query parameter, the path, the client's country or network (ASN, from
//! `request.cf`: placeholders locally), or a combination. Values are percent-escaped so no value can
//! pose as another part, and long ones are hashed (a key names a Durable Object).

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
    /// The value of this cookie.
    Cookie(String),
    /// The value of this query parameter.
    Query(String),
    /// The URL path.
    Path,
    /// `request.cf.country`.
    Country,
    /// `request.cf.asn`.
    Asn,
}

impl KeyPart {
    /// Parses `ip`, `ip/48`, `header:x-api-key`, `jwt_sub`, `cookie:NAME`, `query:NAME`,
    /// `path`, `country`, `asn`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "ip" => Ok(Self::Ip { v6_prefix: 64 }),
            "jwt_sub" => Ok(Self::JwtSub),
            "path" => Ok(Self::Path),
            "country" => Ok(Self::Country),
            "asn" => Ok(Self::Asn),
            other => {
                for (prefix, make) in [("cookie:", Self::Cookie as fn(String) -> Self), ("query:", Self::Query)] {
                    if let Some(name) = other.strip_prefix(prefix) {
                        let name = name.trim();
                        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && !b"=;,&".contains(&b)) {
                            return Err(format!("{other:?}: not a {} name", prefix.trim_end_matches(':')));
                        }
                        return Ok(make(name.to_owned()));
                    }
                }
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
                Err(format!("{other:?} is not ip, ip/N, header:NAME, jwt_sub, cookie:NAME, query:NAME, path, country or asn"))
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

/// What a key may be made of, read once per request.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// `CF-Connecting-IP`.
    pub client_ip: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The URL path.
    pub path: &'a str,
    /// The URL query.
    pub query: Option<&'a str>,
    /// `request.cf.country`.
    pub country: Option<&'a str>,
    /// `request.cf.asn`.
    pub asn: Option<u32>,
}

/// The value of cookie `name` in the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// Longest value kept as is in a key; longer ones are replaced by their SHA-256.
const MAX_VALUE: usize = 128;

/// A value as it goes into a key: percent-escaped (`&`, `=`, `%` and controls), hashed when long.
fn escaped(value: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const SET: &AsciiSet = &CONTROLS.add(b'&').add(b'=').add(b'%').add(b' ');
    if value.len() > MAX_VALUE {
        use sha2::{Digest, Sha256};
        return format!("sha256:{}", hex::encode(Sha256::digest(value.as_bytes())));
    }
    utf8_percent_encode(value, SET).to_string()
}

/// The key for a request, or `None` when a part is missing (e.g. no API key header, no such
/// cookie): such requests are not counted under this key.
pub fn request_key(parts: &[KeyPart], inputs: &KeyInputs<'_>) -> Option<String> {
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        out.push(match p {
            KeyPart::Ip { v6_prefix } => format!("ip={}", client_ip_key(inputs.client_ip?, *v6_prefix)?),
            KeyPart::Header(h) => format!("{h}={}", escaped(inputs.headers.get(h.as_str())?.to_str().ok()?.trim())),
            KeyPart::JwtSub => format!("sub={}", escaped(&jwt_sub(inputs.headers)?)),
            KeyPart::Cookie(name) => format!("cookie.{name}={}", escaped(cookie(inputs.headers, name).filter(|v| !v.is_empty())?)),
            KeyPart::Query(name) => {
                let value = url::form_urlencoded::parse(inputs.query?.as_bytes()).find(|(k, _)| k == name.as_str())?.1;
                format!("query.{name}={}", escaped(&value))
            }
            KeyPart::Path => format!("path={}", escaped(inputs.path)),
            KeyPart::Country => format!("country={}", escaped(inputs.country?)),
            KeyPart::Asn => format!("asn={}", inputs.asn?),
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
        let inputs = KeyInputs { client_ip: Some("198.51.100.1"), headers: &h, path: "/login", query: None, country: None, asn: None };
        assert_eq!(request_key(&parts, &inputs).unwrap(), "ip=198.51.100.1&x-api-key=k1&sub=user-7");
        assert_eq!(request_key(&parts, &KeyInputs { client_ip: None, ..inputs }), None, "no client IP: not counted under an ip key");
        assert_eq!(jwt_sub(&HeaderMap::new()), None);
    }

    #[test]
    fn cookie_query_path_country_and_asn_parts() {
        let parse = |s: &str| KeyPart::parse(s).unwrap();
        assert_eq!(parse("cookie:session"), KeyPart::Cookie("session".into()));
        assert!(KeyPart::parse("cookie:").is_err() && KeyPart::parse("query:a=b").is_err());
        let mut h = HeaderMap::new();
        h.append("cookie", HeaderValue::from_static("theme=dark; session=abc"));
        h.append("cookie", HeaderValue::from_static("other=1"));
        let inputs = KeyInputs { client_ip: None, headers: &h, path: "/login", query: Some("user=a%26b&x=1"), country: Some("NZ"), asn: Some(13335) };
        let parts = [parse("cookie:session"), parse("query:user"), parse("path"), parse("country"), parse("asn")];
        assert_eq!(request_key(&parts, &inputs).unwrap(), "cookie.session=abc&query.user=a%26b&path=/login&country=NZ&asn=13335", "a value cannot pose as another part");
        assert_eq!(request_key(&[parse("cookie:other")], &inputs).unwrap(), "cookie.other=1", "every Cookie header is read");
        assert_eq!(request_key(&[parse("cookie:none")], &inputs), None);
        assert_eq!(request_key(&[parse("country")], &KeyInputs { country: None, ..inputs }), None, "locally there is no request.cf");
        let long = "x".repeat(500);
        let mut lh = HeaderMap::new();
        lh.insert("x-user", HeaderValue::from_str(&long).unwrap());
        let key = request_key(&[KeyPart::Header("x-user".into())], &KeyInputs { headers: &lh, ..inputs }).unwrap();
        assert!(key.starts_with("x-user=sha256:") && key.len() < 100, "{key}");
    }
}
