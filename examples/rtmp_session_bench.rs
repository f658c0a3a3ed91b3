//! Micro benchmark of the sans-IO RTMP session, no sockets: how fast one core turns FLV tags into
//! RTMP chunks for a player (play side), and RTMP chunks into media events (publish side).
//!
//!     cargo run --release --example rtmp_session_bench
use std::time::Instant;

use amf::amf0::Value;
use river::proto::rtmp::handshake::{client_c0c1, HANDSHAKE_SIZE};
use river::proto::rtmp::{
    ChunkWriter, Command, MediaKind, ServerConfig, ServerEvent, ServerSession,
};

const SECONDS: u32 = 600;
const VIDEO: usize = 12_000; // ~3 Mb/s at 30 fps
const AUDIO: usize = 400;

fn connect(c: &mut Vec<u8>, w: &mut ChunkWriter) {
    c.extend(client_c0c1(0));
    c.extend(vec![0u8; HANDSHAKE_SIZE]);
    let obj = Value::Object {
        class_name: None,
        entries: vec![amf::Pair {
            key: "app".into(),
            value: Value::String("live".into()),
        }],
    };
    w.write(3, 20, 0, 0, &Command::encode("connect", 1.0, &[obj]), c);
    w.write(
        3,
        20,
        0,
        0,
        &Command::encode("createStream", 2.0, &[Value::Null]),
        c,
    );
}

fn accept_all(s: &mut ServerSession) -> u64 {
    let mut media = 0;
    while let Some(e) = s.poll_event() {
        match e {
            ServerEvent::Connect { .. } => s.accept_connect().unwrap(),
            ServerEvent::Publish { stream_id, .. } => s.accept_publish(stream_id).unwrap(),
            ServerEvent::Play { stream_id, .. } => s.accept_play(stream_id).unwrap(),
            ServerEvent::Media { .. } => media += 1,
            _ => {}
        }
    }
    media
}

fn main() {
    let video = vec![0x27u8; VIDEO];
    let audio = vec![0xAFu8; AUDIO];
    let tags = SECONDS as u64 * (30 + 47);
    let bytes = SECONDS as u64 * (30 * VIDEO as u64 + 47 * AUDIO as u64);

    // Play: tags in, chunks out.
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let (mut c, mut w) = (Vec::new(), ChunkWriter::new());
    connect(&mut c, &mut w);
    w.write(
        3,
        20,
        1,
        0,
        &Command::encode("play", 3.0, &[Value::Null, Value::String("k".into())]),
        &mut c,
    );
    s.push(&c, now).unwrap();
    accept_all(&mut s);
    s.take_output();
    let t = Instant::now();
    let mut out_bytes = 0u64;
    for sec in 0..SECONDS {
        for i in 0..30u32 {
            s.send_media(1, MediaKind::Video, sec * 1000 + i * 33, &video)
                .unwrap();
        }
        for i in 0..47u32 {
            s.send_media(1, MediaKind::Audio, sec * 1000 + i * 21, &audio)
                .unwrap();
        }
        out_bytes += s.pending_output().len() as u64;
        let n = s.pending_output().len();
        s.consume_output(n);
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "play:    {tags} tags, {:.0} MB in {dt:.3} s: {:.0} MB/s, {:.2} M tags/s, {:.0}x realtime per core ({out_bytes} bytes out)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / dt,
        tags as f64 / 1e6 / dt,
        SECONDS as f64 / dt
    );

    // Publish: chunks in, media events out (4096-byte chunks as ffmpeg sends, 64 KiB reads).
    let mut c = Vec::new();
    let mut w = ChunkWriter::new();
    connect(&mut c, &mut w);
    w.set_chunk_size(4096, &mut c);
    w.write(
        3,
        20,
        1,
        0,
        &Command::encode("publish", 3.0, &[Value::Null, Value::String("k".into())]),
        &mut c,
    );
    for sec in 0..SECONDS {
        for i in 0..30u32 {
            w.write(6, 9, 1, sec * 1000 + i * 33, &video, &mut c);
        }
        for i in 0..47u32 {
            w.write(4, 8, 1, sec * 1000 + i * 21, &audio, &mut c);
        }
    }
    let now = Instant::now();
    let mut s = ServerSession::new(ServerConfig::default(), now, 1);
    let t = Instant::now();
    let mut media = 0;
    for piece in c.chunks(64 * 1024) {
        s.push(piece, now).unwrap();
        media += accept_all(&mut s);
        s.take_output();
    }
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(media, tags);
    println!(
        "publish: {media} tags, {:.0} MB in {dt:.3} s: {:.0} MB/s, {:.2} M tags/s, {:.0}x realtime per core",
        c.len() as f64 / 1e6,
        c.len() as f64 / 1e6 / dt,
        media as f64 / 1e6 / dt,
        SECONDS as f64 / dt
    );
}
