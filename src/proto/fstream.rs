//! The fstream handshake: what a client sends before its media (fstream.py's wire format).
//!
//! A client connects over TCP and sends `\n\n`, the payload length as a 4-byte big-endian unsigned
//! integer, one 0x00 byte, then the UTF-8 payload, for example
//! `broadcast,user=fier,user-password=123,channel=exampleChannel,channel-password=456` or
//! `watch,user=fier,channel=exampleChannel,channel-password=123`.
//!
//! [`Handshake`] is a push parser: it consumes exactly the handshake and nothing after it, so a
//! broadcaster's first media bytes, which may arrive in the same read, stay with the caller.
//! Every refusal is a [`HandshakeError`] naming the byte offset (from the first byte of the
//! connection) where the problem is. The deadline ([`HANDSHAKE_TIMEOUT`]) is the caller's to enforce,
//! since time is the caller's.
//!
//! Rules, stricter than fstream.py where fstream.py would crash or misbehave:
//! - the payload length is 1..=[`MAX_PAYLOAD`];
//! - the payload is UTF-8 without control characters;
//! - the first field is the role (`broadcast` or `watch`), then `key=value` fields (the value is
//!   everything after the first `=` and may be empty), no key twice;
//! - `user` is required; `user` and `channel` are names, and `user-password` and
//!   `channel-password` passwords, as [`crate::proto::names`] rules them for every front (a payload
//!   is not a URL: nothing in it is percent-decoded);
//! - `channel` defaults to `default`; an empty or absent `channel-password` means no password;
//! - `bufsize` is a decimal number of bytes up to [`MAX_BUFSIZE`];
//! - unknown keys are kept in [`Request::extra`].
//!
//! Values cannot contain `,` (the protocol has no escaping).

use std::fmt;
use std::time::Duration;

use super::names::{check_name, check_password, BadName};

/// Largest payload accepted (the length field's cap).
pub const MAX_PAYLOAD: usize = 4096;
/// How long a client may take to send its whole handshake; enforced by the hub.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What every handshake starts with.
pub const MAGIC: &[u8; 2] = b"\n\n";
/// Bytes before the payload: magic, length, the 0x00 byte.
pub const PREFIX_LEN: usize = 7;
/// Largest `bufsize` accepted.
pub const MAX_BUFSIZE: usize = 16 << 20;
/// The channel a request names when it names none.
pub const DEFAULT_CHANNEL: &str = "default";

/// What the client wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Send a stream to the hub.
    Broadcast,
    /// Receive a stream from the hub.
    Watch,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Broadcast => "broadcast",
            Role::Watch => "watch",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed handshake payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub role: Role,
    pub user: String,
    /// `user-password` (a broadcaster's credential).
    pub user_password: Option<String>,
    /// `channel`, [`DEFAULT_CHANNEL`] when absent.
    pub channel: String,
    /// `channel-password`; `None` = no password (absent or empty).
    pub channel_password: Option<String>,
    /// `bufsize`: the client's chunk size hint.
    pub bufsize: Option<usize>,
    /// Keys this parser does not know, in order.
    pub extra: Vec<(String, String)>,
}

/// Why a handshake was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeError {
    /// Byte offset from the start of the connection where the problem is.
    pub offset: u64,
    /// One line, lower case.
    pub message: String,
}

impl HandshakeError {
    fn new(offset: u64, message: impl Into<String>) -> Self {
        HandshakeError {
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad fstream handshake: {} (at byte offset {})",
            self.message, self.offset
        )
    }
}

impl std::error::Error for HandshakeError {}

impl Request {
    /// A request with the defaults: channel `default`, no passwords, no bufsize.
    pub fn new(role: Role, user: impl Into<String>) -> Self {
        Request {
            role,
            user: user.into(),
            user_password: None,
            channel: DEFAULT_CHANNEL.to_string(),
            channel_password: None,
            bufsize: None,
            extra: Vec::new(),
        }
    }

    /// Parses a payload such as `watch,user=fier,channel=c`. Error offsets are relative to the
    /// payload's first byte.
    pub fn parse_payload(s: &str) -> Result<Request, HandshakeError> {
        if let Some((i, c)) = s.char_indices().find(|(_, c)| c.is_control()) {
            return Err(HandshakeError::new(
                i as u64,
                format!("control character {:?} in the payload", c),
            ));
        }
        let mut fields = s.split(',');
        let role_s = fields.next().unwrap_or("");
        let role = match role_s {
            "broadcast" => Role::Broadcast,
            "watch" => Role::Watch,
            other => {
                return Err(HandshakeError::new(
                    0,
                    format!(
                        "unknown role {:?}: expected \"broadcast\" or \"watch\"",
                        truncate(other)
                    ),
                ))
            }
        };
        let mut user = None;
        let mut user_password = None;
        let mut channel = None;
        let mut channel_password = None;
        let mut bufsize = None;
        let mut extra: Vec<(String, String)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut at = role_s.len() + 1;
        for field in fields {
            let here = at as u64;
            at += field.len() + 1;
            let Some((k, v)) = field.split_once('=') else {
                return Err(HandshakeError::new(
                    here,
                    format!("field {:?} is not key=value", truncate(field)),
                ));
            };
            if k.is_empty() {
                return Err(HandshakeError::new(
                    here,
                    format!("field {:?} has an empty key", truncate(field)),
                ));
            }
            if seen.contains(&k) {
                return Err(HandshakeError::new(
                    here,
                    format!("key {:?} given twice", truncate(k)),
                ));
            }
            seen.push(k);
            let at = here + k.len() as u64 + 1;
            let name = |what: &str| -> Result<String, HandshakeError> {
                match check_name(v) {
                    Ok(()) => Ok(v.to_string()),
                    Err(e) => Err(HandshakeError::new(
                        at,
                        BadName::new(v.as_bytes(), e).message(what),
                    )),
                }
            };
            let password = |what: &str| -> Result<String, HandshakeError> {
                match check_password(v) {
                    Ok(()) => Ok(v.to_string()),
                    Err(e) => Err(HandshakeError::new(at, format!("{what} not allowed: {e}"))),
                }
            };
            match k {
                "user" => user = Some(name("user")?),
                "channel" => channel = Some(name("channel")?),
                "user-password" => user_password = Some(password("user-password")?),
                "channel-password" => {
                    channel_password = Some(password("channel-password")?).filter(|p| !p.is_empty())
                }
                "bufsize" => match v.parse::<usize>() {
                    Ok(n) if n <= MAX_BUFSIZE => bufsize = Some(n),
                    _ => {
                        return Err(HandshakeError::new(
                            here + k.len() as u64 + 1,
                            format!(
                                "bufsize {:?} is not a number of bytes up to {MAX_BUFSIZE}",
                                truncate(v)
                            ),
                        ))
                    }
                },
                _ => extra.push((k.to_string(), v.to_string())),
            }
        }
        let Some(user) = user else {
            return Err(HandshakeError::new(0, "no user= in the payload"));
        };
        Ok(Request {
            role,
            user,
            user_password,
            channel: channel.unwrap_or_else(|| DEFAULT_CHANNEL.to_string()),
            channel_password,
            bufsize,
            extra,
        })
    }

    /// The payload text, as fstream.py's command line takes it. The channel is always written.
    pub fn to_payload(&self) -> String {
        let mut s = format!("{},user={}", self.role, self.user);
        if let Some(p) = &self.user_password {
            s.push_str(",user-password=");
            s.push_str(p);
        }
        s.push_str(",channel=");
        s.push_str(&self.channel);
        if let Some(p) = &self.channel_password {
            s.push_str(",channel-password=");
            s.push_str(p);
        }
        if let Some(n) = self.bufsize {
            s.push_str(&format!(",bufsize={n}"));
        }
        for (k, v) in &self.extra {
            s.push(',');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }

    /// The whole handshake on the wire: `\n\n`, u32 BE length, 0x00, payload.
    pub fn encode(&self) -> Vec<u8> {
        encode_payload(&self.to_payload())
    }
}

/// Frames any payload text as a handshake (used by the clients for fstream.py-style command lines).
pub fn encode_payload(payload: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(PREFIX_LEN + payload.len());
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload.as_bytes());
    v
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Push parser for one handshake.
#[derive(Debug, Default)]
pub struct Handshake {
    /// The prefix bytes, then the payload bytes, as they arrive.
    buf: Vec<u8>,
    /// Payload length, once the length field is complete.
    len: Option<usize>,
    /// Set once complete or failed: further pushes are refused.
    state: State,
}

#[derive(Debug, Default, Clone)]
enum State {
    #[default]
    Reading,
    Done,
    Failed(HandshakeError),
}

impl Handshake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Feeds bytes. `Ok(Some((request, n)))` once complete, where `n` is how many bytes of THIS
    /// `data` the handshake used; `data[n..]` belongs to the stream. `Ok(None)`: all of `data` was
    /// used and more is needed. After an error or completion, further pushes are refused.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        match &self.state {
            State::Reading => {}
            State::Done => {
                return Err(HandshakeError::new(
                    self.position(),
                    "handshake already complete",
                ))
            }
            State::Failed(e) => return Err(e.clone()),
        }
        let r = self.push_inner(data);
        match &r {
            Err(e) => self.state = State::Failed(e.clone()),
            Ok(Some(_)) => self.state = State::Done,
            Ok(None) => {}
        }
        r
    }

    fn push_inner(&mut self, data: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        let mut used = 0;
        // The fixed prefix, checked byte by byte so garbage is refused at once.
        while self.buf.len() < PREFIX_LEN && used < data.len() {
            let b = data[used];
            let pos = self.buf.len();
            match pos {
                0 | 1 if b != b'\n' => {
                    return Err(HandshakeError::new(
                        pos as u64,
                        format!("expected \"\\n\\n\" to start the handshake, got byte 0x{b:02x}"),
                    ))
                }
                6 if b != 0 => {
                    return Err(HandshakeError::new(
                        pos as u64,
                        format!("expected the 0x00 byte after the length, got 0x{b:02x}"),
                    ))
                }
                _ => {}
            }
            self.buf.push(b);
            used += 1;
            if self.buf.len() == 6 {
                let n = u32::from_be_bytes([self.buf[2], self.buf[3], self.buf[4], self.buf[5]])
                    as usize;
                if n == 0 {
                    return Err(HandshakeError::new(2, "payload length 0"));
                }
                if n > MAX_PAYLOAD {
                    return Err(HandshakeError::new(
                        2,
                        format!("payload length {n} exceeds the limit of {MAX_PAYLOAD} bytes"),
                    ));
                }
                self.len = Some(n);
            }
        }
        let Some(len) = self.len else {
            return Ok(None);
        };
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let need = PREFIX_LEN + len - self.buf.len();
        let take = need.min(data.len() - used);
        self.buf.extend_from_slice(&data[used..used + take]);
        used += take;
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        let payload = &self.buf[PREFIX_LEN..];
        let text = std::str::from_utf8(payload).map_err(|e| {
            HandshakeError::new(
                (PREFIX_LEN + e.valid_up_to()) as u64,
                "payload is not valid UTF-8",
            )
        })?;
        let req = Request::parse_payload(text).map_err(|e| HandshakeError {
            offset: e.offset + PREFIX_LEN as u64,
            message: e.message,
        })?;
        Ok(Some((req, used)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::names;

    fn parse_all(bytes: &[u8]) -> Result<Option<(Request, usize)>, HandshakeError> {
        Handshake::new().push(bytes)
    }

    fn err(bytes: &[u8]) -> HandshakeError {
        match parse_all(bytes) {
            Err(e) => e,
            Ok(r) => panic!("expected a refusal, got {r:?}"),
        }
    }

    fn raw(len: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = b"\n\n".to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.push(0);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_the_readme_examples() {
        let p = "broadcast,user=fier,user-password=123,channel=exampleChannel,channel-password=456";
        let (r, n) = parse_all(&encode_payload(p)).unwrap().unwrap();
        assert_eq!(n, 7 + p.len());
        assert_eq!(r.role, Role::Broadcast);
        assert_eq!(r.user, "fier");
        assert_eq!(r.user_password.as_deref(), Some("123"));
        assert_eq!(r.channel, "exampleChannel");
        assert_eq!(r.channel_password.as_deref(), Some("456"));
        assert_eq!(r.bufsize, None);
        let r = Request::parse_payload("watch,user=fier").unwrap();
        assert_eq!(r.role, Role::Watch);
        assert_eq!(r.channel, "default");
        assert_eq!(r.channel_password, None);
        assert_eq!(r.user_password, None);
    }

    #[test]
    fn round_trips_through_encode() {
        let mut r = Request::new(Role::Broadcast, "ann");
        r.user_password = Some("p=q w".into());
        r.channel = "cam-1".into();
        r.channel_password = Some("x".into());
        r.bufsize = Some(4096);
        r.extra.push(("note".into(), "hi".into()));
        let (back, n) = parse_all(&r.encode()).unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(n, r.encode().len());
    }

    #[test]
    fn bytes_after_the_handshake_are_not_consumed() {
        let mut v = encode_payload("broadcast,user=a,user-password=b");
        let hs_len = v.len();
        v.extend_from_slice(b"FLV\x01media...");
        let (_, n) = parse_all(&v).unwrap().unwrap();
        assert_eq!(n, hs_len);
        assert_eq!(&v[n..], b"FLV\x01media...");
    }

    #[test]
    fn same_result_under_any_chunking() {
        let mut v = encode_payload("watch,user=fier,channel=c,channel-password=ü");
        let hs_len = v.len();
        v.extend_from_slice(b"tail");
        let whole = parse_all(&v).unwrap().unwrap().0;
        for a in 0..=v.len() {
            for b in a..=v.len() {
                let mut h = Handshake::new();
                let mut done = None;
                let mut base = 0;
                for piece in [&v[..a], &v[a..b], &v[b..]] {
                    if done.is_some() {
                        break;
                    }
                    if let Some((r, n)) = h.push(piece).unwrap() {
                        done = Some((r, base + n));
                    }
                    base += piece.len();
                }
                let (r, total) = done.expect("complete");
                assert_eq!(r, whole);
                assert_eq!(total, hs_len, "split {a}/{b}");
            }
        }
        // And byte by byte: the error offsets of a bad one do not depend on chunking either.
        let bad = raw(9, b"watch,us\xff");
        let e = err(&bad);
        let mut h = Handshake::new();
        let mut got = None;
        for b in &bad {
            if let Err(e) = h.push(std::slice::from_ref(b)) {
                got = Some(e);
                break;
            }
        }
        assert_eq!(got.unwrap(), e);
    }

    #[test]
    fn refuses_a_huge_length_at_once() {
        let e = err(&[b'\n', b'\n', 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("exceeds"), "{e}");
        let e = err(&raw(MAX_PAYLOAD as u32 + 1, b""));
        assert!(e.message.contains("exceeds"), "{e}");
        // Exactly the cap is allowed (and then needs the bytes).
        assert_eq!(parse_all(&raw(MAX_PAYLOAD as u32, b"watch")).unwrap(), None);
    }

    #[test]
    fn refuses_zero_length() {
        let e = err(&raw(0, b""));
        assert_eq!(e.offset, 2);
        assert!(e.message.contains("length 0"));
    }

    #[test]
    fn refuses_garbage() {
        let e = err(b"GET / HTTP/1.1\r\n");
        assert_eq!(e.offset, 0);
        let e = err(b"\nX");
        assert_eq!(e.offset, 1);
        let e = err(&[0u8; 16]);
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn refuses_a_missing_nul() {
        let mut v = raw(5, b"watch");
        v[6] = b'w';
        let e = err(&v);
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("0x00"), "{e}");
    }

    #[test]
    fn refuses_non_utf8() {
        let e = err(&raw(13, b"watch,user=\xc3\x28"));
        assert_eq!(e.offset, 7 + 11);
        assert!(e.message.contains("UTF-8"));
    }

    #[test]
    fn refuses_unknown_role() {
        let e = err(&encode_payload("listen,user=a"));
        assert_eq!(e.offset, 7);
        assert!(e.message.contains("unknown role"), "{e}");
        assert!(Request::parse_payload("Watch,user=a").is_err());
        assert!(Request::parse_payload("").is_err());
    }

    #[test]
    fn refuses_missing_user() {
        let e = err(&encode_payload("watch,channel=c"));
        assert!(e.message.contains("no user"), "{e}");
        assert!(Request::parse_payload("watch").is_err());
    }

    #[test]
    fn refuses_bad_fields() {
        for p in [
            "watch,user=a,",
            "watch,,user=a",
            "watch,user",
            "watch,=x,user=a",
            "watch,user=a,user=b",
            "watch,user=a,channel=b,channel=c",
            "watch,user=a,bufsize=-1",
            "watch,user=a,bufsize=1e3",
            "watch,user=a,bufsize=999999999999",
            "watch,user=a\t",
            "watch,user=a,channel-password=x\ny",
            "watch,user=a,channel-password=\0",
        ] {
            assert!(Request::parse_payload(p).is_err(), "{p:?} accepted");
        }
        let e = Request::parse_payload("watch,user=a,user=b").unwrap_err();
        assert_eq!(e.offset, 13);
    }

    #[test]
    fn refuses_path_unsafe_names() {
        for name in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "../etc",
            "a..b",
            "a\\b",
            "a b",
            "a%2fb",
            "ü",
            "a?b",
            "-x",
            &"x".repeat(names::MAX_NAME + 1),
        ] {
            for key in ["user", "channel"] {
                let p = if key == "user" {
                    format!("watch,user={name}")
                } else {
                    format!("watch,user=ok,channel={name}")
                };
                let e = Request::parse_payload(&p).unwrap_err();
                assert!(e.message.contains("not allowed"), "{p:?}: {e}");
                assert!(e.message.starts_with(&format!("{key} name ")), "{p:?}: {e}");
            }
        }
        for name in [
            "fier",
            "exampleChannel",
            "a.b",
            "A-Z_09",
            &"x".repeat(names::MAX_NAME),
        ] {
            let p = format!("watch,user={name},channel={name}");
            assert!(Request::parse_payload(&p).is_ok(), "{name}");
        }
        // The offset is the value's.
        let e = Request::parse_payload("watch,user=ok,channel=a..b").unwrap_err();
        assert_eq!(e.offset, 22);
        assert!(e.message.contains("\"..\" at byte 1"), "{e}");
    }

    #[test]
    fn passwords_follow_the_password_rule() {
        let long = "x".repeat(names::MAX_PASSWORD + 1);
        for p in [
            format!("broadcast,user=a,user-password={long}"),
            format!("watch,user=a,channel-password={long}"),
        ] {
            let e = Request::parse_payload(&p).unwrap_err();
            assert!(
                e.message.contains("not allowed: it is 257 bytes long"),
                "{e}"
            );
            assert!(!e.message.contains("xxx"), "the password is not shown: {e}");
        }
        let ok = "x".repeat(names::MAX_PASSWORD);
        let r = Request::parse_payload(&format!("broadcast,user=a,user-password={ok}")).unwrap();
        assert_eq!(r.user_password.as_deref(), Some(ok.as_str()));
    }

    #[test]
    fn empty_channel_password_means_none_and_extras_are_kept() {
        let r = Request::parse_payload("watch,user=a,channel-password=,x=1=2").unwrap();
        assert_eq!(r.channel_password, None);
        assert_eq!(r.extra, vec![("x".to_string(), "1=2".to_string())]);
    }

    #[test]
    fn refuses_after_completion_or_error() {
        let mut h = Handshake::new();
        assert!(h.push(&encode_payload("watch,user=a")).unwrap().is_some());
        assert!(h.push(b"x").is_err());
        let mut h = Handshake::new();
        let e = h.push(b"x").unwrap_err();
        assert_eq!(h.push(b"\n\n").unwrap_err(), e);
    }

    #[test]
    fn display_is_one_line_with_the_offset() {
        let e = err(b"zz");
        let s = e.to_string();
        assert!(!s.contains('\n'));
        assert!(s.contains("offset 0"), "{s}");
    }
}
