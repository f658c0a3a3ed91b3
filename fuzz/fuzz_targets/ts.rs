//! MPEG-TS demuxer on arbitrary bytes in arbitrary chunks: no panic, and the events do not depend
//! on the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::format::ts::{TsDemuxer, TsEvent};

fn run<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<TsEvent> {
    let mut d = TsDemuxer::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c, &mut out);
    }
    d.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk sizes; the rest is the stream.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = run([stream]);
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut k = seed as usize;
    while !rest.is_empty() {
        let n = (k % 400 + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    assert_eq!(run(chunks), whole);
});
