//! river-hls-seg.

use std::path::PathBuf;

use clap::Parser;

use super::{MuxInput, TimeSpan};
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const LONG: &str = "\
Reads H.264 (+AAC) on stdin (MPEG-TS, FLV or Annex B, detected) and writes HLS: MPEG-TS segments and \
a media playlist DIR/NAME.m3u8.

Segments are cut only before a keyframe, once --segment-time has passed, so every segment starts \
with PAT/PMT and an IDR and decodes on its own. EXTINF comes from the timestamps, accurate to the \
frame; EXT-X-PROGRAM-DATE-TIME from the wall clock; EXT-X-DISCONTINUITY marks a break the timeline \
stage re-stamped. Segments and the playlist are written to a temporary name and renamed, so a reader \
never sees a partial file, and after a crash every listed segment plays.

Live mode keeps a window of --list-size segments and deletes a segment a few segments after it \
leaves the playlist, so clients still downloading it are not cut off.

DVR mode (--dvr) keeps everything: an EVENT playlist while live, VOD with EXT-X-ENDLIST at the end. \
Segment names come from a strftime pattern (--segment-name), --align cuts at the first keyframe \
after each wall-clock boundary, --duration stops by itself (for cron), and --on-segment runs a \
command after each segment is complete.

On end of input, SIGINT, SIGTERM or SIGHUP the segment in hand is finished, the playlist gets \
EXT-X-ENDLIST, and the tool exits.

Examples:
  ffmpeg -re -i in.mp4 -c copy -f mpegts - | river-hls-seg --dir www/live --name movie
  river-rtsp-pull rtsp://cam/stream --format ts | river-hls-seg --dir /srv/dvr/cam1 --dvr --align 15m --duration 1h
  ... | river-hls-seg --dir rec --dvr --segment-name '%Y/%m/%d/%H%M%S.ts' --on-segment 'echo done: $RIVER_SEGMENT'";

/// river-hls-seg: stdin to HLS segments and playlist.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-hls-seg",
    version,
    about = "H.264 (+AAC) on stdin to HLS segments and a playlist: a live window or a DVR archive",
    long_about = LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct HlsSeg {
    /// Directory for the playlist and segments (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Stream name: the playlist is DIR/NAME.m3u8, live segments DIR/NAME-N.ts
    #[arg(long, default_value = "movie", value_name = "NAME")]
    pub name: String,
    /// Target segment duration in seconds; segments are cut at the first keyframe after it
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub segment_time: f64,
    /// Segments in the live playlist window
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub list_size: usize,
    /// Keep every segment (EVENT playlist, VOD at the end) instead of a live window
    #[arg(long)]
    pub dvr: bool,
    /// DVR segment file names, a strftime pattern relative to DIR (%Y %m %d %H %M %S %j %s %F %T)
    #[arg(
        long,
        value_name = "PATTERN",
        default_value = "%Y%m%d-%H%M%S.ts",
        requires = "dvr"
    )]
    pub segment_name: String,
    /// Format segment names and --align boundaries in UTC instead of local time
    #[arg(long)]
    pub utc: bool,
    /// Cut at the first keyframe after each wall-clock boundary of this period (e.g. 15m), instead
    /// of by --segment-time
    #[arg(long, value_name = "PERIOD", requires = "dvr")]
    pub align: Option<TimeSpan>,
    /// Serve DIR over HTTP on this address: DIR at /live/ (so NAME.m3u8 is
    /// http://ADDR/live/NAME.m3u8) and a player page at /. The bound address is printed on stderr.
    /// When the input ends the files stay served until SIGINT or SIGTERM
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<String>,
    /// Stop by itself after this much media (e.g. 1h), finishing the playlist
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<TimeSpan>,
    /// Run this shell command after each segment is complete; it gets RIVER_SEGMENT (path),
    /// RIVER_SEGMENT_URI, RIVER_SEGMENT_DURATION and RIVER_PLAYLIST in its environment
    #[arg(long, value_name = "CMD")]
    pub on_segment: Option<String>,
    #[command(flatten)]
    pub input: MuxInput,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for HlsSeg {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
