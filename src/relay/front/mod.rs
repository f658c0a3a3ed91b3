//! The hub's fronts: each protocol's glue between its sessions and the channels
//! ([`super::channel`]). Each is an `impl Hub` block over the common core in [`super::hub`]:
//! - [`cascade`]: the outbound fstream connections: an edge's pulls, pushes to another hub;
//! - [`fstream`]: the fstream handshake, and a broadcaster's byte stream (fstream, HTTP push);
//! - [`http`]: HTTP requests: watch (http-flv/ts), push, `/stats`, `/metrics`;
//! - [`rtmp`]: RTMP publish and play;
//! - [`rtsp`]: RTSP record and play, over TCP and UDP;
//! - [`hls`]: HLS from the channels (`--hls`), served on the HTTP front;
//!
//! and what they share: [`hooks`], the publish and play hooks' calls on the hub's reactor, and
//! where each front goes on once a hook has decided.

pub(super) mod cascade;
pub(super) mod fstream;
pub(super) mod hls;
pub(super) mod hooks;
pub(super) mod http;
pub(super) mod rtmp;
pub(super) mod rtsp;

/// A watcher that sends more than this after its handshake or request is closed.
pub(super) const MAX_WATCHER_INPUT: u64 = 1 << 20;
