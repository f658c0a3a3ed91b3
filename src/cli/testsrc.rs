//! river-testsrc.

use clap::{Parser, ValueEnum};

use super::TimeSpan;
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
