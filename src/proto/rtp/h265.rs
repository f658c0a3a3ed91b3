//! H.265 over RTP (RFC 7798): single NAL unit packets, aggregation packets (AP, type 48) and
//! fragmentation units (FU, type 49), without decoding order numbers (`sprop-max-don-diff` 0, as
//! ffmpeg, GStreamer and live555 send), on the shared [`super::nal`] depacketizer and packetizer.
//!
//! - [`Depacketizer`]: keyframes are IRAP pictures; a sequence gap drops to the next one, and the
//!   RASL pictures of a CRA joined at are dropped too (they reference pictures the receiver never
//!   got). DTS: the reorder delay is SPS `sps_max_num_reorder_pics`, and an open-GOP CRA's
//!   leading pictures are allowed for.
//! - [`Packetizer`]: VPS, SPS and PPS in one AP before each IRAP picture, FU past the MTU.

use bytes::{Bytes, BytesMut};

use super::nal::{self, NalCodec};
use crate::codec::h265::{self, is_irap, nal_types};
use crate::media::{Codec, VideoConfig};

pub use super::nal::MAX_AU;

const AP: u8 = 48;
const FU: u8 = 49;

/// RFC 7798's NAL units.
pub struct H265;

pub type Depacketizer = nal::Depacketizer<H265>;
pub type Packetizer = nal::Packetizer<H265>;

impl NalCodec for H265 {
    const NAME: &'static str = "h265";
    const CODEC: Codec = Codec::H265;
    const KEY: &'static str = "IRAP picture";
    const PARAMS: &'static str = "vps/sps/pps";
    const AGG_NAME: &'static str = "aggregation packet";
    const HDR: usize = 2;
    const MAX_SINGLE: u8 = 47;
    const AGG: u8 = AP;
    const FRAG: u8 = FU;
    const FU_TYPE_MASK: u8 = 0x3f;
    const LEADING_PICTURES: bool = true;
    const N_SETS: usize = 3;
    const SPS_SLOT: usize = 1;

    fn nal_type(nal: &[u8]) -> u8 {
        h265::nal_type(nal)
    }

    fn is_vcl(t: u8) -> bool {
        h265::is_vcl(t)
    }

    fn is_key(t: u8) -> bool {
        is_irap(t)
    }

    fn is_aud(t: u8) -> bool {
        t == nal_types::AUD
    }

    fn opens_au(t: u8) -> bool {
        h265::opens_au(t)
    }

    fn param_slot(t: u8) -> Option<usize> {
        match t {
            nal_types::VPS => Some(0),
            nal_types::SPS => Some(1),
            nal_types::PPS => Some(2),
            _ => None,
        }
    }

    fn param_lists(c: &VideoConfig) -> Vec<&[Bytes]> {
        vec![&c.vps, &c.sps, &c.pps]
    }

    fn video_config(sets: Vec<Bytes>) -> Result<VideoConfig, String> {
        let mut it = sets.into_iter().map(|s| vec![s]);
        let (vps, sps, pps) = (it.next(), it.next(), it.next());
        h265::video_config(
            vps.unwrap_or_default(),
            sps.unwrap_or_default(),
            pps.unwrap_or_default(),
        )
        .map_err(|e| e.to_string())
    }

    fn reorder(c: &VideoConfig) -> i64 {
        c.sps
            .first()
            .and_then(|s| h265::parse_sps(s).ok())
            .map_or(2, |s| i64::from(s.max_num_reorder.min(16)))
    }

    /// The payload header's F, LayerId and TID with the FU header's type.
    fn fu_nal_header(p: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(&[(p[0] & 0x81) | ((p[2] & 0x3f) << 1), p[1]]);
    }

    fn fu_payload_header(nal: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(&[(nal[0] & 0x81) | (FU << 1), nal[1]]);
    }

    /// F 0, type 48, LayerId 0, TID 0 (the lowest of the parameter sets, RFC 7798 4.4.2).
    fn agg_payload_header(_sets: &[Bytes], out: &mut BytesMut) {
        out.extend_from_slice(&[AP << 1, 1]);
    }
}

#[cfg(test)]
mod tests;
