//! H.265/HEVC elementary streams: NAL unit headers, parameter sets, hvcC, access units and
//! timestamps for raw streams. No containers and no I/O.
//!
//! Annex B splitting and the length-prefixed form are the same as H.264's and are shared with
//! [`crate::codec::h264`] ([`NalSplitter`](super::h264::NalSplitter),
//! [`avcc_nals`](super::h264::avcc_nals)).
//!
//! - [`AnnexBReader`]: the raw-H.265 input stage: Annex B bytes in, [`MediaEvent`]s out.
//! - [`parse_hvcc`], [`write_hvcc`]: the HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1).
//! - [`video_config`]: a [`VideoConfig`] from VPS, SPS and PPS.
//! - [`write_annexb_au`]: a length-prefixed access unit back to Annex B (AUD, parameter sets
//!   before IRAP pictures), as MPEG-TS carries it.
//!
//! The parser reads exactly what river needs (H.265 7.3): the NAL unit header; the SPS up to its
//! VUI timing info (picture size, bit depths, POC length, reorder depth, frame rate, the general
//! profile/tier/level bytes for hvcC); the first PPS fields; the slice segment header up to
//! `slice_pic_order_cnt_lsb`. No crate fitted: `scuffle-h265` (SPS and hvcC only) panics on
//! arithmetic overflow with malformed SPS in debug builds, and the others are partial or pull a
//! media framework in.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

mod error;
mod hvcc;
mod ps;
mod reader;

pub use error::H265Error;
pub use hvcc::{annexb_pieces, parse_hvcc, write_annexb_au, write_hvcc, Hvcc};
pub use ps::{parse_pps, parse_sps, Pps, Sps};
pub use reader::{AnnexBReader, MAX_AU_SIZE};

use bytes::Bytes;

use crate::media::{VideoCodec, VideoConfig};

/// NAL unit types river cares about (H.265 Table 7-1).
pub mod nal_types {
    pub const TRAIL_N: u8 = 0;
    pub const RADL_N: u8 = 6;
    pub const RADL_R: u8 = 7;
    pub const RASL_N: u8 = 8;
    pub const RASL_R: u8 = 9;
    pub const BLA_W_LP: u8 = 16;
    pub const BLA_W_RADL: u8 = 17;
    pub const BLA_N_LP: u8 = 18;
    pub const IDR_W_RADL: u8 = 19;
    pub const IDR_N_LP: u8 = 20;
    pub const CRA: u8 = 21;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    pub const EOS: u8 = 36;
    pub const EOB: u8 = 37;
    pub const FD: u8 = 38;
    pub const SEI_PREFIX: u8 = 39;
    pub const SEI_SUFFIX: u8 = 40;
}

/// Non-VCL NAL unit types that begin a new access unit when they follow a picture's slices
/// (H.265 7.4.2.4.4): VPS, SPS, PPS, AUD, prefix SEI, 41–44 and 48–55.
#[inline]
pub fn opens_au(t: u8) -> bool {
    use nal_types::*;
    matches!(t, VPS | SPS | PPS | AUD | SEI_PREFIX | 41..=44 | 48..=55)
}

/// The `nal_unit_type` of a NAL unit (2-byte header first); 0xff for one shorter than its header.
#[inline]
pub fn nal_type(nal: &[u8]) -> u8 {
    if nal.len() < 2 {
        return 0xff;
    }
    (nal[0] >> 1) & 0x3f
}

/// `TemporalId` (nuh_temporal_id_plus1 − 1) of a NAL unit; 0 for a malformed header.
#[inline]
pub fn temporal_id(nal: &[u8]) -> u8 {
    nal.get(1).map_or(0, |b| (b & 7).saturating_sub(1))
}

/// A VCL NAL unit type (a slice segment): 0 to 31.
#[inline]
pub fn is_vcl(t: u8) -> bool {
    t < 32
}

/// An IRAP picture type (BLA, IDR, CRA and the reserved IRAP types 22 and 23): a clean join point.
#[inline]
pub fn is_irap(t: u8) -> bool {
    (16..=23).contains(&t)
}

/// A RASL picture (skipped leading: cannot be decoded after a join at its CRA).
#[inline]
pub fn is_rasl(t: u8) -> bool {
    t == nal_types::RASL_N || t == nal_types::RASL_R
}

/// A leading picture (RADL or RASL): displayed before its IRAP, decoded after it.
#[inline]
pub fn is_leading(t: u8) -> bool {
    (nal_types::RADL_N..=nal_types::RASL_R).contains(&t)
}

/// An IDR picture: picture order count starts again, and the slice header has no POC LSB.
#[inline]
pub fn is_idr(t: u8) -> bool {
    t == nal_types::IDR_W_RADL || t == nal_types::IDR_N_LP
}

/// A sub-layer non-reference picture (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14).
#[inline]
pub fn is_sub_layer_non_ref(t: u8) -> bool {
    t <= 14 && t % 2 == 0
}

/// The type of the first VCL NAL unit of a length-prefixed access unit (4-byte lengths): what
/// kind of picture it is. Stops at the first malformed length.
pub fn au_picture_type(data: &[u8]) -> Option<u8> {
    super::h264::avcc_nals(data, 4)
        .map_while(Result::ok)
        .map(nal_type)
        .find(|&t| is_vcl(t))
}

/// Whether a length-prefixed access unit (4-byte lengths) holds an IRAP picture.
pub fn au_is_keyframe(data: &[u8]) -> bool {
    au_picture_type(data).is_some_and(is_irap)
}

/// Drops the RASL pictures of the CRA or BLA picture a stream joins at (starts, or resumes after
/// a loss): they reference pictures from before it, which the receiver never got. RADL pictures
/// and everything from the first trailing picture on pass. Frames are length-prefixed access units
/// (4-byte lengths).
#[derive(Debug, Default, Clone)]
pub struct JoinFilter {
    skipping: bool,
    dropped: u64,
}

impl JoinFilter {
    /// A join at `keyframe`, the access unit the stream now starts with.
    pub fn join(&mut self, keyframe: &[u8]) {
        self.skipping = matches!(
            au_picture_type(keyframe),
            Some(nal_types::CRA | nal_types::BLA_W_LP)
        );
    }

    /// Whether the access unit that follows (in decoding order) can be decoded after the join.
    pub fn keep(&mut self, au: &[u8]) -> bool {
        if !self.skipping {
            return true;
        }
        match au_picture_type(au) {
            Some(t) if is_rasl(t) => {
                self.dropped += 1;
                false
            }
            Some(t) if is_leading(t) => true,
            _ => {
                self.skipping = false;
                true
            }
        }
    }

    /// How many pictures were dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

/// Builds a [`VideoConfig`] from parameter sets, parsing the first SPS for the picture size (after
/// the conformance window) and the frame rate (VUI timing info, if present).
pub fn video_config(
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
) -> Result<VideoConfig, H265Error> {
    let first = sps.first().ok_or(H265Error::NoSps)?;
    let parsed = parse_sps(first)?;
    Ok(VideoConfig {
        codec: VideoCodec::H265,
        vps,
        sps,
        pps,
        width: parsed.width,
        height: parsed.height,
        frame_rate: parsed.frame_rate,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const BF2: &[u8] =
        include_bytes!("../../../tests/fixtures/codec/testsrc-160x120-bf2.h265");

    /// The hvcC box payload ffmpeg wrote into the MP4 fixture.
    pub(crate) fn fixture_hvcc() -> Vec<u8> {
        let mp4 = include_bytes!("../../../tests/fixtures/codec/testsrc-160x120-bf2-h265.mp4");
        let i = memchr::memmem::find(mp4, b"hvcC").unwrap();
        let size = u32::from_be_bytes(mp4[i - 4..i].try_into().unwrap()) as usize;
        mp4[i + 4..i - 4 + size].to_vec()
    }

    #[test]
    fn header_fields() {
        // VPS 40 01, SPS 42 01, IDR_W_RADL 26 01, CRA 2a 01, RASL_N 10 01, TSA_N with tid 2: 04 03.
        assert_eq!(nal_type(&[0x40, 0x01]), nal_types::VPS);
        assert_eq!(nal_type(&[0x42, 0x01]), nal_types::SPS);
        assert_eq!(nal_type(&[0x26, 0x01, 0xaf]), nal_types::IDR_W_RADL);
        assert_eq!(nal_type(&[0x2a, 0x01]), nal_types::CRA);
        assert!(is_rasl(nal_type(&[0x10, 0x01])));
        assert_eq!(temporal_id(&[0x04, 0x03]), 2);
        assert_eq!(nal_type(&[0x40]), 0xff);
        assert!(!is_vcl(0xff) && !is_irap(0xff));
        assert!(is_irap(16) && is_irap(21) && is_irap(23) && !is_irap(24) && !is_irap(15));
        assert!(is_leading(6) && is_leading(9) && !is_leading(5) && !is_leading(10));
        assert!(is_sub_layer_non_ref(0) && is_sub_layer_non_ref(8) && !is_sub_layer_non_ref(1));
        assert!(!is_sub_layer_non_ref(16));
    }

    #[test]
    fn config_from_fixture() {
        let h = parse_hvcc(&fixture_hvcc()).unwrap();
        let cfg = h.video_config().unwrap();
        assert_eq!(cfg.codec, VideoCodec::H265);
        assert_eq!((cfg.width, cfg.height), (160, 120));
        assert_eq!(cfg.frame_rate, Some((25, 1)));
        assert_eq!((cfg.vps.len(), cfg.sps.len(), cfg.pps.len()), (1, 1, 1));
        assert_eq!(video_config(vec![], vec![], vec![]), Err(H265Error::NoSps));
    }
}
