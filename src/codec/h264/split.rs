//! Annex B byte-stream splitting: start codes in, NAL units out.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use crate::error::Diag;

/// Largest NAL unit [`NalSplitter`] keeps. Counted as every byte between the start code that opens
/// the NAL and the next start code (trailing zero bytes included); larger NAL units are dropped with
/// a warning.
pub const MAX_NAL_SIZE: usize = 16 * 1024 * 1024;

/// One NAL unit out of an Annex B stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nal {
    /// The NAL unit: header byte first, no start code, trailing zero bytes removed. Emulation
    /// prevention bytes are still in (this is the NAL, not its RBSP).
    pub data: Bytes,
    /// Absolute byte offset of the header byte in the input stream.
    pub offset: u64,
}

const START_CODE: &[u8; 3] = b"\x00\x00\x01";

/// Push splitter for an Annex B byte stream (H.264 Annex B).
///
/// Accepts 3- and 4-byte start codes (a 4-byte start code is a zero byte, which ends up trimmed
/// from the previous NAL, plus a 3-byte one). Output does not depend on how the input is chunked.
/// Bytes before the first start code are reported once (if any of them is non-zero). Memory is
/// bounded by [`MAX_NAL_SIZE`] plus the size of one push.
#[derive(Debug)]
pub struct NalSplitter {
    /// Bytes not yet emitted. When `in_nal`, `buf[0]` is the first byte of the current NAL.
    buf: BytesMut,
    /// Absolute offset of `buf[0]`.
    buf_offset: u64,
    /// Where the next start-code search begins in `buf`.
    scan_from: usize,
    /// A start code has been seen.
    in_nal: bool,
    /// The current NAL is over the limit: its bytes are thrown away until the next start code.
    dropping: bool,
    /// Before the first start code: offset of the first non-zero byte, if any.
    garbage_start: Option<u64>,
    finder: memmem::Finder<'static>,
}

impl Default for NalSplitter {
    fn default() -> Self {
        Self::new()
    }
}

fn trim_trailing_zeros(data: &[u8]) -> usize {
    data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

impl NalSplitter {
    pub fn new() -> Self {
        NalSplitter {
            buf: BytesMut::new(),
            buf_offset: 0,
            scan_from: 0,
            in_nal: false,
            dropping: false,
            garbage_start: None,
            finder: memmem::Finder::new(START_CODE).into_owned(),
        }
    }

    /// Absolute offset of the next byte to be pushed.
    pub fn position(&self) -> u64 {
        self.buf_offset + self.buf.len() as u64
    }

    /// Feeds bytes; appends every NAL unit that is now complete to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Nal>, warnings: &mut Vec<Diag>) {
        if data.is_empty() {
            return;
        }
        self.buf.extend_from_slice(data);
        self.split_buffered(out, warnings);
    }

    /// The splitter's own buffer, with room reserved for `want` more bytes, for a caller that
    /// reads its input straight into it: appending there and then calling
    /// [`Self::split_buffered`] is [`Self::push`] without copying the bytes. Append only.
    pub fn input_buffer(&mut self, want: usize) -> &mut BytesMut {
        self.buf.reserve(want);
        &mut self.buf
    }

    /// Splits what was appended to [`Self::input_buffer`].
    pub fn split_buffered(&mut self, out: &mut Vec<Nal>, warnings: &mut Vec<Diag>) {
        loop {
            let found = self.finder.find(&self.buf[self.scan_from..]);
            match found {
                Some(rel) => {
                    let p = self.scan_from + rel;
                    self.start_code_at(p, out, warnings);
                }
                None => {
                    // Up to two bytes at the end may begin a start code.
                    self.scan_from = self.buf.len().saturating_sub(2);
                    self.bound(warnings);
                    return;
                }
            }
        }
    }

    /// Ends the stream: emits the last NAL unit.
    pub fn finish(&mut self, out: &mut Vec<Nal>, warnings: &mut Vec<Diag>) {
        if self.in_nal {
            if !self.dropping {
                let len = trim_trailing_zeros(&self.buf);
                if len > 0 {
                    let data = self.buf.split().freeze().slice(..len);
                    out.push(Nal {
                        data,
                        offset: self.buf_offset,
                    });
                }
            }
        } else if let Some(start) = self.garbage_start {
            warnings.push(Diag::new(
                start,
                format!(
                    "expected an annex b start code (00 00 01), found none in {} bytes",
                    self.position() - start
                ),
            ));
        }
        let end = self.position();
        *self = NalSplitter::new();
        self.buf_offset = end;
    }

    /// A start code begins at `buf[p]`.
    fn start_code_at(&mut self, p: usize, out: &mut Vec<Nal>, warnings: &mut Vec<Diag>) {
        let code_offset = self.buf_offset + p as u64;
        let before = self.buf.split_to(p.min(self.buf.len()));
        if self.in_nal {
            if !self.dropping {
                if p > MAX_NAL_SIZE {
                    self.drop_warning(warnings);
                } else {
                    let len = trim_trailing_zeros(&before);
                    if len > 0 {
                        out.push(Nal {
                            data: before.freeze().slice(..len),
                            offset: self.buf_offset,
                        });
                    }
                }
            }
        } else if let Some(start) = self.garbage_start.take().or_else(|| {
            before
                .iter()
                .position(|&b| b != 0)
                .map(|i| self.buf_offset + i as u64)
        }) {
            warnings.push(Diag::new(
                start,
                format!(
                    "expected an annex b start code, skipped {} bytes before the first one",
                    code_offset - start
                ),
            ));
        }
        // Drop the start code itself.
        self.buf.advance(START_CODE.len().min(self.buf.len()));
        self.buf_offset = code_offset + START_CODE.len() as u64;
        self.scan_from = 0;
        self.in_nal = true;
        self.dropping = false;
    }

    fn drop_warning(&mut self, warnings: &mut Vec<Diag>) {
        warnings.push(Diag::new(
            self.buf_offset,
            format!(
                "expected a nal unit of at most {MAX_NAL_SIZE} bytes, found a larger one; dropped"
            ),
        ));
        self.dropping = true;
    }

    /// Keeps memory bounded after a search found no further start code.
    fn bound(&mut self, warnings: &mut Vec<Diag>) {
        let keep_from = self.buf.len().saturating_sub(2);
        if !self.in_nal {
            if self.garbage_start.is_none() {
                if let Some(i) = self.buf[..keep_from].iter().position(|&b| b != 0) {
                    self.garbage_start = Some(self.buf_offset + i as u64);
                }
            }
        } else if !self.dropping && keep_from > MAX_NAL_SIZE {
            // At least keep_from bytes lie before the next start code: over the limit.
            self.drop_warning(warnings);
        }
        if !self.in_nal || self.dropping {
            self.buf.advance(keep_from);
            self.buf_offset += keep_from as u64;
            self.scan_from = self.scan_from.saturating_sub(keep_from);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> (Vec<Nal>, Vec<Diag>) {
        let mut s = NalSplitter::new();
        let mut out = Vec::new();
        let mut w = Vec::new();
        for c in chunks {
            s.push(c, &mut out, &mut w);
        }
        s.finish(&mut out, &mut w);
        (out, w)
    }

    fn check_chunking(input: &[u8]) -> (Vec<Nal>, Vec<Diag>) {
        let whole = split_all(&[input]);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(split_all(&[a, b]), whole, "split at {i}");
        }
        let ones: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(split_all(&ones), whole, "1-byte pushes");
        whole
    }

    #[test]
    fn three_and_four_byte_start_codes() {
        let input = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88\x00\x00";
        let (nals, w) = check_chunking(input);
        assert!(w.is_empty());
        assert_eq!(
            nals,
            vec![
                Nal {
                    data: Bytes::from_static(b"\x09\xf0"),
                    offset: 4
                },
                Nal {
                    data: Bytes::from_static(b"\x67\x42"),
                    offset: 9
                },
                Nal {
                    data: Bytes::from_static(b"\x65\x88"),
                    offset: 15
                },
            ]
        );
    }

    #[test]
    fn leading_garbage_reported_once() {
        let input = b"\x12\x34\x00\x56\x00\x00\x01\x09\xf0\x00\x00\x01\x06\x01";
        let (nals, w) = check_chunking(input);
        assert_eq!(nals.len(), 2);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].offset, 0);
        assert!(w[0].message.contains("skipped 4 bytes"), "{}", w[0].message);
        // Leading zeros alone are not garbage.
        let (nals, w) = check_chunking(b"\x00\x00\x00\x00\x00\x01\x09\xf0");
        assert_eq!(nals.len(), 1);
        assert!(w.is_empty());
        // Garbage starting after some zeros: offset of the first non-zero byte.
        let (_, w) = check_chunking(b"\x00\x00\x07\x00\x00\x01\x09\xf0");
        assert_eq!(w[0].offset, 2);
    }

    #[test]
    fn no_start_code_at_all() {
        let (nals, w) = check_chunking(b"\x01\x02\x03\x04\x05");
        assert!(nals.is_empty());
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].offset, 0);
        let (nals, w) = check_chunking(b"");
        assert!(nals.is_empty() && w.is_empty());
    }

    #[test]
    fn empty_nals_skipped() {
        let (nals, _) = check_chunking(b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x01\x41\x9a");
        assert_eq!(nals.len(), 1);
        assert_eq!(&nals[0].data[..], b"\x41\x9a");
        assert_eq!(nals[0].offset, 11);
    }

    #[test]
    fn nal_type_and_fixture() {
        let input = include_bytes!("../../../tests/fixtures/codec/testsrc-160x120-bf3.h264");
        let (nals, w) = split_all(&[input]);
        assert!(w.is_empty());
        // ffmpeg's h264_mp4toannexb puts x264's SEI first, then SPS and PPS before the IDR.
        assert_eq!(super::super::nal_type(&nals[0].data), 6);
        assert_eq!(super::super::nal_type(&nals[1].data), 7);
        assert_eq!(super::super::nal_type(&nals[2].data), 8);
        // 50 pictures, one slice each.
        let slices = nals
            .iter()
            .filter(|n| matches!(super::super::nal_type(&n.data), 1 | 5))
            .count();
        assert_eq!(slices, 50);
        // Chunking at a few hundred positions and 1-byte pushes (every position is slow on 11 KB
        // in debug builds; the small tests above cover every position).
        for i in (0..input.len()).step_by(37) {
            let (a, b) = input.split_at(i);
            assert_eq!(split_all(&[a, b]), (nals.clone(), vec![]), "split at {i}");
        }
        let ones: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(split_all(&ones).0, nals);
        let sevens: Vec<&[u8]> = input.chunks(7).collect();
        assert_eq!(split_all(&sevens).0, nals);
    }

    #[test]
    fn oversized_nal_dropped_memory_bounded() {
        let mut s = NalSplitter::new();
        let mut out = Vec::new();
        let mut w = Vec::new();
        s.push(b"\x00\x00\x01\x09\xf0\x00\x00\x01\x65", &mut out, &mut w);
        let chunk = vec![0xAAu8; 1 << 20];
        for _ in 0..20 {
            s.push(&chunk, &mut out, &mut w);
            assert!(s.buf.len() <= MAX_NAL_SIZE + chunk.len() + 3);
        }
        assert_eq!(w.len(), 1, "one warning");
        assert_eq!(w[0].offset, 8);
        s.push(b"\x00\x00\x01\x41\x01", &mut out, &mut w);
        s.finish(&mut out, &mut w);
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].data[..], b"\x09\xf0");
        assert_eq!(&out[1].data[..], b"\x41\x01");
        assert_eq!(out[1].offset, 9 + 20 * (1 << 20) + 3);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn oversized_nal_dropped_independent_of_chunking() {
        // One push holding a whole over-limit NAL, followed by a start code.
        let mut input = b"\x00\x00\x01\x65".to_vec();
        input.resize(input.len() + MAX_NAL_SIZE, 0x55);
        input.extend_from_slice(b"\x00\x00\x01\x41\x01");
        let (nals, w) = split_all(&[&input]);
        assert_eq!(nals.len(), 1);
        assert_eq!(w.len(), 1);
        let (a, b) = input.split_at(MAX_NAL_SIZE / 2);
        assert_eq!(split_all(&[a, b]), (nals, w));
    }
}
