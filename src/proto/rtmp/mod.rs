//! RTMP, as a sans-IO server session: bytes and time in, events and bytes to send out.
//!
//! - [`handshake`]: the simple handshake (C0/C1/C2 ↔ S0/S1/S2). A "complex" (digest) C1 from
//!   Flash-era clients is accepted as plain bytes; ffmpeg and OBS accept a simple-handshake server.
//! - [`chunk`]: the chunk-stream [`ChunkReader`] and [`ChunkWriter`]: all four header formats,
//!   extended timestamps (repeated in format-3 chunks), Set Chunk Size and Abort, with limits on
//!   chunk size, message size, buffered bytes and chunk streams.
//! - [`message`]: protocol control and user control messages, and AMF0 commands (decoded through
//!   [`crate::format::flv::parse_script`], whose pre-scan bounds the `amf` crate).
//! - [`ServerSession`]: the server side of a connection, for publishers (media in) and players
//!   (media out). Feed it with [`ServerSession::push`], read [`ServerEvent`]s with
//!   [`ServerSession::poll_event`], answer them (`accept_*`/`reject_*`), send what
//!   [`ServerSession::take_output`] returns, and call [`ServerSession::handle_timeout`] at
//!   [`ServerSession::poll_deadline`].
//! - [`policy`]: the publish/play policy river-rtmp-in and the relay hub share: the application
//!   and stream names of a connect, publish and play, their parameters (passwords), and the
//!   accept/refuse decisions.
//!
//! Media travels as FLV tag bodies (the RTMP audio/video message payload is exactly an FLV tag
//! body), so [`crate::format::flv`] parses it, including the Enhanced-RTMP FourCC video header.
//! Timestamps are the 32-bit milliseconds RTMP carries, wrapping; run them through
//! [`crate::timeline`] (with [`crate::timeline::WRAP_FLV`]) to unwrap them.

pub mod chunk;
pub mod handshake;
pub mod message;
pub mod policy;
mod session;
pub mod splice;

pub use chunk::{
    encode, ChunkReader, ChunkWriter, FirstHeader, Message, ReaderLimits, DEFAULT_CHUNK_SIZE,
};
pub use message::{unannounced_codec, Command, MessageType, UserControl, MAX_FOURCC_LIST};
pub use session::{
    MediaKind, ServerConfig, ServerEvent, ServerSession, SessionStats, ACCEPTED_FOURCCS, CS_AUDIO,
    CS_DATA, CS_VIDEO, MEDIA_CSIDS,
};
pub use splice::FlvSplice;

use std::fmt;

/// What kind of failure an [`RtmpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmpErrorKind {
    /// The handshake bytes were wrong (version, or not RTMP at all).
    Handshake,
    /// The chunk stream or a message broke the protocol.
    Protocol,
    /// A configured limit was exceeded (chunk size, message size, buffered bytes, streams).
    Limit,
    /// A deadline passed (handshake, idle).
    Timeout,
    /// The caller used the API out of order (e.g. accepting a publish that was never asked for).
    State,
}

/// An error that ends the session. It says what was expected, what came, and the byte offset in
/// the bytes received from the peer (handshake included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpError {
    pub kind: RtmpErrorKind,
    pub offset: u64,
    pub message: String,
}

impl RtmpError {
    pub fn new(kind: RtmpErrorKind, offset: u64, message: impl Into<String>) -> Self {
        RtmpError {
            kind,
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for RtmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rtmp: {} (at byte offset {})", self.message, self.offset)
    }
}

impl std::error::Error for RtmpError {}

#[cfg(test)]
mod tests;
