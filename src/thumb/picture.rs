//! A decoded picture in planar 4:2:0 YCbCr, its colour description, and the conversion to RGB.

use crate::codec::h264;
use crate::media::VideoConfig;

/// The YCbCr → RGB matrix of a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// ITU-R BT.601 (SD, and what decoders assume when the stream says nothing).
    Bt601,
    /// ITU-R BT.709 (HD).
    Bt709,
}

/// How a picture's samples map to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    pub matrix: Matrix,
    /// Full range (0–255) instead of the video range (16–235 luma, 16–240 chroma).
    pub full_range: bool,
}

impl Default for Colour {
    fn default() -> Self {
        Colour {
            matrix: Matrix::Bt601,
            full_range: false,
        }
    }
}

impl Colour {
    /// The colour description of the stream's SPS (VUI video_signal_type). Unspecified or
    /// unparsable means BT.601 video range, as ffmpeg assumes.
    pub fn from_config(cfg: &VideoConfig) -> Colour {
        let Some(sig) = cfg
            .sps
            .first()
            .and_then(|s| h264::parse_sps(s).ok())
            .and_then(|s| s.vui_parameters)
            .and_then(|v| v.video_signal_type)
        else {
            return Colour::default();
        };
        let matrix = match sig.colour_description.map(|c| c.matrix_coefficients) {
            Some(1) => Matrix::Bt709,
            _ => Matrix::Bt601,
        };
        Colour {
            matrix,
            full_range: sig.video_full_range_flag,
        }
    }

    /// (Kr, Kb) of the matrix.
    fn kr_kb(self) -> (f64, f64) {
        match self.matrix {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
        }
    }
}

/// One decoded picture, 4:2:0 planar, planes tightly packed: luma `width × height`, each chroma
/// plane `chroma_width() × chroma_height()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub colour: Colour,
}

impl Picture {
    /// Chroma plane width: half the luma width, rounded up.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Chroma plane height: half the luma height, rounded up.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// A picture of one flat colour (for tests and placeholders).
    pub fn filled(width: u32, height: u32, yuv: (u8, u8, u8), colour: Colour) -> Picture {
        let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
        Picture {
            width,
            height,
            y: vec![yuv.0; width as usize * height as usize],
            u: vec![yuv.1; cw * ch],
            v: vec![yuv.2; cw * ch],
            colour,
        }
    }

    /// True when the plane sizes agree with the dimensions.
    pub fn is_consistent(&self) -> bool {
        let c = self.chroma_width() as usize * self.chroma_height() as usize;
        self.y.len() == self.width as usize * self.height as usize
            && self.u.len() == c
            && self.v.len() == c
    }

    /// The planes as [`Planes`] (rows one plane width apart).
    pub fn planes(&self) -> Planes<'_> {
        Planes {
            width: self.width,
            height: self.height,
            y: &self.y,
            y_stride: self.width as usize,
            u: &self.u,
            v: &self.v,
            c_stride: self.chroma_width() as usize,
            colour: self.colour,
        }
    }

    /// A packed copy of `p`'s planes; `None` when `p` is not consistent.
    pub fn from_planes(p: &Planes<'_>) -> Option<Picture> {
        if !p.is_consistent() {
            return None;
        }
        let (cw, ch) = (p.chroma_width() as usize, p.chroma_height() as usize);
        let plane = |rows: &mut dyn Iterator<Item = &[u8]>, len: usize| {
            let mut out = Vec::with_capacity(len);
            rows.for_each(|r| out.extend_from_slice(r));
            out
        };
        Some(Picture {
            width: p.width,
            height: p.height,
            y: plane(&mut (0..p.height as usize).map(|r| p.y_row(r)), p.y_len()),
            u: plane(&mut (0..ch).map(|r| p.u_row(r)), cw * ch),
            v: plane(&mut (0..ch).map(|r| p.v_row(r)), cw * ch),
            colour: p.colour,
        })
    }

    /// Converts to packed RGB (3 bytes per pixel, rows top to bottom), replacing `out`'s contents.
    /// Each chroma sample covers its 2×2 block of luma (as ffmpeg's unscaled yuv420p → rgb24).
    pub fn to_rgb(&self, out: &mut Vec<u8>) {
        self.planes().to_rgb(out);
    }
}

/// A 4:2:0 picture's planes where they lie, rows `y_stride` (luma) and `c_stride` (chroma) bytes
/// apart: a decoder's own buffers, read without copying them out first.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    pub width: u32,
    pub height: u32,
    pub y: &'a [u8],
    pub y_stride: usize,
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub c_stride: usize,
    pub colour: Colour,
}

/// Whether `rows` rows of `width` bytes, `stride` apart, lie inside `plane`.
fn rows_fit(plane: &[u8], stride: usize, width: usize, rows: usize) -> bool {
    stride >= width
        && (rows == 0
            || (rows - 1)
                .checked_mul(stride)
                .and_then(|x| x.checked_add(width))
                .is_some_and(|end| end <= plane.len()))
}

impl<'a> Planes<'a> {
    /// Chroma plane width: half the luma width, rounded up.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Chroma plane height: half the luma height, rounded up.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// True when every row of every plane lies inside its slice.
    pub fn is_consistent(&self) -> bool {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (self.chroma_width() as usize, self.chroma_height() as usize);
        rows_fit(self.y, self.y_stride, w, h)
            && rows_fit(self.u, self.c_stride, cw, ch)
            && rows_fit(self.v, self.c_stride, cw, ch)
    }

    fn y_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// Luma row `r` (of a consistent picture; empty past the end).
    pub fn y_row(&self, r: usize) -> &'a [u8] {
        row(self.y, self.y_stride, self.width as usize, r)
    }

    /// Cb row `r` (chroma rows: half as many as luma rows, rounded up).
    pub fn u_row(&self, r: usize) -> &'a [u8] {
        row(self.u, self.c_stride, self.chroma_width() as usize, r)
    }

    /// Cr row `r`.
    pub fn v_row(&self, r: usize) -> &'a [u8] {
        row(self.v, self.c_stride, self.chroma_width() as usize, r)
    }

    /// [`Picture::to_rgb`] of these planes; `out` is left empty when they are not consistent.
    pub fn to_rgb(&self, out: &mut Vec<u8>) {
        out.clear();
        if !self.is_consistent() {
            return;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        out.resize(w * h * 3, 0);
        let k = RgbCoeffs::new(self.colour);
        for (r, dst) in out.chunks_exact_mut(w * 3).enumerate() {
            let (ys, us, vs) = (self.y_row(r), self.u_row(r / 2), self.v_row(r / 2));
            for (x, (px, &yv)) in dst.chunks_exact_mut(3).zip(ys).enumerate() {
                let (r, g, b) = k.convert(yv, us[x / 2], vs[x / 2]);
                px[0] = r;
                px[1] = g;
                px[2] = b;
            }
        }
    }
}

fn row(plane: &[u8], stride: usize, width: usize, r: usize) -> &[u8] {
    r.checked_mul(stride)
        .and_then(|start| plane.get(start..start.checked_add(width)?))
        .unwrap_or(&[])
}

/// Fixed-point (16 fractional bits) YCbCr → RGB coefficients.
pub(crate) struct RgbCoeffs {
    y_off: i32,
    ky: i32,
    rv: i32,
    gu: i32,
    gv: i32,
    bu: i32,
}

const FIX: f64 = 65536.0;

impl RgbCoeffs {
    pub(crate) fn new(c: Colour) -> RgbCoeffs {
        let (kr, kb) = c.kr_kb();
        let kg = 1.0 - kr - kb;
        let (sy, sc, y_off) = if c.full_range {
            (1.0, 1.0, 0)
        } else {
            (255.0 / 219.0, 255.0 / 224.0, 16)
        };
        let f = |v: f64| (v * FIX).round() as i32;
        RgbCoeffs {
            y_off,
            ky: f(sy),
            rv: f(2.0 * (1.0 - kr) * sc),
            gu: f(-2.0 * kb * (1.0 - kb) / kg * sc),
            gv: f(-2.0 * kr * (1.0 - kr) / kg * sc),
            bu: f(2.0 * (1.0 - kb) * sc),
        }
    }

    #[inline(always)]
    pub(crate) fn convert(&self, y: u8, u: u8, v: u8) -> (u8, u8, u8) {
        let yy = (y as i32 - self.y_off) * self.ky + (1 << 15);
        let u = u as i32 - 128;
        let v = v as i32 - 128;
        let clamp = |x: i32| (x >> 16).clamp(0, 255) as u8;
        (
            clamp(yy + self.rv * v),
            clamp(yy + self.gu * u + self.gv * v),
            clamp(yy + self.bu * u),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_range_black_white_and_primaries() {
        let c = Colour::default();
        let k = RgbCoeffs::new(c);
        assert_eq!(k.convert(16, 128, 128), (0, 0, 0));
        assert_eq!(k.convert(235, 128, 128), (255, 255, 255));
        // BT.601 video-range red: Y 81, Cb 90, Cr 240.
        let (r, g, b) = k.convert(81, 90, 240);
        assert!(r >= 254 && g <= 1 && b <= 1, "{r} {g} {b}");
        let full = RgbCoeffs::new(Colour {
            matrix: Matrix::Bt709,
            full_range: true,
        });
        assert_eq!(full.convert(0, 128, 128), (0, 0, 0));
        assert_eq!(full.convert(255, 128, 128), (255, 255, 255));
        assert_eq!(full.convert(100, 128, 128), (100, 100, 100));
    }

    #[test]
    fn rgb_uses_each_chroma_sample_for_its_block() {
        let mut p = Picture::filled(3, 3, (128, 128, 128), Colour::default());
        assert!(p.is_consistent());
        p.v[1] = 240; // right column of blocks, top row
        let mut rgb = Vec::new();
        p.to_rgb(&mut rgb);
        assert_eq!(rgb.len(), 27);
        let px = |x: usize, y: usize| &rgb[(y * 3 + x) * 3..(y * 3 + x) * 3 + 3];
        assert_eq!(px(0, 0), px(1, 1));
        assert!(px(2, 0)[0] > px(0, 0)[0] + 50);
        assert!(px(2, 1)[0] > px(0, 0)[0] + 50);
        assert_eq!(px(2, 2), px(0, 0));
    }

    #[test]
    fn inconsistent_picture_gives_no_rgb() {
        let mut p = Picture::filled(4, 4, (0, 0, 0), Colour::default());
        p.u.pop();
        let mut rgb = vec![1];
        p.to_rgb(&mut rgb);
        assert!(rgb.is_empty());
    }

    /// A decoder's planes, rows padded: read as the packed picture they hold, to the same
    /// RGB and JPEG bytes; a plane too short for its last row is refused.
    #[test]
    fn strided_planes_read_as_the_packed_picture() {
        let mut p = Picture::filled(5, 3, (10, 20, 30), Colour::default());
        for (i, v) in p.y.iter_mut().enumerate() {
            *v = 16 + i as u8 * 9;
        }
        p.u[1] = 99;
        p.v[4] = 200;
        let pad = |plane: &[u8], w: usize, extra: usize| -> Vec<u8> {
            plane
                .chunks(w)
                .flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0xEE, extra)))
                .collect()
        };
        let (y, u, v) = (pad(&p.y, 5, 3), pad(&p.u, 3, 2), pad(&p.v, 3, 2));
        let s = Planes {
            width: 5,
            height: 3,
            y: &y,
            y_stride: 8,
            u: &u,
            v: &v,
            c_stride: 5,
            colour: p.colour,
        };
        assert!(s.is_consistent());
        assert_eq!(Picture::from_planes(&s).as_ref(), Some(&p));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        p.to_rgb(&mut a);
        s.to_rgb(&mut b);
        assert_eq!(a, b);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        crate::thumb::encode(&p, crate::thumb::ImageFormat::Jpeg, 80, &mut a).unwrap();
        crate::thumb::encode_planes(&s, crate::thumb::ImageFormat::Jpeg, 80, &mut b).unwrap();
        assert_eq!(a, b);
        let short = Planes {
            y: &y[..y.len() - 4],
            ..s
        };
        assert!(!short.is_consistent());
        assert!(Picture::from_planes(&short).is_none());
        assert!(
            crate::thumb::encode_planes(&short, crate::thumb::ImageFormat::Png, 80, &mut b)
                .is_err()
        );
        let narrow = Planes { y_stride: 4, ..s };
        assert!(!narrow.is_consistent());
    }
}
