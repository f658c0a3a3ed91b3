//! FLV reader on arbitrary bytes in arbitrary chunks: no panic, and the events equal the one-shot
//! result. Every tag body also goes through the body and script parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::format::flv::{parse_script, AudioTag, FlvEvent, FlvReader, TagKind, VideoTag};

fn run(data: &[u8], cuts: &[u8], max: u32) -> Vec<FlvEvent> {
    let mut r = FlvReader::with_max_tag_size(max);
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = if cuts.is_empty() {
            rest.len()
        } else {
            (cuts[i % cuts.len()] as usize + 1).min(rest.len())
        };
        i += 1;
        let (a, b) = rest.split_at(n);
        r.push(a, &mut out);
        rest = b;
    }
    r.finish(&mut out);
    out
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many chunk-size bytes follow; second: a small max tag size or the default.
    let Some((&ncuts, input)) = input.split_first() else {
        return;
    };
    let Some((&small, input)) = input.split_first() else {
        return;
    };
    let ncuts = (ncuts as usize % 16).min(input.len());
    let (cuts, data) = input.split_at(ncuts);
    let max = if small & 1 == 1 {
        u32::from(small) * 64
    } else {
        river::format::flv::DEFAULT_MAX_TAG_SIZE
    };
    let whole = run(data, &[], max);
    let chunked = run(data, cuts, max);
    assert_eq!(whole, chunked);
    for e in &whole {
        if let FlvEvent::Tag(t) = e {
            match t.kind {
                TagKind::Video => {
                    let _ = VideoTag::parse(&t.body);
                }
                TagKind::Audio => {
                    let _ = AudioTag::parse(&t.body);
                }
                TagKind::Script => {
                    let _ = parse_script(&t.body);
                }
                TagKind::Other(_) => {}
            }
        }
    }
});
