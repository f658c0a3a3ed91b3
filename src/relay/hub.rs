//! The hub: one thread, one mio event loop, fstream and HTTP listeners, channels with one
//! broadcaster and any number of watchers. The protocol work is done by the pure modules
//! (fstream handshake, Splitter, GopCache, WatcherQueue, Convert, http); this file only moves bytes
//! between sockets and them, and keeps the time.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};

use super::cache::{CacheLimits, GopCache};
use super::convert::{Convert, ViewFormat};
use super::http::{self, ChunkedDecoder, Ext, Head, Route};
use super::queue::{QueueLimits, Verdict, WatcherQueue};
use super::rtsp::{
    self as rfront, Player, Publisher as RtspPublisher, Role as RRole, RtpChannel, RtspConn,
};
use super::stats::{ChannelStats, HubStats, WatcherStats};
use super::stream::{Chunk, HeaderKind, Mark, Splitter};
use super::users::Users;
use crate::format::flv::{FlvEvent, FlvReader, TagKind};
use crate::media::StreamFormat;
use crate::proto::fstream::{self, Handshake, Role as FRole};
use crate::proto::rtp::ingest::{FlvIngest, Ingest};
use crate::proto::rtp::view::unframe;
use crate::proto::rtsp::{
    Access, AuthVerdict, Authenticator, Credentials, Event as REvent, Host, Lower, RtpInfo,
    Session, SessionConfig, StreamSetup,
};
use crate::proto::sdp::Sdp;

use crate::proto::rtmp::{FlvSplice, MediaKind, ServerConfig, ServerEvent, ServerSession};

const FSTREAM: Token = Token(0);
const HTTP: Token = Token(1);
const RTMP: Token = Token(2);
const RTSP: Token = Token(3);
const UDP_RTP: Token = Token(4);
const UDP_RTCP: Token = Token(5);
const FIRST: usize = 6;
/// Datagrams read from one UDP socket per event before other sockets get a turn.
const UDP_BUDGET: usize = 512;
/// An RTMP player gets more FLV from its queue only while its session holds less than this.
const RTMP_LOW_WATER: usize = 256 * 1024;
/// How often RTMP players are pinged (they send nothing otherwise).
const RTMP_PING: Duration = Duration::from_secs(10);
/// Bytes read from one socket per event before other sockets get a turn.
const READ_BUDGET: usize = 1 << 20;
const READ_BUF: usize = 64 * 1024;
/// A watcher that sends more than this after its handshake is closed.
const MAX_WATCHER_INPUT: u64 = 1 << 20;
/// Deadline for an HTTP request head.
const HTTP_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long watchers get to receive what is queued after a stop signal.
const STOP_FLUSH: Duration = Duration::from_secs(2);
/// How long an RTSP player's connection stays after the end of the broadcast (its RTCP BYE), for
/// its TEARDOWN; players that neither tear down nor close are closed then.
const RTSP_LINGER: Duration = Duration::from_secs(10);
/// Most iovecs per writev.
const MAX_IOV: usize = 64;

/// The hub's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub http: Option<String>,
    pub rtmp: Option<String>,
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
}

type ChanKey = (String, String);

fn key_str(k: &ChanKey) -> String {
    format!("{}/{}", k.0, k.1)
}

fn format_name(f: Option<StreamFormat>) -> &'static str {
    match f {
        None => "",
        Some(StreamFormat::Flv) => "flv",
        Some(StreamFormat::Ts) => "ts",
        Some(StreamFormat::AnnexB) => "h264",
        Some(StreamFormat::Opaque) => "opaque",
    }
}

fn ext_format(e: Ext) -> StreamFormat {
    match e {
        Ext::Flv => StreamFormat::Flv,
        Ext::Ts => StreamFormat::Ts,
    }
}

enum Body {
    /// fstream: everything after the handshake, until EOF.
    Raw,
    Chunked(ChunkedDecoder),
    Length(u64),
}

struct Publisher {
    key: ChanKey,
    body: Body,
    http: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WatchKind {
    Fstream,
    Http(Ext),
    Rtmp,
}

struct Watcher {
    key: ChanKey,
    password: Option<String>,
    kind: WatchKind,
    /// The queue being written; None while waiting for the channel.
    queue: Option<WatcherQueue>,
    /// After a takeover: the new stream's queue, written once `queue` is drained.
    next: Option<WatcherQueue>,
    /// The format of the bytes this watcher has been sent (None before any).
    out_format: Option<StreamFormat>,
    /// Fed by a converted view rather than the broadcast itself.
    converted: bool,
    wait_deadline: Option<Instant>,
    eof_after_drain: bool,
    input: u64,
    dirty: bool,
    /// Figures of queues already finished (before a takeover).
    prev: super::queue::QueueStats,
}

impl Watcher {
    fn live_queue(&mut self) -> Option<&mut WatcherQueue> {
        if self.next.is_some() {
            self.next.as_mut()
        } else {
            self.queue.as_mut()
        }
    }
}

enum State {
    /// An RTMP connection before its publish or play is accepted.
    RtmpIdle,
    Handshake {
        hs: Handshake,
        deadline: Instant,
    },
    HttpHead {
        buf: Vec<u8>,
        deadline: Instant,
    },
    Publisher(Publisher),
    Watcher(Box<Watcher>),
    Rtsp(Box<RtspConn>),
    /// Writing `out`, then closing.
    Closing,
}

struct Conn {
    sock: TcpStream,
    peer: SocketAddr,
    id: u64,
    since: Instant,
    /// Bytes written before anything else (HTTP response heads, error responses).
    out: Vec<u8>,
    out_pos: usize,
    state: State,
    /// RTMP connections: the session and its FLV glue.
    rtmp: Option<Box<RtmpSide>>,
}

/// The RTMP part of a connection.
struct RtmpSide {
    session: ServerSession,
    /// The user (the connect `app` without its query).
    app: String,
    /// The connect URL's query (app or tcUrl), where passwords may go.
    connect_query: String,
    /// The stream being published or played.
    stream_id: Option<u32>,
    /// A play waiting for `accept_play`/`reject_play`.
    play_pending: bool,
    /// Publish: the RTMP → FLV writer.
    splice: FlvSplice,
    /// Play: the FLV reader over the watcher queue's bytes.
    reader: FlvReader,
    tags: Vec<FlvEvent>,
    /// Play: the first media timestamp (rebased to 0 for the player).
    base: Option<u32>,
    last_ping: Instant,
    /// Close once the session's output is written.
    close_after: bool,
}

fn query_param(q: &str, key: &str) -> Option<String> {
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| v.to_string())
    })
}

struct View {
    ext: Ext,
    convert: Convert,
    splitter: Splitter,
    cache: GopCache,
    watchers: Vec<usize>,
    failed: bool,
}

struct Channel {
    publisher: Option<usize>,
    publisher_peer: Option<SocketAddr>,
    password: Option<String>,
    splitter: Splitter,
    cache: GopCache,
    format: Option<StreamFormat>,
    watchers: Vec<usize>,
    pending: Vec<usize>,
    views: Vec<View>,
    /// The broadcast as RTP, for RTSP players: `[TCP, UDP]` (made on the first DESCRIBE, and the
    /// first PLAY over UDP).
    rtp: [Option<RtpChannel>; 2],
    bytes_in: u64,
    broadcasts: u64,
}

impl Channel {
    fn new(cfg: &Config) -> Self {
        Channel {
            publisher: None,
            publisher_peer: None,
            password: None,
            splitter: Splitter::new(),
            cache: GopCache::new(cfg.cache, cfg.gop_cache),
            format: None,
            watchers: Vec::new(),
            pending: Vec::new(),
            views: Vec::new(),
            rtp: [None, None],
            bytes_in: 0,
            broadcasts: 0,
        }
    }
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

/// Where datagrams from one client address go.
#[derive(Clone, Copy)]
struct UdpRoute {
    conn: usize,
    id: u64,
    stream: usize,
}

/// RTSP's RTP and RTCP over UDP: two sockets shared by all sessions.
struct Udp {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    ports: (u16, u16),
    /// Client RTP/RTCP source address → session.
    routes: HashMap<SocketAddr, UdpRoute>,
    /// Players waiting for the sockets to take more.
    blocked: Vec<usize>,
    /// A socket that was not drained within its budget (RTP, RTCP).
    again: [bool; 2],
    unknown: u64,
}

pub struct Hub {
    cfg: Config,
    poll: Poll,
    fstream: Option<TcpListener>,
    http: Option<TcpListener>,
    rtmp: Option<TcpListener>,
    rtsp: Option<TcpListener>,
    rtsp_addr: Option<SocketAddr>,
    rtsp_auth: Authenticator,
    udp: Option<Udp>,
    users: Users,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    nconns: usize,
    channels: HashMap<ChanKey, Channel>,
    buf: Vec<u8>,
    chunks: Vec<Chunk>,
    dirty: Vec<usize>,
    again: Vec<usize>,
    next_id: u64,
    start: Instant,
    accepted: u64,
    refused: u64,
    last_stats: Instant,
    last_timers: Instant,
}

/// Binds `addr` and registers the listener under `token`; errors name the address.
fn listen(poll: &Poll, addr: &str, token: Token) -> io::Result<(TcpListener, SocketAddr)> {
    let mut l = bind(addr).map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
    poll.registry()
        .register(&mut l, token, Interest::READABLE)?;
    let local = l.local_addr()?;
    Ok((l, local))
}

/// [`listen`] for an optional front.
fn listen_opt(
    poll: &Poll,
    addr: Option<&str>,
    token: Token,
) -> io::Result<(Option<TcpListener>, Option<SocketAddr>)> {
    match addr {
        Some(a) => listen(poll, a, token).map(|(l, local)| (Some(l), Some(local))),
        None => Ok((None, None)),
    }
}

fn bind(addr: &str) -> io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for a in addr.to_socket_addrs()? {
        match TcpListener::bind(a) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Hands `chunk` to every watcher in `list`; collects the ones to flush and the ones to drop.
fn fan_out(
    conns: &mut [Option<Conn>],
    list: &[usize],
    chunk: &Chunk,
    now: Instant,
    dirty: &mut Vec<usize>,
    drop: &mut Vec<(usize, &'static str)>,
) {
    for &w in list {
        let Some(c) = conns.get_mut(w).and_then(|c| c.as_mut()) else {
            continue;
        };
        if let State::Rtsp(r) = &mut c.state {
            if let RRole::Player(p) = &mut r.role {
                if let Some(q) = p.queue.as_mut() {
                    match q.push(chunk, now) {
                        Verdict::Ok => {
                            if !p.dirty {
                                p.dirty = true;
                                dirty.push(w);
                            }
                        }
                        Verdict::Disconnect(r) => drop.push((w, r)),
                    }
                }
            }
            continue;
        }
        let State::Watcher(wt) = &mut c.state else {
            continue;
        };
        let Some(q) = wt.live_queue() else { continue };
        match q.push(chunk, now) {
            Verdict::Ok => {
                if !wt.dirty {
                    wt.dirty = true;
                    dirty.push(w);
                }
            }
            Verdict::Disconnect(r) => drop.push((w, r)),
        }
    }
}

/// Runs a chunk through a view: convert, split, cache, fan out.
#[allow(clippy::too_many_arguments)]
fn feed_view(
    view: &mut View,
    data: &[u8],
    conns: &mut [Option<Conn>],
    now: Instant,
    dirty: &mut Vec<usize>,
    drop: &mut Vec<(usize, &'static str)>,
    key: &ChanKey,
    finish: bool,
) {
    if view.failed {
        return;
    }
    let mut out = Vec::new();
    if let Err(e) = view.convert.push(data, &mut out) {
        log::warn!(
            "channel {}: {} view: {e}; its watchers get EOF",
            key_str(key),
            if view.ext == Ext::Flv { "FLV" } else { "TS" }
        );
        view.failed = true;
    }
    if finish && !view.failed {
        view.convert.finish(&mut out);
    }
    let mut chunks = Vec::new();
    view.splitter.push(&out, &mut chunks);
    if finish {
        view.splitter.finish(&mut chunks);
    }
    for c in &chunks {
        view.cache.push(c, now);
        fan_out(conns, &view.watchers, c, now, dirty, drop);
    }
}

impl Hub {
    /// Binds the listeners.
    pub fn bind(cfg: Config) -> io::Result<(Hub, Bound)> {
        let poll = Poll::new()?;
        let (fl, fstream_addr) = listen(&poll, &cfg.listen, FSTREAM)?;
        let (http_l, http_addr) = listen_opt(&poll, cfg.http.as_deref(), HTTP)?;
        let (rtmp_l, rtmp_addr) = listen_opt(&poll, cfg.rtmp.as_deref(), RTMP)?;
        let (rtsp_l, rtsp_addr) = listen_opt(&poll, cfg.rtsp.as_deref(), RTSP)?;
        let udp = match (rtsp_addr, cfg.rtsp_udp_port) {
            (Some(a), Some(port)) => {
                let (mut rtp, mut rtcp) =
                    crate::net::udp::bind_pair(a.ip(), port).map_err(|e| {
                        io::Error::new(e.kind(), format!("RTSP UDP port {port} on {}: {e}", a.ip()))
                    })?;
                let rw = Interest::READABLE | Interest::WRITABLE;
                poll.registry().register(&mut rtp, UDP_RTP, rw)?;
                poll.registry().register(&mut rtcp, UDP_RTCP, rw)?;
                let ports = (rtp.local_addr()?.port(), rtcp.local_addr()?.port());
                Some(Udp {
                    rtp,
                    rtcp,
                    ports,
                    routes: HashMap::new(),
                    blocked: Vec::new(),
                    again: [false; 2],
                    unknown: 0,
                })
            }
            _ => None,
        };
        let rtsp_udp = match &udp {
            Some(u) => Some((u.rtp.local_addr()?, u.rtcp.local_addr()?)),
            None => None,
        };
        let now = Instant::now();
        let users = Users::new(cfg.users.clone());
        Ok((
            Hub {
                cfg,
                poll,
                fstream: Some(fl),
                http: http_l,
                rtmp: rtmp_l,
                rtsp: rtsp_l,
                rtsp_addr,
                rtsp_auth: Authenticator::new("river", now),
                udp,
                users,
                conns: Vec::new(),
                free: Vec::new(),
                nconns: 0,
                channels: HashMap::new(),
                buf: vec![0; READ_BUF],
                chunks: Vec::new(),
                dirty: Vec::new(),
                again: Vec::new(),
                next_id: 1,
                start: now,
                accepted: 0,
                refused: 0,
                last_stats: now,
                last_timers: now,
            },
            Bound {
                fstream: fstream_addr,
                http: http_addr,
                rtmp: rtmp_addr,
                rtsp: rtsp_addr,
                rtsp_udp,
            },
        ))
    }

    /// Runs until `stop()` says so, then flushes watchers for a short while.
    pub fn run(&mut self, stop: impl Fn() -> bool) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut stopping: Option<Instant> = None;
        loop {
            let udp_again = self.udp.as_ref().is_some_and(|u| u.again != [false; 2]);
            let timeout = if self.again.is_empty() && !udp_again {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            let again = std::mem::take(&mut self.again);
            for idx in again {
                self.on_readable(idx, now);
            }
            if let Some([a, b]) = self.udp.as_ref().map(|u| u.again) {
                if a {
                    self.on_udp(false, now);
                }
                if b {
                    self.on_udp(true, now);
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    FSTREAM => self.accept(Listener::Fstream, now),
                    HTTP => self.accept(Listener::Http, now),
                    RTMP => self.accept(Listener::Rtmp, now),
                    RTSP => self.accept(Listener::Rtsp, now),
                    UDP_RTP | UDP_RTCP => {
                        if ev.is_writable() {
                            self.flush_udp_blocked(now);
                        }
                        if ev.is_readable() {
                            self.on_udp(ev.token() == UDP_RTCP, now);
                        }
                    }
                    Token(t) => {
                        let idx = t - FIRST;
                        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                            self.flush(idx, now);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(idx, now);
                        }
                    }
                }
            }
            self.flush_dirty(now);
            self.timers(now);
            if stopping.is_none() && stop() {
                log::info!("stop signal: closing listeners, flushing watchers");
                self.begin_stop(now);
                stopping = Some(now);
            }
            if let Some(t) = stopping {
                let busy = self.conns.iter().flatten().any(|c| {
                    matches!(&c.state, State::Watcher(w) if w.queue.as_ref().is_some_and(|q| !q.is_empty()))
                        || matches!(&c.state, State::Rtsp(r) if matches!(&r.role, RRole::Player(p) if p.queue.as_ref().is_some_and(|q| !q.is_empty())))
                        || c.out_pos < c.out.len()
                        || c.rtmp.as_ref().is_some_and(|r| !r.session.pending_output().is_empty())
                });
                if !busy || now.duration_since(t) > STOP_FLUSH {
                    return Ok(());
                }
            }
        }
    }

    fn begin_stop(&mut self, now: Instant) {
        for mut l in [
            self.fstream.take(),
            self.http.take(),
            self.rtmp.take(),
            self.rtsp.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let keys: Vec<ChanKey> = self.channels.keys().cloned().collect();
        for k in keys {
            self.end_broadcast(&k, now, "hub stopping");
        }
        let idxs: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns[i].is_some())
            .collect();
        for i in idxs {
            let keep = matches!(&self.conns[i], Some(c) if matches!(&c.state, State::Watcher(w) if w.queue.is_some()))
                || matches!(&self.conns[i], Some(c) if matches!(&c.state, State::Rtsp(r) if matches!(&r.role, RRole::Player(p) if p.queue.is_some())));
            if !keep {
                self.close(i, None);
            }
        }
    }

    fn accept(&mut self, which: Listener, now: Instant) {
        let is_http = which == Listener::Http;
        let is_rtmp = which == Listener::Rtmp;
        loop {
            let l = match which {
                Listener::Http => self.http.as_ref(),
                Listener::Fstream => self.fstream.as_ref(),
                Listener::Rtmp => self.rtmp.as_ref(),
                Listener::Rtsp => self.rtsp.as_ref(),
            };
            let Some(l) = l else { return };
            let (mut sock, peer) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept: {e}");
                    return;
                }
            };
            if self.nconns >= self.cfg.max_connections {
                self.refused += 1;
                log::warn!(
                    "{peer}: refused: {} connections open (--max-connections)",
                    self.nconns
                );
                drop(sock);
                continue;
            }
            let _ = sock.set_nodelay(true);
            let idx = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if let Err(e) = self.poll.registry().register(
                &mut sock,
                Token(idx + FIRST),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("{peer}: register: {e}");
                self.free.push(idx);
                continue;
            }
            self.accepted += 1;
            let state = if is_rtmp {
                State::RtmpIdle
            } else if which == Listener::Rtsp {
                let d = SessionConfig::default();
                let cfg = SessionConfig {
                    shared_streams: true,
                    session_timeout: self.cfg.rtsp_timeout,
                    idle_timeout: d.idle_timeout.min(self.cfg.rtsp_timeout),
                    ..d
                };
                State::Rtsp(Box::new(RtspConn {
                    session: Session::new(cfg, now).with_authenticator(self.rtsp_auth.clone()),
                    role: RRole::Idle,
                    linger_until: None,
                }))
            } else if is_http {
                State::HttpHead {
                    buf: Vec::new(),
                    deadline: now + HTTP_HEAD_TIMEOUT,
                }
            } else {
                State::Handshake {
                    hs: Handshake::new(),
                    deadline: now + fstream::HANDSHAKE_TIMEOUT,
                }
            };
            log::debug!(
                "{peer}: connected ({})",
                match which {
                    Listener::Http => "http",
                    Listener::Fstream => "fstream",
                    Listener::Rtsp => "rtsp",
                    Listener::Rtmp => "rtmp",
                }
            );
            let rtmp = is_rtmp.then(|| {
                Box::new(RtmpSide {
                    session: ServerSession::new(
                        ServerConfig {
                            // Players send nothing: they are pinged, and a dead one shows as a
                            // write error or a full queue.
                            idle_timeout: None,
                            ..ServerConfig::default()
                        },
                        now,
                    ),
                    app: String::new(),
                    connect_query: String::new(),
                    stream_id: None,
                    play_pending: false,
                    splice: FlvSplice::new(),
                    reader: FlvReader::new(),
                    tags: Vec::new(),
                    base: None,
                    last_ping: now,
                    close_after: false,
                })
            });
            self.conns[idx] = Some(Conn {
                sock,
                peer,
                id: self.next_id,
                since: now,
                out: Vec::new(),
                out_pos: 0,
                state,
                rtmp,
            });
            self.next_id += 1;
            self.nconns += 1;
        }
    }

    /// Removes a connection from everything; `reason` is logged when given.
    fn close(&mut self, idx: usize, reason: Option<&str>) {
        let Some(mut c) = self.conns.get_mut(idx).and_then(|c| c.take()) else {
            return;
        };
        self.nconns -= 1;
        self.free.push(idx);
        let _ = self.poll.registry().deregister(&mut c.sock);
        if let Some(r) = reason {
            log::info!("{}: closed: {r}", c.peer);
        }
        match c.state {
            State::Rtsp(r) => self.rtsp_detach(idx, r.role, "RTSP publisher gone"),
            State::Watcher(w) => {
                if let Some(ch) = self.channels.get_mut(&w.key) {
                    ch.watchers.retain(|&x| x != idx);
                    ch.pending.retain(|&x| x != idx);
                    for v in &mut ch.views {
                        v.watchers.retain(|&x| x != idx);
                    }
                    self.gc_channel(&w.key);
                }
            }
            State::Publisher(p)
                if self
                    .channels
                    .get(&p.key)
                    .is_some_and(|ch| ch.publisher == Some(idx)) =>
            {
                self.end_broadcast(&p.key, Instant::now(), "broadcaster gone");
            }
            _ => {}
        }
    }

    fn gc_channel(&mut self, key: &ChanKey) {
        if let Some(ch) = self.channels.get(key) {
            if ch.publisher.is_none() && ch.watchers.is_empty() && ch.pending.is_empty() {
                self.channels.remove(key);
            }
        }
    }

    /// Refuses a client: logs why and closes it without sending anything (HTTP: `response`).
    fn refuse(&mut self, idx: usize, why: &str, response: Option<Vec<u8>>) {
        self.refused += 1;
        if let Some(c) = &self.conns[idx] {
            log::warn!("{}: refused: {why}", c.peer);
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

    fn respond_and_close(&mut self, idx: usize, resp: Vec<u8>) {
        let old = {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            c.out = resp;
            c.out_pos = 0;
            std::mem::replace(&mut c.state, State::Closing)
        };
        // Leave whatever it was part of.
        if let State::Rtsp(r) = old {
            self.rtsp_detach(idx, r.role, "RTSP publisher closed");
        } else if let State::Watcher(w) = old {
            if let Some(ch) = self.channels.get_mut(&w.key) {
                ch.watchers.retain(|&x| x != idx);
                ch.pending.retain(|&x| x != idx);
                for v in &mut ch.views {
                    v.watchers.retain(|&x| x != idx);
                }
            }
            self.gc_channel(&w.key);
        }
        self.flush(idx, Instant::now());
    }

    fn on_readable(&mut self, idx: usize, now: Instant) {
        let mut buf = std::mem::take(&mut self.buf);
        let mut budget = READ_BUDGET;
        while let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) {
            // A closing connection's input is ignored (and not read: it may hold a big body).
            if matches!(c.state, State::Closing) {
                break;
            }
            if budget == 0 {
                self.again.push(idx);
                break;
            }
            let n = match c.sock.read(&mut buf) {
                Ok(0) => {
                    self.on_eof(idx, now);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let r = format!("read error: {e}");
                    self.on_error(idx, &r, now);
                    break;
                }
            };
            budget = budget.saturating_sub(n);
            self.on_data(idx, &buf[..n], now);
        }
        self.buf = buf;
    }

    fn on_error(&mut self, idx: usize, reason: &str, _now: Instant) {
        self.close(idx, Some(reason));
    }

    fn on_eof(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let peer = c.peer;
        match &mut c.state {
            State::Publisher(p) => {
                let key = p.key.clone();
                let is_http = p.http;
                let complete = matches!(p.body, Body::Raw);
                if is_http && !complete {
                    log::warn!(
                        "{peer}: HTTP push to {} ended before its body did",
                        key_str(&key)
                    );
                }
                log::info!("{peer}: broadcast of {} ended", key_str(&key));
                self.end_broadcast(&key, now, "end of broadcast");
                self.close(idx, None);
            }
            State::Handshake { .. } => self.refuse(idx, "closed during the handshake", None),
            State::HttpHead { buf, .. } => {
                if buf.is_empty() {
                    self.close(idx, None)
                } else {
                    self.refuse(idx, "closed during the request head", None)
                }
            }
            State::RtmpIdle => self.close(idx, None),
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
            State::Handshake { hs, .. } => match hs.push(data) {
                Ok(None) => {}
                Ok(Some((req, used))) => self.on_handshake(idx, req, &data[used..], now),
                Err(e) => self.refuse(idx, &format!("bad fstream handshake: {e}"), None),
            },
            State::HttpHead { buf, .. } => {
                let room = http::MAX_HEAD + 1 - buf.len().min(http::MAX_HEAD + 1);
                let take = data.len().min(room);
                buf.extend_from_slice(&data[..take]);
                match http::parse_head(buf) {
                    Ok(None) => {}
                    Ok(Some((head, len))) => {
                        let mut rest = buf[len..].to_vec();
                        rest.extend_from_slice(&data[take..]);
                        self.on_http_request(idx, head, &rest, now);
                    }
                    Err(e) => {
                        let r = http::error_response(e.status, &e.message);
                        self.refuse(idx, &format!("HTTP {}: {}", e.status, e.message), Some(r));
                    }
                }
            }
            State::Publisher(p) => {
                let key = p.key.clone();
                let mut body = Vec::new();
                let mut done = false;
                let payload: &[u8] = match &mut p.body {
                    Body::Raw => data,
                    Body::Length(left) => {
                        let take = (*left).min(data.len() as u64) as usize;
                        *left -= take as u64;
                        done = *left == 0;
                        &data[..take]
                    }
                    Body::Chunked(d) => match d.push(data, &mut body) {
                        Ok(_) => {
                            done = d.is_done();
                            &body
                        }
                        Err(e) => {
                            let peer = c.peer;
                            log::warn!("{peer}: HTTP push to {}: {e}", key_str(&key));
                            self.end_broadcast(&key, now, "bad chunked body");
                            let r = http::error_response(400, &e);
                            self.respond_and_close(idx, r);
                            return;
                        }
                    },
                };
                let payload = payload.to_vec();
                self.broadcast_data(&key, &payload, now);
                if done {
                    log::info!(
                        "{}: HTTP push to {} complete",
                        c_peer(&self.conns[idx]),
                        key_str(&key)
                    );
                    self.end_broadcast(&key, now, "end of broadcast");
                    let r = http::response_head(200, &[], Some(0));
                    self.respond_and_close(idx, r);
                }
            }
            State::Watcher(w) => {
                w.input += data.len() as u64;
                if w.input > MAX_WATCHER_INPUT {
                    self.close(idx, Some("watcher sent more than 1 MiB"));
                }
            }
            State::Rtsp(_) => self.on_rtsp_data(idx, data, now),
            State::Closing | State::RtmpIdle => {}
        }
    }

    fn check_user(&mut self, user: &str, password: &str) -> Result<(), String> {
        match self.users.check(user, password) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("wrong user password or unknown user {user:?}")),
            Err(e) => {
                log::error!("users: {e}");
                Err(format!("cannot check user {user:?}: {e}"))
            }
        }
    }

    fn on_handshake(&mut self, idx: usize, req: fstream::Request, rest: &[u8], now: Instant) {
        let key = (req.user.clone(), req.channel.clone());
        match req.role {
            FRole::Broadcast => {
                let pw = req.user_password.clone().unwrap_or_default();
                if let Err(why) = self.check_user(&req.user, &pw) {
                    self.refuse(
                        idx,
                        &format!("broadcaster for {}: {why}", key_str(&key)),
                        None,
                    );
                    return;
                }
                self.start_broadcast(
                    idx,
                    key,
                    req.channel_password.clone(),
                    Body::Raw,
                    false,
                    now,
                );
                if !rest.is_empty() {
                    let k = (req.user, req.channel);
                    self.broadcast_data(&k, rest, now);
                }
            }
            FRole::Watch => {
                self.start_watcher(idx, key, req.channel_password, WatchKind::Fstream, now);
                if let Some(Some(Conn {
                    state: State::Watcher(w),
                    ..
                })) = self.conns.get_mut(idx)
                {
                    w.input += rest.len() as u64;
                }
            }
        }
    }

    fn on_http_request(&mut self, idx: usize, head: Head, rest: &[u8], now: Instant) {
        let head_only = head.method == "HEAD";
        let route = http::route(&head);
        let peer = c_peer(&self.conns[idx]);
        log::debug!("{peer}: {} {}", head.method, head.path);
        match (head.method.as_str(), route) {
            ("OPTIONS", _) => {
                let r = http::response_head(
                    204,
                    &[
                        ("Allow", "GET, HEAD, POST, PUT, OPTIONS"),
                        (
                            "Access-Control-Allow-Methods",
                            "GET, HEAD, POST, PUT, OPTIONS",
                        ),
                        ("Access-Control-Allow-Headers", "*"),
                    ],
                    Some(0),
                );
                self.respond_and_close(idx, r);
            }
            ("GET" | "HEAD", Route::Stats { prometheus }) => {
                let s = self.stats(now);
                let (ct, body) = if prometheus {
                    (
                        "text/plain; version=0.0.4; charset=utf-8",
                        s.to_prometheus(),
                    )
                } else {
                    ("application/json", s.to_json())
                };
                let r = http::text_response(200, ct, &body, head_only);
                self.respond_and_close(idx, r);
            }
            ("GET" | "HEAD", Route::Stream { user, channel, ext }) => {
                let Some(ext) = ext else {
                    let r = http::error_response(404, "ask for /<user>/<channel>.flv or .ts");
                    self.refuse(idx, "HTTP GET without .flv or .ts", Some(r));
                    return;
                };
                if head_only {
                    let r = http::response_head(200, &[("Content-Type", ext.content_type())], None);
                    self.respond_and_close(idx, r);
                    return;
                }
                let pw = head.param("password").map(str::to_string);
                self.start_watcher(idx, (user, channel), pw, WatchKind::Http(ext), now);
            }
            ("POST" | "PUT", Route::Stream { user, channel, .. }) => {
                let key = (user, channel);
                let pw = head
                    .param("user-password")
                    .or_else(|| head.param("password"))
                    .unwrap_or("")
                    .to_string();
                if let Err(why) = self.check_user(&key.0, &pw) {
                    let r = http::error_response(403, "wrong user password or unknown user");
                    self.refuse(
                        idx,
                        &format!("HTTP broadcaster for {}: {why}", key_str(&key)),
                        Some(r),
                    );
                    return;
                }
                let body = if head.chunked {
                    Body::Chunked(ChunkedDecoder::new())
                } else if let Some(n) = head.content_length {
                    Body::Length(n)
                } else if head.version == 0 {
                    Body::Raw
                } else {
                    let r =
                        http::error_response(411, "a push needs a chunked or Content-Length body");
                    self.refuse(idx, "HTTP push without a body length", Some(r));
                    return;
                };
                let cpw = head.param("channel-password").map(str::to_string);
                let empty = matches!(body, Body::Length(0));
                self.start_broadcast(idx, key.clone(), cpw, body, true, now);
                if empty {
                    self.end_broadcast(&key, now, "empty push");
                    let r = http::response_head(200, &[], Some(0));
                    self.respond_and_close(idx, r);
                } else if !rest.is_empty() {
                    self.on_data(idx, rest, now);
                }
            }
            (_, Route::NotFound) => {
                let r = http::error_response(404, "no such path");
                self.refuse(idx, &format!("HTTP 404 {}", head.path), Some(r));
            }
            (m, _) => {
                let r = http::error_response(405, &format!("method {m} not allowed here"));
                self.refuse(idx, &format!("HTTP 405 {m}"), Some(r));
            }
        }
    }

    fn start_broadcast(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        body: Body,
        is_http: bool,
        now: Instant,
    ) {
        let peer = c_peer(&self.conns[idx]);
        let cfg = self.cfg.clone();
        let ch = self
            .channels
            .entry(key.clone())
            .or_insert_with(|| Channel::new(&cfg));
        let old = ch.publisher.take();
        let had_watchers =
            !ch.watchers.is_empty() || ch.views.iter().any(|v| !v.watchers.is_empty());
        if old.is_some() {
            log::warn!(
                "{peer}: takes over channel {} from {} (second broadcaster)",
                key_str(&key),
                ch.publisher_peer.map(|p| p.to_string()).unwrap_or_default()
            );
            // Existing watchers keep their queues and wait for the new stream's format.
            let mut moved: Vec<usize> = std::mem::take(&mut ch.watchers);
            for v in ch.views.drain(..) {
                moved.extend(v.watchers);
            }
            ch.pending.extend(moved);
            ch.splitter = Splitter::new();
            ch.cache = GopCache::new(cfg.cache, cfg.gop_cache);
            ch.format = None;
        } else if had_watchers {
            // Cannot happen: watchers are detached at the end of a broadcast.
            ch.watchers.clear();
        }
        ch.publisher = Some(idx);
        ch.publisher_peer = self.conns[idx].as_ref().map(|c| c.peer);
        ch.password = password.clone();
        ch.broadcasts += 1;
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Publisher(Publisher {
                key: key.clone(),
                body,
                http: is_http,
            });
        }
        log::info!(
            "{peer}: broadcasting {}{}{}",
            key_str(&key),
            if password.is_some() {
                " (channel password set)"
            } else {
                ""
            },
            if is_http { " over HTTP" } else { "" }
        );
        if let Some(old) = old {
            if let Some(c) = self.conns[old].as_mut() {
                // Detach first so closing it does not end the broadcast.
                c.state = State::Closing;
            }
            self.close(old, Some("replaced by a new broadcaster"));
        }
        // Waiting watchers with another channel password are dropped.
        let pending = self
            .channels
            .get(&key)
            .map(|c| c.pending.clone())
            .unwrap_or_default();
        for w in pending {
            let ok = match &self.conns[w] {
                Some(Conn {
                    state: State::Watcher(wt),
                    ..
                }) => wt.password == password,
                _ => true,
            };
            if !ok {
                let http = matches!(&self.conns[w], Some(Conn { state: State::Watcher(wt), .. }) if matches!(wt.kind, WatchKind::Http(_)) && wt.queue.is_none());
                let why = format!(
                    "watcher of {}: the broadcaster set another channel password",
                    key_str(&key)
                );
                let r = http.then(|| http::error_response(403, "wrong channel password"));
                self.refuse(w, &why, r);
            }
        }
        let _ = now;
    }

    fn start_watcher(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        kind: WatchKind,
        now: Instant,
    ) {
        let http = matches!(kind, WatchKind::Http(_));
        let live = self
            .channels
            .get(&key)
            .and_then(|c| c.publisher.map(|_| c.password.clone()));
        if let Some(chpw) = &live {
            if *chpw != password {
                let r = http.then(|| http::error_response(403, "wrong channel password"));
                self.refuse(
                    idx,
                    &format!("watcher of {}: wrong channel password", key_str(&key)),
                    r,
                );
                return;
            }
        } else {
            let waiting: usize = self.channels.values().map(|c| c.pending.len()).sum();
            if waiting >= self.cfg.max_waiting {
                let r = http.then(|| http::error_response(503, "too many watchers waiting"));
                self.refuse(
                    idx,
                    &format!(
                        "watcher of {}: {waiting} watchers waiting (--max-waiting)",
                        key_str(&key)
                    ),
                    r,
                );
                return;
            }
        }
        let peer = c_peer(&self.conns[idx]);
        log::info!(
            "{peer}: watching {}{}",
            key_str(&key),
            if live.is_some() {
                ""
            } else {
                " (waiting for it to go live)"
            }
        );
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Watcher(Box::new(Watcher {
                key: key.clone(),
                password,
                kind,
                queue: None,
                next: None,
                out_format: None,
                converted: false,
                wait_deadline: Some(now + self.cfg.wait_timeout),
                eof_after_drain: false,
                input: 0,
                dirty: false,
                prev: Default::default(),
            }));
        }
        let cfg = self.cfg.clone();
        let ch = self
            .channels
            .entry(key.clone())
            .or_insert_with(|| Channel::new(&cfg));
        ch.pending.push(idx);
        if ch.format.is_some() {
            self.attach_pending(&key, now);
        }
    }

    /// Attaches the channel's pending watchers (the format is known).
    fn attach_pending(&mut self, key: &ChanKey, now: Instant) {
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        let Some(format) = ch.format else { return };
        if ch.publisher.is_none() {
            return;
        }
        let pending = std::mem::take(&mut ch.pending);
        let mut refuse: Vec<(usize, String, Option<Vec<u8>>)> = Vec::new();
        let mut eof: Vec<usize> = Vec::new();
        for w in pending {
            let Some(Conn {
                state: State::Watcher(wt),
                out,
                ..
            }) = self.conns.get_mut(w).and_then(|c| c.as_mut())
            else {
                continue;
            };
            let continuing = wt.out_format.is_some();
            // What this watcher needs: its container, from the broadcast or a view.
            let want = match wt.kind {
                WatchKind::Fstream => wt.out_format.unwrap_or(format),
                WatchKind::Http(e) => ext_format(e),
                WatchKind::Rtmp => StreamFormat::Flv,
            };
            let source_view = if want == format {
                None
            } else if matches!(wt.kind, WatchKind::Http(_) | WatchKind::Rtmp)
                && format != StreamFormat::Opaque
            {
                Some(match want {
                    StreamFormat::Flv => Ext::Flv,
                    _ => Ext::Ts,
                })
            } else {
                None
            };
            if want != format && source_view.is_none() {
                if continuing {
                    // The new stream is in another format: this watcher ends after its queue.
                    wt.eof_after_drain = true;
                    eof.push(w);
                } else {
                    refuse.push((
                        w,
                        format!(
                            "HTTP watcher of {}: the broadcast is {} content, not {}",
                            key_str(key),
                            format_name(Some(format)),
                            format_name(Some(want))
                        ),
                        Some(http::error_response(
                            415,
                            &format!(
                                "channel carries {} content, not {}",
                                format_name(Some(format)),
                                format_name(Some(want))
                            ),
                        )),
                    ));
                }
                continue;
            }
            let join = match source_view {
                None => ch.cache.join(),
                Some(ext) => {
                    let vi = match ch.views.iter().position(|v| v.ext == ext) {
                        Some(i) => i,
                        None => {
                            let vf = match ext {
                                Ext::Flv => ViewFormat::Flv,
                                Ext::Ts => ViewFormat::Ts,
                            };
                            let Some(convert) = Convert::new(format, vf) else {
                                refuse.push((
                                    w,
                                    format!("HTTP watcher of {}: no conversion", key_str(key)),
                                    Some(http::error_response(415, "cannot convert this channel")),
                                ));
                                continue;
                            };
                            let mut view = View {
                                ext,
                                convert,
                                splitter: Splitter::new(),
                                cache: GopCache::new(self.cfg.cache, true),
                                watchers: Vec::new(),
                                failed: false,
                            };
                            // Prime it with the broadcast's headers and cached GOP.
                            let prime = ch.cache.join();
                            let mut d = Vec::new();
                            let mut dropv = Vec::new();
                            for c in &prime.chunks {
                                feed_view(
                                    &mut view,
                                    &c.data,
                                    &mut [],
                                    now,
                                    &mut d,
                                    &mut dropv,
                                    key,
                                    false,
                                );
                            }
                            ch.views.push(view);
                            ch.views.len() - 1
                        }
                    };
                    ch.views[vi].cache.join()
                }
            };
            let mut join = join;
            if continuing {
                join.chunks
                    .retain(|c| c.mark != Mark::Header(HeaderKind::FlvFile));
            }
            let q = WatcherQueue::new(self.cfg.queue, want, join, now);
            if continuing {
                wt.next = Some(q);
            } else {
                wt.queue = Some(q);
                if let WatchKind::Http(e) = wt.kind {
                    *out = http::response_head(200, &[("Content-Type", e.content_type())], None);
                }
            }
            wt.out_format = Some(want);
            wt.converted = source_view.is_some();
            wt.wait_deadline = None;
            match source_view {
                None => ch.watchers.push(w),
                Some(ext) => {
                    if let Some(v) = ch.views.iter_mut().find(|v| v.ext == ext) {
                        v.watchers.push(w);
                    }
                }
            }
            if !wt.dirty {
                wt.dirty = true;
                self.dirty.push(w);
            }
        }
        for (w, why, r) in refuse {
            self.refuse(w, &why, r);
        }
        for w in eof {
            self.flush(w, now);
        }
    }

    fn broadcast_data(&mut self, key: &ChanKey, data: &[u8], now: Instant) {
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        ch.bytes_in += data.len() as u64;
        let mut chunks = std::mem::take(&mut self.chunks);
        chunks.clear();
        ch.splitter.push(data, &mut chunks);
        self.deliver(key, &chunks, now, false);
        self.chunks = chunks;
    }

    fn deliver(&mut self, key: &ChanKey, chunks: &[Chunk], now: Instant, finish: bool) {
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        let newly = ch.format.is_none() && ch.splitter.format().is_some();
        if newly {
            ch.format = ch.splitter.format();
            log::info!(
                "channel {}: {} content",
                key_str(key),
                match ch.format {
                    Some(StreamFormat::Flv) => "FLV",
                    Some(StreamFormat::Ts) => "MPEG-TS",
                    Some(StreamFormat::AnnexB) => "H.264 Annex B",
                    _ => "unknown (opaque)",
                }
            );
            self.attach_pending(key, now);
        }
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        let mut drops = Vec::new();
        for c in chunks {
            ch.cache.push(c, now);
            fan_out(
                &mut self.conns,
                &ch.watchers,
                c,
                now,
                &mut self.dirty,
                &mut drops,
            );
            for v in &mut ch.views {
                feed_view(
                    v,
                    &c.data,
                    &mut self.conns,
                    now,
                    &mut self.dirty,
                    &mut drops,
                    key,
                    false,
                );
            }
            for rv in ch.rtp.iter_mut().flatten() {
                for x in rv.feed(&c.data, false, now) {
                    fan_out(
                        &mut self.conns,
                        &rv.watchers,
                        &x,
                        now,
                        &mut self.dirty,
                        &mut drops,
                    );
                }
            }
        }
        if finish {
            for v in &mut ch.views {
                feed_view(
                    v,
                    &[],
                    &mut self.conns,
                    now,
                    &mut self.dirty,
                    &mut drops,
                    key,
                    true,
                );
            }
            for rv in ch.rtp.iter_mut().flatten() {
                for x in rv.feed(&[], true, now) {
                    fan_out(
                        &mut self.conns,
                        &rv.watchers,
                        &x,
                        now,
                        &mut self.dirty,
                        &mut drops,
                    );
                }
            }
        }
        for (w, why) in drops {
            let kstr = key_str(key);
            self.close(w, Some(&format!("slow watcher of {kstr}: {why}")));
        }
    }

    /// The broadcast on `key` ended: flush the splitter, let every watcher drain then EOF.
    fn end_broadcast(&mut self, key: &ChanKey, now: Instant, why: &str) {
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        if ch.publisher.is_none() {
            return;
        }
        let mut chunks = Vec::new();
        ch.splitter.finish(&mut chunks);
        self.deliver(key, &chunks, now, true);
        let Some(ch) = self.channels.get_mut(key) else {
            return;
        };
        if let Some(p) = ch.publisher.take() {
            if let Some(Some(c)) = self.conns.get_mut(p) {
                if matches!(c.state, State::Publisher(_)) {
                    c.state = State::Closing;
                }
            }
        }
        let mut ending: Vec<usize> = std::mem::take(&mut ch.watchers);
        for v in ch.views.drain(..) {
            ending.extend(v.watchers);
        }
        let rtsp_players: Vec<usize> = ch
            .rtp
            .iter_mut()
            .flat_map(|r| r.take().map(|r| r.watchers).unwrap_or_default())
            .collect();
        // Watchers that were continuing from a replaced broadcast and never got the new one end too.
        let pend = std::mem::take(&mut ch.pending);
        let mut keep = Vec::new();
        for w in pend {
            match &self.conns[w] {
                Some(Conn {
                    state: State::Watcher(wt),
                    ..
                }) if wt.queue.is_some() => ending.push(w),
                _ => keep.push(w),
            }
        }
        let ch = self.channels.get_mut(key).unwrap();
        ch.pending = keep;
        ch.splitter = Splitter::new();
        ch.cache = GopCache::new(self.cfg.cache, self.cfg.gop_cache);
        ch.format = None;
        ch.password = None;
        log::info!(
            "channel {}: {why}; {} watchers get what is queued, then EOF",
            key_str(key),
            ending.len()
        );
        for w in ending {
            if let Some(Some(Conn {
                state: State::Watcher(wt),
                ..
            })) = self.conns.get_mut(w)
            {
                wt.eof_after_drain = true;
                // A watcher between two streams finishes the old one only.
                if wt.queue.is_none() {
                    wt.queue = wt.next.take();
                }
            }
            self.flush(w, now);
        }
        for w in rtsp_players {
            if let Some(Some(Conn {
                state: State::Rtsp(r),
                ..
            })) = self.conns.get_mut(w)
            {
                if let RRole::Player(p) = &mut r.role {
                    p.eof_after_drain = true;
                }
            }
            self.flush(w, now);
        }
        self.gc_channel(key);
    }

    fn flush_dirty(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for &w in &dirty {
            if let Some(Some(Conn {
                state: State::Watcher(wt),
                ..
            })) = self.conns.get_mut(w)
            {
                wt.dirty = false;
            }
            if let Some(Some(Conn {
                state: State::Rtsp(r),
                ..
            })) = self.conns.get_mut(w)
            {
                if let RRole::Player(p) = &mut r.role {
                    p.dirty = false;
                }
            }
            self.flush(w, now);
        }
        let mut d = dirty;
        d.clear();
        if self.dirty.is_empty() {
            self.dirty = d;
        }
    }

    /// Writes what is pending on a connection; closes it when done and it should close.
    fn flush(&mut self, idx: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if c.rtmp.is_some() {
            self.flush_rtmp(idx, now);
            return;
        }
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV);
        loop {
            // An RTSP player's responses go between interleaved frames, never inside one.
            let at_boundary = match &c.state {
                State::Rtsp(r) => match &r.role {
                    RRole::Player(p) => p.queue.as_ref().is_none_or(|q| q.at_chunk_start()),
                    _ => true,
                },
                _ => true,
            };
            if c.out_pos < c.out.len() && at_boundary {
                match c.sock.write(&c.out[c.out_pos..]) {
                    Ok(n) => {
                        c.out_pos += n;
                        if c.out_pos == c.out.len() {
                            c.out = Vec::new();
                            c.out_pos = 0;
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let r = format!("write error: {e}");
                        self.close(idx, Some(&r));
                        return;
                    }
                }
            }
            match &mut c.state {
                State::Closing => {
                    let _ = c.sock.shutdown(Shutdown::Write);
                    self.close(idx, None);
                    return;
                }
                State::Watcher(w) => {
                    let Some(q) = w.queue.as_mut() else { return };
                    if q.is_empty() {
                        if let Some(n) = w.next.take() {
                            let old = std::mem::replace(q, n);
                            let st = old.stats();
                            w.prev.bytes_sent += st.bytes_sent;
                            w.prev.chunks_dropped += st.chunks_dropped;
                            w.prev.bytes_dropped += st.bytes_dropped;
                            w.prev.skips += st.skips;
                            continue;
                        }
                        if w.eof_after_drain {
                            let _ = c.sock.shutdown(Shutdown::Write);
                            self.close(idx, Some("end of broadcast: all sent"));
                        }
                        return;
                    }
                    iov.clear();
                    let r = {
                        let mut tmp: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV);
                        q.fill_iovecs(&mut tmp, MAX_IOV);
                        c.sock.write_vectored(&tmp)
                    };
                    match r {
                        Ok(0) => return,
                        Ok(n) => q.consume(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let r = format!("write error: {e}");
                            self.close(idx, Some(&r));
                            return;
                        }
                    }
                }
                State::Rtsp(r) => {
                    let out_pending = c.out_pos < c.out.len();
                    let RRole::Player(p) = &mut r.role else {
                        return;
                    };
                    let Some(q) = p.queue.as_mut() else { return };
                    if q.is_empty() {
                        if p.eof_after_drain {
                            // The RTCP BYE is out: ffmpeg and GStreamer end their reading on
                            // it and send TEARDOWN (GStreamer insists on an answer) or close;
                            // the connection stays for that, at most RTSP_LINGER.
                            r.role = RRole::Idle;
                            r.linger_until = Some(Instant::now() + RTSP_LINGER);
                            continue;
                        }
                        return;
                    }
                    if !p.udp_dest.is_empty() {
                        // UDP: one datagram per interleaved frame, from the RTP or RTCP socket.
                        let Some(u) = self.udp.as_mut() else { return };
                        let Some(f) = q.front() else { return };
                        let len = f.len();
                        if let Some((ch, data)) = unframe(f) {
                            let dest = p.udp_dest.get(usize::from(ch / 2)).copied().flatten();
                            if let Some((rtp_to, rtcp_to)) = dest {
                                let (sock, to) = if ch % 2 == 0 {
                                    (&u.rtp, rtp_to)
                                } else {
                                    (&u.rtcp, rtcp_to)
                                };
                                match sock.send_to(data, to) {
                                    Ok(_) => {}
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                        if !u.blocked.contains(&idx) {
                                            u.blocked.push(idx);
                                        }
                                        return;
                                    }
                                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                    // Lost like any datagram; the next ones may go.
                                    Err(e) => log::debug!("{}: RTSP UDP send to {to}: {e}", c.peer),
                                }
                            }
                        }
                        q.consume(len);
                        continue;
                    }
                    let r = if out_pending {
                        // Finish the frame in progress, then the response goes out.
                        c.sock.write(q.front().unwrap_or(&[]))
                    } else {
                        let mut tmp: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV);
                        q.fill_iovecs(&mut tmp, MAX_IOV);
                        c.sock.write_vectored(&tmp)
                    };
                    match r {
                        Ok(0) => return,
                        Ok(n) => q.consume(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let r = format!("write error: {e}");
                            self.close(idx, Some(&r));
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
        let mut expired: Vec<(usize, String, Option<Vec<u8>>)> = Vec::new();
        for (i, c) in self.conns.iter().enumerate() {
            let Some(c) = c else { continue };
            match &c.state {
                State::Handshake { deadline, .. } if now >= *deadline => expired.push((
                    i,
                    "fstream handshake not completed within 10 s".into(),
                    None,
                )),
                State::HttpHead { deadline, .. } if now >= *deadline => expired.push((
                    i,
                    "HTTP request head not received within 10 s".into(),
                    Some(http::error_response(408, "request head took too long")),
                )),
                State::Rtsp(r) if r.linger_until.is_some_and(|t| now >= t) => {
                    expired.push((i, "end of broadcast: all sent".into(), None))
                }
                State::Rtsp(r) if r.session.timed_out(now) => expired.push((
                    i,
                    "RTSP session timed out (no request or RTCP from the client)".into(),
                    None,
                )),
                State::Watcher(w) if w.wait_deadline.is_some_and(|d| now >= d) => {
                    let http = matches!(w.kind, WatchKind::Http(_)) && w.queue.is_none();
                    expired.push((
                        i,
                        format!(
                            "watcher of {}: channel not live within the wait timeout",
                            key_str(&w.key)
                        ),
                        http.then(|| http::error_response(404, "channel not live")),
                    ))
                }
                _ => {}
            }
        }
        for (i, why, r) in expired {
            self.refuse(i, &why, r);
        }
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

    /// A snapshot of the figures.
    pub fn stats(&self, now: Instant) -> HubStats {
        let mut channels: Vec<ChannelStats> = self
            .channels
            .iter()
            .map(|(k, ch)| {
                let mut ws = Vec::new();
                let mut lists: Vec<&Vec<usize>> = vec![&ch.watchers];
                for v in &ch.views {
                    lists.push(&v.watchers);
                }
                for l in lists {
                    for &w in l {
                        if let Some(Some(Conn {
                            state: State::Watcher(wt),
                            peer,
                            id,
                            since,
                            ..
                        })) = self.conns.get(w)
                        {
                            let mut s = WatcherStats {
                                id: *id,
                                peer: peer.to_string(),
                                kind: match wt.kind {
                                    WatchKind::Fstream => "fstream",
                                    WatchKind::Http(Ext::Flv) => "http-flv",
                                    WatchKind::Http(Ext::Ts) => "http-ts",
                                    WatchKind::Rtmp => "rtmp",
                                },
                                converted: wt.converted,
                                connected_secs: now.duration_since(*since).as_secs_f64(),
                                ..Default::default()
                            };
                            s.bytes_sent = wt.prev.bytes_sent;
                            s.chunks_dropped = wt.prev.chunks_dropped;
                            s.bytes_dropped = wt.prev.bytes_dropped;
                            s.skips = wt.prev.skips;
                            for q in [&wt.queue, &wt.next].into_iter().flatten() {
                                let st = q.stats();
                                s.bytes_sent += st.bytes_sent;
                                s.queue_bytes += q.bytes();
                                s.chunks_dropped += st.chunks_dropped;
                                s.bytes_dropped += st.bytes_dropped;
                                s.skips += st.skips;
                            }
                            ws.push(s);
                        }
                    }
                }
                for &w in ch.rtp.iter().flatten().flat_map(|r| r.watchers.iter()) {
                    if let Some(Some(Conn {
                        state: State::Rtsp(r),
                        peer,
                        id,
                        since,
                        ..
                    })) = self.conns.get(w)
                    {
                        if let RRole::Player(p) = &r.role {
                            let mut s = WatcherStats {
                                id: *id,
                                peer: peer.to_string(),
                                kind: if p.udp_dest.is_empty() {
                                    "rtsp"
                                } else {
                                    "rtsp/udp"
                                },
                                converted: true,
                                connected_secs: now.duration_since(*since).as_secs_f64(),
                                ..Default::default()
                            };
                            if let Some(q) = &p.queue {
                                let st = q.stats();
                                s.bytes_sent = st.bytes_sent;
                                s.queue_bytes = q.bytes();
                                s.chunks_dropped = st.chunks_dropped;
                                s.bytes_dropped = st.bytes_dropped;
                                s.skips = st.skips;
                            }
                            ws.push(s);
                        }
                    }
                }
                ChannelStats {
                    user: k.0.clone(),
                    channel: k.1.clone(),
                    live: ch.publisher.is_some(),
                    format: format_name(ch.format),
                    broadcaster: ch.publisher.and(ch.publisher_peer).map(|p| p.to_string()),
                    bytes_in: ch.bytes_in,
                    cache_bytes: ch.cache.bytes(),
                    broadcasts: ch.broadcasts,
                    waiting: ch.pending.len(),
                    watchers: ws,
                }
            })
            .collect();
        channels.sort_by(|a, b| (&a.user, &a.channel).cmp(&(&b.user, &b.channel)));
        HubStats {
            uptime_secs: now.duration_since(self.start).as_secs_f64(),
            connections: self.nconns,
            accepted: self.accepted,
            refused: self.refused,
            channels,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Listener {
    Fstream,
    Http,
    Rtmp,
    Rtsp,
}

/// What an RTSP request decided that needs the whole hub (done after the session returns).
enum RAction {
    Publish { key: ChanKey, ingest: Ingest },
    Play { key: ChanKey, udp: bool },
}

/// The channel's RTP view for TCP or UDP players, made on first use and primed with the
/// broadcast's headers and cached GOP.
fn rtp_view(
    ch: &mut Channel,
    udp: bool,
    limits: CacheLimits,
    now: Instant,
) -> Result<&mut RtpChannel, u16> {
    let format = ch.format.ok_or(503u16)?;
    let slot = &mut ch.rtp[usize::from(udp)];
    if slot.is_none() {
        let mut rv = RtpChannel::new(format, limits, udp).ok_or(415u16)?;
        for c in ch.cache.join().chunks {
            rv.feed(&c.data, false, now);
        }
        rv.view.reanchor(std::time::SystemTime::now());
        *slot = Some(rv);
    }
    slot.as_mut().ok_or(500u16)
}

/// Whether a session's streams go over UDP.
fn over_udp(streams: &[StreamSetup]) -> bool {
    streams
        .iter()
        .any(|s| matches!(s.transport.lower, Lower::Udp { .. }))
}

/// The hub as an RTSP session sees it while it handles a request.
struct HubHost<'a> {
    users: &'a Users,
    channels: &'a mut HashMap<ChanKey, Channel>,
    cfg: &'a Config,
    actions: &'a mut Vec<RAction>,
    origin: String,
    udp_ports: Option<(u16, u16)>,
    now: Instant,
}

impl Host for HubHost<'_> {
    fn authorize(&mut self, access: Access, path: &str, creds: &Credentials) -> AuthVerdict {
        let Some(key) = rfront::parse_key(path) else {
            return AuthVerdict::NotFound;
        };
        match access {
            Access::Publish => match self.users.password(&key.0) {
                Ok(Some(pw)) if creds.user() == Some(key.0.as_str()) && creds.check(&pw) => {
                    AuthVerdict::Allow
                }
                Ok(_) => AuthVerdict::Deny,
                Err(e) => {
                    log::error!("users: {e}");
                    AuthVerdict::Forbidden
                }
            },
            Access::Play => match self.channels.get(&key) {
                Some(ch) if ch.publisher.is_some() => match &ch.password {
                    None => AuthVerdict::Allow,
                    Some(pw) if creds.check(pw) => AuthVerdict::Allow,
                    Some(_) => AuthVerdict::Deny,
                },
                _ => AuthVerdict::NotFound,
            },
        }
    }

    fn describe(&mut self, path: &str) -> Result<String, u16> {
        let key = rfront::parse_key(path).ok_or(404u16)?;
        let ch = self
            .channels
            .get_mut(&key)
            .filter(|c| c.publisher.is_some())
            .ok_or(404u16)?;
        let rv = rtp_view(ch, false, self.cfg.cache, self.now)?;
        if let Some(why) = &rv.view.failed {
            log::warn!(
                "channel {}: cannot serve it over RTSP: {why}",
                key_str(&key)
            );
            return Err(415);
        }
        // Not ready: no keyframe cached yet (--no-gop-cache); the client may retry.
        rv.view.sdp(&self.origin, &key_str(&key)).ok_or(503u16)
    }

    fn record(&mut self, path: &str, sdp: &Sdp, streams: &[StreamSetup]) -> Result<(), u16> {
        let key = rfront::parse_key(path).ok_or(404u16)?;
        let ingest = Ingest::new(sdp, streams).map_err(|e| {
            log::warn!("RTSP publish to {}: {e}", key_str(&key));
            415u16
        })?;
        self.actions.push(RAction::Publish { key, ingest });
        Ok(())
    }

    fn play(
        &mut self,
        path: &str,
        _sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<Vec<RtpInfo>, u16> {
        let key = rfront::parse_key(path).ok_or(404u16)?;
        let udp = over_udp(streams);
        let ch = self
            .channels
            .get_mut(&key)
            .filter(|c| c.publisher.is_some())
            .ok_or(404u16)?;
        let rv = rtp_view(ch, udp, self.cfg.cache, self.now)?;
        let join = rv.cache.join();
        let info = rv.view.rtp_info(join.chunks.iter().map(|c| &c.data[..]));
        self.actions.push(RAction::Play { key, udp });
        Ok(streams
            .iter()
            .map(|s| {
                // rtptime: the RTP time of npt=0, the cached GOP's start, on every track
                // (RFC 2326 §12.33), so players put the first packet they get at 0.
                let (seq, rtptime) = info.get(s.index).copied().unwrap_or_default();
                RtpInfo { seq, rtptime }
            })
            .collect())
    }

    fn udp_ports(&self) -> Option<(u16, u16)> {
        self.udp_ports
    }
}

impl Hub {
    fn on_rtsp_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let peer = c.peer;
        let State::Rtsp(mut r) = std::mem::replace(&mut c.state, State::Closing) else {
            return;
        };
        let (mut out, mut events, mut actions) = (Vec::new(), Vec::new(), Vec::new());
        {
            let mut host = HubHost {
                users: &self.users,
                channels: &mut self.channels,
                cfg: &self.cfg,
                actions: &mut actions,
                origin: self
                    .rtsp_addr
                    .map(|a| a.ip().to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                udp_ports: self.udp.as_ref().map(|u| u.ports),
                now,
            };
            r.session.push(data, now, &mut host, &mut out, &mut events);
        }
        for a in actions {
            match a {
                RAction::Publish { key, ingest } => {
                    self.udp_route(idx, peer, r.session.streams());
                    let password = rfront::query_password(r.session.uri());
                    // Sets the connection's state to Publisher; the RTSP state is put back below.
                    self.start_broadcast(idx, key.clone(), password, Body::Raw, false, now);
                    r.role = RRole::Publisher(Box::new(RtspPublisher {
                        key,
                        ingest: FlvIngest::new(ingest),
                    }));
                }
                RAction::Play { key, udp } => {
                    let Some(rv) = self
                        .channels
                        .get_mut(&key)
                        .and_then(|c| c.rtp[usize::from(udp)].as_mut())
                    else {
                        continue;
                    };
                    let join = rv.cache.join();
                    // Sender reports first, for the packets it starts with (see
                    // `join_sender_reports`), so the player syncs audio and video from the start.
                    let srs = rv.view.join_sender_reports(
                        join.chunks.iter().map(|c| &c.data[..]),
                        std::time::SystemTime::now(),
                    );
                    let q = WatcherQueue::new(self.cfg.queue, StreamFormat::Flv, join, now);
                    rv.watchers.push(idx);
                    let mut udp_dest = Vec::new();
                    for s in r.session.streams() {
                        if let Lower::Udp { client_port, .. } = s.transport.lower {
                            if udp_dest.len() <= s.index {
                                udp_dest.resize(s.index + 1, None);
                            }
                            udp_dest[s.index] = Some((
                                SocketAddr::new(peer.ip(), client_port.0),
                                SocketAddr::new(peer.ip(), client_port.1),
                            ));
                        }
                    }
                    if udp_dest.is_empty() {
                        for sr in srs {
                            out.extend_from_slice(&sr);
                        }
                    } else if let Some(u) = &self.udp {
                        for sr in srs {
                            if let Some((ch, data)) = unframe(&sr) {
                                if let Some(Some((_, to))) = udp_dest.get(usize::from(ch / 2)) {
                                    let _ = u.rtcp.send_to(data, *to);
                                }
                            }
                        }
                    }
                    log::info!(
                        "{peer}: playing {} over RTSP/{}",
                        key_str(&key),
                        if udp { "UDP" } else { "TCP" }
                    );
                    self.udp_route(idx, peer, r.session.streams());
                    r.role = RRole::Player(Box::new(Player {
                        key,
                        udp_dest,
                        queue: Some(q),
                        eof_after_drain: false,
                        dirty: true,
                    }));
                    self.dirty.push(idx);
                }
            }
        }
        let mut flv = Vec::new();
        let mut diags = Vec::new();
        let mut detach = Vec::new();
        let mut close_reason = None;
        let mut close_after = false;
        for e in events {
            match e {
                REvent::Data { stream, rtcp, data } => {
                    if let RRole::Publisher(p) = &mut r.role {
                        let at = r.session.position();
                        if let Err(e) = p.ingest.push(stream, rtcp, &data, at, &mut flv, &mut diags)
                        {
                            log::warn!("{peer}: RTSP publish: {e}");
                        }
                    }
                }
                REvent::Teardown if r.linger_until.is_some() => {
                    close_after = true;
                }
                REvent::Pause | REvent::Teardown => {
                    detach.push(std::mem::replace(&mut r.role, RRole::Idle));
                }
                REvent::Close { reason } => close_reason = Some(reason),
            }
        }
        for d in diags {
            log::warn!("{peer}: RTSP publish: {d}");
        }
        let key = match &r.role {
            RRole::Publisher(p) => Some(p.key.clone()),
            _ => None,
        };
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Rtsp(r);
            c.out.extend_from_slice(&out);
        }
        if let (Some(k), false) = (key, flv.is_empty()) {
            self.broadcast_data(&k, &flv, now);
        }
        for role in detach {
            self.rtsp_detach(idx, role, "RTSP TEARDOWN");
        }
        if close_reason.is_none() && close_after {
            close_reason = Some(String::new());
        }
        if let Some(reason) = close_reason {
            if !reason.is_empty() {
                log::warn!("{peer}: RTSP: {reason}");
            }
            let rest = match self.conns[idx].as_mut() {
                Some(c) => {
                    let pos = c.out_pos;
                    c.out_pos = 0;
                    std::mem::take(&mut c.out).split_off(pos)
                }
                None => return,
            };
            self.respond_and_close(idx, rest);
        } else {
            self.flush(idx, now);
        }
    }

    /// Routes datagrams from the client's UDP ports of `streams` to connection `idx`.
    fn udp_route(&mut self, idx: usize, peer: SocketAddr, streams: &[StreamSetup]) {
        let Some(u) = self.udp.as_mut() else { return };
        let Some(id) = self.conns.get(idx).and_then(|c| c.as_ref()).map(|c| c.id) else {
            return;
        };
        for (stream, s) in streams.iter().enumerate() {
            if let Lower::Udp { client_port, .. } = s.transport.lower {
                for port in [client_port.0, client_port.1] {
                    let route = UdpRoute {
                        conn: idx,
                        id,
                        stream,
                    };
                    u.routes.insert(SocketAddr::new(peer.ip(), port), route);
                }
            }
        }
    }

    /// Reads datagrams from the RTP or RTCP socket: a UDP publisher's media goes into its
    /// broadcast; anything from a known client keeps its session alive.
    fn on_udp(&mut self, rtcp: bool, now: Instant) {
        let mut buf = std::mem::take(&mut self.buf);
        for n in 0..UDP_BUDGET {
            let Some(u) = self.udp.as_mut() else { break };
            u.again[usize::from(rtcp)] = n + 1 == UDP_BUDGET;
            let sock = if rtcp { &u.rtcp } else { &u.rtp };
            let (len, from) = match sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("RTSP UDP receive: {e}");
                    continue;
                }
            };
            let Some(route) = u.routes.get(&from).copied() else {
                u.unknown += 1;
                if u.unknown.is_power_of_two() {
                    log::debug!(
                        "{from}: {} datagrams from addresses no RTSP session set up",
                        u.unknown
                    );
                }
                continue;
            };
            self.on_udp_datagram(route, rtcp, &buf[..len], now);
        }
        self.buf = buf;
    }

    fn on_udp_datagram(&mut self, route: UdpRoute, rtcp: bool, data: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(route.conn).and_then(|c| c.as_mut()) else {
            return;
        };
        let peer = c.peer;
        if c.id != route.id {
            return;
        }
        let State::Rtsp(r) = &mut c.state else {
            return;
        };
        r.session.touch(now);
        let RRole::Publisher(p) = &mut r.role else {
            // A player's receiver reports (or NAT punch packets): only signs of life.
            return;
        };
        let (mut flv, mut diags) = (Vec::new(), Vec::new());
        let at = r.session.position();
        if let Err(e) =
            p.ingest
                .push_datagram(route.stream, rtcp, data, at, now, &mut flv, &mut diags)
        {
            log::warn!("{peer}: RTSP publish over UDP: {e}");
        }
        for d in diags {
            log::warn!("{peer}: RTSP publish over UDP: {d}");
        }
        if !flv.is_empty() {
            let key = p.key.clone();
            self.broadcast_data(&key, &flv, now);
        }
    }

    /// The UDP sockets take data again: resume the players that had to wait.
    fn flush_udp_blocked(&mut self, now: Instant) {
        let blocked = match self.udp.as_mut() {
            Some(u) => std::mem::take(&mut u.blocked),
            None => return,
        };
        for idx in blocked {
            self.flush(idx, now);
        }
    }

    /// An RTSP connection stops publishing or playing.
    fn rtsp_detach(&mut self, idx: usize, role: RRole, why: &str) {
        if let Some(u) = self.udp.as_mut() {
            u.routes.retain(|_, r| r.conn != idx);
            u.blocked.retain(|&b| b != idx);
        }
        match role {
            RRole::Publisher(mut p) => {
                if self
                    .channels
                    .get(&p.key)
                    .is_some_and(|ch| ch.publisher == Some(idx))
                {
                    // UDP: what waited in the reorder buffers is the end of the broadcast.
                    let (mut flv, mut diags) = (Vec::new(), Vec::new());
                    if let Err(e) = p.ingest.flush_datagrams(&mut flv, &mut diags) {
                        log::warn!("RTSP publish to {}: {e}", key_str(&p.key));
                    }
                    if !flv.is_empty() {
                        self.broadcast_data(&p.key, &flv, Instant::now());
                    }
                    log::info!("broadcast of {} ended ({why})", key_str(&p.key));
                    self.end_broadcast(&p.key, Instant::now(), why);
                }
            }
            RRole::Player(p) => {
                if let Some(ch) = self.channels.get_mut(&p.key) {
                    for rv in ch.rtp.iter_mut().flatten() {
                        rv.watchers.retain(|&x| x != idx);
                    }
                }
                self.gc_channel(&p.key);
            }
            RRole::Idle => {}
        }
    }
}

fn c_peer(c: &Option<Conn>) -> String {
    c.as_ref().map(|c| c.peer.to_string()).unwrap_or_default()
}

/// Is this FLV audio/video body a sequence header (AVC/AAC, or an Enhanced-RTMP SequenceStart)?
fn is_seq_header(kind: TagKind, body: &[u8]) -> bool {
    match kind {
        TagKind::Video => match body.first() {
            Some(b) if b & 0x80 != 0 => b & 0x0f == 0,
            Some(b) => b & 0x0f == 7 && body.get(1) == Some(&0),
            None => false,
        },
        TagKind::Audio => body.first().is_some_and(|b| b >> 4 == 10) && body.get(1) == Some(&0),
        _ => false,
    }
}

/// The RTMP front: sessions driven on the hub's loop.
impl Hub {
    fn on_rtmp_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if matches!(c.state, State::Closing) {
            return;
        }
        let Some(r) = c.rtmp.as_mut() else { return };
        if let Err(e) = r.session.push(data, now) {
            let why = format!("RTMP: {e}");
            self.close(idx, Some(&why));
            return;
        }
        self.rtmp_events(idx, now);
        self.flush(idx, now);
    }

    fn rtmp_events(&mut self, idx: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                return;
            };
            let peer = c.peer;
            let Some(r) = c.rtmp.as_mut() else { return };
            let Some(ev) = r.session.poll_event() else {
                return;
            };
            match ev {
                ServerEvent::Connect { app, tc_url, .. } => {
                    let (a, q) = app.split_once('?').unwrap_or((app.as_str(), ""));
                    r.app = a.trim_matches('/').to_string();
                    r.connect_query = if q.is_empty() {
                        tc_url
                            .as_deref()
                            .and_then(|t| t.split_once('?'))
                            .map(|(_, q)| q.to_string())
                            .unwrap_or_default()
                    } else {
                        q.to_string()
                    };
                    if let Err(e) = r.session.accept_connect() {
                        self.close(idx, Some(&format!("RTMP: {e}")));
                        return;
                    }
                }
                ServerEvent::Publish {
                    stream_id,
                    stream_key,
                    query,
                    ..
                } => {
                    let key = (r.app.clone(), stream_key);
                    let busy = !matches!(c.state, State::RtmpIdle);
                    let pw = query_param(&query, "user-password")
                        .or_else(|| query_param(&r.connect_query, "user-password"))
                        .unwrap_or_default();
                    let cpw = query_param(&query, "password")
                        .or_else(|| query_param(&r.connect_query, "password"));
                    let res = if busy {
                        Err("one publish or play per connection".to_string())
                    } else if key.0.is_empty() || key.1.is_empty() {
                        Err("publish to rtmp://HOST/<user>/<channel>".to_string())
                    } else {
                        self.check_user(&key.0, &pw)
                    };
                    let Some(c) = self.conns[idx].as_mut() else {
                        return;
                    };
                    let r = c.rtmp.as_mut().unwrap();
                    if let Err(why) = res {
                        self.refused += 1;
                        log::warn!(
                            "{peer}: refused: RTMP broadcaster for {}: {why}",
                            key_str(&key)
                        );
                        let _ = r.session.reject_publish(
                            stream_id,
                            "NetStream.Publish.BadName",
                            &format!("river-relay: {why}"),
                        );
                        r.close_after = true;
                        c.state = State::Closing;
                        continue;
                    }
                    r.stream_id = Some(stream_id);
                    if let Err(e) = r.session.accept_publish(stream_id) {
                        self.close(idx, Some(&format!("RTMP: {e}")));
                        return;
                    }
                    self.start_broadcast(idx, key, cpw, Body::Raw, false, now);
                }
                ServerEvent::Metadata { body, .. } => {
                    let State::Publisher(p) = &c.state else {
                        continue;
                    };
                    let key = p.key.clone();
                    r.splice.metadata(&body);
                    let b = r.splice.take();
                    self.broadcast_data(&key, &b, now);
                }
                ServerEvent::Media {
                    kind,
                    timestamp,
                    body,
                    ..
                } => {
                    let State::Publisher(p) = &c.state else {
                        continue;
                    };
                    let key = p.key.clone();
                    if let Some(note) = r.splice.media(kind, timestamp, &body) {
                        log::info!("{peer}: {}: {note}", key_str(&key));
                    }
                    let b = r.splice.take();
                    if !b.is_empty() {
                        self.broadcast_data(&key, &b, now);
                    }
                }
                ServerEvent::Unpublish { .. } => {
                    if let State::Publisher(p) = &c.state {
                        let key = p.key.clone();
                        r.close_after = true;
                        log::info!("{peer}: RTMP publish of {} ended", key_str(&key));
                        self.end_broadcast(&key, now, "end of broadcast");
                    }
                }
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    query,
                    ..
                } => {
                    let key = (r.app.clone(), stream_name);
                    let cpw = query_param(&query, "password")
                        .or_else(|| query_param(&r.connect_query, "password"));
                    r.stream_id = Some(stream_id);
                    r.play_pending = true;
                    if !matches!(c.state, State::RtmpIdle) {
                        self.refuse(idx, "one publish or play per connection", None);
                        return;
                    }
                    self.start_watcher(idx, key, cpw, WatchKind::Rtmp, now);
                    let Some(c) = self.conns[idx].as_mut() else {
                        return;
                    };
                    if !matches!(c.state, State::Watcher(_)) {
                        continue;
                    }
                    let r = c.rtmp.as_mut().unwrap();
                    r.play_pending = false;
                    if let Err(e) = r.session.accept_play(stream_id) {
                        self.close(idx, Some(&format!("RTMP: {e}")));
                        return;
                    }
                }
                ServerEvent::PlayStop { .. } => {
                    r.close_after = true;
                }
                ServerEvent::Closed => return,
            }
        }
    }

    /// Refuses an RTMP client: a pending play gets `NetStream.Play.StreamNotFound` with `why`;
    /// the connection closes once that is written.
    fn rtmp_refuse(&mut self, idx: usize, why: &str) {
        let old = {
            let Some(c) = self.conns[idx].as_mut() else {
                return;
            };
            if let Some(r) = c.rtmp.as_mut() {
                if r.play_pending {
                    r.play_pending = false;
                    if let Some(sid) = r.stream_id {
                        let _ = r.session.reject_play(sid, &format!("river-relay: {why}"));
                    }
                }
                r.close_after = true;
            }
            std::mem::replace(&mut c.state, State::Closing)
        };
        if let State::Watcher(w) = old {
            if let Some(ch) = self.channels.get_mut(&w.key) {
                ch.watchers.retain(|&x| x != idx);
                ch.pending.retain(|&x| x != idx);
                for v in &mut ch.views {
                    v.watchers.retain(|&x| x != idx);
                }
            }
            self.gc_channel(&w.key);
        }
        self.flush(idx, Instant::now());
    }

    /// Writes the session's output; for players, feeds it FLV tags from the watcher queue while
    /// its output is small (so the queue's slow-watcher policy applies).
    fn flush_rtmp(&mut self, idx: usize, _now: Instant) {
        loop {
            let Some(Conn {
                sock, state, rtmp, ..
            }) = self.conns.get_mut(idx).and_then(|c| c.as_mut())
            else {
                return;
            };
            let Some(r) = rtmp.as_mut() else { return };
            let pend = r.session.pending_output();
            if !pend.is_empty() {
                match sock.write(pend) {
                    Ok(0) => return,
                    Ok(n) => {
                        r.session.consume_output(n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let why = format!("write error: {e}");
                        self.close(idx, Some(&why));
                        return;
                    }
                }
            }
            if r.close_after || matches!(state, State::Closing) {
                let _ = sock.shutdown(Shutdown::Write);
                self.close(idx, None);
                return;
            }
            let State::Watcher(w) = state else { return };
            let Some(sid) = r.stream_id else { return };
            if r.play_pending {
                return;
            }
            let Some(q) = w.queue.as_mut() else { return };
            if q.is_empty() {
                if let Some(n) = w.next.take() {
                    let old = std::mem::replace(q, n);
                    let st = old.stats();
                    w.prev.bytes_sent += st.bytes_sent;
                    w.prev.chunks_dropped += st.chunks_dropped;
                    w.prev.bytes_dropped += st.bytes_dropped;
                    w.prev.skips += st.skips;
                    r.base = None;
                    continue;
                }
                if w.eof_after_drain {
                    let _ = r.session.end_play(sid);
                    r.close_after = true;
                    continue;
                }
                return;
            }
            let mut moved = 0;
            while moved < RTMP_LOW_WATER {
                let Some(f) = q.front() else { break };
                let n = f.len();
                r.reader.push(f, &mut r.tags);
                q.consume(n);
                moved += n;
            }
            let mut tags = std::mem::take(&mut r.tags);
            for ev in tags.drain(..) {
                let FlvEvent::Tag(t) = ev else { continue };
                let media = match t.kind {
                    TagKind::Audio => Some(MediaKind::Audio),
                    TagKind::Video => Some(MediaKind::Video),
                    _ => None,
                };
                if media.is_some() && r.base.is_none() && !is_seq_header(t.kind, &t.body) {
                    r.base = Some(t.timestamp);
                }
                let ts = r.base.map_or(0, |b| t.timestamp.saturating_sub(b));
                let res = match (t.kind, media) {
                    (TagKind::Script, _) => r.session.send_metadata(sid, ts, &t.body),
                    (_, Some(k)) => r.session.send_media(sid, k, ts, &t.body),
                    _ => Ok(()),
                };
                if let Err(e) = res {
                    log::debug!("RTMP send: {e}");
                }
            }
            r.tags = tags;
        }
    }

    /// Session deadlines (handshake) and player pings.
    fn rtmp_timers(&mut self, now: Instant) {
        let mut fail = Vec::new();
        let mut flush = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            let Some(r) = c.rtmp.as_mut() else { continue };
            if r.session.poll_deadline().is_some_and(|d| now >= d) {
                if let Err(e) = r.session.handle_timeout(now) {
                    fail.push((i, format!("RTMP: {e}")));
                    continue;
                }
            }
            if matches!(c.state, State::Watcher(_)) && now.duration_since(r.last_ping) >= RTMP_PING
            {
                r.last_ping = now;
                r.session
                    .send_ping(now.duration_since(self.start).as_millis() as u32);
                flush.push(i);
            }
        }
        for (i, why) in fail {
            self.refused += 1;
            self.close(i, Some(&why));
        }
        for i in flush {
            self.flush(i, now);
        }
    }
}
