//! [`FlvOut`]: media events to FLV bytes.

use crate::codec::{h264, h265};
use crate::format::flv;
use crate::media::{AudioConfig, Codec, MediaEvent, Track, VideoCodec, VideoConfig};

/// Media events → FLV bytes.
pub struct FlvOut {
    started: bool,
    tracks: (bool, bool),
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// DTS (ms) of the last frame written, by track (video, audio): a configuration change is
    /// stamped with its own track's, so no track's timestamps go back.
    last_ts: [u32; 2],
}

impl Default for FlvOut {
    fn default() -> Self {
        Self::new()
    }
}

/// 90 kHz → milliseconds, rounding half away from zero as ffmpeg's rescaling does.
fn to_ms(t: i64) -> i64 {
    if t >= 0 {
        (t + 45) / 90
    } else {
        -((-t + 45) / 90)
    }
}

impl FlvOut {
    pub fn new() -> Self {
        FlvOut {
            started: false,
            tracks: (false, false),
            video: None,
            audio: None,
            last_ts: [0; 2],
        }
    }

    /// FLV timestamps are 32-bit milliseconds; they wrap after 49.7 days, as every FLV writer's do.
    fn ms(t: i64) -> u32 {
        to_ms(t).max(0) as u32
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        let video = self.tracks.0 || self.video.is_some();
        let audio = self.tracks.1 || self.audio.is_some();
        flv::write_header(audio, video, out);
        let meta = self.metadata();
        let _ = flv::write_tag(flv::TagKind::Script, 0, &meta, out); // small: cannot exceed 16 MiB
        if let Some(v) = self.video.clone() {
            self.write_video_config(&v, 0, out);
        }
        if let Some(a) = self.audio.clone() {
            self.write_audio_config(&a, 0, out);
        }
    }

    fn metadata(&self) -> Vec<u8> {
        use amf::amf0::Value;
        let num = |v: f64| Value::Number(v);
        let mut props: Vec<(&str, Value)> = vec![("duration", num(0.0))];
        if let Some(v) = &self.video {
            props.push(("width", num(v.width as f64)));
            props.push(("height", num(v.height as f64)));
            if let Some((n, d)) = v.frame_rate {
                props.push(("framerate", num(n as f64 / d as f64)));
            }
            // Enhanced onMetaData: an enhanced codec's id is its FourCC as a number.
            let id = match v.codec {
                VideoCodec::H264 => 7.0,
                VideoCodec::H265 => f64::from(u32::from_be_bytes(flv::FourCc::HVC1.0)),
            };
            props.push(("videocodecid", num(id)));
        }
        if let Some(a) = &self.audio {
            props.push(("audiosamplerate", num(a.sample_rate as f64)));
            props.push(("audiosamplesize", num(16.0)));
            props.push(("stereo", Value::Boolean(a.channels >= 2)));
            props.push(("audiocodecid", num(10.0)));
        }
        props.push((
            "encoder",
            Value::String(concat!("river ", env!("CARGO_PKG_VERSION")).to_string()),
        ));
        flv::metadata_body(&props)
    }

    fn write_video_config(&mut self, v: &VideoConfig, ts: u32, out: &mut Vec<u8>) {
        // A record too large for a tag (16 MiB) cannot come from 65535-byte parameter sets.
        let _ = match v.codec {
            VideoCodec::H264 => flv::write_avc_video_tag(
                ts,
                true,
                flv::AvcPacketType::SequenceHeader,
                0,
                &h264::write_avcc(v),
                out,
            ),
            VideoCodec::H265 => flv::write_ex_video_tag(
                ts,
                true,
                flv::ExVideoPacketType::SequenceStart,
                flv::FourCc::HVC1,
                0,
                &h265::write_hvcc(v),
                out,
            ),
        };
    }

    fn write_audio_config(&mut self, a: &AudioConfig, ts: u32, out: &mut Vec<u8>) {
        let _ = flv::write_aac_audio_tag(ts, flv::AacPacketType::SequenceHeader, &a.asc, out);
    }

    /// Writes one event.
    pub fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String> {
        match ev {
            MediaEvent::Tracks { video, audio } => self.tracks = (*video, *audio),
            MediaEvent::Discontinuity => {}
            MediaEvent::Video(c) => {
                let changed = self.video.as_ref() != Some(c);
                self.video = Some(c.clone());
                if self.started && changed {
                    let ts = self.last_ts[0];
                    self.write_video_config(c, ts, out);
                }
            }
            MediaEvent::Audio(c) => {
                let changed = self.audio.as_ref() != Some(c);
                self.audio = Some(c.clone());
                if self.started && changed {
                    let ts = self.last_ts[1];
                    self.write_audio_config(c, ts, out);
                }
            }
            MediaEvent::Frame(f) => {
                if !self.started {
                    self.start(out);
                }
                let dts = Self::ms(f.dts);
                let pts = Self::ms(f.pts);
                self.last_ts[usize::from(f.track == Track::Audio)] = dts;
                match f.track {
                    Track::Video => {
                        let cts = (pts as i64 - dts as i64).clamp(i32::MIN as i64, i32::MAX as i64)
                            as i32;
                        if f.codec == Codec::H265 {
                            // CodedFramesX saves the composition time when it is 0, as ffmpeg does.
                            let pt = if cts == 0 {
                                flv::ExVideoPacketType::CodedFramesX
                            } else {
                                flv::ExVideoPacketType::CodedFrames
                            };
                            flv::write_ex_video_tag(
                                dts,
                                f.keyframe,
                                pt,
                                flv::FourCc::HVC1,
                                cts,
                                &f.data,
                                out,
                            )?;
                        } else {
                            flv::write_avc_video_tag(
                                dts,
                                f.keyframe,
                                flv::AvcPacketType::Nalu,
                                cts,
                                &f.data,
                                out,
                            )?;
                        }
                    }
                    Track::Audio => {
                        flv::write_aac_audio_tag(dts, flv::AacPacketType::Raw, &f.data, out)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::Frame;

    /// Found by fuzz/rtp_ingest: a video configuration change was stamped with the last frame's
    /// time of either track, so after an audio frame it could be later than the next video frame
    /// (video timestamps going back). It now takes its own track's last time.
    #[test]
    fn config_change_keeps_its_track_monotonic() {
        let cfg = |pps: u8| VideoConfig {
            codec: VideoCodec::H264,
            vps: vec![],
            sps: vec![Bytes::from_static(&[0x67, 0x42, 0, 0x1e])],
            pps: vec![Bytes::from(vec![0x68, pps])],
            width: 16,
            height: 16,
            frame_rate: None,
        };
        let frame = |track, ms: i64| {
            MediaEvent::Frame(Frame {
                track,
                codec: match track {
                    Track::Video => Codec::H264,
                    Track::Audio => Codec::Aac,
                },
                dts: ms * 90,
                pts: ms * 90,
                keyframe: true,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            })
        };
        let mut o = FlvOut::new();
        let mut out = Vec::new();
        for ev in [
            MediaEvent::Video(cfg(1)),
            frame(Track::Video, 100),
            frame(Track::Audio, 150),
            MediaEvent::Video(cfg(2)),
            frame(Track::Video, 140),
        ] {
            o.event(&ev, &mut out).unwrap();
        }
        let mut r = flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(&out, &mut evs);
        r.finish(&mut evs);
        let video: Vec<u32> = evs
            .iter()
            .filter_map(|e| match e {
                flv::FlvEvent::Tag(t) if t.kind == flv::TagKind::Video => Some(t.timestamp),
                _ => None,
            })
            .collect();
        assert_eq!(video, [0, 100, 100, 140]);
    }

    #[test]
    fn ms_rounding_matches_ffmpeg() {
        assert_eq!(to_ms(0), 0);
        assert_eq!(to_ms(44), 0);
        assert_eq!(to_ms(45), 1);
        assert_eq!(to_ms(3000), 33);
        assert_eq!(to_ms(-45), -1);
    }
}
