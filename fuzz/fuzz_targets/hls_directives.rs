//! LL-HLS delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) from any query string, and
//! the blocking decision for them against any playlist edge: no panic; a directive accepted is
//! one the query named; a request is never both answerable now and refused; a wait
//! is only ever for something not there yet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::format::hls::ll::{decide, ready, Decision, Directives, MAX_QUERY};
use river::format::hls::Edge;

fuzz_target!(|input: &[u8]| {
    if input.len() < 12 {
        return;
    }
    let (e, q) = input.split_at(12);
    let Ok(query) = std::str::from_utf8(q) else {
        return;
    };
    let d = match Directives::parse(query) {
        Ok(d) => d,
        Err(_) => return,
    };
    assert!(query.len() <= MAX_QUERY);
    if d.msn.is_some() {
        assert!(query.contains("_HLS_msn="));
    }
    assert!(d.part.is_none() || d.msn.is_some());
    let edge = Edge {
        low_latency: e[0] & 1 == 1,
        ended: e[0] & 2 == 2,
        target: Some(u64::from(e[1] % 12) + 1),
        part_target: Some(f64::from(e[2] % 200 + 10) / 100.0),
        next_msn: u64::from(u16::from_be_bytes([e[3], e[4]])),
        open_parts: u64::from(e[5] % 64),
        last_parts: (e[6] & 1 == 1).then_some(u64::from(e[7] % 64) + 1),
        version: 0,
    };
    match decide(&edge, &d) {
        Decision::Now { .. } => {}
        Decision::Refuse(_) => assert!(edge.low_latency && !edge.ended),
        Decision::Wait { msn, part, .. } => {
            assert!(!ready(&edge, msn, part));
            assert!(msn <= edge.next_msn + 1);
        }
    }
});
