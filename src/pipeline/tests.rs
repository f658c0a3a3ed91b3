//! The stages end to end: [`Demux`] into [`TsOut`] or [`FlvOut`].

use super::*;
use crate::format::{flv, ts};

const FLV: &[u8] = include_bytes!("../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");
const TS: &[u8] = include_bytes!("../../tests/fixtures/ts/ffmpeg-lavfi-h264-aac-1s.ts");
const H264: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf3.h264");

/// Runs the whole input side and one output side with the input pushed in pieces of the given
/// sizes (cycled); returns the output bytes and the warnings' text.
fn remux(input: &[u8], sizes: &[usize], ts_out: bool) -> (Vec<u8>, Vec<String>) {
    remux_with(input, sizes, ts_out, false)
}

/// [`remux`], the pieces pushed or (`via_buffer`) appended to [`Demux::input_buffer`], as the
/// tools read stdin.
fn remux_with(
    input: &[u8],
    sizes: &[usize],
    ts_out: bool,
    via_buffer: bool,
) -> (Vec<u8>, Vec<String>) {
    let mut demux = Demux::new(None, None, 10.0);
    let mut tso = TsOut::new();
    let mut flvo = FlvOut::new();
    let (mut evs, mut diags, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let n = sizes[i % sizes.len()].min(input.len() - pos);
        let piece = &input[pos..pos + n];
        if via_buffer {
            demux.input_buffer(n).extend_from_slice(piece);
            demux.push_buffered(&mut evs, &mut diags).unwrap();
        } else {
            demux.push(piece, &mut evs, &mut diags).unwrap();
        }
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
                for via_buffer in [false, true] {
                    let (got, gd) = remux_with(input, sizes, ts_out, via_buffer);
                    assert!(
                        got == want,
                        "{name} ts_out={ts_out} sizes {sizes:?} via_buffer={via_buffer}: output differs"
                    );
                    assert_eq!(gd, wd, "{name} sizes {sizes:?}: warnings differ");
                }
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

const TS_H265: &[u8] = include_bytes!("../../tests/fixtures/ts/ffmpeg-lavfi-h265-aac-1s.ts");
const FLV_H265: &[u8] = include_bytes!("../../tests/fixtures/flv/ffmpeg9-x265-aac-160x120-1s.flv");
const H265: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf2.h265");

/// The media events of a whole input.
fn events(input: &[u8]) -> (Vec<crate::media::MediaEvent>, Vec<String>) {
    let mut demux = Demux::new(None, None, 10.0);
    let (mut evs, mut diags) = (Vec::new(), Vec::new());
    demux.push(input, &mut evs, &mut diags).unwrap();
    demux.finish(&mut evs, &mut diags).unwrap();
    (evs, diags.iter().map(|d| d.message.clone()).collect())
}

fn video_frames(evs: &[crate::media::MediaEvent]) -> Vec<crate::media::Frame> {
    evs.iter()
        .filter_map(|e| match e {
            crate::media::MediaEvent::Frame(f) if f.track == crate::media::Track::Video => {
                Some(f.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn h265_output_does_not_depend_on_chunking() {
    for (name, input) in [("ts", TS_H265), ("flv", FLV_H265), ("h265", H265)] {
        for ts_out in [true, false] {
            let (want, wd) = remux(input, &[input.len()], ts_out);
            assert!(!want.is_empty(), "{name}");
            assert!(wd.is_empty(), "{name}: {wd:?}");
            for sizes in [&[1usize][..], &[7], &[188], &[1, 300, 17, 5000, 2]] {
                for via_buffer in [false, true] {
                    let (got, gd) = remux_with(input, sizes, ts_out, via_buffer);
                    assert!(
                        got == want,
                        "{name} ts_out={ts_out} sizes {sizes:?} via_buffer={via_buffer}: output differs"
                    );
                    assert_eq!(gd, wd, "{name} sizes {sizes:?}: warnings differ");
                }
            }
            let mut x: u64 = 0x0123_4567_89ab_cdef;
            let sizes: Vec<usize> = (0..64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    1 + (x as usize) % 3000
                })
                .collect();
            assert!(
                remux(input, &sizes, ts_out).0 == want,
                "{name}: random chunks"
            );
        }
    }
}

/// The same H.265 access units and timestamps come out of the TS and of ffmpeg 9's Enhanced FLV
/// of it, and survive river's own TS and FLV output read back.
#[test]
fn h265_ts_and_enhanced_flv_agree_and_round_trip() {
    let (ts_ev, _) = events(TS_H265);
    let (flv_ev, _) = events(FLV_H265);
    let a = video_frames(&ts_ev);
    let b = video_frames(&flv_ev);
    assert_eq!((a.len(), b.len()), (25, 25));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.codec, crate::media::Codec::H265);
        assert_eq!(y.codec, crate::media::Codec::H265);
        assert_eq!(x.keyframe, y.keyframe);
        // FLV keeps milliseconds: within 1 ms of the TS's 90 kHz.
        assert!((x.dts - y.dts).abs() <= 90 && (x.pts - y.pts).abs() <= 90);
        // The slices are the same; the TS carries parameter sets and x265's SEI in band, which
        // ffmpeg 9's FLV muxer moved into the hvcC.
        let strip = |d: &[u8]| -> Vec<Vec<u8>> {
            crate::codec::h264::avcc_nals(d, 4)
                .map(|n| n.unwrap().to_vec())
                .filter(|n| crate::codec::h265::nal_type(n) < 32)
                .collect()
        };
        assert!(
            strip(&x.data) == strip(&y.data),
            "slices differ at dts {}",
            x.dts
        );
    }
    for ts_out in [true, false] {
        let (out, wd) = remux(TS_H265, &[TS_H265.len()], ts_out);
        assert!(wd.is_empty(), "{wd:?}");
        let (back, bd) = events(&out);
        assert!(bd.is_empty(), "{bd:?}");
        let c = video_frames(&back);
        assert_eq!(c.len(), a.len());
        for (x, y) in a.iter().zip(&c) {
            assert_eq!(x.keyframe, y.keyframe);
            let tol = if ts_out { 0 } else { 90 };
            assert!((x.pts - x.dts - (y.pts - y.dts)).abs() <= tol);
        }
    }
}

/// HEVC tagged with the legacy FLV codec id 12 (AVC's layout: packet type, composition time,
/// payload) reads like Enhanced FLV `hvc1`.
#[test]
fn legacy_codec_id_12_reads_like_enhanced_hvc1() {
    let mut r = flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(FLV_H265, &mut evs);
    r.finish(&mut evs);
    let mut legacy = Vec::new();
    flv::write_header(true, true, &mut legacy);
    for e in evs {
        let flv::FlvEvent::Tag(t) = e else { continue };
        let mut body = t.body.to_vec();
        if t.kind == flv::TagKind::Video {
            let v = flv::VideoTag::parse(&t.body).unwrap();
            let (key, pt, cts, payload) = match v.packet {
                flv::VideoPacket::Ex {
                    packet_type,
                    cts_ms,
                    payload,
                    ..
                } => (
                    v.frame_type == flv::VideoFrameType::Key,
                    match packet_type {
                        flv::ExVideoPacketType::SequenceStart => 0u8,
                        flv::ExVideoPacketType::CodedFrames
                        | flv::ExVideoPacketType::CodedFramesX => 1,
                        _ => continue,
                    },
                    cts_ms,
                    payload,
                ),
                _ => continue,
            };
            body = vec![if key { 0x1c } else { 0x2c }, pt];
            body.extend_from_slice(&cts.to_be_bytes()[1..]);
            body.extend_from_slice(&payload);
        }
        flv::write_tag(t.kind, t.timestamp, &body, &mut legacy).unwrap();
    }
    let (a, _) = events(FLV_H265);
    let (b, bd) = events(&legacy);
    assert!(bd.is_empty(), "{bd:?}");
    assert_eq!(video_frames(&a), video_frames(&b));
    assert_eq!(video_frames(&b).len(), 25);
}

/// A TS joined after its first keyframe starts at a CRA picture: its RASL pictures are dropped
/// (with one warning), the rest comes out, starting on the CRA.
#[test]
fn h265_ts_joined_at_a_cra_drops_its_rasl_pictures() {
    let (all, _) = events(TS_H265);
    let all = video_frames(&all);
    // Cut where the second keyframe's PES starts (PAT/PMT follow every keyframe's too).
    let keys: Vec<usize> = (0..TS_H265.len() / 188)
        .map(|i| i * 188)
        .filter(|&o| {
            let p = &TS_H265[o..];
            u16::from_be_bytes([p[1] & 0x1f, p[2]]) == ts::PID_VIDEO
                && p[1] & 0x40 != 0
                && p[3] & 0x20 != 0
                && p[5] & 0x40 != 0
        })
        .collect();
    assert!(keys.len() >= 2, "{keys:?}");
    let (ev, diags) = events(&TS_H265[keys[1] - 376..]);
    let got = video_frames(&ev);
    assert!(got[0].keyframe);
    let t = |f: &crate::media::Frame| crate::codec::h265::au_picture_type(&f.data).unwrap();
    assert_eq!(t(&got[0]), crate::codec::h265::nal_types::CRA);
    let skip = all.iter().position(|f| f.keyframe && f.dts > 0).unwrap();
    let rasl = all[skip + 1..]
        .iter()
        .take_while(|f| crate::codec::h265::is_rasl(t(f)))
        .count();
    assert_eq!(rasl, 2);
    assert_eq!(got.len(), all.len() - skip - rasl);
    assert!(got[1..]
        .iter()
        .take_while(|f| !f.keyframe)
        .all(|f| !crate::codec::h265::is_rasl(t(f))));
    assert!(
        diags.iter().any(|d| d.contains("dropped 2 RASL pictures")),
        "{diags:?}"
    );
}

/// The H.264 fixture as MPEG-TS whose PMT also lists `extra` streams (pid, stream_type) that carry
/// nothing.
fn ts_with_extra_streams(extra: &[(u16, u8)]) -> Vec<u8> {
    let (evs, _) = events(H264);
    let mut streams = vec![ts::MuxStream {
        pid: ts::PID_VIDEO,
        stream_type: ts::STREAM_TYPE_H264,
        stream_id: ts::STREAM_ID_VIDEO,
    }];
    for &(pid, stream_type) in extra {
        streams.push(ts::MuxStream {
            pid,
            stream_type,
            stream_id: 0xBD,
        });
    }
    let mut m = ts::TsMuxer::new(streams, ts::PID_VIDEO);
    let mut cfg = None;
    let mut out = Vec::new();
    for e in &evs {
        match e {
            crate::media::MediaEvent::Video(c) => cfg = Some(c.clone()),
            crate::media::MediaEvent::Frame(f) => {
                let mut pes = Vec::new();
                crate::codec::h264::write_annexb_au(
                    &f.data,
                    cfg.as_ref().unwrap(),
                    f.keyframe,
                    &mut pes,
                );
                let t = |v: i64| (v + 90_000) as u64;
                m.write_pes(
                    ts::PID_VIDEO,
                    t(f.pts),
                    Some(t(f.dts)),
                    f.keyframe,
                    &pes,
                    &mut out,
                )
                .unwrap();
            }
            _ => {}
        }
    }
    out
}

#[test]
fn data_streams_are_ignored_with_one_line() {
    let input = ts_with_extra_streams(&[(0x102, 0x86), (0x103, 0x06)]);
    let (evs, diags) = events(&input);
    assert_eq!(video_frames(&evs).len(), 50);
    assert_eq!(
        diags,
        ["ignoring MPEG-TS data streams: pid 0x102 type 0x86 (SCTE-35 cues), pid 0x103 type 0x06 (private data, such as subtitles or teletext)"]
    );
}

#[test]
fn unsupported_audio_or_video_streams_fail_unless_dropped() {
    for (stream_type, name) in [
        (0x02, "unsupported video codec MPEG-2 video"),
        (0x81, "unsupported audio codec AC-3"),
        (0x1b, "a second video stream (H.264)"),
    ] {
        let input = ts_with_extra_streams(&[(0x104, stream_type)]);
        let mut demux = Demux::new(None, None, 10.0);
        let (mut evs, mut diags) = (Vec::new(), Vec::new());
        let e = demux.push(&input, &mut evs, &mut diags).unwrap_err();
        assert!(e.message.starts_with(name), "{e}");
        assert!(e.message.contains("pid 0x104"), "{e}");
        assert!(e.message.contains("--drop-unsupported"), "{e}");
        // The PMT is in the first packets: the error names its offset.
        assert!(e.offset < 188 * 3, "{e}");

        let mut demux = Demux::new(None, None, 10.0);
        demux.set_drop_unsupported(true);
        let (mut evs, mut diags) = (Vec::new(), Vec::new());
        demux.push(&input, &mut evs, &mut diags).unwrap();
        demux.finish(&mut evs, &mut diags).unwrap();
        assert_eq!(video_frames(&evs).len(), 50);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("dropped (--drop-unsupported)"));
    }
}
