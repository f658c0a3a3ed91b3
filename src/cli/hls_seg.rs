//! river-hls-seg.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::{ByteSize, MuxInput, StatsArgs, TimeSpan};
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const LONG: &str = "\
Reads H.264 or H.265 (+AAC) on stdin (MPEG-TS, FLV or Annex B, detected) and writes HLS: MPEG-TS or fMP4 \
segments and a media playlist DIR/NAME.m3u8.

Segments are cut before a keyframe once --segment-time has passed, so a segment starts with an IDR \
(and PAT/PMT) and decodes on its own. EXT-X-TARGETDURATION is fixed when the first segment ends and \
never changes: --segment-time, or the first GOP when that is longer (at most 10 s), rounded. A GOP \
that grows past the target later is cut without a keyframe before its segment would round above the \
target (legal: the playlist does not declare EXT-X-INDEPENDENT-SEGMENTS), and that is logged; the \
next keyframe starts a segment again. EXTINF comes from the timestamps, accurate to the frame. \
EXT-X-PROGRAM-DATE-TIME is the wall clock read once at the first segment, advanced by the media \
time, and read again only at a discontinuity. EXT-X-DISCONTINUITY marks a break the timeline stage \
re-stamped, and (fMP4) a change of parameter sets, which also writes a new init segment and \
EXT-X-MAP. Segments and playlists are written to a temporary name and renamed, so a reader never \
sees a partial file; in DVR mode they are fsynced before the rename and the directory after it, so \
after a crash, even a power loss, every listed segment plays.

--segment-type fmp4 writes ISO BMFF fragments (init.mp4 and .m4s, audio and video muxed together; \
H.264 as avc1, H.265 as hvc1, AAC as mp4a; Safari plays HEVC in HLS only as fMP4). --low-latency adds LL-HLS (fMP4, version 9): parts of --part-time \
(EXT-X-PART, INDEPENDENT=YES on parts that start with a keyframe), EXT-X-PRELOAD-HINT, \
EXT-X-SERVER-CONTROL with blocking reload (_HLS_msn/_HLS_part), delta updates (_HLS_skip) and \
PART-HOLD-BACK of three part targets. Parts are listed only within three target durations of the \
live edge, also in a DVR playlist, which keeps every segment. --serve answers blocking requests \
without a thread each: a request waits until its part exists, at most three target durations \
(then 503); one more than two segments ahead or past the Advance Part Limit gets 400 at once.

Live mode keeps a window of --list-size segments and deletes a segment (or part) four target \
durations after it leaves the playlist, so clients still downloading it are not cut off (when the \
input ends, those waiting go at once, or with --serve when it stops serving: a cache in front may \
still hand out a playlist from before the end). Live \
file names carry the start time (NAME-START-N.ts), so a name is never reused and --serve sends \
segments, parts and init segments as immutable; playlists get a max-age of half a target duration \
(classic), none (LL-HLS), one target duration (with _HLS_ directives), or a day once ended.

DVR mode (--dvr) keeps everything: an EVENT playlist while live, VOD with EXT-X-ENDLIST at the end. \
Segment names come from a strftime pattern (--segment-name), --align cuts at the first keyframe \
after each wall-clock boundary, --duration stops by itself (for cron), and --on-segment runs a \
command after each segment is complete. A run in a directory that holds an earlier run's DVR \
playlist (same --name) picks it up: its segments stay listed under their sequence numbers, the new \
ones follow after EXT-X-DISCONTINUITY (a segment missing on disk is dropped with every segment \
before it).

Retention (--keep, --max-size, with --dvr): after each segment the oldest segments leave the \
playlist, never the newest: by age, once they ended more than --keep before the newest (by \
EXT-X-PROGRAM-DATE-TIME, so a pause between runs counts), and by size, so that the files on disk \
stay within --max-size (the segment being written, and its LL-HLS parts, come on top). A segment that left is deleted \
four target durations later, as in live mode, for players still fetching it (its bytes count \
against --max-size meanwhile), with its init segment once no listed segment uses it and its \
folder once empty. The playlist is then a sliding window: no EXT-X-PLAYLIST-TYPE (an EVENT \
playlist may not lose segments), EXT-X-MEDIA-SEQUENCE and EXT-X-DISCONTINUITY-SEQUENCE advance, \
EXT-X-ENDLIST at the end. Retention applies to a picked-up archive at start too.

On end of input, SIGINT, SIGTERM or SIGHUP the segment in hand is finished, the playlist gets \
EXT-X-ENDLIST, and the tool exits.

--stats shows progress on stderr and --metrics ADDR serves it as Prometheus text at \
http://ADDR/metrics: frames, media time, bytes written, and river_hls_seg_ segments_total, \
parts_total, files_removed_total, write_seconds_total, segment_close_seconds (the latest \
segment's flush, fsync and rename), playlist_segments, archive_bytes (with retention), and with \
--serve http_requests_total, http_errors_total, http_response_bytes_total, \
blocking_requests_total and blocking_timeouts_total (LL-HLS).

Examples:
  ffmpeg -re -i in.mp4 -c copy -f mpegts - | river-hls-seg --dir www/live --name movie
  river-testsrc --realtime | river-hls-seg --dir www/live --low-latency --serve 127.0.0.1:9000
  river-rtsp-pull rtsp://cam/stream --format ts | river-hls-seg --dir /srv/dvr/cam1 --dvr --align 15m --duration 1h
  ... | river-hls-seg --dir rec --dvr --segment-name '%Y/%m/%d/%H%M%S.ts' --on-segment 'echo done: $RIVER_SEGMENT'
  river-rtsp-pull rtsp://cam/stream --retry | river-hls-seg --dir /srv/dvr/cam1 --dvr --keep 7d --max-size 500GiB";

/// The segment container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SegmentType {
    /// MPEG-TS segments (.ts)
    Ts,
    /// Fragmented MP4: an init segment (.mp4) and media segments (.m4s)
    Fmp4,
}

/// river-hls-seg: stdin to HLS segments and playlist.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-hls-seg",
    version,
    about = "H.264 or H.265 (+AAC) on stdin to HLS segments and a playlist: a live window or a DVR archive",
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
    /// Segment container: MPEG-TS, or fMP4 (init segment + .m4s fragments). Default ts, or fmp4
    /// with --low-latency
    #[arg(long, value_enum, value_name = "TYPE")]
    pub segment_type: Option<SegmentType>,
    /// Low-latency HLS: parts, preload hints, blocking playlist reload and delta updates (fMP4)
    #[arg(long)]
    pub low_latency: bool,
    /// LL-HLS part duration in seconds, rounded to whole frames. The default, 0.2, is five frames
    /// at 25 fps and six at 30, and puts hls.js about a second behind live (PART-HOLD-BACK 0.6 s)
    #[arg(
        long,
        default_value_t = 0.2,
        value_name = "SECONDS",
        requires = "low_latency"
    )]
    pub part_time: f64,
    /// Segments in the live playlist window
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub list_size: usize,
    /// Keep every segment (EVENT playlist, VOD at the end) instead of a live window
    #[arg(long)]
    pub dvr: bool,
    /// DVR retention by age: segments leave the playlist once they ended more than this before the
    /// newest (e.g. 7d, 12h), and are deleted
    #[arg(long, value_name = "DURATION", requires = "dvr")]
    pub keep: Option<TimeSpan>,
    /// DVR retention by size: the oldest segments leave the playlist and are deleted so that the
    /// files on disk stay within this (e.g. 500GiB, 800MiB; the segment being written comes on top)
    #[arg(long, value_name = "SIZE", requires = "dvr")]
    pub max_size: Option<ByteSize>,
    /// DVR segment file names, a strftime pattern relative to DIR (%Y %m %d %H %M %S %j %s %F
    /// %T), ending in .ts (MPEG-TS) or .m4s (fMP4). Default %Y%m%d-%H%M%S.ts (.m4s with fMP4)
    #[arg(long, value_name = "PATTERN", requires = "dvr")]
    pub segment_name: Option<String>,
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
    pub stats: StatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for HlsSeg {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}
