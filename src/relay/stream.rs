//! Format detection and keyframe marks: a broadcast's bytes cut into [`Chunk`]s.
//!
//! The relay forwards bytes unchanged; this module only decides where chunks begin and what each
//! one is, so that the GOP cache can keep headers and the last GOP, and a watcher's queue can skip
//! to a keyframe. Concatenating all chunks always gives back the input, byte for byte, whatever the
//! content and however it was cut into pushes.
//!
//! - Detection is [`crate::format::detect()`] (FLV signature, an Annex B start code at byte 0,
//!   three TS sync bytes 188 apart), holding at most [`crate::format::DETECT_LIMIT`] bytes;
//!   anything else is [`StreamFormat::Opaque`] (decided as soon as no TS sync pattern is possible
//!   any more).
//! - FLV: one chunk per tag, including its trailing PreviousTagSize; the 13-byte file header is one
//!   [`HeaderKind::FlvFile`] chunk. onMetaData, AVC/HEVC/Enhanced-FLV video sequence starts and
//!   AAC/Enhanced audio sequence starts are headers; a video keyframe tag (legacy or Enhanced FLV)
//!   is [`Mark::Keyframe`]; an H.265 RASL picture's tag is [`Mark::Rasl`]; in a file whose header
//!   announces no video, every audio frame is a keyframe. A tag over [`MAX_FLV_TAG`] or with an unknown tag type means the stream is not FLV
//!   any more: the rest passes through as Data (never buffered without bound).
//! - MPEG-TS: whole 188-byte packets (runs of Data packets are one chunk); PAT and PMT packets are
//!   headers; the PMT gives the video PID and stream type; the first packet of a video PES is a
//!   keyframe when it has random_access_indicator or its payload shows an IDR/SPS (H.264), an
//!   IRAP/VPS/SPS (HEVC) or a sequence header (MPEG-1/2 video); in a program without video, every
//!   audio PES start is a keyframe. Lost sync: bytes pass as Data until two sync bytes 188 apart.
//! - H.264 and H.265 Annex B: chunks are NAL units (start code included). Parameter sets (SPS and
//!   PPS; VPS, SPS and PPS) are headers (held until complete). The first non-header NAL of a
//!   keyframe's access unit (its AUD or SEI, else its first slice) is the keyframe: an IDR for
//!   H.264, an IRAP picture (IDR, CRA, BLA) for H.265. NALs that open an access unit are held only
//!   until its first slice header shows whether it is a keyframe, so nothing waits for a whole
//!   frame.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::prechunk::RtmpMsg;
use crate::codec::{h264, h265};
use crate::format::detect;
use crate::format::ts::psi::{self, SectionAssembler, SectionPiece};
use crate::media::{StreamFormat, VideoCodec};

/// Largest FLV tag (header, body and PreviousTagSize) the splitter buffers: the 24-bit size field
/// allows 16 MiB.
pub const MAX_FLV_TAG: usize = 11 + 0xFF_FFFF + 4;
/// Largest SPS/PPS (or run of NALs opening an access unit) held back before it passes as Data.
pub const MAX_HELD: usize = 1 << 20;
/// A single header NAL larger than this is not a parameter set: it passes as Data.
pub const MAX_PARAM_SET: usize = 64 * 1024;

const TS: usize = 188;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderKind {
    FlvFile,
    FlvMetadata,
    FlvVideoConfig,
    FlvAudioConfig,
    TsPat,
    TsPmt,
    H264Sps,
    H264Pps,
    H265Vps,
    H265Sps,
    H265Pps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mark {
    Header(HeaderKind),
    Keyframe,
    Data,
    /// An H.265 RASL picture (FLV): it references pictures before its CRA, so a watcher that
    /// started on that CRA cannot decode it. The GOP cache and a queue that started on the
    /// keyframe drop it; a watcher that was there before the keyframe gets it as Data.
    Rasl,
}

#[derive(Clone, Debug)]
pub struct Chunk {
    pub data: Bytes,
    pub mark: Mark,
    /// An FLV tag chunked once as an RTMP message for the channel's RTMP players
    /// ([`super::prechunk`]); made when the first such player is queued the chunk.
    pub rtmp: Option<Arc<RtmpMsg>>,
}

impl Chunk {
    pub fn new(data: impl Into<Bytes>, mark: Mark) -> Self {
        Chunk {
            data: data.into(),
            mark,
            rtmp: None,
        }
    }
}

/// Cuts a broadcast into marked chunks. See the module docs.
pub struct Splitter {
    format: Option<StreamFormat>,
    pending: BytesMut,
    inner: Inner,
}

enum Inner {
    Undecided,
    Opaque,
    Flv(FlvSplit),
    Ts(TsSplit),
    AnnexB(AnnexBSplit),
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

impl Splitter {
    pub fn new() -> Self {
        Splitter {
            format: None,
            pending: BytesMut::new(),
            inner: Inner::Undecided,
        }
    }

    /// The detected format; `None` until decided.
    pub fn format(&self) -> Option<StreamFormat> {
        self.format
    }

    /// True when an FLV stream turned out not to be FLV after all (its rest passes as Data).
    pub fn broken(&self) -> bool {
        matches!(&self.inner, Inner::Flv(f) if f.broken)
    }

    fn start(&mut self, f: StreamFormat) {
        self.format = Some(f);
        self.inner = match f {
            StreamFormat::Opaque => Inner::Opaque,
            StreamFormat::Flv => Inner::Flv(FlvSplit::default()),
            StreamFormat::Ts => Inner::Ts(TsSplit::default()),
            StreamFormat::AnnexB => Inner::AnnexB(AnnexBSplit::new(VideoCodec::H264)),
            StreamFormat::AnnexBH265 => Inner::AnnexB(AnnexBSplit::new(VideoCodec::H265)),
        };
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        if self.format.is_none() {
            self.pending.extend_from_slice(data);
            match detect(&self.pending, false) {
                Some(f) => self.start(f),
                None => return,
            }
            let held = std::mem::take(&mut self.pending);
            self.feed(&held, out);
            return;
        }
        self.feed(data, out);
    }

    /// Decides the format now from what is held (as at the end of the input) without ending the
    /// stream; for a caller that will not wait longer for the first
    /// [`crate::format::DETECT_LIMIT`] bytes.
    pub fn decide(&mut self, out: &mut Vec<Chunk>) {
        if self.format.is_none() {
            let f = detect(&self.pending, true).unwrap_or(StreamFormat::Opaque);
            self.start(f);
            let held = std::mem::take(&mut self.pending);
            self.feed(&held, out);
        }
    }

    /// Ends the stream: everything still held comes out.
    pub fn finish(&mut self, out: &mut Vec<Chunk>) {
        self.decide(out);
        match &mut self.inner {
            Inner::Flv(f) => flush_data(&mut f.buf, out),
            Inner::Ts(t) => {
                t.flush_run(out);
                flush_data(&mut t.buf, out);
            }
            Inner::AnnexB(a) => a.finish(out),
            Inner::Opaque | Inner::Undecided => {}
        }
    }

    fn feed(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        match &mut self.inner {
            Inner::Undecided => {}
            Inner::Opaque => {
                if !data.is_empty() {
                    out.push(Chunk::new(Bytes::copy_from_slice(data), Mark::Data));
                }
            }
            Inner::Flv(f) => f.push(data, out),
            Inner::Ts(t) => t.push(data, out),
            Inner::AnnexB(a) => a.push(data, out),
        }
    }
}

fn flush_data(buf: &mut BytesMut, out: &mut Vec<Chunk>) {
    if !buf.is_empty() {
        out.push(Chunk::new(buf.split().freeze(), Mark::Data));
    }
}

// ---------------------------------------------------------------------------------------------
// FLV

#[derive(Default)]
struct FlvSplit {
    buf: BytesMut,
    /// The file header was read.
    in_tags: bool,
    /// The file header announces no video: audio frames are keyframes.
    audio_only: bool,
    broken: bool,
}

impl FlvSplit {
    fn push(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        if self.broken {
            if !data.is_empty() {
                out.push(Chunk::new(Bytes::copy_from_slice(data), Mark::Data));
            }
            return;
        }
        self.buf.extend_from_slice(data);
        loop {
            let need = match self.next_len() {
                Ok(Some(n)) => n,
                Ok(None) => return,
                Err(()) => {
                    self.broken = true;
                    flush_data(&mut self.buf, out);
                    return;
                }
            };
            if self.buf.len() < need {
                self.buf.reserve(need - self.buf.len());
                return;
            }
            let unit = self.buf.split_to(need).freeze();
            let mark = if self.in_tags {
                flv_tag_mark(&unit, self.audio_only)
            } else {
                self.in_tags = true;
                self.audio_only = unit[4] & 0x01 == 0 && unit[4] & 0x04 != 0;
                Mark::Header(HeaderKind::FlvFile)
            };
            out.push(Chunk::new(unit, mark));
        }
    }

    /// Length of the next unit: `Ok(None)` = not enough bytes to tell; `Err` = not FLV.
    fn next_len(&mut self) -> Result<Option<usize>, ()> {
        let b = &self.buf;
        if self.in_tags && b.len() >= 4 && &b[..3] == b"FLV" && b[3] == 1 {
            // A new file header: a broadcaster that concatenates files.
            self.in_tags = false;
        }
        if !self.in_tags {
            if b.len() < 9 {
                return Ok(None);
            }
            if &b[..3] != b"FLV" {
                return Err(());
            }
            let off = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as usize;
            if !(9..=1024).contains(&off) {
                return Err(());
            }
            return Ok(Some(off + 4));
        }
        if b.len() < 11 {
            return Ok(None);
        }
        // Reserved bits must be zero; types: 8 audio, 9 video, 18 script (the filter bit 0x20 may
        // be set on encrypted tags).
        if b[0] & 0xC0 != 0 || !matches!(b[0] & 0x1F, 8 | 9 | 18) {
            return Err(());
        }
        let size = ((b[1] as usize) << 16) | ((b[2] as usize) << 8) | b[3] as usize;
        let total = 11 + size + 4;
        if total > MAX_FLV_TAG {
            return Err(());
        }
        Ok(Some(total))
    }
}

fn flv_tag_mark(tag: &[u8], audio_only: bool) -> Mark {
    let body = &tag[11..tag.len() - 4];
    if tag[0] & 0x20 != 0 || body.is_empty() {
        return Mark::Data;
    }
    match tag[0] & 0x1F {
        18 => {
            let meta = body.starts_with(b"\x02\x00\x0AonMetaData")
                || body.starts_with(b"\x02\x00\x0D@setDataFrame");
            if meta {
                Mark::Header(HeaderKind::FlvMetadata)
            } else {
                Mark::Data
            }
        }
        9 => {
            let b0 = body[0];
            let frame_type = (b0 >> 4) & 0x07;
            let key = frame_type == 1;
            if b0 & 0x80 != 0 {
                // Enhanced FLV: the low nibble is the packet type.
                let packet_type = match b0 & 0x0F {
                    // Multitrack: the inner packet type is in the next byte's low nibble.
                    6 => body.get(1).map(|b| b & 0x0F).unwrap_or(0xF),
                    p => p,
                };
                match packet_type {
                    0 => Mark::Header(HeaderKind::FlvVideoConfig),
                    1 | 3 if key => Mark::Keyframe,
                    // CodedFrames (a 3-byte composition time first) and CodedFramesX of hvc1.
                    1 | 3 if body.get(1..5) == Some(b"hvc1") => {
                        let at = if packet_type == 1 { 8 } else { 5 };
                        hevc_mark(body.get(at..).unwrap_or_default())
                    }
                    _ => Mark::Data,
                }
            } else if frame_type == 5 {
                Mark::Data
            } else {
                match b0 & 0x0F {
                    // AVC, and HEVC/AV1 in the common pre-Enhanced extensions (codec ids 12, 13).
                    7 | 12 | 13 => match body.get(1) {
                        Some(0) => Mark::Header(HeaderKind::FlvVideoConfig),
                        Some(1) if key => Mark::Keyframe,
                        Some(1) if b0 & 0x0F == 12 => hevc_mark(body.get(5..).unwrap_or_default()),
                        _ => Mark::Data,
                    },
                    _ if key => Mark::Keyframe,
                    _ => Mark::Data,
                }
            }
        }
        8 => {
            let format = body[0] >> 4;
            let config = match format {
                10 => body.get(1) == Some(&0),
                9 => body[0] & 0x0F == 0,
                _ => false,
            };
            if config {
                Mark::Header(HeaderKind::FlvAudioConfig)
            } else if audio_only {
                Mark::Keyframe
            } else {
                Mark::Data
            }
        }
        _ => Mark::Data,
    }
}

/// [`Mark::Rasl`] when the first slice of these length-prefixed H.265 NAL units is a RASL
/// picture's (types 8 and 9), else Data.
fn hevc_mark(mut nals: &[u8]) -> Mark {
    while let [a, b, c, d, rest @ ..] = nals {
        let n = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
        let Some(nal) = rest.get(..n) else { break };
        match nal.first().map(|h| (h >> 1) & 0x3F) {
            Some(t) if h265::is_vcl(t) => {
                return if h265::is_rasl(t) {
                    Mark::Rasl
                } else {
                    Mark::Data
                };
            }
            _ => nals = &rest[n..],
        }
    }
    Mark::Data
}

// ---------------------------------------------------------------------------------------------
// MPEG-TS

#[derive(Default)]
struct TsSplit {
    buf: BytesMut,
    synced: bool,
    /// Bytes at the front of `buf` that are whole Data packets not yet emitted.
    run: usize,
    pat: SectionAssembler,
    pmt: SectionAssembler,
    pmt_pid: Option<u16>,
    video: Option<(u16, u8)>,
    audio_pids: Vec<u16>,
}

const VIDEO_TYPES: &[u8] = &[0x01, 0x02, 0x10, 0x1B, 0x24, 0x42, 0xD1, 0xEA];
const AUDIO_TYPES: &[u8] = &[0x03, 0x04, 0x0F, 0x11, 0x81, 0x87];

impl TsSplit {
    fn flush_run(&mut self, out: &mut Vec<Chunk>) {
        if self.run > 0 {
            out.push(Chunk::new(self.buf.split_to(self.run).freeze(), Mark::Data));
            self.run = 0;
        }
    }

    fn push(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        self.buf.extend_from_slice(data);
        loop {
            if !self.synced {
                // Find a sync byte with another one 188 later; what comes before passes as Data.
                let b = &self.buf[..];
                let mut keep = b.len();
                let mut found = false;
                let mut i = 0;
                while let Some(k) = memchr::memchr(0x47, &b[i..]) {
                    let s = i + k;
                    if s + TS >= b.len() {
                        keep = s;
                        break;
                    }
                    if b[s + TS] == 0x47 {
                        keep = s;
                        found = true;
                        break;
                    }
                    i = s + 1;
                }
                if keep > 0 {
                    out.push(Chunk::new(self.buf.split_to(keep).freeze(), Mark::Data));
                }
                if !found {
                    return;
                }
                self.synced = true;
            }
            while self.buf.len() >= self.run + TS {
                let p = &self.buf[self.run..self.run + TS];
                if p[0] != 0x47 {
                    self.synced = false;
                    break;
                }
                let mark = self.classify(self.run);
                if mark == Mark::Data {
                    self.run += TS;
                } else {
                    self.flush_run(out);
                    out.push(Chunk::new(self.buf.split_to(TS).freeze(), mark));
                }
            }
            if self.synced {
                self.flush_run(out);
                return;
            }
            self.flush_run(out);
        }
    }

    fn classify(&mut self, at: usize) -> Mark {
        let p: [u8; TS] = self.buf[at..at + TS].try_into().expect("188 bytes");
        let pid = (((p[1] & 0x1F) as u16) << 8) | p[2] as u16;
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 0x03;
        let mut off = 4;
        let mut rai = false;
        if afc & 0x02 != 0 {
            let len = p[4] as usize;
            if len > 0 {
                rai = p[5] & 0x40 != 0;
            }
            off = 5 + len;
        }
        let payload: &[u8] = if afc & 0x01 != 0 && off < TS {
            &p[off..]
        } else {
            &[]
        };
        if p[1] & 0x80 != 0 {
            // transport_error_indicator: trust nothing in it.
            return Mark::Data;
        }
        if pid == 0 {
            let mut pmt_pid = None;
            self.pat.feed(payload, pusi, |piece| {
                if let SectionPiece::Section(s) = piece {
                    if let Ok(sec) = psi::parse_long_section(s) {
                        if sec.table_id == psi::TABLE_ID_PAT && sec.current_next {
                            pmt_pid = psi::pat_first_program(sec.body).map(|(_, pid)| pid);
                        }
                    }
                }
            });
            if let Some(pid) = pmt_pid {
                if self.pmt_pid != Some(pid) {
                    self.pmt_pid = Some(pid);
                    self.pmt.reset();
                }
            }
            return Mark::Header(HeaderKind::TsPat);
        }
        if Some(pid) == self.pmt_pid {
            let mut streams = None;
            self.pmt.feed(payload, pusi, |piece| {
                if let SectionPiece::Section(s) = piece {
                    if let Ok(sec) = psi::parse_long_section(s) {
                        if sec.table_id == psi::TABLE_ID_PMT && sec.current_next {
                            streams = psi::parse_pmt(sec.body).ok().map(|(_, s)| s);
                        }
                    }
                }
            });
            if let Some(streams) = streams {
                self.video = streams
                    .iter()
                    .find(|s| VIDEO_TYPES.contains(&s.stream_type))
                    .map(|s| (s.pid, s.stream_type));
                self.audio_pids = streams
                    .iter()
                    .filter(|s| AUDIO_TYPES.contains(&s.stream_type))
                    .map(|s| s.pid)
                    .collect();
            }
            return Mark::Header(HeaderKind::TsPmt);
        }
        if !pusi {
            return Mark::Data;
        }
        match self.video {
            Some((vpid, stream_type)) if vpid == pid => {
                if rai || pes_starts_keyframe(payload, stream_type) {
                    Mark::Keyframe
                } else {
                    Mark::Data
                }
            }
            None if self.audio_pids.contains(&pid) => Mark::Keyframe,
            _ => Mark::Data,
        }
    }
}

/// Does this first payload of a video PES show a random access point?
fn pes_starts_keyframe(payload: &[u8], stream_type: u8) -> bool {
    if payload.len() < 9 || payload[..3] != [0, 0, 1] {
        return false;
    }
    let es_at = 9 + payload[8] as usize;
    let Some(es) = payload.get(es_at..) else {
        return false;
    };
    let mut i = 0;
    while let Some(k) = memchr::memmem::find(&es[i..], &[0, 0, 1]) {
        let h = i + k + 3;
        let Some(&b) = es.get(h) else { break };
        match stream_type {
            0x1B => match b & 0x1F {
                5 | 7 => return true,
                1 => return false,
                _ => {}
            },
            0x24 => match (b >> 1) & 0x3F {
                16..=21 | 32 | 33 => return true,
                0..=9 => return false,
                _ => {}
            },
            0x01 | 0x02 => match b {
                0xB3 | 0xB8 => return true,
                0x00 => return false,
                _ => {}
            },
            _ => return false,
        }
        i = h;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// H.264 and H.265 Annex B

/// Bytes at the end of the buffer kept back while streaming a NAL: they may be the start of the
/// next start code (`00 00 00 01`).
const HOLDBACK: usize = 4;

struct AnnexBSplit {
    codec: VideoCodec,
    /// Unemitted bytes, from the start of the current NAL, or from the middle of one that is
    /// being streamed.
    buf: BytesMut,
    /// Where in `buf` to continue looking for the next start code.
    scan: usize,
    /// The next NAL's boundary may not be before this index (the current NAL's header).
    min_begin: usize,
    cur: Cur,
    /// Complete NALs held until the next slice shows whether an IDR access unit starts, with their
    /// NAL types.
    held: Vec<(Chunk, u8)>,
    held_bytes: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Cur {
    /// Before the first start code: Data.
    #[default]
    Pre,
    /// A NAL whose type is not known yet; `hdr` = index of its header byte in `buf`.
    Start { hdr: usize },
    /// A non-VCL NAL collected whole, to be held.
    Collect { ty: u8 },
    /// A NAL streamed out as it arrives; `first` = the mark of its first piece, while nothing of
    /// it has been emitted.
    Stream { first: Option<Mark> },
}

fn find_start_code(b: &[u8], from: usize) -> Option<usize> {
    if from >= b.len() {
        return None;
    }
    memchr::memmem::find(&b[from..], &[0, 0, 1]).map(|k| from + k)
}

/// Does this chunk of an Annex B stream (as [`Splitter`] cuts it) begin an access unit? True for a
/// NAL that opens one (AUD, parameter sets, SEI, ...) and for the first slice of a picture.
pub fn annexb_starts_au(chunk: &[u8], codec: VideoCodec) -> bool {
    let h = if chunk.starts_with(&[0, 0, 0, 1]) {
        4
    } else if chunk.starts_with(&[0, 0, 1]) {
        3
    } else {
        return false;
    };
    match nal_kind(codec, &chunk[h..]) {
        Some(NalKind::Other(ty)) => opens_au(codec, ty),
        Some(NalKind::Slice { first_bit, .. }) => first_bit,
        None => false,
    }
}

/// What the splitter needs to know of a NAL unit from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NalKind {
    /// A slice: whether it is a keyframe's (H.264 IDR, H.265 IRAP picture), and the first bit of
    /// its header (the first slice of a picture: H.264 `first_mb_in_slice` 0 as ue(v) "1", H.265
    /// `first_slice_segment_in_pic_flag`).
    Slice { key: bool, first_bit: bool },
    /// Any other NAL unit, by type.
    Other(u8),
}

/// Header bytes of a NAL unit.
fn header_len(codec: VideoCodec) -> usize {
    match codec {
        VideoCodec::H264 => 1,
        VideoCodec::H265 => 2,
    }
}

/// The kind of the NAL unit starting at `nal` (its header first); `None` until enough bytes are
/// there (the header and, for a slice, the byte after it).
fn nal_kind(codec: VideoCodec, nal: &[u8]) -> Option<NalKind> {
    let (ty, slice, key) = match codec {
        VideoCodec::H264 => {
            let ty = nal.first()? & 0x1F;
            (ty, (1..=5).contains(&ty), ty == h264::nal_types::IDR)
        }
        VideoCodec::H265 => {
            let ty = (nal.first()? >> 1) & 0x3F;
            nal.get(1)?;
            // IRAP pictures but the reserved types 22 and 23.
            (ty, h265::is_vcl(ty), (16..=21).contains(&ty))
        }
    };
    if !slice {
        return Some(NalKind::Other(ty));
    }
    let first = nal.get(header_len(codec))?;
    Some(NalKind::Slice {
        key,
        first_bit: first & 0x80 != 0,
    })
}

fn opens_au(codec: VideoCodec, ty: u8) -> bool {
    match codec {
        VideoCodec::H264 => h264::opens_au(ty),
        VideoCodec::H265 => h265::opens_au(ty),
    }
}

/// The header kind of a parameter set NAL unit type.
fn param_set(codec: VideoCodec, ty: u8) -> Option<HeaderKind> {
    match (codec, ty) {
        (VideoCodec::H264, 7) => Some(HeaderKind::H264Sps),
        (VideoCodec::H264, 8) => Some(HeaderKind::H264Pps),
        (VideoCodec::H265, 32) => Some(HeaderKind::H265Vps),
        (VideoCodec::H265, 33) => Some(HeaderKind::H265Sps),
        (VideoCodec::H265, 34) => Some(HeaderKind::H265Pps),
        _ => None,
    }
}

impl AnnexBSplit {
    fn new(codec: VideoCodec) -> Self {
        AnnexBSplit {
            codec,
            buf: BytesMut::new(),
            scan: 0,
            min_begin: 0,
            cur: Cur::default(),
            held: Vec::new(),
            held_bytes: 0,
        }
    }

    fn push(&mut self, data: &[u8], out: &mut Vec<Chunk>) {
        self.buf.extend_from_slice(data);
        self.run(out, false);
    }

    fn finish(&mut self, out: &mut Vec<Chunk>) {
        self.run(out, true);
    }

    fn run(&mut self, out: &mut Vec<Chunk>, eof: bool) {
        loop {
            if let Cur::Start { hdr } = self.cur {
                let Some(kind) = nal_kind(self.codec, &self.buf[hdr.min(self.buf.len())..]) else {
                    if eof {
                        self.flush_all(out);
                    }
                    return;
                };
                let hlen = header_len(self.codec);
                let ty = match kind {
                    NalKind::Other(ty) => ty,
                    NalKind::Slice { key, first_bit } => {
                        // The first slice of a keyframe starts its access unit.
                        let key_start = key && first_bit;
                        let key_in_held = self.emit_held(key_start, out);
                        let mark = if key_start && !key_in_held {
                            Mark::Keyframe
                        } else {
                            Mark::Data
                        };
                        self.cur = Cur::Stream { first: Some(mark) };
                        // The first piece carries the slice's first byte too, so a reader of the
                        // chunks can tell where access units start.
                        self.min_begin = hdr + hlen + 1;
                        self.scan = self.min_begin;
                        continue;
                    }
                };
                self.min_begin = hdr + hlen;
                if self.held.is_empty() && !opens_au(self.codec, ty) {
                    // Trails the previous access unit (end of sequence, filler, ...).
                    self.cur = Cur::Stream {
                        first: Some(Mark::Data),
                    };
                } else {
                    self.cur = Cur::Collect { ty };
                }
                // No start code can begin inside the bytes the NAL must keep (its header, and a
                // slice's first byte); searching from there keeps the cut independent of chunking
                // (found by the relay_stream fuzz target on a malformed slice).
                self.scan = self.min_begin;
                continue;
            }
            if let Some(sc) = find_start_code(&self.buf, self.scan) {
                // A 4-byte start code's zero byte belongs to the next NAL.
                let begin = if sc > self.min_begin && self.buf[sc - 1] == 0 {
                    sc - 1
                } else {
                    sc
                };
                self.end_nal(begin, out);
                let hdr = sc - begin + 3;
                self.cur = Cur::Start { hdr };
                self.min_begin = hdr + 1;
                self.scan = hdr;
                continue;
            }
            if eof {
                let n = self.buf.len();
                self.end_nal(n, out);
                self.emit_held(false, out);
                return;
            }
            self.scan = self.scan.max(self.buf.len().saturating_sub(2));
            match self.cur {
                Cur::Stream { .. } | Cur::Pre => {
                    let n = self
                        .buf
                        .len()
                        .saturating_sub(HOLDBACK)
                        .max(self.min_begin)
                        .min(self.buf.len());
                    if n > 0 {
                        self.emit_piece(n, out);
                    }
                }
                Cur::Collect { .. } => {
                    if self.buf.len() > MAX_PARAM_SET || self.held_bytes + self.buf.len() > MAX_HELD
                    {
                        self.emit_held(false, out);
                        self.cur = Cur::Stream {
                            first: Some(Mark::Data),
                        };
                        continue;
                    }
                }
                Cur::Start { .. } => {}
            }
            return;
        }
    }

    fn emit_piece(&mut self, n: usize, out: &mut Vec<Chunk>) {
        let mark = match &mut self.cur {
            Cur::Stream { first } => first.take().unwrap_or(Mark::Data),
            _ => Mark::Data,
        };
        out.push(Chunk::new(self.buf.split_to(n).freeze(), mark));
        self.scan = self.scan.saturating_sub(n);
        self.min_begin = self.min_begin.saturating_sub(n);
    }

    /// The current NAL ends at `b`.
    fn end_nal(&mut self, b: usize, out: &mut Vec<Chunk>) {
        match self.cur {
            Cur::Collect { ty } => {
                let mark = param_set(self.codec, ty).map_or(Mark::Data, Mark::Header);
                let c = Chunk::new(self.buf.split_to(b).freeze(), mark);
                self.held_bytes += b;
                self.held.push((c, ty));
                if self.held_bytes > MAX_HELD {
                    self.emit_held(false, out);
                }
            }
            Cur::Stream { first: Some(_) } => self.emit_piece(b, out),
            _ => {
                if b > 0 {
                    self.emit_piece(b, out);
                }
            }
        }
        self.scan = 0;
        self.min_begin = 0;
        self.cur = Cur::Pre;
    }

    /// Emits the held NALs. When a keyframe's access unit starts, its first non-header NAL becomes
    /// the keyframe; returns whether there was one.
    fn emit_held(&mut self, key_start: bool, out: &mut Vec<Chunk>) -> bool {
        let mut key = false;
        if key_start {
            let codec = self.codec;
            if let Some((c, _)) = self
                .held
                .iter_mut()
                .find(|(c, ty)| !matches!(c.mark, Mark::Header(_)) && opens_au(codec, *ty))
            {
                c.mark = Mark::Keyframe;
                key = true;
            }
        }
        out.extend(self.held.drain(..).map(|(c, _)| c));
        self.held_bytes = 0;
        key
    }

    /// End of input inside a NAL header: everything out as it is.
    fn flush_all(&mut self, out: &mut Vec<Chunk>) {
        self.emit_held(false, out);
        flush_data(&mut self.buf, out);
        self.cur = Cur::Pre;
        self.scan = 0;
        self.min_begin = 0;
    }
}

#[cfg(test)]
mod tests;
