//! H.265 over RTSP (RFC 7798) against real peers on 127.0.0.1: a gst-rtsp-server camera
//! (x265enc + rtph265pay) pulled by river-rtsp-pull; ffmpeg (libx265, B-frames) publishing to the
//! hub over RTSP, ffmpeg (TCP and UDP) and GStreamer (rtph265depay) playing it back.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::rtsp::*;
use crate::common::*;

fn out_path(name: &str) -> (PathBuf, String) {
    let p = tmpdir().join(name);
    let s = p.to_string_lossy().to_string();
    (p, s)
}

/// `river-rtsp-pull URL ARGS > path`, within 60 s: its exit status and stderr.
fn pull(url: &str, args: &[&str], path: &std::path::Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(river("river-rtsp-pull"))
        .arg(url)
        .args(args)
        .env_remove("RIVER_RTSP_PASSWORD")
        .env_remove("RIVER_RTSP_USER")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning river-rtsp-pull");
    let status = wait_deadline(&mut child, Duration::from_secs(60), "river-rtsp-pull");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[test]
fn an_h265_camera_is_pulled_to_ts_over_tcp_and_udp() {
    require("ffmpeg");
    let cam = Camera::start(&["--codec", "h265"]);
    for transport in ["tcp", "udp"] {
        let (path, _) = out_path(&format!("hevc-rtsp-pull-{transport}.ts"));
        let (status, err) = pull(
            &cam.url,
            &["--transport", transport, "--duration", "2s"],
            &path,
        );
        assert!(status.success(), "{transport}: {status}: {err}");
        assert!(!err.contains("error"), "{transport}: {err}");
        let s = probe_streams(&path);
        assert_eq!(s.len(), 1, "{transport}: {s:?}");
        assert_eq!(s[0].codec, "hevc", "{transport}");
        // 2 s at 25 frames a second (server.py's default).
        assert!(
            (50..=62).contains(&s[0].packets),
            "{transport}: {} video frames in 2 s",
            s[0].packets
        );
        assert_decodes_cleanly(&path);
        let pk = probe_packets(&path);
        assert!(pk[0].key, "{transport}: starts on an IRAP picture");
    }
    // --format h264 cannot carry it: refused by name.
    let out = Command::new(river("river-rtsp-pull"))
        .args([&cam.url, "--format", "h264", "--duration", "1s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("H.265/HEVC video, which --format h264 cannot carry"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// `ffmpeg -re` of 4 s of libx265 (1 s GOP, 2 B-frames) published over RTSP/TCP.
fn publisher(url: &str) -> std::process::Child {
    spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=4",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=25:min-keyint=25:bframes=2:log-level=error",
            "-f",
            "rtsp",
            "-rtsp_transport",
            "tcp",
            url,
        ],
    )
}

/// `ffmpeg -rtsp_transport T -i URL -f framemd5 OUT`: an RTSP player decoding every picture
/// (ffmpeg 5.1's RTSP reader gives the first access unit of a B-frame stream no PTS, which its
/// muxers refuse with `-c copy`, whoever the server is).
fn player(url: &str, transport: &str, out: &str) -> std::process::Child {
    spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            transport,
            "-i",
            url,
            "-f",
            "framemd5",
            out,
        ],
    )
}

/// Decoded pictures in a framemd5 file.
fn decoded(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count()
}

#[test]
fn ffmpeg_publishes_h265_to_the_hub_and_ffmpeg_and_gstreamer_play_it() {
    require("ffmpeg");
    require_gst();
    let hub = Hub::start(&[("live", "pushpw")]);
    let push_url = format!("rtsp://live:pushpw@{}/live/hevc", hub.rtsp);
    let publisher = publisher(&push_url);
    hub.log
        .wait_for("channel live/hevc: FLV content", "the hub");
    let play_url = format!("rtsp://{}/live/hevc", hub.rtsp);
    let (tcp, t) = out_path("hevc-rtsp-hub-tcp.framemd5");
    let (udp, u) = out_path("hevc-rtsp-hub-udp.framemd5");
    let p_tcp = player(&play_url, "tcp", &t);
    let p_udp = player(&play_url, "udp", &u);
    let gst = gst_launch(&format!(
        "rtspsrc location={play_url} protocols=tcp name=src src. ! rtph265depay ! h265parse ! avdec_h265 ! fakesink"
    ));
    finish(publisher, "ffmpeg RTSP publisher");
    // `-v error`: any decoding error is on stderr.
    for (c, what, path) in [(p_tcp, "TCP", &tcp), (p_udp, "UDP", &udp)] {
        let err = finish(c, &format!("ffmpeg RTSP/{what} player"));
        assert!(err.trim().is_empty(), "{what}: {err}");
        // The players join while ffmpeg starts up, at the cached IRAP picture.
        let n = decoded(path);
        assert!(
            (25..=100).contains(&n),
            "{what}: {n} of 100 pictures decoded"
        );
    }
    finish_gst(gst, "GStreamer rtspsrc", &hub.log);
}

/// A late joiner of an H.265 broadcast with B-frames starts on an IRAP picture and gets the
/// B-frames, over RTSP/TCP (recorded as raw H.265 with `-c copy`: ffmpeg 5.1's RTSP reader
/// leaves the first access unit without a PTS, which the raw muxer does not need).
#[test]
fn a_late_h265_joiner_starts_on_an_irap_picture_with_b_frames() {
    require("ffmpeg");
    require("ffprobe");
    let hub = Hub::start(&[("live", "pushpw")]);
    let push_url = format!("rtsp://live:pushpw@{}/live/late", hub.rtsp);
    let publisher = publisher(&push_url);
    hub.log
        .wait_for("channel live/late: FLV content", "the hub");
    std::thread::sleep(Duration::from_millis(1500));
    let (path, p) = out_path("hevc-rtsp-hub-late.hevc");
    let url = format!("rtsp://{}/live/late", hub.rtsp);
    let player = spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-c",
            "copy",
            "-f",
            "hevc",
            &p,
        ],
    );
    finish(publisher, "ffmpeg RTSP publisher");
    finish(player, "ffmpeg RTSP player");
    let data = std::fs::read(&path).unwrap();
    // The first slice (Annex B, 3-byte start codes included in 4-byte ones).
    let first_vcl = data
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| (w[3] >> 1) & 0x3f)
        .find(|&t| t < 32)
        .unwrap();
    assert!(
        (16..=23).contains(&first_vcl),
        "starts on NAL type {first_vcl}"
    );
    assert_decodes_cleanly(&path);
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=pict_type",
        ])
        .args(["-of", "csv=p=0", &p])
        .output()
        .unwrap();
    let types = String::from_utf8_lossy(&out.stdout);
    let n = types.lines().count();
    assert!(
        (25..100).contains(&n),
        "{n} pictures of 100: the join came later"
    );
    assert!(
        types.lines().any(|l| l.trim() == "B"),
        "no B-frames: {types}"
    );
}

/// river-rtsp-pull of the hub's H.265 stream with B-frames (ffmpeg's libx265 publishing over
/// RTSP): RTP carries no DTS, and retina hands frames over in decoding order with their PTS, so
/// river derives the DTS from the SPS's reorder delay. The pulled MPEG-TS decodes cleanly, DTS
/// strictly increasing and never above PTS, starting on an IRAP picture. (With PTS as DTS, ffmpeg
/// reported "non monotonically increasing dts" on every pull.)
#[test]
fn river_rtsp_pull_of_the_hubs_h265_with_b_frames_decodes_cleanly() {
    require("ffmpeg");
    let hub = Hub::start(&[("live", "pushpw")]);
    let push_url = format!("rtsp://live:pushpw@{}/live/pull", hub.rtsp);
    let publisher = publisher(&push_url);
    hub.log
        .wait_for("channel live/pull: FLV content", "the hub");
    let (path, _) = out_path("hevc-rtsp-hub-pull.ts");
    let url = format!("rtsp://{}/live/pull", hub.rtsp);
    let (status, err) = pull(&url, &["--duration", "2s"], &path);
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("warning") && !err.contains("error"), "{err}");
    finish(publisher, "ffmpeg RTSP publisher");
    let pk = probe_packets(&path);
    assert!(pk[0].key, "starts on an IRAP picture");
    // 2 s of media at 25 fps, from the keyframe the hub's cache starts on.
    assert!((45..=62).contains(&pk.len()), "{} video packets", pk.len());
    for p in pk.windows(2) {
        assert!(p[1].dts > p[0].dts, "dts {:?} then {:?}", p[0], p[1]);
    }
    assert!(pk.iter().all(|p| p.pts >= p.dts), "{pk:?}");
    assert!(
        pk.windows(2).any(|w| w[1].pts < w[0].pts),
        "B-frames: presentation order differs from decoding order"
    );
    assert_decodes_cleanly(&path);
}
