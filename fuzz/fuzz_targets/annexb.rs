//! Arbitrary bytes in arbitrary chunks through the raw H.264 input stage: no panic, and the output
//! does not depend on the chunking. The same bytes as an SPS through the max_num_ref_frames
//! rewrite.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::codec::h264::AnnexBReader;

fn run(chunks: &[&[u8]]) -> (Vec<river::media::MediaEvent>, Vec<river::error::Diag>) {
    let mut r = AnnexBReader::new(None);
    let (mut out, mut w) = (Vec::new(), Vec::new());
    for c in chunks {
        r.push(c, &mut out, &mut w);
    }
    r.finish(&mut out, &mut w);
    (out, w)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, the rest is the stream.
    let Some((&n, stream)) = data.split_first() else {
        return;
    };
    let size = usize::from(n).max(1);
    let chunks: Vec<&[u8]> = stream.chunks(size).collect();
    let whole = run(&[stream]);
    assert_eq!(run(&chunks), whole);
    let mut avcc = Vec::new();
    river::codec::h264::annexb_to_avcc(stream, &mut avcc);
    let _ = river::codec::h264::avcc_is_keyframe(stream);
    let _ = river::codec::h264::parse_avcc(stream);
    // river-thumb's SPS rewrite: no panic, and what it writes parses to the same picture size.
    if let Ok(out) = river::codec::h264::sps_with_max_refs(stream, 1) {
        let size = |s: &[u8]| {
            river::codec::h264::video_config(vec![bytes::Bytes::copy_from_slice(s)], vec![])
                .map(|c| (c.width, c.height))
        };
        if let Ok(before) = size(stream) {
            assert_eq!(size(&out), Ok(before));
        }
    }
});
