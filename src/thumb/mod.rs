//! Thumbnails from the latest keyframe: keep the newest H.264 or H.265 keyframe with its parameter
//! sets ([`KeyframeStore`]), and turn it into a JPEG or PNG only when a picture is wanted
//! ([`Renderer`]: openh264 or libde265 decode → [`scale`] → [`encode`]).
//!
//! No I/O here: the store takes [`MediaEvent`]s, the renderer returns image bytes. Memory is
//! bounded by one keyframe, one decoded picture and one encoded image per format.

use std::sync::Arc;

use bytes::Bytes;

use crate::media::{MediaEvent, VideoConfig, CLOCK_HZ};

mod decode;
mod encode;
mod error;
mod hevc;
mod picture;
mod scale;

pub use decode::KeyframeDecoder;
pub use encode::{encode, encode_jpeg, encode_planes, encode_png};
pub use error::ThumbError;
pub use picture::{Colour, Matrix, Picture, Planes};
pub use scale::{fit, scale, MAX_SIDE};

/// The image formats river-thumb writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ImageFormat {
    /// Baseline JPEG, 4:2:0
    Jpeg,
    /// PNG, 8-bit RGB
    Png,
}

impl ImageFormat {
    /// The HTTP content type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }

    /// The format a file name asks for by its extension (`.png`, `.jpg`, `.jpeg`).
    pub fn from_path(path: &std::path::Path) -> Option<ImageFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(ImageFormat::Png),
            "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
            _ => None,
        }
    }
}

/// One keyframe (an IDR or IRAP access unit, 4-byte NAL lengths) with the configuration it decodes
/// with.
#[derive(Debug, Clone)]
pub struct Keyframe {
    /// Counts keyframes seen, from 1: a cache key.
    pub seq: u64,
    pub config: Arc<VideoConfig>,
    pub data: Bytes,
    /// Presentation time in 90 kHz units, as the demuxer's timeline gave it.
    pub pts: i64,
    /// Input bytes consumed when the keyframe came out of the demuxer (near its end).
    pub offset: u64,
}

impl Keyframe {
    /// A short description for messages: "keyframe 3 (pts 4.000 s, near input byte 123456)".
    pub fn describe(&self) -> String {
        format!(
            "keyframe {} (pts {:.3} s, near input byte {})",
            self.seq,
            self.pts as f64 / CLOCK_HZ as f64,
            self.offset
        )
    }
}

/// Keeps the newest video keyframe and its configuration.
#[derive(Debug, Default)]
pub struct KeyframeStore {
    config: Option<Arc<VideoConfig>>,
    latest: Option<Arc<Keyframe>>,
    seq: u64,
    no_video: bool,
}

impl KeyframeStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one event; `offset` is the input position it came out at. Returns the new keyframe
    /// when this event stored one.
    pub fn event(&mut self, ev: &MediaEvent, offset: u64) -> Option<Arc<Keyframe>> {
        match ev {
            MediaEvent::Tracks { video, .. } => {
                self.no_video = !video;
                None
            }
            MediaEvent::Video(cfg) => {
                if self.config.as_deref() != Some(cfg) {
                    self.config = Some(Arc::new(cfg.clone()));
                }
                None
            }
            MediaEvent::Frame(f) if f.keyframe && f.codec.video().is_some() => {
                let config = self.config.clone().filter(|c| c.codec.codec() == f.codec)?;
                self.seq += 1;
                let k = Arc::new(Keyframe {
                    seq: self.seq,
                    config,
                    data: f.data.clone(),
                    pts: f.pts,
                    offset,
                });
                self.latest = Some(k.clone());
                Some(k)
            }
            _ => None,
        }
    }

    /// The newest keyframe.
    pub fn latest(&self) -> Option<Arc<Keyframe>> {
        self.latest.clone()
    }

    /// The input said it carries no video track.
    pub fn no_video(&self) -> bool {
        self.no_video
    }
}

/// What a picture should look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// JPEG quality, 1–100.
    pub quality: u8,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width: None,
            height: None,
            quality: 80,
        }
    }
}

/// Keyframe → image bytes, with one decoder kept alive and the last scaled picture cached, so a
/// second format of the same keyframe does not decode again.
pub struct Renderer {
    decoder: KeyframeDecoder,
    opts: RenderOptions,
    last: Option<(u64, Arc<Picture>)>,
    /// Keep the last picture (live modes); a one-shot renderer encodes from the decoder's own
    /// buffers instead.
    cache: bool,
}

impl Renderer {
    pub fn new(opts: RenderOptions) -> Self {
        Renderer {
            decoder: KeyframeDecoder::new(),
            opts,
            last: None,
            cache: true,
        }
    }

    /// A renderer for one picture: nothing is kept, and a picture at the decoded size is encoded
    /// straight from the decoder's buffers, not from a copy of them.
    pub fn one_shot(opts: RenderOptions) -> Self {
        Renderer {
            cache: false,
            ..Renderer::new(opts)
        }
    }

    /// The decoded and scaled picture of `key`.
    pub fn picture(&mut self, key: &Keyframe) -> Result<Arc<Picture>, ThumbError> {
        if let Some((seq, p)) = &self.last {
            if *seq == key.seq {
                return Ok(p.clone());
            }
        }
        let full = self.decoder.decode(key)?;
        let p = Arc::new(self.scaled(full));
        if self.cache {
            self.last = Some((key.seq, p.clone()));
        }
        Ok(p)
    }

    fn scaled(&self, full: Picture) -> Picture {
        let (w, h) = fit(full.width, full.height, self.opts.width, self.opts.height);
        if (w, h) == (full.width, full.height) {
            full
        } else {
            scale(&full, w, h)
        }
    }

    /// `key` as an image.
    pub fn render(&mut self, key: &Keyframe, format: ImageFormat) -> Result<Vec<u8>, ThumbError> {
        if !self.cache {
            let (opts, quality) = (self.opts, self.opts.quality);
            return self.decoder.decode_with(key, |p| {
                let mut out = Vec::with_capacity(p.width as usize * p.height as usize / 4);
                let (w, h) = fit(p.width, p.height, opts.width, opts.height);
                if (w, h) == (p.width, p.height) {
                    encode_planes(p, format, quality, &mut out)?;
                } else {
                    let full = Picture::from_planes(p).ok_or(ThumbError::ShortPlane)?;
                    encode(&scale(&full, w, h), format, quality, &mut out)?;
                }
                Ok(out)
            })?;
        }
        let p = self.picture(key)?;
        let mut out = Vec::with_capacity(p.y.len() / 4);
        encode(&p, format, self.opts.quality, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
