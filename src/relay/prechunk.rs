//! RTMP play output chunked once per channel instead of once per player.
//!
//! Every RTMP player of a channel is sent the same media messages, chunked the same way (the
//! hub's chunk size, the same chunk streams). Only the first header on a chunk stream differs: a
//! player's first message there, and its first after a gap (a skip to a keyframe, a takeover), needs
//! a format-0 header with its own timestamp (rebased to where it started) and its own message
//! stream id. After that, a message with a relative header (format 1 or 2: a timestamp delta, and
//! for format 1 the length and type) reads the same for every player that was sent the message
//! before it on that chunk stream.
//!
//! So the channel side ([`Prechunker`]) chunks each FLV tag once, into an [`RtmpMsg`] whose bytes
//! start with a relative header when the channel's previous message on that chunk stream is
//! known (format 0 otherwise), and which names that previous message (`prev`). The player side
//! ([`PlayerChunks`]) sends those bytes as they are when its own last message on that chunk stream
//! was `prev` and its timestamp moves by the same delta; otherwise a format-0 header of its own,
//! then the shared rest of the message (the continuation chunks do not depend on the first
//! header, unless exactly one of the two headers carries an extended timestamp: then the message
//! is chunked again for that player). Players of one channel thus share the message bytes, and
//! the hub writes them with vectored writes, without a copy per player.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::restamp::is_seq_header;
use crate::format::flv::{TagKind, TAG_HEADER_LEN};
use crate::proto::rtmp::{encode, FirstHeader, CS_AUDIO, CS_DATA, CS_VIDEO};

/// The chunk size shared messages are cut at: the hub's RTMP sessions send with it
/// (`ServerConfig::default().chunk_size`, checked by a test). A session with another one gets
/// every message chunked for it alone.
pub const CHUNK_SIZE: u32 = 4096;

/// Message numbers, unique in the process: a player's state outlives a channel's views (a
/// takeover makes new ones), so a number must never name two messages.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

/// One FLV tag (audio, video or script data) chunked as an RTMP message, shared by the players
/// of a channel.
#[derive(Debug)]
pub struct RtmpMsg {
    /// This message's number, and the number of the channel's previous message on the same
    /// chunk stream when the first header is relative to it (`None`: the header is format 0).
    pub seq: u64,
    pub prev: Option<u64>,
    pub csid: u32,
    pub kind: TagKind,
    /// The tag's timestamp on the channel's timeline, and its delta from `prev`'s.
    pub timestamp: u32,
    pub delta: u32,
    /// An audio or video sequence start (decoder configuration), not a frame.
    pub seq_header: bool,
    /// The tag body (the message payload).
    pub body: Bytes,
    /// The whole message, chunked at [`CHUNK_SIZE`], and its first header.
    pub bytes: Bytes,
    pub head: FirstHeader,
}

/// An FLV tag as one chunk of the channel holds it: header, body, PreviousTagSize.
#[derive(Debug, Clone)]
pub struct TagRef {
    pub kind: TagKind,
    pub timestamp: u32,
    pub body: Bytes,
}

/// `data` as exactly one FLV tag (the relay's FLV chunks are one tag each); `None` for anything
/// else (the file header, bytes of a stream that stopped being FLV).
pub fn whole_tag(data: &Bytes) -> Option<TagRef> {
    let h = data.get(..TAG_HEADER_LEN)?;
    if h[0] & 0xE0 != 0 {
        return None;
    }
    let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
    if data.len() != TAG_HEADER_LEN + size + 4 {
        return None;
    }
    Some(TagRef {
        kind: TagKind::from_u8(h[0]),
        timestamp: u32::from_be_bytes([h[7], h[4], h[5], h[6]]),
        body: data.slice(TAG_HEADER_LEN..TAG_HEADER_LEN + size),
    })
}

/// The chunk stream a tag goes on (the session's), `None` for tags players are not sent.
pub fn csid_of(kind: TagKind) -> Option<u32> {
    match kind {
        TagKind::Audio => Some(CS_AUDIO),
        TagKind::Video => Some(CS_VIDEO),
        TagKind::Script => Some(CS_DATA),
        TagKind::Other(_) => None,
    }
}

fn slot(csid: u32) -> usize {
    match csid {
        CS_AUDIO => 0,
        CS_DATA => 1,
        _ => 2,
    }
}

/// A sequence start is not a frame: it does not start a player's timeline.
pub fn is_config(kind: TagKind, body: &[u8]) -> bool {
    matches!(kind, TagKind::Audio | TagKind::Video) && is_seq_header(kind == TagKind::Video, body)
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    timestamp: u32,
    length: u32,
    type_id: u8,
}

/// A channel's (or FLV view's) side: chunks its tags once, in the order they are delivered.
#[derive(Debug, Default)]
pub struct Prechunker {
    last: [Option<Last>; 3],
}

impl Prechunker {
    /// The shared message for one chunk of the channel, `None` when it is not a tag players are
    /// sent. Must see the channel's tags in order (a chunk it is not given is a gap it does not
    /// know of: the next message's header stays relative to the last one it saw, which only
    /// players that were sent that one use).
    pub fn message(&mut self, data: &Bytes) -> Option<Arc<RtmpMsg>> {
        let t = whole_tag(data)?;
        let csid = csid_of(t.kind)?;
        let type_id = t.kind.as_u8();
        let length = t.body.len() as u32;
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        let last = &mut self.last[slot(csid)];
        let (head, prev, delta) = match *last {
            Some(p) if t.timestamp >= p.timestamp => {
                let delta = t.timestamp - p.timestamp;
                let fmt = if p.length == length && p.type_id == type_id {
                    2
                } else {
                    1
                };
                let h = FirstHeader {
                    fmt,
                    field: delta,
                    length,
                    type_id,
                    stream_id: 0,
                };
                (h, Some(p.seq), delta)
            }
            _ => {
                let h = FirstHeader {
                    fmt: 0,
                    field: t.timestamp,
                    length,
                    type_id,
                    stream_id: 1,
                };
                (h, None, 0)
            }
        };
        *last = Some(Last {
            seq,
            timestamp: t.timestamp,
            length,
            type_id,
        });
        let mut out = Vec::new();
        encode(csid, head, &t.body, CHUNK_SIZE, &mut out);
        Some(Arc::new(RtmpMsg {
            seq,
            prev,
            csid,
            kind: t.kind,
            timestamp: t.timestamp,
            delta,
            seq_header: is_config(t.kind, &t.body),
            body: t.body,
            bytes: Bytes::from(out),
            head,
        }))
    }
}

/// What sends one message to one player: its own first header (when it needs one), then bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    pub head: Option<Bytes>,
    pub body: Bytes,
}

/// A player's side: what it was last sent on each media chunk stream.
#[derive(Debug, Default)]
pub struct PlayerChunks {
    /// (message number, 0 when it was chunked for this player alone; its timestamp).
    last: [Option<(u64, u32)>; 3],
}

impl PlayerChunks {
    /// The bytes that send the shared `m` to this player, at its timestamp `ts` on its message
    /// stream `stream_id`, in a session that sends with chunk size [`CHUNK_SIZE`].
    pub fn send(&mut self, m: &RtmpMsg, ts: u32, stream_id: u32) -> Out {
        let last = &mut self.last[slot(m.csid)];
        let follows = matches!((*last, m.prev), (Some((s, t)), Some(p)) if s == p && ts == t.wrapping_add(m.delta));
        *last = Some((m.seq, ts));
        if follows {
            return Out {
                head: None,
                body: m.bytes.clone(),
            };
        }
        let h = FirstHeader {
            fmt: 0,
            field: ts,
            length: m.head.length,
            type_id: m.head.type_id,
            stream_id,
        };
        // Continuation chunks repeat an extended timestamp: the shared ones fit this header only
        // if both have none, or the same.
        let same_tail =
            h.extended() == m.head.extended() && (!h.extended() || h.field == m.head.field);
        if !same_tail {
            let mut v = Vec::new();
            encode(m.csid, h, &m.body, CHUNK_SIZE, &mut v);
            return Out {
                head: None,
                body: Bytes::from(v),
            };
        }
        let mut v = Vec::with_capacity(h.len(m.csid));
        h.write(m.csid, &mut v);
        Out {
            head: Some(Bytes::from(v)),
            body: m.bytes.slice(m.head.len(m.csid)..),
        }
    }

    /// A tag with no shared message (a joiner's cached tags from before the channel had RTMP
    /// players, say), chunked for this player alone at `chunk_size` with a format-0 header.
    pub fn alone(
        &mut self,
        kind: TagKind,
        ts: u32,
        stream_id: u32,
        body: &[u8],
        chunk_size: u32,
    ) -> Option<Bytes> {
        let csid = csid_of(kind)?;
        let h = FirstHeader {
            fmt: 0,
            field: ts,
            length: body.len().min(0xFF_FFFF) as u32,
            type_id: kind.as_u8(),
            stream_id,
        };
        let mut v = Vec::new();
        encode(csid, h, &body[..h.length as usize], chunk_size, &mut v);
        self.last[slot(csid)] = Some((0, ts));
        Some(Bytes::from(v))
    }

    /// Something else was sent on the media chunk streams (the session's own status messages):
    /// the next message on each starts with a format-0 header.
    pub fn forget(&mut self) {
        self.last = [None; 3];
    }
}

#[cfg(test)]
mod tests;
