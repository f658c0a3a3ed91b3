//! river-rtsp-pull's pure parts: URLs with credentials (no panic; the redacted forms never grow),
//! and the continuity stage fed arbitrary sessions, configurations and timestamps (no panic;
//! output DTS strictly increases per track, PTS >= DTS).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use river::camera::{redact_str, CameraUrl, Ingest};
use river::media::{AudioConfig, MediaEvent, Track, VideoConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        assert!(redact_str(s).len() <= s.len());
        if let Ok(u) = CameraUrl::parse(s) {
            let _ = u.redacted();
            assert!(u.url.password().is_none() && u.url.username().is_empty());
        }
    }

    let mut ing = Ingest::new();
    let mut out = Vec::new();
    let mut last = [i64::MIN; 2];
    let mut ts: i64 = 0;
    for op in data.chunks(4) {
        let [kind, a, b, c] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0), *op.get(3).unwrap_or(&0)];
        let step = i16::from_be_bytes([a, b]) as i64 * (1 + c as i64 % 64);
        ts = ts.saturating_add(step);
        match kind % 8 {
            0 => ing.begin_session(kind & 0x10 != 0, kind & 0x20 != 0),
            1 => ing.video_config(VideoConfig {
                codec: river::media::VideoCodec::H264,
                vps: vec![],
                sps: vec![Bytes::from_static(b"\x67")],
                pps: vec![Bytes::from_static(b"\x68")],
                width: 16,
                height: 16,
                frame_rate: None,
            }),
            2 => ing.audio_config(AudioConfig {
                asc: Bytes::from_static(&[0x11, 0x90]),
                object_type: 2,
                sample_rate: [0, 8000, 48000, 96000][(c % 4) as usize],
                channels: 2,
            }),
            3 | 4 | 5 => {
                ing.frame(Track::Video, ts, kind & 0x40 != 0, Bytes::new(), &mut out);
            }
            _ => {
                ing.frame(Track::Audio, ts, true, Bytes::new(), &mut out);
            }
        }
    }
    for e in &out {
        if let MediaEvent::Frame(f) = e {
                let i = (f.track == Track::Audio) as usize;
                assert!(f.dts > last[i], "{:?} DTS {} after {}", f.track, f.dts, last[i]);
                assert!(f.pts >= f.dts);
                last[i] = f.dts;
        }
    }
});
