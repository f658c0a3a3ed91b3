//! A push decoder for `Transfer-Encoding: chunked` request bodies, pure.

use crate::error::Diag;

/// The longest chunk-size line (with extensions) in a chunked body, and the longest trailer.
const MAX_CHUNK_LINE: usize = 1024;

/// A push decoder for `Transfer-Encoding: chunked` bodies: the same output under any chunking of
/// the input; every line is bounded.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: CState,
    line: Vec<u8>,
    offset: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum CState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True after the last chunk and its trailer.
    pub fn is_done(&self) -> bool {
        self.state == CState::Done
    }

    /// Decodes `data`, appending body bytes to `out`. Returns how many input bytes were used
    /// (less than `data.len()` only once done). An error is located by its offset in the chunked
    /// body (counted from its first byte, framing included).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, Diag> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                CState::Done => return Ok(i),
                CState::Data(n) => {
                    let take = (n as usize).min(data.len() - i);
                    out.extend_from_slice(&data[i..i + take]);
                    i += take;
                    self.offset += take as u64;
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        CState::DataEnd
                    } else {
                        CState::Data(left)
                    };
                }
                CState::Size | CState::DataEnd | CState::Trailer => {
                    let b = data[i];
                    i += 1;
                    self.offset += 1;
                    if b != b'\n' {
                        if self.line.len() >= MAX_CHUNK_LINE {
                            return Err(Diag::new(
                                self.offset,
                                format!("chunked body: line over {MAX_CHUNK_LINE} bytes"),
                            ));
                        }
                        self.line.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    match self.state {
                        CState::DataEnd => {
                            if !line.is_empty() {
                                return Err(Diag::new(
                                    self.offset,
                                    "chunked body: missing CRLF after chunk data",
                                ));
                            }
                            self.state = CState::Size;
                        }
                        CState::Trailer => {
                            if line.is_empty() {
                                self.state = CState::Done;
                            }
                        }
                        _ => {
                            let hexpart = line.split(|&c| c == b';').next().unwrap_or(b"");
                            let s = std::str::from_utf8(hexpart).unwrap_or("").trim();
                            if s.is_empty() || s.len() > 15 {
                                return Err(Diag::new(
                                    self.offset,
                                    "chunked body: bad chunk size line",
                                ));
                            }
                            let n = u64::from_str_radix(s, 16).map_err(|_| {
                                Diag::new(
                                    self.offset,
                                    format!("chunked body: bad chunk size {s:?}"),
                                )
                            })?;
                            self.state = if n == 0 {
                                CState::Trailer
                            } else {
                                CState::Data(n)
                            };
                        }
                    }
                }
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_any_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let want = b"hello 0123456789".to_vec();
        for step in 1..body.len() {
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut used = 0;
            for part in body.chunks(step) {
                used += d.push(part, &mut out).unwrap();
            }
            assert!(d.is_done());
            assert_eq!(out, want, "step {step}");
            assert_eq!(&body[used..], b"NEXT");
        }
        let mut d = ChunkedDecoder::new();
        assert!(d.push(b"zz\r\n", &mut Vec::new()).is_err());
        let mut d = ChunkedDecoder::new();
        assert!(d.push(&[b'1'; 2000], &mut Vec::new()).is_err());
        let mut d = ChunkedDecoder::new();
        assert!(d.push(b"2\r\nabX\r\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn chunked_errors_are_located() {
        let e = ChunkedDecoder::new()
            .push(b"zz\r\n", &mut Vec::new())
            .unwrap_err();
        assert_eq!(e, Diag::new(4, "chunked body: bad chunk size \"zz\""));
        assert_eq!(
            e.to_string(),
            "chunked body: bad chunk size \"zz\" (at byte offset 4)"
        );
        // The same place however the input is cut.
        let body = b"2\r\nab\r\n3\r\nabcX\r\n";
        for step in 1..body.len() {
            let mut d = ChunkedDecoder::new();
            let e = body
                .chunks(step)
                .find_map(|p| d.push(p, &mut Vec::new()).err())
                .unwrap();
            assert_eq!(
                e,
                Diag::new(16, "chunked body: missing CRLF after chunk data"),
                "step {step}"
            );
        }
        let e = ChunkedDecoder::new()
            .push(&[b'1'; 2000], &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.offset, 1025);
    }
}
