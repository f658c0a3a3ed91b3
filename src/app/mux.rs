//! river-mux-ts and river-mux-flv: stdin → demux → timeline → mux → stdout.

use std::io::{self, Write};

use anyhow::Context;

use crate::cli::{MuxFlv, MuxInput, MuxTs};
use crate::error::Diag;
use crate::media::MediaEvent;
use crate::pipeline::{Demux, FlvOut, TsOut};
use crate::stdio::{read_some, require_binary_stdout, ReadOutcome};

/// How much is read from stdin at once. A read returns what is there, so a live pipe is never
/// delayed by this; it only caps the work per step.
const READ_CHUNK: usize = 256 * 1024;

/// An output muxer the remux loop can drive.
trait Sink {
    fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String>;
}

impl Sink for TsOut {
    fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String> {
        TsOut::event(self, ev, out)
    }
}

impl Sink for FlvOut {
    fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String> {
        FlvOut::event(self, ev, out)
    }
}

fn log_diags(diags: &mut Vec<Diag>) {
    for d in diags.drain(..) {
        log::warn!("stdin: {d}");
    }
}

/// stdin → demux → timeline → mux → stdout, one read at a time. Output for each read is written
/// before the next read, so nothing waits for the end of the input.
fn remux(input: &MuxInput, mut sink: impl Sink) -> anyhow::Result<()> {
    let mut demux = Demux::new(
        input.input_format,
        input.fps.map(|f| (f.num, f.den)),
        input.max_gap,
    );
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut events = Vec::new();
    let mut diags = Vec::new();
    let mut out = Vec::with_capacity(READ_CHUNK * 2);
    let mut total_in: u64 = 0;
    let mut total_out: u64 = 0;
    let mut frames: u64 = 0;
    let mut fatal = None;
    loop {
        let n = match read_some(&mut stdin, &mut buf).context("reading stdin")? {
            ReadOutcome::Data(n) => n,
            ReadOutcome::Eof => break,
            ReadOutcome::Stop => {
                log::info!("stop signal: finishing the data in hand");
                break;
            }
        };
        total_in += n as u64;
        if let Err(e) = demux.push(&buf[..n], &mut events, &mut diags) {
            fatal = Some(e);
        }
        log_diags(&mut diags);
        for ev in events.drain(..) {
            frames += matches!(ev, MediaEvent::Frame(_)) as u64;
            sink.event(&ev, &mut out)
                .map_err(|e| anyhow::anyhow!("muxing: {e}"))?;
        }
        if !out.is_empty() {
            stdout.write_all(&out).context("writing stdout")?;
            stdout.flush().context("writing stdout")?;
            total_out += out.len() as u64;
            out.clear();
        }
        if fatal.is_some() {
            break;
        }
    }
    if fatal.is_none() {
        if let Err(e) = demux.finish(&mut events, &mut diags) {
            fatal = Some(e);
        }
    }
    log_diags(&mut diags);
    for ev in events.drain(..) {
        frames += matches!(ev, MediaEvent::Frame(_)) as u64;
        sink.event(&ev, &mut out)
            .map_err(|e| anyhow::anyhow!("muxing: {e}"))?;
    }
    stdout.write_all(&out).context("writing stdout")?;
    stdout.flush().context("writing stdout")?;
    total_out += out.len() as u64;
    let r = demux.repairs();
    log::info!(
        "{} bytes of {} in, {frames} frames, {total_out} bytes out; timeline: {} wraps, {} jumps, {} DTS and {} PTS clamped",
        total_in,
        demux.format().map_or("unknown input", |f| match f {
            crate::cli::InputFormat::Flv => "FLV",
            crate::cli::InputFormat::Ts => "MPEG-TS",
            crate::cli::InputFormat::H264 => "H.264 Annex B",
        }),
        r.wraps,
        r.jumps,
        r.dts_clamped,
        r.pts_clamped
    );
    if let Some(e) = fatal {
        return Err(anyhow::anyhow!("stdin: {e}"));
    }
    if total_in > 0 && frames == 0 {
        anyhow::bail!("stdin: no decodable H.264/AAC frames in {total_in} bytes of input");
    }
    Ok(())
}

/// `river-mux-ts`.
pub fn mux_ts(args: MuxTs) -> anyhow::Result<()> {
    require_binary_stdout("MPEG-TS")?;
    remux(&args.input, TsOut::new())
}

/// `river-mux-flv`.
pub fn mux_flv(args: MuxFlv) -> anyhow::Result<()> {
    require_binary_stdout("FLV")?;
    remux(&args.input, FlvOut::new())
}
