//! The MPEG-TS bridge: PES packets ([`crate::format::ts`]) to media events (H.264 or H.265 Annex B
//! to length-prefixed video, ADTS to raw AAC frames stamped by the PES they started in).
//!
//! The first H.264 or H.265 stream and the first AAC stream of the program are carried. Any other
//! audio or video stream (another codec, or a second one) is an error naming it, unless the user
//! asked to drop such streams; data streams (sections, subtitles, cues) are ignored with one log
//! line.

use bytes::{Bytes, BytesMut};

use crate::codec::{aac, h264, h265};
use crate::error::Diag;
use crate::format::ts::{self, StreamKind};
use crate::media::{
    AudioConfig, Codec, Frame, MediaEvent, Track, VideoCodec, VideoConfig, CLOCK_HZ,
};

/// How many audio PES starts [`TsInput`] remembers for stamping AAC frames.
const MAX_AUDIO_PES_RECORDS: usize = 64;

/// MPEG-TS bytes → media events.
#[derive(Default)]
pub(super) struct TsInput {
    demux: ts::TsDemuxer,
    events: Vec<ts::TsEvent>,
    video_pid: Option<u16>,
    video_codec: VideoCodec,
    audio_pid: Option<u16>,
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    video_cfg: Option<VideoConfig>,
    adts: aac::AdtsReader,
    adts_frames: Vec<aac::AdtsFrame>,
    audio_cfg: Option<AudioConfig>,
    /// Bytes pushed into the ADTS reader so far.
    adts_pos: u64,
    /// Audio PES starts still owning frames: (ADTS stream offset, PTS, frames stamped so far,
    /// the PES's byte offset in the input).
    audio_pes: std::collections::VecDeque<(u64, Option<i64>, i64, u64)>,
    /// The last audio timestamp given out, for PES without PTS.
    last_audio_ts: Option<i64>,
    last_video_dts: Option<i64>,
    /// After a damaged video PES, frames are dropped until the next keyframe so the output stays
    /// decodable; this counts them.
    skipping_to_key: Option<u64>,
    /// Where H.265 video resumed after damage: the RASL pictures of a CRA picture are dropped.
    join: h265::JoinFilter,
    /// The kept NAL units of the video PES in hand, as ranges of its payload (reused).
    nals: Vec<(usize, usize)>,
    /// The streams already reported (ignored data, dropped audio/video), by (pid, stream_type).
    reported: Vec<(u16, u8)>,
    /// Audio and video streams river does not carry are dropped (with a log line) instead of
    /// failing the input.
    pub(super) drop_unsupported: bool,
}

impl TsInput {
    pub(super) fn push(
        &mut self,
        data: &[u8],
        eof: bool,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let mut evs = std::mem::take(&mut self.events);
        if eof {
            self.demux.finish(&mut evs);
        } else {
            self.demux.push(data, &mut evs);
        }
        let mut res = Ok(());
        for ev in evs.drain(..) {
            match ev {
                ts::TsEvent::Program {
                    streams, offset, ..
                } => {
                    if let Err(e) = self.program(&streams, offset, out, diags) {
                        res = Err(e);
                        break;
                    }
                }
                ts::TsEvent::Pes(p) => {
                    if Some(p.pid) == self.video_pid {
                        self.video_pes(p, out, diags);
                    } else if Some(p.pid) == self.audio_pid {
                        self.audio_pes(p, out, diags);
                    }
                }
                ts::TsEvent::Warning(d) => diags.push(d),
            }
        }
        evs.clear();
        self.events = evs;
        res?;
        if eof {
            let mut frames = std::mem::take(&mut self.adts_frames);
            let first = diags.len();
            self.adts.finish(&mut frames, diags);
            self.input_offsets(&mut diags[first..]);
            self.audio_frames(&mut frames, out);
            self.adts_frames = frames;
        }
        Ok(())
    }

    fn program(
        &mut self,
        streams: &[ts::StreamInfo],
        offset: u64,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), Diag> {
        let video = streams.iter().find_map(|s| match s.stream_type {
            ts::STREAM_TYPE_H264 => Some((s.pid, VideoCodec::H264)),
            ts::STREAM_TYPE_H265 => Some((s.pid, VideoCodec::H265)),
            _ => None,
        });
        if video.map(|v| v.1) != self.video_pid.map(|_| self.video_codec) {
            // Another codec: the parameter sets of the old one mean nothing now.
            self.vps.clear();
            self.sps.clear();
            self.pps.clear();
            self.video_cfg = None;
        }
        self.video_pid = video.map(|v| v.0);
        self.video_codec = video.map_or(VideoCodec::H264, |v| v.1);
        self.audio_pid = streams
            .iter()
            .find(|s| s.stream_type == ts::STREAM_TYPE_AAC_ADTS)
            .map(|s| s.pid);
        let mut data = Vec::new();
        for s in streams {
            if Some(s.pid) == self.video_pid || Some(s.pid) == self.audio_pid {
                continue;
            }
            if self.reported.contains(&(s.pid, s.stream_type)) {
                continue;
            }
            // Bounded: a stream whose PMT keeps changing is reported again rather than remembered.
            if self.reported.len() >= 64 {
                self.reported.clear();
            }
            let (kind, name) = match StreamKind::of(s.stream_type) {
                StreamKind::Video(n) => ("video", n),
                StreamKind::Audio(n) => ("audio", n),
                StreamKind::Data(n) => {
                    self.reported.push((s.pid, s.stream_type));
                    data.push(format!(
                        "pid {:#x} type {:#04x} ({n})",
                        s.pid, s.stream_type
                    ));
                    continue;
                }
            };
            let supported = matches!(
                s.stream_type,
                ts::STREAM_TYPE_H264 | ts::STREAM_TYPE_H265 | ts::STREAM_TYPE_AAC_ADTS
            );
            let what = if supported {
                format!("a second {kind} stream ({name})")
            } else {
                format!("unsupported {kind} codec {name}")
            };
            let message = format!(
                "{what} on MPEG-TS pid {:#x} (stream type {:#04x}); river carries one H.264 or H.265 video and one AAC audio stream",
                s.pid, s.stream_type
            );
            if !self.drop_unsupported {
                return Err(Diag::new(
                    offset,
                    format!("{message}: pass --drop-unsupported to continue without it"),
                ));
            }
            self.reported.push((s.pid, s.stream_type));
            diags.push(Diag::new(
                offset,
                format!("{message}; dropped (--drop-unsupported)"),
            ));
        }
        if !data.is_empty() {
            diags.push(Diag::new(
                offset,
                format!("ignoring MPEG-TS data streams: {}", data.join(", ")),
            ));
        }
        out.push(MediaEvent::Tracks {
            video: self.video_pid.is_some(),
            audio: self.audio_pid.is_some(),
        });
        Ok(())
    }

    fn video_pes(&mut self, mut p: ts::Pes, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) {
        let mut keyframe = false;
        let mut new_vps = Vec::new();
        let mut new_sps = Vec::new();
        let mut new_pps = Vec::new();
        let codec = self.video_codec;
        // One scan for start codes: the units to keep, as ranges of the payload, then rewritten
        // as length-prefixed units where they lie. Parameter sets are copied out (small), so
        // the payload stays the demuxer's alone and can be rewritten.
        let mut nals = std::mem::take(&mut self.nals);
        nals.clear();
        for nal in h264::annexb_nals(&p.data) {
            let copy = || Bytes::copy_from_slice(nal);
            match codec {
                VideoCodec::H264 => match h264::nal_type(nal) {
                    h264::nal_types::AUD => continue,
                    h264::nal_types::SPS => new_sps.push(copy()),
                    h264::nal_types::PPS => new_pps.push(copy()),
                    h264::nal_types::IDR => keyframe = true,
                    _ => {}
                },
                VideoCodec::H265 => match h265::nal_type(nal) {
                    h265::nal_types::AUD => continue,
                    h265::nal_types::VPS => new_vps.push(copy()),
                    h265::nal_types::SPS => new_sps.push(copy()),
                    h265::nal_types::PPS => new_pps.push(copy()),
                    t => keyframe |= h265::is_irap(t),
                },
            }
            let start = nal.as_ptr() as usize - p.data.as_ptr() as usize;
            nals.push((start, start + nal.len()));
        }
        let au = Self::avcc(std::mem::take(&mut p.data), &nals);
        self.nals = nals;
        if !new_vps.is_empty() || !new_sps.is_empty() || !new_pps.is_empty() {
            if !new_vps.is_empty() {
                self.vps = new_vps;
            }
            if !new_sps.is_empty() {
                self.sps = new_sps;
            }
            if !new_pps.is_empty() {
                self.pps = new_pps;
            }
            let complete = !self.sps.is_empty()
                && !self.pps.is_empty()
                && (codec == VideoCodec::H264 || !self.vps.is_empty());
            if complete {
                let changed = self.video_cfg.as_ref().is_none_or(|c| {
                    c.codec != codec || c.vps != self.vps || c.sps != self.sps || c.pps != self.pps
                });
                if changed {
                    let cfg = match codec {
                        VideoCodec::H264 => h264::video_config(self.sps.clone(), self.pps.clone())
                            .map_err(|e| e.to_string()),
                        VideoCodec::H265 => {
                            h265::video_config(self.vps.clone(), self.sps.clone(), self.pps.clone())
                                .map_err(|e| e.to_string())
                        }
                    };
                    match cfg {
                        Ok(cfg) => {
                            self.video_cfg = Some(cfg.clone());
                            out.push(MediaEvent::Video(cfg));
                        }
                        Err(e) => diags.push(Diag::new(
                            p.offset,
                            format!("bad SPS in MPEG-TS {} video: {e}", codec.name()),
                        )),
                    }
                }
            }
        }
        if au.is_empty() {
            return;
        }
        if p.corrupt {
            diags.push(Diag::new(
                p.offset,
                "damaged video PES (packets lost or truncated); dropping video until the next keyframe",
            ));
            self.skipping_to_key = Some(1);
            return;
        }
        if let Some(n) = self.skipping_to_key {
            if !keyframe {
                self.skipping_to_key = Some(n + 1);
                return;
            }
            diags.push(Diag::new(
                p.offset,
                format!("video resumes at a keyframe; {n} frames dropped"),
            ));
            self.skipping_to_key = None;
            if codec == VideoCodec::H265 {
                self.join.join(&au);
            }
        } else if codec == VideoCodec::H265 && !self.join.keep(&au) {
            // A RASL picture of the CRA picture video resumed at.
            return;
        }
        let (pts, dts) = match (p.pts, p.dts) {
            (Some(pts), dts) => (pts as i64, dts.unwrap_or(pts) as i64),
            (None, _) => match self.last_video_dts {
                Some(d) => (d, d),
                None => {
                    diags.push(Diag::new(p.offset, "video PES without PTS; skipped"));
                    return;
                }
            },
        };
        self.last_video_dts = Some(dts);
        out.push(MediaEvent::Frame(Frame {
            track: Track::Video,
            codec: codec.codec(),
            dts,
            pts,
            keyframe,
            data: au,
        }));
    }

    /// The kept units `nals` (ranges of `payload`) as length-prefixed units: rewritten where they
    /// lie when the payload is not shared ([`crate::codec::avcc_in_place`]), else copied.
    fn avcc(payload: Bytes, nals: &[(usize, usize)]) -> Bytes {
        let payload = match payload.try_into_mut() {
            Ok(mut buf) => {
                if crate::codec::avcc_in_place(&mut buf, nals) {
                    return buf.freeze();
                }
                buf.freeze()
            }
            Err(shared) => shared,
        };
        let size = nals.iter().map(|(s, e)| 4 + e - s).sum();
        let mut au = BytesMut::with_capacity(size);
        for &(s, e) in nals {
            au.extend_from_slice(&((e - s) as u32).to_be_bytes());
            au.extend_from_slice(&payload[s..e]);
        }
        au.freeze()
    }

    fn audio_pes(&mut self, p: ts::Pes, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>) {
        // The ADTS reader may hold a frame back until the next header confirms it, so frames are
        // stamped by the PES they started in, found by their offset in the ADTS stream.
        self.audio_pes
            .push_back((self.adts_pos, p.pts.map(|t| t as i64), 0, p.offset));
        // Bounded: a frame can only start in a recent PES (the ADTS reader holds at most one
        // frame back), so PES records that gave no frame (garbage audio) are dropped.
        while self.audio_pes.len() > MAX_AUDIO_PES_RECORDS {
            self.audio_pes.pop_front();
        }
        self.adts_pos += p.data.len() as u64;
        let mut frames = std::mem::take(&mut self.adts_frames);
        let first = diags.len();
        self.adts.push(&p.data, &mut frames, diags);
        self.input_offsets(&mut diags[first..]);
        self.audio_frames(&mut frames, out);
        self.adts_frames = frames;
    }

    /// The ADTS reader counts offsets in the audio elementary stream; a diagnostic names the
    /// input's byte offset of the audio PES that carried the damaged bytes instead.
    fn input_offsets(&self, diags: &mut [Diag]) {
        for d in diags {
            let pes = self.audio_pes.iter().rev().find(|r| r.0 <= d.offset);
            d.message = match (pes, self.audio_pid) {
                (Some(r), Some(pid)) => {
                    let within = d.offset - r.0;
                    d.offset = r.3;
                    format!(
                        "{} ({within} bytes into the audio PES on pid {pid:#x})",
                        d.message
                    )
                }
                _ => format!("{} (offset {} in the audio stream)", d.message, d.offset),
            };
        }
    }

    fn audio_frames(&mut self, frames: &mut Vec<aac::AdtsFrame>, out: &mut Vec<MediaEvent>) {
        for f in frames.drain(..) {
            while self.audio_pes.len() > 1 && self.audio_pes[1].0 <= f.offset {
                self.audio_pes.pop_front();
            }
            let sr = f.config.sample_rate.max(1) as i64;
            let ts = match self.audio_pes.front_mut() {
                Some((_, Some(pts), n, _)) => {
                    let t = *pts + *n * 1024 * CLOCK_HZ / sr;
                    *n += 1;
                    t
                }
                _ => match self.last_audio_ts {
                    Some(t) => t + 1024 * CLOCK_HZ / sr,
                    None => continue,
                },
            };
            self.last_audio_ts = Some(ts);
            if self.audio_cfg.as_ref() != Some(&f.config) {
                self.audio_cfg = Some(f.config.clone());
                out.push(MediaEvent::Audio(f.config.clone()));
            }
            out.push(MediaEvent::Frame(Frame {
                track: Track::Audio,
                codec: Codec::Aac,
                dts: ts,
                pts: ts,
                keyframe: true,
                data: f.payload,
            }));
        }
    }
}
