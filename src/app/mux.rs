//! river-mux-ts and river-mux-flv: stdin → demux → timeline → mux → stdout.

use std::io::{self, Write};

use anyhow::Context;

use super::stats::Stats;
use super::{pump, EventSink};
use crate::cli::{MuxFlv, MuxTs};
use crate::media::MediaEvent;
use crate::pipeline::{FlvOut, TsOut};
use crate::stdio::require_binary_stdout;

/// Either muxer, writing to stdout after each read so nothing waits for the end of the input.
struct StdoutMux<F> {
    mux: F,
    out: Vec<u8>,
    total: u64,
}

/// Any muxer error that displays: today the `String` of [`TsOut::event`] and [`FlvOut::event`],
/// their typed errors once they have them.
impl<F, E> EventSink for StdoutMux<F>
where
    F: FnMut(&MediaEvent, &mut Vec<u8>) -> Result<(), E>,
    E: std::fmt::Display,
{
    fn event(&mut self, ev: MediaEvent) -> anyhow::Result<bool> {
        (self.mux)(&ev, &mut self.out).map_err(|e| anyhow::anyhow!("muxing: {e}"))?;
        Ok(true)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            let mut stdout = io::stdout().lock();
            stdout.write_all(&self.out).context("writing stdout")?;
            stdout.flush().context("writing stdout")?;
            self.total += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }
}

/// `river-mux-ts`.
pub fn mux_ts(args: MuxTs) -> anyhow::Result<()> {
    require_binary_stdout("MPEG-TS")?;
    let mut ts = TsOut::new();
    let mut sink = StdoutMux {
        mux: move |ev: &MediaEvent, out: &mut Vec<u8>| ts.event(ev, out),
        out: Vec::with_capacity(1 << 20),
        total: 0,
    };
    let mut stats = Stats::start(&args.stats, "mux_ts", "river-mux-ts")?;
    pump(&args.input, &mut sink, &mut stats, |s| s.total)?;
    log::info!("{} bytes of MPEG-TS out", sink.total);
    Ok(())
}

/// `river-mux-flv`.
pub fn mux_flv(args: MuxFlv) -> anyhow::Result<()> {
    require_binary_stdout("FLV")?;
    let mut flv = FlvOut::new();
    let mut sink = StdoutMux {
        mux: move |ev: &MediaEvent, out: &mut Vec<u8>| flv.event(ev, out),
        out: Vec::with_capacity(1 << 20),
        total: 0,
    };
    let mut stats = Stats::start(&args.stats, "mux_flv", "river-mux-flv")?;
    pump(&args.input, &mut sink, &mut stats, |s| s.total)?;
    log::info!("{} bytes of FLV out", sink.total);
    Ok(())
}
