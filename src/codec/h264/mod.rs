//! H.264 elementary streams: Annex B splitting, access units, parameter sets, avcC, and timestamps
//! for raw streams. No containers and no I/O.
//!
//! - [`NalSplitter`]: Annex B bytes in, NAL units out.
//! - [`AnnexBReader`]: the whole raw-H.264 input stage: Annex B bytes in, [`MediaEvent`]s out
//!   (configuration, then AVCC frames with DTS/PTS derived from the picture order count).
//! - [`avcc_nals`], [`annexb_to_avcc`], [`avcc_is_keyframe`], [`write_annexb_au`]: conversions
//!   between the AVCC form river carries and Annex B.
//! - [`parse_avcc`], [`write_avcc`]: the AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1).
//! - [`video_config`]: a [`VideoConfig`] from parameter sets.
//!
//! SPS, PPS and slice headers are parsed with the `h264-reader` crate.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

mod avcc;
mod error;
mod reader;
mod refs;
mod split;

pub use avcc::{
    annexb_nals, annexb_pieces, annexb_to_avcc, avcc_is_keyframe, avcc_nals, avcc_relength,
    parse_avcc, write_annexb_au, write_avcc, Avcc,
};
pub use error::H264Error;
pub use reader::{AnnexBReader, PocParams, PocState, SliceInfo, MAX_AU_SIZE};
pub(crate) use reader::{Clock, DEFAULT_FPS};
pub use refs::sps_with_max_refs;
pub use split::{Nal, NalSplitter, MAX_NAL_SIZE};

use bytes::Bytes;
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{decode_nal, BitReader};

pub(crate) use super::bits::RbspBits;
use crate::media::{VideoCodec, VideoConfig};

/// NAL unit types river cares about (H.264 Table 7-1).
pub mod nal_types {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// NAL unit types that begin a new access unit when they follow a slice (H.264 7.4.1.2.3): SEI,
/// SPS, PPS, AUD and 14–18.
#[inline]
pub fn opens_au(t: u8) -> bool {
    matches!(t, 6..=9 | 14..=18)
}

/// The `nal_unit_type` of a NAL unit (header byte first); 0 for an empty slice.
#[inline]
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Parses an SPS NAL unit (header byte included).
pub(crate) fn parse_sps(nal: &[u8]) -> Result<SeqParameterSet, H264Error> {
    if nal_type(nal) != nal_types::SPS {
        return Err(H264Error::NotSps(nal_type(nal)));
    }
    let rbsp = decode_nal(nal).map_err(|e| H264Error::BadSps(format!("bad sps nal unit: {e}")))?;
    SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
        .map_err(|e| H264Error::BadSps(format!("bad sps: {e:?}")))
}

/// Frame rate from the VUI timing info: time_scale / (2 * num_units_in_tick), reduced.
pub(crate) fn sps_frame_rate(sps: &SeqParameterSet) -> Option<(u32, u32)> {
    let t = sps.vui_parameters.as_ref()?.timing_info.as_ref()?;
    if t.time_scale == 0 || t.num_units_in_tick == 0 {
        return None;
    }
    let num = u64::from(t.time_scale);
    let den = 2 * u64::from(t.num_units_in_tick);
    let g = gcd(num, den);
    let (num, den) = (num / g, den / g);
    Some((u32::try_from(num).ok()?, u32::try_from(den).ok()?))
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// Builds a [`VideoConfig`] from parameter sets, parsing the first SPS for the picture size (after
/// cropping) and the frame rate (VUI timing info, if present).
pub fn video_config(sps: Vec<Bytes>, pps: Vec<Bytes>) -> Result<VideoConfig, H264Error> {
    let first = sps.first().ok_or(H264Error::NoSps)?;
    let parsed = parse_sps(first)?;
    let (width, height) = parsed
        .pixel_dimensions()
        .map_err(|e| H264Error::BadSps(format!("bad sps picture size: {e:?}")))?;
    let frame_rate = sps_frame_rate(&parsed);
    Ok(VideoConfig {
        codec: VideoCodec::H264,
        vps: Vec::new(),
        sps,
        pps,
        width,
        height,
        frame_rate,
    })
}

/// `first_mb_in_slice` of a slice NAL unit (header byte included).
pub(crate) fn first_mb_in_slice(nal: &[u8]) -> Option<u32> {
    RbspBits::new(nal.get(1..)?).ue()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 0001000 -> 0, 1, 2, 3, 7
        let data = [0b1010_0110, 0b0100_0001, 0b0000_0000];
        let mut r = RbspBits::new(&data);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.ue(), Some(7));
        assert_eq!(r.ue(), None);
        // Emulation prevention byte skipped: 00 00 03 01 -> 23 zeros then 1...
        let data = [0x00, 0x00, 0x03, 0x01, 0x80, 0x00, 0x00];
        let mut r = RbspBits::new(&data);
        assert_eq!(r.ue(), Some((1 << 23) - 1 + (1 << 22)));
        assert_eq!(first_mb_in_slice(&[0x65, 0x88]), Some(0));
        assert_eq!(first_mb_in_slice(&[0x41, 0x40]), Some(1));
        assert_eq!(first_mb_in_slice(&[0x41]), None);
        assert_eq!(first_mb_in_slice(&[]), None);
    }

    #[test]
    fn nal_types() {
        assert_eq!(nal_type(&[0x67]), 7);
        assert_eq!(nal_type(&[0x65, 1]), 5);
        assert_eq!(nal_type(&[]), 0);
    }

    #[test]
    fn config_from_fixture_sps() {
        let avcc = parse_avcc(&fixture_avcc()).unwrap();
        let cfg = video_config(avcc.sps.clone(), avcc.pps.clone()).unwrap();
        assert_eq!((cfg.width, cfg.height), (160, 120));
        assert_eq!(cfg.frame_rate, Some((25, 1)));
        assert_eq!(video_config(vec![], vec![]), Err(H264Error::NoSps));
        assert_eq!(
            video_config(vec![], vec![]).unwrap_err().to_string(),
            "expected at least one sps, found none"
        );
        assert!(matches!(
            video_config(vec![Bytes::from_static(b"\x67\x64")], vec![]),
            Err(H264Error::BadSps(_))
        ));
        let e = video_config(vec![Bytes::from_static(b"\x68\x64")], vec![]).unwrap_err();
        assert_eq!(e, H264Error::NotSps(8));
        assert_eq!(
            e.to_string(),
            "expected an sps nal unit (type 7), found type 8"
        );
    }

    /// The avcC box payload ffmpeg wrote into the MP4 fixture.
    pub(crate) fn fixture_avcc() -> Vec<u8> {
        let mp4 = include_bytes!("../../../tests/fixtures/codec/testsrc-160x120-bf3.mp4");
        let i = memchr::memmem::find(mp4, b"avcC").unwrap();
        let size = u32::from_be_bytes(mp4[i - 4..i].try_into().unwrap()) as usize;
        mp4[i + 4..i - 4 + size].to_vec()
    }
}
