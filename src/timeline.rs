//! The one timestamp stage every river tool runs frames through.
//!
//! Containers store timestamps that wrap (MPEG-TS at 2^33 ticks of 90 kHz, FLV and RTMP at 2^32
//! milliseconds), and live sources jump: an encoder restarts, a camera reboots, a playlist loops.
//! [`Timeline`] turns whatever arrives into a timeline a muxer can write:
//!
//! 1. **Unwrap** each track's DTS against the container's modulus; PTS is unwrapped relative to DTS.
//! 2. **Re-stamp jumps.** A DTS step forward by more than `max_gap`, or backward by more than
//!    `max_backward`, is a discontinuity: the track's offset is changed so the frame lands one frame
//!    duration after the previous one. When the other track then shows the same jump (within one
//!    second), it gets the same correction, so audio and video stay in sync across the break.
//! 3. **Stay monotonic.** Smaller backward steps are clamped: DTS strictly increases per track, and
//!    PTS ≥ DTS.
//!
//! Every repair is counted in [`Repairs`]. Time is never read from a clock here: only the frames'
//! own timestamps matter, so the stage is deterministic.

use crate::media::{Frame, Track, CLOCK_HZ};

/// MPEG-TS PTS/DTS modulus: 33 bits of 90 kHz.
pub const WRAP_TS: i64 = 1 << 33;
/// FLV/RTMP modulus: 32 bits of milliseconds, in 90 kHz ticks.
pub const WRAP_FLV: i64 = (1 << 32) * 90;

/// How the stage treats its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineConfig {
    /// The container's timestamp modulus in 90 kHz ticks, or `None` for timestamps that never wrap.
    pub wrap: Option<i64>,
    /// A forward DTS step larger than this (90 kHz ticks) is re-stamped.
    pub max_gap: i64,
    /// A backward DTS step larger than this (90 kHz ticks) is re-stamped; smaller ones are clamped.
    pub max_backward: i64,
}

impl TimelineConfig {
    pub fn new(wrap: Option<i64>) -> Self {
        TimelineConfig {
            wrap,
            max_gap: 10 * CLOCK_HZ,
            max_backward: CLOCK_HZ / 2,
        }
    }
}

/// Counters of what the stage changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repairs {
    /// Timestamp wraps unwrapped.
    pub wraps: u64,
    /// Jumps re-stamped (each track counts its own).
    pub jumps: u64,
    /// Frames whose DTS was raised to keep DTS strictly increasing.
    pub dts_clamped: u64,
    /// Frames whose PTS was raised to DTS.
    pub pts_clamped: u64,
}

/// A re-stamped jump, for logging and for tools that mark discontinuities (HLS, TS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jump {
    pub track: Track,
    /// The step the input made, in 90 kHz ticks (negative: backward).
    pub step: i64,
    /// What was added to the track's timestamps from this frame on.
    pub correction: i64,
    /// The other track made the same jump just before and this one took its correction: one
    /// break in the source, seen on both tracks.
    pub follows_other_track: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct TrackState {
    /// Last raw DTS (reduced modulo wrap) and the multiple of the modulus added to it.
    last_raw: Option<i64>,
    wrap_add: i64,
    /// Unwrapped DTS of the last frame, before the offset.
    last_unwrapped: i64,
    offset: i64,
    last_out: Option<i64>,
    /// Highest PTS given out on this track.
    max_pts: i64,
    /// Typical DTS step of this track (the last sane one).
    step: i64,
}

/// The timestamp stage. Feed it every frame, in stream order.
#[derive(Debug, Clone)]
pub struct Timeline {
    cfg: TimelineConfig,
    tracks: [TrackState; 2],
    /// The last jump: (input step, correction), offered to the other track.
    last_jump: Option<(Track, i64, i64)>,
    repairs: Repairs,
}

fn idx(t: Track) -> usize {
    match t {
        Track::Video => 0,
        Track::Audio => 1,
    }
}

impl Timeline {
    pub fn new(cfg: TimelineConfig) -> Self {
        Timeline {
            cfg,
            tracks: [TrackState::default(); 2],
            last_jump: None,
            repairs: Repairs::default(),
        }
    }

    pub fn repairs(&self) -> Repairs {
        self.repairs
    }

    /// Rewrites `frame.dts`/`frame.pts` in place. Returns the jump when this frame was re-stamped.
    pub fn process(&mut self, frame: &mut Frame) -> Option<Jump> {
        let me = idx(frame.track);
        let other = self.tracks[1 - me];
        let (dts_u, pts_u) = self.unwrap(me, &other, frame.dts, frame.pts);

        let st = &mut self.tracks[me];
        if st.last_out.is_none() && other.last_out.is_some() {
            // A track that starts late shares the other track's correction.
            st.offset = other.offset;
        }
        let mut dts = dts_u.saturating_add(st.offset);
        let mut pts = pts_u.saturating_add(st.offset);
        let mut jump = None;

        if let Some(last) = st.last_out {
            let step = dts.saturating_sub(last);
            if step > self.cfg.max_gap || step < -self.cfg.max_backward {
                // Where this track continues on its own: one step after its last DTS, and with its
                // PTS one step after every PTS already given out (B-frame delay).
                let one = if st.step > 0 { st.step } else { CLOCK_HZ / 30 };
                let expected = (last + one).max(st.max_pts + one - (pts - dts));
                // Leave room for the other track too, which usually jumps with this one: then both
                // can take the same correction and stay in sync without overlapping their past.
                let other_expected = other.last_out.map_or(i64::MIN, |l| {
                    l + if other.step > 0 {
                        other.step
                    } else {
                        CLOCK_HZ / 30
                    }
                });
                let own = expected - dts;
                // The same jump on the other track: take its correction to stay in sync, unless
                // that would overlap this track's own past.
                let (correction, follows_other_track) = match self.last_jump {
                    Some((t, s, c)) if t != frame.track && (step - s).abs() <= CLOCK_HZ => {
                        (c.max(own), true)
                    }
                    _ => (expected.max(other_expected) - dts, false),
                };
                st.offset = st.offset.saturating_add(correction);
                dts = dts.saturating_add(correction);
                pts = pts.saturating_add(correction);
                self.last_jump = Some((frame.track, step, correction));
                self.repairs.jumps += 1;
                jump = Some(Jump {
                    track: frame.track,
                    step,
                    correction,
                    follows_other_track,
                });
            } else if step > 0 && step <= CLOCK_HZ {
                st.step = step;
            }
            if dts <= last {
                let fix = last + 1 - dts;
                dts += fix;
                pts = pts.saturating_add(fix);
                self.repairs.dts_clamped += 1;
            }
        }
        if pts < dts {
            pts = dts;
            self.repairs.pts_clamped += 1;
        }
        st.max_pts = if st.last_out.is_some() {
            st.max_pts.max(pts)
        } else {
            pts
        };
        st.last_out = Some(dts);
        frame.dts = dts;
        frame.pts = pts;
        jump
    }

    /// Unwraps one track's DTS, and its PTS relative to it.
    fn unwrap(&mut self, me: usize, other: &TrackState, dts: i64, pts: i64) -> (i64, i64) {
        let Some(m) = self.cfg.wrap else {
            return (dts, pts);
        };
        let raw = dts.rem_euclid(m);
        let st = &mut self.tracks[me];
        match st.last_raw {
            Some(last) => {
                let d = raw - last;
                if d < -m / 2 {
                    st.wrap_add += m;
                    self.repairs.wraps += 1;
                } else if d > m / 2 {
                    st.wrap_add -= m;
                }
            }
            None => {
                if other.last_raw.is_some() {
                    // Start next to the other track, even when the two straddle a wrap.
                    let target = other.last_unwrapped;
                    st.wrap_add = target - (target.rem_euclid(m));
                    let cand = raw + st.wrap_add;
                    if cand - target > m / 2 {
                        st.wrap_add -= m;
                    } else if target - cand > m / 2 {
                        st.wrap_add += m;
                    }
                }
            }
        }
        st.last_raw = Some(raw);
        let dts_u = raw + st.wrap_add;
        st.last_unwrapped = dts_u;
        // PTS - DTS is small; take the representative of (pts - dts) mod m nearest zero.
        let mut d = (pts - dts).rem_euclid(m);
        if d > m / 2 {
            d -= m;
        }
        (dts_u, dts_u + d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(track: Track, dts: i64, pts: i64) -> Frame {
        Frame {
            track,
            codec: match track {
                Track::Video => crate::media::Codec::H264,
                Track::Audio => crate::media::Codec::Aac,
            },
            dts,
            pts,
            keyframe: true,
            data: Bytes::new(),
        }
    }

    /// Interleaved 30 fps video (with a B-frame offset) and 44.1 kHz AAC, starting at `start`.
    fn av_stream(start: i64, secs: i64) -> Vec<Frame> {
        let mut v = Vec::new();
        let vd = 3000;
        let ad = 1024 * 90_000 / 44_100;
        let (mut tv, mut ta) = (0i64, 0i64);
        while tv < secs * CLOCK_HZ || ta < secs * CLOCK_HZ {
            if tv <= ta {
                v.push(frame(Track::Video, start + tv, start + tv + 2 * vd));
                tv += vd;
            } else {
                v.push(frame(Track::Audio, start + ta, start + ta));
                ta += ad;
            }
        }
        v
    }

    fn assert_monotonic(frames: &[Frame]) {
        for t in [Track::Video, Track::Audio] {
            let mut last = i64::MIN;
            for f in frames.iter().filter(|f| f.track == t) {
                assert!(f.dts > last, "{t:?} dts {} after {}", f.dts, last);
                assert!(f.pts >= f.dts);
                last = f.dts;
            }
        }
    }

    fn run(cfg: TimelineConfig, mut frames: Vec<Frame>) -> (Vec<Frame>, Timeline) {
        let mut tl = Timeline::new(cfg);
        for f in &mut frames {
            tl.process(f);
        }
        (frames, tl)
    }

    #[test]
    fn crosses_the_33_bit_wrap() {
        let start = WRAP_TS - 5 * CLOCK_HZ;
        let mut frames = av_stream(start, 10);
        let expected: Vec<(i64, i64)> = frames.iter().map(|f| (f.dts, f.pts)).collect();
        for f in &mut frames {
            f.dts = f.dts.rem_euclid(WRAP_TS);
            f.pts = f.pts.rem_euclid(WRAP_TS);
        }
        let (out, tl) = run(TimelineConfig::new(Some(WRAP_TS)), frames);
        assert_monotonic(&out);
        let got: Vec<(i64, i64)> = out.iter().map(|f| (f.dts, f.pts)).collect();
        assert_eq!(got, expected, "unwrapped timestamps are the originals");
        assert_eq!(tl.repairs().wraps, 2, "one wrap per track");
        assert_eq!(tl.repairs().jumps, 0);
    }

    #[test]
    fn pts_wraps_before_dts() {
        // PTS crosses the wrap while DTS has not yet.
        let f = frame(Track::Video, WRAP_TS - 100, 500);
        let (out, _) = run(TimelineConfig::new(Some(WRAP_TS)), vec![f]);
        assert_eq!(out[0].pts - out[0].dts, 600);
    }

    #[test]
    fn tracks_straddling_the_wrap_start_together() {
        let frames = vec![
            frame(Track::Video, WRAP_TS - 3000, WRAP_TS - 3000),
            frame(Track::Audio, 100, 100),
        ];
        let (out, _) = run(TimelineConfig::new(Some(WRAP_TS)), frames);
        assert_eq!(out[1].dts - out[0].dts, 3100);
    }

    #[test]
    fn flv_millisecond_wrap() {
        let start = WRAP_FLV - 2 * CLOCK_HZ;
        let mut frames = av_stream(start, 5);
        for f in &mut frames {
            f.dts = f.dts.rem_euclid(WRAP_FLV);
            f.pts = f.pts.rem_euclid(WRAP_FLV);
        }
        let (out, tl) = run(TimelineConfig::new(Some(WRAP_FLV)), frames);
        assert_monotonic(&out);
        assert_eq!(tl.repairs().wraps, 2);
        assert_eq!(out[0].dts, start);
    }

    #[test]
    fn backward_jump_of_ten_seconds_is_restamped_in_sync() {
        let mut frames = av_stream(CLOCK_HZ, 4);
        let cut = frames.len();
        // The source restarts 10 s back (a looped playlist).
        frames.extend(av_stream(CLOCK_HZ - 10 * CLOCK_HZ + 4 * CLOCK_HZ, 4));
        let (out, tl) = run(TimelineConfig::new(None), frames);
        assert_monotonic(&out);
        assert_eq!(tl.repairs().jumps, 2, "each track re-stamped once");
        // Audio/video alignment in the second part equals the input's.
        let v2 = out[cut..]
            .iter()
            .find(|f| f.track == Track::Video)
            .unwrap()
            .dts;
        let a2 = out[cut..]
            .iter()
            .find(|f| f.track == Track::Audio)
            .unwrap()
            .dts;
        assert_eq!(
            v2 - a2,
            0,
            "both parts restart together, so they stay together"
        );
        // Both continue right after the later of the two tracks' last frames: no overlap, no gap
        // longer than one frame.
        let v1 = out[..cut]
            .iter()
            .rfind(|f| f.track == Track::Video)
            .unwrap()
            .dts;
        let a1 = out[..cut]
            .iter()
            .rfind(|f| f.track == Track::Audio)
            .unwrap()
            .dts;
        assert!(
            v2 - v1 >= 3000 && v2 - v1 <= 3000 + 2090,
            "video gap {}",
            v2 - v1
        );
        assert!(
            a2 - a1 >= 2089 && a2 - a1 <= 3000 + 2090,
            "audio gap {}",
            a2 - a1
        );
    }

    #[test]
    fn forward_jump_past_threshold_is_restamped() {
        let mut frames = av_stream(0, 2);
        frames.extend(av_stream(2 * CLOCK_HZ + 3600 * CLOCK_HZ, 2));
        let (out, tl) = run(TimelineConfig::new(None), frames);
        assert_monotonic(&out);
        assert_eq!(tl.repairs().jumps, 2);
        assert!(out.last().unwrap().dts < 5 * CLOCK_HZ);
    }

    #[test]
    fn small_gap_is_kept() {
        let mut frames = av_stream(0, 2);
        frames.extend(av_stream(2 * CLOCK_HZ + 3 * CLOCK_HZ, 2));
        let input: Vec<i64> = frames.iter().map(|f| f.dts).collect();
        let (out, tl) = run(TimelineConfig::new(None), frames);
        assert_eq!(tl.repairs().jumps, 0);
        assert_eq!(out.iter().map(|f| f.dts).collect::<Vec<_>>(), input);
    }

    #[test]
    fn small_reversal_is_clamped_and_pts_kept_above_dts() {
        let frames = vec![
            frame(Track::Video, 9000, 9000),
            frame(Track::Video, 12000, 12000),
            frame(Track::Video, 11000, 10000),
            frame(Track::Video, 15000, 15000),
        ];
        let (out, tl) = run(TimelineConfig::new(None), frames);
        assert_monotonic(&out);
        assert_eq!(out[2].dts, 12001);
        assert_eq!(tl.repairs().dts_clamped, 1);
        assert_eq!(tl.repairs().pts_clamped, 1);
    }
}
