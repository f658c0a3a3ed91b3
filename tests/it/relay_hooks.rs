//! Publish and play hooks (`river-relay serve --on-publish/--on-play/--on-unpublish/--on-stop`)
//! against a real HTTP server: Python's http.server (tests/fixtures/relay/hook_server.py), which
//! allows, refuses (a channel `deny…`, a query with `token=bad`) or hangs (a channel `hang…`) and
//! prints every JSON object it gets. Every front asks, and refuses as it refuses anything: fstream
//! closes without a byte, HTTP answers 403, RTMP sends an error status ffmpeg prints, RTSP answers
//! 403 (ffmpeg and GStreamer say so). A hook that hangs refuses at --hook-timeout while the hub
//! serves everyone else; a hook that is down refuses at once. The notifications carry the bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::hooks::HookServer;
use crate::common::hub::*;
use crate::common::rtsp::require_gst;
use crate::common::*;

/// A 2 s clip with a keyframe every second.
const CLIP: Clip = Clip {
    width: 160,
    height: 120,
    fps: 25,
    bframes: 0,
    audio: false,
    gop_secs: 1,
    secs: 2,
};

fn handshake(payload: &[u8]) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload);
    v
}

/// An fstream client that sent `payload`: its stream and address.
fn fstream(hub: &Hub, payload: &str) -> (TcpStream, SocketAddr) {
    let mut s = TcpStream::connect(&hub.fstream).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&handshake(payload.as_bytes())).unwrap();
    let me = s.local_addr().unwrap();
    (s, me)
}

/// Reads until the peer closes (deadline [`WAIT`]); a reset counts as the end.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP response with a Content-Length body: (head, body).
fn http_response(s: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .map_or(0, |v| v.parse().unwrap());
            if got.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + len]).into_owned();
                return (head, body);
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => panic!(
                "the response ended early: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The value of a `/metrics` sample (`name{labels}`), 0 when absent.
fn metric(hub: &Hub, sample: &str) -> f64 {
    let (head, body) = hub.get("/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// ffmpeg in the background, its stderr collected.
fn ffmpeg_bg(args: &[&str]) -> Child {
    require("ffmpeg");
    Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg")
}

/// Waits for a child: (success, stderr).
fn outcome(mut c: Child, what: &str) -> (bool, String) {
    let st = wait_deadline(&mut c, WAIT, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (st.success(), err)
}

fn ffmpeg(args: &[&str]) -> (bool, String) {
    outcome(ffmpeg_bg(args), "ffmpeg")
}

/// `ffmpeg -i URL -t 1 -f null -` (RTSP over TCP).
fn play(url: &str) -> (bool, String) {
    ffmpeg(&[
        "-rtsp_transport",
        "tcp",
        "-i",
        url,
        "-t",
        "1",
        "-f",
        "null",
        "-",
    ])
}

/// `ffmpeg -i CLIP -c copy -f FORMAT URL` (unpaced).
fn publish(format: &str, url: &str) -> (bool, String) {
    let src = CLIP.flv();
    let src = src.to_str().unwrap();
    let mut args = vec!["-i", src, "-c", "copy", "-f", format];
    if format == "rtsp" {
        args.extend(["-rtsp_transport", "tcp"]);
    }
    args.push(url);
    ffmpeg(&args)
}

#[test]
fn fstream_and_http_ask_the_hooks_and_are_told_what_ended() {
    let hooks = HookServer::start();
    let args = hooks.args("5s");
    let hub = Hub::start_with(USERS, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let clip = std::fs::read(CLIP.flv()).unwrap();
    // An fstream broadcaster the hook lets in: what it is told, exactly.
    let (mut b, b_addr) = fstream(
        &hub,
        "broadcast,user=fier,user-password=123,channel=ok,channel-password=cpw",
    );
    b.write_all(&clip).unwrap();
    hub.log.wait_for("channel fier/ok: FLV content", "the hub");
    let p = hooks.call("publish", "ok");
    assert!(p["id"].is_u64(), "{p}");
    assert_eq!(
        p,
        json!({"action": "publish", "id": p["id"], "protocol": "fstream", "user": "fier",
               "channel": "ok", "remote_addr": b_addr.to_string(), "query": null,
               "user_password": "123", "channel_password": "cpw"})
    );
    // One it refuses: closed without a byte; the log says which hook and what it answered.
    let (mut s, me) = fstream(&hub, "broadcast,user=fier,user-password=123,channel=deny-b");
    assert!(read_all(&mut s).is_empty());
    hooks.call("publish", "deny-b");
    hub.log.wait_for(
        &format!("{me}: refused: broadcaster for fier/deny-b: the publish hook answered 403: \"no such luck\""),
        "the hub",
    );
    // A wrong user password never reaches the hook (the users file first).
    let (mut s, _) = fstream(&hub, "broadcast,user=fier,user-password=nope,channel=nope");
    assert!(read_all(&mut s).is_empty());
    // A watcher the hook lets in reads the broadcast to its end, in a thread.
    let (mut w, w_addr) = fstream(&hub, "watch,user=fier,channel=ok,channel-password=cpw");
    let watcher = std::thread::spawn(move || read_all(&mut w));
    let wp = hooks.call("play", "ok");
    assert_eq!(
        wp,
        json!({"action": "play", "id": wp["id"], "protocol": "fstream", "user": "fier",
               "channel": "ok", "remote_addr": w_addr.to_string(), "query": null,
               "user_password": null, "channel_password": "cpw"})
    );
    let (mut s, me) = fstream(&hub, "watch,user=fier,channel=deny-w");
    assert!(read_all(&mut s).is_empty());
    hub.log.wait_for(
        &format!("{me}: refused: watcher of fier/deny-w: the play hook answered 403"),
        "the hub",
    );
    assert!(
        hooks
            .calls("publish")
            .iter()
            .all(|c| c["channel"] != "nope"),
        "{}",
        hooks.log.text()
    );
    // HTTP: a watcher let in gets the stream; one refused gets 403 and its connection serves the
    // next request.
    let mut h = TcpStream::connect(&hub.http).unwrap();
    h.set_read_timeout(Some(WAIT)).unwrap();
    let h_addr = h.local_addr().unwrap();
    h.write_all(b"GET /fier/ok.flv?password=cpw&token=abc HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"FLV\x01") {
        let n = h.read(&mut buf).unwrap();
        assert!(n > 0, "{:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 "));
    let v = hooks.wait_call("play", |v| v["protocol"] == "http");
    assert_eq!(
        v,
        json!({"action": "play", "id": v["id"], "protocol": "http", "user": "fier",
               "channel": "ok", "remote_addr": h_addr.to_string(),
               "query": "password=cpw&token=abc", "user_password": null,
               "channel_password": "cpw"})
    );
    drop(h);
    let mut k = TcpStream::connect(&hub.http).unwrap();
    k.set_read_timeout(Some(WAIT)).unwrap();
    k.write_all(b"GET /fier/ok.flv?token=bad HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = http_response(&mut k);
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert_eq!(body, "403 Forbidden: refused by the play hook\n");
    k.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, _) = http_response(&mut k);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // HTTP pushes: the body sent with the head (it arrives while the hook decides) is all in the
    // broadcast; a refused one gets 403.
    let push = |path: &str| {
        let mut s = TcpStream::connect(&hub.http).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            clip.len()
        )
        .into_bytes();
        req.extend_from_slice(&clip);
        s.write_all(&req).unwrap();
        let me = s.local_addr().unwrap();
        (http_response(&mut s), me)
    };
    let ((head, _), me) = push("/fier/pushed?user-password=123&channel-password=pp");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let v = hooks.call("publish", "pushed");
    assert_eq!(
        v,
        json!({"action": "publish", "id": v["id"], "protocol": "http", "user": "fier",
               "channel": "pushed", "remote_addr": me.to_string(),
               "query": "user-password=123&channel-password=pp", "user_password": "123",
               "channel_password": "pp"})
    );
    let u = hooks.call("unpublish", "pushed");
    assert_eq!(u["id"], v["id"]);
    assert_eq!(u["bytes"], clip.len(), "{u}");
    let ((head, body), _) = push("/fier/deny-p?user-password=123");
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert_eq!(body, "403 Forbidden: refused by the publish hook\n");
    // The end of the fstream broadcast: its unpublish, and the watcher's stop with the bytes it
    // got.
    drop(b);
    let got = watcher.join().unwrap();
    assert!(got.starts_with(b"FLV"), "{} bytes", got.len());
    let u = hooks.call("unpublish", "ok");
    let d = u["duration_secs"].as_f64().unwrap();
    assert!(d > 0.0, "{u}");
    assert_eq!(
        u,
        json!({"action": "unpublish", "id": p["id"], "protocol": "fstream", "user": "fier",
               "channel": "ok", "remote_addr": b_addr.to_string(), "query": null,
               "user_password": "123", "channel_password": "cpw", "bytes": clip.len(),
               "duration_secs": d})
    );
    let s = hooks.wait_call("stop", |v| v["remote_addr"] == w_addr.to_string());
    assert_eq!((&s["protocol"], &s["id"]), (&json!("fstream"), &wp["id"]));
    assert_eq!(s["bytes"], got.len(), "{s}");
    let s = hooks.wait_call("stop", |v| v["remote_addr"] == h_addr.to_string());
    assert!(s["bytes"].as_u64().unwrap() >= 13, "{s}");
    // Refusals by a hook count as auth, with the rest; every call is in /metrics.
    let m = |s: &str| metric(&hub, s);
    assert_eq!(
        m("river_relay_refused_total{front=\"fstream\",reason=\"auth\"}"),
        3.0
    );
    assert_eq!(
        m("river_relay_refused_total{front=\"http\",reason=\"auth\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"publish\",outcome=\"ok\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"publish\",outcome=\"status\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"play\",outcome=\"ok\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"play\",outcome=\"status\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_hook_duration_seconds_count{hook=\"play\"}"),
        4.0
    );
    assert_eq!(m("river_relay_hook_pending{hook=\"publish\"}"), 0.0);
}

#[test]
fn rtmp_and_rtsp_ask_the_hooks_and_ffmpeg_and_gstreamer_print_the_refusals() {
    require("ffmpeg");
    require_gst();
    let hooks = HookServer::start();
    let args = hooks.args("5s");
    let hub = Hub::start_with(USERS, &args.iter().map(String::as_str).collect::<Vec<_>>());
    // The live channel: ffmpeg publishing over RTSP (Digest), in real time.
    let src = Clip { secs: 8, ..CLIP }.flv();
    let url = format!("rtsp://live:pushpw@{}/live/ok", hub.rtsp);
    let source = ffmpeg_bg(&[
        "-re",
        "-i",
        src.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        &url,
    ]);
    hub.log.wait_for("channel live/ok: FLV content", "the hub");
    let v = hooks.call("publish", "ok");
    assert_eq!(
        v,
        json!({"action": "publish", "id": v["id"], "protocol": "rtsp", "user": "live",
               "channel": "ok", "remote_addr": v["remote_addr"], "query": null,
               "user_password": "pushpw", "channel_password": null})
    );
    // RTSP players: let in, and refused (403, as ffmpeg and GStreamer report it).
    let rtsp = format!("rtsp://{}/live/ok", hub.rtsp);
    let (ok, err) = play(&rtsp);
    assert!(ok, "{err}");
    let v = hooks.wait_call("play", |v| v["protocol"] == "rtsp");
    assert_eq!(
        v,
        json!({"action": "play", "id": v["id"], "protocol": "rtsp", "user": "live",
               "channel": "ok", "remote_addr": v["remote_addr"], "query": null,
               "user_password": null, "channel_password": null})
    );
    let (ok, err) = play(&format!("{rtsp}?token=bad"));
    assert!(!ok && err.contains("403 Forbidden"), "{err}");
    let location = format!("location={rtsp}?token=bad");
    let gst = Command::new("gst-launch-1.0")
        .args(["-q", "rtspsrc", &location, "protocols=tcp", "!", "fakesink"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0");
    let (ok, err) = outcome(gst, "gst-launch-1.0");
    assert!(!ok && err.contains("Forbidden (403)"), "{err}");
    hub.log.wait_for(
        "refused: RTSP player of live/ok: the play hook answered 403",
        "the hub",
    );
    // RTMP players of the same channel.
    let rtmp = format!("rtmp://{}/live/ok", hub.rtmp);
    let (ok, err) = ffmpeg(&["-i", &rtmp, "-t", "1", "-f", "null", "-"]);
    assert!(ok, "{err}");
    let v = hooks.wait_call("play", |v| v["protocol"] == "rtmp");
    assert_eq!(
        (&v["user"], &v["channel"], &v["query"]),
        (&json!("live"), &json!("ok"), &json!(null))
    );
    let (ok, err) = ffmpeg(&[
        "-i",
        &format!("{rtmp}?token=bad"),
        "-t",
        "1",
        "-f",
        "null",
        "-",
    ]);
    assert!(
        !ok && err.contains("Server error: river-relay: refused by the play hook"),
        "{err}"
    );
    // Publishers: RTMP let in and refused, RTSP refused.
    let (ok, err) = publish(
        "flv",
        &format!("rtmp://{}/fier/ok2?user-password=123", hub.rtmp),
    );
    assert!(ok, "{err}");
    let v = hooks.call("publish", "ok2");
    assert_eq!(
        v,
        json!({"action": "publish", "id": v["id"], "protocol": "rtmp", "user": "fier",
               "channel": "ok2", "remote_addr": v["remote_addr"], "query": "user-password=123",
               "user_password": "123", "channel_password": null})
    );
    let (ok, err) = publish(
        "flv",
        &format!("rtmp://{}/fier/deny-r?user-password=123", hub.rtmp),
    );
    assert!(
        !ok && err.contains("Server error: river-relay: refused by the publish hook"),
        "{err}"
    );
    let (ok, err) = publish(
        "rtsp",
        &format!("rtsp://live:pushpw@{}/live/deny-s", hub.rtsp),
    );
    assert!(!ok && err.contains("403 Forbidden"), "{err}");
    hooks.call("publish", "deny-s");
    hub.log.wait_for(
        "refused: RTSP publisher of live/deny-s: the publish hook answered 403",
        "the hub",
    );
    // The end of the RTSP broadcast; the players' stops, with what they were sent.
    let (ok, err) = outcome(source, "ffmpeg RTSP publisher");
    assert!(ok, "{err}");
    let u = hooks.wait_call("unpublish", |v| v["protocol"] == "rtsp");
    assert!(u["bytes"].as_u64().unwrap() > 10_000, "{u}");
    for proto in ["rtsp", "rtmp"] {
        let s = hooks.wait_call("stop", |v| v["protocol"] == proto);
        assert!(s["bytes"].as_u64().unwrap() > 1000, "{s}");
    }
    let m = |s: &str| metric(&hub, s);
    assert_eq!(
        m("river_relay_refused_total{front=\"rtmp\",reason=\"auth\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_refused_total{front=\"rtsp\",reason=\"auth\"}"),
        3.0
    );
}

#[test]
fn a_hook_that_hangs_refuses_in_time_while_others_are_served_and_one_that_is_down_refuses() {
    require("ffmpeg");
    let hooks = HookServer::start();
    // The hung watchers must still be waiting when the fifth connection comes: 5 s covers the
    // steps between (at a load average of 15 they took over the 1 s this had been, the hung ones
    // were refused first, and the fifth was served).
    let mut args = hooks.args("5s");
    args.extend(["--max-connections".into(), "4".into()]);
    let hub = Hub::start_with(USERS, &args.iter().map(String::as_str).collect::<Vec<_>>());
    // Two watchers the hook does not answer for.
    let t0 = Instant::now();
    let (mut h1, me1) = fstream(&hub, "watch,user=fier,channel=hang-1");
    let (mut h2, _) = fstream(&hub, "watch,user=fier,channel=hang-2");
    hooks.call("play", "hang-1");
    hooks.call("play", "hang-2");
    assert_eq!(metric(&hub, "river_relay_hook_pending{hook=\"play\"}"), 2.0);
    // Meanwhile a broadcaster and a watcher are let in and served. They wait for (and count
    // against) the connection limit too: a fifth connection is closed at once.
    let (mut b, _) = fstream(&hub, "broadcast,user=fier,user-password=123,channel=ok");
    b.write_all(&std::fs::read(CLIP.flv()).unwrap()).unwrap();
    let (mut w, _) = fstream(&hub, "watch,user=fier,channel=ok");
    let mut head = [0u8; 3];
    w.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"FLV");
    let (mut x, _) = fstream(&hub, "watch,user=fier,channel=ok");
    assert!(read_all(&mut x).is_empty());
    hub.log
        .wait_for("connections open (--max-connections)", "the hub");
    // The hung ones are refused at the timeout: closed without a byte.
    assert!(read_all(&mut h1).is_empty());
    assert!(read_all(&mut h2).is_empty());
    let took = t0.elapsed();
    // At least the timeout; well before the hook would have answered (60 s).
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(25),
        "{took:?}"
    );
    hub.log.wait_for(
        &format!("{me1}: refused: watcher of fier/hang-1: the play hook did not answer in time"),
        "the hub",
    );
    drop((b, w));
    // An RTMP publish waits for it the same way, then ffmpeg is told.
    let url = format!("rtmp://{}/fier/hang-r?user-password=123", hub.rtmp);
    let (ok, err) = publish("flv", &url);
    assert!(
        !ok && err.contains("Server error: river-relay: refused by the publish hook"),
        "{err}"
    );
    let m = |s: &str| metric(&hub, s);
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"play\",outcome=\"timeout\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"publish\",outcome=\"timeout\"}"),
        1.0
    );
    assert_eq!(
        m("river_relay_refused_total{front=\"fstream\",reason=\"auth\"}"),
        2.0
    );
    assert_eq!(
        m("river_relay_refused_total{front=\"rtmp\",reason=\"auth\"}"),
        1.0
    );
    assert_eq!(m("river_relay_hook_pending{hook=\"play\"}"), 0.0);

    // A hook that is down: the play hook refuses every watcher at once; the unpublish
    // notification fails, is logged and counted, and changes nothing.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hub = Hub::start_with(
        USERS,
        &[
            "--on-play",
            &format!("http://{down}/play"),
            "--on-unpublish",
            &format!("http://{down}/unpublish"),
        ],
    );
    let (mut w, me) = fstream(&hub, "watch,user=fier,channel=ok");
    assert!(read_all(&mut w).is_empty());
    hub.log.wait_for(
        &format!("{me}: refused: watcher of fier/ok: the play hook failed: "),
        "the hub",
    );
    let (mut b, _) = fstream(&hub, "broadcast,user=fier,user-password=123,channel=ok");
    b.write_all(&std::fs::read(CLIP.flv()).unwrap()).unwrap();
    hub.log.wait_for("broadcasting fier/ok", "the hub");
    drop(b);
    let line = hub.log.wait_for("the unpublish hook failed: ", "the hub");
    assert!(
        line.contains(&down.to_string()) && line.contains("refused"),
        "{line}"
    );
    let m = |s: &str| metric(&hub, s);
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"play\",outcome=\"error\"}"),
        1.0
    );
    assert_eq!(
        m("river_relay_hook_calls_total{hook=\"unpublish\",outcome=\"error\"}"),
        1.0
    );
    assert_eq!(
        m("river_relay_refused_total{front=\"fstream\",reason=\"auth\"}"),
        1.0
    );
}
