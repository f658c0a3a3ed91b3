//! [`FlvOut`]: media events to FLV bytes.

use bytes::Bytes;

use crate::codec::{h264, h265};
use crate::format::flv;
use crate::media::{AudioConfig, Codec, MediaEvent, Track, VideoCodec, VideoConfig};

/// Where [`FlvOut`] writes: the bytes it builds, and the frames' payloads, which a sink may copy
/// (a `Vec<u8>`) or keep to write from where they lie (a vectored write of the tags' heads and
/// the payloads between them).
pub trait FlvSink {
    /// The bytes written so far, to append to.
    fn bytes(&mut self) -> &mut Vec<u8>;
    /// Appends a frame's payload after what [`Self::bytes`] holds.
    fn payload(&mut self, data: &Bytes);
}

impl FlvSink for Vec<u8> {
    fn bytes(&mut self) -> &mut Vec<u8> {
        self
    }

    fn payload(&mut self, data: &Bytes) {
        self.extend_from_slice(data);
    }
}

/// Media events → FLV bytes.
pub struct FlvOut {
    started: bool,
    tracks: (bool, bool),
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// DTS (ms) of the last frame written, by track (video, audio): a configuration change is
    /// stamped with its own track's, so no track's timestamps go back.
    last_ts: [u32; 2],
    /// Whether a frame of the track (video, audio) has been written (`last_ts` holds its DTS).
    written: [bool; 2],
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
            written: [false; 2],
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
    pub fn event(&mut self, ev: &MediaEvent, out: &mut impl FlvSink) -> Result<(), String> {
        match ev {
            MediaEvent::Tracks { video, audio } => self.tracks = (*video, *audio),
            MediaEvent::Discontinuity => {}
            MediaEvent::Video(c) => {
                let changed = self.video.as_ref() != Some(c);
                self.video = Some(c.clone());
                if self.started && changed {
                    let ts = self.last_ts[0];
                    self.write_video_config(c, ts, out.bytes());
                }
            }
            MediaEvent::Audio(c) => {
                let changed = self.audio.as_ref() != Some(c);
                self.audio = Some(c.clone());
                if self.started && changed {
                    let ts = self.last_ts[1];
                    self.write_audio_config(c, ts, out.bytes());
                }
            }
            MediaEvent::Frame(f) => {
                if !self.started {
                    self.start(out.bytes());
                }
                let i = usize::from(f.track == Track::Audio);
                let mut dts = Self::ms(f.dts);
                // DTS strictly increases in 90 kHz ticks, but two frames under a millisecond
                // apart (a source's, or the timeline's clamp of a small backward step to one tick
                // after the previous frame) round to the same FLV time, and players reject equal
                // DTS (ffmpeg: "non monotonically increasing dts"). So it strictly increases in
                // milliseconds too:
                // a frame that rounds to the previous one's time or before it (by the few
                // milliseconds earlier bumps added) gets the next millisecond. The step is taken
                // modulo 2^32, so the 49.7-day wrap stays a step forward.
                if self.written[i] && (dts.wrapping_sub(self.last_ts[i]) as i32) <= 0 {
                    dts = self.last_ts[i].wrapping_add(1);
                }
                let pts = Self::ms(f.pts);
                self.last_ts[i] = dts;
                self.written[i] = true;
                // The tag's head, then its payload (copied, or kept to be written from where it
                // lies), then the PreviousTagSize.
                let size = match f.track {
                    Track::Video => {
                        // PTS ≥ DTS: a bumped DTS can pass the PTS by the bump.
                        let cts = (pts.wrapping_sub(dts) as i32).max(0);
                        if f.codec == Codec::H265 {
                            // CodedFramesX saves the composition time when it is 0, as ffmpeg does.
                            let pt = if cts == 0 {
                                flv::ExVideoPacketType::CodedFramesX
                            } else {
                                flv::ExVideoPacketType::CodedFrames
                            };
                            flv::ex_video_tag_head(
                                dts,
                                f.keyframe,
                                pt,
                                flv::FourCc::HVC1,
                                cts,
                                f.data.len(),
                                out.bytes(),
                            )?
                        } else {
                            flv::avc_video_tag_head(
                                dts,
                                f.keyframe,
                                flv::AvcPacketType::Nalu,
                                cts,
                                f.data.len(),
                                out.bytes(),
                            )?
                        }
                    }
                    Track::Audio => flv::aac_audio_tag_head(
                        dts,
                        flv::AacPacketType::Raw,
                        f.data.len(),
                        out.bytes(),
                    )?,
                };
                out.payload(&f.data);
                flv::write_prev_tag_size(size, out.bytes());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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

    fn tag_times(out: &[u8], kind: flv::TagKind) -> Vec<(u32, i32)> {
        let mut r = flv::FlvReader::new();
        let mut evs = Vec::new();
        r.push(out, &mut evs);
        r.finish(&mut evs);
        evs.iter()
            .filter_map(|e| match e {
                // An AVC video body: frame type, packet type, then the composition time
                // (signed 24 bits); audio has none.
                flv::FlvEvent::Tag(t) if t.kind == kind => {
                    let cts = match (kind, &t.body[..]) {
                        (flv::TagKind::Video, [_, _, a, b, c, ..]) => {
                            i32::from_be_bytes([*a, *b, *c, 0]) >> 8
                        }
                        _ => 0,
                    };
                    Some((t.timestamp, cts))
                }
                _ => None,
            })
            .collect()
    }

    /// Found by bench/soak.sh: ffmpeg's -stream_loop puts two audio frames 30 ticks (0.33 ms)
    /// apart at each loop of a clip (its own MPEG-TS output shows it); published over RTSP and
    /// played over RTMP, the hub's FLV carried them with one timestamp (ffmpeg: "non
    /// monotonically increasing dts to muxer"). Frames one tick apart (the timeline's clamp) did
    /// the same. Each track's milliseconds now strictly increase, and a bumped video frame keeps
    /// PTS ≥ DTS.
    #[test]
    fn frames_under_a_millisecond_apart_get_distinct_times() {
        let frame = |track, dts: i64, pts: i64| {
            MediaEvent::Frame(Frame {
                track,
                codec: match track {
                    Track::Video => Codec::H264,
                    Track::Audio => Codec::Aac,
                },
                dts,
                pts,
                keyframe: true,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            })
        };
        let mut o = FlvOut::new();
        let mut out = Vec::new();
        let a = 20_069 * 90;
        let v = 20_040 * 90;
        for ev in [
            MediaEvent::Tracks {
                video: true,
                audio: true,
            },
            frame(Track::Audio, 0, 0),
            frame(Track::Audio, a, a),
            frame(Track::Audio, a + 1, a + 1),
            frame(Track::Audio, a + 2, a + 2),
            frame(Track::Audio, a + 21 * 90, a + 21 * 90),
            frame(Track::Video, v, v),
            frame(Track::Video, v + 1, v + 1),
            frame(Track::Video, v + 2, v + 80 * 90),
        ] {
            o.event(&ev, &mut out).unwrap();
        }
        let audio: Vec<u32> = tag_times(&out, flv::TagKind::Audio)
            .iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(audio, [0, 20_069, 20_070, 20_071, 20_090]);
        let video = tag_times(&out, flv::TagKind::Video);
        assert_eq!(video, [(20_040, 0), (20_041, 0), (20_042, 78)]);
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
