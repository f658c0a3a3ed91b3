//! Outbound TCP connects: non-blocking, with a deadline, on the caller's reactor.
//!
//! Two forms: [`Connecting`] holds the socket until it is connected (the HTTP client's POST), and
//! [`start`] with [`finished`] leave the socket with a caller that keeps it in its own connection
//! type from the start (the relay hub's pulls and pushes, [`crate::net::Conn`]).

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

/// Starts connecting to `peer` and registers the socket on `token` (readable and writable); ask
/// [`finished`] after each event on the token and at the deadline.
pub fn start(peer: SocketAddr, registry: &Registry, token: Token) -> io::Result<TcpStream> {
    let mut sock = TcpStream::connect(peer)?;
    registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok(sock)
}

/// Has the connect of `sock` to `peer` finished? `Ok(true)`: connected; `Ok(false)`: still
/// pending at `now`; an error names the peer (refused, unreachable, or no answer by `deadline`).
pub fn finished(
    sock: &TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    now: Instant,
) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(io::Error::new(e.kind(), format!("connect to {peer}: {e}")));
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e)
            if e.kind() == io::ErrorKind::NotConnected
                || e.raw_os_error() == Some(libc::EINPROGRESS) =>
        {
            if now >= deadline {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {peer}: no answer before the deadline"),
                ))
            } else {
                Ok(false)
            }
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("connect to {peer}: {e}"))),
    }
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
        Ok(Connecting {
            sock: Some(start(peer, registry, token)?),
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
        if finished(sock, self.peer, self.deadline, now)? {
            Ok(Progress::Done(self.sock.take().expect("checked above")))
        } else {
            Ok(Progress::Pending)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Reactor;
    use std::time::Duration;

    #[test]
    fn connects_and_reports_a_refusal_naming_the_peer() {
        let mut r = Reactor::new().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = l.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let s = start(peer, r.registry(), Token(1)).unwrap();
        loop {
            let now = r.poll(Some(deadline), Duration::from_millis(100)).unwrap();
            if finished(&s, peer, deadline, now).unwrap() {
                break;
            }
        }
        drop(l);
        // Nothing listens there now: refused, and the error names the address.
        let s = start(peer, r.registry(), Token(2)).unwrap();
        let e = loop {
            let now = r.poll(Some(deadline), Duration::from_millis(100)).unwrap();
            match finished(&s, peer, deadline, now) {
                Ok(false) => {}
                Ok(true) => panic!("connected to a closed port"),
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains(&peer.to_string()), "{e}");
    }
}
