//! HTTP/1.x, one layer for every HTTP server and client in river, on [`crate::net`].
//!
//! Pure parts, with their unit tests beside them:
//! - [`head`]: request heads (httparse) with limits on the request line (414), the head (431)
//!   and malformed input (400); keep-alive and body framing.
//! - [`response`]: response heads, `Date`, entity tags, and what `If-None-Match`, `If-Range` and
//!   `Range` select (304, 206, 416); [`range`]: one byte range.
//! - [`chunked`]: the chunked request-body decoder.
//!
//! On sockets (through [`crate::net`] only):
//! - [`handler`]: what an application gives a server and gets back (requests, responses,
//!   replies, options, counters); no sockets.
//! - [`server`]: connections, keep-alive and its idle timeout, the connection cap, request bodies,
//!   streaming responses and parked requests, driven by any reactor loop; [`run`] gives it
//!   threads of its own.
//! - [`client`]: a POST with a deadline, on the caller's reactor.
//!
//! Applications of it: [`files`], the HLS directory server behind river-hls-seg `--serve`
//! (re-exported here as [`serve`]), and river-thumb's `--serve` (in `app::thumb`).

pub mod chunked;
pub mod client;
pub mod files;
pub mod handler;
pub mod head;
pub mod hls;
pub mod index;
pub mod mime;
pub mod path;
pub mod range;
pub mod response;
pub mod run;
pub mod server;

pub use files::{serve, ServeOptions, ServerHandle, Stats};
