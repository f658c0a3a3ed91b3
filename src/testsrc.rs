//! The built-in test source: an embedded H.264 + AAC clip, decoded once, replayed forever with
//! continuous timestamps.
//!
//! [`Clip::parse`] runs a container through [`crate::pipeline::Demux`] and re-stamps its frames on
//! an exact grid: video frame `i` at `i` frame durations, audio frame `k` at `k * 1024` samples.
//! [`Clip::events`] then yields the media events of loop after loop, loop `n` shifted by exactly
//! `n` clip durations, so both tracks run on without a gap or an overlap at the seams. Nothing here
//! does I/O or looks at a clock; `river-testsrc` writes the events out and does the pacing.

use crate::error::Diag;
use crate::media::{AudioConfig, Frame, MediaEvent, Track, VideoConfig, CLOCK_HZ};
use crate::pipeline::Demux;

/// The embedded clip: 4 s of 640x360 30 fps H.264 (an IDR every second) and 32 kHz mono AAC
/// (125 frames), made by `assets/testsrc/make.sh`.
pub const CLIP_FLV: &[u8] = include_bytes!("../assets/testsrc/clip.flv");

/// AAC samples per frame.
const AAC_FRAME: i64 = 1024;

/// One loop of media, re-stamped on an exact grid that tiles end to end.
#[derive(Debug, Clone)]
pub struct Clip {
    video: VideoConfig,
    audio: Option<AudioConfig>,
    /// One loop, in decode order (video before audio at equal DTS), timestamps from zero.
    frames: Vec<Frame>,
    /// Loop length in 90 kHz units.
    duration: i64,
    frame_duration: i64,
}

impl Clip {
    /// The embedded clip ([`CLIP_FLV`]).
    pub fn embedded() -> Result<Clip, Diag> {
        Clip::parse(CLIP_FLV)
    }

    /// Decodes a clip (FLV, MPEG-TS or Annex B). It must start on an IDR, carry a known frame rate
    /// that is a whole number of 90 kHz ticks per frame, and, when it has audio, exactly enough AAC
    /// frames to fill the video's duration. Any warning from the demuxer is an error here: a test
    /// source should be clean.
    pub fn parse(data: &[u8]) -> Result<Clip, Diag> {
        let mut demux = Demux::new(None, None, 10.0);
        let (mut events, mut diags) = (Vec::new(), Vec::new());
        demux.push(data, &mut events, &mut diags)?;
        demux.finish(&mut events, &mut diags)?;
        if let Some(d) = diags.into_iter().next() {
            return Err(d);
        }
        let end = data.len() as u64;
        let (mut video, mut audio) = (None, None);
        let (mut vframes, mut aframes) = (Vec::new(), Vec::new());
        for ev in events {
            match ev {
                MediaEvent::Video(c) => {
                    video.get_or_insert(c);
                }
                MediaEvent::Audio(c) => {
                    audio.get_or_insert(c);
                }
                MediaEvent::Frame(f) if f.track == Track::Video => vframes.push(f),
                MediaEvent::Frame(f) => aframes.push(f),
                MediaEvent::Tracks { .. } => {}
                MediaEvent::Discontinuity => {
                    return Err(Diag::new(end, "test clip has a timestamp break"));
                }
            }
        }
        let video = video.ok_or_else(|| Diag::new(end, "test clip has no H.264 video"))?;
        if !vframes.first().is_some_and(|f| f.keyframe) {
            return Err(Diag::new(end, "test clip does not start on an IDR"));
        }
        let frame_duration = match video.frame_rate {
            Some((num, den)) if num > 0 && (CLOCK_HZ * den as i64) % num as i64 == 0 => {
                CLOCK_HZ * den as i64 / num as i64
            }
            _ => {
                return Err(Diag::new(
                    end,
                    "test clip's frame rate is unknown or not a whole number of 90 kHz ticks",
                ))
            }
        };
        let overflow = || Diag::new(end, "test clip too long");
        let duration = frame_duration
            .checked_mul(vframes.len() as i64)
            .ok_or_else(overflow)?;
        let mut frames = Vec::with_capacity(vframes.len() + aframes.len());
        for (i, f) in vframes.into_iter().enumerate() {
            let dts = i as i64 * frame_duration;
            let cts = f.pts.saturating_sub(f.dts).max(0);
            frames.push(Frame {
                dts,
                pts: dts + cts,
                ..f
            });
        }
        if let Some(a) = &audio {
            let sr = a.sample_rate as i64;
            let samples = (aframes.len() as i64)
                .checked_mul(AAC_FRAME * CLOCK_HZ)
                .ok_or_else(overflow)?;
            if sr == 0 || Some(samples) != duration.checked_mul(sr) {
                return Err(Diag::new(
                    end,
                    format!(
                        "test clip's {} AAC frames at {} Hz do not fill its {} video frames exactly",
                        aframes.len(),
                        a.sample_rate,
                        frames.len()
                    ),
                ));
            }
            for (k, f) in aframes.into_iter().enumerate() {
                // Exact: the product is divided once, so rounding never accumulates.
                let ts = k as i64 * AAC_FRAME * CLOCK_HZ / sr;
                frames.push(Frame {
                    dts: ts,
                    pts: ts,
                    ..f
                });
            }
        }
        frames.sort_by_key(|f| (f.dts, f.track));
        Ok(Clip {
            video,
            audio,
            frames,
            duration,
            frame_duration,
        })
    }

    /// The video track's configuration.
    pub fn video(&self) -> &VideoConfig {
        &self.video
    }

    /// The audio track's configuration, when the clip has audio.
    pub fn audio(&self) -> Option<&AudioConfig> {
        self.audio.as_ref()
    }

    /// One loop's frames, re-stamped from zero, in decode order.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// The loop length in 90 kHz units.
    pub fn duration(&self) -> i64 {
        self.duration
    }

    /// One video frame's duration in 90 kHz units.
    pub fn frame_duration(&self) -> i64 {
        self.frame_duration
    }

    /// The stream: `Tracks`, the configurations, then the frames of loop after loop. With `limit`
    /// (90 kHz), it ends before the first frame whose DTS reaches it; without, it never ends.
    pub fn events(&self, limit: Option<i64>) -> Events<'_> {
        Events {
            clip: self,
            header: 0,
            lap: 0,
            index: 0,
            limit,
        }
    }
}

/// The iterator [`Clip::events`] returns.
pub struct Events<'a> {
    clip: &'a Clip,
    header: u8,
    lap: i64,
    index: usize,
    limit: Option<i64>,
}

impl Events<'_> {
    /// How many whole loops have been yielded so far.
    pub fn loops(&self) -> i64 {
        self.lap
    }
}

impl Iterator for Events<'_> {
    type Item = MediaEvent;

    fn next(&mut self) -> Option<MediaEvent> {
        let clip = self.clip;
        loop {
            let h = self.header;
            if h < 3 {
                self.header += 1;
                match h {
                    0 => {
                        return Some(MediaEvent::Tracks {
                            video: true,
                            audio: clip.audio.is_some(),
                        })
                    }
                    1 => return Some(MediaEvent::Video(clip.video.clone())),
                    _ => match &clip.audio {
                        Some(a) => return Some(MediaEvent::Audio(a.clone())),
                        None => continue,
                    },
                }
            }
            let f = clip.frames.get(self.index)?;
            let offset = self.lap.checked_mul(clip.duration)?;
            let dts = f.dts.checked_add(offset)?;
            if self.limit.is_some_and(|l| dts >= l) {
                return None;
            }
            self.index += 1;
            if self.index == clip.frames.len() {
                self.index = 0;
                self.lap += 1;
            }
            return Some(MediaEvent::Frame(Frame {
                dts,
                pts: f.pts.checked_add(offset)?,
                ..f.clone()
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(events: Events<'_>) -> Vec<Frame> {
        events
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn embedded_clip_has_the_documented_shape() {
        let c = Clip::embedded().unwrap();
        assert_eq!((c.video().width, c.video().height), (640, 360));
        assert_eq!(c.video().frame_rate, Some((30, 1)));
        let a = c.audio().unwrap();
        assert_eq!((a.sample_rate, a.channels), (32000, 1));
        assert_eq!(c.duration(), 4 * CLOCK_HZ);
        assert_eq!(c.frame_duration(), 3000);
        let v: Vec<&Frame> = c
            .frames()
            .iter()
            .filter(|f| f.track == Track::Video)
            .collect();
        assert_eq!(v.len(), 120);
        assert_eq!(c.frames().len() - v.len(), 125);
        let keys: Vec<i64> = v.iter().filter(|f| f.keyframe).map(|f| f.dts).collect();
        assert_eq!(keys, [0, 1, 2, 3].map(|s| s * CLOCK_HZ));
        assert!(c.frames().iter().all(|f| f.pts == f.dts));
    }

    #[test]
    fn looped_timestamps_are_continuous_for_both_tracks() {
        let c = Clip::embedded().unwrap();
        let limit = 3 * c.duration() + CLOCK_HZ / 2; // 12.5 s: three seams
        let all = frames(c.events(Some(limit)));
        for (track, step) in [(Track::Video, 3000), (Track::Audio, 2880)] {
            let t: Vec<&Frame> = all.iter().filter(|f| f.track == track).collect();
            // Frame n sits exactly at n steps: no gap, no overlap, no drift across the seams.
            for (n, f) in t.iter().enumerate() {
                assert_eq!(f.dts, n as i64 * step, "{track:?} frame {n}");
                assert_eq!(f.pts, f.dts);
            }
            let want = (limit + step - 1) / step; // frames with dts < limit
            assert_eq!(t.len() as i64, want, "{track:?} count");
        }
        // Decode order overall, and each loop starts on an IDR carrying the same picture as loop 0.
        assert!(all.windows(2).all(|w| w[0].dts <= w[1].dts));
        let video: Vec<&Frame> = all.iter().filter(|f| f.track == Track::Video).collect();
        for lap in 0..3 {
            let first = video[lap * 120];
            assert!(first.keyframe);
            assert_eq!(first.data, video[0].data);
            assert_eq!(first.dts, lap as i64 * c.duration());
        }
        // A keyframe every second, and only then.
        for (i, f) in video.iter().enumerate() {
            assert_eq!(f.keyframe, i % 30 == 0, "video frame {i}");
        }
    }

    #[test]
    fn events_start_with_tracks_and_configs() {
        let c = Clip::embedded().unwrap();
        let head: Vec<MediaEvent> = c.events(None).take(4).collect();
        assert_eq!(
            head[0],
            MediaEvent::Tracks {
                video: true,
                audio: true
            }
        );
        assert!(matches!(&head[1], MediaEvent::Video(v) if v == c.video()));
        assert!(matches!(&head[2], MediaEvent::Audio(a) if Some(a) == c.audio()));
        assert!(
            matches!(&head[3], MediaEvent::Frame(f) if f.track == Track::Video && f.keyframe && f.dts == 0)
        );
    }

    #[test]
    fn limits_and_endless() {
        let c = Clip::embedded().unwrap();
        assert!(frames(c.events(Some(0))).is_empty());
        // 1 tick: the two frames at zero.
        assert_eq!(frames(c.events(Some(1))).len(), 2);
        // Without a limit the stream goes on past many loops.
        let mut ev = c.events(None);
        let n = ev.by_ref().take(245 * 10 + 3).count();
        assert_eq!(n, 245 * 10 + 3);
        assert_eq!(ev.loops(), 10);
    }

    #[test]
    fn clips_that_do_not_tile_are_refused() {
        // Drop the last audio tag of the FLV: 124 AAC frames cannot fill 4 s.
        let mut r = crate::format::flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(CLIP_FLV, &mut evs);
        r.finish(&mut evs);
        let last_audio = evs
            .iter()
            .filter_map(|e| match e {
                crate::format::flv::FlvEvent::Tag(t)
                    if t.kind == crate::format::flv::TagKind::Audio =>
                {
                    Some(t.offset as usize)
                }
                _ => None,
            })
            .last()
            .unwrap();
        let mut cut = CLIP_FLV[..last_audio].to_vec();
        let after = &CLIP_FLV[last_audio..];
        // Skip that tag (11-byte header + body + 4-byte previous size).
        let body = u32::from_be_bytes([0, after[1], after[2], after[3]]) as usize;
        cut.extend_from_slice(&after[11 + body + 4..]);
        let e = Clip::parse(&cut).unwrap_err();
        assert!(e.message.contains("do not fill"), "{e}");
        // And garbage is an error, not a panic.
        assert!(Clip::parse(b"FLV\x01\x05\x00\x00\x00\x09garbage").is_err());
        assert!(Clip::parse(b"").is_err());
    }
}
