//! The hub: one thread, one reactor ([`crate::net`]), four fronts (fstream, HTTP, RTMP, RTSP in
//! `front/`) and the channels ([`super::channel`], pure). This file holds what is common to the
//! fronts: binding, the event loop, accepting, reading, writing a watcher's queue, closing,
//! timers, the stop, and applying what the channels decide ([`Effects`]); `hub/broadcast.rs` the
//! channel side of every front (broadcasters, watchers, holding a paced broadcaster back).
//!
//! A connection's slot in `conns` is its token (offset by [`FIRST`]) and, when it watches, its
//! [`SubId`] in the channels. HTTP connections are the HTTP layer's ([`crate::http::server`],
//! tokens from [`HTTP_TOKENS`]); an HTTP watcher or push has a [`SubId`] from [`HTTP_SUBS`] up,
//! never reused.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Interest, Token};

use super::cache::CacheLimits;
use super::cascade::Cascade;
use super::channel::{self, key_str, ChanKey, Channels, Effects, Refusal, SubId};
use super::front::fstream::Publisher;
use super::front::hls::{HlsFront, HLS_SUBS};
use super::front::hooks::Hooks;
use super::front::http::{HttpReq, Inbox};
use super::front::rtmp::RtmpSide;
use super::front::rtsp::Udp;
use super::metrics::{FrontMetrics, Refused, Snapshot};
use super::queue::QueueLimits;
use super::rtsp::RtspConn;
use super::stats::HubStats;
use super::users::Users;
use crate::http::server::{ReqId, Server};
use crate::net::conn::Received;
use crate::net::{self, Accept, Listener, Reactor};
use crate::proto::fstream::Handshake;
use crate::proto::rtsp::Authenticator;

mod broadcast;
mod park;

pub(super) const FSTREAM: Token = Token(1);
pub(super) const HTTP: Token = Token(2);
pub(super) const RTMP: Token = Token(3);
pub(super) const RTSP: Token = Token(4);
pub(super) const UDP_RTP: Token = Token(5);
pub(super) const UDP_RTCP: Token = Token(6);
pub(super) const FIRST: usize = 7;
/// The HTTP layer's tokens start here (the hub's own connections stay below).
pub(super) const HTTP_TOKENS: usize = usize::MAX / 2;
/// Hook calls' tokens start here (below the HTTP layer's), one per call, never reused.
pub(super) const HOOK_TOKENS: usize = usize::MAX / 4;
/// HTTP watchers' and pushes' [`SubId`]s start here.
pub(super) const HTTP_SUBS: SubId = usize::MAX / 2;
/// Bytes read from one socket per event before other sockets get a turn.
const READ_BUDGET: usize = 1 << 20;
const READ_BUF: usize = 64 * 1024;
/// How long watchers get to receive what is queued after a stop signal.
const STOP_FLUSH: Duration = Duration::from_secs(2);
/// Most iovecs per writev.
pub(super) const MAX_IOV: usize = 64;

/// The hub's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub http: Option<String>,
    pub rtmp: Option<String>,
    /// RTMP players' merge window: media that came within it goes out in one write.
    pub rtmp_merge: Duration,
    pub rtsp: Option<String>,
    /// RTP over UDP for RTSP: `Some(0)` picks a free port pair, `Some(p)` uses p and p+1, `None`
    /// offers TCP only.
    pub rtsp_udp_port: Option<u16>,
    /// RTSP session timeout (advertised in `Session:` and enforced).
    pub rtsp_timeout: Duration,
    pub users: PathBuf,
    pub gop_cache: bool,
    pub max_connections: usize,
    pub queue: QueueLimits,
    pub cache: CacheLimits,
    pub max_waiting: usize,
    pub wait_timeout: Duration,
    pub stats_interval: Duration,
    /// The delivery of content without a clock.
    pub unclocked: super::pace::Unclocked,
    /// Publish and play hooks (none set: the users file and channel passwords decide alone).
    pub hooks: super::hooks::Config,
    /// An edge's origin hub (fstream, HOST:PORT): channels not live here are pulled from it.
    pub origin: Option<String>,
    /// How long an edge keeps pulling a channel after its last local watcher left.
    pub origin_idle: Duration,
    /// Another hub (fstream, HOST:PORT) every local broadcast is pushed to.
    pub push_to: Option<String>,
    /// HLS on the HTTP front (`--hls`).
    pub hls: Option<super::hls::Config>,
}

/// A watcher's connection; its queue is the channels' ([`Channels::sub`]).
pub(super) struct Watching {
    /// Bytes received after the handshake (watchers send nothing).
    pub input: u64,
}

pub(super) enum State {
    /// An RTMP connection before its publish or play is accepted.
    RtmpIdle,
    Handshake {
        hs: Handshake,
        deadline: Instant,
    },
    Publisher(Publisher),
    Watcher(Watching),
    Rtsp(Box<RtspConn>),
    /// An fstream client whose handshake is done, waiting for a hook's decision.
    Hooked,
    /// An outbound connection (a pull from the origin, a push to another hub) connecting.
    Dialing {
        deadline: Instant,
    },
    /// An edge's pull from its origin: what it receives is the channel's broadcast here.
    Pull(ChanKey),
    /// Writing what is queued, then closing.
    Closing,
}

pub(super) struct Conn {
    pub io: net::Conn,
    pub peer: SocketAddr,
    pub id: u64,
    pub since: Instant,
    pub state: State,
    /// RTMP connections: the session and its FLV glue.
    pub rtmp: Option<Box<RtmpSide>>,
    /// The front it came in on (never HTTP: the HTTP layer keeps those).
    pub front: Front,
    /// The hook call it waits for: it is not read meanwhile.
    pub hook: Option<usize>,
    /// A broadcaster read on the merge ticks ([`park`]): its socket wakes the hub only for
    /// [`park::LOW_WATER`] bytes; and the tick its next read is due at, if one is set.
    pub parked: bool,
    pub read_at: Option<Instant>,
}

/// Bound listening addresses.
pub struct Bound {
    pub fstream: SocketAddr,
    pub http: Option<SocketAddr>,
    pub rtmp: Option<SocketAddr>,
    pub rtsp: Option<SocketAddr>,
    /// RTSP's UDP sockets (RTP, RTCP).
    pub rtsp_udp: Option<(SocketAddr, SocketAddr)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Front {
    Fstream,
    Http,
    Rtmp,
    Rtsp,
}

impl Front {
    pub const ALL: [Front; 4] = [Front::Fstream, Front::Http, Front::Rtmp, Front::Rtsp];

    /// Its name in logs and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Front::Fstream => "fstream",
            Front::Http => "http",
            Front::Rtmp => "rtmp",
            Front::Rtsp => "rtsp",
        }
    }
}

pub struct Hub {
    pub(super) cfg: Config,
    pub(super) reactor: Reactor,
    /// One per front, in [`Front`] order (None: not enabled, or closed by the stop).
    listeners: [Option<Listener>; 4],
    /// Accepting is paused until then (out of descriptors).
    accept_paused: [Option<Instant>; 4],
    /// Connections closed at accept for want of descriptors since the last one accepted: the
    /// first is logged, then the count once descriptors are free again (not a line each).
    shed: u64,
    pub(super) rtsp_addr: Option<SocketAddr>,
    pub(super) rtsp_auth: Authenticator,
    pub(super) udp: Option<Udp>,
    pub(super) users: Users,
    pub(super) conns: Vec<Option<Conn>>,
    pub(super) free: Vec<usize>,
    pub(super) nconns: usize,
    pub(super) channels: Channels,
    /// An edge's pulls from its origin and the pushes to another hub.
    pub(super) cascade: Cascade,
    /// The HTTP front's connections (None without `--http`).
    pub(super) http: Option<Server<Inbox>>,
    /// HTTP watchers and pushes, by their [`SubId`] and by request.
    pub(super) http_reqs: HashMap<SubId, HttpReq>,
    pub(super) by_req: HashMap<ReqId, SubId>,
    pub(super) next_http_sub: SubId,
    pub(super) buf: Vec<u8>,
    /// What the channels decided, applied by [`Hub::apply`].
    pub(super) fx: Effects,
    /// Connections with more to read than their turn took.
    again: Vec<usize>,
    /// RTMP players whose media waits for their merge window (`--rtmp-merge`): when, and who.
    pub(super) rtmp_wake: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Broadcasters read on the merge ticks ([`park`]): when, which slot, its connection's id.
    read_wake: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    pub(super) hooks: Hooks,
    /// HLS sessions (`--hls`, with `--http`).
    pub(super) hls: Option<HlsFront>,
    /// Broadcasters not read because a watcher of their paced broadcast has no room.
    pub(super) held: Vec<(SubId, ChanKey)>,
    pub(super) next_id: u64,
    pub(super) start: Instant,
    pub(super) accepted: u64,
    pub(super) refused: u64,
    /// Refusals by front and reason ([`Front`] and [`Refused`] order).
    refusals: [[u64; 5]; 4],
    last_stats: Instant,
    last_timers: Instant,
}

fn listen_opt(reactor: &Reactor, addr: Option<&str>, token: Token) -> io::Result<Option<Listener>> {
    addr.map(|a| {
        Listener::bind_str(a, reactor.registry(), token)
            .map_err(|e| io::Error::new(e.kind(), format!("{a}: {e}")))
    })
    .transpose()
}

impl Hub {
    /// Binds the listeners.
    pub fn bind(cfg: Config) -> io::Result<(Hub, Bound)> {
        let reactor = Reactor::new()?;
        let fstream = listen_opt(&reactor, Some(&cfg.listen), FSTREAM)?;
        let http_l = listen_opt(&reactor, cfg.http.as_deref(), HTTP)?;
        let rtmp_l = listen_opt(&reactor, cfg.rtmp.as_deref(), RTMP)?;
        let rtsp_l = listen_opt(&reactor, cfg.rtsp.as_deref(), RTSP)?;
        let rtsp_addr = rtsp_l.as_ref().map(Listener::local_addr);
        let udp = match (rtsp_addr, cfg.rtsp_udp_port) {
            (Some(a), Some(port)) => Some(Udp::bind(&reactor, a.ip(), port)?),
            _ => None,
        };
        let addr = |l: &Option<Listener>| l.as_ref().map(Listener::local_addr);
        let bound = Bound {
            fstream: addr(&fstream).expect("the fstream listener is always bound"),
            http: addr(&http_l),
            rtmp: addr(&rtmp_l),
            rtsp: rtsp_addr,
            rtsp_udp: udp.as_ref().map(Udp::addrs).transpose()?,
        };
        let now = Instant::now();
        let users = Users::new(cfg.users.clone());
        let channels = Channels::new(channel::Config {
            gop_cache: cfg.gop_cache,
            queue: cfg.queue,
            cache: cfg.cache,
            max_waiting: cfg.max_waiting,
            wait_timeout: cfg.wait_timeout,
            unclocked: cfg.unclocked,
        });
        let http = http_l
            .is_some()
            .then(|| super::front::http::server(cfg.max_connections));
        let mut channels = channels;
        if cfg.hooks.target(super::hooks::Hook::Stop).is_some() {
            channels.departed = Some(Vec::new());
        }
        let hooks = Hooks::new(cfg.hooks.clone());
        let cascade = super::front::cascade::configure(&cfg)?;
        let hls = (cfg.hls.clone())
            .filter(|_| http.is_some())
            .map(|c| HlsFront::new(c, now));
        let hub = Hub {
            cfg,
            reactor,
            listeners: [fstream, http_l, rtmp_l, rtsp_l],
            accept_paused: [None; 4],
            shed: 0,
            rtsp_addr,
            rtsp_auth: Authenticator::new("river", now, crate::proto::util::random_u64()),
            udp,
            users,
            conns: Vec::new(),
            free: Vec::new(),
            nconns: 0,
            channels,
            cascade,
            http,
            http_reqs: HashMap::new(),
            by_req: HashMap::new(),
            next_http_sub: HTTP_SUBS,
            buf: Vec::with_capacity(READ_BUF),
            fx: Effects::default(),
            again: Vec::new(),
            rtmp_wake: BinaryHeap::new(),
            read_wake: BinaryHeap::new(),
            hooks,
            hls,
            held: Vec::new(),
            next_id: 1,
            start: now,
            accepted: 0,
            refused: 0,
            refusals: [[0; 5]; 4],
            last_stats: now,
            last_timers: now,
        };
        Ok((hub, bound))
    }

    /// Runs until `stop()` says so, then flushes watchers for a short while.
    pub fn run(&mut self, stop: impl Fn() -> bool) -> io::Result<()> {
        let mut stopping: Option<Instant> = None;
        let cap = Duration::from_millis(100);
        loop {
            let pending_reads = !self.again.is_empty() || self.udp.as_ref().is_some_and(Udp::again);
            let next = if pending_reads {
                Some(Instant::now())
            } else {
                let http = self.http.as_ref().and_then(|h| h.next_deadline());
                let hook = self.hook_deadline();
                self.accept_paused
                    .iter()
                    .flatten()
                    .chain(&http)
                    .chain(&hook)
                    .chain(self.rtmp_wake.peek().map(|x| &x.0 .0))
                    .chain(self.read_wake.peek().map(|x| &x.0 .0))
                    .min()
                    .copied()
            };
            let now = self.reactor.poll(next, cap)?;
            for idx in std::mem::take(&mut self.again) {
                self.on_readable(idx, false, now);
            }
            self.udp_again(now);
            for i in 0..4 {
                if self.accept_paused[i].is_some_and(|t| now >= t) {
                    self.accept(i, now);
                }
            }
            let events: Vec<(Token, bool, bool, bool)> = self
                .reactor
                .events
                .iter()
                .map(|ev| {
                    let w = ev.is_writable() || ev.is_write_closed() || ev.is_error();
                    let r = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                    let closed = ev.is_read_closed() || ev.is_error();
                    (ev.token(), w, r, closed)
                })
                .collect();
            for (token, writable, readable, read_closed) in events {
                match token {
                    Token(t) if t >= HTTP_TOKENS => {
                        if let Some(h) = self.http.as_mut() {
                            h.event(self.reactor.registry(), token, readable, read_closed, now);
                        }
                        self.http_events(now);
                    }
                    Reactor::WAKER => {}
                    Token(t) if t >= HOOK_TOKENS => self.hook_event(token, now),
                    FSTREAM | HTTP | RTMP | RTSP => self.accept(token.0 - FSTREAM.0, now),
                    UDP_RTP | UDP_RTCP => {
                        self.on_udp_event(token == UDP_RTCP, writable, readable, now)
                    }
                    Token(t) => {
                        let idx = t - FIRST;
                        if self.dialing(idx) {
                            self.dial_event(idx, now);
                            continue;
                        }
                        if writable {
                            self.flush(idx, now);
                        }
                        if readable {
                            // A short read drained the socket, unless the peer closed (then
                            // read on to see the end).
                            self.on_readable(idx, !read_closed, now);
                        }
                    }
                }
            }
            // Parked broadcasters before the players' merged writes: what they read goes out on
            // this tick.
            self.unpark_mixed();
            self.read_parked(now);
            self.flush_dirty(now);
            self.rtmp_merged(now);
            self.release_held(now);
            if let Some(h) = self.http.as_mut() {
                h.timers(self.reactor.registry(), now);
            }
            self.http_events(now);
            self.timers(now);
            self.hook_departures(now);
            if stopping.is_none() && stop() {
                log::info!("stop signal: closing listeners, flushing watchers");
                self.begin_stop(now);
                stopping = Some(now);
            }
            if let Some(t) = stopping {
                let busy = self.channels.busy()
                    || self.hooks.notifying()
                    || self.http.as_ref().is_some_and(|h| h.open() > 0)
                    || self.conns.iter().flatten().any(|c| {
                        !c.io.out.is_empty()
                            || c.rtmp
                                .as_ref()
                                .is_some_and(|r| !r.session.pending_output().is_empty())
                    });
                if !busy || now.duration_since(t) > STOP_FLUSH {
                    return Ok(());
                }
            }
        }
    }

    fn begin_stop(&mut self, now: Instant) {
        for l in self.listeners.iter_mut() {
            if let Some(mut l) = l.take() {
                l.deregister(self.reactor.registry());
            }
        }
        self.accept_paused = [None; 4];
        self.cascade.stopped = true;
        for k in self.channels.keys() {
            self.end_broadcast(&k, now, "hub stopping");
        }
        self.apply(now);
        self.flush_dirty(now);
        if let Some(h) = self.http.as_mut() {
            h.close_idle(self.reactor.registry(), now);
        }
        self.http_events(now);
        for i in 0..self.conns.len() {
            let watching = self
                .channels
                .sub(i)
                .is_some_and(|s| s.queue.is_some() && self.conns[i].is_some());
            if self.conns[i].is_some() && !watching {
                self.close(i, None);
            }
        }
    }

    fn accept(&mut self, front: usize, now: Instant) {
        let which = [Front::Fstream, Front::Http, Front::Rtmp, Front::Rtsp][front];
        loop {
            let Some(l) = self.listeners[front].as_mut() else {
                return;
            };
            let (mut sock, peer) = match l.accept(now) {
                Accept::Conn(s, peer) => (s, peer),
                Accept::Drained => return,
                Accept::Shed(e) => {
                    self.count_refused(which, Refused::Limit);
                    self.shed += 1;
                    if self.shed == 1 {
                        log::warn!(
                            "{which:?} accept: {e}: waiting connections are closed at once until \
                             descriptors are free"
                        );
                    }
                    continue;
                }
                Accept::PausedUntil(t, e) => {
                    if self.accept_paused[front].is_none() {
                        log::warn!("{which:?} accept: {e}: paused");
                    }
                    self.accept_paused[front] = Some(t);
                    return;
                }
            };
            self.accept_paused[front] = None;
            if self.shed > 0 {
                log::warn!(
                    "descriptors free again: {} connection(s) were closed at accept for want of them",
                    self.shed
                );
                self.shed = 0;
            }
            let open = self.nconns + self.http.as_ref().map_or(0, |h| h.open());
            if open >= self.cfg.max_connections {
                self.count_refused(which, Refused::Limit);
                log::warn!("{peer}: refused: {open} connections open (--max-connections)");
                // HTTP clients get a 503; the other protocols have no answer before a handshake.
                match self.http.as_mut().filter(|_| which == Front::Http) {
                    Some(h) => h.refuse(sock),
                    None => net::refuse(sock, &[]),
                }
                continue;
            }
            if which == Front::Http {
                self.accepted += 1;
                log::debug!("{peer}: connected (http)");
                if let Some(h) = self.http.as_mut() {
                    h.adopt(self.reactor.registry(), sock, peer, now);
                }
                self.http_events(now);
                continue;
            }
            let idx = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if let Err(e) = self.reactor.registry().register(
                &mut sock,
                Token(idx + FIRST),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("{peer}: register: {e}");
                self.free.push(idx);
                continue;
            }
            self.accepted += 1;
            log::debug!(
                "{peer}: connected ({})",
                format!("{which:?}").to_lowercase()
            );
            let (state, rtmp) = match which {
                Front::Rtmp => (State::RtmpIdle, Some(RtmpSide::new(now))),
                Front::Rtsp => (State::Rtsp(self.rtsp_conn(now)), None),
                Front::Http => unreachable!("the HTTP layer adopts HTTP connections"),
                Front::Fstream => (super::front::fstream::new_conn(now), None),
            };
            self.conns[idx] = Some(Conn {
                // Responses and heads only: watchers' media is written from their queues.
                io: net::Conn::new(sock, 1 << 20),
                peer,
                id: self.next_id,
                since: now,
                state,
                rtmp,
                front: which,
                hook: None,
                parked: false,
                read_at: None,
            });
            self.next_id += 1;
            self.nconns += 1;
        }
    }

    /// Removes a connection from everything; `reason` is logged when given.
    pub(super) fn close(&mut self, idx: usize, reason: Option<&str>) {
        let Some(mut c) = self.conns.get_mut(idx).and_then(|c| c.take()) else {
            return;
        };
        self.nconns -= 1;
        self.free.push(idx);
        let _ = self.reactor.registry().deregister(&mut c.io.sock);
        if let Some(r) = reason {
            log::info!("{}: closed: {r}", c.peer);
        }
        if let Some(tok) = c.hook {
            self.hooks.cancel(tok);
        }
        self.channels.leave(idx);
        if let Some(o) = self.cascade.outbound.remove(&idx) {
            self.outbound_closed(idx, o, Instant::now());
        }
        match c.state {
            State::Rtsp(r) => self.rtsp_detach(idx, r.role, "RTSP publisher gone"),
            State::Publisher(p) if self.channels.is_publisher(&p.key, idx) => {
                self.end_broadcast(&p.key, Instant::now(), "broadcaster gone");
            }
            _ => {}
        }
    }

    /// Counts a refusal on `front`, for `/stats` and `/metrics`.
    pub(super) fn count_refused(&mut self, front: Front, reason: Refused) {
        self.refused += 1;
        self.refusals[front as usize][reason as usize] += 1;
    }

    /// Refuses a client: logs why and closes it without sending anything (HTTP: `response`).
    pub(super) fn refuse(
        &mut self,
        idx: usize,
        reason: Refused,
        why: &str,
        response: Option<Vec<u8>>,
    ) {
        if let Some(c) = &self.conns[idx] {
            let front = c.front;
            log::warn!("{}: refused: {why}", c.peer);
            self.count_refused(front, reason);
        }
        if self.conns[idx].as_ref().is_some_and(|c| c.rtmp.is_some()) {
            self.rtmp_refuse(idx, why);
            return;
        }
        match response {
            None => self.close(idx, None),
            Some(r) => self.respond_and_close(idx, r),
        }
    }

    /// Refuses a watcher as the channels decided: an HTTP watcher that has had no response gets
    /// the refusal's status.
    pub(super) fn refuse_watcher(&mut self, id: SubId, r: &Refusal) {
        if id >= HLS_SUBS {
            self.hls_refused(id, r);
        } else if id >= HTTP_SUBS {
            self.http_refuse(id, r);
        } else {
            self.refuse(id, Refused::from_status(r.status), &r.why, None);
        }
    }

    /// Queues `resp` after what is queued, leaves whatever the connection was part of, and
    /// closes it once everything is written.
    pub(super) fn respond_and_close(&mut self, idx: usize, resp: Vec<u8>) {
        let old = {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            if !resp.is_empty() {
                c.io.out.push_always(Bytes::from(resp));
            }
            std::mem::replace(&mut c.state, State::Closing)
        };
        self.channels.leave(idx);
        if let State::Rtsp(r) = old {
            self.rtsp_detach(idx, r.role, "RTSP publisher closed");
        }
        self.flush(idx, Instant::now());
    }

    /// Reads connection `idx` at the start of the next turn (what came while it was not read).
    pub(super) fn read_again(&mut self, idx: usize) {
        if !self.again.contains(&idx) {
            self.again.push(idx);
        }
    }

    /// Reads connection `idx` (`short_drains`: a read that returns less than asked ends the turn,
    /// without one more read to see `WouldBlock`; the next bytes bring an event).
    fn on_readable(&mut self, idx: usize, short_drains: bool, now: Instant) {
        let mut buf = std::mem::take(&mut self.buf);
        let mut budget = READ_BUDGET;
        let mut drained = false;
        loop {
            let publishing = self.publishing(idx);
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                break;
            };
            // A closing connection's input is ignored (and not read: it may hold a big body); a
            // connect in progress has nothing to read. One waiting for a hook is read once the
            // hook has decided.
            if matches!(c.state, State::Closing | State::Dialing { .. }) || c.hook.is_some() {
                break;
            }
            // A paced broadcast is read only while every watcher has room (TCP holds the
            // broadcaster back meanwhile).
            if let Some((key, id)) = &publishing {
                if !self.channels.room(key) {
                    self.hold(*id, key.clone(), now);
                    break;
                }
            }
            if budget == 0 {
                self.again.push(idx);
                break;
            }
            buf.clear();
            let got = c.io.read_into(&mut buf, READ_BUF, short_drains);
            let (n, more, eof) = match got {
                Ok(Received::Capped(n)) => (n, true, false),
                Ok(Received::Drained(n)) => (n, false, false),
                Ok(Received::Eof(n)) => (n, false, true),
                Err(e) => {
                    self.close(idx, Some(&format!("read error: {e}")));
                    break;
                }
            };
            budget = budget.saturating_sub(n);
            if n > 0 {
                self.on_data(idx, &buf[..n], now);
            }
            if eof {
                self.on_eof(idx, now);
            }
            if !more {
                drained = !eof;
                break;
            }
        }
        self.buf = buf;
        if drained {
            self.park_or_not(idx, now);
        }
    }

    fn on_eof(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if c.hook.is_some() {
            // Seen again when it is read after the hook's decision.
            return;
        }
        match &mut c.state {
            State::Publisher(_) => self.publisher_eof(idx, now),
            State::Handshake { .. } => {
                self.refuse(idx, Refused::Protocol, "closed during the handshake", None)
            }
            State::RtmpIdle => self.close(idx, None),
            State::Pull(_) => self.close(idx, Some("the origin closed the pull")),
            // Its response may still be going out: the flush closes it once written (a write to a
            // peer that is gone fails and closes it too).
            State::Closing => self.flush(idx, now),
            _ => self.close(idx, Some("peer closed")),
        }
    }

    fn on_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if c.rtmp.is_some() {
            self.on_rtmp_data(idx, data, now);
            return;
        }
        match &mut c.state {
            State::Handshake { .. } => self.on_fstream_data(idx, data, now),
            State::Publisher(_) => self.on_publisher_data(idx, data, now),
            State::Watcher(w) => {
                w.input += data.len() as u64;
                if w.input > super::front::MAX_WATCHER_INPUT {
                    self.close(idx, Some("watcher sent more than 1 MiB"));
                }
            }
            State::Rtsp(_) => self.on_rtsp_data(idx, data, now),
            State::Pull(_) => self.on_pull_data(idx, data, now),
            State::Closing | State::RtmpIdle | State::Hooked | State::Dialing { .. } => {}
        }
    }

    /// Acts on what the channels decided: drops and refusals now; flushes at the end of the
    /// turn ([`Self::flush_dirty`]).
    pub(super) fn apply(&mut self, _now: Instant) {
        loop {
            let drops = std::mem::take(&mut self.fx.drop);
            let refusals = std::mem::take(&mut self.fx.refuse);
            if drops.is_empty() && refusals.is_empty() {
                return;
            }
            for (w, r) in refusals {
                self.refuse_watcher(w, &r);
            }
            for (w, why) in drops {
                let kstr = self
                    .channels
                    .sub(w)
                    .map(|s| key_str(&s.key))
                    .unwrap_or_default();
                let why = format!("slow watcher of {kstr}: {why}");
                if w >= HLS_SUBS {
                    self.hls_gone(w, &why);
                } else if w >= HTTP_SUBS {
                    self.http_drop(w, &why);
                } else {
                    self.close(w, Some(&why));
                }
            }
        }
    }

    fn flush_dirty(&mut self, now: Instant) {
        while !self.fx.flush.is_empty() {
            let dirty = std::mem::take(&mut self.fx.flush);
            for &w in &dirty {
                self.channels.flushed(w);
            }
            for w in dirty {
                self.flush(w, now);
            }
            self.apply(now);
        }
    }

    /// Writes what is pending on a connection; closes it when done and it should close.
    pub(super) fn flush(&mut self, idx: usize, now: Instant) {
        if idx >= HLS_SUBS {
            self.hls_flush(idx, now);
            return;
        }
        if idx >= HTTP_SUBS {
            self.flush_http(idx, now);
            return;
        }
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if c.rtmp.is_some() {
            self.flush_rtmp(idx, now);
            return;
        }
        if matches!(c.state, State::Rtsp(_)) {
            self.flush_rtsp(idx, now);
            return;
        }
        if matches!(c.state, State::Dialing { .. }) {
            return;
        }
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                return;
            };
            let sub = self.channels.sub_mut(idx);
            if !c.io.out.is_empty() {
                match c.io.flush() {
                    Ok(w) if w.drained => {}
                    Ok(_) => return,
                    Err(e) => {
                        self.close(idx, Some(&format!("write error: {e}")));
                        return;
                    }
                }
            }
            match &c.state {
                State::Closing => {
                    c.io.shutdown_write();
                    self.close(idx, None);
                    return;
                }
                State::Watcher(_) => {
                    let Some(s) = sub else { return };
                    let Some(q) = s.queue.as_mut() else { return };
                    if q.is_empty() {
                        if s.advance() {
                            continue;
                        }
                        if s.eof_after_drain {
                            c.io.shutdown_write();
                            self.close(idx, Some("end of broadcast: all sent"));
                        }
                        return;
                    }
                    let r = {
                        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV);
                        q.fill_iovecs(&mut iov, MAX_IOV);
                        c.io.write_iov(&iov)
                    };
                    match r {
                        Ok(Some(n)) => q.consume(n, now),
                        Ok(None) => return,
                        Err(e) => {
                            self.close(idx, Some(&format!("write error: {e}")));
                            return;
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        // Deadlines are coarse (seconds): scan the connections at most ten times a second.
        if now.duration_since(self.last_timers) < Duration::from_millis(100) {
            return;
        }
        self.last_timers = now;
        if self.cfg.rtmp.is_some() {
            self.rtmp_timers(now);
        }
        self.hook_timers(now);
        self.cascade_timers(now);
        self.hls_timers(now);
        let mut expired: Vec<(usize, String, Option<Vec<u8>>)> = Vec::new();
        let mut ended: Vec<usize> = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            match &c.state {
                State::Handshake { deadline, .. } if now >= *deadline => expired.push((
                    i,
                    "fstream handshake not completed within 10 s".into(),
                    None,
                )),
                State::Rtsp(r) if r.linger_until.is_some_and(|t| now >= t) => ended.push(i),
                State::Rtsp(r) if r.session.request_late(now) => expired.push((
                    i,
                    "RTSP request not complete within 10 s (408)".into(),
                    Some({
                        let mut v = Vec::new();
                        crate::proto::rtsp::Response::new(408).write(None, &mut v);
                        v
                    }),
                )),
                State::Rtsp(r) if r.session.timed_out(now) => expired.push((
                    i,
                    "RTSP session timed out (no request or RTCP from the client)".into(),
                    None,
                )),
                _ => {}
            }
        }
        for i in ended {
            self.close(i, Some("end of broadcast: all sent"));
        }
        for (i, why, r) in expired {
            self.refuse(i, Refused::Timeout, &why, r);
        }
        for (i, r) in self.channels.expired(now) {
            self.refuse_watcher(i, &r);
        }
        self.channels.tick(now, &mut self.fx);
        self.apply(now);
        if now.duration_since(self.last_stats) >= self.cfg.stats_interval {
            self.last_stats = now;
            if log::log_enabled!(log::Level::Info) {
                for c in self.stats(now).channels {
                    log::info!("{}", c.log_line());
                    for w in &c.watchers {
                        if w.chunks_dropped > 0 {
                            log::info!(
                                "  watcher {} ({}): {} chunks / {} bytes dropped, {} skips",
                                w.id,
                                w.peer,
                                w.chunks_dropped,
                                w.bytes_dropped,
                                w.skips
                            );
                        }
                    }
                }
            }
        }
    }

    /// What `/metrics` shows (and forgets channels gone for a while).
    pub fn metrics(&mut self, now: Instant) -> Snapshot {
        let (channels, delay) = self.channels.metrics(now);
        let mut open = [0usize; 4];
        for c in self.conns.iter().flatten() {
            open[c.front as usize] += 1;
        }
        open[Front::Http as usize] = self.http.as_ref().map_or(0, |h| h.open());
        Snapshot {
            uptime_secs: now.duration_since(self.start).as_secs_f64(),
            accepted: self.accepted,
            fronts: Front::ALL
                .iter()
                .filter(|&&f| self.listeners[f as usize].is_some() || open[f as usize] > 0)
                .map(|&f| FrontMetrics {
                    name: f.name(),
                    open: open[f as usize],
                    refused: Refused::ALL
                        .iter()
                        .map(|&r| (r.name(), self.refusals[f as usize][r as usize]))
                        .collect(),
                })
                .collect(),
            channels,
            delay,
            hooks: self.hooks.metrics.clone(),
            hls: self.hls_stats(now),
        }
    }

    /// A snapshot of the figures.
    pub fn stats(&self, now: Instant) -> HubStats {
        let (conns, reqs) = (&self.conns, &self.http_reqs);
        let channels = self.channels.stats(now, |w| match reqs.get(&w) {
            Some(r) => Some((r.conn_id, r.peer, r.since)),
            None => conns
                .get(w)
                .and_then(|c| c.as_ref())
                .map(|c| (c.id, c.peer, c.since)),
        });
        HubStats {
            uptime_secs: now.duration_since(self.start).as_secs_f64(),
            connections: self.nconns + self.http.as_ref().map_or(0, |h| h.open()),
            accepted: self.accepted,
            refused: self.refused,
            channels,
            hls: self.hls_stats(now),
        }
    }
}
