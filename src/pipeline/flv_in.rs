//! The FLV bridge: FLV tags ([`crate::format::flv`]) to media events (AVCC video, raw AAC).

use crate::codec::{aac, h264};
use crate::error::Diag;
use crate::format::flv;
use crate::media::{AudioConfig, Frame, MediaEvent, Track, VideoConfig};

/// FLV bytes → media events.
#[derive(Default)]
pub(super) struct FlvInput {
    reader: flv::FlvReader,
    events: Vec<flv::FlvEvent>,
    length_size: u8,
    video_cfg: Option<VideoConfig>,
    audio_cfg: Option<AudioConfig>,
    warned_audio_codec: bool,
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
