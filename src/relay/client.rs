//! The hub's two clients, blocking std::net: broadcast (stdin → hub) and watch (hub → stdout),
//! each with bounded-backoff reconnects.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::cache::{CacheLimits, GopCache};
use super::stream::{Chunk, Splitter};
use crate::media::StreamFormat;
use crate::proto::fstream::Request;
use crate::stdio::{read_some, stop_signal, ReadOutcome};

const READ_CHUNK: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

fn connect(addr: &str, req: &Request) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for a in addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
    {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(mut s) => {
                let _ = s.set_nodelay(true);
                s.write_all(&req.encode())
                    .with_context(|| format!("{addr}: sending the handshake"))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => anyhow::Error::new(e).context(format!("connecting to {addr}")),
        None => anyhow::anyhow!("{addr}: no address"),
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
) -> anyhow::Result<()> {
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
                    log::warn!("{e:#}; retrying");
                    continue;
                }
            }
        }
        let s = sock.as_mut().unwrap();
        // Send what is queued.
        let mut failed: Option<anyhow::Error> = None;
        // The hub never sends a broadcaster anything: readable means it closed the connection.
        if !queue.is_empty() && hub_closed(s) {
            failed = Some(anyhow::anyhow!(
                "{addr}: the hub closed the connection (refused: wrong user/password, or replaced; see the hub's log)"
            ));
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
                Err(e) => {
                    failed = Some(anyhow::Error::new(e).context(format!("{addr}: sending")));
                    break;
                }
            }
        }
        if let Some(e) = failed {
            sock = None;
            if !backoff.wait(retry) {
                return Err(e);
            }
            log::warn!("{e:#}; reconnecting");
            continue;
        }
        if eof || stop_signal().is_some() {
            break;
        }
        // Read more.
        let n = if let Some(bs) = bufsize {
            let mut got = 0;
            while got < bs {
                match read_some(&mut stdin, &mut buf[got..bs]).context("reading stdin")? {
                    ReadOutcome::Data(n) => got += n,
                    ReadOutcome::Eof | ReadOutcome::Stop => {
                        eof = true;
                        break;
                    }
                }
            }
            got
        } else {
            match read_some(&mut stdin, &mut buf).context("reading stdin")? {
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => break,
                // A reset: the hub closed the connection with our data unread, i.e. it refused it.
                Err(e) => bail!(
                    "{addr}: the hub closed the connection ({e}): refused (wrong user/password?) or replaced; see the hub's log"
                ),
            }
        }
    }
    log::info!("{addr}: {total} bytes sent");
    if total == 0 && !queue.is_empty() {
        bail!("{addr}: nothing was sent");
    }
    Ok(())
}

/// hub → stdout. Returns after EOF (or, with retry, only on a stop signal or the retry limit).
pub fn watch(addr: &str, req: &Request, retry: &Retry) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let mut backoff = Backoff::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total: u64 = 0;
    loop {
        let mut s = match connect(addr, req) {
            Ok(s) => s,
            Err(e) => {
                if !backoff.wait(retry) {
                    return Err(e);
                }
                log::warn!("{e:#}; retrying");
                continue;
            }
        };
        log::info!("{addr}: watching {}/{}", req.user, req.channel);
        let mut got: u64 = 0;
        let end = loop {
            match read_some(&mut s, &mut buf) {
                Ok(ReadOutcome::Data(n)) => {
                    out.write_all(&buf[..n]).context("writing stdout")?;
                    out.flush().context("writing stdout")?;
                    got += n as u64;
                    if got == n as u64 {
                        backoff.reset();
                    }
                }
                Ok(ReadOutcome::Eof) => break None,
                Ok(ReadOutcome::Stop) => return Ok(()),
                Err(e) => break Some(anyhow::Error::new(e).context(format!("{addr}: receiving"))),
            }
        };
        total += got;
        let e = match end {
            Some(e) => e,
            None if got > 0 => {
                log::info!("{addr}: end of broadcast after {got} bytes");
                if !retry.enabled {
                    return Ok(());
                }
                anyhow::anyhow!("{addr}: end of broadcast")
            }
            None => anyhow::anyhow!(
                "{addr}: the hub closed the connection without sending anything (refused: wrong channel password, or the channel did not go live in time; see the hub's log)"
            ),
        };
        if !backoff.wait(retry) {
            if total > 0 && got > 0 {
                return Ok(());
            }
            return Err(e);
        }
        log::warn!("{e:#}; reconnecting");
    }
}
