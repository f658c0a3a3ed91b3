//! river-rtsp-pull.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::{StatsArgs, TimeSpan};
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const RTSP_PULL_LONG: &str = "\
Pulls an IP camera (or any RTSP server) and writes its H.264 or H.265 video, and AAC audio when the camera \
sends it, to stdout as frames arrive: DESCRIBE, SETUP and PLAY with Basic or Digest authentication, \
RTP over the RTSP TCP connection (default) or over UDP, keepalives while playing, and TEARDOWN on \
exit. The RTSP client is the retina library (as used by Moonfire NVR).

Credentials: the URL's user:password@, or --user and a password read from --password-file FILE \
(first line) or from the RIVER_RTSP_PASSWORD environment variable, in that order of preference. \
Passwords never appear in logs or messages: the URL is logged with its user name only.

Formats: ts (MPEG-TS with H.264 or H.265 and AAC; parameter sets and PAT/PMT before every keyframe), \
flv (FLV with sequence headers; H.265 as Enhanced FLV), h264 (raw H.264 Annex B video only, SPS/PPS \
before every IDR; audio is dropped; an H.265 camera is refused). \
Timestamps are the camera's RTP timestamps, starting at zero at the first keyframe and kept \
monotonic by river's timeline stage.

Resilience: with --retry, a network error, a camera restart (the connection closed, or a 404/5xx \
while it boots), or a stall (no media for --stall-timeout) makes river reconnect with exponential \
backoff (0.5 s doubling up to 30 s; reset once media flows again). The output stays one stream: \
after a reconnect it resumes at a keyframe, its timestamps continue where they stopped, and MPEG-TS \
marks the break with discontinuity_indicator. Without --retry the same events end the tool with a \
one-line error and exit status 1. A wrong password (401) or an unsupported codec ends the tool even \
with --retry when it happens on the first connection; once a session has worked, every failure is \
retried.

Timestamps: RTP carries presentation times only; a camera that sends B-frames (frames in decoding \
order) gets decoding times from its SPS's reorder delay, as the hub's RTSP ingest does (so its \
first picture shows that delay after the stream's start).

--duration D stops after D of media has been written (or, when the camera is down, D plus the \
stall timeout of wall-clock time), tears the session down and flushes: a cron-driven DVR.

--stats shows progress on stderr and --metrics ADDR serves it as Prometheus text at \
http://ADDR/metrics: frames, media time, bytes received and written, and river_rtsp_pull_ \
sessions_total, reconnects_total, stall_timeouts_total, rtp_packets_lost_total and connected.

Examples:
  river-rtsp-pull rtsp://cam.lan/stream1 --user admin --password-file /etc/cam.pass > cam.ts
  river-rtsp-pull rtsp://cam.lan/stream1 --retry --duration 1h --format ts > rec-$(date +%H).ts
  RIVER_RTSP_PASSWORD=secret river-rtsp-pull rtsp://admin@cam.lan/live --transport udp | ffplay -
  river-rtsp-pull rtsp://cam.lan/live --retry | river-hls-seg --dir www/cam1 --serve 127.0.0.1:9000";

/// What river-rtsp-pull writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RtspFormat {
    /// MPEG-TS with H.264 or H.265 and AAC
    Ts,
    /// FLV with H.264 or H.265 (Enhanced FLV) and AAC
    Flv,
    /// Raw H.264 Annex B byte stream (video only)
    H264,
}

/// How RTP travels from the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RtspTransport {
    /// Interleaved in the RTSP TCP connection (works through NAT and firewalls)
    Tcp,
    /// RTP/RTCP over UDP (lower latency; packets may be lost)
    Udp,
}

/// river-rtsp-pull: pull an RTSP camera into a pipe.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-rtsp-pull",
    version,
    about = "Pull an IP camera over RTSP (H.264 or H.265 + AAC) to stdout as MPEG-TS, FLV or Annex B; reconnects with --retry",
    long_about = RTSP_PULL_LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct RtspPull {
    /// The camera's RTSP URL, e.g. rtsp://192.168.1.20:554/stream1 (may hold user:password@)
    #[arg(value_name = "URL")]
    pub url: String,
    /// RTP transport
    #[arg(long, value_enum, value_name = "PROTO", default_value_t = RtspTransport::Tcp)]
    pub transport: RtspTransport,
    /// User name for Basic/Digest authentication (overrides the URL's)
    #[arg(long, short = 'u', value_name = "USER", env = "RIVER_RTSP_USER")]
    pub user: Option<String>,
    /// Read the password from the first line of FILE (else RIVER_RTSP_PASSWORD, else the URL's)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Output format
    #[arg(long, short = 'f', value_enum, value_name = "FORMAT", default_value_t = RtspFormat::Ts)]
    pub format: RtspFormat,
    /// Stop after this much media, e.g. 10s, 15m, 1h (default: run until stopped)
    #[arg(long, short = 't', value_name = "DURATION")]
    pub duration: Option<TimeSpan>,
    /// Reconnect with exponential backoff after a network error, camera restart or stall
    #[arg(long)]
    pub retry: bool,
    /// A session that delivers no media for this long has stalled; also the limit for each RTSP request
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub stall_timeout: TimeSpan,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for RtspPull {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_options() {
        let a = RtspPull::try_parse_from(["river-rtsp-pull", "rtsp://h/x"]).unwrap();
        assert_eq!(a.format, RtspFormat::Ts);
        assert_eq!(a.transport, RtspTransport::Tcp);
        assert_eq!(a.stall_timeout.ticks, 10 * 90_000);
        assert!(!a.retry && a.duration.is_none());
        let a = RtspPull::try_parse_from([
            "river-rtsp-pull",
            "rtsp://h/x",
            "--transport",
            "udp",
            "-f",
            "h264",
            "--retry",
            "--duration",
            "1h",
            "--stall-timeout",
            "3s",
        ])
        .unwrap();
        assert_eq!(a.transport, RtspTransport::Udp);
        assert_eq!(a.format, RtspFormat::H264);
        assert!(a.retry);
        assert_eq!(a.duration.unwrap().ticks, 3600 * 90_000);
        assert!(RtspPull::try_parse_from(["river-rtsp-pull"]).is_err());
        assert!(RtspPull::try_parse_from(["river-rtsp-pull", "u", "--transport", "x"]).is_err());
    }
}
