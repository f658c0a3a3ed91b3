//! Arbitrary bytes in arbitrary chunks through the RTSP request parser and a whole server session
//! (with a host that allows everything, after making requests for paths with `wait` in them wait
//! until the end: a parked request and what follows it): no panic, and the same messages,
//! responses and events whatever the chunking.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use river::proto::rtsp::session::{
    Access, AuthVerdict, Event, Host, RtpInfo, Session, SessionConfig, StreamSetup,
};
use river::proto::rtsp::{Credentials, Message, Reader};
use river::proto::sdp::Sdp;

struct AllowAll {
    /// Requests for paths with `wait` in them are parked until this is set.
    open: bool,
}

const SDP: &str = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr;config=1210\r\na=control:trackID=1\r\n";

impl Host for AllowAll {
    fn authorize(&mut self, _: Access, path: &str, _uri: &str, c: &Credentials) -> AuthVerdict {
        if !self.open && path.contains("wait") {
            AuthVerdict::Pending
        } else if c.check("pw") || matches!(c, Credentials::None) {
            AuthVerdict::Allow
        } else {
            AuthVerdict::Deny
        }
    }
    fn describe(&mut self, _: &str) -> Result<String, u16> {
        Ok(SDP.to_string())
    }
    fn record(&mut self, _: &str, _: &str, sdp: &Sdp, s: &[StreamSetup]) -> Result<(), u16> {
        let _ = river::proto::rtp::ingest::Ingest::new(sdp, s);
        Ok(())
    }
    fn play(&mut self, _: &str, _: &Sdp, s: &[StreamSetup]) -> Result<Vec<RtpInfo>, u16> {
        Ok(vec![RtpInfo::default(); s.len()])
    }
    fn udp_ports(&self) -> Option<(u16, u16)> {
        Some((7000, 7001))
    }
}

fn parse(chunks: &[&[u8]]) -> (Vec<Message>, Option<u16>) {
    let mut r = Reader::new();
    let mut out = Vec::new();
    for c in chunks {
        if let Err(e) = r.push(c, &mut out) {
            return (out, Some(e.status));
        }
    }
    (out, None)
}

fn session(chunks: &[&[u8]], now: Instant) -> (Vec<u8>, Vec<Event>) {
    let mut s = Session::new(SessionConfig::default(), now, 1).with_session_id("1");
    let (mut out, mut ev) = (Vec::new(), Vec::new());
    let mut host = AllowAll { open: false };
    for c in chunks {
        s.push(c, now, &mut host, &mut out, &mut ev);
    }
    host.open = true;
    s.unpark();
    s.push(&[], now, &mut host, &mut out, &mut ev);
    assert!(!s.is_parked());
    (out, ev)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(n).max(1);
    let chunks: Vec<&[u8]> = stream.chunks(size).collect();
    assert_eq!(parse(&chunks), parse(&[stream]));
    let now = Instant::now();
    let (out_a, ev_a) = session(&chunks, now);
    let (out_b, ev_b) = session(&[stream], now);
    // Nonces differ between sessions (fresh secrets); compare everything else.
    let strip = |o: &[u8]| -> Vec<u8> {
        String::from_utf8_lossy(o)
            .lines()
            .filter(|l| !l.starts_with("WWW-Authenticate") && !l.starts_with("Transport") && !l.starts_with("RTP-Info"))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()
    };
    assert_eq!(strip(&out_a), strip(&out_b));
    assert_eq!(ev_a, ev_b);
    if let Ok(s) = std::str::from_utf8(stream) {
        if let Ok(sdp) = Sdp::parse(s) {
            for m in &sdp.media {
                let _ = m.codec();
            }
        }
        let _ = river::proto::rtsp::auth::parse_authorization(s, "DESCRIBE");
        let _ = river::proto::rtsp::transport::parse(s);
    }
});
