//! river-relay's pure parts: who may broadcast ([`users`]), how a broadcast is cut into chunks with
//! keyframe marks ([`stream`]), what a late joiner gets first ([`cache`]), each watcher's bounded
//! queue and slow-watcher policy ([`queue`]), derived container views ([`convert`]), one FLV
//! timeline across a takeover ([`restamp`]), RTMP messages chunked once per channel for its
//! players ([`prechunk`]), and what publish and play hooks are told and what
//! their answers mean ([`hooks`]).
//! No I/O here except [`users`] reading its files; time is always an input.

pub mod cache;
pub mod cascade;
pub mod convert;
pub mod hls;
pub mod hooks;
pub mod metrics;
pub mod pace;
pub mod prechunk;
pub mod queue;
pub mod restamp;
pub mod stream;
pub mod users;

// The channels (pure), and the hub (one reactor) with its fronts, HTTP side (with its player
// pages), stats and the two clients.
pub mod channel;
pub mod client;
mod front;
pub mod http;
pub mod hub;
pub mod player;
pub mod rtsp;
pub mod stats;

#[cfg(test)]
pub(crate) mod testdata;
