//! Elementary-stream codecs: H.264, H.265 and AAC bitstream handling, no containers and no I/O.

pub mod aac;
pub(crate) mod bits;
pub mod h264;
pub mod h265;

/// The 4-byte Annex B start code river writes before every NAL unit.
pub(crate) const START_CODE: &[u8] = b"\x00\x00\x00\x01";

/// One length-prefixed access unit (4-byte lengths) as the pieces of its Annex B form, in order:
/// `aud`, then, when `keyframe` and the unit carries no SPS of its own, each of `params` after a
/// start code, then every NAL unit of the unit but AUDs after a start code. A malformed length
/// ends the unit early (what parsed is kept). The pieces borrow the unit and the parameter sets:
/// concatenated they are the Annex B bytes, and a muxer that takes pieces copies each byte once,
/// straight into its packets.
pub(crate) fn annexb_pieces<'a>(
    au: &'a [u8],
    aud: &'static [u8],
    params: impl Iterator<Item = &'a bytes::Bytes>,
    is_sps: impl Fn(&[u8]) -> bool,
    is_aud: impl Fn(&[u8]) -> bool,
    keyframe: bool,
    pieces: &mut Vec<&'a [u8]>,
) {
    let nals = || h264::avcc_nals(au, 4).map_while(Result::ok);
    pieces.push(aud);
    if keyframe && !nals().any(&is_sps) {
        for ps in params {
            pieces.push(START_CODE);
            pieces.push(ps);
        }
    }
    for nal in nals() {
        if nal.is_empty() || is_aud(nal) {
            continue;
        }
        pieces.push(START_CODE);
        pieces.push(nal);
    }
}

/// Appends the concatenation of `pieces` to `out`.
pub(crate) fn concat_into(pieces: &[&[u8]], out: &mut Vec<u8>) {
    out.reserve(pieces.iter().map(|p| p.len()).sum());
    for p in pieces {
        out.extend_from_slice(p);
    }
}
