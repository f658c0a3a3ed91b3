//! Enhanced FLV (`hvc1`, and HEVC with the legacy codec id 12) through the whole input side and
//! both muxers. Random bytes seldom make Enhanced tags, so the input is read as a list of tags to
//! build: each record is a kind byte, a length byte and that many payload bytes. No panic, the
//! output does not depend on the chunking, with and without --drop-unsupported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::format::flv::{self, TagKind};
use river::pipeline::{Demux, FlvOut, TsOut};

/// Builds an FLV stream from the records.
fn build(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flv::write_header(true, true, &mut out);
    let mut rest = data;
    let mut ts = 0u32;
    while let [kind, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(n);
        rest = next;
        ts = ts.wrapping_add(u32::from(kind >> 4) * 10);
        let key = kind & 0x08 != 0;
        let mut body = Vec::new();
        let ft: u8 = if key { 1 } else { 2 };
        match kind & 0x07 {
            // Enhanced hvc1: SequenceStart, CodedFrames (with a composition time), CodedFramesX,
            // SequenceEnd, or another packet type (metadata, multitrack, ...).
            0..=3 => {
                let pt = [0u8, 1, 3, 2][usize::from(kind & 3)];
                body.push(0x80 | (ft << 4) | pt);
                body.extend_from_slice(b"hvc1");
                body.extend_from_slice(payload);
            }
            4 => {
                body.push(0x80 | (ft << 4) | (kind >> 4));
                body.extend_from_slice(b"hvc1");
                body.extend_from_slice(payload);
            }
            // Legacy codec id 12 laid out as AVC.
            5 => {
                body.push((ft << 4) | 12);
                body.extend_from_slice(payload);
            }
            // AAC audio.
            6 => {
                body.extend_from_slice(&[0xaf, kind >> 7]);
                body.extend_from_slice(payload);
            }
            // Any body.
            _ => body.extend_from_slice(payload),
        }
        let kind = if kind & 0x07 == 6 {
            TagKind::Audio
        } else {
            TagKind::Video
        };
        let _ = flv::write_tag(kind, ts, &body, &mut out);
    }
    out
}

fn run<'a>(drop: bool, chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<u8>, bool) {
    let mut d = Demux::new(None, None, 10.0);
    d.set_drop_unsupported(drop);
    let (mut evs, mut diags) = (Vec::new(), Vec::new());
    let mut failed = false;
    for c in chunks {
        if d.push(c, &mut evs, &mut diags).is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        failed = d.finish(&mut evs, &mut diags).is_err();
    }
    let (mut ts, mut flv) = (Vec::new(), Vec::new());
    let (mut t, mut f) = (TsOut::new(), FlvOut::new());
    for e in &evs {
        let _ = t.event(e, &mut ts);
        let _ = f.event(e, &mut flv);
    }
    (ts, flv, failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, records)) = data.split_first() else {
        return;
    };
    let stream = build(records);
    for drop in [false, true] {
        let whole = run(drop, [&stream[..]]);
        let mut chunks = Vec::new();
        let mut rest = &stream[..];
        let mut k = usize::from(seed);
        while !rest.is_empty() {
            let n = (k % 300 + 1).min(rest.len());
            let (a, b) = rest.split_at(n);
            chunks.push(a);
            rest = b;
            k = k.wrapping_mul(31).wrapping_add(7);
        }
        assert!(run(drop, chunks) == whole);
    }
});
