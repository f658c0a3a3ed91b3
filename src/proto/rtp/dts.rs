//! DTS for video whose transport carries only presentation times (RTP): what the H.264 and H.265
//! depacketizers and river-rtsp-pull (retina's frames) share.

use crate::media::{VideoCodec, VideoConfig, CLOCK_HZ};

/// Decoding times from presentation times, in decoding order.
///
/// DTS advances one frame duration per access unit from an anchor set at each keyframe, never
/// above PTS, always increasing. The first anchor is PTS minus the reorder delay (in frames).
/// Without leading pictures (H.264: an IDR is shown before what follows it) every anchor is. With
/// them (H.265), later ones continue the running DTS, kept within [PTS − 2·delay, PTS − delay]:
/// an IRAP picture's leading pictures (at most sps_max_num_reorder_pics of them, H.265 7.4.3.2)
/// are decoded after it and shown before it, so an open-GOP CRA needs up to twice the delay
/// (x265's CRA with 2 RASL pictures: DTS = PTS − 4 frames).
///
/// The frame duration comes from the configuration's frame rate, else from the smallest PTS step
/// seen (25 fps until one is).
#[derive(Debug, Clone)]
pub struct DtsClock {
    leading_pictures: bool,
    reorder: i64,
    frame_dur: i64,
    /// The configuration gave the frame rate: PTS steps do not change the frame duration.
    fixed_rate: bool,
    last_pts: Option<i64>,
    last_dts: Option<i64>,
    /// DTS of the last keyframe and units since.
    anchor: Option<(i64, i64)>,
    /// A PTS far from what reordering explains is a clock step: anchor afresh there, DTS may go
    /// back, and a later stage (the [`crate::timeline::Timeline`]) judges the step.
    follow_jumps: bool,
}

/// How far beyond reordering a PTS may lie from the running DTS before it is taken for a clock
/// step (with [`DtsClock::following_jumps`]).
const JUMP: i64 = crate::media::CLOCK_HZ;

impl DtsClock {
    /// `leading_pictures`: keyframes may have leading pictures (H.265).
    pub fn new(leading_pictures: bool) -> Self {
        DtsClock {
            leading_pictures,
            reorder: 0,
            frame_dur: CLOCK_HZ / 25,
            fixed_rate: false,
            last_pts: None,
            last_dts: None,
            anchor: None,
            follow_jumps: false,
        }
    }

    /// Clock steps in the PTS re-anchor the DTS instead of being held strictly increasing: for a
    /// caller whose timeline stage restamps jumps (river-rtsp-pull).
    pub fn following_jumps(mut self) -> Self {
        self.follow_jumps = true;
        self
    }

    /// A clock for `cfg`'s codec, configured by it.
    pub fn for_config(cfg: &VideoConfig) -> Self {
        let mut c = DtsClock::new(cfg.codec == VideoCodec::H265);
        c.configure(cfg);
        c
    }

    /// The stream's frame rate and reorder delay, from its (new) configuration.
    pub fn configure(&mut self, cfg: &VideoConfig) {
        if let Some((n, den)) = cfg.frame_rate.filter(|&(n, d)| n > 0 && d > 0) {
            self.frame_dur = (CLOCK_HZ * i64::from(den) / i64::from(n)).max(1);
            self.fixed_rate = true;
        } else {
            self.fixed_rate = false;
        }
        self.reorder = super::reorder_frames(cfg);
    }

    /// The reorder delay in 90 kHz ticks: how far the first keyframe's DTS lies before its PTS.
    pub fn delay(&self) -> i64 {
        self.reorder * self.frame_dur
    }

    /// The stream joins again at the next unit (a keyframe): its DTS anchors afresh.
    pub fn rejoin(&mut self) {
        self.anchor = None;
        // The step from the last PTS before the join is no frame duration.
        self.last_pts = None;
    }

    /// The DTS of the next access unit (decoding order) with `pts`.
    pub fn stamp(&mut self, pts: i64, key: bool) -> i64 {
        if let Some(lp) = self.last_pts {
            let step = pts - lp;
            if step > 0 && step < self.frame_dur && !self.fixed_rate {
                self.frame_dur = step;
            }
        }
        self.last_pts = Some(pts);
        if let (true, Some((a, k))) = (self.follow_jumps, self.anchor) {
            let expected = a + k * self.frame_dur;
            if pts > expected + 2 * self.delay() + JUMP || pts < expected - JUMP {
                self.anchor = None;
                self.last_dts = None;
            }
        }
        if key || self.anchor.is_none() {
            let hi = pts - self.reorder * self.frame_dur;
            let mut a = match (self.anchor, self.last_dts) {
                (Some(_), Some(ld)) if self.leading_pictures => {
                    (ld + self.frame_dur).clamp(hi - self.reorder * self.frame_dur, hi)
                }
                _ => hi,
            };
            if let Some(ld) = self.last_dts {
                a = a.max(ld + 1);
            }
            self.anchor = Some((a, 0));
        }
        let (a, k) = self.anchor.unwrap_or((pts, 0));
        self.anchor = Some((a, k + 1));
        let mut dts = (a + k * self.frame_dur).min(pts);
        if let Some(ld) = self.last_dts {
            dts = dts.max(ld + 1);
        }
        self.last_dts = Some(dts);
        dts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(codec: VideoCodec) -> VideoConfig {
        VideoConfig {
            codec,
            vps: vec![],
            // H.264 High without VUI: 2 frames of reordering.
            sps: vec![bytes::Bytes::from_static(b"\x67\x64")],
            pps: vec![],
            width: 320,
            height: 240,
            frame_rate: Some((25, 1)),
        }
    }

    #[test]
    fn dts_runs_one_frame_a_unit_from_the_keyframe_never_above_pts() {
        let mut c = DtsClock::for_config(&cfg(VideoCodec::H264));
        assert_eq!(c.delay(), 7200);
        // I0 P3 B1 B2 in decoding order.
        let got: Vec<i64> = [(0, true), (3, false), (1, false), (2, false)]
            .iter()
            .map(|&(n, k)| c.stamp(7200 + n * 3600, k))
            .collect();
        assert_eq!(got, [0, 3600, 7200, 10800]);
    }

    #[test]
    fn a_clock_step_reanchors_only_when_following_jumps() {
        for follow in [false, true] {
            let mut c = DtsClock::for_config(&cfg(VideoCodec::H264));
            if follow {
                c = c.following_jumps();
            }
            let mut last = i64::MIN;
            let mut back = false;
            for (i, pts) in [0, 3600, 7200, 7200 - 900_000, 7200 - 896_400]
                .iter()
                .enumerate()
            {
                let d = c.stamp(*pts, i == 0);
                back |= d <= last;
                assert!(d <= *pts || !follow, "{follow}: dts {d} above pts {pts}");
                last = d;
            }
            assert_eq!(
                back, follow,
                "a 10 s step back moves the DTS back only when following"
            );
        }
    }
}
