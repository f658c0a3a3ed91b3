//! One clap definition per tool. The binaries parse them; the docs test renders man pages and shell
//! completions from them, so the two cannot drift. Shared option types live here; each tool's
//! definition lives in its own submodule.

use clap::{CommandFactory, ValueEnum};

use crate::media::{StreamFormat, CLOCK_HZ};

mod hls_seg;
mod mux;
mod relay;
mod rtmp_in;
mod rtsp_pull;
mod testsrc;
mod thumb;

pub use hls_seg::{HlsSeg, SegmentType};
pub use mux::{MuxFlv, MuxTs};
pub use relay::{
    BroadcastArgs, ByteSize, ChannelArgs, HlsVariant, Relay, RelayCmd, RetryArgs, ServeArgs,
    UnclockedMode, WatchArgs,
};
pub use rtmp_in::RtmpIn;
pub use rtsp_pull::{RtspFormat, RtspPull, RtspTransport};
pub use testsrc::{TestSrc, TestSrcFormat};
pub use thumb::{parse_duration, Thumb};

/// Input container formats river's stdin readers understand: the values `--input-format` takes,
/// for [`StreamFormat`] (clap's help and completions need the documented enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// FLV (H.264 or H.265 + AAC; Enhanced FLV too), as `ffmpeg -f flv -` writes it
    Flv,
    /// MPEG-TS (H.264 or H.265 + AAC in ADTS), 188-byte packets
    Ts,
    /// Raw H.264 Annex B byte stream (start codes), as `ffmpeg -f h264 -` writes it
    H264,
    /// Raw H.265/HEVC Annex B byte stream (start codes), as `ffmpeg -f hevc -` writes it
    #[value(alias = "hevc")]
    H265,
}

impl From<InputFormat> for StreamFormat {
    fn from(f: InputFormat) -> Self {
        match f {
            InputFormat::Flv => StreamFormat::Flv,
            InputFormat::Ts => StreamFormat::Ts,
            InputFormat::H264 => StreamFormat::AnnexB,
            InputFormat::H265 => StreamFormat::AnnexBH265,
        }
    }
}

/// A frame rate: `30`, `29.97` or `30000/1001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl std::str::FromStr for FrameRate {
    // A String error on purpose: clap's value parsers only show it (`invalid value 'x' for
    // '--opt': {err}`), and a command-line value has no byte offset or kind a caller would match
    // on. clap would take a typed error too (anything `Into<Box<dyn Error + Send + Sync>>`).
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid frame rate {s:?}: expected N, N.NN or N/D, for example 30 or 30000/1001"
            )
        };
        let (num, den) = if let Some((n, d)) = s.split_once('/') {
            (
                n.trim().parse::<u32>().map_err(|_| bad())?,
                d.trim().parse::<u32>().map_err(|_| bad())?,
            )
        } else if let Some((i, f)) = s.split_once('.') {
            if f.is_empty() || f.len() > 3 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let scale = 10u32.pow(f.len() as u32);
            let i: u32 = i.parse().map_err(|_| bad())?;
            let f: u32 = f.parse().map_err(|_| bad())?;
            let num = i
                .checked_mul(scale)
                .and_then(|v| v.checked_add(f))
                .ok_or_else(bad)?;
            // 29.97 and 59.94 mean the NTSC rates exactly.
            match (num, scale) {
                (2997, 100) => (30000, 1001),
                (5994, 100) => (60000, 1001),
                (23976, 1000) => (24000, 1001),
                _ => (num, scale),
            }
        } else {
            (s.trim().parse::<u32>().map_err(|_| bad())?, 1)
        };
        if num == 0 || den == 0 || num / den > 1000 {
            return Err(format!("frame rate {s:?} out of range (0 < fps <= 1000)"));
        }
        Ok(FrameRate { num, den })
    }
}

/// `--stats` and `--metrics`, shared by the pipe tools.
#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// Show progress on stderr: frames, media time, bitrate, speed against real time, repairs
    /// and drops (a line redrawn in place on a terminal, else a line every --stats-period)
    #[arg(long)]
    pub stats: bool,
    /// How often --stats prints a line when stderr is not a terminal
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub stats_period: TimeSpan,
    /// Serve Prometheus metrics at http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

/// A span of media time: `500ms`, `10s`, `1.5s`, `1m`, `1h`, `7d`, or plain seconds (`90`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSpan {
    /// 90 kHz units.
    pub ticks: i64,
}

impl TimeSpan {
    /// The same span as a wall-clock duration.
    pub fn as_duration(&self) -> std::time::Duration {
        std::time::Duration::from_nanos((self.ticks as u64).saturating_mul(100_000) / 9)
    }
}

impl std::str::FromStr for TimeSpan {
    // A String error on purpose: clap's value parsers only show it (`invalid value 'x' for
    // '--opt': {err}`), and a command-line value has no byte offset or kind a caller would match
    // on. clap would take a typed error too (anything `Into<Box<dyn Error + Send + Sync>>`).
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid duration {s:?}: expected a number with ms, s, m, h or d, for example 500ms, 10s, 1m, 1h, 7d")
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
            "d" => 86_400.0,
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

/// Options shared by the muxers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MuxInput {
    /// Input format; detected from the first bytes when not given
    #[arg(long, short = 'f', value_enum, value_name = "FORMAT")]
    pub input_format: Option<InputFormat>,
    /// Frame rate for H.264/H.265 Annex B input without VUI timing (default 25), e.g. 30 or 30000/1001
    #[arg(long, value_name = "FPS")]
    pub fps: Option<FrameRate>,
    /// Forward timestamp jump (seconds) past which the timeline re-stamps instead of keeping the gap
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub max_gap: f64,
    /// Drop audio and video tracks river does not carry (MPEG-2 video, AC-3, MP3, a second video
    /// track, ...) instead of failing with an error that names them; the other tracks go on
    #[arg(long)]
    pub drop_unsupported: bool,
}

/// Every tool's clap command, for docs and completions.
pub fn commands() -> Vec<clap::Command> {
    vec![
        MuxTs::command(),
        MuxFlv::command(),
        HlsSeg::command(),
        TestSrc::command(),
        Thumb::command(),
        RtmpIn::command(),
        RtspPull::command(),
        Relay::command(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates() {
        let f = |s: &str| s.parse::<FrameRate>().map(|r| (r.num, r.den));
        assert_eq!(f("30"), Ok((30, 1)));
        assert_eq!(f("30000/1001"), Ok((30000, 1001)));
        assert_eq!(f("29.97"), Ok((30000, 1001)));
        assert_eq!(f("12.5"), Ok((125, 10)));
        assert!(f("0").is_err());
        assert!(f("abc").is_err());
        assert!(f("30/0").is_err());
        assert!(f("1.").is_err());
        assert!(f("99999").is_err());
    }

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
        assert_eq!(t("7d"), Ok(7 * 86_400 * 90_000));
        for bad in [
            "", "s", "-1s", "0", "0s", "1x", "1.s", ".5s", "1..2s", "nan", "1e3s", "99999h",
        ] {
            assert!(t(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn clap_definitions_are_consistent() {
        for c in commands() {
            c.debug_assert();
        }
    }
}
