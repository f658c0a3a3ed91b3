//! What can go wrong turning a keyframe into an image.

use std::fmt;

/// Why a keyframe gave no image. Decoding and encoding errors of the codec crates are kept as
/// their messages (they are shown, never matched on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbError {
    /// openh264 could not be started: what it said.
    DecoderStart(String),
    /// openh264 failed on the keyframe: what it said.
    Decode(String),
    /// The decoder took the keyframe but gave no picture.
    NoPicture,
    /// The decoder gave a picture of an impossible size (width, height) or strides.
    UnusablePicture(usize, usize),
    /// The decoder gave a picture plane shorter than its size says.
    ShortPlane,
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
            ThumbError::DecoderStart(e) => write!(f, "cannot start the H.264 decoder: {e}"),
            ThumbError::Decode(e) => write!(f, "H.264 decoding failed: {e}"),
            ThumbError::NoPicture => {
                f.write_str("the decoder produced no picture for this keyframe")
            }
            ThumbError::UnusablePicture(w, h) => {
                write!(f, "the decoder returned an unusable {w}x{h} picture")
            }
            ThumbError::ShortPlane => f.write_str("the decoder returned a short picture plane"),
            ThumbError::InconsistentPicture => f.write_str("inconsistent picture planes"),
            ThumbError::JpegSize(w, h) => write!(f, "{w}x{h} is outside JPEG's 1..65535 range"),
            ThumbError::Jpeg(e) => write!(f, "JPEG encoding failed: {e}"),
            ThumbError::Png(e) => write!(f, "PNG encoding failed: {e}"),
        }
    }
}

impl std::error::Error for ThumbError {}
