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

/// Rewrites Annex B bytes as length-prefixed NAL units (4-byte lengths) where they lie, without a
/// copy of the bulk: `nals` are the ranges in `buf` of the NAL units to keep, in order, as the
/// start-code scan found them ([`h264::annexb_nals`]); start codes, trailing zero bytes and the
/// units left out (AUDs) lie between or before them. Each length goes where the unit's start code
/// was: the units are laid out as late as they can be with none moving to a later place, so with
/// 4-byte start codes nothing moves, and a 3-byte one moves the units before it (parameter sets,
/// typically) by the byte it lacks. A unit moves by `copy_within` only when its place changes.
/// The ranges must be in order and apart. On success `buf` holds the units with their lengths and nothing else. Returns false, leaving
/// `buf` as it was, when there is no room for the first length (3-byte start codes from the
/// first byte on): the caller then copies ([`h264::annexb_to_avcc`]).
pub(crate) fn avcc_in_place(buf: &mut bytes::BytesMut, nals: &[(usize, usize)]) -> bool {
    if nals.is_empty() {
        buf.clear();
        return true;
    }
    // Where the first length goes: the latest place from which every unit, after its length,
    // lands where it is or earlier (a forward pass then never overwrites bytes it has yet to
    // move).
    let mut first = isize::MAX;
    let mut before = 0isize;
    let mut prev_end = 0;
    for &(s, e) in nals {
        if s < prev_end || e < s || e > buf.len() || u32::try_from(e - s).is_err() {
            return false;
        }
        prev_end = e;
        first = first.min(s as isize - 4 - before);
        before += 4 + (e - s) as isize;
    }
    let Ok(first) = usize::try_from(first) else {
        return false;
    };
    let mut w = first;
    for &(s, e) in nals {
        let len = e - s;
        buf[w..w + 4].copy_from_slice(&(len as u32).to_be_bytes());
        if s != w + 4 {
            buf.copy_within(s..e, w + 4);
        }
        w += 4 + len;
    }
    bytes::Buf::advance(buf, first);
    buf.truncate(w - first);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_place(annexb: &[u8], keep: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
        let nals: Vec<(usize, usize)> = h264::annexb_nals(annexb)
            .filter(|n| keep(n))
            .map(|n| {
                let s = n.as_ptr() as usize - annexb.as_ptr() as usize;
                (s, s + n.len())
            })
            .collect();
        let mut buf = bytes::BytesMut::from(annexb);
        if !avcc_in_place(&mut buf, &nals) {
            assert_eq!(&buf[..], annexb, "left as it was");
            return None;
        }
        Some(buf.to_vec())
    }

    fn copied(annexb: &[u8], keep: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        for n in h264::annexb_nals(annexb).filter(|n| keep(n)) {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn avcc_in_place_is_the_copy() {
        let all = |_: &[u8]| true;
        let no_aud = |n: &[u8]| n[0] & 0x1f != 9;
        // ffmpeg's TS: AUD, SEI, SPS, PPS with 4-byte start codes, the IDR slice with 3.
        let idr = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x06\x05\x01\x02\x00\x00\x00\x01\x67\x64\x00\x1f\x00\x00\x00\x01\x68\xee\x3c\x80\x00\x00\x01\x65\x88\x84\x00\x33\x44";
        assert_eq!(in_place(idr, no_aud).unwrap(), copied(idr, no_aud));
        // An inter picture: AUD and one slice, both with 4-byte start codes.
        let p = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x41\x9a\x00\x12\x34";
        assert_eq!(in_place(p, no_aud).unwrap(), copied(p, no_aud));
        assert_eq!(in_place(p, all).unwrap(), copied(p, all));
        // Several slices with 3-byte start codes, an AUD at the front to make room.
        let multi = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x41\x01\x02\x00\x00\x01\x41\x03\x00\x00\x01\x41\x04\x05";
        assert_eq!(in_place(multi, no_aud).unwrap(), copied(multi, no_aud));
        // No room for the first length (3-byte start codes from the first byte): left for a copy.
        let tight = b"\x00\x00\x01\x41\x01\x00\x00\x01\x41\x02";
        assert_eq!(in_place(tight, all), None);
        // Trailing zero bytes before a later unit: it moves back to close the gap.
        let gap = b"\x00\x00\x00\x01\x41\x01\x00\x00\x00\x00\x00\x00\x00\x01\x41\x02";
        assert_eq!(in_place(gap, all).unwrap(), copied(gap, all));
        // An AUD between two kept units: the same.
        let mid = b"\x00\x00\x00\x01\x41\x01\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x41\x02";
        assert_eq!(in_place(mid, no_aud).unwrap(), copied(mid, no_aud));
        // Garbage before the first start code is dropped too.
        let junk = b"\xff\xee\x00\x00\x01\x41\x01\x00\x00\x01\x41\x02";
        assert_eq!(in_place(junk, all).unwrap(), copied(junk, all));
        // Nothing kept: empty.
        assert_eq!(in_place(b"\x00\x00\x00\x01\x09\xf0", no_aud).unwrap(), b"");
    }
}
