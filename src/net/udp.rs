//! The UDP pair for RTP and RTCP: two sockets on neighbouring ports.

use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::UdpSocket;

/// Binds the pair on `ip`: `port` and `port + 1`, or (port 0) a free even/odd pair, falling
/// back to any two free ports when no even/odd pair comes up in 64 tries.
pub fn bind_pair(ip: IpAddr, port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
    let at = |p: u16| SocketAddr::new(ip, p);
    if port != 0 {
        let next = port.checked_add(1).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "RTSP UDP port 65535 has no RTCP port",
            )
        })?;
        return Ok((UdpSocket::bind(at(port))?, UdpSocket::bind(at(next))?));
    }
    for _ in 0..64 {
        let a = UdpSocket::bind(at(0))?;
        let p = a.local_addr()?.port();
        if p % 2 != 0 || p == u16::MAX {
            continue;
        }
        if let Ok(b) = UdpSocket::bind(at(p + 1)) {
            return Ok((a, b));
        }
    }
    // No even/odd pair came up: any two ports (server_port names both).
    Ok((UdpSocket::bind(at(0))?, UdpSocket::bind(at(0))?))
}

/// Receives one datagram; `Ok(None)` when none is waiting. `EINTR` retries.
pub fn recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    loop {
        return match sock.recv_from(buf) {
            Ok(x) => Ok(Some(x)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Sends one datagram; `Ok(false)` when the socket's buffer is full (its next writable event
/// says when to try again). `EINTR` retries.
pub fn send(sock: &UdpSocket, data: &[u8], to: SocketAddr) -> io::Result<bool> {
    loop {
        return match sock.send_to(data, to) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_pair_is_even_and_odd_or_two_ports() {
        let (a, b) = bind_pair("127.0.0.1".parse().unwrap(), 0).unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        assert_ne!(pa, pb);
        let e = bind_pair("127.0.0.1".parse().unwrap(), 65535).unwrap_err();
        assert!(e.to_string().contains("65535"), "{e}");
    }
}
