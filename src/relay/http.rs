//! The relay's HTTP side, pure: request heads (httparse, bounded), routes, the chunked request-body
//! decoder and response heads. The hub (src/relay/hub.rs) drives these on its mio loop.

use crate::http::path::percent_decode;

/// The largest request head accepted; a larger one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers parsed per request.
const MAX_HEADERS: usize = 48;
/// The longest chunk-size line (with extensions) in a chunked body, and the longest trailer.
const MAX_CHUNK_LINE: usize = 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// Query pairs, percent-decoded (`+` is a space).
    pub query: Vec<(String, String)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub chunked: bool,
    pub content_length: Option<u64>,
}

impl Head {
    /// The first value of a query key.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request head was refused, with its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadError {
    pub status: u16,
    pub message: String,
}

fn bad(status: u16, message: impl Into<String>) -> HeadError {
    HeadError {
        status,
        message: message.into(),
    }
}

fn decode_component(s: &str, plus_is_space: bool) -> Option<String> {
    let s = if plus_is_space {
        s.replace('+', " ")
    } else {
        s.to_string()
    };
    let raw = percent_decode(&s)?;
    let v = String::from_utf8(raw).ok()?;
    (!v.contains('\0')).then_some(v)
}

/// Parses a request head from the start of `buf`: `Ok(None)` means more bytes are needed,
/// `Ok(Some((head, len)))` gives the head and its length in bytes (the body follows).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err(bad(431, format!("request head over {MAX_HEAD} bytes")));
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(bad(431, format!("more than {MAX_HEADERS} headers")))
        }
        Err(e) => return Err(bad(400, format!("malformed request: {e}"))),
    };
    if len > MAX_HEAD {
        return Err(bad(431, format!("request head over {MAX_HEAD} bytes")));
    }
    let method = req.method.unwrap_or("").to_string();
    let target = req.path.unwrap_or("");
    if !target.starts_with('/') {
        return Err(bad(400, "request target is not an absolute path"));
    }
    let (p, q) = target.split_once('?').unwrap_or((target, ""));
    let path =
        decode_component(p, false).ok_or_else(|| bad(400, "malformed percent escape in path"))?;
    let mut query = Vec::new();
    for pair in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k, true).ok_or_else(|| bad(400, "malformed query"))?;
        let v = decode_component(v, true).ok_or_else(|| bad(400, "malformed query"))?;
        query.push((k, v));
    }
    let mut chunked = false;
    let mut content_length = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = std::str::from_utf8(h.value).unwrap_or("");
            if v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
            {
                chunked = true;
            } else {
                return Err(bad(501, format!("transfer-encoding {v:?} not supported")));
            }
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| bad(400, "malformed Content-Length"))?;
            if content_length.is_some_and(|c| c != v) {
                return Err(bad(400, "conflicting Content-Length headers"));
            }
            content_length = Some(v);
        }
    }
    if chunked && content_length.is_some() {
        return Err(bad(400, "both chunked and Content-Length"));
    }
    Ok(Some((
        Head {
            method,
            path,
            query,
            version: req.version.unwrap_or(1),
            chunked,
            content_length,
        },
        len,
    )))
}

/// The container an HTTP watcher asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    Flv,
    Ts,
}

impl Ext {
    pub fn content_type(self) -> &'static str {
        match self {
            Ext::Flv => "video/x-flv",
            Ext::Ts => "video/mp2t",
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/stats` (JSON) or `/stats?format=prometheus` / `/metrics` (Prometheus text).
    Stats {
        prometheus: bool,
    },
    /// `/<user>/<channel>[.flv|.ts]`.
    Stream {
        user: String,
        channel: String,
        ext: Option<Ext>,
    },
    NotFound,
}

/// A user or channel name as the fstream handshake allows it: `[A-Za-z0-9._-]{1,64}`, not starting
/// with `.`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Routes a request head.
pub fn route(head: &Head) -> Route {
    match head.path.as_str() {
        "/stats" => {
            return Route::Stats {
                prometheus: head.param("format") == Some("prometheus"),
            }
        }
        "/metrics" => return Route::Stats { prometheus: true },
        _ => {}
    }
    let rest = &head.path[1..];
    let Some((user, chan)) = rest.split_once('/') else {
        return Route::NotFound;
    };
    let (channel, ext) = if let Some(c) = chan.strip_suffix(".flv") {
        (c, Some(Ext::Flv))
    } else if let Some(c) = chan.strip_suffix(".ts") {
        (c, Some(Ext::Ts))
    } else {
        (chan, None)
    };
    if !valid_name(user) || !valid_name(channel) {
        return Route::NotFound;
    }
    Route::Stream {
        user: user.to_string(),
        channel: channel.to_string(),
        ext,
    }
}

/// A response head. `len` None = close-delimited body (`Connection: close`, no length).
pub fn response_head(status: u16, extra: &[(&str, &str)], len: Option<usize>) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {status} {}\r\nServer: river-relay\r\nAccess-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\nConnection: close\r\n",
        reason(status)
    );
    for (k, v) in extra {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    if let Some(n) = len {
        s.push_str(&format!("Content-Length: {n}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// A whole response with a text body (for errors and small answers); `head_only` for HEAD.
pub fn text_response(status: u16, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut v = response_head(status, &[("Content-Type", content_type)], Some(body.len()));
    if !head_only {
        v.extend_from_slice(body.as_bytes());
    }
    v
}

/// An error response: status and a one-line plain-text reason.
pub fn error_response(status: u16, message: &str) -> Vec<u8> {
    text_response(
        status,
        "text/plain; charset=utf-8",
        &format!("{status} {}: {message}\n", reason(status)),
        false,
    )
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// A push decoder for `Transfer-Encoding: chunked` bodies: the same output under any chunking of
/// the input; every line is bounded.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: CState,
    line: Vec<u8>,
    offset: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum CState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// True after the last chunk and its trailer.
    pub fn is_done(&self) -> bool {
        self.state == CState::Done
    }

    /// Decodes `data`, appending body bytes to `out`. Returns how many input bytes were used
    /// (less than `data.len()` only once done).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                CState::Done => return Ok(i),
                CState::Data(n) => {
                    let take = (n as usize).min(data.len() - i);
                    out.extend_from_slice(&data[i..i + take]);
                    i += take;
                    self.offset += take as u64;
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        CState::DataEnd
                    } else {
                        CState::Data(left)
                    };
                }
                CState::Size | CState::DataEnd | CState::Trailer => {
                    let b = data[i];
                    i += 1;
                    self.offset += 1;
                    if b != b'\n' {
                        if self.line.len() >= MAX_CHUNK_LINE {
                            return Err(format!(
                                "chunked body: line over {MAX_CHUNK_LINE} bytes at byte {}",
                                self.offset
                            ));
                        }
                        self.line.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    match self.state {
                        CState::DataEnd => {
                            if !line.is_empty() {
                                return Err(format!(
                                    "chunked body: missing CRLF after chunk data at byte {}",
                                    self.offset
                                ));
                            }
                            self.state = CState::Size;
                        }
                        CState::Trailer => {
                            if line.is_empty() {
                                self.state = CState::Done;
                            }
                        }
                        _ => {
                            let hexpart = line.split(|&c| c == b';').next().unwrap_or(b"");
                            let s = std::str::from_utf8(hexpart).unwrap_or("").trim();
                            if s.is_empty() || s.len() > 15 {
                                return Err(format!(
                                    "chunked body: bad chunk size line at byte {}",
                                    self.offset
                                ));
                            }
                            let n = u64::from_str_radix(s, 16).map_err(|_| {
                                format!(
                                    "chunked body: bad chunk size {s:?} at byte {}",
                                    self.offset
                                )
                            })?;
                            self.state = if n == 0 {
                                CState::Trailer
                            } else {
                                CState::Data(n)
                            };
                        }
                    }
                }
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_routes() {
        let r = b"POST /live/stream1?user-password=a%20b+c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nBODY";
        let (h, n) = parse_head(r).unwrap().unwrap();
        assert_eq!(&r[n..], b"BODY");
        assert_eq!(h.method, "POST");
        assert!(h.chunked);
        assert_eq!(h.param("user-password"), Some("a b c"));
        assert_eq!(
            route(&h),
            Route::Stream {
                user: "live".into(),
                channel: "stream1".into(),
                ext: None
            }
        );
        let (h, _) = parse_head(b"GET /fier/cam.ts?password=x HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.version, 0);
        assert_eq!(
            route(&h),
            Route::Stream {
                user: "fier".into(),
                channel: "cam".into(),
                ext: Some(Ext::Ts)
            }
        );
        let (h, _) = parse_head(b"GET /stats?format=prometheus HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(route(&h), Route::Stats { prometheus: true });
        for p in ["/", "/a", "/a/b/c.flv", "/../x.flv", "/.a/b.flv", "/a/.flv"] {
            let req = format!("GET {p} HTTP/1.1\r\n\r\n");
            let (h, _) = parse_head(req.as_bytes()).unwrap().unwrap();
            assert_eq!(route(&h), Route::NotFound, "{p}");
        }
    }

    #[test]
    fn bad_heads() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
        assert_eq!(
            parse_head(b"\x00\x01garbage\r\n\r\n").unwrap_err().status,
            400
        );
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_head(&big).unwrap_err().status, 431);
        assert_eq!(
            parse_head(b"GET /%zz HTTP/1.1\r\n\r\n").unwrap_err().status,
            400
        );
        assert_eq!(
            parse_head(b"POST /a/b HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn chunked_any_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let want = b"hello 0123456789".to_vec();
        for step in 1..body.len() {
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let mut used = 0;
            for part in body.chunks(step) {
                used += d.push(part, &mut out).unwrap();
            }
            assert!(d.is_done());
            assert_eq!(out, want, "step {step}");
            assert_eq!(&body[used..], b"NEXT");
        }
        let mut d = ChunkedDecoder::new();
        assert!(d.push(b"zz\r\n", &mut Vec::new()).is_err());
        let mut d = ChunkedDecoder::new();
        assert!(d.push(&[b'1'; 2000], &mut Vec::new()).is_err());
        let mut d = ChunkedDecoder::new();
        assert!(d.push(b"2\r\nabX\r\n", &mut Vec::new()).is_err());
    }
}
