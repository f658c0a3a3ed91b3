use super::*;
use crate::format::hls::retention::Limits;
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

/// A store that checks what river-hls-seg's must hold: a removed file exists and is not listed,
/// every file the playlist names exists.
#[derive(Default)]
struct Disk {
    files: std::collections::HashMap<String, u64>,
    open: Option<(String, u64)>,
    listed: Vec<String>,
    removed: Vec<String>,
    /// The parts of the segment being written.
    open_parts: Vec<String>,
}

impl Disk {
    /// Carries out a batch as river-hls-seg does: the playlist (its state after the batch) is
    /// published at the batch's last [`Output::Playlist`].
    fn apply(&mut self, h: &HlsOut, out: &mut Vec<Output>) {
        let last = out
            .iter()
            .rposition(|o| matches!(o, Output::Playlist { .. }));
        for (i, o) in out.drain(..).enumerate() {
            match o {
                Output::Playlist { .. } if Some(i) != last => {}
                Output::Init { uri, data } => {
                    self.files.insert(uri, data.len() as u64);
                }
                Output::Part { uri, data } => {
                    self.files.insert(uri.clone(), data.len() as u64);
                    self.open_parts.push(uri);
                }
                Output::Open { uri } => self.open = Some((uri, 0)),
                Output::Data(b) => self.open.as_mut().unwrap().1 += b.len() as u64,
                Output::Close { uri, .. } => {
                    let (u, n) = self.open.take().unwrap();
                    assert_eq!(u, uri);
                    self.files.insert(u, n);
                    self.open_parts.clear();
                }
                Output::Playlist { .. } => {
                    let t = h.playlist().render(false);
                    self.listed = listed_files(&t);
                    for u in &self.listed {
                        assert!(self.files.contains_key(u), "{u} listed, not stored: {t}");
                    }
                }
                Output::Remove { uri } => {
                    assert!(!self.listed.contains(&uri), "{uri} removed while listed");
                    assert!(self.files.remove(&uri).is_some(), "{uri} removed twice");
                    self.removed.push(uri);
                }
                Output::Notice(_) => {}
            }
        }
    }

    fn total(&self) -> u64 {
        self.files.values().sum()
    }

    /// What `--max-size` bounds: all but the segment being written (its parts).
    fn bounded(&self) -> u64 {
        let open: u64 = self
            .open_parts
            .iter()
            .filter_map(|p| self.files.get(p))
            .sum();
        self.total() - open
    }
}

/// The files a playlist names: segments, init segments, parts (not the hint: it is to come).
fn listed_files(t: &str) -> Vec<String> {
    t.lines()
        .filter_map(|l| {
            if !l.starts_with('#') {
                return Some(l.to_string());
            }
            if l.starts_with("#EXT-X-MAP:") || l.starts_with("#EXT-X-PART:") {
                let u = l.split("URI=\"").nth(1)?;
                return Some(u[..u.find('"')?].to_string());
            }
            None
        })
        .collect()
}

/// Runs `events` through an archive with `limits`, checking after each event that the stored
/// files (the segment being written aside) fit `--max-size` and that the ledger agrees.
fn run_retained(h: &mut HlsOut, disk: &mut Disk, events: &[(MediaEvent, i64)], limits: Limits) {
    let mut out = Vec::new();
    for (e, now) in events {
        h.event(e, wall(*now), &mut out).unwrap();
        h.flush(&mut out);
        disk.apply(h, &mut out);
        if let Some(max) = limits.max_bytes {
            assert!(disk.bounded() <= max, "{} on disk > {max}", disk.bounded());
        }
        assert_eq!(h.retained_bytes(), Some(disk.total()));
    }
}

fn archive(kind: SegmentType, part: Option<i64>, limits: Limits) -> HlsOut {
    let mut h = HlsOut::new(config(kind, part, PlaylistKind::Archive), Box::new(Seq));
    h.set_retention(limits);
    h
}

#[test]
fn retention_by_size_keeps_the_disk_within_bounds() {
    for (kind, part) in [
        (SegmentType::Ts, None),
        (SegmentType::Fmp4, None),
        (SegmentType::Fmp4, Some(CLOCK_HZ / 5)),
    ] {
        // Room for twelve segments of this kind (and the parts, LL-HLS).
        let (_, probe) = run(config(kind, part, PlaylistKind::Dvr), &stream(10));
        let seg = segments(&probe)[1].1.len() as u64;
        let max = 12 * seg * if part.is_some() { 2 } else { 1 };
        let limits = Limits {
            keep_ms: None,
            max_bytes: Some(max),
        };
        let mut h = archive(kind, part, limits);
        let mut disk = Disk::default();
        run_retained(&mut h, &mut disk, &stream(120), limits);
        let t = h.playlist().render(false);
        let p = crate::format::hls::Archive::parse(&t).unwrap();
        assert!(!t.contains("PLAYLIST-TYPE"), "{t}");
        // Oldest first: what is listed is the newest run of segments, numbered on.
        // s59 is in hand, not listed yet.
        let last = p.segments.last().unwrap().uri.clone();
        assert_eq!(last, format!("s58.{}", kind.extension()));
        assert_eq!(p.next_msn(), 59);
        assert!(p.media_sequence > 30, "{kind:?} {part:?}: {t}");
        // Each segment is about 1/60 of the stream; within the budget less the grace reserve.
        assert!(p.segments.len() >= 4, "{kind:?} {part:?}: {t}");
        let mut out = Vec::new();
        h.finish(&mut out);
        disk.apply(&h, &mut out);
        // At the end only what is listed stays.
        let mut left: Vec<String> = disk.files.keys().cloned().collect();
        left.sort();
        let mut listed = disk.listed.clone();
        listed.sort();
        listed.dedup();
        assert_eq!(left, listed, "{kind:?} {part:?}");
    }
}

#[test]
fn retention_by_age_keeps_the_last_stretch() {
    let limits = Limits {
        keep_ms: Some(20_000),
        max_bytes: None,
    };
    let mut h = archive(SegmentType::Ts, None, limits);
    let mut disk = Disk::default();
    run_retained(&mut h, &mut disk, &stream(60), limits);
    let t = h.playlist().render(false);
    let p = crate::format::hls::Archive::parse(&t).unwrap();
    let listed: f64 = p.segments.iter().map(|s| s.duration).sum();
    // The newest segment ends at 58 s (the one in hand is not listed): 20 to 22 s listed.
    assert!((20.0..=22.0).contains(&listed), "{listed}: {t}");
    assert_eq!(p.media_sequence, 18, "{t}");
    // Files go four target durations (8 s of media) after they leave: 14 removed so far.
    assert_eq!(disk.removed.len(), 14, "{:?}", disk.removed);
    assert_eq!(disk.removed[0], "s0.ts");
}

#[test]
fn an_init_segment_stays_while_a_listed_segment_uses_it() {
    let mut ev = stream(50);
    let at = ev
        .iter()
        .position(|(e, _)| matches!(e, MediaEvent::Frame(f) if f.track == Track::Video && f.dts == 600 * FRAME))
        .unwrap();
    ev.insert(at, (MediaEvent::Video(vcfg(640)), 0));
    let limits = Limits {
        keep_ms: Some(10_000),
        max_bytes: None,
    };
    let mut h = archive(SegmentType::Fmp4, None, limits);
    let mut disk = Disk::default();
    // Disk::apply checks that every EXT-X-MAP named is stored. At 34 s the last segment on
    // s0-init (18-20 s) has left (at 32 s) but waits out its 8 s of grace.
    let at34 = ev
        .iter()
        .position(|(e, _)| matches!(e, MediaEvent::Frame(f) if f.track == Track::Video && f.dts == 34 * 30 * FRAME))
        .unwrap();
    run_retained(&mut h, &mut disk, &ev[..at34], limits);
    assert!(disk.files.contains_key("s0-init.mp4"), "still used");
    assert!(!h.playlist().render(false).contains("s0-init.mp4"));
    run_retained(&mut h, &mut disk, &ev[at34..], limits);
    assert!(disk.removed.contains(&"s0-init.mp4".to_string()));
    assert!(disk.files.contains_key("s10-init.mp4"));
    let t = h.playlist().render(false);
    assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{t}");
}

#[test]
fn a_restart_picks_up_the_archive_and_continues_its_numbering() {
    let limits = Limits {
        keep_ms: Some(20_000),
        max_bytes: None,
    };
    let mut h = archive(SegmentType::Ts, None, limits);
    let mut disk = Disk::default();
    run_retained(&mut h, &mut disk, &stream(30), limits);
    let mut out = Vec::new();
    h.finish(&mut out);
    disk.apply(&h, &mut out);
    let before = h.playlist().render(false);
    let a = crate::format::hls::Archive::parse(&before).unwrap();
    assert!(a.ended);
    let (first, next) = (a.media_sequence, a.next_msn());
    // The second run starts 5 s after the first ended (its stream restarts at 0).
    let later: Vec<(MediaEvent, i64)> = stream(10)
        .into_iter()
        .map(|(e, t)| (e, t + 35_000))
        .collect();
    let mut h2 = archive(SegmentType::Ts, None, limits);
    let r = Resume {
        archive: a,
        sizes: disk.files.clone(),
    };
    assert_eq!(h2.resume(r, 1_035_000, &mut out).unwrap(), 0);
    disk.apply(&h2, &mut out);
    // 5 s later, retention drops the segments that ended more than 20 s before 1 035 000 ms.
    let t = h2.playlist().render(false);
    assert!(!t.contains("#EXT-X-ENDLIST"), "live again: {t}");
    let p = crate::format::hls::Archive::parse(&t).unwrap();
    assert_eq!(p.next_msn(), next);
    assert!(p.media_sequence > first, "{t}");
    run_retained(&mut h2, &mut disk, &later, limits);
    let t = h2.playlist().render(false);
    let p = crate::format::hls::Archive::parse(&t).unwrap();
    let new: Vec<&crate::format::hls::Segment> = p
        .segments
        .iter()
        .filter(|s| s.date_ms >= 1_035_000)
        .collect();
    assert_eq!(
        new[0].uri,
        format!("s{next}.ts"),
        "numbering continues: {t}"
    );
    assert!(new[0].discontinuity, "{t}");
    assert!(
        p.segments.iter().filter(|s| s.discontinuity).count() == 1,
        "{t}"
    );
    // A resumed TS archive refuses fMP4 segments.
    let mut h3 = archive(SegmentType::Fmp4, None, limits);
    let r = Resume {
        archive: p.clone(),
        sizes: disk.files.clone(),
    };
    let e = h3.resume(r, 1_050_000, &mut out).unwrap_err();
    assert!(e.to_string().contains("MPEG-TS"), "{e}");
    // A run whose clock is behind the archive's end (the earlier run was fed faster than real
    // time) dates its segments from that end on.
    let end = p.segments.last().map(|s| s.date_ms + 2000).unwrap();
    let mut h4 = archive(SegmentType::Ts, None, limits);
    let r = Resume {
        archive: p,
        sizes: disk.files.clone(),
    };
    h4.resume(r, 1_000_000, &mut out).unwrap();
    disk.apply(&h4, &mut out);
    run_retained(&mut h4, &mut disk, &stream(5), limits);
    let t = h4.playlist().render(false);
    let p = crate::format::hls::Archive::parse(&t).unwrap();
    let first_new = p.segments.iter().rev().find(|s| s.discontinuity).unwrap();
    assert_eq!(first_new.date_ms, end, "{t}");
}
