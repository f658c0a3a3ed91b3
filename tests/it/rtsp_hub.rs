//! `river-relay serve --rtsp` against real peers on 127.0.0.1: ffmpeg publishes over RTSP/TCP
//! (Digest), ffmpeg and GStreamer play over RTSP while an HTTP-FLV watcher takes the same
//! broadcast; ffmpeg publishes over RTSP/UDP and ffmpeg and GStreamer play over UDP and TCP; an
//! HTTP-pushed broadcast is played over RTSP by a late joiner; refusals; a player's PAUSE and
//! TEARDOWN after the end of a broadcast are answered before the hub closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::rtsp::*;
use crate::common::*;

/// 4 s, 1 s GOP, no B-frames (ffmpeg 5.1's RTSP reader gives the first access unit of a B-frame
/// stream no PTS, which `-c copy -f flv` refuses, whoever the server is).
const CLIP: Clip = Clip {
    width: 320,
    height: 240,
    fps: 25,
    bframes: 0,
    audio: true,
    gop_secs: 1,
    secs: 4,
};

/// `ffmpeg -re -i SRC -c copy -f rtsp -rtsp_transport T URL`.
fn rtsp_publisher(src: &str, transport: &str, url: &str) -> std::process::Child {
    spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-i",
            src,
            "-c",
            "copy",
            "-f",
            "rtsp",
            "-rtsp_transport",
            transport,
            url,
        ],
    )
}

/// `ffmpeg -re -i SRC -c copy -f flv URL`: an HTTP push.
fn http_publisher(src: &str, url: &str) -> std::process::Child {
    spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin", "-v", "error", "-re", "-i", src, "-c", "copy", "-f", "flv", url,
        ],
    )
}

/// `ffmpeg -rtsp_transport T -i URL -c copy -f flv OUT`: an RTSP player recording FLV.
fn rtsp_player(url: &str, transport: &str, out: &str) -> std::process::Child {
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
            "-c",
            "copy",
            "-f",
            "flv",
            out,
        ],
    )
}

fn out_path(name: &str) -> (PathBuf, String) {
    let p = tmpdir().join(name);
    let s = p.to_string_lossy().to_string();
    (p, s)
}

#[test]
fn ffmpeg_pushes_over_rtsp_and_ffmpeg_gstreamer_and_http_watch_it() {
    require("ffmpeg");
    require_gst();
    let hub = Hub::start(&[("live", "pushpw")]);
    let src = CLIP.flv();
    let s = src.to_string_lossy().to_string();
    let push_url = format!("rtsp://live:pushpw@{}/live/cam", hub.rtsp);
    let publisher = rtsp_publisher(&s, "tcp", &push_url);
    hub.log.wait_for("channel live/cam: FLV content", "the hub");
    let play_url = format!("rtsp://{}/live/cam", hub.rtsp);
    let (played, p) = out_path("rtsp-hub-played.flv");
    let player = rtsp_player(&play_url, "tcp", &p);
    let (http_out, h) = out_path("rtsp-hub-http.flv");
    let http_url = format!("http://{}/live/cam.flv", hub.http);
    let http = spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin", "-v", "error", "-y", "-i", &http_url, "-c", "copy", "-f", "flv", &h,
        ],
    );
    let pipeline = format!(
        "rtspsrc location={play_url} protocols=tcp name=src src. ! rtph264depay ! h264parse ! avdec_h264 ! fakesink src. ! rtpmp4gdepay ! aacparse ! avdec_aac ! fakesink"
    );
    let gst = gst_launch(&pipeline);
    finish(publisher, "ffmpeg RTSP publisher");
    finish(player, "ffmpeg RTSP player");
    finish(http, "ffmpeg HTTP-FLV watcher");
    finish_gst(gst, "GStreamer rtspsrc", &hub.log);
    let want = probe_streams(&src);
    for (path, what) in [(&played, "RTSP"), (&http_out, "HTTP-FLV")] {
        let got = probe_streams(path);
        assert_eq!(got.len(), 2, "{what}: {got:?}");
        assert_eq!(
            (got[0].codec.as_str(), got[1].codec.as_str()),
            ("h264", "aac")
        );
        // The players join while ffmpeg starts up (up to ~2 s in on a busy machine), at the
        // cached keyframe.
        assert!(
            got[0].packets >= 25 && got[0].packets <= want[0].packets,
            "{what}: {} of {} video frames",
            got[0].packets,
            want[0].packets
        );
        // 43 AAC frames a second against 25 video frames.
        assert!(
            got[1].packets as f64 >= got[0].packets as f64 * 1.5,
            "{what}: audio {got:?}"
        );
        assert_decodes_cleanly(path);
        let pk = probe_packets(path);
        assert!(
            pk.iter().find(|p| p.kind == "video").unwrap().key,
            "{what}: starts on a keyframe"
        );
    }
    hub.log
        .wait_for("broadcast of live/cam ended (RTSP TEARDOWN)", "the hub");
}

fn exchange(addr: &str, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).to_string()
}

#[test]
fn refusals_401_400_404_and_a_late_rtsp_joiner_of_an_http_push_starts_on_a_keyframe() {
    require("ffmpeg");
    let hub = Hub::start(&[("live", "pushpw")]);
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n";
    let announce = |auth: &str| {
        format!(
            "ANNOUNCE rtsp://{0}/live/cam RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n{auth}Content-Length: {1}\r\n\r\n{sdp}",
            hub.rtsp,
            sdp.len()
        )
    };
    let r = exchange(&hub.rtsp, announce("").as_bytes());
    assert!(r.starts_with("RTSP/1.0 401 "), "{r}");
    assert!(
        r.contains("WWW-Authenticate: Digest realm=\"river\""),
        "{r}"
    );
    assert!(r.contains("CSeq: 2"), "{r}");
    // live:wrong in Basic.
    let r = exchange(
        &hub.rtsp,
        announce("Authorization: Basic bGl2ZTp3cm9uZw==\r\n").as_bytes(),
    );
    assert!(r.starts_with("RTSP/1.0 401 "), "{r}");
    let r = exchange(&hub.rtsp, b"HELLO WORLD\r\n\r\n");
    assert!(r.starts_with("RTSP/1.0 400 "), "{r}");
    let r = exchange(
        &hub.rtsp,
        format!(
            "DESCRIBE rtsp://{}/live/none RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            hub.rtsp
        )
        .as_bytes(),
    );
    assert!(r.starts_with("RTSP/1.0 404 "), "{r}");
    let big = format!(
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: {}\r\n\r\n",
        "a".repeat(20000)
    );
    let r = exchange(&hub.rtsp, big.as_bytes());
    assert!(r.starts_with("RTSP/1.0 431 "), "{r}");
    // ffmpeg with a wrong password gives up on the 401.
    let src = CLIP.flv();
    let s = src.to_string_lossy().to_string();
    let bad = format!("rtsp://live:nope@{}/live/cam", hub.rtsp);
    let out = run(
        std::path::Path::new("ffmpeg"),
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            &s,
            "-c",
            "copy",
            "-f",
            "rtsp",
            "-rtsp_transport",
            "tcp",
            &bad,
        ],
        b"",
    );
    assert!(
        !out.status.success() && out.stderr.contains("401"),
        "{}",
        out.stderr
    );

    // An HTTP push (FLV) with a channel password, played over RTSP 1.5 s in.
    let push = format!(
        "http://{}/live/cam2?user-password=pushpw&channel-password=chpw",
        hub.http
    );
    let publisher = http_publisher(&s, &push);
    hub.log
        .wait_for("channel live/cam2: FLV content", "the hub");
    std::thread::sleep(Duration::from_millis(1500));
    let r = exchange(
        &hub.rtsp,
        format!(
            "DESCRIBE rtsp://{}/live/cam2 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            hub.rtsp
        )
        .as_bytes(),
    );
    assert!(
        r.starts_with("RTSP/1.0 401 "),
        "channel password required: {r}"
    );
    let (late, p) = out_path("rtsp-hub-late.flv");
    let url = format!("rtsp://any:chpw@{}/live/cam2", hub.rtsp);
    let player = rtsp_player(&url, "tcp", &p);
    finish(publisher, "ffmpeg HTTP publisher");
    finish(player, "ffmpeg RTSP late player");
    let pk = probe_packets(&late);
    let video: Vec<&Packet> = pk.iter().filter(|p| p.kind == "video").collect();
    assert!(video[0].key, "the late joiner starts on a keyframe");
    assert!(
        video.len() >= 40 && video.len() <= 100,
        "{} video frames",
        video.len()
    );
    assert_decodes_cleanly(&late);
}

/// A clip's frames, counted by ffprobe: (video packets, audio packets).
fn av_packets(path: &std::path::Path) -> (u64, u64) {
    let got = probe_streams(path);
    assert_eq!(got.len(), 2, "{}: {got:?}", path.display());
    assert_eq!(
        (got[0].codec.as_str(), got[1].codec.as_str()),
        ("h264", "aac"),
        "{}",
        path.display()
    );
    (got[0].packets, got[1].packets)
}

/// A player that joined at the start of CLIP's broadcast got every video frame the source sent
/// from the cached keyframe it joined at to the end: all of them, or all but the first GOP when
/// it connected after the second keyframe went out (ffmpeg and gst start up in under a second,
/// and the players are started as the broadcast begins).
fn assert_whole_gops(frames: u64, what: &str) {
    let sent = (CLIP.secs * CLIP.fps) as u64;
    let gop = (CLIP.gop_secs * CLIP.fps) as u64;
    assert!(
        frames == sent || frames == sent - gop,
        "{what}: {frames} video frames; the source sent {sent} in GOPs of {gop}"
    );
}

#[test]
fn ffmpeg_pushes_over_rtsp_udp_and_ffmpeg_and_gstreamer_play_over_udp_and_tcp() {
    require("ffmpeg");
    require_gst();
    let hub = Hub::start(&[("live", "pushpw")]);
    hub.log
        .wait_for("river-relay: rtsp udp on 127.0.0.1:", "the hub");
    let src = CLIP.flv();
    let s = src.to_string_lossy().to_string();
    let push_url = format!("rtsp://live:pushpw@{}/live/udp", hub.rtsp);
    let publisher = rtsp_publisher(&s, "udp", &push_url);
    hub.log.wait_for("channel live/udp: FLV content", "the hub");
    let play_url = format!("rtsp://{}/live/udp", hub.rtsp);
    let mut players = Vec::new();
    for transport in ["udp", "tcp"] {
        let (path, p) = out_path(&format!("rtsp-hub-udp-push-{transport}.flv"));
        let child = rtsp_player(&play_url, transport, &p);
        players.push((child, path, transport));
    }
    // GStreamer over UDP, decoding both tracks; the video goes to a file to be counted.
    let (gst_out, g) = out_path("rtsp-hub-gst-udp.h264");
    let pipeline = format!(
        "rtspsrc location={play_url} protocols=udp name=src src. ! rtph264depay ! h264parse ! video/x-h264,stream-format=byte-stream ! tee name=t t. ! queue ! avdec_h264 ! fakesink t. ! queue ! filesink location={g} src. ! rtpmp4gdepay ! aacparse ! avdec_aac ! fakesink"
    );
    let gst = gst_launch(&pipeline);
    finish(publisher, "ffmpeg RTSP/UDP publisher");
    for (child, path, transport) in players {
        finish(child, &format!("ffmpeg RTSP/{transport} player"));
        let (v, a) = av_packets(&path);
        assert_whole_gops(v, &format!("ffmpeg RTSP/{transport} player"));
        assert!(a as f64 >= v as f64 * 1.5, "{transport}: {a} audio frames");
        assert_decodes_cleanly(&path);
        let pk = probe_packets(&path);
        assert!(
            pk.iter().find(|p| p.kind == "video").unwrap().key,
            "{transport}: starts on a keyframe"
        );
    }
    let err = finish_gst(gst, "GStreamer rtspsrc protocols=udp", &hub.log);
    let got = probe_streams(&gst_out);
    assert_eq!(got.len(), 1, "GStreamer's H.264: {got:?}");
    let frames = got[0].packets;
    assert_decodes_cleanly(&gst_out);
    assert_whole_gops(frames, &format!("GStreamer over UDP ({err})"));
    let log = hub.log.text();
    assert!(log.contains("over RTSP/UDP"), "{log}");
    assert!(log.contains("over RTSP/TCP"), "{log}");
    hub.log
        .wait_for("broadcast of live/udp ended (RTSP TEARDOWN)", "the hub");
}

#[test]
fn no_rtsp_udp_answers_461_to_a_udp_setup() {
    require("ffmpeg");
    let hub = Hub::start_with(&[("live", "pushpw")], &["--no-rtsp-udp"]);
    let src = CLIP.flv();
    let s = src.to_string_lossy().to_string();
    let push_url = format!("rtsp://live:pushpw@{}/live/cam", hub.rtsp);
    let out = run(
        std::path::Path::new("ffmpeg"),
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            &s,
            "-c",
            "copy",
            "-f",
            "rtsp",
            "-rtsp_transport",
            "udp",
            &push_url,
        ],
        b"",
    );
    assert!(
        !out.status.success() && out.stderr.contains("461"),
        "{}",
        out.stderr
    );
    assert!(
        !hub.log.text().contains("rtsp udp on"),
        "{}",
        hub.log.text()
    );
}

/// A minimal RTSP/TCP client on one connection.
struct RawClient {
    s: TcpStream,
    rd: BufReader<TcpStream>,
    cseq: u32,
    /// `Session: ID\r\n` once SETUP gave one.
    session: String,
}

impl RawClient {
    fn connect(addr: &str) -> RawClient {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let rd = BufReader::new(s.try_clone().unwrap());
        RawClient {
            s,
            rd,
            cseq: 0,
            session: String::new(),
        }
    }

    /// Writes a request (`line` without the version, `extra` headers) and its CSeq.
    fn send(&mut self, line: &str, extra: &str) -> u32 {
        self.cseq += 1;
        let (cseq, session) = (self.cseq, &self.session);
        write!(
            self.s,
            "{line} RTSP/1.0\r\nCSeq: {cseq}\r\n{session}{extra}\r\n"
        )
        .unwrap();
        cseq
    }

    /// Reads one response: (head, body); panics unless it is `200 OK` for `cseq`.
    fn response(&mut self, cseq: u32, what: &str) -> (String, String) {
        let mut head = String::new();
        loop {
            let mut l = String::new();
            assert!(
                self.rd.read_line(&mut l).unwrap() > 0,
                "closed before the answer to {what}"
            );
            if l == "\r\n" {
                break;
            }
            head.push_str(&l);
        }
        assert!(head.starts_with("RTSP/1.0 200 "), "{what}: {head}");
        assert!(
            head.contains(&format!("CSeq: {cseq}\r\n")),
            "{what}: {head}"
        );
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.rd.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    fn request(&mut self, line: &str, extra: &str) -> (String, String) {
        let cseq = self.send(line, extra);
        self.response(cseq, line)
    }

    /// DESCRIBE, SETUP of every track over TCP (channels 2i, 2i+1), PLAY; returns the PLAY head.
    fn play(&mut self, url: &str) -> String {
        let (_, sdp) = self.request(&format!("DESCRIBE {url}"), "");
        let controls: Vec<String> = sdp
            .lines()
            .filter_map(|l| l.strip_prefix("a=control:"))
            .filter(|c| *c != "*")
            .map(str::to_string)
            .collect();
        assert!(!controls.is_empty(), "{sdp}");
        for (i, c) in controls.iter().enumerate() {
            let extra = format!(
                "Transport: RTP/AVP/TCP;unicast;interleaved={}-{}\r\n",
                2 * i,
                2 * i + 1
            );
            let (head, _) = self.request(&format!("SETUP {url}/{c}"), &extra);
            let id = head
                .lines()
                .find_map(|l| l.strip_prefix("Session: "))
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            self.session = format!("Session: {id}\r\n");
        }
        self.request(&format!("PLAY {url}"), "").0
    }

    /// Reads interleaved frames until an RTCP BYE has come on `tracks` channels; panics on
    /// anything else (an RTSP message, the end of the connection).
    fn read_until_byes(&mut self, tracks: usize) {
        let mut byes = std::collections::BTreeSet::new();
        while byes.len() < tracks {
            let mut h = [0u8; 4];
            self.rd.read_exact(&mut h).expect("an interleaved frame");
            assert_eq!(h[0], b'$', "not an interleaved frame: {h:?}");
            let mut pkt = vec![0; usize::from(u16::from_be_bytes([h[2], h[3]]))];
            self.rd.read_exact(&mut pkt).unwrap();
            // A compound RTCP packet: walk its parts for a BYE (type 203).
            let mut at = 0;
            while h[1] % 2 == 1 && at + 4 <= pkt.len() {
                if pkt[at + 1] == 203 {
                    byes.insert(h[1]);
                }
                at += (usize::from(u16::from_be_bytes([pkt[at + 2], pkt[at + 3]])) + 1) * 4;
            }
        }
    }
}

/// A minimal RTSP/TCP player: DESCRIBE, SETUP of every track, PLAY; then it reads and discards
/// until the hub closes, sending GET_PARAMETER every 500 ms when `keepalive`. Returns how long
/// after PLAY the connection ended.
fn raw_player(addr: &str, url: &str, keepalive: bool) -> Duration {
    let mut c = RawClient::connect(addr);
    let head = c.play(url);
    assert!(head.contains(";timeout=2"), "{head}");
    let played = Instant::now();
    let sender = keepalive.then(|| {
        let mut w = c.s.try_clone().unwrap();
        let (url, session) = (url.to_string(), c.session.clone());
        std::thread::spawn(move || {
            for n in 100.. {
                std::thread::sleep(Duration::from_millis(500));
                let req = format!("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: {n}\r\n{session}\r\n");
                if w.write_all(req.as_bytes()).is_err() {
                    break;
                }
            }
        })
    });
    let mut buf = vec![0u8; 65536];
    loop {
        match c.rd.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(played.elapsed() < WAIT, "never closed"),
        }
    }
    let _ = c.s.shutdown(std::net::Shutdown::Both);
    drop(sender);
    played.elapsed()
}

/// After the end of a broadcast (an RTCP BYE per track), a player's PAUSE and TEARDOWN, sent at
/// once after one of its RTCP receiver reports, are both answered `200 OK` before the hub ends
/// the connection, which it then closes cleanly (end of stream, not a reset).
#[test]
fn pause_and_teardown_after_the_end_are_answered_before_the_hub_closes() {
    require("ffmpeg");
    let hub = Hub::start(&[("live", "pushpw")]);
    let src = CLIP.flv();
    let s = src.to_string_lossy().to_string();
    let push = format!("http://{}/live/end?user-password=pushpw", hub.http);
    let publisher = http_publisher(&s, &push);
    hub.log.wait_for("channel live/end: FLV content", "the hub");
    let url = format!("rtsp://{}/live/end", hub.rtsp);
    let mut c = RawClient::connect(&hub.rtsp);
    c.play(&url);
    c.read_until_byes(2);
    finish(publisher, "ffmpeg HTTP publisher");
    // A receiver report (RFC 3550 6.4.2, no report blocks) on track 0's RTCP channel, then the
    // two requests, in one write.
    let mut out = vec![b'$', 1, 0, 8, 0x80, 201, 0, 1, 0, 0, 0, 7];
    let session = c.session.clone();
    let pause = c.cseq + 1;
    let teardown = c.cseq + 2;
    c.cseq += 2;
    out.extend_from_slice(
        format!(
            "PAUSE {url} RTSP/1.0\r\nCSeq: {pause}\r\n{session}\r\n\
             TEARDOWN {url} RTSP/1.0\r\nCSeq: {teardown}\r\n{session}\r\n"
        )
        .as_bytes(),
    );
    c.s.write_all(&out).unwrap();
    c.response(pause, "PAUSE");
    c.response(teardown, "TEARDOWN");
    let mut rest = Vec::new();
    match c.rd.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "after TEARDOWN: {rest:?}"),
        Err(e) => panic!("after TEARDOWN: {e}\nhub log:\n{}", hub.log.text()),
    }
}

#[test]
fn a_silent_rtsp_session_times_out_and_get_parameter_keeps_one_alive() {
    require("ffmpeg");
    let hub = Hub::start_with(&[("live", "pushpw")], &["--rtsp-timeout", "2s"]);
    let clip = Clip { secs: 10, ..CLIP };
    let src = clip.flv();
    let s = src.to_string_lossy().to_string();
    let push = format!("http://{}/live/ka?user-password=pushpw", hub.http);
    let publisher = http_publisher(&s, &push);
    hub.log.wait_for("channel live/ka: FLV content", "the hub");
    let url = format!("rtsp://{}/live/ka", hub.rtsp);
    let (a, u2) = (hub.rtsp.clone(), url.clone());
    let alive = std::thread::spawn(move || raw_player(&a, &u2, true));
    let silent = raw_player(&hub.rtsp, &url, false);
    let alive = alive.join().unwrap();
    finish(publisher, "ffmpeg HTTP publisher");
    assert!(
        silent >= Duration::from_millis(1500) && silent < Duration::from_secs(6),
        "the silent player ended {silent:?} after PLAY"
    );
    assert!(
        alive > silent + Duration::from_secs(2),
        "the player sending GET_PARAMETER ended {alive:?} after PLAY (silent: {silent:?})"
    );
    let log = hub.log.text();
    assert_eq!(log.matches("RTSP session timed out").count(), 1, "{log}");
}
