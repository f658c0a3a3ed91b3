//! The first bytes of audio and video tag bodies (the "tag headers" of the FLV spec), including the
//! Enhanced-RTMP/FLV ex-header. Payloads are zero-copy slices of the body.

use std::fmt;

use bytes::Bytes;

use super::error::FlvError;
use crate::error::Diag;

/// A body problem at byte `at` of the body.
fn bad(at: usize, message: impl Into<String>) -> FlvError {
    FlvError::Body(Diag::new(at as u64, message))
}

/// A four-character code from an Enhanced-RTMP ex-header, e.g. `hvc1`, `av01`, `avc1`, `Opus`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    pub const AVC1: FourCc = FourCc(*b"avc1");
    pub const HVC1: FourCc = FourCc(*b"hvc1");
    pub const AV01: FourCc = FourCc(*b"av01");
    pub const VP09: FourCc = FourCc(*b"vp09");
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in &self.0 {
            if c.is_ascii_graphic() || c == b' ' {
                write!(f, "{}", c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

/// The video FrameType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFrameType {
    /// 1: keyframe (for AVC, a seekable frame).
    Key,
    /// 2: inter frame.
    Inter,
    /// 3: disposable inter frame (H.263 only).
    Disposable,
    /// 4: generated keyframe (reserved for server use).
    Generated,
    /// 5: video info/command frame.
    Command,
    /// 0 or 6..15.
    Reserved(u8),
}

impl VideoFrameType {
    fn from_u8(v: u8) -> VideoFrameType {
        match v {
            1 => VideoFrameType::Key,
            2 => VideoFrameType::Inter,
            3 => VideoFrameType::Disposable,
            4 => VideoFrameType::Generated,
            5 => VideoFrameType::Command,
            n => VideoFrameType::Reserved(n),
        }
    }
}

/// The AVCPacketType of a legacy AVC (codec id 7) video tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvcPacketType {
    /// 0: the payload is an AVCDecoderConfigurationRecord.
    SequenceHeader,
    /// 1: the payload is one access unit as length-prefixed (AVCC) NAL units.
    Nalu,
    /// 2: end of sequence (empty payload).
    EndOfSequence,
}

impl AvcPacketType {
    pub fn as_u8(self) -> u8 {
        match self {
            AvcPacketType::SequenceHeader => 0,
            AvcPacketType::Nalu => 1,
            AvcPacketType::EndOfSequence => 2,
        }
    }
}

/// The VideoPacketType of an Enhanced-RTMP ex-header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExVideoPacketType {
    /// 0: decoder configuration (e.g. HEVCDecoderConfigurationRecord for `hvc1`).
    SequenceStart,
    /// 1: coded frames; `avc1` and `hvc1` carry a composition time offset.
    CodedFrames,
    /// 2: end of sequence.
    SequenceEnd,
    /// 3: coded frames with composition time offset 0 (no offset field).
    CodedFramesX,
    /// 4: AMF metadata (e.g. HDR colour info).
    Metadata,
    /// 5: MPEG-2 TS sequence start (AV1 in TS).
    Mpeg2TsSequenceStart,
    /// 6: multitrack.
    Multitrack,
    /// 7: modifier extension.
    ModEx,
    /// 8..15.
    Reserved(u8),
}

impl ExVideoPacketType {
    pub fn as_u8(self) -> u8 {
        match self {
            ExVideoPacketType::SequenceStart => 0,
            ExVideoPacketType::CodedFrames => 1,
            ExVideoPacketType::SequenceEnd => 2,
            ExVideoPacketType::CodedFramesX => 3,
            ExVideoPacketType::Metadata => 4,
            ExVideoPacketType::Mpeg2TsSequenceStart => 5,
            ExVideoPacketType::Multitrack => 6,
            ExVideoPacketType::ModEx => 7,
            ExVideoPacketType::Reserved(n) => n & 0x0f,
        }
    }

    fn from_u8(v: u8) -> ExVideoPacketType {
        match v {
            0 => ExVideoPacketType::SequenceStart,
            1 => ExVideoPacketType::CodedFrames,
            2 => ExVideoPacketType::SequenceEnd,
            3 => ExVideoPacketType::CodedFramesX,
            4 => ExVideoPacketType::Metadata,
            5 => ExVideoPacketType::Mpeg2TsSequenceStart,
            6 => ExVideoPacketType::Multitrack,
            7 => ExVideoPacketType::ModEx,
            n => ExVideoPacketType::Reserved(n),
        }
    }
}

/// What follows the frame type in a video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoPacket {
    /// Legacy AVC (codec id 7).
    Avc {
        packet_type: AvcPacketType,
        /// CompositionTime (pts - dts) in ms, signed 24-bit; 0 unless `Nalu`.
        cts_ms: i32,
        payload: Bytes,
    },
    /// Enhanced-RTMP ex-header with a single codec.
    Ex {
        fourcc: FourCc,
        packet_type: ExVideoPacketType,
        /// Composition time offset in ms (only `CodedFrames` of `avc1`/`hvc1` carry one; else 0).
        cts_ms: i32,
        /// For `avc1` this is laid out like the legacy AVC payloads.
        payload: Bytes,
    },
    /// Enhanced-RTMP command frame (frame type 5): the VideoCommand byte (0 start seek, 1 end seek).
    ExCommand { command: u8 },
    /// Enhanced-RTMP multitrack or ModEx packets, not unpacked here: payload is the body after the
    /// first byte.
    ExUnsupported {
        packet_type: ExVideoPacketType,
        payload: Bytes,
    },
    /// A legacy codec other than AVC (2 Sorenson H.263, 3 screen, 4 VP6, 5 VP6 alpha, 6 screen v2,
    /// 12 HEVC by some Chinese forks, ...), or a legacy AVC command frame too short for the AVC
    /// header: payload is the body after the first byte.
    Other { codec_id: u8, payload: Bytes },
}

/// The payload of a legacy video tag that is laid out like AVC's (codec id 12, HEVC as some
/// encoders tag it): the packet type, the composition time (ms) and the rest. `payload` is the
/// body after its first byte, as [`VideoPacket::Other`] holds it; an error is located in it.
pub fn avc_like_payload(payload: &Bytes) -> Result<(AvcPacketType, i32, Bytes), FlvError> {
    let h = payload.get(..4).ok_or_else(|| {
        bad(
            payload.len(),
            format!(
                "video tag payload is {} bytes, need at least 4 for its packet type and composition time",
                payload.len()
            ),
        )
    })?;
    let packet_type = match h[0] {
        0 => AvcPacketType::SequenceHeader,
        1 => AvcPacketType::Nalu,
        2 => AvcPacketType::EndOfSequence,
        n => return Err(bad(0, format!("reserved video packet type {n}"))),
    };
    Ok((packet_type, si24(&h[1..4]), payload.slice(4..)))
}

/// A parsed video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTag {
    pub frame_type: VideoFrameType,
    pub packet: VideoPacket,
}

/// The spec's name for the parser of a video tag body (returns a [`VideoTag`]).
pub type VideoTagHeader = VideoTag;

fn si24(b: &[u8]) -> i32 {
    // b holds 3 bytes: sign-extend from 24 bits.
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

impl VideoTag {
    /// Parses the header of a video tag body; the payload is a slice of `body`.
    /// An error is located in `body`.
    pub fn parse(body: &Bytes) -> Result<VideoTag, FlvError> {
        let b0 = *body.first().ok_or_else(|| bad(0, "empty video tag body"))?;
        if b0 & 0x80 != 0 {
            return Self::parse_ex(body, b0);
        }
        let frame_type = VideoFrameType::from_u8(b0 >> 4);
        let codec_id = b0 & 0x0F;
        if codec_id != 7 {
            return Ok(VideoTag {
                frame_type,
                packet: VideoPacket::Other {
                    codec_id,
                    payload: body.slice(1..),
                },
            });
        }
        let Some(h) = body.get(..5) else {
            if frame_type == VideoFrameType::Command {
                return Ok(VideoTag {
                    frame_type,
                    packet: VideoPacket::Other {
                        codec_id,
                        payload: body.slice(1..),
                    },
                });
            }
            return Err(bad(
                body.len(),
                format!(
                    "avc video tag body is {} bytes, need at least 5",
                    body.len()
                ),
            ));
        };
        let packet_type = match h[1] {
            0 => AvcPacketType::SequenceHeader,
            1 => AvcPacketType::Nalu,
            2 => AvcPacketType::EndOfSequence,
            n => return Err(bad(1, format!("reserved avc packet type {n}"))),
        };
        Ok(VideoTag {
            frame_type,
            packet: VideoPacket::Avc {
                packet_type,
                cts_ms: si24(&h[2..5]),
                payload: body.slice(5..),
            },
        })
    }

    fn parse_ex(body: &Bytes, b0: u8) -> Result<VideoTag, FlvError> {
        let frame_type = VideoFrameType::from_u8((b0 >> 4) & 0x07);
        let packet_type = ExVideoPacketType::from_u8(b0 & 0x0F);
        if frame_type == VideoFrameType::Command && packet_type != ExVideoPacketType::Metadata {
            let command = *body
                .get(1)
                .ok_or_else(|| bad(1, "enhanced video command frame without its command byte"))?;
            return Ok(VideoTag {
                frame_type,
                packet: VideoPacket::ExCommand { command },
            });
        }
        if matches!(
            packet_type,
            ExVideoPacketType::Multitrack | ExVideoPacketType::ModEx
        ) {
            return Ok(VideoTag {
                frame_type,
                packet: VideoPacket::ExUnsupported {
                    packet_type,
                    payload: body.slice(1..),
                },
            });
        }
        let f = body.get(1..5).ok_or_else(|| {
            bad(
                body.len(),
                format!(
                    "enhanced video tag body is {} bytes, too short for its fourcc",
                    body.len()
                ),
            )
        })?;
        let fourcc = FourCc([f[0], f[1], f[2], f[3]]);
        let mut start = 5;
        let mut cts_ms = 0;
        if packet_type == ExVideoPacketType::CodedFrames
            && (fourcc == FourCc::AVC1 || fourcc == FourCc::HVC1)
        {
            let c = body.get(5..8).ok_or_else(|| {
                bad(
                    body.len(),
                    format!("enhanced {fourcc} coded frames without the composition time offset"),
                )
            })?;
            cts_ms = si24(c);
            start = 8;
        }
        Ok(VideoTag {
            frame_type,
            packet: VideoPacket::Ex {
                fourcc,
                packet_type,
                cts_ms,
                payload: body.slice(start..),
            },
        })
    }
}

/// The AACPacketType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AacPacketType {
    /// 0: the payload is an AudioSpecificConfig.
    SequenceHeader,
    /// 1: the payload is one raw AAC frame.
    Raw,
}

impl AacPacketType {
    pub fn as_u8(self) -> u8 {
        match self {
            AacPacketType::SequenceHeader => 0,
            AacPacketType::Raw => 1,
        }
    }
}

/// What follows the first byte of an audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioPacket {
    /// SoundFormat 10.
    Aac {
        packet_type: AacPacketType,
        payload: Bytes,
    },
    /// Enhanced-RTMP audio (SoundFormat 9): the AudioPacketType (low 4 bits of the first byte: 0
    /// sequence start, 1 coded frames, 2 sequence end, 4 multichannel config) and the FourCC
    /// (`Opus`, `fLaC`, `ac-3`, `ec-3`, `mp4a`, `.mp3`).
    Ex {
        packet_type: u8,
        fourcc: FourCc,
        payload: Bytes,
    },
    /// Enhanced-RTMP audio multitrack (5) or ModEx (7) packet, not unpacked here.
    ExUnsupported { packet_type: u8, payload: Bytes },
    /// Any other sound format: payload is the body after the first byte.
    Other { payload: Bytes },
}

/// A parsed audio tag body. The rate/size/type bits are raw (for AAC they are always 3/1/1; for
/// the Enhanced-RTMP format 9 they are the packet type and mean nothing here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTag {
    /// 10 = AAC, 2 = MP3, 9 = Enhanced-RTMP ex-header, ...
    pub sound_format: u8,
    /// 0 = 5.5 kHz, 1 = 11 kHz, 2 = 22 kHz, 3 = 44 kHz.
    pub sound_rate: u8,
    /// 0 = 8-bit, 1 = 16-bit.
    pub sound_size: u8,
    /// 0 = mono, 1 = stereo.
    pub sound_type: u8,
    pub packet: AudioPacket,
}

/// The spec's name for the parser of an audio tag body (returns an [`AudioTag`]).
pub type AudioTagHeader = AudioTag;

impl AudioTag {
    /// Parses the header of an audio tag body; the payload is a slice of `body`.
    /// An error is located in `body`.
    pub fn parse(body: &Bytes) -> Result<AudioTag, FlvError> {
        let b0 = *body.first().ok_or_else(|| bad(0, "empty audio tag body"))?;
        let sound_format = b0 >> 4;
        let packet = match sound_format {
            10 => {
                let packet_type = match body.get(1) {
                    Some(0) => AacPacketType::SequenceHeader,
                    Some(1) => AacPacketType::Raw,
                    Some(n) => return Err(bad(1, format!("reserved aac packet type {n}"))),
                    None => return Err(bad(1, "aac audio tag body without its packet type")),
                };
                AudioPacket::Aac {
                    packet_type,
                    payload: body.slice(2..),
                }
            }
            9 => {
                let packet_type = b0 & 0x0F;
                if packet_type == 5 || packet_type == 7 {
                    AudioPacket::ExUnsupported {
                        packet_type,
                        payload: body.slice(1..),
                    }
                } else {
                    let f = body.get(1..5).ok_or_else(|| {
                        bad(
                            body.len(),
                            format!(
                                "enhanced audio tag body is {} bytes, too short for its fourcc",
                                body.len()
                            ),
                        )
                    })?;
                    AudioPacket::Ex {
                        packet_type,
                        fourcc: FourCc([f[0], f[1], f[2], f[3]]),
                        payload: body.slice(5..),
                    }
                }
            }
            _ => AudioPacket::Other {
                payload: body.slice(1..),
            },
        };
        Ok(AudioTag {
            sound_format,
            sound_rate: (b0 >> 2) & 3,
            sound_size: (b0 >> 1) & 1,
            sound_type: b0 & 1,
            packet,
        })
    }
}
