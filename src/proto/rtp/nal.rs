//! What H.264 (RFC 6184) and H.265 (RFC 7798) over RTP share: the same three packet kinds (a
//! single NAL unit, an aggregation packet, a fragmentation unit), the same access unit assembly,
//! loss rule and timestamps. [`NalCodec`] holds what differs (header sizes, NAL types, parameter
//! sets); [`super::h264`] and [`super::h265`] are its two implementations.

use bytes::{Bytes, BytesMut};

use super::dts::DtsClock;
use super::{Packet, Payload, Unwrapper};
use crate::codec::h264::avcc_nals;
use crate::codec::h265::JoinFilter;
use crate::error::Diag;
use crate::media::{Codec, Frame, MediaEvent, Track, VideoConfig};

/// Largest access unit assembled; larger ones are dropped (and the stream waits for a keyframe).
pub const MAX_AU: usize = 16 << 20;

/// One codec's NAL units over RTP.
pub trait NalCodec {
    /// In messages: "h264", "h265".
    const NAME: &'static str;
    const CODEC: Codec;
    /// What a keyframe is called in messages.
    const KEY: &'static str;
    /// The parameter sets a configuration needs, in messages ("sps/pps").
    const PARAMS: &'static str;
    /// The aggregation packet's name in messages.
    const AGG_NAME: &'static str;
    /// NAL unit header bytes.
    const HDR: usize;
    /// The largest NAL unit type sent as a single NAL unit packet.
    const MAX_SINGLE: u8;
    /// Payload types of the aggregation packet and the fragmentation unit.
    const AGG: u8;
    const FRAG: u8;
    /// The type bits of the FU header.
    const FU_TYPE_MASK: u8;
    /// Keyframes may have leading pictures: RASL pictures of a CRA joined at are dropped, and DTS
    /// anchors allow for leading pictures decoded after the keyframe and shown before it.
    const LEADING_PICTURES: bool;
    /// Parameter set slots ([`Self::param_slot`]), and the SPS's (cleared when a configuration
    /// fails).
    const N_SETS: usize;
    const SPS_SLOT: usize;

    fn nal_type(nal: &[u8]) -> u8;
    fn is_vcl(t: u8) -> bool;
    fn is_key(t: u8) -> bool;
    fn is_aud(t: u8) -> bool;
    /// A non-VCL type that opens an access unit.
    fn opens_au(t: u8) -> bool;
    /// The parameter set slot of a NAL unit type (configuration order), if it is one.
    fn param_slot(t: u8) -> Option<usize>;
    /// The configuration's parameter set lists, in slot order.
    fn param_lists(c: &VideoConfig) -> Vec<&[Bytes]>;
    /// A configuration from one parameter set per slot.
    fn video_config(sets: Vec<Bytes>) -> Result<VideoConfig, String>;
    /// Frames of reordering (the DTS delay at a keyframe).
    fn reorder(c: &VideoConfig) -> i64;
    /// The NAL unit header of a fragmented unit, from the FU packet's first bytes.
    fn fu_nal_header(p: &[u8], out: &mut BytesMut);
    /// The payload header of an FU carrying `nal`.
    fn fu_payload_header(nal: &[u8], out: &mut BytesMut);
    /// The payload header of an aggregation packet carrying `sets`.
    fn agg_payload_header(sets: &[Bytes], out: &mut BytesMut);
}

/// Whether an RTP payload can be the first of an access unit: its first NAL unit (or the start of
/// a fragmented one) opens one (parameter sets, AUD, SEI, ...), or is the first slice of a
/// picture (the first bit after the NAL header: H.264 `first_mb_in_slice` 0 as ue(v) "1", H.265
/// `first_slice_segment_in_pic_flag`).
fn starts_au<C: NalCodec>(p: &[u8]) -> bool {
    let h = C::HDR;
    if p.len() < h {
        return false;
    }
    let (t, first_byte) = match C::nal_type(p) {
        t if t == C::AGG => (p.get(h + 2..h + 2 + h).map(C::nal_type), p.get(h + 2 + h)),
        t if t == C::FRAG => match p.get(h) {
            Some(&fu) if fu & 0x80 != 0 => (Some(fu & C::FU_TYPE_MASK), p.get(h + 1)),
            _ => return false,
        },
        t => (Some(t), p.get(h)),
    };
    match t {
        Some(t) if C::is_vcl(t) => first_byte.is_some_and(|b| b & 0x80 != 0),
        Some(t) => C::opens_au(t),
        None => false,
    }
}

/// RTP packets in, [`MediaEvent`]s out: access units with 4-byte lengths (AUDs removed, keyframe
/// flag), [`MediaEvent::Video`] whenever the parameter sets change (from the SDP, or in band).
///
/// - An access unit ends at the marker bit, or when the timestamp changes.
/// - A sequence gap (loss or reordering) drops the unit in progress and everything up to the next
///   keyframe, with one warning per gap; a keyframe whose first packets were lost is dropped too
///   (its later slices alone are no keyframe). With leading pictures, the RASL pictures of a CRA
///   joined at are dropped too (they reference pictures the receiver never got).
/// - PTS = the RTP timestamp, unwrapped, relative to the first packet. DTS: at each keyframe,
///   PTS − the reorder delay in frames, then one frame duration more per unit; never above PTS,
///   always increasing.
pub struct Depacketizer<C: NalCodec> {
    config: Option<VideoConfig>,
    /// The newest parameter set of each slot.
    sets: Vec<Option<Bytes>>,
    au: BytesMut,
    au_ts: Option<u32>,
    au_key: bool,
    fu: Option<BytesMut>,
    last_seq: Option<u16>,
    /// Dropping until a keyframe (after a gap, or before the first one).
    waiting_key: bool,
    broken: bool,
    join: JoinFilter,
    clock: Unwrapper,
    first: Option<i64>,
    dts: DtsClock,
    pub dropped_units: u64,
    pub gaps: u64,
    warned_config: bool,
    /// Unsupported packet types already warned about (one warning each).
    warned_types: u64,
    codec: std::marker::PhantomData<C>,
}

impl<C: NalCodec> Depacketizer<C> {
    /// `config`: from the SDP (`sprop-parameter-sets`, `sprop-vps/sps/pps`), if it had them.
    pub fn new(config: Option<VideoConfig>) -> Self {
        let sets = match &config {
            Some(c) => C::param_lists(c)
                .into_iter()
                .map(|l| l.first().cloned())
                .collect(),
            None => vec![None; C::N_SETS],
        };
        let mut d = Depacketizer {
            config: None,
            sets,
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
            dts: DtsClock::new(C::LEADING_PICTURES),
            dropped_units: 0,
            gaps: 0,
            warned_config: false,
            warned_types: 0,
            codec: std::marker::PhantomData,
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
        self.dts.configure(&c);
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
                        "{} rtp: expected sequence {expected}, found {} ({} lost); waiting for the next {}",
                        C::NAME,
                        pkt.seq,
                        diff - 1,
                        C::KEY
                    ),
                ));
                let lost_ts = self.au_ts;
                self.drop_au();
                self.fu = None;
                self.waiting_key = true;
                // The packets after the gap complete nothing if the lost ones may have held the
                // start of their access unit: a keyframe's later slices alone are no keyframe.
                if lost_ts == Some(pkt.timestamp) || !starts_au::<C>(pkt.payload) {
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
        let h = C::HDR;
        if p.len() < h {
            if !p.is_empty() {
                self.broken = true;
            }
            return;
        }
        match C::nal_type(p) {
            t if t <= C::MAX_SINGLE => self.nal(p, diags, offset),
            t if t == C::AGG => {
                let mut rest = &p[h..];
                while !rest.is_empty() {
                    let n = match rest {
                        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
                        _ => 0,
                    };
                    if n < h || rest.len() < 2 + n {
                        diags.push(Diag::new(
                            offset,
                            format!("{} rtp: truncated {}; unit dropped", C::NAME, C::AGG_NAME),
                        ));
                        self.broken = true;
                        break;
                    }
                    self.nal(&rest[2..2 + n], diags, offset);
                    rest = &rest[2 + n..];
                }
            }
            t if t == C::FRAG => self.fragment(p, diags, offset),
            t => {
                let bit = 1u64 << (t & 63);
                if self.warned_types & bit == 0 {
                    self.warned_types |= bit;
                    diags.push(Diag::new(
                        offset,
                        format!("{} rtp: unsupported packet type {t} skipped", C::NAME),
                    ));
                }
            }
        }
        if pkt.marker {
            self.finish_au(out, diags, offset);
        }
    }

    /// A fragmentation unit: the FU header follows the payload header.
    fn fragment(&mut self, p: &[u8], diags: &mut Vec<Diag>, offset: u64) {
        let h = C::HDR;
        let Some(&fu) = p.get(h) else {
            self.broken = true;
            return;
        };
        let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
        let body = &p[h + 1..];
        if start {
            let mut b = BytesMut::with_capacity(p.len() * 4);
            C::fu_nal_header(p, &mut b);
            b.extend_from_slice(body);
            self.fu = Some(b);
        } else if let Some(b) = &mut self.fu {
            if b.len() + p.len() > MAX_AU {
                self.fu = None;
                self.broken = true;
            } else {
                b.extend_from_slice(body);
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

    fn nal(&mut self, nal: &[u8], diags: &mut Vec<Diag>, offset: u64) {
        if nal.len() < C::HDR || nal[0] & 0x80 != 0 {
            self.broken = true;
            return;
        }
        let t = C::nal_type(nal);
        if C::is_aud(t) {
            return;
        }
        if let Some(slot) = C::param_slot(t) {
            self.sets[slot] = Some(Bytes::copy_from_slice(nal));
        } else if C::is_key(t) {
            self.au_key = true;
        }
        if self.au.len() + nal.len() + 4 > MAX_AU {
            if !self.broken {
                diags.push(Diag::new(
                    offset,
                    format!("{} rtp: access unit over {MAX_AU} bytes dropped", C::NAME),
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

    /// Builds or rebuilds the configuration when the parameter sets changed.
    fn update_config(&mut self, out: &mut Vec<MediaEvent>, diags: &mut Vec<Diag>, offset: u64) {
        let Some(sets) = self.sets.iter().cloned().collect::<Option<Vec<Bytes>>>() else {
            return;
        };
        let same = self.config.as_ref().is_some_and(|c| {
            C::param_lists(c)
                .iter()
                .zip(&sets)
                .all(|(l, s)| l.first() == Some(s))
        });
        if !same {
            match C::video_config(sets) {
                Ok(c) => {
                    self.set_config(c.clone());
                    out.push(MediaEvent::Video(c));
                }
                Err(e) => {
                    diags.push(Diag::new(offset, format!("{} rtp: {e}", C::NAME)));
                    self.sets[C::SPS_SLOT] = None;
                }
            }
        } else if self.first.is_none() {
            if let Some(c) = &self.config {
                out.push(MediaEvent::Video(c.clone()));
            }
        }
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
        self.update_config(out, diags, offset);
        if self.config.is_none() {
            if !self.warned_config {
                self.warned_config = true;
                diags.push(Diag::new(
                    offset,
                    format!(
                        "{} rtp: access units before the first {} are dropped",
                        C::NAME,
                        C::PARAMS
                    ),
                ));
            }
            self.drop_au();
            self.waiting_key = true;
            return;
        }
        if C::LEADING_PICTURES {
            if self.waiting_key {
                self.join.join(&self.au);
                self.dts.rejoin();
            } else if !self.join.keep(&self.au) {
                // A RASL picture of the keyframe joined at.
                self.drop_au();
                return;
            }
        }
        self.waiting_key = false;
        let (pts, dts) = self.stamp(ts, key);
        let data = self.au.split().freeze();
        self.au_key = false;
        out.push(MediaEvent::Frame(Frame {
            track: Track::Video,
            codec: C::CODEC,
            dts,
            pts,
            keyframe: key,
            data,
        }));
    }

    /// (PTS, DTS) of the unit with RTP timestamp `ts`: PTS relative to the first unit, DTS by
    /// [`DtsClock`].
    fn stamp(&mut self, ts: u32, key: bool) -> (i64, i64) {
        let ext = self.clock.unwrap(ts);
        let first = *self.first.get_or_insert(ext);
        let pts = ext - first;
        (pts, self.dts.stamp(pts, key))
    }
}

/// Frames in, RTP payloads out (shared by every receiver; [`super::Sender`] adds the headers).
///
/// NAL units that fit `mtu` go alone; larger ones as FUs. Before each keyframe the
/// configuration's parameter sets go in one aggregation packet (and in-band parameter sets and
/// AUDs of that unit are skipped). The last packet of each access unit has the marker bit.
#[derive(Debug, Clone)]
pub struct Packetizer<C: NalCodec> {
    pub mtu: usize,
    codec: std::marker::PhantomData<C>,
}

impl<C: NalCodec> Packetizer<C> {
    pub fn new(mtu: usize) -> Self {
        Packetizer {
            mtu: mtu.max(64),
            codec: std::marker::PhantomData,
        }
    }

    pub fn packetize(&self, frame: &Frame, cfg: Option<&VideoConfig>, out: &mut Vec<Payload>) {
        let start = out.len();
        let pts = frame.pts;
        if frame.keyframe {
            if let Some(c) = cfg {
                let sets: Vec<Bytes> = C::param_lists(c).into_iter().flatten().cloned().collect();
                let mut b = BytesMut::with_capacity(128);
                C::agg_payload_header(&sets, &mut b);
                for s in &sets {
                    b.extend_from_slice(&(s.len() as u16).to_be_bytes());
                    b.extend_from_slice(s);
                }
                if sets.len() > 1 && b.len() <= self.mtu {
                    emit(b.freeze(), pts, out);
                } else {
                    for s in sets {
                        self.nal(s, pts, out);
                    }
                }
            }
        }
        for nal in avcc_nals(&frame.data, 4).map_while(Result::ok) {
            if nal.len() < C::HDR {
                continue;
            }
            let t = C::nal_type(nal);
            if C::is_aud(t) || (frame.keyframe && cfg.is_some() && C::param_slot(t).is_some()) {
                continue;
            }
            self.nal(frame.data.slice_ref(nal), pts, out);
        }
        if out.len() > start {
            if let Some(last) = out.last_mut() {
                last.marker = true;
            }
        }
    }

    /// One NAL unit alone or as FUs.
    fn nal(&self, nal: Bytes, pts: i64, out: &mut Vec<Payload>) {
        if nal.len() <= self.mtu {
            emit(nal, pts, out);
            return;
        }
        let t = C::nal_type(&nal);
        let body = &nal[C::HDR..];
        let room = self.mtu - C::HDR - 1;
        let n = body.len().div_ceil(room);
        for (i, part) in body.chunks(room).enumerate() {
            let mut b = BytesMut::with_capacity(part.len() + C::HDR + 1);
            C::fu_payload_header(&nal, &mut b);
            let mut fu = t;
            if i == 0 {
                fu |= 0x80;
            }
            if i + 1 == n {
                fu |= 0x40;
            }
            b.extend_from_slice(&[fu]);
            b.extend_from_slice(part);
            emit(b.freeze(), pts, out);
        }
    }
}

fn emit(data: Bytes, pts: i64, out: &mut Vec<Payload>) {
    out.push(Payload {
        marker: false,
        pts,
        data,
    });
}

/// What the H.264 and H.265 tests share.
#[cfg(test)]
pub(super) mod test_util {
    use crate::media::{Frame, MediaEvent, VideoConfig};

    /// The configuration and frames among a reader's events.
    pub fn config_and_frames(ev: Vec<MediaEvent>) -> (VideoConfig, Vec<Frame>) {
        let mut cfg = None;
        let mut frames = Vec::new();
        for e in ev {
            match e {
                MediaEvent::Video(c) => cfg = Some(c),
                MediaEvent::Frame(f) => frames.push(f),
                _ => {}
            }
        }
        (cfg.expect("a configuration"), frames)
    }

    pub fn frames_of(ev: &[MediaEvent]) -> Vec<&Frame> {
        ev.iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect()
    }
}
