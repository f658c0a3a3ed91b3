//! river-rtmp-in.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::StatsArgs;
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const RTMP_IN_LONG: &str = "\
Accepts RTMP publishers (ffmpeg, OBS, any encoder that pushes rtmp://HOST:PORT/APP/KEY) and writes \
what they publish to stdout as FLV, as it arrives: the FLV header, onMetaData (the publisher's own \
bytes), the sequence headers, then the audio and video tags. Codecs pass through untouched: H.264 \
and AAC, H.265 as Enhanced FLV (hvc1, as ffmpeg 6.1+ and OBS 29.1+ publish it; river-mux-ts reads \
it), and other Enhanced-RTMP FourCC video such as av01, which river's other tools refuse by name.

Access: --app limits the application (the first path element of the URL, without the slashes \
around it: /live/ is live), --key/--keys the stream keys (the last path element). A wrong application \
is refused at connect (NetConnection.Connect.Rejected), a wrong key at publish \
(NetStream.Publish.BadName), and the connection is closed. A publish needs an application and a \
key. Without --key/--keys any key is accepted. Keys are never logged in full. One publisher per key \
at a time. The names follow the same rules as river-relay's RTMP front: the application and the key \
are percent-decoded once and must be 1 to 128 bytes of A-Z a-z 0-9 . _ -, not starting with '.' or \
'-', without '..' (a key like ../x is refused before --exec runs anything); --app, --key and the \
lines of --keys are checked at start.

Without --exec, stdout carries one stream: one publisher at a time, and the tool exits when the \
publish ends. --persist keeps listening instead and keeps stdout one continuous FLV across \
publisher reconnects: timestamps continue where they stopped, and sequence headers and metadata \
are written again only when they change, so an encoder reconnect does not break the pipeline \
downstream. Each publish starts on a video keyframe.

--exec CMD runs CMD with `sh -c` once per accepted publish, with that publish's FLV on its stdin \
and RIVER_APP, RIVER_KEY and RIVER_REMOTE_ADDR in its environment, like nginx-rtmp's exec: one \
ingest serves many stream keys. When the publish ends the child's stdin is closed; a child still \
running 2 s later gets SIGTERM (its whole process group), SIGKILL only if it is still there 10 s \
after that, and it is always reaped (a child that reads nothing of the rest of its input for 2 s \
after the publish ended gets its stdin closed then).

A slow reader (the pipe on stdout, or an --exec command) slows its publisher down: while more than \
256 KiB of a publish wait to be written, its connection is not read, so TCP holds the encoder back \
until they drain. An --exec command that stops reading (closes its stdin) loses the rest of that \
publish; the publish goes on.

Timestamps pass through river's timeline stage: RTMP's 32-bit millisecond wrap is unwrapped and \
the output is monotonic. One thread serves every connection. Limits: at most --max-connections \
connections open (one over the cap is closed at once and logged with its address), 10 s for the \
handshake and connect, 30 s without data closes a connection, 10 s without progress writing to a \
client closes it, at most 8 streams per connection, messages up to 8 MiB. SIGINT/SIGTERM finish the \
tag in hand, flush, end the --exec children and exit. The bound address is printed on stderr (use port \
0 for any free port).

--stats shows progress on stderr and --metrics ADDR serves it as Prometheus text at \
http://ADDR/metrics: frames written (the media time too without --exec), RTMP bytes in, FLV bytes \
out, and river_rtmp_in_ connections, connections_total, publishing, publishes_total, \
refused_total, timeouts_total and output_stalls_total (a publisher paused while its output was \
backed up).

Examples:
  river-rtmp-in --listen 127.0.0.1:1935 --key secret | river-mux-ts | ffplay -
  ffmpeg -re -i in.mp4 -c copy -f flv rtmp://127.0.0.1:1935/live/secret
  river-rtmp-in --persist --key secret | river-mux-ts | river-hls-seg --dir www/live --serve 0.0.0.0:9000
  river-rtmp-in --keys keys.txt --exec 'river-mux-ts > /srv/rec/$RIVER_KEY-$(date +%s).ts'";

/// river-rtmp-in: RTMP ingest to FLV on stdout.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-rtmp-in",
    version,
    about = "RTMP ingest for ffmpeg and OBS: publishers in, FLV on stdout (or one command per stream key)",
    long_about = RTMP_IN_LONG,
    after_long_help = EXIT_STATUS_HELP
)]
pub struct RtmpIn {
    /// Address to listen on (port 0: any free port; the bound address is printed on stderr)
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:1935")]
    pub listen: SocketAddr,
    /// Accept only this application (rtmp://HOST/APP/KEY); default: any
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Accept only this stream key (or set RIVER_RTMP_KEY, which keeps it out of `ps`)
    #[arg(
        long,
        value_name = "KEY",
        env = "RIVER_RTMP_KEY",
        hide_env_values = true
    )]
    pub key: Option<String>,
    /// Accept the stream keys listed in FILE, one per line (blank lines and #comments ignored)
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Run CMD (sh -c) once per accepted publish with its FLV on stdin and RIVER_APP, RIVER_KEY,
    /// RIVER_REMOTE_ADDR set; stdout is then unused
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Keep listening and keep stdout one continuous FLV across publisher reconnects
    #[arg(long, conflicts_with = "exec")]
    pub persist: bool,
    /// Most open connections; one over the cap is closed at once (and logged with its address)
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections: usize,
    #[command(flatten)]
    pub stats: StatsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for RtmpIn {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_conflicts() {
        let a = RtmpIn::try_parse_from(["river-rtmp-in"]).unwrap();
        assert_eq!(a.listen.to_string(), "0.0.0.0:1935");
        assert!(!a.persist);
        assert_eq!(a.max_connections, 4096);
        let a = RtmpIn::try_parse_from(["river-rtmp-in", "--max-connections", "3"]).unwrap();
        assert_eq!(a.max_connections, 3);
        assert!(RtmpIn::try_parse_from(["river-rtmp-in", "--max-connections", "0"]).is_err());
        assert!(RtmpIn::try_parse_from(["river-rtmp-in", "--exec", "cat", "--persist"]).is_err());
        assert!(RtmpIn::try_parse_from(["river-rtmp-in", "--listen", "nope"]).is_err());
    }
}
