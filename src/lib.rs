//! River: a Unix-pipe live-streaming toolkit.
//!
//! The library holds every parser, muxer and protocol state machine; the binaries in `src/bin/`
//! wire it to stdin/stdout. Nothing in the library prints: problems travel as values
//! ([`error::Diag`]) and the binaries log them.
//!
//! Errors: library functions return typed errors: [`error::Diag`] (a message and a byte offset)
//! from stream parsers, and a small enum per layer elsewhere, with a `Diag` inside where the
//! problem has an offset ([`codec::h264::H264Error`], [`codec::aac::AacError`],
//! [`format::flv::FlvError`], [`proto::sdp::SdpError`], [`proto::rtp::ingest::IngestError`],
//! [`proto::rtsp::auth::AuthError`], [`relay::convert::ConvertError`],
//! [`relay::client::ClientError`], [`thumb::ThumbError`], [`camera::CameraUrlError`]). `anyhow`
//! is only for [`app`], where each tool adds context and gives up, and [`stdio::main_with`] takes
//! any error that lends itself as a `dyn Error` (an `anyhow::Error` does).
//!
//! Map:
//! - [`media`]: the shared unit, [`media::Frame`] with 90 kHz timestamps, and track configuration.
//! - [`timeline`]: the one timestamp stage every tool uses (unwrap, re-stamp jumps, stay monotonic).
//! - [`codec`]: H.264 (Annex B / AVCC, access units, parameter sets, avcC, timestamps for raw
//!   streams) and AAC (ADTS, AudioSpecificConfig).
//! - [`format`]: containers without I/O: FLV (tags, AMF0 metadata) and MPEG-TS (mux and demux).
//! - [`net`]: sockets on mio: the reactor and timers, listeners whose accept survives running out
//!   of descriptors, the one bounded write path, outbound connects with deadlines, the UDP pair.
//!   Every socket outside the relay hub goes through it (the hub moves onto it next; retina's
//!   tokio stays inside river-rtsp-pull).
//! - [`http`]: the one HTTP/1.x layer on [`net`]: pure request heads (with limits), responses,
//!   ranges and entity tags; a server with keep-alive, a connection cap, streams and parked
//!   requests; a POST client with a deadline. river-hls-seg `--serve` ([`http::serve`]) and
//!   river-thumb `--serve` run on it.
//! - [`proto`]: network protocols as sans-IO sessions: [`proto::rtmp`] (handshake, chunk stream,
//!   AMF0 commands, a server session for publish and play) and [`proto::fstream`] (the fstream
//!   handshake).
//! - [`pipeline`]: format detection and the bridges between containers and frames, as push stages.
//! - [`cli`]: one clap definition per tool, shared by the binaries, the man pages and completions.
//! - [`app`]: per-tool glue, `run(args) -> anyhow::Result<()>` (the only module on `anyhow`).
//! - [`testsrc`]: the embedded test clip and its endless, re-stamped replay (`river-testsrc`).
//! - [`thumb`]: thumbnails from the latest keyframe (openh264 decode, scale, JPEG/PNG), no I/O.
//! - [`relay`]: river-relay's pure parts: users, keyframe-aware chunking, GOP cache, watcher queues.
//! - [`stdio`]: stdin/stdout policy (no binary to a terminal, broken pipe is a quiet exit), the
//!   shared `main` wrapper and exit codes.

pub mod app;
pub mod camera;
pub mod cli;
pub mod codec;
pub mod error;
pub mod format;
pub mod http;
pub mod media;
pub mod net;
pub mod pipeline;
pub mod proto;
pub mod relay;
pub mod stdio;
pub mod testsrc;
pub mod thumb;
pub mod timeline;
