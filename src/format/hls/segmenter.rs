//! When to cut: segments, and LL-HLS parts within them.
//!
//! Rules (RFC 8216 6.2.1 and RFC 8216bis 4.4.3.1, 4.4.4.9):
//! - **The target duration is fixed once**, when the first segment ends, and never changes:
//!   `--segment-time`, or the first segment's length when that is longer (the first GOP, when the
//!   keyframes come less often than `--segment-time`), rounded to the nearest second as RFC 8216
//!   4.3.3.1 rounds EXTINF against it (halves up), and at most [`MAX_MEASURED_TARGET_SECS`] unless
//!   `--segment-time` is longer. With `--align` it is the period plus the longest GOP seen by then
//!   (or `--segment-time`), rounded.
//! - **A segment is cut before a keyframe** (any audio frame when there is no video) once
//!   `--segment-time` has passed, or at the first keyframe after each wall-clock boundary when
//!   aligned, or at the first keyframe after a break in the source.
//! - **No segment rounds above the target.** When the next frame would take the segment to half a
//!   second past it (a GOP that grew mid-stream), the segment is cut before that frame even though
//!   it is not a keyframe ([`Cut::Segment`] with `forced`). That is legal because the playlist
//!   does not declare EXT-X-INDEPENDENT-SEGMENTS; the next segment then starts without a keyframe
//!   and plays on from the one before it, and ends at the next keyframe, so the segments start
//!   on keyframes again as soon as the keyframes allow. The caller logs it.
//! - **Parts** (LL-HLS) are cut before any video frame (any audio frame when there is no video)
//!   once the next frame would take the part past the part target. The part target is
//!   `--part-time` rounded to a whole number of frames (at least one, the count fixed at the
//!   first part) of the longest frame seen until the first segment ends, when it is fixed (it
//!   is listed from then on); so every part but a segment's last lasts the same whole number of
//!   frames: at least 85 % of the target and never more. Frame times rounded to the millisecond
//!   (FLV, RTMP: 33 or 34 ms at 30 fps) make the target six of the longer frames (204 ms), not
//!   six of the first one measured (198 ms), which would cut five-frame parts (167 ms, 84 %). A
//!   segment cut is also a part cut.
//!
//! Durations are measured on one clock: a keyframe's PTS, and for the frames after it their DTS
//! plus the keyframe's PTS − DTS, so a cut before a non-keyframe of a stream with B-frames still
//! falls between the two presentation times it separates. Audio-only streams use PTS.

use crate::media::{Track, CLOCK_HZ};

/// The target duration measured from the first GOP is at most this (or `--segment-time` when
/// that is longer); a longer first GOP is cut at it.
pub const MAX_MEASURED_TARGET_SECS: u64 = 10;

/// Segmenting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// `--segment-time` in 90 kHz ticks.
    pub target: i64,
    /// Cut at the first cut point after each multiple of this many wall-clock milliseconds since
    /// the Unix epoch (DVR `--align`), instead of by duration.
    pub align_ms: Option<i64>,
    /// LL-HLS: the part time asked for, in 90 kHz ticks (`None`: no parts).
    pub part: Option<i64>,
}

/// What to do before a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cut {
    /// Keep writing into the current part and segment.
    Continue,
    /// End the part in hand (LL-HLS) before this frame; the frame starts the next part of the same
    /// segment.
    Part {
        /// Duration of the part that ends, in seconds.
        ended: f64,
        /// The new part starts with a keyframe (any audio frame when there is no video).
        independent: bool,
    },
    /// End the segment in hand (and its last part) before this frame and start a new one with it.
    Segment {
        /// Duration in seconds of the segment that ends here (`None` for the first segment).
        ended: Option<f64>,
        /// Duration of its last part (LL-HLS; `None` for the first segment).
        last_part: Option<f64>,
        /// The new segment follows a break in the source, or a change the caller asked a cut for.
        discontinuity: bool,
        /// The new segment starts with a keyframe (any audio frame when there is no video).
        independent: bool,
        /// Cut without a keyframe because the segment would have run past the target duration.
        forced: bool,
    },
}

/// The last `STEPS` intervals between cut points: their maximum is the next step expected.
const STEPS: usize = 16;

#[derive(Debug, Clone)]
pub struct Segmenter {
    cfg: SegmenterConfig,
    has_video: bool,
    /// Clock and wall-clock time at which the open segment started (for the first segment, at
    /// its first cut point).
    start: Option<(i64, i64)>,
    /// Clock at which the open part started.
    part_start: i64,
    /// The first segment opened before its first cut point (audio leading the video).
    first_segment: bool,
    pending_discontinuity: bool,
    /// Cut before the next frame of this track, whatever it is (a track's configuration changed).
    cut_before: Option<Track>,
    /// Last DTS and typical step per track (for the end of the last frame).
    last: [Option<(i64, i64)>; 2],
    /// The end (PTS + one step) of the latest-ending frame so far.
    end: i64,
    /// PTS − DTS of the last video keyframe.
    delay: i64,
    /// Clock of the last cut point, and the recent intervals between cut points.
    last_cut_point: Option<i64>,
    steps: [i64; STEPS],
    nsteps: usize,
    last_key: Option<i64>,
    longest_gop: i64,
    long_gop_reported: bool,
    /// EXT-X-TARGETDURATION in seconds, once fixed.
    target: Option<u64>,
    /// The part target in ticks, once known (it may still grow until `target` is fixed).
    part_target: Option<i64>,
    /// Frames in a part, fixed at the first part.
    part_frames: Option<i64>,
    /// The target may not be fixed below this (an archive picked up from an earlier run).
    floor: u64,
    /// Segments cut without a keyframe so far.
    forced: u64,
    /// The open segment did not start with a keyframe: it ends at the next one.
    open_dependent: bool,
}

fn idx(t: Track) -> usize {
    match t {
        Track::Video => 0,
        Track::Audio => 1,
    }
}

/// Seconds rounded to the nearest whole second, halves up (the rounding RFC 8216 4.3.3.1 applies
/// to EXTINF against the target), at least 1.
pub fn round_secs(ticks: i64) -> u64 {
    ((ticks + CLOCK_HZ / 2).div_euclid(CLOCK_HZ)).max(1) as u64
}

fn secs(ticks: i64) -> f64 {
    ticks as f64 / CLOCK_HZ as f64
}

impl Segmenter {
    pub fn new(cfg: SegmenterConfig) -> Self {
        Segmenter {
            cfg,
            has_video: true,
            start: None,
            part_start: 0,
            first_segment: true,
            pending_discontinuity: false,
            cut_before: None,
            last: [None; 2],
            end: i64::MIN,
            delay: 0,
            last_cut_point: None,
            steps: [0; STEPS],
            nsteps: 0,
            last_key: None,
            longest_gop: 0,
            long_gop_reported: false,
            target: None,
            part_target: None,
            part_frames: None,
            floor: 0,
            forced: 0,
            open_dependent: false,
        }
    }

    /// Whether the stream has video; without it every audio frame is a cut point.
    pub fn set_has_video(&mut self, video: bool) {
        self.has_video = video;
    }

    /// The source broke: the next segment starts at the next keyframe and is marked.
    pub fn discontinuity(&mut self) {
        if self.start.is_some() {
            self.pending_discontinuity = true;
        }
    }

    /// A track's configuration changed (a new init segment): the next frame of `track` starts a
    /// new segment, marked as a discontinuity, keyframe or not.
    pub fn cut_before_next(&mut self, track: Track) {
        if self.start.is_some() {
            self.cut_before = Some(track);
        }
    }

    /// The target duration will be at least `secs`: the playlist continues an earlier run's,
    /// whose target cannot go down.
    pub fn floor_target(&mut self, secs: u64) {
        self.floor = secs;
    }

    /// EXT-X-TARGETDURATION, fixed when the first segment ended.
    pub fn target_duration(&self) -> Option<u64> {
        self.target
    }

    /// The part target in seconds, fixed at the first part.
    pub fn part_target(&self) -> Option<f64> {
        self.part_target.map(secs)
    }

    /// Segments cut without a keyframe so far.
    pub fn forced_cuts(&self) -> u64 {
        self.forced
    }

    /// A segment must end before it is this long, in ticks, so that its duration rounds to at
    /// most the target: half a second past the fixed target, or before it is fixed, past the most
    /// the first segment may measure.
    fn limit(&self) -> i64 {
        let secs = match (self.target, self.cfg.align_ms) {
            (Some(t), _) => t,
            (None, Some(p)) => {
                round_secs(p * (CLOCK_HZ / 1000))
                    + MAX_MEASURED_TARGET_SECS.max(round_secs(self.cfg.target))
            }
            (None, None) => MAX_MEASURED_TARGET_SECS.max(round_secs(self.cfg.target)),
        };
        secs as i64 * CLOCK_HZ + CLOCK_HZ / 2
    }

    /// The interval expected before the next cut point: the longest of the recent ones.
    fn step(&self) -> i64 {
        self.steps[..self.nsteps.min(STEPS)]
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }

    fn fix_target(&mut self, first_len: i64) {
        let t = match self.cfg.align_ms {
            Some(p) => {
                let extra = self.longest_gop.max(self.cfg.target);
                round_secs(p * (CLOCK_HZ / 1000) + extra)
            }
            None => round_secs(self.cfg.target).max(round_secs(first_len)),
        };
        self.target = Some(t.max(self.floor));
    }

    /// The media time (90 kHz) the segment in hand starts at, on the clock its EXTINF is measured
    /// with: a video frame's DTS plus the PTS − DTS delay of the last keyframe (so a keyframe's
    /// PTS), an audio frame's PTS. The delay changes at an open-GOP CRA (its leading pictures need
    /// twice the reorder delay), so the date of a segment follows this clock, not the DTS.
    pub fn segment_start(&self) -> Option<i64> {
        self.start.map(|(t, _)| t)
    }

    /// Decides for the next frame, given the wall clock (Unix ms, in the zone `--align` uses)
    /// when it arrived.
    pub fn frame(&mut self, track: Track, keyframe: bool, dts: i64, pts: i64, now_ms: i64) -> Cut {
        let cut_point = if self.has_video {
            track == Track::Video
        } else {
            track == Track::Audio
        };
        let independent = cut_point && (track == Track::Audio || keyframe);
        if track == Track::Video && keyframe {
            if let Some(k) = self.last_key {
                self.longest_gop = self.longest_gop.max(dts - k);
            }
            self.last_key = Some(dts);
            self.delay = pts - dts;
        }
        let t = if track == Track::Video {
            dts + self.delay
        } else {
            pts
        };
        if cut_point {
            if let Some(p) = self.last_cut_point {
                let d = t - p;
                if d > 0 && d <= CLOCK_HZ {
                    self.steps[self.nsteps % STEPS] = d;
                    self.nsteps = self.nsteps.wrapping_add(1);
                }
            }
            self.last_cut_point = Some(t);
        }
        let decision = self.decide(track, cut_point, independent, t, now_ms);
        match decision {
            Cut::Segment {
                ended, independent, ..
            } => {
                self.open_dependent = ended.is_some() && !independent;
                // The first segment may open on an audio frame that leads the video a little; its
                // clock starts at the first cut point (the first video frame), so the audio lead
                // does not stretch EXTINF past the target.
                self.first_segment = ended.is_none() && !cut_point;
                self.start = Some((t, now_ms));
                self.part_start = t;
            }
            Cut::Part { .. } => self.part_start = t,
            Cut::Continue => {
                if self.first_segment && cut_point {
                    if let Some((s, _)) = &mut self.start {
                        *s = t;
                    }
                    self.part_start = t;
                    self.first_segment = false;
                }
            }
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

    fn decide(
        &mut self,
        track: Track,
        cut_point: bool,
        independent: bool,
        t: i64,
        now_ms: i64,
    ) -> Cut {
        let Some((start, start_wall)) = self.start else {
            return Cut::Segment {
                ended: None,
                last_part: None,
                discontinuity: false,
                independent,
                forced: false,
            };
        };
        if self.cut_before == Some(track) {
            self.cut_before = None;
            self.pending_discontinuity = false;
            return self.segment_cut(start, t, true, independent);
        }
        if !cut_point || self.first_segment {
            return Cut::Continue;
        }
        let len = t - start;
        let step = self.step();
        let due = independent
            && (self.pending_discontinuity
                || self.open_dependent
                || match self.cfg.align_ms {
                    Some(p) if p > 0 => now_ms.div_euclid(p) != start_wall.div_euclid(p),
                    _ => len >= self.cfg.target - CLOCK_HZ / 2000,
                });
        let over = len + step >= self.limit();
        if due || over {
            let disc = independent && std::mem::take(&mut self.pending_discontinuity);
            if !independent {
                self.forced += 1;
            }
            return self.segment_cut(start, t, disc, independent);
        }
        if let Some(want) = self.cfg.part {
            if step > 0 && (self.part_target.is_none() || self.target.is_none()) {
                // A whole number of frames, at least one, of the longest frame seen, rounded up
                // to the millisecond; it only grows, and stops with the first segment.
                let frames = *self
                    .part_frames
                    .get_or_insert(((want as f64 / step as f64).round() as i64).max(1));
                let ms = CLOCK_HZ / 1000;
                let p = (frames * step + ms - 1) / ms * ms;
                self.part_target = Some(self.part_target.map_or(p, |q| q.max(p)));
            }
            if let Some(p) = self.part_target {
                if t - self.part_start + step > p {
                    return Cut::Part {
                        ended: secs(t - self.part_start),
                        independent,
                    };
                }
            }
        }
        Cut::Continue
    }

    fn segment_cut(&mut self, start: i64, t: i64, discontinuity: bool, independent: bool) -> Cut {
        let len = t - start;
        if self.target.is_none() {
            self.fix_target(len);
        }
        Cut::Segment {
            ended: Some(secs(len)),
            last_part: self.cfg.part.map(|_| secs(t - self.part_start)),
            discontinuity,
            independent,
            forced: !independent,
        }
    }

    /// The longest keyframe interval seen, in seconds, once, when it exceeds `--segment-time`
    /// (the segments then follow the keyframes and run long, up to the target duration).
    pub fn long_gop(&mut self) -> Option<f64> {
        if self.long_gop_reported || self.cfg.align_ms.is_some() {
            return None;
        }
        if self.longest_gop > self.cfg.target + CLOCK_HZ / 100 {
            self.long_gop_reported = true;
            return Some(secs(self.longest_gop));
        }
        None
    }

    /// Ends the stream: the durations in seconds of the open segment and of its last part, up to
    /// the end of its last frame. When the stream ends within its first segment, this fixes the
    /// target duration.
    pub fn finish(&mut self) -> Option<(f64, f64)> {
        let (start, _) = self.start.take()?;
        let len = (self.end - start).max(0);
        if self.target.is_none() {
            self.fix_target(len);
        }
        Some((secs(len), secs((self.end - self.part_start).max(0))))
    }
}

#[cfg(test)]
mod tests;
