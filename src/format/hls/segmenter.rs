//! When to cut a segment: only before a keyframe (any audio frame when there is no video), once
//! the target duration has passed, or at the first keyframe after each wall-clock boundary when
//! aligned, or at the first keyframe after a break in the source.

use crate::media::{Track, CLOCK_HZ};

/// Segmenting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// Target segment duration in 90 kHz ticks (used when `align_ms` is `None`).
    pub target: i64,
    /// Cut at the first cut point after each multiple of this many wall-clock milliseconds since
    /// the Unix epoch (DVR `--align`), instead of by duration.
    pub align_ms: Option<i64>,
}

/// What to do before a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut {
    /// Keep writing into the current segment.
    Continue,
    /// End the current segment (if one is open) before this frame and start a new one with it.
    Start {
        /// Duration in seconds of the segment that ends here (`None` for the first segment).
        ended: Option<f64>,
        /// The new segment follows a break in the source.
        discontinuity: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Segmenter {
    cfg: SegmenterConfig,
    has_video: bool,
    /// PTS and wall-clock time at which the open segment started (for the first segment, at its
    /// first cut point).
    start: Option<(i64, i64)>,
    /// The first segment opened before its first cut point (audio leading the video).
    first_segment: bool,
    pending_discontinuity: bool,
    /// Last DTS and typical step per track.
    last: [Option<(i64, i64)>; 2],
    /// The end (PTS + one step) of the latest-ending frame so far.
    end: i64,
    last_key: Option<i64>,
    longest_gop: i64,
    long_gop_reported: bool,
}

fn idx(t: Track) -> usize {
    match t {
        Track::Video => 0,
        Track::Audio => 1,
    }
}

impl Segmenter {
    pub fn new(cfg: SegmenterConfig) -> Self {
        Segmenter {
            cfg,
            has_video: true,
            start: None,
            first_segment: true,
            pending_discontinuity: false,
            last: [None; 2],
            end: i64::MIN,
            last_key: None,
            longest_gop: 0,
            long_gop_reported: false,
        }
    }

    /// Whether the stream has video; without it every audio frame is a cut point.
    pub fn set_has_video(&mut self, video: bool) {
        self.has_video = video;
    }

    /// The source broke: the next segment starts at the next cut point and is marked.
    pub fn discontinuity(&mut self) {
        if self.start.is_some() {
            self.pending_discontinuity = true;
        }
    }

    /// Decides for the next frame, given the wall clock (Unix ms) when it arrived. Durations are
    /// measured in presentation time.
    pub fn frame(&mut self, track: Track, keyframe: bool, dts: i64, pts: i64, now_ms: i64) -> Cut {
        let cut_point = if self.has_video {
            track == Track::Video && keyframe
        } else {
            track == Track::Audio
        };
        if track == Track::Video && keyframe {
            if let Some(k) = self.last_key {
                self.longest_gop = self.longest_gop.max(dts - k);
            }
            self.last_key = Some(dts);
        }
        let decision = match self.start {
            None => Cut::Start {
                ended: None,
                discontinuity: false,
            },
            Some((start_pts, start_wall)) if cut_point => {
                let due = match self.cfg.align_ms {
                    Some(p) if p > 0 => now_ms.div_euclid(p) != start_wall.div_euclid(p),
                    _ => pts - start_pts >= self.cfg.target - CLOCK_HZ / 2000,
                };
                if due || self.pending_discontinuity {
                    Cut::Start {
                        ended: Some((pts - start_pts) as f64 / CLOCK_HZ as f64),
                        discontinuity: std::mem::take(&mut self.pending_discontinuity),
                    }
                } else {
                    Cut::Continue
                }
            }
            Some(_) => Cut::Continue,
        };
        match (decision, &mut self.start) {
            (Cut::Start { ended, .. }, start) => {
                // The first segment may open on an audio frame that leads the video a little;
                // its clock starts at the first cut point (the first video keyframe), so the
                // audio lead does not stretch EXTINF past the target.
                self.first_segment = ended.is_none() && !cut_point;
                *start = Some((pts, now_ms));
            }
            (Cut::Continue, Some((start_pts, _))) if self.first_segment && cut_point => {
                *start_pts = pts;
                self.first_segment = false;
            }
            _ => {}
        }
        let l = &mut self.last[idx(track)];
        let step = match *l {
            Some((d, _)) if dts > d && dts - d <= CLOCK_HZ => dts - d,
            Some((_, s)) => s,
            None => 0,
        };
        *l = Some((dts, step));
        self.end = self.end.max(pts + step);
        decision
    }

    /// The longest keyframe interval seen, in seconds, once, when it exceeds the target (the
    /// segments then follow the keyframes and run long).
    pub fn long_gop(&mut self) -> Option<f64> {
        if self.long_gop_reported || self.cfg.align_ms.is_some() {
            return None;
        }
        if self.longest_gop > self.cfg.target + CLOCK_HZ / 100 {
            self.long_gop_reported = true;
            return Some(self.longest_gop as f64 / CLOCK_HZ as f64);
        }
        None
    }

    /// Ends the stream: the duration in seconds of the open segment, up to the end of its last
    /// frame.
    pub fn finish(&mut self) -> Option<f64> {
        let (start_pts, _) = self.start.take()?;
        Some((self.end - start_pts).max(0) as f64 / CLOCK_HZ as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: i64 = 3000; // 30 fps

    /// 30 fps video with a keyframe every `gop` frames and 44.1 kHz audio, `secs` long, arriving
    /// in real time from `wall0`. Returns the cut durations and where they happened.
    fn run(cfg: SegmenterConfig, gop: i64, secs: i64, wall0: i64) -> (Vec<f64>, Vec<i64>, f64) {
        let mut s = Segmenter::new(cfg);
        let (mut durs, mut cuts) = (Vec::new(), Vec::new());
        let a = 1024 * CLOCK_HZ / 44_100;
        let (mut tv, mut ta, mut n) = (0i64, 0i64, 0i64);
        while tv < secs * CLOCK_HZ {
            let (track, dts, key) = if tv <= ta {
                let f = (Track::Video, tv, n % gop == 0);
                tv += FRAME;
                n += 1;
                f
            } else {
                let f = (Track::Audio, ta, true);
                ta += a;
                f
            };
            let now = wall0 + dts / 90;
            if let Cut::Start { ended, .. } = s.frame(track, key, dts, dts, now) {
                assert_eq!(track, Track::Video, "cuts only before video keyframes");
                assert!(key);
                cuts.push(now);
                durs.extend(ended);
            }
        }
        let last = s.finish().unwrap();
        durs.push(last);
        (durs, cuts, secs as f64)
    }

    #[test]
    fn cuts_at_keyframes_once_the_target_passed() {
        let cfg = SegmenterConfig {
            target: 2 * CLOCK_HZ,
            align_ms: None,
        };
        let (durs, _, _) = run(cfg, 30, 10, 0);
        assert_eq!(durs, vec![2.0, 2.0, 2.0, 2.0, 2.0]);
        // A 4 s GOP: segments follow the keyframes, and the long GOP is reported.
        let mut s = Segmenter::new(cfg);
        for i in 0..300 {
            s.frame(Track::Video, i % 120 == 0, i * FRAME, i * FRAME, 0);
        }
        assert_eq!(s.long_gop(), Some(4.0));
        assert_eq!(s.long_gop(), None, "once");
    }

    #[test]
    fn durations_add_up_to_the_media_duration() {
        for gop in [15, 30, 45, 100] {
            let cfg = SegmenterConfig {
                target: 2 * CLOCK_HZ,
                align_ms: None,
            };
            let (durs, _, secs) = run(cfg, gop, 9, 0);
            let total: f64 = durs.iter().sum();
            assert!(
                (total - secs).abs() <= FRAME as f64 / CLOCK_HZ as f64,
                "gop {gop}: {total} vs {secs}"
            );
        }
    }

    #[test]
    fn aligned_cuts_fall_within_one_gop_after_each_wall_clock_mark() {
        // Fake clock: starts at 10:07:13.400 UTC; align every 15 s; 1 s GOP; 70 s of media.
        let wall0 = 1_795_320_000_000 + (7 * 60 + 13) * 1000 + 400;
        let align = 15_000;
        let cfg = SegmenterConfig {
            target: 2 * CLOCK_HZ,
            align_ms: Some(align),
        };
        let (durs, cuts, _) = run(cfg, 30, 70, wall0);
        // The first segment starts with the stream and runs to the first mark.
        assert_eq!(cuts[0], wall0);
        for &c in &cuts[1..] {
            let mark = c.div_euclid(align) * align;
            assert!(
                c >= mark && c - mark < 1000,
                "cut at {c} is {} ms after its mark",
                c - mark
            );
        }
        assert_eq!(
            cuts.len(),
            1 + 5,
            "the start, then marks at :15, :30, :45, 1:00 and 1:15"
        );
        assert!(durs[1] == 15.0 && durs[2] == 15.0);
    }

    #[test]
    fn discontinuity_cuts_at_the_next_keyframe_and_marks_it() {
        let mut s = Segmenter::new(SegmenterConfig {
            target: 10 * CLOCK_HZ,
            align_ms: None,
        });
        assert!(matches!(
            s.frame(Track::Video, true, 0, 0, 0),
            Cut::Start { ended: None, .. }
        ));
        s.frame(Track::Video, false, FRAME, FRAME, 0);
        s.discontinuity();
        assert_eq!(
            s.frame(Track::Video, false, 2 * FRAME, 2 * FRAME, 0),
            Cut::Continue
        );
        assert_eq!(
            s.frame(Track::Video, true, 3 * FRAME, 3 * FRAME, 0),
            Cut::Start {
                ended: Some(0.1),
                discontinuity: true
            }
        );
        assert_eq!(
            s.frame(Track::Video, true, 4 * FRAME, 4 * FRAME, 0),
            Cut::Continue
        );
    }

    #[test]
    fn audio_only_cuts_on_audio_frames() {
        let mut s = Segmenter::new(SegmenterConfig {
            target: 2 * CLOCK_HZ,
            align_ms: None,
        });
        s.set_has_video(false);
        let a = 1920; // 48 kHz
        let mut cuts = 0;
        for i in 0..200 {
            if let Cut::Start { .. } = s.frame(Track::Audio, true, i * a, i * a, 0) {
                cuts += 1;
            }
        }
        assert_eq!(cuts, 1 + 200 * a as usize / (2 * CLOCK_HZ as usize));
    }
}
