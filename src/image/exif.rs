//! `metadata=copyright|keep`: a new, minimal EXIF block holding only chosen text tags of the
//! source's first IFD. Everything else (GPS position, thumbnails, maker notes, and the
//! orientation, already applied to the pixels) is left out.

/// Copyright and Artist.
pub const COPYRIGHT_TAGS: &[u16] = &[0x8298, 0x013B];
/// Those plus description, camera make and model, software and date.
pub const KEEP_TAGS: &[u16] = &[0x8298, 0x013B, 0x010E, 0x010F, 0x0110, 0x0131, 0x0132];

const ASCII: u16 = 2;

/// The ASCII values of `tags` found in IFD0 of `exif` (with or without the `Exif\0\0` prefix),
/// as a little-endian TIFF block; `None` when none is present or the block is malformed.
pub fn keep(exif: &[u8], tags: &[u16]) -> Option<Vec<u8>> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let le = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |o: usize| tiff.get(o..o + 2).map(|b| if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) });
    let u32_at = |o: usize| tiff.get(o..o + 4).map(|b| if le { u32::from_le_bytes([b[0], b[1], b[2], b[3]]) } else { u32::from_be_bytes([b[0], b[1], b[2], b[3]]) });
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    let mut found: Vec<(u16, Vec<u8>)> = Vec::new();
    for i in 0..count.min(512) {
        let e = ifd + 2 + i * 12;
        let (tag, kind, n) = (u16_at(e)?, u16_at(e + 2)?, u32_at(e + 4)? as usize);
        if kind != ASCII || !tags.contains(&tag) || n == 0 || n > 4096 {
            continue;
        }
        let at = if n <= 4 { e + 8 } else { u32_at(e + 8)? as usize };
        let mut value = tiff.get(at..at + n)?.to_vec();
        if value.last() != Some(&0) {
            value.push(0);
        }
        found.push((tag, value));
    }
    if found.is_empty() {
        return None;
    }
    found.sort_by_key(|(t, _)| *t);
    // Header (8) + entry count (2) + entries (12 each) + next-IFD offset (4), then the values.
    let mut data_at = 8 + 2 + 12 * found.len() + 4;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(found.len() as u16).to_le_bytes());
    let mut data = Vec::new();
    for (tag, value) in &found {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&ASCII.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        if value.len() <= 4 {
            let mut inline = [0u8; 4];
            inline[..value.len()].copy_from_slice(value);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(data_at as u32).to_le_bytes());
            data.extend_from_slice(value);
            data_at += value.len();
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&data);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A big-endian EXIF block with Orientation, Copyright and a GPS pointer.
    fn sample() -> Vec<u8> {
        let mut t = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
        t.extend_from_slice(&3u16.to_be_bytes());
        let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, n: u32, v: u32| {
            t.extend_from_slice(&tag.to_be_bytes());
            t.extend_from_slice(&kind.to_be_bytes());
            t.extend_from_slice(&n.to_be_bytes());
            t.extend_from_slice(&v.to_be_bytes());
        };
        entry(&mut t, 0x0112, 3, 1, 6 << 16);
        entry(&mut t, 0x8298, 2, 12, 8 + 2 + 36 + 4);
        entry(&mut t, 0x8825, 4, 1, 0);
        t.extend_from_slice(&0u32.to_be_bytes());
        t.extend_from_slice(b"(c) Someone\0");
        t
    }

    #[test]
    fn keeps_only_copyright() {
        let out = keep(&sample(), COPYRIGHT_TAGS).unwrap();
        assert_eq!(&out[..4], b"II*\0");
        assert_eq!(u16::from_le_bytes([out[8], out[9]]), 1, "one entry");
        assert_eq!(u16::from_le_bytes([out[10], out[11]]), 0x8298);
        assert!(out.windows(11).any(|w| w == b"(c) Someone"));
        assert_eq!(keep(&out, COPYRIGHT_TAGS).unwrap(), out, "its own output parses");
    }

    #[test]
    fn malformed_or_empty_gives_none() {
        assert_eq!(keep(b"", KEEP_TAGS), None);
        assert_eq!(keep(b"XX\0\x2a", KEEP_TAGS), None);
        let s = sample();
        assert_eq!(keep(&s[..20], KEEP_TAGS), None, "truncated");
        assert_eq!(keep(&s, &[0x010F]), None, "tag absent");
    }
}
