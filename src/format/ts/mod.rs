//! MPEG-TS (ISO 13818-1) container layer: a push demuxer that turns 188-byte transport packets into
//! PES payloads with their timestamps, and a writer that does the reverse.
//!
//! This module deals in PES payloads (bytes) and 90 kHz PTS/DTS only; it does not look inside the
//! elementary streams (H.264, AAC): that is [`crate::codec`]'s job.
//!
//! - [`TsDemuxer`]: `push(bytes) -> Vec<TsEvent>`, with resync after damage, PSI section assembly and
//!   CRC checks, continuity-counter checks, and every problem reported as a [`Diag`] carrying the
//!   absolute byte offset of the packet it concerns.
//! - [`TsMuxer`]: appends whole 188-byte packets to a `Vec<u8>`: PAT/PMT before the first PES, before
//!   every video keyframe on the PCR PID and at least every [`PSI_INTERVAL`] of DTS; PCR on the PCR PID;
//!   random_access_indicator on keyframes; adaptation-field stuffing.
//!
//! Only 188-byte packets are supported (not the 192-byte M2TS or 204-byte FEC variants).

mod crc;
mod demux;
mod mux;
pub(crate) mod psi;

pub use crc::crc32_mpeg2;
pub use demux::TsDemuxer;
pub use mux::{MuxStream, TsMuxer};

use crate::error::Diag;
use bytes::Bytes;

/// Size of one transport packet.
pub const PACKET_SIZE: usize = 188;
/// The sync byte every transport packet starts with.
pub const SYNC_BYTE: u8 = 0x47;
/// PID of the program association table.
pub const PID_PAT: u16 = 0x0000;
/// PID of the null packets (stuffing), ignored by the demuxer.
pub const PID_NULL: u16 = 0x1FFF;
/// PMT PID the muxer uses (as ffmpeg does).
pub const PID_PMT: u16 = 0x1000;
/// Video elementary stream PID the river tools use (as ffmpeg does).
pub const PID_VIDEO: u16 = 0x100;
/// Audio elementary stream PID the river tools use (as ffmpeg does).
pub const PID_AUDIO: u16 = 0x101;
/// stream_type of H.264 video (ISO 13818-1 table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// stream_type of AAC audio in ADTS framing.
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// PES stream_id of the first video stream.
pub const STREAM_ID_VIDEO: u8 = 0xE0;
/// PES stream_id of the first audio stream.
pub const STREAM_ID_AUDIO: u8 = 0xC0;
/// Largest PES the demuxer reassembles; bigger ones are dropped with a warning.
pub const MAX_PES_SIZE: usize = 16 * 1024 * 1024;
/// Timestamps (PTS, DTS, PCR base) are 33-bit counters.
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
/// The muxer repeats PAT/PMT at least this often, in 90 kHz units of DTS (0.5 s).
pub const PSI_INTERVAL: u64 = 45_000;

/// One elementary stream as the PMT lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    pub pid: u16,
    pub stream_type: u8,
}

/// One reassembled PES packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pes {
    pub pid: u16,
    /// The stream_type the PMT gave for this PID.
    pub stream_type: u8,
    /// PES stream_id (0xE0.. video, 0xC0.. audio, ...).
    pub stream_id: u8,
    /// Presentation timestamp, 33 bits, as stored (not unwrapped).
    pub pts: Option<u64>,
    /// Decode timestamp, 33 bits, as stored; `None` when the header carries only a PTS.
    pub dts: Option<u64>,
    /// random_access_indicator was set in the adaptation field of this PES's first packet.
    pub random_access: bool,
    /// A discontinuity_indicator was set on this PID since the previous PES started.
    pub discontinuity: bool,
    /// Data is missing or damaged: a continuity-counter gap inside this PES, or it ended before
    /// its PES_packet_length was reached. A warning was emitted too.
    pub corrupt: bool,
    /// The PES payload (the bytes after the PES header).
    pub data: Bytes,
    /// Absolute byte offset of the transport packet that started this PES.
    pub offset: u64,
}

/// What the demuxer produces, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsEvent {
    /// The first program's PMT: sent when first seen and whenever its content changes.
    Program {
        program_number: u16,
        pcr_pid: u16,
        streams: Vec<StreamInfo>,
        /// Absolute byte offset of the packet that completed the PMT section.
        offset: u64,
    },
    /// A complete PES packet of a stream listed in the PMT.
    Pes(Pes),
    /// A problem the demuxer recovered from.
    Warning(Diag),
}

#[cfg(test)]
mod tests;
