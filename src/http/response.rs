//! Response heads and the representation decisions, pure: status lines, framing, `Date`,
//! entity tags, and what to send for `If-None-Match`, `If-Range` and `Range`.

use std::fmt::Write as _;

use super::range::{parse_range, ByteRange};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n` (also on HEAD and 304, where no body follows).
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 streams).
    Chunked,
    /// No length: the body ends when the connection closes (HTTP/1.0 streams).
    Close,
    /// No body and no length field (204).
    NoBody,
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// A response head: status line, `fields` in order, the framing fields, and `Connection: close`
/// when the connection ends after this response (or `keep-alive` for an HTTP/1.0 client that
/// asked for it).
pub fn write_head(
    version: u8,
    status: u16,
    fields: &[(&str, &str)],
    framing: Framing,
    keep_alive: bool,
) -> Vec<u8> {
    let mut s = String::with_capacity(256);
    let _ = write!(s, "HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in fields {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    match framing {
        Framing::Length(n) => {
            let _ = write!(s, "Content-Length: {n}\r\n");
        }
        Framing::Chunked => s.push_str("Transfer-Encoding: chunked\r\n"),
        Framing::Close | Framing::NoBody => {}
    }
    if !keep_alive || framing == Framing::Close {
        s.push_str("Connection: close\r\n");
    } else if version == 0 {
        s.push_str("Connection: keep-alive\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The line before one chunk of a chunked body (`{len:x}\r\n`); the chunk and `\r\n` follow.
pub fn chunk_prefix(len: usize) -> Vec<u8> {
    format!("{len:x}\r\n").into_bytes()
}

/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for seconds since the Unix epoch.
pub fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A strong entity tag for a file version: inode, length and modification time in nanoseconds.
/// A file replaced by rename (how river writes playlists) gets a new inode and so a new tag.
pub fn file_etag(ino: u64, len: u64, mtime_ns: i128) -> String {
    format!("\"{ino:x}-{len:x}-{mtime_ns:x}\"")
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, RFC 9110 section 13.1.2).
pub fn none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = bare(etag);
    header
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == want)
}

/// What to send for a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// 200 with the whole body.
    Full,
    /// 206 with `Content-Range: bytes start-end/len`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
    /// 304, no body.
    NotModified,
}

/// The request fields that shape a 200 answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    pub if_none_match: Option<&'a str>,
    pub if_range: Option<&'a str>,
    pub range: Option<&'a str>,
}

/// Decides the answer for a GET or HEAD of a representation with tag `etag` (if any) and `len`
/// bytes; `ranges` says whether the resource serves byte ranges at all.
///
/// `If-None-Match` first (a match is 304). `If-Range` must equal the tag exactly (a strong
/// comparison; a date never matches, since no `Last-Modified` is sent): otherwise the range is
/// ignored and the whole body goes. Then one `Range` ([`parse_range`]).
pub fn select(c: &Conditions<'_>, etag: Option<&str>, len: u64, ranges: bool) -> Selected {
    if let (Some(h), Some(t)) = (c.if_none_match, etag) {
        if none_match(h, t) {
            return Selected::NotModified;
        }
    }
    if !ranges {
        return Selected::Full;
    }
    if let Some(ir) = c.if_range {
        if etag.is_none_or(|t| ir.trim() != t || t.starts_with("W/")) {
            return Selected::Full;
        }
    }
    match parse_range(c.range, len) {
        ByteRange::Full => Selected::Full,
        ByteRange::Partial { start, end } => Selected::Partial { start, end },
        ByteRange::Unsatisfiable => Selected::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_framing() {
        let h = write_head(1, 200, &[("A", "b")], Framing::Length(5), true);
        assert_eq!(h, b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 5\r\n\r\n");
        let h = write_head(1, 404, &[], Framing::Length(0), false);
        assert_eq!(
            h,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let h = write_head(0, 200, &[], Framing::Length(1), true);
        assert!(h.ends_with(b"Connection: keep-alive\r\n\r\n"));
        let h = write_head(1, 200, &[], Framing::Chunked, true);
        assert!(h.ends_with(b"Transfer-Encoding: chunked\r\n\r\n"));
        let h = write_head(0, 200, &[], Framing::Close, true);
        assert!(h.ends_with(b"\r\nConnection: close\r\n\r\n"));
        assert_eq!(chunk_prefix(255), b"ff\r\n");
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_767_225_599), "Wed, 31 Dec 2025 23:59:59 GMT");
    }

    #[test]
    fn etags_and_if_none_match() {
        let t = file_etag(0x12, 0x34, 0x56);
        assert_eq!(t, "\"12-34-56\"");
        assert!(none_match("\"12-34-56\"", &t));
        assert!(none_match("\"x\", W/\"12-34-56\"", &t));
        assert!(none_match("*", &t));
        assert!(!none_match("\"12-34-57\"", &t));
    }

    #[test]
    fn selection() {
        let tag = Some("\"t\"");
        let c = |inm, ir, r| Conditions {
            if_none_match: inm,
            if_range: ir,
            range: r,
        };
        assert_eq!(select(&c(None, None, None), tag, 10, true), Selected::Full);
        assert_eq!(
            select(&c(Some("\"t\""), None, Some("bytes=0-1")), tag, 10, true),
            Selected::NotModified
        );
        assert_eq!(
            select(&c(Some("\"u\""), None, Some("bytes=0-1")), tag, 10, true),
            Selected::Partial { start: 0, end: 1 }
        );
        assert_eq!(
            select(&c(None, Some("\"t\""), Some("bytes=2-")), tag, 10, true),
            Selected::Partial { start: 2, end: 9 }
        );
        // A stale If-Range or a date: the whole body.
        assert_eq!(
            select(&c(None, Some("\"old\""), Some("bytes=2-")), tag, 10, true),
            Selected::Full
        );
        assert_eq!(
            select(
                &c(
                    None,
                    Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                    Some("bytes=2-")
                ),
                tag,
                10,
                true
            ),
            Selected::Full
        );
        assert_eq!(
            select(&c(None, None, Some("bytes=10-")), tag, 10, true),
            Selected::Unsatisfiable
        );
        assert_eq!(
            select(&c(None, None, Some("bytes=0-1")), tag, 10, false),
            Selected::Full
        );
        assert_eq!(
            select(&c(Some("\"t\""), None, None), None, 10, true),
            Selected::Full
        );
    }
}
