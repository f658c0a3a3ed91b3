//! Elementary-stream codecs: H.264, H.265 and AAC bitstream handling, no containers and no I/O.

pub mod aac;
pub(crate) mod bits;
pub mod h264;
pub mod h265;
