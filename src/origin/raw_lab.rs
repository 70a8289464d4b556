//! The raw lab (`--lab-raw-addr`, needs `--lab`): an HTTP/1.1 listener written by hand so tests
//! can make an origin misbehave in ways a correct server library refuses to: any status line
//! (`102`, `999`), interim responses before the final one, repeated or `Connection`-listed
//! header lines, unknown `Transfer-Encoding`, a refusal that closes before reading the body.
//!
//! `ANY <path>?status=&reason=&interim=&line=&body=&te=&refuse=&close=`:
//! - `status=N` (default 200) and `reason=` go in the status line verbatim;
//! - `interim=N` (repeat) sends `HTTP/1.1 N` interim responses first;
//! - `line=Name: Value` (repeat) adds a header line as written (duplicates stay separate lines);
//! - `body=` the body (default: a JSON echo of the request: method, path, header lines, hits,
//!   body_bytes);
//! - `te=VALUE` sends `Transfer-Encoding: VALUE` and the body unframed, then closes;
//! - `refuse=N` answers status N at once without reading the request body, then closes (what a
//!   server with a body limit does with an upload that is too large);
//! - `delay_ms=N` waits that long (at most [`super::lab::MAX_DELAY`]) before answering;
//! - `close=1` closes the connection after the response.
//!
//! Hits are counted in the lab's counters (`GET /_lab/hits?path=` on the main port).
//!
//! # Beware
//! This is a test tool: it reads at most [`MAX_HEAD`] bytes of request head and drains at most
//! [`super::lab::MAX_ECHO_BODY`] bytes of body, and it never runs unless asked for.

use super::lab::{LabState, MAX_ECHO_BODY};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest request head read.
pub const MAX_HEAD: usize = 64 * 1024;

/// Serves the raw lab on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, lab: Arc<LabState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let lab = lab.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &lab).await {
                tracing::debug!(error = %e, "raw lab connection ended");
            }
        });
    }
}

/// One parsed request head.
struct Head {
    method: String,
    path: String,
    query: String,
    lines: Vec<(String, String)>,
    content_length: usize,
}

fn parse_head(raw: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut head = Head { method, path: path.to_owned(), query: query.to_owned(), lines: Vec::new(), content_length: 0 };
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.trim().parse().ok()?;
        }
        head.lines.push((name.to_owned(), value.trim().to_owned()));
    }
    Some(head)
}

async fn connection(mut stream: TcpStream, lab: &LabState) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let Some(head) = parse_head(&buf[..end]) else {
            stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
            return Ok(());
        };
        buf.drain(..end + 4);
        let params: Vec<(String, String)> = form_urlencoded::parse(head.query.as_bytes()).into_owned().collect();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let hits = lab.hit(&head.path);

        if let Some(status) = param("refuse") {
            let msg = format!("HTTP/1.1 {status} Refused\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: close\r\n\r\nbody refused\r\n");
            stream.write_all(msg.as_bytes()).await?;
            return Ok(());
        }
        // The body: what is already buffered, then the rest (drained, bounded).
        let want = head.content_length.min(MAX_ECHO_BODY);
        while buf.len() < want {
            let mut chunk = vec![0u8; 64 * 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body_bytes = want;
        buf.drain(..want);

        if let Some(ms) = param("delay_ms").and_then(|v| v.parse::<u64>().ok()) {
            tokio::time::sleep(std::time::Duration::from_millis(ms).min(super::lab::MAX_DELAY)).await;
        }
        let mut out = Vec::new();
        for (k, v) in &params {
            if k == "interim" {
                out.extend_from_slice(format!("HTTP/1.1 {v} Interim\r\n\r\n").as_bytes());
            }
        }
        let status = param("status").unwrap_or("200");
        let reason = param("reason").unwrap_or("Lab");
        out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
        for (k, v) in &params {
            if k == "line" {
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        let body = match param("body") {
            Some(b) => b.as_bytes().to_vec(),
            None => serde_json::json!({
                "method": head.method,
                "path": head.path,
                "query": head.query,
                "hits": hits,
                "lines": head.lines,
                "body_bytes": body_bytes,
            })
            .to_string()
            .into_bytes(),
        };
        let bodyless = head.method == "HEAD" || matches!(status, "204" | "304") || status.starts_with('1');
        let close = param("close") == Some("1") || param("te").is_some();
        if param("body").is_none() && !params.iter().any(|(k, v)| k == "line" && v.to_ascii_lowercase().starts_with("content-type:")) {
            out.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        match param("te") {
            Some(te) => out.extend_from_slice(format!("Transfer-Encoding: {te}\r\n").as_bytes()),
            None if !bodyless || head.method == "HEAD" => out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes()),
            None => {}
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !bodyless {
            out.extend_from_slice(&body);
        }
        stream.write_all(&out).await?;
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head_with_repeated_lines() {
        let h = parse_head(b"PROPFIND /x/y?status=999&line=A:%201 HTTP/1.1\r\nHost: h\r\nAge: 1\r\nAge: 2\r\nContent-Length: 5").unwrap();
        assert_eq!((h.method.as_str(), h.path.as_str(), h.query.as_str(), h.content_length), ("PROPFIND", "/x/y", "status=999&line=A:%201", 5));
        assert_eq!(h.lines.iter().filter(|(n, _)| n == "Age").count(), 2);
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon").is_none());
    }
}
