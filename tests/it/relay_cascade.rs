//! Cascading hubs (`serve --origin`, `--push-to`) on 127.0.0.1 with real players: one origin and
//! two edges with watchers on every front (fstream, http-flv, RTMP and RTSP through ffmpeg), the
//! origin killed and restarted under the edges' watchers, a push to a second hub, and publish and
//! play hooks on each of them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::hooks::HookServer;
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
    // The target's publish hook is asked about the push, an fstream broadcaster with the
    // broadcast's user and passwords.
    let th = HookServer::start();
    let t_args = hooked(&th, &[]);
    let mut target = Hub::start_with(USERS, &strs(&t_args));
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
    let push = th.call("publish", "cam");
    assert_eq!(push["protocol"], "fstream", "{push}");
    assert_eq!(push["user_password"], "123", "{push}");
    assert_eq!(push["channel_password"], CPW, "{push}");
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

/// Sends `req` to the RTSP server at `addr`: the head of its answer (deadline [`WAIT`]).
fn rtsp_head(addr: &str, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `serve` options for `h`'s hooks, with `more`.
fn hooked(h: &HookServer, more: &[&str]) -> Vec<String> {
    let mut v = h.args("3s");
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn hooks_ask_about_every_edge_watcher_and_the_origin_about_each_pull() {
    require("ffmpeg");
    let (oh, eh) = (HookServer::start(), HookServer::start());
    let o_args = hooked(&oh, &[]);
    let origin = Hub::start_with(USERS, &strs(&o_args));
    let e_args = hooked(&eh, &["--origin", &origin.fstream, "--origin-idle", "1s"]);
    let edge = Hub::start_with(USERS, &strs(&e_args));
    // An edge without hooks: the origin's hooks decide alone.
    let plain = Hub::start_with(USERS, &["--origin", &origin.fstream]);
    let (mut src, mut b) = broadcast(&origin.fstream, 12, false);
    origin
        .log
        .wait_for("channel fier/cam: FLV content", "the origin");

    // The edge's hook refuses a watcher before it waits: no pull starts for it.
    let (head, _) = edge.get(&format!("/fier/cam.flv?password={CPW}&token=bad"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    eh.wait_call("play", |v| {
        v["query"] == format!("password={CPW}&token=bad")
    });
    // So does it an RTSP player (with Basic credentials: the password the pull would carry).
    let describe = format!(
        "DESCRIBE rtsp://{}/fier/cam?token=bad RTSP/1.0\r\nCSeq: 1\r\n\
         Authorization: Basic YW55OmNwdw==\r\n\r\n",
        edge.rtsp
    );
    let head = rtsp_head(&edge.rtsp, &describe);
    assert!(head.starts_with("RTSP/1.0 403"), "{head}");
    let asked = eh.wait_call("play", |v| v["protocol"] == "rtsp");
    assert_eq!(asked["query"], "token=bad", "{asked}");
    assert_eq!(asked["channel_password"], CPW, "{asked}");
    assert!(
        !edge.log.contains("pulling fier/cam"),
        "{}",
        edge.log.text()
    );
    assert!(oh.calls("play").is_empty(), "{}", oh.log.text());

    // The origin's hook refuses the pull: the edge's watcher is refused as the origin refused it.
    let (head, _) = plain.get("/fier/denycam.flv");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let pull = oh.call("play", "denycam");
    assert_eq!(pull["protocol"], "fstream", "{pull}");
    plain.log.wait_for(
        "the origin refused the pull of fier/denycam",
        "the plain edge",
    );

    // Every front of the hooked edge: each watcher asked about, one pull.
    let all = players(&edge, "hooks", 2, true);
    edge.wait_watchers("fier", "cam", 4);
    for proto in ["fstream", "http", "rtmp", "rtsp"] {
        let asked: Vec<_> = eh
            .calls("play")
            .into_iter()
            .filter(|v| v["protocol"] == proto && v["channel"] == "cam")
            .collect();
        // The RTSP player asks first without credentials (the hook is told none), then with
        // Basic after the origin refused a pull without the password.
        let last = asked.last().unwrap_or_else(|| panic!("{proto}: not asked"));
        assert_eq!(last["channel_password"], CPW, "{proto}: {last}");
        assert_eq!(last["user"], "fier", "{proto}: {last}");
    }
    // The origin is asked about each pull from the edge, an fstream watcher with the password
    // of the watcher that started it; one of them watches.
    let pulls: Vec<_> = oh
        .calls("play")
        .into_iter()
        .filter(|v| v["channel"] == "cam")
        .collect();
    assert!(
        pulls.iter().all(|v| v["protocol"] == "fstream"
            && v["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:")),
        "{pulls:?}"
    );
    assert_eq!(
        pulls
            .iter()
            .filter(|v| v["channel_password"] == CPW)
            .count(),
        1,
        "{pulls:?}"
    );
    assert_eq!(origin_watchers(&origin).len(), 1, "one pull");

    for (what, out) in finish_all(all, &edge.log) {
        check(&out, 1.5, &what);
    }
    // The watchers' stops on the edge; the pull's on the origin once the edge has no watcher for
    // --origin-idle. A pulled channel is no publish on the edge: no publish or unpublish there.
    for proto in ["fstream", "http", "rtmp", "rtsp"] {
        let stop = eh.wait_call("stop", |v| v["protocol"] == proto);
        assert!(stop["bytes"].as_u64().unwrap() > 0, "{stop}");
    }
    edge.log.wait_for("stopped pulling fier/cam", "the edge");
    let stop = oh.wait_call("stop", |v| v["channel"] == "cam");
    assert_eq!(stop["protocol"], "fstream", "{stop}");
    assert!(stop["bytes"].as_u64().unwrap() > 0, "{stop}");
    assert!(eh.calls("publish").is_empty() && eh.calls("unpublish").is_empty());
    let _ = src.kill();
    let _ = b.kill();
    let _ = src.wait();
    let _ = b.wait();
}
