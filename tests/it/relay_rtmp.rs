//! river-relay serve --rtmp against real ffmpeg on 127.0.0.1: RTMP publish played over RTMP,
//! http-flv and fstream; an fstream TS broadcast played over RTMP; late joiners; refusals.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::hub::*;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

fn stderr_of(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

fn ffmpeg_bg(args: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg")
}

fn clip4s() -> Clip {
    Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 0,
        audio: true,
        gop_secs: 4,
        secs: 10,
    }
}

/// A played file: h264 320x240 + aac, first video packet a keyframe, decodes cleanly.
fn check_played(out: &Path, min_video: u64) {
    let streams = probe_streams(out);
    assert_eq!(streams.len(), 2, "{}: {streams:?}", out.display());
    let v = streams.iter().find(|s| s.codec == "h264").expect("h264");
    assert_eq!(
        (v.width, v.height),
        (Some(320), Some(240)),
        "{}",
        out.display()
    );
    assert!(streams.iter().any(|s| s.codec == "aac"), "{streams:?}");
    assert!(v.packets >= min_video, "{}: {streams:?}", out.display());
    let pk = probe_packets(out);
    assert!(
        pk.iter().find(|p| p.kind == "video").unwrap().key,
        "{}: starts on a keyframe",
        out.display()
    );
    assert_decodes_cleanly(out);
}

#[test]
fn rtmp_publish_played_over_rtmp_http_flv_and_fstream_with_a_late_joiner() {
    let hub = {
        require("ffmpeg");
        Hub::start(USERS)
    };
    let src = clip4s().flv();
    let dir = tmpdir();
    let s = src.to_string_lossy().to_string();
    let publish = format!("rtmp://{}/fier/cam?user-password=123", hub.rtmp);
    let mut p = ffmpeg_bg(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &publish]);
    hub.log.wait_for("broadcasting fier/cam", "the hub");
    hub.log.wait_for("channel fier/cam: FLV content", "the hub");
    let play = format!("rtmp://{}/fier/cam", hub.rtmp);
    let o_rtmp = dir.join("relay-rtmp-play.flv");
    let o_http = dir.join("relay-rtmp-http.flv");
    let o_fs = dir.join("relay-rtmp-fstream.flv");
    let o = o_rtmp.to_string_lossy().to_string();
    let mut r1 = ffmpeg_bg(&["-i", &play, "-c", "copy", "-t", "3", &o]);
    let url = format!("http://{}/fier/cam.flv", hub.http);
    let oh = o_http.to_string_lossy().to_string();
    let mut h = ffmpeg_bg(&["-i", &url, "-c", "copy", "-t", "3", &oh]);
    let o_ts = dir.join("relay-rtmp-http.ts");
    let ots = o_ts.to_string_lossy().to_string();
    let url_ts = format!("http://{}/fier/cam.ts", hub.http);
    let mut hts = ffmpeg_bg(&["-i", &url_ts, "-c", "copy", "-t", "3", "-f", "mpegts", &ots]);
    let mut fs = Command::new(river("river-relay"))
        .args(["watch", &hub.fstream, "--user", "fier", "--channel", "cam"])
        .stdout(Stdio::from(std::fs::File::create(&o_fs).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A late joiner, past the second keyframe (4 s GOP): starts on the cached keyframe.
    std::thread::sleep(Duration::from_secs(5));
    let o_late = dir.join("relay-rtmp-late.flv");
    let ol = o_late.to_string_lossy().to_string();
    let mut late = ffmpeg_bg(&["-i", &play, "-c", "copy", "-t", "2", &ol]);
    for (c, what) in [
        (&mut r1, "rtmp player"),
        (&mut h, "http-flv player"),
        (&mut hts, "http-ts player"),
        (&mut late, "late rtmp player"),
    ] {
        let st = wait_deadline(c, WAIT, what);
        assert!(st.success(), "{what}: {}", stderr_of(c));
    }
    let st = wait_deadline(&mut p, WAIT, "ffmpeg publish");
    assert!(st.success(), "publish: {}", stderr_of(&mut p));
    // End of publish = end of broadcast: the fstream watcher gets EOF.
    let st = wait_deadline(&mut fs, WAIT, "fstream watcher");
    assert!(st.success(), "fstream watcher: {}", stderr_of(&mut fs));
    check_played(&o_rtmp, 50);
    check_played(&o_http, 50);
    check_played(&o_late, 25);
    check_played(&o_ts, 50);
    check_played(&o_fs, 200);
    let log = hub.log.text();
    assert!(log.contains("channel fier/cam: end of broadcast"), "{log}");
}

/// `got`'s packets of `kind` are a run of `src`'s, payloads byte for byte, with the same dts
/// steps (the player's clock starts elsewhere, its steps are the source's). Returns where the run
/// starts in `src`.
fn assert_run_of_source(
    got: &[(String, i64, String)],
    src: &[(String, i64, String)],
    kind: &str,
    what: &str,
) -> usize {
    let g: Vec<&(String, i64, String)> = got.iter().filter(|p| p.0 == kind).collect();
    let s: Vec<&(String, i64, String)> = src.iter().filter(|p| p.0 == kind).collect();
    assert!(g.len() > 10, "{what}: {} {kind} packets", g.len());
    let start = s
        .iter()
        .position(|p| p.2 == g[0].2)
        .unwrap_or_else(|| panic!("{what}: its first {kind} packet is not in the source"));
    for (i, p) in g.iter().enumerate() {
        let q = s
            .get(start + i)
            .unwrap_or_else(|| panic!("{what}: more {kind} packets than the source"));
        assert_eq!(
            p.2, q.2,
            "{what}: {kind} packet {i} differs from the source's"
        );
        if i > 0 {
            assert_eq!(
                p.1 - g[i - 1].1,
                q.1 - s[start + i - 1].1,
                "{what}: {kind} packet {i}: dts step differs from the source's"
            );
        }
    }
    start
}

/// Players of one channel share its RTMP messages, chunked once, each with its own first
/// header per chunk stream (its own timestamps from 0): ffmpeg players joined at different times
/// (the later ones start from the GOP cache) each get a run of the published packets byte for
/// byte, starting on a keyframe, with the source's timing.
#[test]
fn overlapping_rtmp_players_get_the_source_packets() {
    let hub = {
        require("ffmpeg");
        Hub::start(USERS)
    };
    let clip = Clip {
        gop_secs: 1,
        // The last player ends at about 8.3 s: room for a slow start.
        secs: 11,
        ..clip4s()
    };
    let src = clip.flv();
    let s = src.to_string_lossy().to_string();
    let publish = format!("rtmp://{}/fier/cam?user-password=123", hub.rtmp);
    let mut p = ffmpeg_bg(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &publish]);
    hub.log.wait_for("channel fier/cam: FLV content", "the hub");
    let play = format!("rtmp://{}/fier/cam", hub.rtmp);
    let dir = tmpdir();
    // Two overlapping players, then none for a while (the channel chunks nothing meanwhile, so
    // the third starts on cached tags no player was sent: chunked for it alone, then shared).
    let mut players = Vec::new();
    for (i, (at_ms, secs)) in [(0, "3"), (1300, "3"), (5800, "2.5")]
        .into_iter()
        .enumerate()
    {
        std::thread::sleep(Duration::from_millis(at_ms - [0, 0, 1300][i]));
        let out = dir.join(format!("relay-rtmp-overlap-{i}.flv"));
        let o = out.to_string_lossy().to_string();
        players.push((ffmpeg_bg(&["-i", &play, "-c", "copy", "-t", secs, &o]), out));
    }
    let src_packets = probe_packet_hashes(&src);
    let mut starts = Vec::new();
    for (i, (c, out)) in players.iter_mut().enumerate() {
        let what = format!("rtmp player {i}");
        let st = wait_deadline(c, WAIT, &what);
        assert!(st.success(), "{what}: {}", stderr_of(c));
        check_played(out, 50);
        let got = probe_packet_hashes(out);
        let v = assert_run_of_source(&got, &src_packets, "video", &what);
        assert_run_of_source(&got, &src_packets, "audio", &what);
        // Its clock starts at its first frame.
        let first = got.iter().map(|p| p.1).min().unwrap();
        assert!(first.abs() <= 100, "{what}: first dts {first}");
        starts.push(v);
    }
    // The later players joined later in the broadcast.
    assert!(starts[0] < starts[2], "{starts:?}");
    let st = wait_deadline(&mut p, WAIT, "ffmpeg publish");
    assert!(st.success(), "publish: {}", stderr_of(&mut p));
}

#[test]
fn fstream_ts_broadcast_played_over_rtmp() {
    let hub = {
        require("ffmpeg");
        Hub::start(USERS)
    };
    let clip = Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 2,
        audio: true,
        gop_secs: 1,
        secs: 3,
    };
    let src = clip.remux("mpegts");
    let dir = tmpdir();
    let play = format!("rtmp://{}/fier/ts", hub.rtmp);
    let out = dir.join("relay-rtmp-from-ts.flv");
    let o = out.to_string_lossy().to_string();
    // The player comes first and waits for the channel.
    let mut r = ffmpeg_bg(&["-i", &play, "-c", "copy", "-f", "flv", &o]);
    hub.log
        .wait_for("watching fier/ts (waiting for it to go live)", "the hub");
    let s = src.to_string_lossy().to_string();
    let cmd = format!(
        "ffmpeg -nostdin -v error -re -i '{s}' -c copy -f mpegts - | '{}' broadcast {} --user fier --password 123 --channel ts",
        river("river-relay").display(),
        hub.fstream
    );
    let mut b = Command::new("sh")
        .args(["-c", &cmd])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_deadline(&mut b, WAIT, "ffmpeg | broadcast");
    assert!(st.success(), "{}", stderr_of(&mut b));
    let st = wait_deadline(&mut r, WAIT, "rtmp player");
    assert!(st.success(), "rtmp player: {}", stderr_of(&mut r));
    check_played(&out, 50);
}

fn refused(args: &[&str]) -> String {
    let mut c = ffmpeg_bg(args);
    let st = wait_deadline(&mut c, WAIT, "refused ffmpeg");
    let err = stderr_of(&mut c);
    assert!(!st.success(), "ffmpeg should fail: {err}");
    err
}

#[test]
fn wrong_user_and_channel_passwords_are_refused_with_a_clear_error() {
    let hub = {
        require("ffmpeg");
        Hub::start(USERS)
    };
    let src: PathBuf = Clip {
        width: 160,
        height: 120,
        fps: 25,
        bframes: 0,
        audio: false,
        gop_secs: 1,
        secs: 8,
    }
    .flv();
    let s = src.to_string_lossy().to_string();
    let bad = format!("rtmp://{}/fier/cam?user-password=nope", hub.rtmp);
    let err = refused(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &bad]);
    assert!(err.contains("wrong user password"), "{err}");
    hub.log.wait_for(
        "refused: RTMP broadcaster for fier/cam: wrong user password",
        "the hub",
    );
    // Password on the connect URL (app query), channel password set by the publisher.
    let good = format!(
        "rtmp://{}/fier?user-password=123/cam?password=chpw",
        hub.rtmp
    );
    let mut p = ffmpeg_bg(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &good]);
    hub.log
        .wait_for("broadcasting fier/cam (channel password set)", "the hub");
    let play_bad = format!("rtmp://{}/fier/cam?password=wrong", hub.rtmp);
    let err = refused(&["-i", &play_bad, "-c", "copy", "-t", "1", "-f", "null", "-"]);
    assert!(err.contains("wrong channel password"), "{err}");
    let play_ok = format!("rtmp://{}/fier/cam?password=chpw", hub.rtmp);
    let mut ok = ffmpeg_bg(&["-i", &play_ok, "-c", "copy", "-t", "1", "-f", "null", "-"]);
    let st = wait_deadline(&mut ok, WAIT, "player with the channel password");
    assert!(st.success(), "{}", stderr_of(&mut ok));
    p.kill().ok();
    p.wait().ok();
    let log = hub.log.text();
    assert!(
        log.contains("127.0.0.1:")
            && log.contains("refused: watcher of fier/cam: wrong channel password"),
        "{log}"
    );
}
