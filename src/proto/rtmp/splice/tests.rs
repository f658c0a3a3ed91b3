use super::*;
use crate::codec::aac::asc_bytes;
use crate::format::flv::{AacPacketType, AvcPacketType, FlvEvent, FlvReader, TagKind};

/// One media message of a publish, as the RTMP session hands it over.
#[derive(Clone, Debug)]
struct Msg {
    kind: MediaKind,
    ts: u32,
    body: Bytes,
}

/// A publisher like `ffmpeg -c copy` of an x264 + AAC file: closed GOPs of `gop` frames with
/// `bf` B-frames between anchors (PTS = (display index + bf) frames, DTS = decode index
/// frames, both rounded to ms), AAC frames of 1024 samples, interleaved by DTS (video first on
/// a tie). Each frame's payload is `[session, index_hi, index_lo]`.
#[derive(Clone, Copy, Debug)]
struct Src {
    fps: u32,
    bf: u32,
    gop: u32,
    rate: u32,
    video_start: u32,
    audio_start: u32,
    secs: u32,
}

const SRC: Src = Src {
    fps: 30,
    bf: 2,
    gop: 30,
    rate: 44_100,
    video_start: 0,
    audio_start: 44,
    secs: 3,
};

fn video_period(s: &Src) -> i64 {
    (1000 + i64::from(s.fps) - 1) / i64::from(s.fps)
}

fn audio_period(s: &Src) -> i64 {
    (1_024_000 + i64::from(s.rate) - 1) / i64::from(s.rate)
}

fn video_body(key: bool, packet_type: AvcPacketType, cts: i32, payload: &[u8]) -> Bytes {
    let mut b = Vec::new();
    flv::avc_video_body(key, packet_type, cts, payload, &mut b);
    Bytes::from(b)
}

fn audio_body(packet_type: AacPacketType, payload: &[u8]) -> Bytes {
    let mut b = Vec::new();
    flv::aac_audio_body(packet_type, payload, &mut b);
    Bytes::from(b)
}

fn headers(s: &Src) -> Vec<Msg> {
    vec![
        Msg {
            kind: MediaKind::Video,
            ts: 0,
            body: video_body(true, AvcPacketType::SequenceHeader, 0, &[1, 0x64, 0, 0x0c]),
        },
        Msg {
            kind: MediaKind::Audio,
            ts: 0,
            body: audio_body(AacPacketType::SequenceHeader, &asc_bytes(2, s.rate, 2)),
        },
    ]
}

/// The media messages of one publish of `s`, session number `session`, timestamps + `base`.
fn publish(s: &Src, session: u8, base: u32) -> Vec<Msg> {
    let n = s.fps * s.secs;
    let mut decode = Vec::new();
    for g in (0..n).step_by(s.gop as usize) {
        let end = (g + s.gop).min(n);
        decode.push((g, true));
        let mut next = g + 1;
        while next < end {
            let anchor = (next + s.bf).min(end - 1);
            decode.push((anchor, false));
            decode.extend((next..anchor).map(|b| (b, false)));
            next = anchor + 1;
        }
    }
    let ms = |frames: f64| (frames * 1000.0 / f64::from(s.fps)).round() as i64;
    let mut v: Vec<(i64, Msg)> = Vec::new();
    for (i, &(display, key)) in decode.iter().enumerate() {
        let dts = ms(i as f64);
        let cts = ms(f64::from(display + s.bf)) - dts;
        let ts = base + s.video_start + dts as u32;
        let id = [session, (i >> 8) as u8, i as u8];
        v.push((
            i64::from(ts),
            Msg {
                kind: MediaKind::Video,
                ts,
                body: video_body(key, AvcPacketType::Nalu, cts as i32, &id),
            },
        ));
    }
    let mut a: Vec<(i64, Msg)> = Vec::new();
    for k in 0u32.. {
        let t = (f64::from(k) * 1_024_000.0 / f64::from(s.rate)).round() as u32;
        if t >= s.secs * 1000 {
            break;
        }
        let ts = base + s.audio_start + t;
        let id = [session, (k >> 8) as u8, k as u8];
        a.push((
            i64::from(ts),
            Msg {
                kind: MediaKind::Audio,
                ts,
                body: audio_body(AacPacketType::Raw, &id),
            },
        ));
    }
    // Interleaved by DTS, video first on a tie.
    let mut out = Vec::new();
    let (mut vi, mut ai) = (v.into_iter().peekable(), a.into_iter().peekable());
    loop {
        let take_video = match (vi.peek(), ai.peek()) {
            (Some(x), Some(y)) => x.0 <= y.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let m = if take_video { vi.next() } else { ai.next() };
        out.push(m.unwrap().1);
    }
    out
}

/// A media frame as written: track, DTS (ms), PTS (ms), session, index in its publish.
#[derive(Clone, Copy, Debug)]
struct Out {
    video: bool,
    dts: i64,
    pts: i64,
    session: u8,
    idx: usize,
}

fn written(bytes: &[u8]) -> Vec<Out> {
    let mut r = FlvReader::new();
    let mut evs = Vec::new();
    r.push(bytes, &mut evs);
    r.finish(&mut evs);
    let mut out = Vec::new();
    for e in evs {
        let t = match e {
            FlvEvent::Tag(t) => t,
            FlvEvent::Warning(w) => panic!("{w}"),
            _ => continue,
        };
        let (video, cts, payload) = match t.kind {
            TagKind::Video => match flv::VideoTag::parse(&t.body).unwrap().packet {
                flv::VideoPacket::Avc {
                    packet_type: AvcPacketType::Nalu,
                    cts_ms,
                    payload,
                } => (true, i64::from(cts_ms), payload),
                _ => continue,
            },
            TagKind::Audio => match flv::AudioTag::parse(&t.body).unwrap().packet {
                flv::AudioPacket::Aac {
                    packet_type: AacPacketType::Raw,
                    payload,
                } => (false, 0, payload),
                _ => continue,
            },
            _ => continue,
        };
        let dts = i64::from(t.timestamp);
        out.push(Out {
            video,
            dts,
            pts: dts + cts,
            session: payload[0],
            idx: usize::from(payload[1]) << 8 | usize::from(payload[2]),
        });
    }
    out
}

fn feed(f: &mut FlvSplice, msgs: &[Msg]) {
    for m in msgs {
        f.media(m.kind, m.ts, &m.body);
    }
}

/// Checks the written frames of two spliced publishes; returns the splice's slack (how much
/// earlier the second publish could have been placed without breaking a rule).
fn check_splice(s: &Src, out: &[Out], sessions: [&[Msg]; 2], ctx: &str) -> i64 {
    let raw_ts = |o: &Out| {
        let kind = if o.video {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        let msgs = sessions[usize::from(o.session)];
        let m = msgs
            .iter()
            .filter(|m| m.kind == kind && m.body.len() > 2)
            .find(|m| {
                let p = &m.body[m.body.len() - 3..];
                usize::from(p[1]) << 8 | usize::from(p[2]) == o.idx
            })
            .unwrap();
        i64::from(m.ts)
    };
    let mut slack = i64::MAX;
    for video in [true, false] {
        let track: Vec<&Out> = out.iter().filter(|o| o.video == video).collect();
        let name = if video { "video" } else { "audio" };
        let period = if video {
            // The video period is measured: the largest of the first publish's last 8 DTS
            // steps (40 ms before there is one). For the rates here that is the period
            // rounded up to ms from three frames on; from two, the one step seen.
            let first: Vec<i64> = track
                .iter()
                .filter(|o| o.session == 0)
                .map(|o| o.dts)
                .collect();
            let steps: Vec<i64> = first.windows(2).map(|w| w[1] - w[0]).collect();
            let measured = steps[steps.len().saturating_sub(8)..]
                .iter()
                .copied()
                .max()
                .unwrap_or(40);
            if first.len() >= 3 {
                assert!(
                    measured >= video_period(s),
                    "{ctx}: video period {measured}"
                );
            }
            measured
        } else {
            audio_period(s)
        };
        for w in track.windows(2) {
            assert!(
                w[1].dts > w[0].dts,
                "{ctx}: {name} DTS not increasing: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
        for o in &track {
            assert!(o.pts >= o.dts, "{ctx}: {name} PTS below DTS: {o:?}");
        }
        let last = track.iter().rfind(|o| o.session == 0);
        let first = track.iter().find(|o| o.session == 1);
        if let (Some(l), Some(f)) = (last, first) {
            let step = f.dts - l.dts;
            assert!(
                step >= period,
                "{ctx}: {name} DTS step at the splice {step} ms < one frame ({period} ms): {l:?} then {f:?}"
            );
            slack = slack.min(step - period);
            // Presentation order: every frame of the second publish is shown at least one
            // frame after every frame of the first.
            let max0 = track.iter().filter(|o| o.session == 0).map(|o| o.pts).max();
            let min1 = track.iter().filter(|o| o.session == 1).map(|o| o.pts).min();
            let gap = min1.unwrap() - max0.unwrap();
            assert!(
                gap >= period,
                "{ctx}: {name} PTS at the splice: {gap} ms < one frame ({period} ms)"
            );
            slack = slack.min(gap - period);
        }
    }
    // One offset per publish, the same for both tracks: A/V sync is kept.
    for session in 0..2u8 {
        let offs: Vec<i64> = out
            .iter()
            .filter(|o| o.session == session)
            .map(|o| o.dts - raw_ts(o))
            .collect();
        assert!(
            offs.windows(2).all(|w| w[0] == w[1]),
            "{ctx}: publish {session} written with more than one offset: {offs:?}"
        );
    }
    slack
}

/// Kill the first publisher after every message of its first two GOPs; the second publish
/// restarts (the file again from 0, as `ffmpeg -re -i file` does, or from a later base).
fn splice_at_every_position(s: Src) {
    let first = publish(&s, 0, 0);
    let cuts = 2 * s.gop as usize * (1 + s.rate as usize / 1024 / s.fps as usize + 1);
    for base in [0u32, 7_000] {
        let second = publish(&s, 1, base);
        for cut in 1..cuts.min(first.len()) {
            let ctx = format!("{s:?}, killed after message {cut}, second publish at {base}");
            let mut f = FlvSplice::new();
            f.begin();
            feed(&mut f, &headers(&s));
            feed(&mut f, &first[..cut]);
            f.end();
            f.begin();
            feed(&mut f, &headers(&s));
            feed(&mut f, &second);
            f.end();
            let out = written(&f.take());
            let n0 = out.iter().filter(|o| o.session == 0).count();
            assert_eq!(n0, cut, "{ctx}: the first publish is written whole");
            let n1 = out.iter().filter(|o| o.session == 1).count();
            assert_eq!(
                n1,
                second.len(),
                "{ctx}: the second publish is written whole"
            );
            let slack = check_splice(&s, &out, [&first[..cut], &second], &ctx);
            assert_eq!(
                slack, 0,
                "{ctx}: the second publish is placed as early as the rules allow"
            );
        }
    }
}

#[test]
fn splice_at_every_position_with_b_frames() {
    splice_at_every_position(SRC);
}

#[test]
fn splice_at_every_position_with_three_b_frames_at_48k() {
    splice_at_every_position(Src {
        bf: 3,
        rate: 48_000,
        ..SRC
    });
}

#[test]
fn splice_at_every_position_without_b_frames() {
    splice_at_every_position(Src { bf: 0, ..SRC });
}

#[test]
fn splice_at_every_position_with_audio_leading() {
    splice_at_every_position(Src {
        video_start: 60,
        audio_start: 0,
        fps: 25,
        gop: 25,
        ..SRC
    });
}

fn first_publish(f: &mut FlvSplice, s: &Src, frames: usize) -> Vec<Msg> {
    let first = publish(s, 0, 0);
    f.begin();
    feed(f, &headers(s));
    feed(f, &first[..frames]);
    f.end();
    first[..frames].to_vec()
}

#[test]
fn a_track_that_does_not_come_back_is_waited_for_one_second() {
    let mut f = FlvSplice::new();
    let first = first_publish(&mut f, &SRC, 40);
    let mut bytes = f.take();
    f.begin();
    feed(&mut f, &headers(&SRC));
    let video: Vec<Msg> = publish(&SRC, 1, 0)
        .into_iter()
        .filter(|m| m.kind == MediaKind::Video)
        .collect();
    // Held until the frames span HOLD_MS.
    let n = video
        .iter()
        .position(|m| i64::from(m.ts - video[0].ts) >= HOLD_MS)
        .unwrap();
    feed(&mut f, &video[..n]);
    assert!(f.take().is_empty(), "held while audio may come back");
    feed(&mut f, &video[n..n + 1]);
    bytes.extend(f.take());
    assert_eq!(
        written(&bytes).len(),
        40 + n + 1,
        "released at {HOLD_MS} ms"
    );
    feed(&mut f, &video[n + 1..]);
    f.end();
    bytes.extend(f.take());
    check_splice(
        &SRC,
        &written(&bytes),
        [&first, &video],
        "video only after a kill",
    );
    assert_eq!(f.dropped_at_splice, 0);
}

#[test]
fn a_late_track_that_would_overlap_loses_those_frames_not_the_sync() {
    // Audio starts 60 ms before video (without B-frames, whose PTS delay would leave room).
    let src = Src {
        bf: 0,
        video_start: 60,
        audio_start: 0,
        ..SRC
    };
    let mut f = FlvSplice::new();
    let first = first_publish(&mut f, &src, 40);
    f.begin();
    feed(&mut f, &headers(&src));
    let second = publish(&src, 1, 0);
    let (video, audio): (Vec<Msg>, Vec<Msg>) =
        second.into_iter().partition(|m| m.kind == MediaKind::Video);
    // Video alone for HOLD_MS, then the audio from its start: the publisher did not
    // interleave, so its first audio frames would be placed before the last audio written.
    let n = video
        .iter()
        .position(|m| i64::from(m.ts - video[0].ts) >= HOLD_MS)
        .unwrap();
    feed(&mut f, &video[..=n]);
    feed(&mut f, &audio);
    f.end();
    let out = written(&f.take());
    let audio_written = out.iter().filter(|o| o.session == 1 && !o.video).count();
    assert!(f.dropped_at_splice > 0 && audio_written > 0);
    assert_eq!(
        audio_written as u64 + f.dropped_at_splice,
        audio.len() as u64
    );
    let sent: Vec<Msg> = video[..=n].iter().chain(&audio).cloned().collect();
    check_splice(&src, &out, [&first, &sent], "late audio");
}

#[test]
fn a_publish_that_ends_while_held_is_written() {
    let mut f = FlvSplice::new();
    let first = first_publish(&mut f, &SRC, 40);
    let mut bytes = f.take();
    f.begin();
    feed(&mut f, &headers(&SRC));
    let second = publish(&SRC, 1, 0);
    feed(&mut f, &second[..1]);
    assert!(f.take().is_empty());
    f.end();
    bytes.extend(f.take());
    let out = written(&bytes);
    assert_eq!(out.len(), 41);
    check_splice(
        &SRC,
        &out,
        [&first, &second[..1]],
        "one frame, then the end",
    );
}

#[test]
fn a_new_sequence_header_stays_before_the_frames_it_configures() {
    let mut f = FlvSplice::new();
    let _ = first_publish(&mut f, &SRC, 40);
    let _ = f.take();
    f.begin();
    let s48 = Src {
        rate: 48_000,
        ..SRC
    };
    feed(&mut f, &headers(&s48));
    feed(&mut f, &publish(&s48, 1, 0)[..4]);
    let mut r = FlvReader::new();
    let mut evs = Vec::new();
    r.push(&f.take(), &mut evs);
    let kinds: Vec<(u8, u8)> = evs
        .iter()
        .filter_map(|e| match e {
            FlvEvent::Tag(t) => Some((t.kind.as_u8(), t.body[1])),
            _ => None,
        })
        .collect();
    // The unchanged video header is not repeated; the new audio one comes first.
    assert_eq!(kinds[0], (8, 0), "{kinds:?}");
    assert!(kinds[1..].iter().all(|k| k.1 == 1), "{kinds:?}");
    // The splice used the first publish's AAC frame (44.1 kHz: 24 ms), the new header
    // applies from here on (48 kHz: 22 ms).
    assert_eq!(f.period(Track::Audio), 22);
}

#[test]
fn dts_within_one_millisecond_stay_strictly_increasing() {
    // A 1 ms step back is clamped by the timeline to one 90 kHz tick after the last DTS,
    // which is the same millisecond.
    let mut f = FlvSplice::new();
    f.begin();
    let v = |key, ts| Msg {
        kind: MediaKind::Video,
        ts,
        body: video_body(key, AvcPacketType::Nalu, 0, &[0, 0, ts as u8]),
    };
    feed(
        &mut f,
        &[v(true, 100), v(false, 140), v(false, 139), v(false, 180)],
    );
    let dts: Vec<i64> = written(&f.take()).iter().map(|o| o.dts).collect();
    assert_eq!(dts, [100, 140, 141, 180]);
}

#[test]
fn counts_frames_bytes_and_the_span_written() {
    let mut f = FlvSplice::new();
    assert_eq!(f.span_ms(), None);
    f.begin();
    let msgs = publish(&SRC, 1, 0);
    feed(&mut f, &msgs);
    // ffmpeg ends an H.264 publish with an end-of-sequence tag: passed on, not a frame.
    let eos = video_body(false, AvcPacketType::EndOfSequence, 0, &[]);
    f.media(MediaKind::Video, 3000, &eos);
    f.end();
    let out = f.take();
    let tags = written(&out);
    let frames = |video: bool| tags.iter().filter(|o| o.video == video).count() as u64;
    assert_eq!(f.frames, [frames(true), frames(false)]);
    assert_eq!(f.frames[0], u64::from(SRC.fps * SRC.secs));
    assert_eq!(f.bytes_out, out.len() as u64);
    // From the first frame written to the latest (the end-of-sequence tag among them).
    let (a, b) = f.span_ms().unwrap();
    assert_eq!(a, tags.iter().map(|o| o.dts).min().unwrap());
    assert_eq!(b, tags.iter().map(|o| o.dts).max().unwrap().max(3000));
}
