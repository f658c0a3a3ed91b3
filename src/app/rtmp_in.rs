//! river-rtmp-in: one thread runs a reactor ([`crate::net`]) with the listener and every
//! connection. Each connection drives a [`ServerSession`]; the RTMP policy shared with the relay
//! hub ([`crate::proto::rtmp::policy`]) names and decides its connect and publish. A publish goes
//! to stdout (one at a time; [`FlvSplice`] makes one FLV of them with --persist) or to an --exec
//! child of its own ([`exec`]).
//!
//! Nothing blocks the reactor: stdout is written by a thread of its own ([`stdout`]), a child's
//! stdin is a non-blocking pipe on the reactor. A slow reader slows its publisher down as the
//! blocking writes did before: while more than [`HIGH_WATER`] bytes of a publish wait to be
//! written, its connection is not read (TCP pushes back on the encoder), and it is read again
//! once they drain. Deadlines (handshake, idle, writes) are timers on the reactor.

mod exec;
mod metrics;
mod stdout;

use std::collections::HashSet;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::stats::Stats;
use crate::cli::RtmpIn;
use crate::net::conn::Received;
use crate::net::listener::PAUSE;
use crate::net::{Accept, Conn, Listener, Reactor, Timers};
use crate::proto::names::{check_name, BadName, NameError};
use crate::proto::rtmp::policy::{Access, Connect, PublishState, Refusal, Stream};
use crate::proto::rtmp::{FlvSplice, ServerConfig, ServerEvent, ServerSession};
use crate::stdio::{require_binary_stdout, stop_signal, UsageError};
use exec::ExecChild;
use metrics::Counts;
use stdout::StdoutPipe;

const LISTENER: Token = Token(1);
/// Connection slot `s` is token `FIRST + 2s`, child slot `k` token `FIRST + 2k + 1` (timers use
/// the same numbers as keys).
const FIRST: usize = 2;
/// Bytes read from one connection per turn before the others get theirs.
const READ_CAP: usize = 256 * 1024;
/// A publisher is not read while this much of its FLV waits for stdout or its --exec child.
const HIGH_WATER: usize = 256 * 1024;
/// The answers queued for one client (acknowledgements, statuses): past this it is closed.
const OUT_LIMIT: usize = 1 << 20;
/// Answers that make no write progress for this long close the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the reactor sleeps with nothing due (a signal also ends the wait).
const TICK: Duration = Duration::from_millis(250);

/// A key as it may appear in logs: never in full.
pub(crate) fn mask(key: &str) -> String {
    let n = key.chars().count();
    if n <= 4 {
        format!("****({n} chars)")
    } else {
        let head: String = key.chars().take(2).flat_map(char::escape_debug).collect();
        format!("{head}…({n} chars)")
    }
}

enum Tok {
    Waker,
    Listener,
    Conn(usize),
    Child(usize),
}

fn tok(t: usize) -> Tok {
    match t {
        0 => Tok::Waker,
        1 => Tok::Listener,
        n if (n - FIRST) % 2 == 0 => Tok::Conn((n - FIRST) / 2),
        n => Tok::Child((n - FIRST) / 2),
    }
}

fn conn_token(slot: usize) -> Token {
    Token(FIRST + 2 * slot)
}

fn child_token(slot: usize) -> Token {
    Token(FIRST + 2 * slot + 1)
}

/// Where a publish goes.
enum Sink {
    /// The shared stdout stream.
    Stdout,
    /// The --exec child in this slot.
    Exec(usize),
}

/// The publish a connection holds.
struct Active {
    stream_id: u32,
    key: String,
    sink: Sink,
}

struct RConn {
    net: Conn,
    peer: SocketAddr,
    session: ServerSession,
    connect: Connect,
    active: Option<Active>,
    /// Not read because its publish's output is over [`HIGH_WATER`]; read again when it drains.
    stalled: bool,
    /// The last write progress (or when answers were queued on an empty outbox).
    last_write: Instant,
    /// The earliest timer queued for this slot.
    armed: Option<Instant>,
}

struct ChildSlot {
    child: ExecChild,
    /// The connection whose publish it gets (`None` once the publish ended).
    owner: Option<usize>,
    armed: Option<Instant>,
}

struct Ingest {
    access: Access,
    exec: Option<String>,
    persist: bool,
    cfg: ServerConfig,
    max_conns: usize,
    listener: Option<Listener>,
    /// Accepting is paused until then (after an accept error).
    accept_resume: Option<Instant>,
    /// Connections closed for want of descriptors since the last one accepted.
    shed: u64,
    conns: Vec<Option<RConn>>,
    free: Vec<usize>,
    open: usize,
    children: Vec<Option<ChildSlot>>,
    free_children: Vec<usize>,
    timers: Timers,
    due: Vec<usize>,
    /// Connections whose last read stopped at [`READ_CAP`].
    again: Vec<usize>,
    buf: Vec<u8>,
    live_keys: HashSet<String>,
    /// Without --exec: the writer, the one FLV stream and the connection publishing into it.
    stdout: Option<StdoutPipe>,
    flv: FlvSplice,
    stdout_owner: Option<usize>,
    /// Without --persist: the one publish has ended.
    done: bool,
    stats: Stats,
    counts: Counts,
}

fn load_keys(args: &RtmpIn) -> anyhow::Result<Option<HashSet<String>>> {
    let mut keys = HashSet::new();
    let mut any = false;
    // Keys follow the one name rule (they become RIVER_KEY, and often file names); an error
    // never shows the key.
    let bad = |what: String, e: NameError| UsageError(BadName::new(b"", e).message_hidden(&what));
    if let Some(k) = &args.key {
        check_name(k).map_err(|e| bad("--key (or RIVER_RTMP_KEY)".into(), e))?;
        keys.insert(k.clone());
        any = true;
    }
    if let Some(p) = &args.keys {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading the keys file {}", p.display()))?;
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if !l.is_empty() && !l.starts_with('#') {
                let what = format!("the key on line {} of {}", n + 1, p.display());
                check_name(l).map_err(|e| bad(what, e))?;
                keys.insert(l.to_string());
            }
        }
        if keys.is_empty() {
            return Err(UsageError(format!("the keys file {} lists no key", p.display())).into());
        }
        any = true;
    }
    Ok(any.then_some(keys))
}

/// Runs river-rtmp-in.
pub fn rtmp_in(args: RtmpIn) -> anyhow::Result<()> {
    if args.exec.is_none() {
        require_binary_stdout("FLV")?;
    }
    let keys = load_keys(&args)?;
    if let Some(a) = &args.app {
        let a = a.trim_matches('/');
        if a.is_empty() {
            return Err(UsageError("--app is empty".into()).into());
        }
        if let Err(e) = check_name(a) {
            return Err(UsageError(format!(
                "--app: {}",
                BadName::new(a.as_bytes(), e).message("app")
            ))
            .into());
        }
    }
    let access = Access::ingest(args.app.as_deref(), keys);
    let mut reactor = Reactor::new().context("creating the reactor")?;
    let listener = Listener::bind(args.listen, reactor.registry(), LISTENER)
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "river-rtmp-in: listening on rtmp://{}/{}",
        listener.local_addr(),
        access.app().unwrap_or("<app>")
    );
    match access.key_count() {
        None => log::warn!("no --key/--keys: any stream key is accepted"),
        Some(n) => log::info!("{n} stream key(s) accepted"),
    }
    let stdout = match args.exec {
        None => Some(StdoutPipe::start(reactor.waker(), HIGH_WATER)?),
        Some(_) => None,
    };
    let mut ing = Ingest {
        access,
        exec: args.exec.clone(),
        persist: args.persist,
        cfg: ServerConfig::default(),
        max_conns: args.max_connections,
        listener: Some(listener),
        accept_resume: None,
        shed: 0,
        conns: Vec::new(),
        free: Vec::new(),
        open: 0,
        children: Vec::new(),
        free_children: Vec::new(),
        timers: Timers::new(),
        due: Vec::new(),
        again: Vec::new(),
        buf: Vec::with_capacity(READ_CAP),
        live_keys: HashSet::new(),
        stdout,
        flv: FlvSplice::new(),
        stdout_owner: None,
        done: false,
        stats: Stats::start(&args.stats, "rtmp_in", "river-rtmp-in")?,
        counts: Counts::default(),
    };
    let r = ing.run(&mut reactor);
    ing.tick_stats(Instant::now());
    ing.stats.finish();
    // Everything handed to the writer is written before the exit (or the error is known).
    let failed = ing.stdout.take().and_then(StdoutPipe::finish);
    r.context("reactor")?;
    if let Some(e) = failed {
        return Err(anyhow::Error::new(e).context("writing FLV to stdout"));
    }
    Ok(())
}

impl Ingest {
    fn run(&mut self, r: &mut Reactor) -> io::Result<()> {
        let mut stopping = false;
        loop {
            let cap = if self.again.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            let now = r.poll(self.timers.next(), cap)?;
            let reg = r.registry();
            for ev in r.events.iter() {
                match tok(ev.token().0) {
                    Tok::Waker => self.on_wake(reg, now),
                    Tok::Listener => self.accept(reg, now),
                    Tok::Conn(s) => {
                        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                            self.on_writable(reg, s, now);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            let closed = ev.is_read_closed() || ev.is_error();
                            self.read(reg, s, !closed, now);
                        }
                    }
                    Tok::Child(k) => self.on_child(reg, k, now),
                }
            }
            for s in std::mem::take(&mut self.again) {
                self.read(reg, s, false, now);
            }
            self.timers_due(reg, now);
            self.tick_stats(now);
            let failed = self.stdout.as_ref().is_some_and(StdoutPipe::failed);
            if !stopping && (stop_signal().is_some() || self.done || failed) {
                stopping = true;
                self.begin_stop(reg, now);
            }
            if stopping && self.open == 0 && self.children.iter().all(Option::is_none) {
                return Ok(());
            }
        }
    }

    /// Copies the figures into the meter and prints the `--stats` line when one is due.
    fn tick_stats(&mut self, now: Instant) {
        let stdout = self.exec.is_none().then_some(&self.flv);
        let children = self.children.iter().flatten().map(|c| &c.child.flv);
        let (open, publishing) = (self.open, self.live_keys.len());
        let counts = &self.counts;
        self.stats
            .with(|m| counts.publish(m, open, publishing, stdout, children));
        self.stats.tick(now);
    }

    /// Closes the listener and every connection (their publishes end and are written); the
    /// loop then runs until every --exec child is reaped.
    fn begin_stop(&mut self, reg: &Registry, now: Instant) {
        if let Some(mut l) = self.listener.take() {
            l.deregister(reg);
        }
        for slot in 0..self.conns.len() {
            if let Some(c) = self.conns[slot].take() {
                self.close(reg, slot, c, "shutting down", now);
            }
        }
    }

    fn accept(&mut self, reg: &Registry, now: Instant) {
        loop {
            let Some(l) = self.listener.as_mut() else {
                return;
            };
            match l.accept(now) {
                Accept::Conn(sock, peer) => {
                    self.accept_resume = None;
                    if self.shed > 0 {
                        log::warn!(
                            "descriptors free again; {} waiting connection(s) were closed for want of them",
                            self.shed
                        );
                        self.shed = 0;
                    }
                    self.adopt(reg, sock, peer, now);
                }
                Accept::Drained => {
                    self.accept_resume = None;
                    return;
                }
                Accept::Shed(e) => {
                    self.shed += 1;
                    if self.shed == 1 {
                        log::warn!("accept: {e}: waiting connections are closed until descriptors are free");
                    }
                }
                Accept::PausedUntil(t, e) => {
                    if self.accept_resume != Some(t) {
                        if self.accept_resume.is_none() {
                            log::warn!("accept: {e}; accepting again in {PAUSE:?}");
                        }
                        self.accept_resume = Some(t);
                        self.timers.at(t, LISTENER.0);
                    }
                    return;
                }
            }
        }
    }

    fn adopt(&mut self, reg: &Registry, mut sock: TcpStream, peer: SocketAddr, now: Instant) {
        if self.open >= self.max_conns {
            self.counts.refused += 1;
            log::warn!(
                "{peer}: refused: {} connections open (--max-connections)",
                self.open
            );
            crate::net::refuse(sock, &[]);
            return;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = reg.register(&mut sock, conn_token(slot), interest) {
            log::warn!("{peer}: cannot watch the connection: {e}");
            self.free.push(slot);
            return;
        }
        self.open += 1;
        self.counts.accepted += 1;
        log::debug!("{peer}: connected");
        self.conns[slot] = Some(RConn {
            net: Conn::new(sock, OUT_LIMIT),
            peer,
            session: ServerSession::new(self.cfg, now, crate::proto::util::random_u64()),
            connect: Connect::default(),
            active: None,
            stalled: false,
            last_write: now,
            armed: None,
        });
        // The handshake may be there already; no event says whether a FIN came with it.
        self.read(reg, slot, false, now);
    }

    /// Bytes of this connection's publish waiting for stdout or its child.
    fn backlog(&self, c: &RConn) -> usize {
        match c.active.as_ref().map(|a| &a.sink) {
            Some(Sink::Stdout) => self.stdout.as_ref().map_or(0, StdoutPipe::backlog),
            Some(Sink::Exec(k)) => self.children[*k].as_ref().map_or(0, |c| c.child.backlog()),
            None => 0,
        }
    }

    /// Reads what the socket has (up to [`READ_CAP`]) unless the publish's output is backed up,
    /// and acts on it.
    fn read(&mut self, reg: &Registry, slot: usize, short_drains: bool, now: Instant) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if self.backlog(&c) >= HIGH_WATER {
            self.counts.output_stalls += u64::from(!c.stalled);
            c.stalled = true;
            return self.after(reg, slot, c, now);
        }
        c.stalled = false;
        self.buf.clear();
        let (eof, error) = match c.net.read_into(&mut self.buf, READ_CAP, short_drains) {
            Ok(Received::Drained(_)) => (false, None),
            Ok(Received::Capped(_)) => {
                self.again.push(slot);
                (false, None)
            }
            Ok(Received::Eof(_)) => (true, None),
            Err(e) => (false, Some(format!("read: {e}"))),
        };
        self.counts.bytes_in += self.buf.len() as u64;
        let failed = if self.buf.is_empty() {
            None
        } else {
            c.session.push(&self.buf, now).err()
        };
        self.handle_events(reg, slot, &mut c, now);
        self.pump(&c, now);
        if let Some(e) = failed {
            log::warn!("{}: {e}", c.peer);
            return self.close(reg, slot, c, "protocol error", now);
        }
        if let Some(why) = error {
            return self.close(reg, slot, c, &why, now);
        }
        if eof {
            return self.close(reg, slot, c, "the peer closed the connection", now);
        }
        self.after(reg, slot, c, now);
    }

    fn on_writable(&mut self, reg: &Registry, slot: usize, now: Instant) {
        if let Some(c) = self.conns.get_mut(slot).and_then(Option::take) {
            self.after(reg, slot, c, now);
        }
    }

    /// Sends the session's answers, closes the connection when the session is done and its
    /// answers are out, else puts it back and re-arms its deadline.
    fn after(&mut self, reg: &Registry, slot: usize, mut c: RConn, now: Instant) {
        if let Err(why) = send(&mut c, now) {
            return self.close(reg, slot, c, &why, now);
        }
        if c.session.should_close() && c.net.out.is_empty() {
            return self.close(reg, slot, c, "closed by the server", now);
        }
        let due = deadline(&c);
        if let Some(t) = due.filter(|&t| c.armed.is_none_or(|a| t < a)) {
            c.armed = Some(t);
            self.timers.at(t, conn_token(slot).0);
        }
        self.conns[slot] = Some(c);
    }

    /// Ends a connection: its last answers (best effort), the end of its publish, the close.
    fn close(&mut self, reg: &Registry, slot: usize, mut c: RConn, reason: &str, now: Instant) {
        let _ = send(&mut c, now);
        c.session.finish();
        self.handle_events(reg, slot, &mut c, now);
        self.end_active(reg, &mut c, now);
        let _ = reg.deregister(&mut c.net.sock);
        let _ = c.net.sock.shutdown(Shutdown::Both);
        self.open -= 1;
        self.free.push(slot);
        log::debug!("{}: disconnected ({reason})", c.peer);
    }

    fn timers_due(&mut self, reg: &Registry, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        self.timers.due(now, &mut due);
        for &key in &due {
            match tok(key) {
                Tok::Listener => self.accept(reg, now),
                Tok::Conn(s) => self.conn_timer(reg, s, now),
                Tok::Child(k) => {
                    if let Some(cs) = self.children[k].as_mut() {
                        if cs.armed.is_some_and(|a| a <= now) {
                            cs.armed = None;
                        }
                    }
                    self.step_child(reg, k, now);
                }
                Tok::Waker => {}
            }
        }
        due.clear();
        self.due = due;
    }

    fn conn_timer(&mut self, reg: &Registry, slot: usize, now: Instant) {
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if c.armed.is_some_and(|a| a <= now) {
            c.armed = None;
        }
        if !c.net.out.is_empty() && now >= c.last_write + WRITE_TIMEOUT {
            self.counts.timeouts += 1;
            let why = format!("write: no progress for {WRITE_TIMEOUT:?}");
            return self.close(reg, slot, c, &why, now);
        }
        if !c.stalled && c.session.poll_deadline().is_some_and(|d| now >= d) {
            if let Err(e) = c.session.handle_timeout(now) {
                self.counts.timeouts += 1;
                log::warn!("{}: {e}", c.peer);
                return self.close(reg, slot, c, "protocol error", now);
            }
        }
        self.after(reg, slot, c, now);
    }

    /// The stdout writer woke the reactor: its backlog fell under the mark (or it failed, which
    /// the loop sees).
    fn on_wake(&mut self, reg: &Registry, now: Instant) {
        if let Some(s) = self.stdout_owner {
            self.resume(reg, s, now);
        }
    }

    /// Reads a stalled connection again once its output has room.
    fn resume(&mut self, reg: &Registry, slot: usize, now: Instant) {
        let stalled = self
            .conns
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.stalled && self.backlog(c) < HIGH_WATER);
        if stalled {
            self.read(reg, slot, false, now);
        }
    }

    /// A child's stdin can take more.
    fn on_child(&mut self, reg: &Registry, k: usize, now: Instant) {
        let Some(cs) = self.children.get_mut(k).and_then(Option::as_mut) else {
            return;
        };
        match cs.owner {
            Some(owner) => {
                cs.child.write(now);
                self.resume(reg, owner, now);
            }
            None => self.step_child(reg, k, now),
        }
    }

    /// Takes an ending child on; frees its slot once it is reaped.
    fn step_child(&mut self, reg: &Registry, k: usize, now: Instant) {
        let Some(cs) = self.children.get_mut(k).and_then(Option::as_mut) else {
            return;
        };
        match cs.child.step(reg, now) {
            Some(t) if cs.armed.is_none_or(|a| t < a) => {
                cs.armed = Some(t);
                self.timers.at(t, child_token(k).0);
            }
            Some(_) => {}
            None if cs.child.is_done() => {
                self.counts.child_done(&cs.child.flv);
                self.children[k] = None;
                self.free_children.push(k);
            }
            None => {}
        }
    }

    /// Moves what the last events produced to the publish's output.
    fn pump(&mut self, c: &RConn, now: Instant) {
        match c.active.as_ref().map(|a| &a.sink) {
            Some(Sink::Exec(k)) => {
                if let Some(cs) = self.children[*k].as_mut() {
                    cs.child.pump(now);
                }
            }
            Some(Sink::Stdout) => self.send_stdout(),
            None => {}
        }
    }

    fn send_stdout(&mut self) {
        let data = self.flv.take();
        if let Some(p) = &self.stdout {
            p.send(data);
        }
    }

    fn handle_events(&mut self, reg: &Registry, slot: usize, c: &mut RConn, now: Instant) {
        while let Some(ev) = c.session.poll_event() {
            self.event(reg, slot, c, ev, now);
        }
    }

    fn event(&mut self, reg: &Registry, slot: usize, c: &mut RConn, ev: ServerEvent, now: Instant) {
        let peer = c.peer;
        match ev {
            ServerEvent::Connect { app, tc_url, .. } => {
                let connect = Connect::parse(&app, tc_url.as_deref());
                match self.access.connect(&connect) {
                    Err(why) => {
                        self.counts.refused += 1;
                        log::warn!("{peer}: refused: {why}");
                        let _ = c.session.reject_connect(&why.to_string());
                    }
                    Ok(()) => {
                        c.connect = connect;
                        let _ = c.session.accept_connect();
                    }
                }
            }
            ServerEvent::Publish {
                stream_id,
                stream_key,
                query,
                ..
            } => {
                let s = Stream::new(&c.connect, &stream_key, &query);
                self.publish(reg, slot, c, stream_id, s, now);
            }
            ServerEvent::Play {
                stream_id,
                stream_name,
                query,
                ..
            } => {
                let s = Stream::new(&c.connect, &stream_name, &query);
                let why = match self.access.play(&s, c.active.is_some()) {
                    Err(why) => why,
                    Ok(_) => Refusal::NoPlay,
                };
                self.counts.refused += 1;
                log::warn!("{peer}: play refused: {why}");
                let _ = c.session.reject_play(stream_id, &why.to_string());
            }
            ServerEvent::Metadata {
                stream_id,
                name,
                body,
                ..
            } => {
                if name == "onMetaData" {
                    if let Some(f) = self.flv_of(c, stream_id) {
                        f.metadata(&body);
                    }
                }
            }
            ServerEvent::Media {
                stream_id,
                kind,
                timestamp,
                body,
            } => {
                if let Some(f) = self.flv_of(c, stream_id) {
                    if let Some(n) = f.media(kind, timestamp, &body) {
                        log::info!("{peer}: {n}");
                    }
                }
            }
            ServerEvent::Unpublish { stream_id } => {
                if c.active.as_ref().is_some_and(|a| a.stream_id == stream_id) {
                    self.end_active(reg, c, now);
                }
            }
            ServerEvent::PlayStop { .. } | ServerEvent::Closed => {}
        }
    }

    fn publish(
        &mut self,
        reg: &Registry,
        slot: usize,
        c: &mut RConn,
        stream_id: u32,
        s: Stream,
        now: Instant,
    ) {
        let peer = c.peer;
        let refuse = |c: &mut RConn, why: &str| {
            log::warn!("{peer}: publish of key {} refused: {why}", mask(&s.name));
            let _ = c
                .session
                .reject_publish(stream_id, "NetStream.Publish.BadName", why);
        };
        let state = PublishState {
            conn_busy: c.active.is_some(),
            live_keys: Some(&self.live_keys),
            output_busy: self.exec.is_none() && self.stdout_owner.is_some(),
        };
        // The names as decoded and checked: only these reach --exec's environment.
        let n = match self.access.publish(&s, state) {
            Ok(n) => n,
            Err(why) => {
                self.counts.refused += 1;
                return refuse(c, &why.to_string());
            }
        };
        let sink = match &self.exec {
            Some(cmd) => {
                let k = self.free_children.pop().unwrap_or_else(|| {
                    self.children.push(None);
                    self.children.len() - 1
                });
                match ExecChild::spawn(cmd, &n.app, &n.name, peer, reg, child_token(k), now) {
                    Ok(child) => {
                        self.children[k] = Some(ChildSlot {
                            child,
                            owner: Some(slot),
                            armed: None,
                        });
                        Sink::Exec(k)
                    }
                    Err(e) => {
                        self.free_children.push(k);
                        log::error!("{peer}: cannot run --exec command: {e}");
                        return refuse(c, "server error");
                    }
                }
            }
            None => {
                self.stdout_owner = Some(slot);
                self.flv.begin();
                Sink::Stdout
            }
        };
        self.live_keys.insert(n.name.clone());
        self.counts.publishes += 1;
        log::info!("{peer}: publishing app {:?} key {}", n.app, mask(&n.name));
        let _ = c.session.accept_publish(stream_id);
        c.active = Some(Active {
            stream_id,
            key: n.name,
            sink,
        });
    }

    /// The FLV writer of the connection's publish on `stream_id`.
    fn flv_of(&mut self, c: &RConn, stream_id: u32) -> Option<&mut FlvSplice> {
        let a = c.active.as_ref().filter(|a| a.stream_id == stream_id)?;
        match a.sink {
            Sink::Stdout => Some(&mut self.flv),
            Sink::Exec(k) => self.children[k].as_mut().map(|cs| &mut cs.child.flv),
        }
    }

    fn end_active(&mut self, reg: &Registry, c: &mut RConn, now: Instant) {
        let Some(a) = c.active.take() else {
            return;
        };
        log::info!("publish of key {} ended", mask(&a.key));
        match a.sink {
            Sink::Exec(k) => {
                if let Some(cs) = self.children[k].as_mut() {
                    cs.owner = None;
                    cs.child.end(now);
                }
                self.step_child(reg, k, now);
            }
            Sink::Stdout => {
                self.flv.end();
                if self.flv.dropped_at_splice > 0 {
                    log::warn!(
                        "{} frame(s) of this publish dropped: a track came back late, at timestamps that overlap the previous publish",
                        self.flv.dropped_at_splice
                    );
                }
                self.send_stdout();
                self.stdout_owner = None;
                if !self.persist {
                    self.done = true;
                }
            }
        }
        self.live_keys.remove(&a.key);
    }
}

/// Queues the session's answers and writes what the socket takes.
fn send(c: &mut RConn, now: Instant) -> Result<(), String> {
    let out = c.session.take_output();
    if !out.is_empty() {
        if c.net.out.is_empty() {
            c.last_write = now;
        }
        c.net
            .out
            .push(Bytes::from(out))
            .map_err(|_| "the client does not read what it is sent".to_string())?;
    }
    if !c.net.out.is_empty() {
        match c.net.flush() {
            Ok(w) if w.bytes > 0 => c.last_write = now,
            Ok(_) => {}
            Err(e) => return Err(format!("write: {e}")),
        }
    }
    Ok(())
}

/// When the connection's timer must fire: the session's deadline (handshake, idle; not while
/// stalled: the publisher waits for us then) or the write deadline.
fn deadline(c: &RConn) -> Option<Instant> {
    let session = if c.stalled {
        None
    } else {
        c.session.poll_deadline()
    };
    let write = (!c.net.out.is_empty()).then(|| c.last_write + WRITE_TIMEOUT);
    match (session, write) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::flv;
    use crate::proto::rtmp::MediaKind;
    use bytes::Bytes;

    fn tags(b: &[u8]) -> Vec<(flv::TagKind, u32, Vec<u8>)> {
        let mut r = flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(b, &mut evs);
        r.finish(&mut evs);
        evs.into_iter()
            .filter_map(|e| match e {
                flv::FlvEvent::Tag(t) => Some((t.kind, t.timestamp, t.body.to_vec())),
                flv::FlvEvent::Warning(w) => panic!("{w}"),
                _ => None,
            })
            .collect()
    }

    fn v(key: bool, n: u8) -> Bytes {
        Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, n])
    }

    #[test]
    fn splices_publishes_into_one_stream() {
        let seq = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2, 3]);
        let aseq = Bytes::from_static(&[0xAF, 0, 0x12, 0x10]);
        let mut f = FlvSplice::new();
        let mut out = Vec::new();
        for session in 0..3u32 {
            f.begin();
            if session == 2 {
                // A reconnect that starts on an inter frame: dropped until the keyframe.
                f.media(MediaKind::Video, 0, &v(false, 99));
            }
            let new_seq = if session == 2 {
                Bytes::from_static(&[0x17, 0, 0, 0, 0, 9, 9])
            } else {
                seq.clone()
            };
            f.media(MediaKind::Video, 0, &new_seq);
            f.media(MediaKind::Audio, 0, &aseq);
            let base = if session == 1 { 5000 } else { 0 };
            for i in 0..10u32 {
                f.media(MediaKind::Video, base + i * 40, &v(i == 0, i as u8));
                f.media(
                    MediaKind::Audio,
                    base + i * 40,
                    &Bytes::from_static(&[0xAF, 1, 7]),
                );
            }
            out.extend(f.take());
        }
        assert_eq!(&out[..3], b"FLV");
        let t = tags(&out);
        let seqs: Vec<u32> = t
            .iter()
            .filter(|(k, _, b)| *k == flv::TagKind::Video && b[1] == 0)
            .map(|x| x.1)
            .collect();
        assert_eq!(
            seqs.len(),
            2,
            "the unchanged header is not repeated; the changed one is"
        );
        assert_eq!(
            t.iter()
                .filter(|(k, _, b)| *k == flv::TagKind::Audio && b[1] == 0)
                .count(),
            1
        );
        let video: Vec<u32> = t
            .iter()
            .filter(|(k, _, b)| *k == flv::TagKind::Video && b[1] == 1)
            .map(|x| x.1)
            .collect();
        assert_eq!(video.len(), 30);
        assert!(video.windows(2).all(|w| w[1] > w[0]), "{video:?}");
        assert_eq!(video[10], 360 + 40, "continues one frame after the last");
        assert!(!t.iter().any(|(_, _, b)| b.get(5) == Some(&99)));
    }

    #[test]
    fn unwraps_the_32_bit_millisecond_wrap() {
        let mut f = FlvSplice::new();
        f.begin();
        let mut ts = u32::MAX - 100;
        let mut got = Vec::new();
        for i in 0..6 {
            f.media(MediaKind::Video, ts, &v(i == 0, 0));
            ts = ts.wrapping_add(40);
        }
        for (_, t, _) in tags(&f.take()) {
            got.push(t);
        }
        // Output stays on the continuing (wrapped-in-FLV) timeline: strictly increasing modulo 2^32.
        for w in got.windows(2) {
            assert_eq!(w[1].wrapping_sub(w[0]), 40, "{got:?}");
        }
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask("secret"), "se…(6 chars)");
        assert_eq!(mask("abc"), "****(3 chars)");
        assert!(!mask("supersecretkey").contains("secret"));
        // One line whatever the key holds.
        assert_eq!(mask("\n\r\u{1}xyz"), "\\n\\r…(6 chars)");
    }
}
