use super::*;

const FRAME: i64 = 3000; // 30 fps

/// What happened before one frame.
#[derive(Debug, Clone, Copy)]
struct Seen {
    track: Track,
    key: bool,
    wall: i64,
    cut: Cut,
}

/// Video at `frame` ticks a frame with a keyframe every `gop(n)` for frame `n`, and 44.1 kHz
/// audio, `secs` long, arriving in real time from `wall0`.
fn feed(
    s: &mut Segmenter,
    frame: i64,
    key: impl Fn(i64) -> bool,
    secs: i64,
    wall0: i64,
) -> Vec<Seen> {
    let a = 1024 * CLOCK_HZ / 44_100;
    let (mut tv, mut ta, mut n) = (0i64, 0i64, 0i64);
    let mut out = Vec::new();
    while tv < secs * CLOCK_HZ {
        let (track, dts, k) = if tv <= ta {
            let f = (Track::Video, tv, key(n));
            tv += frame;
            n += 1;
            f
        } else {
            let f = (Track::Audio, ta, true);
            ta += a;
            f
        };
        let wall = wall0 + dts / 90;
        let cut = s.frame(track, k, dts, dts, wall);
        out.push(Seen {
            track,
            key: k,
            wall,
            cut,
        });
    }
    out
}

/// Segment durations, the finished one included.
fn durations(s: &mut Segmenter, seen: &[Seen]) -> Vec<f64> {
    let mut d: Vec<f64> = seen
        .iter()
        .filter_map(|x| match x.cut {
            Cut::Segment { ended, .. } => ended,
            _ => None,
        })
        .collect();
    d.push(s.finish().unwrap().0);
    d
}

fn cfg(target_secs: f64) -> SegmenterConfig {
    SegmenterConfig {
        target: (target_secs * CLOCK_HZ as f64) as i64,
        align_ms: None,
        part: None,
    }
}

#[test]
fn cuts_at_keyframes_once_the_segment_time_passed() {
    let mut s = Segmenter::new(cfg(2.0));
    let seen = feed(&mut s, FRAME, |n| n % 30 == 0, 10, 0);
    for x in &seen {
        if let Cut::Segment { forced, .. } = x.cut {
            assert!(x.track == Track::Video && x.key && !forced);
        }
    }
    assert_eq!(durations(&mut s, &seen), vec![2.0; 5]);
    assert_eq!(s.target_duration(), Some(2));
}

#[test]
fn a_longer_first_gop_sets_the_target() {
    // 4 s GOPs with --segment-time 2: the segments follow the keyframes, the target is 4.
    let mut s = Segmenter::new(cfg(2.0));
    let seen = feed(&mut s, FRAME, |n| n % 120 == 0, 12, 0);
    assert_eq!(durations(&mut s, &seen), vec![4.0; 3]);
    assert_eq!(s.target_duration(), Some(4));
    assert_eq!(s.long_gop(), Some(4.0));
    assert_eq!(s.long_gop(), None, "once");
    assert_eq!(s.forced_cuts(), 0);
}

#[test]
fn a_gop_that_grows_mid_stream_is_cut_at_the_target_without_a_keyframe() {
    // 1 s GOPs for 6 s, then 5 s GOPs: the target stays 2, and the long GOPs are cut at 2 s.
    let mut s = Segmenter::new(cfg(2.0));
    let key = |n: i64| {
        if n < 180 {
            n % 30 == 0
        } else {
            (n - 180) % 150 == 0
        }
    };
    let seen = feed(&mut s, FRAME, key, 21, 0);
    let d = durations(&mut s, &seen);
    assert_eq!(s.target_duration(), Some(2));
    assert!(
        d.iter().all(|&x| round_secs((x * 90_000.0) as i64) <= 2),
        "{d:?}"
    );
    let total: f64 = d.iter().sum();
    assert!((total - 21.0).abs() < 1e-9, "{total}");
    // 0-6 s: three segments at keyframes. Then each 5 s GOP: a segment from its keyframe cut
    // without one before it would round to 3 s (74 frames), another such, and the rest up to the
    // next keyframe.
    let (a, b) = (74.0 / 30.0, 2.0 / 30.0);
    let want = [2.0, 2.0, 2.0, a, a, b, a, a, b, a, a, b];
    assert_eq!(d.len(), want.len(), "{d:?}");
    assert!(
        d.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-9),
        "{d:?}"
    );
    let forced: Vec<bool> = seen
        .iter()
        .filter_map(|x| match x.cut {
            Cut::Segment {
                ended: Some(_),
                forced,
                independent,
                ..
            } => {
                assert_eq!(forced, !independent);
                assert_eq!(independent, x.key);
                Some(forced)
            }
            _ => None,
        })
        .collect();
    assert_eq!(forced.iter().filter(|&&f| f).count(), 6);
    assert_eq!(s.forced_cuts(), 6);
}

#[test]
fn a_first_gop_past_the_cap_is_cut_at_the_cap() {
    let mut s = Segmenter::new(cfg(2.0));
    let seen = feed(&mut s, FRAME, |n| n % 900 == 0, 25, 0);
    let d = durations(&mut s, &seen);
    assert_eq!(s.target_duration(), Some(MAX_MEASURED_TARGET_SECS));
    // Cut before the frame that would take it to 10.5 s (314 frames), twice, then the rest.
    let a = 314.0 / 30.0;
    let want = [a, a, 25.0 - 2.0 * a];
    assert!(
        d.iter().zip(want).all(|(x, y)| (x - y).abs() < 1e-9),
        "{d:?}"
    );
}

#[test]
fn durations_add_up_to_the_media_duration() {
    for gop in [15, 30, 45, 100] {
        let mut s = Segmenter::new(cfg(2.0));
        let seen = feed(&mut s, FRAME, |n| n % gop == 0, 9, 0);
        let total: f64 = durations(&mut s, &seen).iter().sum();
        assert!(
            (total - 9.0).abs() <= FRAME as f64 / CLOCK_HZ as f64,
            "gop {gop}: {total}"
        );
    }
}

#[test]
fn aligned_cuts_fall_within_one_gop_after_each_wall_clock_mark() {
    // Fake clock: starts at 10:07:13.400 UTC; align every 15 s; 1 s GOP; 70 s of media.
    let wall0 = 1_795_320_000_000 + (7 * 60 + 13) * 1000 + 400;
    let align = 15_000;
    let mut s = Segmenter::new(SegmenterConfig {
        target: 2 * CLOCK_HZ,
        align_ms: Some(align),
        part: None,
    });
    let seen = feed(&mut s, FRAME, |n| n % 30 == 0, 70, wall0);
    let cuts: Vec<i64> = seen
        .iter()
        .filter(|x| matches!(x.cut, Cut::Segment { .. }))
        .map(|x| x.wall)
        .collect();
    // The first segment starts with the stream and runs to the first mark.
    assert_eq!(cuts[0], wall0);
    for &c in &cuts[1..] {
        let mark = c.div_euclid(align) * align;
        assert!(c >= mark && c - mark < 1000, "cut {} ms after", c - mark);
    }
    assert_eq!(
        cuts.len(),
        1 + 5,
        "the start, then :15, :30, :45, 1:00, 1:15"
    );
    let d = durations(&mut s, &seen);
    assert!(d[1] == 15.0 && d[2] == 15.0);
    // The period plus the longest GOP (or --segment-time), rounded up.
    assert_eq!(s.target_duration(), Some(17));
    assert_eq!(s.forced_cuts(), 0);
}

#[test]
fn discontinuity_cuts_at_the_next_keyframe_and_marks_it() {
    let mut s = Segmenter::new(cfg(10.0));
    assert!(matches!(
        s.frame(Track::Video, true, 0, 0, 0),
        Cut::Segment { ended: None, .. }
    ));
    s.frame(Track::Video, false, FRAME, FRAME, 0);
    s.discontinuity();
    assert_eq!(
        s.frame(Track::Video, false, 2 * FRAME, 2 * FRAME, 0),
        Cut::Continue
    );
    assert_eq!(
        s.frame(Track::Video, true, 3 * FRAME, 3 * FRAME, 0),
        Cut::Segment {
            ended: Some(0.1),
            last_part: None,
            discontinuity: true,
            independent: true,
            forced: false,
        }
    );
    assert_eq!(
        s.frame(Track::Video, true, 4 * FRAME, 4 * FRAME, 0),
        Cut::Continue
    );
}

#[test]
fn a_changed_track_cuts_before_its_next_frame() {
    let mut s = Segmenter::new(cfg(10.0));
    s.frame(Track::Video, true, 0, 0, 0);
    s.frame(Track::Audio, true, 100, 100, 0);
    s.frame(Track::Video, false, FRAME, FRAME, 0);
    s.cut_before_next(Track::Audio);
    assert_eq!(
        s.frame(Track::Video, false, 2 * FRAME, 2 * FRAME, 0),
        Cut::Continue
    );
    assert!(matches!(
        s.frame(Track::Audio, true, 2 * FRAME + 10, 2 * FRAME + 10, 0),
        Cut::Segment {
            discontinuity: true,
            independent: false,
            ..
        }
    ));
}

#[test]
fn audio_only_cuts_on_audio_frames() {
    let mut s = Segmenter::new(cfg(2.0));
    s.set_has_video(false);
    let a = 1920; // 48 kHz
    let mut cuts = 0;
    for i in 0..200 {
        if let Cut::Segment { independent, .. } = s.frame(Track::Audio, true, i * a, i * a, 0) {
            assert!(independent);
            cuts += 1;
        }
    }
    assert_eq!(cuts, 1 + 200 * a as usize / (2 * CLOCK_HZ as usize));
}

/// Parts of `frame`-tick video with 1 s GOPs: (part durations per segment, independence of each
/// part, part target).
fn parts(frame: i64, gop: i64) -> (Vec<Vec<f64>>, Vec<bool>, f64) {
    let mut s = Segmenter::new(SegmenterConfig {
        target: 2 * CLOCK_HZ,
        align_ms: None,
        part: Some(CLOCK_HZ / 5),
    });
    let seen = feed(&mut s, frame, |n| n % gop == 0, 8, 0);
    let mut segs = vec![Vec::new()];
    let mut independent = vec![true];
    for x in &seen {
        match x.cut {
            Cut::Part {
                ended,
                independent: i,
            } => {
                segs.last_mut().unwrap().push(ended);
                independent.push(i);
                assert!(x.track == Track::Video);
                assert_eq!(i, x.key);
            }
            Cut::Segment {
                ended: Some(_),
                last_part,
                independent: i,
                ..
            } => {
                segs.last_mut().unwrap().push(last_part.unwrap());
                segs.push(Vec::new());
                independent.push(i);
            }
            _ => {}
        }
    }
    let (_, last) = s.finish().unwrap();
    segs.last_mut().unwrap().push(last);
    (segs, independent, s.part_target().unwrap())
}

#[test]
fn parts_are_a_whole_number_of_frames_within_the_part_target() {
    // 30 fps: 6 frames; 29.97 fps: 6 frames (200.2 ms, target 201 ms); 25 fps: 5 frames; 24 fps:
    // 5 frames (208.3 ms, target 209 ms).
    for (frame, gop, target, each) in [
        (3000, 30, 0.2, 0.2),
        (3003, 30, 0.201, 0.2002),
        (3600, 25, 0.2, 0.2),
        (3750, 24, 0.209, 0.20833),
    ] {
        let (segs, independent, pt) = parts(frame, gop);
        assert!((pt - target).abs() < 1e-9, "{frame}: part target {pt}");
        for (i, seg) in segs.iter().enumerate() {
            let (last, rest) = seg.split_last().unwrap();
            for p in rest {
                assert!((p - each).abs() < 1e-4, "{frame}: segment {i}: {seg:?}");
            }
            assert!(*last <= pt + 1e-9, "{frame}: {seg:?}");
        }
        // Each 2 s segment holds 10 parts (9.99 at 29.97 fps: the last is a frame short).
        assert!(
            segs[..segs.len() - 1].iter().all(|s| s.len() == 10),
            "{segs:?}"
        );
        // The parts that start with a keyframe: each segment's first, and the 1 s marks where a
        // GOP is a whole number of parts (all but 24 fps).
        let n = independent.iter().filter(|&&i| i).count();
        let want = if frame == 3750 {
            segs.len()
        } else {
            2 * segs.len()
        };
        assert_eq!(n, want, "{frame}: {independent:?}");
    }
}

#[test]
fn millisecond_frame_times_make_parts_of_whole_frames_within_85_percent() {
    // 30 fps as FLV and RTMP carry it: 33, 33 and 34 ms. The target is six 34 ms frames, and
    // every part but a segment's last is six frames (199 to 201 ms), at least 85 % of it.
    let mut s = Segmenter::new(SegmenterConfig {
        target: 2 * CLOCK_HZ,
        align_ms: None,
        part: Some(CLOCK_HZ / 5),
    });
    let mut t = 0i64;
    let mut parts: Vec<f64> = Vec::new();
    let mut segs = 0;
    for n in 0..300i64 {
        match s.frame(Track::Video, n % 30 == 0, t, t, t / 90) {
            Cut::Part { ended, .. } => parts.push(ended),
            Cut::Segment { ended: Some(_), .. } => segs += 1,
            _ => {}
        }
        t += if n % 3 == 2 { 34 * 90 } else { 33 * 90 };
    }
    let pt = s.part_target().unwrap();
    assert!((pt - 0.204).abs() < 1e-9, "part target {pt}");
    assert!(segs >= 4);
    for p in &parts {
        assert!(*p <= pt + 1e-9 && *p >= 0.85 * pt, "{p} of {pt}: {parts:?}");
    }
}
