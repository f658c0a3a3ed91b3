//! `Range: bytes=…` for one range, as RFC 9110 section 14 describes it.
//!
//! Only a single range is honoured. A header the server may ignore (another unit, several ranges,
//! bad syntax, `last < first`) gives [`ByteRange::Full`], which is what RFC 9110 allows: the client
//! then gets the whole file with 200.

/// What to send for a file of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole file, 200.
    Full,
    /// Bytes `start..=end` (both inside the file), 206 with `Content-Range: bytes start-end/len`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

impl ByteRange {
    /// The number of body bytes this range sends from a file of `len` bytes.
    pub fn body_len(&self, len: u64) -> u64 {
        match *self {
            ByteRange::Full => len,
            ByteRange::Partial { start, end } => end - start + 1,
            ByteRange::Unsatisfiable => 0,
        }
    }
}

/// Digits only, non-empty; values beyond u64 saturate (they are past any file end anyway).
fn parse_pos(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Decides what to send for the `Range` header `header` (if any) on a file of `len` bytes.
pub fn parse_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(h) = header else {
        return ByteRange::Full;
    };
    let h = h.trim();
    let Some((unit, spec)) = h.split_once('=') else {
        return ByteRange::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return ByteRange::Full;
    }
    if spec.contains(',') {
        // Several ranges would need multipart/byteranges; the whole file is a valid answer.
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return ByteRange::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last n bytes.
        let Some(n) = parse_pos(last) else {
            return ByteRange::Full;
        };
        if n == 0 || len == 0 {
            return ByteRange::Unsatisfiable;
        }
        return ByteRange::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Some(start) = parse_pos(first) else {
        return ByteRange::Full;
    };
    let end = if last.is_empty() {
        None
    } else {
        match parse_pos(last) {
            Some(e) if e >= start => Some(e),
            _ => return ByteRange::Full,
        }
    };
    if start >= len {
        return ByteRange::Unsatisfiable;
    }
    let end = end.map_or(len - 1, |e| e.min(len - 1));
    ByteRange::Partial { start, end }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn single_ranges() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Full);
        assert_eq!(r("bytes=0-99"), Partial { start: 0, end: 99 });
        assert_eq!(r("bytes=0-0"), Partial { start: 0, end: 0 });
        assert_eq!(
            r("bytes=500-"),
            Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=999-"),
            Partial {
                start: 999,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=-100"),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(r("bytes=-5000"), Partial { start: 0, end: 999 });
        assert_eq!(
            r("bytes=900-5000"),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(r(" Bytes = 1 - 2 "), Partial { start: 1, end: 2 });
        assert_eq!(
            r("bytes=0-99999999999999999999999"),
            Partial { start: 0, end: 999 }
        );
    }

    #[test]
    fn unsatisfiable() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=1000-2000"), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-1"), 0), Unsatisfiable);
    }

    #[test]
    fn ignored_headers_give_the_whole_file() {
        for h in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=5-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=+1-2",
            "bytes=1--2",
            "bytes=0x10-",
        ] {
            assert_eq!(parse_range(Some(h), 1000), Full, "{h:?}");
        }
    }

    #[test]
    fn body_len() {
        assert_eq!(Full.body_len(10), 10);
        assert_eq!(Partial { start: 2, end: 4 }.body_len(10), 3);
        assert_eq!(Unsatisfiable.body_len(10), 0);
    }
}
