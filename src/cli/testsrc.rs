//! river-testsrc.

use clap::{Parser, ValueEnum};

use crate::media::CLOCK_HZ;
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const TESTSRC_LONG: &str = "\
Writes a live H.264 + AAC test stream to stdout, for demos and tests, without ffmpeg.

The stream is a 4-second clip built into the program (640x360, 30 fps, a keyframe every second, \
ffmpeg's testsrc2 pattern with a frame counter; 32 kHz mono AAC with a beep every second, a higher \
one at the start of each loop), played in a loop. Timestamps run on continuously and monotonically \
across the loops: loop n starts exactly n x 4 s in, on a keyframe.

It runs until --duration of media has been written (the frames whose timestamps fall before it), \
until the reader closes the pipe, or until SIGINT/SIGTERM. Without --realtime it writes as fast as \
the pipe takes (for tests and benchmarks); with it, each frame leaves when its timestamp is due on \
the wall clock, as `ffmpeg -re` does.

Formats: ts (MPEG-TS, SPS/PPS and PAT/PMT before every keyframe), flv (FLV with onMetaData and \
sequence headers), h264 (raw Annex B video only, SPS/PPS before every keyframe; no audio).

Examples:
  river-testsrc --realtime | ffplay -
  river-testsrc --duration 10s > test.ts
  river-testsrc --format flv --duration 1m | river-mux-ts > test.ts
  river-testsrc --format h264 --duration 500ms | ffprobe -v error -show_streams -";

/// What river-testsrc writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestSrcFormat {
    /// MPEG-TS with H.264 and AAC
    Ts,
    /// FLV with H.264 and AAC
    Flv,
    /// Raw H.264 Annex B byte stream (video only)
    H264,
}

/// A span of media time: `500ms`, `10s`, `1.5s`, `1m`, `1h`, or plain seconds (`90`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSpan {
    /// 90 kHz units.
    pub ticks: i64,
}

impl std::str::FromStr for TimeSpan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid duration {s:?}: expected a number with ms, s, m or h, for example 500ms, 10s, 1m, 1h")
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let scale: f64 = match unit.trim() {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
            return Err(bad());
        }
        let v: f64 = num.parse().map_err(|_| bad())?;
        let secs = v * scale;
        // Up to ten years: far beyond any use, far below where i64 90 kHz ticks overflow.
        if !(secs > 0.0 && secs <= 10.0 * 366.0 * 86400.0) {
            return Err(format!(
                "duration {s:?} out of range (more than 0, at most ten years)"
            ));
        }
        let ticks = (secs * CLOCK_HZ as f64).round() as i64;
        Ok(TimeSpan {
            ticks: ticks.max(1),
        })
    }
}

/// river-testsrc: a built-in live H.264 + AAC source.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-testsrc",
    version,
    about = "A built-in live H.264 + AAC test stream (looped clip) on stdout as MPEG-TS, FLV or Annex B",
    long_about = TESTSRC_LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct TestSrc {
    /// Output format
    #[arg(long, short = 'f', value_enum, value_name = "FORMAT", default_value_t = TestSrcFormat::Ts)]
    pub format: TestSrcFormat,
    /// Stop after this much media time, e.g. 500ms, 10s, 1m, 1h (default: run until stopped)
    #[arg(long, short = 't', value_name = "DURATION")]
    pub duration: Option<TimeSpan>,
    /// Pace the output to the wall clock (like ffmpeg -re) instead of writing as fast as possible
    #[arg(long, alias = "re")]
    pub realtime: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for TestSrc {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spans() {
        let t = |s: &str| s.parse::<TimeSpan>().map(|t| t.ticks);
        assert_eq!(t("10s"), Ok(900_000));
        assert_eq!(t("500ms"), Ok(45_000));
        assert_eq!(t("1m"), Ok(60 * 90_000));
        assert_eq!(t("1h"), Ok(3600 * 90_000));
        assert_eq!(t("1.5s"), Ok(135_000));
        assert_eq!(t("90"), Ok(90 * 90_000));
        assert_eq!(t("2min"), Ok(120 * 90_000));
        for bad in [
            "", "s", "-1s", "0", "0s", "1x", "1.s", ".5s", "1..2s", "nan", "1e3s", "99999h",
        ] {
            assert!(t(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults_and_options() {
        let a = TestSrc::try_parse_from(["river-testsrc"]).unwrap();
        assert_eq!(a.format, TestSrcFormat::Ts);
        assert!(a.duration.is_none() && !a.realtime);
        let a =
            TestSrc::try_parse_from(["river-testsrc", "-f", "h264", "-t", "2s", "--re"]).unwrap();
        assert_eq!(a.format, TestSrcFormat::H264);
        assert_eq!(a.duration, Some(TimeSpan { ticks: 180_000 }));
        assert!(a.realtime);
        assert!(TestSrc::try_parse_from(["river-testsrc", "--format", "mp4"]).is_err());
    }
}
