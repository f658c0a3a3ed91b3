//! RTSP 1.0 messages on a TCP stream: a push parser for requests and interleaved `$` frames
//! (RFC 2326 10.12), and a response writer.

use bytes::{Bytes, BytesMut};

/// Largest request line plus header block, in bytes (the blank line included).
pub const MAX_HEADER: usize = 16 * 1024;
/// Largest request body (an SDP from ANNOUNCE, a SET_PARAMETER body).
pub const MAX_BODY: usize = 64 * 1024;
/// Most header lines in one request.
pub const MAX_HEADERS: usize = 64;

/// An RTSP method. Unknown methods are kept by name (the session answers them 501).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Options,
    Describe,
    Announce,
    Setup,
    Play,
    Pause,
    Record,
    Teardown,
    GetParameter,
    SetParameter,
    Other(String),
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "OPTIONS" => Method::Options,
            "DESCRIBE" => Method::Describe,
            "ANNOUNCE" => Method::Announce,
            "SETUP" => Method::Setup,
            "PLAY" => Method::Play,
            "PAUSE" => Method::Pause,
            "RECORD" => Method::Record,
            "TEARDOWN" => Method::Teardown,
            "GET_PARAMETER" => Method::GetParameter,
            "SET_PARAMETER" => Method::SetParameter,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method's name as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Announce => "ANNOUNCE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Record => "RECORD",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::Other(s) => s,
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request URI as sent (`rtsp://host:port/path`, or `*`).
    pub uri: String,
    /// Header lines in order, names as sent; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Stream offset of the request line.
    pub offset: u64,
}

impl Request {
    /// The first header of that name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<&str> {
        self.header("CSeq")
    }

    /// The URI's path, without scheme, authority, query and trailing slash: `rtsp://h:1/a/b?x`
    /// gives `/a/b`. `None` when the URI is neither absolute `rtsp://` / `rtsps://` nor a path.
    pub fn path(&self) -> Option<&str> {
        uri_path(&self.uri)
    }
}

/// The path part of an RTSP URI (see [`Request::path`]).
pub fn uri_path(uri: &str) -> Option<&str> {
    let rest = if let Some(r) = uri
        .strip_prefix("rtsp://")
        .or_else(|| uri.strip_prefix("rtsps://"))
        .or_else(|| uri.strip_prefix("rtspu://"))
    {
        match r.find('/') {
            Some(i) => &r[i..],
            None => "/",
        }
    } else if uri.starts_with('/') {
        uri
    } else {
        return None;
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = rest.trim_end_matches('/');
    Some(if rest.is_empty() { "/" } else { rest })
}

/// What the parser yields, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    /// An interleaved binary frame: `$`, channel, 16-bit length, data.
    Interleaved {
        channel: u8,
        data: Bytes,
    },
}

/// A request that cannot be parsed. The stream cannot be resynchronised after one: answer with
/// `status` (echoing `cseq` when it was found) and close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: u64,
    /// 400 malformed, 413 body too large, 431 header block too large, 505 version.
    pub status: u16,
    pub cseq: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte offset {})", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Push parser for the client-to-server direction of an RTSP connection. Buffers at most one
/// message (bounded by [`MAX_HEADER`] + [`MAX_BODY`], or 4 + 65535 for an interleaved frame).
#[derive(Debug, Default)]
pub struct Reader {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    /// How far the search for the end of the header block got.
    scanned: usize,
    /// Header block parsed, waiting for this many body bytes.
    pending: Option<(Request, usize)>,
    failed: Option<ParseError>,
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes consumed and parsed so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Part of a message has arrived, not all of it (a request head waiting for its body
    /// counts).
    pub fn mid_message(&self) -> bool {
        !self.buf.is_empty() || self.pending.is_some()
    }

    /// Feeds bytes; appends complete messages. After an error every later call returns it again.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Message>) -> Result<(), ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(data);
        let r = self.parse(out);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
        }
        r
    }

    fn consume(&mut self, n: usize) -> Bytes {
        self.offset += n as u64;
        self.scanned = 0;
        self.buf.split_to(n).freeze()
    }

    fn parse(&mut self, out: &mut Vec<Message>) -> Result<(), ParseError> {
        loop {
            if let Some((_, need)) = &self.pending {
                let need = *need;
                if self.buf.len() < need {
                    return Ok(());
                }
                let body = self.consume(need);
                let (mut req, _) = self.pending.take().expect("pending");
                req.body = body;
                out.push(Message::Request(req));
                continue;
            }
            let Some(&first) = self.buf.first() else {
                return Ok(());
            };
            match first {
                b'$' => {
                    if self.buf.len() < 4 {
                        return Ok(());
                    }
                    let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                    if self.buf.len() < 4 + len {
                        return Ok(());
                    }
                    let channel = self.buf[1];
                    self.consume(4);
                    let data = self.consume(len);
                    out.push(Message::Interleaved { channel, data });
                }
                // Stray line ends between messages (some clients send CRLF keepalives).
                b'\r' | b'\n' => {
                    self.consume(1);
                }
                _ => {
                    let Some(end) = self.find_header_end() else {
                        if self.buf.len() > MAX_HEADER {
                            return Err(self.error(
                                431,
                                None,
                                format!(
                                    "expected a request header block of at most {MAX_HEADER} bytes, found more without a blank line"
                                ),
                            ));
                        }
                        return Ok(());
                    };
                    let offset = self.offset;
                    let head = self.consume(end);
                    let (req, body_len) = parse_head(&head, offset)?;
                    self.pending = Some((req, body_len));
                }
            }
        }
    }

    /// Index just past the blank line ending the header block (CRLF CRLF, or bare LF LF), if the
    /// buffer holds it within [`MAX_HEADER`].
    fn find_header_end(&mut self) -> Option<usize> {
        let lim = self.buf.len().min(MAX_HEADER);
        let start = self.scanned.saturating_sub(3);
        let b = &self.buf[..lim];
        let mut i = start;
        while i < lim {
            if b[i] == b'\n' {
                if i >= 1 && b[i - 1] == b'\n' {
                    return Some(i + 1);
                }
                if i >= 2 && b[i - 1] == b'\r' && b[i - 2] == b'\n' {
                    return Some(i + 1);
                }
            }
            i += 1;
        }
        self.scanned = lim;
        None
    }

    fn error(&self, status: u16, cseq: Option<String>, message: String) -> ParseError {
        ParseError {
            offset: self.offset,
            status,
            cseq,
            message,
        }
    }
}

fn parse_head(head: &[u8], offset: u64) -> Result<(Request, usize), ParseError> {
    let text = std::str::from_utf8(head);
    let cseq = text.ok().and_then(find_cseq);
    let err = |status: u16, message: String| ParseError {
        offset,
        status,
        cseq: cseq.clone(),
        message,
    };
    let text = text.map_err(|e| {
        err(
            400,
            format!(
                "expected a UTF-8 request header, found an invalid byte at {}",
                e.valid_up_to()
            ),
        )
    })?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ').filter(|p| !p.is_empty());
    let (method, uri, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some(v), None) => (m, u, v),
        _ => {
            return Err(err(
                400,
                format!(
                    "expected a request line 'METHOD URI RTSP/1.0', found {:?}",
                    truncate(request_line)
                ),
            ))
        }
    };
    if method.is_empty()
        || !method
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c == b'_' || c.is_ascii_digit() || c == b'-')
    {
        return Err(err(
            400,
            format!("expected a method name, found {:?}", truncate(method)),
        ));
    }
    if uri.bytes().any(|c| c.is_ascii_control()) {
        return Err(err(
            400,
            "expected a request URI without control characters".into(),
        ));
    }
    if !version.starts_with("RTSP/") {
        return Err(err(
            400,
            format!("expected version RTSP/1.0, found {:?}", truncate(version)),
        ));
    }
    if version != "RTSP/1.0" {
        return Err(err(
            505,
            format!("expected version RTSP/1.0, found {:?}", truncate(version)),
        ));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: continues the previous header's value.
            let Some(last) = headers.last_mut() else {
                return Err(err(
                    400,
                    "expected a header line, found a continuation".into(),
                ));
            };
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(err(
                400,
                format!("expected 'Name: value', found {:?}", truncate(line)),
            ));
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&c))
        {
            return Err(err(
                400,
                format!("expected a header name, found {:?}", truncate(name)),
            ));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(err(
                431,
                format!("expected at most {MAX_HEADERS} header lines, found more"),
            ));
        }
        if value.bytes().any(|c| c.is_ascii_control() && c != b'\t') {
            return Err(err(
                400,
                format!("expected a header value without control characters in {name}"),
            ));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let req = Request {
        method: Method::parse(method),
        uri: uri.to_string(),
        headers,
        body: Bytes::new(),
        offset,
    };
    if req.cseq().is_none() {
        return Err(err(400, "expected a CSeq header, found none".into()));
    }
    let body_len = match req.header("Content-Length") {
        None => 0,
        Some(v) => {
            let n: u64 = v.parse().map_err(|_| {
                err(
                    400,
                    format!("expected a Content-Length number, found {:?}", truncate(v)),
                )
            })?;
            if n > MAX_BODY as u64 {
                return Err(err(
                    413,
                    format!(
                        "expected a body of at most {MAX_BODY} bytes, found Content-Length {n}"
                    ),
                ));
            }
            n as usize
        }
    };
    Ok((req, body_len))
}

fn find_cseq(text: &str) -> Option<String> {
    text.split('\n').skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        let v = v.trim();
        (n.trim().eq_ignore_ascii_case("cseq") && !v.is_empty() && v.len() <= 20)
            .then(|| v.to_string())
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Reason phrase for the status codes river sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        460 => "Only Aggregate Operation Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        _ => "Error",
    }
}

/// A response under construction. `Server`, `CSeq` and `Content-Length` are written by
/// [`Response::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push(("Content-Type".to_string(), content_type.to_string()));
        self.body = body.into();
        self
    }

    /// Serialises the response, echoing `cseq`.
    pub fn write(&self, cseq: Option<&str>, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        if let Some(c) = cseq {
            let _ = write!(out, "CSeq: {c}\r\n");
        }
        let _ = write!(out, "Server: river/{}\r\n", env!("CARGO_PKG_VERSION"));
        for (n, v) in &self.headers {
            let _ = write!(out, "{n}: {v}\r\n");
        }
        if !self.body.is_empty() {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// Writes an interleaved frame header (`$`, channel, length) followed by `data`.
pub fn write_interleaved(channel: u8, data: &[u8], out: &mut Vec<u8>) {
    let len = data.len().min(usize::from(u16::MAX));
    out.push(b'$');
    out.push(channel);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&data[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn parse_all(input: &[u8], sizes: &[usize]) -> (Vec<Message>, Option<ParseError>) {
        let mut r = Reader::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let n = sizes[i % sizes.len()].max(1).min(input.len() - pos);
            if let Err(e) = r.push(&input[pos..pos + n], &mut out) {
                return (out, Some(e));
            }
            pos += n;
            i += 1;
        }
        (out, None)
    }

    const SAMPLE: &[u8] = b"OPTIONS rtsp://127.0.0.1:8554/live/cam RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: Lavf59.27.100\r\n\r\n\
$\x00\x00\x03abc\
ANNOUNCE rtsp://127.0.0.1:8554/live/cam RTSP/1.0\r\nContent-Type: application/sdp\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nv=0\r\n\
$\x01\x00\x00\
\r\nTEARDOWN rtsp://h/live/cam RTSP/1.0\nCSeq: 3\nSession:  abc \n\n";

    #[test]
    fn parses_requests_and_interleaved_under_any_chunking() {
        let (want, err) = parse_all(SAMPLE, &[SAMPLE.len()]);
        assert!(err.is_none());
        assert_eq!(want.len(), 5);
        match &want[0] {
            Message::Request(r) => {
                assert_eq!(r.method, Method::Options);
                assert_eq!(r.cseq(), Some("1"));
                assert_eq!(r.path(), Some("/live/cam"));
                assert_eq!(r.header("user-agent"), Some("Lavf59.27.100"));
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            want[1],
            Message::Interleaved {
                channel: 0,
                data: Bytes::from_static(b"abc")
            }
        );
        match &want[2] {
            Message::Request(r) => {
                assert_eq!(r.method, Method::Announce);
                assert_eq!(&r.body[..], b"v=0\r\n");
            }
            m => panic!("{m:?}"),
        }
        match &want[4] {
            Message::Request(r) => {
                assert_eq!(r.method, Method::Teardown);
                assert_eq!(r.header("session"), Some("abc"));
            }
            m => panic!("{m:?}"),
        }
        for n in 1..SAMPLE.len() {
            let (got, err) = parse_all(SAMPLE, &[n]);
            assert!(err.is_none());
            assert_eq!(got, want, "chunk size {n}");
        }
        let (got, _) = parse_all(SAMPLE, &[1, 7, 2, 30, 3]);
        assert_eq!(got, want);
    }

    fn first_error(input: &[u8]) -> ParseError {
        let (_, e) = parse_all(input, &[input.len()]);
        e.expect("an error")
    }

    #[test]
    fn malformed_requests_are_400() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"OPTIONS * HTTP/1.1\r\nCSeq: 1\r\n\r\n",
            b"OPTIONS *\r\nCSeq: 1\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nCSeq 1\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: x\r\n\r\n",
            b"options * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: \xff\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\n continued\r\nCSeq: 1\r\n\r\n",
        ] {
            let e = first_error(bad);
            assert_eq!(e.status, 400, "{:?}: {e}", String::from_utf8_lossy(bad));
        }
        let e = first_error(b"OPTIONS * RTSP/2.0\r\nCSeq: 7\r\n\r\n");
        assert_eq!((e.status, e.cseq.as_deref()), (505, Some("7")));
        let e = first_error(b"OPTIONS * HTTP/1.1\r\nCSeq: 9\r\n\r\n");
        assert_eq!(e.cseq.as_deref(), Some("9"));
    }

    #[test]
    fn oversized_is_refused() {
        let mut big = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
        while big.len() <= MAX_HEADER + 10 {
            big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (_, e) = parse_all(&big, &[100]);
        assert_eq!(e.unwrap().status, 431);
        let mut many = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
        for _ in 0..MAX_HEADERS {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(first_error(&many).status, 431);
        let e =
            first_error(b"ANNOUNCE * RTSP/1.0\r\nCSeq: 4\r\nContent-Length: 99999999999\r\n\r\n");
        assert_eq!((e.status, e.cseq.as_deref()), (413, Some("4")));
        // Errors stick.
        let mut r = Reader::new();
        let mut out = vec![];
        assert!(r.push(b"BAD\r\n\r\n", &mut out).is_err());
        assert!(r
            .push(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", &mut out)
            .is_err());
    }

    #[test]
    fn uri_paths() {
        assert_eq!(uri_path("rtsp://h:554/a/b/"), Some("/a/b"));
        assert_eq!(uri_path("rtsp://h"), Some("/"));
        assert_eq!(uri_path("rtsp://u:p@h/a?x=1"), Some("/a"));
        assert_eq!(uri_path("*"), None);
        assert_eq!(uri_path("/x"), Some("/x"));
    }

    #[test]
    fn response_writer() {
        let mut out = Vec::new();
        Response::new(200)
            .header("Public", "OPTIONS")
            .body("application/sdp", b"v=0\r\n".to_vec())
            .write(Some("3"), &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 3\r\n"));
        assert!(s.ends_with("Content-Length: 5\r\n\r\nv=0\r\n"));
        let mut out = Vec::new();
        write_interleaved(3, b"xy", &mut out);
        assert_eq!(out, b"$\x03\x00\x02xy");
    }
}
