//! The relay's HTTP side, pure: request heads (httparse, bounded), routes, the chunked request-body
//! decoder and response heads. The hub (src/relay/hub.rs) drives these on its mio loop.

pub use crate::http::chunked::ChunkedDecoder;
use crate::http::head::{self, BodyFraming, Limits};
pub use crate::http::response::reason;

/// The largest request head accepted; a larger one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers parsed per request.
const MAX_HEADERS: usize = 48;

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

/// Parses a request head from the start of `buf` with the shared parser ([`crate::http::head`]):
/// `Ok(None)` means more bytes are needed, `Ok(Some((head, len)))` gives the head and its length
/// in bytes (the body follows).
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let lim = Limits {
        max_line: MAX_HEAD,
        max_head: MAX_HEAD,
        max_headers: MAX_HEADERS,
    };
    let (h, len) = match head::parse(buf, &lim) {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(None),
        Err(r) => return Err(bad(r.status, r.message)),
    };
    if !h.target.starts_with('/') {
        return Err(bad(400, "request target is not an absolute path"));
    }
    let path = h
        .path()
        .ok_or_else(|| bad(400, "malformed percent escape in path"))?;
    let query = h.query().ok_or_else(|| bad(400, "malformed query"))?;
    let (chunked, content_length) = match h.body {
        BodyFraming::None => (false, None),
        BodyFraming::Length(n) => (false, Some(n)),
        BodyFraming::Chunked => (true, None),
    };
    Ok(Some((
        Head {
            method: h.method,
            path,
            query,
            version: h.version,
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

/// An error response: status and a one-line plain-text reason (any displayable error, so a typed
/// one such as the chunked decoder's [`crate::error::Diag`] goes in as it is).
pub fn error_response(status: u16, message: &(impl std::fmt::Display + ?Sized)) -> Vec<u8> {
    text_response(
        status,
        "text/plain; charset=utf-8",
        &format!("{status} {}: {message}\n", reason(status)),
        false,
    )
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
}
