//! The RTMP chunk reader and server session on arbitrary bytes: no panic, bounded memory, and the
//! same messages and events whatever the split.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use river::proto::rtmp::handshake::{client_c0c1, HANDSHAKE_SIZE};
use river::proto::rtmp::{
    ChunkReader, ReaderLimits, ServerConfig, ServerEvent, ServerSession,
};

fn read_all(data: &[u8], split: usize) -> (Vec<river::proto::rtmp::Message>, bool) {
    let limits = ReaderLimits {
        max_buffered: 1 << 20,
        ..ReaderLimits::default()
    };
    let mut r = ChunkReader::new(limits, 0);
    let mut out = Vec::new();
    for piece in data.chunks(split.max(1)) {
        if r.push(piece, &mut out).is_err() {
            return (out, false);
        }
    }
    assert!(r.buffered() <= data.len() + (1 << 20));
    (out, true)
}

fn session(data: &[u8], split: usize) -> Vec<ServerEvent> {
    let now = Instant::now();
    let mut cfg = ServerConfig::default();
    cfg.limits.max_buffered = 1 << 20;
    let mut s = ServerSession::new(cfg, now, 1);
    let mut input = client_c0c1(0);
    input.extend(std::iter::repeat_n(0u8, HANDSHAKE_SIZE));
    input.extend_from_slice(data);
    let mut evs = Vec::new();
    for piece in input.chunks(split.max(1)) {
        if s.push(piece, now).is_err() {
            break;
        }
        while let Some(e) = s.poll_event() {
            match &e {
                ServerEvent::Connect { .. } => {
                    let _ = s.accept_connect();
                }
                ServerEvent::Publish { stream_id, .. } => {
                    let _ = s.accept_publish(*stream_id);
                }
                ServerEvent::Play { stream_id, .. } => {
                    let _ = s.accept_play(*stream_id);
                    let _ = s.send_media(*stream_id, river::proto::rtmp::MediaKind::Video, 0, piece);
                }
                _ => {}
            }
            evs.push(e);
        }
        s.take_output();
    }
    evs
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let split = usize::from(sel % 64) + 1;
    let (whole, ok) = read_all(data, data.len());
    let (pieces, ok2) = read_all(data, split);
    assert_eq!(ok, ok2);
    assert!(whole == pieces, "messages depend on the split");
    let a = session(data, usize::MAX);
    let b = session(data, split);
    // NaN start times compare unequal: compare the debug text.
    assert_eq!(format!("{a:?}"), format!("{b:?}"), "events depend on the split");
});
