//! The shared unit every river tool passes around: a [`Frame`] of one track, with timestamps in
//! 90 kHz, plus the per-track configuration needed to describe it to a container.
//!
//! Conventions:
//! - Video frames are whole access units (H.264 or H.265, as [`Frame::codec`] says) in the
//!   length-prefixed form of MP4, FLV and RTMP (AVCC for H.264, the same layout for H.265's hvcC):
//!   each NAL unit prefixed by its length as a 4-byte big-endian integer. Parameter sets may or
//!   may not be present in the frame; the track's [`VideoConfig`] always has them.
//! - Audio frames are single raw AAC frames (no ADTS header); the track's [`AudioConfig`] holds the
//!   AudioSpecificConfig.
//! - Timestamps are `i64` in [`CLOCK_HZ`] units. Demuxers emit them as the container stores them
//!   (possibly wrapped at 2^33 for TS, or at 2^32 ms for FLV); the [`crate::timeline`] stage unwraps
//!   and repairs them before any muxer sees them.

use bytes::Bytes;

/// The clock every timestamp in river is expressed in: MPEG's 90 kHz.
pub const CLOCK_HZ: i64 = 90_000;

/// Which track a frame belongs to. River carries at most one video (H.264 or H.265) and one audio
/// (AAC) track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Track {
    Video,
    Audio,
}

/// The video codecs river carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoCodec {
    /// H.264/AVC.
    #[default]
    H264,
    /// H.265/HEVC.
    H265,
}

impl VideoCodec {
    /// The name logs and errors use: `H.264` or `H.265`.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
        }
    }

    /// The [`Codec`] of this codec's frames.
    pub fn codec(self) -> Codec {
        match self {
            VideoCodec::H264 => Codec::H264,
            VideoCodec::H265 => Codec::H265,
        }
    }
}

/// What a frame's bytes are: the codec every frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// An H.264 access unit, AVCC (4-byte lengths).
    H264,
    /// An H.265 access unit, 4-byte lengths as in hvcC samples.
    H265,
    /// One raw AAC frame.
    Aac,
}

impl Codec {
    /// The track frames of this codec belong to.
    pub fn track(self) -> Track {
        match self {
            Codec::H264 | Codec::H265 => Track::Video,
            Codec::Aac => Track::Audio,
        }
    }

    /// The video codec, for video frames.
    pub fn video(self) -> Option<VideoCodec> {
        match self {
            Codec::H264 => Some(VideoCodec::H264),
            Codec::H265 => Some(VideoCodec::H265),
            Codec::Aac => None,
        }
    }
}

/// One video access unit or one audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub track: Track,
    /// What `data` holds; always of `track` ([`Codec::track`]).
    pub codec: Codec,
    /// Decode timestamp in 90 kHz units.
    pub dts: i64,
    /// Presentation timestamp in 90 kHz units (equal to `dts` for audio and for streams without
    /// reordering).
    pub pts: i64,
    /// Video: the access unit is a clean join point: an H.264 IDR picture, or an H.265 IRAP
    /// picture (IDR, CRA or BLA; a CRA's RASL pictures cannot be decoded after a join there and
    /// are dropped where a stream starts). Audio: always true.
    pub keyframe: bool,
    /// Video: NAL units with 4-byte lengths. Audio: one raw AAC frame.
    pub data: Bytes,
}

/// Video track configuration: the codec, its parameter sets, and what was parsed out of the first
/// SPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    pub codec: VideoCodec,
    /// H.265 video parameter set NAL units (header included, no start code, no length prefix);
    /// empty for H.264.
    pub vps: Vec<Bytes>,
    /// Sequence parameter set NAL units (header included, no start code, no length prefix).
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units (header included, no start code, no length prefix).
    pub pps: Vec<Bytes>,
    /// Coded picture size after cropping, in pixels.
    pub width: u32,
    pub height: u32,
    /// Frame rate from the SPS VUI timing info, as (numerator, denominator) frames per second.
    pub frame_rate: Option<(u32, u32)>,
}

/// AAC track configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// The AudioSpecificConfig bytes (ISO 14496-3 1.6.2.1), as FLV and MP4 carry them.
    pub asc: Bytes,
    /// Audio object type (2 = AAC LC).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AudioConfig {
    /// Duration of one AAC frame (1024 samples) in 90 kHz units, rounded down.
    pub fn frame_duration(&self) -> i64 {
        if self.sample_rate == 0 {
            return 0;
        }
        1024 * CLOCK_HZ / self.sample_rate as i64
    }
}

/// What a demuxer produces, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The tracks the container announces (FLV header flags, TS PMT). Sent before any frame when the
    /// container says so; absent for formats that announce nothing (raw Annex B).
    Tracks {
        video: bool,
        audio: bool,
    },
    /// The video track's configuration, sent before the first video frame and again when it changes.
    Video(VideoConfig),
    /// The audio track's configuration, sent before the first audio frame and again when it changes.
    Audio(AudioConfig),
    Frame(Frame),
    /// The source's timeline broke (a jump the timeline stage re-stamped) just before the next
    /// frame: muxers that can mark it (HLS `EXT-X-DISCONTINUITY`) should.
    Discontinuity,
}

/// What container a byte stream is in, as detection ([`crate::format::detect()`]) tells it from the
/// first bytes or as a user names it. The one format type of every layer: the demuxer, RTP views
/// and the relay's splitter take it; the tools' `--input-format` converts into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamFormat {
    /// FLV (H.264 or H.265 + AAC; H.265 as Enhanced FLV).
    Flv,
    /// MPEG-TS, 188-byte packets.
    Ts,
    /// A raw H.264 Annex B byte stream (start codes).
    AnnexB,
    /// A raw H.265 Annex B byte stream (start codes).
    AnnexBH265,
    /// None of these: the relay forwards such bytes as they are; the demuxer reads them as
    /// Annex B, whose reader skips whatever precedes the first start code.
    Opaque,
}

impl StreamFormat {
    /// The name logs use: `FLV`, `MPEG-TS`, `H.264 Annex B`, `H.265 Annex B` or `unknown (opaque)`.
    pub fn describe(self) -> &'static str {
        match self {
            StreamFormat::Flv => "FLV",
            StreamFormat::Ts => "MPEG-TS",
            StreamFormat::AnnexB => "H.264 Annex B",
            StreamFormat::AnnexBH265 => "H.265 Annex B",
            StreamFormat::Opaque => "unknown (opaque)",
        }
    }
}
