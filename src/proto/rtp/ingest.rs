//! A publisher's RTP streams (as set up by RTSP ANNOUNCE/SETUP) → river [`MediaEvent`]s on one
//! clock, ready for [`crate::pipeline::FlvOut`] or [`crate::pipeline::TsOut`].
//!
//! Each stream's timestamps start at zero at its first packet; when a sender report for that
//! stream arrived before its first packet (ffmpeg sends one first), the stream's start is placed on
//! the shared NTP timeline instead, so audio and video keep the publisher's sync. Everything is
//! shifted by [`LEAD`] so that DTS (PTS minus the reorder delay) never goes below zero.

use std::time::Instant;

use super::reorder::Reorder;
use super::rtcp::{self, Rtcp};
use super::{aac, h264, h265, Packet};
use crate::error::Diag;
use crate::media::{MediaEvent, Track, CLOCK_HZ};
use crate::proto::rtsp::StreamSetup;
use crate::proto::sdp::{Codec, Sdp, SdpError};

/// Added to every timestamp (90 kHz): 200 ms.
pub const LEAD: i64 = CLOCK_HZ / 5;

enum Depack {
    H264(Box<h264::Depacketizer>),
    H265(Box<h265::Depacketizer>),
    Aac(aac::Depacketizer),
}

struct TrackIn {
    depack: Depack,
    clock_rate: u32,
    sr: Option<(u64, u32)>,
    offset: Option<i64>,
}

/// Why a publish cannot be taken in, with the stream (index in the session's setup order) where
/// one is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The stream's SDP section claims H.264 or AAC but its parameters are malformed.
    Codec { stream: usize, error: SdpError },
    /// No stream carries H.264 or AAC; what the others carry (empty when there are none).
    NoMedia { ignored: Vec<String> },
    /// The FLV writer refused this stream's media. The text is
    /// [`crate::pipeline::FlvOut::event`]'s, which still reports a `String`.
    Mux { stream: usize, message: String },
}

impl IngestError {
    /// The stream to blame, if one is.
    pub fn stream(&self) -> Option<usize> {
        match self {
            IngestError::Codec { stream, .. } | IngestError::Mux { stream, .. } => Some(*stream),
            IngestError::NoMedia { .. } => None,
        }
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Codec { error, .. } => write!(f, "{error}"),
            IngestError::NoMedia { ignored } => write!(
                f,
                "expected an H.264 or AAC stream, found {}",
                if ignored.is_empty() {
                    "none".to_string()
                } else {
                    ignored.join(", ")
                }
            ),
            IngestError::Mux { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for IngestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IngestError::Codec { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// See the module documentation.
pub struct Ingest {
    /// By stream (the session's setup order).
    tracks: Vec<Option<TrackIn>>,
    origin_ntp: Option<u64>,
    video: bool,
    audio: bool,
    /// Streams whose codec river cannot carry (their packets are ignored).
    pub ignored: Vec<String>,
    scratch: Vec<MediaEvent>,
    /// RTCP BYE seen.
    pub bye: bool,
}

impl Ingest {
    /// `Err` when no stream carries H.264 or AAC (the RECORD is refused with 415).
    pub fn new(sdp: &Sdp, streams: &[StreamSetup]) -> Result<Ingest, IngestError> {
        let mut tracks = Vec::new();
        let mut ignored = Vec::new();
        let (mut video, mut audio) = (false, false);
        for (stream, s) in streams.iter().enumerate() {
            let Some(m) = sdp.media.get(s.index) else {
                tracks.push(None);
                continue;
            };
            let codec = m
                .codec()
                .map_err(|error| IngestError::Codec { stream, error })?;
            let t = match codec {
                Codec::H264 { config, .. } if !video => {
                    video = true;
                    Some(TrackIn {
                        depack: Depack::H264(Box::new(h264::Depacketizer::new(config))),
                        clock_rate: 90_000,
                        sr: None,
                        offset: None,
                    })
                }
                Codec::H265 { config } if !video => {
                    video = true;
                    Some(TrackIn {
                        depack: Depack::H265(Box::new(h265::Depacketizer::new(config))),
                        clock_rate: 90_000,
                        sr: None,
                        offset: None,
                    })
                }
                Codec::Aac {
                    config,
                    size_length,
                    index_length,
                    index_delta_length,
                } if !audio => {
                    audio = true;
                    let rate = if m.clock_rate > 0 {
                        m.clock_rate
                    } else {
                        config.sample_rate
                    };
                    Some(TrackIn {
                        depack: Depack::Aac(aac::Depacketizer::new(
                            config,
                            size_length,
                            index_length,
                            index_delta_length,
                        )),
                        clock_rate: rate,
                        sr: None,
                        offset: None,
                    })
                }
                Codec::Unsupported(what) => {
                    ignored.push(what);
                    None
                }
                other => {
                    ignored.push(format!(
                        "a second {} track",
                        if matches!(other, Codec::H264 { .. } | Codec::H265 { .. }) {
                            "video"
                        } else {
                            "audio"
                        }
                    ));
                    None
                }
            };
            tracks.push(t);
        }
        if !video && !audio {
            return Err(IngestError::NoMedia { ignored });
        }
        Ok(Ingest {
            tracks,
            origin_ntp: None,
            video,
            audio,
            ignored,
            scratch: Vec::new(),
            bye: false,
        })
    }

    /// The events that open the stream: which tracks there are, and the configurations known from
    /// the SDP.
    pub fn start(&self, out: &mut Vec<MediaEvent>) {
        out.push(MediaEvent::Tracks {
            video: self.video,
            audio: self.audio,
        });
        for t in self.tracks.iter().flatten() {
            match &t.depack {
                Depack::H264(d) => {
                    if let Some(c) = d.config() {
                        out.push(MediaEvent::Video(c.clone()));
                    }
                }
                Depack::H265(d) => {
                    if let Some(c) = d.config() {
                        out.push(MediaEvent::Video(c.clone()));
                    }
                }
                Depack::Aac(d) => out.push(MediaEvent::Audio(d.config().clone())),
            }
        }
    }

    /// One RTP packet of `stream`. `offset` locates it for diagnostics.
    pub fn push_rtp(
        &mut self,
        stream: usize,
        data: &[u8],
        offset: u64,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) {
        let Some(Some(t)) = self.tracks.get_mut(stream) else {
            return;
        };
        let pkt = match Packet::parse(data) {
            Ok(p) => p,
            Err(e) => {
                diags.push(Diag::new(offset, format!("stream {stream}: {e}")));
                return;
            }
        };
        if t.offset.is_none() {
            let mut off = 0;
            if let Some((ntp, rtp)) = t.sr {
                let delta = i64::from(pkt.timestamp.wrapping_sub(rtp) as i32);
                let ntp_90k = ((i128::from(ntp) * i128::from(CLOCK_HZ)) >> 32) as i64
                    + delta * CLOCK_HZ / i64::from(t.clock_rate.max(1));
                let origin = *self.origin_ntp.get_or_insert(ntp_90k as u64);
                off = ntp_90k - origin as i64;
                if off.abs() > 10 * CLOCK_HZ {
                    off = 0;
                }
            }
            t.offset = Some(off);
        }
        let off = t.offset.unwrap_or(0) + LEAD;
        let mut evs = std::mem::take(&mut self.scratch);
        match &mut t.depack {
            Depack::H264(d) => d.push(&pkt, offset, &mut evs, diags),
            Depack::H265(d) => d.push(&pkt, offset, &mut evs, diags),
            Depack::Aac(d) => d.push(&pkt, offset, &mut evs, diags),
        }
        for mut e in evs.drain(..) {
            if let MediaEvent::Frame(f) = &mut e {
                f.pts += off;
                f.dts += off;
            }
            out.push(e);
        }
        self.scratch = evs;
    }

    /// One RTCP packet of `stream`: sender reports feed the sync; a BYE sets [`Ingest::bye`].
    pub fn push_rtcp(&mut self, stream: usize, data: &[u8]) {
        for r in rtcp::parse(data) {
            match r {
                Rtcp::SenderReport { ntp, rtp_time, .. } => {
                    if let Some(Some(t)) = self.tracks.get_mut(stream) {
                        t.sr = Some((ntp, rtp_time));
                    }
                }
                Rtcp::Bye { .. } => self.bye = true,
                _ => {}
            }
        }
    }

    /// Which track a stream feeds, if any.
    pub fn track(&self, stream: usize) -> Option<Track> {
        match self.tracks.get(stream)?.as_ref()?.depack {
            Depack::H264(_) | Depack::H265(_) => Some(Track::Video),
            Depack::Aac(_) => Some(Track::Audio),
        }
    }
}

/// An [`Ingest`] feeding [`crate::pipeline::FlvOut`]: a publisher's RTP in, FLV bytes out (what the
/// hub broadcasts for an RTSP publisher).
pub struct FlvIngest {
    pub ingest: Ingest,
    flv: crate::pipeline::FlvOut,
    started: bool,
    media: Vec<MediaEvent>,
    /// UDP: per stream, RTP back in order.
    reorder: Vec<Reorder>,
}

impl FlvIngest {
    pub fn new(ingest: Ingest) -> Self {
        FlvIngest {
            ingest,
            flv: crate::pipeline::FlvOut::new(),
            started: false,
            media: Vec::new(),
            reorder: Vec::new(),
        }
    }

    /// One datagram of `stream` (RTP over UDP): RTP goes through a [`Reorder`] buffer first, so
    /// packets swapped on the way are not taken for losses.
    #[allow(clippy::too_many_arguments)]
    pub fn push_datagram(
        &mut self,
        stream: usize,
        rtcp: bool,
        data: &[u8],
        offset: u64,
        now: Instant,
        out: &mut Vec<u8>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), IngestError> {
        if rtcp {
            return self.push(stream, true, data, offset, out, diags);
        }
        if self.reorder.len() <= stream {
            if stream >= self.ingest.tracks.len() {
                return Ok(());
            }
            self.reorder.resize_with(stream + 1, Reorder::new);
        }
        let mut r = std::mem::take(&mut self.reorder[stream]);
        let mut res = Ok(());
        r.push(data, now, &mut |p: &[u8]| {
            if res.is_ok() {
                res = self.push(stream, false, p, offset, out, diags);
            }
        });
        self.reorder[stream] = r;
        res
    }

    /// The end of a UDP publish: packets held for reordering go out.
    pub fn flush_datagrams(
        &mut self,
        out: &mut Vec<u8>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), IngestError> {
        let mut res = Ok(());
        for stream in 0..self.reorder.len() {
            let mut r = std::mem::take(&mut self.reorder[stream]);
            r.flush(&mut |p: &[u8]| {
                if res.is_ok() {
                    res = self.push(stream, false, p, 0, out, diags);
                }
            });
            self.reorder[stream] = r;
        }
        res
    }

    /// One interleaved (or UDP) packet of `stream`; FLV bytes are appended to `out`.
    pub fn push(
        &mut self,
        stream: usize,
        rtcp: bool,
        data: &[u8],
        offset: u64,
        out: &mut Vec<u8>,
        diags: &mut Vec<Diag>,
    ) -> Result<(), IngestError> {
        if rtcp {
            self.ingest.push_rtcp(stream, data);
            return Ok(());
        }
        if !self.started {
            self.started = true;
            self.ingest.start(&mut self.media);
        }
        self.ingest
            .push_rtp(stream, data, offset, &mut self.media, diags);
        for m in self.media.drain(..) {
            self.flv
                .event(&m, out)
                .map_err(|message| IngestError::Mux { stream, message })?;
        }
        Ok(())
    }
}
