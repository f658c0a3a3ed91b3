//! Arbitrary broadcast bytes (FLV, MPEG-TS, Annex B or detected) in arbitrary chunks through the
//! RTSP play side's [`RtpView`]: no panic, output bounded by the input, and every packet is one
//! whole interleaved frame (`view::unframe` takes all of it) carrying a parseable RTP packet (even
//! channels) or RTCP (odd channels); the SDP parses once the view is ready.
//!
//! Input: a mode byte (bits 0-1: 0 detect, 1 FLV, 2 TS, 3 H.264), a chunk size byte, then the
//! broadcast bytes.
#![no_main]

use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use river::media::StreamFormat;
use river::proto::rtp::view::{unframe, RtpView, ViewPacket};
use river::proto::rtp::Packet;
use river::proto::sdp::Sdp;

fn check(v: &RtpView, out: &[ViewPacket]) {
    for p in out {
        let (ch, pkt) = unframe(&p.data).expect("an interleaved frame");
        assert_eq!(pkt.len() + 4, p.data.len(), "length field of channel {ch}");
        assert_eq!(p.rtcp, ch % 2 == 1);
        assert!(usize::from(ch / 2) < v.tracks());
        if p.rtcp {
            assert!(!river::proto::rtp::rtcp::parse(pkt).is_empty());
        } else {
            Packet::parse(pkt).expect("an RTP packet");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, chunk, stream @ ..] = data else {
        return;
    };
    let input = match mode & 3 {
        0 => None,
        1 => Some(StreamFormat::Flv),
        2 => Some(StreamFormat::Ts),
        _ => Some(StreamFormat::AnnexB),
    };
    let mut v = RtpView::new(input, 1);
    let t0 = Instant::now();
    let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut out = Vec::new();
    let mut total = 0usize;
    let chunks = stream.chunks(usize::from(*chunk).max(1));
    let n = chunks.len() as u64;
    for (i, c) in chunks.enumerate() {
        let step = Duration::from_millis(100 * i as u64);
        v.push(c, t0 + step, w0 + step, &mut out);
        check(&v, &out);
        total += out.iter().map(|p| p.data.len()).sum::<usize>();
        out.clear();
        let _ = v.take_diags();
    }
    let end = Duration::from_millis(100 * n);
    v.finish(t0 + end, w0 + end, &mut out);
    check(&v, &out);
    total += out.iter().map(|p| p.data.len()).sum::<usize>();
    // Headers per packet and sender reports: a few times the input at most.
    assert!(
        total <= 8 * stream.len() + 64 * 1024,
        "{total} bytes of RTP from {} input bytes",
        stream.len()
    );
    if v.ready() {
        let sdp = v.sdp("127.0.0.1", "live/cam").expect("an SDP when ready");
        let sdp = Sdp::parse(&sdp).expect("the view's SDP parses");
        assert_eq!(sdp.media.len(), v.tracks());
        for m in &sdp.media {
            m.codec().expect("a codec river writes");
        }
        for b in v.sender_reports(w0).iter().chain(v.byes(w0).iter()) {
            let (ch, pkt) = unframe(b).unwrap();
            assert_eq!(ch % 2, 1);
            assert_eq!(pkt.len() + 4, b.len());
        }
    }
});
