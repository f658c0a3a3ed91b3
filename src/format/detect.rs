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
///   header is the rare exception, and `--input-format ts` covers it). H.265 or H.264 from the
///   first NAL unit header that only one of them can have ([`annexb_codec`]); H.264 when none
///   within [`DETECT_LIMIT`] bytes says.
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
        return annexb_codec(prefix, at_eof);
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

/// H.264 or H.265, from the first NAL unit header in `prefix` that tells them apart:
///
/// - H.265: a two-byte header with nuh_layer_id 0 and TemporalId 0 (second byte `01`) of a type
///   that starts streams and access units: VPS, SPS, PPS, AUD, prefix SEI (32–35, 39) or an IRAP
///   picture (16–21). As H.264 headers most of these bytes are invalid (SEI or AUD with
///   nal_ref_idc set, unspecified types).
/// - H.264: an SPS, PPS or IDR slice with nal_ref_idc set (`x7`, `x8`, `x5`; as H.265 headers
///   these have types 48–63 or nuh_layer_id ≥ 32), or an AUD (`09`, then primary_pic_type and the
///   stop bit).
///
/// Other NAL units (SEI, plain slices) do not decide; `None` while a header is still incomplete
/// and fewer than [`DETECT_LIMIT`] bytes are in; H.264 when nothing decides within them.
pub fn annexb_codec(prefix: &[u8], at_eof: bool) -> Option<StreamFormat> {
    let p = &prefix[..prefix.len().min(DETECT_LIMIT)];
    let complete = at_eof || prefix.len() >= DETECT_LIMIT;
    for s in memchr::memmem::find_iter(p, &[0, 0, 1]) {
        let (Some(&b0), Some(&b1)) = (p.get(s + 3), p.get(s + 4)) else {
            break;
        };
        let h265_type = (b0 >> 1) & 0x3f;
        if b0 & 0x81 == 0 && b1 == 0x01 && matches!(h265_type, 16..=21 | 32..=35 | 39) {
            return Some(StreamFormat::AnnexBH265);
        }
        let h264_type = b0 & 0x1f;
        let ref_idc = (b0 >> 5) & 3;
        let h264 = b0 & 0x80 == 0
            && match h264_type {
                5 | 7 | 8 => ref_idc != 0,
                9 => ref_idc == 0 && b1 & 0x1f == 0x10,
                _ => false,
            };
        if h264 {
            return Some(StreamFormat::AnnexB);
        }
    }
    complete.then_some(StreamFormat::AnnexB)
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
    const H265: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf2.h265");

    #[test]
    fn h264_against_h265() {
        assert_eq!(detect(H265, false), Some(StreamFormat::AnnexBH265));
        assert_eq!(detect(H264, false), Some(StreamFormat::AnnexB));
        // The answer does not depend on how many bytes arrived once it is given.
        for input in [H264, H265] {
            let whole = detect(input, false);
            for n in 0..DETECT_LIMIT {
                let d = detect(&input[..n], false);
                assert!(d.is_none() || d == whole, "prefix {n}: {d:?}");
            }
        }
        // AUD, VPS, CRA and prefix SEI first; 3- and 4-byte start codes.
        for h in [[0x46, 0x01], [0x40, 0x01], [0x2a, 0x01], [0x4e, 0x01]] {
            assert_eq!(
                detect(&[0, 0, 0, 1, h[0], h[1]], false),
                Some(StreamFormat::AnnexBH265)
            );
        }
        // H.264 SEI first decides nothing; the SPS after it does.
        assert_eq!(detect(&[0, 0, 1, 6, 5, 0x10], false), None);
        assert_eq!(
            detect(&[0, 0, 1, 6, 5, 0x10, 0x80, 0, 0, 1, 0x67, 0x64], false),
            Some(StreamFormat::AnnexB)
        );
        assert_eq!(
            detect(&[0, 0, 1, 6, 5, 0x10], true),
            Some(StreamFormat::AnnexB)
        );
        // An H.264 IDR with nal_ref_idc 1 (0x25) is not an H.265 header (layer bit set).
        assert_eq!(
            detect(&[0, 0, 1, 0x25, 0x88], false),
            Some(StreamFormat::AnnexB)
        );
        // Nothing decisive within the limit: H.264, as before.
        let mut slices = Vec::new();
        while slices.len() < DETECT_LIMIT + 10 {
            slices.extend_from_slice(&[0, 0, 1, 0x41, 0x9a, 0x22]);
        }
        assert_eq!(detect(&slices, false), Some(StreamFormat::AnnexB));
        assert_eq!(detect(&slices[..100], false), None);
    }

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
        assert_eq!(detect(&[0, 0, 0, 1], false), None, "waits for a nal header");
        assert_eq!(detect(&[0, 0, 1, 9], false), None);
        assert_eq!(
            detect(&[0, 0, 1, 9, 0xf0], false),
            Some(StreamFormat::AnnexB)
        );
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
