//! H.265 over Enhanced RTMP against real peers: ffmpeg 9 publishes HEVC (libx265, B-frames) to
//! river-relay serve --rtmp and to river-rtmp-in; ffmpeg 9 plays it back over RTMP, http-flv and
//! http-ts; a minimal RTMP client (river's own chunk layer) announces a connect `fourCcList`
//! without and with `hvc1`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amf::amf0::Value;
use river::proto::rtmp::handshake::{client_c0c1, client_c2, HANDSHAKE_SIZE};
use river::proto::rtmp::message::object;
use river::proto::rtmp::{ChunkReader, ChunkWriter, Command as RtmpCommand, ReaderLimits};

use crate::common::hub::*;
use crate::common::*;

const FPS: u32 = 30;
/// The source's GOP (s): a late joiner past the first one starts on the cached second IRAP.
const GOP: u32 = 4;
const SECS: u32 = 10;

/// 10 s of 320x240 at 30 fps, x265 with B-frames (bframes=2), an IDR every 4 s (closed GOP),
/// AAC, as ffmpeg 9 writes Enhanced FLV. Closed: the hub's FLV GOP cache does not yet drop the
/// RASL pictures after a CRA, so a late joiner on an open-GOP stream gets 2 pictures per join
/// that no decoder can show (measured with open-gop=1: 60 packets, 58 decoded frames).
fn source_flv() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = tmpdir().join(format!(
        "hevc-rtmp-320x240p{FPS}-bf2-closedgop{GOP}s-{SECS}s.flv"
    ));
    if !path.exists() {
        let tmp = tmpdir().join("hevc-rtmp-src.tmp.flv");
        let video = format!("testsrc2=size=320x240:rate={FPS}:duration={SECS}");
        let audio = format!("sine=frequency=440:sample_rate=44100:duration={SECS}");
        let x265 = format!(
            "bframes=2:keyint={k}:min-keyint={k}:scenecut=0:open-gop=0:frame-threads=1:pools=none:log-level=error",
            k = GOP * FPS
        );
        let t = tmp.to_string_lossy().to_string();
        ffmpeg9_run(&[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            &audio,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            &x265,
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-f",
            "flv",
            &t,
        ]);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

pub(crate) fn ffmpeg9_bg(args: &[&str]) -> Child {
    Command::new(ffmpeg9())
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg 9")
}

fn stderr_of(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Players stop after a count of video packets (`-frames:v`, decode order), not a duration: `-t`
/// with `-c copy` drops the reference picture past the cut but keeps the B-frames before it that
/// need it (seen: 61 packets, 59 decoded frames in a 2 s cut).
///
/// A played file: HEVC 320x240 and AAC, the first video packet an IRAP, at least `min_video`
/// video packets, every one decoded (ffmpeg 9 decodes as many frames as there are packets) and
/// no decoder error.
fn check_played(out: &Path, min_video: usize) {
    let pk = probe_packets9(out);
    let video: Vec<_> = pk.iter().filter(|p| p.kind == "video").collect();
    assert!(
        video.len() >= min_video,
        "{}: {} video packets",
        out.display(),
        video.len()
    );
    assert!(video[0].key, "{}: starts on a keyframe", out.display());
    assert!(
        pk.iter().any(|p| p.kind == "audio"),
        "{}: audio",
        out.display()
    );
    assert_decodes_cleanly9(out);
    let p = out.to_string_lossy().to_string();
    let o = run(
        &ffmpeg9(),
        &[
            "-nostdin", "-v", "error", "-i", &p, "-map", "0:v", "-f", "framecrc", "-",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", o.stderr);
    let text = String::from_utf8_lossy(&o.stdout);
    let frames = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(frames, video.len(), "{}: decoded frames", out.display());
    let ctx = run(
        &ffmpeg9(),
        &[
            "-nostdin", "-v", "error", "-i", &p, "-map", "0:v", "-c", "copy", "-f", "null", "-",
        ],
        b"",
    );
    assert!(ctx.status.success(), "{}", ctx.stderr);
}

/// What a minimal RTMP player saw: the onStatus codes with their descriptions, and the FourCC
/// (or legacy codec id) of every video message.
#[derive(Debug, Default)]
struct Seen {
    status: Vec<(String, String)>,
    video: Vec<String>,
    connect_result: Option<Value>,
}

/// Plays rtmp://addr/app/stream with a connect that announces `fourccs` (`fourCcList`), reading
/// until the server closes, `video_wanted` video messages came, or `deadline`.
fn raw_play(addr: &str, app: &str, stream: &str, fourccs: &[&str], video_wanted: usize) -> Seen {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(&client_c0c1(0)).unwrap();
    let mut s0s1 = vec![0u8; 1 + HANDSHAKE_SIZE];
    s.read_exact(&mut s0s1).unwrap();
    let mut s2 = vec![0u8; HANDSHAKE_SIZE];
    s.read_exact(&mut s2).unwrap();
    let mut out = client_c2(&s0s1);
    let mut w = ChunkWriter::new();
    let list = fourccs.iter().map(|f| Value::String((*f).into())).collect();
    let obj = object(vec![
        ("app", Value::String(app.into())),
        ("tcUrl", Value::String(format!("rtmp://{addr}/{app}"))),
        ("fourCcList", Value::Array { entries: list }),
    ]);
    let cmd = |name: &str, txn: f64, vals: &[Value]| RtmpCommand::encode(name, txn, vals);
    w.write(3, 20, 0, 0, &cmd("connect", 1.0, &[obj]), &mut out);
    w.write(
        3,
        20,
        0,
        0,
        &cmd("createStream", 2.0, &[Value::Null]),
        &mut out,
    );
    let play = [
        Value::Null,
        Value::String(stream.into()),
        Value::Number(-1000.0),
    ];
    w.write(8, 20, 1, 0, &cmd("play", 0.0, &play), &mut out);
    s.write_all(&out).unwrap();
    let mut r = ChunkReader::new(ReaderLimits::default(), (1 + 2 * HANDSHAKE_SIZE) as u64);
    let mut seen = Seen::default();
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline && seen.video.len() < video_wanted {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => r.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => panic!("raw RTMP player: {e}"),
        }
        while let Some(m) = r.next_message().expect("server's chunk stream") {
            match m.type_id {
                20 => {
                    let c = RtmpCommand::parse(&m.payload).expect("server's command");
                    if c.name == "onStatus" {
                        let code = obj_str(c.args.first(), "code");
                        let d = obj_str(c.args.first(), "description");
                        seen.status.push((code, d));
                    } else if c.name == "_result" && c.transaction_id == 1.0 {
                        seen.connect_result = Some(c.object.clone());
                    }
                }
                9 => {
                    let b0 = m.payload[0];
                    seen.video.push(if b0 & 0x80 != 0 {
                        String::from_utf8_lossy(&m.payload[1..5]).into_owned()
                    } else {
                        format!("codec id {}", b0 & 0x0f)
                    });
                }
                _ => {}
            }
        }
    }
    seen
}

fn obj_str(v: Option<&Value>, key: &str) -> String {
    match v {
        Some(Value::Object { entries, .. }) => entries
            .iter()
            .find(|p| p.key == key)
            .and_then(|p| match &p.value {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[test]
fn hevc_rtmp_publish_played_over_rtmp_http_flv_http_ts_with_fourcc_negotiation() {
    let src = source_flv();
    let hub = Hub::start(USERS);
    let s = src.to_string_lossy().to_string();
    let publish = format!("rtmp://{}/fier/hevc?user-password=123", hub.rtmp);
    let mut p = ffmpeg9_bg(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &publish]);
    hub.log.wait_for("broadcasting fier/hevc", "the hub");
    hub.log
        .wait_for("channel fier/hevc: FLV content", "the hub");
    let dir = tmpdir();
    let play = format!("rtmp://{}/fier/hevc", hub.rtmp);
    let o_rtmp = dir.join("hevc-rtmp-play.flv");
    let o_http = dir.join("hevc-rtmp-http.flv");
    let o_ts = dir.join("hevc-rtmp-http.ts");
    let o_late = dir.join("hevc-rtmp-late.flv");
    let path = |p: &Path| p.to_string_lossy().to_string();
    // ffmpeg announces no fourCcList when it plays: it gets Enhanced FLV.
    let mut r1 = ffmpeg9_bg(&["-i", &play, "-c", "copy", "-frames:v", "90", &path(&o_rtmp)]);
    let url = format!("http://{}/fier/hevc.flv", hub.http);
    let mut h = ffmpeg9_bg(&["-i", &url, "-c", "copy", "-frames:v", "90", &path(&o_http)]);
    let url_ts = format!("http://{}/fier/hevc.ts", hub.http);
    let mut hts = ffmpeg9_bg(&[
        "-i",
        &url_ts,
        "-c",
        "copy",
        "-t",
        "3",
        "-f",
        "mpegts",
        &path(&o_ts),
    ]);

    // A player that names only H.264 is told why, and gets no H.265 video: the channel is live,
    // so the refusal comes instead of NetStream.Play.Start (never after it).
    let refused = raw_play(&hub.rtmp, "fier", "hevc", &["avc1", "av01"], 1);
    assert!(refused.video.is_empty(), "{refused:?}");
    let codes: Vec<&str> = refused.status.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["NetStream.Play.Failed"], "{refused:?}");
    let failed = refused
        .status
        .iter()
        .find(|(c, _)| c == "NetStream.Play.Failed")
        .unwrap_or_else(|| panic!("no NetStream.Play.Failed: {refused:?}"));
    assert!(
        failed.1.contains("H.265/HEVC (hvc1)") && failed.1.contains("[avc1,av01]"),
        "{failed:?}"
    );
    hub.log.wait_for(
        "refused: RTMP player: the stream's video is H.265/HEVC (hvc1)",
        "the hub",
    );
    // The connect _result says what river takes.
    let props = format!("{:?}", refused.connect_result);
    assert!(
        props.contains("fourCcList") && props.contains("hvc1"),
        "{props}"
    );
    // One that names hvc1 gets the sequence start and frames.
    let served = raw_play(&hub.rtmp, "fier", "hevc", &["hvc1"], 10);
    assert!(
        served.video.len() >= 10 && served.video.iter().all(|v| v == "hvc1"),
        "{served:?}"
    );
    assert!(
        !served.status.iter().any(|(c, _)| c.ends_with("Failed")),
        "{served:?}"
    );

    // A late joiner past the first IRAP (4 s GOP): starts on the cached one.
    std::thread::sleep(Duration::from_secs(5));
    let mut late = ffmpeg9_bg(&["-i", &play, "-c", "copy", "-frames:v", "60", &path(&o_late)]);
    for (c, what) in [
        (&mut r1, "rtmp player"),
        (&mut h, "http-flv player"),
        (&mut hts, "http-ts player"),
        (&mut late, "late rtmp player"),
    ] {
        let st = wait_deadline(c, WAIT, what);
        assert!(st.success(), "{what}: {}", stderr_of(c));
    }
    let st = wait_deadline(&mut p, WAIT, "ffmpeg 9 publish");
    assert!(st.success(), "publish: {}", stderr_of(&mut p));
    check_played(&o_rtmp, 60);
    check_played(&o_http, 60);
    check_played(&o_ts, 60);
    check_played(&o_late, 30);
    // Debian's ffprobe reads the TS view as HEVC (stream type 0x24).
    let streams = probe_streams(&o_ts);
    assert!(streams.iter().any(|s| s.codec == "hevc"), "{streams:?}");
    assert_decodes_cleanly(&o_ts);
}

#[test]
fn river_rtmp_in_writes_hevc_as_enhanced_flv() {
    let src = source_flv();
    let dir = tmpdir();
    let out = dir.join("hevc-rtmp-in.flv");
    let mut rin = Command::new(river("river-rtmp-in"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::follow(&mut rin);
    let line = log.wait_for("listening on ", "river-rtmp-in");
    let addr = line
        .rsplit("listening on rtmp://")
        .next()
        .and_then(|a| a.split('/').next())
        .unwrap()
        .trim()
        .to_string();
    let s = src.to_string_lossy().to_string();
    let url = format!("rtmp://{addr}/live/hevc");
    let mut p = ffmpeg9_bg(&["-re", "-t", "4", "-i", &s, "-c", "copy", "-f", "flv", &url]);
    let st = wait_deadline(&mut p, WAIT, "ffmpeg 9 publish");
    assert!(st.success(), "publish: {}", stderr_of(&mut p));
    let st = wait_deadline(&mut rin, WAIT, "river-rtmp-in");
    assert!(st.success(), "river-rtmp-in: {}", log.text());
    let b = std::fs::read(&out).unwrap();
    assert!(b.starts_with(b"FLV"), "{} bytes", b.len());
    check_played(&out, 100);
}
