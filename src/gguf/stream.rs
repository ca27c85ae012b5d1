//! The GGUF header of a file that arrives in chunks (the browser's `fetch`): the bytes are kept until the header
//! is complete, and [`parse_header`] runs again only once the prefix has reached the length it asked for *and*
//! doubled since the last attempt, so a header fed in small chunks is parsed O(log n) times, O(n) work in all
//! (re-parsing on every chunk was quadratic in the header size).

use super::{parse_header, GgufError, GgufHeader, HeaderStatus, Result};

#[derive(Debug, Default)]
pub struct HeaderStream {
    prefix: Vec<u8>,
    /// No attempt gets further before the prefix is this long.
    next_attempt: usize,
    header: Option<GgufHeader>,
    attempts: usize,
}

impl HeaderStream {
    pub fn new() -> Self {
        HeaderStream { next_attempt: 1, ..Default::default() }
    }

    /// Feeds the next chunk; an error as soon as a parse finds the bytes invalid (a first chunk that is not
    /// GGUF fails at once). Chunks after the header is complete are ignored.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        if self.header.is_some() {
            return Ok(());
        }
        self.prefix.extend_from_slice(chunk);
        if self.prefix.len() < self.next_attempt {
            return Ok(());
        }
        self.attempts += 1;
        match parse_header(&self.prefix)? {
            HeaderStatus::Incomplete { need } => self.next_attempt = need.max(2 * self.prefix.len()),
            HeaderStatus::Complete(h) => {
                self.header = Some(h);
                self.prefix = Vec::new();
            }
        }
        Ok(())
    }

    /// At the end of the file: the header, parsed now if the last chunks came before the next attempt was due.
    pub fn finish(&mut self) -> Result<&GgufHeader> {
        if self.header.is_none() {
            self.attempts += 1;
            match parse_header(&self.prefix)? {
                HeaderStatus::Complete(h) => self.header = Some(h),
                HeaderStatus::Incomplete { need } => {
                    let found = self.prefix.len() as u64;
                    return Err(GgufError::Truncated { what: "the header", expected: need as u64, found });
                }
            }
        }
        Ok(self.header.as_ref().expect("set above"))
    }

    /// The header, once complete.
    pub fn header(&self) -> Option<&GgufHeader> {
        self.header.as_ref()
    }

    /// How many times the prefix was parsed.
    pub fn attempts(&self) -> usize {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{GgmlType, GgufWriter};

    #[test]
    fn a_big_header_in_small_chunks_is_parsed_a_logarithmic_number_of_times() {
        let mut w = GgufWriter::new();
        for i in 0..3000 {
            w.add_tensor(&format!("blocks.{i}.weight"), &[1], GgmlType::F32, &[i as f32]).unwrap();
        }
        let bytes = w.to_bytes().unwrap();
        let HeaderStatus::Complete(whole) = parse_header(&bytes).unwrap() else { panic!("complete") };
        let mut s = HeaderStream::new();
        for chunk in bytes.chunks(64) {
            s.push(chunk).unwrap();
        }
        let got = s.finish().unwrap();
        assert!(got == &whole, "the streamed header equals the whole file's ({} tensors)", got.tensors.len());
        let bound = 2 * (usize::BITS - bytes.len().leading_zeros()) as usize + 2;
        assert!(s.attempts() <= bound, "{} parses of a {}-byte file (at most {bound})", s.attempts(), bytes.len());
    }

    #[test]
    fn the_end_of_the_file_completes_or_refuses_the_header() {
        let bytes = GgufWriter::new().to_bytes().unwrap();
        let mut s = HeaderStream::new();
        s.push(&bytes[..5]).unwrap();
        s.push(&bytes[5..]).unwrap(); // under twice the last attempt's length: not parsed yet
        assert_eq!(s.finish().unwrap().tensors.len(), 0);
        let mut cut = HeaderStream::new();
        cut.push(&bytes[..20]).unwrap();
        assert!(cut.finish().unwrap_err().to_string().contains("truncated GGUF file: the header needs"));
    }

    #[test]
    fn a_file_that_is_not_gguf_fails_on_its_first_chunk() {
        let mut s = HeaderStream::new();
        let err = s.push(b"<!doctype html><p>404</p>").unwrap_err().to_string();
        assert!(err.contains("GGUF"), "{err}");
    }
}
