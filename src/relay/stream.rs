//! Format detection and keyframe marks: a broadcast's bytes cut into [`Chunk`]s.
//!
//! FIRST CUT: detection only; every chunk is `Mark::Data`.

use bytes::{Bytes, BytesMut};

use crate::cli::InputFormat;
use crate::pipeline::detect;

/// How many bytes detection may hold back (as [`crate::pipeline::detect`]).
pub const DETECT_LIMIT: usize = 188 * 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamFormat {
    Flv,
    Ts,
    AnnexB,
    Opaque,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    FlvFile,
    FlvMetadata,
    FlvVideoConfig,
    FlvAudioConfig,
    TsPat,
    TsPmt,
    H264Sps,
    H264Pps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    Header(HeaderKind),
    Keyframe,
    Data,
}

#[derive(Clone, Debug)]
pub struct Chunk {
    pub data: Bytes,
    pub mark: Mark,
}

impl Chunk {
    pub fn new(data: impl Into<Bytes>, mark: Mark) -> Self {
        Chunk {
            data: data.into(),
            mark,
        }
    }
}

/// Detects the format of a broadcast from its first bytes: `None` = not enough bytes yet.
pub fn detect_format(prefix: &[u8], at_eof: bool) -> Option<StreamFormat> {
    if !prefix.is_empty()
        && !at_eof
        && b"FLV".starts_with(&prefix[..prefix.len().min(3)])
        && prefix.len() < 3
    {
        return None;
    }
    match detect(prefix, at_eof)? {
        InputFormat::Flv => Some(StreamFormat::Flv),
        InputFormat::Ts => Some(StreamFormat::Ts),
        InputFormat::H264 => {
            if prefix.starts_with(&[0, 0, 1]) || prefix.starts_with(&[0, 0, 0, 1]) {
                Some(StreamFormat::AnnexB)
            } else {
                Some(StreamFormat::Opaque)
            }
        }
    }
}

pub struct Splitter {
    format: Option<StreamFormat>,
    pending: BytesMut,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Splitter {
    pub fn new() -> Self {
        Splitter {
            format: None,
            pending: BytesMut::new(),
        }
    }

    pub fn format(&self) -> Option<StreamFormat> {
        self.format
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        if self.format.is_none() {
            self.pending.extend_from_slice(data);
            match detect_format(&self.pending, false) {
                Some(f) => self.format = Some(f),
                None => return,
            }
            let all = self.pending.split().freeze();
            if !all.is_empty() {
                out.push(Chunk::new(all, Mark::Data));
            }
            return;
        }
        if !data.is_empty() {
            out.push(Chunk::new(Bytes::copy_from_slice(data), Mark::Data));
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Chunk>) {
        if self.format.is_none() {
            self.format = Some(detect_format(&self.pending, true).unwrap_or(StreamFormat::Opaque));
            let all = self.pending.split().freeze();
            if !all.is_empty() {
                out.push(Chunk::new(all, Mark::Data));
            }
        }
    }
}
