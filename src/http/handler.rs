//! What an application gives an HTTP [`Server`](super::server::Server) and gets back: the
//! [`Handler`] trait, [`Request`] and [`ReqId`], [`Response`] with its [`Body`], the [`Reply`]
//! kinds (now, parked, streaming), [`SendError`], the server's [`Options`] and its [`Counters`].
//! No sockets here; the connection state machine that uses these is [`super::server`].

use std::borrow::Cow;
use std::fs::File;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::head::{Head, Limits};

/// Settings shared by every connection of a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections open at once (across every thread sharing the [`Counters`]); one more is
    /// answered 503 and closed.
    pub max_connections: usize,
    /// A keep-alive connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// From the first byte of a request head to its end; 408 after.
    pub head_timeout: Duration,
    /// A response with bytes left to write that makes no progress for this long is dropped.
    pub write_timeout: Duration,
    pub limits: Limits,
    /// Unwritten memory bytes a connection may hold (streams see [`SendError::Full`] beyond).
    pub max_output: usize,
    /// Fields sent on every response, before the response's own.
    pub base_fields: Vec<(&'static str, &'static str)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(15),
            head_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(20),
            limits: Limits::default(),
            max_output: 4 << 20,
            base_fields: vec![("Server", "river")],
        }
    }
}

/// Names one request: the server (thread), the connection slot and a serial that is never reused,
/// so an answer for a request whose connection is gone is dropped, not sent to a newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReqId {
    pub server: u32,
    pub(super) slot: u32,
    pub(super) serial: u64,
}

#[cfg(test)]
impl ReqId {
    /// An id no server made, for tests of code that parks requests.
    pub fn for_tests(serial: u64) -> ReqId {
        ReqId {
            server: 0,
            slot: 0,
            serial,
        }
    }
}

/// A request as the handler sees it.
#[derive(Debug)]
pub struct Request {
    pub id: ReqId,
    pub head: Head,
    pub peer: std::net::SocketAddr,
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of an open file from its start, sent with `sendfile`.
    File(File, u64),
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response: status, fields, body, and how the layer may answer conditional and range requests.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub fields: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub body: Body,
    /// The entity tag of a 200 body (sent as `ETag`; `If-None-Match` and `If-Range` use it).
    pub etag: Option<String>,
    /// Serve `Range` requests for a 200 body (and send `Accept-Ranges: bytes`).
    pub ranges: bool,
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            fields: Vec::new(),
            body,
            etag: None,
            ranges: false,
        }
    }

    /// A plain-text body.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status, Body::Bytes(Bytes::from(text.into())))
            .field("Content-Type", "text/plain; charset=utf-8")
    }

    pub fn field(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.fields.push((name.into(), value.into()));
        self
    }
}

/// What a handler does with a request.
#[derive(Debug)]
pub enum Reply {
    /// Answer now.
    Now(Response),
    /// Answer later with [`Server::complete`](super::server::Server::complete) (or a [`Completer`](super::run::Completer)).
    Park,
    /// Send this status and these fields now and the body in pieces with [`Server::send`](super::server::Server::send), up to
    /// [`Server::end`](super::server::Server::end). The body of the response given is ignored.
    Stream(Response),
}

/// The application side of a server.
pub trait Handler {
    /// A request head arrived.
    fn request(&mut self, req: &Request, now: Instant) -> Reply;
    /// Bytes of the request's body (`end` on the last call). Returning a response completes a
    /// parked request.
    fn body(&mut self, _id: ReqId, _data: &[u8], _end: bool) -> Option<Response> {
        None
    }
    /// A parked or streaming request's connection is gone.
    fn closed(&mut self, _id: ReqId) {}
    /// A streaming response's outbox was written out: there is room for more (a stream fed
    /// only while there is room waits for this after [`SendError::Full`]).
    fn writable(&mut self, _id: ReqId) {}
    /// The layer refused a request head from `peer` itself (malformed, over a limit): it answers
    /// `status` and closes; `message` says why, in one line.
    fn refused(&mut self, _peer: std::net::SocketAddr, _status: u16, _message: &str) {}
    /// The earliest deadline of the requests this handler parked on server `server` (the
    /// [`ReqId::server`] of the thread asking): the server's loop wakes for it.
    fn deadline(&self, _server: u32) -> Option<Instant> {
        None
    }
    /// Answers for the requests parked on server `server` whose deadline passed at `now` (a
    /// blocked request that waited long enough gets its error here); the server sends them.
    fn expire(&mut self, _server: u32, _now: Instant) -> Vec<(ReqId, Response)> {
        Vec::new()
    }
}

/// Why [`Server::send`](super::server::Server::send) did not queue a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The outbox is at its limit; the client reads slower than the stream.
    Full,
    /// No such stream (ended, or its connection is gone).
    Gone,
    /// From another thread ([`Completer::send`](super::run::Completer::send)): the server
    /// thread did not take the chunk within the caller's wait.
    Busy,
}

/// Counters since the server started (shared by every thread of a [`spawn`](super::run::spawn)ed server).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections open now, across every thread of the server (the cap counts this).
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Connections closed at once: over the cap, or shed for want of descriptors.
    pub refused: AtomicU64,
    pub accept_errors: AtomicU64,
    pub requests: AtomicU64,
    pub ok: AtomicU64,
    pub not_modified: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    /// Responses that could not be written completely.
    pub write_errors: AtomicU64,
    /// Body bytes of the responses written completely.
    pub body_bytes: AtomicU64,
}
