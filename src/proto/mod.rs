//! Wire protocols, pure and sans-IO: bytes in, values out.

pub mod rtp;
pub mod rtsp;
pub mod sdp;
pub mod util;
