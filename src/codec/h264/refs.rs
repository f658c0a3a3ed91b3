//! An SPS with another max_num_ref_frames, for decoders that size their picture buffers by it.
//!
//! A decoder given one IDR access unit alone needs one picture, but openh264 allocates and clears
//! `max_num_ref_frames + 2` of them before it decodes anything (for a 720p x264 stream with
//! B-frames, 6 pictures of 1.6 MB, written twice each: two thirds of a one-shot thumbnail's time).
//! Only that field changes; every other bit of the SPS is copied.

use super::{nal_type, nal_types, H264Error};
use crate::codec::bits::{stop_bit, unescape, RbspBits, RbspWriter};

/// The profiles whose SPS carries chroma_format_idc and the bit depths (H.264 7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Reads past one scaling_list() of `size` coefficients (H.264 7.3.2.1.1.1).
fn skip_scaling_list(r: &mut RbspBits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            // delta_scale is within [-128, 127] (H.264 7.4.2.1.1.1); beyond, the SPS is damaged.
            let delta = r.se().filter(|d| (-128..=127).contains(d))?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Where max_num_ref_frames lies in the RBSP: (first bit, bit after it, its value).
fn max_refs_field(nal: &[u8]) -> Option<(usize, usize, u32)> {
    let mut r = RbspBits::new(nal.get(1..)?);
    let profile_idc = r.bits(8)? as u8;
    r.skip(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    if has_chroma_info(profile_idc) {
        let chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.flag()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame
            }
        }
        2 => {}
        _ => return None,
    }
    let from = r.bit_position();
    let refs = r.ue()?;
    Some((from, r.bit_position(), refs))
}

/// `sps` (a NAL unit, header included) with max_num_ref_frames set to `refs` when it was larger;
/// the SPS itself when it was not. An SPS that does not parse is an error.
pub fn sps_with_max_refs(sps: &[u8], refs: u32) -> Result<Vec<u8>, H264Error> {
    if nal_type(sps) != nal_types::SPS {
        return Err(H264Error::NotSps(nal_type(sps)));
    }
    let bad = || H264Error::BadSps("sps ends before max_num_ref_frames".into());
    let (from, to, old) = max_refs_field(sps).ok_or_else(bad)?;
    if old <= refs {
        return Ok(sps.to_vec());
    }
    let rbsp = unescape(&sps[1..]);
    let stop = stop_bit(&rbsp).filter(|&s| s >= to).ok_or_else(bad)?;
    let mut w = RbspWriter::default();
    w.copy_bits(&rbsp, 0, from);
    w.ue(refs);
    w.copy_bits(&rbsp, to, stop);
    let mut out = vec![sps[0]];
    out.extend_from_slice(&w.finish());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h264::parse_sps;

    /// The fixture's x264 SPS (High profile, B-frames, several reference frames, a VUI).
    fn x264_sps() -> Vec<u8> {
        let avcc = crate::codec::h264::parse_avcc(&crate::codec::h264::tests::fixture_avcc())
            .expect("fixture avcC");
        avcc.sps[0].to_vec()
    }

    #[test]
    fn only_max_num_ref_frames_changes() {
        let sps = x264_sps();
        let before = parse_sps(&sps).unwrap();
        assert!(before.max_num_ref_frames > 1, "fixture has several refs");
        let out = sps_with_max_refs(&sps, 1).unwrap();
        let after = parse_sps(&out).unwrap();
        assert_eq!(after.max_num_ref_frames, 1);
        // Everything else parses the same.
        let mut fixed = after.clone();
        fixed.max_num_ref_frames = before.max_num_ref_frames;
        assert_eq!(format!("{fixed:?}"), format!("{before:?}"));
        // Nothing to lower: unchanged.
        assert_eq!(sps_with_max_refs(&out, 1).unwrap(), out);
        assert_eq!(sps_with_max_refs(&sps, 16).unwrap(), sps);
    }

    #[test]
    fn scaling_lists_and_poc_type_1() {
        // A High-profile SPS written field by field: scaling matrices present (one explicit 4x4
        // list), POC type 1 with a cycle, 3 refs.
        let mut w = RbspWriter::default();
        let byte = |w: &mut RbspWriter, b: u8| {
            for i in (0..8).rev() {
                w.bit((b >> i) & 1 == 1);
            }
        };
        byte(&mut w, 100); // profile_idc
        byte(&mut w, 0);
        byte(&mut w, 40); // level 4
        w.ue(0); // sps id
        w.ue(1); // chroma 4:2:0
        w.ue(0);
        w.ue(0);
        w.bit(false);
        w.bit(true); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            w.bit(i == 0);
            if i == 0 {
                for _ in 0..16 {
                    w.ue(0); // se(0) deltas: the list stays 8
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1); // poc type 1
        w.bit(false);
        w.ue(1); // se(-1)... as ue code 2 is -1; 1 is +1
        w.ue(2);
        w.ue(2); // cycle of 2
        w.ue(3);
        w.ue(4);
        w.ue(3); // max_num_ref_frames
        w.bit(false); // gaps
        w.ue(79); // width in MBs - 1
        w.ue(44); // height in map units - 1
        w.bit(true); // frame_mbs_only
        w.bit(true); // direct_8x8
        w.bit(false); // cropping
        w.bit(false); // vui
        let mut sps = vec![0x67];
        sps.extend_from_slice(&w.finish());
        let before = parse_sps(&sps).unwrap();
        assert_eq!(before.max_num_ref_frames, 3);
        let out = sps_with_max_refs(&sps, 1).unwrap();
        let after = parse_sps(&out).unwrap();
        assert_eq!(after.max_num_ref_frames, 1);
        let mut fixed = after.clone();
        fixed.max_num_ref_frames = 3;
        assert_eq!(format!("{fixed:?}"), format!("{before:?}"));
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let sps = x264_sps();
        for cut in 0..sps.len() {
            let _ = sps_with_max_refs(&sps[..cut], 1);
        }
        assert!(matches!(
            sps_with_max_refs(&[0x68, 1, 2], 1),
            Err(H264Error::NotSps(8))
        ));
        assert!(sps_with_max_refs(&[0x67], 1).is_err());
        // Found by fuzz/annexb: a scaling-list delta far out of range (an overflow before).
        let fuzzed = [
            103, 100, 0, 1, 103, 255, 255, 0, 0, 0, 1, 255, 255, 253, 32, 8, 255, 5, 255, 255, 0,
            1, 187,
        ];
        assert!(sps_with_max_refs(&fuzzed, 1).is_err());
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut s = sps.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = 1 + x as usize % (s.len() - 1);
            s[i] ^= 1 << (x % 8);
            let _ = sps_with_max_refs(&s, 1);
        }
    }
}
