//! W3C Trace Context (`traceparent`, version 00): a valid incoming header keeps its trace id
//! (the client's trace goes on through the edge), anything else starts a new trace. The edge is
//! one span: the origin is sent the same trace id with the edge's own span id as parent, and
//! `tracestate` goes along untouched. Pure: the random ids come in.

/// One hop's trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// The caller's span (16 hex digits), when the request carried one.
    pub parent_id: Option<String>,
    /// This edge's span, sent to the origin as its parent.
    pub span_id: String,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// Reads a `traceparent` value: `Some((trace_id, parent_id, flags))` when valid.
pub fn parse(value: &str) -> Option<(String, String, u8)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; a later version may add more (read the four).
    if !is_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !is_hex(trace, 32) || all_zero(trace) || !is_hex(parent, 16) || all_zero(parent) || !is_hex(flags, 2) {
        return None;
    }
    Some((trace.to_owned(), parent.to_owned(), u8::from_str_radix(flags, 16).ok()?))
}

impl TraceContext {
    /// The context for a request carrying `incoming` (its `traceparent`, if any). `new_trace`
    /// (32 hex) is used when there is no valid one; `new_span` (16 hex) is this edge's span.
    pub fn continue_or_start(incoming: Option<&str>, new_trace: &str, new_span: &str) -> Self {
        match incoming.and_then(parse) {
            Some((trace_id, parent, flags)) => Self { trace_id, parent_id: Some(parent), span_id: new_span.to_owned(), flags },
            None => Self { trace_id: new_trace.to_owned(), parent_id: None, span_id: new_span.to_owned(), flags: 1 },
        }
    }

    /// The `traceparent` sent to the origin: this trace, with the edge's span as parent.
    pub fn outgoing(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const P: &str = "00f067aa0ba902b7";

    #[test]
    fn a_valid_traceparent_is_continued() {
        let tc = TraceContext::continue_or_start(Some(&format!("00-{T}-{P}-01")), &"a".repeat(32), "1111111111111111");
        assert_eq!((tc.trace_id.as_str(), tc.parent_id.as_deref(), tc.flags), (T, Some(P), 1));
        assert_eq!(tc.outgoing(), format!("00-{T}-1111111111111111-01"), "the edge is the origin's parent");
        assert!(parse(&format!("01-{T}-{P}-00-extra")).is_some(), "a later version may add fields");
    }

    #[test]
    fn anything_else_starts_a_new_trace() {
        for bad in [
            String::new(),
            format!("00-{T}-{P}"),
            format!("00-{}-{P}-01", "0".repeat(32)),
            format!("00-{T}-{}-01", "0".repeat(16)),
            format!("00-{}-{P}-01", T.to_uppercase()),
            format!("ff-{T}-{P}-01"),
            format!("00-{T}-{P}-01-extra"),
            format!("00-{T}-{P}-zz"),
        ] {
            let tc = TraceContext::continue_or_start(Some(&bad), &"a".repeat(32), "1111111111111111");
            assert_eq!((tc.trace_id, tc.parent_id), ("a".repeat(32), None), "{bad:?}");
        }
    }
}
