//! Per-tool glue: each tool's `run(args)`. The binaries in `src/bin/` hand these to
//! [`crate::stdio::main_with`].

mod hls_files;
mod hls_seg;
mod mux;
mod relay;
mod rtmp_in;
mod rtsp_pull;
mod stats;
mod testsrc;
mod thumb;

pub use hls_seg::hls_seg;
pub use mux::{mux_flv, mux_ts};
pub use relay::relay;
pub use rtmp_in::rtmp_in;
pub use rtsp_pull::rtsp_pull;
pub use testsrc::testsrc;

use std::time::Instant;

use anyhow::Context;

use crate::cli::MuxInput;
use crate::error::Diag;
use crate::media::{MediaEvent, StreamFormat};
use crate::pipeline::Demux;
use crate::stdio::{read_stdin_into, ReadOutcome};
use stats::Stats;

/// How much is read from stdin at once. A read returns what is there, so a live pipe is never
/// delayed by this; it only caps the work per step.
const READ_CHUNK: usize = 256 * 1024;

/// Where the media events from stdin go.
pub(crate) trait EventSink {
    /// One clean media event. `Ok(false)` stops reading (the tool has what it wanted).
    fn event(&mut self, ev: MediaEvent) -> anyhow::Result<bool>;
    /// Called after each read's events: push what was produced downstream.
    fn flush(&mut self) -> anyhow::Result<()>;
}

/// What [`pump`] saw.
pub(crate) struct PumpStats {
    pub bytes_in: u64,
    pub frames: u64,
}

/// Counts a read's events, its bytes and the timeline's repairs so far in the meter.
fn count(stats: &Stats, events: &[MediaEvent], demux: &Demux, read: usize) {
    let r = demux.repairs();
    stats.with(|m| {
        for ev in events {
            m.event(ev);
        }
        m.bytes_in += read as u64;
        m.repairs = r.wraps + r.jumps + r.dts_clamped + r.pts_clamped;
    });
}

fn log_diags(diags: &mut Vec<Diag>) {
    for d in diags.drain(..) {
        log::warn!("stdin: {d}");
    }
}

/// Hands the events to the sink (until it has enough), counting frames.
fn deliver(
    events: &mut Vec<MediaEvent>,
    sink: &mut impl EventSink,
    stats: &mut PumpStats,
    more: &mut bool,
) -> anyhow::Result<()> {
    for ev in events.drain(..) {
        stats.frames += matches!(ev, MediaEvent::Frame(_)) as u64;
        if *more && !sink.event(ev)? {
            *more = false;
        }
    }
    Ok(())
}

/// stdin → demux (detection, bridges, timeline, start gate) → `sink`, one read at a time, until end
/// of input, a stop signal, or the sink has enough. Fails when the input cannot be continued or
/// held no media at all.
/// Reads stdin through a [`Demux`] into `sink` until the end, a fatal error or a stop signal;
/// `stats` counts what passes (`--stats`, `--metrics`), and `out` tells how many bytes the sink
/// has written.
pub(crate) fn pump<S: EventSink>(
    input: &MuxInput,
    sink: &mut S,
    stats_meter: &mut Stats,
    out: impl Fn(&S) -> u64,
) -> anyhow::Result<PumpStats> {
    let mut demux = Demux::new(
        input.input_format.map(Into::into),
        input.fps.map(|f| (f.num, f.den)),
        input.max_gap,
    );
    demux.set_drop_unsupported(input.drop_unsupported);
    let (mut events, mut diags) = (Vec::new(), Vec::new());
    let mut stats = PumpStats {
        bytes_in: 0,
        frames: 0,
    };
    let mut fatal = None;
    let mut more = true;
    let mut stopped = false;
    while more {
        // Straight into the parser's buffer: for FLV, the frames are the bytes as read.
        let buf = demux.input_buffer(READ_CHUNK);
        let n = match read_stdin_into(buf, READ_CHUNK).context("reading stdin")? {
            ReadOutcome::Data(n) => n,
            ReadOutcome::Eof => break,
            ReadOutcome::Stop => {
                log::info!("stop signal: finishing the data in hand");
                stopped = true;
                break;
            }
        };
        stats.bytes_in += n as u64;
        if let Err(e) = demux.push_buffered(&mut events, &mut diags) {
            fatal = Some(e);
        }
        log_diags(&mut diags);
        count(stats_meter, &events, &demux, n);
        deliver(&mut events, sink, &mut stats, &mut more)?;
        sink.flush()?;
        stats_meter.with(|m| m.bytes_out = out(sink));
        stats_meter.tick(Instant::now());
        if fatal.is_some() {
            break;
        }
    }
    if fatal.is_none() && more {
        if stopped {
            // The unit still arriving may be cut short: keep what is complete.
            demux.stop(&mut events, &mut diags);
        } else if let Err(e) = demux.finish(&mut events, &mut diags) {
            fatal = Some(e);
        }
        log_diags(&mut diags);
        count(stats_meter, &events, &demux, 0);
        deliver(&mut events, sink, &mut stats, &mut more)?;
    }
    sink.flush()?;
    stats_meter.with(|m| m.bytes_out = out(sink));
    stats_meter.finish();
    let r = demux.repairs();
    log::info!(
        "{} bytes of {} in, {} frames; timeline: {} wraps, {} jumps, {} DTS and {} PTS clamped",
        stats.bytes_in,
        demux
            .format()
            .map_or("unknown input", StreamFormat::describe),
        stats.frames,
        r.wraps,
        r.jumps,
        r.dts_clamped,
        r.pts_clamped
    );
    if let Some(e) = fatal {
        return Err(anyhow::anyhow!("stdin: {e}"));
    }
    if stats.bytes_in > 0 && stats.frames == 0 {
        anyhow::bail!(
            "stdin: no decodable H.264/AAC frames in {} bytes of input",
            stats.bytes_in
        );
    }
    Ok(stats)
}
pub use thumb::thumb;
