//! Long-lived decoders fed single keyframes: openh264 for H.264, libde265 for H.265
//! ([`super::hevc`]).

use super::hevc::HevcDecoder;
use super::picture::{Colour, Picture};
use super::{Keyframe, ThumbError};
use crate::codec::{h264, h265};
use crate::media::VideoCodec;

/// Decodes keyframes to [`Picture`]s. Each codec's decoder is created on first use and kept
/// alive between keyframes (every IDR resets openh264's references; libde265 is reset after each
/// keyframe, so keyframes can be fed alone); it is recreated after an error so one corrupt
/// keyframe cannot poison the next.
#[derive(Default)]
pub struct KeyframeDecoder {
    decoder: Option<openh264::decoder::Decoder>,
    hevc: Option<HevcDecoder>,
    annexb: Vec<u8>,
}

/// The largest picture accepted from the decoder (luma samples), a bound on the copy.
const MAX_PIXELS: usize = 8192 * 8192;

impl KeyframeDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one keyframe (its parameter sets are put in band first).
    pub fn decode(&mut self, key: &Keyframe) -> Result<Picture, ThumbError> {
        self.annexb.clear();
        let res = match key.config.codec {
            VideoCodec::H264 => {
                h264::write_annexb_au(&key.data, &key.config, true, &mut self.annexb);
                self.decode_annexb(Colour::from_config(&key.config))
            }
            VideoCodec::H265 => {
                h265::write_annexb_au(&key.data, &key.config, true, &mut self.annexb);
                self.decode_hevc()
            }
        };
        if res.is_err() {
            self.decoder = None;
            self.hevc = None;
        }
        res
    }

    fn decode_hevc(&mut self) -> Result<Picture, ThumbError> {
        let dec = match &mut self.hevc {
            Some(d) => d,
            None => self.hevc.insert(HevcDecoder::new()?),
        };
        dec.decode(&self.annexb)
    }

    fn decode_annexb(&mut self, colour: Colour) -> Result<Picture, ThumbError> {
        let dec = match &mut self.decoder {
            Some(d) => d,
            None => self.decoder.insert(
                openh264::decoder::Decoder::new()
                    .map_err(|e| ThumbError::DecoderStart(VideoCodec::H264, e.to_string()))?,
            ),
        };
        let yuv = dec
            .decode(&self.annexb)
            .map_err(|e| ThumbError::Decode(VideoCodec::H264, e.to_string()))?
            .ok_or(ThumbError::NoPicture)?;
        copy_picture(&yuv, colour)
    }
}

fn copy_picture(
    yuv: &openh264::decoder::DecodedYUV<'_>,
    colour: Colour,
) -> Result<Picture, ThumbError> {
    use openh264::formats::YUVSource;
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    if w == 0 || h == 0 || w.saturating_mul(h) > MAX_PIXELS || sy < w {
        return Err(ThumbError::UnusablePicture(w, h));
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let plane = |src: &[u8], stride: usize, pw: usize, ph: usize| -> Result<Vec<u8>, ThumbError> {
        let mut out = Vec::with_capacity(pw * ph);
        for r in 0..ph {
            let row = src
                .get(r * stride..r * stride + pw)
                .ok_or(ThumbError::ShortPlane)?;
            out.extend_from_slice(row);
        }
        Ok(out)
    };
    Ok(Picture {
        width: w as u32,
        height: h as u32,
        y: plane(yuv.y(), sy, w, h)?,
        u: plane(yuv.u(), su, cw, ch)?,
        v: plane(yuv.v(), sv, cw, ch)?,
        colour,
    })
}
