//! The HTTP/1.x server: connections on [`crate::net`], requests to a [`Handler`], responses back.
//!
//! One [`Server`] holds the HTTP connections of one reactor. It owns no reactor itself: the loop
//! that owns the `Poll` hands it accepted sockets ([`Server::adopt`]), the events of its tokens
//! ([`Server::event`]) and the time ([`Server::timers`]), so a process with other protocols on the
//! same reactor (the relay hub) embeds it beside them. [`spawn`](super::run::spawn) runs one on its own thread for
//! the servers that are only HTTP, with a [`Completer`](super::run::Completer) for other threads.
//!
//! What the layer does for every handler:
//! - keep-alive: HTTP/1.1 unless `Connection: close`, HTTP/1.0 with `Connection: keep-alive`;
//!   pipelined requests are answered in order, the next one parsed once the previous response is
//!   written;
//! - timeouts ([`Options`]): an idle keep-alive connection is closed after `idle_timeout`; a
//!   request head must arrive within `head_timeout` of its first byte (else 408); a response that
//!   makes no write progress for `write_timeout` is dropped;
//! - head limits ([`super::head::Limits`]: 414, 431, 400) and a connection cap (503 and close);
//! - representations: a 200 response with an entity tag answers `If-None-Match` with 304; one
//!   that allows ranges answers one `Range` with 206 or 416 (`If-Range` by tag); HEAD gets the
//!   head of the GET answer with its `Content-Length` and no body;
//! - request bodies (`Content-Length` or chunked) go to [`Handler::body`] as they arrive;
//! - long-lived responses ([`Reply::Stream`]): chunked for HTTP/1.1 (the connection may be reused
//!   after [`Server::end`]), close-delimited for HTTP/1.0; [`Server::send`] queues shared chunks
//!   into the bounded outbox and says when it is full;
//! - parked requests ([`Reply::Park`]): answered later with [`Server::complete`], from another
//!   event on the same reactor or from another thread through a
//!   [`Completer`](super::run::Completer), or by the handler itself when their deadline passes
//!   ([`Handler::deadline`], [`Handler::expire`]): a parked request holds no thread.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::chunked::ChunkedDecoder;
use super::head::{self, BodyFraming};
use super::response::{self, Conditions, Framing, Selected};
use crate::net::conn::Received;
use crate::net::{Conn, Timers};

pub use super::handler::{
    Body, Counters, Handler, Options, Reply, ReqId, Request, Response, SendError,
};

/// The access log's target: one debug line per response, `PEER "METHOD TARGET" STATUS BYTES
/// MS` (the milliseconds from the request's head to its answer, a parked request's wait
/// included). On with `-vv` or `RUST_LOG=river::http::access=debug`.
pub const ACCESS_LOG: &str = "river::http::access";

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

enum Phase {
    /// Reading a request head (idle when nothing is buffered).
    Head,
    /// The handler holds the request.
    Parked,
    /// A long-lived response; `chunked` frames each piece.
    Streaming { chunked: bool },
    /// The response is queued; once written, the next request (or the close).
    Writing,
}

/// What a parked or streaming response needs from its request.
struct Current {
    serial: u64,
    version: u8,
    keep_alive: bool,
    head_only: bool,
    if_none_match: Option<String>,
    if_range: Option<String>,
    range: Option<String>,
    /// `METHOD target` and when the head was read, for the access log (only when it is on).
    access: Option<(String, Instant)>,
}

impl Current {
    /// For an answer the layer gives on its own before the connection closes (a malformed or
    /// late head): HTTP/1.1, no conditions, not a request the handler saw.
    fn refusal() -> Current {
        Current {
            serial: 0,
            version: 1,
            keep_alive: false,
            head_only: false,
            if_none_match: None,
            if_range: None,
            range: None,
            access: None,
        }
    }
}

enum BodyIn {
    Length(u64),
    Chunked(ChunkedDecoder),
}

struct HConn {
    net: Conn,
    peer: std::net::SocketAddr,
    inbuf: Vec<u8>,
    phase: Phase,
    cur: Option<Current>,
    body_in: Option<BodyIn>,
    /// Close once the outbox is written.
    close_after: bool,
    /// The socket may hold unread bytes (a read stopped at the buffer cap).
    unread: bool,
    peer_closed: bool,
    /// Last read or write progress, and the first byte of the head in progress.
    last_io: Instant,
    head_started: Option<Instant>,
    /// The earliest timer queued for this slot.
    armed: Option<Instant>,
    /// Body bytes of the response being written (counted when it is all out).
    resp_body: u64,
    /// Not read until [`Server::resume`]: its request body waits in the socket (back-pressure
    /// for an application that cannot take more yet).
    paused: bool,
}

/// The HTTP connections of one reactor; see the module docs.
pub struct Server<H> {
    pub handler: H,
    opts: Options,
    server: u32,
    base: usize,
    conns: Vec<Option<HConn>>,
    free: Vec<usize>,
    open: usize,
    serial: u64,
    timers: Timers,
    due: Vec<usize>,
    counters: Arc<Counters>,
    date: (u64, String),
}

impl<H: Handler> Server<H> {
    /// A server whose connections use tokens from `token_base` up; `server` is put in every
    /// [`ReqId`] (the thread number of a [`spawn`](super::run::spawn)ed server).
    pub fn new(
        handler: H,
        opts: Options,
        token_base: usize,
        server: u32,
        counters: Arc<Counters>,
    ) -> Self {
        Server {
            handler,
            opts,
            server,
            base: token_base,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            serial: 0,
            timers: Timers::new(),
            due: Vec::new(),
            counters,
            date: (0, String::new()),
        }
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Connections open.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Whether `token` is one of this server's connections.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.base && token.0 - self.base < self.conns.len()
    }

    /// The earliest deadline of any connection, or of a request the handler parked with one.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.timers.next(), self.handler.deadline(self.server)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Answers an accepted connection with 503 and closes it (a cap kept by the caller, or this
    /// server's own): one non-blocking write into the new socket's empty buffer
    /// ([`crate::net::refuse`]).
    pub fn refuse(&mut self, sock: TcpStream) {
        bump(&self.counters.refused, 1);
        let body = "503 Service Unavailable: too many connections\n";
        let mut msg = response::write_head(
            1,
            503,
            &[("Content-Type", "text/plain; charset=utf-8")],
            Framing::Length(body.len() as u64),
            false,
        );
        msg.extend_from_slice(body.as_bytes());
        crate::net::refuse(sock, &msg);
    }

    /// Takes an accepted connection (or closes it with 503 when at the cap).
    pub fn adopt(
        &mut self,
        registry: &Registry,
        sock: TcpStream,
        peer: std::net::SocketAddr,
        now: Instant,
    ) {
        bump(&self.counters.accepted, 1);
        let mut sock = sock;
        let open = self.counters.open.fetch_add(1, Ordering::Relaxed);
        if open >= self.opts.max_connections as u64 {
            self.counters.open.fetch_sub(1, Ordering::Relaxed);
            self.refuse(sock);
            return;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if registry
            .register(
                &mut sock,
                Token(self.base + slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.free.push(slot);
            self.counters.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.open += 1;
        self.conns[slot] = Some(HConn {
            net: Conn::new(sock, self.opts.max_output),
            peer,
            inbuf: Vec::new(),
            phase: Phase::Head,
            cur: None,
            body_in: None,
            close_after: false,
            unread: false,
            peer_closed: false,
            last_io: now,
            head_started: None,
            armed: None,
            resp_body: 0,
            paused: false,
        });
        // The request may already be there (the listener fired after it arrived); no event
        // says whether a FIN came with it, so read to `WouldBlock`.
        self.read(registry, slot, false, now);
    }

    /// An event for one of this server's tokens: `readable` when the event says readable, read
    /// closed or error (anything else is a writable event); `read_closed` when it says the
    /// peer's side is closed (or error).
    pub fn event(
        &mut self,
        registry: &Registry,
        token: Token,
        readable: bool,
        read_closed: bool,
        now: Instant,
    ) {
        let slot = token.0 - self.base;
        if readable {
            self.read(registry, slot, !read_closed, now);
        } else {
            self.after(registry, slot, now);
        }
    }

    /// The listener shed a connection for want of descriptors.
    pub fn shed(&self) {
        bump(&self.counters.refused, 1);
        bump(&self.counters.accept_errors, 1);
    }

    /// The listener paused after an accept error.
    pub fn accept_error(&self) {
        bump(&self.counters.accept_errors, 1);
    }

    /// Acts on every deadline passed at `now`: the connections', and the handler's parked
    /// requests' ([`Handler::expire`]).
    pub fn timers(&mut self, registry: &Registry, now: Instant) {
        if self.handler.deadline(self.server).is_some_and(|t| t <= now) {
            for (id, resp) in self.handler.expire(self.server, now) {
                self.complete(registry, id, resp, now);
            }
        }
        let mut due = std::mem::take(&mut self.due);
        self.timers.due(now, &mut due);
        for &slot in &due {
            let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if c.armed.is_some_and(|a| a <= now) {
                c.armed = None;
            }
            match self.deadline_of(slot) {
                Some((t, what)) if t <= now => self.expire(registry, slot, what, now),
                _ => self.rearm(slot),
            }
        }
        due.clear();
        self.due = due;
    }

    /// Answers a parked request. A request whose connection is gone is ignored. The answer ends
    /// a [`Self::pause`]: the connection goes on to the rest of the body and the next request.
    pub fn complete(&mut self, registry: &Registry, id: ReqId, resp: Response, now: Instant) {
        let Some(slot) = self.slot_of(id) else { return };
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        if !matches!(c.phase, Phase::Parked) {
            return;
        }
        let read = std::mem::take(&mut c.paused) && c.unread;
        self.respond(slot, resp, now);
        if read {
            self.read(registry, slot, false, now);
        } else {
            self.after(registry, slot, now);
        }
    }

    /// Turns a parked request into a streaming response (a watcher whose channel went live).
    pub fn stream(&mut self, registry: &Registry, id: ReqId, resp: Response, now: Instant) {
        let Some(slot) = self.slot_of(id) else { return };
        if matches!(
            self.conns[slot].as_ref().map(|c| &c.phase),
            Some(Phase::Parked)
        ) {
            self.start_stream(slot, resp);
            self.after(registry, slot, now);
        }
    }

    /// Queues a piece of a streaming response (framed as a chunk for HTTP/1.1).
    pub fn send(
        &mut self,
        registry: &Registry,
        id: ReqId,
        data: Bytes,
        now: Instant,
    ) -> Result<(), SendError> {
        self.queue(id, data)?;
        self.kick(registry, id, now);
        Ok(())
    }

    /// Queues a piece of a streaming response like [`Self::send`] without writing it yet, so
    /// that several pieces leave in one vectored write at [`Self::kick`].
    pub fn queue(&mut self, id: ReqId, data: Bytes) -> Result<(), SendError> {
        let slot = self.slot_of(id).ok_or(SendError::Gone)?;
        let c = self.conns[slot].as_mut().ok_or(SendError::Gone)?;
        let Phase::Streaming { chunked } = c.phase else {
            return Err(SendError::Gone);
        };
        if data.is_empty() {
            return Ok(());
        }
        if chunked {
            if c.net.out.room() < data.len() + 20 {
                return Err(SendError::Full);
            }
            c.net
                .out
                .push_always(Bytes::from(response::chunk_prefix(data.len())));
            c.net.out.push_always(data);
            c.net.out.push_always(Bytes::from_static(b"\r\n"));
        } else {
            c.net.out.push(data).map_err(|_| SendError::Full)?;
        }
        Ok(())
    }

    /// Writes what [`Self::queue`] queued.
    pub fn kick(&mut self, registry: &Registry, id: ReqId, now: Instant) {
        if let Some(slot) = self.slot_of(id) {
            self.after(registry, slot, now);
        }
    }

    /// Drops a request's connection at once, whatever it was writing (a stream whose reader
    /// fell too far behind): the client sees the close, not a clean end.
    pub fn abort(&mut self, registry: &Registry, id: ReqId) {
        if let Some(slot) = self.slot_of(id) {
            self.close(registry, slot, true);
        }
    }

    /// Stops reading a request's connection (its body, for an application that cannot take more
    /// now): TCP holds the client back until [`Self::resume`].
    pub fn pause(&mut self, id: ReqId) {
        if let Some(slot) = self.slot_of(id) {
            if let Some(c) = self.conns[slot].as_mut() {
                c.paused = true;
            }
        }
    }

    /// Reads a paused request's connection again.
    pub fn resume(&mut self, registry: &Registry, id: ReqId, now: Instant) {
        let Some(slot) = self.slot_of(id) else { return };
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        if !c.paused {
            return;
        }
        c.paused = false;
        if c.unread {
            self.read(registry, slot, false, now);
        } else {
            self.after(registry, slot, now);
        }
    }

    /// Room in a stream's outbox, in bytes (0 when gone).
    pub fn room(&self, id: ReqId) -> usize {
        self.slot_of(id)
            .and_then(|s| self.conns[s].as_ref())
            .map_or(0, |c| c.net.out.room())
    }

    /// Ends a streaming response: the last chunk (HTTP/1.1; the connection then serves the next
    /// request) or the close (HTTP/1.0).
    pub fn end(&mut self, registry: &Registry, id: ReqId, now: Instant) {
        let Some(slot) = self.slot_of(id) else { return };
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        let Phase::Streaming { chunked } = c.phase else {
            return;
        };
        if chunked {
            c.net
                .out
                .push_always(Bytes::from_static(response::LAST_CHUNK));
        } else {
            c.close_after = true;
        }
        c.phase = Phase::Writing;
        self.after(registry, slot, now);
    }

    /// Closes every connection that is not writing a response (for a stop); streams are ended.
    pub fn close_idle(&mut self, registry: &Registry, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            match c.phase {
                Phase::Writing => c.close_after = true,
                Phase::Streaming { .. } => {
                    let id = c.cur.as_ref().map(|k| req_id(self.server, slot, k.serial));
                    if let Some(id) = id {
                        self.end(registry, id, now);
                    }
                    if let Some(c) = self.conns[slot].as_mut() {
                        c.close_after = true;
                    }
                }
                Phase::Head | Phase::Parked => self.close(registry, slot, false),
            }
        }
    }

    fn slot_of(&self, id: ReqId) -> Option<usize> {
        if id.server != self.server {
            return None;
        }
        let slot = id.slot as usize;
        let c = self.conns.get(slot)?.as_ref()?;
        (c.cur.as_ref()?.serial == id.serial).then_some(slot)
    }

    fn date(&mut self) -> &str {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.date.0 != now || self.date.1.is_empty() {
            self.date = (now, response::http_date(now));
        }
        &self.date.1
    }

    /// Reads what the socket has, then moves the connection on; `short_drains` as in
    /// [`Conn::read_into`].
    fn read(&mut self, registry: &Registry, slot: usize, short_drains: bool, now: Instant) {
        let cap = self.opts.limits.max_head + 64 * 1024;
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if c.peer_closed {
            return;
        }
        if c.paused {
            // Read at `resume`: no event comes for bytes already signalled.
            c.unread = true;
            return;
        }
        match c.net.read_into(&mut c.inbuf, cap, short_drains) {
            Ok(r) => {
                let (n, unread, eof) = match r {
                    Received::Drained(n) => (n, false, false),
                    Received::Capped(n) => (n, true, false),
                    Received::Eof(n) => (n, false, true),
                };
                if n > 0 {
                    c.last_io = now;
                }
                c.unread = unread;
                c.peer_closed = eof;
            }
            Err(_) => {
                self.close(registry, slot, true);
                return;
            }
        }
        self.after(registry, slot, now);
    }

    /// Drives a connection after anything happened to it: parses and answers what is buffered,
    /// writes, reads what a capped read left, closes on a closed peer, re-arms the deadline.
    fn after(&mut self, registry: &Registry, slot: usize, now: Instant) {
        loop {
            self.advance(slot, now);
            match self.write(registry, slot, now) {
                Wrote::Closed => return,
                Wrote::Blocked => break,
                Wrote::Finished => continue,
                Wrote::Idle => {}
            }
            let Some(c) = self.conns[slot].as_mut() else {
                return;
            };
            if c.peer_closed {
                self.close(registry, slot, false);
                return;
            }
            if c.paused || !(c.unread && c.inbuf.len() < self.opts.limits.max_head) {
                break;
            }
            let cap = self.opts.limits.max_head + 64 * 1024;
            match c.net.read_into(&mut c.inbuf, cap, false) {
                Ok(Received::Drained(_)) => c.unread = false,
                Ok(Received::Capped(_)) => {}
                Ok(Received::Eof(_)) => {
                    c.unread = false;
                    c.peer_closed = true;
                }
                Err(_) => {
                    self.close(registry, slot, true);
                    return;
                }
            }
        }
        self.rearm(slot);
    }

    /// Feeds a request body, parses the next head and calls the handler, as far as the buffer
    /// goes.
    fn advance(&mut self, slot: usize, now: Instant) {
        loop {
            let Some(c) = self.conns[slot].as_mut() else {
                return;
            };
            if let Some(b) = c.body_in.as_mut() {
                if c.inbuf.is_empty() {
                    return;
                }
                let mut data = Vec::new();
                let (used, done) = match b {
                    BodyIn::Length(left) => {
                        let n = (*left).min(c.inbuf.len() as u64) as usize;
                        data.extend_from_slice(&c.inbuf[..n]);
                        *left -= n as u64;
                        (n, *left == 0)
                    }
                    BodyIn::Chunked(d) => match d.push(&c.inbuf, &mut data) {
                        Ok(n) => (n, d.is_done()),
                        Err(e) => {
                            c.inbuf.clear();
                            c.body_in = None;
                            let serial = c.cur.as_ref().map(|k| k.serial);
                            let parked = matches!(c.phase, Phase::Parked);
                            if let (Some(s), true) = (serial, parked) {
                                let id = req_id(self.server, slot, s);
                                self.handler.closed(id);
                                self.respond(
                                    slot,
                                    Response::text(400, format!("400 Bad Request: {e}\n")),
                                    now,
                                );
                            }
                            if let Some(c) = self.conns[slot].as_mut() {
                                c.close_after = true;
                            }
                            return;
                        }
                    },
                };
                c.inbuf.drain(..used);
                if done {
                    c.body_in = None;
                }
                let serial = c.cur.as_ref().map(|k| k.serial);
                let parked = matches!(c.phase, Phase::Parked);
                if let Some(s) = serial {
                    let id = req_id(self.server, slot, s);
                    if let Some(r) = self.handler.body(id, &data, done) {
                        if parked {
                            self.respond(slot, r, now);
                        }
                    }
                }
                continue;
            }
            if !matches!(c.phase, Phase::Head) || c.inbuf.is_empty() {
                return;
            }
            match head::parse(&c.inbuf, &self.opts.limits) {
                Ok(None) => {
                    if c.head_started.is_none() {
                        c.head_started = Some(now);
                    }
                    return;
                }
                Err(r) => {
                    c.inbuf.clear();
                    c.cur = Some(Current::refusal());
                    c.close_after = true;
                    self.handler.refused(c.peer, r.status, &r.message);
                    let text = format!(
                        "{} {}: {}\n",
                        r.status,
                        response::reason(r.status),
                        r.message
                    );
                    self.respond(slot, Response::text(r.status, text), now);
                    return;
                }
                Ok(Some((h, len))) => {
                    c.inbuf.drain(..len);
                    c.head_started = None;
                    self.serial += 1;
                    let serial = self.serial;
                    c.body_in = match h.body {
                        BodyFraming::None | BodyFraming::Length(0) => None,
                        BodyFraming::Length(n) => Some(BodyIn::Length(n)),
                        BodyFraming::Chunked => Some(BodyIn::Chunked(ChunkedDecoder::new())),
                    };
                    c.cur = Some(Current {
                        serial,
                        version: h.version,
                        keep_alive: h.keep_alive,
                        head_only: h.is_head(),
                        if_none_match: h.header("if-none-match").map(str::to_string),
                        if_range: h.header("if-range").map(str::to_string),
                        range: h.header("range").map(str::to_string),
                        access: log::log_enabled!(target: ACCESS_LOG, log::Level::Debug)
                            .then(|| (format!("{} {}", h.method, h.target), now)),
                    });
                    c.phase = Phase::Parked;
                    let req = Request {
                        id: req_id(self.server, slot, serial),
                        head: h,
                        peer: c.peer,
                    };
                    match self.handler.request(&req, now) {
                        Reply::Now(r) => self.respond(slot, r, now),
                        Reply::Park => {}
                        Reply::Stream(r) => self.start_stream(slot, r),
                    }
                }
            }
        }
    }

    /// Queues a whole response for the current request.
    fn respond(&mut self, slot: usize, mut resp: Response, now: Instant) {
        let date = self.date().to_string();
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        let Some(cur) = c.cur.as_ref() else { return };
        let len = resp.body.len();
        let mut status = resp.status;
        let mut body_range = (0, len);
        let mut extra: Vec<(Cow<'static, str>, Cow<'static, str>)> = Vec::new();
        if status == 200 {
            if let Some(t) = &resp.etag {
                extra.push(("ETag".into(), t.clone().into()));
            }
            if resp.ranges {
                extra.push(("Accept-Ranges".into(), "bytes".into()));
            }
            let cond = Conditions {
                if_none_match: cur.if_none_match.as_deref(),
                if_range: cur.if_range.as_deref(),
                range: cur.range.as_deref(),
            };
            match response::select(&cond, resp.etag.as_deref(), len, resp.ranges) {
                Selected::Full => {}
                Selected::NotModified => {
                    status = 304;
                    body_range = (0, 0);
                }
                Selected::Partial { start, end } => {
                    status = 206;
                    body_range = (start, end + 1);
                    extra.push((
                        "Content-Range".into(),
                        format!("bytes {start}-{end}/{len}").into(),
                    ));
                }
                Selected::Unsatisfiable => {
                    status = 416;
                    body_range = (0, 0);
                    extra.push(("Content-Range".into(), format!("bytes */{len}").into()));
                    resp.fields
                        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
                }
            }
        }
        let keep = cur.keep_alive && !c.close_after && c.body_in.is_none();
        let mut fields = base_fields(&self.opts.base_fields, &resp.fields);
        fields.push(("Date", &date));
        fields.extend(resp.fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        fields.extend(extra.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        let n = body_range.1 - body_range.0;
        let framing = if status == 204 {
            Framing::NoBody
        } else {
            // 304 and 416 carry no body; 304 keeps the length of nothing (RFC 9110 allows either).
            Framing::Length(if status == 304 { 0 } else { n })
        };
        let head = response::write_head(cur.version, status, &fields, framing, keep);
        let send_body = !cur.head_only && !matches!(status, 204 | 304 | 416) && n > 0;
        c.net.out.push_always(Bytes::from(head));
        if send_body {
            match resp.body {
                Body::Empty => {}
                Body::Bytes(b) => c
                    .net
                    .out
                    .push_always(b.slice(body_range.0 as usize..body_range.1 as usize)),
                Body::File(f, _) => c.net.out.push_file(Arc::new(f), body_range.0, n),
            }
        }
        c.resp_body = if send_body { n } else { 0 };
        if let Some((line, at)) = &cur.access {
            log::debug!(
                target: ACCESS_LOG,
                "{} \"{line}\" {status} {} {} ms",
                c.peer,
                c.resp_body,
                now.saturating_duration_since(*at).as_millis()
            );
        }
        c.phase = Phase::Writing;
        if !keep {
            c.close_after = true;
        }
        let k = &self.counters;
        bump(&k.requests, 1);
        bump(
            match status {
                200..=299 => &k.ok,
                300..=399 => &k.not_modified,
                400..=499 => &k.client_errors,
                _ => &k.server_errors,
            },
            1,
        );
    }

    fn start_stream(&mut self, slot: usize, resp: Response) {
        let date = self.date().to_string();
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        let Some(cur) = c.cur.as_ref() else { return };
        let chunked = cur.version >= 1;
        let keep = cur.keep_alive && chunked;
        let mut fields = base_fields(&self.opts.base_fields, &resp.fields);
        fields.push(("Date", &date));
        fields.extend(resp.fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        let framing = if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        };
        let head = response::write_head(cur.version, resp.status, &fields, framing, keep);
        c.net.out.push_always(Bytes::from(head));
        c.resp_body = 0;
        bump(&self.counters.requests, 1);
        bump(&self.counters.ok, 1);
        if cur.head_only {
            c.phase = Phase::Writing;
            if !keep {
                c.close_after = true;
            }
            let id = req_id(self.server, slot, cur.serial);
            self.handler.closed(id);
        } else {
            c.phase = Phase::Streaming { chunked };
        }
    }

    /// Writes what is queued; a response written to its end lets the connection go on to the
    /// next request, or closes it.
    fn write(&mut self, registry: &Registry, slot: usize, now: Instant) -> Wrote {
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return Wrote::Closed;
        };
        if !c.net.out.is_empty() {
            match c.net.flush() {
                Ok(w) => {
                    if w.bytes > 0 {
                        c.last_io = now;
                    }
                    if !w.drained {
                        return Wrote::Blocked;
                    }
                    if let (Phase::Streaming { .. }, Some(k)) = (&c.phase, &c.cur) {
                        let id = req_id(self.server, slot, k.serial);
                        self.handler.writable(id);
                        return Wrote::Idle;
                    }
                }
                Err(_) => {
                    self.close(registry, slot, true);
                    return Wrote::Closed;
                }
            }
        }
        if !matches!(c.phase, Phase::Writing) {
            return Wrote::Idle;
        }
        bump(&self.counters.body_bytes, c.resp_body);
        c.resp_body = 0;
        c.cur = None;
        if c.close_after {
            c.net.shutdown_write();
            self.close(registry, slot, false);
            return Wrote::Closed;
        }
        c.phase = Phase::Head;
        c.last_io = now;
        Wrote::Finished
    }

    /// When this connection's next deadline is, and which.
    fn deadline_of(&self, slot: usize) -> Option<(Instant, Expiry)> {
        let c = self.conns.get(slot)?.as_ref()?;
        if !c.net.out.is_empty() {
            return Some((c.last_io + self.opts.write_timeout, Expiry::Write));
        }
        match c.phase {
            Phase::Head => Some(match c.head_started {
                Some(t) => (t + self.opts.head_timeout, Expiry::Head),
                None => (c.last_io + self.opts.idle_timeout, Expiry::Idle),
            }),
            _ => None,
        }
    }

    fn rearm(&mut self, slot: usize) {
        let Some((t, _)) = self.deadline_of(slot) else {
            return;
        };
        let Some(c) = self.conns[slot].as_mut() else {
            return;
        };
        if c.armed.is_none_or(|a| t < a) {
            c.armed = Some(t);
            self.timers.at(t, slot);
        }
    }

    fn expire(&mut self, registry: &Registry, slot: usize, what: Expiry, now: Instant) {
        match what {
            Expiry::Idle => self.close(registry, slot, false),
            Expiry::Write => self.close(registry, slot, true),
            Expiry::Head => {
                let Some(c) = self.conns[slot].as_mut() else {
                    return;
                };
                log::warn!(
                    "{}: refused: request head not complete within {} s (408)",
                    c.peer,
                    self.opts.head_timeout.as_secs_f64()
                );
                c.inbuf.clear();
                c.head_started = None;
                c.cur = Some(Current::refusal());
                c.close_after = true;
                self.respond(
                    slot,
                    Response::text(408, "408 Request Timeout: request head took too long\n"),
                    now,
                );
                self.after(registry, slot, now);
            }
        }
    }

    /// Drops a connection; `failed` counts an unfinished response as a write error.
    fn close(&mut self, registry: &Registry, slot: usize, failed: bool) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = registry.deregister(&mut c.net.sock);
        self.open -= 1;
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
        self.free.push(slot);
        if matches!(c.phase, Phase::Writing) && (failed || !c.net.out.is_empty()) {
            bump(&self.counters.write_errors, 1);
        }
        if matches!(c.phase, Phase::Parked | Phase::Streaming { .. }) {
            if let Some(k) = c.cur.as_ref() {
                let id = req_id(self.server, slot, k.serial);
                self.handler.closed(id);
            }
        }
    }
}

fn req_id(server: u32, slot: usize, serial: u64) -> ReqId {
    ReqId {
        server,
        slot: slot as u32,
        serial,
    }
}

enum Wrote {
    /// Nothing left to write and no response finished.
    Idle,
    /// A response was written to its end; the connection reads the next request.
    Finished,
    /// The socket is full.
    Blocked,
    Closed,
}

#[derive(Clone, Copy, Debug)]
enum Expiry {
    Idle,
    Head,
    Write,
}

/// The base fields a response does not set itself: a response's own field (its Cache-Control,
/// say) replaces the base field of that name rather than being sent beside it.
fn base_fields<'a>(
    base: &[(&'a str, &'a str)],
    own: &[(Cow<'static, str>, Cow<'static, str>)],
) -> Vec<(&'a str, &'a str)> {
    base.iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o.eq_ignore_ascii_case(k)))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_field_replaces_the_base_field_of_its_name() {
        let base = [("Server", "river"), ("Cache-Control", "no-cache")];
        let own = vec![(Cow::from("cache-control"), Cow::from("max-age=1"))];
        assert_eq!(base_fields(&base, &own), vec![("Server", "river")]);
        assert_eq!(base_fields(&base, &[]), base.to_vec());
    }
}
