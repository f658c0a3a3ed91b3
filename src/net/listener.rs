//! A TCP listener whose accept survives running out of file descriptors and aborted handshakes.
//!
//! - `ECONNABORTED` and `EINTR`: the next connection is taken at once.
//! - `EMFILE`/`ENFILE` (no descriptor for the new socket): the listener holds one reserve
//!   descriptor (`/dev/null`). It closes the reserve, accepts the waiting connection and closes it
//!   at once, so the client sees a close instead of hanging in the backlog, and reopens the
//!   reserve. (At the limit accept fails so even with nothing waiting; that is
//!   [`Accept::Drained`], not a shed connection.) When even that fails, accepting pauses for [`PAUSE`] and is retried then; it never
//!   stops for good.
//! - Any other error (`ENOBUFS`, `ENOMEM`, ...): a pause of [`PAUSE`], then a retry.
//!
//! The connection cap is the caller's: it counts the connections it keeps and closes any accepted
//! over the cap at once, with [`refuse`].

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

/// How long accepting pauses after an error it cannot work around.
pub const PAUSE: Duration = Duration::from_millis(100);

/// One accept attempt's result.
#[derive(Debug)]
pub enum Accept {
    /// A connection, set non-blocking with `TCP_NODELAY`.
    Conn(TcpStream, SocketAddr),
    /// Nothing waiting (the listener fires again when there is).
    Drained,
    /// A connection was taken and dropped for want of descriptors (counted by the caller).
    Shed(io::Error),
    /// Accepting is paused: call [`Listener::accept`] again at this instant (no event comes).
    PausedUntil(Instant, io::Error),
}

/// A listening TCP socket registered with a reactor.
pub struct Listener {
    sock: TcpListener,
    addr: SocketAddr,
    reserve: Option<File>,
    paused_until: Option<Instant>,
}

fn reserve_fd() -> Option<File> {
    File::open("/dev/null").ok()
}

fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Most bytes [`refuse`] reads from a refused client before closing.
const REFUSE_DRAIN: usize = 64 * 1024;

/// Closes a connection the caller will not serve (over its cap): reads what the client has sent
/// so far (without waiting, at most 64 KiB), writes `answer` (one non-blocking write; may be
/// empty), and closes. Closing with input unread would send a reset instead of a FIN, and a client
/// that has sent its request first (ffmpeg, `river-relay watch`) then sees "connection reset by
/// peer", before or instead of the answer.
pub fn refuse(mut sock: TcpStream, answer: &[u8]) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSE_DRAIN {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    if !answer.is_empty() {
        let _ = sock.write(answer);
    }
    let _ = sock.shutdown(std::net::Shutdown::Write);
}

impl Listener {
    /// Binds `addr` (SO_REUSEADDR, backlog 1024) and registers it for readable events on `token`.
    pub fn bind(addr: SocketAddr, registry: &Registry, token: Token) -> io::Result<Listener> {
        Self::register(TcpListener::bind(addr)?, registry, token)
    }

    /// Takes a bound std listener (for example a clone shared by several reactors), makes it
    /// non-blocking and registers it on `token`.
    pub fn adopt(
        sock: std::net::TcpListener,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Listener> {
        sock.set_nonblocking(true)?;
        Self::register(TcpListener::from_std(sock), registry, token)
    }

    fn register(mut sock: TcpListener, registry: &Registry, token: Token) -> io::Result<Listener> {
        registry.register(&mut sock, token, Interest::READABLE)?;
        let addr = sock.local_addr()?;
        Ok(Listener {
            sock,
            addr,
            reserve: reserve_fd(),
            paused_until: None,
        })
    }

    /// Binds the first address `addr` resolves to (`HOST:PORT`).
    pub fn bind_str(addr: &str, registry: &Registry, token: Token) -> io::Result<Listener> {
        let a = resolve(addr)?;
        Self::bind(a, registry, token)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops events for this listener (before dropping it to close the port).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.sock);
    }

    /// Takes the next waiting connection; see the module docs for what errors do.
    pub fn accept(&mut self, now: Instant) -> Accept {
        if let Some(t) = self.paused_until {
            if now < t {
                return Accept::PausedUntil(t, io::Error::other("accept paused"));
            }
            self.paused_until = None;
        }
        loop {
            match self.sock.accept() {
                Ok((s, peer)) => {
                    let _ = s.set_nodelay(true);
                    if self.reserve.is_none() {
                        self.reserve = reserve_fd();
                    }
                    return Accept::Conn(s, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accept::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) if out_of_fds(&e) && self.reserve.is_some() => {
                    self.reserve = None;
                    // accept(2) takes the descriptor before it looks at the queue, so at the
                    // limit it fails with EMFILE even when nothing is waiting: then nothing is
                    // shed and the queue is drained.
                    let shed = self.sock.accept();
                    let empty = matches!(&shed, Err(x) if x.kind() == io::ErrorKind::WouldBlock);
                    drop(shed);
                    self.reserve = reserve_fd();
                    if self.reserve.is_some() {
                        return if empty {
                            Accept::Drained
                        } else {
                            Accept::Shed(e)
                        };
                    }
                    let until = now + PAUSE;
                    self.paused_until = Some(until);
                    return Accept::PausedUntil(until, e);
                }
                Err(e) => {
                    let until = now + PAUSE;
                    self.paused_until = Some(until);
                    return Accept::PausedUntil(until, e);
                }
            }
        }
    }
}

/// Resolves `HOST:PORT` to its first address.
pub fn resolve(addr: &str) -> io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: no address to bind"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Reactor;

    #[test]
    fn accepts_then_drains() {
        let r = Reactor::new().unwrap();
        let mut l = Listener::bind_str("127.0.0.1:0", r.registry(), Token(1)).unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr()).unwrap();
        let t = Instant::now();
        loop {
            match l.accept(Instant::now()) {
                Accept::Conn(_, peer) => {
                    assert!(peer.ip().is_loopback());
                    break;
                }
                Accept::Drained => {
                    assert!(t.elapsed() < Duration::from_secs(5), "no connection");
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(l.accept(Instant::now()), Accept::Drained));
    }

    #[test]
    fn a_bad_address_is_an_error_naming_it() {
        let e = resolve("no-port").unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}
