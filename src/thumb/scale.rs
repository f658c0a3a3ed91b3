//! Fast separable scaling of 4:2:0 pictures, and the target size that keeps the aspect ratio.
//!
//! Downscaling averages every source pixel under the output pixel (a triangle filter as wide as
//! the scale factor), so large reductions do not alias; upscaling is bilinear. Weights are
//! precomputed once per axis in 14-bit fixed point.

use super::picture::Picture;

/// The largest side river-thumb scales to.
pub const MAX_SIDE: u32 = 8192;

/// The output size for a `src_w × src_h` picture given an optional width and/or height. One of
/// them scales the other in proportion; both fit the picture inside that box, keeping the aspect
/// ratio. Never zero.
pub fn fit(src_w: u32, src_h: u32, want_w: Option<u32>, want_h: Option<u32>) -> (u32, u32) {
    let (sw, sh) = (src_w.max(1) as u64, src_h.max(1) as u64);
    let clamp = |v: u64| v.clamp(1, MAX_SIDE as u64) as u32;
    let round_div = |a: u64, b: u64| (a + b / 2) / b;
    match (want_w, want_h) {
        (None, None) => (src_w, src_h),
        (Some(w), None) => (clamp(w as u64), clamp(round_div(w as u64 * sh, sw))),
        (None, Some(h)) => (clamp(round_div(h as u64 * sw, sh)), clamp(h as u64)),
        (Some(w), Some(h)) => {
            // Compare w/sw with h/sh without floating point.
            if w as u64 * sh <= h as u64 * sw {
                (clamp(w as u64), clamp(round_div(w as u64 * sh, sw)))
            } else {
                (clamp(round_div(h as u64 * sw, sh)), clamp(h as u64))
            }
        }
    }
}

const SHIFT: u32 = 14;
const ONE: i32 = 1 << SHIFT;

/// Per-output-sample filter taps along one axis.
struct Taps {
    /// First source index of each output sample.
    start: Vec<usize>,
    /// `taps` weights per output sample (zero-padded), summing to [`ONE`].
    weights: Vec<i32>,
    taps: usize,
}

impl Taps {
    fn new(src: usize, dst: usize) -> Taps {
        let scale = src as f64 / dst as f64;
        let radius = scale.max(1.0);
        let taps = (2.0 * radius).ceil() as usize + 1;
        let mut start = Vec::with_capacity(dst);
        let mut weights = vec![0i32; dst * taps];
        let mut w = vec![0f64; taps];
        for i in 0..dst {
            let center = (i as f64 + 0.5) * scale - 0.5;
            let lo = (center - radius).floor() as i64 + 1;
            // Clamp the window into the source; edge pixels absorb the weight outside.
            let first = lo.clamp(0, src.saturating_sub(taps) as i64) as usize;
            w.iter_mut().for_each(|x| *x = 0.0);
            let mut sum = 0.0;
            for k in 0..taps {
                let s = lo + k as i64;
                let d = ((s as f64 - center) / radius).abs();
                let wt = (1.0 - d).max(0.0);
                if wt == 0.0 {
                    continue;
                }
                let idx = (s.clamp(0, src as i64 - 1) as usize).saturating_sub(first);
                let idx = idx.min(taps - 1);
                w[idx] += wt;
                sum += wt;
            }
            let row = &mut weights[i * taps..(i + 1) * taps];
            let mut acc = 0;
            for (dst_w, &x) in row.iter_mut().zip(&w) {
                *dst_w = (x / sum * ONE as f64).round() as i32;
                acc += *dst_w;
            }
            // Put the rounding remainder on the largest weight so rows sum to exactly ONE.
            if let Some(m) = (0..taps).max_by_key(|&k| row[k]) {
                row[m] += ONE - acc;
            }
            start.push(first);
        }
        Taps {
            start,
            weights,
            taps,
        }
    }
}

/// Scales one plane of `sw × sh` into `dw × dh`.
fn scale_plane(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    if sw == dw && sh == dh {
        return src.to_vec();
    }
    let hx = Taps::new(sw, dw);
    let vy = Taps::new(sh, dh);
    let round = 1 << (SHIFT - 1);
    // Horizontal pass: sh rows of dw samples. A window may reach past a narrow source: the
    // taps there are zero, and `get` keeps the reads in bounds.
    let mut mid = vec![0u8; dw * sh];
    for (srow, mrow) in src.chunks_exact(sw).zip(mid.chunks_exact_mut(dw)) {
        for (x, m) in mrow.iter_mut().enumerate() {
            let s0 = hx.start[x];
            let ws = &hx.weights[x * hx.taps..(x + 1) * hx.taps];
            let mut acc = round;
            for (k, &wt) in ws.iter().enumerate() {
                acc += wt * *srow.get(s0 + k).unwrap_or(&0) as i32;
            }
            *m = (acc >> SHIFT).clamp(0, 255) as u8;
        }
    }
    // Vertical pass: accumulate whole rows at a time (cache friendly).
    let mut out = vec![0u8; dw * dh];
    let mut acc = vec![0i32; dw];
    for (y, orow) in out.chunks_exact_mut(dw).enumerate() {
        acc.iter_mut().for_each(|a| *a = round);
        let s0 = vy.start[y];
        let ws = &vy.weights[y * vy.taps..(y + 1) * vy.taps];
        for (k, &wt) in ws.iter().enumerate() {
            if wt == 0 {
                continue;
            }
            let Some(mrow) = mid.get((s0 + k) * dw..(s0 + k + 1) * dw) else {
                continue;
            };
            for (a, &m) in acc.iter_mut().zip(mrow) {
                *a += wt * m as i32;
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = (a >> SHIFT).clamp(0, 255) as u8;
        }
    }
    out
}

/// Scales a picture to `w × h` (each plane separately). An inconsistent picture is returned as
/// is.
pub fn scale(p: &Picture, w: u32, h: u32) -> Picture {
    if (p.width, p.height) == (w, h) || !p.is_consistent() || w == 0 || h == 0 {
        return p.clone();
    }
    let (sw, sh) = (p.width as usize, p.height as usize);
    let (scw, sch) = (p.chroma_width() as usize, p.chroma_height() as usize);
    let (dw, dh) = (w as usize, h as usize);
    let (dcw, dch) = (dw.div_ceil(2), dh.div_ceil(2));
    Picture {
        width: w,
        height: h,
        y: scale_plane(&p.y, sw, sh, dw, dh),
        u: scale_plane(&p.u, scw, sch, dcw, dch),
        v: scale_plane(&p.v, scw, sch, dcw, dch),
        colour: p.colour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thumb::picture::Colour;

    #[test]
    fn fit_keeps_aspect_ratio() {
        assert_eq!(fit(1280, 720, None, None), (1280, 720));
        assert_eq!(fit(1280, 720, Some(320), None), (320, 180));
        assert_eq!(fit(1280, 720, None, Some(90)), (160, 90));
        assert_eq!(fit(1280, 720, Some(320), Some(320)), (320, 180));
        assert_eq!(fit(1280, 720, Some(1000), Some(90)), (160, 90));
        assert_eq!(fit(160, 120, Some(100), None), (100, 75));
        assert_eq!(fit(1920, 1080, Some(1), None), (1, 1));
        assert_eq!(fit(2, 2, Some(100_000), None), (MAX_SIDE, MAX_SIDE));
    }

    #[test]
    fn flat_stays_flat_at_every_size() {
        let p = Picture::filled(37, 23, (200, 60, 180), Colour::default());
        for (w, h) in [(1, 1), (5, 3), (18, 11), (37, 23), (74, 46), (100, 7)] {
            let s = scale(&p, w, h);
            assert!(s.is_consistent(), "{w}x{h}");
            assert!(s.y.iter().all(|&v| v == 200), "{w}x{h} luma");
            assert!(s.u.iter().all(|&v| v == 60), "{w}x{h} cb");
            assert!(s.v.iter().all(|&v| v == 180), "{w}x{h} cr");
        }
    }

    #[test]
    fn halving_averages_pairs() {
        // Columns alternate 0 and 200: a 2:1 reduction averages each pair to 100.
        let mut p = Picture::filled(64, 8, (0, 128, 128), Colour::default());
        for (i, v) in p.y.iter_mut().enumerate() {
            *v = if i % 2 == 0 { 0 } else { 200 };
        }
        let s = scale(&p, 32, 4);
        for row in s.y.chunks(32) {
            // The edge columns see a replicated edge pixel; the inside is exactly the average.
            for &v in &row[1..31] {
                assert_eq!(v, 100);
            }
        }
    }

    #[test]
    fn gradient_stays_monotonic() {
        let mut p = Picture::filled(256, 4, (0, 128, 128), Colour::default());
        for (i, v) in p.y.iter_mut().enumerate() {
            *v = (i % 256) as u8;
        }
        for w in [16, 100, 255, 512] {
            let s = scale(&p, w, 4);
            let row = &s.y[..w as usize];
            assert!(row.windows(2).all(|a| a[0] <= a[1]), "{w}: {row:?}");
            assert!(row[0] < 20 && row[w as usize - 1] > 235, "{w}");
        }
    }
}
