//! river-testsrc: the embedded clip, looped with continuous timestamps → TS, FLV or Annex B →
//! stdout, as fast as the pipe takes or paced to the wall clock.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::{TestSrc, TestSrcFormat};
use crate::codec::h264;
use crate::media::{MediaEvent, Track, VideoConfig, CLOCK_HZ};
use crate::pipeline::{FlvOut, TsOut};
use crate::stdio::{require_binary_stdout, stop_signal};
use crate::testsrc::Clip;

/// Without --realtime, output is written in blocks of about this size.
const WRITE_BLOCK: usize = 256 * 1024;
/// The longest single sleep while pacing, so a stop signal is seen promptly.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

enum Sink {
    Ts(TsOut),
    Flv(FlvOut),
    H264(Option<VideoConfig>),
}

impl Sink {
    /// Whether this output carries the event (Annex B drops audio, so it is not paced either).
    fn wants(&self, ev: &MediaEvent) -> bool {
        !matches!((self, ev), (Sink::H264(_), MediaEvent::Frame(f)) if f.track == Track::Audio)
    }

    fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> anyhow::Result<()> {
        match self {
            // The muxers report a `String` (src/pipeline.rs).
            Sink::Ts(t) => t.event(ev, out).map_err(anyhow::Error::msg),
            Sink::Flv(f) => f.event(ev, out).map_err(anyhow::Error::msg),
            Sink::H264(cfg) => {
                match ev {
                    MediaEvent::Video(c) => *cfg = Some(c.clone()),
                    MediaEvent::Frame(f) if f.track == Track::Video => {
                        if let Some(c) = cfg {
                            h264::write_annexb_au(&f.data, c, f.keyframe, out);
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }
}

/// Sleeps until `due`, in slices; false when a stop signal arrived first.
fn sleep_until(due: Instant) -> bool {
    loop {
        if stop_signal().is_some() {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(SLEEP_SLICE));
    }
}

/// `river-testsrc`.
pub fn testsrc(args: TestSrc) -> anyhow::Result<()> {
    let (what, mut sink) = match args.format {
        TestSrcFormat::Ts => ("MPEG-TS", Sink::Ts(TsOut::new())),
        TestSrcFormat::Flv => ("FLV", Sink::Flv(FlvOut::new())),
        TestSrcFormat::H264 => ("H.264", Sink::H264(None)),
    };
    require_binary_stdout(what)?;
    let clip = Clip::embedded().map_err(|e| anyhow::anyhow!("embedded test clip: {e}"))?;
    let limit = args.duration.map(|d| d.ticks);
    log::info!(
        "looping a {:.3} s clip ({}x{}) as {what}{}{}",
        clip.duration() as f64 / CLOCK_HZ as f64,
        clip.video().width,
        clip.video().height,
        match limit {
            Some(l) => format!(" for {:.3} s", l as f64 / CLOCK_HZ as f64),
            None => String::new(),
        },
        if args.realtime { ", in real time" } else { "" },
    );

    let mut stdout = io::stdout().lock();
    let mut out = Vec::with_capacity(WRITE_BLOCK + (1 << 16));
    let (mut frames, mut total_out) = (0u64, 0u64);
    let start = Instant::now();
    let mut events = clip.events(limit);
    for ev in events.by_ref() {
        if !sink.wants(&ev) {
            continue;
        }
        if let MediaEvent::Frame(f) = &ev {
            if stop_signal().is_some() {
                log::info!("stop signal: flushing and exiting");
                break;
            }
            if args.realtime {
                let due = start + Duration::from_micros(f.dts.max(0) as u64 * 100 / 9);
                if !sleep_until(due) {
                    log::info!("stop signal: flushing and exiting");
                    break;
                }
            }
            frames += 1;
        }
        sink.event(&ev, &mut out).context("muxing")?;
        // Live: every frame leaves as soon as it is due. Otherwise: in blocks, for throughput.
        if (args.realtime && !out.is_empty()) || out.len() >= WRITE_BLOCK {
            stdout.write_all(&out).context("writing stdout")?;
            stdout.flush().context("writing stdout")?;
            total_out += out.len() as u64;
            out.clear();
        }
    }
    stdout.write_all(&out).context("writing stdout")?;
    stdout.flush().context("writing stdout")?;
    total_out += out.len() as u64;
    log::info!(
        "{frames} frames ({} whole loops), {total_out} bytes out in {:.3} s",
        events.loops(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
