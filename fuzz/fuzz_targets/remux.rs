//! The whole remux path (detection, container bridges, timeline, start gate, TS and FLV output) on
//! arbitrary bytes in arbitrary chunks: no panic, and the output does not depend on the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::pipeline::{Demux, FlvOut, TsOut};

fn run<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut d = Demux::new(None, None, 10.0);
    let (mut evs, mut diags) = (Vec::new(), Vec::new());
    let mut failed = false;
    for c in chunks {
        if d.push(c, &mut evs, &mut diags).is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        let _ = d.finish(&mut evs, &mut diags);
    }
    let (mut ts, mut flv) = (Vec::new(), Vec::new());
    let (mut t, mut f) = (TsOut::new(), FlvOut::new());
    for e in &evs {
        let _ = t.event(e, &mut ts);
        let _ = f.event(e, &mut flv);
    }
    (ts, flv)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = run([stream]);
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut k = seed as usize;
    while !rest.is_empty() {
        let n = (k % 300 + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    assert!(run(chunks) == whole);
});
