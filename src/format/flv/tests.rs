use super::*;
use amf::amf0::Value;
use bytes::Bytes;

const FIXTURE: &[u8] = include_bytes!("../../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");

/// `ffprobe -show_packets` of the fixture: (video?, dts, pts, pos).
const V: bool = true;
const A: bool = false;
#[rustfmt::skip]
const PROBE: &[(bool, u32, u32, u64)] = &[
    (V, 0, 67, 410), (V, 34, 100, 2891), (A, 44, 44, 3067), (V, 67, 134, 3342),
    (A, 67, 67, 3494), (A, 90, 90, 3769), (V, 100, 167, 3932), (A, 113, 113, 4044),
    (V, 134, 200, 4247), (A, 137, 137, 4393), (A, 160, 160, 4632), (V, 167, 234, 4835),
    (A, 183, 183, 4945), (V, 200, 267, 5168), (A, 206, 206, 5320), (A, 230, 230, 5536),
    (V, 234, 300, 5789), (A, 253, 253, 5922), (V, 267, 334, 6147), (A, 276, 276, 6295),
    (A, 299, 299, 6550), (V, 300, 367, 6789), (A, 322, 322, 6915), (V, 334, 400, 7143),
    (A, 346, 346, 7307), (V, 367, 434, 7477), (A, 369, 369, 7569), (A, 392, 392, 7777),
    (V, 400, 467, 8002), (A, 415, 415, 8161), (V, 434, 500, 8366), (A, 439, 439, 8471),
    (A, 462, 462, 8658), (V, 467, 534, 8896), (A, 485, 485, 9052), (V, 500, 567, 9316),
    (A, 508, 508, 9451), (A, 531, 531, 9670), (V, 534, 600, 9873), (A, 555, 555, 10030),
    (V, 567, 634, 10243), (A, 578, 578, 10386), (V, 600, 667, 10603), (A, 601, 601, 10701),
    (A, 624, 624, 10888), (V, 634, 700, 11077), (A, 647, 647, 11232), (V, 667, 734, 11455),
    (A, 671, 671, 11560), (A, 694, 694, 11785), (V, 700, 767, 12019), (A, 717, 717, 12189),
    (V, 734, 800, 12458), (A, 740, 740, 12576), (A, 764, 764, 12764), (V, 767, 834, 12987),
    (A, 787, 787, 13144), (V, 800, 867, 13398), (A, 810, 810, 13492), (A, 833, 833, 13719),
    (V, 834, 900, 13902), (A, 856, 856, 14051), (V, 867, 934, 14234), (A, 880, 880, 14334),
    (V, 900, 967, 14528), (A, 903, 903, 14654), (A, 926, 926, 14859), (V, 934, 1000, 15069),
    (A, 949, 949, 15160), (V, 967, 1034, 15372), (A, 973, 973, 15480), (A, 996, 996, 15708),
    (A, 1019, 1019, 15974), (A, 1042, 1042, 16186), (A, 1065, 1065, 16460),
];

fn parse_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max: u32) -> Vec<FlvEvent> {
    let mut r = FlvReader::with_max_tag_size(max);
    let mut out = Vec::new();
    for c in chunks {
        r.push(c, &mut out);
    }
    r.finish(&mut out);
    out
}

/// As [`parse_chunks`], each chunk appended to the reader's own buffer and parsed there.
fn parse_buffered<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, max: u32) -> Vec<FlvEvent> {
    let mut r = FlvReader::with_max_tag_size(max);
    let mut out = Vec::new();
    for c in chunks {
        r.input_buffer(c.len()).extend_from_slice(c);
        r.parse_buffered(&mut out);
    }
    r.finish(&mut out);
    out
}

fn parse(data: &[u8]) -> Vec<FlvEvent> {
    parse_chunks([data], DEFAULT_MAX_TAG_SIZE)
}

fn tags(events: &[FlvEvent]) -> Vec<&Tag> {
    events
        .iter()
        .filter_map(|e| match e {
            FlvEvent::Tag(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn warnings(events: &[FlvEvent]) -> Vec<&crate::error::Diag> {
    events
        .iter()
        .filter_map(|e| match e {
            FlvEvent::Warning(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// Every two-piece split, 1-byte pushes and a few odd chunk sizes give the one-shot result.
fn assert_chunking_invariant(data: &[u8], max: u32) -> Vec<FlvEvent> {
    let whole = parse_chunks([data], max);
    for i in 0..=data.len() {
        let (a, b) = data.split_at(i);
        assert_eq!(parse_chunks([a, b], max), whole, "split at {i}");
    }
    assert_eq!(parse_chunks(data.chunks(1), max), whole, "1-byte pushes");
    for n in [2, 3, 7, 11, 15, 100, 4096] {
        assert_eq!(parse_chunks(data.chunks(n), max), whole, "{n}-byte pushes");
    }
    // Reading straight into the reader's buffer, in any chunks, is the same.
    for n in [1, 7, 100, 4096, data.len().max(1)] {
        assert_eq!(parse_buffered(data.chunks(n), max), whole, "{n}-byte reads");
    }
    whole
}

/// Offsets of the fixture's tags (walking the size fields).
fn fixture_tag_offsets() -> Vec<usize> {
    let mut v = Vec::new();
    let mut p = 13;
    while p + 11 <= FIXTURE.len() {
        v.push(p);
        let size = u32::from_be_bytes([0, FIXTURE[p + 1], FIXTURE[p + 2], FIXTURE[p + 3]]) as usize;
        p += 11 + size + 4;
    }
    v
}

#[test]
fn fixture_matches_ffprobe() {
    let ev = parse(FIXTURE);
    assert_eq!(
        ev[0],
        FlvEvent::Header {
            audio: true,
            video: true,
            offset: 0
        }
    );
    assert!(warnings(&ev).is_empty(), "{:?}", warnings(&ev));
    let all = tags(&ev);
    assert_eq!(all.len(), 79);
    assert_eq!(ev.len(), 80);
    assert_eq!(all[0].kind, TagKind::Script);
    let mut packets = Vec::new();
    let (mut avc_config, mut asc, mut eos) = (0, 0, 0);
    for t in &all {
        assert_eq!(t.stream_id, 0);
        match t.kind {
            TagKind::Video => {
                let v = VideoTag::parse(&t.body).unwrap();
                let VideoPacket::Avc {
                    packet_type,
                    cts_ms,
                    payload,
                } = v.packet
                else {
                    panic!("not avc: {v:?}")
                };
                match packet_type {
                    AvcPacketType::SequenceHeader => {
                        avc_config += 1;
                        assert_eq!(payload[0], 1, "avcC configurationVersion");
                    }
                    AvcPacketType::Nalu => {
                        let pts = (t.timestamp as i64 + cts_ms as i64) as u32;
                        packets.push((V, t.timestamp, pts, t.offset));
                        // The payload is AVCC: the first NAL length fits.
                        let n =
                            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        assert!(n as usize + 4 <= payload.len());
                        let key = v.frame_type == VideoFrameType::Key;
                        assert_eq!(key, t.offset == 410, "only the first frame is a keyframe");
                    }
                    AvcPacketType::EndOfSequence => {
                        eos += 1;
                        assert!(payload.is_empty());
                    }
                }
            }
            TagKind::Audio => {
                let a = AudioTag::parse(&t.body).unwrap();
                assert_eq!(
                    (a.sound_format, a.sound_rate, a.sound_size, a.sound_type),
                    (10, 3, 1, 1)
                );
                let AudioPacket::Aac {
                    packet_type,
                    payload,
                } = a.packet
                else {
                    panic!("not aac")
                };
                match packet_type {
                    AacPacketType::SequenceHeader => {
                        asc += 1;
                        // AAC LC, 44100 Hz (index 4), mono, then ffmpeg's SBR sync extension.
                        assert_eq!(&payload[..], &[0x12, 0x08, 0x56, 0xE5, 0x00]);
                    }
                    AacPacketType::Raw => packets.push((A, t.timestamp, t.timestamp, t.offset)),
                }
            }
            TagKind::Script => {}
            TagKind::Other(n) => panic!("tag type {n}"),
        }
    }
    assert_eq!((avc_config, asc, eos), (1, 1, 1));
    assert_eq!(packets, PROBE);
}

#[test]
fn fixture_metadata() {
    let ev = parse(FIXTURE);
    let s = parse_script(&tags(&ev)[0].body).unwrap();
    assert!(s.is_metadata());
    assert!(!s.set_data_frame);
    assert_eq!(s.number("width"), Some(160.0));
    assert_eq!(s.number("height"), Some(120.0));
    assert_eq!(s.number("videocodecid"), Some(7.0));
    assert_eq!(s.number("audiocodecid"), Some(10.0));
    assert_eq!(s.number("audiosamplerate"), Some(44100.0));
    assert_eq!(s.get("stereo"), Some(&Value::Boolean(false)));
    assert_eq!(
        s.get("encoder"),
        Some(&Value::String("Lavf59.27.100".into()))
    );
    let keys: Vec<&str> = s.metadata().unwrap().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "duration",
            "width",
            "height",
            "videodatarate",
            "framerate",
            "videocodecid",
            "audiodatarate",
            "audiosamplerate",
            "audiosamplesize",
            "stereo",
            "audiocodecid",
            "encoder",
            "filesize"
        ]
    );
    assert_eq!(s.number("filesize"), Some(FIXTURE.len() as f64));
}

#[test]
fn fixture_chunking() {
    let whole = assert_chunking_invariant(FIXTURE, DEFAULT_MAX_TAG_SIZE);
    assert_eq!(tags(&whole).len(), 79);
}

#[test]
fn fixture_rewrites_byte_for_byte() {
    let ev = parse(FIXTURE);
    let mut out = Vec::new();
    write_header(true, true, &mut out);
    for t in tags(&ev) {
        write_tag(t.kind, t.timestamp, &t.body, &mut out).unwrap();
    }
    assert_eq!(out, FIXTURE);

    // And the metadata writer reproduces ffmpeg's script body from its properties.
    let s = parse_script(&tags(&ev)[0].body).unwrap();
    let props: Vec<(&str, Value)> = s.metadata().unwrap().map(|(k, v)| (k, v.clone())).collect();
    assert_eq!(metadata_body(&props), &tags(&ev)[0].body[..]);
}

fn sample_tags() -> Vec<Tag> {
    let mut v = Vec::new();
    let mut body = Vec::new();
    let mut push = |kind, timestamp, body: &[u8]| {
        v.push(Tag {
            kind,
            timestamp,
            stream_id: 0,
            body: Bytes::copy_from_slice(body),
            offset: 0,
        })
    };
    push(
        TagKind::Script,
        0,
        &metadata_body(&[("width", Value::Number(640.0))]),
    );
    avc_video_body(
        true,
        AvcPacketType::SequenceHeader,
        0,
        &[1, 0x64, 0, 0x1f],
        &mut body,
    );
    push(TagKind::Video, 0, &body);
    body.clear();
    aac_audio_body(AacPacketType::SequenceHeader, &[0x11, 0x90], &mut body);
    push(TagKind::Audio, 0, &body);
    body.clear();
    avc_video_body(
        true,
        AvcPacketType::Nalu,
        -40,
        &[0, 0, 0, 1, 0x65],
        &mut body,
    );
    push(TagKind::Video, 0x00FF_FFFF, &body);
    body.clear();
    avc_video_body(
        false,
        AvcPacketType::Nalu,
        8_388_607,
        &[0, 0, 0, 1, 0x41],
        &mut body,
    );
    push(TagKind::Video, 0x0100_0000, &body);
    body.clear();
    aac_audio_body(AacPacketType::Raw, &[0x21; 300], &mut body);
    push(TagKind::Audio, 0xFEDC_BA98, &body);
    push(TagKind::Other(15), 7, &[1, 2, 3]);
    push(TagKind::Video, u32::MAX, &[0x17, 2, 0, 0, 0]);
    v
}

fn write_all(tags: &[Tag]) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(true, true, &mut out);
    for t in tags {
        write_tag(t.kind, t.timestamp, &t.body, &mut out).unwrap();
    }
    out
}

#[test]
fn round_trip() {
    let input = sample_tags();
    let data = write_all(&input);
    let ev = assert_chunking_invariant(&data, DEFAULT_MAX_TAG_SIZE);
    assert!(warnings(&ev).is_empty(), "{ev:?}");
    let got = tags(&ev);
    assert_eq!(got.len(), input.len());
    let mut offset = 13u64;
    for (g, w) in got.iter().zip(&input) {
        assert_eq!(
            (g.kind, g.timestamp, &g.body),
            (w.kind, w.timestamp, &w.body)
        );
        assert_eq!(g.offset, offset);
        offset += 15 + w.body.len() as u64;
    }
    // Extended timestamp layout: 24 low bits, then the high byte.
    let t = &data[got[5].offset as usize..];
    assert_eq!(&t[4..8], &[0xDC, 0xBA, 0x98, 0xFE]);
}

#[test]
fn one_pass_writers_match_body_builders() {
    let mut a = Vec::new();
    write_avc_video_tag(0x0123_4567, true, AvcPacketType::Nalu, -1, b"nal", &mut a).unwrap();
    let mut body = Vec::new();
    avc_video_body(true, AvcPacketType::Nalu, -1, b"nal", &mut body);
    let mut b = Vec::new();
    write_tag(TagKind::Video, 0x0123_4567, &body, &mut b).unwrap();
    assert_eq!(a, b);

    let mut a = Vec::new();
    write_aac_audio_tag(99, AacPacketType::Raw, b"aac", &mut a).unwrap();
    let mut body = Vec::new();
    aac_audio_body(AacPacketType::Raw, b"aac", &mut body);
    assert_eq!(body[0], 0xAF);
    let mut b = Vec::new();
    write_tag(TagKind::Audio, 99, &body, &mut b).unwrap();
    assert_eq!(a, b);

    let mut out = Vec::new();
    assert!(write_tag(TagKind::Video, 0, &vec![0; MAX_DATA_SIZE + 1], &mut out).is_err());
    assert!(out.is_empty());
    let e = write_tag(TagKind::Video, 0, &vec![0; MAX_DATA_SIZE + 1], &mut out).unwrap_err();
    assert_eq!(e, FlvError::TooLarge(MAX_DATA_SIZE + 1));
    assert_eq!(
        e.to_string(),
        "tag body of 16777216 bytes does not fit in flv's 24-bit size (max 16777215)"
    );
}

#[test]
fn negative_composition_time() {
    let mut body = Vec::new();
    avc_video_body(false, AvcPacketType::Nalu, -1234, b"x", &mut body);
    assert_eq!(&body[..5], &[0x27, 1, 0xFF, 0xFB, 0x2E]);
    let v = VideoTag::parse(&Bytes::from(body)).unwrap();
    assert_eq!(v.frame_type, VideoFrameType::Inter);
    assert_eq!(
        v.packet,
        VideoPacket::Avc {
            packet_type: AvcPacketType::Nalu,
            cts_ms: -1234,
            payload: Bytes::from_static(b"x")
        }
    );
    // Clamped to 24 bits.
    let mut body = Vec::new();
    avc_video_body(false, AvcPacketType::Nalu, i32::MIN, b"", &mut body);
    let v = VideoTag::parse(&Bytes::from(body)).unwrap();
    assert!(matches!(
        v.packet,
        VideoPacket::Avc {
            cts_ms: -8_388_608,
            ..
        }
    ));
}

#[test]
fn broken_tag_size_resyncs() {
    let offs = fixture_tag_offsets();
    let all = tags(&parse(FIXTURE))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    // Tag 10 (a video frame): size made bigger (swallows following tags), smaller, huge.
    let victim = offs[10];
    for (size, label) in [
        ([0x00, 0x08, 0x00], "bigger"),
        ([0x00, 0x00, 0x30], "smaller"),
        ([0xFF, 0xFF, 0xFF], "huge"),
    ] {
        let mut data = FIXTURE.to_vec();
        data[victim + 1..victim + 4].copy_from_slice(&size);
        let ev = assert_chunking_invariant(&data, DEFAULT_MAX_TAG_SIZE);
        let w = warnings(&ev);
        assert!(!w.is_empty(), "{label}");
        assert_eq!(w[0].offset, victim as u64, "{label}: {w:?}");
        let got = tags(&ev);
        // All tags before the damaged one, and all after it, come out unchanged.
        for t in all.iter().filter(|t| t.offset != victim as u64) {
            assert!(got.contains(&t), "{label}: tag at {} lost; {w:?}", t.offset);
        }
        // No warning claims more bytes than the damage explains.
        assert!(w.len() <= 3, "{label}: {w:?}");
    }
}

#[test]
fn broken_size_warnings_are_specific() {
    let offs = fixture_tag_offsets();
    let victim = offs[10];
    let mut data = FIXTURE.to_vec();
    data[victim + 1..victim + 4].copy_from_slice(&[0x00, 0x00, 0x30]);
    let ev = parse(&data);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].message.starts_with("previous tag size"), "{}", w[0]);
    assert!(
        w[0].message
            .ends_with(&format!("resynchronised at offset {}", offs[11])),
        "{}",
        w[0]
    );

    // Reserved bits in the type byte: one warning, the skip ends at the next tag.
    let mut data = FIXTURE.to_vec();
    data[victim] = 0xC9;
    let ev = parse(&data);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].offset, victim as u64);
    let skipped = offs[11] - victim;
    assert!(
        w[0].message.contains(&format!("skipped {skipped} bytes")),
        "{}",
        w[0]
    );
    assert_eq!(tags(&ev).len(), 78);
}

#[test]
fn previous_tag_size_mismatch_only() {
    let offs = fixture_tag_offsets();
    let mut data = FIXTURE.to_vec();
    let pts_at = offs[5] - 4;
    data[pts_at + 3] ^= 0x55;
    let ev = assert_chunking_invariant(&data, DEFAULT_MAX_TAG_SIZE);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].offset, pts_at as u64);
    assert!(w[0].message.contains(&format!("at offset {}", offs[4])));
    assert_eq!(tags(&ev).len(), 79);
}

#[test]
fn truncated_tail() {
    let offs = fixture_tag_offsets();
    let last = offs[78];
    let cut = &FIXTURE[..offs[76] + 100];
    let ev = assert_chunking_invariant(cut, DEFAULT_MAX_TAG_SIZE);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].offset, offs[76] as u64);
    let missing = offs[77] - 4 - (offs[76] + 100);
    assert!(
        w[0].message.contains(&format!("{missing} missing")),
        "{}",
        w[0]
    );
    assert_eq!(tags(&ev).len(), 76);

    // Cut inside the header of the last tag, and just before the last PreviousTagSize.
    let ev = parse(&FIXTURE[..last + 5]);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].offset, last as u64);
    assert_eq!(tags(&ev).len(), 78);
    let ev = parse(&FIXTURE[..FIXTURE.len() - 4]);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].offset, FIXTURE.len() as u64 - 4);
    assert_eq!(tags(&ev).len(), 79);
}

#[test]
fn garbage_prefix() {
    let mut data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let g = data.len() as u64;
    data.extend_from_slice(FIXTURE);
    let ev = assert_chunking_invariant(&data, DEFAULT_MAX_TAG_SIZE);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].offset, 0);
    assert!(w[0].message.contains("skipped 1000 bytes"), "{}", w[0]);
    assert!(ev.contains(&FlvEvent::Header {
        audio: true,
        video: true,
        offset: g
    }));
    let got = tags(&ev);
    assert_eq!(got.len(), 79);
    assert_eq!(got[0].offset, g + 13);
}

#[test]
fn headerless_tag_stream() {
    let data = &FIXTURE[13..];
    let ev = assert_chunking_invariant(data, DEFAULT_MAX_TAG_SIZE);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].offset, 0);
    assert!(w[0].message.contains("skipped 0 bytes"), "{}", w[0]);
    assert_eq!(tags(&ev).len(), 79);
    assert!(!ev.iter().any(|e| matches!(e, FlvEvent::Header { .. })));
}

#[test]
fn garbage_only_and_empty() {
    assert!(parse(&[]).is_empty());
    let ev = assert_chunking_invariant(b"hello, this is not flv at all\n", DEFAULT_MAX_TAG_SIZE);
    assert_eq!(ev.len(), 1);
    assert_eq!(warnings(&ev)[0].offset, 0);
    let ev = parse(b"FL");
    assert_eq!(warnings(&ev).len(), 1);
    let ev = parse(b"FLV\x01\x05\x00");
    assert_eq!(warnings(&ev).len(), 1);
    assert!(matches!(ev[0], FlvEvent::Warning(_)));
}

#[test]
fn header_data_offset_and_missing_pts0() {
    // DataOffset 12: three extra header bytes are skipped.
    let mut data = b"FLV\x01\x05\x00\x00\x00\x0cXYZ\x00\x00\x00\x00".to_vec();
    let mut body = Vec::new();
    aac_audio_body(AacPacketType::Raw, b"abc", &mut body);
    write_tag(TagKind::Audio, 5, &body, &mut data).unwrap();
    let ev = assert_chunking_invariant(&data, DEFAULT_MAX_TAG_SIZE);
    assert!(warnings(&ev).is_empty());
    assert_eq!(tags(&ev)[0].offset, 16);

    // No PreviousTagSize0: one warning, the tag still comes out.
    let mut data = b"FLV\x01\x05\x00\x00\x00\x09".to_vec();
    write_tag(TagKind::Audio, 5, &body, &mut data).unwrap();
    let ev = assert_chunking_invariant(&data, DEFAULT_MAX_TAG_SIZE);
    assert_eq!(warnings(&ev).len(), 1);
    assert_eq!(tags(&ev).len(), 1);
    assert_eq!(tags(&ev)[0].offset, 9);
}

#[test]
fn max_tag_size_limit() {
    let mut data = Vec::new();
    write_header(false, true, &mut data);
    write_tag(TagKind::Video, 0, &[0x17; 3000], &mut data).unwrap();
    write_tag(TagKind::Video, 40, &[0x27; 100], &mut data).unwrap();
    let ev = assert_chunking_invariant(&data, 1000);
    let w = warnings(&ev);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].offset, 13);
    assert!(w[0].message.contains("exceeds the limit"), "{}", w[0]);
    let t = tags(&ev);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].timestamp, 40);
}

#[test]
fn unknown_type_with_huge_size_is_damage() {
    let mut data = Vec::new();
    write_header(true, false, &mut data);
    data.extend_from_slice(&[0x07, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    write_tag(TagKind::Audio, 1, &[0xAF, 1, 2], &mut data).unwrap();
    let ev = parse(&data);
    assert_eq!(warnings(&ev).len(), 1);
    assert_eq!(tags(&ev).len(), 1);
}

#[test]
fn video_ex_header() {
    // hvc1 coded frames: keyframe, packet type 1, fourcc, SI24 cts, payload.
    let body = Bytes::from_static(b"\x91hvc1\xff\xff\xfeDATA");
    let v = VideoTag::parse(&body).unwrap();
    assert_eq!(v.frame_type, VideoFrameType::Key);
    assert_eq!(
        v.packet,
        VideoPacket::Ex {
            fourcc: FourCc::HVC1,
            packet_type: ExVideoPacketType::CodedFrames,
            cts_ms: -2,
            payload: Bytes::from_static(b"DATA")
        }
    );
    // av01 sequence start and coded frames (no cts).
    let v = VideoTag::parse(&Bytes::from_static(b"\x90av01CFG")).unwrap();
    assert!(matches!(
        v.packet,
        VideoPacket::Ex { fourcc: FourCc::AV01, packet_type: ExVideoPacketType::SequenceStart, cts_ms: 0, ref payload } if payload == "CFG"
    ));
    let v = VideoTag::parse(&Bytes::from_static(b"\xa1av01F")).unwrap();
    assert_eq!(v.frame_type, VideoFrameType::Inter);
    assert!(matches!(v.packet, VideoPacket::Ex { cts_ms: 0, ref payload, .. } if payload == "F"));
    // CodedFramesX for avc1: no cts field.
    let v = VideoTag::parse(&Bytes::from_static(b"\x93avc1NAL")).unwrap();
    assert!(
        matches!(v.packet, VideoPacket::Ex { packet_type: ExVideoPacketType::CodedFramesX, ref payload, .. } if payload == "NAL")
    );
    assert_eq!(FourCc::HVC1.to_string(), "hvc1");
    // Command frame, multitrack, too short.
    let v = VideoTag::parse(&Bytes::from_static(b"\xd1\x01")).unwrap();
    assert_eq!(v.packet, VideoPacket::ExCommand { command: 1 });
    let v = VideoTag::parse(&Bytes::from_static(b"\x96\x00")).unwrap();
    assert!(matches!(
        v.packet,
        VideoPacket::ExUnsupported {
            packet_type: ExVideoPacketType::Multitrack,
            ..
        }
    ));
    assert!(VideoTag::parse(&Bytes::from_static(b"\x91hv")).is_err());
    assert!(VideoTag::parse(&Bytes::from_static(b"\x91hvc1\x00")).is_err());
}

#[test]
fn video_legacy_edge_cases() {
    assert!(VideoTag::parse(&Bytes::new()).is_err());
    assert!(VideoTag::parse(&Bytes::from_static(b"\x17\x01\x00")).is_err());
    assert!(VideoTag::parse(&Bytes::from_static(b"\x17\x03\x00\x00\x00")).is_err());
    // Errors are located in the body and keep their words.
    let e = VideoTag::parse(&Bytes::from_static(b"\x17\x03\x00\x00\x00")).unwrap_err();
    assert_eq!(
        e,
        FlvError::Body(crate::error::Diag::new(1, "reserved avc packet type 3"))
    );
    assert_eq!(e.to_string(), "reserved avc packet type 3");
    let e = VideoTag::parse(&Bytes::from_static(b"\x17\x01\x00")).unwrap_err();
    assert_eq!(e.diag().map(|d| d.offset), Some(3));
    assert_eq!(
        e.to_string(),
        "avc video tag body is 3 bytes, need at least 5"
    );
    let v = VideoTag::parse(&Bytes::from_static(b"\x22rest")).unwrap();
    assert_eq!(
        v.packet,
        VideoPacket::Other {
            codec_id: 2,
            payload: Bytes::from_static(b"rest")
        }
    );
    let v = VideoTag::parse(&Bytes::from_static(b"\x57\x00")).unwrap();
    assert_eq!(v.frame_type, VideoFrameType::Command);
}

#[test]
fn audio_parsing() {
    let a = AudioTag::parse(&Bytes::from_static(b"\xaf\x00\x12\x10")).unwrap();
    assert_eq!(
        a.packet,
        AudioPacket::Aac {
            packet_type: AacPacketType::SequenceHeader,
            payload: Bytes::from_static(b"\x12\x10")
        }
    );
    assert!(AudioTag::parse(&Bytes::from_static(b"\xaf")).is_err());
    assert!(AudioTag::parse(&Bytes::from_static(b"\xaf\x02")).is_err());
    assert!(AudioTag::parse(&Bytes::new()).is_err());
    let e = AudioTag::parse(&Bytes::from_static(b"\xaf\x02")).unwrap_err();
    assert_eq!(
        e,
        FlvError::Body(crate::error::Diag::new(1, "reserved aac packet type 2"))
    );
    let a = AudioTag::parse(&Bytes::from_static(b"\x2e\xff\xfb")).unwrap();
    assert_eq!(
        (a.sound_format, a.sound_rate, a.sound_size, a.sound_type),
        (2, 3, 1, 0)
    );
    let a = AudioTag::parse(&Bytes::from_static(b"\x91OpusXY")).unwrap();
    assert_eq!(
        a.packet,
        AudioPacket::Ex {
            packet_type: 1,
            fourcc: FourCc(*b"Opus"),
            payload: Bytes::from_static(b"XY")
        }
    );
}

fn amf(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    script::write_value(v, &mut out);
    out
}

#[test]
fn script_set_data_frame() {
    let mut body = amf(&Value::String("@setDataFrame".into()));
    body.extend(metadata_body(&[
        ("width", Value::Number(1280.0)),
        ("height", Value::Number(720.0)),
    ]));
    let s = parse_script(&body).unwrap();
    assert!(s.set_data_frame);
    assert!(s.is_metadata());
    assert_eq!(s.number("height"), Some(720.0));
    // An object instead of an ECMA array works too.
    let mut body = amf(&Value::String("onMetaData".into()));
    body.extend(amf(&amf::amf0::object(
        [("width", Value::Number(2.0))].into_iter(),
    )));
    assert_eq!(parse_script(&body).unwrap().number("width"), Some(2.0));
    // Other names are not metadata.
    let mut body = amf(&Value::String("onCuePoint".into()));
    body.extend(amf(&Value::Null));
    let s = parse_script(&body).unwrap();
    assert!(s.metadata().is_none());
    assert_eq!(s.values, vec![Value::Null]);
}

#[test]
fn script_errors() {
    assert!(parse_script(&[]).is_err());
    assert!(parse_script(&amf(&Value::Number(1.0))).is_err());
    // Truncated: every prefix of a valid body fails cleanly (or decodes fewer values).
    let body = metadata_body(&[
        ("a", Value::String("hello".into())),
        ("b", Value::Boolean(true)),
    ]);
    for i in 0..body.len() {
        let _ = parse_script(&body[..i]);
    }
    assert!(parse_script(&body[..body.len() - 1]).is_err());
    // A long string claiming 4 GiB: refused before the crate allocates.
    let mut body = amf(&Value::String("x".into()));
    body.extend_from_slice(&[0x0C, 0xFF, 0xFF, 0xFF, 0xF0, b'a']);
    let e = parse_script(&body).unwrap_err();
    assert!(e.to_string().contains("ends inside a long string"), "{e}");
    // Located where the string's bytes start (after its marker and length).
    assert_eq!(e.diag().map(|d| d.offset), Some(body.len() as u64 - 1));
    // AMF3 is refused, at its marker.
    let mut body = amf(&Value::String("x".into()));
    let marker_at = body.len() as u64;
    body.extend_from_slice(&[0x11, 0x04, 0x01]);
    let e = parse_script(&body).unwrap_err();
    assert!(e.to_string().contains("amf3"));
    assert!(
        matches!(&e, FlvError::Script(d) if d.offset == marker_at),
        "{e:?}"
    );
    // A strict array claiming more values than bytes.
    let mut body = amf(&Value::String("x".into()));
    body.extend_from_slice(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05]);
    assert!(parse_script(&body).is_err());
}

#[test]
fn script_deep_nesting_is_refused_without_overflow() {
    // 200k nested strict arrays: the amf crate alone would overflow the stack.
    let depth = 200_000;
    let mut body = amf(&Value::String("x".into()));
    for _ in 0..depth {
        body.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
    }
    body.push(0x05);
    let e = parse_script(&body).unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
    // At the limit it decodes.
    let mut body = amf(&Value::String("x".into()));
    for _ in 0..MAX_AMF_DEPTH {
        body.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
    }
    body.push(0x05);
    assert!(parse_script(&body).is_ok());
}

#[test]
fn script_reference_bomb_is_refused() {
    // Object 0 holds a 1000-byte string; each next object holds two references to the previous
    // one, doubling the decoded size with every 11 bytes (all top-level values).
    let mut body = amf(&Value::String("x".into()));
    body.push(0x0A);
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend(amf(&Value::String("a".repeat(1000))));
    for i in 0..40u16 {
        body.push(0x0A);
        body.extend_from_slice(&2u32.to_be_bytes());
        for _ in 0..2 {
            body.push(0x07);
            body.extend_from_slice(&i.to_be_bytes());
        }
    }
    let e = parse_script(&body).unwrap_err();
    assert!(e.to_string().contains("would decode to more than"), "{e}");
    // A few references are fine, and decode as copies.
    let mut body = amf(&Value::String("x".into()));
    body.push(0x0A);
    body.extend_from_slice(&3u32.to_be_bytes());
    body.extend(amf(&amf::amf0::object([("k", Value::Null)].into_iter())));
    body.extend_from_slice(&[0x07, 0, 1, 0x07, 0, 1]);
    let s = parse_script(&body).unwrap();
    let Value::Array { entries } = &s.values[0] else {
        panic!()
    };
    assert_eq!(entries[0], entries[2]);
    // Circular and out-of-range references.
    let mut body = amf(&Value::String("x".into()));
    body.extend_from_slice(&[0x0A, 0, 0, 0, 1, 0x07, 0, 0]);
    assert!(parse_script(&body)
        .unwrap_err()
        .to_string()
        .contains("circular"));
    let mut body = amf(&Value::String("x".into()));
    body.extend_from_slice(&[0x07, 0, 9]);
    assert!(parse_script(&body)
        .unwrap_err()
        .to_string()
        .contains("out of range"));
}

#[test]
fn amf_writer_round_trips_values() {
    let v = Value::EcmaArray {
        entries: vec![
            amf::Pair {
                key: "s".into(),
                value: Value::String("é".repeat(40_000)),
            },
            amf::Pair {
                key: "o".into(),
                value: Value::Object {
                    class_name: Some("C".into()),
                    entries: vec![amf::Pair {
                        key: "".into(),
                        value: Value::Undefined,
                    }],
                },
            },
            amf::Pair {
                key: "d".into(),
                value: Value::Date {
                    unix_time: std::time::Duration::from_millis(1_700_000_000_123),
                    time_zone: 0,
                },
            },
            amf::Pair {
                key: "x".into(),
                value: Value::XmlDocument("<a/>".into()),
            },
            amf::Pair {
                key: "arr".into(),
                value: Value::Array {
                    entries: vec![Value::Number(-0.5), Value::Boolean(true)],
                },
            },
        ],
    };
    let mut body = amf(&Value::String("n".into()));
    body.extend(amf(&v));
    let s = parse_script(&body).unwrap();
    assert_eq!(s.values, vec![v]);
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_fixture_never_panics_and_ignores_chunking() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..150 {
        let mut data = FIXTURE.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(data.len());
            match rng.below(4) {
                0 => data[i] ^= 1 << rng.below(8),
                1 => data[i] = rng.next() as u8,
                2 => {
                    let n = rng.below(64).min(data.len() - i);
                    data.drain(i..i + n);
                }
                _ => {
                    let extra: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                    data.splice(i..i, extra);
                }
            }
        }
        let max = if round % 3 == 0 {
            1024
        } else {
            DEFAULT_MAX_TAG_SIZE
        };
        let whole = parse_chunks([&data[..]], max);
        let mut chunks = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(700)).min(rest.len());
            chunks.push(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(parse_chunks(chunks.clone(), max), whole, "round {round}");
        assert_eq!(
            parse_buffered(chunks, max),
            whole,
            "round {round}, buffered"
        );
        assert_eq!(parse_chunks(data.chunks(1), max), whole, "round {round}");
        for t in tags(&whole) {
            let _ = VideoTag::parse(&t.body);
            let _ = AudioTag::parse(&t.body);
            let _ = parse_script(&t.body);
        }
    }
}

#[test]
fn mutated_metadata_never_panics() {
    let body = tags(&parse(FIXTURE))[0].body.clone();
    let mut rng = XorShift(12345);
    let mut ok = 0;
    for _ in 0..5000 {
        let mut b = body.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
        }
        if parse_script(&b).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 0);
}
