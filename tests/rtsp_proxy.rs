//! river as an RTSP camera proxy, against real peers on 127.0.0.1: a gst-rtsp-server camera is
//! pulled once (`river-rtsp-pull --format flv | river-relay broadcast`) and served by the hub's
//! RTSP front to several players at once (two ffmpeg, one gst-launch-1.0); and a B-frame stream
//! pushed over HTTP-FLV or RTSP plays over RTSP with presentation timestamps in order.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::rtsp::*;
use common::*;

/// Seconds of media each ffmpeg player records.
const PLAY_SECS: u32 = 5;
/// The camera's frame rate.
const CAM_FPS: u32 = 30;

/// `ffmpeg -v error` decode of `path`: must print nothing. Returns ffprobe's decoded frame count
/// per stream (video, audio).
fn decode_check(path: &Path, what: &str) -> (u64, u64) {
    assert_decodes_cleanly(path);
    let s = probe_streams(path);
    let v = s
        .iter()
        .find(|s| s.codec == "h264" || s.codec == "rawvideo")
        .map(|s| s.packets)
        .unwrap_or(0);
    let a = s
        .iter()
        .find(|s| s.codec == "aac" || s.codec.starts_with("pcm"))
        .map(|s| s.packets)
        .unwrap_or(0);
    eprintln!(
        "{what}: {} decodes cleanly: video {v} frames, audio {a} packets",
        path.display()
    );
    (v, a)
}

/// Seconds of audio in a WAV file (from its header and size).
fn wav_secs(path: &Path) -> f64 {
    let out = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            &path.to_string_lossy(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        out.stderr
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

#[test]
fn camera_is_pulled_once_and_served_to_three_rtsp_players() {
    require("ffmpeg");
    require_gst();
    let cam = Camera::start(&["--audio", "--fps", &CAM_FPS.to_string(), "--gop", "30"]);
    let hub = Hub::start(&[("live", "pushpw")]);

    // camera → river-rtsp-pull → river-relay broadcast → hub (fstream), for 12 s of media.
    let mut pull = Command::new(river("river-rtsp-pull"))
        .args([&cam.url, "--format", "flv", "--duration", "12s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn river-rtsp-pull");
    let pull_log = Log::follow(&mut pull);
    let mut broadcast = Command::new(river("river-relay"))
        .args([
            "broadcast",
            &hub.fstream,
            "--user",
            "live",
            "--channel",
            "cam",
        ])
        .env("RIVER_USER_PASSWORD", "pushpw")
        .stdin(Stdio::from(pull.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn river-relay broadcast");
    let bc_log = Log::follow(&mut broadcast);
    hub.log.wait_for("channel live/cam: FLV content", "the hub");

    let url = format!("rtsp://{}/live/cam", hub.rtsp);
    let dir = scratch("rtsp-proxy");
    let (p1, p2) = (dir.join("player1.ts"), dir.join("player2.ts"));
    let (y4m, wav) = (dir.join("gst.y4m"), dir.join("gst.wav"));
    let f1 = ffmpeg_player(&url, PLAY_SECS, "mpegts", &p1);
    let f2 = ffmpeg_player(&url, PLAY_SECS, "mpegts", &p2);
    let gst = gst_player(&url, &y4m, &wav, "");
    // All three play at once.
    let start = std::time::Instant::now();
    while hub.log.count("over RTSP") < 3 {
        assert!(
            start.elapsed() < WAIT,
            "three RTSP players never played:\n{}",
            hub.log.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cam_sessions_while_playing = cam.log.count("server.py: session");
    finish(f1, "ffmpeg RTSP player 1");
    finish(f2, "ffmpeg RTSP player 2");
    let gst_out = finish(gst, "gst-launch-1.0 rtspsrc");
    let st = wait_deadline(&mut broadcast, WAIT * 2, "river-relay broadcast");
    assert!(st.success(), "river-relay broadcast: {}", bc_log.text());
    let st = wait_deadline(&mut pull, WAIT, "river-rtsp-pull");
    assert!(st.success(), "river-rtsp-pull: {}", pull_log.text());

    // The camera served exactly one RTSP client: river-rtsp-pull.
    assert_eq!(cam_sessions_while_playing, 1, "{}", cam.log.text());
    assert_eq!(cam.log.count("connected from"), 1, "{}", cam.log.text());
    assert_eq!(cam.log.count("server.py: session"), 1, "{}", cam.log.text());
    assert_eq!(cam.log.count("server.py: play"), 1, "{}", cam.log.text());

    let want = (PLAY_SECS * CAM_FPS) as f64;
    for (p, what) in [(&p1, "ffmpeg player 1"), (&p2, "ffmpeg player 2")] {
        let (v, a) = decode_check(p, what);
        assert!(
            v as f64 >= 0.7 * want && v as f64 <= want + 2.0,
            "{what}: {v} video frames for {PLAY_SECS} s at {CAM_FPS} fps"
        );
        // AAC at 48 kHz: 46.9 frames a second.
        assert!(
            a as f64 >= 0.7 * 46.9 * PLAY_SECS as f64,
            "{what}: {a} audio frames"
        );
        let pk = probe_packets(p);
        assert!(
            pk.iter().find(|p| p.kind == "video").unwrap().key,
            "{what}: starts on a keyframe"
        );
    }
    // GStreamer: decoded frames to Y4M, samples to WAV; it played until the broadcast ended.
    for bad in ["ERROR", "WARNING"] {
        assert!(!gst_out.contains(bad), "gst-launch-1.0: {gst_out}");
    }
    let (gv, _) = decode_check(&y4m, "gst-launch-1.0 video");
    assert_eq!(gv, y4m_frames(&y4m));
    assert_decodes_cleanly(&wav);
    let secs = wav_secs(&wav);
    eprintln!("gst-launch-1.0: {gv} video frames, {secs:.2} s of audio");
    assert!(secs >= 4.0, "gst-launch-1.0: {secs} s of audio");
    assert!(
        gv as f64 >= 0.7 * secs * CAM_FPS as f64 && gv as f64 <= (secs + 1.5) * CAM_FPS as f64,
        "gst-launch-1.0: {gv} video frames for {secs:.2} s of audio"
    );
    hub.log.wait_for("broadcast of live/cam ended", "the hub");
}
