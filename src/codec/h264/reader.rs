//! Raw H.264 (Annex B) input: access-unit assembly, parameter-set tracking and timestamps.

use bytes::{BufMut, Bytes, BytesMut};
use h264_reader::nal::pps::PicParameterSet;
use h264_reader::nal::slice::{
    DecRefPicMarking, FieldPic, MemoryManagementControlOperation, PicOrderCountLsb, SliceHeader,
};
use h264_reader::nal::sps::{PicOrderCntType, SeqParameterSet};
use h264_reader::nal::NalHeader;
use h264_reader::rbsp::{decode_nal, BitReader};
use h264_reader::Context;

use super::split::{Nal, NalSplitter};
use super::{
    first_mb_in_slice, nal_type, nal_types, parse_sps, sps_frame_rate, video_config, H264Error,
};
use crate::error::Diag;
use crate::media::{Codec, Frame, MediaEvent, Track, VideoConfig, CLOCK_HZ};

/// Largest access unit [`AnnexBReader`] assembles (sum of its NAL units); larger ones are dropped
/// with a warning.
pub const MAX_AU_SIZE: usize = 32 * 1024 * 1024;

/// Bytes of a slice NAL unit unescaped to parse its header (the longest headers, with weight tables
/// for 32 references, stay well below this).
const SLICE_HEADER_PREFIX: usize = 4096;

/// Frame rate used when neither the caller nor the SPS gives one.
pub(crate) const DEFAULT_FPS: (u32, u32) = (25, 1);

/// The fields of one slice header that picture order count and timing need (copied out of
/// h264-reader's `SliceHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SliceInfo {
    pub idr: bool,
    pub nal_ref_idc: u8,
    pub frame_num: u32,
    /// `None` for a frame, `Some(false)` for a top field, `Some(true)` for a bottom field.
    pub bottom_field: Option<bool>,
    pub pic_order_cnt_lsb: u32,
    pub delta_pic_order_cnt_bottom: i32,
    pub delta_pic_order_cnt: [i32; 2],
    /// memory_management_control_operation 5 present.
    pub mmco5: bool,
}

impl SliceInfo {
    fn from_header(h: &SliceHeader, idr: bool, nal_ref_idc: u8) -> Self {
        let mut s = SliceInfo {
            idr,
            nal_ref_idc,
            frame_num: u32::from(h.frame_num),
            bottom_field: match &h.field_pic {
                FieldPic::Frame => None,
                FieldPic::Field(f) => Some(matches!(f, h264_reader::nal::slice::Field::Bottom)),
            },
            ..Default::default()
        };
        match h.pic_order_cnt_lsb {
            Some(PicOrderCountLsb::Frame(lsb)) => s.pic_order_cnt_lsb = lsb,
            Some(PicOrderCountLsb::FieldsAbsolute {
                pic_order_cnt_lsb,
                delta_pic_order_cnt_bottom,
            }) => {
                s.pic_order_cnt_lsb = pic_order_cnt_lsb;
                s.delta_pic_order_cnt_bottom = delta_pic_order_cnt_bottom;
            }
            Some(PicOrderCountLsb::FieldsDelta(d)) => s.delta_pic_order_cnt = d,
            None => {}
        }
        if let Some(DecRefPicMarking::Adaptive(ops)) = &h.dec_ref_pic_marking {
            s.mmco5 = ops
                .iter()
                .any(|op| matches!(op, MemoryManagementControlOperation::AllRefPicturesUnused));
        }
        s
    }
}

/// The SPS fields picture order count needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PocParams {
    /// 0, 1 or 2.
    pub poc_type: u8,
    pub log2_max_frame_num: u8,
    /// Type 0 only.
    pub log2_max_poc_lsb: u8,
    /// Type 1 only.
    pub offset_for_non_ref_pic: i32,
    pub offset_for_top_to_bottom_field: i32,
    pub offsets_for_ref_frame: Vec<i32>,
}

impl PocParams {
    pub fn from_sps(sps: &SeqParameterSet) -> Self {
        let mut p = PocParams {
            poc_type: 0,
            log2_max_frame_num: sps.log2_max_frame_num(),
            log2_max_poc_lsb: 4,
            offset_for_non_ref_pic: 0,
            offset_for_top_to_bottom_field: 0,
            offsets_for_ref_frame: Vec::new(),
        };
        match &sps.pic_order_cnt {
            PicOrderCntType::TypeZero {
                log2_max_pic_order_cnt_lsb_minus4,
            } => p.log2_max_poc_lsb = log2_max_pic_order_cnt_lsb_minus4 + 4,
            PicOrderCntType::TypeOne {
                offset_for_non_ref_pic,
                offset_for_top_to_bottom_field,
                offsets_for_ref_frame,
                ..
            } => {
                p.poc_type = 1;
                p.offset_for_non_ref_pic = *offset_for_non_ref_pic;
                p.offset_for_top_to_bottom_field = *offset_for_top_to_bottom_field;
                p.offsets_for_ref_frame = offsets_for_ref_frame.clone();
            }
            PicOrderCntType::TypeTwo => p.poc_type = 2,
        }
        p
    }
}

/// Picture order count decoding state (H.264 8.2.1), one picture at a time in decoding order.
#[derive(Debug, Clone, Default)]
pub struct PocState {
    // Type 0: of the previous reference picture.
    prev_poc_msb: i64,
    prev_poc_lsb: i64,
    // Types 1 and 2: of the previous picture.
    prev_frame_num_offset: i64,
    prev_frame_num: i64,
    prev_had_mmco5: bool,
}

impl PocState {
    /// The picture order count of the next picture (for a frame, min(top, bottom)).
    pub fn next(&mut self, p: &PocParams, s: &SliceInfo) -> i64 {
        let max_frame_num = 1i64 << p.log2_max_frame_num.min(16);
        let frame_num = i64::from(s.frame_num);
        let (top, bottom) = match p.poc_type {
            0 => {
                let max_lsb = 1i64 << p.log2_max_poc_lsb.min(16);
                if s.idr {
                    self.prev_poc_msb = 0;
                    self.prev_poc_lsb = 0;
                }
                let lsb = i64::from(s.pic_order_cnt_lsb);
                let (pm, pl) = (self.prev_poc_msb, self.prev_poc_lsb);
                let msb = if lsb < pl && pl - lsb >= max_lsb / 2 {
                    pm.saturating_add(max_lsb)
                } else if lsb > pl && lsb - pl > max_lsb / 2 {
                    pm.saturating_sub(max_lsb)
                } else {
                    pm
                };
                let (top, bottom) = match s.bottom_field {
                    None => {
                        let top = msb.saturating_add(lsb);
                        (
                            top,
                            top.saturating_add(i64::from(s.delta_pic_order_cnt_bottom)),
                        )
                    }
                    Some(false) => {
                        let t = msb.saturating_add(lsb);
                        (t, t)
                    }
                    Some(true) => {
                        let b = msb.saturating_add(lsb);
                        (b, b)
                    }
                };
                if s.nal_ref_idc != 0 {
                    if s.mmco5 {
                        // 8.2.1: after memory_management_control_operation 5 the picture's
                        // order count is relative to itself.
                        self.prev_poc_msb = 0;
                        self.prev_poc_lsb = if s.bottom_field == Some(true) {
                            0
                        } else {
                            top.saturating_sub(top.min(bottom))
                        };
                    } else {
                        self.prev_poc_msb = msb;
                        self.prev_poc_lsb = lsb;
                    }
                }
                (top, bottom)
            }
            _ => {
                let prev_offset = if self.prev_had_mmco5 {
                    0
                } else {
                    self.prev_frame_num_offset
                };
                let offset = if s.idr {
                    0
                } else if self.prev_frame_num > frame_num {
                    prev_offset.saturating_add(max_frame_num)
                } else {
                    prev_offset
                };
                let r = if p.poc_type == 1 {
                    self.type1(p, s, offset.saturating_add(frame_num))
                } else {
                    let t = if s.idr {
                        0
                    } else if s.nal_ref_idc == 0 {
                        offset.saturating_add(frame_num).saturating_mul(2) - 1
                    } else {
                        offset.saturating_add(frame_num).saturating_mul(2)
                    };
                    (t, t)
                };
                self.prev_frame_num_offset = offset;
                self.prev_frame_num = if s.mmco5 { 0 } else { frame_num };
                self.prev_had_mmco5 = s.mmco5;
                r
            }
        };
        match s.bottom_field {
            None => top.min(bottom),
            Some(false) => top,
            Some(true) => bottom,
        }
    }

    fn type1(&self, p: &PocParams, s: &SliceInfo, abs: i64) -> (i64, i64) {
        let n = p.offsets_for_ref_frame.len() as i64;
        let mut abs_frame_num = if n != 0 { abs } else { 0 };
        if s.nal_ref_idc == 0 && abs_frame_num > 0 {
            abs_frame_num -= 1;
        }
        let mut expected: i64 = 0;
        if abs_frame_num > 0 && n > 0 {
            let cycle_cnt = (abs_frame_num - 1) / n;
            let in_cycle = ((abs_frame_num - 1) % n) as usize;
            let delta_per_cycle: i64 = p.offsets_for_ref_frame.iter().map(|&o| i64::from(o)).sum();
            expected = cycle_cnt.saturating_mul(delta_per_cycle);
            for &o in p.offsets_for_ref_frame.iter().take(in_cycle + 1) {
                expected = expected.saturating_add(i64::from(o));
            }
        }
        if s.nal_ref_idc == 0 {
            expected = expected.saturating_add(i64::from(p.offset_for_non_ref_pic));
        }
        let d0 = i64::from(s.delta_pic_order_cnt[0]);
        let d1 = i64::from(s.delta_pic_order_cnt[1]);
        let t2b = i64::from(p.offset_for_top_to_bottom_field);
        match s.bottom_field {
            None => {
                let top = expected.saturating_add(d0);
                (top, top.saturating_add(t2b).saturating_add(d1))
            }
            Some(false) => {
                let t = expected.saturating_add(d0);
                (t, t)
            }
            Some(true) => {
                let b = expected.saturating_add(t2b).saturating_add(d0);
                (b, b)
            }
        }
    }
}

/// Exact 90 kHz timestamps of frame indices at a rational frame rate, re-based when the rate
/// changes.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    pub(crate) fps: (u32, u32),
    pub(crate) base_index: i64,
    pub(crate) base_ts: i64,
}

impl Clock {
    pub(crate) fn ts(&self, index: i64) -> i64 {
        let (num, den) = (i128::from(self.fps.0.max(1)), i128::from(self.fps.1.max(1)));
        let d = i128::from(index) - i128::from(self.base_index);
        let t = (d * i128::from(CLOCK_HZ) * den).div_euclid(num) + i128::from(self.base_ts);
        t.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    pub(crate) fn set_rate(&mut self, fps: (u32, u32), at_index: i64) {
        if fps != self.fps {
            self.base_ts = self.ts(at_index);
            self.base_index = at_index;
            self.fps = fps;
        }
    }
}

#[derive(Debug, Default)]
struct Au {
    nals: Vec<Nal>,
    size: usize,
    has_vcl: bool,
    oversized: bool,
}

/// The raw H.264 input stage: Annex B bytes in, [`MediaEvent`]s out.
///
/// - Splits NAL units ([`NalSplitter`]) and assembles access units (H.264 7.4.1.2.3; a slice with
///   `first_mb_in_slice == 0` starts a new picture).
/// - Tracks SPS and PPS by id; emits [`MediaEvent::Video`] before the first frame and whenever the
///   set of parameter sets changes. Access units before the first SPS, PPS and IDR are dropped with
///   one warning.
/// - Emits [`MediaEvent::Frame`] in AVCC form (4-byte lengths), AUDs removed, everything else kept
///   byte-exact and in order.
/// - Timestamps: frame duration from the override, else the SPS VUI timing info, else 25 fps, in
///   exact rational 90 kHz arithmetic. DTS = decode index × duration. PTS from the picture order
///   count (types 0, 1 and 2): display index = decode index of the last IDR (or MMCO 5 picture) +
///   (POC − its POC) / 2, PTS = (display index + reorder delay) × duration, never below DTS. The
///   reorder delay is VUI `max_num_reorder_frames`, else 0 for POC type 2, else
///   `max_dec_frame_buffering`, else 2. For POC type 2, output order is decoding order
///   (8.2.1.3), so the display index is the decode index.
///
/// Known limits: field pictures (PAFF) count as one frame each; arbitrary slice order is not
/// supported (`first_mb_in_slice == 0` starts a picture).
pub struct AnnexBReader {
    splitter: NalSplitter,
    nals: Vec<Nal>,
    au: Au,
    fps_override: Option<(u32, u32)>,
    ctx: Context,
    sps_raw: Vec<Option<Bytes>>,
    pps_raw: Vec<Option<Bytes>>,
    /// A parameter set changed since `config` was built.
    ps_changed: bool,
    config: Option<VideoConfig>,
    started: bool,
    warned_waiting: bool,
    decode_index: i64,
    clock: Option<Clock>,
    poc: PocState,
    anchor_index: i64,
    anchor_poc: i64,
}

impl AnnexBReader {
    /// `fps_override`: frame rate (numerator, denominator) to time the stream with, overriding the
    /// SPS.
    pub fn new(fps_override: Option<(u32, u32)>) -> Self {
        AnnexBReader {
            splitter: NalSplitter::new(),
            nals: Vec::new(),
            au: Au::default(),
            fps_override: fps_override.filter(|&(n, d)| n > 0 && d > 0),
            ctx: Context::new(),
            sps_raw: vec![None; 32],
            pps_raw: vec![None; 256],
            ps_changed: true,
            config: None,
            started: false,
            warned_waiting: false,
            decode_index: 0,
            clock: None,
            poc: PocState::default(),
            anchor_index: 0,
            anchor_poc: 0,
        }
    }

    /// Feeds Annex B bytes; appends the events that are now complete.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        self.input_buffer(data.len()).extend_from_slice(data);
        self.push_buffered(out, warnings);
    }

    /// The NAL splitter's own buffer, for input read straight into it
    /// ([`NalSplitter::input_buffer`]): append, then call [`Self::push_buffered`].
    pub fn input_buffer(&mut self, want: usize) -> &mut bytes::BytesMut {
        self.splitter.input_buffer(want)
    }

    /// [`Self::push`] of what was appended to [`Self::input_buffer`].
    pub fn push_buffered(&mut self, out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        let mut nals = std::mem::take(&mut self.nals);
        self.splitter.split_buffered(&mut nals, warnings);
        for nal in nals.drain(..) {
            self.nal(nal, out, warnings);
        }
        self.nals = nals;
    }

    /// Ends the stream: emits the last access unit.
    pub fn finish(&mut self, out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        let mut nals = std::mem::take(&mut self.nals);
        self.splitter.finish(&mut nals, warnings);
        for nal in nals.drain(..) {
            self.nal(nal, out, warnings);
        }
        self.nals = nals;
        let au = std::mem::take(&mut self.au);
        if au.has_vcl {
            self.access_unit(au, out, warnings);
        } else if let Some(first) = au.nals.first() {
            warnings.push(Diag::new(
                first.offset,
                format!(
                    "expected a picture after {} nal units at the end of the stream, found none; dropped",
                    au.nals.len()
                ),
            ));
        }
    }

    fn nal(&mut self, nal: Nal, out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        if nal.data.first().is_some_and(|b| b & 0x80 != 0) {
            warnings.push(Diag::new(
                nal.offset,
                format!(
                    "expected a NAL unit header, found forbidden_zero_bit set; {} bytes of garbage skipped",
                    nal.data.len()
                ),
            ));
            return;
        }
        let t = nal_type(&nal.data);
        let starts_au = match t {
            t if super::opens_au(t) => self.au.has_vcl,
            1 | 5 => self.au.has_vcl && first_mb_in_slice(&nal.data) == Some(0),
            _ => false,
        };
        if starts_au {
            let au = std::mem::take(&mut self.au);
            self.access_unit(au, out, warnings);
        }
        if matches!(t, 1 | 5) {
            self.au.has_vcl = true;
        }
        if self.au.oversized {
            return;
        }
        self.au.size += nal.data.len();
        if self.au.size > MAX_AU_SIZE {
            warnings.push(Diag::new(
                nal.offset,
                format!("expected an access unit of at most {MAX_AU_SIZE} bytes, found a larger one; dropped"),
            ));
            self.au.oversized = true;
            self.au.nals.clear();
            return;
        }
        self.au.nals.push(nal);
    }

    fn sps_nal(&mut self, nal: &Nal, warnings: &mut Vec<Diag>) {
        match parse_sps(&nal.data) {
            Ok(sps) => {
                let id = usize::from(sps.id().id());
                if let Some(slot) = self.sps_raw.get_mut(id) {
                    if slot.as_ref() != Some(&nal.data) {
                        *slot = Some(nal.data.clone());
                        self.ps_changed = true;
                    }
                }
                self.ctx.put_seq_param_set(sps);
            }
            Err(e) => warnings.push(Diag::new(nal.offset, format!("{e}; ignored"))),
        }
    }

    fn pps_nal(&mut self, nal: &Nal, warnings: &mut Vec<Diag>) {
        let parsed = decode_nal(&nal.data)
            .map_err(|e| format!("bad pps nal unit: {e}"))
            .and_then(|rbsp| {
                PicParameterSet::from_bits(&self.ctx, BitReader::new(&rbsp[..]))
                    .map_err(|e| format!("bad pps: {e:?}"))
            });
        match parsed {
            Ok(pps) => {
                let id = usize::from(pps.pic_parameter_set_id.id());
                if let Some(slot) = self.pps_raw.get_mut(id) {
                    if slot.as_ref() != Some(&nal.data) {
                        *slot = Some(nal.data.clone());
                        self.ps_changed = true;
                    }
                }
                self.ctx.put_pic_param_set(pps);
            }
            Err(e) => warnings.push(Diag::new(nal.offset, format!("{e}; ignored"))),
        }
    }

    /// Parses the first slice header of an access unit; an error is located at the NAL unit.
    fn slice(&self, nal: &Nal) -> Result<(SliceInfo, SeqParameterSet), Diag> {
        let bad = |m: String| Diag::new(nal.offset, m);
        let header = NalHeader::new(nal.data.first().copied().unwrap_or(0))
            .map_err(|e| bad(format!("bad nal header: {e:?}")))?;
        // The header is at the start: unescape a prefix, not the whole slice.
        let prefix = &nal.data[..nal.data.len().min(SLICE_HEADER_PREFIX)];
        let rbsp = decode_nal(prefix)
            .or_else(|_| decode_nal(&nal.data))
            .map_err(|e| bad(format!("bad slice nal unit: {e}")))?;
        let mut r = BitReader::new(&rbsp[..]);
        let (h, sps, _pps) = SliceHeader::from_bits(&self.ctx, &mut r, header, None)
            .map_err(|e| bad(format!("bad slice header: {e:?}")))?;
        let info = SliceInfo::from_header(
            &h,
            nal_type(&nal.data) == nal_types::IDR,
            header.nal_ref_idc(),
        );
        Ok((info, sps.clone()))
    }

    fn current_config(&self) -> Option<Result<VideoConfig, H264Error>> {
        if !self.ps_changed {
            if let Some(c) = &self.config {
                return Some(Ok(c.clone()));
            }
        }
        let sps: Vec<Bytes> = self.sps_raw.iter().flatten().cloned().collect();
        let pps: Vec<Bytes> = self.pps_raw.iter().flatten().cloned().collect();
        if sps.is_empty() || pps.is_empty() {
            return None;
        }
        if let Some(c) = &self.config {
            if c.sps == sps && c.pps == pps {
                return Some(Ok(c.clone()));
            }
        }
        Some(video_config(sps, pps))
    }

    fn access_unit(&mut self, au: Au, out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        let Some(first) = au.nals.first() else {
            return;
        };
        let au_offset = first.offset;
        let mut slice = None;
        let mut keyframe = false;
        let mut size = 0usize;
        for nal in &au.nals {
            match nal_type(&nal.data) {
                nal_types::SPS => self.sps_nal(nal, warnings),
                nal_types::PPS => self.pps_nal(nal, warnings),
                t @ (nal_types::SLICE | nal_types::IDR) => {
                    keyframe |= t == nal_types::IDR;
                    if slice.is_none() {
                        slice = Some(self.slice(nal));
                    }
                }
                _ => {}
            }
            if nal_type(&nal.data) != nal_types::AUD {
                size += 4 + nal.data.len();
            }
        }
        let Some(slice) = slice else {
            return;
        };
        if !self.started {
            let ready = keyframe && slice.is_ok() && self.current_config().is_some();
            if !ready {
                if !self.warned_waiting {
                    self.warned_waiting = true;
                    warnings.push(Diag::new(
                        au_offset,
                        "expected sps, pps and an idr picture first, found other pictures; dropping them until then",
                    ));
                }
                return;
            }
        }
        let (info, sps) = match slice {
            Ok(s) => s,
            Err(d) => {
                warnings.push(Diag::new(
                    d.offset,
                    format!("{}; access unit dropped", d.message),
                ));
                return;
            }
        };
        match self.current_config() {
            Some(Ok(cfg)) => {
                if self.config.as_ref() != Some(&cfg) {
                    out.push(MediaEvent::Video(cfg.clone()));
                    self.config = Some(cfg);
                }
                self.ps_changed = false;
            }
            Some(Err(e)) => {
                warnings.push(Diag::new(au_offset, format!("{e}; access unit dropped")));
                return;
            }
            None => return,
        }
        self.started = true;

        // Timing.
        let fps = self
            .fps_override
            .or_else(|| sps_frame_rate(&sps))
            .unwrap_or(DEFAULT_FPS);
        let index = self.decode_index;
        let clock = self.clock.get_or_insert(Clock {
            fps,
            base_index: index,
            base_ts: 0,
        });
        clock.set_rate(fps, index);
        let params = PocParams::from_sps(&sps);
        let poc = self.poc.next(&params, &info);
        let display = if params.poc_type == 2 {
            index
        } else {
            if info.idr {
                self.anchor_index = index;
                self.anchor_poc = poc;
            }
            let d = self
                .anchor_index
                .saturating_add(poc.saturating_sub(self.anchor_poc).div_euclid(2));
            if info.mmco5 {
                // Later pictures count from this one, whose order count is now 0-based.
                self.anchor_index = d;
                self.anchor_poc = 0;
            }
            d
        };
        let delay = reorder_delay(&sps, params.poc_type);
        let clock = self.clock.as_ref().cloned().unwrap_or(Clock {
            fps,
            base_index: 0,
            base_ts: 0,
        });
        let dts = clock.ts(index);
        let pts = clock.ts(display.saturating_add(delay)).max(dts);
        self.decode_index = index.saturating_add(1);

        let mut data = BytesMut::with_capacity(size);
        for nal in &au.nals {
            if nal_type(&nal.data) == nal_types::AUD {
                continue;
            }
            data.put_u32(nal.data.len() as u32);
            data.extend_from_slice(&nal.data);
        }
        out.push(MediaEvent::Frame(Frame {
            track: Track::Video,
            codec: Codec::H264,
            dts,
            pts,
            keyframe,
            data: data.freeze(),
        }));
    }
}

fn reorder_delay(sps: &SeqParameterSet, poc_type: u8) -> i64 {
    let restr = sps
        .vui_parameters
        .as_ref()
        .and_then(|v| v.bitstream_restrictions.as_ref());
    if let Some(r) = restr {
        return i64::from(r.max_num_reorder_frames.min(16));
    }
    // max_dec_frame_buffering lives in the same (absent) structure, so the fallback is fixed.
    if poc_type == 2 {
        0
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BF3: &[u8] = include_bytes!("../../../tests/fixtures/codec/testsrc-160x120-bf3.h264");
    const BF0: &[u8] = include_bytes!("../../../tests/fixtures/codec/testsrc-160x120-bf0.h264");

    fn read(chunks: &[&[u8]], fps: Option<(u32, u32)>) -> (Vec<MediaEvent>, Vec<Diag>) {
        let mut r = AnnexBReader::new(fps);
        let mut out = Vec::new();
        let mut w = Vec::new();
        for c in chunks {
            r.push(c, &mut out, &mut w);
        }
        r.finish(&mut out, &mut w);
        (out, w)
    }

    fn frames(ev: &[MediaEvent]) -> Vec<&Frame> {
        ev.iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// PTS − DTS per frame in frame durations, as `ffprobe -show_packets` prints for the MP4 the
    /// fixture came from (see tests/fixtures/codec/README.md).
    const FFPROBE_BF3: [i64; 50] = [
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 1, 1, 2, 2, 2, 3, 1, 2, 2, 2, 2, 2, 2, 2, 4, 1, 1, 2,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    ];

    #[test]
    fn poc_timestamps_match_ffprobe_bf3() {
        let (ev, w) = read(&[BF3], None);
        assert!(w.is_empty(), "{w:?}");
        assert!(matches!(ev[0], MediaEvent::Video(ref c) if c.width == 160 && c.height == 120));
        let f = frames(&ev);
        assert_eq!(f.len(), 50);
        let diffs: Vec<i64> = f.iter().map(|f| f.pts - f.dts).collect();
        let offset = diffs[0] - FFPROBE_BF3[0] * 3600;
        for (i, (d, e)) in diffs.iter().zip(FFPROBE_BF3).enumerate() {
            assert_eq!(*d, e * 3600 + offset, "frame {i}: {diffs:?}");
        }
        for (i, f) in f.iter().enumerate() {
            assert_eq!(f.dts, i as i64 * 3600);
            assert_eq!(f.keyframe, i % 25 == 0, "frame {i}");
        }
        // Presentation times are a permutation of a regular grid.
        let mut pts: Vec<i64> = f.iter().map(|f| f.pts).collect();
        pts.sort();
        for w in pts.windows(2) {
            assert_eq!(w[1] - w[0], 3600);
        }
    }

    #[test]
    fn poc_type2_no_reorder_bf0() {
        let (ev, w) = read(&[BF0], None);
        assert!(w.is_empty(), "{w:?}");
        let f = frames(&ev);
        assert_eq!(f.len(), 50);
        for (i, f) in f.iter().enumerate() {
            assert_eq!(f.dts, i as i64 * 3600);
            assert_eq!(f.pts, f.dts);
        }
    }

    #[test]
    fn frames_are_avcc_of_the_input() {
        let (ev, _) = read(&[BF3], None);
        // Re-joining the frames as Annex B gives back the input NAL units in order.
        let mut nals = Vec::new();
        for f in frames(&ev) {
            for n in super::super::avcc_nals(&f.data, 4) {
                nals.push(n.unwrap().to_vec());
            }
        }
        let mut s = NalSplitter::new();
        let (mut orig, mut w) = (Vec::new(), Vec::new());
        s.push(BF3, &mut orig, &mut w);
        s.finish(&mut orig, &mut w);
        let orig: Vec<Vec<u8>> = orig.iter().map(|n| n.data.to_vec()).collect();
        assert_eq!(nals, orig);
        // Config emitted once, before the first frame, with the fixture's parameter sets.
        let configs: Vec<_> = ev
            .iter()
            .filter(|e| matches!(e, MediaEvent::Video(_)))
            .collect();
        assert_eq!(configs.len(), 1);
    }

    #[test]
    fn chunking_invariance() {
        for input in [BF3, BF0] {
            let whole = read(&[input], None);
            for i in (0..input.len()).step_by(53) {
                let (a, b) = input.split_at(i);
                assert_eq!(read(&[a, b], None), whole, "split at {i}");
            }
            let ones: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(read(&ones, None), whole);
        }
    }

    #[test]
    fn parameter_set_change_emits_new_config() {
        let mut input = BF3.to_vec();
        input.extend_from_slice(BF0);
        let (ev, w) = read(&[&input], None);
        assert!(w.is_empty(), "{w:?}");
        let kinds: Vec<bool> = ev
            .iter()
            .map(|e| matches!(e, MediaEvent::Video(_)))
            .collect();
        let configs: Vec<usize> = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect();
        // Before frame 0 and before frame 50 (the second stream's first IDR).
        assert_eq!(configs, vec![0, 51]);
        let f = frames(&ev);
        assert_eq!(f.len(), 100);
        for (i, f) in f.iter().enumerate() {
            assert_eq!(f.dts, i as i64 * 3600);
        }
        // The second stream has no reordering: PTS = DTS there.
        assert!(f[50..].iter().all(|f| f.pts == f.dts));
    }

    #[test]
    fn fps_override_exact_rational() {
        let (ev, _) = read(&[BF0], Some((30000, 1001)));
        let f = frames(&ev);
        for (i, f) in f.iter().enumerate() {
            assert_eq!(f.dts, (i as i64 * 90000 * 1001) / 30000);
        }
        assert_eq!(f[30].dts, 90090);
    }

    #[test]
    fn leading_frames_dropped_and_aud_removed() {
        // Start in the middle of the first GOP: skip up to the second NAL after the first IDR.
        let mut s = NalSplitter::new();
        let (mut nals, mut w) = (Vec::new(), Vec::new());
        s.push(BF3, &mut nals, &mut w);
        s.finish(&mut nals, &mut w);
        let idr = nals.iter().position(|n| nal_type(&n.data) == 5).unwrap();
        let mut input = Vec::new();
        for n in &nals[idr + 1..] {
            input.extend_from_slice(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01");
            input.extend_from_slice(&n.data);
        }
        let (ev, w) = read(&[&input], None);
        assert_eq!(w.len(), 1, "{w:?}");
        let f = frames(&ev);
        assert_eq!(f.len(), 25);
        assert!(f[0].keyframe);
        assert_eq!(f[0].dts, 0);
        for fr in &f {
            for n in super::super::avcc_nals(&fr.data, 4) {
                assert_ne!(nal_type(n.unwrap()), 9);
            }
        }
    }

    #[test]
    fn garbage_and_truncation_do_not_panic() {
        let mut input = b"garbage".to_vec();
        input.extend_from_slice(&BF3[..BF3.len() / 2]);
        let (ev, w) = read(&[&input], None);
        assert!(!w.is_empty());
        assert!(!frames(&ev).is_empty());
        for cut in (0..BF3.len()).step_by(101) {
            let _ = read(&[&BF3[..cut]], None);
            let mut x = BF3.to_vec();
            x[cut] ^= 0x5a;
            let _ = read(&[&x], None);
        }
    }

    #[test]
    fn random_mutations_chunk_invariant() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..40 {
            let mut input = BF3.to_vec();
            for _ in 0..(rnd() % 20) {
                let i = (rnd() as usize) % input.len();
                input[i] = rnd() as u8;
            }
            let whole = read(&[&input], None);
            let cut = (rnd() as usize) % input.len();
            let (a, b) = input.split_at(cut);
            assert_eq!(read(&[a, b], None), whole, "cut {cut}");
        }
    }

    fn info(idr: bool, nal_ref_idc: u8, frame_num: u32, lsb: u32) -> SliceInfo {
        SliceInfo {
            idr,
            nal_ref_idc,
            frame_num,
            pic_order_cnt_lsb: lsb,
            ..Default::default()
        }
    }

    #[test]
    fn poc_type0_msb_wrap() {
        let p = PocParams {
            poc_type: 0,
            log2_max_frame_num: 4,
            log2_max_poc_lsb: 4,
            offset_for_non_ref_pic: 0,
            offset_for_top_to_bottom_field: 0,
            offsets_for_ref_frame: vec![],
        };
        let mut st = PocState::default();
        let mut got = Vec::new();
        got.push(st.next(&p, &info(true, 1, 0, 0)));
        for k in 1..12u32 {
            got.push(st.next(&p, &info(false, 1, k, (2 * k) % 16)));
        }
        assert_eq!(got, (0..12).map(|k| 2 * k).collect::<Vec<i64>>());
        // Reset at IDR.
        assert_eq!(st.next(&p, &info(true, 1, 0, 0)), 0);
    }

    #[test]
    fn poc_type1_and_type2() {
        // Type 1 as x264-style I P B B: cycle of one ref frame with offset 2 ... here offsets [4],
        // non-ref offset -2: ref pictures 0, 4, 8..., non-ref in between at 2, 6.
        let p = PocParams {
            poc_type: 1,
            log2_max_frame_num: 4,
            log2_max_poc_lsb: 4,
            offset_for_non_ref_pic: -2,
            offset_for_top_to_bottom_field: 0,
            offsets_for_ref_frame: vec![4],
        };
        let mut st = PocState::default();
        let seq = [
            (true, 1, 0),
            (false, 1, 1),
            (false, 0, 2),
            (false, 1, 2),
            (false, 0, 3),
        ];
        let got: Vec<i64> = seq
            .iter()
            .map(|&(idr, r, f)| st.next(&p, &info(idr, r, f, 0)))
            .collect();
        assert_eq!(got, vec![0, 4, 2, 8, 6]);

        let p2 = PocParams {
            poc_type: 2,
            ..p.clone()
        };
        let mut st = PocState::default();
        let mut got = Vec::new();
        got.push(st.next(&p2, &info(true, 1, 0, 0)));
        for k in 1..20u32 {
            got.push(st.next(&p2, &info(false, 1, k % 16, 0)));
        }
        assert_eq!(got, (0..20).map(|k| 2 * k).collect::<Vec<i64>>());
        // A non-reference picture sits one below the next reference picture.
        assert_eq!(st.next(&p2, &info(false, 0, 4, 0)), 2 * (16 + 4) - 1);
    }
}
