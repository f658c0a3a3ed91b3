//! Cascading hubs (`serve --origin`, `--push-to`) on 127.0.0.1 with real players: one origin and
//! two edges with watchers on every front (fstream, http-flv, RTMP and RTSP through ffmpeg), the
//! origin killed and restarted under the edges' watchers, and a push to a second hub.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::hub::*;
use crate::common::rtsp::spawn_quiet;
use crate::common::*;

const CPW: &str = "cpw";

/// `river-testsrc --realtime` (FLV, a keyframe a second) for `secs` into `river-relay broadcast`
/// as fier/cam with channel password [`CPW`]; `retry` reconnects after a hub restart.
fn broadcast(addr: &str, secs: u32, retry: bool) -> (Child, Child) {
    let mut src = Command::new(river("river-testsrc"))
        .args(["--format", "flv", "--realtime", "--duration"])
        .arg(format!("{secs}s"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut b = Command::new(river("river-relay"));
    b.args(["broadcast", addr, "--user", "fier", "--password", "123"])
        .args(["--channel", "cam", "--channel-password", CPW]);
    if retry {
        b.args(["--retry", "--retry-max-delay", "500ms"]);
    }
    let b = b
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (src, b)
}

/// `river-relay watch` of fier/cam into `out`.
fn fstream_watch(addr: &str, out: &Path) -> Child {
    Command::new(river("river-relay"))
        .args(["watch", addr, "--user", "fier", "--channel", "cam"])
        .args(["--channel-password", CPW])
        .stdout(Stdio::from(std::fs::File::create(out).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `river-relay watch` of fier/cam through `ffmpeg -c copy -t secs` into `out` (FLV): ffmpeg ends
/// the recording on a whole tag and the watch client exits on the closed pipe.
fn fstream_watch_for(addr: &str, secs: u32, out: &Path) -> Child {
    let cmd = format!(
        "{} watch {addr} --user fier --channel cam --channel-password {CPW} | \
         ffmpeg -nostdin -v error -y -f flv -i - -c copy -t {secs} -f flv {}",
        river("river-relay").display(),
        out.display()
    );
    spawn_quiet("sh", &["-c", &cmd])
}

/// The four players of one edge, recording `secs` each: (what, child, output).
fn players(edge: &Hub, tag: &str, secs: u32, rtsp_first: bool) -> Vec<(String, Child, PathBuf)> {
    let dir = scratch(tag);
    let t = secs.to_string();
    let rec = |input: &[&str], file: &str| {
        let out = dir.join(file);
        let mut args: Vec<&str> = input.to_vec();
        let o = out.to_string_lossy().to_string();
        args.extend_from_slice(&["-c", "copy", "-t", &t, "-y", &o]);
        let mut full = vec!["-nostdin", "-v", "error"];
        full.extend_from_slice(&args);
        (spawn_quiet("ffmpeg", &full), out)
    };
    let rtsp = format!("rtsp://any:{CPW}@{}/fier/cam", edge.rtsp);
    let mut v = Vec::new();
    let play_rtsp = |v: &mut Vec<(String, Child, PathBuf)>| {
        let (c, o) = rec(&["-rtsp_transport", "tcp", "-i", &rtsp], "rtsp.mkv");
        v.push((format!("{tag} rtsp"), c, o));
    };
    if rtsp_first {
        play_rtsp(&mut v);
        edge.log.wait_for("playing fier/cam over RTSP", tag);
    }
    let http = format!("http://{}/fier/cam.flv?password={CPW}", edge.http);
    let (c, o) = rec(&["-i", &http], "http.flv");
    v.push((format!("{tag} http-flv"), c, o));
    let rtmp = format!("rtmp://{}/fier/cam?password={CPW}", edge.rtmp);
    let (c, o) = rec(&["-i", &rtmp], "rtmp.flv");
    v.push((format!("{tag} rtmp"), c, o));
    let o = dir.join("fstream.flv");
    v.push((
        format!("{tag} fstream"),
        fstream_watch_for(&edge.fstream, secs, &o),
        o,
    ));
    if !rtsp_first {
        edge.wait_watchers("fier", "cam", 3);
        play_rtsp(&mut v);
    }
    v
}

/// A video packet: pts (s), dts (s), size, keyframe.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    pts: f64,
    dts: f64,
    size: u64,
    key: bool,
}

fn video(path: &Path) -> Vec<Pkt> {
    let p = path.to_string_lossy().to_string();
    let out = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts_time,dts_time,size,flags",
            "-of",
            "csv=p=0",
            &p,
        ],
        b"",
    );
    assert!(out.status.success(), "ffprobe {p}: {}", out.stderr);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Pkt {
                pts: f[0].parse().unwrap(),
                dts: f[1].parse().unwrap(),
                size: f[2].parse().unwrap(),
                key: f[3].starts_with('K'),
            }
        })
        .collect()
}

/// `got` (a player's recording) is a run of `want` (the origin's watcher's) from one of its
/// keyframes: the same frame sizes, and the same distances between timestamps (FLV's milliseconds
/// and RTP's 90 kHz both round: 1.5 ms). From the second frame on for RTSP: ffmpeg 5.1 places a
/// late RTSP player's first frame 9 to 33 ms off the next ones on any river hub, an edge or not
/// (three late joiners of a plain hub: 0, 9, 43 ms; 0, 33, 67; 0, 25, 59), and the rest 33 ms
/// apart as sent.
fn assert_window(got: &[Pkt], want: &[Pkt], ctx: &str) {
    assert!(got.len() >= 30, "{ctx}: only {} video packets", got.len());
    assert!(got[0].key, "{ctx}: starts on a keyframe");
    let start = want
        .iter()
        .enumerate()
        .position(|(i, w)| {
            w.key
                && want.len() - i >= got.len()
                && got.iter().zip(&want[i..]).all(|(g, w)| g.size == w.size)
        })
        .unwrap_or_else(|| panic!("{ctx}: its {} frames are no run of the origin's", got.len()));
    let from = usize::from(ctx.ends_with("rtsp"));
    let (g0, w0) = (got[from].pts, want[start + from].pts);
    for (i, (g, w)) in got.iter().zip(&want[start..]).enumerate().skip(from) {
        let d = ((g.pts - g0) - (w.pts - w0)).abs();
        assert!(
            d <= 0.0015,
            "{ctx}: frame {i} at {:.3}, the origin's at {:.3}",
            g.pts - g0,
            w.pts - w0
        );
    }
}

/// Decodes without a message, H.264 and AAC, video timestamps increasing, at least `secs` of
/// video: (its video packets).
fn check(path: &Path, secs: f64, ctx: &str) -> Vec<Pkt> {
    assert_decodes_cleanly(path);
    let streams = probe_streams(path);
    let codecs: Vec<&str> = streams.iter().map(|s| s.codec.as_str()).collect();
    assert_eq!(codecs, ["h264", "aac"], "{ctx}: {}", path.display());
    let v = video(path);
    for w in v.windows(2) {
        assert!(
            w[1].dts > w[0].dts,
            "{ctx}: dts {} then {}",
            w[0].dts,
            w[1].dts
        );
    }
    let span = v.last().map_or(0.0, |l| l.pts) - v.first().map_or(0.0, |f| f.pts);
    assert!(span >= secs, "{ctx}: {span:.2} s of video");
    v
}

fn finish_all(players: Vec<(String, Child, PathBuf)>, log: &Log) -> Vec<(String, PathBuf)> {
    players
        .into_iter()
        .map(|(what, c, out)| {
            finish_or_show(c, &what, log);
            (what, out)
        })
        .collect()
}

/// The origin's /stats: the peers watching fier/cam.
fn origin_watchers(origin: &Hub) -> Vec<String> {
    let s = origin.stats();
    s["channels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["user"] == "fier" && c["channel"] == "cam")
        .flat_map(|c| c["watchers"].as_array().unwrap().clone())
        .map(|w| w["peer"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_edges_serve_every_front_from_one_pull_each() {
    require("ffmpeg");
    let origin = Hub::start(USERS);
    let edge_opts = ["--origin", &origin.fstream, "--wait-timeout", "3s"];
    let (e1, e2) = (
        Hub::start_with(USERS, &edge_opts),
        Hub::start_with(USERS, &edge_opts),
    );
    let o_out = scratch("cascade-origin").join("origin.flv");
    let mut o_watch = fstream_watch(&origin.fstream, &o_out);
    origin.wait_watchers("fier", "cam", 1);
    let (mut src, mut b) = broadcast(&origin.fstream, 6, false);
    origin
        .log
        .wait_for("channel fier/cam: FLV content", "the origin");

    // A wrong channel password on an edge that does not have the channel: refused as the origin
    // refuses it.
    let (head, _) = e2.get("/fier/cam.flv?password=bad");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    e2.log
        .wait_for("the origin refused the pull of fier/cam", "edge 2");

    // Edge 1: the RTSP player first (Digest cannot carry the password to the origin: the edge
    // asks for Basic), edge 2: last (the channel and its password are known by then).
    let mut all = players(&e1, "edge1", 2, true);
    all.extend(players(&e2, "edge2", 2, false));
    e1.wait_watchers("fier", "cam", 4);
    e2.wait_watchers("fier", "cam", 4);
    let peers = origin_watchers(&origin);
    assert_eq!(
        peers.len(),
        3,
        "the origin's watcher and one pull per edge: {peers:?}"
    );
    let (head, _) = e1.get("/fier/cam.flv?password=bad");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");

    let mut outs = finish_all(all, &e1.log);
    // Late joiners whose output ends with the broadcast, after the edge's --wait-timeout.
    let mut late = Vec::new();
    for (i, e) in [&e1, &e2].iter().enumerate() {
        let o = scratch("cascade-edge").join("fstream-eof.flv");
        late.push(fstream_watch(&e.fstream, &o));
        e.wait_watchers("fier", "cam", 1);
        outs.push((format!("edge{} fstream to the end", i + 1), o));
    }
    for (mut w, e) in late.into_iter().zip([&e1, &e2]) {
        let st = wait_deadline(&mut w, WAIT, "edge fstream watcher");
        assert!(st.success(), "edge fstream watcher:\n{}", e.log.text());
        e.log.wait_for("the origin has been gone for", "an edge");
    }
    for (c, what) in [
        (&mut src, "testsrc"),
        (&mut b, "broadcast"),
        (&mut o_watch, "origin watcher"),
    ] {
        let st = wait_deadline(c, WAIT, what);
        assert!(st.success(), "{what}");
    }
    let want = check(&o_out, 5.0, "origin watcher");
    for (what, out) in &outs {
        let got = check(out, 1.5, what);
        assert_window(&got, &want, what);
    }
    assert!(
        e1.log.contains("401, Basic credentials for the origin"),
        "{}",
        e1.log.text()
    );
}

#[test]
fn edge_watchers_survive_an_origin_restart() {
    require("ffmpeg");
    let mut origin = Hub::start(USERS);
    let edge = Hub::start_with(USERS, &["--origin", &origin.fstream]);
    let (mut src, mut b) = broadcast(&origin.fstream, 14, true);
    origin
        .log
        .wait_for("channel fier/cam: FLV content", "the origin");
    let all = players(&edge, "restart", 8, false);
    edge.wait_watchers("fier", "cam", 4);
    std::thread::sleep(Duration::from_secs(2));
    let killed = Instant::now();
    let _old = origin.restart();
    origin
        .log
        .wait_for("channel fier/cam: FLV content", "the restarted origin");
    edge.log.wait_for("channel fier/cam resumes", "the edge");
    let back = killed.elapsed();
    assert_eq!(edge.watchers("fier", "cam"), 4, "every watcher stayed");
    for (what, out) in finish_all(all, &edge.log) {
        // Every recording spans the break.
        check(&out, 7.0, &what);
    }
    assert!(back < Duration::from_secs(10), "resumed after {back:?}");
    let _ = src.kill();
    let _ = b.kill();
    let _ = src.wait();
    let _ = b.wait();
}

#[test]
fn push_to_delivers_a_local_broadcast_and_redials() {
    require("ffmpeg");
    let mut target = Hub::start(USERS);
    let hub = Hub::start_with(USERS, &["--push-to", &target.fstream]);
    let (mut src, mut b) = broadcast(&hub.fstream, 12, false);
    hub.log.wait_for("pushing fier/cam", "the hub");
    let dir = scratch("cascade-push");
    let url = format!("http://{}/fier/cam.flv?password={CPW}", target.http);
    let rec = |name: &str| {
        let o = dir.join(name);
        let os = o.to_string_lossy().to_string();
        let c = spawn_quiet(
            "ffmpeg",
            &[
                "-nostdin", "-v", "error", "-i", &url, "-c", "copy", "-t", "2", "-y", &os,
            ],
        );
        (c, o)
    };
    let (c, first) = rec("first.flv");
    finish_or_show(c, "the target's first watcher", &target.log);
    check(&first, 1.5, "pushed");
    // The target goes away and comes back: the push is dialled again.
    let _old = target.restart();
    hub.log.wait_for("push of fier/cam lost", "the hub");
    target
        .log
        .wait_for("broadcasting fier/cam", "the restarted target");
    let (c, second) = rec("second.flv");
    finish_or_show(c, "the target's second watcher", &target.log);
    check(&second, 1.5, "pushed again");
    for (c, what) in [(&mut src, "testsrc"), (&mut b, "broadcast")] {
        let st = wait_deadline(c, WAIT, what);
        assert!(st.success(), "{what}");
    }
}
