//! Containers, without I/O: push parsers that take bytes and return events, and writers that append
//! bytes to a buffer.

mod detect;
pub mod flv;
pub mod hls;
pub mod mp4;
pub mod ts;

pub use detect::{detect, DETECT_LIMIT};
