//! river-mux-ts and river-mux-flv: stdin → demux → timeline → mux → stdout.

use std::io::{self, IoSlice, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use anyhow::Context;
use bytes::Bytes;

use super::stats::Stats;
use super::{pump, EventSink};
use crate::cli::{MuxFlv, MuxTs};
use crate::media::MediaEvent;
use crate::pipeline::{FlvOut, FlvSink, TsOut};
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
    let mut sink = StdoutFlv {
        flv: FlvOut::new(),
        out: Vectored::default(),
        total: 0,
    };
    let mut stats = Stats::start(&args.stats, "mux_flv", "river-mux-flv")?;
    pump(&args.input, &mut sink, &mut stats, |s| s.total)?;
    log::info!("{} bytes of FLV out", sink.total);
    Ok(())
}

/// Payloads at least this long are written from where they lie (a vectored write) rather than
/// copied next to their tag's head: a video frame, not an audio one.
const BY_REFERENCE: usize = 4096;

/// FLV bytes for one vectored write: the tags' heads and small payloads in `bytes`, and each
/// large payload to go in at its offset in `bytes`, kept (a reference, not a copy) until written.
#[derive(Default)]
struct Vectored {
    bytes: Vec<u8>,
    payloads: Vec<(usize, Bytes)>,
}

impl FlvSink for Vectored {
    fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    fn payload(&mut self, data: &Bytes) {
        if data.len() < BY_REFERENCE {
            self.bytes.extend_from_slice(data);
        } else {
            self.payloads.push((self.bytes.len(), data.clone()));
        }
    }
}

impl Vectored {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.payloads.is_empty()
    }

    /// Writes everything to `w` in order (as few `writev` calls as it takes) and empties itself;
    /// returns the bytes written.
    fn write_to(&mut self, w: &mut impl Write) -> io::Result<u64> {
        let mut slices = Vec::with_capacity(2 * self.payloads.len() + 1);
        let mut at = 0;
        for (pos, data) in &self.payloads {
            if *pos > at {
                slices.push(IoSlice::new(&self.bytes[at..*pos]));
            }
            slices.push(IoSlice::new(data));
            at = *pos;
        }
        if self.bytes.len() > at {
            slices.push(IoSlice::new(&self.bytes[at..]));
        }
        let total = slices.iter().map(|s| s.len() as u64).sum();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            // At most IOV_MAX (1024) slices a call.
            let n = rest.len().min(1024);
            match w.write_vectored(&rest[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => IoSlice::advance_slices(&mut rest, k),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        drop(slices);
        self.bytes.clear();
        self.payloads.clear();
        Ok(total)
    }
}

/// river-mux-flv's muxer, writing to stdout after each read with one vectored write: each video
/// payload goes out from the frame that holds it, never copied in user space.
struct StdoutFlv {
    flv: FlvOut,
    out: Vectored,
    total: u64,
}

impl EventSink for StdoutFlv {
    fn event(&mut self, ev: MediaEvent) -> anyhow::Result<bool> {
        self.flv
            .event(&ev, &mut self.out)
            .map_err(|e| anyhow::anyhow!("muxing: {e}"))?;
        Ok(true)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if !self.out.is_empty() {
            // Straight to fd 1: std's stdout is line-buffered, and its buffer would copy.
            // SAFETY: fd 1 stays open for the process's life; ManuallyDrop never closes it.
            let mut stdout = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(1) });
            io::stdout().flush().context("writing stdout")?;
            self.total += self.out.write_to(&mut *stdout).context("writing stdout")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes a call, to cut the slices anywhere.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The vectored write gives the bytes a `Vec<u8>` sink gets, however the writer cuts them.
    #[test]
    fn vectored_writes_what_a_vec_gets() {
        let big = |b: u8| Bytes::from(vec![b; BY_REFERENCE + 7]);
        let parts: [&[u8]; 4] = [b"head1", b"", b"head3-", b"tail"];
        let payloads = [big(1), Bytes::from_static(b"small"), big(2), big(3)];
        let mut flat = Vec::new();
        let mut v = Vectored::default();
        for (p, d) in parts.iter().zip(&payloads) {
            flat.extend_from_slice(p);
            flat.payload(d);
            v.bytes().extend_from_slice(p);
            v.payload(d);
        }
        assert_eq!(v.payloads.len(), 3);
        for step in [1, 3, 4096, usize::MAX] {
            let mut w = Trickle {
                got: Vec::new(),
                step,
            };
            let mut v2 = Vectored {
                bytes: v.bytes.clone(),
                payloads: v.payloads.clone(),
            };
            assert_eq!(v2.write_to(&mut w).unwrap(), flat.len() as u64);
            assert_eq!(w.got, flat, "step {step}");
            assert!(v2.is_empty());
        }
    }
}
