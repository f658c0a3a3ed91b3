//! The FLV bridge: FLV tags ([`crate::format::flv`]) to media events (length-prefixed H.264 or
//! H.265 video from legacy AVC, legacy HEVC (codec id 12) and Enhanced FLV `avc1`/`hvc1` tags;
//! raw AAC).

use crate::codec::{aac, h264, h265};
use crate::error::Diag;
use crate::format::flv;
use crate::media::{AudioConfig, Codec, Frame, MediaEvent, Track, VideoCodec, VideoConfig};

/// FLV bytes → media events.
#[derive(Default)]
pub(super) struct FlvInput {
    reader: flv::FlvReader,
    events: Vec<flv::FlvEvent>,
    length_size: u8,
    video_cfg: Option<VideoConfig>,
    audio_cfg: Option<AudioConfig>,
    /// The tracks the FLV header announced: (video, audio).
    header_tracks: (bool, bool),
    /// (video, audio) in a codec river does not carry, dropped at the user's request.
    dropped: [bool; 2],
    /// Audio and video river does not carry are dropped instead of failing the input.
    pub(super) drop_unsupported: bool,
}

impl FlvInput {
    pub(super) fn push(
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
        self.take_events(evs, out, diags)
    }

    /// The reader's own buffer, for input read straight into it ([`flv::FlvReader::input_buffer`]).
    pub(super) fn input_buffer(&mut self, want: usize) -> &mut bytes::BytesMut {
        self.reader.input_buffer(want)
    }

    /// [`Self::push`] of what was appended to [`Self::input_buffer`].
    pub(super) fn parse_buffered(
        &mut self,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.events);
        self.reader.parse_buffered(&mut evs);
        self.take_events(evs, out, diags)
    }

    fn take_events(
        &mut self,
        mut evs: Vec<flv::FlvEvent>,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
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
                self.header_tracks = (video, audio);
                out.push(MediaEvent::Tracks {
                    video: video && !self.dropped[0],
                    audio: audio && !self.dropped[1],
                })
            }
            flv::FlvEvent::Warning(d) => diags.push(d),
            flv::FlvEvent::Tag(tag) => match tag.kind {
                flv::TagKind::Video => self.video_tag(&tag, out, diags)?,
                flv::TagKind::Audio => self.audio_tag(&tag, out, diags)?,
                _ => {}
            },
        }
        Ok(())
    }

    /// An audio or video tag river does not carry: an error naming it, or (when the user asked
    /// for it) a one-time log line, and the track is announced gone so the start gate does not
    /// wait for it.
    fn unsupported(
        &mut self,
        track: Track,
        tag: &flv::Tag,
        what: String,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let carries = match track {
            Track::Video => "H.264 and H.265 video",
            Track::Audio => "AAC audio",
        };
        let kind = match track {
            Track::Video => "video",
            Track::Audio => "audio",
        };
        let message = format!("unsupported {what} in an FLV {kind} tag; river carries {carries}");
        if !self.drop_unsupported {
            return Err(Diag::new(
                tag.offset,
                format!("{message}: pass --drop-unsupported to continue without it"),
            ));
        }
        let i = usize::from(track == Track::Audio);
        if !self.dropped[i] {
            self.dropped[i] = true;
            diags.push(Diag::new(
                tag.offset,
                format!("{message}; the track is dropped (--drop-unsupported)"),
            ));
            let (video, audio) = self.header_tracks;
            out.push(MediaEvent::Tracks {
                video: video && !self.dropped[0],
                audio: audio && !self.dropped[1],
            });
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
        let command = vt.frame_type == flv::VideoFrameType::Command;
        // Legacy AVC, legacy HEVC (codec id 12) and Enhanced `avc1`/`hvc1` all come down to a
        // packet type, a composition time and a payload laid out the same way.
        let (codec, packet_type, cts_ms, payload) = match vt.packet {
            flv::VideoPacket::Avc {
                packet_type,
                cts_ms,
                payload,
            } => (VideoCodec::H264, packet_type, cts_ms, payload),
            flv::VideoPacket::Ex {
                fourcc,
                packet_type,
                cts_ms,
                payload,
            } if fourcc == flv::FourCc::AVC1 || fourcc == flv::FourCc::HVC1 => {
                let codec = if fourcc == flv::FourCc::AVC1 {
                    VideoCodec::H264
                } else {
                    VideoCodec::H265
                };
                let pt = match packet_type {
                    flv::ExVideoPacketType::SequenceStart => flv::AvcPacketType::SequenceHeader,
                    flv::ExVideoPacketType::CodedFrames | flv::ExVideoPacketType::CodedFramesX => {
                        flv::AvcPacketType::Nalu
                    }
                    flv::ExVideoPacketType::SequenceEnd => flv::AvcPacketType::EndOfSequence,
                    // Metadata (HDR colour information) and the rest: nothing to carry.
                    _ => return Ok(()),
                };
                (codec, pt, cts_ms, payload)
            }
            flv::VideoPacket::Ex { fourcc, .. } => {
                return self.unsupported(
                    Track::Video,
                    tag,
                    format!("video codec {fourcc} (Enhanced FLV)"),
                    out,
                    diags,
                );
            }
            flv::VideoPacket::ExUnsupported { packet_type, .. } => {
                return self.unsupported(
                    Track::Video,
                    tag,
                    format!("Enhanced FLV video packet type {packet_type:?}"),
                    out,
                    diags,
                );
            }
            flv::VideoPacket::Other {
                codec_id: 12,
                payload,
            } if !command => match flv::avc_like_payload(&payload) {
                Ok((pt, cts, p)) => (VideoCodec::H265, pt, cts, p),
                Err(e) => {
                    diags.push(Diag::new(
                        tag.offset,
                        format!("bad FLV video tag: {e}; tag skipped"),
                    ));
                    return Ok(());
                }
            },
            flv::VideoPacket::Other { codec_id, .. } if !command => {
                let name = match codec_id {
                    2 => "Sorenson H.263",
                    3 | 6 => "Screen video",
                    4 | 5 => "VP6",
                    _ => "other",
                };
                return self.unsupported(
                    Track::Video,
                    tag,
                    format!("video codec id {codec_id} ({name})"),
                    out,
                    diags,
                );
            }
            _ => return Ok(()), // command frames: nothing to carry
        };
        if self.dropped[0] {
            return Ok(());
        }
        match packet_type {
            // An empty record carries nothing (as ffmpeg writes an empty AAC one).
            flv::AvcPacketType::SequenceHeader if payload.is_empty() => {}
            flv::AvcPacketType::SequenceHeader => {
                let parsed = match codec {
                    VideoCodec::H264 => h264::parse_avcc(&payload)
                        .and_then(|a| Ok((a.length_size, h264::video_config(a.sps, a.pps)?)))
                        .map_err(|e| e.to_string()),
                    VideoCodec::H265 => h265::parse_hvcc(&payload)
                        .and_then(|h| Ok((h.length_size, h.video_config()?)))
                        .map_err(|e| e.to_string()),
                };
                match parsed {
                    Ok((ls, cfg)) => {
                        self.length_size = ls;
                        if self.video_cfg.as_ref() != Some(&cfg) {
                            self.video_cfg = Some(cfg.clone());
                            out.push(MediaEvent::Video(cfg));
                        }
                    }
                    Err(e) => diags.push(Diag::new(
                        tag.offset,
                        format!("bad {} sequence header: {e}; ignored", codec.name()),
                    )),
                }
            }
            flv::AvcPacketType::Nalu => {
                if payload.is_empty() {
                    return Ok(());
                }
                if let Some(c) = &self.video_cfg {
                    if c.codec != codec {
                        diags.push(Diag::new(
                            tag.offset,
                            format!(
                                "{} frame after a {} sequence header; skipped",
                                codec.name(),
                                c.codec.name()
                            ),
                        ));
                        return Ok(());
                    }
                }
                let data = match self.length_size {
                    4 | 0 => payload,
                    n => match h264::avcc_relength(&payload, n) {
                        Ok(d) => d,
                        Err(e) => {
                            diags.push(Diag::new(
                                tag.offset,
                                format!("bad {} NAL lengths: {e}; frame skipped", codec.name()),
                            ));
                            return Ok(());
                        }
                    },
                };
                let dts = tag.timestamp as i64 * 90;
                out.push(MediaEvent::Frame(Frame {
                    track: Track::Video,
                    codec: codec.codec(),
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

    fn audio_tag(
        &mut self,
        tag: &flv::Tag,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let at = match flv::AudioTag::parse(&tag.body) {
            Ok(a) => a,
            Err(e) => {
                diags.push(Diag::new(
                    tag.offset,
                    format!("bad FLV audio tag: {e}; tag skipped"),
                ));
                return Ok(());
            }
        };
        match at.packet {
            // ffmpeg 9 writes an empty sequence header first when its input gave the
            // AudioSpecificConfig late (MPEG-TS): it carries nothing.
            flv::AudioPacket::Aac {
                packet_type: flv::AacPacketType::SequenceHeader,
                payload,
            } if payload.is_empty() => {}
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
                    return Ok(());
                }
                let ts = tag.timestamp as i64 * 90;
                out.push(MediaEvent::Frame(Frame {
                    track: Track::Audio,
                    codec: Codec::Aac,
                    dts: ts,
                    pts: ts,
                    keyframe: true,
                    data: payload,
                }));
            }
            _ => {
                let what = match at.sound_format {
                    2 => "audio codec MP3".to_string(),
                    9 => match &at.packet {
                        flv::AudioPacket::Ex { fourcc, .. } => {
                            format!("audio codec {fourcc} (Enhanced FLV)")
                        }
                        _ => "Enhanced FLV multitrack audio".to_string(),
                    },
                    0 | 3 => "audio codec PCM".to_string(),
                    1 => "audio codec ADPCM".to_string(),
                    4..=6 => "audio codec Nellymoser".to_string(),
                    7 | 8 => "audio codec G.711".to_string(),
                    11 => "audio codec Speex".to_string(),
                    14 => "audio codec MP3 8 kHz".to_string(),
                    n => format!("audio sound format {n}"),
                };
                return self.unsupported(Track::Audio, tag, what, out, diags);
            }
        }
        Ok(())
    }
}
