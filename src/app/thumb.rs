//! river-thumb: stdin → (tee) → demux → keyframe store → picture on demand → stdout, file or HTTP.
//!
//! A reader thread owns stdin (and stdout with --tee, so the copy never waits for a decode); the
//! main thread demuxes and keeps the newest keyframe; pictures are made by the main thread
//! (one-shot, --every) or, for --serve, by one render thread behind the HTTP layer
//! ([`crate::http::server`]), one decoder behind one lock.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;

use super::stats::Stats;
use crate::cli::Thumb;
use crate::http::run::{spawn, Running};
use crate::http::server::{Body, Handler, Options, Reply, ReqId, Request, Response};
use crate::media::MediaEvent;
use crate::pipeline::Demux;
use crate::stdio::{read_some, require_binary_stdout, stop_signal, ReadOutcome, UsageError};
use crate::thumb::{ImageFormat, Keyframe, KeyframeStore, RenderOptions, Renderer};

/// One read from stdin. A read returns what is there, so this only caps the work per step.
const READ_CHUNK: usize = 256 * 1024;
/// Reads queued between the reader thread and the demuxer (at most 8 MiB).
const QUEUE: usize = 32;
/// The same for a one-shot picture without --tee: the process ends with its first keyframe, so
/// reading far ahead of the demuxer only costs (a 2 s 720p file was read whole, 8 reads and 2 MB
/// of fresh buffers, for a keyframe in the first one).
const QUEUE_ONE_SHOT: usize = 1;
/// How often the main loop looks at signals and timers while the input is quiet.
const TICK: Duration = Duration::from_millis(50);

enum Input {
    Data(Vec<u8>),
    Eof,
    Failed(io::Error),
}

/// `river-thumb`.
pub fn thumb(args: Thumb) -> anyhow::Result<()> {
    let format = args
        .format
        .or_else(|| args.out.as_deref().and_then(ImageFormat::from_path))
        .unwrap_or(ImageFormat::Jpeg);
    if args.tee {
        if args.out.is_none() && args.serve.is_none() {
            return Err(UsageError(
                "--tee puts the stream on stdout; give --out FILE or --serve ADDR for the pictures"
                    .into(),
            )
            .into());
        }
        require_binary_stdout("the input stream (--tee)")?;
    } else if args.out.is_none() && args.serve.is_none() {
        require_binary_stdout("an image")?;
    }
    if args.serve.is_some() && args.out.is_some() && args.every.is_none() {
        return Err(UsageError("with --serve, --out needs --every DUR".into()).into());
    }
    let opts = RenderOptions {
        width: args.width,
        height: args.height,
        quality: args.quality,
    };

    let shared = Arc::new(Shared::new(opts));
    let _server = match args.serve {
        Some(addr) => {
            let running = serve(addr, Arc::clone(&shared))?;
            let bound = running.local_addr();
            eprintln!("river-thumb: serving http://{bound}/thumb.jpg and http://{bound}/thumb.png");
            Some(running)
        }
        None => None,
    };

    let stats = Stats::start(&args.stats, "thumb", "river-thumb")?;
    let one_shot = args.every.is_none() && args.serve.is_none();
    let rx = spawn_reader(
        args.tee,
        if one_shot && !args.tee {
            QUEUE_ONE_SHOT
        } else {
            QUEUE
        },
    );
    let mode = if !one_shot {
        Mode::Live {
            every: args.every.zip(args.out.clone()),
        }
    } else {
        Mode::OneShot {
            out: args.out.clone(),
        }
    };
    let mut run = Run {
        // Thumbnails need the video only: other tracks river does not carry are logged, not fatal.
        demux: Demux::new(args.input_format.map(Into::into), None, 10.0).dropping_unsupported(),
        store: KeyframeStore::new(),
        renderer: if one_shot {
            Renderer::one_shot(opts)
        } else {
            Renderer::new(opts)
        },
        shared,
        format,
        mode,
        tee: args.tee,
        deadline: args.timeout.map(|t| (Instant::now() + t, t)),
        bytes_in: 0,
        done: false,
        written_seq: 0,
        failed_seq: 0,
        last_write: None,
        events: Vec::new(),
        diags: Vec::new(),
        stats,
        keyframes: 0,
    };
    let r = run.main_loop(&rx);
    run.tick_stats();
    run.stats.finish();
    r
}

enum Mode {
    OneShot { out: Option<PathBuf> },
    Live { every: Option<(Duration, PathBuf)> },
}

struct Run {
    demux: Demux,
    store: KeyframeStore,
    renderer: Renderer,
    shared: Arc<Shared>,
    format: ImageFormat,
    mode: Mode,
    tee: bool,
    /// When the first keyframe (one-shot: picture) must have arrived, and the --timeout given.
    deadline: Option<(Instant, Duration)>,
    bytes_in: u64,
    /// One-shot: the picture is out.
    done: bool,
    /// --every: the keyframe last written, the one that last failed, and when.
    written_seq: u64,
    failed_seq: u64,
    last_write: Option<Instant>,
    events: Vec<MediaEvent>,
    diags: Vec<crate::error::Diag>,
    stats: Stats,
    keyframes: u64,
}

impl Run {
    fn main_loop(&mut self, rx: &Receiver<Input>) -> anyhow::Result<()> {
        loop {
            if stop_signal().is_some() {
                log::info!("stop signal: exiting");
                return Ok(());
            }
            let wait = self.next_wake();
            match rx.recv_timeout(wait) {
                Ok(Input::Data(buf)) => {
                    if self.done {
                        continue; // one-shot with --tee: the reader copies; nothing left to do
                    }
                    self.bytes_in += buf.len() as u64;
                    let res = self.demux.push(&buf, &mut self.events, &mut self.diags);
                    self.after_push(res)?;
                    if self.done && !self.tee {
                        return Ok(());
                    }
                }
                Ok(Input::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    if !self.done {
                        let res = self.demux.finish(&mut self.events, &mut self.diags);
                        self.after_push(res)?;
                    }
                    return self.at_end();
                }
                Ok(Input::Failed(e)) => {
                    let what = if self.tee {
                        "copying stdin to stdout"
                    } else {
                        "reading stdin"
                    };
                    return Err(anyhow::Error::new(e).context(what));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick()?;
            self.tick_stats();
        }
    }

    /// How long the main loop may wait for input.
    fn next_wake(&self) -> Duration {
        let now = Instant::now();
        let mut wait = TICK;
        if let Some((d, _)) = self.deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        wait
    }

    fn after_push(&mut self, res: Result<(), crate::error::Diag>) -> anyhow::Result<()> {
        for d in self.diags.drain(..) {
            log::warn!("stdin: {d}");
        }
        // Every keyframe of this push, in stream order: one read may hold several (a small file
        // read whole), and one-shot wants the first that decodes, like `ffmpeg -frames:v 1`.
        let mut keys = Vec::new();
        let events = &self.events;
        self.stats.with(|m| events.iter().for_each(|e| m.event(e)));
        for ev in self.events.drain(..) {
            if let Some(k) = self.store.event(&ev, self.bytes_in) {
                self.keyframes += 1;
                keys.push(k);
            }
        }
        if let Err(d) = res {
            return Err(anyhow::anyhow!("stdin: {d}"));
        }
        let Some(newest) = keys.last().cloned() else {
            return Ok(());
        };
        log::debug!("{}", newest.describe());
        if self.deadline.is_some() && matches!(self.mode, Mode::Live { .. }) {
            self.deadline = None; // a keyframe arrived in time
        }
        *self.shared.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(newest);
        if let Mode::OneShot { out } = &self.mode {
            for k in keys {
                if self.done {
                    break;
                }
                let t0 = Instant::now();
                let made = self.renderer.render(&k, self.format);
                self.shared.made.count(&made, t0);
                match made {
                    Ok(img) => {
                        let made = t0.elapsed().as_secs_f64() * 1e3;
                        match out {
                            Some(path) => write_atomic(path, &img)?,
                            None => {
                                let mut so = io::stdout().lock();
                                so.write_all(&img).context("writing stdout")?;
                                so.flush().context("writing stdout")?;
                            }
                        }
                        log::info!(
                            "{}: {} bytes of {:?}, made in {made:.1} ms",
                            k.describe(),
                            img.len(),
                            self.format
                        );
                        self.done = true;
                        self.deadline = None;
                    }
                    Err(e) => log::warn!("{}: {e}; trying the next keyframe", k.describe()),
                }
            }
        }
        Ok(())
    }

    /// Timers: the --timeout deadline and --every's next write.
    fn tick(&mut self) -> anyhow::Result<()> {
        if let Some((d, t)) = self.deadline {
            if Instant::now() >= d {
                return Err(anyhow::anyhow!(
                    "no {} within --timeout {} ({} bytes of input read){}",
                    if matches!(self.mode, Mode::OneShot { .. }) {
                        "decodable keyframe"
                    } else {
                        "keyframe"
                    },
                    fmt_duration(t),
                    self.bytes_in,
                    self.no_video_hint()
                ));
            }
        }
        let Mode::Live {
            every: Some((every, path)),
        } = &self.mode
        else {
            return Ok(());
        };
        let Some(k) = self.store.latest() else {
            return Ok(());
        };
        if k.seq == self.written_seq || k.seq == self.failed_seq {
            return Ok(());
        }
        if self.last_write.is_some_and(|t| t.elapsed() < *every) {
            return Ok(());
        }
        let path = path.clone();
        let t0 = Instant::now();
        let made = self.renderer.render(&k, self.format);
        self.shared.made.count(&made, t0);
        match made {
            Ok(img) => {
                let made = t0.elapsed().as_secs_f64() * 1e3;
                write_atomic(&path, &img)?;
                log::info!(
                    "{}: wrote {} ({} bytes, made in {made:.1} ms)",
                    k.describe(),
                    path.display(),
                    img.len()
                );
                self.written_seq = k.seq;
                self.last_write = Some(Instant::now());
            }
            Err(e) => {
                log::warn!("{}: {e}; trying the next keyframe", k.describe());
                self.failed_seq = k.seq;
            }
        }
        Ok(())
    }

    /// Copies the figures into the meter and prints the `--stats` line when one is due.
    fn tick_stats(&mut self) {
        let made = &self.shared.made;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (pictures, failures, bytes) = (l(&made.pictures), l(&made.failures), l(&made.bytes));
        let secs = l(&made.last_micros) as f64 / 1e6;
        let (bytes_in, keyframes, tee) = (self.bytes_in, self.keyframes, self.tee);
        self.stats.with(|m| {
            m.bytes_in = bytes_in;
            // What went out: the pictures, and with --tee the stream itself.
            m.bytes_out = bytes + if tee { bytes_in } else { 0 };
            m.set(
                "keyframes_total",
                "H.264 keyframes received (the newest is kept for the next picture).",
                true,
                keyframes as f64,
            );
            m.set(
                "pictures_total",
                "Pictures made (decoded, scaled, encoded).",
                true,
                pictures as f64,
            );
            m.set(
                "picture_failures_total",
                "Keyframes that could not be made into a picture.",
                true,
                failures as f64,
            );
            m.set(
                "picture_seconds",
                "How long the latest picture took to make.",
                false,
                secs,
            );
        });
        self.stats.tick(Instant::now());
    }

    fn at_end(&mut self) -> anyhow::Result<()> {
        // --every: a keyframe held back by the rate limit is not written at the end (at most
        // once per DUR), but the first one always was.
        self.tick_end()?;
        let have_picture = match &self.mode {
            Mode::OneShot { .. } => self.done,
            Mode::Live { every: Some(_) } => self.written_seq > 0,
            Mode::Live { every: None } => self.store.latest().is_some(),
        };
        if !have_picture {
            let what = if self.store.latest().is_some() {
                "input ended before any keyframe could be decoded"
            } else {
                "input ended without an H.264 or H.265 keyframe"
            };
            anyhow::bail!(
                "stdin: {what} ({} bytes read){}",
                self.bytes_in,
                self.no_video_hint()
            );
        }
        Ok(())
    }

    fn tick_end(&mut self) -> anyhow::Result<()> {
        if let Mode::Live { every: Some(_) } = &self.mode {
            if self.written_seq == 0 {
                // Nothing written yet (for example every keyframe so far failed): try the newest.
                self.tick()?;
            }
        }
        Ok(())
    }

    fn no_video_hint(&self) -> &'static str {
        if self.store.no_video() {
            "; the input has no H.264 or H.265 video track (river-thumb decodes those two)"
        } else {
            ""
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Reads stdin on its own thread; with `tee`, writes every read to stdout before queueing it.
fn spawn_reader(tee: bool, queue: usize) -> Receiver<Input> {
    let (tx, rx) = mpsc::sync_channel(queue);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        // Only --tee owns stdout; otherwise the main thread writes the picture there.
        let mut stdout = tee.then(|| io::stdout().lock());
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let msg = match read_some(&mut stdin, &mut buf) {
                Ok(ReadOutcome::Data(n)) => {
                    if let Some(so) = stdout.as_mut() {
                        if let Err(e) = so.write_all(&buf[..n]).and_then(|_| so.flush()) {
                            let _ = tx.send(Input::Failed(e));
                            return;
                        }
                    }
                    Input::Data(buf[..n].to_vec())
                }
                Ok(ReadOutcome::Eof) | Ok(ReadOutcome::Stop) => {
                    let _ = tx.send(Input::Eof);
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Input::Failed(e));
                    return;
                }
            };
            if tx.send(msg).is_err() {
                // The main thread is done (one-shot with --tee keeps receiving, so this is the
                // end of the run).
                return;
            }
        }
    });
    rx
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename, so a
/// reader sees the old file or the new one, never a part.
fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("--out {}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let res = std::fs::write(&tmp, data).and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("writing {}", path.display()))
}

/// An encoded picture and its keyframe's presentation time (90 kHz).
type Image = (Bytes, i64);

/// Pictures made so far, on any thread (`--stats`, `--metrics`).
#[derive(Default)]
struct Made {
    pictures: AtomicU64,
    failures: AtomicU64,
    /// Bytes of the pictures.
    bytes: AtomicU64,
    /// How long the latest one took, in microseconds.
    last_micros: AtomicU64,
}

impl Made {
    fn count<E>(&self, made: &Result<Vec<u8>, E>, t0: Instant) {
        match made {
            Ok(img) => {
                self.pictures.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(img.len() as u64, Ordering::Relaxed);
                self.last_micros
                    .store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What the render thread shares with the main loop.
struct Shared {
    latest: Mutex<Option<Arc<Keyframe>>>,
    cache: Mutex<Cache>,
    made: Made,
}

/// Encoded images of one keyframe, plus the last good image of each format (served when the
/// newest keyframe does not decode).
struct Cache {
    renderer: Renderer,
    seq: u64,
    failed_seq: u64,
    images: [Option<Bytes>; 2],
    last_good: [Option<Image>; 2],
}

fn slot(f: ImageFormat) -> usize {
    match f {
        ImageFormat::Jpeg => 0,
        ImageFormat::Png => 1,
    }
}

impl Shared {
    fn new(opts: RenderOptions) -> Shared {
        Shared {
            latest: Mutex::new(None),
            cache: Mutex::new(Cache {
                renderer: Renderer::new(opts),
                seq: 0,
                failed_seq: 0,
                images: [None, None],
                last_good: [None, None],
            }),
            made: Made::default(),
        }
    }

    /// The newest keyframe as `format`: (image, pts in 90 kHz), or (status, message).
    fn image(&self, format: ImageFormat) -> Result<Image, (u16, String)> {
        let key = self
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or((
                503,
                "no keyframe yet: river-thumb has not received an H.264 or H.265 keyframe on its input; retry shortly\n"
                    .to_string(),
            ))?;
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let i = slot(format);
        if c.seq != key.seq {
            c.seq = key.seq;
            c.images = [None, None];
        }
        if let Some(img) = &c.images[i] {
            return Ok((img.clone(), key.pts));
        }
        if c.failed_seq != key.seq {
            let t0 = Instant::now();
            let made = c.renderer.render(&key, format);
            self.made.count(&made, t0);
            match made {
                Ok(img) => {
                    log::debug!(
                        "{}: {format:?} made in {:.1} ms",
                        key.describe(),
                        t0.elapsed().as_secs_f64() * 1e3
                    );
                    let img = Bytes::from(img);
                    c.images[i] = Some(img.clone());
                    c.last_good[i] = Some((img.clone(), key.pts));
                    return Ok((img, key.pts));
                }
                Err(e) => {
                    log::warn!("{}: {e}; serving the previous picture", key.describe());
                    c.failed_seq = key.seq;
                }
            }
        }
        c.last_good[i].clone().ok_or((
            500,
            format!(
                "the newest keyframe could not be decoded ({}); no earlier picture to serve\n",
                key.describe()
            ),
        ))
    }
}

/// The `--serve` handler: a request for a picture waits ([`Reply::Park`]) while the render
/// thread makes it, so a slow decode never holds up the reactor.
#[derive(Clone)]
struct Pictures {
    jobs: mpsc::Sender<(ReqId, ImageFormat)>,
}

fn text(code: u16, body: impl Into<String>) -> Response {
    Response::text(code, body).field("Cache-Control", "no-store")
}

impl Handler for Pictures {
    fn request(&mut self, req: &Request, _now: Instant) -> Reply {
        let path = req.head.target.split('?').next().unwrap_or("");
        let format = match path {
            "/thumb.jpg" | "/thumb.jpeg" => ImageFormat::Jpeg,
            "/thumb.png" => ImageFormat::Png,
            _ => {
                return Reply::Now(text(
                    404,
                    "not found: river-thumb serves /thumb.jpg and /thumb.png\n",
                ))
            }
        };
        if !matches!(req.head.method.as_str(), "GET" | "HEAD") {
            return Reply::Now(text(405, "only GET and HEAD\n"));
        }
        match self.jobs.send((req.id, format)) {
            Ok(()) => Reply::Park,
            Err(_) => Reply::Now(text(503, "river-thumb is stopping\n")),
        }
    }
}

/// The picture answer for one request (made on the render thread).
fn picture(shared: &Shared, f: ImageFormat) -> Response {
    match shared.image(f) {
        Ok((img, pts)) => Response::new(200, Body::Bytes(img))
            .field("Content-Type", f.mime())
            .field("Cache-Control", "no-store")
            .field(
                "X-River-Pts",
                format!("{:.3}", pts as f64 / crate::media::CLOCK_HZ as f64),
            ),
        Err((503, msg)) => text(503, msg).field("Retry-After", "1"),
        Err((code, msg)) => text(code, msg),
    }
}

/// Starts `--serve`: the HTTP server (one reactor thread) and the render thread behind it.
fn serve(addr: SocketAddr, shared: Arc<Shared>) -> anyhow::Result<Running> {
    let (jobs, rx) = mpsc::channel::<(ReqId, ImageFormat)>();
    let opts = Options {
        base_fields: vec![("Server", "river"), ("Access-Control-Allow-Origin", "*")],
        ..Options::default()
    };
    let running = spawn(
        &addr.to_string(),
        Pictures { jobs },
        opts,
        1,
        "river-thumb-http",
    )
    .with_context(|| format!("cannot listen on {addr}"))?;
    let completer = running.completer();
    std::thread::Builder::new()
        .name("river-thumb-render".into())
        .spawn(move || {
            for (id, f) in rx {
                completer.complete(id, picture(&shared, f));
            }
        })
        .context("starting the render thread")?;
    Ok(running)
}
