//! FLV, the container layer only: the file header, tags and tag headers, AMF0 script data.
//!
//! - [`FlvReader`]: a streaming push parser from bytes to [`FlvEvent`]s (header, tags, warnings). It
//!   emits a tag as soon as its body is complete, checks each PreviousTagSize when it arrives, and
//!   resynchronises on damage (one warning per damaged stretch, naming the offset and the bytes
//!   skipped). Its output does not depend on how the input is chunked.
//! - [`VideoTagHeader::parse`], [`AudioTagHeader::parse`]: the first bytes of a tag body (AVC and
//!   AAC packet types, composition time, the Enhanced-RTMP ex-header), payloads as zero-copy slices.
//! - [`parse_script`]: script tags (`onMetaData`, `@setDataFrame`) through the `amf` crate, after a
//!   bounds/depth/size pre-scan that makes the crate safe on hostile input.
//! - [`writer`]: the header, tags, AVC/AAC bodies and `onMetaData`, appended to a `Vec<u8>`.
//!
//! H.264 and AAC bitstreams themselves are not looked at here.

mod body;
mod error;
mod reader;
mod script;
pub mod writer;

pub use body::{
    avc_like_payload, AacPacketType, AudioPacket, AudioTag, AudioTagHeader, AvcPacketType,
    ExVideoPacketType, FourCc, VideoFrameType, VideoPacket, VideoTag, VideoTagHeader,
};
pub use error::FlvError;
pub use reader::{FlvEvent, FlvReader, DEFAULT_MAX_TAG_SIZE};
pub use script::{parse_script, ScriptData, MAX_AMF_DEPTH};
pub use writer::{
    aac_audio_body, aac_audio_tag_head, avc_video_body, avc_video_tag_head, ex_video_tag_head,
    metadata_body, write_aac_audio_tag, write_avc_video_tag, write_ex_video_tag, write_header,
    write_prev_tag_size, write_tag, write_tag_header,
};

use bytes::Bytes;

/// The AMF0 types of the `amf` crate, as used by [`ScriptData`] and [`metadata_body`].
pub use amf::amf0;

/// Length of the FLV file header (signature, version, flags, DataOffset).
pub const HEADER_LEN: usize = 9;
/// Length of a tag header (type, DataSize, Timestamp, TimestampExtended, StreamID).
pub const TAG_HEADER_LEN: usize = 11;
/// Largest DataSize a tag header can express (24 bits).
pub const MAX_DATA_SIZE: usize = 0xFF_FFFF;

/// The type of a tag (the low 5 bits of its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// 8
    Audio,
    /// 9
    Video,
    /// 18
    Script,
    /// Anything else (only ever produced for small tags; see [`FlvReader`]).
    Other(u8),
}

impl TagKind {
    pub fn from_u8(t: u8) -> TagKind {
        match t {
            8 => TagKind::Audio,
            9 => TagKind::Video,
            18 => TagKind::Script,
            n => TagKind::Other(n),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
            TagKind::Other(n) => n,
        }
    }
}

/// One FLV tag, as stored: the body is not interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: TagKind,
    /// Milliseconds: the 24-bit Timestamp with TimestampExtended as the high 8 bits.
    pub timestamp: u32,
    /// Always 0 in conforming files.
    pub stream_id: u32,
    /// The tag body (DataSize bytes), a slice of the reader's buffer.
    pub body: Bytes,
    /// Absolute byte offset of the tag header in the input stream.
    pub offset: u64,
}

#[cfg(test)]
mod tests;
