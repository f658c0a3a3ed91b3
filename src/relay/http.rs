//! The relay's HTTP requests, pure: the hub's view of a request head and its routes. The
//! connections, limits and responses are the HTTP layer's ([`crate::http::server`]); the hub's
//! front is `relay/front/http.rs`.
//!
//! Names and passwords come out of the URL as [`crate::proto::names`] rules it for every front:
//! the path is split at `/` and the query at `&` and `=` as sent, then each piece is
//! percent-decoded once and checked (`/fier/a%2Fb.flv` names the channel `a/b`, refused).

use crate::http::head::{self, BodyFraming, Limits};
use crate::proto::names::{self, BadName, PasswordError};

/// The largest request head accepted; a larger one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers parsed per request.
const MAX_HEADERS: usize = 48;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The path as sent (not decoded), without the query.
    pub path: String,
    /// The query as sent (not decoded), without the `?`; empty when none.
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    pub chunked: bool,
    pub content_length: Option<u64>,
}

impl Head {
    /// The first value of a query key, as sent ([`names::query_value`]).
    pub fn param(&self, key: &str) -> Option<&str> {
        names::query_value(&self.query, key)
    }

    /// A password from the query, decoded and checked ([`names::query_password`]).
    pub fn password(&self, key: &str) -> Option<Result<String, PasswordError>> {
        names::query_password(&self.query, key)
    }

    /// The user a push names: the first path segment, decoded and checked. A push authenticates
    /// with it before anything else of the request is looked at.
    pub fn push_user(&self) -> Result<String, BadName> {
        let rest = self.path.strip_prefix('/').unwrap_or(&self.path);
        names::decode_name(rest.split('/').next().unwrap_or(""))
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
    Ok(Some((from_head(h)?, len)))
}

/// The hub's view of a head the HTTP layer parsed: path and query split, not decoded.
pub fn from_head(h: head::Head) -> Result<Head, HeadError> {
    if !h.target.starts_with('/') {
        return Err(bad(400, "request target is not an absolute path"));
    }
    let target = h.target.split('#').next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let (chunked, content_length) = match h.body {
        BodyFraming::None => (false, None),
        BodyFraming::Length(n) => (false, Some(n)),
        BodyFraming::Chunked => (true, None),
    };
    Ok(Head {
        method: h.method,
        path,
        query,
        version: h.version,
        chunked,
        content_length,
    })
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
    /// `/mpegts.js` and `/mpegts.js.LICENSE.txt`, for the player pages.
    Asset(Asset),
    /// `/<user>/<channel>[.flv|.ts]` (without an extension: a push, or the player page).
    Stream {
        user: String,
        channel: String,
        ext: Option<Ext>,
    },
    /// `/<user>/<channel>/<file>`: a playlist, segment, part or init segment of the channel's
    /// HLS (`serve --hls`, `relay::hls`); `file` follows the name rule.
    Hls {
        user: String,
        channel: String,
        file: String,
    },
    /// `/<user>/<channel>[.flv|.ts]` where a name breaks the rule: why, one line.
    BadName(String),
    NotFound,
}

/// A file the hub serves from its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    MpegtsJs,
    MpegtsJsLicense,
    /// hls.js, for the HLS player pages.
    HlsJs,
}

/// The methods a route answers, for `Allow` and CORS preflights; `None` for no resource.
pub fn allowed_methods(route: &Route) -> Option<&'static str> {
    match route {
        Route::Stats { .. } | Route::Asset(_) => Some("GET, HEAD, OPTIONS"),
        Route::Stream { .. } => Some("GET, HEAD, POST, PUT, OPTIONS"),
        Route::Hls { .. } => Some("GET, HEAD, OPTIONS"),
        Route::BadName(_) | Route::NotFound => None,
    }
}

/// The longest `Access-Control-Request-Headers` echoed in a preflight answer.
const MAX_REQUEST_HEADERS: usize = 1024;

/// The fields of a `204` answer to `OPTIONS` on a resource that answers `methods`, beside the
/// base fields every response carries (`Access-Control-Allow-Origin: *`). A CORS preflight
/// (Fetch standard, "CORS-preflight fetch") passes when these allow its method
/// (`Access-Control-Request-Method`) and every header it names in `Access-Control-Request-Headers`:
/// that list is echoed when it is a list of header names (the `*` wildcard does not cover
/// `Authorization`, and older browsers do not know it), and a Private Network Access preflight
/// (`Access-Control-Request-Private-Network: true`, a public page asking a LAN address) is
/// allowed. Browsers cache the answer for `Access-Control-Max-Age` seconds.
pub fn preflight(
    methods: &'static str,
    request_headers: Option<&str>,
    private_network: bool,
) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("Allow", methods.to_string()),
        ("Access-Control-Allow-Methods", methods.to_string()),
        ("Access-Control-Max-Age", "86400".to_string()),
    ];
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if let Some(h) = request_headers.map(str::trim) {
        // Names and the commas and blanks between them, nothing else (no line break can reach
        // the answer).
        if !h.is_empty()
            && h.len() <= MAX_REQUEST_HEADERS
            && h.bytes()
                .all(|b| token(b) || matches!(b, b',' | b' ' | b'\t'))
            && h.split(',')
                .map(str::trim)
                .all(|n| !n.is_empty() && n.bytes().all(token))
        {
            f.push(("Access-Control-Allow-Headers", h.to_string()));
        }
    }
    if private_network {
        f.push(("Access-Control-Allow-Private-Network", "true".to_string()));
    }
    f
}

/// Routes a request head. The path is split at `/` first; then each segment is decoded once and
/// the channel's `.flv` or `.ts` taken off before its name is checked.
pub fn route(head: &Head) -> Route {
    match names::percent_decode(&head.path).as_deref() {
        Ok(b"/stats") => {
            return Route::Stats {
                prometheus: head.param("format") == Some("prometheus"),
            }
        }
        Ok(b"/metrics") => return Route::Stats { prometheus: true },
        Ok(b"/mpegts.js") => return Route::Asset(Asset::MpegtsJs),
        Ok(b"/mpegts.js.LICENSE.txt") => return Route::Asset(Asset::MpegtsJsLicense),
        Ok(b"/hls.min.js") => return Route::Asset(Asset::HlsJs),
        _ => {}
    }
    let rest = head.path.strip_prefix('/').unwrap_or(&head.path);
    let Some((user, chan)) = rest.split_once('/') else {
        return Route::NotFound;
    };
    if let Some((chan, file)) = chan.split_once('/') {
        return hls_route(user, chan, file);
    }
    let user = match names::decode_name(user) {
        Ok(u) => u,
        Err(e) => return Route::BadName(e.message("user")),
    };
    let chan_bytes = match names::percent_decode(chan) {
        Ok(b) => b,
        Err(at) => {
            let shown = [".flv", ".ts"]
                .iter()
                .find_map(|x| chan.strip_suffix(x))
                .unwrap_or(chan);
            let e = BadName::new(shown.as_bytes(), names::NameError::BadEscape(at));
            return Route::BadName(e.message("channel"));
        }
    };
    let (channel, ext) = if let Some(c) = chan_bytes.strip_suffix(b".flv") {
        (c, Some(Ext::Flv))
    } else if let Some(c) = chan_bytes.strip_suffix(b".ts") {
        (c, Some(Ext::Ts))
    } else {
        (&chan_bytes[..], None)
    };
    match names::check_name_bytes(channel) {
        Ok(c) => Route::Stream {
            user,
            channel: c.to_string(),
            ext,
        },
        Err(e) => Route::BadName(BadName::new(channel, e).message("channel")),
    }
}

/// `/<user>/<channel>/<file>`: every segment decoded once and checked by the name rule.
fn hls_route(user: &str, chan: &str, file: &str) -> Route {
    if file.contains('/') {
        return Route::NotFound;
    }
    let mut names = [("user", user), ("channel", chan), ("file", file)]
        .into_iter()
        .map(|(what, raw)| names::decode_name(raw).map_err(|e| e.message(what)));
    let mut next = || names.next().expect("three names");
    match (next(), next(), next()) {
        (Ok(user), Ok(channel), Ok(file)) => Route::Hls {
            user,
            channel,
            file,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Route::BadName(e),
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
        assert_eq!(h.param("user-password"), Some("a%20b+c"));
        assert_eq!(h.password("user-password"), Some(Ok("a b+c".into())));
        assert_eq!(h.push_user().unwrap(), "live");
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
        for p in ["/", "/a", "/a/b/c/d.m3u8"] {
            let req = format!("GET {p} HTTP/1.1\r\n\r\n");
            let (h, _) = parse_head(req.as_bytes()).unwrap().unwrap();
            assert_eq!(route(&h), Route::NotFound, "{p}");
        }
    }

    #[test]
    fn hls_files_are_under_the_channel() {
        assert_eq!(
            route_of("/fier/cam/index.m3u8?password=x&_HLS_msn=3"),
            Route::Hls {
                user: "fier".into(),
                channel: "cam".into(),
                file: "index.m3u8".into()
            }
        );
        assert_eq!(
            route_of("/fier/c%61m/ll-1-p7.m4s"),
            Route::Hls {
                user: "fier".into(),
                channel: "cam".into(),
                file: "ll-1-p7.m4s".into()
            }
        );
        for (target, want) in [
            ("/fier/cam/", "file name \"\" is not allowed"),
            ("/fier/cam/..", "file name \"..\" is not allowed"),
            ("/fier/cam/a%2Fb.ts", "file name \"a/b.ts\" is not allowed"),
            ("/fi%2Fer/cam/index.m3u8", "user name \"fi/er\""),
            ("/fier/c..am/index.m3u8", "channel name \"c..am\""),
        ] {
            match route_of(target) {
                Route::BadName(m) => assert!(m.contains(want), "{target}: {m}"),
                r => panic!("{target}: {r:?}"),
            }
        }
        assert_eq!(
            allowed_methods(&route_of("/a/b/c.ts")),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(route_of("/hls.min.js"), Route::Asset(Asset::HlsJs));
    }

    fn route_of(target: &str) -> Route {
        let req = format!("GET {target} HTTP/1.1\r\n\r\n");
        route(&parse_head(req.as_bytes()).unwrap().unwrap().0)
    }

    #[test]
    fn names_are_split_then_decoded_once_then_checked() {
        let stream = |u: &str, c: &str, ext| Route::Stream {
            user: u.into(),
            channel: c.into(),
            ext,
        };
        assert_eq!(
            route_of("/fier/%63am.flv"),
            stream("fier", "cam", Some(Ext::Flv))
        );
        assert_eq!(
            route_of("/fier/cam%2Eflv"),
            stream("fier", "cam", Some(Ext::Flv))
        );
        assert_eq!(route_of("/st%61ts"), Route::Stats { prometheus: false });
        for (target, want) in [
            (
                "/../x.flv",
                "user name \"..\" is not allowed: it starts with '.'",
            ),
            ("/.a/b.flv", "user name \".a\""),
            ("/a/.flv", "channel name \"\" is not allowed: it is empty"),
            ("//x.flv", "user name \"\" is not allowed: it is empty"),
            (
                "/fier/a%2Fb.flv",
                "channel name \"a/b\" is not allowed: '/' at byte 1",
            ),
            ("/fier%2Fcam.flv", "NOT FOUND"),
            (
                "/fier/a%252Fb.ts",
                "channel name \"a%2Fb\" is not allowed: '%' at byte 1",
            ),
            ("/fier/a%0Ab.flv", "'\\n' at byte 1"),
            (
                "/fier/%FF.flv",
                "channel name \"\u{fffd}\" is not allowed: not valid UTF-8 at byte 0",
            ),
            (
                "/fier/a%zz.flv",
                "channel name \"a%zz\" is not allowed: malformed percent escape at byte 1",
            ),
            ("/a..b/c.ts", "\"..\" at byte 1"),
            ("/-a/c.ts", "it starts with '-'"),
        ] {
            match route_of(target) {
                Route::BadName(m) => assert!(m.contains(want), "{target}: {m}"),
                Route::NotFound => assert_eq!(want, "NOT FOUND", "{target}"),
                r => panic!("{target}: {r:?}"),
            }
        }
        let long = format!("/fier/{}.flv", "x".repeat(4096));
        let Route::BadName(m) = route_of(&long) else {
            panic!("4 KiB name accepted")
        };
        assert!(m.contains("4096 bytes long") && m.len() < 300, "{m}");
    }

    #[test]
    fn assets_and_preflights() {
        let get = |p: &str| {
            let req = format!("GET {p} HTTP/1.1\r\n\r\n");
            route(&parse_head(req.as_bytes()).unwrap().unwrap().0)
        };
        assert_eq!(get("/mpegts.js"), Route::Asset(Asset::MpegtsJs));
        assert_eq!(
            get("/mpegts.js.LICENSE.txt"),
            Route::Asset(Asset::MpegtsJsLicense)
        );
        assert_eq!(get("/mpegts.js.map"), Route::NotFound);
        assert_eq!(allowed_methods(&get("/stats")), Some("GET, HEAD, OPTIONS"));
        let page = get("/fier/cam?format=ts");
        assert_eq!(
            allowed_methods(&page),
            Some("GET, HEAD, POST, PUT, OPTIONS")
        );
        assert_eq!(allowed_methods(&get("/nothing")), None);

        let f = preflight("GET, HEAD, OPTIONS", Some("range, x-player"), true);
        let field = |n: &str| f.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(field("Allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(
            field("Access-Control-Allow-Methods"),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(
            field("Access-Control-Allow-Headers"),
            Some("range, x-player")
        );
        assert_eq!(field("Access-Control-Max-Age"), Some("86400"));
        assert_eq!(field("Access-Control-Allow-Private-Network"), Some("true"));
        // Not a list of header names, or none asked: no Allow-Headers, and no private network
        // unless asked.
        for bad in [
            None,
            Some(""),
            Some("a b"),
            Some("a,,b"),
            Some("x\u{7f}"),
            Some("a,\r\nSet-Cookie: x"),
            Some("a,\nb"),
        ] {
            let f = preflight("GET", bad, false);
            assert!(
                f.iter()
                    .all(|(k, _)| !k.starts_with("Access-Control-Allow-Headers")
                        && *k != "Access-Control-Allow-Private-Network"),
                "{bad:?}: {f:?}"
            );
        }
        let long = vec!["x"; 600].join(",");
        assert!(preflight("GET", Some(&long), false)
            .iter()
            .all(|(k, _)| *k != "Access-Control-Allow-Headers"));
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
            parse_head(b"POST /a/b HTTP/1.1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
    }
}
