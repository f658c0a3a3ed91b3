//! Long-lived decoders fed single keyframes: openh264 for H.264 (with an SPS that asks for one
//! reference frame: [`h264::sps_with_max_refs`]), libde265 for H.265 ([`super::hevc`]).

use super::hevc::HevcDecoder;
use super::picture::{Colour, Picture, Planes};
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

/// The largest picture accepted from the decoder (luma samples), a bound on what is read of it.
const MAX_PIXELS: usize = 8192 * 8192;

impl KeyframeDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one keyframe (its parameter sets are put in band first) into a picture of its own.
    pub fn decode(&mut self, key: &Keyframe) -> Result<Picture, ThumbError> {
        self.decode_with(key, |p| {
            Picture::from_planes(p).ok_or(ThumbError::ShortPlane)
        })?
    }

    /// Decodes one keyframe and hands its planes to `f`: for H.264, where openh264 holds them,
    /// with no copy of the picture (1.4 MB at 720p, and its page faults, in a one-shot
    /// thumbnail); for H.265, libde265's picture copied out.
    pub fn decode_with<R>(
        &mut self,
        key: &Keyframe,
        f: impl FnOnce(&Planes<'_>) -> R,
    ) -> Result<R, ThumbError> {
        self.annexb.clear();
        let res = match key.config.codec {
            VideoCodec::H264 => {
                self.h264_annexb(key);
                decode_h264(
                    &mut self.decoder,
                    &self.annexb,
                    Colour::from_config(&key.config),
                    f,
                )
            }
            VideoCodec::H265 => {
                h265::write_annexb_au(&key.data, &key.config, true, &mut self.annexb);
                let dec = match &mut self.hevc {
                    Some(d) => Ok(d),
                    None => HevcDecoder::new().map(|d| self.hevc.insert(d)),
                };
                dec.and_then(|d| d.decode(&self.annexb))
                    .map(|p| f(&p.planes()))
            }
        };
        if res.is_err() {
            self.decoder = None;
            self.hevc = None;
        }
        res
    }

    /// The keyframe as Annex B for openh264. The IDR is decoded alone: it needs one picture, but
    /// openh264 allocates and clears max_num_ref_frames + 2 of them first (6 of 1.6 MB for a
    /// 720p x264 stream with B-frames: most of a one-shot thumbnail's time). An SPS saying 1
    /// makes it 3.
    fn h264_annexb(&mut self, key: &Keyframe) {
        let mut pieces = Vec::new();
        h264::annexb_pieces(&key.data, &key.config, true, &mut pieces);
        for piece in pieces {
            match (h264::nal_type(piece) == h264::nal_types::SPS)
                .then(|| h264::sps_with_max_refs(piece, 1))
            {
                Some(Ok(sps)) => self.annexb.extend_from_slice(&sps),
                // An SPS this cannot read goes as it is; the decoder judges it.
                Some(Err(_)) | None => self.annexb.extend_from_slice(piece),
            }
        }
    }
}

fn decode_h264<R>(
    decoder: &mut Option<openh264::decoder::Decoder>,
    annexb: &[u8],
    colour: Colour,
    f: impl FnOnce(&Planes<'_>) -> R,
) -> Result<R, ThumbError> {
    let dec = match decoder {
        Some(d) => d,
        None => decoder.insert(
            openh264::decoder::Decoder::new()
                .map_err(|e| ThumbError::DecoderStart(VideoCodec::H264, e.to_string()))?,
        ),
    };
    let yuv = dec
        .decode(annexb)
        .map_err(|e| ThumbError::Decode(VideoCodec::H264, e.to_string()))?
        .ok_or(ThumbError::NoPicture)?;
    Ok(f(&planes(&yuv, colour)?))
}

/// The decoded picture's planes where openh264 holds them, checked: a bound on the size, and
/// every row inside its plane.
fn planes<'a>(
    yuv: &'a openh264::decoder::DecodedYUV<'_>,
    colour: Colour,
) -> Result<Planes<'a>, ThumbError> {
    use openh264::formats::YUVSource;
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    if w == 0 || h == 0 || w.saturating_mul(h) > MAX_PIXELS || sy < w || su != sv {
        return Err(ThumbError::UnusablePicture(w, h));
    }
    let p = Planes {
        width: w as u32,
        height: h as u32,
        y: yuv.y(),
        y_stride: sy,
        u: yuv.u(),
        v: yuv.v(),
        c_stride: su,
        colour,
    };
    if !p.is_consistent() {
        return Err(ThumbError::ShortPlane);
    }
    Ok(p)
}

/// A keyframe decoded with its parameter sets as they are, by a fresh decoder: what
/// [`KeyframeDecoder`] must match.
#[cfg(test)]
pub(super) fn decode_unmodified(key: &Keyframe) -> Result<Picture, ThumbError> {
    let mut annexb = Vec::new();
    h264::write_annexb_au(&key.data, &key.config, true, &mut annexb);
    decode_h264(&mut None, &annexb, Colour::from_config(&key.config), |p| {
        Picture::from_planes(p).ok_or(ThumbError::ShortPlane)
    })?
}
