//! Elementary-stream codecs: H.264 and AAC bitstream handling, no containers and no I/O.

pub mod aac;
pub mod h264;
