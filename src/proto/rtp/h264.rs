//! H.264 over RTP (RFC 6184), packetization mode 0 and 1.

use bytes::{Bytes, BytesMut};

use super::{Packet, Payload, Unwrapper};
use crate::codec::h264::{self, avcc_nals, nal_type, nal_types};
use crate::error::Diag;
use crate::media::{Codec, Frame, MediaEvent, Track, VideoConfig, CLOCK_HZ};

/// Largest access unit assembled; larger ones are dropped (and the stream waits for a keyframe).
pub const MAX_AU: usize = 16 << 20;

const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// RTP packets in, [`MediaEvent`]s out: AVCC access units (4-byte lengths, AUDs removed, keyframe
/// flag), [`MediaEvent::Video`] whenever the parameter sets change (from the SDP, or in band).
///
/// - An access unit ends at the marker bit, or when the timestamp changes.
/// - A sequence gap (loss or reordering) drops the unit in progress and everything up to the next
///   IDR, with one warning per gap; an IDR whose first packets were lost is dropped too (its later
///   slices alone are no keyframe).
/// - PTS = the RTP timestamp, unwrapped, relative to the first packet. DTS: at each keyframe,
///   PTS − the reorder delay (VUI `max_num_reorder_frames`, else 2 frames unless the profile is
///   Baseline), then one frame duration more per unit; never above PTS, always increasing.
pub struct Depacketizer {
    config: Option<VideoConfig>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    au: BytesMut,
    au_ts: Option<u32>,
    au_key: bool,
    fu: Option<BytesMut>,
    last_seq: Option<u16>,
    /// Dropping until an IDR (after a gap, or before the first IDR).
    waiting_key: bool,
    broken: bool,
    clock: Unwrapper,
    first: Option<i64>,
    reorder: i64,
    frame_dur: i64,
    last_pts: Option<i64>,
    last_dts: Option<i64>,
    /// DTS of the last keyframe and units since.
    anchor: Option<(i64, i64)>,
    pub dropped_units: u64,
    pub gaps: u64,
    warned_config: bool,
}

impl Depacketizer {
    /// `config`: from the SDP's `sprop-parameter-sets`, if it had them.
    pub fn new(config: Option<VideoConfig>) -> Self {
        let mut d = Depacketizer {
            sps: config.as_ref().and_then(|c| c.sps.first().cloned()),
            pps: config.as_ref().and_then(|c| c.pps.first().cloned()),
            config: None,
            au: BytesMut::new(),
            au_ts: None,
            au_key: false,
            fu: None,
            last_seq: None,
            waiting_key: true,
            broken: false,
            clock: Unwrapper::default(),
            first: None,
            reorder: 0,
            frame_dur: CLOCK_HZ / 25,
            last_pts: None,
            last_dts: None,
            anchor: None,
            dropped_units: 0,
            gaps: 0,
            warned_config: false,
        };
        if let Some(c) = config {
            d.set_config(c);
        }
        d
    }

    pub fn config(&self) -> Option<&VideoConfig> {
        self.config.as_ref()
    }

    fn set_config(&mut self, c: VideoConfig) {
        if let Some((n, den)) = c.frame_rate.filter(|&(n, _)| n > 0) {
            self.frame_dur = (CLOCK_HZ * i64::from(den) / i64::from(n)).max(1);
        }
        self.reorder = reorder_frames(&c);
        self.config = Some(c);
    }

    /// Feeds one RTP packet (already parsed).
    pub fn push(
        &mut self,
        pkt: &Packet<'_>,
        offset: u64,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) {
        if let Some(last) = self.last_seq {
            let expected = last.wrapping_add(1);
            if pkt.seq != expected {
                let diff = pkt.seq.wrapping_sub(last) as i16;
                if diff <= 0 {
                    // A duplicate or late packet: ignore it.
                    return;
                }
                self.gaps += 1;
                diags.push(Diag::new(
                    offset,
                    format!(
                        "h264 rtp: expected sequence {expected}, found {} ({} lost); waiting for the next keyframe",
                        pkt.seq,
                        diff - 1
                    ),
                ));
                let lost_ts = self.au_ts;
                self.drop_au();
                self.fu = None;
                self.waiting_key = true;
                // The packets after the gap complete nothing if the lost ones may have held the
                // start of their access unit: an IDR's later slices alone are no keyframe.
                if lost_ts == Some(pkt.timestamp) || !starts_au(pkt.payload) {
                    self.au_ts = Some(pkt.timestamp);
                    self.broken = true;
                }
            }
        }
        self.last_seq = Some(pkt.seq);
        if self.au_ts.is_some_and(|t| t != pkt.timestamp) {
            self.finish_au(out, diags, offset);
        }
        self.au_ts = Some(pkt.timestamp);
        let p = pkt.payload;
        let Some(&hdr) = p.first() else {
            return;
        };
        match hdr & 0x1f {
            1..=23 => self.nal(p, diags, offset),
            STAP_A => {
                let mut rest = &p[1..];
                while rest.len() >= 2 {
                    let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    if n == 0 || rest.len() < 2 + n {
                        diags.push(Diag::new(
                            offset,
                            "h264 rtp: truncated STAP-A; unit dropped",
                        ));
                        self.broken = true;
                        break;
                    }
                    self.nal(&rest[2..2 + n], diags, offset);
                    rest = &rest[2 + n..];
                }
            }
            FU_A => {
                if p.len() < 2 {
                    self.broken = true;
                } else {
                    let (start, end) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
                    if start {
                        let mut b = BytesMut::with_capacity(p.len() * 4);
                        b.extend_from_slice(&[(hdr & 0xe0) | (p[1] & 0x1f)]);
                        b.extend_from_slice(&p[2..]);
                        self.fu = Some(b);
                    } else if let Some(b) = &mut self.fu {
                        if b.len() + p.len() > MAX_AU {
                            self.fu = None;
                            self.broken = true;
                        } else {
                            b.extend_from_slice(&p[2..]);
                        }
                    } else {
                        // A fragment without its start: the unit is incomplete.
                        self.broken = true;
                    }
                    if end {
                        if let Some(b) = self.fu.take() {
                            self.nal(&b, diags, offset);
                        }
                    }
                }
            }
            t => {
                diags.push(Diag::new(
                    offset,
                    format!("h264 rtp: unsupported packet type {t} skipped"),
                ));
            }
        }
        if pkt.marker {
            self.finish_au(out, diags, offset);
        }
    }

    fn nal(&mut self, nal: &[u8], diags: &mut Vec<Diag>, offset: u64) {
        if nal.is_empty() || nal[0] & 0x80 != 0 {
            self.broken = true;
            return;
        }
        match nal_type(nal) {
            nal_types::AUD => return,
            nal_types::SPS => self.sps = Some(Bytes::copy_from_slice(nal)),
            nal_types::PPS => self.pps = Some(Bytes::copy_from_slice(nal)),
            nal_types::IDR => self.au_key = true,
            _ => {}
        }
        if self.au.len() + nal.len() + 4 > MAX_AU {
            if !self.broken {
                diags.push(Diag::new(
                    offset,
                    format!("h264 rtp: access unit over {MAX_AU} bytes dropped"),
                ));
            }
            self.broken = true;
            return;
        }
        self.au.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        self.au.extend_from_slice(nal);
    }

    fn drop_au(&mut self) {
        if !self.au.is_empty() {
            self.dropped_units += 1;
        }
        self.au.clear();
        self.au_key = false;
        self.broken = false;
        self.au_ts = None;
    }

    fn finish_au(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>, offset: u64) {
        let Some(ts) = self.au_ts.take() else {
            return;
        };
        if self.fu.is_some() {
            // The unit ended inside a fragmented NAL unit.
            self.fu = None;
            self.broken = true;
        }
        if self.au.is_empty() {
            self.broken = false;
            self.au_key = false;
            return;
        }
        let key = self.au_key;
        if self.broken {
            self.drop_au();
            self.waiting_key = true;
            return;
        }
        if self.waiting_key && !key {
            self.drop_au();
            return;
        }
        // Parameter sets: build or rebuild the configuration when they changed.
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
            let same = self
                .config
                .as_ref()
                .is_some_and(|c| c.sps.first() == Some(sps) && c.pps.first() == Some(pps));
            if !same {
                match h264::video_config(vec![sps.clone()], vec![pps.clone()]) {
                    Ok(c) => {
                        self.set_config(c.clone());
                        out.push(MediaEvent::Video(c));
                    }
                    Err(e) => {
                        diags.push(Diag::new(offset, format!("h264 rtp: {e}")));
                        self.sps = None;
                    }
                }
            } else if self.first.is_none() {
                if let Some(c) = &self.config {
                    out.push(MediaEvent::Video(c.clone()));
                }
            }
        }
        if self.config.is_none() {
            if !self.warned_config {
                self.warned_config = true;
                diags.push(Diag::new(
                    offset,
                    "h264 rtp: access units before the first sps/pps are dropped",
                ));
            }
            self.drop_au();
            self.waiting_key = true;
            return;
        }
        self.waiting_key = false;
        let ext = self.clock.unwrap(ts);
        let first = *self.first.get_or_insert(ext);
        let pts = ext - first;
        if let Some(lp) = self.last_pts {
            let step = pts - lp;
            if step > 0
                && step < self.frame_dur
                && self.config.as_ref().is_some_and(|c| c.frame_rate.is_none())
            {
                self.frame_dur = step;
            }
        }
        self.last_pts = Some(pts);
        // DTS advances one frame duration per unit from an anchor set at each keyframe (PTS minus
        // the reorder delay), never above PTS, always increasing.
        if key || self.anchor.is_none() {
            let mut a = pts - self.reorder * self.frame_dur;
            if let Some(ld) = self.last_dts {
                a = a.max(ld + 1);
            }
            self.anchor = Some((a, 0));
        }
        let (a, k) = self.anchor.unwrap_or((pts, 0));
        self.anchor = Some((a, k + 1));
        let mut dts = (a + k * self.frame_dur).min(pts);
        if let Some(ld) = self.last_dts {
            dts = dts.max(ld + 1);
        }
        self.last_dts = Some(dts);
        let data = self.au.split().freeze();
        self.au_key = false;
        out.push(MediaEvent::Frame(Frame {
            track: Track::Video,
            codec: Codec::H264,
            dts,
            pts,
            keyframe: key,
            data,
        }));
    }
}

/// Whether an RTP payload can be the first of an access unit: its first NAL unit (or the start
/// of a fragmented one) opens one (SEI, SPS, PPS, AUD, ..., H.264 7.4.1.2.3), or is the first
/// slice of a picture (`first_mb_in_slice` 0: ue(v) "1").
fn starts_au(p: &[u8]) -> bool {
    let (t, first_byte) = match p.first().map(|h| h & 0x1f) {
        Some(STAP_A) => (p.get(3).map(|h| h & 0x1f), p.get(4)),
        Some(FU_A) => match p.get(1) {
            Some(&fu) if fu & 0x80 != 0 => (Some(fu & 0x1f), p.get(2)),
            _ => return false,
        },
        t => (t, p.get(1)),
    };
    match t {
        Some(1..=5) => first_byte.is_some_and(|b| b & 0x80 != 0),
        Some(6..=9 | 14..=18) => true,
        _ => false,
    }
}

/// Frames of reordering to allow for: VUI `max_num_reorder_frames`, else 0 for Baseline and
/// Constrained Baseline, else 2.
fn reorder_frames(c: &VideoConfig) -> i64 {
    let Some(sps) = c.sps.first() else { return 0 };
    if let Ok(p) = h264::parse_sps(sps) {
        if let Some(r) = p
            .vui_parameters
            .as_ref()
            .and_then(|v| v.bitstream_restrictions.as_ref())
        {
            return i64::from(r.max_num_reorder_frames.min(16));
        }
    }
    match sps.get(1) {
        Some(66) => 0,
        _ => 2,
    }
}

/// Frames in, RTP payloads out (shared by every receiver; [`super::Sender`] adds the headers).
///
/// NAL units that fit `mtu` go alone; larger ones as FU-A. Before each keyframe the
/// configuration's SPS and PPS go in one STAP-A (and in-band SPS/PPS/AUD of that unit are skipped).
/// The last packet of each access unit has the marker bit.
#[derive(Debug, Clone)]
pub struct Packetizer {
    pub mtu: usize,
}

impl Packetizer {
    pub fn new(mtu: usize) -> Self {
        Packetizer { mtu: mtu.max(64) }
    }

    pub fn packetize(&self, frame: &Frame, cfg: Option<&VideoConfig>, out: &mut Vec<Payload>) {
        let start = out.len();
        let pts = frame.pts;
        let emit = |data: Bytes, out: &mut Vec<Payload>| {
            out.push(Payload {
                marker: false,
                pts,
                data,
            });
        };
        if frame.keyframe {
            if let Some(c) = cfg {
                let mut b = BytesMut::with_capacity(64);
                b.extend_from_slice(&[0]);
                let mut nri = 0u8;
                for ps in c.sps.iter().chain(c.pps.iter()) {
                    b.extend_from_slice(&(ps.len() as u16).to_be_bytes());
                    b.extend_from_slice(ps);
                    nri = nri.max(ps.first().copied().unwrap_or(0) & 0x60);
                }
                if b.len() > 1 && b.len() <= self.mtu {
                    b[0] = nri | STAP_A;
                    emit(b.freeze(), out);
                } else {
                    for ps in c.sps.iter().chain(c.pps.iter()) {
                        emit(ps.clone(), out);
                    }
                }
            }
        }
        for nal in avcc_nals(&frame.data, 4).map_while(Result::ok) {
            let t = nal_type(nal);
            if nal.is_empty() || t == nal_types::AUD {
                continue;
            }
            if frame.keyframe && cfg.is_some() && (t == nal_types::SPS || t == nal_types::PPS) {
                continue;
            }
            let nal = frame.data.slice_ref(nal);
            if nal.len() <= self.mtu {
                emit(nal, out);
                continue;
            }
            let hdr = nal[0];
            let body = &nal[1..];
            let room = self.mtu - 2;
            let n = body.len().div_ceil(room);
            for (i, part) in body.chunks(room).enumerate() {
                let mut b = BytesMut::with_capacity(part.len() + 2);
                let mut fu = hdr & 0x1f;
                if i == 0 {
                    fu |= 0x80;
                }
                if i + 1 == n {
                    fu |= 0x40;
                }
                b.extend_from_slice(&[(hdr & 0xe0) | FU_A, fu]);
                b.extend_from_slice(part);
                emit(b.freeze(), out);
            }
        }
        if out.len() > start {
            if let Some(last) = out.last_mut() {
                last.marker = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
