use super::*;
use crate::relay::testdata::{self, Rng};

/// Splits `input` pushed in pieces of the given sizes.
fn split(input: &[u8], cuts: &[usize]) -> (Vec<Chunk>, Option<StreamFormat>) {
    let mut s = Splitter::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &n in cuts {
        s.push(&input[at..at + n], &mut out);
        at += n;
    }
    s.push(&input[at..], &mut out);
    s.finish(&mut out);
    (out, s.format())
}

fn concat(chunks: &[Chunk]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.data.iter().copied()).collect()
}

/// (offset, mark) of every non-Data chunk.
fn marks(chunks: &[Chunk]) -> Vec<(usize, Mark)> {
    let mut at = 0;
    let mut v = Vec::new();
    for c in chunks {
        assert!(!c.data.is_empty(), "empty chunk");
        if c.mark != Mark::Data {
            v.push((at, c.mark));
        }
        at += c.data.len();
    }
    v
}

fn check_any_chunking(input: &[u8], fmt: StreamFormat) -> Vec<(usize, Mark)> {
    let (whole, f) = split(input, &[input.len()]);
    assert_eq!(f, Some(fmt));
    assert_eq!(concat(&whole), input);
    let want = marks(&whole);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for max in [1usize, 2, 3, 7, 100, 188, 189, 1000, 5000, 70_000] {
        let cuts = if max == 1 {
            vec![1; input.len().min(20_000)]
        } else {
            rng.cuts(input.len(), max)
        };
        let (got, f) = split(input, &cuts);
        assert_eq!(f, Some(fmt));
        assert!(
            concat(&got) == input,
            "bytes differ under cuts of at most {max}"
        );
        assert_eq!(
            marks(&got),
            want,
            "marks differ under cuts of at most {max}"
        );
    }
    want
}

fn count(m: &[(usize, Mark)], mark: Mark) -> usize {
    m.iter().filter(|(_, x)| *x == mark).count()
}

#[test]
fn flv_tags_and_marks() {
    let input = testdata::flv();
    let m = check_any_chunking(&input, StreamFormat::Flv);
    assert_eq!(m[0], (0, Mark::Header(HeaderKind::FlvFile)));
    assert_eq!(m[1], (13, Mark::Header(HeaderKind::FlvMetadata)));
    assert_eq!(count(&m, Mark::Header(HeaderKind::FlvVideoConfig)), 1);
    assert_eq!(count(&m, Mark::Header(HeaderKind::FlvAudioConfig)), 1);
    assert_eq!(count(&m, Mark::Keyframe), 4);
    // Every chunk is a whole tag.
    let (chunks, _) = split(&input, &[input.len()]);
    for c in &chunks[1..] {
        let size = ((c.data[1] as usize) << 16) | ((c.data[2] as usize) << 8) | c.data[3] as usize;
        assert_eq!(c.data.len(), 11 + size + 4);
        let pts = u32::from_be_bytes(c.data[c.data.len() - 4..].try_into().unwrap());
        assert_eq!(pts as usize, 11 + size);
    }
}

#[test]
fn ts_packets_and_marks() {
    let input = testdata::ts();
    let m = check_any_chunking(&input, StreamFormat::Ts);
    assert_eq!(m[0], (0, Mark::Header(HeaderKind::TsPat)));
    assert_eq!(m[1], (188, Mark::Header(HeaderKind::TsPmt)));
    assert_eq!(count(&m, Mark::Keyframe), 4);
    let (chunks, _) = split(&input, &[input.len()]);
    for c in &chunks {
        assert_eq!(c.data.len() % 188, 0);
        assert_eq!(c.data[0], 0x47);
        if c.mark != Mark::Data {
            assert_eq!(c.data.len(), 188);
        }
    }
}

#[test]
fn annexb_start_code_inside_a_slice_first_byte_is_not_a_cut_under_any_chunking() {
    // fuzz/relay_stream: a slice whose first byte starts a start code, then a PPS.
    let data = [0, 0, 0, 1, 4, 0, 0, 1, 8, 0, 0, 0, 0x7b, 1];
    let whole = split_all(&data, data.len());
    for step in 1..data.len() {
        assert_eq!(split_all(&data, step), whole, "pushes of {step}");
    }
}

fn split_all(data: &[u8], step: usize) -> Vec<(usize, Mark)> {
    let mut s = Splitter::new();
    let mut out = Vec::new();
    for c in data.chunks(step) {
        s.push(c, &mut out);
    }
    s.finish(&mut out);
    let mut at = 0;
    let mut v = Vec::new();
    for c in &out {
        if c.mark != Mark::Data {
            v.push((at, c.mark));
        }
        at += c.data.len();
    }
    assert_eq!(at, data.len());
    v
}

#[test]
fn annexb_nals_and_marks() {
    for (input, first_key) in [(testdata::annexb(), 9u8), (testdata::annexb_no_aud(), 6)] {
        let m = check_any_chunking(&input, StreamFormat::AnnexB);
        assert_eq!(count(&m, Mark::Keyframe), 4);
        assert_eq!(count(&m, Mark::Header(HeaderKind::H264Sps)), 4);
        assert_eq!(count(&m, Mark::Header(HeaderKind::H264Pps)), 4);
        for (at, mark) in &m {
            let nal = &input[*at..];
            let hdr = if nal.starts_with(&[0, 0, 0, 1]) { 4 } else { 3 };
            assert!(
                nal[..hdr].ends_with(&[0, 0, 1]),
                "chunk at {at} is not a NAL start"
            );
            let ty = nal[hdr] & 0x1F;
            match mark {
                Mark::Header(HeaderKind::H264Sps) => assert_eq!(ty, 7),
                Mark::Header(HeaderKind::H264Pps) => assert_eq!(ty, 8),
                Mark::Keyframe => assert!(ty == first_key || ty == 5, "keyframe on NAL {ty}"),
                _ => unreachable!(),
            }
        }
    }
}

#[test]
fn annexb_h265_nals_and_marks() {
    let input = testdata::annexb_h265();
    let m = check_any_chunking(&input, StreamFormat::AnnexBH265);
    // The IDR and two CRA pictures: each access unit's SEI (the first NAL after the parameter
    // sets) is the keyframe.
    assert_eq!(count(&m, Mark::Keyframe), 3);
    for kind in [
        HeaderKind::H265Vps,
        HeaderKind::H265Sps,
        HeaderKind::H265Pps,
    ] {
        assert_eq!(count(&m, Mark::Header(kind)), 3, "{kind:?}");
    }
    for (at, mark) in &m {
        let nal = &input[*at..];
        let hdr = if nal.starts_with(&[0, 0, 0, 1]) { 4 } else { 3 };
        assert!(
            nal[..hdr].ends_with(&[0, 0, 1]),
            "chunk at {at} is not a NAL start"
        );
        let ty = (nal[hdr] >> 1) & 0x3F;
        let want = match mark {
            Mark::Header(HeaderKind::H265Vps) => 32,
            Mark::Header(HeaderKind::H265Sps) => 33,
            Mark::Header(HeaderKind::H265Pps) => 34,
            Mark::Keyframe => 39,
            other => panic!("unexpected mark {other:?}"),
        };
        assert_eq!(ty, want, "{mark:?} at {at}");
    }
    // What the queue's tail rule sees as starting an access unit: the parameter sets and SEI of
    // the 3 keyframes, and the first (here the only) slice of each of the 50 pictures.
    let (chunks, _) = split(&input, &[input.len()]);
    let starts = chunks
        .iter()
        .filter(|c| annexb_starts_au(&c.data, VideoCodec::H265))
        .count();
    assert_eq!(starts, 3 * 4 + 50);
}

#[test]
fn annexb_keyframe_is_emitted_without_waiting_for_the_frame() {
    let input = testdata::annexb_no_aud();
    // Up to 2 bytes into the IDR slice: the keyframe chunk must be out.
    let idr = h264_nal_positions(&input)
        .into_iter()
        .find(|&(_, t)| t == 5)
        .unwrap()
        .0;
    let mut s = Splitter::new();
    let mut out = Vec::new();
    s.push(&input[..idr + 2], &mut out);
    assert!(
        out.iter().any(|c| c.mark == Mark::Keyframe),
        "no keyframe yet"
    );
    assert!(out
        .iter()
        .any(|c| c.mark == Mark::Header(HeaderKind::H264Pps)));
    let emitted: usize = out.iter().map(|c| c.data.len()).sum();
    assert!(emitted >= idr, "held back more than the slice header");
}

fn h264_nal_positions(b: &[u8]) -> Vec<(usize, u8)> {
    let mut v = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr::memmem::find(&b[i..], &[0, 0, 1]) {
        let h = i + k + 3;
        if h < b.len() {
            v.push((h, b[h] & 0x1F));
        }
        i = h;
    }
    v
}

#[test]
fn ts_keyframe_is_emitted_when_its_packet_is_complete() {
    let input = testdata::ts();
    let (chunks, _) = split(&input, &[input.len()]);
    let m = marks(&chunks);
    // The second keyframe: the first comes before detection has its 752 bytes.
    let key_at = m
        .iter()
        .filter(|(_, x)| *x == Mark::Keyframe)
        .nth(1)
        .unwrap()
        .0;
    let mut s = Splitter::new();
    let mut out = Vec::new();
    s.push(&input[..key_at + 188], &mut out);
    assert_eq!(concat(&out).len(), key_at + 188);
    assert_eq!(out.last().unwrap().mark, Mark::Keyframe);
}

#[test]
fn opaque_chunks_are_the_pushed_slices() {
    let text: Vec<u8> = b"hello, fstream! "
        .iter()
        .copied()
        .cycle()
        .take(5000)
        .collect();
    let mut s = Splitter::new();
    let mut out = Vec::new();
    s.push(&text[..100], &mut out);
    assert!(out.is_empty(), "must wait: 100 bytes could still be TS");
    s.push(&text[100..300], &mut out);
    // No 0x47 ('G') in the first 188 bytes: decided at once.
    assert_eq!(s.format(), Some(StreamFormat::Opaque));
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].data[..], &text[..300]);
    s.push(&text[300..301], &mut out);
    s.push(&text[301..], &mut out);
    s.finish(&mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[1].data.len(), 1);
    assert!(out.iter().all(|c| c.mark == Mark::Data));
    assert_eq!(concat(&out), text);
    // Short opaque input comes out at finish; decide() forces it without ending.
    let (c, f) = split(b"GG", &[1]);
    assert_eq!(concat(&c), b"GG");
    assert!(f.is_some());
    let mut s = Splitter::new();
    let mut out = Vec::new();
    s.push(b"abc", &mut out);
    s.decide(&mut out);
    assert_eq!(s.format(), Some(StreamFormat::Opaque));
    assert_eq!(concat(&out), b"abc");
    let (c, f) = split(b"", &[]);
    assert!(c.is_empty());
    assert_eq!(f, Some(StreamFormat::Opaque));
}

#[test]
fn broken_flv_passes_through_as_data() {
    let mut input = testdata::flv();
    let cut = 13 + 500;
    // Find a tag boundary near `cut` and put garbage there.
    let (chunks, _) = split(&input, &[input.len()]);
    let mut at = 0;
    let mut boundary = 0;
    for c in &chunks {
        if at >= cut {
            boundary = at;
            break;
        }
        at += c.data.len();
    }
    input.splice(boundary..boundary, b"\x3F garbage".iter().copied());
    let (got, _) = split(&input, &[input.len()]);
    assert_eq!(concat(&got), input);
    let mut s = Splitter::new();
    let mut out = Vec::new();
    s.push(&input, &mut out);
    assert!(s.broken());
    // A huge declared size is refused at once rather than buffered.
    let mut v = input[..13].to_vec();
    v.extend_from_slice(&[9, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0]);
    let mut s = Splitter::new();
    let mut out = Vec::new();
    s.push(&v, &mut out);
    assert!(!s.broken(), "16 MiB is still a legal FLV tag");
    assert_eq!(concat(&out).len(), 13);
}

#[test]
fn ts_resyncs_after_garbage() {
    let mut input = testdata::ts();
    let n = input.len();
    input.splice(
        188 * 40 + 17..188 * 40 + 17,
        [0x47u8, 1, 2, 3, 0x47, 9].iter().copied(),
    );
    let m = check_any_chunking(&input, StreamFormat::Ts);
    assert_eq!(input.len(), n + 6);
    // The damaged packet's PES may lose its mark; later keyframes are found.
    assert!(count(&m, Mark::Keyframe) >= 3, "{m:?}");
}

#[test]
fn enhanced_flv_marks() {
    let tag = |ty: u8, body: &[u8]| {
        let mut t = vec![ty, 0, 0, body.len() as u8, 0, 0, 0, 0, 0, 0, 0];
        t.extend_from_slice(body);
        t.extend_from_slice(&((11 + body.len()) as u32).to_be_bytes());
        t
    };
    // ex header | keyframe | SequenceStart, 'hvc1'
    assert_eq!(
        flv_tag_mark(&tag(9, b"\x90hvc1\x01"), false),
        Mark::Header(HeaderKind::FlvVideoConfig)
    );
    assert_eq!(
        flv_tag_mark(&tag(9, b"\x91hvc1\x00\x00\x00"), false),
        Mark::Keyframe
    );
    assert_eq!(flv_tag_mark(&tag(9, b"\x93av01"), false), Mark::Keyframe);
    assert_eq!(
        flv_tag_mark(&tag(9, b"\xA1hvc1\x00\x00\x00"), false),
        Mark::Data
    );
    assert_eq!(
        flv_tag_mark(&tag(9, b"\x17\x01\x00\x00\x00"), false),
        Mark::Keyframe
    );
    assert_eq!(
        flv_tag_mark(&tag(9, b"\x27\x01\x00\x00\x00"), false),
        Mark::Data
    );
    assert_eq!(
        flv_tag_mark(&tag(9, b"\x17\x00\x00\x00\x00"), false),
        Mark::Header(HeaderKind::FlvVideoConfig)
    );
    assert_eq!(flv_tag_mark(&tag(9, b"\x52"), false), Mark::Data);
    // H.265 RASL pictures (an SEI first, then a RASL_N slice; a RASL_R alone): Enhanced
    // CodedFrames (3-byte composition time) and CodedFramesX, and the legacy codec id 12.
    let rasl_n = b"\x00\x00\x00\x03\x4e\x01\x05\x00\x00\x00\x03\x10\x01\xaf";
    let rasl_r = b"\x00\x00\x00\x03\x12\x01\xaf";
    let trail = b"\x00\x00\x00\x03\x02\x01\xaf";
    for (nals, want) in [
        (&rasl_n[..], Mark::Rasl),
        (rasl_r, Mark::Rasl),
        (trail, Mark::Data),
    ] {
        let ex = [&b"\xA1hvc1\x00\x00\x21"[..], nals].concat();
        assert_eq!(flv_tag_mark(&tag(9, &ex), false), want);
        let ex_x = [&b"\xA3hvc1"[..], nals].concat();
        assert_eq!(flv_tag_mark(&tag(9, &ex_x), false), want);
        let legacy = [&b"\x2C\x01\x00\x00\x21"[..], nals].concat();
        assert_eq!(flv_tag_mark(&tag(9, &legacy), false), want);
        // Not H.265: never a RASL picture.
        let avc = [&b"\x27\x01\x00\x00\x21"[..], nals].concat();
        assert_eq!(flv_tag_mark(&tag(9, &avc), false), Mark::Data);
        // The slice cut short of its length: Data.
        let cut = [&b"\xA3hvc1"[..], &nals[..nals.len() - 1]].concat();
        assert_eq!(flv_tag_mark(&tag(9, &cut), false), Mark::Data);
    }
    assert_eq!(
        flv_tag_mark(&tag(8, b"\xAF\x00\x12\x10"), false),
        Mark::Header(HeaderKind::FlvAudioConfig)
    );
    assert_eq!(
        flv_tag_mark(&tag(8, b"\xAF\x01\x12\x10"), false),
        Mark::Data
    );
    assert_eq!(
        flv_tag_mark(&tag(8, b"\xAF\x01\x12\x10"), true),
        Mark::Keyframe
    );
    assert_eq!(
        flv_tag_mark(&tag(8, b"\x90Opus"), false),
        Mark::Header(HeaderKind::FlvAudioConfig)
    );
    assert_eq!(
        flv_tag_mark(&tag(18, b"\x02\x00\x0AonMetaData\x08"), false),
        Mark::Header(HeaderKind::FlvMetadata)
    );
    assert_eq!(
        flv_tag_mark(&tag(18, b"\x02\x00\x0AonCuePoint"), false),
        Mark::Data
    );
}

/// The fuzz target's invariants on damaged real streams (cheap enough for every test run).
#[test]
fn damaged_streams_keep_bytes_and_marks_under_any_chunking() {
    let mut rng = Rng(12345);
    let sources = [
        testdata::flv(),
        testdata::ts(),
        testdata::annexb(),
        testdata::annexb_no_aud(),
        testdata::annexb_h265(),
    ];
    for round in 0..12 {
        let src = &sources[round % sources.len()];
        let mut v = src[..src.len().min(60_000)].to_vec();
        for _ in 0..1 + rng.next() % 8 {
            let at = rng.next() as usize % v.len();
            match rng.next() % 4 {
                0 => v[at] = rng.next() as u8,
                1 => {
                    v.remove(at);
                }
                2 => v.insert(at, rng.next() as u8),
                _ => {
                    let n = (rng.next() % 400) as usize;
                    let end = (at + n).min(v.len());
                    v.drain(at..end);
                }
            }
        }
        let (whole, f) = split(&v, &[v.len()]);
        assert_eq!(concat(&whole), v);
        let want = marks(&whole);
        for max in [1usize, 5, 190, 4096] {
            let cuts = if max == 1 {
                vec![1; v.len().min(2000)]
            } else {
                rng.cuts(v.len(), max)
            };
            let (got, f2) = split(&v, &cuts);
            assert_eq!(f, f2);
            assert!(concat(&got) == v, "round {round}: bytes differ");
            assert_eq!(
                marks(&got),
                want,
                "round {round}: marks differ, cuts <= {max}"
            );
        }
    }
}
