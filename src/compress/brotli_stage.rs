//! A streaming brotli encoder with the same push-in / sink-out shape as the minifier.

use std::io::Write;

/// Adapts a byte sink closure to `io::Write` for the brotli crate.
struct SinkWriter<F: FnMut(&[u8])>(F);

impl<F: FnMut(&[u8])> Write for SinkWriter<F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (self.0)(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Brotli window (log2 bytes) for streamed responses: 4 MiB, brotli's default `lgwin` 22.
pub const LGWIN: u32 = 22;

/// Pushes bytes in, brotli-compressed bytes come out through the sink as blocks fill.
pub struct BrotliEncoder<F: FnMut(&[u8])> {
    writer: brotli::CompressorWriter<SinkWriter<F>>,
}

impl<F: FnMut(&[u8])> BrotliEncoder<F> {
    /// An encoder at `quality` (0..=11) writing to `sink`.
    pub fn new(quality: u32, sink: F) -> Self {
        Self { writer: brotli::CompressorWriter::new(SinkWriter(sink), 16 * 1024, quality.min(11), LGWIN) }
    }

    /// Compresses a chunk (output may lag: brotli emits whole blocks).
    pub fn write(&mut self, chunk: &[u8]) {
        // Writing into a closure sink cannot fail.
        let _ = self.writer.write_all(chunk);
    }

    /// Ends the stream, emitting the last block.
    pub fn finish(self) {
        drop(self.writer.into_inner());
    }
}

/// Compresses a whole buffer (tests, benchmarks).
pub fn compress(data: &[u8], quality: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = BrotliEncoder::new(quality, |b: &[u8]| out.extend_from_slice(b));
        enc.write(data);
        enc.finish();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn roundtrips_in_any_chunking() {
        let text: Vec<u8> = (0..200_000u32).flat_map(|i| format!("line {} of text\n", i % 977).into_bytes()).collect();
        let mut out = Vec::new();
        {
            let mut enc = BrotliEncoder::new(5, |b: &[u8]| out.extend_from_slice(b));
            for chunk in text.chunks(1013) {
                enc.write(chunk);
            }
            enc.finish();
        }
        assert!(out.len() < text.len() / 10);
        let mut back = Vec::new();
        brotli::Decompressor::new(&out[..], 4096).read_to_end(&mut back).unwrap();
        assert_eq!(back, text);
        assert!(!compress(b"", 11).is_empty(), "an empty stream is still a valid brotli stream");
    }
}
