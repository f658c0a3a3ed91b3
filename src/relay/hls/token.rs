//! The hub's HLS access tokens, pure: proof that a client knew a channel's password a short while
//! ago, so the segments, parts and init segments a playlist lists can be fetched without the
//! password in their URLs.
//!
//! A token is `EXPIRY-MAC`: `EXPIRY` in hex milliseconds on the hub's monotonic clock (since it
//! started), and `MAC` the first 16 bytes, in hex, of HMAC-SHA256 (RFC 2104) under a key drawn
//! from the OS when the hub starts, over the channel, its password, the client's IP address and
//! the expiry. So a token:
//! - is worthless after its expiry, from another address, for another channel, or once the
//!   broadcaster set another password (the MAC covers it), and after a restart (a new key);
//! - needs no state in the hub: checking it is one MAC and a constant-time compare.
//!
//! Expiries are rounded up to a step of an eighth of the lifetime, so the playlists one client
//! fetches in a row name the same token.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::proto::util::{ct_eq, hex, unhex};

/// The longest token accepted: a 16-digit hex expiry, `-`, 32 hex digits.
pub const MAX_TOKEN: usize = 16 + 1 + 32;
const MAC_BYTES: usize = 16;
const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) of `parts`, concatenated, under `key` (at most one block long).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Why a token was not accepted (for the log; the client only learns 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Malformed,
    Expired,
    /// A MAC that does not match: another channel, password, address or hub.
    Wrong,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Missing => "no token (fetch the playlist with the channel password)",
            TokenError::Malformed => "malformed token",
            TokenError::Expired => "expired token",
            TokenError::Wrong => "token not valid for this channel, password or address",
        }
    }
}

/// Makes and checks tokens under one key.
#[derive(Clone)]
pub struct Tokens {
    key: [u8; 32],
    /// Lifetime, in ms.
    ttl: u64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish()
    }
}

fn mac(key: &[u8], user: &str, channel: &str, password: &str, ip: IpAddr, exp: u64) -> [u8; 32] {
    let ip = match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    hmac_sha256(
        key,
        &[
            b"river-hls\0",
            user.as_bytes(),
            b"\0",
            channel.as_bytes(),
            b"\0",
            password.as_bytes(),
            b"\0",
            &ip,
            &exp.to_be_bytes(),
        ],
    )
}

impl Tokens {
    /// Tokens under `key` (drawn from the OS by the caller) that live `ttl_ms` (at least 1).
    pub fn new(key: [u8; 32], ttl_ms: u64) -> Self {
        Tokens {
            key,
            ttl: ttl_ms.max(1),
        }
    }

    /// A token for a client at `ip` that proved `password` for `user/channel` at `now_ms`.
    pub fn make(
        &self,
        user: &str,
        channel: &str,
        password: &str,
        ip: IpAddr,
        now_ms: u64,
    ) -> String {
        let step = (self.ttl / 8).max(1);
        let exp = (now_ms + self.ttl).div_ceil(step) * step;
        let m = mac(&self.key, user, channel, password, ip, exp);
        format!("{exp:x}-{}", hex(&m[..MAC_BYTES]))
    }

    /// Whether `token` is one [`Self::make`] gave for the same channel, password and address,
    /// not expired at `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        token: Option<&str>,
        user: &str,
        channel: &str,
        password: &str,
        ip: IpAddr,
        now_ms: u64,
    ) -> Result<(), TokenError> {
        let t = token.ok_or(TokenError::Missing)?;
        if t.len() > MAX_TOKEN {
            return Err(TokenError::Malformed);
        }
        let (exp, m) = t.split_once('-').ok_or(TokenError::Malformed)?;
        if exp.is_empty() || exp.len() > 16 || m.len() != 2 * MAC_BYTES {
            return Err(TokenError::Malformed);
        }
        let exp = u64::from_str_radix(exp, 16).map_err(|_| TokenError::Malformed)?;
        let got = unhex(m).ok_or(TokenError::Malformed)?;
        let want = mac(&self.key, user, channel, password, ip, exp);
        // The MAC first, in constant time: a forged token learns nothing from the answer's time.
        if !ct_eq(&got, &want[..MAC_BYTES]) {
            return Err(TokenError::Wrong);
        }
        if now_ms >= exp {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        let m = hmac_sha256(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex(&m),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2, the message in two parts.
        let m = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&m),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block is hashed first.
        let m = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&m),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn a_token_is_good_for_its_channel_password_address_and_lifetime_only() {
        let t = Tokens::new([7; 32], 8000);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let tok = t.make("fier", "cam", "s3cret", ip, 1000);
        let ok = |tok: &str, u, c, p, ip, now| t.check(Some(tok), u, c, p, ip, now);
        assert_eq!(ok(&tok, "fier", "cam", "s3cret", ip, 1000), Ok(()));
        // Rounded up to a step of ttl/8: good for at least ttl, at most ttl + a step.
        assert_eq!(ok(&tok, "fier", "cam", "s3cret", ip, 8999), Ok(()));
        assert_eq!(
            ok(&tok, "fier", "cam", "s3cret", ip, 10_000),
            Err(TokenError::Expired)
        );
        for (u, c, p) in [
            ("fier", "cam2", "s3cret"),
            ("fie", "rcam", "s3cret"),
            ("fier", "cam", "other"),
        ] {
            assert_eq!(
                ok(&tok, u, c, p, ip, 1000),
                Err(TokenError::Wrong),
                "{u}/{c}"
            );
        }
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(
            ok(&tok, "fier", "cam", "s3cret", other, 1000),
            Err(TokenError::Wrong)
        );
        // Another hub's key.
        let t2 = Tokens::new([8; 32], 8000);
        assert_eq!(
            t2.check(Some(&tok), "fier", "cam", "s3cret", ip, 1000),
            Err(TokenError::Wrong)
        );
        // Within a step, the same token.
        assert_eq!(
            t.make("fier", "cam", "s3cret", ip, 1100),
            t.make("fier", "cam", "s3cret", ip, 1900)
        );
        // A later expiry with the old MAC is refused (the expiry is under the MAC).
        let (_, m) = tok.split_once('-').unwrap();
        let forged = format!("{:x}-{m}", 1_000_000);
        assert_eq!(
            ok(&forged, "fier", "cam", "s3cret", ip, 1000),
            Err(TokenError::Wrong)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let t = Tokens::new([1; 32], 1000);
        let ip: IpAddr = "::1".parse().unwrap();
        assert_eq!(t.check(None, "a", "b", "", ip, 0), Err(TokenError::Missing));
        let long = "a".repeat(MAX_TOKEN + 1);
        for bad in [
            "",
            "-",
            "12",
            "zz-00112233445566778899aabbccddeeff",
            "1-0011",
            "1-zz112233445566778899aabbccddeeff",
            "11111111111111111-00112233445566778899aabbccddeeff",
            long.as_str(),
        ] {
            assert_eq!(
                t.check(Some(bad), "a", "b", "", ip, 0),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
    }
}
