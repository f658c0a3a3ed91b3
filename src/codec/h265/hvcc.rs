//! The HEVCDecoderConfigurationRecord (hvcC, ISO 14496-15 8.3.3.1) and length-prefixed access
//! units back to Annex B.

use bytes::Bytes;

use super::{nal_type, nal_types, parse_sps, H265Error};
use crate::error::Diag;
use crate::media::VideoConfig;

/// An HEVCDecoderConfigurationRecord: the fields river uses and the parameter-set arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hvcc {
    /// general_profile_space .. general_level_idc: bytes 1 to 12 of the record, laid out as in the
    /// SPS's profile_tier_level.
    pub general_ptl: [u8; 12],
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Bytes per NAL length prefix: 1, 2 or 4.
    pub length_size: u8,
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl Hvcc {
    /// The [`VideoConfig`] for this record's parameter sets.
    pub fn video_config(&self) -> Result<VideoConfig, H265Error> {
        super::video_config(self.vps.clone(), self.sps.clone(), self.pps.clone())
    }
}

/// Bytes before the arrays.
const HEADER_LEN: usize = 23;

/// Parses an HEVCDecoderConfigurationRecord. Arrays of other NAL unit types (SEI) are skipped;
/// trailing bytes are ignored.
pub fn parse_hvcc(data: &[u8]) -> Result<Hvcc, H265Error> {
    let bad = |at: usize, m: String| H265Error::Hvcc(Diag::new(at as u64, m));
    if data.len() < HEADER_LEN {
        return Err(bad(
            data.len(),
            format!(
                "expected an hvcc record of at least {HEADER_LEN} bytes, found {}",
                data.len()
            ),
        ));
    }
    if data[0] != 1 {
        return Err(bad(
            0,
            format!("expected hvcc configurationVersion 1, found {}", data[0]),
        ));
    }
    let mut general_ptl = [0u8; 12];
    general_ptl.copy_from_slice(&data[1..13]);
    let length_size = (data[21] & 3) + 1;
    if length_size == 3 {
        return Err(bad(
            21,
            "expected an hvcc nal length size of 1, 2 or 4, found 3".into(),
        ));
    }
    let mut h = Hvcc {
        general_ptl,
        chroma_format_idc: data[16] & 3,
        bit_depth_luma: (data[17] & 7) + 8,
        bit_depth_chroma: (data[18] & 7) + 8,
        length_size,
        vps: Vec::new(),
        sps: Vec::new(),
        pps: Vec::new(),
    };
    let arrays = data[22];
    let mut pos = HEADER_LEN;
    let take = |pos: &mut usize, n: usize, what: &str| -> Result<&[u8], H265Error> {
        let s = data.get(*pos..*pos + n).ok_or_else(|| {
            bad(
                *pos,
                format!(
                    "expected {what} ({n} bytes) at byte {} of the hvcc record, found {} bytes",
                    *pos,
                    data.len() - (*pos).min(data.len())
                ),
            )
        })?;
        *pos += n;
        Ok(s)
    };
    for _ in 0..arrays {
        let head = take(&mut pos, 3, "a nal unit array header")?;
        let t = head[0] & 0x3f;
        let count = u16::from_be_bytes([head[1], head[2]]);
        for _ in 0..count {
            let l = take(&mut pos, 2, "a nal unit length")?;
            let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
            let at = pos;
            let nal = take(&mut pos, len, "a nal unit")?;
            if len > 0 && nal_type(nal) != t && nal.len() >= 2 {
                return Err(bad(
                    at,
                    format!(
                        "expected a nal unit of type {t} in its hvcc array, found type {}",
                        nal_type(nal)
                    ),
                ));
            }
            let list = match t {
                nal_types::VPS => &mut h.vps,
                nal_types::SPS => &mut h.sps,
                nal_types::PPS => &mut h.pps,
                _ => continue,
            };
            if !nal.is_empty() {
                list.push(Bytes::copy_from_slice(nal));
            }
        }
    }
    Ok(h)
}

/// Writes the HEVCDecoderConfigurationRecord for a configuration the way ffmpeg's FLV muxer does:
/// 4-byte NAL lengths, profile/tier/level, chroma format and bit depths from the first SPS,
/// array_completeness 0 (parameter sets may also come in band), min_spatial_segmentation_idc,
/// parallelismType, avgFrameRate and constantFrameRate 0 (unknown), then the VPS, SPS and PPS
/// arrays. Parameter sets longer than 65535 bytes cannot be represented and are left out.
pub fn write_hvcc(cfg: &VideoConfig) -> Bytes {
    let sps = cfg.sps.first().and_then(|s| parse_sps(s).ok());
    let mut out = Vec::with_capacity(
        HEADER_LEN
            + 9
            + cfg
                .vps
                .iter()
                .chain(&cfg.sps)
                .chain(&cfg.pps)
                .map(|s| s.len() + 2)
                .sum::<usize>(),
    );
    out.push(1);
    let (ptl, chroma, bdl, bdc, layers, nested) = match &sps {
        Some(s) => (
            s.general_ptl,
            s.chroma_format_idc,
            s.bit_depth_luma,
            s.bit_depth_chroma,
            s.max_sub_layers,
            s.temporal_id_nesting,
        ),
        None => ([0; 12], 1, 8, 8, 1, true),
    };
    out.extend_from_slice(&ptl);
    out.extend_from_slice(&[
        0xf0,
        0x00,
        0xfc,
        0xfc | (chroma & 3),
        0xf8 | (bdl.saturating_sub(8) & 7),
        0xf8 | (bdc.saturating_sub(8) & 7),
        0,
        0,
        ((layers & 7) << 3) | (u8::from(nested) << 2) | 3,
    ]);
    let arrays: Vec<(u8, Vec<&Bytes>)> = [
        (nal_types::VPS, &cfg.vps),
        (nal_types::SPS, &cfg.sps),
        (nal_types::PPS, &cfg.pps),
    ]
    .into_iter()
    .map(|(t, l)| {
        (
            t,
            l.iter()
                .filter(|s| s.len() <= usize::from(u16::MAX))
                .take(usize::from(u16::MAX))
                .collect::<Vec<_>>(),
        )
    })
    .filter(|(_, l)| !l.is_empty())
    .collect();
    out.push(arrays.len() as u8);
    for (t, list) in arrays {
        out.push(t);
        out.extend_from_slice(&(list.len() as u16).to_be_bytes());
        for s in list {
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s);
        }
    }
    Bytes::from(out)
}

/// An access unit delimiter with pic_type 2 (any slice type), TemporalId 0, as ffmpeg's MPEG-TS
/// muxer inserts it.
const AUD: &[u8] = b"\x00\x00\x00\x01\x46\x01\x50";
/// Writes one access unit as Annex B: an AUD, then (when `keyframe` and the unit carries no SPS)
/// the configuration's VPS, SPS and PPS, then every NAL unit of the unit except AUDs, each with a
/// 4-byte start code. A malformed length ends the unit early (what parsed is written).
pub fn write_annexb_au(au: &[u8], cfg: &VideoConfig, keyframe: bool, out: &mut Vec<u8>) {
    let mut pieces = Vec::new();
    annexb_pieces(au, cfg, keyframe, &mut pieces);
    crate::codec::concat_into(&pieces, out);
}

/// [`write_annexb_au`] as pieces that borrow the unit and `cfg`, for a muxer that copies them once
/// into its packets.
pub fn annexb_pieces<'a>(
    au: &'a [u8],
    cfg: &'a VideoConfig,
    keyframe: bool,
    pieces: &mut Vec<&'a [u8]>,
) {
    crate::codec::annexb_pieces(
        au,
        AUD,
        cfg.vps.iter().chain(&cfg.sps).chain(&cfg.pps),
        |n| nal_type(n) == nal_types::SPS,
        |n| nal_type(n) == nal_types::AUD,
        keyframe,
        pieces,
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::fixture_hvcc;
    use super::*;

    #[test]
    fn fixture_record_round_trips_like_ffmpeg() {
        let rec = fixture_hvcc();
        let h = parse_hvcc(&rec).unwrap();
        assert_eq!(h.length_size, 4);
        assert_eq!((h.chroma_format_idc, h.bit_depth_luma), (1, 8));
        let cfg = h.video_config().unwrap();
        let ours = write_hvcc(&cfg);
        // The same record but for the fields ffmpeg's MP4 muxer fills in from the VUI (min spatial
        // segmentation, parallelism, frame rate) and array_completeness (1 in MP4 'hvc1').
        let back = parse_hvcc(&ours).unwrap();
        assert_eq!(back, h);
        assert_eq!(ours[..13], rec[..13]);
        assert_eq!(ours[16..19], rec[16..19]);
        assert_eq!(ours[21] & 0x3f, rec[21] & 0x3f);
    }

    #[test]
    fn bad_records() {
        let rec = fixture_hvcc();
        for cut in 0..rec.len() {
            let _ = parse_hvcc(&rec[..cut]);
        }
        let e = parse_hvcc(&rec[..10]).unwrap_err();
        assert!(e.to_string().contains("at least 23 bytes"), "{e}");
        let mut v = rec.clone();
        v[0] = 2;
        assert!(parse_hvcc(&v)
            .unwrap_err()
            .to_string()
            .contains("configurationVersion 1"));
        let e = parse_hvcc(&rec[..rec.len() - 3]).unwrap_err();
        assert!(e.diag().is_some());
    }

    #[test]
    fn annexb_inserts_aud_and_parameter_sets() {
        let cfg = parse_hvcc(&fixture_hvcc()).unwrap().video_config().unwrap();
        let au = [
            &[0, 0, 0, 3, 0x26, 0x01, 0xaf][..],
            &[0, 0, 0, 3, 0x46, 0x01, 0x50],
        ]
        .concat();
        let mut out = Vec::new();
        write_annexb_au(&au, &cfg, true, &mut out);
        let nals: Vec<u8> = crate::codec::h264::annexb_nals(&out)
            .map(nal_type)
            .collect();
        assert_eq!(nals, [35, 32, 33, 34, 19]);
        out.clear();
        write_annexb_au(&au, &cfg, false, &mut out);
        let nals: Vec<u8> = crate::codec::h264::annexb_nals(&out)
            .map(nal_type)
            .collect();
        assert_eq!(nals, [35, 19]);
    }
}
