//! Arbitrary bytes in arbitrary chunks through the raw H.265 input stage: no panic, and the output
//! does not depend on the chunking. The same bytes also go through the SPS, PPS and hvcC parsers,
//! and a record river writes from parsed parameter sets parses back to them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::codec::h265;

fn run(chunks: &[&[u8]]) -> (Vec<river::media::MediaEvent>, Vec<river::error::Diag>) {
    let mut r = h265::AnnexBReader::new(None);
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
    for ev in &whole.0 {
        if let river::media::MediaEvent::Video(cfg) = ev {
            let rec = h265::write_hvcc(cfg);
            let back = h265::parse_hvcc(&rec).expect("river's own hvcC parses");
            assert_eq!((back.vps, back.sps, back.pps), (cfg.vps.clone(), cfg.sps.clone(), cfg.pps.clone()));
        }
    }
    // As a parameter set after a 2-byte header of each type, and as an hvcC record.
    for header in [[0x42u8, 0x01], [0x44, 0x01]] {
        let mut nal = header.to_vec();
        nal.extend_from_slice(stream);
        let _ = h265::parse_sps(&nal);
        let _ = h265::parse_pps(&nal);
    }
    if let Ok(h) = h265::parse_hvcc(stream) {
        if let Ok(cfg) = h.video_config() {
            let _ = h265::write_hvcc(&cfg);
        }
    }
    let _ = h265::au_is_keyframe(stream);
});
