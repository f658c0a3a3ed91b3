//! The writer: PES payloads with timestamps in, whole 188-byte transport packets out.

use super::psi;
use super::{StreamInfo, PACKET_SIZE, PID_PAT, PID_PMT, PSI_INTERVAL, TIMESTAMP_MASK};
use crate::error::Diag;

/// One elementary stream of the muxer's single program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxStream {
    pub pid: u16,
    /// PMT stream_type, e.g. [`super::STREAM_TYPE_H264`].
    pub stream_type: u8,
    /// PES stream_id, e.g. [`super::STREAM_ID_VIDEO`]. Video ids (0xE0..=0xEF) get
    /// PES_packet_length 0, as ffmpeg writes them.
    pub stream_id: u8,
}

#[derive(Debug, Clone)]
struct StreamState {
    cfg: MuxStream,
    cc: u8,
    /// The next PES starts with discontinuity_indicator set.
    discontinuity: bool,
}

/// If DTS goes back by more than this (90 kHz units), the stream restarted: repeat PAT/PMT.
const PSI_BACKWARD_RESET: u64 = 10 * 90_000;

/// MPEG-TS writer for one program (transport_stream_id 1, program_number 1, PMT on
/// [`PID_PMT`](super::PID_PMT)).
#[derive(Debug, Clone)]
pub struct TsMuxer {
    streams: Vec<StreamState>,
    pcr_pid: u16,
    pat: Vec<u8>,
    pmt: Vec<u8>,
    pat_cc: u8,
    pmt_cc: u8,
    pmt_version: u8,
    pcr_delay: u64,
    need_psi: bool,
    last_psi_dts: Option<u64>,
    written: u64,
}

const TRANSPORT_STREAM_ID: u16 = 1;
const PROGRAM_NUMBER: u16 = 1;

fn is_video_stream_id(id: u8) -> bool {
    (0xE0..=0xEF).contains(&id)
}

impl TsMuxer {
    /// The PCR is by default equal to the DTS of the PES it precedes; see [`Self::set_pcr_delay`].
    pub const DEFAULT_PCR_DELAY: u64 = 0;

    pub fn new(streams: Vec<MuxStream>, pcr_pid: u16) -> Self {
        let mut m = TsMuxer {
            streams: Vec::new(),
            pcr_pid,
            pat: psi::build_pat(TRANSPORT_STREAM_ID, PROGRAM_NUMBER, PID_PMT),
            pmt: Vec::new(),
            pat_cc: 0,
            pmt_cc: 0,
            pmt_version: 0,
            pcr_delay: Self::DEFAULT_PCR_DELAY,
            need_psi: true,
            last_psi_dts: None,
            written: 0,
        };
        m.streams = streams
            .into_iter()
            .map(|cfg| StreamState {
                cfg,
                cc: 0,
                discontinuity: false,
            })
            .collect();
        m.pmt = m.build_pmt();
        m
    }

    /// Sets how far (90 kHz units) the PCR runs behind the DTS of the PES it is sent with, the
    /// decoder's buffering time. PCR = DTS − delay, saturating at 0, so the PCR never exceeds the
    /// DTS it precedes; give DTS ≥ delay for a clock that advances from the start.
    pub fn set_pcr_delay(&mut self, delay: u64) {
        self.pcr_delay = delay & TIMESTAMP_MASK;
    }

    /// Replaces the stream list. When it changes, the PMT version is bumped and PAT/PMT are sent
    /// before the next PES. Continuity counters of PIDs that stay are kept.
    pub fn set_streams(&mut self, streams: Vec<MuxStream>, pcr_pid: u16) {
        let same = pcr_pid == self.pcr_pid
            && streams.len() == self.streams.len()
            && streams.iter().zip(&self.streams).all(|(a, b)| *a == b.cfg);
        if same {
            return;
        }
        let old = std::mem::take(&mut self.streams);
        self.streams = streams
            .into_iter()
            .map(|cfg| StreamState {
                cfg,
                cc: old
                    .iter()
                    .find(|o| o.cfg.pid == cfg.pid)
                    .map_or(0, |o| o.cc),
                discontinuity: old.iter().any(|o| o.cfg.pid == cfg.pid && o.discontinuity),
            })
            .collect();
        self.pcr_pid = pcr_pid;
        self.pmt_version = (self.pmt_version + 1) & 0x1F;
        self.pmt = self.build_pmt();
        self.need_psi = true;
    }

    /// Marks a break in the source (a reconnect, a restarted encoder) before the next PES of every
    /// stream: its first packet gets discontinuity_indicator (ISO 13818-1 2.4.3.5), so demuxers
    /// do not report the continuity counters or the clock as errors there, and PAT/PMT are repeated.
    pub fn mark_discontinuity(&mut self) {
        for s in &mut self.streams {
            s.discontinuity = true;
        }
        self.need_psi = true;
    }

    /// The PMT version currently written (0..=31).
    pub fn pmt_version(&self) -> u8 {
        self.pmt_version
    }

    /// Total bytes this muxer has written.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn build_pmt(&self) -> Vec<u8> {
        let infos: Vec<StreamInfo> = self
            .streams
            .iter()
            .map(|s| StreamInfo {
                pid: s.cfg.pid,
                stream_type: s.cfg.stream_type,
            })
            .collect();
        psi::build_pmt(PROGRAM_NUMBER, self.pmt_version, self.pcr_pid, &infos)
    }

    /// Writes PAT and PMT now.
    pub fn write_tables(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        write_section(PID_PAT, &mut self.pat_cc, &self.pat, out);
        write_section(PID_PMT, &mut self.pmt_cc, &self.pmt, out);
        self.written += (out.len() - start) as u64;
        self.need_psi = false;
    }

    /// Writes one PES: `payload` with its PTS, and its DTS when given and different from the PTS.
    /// Timestamps are written modulo 2^33. `keyframe` sets random_access_indicator, and on a video
    /// stream on the PCR PID it also makes PAT/PMT precede the PES.
    pub fn write_pes(
        &mut self,
        pid: u16,
        pts: u64,
        dts: Option<u64>,
        keyframe: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Diag> {
        self.write_pes_pieces(pid, pts, dts, keyframe, &[payload], out)
    }

    /// [`Self::write_pes`] with the payload given as pieces to concatenate (an access unit's start
    /// codes and NAL units where they lie): each payload byte is copied once, straight into its
    /// packet, and the packets are appended whole (no fill of `out` before the copy).
    pub fn write_pes_pieces(
        &mut self,
        pid: u16,
        pts: u64,
        dts: Option<u64>,
        keyframe: bool,
        pieces: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), Diag> {
        let Some(si) = self.streams.iter().position(|s| s.cfg.pid == pid) else {
            return Err(Diag::new(
                self.written,
                format!("ts mux: no stream with pid 0x{pid:x}"),
            ));
        };
        let payload_len: usize = pieces.iter().map(|p| p.len()).sum();
        let cfg = self.streams[si].cfg;
        let video = is_video_stream_id(cfg.stream_id);
        let pts = pts & TIMESTAMP_MASK;
        let dts = dts.map(|d| d & TIMESTAMP_MASK).filter(|&d| d != pts);
        let dts_eff = dts.unwrap_or(pts);

        // PES header.
        let mut hdr = [0u8; 19];
        hdr[2] = 1;
        hdr[3] = cfg.stream_id;
        hdr[6] = 0x84; // '10', data_alignment_indicator
        let header_len = if let Some(d) = dts {
            hdr[7] = 0xC0;
            hdr[8] = 10;
            put_timestamp(&mut hdr[9..14], 0x3, pts);
            put_timestamp(&mut hdr[14..19], 0x1, d);
            19
        } else {
            hdr[7] = 0x80;
            hdr[8] = 5;
            put_timestamp(&mut hdr[9..14], 0x2, pts);
            14
        };
        let pes_len = header_len - 6 + payload_len;
        if !video {
            if pes_len > 0xFFFF {
                return Err(Diag::new(
                    self.written,
                    format!(
                        "ts mux: pes of {payload_len} bytes on non-video pid 0x{pid:x} exceeds PES_packet_length"
                    ),
                ));
            }
            hdr[4..6].copy_from_slice(&(pes_len as u16).to_be_bytes());
        }

        // PAT/PMT first when due.
        let due = self.need_psi
            || (keyframe && video && pid == self.pcr_pid)
            || self.last_psi_dts.is_none_or(|last| {
                let d = dts_eff.wrapping_sub(last) & TIMESTAMP_MASK;
                if d < 1 << 32 {
                    d >= PSI_INTERVAL
                } else {
                    (1 << 33) - d > PSI_BACKWARD_RESET
                }
            });
        if due {
            self.write_tables(out);
            self.last_psi_dts = Some(dts_eff);
        }

        let pcr = (pid == self.pcr_pid).then(|| dts_eff.saturating_sub(self.pcr_delay));
        let disc = std::mem::take(&mut self.streams[si].discontinuity);
        let af_flags = if keyframe { 0x40 } else { 0 } | if disc { 0x80 } else { 0 };
        let af_min = if pcr.is_some() {
            8
        } else if af_flags != 0 {
            2
        } else {
            0
        };
        let total = header_len + payload_len;
        let first_cap = 184 - af_min;
        let n = if total <= first_cap {
            1
        } else {
            1 + (total - first_cap).div_ceil(184)
        };
        let cc = &mut self.streams[si].cc;
        let mut src = Pieces::new(pieces);
        let mut w = PacketWriter::new(out, n);
        let mut head = [0u8; PACKET_SIZE];

        let first_len = total.min(first_cap);
        let at = write_header(&mut head, pid, true, *cc, af_flags, pcr, first_len);
        *cc = (*cc + 1) & 0x0F;
        w.put(&head[..at]);
        w.put(&hdr[..header_len]);
        src.copy_into(first_len - header_len, &mut w);
        let mut left = total - first_len;
        while left > 0 {
            let len = left.min(184);
            let at = write_header(&mut head, pid, false, *cc, 0, None, len);
            *cc = (*cc + 1) & 0x0F;
            if at == 4 {
                w.put_array(&[head[0], head[1], head[2], head[3]]);
            } else {
                w.put(&head[..at]);
            }
            src.copy_into(len, &mut w);
            left -= len;
        }
        w.finish();
        self.written += (n * PACKET_SIZE) as u64;
        Ok(())
    }
}

/// Appends whole packets to a `Vec` without filling the space first (a fill of every output
/// byte cost as much as a third of the copy into the packets): the space for them is reserved,
/// written in order, and only then added to the `Vec`'s length, checked to be written to its end.
struct PacketWriter<'o> {
    out: &'o mut Vec<u8>,
    pos: usize,
    end: usize,
}

impl<'o> PacketWriter<'o> {
    fn new(out: &'o mut Vec<u8>, packets: usize) -> Self {
        out.reserve(packets * PACKET_SIZE);
        let pos = out.len();
        PacketWriter {
            end: pos + packets * PACKET_SIZE,
            out,
            pos,
        }
    }

    fn put(&mut self, src: &[u8]) {
        assert!(src.len() <= self.end - self.pos, "ts mux: packet overrun");
        // SAFETY: `pos + src.len() <= end <= capacity` (reserved in `new`); `src` cannot lie in
        // `out`, which is borrowed mutably here.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.out.as_mut_ptr().add(self.pos),
                src.len(),
            );
        }
        self.pos += src.len();
    }

    /// [`Self::put`] of a fixed size, which compiles to plain moves.
    fn put_array<const N: usize>(&mut self, src: &[u8; N]) {
        self.put(src);
    }

    fn finish(self) {
        assert_eq!(self.pos, self.end, "ts mux: packets not filled");
        // SAFETY: every byte from the old length to `end` was written by `put`, in order.
        unsafe { self.out.set_len(self.end) };
    }
}

/// A read cursor over pieces to concatenate.
struct Pieces<'a, 'b> {
    rest: &'b [&'a [u8]],
    /// What is left of `rest[0]`.
    cur: &'a [u8],
}

impl<'a, 'b> Pieces<'a, 'b> {
    fn new(pieces: &'b [&'a [u8]]) -> Self {
        Pieces {
            rest: pieces,
            cur: &[],
        }
    }

    /// Writes the next `n` bytes; the caller asks for no more than the pieces hold.
    fn copy_into(&mut self, mut n: usize, w: &mut PacketWriter<'_>) {
        // A whole packet's payload from inside one piece: the common case, a fixed-size copy.
        if n == 184 {
            if let Some((whole, later)) = self.cur.split_first_chunk::<184>() {
                w.put_array(whole);
                self.cur = later;
                return;
            }
        }
        while n > 0 {
            while self.cur.is_empty() {
                let Some((first, rest)) = self.rest.split_first() else {
                    return;
                };
                self.cur = first;
                self.rest = rest;
            }
            let take = n.min(self.cur.len());
            let (now, later) = self.cur.split_at(take);
            w.put(now);
            self.cur = later;
            n -= take;
        }
    }
}

/// Writes a 33-bit timestamp in the PES 5-byte layout with the 4-bit prefix.
fn put_timestamp(dst: &mut [u8], prefix: u8, ts: u64) {
    dst[0] = (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1;
    dst[1] = (ts >> 22) as u8;
    dst[2] = (((ts >> 15) as u8) << 1) | 1;
    dst[3] = (ts >> 7) as u8;
    dst[4] = ((ts as u8) << 1) | 1;
}

/// Writes the 4-byte header and the adaptation field (flags, PCR, stuffing) of one packet that
/// will carry `payload_len` bytes (1..=184) of payload; returns where the payload starts.
fn write_header(
    dst: &mut [u8],
    pid: u16,
    pusi: bool,
    cc: u8,
    af_flags: u8,
    pcr: Option<u64>,
    payload_len: usize,
) -> usize {
    dst[0] = 0x47;
    dst[1] = if pusi { 0x40 } else { 0 } | ((pid >> 8) as u8 & 0x1F);
    dst[2] = pid as u8;
    if af_flags == 0 && pcr.is_none() && payload_len == 184 {
        dst[3] = 0x10 | cc;
        return 4;
    }
    dst[3] = 0x30 | cc;
    let af_len = 183 - payload_len;
    dst[4] = af_len as u8;
    if af_len > 0 {
        let mut i = 6;
        dst[5] = af_flags;
        if let Some(pcr) = pcr {
            dst[5] |= 0x10;
            let base = pcr & TIMESTAMP_MASK;
            dst[6] = (base >> 25) as u8;
            dst[7] = (base >> 17) as u8;
            dst[8] = (base >> 9) as u8;
            dst[9] = (base >> 1) as u8;
            dst[10] = ((base as u8 & 1) << 7) | 0x7E;
            dst[11] = 0;
            i = 12;
        }
        dst[i..5 + af_len].fill(0xFF);
    }
    5 + af_len
}

/// Writes one PSI section as packets on `pid` (pointer_field 0, 0xFF after the section).
fn write_section(pid: u16, cc: &mut u8, section: &[u8], out: &mut Vec<u8>) {
    let n = (section.len() + 1).div_ceil(184).max(1);
    let start = out.len();
    out.resize(start + n * PACKET_SIZE, 0xFF);
    let mut rest = section;
    for (k, pkt) in out[start..].chunks_exact_mut(PACKET_SIZE).enumerate() {
        pkt[0] = 0x47;
        pkt[1] = if k == 0 { 0x40 } else { 0 } | ((pid >> 8) as u8 & 0x1F);
        pkt[2] = pid as u8;
        pkt[3] = 0x10 | *cc;
        *cc = (*cc + 1) & 0x0F;
        let mut at = 4;
        if k == 0 {
            pkt[4] = 0;
            at = 5;
        }
        let take = rest.len().min(PACKET_SIZE - at);
        pkt[at..at + take].copy_from_slice(&rest[..take]);
        rest = &rest[take..];
    }
}
