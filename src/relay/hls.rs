//! The hub's HLS (`serve --hls`), pure: one [`Session`] per channel and variant, made on the first
//! playlist request and dropped after `idle` without a request. A session is river-hls-seg's
//! pipeline with memory for files: the channel's bytes as broadcast ([`Demux`]: FLV, MPEG-TS or
//! Annex B H.264/H.265) → [`HlsOut`] (the same segmenter, playlist and fMP4 muxer) → segments,
//! parts and init segments in a map, and the playlist served by [`Live`] (blocking reload,
//! preload hints, delta updates, Cache-Control, parked requests that hold no thread).
//!
//! - Variants ([`Variant`]): LL-HLS (fMP4 with parts), classic fMP4 and classic MPEG-TS, at
//!   `ll.m3u8`, `fmp4.m3u8` and `ts.m3u8` under `/<user>/<channel>/`; `index.m3u8` is the hub's
//!   default variant. File names start with the variant and the session's run (its start time in
//!   Unix ms), so a name is never reused and every file is immutable.
//! - Bounded: files leave memory as they leave the playlist window (four target durations later,
//!   as river-hls-seg deletes them), and a session that holds more than [`MAX_SESSION_BYTES`]
//!   (a broadcast far above what a window should hold) stops with a log line.
//! - A playlist request that comes before the first segment waits for it, at most
//!   [`START_WAIT`], then gets 503.
//!
//! Sockets, the channel's queue and the password checks are the hub's (`front/hls.rs`); this
//! module gets bytes, requests and the time.

pub mod token;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::Diag;
use crate::format::hls::{PlaylistKind, SegmenterConfig};
use crate::http::hls::{cache_control, Cached, Live};
use crate::http::server::{Body, Reply, ReqId, Request, Response};
use crate::media::{MediaEvent, CLOCK_HZ};
use crate::pipeline::{Demux, HlsConfig, HlsOut, Names, Notice, Output, SegmentType, Wall};

/// A session holding more than this (segments, parts, init segments) stops.
pub const MAX_SESSION_BYTES: usize = 256 << 20;
/// How long a playlist request waits for the first segment.
pub const START_WAIT: Duration = Duration::from_secs(15);
/// A broadcast with no H.264, H.265 or AAC frame in this many bytes is not segmented.
const MAX_DETECT: u64 = 1 << 20;

/// How a channel is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// LL-HLS: fMP4 segments with parts, preload hints, blocking reload, delta updates.
    LowLatency,
    /// Classic HLS in fMP4 (init segment and .m4s).
    Fmp4,
    /// Classic HLS in MPEG-TS.
    Ts,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::LowLatency, Variant::Fmp4, Variant::Ts];

    /// Its name in file names, playlists' names and `/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::LowLatency => "ll",
            Variant::Fmp4 => "fmp4",
            Variant::Ts => "ts",
        }
    }

    /// Its playlist's file name.
    pub fn playlist(self) -> &'static str {
        match self {
            Variant::LowLatency => "ll.m3u8",
            Variant::Fmp4 => "fmp4.m3u8",
            Variant::Ts => "ts.m3u8",
        }
    }

    fn from_name(s: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// The hub's HLS settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// What `index.m3u8` serves.
    pub default: Variant,
    pub segment_secs: f64,
    pub part_secs: f64,
    /// Segments in the playlist window.
    pub window: usize,
    /// A session without a request for this long is dropped.
    pub idle: Duration,
    /// How long a token proves the channel password.
    pub token_ttl: Duration,
}

/// What a request under `/<user>/<channel>/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A variant's playlist (`index.m3u8` is the default variant's).
    Playlist(Variant),
    /// A file of a session: its variant and run, and the name as the session knows it.
    Media { variant: Variant, run: u64 },
}

impl Wanted {
    /// What `file` (one path segment, name rule checked) names; `None`: nothing HLS serves.
    pub fn of(file: &str, default: Variant) -> Option<Wanted> {
        if file == "index.m3u8" {
            return Some(Wanted::Playlist(default));
        }
        if let Some(v) = Variant::ALL.into_iter().find(|v| v.playlist() == file) {
            return Some(Wanted::Playlist(v));
        }
        let (v, rest) = file.split_once('-')?;
        let variant = Variant::from_name(v)?;
        let (run, _) = rest.split_once('-')?;
        let run = run
            .parse()
            .ok()
            .filter(|_| run.bytes().all(|b| b.is_ascii_digit()))?;
        Some(Wanted::Media { variant, run })
    }
}

/// Segment names: `VARIANT-RUN-N.ext`.
struct Seq(String);

impl Names for Seq {
    fn segment(&mut self, msn: u64, _date_ms: i64, ext: &str) -> Result<String, String> {
        Ok(format!("{}{msn}.{ext}", self.0))
    }
}

/// A session's figures.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    pub bytes_in: u64,
    /// Media frames read from the broadcast.
    pub frames: u64,
    pub segments: u64,
    pub parts: u64,
    /// Bytes of files held now.
    pub memory_bytes: usize,
}

/// One channel in one variant; see the module docs.
pub struct Session {
    pub variant: Variant,
    /// The start time in Unix ms: part of every file name.
    pub run: u64,
    /// What it is called in log lines (`user/channel (ll)`).
    label: String,
    demux: Demux,
    out: HlsOut,
    outputs: Vec<Output>,
    events: Vec<MediaEvent>,
    diags: Vec<Diag>,
    live: Arc<Live>,
    files: HashMap<String, Bytes>,
    /// The segment being made: its name and bytes so far.
    open: Option<(String, Vec<u8>)>,
    /// Playlist requests before the first playlist: the request and query, and until when.
    starting: Vec<(Request, String, Instant)>,
    /// The broadcast ended (or the channel let the session go): the playlist has EXT-X-ENDLIST.
    pub ended: bool,
    /// Why it stopped, when it failed.
    pub failed: Option<String>,
    pub since: Instant,
    pub last_request: Instant,
    pub stats: SessionStats,
    forced_logged: bool,
}

fn text(status: u16, msg: &str) -> Response {
    Response::text(
        status,
        format!(
            "{status} {}: {msg}\n",
            crate::http::response::reason(status)
        ),
    )
    .field("Cache-Control", "no-cache")
}

fn media(name: &str, data: Bytes) -> Response {
    let ct = if name.ends_with(".ts") {
        "video/mp2t"
    } else if name.ends_with(".mp4") {
        "video/mp4"
    } else {
        "video/iso.segment"
    };
    let mut r = Response::new(200, Body::Bytes(data))
        .field("Content-Type", ct)
        .field("Cache-Control", cache_control(Cached::Media));
    r.ranges = true;
    r
}

impl Session {
    /// A session of `label`'s broadcast in `variant`, started at `run` (Unix ms, unique per hub).
    pub fn new(label: &str, variant: Variant, cfg: &Config, run: u64, now: Instant) -> Session {
        let prefix = format!("{}-{run}-", variant.name());
        let hls = HlsConfig {
            segment_type: if variant == Variant::Ts {
                SegmentType::Ts
            } else {
                SegmentType::Fmp4
            },
            segmenter: SegmenterConfig {
                target: (cfg.segment_secs * CLOCK_HZ as f64) as i64,
                align_ms: None,
                part: (variant == Variant::LowLatency)
                    .then_some((cfg.part_secs * CLOCK_HZ as f64) as i64),
            },
            kind: PlaylistKind::Live { window: cfg.window },
            part_prefix: format!("{prefix}p"),
        };
        Session {
            variant,
            run,
            label: format!("{label} ({})", variant.name()),
            // What the broadcast carries besides H.264/H.265 and AAC is left out, with a log line.
            demux: Demux::new(None, None, 10.0).dropping_unsupported(),
            out: HlsOut::new(hls, Box::new(Seq(prefix))),
            outputs: Vec::new(),
            events: Vec::new(),
            diags: Vec::new(),
            live: Live::new(variant.playlist(), run),
            files: HashMap::new(),
            open: None,
            starting: Vec::new(),
            ended: false,
            failed: None,
            since: now,
            last_request: now,
            stats: SessionStats::default(),
            forced_logged: false,
        }
    }

    /// Requests waiting for an answer (blocking reloads, preload hints, the first playlist).
    pub fn parked(&self) -> usize {
        self.live.parked() + self.starting.len()
    }

    /// No request for `idle` and none waiting: the session may go.
    pub fn idle(&self, now: Instant, idle: Duration) -> bool {
        self.parked() == 0 && now.saturating_duration_since(self.last_request) >= idle
    }

    /// A GET or HEAD of `file` (a playlist name as [`Variant::playlist`], or a file the
    /// playlist lists) with `query` (as sent, without `?`).
    pub fn request(&mut self, req: &Request, file: &str, query: &str, now: Instant) -> Reply {
        self.last_request = now;
        let playlist = file == self.variant.playlist();
        if playlist && !self.live.published() {
            if let Some(why) = &self.failed {
                return Reply::Now(text(503, why));
            }
            if self.ended {
                return Reply::Now(text(404, "the broadcast ended before its first segment"));
            }
            let again = Request {
                id: req.id,
                head: req.head.clone(),
                peer: req.peer,
            };
            self.starting
                .push((again, query.to_string(), now + START_WAIT));
            return Reply::Park;
        }
        if let Some(r) = self.live.request(req, Path::new(file), query, now) {
            return r;
        }
        match self.files.get(file) {
            Some(b) => Reply::Now(media(file, b.clone())),
            None => Reply::Now(text(404, "no such file (it left the playlist)")),
        }
    }

    /// The request's connection is gone.
    pub fn closed(&mut self, id: ReqId) {
        self.live.closed(id);
        self.starting.retain(|(r, _, _)| r.id != id);
    }

    /// 503 for the requests that waited long enough: blocking reloads after three target
    /// durations, first playlists after [`START_WAIT`].
    pub fn expire(&mut self, now: Instant) -> Vec<(ReqId, Response)> {
        let mut out = self.live.expire(0, now);
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.starting)
            .into_iter()
            .partition(|(_, _, t)| *t <= now);
        self.starting = keep;
        for (r, _, _) in late {
            let why = format!(
                "no segment within {} s (is the channel H.264 or H.265?)",
                START_WAIT.as_secs()
            );
            out.push((r.id, text(503, &why).field("Retry-After", "1")));
        }
        out
    }

    /// Bytes of the broadcast; returns the answers for parked requests that are now ready.
    pub fn push(&mut self, data: &[u8], wall: Wall, now: Instant) -> Vec<(ReqId, Response)> {
        if self.failed.is_some() || self.ended {
            return Vec::new();
        }
        self.stats.bytes_in += data.len() as u64;
        let res = self.demux.push(data, &mut self.events, &mut self.diags);
        self.log_diags();
        if let Err(e) = res {
            return self.fail(format!("the broadcast cannot be read: {e}"), now);
        }
        self.stats.frames += self
            .events
            .iter()
            .filter(|e| matches!(e, MediaEvent::Frame(_)))
            .count() as u64;
        if self.stats.frames == 0 && self.stats.bytes_in > MAX_DETECT {
            let why = format!("no H.264, H.265 or AAC frame in the first {MAX_DETECT} bytes");
            return self.fail(why, now);
        }
        self.package(wall, now)
    }

    /// The broadcast ended: the segment in hand is finished and the playlist ends.
    pub fn finish(&mut self, wall: Wall, now: Instant) -> Vec<(ReqId, Response)> {
        if self.failed.is_some() || self.ended {
            return Vec::new();
        }
        let res = self.demux.finish(&mut self.events, &mut self.diags);
        self.log_diags();
        let mut answers = match res {
            Ok(()) => self.package(wall, now),
            Err(e) => return self.fail(format!("the broadcast cannot be read: {e}"), now),
        };
        self.out.finish(&mut self.outputs);
        answers.extend(self.apply(now));
        self.ended = true;
        answers.extend(self.answer_starting(now));
        answers
    }

    fn log_diags(&mut self) {
        for d in self.diags.drain(..) {
            log::warn!("HLS of {}: {d}", self.label);
        }
    }

    fn package(&mut self, wall: Wall, now: Instant) -> Vec<(ReqId, Response)> {
        let mut answers = Vec::new();
        for ev in std::mem::take(&mut self.events) {
            if let Err(e) = self.out.event(&ev, wall, &mut self.outputs) {
                answers.extend(self.fail(e.to_string(), now));
                return answers;
            }
            answers.extend(self.apply(now));
        }
        self.out.flush(&mut self.outputs);
        answers.extend(self.apply(now));
        answers
    }

    /// Stops segmenting: what waits gets 503 with `why`.
    fn fail(&mut self, why: String, now: Instant) -> Vec<(ReqId, Response)> {
        log::warn!("HLS of {}: stopped: {why}", self.label);
        self.failed = Some(why);
        self.files.clear();
        self.open = None;
        self.stats.memory_bytes = 0;
        self.answer_starting(now)
    }

    /// The requests waiting for the first playlist, now that there is one (or there will be none).
    fn answer_starting(&mut self, now: Instant) -> Vec<(ReqId, Response)> {
        let mut answers = Vec::new();
        for (r, query, _) in std::mem::take(&mut self.starting) {
            let reply = if let Some(why) = &self.failed {
                Reply::Now(text(503, why))
            } else {
                let file = Path::new(self.variant.playlist());
                self.live
                    .request(&r, file, &query, now)
                    .unwrap_or_else(|| Reply::Now(text(404, "no playlist")))
            };
            match reply {
                Reply::Now(resp) => answers.push((r.id, resp)),
                // Now the Live's, or (before any playlist) still ours.
                Reply::Park if !self.live.published() && !self.ended => {
                    self.starting.push((r, query, now + START_WAIT))
                }
                Reply::Park => {}
                Reply::Stream(resp) => answers.push((r.id, resp)),
            }
        }
        answers
    }

    /// Carries out what the packager said: files into memory, the playlist and parts to the
    /// [`Live`]; returns the answers that became ready.
    fn apply(&mut self, now: Instant) -> Vec<(ReqId, Response)> {
        let mut answers = Vec::new();
        for o in std::mem::take(&mut self.outputs) {
            match o {
                Output::Init { uri, data } => {
                    self.files.insert(uri, data);
                }
                Output::Open { uri } => self.open = Some((uri, Vec::with_capacity(1 << 20))),
                Output::Data(b) => {
                    if let Some((_, v)) = &mut self.open {
                        v.extend_from_slice(&b);
                    }
                }
                Output::Part { uri, data } => {
                    self.stats.parts += 1;
                    self.files.insert(uri.clone(), data.clone());
                    answers.extend(self.live.part_answers(&uri, data));
                }
                Output::Close { .. } => {
                    if let Some((uri, v)) = self.open.take() {
                        self.stats.segments += 1;
                        self.files.insert(uri, Bytes::from(v));
                    }
                }
                Output::Playlist { .. } => {
                    let first = !self.live.published();
                    answers.extend(self.live.publish_answers(self.out.playlist()));
                    if first {
                        answers.extend(self.answer_starting(now));
                    }
                }
                Output::Remove { uri } => {
                    self.files.remove(&uri);
                }
                Output::Notice(n) => self.notice(n),
            }
        }
        let held = self.files.values().map(Bytes::len).sum::<usize>()
            + self.open.as_ref().map_or(0, |(_, v)| v.len());
        self.stats.memory_bytes = held;
        if held > MAX_SESSION_BYTES {
            let why = format!(
                "{held} bytes held, more than {MAX_SESSION_BYTES}: the broadcast's bit rate is too high for the window"
            );
            answers.extend(self.fail(why, now));
        }
        answers
    }

    fn notice(&mut self, n: Notice) {
        let l = &self.label;
        match n {
            Notice::Target { secs, part } => match part {
                Some(p) => log::info!("HLS of {l}: EXT-X-TARGETDURATION {secs} s, PART-TARGET {p:.3} s"),
                None => log::info!("HLS of {l}: EXT-X-TARGETDURATION {secs} s"),
            },
            Notice::LongGop { secs } => log::warn!(
                "HLS of {l}: the GOP ({secs:.2} s) is longer than the segment time: segments follow the keyframes, up to the target duration"
            ),
            Notice::CutWithoutKeyframe { uri, count } => {
                if !self.forced_logged {
                    self.forced_logged = true;
                    log::warn!("HLS of {l}: {uri} starts without a keyframe: its GOP would have run past the target duration (logged once)");
                } else {
                    log::debug!("HLS of {l}: {uri} starts without a keyframe ({count} so far)");
                }
            }
            Notice::NewInit { uri } => log::info!("HLS of {l}: new parameters: init segment {uri}"),
        }
    }
}

/// One session's figures.
#[derive(Debug, Clone, Default)]
pub struct VariantStats {
    /// [`Variant::name`].
    pub variant: &'static str,
    /// It follows the broadcast now (not ended, not failed, not let go).
    pub segmenting: bool,
    pub ended: bool,
    pub failed: Option<String>,
    pub since_secs: f64,
    /// Seconds since its last request.
    pub idle_secs: f64,
    /// Requests waiting now (blocking reloads, preload hints, first playlists).
    pub parked: usize,
    pub stats: SessionStats,
}

/// One channel's HLS for `/stats` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct HlsStats {
    pub user: String,
    pub channel: String,
    pub sessions: Vec<VariantStats>,
    /// Requests answered or parked: playlists, and everything else (segments, parts, init
    /// segments); refused ones (403, 404 for a channel not live, 415).
    pub playlists: u64,
    pub media: u64,
    pub refused: u64,
    /// Body bytes of the responses sent.
    pub bytes_out: u64,
}

impl HlsStats {
    /// The `"hls"` array of `/stats`.
    pub fn json(all: &[HlsStats], o: &mut String) {
        use super::stats::json_str;
        use std::fmt::Write;
        o.push('[');
        for (i, c) in all.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"user\":");
            json_str(&c.user, o);
            o.push_str(",\"channel\":");
            json_str(&c.channel, o);
            let _ = write!(
                o,
                ",\"playlist_requests\":{},\"media_requests\":{},\"refused\":{},\"bytes_out\":{},\"sessions\":[",
                c.playlists, c.media, c.refused, c.bytes_out
            );
            for (j, s) in c.sessions.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                let _ = write!(
                    o,
                    "{{\"variant\":\"{}\",\"segmenting\":{},\"ended\":{},\"failed\":",
                    s.variant, s.segmenting, s.ended
                );
                match &s.failed {
                    Some(f) => json_str(f, o),
                    None => o.push_str("null"),
                }
                let _ = write!(
                    o,
                    ",\"since_secs\":{:.3},\"idle_secs\":{:.3},\"parked\":{},\"bytes_in\":{},\"segments\":{},\"parts\":{},\"memory_bytes\":{}}}",
                    s.since_secs,
                    s.idle_secs,
                    s.parked,
                    s.stats.bytes_in,
                    s.stats.segments,
                    s.stats.parts,
                    s.stats.memory_bytes
                );
            }
            o.push_str("]}");
        }
        o.push(']');
    }

    /// The `river_relay_hls_*` series of `/metrics`.
    pub fn prometheus(all: &[HlsStats], o: &mut String) {
        use std::fmt::Write;
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let ch =
            |c: &HlsStats| format!("user=\"{}\",channel=\"{}\"", esc(&c.user), esc(&c.channel));
        let name = "river_relay_hls_sessions";
        let _ = writeln!(
            o,
            "# HELP {name} HLS sessions kept, by variant (segmenting: it follows the broadcast now)."
        );
        let _ = writeln!(o, "# TYPE {name} gauge");
        for c in all {
            for s in &c.sessions {
                let _ = writeln!(
                    o,
                    "{name}{{{},variant=\"{}\",segmenting=\"{}\"}} 1",
                    ch(c),
                    s.variant,
                    s.segmenting
                );
            }
        }
        type Per = (
            &'static str,
            &'static str,
            &'static str,
            fn(&HlsStats) -> u64,
        );
        let per: [Per; 5] = [
            (
                "river_relay_hls_playlist_requests_total",
                "counter",
                "HLS playlist requests answered or parked.",
                |c| c.playlists,
            ),
            (
                "river_relay_hls_media_requests_total",
                "counter",
                "HLS segment, part and init segment requests answered or parked.",
                |c| c.media,
            ),
            (
                "river_relay_hls_refused_total",
                "counter",
                "HLS requests refused (password, token, channel not live).",
                |c| c.refused,
            ),
            (
                "river_relay_hls_bytes_out_total",
                "counter",
                "Body bytes of HLS responses.",
                |c| c.bytes_out,
            ),
            (
                "river_relay_hls_parked_requests",
                "gauge",
                "HLS requests waiting now (blocking reloads, preload hints, first playlists).",
                |c| c.sessions.iter().map(|s| s.parked as u64).sum(),
            ),
        ];
        for (name, ty, help, f) in per {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {ty}");
            for c in all {
                let _ = writeln!(o, "{name}{{{}}} {}", ch(c), f(c));
            }
        }
        let name = "river_relay_hls_memory_bytes";
        let _ = writeln!(
            o,
            "# HELP {name} Bytes of segments, parts and init segments held."
        );
        let _ = writeln!(o, "# TYPE {name} gauge");
        for c in all {
            for s in &c.sessions {
                let _ = writeln!(
                    o,
                    "{name}{{{},variant=\"{}\"}} {}",
                    ch(c),
                    s.variant,
                    s.stats.memory_bytes
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
