use super::*;
use crate::format::mp4::read::{boxes, find, u32_at, u64_at};
use crate::media::Codec;

struct Seq;

fn wall(unix_ms: i64) -> Wall {
    Wall {
        unix_ms,
        zone_offset_ms: 0,
    }
}

impl Names for Seq {
    fn segment(&mut self, msn: u64, _date_ms: i64, ext: &str) -> Result<String, String> {
        Ok(format!("s{msn}.{ext}"))
    }
}

fn vcfg(w: u32) -> VideoConfig {
    VideoConfig {
        codec: crate::media::VideoCodec::H264,
        vps: Vec::new(),
        sps: vec![Bytes::from_static(&[0x67, 0x42, 0xc0, 0x0d, 0xd9])],
        pps: vec![Bytes::from_static(&[0x68, 0xcb, 0x83, 0xcb, 0x20])],
        width: w,
        height: 240,
        frame_rate: None,
    }
}

fn acfg() -> AudioConfig {
    crate::codec::aac::parse_asc(&[0x12, 0x10]).unwrap()
}

const FRAME: i64 = 3000;
const AFRAME: i64 = 1024 * CLOCK_HZ / 44_100;

/// 30 fps video with a keyframe every second and 44.1 kHz audio, `secs` long, as events with
/// the wall clock in real time from 1_000_000 ms. The frames' first byte is their number.
fn stream(secs: i64) -> Vec<(MediaEvent, i64)> {
    let mut ev = vec![
        (
            MediaEvent::Tracks {
                video: true,
                audio: true,
            },
            0,
        ),
        (MediaEvent::Video(vcfg(320)), 0),
        (MediaEvent::Audio(acfg()), 0),
    ];
    let (mut tv, mut ta, mut n) = (0i64, 0i64, 0u32);
    while tv < secs * CLOCK_HZ {
        let f = if tv <= ta {
            let f = Frame {
                track: Track::Video,
                codec: Codec::H264,
                dts: tv,
                pts: tv,
                keyframe: n % 30 == 0,
                data: Bytes::from(vec![0, 0, 0, 2, 0x65, n as u8]),
            };
            tv += FRAME;
            n += 1;
            f
        } else {
            let f = Frame {
                track: Track::Audio,
                codec: Codec::Aac,
                dts: ta,
                pts: ta,
                keyframe: true,
                data: Bytes::from(vec![0x21; 8]),
            };
            ta += AFRAME;
            f
        };
        let wall = 1_000_000 + f.dts / 90;
        ev.push((MediaEvent::Frame(f), wall));
    }
    ev
}

fn run(cfg: HlsConfig, events: &[(MediaEvent, i64)]) -> (HlsOut, Vec<Output>) {
    let mut h = HlsOut::new(cfg, Box::new(Seq));
    let mut out = Vec::new();
    for (e, now) in events {
        h.event(e, wall(*now), &mut out).unwrap();
        h.flush(&mut out);
    }
    h.finish(&mut out);
    (h, out)
}

fn config(kind: SegmentType, part: Option<i64>, kind_pl: PlaylistKind) -> HlsConfig {
    HlsConfig {
        segment_type: kind,
        segmenter: SegmenterConfig {
            target: 2 * CLOCK_HZ,
            align_ms: None,
            part,
        },
        kind: kind_pl,
        part_prefix: "p".into(),
    }
}

/// The bytes of each segment, by URI, from the outputs.
fn segments(out: &[Output]) -> Vec<(String, Vec<u8>, f64)> {
    let mut segs = Vec::new();
    let mut cur: Option<(String, Vec<u8>)> = None;
    for o in out {
        match o {
            Output::Open { uri } => cur = Some((uri.clone(), Vec::new())),
            Output::Data(b) => cur.as_mut().unwrap().1.extend_from_slice(b),
            Output::Close { uri, duration } => {
                let (u, d) = cur.take().unwrap();
                assert_eq!(&u, uri);
                segs.push((u, d, *duration));
            }
            _ => {}
        }
    }
    segs
}

#[test]
fn ts_segments_start_with_tables_and_are_listed_once_complete() {
    let (h, out) = run(
        config(SegmentType::Ts, None, PlaylistKind::Live { window: 3 }),
        &stream(9),
    );
    let segs = segments(&out);
    let durs: Vec<f64> = segs.iter().map(|s| s.2).collect();
    assert_eq!(durs.len(), 5);
    assert!(durs[..4].iter().all(|&d| d == 2.0), "{durs:?}");
    for (uri, data, _) in &segs {
        assert_eq!(data.len() % 188, 0, "{uri}");
        assert_eq!(data[0], 0x47);
        assert_eq!(
            u16::from_be_bytes([data[1] & 0x1f, data[2]]),
            0,
            "{uri}: PAT"
        );
    }
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Init { .. } | Output::Part { .. })));
    // The first playlist comes with the first segment; the window's leavers are removed.
    let first_pl = out
        .iter()
        .position(|o| matches!(o, Output::Playlist { .. }))
        .unwrap();
    let first_close = out
        .iter()
        .position(|o| matches!(o, Output::Close { .. }))
        .unwrap();
    assert!(first_close < first_pl);
    let removed: Vec<&String> = out
        .iter()
        .filter_map(|o| match o {
            Output::Remove { uri } => Some(uri),
            _ => None,
        })
        .collect();
    assert_eq!(removed, ["s0.ts", "s1.ts"]);
    let t = h.playlist().render(false);
    assert!(
        t.contains("#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:2\n"),
        "{t}"
    );
    assert!(t.ends_with("#EXT-X-ENDLIST\n"));
}

/// (tfdt, sample durations, composition offsets, first bytes of the samples) per track of a
/// fragment.
type Run = (u64, Vec<u32>, Vec<i32>, Vec<u8>);

fn read_fragment(f: &[u8]) -> Vec<(u32, Run)> {
    let moof = find(f, &[b"moof"]);
    let moof_start = 0;
    let mut out = Vec::new();
    for (k, traf) in boxes(moof) {
        if &k != b"traf" {
            continue;
        }
        let id = u32_at(find(traf, &[b"tfhd"]), 4);
        let tfdt = u64_at(find(traf, &[b"tfdt"]), 4);
        let trun = find(traf, &[b"trun"]);
        let flags = u32_at(trun, 0) & 0xff_ffff;
        let n = u32_at(trun, 4) as usize;
        let mut off = moof_start + u32_at(trun, 8) as usize;
        let row = if flags & 0x800 != 0 { 16 } else { 8 };
        let (mut durs, mut ctos, mut firsts) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let b = 12 + i * row;
            durs.push(u32_at(trun, b));
            let size = u32_at(trun, b + 4) as usize;
            if row == 16 {
                ctos.push(u32_at(trun, b + 12) as i32);
            }
            firsts.push(f[off + if id == 1 { 5 } else { 0 }]);
            off += size;
        }
        out.push((id, (tfdt, durs, ctos, firsts)));
    }
    out
}

/// Splits a segment into its fragments.
fn fragments(seg: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < seg.len() {
        let moof = u32_at(seg, i) as usize;
        let mdat = u32_at(seg, i + moof) as usize;
        v.push(&seg[i..i + moof + mdat]);
        i += moof + mdat;
    }
    v
}

#[test]
fn fmp4_segments_carry_every_frame_at_its_own_time() {
    let events = stream(7);
    let sent = events
        .iter()
        .filter(|(e, _)| matches!(e, MediaEvent::Frame(f) if f.track == Track::Audio))
        .count();
    let (h, out) = run(config(SegmentType::Fmp4, None, PlaylistKind::Dvr), &events);
    let Output::Init { uri, data } = &out[0] else {
        panic!("init first: {:?}", out[0]);
    };
    assert_eq!(uri, "s0-init.mp4");
    assert!(!find(data, &[b"moov", b"mvex"]).is_empty());
    let segs = segments(&out);
    assert_eq!(segs.len(), 4);
    // Video: every frame once, in order, each at its DTS + 1.4 s with a 3000-tick duration.
    let mut next_v = MP4_START as u64;
    let mut next_a = mp4::rescale(MP4_START, 44_100) as u64;
    let (mut frames, mut audio) = (0u32, 0u32);
    for (uri, data, dur) in &segs {
        let frags = fragments(data);
        assert!(
            frags.len() as f64 >= *dur,
            "{uri}: fragments of at most a second"
        );
        let mut seg_video = 0;
        for f in frags {
            for (id, (tfdt, durs, _, firsts)) in read_fragment(f) {
                if id == 1 {
                    assert_eq!(tfdt, next_v, "{uri}");
                    for (d, b) in durs.iter().zip(firsts) {
                        assert_eq!((*d, b), (3000, frames as u8));
                        frames += 1;
                        next_v += 3000;
                        seg_video += 1;
                    }
                } else {
                    assert_eq!(tfdt, next_a, "{uri}: audio continues");
                    next_a += durs.iter().map(|&d| u64::from(d)).sum::<u64>();
                    audio += durs.len() as u32;
                }
            }
        }
        assert!((seg_video as f64 / 30.0 - dur).abs() < 1e-9, "{uri}: {dur}");
    }
    assert_eq!(frames, 7 * 30);
    assert_eq!(audio as usize, sent);
    let t = h.playlist().render(false);
    assert!(t.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n"), "{t}");
    assert_eq!(t.matches("#EXT-X-MAP:URI=\"s0-init.mp4\"").count(), 1);
}

#[test]
fn ll_parts_make_up_the_segments_and_the_hint_names_the_next_part() {
    let (h, out) = run(
        config(
            SegmentType::Fmp4,
            Some(CLOCK_HZ / 5),
            PlaylistKind::Live { window: 6 },
        ),
        &stream(7),
    );
    let segs = segments(&out);
    // Each segment is its parts, back to back; the parts are numbered on across segments.
    let mut parts = Vec::new();
    let mut seen = Vec::new();
    for o in &out {
        match o {
            Output::Part { uri, data } => {
                parts.push(data.clone());
                seen.push(uri.clone());
            }
            Output::Close { .. } => {
                let whole: Vec<u8> = parts.concat();
                let seg = &segs.iter().find(|s| s.1 == whole);
                assert!(seg.is_some(), "a segment is its parts");
                parts.clear();
            }
            _ => {}
        }
    }
    let want: Vec<String> = (0..seen.len()).map(|n| format!("p{n}.m4s")).collect();
    assert_eq!(seen, want);
    assert_eq!(seen.len(), 35, "ten 0.2 s parts in each 2 s segment");
    // While live, every playlist's hint became the next part.
    let mut h2 = HlsOut::new(
        config(
            SegmentType::Fmp4,
            Some(CLOCK_HZ / 5),
            PlaylistKind::Live { window: 6 },
        ),
        Box::new(Seq),
    );
    let mut o = Vec::new();
    let mut hint: Option<String> = None;
    let mut published = 0;
    for (e, now) in &stream(7) {
        h2.event(e, wall(*now), &mut o).unwrap();
        for x in o.drain(..) {
            match x {
                Output::Part { uri, .. } => {
                    if let Some(h) = hint.take() {
                        assert_eq!(h, uri);
                    }
                }
                Output::Playlist { .. } => {
                    published += 1;
                    let t = h2.playlist().render(false);
                    hint = t
                        .lines()
                        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI="))
                        .map(|u| u.trim_matches('"').to_string());
                    assert!(hint.is_some(), "{t}");
                }
                _ => {}
            }
        }
    }
    assert!(published > 20);
    let t = h.playlist().render(false);
    assert!(!t.contains("#EXT-X-PART:"), "ended: no parts");
}

#[test]
fn a_new_sps_writes_a_new_init_and_marks_a_discontinuity() {
    let mut ev = stream(4);
    // At 2.5 s (a keyframe at 3 s follows): the picture size changes.
    let at = ev
        .iter()
        .position(|(e, _)| matches!(e, MediaEvent::Frame(f) if f.track == Track::Video && f.dts == 90 * FRAME))
        .unwrap();
    ev.insert(at, (MediaEvent::Video(vcfg(640)), 0));
    let (h, out) = run(config(SegmentType::Fmp4, None, PlaylistKind::Dvr), &ev);
    let inits: Vec<&String> = out
        .iter()
        .filter_map(|o| match o {
            Output::Init { uri, .. } => Some(uri),
            _ => None,
        })
        .collect();
    assert_eq!(inits, ["s0-init.mp4", "s2-init.mp4"]);
    assert!(out.contains(&Output::Notice(Notice::NewInit {
        uri: "s2-init.mp4".into()
    })));
    let t = h.playlist().render(false);
    assert!(
        t.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"s2-init.mp4\"\n"),
        "{t}"
    );
}

#[test]
fn program_date_time_starts_with_the_video_after_leading_audio() {
    let mut ev = stream(5);
    // An audio frame 40 ms before the first video frame, arriving 40 ms earlier.
    let lead = MediaEvent::Frame(Frame {
        track: Track::Audio,
        codec: Codec::Aac,
        dts: -3600,
        pts: -3600,
        keyframe: true,
        data: Bytes::from_static(&[0x21; 8]),
    });
    ev.insert(3, (lead, 1_000_000 - 40));
    for kind in [SegmentType::Ts, SegmentType::Fmp4] {
        let (h, _) = run(config(kind, None, PlaylistKind::Dvr), &ev);
        let t = h.playlist().render(false);
        let dates: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
            .collect();
        // The first segment's date is its first video frame's; the next is 2 s (its EXTINF) on.
        assert_eq!(dates[0], "1970-01-01T00:16:40.000Z", "{t}");
        assert_eq!(dates[1], "1970-01-01T00:16:42.000Z", "{t}");
        assert!(t.contains("#EXTINF:2.000000,"), "{t}");
    }
}

#[test]
fn program_date_time_follows_extinf_across_an_open_gop_cra() {
    // Video with B-frames whose keyframes alternate their PTS − DTS delay as x265's open GOP does:
    // the first IDR 2 frames, every later CRA 4 (it has leading pictures). Dates go on by EXTINF.
    let mut ev = stream(5);
    for (e, _) in ev.iter_mut() {
        if let MediaEvent::Frame(f) = e {
            if f.track == Track::Video {
                let delay = if f.dts < 30 * FRAME { 2 } else { 4 };
                f.dts -= delay * FRAME;
            }
        }
    }
    for kind in [SegmentType::Ts, SegmentType::Fmp4] {
        let (h, _) = run(config(kind, None, PlaylistKind::Dvr), &ev);
        let t = h.playlist().render(false);
        let dates: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
            .collect();
        assert!(t.contains("#EXTINF:2.000000,"), "{t}");
        assert_eq!(dates[1], "1970-01-01T00:16:42.000Z", "{kind:?}: {t}");
    }
}
