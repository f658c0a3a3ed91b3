//! The one rule for the names clients give river-relay and river-rtmp-in (user names, channel
//! names, RTMP applications and stream keys) and for passwords, and the one way both are taken out
//! of a URL. Every front uses it: fstream, HTTP, RTMP, RTSP, and river-rtmp-in (`--exec` too).
//!
//! **Names** are 1 to [`MAX_NAME`] bytes of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`,
//! without `..` ([`NAME_RULE`]). A name becomes a file name (`users/<name>.ini`), a path segment
//! of the URLs the hub serves, a label in `/stats` and `/metrics`, part of log lines, and under
//! river-rtmp-in `--exec` an environment variable that commands put in paths and argument lists.
//! The set keeps all of those safe without quoting: no `/` or `\` (a path), no `.` or `..`
//! component and no hidden file, no leading `-` (read as an option), no space, quote or shell
//! character, no control character (a log line stays one line), and ASCII only, so a name has one
//! spelling (no Unicode normalisation question).
//!
//! **Passwords** are at most [`MAX_PASSWORD`] bytes of UTF-8 without control characters; empty
//! means none. A password is only compared (in constant time), never logged and never used as a
//! path, so any printable text is fine. Control characters are refused because they cannot be
//! typed reliably and would break the line-based framing of users files, fstream payloads and RTSP
//! headers; the bound keeps memory and comparisons small.
//!
//! **From URLs** (HTTP paths and queries; RTMP applications, stream names and their queries; RTSP
//! paths and queries): the path is split at `/` and the query at `&` and `=` first, then each
//! piece is percent-decoded exactly once and checked. So `%2F` in a name is a `/` in that name
//! (refused), never a separator; `%252F` decodes to `%2F` (refused: `%`); `+` is a plus, not a
//! space; a `%` not followed by two hex digits is refused. fstream payloads, users files and RTSP
//! `Authorization` headers are not URLs and are taken as they are.

use std::fmt;

/// Longest name, in bytes.
pub const MAX_NAME: usize = 128;
/// Longest password, in bytes.
pub const MAX_PASSWORD: usize = 256;
/// The name rule, as messages state it.
pub const NAME_RULE: &str =
    "1 to 128 bytes of A-Z a-z 0-9 . _ -, not starting with '.' or '-', without '..'";
/// The password rule, as messages state it.
pub const PASSWORD_RULE: &str = "at most 256 bytes of UTF-8 without control characters";

/// Why a name is refused. Offsets count bytes of the name as decoded (for a bad escape, of the
/// name as sent). `Display` names the problem, not the name: callers that may show the name use
/// [`BadName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Its length in bytes.
    TooLong(usize),
    /// A `%` not followed by two hex digits.
    BadEscape(usize),
    NotUtf8(usize),
    /// A character outside the set.
    Char {
        at: usize,
        c: char,
    },
    /// Starts with `.` or `-`.
    Leading(char),
    /// `..` at this offset.
    DotDot(usize),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("it is empty"),
            NameError::TooLong(n) => write!(f, "it is {n} bytes long, over {MAX_NAME}"),
            NameError::BadEscape(at) => write!(f, "malformed percent escape at byte {at}"),
            NameError::NotUtf8(at) => write!(f, "not valid UTF-8 at byte {at}"),
            NameError::Char { at, c } => write!(f, "{c:?} at byte {at}"),
            NameError::Leading(c) => write!(f, "it starts with {c:?}"),
            NameError::DotDot(at) => write!(f, "\"..\" at byte {at}"),
        }
    }
}

impl std::error::Error for NameError {}

/// A refused name with what to show of it: decoded when it decodes, escaped and cut to one short
/// line (a name may be 4 KiB of control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName {
    pub err: NameError,
    pub shown: String,
}

impl BadName {
    pub fn new(name: &[u8], err: NameError) -> Self {
        BadName {
            err,
            shown: shown(name),
        }
    }

    /// `<what> is not allowed: <problem> (names are …)`, for a name that is a secret (a stream
    /// key of river-rtmp-in): the name is not shown.
    pub fn message_hidden(&self, what: &str) -> String {
        format!(
            "{what} is not allowed: {} (names are {NAME_RULE})",
            self.err
        )
    }

    /// `<what> name "…" is not allowed: <problem> (names are …)`, one line.
    pub fn message(&self, what: &str) -> String {
        format!(
            "{what} name {} is not allowed: {} (names are {NAME_RULE})",
            self.shown, self.err
        )
    }
}

/// How many characters of a refused name a message shows.
const SHOWN_CHARS: usize = 40;

/// A name for a message: lossy UTF-8, Rust-escaped (control characters, quotes) and cut after
/// [`SHOWN_CHARS`] characters with the full length said.
pub fn shown(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    match text.char_indices().nth(SHOWN_CHARS) {
        None => format!("{text:?}"),
        Some((i, _)) => format!("{:?}… ({} bytes)", &text[..i], name.len()),
    }
}

/// Checks a name against the rule ([`NAME_RULE`]).
pub fn check_name(s: &str) -> Result<(), NameError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(NameError::Empty);
    }
    if b.len() > MAX_NAME {
        return Err(NameError::TooLong(b.len()));
    }
    if let Some((at, c)) = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::Char { at, c });
    }
    if b[0] == b'.' || b[0] == b'-' {
        return Err(NameError::Leading(char::from(b[0])));
    }
    if let Some(at) = s.find("..") {
        return Err(NameError::DotDot(at));
    }
    Ok(())
}

/// Does `s` follow the name rule?
pub fn valid_name(s: &str) -> bool {
    check_name(s).is_ok()
}

/// Checks a name given as bytes: UTF-8, then the rule.
pub fn check_name_bytes(b: &[u8]) -> Result<&str, NameError> {
    let s = std::str::from_utf8(b).map_err(|e| NameError::NotUtf8(e.valid_up_to()))?;
    check_name(s)?;
    Ok(s)
}

/// A name from a URL (one path segment, or an RTMP application or stream name): percent-decoded
/// once, then checked.
pub fn decode_name(s: &str) -> Result<String, BadName> {
    let raw =
        percent_decode(s).map_err(|at| BadName::new(s.as_bytes(), NameError::BadEscape(at)))?;
    match check_name_bytes(&raw) {
        Ok(name) => Ok(name.to_string()),
        Err(err) => Err(BadName::new(&raw, err)),
    }
}

/// Why a password is refused. Offsets count bytes of the password as decoded (for a bad escape,
/// as sent). `Display` never shows the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    /// Its length in bytes.
    TooLong(usize),
    BadEscape(usize),
    NotUtf8(usize),
    /// A control character at this offset.
    Control(usize),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordError::TooLong(n) => write!(f, "it is {n} bytes long, over {MAX_PASSWORD}"),
            PasswordError::BadEscape(at) => write!(f, "malformed percent escape at byte {at}"),
            PasswordError::NotUtf8(at) => write!(f, "not valid UTF-8 at byte {at}"),
            PasswordError::Control(at) => write!(f, "a control character at byte {at}"),
        }?;
        write!(f, " (passwords are {PASSWORD_RULE})")
    }
}

impl std::error::Error for PasswordError {}

/// Checks a password against the rule ([`PASSWORD_RULE`]); the empty password passes (it means
/// none).
pub fn check_password(s: &str) -> Result<(), PasswordError> {
    if s.len() > MAX_PASSWORD {
        return Err(PasswordError::TooLong(s.len()));
    }
    match s.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, _)) => Err(PasswordError::Control(at)),
        None => Ok(()),
    }
}

/// A password from a URL query: percent-decoded once, then checked.
pub fn decode_password(s: &str) -> Result<String, PasswordError> {
    let raw = percent_decode(s).map_err(PasswordError::BadEscape)?;
    let p =
        String::from_utf8(raw).map_err(|e| PasswordError::NotUtf8(e.utf8_error().valid_up_to()))?;
    check_password(&p)?;
    Ok(p)
}

/// The value, as sent, of the first `key=value` in a URL query (`a=1&b=2`, without the `?`) whose
/// key is exactly `key`: `Some("")` for `key` or `key=`, `None` when absent.
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// The password under `key` in a URL query, decoded ([`decode_password`]); `None` when absent.
pub fn query_password(query: &str, key: &str) -> Option<Result<String, PasswordError>> {
    query_value(query, key).map(decode_password)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes once; `Err(at)` for a `%` at byte `at` not followed by two hex digits.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, usize> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match memchr::memchr(b'%', &b[i..]) {
            None => {
                out.extend_from_slice(&b[i..]);
                break;
            }
            Some(p) => {
                out.extend_from_slice(&b[i..i + p]);
                let at = i + p;
                let digit = |k: usize| b.get(at + k).copied().and_then(hex);
                let (Some(hi), Some(lo)) = (digit(1), digit(2)) else {
                    return Err(at);
                };
                out.push(hi << 4 | lo);
                i = at + 3;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_pass() {
        for n in [
            "fier",
            "exampleChannel",
            "a.b",
            "A-Z_09",
            "_x",
            "9",
            "a.",
            "a-",
            "live_123456789_abcdEFGhijk",
            &"x".repeat(MAX_NAME),
        ] {
            assert_eq!(check_name(n), Ok(()), "{n}");
            assert!(valid_name(n));
        }
    }

    #[test]
    fn names_that_fail_and_why() {
        let c = |at, c| NameError::Char { at, c };
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            (".", NameError::Leading('.')),
            ("..", NameError::Leading('.')),
            (".hidden", NameError::Leading('.')),
            ("-rf", NameError::Leading('-')),
            ("a..b", NameError::DotDot(1)),
            ("a/b", c(1, '/')),
            ("../etc", c(2, '/')),
            ("a\\b", c(1, '\\')),
            ("a b", c(1, ' ')),
            ("a%2fb", c(1, '%')),
            ("ü", c(0, 'ü')),
            ("a?b", c(1, '?')),
            ("a\nb", c(1, '\n')),
            ("a\0", c(1, '\0')),
            ("a\u{7f}", c(1, '\u{7f}')),
            ("a,b", c(1, ',')),
            ("$(x)", c(0, '$')),
        ];
        for (n, want) in cases {
            assert_eq!(check_name(n), Err(*want), "{n:?}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(check_name(&long), Err(NameError::TooLong(MAX_NAME + 1)));
        let kib4 = "a/".repeat(2048);
        assert_eq!(check_name(&kib4), Err(NameError::TooLong(4096)));
        assert_eq!(check_name_bytes(b"ab\xff"), Err(NameError::NotUtf8(2)));
        assert_eq!(check_name_bytes(b"ab"), Ok("ab"));
    }

    #[test]
    fn url_names_are_decoded_exactly_once() {
        assert_eq!(decode_name("cam").unwrap(), "cam");
        assert_eq!(decode_name("%63am").unwrap(), "cam");
        assert_eq!(
            decode_name("a%2Fb").unwrap_err().err,
            NameError::Char { at: 1, c: '/' }
        );
        assert_eq!(
            decode_name("a%2fb").unwrap_err().err,
            NameError::Char { at: 1, c: '/' }
        );
        assert_eq!(
            decode_name("%2E%2E").unwrap_err().err,
            NameError::Leading('.')
        );
        // Twice encoded: once decoded is "%2F", whose '%' is refused.
        assert_eq!(
            decode_name("a%252Fb").unwrap_err().err,
            NameError::Char { at: 1, c: '%' }
        );
        assert_eq!(
            decode_name("a%0Ab").unwrap_err().err,
            NameError::Char { at: 1, c: '\n' }
        );
        assert_eq!(decode_name("%FF").unwrap_err().err, NameError::NotUtf8(0));
        assert_eq!(
            decode_name("a%zz").unwrap_err().err,
            NameError::BadEscape(1)
        );
        assert_eq!(decode_name("a%2").unwrap_err().err, NameError::BadEscape(1));
        assert_eq!(decode_name("a%").unwrap_err().err, NameError::BadEscape(1));
        assert_eq!(
            decode_name("a+b").unwrap_err().err,
            NameError::Char { at: 1, c: '+' }
        );
        assert_eq!(decode_name("").unwrap_err().err, NameError::Empty);
    }

    #[test]
    fn messages_are_one_short_line_and_show_the_decoded_name() {
        let e = decode_name("a%2Fb").unwrap_err();
        assert_eq!(
            e.message("channel"),
            format!("channel name \"a/b\" is not allowed: '/' at byte 1 (names are {NAME_RULE})")
        );
        let e = decode_name(&"%0A".repeat(2000)).unwrap_err();
        let m = e.message("user");
        assert!(!m.contains('\n') && m.len() < 400, "{m}");
        assert!(m.contains("(2000 bytes)"), "{m}");
        assert!(m.contains("\\n\\n"), "{m}");
        let e = decode_name("%FF").unwrap_err();
        assert!(
            e.message("user").contains("not valid UTF-8 at byte 0"),
            "{}",
            e.message("user")
        );
        // A malformed escape shows the name as sent.
        let e = decode_name("a%zz").unwrap_err();
        assert!(e.message("user").starts_with("user name \"a%zz\""));
    }

    #[test]
    fn passwords() {
        for p in ["", "123", "p=q w", "ü€😀", "a,b", &"x".repeat(MAX_PASSWORD)] {
            assert_eq!(check_password(p), Ok(()), "{p:?}");
        }
        assert_eq!(check_password("a\tb"), Err(PasswordError::Control(1)));
        assert_eq!(check_password("a\u{85}"), Err(PasswordError::Control(1)));
        let long = "x".repeat(MAX_PASSWORD + 1);
        assert_eq!(
            check_password(&long),
            Err(PasswordError::TooLong(MAX_PASSWORD + 1))
        );
        assert_eq!(decode_password("a%26b+c").unwrap(), "a&b+c");
        assert_eq!(decode_password("%25").unwrap(), "%");
        assert_eq!(decode_password("50%off"), Err(PasswordError::BadEscape(2)));
        assert_eq!(decode_password("%0D"), Err(PasswordError::Control(0)));
        assert_eq!(decode_password("a%C3"), Err(PasswordError::NotUtf8(1)));
        // The message never holds the password.
        let e = decode_password("secret%0A").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn query_values_are_exact_first_match_as_sent() {
        assert_eq!(query_value("a=1&b=2", "b"), Some("2"));
        assert_eq!(query_value("a=1&a=2", "a"), Some("1"));
        assert_eq!(query_value("a&b=2", "a"), Some(""));
        assert_eq!(query_value("a=", "a"), Some(""));
        assert_eq!(query_value("a=x=y", "a"), Some("x=y"));
        assert_eq!(query_value("a=%41", "a"), Some("%41"));
        assert_eq!(query_value("A=1", "a"), None);
        assert_eq!(query_value("ab=1", "a"), None);
        assert_eq!(query_value("", "a"), None);
        assert_eq!(
            query_password("user-password=%41+", "user-password"),
            Some(Ok("A+".into()))
        );
        assert_eq!(query_password("x=1", "user-password"), None);
        assert_eq!(
            query_password("user-password=%", "user-password"),
            Some(Err(PasswordError::BadEscape(0)))
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2f").unwrap(), b"a b/");
        assert_eq!(percent_decode("%e2%82%AC").unwrap(), "€".as_bytes());
        assert_eq!(percent_decode("100%"), Err(3));
        assert_eq!(percent_decode("%g0"), Err(0));
        assert_eq!(percent_decode("%0"), Err(0));
        assert_eq!(percent_decode("").unwrap(), b"");
    }
}
