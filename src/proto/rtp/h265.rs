//! H.265 over RTP (RFC 7798): single NAL unit packets, aggregation packets (AP, type 48) and
//! fragmentation units (FU, type 49), without decoding order numbers (`sprop-max-don-diff` 0, as
//! ffmpeg, GStreamer and live555 send).

use bytes::{Bytes, BytesMut};

use super::{Packet, Payload, Unwrapper};
use crate::codec::h264::avcc_nals;
use crate::codec::h265::{self, is_irap, nal_type, nal_types, JoinFilter};
use crate::error::Diag;
use crate::media::{Codec, Frame, MediaEvent, Track, VideoConfig, CLOCK_HZ};

/// Largest access unit assembled; larger ones are dropped (and the stream waits for an IRAP).
pub const MAX_AU: usize = 16 << 20;

const AP: u8 = 48;
const FU: u8 = 49;
const PACI: u8 = 50;

/// RTP packets in, [`MediaEvent`]s out: access units with 4-byte lengths (AUDs removed,
/// keyframe = IRAP picture), [`MediaEvent::Video`] whenever the parameter sets change (from the
/// SDP's `sprop-vps/sps/pps`, or in band).
///
/// - An access unit ends at the marker bit, or when the timestamp changes.
/// - A sequence gap (loss or reordering) drops the unit in progress and everything up to the next
///   IRAP picture, with one warning per gap; the RASL pictures of a CRA joined at are dropped too
///   (they reference pictures the receiver never got).
/// - PTS = the RTP timestamp, unwrapped, relative to the first packet. DTS: at each keyframe,
///   PTS − the reorder delay (SPS `sps_max_num_reorder_pics`) in frames, then one frame duration
///   more per unit; never above PTS, always increasing.
pub struct Depacketizer {
    config: Option<VideoConfig>,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    au: BytesMut,
    au_ts: Option<u32>,
    au_key: bool,
    fu: Option<BytesMut>,
    last_seq: Option<u16>,
    /// Dropping until an IRAP picture (after a gap, or before the first one).
    waiting_key: bool,
    broken: bool,
    join: JoinFilter,
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
    warned_paci: bool,
}

impl Depacketizer {
    /// `config`: from the SDP's `sprop-vps`, `sprop-sps` and `sprop-pps`, if it had them.
    pub fn new(config: Option<VideoConfig>) -> Self {
        let mut d = Depacketizer {
            vps: config.as_ref().and_then(|c| c.vps.first().cloned()),
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
            join: JoinFilter::default(),
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
            warned_paci: false,
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
        self.reorder = c
            .sps
            .first()
            .and_then(|s| h265::parse_sps(s).ok())
            .map_or(2, |s| i64::from(s.max_num_reorder.min(16)));
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
                        "h265 rtp: expected sequence {expected}, found {} ({} lost); waiting for the next IRAP picture",
                        pkt.seq,
                        diff - 1
                    ),
                ));
                let lost_ts = self.au_ts;
                self.drop_au();
                self.fu = None;
                self.waiting_key = true;
                // The packets after the gap complete nothing if the lost ones may have held the
                // start of their access unit: an IRAP picture's later slices alone are no
                // keyframe.
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
        if p.len() < 2 {
            if !p.is_empty() {
                self.broken = true;
            }
            return;
        }
        match nal_type(p) {
            0..=47 => self.nal(p, diags, offset),
            AP => {
                let mut rest = &p[2..];
                while !rest.is_empty() {
                    let n = if rest.len() >= 2 {
                        usize::from(u16::from_be_bytes([rest[0], rest[1]]))
                    } else {
                        0
                    };
                    if n < 2 || rest.len() < 2 + n {
                        diags.push(Diag::new(
                            offset,
                            "h265 rtp: truncated aggregation packet; unit dropped",
                        ));
                        self.broken = true;
                        break;
                    }
                    self.nal(&rest[2..2 + n], diags, offset);
                    rest = &rest[2 + n..];
                }
            }
            FU => {
                if p.len() < 3 {
                    self.broken = true;
                } else {
                    let fu = p[2];
                    let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                    if start {
                        let mut b = BytesMut::with_capacity(p.len() * 4);
                        // The NAL unit header: the payload header's F, LayerId and TID with the
                        // FU header's type.
                        b.extend_from_slice(&[(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]]);
                        b.extend_from_slice(&p[3..]);
                        self.fu = Some(b);
                    } else if let Some(b) = &mut self.fu {
                        if b.len() + p.len() > MAX_AU {
                            self.fu = None;
                            self.broken = true;
                        } else {
                            b.extend_from_slice(&p[3..]);
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
                if t != PACI || !self.warned_paci {
                    self.warned_paci |= t == PACI;
                    diags.push(Diag::new(
                        offset,
                        format!("h265 rtp: unsupported packet type {t} skipped"),
                    ));
                }
            }
        }
        if pkt.marker {
            self.finish_au(out, diags, offset);
        }
    }

    fn nal(&mut self, nal: &[u8], diags: &mut Vec<Diag>, offset: u64) {
        if nal.len() < 2 || nal[0] & 0x80 != 0 {
            self.broken = true;
            return;
        }
        let t = nal_type(nal);
        match t {
            nal_types::AUD => return,
            nal_types::VPS => self.vps = Some(Bytes::copy_from_slice(nal)),
            nal_types::SPS => self.sps = Some(Bytes::copy_from_slice(nal)),
            nal_types::PPS => self.pps = Some(Bytes::copy_from_slice(nal)),
            _ if is_irap(t) => self.au_key = true,
            _ => {}
        }
        if self.au.len() + nal.len() + 4 > MAX_AU {
            if !self.broken {
                diags.push(Diag::new(
                    offset,
                    format!("h265 rtp: access unit over {MAX_AU} bytes dropped"),
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
        if let (Some(vps), Some(sps), Some(pps)) = (&self.vps, &self.sps, &self.pps) {
            let same = self.config.as_ref().is_some_and(|c| {
                c.vps.first() == Some(vps)
                    && c.sps.first() == Some(sps)
                    && c.pps.first() == Some(pps)
            });
            if !same {
                match h265::video_config(vec![vps.clone()], vec![sps.clone()], vec![pps.clone()]) {
                    Ok(c) => {
                        self.set_config(c.clone());
                        out.push(MediaEvent::Video(c));
                    }
                    Err(e) => {
                        diags.push(Diag::new(offset, format!("h265 rtp: {e}")));
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
                    "h265 rtp: access units before the first vps/sps/pps are dropped",
                ));
            }
            self.drop_au();
            self.waiting_key = true;
            return;
        }
        if self.waiting_key {
            self.join.join(&self.au);
            self.anchor = None;
        } else if !self.join.keep(&self.au) {
            // A RASL picture of the IRAP picture joined at.
            self.drop_au();
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
        // DTS advances one frame duration per unit from an anchor set at each keyframe, never
        // above PTS, always increasing. The first anchor is PTS minus the reorder delay. Later
        // ones continue the running DTS, kept within [PTS − 2·delay, PTS − delay]: an IRAP
        // picture's leading pictures (at most sps_max_num_reorder_pics of them, H.265 7.4.3.2)
        // are decoded after it and shown before it, so an open-GOP CRA needs up to twice the
        // delay (x265's CRA with 2 RASL pictures: DTS = PTS − 4 frames).
        if key || self.anchor.is_none() {
            let hi = pts - self.reorder * self.frame_dur;
            let mut a = match (self.anchor, self.last_dts) {
                (Some(_), Some(ld)) => {
                    (ld + self.frame_dur).clamp(hi - self.reorder * self.frame_dur, hi)
                }
                _ => hi,
            };
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
            codec: Codec::H265,
            dts,
            pts,
            keyframe: key,
            data,
        }));
    }
}

/// Whether an RTP payload can be the first of an access unit: its first NAL unit (or the start
/// of a fragmented one) is a parameter set, AUD, prefix SEI, or the first slice segment of a
/// picture (`first_slice_segment_in_pic_flag`, H.265 7.3.6.1).
fn starts_au(p: &[u8]) -> bool {
    let (t, first_byte) = match nal_type(p) {
        AP => (nal_type(p.get(4..).unwrap_or(&[])), p.get(6)),
        FU => match p.get(2) {
            Some(&fu) if fu & 0x80 != 0 => (fu & 0x3f, p.get(3)),
            _ => return false,
        },
        t => (t, p.get(2)),
    };
    match t {
        0..=31 => first_byte.is_some_and(|b| b & 0x80 != 0),
        nal_types::VPS | nal_types::SPS | nal_types::PPS | nal_types::AUD => true,
        nal_types::SEI_PREFIX => true,
        _ => false,
    }
}

/// Frames in, RTP payloads out (shared by every receiver; [`super::Sender`] adds the headers).
///
/// NAL units that fit `mtu` go alone; larger ones as FUs. Before each IRAP picture the
/// configuration's VPS, SPS and PPS go in one aggregation packet (and in-band parameter sets and
/// AUDs of that unit are skipped). The last packet of each access unit has the marker bit.
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
        let params = |c: &'_ VideoConfig| -> Vec<Bytes> {
            c.vps.iter().chain(&c.sps).chain(&c.pps).cloned().collect()
        };
        if frame.keyframe {
            if let Some(c) = cfg {
                // Payload header: F 0, type 48, LayerId 0, TID 0 (the lowest of the parameter
                // sets, RFC 7798 4.4.2).
                let mut b = BytesMut::with_capacity(128);
                b.extend_from_slice(&[AP << 1, 1]);
                let ps = params(c);
                for p in &ps {
                    b.extend_from_slice(&(p.len() as u16).to_be_bytes());
                    b.extend_from_slice(p);
                }
                if ps.len() > 1 && b.len() <= self.mtu {
                    emit(b.freeze(), out);
                } else {
                    for p in ps {
                        self.nal(p, out, &emit);
                    }
                }
            }
        }
        for nal in avcc_nals(&frame.data, 4).map_while(Result::ok) {
            if nal.len() < 2 {
                continue;
            }
            let t = nal_type(nal);
            if t == nal_types::AUD {
                continue;
            }
            if frame.keyframe
                && cfg.is_some()
                && matches!(t, nal_types::VPS | nal_types::SPS | nal_types::PPS)
            {
                continue;
            }
            self.nal(frame.data.slice_ref(nal), out, &emit);
        }
        if out.len() > start {
            if let Some(last) = out.last_mut() {
                last.marker = true;
            }
        }
    }

    /// One NAL unit (2-byte header first) alone or as FUs.
    fn nal(&self, nal: Bytes, out: &mut Vec<Payload>, emit: &dyn Fn(Bytes, &mut Vec<Payload>)) {
        if nal.len() <= self.mtu {
            emit(nal, out);
            return;
        }
        let hdr = [(nal[0] & 0x81) | (FU << 1), nal[1]];
        let t = nal_type(&nal);
        let body = &nal[2..];
        let room = self.mtu - 3;
        let n = body.len().div_ceil(room);
        for (i, part) in body.chunks(room).enumerate() {
            let mut b = BytesMut::with_capacity(part.len() + 3);
            let mut fu = t;
            if i == 0 {
                fu |= 0x80;
            }
            if i + 1 == n {
                fu |= 0x40;
            }
            b.extend_from_slice(&[hdr[0], hdr[1], fu]);
            b.extend_from_slice(part);
            emit(b.freeze(), out);
        }
    }
}

#[cfg(test)]
mod tests;
