//! The pure parts of `river-rtsp-pull`: no sockets, no clock, no async.
//!
//! - [`CameraUrl`] splits the credentials out of an RTSP URL and gives a form safe to log.
//! - [`Ingest`] turns the frames of one or more RTSP sessions into one continuous stream of
//!   [`MediaEvent`]s: it starts each session at a keyframe, rebases each session's timestamps to
//!   continue where the previous session stopped, gives video its DTS ([`DtsClock`]: RTP carries
//!   presentation times only, and B-frames come in decoding order), runs every frame through the
//!   shared [`Timeline`], and marks each reconnect with [`MediaEvent::Discontinuity`].
//! - [`Backoff`] is the reconnect policy: exponential, capped, reset once media flows again.
//!
//! The RTSP protocol itself (DESCRIBE/SETUP/PLAY, RTP depacketizing, keepalives, TEARDOWN) is the
//! retina crate's, driven by `app::rtsp_pull`.

use std::time::Duration;

use bytes::Bytes;

use crate::media::{AudioConfig, Codec, Frame, MediaEvent, Track, VideoConfig, CLOCK_HZ};
use crate::proto::rtp::dts::DtsClock;
use crate::timeline::{Timeline, TimelineConfig};

/// An RTSP URL with its credentials taken out.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl {
    /// The URL without user information: what is sent to the camera and logged.
    pub url: url::Url,
    /// The URL's user name, percent-decoded.
    pub user: Option<String>,
    /// The URL's password, percent-decoded. Never printed.
    pub password: Option<String>,
}

impl std::fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraUrl")
            .field("url", &self.url.as_str())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Largest URL accepted (cameras' URLs are short; this bounds what is parsed and logged).
const MAX_URL_LEN: usize = 4096;

/// A camera URL that cannot be used. The URLs it holds are redacted ([`redact_str`]): no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraUrlError {
    /// Longer than river accepts (its length in bytes).
    TooLong(usize),
    /// Not a URL: the URL and the `url` crate's reason.
    Invalid { url: String, reason: String },
    /// A scheme other than `rtsp`.
    Scheme { scheme: String, url: String },
    /// No host.
    NoHost { url: String },
}

impl std::fmt::Display for CameraUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CameraUrlError::TooLong(n) => {
                write!(f, "URL of {n} bytes is too long (at most {MAX_URL_LEN})")
            }
            CameraUrlError::Invalid { url, reason } => write!(
                f,
                "invalid URL {url:?}: {reason}; expected rtsp://HOST[:PORT]/PATH"
            ),
            CameraUrlError::Scheme { scheme, url } => write!(
                f,
                "unsupported URL scheme {scheme:?} in {url:?}: river-rtsp-pull speaks rtsp://"
            ),
            CameraUrlError::NoHost { url } => write!(f, "URL {url:?} has no host"),
        }
    }
}

impl std::error::Error for CameraUrlError {}

impl CameraUrl {
    /// Parses an `rtsp://` URL. The error never repeats the password.
    pub fn parse(s: &str) -> Result<CameraUrl, CameraUrlError> {
        if s.len() > MAX_URL_LEN {
            return Err(CameraUrlError::TooLong(s.len()));
        }
        let mut url = url::Url::parse(s).map_err(|e| CameraUrlError::Invalid {
            url: redact_str(s),
            reason: e.to_string(),
        })?;
        if url.scheme() != "rtsp" {
            return Err(CameraUrlError::Scheme {
                scheme: url.scheme().to_string(),
                url: redact_str(s),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(CameraUrlError::NoHost { url: redact_str(s) });
        }
        let user = Some(percent_decode(url.username())).filter(|u| !u.is_empty());
        let password = url.password().map(percent_decode);
        // Infallible for a URL with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Ok(CameraUrl {
            url,
            user,
            password,
        })
    }

    /// The URL as it may be logged: no password, and the user name kept for diagnosis.
    pub fn redacted(&self) -> String {
        match &self.user {
            Some(u) => {
                let mut shown = self.url.clone();
                let _ = shown.set_username(u);
                shown.to_string()
            }
            None => self.url.to_string(),
        }
    }
}

/// A URL string with any `user:password@` reduced to `user@`, for messages about URLs that did not
/// parse. Best effort, never panics.
pub fn redact_str(s: &str) -> String {
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
        return s.to_string();
    };
    let rest = &s[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}{}@{}{}",
                &s[..scheme_end],
                user,
                &authority[at + 1..],
                &rest[authority_end..]
            )
        }
        None => s.to_string(),
    }
}

/// Decodes `%XX` escapes (as URLs carry reserved characters in user names and passwords).
/// Malformed escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reconnect policy: 0.5 s, doubling, capped at 30 s; back to the start once a session has
/// delivered media.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            next: initial,
            initial,
            max,
        }
    }

    /// The wait before the next attempt; each call doubles the following one, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Media flowed: the next failure starts over from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// How long river-rtsp-pull lets the network fill a batch after handling one: one frame
/// interval, so each wakeup finds about one frame's packets (with audio between) and the added
/// latency stays under a frame. The interval is the SPS frame rate's, else `pts_step`, the mean
/// interval of the video timestamps (90 kHz); bounded to [`BATCH_MIN`, `BATCH_MAX`], and
/// `BATCH_MIN` while neither is known.
pub fn batch_interval(frame_rate: Option<(u32, u32)>, pts_step: Option<i64>) -> Duration {
    let from_rate = frame_rate
        .filter(|&(n, d)| n > 0 && d > 0)
        .map(|(n, d)| Duration::from_secs_f64(f64::from(d) / f64::from(n)));
    let from_step = pts_step
        .filter(|&s| s > 0)
        .map(|s| Duration::from_micros((s as u64).saturating_mul(1000) / 90));
    from_rate
        .or(from_step)
        .map_or(BATCH_MIN, |d| d.clamp(BATCH_MIN, BATCH_MAX))
}

/// The shortest batch: 50 wakeups a second at most.
pub const BATCH_MIN: Duration = Duration::from_millis(20);
/// The longest batch, whatever the frame rate: 50 ms of added latency at most.
pub const BATCH_MAX: Duration = Duration::from_millis(50);

/// What [`Ingest`] has counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    pub sessions: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Frames dropped while a session waited for its first keyframe.
    pub dropped_before_key: u64,
    /// Frames whose timestamps the timeline stage re-stamped or clamped.
    pub jumps: u64,
}

/// What a session offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SessionState {
    video: bool,
    audio: bool,
    /// Session timestamp of the first frame let out, and what is added to the session's
    /// timestamps.
    origin: Option<(i64, i64)>,
    /// Each track has let a frame out in this session (from then on the timeline alone decides).
    flowing: [bool; 2],
}

/// Frames of successive RTSP sessions → one continuous stream of media events.
///
/// Call [`Ingest::begin_session`] after each PLAY, then feed configurations and frames with
/// timestamps in 90 kHz relative to anything (each session's own clock). Events go to `out`.
#[derive(Debug)]
pub struct Ingest {
    timeline: Timeline,
    session: Option<SessionState>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    sent_video: Option<VideoConfig>,
    sent_audio: Option<AudioConfig>,
    started: bool,
    pending_break: bool,
    /// Where the next session's first frame lands: just after everything written so far.
    resume_at: i64,
    /// Last output DTS and typical step per track.
    last: [Option<i64>; 2],
    step: [i64; 2],
    /// Video DTS from PTS and the reorder delay.
    dts: DtsClock,
    stats: IngestStats,
}

impl Default for Ingest {
    fn default() -> Self {
        Self::new()
    }
}

fn idx(t: Track) -> usize {
    (t == Track::Audio) as usize
}

impl Ingest {
    pub fn new() -> Self {
        Ingest {
            // RTP timestamps reach river already extended to 64 bits by the client: no wraps.
            timeline: Timeline::new(TimelineConfig::new(None)),
            session: None,
            video: None,
            audio: None,
            sent_video: None,
            sent_audio: None,
            started: false,
            pending_break: false,
            resume_at: 0,
            last: [None; 2],
            step: [CLOCK_HZ / 30, 0],
            dts: DtsClock::new(false).following_jumps(),
            stats: IngestStats::default(),
        }
    }

    pub fn stats(&self) -> IngestStats {
        self.stats
    }

    /// The output time reached so far (90 kHz, from 0): the end of the last frame written.
    pub fn position(&self) -> i64 {
        self.resume_at
    }

    /// A new session is playing with these tracks. Every session after the first is a break in
    /// the output, marked before its first frame.
    pub fn begin_session(&mut self, video: bool, audio: bool) {
        self.stats.sessions += 1;
        if self.started {
            self.pending_break = true;
        }
        self.session = Some(SessionState {
            video,
            audio,
            origin: None,
            flowing: [false; 2],
        });
        self.dts.rejoin();
    }

    /// The session's video configuration (from the SDP, or new in-band parameter sets).
    pub fn video_config(&mut self, cfg: VideoConfig) {
        if self.video.as_ref().map(|v| v.codec) != Some(cfg.codec) {
            self.dts = DtsClock::for_config(&cfg).following_jumps();
        } else {
            self.dts.configure(&cfg);
        }
        self.video = Some(cfg);
    }

    /// The session's audio configuration.
    pub fn audio_config(&mut self, cfg: AudioConfig) {
        if cfg.sample_rate > 0 {
            self.step[1] = cfg.frame_duration();
        }
        self.audio = Some(cfg);
    }

    /// One frame: `ts` in 90 kHz on the session's clock; video `data` is AVCC (4-byte lengths).
    /// Returns whether it was let out.
    pub fn frame(
        &mut self,
        track: Track,
        ts: i64,
        keyframe: bool,
        data: Bytes,
        out: &mut Vec<MediaEvent>,
    ) -> bool {
        let Some(s) = self.session.as_mut() else {
            return false;
        };
        let configured = match track {
            Track::Video => self.video.is_some(),
            Track::Audio => self.audio.is_some(),
        };
        let (origin, offset) = match s.origin {
            Some(o) => o,
            None => {
                // A session starts at a video keyframe (or at its first audio frame when it has no
                // video), so the output joins cleanly.
                let starts = configured
                    && match track {
                        Track::Video => keyframe,
                        Track::Audio => !s.video,
                    };
                if !starts {
                    self.stats.dropped_before_key += 1;
                    return false;
                }
                // Video's first keyframe decodes at the resume point and shows the reorder delay
                // later (its DTS lies that much before its PTS); audio moves with it.
                let delay = if s.video { self.dts.delay() } else { 0 };
                let o = (ts, self.resume_at - ts + delay);
                s.origin = Some(o);
                o
            }
        };
        let i = idx(track);
        if (ts < origin && !s.flowing[i]) || !configured {
            // Audio from before the join point, or a track whose configuration never came.
            self.stats.dropped_before_key += 1;
            return false;
        }
        s.flowing[i] = true;
        let (has_video, has_audio) = (s.video, s.audio);
        if !self.started {
            self.started = true;
            out.push(MediaEvent::Tracks {
                video: has_video && self.video.is_some(),
                audio: has_audio && self.audio.is_some(),
            });
        }
        match track {
            Track::Video if self.sent_video != self.video => {
                self.sent_video = self.video.clone();
                out.extend(self.video.clone().map(MediaEvent::Video));
            }
            Track::Audio if self.sent_audio != self.audio => {
                self.sent_audio = self.audio.clone();
                out.extend(self.audio.clone().map(MediaEvent::Audio));
            }
            _ => {}
        }
        let mut broke = std::mem::take(&mut self.pending_break);
        let t = ts + offset;
        let dts = match track {
            Track::Video => self.dts.stamp(t, keyframe),
            Track::Audio => t,
        };
        let mut f = Frame {
            track,
            codec: match track {
                Track::Video => self.video.as_ref().map_or(Codec::H264, |v| v.codec.codec()),
                Track::Audio => Codec::Aac,
            },
            dts,
            pts: t,
            keyframe: track == Track::Audio || keyframe,
            data,
        };
        if let Some(j) = self.timeline.process(&mut f) {
            self.stats.jumps += 1;
            broke |= !j.follows_other_track;
        }
        if broke {
            out.push(MediaEvent::Discontinuity);
        }
        if let Some(prev) = self.last[i] {
            let step = f.dts - prev;
            if track == Track::Video && step > 0 && step <= CLOCK_HZ {
                self.step[0] = step;
            }
        }
        self.last[i] = Some(f.dts);
        self.resume_at = self.resume_at.max(f.dts + self.step[i].max(1));
        match track {
            Track::Video => self.stats.video_frames += 1,
            Track::Audio => self.stats.audio_frames += 1,
        }
        out.push(MediaEvent::Frame(f));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Baseline H.264 (no B-frames: DTS = PTS).
    fn vcfg() -> VideoConfig {
        VideoConfig {
            codec: crate::media::VideoCodec::H264,
            vps: vec![],
            sps: vec![Bytes::from_static(b"\x67\x42sps")],
            pps: vec![Bytes::from_static(b"\x68pps")],
            width: 320,
            height: 240,
            frame_rate: None,
        }
    }

    fn acfg() -> AudioConfig {
        AudioConfig {
            asc: Bytes::from_static(&[0x11, 0x90]),
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
        }
    }

    fn frames(evs: &[MediaEvent]) -> Vec<(Track, i64, bool)> {
        evs.iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some((f.track, f.dts, f.keyframe)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn url_credentials_are_split_and_redacted() {
        let u = CameraUrl::parse("rtsp://ad%40min:p%3Ass@cam.lan:8554/live?x=1").unwrap();
        assert_eq!(u.user.as_deref(), Some("ad@min"));
        assert_eq!(u.password.as_deref(), Some("p:ss"));
        assert_eq!(u.url.as_str(), "rtsp://cam.lan:8554/live?x=1");
        assert!(!u.redacted().contains("p%3Ass") && u.redacted().contains("ad%40min@"));
        assert!(!format!("{u:?}").contains("p:ss"));
        let u = CameraUrl::parse("rtsp://cam/x").unwrap();
        assert_eq!((u.user, u.password), (None, None));
        for bad in [
            "http://cam/x",
            "rtsp://",
            "not a url",
            "rtsp://u:hunter2@/x",
        ] {
            let e = CameraUrl::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        }
        assert!(CameraUrl::parse(&format!("rtsp://h/{}", "a".repeat(5000))).is_err());
        assert_eq!(
            CameraUrl::parse("rtsp://u:hunter2@/x"),
            Err(CameraUrlError::Invalid {
                url: "rtsp://u@/x".into(),
                reason: "empty host".into()
            })
        );
        let e = CameraUrl::parse("http://cam/x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported URL scheme \"http\" in \"http://cam/x\": river-rtsp-pull speaks rtsp://"
        );
        assert_eq!(
            redact_str("rtsp://u:hunter2@h:1/p@x"),
            "rtsp://u@h:1/p@x".to_string()
        );
        assert_eq!(redact_str("no scheme"), "no scheme");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz%"), "A%zz%");
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let got: Vec<u64> = (0..9).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }

    #[test]
    fn starts_at_a_keyframe_with_configs_and_zero_time() {
        let mut ing = Ingest::new();
        let mut out = Vec::new();
        ing.begin_session(true, true);
        ing.video_config(vcfg());
        ing.audio_config(acfg());
        let d = Bytes::from_static(b"x");
        assert!(!ing.frame(Track::Video, 1000, false, d.clone(), &mut out));
        assert!(!ing.frame(Track::Audio, 1500, true, d.clone(), &mut out));
        assert!(ing.frame(Track::Video, 4000, true, d.clone(), &mut out));
        // Audio from before the keyframe is dropped, after it passes.
        assert!(!ing.frame(Track::Audio, 3900, true, d.clone(), &mut out));
        assert!(ing.frame(Track::Audio, 4100, true, d.clone(), &mut out));
        assert!(ing.frame(Track::Video, 7000, false, d.clone(), &mut out));
        assert!(matches!(
            out[0],
            MediaEvent::Tracks {
                video: true,
                audio: true
            }
        ));
        assert!(matches!(out[1], MediaEvent::Video(_)));
        assert_eq!(
            frames(&out),
            vec![
                (Track::Video, 0, true),
                (Track::Audio, 100, true),
                (Track::Video, 3000, false)
            ]
        );
        assert_eq!(ing.stats().dropped_before_key, 3);
        assert!(!out.iter().any(|e| matches!(e, MediaEvent::Discontinuity)));
    }

    #[test]
    fn a_new_session_continues_the_timeline_after_a_marked_break() {
        let mut ing = Ingest::new();
        let mut out = Vec::new();
        let d = Bytes::from_static(b"x");
        ing.begin_session(true, true);
        ing.video_config(vcfg());
        ing.audio_config(acfg());
        for k in 0..30 {
            ing.frame(
                Track::Video,
                500_000 + k * 3000,
                k == 0,
                d.clone(),
                &mut out,
            );
            ing.frame(Track::Audio, 500_000 + k * 1920, true, d.clone(), &mut out);
        }
        let end = ing.position();
        assert_eq!(end, 29 * 3000 + 3000);
        out.clear();
        // The camera restarted: its clock starts anywhere, possibly far back.
        ing.begin_session(true, true);
        ing.video_config(vcfg());
        ing.audio_config(acfg());
        assert!(!ing.frame(Track::Video, 10, false, d.clone(), &mut out));
        assert!(ing.frame(Track::Video, 3010, true, d.clone(), &mut out));
        assert!(ing.frame(Track::Audio, 3020, true, d.clone(), &mut out));
        assert!(ing.frame(Track::Video, 6010, false, d.clone(), &mut out));
        // Same configuration: not repeated; one break, marked before the first frame.
        assert!(matches!(out[0], MediaEvent::Discontinuity));
        assert_eq!(
            out.iter()
                .filter(|e| matches!(e, MediaEvent::Discontinuity))
                .count(),
            1
        );
        assert_eq!(
            frames(&out),
            vec![
                (Track::Video, end, true),
                (Track::Audio, end + 10, true),
                (Track::Video, end + 3000, false)
            ]
        );
        assert_eq!(ing.stats().sessions, 2);
    }

    #[test]
    fn audio_only_session_and_frames_without_session() {
        let mut ing = Ingest::new();
        let mut out = Vec::new();
        let d = Bytes::from_static(b"x");
        assert!(!ing.frame(Track::Audio, 0, true, d.clone(), &mut out));
        ing.begin_session(false, true);
        assert!(
            !ing.frame(Track::Audio, 0, true, d.clone(), &mut out),
            "no config yet"
        );
        ing.audio_config(acfg());
        assert!(ing.frame(Track::Audio, 77, true, d.clone(), &mut out));
        assert!(ing.frame(Track::Audio, 77 + 1920, true, d, &mut out));
        assert_eq!(
            frames(&out),
            vec![(Track::Audio, 0, true), (Track::Audio, 1920, true)]
        );
    }

    #[test]
    fn timestamps_stay_monotonic_when_the_camera_jumps() {
        let mut ing = Ingest::new();
        let mut out = Vec::new();
        let d = Bytes::from_static(b"x");
        ing.begin_session(true, false);
        ing.video_config(vcfg());
        let mut ts = 0i64;
        for k in 0..40 {
            // A backward step, a huge forward jump, a duplicate.
            ts += match k {
                10 => -90_000,
                20 => 3600 * 90_000,
                30 => 0,
                _ => 3000,
            };
            ing.frame(Track::Video, ts, k == 0, d.clone(), &mut out);
        }
        let f = frames(&out);
        assert_eq!(f.len(), 40);
        assert!(f.windows(2).all(|w| w[1].1 > w[0].1), "{f:?}");
        assert!(f.last().unwrap().1 < 60 * 90_000);
        assert!(out.iter().any(|e| matches!(e, MediaEvent::Discontinuity)));
    }

    #[test]
    fn b_frames_get_their_dts_from_the_reorder_delay() {
        // High profile without VUI (2 frames of reordering), 30 fps, in decoding order:
        // I0 P3 B1 B2 P6 B4 B5, then the next session's keyframe.
        let mut cfg = vcfg();
        cfg.sps = vec![Bytes::from_static(b"\x67\x64sps")];
        cfg.frame_rate = Some((30, 1));
        let mut ing = Ingest::new();
        let mut out = Vec::new();
        let d = Bytes::from_static(b"x");
        ing.begin_session(true, true);
        ing.video_config(cfg.clone());
        ing.audio_config(acfg());
        for (n, k) in [
            (0, true),
            (3, false),
            (1, false),
            (2, false),
            (6, false),
            (4, false),
            (5, false),
        ] {
            assert!(ing.frame(Track::Video, 1_000_000 + n * 3000, k, d.clone(), &mut out));
        }
        ing.frame(Track::Audio, 1_000_000, true, d.clone(), &mut out);
        let ts: Vec<(Track, i64, i64)> = out
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some((f.track, f.dts, f.pts)),
                _ => None,
            })
            .collect();
        // The keyframe decodes at 0 and shows 2 frames later; audio keeps its sync with it.
        let v = |dts: i64, n: i64| (Track::Video, dts, 6000 + n * 3000);
        assert_eq!(
            ts,
            [
                v(0, 0),
                v(3000, 3),
                v(6000, 1),
                v(9000, 2),
                v(12000, 6),
                v(15000, 4),
                v(18000, 5),
                (Track::Audio, 6000, 6000)
            ]
        );
        // A new session's keyframe decodes where the output stopped.
        let end = ing.position();
        ing.begin_session(true, false);
        ing.video_config(cfg);
        out.clear();
        assert!(ing.frame(Track::Video, 5, true, d, &mut out));
        let f = frames(&out);
        assert_eq!(f, [(Track::Video, end, true)]);
    }

    #[test]
    fn batches_last_one_frame_within_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(batch_interval(None, None), BATCH_MIN);
        assert_eq!(
            batch_interval(Some((30, 1)), None),
            Duration::from_secs_f64(1.0 / 30.0)
        );
        assert_eq!(batch_interval(Some((25, 1)), Some(1)), ms(40));
        assert_eq!(batch_interval(Some((60, 1)), None), BATCH_MIN);
        assert_eq!(batch_interval(Some((10, 1)), None), BATCH_MAX);
        assert_eq!(batch_interval(Some((0, 1)), Some(3600)), ms(40));
        assert_eq!(
            batch_interval(None, Some(3000)),
            Duration::from_micros(33_333)
        );
        assert_eq!(batch_interval(None, Some(-3000)), BATCH_MIN);
        assert_eq!(batch_interval(None, Some(i64::MAX)), BATCH_MAX);
    }
}
