//! Wire protocols, pure and sans-IO: bytes in, values out.

pub mod fstream;
pub mod rtmp;
