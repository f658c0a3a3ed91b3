//! RTP (RFC 3550) for H.264, H.265 and AAC, sans-IO.
//!
//! - [`Packet`]: parse and write the fixed header (CSRCs, extension and padding handled).
//! - [`dts`]: DTS from PTS and the reorder delay ([`dts::DtsClock`]), for RTP's video.
//! - [`nal`]: what H.264 and H.265 share (one depacketizer and packetizer over a codec trait).
//! - [`h264`]: RFC 6184 depacketizer (single NAL, STAP-A, FU-A; a sequence gap drops to the next
//!   keyframe) and packetizer (single NAL, FU-A, STAP-A with SPS+PPS before each IDR).
//! - [`h265`]: RFC 7798 depacketizer (single NAL, AP, FU; a gap drops to the next IRAP picture)
//!   and packetizer (single NAL, FU, an AP with VPS+SPS+PPS before each IRAP picture).
//! - [`aac`]: RFC 3640 AAC-hbr depacketizer and packetizer.
//! - [`rtcp`]: sender reports (NTP ↔ RTP mapping) and a lenient reader for SR/RR/BYE.
//! - [`reorder`]: RTP over UDP back in sequence order before the depacketizers.
//! - [`ingest`]: a publisher's RTP streams → river [`MediaEvent`]s with one shared clock.
//! - [`Sender`]: per-receiver sequence numbers, SSRC and timestamp offset over shared payloads.
//!
//! Timestamps: media time is 90 kHz ([`crate::media::CLOCK_HZ`]); RTP time is the stream's clock
//! (90 kHz for video, the sample rate for AAC) plus a random offset.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

pub mod aac;
pub mod dts;
pub mod h264;
pub mod h265;
pub mod ingest;
pub mod nal;
pub mod reorder;
pub mod rtcp;
pub mod view;

use bytes::Bytes;

use crate::media::{VideoCodec, VideoConfig, CLOCK_HZ};

/// Frames of reordering of a video configuration (the DTS delay at a keyframe): H.264's VUI
/// `max_num_reorder_frames` (else 2, 0 for Baseline), H.265's `sps_max_num_reorder_pics`.
pub fn reorder_frames(cfg: &VideoConfig) -> i64 {
    use nal::NalCodec;
    match cfg.codec {
        VideoCodec::H264 => h264::H264::reorder(cfg),
        VideoCodec::H265 => h265::H265::reorder(cfg),
    }
}

/// Largest RTP packet accepted or produced (an interleaved frame's 16-bit length).
pub const MAX_PACKET: usize = 65535;
/// Payload size for UDP: fits a 1500-byte Ethernet MTU with IP/UDP/RTP headers.
pub const MTU_UDP: usize = 1400;
/// Payload size over TCP interleaved: larger packets, fewer headers.
pub const MTU_TCP: usize = 8192;

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than the fixed header (its length).
    TooShort(usize),
    /// A version other than 2.
    Version(u8),
    /// The extension bit set, the extension header missing.
    Extension,
    /// A padding count of zero or past the packet.
    Padding(usize),
    /// CSRCs or the extension run past the payload.
    NoPayload,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PacketError::TooShort(n) => {
                write!(f, "expected an RTP packet of at least 12 bytes, found {n}")
            }
            PacketError::Version(v) => write!(f, "expected RTP version 2, found {v}"),
            PacketError::Extension => {
                f.write_str("expected an RTP header extension, found the end")
            }
            PacketError::Padding(p) => {
                write!(f, "expected RTP padding within the packet, found {p}")
            }
            PacketError::NoPayload => {
                f.write_str("expected an RTP payload after the header, found the end")
            }
        }
    }
}

impl std::error::Error for PacketError {}

/// A parsed RTP packet borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        if data.len() < 12 {
            return Err(PacketError::TooShort(data.len()));
        }
        if data[0] >> 6 != 2 {
            return Err(PacketError::Version(data[0] >> 6));
        }
        let cc = usize::from(data[0] & 0x0f);
        let mut start = 12 + 4 * cc;
        if data[0] & 0x10 != 0 {
            if data.len() < start + 4 {
                return Err(PacketError::Extension);
            }
            let words = usize::from(u16::from_be_bytes([data[start + 2], data[start + 3]]));
            start += 4 + 4 * words;
        }
        let mut end = data.len();
        if data[0] & 0x20 != 0 {
            let pad = usize::from(data[end - 1]);
            if pad == 0 || pad > end {
                return Err(PacketError::Padding(pad));
            }
            end -= pad;
        }
        if start > end {
            return Err(PacketError::NoPayload);
        }
        Ok(Packet {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7f,
            seq: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: &data[start..end],
        })
    }
}

/// The 12-byte fixed header.
pub fn header(marker: bool, payload_type: u8, seq: u16, timestamp: u32, ssrc: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = 0x80;
    h[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..8].copy_from_slice(&timestamp.to_be_bytes());
    h[8..12].copy_from_slice(&ssrc.to_be_bytes());
    h
}

/// One packet's payload from a packetizer, without header: shared by every receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub marker: bool,
    /// Media time of the frame, 90 kHz.
    pub pts: i64,
    pub data: Bytes,
}

/// 90 kHz media time → RTP clock units (wrapping), plus `offset`.
pub fn to_rtp_time(pts: i64, clock_rate: u32, offset: u32) -> u32 {
    let hz = i128::from(CLOCK_HZ);
    let t = (i128::from(pts) * i128::from(clock_rate) + hz / 2).div_euclid(hz);
    (t as u32).wrapping_add(offset)
}

/// Extends 32-bit RTP timestamps to i64 (wraps and small backward steps handled).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrapper {
    last: Option<(u32, i64)>,
}

impl Unwrapper {
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some((last, ext)) => ext + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last = Some((ts, ext));
        ext
    }
}

/// A receiver's view of one outgoing stream: its SSRC, sequence numbers and timestamp offset, and
/// the counters a sender report needs.
#[derive(Debug, Clone)]
pub struct Sender {
    pub ssrc: u32,
    pub seq: u16,
    pub offset: u32,
    pub clock_rate: u32,
    pub payload_type: u8,
    pub packets: u32,
    pub octets: u32,
    /// The last media time sent (90 kHz), for sender reports.
    pub last_pts: Option<i64>,
}

impl Sender {
    pub fn new(ssrc: u32, seq: u16, offset: u32, clock_rate: u32, payload_type: u8) -> Self {
        Sender {
            ssrc,
            seq,
            offset,
            clock_rate,
            payload_type,
            packets: 0,
            octets: 0,
            last_pts: None,
        }
    }

    /// The header for the next packet carrying `p` (advances the sequence number).
    pub fn next_header(&mut self, p: &Payload) -> [u8; 12] {
        let h = header(
            p.marker,
            self.payload_type,
            self.seq,
            to_rtp_time(p.pts, self.clock_rate, self.offset),
            self.ssrc,
        );
        self.seq = self.seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(p.data.len() as u32);
        self.last_pts = Some(p.pts);
        h
    }

    /// Writes the whole packet (header and payload).
    pub fn write(&mut self, p: &Payload, out: &mut Vec<u8>) {
        let h = self.next_header(p);
        out.extend_from_slice(&h);
        out.extend_from_slice(&p.data);
    }

    pub fn rtp_time(&self, pts: i64) -> u32 {
        to_rtp_time(pts, self.clock_rate, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = header(true, 96, 65535, 0xdead_beef, 0x1234_5678);
        let mut pkt = h.to_vec();
        pkt.extend_from_slice(b"xyz");
        let p = Packet::parse(&pkt).unwrap();
        assert_eq!(
            (
                p.marker,
                p.payload_type,
                p.seq,
                p.timestamp,
                p.ssrc,
                p.payload
            ),
            (true, 96, 65535, 0xdead_beef, 0x1234_5678, &b"xyz"[..])
        );
    }

    #[test]
    fn csrc_extension_padding() {
        let mut pkt = header(false, 97, 1, 2, 3).to_vec();
        pkt[0] |= 0x01 | 0x10 | 0x20; // one CSRC, extension, padding
        pkt.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, 1 word
        pkt.extend_from_slice(b"ab");
        pkt.extend_from_slice(&[0, 0, 3]); // padding
        assert_eq!(Packet::parse(&pkt).unwrap().payload, b"ab");
        for bad in [&pkt[..11], &pkt[..15], &[0x40u8; 12][..]] {
            assert!(Packet::parse(bad).is_err());
        }
        let mut bad = header(false, 97, 1, 2, 3).to_vec();
        bad[0] |= 0x20;
        bad.push(200);
        assert!(Packet::parse(&bad).is_err());
        assert_eq!(Packet::parse(&bad), Err(PacketError::Padding(200)));
        assert_eq!(Packet::parse(&pkt[..11]), Err(PacketError::TooShort(11)));
        assert_eq!(
            Packet::parse(&[0x40u8; 12]).unwrap_err().to_string(),
            "expected RTP version 2, found 1"
        );
    }

    #[test]
    fn times() {
        assert_eq!(to_rtp_time(90_000, 44_100, 5), 44_105);
        assert_eq!(to_rtp_time(3000, 90_000, u32::MAX), 2999);
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 1), i64::from(u32::MAX - 1));
        assert_eq!(u.unwrap(3), i64::from(u32::MAX) + 4);
        assert_eq!(u.unwrap(1), i64::from(u32::MAX) + 2);
        let mut s = Sender::new(7, 65535, 100, 90_000, 96);
        let p = Payload {
            marker: true,
            pts: 9000,
            data: Bytes::from_static(b"q"),
        };
        let mut out = Vec::new();
        s.write(&p, &mut out);
        s.write(&p, &mut out);
        let a = Packet::parse(&out[..13]).unwrap();
        let b = Packet::parse(&out[13..]).unwrap();
        assert_eq!((a.seq, b.seq, a.timestamp), (65535, 0, 9100));
        assert_eq!((s.packets, s.octets), (2, 2));
    }
}
