//! The parameter-set and slice-header fields river reads (H.265 7.3.2.2, 7.3.2.3, 7.3.6.1).
//!
//! Every loop is bounded by the limits the standard sets (checked, not trusted), every count is
//! range-checked before use, and arithmetic is checked or saturating, so malformed input gives an
//! error, never a panic or a large allocation.

use super::{is_idr, is_irap, nal_type, nal_types, H265Error};
use crate::codec::bits::RbspBits;

/// What river needs of a sequence parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub id: u8,
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    /// The 12 bytes of general_profile_tier_level (profile space, tier, profile idc,
    /// compatibility flags, constraint flags, level idc), as hvcC copies them.
    pub general_ptl: [u8; 12],
    pub chroma_format_idc: u8,
    pub separate_colour_plane: bool,
    /// Picture size after the conformance window, in pixels.
    pub width: u32,
    pub height: u32,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// log2_max_pic_order_cnt_lsb (4 to 16).
    pub log2_max_poc_lsb: u8,
    /// sps_max_num_reorder_pics of the highest sub-layer.
    pub max_num_reorder: u8,
    /// sps_max_dec_pic_buffering_minus1 + 1 of the highest sub-layer.
    pub max_dec_pic_buffering: u8,
    /// time_scale / num_units_in_tick of the VUI timing info, reduced.
    pub frame_rate: Option<(u32, u32)>,
}

/// What river needs of a picture parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pps {
    pub id: u8,
    pub sps_id: u8,
    pub dependent_slice_segments_enabled: bool,
    pub output_flag_present: bool,
    pub num_extra_slice_header_bits: u8,
}

/// The slice segment header fields picture order count needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SliceHeader {
    pub first_slice_in_pic: bool,
    pub pps_id: u8,
    /// slice_pic_order_cnt_lsb; 0 for IDR pictures, which do not carry it.
    pub poc_lsb: u32,
}

fn end(what: &str) -> String {
    format!("h.265 {what} ends early")
}

struct Reader<'a> {
    r: RbspBits<'a>,
    what: &'static str,
}

impl Reader<'_> {
    fn bits(&mut self, n: u32) -> Result<u32, String> {
        self.r.bits(n).ok_or_else(|| end(self.what))
    }
    fn flag(&mut self) -> Result<bool, String> {
        self.r.flag().ok_or_else(|| end(self.what))
    }
    fn skip(&mut self, n: u32) -> Result<(), String> {
        self.r.skip(n).ok_or_else(|| end(self.what))
    }
    fn ue(&mut self) -> Result<u32, String> {
        self.r.ue().ok_or_else(|| end(self.what))
    }
    /// ue(v) that must lie in `0..=max`.
    fn ue_max(&mut self, field: &str, max: u32) -> Result<u32, String> {
        let v = self.ue()?;
        if v > max {
            return Err(format!(
                "h.265 {}: {field} is {v}, at most {max} allowed",
                self.what
            ));
        }
        Ok(v)
    }
    fn se(&mut self) -> Result<i32, String> {
        self.r.se().ok_or_else(|| end(self.what))
    }
}

fn check_type(nal: &[u8], want: u8) -> Result<(), H265Error> {
    let t = nal_type(nal);
    if t != want {
        return Err(H265Error::WrongType(want, t));
    }
    Ok(())
}

/// Parses an SPS NAL unit (2-byte header included).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, H265Error> {
    check_type(nal, nal_types::SPS)?;
    sps_body(&nal[2..]).map_err(H265Error::BadSps)
}

fn sps_body(data: &[u8]) -> Result<Sps, String> {
    let mut r = Reader {
        r: RbspBits::new(data),
        what: "sps",
    };
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return Err(format!(
            "h.265 sps: sps_max_sub_layers_minus1 is {max_sub_layers_minus1}, at most 6 allowed"
        ));
    }
    let temporal_id_nesting = r.flag()?;
    let mut general_ptl = [0u8; 12];
    for b in &mut general_ptl {
        *b = r.bits(8)? as u8;
    }
    sub_layer_ptl(&mut r, max_sub_layers_minus1)?;
    let id = r.ue_max("sps_seq_parameter_set_id", 15)? as u8;
    let chroma_format_idc = r.ue_max("chroma_format_idc", 3)? as u8;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
    let pic_width = r.ue()?;
    let pic_height = r.ue()?;
    if pic_width == 0 || pic_height == 0 {
        return Err("h.265 sps: picture width or height is 0".into());
    }
    let (mut crop_w, mut crop_h) = (0u64, 0u64);
    if r.flag()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        crop_w = u64::from(left) + u64::from(right);
        crop_h = u64::from(top) + u64::from(bottom);
    }
    // Table 6-1: chroma subsampling of the crop units.
    let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
        (1, false) => (2, 2),
        (2, false) => (2, 1),
        _ => (1, 1),
    };
    let width = u64::from(pic_width).checked_sub(crop_w * sub_w);
    let height = u64::from(pic_height).checked_sub(crop_h * sub_h);
    let (Some(width), Some(height)) = (width, height) else {
        return Err(format!(
            "h.265 sps: conformance window larger than the {pic_width}x{pic_height} picture"
        ));
    };
    if width == 0 || height == 0 {
        return Err("h.265 sps: conformance window leaves no picture".into());
    }
    let bit_depth_luma = 8 + r.ue_max("bit_depth_luma_minus8", 8)? as u8;
    let bit_depth_chroma = 8 + r.ue_max("bit_depth_chroma_minus8", 8)? as u8;
    let log2_max_poc_lsb = 4 + r.ue_max("log2_max_pic_order_cnt_lsb_minus4", 12)? as u8;
    let ordering_all = r.flag()?;
    let (mut max_dec, mut max_reorder) = (0u32, 0u32);
    let first = if ordering_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        max_dec = r.ue_max("sps_max_dec_pic_buffering_minus1", 15)? + 1;
        max_reorder = r.ue_max("sps_max_num_reorder_pics", 15)?;
        r.ue()?; // sps_max_latency_increase_plus1
    }
    let log2_min_cb = r.ue_max("log2_min_luma_coding_block_size_minus3", 3)?;
    r.ue_max("log2_diff_max_min_luma_coding_block_size", 6)?;
    r.ue_max("log2_min_luma_transform_block_size_minus2", 3)?;
    r.ue_max("log2_diff_max_min_luma_transform_block_size", 3)?;
    r.ue_max("max_transform_hierarchy_depth_inter", 4)?;
    r.ue_max("max_transform_hierarchy_depth_intra", 4)?;
    let _ = log2_min_cb;
    if r.flag()? && r.flag()? {
        scaling_list_data(&mut r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.flag()? {
        // pcm: sample bit depths (4 + 4), two block sizes, loop filter flag.
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    let num_st_rps = r.ue_max("num_short_term_ref_pic_sets", 64)? as usize;
    let mut num_delta_pocs = [0u32; 64];
    for i in 0..num_st_rps {
        num_delta_pocs[i] = st_ref_pic_set(&mut r, i, &num_delta_pocs[..i])?;
    }
    if r.flag()? {
        let n = r.ue_max("num_long_term_ref_pics_sps", 32)?;
        for _ in 0..n {
            r.skip(u32::from(log2_max_poc_lsb) + 1)?;
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    let frame_rate = if r.flag()? {
        vui_frame_rate(&mut r)?
    } else {
        None
    };
    Ok(Sps {
        id,
        max_sub_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nesting,
        general_ptl,
        chroma_format_idc,
        separate_colour_plane,
        width: u32::try_from(width).map_err(|_| "h.265 sps: picture too wide".to_string())?,
        height: u32::try_from(height).map_err(|_| "h.265 sps: picture too tall".to_string())?,
        bit_depth_luma,
        bit_depth_chroma,
        log2_max_poc_lsb,
        max_num_reorder: max_reorder as u8,
        max_dec_pic_buffering: max_dec as u8,
        frame_rate,
    })
}

/// The sub-layer part of profile_tier_level (7.3.3), after the 12 general bytes.
fn sub_layer_ptl(r: &mut Reader, max_sub_layers_minus1: u32) -> Result<(), String> {
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.flag()?, r.flag()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// Skips scaling_list_data (7.3.4).
fn scaling_list_data(r: &mut Reader) -> Result<(), String> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.flag()? {
                r.ue_max("scaling_list_pred_matrix_id_delta", 5)?;
            } else {
                let coefs = 64.min(1 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefs {
                    r.se()?;
                }
            }
        }
    }
    Ok(())
}

/// Reads st_ref_pic_set(idx) of an SPS (7.3.7) and returns its NumDeltaPocs, counted as ffmpeg's
/// decoder counts it (entries with used_by_curr_pic_flag or use_delta_flag).
fn st_ref_pic_set(r: &mut Reader, idx: usize, before: &[u32]) -> Result<u32, String> {
    if idx != 0 && r.flag()? {
        // inter_ref_pic_set_prediction_flag: predicted from the previous set (delta_idx_minus1 is
        // only in slice headers).
        r.skip(1)?; // delta_rps_sign
        r.ue_max("abs_delta_rps_minus1", (1 << 15) - 1)?;
        let ref_count = before.last().copied().unwrap_or(0);
        let mut n = 0;
        for _ in 0..=ref_count {
            let used = r.flag()?;
            if used || r.flag()? {
                n += 1;
            }
        }
        return Ok(n);
    }
    let neg = r.ue_max("num_negative_pics", 16)?;
    let pos = r.ue_max("num_positive_pics", 16)?;
    if neg + pos > 16 {
        return Err(format!(
            "h.265 sps: a reference picture set of {} pictures, at most 16 allowed",
            neg + pos
        ));
    }
    for _ in 0..neg + pos {
        r.ue_max("delta_poc_minus1", (1 << 15) - 1)?;
        r.skip(1)?;
    }
    Ok(neg + pos)
}

/// Reads vui_parameters (E.2.1) up to the timing info; the frame rate is
/// vui_time_scale / vui_num_units_in_tick.
fn vui_frame_rate(r: &mut Reader) -> Result<Option<(u32, u32)>, String> {
    if r.flag()? && r.bits(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height
    }
    if r.flag()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.flag()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.flag()? {
            r.skip(24)?; // colour primaries, transfer, matrix
        }
    }
    if r.flag()? {
        r.ue()?;
        r.ue()?;
    }
    r.skip(3)?; // neutral_chroma_indication, field_seq, frame_field_info_present
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // default display window
        }
    }
    if !r.flag()? {
        return Ok(None);
    }
    let units = r.bits(32)?;
    let scale = r.bits(32)?;
    if units == 0 || scale == 0 {
        return Ok(None);
    }
    let g = crate::codec::h264::gcd(u64::from(scale), u64::from(units));
    Ok(Some((
        (u64::from(scale) / g) as u32,
        (u64::from(units) / g) as u32,
    )))
}

/// Parses a PPS NAL unit (2-byte header included) up to num_extra_slice_header_bits.
pub fn parse_pps(nal: &[u8]) -> Result<Pps, H265Error> {
    check_type(nal, nal_types::PPS)?;
    let mut r = Reader {
        r: RbspBits::new(&nal[2..]),
        what: "pps",
    };
    let body = (|| -> Result<Pps, String> {
        Ok(Pps {
            id: r.ue_max("pps_pic_parameter_set_id", 63)? as u8,
            sps_id: r.ue_max("pps_seq_parameter_set_id", 15)? as u8,
            dependent_slice_segments_enabled: r.flag()?,
            output_flag_present: r.flag()?,
            num_extra_slice_header_bits: r.bits(3)? as u8,
        })
    })();
    body.map_err(H265Error::BadPps)
}

/// The first bit of a slice segment: first_slice_segment_in_pic_flag. `None` for a NAL unit too
/// short to have one.
pub(crate) fn first_slice_in_pic(nal: &[u8]) -> Option<bool> {
    nal.get(2).map(|b| b & 0x80 != 0)
}

/// The PPS id of a slice segment (its header up to slice_pic_parameter_set_id).
pub(crate) fn slice_pps_id(nal: &[u8]) -> Result<u8, String> {
    let t = nal_type(nal);
    let mut r = Reader {
        r: RbspBits::new(nal.get(2..).unwrap_or(&[])),
        what: "slice header",
    };
    r.skip(1)?;
    if is_irap(t) {
        r.skip(1)?; // no_output_of_prior_pics_flag
    }
    Ok(r.ue_max("slice_pic_parameter_set_id", 63)? as u8)
}

/// Parses the header of the first slice segment of a picture up to slice_pic_order_cnt_lsb.
pub(crate) fn slice_header(nal: &[u8], pps: &Pps, sps: &Sps) -> Result<SliceHeader, String> {
    let t = nal_type(nal);
    let mut r = Reader {
        r: RbspBits::new(nal.get(2..).unwrap_or(&[])),
        what: "slice header",
    };
    let first_slice_in_pic = r.flag()?;
    if is_irap(t) {
        r.skip(1)?;
    }
    let pps_id = r.ue_max("slice_pic_parameter_set_id", 63)? as u8;
    if !first_slice_in_pic {
        // Only first slice segments are parsed (their address is 0 and not coded).
        return Err("h.265 slice header: not the first slice segment of its picture".into());
    }
    r.skip(u32::from(pps.num_extra_slice_header_bits))?;
    r.ue_max("slice_type", 2)?;
    if pps.output_flag_present {
        r.skip(1)?;
    }
    if sps.separate_colour_plane {
        r.skip(2)?;
    }
    let poc_lsb = if is_idr(t) {
        0
    } else {
        r.bits(u32::from(sps.log2_max_poc_lsb))?
    };
    Ok(SliceHeader {
        first_slice_in_pic,
        pps_id,
        poc_lsb,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::BF2;
    use super::*;
    use crate::codec::h264::NalSplitter;

    fn nals(input: &[u8]) -> Vec<bytes::Bytes> {
        let mut s = NalSplitter::new();
        let (mut out, mut w) = (Vec::new(), Vec::new());
        s.push(input, &mut out, &mut w);
        s.finish(&mut out, &mut w);
        out.into_iter().map(|n| n.data).collect()
    }

    #[test]
    fn fixture_parameter_sets() {
        let n = nals(BF2);
        let sps = n.iter().find(|n| nal_type(n) == nal_types::SPS).unwrap();
        let s = parse_sps(sps).unwrap();
        assert_eq!((s.width, s.height), (160, 120));
        assert_eq!(s.frame_rate, Some((25, 1)));
        assert_eq!((s.bit_depth_luma, s.bit_depth_chroma), (8, 8));
        assert_eq!(s.chroma_format_idc, 1);
        // Main profile (1), level 1 (30 = level 1 * 30).
        assert_eq!(s.general_ptl[0] & 0x1f, 1);
        assert_eq!(s.general_ptl[11], 30);
        let pps = n.iter().find(|n| nal_type(n) == nal_types::PPS).unwrap();
        let p = parse_pps(pps).unwrap();
        assert_eq!((p.id, p.sps_id), (0, 0));
        // Every first slice parses, and IDR pictures have POC LSB 0.
        for nal in n.iter().filter(|n| super::super::is_vcl(nal_type(n))) {
            let h = slice_header(nal, &p, &s).unwrap();
            assert!(h.first_slice_in_pic);
            if is_idr(nal_type(nal)) {
                assert_eq!(h.poc_lsb, 0);
            }
        }
        assert_eq!(parse_sps(pps), Err(H265Error::WrongType(33, 34)));
    }

    #[test]
    fn truncated_and_mutated_never_panic() {
        let n = nals(BF2);
        let sps = n.iter().find(|n| nal_type(n) == nal_types::SPS).unwrap();
        for cut in 0..sps.len() {
            let _ = parse_sps(&sps[..cut]);
        }
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = sps.to_vec();
            let i = 2 + (x as usize) % (m.len() - 2);
            m[i] = (x >> 32) as u8;
            let _ = parse_sps(&m);
            let _ = parse_pps(&m);
        }
        // A conformance window larger than the picture.
        assert!(parse_sps(&[0x42, 0x01]).is_err());
    }
}
