//! Arbitrary bytes in arbitrary chunks through the ADTS reader: no panic, and the output does not
//! depend on the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::codec::aac::AdtsReader;

fn run(chunks: &[&[u8]]) -> (Vec<river::codec::aac::AdtsFrame>, Vec<river::error::Diag>) {
    let mut r = AdtsReader::new();
    let (mut out, mut w) = (Vec::new(), Vec::new());
    for c in chunks {
        r.push(c, &mut out, &mut w);
    }
    r.finish(&mut out, &mut w);
    (out, w)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(n).max(1);
    let chunks: Vec<&[u8]> = stream.chunks(size).collect();
    let whole = run(&[stream]);
    assert_eq!(run(&chunks), whole);
    let _ = river::codec::aac::parse_asc(stream);
});
