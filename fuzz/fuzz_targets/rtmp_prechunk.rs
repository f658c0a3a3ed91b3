//! RTMP messages chunked once per channel (`relay::prechunk`) and sent to players that start
//! late, skip messages, move their timestamps and chunk some messages alone: every player's bytes
//! read back (ChunkReader) as exactly the messages it was sent, with its own timestamps and
//! stream id. Arbitrary chunks as tags never panic.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use river::format::flv::writer::write_tag;
use river::format::flv::TagKind;
use river::proto::rtmp::{ChunkReader, ChunkWriter, Message, ReaderLimits};
use river::relay::prechunk::{PlayerChunks, Prechunker, RtmpMsg, CHUNK_SIZE};

struct Player {
    chunks: PlayerChunks,
    bytes: Vec<u8>,
    want: Vec<Message>,
    stream_id: u32,
    /// Added to the channel's timestamps (a rebase).
    shift: u32,
    started: bool,
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // Arbitrary bytes as a channel chunk: no panic.
    let _ = Prechunker::default().message(&Bytes::copy_from_slice(data));
    let mut ch = Prechunker::default();
    let mut players: Vec<Player> = (0..3u32)
        .map(|i| {
            let mut bytes = Vec::new();
            ChunkWriter::new().set_chunk_size(CHUNK_SIZE, &mut bytes);
            Player {
                chunks: PlayerChunks::default(),
                bytes,
                want: Vec::new(),
                stream_id: 1 + i,
                shift: 0,
                started: i == 0,
            }
        })
        .collect();
    let mut ts: u32 = 0;
    for (n, op) in data.chunks(4).enumerate().take(200) {
        let op = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0), *op.get(3).unwrap_or(&0)];
        let kind = [TagKind::Audio, TagKind::Video, TagKind::Script][usize::from(op[0] % 3)];
        // Small steps mostly; now and then a jump back or over the 24-bit field.
        ts = match op[1] >> 5 {
            0 => ts.wrapping_sub(u32::from(op[1])),
            1 => ts.wrapping_add(0xFF_FF00 + u32::from(op[1])),
            _ => ts.wrapping_add(u32::from(op[1] & 0x3F)),
        };
        let len = usize::from(op[2]) * if op[3] & 1 == 1 { 60 } else { 1 };
        let body: Vec<u8> = (0..len).map(|i| (i + n) as u8).collect();
        let mut tag = Vec::new();
        write_tag(kind, ts, &body, &mut tag).unwrap();
        let m: Arc<RtmpMsg> = ch.message(&Bytes::from(tag)).expect("a tag is a message");
        for (i, p) in players.iter_mut().enumerate() {
            let bits = op[3] >> (1 + 2 * i);
            if !p.started {
                p.started = bits & 1 == 1;
            }
            // Skipped (a slow player), or sent.
            if !p.started || bits & 3 == 2 {
                continue;
            }
            if op[0] & 0x80 != 0 && i == 1 {
                p.shift = p.shift.wrapping_add(u32::from(op[0] & 0x7F));
            }
            if op[0] & 0x40 != 0 && i == 2 {
                p.chunks.forget();
            }
            let t = ts.wrapping_add(p.shift);
            if bits & 3 == 3 && i == 0 {
                let b = p.chunks.alone(kind, t, p.stream_id, &body, CHUNK_SIZE).unwrap();
                p.bytes.extend_from_slice(&b);
            } else {
                let o = p.chunks.send(&m, t, p.stream_id);
                if let Some(h) = o.head {
                    p.bytes.extend_from_slice(&h);
                }
                p.bytes.extend_from_slice(&o.body);
            }
            p.want.push(Message {
                csid: m.csid,
                type_id: kind.as_u8(),
                stream_id: p.stream_id,
                timestamp: t,
                payload: Bytes::from(body.clone()),
            });
        }
    }
    for p in &players {
        let mut r = ChunkReader::new(ReaderLimits::default(), 0);
        let mut got = Vec::new();
        r.push(&p.bytes, &mut got).expect("the player's bytes read");
        got.retain(|m| m.csid != 2);
        assert!(got == p.want, "a player read other messages than it was sent");
    }
});
