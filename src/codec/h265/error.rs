//! What can be wrong with H.265 data handed to this module.

use std::fmt;

use crate::error::Diag;

/// An H.265 problem: the kind, and where a byte offset exists, a [`Diag`] whose offset counts
/// from the start of the buffer that was parsed (the hvcC record). The caller that knows where that
/// buffer sits in its stream moves it there with [`Diag::shift`].
///
/// Displayed as the message alone: the offset is relative to the buffer, not a stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H265Error {
    /// A truncated or malformed HEVCDecoderConfigurationRecord (offset in the record).
    Hvcc(Diag),
    /// No SPS among the parameter sets.
    NoSps,
    /// A NAL unit given as a parameter set is of another type: (expected, found).
    WrongType(u8, u8),
    /// An SPS that cannot be parsed: what is wrong.
    BadSps(String),
    /// A PPS that cannot be parsed: what is wrong.
    BadPps(String),
}

impl H265Error {
    /// The located problem, for the kinds that have a byte offset.
    pub fn diag(&self) -> Option<&Diag> {
        match self {
            H265Error::Hvcc(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for H265Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H265Error::Hvcc(d) => f.write_str(&d.message),
            H265Error::NoSps => f.write_str("expected at least one h.265 sps, found none"),
            H265Error::WrongType(want, got) => {
                write!(
                    f,
                    "expected an h.265 nal unit of type {want}, found type {got}"
                )
            }
            H265Error::BadSps(m) | H265Error::BadPps(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for H265Error {}
