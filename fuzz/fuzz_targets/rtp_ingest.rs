//! Arbitrary interleaved RTP/RTCP records through a publisher's ingest (H.264 + AAC, as RTSP
//! ANNOUNCE/SETUP set it up) into FLV: no panic, output bounded by the input, and the FLV parses
//! with river's own reader (no warning, every audio/video tag body parses, DTS per track never
//! goes back).
//!
//! Input: one byte choosing the SDP (bit 0: ffmpeg's, with sprop-parameter-sets; else none), then
//! records of one byte (bits 0-1: stream, bit 2: RTCP), a 16-bit big-endian length and the packet
//! (the interleaved frame of RTSP/TCP without its `$`).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use river::format::flv::{AudioTag, FlvEvent, FlvReader, TagKind, VideoTag};
use river::proto::rtp::ingest::{FlvIngest, Ingest};
use river::proto::rtsp::{Lower, StreamSetup, Transport};
use river::proto::sdp::Sdp;

/// What ffmpeg 5.1 announces (tests/fixtures/rtsp/ffmpeg-publish-tcp.c2s.bin).
const SDP_FFMPEG: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z/QAC5GbKFCPxOAiAAADAAIAAAMAeB4oUyw=,aOvjxEhE; profile-level-id=F4000B\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:69\r\na=rtpmap:97 MPEG4-GENERIC/44100/1\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=120856E500\r\na=control:streamid=1\r\n";
/// No parameter sets: the video configuration comes in band.
const SDP_BARE: &str = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr;config=1210\r\na=control:trackID=1\r\n";

fn ingest(sdp: &str) -> FlvIngest {
    let sdp = Sdp::parse(sdp).unwrap();
    let streams: Vec<StreamSetup> = (0..2)
        .map(|i| StreamSetup {
            index: i,
            control: sdp.media[i].control.clone().unwrap_or_default(),
            transport: Transport {
                lower: Lower::Tcp {
                    interleaved: (2 * i as u8, 2 * i as u8 + 1),
                },
                record: true,
                ssrc: None,
            },
            ssrc: 0,
            seq: 0,
            rtptime: 0,
        })
        .collect();
    FlvIngest::new(Ingest::new(&sdp, &streams).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut ing = ingest(if mode & 1 == 1 { SDP_FFMPEG } else { SDP_BARE });
    let (mut flv, mut diags) = (Vec::new(), Vec::new());
    let mut at = 1u64;
    while rest.len() >= 3 {
        let (h, len) = (rest[0], usize::from(u16::from_be_bytes([rest[1], rest[2]])));
        let body = &rest[3..];
        let pkt = &body[..len.min(body.len())];
        rest = &body[pkt.len()..];
        let before = flv.len();
        let r = ing.push(usize::from(h & 3), h & 4 != 0, pkt, at, &mut flv, &mut diags);
        assert!(r.is_ok(), "{r:?}");
        // One packet completes at most one unit per track plus the headers and configurations.
        assert!(
            flv.len() - before <= 2 * 16 * 1024 * 1024 + 64 * 1024,
            "{} FLV bytes from one packet",
            flv.len() - before
        );
        at += 3 + pkt.len() as u64;
        if diags.len() > 10_000 {
            diags.clear();
        }
    }
    assert!(
        flv.len() <= 8 * data.len() + 64 * 1024,
        "{} FLV bytes from {} input bytes",
        flv.len(),
        data.len()
    );
    if flv.is_empty() {
        return;
    }
    let mut r = FlvReader::new();
    let mut ev = Vec::new();
    r.push(&flv, &mut ev);
    r.finish(&mut ev);
    let mut last = [None::<u32>; 2];
    let mut header = false;
    for e in ev {
        match e {
            FlvEvent::Header { offset, .. } => {
                assert_eq!(offset, 0);
                header = true;
            }
            FlvEvent::Warning(w) => panic!("FLV from the ingest: {w:?}"),
            FlvEvent::Tag(t) => {
                let body = Bytes::from(t.body.to_vec());
                let i = match t.kind {
                    TagKind::Video => {
                        VideoTag::parse(&body).unwrap();
                        0
                    }
                    TagKind::Audio => {
                        AudioTag::parse(&body).unwrap();
                        1
                    }
                    TagKind::Script => continue,
                    TagKind::Other(k) => panic!("tag type {k}"),
                };
                if let Some(l) = last[i] {
                    assert!(t.timestamp >= l, "track {i}: DTS {} after {l}", t.timestamp);
                }
                last[i] = Some(t.timestamp);
            }
        }
    }
    assert!(header);
});
