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
/// stream_type of H.265/HEVC video (ISO 13818-1 table 2-34).
pub const STREAM_TYPE_H265: u8 = 0x24;
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

/// What a PMT stream_type carries, as far as river needs to know: a name for messages and whether
/// it is video, audio or data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Video(&'static str),
    Audio(&'static str),
    /// Sections, subtitles, teletext, cues, metadata, private data and unknown types.
    Data(&'static str),
}

impl StreamKind {
    /// The kind of a stream_type (ISO 13818-1 table 2-34, and the ATSC types 0x81/0x87 for AC-3
    /// and E-AC-3). Private PES data (0x06: DVB subtitles, teletext, or audio that only a
    /// descriptor names) counts as data.
    pub fn of(stream_type: u8) -> StreamKind {
        match stream_type {
            0x01 => StreamKind::Video("MPEG-1 video"),
            0x02 => StreamKind::Video("MPEG-2 video"),
            0x10 => StreamKind::Video("MPEG-4 part 2 video"),
            0x1B => StreamKind::Video("H.264"),
            0x1E..=0x20 => StreamKind::Video("auxiliary or H.264 SVC/MVC sub-bitstream video"),
            0x21 => StreamKind::Video("JPEG 2000 video"),
            0x24 => StreamKind::Video("H.265"),
            0x25..=0x2A => StreamKind::Video("an H.265 layered or temporal sub-stream"),
            0x32 => StreamKind::Video("JPEG XS video"),
            0x33 => StreamKind::Video("H.266/VVC"),
            0x42 => StreamKind::Video("AVS video"),
            0xD1 => StreamKind::Video("Dirac video"),
            0xEA => StreamKind::Video("VC-1"),
            0x03 => StreamKind::Audio("MPEG-1 audio"),
            0x04 => StreamKind::Audio("MPEG-2 audio"),
            0x0F => StreamKind::Audio("AAC (ADTS)"),
            0x11 => StreamKind::Audio("AAC (LATM)"),
            0x1C => StreamKind::Audio("MPEG-4 audio"),
            0x2D | 0x2E => StreamKind::Audio("MPEG-H 3D audio"),
            0x81 => StreamKind::Audio("AC-3"),
            0x87 => StreamKind::Audio("E-AC-3"),
            0x05 | 0x0A..=0x0D => StreamKind::Data("sections"),
            0x06 => StreamKind::Data("private data, such as subtitles or teletext"),
            0x15 => StreamKind::Data("metadata"),
            0x86 => StreamKind::Data("SCTE-35 cues"),
            _ => StreamKind::Data("unknown"),
        }
    }
}

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
