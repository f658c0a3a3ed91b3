//! Server-side RTSP authentication: HTTP Basic and Digest (RFC 2617, MD5, with or without
//! `qop=auth`), as ffmpeg, GStreamer and live555 send them.
//!
//! The session parses `Authorization` into [`Credentials`] and checks the nonce; whoever knows the
//! password (the hub) calls [`Credentials::check`]. Nonces are stateless: the time they were issued
//! plus an MD5 over a per-server secret and that time, so any nonce this server did not issue, or
//! issued longer than [`NONCE_TTL`] ago, is refused.

use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};

#[cfg(doc)]
use crate::proto::util::random_u64;
use crate::proto::util::{base64_decode, ct_eq, hex, splitmix64, Base64Error};

/// How long a nonce may be used to start a session.
pub const NONCE_TTL: Duration = Duration::from_secs(120);

/// Longest `Authorization` value accepted.
const MAX_AUTH_LEN: usize = 4096;

/// What the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { user: String, password: String },
    Digest(DigestResponse),
}

/// A parsed `Authorization: Digest …`, with the request method it signs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestResponse {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub method: String,
}

impl Credentials {
    /// The user name the client gave, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Credentials::None => None,
            Credentials::Basic { user, .. } => Some(user),
            Credentials::Digest(d) => Some(&d.username),
        }
    }

    /// Whether these credentials prove knowledge of `password` (constant time for Basic; for
    /// Digest, recomputes the MD5 response).
    pub fn check(&self, password: &str) -> bool {
        match self {
            Credentials::None => false,
            Credentials::Basic { password: p, .. } => ct_eq(p.as_bytes(), password.as_bytes()),
            Credentials::Digest(d) => {
                let ha1 = md5_hex(&[&d.username, ":", &d.realm, ":", password]);
                let ha2 = md5_hex(&[&d.method, ":", &d.uri]);
                let want = match (&d.qop, &d.nc, &d.cnonce) {
                    (Some(q), Some(nc), Some(cn)) if q.eq_ignore_ascii_case("auth") => {
                        md5_hex(&[&ha1, ":", &d.nonce, ":", nc, ":", cn, ":", q, ":", &ha2])
                    }
                    (None, _, _) => md5_hex(&[&ha1, ":", &d.nonce, ":", &ha2]),
                    _ => return false,
                };
                ct_eq(want.as_bytes(), d.response.to_ascii_lowercase().as_bytes())
            }
        }
    }
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

/// An `Authorization` value that cannot be used (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Longer than river accepts.
    TooLong,
    /// Basic credentials that are not base64.
    Base64(Base64Error),
    /// Basic credentials that are not UTF-8.
    NotUtf8,
    /// Basic credentials without the `:` between user and password.
    NoColon,
    /// Digest parameters that do not parse: what was expected.
    DigestSyntax(&'static str),
    /// More than 32 Digest parameters.
    DigestTooMany,
    /// A Digest algorithm other than MD5 (as sent).
    DigestAlgorithm(String),
    /// Digest credentials without a nonce or a response.
    DigestIncomplete,
    /// A scheme other than Basic and Digest (its first 20 characters).
    Scheme(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::TooLong => write!(
                f,
                "expected an Authorization header of at most {MAX_AUTH_LEN} bytes"
            ),
            AuthError::Base64(e) => write!(f, "{e}"),
            AuthError::NotUtf8 => f.write_str("expected UTF-8 Basic credentials"),
            AuthError::NoColon => f.write_str("expected 'user:password' in Basic credentials"),
            AuthError::DigestSyntax(what) => write!(f, "expected {what} in Digest credentials"),
            AuthError::DigestTooMany => f.write_str("expected at most 32 Digest parameters"),
            AuthError::DigestAlgorithm(v) => {
                write!(f, "expected Digest algorithm MD5, found {v:?}")
            }
            AuthError::DigestIncomplete => {
                f.write_str("expected nonce and response in Digest credentials")
            }
            AuthError::Scheme(s) => {
                write!(
                    f,
                    "expected Basic or Digest credentials, found scheme {s:?}"
                )
            }
        }
    }
}

impl std::error::Error for AuthError {}

/// Parses an `Authorization` header value for a request of `method`. Unknown schemes and
/// malformed values give `Err` (answered with 400).
pub fn parse_authorization(value: &str, method: &str) -> Result<Credentials, AuthError> {
    if value.len() > MAX_AUTH_LEN {
        return Err(AuthError::TooLong);
    }
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64_decode(rest.trim()).map_err(AuthError::Base64)?;
        let s = String::from_utf8(raw).map_err(|_| AuthError::NotUtf8)?;
        let (user, password) = s.split_once(':').ok_or(AuthError::NoColon)?;
        return Ok(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        });
    }
    if scheme.eq_ignore_ascii_case("digest") {
        let mut d = DigestResponse {
            method: method.to_string(),
            ..Default::default()
        };
        for (k, v) in auth_params(rest)? {
            match k.to_ascii_lowercase().as_str() {
                "username" => d.username = v,
                "realm" => d.realm = v,
                "nonce" => d.nonce = v,
                "uri" => d.uri = v,
                "response" => d.response = v,
                "qop" => d.qop = Some(v),
                "nc" => d.nc = Some(v),
                "cnonce" => d.cnonce = Some(v),
                "algorithm" if !v.eq_ignore_ascii_case("md5") => {
                    return Err(AuthError::DigestAlgorithm(v))
                }
                _ => {}
            }
        }
        if d.nonce.is_empty() || d.response.is_empty() {
            return Err(AuthError::DigestIncomplete);
        }
        return Ok(Credentials::Digest(d));
    }
    Err(AuthError::Scheme(scheme.chars().take(20).collect()))
}

/// `k=v, k="quoted, value"` pairs.
fn auth_params(s: &str) -> Result<Vec<(String, String)>, AuthError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        if i >= b.len() {
            return Err(AuthError::DigestSyntax("key=value"));
        }
        let key = s[ks..i].trim().to_string();
        i += 1;
        let val = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i) {
                    None => return Err(AuthError::DigestSyntax("a closing quote")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < b.len() => {
                        v.push(b[i + 1] as char);
                        i += 2;
                    }
                    Some(_) => {
                        let c = s[i..].chars().next().unwrap_or(' ');
                        v.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            s[vs..i].trim().to_string()
        };
        out.push((key, val));
        if out.len() > 32 {
            return Err(AuthError::DigestTooMany);
        }
    }
    Ok(out)
}

/// Issues and checks nonces, and writes challenges.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub realm: String,
    secret: [u8; 16],
    base: Instant,
    /// Offer Basic too (after Digest). On by default: ffmpeg and GStreamer pick Digest when both
    /// are offered.
    pub offer_basic: bool,
}

impl Authenticator {
    /// `seed` makes the nonce secret (the caller draws it, [`random_u64`]; tests fix it).
    pub fn new(realm: &str, now: Instant, seed: u64) -> Self {
        let mut state = seed;
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        secret[8..].copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        Authenticator {
            realm: realm.to_string(),
            secret,
            base: now,
            offer_basic: true,
        }
    }

    fn mac(&self, stamp: &str) -> String {
        let mut h = Md5::new();
        h.update(self.secret);
        h.update(stamp.as_bytes());
        hex(&h.finalize())
    }

    pub fn nonce(&self, now: Instant) -> String {
        let stamp = format!(
            "{:012x}",
            now.saturating_duration_since(self.base).as_millis()
        );
        let mac = self.mac(&stamp);
        format!("{stamp}{mac}")
    }

    /// Whether `nonce` was issued by this authenticator less than [`NONCE_TTL`] before `now`.
    pub fn nonce_valid(&self, nonce: &str, now: Instant) -> bool {
        if nonce.len() != 44 || !nonce.is_ascii() {
            return false;
        }
        let (stamp, mac) = nonce.split_at(12);
        if !ct_eq(self.mac(stamp).as_bytes(), mac.as_bytes()) {
            return false;
        }
        let Ok(ms) = u64::from_str_radix(stamp, 16) else {
            return false;
        };
        let age = now
            .saturating_duration_since(self.base)
            .as_millis()
            .saturating_sub(u128::from(ms));
        age < NONCE_TTL.as_millis()
    }

    /// `WWW-Authenticate` values for a 401, Digest first.
    pub fn challenges(&self, now: Instant, stale: bool) -> Vec<String> {
        let mut v = vec![format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=\"MD5\"{}",
            self.realm,
            self.nonce(now),
            if stale { ", stale=TRUE" } else { "" }
        )];
        if self.offer_basic {
            v.push(format!("Basic realm=\"{}\"", self.realm));
        }
        v
    }

    /// Credentials as the host should see them: a Digest answer to a nonce this server did not
    /// issue (or issued too long ago), or for another realm, counts as no credentials; `true` in the
    /// second field means the nonce was merely stale.
    pub fn screen(&self, creds: Credentials, now: Instant) -> (Credentials, bool) {
        match creds {
            Credentials::Digest(d) => {
                if d.realm != self.realm {
                    return (Credentials::None, false);
                }
                if !self.nonce_valid(&d.nonce, now) {
                    return (Credentials::None, true);
                }
                (Credentials::Digest(d), false)
            }
            other => (other, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 3.5 (HTTP, qop=auth).
        let v = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let c = parse_authorization(v, "GET").unwrap();
        assert!(c.check("Circle Of Life"));
        assert!(!c.check("circle of life"));
        assert_eq!(c.user(), Some("Mufasa"));
        let c2 = parse_authorization(v, "POST").unwrap();
        assert!(!c2.check("Circle Of Life"));
    }

    #[test]
    fn digest_without_qop_as_ffmpeg_sends() {
        let now = Instant::now();
        let a = Authenticator::new("river", now, 7);
        let nonce = a.nonce(now);
        let uri = "rtsp://127.0.0.1:8554/live/cam";
        let ha1 = md5_hex(&["live", ":", "river", ":", "secret"]);
        let ha2 = md5_hex(&["ANNOUNCE", ":", uri]);
        let resp = md5_hex(&[&ha1, ":", &nonce, ":", &ha2]);
        let v = format!(
            "Digest username=\"live\", realm=\"river\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
        );
        let c = parse_authorization(&v, "ANNOUNCE").unwrap();
        let (c, stale) = a.screen(c, now + Duration::from_secs(1));
        assert!(!stale);
        assert!(c.check("secret"));
        assert!(!c.check("secreT"));
        // Expired and forged nonces.
        let (c2, stale) = a.screen(
            parse_authorization(&v, "ANNOUNCE").unwrap(),
            now + NONCE_TTL + Duration::from_secs(1),
        );
        assert!(stale);
        assert_eq!(c2, Credentials::None);
        // Another secret (another seed) does not take this one's nonces.
        let other = Authenticator::new("river", now, 8);
        assert!(!other.nonce_valid(&nonce, now));
        assert!(!a.nonce_valid("zz", now));
    }

    #[test]
    fn basic() {
        let c = parse_authorization("Basic bGl2ZTpzZWNyZXQ6eA==", "DESCRIBE").unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                user: "live".into(),
                password: "secret:x".into()
            }
        );
        assert!(c.check("secret:x"));
        assert!(parse_authorization("Basic !!!", "X").is_err());
        assert!(parse_authorization("Bearer x", "X").is_err());
        assert!(parse_authorization("Digest username=\"a", "X").is_err());
        assert!(parse_authorization("Digest nonce=1", "X").is_err());
        // Each refusal says which, in the words it always used.
        assert_eq!(
            parse_authorization("Bearer x", "X"),
            Err(AuthError::Scheme("Bearer".into()))
        );
        assert_eq!(
            parse_authorization("Bearer x", "X")
                .unwrap_err()
                .to_string(),
            "expected Basic or Digest credentials, found scheme \"Bearer\""
        );
        assert_eq!(
            parse_authorization("Digest username=\"a", "X"),
            Err(AuthError::DigestSyntax("a closing quote"))
        );
        assert_eq!(
            AuthError::DigestSyntax("a closing quote").to_string(),
            "expected a closing quote in Digest credentials"
        );
        assert_eq!(
            parse_authorization("Digest nonce=1", "X"),
            Err(AuthError::DigestIncomplete)
        );
        assert!(matches!(
            parse_authorization("Basic !!!", "X"),
            Err(AuthError::Base64(Base64Error::Char { at: 0, .. }))
        ));
        assert!(!Credentials::None.check(""));
    }

    #[test]
    fn challenges() {
        let now = Instant::now();
        let a = Authenticator::new("river", now, 7);
        let c = a.challenges(now, false);
        assert!(c[0].starts_with("Digest realm=\"river\", nonce=\""));
        assert_eq!(c[1], "Basic realm=\"river\"");
    }
}
