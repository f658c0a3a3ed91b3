//! [`TsOut`]: media events to MPEG-TS bytes.

use crate::codec::{aac, h264, h265};
use crate::format::ts;
use crate::media::{AudioConfig, Codec, MediaEvent, Track, VideoCodec, VideoConfig};

/// Where output timestamps start, in 90 kHz (the [`super::Demux`] starts them at zero): ffmpeg's
/// MPEG-TS muxer starts at 1.4 s, and so do we, so PCR (0.7 s before DTS) never goes negative.
const TS_START: i64 = 126_000;
/// PCR runs this far (90 kHz) ahead of DTS, as ffmpeg's default `muxdelay` of 0.7 s.
const PCR_DELAY: u64 = 63_000;

/// Media events → MPEG-TS bytes.
pub struct TsOut {
    mux: Option<ts::TsMuxer>,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// An audio frame's ADTS header.
    scratch: Vec<u8>,
    /// The streams the muxer was set up with: the video codec, and audio.
    streams: (Option<VideoCodec>, bool),
}

impl Default for TsOut {
    fn default() -> Self {
        Self::new()
    }
}

impl TsOut {
    pub fn new() -> Self {
        TsOut {
            mux: None,
            video: None,
            audio: None,
            scratch: Vec::with_capacity(16),
            streams: (None, false),
        }
    }

    fn mux_streams(&self) -> Vec<ts::MuxStream> {
        let mut s = Vec::new();
        if let Some(v) = &self.video {
            s.push(ts::MuxStream {
                pid: ts::PID_VIDEO,
                stream_type: match v.codec {
                    VideoCodec::H264 => ts::STREAM_TYPE_H264,
                    VideoCodec::H265 => ts::STREAM_TYPE_H265,
                },
                stream_id: 0xE0,
            });
        }
        if self.audio.is_some() {
            s.push(ts::MuxStream {
                pid: ts::PID_AUDIO,
                stream_type: ts::STREAM_TYPE_AAC_ADTS,
                stream_id: 0xC0,
            });
        }
        s
    }

    fn ensure_streams(&mut self) {
        let want = (self.video.as_ref().map(|v| v.codec), self.audio.is_some());
        let pcr = if want.0.is_some() {
            ts::PID_VIDEO
        } else {
            ts::PID_AUDIO
        };
        match &mut self.mux {
            None => {
                let mut m = ts::TsMuxer::new(self.mux_streams(), pcr);
                m.set_pcr_delay(PCR_DELAY);
                self.mux = Some(m);
            }
            Some(_) if self.streams != want => {
                let s = self.mux_streams();
                if let Some(m) = &mut self.mux {
                    m.set_streams(s, pcr);
                }
            }
            _ => {}
        }
        self.streams = want;
    }

    fn stamp(t: i64) -> u64 {
        (t + TS_START).max(0) as u64
    }

    /// Writes PAT and PMT now (for a new HLS segment that does not start on a video keyframe,
    /// which brings its own). Nothing before the first frame, when the streams are not known yet.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        if let Some(m) = &mut self.mux {
            m.write_tables(out);
        }
    }

    /// Writes one event. Frames of a track without a configuration are skipped (the
    /// [`super::Demux`] gate never sends such frames).
    pub fn event(&mut self, ev: &MediaEvent, out: &mut Vec<u8>) -> Result<(), String> {
        match ev {
            MediaEvent::Tracks { .. } => {}
            // A break in the source: the next packet of each stream says so.
            MediaEvent::Discontinuity => {
                if let Some(m) = &mut self.mux {
                    m.mark_discontinuity();
                }
            }
            MediaEvent::Video(c) => self.video = Some(c.clone()),
            MediaEvent::Audio(c) => self.audio = Some(c.clone()),
            MediaEvent::Frame(f) => {
                self.ensure_streams();
                let (dts, pts) = (Self::stamp(f.dts), Self::stamp(f.pts));
                let mux = self.mux.as_mut().expect("streams ensured");
                match f.track {
                    Track::Video => {
                        let Some(cfg) = &self.video else {
                            return Ok(());
                        };
                        // The Annex B unit as pieces of the frame and the configuration: copied
                        // once, into the packets.
                        let mut pieces = Vec::with_capacity(16);
                        match f.codec {
                            Codec::H265 => {
                                h265::annexb_pieces(&f.data, cfg, f.keyframe, &mut pieces)
                            }
                            _ => h264::annexb_pieces(&f.data, cfg, f.keyframe, &mut pieces),
                        }
                        mux.write_pes_pieces(
                            ts::PID_VIDEO,
                            pts,
                            Some(dts),
                            f.keyframe,
                            &pieces,
                            out,
                        )
                        .map_err(|e| e.message)?;
                    }
                    Track::Audio => {
                        let Some(cfg) = &self.audio else {
                            return Ok(());
                        };
                        self.scratch.clear();
                        aac::write_adts_header(cfg, f.data.len(), &mut self.scratch)?;
                        mux.write_pes_pieces(
                            ts::PID_AUDIO,
                            pts,
                            None,
                            true,
                            &[&self.scratch, &f.data],
                            out,
                        )
                        .map_err(|e| e.message)?;
                    }
                }
            }
        }
        Ok(())
    }
}
