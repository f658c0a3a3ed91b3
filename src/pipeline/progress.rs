//! A tool's progress as ffmpeg users expect it (`--stats`), and the same figures as Prometheus
//! text (`--metrics`): frames, media time, bitrate, speed against real time, repairs and drops,
//! plus counters of the tool's own (segments written, reconnects, …).
//!
//! Pure: the tool feeds media events and the time; what to print, and when, comes back as
//! strings. A terminal gets a line redrawn in place every [`TERMINAL_EVERY`]; anything else a log
//! line every `--stats-period`. The first line comes one interval after the start, not at the
//! first read (which may hold no frame yet: an FLV header, a TS table).

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::media::{MediaEvent, Track};

/// How often the line on a terminal is redrawn.
pub const TERMINAL_EVERY: Duration = Duration::from_millis(500);

/// One of a tool's own counters: its Prometheus name (without the tool's prefix), help, and
/// whether it counts up (a counter) or goes up and down (a gauge).
#[derive(Clone, Debug)]
pub struct Extra {
    pub name: &'static str,
    pub help: &'static str,
    pub counter: bool,
    pub value: f64,
}

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct Meter {
    start: Instant,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Bytes of output written.
    pub bytes_out: u64,
    /// Bytes of input read.
    pub bytes_in: u64,
    /// The first and latest frame time (90 kHz), for the media time covered.
    first_pts: Option<i64>,
    last_pts: Option<i64>,
    /// Timestamps the timeline repaired (wraps, jumps, clamps).
    pub repairs: u64,
    /// Frames or units dropped (gaps, overflows, unsupported tracks when asked).
    pub drops: u64,
    extras: Vec<Extra>,
    last_line: Option<Instant>,
}

impl Meter {
    pub fn new(now: Instant) -> Self {
        Meter {
            start: now,
            video_frames: 0,
            audio_frames: 0,
            bytes_out: 0,
            bytes_in: 0,
            first_pts: None,
            last_pts: None,
            repairs: 0,
            drops: 0,
            extras: Vec::new(),
            last_line: Some(now),
        }
    }

    /// Counts a media event.
    pub fn event(&mut self, ev: &MediaEvent) {
        if let MediaEvent::Frame(f) = ev {
            self.frame(f.track, f.pts);
        }
    }

    /// Counts a frame of `track` presented at `pts` (90 kHz).
    pub fn frame(&mut self, track: Track, pts: i64) {
        match track {
            Track::Video => self.video_frames += 1,
            Track::Audio => self.audio_frames += 1,
        }
        self.first_pts.get_or_insert(pts);
        self.last_pts = Some(self.last_pts.map_or(pts, |p| p.max(pts)));
    }

    /// Sets the frames and the media time from a tool that counts them itself (90 kHz
    /// presentation times of the first and the latest frame).
    pub fn set_frames(&mut self, video: u64, audio: u64, span: Option<(i64, i64)>) {
        self.video_frames = video;
        self.audio_frames = audio;
        if let Some((a, b)) = span {
            self.first_pts = Some(a);
            self.last_pts = Some(b);
        }
    }

    /// Declares (on first use) and sets one of the tool's own figures.
    pub fn set(&mut self, name: &'static str, help: &'static str, counter: bool, value: f64) {
        match self.extras.iter_mut().find(|e| e.name == name) {
            Some(e) => e.value = value,
            None => self.extras.push(Extra {
                name,
                help,
                counter,
                value,
            }),
        }
    }

    /// Adds to one of the tool's own counters (declared on first use).
    pub fn add(&mut self, name: &'static str, help: &'static str, n: f64) {
        let v = self
            .extras
            .iter()
            .find(|e| e.name == name)
            .map_or(0.0, |e| e.value);
        self.set(name, help, true, v + n);
    }

    /// Media time covered so far.
    pub fn media_time(&self) -> Duration {
        match (self.first_pts, self.last_pts) {
            (Some(a), Some(b)) if b > a => Duration::from_micros(((b - a) as u64) * 100 / 9),
            _ => Duration::ZERO,
        }
    }

    /// The progress line: `frames=… time=HH:MM:SS.cc bitrate=…kbit/s speed=…x` and the repairs,
    /// drops and the tool's own figures.
    pub fn line(&self, now: Instant) -> String {
        let media = self.media_time();
        let wall = now.saturating_duration_since(self.start);
        let mut o = String::new();
        let _ = write!(o, "frames={}", self.video_frames);
        if self.audio_frames > 0 {
            let _ = write!(o, " audio={}", self.audio_frames);
        }
        let t = media.as_millis();
        let _ = write!(
            o,
            " time={:02}:{:02}:{:02}.{:02}",
            t / 3_600_000,
            t / 60_000 % 60,
            t / 1000 % 60,
            t % 1000 / 10
        );
        if media.is_zero() {
            o.push_str(" bitrate=N/A");
        } else {
            let kbps = self.bytes_out as f64 * 8.0 / media.as_secs_f64() / 1000.0;
            let _ = write!(o, " bitrate={kbps:.1}kbit/s");
        }
        if wall.is_zero() {
            o.push_str(" speed=N/A");
        } else {
            let _ = write!(o, " speed={:.2}x", media.as_secs_f64() / wall.as_secs_f64());
        }
        let _ = write!(o, " repairs={} drops={}", self.repairs, self.drops);
        for e in &self.extras {
            let name = e.name.trim_end_matches("_total");
            if e.value.fract() == 0.0 {
                let _ = write!(o, " {name}={}", e.value);
            } else {
                let _ = write!(o, " {name}={:.3}", e.value);
            }
        }
        o
    }

    /// The line to print at `now`, when one is due: on a terminal (`tty`) every
    /// [`TERMINAL_EVERY`], otherwise every `period`.
    pub fn due(&mut self, now: Instant, tty: bool, period: Duration) -> Option<String> {
        let every = if tty { TERMINAL_EVERY } else { period };
        if self
            .last_line
            .is_some_and(|t| now.saturating_duration_since(t) < every)
        {
            return None;
        }
        self.last_line = Some(now);
        Some(self.line(now))
    }

    /// Prometheus text (format 0.0.4), every name prefixed `river_<tool>_`.
    pub fn to_prometheus(&self, tool: &str, now: Instant) -> String {
        let mut o = String::new();
        let mut one = |name: &str, ty: &str, help: &str, v: f64| {
            let _ = writeln!(o, "# HELP river_{tool}_{name} {help}");
            let _ = writeln!(o, "# TYPE river_{tool}_{name} {ty}");
            let _ = writeln!(o, "river_{tool}_{name} {v}");
        };
        let up = now.saturating_duration_since(self.start).as_secs_f64();
        one(
            "uptime_seconds",
            "gauge",
            "Time since the tool started.",
            up,
        );
        one(
            "video_frames_total",
            "counter",
            "Video frames passed through.",
            self.video_frames as f64,
        );
        one(
            "audio_frames_total",
            "counter",
            "Audio frames passed through.",
            self.audio_frames as f64,
        );
        one(
            "media_seconds",
            "gauge",
            "Media time covered so far.",
            self.media_time().as_secs_f64(),
        );
        one(
            "bytes_in_total",
            "counter",
            "Bytes read.",
            self.bytes_in as f64,
        );
        one(
            "bytes_out_total",
            "counter",
            "Bytes written.",
            self.bytes_out as f64,
        );
        one(
            "timestamp_repairs_total",
            "counter",
            "Timestamps the timeline repaired (wraps, jumps, clamps).",
            self.repairs as f64,
        );
        one(
            "drops_total",
            "counter",
            "Frames or units dropped.",
            self.drops as f64,
        );
        for e in &self.extras {
            let ty = if e.counter { "counter" } else { "gauge" };
            one(e.name, ty, e.help, e.value);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Frame;
    use bytes::Bytes;

    fn frame(track: Track, pts: i64) -> MediaEvent {
        MediaEvent::Frame(Frame {
            track,
            codec: match track {
                Track::Video => crate::media::Codec::H264,
                Track::Audio => crate::media::Codec::Aac,
            },
            pts,
            dts: pts,
            keyframe: false,
            data: Bytes::from_static(&[0; 10]),
        })
    }

    #[test]
    fn line_counts_time_bitrate_and_speed() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        for i in 0..=60 {
            m.event(&frame(Track::Video, 3000 * i));
        }
        m.event(&frame(Track::Audio, 0));
        m.bytes_out = 250_000;
        m.repairs = 1;
        m.add("segments_total", "Segments written.", 1.0);
        m.add("segments_total", "Segments written.", 2.0);
        m.set("close_seconds", "Last close.", false, 0.012_345);
        // 60 frames 1/30 s apart: 2 s of media in 1 s of wall time.
        let l = m.line(t0 + Duration::from_secs(1));
        assert_eq!(
            l,
            "frames=61 audio=1 time=00:00:02.00 bitrate=1000.0kbit/s speed=2.00x repairs=1 drops=0 segments=3 close_seconds=0.012"
        );
    }

    #[test]
    fn due_every_half_second_on_a_terminal_else_every_period() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        let p = Duration::from_secs(10);
        // Not at the start (the first read may hold no frame yet): one interval later.
        assert!(m.due(t0, true, p).is_none());
        assert!(m.due(t0 + Duration::from_millis(400), true, p).is_none());
        assert!(m.due(t0 + Duration::from_millis(500), true, p).is_some());
        assert!(m.due(t0 + Duration::from_millis(900), true, p).is_none());
        assert!(m.due(t0 + Duration::from_secs(1), true, p).is_some());
        let mut m = Meter::new(t0);
        assert!(m.due(t0 + Duration::from_secs(5), false, p).is_none());
        assert!(m.due(t0 + Duration::from_secs(10), false, p).is_some());
        assert!(m
            .due(t0 + Duration::from_millis(10_500), false, p)
            .is_none());
        assert!(m.due(t0 + Duration::from_secs(20), false, p).is_some());
    }

    #[test]
    fn prometheus_names_help_and_types() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.event(&frame(Track::Video, 0));
        m.set(
            "segment_write_seconds",
            "Last segment's write time.",
            false,
            0.25,
        );
        let p = m.to_prometheus("hls_seg", t0);
        assert!(p.contains("# TYPE river_hls_seg_video_frames_total counter\nriver_hls_seg_video_frames_total 1\n"), "{p}");
        assert!(p.contains("# HELP river_hls_seg_segment_write_seconds Last segment's write time.\n# TYPE river_hls_seg_segment_write_seconds gauge\nriver_hls_seg_segment_write_seconds 0.25\n"), "{p}");
    }
}
