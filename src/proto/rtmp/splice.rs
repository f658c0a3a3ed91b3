//! Publishes in, one FLV stream out: the FLV writer shared by river-rtmp-in and the hub's RTMP
//! front. Timestamps go through [`crate::timeline`] (RTMP's 32-bit millisecond wrap unwrapped).

use bytes::Bytes;

use super::MediaKind;
use crate::format::flv;
use crate::media::{Frame, Track};
use crate::timeline::{Timeline, TimelineConfig, WRAP_FLV};

/// Publishes in, one FLV stream out. Each publish is a session: its timestamps go through its
/// own [`Timeline`] (unwrapping RTMP's 32-bit milliseconds) and are then shifted so they continue
/// after the previous session's. Sequence headers and metadata are written only when they differ
/// from the last ones written; tag bodies are the publisher's bytes.
pub struct FlvSplice {
    out: Vec<u8>,
    header_written: bool,
    timeline: Timeline,
    /// Added to the session timeline's output (90 kHz).
    offset: i64,
    need_offset: bool,
    /// Largest DTS written (90 kHz), over both tracks.
    last_out: Option<i64>,
    last_video: Option<i64>,
    /// A typical video frame step (90 kHz), used to place the first frame after a reconnect.
    step: i64,
    wait_key: bool,
    video_seq: Option<Bytes>,
    audio_seq: Option<Bytes>,
    metadata: Option<Bytes>,
    /// What came before the first media frame of the stream (metadata, sequence headers).
    dropped_inter: u64,
    pub tags: u64,
    warned_codec: bool,
}

impl FlvSplice {
    pub fn new() -> Self {
        FlvSplice {
            out: Vec::new(),
            header_written: false,
            timeline: Timeline::new(TimelineConfig::new(Some(WRAP_FLV))),
            offset: 0,
            need_offset: true,
            last_out: None,
            last_video: None,
            step: 90 * 40,
            wait_key: true,
            video_seq: None,
            audio_seq: None,
            metadata: None,
            dropped_inter: 0,
            tags: 0,
            warned_codec: false,
        }
    }

    /// A new publish starts: fresh timeline, start on a keyframe.
    pub fn begin(&mut self) {
        self.timeline = Timeline::new(TimelineConfig::new(Some(WRAP_FLV)));
        self.need_offset = true;
        self.wait_key = true;
        self.last_video = None;
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn now_ms(&self) -> u32 {
        (self.last_out.unwrap_or(0).max(0) / 90) as u32
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
        let ts = self.now_ms();
        self.tag(flv::TagKind::Script, ts, body);
    }

    /// One audio or video tag body at an RTMP timestamp. Returns a note for the log the first
    /// time a video codec other than H.264 passes.
    pub fn media(&mut self, kind: MediaKind, timestamp: u32, body: &Bytes) -> Option<String> {
        self.header(true, true);
        let mut note = None;
        let (track, seq, keyframe, cts) = match kind {
            MediaKind::Video => match flv::VideoTag::parse(body) {
                Ok(v) => {
                    let key = v.frame_type == flv::VideoFrameType::Key;
                    match v.packet {
                        flv::VideoPacket::Avc {
                            packet_type,
                            cts_ms,
                            ..
                        } => (
                            Track::Video,
                            packet_type == flv::AvcPacketType::SequenceHeader,
                            key,
                            cts_ms,
                        ),
                        flv::VideoPacket::Ex {
                            fourcc,
                            packet_type,
                            cts_ms,
                            ..
                        } => {
                            if fourcc != flv::FourCc::AVC1 && !self.warned_codec {
                                self.warned_codec = true;
                                note = Some(format!("video codec {fourcc} (Enhanced RTMP) passed through as Enhanced FLV"));
                            }
                            (
                                Track::Video,
                                packet_type == flv::ExVideoPacketType::SequenceStart,
                                key,
                                cts_ms,
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
                            (Track::Video, false, key, 0)
                        }
                    }
                }
                Err(_) => return None,
            },
            MediaKind::Audio => match flv::AudioTag::parse(body) {
                Ok(a) => {
                    let seq = match a.packet {
                        flv::AudioPacket::Aac { packet_type, .. } => {
                            packet_type == flv::AacPacketType::SequenceHeader
                        }
                        flv::AudioPacket::Ex { packet_type, .. } => packet_type == 0,
                        _ => false,
                    };
                    (Track::Audio, seq, true, 0)
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
                let ts = self.now_ms();
                self.tag(tag_kind, ts, body);
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
            dts,
            pts: dts + i64::from(cts) * 90,
            keyframe,
            data: Bytes::new(),
        };
        self.timeline.process(&mut f);
        if self.need_offset {
            self.need_offset = false;
            self.offset = match self.last_out {
                None => 0,
                Some(l) => l + self.step - f.dts,
            };
        }
        let out = f.dts + self.offset;
        if track == Track::Video {
            if let Some(prev) = self.last_video {
                let s = out - prev;
                if s > 0 && s <= 90_000 {
                    self.step = s;
                }
            }
            self.last_video = Some(out);
        }
        self.last_out = Some(self.last_out.map_or(out, |l| l.max(out)));
        // 32-bit milliseconds, wrapping after 49.7 days as every FLV writer's do.
        let ts = (out.max(0) / 90) as u32;
        self.tag(tag_kind, ts, body);
        note
    }
}

impl Default for FlvSplice {
    fn default() -> Self {
        Self::new()
    }
}
