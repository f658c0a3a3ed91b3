//! Errors and warnings that point at the bytes.
//!
//! The library never prints. Parsers report problems they recovered from as [`Diag`] values in their
//! event streams, and problems they cannot get past as `Err(Diag)`. Both name what was expected, what
//! came, and the byte offset in the input stream where it happened.

use std::fmt;

/// A problem in the input, located by its absolute byte offset in the stream it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    /// Absolute offset (from the first byte ever pushed into the parser) where the problem starts.
    pub offset: u64,
    /// One line, lower case, no trailing period: what was expected and what came.
    pub message: String,
}

impl Diag {
    pub fn new(offset: u64, message: impl Into<String>) -> Self {
        Diag {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte offset {})", self.message, self.offset)
    }
}

impl std::error::Error for Diag {}
