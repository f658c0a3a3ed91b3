//! Publishes in, one FLV stream out: the FLV writer shared by river-rtmp-in and the hub's RTMP
//! front. Timestamps go through [`crate::timeline`] (RTMP's 32-bit millisecond wrap unwrapped).
//!
//! # Where a new publish goes
//!
//! Every publish is shifted by one offset, the same for audio and video (their sync stays the
//! publisher's). It is the smallest that keeps, on each track written before:
//!
//! - the new publish's first DTS at least one frame period after the track's last DTS, and
//! - every PTS of the new publish at least one frame period after every PTS written before.
//!
//! The second rule is the one B-frames need: the last frames of a publish that was cut off have
//! PTS up to `bf + 1` frames after their DTS, and the B-frames that would have been shown before
//! them never come. A keyframe placed one frame after the last DTS (PTS = DTS + `bf` frames) can
//! be shown before them or on their tick, and a player's presentation clock goes back or stalls
//! (`ffmpeg -f null` reports it as a "non monotonically increasing dts"). One period and not one
//! millisecond, because readers convert to the track's own rate (1/fps, 1/sample rate): two frames
//! closer than one period can land on one tick there.
//!
//! A track's frame period: for AAC one frame of 1024 samples at the AudioSpecificConfig's rate;
//! otherwise the largest of its last 8 DTS steps within a publish. FLV's milliseconds make a
//! 30 fps stream step 33, 33, 34 ms: the largest is the period rounded up; in general it is at
//! most 1/8 ms below the period, since the 8 steps add up to at least 8 periods less 1 ms.
//! Everything here is in FLV's milliseconds.
//!
//! Both tracks' first timestamps are needed to place a publish, so its tags are held until each
//! track written before has a frame, or the held frames span [`HOLD_MS`] (a track that does not
//! come back). A track that comes back after that is assumed to start no earlier than the
//! earliest held frame (publishers interleave by DTS); a frame of it that would still break the
//! rules is dropped (video until its next keyframe) and counted in
//! [`FlvSplice::dropped_at_splice`].

use std::collections::VecDeque;

use bytes::Bytes;

use super::MediaKind;
use crate::codec::aac;
use crate::format::flv;
use crate::media::{Codec, Frame, Track};
use crate::timeline::{Timeline, TimelineConfig, WRAP_FLV};

/// A new publish's held tags are released when its frames span this much (ms) even if a track
/// has not come back.
pub const HOLD_MS: i64 = 1000;
/// ... or when this many tags are held.
const HOLD_TAGS: usize = 1024;
/// Enhanced RTMP's FourCC for AAC.
const MP4A: flv::FourCc = flv::FourCc(*b"mp4a");
/// How many recent DTS steps give a track's frame period.
const STEPS: usize = 8;
/// The frame period (ms) of a track that has no measured step yet.
const DEFAULT_PERIOD_MS: i64 = 40;

/// What has been written of one track.
#[derive(Debug, Default, Clone)]
struct TrackOut {
    /// Last DTS written (ms, not wrapped).
    last: Option<i64>,
    /// Highest PTS written (ms).
    max_pts: i64,
    /// The current publish has written a frame of this track.
    started: bool,
    /// The previous DTS written in the current publish.
    prev: Option<i64>,
    /// The last DTS steps (ms) measured within publishes.
    steps: VecDeque<i64>,
}

/// One media frame on its publish's timeline.
#[derive(Debug)]
struct Media {
    track: Track,
    kind: flv::TagKind,
    /// DTS on the publish's own timeline (ms).
    dts: i64,
    /// The composition time offset in the body (ms): PTS = DTS + cts.
    cts: i64,
    keyframe: bool,
    /// An audio frame of a codec other than AAC.
    not_aac: bool,
    /// A picture or an audio frame (not an end-of-sequence marker): counted in `frames`.
    picture: bool,
    body: Bytes,
}

#[derive(Debug)]
enum Pending {
    /// A sequence header or metadata: written at the current time.
    Header {
        kind: flv::TagKind,
        body: Bytes,
    },
    Frame(Media),
}

fn idx(t: Track) -> usize {
    match t {
        Track::Video => 0,
        Track::Audio => 1,
    }
}

/// One AAC frame (1024 samples) in ms, rounded up, from an AudioSpecificConfig.
fn aac_frame_ms(asc: &[u8]) -> Option<i64> {
    let rate = i64::from(aac::parse_asc(asc).ok()?.sample_rate);
    (rate > 0).then(|| (1024 * 1000 + rate - 1) / rate)
}

/// Publishes in, one FLV stream out. Each publish is a session: its timestamps go through its
/// own [`Timeline`] (unwrapping RTMP's 32-bit milliseconds) and are then shifted to continue
/// after what was written before (see the module documentation). Sequence headers and metadata
/// are written only when they differ from the last ones written; tag bodies are the publisher's
/// bytes.
pub struct FlvSplice {
    out: Vec<u8>,
    header_written: bool,
    timeline: Timeline,
    /// Added to the publish's timeline (ms) to give the output's.
    offset: i64,
    /// The current publish's tags while its offset is not known yet.
    hold: Option<Vec<Pending>>,
    tracks: [TrackOut; 2],
    /// One AAC frame (ms) of the audio written last; `None` when it is not AAC.
    aac_frame: Option<i64>,
    wait_key: bool,
    video_seq: Option<Bytes>,
    audio_seq: Option<Bytes>,
    metadata: Option<Bytes>,
    /// Video frames dropped while waiting for a keyframe.
    dropped_inter: u64,
    /// Frames of the current publish dropped because their track came back late, at timestamps
    /// that would have overlapped what was written before.
    pub dropped_at_splice: u64,
    pub tags: u64,
    /// Video and audio frames written (not sequence headers or metadata).
    pub frames: [u64; 2],
    /// Bytes handed out by [`FlvSplice::take`].
    pub bytes_out: u64,
    /// The output timestamp (ms) of the first frame written.
    first_ms: Option<i64>,
    warned_codec: bool,
}

impl FlvSplice {
    pub fn new() -> Self {
        FlvSplice {
            out: Vec::new(),
            header_written: false,
            timeline: Timeline::new(TimelineConfig::new(Some(WRAP_FLV))),
            offset: 0,
            hold: None,
            tracks: Default::default(),
            aac_frame: None,
            wait_key: true,
            video_seq: None,
            audio_seq: None,
            metadata: None,
            dropped_inter: 0,
            dropped_at_splice: 0,
            tags: 0,
            frames: [0; 2],
            bytes_out: 0,
            first_ms: None,
            warned_codec: false,
        }
    }

    /// A new publish starts: fresh timeline, start on a keyframe. Its tags are held until it can
    /// be placed after what was written before.
    pub fn begin(&mut self) {
        self.end();
        self.timeline = Timeline::new(TimelineConfig::new(Some(WRAP_FLV)));
        self.wait_key = true;
        self.dropped_at_splice = 0;
        for t in &mut self.tracks {
            t.started = false;
            t.prev = None;
        }
        if self.tracks.iter().any(|t| t.last.is_some()) {
            self.hold = Some(Vec::new());
        } else {
            self.offset = 0;
        }
    }

    /// The publish ended: what is still held is placed with what is known and written.
    pub fn end(&mut self) {
        if let Some(held) = self.hold.take() {
            self.release(held);
        }
    }

    pub fn take(&mut self) -> Vec<u8> {
        self.bytes_out += self.out.len() as u64;
        std::mem::take(&mut self.out)
    }

    /// The output timestamps (ms) of the first frame written and of the latest.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        Some((self.first_ms?, i64::from(self.now_ms())))
    }

    fn now_ms(&self) -> u32 {
        self.tracks
            .iter()
            .filter_map(|t| t.last)
            .max()
            .unwrap_or(0)
            .max(0) as u32
    }

    fn header(&mut self, audio: bool, video: bool) {
        if !self.header_written {
            self.header_written = true;
            flv::write_header(audio, video, &mut self.out);
        }
    }

    fn tag(&mut self, kind: flv::TagKind, ts: u32, body: &[u8]) {
        if flv::write_tag(kind, ts, body, &mut self.out).is_ok() {
            self.tags += 1;
        }
    }

    /// A script body (`onMetaData` ...), as [`super::ServerEvent::Metadata`] gives it.
    pub fn metadata(&mut self, body: &Bytes) {
        if !self.header_written {
            // The header's flags from the metadata when it comes first (it does from ffmpeg and OBS).
            let (mut a, mut v) = (true, true);
            if let Ok(s) = flv::parse_script(body) {
                if s.is_metadata() {
                    a = s.get("audiocodecid").is_some();
                    v = s.get("videocodecid").is_some();
                    if !a && !v {
                        (a, v) = (true, true);
                    }
                }
            }
            self.header(a, v);
        }
        if self.metadata.as_ref() == Some(body) {
            return;
        }
        self.metadata = Some(body.clone());
        self.emit(Pending::Header {
            kind: flv::TagKind::Script,
            body: body.clone(),
        });
    }

    /// One audio or video tag body at an RTMP timestamp. Returns a note for the log the first
    /// time a video codec other than H.264 and H.265 passes.
    pub fn media(&mut self, kind: MediaKind, timestamp: u32, body: &Bytes) -> Option<String> {
        self.header(true, true);
        let mut note = None;
        // A video tag that holds no picture (end of sequence, metadata) is passed on uncounted.
        let mut picture = true;
        let (track, seq, keyframe, cts, not_aac) = match kind {
            MediaKind::Video => match flv::VideoTag::parse(body) {
                Ok(v) => {
                    let key = v.frame_type == flv::VideoFrameType::Key;
                    match v.packet {
                        flv::VideoPacket::Avc {
                            packet_type,
                            cts_ms,
                            ..
                        } => {
                            picture = packet_type == flv::AvcPacketType::Nalu;
                            (
                                Track::Video,
                                packet_type == flv::AvcPacketType::SequenceHeader,
                                key,
                                cts_ms,
                                false,
                            )
                        }
                        flv::VideoPacket::Ex {
                            fourcc,
                            packet_type,
                            cts_ms,
                            ..
                        } => {
                            // H.264 and H.265 are what river carries; any other FourCC passes untouched
                            // and is worth one line.
                            picture = matches!(
                                packet_type,
                                flv::ExVideoPacketType::CodedFrames
                                    | flv::ExVideoPacketType::CodedFramesX
                            );
                            let carried =
                                fourcc == flv::FourCc::AVC1 || fourcc == flv::FourCc::HVC1;
                            if !carried && !self.warned_codec {
                                self.warned_codec = true;
                                note = Some(format!("video codec {fourcc} (Enhanced RTMP) passed through as Enhanced FLV"));
                            }
                            (
                                Track::Video,
                                packet_type == flv::ExVideoPacketType::SequenceStart,
                                key,
                                cts_ms,
                                false,
                            )
                        }
                        flv::VideoPacket::ExCommand { .. } => return None,
                        other => {
                            if !self.warned_codec {
                                self.warned_codec = true;
                                note = Some(format!(
                                    "video that is not H.264 ({other:?}) passed through",
                                    other = match other {
                                        flv::VideoPacket::Other { codec_id, .. } =>
                                            format!("codec id {codec_id}"),
                                        _ => "an Enhanced-RTMP multitrack packet".into(),
                                    }
                                ));
                            }
                            (Track::Video, false, key, 0, false)
                        }
                    }
                }
                Err(_) => return None,
            },
            MediaKind::Audio => match flv::AudioTag::parse(body) {
                Ok(a) => {
                    let (seq, aac) = match a.packet {
                        flv::AudioPacket::Aac { packet_type, .. } => {
                            (packet_type == flv::AacPacketType::SequenceHeader, true)
                        }
                        flv::AudioPacket::Ex {
                            packet_type,
                            fourcc,
                            ..
                        } => (packet_type == 0, fourcc == MP4A),
                        _ => (false, false),
                    };
                    (Track::Audio, seq, true, 0, !aac)
                }
                Err(_) => return None,
            },
        };
        let tag_kind = match track {
            Track::Video => flv::TagKind::Video,
            Track::Audio => flv::TagKind::Audio,
        };
        if seq {
            let last = match track {
                Track::Video => &mut self.video_seq,
                Track::Audio => &mut self.audio_seq,
            };
            if last.as_ref() != Some(body) {
                *last = Some(body.clone());
                self.emit(Pending::Header {
                    kind: tag_kind,
                    body: body.clone(),
                });
            }
            return note;
        }
        if track == Track::Video {
            if self.wait_key && !keyframe {
                self.dropped_inter += 1;
                return note;
            }
            self.wait_key = false;
        }
        let dts = i64::from(timestamp) * 90;
        let mut f = Frame {
            track,
            // Only the timestamps matter here: the tag is passed on as it came.
            codec: match track {
                Track::Video => Codec::H264,
                Track::Audio => Codec::Aac,
            },
            dts,
            pts: dts + i64::from(cts) * 90,
            keyframe,
            data: Bytes::new(),
        };
        self.timeline.process(&mut f);
        self.emit(Pending::Frame(Media {
            track,
            kind: tag_kind,
            dts: f.dts.div_euclid(90),
            cts: i64::from(cts),
            keyframe,
            not_aac,
            picture,
            body: body.clone(),
        }));
        note
    }

    fn emit(&mut self, p: Pending) {
        let Some(held) = self.hold.as_mut() else {
            return self.write(p);
        };
        held.push(p);
        let frames = || {
            held.iter().filter_map(|p| match p {
                Pending::Frame(m) => Some(m),
                Pending::Header { .. } => None,
            })
        };
        let back = [Track::Video, Track::Audio]
            .into_iter()
            .all(|t| self.tracks[idx(t)].last.is_none() || frames().any(|m| m.track == t));
        let span =
            frames().map(|m| m.dts).max().unwrap_or(0) - frames().map(|m| m.dts).min().unwrap_or(0);
        if back || span >= HOLD_MS || held.len() >= HOLD_TAGS {
            let held = self.hold.take().unwrap_or_default();
            self.release(held);
        }
    }

    /// Places the held publish (see the module documentation) and writes its tags.
    fn release(&mut self, held: Vec<Pending>) {
        let frames: Vec<&Media> = held
            .iter()
            .filter_map(|p| match p {
                Pending::Frame(m) => Some(m),
                Pending::Header { .. } => None,
            })
            .collect();
        if let Some(earliest) = frames.iter().map(|m| m.dts).min() {
            let mut offset = None::<i64>;
            for t in [Track::Video, Track::Audio] {
                let st = &self.tracks[idx(t)];
                let Some(last) = st.last else { continue };
                let period = self.period(t);
                // A track not back yet: assumed to start no earlier than the earliest held frame,
                // with PTS >= DTS.
                let first = frames
                    .iter()
                    .find(|m| m.track == t)
                    .map_or(earliest, |m| m.dts);
                let min_pts = frames
                    .iter()
                    .filter(|m| m.track == t)
                    .map(|m| m.dts + m.cts)
                    .min()
                    .unwrap_or(earliest);
                let need = (last + period - first).max(st.max_pts + period - min_pts);
                offset = Some(offset.map_or(need, |o| o.max(need)));
            }
            self.offset = offset.unwrap_or(0);
        }
        for p in held {
            self.write(p);
        }
    }

    /// The frame period (ms) of a track, for the splice.
    fn period(&self, t: Track) -> i64 {
        match (t, self.aac_frame) {
            (Track::Audio, Some(ms)) => ms,
            _ => self.tracks[idx(t)]
                .steps
                .iter()
                .copied()
                .max()
                .unwrap_or(DEFAULT_PERIOD_MS),
        }
    }

    fn write(&mut self, p: Pending) {
        match p {
            Pending::Header { kind, body } => {
                if kind == flv::TagKind::Audio {
                    self.aac_frame = match flv::AudioTag::parse(&body).map(|a| a.packet) {
                        Ok(flv::AudioPacket::Aac { payload, .. }) => aac_frame_ms(&payload),
                        Ok(flv::AudioPacket::Ex {
                            fourcc, payload, ..
                        }) if fourcc == MP4A => aac_frame_ms(&payload),
                        _ => None,
                    };
                }
                let ts = self.now_ms();
                self.tag(kind, ts, &body);
            }
            Pending::Frame(m) => self.write_frame(m),
        }
    }

    fn write_frame(&mut self, m: Media) {
        if m.track == Track::Video && self.wait_key && !m.keyframe {
            self.dropped_at_splice += 1;
            return;
        }
        if m.not_aac {
            self.aac_frame = None;
        }
        let period = self.period(m.track);
        let st = &mut self.tracks[idx(m.track)];
        let mut dts = m.dts + self.offset;
        if let (false, Some(last)) = (st.started, st.last) {
            // The first frame of the publish on this track: only a track that came back after the
            // held frames were placed can break the rules here.
            if dts < last + period || dts + m.cts < st.max_pts + period {
                self.dropped_at_splice += 1;
                if m.track == Track::Video {
                    self.wait_key = true;
                }
                return;
            }
        }
        if let Some(last) = st.last {
            // The timeline's DTS increase by at least one 90 kHz tick; FLV's by at least one ms.
            dts = dts.max(last + 1);
        }
        if let Some(prev) = st.prev {
            let step = dts - prev;
            if step > 0 && step <= 1000 {
                if st.steps.len() == STEPS {
                    st.steps.pop_front();
                }
                st.steps.push_back(step);
            }
        }
        st.max_pts = if st.last.is_some() {
            st.max_pts.max(dts + m.cts)
        } else {
            dts + m.cts
        };
        st.prev = Some(dts);
        st.last = Some(dts);
        st.started = true;
        if m.track == Track::Video {
            self.wait_key = false;
        }
        self.frames[idx(m.track)] += u64::from(m.picture);
        self.first_ms.get_or_insert(dts.max(0));
        // 32-bit milliseconds, wrapping after 49.7 days as every FLV writer's do.
        self.tag(m.kind, dts.max(0) as u32, &m.body);
    }
}

impl Default for FlvSplice {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
