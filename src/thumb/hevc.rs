//! One long-lived libde265 decoder (Debian's `libde265`, through the `libde265-rs` binding), fed
//! single H.265 keyframes.

use libde265_rs::{
    new_decoder, Channel, ChromaFormat, DeError, DecodeResult, DecoderInput, DecoderOutput, Image,
};

use super::picture::{Colour, Matrix, Picture};
use super::ThumbError;
use crate::media::VideoCodec;

/// The largest picture accepted from the decoder (luma samples), a bound on the copy.
const MAX_PIXELS: usize = 8192 * 8192;
/// `decode` calls allowed for one keyframe: it asks to be called again per decoded slice segment
/// and per picture output, far fewer than this for any picture river accepts.
const MAX_STEPS: usize = 1 << 16;

/// Both halves of one libde265 decoder context.
pub struct HevcDecoder {
    input: DecoderInput,
    output: DecoderOutput,
}

// SAFETY: `DecoderInput` and `DecoderOutput` share the context through an `Rc`, which is why they
// are not `Send`. Both clones of that `Rc` live here and nowhere else (no `Image` borrow outlives
// `decode`), so the reference count is never touched from two threads; and a libde265 context
// without worker threads (none are started) is plain memory with no thread affinity.
unsafe impl Send for HevcDecoder {}

impl HevcDecoder {
    pub fn new() -> Result<Self, ThumbError> {
        libde265_rs::disable_logging();
        let (input, output) = new_decoder().map_err(|e| start_err(&e))?;
        Ok(HevcDecoder { input, output })
    }

    /// Decodes one keyframe given as Annex B (VPS/SPS/PPS in band), then resets the decoder so
    /// the next keyframe starts clean.
    pub fn decode(&mut self, annexb: &[u8]) -> Result<Picture, ThumbError> {
        let res = self.decode_inner(annexb);
        self.input.reset();
        res
    }

    fn decode_inner(&mut self, annexb: &[u8]) -> Result<Picture, ThumbError> {
        self.input
            .push_data(annexb, 0, 0)
            .map_err(|e| decode_err(&e))?;
        // The end of the stream: the picture is decoded and output without waiting for the next.
        self.input.flush_data().map_err(|e| decode_err(&e))?;
        for _ in 0..MAX_STEPS {
            if let Some(img) = self.output.next_picture() {
                return copy_picture(&img);
            }
            match self.input.decode() {
                Ok(DecodeResult::CallAgain) | Err(DeError::ErrorImageBufferFull) => {}
                Ok(DecodeResult::Done) | Err(DeError::ErrorWaitingForInputData) => {
                    return self
                        .output
                        .next_picture()
                        .map_or(Err(ThumbError::NoPicture), |img| copy_picture(&img));
                }
                Err(e) => return Err(decode_err(&e)),
            }
        }
        Err(ThumbError::NoPicture)
    }
}

fn start_err(e: &DeError) -> ThumbError {
    ThumbError::DecoderStart(VideoCodec::H265, e.to_string())
}

fn decode_err(e: &DeError) -> ThumbError {
    ThumbError::Decode(VideoCodec::H265, e.to_string())
}

/// The picture as 8-bit 4:2:0 (deeper samples are shifted down; monochrome gets neutral chroma).
fn copy_picture(img: &Image<'_>) -> Result<Picture, ThumbError> {
    let (w, h) = (
        img.width(Channel::Y) as usize,
        img.height(Channel::Y) as usize,
    );
    if w == 0 || h == 0 || w.saturating_mul(h) > MAX_PIXELS {
        return Err(ThumbError::UnusablePicture(w, h));
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (u, v) = match img.chroma_format() {
        ChromaFormat::C420 => (
            plane(img, Channel::Cb, cw, ch)?,
            plane(img, Channel::Cr, cw, ch)?,
        ),
        ChromaFormat::Mono => (vec![128; cw * ch], vec![128; cw * ch]),
        other => return Err(ThumbError::Chroma(format!("{other:?}"))),
    };
    let matrix = match img.matrix_coefficients() {
        1 => Matrix::Bt709,
        _ => Matrix::Bt601,
    };
    Ok(Picture {
        width: w as u32,
        height: h as u32,
        y: plane(img, Channel::Y, w, h)?,
        u,
        v,
        colour: Colour {
            matrix,
            full_range: img.full_range(),
        },
    })
}

/// One plane, `pw × ph` samples, tightly packed, 8 bits.
fn plane(img: &Image<'_>, c: Channel, pw: usize, ph: usize) -> Result<Vec<u8>, ThumbError> {
    if img.width(c) as usize != pw || img.height(c) as usize != ph {
        return Err(ThumbError::ShortPlane);
    }
    let bits = img.bits_per_pixel(c);
    let (src, stride) = img.plane(c);
    let bytes = if bits > 8 { 2 } else { 1 };
    if !(8..=16).contains(&bits) || stride < pw * bytes {
        return Err(ThumbError::UnusablePicture(pw, ph));
    }
    let mut out = Vec::with_capacity(pw * ph);
    for r in 0..ph {
        let row = src
            .get(r * stride..r * stride + pw * bytes)
            .ok_or(ThumbError::ShortPlane)?;
        if bytes == 1 {
            out.extend_from_slice(row);
        } else {
            let shift = bits - 8;
            out.extend(
                row.chunks_exact(2)
                    .map(|s| (u16::from_ne_bytes([s[0], s[1]]) >> shift).min(255) as u8),
            );
        }
    }
    Ok(out)
}
