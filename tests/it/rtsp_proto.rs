//! The RTSP/RTP protocol cores (river::proto::{rtsp, rtp, sdp}) against real peers, before the
//! hub carries them: a minimal blocking RTSP server in this file (one thread per connection, one
//! recorded channel in memory) drives `Session`, `Ingest` + `FlvOut` for a publisher and `RtpView`
//! for players. ffmpeg publishes over RTSP/TCP with Digest authentication, then ffmpeg and
//! GStreamer's rtspsrc play the recording back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::common::rtsp::{finish_gst, gst_launch, require_gst, Log};
use crate::common::*;
use river::media::StreamFormat;
use river::pipeline::FlvOut;
use river::proto::rtp::ingest::Ingest;
use river::proto::rtp::view::{RtpView, ViewPacket};
use river::proto::rtsp::{
    Access, AuthVerdict, Credentials, Event, Host, RtpInfo, Session, SessionConfig, StreamSetup,
};
use river::proto::sdp::Sdp;
use river::proto::util::random_u64;

const USER: &str = "live";
const PASSWORD: &str = "s3cret";

#[derive(Default)]
struct Channel {
    flv: Vec<u8>,
    publishers: usize,
}

struct ConnHost {
    channel: Arc<Mutex<Channel>>,
    ingest: Option<Ingest>,
    view: Option<(RtpView, Vec<ViewPacket>)>,
    play: bool,
}

impl Host for ConnHost {
    fn authorize(
        &mut self,
        access: Access,
        path: &str,
        _uri: &str,
        creds: &Credentials,
    ) -> AuthVerdict {
        if path != "live/cam" {
            return AuthVerdict::NotFound;
        }
        match access {
            Access::Play => AuthVerdict::Allow,
            Access::Publish if creds.user() == Some(USER) && creds.check(PASSWORD) => {
                AuthVerdict::Allow
            }
            Access::Publish => AuthVerdict::Deny,
        }
    }

    fn describe(&mut self, _path: &str) -> Result<String, u16> {
        let flv = self.channel.lock().unwrap().flv.clone();
        let mut v = RtpView::new(Some(StreamFormat::Flv), random_u64());
        let mut packets = Vec::new();
        let (now, wall) = (Instant::now(), SystemTime::now());
        v.push(&flv, now, wall, &mut packets);
        v.finish(now, wall, &mut packets);
        let sdp = v.sdp("127.0.0.1", "live/cam").ok_or(404u16)?;
        self.view = Some((v, packets));
        Ok(sdp)
    }

    fn record(
        &mut self,
        _uri: &str,
        _path: &str,
        sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<(), u16> {
        self.ingest = Some(Ingest::new(sdp, streams).map_err(|_| 415u16)?);
        self.channel.lock().unwrap().publishers += 1;
        Ok(())
    }

    fn play(
        &mut self,
        _path: &str,
        _sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<Vec<RtpInfo>, u16> {
        let (v, packets) = self.view.as_ref().ok_or(455u16)?;
        let info = v.rtp_info(packets.iter().map(|p| &p.data[..]));
        self.play = true;
        Ok(streams
            .iter()
            .map(|s| {
                let (seq, rtptime) = info.get(s.index).copied().unwrap_or_default();
                RtpInfo { seq, rtptime }
            })
            .collect())
    }

    fn udp_ports(&self) -> Option<(u16, u16)> {
        None
    }
}

fn serve(mut sock: TcpStream, channel: Arc<Mutex<Channel>>) {
    let cfg = SessionConfig {
        shared_streams: true,
        ..Default::default()
    };
    let mut session = Session::new(cfg, Instant::now(), 1);
    let mut host = ConnHost {
        channel: channel.clone(),
        ingest: None,
        view: None,
        play: false,
    };
    let mut flv = FlvOut::new();
    let mut started = false;
    let (mut media, mut diags) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 65536];
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    loop {
        let n = match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (mut out, mut events) = (Vec::new(), Vec::new());
        session.push(&buf[..n], Instant::now(), &mut host, &mut out, &mut events);
        if sock.write_all(&out).is_err() {
            break;
        }
        let mut close = false;
        for e in events {
            match e {
                Event::Data { stream, rtcp, data } => {
                    let Some(ing) = host.ingest.as_mut() else {
                        continue;
                    };
                    if !started {
                        started = true;
                        ing.start(&mut media);
                    }
                    if rtcp {
                        ing.push_rtcp(stream, &data);
                    } else {
                        ing.push_rtp(stream, &data, 0, &mut media, &mut diags);
                    }
                }
                Event::Close { .. } => close = true,
                Event::Pause | Event::Teardown => {}
            }
        }
        if !media.is_empty() {
            let mut bytes = Vec::new();
            for m in media.drain(..) {
                flv.event(&m, &mut bytes).unwrap();
            }
            channel.lock().unwrap().flv.extend_from_slice(&bytes);
        }
        if host.play {
            host.play = false;
            let (v, packets) = host.view.as_ref().unwrap();
            let mut all = Vec::new();
            for sr in v.join_sender_reports(packets.iter().map(|p| &p.data[..]), SystemTime::now())
            {
                all.extend_from_slice(&sr);
            }
            for p in packets {
                all.extend_from_slice(&p.data);
            }
            for b in v.byes(SystemTime::now()) {
                all.extend_from_slice(&b);
            }
            if sock.write_all(&all).is_err() {
                break;
            }
        }
        if close {
            break;
        }
    }
    assert!(diags.is_empty(), "ingest warnings: {diags:?}");
}

fn start_server() -> (u16, Arc<Mutex<Channel>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let channel = Arc::new(Mutex::new(Channel::default()));
    let ch = channel.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            let ch = ch.clone();
            std::thread::spawn(move || serve(s, ch));
        }
    });
    (port, channel)
}

fn ffmpeg_status(args: &[&str]) -> Out {
    require("ffmpeg");
    let mut full = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    full.extend_from_slice(args);
    run(Path::new("ffmpeg"), &full, b"")
}

/// Without B-frames: ffmpeg 5.1 reading H.264 with B-frames from RTSP gives the first access unit
/// no PTS (its h264 parser's doing, whichever server sends it), which `-c copy -f flv` refuses.
const CLIP: Clip = Clip {
    width: 320,
    height: 240,
    fps: 25,
    bframes: 0,
    audio: true,
    gop_secs: 1,
    secs: 3,
};

#[test]
fn ffmpeg_publishes_with_digest_then_ffmpeg_and_gstreamer_play() {
    let src = CLIP.flv();
    let (port, channel) = start_server();
    let s = src.to_string_lossy().to_string();
    // Wrong password: 401, ffmpeg gives up.
    let bad = format!("rtsp://{USER}:wrong@127.0.0.1:{port}/live/cam");
    let out = ffmpeg_status(&[
        "-i",
        &s,
        "-c",
        "copy",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        &bad,
    ]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    // UDP is not offered by this server: 461.
    let url = format!("rtsp://{USER}:{PASSWORD}@127.0.0.1:{port}/live/cam");
    let out = ffmpeg_status(&[
        "-i",
        &s,
        "-c",
        "copy",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "udp",
        &url,
    ]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("461"), "{}", out.stderr);
    // The real push (ffmpeg picks Digest).
    let out = ffmpeg_status(&[
        "-i",
        &s,
        "-c",
        "copy",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        &url,
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    std::thread::sleep(Duration::from_millis(300));
    let flv = channel.lock().unwrap().flv.clone();
    assert_eq!(channel.lock().unwrap().publishers, 1);
    let recorded = write_tmp("rtsp-proto-recorded.flv", &flv);
    let want = probe_streams(&src);
    let got = probe_streams(&recorded);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].codec, "h264");
    assert_eq!(
        got[0].packets, want[0].packets,
        "every video frame was recorded"
    );
    // ffmpeg's RTP muxer drops the AAC frames it is still aggregating when it stops.
    assert!(
        got[1].packets + 8 >= want[1].packets && got[1].packets <= want[1].packets,
        "audio {} of {}",
        got[1].packets,
        want[1].packets
    );
    assert_decodes_cleanly(&recorded);

    // ffmpeg plays it back over TCP.
    let play_url = format!("rtsp://127.0.0.1:{port}/live/cam");
    let played = tmpdir().join("rtsp-proto-played.flv");
    let p = played.to_string_lossy().to_string();
    let out = ffmpeg_status(&[
        "-rtsp_transport",
        "tcp",
        "-i",
        &play_url,
        "-c",
        "copy",
        "-f",
        "flv",
        &p,
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let back = probe_streams(&played);
    assert_eq!(back[0].packets, got[0].packets, "every video frame played");
    assert_eq!(back[1].packets, got[1].packets, "every audio frame played");
    assert_decodes_cleanly(&played);
    let pk = probe_packets(&played);
    assert!(
        pk.iter().find(|p| p.kind == "video").unwrap().key,
        "starts on a keyframe"
    );

    // GStreamer plays it as an independent client and decodes every frame.
    require_gst();
    let pipeline = format!(
        "rtspsrc location={play_url} protocols=tcp name=src src. ! rtph264depay ! h264parse ! avdec_h264 ! fakesink src. ! rtpmp4gdepay ! aacparse ! avdec_aac ! fakesink"
    );
    let gst = gst_launch(&pipeline);
    finish_gst(gst, "GStreamer rtspsrc", &Log::default());
}
