//! H.265 through river-relay's hub, with real peers on 127.0.0.1: raw H.265 (Annex B) broadcast
//! over fstream is carried as H.265 like raw H.264 (keyframe-aware chunks, GOP cache, the
//! MPEG-TS and Enhanced FLV views), not as opaque bytes. RTMP and RTSP are in hevc_rtmp.rs and
//! hevc_rtsp.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use crate::common::hub::*;
use crate::common::*;
use crate::relay_faults::{relay, sh, stderr_of, video};
use river::media::StreamFormat;
use river::relay::cache::{CacheLimits, GopCache};
use river::relay::queue::{QueueLimits, Verdict, WatcherQueue};
use river::relay::stream::{Chunk, Mark, Splitter};

const FPS: u32 = 25;
const SECS: u32 = 4;

/// Raw H.265 from Debian's ffmpeg: x265 with B-frames (bframes=2), a 1 s GOP (`open_gop` picks
/// CRA pictures with RASL pictures after the first IDR, else IDR pictures), 320x240, no audio.
fn raw_h265(open_gop: bool) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!(
        "relay-hevc-320x240p{FPS}-bf2-{}1s-{SECS}s.h265",
        if open_gop { "opengop" } else { "closedgop" }
    );
    let path = tmpdir().join(&name);
    if !path.exists() {
        let tmp = tmpdir().join(format!("{name}.tmp"));
        let video = format!("testsrc2=size=320x240:rate={FPS}:duration={SECS}");
        let params = format!(
            "bframes=2:keyint={FPS}:min-keyint={FPS}:scenecut=0:open-gop={}:frame-threads=1:pools=none:log-level=error",
            u8::from(open_gop)
        );
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            &params,
            "-pix_fmt",
            "yuv420p",
            "-f",
            "hevc",
            &tmp.to_string_lossy(),
        ]);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn split(data: &[u8], cut: usize) -> (Vec<Chunk>, StreamFormat) {
    let mut s = Splitter::new();
    let mut out = Vec::new();
    for piece in data.chunks(cut) {
        s.push(piece, &mut out);
    }
    s.finish(&mut out);
    (out, s.format().unwrap())
}

#[test]
fn raw_h265_keyframes_and_a_late_joiner_through_the_gop_cache() {
    let path = raw_h265(false);
    let data = std::fs::read(&path).unwrap();
    let want = probe_packets(&path)
        .iter()
        .filter(|p| p.kind == "video" && p.key)
        .count();
    assert_eq!(want, SECS as usize, "one IDR a second");
    for cut in [1000, 4096, 1 << 24] {
        let (chunks, fmt) = split(&data, cut);
        assert_eq!(
            fmt,
            StreamFormat::AnnexBH265,
            "detected as H.265, not opaque"
        );
        let keys = chunks.iter().filter(|c| c.mark == Mark::Keyframe).count();
        assert_eq!(keys, want, "cut {cut}");
    }
    // Join 1.5 s in: the cached GOP starts on the second IDR.
    let (chunks, fmt) = split(&data, 1316);
    let t = Instant::now();
    let mut cache = GopCache::new(CacheLimits::default(), true);
    let (mut at, mut i) = (0, 0);
    while at < data.len() * 37 / 100 {
        cache.push(&chunks[i], t);
        at += chunks[i].data.len();
        i += 1;
    }
    let join = cache.join();
    assert!(join.starts_on_keyframe);
    let mut q = WatcherQueue::new(QueueLimits::default(), fmt, join, t);
    for c in &chunks[i..] {
        assert_eq!(q.push(c, t), Verdict::Ok);
    }
    let mut got = Vec::new();
    while let Some(f) = q.front() {
        let n = f.len();
        got.extend_from_slice(f);
        q.consume(n, Instant::now());
    }
    let out = write_tmp("relay-hevc-join.h265", &got);
    assert_decodes_cleanly(&out);
    let pk = probe_packets(&out);
    assert!(pk[0].key, "starts on a keyframe");
    let keys = pk.iter().filter(|p| p.key).count();
    assert_eq!(keys, SECS as usize - 1, "joined in the second GOP");
}

/// `GET path` over HTTP/1.0 on the hub: the body, to the end of the broadcast.
fn http_body(addr: String, path: &'static str) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        let split = v.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
        let head = String::from_utf8_lossy(&v[..split]).to_string();
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        v.split_off(split)
    })
}

#[test]
fn raw_h265_broadcast_plays_as_mpeg_ts_and_enhanced_flv_with_every_frame() {
    let hub = Hub::start(USERS);
    let src = raw_h265(false);
    let frames = (FPS * SECS) as usize;
    let ts = http_body(hub.http.clone(), "/fier/hv.ts");
    let flv = http_body(hub.http.clone(), "/fier/hv.flv");
    hub.wait_watchers("fier", "hv", 2);
    let mut b = sh(&format!(
        "'{}' broadcast {} --user fier --password 123 --channel hv < '{}'",
        relay(),
        hub.fstream,
        src.display()
    ));
    // The hub carries the channel as H.265 (it was opaque bytes, which no view can convert).
    hub.log
        .wait_for("H.265 Annex B content", "the hub's format line");
    let st = wait_deadline(&mut b, WAIT, "broadcast < h265");
    assert!(st.success(), "{}", stderr_of(&mut b));
    for (name, body) in [("ts", ts.join().unwrap()), ("flv", flv.join().unwrap())] {
        let out = write_tmp(&format!("relay-hevc-raw.{name}"), &body);
        let pk = if name == "flv" {
            assert_decodes_cleanly9(&out);
            probe_packets9(&out)
        } else {
            assert_decodes_cleanly(&out);
            probe_packets(&out)
        };
        let v = video(&pk);
        assert_eq!(v.len(), frames, "{}: video packets", out.display());
        assert!(v[0].key, "{name}: starts on a keyframe");
        for p in v.windows(2) {
            assert!(
                p[1].dts > p[0].dts,
                "{name}: dts {:?} then {:?}",
                p[0],
                p[1]
            );
        }
    }
}
