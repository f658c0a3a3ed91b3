//! A broadcast's pace: media time against wall time, and the delivery regime it decides.
//!
//! - **Real time**: media arrives at about the speed it plays. The broadcaster is never held
//!   back; a watcher that falls behind skips to the next keyframe, and one that stays behind is
//!   dropped (`WatcherQueue::push`).
//! - **Paced**: media arrives faster than it plays (a file pushed unpaced), or the content has no
//!   clock (opaque bytes, raw Annex B). The hub reads the broadcaster only while every watcher
//!   has room, so nothing is lost; a straggler is dropped by `relay::channel`.
//!
//! A broadcast starts paced (nothing is lost while its pace is unknown). It becomes real-time once
//! [`WINDOW`] of wall time passed with media advancing at most [`REAL_TIME_MAX`] times as fast and
//! the broadcaster was never held back in that time (a held-back broadcaster shows the watchers'
//! pace, not its own). It becomes paced again when media advances at least [`FASTER_MIN`] times as
//! fast over [`WINDOW`].
//!
//! A held broadcaster shows its watchers' pace, not its own, so a live source held from its start
//! by a slow watcher would look like a file held at that watcher's pace. While a broadcast is held
//! at no more than real time, the meter probes now and then: the hub reads it freely (queues may
//! pass their bound; nothing is dropped) and watches its media against the wall clock. A file
//! runs ahead of the clock by more than [`LIVE_LEAD_MS`] at once, which ends the probe (the next
//! one waits twice as long); a live source catches up with its backlog and then keeps to the
//! clock, and after [`WINDOW`] of that it is real time.
//!
//! Media time comes from the chunks themselves: FLV tag timestamps, MPEG-TS PES PTS.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::stream::Chunk;
use crate::media::StreamFormat;

/// The span of wall time a pace is measured over.
pub const WINDOW: Duration = Duration::from_secs(2);
/// At most this fast (media time over wall time) counts as real time.
pub const REAL_TIME_MAX: f64 = 1.25;
/// At least this fast is faster than real time.
pub const FASTER_MIN: f64 = 1.5;
/// How far a live source's media may run ahead of the wall clock (since the meter's anchor): an
/// encoder's start-up burst. A file read freely runs ahead by far more within a moment.
pub const LIVE_LEAD_MS: i64 = 3000;
/// The longest wait between probes of a held broadcast.
pub const MAX_PROBE_BACKOFF: Duration = Duration::from_secs(64);

/// How content without a clock (unknown bytes, raw H.264) is delivered: its pace cannot be
/// measured, so the hub's operator chooses (`river-relay serve --unclocked`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Unclocked {
    /// Paced to its watchers, as fstream does: nothing is lost, a straggler is dropped.
    #[default]
    Pace,
    /// Never held back: the real-time policy (a watcher that cannot keep up skips to the next
    /// keyframe, or is disconnected when the content has none).
    Isolate,
}

/// The delivery regime of a broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    RealTime,
    Paced,
}

/// The media time a chunk carries, in milliseconds (FLV: its tag's timestamp; TS: the last PES
/// PTS in it). None for chunks without one and for formats without a clock.
pub fn media_ms(format: StreamFormat, chunk: &Chunk) -> Option<u64> {
    let b = &chunk.data[..];
    match format {
        StreamFormat::Flv => {
            // A whole tag: type 8 (audio) or 9 (video), timestamp at bytes 4..8.
            if b.len() < 11 || !matches!(b[0] & 0x1f, 8 | 9) {
                return None;
            }
            let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
            Some(u64::from(ts))
        }
        StreamFormat::Ts => b.chunks_exact(188).rev().find_map(pes_pts).map(|p| p / 90),
        StreamFormat::AnnexB | StreamFormat::AnnexBH265 | StreamFormat::Opaque => None,
    }
}

/// The PTS (90 kHz, 33 bits) of a TS packet that starts an audio or video PES with one.
fn pes_pts(p: &[u8]) -> Option<u64> {
    if p[0] != 0x47 || p[1] & 0x40 == 0 {
        return None;
    }
    let start = match (p[3] >> 4) & 3 {
        1 => 4,
        3 => 5 + usize::from(p[4]),
        _ => return None,
    };
    let pes = p.get(start..)?;
    if pes.len() < 14 || pes[..3] != [0, 0, 1] || !matches!(pes[3], 0xC0..=0xEF) {
        return None;
    }
    if pes[7] & 0x80 == 0 {
        return None;
    }
    let t = &pes[9..14];
    Some(
        (u64::from(t[0] >> 1) & 7) << 30
            | u64::from(t[1]) << 22
            | u64::from(t[2] >> 1) << 15
            | u64::from(t[3]) << 7
            | u64::from(t[4] >> 1),
    )
}

/// Measures one broadcast's pace and keeps its regime.
#[derive(Debug)]
pub struct PaceMeter {
    clock: bool,
    regime: Regime,
    /// (wall, media ms unwrapped), newest last, spanning a little over [`WINDOW`].
    samples: VecDeque<(Instant, u64)>,
    /// The last raw media time and the unwrapped total it maps to (TS PTS wraps at 2^33).
    last_raw: Option<u64>,
    media: u64,
    /// The broadcaster was last held back at this time.
    held: Option<Instant>,
    /// (wall, media) where media is taken to keep to the clock: the first sample, and each switch
    /// to real time.
    anchor: Option<(Instant, u64)>,
    /// The speed measured over the last full window.
    speed: Option<f64>,
    /// A probe in progress: since when, and the media time then.
    probe: Option<(Instant, u64)>,
    /// No probe before this; the wait after a probe that found a file.
    next_probe: Option<Instant>,
    backoff: Duration,
}

/// A regime change, for the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub regime: Regime,
    /// Media time over wall time over the window.
    pub speed: f64,
}

impl PaceMeter {
    pub fn new(format: StreamFormat, unclocked: Unclocked) -> Self {
        let clock = matches!(format, StreamFormat::Flv | StreamFormat::Ts);
        PaceMeter {
            clock,
            regime: if clock || unclocked == Unclocked::Pace {
                Regime::Paced
            } else {
                Regime::RealTime
            },
            samples: VecDeque::new(),
            last_raw: None,
            media: 0,
            held: None,
            anchor: None,
            speed: None,
            probe: None,
            next_probe: None,
            backoff: Duration::ZERO,
        }
    }

    /// Whether the hub should read the broadcaster freely to learn its pace (see the module).
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    pub fn regime(&self) -> Regime {
        self.regime
    }

    /// The broadcaster is held back at `now` (its watchers have no room); called when the hold
    /// begins and every so often while it lasts. Starts a probe when one is due.
    pub fn held(&mut self, now: Instant) {
        self.held = Some(now);
        if self.clock
            && self.regime == Regime::Paced
            && self.probe.is_none()
            && self.speed.is_some_and(|s| s <= REAL_TIME_MAX)
            && self.next_probe.is_none_or(|t| now >= t)
        {
            self.probe = Some((now, self.media));
        }
    }

    /// A chunk arrived at `now`; returns a regime change.
    pub fn chunk(&mut self, format: StreamFormat, chunk: &Chunk, now: Instant) -> Option<Change> {
        if !self.clock {
            return None;
        }
        let raw = media_ms(format, chunk)?;
        let wrap = if format == StreamFormat::Ts {
            (1u64 << 33) / 90
        } else {
            1 << 32
        };
        match self.last_raw {
            None => {}
            // Forward (or back a little: B-frames, interleaving), modulo the wrap.
            Some(last) => {
                let fwd = (raw + wrap - last) % wrap;
                if fwd < wrap / 2 {
                    self.media += fwd;
                } else {
                    self.media = self.media.saturating_sub(wrap - fwd);
                }
            }
        }
        self.last_raw = Some(raw);
        let anchor = *self.anchor.get_or_insert((now, self.media));
        if let Some((since, m0)) = self.probe {
            let lead = self.media as i64
                - anchor.1 as i64
                - now.saturating_duration_since(anchor.0).as_millis() as i64;
            if lead > LIVE_LEAD_MS {
                // Ahead of the clock: a file. Held again; probed again later.
                self.probe = None;
                self.backoff = (self.backoff * 2).clamp(WINDOW, MAX_PROBE_BACKOFF);
                self.next_probe = Some(now + self.backoff);
            } else if now >= since + WINDOW {
                self.probe = None;
                self.backoff = Duration::ZERO;
                self.regime = Regime::RealTime;
                self.anchor = Some((now, self.media));
                self.samples.clear();
                self.samples.push_back((now, self.media));
                let span = now.saturating_duration_since(since).as_millis().max(1);
                return Some(Change {
                    regime: Regime::RealTime,
                    speed: self.media.saturating_sub(m0) as f64 / span as f64,
                });
            }
        }
        if self.samples.back().is_some_and(|s| now < s.0 + WINDOW / 8) {
            return None;
        }
        self.samples.push_back((now, self.media));
        while self.samples.len() > 2 && self.samples[1].0 + WINDOW <= now {
            self.samples.pop_front();
        }
        let (t0, m0) = *self.samples.front()?;
        let span = now.saturating_duration_since(t0);
        if span < WINDOW {
            return None;
        }
        let speed = self.media.saturating_sub(m0) as f64 / span.as_millis().max(1) as f64;
        self.speed = Some(speed);
        let next = match self.regime {
            Regime::Paced if speed <= REAL_TIME_MAX && self.held.is_none_or(|h| h < t0) => {
                Regime::RealTime
            }
            Regime::RealTime if speed >= FASTER_MIN => Regime::Paced,
            r => r,
        };
        (next != self.regime).then(|| {
            self.regime = next;
            if next == Regime::RealTime {
                self.anchor = Some((now, self.media));
            }
            Change {
                regime: next,
                speed,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::stream::Mark;

    fn tag(ts: u32) -> Chunk {
        let mut b = vec![9, 0, 0, 1];
        b.extend_from_slice(&ts.to_be_bytes()[1..]);
        b.push((ts >> 24) as u8);
        b.extend_from_slice(&[0, 0, 0, 0x27, 1, 0, 0, 0, 0]);
        Chunk::new(b, Mark::Data)
    }

    /// Feeds tags `step_ms` of media apart every `every_ms` of wall time, for `secs`.
    fn run(
        m: &mut PaceMeter,
        t0: Instant,
        from_ms: u32,
        step_ms: u32,
        every_ms: u64,
        secs: u64,
    ) -> Vec<Change> {
        let mut out = Vec::new();
        let n = secs * 1000 / every_ms;
        for i in 0..n {
            let now = t0 + Duration::from_millis(i * every_ms);
            let c = tag(from_ms + step_ms * i as u32);
            out.extend(m.chunk(StreamFormat::Flv, &c, now));
        }
        out
    }

    #[test]
    fn flv_and_ts_media_times() {
        assert_eq!(
            media_ms(StreamFormat::Flv, &tag(0x0123_4567)),
            Some(0x0123_4567)
        );
        assert_eq!(
            media_ms(StreamFormat::Flv, &Chunk::new(vec![18; 20], Mark::Data)),
            None
        );
        // A TS packet opening a video PES with PTS 900000 (10 s).
        let mut p = vec![0x47, 0x41, 0x00, 0x10, 0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
        let pts: u64 = 900_000;
        p.extend_from_slice(&[
            0x21 | ((pts >> 29) as u8 & 0x0e),
            (pts >> 22) as u8,
            ((pts >> 14) as u8 & 0xfe) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8 & 0xfe) | 1,
        ]);
        p.resize(188, 0xff);
        assert_eq!(
            media_ms(StreamFormat::Ts, &Chunk::new(p, Mark::Keyframe)),
            Some(10_000)
        );
        assert_eq!(media_ms(StreamFormat::Opaque, &tag(5)), None);
    }

    #[test]
    fn a_live_broadcast_becomes_real_time_and_a_file_stays_paced() {
        let t0 = Instant::now();
        let mut live = PaceMeter::new(StreamFormat::Flv, Unclocked::Pace);
        let ch = run(&mut live, t0, 0, 40, 40, 3);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].regime, Regime::RealTime);
        assert!((ch[0].speed - 1.0).abs() < 0.05, "{ch:?}");
        let mut file = PaceMeter::new(StreamFormat::Flv, Unclocked::Pace);
        assert!(run(&mut file, t0, 0, 400, 40, 5).is_empty());
        assert_eq!(file.regime(), Regime::Paced);
    }

    #[test]
    fn a_held_back_broadcast_is_not_taken_for_real_time() {
        let t0 = Instant::now();
        let mut m = PaceMeter::new(StreamFormat::Flv, Unclocked::Pace);
        // Its watchers read at real time, so media arrives at real time, but only because the
        // broadcaster is held back.
        let mut changes = Vec::new();
        for i in 0..100u64 {
            let now = t0 + Duration::from_millis(i * 40);
            m.held(now);
            changes.extend(m.chunk(StreamFormat::Flv, &tag(40 * i as u32), now));
        }
        assert!(changes.is_empty());
        assert_eq!(m.regime(), Regime::Paced);
    }

    #[test]
    fn real_time_then_an_unpaced_push_is_paced_again() {
        let t0 = Instant::now();
        let mut m = PaceMeter::new(StreamFormat::Flv, Unclocked::Pace);
        run(&mut m, t0, 0, 40, 40, 3);
        assert_eq!(m.regime(), Regime::RealTime);
        let ch = run(&mut m, t0 + Duration::from_secs(3), 3000, 400, 40, 3);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].regime, Regime::Paced);
        assert!(ch[0].speed >= FASTER_MIN, "{ch:?}");
    }

    #[test]
    fn content_without_a_clock_is_always_paced() {
        let t0 = Instant::now();
        for f in [StreamFormat::Opaque, StreamFormat::AnnexB] {
            let mut m = PaceMeter::new(f, Unclocked::Pace);
            for i in 0..200u64 {
                assert!(m
                    .chunk(f, &tag(40 * i as u32), t0 + Duration::from_millis(40 * i))
                    .is_none());
            }
            assert_eq!(m.regime(), Regime::Paced);
            // Unless the operator isolates it: then it is real time throughout.
            let mut m = PaceMeter::new(f, Unclocked::Isolate);
            for i in 0..200u64 {
                assert!(m
                    .chunk(f, &tag(40 * i as u32), t0 + Duration::from_millis(40 * i))
                    .is_none());
            }
            assert_eq!(m.regime(), Regime::RealTime);
        }
        // A clock decides for itself: isolate does not touch FLV or TS.
        assert_eq!(
            PaceMeter::new(StreamFormat::Flv, Unclocked::Isolate).regime(),
            Regime::Paced
        );
    }
}
