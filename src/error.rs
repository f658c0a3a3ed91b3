//! Errors and warnings that point at the bytes.
//!
//! The library never prints. Parsers report problems they recovered from as [`Diag`] values in their
//! event streams, and problems they cannot get past as `Err(Diag)` or as a small per-layer error
//! enum with a `Diag` inside where the problem has a byte offset ([`crate::codec::h264::H264Error`],
//! [`crate::codec::aac::AacError`], [`crate::format::flv::FlvError`], ...). All of them name what
//! was expected, what came, and where.
//!
//! Where an offset counts from: a stream parser (FLV, MPEG-TS, Annex B, RTMP, a chunked body)
//! counts from the first byte ever pushed into it. A parser of one buffer (a tag body, an avcC
//! record, an AudioSpecificConfig, an AMF0 script body) counts from the start of that buffer; the
//! caller that knows where the buffer sits in its stream moves the offset there with
//! [`Diag::shift`]. The per-layer enums show such a buffer-relative error without the
//! "(at byte offset N)" suffix (their messages say where in the buffer when it matters), so a
//! relative offset is never printed as if it were a stream position.
//!
//! [`Chain`] prints an error with its sources, `outer: inner: innermost`, the way every tool's
//! final error line reads.

use std::error::Error;
use std::fmt;

/// A problem in the input, located by its byte offset (see the module documentation for where it
/// counts from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    /// Offset (from the first byte ever pushed into the parser, or from the start of the buffer a
    /// one-buffer parser was given) where the problem starts.
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

    /// The same problem located in an enclosing stream: a buffer-relative offset moved by the
    /// position `base` where the buffer starts.
    #[must_use]
    pub fn shift(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte offset {})", self.message, self.offset)
    }
}

impl Error for Diag {}

/// Displays an error followed by each of its sources, separated by `": "` (as `anyhow`'s `{:#}`
/// does): `connecting to hub:9000: Connection refused (os error 111)`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
        }
        Ok(())
    }
}

/// Every error in the chain of `e`, itself first.
pub fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |&e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connecting to hub:9000")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn shift_moves_the_offset_and_keeps_the_message() {
        let d = Diag::new(7, "expected sps, found the end").shift(1000);
        assert_eq!(d, Diag::new(1007, "expected sps, found the end"));
        assert_eq!(
            d.to_string(),
            "expected sps, found the end (at byte offset 1007)"
        );
        assert_eq!(Diag::new(5, "x").shift(u64::MAX).offset, u64::MAX);
    }

    #[test]
    fn chain_prints_every_source() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        ));
        assert_eq!(Chain(&e).to_string(), "connecting to hub:9000: refused");
        assert_eq!(chain(&e).count(), 2);
        assert!(chain(&e).any(|c| c.downcast_ref::<std::io::Error>().is_some()));
        let d = Diag::new(3, "bad");
        assert_eq!(Chain(&d).to_string(), "bad (at byte offset 3)");
    }
}
