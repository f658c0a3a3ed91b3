//! Arbitrary RTP packets through the H.264, H.265 and AAC depacketizers and the RTCP reader: no panic,
//! bounded output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::proto::rtp::{aac, h264, h265, rtcp, Packet};

fuzz_target!(|data: &[u8]| {
    // Packets are length-prefixed (1 byte) in the input.
    let mut v = h264::Depacketizer::new(None);
    let mut v5 = h265::Depacketizer::new(None);
    let cfg = river::codec::aac::parse_asc(&[0x12, 0x10]).unwrap();
    let mut a = aac::Depacketizer::new(cfg, 13, 3, 3);
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    let mut rest = data;
    while let Some((&n, r)) = rest.split_first() {
        let n = usize::from(n).min(r.len());
        let (pkt, r) = r.split_at(n);
        rest = r;
        let _ = rtcp::parse(pkt);
        // Packets without a valid header get one, so the depacketizers see the payload.
        let mut owned;
        let p = match Packet::parse(pkt) {
            Ok(p) => p,
            Err(_) => {
                owned = river::proto::rtp::header(n % 2 == 0, 96, n as u16, 0, 1).to_vec();
                owned.extend_from_slice(pkt);
                Packet::parse(&owned).unwrap()
            }
        };
        v.push(&p, 0, &mut ev, &mut diags);
        v5.push(&p, 0, &mut ev, &mut diags);
        a.push(&p, 0, &mut ev, &mut diags);
        if ev.len() > 10_000 {
            ev.clear();
            diags.clear();
        }
    }
});
