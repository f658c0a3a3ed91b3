//! From bytes of any supported container to [`MediaEvent`]s and back, as push stages.
//!
//! - [`Demux`] turns input bytes into clean media events: it asks [`crate::format::detect()`] for
//!   the container, bridges that container's parser to the codec layer of [`crate::codec`]
//!   (`flv_in.rs`, `ts_in.rs`, or the Annex B reader), runs every frame through the
//!   [`crate::timeline::Timeline`], and holds the stream back (`gate.rs`, bounded) until each
//!   announced track has its configuration and the video can start on a keyframe.
//! - [`TsOut`] and [`FlvOut`] turn media events into MPEG-TS or FLV bytes.
//!
//! One file per stage, named by what it turns into what; `tests.rs` runs them end to end. Nothing
//! here does I/O; the binaries move the bytes.
//!
//! [`MediaEvent`]: crate::media::MediaEvent

mod demux;
mod flv_in;
mod flv_out;
mod gate;
pub mod hls_out;
pub mod progress;
mod ts_in;
mod ts_out;

pub use demux::Demux;
pub use flv_out::{FlvOut, FlvSink};
pub use hls_out::{
    HlsConfig, HlsError, HlsOut, Names, Notice, Output, Resume, SegmentType, Wall, SPARE_BUFFERS,
};
pub use ts_out::TsOut;

#[cfg(test)]
mod tests;
