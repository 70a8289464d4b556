//! The one parser of weighted lists (`Accept`, `Accept-Encoding`: RFC 9110 §12.4.2) that
//! content negotiation uses, for codings and for image formats alike.

/// One member of a weighted list: its name (lower case; a media range or a coding) and its
/// weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    /// The member, lower case, parameters other than `q` dropped.
    pub name: String,
    /// Its `q` (1 when absent; 0 when invalid or out of 0..=1, so a malformed member never
    /// wins).
    pub q: f32,
}

/// Parses a weighted list. Empty members are skipped; the `q` parameter's name is
/// case-insensitive (§12.4.2).
pub fn parse(list: &str) -> Vec<Weighted> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
            }
        }
        out.push(Weighted { name, q });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_names_and_malformed_members() {
        let w = parse("BR;q=0.5, gzip , , image/*;Q=0.8;level=1, x;q=2, y;q=abc, identity");
        let got: Vec<(&str, f32)> = w.iter().map(|w| (w.name.as_str(), w.q)).collect();
        assert_eq!(got, [("br", 0.5), ("gzip", 1.0), ("image/*", 0.8), ("x", 0.0), ("y", 0.0), ("identity", 1.0)]);
        assert!(parse("").is_empty());
    }
}
