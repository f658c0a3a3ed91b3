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

/// Raw H.265 from Debian's ffmpeg: x265 with B-frames (bframes=2), closed 1 s GOPs, 320x240, no
/// audio.
fn raw_h265() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("relay-hevc-320x240p{FPS}-bf2-closedgop1s-{SECS}s.h265");
    let path = tmpdir().join(&name);
    if !path.exists() {
        let tmp = tmpdir().join(format!("{name}.tmp"));
        let video = format!("testsrc2=size=320x240:rate={FPS}:duration={SECS}");
        let params = format!(
            "bframes=2:keyint={FPS}:min-keyint={FPS}:scenecut=0:open-gop=0:frame-threads=1:pools=none:log-level=error"
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

/// What a watcher who joins after `chunks[..join_at]` receives: the GOP cache's join, then the
/// rest live through its queue.
fn late_joiner(chunks: &[Chunk], fmt: StreamFormat, join_at: usize) -> Vec<u8> {
    let t = Instant::now();
    let mut cache = GopCache::new(CacheLimits::default(), true);
    for c in &chunks[..join_at] {
        cache.push(c, t);
    }
    let join = cache.join();
    assert!(join.starts_on_keyframe);
    let mut q = WatcherQueue::new(QueueLimits::default(), fmt, join, t);
    for c in &chunks[join_at..] {
        assert_eq!(q.push(c, t), Verdict::Ok);
    }
    let mut got = Vec::new();
    while let Some(f) = q.front() {
        let n = f.len();
        got.extend_from_slice(f);
        q.consume(n, Instant::now());
    }
    got
}

#[test]
fn raw_h265_keyframes_and_a_late_joiner_through_the_gop_cache() {
    let path = raw_h265();
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
    let (mut at, mut i) = (0, 0);
    while at < data.len() * 37 / 100 {
        at += chunks[i].data.len();
        i += 1;
    }
    let got = late_joiner(&chunks, fmt, i);
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
    let src = raw_h265();
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

/// An open-GOP source as Enhanced FLV: Debian's ffmpeg encodes, a CRA picture every 24 frames
/// with 2 RASL pictures each (x265 places leading pictures when the GOP is a multiple of its
/// 3-picture mini-GOP; ffmpeg 9's x265 4 placed none at 24), ffmpeg 9 copies to FLV.
fn open_gop_flv() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("relay-hevc-320x240p{FPS}-bf2-opengop24-{SECS}s");
    let path = tmpdir().join(format!("{name}.flv"));
    if !path.exists() {
        let ts = tmpdir().join(format!("{name}.ts"));
        let tmp = tmpdir().join(format!("{name}.tmp.flv"));
        let video = format!("testsrc2=size=320x240:rate={FPS}:duration={SECS}");
        let params = "bframes=2:keyint=24:min-keyint=24:scenecut=0:open-gop=1:frame-threads=1:pools=none:log-level=error";
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
            params,
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mpegts",
            &ts.to_string_lossy(),
        ]);
        ffmpeg9_run(&[
            "-i",
            &ts.to_string_lossy(),
            "-c",
            "copy",
            "-f",
            "flv",
            &tmp.to_string_lossy(),
        ]);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// Picture types (H.265 nal_unit_type of the first slice) of an FLV's video access units.
fn picture_types(flv: &[u8]) -> Vec<u8> {
    crate::hevc::flv_access_units(flv)
        .iter()
        .map(|au| {
            au.iter()
                .map(|n| river::codec::h265::nal_type(n))
                .find(|&t| t < 32)
                .expect("a slice")
        })
        .collect()
}

/// Video frames ffmpeg 9 decodes from `path` (its framecrc of a decode, one line a frame).
fn decoded_video_frames(path: &std::path::Path) -> usize {
    let out = run(
        &ffmpeg9(),
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            &path.to_string_lossy(),
            "-map",
            "0:v",
            "-f",
            "framecrc",
            "-",
        ],
        b"",
    );
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "{}",
        out.stderr
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

/// A late FLV joiner whose cached GOP starts on a CRA picture gets none of that CRA's RASL
/// pictures (they reference the GOP before it, which the joiner never got): every picture it gets
/// decodes, and ffmpeg 9 decodes every one without an error.
#[test]
fn open_gop_flv_late_joiner_gets_no_rasl_pictures() {
    let src = open_gop_flv();
    let data = std::fs::read(&src).unwrap();
    let types = picture_types(&data);
    let cra = types.iter().position(|&t| t == 21).expect("a CRA picture");
    assert!(
        matches!(types[cra + 1], 8 | 9),
        "x265's open GOP: RASL pictures follow the CRA: {types:?}"
    );
    let (chunks, fmt) = split(&data, 4096);
    assert_eq!(fmt, StreamFormat::Flv);
    // Join in the second GOP, before its RASL pictures went by and after: both are skipped.
    let key2 = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.mark == Mark::Keyframe)
        .nth(1)
        .unwrap()
        .0;
    for (name, join_at) in [("at the CRA", key2 + 1), ("later in its GOP", key2 + 12)] {
        let got = late_joiner(&chunks, fmt, join_at);
        let got_types = picture_types(&got);
        assert_eq!(got_types[0], 21, "{name}: starts on the CRA");
        let next_irap = got_types[1..]
            .iter()
            .position(|t| (16..=21).contains(t))
            .map_or(got_types.len(), |i| i + 1);
        assert!(
            got_types[..next_irap].iter().all(|t| !matches!(t, 8 | 9)),
            "{name}: RASL pictures of the joined CRA: {got_types:?}"
        );
        assert!(
            got_types[next_irap..].iter().any(|t| matches!(t, 8 | 9)),
            "{name}: the next CRA's RASL pictures are kept"
        );
        let out = write_tmp(&format!("relay-hevc-opengop-join-{}.flv", join_at), &got);
        assert_decodes_cleanly9(&out);
        assert_eq!(
            decoded_video_frames(&out),
            got_types.len(),
            "{name}: every picture sent decodes"
        );
    }
}

/// The same through the hub: ffmpeg 9 publishes the open-GOP stream over RTMP in real time, and a
/// late http-flv player (ffmpeg 9) that joins in the second GOP starts on its CRA without the
/// CRA's RASL pictures; every picture it gets decodes, without an error.
#[test]
fn open_gop_late_http_flv_player_of_an_rtmp_publish_decodes_every_picture() {
    let src = open_gop_flv();
    let hub = Hub::start(USERS);
    let publish = format!("rtmp://{}/fier/og?user-password=123", hub.rtmp);
    let mut p = crate::hevc_rtmp::ffmpeg9_bg(&[
        "-re",
        "-i",
        &src.to_string_lossy(),
        "-c",
        "copy",
        "-f",
        "flv",
        &publish,
    ]);
    hub.log.wait_for("channel fier/og: FLV content", "the hub");
    // The first CRA picture is at 0.88 s (frame 22), the second at 1.84 s.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let out = tmpdir().join("relay-hevc-opengop-late.flv");
    let url = format!("http://{}/fier/og.flv", hub.http);
    let mut late = crate::hevc_rtmp::ffmpeg9_bg(&[
        "-i",
        &url,
        "-c",
        "copy",
        "-f",
        "flv",
        &out.to_string_lossy(),
    ]);
    for (c, what) in [(&mut p, "ffmpeg 9 publish"), (&mut late, "late player")] {
        let st = wait_deadline(c, WAIT, what);
        assert!(st.success(), "{what}: {}", stderr_of(c));
    }
    let got = std::fs::read(&out).unwrap();
    let types = picture_types(&got);
    assert_eq!(types[0], 21, "starts on a CRA: {types:?}");
    let next_irap = types[1..]
        .iter()
        .position(|t| (16..=21).contains(t))
        .map_or(types.len(), |i| i + 1);
    assert!(
        types[..next_irap].iter().all(|t| !matches!(t, 8 | 9)),
        "RASL pictures of the CRA joined at: {types:?}"
    );
    assert_decodes_cleanly9(&out);
    assert_eq!(
        decoded_video_frames(&out),
        types.len(),
        "every picture decodes"
    );
}
