//! Which container a byte stream is in, told from its first bytes: the one detection river has.
//! The demuxer ([`crate::pipeline::Demux`]) and the relay's splitter ([`crate::relay::stream`])
//! both ask [`detect()`].

use crate::media::StreamFormat;

const TS: usize = 188;

/// How many bytes detection may look at (and so hold back): enough to see three TS sync bytes 188
/// apart from any start offset within the first packet.
pub const DETECT_LIMIT: usize = TS * 4;

/// Detects the container from the first bytes; `None` means: not enough bytes yet to tell.
///
/// - FLV: the `FLV` signature.
/// - Annex B: a start code at byte 0 (TS packets start with 0x47; a TS cut exactly at a PES
///   header is the rare exception, and `--input-format ts` covers it).
/// - MPEG-TS: a sync byte followed by sync bytes 188 and 376 later (one later for a short input).
/// - Anything else is [`StreamFormat::Opaque`], decided as soon as no TS sync pattern is possible
///   any more, at the latest after [`DETECT_LIMIT`] bytes or at `at_eof`.
///
/// The answer depends only on the first [`DETECT_LIMIT`] bytes (or on all of a shorter input at
/// `at_eof`), never on how they arrived.
pub fn detect(prefix: &[u8], at_eof: bool) -> Option<StreamFormat> {
    if prefix.is_empty() {
        return at_eof.then_some(StreamFormat::Opaque);
    }
    if !at_eof && !could_be_media(prefix) {
        return Some(StreamFormat::Opaque);
    }
    if prefix.starts_with(b"FLV") {
        return Some(StreamFormat::Flv);
    }
    if starts_like_annexb(prefix) {
        return Some(StreamFormat::AnnexB);
    }
    if prefix.len() < DETECT_LIMIT && !at_eof {
        return None;
    }
    let p = &prefix[..prefix.len().min(DETECT_LIMIT)];
    let need = if p.len() > TS * 2 { 2 } else { 1 };
    for start in 0..TS {
        if start + TS * need >= p.len() {
            break;
        }
        if (0..=need).all(|k| p[start + TS * k] == 0x47) {
            return Some(StreamFormat::Ts);
        }
    }
    Some(StreamFormat::Opaque)
}

fn starts_like_annexb(p: &[u8]) -> bool {
    p.starts_with(&[0, 0, 1]) || p.starts_with(&[0, 0, 0, 1])
}

/// Could more bytes still make this prefix FLV, Annex B or TS?
fn could_be_media(p: &[u8]) -> bool {
    let n = p.len().min(3);
    if p[..n] == b"FLV"[..n] {
        return true;
    }
    let n = p.len().min(4);
    if p[..n] == [0, 0, 0, 1][..n] || p[..p.len().min(3)] == [0, 0, 1][..p.len().min(3)] {
        return true;
    }
    if p.len() < TS {
        return true;
    }
    (0..TS).any(|s| p[s] == 0x47 && (s + TS >= p.len() || p[s + TS] == 0x47))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLV: &[u8] = include_bytes!("../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");
    const TS: &[u8] = include_bytes!("../../tests/fixtures/ts/ffmpeg-lavfi-h264-aac-1s.ts");
    const H264: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf3.h264");

    #[test]
    fn fixtures() {
        assert_eq!(detect(FLV, false), Some(StreamFormat::Flv));
        assert_eq!(detect(TS, false), Some(StreamFormat::Ts));
        assert_eq!(detect(H264, false), Some(StreamFormat::AnnexB));
        assert_eq!(
            detect(&TS[..100], false),
            None,
            "a lone sync byte waits for more"
        );
        assert_eq!(detect(&TS[..100], true), Some(StreamFormat::Opaque));
        // TS joined mid-packet still detects.
        assert_eq!(detect(&TS[50..], false), Some(StreamFormat::Ts));
        assert_eq!(detect(b"", false), None);
        assert_eq!(detect(b"", true), Some(StreamFormat::Opaque));
    }

    #[test]
    fn prefixes() {
        assert_eq!(detect(b"FL", false), None);
        assert_eq!(detect(b"FLV", false), Some(StreamFormat::Flv));
        assert_eq!(detect(b"FLX", false), None);
        assert_eq!(detect(&[0, 0, 0], false), None);
        assert_eq!(detect(&[0, 0, 0, 1], false), Some(StreamFormat::AnnexB));
        assert_eq!(detect(&[0, 0, 1, 9], false), Some(StreamFormat::AnnexB));
        assert_eq!(detect(&[0, 0, 0, 1], true), Some(StreamFormat::AnnexB));
        assert_eq!(detect(b"x", true), Some(StreamFormat::Opaque));
        assert_eq!(detect(&[0x20; 188], false), Some(StreamFormat::Opaque));
        assert_eq!(detect(&TS[..188], false), None);
        assert_eq!(detect(&TS[..DETECT_LIMIT], false), Some(StreamFormat::Ts));
        assert_eq!(
            detect(&TS[100..100 + DETECT_LIMIT], false),
            Some(StreamFormat::Ts)
        );
    }
}
