//! Picture → JPEG (jpeg-encoder) or PNG (png).
//!
//! JPEG takes the YCbCr planes directly when the picture is BT.601 (JFIF's own matrix): only the
//! range is expanded, through lookup tables, so there is no RGB round trip. Other matrices go
//! through RGB.

use jpeg_encoder::{ColorType, Encoder, ImageBuffer, JpegColorType};

use super::picture::{Matrix, Picture, Planes};
use super::{ImageFormat, ThumbError};

/// Encodes `p` as `format` into `out` (appended). `quality` (1–100) applies to JPEG.
pub fn encode(
    p: &Picture,
    format: ImageFormat,
    quality: u8,
    out: &mut Vec<u8>,
) -> Result<(), ThumbError> {
    if !p.is_consistent() {
        return Err(ThumbError::InconsistentPicture);
    }
    encode_planes(&p.planes(), format, quality, out)
}

/// [`encode`] of planes where they lie (a decoder's buffers).
pub fn encode_planes(
    p: &Planes<'_>,
    format: ImageFormat,
    quality: u8,
    out: &mut Vec<u8>,
) -> Result<(), ThumbError> {
    match format {
        ImageFormat::Jpeg => encode_jpeg_planes(p, quality, out),
        ImageFormat::Png => encode_png_planes(p, out),
    }
}

/// Baseline JPEG, 4:2:0, at `quality` (clamped to 1–100).
pub fn encode_jpeg(p: &Picture, quality: u8, out: &mut Vec<u8>) -> Result<(), ThumbError> {
    if !p.is_consistent() {
        return Err(ThumbError::InconsistentPicture);
    }
    encode_jpeg_planes(&p.planes(), quality, out)
}

fn encode_jpeg_planes(p: &Planes<'_>, quality: u8, out: &mut Vec<u8>) -> Result<(), ThumbError> {
    if !p.is_consistent() {
        return Err(ThumbError::InconsistentPicture);
    }
    let (w, h) = match (u16::try_from(p.width), u16::try_from(p.height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(ThumbError::JpegSize(p.width, p.height)),
    };
    let mut enc = Encoder::new(&mut *out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    let res = if p.colour.matrix == Matrix::Bt601 {
        enc.encode_image(Jfif::new(*p, w, h))
    } else {
        let mut rgb = Vec::new();
        p.to_rgb(&mut rgb);
        enc.encode(&rgb, w, h, ColorType::Rgb)
    };
    res.map_err(|e| ThumbError::Jpeg(e.to_string()))
}

/// PNG, 8-bit RGB, fast compression.
pub fn encode_png(p: &Picture, out: &mut Vec<u8>) -> Result<(), ThumbError> {
    if !p.is_consistent() {
        return Err(ThumbError::InconsistentPicture);
    }
    encode_png_planes(&p.planes(), out)
}

fn encode_png_planes(p: &Planes<'_>, out: &mut Vec<u8>) -> Result<(), ThumbError> {
    if !p.is_consistent() || p.width == 0 || p.height == 0 {
        return Err(ThumbError::InconsistentPicture);
    }
    let mut rgb = Vec::new();
    p.to_rgb(&mut rgb);
    let mut enc = png::Encoder::new(&mut *out, p.width, p.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let failed = |e: png::EncodingError| ThumbError::Png(e.to_string());
    let mut w = enc.write_header().map_err(failed)?;
    w.write_image_data(&rgb).map_err(failed)?;
    w.finish().map_err(failed)
}

/// A BT.601 picture seen as JFIF YCbCr rows (full range), chroma repeated to full width; the
/// encoder subsamples it back to the same 4:2:0 samples.
struct Jfif<'a> {
    p: Planes<'a>,
    w: u16,
    h: u16,
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl<'a> Jfif<'a> {
    fn new(p: Planes<'a>, w: u16, h: u16) -> Self {
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        for i in 0..256usize {
            if p.colour.full_range {
                luma[i] = i as u8;
                chroma[i] = i as u8;
            } else {
                let y = ((i as i32 - 16) * 255 * 2 + 219) / (219 * 2);
                luma[i] = y.clamp(0, 255) as u8;
                let c = (i as i32 - 128) * 255;
                let c = if c >= 0 {
                    (c * 2 + 224) / 448
                } else {
                    -((-c * 2 + 224) / 448)
                };
                chroma[i] = (c + 128).clamp(0, 255) as u8;
            }
        }
        Jfif {
            p,
            w,
            h,
            luma,
            chroma,
        }
    }
}

impl ImageBuffer for Jfif<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.w
    }

    fn height(&self) -> u16 {
        self.h
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let w = self.w as usize;
        let cw = self.p.chroma_width() as usize;
        let row = y as usize;
        let (ys, us, vs) = (
            self.p.y_row(row),
            self.p.u_row(row / 2),
            self.p.v_row(row / 2),
        );
        buffers[0].extend(ys.iter().map(|&v| self.luma[v as usize]));
        for (plane, src) in [(1, us), (2, vs)] {
            let b = &mut buffers[plane];
            for &c in src {
                let c = self.chroma[c as usize];
                b.push(c);
                b.push(c);
            }
            b.truncate(b.len() - (cw * 2 - w).min(b.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thumb::picture::Colour;

    #[test]
    fn jpeg_has_markers_and_size() {
        for (w, h) in [(16, 16), (33, 17), (1, 1)] {
            let p = Picture::filled(w, h, (120, 90, 200), Colour::default());
            let mut out = Vec::new();
            encode_jpeg(&p, 80, &mut out).unwrap();
            assert_eq!(&out[..2], &[0xff, 0xd8]);
            assert_eq!(&out[out.len() - 2..], &[0xff, 0xd9]);
            // SOF0: height, width.
            let sof = out.windows(2).position(|x| x == [0xff, 0xc0]).unwrap();
            let hh = u16::from_be_bytes([out[sof + 5], out[sof + 6]]);
            let ww = u16::from_be_bytes([out[sof + 7], out[sof + 8]]);
            assert_eq!((ww as u32, hh as u32), (w, h));
        }
    }

    #[test]
    fn jpeg_quality_changes_size() {
        let mut p = Picture::filled(64, 64, (128, 128, 128), Colour::default());
        for (i, v) in p.y.iter_mut().enumerate() {
            *v = (i * 7 % 251) as u8;
        }
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        encode_jpeg(&p, 10, &mut lo).unwrap();
        encode_jpeg(&p, 95, &mut hi).unwrap();
        assert!(hi.len() > lo.len() * 2, "{} vs {}", hi.len(), lo.len());
    }

    #[test]
    fn jpeg_of_bt709_goes_through_rgb() {
        let c = Colour {
            matrix: Matrix::Bt709,
            full_range: false,
        };
        let p = Picture::filled(20, 10, (100, 100, 100), c);
        let mut out = Vec::new();
        encode_jpeg(&p, 80, &mut out).unwrap();
        assert_eq!(&out[..2], &[0xff, 0xd8]);
    }

    #[test]
    fn range_tables() {
        let p = Picture::filled(2, 2, (0, 0, 0), Colour::default());
        let j = Jfif::new(p.planes(), 2, 2);
        assert_eq!(
            (j.luma[16], j.luma[235], j.luma[0], j.luma[255]),
            (0, 255, 0, 255)
        );
        assert_eq!((j.chroma[16], j.chroma[128], j.chroma[240]), (0, 128, 255));
    }

    #[test]
    fn png_roundtrip_header() {
        let p = Picture::filled(7, 5, (235, 128, 128), Colour::default());
        let mut out = Vec::new();
        encode_png(&p, &mut out).unwrap();
        assert_eq!(&out[..8], b"\x89PNG\r\n\x1a\n");
        let dec = png::Decoder::new(std::io::Cursor::new(&out));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (7, 5));
        assert!(buf[..info.buffer_size()].iter().all(|&v| v == 255));
    }

    #[test]
    fn bad_sizes_are_errors() {
        let mut p = Picture::filled(4, 4, (0, 0, 0), Colour::default());
        p.y.pop();
        assert!(encode_jpeg(&p, 80, &mut Vec::new()).is_err());
        assert!(encode_png(&p, &mut Vec::new()).is_err());
        let big = Picture::filled(70_000, 1, (0, 0, 0), Colour::default());
        assert!(encode_jpeg(&big, 80, &mut Vec::new()).is_err());
        assert_eq!(
            encode_jpeg(&p, 80, &mut Vec::new()),
            Err(ThumbError::InconsistentPicture)
        );
        let e = encode_jpeg(&big, 80, &mut Vec::new()).unwrap_err();
        assert_eq!(e, ThumbError::JpegSize(70_000, 1));
        assert_eq!(e.to_string(), "70000x1 is outside JPEG's 1..65535 range");
    }
}
