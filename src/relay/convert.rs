//! Derived views: a broadcast re-muxed into another container (FLV → TS, TS → FLV, Annex B → either),
//! on [`crate::pipeline`]'s [`Demux`] and [`TsOut`]/[`FlvOut`].

use crate::cli::InputFormat;
use crate::error::Diag;
use crate::media::MediaEvent;
use crate::pipeline::{Demux, FlvOut, TsOut};

use super::stream::StreamFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViewFormat {
    Flv,
    Ts,
}

enum Out {
    Flv(FlvOut),
    Ts(TsOut),
}

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
        let fmt = match (input, output) {
            (StreamFormat::Opaque, _)
            | (StreamFormat::Flv, ViewFormat::Flv)
            | (StreamFormat::Ts, ViewFormat::Ts) => return None,
            (StreamFormat::Flv, _) => InputFormat::Flv,
            (StreamFormat::Ts, _) => InputFormat::Ts,
            (StreamFormat::AnnexB, _) => InputFormat::H264,
        };
        Some(Convert {
            demux: Demux::new(Some(fmt), None, 10.0),
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
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.failed {
            return Ok(());
        }
        let mut diags = Vec::new();
        let r = self.demux.push(data, &mut self.events, &mut diags);
        self.keep_diags(diags);
        let r = r.map_err(|d| d.to_string()).and_then(|()| self.mux(out));
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
            self.keep_diags(vec![Diag::new(0, e)]);
        }
        self.failed = true;
    }

    fn mux(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        for ev in self.events.drain(..) {
            match &mut self.out {
                Out::Flv(f) => f.event(&ev, out)?,
                Out::Ts(t) => t.event(&ev, out)?,
            }
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
