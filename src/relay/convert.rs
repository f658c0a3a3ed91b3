//! Derived views: a broadcast re-muxed into another container (FLV → TS, TS → FLV, Annex B → either),
//! on [`crate::pipeline`]'s [`Demux`] and [`TsOut`]/[`FlvOut`].

use crate::error::Diag;
use crate::media::{MediaEvent, StreamFormat};
use crate::pipeline::{Demux, FlvOut, TsOut};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViewFormat {
    Flv,
    Ts,
}

enum Out {
    Flv(FlvOut),
    Ts(TsOut),
}

/// Why a view cannot continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// The broadcast cannot be demuxed further (an unsupported codec, say), at this offset in the
    /// broadcast's bytes.
    Demux(Diag),
    /// The muxer refused what the demuxer gave. The text is [`FlvOut::event`]'s or
    /// [`TsOut::event`]'s, which still report a `String`.
    Mux(String),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Demux(d) => write!(f, "{d}"),
            ConvertError::Mux(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Most diagnostics kept for [`Convert::take_diags`].
const MAX_DIAGS: usize = 64;

pub struct Convert {
    demux: Demux,
    out: Out,
    events: Vec<MediaEvent>,
    diags: Vec<Diag>,
    /// Diagnostics dropped because [`MAX_DIAGS`] were pending.
    pub diags_dropped: u64,
    failed: bool,
}

impl Convert {
    /// `None` for opaque content, or when the view is the broadcast's own format.
    pub fn new(input: StreamFormat, output: ViewFormat) -> Option<Self> {
        match (input, output) {
            (StreamFormat::Opaque, _)
            | (StreamFormat::Flv, ViewFormat::Flv)
            | (StreamFormat::Ts, ViewFormat::Ts) => return None,
            _ => {}
        }
        Some(Convert {
            // A view carries what it can of the broadcast: a track river does not carry is
            // dropped with a log line, not the whole view.
            demux: Demux::new(Some(input), None, 10.0).dropping_unsupported(),
            out: match output {
                ViewFormat::Flv => Out::Flv(FlvOut::new()),
                ViewFormat::Ts => Out::Ts(TsOut::new()),
            },
            events: Vec::new(),
            diags: Vec::new(),
            diags_dropped: 0,
            failed: false,
        })
    }

    /// Feeds broadcast bytes; appends view bytes to `out`. An `Err` means the view cannot continue
    /// (for example an unsupported codec); later pushes are ignored.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ConvertError> {
        if self.failed {
            return Ok(());
        }
        let mut diags = Vec::new();
        let r = self.demux.push(data, &mut self.events, &mut diags);
        self.keep_diags(diags);
        let r = r.map_err(ConvertError::Demux).and_then(|()| self.mux(out));
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Ends the broadcast: flushes what the demuxer still holds.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let mut diags = Vec::new();
        let r = self.demux.finish(&mut self.events, &mut diags);
        self.keep_diags(diags);
        if let Err(d) = r {
            self.keep_diags(vec![d]);
        }
        if let Err(e) = self.mux(out) {
            self.keep_diags(vec![Diag::new(0, e.to_string())]);
        }
        self.failed = true;
    }

    fn mux(&mut self, out: &mut Vec<u8>) -> Result<(), ConvertError> {
        for ev in self.events.drain(..) {
            match &mut self.out {
                Out::Flv(f) => f.event(&ev, out),
                Out::Ts(t) => t.event(&ev, out),
            }
            .map_err(ConvertError::Mux)?;
        }
        Ok(())
    }

    fn keep_diags(&mut self, diags: Vec<Diag>) {
        for d in diags {
            if self.diags.len() < MAX_DIAGS {
                self.diags.push(d);
            } else {
                self.diags_dropped += 1;
            }
        }
    }

    /// Problems the demuxer recovered from since the last call (for the caller to log).
    pub fn take_diags(&mut self) -> Vec<Diag> {
        std::mem::take(&mut self.diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::detect;
    use crate::media::Track;
    use crate::relay::testdata::{self, Rng};

    fn view(input: &[u8], from: StreamFormat, to: ViewFormat, max_cut: usize) -> Vec<u8> {
        let mut c = Convert::new(from, to).expect("a view");
        let mut out = Vec::new();
        let mut at = 0;
        for n in Rng(7).cuts(input.len(), max_cut) {
            c.push(&input[at..at + n], &mut out).unwrap();
            at += n;
        }
        c.finish(&mut out);
        assert!(c.take_diags().is_empty());
        out
    }

    /// (video frames, video keyframes, audio frames) as river's own demuxer sees them.
    fn counts(data: &[u8]) -> (usize, usize, usize) {
        let mut d = Demux::new(None, None, 10.0);
        let (mut ev, mut diags) = (Vec::new(), Vec::new());
        d.push(data, &mut ev, &mut diags).unwrap();
        d.finish(&mut ev, &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
        let mut n = (0, 0, 0);
        for e in ev {
            if let MediaEvent::Frame(f) = e {
                match f.track {
                    Track::Video => {
                        n.0 += 1;
                        n.1 += f.keyframe as usize;
                    }
                    Track::Audio => n.2 += 1,
                }
            }
        }
        n
    }

    #[test]
    fn flv_to_ts_and_ts_to_flv_keep_every_frame() {
        let flv = testdata::flv();
        let want = counts(&flv);
        assert_eq!(want, (120, 4, 125));
        let ts = view(&flv, StreamFormat::Flv, ViewFormat::Ts, 4000);
        assert_eq!(detect(&ts, true), Some(StreamFormat::Ts));
        assert_eq!(counts(&ts), want);
        let back = view(&ts, StreamFormat::Ts, ViewFormat::Flv, 777);
        assert_eq!(detect(&back, true), Some(StreamFormat::Flv));
        assert_eq!(counts(&back), want);
        // The view does not depend on how the broadcast arrived.
        assert_eq!(view(&flv, StreamFormat::Flv, ViewFormat::Ts, 1 << 20), ts);
    }

    #[test]
    fn annexb_to_either() {
        let a = testdata::annexb();
        for to in [ViewFormat::Flv, ViewFormat::Ts] {
            let v = view(&a, StreamFormat::AnnexB, to, 3000);
            assert_eq!(counts(&v), (120, 4, 0));
        }
    }

    /// A view carries what it can: MP3 audio beside H.264 is dropped with one log line, the video
    /// goes on (the tools fail on it unless told --drop-unsupported; a view of someone's broadcast
    /// does not).
    #[test]
    fn a_track_river_does_not_carry_is_dropped_from_views() {
        let flv = testdata::flv();
        let mut r = crate::format::flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(&flv, &mut evs);
        r.finish(&mut evs);
        let mut mp3 = Vec::new();
        crate::format::flv::write_header(true, true, &mut mp3);
        for e in evs {
            if let crate::format::flv::FlvEvent::Tag(t) = e {
                let mut body = t.body.to_vec();
                if t.kind == crate::format::flv::TagKind::Audio {
                    body[0] = 0x2f; // MP3
                }
                crate::format::flv::write_tag(t.kind, t.timestamp, &body, &mut mp3).unwrap();
            }
        }
        let mut c = Convert::new(StreamFormat::Flv, ViewFormat::Ts).unwrap();
        let mut out = Vec::new();
        c.push(&mp3, &mut out).unwrap();
        c.finish(&mut out);
        let diags = c.take_diags();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("MP3"), "{diags:?}");
        assert_eq!(counts(&out), (120, 4, 0));
    }

    #[test]
    fn no_view_of_opaque_or_the_same_format() {
        assert!(Convert::new(StreamFormat::Opaque, ViewFormat::Ts).is_none());
        assert!(Convert::new(StreamFormat::Flv, ViewFormat::Flv).is_none());
        assert!(Convert::new(StreamFormat::Ts, ViewFormat::Ts).is_none());
        assert!(Convert::new(StreamFormat::Ts, ViewFormat::Flv).is_some());
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut c = Convert::new(StreamFormat::Flv, ViewFormat::Ts).unwrap();
        let mut out = Vec::new();
        let _ = c.push(
            b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00garbage garbage",
            &mut out,
        );
        let _ = c.push(&[0xFF; 5000], &mut out);
        c.finish(&mut out);
    }
}
