//! The hub's two clients, blocking std::net: broadcast (stdin → hub) and watch (hub → stdout),
//! each with bounded-backoff reconnects.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::cache::{CacheLimits, GopCache};
use super::restamp::Restamp;
use super::stream::{Chunk, HeaderKind, Mark, Splitter};
use crate::error::Chain;
use crate::media::StreamFormat;
use crate::proto::fstream::Request;
use crate::stdio::{read_some, stop_signal, ReadOutcome};

const READ_CHUNK: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client stopped, or (logged, before a retry) why a connection ended. Each names the hub
/// (`addr`, as given) it is about; an I/O failure is the [`source`](std::error::Error::source),
/// so the line reads `connecting to hub:9000: Connection refused (os error 111)` when printed
/// with its causes ([`Chain`]).
#[derive(Debug)]
pub enum ClientError {
    /// The hub's address did not resolve.
    Resolve { addr: String, source: io::Error },
    /// The hub's address resolved to nothing.
    NoAddress { addr: String },
    /// No address of the hub took the connection (the last failure).
    Connect { addr: String, source: io::Error },
    /// The fstream handshake could not be sent.
    Handshake { addr: String, source: io::Error },
    /// Sending stream bytes to the hub failed.
    Send { addr: String, source: io::Error },
    /// Receiving from the hub failed.
    Receive { addr: String, source: io::Error },
    /// The hub closed a broadcaster's connection while bytes were queued (a refusal, a takeover,
    /// or the hub stopping: the client cannot tell them apart).
    Refused { addr: String },
    /// The hub reset a broadcaster's connection at the end, with its data unread.
    Reset { addr: String, source: io::Error },
    /// The input ended before a byte could be sent.
    NothingSent { addr: String },
    /// The broadcast a watcher was receiving ended (a reason to reconnect, with retry).
    EndOfBroadcast { addr: String },
    /// The hub closed (or reset) a watcher's connection without sending anything.
    NothingReceived { addr: String },
    /// Reading the stream from stdin failed.
    Stdin(io::Error),
    /// Writing the stream to stdout failed (an EPIPE here is the downstream reader leaving).
    Stdout(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Resolve { addr, .. } => write!(f, "resolving {addr}"),
            ClientError::NoAddress { addr } => write!(f, "{addr}: no address"),
            ClientError::Connect { addr, .. } => write!(f, "connecting to {addr}"),
            ClientError::Handshake { addr, .. } => write!(f, "{addr}: sending the handshake"),
            ClientError::Send { addr, .. } => write!(f, "{addr}: sending"),
            ClientError::Receive { addr, .. } => write!(f, "{addr}: receiving"),
            ClientError::Refused { addr } => write!(
                f,
                "{addr}: the hub closed the connection (it refused it: wrong user/password; another broadcaster replaced it; or the hub stopped; see the hub's log)"
            ),
            ClientError::Reset { addr, source } => write!(
                f,
                "{addr}: the hub closed the connection ({source}): refused (wrong user/password?), replaced, or the hub stopped; see the hub's log"
            ),
            ClientError::NothingSent { addr } => write!(f, "{addr}: nothing was sent"),
            ClientError::EndOfBroadcast { addr } => write!(f, "{addr}: end of broadcast"),
            ClientError::NothingReceived { addr } => write!(
                f,
                "{addr}: the hub closed the connection without sending anything (refused: wrong channel password, too many connections, or the channel did not go live in time; see the hub's log)"
            ),
            ClientError::Stdin(_) => f.write_str("reading stdin"),
            ClientError::Stdout(_) => f.write_str("writing stdout"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Resolve { source, .. }
            | ClientError::Connect { source, .. }
            | ClientError::Handshake { source, .. }
            | ClientError::Send { source, .. }
            | ClientError::Receive { source, .. } => Some(source),
            ClientError::Stdin(e) | ClientError::Stdout(e) => Some(e),
            // The reset's text is in the message already.
            ClientError::Reset { .. }
            | ClientError::NoAddress { .. }
            | ClientError::Refused { .. }
            | ClientError::NothingSent { .. }
            | ClientError::EndOfBroadcast { .. }
            | ClientError::NothingReceived { .. } => None,
        }
    }
}

/// Reconnect policy.
#[derive(Debug, Clone)]
pub struct Retry {
    pub enabled: bool,
    pub max_delay: Duration,
    /// Consecutive failed attempts before giving up (0 = never).
    pub limit: u32,
}

struct Backoff {
    delay: Duration,
    failures: u32,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            delay: Duration::from_millis(100),
            failures: 0,
        }
    }
    fn reset(&mut self) {
        *self = Backoff::new();
    }
    /// Sleeps before the next attempt; false when the limit is reached or a stop signal came.
    fn wait(&mut self, r: &Retry) -> bool {
        self.failures += 1;
        if !r.enabled || (r.limit > 0 && self.failures > r.limit) || stop_signal().is_some() {
            return false;
        }
        let until = Instant::now() + self.delay;
        while Instant::now() < until {
            if stop_signal().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        self.delay = (self.delay * 2).min(r.max_delay);
        true
    }
}

fn connect(addr: &str, req: &Request) -> Result<TcpStream, ClientError> {
    let addr_s = || addr.to_string();
    let mut last = None;
    let addrs = addr
        .to_socket_addrs()
        .map_err(|source| ClientError::Resolve {
            addr: addr_s(),
            source,
        })?;
    for a in addrs {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(mut s) => {
                let _ = s.set_nodelay(true);
                s.write_all(&req.encode())
                    .map_err(|source| ClientError::Handshake {
                        addr: addr_s(),
                        source,
                    })?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(source) => ClientError::Connect {
            addr: addr_s(),
            source,
        },
        None => ClientError::NoAddress { addr: addr_s() },
    })
}

/// True when the hub has closed (or reset) the connection: it never sends a broadcaster anything.
fn hub_closed(s: &TcpStream) -> bool {
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    r > 0 && p.revents != 0
}

/// stdin → hub. Whole chunks (FLV tags, TS packets) are sent; after a reconnect the hub first gets
/// the stream's headers and the current GOP again, so the new connection is a clean stream.
pub fn broadcast(
    addr: &str,
    req: &Request,
    bufsize: Option<usize>,
    retry: &Retry,
) -> Result<(), ClientError> {
    let mut stdin = io::stdin().lock();
    let mut splitter = Splitter::new();
    let mut cache = GopCache::new(CacheLimits::default(), true);
    let mut backoff = Backoff::new();
    let mut sock: Option<TcpStream> = None;
    let mut buf = vec![0u8; bufsize.unwrap_or(READ_CHUNK).clamp(1, 16 << 20)];
    let mut chunks: Vec<Chunk> = Vec::new();
    // Chunks not yet (fully) sent, and how much of the first one went out.
    let mut queue: std::collections::VecDeque<Chunk> = Default::default();
    let mut sent_front = 0usize;
    let mut eof = false;
    let mut total: u64 = 0;
    let mut connected_once = false;
    loop {
        if sock.is_none() {
            match connect(addr, req) {
                Ok(s) => {
                    log::info!("{addr}: broadcasting as {}/{}", req.user, req.channel);
                    if connected_once {
                        match splitter.format() {
                            Some(StreamFormat::Opaque) | None => {
                                // Bytes from where the old connection stopped.
                                if let Some(f) = queue.front_mut() {
                                    f.data = f.data.slice(sent_front..);
                                }
                            }
                            Some(_) => {
                                // Every queued chunk since the last keyframe is in the cache: a clean
                                // stream is the headers and the current GOP, then what comes next.
                                queue = cache.join().chunks.into();
                            }
                        }
                        sent_front = 0;
                    }
                    connected_once = true;
                    sock = Some(s);
                }
                Err(e) => {
                    if !backoff.wait(retry) {
                        return Err(e);
                    }
                    log::warn!("{}; retrying", Chain(&e));
                    continue;
                }
            }
        }
        let s = sock.as_mut().unwrap();
        // Send what is queued.
        let mut failed: Option<ClientError> = None;
        // The hub never sends a broadcaster anything: readable means it closed the connection.
        if !queue.is_empty() && hub_closed(s) {
            failed = Some(ClientError::Refused {
                addr: addr.to_string(),
            });
        }
        while let Some(front) = queue.front().filter(|_| failed.is_none()) {
            match s.write(&front.data[sent_front..]) {
                Ok(n) => {
                    sent_front += n;
                    total += n as u64;
                    if sent_front == front.data.len() {
                        queue.pop_front();
                        sent_front = 0;
                        backoff.reset();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if stop_signal().is_some() {
                        break;
                    }
                }
                Err(source) => {
                    failed = Some(ClientError::Send {
                        addr: addr.to_string(),
                        source,
                    });
                    break;
                }
            }
        }
        if let Some(e) = failed {
            sock = None;
            if !backoff.wait(retry) {
                return Err(e);
            }
            log::warn!("{}; reconnecting", Chain(&e));
            continue;
        }
        if eof || stop_signal().is_some() {
            break;
        }
        // Read more.
        let n = if let Some(bs) = bufsize {
            let mut got = 0;
            while got < bs {
                match read_some(&mut stdin, &mut buf[got..bs]).map_err(ClientError::Stdin)? {
                    ReadOutcome::Data(n) => got += n,
                    ReadOutcome::Eof | ReadOutcome::Stop => {
                        eof = true;
                        break;
                    }
                }
            }
            got
        } else {
            match read_some(&mut stdin, &mut buf).map_err(ClientError::Stdin)? {
                ReadOutcome::Data(n) => n,
                ReadOutcome::Eof | ReadOutcome::Stop => {
                    eof = true;
                    0
                }
            }
        };
        chunks.clear();
        splitter.push(&buf[..n], &mut chunks);
        if eof {
            splitter.finish(&mut chunks);
        }
        let now = Instant::now();
        for c in chunks.drain(..) {
            cache.push(&c, now);
            queue.push_back(c);
        }
    }
    if let Some(s) = sock {
        let _ = s.shutdown(Shutdown::Write);
        // Wait for the hub to close its side so the last bytes are not lost to a reset.
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut sink = [0u8; 512];
        let mut s = s;
        loop {
            match s.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break
                }
                // A reset: the hub closed the connection with our data unread, i.e. it refused it.
                Err(source) => {
                    return Err(ClientError::Reset {
                        addr: addr.to_string(),
                        source,
                    })
                }
            }
        }
    }
    log::info!("{addr}: {total} bytes sent");
    if total == 0 && !queue.is_empty() {
        return Err(ClientError::NothingSent {
            addr: addr.to_string(),
        });
    }
    Ok(())
}

/// A watcher's output across reconnects is one stream, as a takeover on the hub gives it
/// ([`super::restamp`]): an FLV stream has one file header and one timeline, so a new connection's
/// file header is dropped and its tags continue after the last ones written. Without this, players
/// read the second header as a broken tag and stopped there (ffprobe saw the 75 frames before a
/// hub restart of a 250-frame broadcast, tests/it/relay_faults.rs). Anything else passes as it
/// comes (MPEG-TS and Annex B headers may repeat).
#[derive(Default)]
struct Continuity {
    mode: Mode,
    connections: u64,
    chunks: Vec<Chunk>,
}

enum Mode {
    /// The first bytes, until there are 4 (enough to tell an FLV signature).
    Held(Vec<u8>),
    Bytes,
    Flv(Box<(Splitter, Restamp)>),
}

impl Default for Mode {
    fn default() -> Self {
        Mode::Held(Vec::new())
    }
}

impl Continuity {
    /// A connection begins.
    fn connected(&mut self) {
        self.connections += 1;
        if let Mode::Flv(f) = &mut self.mode {
            if self.connections > 1 {
                f.0 = Splitter::new();
                f.1.next_stream();
            }
        }
    }

    /// Bytes from the hub: appends what to write to `out`.
    fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        match &mut self.mode {
            Mode::Bytes => out.extend_from_slice(data),
            Mode::Flv(_) => self.flv(data, false, out),
            Mode::Held(_) => {
                let mut held = match std::mem::take(&mut self.mode) {
                    Mode::Held(h) => h,
                    _ => Vec::new(),
                };
                held.extend_from_slice(data);
                if held.len() < 4 {
                    self.mode = Mode::Held(held);
                } else if held.starts_with(b"FLV\x01") {
                    self.mode = Mode::Flv(Box::new((Splitter::new(), Restamp::new())));
                    self.flv(&held, false, out);
                } else {
                    self.mode = Mode::Bytes;
                    out.extend_from_slice(&held);
                }
            }
        }
    }

    /// The connection ended: appends what was held to `out`.
    fn end(&mut self, out: &mut Vec<u8>) {
        match std::mem::take(&mut self.mode) {
            Mode::Held(h) => {
                out.extend_from_slice(&h);
                self.mode = Mode::Bytes;
            }
            Mode::Flv(f) => {
                self.mode = Mode::Flv(f);
                self.flv(&[], true, out);
            }
            m => self.mode = m,
        }
    }

    fn flv(&mut self, data: &[u8], finish: bool, out: &mut Vec<u8>) {
        let Mode::Flv(f) = &mut self.mode else { return };
        let (splitter, restamp) = &mut **f;
        self.chunks.clear();
        splitter.push(data, &mut self.chunks);
        if finish {
            splitter.finish(&mut self.chunks);
        }
        restamp.apply(&mut self.chunks);
        for c in &self.chunks {
            if self.connections > 1 && c.mark == Mark::Header(HeaderKind::FlvFile) {
                continue;
            }
            out.extend_from_slice(&c.data);
        }
    }
}

/// hub → stdout. Returns after EOF (or, with retry, only on a stop signal or the retry limit).
pub fn watch(addr: &str, req: &Request, retry: &Retry) -> Result<(), ClientError> {
    let mut out = io::stdout().lock();
    let mut backoff = Backoff::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total: u64 = 0;
    let mut cont = Continuity::default();
    let mut pending: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        let mut s = match connect(addr, req) {
            Ok(s) => s,
            Err(e) => {
                if !backoff.wait(retry) {
                    return Err(e);
                }
                log::warn!("{}; retrying", Chain(&e));
                continue;
            }
        };
        log::info!("{addr}: watching {}/{}", req.user, req.channel);
        cont.connected();
        let mut got: u64 = 0;
        let end = loop {
            match read_some(&mut s, &mut buf) {
                Ok(ReadOutcome::Data(n)) => {
                    pending.clear();
                    cont.push(&buf[..n], &mut pending);
                    out.write_all(&pending).map_err(ClientError::Stdout)?;
                    out.flush().map_err(ClientError::Stdout)?;
                    got += n as u64;
                    if got == n as u64 {
                        backoff.reset();
                    }
                }
                Ok(ReadOutcome::Eof) => break None,
                Ok(ReadOutcome::Stop) => return Ok(()),
                // A refusal that raced the handshake: the hub closed with it unread.
                Err(e) if got == 0 && e.kind() == io::ErrorKind::ConnectionReset => break None,
                Err(source) => {
                    break Some(ClientError::Receive {
                        addr: addr.to_string(),
                        source,
                    })
                }
            }
        };
        pending.clear();
        cont.end(&mut pending);
        out.write_all(&pending).map_err(ClientError::Stdout)?;
        total += got;
        let e = match end {
            Some(e) => e,
            None if got > 0 => {
                log::info!("{addr}: end of broadcast after {got} bytes");
                if !retry.enabled {
                    return Ok(());
                }
                ClientError::EndOfBroadcast {
                    addr: addr.to_string(),
                }
            }
            None => ClientError::NothingReceived {
                addr: addr.to_string(),
            },
        };
        if !backoff.wait(retry) {
            if total > 0 && got > 0 {
                return Ok(());
            }
            return Err(e);
        }
        log::warn!("{}; reconnecting", Chain(&e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::testdata;

    /// Feeds each connection's bytes in pieces of `cut` bytes; returns what is written.
    fn through(conns: &[&[u8]], cut: usize) -> Vec<u8> {
        let mut c = Continuity::default();
        let mut out = Vec::new();
        for conn in conns {
            c.connected();
            for piece in conn.chunks(cut) {
                c.push(piece, &mut out);
            }
            c.end(&mut out);
        }
        out
    }

    /// (video timestamps, FLV signatures) of an FLV stream.
    fn video_ts(flv: &[u8]) -> (Vec<u32>, usize) {
        use crate::format::flv::{FlvEvent, FlvReader, TagKind};
        let (mut r, mut ev) = (FlvReader::new(), Vec::new());
        r.push(flv, &mut ev);
        let ts = ev
            .into_iter()
            .filter_map(|e| match e {
                FlvEvent::Tag(t) if t.kind == TagKind::Video => Some(t.timestamp),
                _ => None,
            })
            .collect();
        (ts, flv.windows(4).filter(|w| w == b"FLV\x01").count())
    }

    #[test]
    fn one_connection_passes_byte_for_byte() {
        let flv = testdata::flv();
        for cut in [1, 7, 4096, flv.len()] {
            assert!(through(&[&flv], cut) == flv, "cut {cut}");
        }
        let ts = testdata::ts();
        assert!(through(&[&ts], 100) == ts);
    }

    #[test]
    fn reconnects_give_one_flv_stream_with_one_header_and_one_timeline() {
        let flv = testdata::flv();
        for cut in [1, 13, 5000] {
            let got = through(&[&flv, &flv, &flv], cut);
            let (ts, headers) = video_ts(&got);
            assert_eq!(headers, 1, "cut {cut}");
            assert_eq!(ts.len(), 3 * video_ts(&flv).0.len(), "cut {cut}");
            assert!(ts.windows(2).all(|w| w[1] >= w[0]), "cut {cut}: {ts:?}");
        }
        // Not FLV: the connections' bytes one after the other.
        let ts = testdata::ts();
        assert!(through(&[&ts, &ts], 188) == [&ts[..], &ts[..]].concat());
        // A connection that ends before 4 bytes keeps them.
        assert_eq!(through(&[b"FL"], 1), b"FL");
    }
}
