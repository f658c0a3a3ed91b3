//! Sockets: the reactor, listeners, connections and outbound connects. Every TCP and UDP socket
//! river opens on mio goes through here (river-rtsp-pull's retina client brings its own tokio;
//! the relay hub still holds its own sockets until it moves onto these types).
//!
//! - [`reactor`]: a mio `Poll` with a waker for other threads, and [`reactor::Timers`] (pure
//!   deadlines).
//! - [`listener`]: TCP accept that survives `EMFILE`/`ENFILE` (a reserve descriptor, then a
//!   pause) and `ECONNABORTED`; it never stops accepting for good.
//! - [`conn`]: the one write path: a bounded [`conn::Outbox`] of shared `Bytes` chunks and file
//!   ranges, vectored writes and `sendfile`, `WouldBlock` and `EINTR` handled once; bounded reads.
//! - [`connect`]: non-blocking outbound connects with a deadline.
//! - [`udp`]: the RTP/RTCP port pair.
//!
//! Protocols live elsewhere and only call these; the HTTP layer on top is [`crate::http`].

pub mod conn;
pub mod connect;
pub mod listener;
pub mod reactor;
pub mod udp;

pub use conn::{Conn, Outbox};
pub use listener::{refuse, Accept, Listener};
pub use reactor::{Reactor, Timers};
