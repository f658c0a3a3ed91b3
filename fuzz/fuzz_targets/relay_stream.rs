//! river-relay's Splitter, GopCache and WatcherQueue on arbitrary bytes in arbitrary chunks: no
//! panic; the chunks concatenate to the input and their marks do not depend on the chunking; an
//! unbounded watcher that joins at the start receives exactly the input; a bounded one keeps its
//! byte accounting straight whatever it drops; Restamp (an FLV takeover) changes nothing but tag
//! timestamps.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use river::media::StreamFormat;
use river::relay::cache::{CacheLimits, GopCache, Join};
use river::relay::queue::{QueueLimits, Verdict, WatcherQueue};
use river::relay::restamp::Restamp;
use river::relay::stream::{Chunk, Mark, Splitter};

fn split(data: &[u8], cuts: &[u8]) -> (Vec<Chunk>, StreamFormat) {
    let mut s = Splitter::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = if cuts.is_empty() {
            rest.len()
        } else {
            (cuts[i % cuts.len()] as usize * 7 + 1).min(rest.len())
        };
        i += 1;
        let (a, b) = rest.split_at(n);
        s.push(a, &mut out);
        rest = b;
    }
    s.finish(&mut out);
    (out, s.format().expect("decided at finish"))
}

fn marks(chunks: &[Chunk]) -> Vec<(usize, Mark)> {
    let mut at = 0;
    let mut v = Vec::new();
    for c in chunks {
        assert!(!c.data.is_empty());
        if c.mark != Mark::Data {
            v.push((at, c.mark));
        }
        at += c.data.len();
    }
    v
}

fn drain_some(q: &mut WatcherQueue, budget: usize, sent: &mut usize) {
    let mut left = budget;
    while left > 0 {
        let Some(f) = q.front() else { break };
        let n = f.len().min(left);
        assert!(n > 0);
        q.consume(n, Instant::now());
        *sent += n;
        left -= n;
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&ncuts, input)) = input.split_first() else {
        return;
    };
    let Some((&knobs, input)) = input.split_first() else {
        return;
    };
    let ncuts = (ncuts as usize % 16).min(input.len());
    let (cuts, data) = input.split_at(ncuts);

    let (whole, fmt) = split(data, &[]);
    let (chunked, fmt2) = split(data, cuts);
    assert_eq!(fmt, fmt2);
    let cat: Vec<u8> = chunked.iter().flat_map(|c| c.data.iter().copied()).collect();
    assert!(cat == data, "chunks do not concatenate to the input");
    assert_eq!(marks(&whole), marks(&chunked));

    // The same stream twice through one Restamp, as a takeover: only bytes 4..8 of a chunk (a
    // tag's timestamp) may change.
    if fmt == StreamFormat::Flv {
        let mut r = Restamp::new();
        for round in 0..2 {
            let mut again = chunked.clone();
            if round == 1 {
                r.next_stream();
            }
            r.apply(&mut again);
            for (a, b) in again.iter().zip(&chunked) {
                assert_eq!(a.mark, b.mark);
                assert_eq!(a.data.len(), b.data.len());
                for (i, (x, y)) in a.data.iter().zip(b.data.iter()).enumerate() {
                    assert!(x == y || (4..8).contains(&i), "restamp changed byte {i}");
                }
            }
        }
    }

    let t0 = Instant::now();
    let ms = |i: usize| t0 + Duration::from_millis(i as u64 * (knobs as u64 % 50));
    let mut cache = GopCache::new(
        CacheLimits {
            max_bytes: 1 + (knobs as usize) * 64,
            max_age: Duration::from_millis(500),
        },
        knobs & 1 == 0,
    );
    // An unbounded watcher from the very start gets every byte.
    let big = QueueLimits {
        max_bytes: usize::MAX / 2,
        max_age: Duration::from_secs(1 << 30),
        max_behind: Duration::from_secs(1 << 30),
    };
    let mut all = WatcherQueue::new(big, fmt, Join { chunks: vec![], starts_on_keyframe: true }, t0);
    let small = QueueLimits {
        max_bytes: 1 + (knobs as usize % 16) * 100,
        max_age: Duration::from_millis(300),
        max_behind: Duration::from_millis(2000),
    };
    let mut slow: Option<WatcherQueue> = None;
    let mut slow_sent = 0;
    let mut all_out = Vec::new();
    for (i, c) in chunked.iter().enumerate() {
        let now = ms(i);
        cache.push(c, now);
        assert_eq!(all.push(c, now), Verdict::Ok);
        while let Some(f) = all.front() {
            all_out.extend_from_slice(f);
            let n = f.len();
            all.consume(n, Instant::now());
        }
        // A late, slow joiner.
        if i == chunked.len() / 3 {
            let j = cache.join();
            slow = Some(WatcherQueue::new(small, fmt, j, now));
            continue;
        }
        if let Some(q) = slow.as_mut() {
            match q.push(c, now) {
                Verdict::Ok => {}
                Verdict::Disconnect(_) => {
                    assert!(fmt == StreamFormat::Opaque || now.duration_since(t0) > small.max_behind);
                    slow = None;
                    continue;
                }
            }
            let mut io = Vec::new();
            q.fill_iovecs(&mut io, usize::MAX);
            assert_eq!(io.iter().map(|s| s.len()).sum::<usize>(), q.bytes());
            drop(io);
            drain_some(q, cuts.get(i % cuts.len().max(1)).copied().unwrap_or(50) as usize, &mut slow_sent);
            assert_eq!(q.stats().bytes_sent as usize, slow_sent);
        }
    }
    assert!(all_out == data, "an unbounded watcher lost or reordered bytes");
    assert_eq!(all.stats().chunks_dropped, 0);
    let _ = cache.bytes();
});
