//! [`HlsOut`]: media events to HLS: media segments (MPEG-TS or fMP4), LL-HLS parts, init
//! segments, and the media playlist that lists them. No I/O: it says what to store, publish and
//! delete ([`Output`]), and the caller does it, to files (river-hls-seg) or to memory.
//!
//! - Cuts come from the [`Segmenter`]; the playlist is a [`Playlist`], whose target duration is
//!   fixed when the first segment ends. Nothing is listed before that.
//! - fMP4: an init segment is written before the first segment and again when a track's
//!   configuration changes (a new SPS, another AAC configuration, a track that appears), and that
//!   change starts a new segment marked EXT-X-DISCONTINUITY. Each sample is held until the next
//!   sample of its track arrives, so its duration is exact (at a segment's end, the other track's
//!   last sample gets its track's usual duration); a fragment is written at every part
//!   (LL-HLS) or at least every [`FRAGMENT_TIME`] otherwise, so a segment is never held whole.
//! - LL-HLS: each part is also stored on its own, under a name from one counter for the whole
//!   stream, so the part named by EXT-X-PRELOAD-HINT is always the next part, whichever segment it
//!   falls in.
//! - EXT-X-PROGRAM-DATE-TIME: the wall clock is read once, at the first segment (the caller passes
//!   it in with each event), and the dates run on with the media time from there; a
//!   discontinuity anchors them again.
//! - Files that left the playlist are deleted once three target durations of media (and one more
//!   for the request in flight) have been listed since; init segments once no listed segment uses
//!   them.
//! - DVR retention ([`HlsOut::set_retention`], [`PlaylistKind::Archive`]): after each segment the
//!   oldest ones leave the playlist by age or size ([`crate::format::hls::retention`]) and are
//!   deleted as above; an earlier run's archive is picked up with [`HlsOut::resume`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::TsOut;
use crate::format::hls::retention::Limits;
use crate::format::hls::{Cut, Part, Playlist, PlaylistKind, Segment, Segmenter, SegmenterConfig};
use crate::format::mp4::{self, Sample, TrackRun};
use crate::media::{AudioConfig, Frame, MediaEvent, Track, VideoConfig, CLOCK_HZ};

/// A fragment of a non-LL fMP4 segment spans at most this much media (90 kHz): memory stays
/// bounded whatever the segment length.
pub const FRAGMENT_TIME: i64 = CLOCK_HZ;

/// fMP4 times are the source's plus this, as [`TsOut`]'s are, so a stream has the same
/// timestamps in either segment type and a DTS a little before the first never goes negative.
/// Buffers [`HlsOut::recycle`] keeps for the next batches.
pub const SPARE_BUFFERS: usize = 8;

const MP4_START: i64 = 126_000;

/// The segment container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentType {
    /// MPEG-TS segments.
    Ts,
    /// fMP4 (CMAF-style) segments with init segments.
    Fmp4,
}

impl SegmentType {
    /// The media segment file extension.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentType::Ts => "ts",
            SegmentType::Fmp4 => "m4s",
        }
    }
}

/// How to package.
#[derive(Debug, Clone)]
pub struct HlsConfig {
    pub segment_type: SegmentType,
    /// Cut rules; `part` set means LL-HLS (fMP4 only).
    pub segmenter: SegmenterConfig,
    pub kind: PlaylistKind,
    /// Part URIs are this followed by the part number and `.m4s`.
    pub part_prefix: String,
}

/// The wall clock when an event arrived: Unix milliseconds, and the offset of the time zone that
/// `--align` boundaries use (0 for UTC). EXT-X-PROGRAM-DATE-TIME uses `unix_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wall {
    pub unix_ms: i64,
    pub zone_offset_ms: i64,
}

/// Where segments are named: the caller knows what its store holds already.
pub trait Names {
    /// The URI, relative to the playlist, of segment `msn` whose first frame is at `date_ms`
    /// (wall clock, Unix ms). An `Err` stops the stream with that message.
    fn segment(&mut self, msn: u64, date_ms: i64, extension: &str) -> Result<String, String>;
}

/// What the caller should do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Store an init segment whole (before any segment that uses it is published).
    Init { uri: String, data: Bytes },
    /// A media segment begins.
    Open { uri: String },
    /// The next bytes of the open segment.
    Data(Bytes),
    /// Store a part whole (LL-HLS); its bytes also went to the open segment as [`Output::Data`].
    Part { uri: String, data: Bytes },
    /// The open segment is complete: publish it.
    Close { uri: String, duration: f64 },
    /// The playlist changed: publish [`HlsOut::playlist`]. `segment`: a segment was added (not
    /// only a part).
    Playlist { segment: bool },
    /// Delete this file: it left the playlist long enough ago.
    Remove { uri: String },
    /// Something for the log.
    Notice(Notice),
}

/// Events worth a line in the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// EXT-X-TARGETDURATION is fixed (and PART-TARGET, in LL-HLS).
    Target { secs: u64, part: Option<f64> },
    /// The GOP is longer than `--segment-time`: segments follow the keyframes, up to the target.
    LongGop { secs: f64 },
    /// A segment was cut without a keyframe to stay within the target (the `count`th so far).
    CutWithoutKeyframe { uri: String, count: u64 },
    /// A new init segment for a configuration change.
    NewInit { uri: String },
}

/// Why packaging stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HlsError {
    /// [`Names::segment`] refused.
    Name(String),
    /// The MPEG-TS muxer refused a frame.
    Mux(String),
    /// An earlier run's archive cannot be continued.
    Resume(String),
}

impl fmt::Display for HlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HlsError::Name(m) => write!(f, "naming a segment: {m}"),
            HlsError::Mux(m) => write!(f, "muxing: {m}"),
            HlsError::Resume(m) => write!(f, "continuing the archive: {m}"),
        }
    }
}

impl std::error::Error for HlsError {}

struct OpenSegment {
    uri: String,
    date_ms: i64,
    discontinuity: bool,
    map: Option<Arc<str>>,
    /// Bytes handed out so far.
    bytes: u64,
}

/// The fMP4 side: configurations, the init in force, held samples and the fragment in hand.
#[derive(Default)]
struct Fmp4 {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// The init segment in force, and whether a change needs a new one at the next segment.
    init: Option<Arc<str>>,
    init_dirty: bool,
    /// Each track's last frame, waiting for the next one's DTS.
    held: [Option<Frame>; 2],
    /// The samples of the fragment in hand, per track.
    run: [Vec<Sample>; 2],
    /// Each track's last sample duration (for the last sample of the stream).
    step: [i64; 2],
    sequence: u32,
}

fn idx(t: Track) -> usize {
    match t {
        Track::Video => 0,
        Track::Audio => 1,
    }
}

/// Media events to HLS; see the module docs.
pub struct HlsOut {
    cfg: HlsConfig,
    seg: Segmenter,
    playlist: Playlist,
    names: Box<dyn Names + Send>,
    ts: TsOut,
    mp4: Fmp4,
    /// TS bytes not yet handed out.
    buf: Vec<u8>,
    /// Buffers given back by [`HlsOut::recycle`].
    spare: Vec<Vec<u8>>,
    cur: Option<OpenSegment>,
    /// The next segment's media sequence number, and the next part's number.
    msn: u64,
    part_no: u64,
    /// The part in hand starts with a keyframe: its first video frame (its first frame, without
    /// video) is one; `None` until that frame came.
    part_independent: Option<bool>,
    /// The wall clock ↔ media time anchor of EXT-X-PROGRAM-DATE-TIME (the segmenter's clock).
    anchor: Option<(i64, i64)>,
    /// The first segment opened on audio leading the video: the anchor moves to the first video
    /// frame, where the segment's clock starts.
    lead: bool,
    has_video: bool,
    /// Media listed so far (s), and the files to delete once it reaches the first number.
    listed: f64,
    to_delete: VecDeque<(f64, String)>,
    target_told: bool,
    /// DVR retention, when set.
    retain: Option<Retainer>,
    /// The next segment starts a new run after [`HlsOut::resume`]: EXT-X-DISCONTINUITY.
    resumed: bool,
    /// The wall clock of the latest event (Unix ms), for retention by age.
    now_ms: i64,
    /// Segment dates are at least this: the end of a resumed archive.
    not_before_ms: i64,
}

impl HlsOut {
    pub fn new(cfg: HlsConfig, names: Box<dyn Names + Send>) -> Self {
        let fmp4 = cfg.segment_type == SegmentType::Fmp4;
        let low_latency = fmp4 && cfg.segmenter.part.is_some();
        let mut seg_cfg = cfg.segmenter;
        if fmp4 && !low_latency {
            // Fragments of at most FRAGMENT_TIME: the part machinery, unlisted.
            seg_cfg.part = Some(FRAGMENT_TIME.min(seg_cfg.target).max(1));
        }
        if !fmp4 {
            seg_cfg.part = None;
        }
        HlsOut {
            seg: Segmenter::new(seg_cfg),
            playlist: Playlist::new(cfg.kind, fmp4, low_latency),
            names,
            ts: TsOut::new(),
            mp4: Fmp4::default(),
            buf: Vec::with_capacity(1 << 20),
            spare: Vec::new(),
            cur: None,
            msn: 0,
            part_no: 0,
            part_independent: None,
            anchor: None,
            lead: false,
            has_video: true,
            listed: 0.0,
            to_delete: VecDeque::new(),
            target_told: false,
            retain: None,
            resumed: false,
            now_ms: 0,
            not_before_ms: i64::MIN,
            cfg,
        }
    }

    /// DVR retention (`--keep`, `--max-size`); for a [`PlaylistKind::Archive`] playlist, before
    /// the first event.
    pub fn set_retention(&mut self, limits: Limits) {
        debug_assert_eq!(self.cfg.kind, PlaylistKind::Archive);
        self.retain = Some(Retainer::new(limits));
    }

    /// The bytes of the files stored and not yet removed, with retention set.
    pub fn retained_bytes(&self) -> Option<u64> {
        self.retain.as_ref().map(Retainer::on_disk)
    }

    /// Picks up an earlier run's archive, before the first event: its segments whose files
    /// exist are listed again under their sequence numbers, retention applies to them at
    /// `now_ms`, and the next segment continues the numbering after a discontinuity. The
    /// parts the earlier run listed are deleted (its segments hold their bytes). Returns how
    /// many listed segments were left out because a file was missing.
    pub fn resume(
        &mut self,
        r: Resume,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<usize, HlsError> {
        if !self.cfg.kind.archive() {
            return Err(HlsError::Resume("only a DVR archive is picked up".into()));
        }
        let u = r.usable();
        if !u.segments.is_empty() && r.archive.fmp4() != self.fmp4() {
            let (was, now) = match self.fmp4() {
                true => ("MPEG-TS", "fMP4"),
                false => ("fMP4", "MPEG-TS"),
            };
            return Err(HlsError::Resume(format!(
                "its segments are {was}, these would be {now} (see --segment-type)"
            )));
        }
        self.now_ms = now_ms;
        if let Some(ret) = &mut self.retain {
            for (uri, bytes) in &r.sizes {
                ret.stored(uri, *bytes);
            }
        }
        self.msn = r.archive.next_msn();
        self.resumed = true;
        // What is on disk but no longer listed: the earlier run's parts, and the segments before
        // a missing one.
        let on_disk = |uri: &String| r.sizes.contains_key(uri);
        let mut parts: Vec<String> = r.archive.parts.into_iter().filter(on_disk).collect();
        let mut gone = u.lost;
        gone.retain(|s| on_disk(&s.uri));
        if u.segments.is_empty() {
            // Nothing to list: the playlist is rewritten with the first new segment.
            for g in gone {
                parts.extend(g.map.map(|m| m.to_string()).filter(on_disk));
                parts.push(g.uri);
            }
            for p in parts {
                self.remove(p, out);
            }
            return Ok(u.missing);
        }
        self.not_before_ms = u
            .segments
            .iter()
            .map(|s| s.date_ms + (s.duration * 1000.0).round() as i64)
            .max()
            .unwrap_or(i64::MIN);
        let target = r.archive.target;
        self.seg.floor_target(target);
        self.playlist.resume(
            target,
            u.media_sequence,
            u.discontinuity_sequence,
            u.segments,
        );
        let (g, p) = self.apply_retention();
        gone.extend(g);
        parts.extend(p);
        out.push(Output::Playlist { segment: true });
        self.retire(gone, parts, out);
        self.remove_due(out);
        Ok(u.missing)
    }

    pub fn playlist(&self) -> &Playlist {
        &self.playlist
    }

    fn fmp4(&self) -> bool {
        self.cfg.segment_type == SegmentType::Fmp4
    }

    fn low_latency(&self) -> bool {
        self.playlist.low_latency()
    }

    fn part_uri(&self, n: u64) -> String {
        format!("{}{n}.m4s", self.cfg.part_prefix)
    }

    /// One media event, and the wall clock when it arrived.
    pub fn event(
        &mut self,
        ev: &MediaEvent,
        now: Wall,
        out: &mut Vec<Output>,
    ) -> Result<(), HlsError> {
        match ev {
            MediaEvent::Tracks { video, .. } => {
                self.has_video = *video;
                self.seg.set_has_video(*video);
            }
            MediaEvent::Discontinuity => self.seg.discontinuity(),
            MediaEvent::Video(c) if self.fmp4() => {
                if self.mp4.video.as_ref() != Some(c) {
                    self.mp4.video = Some(c.clone());
                    self.config_changed(Track::Video);
                }
            }
            MediaEvent::Audio(c) if self.fmp4() => {
                if self.mp4.audio.as_ref() != Some(c) {
                    self.mp4.audio = Some(c.clone());
                    self.config_changed(Track::Audio);
                }
            }
            MediaEvent::Video(_) | MediaEvent::Audio(_) => {}
            MediaEvent::Frame(f) => return self.frame(f, now, out),
        }
        if !self.fmp4() {
            self.ts.event(ev, &mut self.buf).map_err(HlsError::Mux)?;
        }
        Ok(())
    }

    fn config_changed(&mut self, track: Track) {
        self.mp4.init_dirty = true;
        self.seg.cut_before_next(track);
    }

    fn frame(&mut self, f: &Frame, now: Wall, out: &mut Vec<Output>) -> Result<(), HlsError> {
        if self.fmp4() {
            let (known, i) = match f.track {
                Track::Video => (self.mp4.video.is_some(), 0),
                Track::Audio => (self.mp4.audio.is_some(), 1),
            };
            if !known {
                return Ok(());
            }
            // The frame before this one of its track now has its duration; it belongs to the
            // part that may end here.
            if let Some(prev) = self.mp4.held[i].take() {
                let d = f.dts - prev.dts;
                let d = if d > 0 && d <= CLOCK_HZ {
                    d
                } else {
                    self.mp4.step[i]
                };
                self.mp4.step[i] = d;
                self.push_sample(&prev, d);
            }
        }
        self.now_ms = now.unix_ms;
        // Dates never go back before a resumed archive's end (its run may have been fed faster
        // than real time, or the clock stepped back): names and ages stay in order.
        let date_now = now.unix_ms.max(self.not_before_ms);
        let local = now.unix_ms + now.zone_offset_ms;
        let cut = self.seg.frame(f.track, f.keyframe, f.dts, f.pts, local);
        match cut {
            Cut::Continue => {}
            Cut::Part { ended, .. } => {
                self.end_part(ended, out);
                self.part_independent = None;
            }
            Cut::Segment {
                ended,
                last_part,
                discontinuity,
                forced,
                ..
            } => {
                if let Some(d) = ended {
                    // The other track's last frame ends this segment too, with its usual
                    // duration: a segment holds its own time span, and the next one starts with
                    // its own frames.
                    self.flush_held();
                    self.end_part(last_part.unwrap_or(0.0), out);
                    self.close_segment(d, out);
                }
                self.open_segment(f, discontinuity, date_now, out)?;
                self.part_independent = None;
                if forced {
                    if let Some(c) = &self.cur {
                        out.push(Output::Notice(Notice::CutWithoutKeyframe {
                            uri: c.uri.clone(),
                            count: self.seg.forced_cuts(),
                        }));
                    }
                }
            }
        }
        if self.lead && self.cut_point(f) {
            self.lead = false;
            self.anchor = Some((date_now, self.seg.segment_start().unwrap_or(f.dts)));
            if let Some(c) = &mut self.cur {
                c.date_ms = date_now;
                self.playlist
                    .open(c.date_ms, c.discontinuity, c.map.clone());
            }
        }
        if self.part_independent.is_none() && self.cut_point(f) {
            self.part_independent = Some(f.keyframe);
        }
        if let Some(secs) = self.seg.long_gop() {
            out.push(Output::Notice(Notice::LongGop { secs }));
        }
        if self.fmp4() {
            self.mp4.held[idx(f.track)] = Some(f.clone());
        } else {
            self.ts
                .event(&MediaEvent::Frame(f.clone()), &mut self.buf)
                .map_err(HlsError::Mux)?;
        }
        Ok(())
    }

    /// Every held frame goes into the fragment in hand with its track's usual duration (at a
    /// segment's end, and the stream's).
    fn flush_held(&mut self) {
        if !self.fmp4() {
            return;
        }
        for i in 0..2 {
            if let Some(prev) = self.mp4.held[i].take() {
                let d = if self.mp4.step[i] > 0 {
                    self.mp4.step[i]
                } else {
                    match (i, &self.mp4.audio) {
                        (1, Some(a)) => a.frame_duration(),
                        _ => 0,
                    }
                };
                self.push_sample(&prev, d);
            }
        }
    }

    /// Whether a part can start before `f`: a video frame, or any audio frame without video.
    fn cut_point(&self, f: &Frame) -> bool {
        match f.track {
            Track::Video => self.has_video,
            Track::Audio => !self.has_video,
        }
    }

    fn push_sample(&mut self, f: &Frame, duration: i64) {
        self.mp4.run[idx(f.track)].push(Sample {
            dts: f.dts + MP4_START,
            pts: f.pts + MP4_START,
            duration,
            keyframe: f.keyframe || f.track == Track::Audio,
            data: f.data.clone(),
        });
    }

    /// The fragment of the samples in hand (empty when there are none).
    fn fragment(&mut self) -> Vec<u8> {
        if self.mp4.run.iter().all(Vec::is_empty) {
            return Vec::new();
        }
        let mut tracks = Vec::with_capacity(2);
        let mut id = 1;
        if self.mp4.video.is_some() {
            tracks.push(TrackRun {
                track_id: id,
                timescale: CLOCK_HZ as u32,
                video: true,
                samples: &self.mp4.run[0],
            });
            id += 1;
        }
        if let Some(a) = &self.mp4.audio {
            tracks.push(TrackRun {
                track_id: id,
                timescale: mp4::audio_timescale(a.sample_rate),
                video: false,
                samples: &self.mp4.run[1],
            });
        }
        self.mp4.sequence += 1;
        let data = mp4::fragment(self.mp4.sequence, &tracks);
        for r in &mut self.mp4.run {
            r.clear();
        }
        data
    }

    /// The part (or, without LL-HLS, the fragment) in hand ends.
    fn end_part(&mut self, duration: f64, out: &mut Vec<Output>) {
        if !self.fmp4() || self.cur.is_none() {
            return;
        }
        let data = Bytes::from(self.fragment());
        if let Some(c) = &mut self.cur {
            c.bytes += data.len() as u64;
        }
        if !self.low_latency() {
            if !data.is_empty() {
                out.push(Output::Data(data));
            }
            return;
        }
        let uri = self.part_uri(self.part_no);
        self.part_no += 1;
        if let Some(r) = &mut self.retain {
            r.stored(&uri, data.len() as u64);
        }
        out.push(Output::Data(data.clone()));
        out.push(Output::Part {
            uri: uri.clone(),
            data,
        });
        if let Some(p) = self.seg.part_target() {
            self.playlist.set_part_target(p);
        }
        let hint = Some(self.part_uri(self.part_no));
        self.playlist.push_part(
            Part {
                uri,
                duration,
                independent: self.part_independent.unwrap_or(false),
            },
            hint,
        );
        if self.playlist.target_duration().is_some() {
            out.push(Output::Playlist { segment: false });
        }
    }

    fn open_segment(
        &mut self,
        f: &Frame,
        discontinuity: bool,
        now_ms: i64,
        out: &mut Vec<Output>,
    ) -> Result<(), HlsError> {
        if self.anchor.is_none() && !self.cut_point(f) {
            // The first segment opens on audio that leads the video; its clock, and so its date,
            // starts at the first video frame (see `frame`).
            self.lead = true;
        }
        // The date follows the segmenter's clock, as EXTINF does (with the DTS an open-GOP CRA's
        // segment was dated 2 frames early: x265's CRA has DTS = PTS − 4 frames, its IDR PTS − 2).
        let t = self.seg.segment_start().unwrap_or(f.dts);
        // The first segment after a restart follows another run's.
        let discontinuity = discontinuity || std::mem::take(&mut self.resumed);
        if discontinuity || self.anchor.is_none() {
            self.anchor = Some((now_ms, t));
        }
        let (wall0, t0) = self.anchor.unwrap_or((now_ms, t));
        let date_ms = wall0 + (t - t0) / (CLOCK_HZ / 1000);
        let ext = self.cfg.segment_type.extension();
        let uri = self
            .names
            .segment(self.msn, date_ms, ext)
            .map_err(HlsError::Name)?;
        self.msn += 1;
        let mut map = None;
        if self.fmp4() {
            if self.mp4.init.is_none() || self.mp4.init_dirty {
                let stem = uri.strip_suffix(".m4s").unwrap_or(&uri);
                let init_uri = format!("{stem}-init.mp4");
                let data = mp4::init_segment(self.mp4.video.as_ref(), self.mp4.audio.as_ref());
                if self.mp4.init.is_some() {
                    out.push(Output::Notice(Notice::NewInit {
                        uri: init_uri.clone(),
                    }));
                }
                if let Some(r) = &mut self.retain {
                    r.stored(&init_uri, data.len() as u64);
                }
                out.push(Output::Init {
                    uri: init_uri.clone(),
                    data: Bytes::from(data),
                });
                self.mp4.init = Some(Arc::from(init_uri));
                self.mp4.init_dirty = false;
            }
            map = self.mp4.init.clone();
        }
        out.push(Output::Open { uri: uri.clone() });
        let keyframe = f.track == Track::Video && f.keyframe;
        if self.cfg.segment_type == SegmentType::Ts && !keyframe {
            // A segment that does not start on a video keyframe brings its own PAT and PMT.
            self.ts.write_tables(&mut self.buf);
        }
        self.playlist.open(date_ms, discontinuity, map.clone());
        self.cur = Some(OpenSegment {
            uri,
            date_ms,
            discontinuity,
            map,
            bytes: 0,
        });
        Ok(())
    }

    fn close_segment(&mut self, duration: f64, out: &mut Vec<Output>) {
        self.flush(out);
        let Some(s) = self.cur.take() else { return };
        out.push(Output::Close {
            uri: s.uri.clone(),
            duration,
        });
        if let Some(t) = self.seg.target_duration() {
            self.playlist.set_target(t);
            if !self.target_told {
                self.target_told = true;
                out.push(Output::Notice(Notice::Target {
                    secs: t,
                    part: self.low_latency().then(|| self.seg.part_target()).flatten(),
                }));
            }
        }
        if let Some(r) = &mut self.retain {
            r.stored(&s.uri, s.bytes);
        }
        let (mut gone, mut parts) = self.playlist.push(Segment {
            uri: s.uri,
            duration,
            date_ms: s.date_ms,
            discontinuity: s.discontinuity,
            map: s.map,
            parts: Vec::new(),
        });
        let (g, p) = self.apply_retention();
        gone.extend(g);
        parts.extend(p);
        out.push(Output::Playlist { segment: true });
        self.listed += duration;
        self.retire(gone, parts, out);
        self.remove_due(out);
    }

    /// Files that left the playlist stay this much listed media (seconds) longer.
    fn grace(&self) -> f64 {
        4.0 * self.playlist.target_duration().unwrap_or(1) as f64
    }

    /// Retention: the oldest segments that leave the playlist now, and their listed parts.
    fn apply_retention(&mut self) -> (Vec<Segment>, Vec<String>) {
        let Some(r) = &self.retain else {
            return (Vec::new(), Vec::new());
        };
        let n = r.to_drop(&self.playlist, &self.to_delete, self.grace(), self.now_ms);
        self.playlist.drop_oldest(n)
    }

    /// Schedules the deletion of what left the playlist, after the grace period.
    fn retire(&mut self, gone: Vec<Segment>, parts: Vec<String>, out: &mut Vec<Output>) {
        let when = self.listed + self.grace();
        // An init segment leaves with the last listed segment that used it.
        let still: Option<Arc<str>> = self.playlist.segments().next().and_then(|s| s.map.clone());
        for g in &gone {
            if let Some(m) = &g.map {
                if still.as_deref() != Some(&**m) && self.mp4.init.as_deref() != Some(&**m) {
                    self.schedule(when, m.to_string());
                }
            }
        }
        for g in gone {
            self.schedule(when, g.uri);
        }
        for p in parts {
            self.schedule(when, p);
        }
        // Retention by size: the oldest leavers go early rather than the disk overflow.
        let early = self
            .retain
            .as_ref()
            .map_or(0, |r| r.to_expire(&self.to_delete));
        for _ in 0..early {
            if let Some((_, uri)) = self.to_delete.pop_front() {
                self.remove(uri, out);
            }
        }
    }

    /// Removes the files whose grace period is over.
    fn remove_due(&mut self, out: &mut Vec<Output>) {
        while let Some((t, _)) = self.to_delete.front() {
            if *t > self.listed {
                break;
            }
            if let Some((_, uri)) = self.to_delete.pop_front() {
                self.remove(uri, out);
            }
        }
    }

    fn remove(&mut self, uri: String, out: &mut Vec<Output>) {
        if let Some(r) = &mut self.retain {
            r.removed(&uri);
        }
        out.push(Output::Remove { uri });
    }

    fn schedule(&mut self, when: f64, uri: String) {
        if !self.to_delete.iter().any(|(_, u)| *u == uri) {
            self.to_delete.push_back((when, uri));
        }
    }

    /// Gives back a buffer an [`Output::Data`] was handed out in, once its bytes are written:
    /// the next batches are muxed into it instead of fresh memory (a fresh 1 MiB buffer per read
    /// is a page fault per 4 KiB written). At most [`SPARE_BUFFERS`] are kept.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && buf.capacity() >= 1 << 20 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Hands out the MPEG-TS bytes muxed so far (call after each batch of events).
    pub fn flush(&mut self, out: &mut Vec<Output>) {
        if let Some(c) = self.cur.as_mut().filter(|_| !self.buf.is_empty()) {
            c.bytes += self.buf.len() as u64;
            let next = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(1 << 20));
            out.push(Output::Data(Bytes::from(std::mem::replace(
                &mut self.buf,
                next,
            ))));
        }
    }

    /// The stream ended: the segment in hand is finished, the playlist ends, and every file
    /// waiting for deletion may go: [`HlsOut::end`], then [`HlsOut::remove_pending`].
    pub fn finish(&mut self, out: &mut Vec<Output>) {
        self.end(out);
        self.remove_pending(out);
    }

    /// The stream ended: the segment in hand is finished and the playlist ends. The files that
    /// left it stay until [`HlsOut::remove_pending`]: a server still answering for the ended
    /// stream, or a cache in front of it, may have handed out a playlist that names them.
    pub fn end(&mut self, out: &mut Vec<Output>) {
        self.flush_held();
        if let Some((d, last_part)) = self.seg.finish() {
            self.end_part(last_part, out);
            self.close_segment(d, out);
        }
        for uri in self.playlist.end() {
            self.schedule(0.0, uri);
        }
        out.push(Output::Playlist { segment: true });
    }

    /// Removes every file waiting out its grace period (once nothing serves the stream).
    pub fn remove_pending(&mut self, out: &mut Vec<Output>) {
        while let Some((_, uri)) = self.to_delete.pop_front() {
            self.remove(uri, out);
        }
    }
}

mod retain;
pub use retain::Resume;
use retain::Retainer;

#[cfg(test)]
mod tests;
