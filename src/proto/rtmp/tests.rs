//! Session, chunk and handshake tests: every message under any chunking, writer → reader round
//! trips, extended timestamps, hostile input.

use std::time::{Duration, Instant};

use amf::amf0::Value;
use bytes::Bytes;

use super::handshake::{client_c0c1, HANDSHAKE_SIZE};
use super::message::{object, Command, MessageType, UserControl};
use super::*;

/// Builds what a publishing client sends.
struct Client {
    w: ChunkWriter,
    out: Vec<u8>,
}

impl Client {
    fn new() -> Self {
        let mut out = client_c0c1(0);
        out.extend(std::iter::repeat_n(0x5A, HANDSHAKE_SIZE)); // C2: not checked
        Client {
            w: ChunkWriter::new(),
            out,
        }
    }

    fn cmd(&mut self, stream: u32, name: &str, txn: f64, vals: &[Value]) {
        let b = Command::encode(name, txn, vals);
        self.w.write(3, 20, stream, 0, &b, &mut self.out);
    }

    fn msg(&mut self, csid: u32, t: u8, stream: u32, ts: u32, body: &[u8]) {
        self.w.write(csid, t, stream, ts, body, &mut self.out);
    }

    fn connect(&mut self, app: &str) {
        let obj = object(vec![
            ("app", Value::String(app.into())),
            ("flashVer", Value::String("FMLE/3.0".into())),
            (
                "tcUrl",
                Value::String(format!("rtmp://127.0.0.1:1935/{app}")),
            ),
        ]);
        self.cmd(0, "connect", 1.0, &[obj]);
    }
}

fn metadata_body() -> Vec<u8> {
    let mut b = Vec::new();
    for v in [
        Value::String("@setDataFrame".into()),
        Value::String("onMetaData".into()),
        Value::EcmaArray {
            entries: vec![amf::Pair {
                key: "width".into(),
                value: Value::Number(160.0),
            }],
        },
    ] {
        v.write_to(&mut b).unwrap();
    }
    b
}

/// A whole ffmpeg-like publish: connect, releaseStream, FCPublish, createStream, publish,
/// metadata, sequence headers, frames (timestamps past the extended-timestamp threshold),
/// FCUnpublish, deleteStream.
fn publish_bytes() -> Vec<u8> {
    let mut c = Client::new();
    c.connect("live");
    c.w.set_chunk_size(100, &mut c.out);
    c.cmd(
        0,
        "releaseStream",
        2.0,
        &[Value::Null, Value::String("key".into())],
    );
    c.cmd(
        0,
        "FCPublish",
        3.0,
        &[Value::Null, Value::String("key".into())],
    );
    c.cmd(0, "createStream", 4.0, &[Value::Null]);
    c.cmd(
        1,
        "publish",
        5.0,
        &[
            Value::Null,
            Value::String("key?pw=1".into()),
            Value::String("live".into()),
        ],
    );
    c.msg(4, 18, 1, 0, &metadata_body());
    c.msg(6, 9, 1, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]);
    c.msg(4, 8, 1, 0, &[0xAF, 0, 0x12, 0x10]);
    for i in 0..40u32 {
        let ts = if i < 20 { i * 33 } else { 0xFF_FFF0 + i * 33 };
        let key = i % 10 == 0;
        let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        v.extend(std::iter::repeat_n(i as u8, 50 + (i as usize * 37) % 400));
        c.msg(6, 9, 1, ts, &v);
        c.msg(4, 8, 1, ts, &[0xAF, 1, i as u8, 2, 3]);
    }
    c.cmd(
        0,
        "FCUnpublish",
        6.0,
        &[Value::Null, Value::String("key".into())],
    );
    c.cmd(0, "deleteStream", 7.0, &[Value::Null, Value::Number(1.0)]);
    c.out
}

/// Runs a session over `input` split by `sizes` (cycled), accepting everything; returns the
/// events and the output without S1's random part.
fn drive(input: &[u8], sizes: &[usize]) -> (Vec<ServerEvent>, Vec<u8>) {
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let mut evs = Vec::new();
    let mut out = Vec::new();
    let (mut pos, mut i) = (0, 0);
    while pos < input.len() {
        let n = sizes[i % sizes.len()].max(1).min(input.len() - pos);
        s.push(&input[pos..pos + n], now).unwrap();
        pos += n;
        i += 1;
        answer(&mut s, &mut evs);
        out.extend(s.take_output());
    }
    s.finish();
    answer(&mut s, &mut evs);
    out.extend(s.take_output());
    assert!(out.len() > 1 + 2 * HANDSHAKE_SIZE);
    (evs, out)
}

fn answer(s: &mut ServerSession, evs: &mut Vec<ServerEvent>) {
    while let Some(e) = s.poll_event() {
        match &e {
            ServerEvent::Connect { .. } => s.accept_connect().unwrap(),
            ServerEvent::Publish { stream_id, .. } => s.accept_publish(*stream_id).unwrap(),
            ServerEvent::Play { stream_id, .. } => s.accept_play(*stream_id).unwrap(),
            _ => {}
        }
        evs.push(e);
    }
}

/// The server's output as messages (after S0/S1/S2).
fn server_messages(out: &[u8]) -> Vec<Message> {
    let mut r = ChunkReader::new(ReaderLimits::default(), 0);
    let mut v = Vec::new();
    r.push(&out[1 + 2 * HANDSHAKE_SIZE..], &mut v).unwrap();
    v
}

fn commands(msgs: &[Message]) -> Vec<(String, Vec<Value>)> {
    msgs.iter()
        .filter(|m| m.type_id == 20)
        .map(|m| {
            let c = Command::parse(&m.payload).unwrap();
            let mut v = vec![c.object];
            v.extend(c.args);
            (c.name, v)
        })
        .collect()
}

fn status_codes(msgs: &[Message]) -> Vec<String> {
    commands(msgs)
        .into_iter()
        .filter_map(|(_, v)| {
            v.iter().find_map(|x| match x {
                Value::Object { entries, .. } => entries.iter().find_map(|p| match &p.value {
                    Value::String(s) if p.key == "code" => Some(s.clone()),
                    _ => None,
                }),
                _ => None,
            })
        })
        .collect()
}

#[test]
fn publish_events_and_answers() {
    let (evs, out) = drive(&publish_bytes(), &[usize::MAX]);
    assert!(
        matches!(&evs[0], ServerEvent::Connect { app, tc_url: Some(t), .. } if app == "live" && t.ends_with("/live"))
    );
    assert_eq!(
        evs[1],
        ServerEvent::Publish {
            stream_id: 1,
            stream_key: "key".into(),
            query: "pw=1".into(),
            publish_type: "live".into()
        }
    );
    let ServerEvent::Metadata { name, body, .. } = &evs[2] else {
        panic!("{:?}", evs[2])
    };
    assert_eq!(name, "onMetaData");
    assert_eq!(
        &body[..],
        &metadata_body()[16..],
        "raw bytes, @setDataFrame stripped"
    );
    let media: Vec<(MediaKind, u32)> = evs
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                kind, timestamp, ..
            } => Some((*kind, *timestamp)),
            _ => None,
        })
        .collect();
    assert_eq!(media.len(), 82);
    assert_eq!(media[2], (MediaKind::Video, 0));
    assert_eq!(media[2 + 2 * 21], (MediaKind::Video, 0xFF_FFF0 + 21 * 33));
    assert_eq!(evs[evs.len() - 2], ServerEvent::Unpublish { stream_id: 1 });
    assert_eq!(evs[evs.len() - 1], ServerEvent::Closed);
    let msgs = server_messages(&out);
    let types: Vec<u8> = msgs.iter().take(3).map(|m| m.type_id).collect();
    assert_eq!(
        types,
        [5, 6, 1],
        "window ack, peer bandwidth, chunk size first"
    );
    let names: Vec<String> = commands(&msgs).into_iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        ["_result", "_result", "_result", "_result", "onStatus", "_result"]
    );
    assert_eq!(
        status_codes(&msgs),
        ["NetConnection.Connect.Success", "NetStream.Publish.Start"]
    );
    assert!(msgs
        .iter()
        .any(|m| m.type_id == 4
            && UserControl::parse(&m.payload) == Some(UserControl::StreamBegin(1))));
}

#[test]
fn same_result_under_any_chunking() {
    let input = publish_bytes();
    let want = drive(&input, &[usize::MAX]);
    for sizes in [
        &[1usize][..],
        &[2],
        &[3],
        &[7],
        &[100],
        &[101],
        &[1537],
        &[4096],
        &[1, 1536, 5, 99, 1000, 3],
    ] {
        let got = drive(&input, sizes);
        assert!(got.0 == want.0, "sizes {sizes:?}: events differ");
        // One seed, one S1: the whole output is the same.
        assert!(got.1 == want.1, "sizes {sizes:?}: output differs");
    }
}

fn round_trip(msgs: &[(u32, u8, u32, u32, Vec<u8>)], chunk_size: u32, sizes: &[usize]) {
    let mut w = ChunkWriter::new();
    let mut bytes = Vec::new();
    if chunk_size != DEFAULT_CHUNK_SIZE {
        w.set_chunk_size(chunk_size, &mut bytes);
    }
    for (cs, t, sid, ts, p) in msgs {
        w.write(*cs, *t, *sid, *ts, p, &mut bytes);
    }
    let mut r = ChunkReader::new(ReaderLimits::default(), 0);
    let mut got = Vec::new();
    let (mut pos, mut i) = (0, 0);
    while pos < bytes.len() {
        let n = sizes[i % sizes.len()].min(bytes.len() - pos);
        r.push(&bytes[pos..pos + n], &mut got).unwrap();
        pos += n;
        i += 1;
    }
    if chunk_size != DEFAULT_CHUNK_SIZE {
        let first = got.remove(0);
        assert_eq!(first.type_id, 1);
        assert_eq!(r.chunk_size(), chunk_size);
    }
    assert_eq!(got.len(), msgs.len());
    for (g, (cs, t, sid, ts, p)) in got.iter().zip(msgs) {
        assert_eq!(
            (g.csid, g.type_id, g.stream_id, g.timestamp, &g.payload[..]),
            (*cs, *t, *sid, *ts, &p[..]),
            "chunk size {chunk_size}, sizes {sizes:?}"
        );
    }
    assert_eq!(r.buffered(), 0);
}

#[test]
fn writer_reader_round_trip() {
    let mut msgs = Vec::new();
    let mut ts = 0u32;
    for (i, &(cs, len, step)) in [
        (3u32, 10usize, 0u32),
        (3, 10, 0),
        (3, 10, 5),
        (3, 10, 5),
        (3, 11, 5),
        (3, 11, 7),
        (63, 0, 1),
        (64, 1, 1),
        (319, 127, 1),
        (320, 128, 1),
        (65599, 129, 1),
        (6, 5000, 33),
        (6, 5000, 33),
        (6, 5000, 33),
        (6, 300, 0x00FF_FFFF),
        (6, 300, 0x00FF_FFFF),
        (6, 300, 1),
        (4, 2, 0x0100_0000),
        (4, 2, 40),
    ]
    .iter()
    .enumerate()
    {
        ts = ts.wrapping_add(step);
        let p: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        msgs.push((cs, 8 + (i % 2) as u8, 1 + (i % 3) as u32, ts, p));
    }
    // Going backwards, and wrapping past 2^32.
    msgs.push((6, 9, 1, 10, vec![1, 2, 3]));
    msgs.push((6, 9, 1, u32::MAX - 5, vec![1; 300]));
    msgs.push((6, 9, 1, 3, vec![2; 300]));
    for chunk_size in [1u32, 128, 129, 4096, 1 << 20] {
        for sizes in [&[usize::MAX][..], &[1], &[3], &[128, 1, 77]] {
            round_trip(&msgs, chunk_size, sizes);
        }
    }
}

#[test]
fn extended_timestamps_repeat_in_format_3_chunks() {
    let mut w = ChunkWriter::new();
    let mut b = Vec::new();
    w.write(6, 9, 1, 0x0123_4567, &[7u8; 200], &mut b);
    // fmt 0 header (1 + 11) with 0xFFFFFF, extended (4), 128 bytes, then 0xC6, extended again.
    assert_eq!(&b[1..4], &[0xFF, 0xFF, 0xFF]);
    assert_eq!(&b[12..16], &0x0123_4567u32.to_be_bytes());
    assert_eq!(b[16 + 128], 0xC6);
    assert_eq!(&b[17 + 128..21 + 128], &0x0123_4567u32.to_be_bytes());
    assert_eq!(b.len(), 16 + 128 + 5 + 72);
    // A peer that does not repeat it in continuation chunks is read too.
    let mut old = b[..16 + 128].to_vec();
    old.push(0xC6);
    old.extend_from_slice(&[7u8; 72]);
    let mut r = ChunkReader::new(ReaderLimits::default(), 0);
    let mut got = Vec::new();
    r.push(&old, &mut got).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp, 0x0123_4567);
    assert_eq!(&got[0].payload[..], &[7u8; 200][..]);
}

#[test]
fn format_3_new_message_after_format_0_adds_its_timestamp_field() {
    // ffmpeg/librtmp semantics: the format-0 timestamp is the "delta" a format-3 message repeats.
    let bytes = [
        0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 0xAA, // fmt 0, ts 10, 1 byte
        0xC4, 0xBB, // fmt 3 new message: ts 20
        0x84, 0, 0, 5, 0xCC, // fmt 2, delta 5: ts 25
        0xC4, 0xDD, // fmt 3: ts 30
    ];
    let mut r = ChunkReader::new(ReaderLimits::default(), 0);
    let mut got = Vec::new();
    r.push(&bytes, &mut got).unwrap();
    let ts: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, [10, 20, 25, 30]);
}

#[test]
fn abort_drops_a_partial_message() {
    let mut w = ChunkWriter::new();
    let mut b = Vec::new();
    w.write(6, 9, 1, 0, &[1u8; 300], &mut b);
    b.truncate(12 + 128);
    w.write(2, 2, 0, 0, &6u32.to_be_bytes(), &mut b);
    let mut w2 = ChunkWriter::new();
    w2.write(6, 9, 1, 5, &[2u8; 3], &mut b);
    let mut r = ChunkReader::new(ReaderLimits::default(), 0);
    let mut got = Vec::new();
    r.push(&b, &mut got).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].type_id, 2);
    assert_eq!(&got[1].payload[..], &[2, 2, 2]);
    assert_eq!(r.buffered(), 0);
}

fn after_connect() -> (ServerSession, Client, Instant) {
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let mut c = Client::new();
    c.connect("live");
    s.push(&std::mem::take(&mut c.out), now).unwrap();
    assert!(matches!(s.poll_event(), Some(ServerEvent::Connect { .. })));
    s.accept_connect().unwrap();
    (s, c, now)
}

#[test]
fn hostile_chunk_size_message_size_and_types() {
    // A huge chunk size.
    let (mut s, mut c, now) = after_connect();
    c.msg(2, 1, 0, 0, &0x7FFF_FFFFu32.to_be_bytes());
    let e = s.push(&c.out, now).unwrap_err();
    assert_eq!(e.kind, RtmpErrorKind::Limit);
    assert!(e.to_string().contains("set chunk size"), "{e}");
    assert!(s.should_close());
    assert!(s.push(b"more", now).is_err(), "stays broken");

    // A huge message length, with a smaller limit.
    let mut cfg = ServerConfig::default();
    cfg.limits.max_message_size = 1 << 20;
    let now = Instant::now();
    let mut s = ServerSession::new(cfg, now, 1);
    let mut c = Client::new();
    c.out
        .extend_from_slice(&[0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
    let e = s.push(&c.out, now).unwrap_err();
    assert!(e.to_string().contains("larger than the limit"), "{e}");

    // Many chunk streams each holding most of a 16 MiB message: the buffered total is bounded.
    let mut cfg = ServerConfig::default();
    cfg.limits.max_buffered = 1 << 20;
    let mut s = ServerSession::new(cfg, now, 1);
    let mut c = Client::new();
    c.w.set_chunk_size(1 << 16, &mut c.out);
    s.push(&c.out, now).unwrap();
    let mut err = None;
    for cs in 3..40u32 {
        let mut b = vec![cs as u8, 0, 0, 0, 0xFF, 0xFF, 0xF0, 9, 1, 0, 0, 0];
        b.extend(std::iter::repeat_n(0u8, 1 << 16));
        if let Err(e) = s.push(&b, now) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("bounded");
    assert_eq!(e.kind, RtmpErrorKind::Limit);

    // Too many chunk streams.
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let mut c = Client::new();
    for cs in 0..100u32 {
        c.msg(100 + cs, 0x33, 0, 0, &[1]);
    }
    let e = s.push(&c.out, now).unwrap_err();
    assert!(e.to_string().contains("chunk streams"), "{e}");

    // Unknown types and shared objects are ignored.
    let (mut s, mut c, now) = after_connect();
    for t in [0u8, 7, 10, 16, 19, 0x33, 0xFF] {
        c.msg(5, t, 0, 0, &[1, 2, 3]);
    }
    c.cmd(0, "noSuchCommand", 9.0, &[Value::Null]);
    s.push(&c.out, now).unwrap();
    assert_eq!(s.stats().ignored_messages, 8);
    let msgs = server_messages_tail(&s.take_output());
    assert_eq!(commands(&msgs)[0].0, "_error");
}

/// Messages in the whole server output after the connect answer (window ack size, peer
/// bandwidth, chunk size, _result).
fn server_messages_tail(out: &[u8]) -> Vec<Message> {
    server_messages(out)[4..].to_vec()
}

#[test]
fn garbage_never_panics() {
    let mut x = 0x1234_5678_9abc_def0u64;
    for round in 0..300 {
        let (mut s, _, now) = after_connect();
        let mut b = Vec::new();
        for _ in 0..(round * 7 % 3000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push(x as u8);
        }
        let _ = s.push(&b, now);
        while s.poll_event().is_some() {}
        assert!(s.pending_output().len() < 1 << 20);
    }
}

#[test]
fn handshake_errors_and_deadline() {
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let e = s.push(b"GET / HTTP/1.1\r\n", now).unwrap_err();
    assert_eq!(e.kind, RtmpErrorKind::Handshake);
    assert!(e.to_string().contains("HTTP"), "{e}");

    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    s.push(&client_c0c1(0)[..100], now).unwrap();
    assert_eq!(s.poll_deadline(), Some(now + Duration::from_secs(10)));
    s.handle_timeout(now + Duration::from_secs(9)).unwrap();
    let e = s.handle_timeout(now + Duration::from_secs(10)).unwrap_err();
    assert_eq!(e.kind, RtmpErrorKind::Timeout);
    assert!(e.to_string().contains("handshake"), "{e}");

    // After connect only the idle timeout is left.
    let (mut s, _, now) = after_connect();
    assert_eq!(s.poll_deadline(), Some(now + Duration::from_secs(30)));
    s.handle_timeout(now + Duration::from_secs(29)).unwrap();
    assert!(s.handle_timeout(now + Duration::from_secs(31)).is_err());
}

#[test]
fn handshake_answer() {
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let c1 = client_c0c1(77);
    s.push(&c1, now).unwrap();
    let out = s.take_output();
    assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
    assert_eq!(out[0], 3);
    assert_eq!(&out[5..9], &[0, 0, 0, 0], "simple handshake: zero version");
    assert_eq!(&out[1 + HANDSHAKE_SIZE..1 + HANDSHAKE_SIZE + 4], &c1[1..5]);
    assert_eq!(&out[1 + HANDSHAKE_SIZE + 8..], &c1[9..]);
}

#[test]
fn rejections_close() {
    let (mut s, mut c, now) = after_connect();
    c.cmd(0, "createStream", 2.0, &[Value::Null]);
    c.cmd(
        1,
        "publish",
        3.0,
        &[Value::Null, Value::String("bad".into())],
    );
    c.msg(6, 9, 1, 0, &[0x17, 1, 0, 0, 0, 9]);
    s.push(&c.out, now).unwrap();
    let Some(ServerEvent::Publish { stream_id, .. }) = s.poll_event() else {
        panic!()
    };
    s.reject_publish(
        stream_id,
        "NetStream.Publish.BadName",
        "stream key not accepted",
    )
    .unwrap();
    assert!(s.should_close());
    assert_eq!(s.poll_event(), None, "nothing handled after the reject");
    let msgs = server_messages_tail(&s.take_output());
    assert_eq!(status_codes(&msgs), ["NetStream.Publish.BadName"]);
    assert!(s.accept_publish(stream_id).is_err());

    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let mut c = Client::new();
    c.connect("other");
    s.push(&c.out, now).unwrap();
    assert!(matches!(s.poll_event(), Some(ServerEvent::Connect { app, .. }) if app == "other"));
    s.reject_connect("no such application").unwrap();
    assert!(s.should_close());
    let out = s.take_output();
    assert_eq!(
        status_codes(&server_messages(&out)),
        ["NetConnection.Connect.Rejected"]
    );
}

/// `body` with the first occurrence of `from` replaced by `to` (same length).
fn patched(body: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = body.windows(from.len()).position(|w| w == from).unwrap();
    let mut b = body;
    b[at..at + to.len()].copy_from_slice(to);
    b
}

/// A connect, publish or play whose name is not UTF-8 (AMF0 strings are) cannot be decoded: the
/// client still gets the error status it waits for, with the reason, then the session fails.
#[test]
fn commands_that_do_not_decode_get_their_error_status() {
    // publish and play on a created stream.
    for (cmd, code) in [
        ("publish", "NetStream.Publish.BadName"),
        ("play", "NetStream.Play.StreamNotFound"),
    ] {
        let (mut s, mut c, now) = after_connect();
        c.cmd(0, "createStream", 2.0, &[Value::Null]);
        let body = Command::encode(cmd, 3.0, &[Value::Null, Value::String("ab-cd".into())]);
        let body = patched(body, b"ab-cd", b"a\xff\xfecd");
        c.msg(3, 20, 1, 0, &body);
        let e = s.push(&c.out, now).unwrap_err();
        assert!(e.to_string().contains("bad command message"), "{e}");
        let msgs = server_messages_tail(&s.take_output());
        assert_eq!(
            status_codes(&msgs).last().map(String::as_str),
            Some(code),
            "{cmd}"
        );
        let (_, vals) = commands(&msgs).pop().unwrap();
        let desc = format!("{vals:?}");
        assert!(
            desc.contains(&format!("{cmd}: ")) && desc.contains("utf"),
            "{desc}"
        );
    }
    // connect: `_error` with its transaction id.
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let mut c = Client::new();
    let obj = object(vec![("app", Value::String("li-ve".into()))]);
    let body = patched(
        Command::encode("connect", 1.0, &[obj]),
        b"li-ve",
        b"li\xc3(e",
    );
    c.msg(3, 20, 0, 0, &body);
    assert!(s.push(&c.out, now).is_err());
    let msgs = server_messages(&s.take_output());
    let (name, _) = commands(&msgs).pop().unwrap();
    assert_eq!(name, "_error");
    assert_eq!(status_codes(&msgs), ["NetConnection.Connect.Rejected"]);
    assert_eq!(
        Command::parse(&msgs.last().unwrap().payload)
            .unwrap()
            .transaction_id,
        1.0
    );
    // Other commands that do not decode are skipped (ffmpeg sends the stream name in
    // releaseStream and FCPublish before the publish): `_error` with their transaction id.
    let (mut s, mut c, now) = after_connect();
    for (name, txn) in [("releaseStream", 2.0), ("FCPublish", 0.0)] {
        let body = Command::encode(name, txn, &[Value::Null, Value::String("ab".into())]);
        c.msg(3, 20, 0, 0, &patched(body, b"ab", b"\xff\xff"));
    }
    c.cmd(0, "createStream", 3.0, &[Value::Null]);
    s.push(&c.out, now).unwrap();
    let msgs = server_messages_tail(&s.take_output());
    let names: Vec<String> = commands(&msgs).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["_error", "_result"]);
    assert_eq!(status_codes(&msgs), ["NetConnection.Call.Failed"]);
    assert_eq!(s.stats().ignored_messages, 2);
    // Garbage that is not even a command name fails the session.
    c.out.clear();
    c.msg(3, 20, 0, 0, b"\x02\x00\x09ab");
    assert!(s.push(&c.out, now).is_err());
    assert_eq!(Command::head(b"\x02\x00\x04play"), Some(("play", 0.0)));
    assert_eq!(Command::head(b"\x02\x00\x05play"), None);
    assert_eq!(Command::head(b"\x05"), None);
}

#[test]
fn stream_limit() {
    let (mut s, mut c, now) = after_connect();
    for i in 0..10 {
        c.cmd(0, "createStream", 2.0 + i as f64, &[Value::Null]);
    }
    s.push(&c.out, now).unwrap();
    let msgs = server_messages_tail(&s.take_output());
    let names: Vec<String> = commands(&msgs).into_iter().map(|c| c.0).collect();
    assert_eq!(names.iter().filter(|n| *n == "_result").count(), 8);
    assert_eq!(names.iter().filter(|n| *n == "_error").count(), 2);
}

#[test]
fn ping_and_acknowledgement() {
    let (mut s, mut c, now) = after_connect();
    c.msg(2, 4, 0, 0, &UserControl::PingRequest(1234).encode());
    c.msg(2, 5, 0, 0, &1000u32.to_be_bytes());
    c.msg(5, 0x33, 0, 0, &[0u8; 2000]);
    s.push(&c.out, now).unwrap();
    let msgs = server_messages_tail(&s.take_output());
    assert!(msgs.iter().any(|m| m.type_id == 4
        && UserControl::parse(&m.payload) == Some(UserControl::PingResponse(1234))));
    let ack = msgs
        .iter()
        .find(|m| m.type_id == 3)
        .expect("acknowledgement");
    assert_eq!(
        chunk::read_u32(&ack.payload),
        Some(s.stats().bytes_in as u32)
    );
}

#[test]
fn connect_fourcc_list_and_a_failed_play() {
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let mut c = Client::new();
    let list = Value::Array {
        entries: vec![Value::String("avc1".into())],
    };
    let obj = object(vec![
        ("app", Value::String("live".into())),
        ("fourCcList", list),
    ]);
    c.cmd(0, "connect", 1.0, &[obj]);
    s.push(&std::mem::take(&mut c.out), now).unwrap();
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::Connect { fourcc_list: Some(l), .. }) if l == ["avc1"]
    ));
    s.accept_connect().unwrap();
    c.cmd(0, "createStream", 2.0, &[Value::Null]);
    c.cmd(1, "play", 3.0, &[Value::Null, Value::String("cam".into())]);
    s.push(&std::mem::take(&mut c.out), now).unwrap();
    assert!(matches!(s.poll_event(), Some(ServerEvent::Play { .. })));
    assert!(s.fail_play(1, "x").is_err(), "not playing yet");
    s.accept_play(1).unwrap();
    s.fail_play(1, "river-relay: the stream's video is H.265/HEVC (hvc1)")
        .unwrap();
    assert!(s.should_close());
    assert!(s.send_media(1, MediaKind::Video, 0, &[0x17, 1]).is_err());
    let msgs = server_messages(&s.take_output());
    // The _result's properties name what river takes.
    let (name, vals) = &commands(&msgs)[0];
    assert_eq!(name, "_result");
    let want = Value::Array {
        entries: ACCEPTED_FOURCCS
            .iter()
            .map(|f| Value::String((*f).into()))
            .collect(),
    };
    assert!(
        matches!(&vals[0], Value::Object { entries, .. }
            if entries.iter().any(|p| p.key == "fourCcList" && p.value == want)),
        "{vals:?}"
    );
    assert_eq!(
        status_codes(&msgs[4..]),
        [
            "NetStream.Play.Reset",
            "NetStream.Play.Start",
            "NetStream.Play.Failed"
        ]
    );
}

#[test]
fn play_sends_status_then_media() {
    let (mut s, mut c, now) = after_connect();
    c.cmd(0, "createStream", 2.0, &[Value::Null]);
    c.cmd(
        0,
        "getStreamLength",
        3.0,
        &[Value::Null, Value::String("cam".into())],
    );
    c.cmd(
        1,
        "play",
        4.0,
        &[
            Value::Null,
            Value::String("cam?password=x".into()),
            Value::Number(-2.0),
        ],
    );
    s.push(&c.out, now).unwrap();
    assert_eq!(
        s.poll_event(),
        Some(ServerEvent::Play {
            stream_id: 1,
            stream_name: "cam".into(),
            query: "password=x".into(),
            start: -2.0
        })
    );
    assert!(
        s.send_media(1, MediaKind::Video, 0, &[1]).is_err(),
        "not yet playing"
    );
    s.accept_play(1).unwrap();
    let meta = &metadata_body()[16..];
    s.send_metadata(1, 0, meta).unwrap();
    let big: Vec<u8> = (0..20000).map(|i| i as u8).collect();
    s.send_media(1, MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1])
        .unwrap();
    s.send_media(1, MediaKind::Audio, 0, &[0xAF, 0, 0x12, 0x10])
        .unwrap();
    for i in 0..5u32 {
        s.send_media(1, MediaKind::Video, 40 * i, &big).unwrap();
        s.send_media(1, MediaKind::Audio, 23 * i, &[0xAF, 1, i as u8])
            .unwrap();
    }
    s.end_play(1).unwrap();
    let msgs = server_messages_tail(&s.take_output());
    assert_eq!(
        status_codes(&msgs),
        [
            "NetStream.Play.Reset",
            "NetStream.Play.Start",
            "NetStream.Play.UnpublishNotify"
        ]
    );
    let data: Vec<&Message> = msgs.iter().filter(|m| m.type_id == 18).collect();
    assert!(Command::parse(&data[0].payload).unwrap().name == "|RtmpSampleAccess");
    assert_eq!(&data[1].payload[..], meta);
    let media: Vec<(u8, u32, usize)> = msgs
        .iter()
        .filter(|m| m.type_id == 8 || m.type_id == 9)
        .map(|m| (m.type_id, m.timestamp, m.payload.len()))
        .collect();
    assert_eq!(media.len(), 12);
    assert_eq!(media[2], (9, 0, 20000));
    assert_eq!(media[10], (9, 160, 20000));
    assert_eq!(media[11], (8, 92, 3));
    assert!(msgs
        .iter()
        .all(|m| m.type_id != 8 && m.type_id != 9 || m.stream_id == 1));
}

/// Media written by the caller (shared between players, `relay::prechunk`) on the session's data
/// chunk stream: the session's next status there starts with a full header, not one relative to
/// what it wrote there before.
#[test]
fn media_sent_elsewhere_leaves_no_stale_header() {
    let (mut s, mut c, now) = after_connect();
    c.cmd(0, "createStream", 2.0, &[Value::Null]);
    c.cmd(1, "play", 3.0, &[Value::Null, Value::String("cam".into())]);
    s.push(&c.out, now).unwrap();
    assert!(matches!(s.poll_event(), Some(ServerEvent::Play { .. })));
    s.accept_play(1).unwrap();
    let mut out = s.take_output();
    let meta = &metadata_body()[16..];
    let h = crate::proto::rtmp::FirstHeader {
        fmt: 0,
        field: 5000,
        length: meta.len() as u32,
        type_id: 18,
        stream_id: 1,
    };
    crate::proto::rtmp::encode(CS_DATA, h, meta, s.out_chunk_size(), &mut out);
    s.media_sent_elsewhere();
    s.end_play(1).unwrap();
    out.extend(s.take_output());
    let msgs = server_messages_tail(&out);
    let last = msgs.last().unwrap();
    assert_eq!(
        status_codes(&msgs[msgs.len() - 1..]),
        ["NetStream.Play.UnpublishNotify"]
    );
    assert_eq!((last.csid, last.stream_id, last.timestamp), (CS_DATA, 1, 0));
    assert!(msgs
        .iter()
        .any(|m| m.type_id == 18 && m.timestamp == 5000 && m.payload[..] == *meta));
}

#[test]
fn aggregate_messages_are_split() {
    let (mut s, mut c, now) = after_connect();
    c.cmd(0, "createStream", 2.0, &[Value::Null]);
    c.cmd(1, "publish", 3.0, &[Value::Null, Value::String("k".into())]);
    s.push(&std::mem::take(&mut c.out), now).unwrap();
    let Some(ServerEvent::Publish { stream_id, .. }) = s.poll_event() else {
        panic!()
    };
    s.accept_publish(stream_id).unwrap();
    let mut agg = Vec::new();
    for (t, ts, body) in [
        (9u8, 1000u32, &[0x17u8, 1, 0, 0, 0, 5][..]),
        (8, 1020, &[0xAF, 1, 7]),
    ] {
        crate::format::flv::write_tag(crate::format::flv::TagKind::from_u8(t), ts, body, &mut agg)
            .unwrap();
    }
    c.msg(7, 22, 1, 500, &agg);
    s.push(&c.out, now).unwrap();
    let got: Vec<(MediaKind, u32, Bytes)> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            ServerEvent::Media {
                kind,
                timestamp,
                body,
                ..
            } => Some((kind, timestamp, body)),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0, got[0].1), (MediaKind::Video, 500));
    assert_eq!((got[1].0, got[1].1), (MediaKind::Audio, 520));
    assert_eq!(&got[1].2[..], &[0xAF, 1, 7]);
}

#[test]
fn enhanced_rtmp_video_passes_as_a_tag_body() {
    let (mut s, mut c, now) = after_connect();
    c.cmd(0, "createStream", 2.0, &[Value::Null]);
    c.cmd(1, "publish", 3.0, &[Value::Null, Value::String("k".into())]);
    let mut hvc = vec![0x90]; // ex header, keyframe, SequenceStart
    hvc.extend_from_slice(b"hvc1");
    hvc.extend_from_slice(&[1, 2, 3]);
    c.msg(6, 9, 1, 0, &hvc);
    s.push(&c.out, now).unwrap();
    let Some(ServerEvent::Publish { stream_id, .. }) = s.poll_event() else {
        panic!()
    };
    s.accept_publish(stream_id).unwrap();
    let Some(ServerEvent::Media { body, .. }) = s.poll_event() else {
        panic!()
    };
    let v = crate::format::flv::VideoTag::parse(&body).unwrap();
    assert!(
        matches!(v.packet, crate::format::flv::VideoPacket::Ex { fourcc, .. } if fourcc == crate::format::flv::FourCc::HVC1)
    );
}

#[test]
fn message_type_ids_round_trip() {
    for t in 0..=255u8 {
        assert_eq!(MessageType::from_u8(t).as_u8(), t);
    }
    for u in [
        UserControl::StreamBegin(1),
        UserControl::StreamEof(2),
        UserControl::SetBufferLength {
            stream_id: 1,
            ms: 3000,
        },
        UserControl::PingRequest(9),
        UserControl::PingResponse(9),
    ] {
        assert_eq!(UserControl::parse(&u.encode()), Some(u));
    }
}

const FFMPEG_PUBLISH: &[u8] =
    include_bytes!("../../../tests/fixtures/rtmp/ffmpeg-5.1-publish.c2s.bin");
const SOURCE_FLV: &[u8] =
    include_bytes!("../../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");

#[test]
fn ffmpeg_publish_capture_replays_as_the_source_tags() {
    let (evs, _) = drive(FFMPEG_PUBLISH, &[usize::MAX]);
    assert!(
        matches!(&evs[0], ServerEvent::Connect { app, flash_ver: Some(f), .. } if app == "live" && f.starts_with("FMLE/3.0"))
    );
    assert!(matches!(&evs[1], ServerEvent::Publish { stream_key, .. } if stream_key == "key"));
    // The source file's tags, in order: onMetaData, sequence headers, frames, end of sequence.
    let mut r = crate::format::flv::FlvReader::new();
    let mut fe = Vec::new();
    r.push(SOURCE_FLV, &mut fe);
    r.finish(&mut fe);
    let want: Vec<(u8, u32, Bytes)> = fe
        .into_iter()
        .filter_map(|e| match e {
            crate::format::flv::FlvEvent::Tag(t) => Some((t.kind.as_u8(), t.timestamp, t.body)),
            _ => None,
        })
        .collect();
    let got: Vec<(u8, u32, Bytes)> = evs
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                kind,
                timestamp,
                body,
                ..
            } => Some((kind.type_id(), *timestamp, body.clone())),
            ServerEvent::Metadata {
                timestamp, body, ..
            } => Some((18, *timestamp, body.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(want.len(), 79);
    // ffmpeg rewrites onMetaData for the network (no duration/filesize), so compare media only.
    assert_eq!(got[0].0, 18);
    assert!(crate::format::flv::parse_script(&got[0].2)
        .unwrap()
        .is_metadata());
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate().skip(1) {
        assert_eq!(g, w, "tag {i}");
    }
    assert!(matches!(evs[evs.len() - 2], ServerEvent::Unpublish { .. }));
    for sizes in [&[1usize][..], &[13], &[4096], &[1537, 3, 60000]] {
        let (e2, _) = drive(FFMPEG_PUBLISH, sizes);
        assert!(e2 == evs, "sizes {sizes:?}: events differ");
    }
}
