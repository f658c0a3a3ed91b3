//! From bytes of any supported container to [`MediaEvent`]s and back, as push stages.
//!
//! - [`detect`] tells FLV, MPEG-TS and H.264 Annex B apart from the first bytes.
//! - [`Demux`] turns input bytes into clean media events: it bridges the container parsers of
//!   [`crate::format`] to the codec layer of [`crate::codec`], runs every frame through the
//!   [`Timeline`], and holds the stream back (bounded) until each announced track has its
//!   configuration and the video can start on a keyframe.
//! - [`TsOut`] and [`FlvOut`] turn media events into MPEG-TS or FLV bytes.
//!
//! Nothing here does I/O; the binaries move the bytes.

use bytes::{Bytes, BytesMut};

use crate::codec::{aac, h264};
use crate::error::Diag;
use crate::format::{flv, ts};
use crate::media::{AudioConfig, Frame, MediaEvent, StreamFormat, Track, VideoConfig, CLOCK_HZ};
use crate::timeline::{Timeline, TimelineConfig, WRAP_FLV, WRAP_TS};

/// How many bytes detection looks at: enough to see three TS sync bytes 188 apart from any start
/// offset within the first packet.
const DETECT_LIMIT: usize = 188 * 3 + 188;

/// Detects the container from the first bytes. `None` means: not enough bytes yet to tell.
/// The answer depends only on the first [`DETECT_LIMIT`] bytes (or on all of a shorter input at
/// `at_eof`), never on how they arrived.
pub fn detect(prefix: &[u8], at_eof: bool) -> Option<StreamFormat> {
    if prefix.starts_with(b"FLV") {
        return Some(StreamFormat::Flv);
    }
    // A start code at the very beginning means Annex B (TS packets start with 0x47; a TS cut
    // exactly at a PES header is the rare exception, and --input-format ts covers it).
    if starts_like_annexb(prefix) {
        return Some(StreamFormat::AnnexB);
    }
    if prefix.len() < DETECT_LIMIT && !at_eof {
        return None;
    }
    let p = &prefix[..prefix.len().min(DETECT_LIMIT)];
    // TS: a sync byte followed by sync bytes 188 and 376 later (one later for a short input).
    let need = if p.len() > 188 * 2 { 2 } else { 1 };
    for start in 0..188usize {
        if start + 188 * need >= p.len() {
            break;
        }
        if (0..=need).all(|k| p[start + 188 * k] == 0x47) {
            return Some(StreamFormat::Ts);
        }
    }
    Some(StreamFormat::AnnexB)
}

fn starts_like_annexb(p: &[u8]) -> bool {
    p.starts_with(&[0, 0, 1]) || p.starts_with(&[0, 0, 0, 1])
}

/// The input side: bytes in, clean media events out.
pub struct Demux {
    forced: Option<StreamFormat>,
    fps: Option<(u32, u32)>,
    max_gap: i64,
    pending: Vec<u8>,
    inner: Option<Inner>,
    timeline: Timeline,
    gate: Gate,
    /// Bytes pushed so far (offsets of diagnostics that are not the parsers' own).
    consumed: u64,
    scratch: Vec<MediaEvent>,
}

enum Inner {
    Flv(FlvInput),
    Ts(TsInput),
    H264(h264::AnnexBReader),
}

impl Demux {
    /// `forced` skips detection ([`StreamFormat::Opaque`] reads as Annex B); `fps` is the Annex B frame-rate override; `max_gap` is the timeline's
    /// forward-jump threshold in seconds.
    pub fn new(forced: Option<StreamFormat>, fps: Option<(u32, u32)>, max_gap: f64) -> Self {
        let max_gap = (max_gap.max(0.0) * CLOCK_HZ as f64) as i64;
        Demux {
            forced,
            fps,
            max_gap,
            pending: Vec::new(),
            inner: None,
            timeline: Timeline::new(TimelineConfig::new(None)),
            gate: Gate::default(),
            consumed: 0,
            scratch: Vec::new(),
        }
    }

    /// The detected (or forced) input format, once known.
    pub fn format(&self) -> Option<StreamFormat> {
        self.inner.as_ref().map(|i| match i {
            Inner::Flv(_) => StreamFormat::Flv,
            Inner::Ts(_) => StreamFormat::Ts,
            Inner::H264(_) => StreamFormat::AnnexB,
        })
    }

    /// The timeline's repair counters.
    pub fn repairs(&self) -> crate::timeline::Repairs {
        self.timeline.repairs()
    }

    fn start(&mut self, fmt: StreamFormat) {
        let wrap = match fmt {
            StreamFormat::Flv => Some(WRAP_FLV),
            StreamFormat::Ts => Some(WRAP_TS),
            StreamFormat::AnnexB | StreamFormat::Opaque => None,
        };
        let mut cfg = TimelineConfig::new(wrap);
        cfg.max_gap = self.max_gap;
        self.timeline = Timeline::new(cfg);
        self.inner = Some(match fmt {
            StreamFormat::Flv => Inner::Flv(FlvInput::default()),
            StreamFormat::Ts => Inner::Ts(TsInput::default()),
            StreamFormat::AnnexB | StreamFormat::Opaque => {
                self.gate.announce(true, false);
                Inner::H264(h264::AnnexBReader::new(self.fps))
            }
        });
    }

    /// Pushes input bytes. Clean events are appended to `out`, problems to `diags`. An `Err` means
    /// the input cannot be continued.
    pub fn push(
        &mut self,
        data: &[u8],
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        self.consumed += data.len() as u64;
        if self.inner.is_none() {
            self.pending.extend_from_slice(data);
            let fmt = match self.forced {
                Some(f) => f,
                None => match detect(&self.pending, false) {
                    Some(f) => f,
                    None => return Ok(()),
                },
            };
            self.start(fmt);
            let buf = std::mem::take(&mut self.pending);
            return self.feed(&buf, out, diags, false);
        }
        self.feed(data, out, diags, false)
    }

    /// Ends the input: flushes whatever the parsers and the gate still hold.
    pub fn finish(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) -> Result<(), Diag> {
        if self.inner.is_none() {
            if self.pending.is_empty() {
                return Ok(());
            }
            let fmt = self
                .forced
                .or_else(|| detect(&self.pending, true))
                .unwrap_or(StreamFormat::AnnexB);
            self.start(fmt);
            let buf = std::mem::take(&mut self.pending);
            self.feed(&buf, out, diags, false)?;
        }
        self.feed(&[], out, diags, true)
    }

    /// Stops early (a stop signal): the frames the start gate holds are let out, but units the
    /// parsers are still collecting (a video PES waiting for the next one, an access unit waiting
    /// for the next start code, a tag still arriving) are dropped, since their bytes may be
    /// incomplete. Returns how many bytes were pushed in all.
    pub fn stop(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) -> u64 {
        if self.inner.is_some() {
            self.gate.flush(out, diags, self.consumed);
        }
        self.consumed
    }

    fn feed(
        &mut self,
        data: &[u8],
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
        eof: bool,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.scratch);
        evs.clear();
        let res = match self.inner.as_mut() {
            Some(Inner::Flv(f)) => f.push(data, eof, &mut evs, diags),
            Some(Inner::Ts(t)) => t.push(data, eof, &mut evs, diags),
            Some(Inner::H264(r)) => {
                if eof {
                    r.finish(&mut evs, diags);
                } else {
                    r.push(data, &mut evs, diags);
                }
                Ok(())
            }
            None => Ok(()),
        };
        for ev in evs.drain(..) {
            match ev {
                MediaEvent::Frame(mut f) => {
                    if let Some(j) = self.timeline.process(&mut f) {
                        // One break in the source shows on both tracks: mark it once.
                        if !j.follows_other_track {
                            self.gate
                                .push(MediaEvent::Discontinuity, out, diags, self.consumed);
                        }
                        diags.push(Diag::new(
                            self.consumed,
                            format!(
                                "{:?} timestamps jumped by {:.3} s; re-stamped to continue the timeline",
                                j.track,
                                j.step as f64 / CLOCK_HZ as f64
                            ),
                        ));
                    }
                    self.gate
                        .push(MediaEvent::Frame(f), out, diags, self.consumed);
                }
                other => self.gate.push(other, out, diags, self.consumed),
            }
        }
        if eof {
            self.gate.flush(out, diags, self.consumed);
        }
        self.scratch = evs;
        res
    }
}

/// Holds the start of a stream back until every announced track has its configuration and a video
/// keyframe has arrived, so muxers can write complete headers and the output starts decodable.
/// Bounded: after [`Gate::MAX_WAIT`] of media, or [`Gate::MAX_BYTES`], it gives up waiting for a
/// missing track and lets the stream through without it.
#[derive(Default)]
struct Gate {
    announced: Option<(bool, bool)>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    held: Vec<MediaEvent>,
    held_bytes: usize,
    open: bool,
    dropped_video: u64,
    dropped_unconfigured: [u64; 2],
    /// Subtracted from every timestamp that leaves the gate: the earliest DTS held at release, so
    /// output starts at zero.
    origin: i64,
}

impl Gate {
    const MAX_WAIT: i64 = 3 * CLOCK_HZ;
    const MAX_BYTES: usize = 32 << 20;

    fn announce(&mut self, video: bool, audio: bool) {
        self.announced = Some((video, audio));
    }

    fn push(&mut self, ev: MediaEvent, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>, at: u64) {
        match &ev {
            MediaEvent::Tracks { video, audio } => {
                self.announce(*video, *audio);
                if !self.open {
                    return;
                }
            }
            MediaEvent::Video(c) => self.video = Some(c.clone()),
            MediaEvent::Audio(c) => self.audio = Some(c.clone()),
            MediaEvent::Discontinuity => {
                // Before the stream starts there is nothing to break.
                if !self.open {
                    return;
                }
            }
            MediaEvent::Frame(f) => {
                let configured = match f.track {
                    Track::Video => self.video.is_some(),
                    Track::Audio => self.audio.is_some(),
                };
                if !configured {
                    let n = &mut self.dropped_unconfigured[(f.track == Track::Audio) as usize];
                    if *n == 0 {
                        diags.push(Diag::new(
                            at,
                            format!("{:?} frames before the track's configuration (SPS/PPS or AudioSpecificConfig) are dropped", f.track),
                        ));
                    }
                    *n += 1;
                    return;
                }
            }
        }
        if self.open {
            out.push(self.rebase(ev));
            return;
        }
        if let MediaEvent::Frame(f) = &ev {
            if f.track == Track::Video && !f.keyframe && !self.held.iter().any(is_video_keyframe) {
                if self.dropped_video == 0 {
                    diags.push(Diag::new(at, "video before the first keyframe is dropped"));
                }
                self.dropped_video += 1;
                return;
            }
            self.held_bytes += f.data.len();
        }
        let is_frame = matches!(ev, MediaEvent::Frame(_));
        self.held.push(ev);
        if !is_frame {
            // A configuration precedes its frames: decide when the frame itself is held.
            return;
        }
        if self.ready() {
            self.release(out);
        } else if self.overdue() {
            let (v, a) = self.announced.unwrap_or((true, true));
            let missing = match (v && self.video.is_none(), a && self.audio.is_none()) {
                (true, true) => "video and audio",
                (true, false) => "video",
                _ => "audio",
            };
            diags.push(Diag::new(
                at,
                format!(
                    "no {missing} configuration after {} s of input; continuing without it",
                    Self::MAX_WAIT / CLOCK_HZ
                ),
            ));
            self.release(out);
        }
    }

    fn rebase(&self, ev: MediaEvent) -> MediaEvent {
        match ev {
            MediaEvent::Frame(mut f) => {
                f.dts -= self.origin;
                f.pts -= self.origin;
                MediaEvent::Frame(f)
            }
            other => other,
        }
    }

    fn ready(&self) -> bool {
        let (want_v, want_a) = match self.announced {
            Some(a) => a,
            None => return false,
        };
        let v_ok = !want_v || (self.video.is_some() && self.held.iter().any(is_video_keyframe));
        let a_ok = !want_a || self.audio.is_some();
        v_ok && a_ok && self.held.iter().any(|e| matches!(e, MediaEvent::Frame(_)))
    }

    fn overdue(&self) -> bool {
        if self.held_bytes > Self::MAX_BYTES {
            return true;
        }
        let mut lo = [i64::MAX; 2];
        let mut hi = [i64::MIN; 2];
        for e in &self.held {
            if let MediaEvent::Frame(f) = e {
                let i = (f.track == Track::Audio) as usize;
                lo[i] = lo[i].min(f.dts);
                hi[i] = hi[i].max(f.dts);
            }
        }
        (0..2).any(|i| hi[i] != i64::MIN && hi[i] - lo[i] > Self::MAX_WAIT)
    }

    fn release(&mut self, out: &mut Vec<MediaEvent>) {
        self.open = true;
        let (want_v, want_a) = self.announced.unwrap_or((true, true));
        out.push(MediaEvent::Tracks {
            video: want_v && self.video.is_some(),
            audio: want_a && self.audio.is_some(),
        });
        // Configurations first, then the held frames (without video frames that precede the first
        // keyframe, which could not be decoded).
        if let Some(v) = &self.video {
            out.push(MediaEvent::Video(v.clone()));
        }
        if let Some(a) = &self.audio {
            out.push(MediaEvent::Audio(a.clone()));
        }
        let mut seen_key = false;
        let held: Vec<MediaEvent> = std::mem::take(&mut self.held)
            .into_iter()
            .filter(|e| match e {
                MediaEvent::Frame(f) if f.track == Track::Video => {
                    seen_key |= f.keyframe;
                    seen_key
                }
                MediaEvent::Frame(_) => true,
                _ => false,
            })
            .collect();
        self.origin = held
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f.dts),
                _ => None,
            })
            .min()
            .unwrap_or(0);
        for e in held {
            out.push(self.rebase(e));
        }
        self.held_bytes = 0;
    }

    fn flush(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>, at: u64) {
        if !self.open && !self.held.is_empty() {
            if !self.ready() {
                diags.push(Diag::new(at, "input ended before every announced track was configured; writing what there is"));
            }
            self.release(out);
        }
    }
}

fn is_video_keyframe(e: &MediaEvent) -> bool {
    matches!(e, MediaEvent::Frame(f) if f.track == Track::Video && f.keyframe)
}

/// FLV bytes → media events.
#[derive(Default)]
struct FlvInput {
    reader: flv::FlvReader,
    events: Vec<flv::FlvEvent>,
    length_size: u8,
    video_cfg: Option<VideoConfig>,
    audio_cfg: Option<AudioConfig>,
    warned_audio_codec: bool,
}

impl FlvInput {
    fn push(
        &mut self,
        data: &[u8],
        eof: bool,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.events);
        if eof {
            self.reader.finish(&mut evs);
        } else {
            self.reader.push(data, &mut evs);
        }
        let mut res = Ok(());
        for ev in evs.drain(..) {
            if let Err(e) = self.event(ev, out, diags) {
                res = Err(e);
                break;
            }
        }
        self.events = evs;
        res
    }

    fn event(
        &mut self,
        ev: flv::FlvEvent,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        match ev {
            flv::FlvEvent::Header { audio, video, .. } => {
                out.push(MediaEvent::Tracks { video, audio })
            }
            flv::FlvEvent::Warning(d) => diags.push(d),
            flv::FlvEvent::Tag(tag) => match tag.kind {
                flv::TagKind::Video => self.video_tag(&tag, out, diags)?,
                flv::TagKind::Audio => self.audio_tag(&tag, out, diags),
                _ => {}
            },
        }
        Ok(())
    }

    fn video_tag(
        &mut self,
        tag: &flv::Tag,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let vt = match flv::VideoTag::parse(&tag.body) {
            Ok(v) => v,
            Err(e) => {
                diags.push(Diag::new(
                    tag.offset,
                    format!("bad FLV video tag: {e}; tag skipped"),
                ));
                return Ok(());
            }
        };
        let keyframe = vt.frame_type == flv::VideoFrameType::Key;
        // Legacy AVC and Enhanced-RTMP `avc1` carry the same payloads.
        let (packet_type, cts_ms, payload) = match vt.packet {
            flv::VideoPacket::Avc { packet_type, cts_ms, payload } => (packet_type, cts_ms, payload),
            flv::VideoPacket::Ex { fourcc, packet_type, cts_ms, payload } if fourcc == flv::FourCc::AVC1 => {
                let pt = match packet_type {
                    flv::ExVideoPacketType::SequenceStart => flv::AvcPacketType::SequenceHeader,
                    flv::ExVideoPacketType::CodedFrames | flv::ExVideoPacketType::CodedFramesX => flv::AvcPacketType::Nalu,
                    flv::ExVideoPacketType::SequenceEnd => flv::AvcPacketType::EndOfSequence,
                    _ => return Ok(()),
                };
                (pt, cts_ms, payload)
            }
            flv::VideoPacket::Ex { fourcc, .. } => {
                return Err(Diag::new(
                    tag.offset,
                    format!("unsupported video codec {fourcc} (Enhanced FLV) in the input; river carries H.264 only"),
                ))
            }
            flv::VideoPacket::Other { codec_id, .. } if vt.frame_type != flv::VideoFrameType::Command => {
                let name = match codec_id {
                    2 => "Sorenson H.263",
                    4 | 5 => "VP6",
                    12 => "HEVC (codec id 12)",
                    _ => "other",
                };
                return Err(Diag::new(
                    tag.offset,
                    format!("unsupported video codec id {codec_id} ({name}) in FLV; river carries H.264 only"),
                ));
            }
            _ => return Ok(()), // command frames: nothing to carry
        };
        match packet_type {
            flv::AvcPacketType::SequenceHeader => match h264::parse_avcc(&payload)
                .and_then(|a| Ok((a.length_size, h264::video_config(a.sps, a.pps)?)))
            {
                Ok((ls, cfg)) => {
                    self.length_size = ls;
                    if self.video_cfg.as_ref() != Some(&cfg) {
                        self.video_cfg = Some(cfg.clone());
                        out.push(MediaEvent::Video(cfg));
                    }
                }
                Err(e) => diags.push(Diag::new(
                    tag.offset,
                    format!("bad AVC sequence header: {e}; ignored"),
                )),
            },
            flv::AvcPacketType::Nalu => {
                if payload.is_empty() {
                    return Ok(());
                }
                let data = match self.length_size {
                    4 | 0 => payload,
                    n => match h264::avcc_relength(&payload, n) {
                        Ok(d) => d,
                        Err(e) => {
                            diags.push(Diag::new(
                                tag.offset,
                                format!("bad AVC NAL lengths: {e}; frame skipped"),
                            ));
                            return Ok(());
                        }
                    },
                };
                let dts = tag.timestamp as i64 * 90;
                out.push(MediaEvent::Frame(Frame {
                    track: Track::Video,
                    dts,
                    pts: dts + cts_ms as i64 * 90,
                    keyframe,
                    data,
                }));
            }
            flv::AvcPacketType::EndOfSequence => {}
        }
        Ok(())
    }

    fn audio_tag(&mut self, tag: &flv::Tag, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) {
        let at = match flv::AudioTag::parse(&tag.body) {
            Ok(a) => a,
            Err(e) => {
                diags.push(Diag::new(
                    tag.offset,
                    format!("bad FLV audio tag: {e}; tag skipped"),
                ));
                return;
            }
        };
        match at.packet {
            flv::AudioPacket::Aac {
                packet_type: flv::AacPacketType::SequenceHeader,
                payload,
            } => match aac::parse_asc(&payload) {
                Ok(cfg) => {
                    if self.audio_cfg.as_ref() != Some(&cfg) {
                        self.audio_cfg = Some(cfg.clone());
                        out.push(MediaEvent::Audio(cfg));
                    }
                }
                Err(e) => diags.push(Diag::new(
                    tag.offset,
                    format!("bad AAC sequence header: {e}; ignored"),
                )),
            },
            flv::AudioPacket::Aac {
                packet_type: flv::AacPacketType::Raw,
                payload,
            } => {
                if payload.is_empty() {
                    return;
                }
                let ts = tag.timestamp as i64 * 90;
                out.push(MediaEvent::Frame(Frame {
                    track: Track::Audio,
                    dts: ts,
                    pts: ts,
                    keyframe: true,
                    data: payload,
                }));
            }
            _ => {
                if !self.warned_audio_codec {
                    self.warned_audio_codec = true;
                    let what = match at.sound_format {
                        2 => "MP3".to_string(),
                        9 => "Enhanced-FLV audio".to_string(),
                        n => format!("sound format {n}"),
                    };
                    diags.push(Diag::new(
                        tag.offset,
                        format!("unsupported audio ({what}) in FLV; audio dropped (river carries AAC only)"),
                    ));
                }
            }
        }
    }
}

/// How many audio PES starts [`TsInput`] remembers for stamping AAC frames.
const MAX_AUDIO_PES_RECORDS: usize = 64;

/// MPEG-TS bytes → media events.
#[derive(Default)]
struct TsInput {
    demux: ts::TsDemuxer,
    events: Vec<ts::TsEvent>,
    video_pid: Option<u16>,
    audio_pid: Option<u16>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    video_cfg: Option<VideoConfig>,
    adts: aac::AdtsReader,
    adts_frames: Vec<aac::AdtsFrame>,
    audio_cfg: Option<AudioConfig>,
    /// Bytes pushed into the ADTS reader so far.
    adts_pos: u64,
    /// Audio PES starts still owning frames: (ADTS stream offset, PTS, frames stamped so far,
    /// the PES's byte offset in the input).
    audio_pes: std::collections::VecDeque<(u64, Option<i64>, i64, u64)>,
    /// The last audio timestamp given out, for PES without PTS.
    last_audio_ts: Option<i64>,
    last_video_dts: Option<i64>,
    /// After a damaged video PES, frames are dropped until the next keyframe so the output stays
    /// decodable; this counts them.
    skipping_to_key: Option<u64>,
    warned_streams: bool,
}

impl TsInput {
    fn push(
        &mut self,
        data: &[u8],
        eof: bool,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.events);
        if eof {
            self.demux.finish(&mut evs);
        } else {
            self.demux.push(data, &mut evs);
        }
        for ev in evs.drain(..) {
            match ev {
                ts::TsEvent::Program { streams, .. } => self.program(&streams, out, diags),
                ts::TsEvent::Pes(p) => {
                    if Some(p.pid) == self.video_pid {
                        self.video_pes(p, out, diags);
                    } else if Some(p.pid) == self.audio_pid {
                        self.audio_pes(p, out, diags);
                    }
                }
                ts::TsEvent::Warning(d) => diags.push(d),
            }
        }
        self.events = evs;
        if eof {
            let mut frames = std::mem::take(&mut self.adts_frames);
            let first = diags.len();
            self.adts.finish(&mut frames, diags);
            self.input_offsets(&mut diags[first..]);
            self.audio_frames(&mut frames, out);
            self.adts_frames = frames;
        }
        Ok(())
    }

    fn program(
        &mut self,
        streams: &[ts::StreamInfo],
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) {
        self.video_pid = streams
            .iter()
            .find(|s| s.stream_type == ts::STREAM_TYPE_H264)
            .map(|s| s.pid);
        self.audio_pid = streams
            .iter()
            .find(|s| s.stream_type == ts::STREAM_TYPE_AAC_ADTS)
            .map(|s| s.pid);
        let others: Vec<String> = streams
            .iter()
            .filter(|s| Some(s.pid) != self.video_pid && Some(s.pid) != self.audio_pid)
            .map(|s| format!("pid {} type 0x{:02x}", s.pid, s.stream_type))
            .collect();
        if !others.is_empty() && !self.warned_streams {
            self.warned_streams = true;
            diags.push(Diag::new(
                0,
                format!(
                    "ignoring MPEG-TS streams river does not carry (H.264 and AAC only): {}",
                    others.join(", ")
                ),
            ));
        }
        out.push(MediaEvent::Tracks {
            video: self.video_pid.is_some(),
            audio: self.audio_pid.is_some(),
        });
    }

    fn video_pes(&mut self, p: ts::Pes, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) {
        let mut au = BytesMut::with_capacity(p.data.len() + 16);
        let mut keyframe = false;
        let mut new_sps = Vec::new();
        let mut new_pps = Vec::new();
        for nal in h264::annexb_nals(&p.data) {
            let t = h264::nal_type(nal);
            match t {
                9 => continue,
                7 => new_sps.push(p.data.slice_ref(nal)),
                8 => new_pps.push(p.data.slice_ref(nal)),
                5 => keyframe = true,
                _ => {}
            }
            au.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            au.extend_from_slice(nal);
        }
        if !new_sps.is_empty() || !new_pps.is_empty() {
            if !new_sps.is_empty() {
                self.sps = new_sps;
            }
            if !new_pps.is_empty() {
                self.pps = new_pps;
            }
            if !self.sps.is_empty() && !self.pps.is_empty() {
                let changed = self
                    .video_cfg
                    .as_ref()
                    .is_none_or(|c| c.sps != self.sps || c.pps != self.pps);
                if changed {
                    match h264::video_config(self.sps.clone(), self.pps.clone()) {
                        Ok(cfg) => {
                            self.video_cfg = Some(cfg.clone());
                            out.push(MediaEvent::Video(cfg));
                        }
                        Err(e) => diags.push(Diag::new(
                            p.offset,
                            format!("bad SPS in MPEG-TS video: {e}"),
                        )),
                    }
                }
            }
        }
        if au.is_empty() {
            return;
        }
        if p.corrupt {
            diags.push(Diag::new(
                p.offset,
                "damaged video PES (packets lost or truncated); dropping video until the next keyframe",
            ));
            self.skipping_to_key = Some(1);
            return;
        }
        if let Some(n) = self.skipping_to_key {
            if !keyframe {
                self.skipping_to_key = Some(n + 1);
                return;
            }
            diags.push(Diag::new(
                p.offset,
                format!("video resumes at a keyframe; {n} frames dropped"),
            ));
            self.skipping_to_key = None;
        }
        let (pts, dts) = match (p.pts, p.dts) {
            (Some(pts), dts) => (pts as i64, dts.unwrap_or(pts) as i64),
            (None, _) => match self.last_video_dts {
                Some(d) => (d, d),
                None => {
                    diags.push(Diag::new(p.offset, "video PES without PTS; skipped"));
                    return;
                }
            },
        };
        self.last_video_dts = Some(dts);
        out.push(MediaEvent::Frame(Frame {
            track: Track::Video,
            dts,
            pts,
            keyframe,
            data: au.freeze(),
        }));
    }

    fn audio_pes(&mut self, p: ts::Pes, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) {
        // The ADTS reader may hold a frame back until the next header confirms it, so frames are
        // stamped by the PES they started in, found by their offset in the ADTS stream.
        self.audio_pes
            .push_back((self.adts_pos, p.pts.map(|t| t as i64), 0, p.offset));
        // Bounded: a frame can only start in a recent PES (the ADTS reader holds at most one
        // frame back), so PES records that gave no frame (garbage audio) are dropped.
        while self.audio_pes.len() > MAX_AUDIO_PES_RECORDS {
            self.audio_pes.pop_front();
        }
        self.adts_pos += p.data.len() as u64;
        let mut frames = std::mem::take(&mut self.adts_frames);
        let first = diags.len();
        self.adts.push(&p.data, &mut frames, diags);
        self.input_offsets(&mut diags[first..]);
        self.audio_frames(&mut frames, out);
        self.adts_frames = frames;
    }

    /// The ADTS reader counts offsets in the audio elementary stream; a diagnostic names the
    /// input's byte offset of the audio PES that carried the damaged bytes instead.
    fn input_offsets(&self, diags: &mut [Diag]) {
        for d in diags {
            let pes = self.audio_pes.iter().rev().find(|r| r.0 <= d.offset);
            d.message = match (pes, self.audio_pid) {
                (Some(r), Some(pid)) => {
                    let within = d.offset - r.0;
                    d.offset = r.3;
                    format!(
                        "{} ({within} bytes into the audio PES on pid {pid:#x})",
                        d.message
                    )
                }
                _ => format!("{} (offset {} in the audio stream)", d.message, d.offset),
            };
        }
    }

    fn audio_frames(&mut self, frames: &mut Vec<aac::AdtsFrame>, out: &mut Vec<MediaEvent>) {
        for f in frames.drain(..) {
            while self.audio_pes.len() > 1 && self.audio_pes[1].0 <= f.offset {
                self.audio_pes.pop_front();
            }
            let sr = f.config.sample_rate.max(1) as i64;
            let ts = match self.audio_pes.front_mut() {
                Some((_, Some(pts), n, _)) => {
                    let t = *pts + *n * 1024 * CLOCK_HZ / sr;
                    *n += 1;
                    t
                }
                _ => match self.last_audio_ts {
                    Some(t) => t + 1024 * CLOCK_HZ / sr,
                    None => continue,
                },
            };
            self.last_audio_ts = Some(ts);
            if self.audio_cfg.as_ref() != Some(&f.config) {
                self.audio_cfg = Some(f.config.clone());
                out.push(MediaEvent::Audio(f.config.clone()));
            }
            out.push(MediaEvent::Frame(Frame {
                track: Track::Audio,
                dts: ts,
                pts: ts,
                keyframe: true,
                data: f.payload,
            }));
        }
    }
}

/// Where output timestamps start, in 90 kHz (the [`Demux`] starts them at zero): ffmpeg's MPEG-TS
/// muxer starts at 1.4 s, and so do we, so PCR (0.7 s before DTS) never goes negative.
const TS_START: i64 = 126_000;
/// PCR runs this far (90 kHz) ahead of DTS, as ffmpeg's default `muxdelay` of 0.7 s.
const PCR_DELAY: u64 = 63_000;

/// Media events → MPEG-TS bytes.
pub struct TsOut {
    mux: Option<ts::TsMuxer>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    scratch: Vec<u8>,
    streams: (bool, bool),
}

impl Default for TsOut {
    fn default() -> Self {
        Self::new()
    }
}

impl TsOut {
    pub fn new() -> Self {
        TsOut {
            mux: None,
            video: None,
            audio: None,
            scratch: Vec::with_capacity(1 << 16),
            streams: (false, false),
        }
    }

    fn mux_streams(&self) -> Vec<ts::MuxStream> {
        let mut s = Vec::new();
        if self.video.is_some() {
            s.push(ts::MuxStream {
                pid: ts::PID_VIDEO,
                stream_type: ts::STREAM_TYPE_H264,
                stream_id: 0xE0,
            });
        }
        if self.audio.is_some() {
            s.push(ts::MuxStream {
                pid: ts::PID_AUDIO,
                stream_type: ts::STREAM_TYPE_AAC_ADTS,
                stream_id: 0xC0,
            });
        }
        s
    }

    fn ensure_streams(&mut self) {
        let want = (self.video.is_some(), self.audio.is_some());
        let pcr = if want.0 { ts::PID_VIDEO } else { ts::PID_AUDIO };
        match &mut self.mux {
            None => {
                let mut m = ts::TsMuxer::new(self.mux_streams(), pcr);
                m.set_pcr_delay(PCR_DELAY);
                self.mux = Some(m);
            }
            Some(_) if self.streams != want => {
                let s = self.mux_streams();
                if let Some(m) = &mut self.mux {
                    m.set_streams(s, pcr);
                }
            }
            _ => {}
        }
        self.streams = want;
    }

    fn stamp(t: i64) -> u64 {
        (t + TS_START).max(0) as u64
    }

    /// Writes PAT and PMT now (for a new HLS segment that does not start on a video keyframe,
    /// which brings its own). Nothing before the first frame, when the streams are not known yet.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        if let Some(m) = &mut self.mux {
            m.write_tables(out);
        }
    }

    /// Writes one event. Frames of a track without a configuration are skipped (the [`Demux`] gate
    /// never sends such frames).
    pub fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String> {
        match ev {
            MediaEvent::Tracks { .. } => {}
            // A break in the source: the next packet of each stream says so.
            MediaEvent::Discontinuity => {
                if let Some(m) = &mut self.mux {
                    m.mark_discontinuity();
                }
            }
            MediaEvent::Video(c) => self.video = Some(c.clone()),
            MediaEvent::Audio(c) => self.audio = Some(c.clone()),
            MediaEvent::Frame(f) => {
                self.ensure_streams();
                let (dts, pts) = (Self::stamp(f.dts), Self::stamp(f.pts));
                self.scratch.clear();
                match f.track {
                    Track::Video => {
                        let Some(cfg) = &self.video else {
                            return Ok(());
                        };
                        h264::write_annexb_au(&f.data, cfg, f.keyframe, &mut self.scratch);
                        let mux = self.mux.as_mut().expect("streams ensured");
                        mux.write_pes(
                            ts::PID_VIDEO,
                            pts,
                            Some(dts),
                            f.keyframe,
                            &self.scratch,
                            out,
                        )
                        .map_err(|e| e.message)?;
                    }
                    Track::Audio => {
                        let Some(cfg) = &self.audio else {
                            return Ok(());
                        };
                        aac::write_adts_header(cfg, f.data.len(), &mut self.scratch)?;
                        self.scratch.extend_from_slice(&f.data);
                        let mux = self.mux.as_mut().expect("streams ensured");
                        mux.write_pes(ts::PID_AUDIO, pts, None, true, &self.scratch, out)
                            .map_err(|e| e.message)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Media events → FLV bytes.
pub struct FlvOut {
    started: bool,
    tracks: (bool, bool),
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// DTS (ms) of the last frame written, by track (video, audio): a configuration change is
    /// stamped with its own track's, so no track's timestamps go back.
    last_ts: [u32; 2],
}

impl Default for FlvOut {
    fn default() -> Self {
        Self::new()
    }
}

/// 90 kHz → milliseconds, rounding half away from zero as ffmpeg's rescaling does.
fn to_ms(t: i64) -> i64 {
    if t >= 0 {
        (t + 45) / 90
    } else {
        -((-t + 45) / 90)
    }
}

impl FlvOut {
    pub fn new() -> Self {
        FlvOut {
            started: false,
            tracks: (false, false),
            video: None,
            audio: None,
            last_ts: [0; 2],
        }
    }

    /// FLV timestamps are 32-bit milliseconds; they wrap after 49.7 days, as every FLV writer's do.
    fn ms(t: i64) -> u32 {
        to_ms(t).max(0) as u32
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        let video = self.tracks.0 || self.video.is_some();
        let audio = self.tracks.1 || self.audio.is_some();
        flv::write_header(audio, video, out);
        let meta = self.metadata();
        let _ = flv::write_tag(flv::TagKind::Script, 0, &meta, out); // small: cannot exceed 16 MiB
        if let Some(v) = self.video.clone() {
            self.write_video_config(&v, 0, out);
        }
        if let Some(a) = self.audio.clone() {
            self.write_audio_config(&a, 0, out);
        }
    }

    fn metadata(&self) -> Vec<u8> {
        use amf::amf0::Value;
        let num = |v: f64| Value::Number(v);
        let mut props: Vec<(&str, Value)> = vec![("duration", num(0.0))];
        if let Some(v) = &self.video {
            props.push(("width", num(v.width as f64)));
            props.push(("height", num(v.height as f64)));
            if let Some((n, d)) = v.frame_rate {
                props.push(("framerate", num(n as f64 / d as f64)));
            }
            props.push(("videocodecid", num(7.0)));
        }
        if let Some(a) = &self.audio {
            props.push(("audiosamplerate", num(a.sample_rate as f64)));
            props.push(("audiosamplesize", num(16.0)));
            props.push(("stereo", Value::Boolean(a.channels >= 2)));
            props.push(("audiocodecid", num(10.0)));
        }
        props.push((
            "encoder",
            Value::String(concat!("river ", env!("CARGO_PKG_VERSION")).to_string()),
        ));
        flv::metadata_body(&props)
    }

    fn write_video_config(&mut self, v: &VideoConfig, ts: u32, out: &mut Vec<u8>) {
        let rec = h264::write_avcc(v);
        let _ =
            flv::write_avc_video_tag(ts, true, flv::AvcPacketType::SequenceHeader, 0, &rec, out);
    }

    fn write_audio_config(&mut self, a: &AudioConfig, ts: u32, out: &mut Vec<u8>) {
        let _ = flv::write_aac_audio_tag(ts, flv::AacPacketType::SequenceHeader, &a.asc, out);
    }

    /// Writes one event.
    pub fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String> {
        match ev {
            MediaEvent::Tracks { video, audio } => self.tracks = (*video, *audio),
            MediaEvent::Discontinuity => {}
            MediaEvent::Video(c) => {
                let changed = self.video.as_ref() != Some(c);
                self.video = Some(c.clone());
                if self.started && changed {
                    let ts = self.last_ts[0];
                    self.write_video_config(c, ts, out);
                }
            }
            MediaEvent::Audio(c) => {
                let changed = self.audio.as_ref() != Some(c);
                self.audio = Some(c.clone());
                if self.started && changed {
                    let ts = self.last_ts[1];
                    self.write_audio_config(c, ts, out);
                }
            }
            MediaEvent::Frame(f) => {
                if !self.started {
                    self.start(out);
                }
                let dts = Self::ms(f.dts);
                let pts = Self::ms(f.pts);
                self.last_ts[usize::from(f.track == Track::Audio)] = dts;
                match f.track {
                    Track::Video => {
                        let cts = (pts as i64 - dts as i64).clamp(i32::MIN as i64, i32::MAX as i64)
                            as i32;
                        flv::write_avc_video_tag(
                            dts,
                            f.keyframe,
                            flv::AvcPacketType::Nalu,
                            cts,
                            &f.data,
                            out,
                        )?;
                    }
                    Track::Audio => {
                        flv::write_aac_audio_tag(dts, flv::AacPacketType::Raw, &f.data, out)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLV: &[u8] = include_bytes!("../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");
    const TS: &[u8] = include_bytes!("../tests/fixtures/ts/ffmpeg-lavfi-h264-aac-1s.ts");
    const H264: &[u8] = include_bytes!("../tests/fixtures/codec/testsrc-160x120-bf3.h264");

    /// Runs the whole input side and one output side with the input pushed in pieces of the given
    /// sizes (cycled); returns the output bytes and the warnings' text.
    fn remux(input: &[u8], sizes: &[usize], ts_out: bool) -> (Vec<u8>, Vec<String>) {
        let mut demux = Demux::new(None, None, 10.0);
        let mut tso = TsOut::new();
        let mut flvo = FlvOut::new();
        let (mut evs, mut diags, mut out) = (Vec::new(), Vec::new(), Vec::new());
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let n = sizes[i % sizes.len()].min(input.len() - pos);
            demux
                .push(&input[pos..pos + n], &mut evs, &mut diags)
                .unwrap();
            pos += n;
            i += 1;
        }
        demux.finish(&mut evs, &mut diags).unwrap();
        for e in &evs {
            if ts_out {
                tso.event(e, &mut out).unwrap();
            } else {
                flvo.event(e, &mut out).unwrap();
            }
        }
        (out, diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn detection() {
        assert_eq!(detect(FLV, false), Some(StreamFormat::Flv));
        assert_eq!(detect(TS, false), Some(StreamFormat::Ts));
        assert_eq!(detect(H264, false), Some(StreamFormat::AnnexB));
        assert_eq!(detect(b"FL", false), None);
        assert_eq!(
            detect(&TS[..100], false),
            None,
            "a lone sync byte waits for more"
        );
        assert_eq!(detect(&TS[..100], true), Some(StreamFormat::AnnexB));
        // TS joined mid-packet still detects.
        assert_eq!(detect(&TS[50..], false), Some(StreamFormat::Ts));
        assert_eq!(detect(b"", true), Some(StreamFormat::AnnexB));
    }

    #[test]
    fn output_does_not_depend_on_chunking() {
        for (name, input) in [
            ("flv", FLV),
            ("ts", TS),
            ("h264", H264),
            ("ts-joined-mid-packet", &TS[1..]),
        ] {
            for ts_out in [true, false] {
                let (want, wd) = remux(input, &[input.len()], ts_out);
                assert!(!want.is_empty(), "{name}");
                assert!(wd.is_empty() || name.contains("joined"), "{name}: {wd:?}");
                for sizes in [&[1usize][..], &[7], &[188], &[4096], &[1, 300, 17, 5000, 2]] {
                    let (got, gd) = remux(input, sizes, ts_out);
                    assert!(
                        got == want,
                        "{name} ts_out={ts_out} sizes {sizes:?}: output differs"
                    );
                    assert_eq!(gd, wd, "{name} sizes {sizes:?}: warnings differ");
                }
            }
        }
    }

    #[test]
    fn gate_starts_on_a_keyframe_with_configs_first() {
        // Join a TS mid-GOP (a few packets before its second keyframe): the FLV must start with
        // the sequence header and then a keyframe.
        let (ts, _) = remux(H264, &[H264.len()], true);
        let keys: Vec<usize> = (0..ts.len() / 188)
            .map(|i| i * 188)
            .filter(|&o| ts[o + 1] & 0x40 != 0 && ts[o + 3] & 0x20 != 0 && ts[o + 5] & 0x40 != 0)
            .filter(|&o| u16::from_be_bytes([ts[o + 1] & 0x1f, ts[o + 2]]) == ts::PID_VIDEO)
            .collect();
        assert_eq!(keys.len(), 2);
        // (Before the PAT/PMT that precede the keyframe the demuxer knows no streams, so the
        // packets before it are skipped without a word.)
        let (out, _) = remux(&ts[keys[1] - 188 * 10..], &[ts.len()], false);
        let mut r = flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(&out, &mut evs);
        r.finish(&mut evs);
        let mut seen_video_config = false;
        for e in &evs {
            if let flv::FlvEvent::Tag(t) = e {
                if t.kind == flv::TagKind::Video {
                    let v = flv::VideoTag::parse(&t.body).unwrap();
                    match v.packet {
                        flv::VideoPacket::Avc {
                            packet_type: flv::AvcPacketType::SequenceHeader,
                            ..
                        } => seen_video_config = true,
                        flv::VideoPacket::Avc { .. } => {
                            assert!(seen_video_config);
                            assert_eq!(
                                v.frame_type,
                                flv::VideoFrameType::Key,
                                "first frame is a keyframe"
                            );
                            return;
                        }
                        _ => {}
                    }
                }
            }
        }
        panic!("no video frame came out");
    }

    /// Found by fuzz/rtp_ingest: a video configuration change was stamped with the last frame's
    /// time of either track, so after an audio frame it could be later than the next video frame
    /// (video timestamps going back). It now takes its own track's last time.
    #[test]
    fn config_change_keeps_its_track_monotonic() {
        let cfg = |pps: u8| VideoConfig {
            sps: vec![Bytes::from_static(&[0x67, 0x42, 0, 0x1e])],
            pps: vec![Bytes::from(vec![0x68, pps])],
            width: 16,
            height: 16,
            frame_rate: None,
        };
        let frame = |track, ms: i64| {
            MediaEvent::Frame(Frame {
                track,
                dts: ms * 90,
                pts: ms * 90,
                keyframe: true,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            })
        };
        let mut o = FlvOut::new();
        let mut out = Vec::new();
        for ev in [
            MediaEvent::Video(cfg(1)),
            frame(Track::Video, 100),
            frame(Track::Audio, 150),
            MediaEvent::Video(cfg(2)),
            frame(Track::Video, 140),
        ] {
            o.event(&ev, &mut out).unwrap();
        }
        let mut r = flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(&out, &mut evs);
        r.finish(&mut evs);
        let video: Vec<u32> = evs
            .iter()
            .filter_map(|e| match e {
                flv::FlvEvent::Tag(t) if t.kind == flv::TagKind::Video => Some(t.timestamp),
                _ => None,
            })
            .collect();
        assert_eq!(video, [0, 100, 100, 140]);
    }

    #[test]
    fn ms_rounding_matches_ffmpeg() {
        assert_eq!(to_ms(0), 0);
        assert_eq!(to_ms(44), 0);
        assert_eq!(to_ms(45), 1);
        assert_eq!(to_ms(3000), 33);
        assert_eq!(to_ms(-45), -1);
    }
}
