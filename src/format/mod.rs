//! Containers, without I/O: push parsers that take bytes and return events, and writers that append
//! bytes to a buffer.

pub mod flv;
pub mod hls;
pub mod ts;
