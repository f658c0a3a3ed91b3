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

    /// Converts to packed RGB (3 bytes per pixel, rows top to bottom), replacing `out`'s contents.
    /// Each chroma sample covers its 2×2 block of luma (as ffmpeg's unscaled yuv420p → rgb24).
    pub fn to_rgb(&self, out: &mut Vec<u8>) {
        out.clear();
        if !self.is_consistent() {
            return;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let cw = self.chroma_width() as usize;
        out.resize(w * h * 3, 0);
        let k = RgbCoeffs::new(self.colour);
        for (row, (dst, ys)) in out
            .chunks_exact_mut(w * 3)
            .zip(self.y.chunks_exact(w))
            .enumerate()
        {
            let c0 = (row / 2) * cw;
            let us = &self.u[c0..c0 + cw];
            let vs = &self.v[c0..c0 + cw];
            for (x, (px, &yv)) in dst.chunks_exact_mut(3).zip(ys).enumerate() {
                let (r, g, b) = k.convert(yv, us[x / 2], vs[x / 2]);
                px[0] = r;
                px[1] = g;
                px[2] = b;
            }
        }
    }
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
}
