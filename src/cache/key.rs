//! Cache keys: a normalised URL (query per rule), plus a hash of the rule's key headers and
//! cookies, plus (for responses with `Vary`) a hash of the request's values of those headers.
//! Keys are URLs because the Cache API keys by URL.

use crate::rules::{CacheKeySpec, QueryKey};
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// Query parameter carrying the hash of rule key parts (headers, cookies).
pub const KEY_PARAM: &str = "__edgelayer_k";
/// Query parameter carrying the hash of `Vary` values.
pub const VARIANT_PARAM: &str = "__edgelayer_v";

fn short_hash(parts: &[String]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The canonical form of a request header value for variant selection. `Accept-Encoding` is
/// reduced to what the edge stores: `br` (brotli bytes) or `identity` (gzip clients share it; the
/// platform gzips on the way out), so hundreds of browser spellings share two variants; other
/// values are trimmed, lower-cased and whitespace-collapsed.
pub fn normalize_vary_value(name: &str, headers: &HeaderMap) -> String {
    let joined: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    let joined = joined.join(",");
    if name == "accept-encoding" {
        let stored = match crate::compress::preferred_coding(&joined) {
            crate::compress::Coding::Br => crate::compress::Coding::Br,
            _ => crate::compress::Coding::Identity,
        };
        return stored.as_str().to_owned();
    }
    joined.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The key of an image variant: the source, its canonical options and the `Accept` bucket.
/// The Cache API ignores fragments, so the bucket goes in the query.
pub fn image_key(scheme: &str, host: &str, canonical_options: &str, source: &str, accept_bucket: &str) -> String {
    let sep = if source.contains('?') { '&' } else { '?' };
    format!("{scheme}://{}{}{canonical_options}/{}{sep}edgelayer-accept={accept_bucket}", host.to_ascii_lowercase(), crate::image::params::PREFIX, source.trim_start_matches('/'))
}

/// The key under which an image's source is kept for its other sizes: the variant key form
/// with `source` for options, which no URL can produce (the option grammar has no `source`),
/// so a client cannot place an entry there.
pub fn image_source_key(scheme: &str, host: &str, source: &str) -> String {
    image_key(scheme, host, "source", source, "any")
}

/// The primary key for a request under a rule's key spec.
pub fn primary_key(scheme: &str, host: &str, path: &str, query: Option<&str>, spec: &CacheKeySpec, headers: &HeaderMap) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k != KEY_PARAM && k != VARIANT_PARAM)
        .filter(|(k, _)| match &spec.query {
            QueryKey::All => true,
            QueryKey::Ignore => false,
            QueryKey::Include(keep) => keep.iter().any(|x| x == k),
            QueryKey::Exclude(drop) => !drop.iter().any(|x| x == k),
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if spec.sort_query {
        pairs.sort();
    }
    let mut key = format!("{scheme}://{}{path}", host.to_ascii_lowercase());
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        ser.append_pair(k, v);
    }
    if !spec.headers.is_empty() || !spec.cookies.is_empty() {
        let mut parts: Vec<String> = spec.headers.iter().map(|h| format!("h:{h}={}", normalize_vary_value(h.as_str(), headers))).collect();
        parts.extend(spec.cookies.iter().map(|c| format!("c:{c}={}", cookie_value(headers, c).unwrap_or(""))));
        ser.append_pair(KEY_PARAM, &short_hash(&parts));
    }
    let q = ser.finish();
    if !q.is_empty() {
        key.push('?');
        key.push_str(&q);
    }
    key
}

/// The key of one variant of a response that varies on `vary` (lower-case names).
pub fn variant_key(primary: &str, vary: &[String], headers: &HeaderMap) -> String {
    if vary.is_empty() {
        return primary.to_owned();
    }
    let parts: Vec<String> = vary.iter().map(|name| format!("{name}={}", normalize_vary_value(name, headers))).collect();
    let sep = if primary.contains('?') { '&' } else { '?' };
    format!("{primary}{sep}{VARIANT_PARAM}={}", short_hash(&parts))
}

/// Whether a response varies on the encoding alone (the edge adds `Vary: Accept-Encoding` to
/// every compressible response, so most stored text does). Such an entry has exactly two
/// possible variant keys ([`encoding_variant_keys`]), which lets a lookup read the variant
/// directly and a write, a purge or a changed `Vary` delete every variant.
pub fn varies_on_encoding_only(vary: &[String]) -> bool {
    vary.len() == 1 && vary[0] == "accept-encoding"
}

/// The two variant keys of an entry that varies on the encoding alone: the brotli and the
/// identity copy (gzip clients share identity: [`normalize_vary_value`]).
pub fn encoding_variant_keys(primary: &str) -> [String; 2] {
    let vary = ["accept-encoding".to_owned()];
    let with = |coding: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT_ENCODING, http::HeaderValue::from_static(coding));
        variant_key(primary, &vary, &h)
    };
    [with("br"), with("identity")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn no_url_reaches_the_image_source_key() {
        let key = image_source_key("https", "Ex.com", "/img/a.jpg?v=1");
        assert_eq!(key, "https://ex.com/cdn-cgi/image/source/img/a.jpg?v=1&edgelayer-accept=any");
        assert!(crate::image::params::parse("source", &crate::image::params::ImageLimits::default()).is_err(), "no variant has the options `source`");
    }

    #[test]
    fn encoding_variants_are_the_two_stored_copies() {
        let vary = ["accept-encoding".to_owned()];
        let [br, identity] = encoding_variant_keys("https://x/a?b=1");
        let mut h = HeaderMap::new();
        h.insert("accept-encoding", HeaderValue::from_static("gzip, deflate, br"));
        assert_eq!(variant_key("https://x/a?b=1", &vary, &h), br);
        assert_eq!(variant_key("https://x/a?b=1", &vary, &HeaderMap::new()), identity);
        h.insert("accept-encoding", HeaderValue::from_static("gzip"));
        assert_eq!(variant_key("https://x/a?b=1", &vary, &h), identity, "gzip clients share identity");
        assert!(varies_on_encoding_only(&vary));
        assert!(!varies_on_encoding_only(&["accept-encoding".to_owned(), "accept-language".to_owned()]));
        assert!(!varies_on_encoding_only(&[]));
    }

    fn spec(query: QueryKey, sort: bool) -> CacheKeySpec {
        CacheKeySpec { query, sort_query: sort, ..Default::default() }
    }

    #[test]
    fn query_modes() {
        let h = HeaderMap::new();
        let k = |s: &CacheKeySpec, q| primary_key("https", "Shop.Example", "/p", q, s, &h);
        assert_eq!(k(&spec(QueryKey::All, true), Some("b=2&a=1")), "https://shop.example/p?a=1&b=2");
        assert_eq!(k(&spec(QueryKey::All, false), Some("b=2&a=1")), "https://shop.example/p?b=2&a=1");
        assert_eq!(k(&spec(QueryKey::Ignore, true), Some("utm=x")), "https://shop.example/p");
        assert_eq!(k(&spec(QueryKey::Include(vec!["id".into()]), true), Some("utm=x&id=3")), "https://shop.example/p?id=3");
        assert_eq!(k(&spec(QueryKey::Exclude(vec!["utm".into()]), true), Some("utm=x&id=3")), "https://shop.example/p?id=3");
        assert_eq!(k(&spec(QueryKey::All, true), Some("__edgelayer_v=forged")), "https://shop.example/p", "clients cannot forge key params");
        assert_eq!(k(&spec(QueryKey::All, true), Some("q=a%20b")), k(&spec(QueryKey::All, true), Some("q=a+b")));
    }

    #[test]
    fn key_headers_and_cookies_split_entries() {
        let s = CacheKeySpec { headers: vec![http::HeaderName::from_static("x-tenant")], cookies: vec!["lang".into()], ..Default::default() };
        let mut a = HeaderMap::new();
        a.insert("x-tenant", HeaderValue::from_static("one"));
        a.insert("cookie", HeaderValue::from_static("lang=en; other=1"));
        let mut b = a.clone();
        b.insert("cookie", HeaderValue::from_static("lang=fr"));
        let ka = primary_key("https", "h", "/", None, &s, &a);
        assert_ne!(ka, primary_key("https", "h", "/", None, &s, &b));
        a.insert("cookie", HeaderValue::from_static("other=2; lang=en"));
        assert_eq!(ka, primary_key("https", "h", "/", None, &s, &a), "only the named cookie counts");
    }

    #[test]
    fn variants_normalise_accept_encoding() {
        let vary = vec!["accept-encoding".to_owned()];
        let with = |ae: &str| {
            let mut h = HeaderMap::new();
            h.insert("accept-encoding", HeaderValue::from_str(ae).unwrap());
            variant_key("https://h/p", &vary, &h)
        };
        assert_eq!(with("gzip, deflate, br"), with("br;q=1.0, gzip;q=0.8"));
        assert_ne!(with("gzip"), with("br"));
        assert_eq!(with("gzip"), with("identity"), "gzip clients share the identity copy");
        assert_eq!(with("identity"), variant_key("https://h/p", &vary, &HeaderMap::new()));
        assert!(with("br").starts_with("https://h/p?__edgelayer_v="));
        assert_eq!(variant_key("https://h/p?a=1", &[], &HeaderMap::new()), "https://h/p?a=1");
    }
}
