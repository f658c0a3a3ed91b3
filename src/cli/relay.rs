//! river-relay: the fstream-compatible hub and its clients.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::TimeSpan;
use crate::stdio::{LogArgs, ToolArgs, EXIT_STATUS_HELP};

const RELAY_LONG: &str = "\
An fstream-compatible broadcast hub that starts every watcher on a keyframe, with http-flv/http-ts \
pull and http-flv push, plus its two clients.

  river-relay serve [--listen ADDR] [--users DIR] [--http ADDR] [--rtmp ADDR]
  river-relay broadcast ADDR --user U --password P [--channel C] [--channel-password CP]   (stdin -> hub)
  river-relay watch ADDR --user U [--channel C] [--channel-password CP]                    (hub -> stdout)

fstream.py's own command line works unchanged (only the program name changes):
  river-relay 127.0.0.1:61920 broadcast,user=fier,user-password=123,channel=c
  river-relay 127.0.0.1:61920 watch,user=fier,channel=c

Protocol (fstream): the client connects over TCP and sends \"\\n\\n\", the payload length as a 32-bit \
big-endian integer, one 0x00 byte, then the UTF-8 payload, e.g. \
`broadcast,user=fier,user-password=123,channel=cam,channel-password=456` or \
`watch,user=fier,channel=cam,channel-password=456`. Then a broadcaster sends the stream and a watcher \
receives it. Users are DIR/<name>.ini files with `[DEFAULT]` and `password=...`, re-read on every \
broadcaster login. Channels are per user (fier/cam and ann/cam differ); the channel defaults to \
`default` and its password to none.

Names (every front, and river-rtmp-in's keys): user and channel names are 1 to 128 bytes of \
A-Z a-z 0-9 . _ -, not starting with '.' or '-', without '..'. Passwords are at most 256 bytes of \
UTF-8 without control characters; empty means none. In URLs (HTTP, RTMP, RTSP) the path is split at \
'/' and the query at '&' and '=' first, then each part is percent-decoded exactly once and checked: \
%2F in a name is a '/' in that name (refused), '+' is a plus. The fstream payload is not decoded.

Policies (see `river-relay serve --help` for the details):
- A refused client is closed without any data sent; the reason and peer are logged.
- A second broadcaster on a live channel that authenticates takes the channel over: the old one is \
closed; watchers keep their connection, get what was queued, then the new stream's headers and its \
first keyframe.
- At the end of a broadcast each watcher receives everything queued for it, then EOF.
- Watchers of FLV, MPEG-TS or H.264 broadcasts start on a keyframe (headers + cached GOP); slow \
watchers skip ahead to the next keyframe, and are disconnected when too far behind. Unknown content \
is relayed byte for byte from the join point, and a slow watcher of it is disconnected.

HTTP side (serve --http ADDR): GET /<user>/<channel>.flv or .ts (?password=CHANNEL-PASSWORD) streams \
the channel (converted when the broadcast is in the other container); POST or PUT \
/<user>/<channel>[.flv] (?user-password=...&channel-password=...) is a broadcast, as ffmpeg -f flv \
http://HOST:PORT/live/stream1?user-password=... sends it; GET /stats (JSON) and /metrics \
(Prometheus text). A browser plays a channel at GET /<user>/<channel>: a page with mpegts.js (served \
by the hub at /mpegts.js) playing its http-flv, or its http-ts with ?format=ts. Every answer carries \
Access-Control-Allow-Origin: *, so pages on other sites can play the streams too.";

const SERVE_LONG: &str = "\
Runs the hub: one thread, one mio event loop for fstream (--listen) and HTTP (--http).

Auth: a broadcaster's user-password is checked against DIR/<user>.ini (`[DEFAULT]`, `password=...`), \
re-read at every login. A watcher's channel-password must equal the one the live broadcaster set \
(none = none). A watcher of a channel that is not live waits (at most --max-waiting of them, for at \
most --wait-timeout); when the broadcaster comes with a different channel password the waiting \
watcher is dropped. A refused client is closed without any data sent (HTTP clients get a 4xx \
status, RTMP clients an error status, RTSP clients a 4xx), and the reason is logged with the peer \
address.

Authentication comes first: a broadcaster without the right user password is told only that \
(fstream: closed; HTTP push: 403; RTMP publish: `wrong user password or unknown user`; RTSP \
ANNOUNCE: 401), whatever else is wrong with its request (channel name, query, body, SDP). Names \
that break the rule (see `river-relay --help`) then get 400 over HTTP and RTSP, an error status \
naming the problem over RTMP. Channel names are public (/stats lists them): a watcher of a channel \
that is not live is told so, or waits.

Second broadcaster: when a broadcaster authenticates for a channel that is already live, it takes \
over (the usual case is the same user reconnecting after a network failure). The old broadcaster's \
connection is closed. Watchers stay connected: they receive everything already queued, then the new \
stream's headers and its first keyframe (the FLV file header is not repeated, and an FLV stream's \
timestamps continue after the old stream's, so players see one timeline); if the new stream is in \
another format they get EOF instead. A watcher whose channel password no longer matches is \
dropped.

End of broadcast: when the broadcaster closes, each watcher receives everything queued for it, then \
EOF. Watchers still waiting for the channel keep waiting.

Keyframes: the hub detects MPEG-TS, FLV, or H.264 or H.265 Annex B from the first bytes, keeps the \
headers (FLV header, onMetaData, sequence headers; PAT/PMT; SPS/PPS, and the VPS for H.265) and the \
bytes since the last keyframe (an IDR, or for H.265 an IRAP picture) \
(bounded by --cache-bytes and --cache-time), so a watcher who joins late starts decodable at once \
(joining FLV H.265 on an open-GOP CRA picture, it gets none of that CRA's RASL pictures, which \
reference the GOP before). \
Unknown content is forwarded as it is, from the join point. --no-gop-cache turns the GOP cache \
off (watchers wait for the next keyframe).

Delivery: a broadcast whose media arrives at about real time (its FLV or MPEG-TS timestamps \
against the clock, over 2 s) never waits for a watcher: a watcher whose queue overflows \
(--queue-bytes, --queue-time) skips ahead to the next keyframe and is disconnected after \
--max-behind. A broadcast faster than real time (a file pushed unpaced), and all content without \
a clock (unknown bytes, raw H.264), is paced to its watchers and nothing is lost: the hub reads \
the broadcaster only while every watcher's queue is under --queue-bytes (TCP holds the \
broadcaster back meanwhile), and disconnects a watcher that holds it back without writing \
anything, or draining less than a tenth of what the fastest watcher drained, for --max-behind. \
A broadcast starts paced until its pace is known; each change is logged. While a broadcast is held \
at no more than real time, the hub now and then reads it freely for a moment to tell a live source \
(switched to real time) from a file (kept paced). Live content without a \
clock is paced too, as fstream does; --unclocked isolate gives it the real-time policy instead (a \
watcher that cannot keep up skips to the next H.264 keyframe, or is disconnected from unknown \
bytes, and never slows the others). /stats shows the regime (delivery) and the time the \
broadcaster was held back (backpressure_secs). RTSP players over UDP cannot push back and always \
get the real-time policy.

Limits: the handshake must complete within 10 s and is at most 4096 bytes; HTTP request heads are \
at most 8 KiB and must arrive within 10 s (else 408); an RTMP handshake and connect must be done \
within 10 s; an RTSP request must be complete within 10 s of its first byte (else 408); at most \
--max-connections connections on all fronts together, more are closed at once (HTTP: 503). Bytes a \
watcher sends after its handshake are read and discarded; a watcher that sends more than 1 MiB is \
closed.

HTTP: GET /<user>/<channel>.flv (video/x-flv) and .ts (video/mp2t) with ?password=; the body \
starts on a keyframe, chunked over HTTP/1.1 (the connection can serve another request after the \
end of the broadcast) and close-delimited over HTTP/1.0. Connections are kept alive (idle ones \
close after 15 s) and pipelined requests are answered in order; HEAD answers with the GET's head. A broadcast in the other container is \
converted by one shared view per channel and format. Unknown content gets 415. POST or PUT \
/<user>/<channel>[.flv|.ts] with a chunked or Content-Length body is a broadcast \
(?user-password=, ?channel-password=). GET /stats is JSON, /stats?format=prometheus and /metrics \
Prometheus text: per channel and per watcher bytes, drops and queue depth.

Player pages: GET /<user>/<channel> answers an HTML page that plays the channel's http-flv with \
mpegts.js 1.8.2 (served by the hub at /mpegts.js, its licences at /mpegts.js.LICENSE.txt); \
?format=ts plays http-ts instead, and ?password= is passed on to the stream. The page starts again \
2 s after the stream ends or fails, so it can be opened before the broadcast starts.

HLS (--hls): every channel that carries H.264 or H.265 (+AAC), whatever front it came in on (fstream FLV, MPEG-TS or raw H.264/H.265, HTTP push, RTMP, RTSP), is served as HLS at /<user>/<channel>/index.m3u8, from memory (no files), by river-hls-seg's segmenter: the variant --hls-variant names, by default LL-HLS (fMP4 segments of --hls-segment-time with --hls-part-time parts, preload hints, blocking playlist reload, delta updates; players without LL-HLS play its segments). Each variant is also at its own name: ll.m3u8 (LL-HLS), fmp4.m3u8 (classic fMP4) and ts.m3u8 (classic MPEG-TS). A channel's variant is segmented only while someone plays it: from the first playlist request (which waits for the first segment, at most 15 s, then 503) to --hls-idle-timeout after the last request; segments leave memory as they leave the window (--hls-list-size). Requests that wait (blocking reloads, preload hints) hold no thread; after three target durations they get 503. Cache-Control: a classic live playlist max-age of half the target duration, an LL-HLS one max-age=0, with _HLS_ directives one target duration, after EXT-X-ENDLIST a day; segments, parts and init segments a year, immutable (names carry the session's start time and are never reused). A channel with a password: the playlist needs ?password=, and every URI it lists carries a token (a MAC over the channel, its password, the client's IP address and an expiry --hls-token-ttl ahead, under a key drawn at start) that segments, parts and init segments require (403 without, expired, from another address, or once the password changed). The player page plays HLS with ?format=hls (hls.js, served at /hls.min.js). /stats has an \"hls\" list per channel (sessions, requests waiting, memory, requests and bytes), /metrics the river_relay_hls_* series. --hls does not ask --on-play.

CORS: every response carries Access-Control-Allow-Origin: * (streams, stats, refusals), so a page \
on any origin can play the streams and read the stats. OPTIONS on a resource answers a preflight \
with 204: Allow and Access-Control-Allow-Methods (the resource's methods), the requested \
Access-Control-Request-Headers echoed in Access-Control-Allow-Headers, \
Access-Control-Allow-Private-Network: true when asked (a public page calling a hub on a LAN), and \
Access-Control-Max-Age: 86400. OPTIONS on an unknown path is 404; OPTIONS * lists every method. The same figures are \
logged per channel every --stats-interval at info level (-v).

HOOKS: --on-publish and --on-play POST a JSON object to their URL (HTTP/1.1, Content-Type: application/json) and wait for the answer without holding up anyone else: 2xx lets the client in; any other status, no answer within --hook-timeout, or none at all (the hook is down) refuses it as its front refuses anything (fstream: closed without data; HTTP: 403; RTMP: NetStream.Publish.BadName or NetStream.Play.Failed, `river-relay: refused by the publish hook`; RTSP: 403). A broadcaster is asked about after the hub has checked the names and its user password in the users file, so a client the hub refuses never reaches the hook: both must allow. A watcher is asked about after the names are checked and before it joins its channel (the channel password is checked when the channel is live); an RTSP player after the hub's own check (the channel live, its password good), since it cannot wait for a channel (on an edge it can: it is asked before the pull, see Cascading). --on-unpublish is told when a broadcast that started ends (or is taken over), --on-stop when a watcher that joined leaves, with the bytes and the duration; at most 256 such notifications are in flight, more are dropped and counted. The object: {\"action\": \"publish\"|\"play\"|\"unpublish\"|\"stop\", \"id\": the connection id as /stats shows it, \"protocol\": \"fstream\"|\"http\"|\"rtmp\"|\"rtsp\", \"user\", \"channel\", \"remote_addr\": \"IP:PORT\", \"query\": as sent or null, \"user_password\", \"channel_password\": as given or null; and for unpublish and stop \"bytes\" and \"duration_secs\"}. Hook host names are resolved once, at start. /metrics counts calls by hook and outcome, the calls in flight and their latency (river_relay_hook_*); refusals by a hook count as reason=\"auth\".

Cascading (origin and edges): with --origin HOST:PORT this hub is an edge. A watcher on any front \
that asks for a channel not live here waits as usual while the edge pulls the channel from the \
origin over one fstream watch connection, with that watcher's channel password; every later \
watcher here is served from the same pull, and the origin sees one watcher per channel per edge. \
The origin refuses a wrong channel password at once: the edge refuses the watchers that brought it \
(HTTP 403, RTMP StreamNotFound, fstream closed); a channel the origin does not have live within \
its --wait-timeout gets 404. The origin's GOP cache gives the edge a keyframe to start from. If the \
origin goes away, the edge's watchers stay connected while the edge dials again (100 ms doubling \
to 2 s); when the origin sends the channel again, every watcher continues at its first keyframe, as \
after a second broadcaster. After --wait-timeout without the origin the broadcast ends here \
(watchers get EOF). The pull stops --origin-idle after the last watcher here leaves. RTSP players: \
DESCRIBE waits (up to 10 s) for the pull; Digest never carries a password, so a player of a \
channel with a password whose pull has not started gets a Basic challenge. The origin's address \
is resolved once, at start. With --push-to HOST:PORT every broadcast that starts here (not a \
pulled one) is also sent to that hub as an fstream broadcast, like nginx-rtmp's push: it logs in \
as the channel's user with the password from --users (the other hub needs the same user and \
password) and the channel password the broadcaster set, starts from the channel's headers and \
cached keyframe, and is redialled (500 ms doubling to 10 s) until the broadcast ends. \
Hooks: an edge's --on-play is asked about every watcher here (RTSP players too) before it waits, \
so one the hook refuses starts no pull; the origin's hooks see each pull as an fstream watcher from \
the edge with the channel password of the watcher that started it, and refusing it refuses the \
watchers waiting with that password. Later watchers of a pulled channel meet only this hub's checks \
(the pull's channel password, this hub's hook): give edges the same --on-play as the origin to ask \
about every watcher. A pulled channel is no publish here (no --on-publish, --on-unpublish); a push \
is asked about by the other hub's --on-publish.

SIGINT/SIGTERM: stop accepting, give watchers up to 2 s to receive what is queued, exit.";

/// A byte count: `65536`, `64K`, `64KiB`, `8M`, `8MiB`, `1G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    // A String error on purpose: clap's value parsers only show it (`invalid value 'x' for
    // '--opt': {err}`), and a command-line value has no byte offset or kind a caller would match
    // on. clap would take a typed error too (anything `Into<Box<dyn Error + Send + Sync>>`).
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => {
                return Err(format!(
                    "invalid size {s:?}: expected e.g. 65536, 64KiB, 8MiB"
                ))
            }
        };
        let n: usize = num
            .parse()
            .map_err(|_| format!("invalid size {s:?}: expected e.g. 65536, 64KiB, 8MiB"))?;
        n.checked_mul(mult)
            .filter(|&v| v > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} out of range"))
    }
}

/// river-relay: fstream-compatible hub, broadcaster and watcher.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "river-relay",
    version,
    about = "fstream-compatible broadcast hub (keyframe-aware, http-flv/http-ts pull, http-flv push) and its clients",
    long_about = RELAY_LONG,
    after_long_help = EXIT_STATUS_HELP,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Relay {
    #[command(subcommand)]
    pub cmd: RelayCmd,
    #[command(flatten)]
    pub log: LogArgs,
}

impl ToolArgs for Relay {
    fn log_args(&self) -> &LogArgs {
        &self.log
    }
}

#[derive(Subcommand, Debug, Clone)]
pub enum RelayCmd {
    /// Run the hub (fstream on --listen, HTTP on --http)
    #[command(long_about = SERVE_LONG, after_long_help = EXIT_STATUS_HELP)]
    Serve(Box<ServeArgs>),
    /// Send stdin to a hub as a broadcast
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Broadcast(BroadcastArgs),
    /// Write a channel from a hub to stdout
    #[command(after_long_help = EXIT_STATUS_HELP)]
    Watch(WatchArgs),
    /// fstream.py's form: `river-relay ADDR broadcast,user=...` / `river-relay ADDR watch,user=...`
    #[command(external_subcommand)]
    Fstream(Vec<OsString>),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// fstream address to listen on (port 0 = any; the bound address is printed on stderr)
    #[arg(
        long,
        short = 'l',
        value_name = "ADDR",
        default_value = "0.0.0.0:61920"
    )]
    pub listen: String,
    /// Directory of users: <name>.ini with [DEFAULT] password=...
    #[arg(long, short = 'u', value_name = "DIR", default_value = "users")]
    pub users: PathBuf,
    /// Also serve HTTP on this address (GET .flv/.ts, player pages, POST/PUT push, /stats, /metrics)
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Also serve RTMP on this address: publish and play rtmp://HOST:PORT/<user>/<channel>
    /// (?user-password= to publish, ?password= for the channel password). H.265 is Enhanced RTMP
    /// (hvc1): a player whose connect fourCcList lacks hvc1 gets NetStream.Play.Failed naming the
    /// codec; ffmpeg before 6.1 and VLC 3 cannot play H.265 over RTMP (use http-ts or RTSP)
    #[arg(long, value_name = "ADDR")]
    pub rtmp: Option<String>,
    /// RTMP players get media at most this often: what arrives meanwhile (up to 64 KiB) waits
    /// and goes out in one write, so a player costs the hub far fewer writes (its CPU per player
    /// falls about in proportion), and a broadcast only RTMP players watch is read from its
    /// publisher on the same ticks; 0 writes each message as it comes, for the lowest latency
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = merge_window)]
    pub rtmp_merge: std::time::Duration,
    /// Also serve RTSP on this address: publish (ANNOUNCE/RECORD, user password) and play
    /// (DESCRIBE/PLAY, channel password) rtsp://HOST/<user>/<channel>, RTP over TCP
    /// (interleaved) or UDP
    #[arg(long, value_name = "ADDR")]
    pub rtsp: Option<String>,
    /// UDP port for RTSP's RTP over UDP, on the --rtsp address (RTCP uses the next port);
    /// 0 picks a free even/odd pair
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 0,
        conflicts_with = "no_rtsp_udp"
    )]
    pub rtsp_udp_port: u16,
    /// Offer RTSP clients TCP interleaved transport only (UDP SETUPs get 461)
    #[arg(long)]
    pub no_rtsp_udp: bool,
    /// RTSP session timeout: a session without a request (e.g. GET_PARAMETER or OPTIONS
    /// keepalives) or RTCP from its client for this long is closed
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub rtsp_timeout: TimeSpan,
    /// Do not cache the GOP: a joining watcher waits for the next keyframe
    #[arg(long)]
    pub no_gop_cache: bool,
    /// Most open connections (every front together); more are closed at once, HTTP ones with a
    /// 503
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// Per-watcher queue bound in bytes (e.g. 8MiB)
    #[arg(long, value_name = "SIZE", default_value = "8MiB")]
    pub queue_bytes: ByteSize,
    /// Per-watcher queue bound in time (age of the oldest queued chunk)
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub queue_time: TimeSpan,
    /// Disconnect a watcher that has been behind (skipping) for this long; paced broadcasts: one
    /// that held the broadcaster back without writing for this long
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub max_behind: TimeSpan,
    /// Delivery of content without a clock (unknown bytes, raw H.264): `pace` holds the
    /// broadcaster to its watchers so nothing is lost, as fstream does; `isolate` never holds it
    /// back (a watcher that cannot keep up skips to the next keyframe, or is disconnected)
    #[arg(long, value_enum, value_name = "MODE", default_value_t = UnclockedMode::Pace)]
    pub unclocked: UnclockedMode,
    /// GOP cache bound in bytes per channel
    #[arg(long, value_name = "SIZE", default_value = "32MiB")]
    pub cache_bytes: ByteSize,
    /// GOP cache bound in time per channel
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub cache_time: TimeSpan,
    /// Most watchers waiting for channels that are not live
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_waiting: usize,
    /// How long a watcher waits for a channel to go live
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub wait_timeout: TimeSpan,
    /// Log per-channel stats (info level, -v) this often
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub stats_interval: TimeSpan,
    /// Ask this http:// URL before a broadcast starts (a JSON POST, see HOOKS above): a 2xx
    /// answer allows; anything else, or no answer, refuses
    #[arg(long, value_name = "URL")]
    pub on_publish: Option<String>,
    /// Ask this http:// URL before a watcher or player joins a channel (as --on-publish)
    #[arg(long, value_name = "URL")]
    pub on_play: Option<String>,
    /// Tell this http:// URL when a broadcast ends (the answer changes nothing)
    #[arg(long, value_name = "URL")]
    pub on_unpublish: Option<String>,
    /// Tell this http:// URL when a watcher or player leaves (the answer changes nothing)
    #[arg(long, value_name = "URL")]
    pub on_stop: Option<String>,
    /// How long a hook has to answer; no answer in time refuses (--on-publish, --on-play)
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub hook_timeout: TimeSpan,
    /// Be an edge of the origin hub at this fstream address: a channel a watcher (any front)
    /// asks for that is not live here is pulled from the origin once, with that watcher's
    /// channel password, and serves every watcher here (see "Cascading" below)
    #[arg(long, value_name = "HOST:PORT")]
    pub origin: Option<String>,
    /// An edge stops pulling a channel this long after its last watcher here left
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub origin_idle: TimeSpan,
    /// Push every broadcast that starts here to the hub at this fstream address, as its user
    /// (password from --users) with its channel password; redialled while the broadcast lasts
    #[arg(long, value_name = "HOST:PORT")]
    pub push_to: Option<String>,
    /// Serve every H.264/H.265 channel as HLS on the --http address, at
    /// /<user>/<channel>/index.m3u8 (see HLS above). HLS requests do not ask --on-play
    #[arg(long, requires = "http", conflicts_with = "on_play")]
    pub hls: bool,
    /// What index.m3u8 serves: LL-HLS, or classic HLS in fMP4 or MPEG-TS; each is also at
    /// ll.m3u8, fmp4.m3u8 and ts.m3u8
    #[arg(long, value_enum, value_name = "VARIANT", default_value_t = HlsVariant::LowLatency)]
    pub hls_variant: HlsVariant,
    /// HLS segment duration in seconds (segments end at the first keyframe after it; a longer
    /// first GOP sets the target, up to 10 s)
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub hls_segment_time: f64,
    /// LL-HLS part duration in seconds, rounded to whole frames (0.2: PART-HOLD-BACK 0.6 s)
    #[arg(long, value_name = "SECONDS", default_value_t = 0.2)]
    pub hls_part_time: f64,
    /// Segments in an HLS playlist
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub hls_list_size: usize,
    /// Stop segmenting a channel's variant this long after its last HLS request
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub hls_idle_timeout: TimeSpan,
    /// How long the token in a password-protected channel's playlist URIs stays good
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub hls_token_ttl: TimeSpan,
}

/// `serve --hls-variant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HlsVariant {
    /// LL-HLS: fMP4 segments with parts (ll.m3u8)
    LowLatency,
    /// Classic HLS, fMP4 segments (fmp4.m3u8)
    Fmp4,
    /// Classic HLS, MPEG-TS segments (ts.m3u8)
    Ts,
}

/// `serve --unclocked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnclockedMode {
    /// Paced to the watchers: nothing is lost, a straggler is dropped
    Pace,
    /// Never held back: the real-time policy
    Isolate,
}

/// Where a password comes from: the option, its environment variable, or a file.
#[derive(Args, Debug, Clone)]
pub struct ChannelArgs {
    /// User name (the broadcaster's own, or the one to watch)
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// Channel name
    #[arg(long, short = 'c', value_name = "CHANNEL", default_value = "default")]
    pub channel: String,
    /// Channel password (none by default)
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "RIVER_CHANNEL_PASSWORD",
        hide_env_values = true
    )]
    pub channel_password: Option<String>,
    /// Read the channel password from the first line of this file
    #[arg(long, value_name = "FILE", conflicts_with = "channel_password")]
    pub channel_password_file: Option<PathBuf>,
}

/// Reconnect options.
#[derive(Args, Debug, Clone)]
pub struct RetryArgs {
    /// Reconnect after a failure or the end of the connection, with bounded exponential backoff
    #[arg(long)]
    pub retry: bool,
    /// Longest wait between reconnect attempts
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub retry_max_delay: TimeSpan,
    /// Give up after this many consecutive failed attempts (0 = never)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retry_limit: u32,
}

#[derive(Args, Debug, Clone)]
pub struct BroadcastArgs {
    /// Hub address, HOST:PORT
    #[arg(value_name = "ADDR")]
    pub addr: String,
    #[command(flatten)]
    pub chan: ChannelArgs,
    /// User password
    #[arg(
        long,
        short = 'p',
        value_name = "PASSWORD",
        env = "RIVER_USER_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Read the user password from the first line of this file
    #[arg(long, value_name = "FILE", conflicts_with = "password")]
    pub password_file: Option<PathBuf>,
    /// Send stdin in blocks of this many bytes (default: whatever each read gives, lowest delay)
    #[arg(long, value_name = "N")]
    pub bufsize: Option<usize>,
    #[command(flatten)]
    pub retry: RetryArgs,
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Hub address, HOST:PORT
    #[arg(value_name = "ADDR")]
    pub addr: String,
    #[command(flatten)]
    pub chan: ChannelArgs,
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `--rtmp-merge`: a duration as `TimeSpan` reads it, or 0 (no merging); at most a second (media
/// held longer would be late for players that buffer little).
fn merge_window(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    if ["0", "0ms", "0s"].contains(&t) {
        return Ok(std::time::Duration::ZERO);
    }
    let d = t.parse::<TimeSpan>()?.as_duration();
    if d > std::time::Duration::from_secs(1) {
        return Err(format!("{s:?} is more than 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let a = Relay::try_parse_from(["river-relay", "serve", "--listen", "127.0.0.1:0"]).unwrap();
        let RelayCmd::Serve(s) = a.cmd else { panic!() };
        assert_eq!(s.queue_bytes, ByteSize(8 << 20));
        let a = Relay::try_parse_from([
            "river-relay",
            "127.0.0.1:61920",
            "broadcast,user=fier,user-password=123",
        ])
        .unwrap();
        let RelayCmd::Fstream(v) = a.cmd else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        assert!("64KiB".parse::<ByteSize>().unwrap() == ByteSize(65536));
        assert!("0".parse::<ByteSize>().is_err());
        assert!("1x".parse::<ByteSize>().is_err());
        assert_eq!(s.rtmp_merge, std::time::Duration::from_millis(100));
        for (v, ms) in [("0", 0), ("0ms", 0), ("40ms", 40), ("1s", 1000)] {
            assert_eq!(
                merge_window(v),
                Ok(std::time::Duration::from_millis(ms)),
                "{v}"
            );
        }
        for v in ["1.5s", "-1", "x"] {
            assert!(merge_window(v).is_err(), "{v}");
        }
    }
}
