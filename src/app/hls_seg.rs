//! river-hls-seg: stdin → demux → [`HlsOut`] → files (and, with `--serve`, the playlist from
//! memory with LL-HLS blocking requests).

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;

use super::hls_files::{remove_stale_temporaries, Files, Op, Pending};
use super::stats::Stats;
use super::{pump, EventSink};
use crate::cli::{self, HlsSeg};
use crate::format::hls::archive::{self, Archive};
use crate::format::hls::retention::Limits;
use crate::format::hls::{strftime, PlaylistKind, SegmenterConfig};
use crate::http::hls::Live;
use crate::http::{self, ServeOptions, ServerHandle};
use crate::media::{MediaEvent, CLOCK_HZ};
use crate::pipeline::progress::Meter;
use crate::pipeline::{HlsConfig, HlsOut, Names, Notice, Output, Resume, SegmentType, Wall};
use crate::stdio::{stop_signal, UsageError};

/// At most this many --on-segment commands run at once; past that a segment's command is skipped
/// with a warning rather than piling up processes.
const MAX_HOOKS_RUNNING: usize = 32;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The local time zone's offset from UTC in force at `unix_ms`, in milliseconds (TZ, else
/// /etc/localtime): read here, at the edge, and passed into the pure naming and segmenting.
fn local_offset_ms(unix_ms: i64) -> i64 {
    // SAFETY: localtime_r writes into the tm we own; time_t is a plain integer.
    unsafe {
        let t: libc::time_t = unix_ms.div_euclid(1000) as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff * 1000
    }
}

/// `dir/.name.tmp` beside `dir/name`.
/// A relative segment path from a strftime pattern must stay inside the directory.
fn check_relative(uri: &str) -> Result<(), String> {
    let p = Path::new(uri);
    if uri.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!(
            "segment name {uri:?} must be a relative path inside --dir without '..'"
        ));
    }
    Ok(())
}

/// Segment names on disk: `NAME-RUN-N.ext` live (RUN, the start time, keeps names unique across
/// restarts), the `--segment-name` pattern in DVR mode, made unique when a second segment falls in
/// the same second or the name is taken (on disk, or handed out for a segment still being
/// written).
struct FileNames {
    dir: PathBuf,
    dvr: Option<String>,
    utc: bool,
    prefix: String,
    last: String,
    pending: Pending,
}

impl Names for FileNames {
    fn segment(&mut self, msn: u64, date_ms: i64, ext: &str) -> Result<String, String> {
        let Some(pattern) = &self.dvr else {
            return Ok(format!("{}{msn}.{ext}", self.prefix));
        };
        let offset = if self.utc {
            0
        } else {
            local_offset_ms(date_ms)
        };
        let name = strftime(pattern, date_ms, offset);
        check_relative(&name)?;
        let taken = |n: &str| self.pending.contains(n) || self.dir.join(n).exists();
        let uri = if name == self.last || taken(&name) {
            // Two segments in the same second (or a restart): keep both.
            let (stem, ext) = match name.rsplit_once('.') {
                Some((s, e)) if !e.contains('/') => (s.to_string(), format!(".{e}")),
                _ => (name.clone(), String::new()),
            };
            let mut n = 1;
            loop {
                let cand = format!("{stem}-{n}{ext}");
                if !taken(&cand) && cand != self.last {
                    break cand;
                }
                n += 1;
            }
        } else {
            name
        };
        self.pending.add(&uri);
        self.last = uri.clone();
        Ok(uri)
    }
}

/// Reads back the DVR playlist an earlier run left at `path` (None when there is none), and the
/// sizes of the files it names that exist.
fn read_archive(dir: &Path, path: &Path) -> anyhow::Result<Option<Resume>> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let restart = "move it away to start a new archive";
    if len > archive::MAX_PLAYLIST as u64 {
        anyhow::bail!(
            "{}: {len} bytes, more than the {} a playlist may have; {restart}",
            path.display(),
            archive::MAX_PLAYLIST
        );
    }
    let text = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8(text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 at byte offset {}; {restart}",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let archive =
        Archive::parse(&text).map_err(|d| anyhow::anyhow!("{}: {d}; {restart}", path.display()))?;
    let mut sizes = std::collections::HashMap::new();
    let uris = archive
        .segments
        .iter()
        .flat_map(|s| std::iter::once(s.uri.as_str()).chain(s.map.as_deref()))
        .chain(archive.parts.iter().map(String::as_str));
    for uri in uris {
        if sizes.contains_key(uri) {
            continue;
        }
        if let Ok(m) = fs::metadata(dir.join(uri)) {
            if m.is_file() {
                sizes.insert(uri.to_string(), m.len());
            }
        }
    }
    Ok(Some(Resume { archive, sizes }))
}

/// Removes what an earlier live run with the same NAME left in DIR: its segments, parts and init
/// segments (`NAME-RUN-…` with another RUN), which no playlist lists any more.
fn clean_earlier_runs(dir: &Path, name: &str, run: u64) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let prefix = format!("{name}-");
    for e in rd.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let Some((r, tail)) = rest.split_once('-') else {
            continue;
        };
        let ours = !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) && r != run.to_string();
        let kind = tail.ends_with(".ts") || tail.ends_with(".m4s") || tail.ends_with("-init.mp4");
        if ours && kind && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// What `--stats` and `--metrics` show of the writer, besides the frames the pump counts.
#[derive(Default)]
struct Counts {
    /// Bytes of files written (segments, parts, init segments, playlists).
    written: u64,
    parts: u64,
    removed: u64,
}

struct HlsWriter {
    args: HlsSeg,
    out: HlsOut,
    files: Files,
    outputs: Vec<Output>,
    playlist_path: PathBuf,
    /// The playlist's name in DIR.
    playlist_uri: String,
    live: Option<Arc<Live>>,
    /// The open segment's bytes so far, for [`Live::file`] (only when serving).
    segment: Vec<u8>,
    server: Option<ServerHandle>,
    meter: Arc<Mutex<Meter>>,
    counts: Counts,
    first_dts: Option<i64>,
    limit: Option<i64>,
    children: Vec<Child>,
    duration_reached: bool,
    forced_logged: bool,
}

fn segment_type(args: &HlsSeg) -> anyhow::Result<SegmentType> {
    Ok(match (args.segment_type, args.low_latency) {
        (Some(cli::SegmentType::Ts), true) => {
            return Err(UsageError(
                "--low-latency needs --segment-type fmp4 (LL-HLS parts are fMP4)".into(),
            )
            .into())
        }
        (Some(cli::SegmentType::Ts), false) | (None, false) => SegmentType::Ts,
        (Some(cli::SegmentType::Fmp4), _) | (None, true) => SegmentType::Fmp4,
    })
}

impl HlsWriter {
    fn new(args: HlsSeg, run: u64) -> anyhow::Result<Self> {
        if !(args.segment_time > 0.0 && args.segment_time <= 86_400.0) {
            return Err(UsageError(format!(
                "--segment-time {} out of range (0, 86400]",
                args.segment_time
            ))
            .into());
        }
        if args.list_size == 0 {
            return Err(UsageError("--list-size must be at least 1".into()).into());
        }
        if args.name.is_empty() || args.name.contains('/') || args.name.starts_with('.') {
            return Err(
                UsageError(format!("--name {:?} must be a plain file name", args.name)).into(),
            );
        }
        let kind = segment_type(&args)?;
        if args.low_latency && !(args.part_time >= 0.02 && args.part_time <= args.segment_time) {
            return Err(UsageError(format!(
                "--part-time {} out of range [0.02, --segment-time]",
                args.part_time
            ))
            .into());
        }
        let ext = kind.extension();
        let pattern = args
            .segment_name
            .clone()
            .unwrap_or_else(|| format!("%Y%m%d-%H%M%S.{ext}"));
        if args.dvr && !pattern.ends_with(&format!(".{ext}")) {
            return Err(UsageError(format!(
                "--segment-name {pattern:?} must end in .{ext} for {} segments",
                if kind == SegmentType::Ts {
                    "MPEG-TS"
                } else {
                    "fMP4"
                }
            ))
            .into());
        }
        if args.dvr {
            let example = strftime(&pattern, now_ms(), 0);
            check_relative(&example).map_err(UsageError)?;
        }
        fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
        let align_ms = args
            .align
            .map(|a| a.ticks / (CLOCK_HZ / 1000))
            .filter(|&a| a > 0);
        if align_ms.is_some() && args.segment_time != 2.0 {
            log::warn!("--align decides the cuts; --segment-time is not used");
        }
        let limits = Limits {
            keep_ms: args.keep.map(|k| k.ticks / (CLOCK_HZ / 1000)),
            max_bytes: args.max_size.map(|m| m.0 as u64),
        };
        let playlist_kind = if args.dvr && limits.any() {
            PlaylistKind::Archive
        } else if args.dvr {
            PlaylistKind::Dvr
        } else {
            clean_earlier_runs(&args.dir, &args.name, run);
            PlaylistKind::Live {
                window: args.list_size,
            }
        };
        let prefix = format!("{}-{run}-", args.name);
        let cfg = HlsConfig {
            segment_type: kind,
            segmenter: SegmenterConfig {
                target: (args.segment_time * CLOCK_HZ as f64) as i64,
                align_ms,
                part: args
                    .low_latency
                    .then_some((args.part_time * CLOCK_HZ as f64) as i64),
            },
            kind: playlist_kind,
            part_prefix: format!("{prefix}part"),
        };
        let stale = remove_stale_temporaries(&args.dir);
        if stale > 0 {
            log::warn!(
                "removed {stale} temporary files an earlier run left in {} (it was killed mid-write)",
                args.dir.display()
            );
        }
        let pending = Pending::default();
        let files = Files::start(args.dir.clone(), args.dvr, pending.clone())?;
        let names = FileNames {
            dir: args.dir.clone(),
            dvr: args.dvr.then_some(pattern),
            utc: args.utc,
            prefix,
            last: String::new(),
            pending: pending.clone(),
        };
        let playlist_uri = format!("{}.m3u8", args.name);
        let playlist_path = args.dir.join(&playlist_uri);
        let mut out = HlsOut::new(cfg, Box::new(names));
        if limits.any() {
            out.set_retention(limits);
        }
        Ok(HlsWriter {
            out,
            files,
            outputs: Vec::new(),
            playlist_path,
            playlist_uri,
            live: None,
            segment: Vec::new(),
            server: None,
            meter: Stats::off().meter,
            counts: Counts::default(),
            first_dts: None,
            limit: args.duration.map(|d| d.ticks),
            children: Vec::new(),
            duration_reached: false,
            forced_logged: false,
            args,
        })
    }

    fn wall(&self) -> Wall {
        let unix_ms = now_ms();
        Wall {
            unix_ms,
            zone_offset_ms: if self.args.utc {
                0
            } else {
                local_offset_ms(unix_ms)
            },
        }
    }

    /// DVR: picks up the archive an earlier run left in DIR (its playlist, and what of it is
    /// still on disk), applying retention to it.
    fn resume(&mut self) -> anyhow::Result<()> {
        if !self.args.dvr {
            return Ok(());
        }
        let Some(r) = read_archive(&self.args.dir, &self.playlist_path)? else {
            return Ok(());
        };
        let (listed, next) = (r.archive.segments.len(), r.archive.next_msn());
        let missing = self
            .out
            .resume(r, now_ms(), &mut self.outputs)
            .with_context(|| format!("{}", self.playlist_path.display()))?;
        if missing > 0 {
            log::warn!(
                "{}: {missing} of its {listed} segments left out: a file they need is missing",
                self.playlist_path.display()
            );
        }
        self.apply()?;
        let pl = self.out.playlist();
        let secs: f64 = pl.segments().map(|s| s.duration).sum();
        log::info!(
            "picked up {} segments ({secs:.1} s) of {}; the next is #{next}",
            pl.segments().count(),
            self.playlist_path.display()
        );
        Ok(())
    }

    /// Carries out what the packager said, in order. When serving, the live edge goes first:
    /// parts, whole segments and init segments, and the playlist reach [`Live`] from memory
    /// before any file is written, so a slow disk never delays an HTTP client (a segment close's
    /// write and rename delayed a blocked playlist request by 110 ms at a load average of 15).
    /// The playlist is published once, at the last [`Output::Playlist`]: it is the packager's
    /// state after the whole batch, so an earlier point (a part's, before the segment it ends is
    /// stored) could name a file not there yet.
    fn apply(&mut self) -> anyhow::Result<()> {
        if self.outputs.is_empty() {
            return Ok(());
        }
        self.apply_outputs()
    }

    fn apply_outputs(&mut self) -> anyhow::Result<()> {
        let c = &mut self.counts;
        for o in &self.outputs {
            match o {
                Output::Init { data, .. } | Output::Part { data, .. } | Output::Data(data) => {
                    c.written += data.len() as u64
                }
                Output::Remove { .. } => c.removed += 1,
                _ => {}
            }
            c.parts += matches!(o, Output::Part { .. }) as u64;
        }
        let outputs = std::mem::take(&mut self.outputs);
        let last = outputs
            .iter()
            .rposition(|o| matches!(o, Output::Playlist { .. }));
        let segment = outputs
            .iter()
            .any(|o| matches!(o, Output::Playlist { segment: true }));
        if let Some(l) = self.live.clone() {
            for (i, o) in outputs.iter().enumerate() {
                match o {
                    Output::Init { uri, data } => l.file(uri, data.clone()),
                    Output::Open { .. } => self.segment.clear(),
                    Output::Data(b) => self.segment.extend_from_slice(b),
                    Output::Part { uri, data } => {
                        log::debug!("part {uri} ({} bytes)", data.len());
                        l.part(uri, data.clone());
                    }
                    Output::Close { uri, .. } => {
                        l.file(uri, Bytes::from(std::mem::take(&mut self.segment)))
                    }
                    Output::Playlist { .. } if Some(i) == last => l.publish(self.out.playlist()),
                    Output::Playlist { .. } | Output::Remove { .. } | Output::Notice(_) => {}
                }
            }
        }
        for (i, o) in outputs.into_iter().enumerate() {
            let op = match o {
                Output::Playlist { .. } if Some(i) != last => continue,
                Output::Init { uri, data } => Op::Put {
                    uri,
                    data,
                    sync: true,
                },
                Output::Open { uri } => Op::Open { uri },
                Output::Data(b) => Op::Append(b),
                // Parts are for the live edge: no fsync, even in DVR mode (the segment has the
                // same bytes).
                Output::Part { uri, data } => Op::Put {
                    uri,
                    data,
                    sync: false,
                },
                Output::Close { uri, duration } => Op::Close { uri, duration },
                Output::Playlist { .. } => {
                    // DVR: the file (large, fsynced) follows the segments; live: every change.
                    if !segment && self.args.dvr {
                        continue;
                    }
                    let text = self.out.playlist().render(false);
                    self.counts.written += text.len() as u64;
                    Op::Put {
                        uri: self.playlist_uri.clone(),
                        data: Bytes::from(text),
                        sync: true,
                    }
                }
                Output::Remove { uri } => Op::Remove { uri },
                Output::Notice(n) => {
                    self.notice(n);
                    continue;
                }
            };
            self.files.send(op)?;
        }
        self.segments_published();
        for b in self.files.take_spare() {
            self.out.recycle(b);
        }
        Ok(())
    }

    /// Logs the segments the file writer has published and runs their --on-segment commands.
    fn segments_published(&mut self) {
        for c in self.files.take_closed() {
            log::info!("segment {} ({:.3} s)", c.uri, c.duration);
            self.run_hook(&c.path, &c.uri, c.duration);
        }
    }

    fn notice(&mut self, n: Notice) {
        match n {
            Notice::Target { secs, part } => match part {
                Some(p) => log::info!("EXT-X-TARGETDURATION {secs} s, PART-TARGET {p:.3} s"),
                None => log::info!("EXT-X-TARGETDURATION {secs} s"),
            },
            Notice::LongGop { secs } => log::warn!(
                "the GOP ({secs:.2} s) is longer than --segment-time ({} s): segments follow the keyframes, up to the target duration",
                self.args.segment_time
            ),
            Notice::CutWithoutKeyframe { uri, count } => {
                if !self.forced_logged {
                    self.forced_logged = true;
                    log::warn!(
                        "{uri} starts without a keyframe: its GOP would have run past the target duration (logged once; later ones at debug level)"
                    );
                } else {
                    log::debug!("{uri} starts without a keyframe ({count} so far)");
                }
            }
            Notice::NewInit { uri } => log::info!("new parameters: init segment {uri}"),
        }
    }

    fn run_hook(&mut self, path: &Path, uri: &str, duration: f64) {
        self.children
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
        let Some(cmd) = &self.args.on_segment else {
            return;
        };
        if self.children.len() >= MAX_HOOKS_RUNNING {
            log::warn!(
                "--on-segment: {} earlier commands still running; not running it for {uri}",
                self.children.len()
            );
            return;
        }
        let abs = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let playlist =
            fs::canonicalize(&self.playlist_path).unwrap_or_else(|_| self.playlist_path.clone());
        match Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .env("RIVER_SEGMENT", &abs)
            .env("RIVER_SEGMENT_URI", uri)
            .env("RIVER_SEGMENT_DURATION", format!("{duration:.6}"))
            .env("RIVER_PLAYLIST", &playlist)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => self.children.push(c),
            Err(e) => log::warn!("--on-segment: could not run {cmd:?}: {e}"),
        }
    }

    /// Ends the stream: the segment in hand is finished and the playlist ends.
    /// With `serving`, the files that left the playlist stay until the server stops: the ended
    /// stream stays on the air, and a cache in front may still hand out a playlist from before
    /// the end that names them.
    fn finish(&mut self, serving: bool) -> anyhow::Result<()> {
        if serving {
            self.out.end(&mut self.outputs);
        } else {
            self.out.finish(&mut self.outputs);
        }
        self.apply()?;
        self.files.sync()?;
        self.segments_published();
        // Give --on-segment commands a moment to finish; they are not killed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.children.is_empty() && Instant::now() < deadline {
            self.children
                .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl EventSink for HlsWriter {
    fn event(&mut self, ev: MediaEvent) -> anyhow::Result<bool> {
        if let MediaEvent::Frame(f) = &ev {
            let first = *self.first_dts.get_or_insert(f.dts);
            if let Some(limit) = self.limit {
                if f.dts - first >= limit {
                    log::info!("--duration reached");
                    self.duration_reached = true;
                    return Ok(false);
                }
            }
        }
        let wall = self.wall();
        self.out.event(&ev, wall, &mut self.outputs)?;
        self.apply()?;
        Ok(true)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush(&mut self.outputs);
        self.apply()?;
        self.publish_stats();
        Ok(())
    }
}

impl HlsWriter {
    /// Copies the writer's and the server's figures into the meter (`--stats`, `--metrics`).
    fn publish_stats(&self) {
        let c = &self.counts;
        let f = self.files.figures();
        let listed = self.out.playlist().segments().count();
        let retained = self.out.retained_bytes();
        let served = self.server.as_ref().map(ServerHandle::stats);
        let waits = self.live.as_ref().map(|l| l.stats());
        let mut m = self.meter.lock().unwrap_or_else(|e| e.into_inner());
        m.set(
            "segments_total",
            "Segments written and listed.",
            true,
            f.segments as f64,
        );
        if self.args.low_latency {
            m.set("parts_total", "LL-HLS parts written.", true, c.parts as f64);
        }
        m.set(
            "files_removed_total",
            "Segments, parts and init segments deleted after they left the playlist.",
            true,
            c.removed as f64,
        );
        m.set(
            "write_seconds_total",
            "Time spent writing, syncing, renaming and deleting files.",
            true,
            f.write_secs,
        );
        m.set(
            "segment_close_seconds",
            "How long finishing the latest segment took (flush, fsync with --dvr, rename).",
            false,
            f.close_secs,
        );
        m.set(
            "playlist_segments",
            "Segments the playlist lists.",
            false,
            listed as f64,
        );
        if let Some(b) = retained {
            m.set(
                "archive_bytes",
                "Bytes of the files kept on disk, counted against --max-size.",
                false,
                b as f64,
            );
        }
        if let Some(h) = served {
            m.set(
                "http_requests_total",
                "HTTP requests answered by --serve.",
                true,
                h.requests as f64,
            );
            m.set(
                "http_errors_total",
                "HTTP answers with a 4xx or 5xx status.",
                true,
                (h.client_errors + h.server_errors) as f64,
            );
            m.set(
                "http_response_bytes_total",
                "Body bytes of the HTTP responses written completely.",
                true,
                h.body_bytes as f64,
            );
        }
        if let Some(w) = waits.filter(|_| self.args.low_latency) {
            m.set(
                "blocking_requests_total",
                "LL-HLS requests that waited for a part or a playlist update.",
                true,
                w.parked as f64,
            );
            m.set(
                "blocking_timeouts_total",
                "LL-HLS requests answered 503 after waiting three target durations.",
                true,
                w.timed_out as f64,
            );
        }
    }
}

/// `river-hls-seg`.
pub fn hls_seg(args: HlsSeg) -> anyhow::Result<()> {
    let input = args.input.clone();
    let serve = args.serve.clone();
    let name = args.name.clone();
    let run = (now_ms() / 1000).max(0) as u64;
    let mut w = HlsWriter::new(args, run)?;
    log::info!("writing {}", w.playlist_path.display());
    w.server = match &serve {
        Some(addr) => {
            let live = Live::new(&format!("{name}.m3u8"), run);
            w.live = Some(Arc::clone(&live));
            let opts = ServeOptions {
                name,
                immutable_segments: true,
                live: Some(live),
                ..ServeOptions::default()
            };
            let h = http::serve(addr, w.args.dir.clone(), opts)
                .with_context(|| format!("--serve {addr}"))?;
            eprintln!("river-hls-seg: serving {}", h.playlist_url());
            Some(h)
        }
        None => None,
    };
    let mut stats = Stats::start(&w.args.stats, "hls_seg", "river-hls-seg")?;
    w.meter = Arc::clone(&stats.meter);
    w.resume()?;
    let res = pump(&input, &mut w, &mut stats, |w| w.counts.written);
    // Whatever happened to the input, what was received is finished and listed.
    w.flush()?;
    let serving = w.server.is_some();
    w.finish(serving)?;
    w.publish_stats();
    if serving {
        // The input ended on its own: keep the recording on the air until told to stop.
        if res.is_ok() && stop_signal().is_none() && !w.duration_reached {
            log::info!("input ended; still serving until SIGINT or SIGTERM");
            while stop_signal().is_none() {
                std::thread::sleep(Duration::from_millis(100));
                // The server's figures go on.
                w.publish_stats();
            }
        }
        if let Some(h) = w.server.take() {
            h.shutdown();
        }
        w.out.remove_pending(&mut w.outputs);
        w.apply()?;
    }
    w.files.finish()?;
    res.map(|_| ())
}
