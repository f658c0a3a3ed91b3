//! The hub's HLS tokens (`river::relay::hls::token`) from any query value: no panic; a token is
//! accepted only when it is the one made for the same channel, password, address and a time
//! before its expiry, so anything else a client sends is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::relay::hls::token::{TokenError, Tokens, MAX_TOKEN};

fuzz_target!(|input: &[u8]| {
    if input.len() < 9 {
        return;
    }
    let (t, rest) = input.split_at(8);
    let now = u64::from_le_bytes(t.try_into().unwrap()) >> 16;
    let Ok(token) = std::str::from_utf8(rest) else {
        return;
    };
    let tokens = Tokens::new([9; 32], 120_000);
    let ip = "127.0.0.1".parse().unwrap();
    let r = tokens.check(Some(token), "fier", "cam", "s3cret", ip, now);
    if token.len() > MAX_TOKEN {
        assert_eq!(r, Err(TokenError::Malformed));
    }
    if r.is_ok() {
        // Accepted: well formed, and not past its expiry.
        let (exp, mac) = token.split_once('-').unwrap();
        assert!(now < u64::from_str_radix(exp, 16).unwrap() && mac.len() == 32);
    }
    // One the hub made is good until its expiry.
    let made = tokens.make("fier", "cam", "s3cret", ip, now);
    assert_eq!(tokens.check(Some(&made), "fier", "cam", "s3cret", ip, now), Ok(()));
    assert_eq!(
        tokens.check(Some(&made), "fier", "cam", "other", ip, now),
        Err(TokenError::Wrong)
    );
});
