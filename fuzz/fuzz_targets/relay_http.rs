//! river-relay's HTTP side: request heads (bounded, never panics), what a preflight echoes (never
//! a line break), the player page's stream URL (never leaves its JavaScript string), and the
//! chunked body decoder (same output under any split of the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::http::chunked::ChunkedDecoder;
use river::relay::http::{allowed_methods, parse_head, preflight, route, Route};
use river::relay::player::{self, Kind};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, len))) = parse_head(data) {
        assert!(len <= data.len());
        let r = route(&head);
        if let Some(methods) = allowed_methods(&r) {
            let asked = String::from_utf8_lossy(data);
            for (_, v) in preflight(methods, Some(&asked), true) {
                assert!(!v.contains(['\r', '\n']), "{v:?}");
            }
        }
        if let Route::Stream {
            user,
            channel,
            ext: None,
        } = &r
        {
            let pw = head.password("password").and_then(Result::ok);
            let src = player::stream_path(user, channel, Kind::Ts, pw.as_deref());
            assert!(
                !src.contains(['"', '\'', '<', '>', '\\', ' ', '&']),
                "{src}"
            );
            let page = player::page("/mpegts.js", &src, Kind::Ts, user);
            assert!(page.contains(&format!("var src = \"{src}\", type = \"mpegts\";")));
        }
    }
    if data.is_empty() {
        return;
    }
    // The chunked decoder: whole input vs split at a data-chosen point.
    let split = data[0] as usize % data.len();
    let body = &data[1..];
    let mut a = ChunkedDecoder::new();
    let mut out_a = Vec::new();
    let ra = a.push(body, &mut out_a);
    let mut b = ChunkedDecoder::new();
    let mut out_b = Vec::new();
    let split = split.min(body.len());
    let rb = b.push(&body[..split], &mut out_b).and_then(|n1| {
        if n1 < split {
            return Ok(n1);
        }
        b.push(&body[split..], &mut out_b).map(|n2| n1 + n2)
    });
    match (ra, rb) {
        (Ok(na), Ok(nb)) => {
            assert_eq!(na, nb);
            assert_eq!(out_a, out_b);
            assert_eq!(a.is_done(), b.is_done());
        }
        (Err(_), Err(_)) => {}
        (x, y) => panic!("split changed the outcome: {x:?} vs {y:?}"),
    }
});
