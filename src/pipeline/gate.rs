//! The start gate: holds a stream's start back (bounded) until every announced track has its
//! configuration and the video can start on a keyframe.

use crate::codec::h265::JoinFilter;
use crate::error::Diag;
use crate::media::{AudioConfig, Codec, MediaEvent, Track, VideoConfig, CLOCK_HZ};

/// Holds the start of a stream back until every announced track has its configuration and a video
/// keyframe has arrived, so muxers can write complete headers and the output starts decodable.
/// An H.265 stream that starts on a CRA picture loses that picture's RASL pictures (they reference
/// pictures from before the start).
/// Bounded: after [`Gate::MAX_WAIT`] of media, or [`Gate::MAX_BYTES`], it gives up waiting for a
/// missing track and lets the stream through without it.
#[derive(Default)]
pub(super) struct Gate {
    announced: Option<(bool, bool)>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    held: Vec<MediaEvent>,
    held_bytes: usize,
    open: bool,
    dropped_video: u64,
    dropped_unconfigured: [u64; 2],
    /// Subtracted from every timestamp that leaves the gate: the earliest DTS held at release, so
    /// output starts at zero.
    origin: i64,
    /// The RASL pictures of the H.265 CRA picture the stream starts with.
    join: JoinFilter,
}

impl Gate {
    const MAX_WAIT: i64 = 3 * CLOCK_HZ;
    const MAX_BYTES: usize = 32 << 20;

    pub(super) fn announce(&mut self, video: bool, audio: bool) {
        self.announced = Some((video, audio));
    }

    pub(super) fn push(
        &mut self,
        ev: MediaEvent,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
        at: u64,
    ) {
        match &ev {
            MediaEvent::Tracks { video, audio } => {
                self.announce(*video, *audio);
                if !self.open {
                    return;
                }
            }
            MediaEvent::Video(c) => self.video = Some(c.clone()),
            MediaEvent::Audio(c) => self.audio = Some(c.clone()),
            MediaEvent::Discontinuity => {
                // Before the stream starts there is nothing to break.
                if !self.open {
                    return;
                }
            }
            MediaEvent::Frame(f) => {
                let configured = match f.track {
                    Track::Video => self.video.is_some(),
                    Track::Audio => self.audio.is_some(),
                };
                if !configured {
                    let n = &mut self.dropped_unconfigured[(f.track == Track::Audio) as usize];
                    if *n == 0 {
                        diags.push(Diag::new(
                            at,
                            format!("{:?} frames before the track's configuration (SPS/PPS or AudioSpecificConfig) are dropped", f.track),
                        ));
                    }
                    *n += 1;
                    return;
                }
            }
        }
        if self.open {
            if let MediaEvent::Frame(f) = &ev {
                if f.codec == Codec::H265 && !self.join.keep(&f.data) {
                    return;
                }
            }
            self.report_rasl(diags, at);
            out.push(self.rebase(ev));
            return;
        }
        if let MediaEvent::Frame(f) = &ev {
            if f.track == Track::Video && !f.keyframe && !self.held.iter().any(is_video_keyframe) {
                if self.dropped_video == 0 {
                    diags.push(Diag::new(at, "video before the first keyframe is dropped"));
                }
                self.dropped_video += 1;
                return;
            }
            self.held_bytes += f.data.len();
        }
        let is_frame = matches!(ev, MediaEvent::Frame(_));
        self.held.push(ev);
        if !is_frame {
            // A configuration precedes its frames: decide when the frame itself is held.
            return;
        }
        if self.ready() {
            self.release(out);
            self.report_rasl(diags, at);
        } else if self.overdue() {
            let (v, a) = self.announced.unwrap_or((true, true));
            let missing = match (v && self.video.is_none(), a && self.audio.is_none()) {
                (true, true) => "video and audio",
                (true, false) => "video",
                _ => "audio",
            };
            diags.push(Diag::new(
                at,
                format!(
                    "no {missing} configuration after {} s of input; continuing without it",
                    Self::MAX_WAIT / CLOCK_HZ
                ),
            ));
            self.release(out);
            self.report_rasl(diags, at);
        }
    }

    fn rebase(&self, ev: MediaEvent) -> MediaEvent {
        match ev {
            MediaEvent::Frame(mut f) => {
                f.dts -= self.origin;
                f.pts -= self.origin;
                MediaEvent::Frame(f)
            }
            other => other,
        }
    }

    fn ready(&self) -> bool {
        let (want_v, want_a) = match self.announced {
            Some(a) => a,
            None => return false,
        };
        let v_ok = !want_v || (self.video.is_some() && self.held.iter().any(is_video_keyframe));
        let a_ok = !want_a || self.audio.is_some();
        v_ok && a_ok && self.held.iter().any(|e| matches!(e, MediaEvent::Frame(_)))
    }

    fn overdue(&self) -> bool {
        if self.held_bytes > Self::MAX_BYTES {
            return true;
        }
        let mut lo = [i64::MAX; 2];
        let mut hi = [i64::MIN; 2];
        for e in &self.held {
            if let MediaEvent::Frame(f) = e {
                let i = (f.track == Track::Audio) as usize;
                lo[i] = lo[i].min(f.dts);
                hi[i] = hi[i].max(f.dts);
            }
        }
        (0..2).any(|i| hi[i] != i64::MIN && hi[i] - lo[i] > Self::MAX_WAIT)
    }

    fn release(&mut self, out: &mut Vec<MediaEvent>) {
        self.open = true;
        let (want_v, want_a) = self.announced.unwrap_or((true, true));
        out.push(MediaEvent::Tracks {
            video: want_v && self.video.is_some(),
            audio: want_a && self.audio.is_some(),
        });
        // Configurations first, then the held frames (without video frames that precede the first
        // keyframe, which could not be decoded).
        if let Some(v) = &self.video {
            out.push(MediaEvent::Video(v.clone()));
        }
        if let Some(a) = &self.audio {
            out.push(MediaEvent::Audio(a.clone()));
        }
        let mut seen_key = false;
        let join = &mut self.join;
        let held: Vec<MediaEvent> = std::mem::take(&mut self.held)
            .into_iter()
            .filter(|e| match e {
                MediaEvent::Frame(f) if f.track == Track::Video => {
                    if !seen_key && f.keyframe {
                        seen_key = true;
                        if f.codec == Codec::H265 {
                            join.join(&f.data);
                        }
                        return true;
                    }
                    seen_key && (f.codec != Codec::H265 || join.keep(&f.data))
                }
                MediaEvent::Frame(_) => true,
                _ => false,
            })
            .collect();
        self.origin = held
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f.dts),
                _ => None,
            })
            .min()
            .unwrap_or(0);
        for e in held {
            out.push(self.rebase(e));
        }
        self.held_bytes = 0;
    }

    pub(super) fn flush(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>, at: u64) {
        if !self.open && !self.held.is_empty() {
            if !self.ready() {
                diags.push(Diag::new(at, "input ended before every announced track was configured; writing what there is"));
            }
            self.release(out);
        }
        self.report_rasl(diags, at);
    }

    fn report_rasl(&mut self, diags: &mut Vec<Diag>, at: u64) {
        let n = self.join.take_dropped();
        if n > 0 {
            diags.push(Diag::new(
                at,
                format!("dropped {n} RASL pictures: they reference pictures from before the CRA picture the stream starts with"),
            ));
        }
    }
}

fn is_video_keyframe(e: &MediaEvent) -> bool {
    matches!(e, MediaEvent::Frame(f) if f.track == Track::Video && f.keyframe)
}
