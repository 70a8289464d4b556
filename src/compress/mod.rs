//! Content-coding negotiation (RFC 9110 §12.5.3): which coding a client gets.

/// A content coding the edge can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Coding {
    /// No coding.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// Brotli (RFC 7932).
    Br,
}

impl Coding {
    /// The token used in `Content-Encoding` / `Accept-Encoding`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Br => "br",
        }
    }
}

/// The coding to send for an `Accept-Encoding` value: highest q-value wins, ties go to
/// `br`, then `gzip`, then `identity`. `*` stands for codings not listed. `identity` is
/// acceptable unless refused with `q=0` (directly or through `*;q=0`); an empty or absent
/// header means identity only. When nothing is acceptable, identity is returned (servers commonly
/// do so rather than answer 406).
pub fn preferred_coding(accept_encoding: &str) -> Coding {
    let mut listed: Vec<(String, f32)> = Vec::new();
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")) {
                q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
            }
        }
        listed.push((name, q));
    }
    let star = listed.iter().find(|(n, _)| n == "*").map(|(_, q)| *q);
    let q = |c: Coding| -> f32 {
        let names: &[&str] = match c {
            Coding::Br => &["br"],
            Coding::Gzip => &["gzip", "x-gzip"],
            Coding::Identity => &["identity"],
        };
        match listed.iter().find(|(n, _)| names.contains(&n.as_str())) {
            Some((_, q)) => *q,
            // Unlisted identity is acceptable (unless `*;q=0`) but least preferred.
            None if c == Coding::Identity => star.map_or(0.001, |s| if s == 0.0 { 0.0 } else { 0.001 }),
            None => star.unwrap_or(0.0),
        }
    };
    let mut best = (Coding::Identity, q(Coding::Identity));
    for c in [Coding::Gzip, Coding::Br] {
        let qc = q(c);
        if qc > 0.0 && qc >= best.1 {
            best = (c, qc);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_table() {
        let cases = [
            ("", Coding::Identity),
            ("gzip, deflate, br, zstd", Coding::Br),
            ("gzip", Coding::Gzip),
            ("br;q=0.5, gzip;q=0.8", Coding::Gzip),
            ("br;q=0.8, gzip;q=0.8", Coding::Br),
            ("*", Coding::Br),
            ("*;q=0.5, gzip;q=0", Coding::Br),
            ("br;q=0, gzip;q=0", Coding::Identity),
            ("identity", Coding::Identity),
            ("identity;q=1, br;q=0.1", Coding::Identity),
            ("x-gzip", Coding::Gzip),
            ("BR;Q=1", Coding::Br),
            ("br;q=garbage", Coding::Identity),
            ("deflate", Coding::Identity),
        ];
        for (header, want) in cases {
            assert_eq!(preferred_coding(header), want, "{header:?}");
        }
    }
}
