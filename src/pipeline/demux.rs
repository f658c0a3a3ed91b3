//! [`Demux`]: input bytes of any supported container in, clean media events out. Detection
//! ([`detect()`]) picks the bridge ([`FlvInput`], [`TsInput`] or the Annex B reader), every frame
//! runs through the [`Timeline`], and the [`Gate`] holds the start back.

use super::flv_in::FlvInput;
use super::gate::Gate;
use super::ts_in::TsInput;
use crate::codec::{h264, h265};
use crate::error::Diag;
use crate::format::detect;
use crate::media::{MediaEvent, StreamFormat, CLOCK_HZ};
use crate::timeline::{Timeline, TimelineConfig, WRAP_FLV, WRAP_TS};

/// The input side: bytes in, clean media events out.
pub struct Demux {
    forced: Option<StreamFormat>,
    fps: Option<(u32, u32)>,
    max_gap: i64,
    drop_unsupported: bool,
    pending: Vec<u8>,
    inner: Option<Inner>,
    timeline: Timeline,
    gate: Gate,
    /// Bytes pushed so far (offsets of diagnostics that are not the parsers' own).
    consumed: u64,
    scratch: Vec<MediaEvent>,
}

enum Inner {
    Flv(FlvInput),
    Ts(TsInput),
    H264(h264::AnnexBReader),
    H265(h265::AnnexBReader),
}

impl Demux {
    /// `forced` skips detection ([`StreamFormat::Opaque`] reads as Annex B); `fps` is the Annex B
    /// frame-rate override; `max_gap` is the timeline's forward-jump threshold in seconds.
    pub fn new(forced: Option<StreamFormat>, fps: Option<(u32, u32)>, max_gap: f64) -> Self {
        let max_gap = (max_gap.max(0.0) * CLOCK_HZ as f64) as i64;
        Demux {
            forced,
            fps,
            max_gap,
            drop_unsupported: false,
            pending: Vec::new(),
            inner: None,
            timeline: Timeline::new(TimelineConfig::new(None)),
            gate: Gate::default(),
            consumed: 0,
            scratch: Vec::new(),
        }
    }

    /// An audio or video track in a codec river does not carry (or a second one of a kind) ends the
    /// input with an error naming it, unless `drop` is set: then it is dropped with one warning and
    /// the other tracks go on. Set it before the first push.
    pub fn set_drop_unsupported(&mut self, drop: bool) {
        self.drop_unsupported = drop;
    }

    /// [`Self::set_drop_unsupported`] at construction, for readers that take what they can of a
    /// stream someone else chose (relay views, thumbnails) and log the rest.
    #[must_use]
    pub fn dropping_unsupported(mut self) -> Self {
        self.drop_unsupported = true;
        self
    }

    /// The detected (or forced) input format, once known.
    pub fn format(&self) -> Option<StreamFormat> {
        self.inner.as_ref().map(|i| match i {
            Inner::Flv(_) => StreamFormat::Flv,
            Inner::Ts(_) => StreamFormat::Ts,
            Inner::H264(_) => StreamFormat::AnnexB,
            Inner::H265(_) => StreamFormat::AnnexBH265,
        })
    }

    /// The timeline's repair counters.
    pub fn repairs(&self) -> crate::timeline::Repairs {
        self.timeline.repairs()
    }

    fn start(&mut self, fmt: StreamFormat) {
        let wrap = match fmt {
            StreamFormat::Flv => Some(WRAP_FLV),
            StreamFormat::Ts => Some(WRAP_TS),
            StreamFormat::AnnexB | StreamFormat::AnnexBH265 | StreamFormat::Opaque => None,
        };
        let mut cfg = TimelineConfig::new(wrap);
        cfg.max_gap = self.max_gap;
        self.timeline = Timeline::new(cfg);
        self.inner = Some(match fmt {
            StreamFormat::Flv => {
                let mut f = FlvInput::default();
                f.drop_unsupported = self.drop_unsupported;
                Inner::Flv(f)
            }
            StreamFormat::Ts => {
                let mut t = TsInput::default();
                t.drop_unsupported = self.drop_unsupported;
                Inner::Ts(t)
            }
            StreamFormat::AnnexB | StreamFormat::Opaque => {
                self.gate.announce(true, false);
                Inner::H264(h264::AnnexBReader::new(self.fps))
            }
            StreamFormat::AnnexBH265 => {
                self.gate.announce(true, false);
                Inner::H265(h265::AnnexBReader::new(self.fps))
            }
        });
    }

    /// Pushes input bytes. Clean events are appended to `out`, problems to `diags`. An `Err` means
    /// the input cannot be continued.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        self.consumed += data.len() as u64;
        if self.inner.is_none() {
            self.pending.extend_from_slice(data);
            let fmt = match self.forced {
                Some(f) => f,
                None => match detect(&self.pending, false) {
                    Some(f) => f,
                    None => return Ok(()),
                },
            };
            self.start(fmt);
            let buf = std::mem::take(&mut self.pending);
            return self.feed(&buf, out, diags, false);
        }
        self.feed(data, out, diags, false)
    }

    /// Ends the input: flushes whatever the parsers and the gate still hold.
    pub fn finish(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) -> Result<(), Diag> {
        if self.inner.is_none() {
            if self.pending.is_empty() {
                return Ok(());
            }
            let fmt = self
                .forced
                .or_else(|| detect(&self.pending, true))
                .unwrap_or(StreamFormat::Opaque);
            self.start(fmt);
            let buf = std::mem::take(&mut self.pending);
            self.feed(&buf, out, diags, false)?;
        }
        self.feed(&[], out, diags, true)
    }

    /// Stops early (a stop signal): the frames the start gate holds are let out, but units the
    /// parsers are still collecting (a video PES waiting for the next one, an access unit waiting
    /// for the next start code, a tag still arriving) are dropped, since their bytes may be
    /// incomplete. Returns how many bytes were pushed in all.
    pub fn stop(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) -> u64 {
        if self.inner.is_some() {
            self.gate.flush(out, diags, self.consumed);
        }
        self.consumed
    }

    fn feed(
        &mut self,
        data: &[u8],
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
        eof: bool,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.scratch);
        evs.clear();
        let res = match self.inner.as_mut() {
            Some(Inner::Flv(f)) => f.push(data, eof, &mut evs, diags),
            Some(Inner::Ts(t)) => t.push(data, eof, &mut evs, diags),
            Some(Inner::H264(r)) => {
                if eof {
                    r.finish(&mut evs, diags);
                } else {
                    r.push(data, &mut evs, diags);
                }
                Ok(())
            }
            Some(Inner::H265(r)) => {
                if eof {
                    r.finish(&mut evs, diags);
                } else {
                    r.push(data, &mut evs, diags);
                }
                Ok(())
            }
            None => Ok(()),
        };
        for ev in evs.drain(..) {
            match ev {
                MediaEvent::Frame(mut f) => {
                    if let Some(j) = self.timeline.process(&mut f) {
                        // One break in the source shows on both tracks: mark it once.
                        if !j.follows_other_track {
                            self.gate
                                .push(MediaEvent::Discontinuity, out, diags, self.consumed);
                        }
                        diags.push(Diag::new(
                            self.consumed,
                            format!(
                                "{:?} timestamps jumped by {:.3} s; re-stamped to continue the timeline",
                                j.track,
                                j.step as f64 / CLOCK_HZ as f64
                            ),
                        ));
                    }
                    self.gate
                        .push(MediaEvent::Frame(f), out, diags, self.consumed);
                }
                other => self.gate.push(other, out, diags, self.consumed),
            }
        }
        if eof {
            self.gate.flush(out, diags, self.consumed);
        }
        self.scratch = evs;
        res
    }
}
