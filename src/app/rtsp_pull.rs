//! river-rtsp-pull: an RTSP camera → MPEG-TS, FLV or Annex B on stdout.
//!
//! The RTSP client is retina, which needs tokio: a current-thread runtime lives inside this tool
//! only, for the length of [`rtsp_pull`]. Everything that is not I/O (credentials, the continuity
//! stage across reconnects, the backoff policy) is in [`crate::camera`]; the muxers are the shared
//! [`TsOut`]/[`FlvOut`].

use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use retina::client::{
    Credentials, InitialTimestampPolicy, PlayOptions, SessionGroup, SessionOptions, SetupOptions,
    TcpTransportOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};

use super::stats::Stats;
use crate::camera::{batch_interval, Backoff, CameraUrl, Ingest};
use crate::cli::{RtspFormat, RtspPull, RtspTransport};
use crate::codec::{aac, h264, h265};
use crate::media::{MediaEvent, Track, VideoConfig, CLOCK_HZ};
use crate::pipeline::{FlvOut, TsOut};
use crate::stdio::{require_binary_stdout, stop_signal};

/// How often the loops look at the stop-signal flag.
const SIGNAL_POLL: Duration = Duration::from_millis(100);
/// The longest wait for a TEARDOWN answer on exit.
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);
/// RTP loss is summed up in the log at most this often.
const LOSS_LOG_EVERY: Duration = Duration::from_secs(10);
/// Password files are one short line; a bigger file is a mistake.
const MAX_PASSWORD_FILE: u64 = 4096;

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "RIVER_RTSP_PASSWORD";

/// The output side: media events → bytes → stdout, one write per batch of events.
struct Output {
    format: RtspFormat,
    ts: TsOut,
    flv: FlvOut,
    video: Option<VideoConfig>,
    buf: Vec<u8>,
    stdout: ManuallyDrop<File>,
    bytes: u64,
}

impl Output {
    fn new(format: RtspFormat) -> Self {
        Output {
            format,
            ts: TsOut::new(),
            flv: FlvOut::new(),
            video: None,
            buf: Vec::with_capacity(1 << 18),
            // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
            // Writing it directly (not through std's line-buffered Stdout) costs one write(2) per
            // batch of frames.
            stdout: ManuallyDrop::new(unsafe { File::from_raw_fd(1) }),
            bytes: 0,
        }
    }

    fn event(&mut self, ev: &MediaEvent) -> anyhow::Result<()> {
        match self.format {
            RtspFormat::Ts => self.ts.event(ev, &mut self.buf).map_err(anyhow::Error::msg),
            RtspFormat::Flv => self
                .flv
                .event(ev, &mut self.buf)
                .map_err(anyhow::Error::msg),
            RtspFormat::H264 => {
                match ev {
                    MediaEvent::Video(c) => self.video = Some(c.clone()),
                    MediaEvent::Frame(f) if f.track == Track::Video => {
                        if let Some(c) = &self.video {
                            h264::write_annexb_au(&f.data, c, f.keyframe, &mut self.buf);
                        }
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.stdout.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Why a session ended.
enum End {
    /// --duration reached, or a stop signal: the tool is done.
    Done,
}

/// A session failure, with what the retry policy needs to know.
struct Failure {
    message: String,
    /// A misconfiguration that retrying cannot fix (wrong credentials, unsupported codec).
    permanent: bool,
    /// Writing the output failed (the reader closed the pipe, a full disk): never retried, and
    /// kept as an error chain so a closed pipe is a quiet exit.
    output: Option<anyhow::Error>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            permanent: false,
            output: None,
        }
    }
    fn permanent(message: impl Into<String>) -> Self {
        Failure {
            permanent: true,
            ..Failure::new(message)
        }
    }
    fn output(e: anyhow::Error) -> Self {
        Failure {
            output: Some(e),
            ..Failure::new(String::new())
        }
    }
}

/// Everything one pull needs, shared by its sessions.
struct Puller {
    cam: CameraUrl,
    creds: Option<Credentials>,
    transport: RtspTransport,
    /// Stall timeout, also the limit for each RTSP request.
    timeout: Duration,
    /// Stop after this much media (90 kHz).
    limit: Option<i64>,
    /// Stop at this wall-clock time even when the camera is down.
    wall_limit: Option<Instant>,
    group: Arc<SessionGroup>,
    ingest: Ingest,
    out: Output,
    events: Vec<MediaEvent>,
    warned_audio_dropped: bool,
    warned_bframes: bool,
    lost_packets: u64,
    loss_logged: Option<Instant>,
    /// `--stats` and `--metrics`, and what only this tool counts for them.
    stats: Stats,
    reconnects: u64,
    stalls: u64,
    /// Media payload bytes received from the camera.
    media_bytes: u64,
    /// A session is playing.
    playing: bool,
    /// The video's frame rate from its SPS, and its mean frame interval from its timestamps
    /// (90 kHz): what [`batch_interval`] makes the wait between batches of.
    frame_rate: Option<(u32, u32)>,
    pts_step: Option<i64>,
    /// The session's first video timestamp and the video frames since.
    video_timing: Option<(i64, u64)>,
}

/// `host:port` of the camera, for messages.
fn peer(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port().unwrap_or(554)
    )
}

/// The first line of a retina error (the rest is connection context over several lines).
fn first_line(e: &retina::Error) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

impl Puller {
    fn peer(&self) -> String {
        peer(&self.cam.url)
    }

    /// Turns a retina error from `step` (DESCRIBE, SETUP, PLAY, or while playing) into one line.
    fn explain(&self, step: &str, e: &retina::Error) -> Failure {
        let url = self.cam.redacted();
        match e.status_code() {
            Some(401) => {
                let who = match &self.creds {
                    Some(c) => format!("the credentials of user {:?} were refused", c.username),
                    None => "it needs credentials: give --user with --password-file or RIVER_RTSP_PASSWORD, or user:password@ in the URL".to_string(),
                };
                Failure::permanent(format!("{url}: 401 Unauthorized to {step}: {who}"))
            }
            Some(403) => Failure::permanent(format!(
                "{url}: 403 Forbidden to {step}: the camera does not allow this user to play the stream"
            )),
            Some(404) => Failure::new(format!(
                "{url}: 404 Not Found to {step}: no stream at path {:?} on {}; check the URL's path",
                self.cam.url.path(),
                self.peer()
            )),
            Some(code) => Failure::new(format!(
                "{url}: the camera answered {step} with status {code} ({})",
                first_line(e)
            )),
            None => {
                let text = first_line(e);
                let lower = text.to_ascii_lowercase();
                let what = if lower.contains("connection refused") {
                    format!(
                        "cannot connect to {}: connection refused (is the camera up, and is the port right?)",
                        self.peer()
                    )
                } else if lower.starts_with("unable to connect") {
                    format!("cannot connect to {}: {text}", self.peer())
                } else {
                    format!("{} during {step}: {text}", self.peer())
                };
                Failure::new(what)
            }
        }
    }

    fn timeout_failure(&self, step: &str) -> Failure {
        Failure::new(format!(
            "{}: timeout: no answer to {step} within {:.1} s",
            self.peer(),
            self.timeout.as_secs_f64()
        ))
    }

    /// One RTSP request with the request timeout; also gives up on a stop signal.
    async fn request<T>(
        &self,
        step: &str,
        fut: impl std::future::Future<Output = Result<T, retina::Error>>,
    ) -> Result<Option<T>, Failure> {
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(SIGNAL_POLL);
        loop {
            tokio::select! {
                r = &mut fut => return r.map(Some).map_err(|e| self.explain(step, &e)),
                _ = &mut deadline => return Err(self.timeout_failure(step)),
                _ = tick.tick() => {
                    if stop_signal().is_some() {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn done(&self) -> bool {
        stop_signal().is_some()
            || self.limit.is_some_and(|l| self.ingest.position() >= l)
            || self.wall_limit.is_some_and(|w| Instant::now() >= w)
    }

    /// One session: DESCRIBE, SETUP, PLAY, then frames until done or failure. Sets `media_seen`
    /// once this session has written media.
    async fn session(&mut self, media_seen: &mut bool) -> Result<End, Failure> {
        let mut opts = SessionOptions::default()
            .creds(self.creds.clone())
            .session_group(self.group.clone())
            .user_agent(concat!("river-rtsp-pull/", env!("CARGO_PKG_VERSION")).to_string());
        if self.transport == RtspTransport::Udp {
            // Over UDP the TEARDOWN is the only way the camera learns the session is over.
            opts = opts.teardown(retina::client::TeardownPolicy::Always);
        }
        log::info!("DESCRIBE {} over {:?}", self.cam.redacted(), self.transport);
        let Some(mut session) = self
            .request(
                "DESCRIBE",
                retina::client::Session::describe(self.cam.url.clone(), opts),
            )
            .await?
        else {
            return Ok(End::Done);
        };

        // Pick the first H.264 or H.265 video stream and the first AAC audio stream.
        let mut video_i = None;
        let mut audio_i = None;
        let mut other_video = Vec::new();
        for (i, s) in session.streams().iter().enumerate() {
            let enc = s.encoding_name();
            match s.media() {
                "video"
                    if video_i.is_none()
                        && (enc.eq_ignore_ascii_case("h264")
                            || enc.eq_ignore_ascii_case("h265")) =>
                {
                    if enc.eq_ignore_ascii_case("h265") && self.out.format == RtspFormat::H264 {
                        return Err(Failure::permanent(format!(
                            "{}: the camera offers H.265/HEVC video, which --format h264 cannot carry; use --format ts or --format flv",
                            self.cam.redacted()
                        )));
                    }
                    video_i = Some(i)
                }
                "video" => other_video.push(codec_name(enc)),
                "audio" if audio_i.is_none() && enc.eq_ignore_ascii_case("mpeg4-generic") => {
                    audio_i = Some(i)
                }
                "audio" => log::warn!(
                    "{}: ignoring {} audio (river carries AAC only)",
                    self.peer(),
                    enc
                ),
                m => log::info!("{}: ignoring a {m} stream ({enc})", self.peer()),
            }
        }
        if video_i.is_none() {
            let what = if other_video.is_empty() {
                "no video stream".to_string()
            } else {
                format!("video as {}", other_video.join(", "))
            };
            return Err(Failure::permanent(format!(
                "{}: unsupported codec: the camera offers {what}; river carries H.264 and H.265 video",
                self.cam.redacted()
            )));
        }
        if audio_i.is_some() && self.out.format == RtspFormat::H264 {
            if !self.warned_audio_dropped {
                self.warned_audio_dropped = true;
                log::info!(
                    "--format h264 carries video only: the camera's AAC audio is not set up"
                );
            }
            audio_i = None;
        }
        let transport = match self.transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
        };
        for i in [video_i, audio_i].into_iter().flatten() {
            let setup = SetupOptions::default()
                .transport(transport.clone())
                .frame_format(FrameFormat::MP4);
            if self
                .request("SETUP", session.setup(i, setup))
                .await?
                .is_none()
            {
                return Ok(End::Done);
            }
        }
        let play = PlayOptions::default().initial_timestamp(InitialTimestampPolicy::Permissive);
        let Some(playing) = self.request("PLAY", session.play(play)).await? else {
            return Ok(End::Done);
        };
        let mut demuxed = playing
            .demuxed()
            .map_err(|e| Failure::permanent(format!("{}: {}", self.peer(), first_line(&e))))?;

        self.ingest
            .begin_session(video_i.is_some(), audio_i.is_some());
        // Configurations known from the SDP; in-band changes come with the frames.
        for (i, s) in demuxed.streams().iter().enumerate() {
            match s.parameters() {
                Some(ParametersRef::Video(v)) if Some(i) == video_i => self.video_params(v),
                Some(ParametersRef::Audio(a)) if Some(i) == audio_i => self.audio_params(a)?,
                _ => {}
            }
        }
        log::info!(
            "playing {} (video{})",
            self.cam.redacted(),
            if audio_i.is_some() {
                " + AAC audio"
            } else {
                ""
            }
        );

        let stall = tokio::time::sleep(self.timeout);
        tokio::pin!(stall);
        let mut tick = tokio::time::interval(SIGNAL_POLL);
        let mut last_video_pts = i64::MIN;
        self.video_timing = None;
        loop {
            tokio::select! {
                item = demuxed.next() => {
                    let mut item = item;
                    let mut media = false;
                    // Take every item already buffered, then write them in one go.
                    loop {
                        let it = match item {
                            None => return Err(Failure::new(format!("{}: the camera ended the session", self.peer()))),
                            Some(Err(e)) => return Err(self.explain("PLAY", &e)),
                            Some(Ok(it)) => it,
                        };
                        media |= self.on_item(it, &demuxed, video_i, audio_i, &mut last_video_pts);
                        match demuxed.next().now_or_never() {
                            Some(next) => item = next,
                            None => break,
                        }
                    }
                    if media {
                        // Media arrives (even while waiting for a keyframe): not stalled.
                        stall.as_mut().reset(tokio::time::Instant::now() + self.timeout);
                    }
                    if !self.events.is_empty() {
                        *media_seen = true;
                        self.playing = true;
                        self.write_events().map_err(Failure::output)?;
                    }
                    if self.done() {
                        return Ok(End::Done);
                    }
                    // Let the network fill a batch before the next wakeup, for one frame
                    // interval: about one wakeup and one read per frame (47 a second at 30 fps
                    // with a fixed 20 ms; 30 now), and under a frame of added latency. A
                    // blocking sleep on purpose: this runtime runs nothing else, and an async
                    // sleep would let the socket's readiness wake the thread a second time per
                    // batch.
                    std::thread::sleep(batch_interval(self.frame_rate, self.pts_step));
                }
                _ = &mut stall => {
                    self.stalls += 1;
                    return Err(Failure::new(format!(
                        "{}: stalled: no media for {:.1} s",
                        self.peer(),
                        self.timeout.as_secs_f64()
                    )));
                }
                _ = tick.tick() => {
                    self.tick_stats();
                    if self.done() {
                        return Ok(End::Done);
                    }
                }
            }
        }
    }

    /// One item from the camera; true when it was media of a chosen stream.
    fn on_item(
        &mut self,
        item: CodecItem,
        demuxed: &retina::client::Demuxed,
        video_i: Option<usize>,
        audio_i: Option<usize>,
        last_video_pts: &mut i64,
    ) -> bool {
        match item {
            CodecItem::VideoFrame(f) if Some(f.stream_id()) == video_i => {
                if f.has_new_parameters() {
                    if let Some(ParametersRef::Video(v)) =
                        demuxed.streams()[f.stream_id()].parameters()
                    {
                        self.video_params(v);
                    }
                }
                self.lost(f.loss());
                let ts = f.timestamp();
                let t = rescale(ts.elapsed(), ts.clock_rate().get());
                if t < *last_video_pts && !self.warned_bframes {
                    self.warned_bframes = true;
                    log::info!("{}: video timestamps go backward (B-frames): RTP carries no DTS; river derives it from the stream's reorder delay", self.peer());
                }
                *last_video_pts = (*last_video_pts).max(t);
                // The mean frame interval of this session: the span of the timestamps over the
                // frames seen (B-frames make single steps span several frames).
                let (first, frames) = self.video_timing.get_or_insert((t, 0));
                *frames += 1;
                if *frames > 1 && *last_video_pts > *first {
                    self.pts_step = Some((*last_video_pts - *first) / (*frames - 1) as i64);
                }
                let key = f.is_random_access_point();
                let data = Bytes::from(f.into_data());
                self.media_bytes += data.len() as u64;
                self.ingest
                    .frame(Track::Video, t, key, data, &mut self.events);
                true
            }
            CodecItem::AudioFrame(f) if Some(f.stream_id()) == audio_i => {
                let ts = f.timestamp();
                let t = rescale(ts.elapsed(), ts.clock_rate().get());
                let data = Bytes::copy_from_slice(f.data());
                self.media_bytes += data.len() as u64;
                self.lost(f.loss());
                self.ingest
                    .frame(Track::Audio, t, true, data, &mut self.events);
                true
            }
            _ => false,
        }
    }

    /// Counts RTP packets lost before a frame; logs at most one summary per LOSS_LOG_EVERY.
    fn lost(&mut self, n: u16) {
        if n == 0 {
            return;
        }
        self.lost_packets += n as u64;
        let now = Instant::now();
        if self.loss_logged.is_none_or(|t| now - t >= LOSS_LOG_EVERY) {
            log::warn!(
                "{}: {} RTP packets lost so far (network or camera overload{})",
                self.peer(),
                self.lost_packets,
                if self.transport == RtspTransport::Udp {
                    "; --transport tcp avoids UDP loss"
                } else {
                    ""
                }
            );
            self.loss_logged = Some(now);
        }
    }

    fn video_params(&mut self, v: &retina::codec::VideoParameters) {
        let cfg = match v.codec_params() {
            VideoParametersCodec::H264 { sps, pps } => {
                h264::video_config(vec![sps.clone()], vec![pps.clone()]).map_err(|e| e.to_string())
            }
            VideoParametersCodec::H265 { vps, sps, pps } => {
                h265::video_config(vec![vps.clone()], vec![sps.clone()], vec![pps.clone()])
                    .map_err(|e| e.to_string())
            }
            _ => return,
        };
        match cfg {
            Ok(cfg) => {
                log::info!(
                    "{}: {} {}x{}",
                    self.peer(),
                    cfg.codec.name(),
                    cfg.width,
                    cfg.height
                );
                self.frame_rate = cfg.frame_rate;
                self.ingest.video_config(cfg);
            }
            Err(e) => log::warn!("{}: bad parameter sets from the camera: {e}", self.peer()),
        }
    }

    fn audio_params(&mut self, a: &retina::codec::AudioParameters) -> Result<(), Failure> {
        match aac::parse_asc(a.extra_data()) {
            Ok(cfg) => {
                log::info!(
                    "{}: AAC {} Hz, {} channels",
                    self.peer(),
                    cfg.sample_rate,
                    cfg.channels
                );
                self.ingest.audio_config(cfg);
            }
            Err(e) => log::warn!(
                "{}: bad AAC configuration from the camera: {e}; audio dropped",
                self.peer()
            ),
        }
        Ok(())
    }

    /// Writes the events gathered so far, in order, up to --duration.
    fn write_events(&mut self) -> anyhow::Result<()> {
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            if let (Some(limit), MediaEvent::Frame(f)) = (self.limit, ev) {
                if f.dts >= limit {
                    continue;
                }
            }
            self.out.event(ev)?;
        }
        self.stats.with(|m| {
            for e in events.iter().filter(|e| match (self.limit, e) {
                (Some(limit), MediaEvent::Frame(f)) => f.dts < limit,
                _ => true,
            }) {
                m.event(e);
            }
        });
        self.events = events;
        self.events.clear();
        self.out.flush().context("writing stdout")?;
        self.tick_stats();
        Ok(())
    }

    /// Copies the figures into the meter and prints the `--stats` line when one is due.
    fn tick_stats(&mut self) {
        let s = self.ingest.stats();
        let (bytes_out, bytes_in, lost) = (self.out.bytes, self.media_bytes, self.lost_packets);
        let (reconnects, stalls, playing) = (self.reconnects, self.stalls, self.playing);
        self.stats.with(|m| {
            m.bytes_out = bytes_out;
            m.bytes_in = bytes_in;
            m.repairs = s.jumps;
            m.drops = s.dropped_before_key;
            m.set(
                "sessions_total",
                "RTSP sessions that played.",
                true,
                s.sessions as f64,
            );
            m.set(
                "reconnects_total",
                "Reconnections to the camera (--retry).",
                true,
                reconnects as f64,
            );
            m.set(
                "stall_timeouts_total",
                "Sessions given up because no media came for --stall-timeout.",
                true,
                stalls as f64,
            );
            m.set(
                "rtp_packets_lost_total",
                "RTP packets lost before frames (sequence number gaps).",
                true,
                lost as f64,
            );
            m.set(
                "connected",
                "1 while a session plays, else 0.",
                false,
                f64::from(u8::from(playing)),
            );
        });
        self.stats.tick(Instant::now());
    }

    /// Waits out the backoff; false when the tool should stop instead.
    async fn wait(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.done() {
                return false;
            }
            tokio::time::sleep(SIGNAL_POLL.min(until - Instant::now())).await;
        }
        !self.done()
    }

    /// Drops the session (retina sends TEARDOWN in the background) and waits a little for it.
    async fn teardown(&self) {
        match tokio::time::timeout(TEARDOWN_WAIT, self.group.await_teardown()).await {
            Ok(Ok(())) => log::debug!("TEARDOWN done"),
            Ok(Err(e)) => log::debug!("TEARDOWN failed: {}", first_line(&e)),
            Err(_) => log::debug!("no answer to TEARDOWN within {TEARDOWN_WAIT:?}"),
        }
    }
}

/// A readable name for an RTP encoding name.
fn codec_name(enc: &str) -> String {
    match enc.to_ascii_lowercase().as_str() {
        "h265" => "H.265/HEVC".into(),
        "jpeg" => "MJPEG".into(),
        "mp4v-es" => "MPEG-4 Part 2".into(),
        "vp8" => "VP8".into(),
        "vp9" => "VP9".into(),
        "av1" => "AV1".into(),
        _ => enc.to_string(),
    }
}

/// `t` in `rate` Hz → 90 kHz.
fn rescale(t: i64, rate: u32) -> i64 {
    if rate == CLOCK_HZ as u32 {
        return t;
    }
    (t as i128 * CLOCK_HZ as i128 / rate.max(1) as i128) as i64
}

/// The password, from the first of: --password-file, RIVER_RTSP_PASSWORD, the URL.
fn credentials(args: &RtspPull, cam: &CameraUrl) -> anyhow::Result<Option<Credentials>> {
    let password = if let Some(p) = &args.password_file {
        let f = File::open(p).with_context(|| format!("--password-file {}", p.display()))?;
        let mut s = String::new();
        io::Read::read_to_string(&mut io::Read::take(f, MAX_PASSWORD_FILE), &mut s)
            .with_context(|| format!("--password-file {}", p.display()))?;
        Some(s.lines().next().unwrap_or("").to_string())
    } else if let Ok(p) = std::env::var(PASSWORD_ENV) {
        Some(p)
    } else {
        cam.password.clone()
    };
    let user = args.user.clone().or_else(|| cam.user.clone());
    Ok(match (user, password) {
        (Some(username), password) => Some(Credentials {
            username,
            password: password.unwrap_or_default(),
        }),
        (None, Some(_)) => {
            return Err(crate::stdio::UsageError(
                "a password was given but no user name: add --user or user@ in the URL".into(),
            )
            .into())
        }
        (None, None) => None,
    })
}

/// `river-rtsp-pull`.
pub fn rtsp_pull(args: RtspPull) -> anyhow::Result<()> {
    let what = match args.format {
        RtspFormat::Ts => "MPEG-TS",
        RtspFormat::Flv => "FLV",
        RtspFormat::H264 => "H.264",
    };
    require_binary_stdout(what)?;
    let cam = CameraUrl::parse(&args.url).map_err(|e| crate::stdio::UsageError(e.to_string()))?;
    let creds = credentials(&args, &cam)?;
    let timeout = args.stall_timeout.as_duration();
    let started = Instant::now();
    let mut p = Puller {
        cam,
        creds,
        transport: args.transport,
        timeout,
        limit: args.duration.map(|d| d.ticks),
        wall_limit: args.duration.map(|d| started + d.as_duration() + timeout),
        group: Arc::new(SessionGroup::default()),
        ingest: Ingest::new(),
        out: Output::new(args.format),
        events: Vec::new(),
        warned_audio_dropped: false,
        warned_bframes: false,
        lost_packets: 0,
        loss_logged: None,
        stats: Stats::start(&args.stats, "rtsp_pull", "river-rtsp-pull")?,
        reconnects: 0,
        stalls: 0,
        media_bytes: 0,
        playing: false,
        frame_rate: None,
        pts_step: None,
        video_timing: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async {
        let mut backoff = Backoff::default();
        let mut ever_played = false;
        let r = loop {
            let mut media = false;
            let r = p.session(&mut media).await;
            p.playing = false;
            ever_played |= media;
            match r {
                Ok(End::Done) => break Ok(()),
                Err(Failure {
                    output: Some(e), ..
                }) => break Err(e),
                Err(f) if !args.retry || (f.permanent && !ever_played) => {
                    break Err(anyhow::anyhow!(f.message))
                }
                Err(f) => {
                    if media {
                        backoff.reset();
                    }
                    let d = backoff.next_delay();
                    log::warn!("{}; reconnecting in {:.1} s", f.message, d.as_secs_f64());
                    if !p.wait(d).await {
                        break Ok(());
                    }
                    p.reconnects += 1;
                    p.tick_stats();
                }
            }
        };
        // Leaving `session` dropped the retina session, which started its TEARDOWN.
        p.teardown().await;
        r
    });
    let flushed = p.out.flush().context("writing stdout");
    p.playing = false;
    p.tick_stats();
    p.stats.finish();
    let s = p.ingest.stats();
    log::info!(
        "{} session(s), {} video and {} audio frames, {} bytes written, {} dropped waiting for a keyframe, {} timestamp repairs",
        s.sessions,
        s.video_frames,
        s.audio_frames,
        p.out.bytes,
        s.dropped_before_key,
        s.jumps
    );
    result?;
    flushed?;
    if s.video_frames == 0 && stop_signal().is_none() {
        anyhow::bail!("{}: no video frames received", p.cam.redacted());
    }
    Ok(())
}
