//! What can go wrong turning a keyframe into an image.

use std::fmt;

use crate::media::VideoCodec;

/// Why a keyframe gave no image. Decoding and encoding errors of the codec crates are kept as
/// their messages (they are shown, never matched on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbError {
    /// The codec's decoder (openh264, libde265) could not be started: what it said.
    DecoderStart(VideoCodec, String),
    /// The decoder failed on the keyframe: what it said.
    Decode(VideoCodec, String),
    /// The decoder took the keyframe but gave no picture.
    NoPicture,
    /// The decoder gave a picture of an impossible size (width, height) or strides.
    UnusablePicture(usize, usize),
    /// The decoder gave a picture plane shorter than its size says.
    ShortPlane,
    /// A chroma format other than 4:2:0 or monochrome (its name).
    Chroma(String),
    /// A picture whose planes do not match its size.
    InconsistentPicture,
    /// A picture JPEG cannot hold (width, height).
    JpegSize(u32, u32),
    /// The JPEG encoder failed: what it said.
    Jpeg(String),
    /// The PNG encoder failed: what it said.
    Png(String),
}

impl fmt::Display for ThumbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThumbError::DecoderStart(c, e) => {
                write!(f, "cannot start the {} decoder: {e}", c.name())
            }
            ThumbError::Decode(c, e) => write!(f, "{} decoding failed: {e}", c.name()),
            ThumbError::NoPicture => {
                f.write_str("the decoder produced no picture for this keyframe")
            }
            ThumbError::UnusablePicture(w, h) => {
                write!(f, "the decoder returned an unusable {w}x{h} picture")
            }
            ThumbError::ShortPlane => f.write_str("the decoder returned a short picture plane"),
            ThumbError::Chroma(c) => {
                write!(
                    f,
                    "the picture is {c} chroma; river-thumb decodes 4:2:0 and monochrome"
                )
            }
            ThumbError::InconsistentPicture => f.write_str("inconsistent picture planes"),
            ThumbError::JpegSize(w, h) => write!(f, "{w}x{h} is outside JPEG's 1..65535 range"),
            ThumbError::Jpeg(e) => write!(f, "JPEG encoding failed: {e}"),
            ThumbError::Png(e) => write!(f, "PNG encoding failed: {e}"),
        }
    }
}

impl std::error::Error for ThumbError {}
