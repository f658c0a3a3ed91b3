//! Outbound TCP connects: non-blocking, with a deadline, on the caller's reactor.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

/// A connect in progress. Register-and-wait: the socket turns writable when the handshake ends
/// (either way); [`Connecting::check`] then says which.
pub struct Connecting {
    sock: Option<TcpStream>,
    peer: SocketAddr,
    deadline: Instant,
}

/// Where a connect stands.
pub enum Progress {
    /// Still connecting: wait for the next event or the deadline.
    Pending,
    /// Connected; the socket stays registered (readable and writable) on the same token.
    Done(TcpStream),
}

impl Connecting {
    /// Starts connecting to `peer` and registers the socket on `token`; `deadline` bounds the
    /// whole handshake.
    pub fn start(
        peer: SocketAddr,
        deadline: Instant,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Connecting> {
        let mut sock = TcpStream::connect(peer)?;
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Connecting {
            sock: Some(sock),
            peer,
            deadline,
        })
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// After an event on the token, or at the deadline (`now`): connected, still pending, or an
    /// error naming the peer (refused, unreachable, timed out).
    pub fn check(&mut self, now: Instant) -> io::Result<Progress> {
        let Some(sock) = self.sock.as_ref() else {
            return Err(io::Error::other("connect already finished"));
        };
        if let Some(e) = sock.take_error()? {
            return Err(io::Error::new(
                e.kind(),
                format!("connect to {}: {e}", self.peer),
            ));
        }
        match sock.peer_addr() {
            Ok(_) => Ok(Progress::Done(self.sock.take().expect("checked above"))),
            Err(e)
                if e.kind() == io::ErrorKind::NotConnected
                    || e.raw_os_error() == Some(libc::EINPROGRESS) =>
            {
                if now >= self.deadline {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {}: no answer before the deadline", self.peer),
                    ))
                } else {
                    Ok(Progress::Pending)
                }
            }
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("connect to {}: {e}", self.peer),
            )),
        }
    }
}
