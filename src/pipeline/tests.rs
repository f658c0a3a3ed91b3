//! The stages end to end: [`Demux`] into [`TsOut`] or [`FlvOut`].

use super::*;
use crate::format::{flv, ts};

const FLV: &[u8] = include_bytes!("../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");
const TS: &[u8] = include_bytes!("../../tests/fixtures/ts/ffmpeg-lavfi-h264-aac-1s.ts");
const H264: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf3.h264");

/// Runs the whole input side and one output side with the input pushed in pieces of the given
/// sizes (cycled); returns the output bytes and the warnings' text.
fn remux(input: &[u8], sizes: &[usize], ts_out: bool) -> (Vec<u8>, Vec<String>) {
    let mut demux = Demux::new(None, None, 10.0);
    let mut tso = TsOut::new();
    let mut flvo = FlvOut::new();
    let (mut evs, mut diags, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let n = sizes[i % sizes.len()].min(input.len() - pos);
        demux
            .push(&input[pos..pos + n], &mut evs, &mut diags)
            .unwrap();
        pos += n;
        i += 1;
    }
    demux.finish(&mut evs, &mut diags).unwrap();
    for e in &evs {
        if ts_out {
            tso.event(e, &mut out).unwrap();
        } else {
            flvo.event(e, &mut out).unwrap();
        }
    }
    (out, diags.iter().map(|d| d.message.clone()).collect())
}

#[test]
fn output_does_not_depend_on_chunking() {
    for (name, input) in [
        ("flv", FLV),
        ("ts", TS),
        ("h264", H264),
        ("ts-joined-mid-packet", &TS[1..]),
    ] {
        for ts_out in [true, false] {
            let (want, wd) = remux(input, &[input.len()], ts_out);
            assert!(!want.is_empty(), "{name}");
            assert!(wd.is_empty() || name.contains("joined"), "{name}: {wd:?}");
            for sizes in [&[1usize][..], &[7], &[188], &[4096], &[1, 300, 17, 5000, 2]] {
                let (got, gd) = remux(input, sizes, ts_out);
                assert!(
                    got == want,
                    "{name} ts_out={ts_out} sizes {sizes:?}: output differs"
                );
                assert_eq!(gd, wd, "{name} sizes {sizes:?}: warnings differ");
            }
        }
    }
}

#[test]
fn gate_starts_on_a_keyframe_with_configs_first() {
    // Join a TS mid-GOP (a few packets before its second keyframe): the FLV must start with
    // the sequence header and then a keyframe.
    let (ts, _) = remux(H264, &[H264.len()], true);
    let keys: Vec<usize> = (0..ts.len() / 188)
        .map(|i| i * 188)
        .filter(|&o| ts[o + 1] & 0x40 != 0 && ts[o + 3] & 0x20 != 0 && ts[o + 5] & 0x40 != 0)
        .filter(|&o| u16::from_be_bytes([ts[o + 1] & 0x1f, ts[o + 2]]) == ts::PID_VIDEO)
        .collect();
    assert_eq!(keys.len(), 2);
    // (Before the PAT/PMT that precede the keyframe the demuxer knows no streams, so the
    // packets before it are skipped without a word.)
    let (out, _) = remux(&ts[keys[1] - 188 * 10..], &[ts.len()], false);
    let mut r = flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(&out, &mut evs);
    r.finish(&mut evs);
    let mut seen_video_config = false;
    for e in &evs {
        if let flv::FlvEvent::Tag(t) = e {
            if t.kind == flv::TagKind::Video {
                let v = flv::VideoTag::parse(&t.body).unwrap();
                match v.packet {
                    flv::VideoPacket::Avc {
                        packet_type: flv::AvcPacketType::SequenceHeader,
                        ..
                    } => seen_video_config = true,
                    flv::VideoPacket::Avc { .. } => {
                        assert!(seen_video_config);
                        assert_eq!(
                            v.frame_type,
                            flv::VideoFrameType::Key,
                            "first frame is a keyframe"
                        );
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
    panic!("no video frame came out");
}

/// Bytes detection calls opaque are read as Annex B, whose reader skips what precedes the first
/// start code: an H.264 stream behind a few hundred bytes of garbage still comes out whole,
/// however the input arrives (detection now decides such input before its limit).
#[test]
fn opaque_input_is_read_as_annex_b() {
    let mut input = vec![0x20u8; 300];
    input.extend_from_slice(H264);
    assert_eq!(
        crate::format::detect(&input, false),
        Some(crate::media::StreamFormat::Opaque)
    );
    for ts_out in [true, false] {
        let (want, _) = remux(H264, &[H264.len()], ts_out);
        for sizes in [&[input.len()][..], &[1], &[200], &[299, 7, 4096]] {
            let (got, _) = remux(&input, sizes, ts_out);
            assert!(
                got == want,
                "ts_out={ts_out} sizes {sizes:?}: output differs"
            );
        }
    }
}
