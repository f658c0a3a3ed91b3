//! fstream handshake parser on arbitrary bytes in arbitrary chunks: no panic; the same result
//! (request and handshake length, or the same error) under any chunking; the bytes after the
//! handshake are never consumed; an accepted request survives to_payload/parse_payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::proto::fstream::{Handshake, HandshakeError, Request, MAX_PAYLOAD, PREFIX_LEN};

type Outcome = Result<Option<(Request, usize)>, HandshakeError>;

fn run(data: &[u8], cuts: &[u8]) -> Outcome {
    let mut h = Handshake::new();
    let mut rest = data;
    let mut base = 0;
    let mut i = 0;
    loop {
        let n = if cuts.is_empty() {
            rest.len()
        } else {
            // At least one byte a push: a zero cut would loop forever (a hang in the harness).
            (cuts[i % cuts.len()] as usize).max(1).min(rest.len())
        };
        i += 1;
        let (a, b) = rest.split_at(n);
        match h.push(a)? {
            Some((r, used)) => {
                assert!(used <= a.len());
                return Ok(Some((r, base + used)));
            }
            None => {
                base += a.len();
                rest = b;
                if rest.is_empty() {
                    return Ok(None);
                }
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&ncuts, input)) = input.split_first() else {
        return;
    };
    let ncuts = (ncuts as usize % 16).min(input.len());
    let (cuts, data) = input.split_at(ncuts);
    let whole = run(data, &[]);
    let chunked = run(data, cuts);
    assert_eq!(whole, chunked);
    if let Ok(Some((req, used))) = &whole {
        assert!(*used <= PREFIX_LEN + MAX_PAYLOAD);
        let len = u32::from_be_bytes([data[2], data[3], data[4], data[5]]) as usize;
        assert_eq!(*used, PREFIX_LEN + len);
        let again = Request::parse_payload(&req.to_payload()).unwrap();
        assert_eq!(&again, req);
        assert_eq!(run(&req.encode(), &[]).unwrap().unwrap().0, *req);
    }
    // Also the payload parser alone on any text.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Request::parse_payload(s);
    }
});
