//! Small helpers the protocols share: base64 (SDP parameter sets, HTTP Basic credentials), hex,
//! and unpredictable numbers (session ids, nonces, SSRCs, initial sequence numbers).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Error {
    /// A character outside the alphabet, at this (byte) position of the text.
    Char { at: usize, found: char },
    /// A last character that does not complete a byte.
    Dangling,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::Char { at, found } => write!(
                f,
                "expected a base64 character at position {at}, found {found:?}"
            ),
            Base64Error::Dangling => {
                f.write_str("expected base64 of whole bytes, found a dangling character")
            }
        }
    }
}

impl std::error::Error for Base64Error {}

/// Decodes standard (or URL-safe) base64; padding is optional, whitespace is not allowed.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => {
                return Err(Base64Error::Char {
                    at: i,
                    found: c as char,
                })
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err(Base64Error::Dangling);
    }
    Ok(out)
}

/// Lower-case hex.
pub fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses hex (either case); `None` for odd lengths or other characters.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An unpredictable 64-bit number (std's per-process random hash keys, mixed with a counter). Not
/// for cryptography beyond what session ids and nonces need: guessing one must be impractical for
/// a peer, which 64 bits from the OS-seeded SipHash keys provide.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// One SplitMix64 step: a well-mixed 64-bit number from a state that advances by a constant.
/// Pure code that needs unpredictable numbers takes one seed from its caller ([`random_u64`] at
/// the edge, a constant in tests) and draws them from it with this.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Constant-time comparison of two byte strings (of possibly different lengths).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            let e = base64_encode(&data);
            assert_eq!(base64_decode(&e).unwrap(), data);
        }
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(
            base64_decode("Z2QADKzZQUHoQAAAAwBAAAAMo8UKZYA=").unwrap()[0],
            0x67
        );
        assert!(base64_decode("a b").is_err());
        assert!(base64_decode("A").is_err());
        let e = base64_decode("a b").unwrap_err();
        assert_eq!(e, Base64Error::Char { at: 1, found: ' ' });
        assert_eq!(
            e.to_string(),
            "expected a base64 character at position 1, found ' '"
        );
        assert_eq!(base64_decode("A"), Err(Base64Error::Dangling));
    }

    #[test]
    fn hex_and_ct_eq() {
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(unhex("00AB"), Some(vec![0, 0xab]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"a"));
        assert_ne!(random_u64(), random_u64());
    }

    #[test]
    fn splitmix64_is_the_reference_sequence() {
        // The first outputs for seed 0 in Vigna's splitmix64.c.
        let mut s = 0;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }
}
