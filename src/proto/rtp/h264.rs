//! H.264 over RTP (RFC 6184), packetization mode 0 and 1: single NAL unit packets, STAP-A and
//! FU-A, on the shared [`super::nal`] depacketizer and packetizer.
//!
//! - [`Depacketizer`]: a sequence gap drops to the next IDR (and an IDR whose first packets were
//!   lost is dropped too); DTS at each keyframe is PTS − the reorder delay (VUI
//!   `max_num_reorder_frames`, else 2 frames unless the profile is Baseline).
//! - [`Packetizer`]: SPS and PPS in one STAP-A before each IDR, FU-A past the MTU.

use bytes::{Bytes, BytesMut};

use super::nal::{self, NalCodec};
use crate::codec::h264::{self, nal_types};
use crate::media::{Codec, VideoConfig};

pub use super::nal::MAX_AU;

const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// RFC 6184's NAL units.
pub struct H264;

pub type Depacketizer = nal::Depacketizer<H264>;
pub type Packetizer = nal::Packetizer<H264>;

impl NalCodec for H264 {
    const NAME: &'static str = "h264";
    const CODEC: Codec = Codec::H264;
    const KEY: &'static str = "keyframe";
    const PARAMS: &'static str = "sps/pps";
    const AGG_NAME: &'static str = "STAP-A";
    const HDR: usize = 1;
    const MAX_SINGLE: u8 = 23;
    const AGG: u8 = STAP_A;
    const FRAG: u8 = FU_A;
    const FU_TYPE_MASK: u8 = 0x1f;
    const LEADING_PICTURES: bool = false;
    const N_SETS: usize = 2;
    const SPS_SLOT: usize = 0;

    fn nal_type(nal: &[u8]) -> u8 {
        h264::nal_type(nal)
    }

    fn is_vcl(t: u8) -> bool {
        (1..=5).contains(&t)
    }

    fn is_key(t: u8) -> bool {
        t == nal_types::IDR
    }

    fn is_aud(t: u8) -> bool {
        t == nal_types::AUD
    }

    fn opens_au(t: u8) -> bool {
        h264::opens_au(t)
    }

    fn param_slot(t: u8) -> Option<usize> {
        match t {
            nal_types::SPS => Some(0),
            nal_types::PPS => Some(1),
            _ => None,
        }
    }

    fn param_lists(c: &VideoConfig) -> Vec<&[Bytes]> {
        vec![&c.sps, &c.pps]
    }

    fn video_config(sets: Vec<Bytes>) -> Result<VideoConfig, String> {
        let mut it = sets.into_iter();
        let (sps, pps) = (it.next(), it.next());
        h264::video_config(sps.into_iter().collect(), pps.into_iter().collect())
            .map_err(|e| e.to_string())
    }

    /// VUI `max_num_reorder_frames`, else 0 for Baseline and Constrained Baseline, else 2.
    fn reorder(c: &VideoConfig) -> i64 {
        let Some(sps) = c.sps.first() else { return 0 };
        if let Ok(p) = h264::parse_sps(sps) {
            if let Some(r) = p
                .vui_parameters
                .as_ref()
                .and_then(|v| v.bitstream_restrictions.as_ref())
            {
                return i64::from(r.max_num_reorder_frames.min(16));
            }
        }
        match sps.get(1) {
            Some(66) => 0,
            _ => 2,
        }
    }

    /// F and NRI of the FU indicator, the type of the FU header.
    fn fu_nal_header(p: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(&[(p[0] & 0xe0) | (p[1] & 0x1f)]);
    }

    fn fu_payload_header(nal: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(&[(nal[0] & 0xe0) | FU_A]);
    }

    /// The highest NRI of the aggregated units (RFC 6184 5.7.1).
    fn agg_payload_header(sets: &[Bytes], out: &mut BytesMut) {
        let nri = sets
            .iter()
            .map(|s| s.first().copied().unwrap_or(0) & 0x60)
            .max()
            .unwrap_or(0);
        out.extend_from_slice(&[nri | STAP_A]);
    }
}

#[cfg(test)]
mod tests;
