//! [`Demux`]: input bytes of any supported container in, clean media events out. Detection
//! ([`detect()`]) picks the bridge ([`FlvInput`], [`TsInput`] or the Annex B reader), every frame
//! runs through the [`Timeline`], and the [`Gate`] holds the start back.

use super::flv_in::FlvInput;
use super::gate::Gate;
use super::ts_in::TsInput;
use bytes::BytesMut;

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
    /// Input appended by the caller ([`Demux::input_buffer`]) for a parser without a buffer of
    /// its own, or before the format is known.
    staging: BytesMut,
    /// The parser's buffered length when [`Demux::input_buffer`] last handed its buffer out.
    buffered_from: usize,
}

/// What [`Demux::feed`] parses.
#[derive(Clone, Copy)]
enum Feed<'a> {
    Bytes(&'a [u8]),
    /// What the caller appended to the parser's own buffer.
    Buffered,
    End,
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
            staging: BytesMut::new(),
            buffered_from: 0,
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
            return self.feed(Feed::Bytes(&buf), out, diags);
        }
        self.feed(Feed::Bytes(data), out, diags)
    }

    /// Where the caller may append the next input bytes itself, with room for `want` more: once
    /// the input is known to be FLV or Annex B, the parser's own buffer (FLV tags and NAL units
    /// are then split off the bytes as they were read, not copied), else a staging buffer
    /// (MPEG-TS, whose packets are parsed where they lie, and input before detection). Append
    /// only, then call [`Self::push_buffered`]: the two are [`Self::push`] of the appended bytes.
    pub fn input_buffer(&mut self, want: usize) -> &mut BytesMut {
        let Demux {
            inner,
            staging,
            buffered_from,
            ..
        } = self;
        let own = match inner {
            Some(Inner::Flv(f)) => Some(f.input_buffer(want)),
            Some(Inner::H264(r)) => Some(r.input_buffer(want)),
            Some(Inner::H265(r)) => Some(r.input_buffer(want)),
            Some(Inner::Ts(_)) | None => None,
        };
        match own {
            Some(buf) => {
                *buffered_from = buf.len();
                buf
            }
            None => {
                staging.reserve(want);
                staging
            }
        }
    }

    /// Parses what was appended to [`Self::input_buffer`] since it was handed out, as
    /// [`Self::push`] does.
    pub fn push_buffered(
        &mut self,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        if !self.staging.is_empty() {
            let data = std::mem::take(&mut self.staging);
            let res = self.push(&data, out, diags);
            self.staging = data;
            self.staging.clear();
            return res;
        }
        let len = match &mut self.inner {
            Some(Inner::Flv(f)) => f.input_buffer(0).len(),
            Some(Inner::H264(r)) => r.input_buffer(0).len(),
            Some(Inner::H265(r)) => r.input_buffer(0).len(),
            Some(Inner::Ts(_)) | None => return Ok(()),
        };
        self.consumed += len.saturating_sub(self.buffered_from) as u64;
        self.buffered_from = 0;
        self.feed(Feed::Buffered, out, diags)
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
            self.feed(Feed::Bytes(&buf), out, diags)?;
        }
        self.feed(Feed::End, out, diags)
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
        src: Feed<'_>,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.scratch);
        evs.clear();
        let eof = matches!(src, Feed::End);
        let data = match src {
            Feed::Bytes(d) => d,
            Feed::Buffered | Feed::End => &[],
        };
        let res = match self.inner.as_mut() {
            Some(Inner::Flv(f)) => match src {
                Feed::Buffered => f.parse_buffered(&mut evs, diags),
                _ => f.push(data, eof, &mut evs, diags),
            },
            Some(Inner::Ts(t)) => t.push(data, eof, &mut evs, diags),
            Some(Inner::H264(r)) => {
                match src {
                    Feed::Bytes(data) => r.push(data, &mut evs, diags),
                    Feed::Buffered => r.push_buffered(&mut evs, diags),
                    Feed::End => r.finish(&mut evs, diags),
                }
                Ok(())
            }
            Some(Inner::H265(r)) => {
                match src {
                    Feed::Bytes(data) => r.push(data, &mut evs, diags),
                    Feed::Buffered => r.push_buffered(&mut evs, diags),
                    Feed::End => r.finish(&mut evs, diags),
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
