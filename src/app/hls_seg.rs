//! river-hls-seg: stdin → demux → segmenter → segment files and playlist.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::stats::Stats;
use super::{pump, EventSink};
use crate::cli::HlsSeg;
use crate::format::hls::{
    strftime, Cut, Playlist, PlaylistKind, Segment, Segmenter, SegmenterConfig,
};
use crate::http::{self, ServeOptions};
use crate::media::{MediaEvent, Track, CLOCK_HZ};
use crate::pipeline::TsOut;
use crate::stdio::{stop_signal, UsageError};

/// Segments that left the live window are deleted this many segments later, so clients that
/// fetched the playlist just before can still download them.
const DELETE_DELAY_SEGMENTS: u64 = 3;

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

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so readers
/// see the old or the new file, never a partial one.
fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = tmp_name(path);
    fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// `dir/.name.tmp` beside `dir/name`.
fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// A relative segment path from a strftime pattern must stay inside the directory.
fn check_relative(uri: &str) -> anyhow::Result<()> {
    let p = Path::new(uri);
    if uri.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(UsageError(format!(
            "segment name {uri:?} must be a relative path inside --dir without '..'"
        ))
        .into());
    }
    Ok(())
}

struct OpenSegment {
    uri: String,
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<File>,
    date_ms: i64,
    discontinuity: bool,
}

struct HlsWriter {
    args: HlsSeg,
    ts: TsOut,
    seg: Segmenter,
    playlist: Playlist,
    playlist_path: PathBuf,
    cur: Option<OpenSegment>,
    buf: Vec<u8>,
    /// Segments completed so far (live names use it).
    count: u64,
    /// (delete once `count` reaches this, path).
    to_delete: VecDeque<(u64, PathBuf)>,
    /// Wall clock ↔ DTS anchor for EXT-X-PROGRAM-DATE-TIME.
    anchor: Option<(i64, i64)>,
    first_dts: Option<i64>,
    limit: Option<i64>,
    has_video: bool,
    last_uri: String,
    children: Vec<Child>,
    duration_reached: bool,
}

impl HlsWriter {
    fn new(args: HlsSeg) -> anyhow::Result<Self> {
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
        fs::create_dir_all(&args.dir)
            .with_context(|| format!("creating {}", args.dir.display()))?;
        let align_ms = args
            .align
            .map(|a| a.ticks / (CLOCK_HZ / 1000))
            .filter(|&a| a > 0);
        if align_ms.is_some() && args.segment_time != 2.0 {
            log::warn!("--align decides the cuts; --segment-time is not used");
        }
        let target_secs = align_ms.map_or(args.segment_time, |a| a as f64 / 1000.0);
        let kind = if args.dvr {
            PlaylistKind::Dvr
        } else {
            PlaylistKind::Live {
                window: args.list_size,
            }
        };
        let playlist_path = args.dir.join(format!("{}.m3u8", args.name));
        Ok(HlsWriter {
            seg: Segmenter::new(SegmenterConfig {
                target: (args.segment_time * CLOCK_HZ as f64) as i64,
                align_ms,
            }),
            playlist: Playlist::new(kind, target_secs),
            playlist_path,
            ts: TsOut::new(),
            cur: None,
            buf: Vec::with_capacity(1 << 20),
            count: 0,
            to_delete: VecDeque::new(),
            anchor: None,
            first_dts: None,
            limit: args.duration.map(|d| d.ticks),
            has_video: true,
            last_uri: String::new(),
            children: Vec::new(),
            duration_reached: false,
            args,
        })
    }

    /// The time zone the segmenter and the names use, as its offset from UTC at `unix_ms`: local
    /// time unless --utc.
    fn zone_offset_ms(&self, unix_ms: i64) -> i64 {
        if self.args.utc {
            0
        } else {
            local_offset_ms(unix_ms)
        }
    }

    /// The wall clock the segmenter uses, in [`Self::zone_offset_ms`]'s zone.
    fn clock(&self, unix_ms: i64) -> i64 {
        unix_ms + self.zone_offset_ms(unix_ms)
    }

    fn segment_uri(&self, date_ms: i64) -> anyhow::Result<String> {
        let uri = if self.args.dvr {
            let name = strftime(
                &self.args.segment_name,
                date_ms,
                self.zone_offset_ms(date_ms),
            );
            check_relative(&name)?;
            if name == self.last_uri || self.args.dir.join(&name).exists() {
                // Two segments in the same second (or a restart): keep both.
                let (stem, ext) = match name.rsplit_once('.') {
                    Some((s, e)) if !e.contains('/') => (s.to_string(), format!(".{e}")),
                    _ => (name.clone(), String::new()),
                };
                let mut n = 1;
                loop {
                    let cand = format!("{stem}-{n}{ext}");
                    if !self.args.dir.join(&cand).exists() {
                        break cand;
                    }
                    n += 1;
                }
            } else {
                name
            }
        } else {
            format!("{}-{}.ts", self.args.name, self.count)
        };
        Ok(uri)
    }

    fn open_segment(&mut self, dts: i64, discontinuity: bool) -> anyhow::Result<()> {
        let now = now_ms();
        if discontinuity || self.anchor.is_none() {
            self.anchor = Some((now, dts));
        }
        let (wall0, dts0) = self.anchor.unwrap_or((now, dts));
        let date_ms = wall0 + (dts - dts0) / (CLOCK_HZ / 1000);
        let uri = self.segment_uri(date_ms)?;
        let path = self.args.dir.join(&uri);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let tmp = tmp_name(&path);
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        self.last_uri = uri.clone();
        self.cur = Some(OpenSegment {
            uri,
            path,
            tmp,
            file: BufWriter::with_capacity(256 * 1024, file),
            date_ms,
            discontinuity,
        });
        Ok(())
    }

    fn close_segment(&mut self, duration: f64) -> anyhow::Result<()> {
        let Some(mut s) = self.cur.take() else {
            return Ok(());
        };
        s.file.write_all(&self.buf).context("writing segment")?;
        self.buf.clear();
        s.file
            .flush()
            .with_context(|| format!("writing {}", s.tmp.display()))?;
        drop(s.file);
        fs::rename(&s.tmp, &s.path).with_context(|| format!("renaming {}", s.tmp.display()))?;
        self.count += 1;
        let gone = self.playlist.push(Segment {
            uri: s.uri.clone(),
            duration,
            date_ms: s.date_ms,
            discontinuity: s.discontinuity,
        });
        for g in gone {
            self.to_delete.push_back((
                self.count + DELETE_DELAY_SEGMENTS,
                self.args.dir.join(&g.uri),
            ));
        }
        while let Some((when, _)) = self.to_delete.front() {
            if *when > self.count {
                break;
            }
            if let Some((_, p)) = self.to_delete.pop_front() {
                if let Err(e) = fs::remove_file(&p) {
                    log::warn!("removing old segment {}: {e}", p.display());
                }
            }
        }
        write_atomic(&self.playlist_path, self.playlist.render().as_bytes())?;
        log::info!("segment {} ({duration:.3} s)", s.uri);
        self.run_hook(&s.path, &s.uri, duration);
        Ok(())
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
    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(d) = self.seg.finish() {
            self.close_segment(d)?;
        }
        self.playlist.end();
        write_atomic(&self.playlist_path, self.playlist.render().as_bytes())?;
        for (_, p) in self.to_delete.drain(..) {
            let _ = fs::remove_file(p);
        }
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
        match &ev {
            MediaEvent::Tracks { video, .. } => {
                self.has_video = *video;
                self.seg.set_has_video(*video);
            }
            MediaEvent::Discontinuity => self.seg.discontinuity(),
            MediaEvent::Frame(f) => {
                let first = *self.first_dts.get_or_insert(f.dts);
                if let Some(limit) = self.limit {
                    if f.dts - first >= limit {
                        log::info!("--duration reached");
                        self.duration_reached = true;
                        return Ok(false);
                    }
                }
                let now = self.clock(now_ms());
                if let Cut::Start {
                    ended,
                    discontinuity,
                } = self.seg.frame(f.track, f.keyframe, f.dts, f.pts, now)
                {
                    if let Some(d) = ended {
                        self.close_segment(d)?;
                    }
                    self.open_segment(f.dts, discontinuity)?;
                    if !(f.track == Track::Video && f.keyframe) {
                        self.ts.write_tables(&mut self.buf);
                    }
                }
                if let Some(g) = self.seg.long_gop() {
                    log::warn!(
                        "the GOP ({g:.2} s) is longer than --segment-time ({} s): segments follow the keyframes and run long",
                        self.args.segment_time
                    );
                }
            }
            MediaEvent::Video(_) | MediaEvent::Audio(_) => {}
        }
        self.ts
            .event(&ev, &mut self.buf)
            .map_err(|e| anyhow::anyhow!("muxing: {e}"))?;
        Ok(true)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(s) = &mut self.cur {
            s.file.write_all(&self.buf).context("writing segment")?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// `river-hls-seg`.
pub fn hls_seg(args: HlsSeg) -> anyhow::Result<()> {
    let input = args.input.clone();
    let serve = args.serve.clone();
    let (dvr, name) = (args.dvr, args.name.clone());
    let mut w = HlsWriter::new(args)?;
    log::info!("writing {}", w.playlist_path.display());
    let server = match &serve {
        Some(addr) => {
            let opts = ServeOptions {
                name,
                // DVR names are unique and never rewritten; live names come back after a restart.
                segment_max_age: if dvr { 31_536_000 } else { 60 },
                ..ServeOptions::default()
            };
            let h = http::serve(addr, w.args.dir.clone(), opts)
                .with_context(|| format!("--serve {addr}"))?;
            eprintln!("river-hls-seg: serving {}", h.playlist_url());
            Some(h)
        }
        None => None,
    };
    let res = pump(&input, &mut w, &mut Stats::off(), |_| 0);
    // Whatever happened to the input, what was received is finished and listed.
    w.flush()?;
    w.finish()?;
    if let Some(h) = server {
        // The input ended on its own: keep the recording on the air until told to stop.
        if res.is_ok() && stop_signal().is_none() && !w.duration_reached {
            log::info!("input ended; still serving until SIGINT or SIGTERM");
            while stop_signal().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        h.shutdown();
    }
    res.map(|_| ())
}
