use super::*;
use crate::media::{MediaEvent, Track};
use crate::pipeline::Demux;
use crate::proto::rtp::ingest::{FlvIngest, Ingest};

const FFMPEG_PUBLISH: &[u8] =
    include_bytes!("../../../../tests/fixtures/rtsp/ffmpeg-publish-tcp.c2s.bin");
const FLV: &[u8] = include_bytes!("../../../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");

#[derive(Default)]
struct MockHost {
    user_password: Option<String>,
    channel_password: Option<String>,
    sdp: Option<String>,
    udp: Option<(u16, u16)>,
    recording: Option<(String, Sdp, Vec<StreamSetup>)>,
    playing: usize,
    authorized: Vec<(Access, String)>,
    /// DESCRIBE answers this instead.
    describe_err: Option<u16>,
    /// Answer this many authorizations `Pending` first.
    park: usize,
    uris: Vec<String>,
    /// Authorization answers this instead.
    verdict: Option<AuthVerdict>,
}

impl Host for MockHost {
    fn authorize(
        &mut self,
        access: Access,
        path: &str,
        uri: &str,
        creds: &Credentials,
    ) -> AuthVerdict {
        self.uris.push(uri.to_string());
        if self.park > 0 {
            self.park -= 1;
            return AuthVerdict::Pending;
        }
        self.authorized.push((access, path.to_string()));
        if let Some(v) = self.verdict {
            return v;
        }
        let pw = match access {
            Access::Publish => &self.user_password,
            Access::Play => &self.channel_password,
        };
        match pw {
            None => AuthVerdict::Allow,
            Some(p) if creds.check(p) => AuthVerdict::Allow,
            Some(_) => AuthVerdict::Deny,
        }
    }
    fn describe(&mut self, _path: &str) -> Result<String, u16> {
        if let Some(st) = self.describe_err {
            return Err(st);
        }
        self.sdp.clone().ok_or(404)
    }
    fn record(
        &mut self,
        _uri: &str,
        path: &str,
        sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<(), u16> {
        self.recording = Some((path.to_string(), sdp.clone(), streams.to_vec()));
        Ok(())
    }
    fn play(
        &mut self,
        _path: &str,
        _sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<Vec<RtpInfo>, u16> {
        self.playing += 1;
        Ok(streams
            .iter()
            .map(|s| RtpInfo {
                seq: Some(s.seq),
                rtptime: Some(s.rtptime),
            })
            .collect())
    }
    fn udp_ports(&self) -> Option<(u16, u16)> {
        self.udp
    }
}

type Resp = (u16, Vec<(String, String)>, String);

/// Responses in `out`: (status, headers, body).
fn responses(out: &[u8]) -> Vec<Resp> {
    let text = String::from_utf8_lossy(out).to_string();
    let mut rest = text.as_str();
    let mut v = Vec::new();
    while let Some(end) = rest.find("\r\n\r\n") {
        let head = &rest[..end];
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (a, b) = l.split_once(':').unwrap();
                (a.to_string(), b.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "Content-Length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        v.push((status, headers, rest[end + 4..end + 4 + len].to_string()));
        rest = &rest[end + 4 + len..];
    }
    v
}

fn hdr<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn run(host: &mut MockHost, input: &[u8], sizes: &[usize]) -> (Session, Vec<u8>, Vec<Event>) {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now, 1).with_session_id("12345678");
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let n = sizes[i % sizes.len()].max(1).min(input.len() - pos);
        s.push(&input[pos..pos + n], now, host, &mut out, &mut ev);
        pos += n;
        i += 1;
    }
    (s, out, ev)
}

/// The ffmpeg publish capture through the session, the ingest and FlvOut: FLV bytes.
fn publish_to_flv(sizes: &[usize]) -> (Vec<u16>, Vec<u8>, u64) {
    let mut host = MockHost::default();
    let (s, out, ev) = run(&mut host, FFMPEG_PUBLISH, sizes);
    let statuses: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
    let (path, sdp, streams) = host.recording.expect("RECORD reached the host");
    assert_eq!(path, "live/cam");
    let mut ingest = FlvIngest::new(Ingest::new(&sdp, &streams).unwrap());
    let mut diags = Vec::new();
    let mut teardown = false;
    let mut bytes = Vec::new();
    for e in ev {
        match e {
            Event::Data { stream, rtcp, data } => ingest
                .push(stream, rtcp, &data, 0, &mut bytes, &mut diags)
                .unwrap(),
            Event::Teardown => teardown = true,
            e => panic!("unexpected {e:?}"),
        }
    }
    assert!(teardown);
    assert!(diags.is_empty(), "{diags:?}");
    (statuses, bytes, s.skipped_frames)
}

fn count_frames(flv: &[u8]) -> (usize, usize, bool) {
    let mut d = Demux::new(None, None, 10.0);
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    d.push(flv, &mut ev, &mut diags).unwrap();
    d.finish(&mut ev, &mut diags).unwrap();
    let frames: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    let v = frames.iter().filter(|f| f.track == Track::Video).count();
    let a = frames.iter().filter(|f| f.track == Track::Audio).count();
    let first_key = frames
        .iter()
        .find(|f| f.track == Track::Video)
        .is_some_and(|f| f.keyframe);
    (v, a, first_key)
}

#[test]
fn ffmpeg_publish_capture_replays_under_any_chunking() {
    let (statuses, want, skipped) = publish_to_flv(&[FFMPEG_PUBLISH.len()]);
    assert_eq!(
        statuses,
        vec![200; 6],
        "OPTIONS ANNOUNCE SETUP SETUP RECORD TEARDOWN"
    );
    assert_eq!(skipped, 0);
    let (v0, a0, _) = count_frames(FLV);
    let (v, a, key) = count_frames(&want);
    // ffmpeg aggregates 6 or 7 AAC frames per RTP packet and, when it stops, drops the 7 it was
    // still aggregating: the capture holds 38 of the 45.
    assert_eq!((v, a), (v0, a0 - 7), "every frame that was sent arrives");
    assert!(key);
    for sizes in [&[1usize][..], &[3], &[17], &[1000], &[1, 5, 300, 2, 4096]] {
        let (st, got, _) = publish_to_flv(sizes);
        assert_eq!(st, statuses);
        assert!(got == want, "chunking {sizes:?} changed the output");
    }
}

fn req(method: &str, uri: &str, cseq: u32, extra: &str) -> Vec<u8> {
    format!("{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n").into_bytes()
}

fn sdp_text() -> String {
    crate::proto::sdp::tests_support::ffmpeg_sdp().to_string()
}

#[test]
fn publish_needs_the_user_password_basic_and_digest() {
    let now = Instant::now();
    let mut host = MockHost {
        user_password: Some("secret".into()),
        ..Default::default()
    };
    let body = sdp_text();
    let announce = |cseq: u32, auth: &str| {
        let mut r = format!(
            "ANNOUNCE rtsp://127.0.0.1/live/cam RTSP/1.0\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n{auth}\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body.as_bytes());
        r
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(&announce(1, ""), now, &mut host, &mut out, &mut ev);
    let r = responses(&out);
    assert_eq!(r[0].0, 401);
    let challenges: Vec<&str> = r[0]
        .1
        .iter()
        .filter(|(n, _)| n == "WWW-Authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(challenges[0].starts_with("Digest "));
    assert_eq!(challenges[1], "Basic realm=\"river\"");
    let nonce = challenges[0]
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    // Wrong Basic password.
    out.clear();
    s.push(
        &announce(2, "Authorization: Basic bGl2ZTp3cm9uZw==\r\n"),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    assert_eq!(responses(&out)[0].0, 401);
    // Digest, as ffmpeg computes it.
    let md5 = |s: &str| crate::proto::util::hex(&<md5::Md5 as md5::Digest>::digest(s.as_bytes()));
    let uri = "rtsp://127.0.0.1/live/cam";
    let resp = md5(&format!(
        "{}:{nonce}:{}",
        md5("live:river:secret"),
        md5(&format!("ANNOUNCE:{uri}"))
    ));
    let auth = format!("Authorization: Digest username=\"live\", realm=\"river\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\"\r\n");
    out.clear();
    s.push(&announce(3, &auth), now, &mut host, &mut out, &mut ev);
    assert_eq!(responses(&out)[0].0, 200);
    assert!(ev.is_empty());
    // Basic with the right password on a fresh connection.
    let mut s = Session::new(SessionConfig::default(), now, 1);
    out.clear();
    s.push(
        &announce(1, "Authorization: Basic bGl2ZTpzZWNyZXQ=\r\n"),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    assert_eq!(responses(&out)[0].0, 200);
}

#[test]
fn play_flow_tcp() {
    let now = Instant::now();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        udp: Some((6970, 6971)),
        ..Default::default()
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let base = "rtsp://127.0.0.1:8554/live/cam";
    s.push(
        &req("DESCRIBE", base, 1, "Accept: application/sdp\r\n"),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(&req("PLAY", base, 2, ""), now, &mut host, &mut out, &mut ev);
    // Interleaved data before PLAY is skipped.
    s.push(b"$\x01\x00\x02ab", now, &mut host, &mut out, &mut ev);
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=0"),
            3,
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let r = responses(&out);
    assert_eq!(r[0].0, 200);
    assert_eq!(
        hdr(&r[0], "Content-Base"),
        Some("rtsp://127.0.0.1:8554/live/cam/")
    );
    assert!(r[0].2.starts_with("v=0"));
    assert_eq!(r[1].0, 455, "PLAY before SETUP");
    assert_eq!(r[2].0, 200);
    let session = hdr(&r[2], "Session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(hdr(&r[2], "Session").unwrap().ends_with(";timeout=60"));
    assert!(hdr(&r[2], "Transport")
        .unwrap()
        .starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="));
    out.clear();
    let sess = format!("Session: {session}\r\n");
    // UDP for the second stream would mix transports in one session: 461.
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=1"),
            4,
            &format!("{sess}Transport: RTP/AVP;unicast;client_port=5000-5001\r\n"),
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=1"),
            4,
            &format!("{sess}Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n"),
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=1"),
            5,
            "Session: nope\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=9"),
            6,
            &format!("{sess}Transport: RTP/AVP/TCP;interleaved=4-5\r\n"),
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=0"),
            7,
            &format!("{sess}Transport: RTP/AVP;multicast\r\n"),
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req("PLAY", base, 8, &sess),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(b"$\x01\x00\x02rr", now, &mut host, &mut out, &mut ev);
    s.push(b"$\x07\x00\x01x", now, &mut host, &mut out, &mut ev);
    s.push(
        &req("GET_PARAMETER", base, 9, &sess),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req("PAUSE", base, 10, &sess),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req("TEARDOWN", base, 11, &sess),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(&req("FOO", base, 12, ""), now, &mut host, &mut out, &mut ev);
    let r = responses(&out);
    let st: Vec<u16> = r.iter().map(|r| r.0).collect();
    assert_eq!(st, vec![461, 200, 454, 404, 461, 200, 200, 200, 200, 501]);
    let info = hdr(&r[5], "RTP-Info").unwrap();
    assert!(
        info.starts_with("url=rtsp://127.0.0.1:8554/live/cam/streamid=0;seq="),
        "{info}"
    );
    assert!(info.contains(",url=rtsp://127.0.0.1:8554/live/cam/streamid=1;seq="));
    assert_eq!(host.playing, 1);
    assert_eq!(
        ev,
        vec![
            Event::Data {
                stream: 0,
                rtcp: true,
                data: Bytes::from_static(b"rr")
            },
            Event::Pause,
            Event::Teardown
        ]
    );
    assert_eq!(s.skipped_frames, 2);
    assert!(info.contains(";rtptime="));
    // Authorization was asked once for the whole session.
    assert_eq!(
        host.authorized,
        vec![(Access::Play, "live/cam".to_string())]
    );
}

#[test]
fn play_and_record_over_udp_answer_the_server_ports() {
    let now = Instant::now();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        udp: Some((6970, 6971)),
        ..Default::default()
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let base = "rtsp://127.0.0.1:8554/live/cam";
    s.push(
        &req("DESCRIBE", base, 1, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    for (i, port) in [(0, 5000), (1, 5002)] {
        let sess = s
            .id()
            .map(|id| format!("Session: {id}\r\n"))
            .unwrap_or_default();
        s.push(
            &req(
                "SETUP",
                &format!("{base}/streamid={i}"),
                2 + i,
                &format!(
                    "{sess}Transport: RTP/AVP;unicast;client_port={port}-{}\r\n",
                    port + 1
                ),
            ),
            now,
            &mut host,
            &mut out,
            &mut ev,
        );
    }
    let sess = format!("Session: {}\r\n", s.id().unwrap());
    // TCP now would mix transports.
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=0"),
            4,
            &format!("{sess}Transport: RTP/AVP/TCP;interleaved=0-1\r\n"),
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req("PLAY", base, 5, &sess),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let r = responses(&out);
    let st: Vec<u16> = r.iter().map(|r| r.0).collect();
    assert_eq!(st, vec![200, 200, 200, 461, 200]);
    assert_eq!(
        hdr(&r[2], "Transport")
            .unwrap()
            .split(";ssrc")
            .next()
            .unwrap(),
        "RTP/AVP;unicast;client_port=5002-5003;server_port=6970-6971"
    );
    assert!(s.is_playing());
    let lowers: Vec<Lower> = s.streams().iter().map(|t| t.transport.lower).collect();
    assert_eq!(
        lowers,
        vec![
            Lower::Udp {
                client_port: (5000, 5001),
                server_port: Some((6970, 6971))
            },
            Lower::Udp {
                client_port: (5002, 5003),
                server_port: Some((6970, 6971))
            }
        ]
    );
    // Without UDP ports on the host, a UDP-only SETUP gets 461.
    host.udp = None;
    let mut s = Session::new(SessionConfig::default(), now, 1);
    out.clear();
    s.push(
        &req("DESCRIBE", base, 1, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "SETUP",
            &format!("{base}/streamid=0"),
            2,
            "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let st: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
    assert_eq!(st, vec![200, 461]);
}

#[test]
fn play_is_refused_without_the_channel_password_and_unknown_is_404() {
    let now = Instant::now();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        channel_password: Some("pw".into()),
        ..Default::default()
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(
        &req(
            "DESCRIBE",
            "rtsp://h/live/cam",
            1,
            "Authorization: Basic eDpubw==\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "DESCRIBE",
            "rtsp://h/live/cam",
            2,
            "Authorization: Basic eDpwdw==\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let mut host2 = MockHost::default();
    let mut s2 = Session::new(SessionConfig::default(), now, 1);
    let mut out2 = Vec::new();
    s2.push(
        &req("DESCRIBE", "rtsp://h/live/none", 3, ""),
        now,
        &mut host2,
        &mut out2,
        &mut ev,
    );
    assert_eq!(responses(&out2)[0].0, 404);
    // UDP refused when the server has no UDP ports.
    s.push(
        &req(
            "SETUP",
            "rtsp://h/live/cam/streamid=0",
            4,
            "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let st: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
    assert_eq!(st, vec![401, 200, 461]);
}

#[test]
fn malformed_and_oversized_close_the_connection() {
    let now = Instant::now();
    for (input, status) in [
        (&b"HELLO\r\n\r\n"[..], 400),
        (b"OPTIONS rtsp://h/ RTSP/1.0\r\n\r\n", 400),
        (
            b"ANNOUNCE rtsp://h/a/b RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 9\r\n\r\nnot an sdp",
            400,
        ),
    ] {
        let mut host = MockHost {
            sdp: Some(sdp_text()),
            ..Default::default()
        };
        let mut s = Session::new(SessionConfig::default(), now, 1);
        let (mut out, mut ev) = (Vec::new(), Vec::new());
        s.push(input, now, &mut host, &mut out, &mut ev);
        assert_eq!(
            responses(&out)[0].0,
            status,
            "{}",
            String::from_utf8_lossy(input)
        );
        assert!(matches!(ev.last(), Some(Event::Close { .. })), "{ev:?}");
        // Nothing more is answered.
        out.clear();
        s.push(
            &req("OPTIONS", "*", 2, ""),
            now,
            &mut host,
            &mut out,
            &mut ev,
        );
        assert!(out.is_empty());
    }
    let mut host = MockHost::default();
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let big = vec![b'A'; super::super::message::MAX_HEADER + 1];
    s.push(&big, now, &mut host, &mut out, &mut ev);
    assert!(out.starts_with(b"RTSP/1.0 431 "));
}

/// An ANNOUNCE without good credentials gets 401 whatever else is wrong with it; with them, what
/// is wrong gets its own status. (Before, an empty body got 400 before the credentials counted.)
#[test]
fn announce_authenticates_before_anything_else() {
    let now = Instant::now();
    let announce = |uri: &str, extra: &str, body: &str| {
        format!(
            "ANNOUNCE {uri} RTSP/1.0\r\nCSeq: 1\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let good = "Authorization: Basic bGl2ZTpzZWNyZXQ=\r\n";
    let sdp = sdp_text();
    let cases: &[(String, u16)] = &[
        (announce("rtsp://h/live/cam", "", ""), 400),
        (announce("rtsp://h/live/cam", "", "not an sdp"), 400),
        (
            announce("rtsp://h/live/cam", "Content-Type: text/plain\r\n", &sdp),
            415,
        ),
        (announce("*", "", &sdp), 400),
        (announce("rtsp://h/live/cam", "", "v=0\r\n"), 400),
        (announce("rtsp://h/live/cam", "", &sdp), 200),
    ];
    for (req, with_creds) in cases {
        for creds in [
            "",
            "Authorization: Basic !!\r\n",
            "Authorization: Digest x\r\n",
            good,
        ] {
            let mut host = MockHost {
                user_password: Some("secret".into()),
                ..Default::default()
            };
            let req = req.replacen("CSeq: 1\r\n", &format!("CSeq: 1\r\n{creds}"), 1);
            let mut s = Session::new(SessionConfig::default(), now, 1);
            let (mut out, mut ev) = (Vec::new(), Vec::new());
            s.push(req.as_bytes(), now, &mut host, &mut out, &mut ev);
            let want = if creds == good { *with_creds } else { 401 };
            assert_eq!(responses(&out)[0].0, want, "{req:?}");
        }
    }
}

/// An `Authorization` header that does not parse counts as none: 401 where credentials are
/// needed, and no matter where they are not.
#[test]
fn a_malformed_authorization_is_no_credentials() {
    let now = Instant::now();
    let describe = b"DESCRIBE rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic !!\r\n\r\n";
    for (pw, want) in [(Some("pw".to_string()), 401), (None, 200)] {
        let mut host = MockHost {
            sdp: Some(sdp_text()),
            channel_password: pw,
            ..Default::default()
        };
        let mut s = Session::new(SessionConfig::default(), now, 1);
        let (mut out, mut ev) = (Vec::new(), Vec::new());
        s.push(describe, now, &mut host, &mut out, &mut ev);
        assert_eq!(responses(&out)[0].0, want);
    }
}

/// A 400 the host decides (a name it refuses) leaves the connection open: the request parsed,
/// so the byte stream is in step; the next request is answered.
#[test]
fn a_400_from_the_host_keeps_the_connection() {
    let now = Instant::now();
    let mut host = MockHost {
        describe_err: Some(400),
        ..Default::default()
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(
        &req("DESCRIBE", "rtsp://h/a/b", 1, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req("OPTIONS", "*", 2, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let st: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
    assert_eq!(st, vec![400, 200]);
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn timeouts_follow_activity() {
    let now = Instant::now();
    let cfg = SessionConfig::default();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        ..Default::default()
    };
    let mut s = Session::new(cfg.clone(), now, 1);
    assert_eq!(s.deadline(), now + cfg.idle_timeout);
    let t1 = now + Duration::from_secs(5);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(
        &req(
            "SETUP",
            "rtsp://h/live/cam/streamid=0",
            1,
            "Transport: RTP/AVP/TCP;interleaved=0-1\r\n",
        ),
        t1,
        &mut host,
        &mut out,
        &mut ev,
    );
    assert_eq!(responses(&out)[0].0, 200, "SETUP without DESCRIBE");
    assert_eq!(s.deadline(), t1 + cfg.session_timeout);
    let t2 = t1 + Duration::from_secs(30);
    s.touch(t2);
    assert!(!s.timed_out(t2 + Duration::from_secs(59)));
    assert!(s.timed_out(t2 + Duration::from_secs(60)));
}

/// A client that sends a request a byte a second (slowloris) is late 10 s after its first byte,
/// and those bytes do not keep the connection alive; a complete message resets the clock, so
/// media arriving in pieces that each end mid-frame is never late.
#[test]
fn an_unfinished_request_is_late_after_the_request_timeout() {
    let now = Instant::now();
    let cfg = SessionConfig::default();
    let mut host = MockHost::default();
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let mut s = Session::new(cfg.clone(), now, 1);
    let opening = b"OPTIONS rtsp://h/live/cam RTSP/1.0\r\nCSeq: 1\r\n";
    for (i, b) in opening.iter().enumerate() {
        let t = now + Duration::from_secs(i as u64);
        s.push(&[*b], t, &mut host, &mut out, &mut ev);
        assert_eq!(s.request_late(t), i >= 10, "byte {i}");
    }
    assert!(out.is_empty());
    assert_eq!(s.deadline(), now + cfg.request_timeout);
    // Completed in time, the next one starts its own clock.
    let mut s = Session::new(cfg.clone(), now, 1);
    let t1 = now + Duration::from_secs(9);
    s.push(
        b"OPTIONS rtsp://h/live/cam RTSP/1.0\r\n",
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(b"CSeq: 1\r\n\r\nOPT", t1, &mut host, &mut out, &mut ev);
    assert_eq!(responses(&out)[0].0, 200);
    assert!(!s.request_late(now + Duration::from_secs(18)));
    assert!(s.request_late(t1 + cfg.request_timeout));
    // Interleaved frames in pieces that each complete one frame and start the next.
    let mut s = Session::new(cfg.clone(), now, 1);
    let frame = |n: u8| {
        let mut v = vec![b'$', 0, 0, 100];
        v.extend(std::iter::repeat_n(n, 100));
        v
    };
    let mut wire = Vec::new();
    for n in 0..40 {
        wire.extend(frame(n));
    }
    for (i, piece) in wire.chunks(150).enumerate() {
        let t = now + Duration::from_secs(i as u64);
        s.push(piece, t, &mut host, &mut out, &mut ev);
        assert!(!s.request_late(t), "piece {i}");
        assert!(!s.timed_out(t), "piece {i}");
    }
}

#[test]
fn shared_streams_fix_the_interleaved_channels() {
    let now = Instant::now();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        ..Default::default()
    };
    let cfg = SessionConfig {
        shared_streams: true,
        ..Default::default()
    };
    let mut s = Session::new(cfg, now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(
        &req("DESCRIBE", "rtsp://h/live/cam", 1, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    s.push(
        &req(
            "SETUP",
            "rtsp://h/live/cam/streamid=1",
            2,
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
        ),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let r = responses(&out);
    assert_eq!(
        hdr(&r[1], "Transport"),
        Some("RTP/AVP/TCP;unicast;interleaved=2-3")
    );
}

#[test]
fn udp_datagrams_swapped_on_the_way_give_the_same_flv() {
    let mut host = MockHost::default();
    let (_, _, ev) = run(&mut host, FFMPEG_PUBLISH, &[FFMPEG_PUBLISH.len()]);
    let (_, sdp, streams) = host.recording.expect("RECORD reached the host");
    let mut data: Vec<(usize, bool, Bytes)> = ev
        .into_iter()
        .filter_map(|e| match e {
            Event::Data { stream, rtcp, data } => Some((stream, rtcp, data)),
            _ => None,
        })
        .collect();
    let flv_of = |data: &[(usize, bool, Bytes)], udp: bool| {
        let mut ingest = FlvIngest::new(Ingest::new(&sdp, &streams).unwrap());
        let (mut out, mut diags) = (Vec::new(), Vec::new());
        let now = Instant::now();
        for (stream, rtcp, d) in data {
            if udp {
                ingest
                    .push_datagram(*stream, *rtcp, d, 0, now, &mut out, &mut diags)
                    .unwrap();
            } else {
                ingest
                    .push(*stream, *rtcp, d, 0, &mut out, &mut diags)
                    .unwrap();
            }
        }
        ingest.flush_datagrams(&mut out, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        out
    };
    let want = flv_of(&data, false);
    // Every third RTP packet changes places with the next one of its stream.
    let mut swapped = 0;
    let mut seen = 0;
    let mut i = 0;
    while i < data.len() {
        if !data[i].1 {
            seen += 1;
            let next = (i + 1..data.len()).find(|&j| data[j].0 == data[i].0 && !data[j].1);
            if let (0, Some(j)) = (seen % 3, next) {
                data.swap(i, j);
                swapped += 1;
                i = j;
            }
        }
        i += 1;
    }
    assert!(swapped >= 5, "{swapped}");
    let got = flv_of(&data, true);
    assert_eq!(count_frames(&got), count_frames(&want));
    // The same frames per track (the FLV interleaving of audio and video may differ: a frame
    // completes when its late packet arrives).
    let frames = |flv: &[u8]| {
        let mut d = Demux::new(None, None, 10.0);
        let (mut ev, mut diags) = (Vec::new(), Vec::new());
        d.push(flv, &mut ev, &mut diags).unwrap();
        d.finish(&mut ev, &mut diags).unwrap();
        let mut f: Vec<(bool, i64, i64, bool, Bytes)> = ev
            .into_iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => {
                    Some((f.track == Track::Video, f.dts, f.pts, f.keyframe, f.data))
                }
                _ => None,
            })
            .collect();
        f.sort_by_key(|x| x.0);
        f
    };
    assert!(frames(&got) == frames(&want), "the same frames");
}

#[test]
fn a_pending_authorization_parks_the_request_and_what_follows_until_unpark() {
    let (want_statuses, want_flv, _) = publish_to_flv(&[FFMPEG_PUBLISH.len()]);
    for sizes in [&[FFMPEG_PUBLISH.len()][..], &[7], &[1, 300, 4096]] {
        let mut host = MockHost {
            park: 1,
            ..Default::default()
        };
        let (mut s, mut out, mut ev) = run(&mut host, FFMPEG_PUBLISH, sizes);
        // OPTIONS is answered; ANNOUNCE and everything after it wait.
        assert!(s.is_parked());
        assert_eq!(responses(&out).len(), 1, "{sizes:?}");
        assert!(ev.is_empty() && host.recording.is_none());
        assert!(host.uris[0].starts_with("rtsp://") && host.uris[0].ends_with("/live/cam"));
        // Pushing more while parked answers nothing.
        s.push(&[], Instant::now(), &mut host, &mut out, &mut ev);
        assert_eq!(responses(&out).len(), 1);
        s.unpark();
        s.push(&[], Instant::now(), &mut host, &mut out, &mut ev);
        assert!(!s.is_parked());
        let statuses: Vec<u16> = responses(&out).iter().map(|r| r.0).collect();
        assert_eq!(statuses, want_statuses, "{sizes:?}");
        let (_, sdp, streams) = host.recording.clone().expect("RECORD reached the host");
        let mut ingest = FlvIngest::new(Ingest::new(&sdp, &streams).unwrap());
        let (mut flv, mut diags) = (Vec::new(), Vec::new());
        for e in ev {
            if let Event::Data { stream, rtcp, data } = e {
                ingest
                    .push(stream, rtcp, &data, 0, &mut flv, &mut diags)
                    .unwrap();
            }
        }
        assert!(flv == want_flv, "{sizes:?}: parking changed the media");
    }
}

#[test]
fn a_parked_request_is_answered_before_a_parse_error_after_it() {
    let mut host = MockHost {
        park: 1,
        user_password: Some("pw".into()),
        ..Default::default()
    };
    let mut input = req("DESCRIBE", "rtsp://h/live/cam?token=1", 1, "");
    input.extend_from_slice(b"GARBAGE\r\n\r\n");
    let (mut s, mut out, mut ev) = run(&mut host, &input, &[input.len()]);
    assert!(out.is_empty() && ev.is_empty());
    assert_eq!(host.uris, ["rtsp://h/live/cam?token=1"]);
    s.unpark();
    s.push(&[], Instant::now(), &mut host, &mut out, &mut ev);
    let r = responses(&out);
    assert_eq!(r.iter().map(|r| r.0).collect::<Vec<_>>(), [404, 400]);
    assert_eq!(hdr(&r[0], "CSeq"), Some("1"));
    assert!(matches!(ev.last(), Some(Event::Close { .. })));
}

#[test]
fn a_request_the_host_cannot_decide_yet_waits_with_what_follows_it() {
    let now = Instant::now();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        verdict: Some(AuthVerdict::Pending),
        ..Default::default()
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let mut input = req("DESCRIBE", "rtsp://h/live/cam", 1, "");
    input.extend_from_slice(&req("OPTIONS", "rtsp://h/live/cam", 2, ""));
    // Cut inside the OPTIONS: the rest comes while the DESCRIBE waits.
    let cut = input.len() - 5;
    s.push(&input[..cut], now, &mut host, &mut out, &mut ev);
    assert!(
        s.is_parked() && out.is_empty(),
        "nothing answered while it waits"
    );
    s.push(&input[cut..], now, &mut host, &mut out, &mut ev);
    s.push(
        &req("OPTIONS", "rtsp://h/live/cam", 3, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    assert!(out.is_empty(), "the OPTIONS wait behind the DESCRIBE");
    s.unpark();
    s.push(&[], now, &mut host, &mut out, &mut ev);
    assert!(s.is_parked() && out.is_empty(), "still undecided");
    host.verdict = None;
    s.unpark();
    s.push(&[], now, &mut host, &mut out, &mut ev);
    assert!(!s.is_parked());
    let r = responses(&out);
    let got: Vec<(u16, Option<&str>)> = r.iter().map(|r| (r.0, hdr(r, "CSeq"))).collect();
    assert_eq!(got, [(200, Some("1")), (200, Some("2")), (200, Some("3"))]);
    assert!(r[0].2.contains("m=video"), "the DESCRIBE's SDP");
    assert_eq!(host.authorized.len(), 3, "asked again on each resume");
    assert!(ev.is_empty(), "{ev:?}");

    // A client that keeps sending behind a waiting request is closed.
    host.verdict = Some(AuthVerdict::Pending);
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(
        &req("DESCRIBE", "rtsp://h/live/cam", 1, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    for i in 0..MAX_PARKED as u32 {
        s.push(
            &req("OPTIONS", "rtsp://h/live/cam", i + 2, ""),
            now,
            &mut host,
            &mut out,
            &mut ev,
        );
    }
    assert!(ev.is_empty() && out.is_empty());
    s.push(
        &req("OPTIONS", "rtsp://h/live/cam", 999, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    assert_eq!(responses(&out)[0].0, 503);
    assert!(matches!(&ev[..], [Event::Close { .. }]), "{ev:?}");
}

#[test]
fn deny_basic_challenges_for_basic_only() {
    let now = Instant::now();
    let mut host = MockHost {
        sdp: Some(sdp_text()),
        verdict: Some(AuthVerdict::DenyBasic),
        ..Default::default()
    };
    let mut s = Session::new(SessionConfig::default(), now, 1);
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    s.push(
        &req("DESCRIBE", "rtsp://h/live/cam", 1, ""),
        now,
        &mut host,
        &mut out,
        &mut ev,
    );
    let r = responses(&out);
    assert_eq!(r[0].0, 401);
    let challenges: Vec<&str> = r[0]
        .1
        .iter()
        .filter(|(n, _)| n == "WWW-Authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(challenges, ["Basic realm=\"river\""]);
}
