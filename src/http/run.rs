//! A [`Server`] on threads of its own: each thread runs a reactor with its own copy of the
//! listening socket and its own connections; the kernel hands each new connection to one of them.
//! Other threads answer parked requests and feed streams through a [`Completer`].

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Registry, Token, Waker};

use super::server::{Counters, Handler, Options, ReqId, Response, SendError, Server};
use crate::net::{Accept, Listener, Reactor};

const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// The longest a reactor sleeps with nothing due (it checks the stop flag then).
const TICK: Duration = Duration::from_millis(500);
/// How long a stop waits for responses in hand to be written.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A message to a server thread from elsewhere.
enum Msg {
    Complete(ReqId, Response),
    Stream(ReqId, Response),
    Send(ReqId, Bytes, Verdict),
    End(ReqId),
}

/// The outcome of one [`Completer::send`], decided once: by the server thread when it takes the
/// chunk (then the answer goes back on `reply`), or by the caller when its wait ends first (then
/// the server thread drops the chunk unqueued). Either way the caller learns whether the chunk
/// was queued.
struct Verdict {
    claim: Arc<AtomicU8>,
    reply: SyncSender<Result<(), SendError>>,
}

const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

/// Answers parked requests and feeds streams of a [`spawn`]ed server from any thread.
#[derive(Clone)]
pub struct Completer {
    to: Vec<(Sender<Msg>, Arc<Waker>)>,
}

impl Completer {
    fn post(&self, id: ReqId, m: Msg) {
        if let Some((tx, w)) = self.to.get(id.server as usize) {
            if tx.send(m).is_ok() {
                let _ = w.wake();
            }
        }
    }

    /// Answers a parked request (ignored when its connection is gone).
    pub fn complete(&self, id: ReqId, resp: Response) {
        self.post(id, Msg::Complete(id, resp));
    }

    /// Turns a parked request into a stream (status and fields now, pieces with `send`).
    pub fn stream(&self, id: ReqId, head: Response) {
        self.post(id, Msg::Stream(id, head));
    }

    /// Queues a piece of a stream, as [`Server::send`] does on the server's own thread, and says
    /// whether it was queued: `Err(Full)` when the connection's outbox is at its limit (the
    /// client reads slower than the stream; send it again later, or give up the stream),
    /// `Err(Gone)` when the stream ended or its server stopped, `Err(Busy)` when the server
    /// thread did not take the chunk within `wait`. On any error the chunk was not queued.
    ///
    /// Waits for the server thread's answer (one round trip), so it must not be called from a
    /// handler on that thread: there `wait` passes and the answer is `Busy`.
    pub fn send(&self, id: ReqId, data: Bytes, wait: Duration) -> Result<(), SendError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let claim = Arc::new(AtomicU8::new(WAITING));
        let verdict = Verdict {
            claim: Arc::clone(&claim),
            reply: tx,
        };
        self.post(id, Msg::Send(id, data, verdict));
        match rx.recv_timeout(wait) {
            Ok(r) => r,
            // The message was dropped unanswered: the server thread is gone.
            Err(RecvTimeoutError::Disconnected) => Err(SendError::Gone),
            Err(RecvTimeoutError::Timeout) => {
                if claim
                    .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Err(SendError::Busy);
                }
                // The server thread took it just now; its answer is on the way.
                rx.recv().unwrap_or(Err(SendError::Gone))
            }
        }
    }

    pub fn end(&self, id: ReqId) {
        self.post(id, Msg::End(id));
    }
}

fn drain<H: Handler>(rx: &Receiver<Msg>, s: &mut Server<H>, registry: &Registry, now: Instant) {
    while let Ok(m) = rx.try_recv() {
        match m {
            Msg::Complete(id, r) => s.complete(registry, id, r, now),
            Msg::Stream(id, r) => s.stream(registry, id, r, now),
            Msg::Send(id, b, v) => {
                if v.claim
                    .compare_exchange(WAITING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let _ = v.reply.send(s.send(registry, id, b, now));
                }
            }
            Msg::End(id) => s.end(registry, id, now),
        }
    }
}

/// A running server. Dropping it stops it, like [`Running::shutdown`].
pub struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    completer: Completer,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn completer(&self) -> Completer {
        self.completer.clone()
    }

    /// Closes the listener, ends streams, lets responses in hand be written (at most 2 s), and
    /// joins the threads; the port is closed when this returns.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in &self.wakers {
            let _ = w.wake();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Binds `addr` and serves it with `threads` reactor threads (at least 1), each with a clone of
/// `handler`. Returns once listening.
pub fn spawn<H: Handler + Clone + Send + 'static>(
    addr: &str,
    handler: H,
    opts: Options,
    threads: usize,
    name: &str,
) -> io::Result<Running> {
    // mio's bind: SO_REUSEADDR and a backlog of 1024 (std's is 128).
    let first = mio::net::TcpListener::bind(crate::net::listener::resolve(addr)?)?;
    // SAFETY: the descriptor comes from `into_raw_fd` and has no other owner.
    let first = unsafe { std::net::TcpListener::from_raw_fd(first.into_raw_fd()) };
    let local = first.local_addr()?;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut reactors = Vec::new();
    for _ in 0..threads.max(1) {
        let r = Reactor::new()?;
        let l = Listener::adopt(first.try_clone()?, r.registry(), LISTENER)?;
        reactors.push((r, l));
    }
    drop(first);
    let wakers: Vec<Arc<Waker>> = reactors.iter().map(|(r, _)| r.waker()).collect();
    let mut to = Vec::new();
    let mut inboxes = Vec::new();
    for w in &wakers {
        let (tx, rx) = mpsc::channel();
        to.push((tx, Arc::clone(w)));
        inboxes.push(rx);
    }
    let completer = Completer { to };
    let mut running = Running {
        addr: local,
        stop: Arc::clone(&stop),
        wakers,
        threads: Vec::new(),
        counters: Arc::clone(&counters),
        completer,
    };
    for (i, ((reactor, listener), rx)) in reactors.into_iter().zip(inboxes).enumerate() {
        let server = Server::new(
            handler.clone(),
            opts.clone(),
            FIRST_CONN,
            i as u32,
            Arc::clone(&counters),
        );
        let stop = Arc::clone(&stop);
        let t = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || run(reactor, listener, server, &rx, &stop))?;
        running.threads.push(t);
    }
    Ok(running)
}

fn run<H: Handler>(
    mut reactor: Reactor,
    listener: Listener,
    mut server: Server<H>,
    rx: &Receiver<Msg>,
    stop: &AtomicBool,
) {
    let mut listener = Some(listener);
    let mut resume: Option<Instant> = None;
    let mut stopping: Option<Instant> = None;
    let mut tokens: Vec<(Token, bool, bool)> = Vec::with_capacity(1024);
    loop {
        let due = match (server.next_deadline(), resume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Ok(now) = reactor.poll(due, TICK) else {
            return;
        };
        tokens.clear();
        tokens.extend(reactor.events.iter().map(|e| {
            let closed = e.is_read_closed() || e.is_error();
            (e.token(), e.is_readable() || closed, closed)
        }));
        let registry = reactor.registry();
        let mut accept = resume.is_some_and(|t| now >= t);
        for &(t, readable, closed) in &tokens {
            match t {
                Reactor::WAKER => drain(rx, &mut server, registry, now),
                LISTENER => accept = true,
                t if server.owns(t) => server.event(registry, t, readable, closed, now),
                _ => {}
            }
        }
        if accept {
            resume = None;
            if let Some(l) = listener.as_mut() {
                loop {
                    match l.accept(now) {
                        Accept::Conn(s, peer) => server.adopt(registry, s, peer, now),
                        Accept::Drained => break,
                        Accept::Shed(_) => server.shed(),
                        Accept::PausedUntil(t, _) => {
                            server.accept_error();
                            resume = Some(t);
                            break;
                        }
                    }
                }
            }
        }
        server.timers(registry, now);
        if stopping.is_none() && stop.load(Ordering::SeqCst) {
            if let Some(mut l) = listener.take() {
                l.deregister(registry);
            }
            server.close_idle(registry, now);
            stopping = Some(now);
        }
        if let Some(t) = stopping {
            if server.open() == 0 || now.duration_since(t) > STOP_GRACE {
                return;
            }
        }
    }
}
