//! One rule for names and passwords on every front of river-relay (src/proto/names.rs), against
//! the real binaries on 127.0.0.1, with raw clients and with ffmpeg and GStreamer where a real
//! client can send the name. Every front refuses `..`, `/`, `%2F`, control characters, empty
//! names, 4 KiB names and non-UTF-8 cleanly (fstream: closed without data; HTTP and RTSP: a 4xx;
//! RTMP: an error status ffmpeg prints), the hub logs one line with the peer and what was wrong,
//! and a good client is served right after. A broadcaster authenticates before anything else of
//! its request counts.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::hub::*;
use crate::common::rtsp::require_gst;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// A 4 s clip with a keyframe every second, the live channel the good clients watch.
const CLIP: Clip = Clip {
    width: 160,
    height: 120,
    fps: 25,
    bframes: 0,
    audio: false,
    gop_secs: 1,
    secs: 4,
};

fn handshake(payload: &[u8]) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload);
    v
}

/// Connects, sends `bytes`, and reads until the peer closes or `stop` says the answer is
/// complete (deadline [`WAIT`]): (our address, what came back). A reset counts as the end.
fn exchange_until(addr: &str, bytes: &[u8], stop: impl Fn(&[u8]) -> bool) -> (SocketAddr, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let me = s.local_addr().unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop(&got) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (me, got)
}

fn exchange(addr: &str, bytes: &[u8]) -> (SocketAddr, Vec<u8>) {
    exchange_until(addr, bytes, |_| false)
}

/// Everything up to the end of the first head (`\r\n\r\n`) is in.
fn head_done(b: &[u8]) -> bool {
    b.windows(4).any(|w| w == b"\r\n\r\n")
}

/// The hub's one log line about `me`, which must contain `want`.
fn logged_once(hub: &Hub, me: SocketAddr, want: &str, what: &str) -> String {
    let line = hub.log.wait_for(&format!("{me}: refused: "), what);
    assert!(
        line.contains(want),
        "{what}: the hub logged {line:?}, not {want:?}"
    );
    // Give a second line the time to show up, then count.
    std::thread::sleep(Duration::from_millis(50));
    let n = hub.log.count(&format!("{me}: refused"));
    assert_eq!(n, 1, "{what}: one line:\n{}", hub.log.text());
    line
}

/// fier/good: the clip written whole by a raw fstream broadcaster that then stays connected, so
/// the channel stays live with its last GOP cached.
fn live(hub: &Hub) -> TcpStream {
    let mut s = TcpStream::connect(&hub.fstream).unwrap();
    s.write_all(&handshake(
        b"broadcast,user=fier,user-password=123,channel=good",
    ))
    .unwrap();
    s.write_all(&std::fs::read(CLIP.flv()).unwrap()).unwrap();
    hub.log
        .wait_for("channel fier/good: FLV content", "the hub");
    s
}

/// A good fstream watcher of fier/good gets the FLV header.
fn good_fstream(hub: &Hub) {
    let (_, got) = exchange_until(
        &hub.fstream,
        &handshake(b"watch,user=fier,channel=good"),
        |b| b.len() >= 3,
    );
    assert!(
        got.starts_with(b"FLV"),
        "a good fstream watcher got {got:?}"
    );
}

/// A good HTTP/1.0 watcher of fier/good gets 200 and the FLV header.
fn good_http(hub: &Hub) {
    let req = b"GET /fier/good.flv HTTP/1.0\r\n\r\n";
    let (_, got) = exchange_until(&hub.http, req, |b| {
        b.windows(7).any(|w| w == b"\r\n\r\nFLV")
    });
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("\r\n\r\nFLV"),
        "a good HTTP watcher got {text:?}"
    );
}

/// A good RTSP player's DESCRIBE of fier/good gets its SDP.
fn good_rtsp(hub: &Hub) {
    let req = format!(
        "DESCRIBE rtsp://{}/fier/good RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        hub.rtsp
    );
    let (_, got) = exchange_until(&hub.rtsp, req.as_bytes(), |b| {
        b.windows(7).any(|w| w == b"m=video")
    });
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("RTSP/1.0 200 "),
        "a good DESCRIBE got {text:?}"
    );
}

/// A good ffmpeg publisher (the clip, unpaced) is taken. (Not a player: a player of fier/good,
/// whose broadcaster has gone quiet, gets its headers but not the cached frames over RTMP, as on
/// main; HTTP-FLV gets them. A separate question from names.)
fn good_rtmp(hub: &Hub) {
    let url = format!("rtmp://{}/fier/ok?user-password=123", hub.rtmp);
    let src = CLIP.flv();
    let (ok, err) = ffmpeg_os(&[
        "-i".as_ref(),
        src.as_os_str(),
        "-c".as_ref(),
        "copy".as_ref(),
        "-f".as_ref(),
        "flv".as_ref(),
        url.as_ref(),
    ]);
    assert!(ok, "a good RTMP publisher failed: {err}");
}

/// ffmpeg with arguments that may not be UTF-8: (success, stderr).
fn ffmpeg_os(args: &[&OsStr]) -> (bool, String) {
    require("ffmpeg");
    let mut c = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    let st = wait_deadline(&mut c, WAIT, "ffmpeg");
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (st.success(), err)
}

/// The bad names every front is tried with, as they go in a URL path segment (percent forms
/// included), and what the hub says about each after "user " or "channel ".
fn url_names() -> Vec<(String, String)> {
    let x40 = "x".repeat(40);
    [
        ("..".to_string(), "\"..\"".to_string(), "it starts with '.'"),
        ("a%2Fb".into(), "\"a/b\"".into(), "'/' at byte 1"),
        ("a%252Fb".into(), "\"a%2Fb\"".into(), "'%' at byte 1"),
        ("a%01b".into(), "\"a\\u{1}b\"".into(), "'\\u{1}' at byte 1"),
        ("a%0Ab".into(), "\"a\\nb\"".into(), "'\\n' at byte 1"),
        ("-rf".into(), "\"-rf\"".into(), "it starts with '-'"),
        (
            "x".repeat(4096),
            format!("\"{x40}\"… (4096 bytes)"),
            "it is 4096 bytes long, over 128",
        ),
        (
            "%FF".into(),
            "\"\u{fffd}\"".into(),
            "not valid UTF-8 at byte 0",
        ),
        (
            "a%zz".into(),
            "\"a%zz\"".into(),
            "malformed percent escape at byte 1",
        ),
    ]
    .into_iter()
    .map(|(n, shown, why)| (n, format!("name {shown} is not allowed: {why}")))
    .collect()
}

#[test]
fn fstream_refuses_bad_names_and_passwords_without_a_byte() {
    let hub = Hub::start(USERS);
    let _live = live(&hub);
    good_fstream(&hub);
    let x = |n: usize| "x".repeat(n);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "..",
            b"watch,user=fier,channel=..".to_vec(),
            "channel name \"..\" is not allowed: it starts with '.'".into(),
        ),
        (
            "/",
            b"watch,user=fier,channel=a/b".to_vec(),
            "channel name \"a/b\" is not allowed: '/' at byte 1".into(),
        ),
        // A payload is not a URL: nothing in it is decoded.
        (
            "%2F",
            b"watch,user=fier,channel=a%2Fb".to_vec(),
            "channel name \"a%2Fb\" is not allowed: '%' at byte 1".into(),
        ),
        (
            "control",
            b"watch,user=fier,channel=a\x01b".to_vec(),
            "control character '\\u{1}' in the payload".into(),
        ),
        (
            "empty user",
            b"watch,user=,channel=c".to_vec(),
            "user name \"\" is not allowed: it is empty".into(),
        ),
        (
            "empty channel",
            b"watch,user=fier,channel=".to_vec(),
            "channel name \"\" is not allowed: it is empty".into(),
        ),
        (
            "4000-byte name",
            format!("watch,user=fier,channel={}", x(4000)).into_bytes(),
            "it is 4000 bytes long, over 128".into(),
        ),
        (
            "4 KiB name",
            format!("watch,user=fier,channel={}", x(4096)).into_bytes(),
            "payload length 4120 exceeds the limit of 4096 bytes".into(),
        ),
        (
            "non-UTF-8",
            b"watch,user=fier,channel=a\xffb".to_vec(),
            "payload is not valid UTF-8".into(),
        ),
        (
            "leading -",
            b"watch,user=-rf,channel=c".to_vec(),
            "user name \"-rf\" is not allowed: it starts with '-'".into(),
        ),
        (
            "a broadcaster's bad channel",
            b"broadcast,user=fier,user-password=123,channel=../x".to_vec(),
            "channel name \"../x\" is not allowed".into(),
        ),
        (
            "a password over 256 bytes",
            format!("broadcast,user=fier,user-password={}", x(257)).into_bytes(),
            "user-password not allowed: it is 257 bytes long".into(),
        ),
    ];
    for (what, payload, want) in &cases {
        let (me, got) = exchange(&hub.fstream, &handshake(payload));
        assert!(got.is_empty(), "{what}: {} bytes came back", got.len());
        let line = logged_once(&hub, me, want, what);
        assert!(
            line.contains("refused: bad fstream handshake: ") && line.contains("(at byte offset "),
            "{line}"
        );
        assert!(
            !line.contains("handshake: bad fstream"),
            "said once: {line}"
        );
        good_fstream(&hub);
    }
    // A wrong password is refused the same way whatever the channel name: closed, nothing sent.
    for payload in [
        &b"broadcast,user=fier,user-password=bad,channel=ok"[..],
        b"broadcast,user=fier,user-password=bad,channel=a/b",
    ] {
        let (_, got) = exchange(&hub.fstream, &handshake(payload));
        assert!(got.is_empty());
    }
    // river-relay's own client refuses a bad name before it connects: a usage error.
    let out = run(
        &river("river-relay"),
        &["watch", &hub.fstream, "--user", "fier", "--channel", "../x"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("channel name \"../x\" is not allowed"),
        "{}",
        out.stderr
    );
    good_fstream(&hub);
}

/// An HTTP request for `target` (raw bytes) with `extra` head fields: (our address, status line
/// and head, body).
fn http(hub: &Hub, method: &str, target: &[u8], extra: &str) -> (SocketAddr, String, String) {
    let mut req = format!("{method} ").into_bytes();
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n").as_bytes(),
    );
    let (me, got) = exchange(&hub.http, &req);
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (me, head.to_string(), body.to_string())
}

#[test]
fn http_answers_bad_names_400_and_a_push_authenticates_before_anything_else() {
    require("ffmpeg");
    let hub = Hub::start(USERS);
    let _live = live(&hub);
    good_http(&hub);
    // Watchers: every URL-shaped bad name, as the user and as the channel.
    for (name, want) in url_names() {
        for (target, what) in [
            (format!("/fier/{name}.flv"), "channel"),
            (format!("/{name}/good.flv"), "user"),
        ] {
            let (me, head, body) = http(&hub, "GET", target.as_bytes(), "");
            assert!(head.starts_with("HTTP/1.1 400 "), "{target}: {head}");
            let want = format!("{what} {want}");
            assert!(body.contains(&want), "{target}: {body}");
            let line = logged_once(&hub, me, &want, &target);
            assert!(line.contains("HTTP 400 GET: "), "{line}");
            good_http(&hub);
        }
    }
    // Empty names; a separator only where the path has one; raw bytes the HTTP layer refuses.
    let raw: Vec<(&[u8], &str, &str)> = vec![
        (
            b"/fier/.flv",
            "HTTP/1.1 400 ",
            "channel name \"\" is not allowed: it is empty",
        ),
        (
            b"//good.flv",
            "HTTP/1.1 400 ",
            "user name \"\" is not allowed: it is empty",
        ),
        (
            b"/fier/a/b.flv",
            "HTTP/1.1 404 ",
            "HTTP 404 \"/fier/a/b.flv\"",
        ),
        (
            b"/fier%2Fgood.flv",
            "HTTP/1.1 404 ",
            "HTTP 404 \"/fier%2Fgood.flv\"",
        ),
        (
            b"/fier/a\x01b.flv",
            "HTTP/1.1 400 ",
            "HTTP 400: malformed request",
        ),
        (
            b"/fier/a\xffb.flv",
            "HTTP/1.1 400 ",
            "HTTP 400: malformed request",
        ),
    ];
    for (target, status, want) in raw {
        let what = String::from_utf8_lossy(target).into_owned();
        let (me, head, _) = http(&hub, "GET", target, "");
        assert!(head.starts_with(status), "{what}: {head}");
        logged_once(&hub, me, want, &what);
        good_http(&hub);
    }
    // ffmpeg as the player.
    for path in ["/fier/a%2Fb.flv", "/../good.flv", "/fier/a%0Ab.ts"] {
        let url = format!("http://{}{path}", hub.http);
        let (ok, err) = ffmpeg_os(&[
            "-i".as_ref(),
            url.as_ref(),
            "-t".as_ref(),
            "1".as_ref(),
            "-f".as_ref(),
            "null".as_ref(),
            "-".as_ref(),
        ]);
        assert!(!ok && err.contains("400 Bad Request"), "{path}: {err}");
        good_http(&hub);
    }
    // A push without the user's password is told 403 and nothing else, whatever is wrong with
    // the rest of it (no body length, a bad channel, a path that is not a channel).
    let pushes = [
        "/fier/good",
        "/fier/a%2Fb",
        "/fier/..",
        "/../good",
        "/fier",
        "/fier/a/b",
        "/%FF/x",
        "/fier/good?channel-password=%0A",
        &format!("/fier/{}", "x".repeat(4096)),
    ];
    for path in pushes {
        for pw in [
            "",
            "user-password=bad",
            "user-password=%zz",
            "password=12%33%0A",
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let target = format!("{path}{sep}{pw}");
            for length in ["", "Content-Length: 0\r\n"] {
                let (me, head, body) = http(&hub, "POST", target.as_bytes(), length);
                assert!(head.starts_with("HTTP/1.1 403 "), "{target}: {head}");
                assert_eq!(body, "403 Forbidden: wrong user password or unknown user\n");
                logged_once(&hub, me, "HTTP broadcaster to ", &target);
            }
        }
    }
    // With it, what is wrong gets its own status.
    let authed: [(&str, &str, &str, &str); 5] = [
        (
            "/fier/a%2Fb?user-password=123",
            "Content-Length: 0\r\n",
            "HTTP/1.1 400 ",
            "channel name \"a/b\" is not allowed",
        ),
        (
            "/fier/..?password=123",
            "Content-Length: 0\r\n",
            "HTTP/1.1 400 ",
            "channel name \"..\" is not allowed",
        ),
        (
            "/fier/a/b?user-password=123",
            "Content-Length: 0\r\n",
            "HTTP/1.1 404 ",
            "HTTP 404 ",
        ),
        (
            "/fier/x?user-password=123",
            "",
            "HTTP/1.1 411 ",
            "HTTP push without a body length",
        ),
        (
            "/fier/x?user-password=123&channel-password=a%0Ab",
            "Content-Length: 0\r\n",
            "HTTP/1.1 400 ",
            "channel-password not allowed: a control character at byte 1",
        ),
    ];
    for (target, length, status, want) in authed {
        let (me, head, _) = http(&hub, "POST", target.as_bytes(), length);
        assert!(head.starts_with(status), "{target}: {head}");
        logged_once(&hub, me, want, target);
    }
    // ffmpeg pushing to a bad channel with the right password, and to a good one with a wrong
    // password: ffmpeg does not read the answer to a push; the hub says which was refused why.
    let src = CLIP.flv();
    for (path, want) in [
        (
            "/fier/a%2Fb?user-password=123",
            "refused: HTTP 400 POST: channel name \"a/b\"",
        ),
        (
            "/fier/good2?user-password=nope",
            "refused: HTTP broadcaster to \"/fier/good2\": wrong user password",
        ),
    ] {
        let url = format!("http://{}{path}", hub.http);
        // Its exit status depends on whether the whole clip fit in the socket buffers before
        // the answer came; the hub's log and channels are the evidence.
        let _ = ffmpeg_os(&[
            "-i".as_ref(),
            src.as_os_str(),
            "-c".as_ref(),
            "copy".as_ref(),
            "-f".as_ref(),
            "flv".as_ref(),
            url.as_ref(),
        ]);
        hub.log.wait_for(want, path);
    }
    good_http(&hub);
    assert!(
        !hub.log.contains("broadcasting fier/a") && !hub.log.contains("broadcasting fier/good2"),
        "{}",
        hub.log.text()
    );
}

#[test]
fn rtmp_refuses_bad_names_with_an_error_status_ffmpeg_prints() {
    require("ffmpeg");
    let hub = Hub::start(USERS);
    let _live = live(&hub);
    good_rtmp(&hub);
    let src = CLIP.flv();
    let publish = |url: &str, opts: &[&OsStr]| {
        let mut args: Vec<&OsStr> = vec![
            "-re".as_ref(),
            "-i".as_ref(),
            src.as_os_str(),
            "-c".as_ref(),
            "copy".as_ref(),
        ];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["-f".as_ref(), "flv".as_ref(), url.as_ref()]);
        ffmpeg_os(&args)
    };
    // With the right password, as the channel of a URL.
    let app = OsString::from("fier?user-password=123");
    for (name, want) in url_names() {
        // ffmpeg cuts a stream name in its URL at 511 bytes: longer ones go as -rtmp_playpath.
        let (ok, err) = if name.len() < 500 {
            let url = format!("rtmp://{}/fier/{name}?user-password=123", hub.rtmp);
            publish(&url, &[])
        } else {
            let url = format!("rtmp://{}/x/y", hub.rtmp);
            let opts: [&OsStr; 4] = [
                "-rtmp_app".as_ref(),
                &app,
                "-rtmp_playpath".as_ref(),
                name.as_ref(),
            ];
            publish(&url, &opts)
        };
        let want = format!("channel {want}");
        assert!(
            !ok && err.contains(&format!("Server error: river-relay: {want}")),
            "{name}: {err}"
        );
        let line = hub.log.wait_for(&want, &name);
        assert!(
            line.contains("127.0.0.1:") && line.contains("refused: RTMP broadcaster for "),
            "{line}"
        );
        good_rtmp(&hub);
    }
    // Names a URL cannot carry, with ffmpeg's -rtmp_app and -rtmp_playpath (the password on the
    // application, as encoders put it).
    let url = format!("rtmp://{}/x/y", hub.rtmp);
    let cases: [(&[u8], &str); 3] = [
        (
            b"a\x01b",
            "channel name \"a\\u{1}b\" is not allowed: '\\u{1}' at byte 1",
        ),
        (
            b"a\nb",
            "channel name \"a\\nb\" is not allowed: '\\n' at byte 1",
        ),
        (b"a\xffb", "publish: amf0 value at script byte"),
    ];
    for (name, want) in cases {
        let opts: [&OsStr; 4] = [
            "-rtmp_app".as_ref(),
            &app,
            "-rtmp_playpath".as_ref(),
            OsStr::from_bytes(name),
        ];
        let (ok, err) = publish(&url, &opts);
        assert!(
            !ok && err.contains("Server error: ") && err.contains(want),
            "{name:?}: {err}"
        );
        let line = hub.log.wait_for(want, want);
        assert!(
            line.contains("127.0.0.1:") && line.contains(" refused: RTMP"),
            "{line}"
        );
        good_rtmp(&hub);
    }
    let url = format!("rtmp://{}/fier/?user-password=123", hub.rtmp);
    let (ok, err) = publish(&url, &[]);
    assert!(
        !ok && err.contains("river-relay: publish to rtmp://HOST/<user>/<channel>"),
        "{err}"
    );
    // Without the right password the client is told only that, whatever the names.
    for path in [
        "fier/a%2Fb",
        "fier/..",
        "fier/",
        "../x",
        "fier/a/b",
        "%FF/x",
        "fier/good",
    ] {
        for pw in ["", "?user-password=bad", "?user-password=%zz"] {
            let url = format!("rtmp://{}/{path}{pw}", hub.rtmp);
            let (ok, err) = publish(&url, &[]);
            assert!(!ok, "{url} accepted");
            let told: Vec<&str> = err.lines().filter(|l| l.contains("Server error")).collect();
            assert_eq!(told.len(), 1, "{url}: {err}");
            assert!(
                told[0].ends_with("Server error: river-relay: wrong user password or unknown user"),
                "{url}: {err}"
            );
        }
    }
    // Players: a bad name gets NetStream.Play.StreamNotFound with the reason; a channel password
    // that does not decode is a wrong one.
    let play = |url: &str, opts: &[&OsStr]| {
        let mut args: Vec<&OsStr> = opts.to_vec();
        args.extend_from_slice(&[
            "-i".as_ref(),
            url.as_ref(),
            "-t".as_ref(),
            "1".as_ref(),
            "-f".as_ref(),
            "null".as_ref(),
            "-".as_ref(),
        ]);
        ffmpeg_os(&args)
    };
    for (path, told, logged) in [
        (
            "fier/a%2Fb",
            "channel name \"a/b\" is not allowed: '/' at byte 1",
            "",
        ),
        ("fier/..", "channel name \"..\" is not allowed", ""),
        ("-x/good", "user name \"-x\" is not allowed", ""),
        (
            "fier/good?password=%0A",
            "watcher of fier/good: wrong channel password",
            "refused: watcher of fier/good: channel password: a control character",
        ),
    ] {
        let url = format!("rtmp://{}/{path}", hub.rtmp);
        let (ok, err) = play(&url, &[]);
        assert!(
            !ok && err.contains("Server error: river-relay: ") && err.contains(told),
            "{path}: {err}"
        );
        hub.log
            .wait_for(if logged.is_empty() { told } else { logged }, path);
        good_rtmp(&hub);
    }
    let url = format!("rtmp://{}/fier/x", hub.rtmp);
    let (ok, err) = play(
        &url,
        &["-rtmp_playpath".as_ref(), OsStr::from_bytes(b"\xff")],
    );
    assert!(!ok && err.contains("Server error: play: "), "{err}");
    good_rtmp(&hub);
    assert!(
        !hub.log.contains("broadcasting fier/a"),
        "{}",
        hub.log.text()
    );
}

/// An RTSP request as raw bytes: (our address, the first response's head).
fn rtsp(hub: &Hub, req: &[u8]) -> (SocketAddr, String) {
    let (me, got) = exchange_until(&hub.rtsp, req, head_done);
    (me, String::from_utf8_lossy(&got).into_owned())
}

fn announce(hub: &Hub, path: &[u8], auth: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut r = format!("ANNOUNCE rtsp://{}", hub.rtsp).into_bytes();
    r.extend_from_slice(path);
    r.extend_from_slice(
        format!(
            " RTSP/1.0\r\nCSeq: 2\r\n{auth}{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    r
}

#[test]
fn rtsp_announce_authenticates_first_and_bad_names_get_400() {
    require("ffmpeg");
    require_gst();
    let hub = Hub::start(USERS);
    let _live = live(&hub);
    good_rtsp(&hub);
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n";
    let sdp_type = "Content-Type: application/sdp\r\n";
    let mut paths: Vec<Vec<u8>> = vec![
        b"/live/cam".to_vec(),
        b"/live".to_vec(),
        b"/../cam".to_vec(),
    ];
    paths.extend(
        url_names()
            .into_iter()
            .map(|(n, _)| format!("/live/{n}").into_bytes()),
    );
    // Without good credentials: 401, whatever the path, Content-Type or body (before, an empty
    // body got 400 first).
    let bodies = [
        ("", ""),
        ("not an sdp", sdp_type),
        (sdp, "Content-Type: text/plain\r\n"),
        (sdp, sdp_type),
    ];
    let auths = [
        "",
        "Authorization: Basic bGl2ZTp3cm9uZw==\r\n",
        "Authorization: Basic !!\r\n",
        "Authorization: Digest nonsense\r\n",
    ];
    for path in &paths {
        for (body, ct) in bodies {
            for auth in auths {
                let (_, head) = rtsp(&hub, &announce(&hub, path, auth, ct, body));
                assert!(
                    head.starts_with("RTSP/1.0 401 ") && head.contains("CSeq: 2"),
                    "{} {auth:?} {body:?}: {head}",
                    String::from_utf8_lossy(path)
                );
            }
        }
    }
    good_rtsp(&hub);
    // With them (live:pushpw), what is wrong gets its own status, and one log line.
    let good = "Authorization: Basic bGl2ZTpwdXNocHc=\r\n";
    for (name, want) in url_names() {
        let path = format!("/live/{name}");
        let (me, head) = rtsp(&hub, &announce(&hub, path.as_bytes(), good, sdp_type, sdp));
        assert!(head.starts_with("RTSP/1.0 400 "), "{path}: {head}");
        logged_once(&hub, me, &format!("RTSP publisher: channel {want}"), &path);
        good_rtsp(&hub);
    }
    for (path, ct, body, status) in [
        ("/live/cam", sdp_type, "", "RTSP/1.0 400 "),
        (
            "/live/cam",
            "Content-Type: text/plain\r\n",
            sdp,
            "RTSP/1.0 415 ",
        ),
        ("/live", sdp_type, sdp, "RTSP/1.0 400 "),
    ] {
        let (_, head) = rtsp(&hub, &announce(&hub, path.as_bytes(), good, ct, body));
        assert!(head.starts_with(status), "{path} {ct:?} {body:?}: {head}");
    }
    // Players: every bad name gets 400, the connection stays for the next request.
    for (name, want) in url_names() {
        for (path, what) in [
            (format!("/fier/{name}"), "channel"),
            (format!("/{name}/good"), "user"),
        ] {
            let req = format!("DESCRIBE rtsp://{}{path} RTSP/1.0\r\nCSeq: 3\r\n\r\nOPTIONS * RTSP/1.0\r\nCSeq: 4\r\n\r\n", hub.rtsp);
            let (me, got) = exchange_until(&hub.rtsp, req.as_bytes(), |b| {
                b.windows(7).any(|w| w == b"CSeq: 4")
            });
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.starts_with("RTSP/1.0 400 ") && text.contains("RTSP/1.0 200 OK\r\nCSeq: 4"),
                "{path}: {text}"
            );
            logged_once(&hub, me, &format!("RTSP player: {what} {want}"), &path);
            good_rtsp(&hub);
        }
    }
    // Bytes that cannot be in a request line: 400 from the parser, and the connection closes.
    for raw in [&b"/fier/a\x01b"[..], b"/fier/a\xffb"] {
        let mut req = format!("DESCRIBE rtsp://{}", hub.rtsp).into_bytes();
        req.extend_from_slice(raw);
        req.extend_from_slice(b" RTSP/1.0\r\nCSeq: 5\r\n\r\n");
        let (me, got) = exchange_until(&hub.rtsp, &req, head_done);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("RTSP/1.0 400 "), "{raw:?}: {text}");
        hub.log.wait_for(&format!("{me}: "), "the hub");
        good_rtsp(&hub);
    }
    // ffmpeg publishing with the right password, and ffmpeg and GStreamer playing (GStreamer
    // refuses to send %FF itself: "Failed to connect. (Invalid parameter specified)").
    let src = CLIP.flv();
    for (name, gst) in [
        ("a%2Fb", true),
        ("..", true),
        ("a%0Ab", true),
        ("%FF", false),
    ] {
        let url = format!("rtsp://live:pushpw@{}/live/{name}", hub.rtsp);
        let (ok, err) = ffmpeg_os(&[
            "-re".as_ref(),
            "-i".as_ref(),
            src.as_os_str(),
            "-c".as_ref(),
            "copy".as_ref(),
            "-f".as_ref(),
            "rtsp".as_ref(),
            "-rtsp_transport".as_ref(),
            "tcp".as_ref(),
            url.as_ref(),
        ]);
        assert!(!ok && err.contains("400 Bad Request"), "{name}: {err}");
        let url = format!("rtsp://{}/fier/{name}", hub.rtsp);
        let (ok, err) = ffmpeg_os(&[
            "-rtsp_transport".as_ref(),
            "tcp".as_ref(),
            "-i".as_ref(),
            url.as_ref(),
            "-t".as_ref(),
            "1".as_ref(),
            "-f".as_ref(),
            "null".as_ref(),
            "-".as_ref(),
        ]);
        assert!(!ok && err.contains("400 Bad Request"), "{name}: {err}");
        good_rtsp(&hub);
        if !gst {
            continue;
        }
        let location = format!("location=rtsp://{}/fier/{name}", hub.rtsp);
        let mut gst = spawn_gst(&["rtspsrc", &location, "protocols=tcp", "!", "fakesink"]);
        let st = wait_deadline(&mut gst, WAIT, "gst-launch-1.0");
        let mut err = String::new();
        gst.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(
            !st.success() && err.contains("Bad Request (400)"),
            "{name}: {err}"
        );
        good_rtsp(&hub);
    }
    assert!(
        !hub.log.contains("broadcasting live/"),
        "{}",
        hub.log.text()
    );
}

fn spawn_gst(args: &[&str]) -> std::process::Child {
    Command::new("gst-launch-1.0")
        .arg("-q")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gst-launch-1.0")
}
