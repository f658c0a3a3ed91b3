//! Test inputs built from the embedded clip ([`crate::testsrc::CLIP_FLV`]: 4 s, 120 frames, an
//! IDR every 30 frames, AAC audio): the FLV itself, MPEG-TS from river's muxer, and Annex B.

use crate::codec::h264;
use crate::media::{MediaEvent, Track};
use crate::pipeline::{Demux, TsOut};
use crate::testsrc::CLIP_FLV;

pub fn flv() -> Vec<u8> {
    CLIP_FLV.to_vec()
}

fn events() -> Vec<MediaEvent> {
    let mut d = Demux::new(None, None, 10.0);
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    d.push(CLIP_FLV, &mut ev, &mut diags).unwrap();
    d.finish(&mut ev, &mut diags).unwrap();
    ev
}

pub fn ts() -> Vec<u8> {
    let mut t = TsOut::new();
    let mut out = Vec::new();
    for e in events() {
        t.event(&e, &mut out).unwrap();
    }
    out
}

/// Annex B with an AUD before every access unit and SPS/PPS before every IDR (as
/// `ffmpeg -f h264` writes a TS source's video).
pub fn annexb() -> Vec<u8> {
    let evs = events();
    let cfg = evs
        .iter()
        .find_map(|e| match e {
            MediaEvent::Video(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    let mut out = Vec::new();
    for e in &evs {
        if let MediaEvent::Frame(f) = e {
            if f.track == Track::Video {
                h264::write_annexb_au(&f.data, &cfg, f.keyframe, &mut out);
            }
        }
    }
    out
}

/// Annex B without AUDs: SPS, PPS, (SEI,) IDR; as libx264 writes raw H.264.
pub fn annexb_no_aud() -> Vec<u8> {
    let a = annexb();
    let mut out = Vec::with_capacity(a.len());
    for nal in h264::annexb_nals(&a) {
        if h264::nal_type(nal) != 9 {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    out
}

/// Raw H.265 from x265 (160x120, B-frames, open GOP): VPS, SPS, PPS and SEI before an IDR_N_LP and
/// two CRA pictures, each CRA followed by two RASL pictures.
pub fn annexb_h265() -> Vec<u8> {
    crate::codec::h265::tests::BF2.to_vec()
}

/// A small deterministic generator for chunkings.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Random cut sizes in 1..=max covering `len`.
    pub fn cuts(&mut self, len: usize, max: usize) -> Vec<usize> {
        let mut v = Vec::new();
        let mut left = len;
        while left > 0 {
            let n = (1 + self.next() as usize % max).min(left);
            v.push(n);
            left -= n;
        }
        v
    }
}
