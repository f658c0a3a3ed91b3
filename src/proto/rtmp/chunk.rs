//! The chunk stream: messages cut into chunks on numbered chunk streams, each chunk with one of
//! four header formats.
//!
//! - Format 0: timestamp (absolute), length, type, message stream id (little-endian).
//! - Format 1: timestamp delta, length, type (same stream as before).
//! - Format 2: timestamp delta only.
//! - Format 3: nothing. Continues the message in progress, or starts a new one like the last
//!   header on that chunk stream, its timestamp advanced by that header's timestamp field (for a
//!   format-0 header that is the absolute timestamp, as ffmpeg and librtmp read it).
//!
//! A timestamp field of 0xFFFFFF means a 4-byte extended timestamp follows; it is repeated in
//! format-3 chunks on that chunk stream. Some old servers do not repeat it in continuation chunks:
//! the reader takes the 4 bytes as an extended timestamp only when they equal the one in force.
//!
//! [`ChunkReader`] applies Set Chunk Size and Abort itself (they change how the very next bytes
//! are read) and still reports them. Everything it holds is bounded by [`ReaderLimits`]. Its output
//! never depends on how the input was split.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::message::MessageType;
use super::{RtmpError, RtmpErrorKind};

/// The chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest value a 24-bit timestamp field carries before the extended timestamp takes over.
const TS_EXTENDED: u32 = 0xFF_FFFF;

/// One complete RTMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The chunk stream it came on (2 is protocol control).
    pub csid: u32,
    /// The message type id (see [`MessageType`]).
    pub type_id: u8,
    /// The message stream id (0 for the connection, else a stream made by createStream).
    pub stream_id: u32,
    /// Absolute timestamp in milliseconds; wraps at 2^32 as RTMP's does.
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Limits against hostile or broken peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Largest Set Chunk Size accepted.
    pub max_chunk_size: u32,
    /// Largest message length accepted (the format's own limit is 16 MiB - 1; the default, 8 MiB,
    /// is far above any real video frame; nginx-rtmp's default is 1 MiB).
    pub max_message_size: u32,
    /// Most bytes held across all incomplete messages.
    pub max_buffered: usize,
    /// Most chunk streams with state at once.
    pub max_chunk_streams: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_chunk_size: 1 << 24,
            max_message_size: 8 << 20,
            max_buffered: 64 << 20,
            max_chunk_streams: 64,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Header {
    timestamp: u32,
    ts_field: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

#[derive(Debug, Default)]
struct ReadState {
    hdr: Header,
    /// The message being collected, with its timestamp.
    partial: Option<(u32, BytesMut)>,
}

/// Chunks in, messages out.
#[derive(Debug)]
pub struct ChunkReader {
    limits: ReaderLimits,
    chunk_size: u32,
    buf: BytesMut,
    streams: HashMap<u32, ReadState>,
    buffered: usize,
    /// Offset of `buf[0]` in the peer's byte stream.
    offset: u64,
    broken: Option<RtmpError>,
}

impl ChunkReader {
    /// `base_offset` is where the chunk stream starts in the peer's bytes (after the handshake).
    pub fn new(limits: ReaderLimits, base_offset: u64) -> Self {
        ChunkReader {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            buf: BytesMut::new(),
            streams: HashMap::new(),
            buffered: 0,
            offset: base_offset,
            broken: None,
        }
    }

    /// Offset, in the peer's byte stream, of the first byte not yet parsed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The peer's chunk size in force.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes held: unparsed input plus incomplete messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.buffered
    }

    /// Appends every message completed by `data` to `out`. After an error the reader stays broken.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Message>) -> Result<(), RtmpError> {
        self.feed(data);
        while let Some(m) = self.next_message()? {
            out.push(m);
        }
        Ok(())
    }

    /// Appends input without parsing it (see [`next_message`](Self::next_message)).
    pub fn feed(&mut self, data: &[u8]) {
        if self.broken.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Unparsed input bytes held.
    pub fn unparsed(&self) -> usize {
        self.buf.len()
    }

    /// Parses the next complete message from the input fed so far.
    pub fn next_message(&mut self) -> Result<Option<Message>, RtmpError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        loop {
            match self.chunk() {
                Ok(Some(Some(m))) => return Ok(Some(m)),
                Ok(Some(None)) => {}
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.broken = Some(e.clone());
                    self.buf = BytesMut::new();
                    return Err(e);
                }
            }
        }
    }

    fn err(&self, kind: RtmpErrorKind, msg: String) -> RtmpError {
        RtmpError::new(kind, self.offset, msg)
    }

    /// Parses one whole chunk from the front of `buf`: `None` when it is not all there yet,
    /// `Some(None)` for a chunk that did not complete a message.
    fn chunk(&mut self) -> Result<Option<Option<Message>>, RtmpError> {
        let b = &self.buf[..];
        let Some(&b0) = b.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3F {
            0 => match b.get(1) {
                Some(&x) => (64 + u32::from(x), 2),
                None => return Ok(None),
            },
            1 => match b.get(1..3) {
                Some(x) => (64 + u32::from(x[0]) + 256 * u32::from(x[1]), 3),
                None => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let mh = [11usize, 7, 3, 0][fmt as usize];
        let Some(h) = b.get(pos..pos + mh) else {
            return Ok(None);
        };
        pos += mh;
        let u24 = |x: &[u8]| u32::from_be_bytes([0, x[0], x[1], x[2]]);
        let (prev, partial) = match self.streams.get(&csid) {
            Some(s) => (s.hdr, s.partial.as_ref().map(|(ts, p)| (*ts, p.len()))),
            None => {
                if fmt != 0 {
                    return Err(self.err(
                        RtmpErrorKind::Protocol,
                        format!("chunk stream {csid}: format {fmt} chunk header without a previous header on that chunk stream"),
                    ));
                }
                if self.streams.len() >= self.limits.max_chunk_streams {
                    return Err(self.err(
                        RtmpErrorKind::Limit,
                        format!(
                            "more than {} chunk streams in use (chunk stream {csid})",
                            self.limits.max_chunk_streams
                        ),
                    ));
                }
                (Header::default(), None)
            }
        };
        let mut st = prev;
        let ts_field = if fmt < 3 { Some(u24(&h[0..3])) } else { None };
        let extended = match ts_field {
            Some(f) => f == TS_EXTENDED,
            None => prev.extended,
        };
        let continuing = fmt == 3 && partial.is_some();
        let mut ext_value = None;
        if extended {
            let Some(x) = b.get(pos..pos + 4) else {
                return Ok(None);
            };
            let v = u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
            if continuing && v != prev.ts_field {
                // Not repeated by this peer: the 4 bytes are payload.
            } else {
                ext_value = Some(v);
                pos += 4;
            }
        }
        if !continuing {
            let field = ext_value.or(ts_field).unwrap_or(prev.ts_field);
            match fmt {
                0 => {
                    st.timestamp = field;
                    st.length = u24(&h[3..6]);
                    st.type_id = h[6];
                    st.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
                }
                1 => {
                    st.timestamp = prev.timestamp.wrapping_add(field);
                    st.length = u24(&h[3..6]);
                    st.type_id = h[6];
                }
                2 => st.timestamp = prev.timestamp.wrapping_add(field),
                _ => st.timestamp = prev.timestamp.wrapping_add(prev.ts_field),
            }
            st.ts_field = field;
            st.extended = extended;
            if st.length > self.limits.max_message_size {
                return Err(self.err(
                    RtmpErrorKind::Limit,
                    format!(
                        "chunk stream {csid}: message of {} bytes (type {}) is larger than the limit of {} bytes",
                        st.length, st.type_id, self.limits.max_message_size
                    ),
                ));
            }
        }
        let (msg_ts, have) = match partial {
            Some((ts, len)) if continuing => (ts, len as u32),
            _ => (st.timestamp, 0),
        };
        let remaining = st.length - have;
        let n = remaining.min(self.chunk_size) as usize;
        if self.buf.len() < pos + n {
            return Ok(None);
        }
        // The whole chunk is here: commit.
        let _ = self.buf.split_to(pos);
        let data = self.buf.split_to(n);
        self.offset += (pos + n) as u64;
        let state = self.streams.entry(csid).or_default();
        state.hdr = st;
        if !continuing {
            if let Some((_, p)) = state.partial.take() {
                // A new header in the middle of a message: the old one is abandoned.
                self.buffered -= p.len().min(self.buffered);
            }
        }
        let complete = have as usize + n == st.length as usize;
        let payload = if complete {
            match state.partial.take() {
                Some((_, mut p)) => {
                    self.buffered -= p.len().min(self.buffered);
                    p.extend_from_slice(&data);
                    Some(p.freeze())
                }
                None => Some(data.freeze()),
            }
        } else {
            let p = state.partial.get_or_insert_with(|| {
                (
                    msg_ts,
                    BytesMut::with_capacity((st.length as usize).min(1 << 16)),
                )
            });
            p.1.extend_from_slice(&data);
            self.buffered += data.len();
            None
        };
        if self.buffered > self.limits.max_buffered {
            return Err(self.err(
                RtmpErrorKind::Limit,
                format!(
                    "more than {} bytes held in incomplete messages",
                    self.limits.max_buffered
                ),
            ));
        }
        let Some(payload) = payload else {
            return Ok(Some(None));
        };
        let msg = Message {
            csid,
            type_id: st.type_id,
            stream_id: st.stream_id,
            timestamp: msg_ts,
            payload,
        };
        self.control(&msg)?;
        Ok(Some(Some(msg)))
    }

    /// Set Chunk Size and Abort take effect right away.
    fn control(&mut self, m: &Message) -> Result<(), RtmpError> {
        match MessageType::from_u8(m.type_id) {
            MessageType::SetChunkSize => {
                let v = read_u32(&m.payload).ok_or_else(|| {
                    self.err(
                        RtmpErrorKind::Protocol,
                        format!("set chunk size message of {} bytes", m.payload.len()),
                    )
                })? & 0x7FFF_FFFF;
                if v == 0 || v > self.limits.max_chunk_size {
                    return Err(self.err(
                        RtmpErrorKind::Limit,
                        format!(
                            "set chunk size {v} outside 1..={}",
                            self.limits.max_chunk_size
                        ),
                    ));
                }
                self.chunk_size = v;
            }
            MessageType::Abort => {
                if let Some(cs) = read_u32(&m.payload) {
                    if let Some(s) = self.streams.get_mut(&cs) {
                        if let Some((_, p)) = s.partial.take() {
                            self.buffered -= p.len().min(self.buffered);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub(crate) fn read_u32(b: &[u8]) -> Option<u32> {
    b.get(..4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

#[derive(Debug, Default, Clone, Copy)]
struct WriteState {
    timestamp: u32,
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Messages in, chunks out. Picks the smallest header format the previous header on the chunk
/// stream allows, and writes extended timestamps (repeated in format-3 chunks) as needed.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
    streams: HashMap<u32, WriteState>,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    pub fn new() -> Self {
        ChunkWriter {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Writes a Set Chunk Size message (with the old size) and uses `size` from then on.
    pub fn set_chunk_size(&mut self, size: u32, out: &mut Vec<u8>) {
        let size = size.clamp(1, 0x7FFF_FFFF);
        self.write(
            2,
            MessageType::SetChunkSize.as_u8(),
            0,
            0,
            &size.to_be_bytes(),
            out,
        );
        self.chunk_size = size;
    }

    /// Forgets what was last sent on chunk stream `csid`: its next message starts with a
    /// format-0 header. For a caller that wrote messages on `csid` by other means ([`encode`]).
    pub fn forget(&mut self, csid: u32) {
        self.streams.remove(&csid);
    }

    /// Appends `payload` as one message on chunk stream `csid` (2..=65599). Payloads longer than
    /// the 24-bit length field are cut to it (callers keep to the 16 MiB the format allows).
    pub fn write(
        &mut self,
        csid: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let csid = csid.clamp(2, 65599);
        let payload = &payload[..payload.len().min(0xFF_FFFF)];
        let length = payload.len() as u32;
        let prev = self.streams.get(&csid).copied();
        let (fmt, field) = match prev {
            Some(p) if p.stream_id == stream_id && timestamp >= p.timestamp => {
                let delta = timestamp - p.timestamp;
                if p.length == length && p.type_id == type_id {
                    if delta == p.ts_field {
                        (3u8, delta)
                    } else {
                        (2, delta)
                    }
                } else {
                    (1, delta)
                }
            }
            _ => (0, timestamp),
        };
        let h = FirstHeader {
            fmt,
            field,
            length,
            type_id,
            stream_id,
        };
        encode(csid, h, payload, self.chunk_size, out);
        self.streams.insert(
            csid,
            WriteState {
                timestamp,
                ts_field: field,
                length,
                type_id,
                stream_id,
            },
        );
    }
}

/// The first chunk's header of a message: its format (0-3), and the timestamp field (absolute for
/// format 0, a delta for 1 and 2), length, type and message stream id that format carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstHeader {
    pub fmt: u8,
    pub field: u32,
    pub length: u32,
    pub type_id: u8,
    pub stream_id: u32,
}

impl FirstHeader {
    /// The 4-byte extended timestamp follows the header, and every continuation chunk (a
    /// format-3 header repeats the field of the header before it).
    pub fn extended(&self) -> bool {
        self.field >= TS_EXTENDED
    }

    /// Bytes of the first chunk's header on chunk stream `csid` (basic header, message header,
    /// extended timestamp).
    pub fn len(&self, csid: u32) -> usize {
        let basic = match csid {
            0..=63 => 1,
            64..=319 => 2,
            _ => 3,
        };
        basic + [11, 7, 3, 0][usize::from(self.fmt.min(3))] + if self.extended() { 4 } else { 0 }
    }

    /// Appends the first chunk's header alone.
    pub fn write(&self, csid: u32, out: &mut Vec<u8>) {
        basic_header(self.fmt, csid, out);
        if self.fmt <= 2 {
            out.extend_from_slice(&self.field.min(TS_EXTENDED).to_be_bytes()[1..4]);
        }
        if self.fmt <= 1 {
            out.extend_from_slice(&self.length.to_be_bytes()[1..4]);
            out.push(self.type_id);
        }
        if self.fmt == 0 {
            out.extend_from_slice(&self.stream_id.to_le_bytes());
        }
        if self.extended() {
            out.extend_from_slice(&self.field.to_be_bytes());
        }
    }
}

/// Appends `payload` (at most 16 MiB - 1) as one message on chunk stream `csid`: the first chunk
/// with header `h`, then format-3 continuation chunks of at most `chunk_size` bytes each (with
/// the extended timestamp repeated when `h` has one). Stateless: [`ChunkWriter`] chooses `h`
/// from what it last sent on `csid`; a caller that shares one chunked message among several
/// connections chooses it itself.
pub fn encode(csid: u32, h: FirstHeader, payload: &[u8], chunk_size: u32, out: &mut Vec<u8>) {
    let cs = chunk_size.max(1) as usize;
    out.reserve(payload.len() + 18 + payload.len() / cs * 8);
    h.write(csid, out);
    let mut rest = payload;
    let first = rest.len().min(cs);
    out.extend_from_slice(&rest[..first]);
    rest = &rest[first..];
    while !rest.is_empty() {
        basic_header(3, csid, out);
        if h.extended() {
            out.extend_from_slice(&h.field.to_be_bytes());
        }
        let n = rest.len().min(cs);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

fn basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    let f = fmt << 6;
    if csid < 64 {
        out.push(f | csid as u8);
    } else if csid < 320 {
        out.extend_from_slice(&[f, (csid - 64) as u8]);
    } else {
        let c = csid - 64;
        out.extend_from_slice(&[f | 1, (c & 0xFF) as u8, (c >> 8) as u8]);
    }
}
