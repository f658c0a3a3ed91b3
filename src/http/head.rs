//! Request heads, pure: bytes in, a [`Head`] or a refusal with its status out.
//!
//! Limits ([`Limits`]): a request line longer than `max_line` is refused with 414, a head longer
//! than `max_head` or with more than `max_headers` fields with 431, anything httparse rejects with
//! 400. The checks look at the bytes buffered so far, so a client that trickles an endless line
//! is refused as soon as it passes the limit, not when it ends.

use super::path::percent_decode;

/// Size limits for request heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The request line, without its CRLF.
    pub max_line: usize,
    /// The whole head, request line and fields, with the blank line.
    pub max_head: usize,
    /// Header fields.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 4 * 1024,
            max_head: 8 * 1024,
            max_headers: 48,
        }
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target as sent (not decoded).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in order; names as sent, values lossily UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body's framing.
    pub body: BodyFraming,
    /// The client allows the connection to stay open after the response (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The path, percent-decoded, without query or fragment; `None` when it is not UTF-8, holds
    /// NUL or a bad escape.
    pub fn path(&self) -> Option<String> {
        let end = self.target.find(['?', '#']).unwrap_or(self.target.len());
        decode_component(&self.target[..end], false)
    }

    /// Query pairs, percent-decoded with `+` as a space; `None` on a malformed escape.
    pub fn query(&self) -> Option<Vec<(String, String)>> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Some(Vec::new());
        };
        let q = q.split('#').next().unwrap_or("");
        let mut out = Vec::new();
        for pair in q.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((decode_component(k, true)?, decode_component(v, true)?));
        }
        Some(out)
    }
}

/// Decodes one URL component (`%XX`; `+` as a space when asked) to UTF-8 without NUL.
pub fn decode_component(s: &str, plus_is_space: bool) -> Option<String> {
    let raw = if plus_is_space {
        percent_decode(&s.replace('+', " "))?
    } else {
        percent_decode(s)?
    };
    let v = String::from_utf8(raw).ok()?;
    (!v.contains('\0')).then_some(v)
}

/// Why a head was refused: the status to answer with and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Parses a head from the start of `buf`: `Ok(None)` means more bytes are needed, `Ok(Some((head,
/// len)))` gives the head and its length (the body, if any, follows).
pub fn parse(buf: &[u8], lim: &Limits) -> Result<Option<(Head, usize)>, Refusal> {
    // Empty lines before a request line are allowed (RFC 9112 section 2.2) and skipped by httparse;
    // the line limit applies to the request line itself.
    let lead = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let line_end = memchr::memchr(b'\n', &buf[lead..]);
    let line_len = line_end.unwrap_or(buf.len() - lead);
    if line_len > lim.max_line {
        return Err(refuse(
            414,
            format!("request line over {} bytes", lim.max_line),
        ));
    }
    let mut headers = vec![httparse::EMPTY_HEADER; lim.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > lim.max_head {
                return Err(refuse(
                    431,
                    format!("request head over {} bytes", lim.max_head),
                ));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                431,
                format!("more than {} header fields", lim.max_headers),
            ))
        }
        Err(e) => return Err(refuse(400, format!("malformed request: {e}"))),
    };
    if len > lim.max_head {
        return Err(refuse(
            431,
            format!("request head over {} bytes", lim.max_head),
        ));
    }
    let version = req.version.unwrap_or(1);
    let mut head = Head {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("").to_string(),
        version,
        headers: Vec::with_capacity(req.headers.len()),
        body: BodyFraming::None,
        keep_alive: version >= 1,
    };
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        let v = String::from_utf8_lossy(h.value).into_owned();
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
            {
                chunked = true;
            } else {
                return Err(refuse(
                    501,
                    format!("transfer-encoding {v:?} not supported"),
                ));
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = v
                .trim()
                .parse::<u64>()
                .map_err(|_| refuse(400, "malformed Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(refuse(400, "conflicting Content-Length fields"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in v.split(',').map(str::trim) {
                if t.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if t.eq_ignore_ascii_case("keep-alive") && version == 0 {
                    head.keep_alive = true;
                }
            }
        }
        head.headers.push((h.name.to_string(), v));
    }
    head.body = match (chunked, length) {
        (true, Some(_)) => return Err(refuse(400, "both chunked and Content-Length")),
        (true, None) => BodyFraming::Chunked,
        (false, None) => BodyFraming::None,
        (false, Some(n)) => BodyFraming::Length(n),
    };
    Ok(Some((head, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<(Head, usize)>, Refusal> {
        parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn a_whole_head_and_its_length() {
        let raw =
            "GET /live/a%20b.ts?x=1&y=a+b HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\nBODY";
        let (h, n) = p(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 4);
        assert_eq!((h.method.as_str(), h.version), ("GET", 1));
        assert_eq!(h.target, "/live/a%20b.ts?x=1&y=a+b");
        assert_eq!(h.path().as_deref(), Some("/live/a b.ts"));
        assert_eq!(
            h.query().unwrap(),
            [("x".into(), "1".into()), ("y".into(), "a b".into())]
        );
        assert_eq!(h.header("range"), Some("bytes=0-1"));
        assert!(h.keep_alive);
        assert_eq!(h.body, BodyFraming::None);
    }

    #[test]
    fn every_split_needs_more_until_the_blank_line() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        for i in 0..raw.len() {
            assert_eq!(parse(&raw[..i], &Limits::default()), Ok(None), "at {i}");
        }
        assert!(parse(raw, &Limits::default()).unwrap().is_some());
    }

    #[test]
    fn keep_alive_by_version_and_connection() {
        let ka = |s: &str| p(s).unwrap().unwrap().0.keep_alive;
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n"
        ));
    }

    #[test]
    fn bodies() {
        let b = |s: &str| p(s).unwrap().unwrap().0.body;
        assert_eq!(
            b("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            BodyFraming::Length(5)
        );
        assert_eq!(
            b("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            BodyFraming::Length(0)
        );
        assert_eq!(
            b("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            BodyFraming::Chunked
        );
        let st = |s: &str| p(s).unwrap_err().status;
        assert_eq!(st("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), 400);
        assert_eq!(
            st("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            st("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            st("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
    }

    #[test]
    fn limits() {
        let lim = Limits {
            max_line: 64,
            max_head: 256,
            max_headers: 4,
        };
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(parse(long_target.as_bytes(), &lim).unwrap_err().status, 414);
        // Refused before the line ends.
        let partial = format!("GET /{}", "a".repeat(100));
        assert_eq!(parse(partial.as_bytes(), &lim).unwrap_err().status, 414);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "v".repeat(300));
        assert_eq!(parse(big.as_bytes(), &lim).unwrap_err().status, 431);
        let many = "GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n";
        assert_eq!(parse(many.as_bytes(), &lim).unwrap_err().status, 431);
        assert_eq!(
            p("GET / HTTP/1.1\r\nBad Header\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(p("\u{1}GET / HTTP/1.1\r\n\r\n").unwrap_err().status, 400);
        let ok = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40));
        assert!(parse(ok.as_bytes(), &lim).unwrap().is_some());
    }

    #[test]
    fn bad_targets_decode_to_none() {
        let h = |t: &str| p(&format!("GET {t} HTTP/1.1\r\n\r\n")).unwrap().unwrap().0;
        assert_eq!(h("/a%zz").path(), None);
        assert_eq!(h("/a%00").path(), None);
        assert_eq!(h("/a?k=%zz").query(), None);
    }
}
