//! What can be wrong with FLV data handed to this module, or with a tag asked of the writer.

use std::fmt;

use super::MAX_DATA_SIZE;
use crate::error::Diag;

/// An FLV problem: the kind, and where a byte offset exists, a [`Diag`] whose offset counts from
/// the start of the tag body that was parsed. The caller that knows where the body sits in its
/// stream (the tag's offset plus [`super::TAG_HEADER_LEN`]) moves it there with [`Diag::shift`].
///
/// Displayed as the message alone: the offset is relative to the body, not a stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvError {
    /// A video or audio tag body too short for its header, or with a reserved packet type.
    Body(Diag),
    /// Script data (AMF0) that is empty, truncated, malformed, nested too deep, too expensive to
    /// decode, or not what was asked for (a command that is data).
    Script(Diag),
    /// A tag body of this many bytes does not fit in the 24-bit DataSize.
    TooLarge(usize),
}

impl FlvError {
    /// The located problem, for the kinds that have a byte offset.
    pub fn diag(&self) -> Option<&Diag> {
        match self {
            FlvError::Body(d) | FlvError::Script(d) => Some(d),
            FlvError::TooLarge(_) => None,
        }
    }
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlvError::Body(d) | FlvError::Script(d) => f.write_str(&d.message),
            FlvError::TooLarge(n) => write!(
                f,
                "tag body of {n} bytes does not fit in flv's 24-bit size (max {MAX_DATA_SIZE})"
            ),
        }
    }
}

impl std::error::Error for FlvError {}

/// Shim while `pipeline::FlvOut::event` (src/pipeline.rs, being split) still returns
/// `Result<_, String>` and applies `?` to the tag writers: the same text. Remove once it returns
/// a typed error.
impl From<FlvError> for String {
    fn from(e: FlvError) -> String {
        e.to_string()
    }
}
