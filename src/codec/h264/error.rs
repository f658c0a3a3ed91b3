//! What can be wrong with H.264 data handed to this module.

use std::fmt;

use crate::error::Diag;

/// An H.264 problem: the kind, and where a byte offset exists, a [`Diag`] whose offset counts
/// from the start of the buffer that was parsed (the access unit, the avcC record). The caller
/// that knows where that buffer sits in its stream moves it there with [`Diag::shift`].
///
/// Displayed as the message alone: the offset is relative to the buffer, not a stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H264Error {
    /// A NAL length size other than 1 to 4 bytes was asked for.
    LengthSize(u8),
    /// An AVCC access unit whose NAL length prefix or NAL unit runs past its end (offset in the
    /// access unit).
    NalLength(Diag),
    /// A truncated or malformed AVCDecoderConfigurationRecord (offset in the record).
    Avcc(Diag),
    /// No SPS among the parameter sets.
    NoSps,
    /// A NAL unit given as an SPS is of another type (its type).
    NotSps(u8),
    /// An SPS that `h264-reader` cannot parse, or whose picture size it rejects: what it said.
    BadSps(String),
}

impl H264Error {
    /// The located problem, for the kinds that have a byte offset.
    pub fn diag(&self) -> Option<&Diag> {
        match self {
            H264Error::NalLength(d) | H264Error::Avcc(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for H264Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H264Error::LengthSize(n) => {
                write!(f, "expected a nal length size of 1 to 4 bytes, found {n}")
            }
            H264Error::NalLength(d) | H264Error::Avcc(d) => f.write_str(&d.message),
            H264Error::NoSps => f.write_str("expected at least one sps, found none"),
            H264Error::NotSps(t) => {
                write!(f, "expected an sps nal unit (type 7), found type {t}")
            }
            H264Error::BadSps(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for H264Error {}
