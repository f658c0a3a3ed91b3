//! A small HTTP client on the caller's reactor: one POST with a deadline (for publish and play
//! hooks). The response parser is [`parse_response`], pure; the socket work goes through
//! [`crate::net`].

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Registry, Token};

use super::chunked::ChunkedDecoder;
use crate::net::conn::Received;
use crate::net::connect::{Connecting, Progress};
use crate::net::{Conn, Reactor};

/// The largest response accepted (head and body).
pub const MAX_RESPONSE: usize = 1 << 20;

/// A response: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Where `parse_response` stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes needed (`eof`: the peer closed, which ends a body without framing).
    More,
    Done(ClientResponse),
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Parses a whole response from `buf`; `eof` says the peer has closed (a body with neither
/// length nor chunking ends there).
pub fn parse_response(buf: &[u8], eof: bool) -> io::Result<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut r = httparse::Response::new(&mut headers);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if eof => {
            return Err(bad("the server closed before the end of the response head"))
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::More),
        Err(e) => return Err(bad(format!("malformed response: {e}"))),
    };
    let status = r.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    for h in r.headers.iter() {
        let v = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| bad("malformed Content-Length in the response"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    let rest = &buf[n..];
    let no_body = status == 204 || status == 304 || (100..200).contains(&status);
    let body = if no_body {
        Vec::new()
    } else if chunked {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        d.push(rest, &mut out).map_err(|e| bad(e.to_string()))?;
        if !d.is_done() {
            return if eof {
                Err(bad("the server closed inside a chunked body"))
            } else {
                Ok(Parsed::More)
            };
        }
        out
    } else if let Some(len) = length {
        if rest.len() < len {
            return if eof {
                Err(bad(format!(
                    "the server closed after {} of {len} body bytes",
                    rest.len()
                )))
            } else {
                Ok(Parsed::More)
            };
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(Parsed::More);
    };
    Ok(Parsed::Done(ClientResponse { status, body }))
}

/// The request bytes of a POST.
pub fn post_request(host: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: river\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

enum State {
    Connecting(Connecting),
    Exchanging(Conn),
    Finished,
}

/// One POST in progress on a reactor. Call [`Post::poll`] after every event on its token and at
/// [`Post::deadline`].
pub struct Post {
    state: State,
    request: Option<Bytes>,
    inbuf: Vec<u8>,
    deadline: Instant,
    peer: SocketAddr,
}

impl Post {
    /// Connects to `peer` and sends `POST path` with `body`; the whole exchange must end by
    /// `deadline`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        peer: SocketAddr,
        host: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
        deadline: Instant,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Post> {
        let c = Connecting::start(peer, deadline, registry, token)?;
        Ok(Post {
            state: State::Connecting(c),
            request: Some(Bytes::from(post_request(host, path, content_type, body))),
            inbuf: Vec::new(),
            deadline,
            peer,
        })
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the exchange on: `None` while it goes on, then the response or an error naming the
    /// peer (including a passed deadline).
    pub fn poll(
        &mut self,
        registry: &Registry,
        now: Instant,
    ) -> Option<io::Result<ClientResponse>> {
        let r = self.step(now);
        if r.is_some() {
            if let State::Exchanging(c) = &mut self.state {
                let _ = registry.deregister(&mut c.sock);
            }
            self.state = State::Finished;
        }
        r
    }

    fn step(&mut self, now: Instant) -> Option<io::Result<ClientResponse>> {
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("POST to {}: no answer before the deadline", self.peer),
            )
        };
        if let State::Connecting(c) = &mut self.state {
            match c.check(now) {
                Ok(Progress::Pending) => return None,
                Ok(Progress::Done(sock)) => {
                    let mut conn = Conn::new(sock, MAX_RESPONSE);
                    if let Some(r) = self.request.take() {
                        conn.out.push_always(r);
                    }
                    self.state = State::Exchanging(conn);
                }
                Err(e) => return Some(Err(e)),
            }
        }
        let State::Exchanging(c) = &mut self.state else {
            return Some(Err(io::Error::other("POST already finished")));
        };
        if let Err(e) = c.flush() {
            return Some(Err(io::Error::new(
                e.kind(),
                format!("POST to {}: {e}", self.peer),
            )));
        }
        let eof = match c.read_into(&mut self.inbuf, MAX_RESPONSE + 1, false) {
            Ok(Received::Eof(_)) => true,
            Ok(_) => false,
            Err(e) => {
                return Some(Err(io::Error::new(
                    e.kind(),
                    format!("POST to {}: {e}", self.peer),
                )))
            }
        };
        if self.inbuf.len() > MAX_RESPONSE {
            return Some(Err(bad(format!("response over {MAX_RESPONSE} bytes"))));
        }
        match parse_response(&self.inbuf, eof) {
            Ok(Parsed::Done(r)) => Some(Ok(r)),
            Ok(Parsed::More) if now >= self.deadline => Some(Err(timed_out())),
            Ok(Parsed::More) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A POST to `url` (`http://host:port/path`) on a reactor of its own, waiting at most `timeout`.
pub fn post(
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<ClientResponse> {
    let u = url::Url::parse(url).map_err(|e| bad(format!("{url}: {e}")))?;
    if u.scheme() != "http" {
        return Err(bad(format!("{url}: only http:// URLs")));
    }
    let host = u.host_str().ok_or_else(|| bad(format!("{url}: no host")))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let peer = crate::net::listener::resolve(&format!("{host}:{port}"))?;
    let mut path = u.path().to_string();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    let deadline = Instant::now() + timeout;
    let mut reactor = Reactor::new()?;
    let token = Token(1);
    let hostport = format!("{host}:{port}");
    let mut p = Post::start(
        peer,
        &hostport,
        &path,
        content_type,
        body,
        deadline,
        reactor.registry(),
        token,
    )?;
    loop {
        let now = reactor.poll(Some(deadline), Duration::from_millis(500))?;
        if let Some(r) = p.poll(reactor.registry(), now) {
            return r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(status: u16, body: &[u8]) -> Parsed {
        Parsed::Done(ClientResponse {
            status,
            body: body.to_vec(),
        })
    }

    #[test]
    fn responses_by_length_chunks_and_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for i in 0..r.len() {
            assert_eq!(parse_response(&r[..i], false).unwrap(), Parsed::More, "{i}");
        }
        assert_eq!(parse_response(r, false).unwrap(), done(200, b"hello"));
        let c = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(parse_response(c, false).unwrap(), done(201, b"ok"));
        let e = b"HTTP/1.0 403 Forbidden\r\n\r\nno";
        assert_eq!(parse_response(e, false).unwrap(), Parsed::More);
        assert_eq!(parse_response(e, true).unwrap(), done(403, b"no"));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab";
        assert!(parse_response(short, true)
            .unwrap_err()
            .to_string()
            .contains("2 of 9"));
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
        let req = post_request("h:1", "/hook", "application/json", b"{}");
        assert!(req.starts_with(b"POST /hook HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(req.ends_with(b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
    }
}
