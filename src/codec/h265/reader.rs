//! Raw H.265 (Annex B) input: access-unit assembly, parameter-set tracking, the join on an IRAP
//! picture and timestamps from picture order count.

use bytes::{BufMut, Bytes, BytesMut};

use super::ps::{first_slice_in_pic, slice_header, slice_pps_id};
use super::{
    is_irap, is_leading, is_rasl, is_sub_layer_non_ref, is_vcl, nal_type, nal_types, parse_pps,
    parse_sps, temporal_id, video_config, Pps, Sps,
};
use crate::codec::h264::{Clock, Nal, NalSplitter, DEFAULT_FPS};
use crate::error::Diag;
use crate::media::{Codec, Frame, MediaEvent, Track, VideoConfig};

/// Largest access unit [`AnnexBReader`] assembles (sum of its NAL units); larger ones are dropped
/// with a warning.
pub const MAX_AU_SIZE: usize = 32 * 1024 * 1024;

/// Most pictures held at the start of a coded video sequence (an IRAP picture and its leading
/// pictures, which a conforming stream keeps below the 16-picture DPB): past it they are stamped
/// with what is known, so memory stays bounded.
const MAX_HELD: usize = 32;

#[derive(Debug, Default)]
struct Au {
    nals: Vec<Nal>,
    size: usize,
    has_vcl: bool,
    oversized: bool,
}

/// A picture held back until its display position is known.
#[derive(Debug)]
struct Held {
    dts: i64,
    poc: i64,
    keyframe: bool,
    data: Bytes,
}

/// The raw H.265 input stage: Annex B bytes in, [`MediaEvent`]s out.
///
/// - Splits NAL units ([`NalSplitter`]) and assembles access units (H.265 7.4.2.4.4: an AUD, VPS,
///   SPS, PPS or prefix SEI after a picture, or a slice segment with
///   `first_slice_segment_in_pic_flag`, starts the next one).
/// - Tracks VPS, SPS and PPS by id; emits [`MediaEvent::Video`] before the first frame and whenever
///   the set of parameter sets changes. Access units before the first VPS, SPS, PPS and IRAP
///   picture are dropped with one warning.
/// - The join: when the stream starts on a CRA (or BLA) picture, or after an end of sequence, its
///   RASL pictures reference pictures that are not there; they are dropped (one warning per join).
///   RADL pictures are kept.
/// - Emits [`MediaEvent::Frame`] with 4-byte NAL lengths, AUDs removed, everything else kept
///   byte-exact and in order. IRAP pictures are keyframes.
/// - Timestamps: frame duration from the override, else the SPS VUI timing info, else 25 fps, in
///   exact rational 90 kHz arithmetic. DTS = decode index × duration. PTS from the picture order
///   count (8.3.1): display index = decode index of the picture that restarted the count (an IRAP
///   picture with NoRaslOutputFlag) + POC − the lowest POC among that picture and its leading
///   pictures, PTS = (display index + `sps_max_num_reorder_pics`) × duration, never below DTS.
///   The IRAP picture and its leading pictures are held until the next trailing picture, which
///   is when that lowest POC is known (at most a reorder depth of pictures).
///
/// Known limit: display order assumes that picture order counts step by 1 (as x265, ffmpeg and
/// hardware encoders write them); other steps give correct decode order and PTS ≥ DTS, but
/// stretched presentation times.
pub struct AnnexBReader {
    splitter: NalSplitter,
    nals: Vec<Nal>,
    au: Au,
    fps_override: Option<(u32, u32)>,
    vps_raw: Vec<Option<Bytes>>,
    sps_raw: Vec<Option<Bytes>>,
    pps_raw: Vec<Option<Bytes>>,
    sps: Vec<Option<Sps>>,
    pps: Vec<Option<Pps>>,
    ps_changed: bool,
    config: Option<VideoConfig>,
    started: bool,
    warned_waiting: bool,
    /// The next picture starts a coded video sequence (after an end of sequence NAL unit).
    after_eos: bool,
    /// RASL pictures of the IRAP picture the stream joined at are being dropped: how many so far,
    /// and where the first one was.
    skipping_rasl: Option<(u64, u64)>,
    decode_index: i64,
    clock: Option<Clock>,
    /// POC of the previous TemporalId-0 picture that is not RASL, RADL or sub-layer non-reference.
    prev_tid0_poc: i64,
    anchor_index: i64,
    anchor_poc: i64,
    /// Pictures of a new coded video sequence: the IRAP picture and its leading pictures, with the
    /// decode index of the IRAP picture.
    held: Vec<Held>,
    held_index: i64,
    delay: i64,
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
            vps_raw: vec![None; 16],
            sps_raw: vec![None; 16],
            pps_raw: vec![None; 64],
            sps: vec![None; 16],
            pps: vec![None; 64],
            ps_changed: true,
            config: None,
            started: false,
            warned_waiting: false,
            after_eos: false,
            skipping_rasl: None,
            decode_index: 0,
            clock: None,
            prev_tid0_poc: 0,
            anchor_index: 0,
            anchor_poc: 0,
            held: Vec::new(),
            held_index: 0,
            delay: 0,
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

    /// Ends the stream: emits the last access unit and any held pictures.
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
        self.release_held(out);
        self.rasl_report(warnings);
    }

    fn nal(&mut self, nal: Nal, out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        if nal.data.len() < 2 || nal.data[0] & 0x80 != 0 {
            warnings.push(Diag::new(
                nal.offset,
                format!(
                    "expected an h.265 nal unit header, found {} bytes with forbidden_zero_bit set or too short; skipped",
                    nal.data.len()
                ),
            ));
            return;
        }
        let t = nal_type(&nal.data);
        // Only the base layer (nuh_layer_id 0) decides access-unit boundaries.
        let base_layer = (nal.data[0] & 1) == 0 && nal.data[1] >> 3 == 0;
        let starts_au = base_layer
            && match t {
                t if super::opens_au(t) => self.au.has_vcl,
                0..=31 => self.au.has_vcl && first_slice_in_pic(&nal.data) == Some(true),
                _ => false,
            };
        if starts_au {
            let au = std::mem::take(&mut self.au);
            self.access_unit(au, out, warnings);
        }
        if is_vcl(t) {
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

    fn store(slot: Option<&mut Option<Bytes>>, nal: &Nal, changed: &mut bool) {
        if let Some(slot) = slot {
            if slot.as_ref() != Some(&nal.data) {
                *slot = Some(nal.data.clone());
                *changed = true;
            }
        }
    }

    fn parameter_set(&mut self, nal: &Nal, warnings: &mut Vec<Diag>) {
        match nal_type(&nal.data) {
            nal_types::VPS => {
                let id = nal.data.get(2).map_or(0, |b| usize::from(b >> 4));
                Self::store(self.vps_raw.get_mut(id), nal, &mut self.ps_changed);
            }
            nal_types::SPS => match parse_sps(&nal.data) {
                Ok(s) => {
                    let id = usize::from(s.id);
                    Self::store(self.sps_raw.get_mut(id), nal, &mut self.ps_changed);
                    if let Some(slot) = self.sps.get_mut(id) {
                        *slot = Some(s);
                    }
                }
                Err(e) => warnings.push(Diag::new(nal.offset, format!("{e}; ignored"))),
            },
            nal_types::PPS => match parse_pps(&nal.data) {
                Ok(p) => {
                    let id = usize::from(p.id);
                    Self::store(self.pps_raw.get_mut(id), nal, &mut self.ps_changed);
                    if let Some(slot) = self.pps.get_mut(id) {
                        *slot = Some(p);
                    }
                }
                Err(e) => warnings.push(Diag::new(nal.offset, format!("{e}; ignored"))),
            },
            _ => {}
        }
    }

    fn current_config(&self) -> Option<Result<VideoConfig, super::H265Error>> {
        if !self.ps_changed {
            if let Some(c) = &self.config {
                return Some(Ok(c.clone()));
            }
        }
        let list = |v: &[Option<Bytes>]| v.iter().flatten().cloned().collect::<Vec<Bytes>>();
        let (vps, sps, pps) = (
            list(&self.vps_raw),
            list(&self.sps_raw),
            list(&self.pps_raw),
        );
        if vps.is_empty() || sps.is_empty() || pps.is_empty() {
            return None;
        }
        if let Some(c) = &self.config {
            if c.vps == vps && c.sps == sps && c.pps == pps {
                return Some(Ok(c.clone()));
            }
        }
        Some(video_config(vps, sps, pps))
    }

    /// The slice header of a picture's first slice segment, with its SPS.
    fn slice(&self, nal: &Nal) -> Result<(u32, Sps), Diag> {
        let bad = |m: String| Diag::new(nal.offset, m);
        let pps_id = slice_pps_id(&nal.data).map_err(bad)?;
        let pps = self
            .pps
            .get(usize::from(pps_id))
            .and_then(Option::as_ref)
            .ok_or_else(|| bad(format!("h.265 slice refers to pps {pps_id}, not received")))?;
        let sps = self
            .sps
            .get(usize::from(pps.sps_id))
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                bad(format!(
                    "h.265 pps {pps_id} refers to sps {}, not received",
                    pps.sps_id
                ))
            })?;
        let h = slice_header(&nal.data, pps, sps).map_err(bad)?;
        Ok((h.poc_lsb, sps.clone()))
    }

    fn rasl_report(&mut self, warnings: &mut Vec<Diag>) {
        if let Some((n, at)) = self.skipping_rasl.take() {
            if n > 0 {
                warnings.push(Diag::new(
                    at,
                    format!("dropped {n} RASL pictures: they reference pictures from before the CRA picture the stream joins at"),
                ));
            }
        }
    }

    fn access_unit(&mut self, au: Au, out: &mut Vec<MediaEvent>, warnings: &mut Vec<Diag>) {
        let Some(first) = au.nals.first() else {
            return;
        };
        let au_offset = first.offset;
        let mut picture = None;
        let mut eos = false;
        let mut size = 0usize;
        for nal in &au.nals {
            let t = nal_type(&nal.data);
            match t {
                nal_types::VPS | nal_types::SPS | nal_types::PPS => {
                    self.parameter_set(nal, warnings)
                }
                nal_types::EOS => eos = true,
                t if is_vcl(t) && picture.is_none() => picture = Some((t, nal)),
                _ => {}
            }
            if t != nal_types::AUD {
                size += 4 + nal.data.len();
            }
        }
        let Some((t, vcl)) = picture else {
            return;
        };
        let slice = self.slice(vcl);
        let irap = is_irap(t);
        if !self.started {
            let ready = irap && slice.is_ok() && self.current_config().is_some();
            if !ready {
                if !self.warned_waiting {
                    self.warned_waiting = true;
                    warnings.push(Diag::new(
                        au_offset,
                        "expected vps, sps, pps and an irap picture first, found other pictures; dropping them until then",
                    ));
                }
                return;
            }
        }
        // NoRaslOutputFlag (8.1.3): a new coded video sequence starts here.
        let new_cvs = irap && (!self.started || self.after_eos || t != nal_types::CRA);
        if irap {
            self.rasl_report(warnings);
            if new_cvs && (t == nal_types::CRA || t == nal_types::BLA_W_LP) {
                self.skipping_rasl = Some((0, 0));
            }
        } else if is_rasl(t) {
            if let Some((n, at)) = &mut self.skipping_rasl {
                if *n == 0 {
                    *at = au_offset;
                }
                *n += 1;
                self.after_eos |= eos;
                return;
            }
        } else if !is_leading(t) {
            self.rasl_report(warnings);
        }
        let (poc_lsb, sps) = match slice {
            Ok(s) => s,
            Err(d) => {
                warnings.push(Diag::new(
                    d.offset,
                    format!("{}; access unit dropped", d.message),
                ));
                return;
            }
        };
        // Pictures held for a new sequence are complete once a trailing picture or the next IRAP
        // picture arrives.
        if !self.held.is_empty() && !is_leading(t) {
            self.release_held(out);
        }
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
        self.after_eos = eos;

        // Picture order count (8.3.1).
        let max_lsb = 1i64 << sps.log2_max_poc_lsb;
        let lsb = i64::from(poc_lsb);
        let msb = if new_cvs {
            0
        } else {
            let prev_lsb = self.prev_tid0_poc.rem_euclid(max_lsb);
            let prev_msb = self.prev_tid0_poc - prev_lsb;
            if lsb < prev_lsb && prev_lsb - lsb >= max_lsb / 2 {
                prev_msb.saturating_add(max_lsb)
            } else if lsb > prev_lsb && lsb - prev_lsb > max_lsb / 2 {
                prev_msb.saturating_sub(max_lsb)
            } else {
                prev_msb
            }
        };
        let poc = msb.saturating_add(lsb);
        if temporal_id(&vcl.data) == 0 && !is_leading(t) && !is_sub_layer_non_ref(t) {
            self.prev_tid0_poc = poc;
        }

        // Timing.
        let fps = self.fps_override.or(sps.frame_rate).unwrap_or(DEFAULT_FPS);
        let index = self.decode_index;
        let clock = self.clock.get_or_insert(Clock {
            fps,
            base_index: index,
            base_ts: 0,
        });
        clock.set_rate(fps, index);
        let dts = clock.ts(index);
        self.delay = i64::from(sps.max_num_reorder);
        self.decode_index = index.saturating_add(1);

        let mut data = BytesMut::with_capacity(size);
        for nal in &au.nals {
            if nal_type(&nal.data) == nal_types::AUD {
                continue;
            }
            data.put_u32(nal.data.len() as u32);
            data.extend_from_slice(&nal.data);
        }
        let data = data.freeze();
        if new_cvs {
            self.held_index = index;
        }
        if new_cvs || !self.held.is_empty() {
            self.held.push(Held {
                dts,
                poc,
                keyframe: irap,
                data,
            });
            if self.held.len() >= MAX_HELD {
                self.release_held(out);
            }
            return;
        }
        let display = self
            .anchor_index
            .saturating_add(poc.saturating_sub(self.anchor_poc));
        self.emit(dts, display, irap, data, out);
    }

    fn emit(&self, dts: i64, display: i64, keyframe: bool, data: Bytes, out: &mut Vec<MediaEvent>) {
        let pts = self
            .clock
            .as_ref()
            .map_or(dts, |c| c.ts(display.saturating_add(self.delay)).max(dts));
        out.push(MediaEvent::Frame(Frame {
            track: Track::Video,
            codec: Codec::H265,
            dts,
            pts,
            keyframe,
            data,
        }));
    }

    /// Stamps and emits the pictures held at the start of a coded video sequence: the first of
    /// them in display order takes the display index of the IRAP picture's decode index.
    fn release_held(&mut self, out: &mut Vec<MediaEvent>) {
        if self.held.is_empty() {
            return;
        }
        let min_poc = self.held.iter().map(|h| h.poc).min().unwrap_or(0);
        self.anchor_index = self.held_index;
        self.anchor_poc = min_poc;
        for h in std::mem::take(&mut self.held) {
            let display = self
                .anchor_index
                .saturating_add(h.poc.saturating_sub(self.anchor_poc));
            self.emit(h.dts, display, h.keyframe, h.data, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::BF2;
    use super::*;
    use crate::codec::h264::avcc_nals;

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

    fn split(input: &[u8]) -> Vec<Nal> {
        let mut s = NalSplitter::new();
        let (mut nals, mut w) = (Vec::new(), Vec::new());
        s.push(input, &mut nals, &mut w);
        s.finish(&mut nals, &mut w);
        nals
    }

    /// PTS − DTS per frame in frame durations, as `ffprobe -show_packets` prints for the MP4 the
    /// fixture came from (see tests/fixtures/codec/README.md).
    const FFPROBE_BF2: [i64; 50] = [
        2, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2,
        0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 4, 2, 0, 2,
    ];

    #[test]
    fn poc_timestamps_match_ffprobe_bf2() {
        let (ev, w) = read(&[BF2], None);
        assert!(w.is_empty(), "{w:?}");
        assert!(matches!(ev[0], MediaEvent::Video(ref c) if c.width == 160 && c.height == 120));
        let f = frames(&ev);
        assert_eq!(f.len(), 50);
        let diffs: Vec<i64> = f.iter().map(|f| (f.pts - f.dts) / 3600).collect();
        assert_eq!(diffs, FFPROBE_BF2);
        for (i, f) in f.iter().enumerate() {
            assert_eq!(f.dts, i as i64 * 3600);
            assert_eq!(f.codec, Codec::H265);
            // IDR_N_LP at 0, CRA pictures at decode index 22 and 46 (display 24 and 48), as
            // ffprobe flags the MP4's packets.
            assert_eq!(f.keyframe, [0, 22, 46].contains(&i), "frame {i}");
        }
        let mut pts: Vec<i64> = f.iter().map(|f| f.pts).collect();
        pts.sort();
        for w in pts.windows(2) {
            assert_eq!(w[1] - w[0], 3600);
        }
    }

    #[test]
    fn frames_are_the_input_without_auds() {
        let (ev, _) = read(&[BF2], None);
        let mut got = Vec::new();
        for f in frames(&ev) {
            for n in avcc_nals(&f.data, 4) {
                got.push(n.unwrap().to_vec());
            }
        }
        let orig: Vec<Vec<u8>> = split(BF2)
            .iter()
            .filter(|n| nal_type(&n.data) != nal_types::AUD)
            .map(|n| n.data.to_vec())
            .collect();
        assert_eq!(got, orig);
        let configs = ev
            .iter()
            .filter(|e| matches!(e, MediaEvent::Video(_)))
            .count();
        assert_eq!(configs, 1);
    }

    #[test]
    fn chunking_invariance() {
        let whole = read(&[BF2], None);
        for i in (0..BF2.len()).step_by(41) {
            let (a, b) = BF2.split_at(i);
            assert_eq!(read(&[a, b], None), whole, "split at {i}");
        }
        let ones: Vec<&[u8]> = BF2.chunks(1).collect();
        assert_eq!(read(&ones, None), whole);
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut cuts = Vec::new();
        let mut rest = BF2;
        while !rest.is_empty() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1 + (x as usize) % 700;
            let (a, b) = rest.split_at(n.min(rest.len()));
            cuts.push(a);
            rest = b;
        }
        assert_eq!(read(&cuts, None), whole);
    }

    /// Starts at the second IRAP picture, a CRA with two RASL pictures after it.
    fn cra_start() -> Vec<u8> {
        let nals = split(BF2);
        let vps = nals
            .iter()
            .enumerate()
            .filter(|(_, n)| nal_type(&n.data) == nal_types::VPS)
            .map(|(i, _)| i)
            .nth(1)
            .unwrap();
        let mut input = Vec::new();
        for n in &nals[vps..] {
            input.extend_from_slice(b"\x00\x00\x00\x01");
            input.extend_from_slice(&n.data);
        }
        input
    }

    #[test]
    fn cra_start_drops_its_rasl_pictures() {
        let input = cra_start();
        let (ev, w) = read(&[&input], None);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("dropped 2 RASL pictures"), "{w:?}");
        let f = frames(&ev);
        // 28 pictures from the CRA on, less its 2 RASL pictures.
        assert_eq!(f.len(), 26);
        assert!(f[0].keyframe);
        assert_eq!(au_type(f[0]), nal_types::CRA);
        let later = f.iter().position(|f| f.keyframe && f.dts > 0).unwrap();
        assert!(f[..later].iter().all(|f| !is_rasl(au_type(f))));
        // Presentation starts at the CRA and is a regular grid.
        assert_eq!(f[0].dts, 0);
        let mut pts: Vec<i64> = f.iter().map(|f| f.pts).collect();
        pts.sort();
        assert_eq!(pts[0], f[0].pts);
        for w in pts.windows(2) {
            assert_eq!(w[1] - w[0], 3600);
        }
        assert!(f.iter().all(|f| f.pts >= f.dts));
        // The later CRA keeps its RASL pictures: they can be decoded there.
        assert!(is_rasl(au_type(f[later + 1])));
        let ones: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(read(&ones, None), (ev, w));
    }

    fn au_type(f: &Frame) -> u8 {
        super::super::au_picture_type(&f.data).unwrap()
    }

    #[test]
    fn leading_pictures_of_an_idr_w_radl_present_first() {
        // Re-type the CRA picture the stream starts with as IDR_W_RADL and its RASL pictures as
        // RADL: the POC of an IDR is 0, so recompute nothing; the RADL pictures (POC below the
        // IRAP's) must be displayed first.
        let input = cra_start();
        let mut nals = split(&input);
        // Keep the CRA-based POC by leaving the CRA a CRA; only turn its RASL pictures into RADL.
        for n in nals.iter_mut() {
            if is_rasl(nal_type(&n.data)) {
                let mut v = n.data.to_vec();
                v[0] = (v[0] & 0x81) | ((nal_type(&n.data) - 2) << 1);
                n.data = Bytes::from(v);
            }
        }
        let mut input = Vec::new();
        for n in &nals {
            input.extend_from_slice(b"\x00\x00\x01");
            input.extend_from_slice(&n.data);
        }
        let (ev, w) = read(&[&input], None);
        assert!(w.is_empty(), "{w:?}");
        let f = frames(&ev);
        assert_eq!(f.len(), 28);
        let mut pts: Vec<i64> = f.iter().map(|f| f.pts).collect();
        pts.sort();
        for w in pts.windows(2) {
            assert_eq!(w[1] - w[0], 3600);
        }
        // The two RADL pictures come before the CRA in presentation.
        assert!(f[1].pts < f[0].pts && f[2].pts < f[0].pts);
        assert!(f.iter().all(|f| f.pts >= f.dts));
    }

    #[test]
    fn garbage_and_mutations_do_not_panic_and_are_chunk_invariant() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for cut in (0..BF2.len()).step_by(97) {
            let _ = read(&[&BF2[..cut]], None);
        }
        for _ in 0..40 {
            let mut input = BF2.to_vec();
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

    /// An IRAP picture followed by nothing but leading pictures does not grow the reader's memory:
    /// past MAX_HELD pictures they are stamped and emitted.
    #[test]
    fn leading_pictures_without_end_are_bounded() {
        let nals = split(&cra_start());
        let mut input = Vec::new();
        let mut leading = None;
        for n in &nals {
            let t = nal_type(&n.data);
            if is_rasl(t) && leading.is_none() {
                // The first RASL picture, re-typed RADL, repeated.
                let mut v = n.data.to_vec();
                v[0] = (v[0] & 0x81) | ((t - 2) << 1);
                leading = Some(v);
                break;
            }
            input.extend_from_slice(b"\x00\x00\x01");
            input.extend_from_slice(&n.data);
        }
        let leading = leading.unwrap();
        let mut r = AnnexBReader::new(None);
        let (mut out, mut w) = (Vec::new(), Vec::new());
        r.push(&input, &mut out, &mut w);
        for _ in 0..200 {
            r.push(b"\x00\x00\x01", &mut out, &mut w);
            r.push(&leading, &mut out, &mut w);
            assert!(r.held.len() < MAX_HELD);
        }
        assert!(frames(&out).len() > 150);
    }

    #[test]
    fn fps_override() {
        let (ev, _) = read(&[BF2], Some((30000, 1001)));
        let f = frames(&ev);
        assert_eq!(f[30].dts, 90090);
    }
}
