//! river as an RTSP camera proxy, against real peers on 127.0.0.1: a gst-rtsp-server camera is
//! pulled once (`river-rtsp-pull --format flv | river-relay broadcast`) and served by the hub's
//! RTSP front to several players at once (two ffmpeg, one GStreamer); and a B-frame stream
//! pushed over HTTP-FLV or RTSP plays over RTSP with presentation timestamps in order; a late
//! player's timestamps start at 0 (RTP-Info rtptime) with audio and video in sync.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::rtsp::*;
use crate::common::*;

/// Seconds of media each ffmpeg player records.
const PLAY_SECS: u32 = 5;
/// The camera's frame rate.
const CAM_FPS: u32 = 30;

/// The camera's AAC frame: 1024 samples at 48 kHz (tests/fixtures/rtsp/server.py).
const CAM_AAC_FRAME: f64 = 1024.0 / 48_000.0;

/// `ffmpeg -v error` decode of `path`, video and audio (the shared helper): must print nothing.
/// Returns ffprobe's packet count per stream (video, audio; one video packet is one frame).
/// Frame times are checked by [`assert_camera_frame_times`], not by ffmpeg's null muxer: that
/// muxer rounds each frame time to 1/30 s counted from the recording's start, so millisecond
/// times (FLV) whose frames sit half a period off that start round two frames 33 ms apart onto
/// one tick. Evidence: a recording whose first audio packet (its start) is 17 ms after the
/// keyframe has frames 33 ms apart at 1.50 and 2.49 periods, which that muxer reports as "non
/// monotonically increasing dts to muxer in stream 0: 2 >= 2", while no stage of the chain had
/// two frames closer than 33 ms; an FLV written by ffmpeg itself with its video 50 ms after its
/// audio gives the same message.
fn decode_check(path: &Path, what: &str) -> (u64, u64) {
    assert_decodes_without_errors(path);
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
        "{what}: {} decodes cleanly: {v} video frames, {a} audio packets",
        path.display()
    );
    (v, a)
}

/// An ffmpeg player's recording keeps the camera's frame times: each step between video frames
/// is one frame period and each step between audio frames one AAC frame, within 1 ms plus two
/// ticks of the track's RTP clock.
/// - 1 ms: the chain carries FLV (`river-rtsp-pull --format flv`), whose times are whole
///   milliseconds, each within 0.5 ms. Measured stage by stage: the camera's RTP steps 3000 and
///   1024 exactly; river-rtsp-pull's FLV 33/34 ms and 21/22 ms; the hub's RTP to the players
///   2970/3060 (90 kHz) and 1008/1056 (48 kHz).
/// - Two ticks: ffmpeg's RTSP demuxer maps RTP times through each sender report and rounds
///   (recorded video steps of 2969 and 3061 where the hub sent 2970 and 3060).
///
/// The first video step is not checked: ffmpeg 5.1's RTSP demuxer gives the first access unit no
/// PTS (ffprobe of the hub's RTSP: the keyframe's PTS `N/A`, the next frame's 2970, while the
/// keyframe's RTP timestamp is 2970 before the next one's), so `-c copy` stamps the keyframe with
/// the recording's start (the first audio packet's time when audio comes first), anywhere up to a
/// period from its true time.
fn assert_camera_frame_times(path: &Path, what: &str) {
    let packets = probe_packets(path);
    for (kind, period, tick, first) in [
        ("video", 1.0 / CAM_FPS as f64, 1.0 / 90_000.0, 1),
        ("audio", CAM_AAC_FRAME, 1.0 / 48_000.0, 0),
    ] {
        // ffprobe prints times to the microsecond: 1 µs more per step.
        let tol = 0.001 + 2.0 * tick + 1e-6;
        let t: Vec<f64> = packets
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.dts)
            .collect();
        assert!(t.len() > first + 1, "{what}: {} {kind} packets", t.len());
        for (i, w) in t.windows(2).enumerate().skip(first) {
            let step = w[1] - w[0];
            assert!(
                (step - period).abs() <= tol,
                "{what}: {kind} packet {} is {:.3} ms after the one before, not {:.3} ms (±{:.3}): {}",
                i + 1,
                step * 1e3,
                period * 1e3,
                tol * 1e3,
                path.display()
            );
        }
    }
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
    let gst_out = finish_gst(gst, "gst-launch-1.0 rtspsrc", &hub.log);
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
        assert_camera_frame_times(p, what);
    }
    // GStreamer: decoded frames to Y4M, samples to WAV; it played until the broadcast ended.
    for bad in ["ERROR", "WARNING"] {
        assert!(!gst_out.contains(bad), "gst-launch-1.0: {gst_out}");
    }
    let (gv, _) = decode_check(&y4m, "gst-launch-1.0 (Y4M, video only)");
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

/// x264 defaults: 3 B-frames (pyramid), a keyframe every 30 frames, AAC. 12 s: the players join
/// 1.5 s in and ffmpeg records 4 s from its first packet, so ffmpeg's own start may take up to
/// 6.5 s (on a loaded 2-core machine it took over 4.5 s: its DESCRIBE of a 6 s clip came after
/// the end, and other runs got 1 to 2 s).
const BFRAMES: Clip = Clip {
    width: 320,
    height: 240,
    fps: 30,
    bframes: 3,
    audio: true,
    gop_secs: 1,
    secs: 12,
};

/// Presentation timestamps of the decoded video frames of `path`, in output order.
fn frame_pts(path: &Path) -> Vec<f64> {
    let out = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "frame=pts_time",
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
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// Decoded frames come out in presentation order: from `settle` seconds after the first frame
/// on, PTS strictly increase by one frame period each. The source's timestamps and Matroska's
/// are whole milliseconds, so at 30 fps an interval is 33 or 34 ms: within 1 ms of the period.
/// Returns the frame count.
///
/// The players' own start-up is not checked: ffmpeg 5.1 gives the first access unit no PTS (see
/// [`ffmpeg_decodes`]); GStreamer's rtpbin sets the lip-sync offset of a track when the other
/// track's first packet arrives, and video frames its jitterbuffer pushed before that keep the
/// old offset (`GST_DEBUG=rtpbin:6`: "ts-offset 96009070, prev 0" after the first video
/// buffers; decoded PTS 0.000, 0.129, 0.129, 0.196 with a 96 ms offset). From then on the
/// offset holds: the hub's sender report for a joiner is at its first packets, which
/// rtpjitterbuffer accepts, and later reports are on the same mapping.
fn assert_presentation_order(path: &Path, fps: u32, settle: f64, what: &str) -> usize {
    assert_decodes_without_errors(path);
    let pts = frame_pts(path);
    let period = 1.0 / fps as f64;
    let start = pts.first().copied().unwrap_or(0.0);
    for (i, w) in pts.windows(2).enumerate() {
        if w[0] >= start + settle {
            assert!(
                (w[1] - w[0] - period).abs() <= 0.001,
                "{what}: frame {} PTS {} after {}: not one frame period later",
                i + 1,
                w[1],
                w[0]
            );
        }
    }
    let span = pts.last().unwrap_or(&0.0) - pts.first().unwrap_or(&0.0);
    eprintln!(
        "{what}: {} decodes cleanly: {} video frames over {span:.3} s, PTS increasing",
        path.display(),
        pts.len()
    );
    pts.len()
}

/// Plays `url` with ffmpeg for `secs`, decoding (raw video and PCM in Matroska), and checks the
/// decoded frames. ffmpeg 5.1's RTSP demuxer gives the first access unit no PTS, whoever the
/// server is (gst-rtsp-server too; apparently its parser finds no timestamp for a first packet
/// without a byte position), so `-c copy` of a B-frame stream fails in the muxer, and ffmpeg's guess for
/// that frame drops the B-frames shown before the next reference: frame periods are checked from
/// 0.3 s on (x264's longest B-frame run is 4 frames).
fn ffmpeg_decodes(url: &str, secs: u32, out: &Path) -> usize {
    let t = secs.to_string();
    let o = out.to_string_lossy().to_string();
    let c = spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-t",
            &t,
            "-map",
            "0",
            "-c:v",
            "rawvideo",
            "-c:a",
            "pcm_s16le",
            "-f",
            "matroska",
            &o,
        ],
    );
    let err = finish(c, "ffmpeg RTSP player");
    assert!(err.trim().is_empty(), "ffmpeg RTSP player: {err}");
    let n = assert_presentation_order(out, BFRAMES.fps, 0.3, "ffmpeg RTSP player");
    let want = (secs * BFRAMES.fps) as f64;
    assert!(
        n as f64 >= 0.7 * want && n as f64 <= want + 1.0,
        "ffmpeg RTSP player: {n} frames for {secs} s"
    );
    n
}

/// GStreamer ([`gst_launch`]) decoding video into Matroska with `buffer-mode=none` (timestamps
/// from RTP, not retimed by arrival: the GOP cache arrives as a burst, which the default mode
/// squeezes).
fn gst_decodes(url: &str, out: &Path) -> std::process::Child {
    let pipeline = format!(
        "rtspsrc location={url} protocols=tcp buffer-mode=none name=src \
         src. ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! matroskamux ! filesink location={} \
         src. ! rtpmp4gdepay ! aacparse ! avdec_aac ! fakesink",
        out.display()
    );
    gst_launch(&pipeline)
}

/// Video packets as ffmpeg's RTSP demuxer reads them for `secs` (decode order): their PTS, which
/// come from the RTP timestamps (`None`: no PTS).
fn rtsp_video_pts(url: &str, secs: u32) -> Vec<Option<f64>> {
    let interval = format!("%+{secs}");
    let out = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-read_intervals",
            &interval,
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            url,
        ],
        b"",
    );
    assert!(out.status.success(), "ffprobe {url}: {}", out.stderr);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().ok())
        .collect()
}

/// The RTP timestamps are the source's PTS, packets in decode order: the player starts at a
/// keyframe of the source, and from the second packet on (ffmpeg 5.1 gives the first no PTS) each
/// packet's PTS relative to the second one's equals the source's over that GOP, within 2 ms.
/// (x264 places B-frames adaptively, so the GOP is found among the source's keyframes.)
fn assert_rtp_times_are_pts(got: &[Option<f64>], src: &Path) {
    let want: Vec<(f64, bool)> = probe_packets(src)
        .into_iter()
        .filter(|p| p.kind == "video")
        .map(|p| (p.pts, p.key))
        .collect();
    let gop = (BFRAMES.fps * BFRAMES.gop_secs) as usize;
    assert!(got.len() > gop, "{} video packets over RTSP", got.len());
    let got: Vec<f64> = got[1..gop]
        .iter()
        .enumerate()
        .map(|(i, p)| p.unwrap_or_else(|| panic!("RTSP video packet {} has no PTS", i + 1)))
        .collect();
    assert!(
        got.windows(2).any(|w| w[1] < w[0]),
        "no B-frame reordering seen: {got:?}"
    );
    let matches = |k: usize| {
        k + gop <= want.len()
            && (1..gop)
                .all(|i| ((got[i - 1] - got[0]) - (want[k + i].0 - want[k + 1].0)).abs() <= 0.002)
    };
    let key = (0..want.len()).find(|&k| want[k].1 && matches(k));
    assert!(
        key.is_some(),
        "the RTSP video PTS {got:?} match no GOP of the source"
    );
}

fn bframes_play_over_rtsp(rtsp_push: bool) {
    require("ffmpeg");
    require_gst();
    let hub = Hub::start(&[("live", "pushpw")]);
    let src = BFRAMES.flv();
    let s = src.to_string_lossy().to_string();
    let push_url = if rtsp_push {
        format!("rtsp://live:pushpw@{}/live/cam", hub.rtsp)
    } else {
        format!("http://{}/live/cam?user-password=pushpw", hub.http)
    };
    let mut args = vec!["-nostdin", "-v", "error", "-re", "-i", &s, "-c", "copy"];
    if rtsp_push {
        args.extend_from_slice(&["-f", "rtsp", "-rtsp_transport", "tcp"]);
    } else {
        args.extend_from_slice(&["-f", "flv"]);
    }
    args.push(&push_url);
    let publisher = spawn_quiet("ffmpeg", &args);
    hub.log.wait_for("channel live/cam: FLV content", "the hub");
    // Players join mid-stream, at the cached keyframe (whose PTS is ahead of its DTS).
    std::thread::sleep(Duration::from_millis(1500));
    let url = format!("rtsp://{}/live/cam", hub.rtsp);
    let dir = scratch("rtsp-bframes");
    let gst_out = dir.join("gst.mkv");
    let gst = gst_decodes(&url, &gst_out);
    let u = url.clone();
    let probe = std::thread::spawn(move || rtsp_video_pts(&u, 2));
    ffmpeg_decodes(&url, 4, &dir.join("ffmpeg.mkv"));
    assert_rtp_times_are_pts(&probe.join().unwrap(), &src);
    finish(publisher, "ffmpeg publisher");
    let log = finish_gst(gst, "GStreamer rtspsrc", &hub.log);
    for bad in ["ERROR", "WARNING"] {
        assert!(!log.contains(bad), "GStreamer: {log}");
    }
    let n = assert_presentation_order(&gst_out, BFRAMES.fps, 0.3, "GStreamer");
    // It joined within the first seconds and played to the end.
    assert!(n >= 90, "GStreamer: {n} frames");
}

#[test]
fn bframes_pushed_over_http_flv_play_over_rtsp_in_presentation_order() {
    bframes_play_over_rtsp(false);
}

#[test]
fn bframes_pushed_over_rtsp_play_over_rtsp_in_presentation_order() {
    bframes_play_over_rtsp(true);
}

/// (codec type, PTS, size) of every packet ffprobe reads from `target` (`args` before it).
fn sized_packets(target: &str, args: &[&str]) -> Vec<(String, Option<f64>, u64)> {
    let mut full = vec!["-v", "error", "-of", "json"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-show_entries", "packet=codec_type,pts_time,size", target]);
    let out = run(Path::new("ffprobe"), &full, b"");
    assert!(out.status.success(), "ffprobe {target}: {}", out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["codec_type"].as_str().unwrap_or("").to_string(),
                p["pts_time"].as_str().and_then(|s| s.parse().ok()),
                p["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
            )
        })
        .collect()
}

/// Where `got`'s packets of `kind` (from the `skip`th on, 20 of them: keyframes over RTSP carry
/// the parameter sets in front, so the next one must not be among them) are in `src`, found by
/// their sizes: the offset of their PTS from the source's.
fn offset_in_source(
    got: &[(String, Option<f64>, u64)],
    src: &[(String, Option<f64>, u64)],
    kind: &str,
    skip: usize,
) -> f64 {
    const N: usize = 20;
    let g: Vec<_> = got
        .iter()
        .filter(|p| p.0 == kind)
        .skip(skip)
        .take(N)
        .collect();
    let s: Vec<_> = src.iter().filter(|p| p.0 == kind).collect();
    assert_eq!(g.len(), N, "{kind}: too few packets over RTSP");
    let hits: Vec<usize> = (0..s.len().saturating_sub(N))
        .filter(|&j| (0..N).all(|i| s[j + i].2 == g[i].2))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{kind}: the RTSP packets' sizes match the source at {hits:?}"
    );
    g[0].1.expect("PTS") - s[hits[0]].1.expect("source PTS")
}

/// RTP-Info's rtptime maps the first packet a player gets (the cached keyframe) to npt 0: a late
/// ffmpeg player's timestamps start at 0, not below, with audio and video as in the source.
#[test]
fn a_late_rtsp_player_starts_at_zero_with_audio_and_video_in_sync() {
    require("ffmpeg");
    let hub = Hub::start(&[("live", "pushpw")]);
    let clip = Clip {
        bframes: 0,
        secs: 8,
        ..BFRAMES
    };
    let src = clip.flv();
    let s = src.to_string_lossy().to_string();
    let push_url = format!("http://{}/live/cam?user-password=pushpw", hub.http);
    let publisher = spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin", "-v", "error", "-re", "-i", &s, "-c", "copy", "-f", "flv", &push_url,
        ],
    );
    hub.log.wait_for("channel live/cam: FLV content", "the hub");
    std::thread::sleep(Duration::from_millis(2200));
    let url = format!("rtsp://{}/live/cam", hub.rtsp);
    let got = sized_packets(&url, &["-rtsp_transport", "tcp", "-read_intervals", "%+2"]);
    finish(publisher, "ffmpeg publisher");
    let pts: Vec<f64> = got.iter().filter_map(|p| p.1).collect();
    let first = pts.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        (-0.001..0.1).contains(&first),
        "the player's first PTS is {first}, want 0 (rtptime at the cached keyframe): {got:?}"
    );
    let src_packets = sized_packets(&s, &[]);
    // The first video packet carries the parameter sets in front: it is skipped.
    let v = offset_in_source(&got, &src_packets, "video", 1);
    let a = offset_in_source(&got, &src_packets, "audio", 0);
    eprintln!("late RTSP player: first PTS {first:.3}; offset from the source: video {v:.3}, audio {a:.3}");
    assert!(
        (v - a).abs() <= 0.002,
        "A/V out of sync: video {v:.3}, audio {a:.3}"
    );
}
