use super::*;
use crate::format::flv::writer::write_tag;
use crate::proto::rtmp::{ChunkReader, ChunkWriter, Message, ReaderLimits, ServerConfig};

/// A channel's tags: (kind, timestamp, body length), bodies filled with a pattern per tag.
fn tag(kind: TagKind, ts: u32, len: usize, n: u8) -> Bytes {
    let mut body: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(n)).collect();
    // Not a sequence start (AVC packet type 1, AAC raw).
    if let Some(b) = body.get_mut(0) {
        *b = if kind == TagKind::Video { 0x27 } else { 0xAF };
    }
    if let Some(b) = body.get_mut(1) {
        *b = 1;
    }
    let mut v = Vec::new();
    write_tag(kind, ts, &body, &mut v).unwrap();
    Bytes::from(v)
}

fn stream(tags: &[(TagKind, u32, usize)]) -> Vec<Bytes> {
    tags.iter()
        .enumerate()
        .map(|(i, &(k, ts, len))| tag(k, ts, len, i as u8))
        .collect()
}

/// A player's connection: a Set Chunk Size first (as the session sends at connect), then what
/// [`PlayerChunks`] gives; the messages a reader makes of it, media only.
struct Player {
    bytes: Vec<u8>,
    chunks: PlayerChunks,
    stream_id: u32,
    shared: usize,
}

impl Player {
    fn new(stream_id: u32) -> Player {
        let mut bytes = Vec::new();
        ChunkWriter::new().set_chunk_size(CHUNK_SIZE, &mut bytes);
        Player {
            bytes,
            chunks: PlayerChunks::default(),
            stream_id,
            shared: 0,
        }
    }

    fn send(&mut self, m: &RtmpMsg, ts: u32) {
        let o = self.chunks.send(m, ts, self.stream_id);
        if o.head.is_none() && o.body.as_ptr() == m.bytes.as_ptr() {
            self.shared += 1;
        }
        if let Some(h) = &o.head {
            self.bytes.extend_from_slice(h);
        }
        self.bytes.extend_from_slice(&o.body);
    }

    fn messages(&self) -> Vec<Message> {
        let mut r = ChunkReader::new(ReaderLimits::default(), 0);
        let mut out = Vec::new();
        // Every split of the input reads the same (the reader's own guarantee), so one push.
        r.push(&self.bytes, &mut out).unwrap();
        out.retain(|m| m.csid != 2);
        out
    }
}

fn expect(msgs: &[Arc<RtmpMsg>], which: &[usize], base: u32, stream_id: u32) -> Vec<Message> {
    which
        .iter()
        .map(|&i| {
            let m = &msgs[i];
            Message {
                csid: m.csid,
                type_id: m.kind.as_u8(),
                stream_id,
                timestamp: m.timestamp.wrapping_sub(base),
                payload: m.body.clone(),
            }
        })
        .collect()
}

#[test]
fn the_chunk_size_is_the_sessions() {
    assert_eq!(CHUNK_SIZE, ServerConfig::default().chunk_size);
}

#[test]
fn players_share_the_bytes_and_read_their_own_timestamps() {
    let mut tags = Vec::new();
    for i in 0..40u32 {
        // Video frames of varying size (some over the chunk size), audio in between.
        tags.push((
            TagKind::Video,
            1000 + i * 40,
            300 + (i as usize * 997) % 9000,
        ));
        tags.push((TagKind::Audio, 1000 + i * 40 + 3, 200));
        if i == 20 {
            tags.push((TagKind::Script, 1000 + i * 40 + 3, 60));
        }
    }
    let tags = stream(&tags);
    let mut ch = Prechunker::default();
    let msgs: Vec<Arc<RtmpMsg>> = tags.iter().map(|t| ch.message(t).unwrap()).collect();
    // A from the start (rebased to its first timestamp); B joins at message 30 on stream 3.
    let (mut a, mut b) = (Player::new(1), Player::new(3));
    let (base_a, base_b) = (msgs[0].timestamp, msgs[30].timestamp);
    for (i, m) in msgs.iter().enumerate() {
        a.send(m, m.timestamp - base_a);
        if i >= 30 {
            b.send(m, m.timestamp - base_b);
        }
    }
    let all: Vec<usize> = (0..msgs.len()).collect();
    assert_eq!(a.messages(), expect(&msgs, &all, base_a, 1));
    assert_eq!(b.messages(), expect(&msgs, &all[30..], base_b, 3));
    // Only the first message on each chunk stream was not the shared bytes.
    assert_eq!(a.shared, msgs.len() - 3);
    assert_eq!(b.shared, msgs.len() - 30 - 3);
}

#[test]
fn a_gap_or_a_rebase_gets_a_full_header() {
    let tags: Vec<(TagKind, u32, usize)> = (0..30u32)
        .map(|i| {
            let k = if i % 3 == 0 {
                TagKind::Audio
            } else {
                TagKind::Video
            };
            (k, i * 20, 100 + (i as usize % 4) * 5000)
        })
        .collect();
    let tags = stream(&tags);
    let mut ch = Prechunker::default();
    let msgs: Vec<Arc<RtmpMsg>> = tags.iter().map(|t| ch.message(t).unwrap()).collect();
    let mut p = Player::new(1);
    let mut sent = Vec::new();
    let mut want = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        // Skipped 8..15 (a slow player skipped to a keyframe); from 20 on, the player's base moved
        // by 7 ms (a takeover's continuation).
        if (8..15).contains(&i) {
            continue;
        }
        let ts = if i >= 20 {
            m.timestamp + 7
        } else {
            m.timestamp
        };
        p.send(m, ts);
        sent.push(i);
        let mut e = expect(&msgs, &[i], 0, 1).remove(0);
        e.timestamp = ts;
        want.push(e);
    }
    assert_eq!(p.messages(), want);
    assert!(p.shared > 0 && p.shared < sent.len() - 3, "{}", p.shared);
}

#[test]
fn extended_timestamps_on_either_side() {
    // The channel crosses the 24-bit timestamp field; messages over the chunk size, so the
    // continuation chunks carry (or not) the extended timestamp.
    let tags: Vec<(TagKind, u32, usize)> = (0..12u32)
        .map(|i| (TagKind::Video, 0xFF_FF00 + i * 40, 9000))
        .chain([(TagKind::Video, 0x100_0200 + 0xFF_FFFF, 9000)])
        .chain([(TagKind::Video, 0x300_0000, 5000)])
        .collect();
    let tags = stream(&tags);
    let mut ch = Prechunker::default();
    let msgs: Vec<Arc<RtmpMsg>> = tags.iter().map(|t| ch.message(t).unwrap()).collect();
    // A delta over 24 bits: the shared header is extended.
    assert!(msgs[12].head.extended() && msgs[12].head.fmt != 0);
    let all: Vec<usize> = (0..msgs.len()).collect();
    for base in [0, msgs[0].timestamp, msgs[5].timestamp, 0xFFFF_FF00] {
        for start in [0, 5, 12, 13] {
            let mut p = Player::new(1);
            for m in &msgs[start..] {
                p.send(m, m.timestamp.wrapping_sub(base));
            }
            assert_eq!(
                p.messages(),
                expect(&msgs, &all[start..], base, 1),
                "base {base} start {start}"
            );
        }
    }
}

#[test]
fn timestamps_going_back_and_messages_chunked_alone() {
    let tags = stream(&[
        (TagKind::Video, 500, 5000),
        (TagKind::Video, 540, 100),
        (TagKind::Video, 100, 4200),
        (TagKind::Video, 140, 4200),
        (TagKind::Audio, 150, 10),
        (TagKind::Audio, 170, 10),
    ]);
    let mut ch = Prechunker::default();
    let msgs: Vec<Arc<RtmpMsg>> = tags.iter().map(|t| ch.message(t).unwrap()).collect();
    assert_eq!(msgs[2].prev, None);
    assert_eq!(msgs[3].prev, Some(msgs[2].seq));
    let mut p = Player::new(1);
    let want = expect(&msgs, &[0, 1, 2, 3, 4, 5], 0, 1);
    p.send(&msgs[0], 500);
    // Message 1 chunked for this player alone (another chunk size would do the same).
    let m = &msgs[1];
    let b = p.chunks.alone(m.kind, 540, 1, &m.body, CHUNK_SIZE).unwrap();
    p.bytes.extend_from_slice(&b);
    for m in &msgs[2..4] {
        p.send(m, m.timestamp);
    }
    // The session wrote a status message on the data chunk stream meanwhile: forget.
    p.chunks.forget();
    for m in &msgs[4..] {
        p.send(m, m.timestamp);
    }
    assert_eq!(p.messages(), want);
}

#[test]
fn only_whole_tags_become_messages() {
    let t = tag(TagKind::Video, 40, 100, 0);
    assert!(whole_tag(&t).is_some());
    let header = Bytes::from_static(b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
    let mut ch = Prechunker::default();
    for bad in [
        header,
        t.slice(..t.len() - 1),
        t.slice(1..),
        Bytes::new(),
        // Another tag type is not sent to players.
        tag(TagKind::Other(15), 0, 10, 0),
    ] {
        assert!(ch.message(&bad).is_none(), "{bad:?}");
    }
    let mut filtered = t.to_vec();
    filtered[0] |= 0x20;
    assert!(whole_tag(&Bytes::from(filtered)).is_none());
    // A sequence start is flagged.
    let mut v = Vec::new();
    write_tag(TagKind::Video, 0, &[0x17, 0, 0, 0, 0, 1], &mut v).unwrap();
    assert!(ch.message(&Bytes::from(v)).unwrap().seq_header);
}

#[test]
fn a_gap_between_messages_of_one_timestamp() {
    // Same timestamps, so only the message numbers tell that the player missed the message a
    // relative header follows (a format-2 header would give it the wrong length).
    let tags = stream(&[
        (TagKind::Video, 0, 50),
        (TagKind::Video, 0, 100),
        (TagKind::Video, 0, 100),
        (TagKind::Video, 0, 5000),
    ]);
    let mut ch = Prechunker::default();
    let msgs: Vec<Arc<RtmpMsg>> = tags.iter().map(|t| ch.message(t).unwrap()).collect();
    assert_eq!(msgs[2].head.fmt, 2);
    let mut p = Player::new(1);
    for i in [0, 2, 3] {
        p.send(&msgs[i], 0);
    }
    assert_eq!(p.messages(), expect(&msgs, &[0, 2, 3], 0, 1));
}
