//! river-thumb.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::{InputFormat, StatsArgs};
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};
use crate::thumb::ImageFormat;

const THUMB_LONG: &str = "\
Reads H.264 or H.265 (+AAC) as FLV (Enhanced FLV for H.265), MPEG-TS or Annex B on stdin, keeps the \
newest keyframe (with its parameter sets) in memory, and turns it into a JPEG or PNG only when a \
picture is wanted. One decoder per codec stays alive (openh264 for H.264, the system's libde265 for \
H.265); nothing but keyframes is decoded. An H.265 keyframe is an IRAP picture (IDR, CRA or BLA), \
decoded alone.

Modes:
  (default)      one-shot: the first decodable keyframe becomes an image on stdout (or in --out), \
then the tool exits, like `ffmpeg -frames:v 1`
  --every DUR    rewrite --out atomically (temporary file + rename) with the newest keyframe, at most \
once every DUR, until the input ends
  --serve ADDR   answer GET /thumb.jpg and /thumb.png with the newest keyframe, decoded on demand and \
cached per keyframe; 503 before the first keyframe; the bound address is printed on stderr \
(use port 0 for any free port); runs until the input ends
  --tee          copy stdin to stdout unchanged, each read written before it is looked at, so \
river-thumb can sit in the middle of a pipeline; pictures then go to --out or --serve

A keyframe that fails to decode is reported and skipped; the next one is tried. Only H.264 and \
H.265 are decoded: a track in another codec (VP6, MPEG-2 video) is reported by name and ignored. \
Durations are like 500ms, 10s, 1.5m or 1h (a bare number means seconds).

--stats shows progress on stderr and --metrics ADDR serves it as Prometheus text at \
http://ADDR/metrics: frames, bytes in and out (the pictures, and the stream with --tee), and \
river_thumb_ keyframes_total, pictures_total, picture_failures_total and picture_seconds.

Examples:
  ffmpeg -v error -i in.mp4 -c copy -f flv - | river-thumb --width 320 > thumb.jpg
  ffmpeg -v error -re -i in.mp4 -c copy -f mpegts - | river-thumb --every 10s --out www/thumb.jpg
  ffmpeg -v error -re -i in.mp4 -c copy -f flv - | river-thumb --serve 127.0.0.1:8090 --width 640
  ffmpeg -v error -re -i in.mp4 -c copy -f flv - | river-thumb --tee --every 5s --out t.jpg | river-mux-ts > live.ts
  curl -s http://127.0.0.1:8090/thumb.png > now.png";

/// river-thumb: live thumbnails from the latest keyframe.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-thumb",
    version,
    about = "Thumbnails (JPEG/PNG) from the latest H.264 or H.265 keyframe: one-shot, periodic, over HTTP, or mid-pipe",
    long_about = THUMB_LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct Thumb {
    /// Write the picture to FILE (atomically: temporary file + rename) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Rewrite --out with the newest keyframe at most once every DUR (e.g. 10s), until the input ends
    #[arg(long, value_name = "DUR", requires = "out", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Serve GET /thumb.jpg and /thumb.png over HTTP on ADDR (e.g. 127.0.0.1:8090; port 0 = any)
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<SocketAddr>,
    /// Copy stdin to stdout unchanged (pictures then go to --out or --serve)
    #[arg(long)]
    pub tee: bool,
    /// Scale to this width (the height follows the aspect ratio unless --height is given too)
    #[arg(long, value_name = "W", value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub width: Option<u32>,
    /// Scale to this height (with --width: fit inside W×H, keeping the aspect ratio)
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub height: Option<u32>,
    /// JPEG quality, 1 (smallest) to 100 (best)
    #[arg(long, value_name = "Q", default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Image format; default: from the --out extension (.png), else jpeg
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ImageFormat>,
    /// Fail (exit 1) when no keyframe has arrived within DUR (one-shot: no picture made within DUR)
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Input format; detected from the first bytes when not given
    #[arg(long, short = 'f', value_enum, value_name = "FORMAT")]
    pub input_format: Option<InputFormat>,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for Thumb {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}

/// A duration: `500ms`, `10s`, `1.5m`, `1h`, or a bare number of seconds (the shared
/// [`TimeSpan`](super::TimeSpan) syntax), as a wall-clock [`Duration`].
///
/// A clap value parser: its `String` error is only shown by clap (see [`super::TimeSpan`]'s
/// `FromStr`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<super::TimeSpan>().map(|t| t.as_duration())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(d("10s"), Ok(10_000));
        assert_eq!(d("500ms"), Ok(500));
        assert_eq!(d("1m"), Ok(60_000));
        assert_eq!(d("1.5m"), Ok(90_000));
        assert_eq!(d("2h"), Ok(7_200_000));
        assert_eq!(d("3"), Ok(3_000));
        assert!(d("0s").is_err());
        assert!(d("s").is_err());
        assert!(d("10x").is_err());
        assert!(d("-1s").is_err());
        assert!(d("1e9h").is_err());
    }

    #[test]
    fn every_needs_out() {
        assert!(Thumb::try_parse_from(["river-thumb", "--every", "1s"]).is_err());
        let t = Thumb::try_parse_from([
            "river-thumb",
            "--every",
            "1s",
            "-o",
            "x.jpg",
            "--width",
            "320",
        ])
        .unwrap();
        assert_eq!(t.every, Some(Duration::from_secs(1)));
        assert!(Thumb::try_parse_from(["river-thumb", "--quality", "0"]).is_err());
        assert!(Thumb::try_parse_from(["river-thumb", "--width", "0"]).is_err());
    }
}
