//! river-mux-ts and river-mux-flv.

use clap::Parser;

use super::{MuxInput, StatsArgs};
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const MUX_TS_LONG: &str = "\
Reads H.264 or H.265 video (+AAC) from stdin and writes MPEG-TS to stdout, one access unit at a time \
as it arrives.

The input format is detected from the first bytes: FLV (also Enhanced FLV with H.265) by its \
signature, MPEG-TS by sync bytes 188 apart, anything else as an Annex B byte stream, H.264 or H.265 \
as its NAL unit headers say. --input-format overrides the detection.

FLV and MPEG-TS input keep their timestamps. Annex B has none: the frame rate comes from the SPS \
(VUI timing) or --fps, and presentation times follow picture order, so B-frames come out right. \
Parameter sets (SPS/PPS, and VPS for H.265) are repeated before every keyframe and PAT/PMT before \
every keyframe, so any keyframe is a clean join point. An H.265 stream that starts on a CRA picture \
loses that picture's RASL pictures, which reference pictures before the start. Timestamps pass \
through river's timeline stage: wraps are unwrapped and jumps re-stamped so the output is monotonic.

An audio or video track river does not carry (MPEG-2 video, AC-3, MP3, a second video track, ...) \
is an error naming it; --drop-unsupported drops it and goes on with the rest.

Examples:
  ffmpeg -re -i in.mp4 -c copy -f flv - | river-mux-ts | ffplay -
  ffmpeg -i in.mp4 -c:v copy -bsf:v h264_mp4toannexb -an -f h264 - | river-mux-ts --fps 30 > out.ts
  ffmpeg -i in.mkv -c:v copy -bsf:v hevc_mp4toannexb -an -f hevc - | river-mux-ts > out.ts";

const MUX_FLV_LONG: &str = "\
Reads H.264 or H.265 video (+AAC) from stdin and writes FLV to stdout, one tag at a time as it \
arrives.

The input format is detected from the first bytes: FLV by its signature (re-normalised; Enhanced FLV \
and HEVC with the legacy codec id 12 too), MPEG-TS by sync bytes 188 apart, anything else as an \
Annex B byte stream, H.264 or H.265 as its NAL unit headers say. --input-format overrides the \
detection.

The output starts with the FLV header, onMetaData (width, height, frame rate, codecs), then the \
sequence headers, then the media tags with composition times. H.264 is written as classic FLV (AVC); \
H.265 always as Enhanced FLV (FourCC hvc1), which ffmpeg 6.1 and later read. Timestamps pass \
through river's timeline stage, so they are monotonic and start near zero.

An audio or video track river does not carry (MPEG-2 video, AC-3, MP3, a second video track, ...) \
is an error naming it; --drop-unsupported drops it and goes on with the rest.

Examples:
  ffmpeg -i in.mp4 -c copy -f mpegts - | river-mux-flv > out.flv
  ffmpeg -i in.mp4 -c:v copy -bsf:v h264_mp4toannexb -an -f h264 - | river-mux-flv | ffplay -";

/// river-mux-ts: H.264 or H.265 (+AAC) in, MPEG-TS out.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-mux-ts",
    version,
    about = "H.264 or H.265 (+AAC) from FLV, MPEG-TS or Annex B on stdin to MPEG-TS on stdout",
    long_about = MUX_TS_LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct MuxTs {
    #[command(flatten)]
    pub input: MuxInput,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// river-mux-flv: H.264 or H.265 (+AAC) in, FLV out.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-mux-flv",
    version,
    about = "H.264 or H.265 (+AAC) from Annex B, MPEG-TS or FLV on stdin to FLV on stdout",
    long_about = MUX_FLV_LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct MuxFlv {
    #[command(flatten)]
    pub input: MuxInput,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for MuxTs {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
impl ToolArgs for MuxFlv {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
