//! Puts one stream's RTP packets back in sequence order: RTP over UDP may reorder or duplicate
//! packets, and the depacketizers treat any sequence gap as a loss (dropping up to the next
//! keyframe). Pure: packets and the time in, packets out in order.
//!
//! Policy:
//! - A packet that arrives in order goes straight out (no copy, no delay).
//! - One that arrives early (a gap before it) is held, up to [`Reorder::MAX_HELD`] packets and
//!   [`Reorder::MAX_DELAY`] since the oldest held one arrived; then the gap is given up as lost and
//!   the held packets go out in order (the depacketizer sees the gap).
//! - One that arrives after its place was given up, or a duplicate, is dropped and counted.
//! - A jump of more than [`Reorder::MAX_HELD`] ahead (or far behind) is a new sequence (a sender
//!   restart): what is held goes out, and the new packet starts the count again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// See the module documentation.
pub struct Reorder {
    /// The sequence number that goes out next.
    next: Option<u16>,
    /// Slot i holds packet `next + i`, with its arrival time.
    held: VecDeque<Option<(Vec<u8>, Instant)>>,
    count: usize,
    /// Packets dropped as late or duplicate.
    pub dropped: u64,
    /// Sequence numbers given up as lost.
    pub lost: u64,
}

impl Default for Reorder {
    fn default() -> Self {
        Self::new()
    }
}

fn seq_of(pkt: &[u8]) -> Option<u16> {
    (pkt.len() >= 12).then(|| u16::from_be_bytes([pkt[2], pkt[3]]))
}

impl Reorder {
    pub const MAX_HELD: usize = 64;
    pub const MAX_DELAY: Duration = Duration::from_millis(100);

    pub fn new() -> Self {
        Reorder {
            next: None,
            held: VecDeque::new(),
            count: 0,
            dropped: 0,
            lost: 0,
        }
    }

    /// Packets held, waiting for a gap to fill.
    pub fn held(&self) -> usize {
        self.count
    }

    /// One packet in; packets ready in order go to `out`. Packets too short to be RTP go out at
    /// once (the parser after this one reports them).
    pub fn push(&mut self, pkt: &[u8], now: Instant, out: &mut dyn FnMut(&[u8])) {
        let Some(seq) = seq_of(pkt) else {
            out(pkt);
            return;
        };
        let next = *self.next.get_or_insert(seq);
        let d = seq.wrapping_sub(next) as i16;
        if d < 0 && -(d as i32) <= Self::MAX_HELD as i32 {
            self.dropped += 1;
        } else if d < 0 || d as usize >= Self::MAX_HELD {
            // A new sequence.
            self.flush(out);
            self.next = Some(seq.wrapping_add(1));
            out(pkt);
        } else if d == 0 && self.count == 0 {
            self.next = Some(seq.wrapping_add(1));
            if !self.held.is_empty() {
                self.held.pop_front();
            }
            out(pkt);
        } else {
            let i = d as usize;
            if self.held.len() <= i {
                self.held.resize(i + 1, None);
            }
            if self.held[i].is_some() {
                self.dropped += 1;
            } else {
                self.held[i] = Some((pkt.to_vec(), now));
                self.count += 1;
            }
            self.release(out);
        }
        self.expire(now, out);
    }

    /// Gives up gaps whose later packets have waited too long (call it when time passes, too).
    pub fn expire(&mut self, now: Instant, out: &mut dyn FnMut(&[u8])) {
        while self.count > 0 {
            let oldest = self.held.iter().flatten().map(|(_, t)| *t).min();
            let full = self.held.len() >= Self::MAX_HELD;
            if !full && oldest.is_some_and(|t| now.duration_since(t) < Self::MAX_DELAY) {
                return;
            }
            self.skip_gap();
            self.release(out);
        }
    }

    /// Everything held goes out in order (end of stream).
    pub fn flush(&mut self, out: &mut dyn FnMut(&[u8])) {
        while self.count > 0 {
            self.skip_gap();
            self.release(out);
        }
        self.held.clear();
    }

    /// Gives up the empty slots before the first held packet.
    fn skip_gap(&mut self) {
        while let Some(None) = self.held.front() {
            self.held.pop_front();
            self.lost += 1;
            self.next = self.next.map(|n| n.wrapping_add(1));
        }
    }

    /// Sends the held packets that are next in order.
    fn release(&mut self, out: &mut dyn FnMut(&[u8])) {
        while let Some(Some(_)) = self.held.front() {
            if let Some(Some((p, _))) = self.held.pop_front() {
                out(&p);
            }
            self.count -= 1;
            self.next = self.next.map(|n| n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p
    }

    fn run(r: &mut Reorder, seqs: &[u16], now: Instant) -> Vec<u16> {
        let mut got = Vec::new();
        for &s in seqs {
            r.push(&pkt(s), now, &mut |p: &[u8]| got.push(seq_of(p).unwrap()));
        }
        got
    }

    #[test]
    fn in_order_passes_straight_through_across_the_wrap() {
        let mut r = Reorder::new();
        let seqs: Vec<u16> = (65530..=65535).chain(0..5).collect();
        assert_eq!(run(&mut r, &seqs, Instant::now()), seqs);
        assert_eq!((r.held(), r.dropped, r.lost), (0, 0, 0));
    }

    #[test]
    fn swapped_packets_come_out_in_order() {
        let mut r = Reorder::new();
        let got = run(&mut r, &[10, 12, 11, 13, 16, 15, 14, 17], Instant::now());
        assert_eq!(got, (10..=17).collect::<Vec<_>>());
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut r = Reorder::new();
        let got = run(&mut r, &[1, 2, 2, 3, 1, 5, 5], Instant::now());
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(r.dropped, 3);
        assert_eq!(r.held(), 1);
    }

    #[test]
    fn a_loss_is_given_up_after_the_delay() {
        let t0 = Instant::now();
        let mut r = Reorder::new();
        assert_eq!(run(&mut r, &[1, 2, 4, 5], t0), vec![1, 2]);
        let mut got = Vec::new();
        r.expire(t0 + Duration::from_millis(50), &mut |p: &[u8]| {
            got.push(seq_of(p).unwrap())
        });
        assert!(got.is_empty());
        r.expire(t0 + Reorder::MAX_DELAY, &mut |p: &[u8]| {
            got.push(seq_of(p).unwrap())
        });
        assert_eq!(got, vec![4, 5]);
        assert_eq!(r.lost, 1);
        // 3 arriving now is too late.
        assert!(run(&mut r, &[3, 6], t0 + Reorder::MAX_DELAY).eq(&[6]));
        assert_eq!(r.dropped, 1);
    }

    #[test]
    fn a_full_buffer_gives_the_gap_up() {
        let mut r = Reorder::new();
        let now = Instant::now();
        let seqs: Vec<u16> = std::iter::once(0).chain(2..=70).collect();
        let got = run(&mut r, &seqs, now);
        assert_eq!(got, seqs);
        assert_eq!(r.lost, 1);
    }

    #[test]
    fn a_jump_starts_a_new_sequence() {
        let mut r = Reorder::new();
        let got = run(&mut r, &[100, 102, 5000, 5001], Instant::now());
        assert_eq!(got, vec![100, 102, 5000, 5001]);
        let got = run(&mut r, &[20000, 20001], Instant::now());
        assert_eq!(got, vec![20000, 20001]);
    }

    #[test]
    fn short_packets_pass_and_memory_stays_bounded() {
        let mut r = Reorder::new();
        let mut n = 0;
        r.push(b"abc", Instant::now(), &mut |_: &[u8]| n += 1);
        assert_eq!(n, 1);
        // Sequence numbers near each other, jumping now and then: never more than MAX_HELD held,
        // and every packet goes out once or is counted as dropped.
        let mut x = 1u32;
        let mut base = 0u16;
        let mut out = 0u64;
        let t0 = Instant::now();
        for i in 0..20_000u64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let r16 = (x >> 16) as u16;
            base = if r16 % 500 == 0 {
                r16
            } else {
                base.wrapping_add(1)
            };
            let seq = base.wrapping_add(r16 % 8).wrapping_sub(4);
            let now = t0 + Duration::from_millis(i / 3);
            r.push(&pkt(seq), now, &mut |_: &[u8]| out += 1);
            assert!(r.held() <= Reorder::MAX_HELD && r.held.len() <= Reorder::MAX_HELD);
        }
        r.flush(&mut |_: &[u8]| out += 1);
        assert_eq!(out + r.dropped, 20_000);
        assert!(r.dropped > 0 && r.lost > 0);
    }
}
