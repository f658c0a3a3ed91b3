//! Network protocols as sans-IO sessions: bytes and time in, events and bytes out, no sockets.

pub mod fstream;
pub mod names;
pub mod rtmp;
pub mod rtp;
pub mod rtsp;
pub mod sdp;
pub mod util;
