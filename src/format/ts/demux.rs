//! The push demuxer: bytes in, [`TsEvent`]s out.

use super::psi::{self, SectionAssembler, SectionPiece};
use super::{Pes, StreamInfo, TsEvent, MAX_PES_SIZE, PACKET_SIZE, PID_NULL, PID_PAT, SYNC_BYTE};
use crate::error::Diag;
use bytes::BytesMut;

/// Per-PID bits in [`TsDemuxer::pid_flags`].
const CC_MASK: u8 = 0x0F;
const CC_VALID: u8 = 0x10;
const SCRAMBLED_WARNED: u8 = 0x20;

/// Bytes moved into the carry-over buffer at a time; must exceed 2 packets + 1 so that a sync
/// candidate can always be confirmed (see `push`).
const CARRY_STEP: usize = 3 * PACKET_SIZE;

/// Bound on the bytes held in unfinished PES packets of all streams together.
pub const MAX_BUFFERED: usize = 2 * MAX_PES_SIZE;

/// Stream types whose PID carries sections, not PES packets: they are listed but not reassembled.
fn carries_pes(stream_type: u8) -> bool {
    !matches!(stream_type, 0x05 | 0x0A | 0x0B | 0x0D | 0x86)
}

/// A PES being collected.
#[derive(Debug)]
struct PesBuilder {
    buf: BytesMut,
    offset: u64,
    random_access: bool,
    discontinuity: bool,
    corrupt: bool,
    /// 6 + PES_packet_length, once known and when non-zero.
    total: Option<usize>,
    /// Set once the start code and length were read.
    length_checked: bool,
    /// An overflow warning was given for this PES already.
    overflow_warned: bool,
}

#[derive(Debug)]
struct EsState {
    info: StreamInfo,
    pes: Option<PesBuilder>,
    pending_discontinuity: bool,
    /// Capacity to reserve for a PES of unknown length (the size of the previous one, bounded).
    size_hint: usize,
}

/// MPEG-TS push demuxer for 188-byte packets.
///
/// Feed it bytes in chunks of any size with [`push`](Self::push) and call [`finish`](Self::finish)
/// at the end of the stream. The events do not depend on how the input was split.
#[derive(Debug)]
pub struct TsDemuxer {
    /// Unprocessed bytes carried over between pushes (a partial packet, or a sync candidate waiting
    /// for confirmation).
    carry: Vec<u8>,
    /// Absolute offset of `carry[0]` (equivalently: of the next byte to process).
    carry_offset: u64,
    synced: bool,
    /// Where the run of bytes being skipped to regain sync began.
    lost_at: u64,
    /// Continuity counter and flags per PID.
    pid_flags: Vec<u8>,
    pat: SectionAssembler,
    pat_last: Vec<u8>,
    program_number: u16,
    pmt_pid: Option<u16>,
    pmt: SectionAssembler,
    pmt_last: Vec<u8>,
    /// (pcr_pid, streams) of the last Program event.
    program: Option<(u16, Vec<StreamInfo>)>,
    es: Vec<EsState>,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl TsDemuxer {
    pub fn new() -> Self {
        TsDemuxer {
            carry: Vec::with_capacity(CARRY_STEP * 2),
            carry_offset: 0,
            synced: false,
            lost_at: 0,
            pid_flags: vec![0; 8192],
            pat: SectionAssembler::default(),
            pat_last: Vec::new(),
            program_number: 0,
            pmt_pid: None,
            pmt: SectionAssembler::default(),
            pmt_last: Vec::new(),
            program: None,
            es: Vec::new(),
        }
    }

    /// Total bytes pushed so far.
    pub fn position(&self) -> u64 {
        self.carry_offset + self.carry.len() as u64
    }

    /// Whether the demuxer is locked on packet boundaries (false at the start, and while skipping
    /// bytes after damage).
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The streams of the current program, as (pcr_pid, streams), once a PMT was seen.
    pub fn program(&self) -> Option<(u16, &[StreamInfo])> {
        self.program.as_ref().map(|(p, s)| (*p, s.as_slice()))
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<TsEvent>) {
        loop {
            if self.carry.is_empty() {
                let base = self.carry_offset;
                let used = self.run(data, base, false, out);
                self.carry.extend_from_slice(&data[used..]);
                self.carry_offset = base + used as u64;
                return;
            }
            // Complete the carried bytes with a bounded piece of the new data. `run` always leaves
            // fewer than CARRY_STEP bytes, so once the piece is that long it consumes past the
            // carried bytes and the rest can be processed in place.
            let old = self.carry.len();
            let take = data.len().min(CARRY_STEP);
            self.carry.extend_from_slice(&data[..take]);
            let carry = std::mem::take(&mut self.carry);
            let used = self.run(&carry, self.carry_offset, false, out);
            self.carry = carry;
            if used >= old {
                let back = used - old;
                self.carry.clear();
                self.carry_offset += used as u64;
                data = &data[back..];
                if data.is_empty() {
                    return;
                }
            } else {
                self.carry.drain(..used);
                self.carry_offset += used as u64;
                data = &data[take..];
                if data.is_empty() {
                    return;
                }
            }
        }
    }

    /// Ends the stream: processes what is left, reports a truncated last packet or an unsynced
    /// tail, and emits every PES still being collected.
    pub fn finish(&mut self, out: &mut Vec<TsEvent>) {
        let carry = std::mem::take(&mut self.carry);
        let used = self.run(&carry, self.carry_offset, true, out);
        let end = self.carry_offset + carry.len() as u64;
        self.carry_offset += used as u64;
        let left = carry.len() - used;
        let truncated_pid = carry
            .get(used..used + 3)
            .map(|h| u16::from_be_bytes([h[1] & 0x1f, h[2]]));
        self.carry = carry;
        self.carry.clear();
        if self.synced {
            if left > 0 {
                out.push(TsEvent::Warning(Diag::new(
                    self.carry_offset,
                    format!("truncated packet at end of stream: {left} of {PACKET_SIZE} bytes"),
                )));
                // The PES that packet belonged to lost its tail: mark it.
                if let Some(pid) = truncated_pid {
                    if let Some(b) = self
                        .es
                        .iter_mut()
                        .find(|e| e.info.pid == pid)
                        .and_then(|e| e.pes.as_mut())
                    {
                        b.corrupt = true;
                    }
                }
            }
        } else if end > self.lost_at {
            out.push(TsEvent::Warning(Diag::new(
                self.lost_at,
                format!(
                    "no packet sync at end of stream: skipped {} bytes",
                    end - self.lost_at
                ),
            )));
        }
        self.carry_offset = end;
        self.lost_at = end;
        for i in 0..self.es.len() {
            self.flush_index(i, out);
        }
    }

    /// Emits the PES being collected on `pid` now, without waiting for the next packet that starts
    /// one (useful for video PES with PES_packet_length 0 when latency matters).
    pub fn flush_pid(&mut self, pid: u16, out: &mut Vec<TsEvent>) {
        if let Some(i) = self.es.iter().position(|e| e.info.pid == pid) {
            self.flush_index(i, out);
        }
    }

    /// Processes as much of `input` (starting at absolute offset `base`) as possible and returns
    /// how many bytes were consumed. Leaves fewer than 2 packets + 1 bytes unconsumed.
    fn run(&mut self, input: &[u8], base: u64, finishing: bool, out: &mut Vec<TsEvent>) -> usize {
        let len = input.len();
        let mut pos = 0usize;
        loop {
            if self.synced {
                let Some(pkt) = input.get(pos..pos + PACKET_SIZE) else {
                    return pos;
                };
                if pkt[0] != SYNC_BYTE {
                    self.synced = false;
                    self.lost_at = base + pos as u64;
                    continue;
                }
                self.packet(pkt, base + pos as u64, out);
                pos += PACKET_SIZE;
            } else {
                let Some(i) = memchr::memchr(SYNC_BYTE, &input[pos..]) else {
                    return len;
                };
                let c = pos + i;
                // Confirm with the sync bytes of the next two packets; wait for them unless the
                // stream is ending.
                if !finishing && c + 2 * PACKET_SIZE >= len {
                    return c;
                }
                if c + PACKET_SIZE > len {
                    return c;
                }
                let ok = input.get(c + PACKET_SIZE).is_none_or(|&b| b == SYNC_BYTE)
                    && input
                        .get(c + 2 * PACKET_SIZE)
                        .is_none_or(|&b| b == SYNC_BYTE);
                if !ok {
                    pos = c + 1;
                    continue;
                }
                let at = base + c as u64;
                if at > self.lost_at {
                    out.push(TsEvent::Warning(Diag::new(
                        self.lost_at,
                        format!(
                            "lost packet sync: skipped {} bytes to the next confirmed sync byte",
                            at - self.lost_at
                        ),
                    )));
                }
                self.synced = true;
                pos = c;
            }
        }
    }

    fn warn(out: &mut Vec<TsEvent>, offset: u64, message: String) {
        out.push(TsEvent::Warning(Diag::new(offset, message)));
    }

    /// One whole packet with a correct sync byte.
    fn packet(&mut self, p: &[u8], off: u64, out: &mut Vec<TsEvent>) {
        let pid = u16::from_be_bytes([p[1] & 0x1F, p[2]]);
        if p[1] & 0x80 != 0 {
            Self::warn(
                out,
                off,
                format!("transport_error_indicator set on pid 0x{pid:x}: packet dropped"),
            );
            return;
        }
        if pid == PID_NULL {
            return;
        }
        enum Kind {
            Pat,
            Pmt,
            Es(usize),
        }
        let kind = if pid == PID_PAT {
            Kind::Pat
        } else if Some(pid) == self.pmt_pid {
            Kind::Pmt
        } else if let Some(i) = self.es.iter().position(|e| e.info.pid == pid) {
            Kind::Es(i)
        } else {
            return;
        };
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let cc = p[3] & 0x0F;
        if afc == 0 {
            Self::warn(
                out,
                off,
                format!("reserved adaptation_field_control 0 on pid 0x{pid:x}: packet dropped"),
            );
            return;
        }
        let mut payload_start = 4;
        let mut discontinuity = false;
        let mut random_access = false;
        if afc & 2 != 0 {
            let af_len = p[4] as usize;
            let max = if afc == 3 { 182 } else { 183 };
            if af_len > max {
                Self::warn(
                    out,
                    off,
                    format!(
                        "adaptation_field_length {af_len} exceeds {max} on pid 0x{pid:x}: packet dropped"
                    ),
                );
                return;
            }
            if af_len > 0 {
                discontinuity = p[5] & 0x80 != 0;
                random_access = p[5] & 0x40 != 0;
            }
            payload_start = 5 + af_len;
        }
        let has_payload = afc & 1 != 0;
        let flags = self.pid_flags[pid as usize];
        let mut gap = false;
        if has_payload {
            if flags & CC_VALID != 0 && !discontinuity {
                let last = flags & CC_MASK;
                if cc == last {
                    // A duplicate packet: allowed once, carries nothing new.
                    return;
                }
                let expected = (last + 1) & CC_MASK;
                if cc != expected {
                    gap = true;
                    Self::warn(
                        out,
                        off,
                        format!(
                            "continuity counter gap on pid 0x{pid:x}: expected {expected}, got {cc}"
                        ),
                    );
                }
            }
            self.pid_flags[pid as usize] = (flags & !CC_MASK) | CC_VALID | cc;
        } else if discontinuity {
            // The counter may restart on the next packet with a payload.
            self.pid_flags[pid as usize] = flags & !CC_VALID;
        }
        if p[3] & 0xC0 != 0 {
            if self.pid_flags[pid as usize] & SCRAMBLED_WARNED == 0 {
                self.pid_flags[pid as usize] |= SCRAMBLED_WARNED;
                Self::warn(
                    out,
                    off,
                    format!("scrambled packets on pid 0x{pid:x}: payload dropped"),
                );
            }
            if let Kind::Es(i) = kind {
                if let Some(b) = self.es[i].pes.as_mut() {
                    b.corrupt = true;
                }
            }
            return;
        }
        self.pid_flags[pid as usize] &= !SCRAMBLED_WARNED;
        let payload = if has_payload {
            &p[payload_start..]
        } else {
            &[][..]
        };
        match kind {
            Kind::Pat => self.psi_packet(true, payload, pusi, gap, off, out),
            Kind::Pmt => self.psi_packet(false, payload, pusi, gap, off, out),
            Kind::Es(i) => self.es_packet(
                i,
                payload,
                pusi,
                gap,
                discontinuity,
                random_access,
                off,
                out,
            ),
        }
    }

    fn psi_packet(
        &mut self,
        is_pat: bool,
        payload: &[u8],
        pusi: bool,
        gap: bool,
        off: u64,
        out: &mut Vec<TsEvent>,
    ) {
        let asm = if is_pat { &mut self.pat } else { &mut self.pmt };
        if gap {
            asm.reset();
        }
        if payload.is_empty() {
            return;
        }
        let mut pieces: Vec<Result<Vec<u8>, psi::PsiError>> = Vec::new();
        asm.feed(payload, pusi, |piece| match piece {
            SectionPiece::Section(s) => pieces.push(Ok(s.to_vec())),
            SectionPiece::Error(e) => pieces.push(Err(e)),
        });
        for piece in pieces {
            match piece {
                Err(e) => Self::warn(out, off, e.to_string()),
                Ok(sec) if is_pat => self.pat_section(sec, off, out),
                Ok(sec) => self.pmt_section(sec, off, out),
            }
        }
    }

    fn pat_section(&mut self, sec: Vec<u8>, off: u64, out: &mut Vec<TsEvent>) {
        if sec == self.pat_last {
            return;
        }
        let s = match psi::parse_long_section(&sec) {
            Ok(s) => s,
            Err(e) => return Self::warn(out, off, e.to_string()),
        };
        if s.table_id != psi::TABLE_ID_PAT || !s.current_next {
            return;
        }
        let Some((program, pmt_pid)) = psi::pat_first_program(s.body) else {
            return;
        };
        self.pat_last = sec;
        if pmt_pid == PID_PAT || pmt_pid == PID_NULL {
            return Self::warn(
                out,
                off,
                format!("pat maps program {program} to pid 0x{pmt_pid:x}"),
            );
        }
        if self.pmt_pid != Some(pmt_pid) || self.program_number != program {
            self.pmt_pid = Some(pmt_pid);
            self.program_number = program;
            self.pmt.reset();
            self.pmt_last.clear();
            self.pid_flags[pmt_pid as usize] = 0;
            if let Some(i) = self.es.iter().position(|e| e.info.pid == pmt_pid) {
                self.flush_index(i, out);
                self.es.remove(i);
            }
        }
    }

    fn pmt_section(&mut self, sec: Vec<u8>, off: u64, out: &mut Vec<TsEvent>) {
        if sec == self.pmt_last {
            return;
        }
        let s = match psi::parse_long_section(&sec) {
            Ok(s) => s,
            Err(e) => return Self::warn(out, off, e.to_string()),
        };
        if s.table_id != psi::TABLE_ID_PMT || !s.current_next || s.id != self.program_number {
            return;
        }
        let (pcr_pid, mut streams) = match psi::parse_pmt(s.body) {
            Ok(x) => x,
            Err(e) => return Self::warn(out, off, e.to_string()),
        };
        self.pmt_last = sec;
        // One entry per PID, and none on the PIDs with another role.
        let mut seen = Vec::with_capacity(streams.len());
        streams.retain(|st| {
            let keep = !seen.contains(&st.pid)
                && st.pid != PID_PAT
                && st.pid != PID_NULL
                && Some(st.pid) != self.pmt_pid;
            seen.push(st.pid);
            keep
        });
        if self
            .program
            .as_ref()
            .is_some_and(|(p, s)| *p == pcr_pid && *s == streams)
        {
            return;
        }
        // Streams that went away or changed type: deliver what they had, forget them.
        let mut i = 0;
        while i < self.es.len() {
            if streams.contains(&self.es[i].info) {
                i += 1;
            } else {
                self.flush_index(i, out);
                self.es.remove(i);
            }
        }
        for st in &streams {
            if carries_pes(st.stream_type) && !self.es.iter().any(|e| e.info == *st) {
                self.pid_flags[st.pid as usize] = 0;
                self.es.push(EsState {
                    info: *st,
                    pes: None,
                    pending_discontinuity: false,
                    size_hint: 4096,
                });
            }
        }
        out.push(TsEvent::Program {
            program_number: self.program_number,
            pcr_pid,
            streams: streams.clone(),
            offset: off,
        });
        self.program = Some((pcr_pid, streams));
    }

    #[allow(clippy::too_many_arguments)]
    fn es_packet(
        &mut self,
        i: usize,
        payload: &[u8],
        pusi: bool,
        gap: bool,
        discontinuity: bool,
        random_access: bool,
        off: u64,
        out: &mut Vec<TsEvent>,
    ) {
        let Some(es) = self.es.get_mut(i) else {
            return;
        };
        if discontinuity {
            es.pending_discontinuity = true;
        }
        // A gap inside a PES damages it. A gap right before a packet that starts a new PES most
        // likely sits between two PES (a splice, `cat a.ts b.ts`): the previous PES counts as
        // whole unless its PES_packet_length is unmet, which finish_pes checks.
        if gap && !pusi {
            if let Some(b) = es.pes.as_mut() {
                b.corrupt = true;
            }
        }
        if pusi {
            self.flush_index(i, out);
            let Some(es) = self.es.get_mut(i) else {
                return;
            };
            es.pes = Some(PesBuilder {
                buf: BytesMut::with_capacity(es.size_hint),
                offset: off,
                random_access,
                discontinuity: std::mem::take(&mut es.pending_discontinuity),
                corrupt: false,
                total: None,
                length_checked: false,
                overflow_warned: false,
            });
        }
        if payload.is_empty() {
            return;
        }
        let Some(es) = self.es.get_mut(i) else {
            return;
        };
        let pid = es.info.pid;
        let Some(b) = es.pes.as_mut() else {
            // Not inside a PES (joined mid-stream, or after the previous one was complete).
            return;
        };
        let mut data = payload;
        if let Some(total) = b.total {
            let room = total.saturating_sub(b.buf.len());
            if data.len() > room {
                if !b.overflow_warned {
                    b.overflow_warned = true;
                    Self::warn(
                        out,
                        off,
                        format!(
                            "pes on pid 0x{pid:x} has {} bytes beyond its PES_packet_length: ignored",
                            data.len() - room
                        ),
                    );
                }
                data = &data[..room];
            }
        } else if b.buf.len() + data.len() > MAX_PES_SIZE {
            let start = b.offset;
            es.pes = None;
            Self::warn(
                out,
                off,
                format!(
                    "pes on pid 0x{pid:x} started at offset {start} exceeds {MAX_PES_SIZE} bytes: dropped"
                ),
            );
            return;
        }
        // Many streams each collecting a big PES: bound the sum, checked at every MiB.
        let before = b.buf.len();
        if (before + data.len()) >> 20 != before >> 20 {
            let buffered: usize = self
                .es
                .iter()
                .filter_map(|e| e.pes.as_ref().map(|p| p.buf.len()))
                .sum();
            if buffered + data.len() > MAX_BUFFERED {
                let Some(es) = self.es.get_mut(i) else {
                    return;
                };
                es.pes = None;
                Self::warn(
                    out,
                    off,
                    format!(
                        "pes on pid 0x{pid:x} dropped: all streams together hold more than {MAX_BUFFERED} bytes"
                    ),
                );
                return;
            }
        }
        let Some(es) = self.es.get_mut(i) else {
            return;
        };
        let Some(b) = es.pes.as_mut() else {
            return;
        };
        b.buf.extend_from_slice(data);
        if !b.length_checked && b.buf.len() >= 6 {
            b.length_checked = true;
            if b.buf[..3] != [0, 0, 1] {
                let start = b.offset;
                es.pes = None;
                Self::warn(
                    out,
                    start,
                    format!("pes on pid 0x{pid:x} does not start with 00 00 01: dropped"),
                );
                return;
            }
            let len = u16::from_be_bytes([b.buf[4], b.buf[5]]) as usize;
            if len > 0 {
                let total = 6 + len;
                b.total = Some(total);
                if b.buf.len() > total {
                    b.buf.truncate(total);
                    Self::warn(
                        out,
                        off,
                        format!(
                            "pes on pid 0x{pid:x} has bytes beyond its PES_packet_length: ignored"
                        ),
                    );
                    b.overflow_warned = true;
                } else {
                    b.buf.reserve(total - b.buf.len());
                }
            }
        }
        if b.total.is_some_and(|t| b.buf.len() >= t) {
            self.flush_index(i, out);
        }
    }

    /// Completes the PES being collected on stream `i`, if any.
    fn flush_index(&mut self, i: usize, out: &mut Vec<TsEvent>) {
        let Some(es) = self.es.get_mut(i) else {
            return;
        };
        let Some(b) = es.pes.take() else {
            return;
        };
        es.size_hint = b.buf.len().clamp(4096, 1 << 20);
        let info = es.info;
        if let Some(pes) = finish_pes(info, b, out) {
            out.push(TsEvent::Pes(pes));
        }
    }
}

/// Well-known stream_ids whose PES packets have no optional header (ISO 13818-1 2.4.3.7).
fn has_no_optional_header(stream_id: u8) -> bool {
    matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

fn read_timestamp(b: &[u8]) -> u64 {
    (((b[0] >> 1) & 0x07) as u64) << 30
        | (b[1] as u64) << 22
        | ((b[2] >> 1) as u64) << 15
        | (b[3] as u64) << 7
        | (b[4] >> 1) as u64
}

/// Parses the PES header of a collected PES and builds the event.
fn finish_pes(info: StreamInfo, mut b: PesBuilder, out: &mut Vec<TsEvent>) -> Option<Pes> {
    let pid = info.pid;
    let warn = |out: &mut Vec<TsEvent>, m: String| {
        out.push(TsEvent::Warning(Diag::new(b.offset, m)));
    };
    let buf = &b.buf;
    if buf.len() < 6 || buf[..3] != [0, 0, 1] {
        if buf.len() < 6 {
            warn(
                out,
                format!(
                    "pes on pid 0x{pid:x} ended after {} bytes: dropped",
                    buf.len()
                ),
            );
        }
        return None;
    }
    if let Some(total) = b.total {
        if buf.len() < total {
            warn(
                out,
                format!(
                    "pes on pid 0x{pid:x} truncated: PES_packet_length gives {} bytes, got {}",
                    total - 6,
                    buf.len() - 6
                ),
            );
            b.corrupt = true;
        }
    }
    let stream_id = buf[3];
    let (mut pts, mut dts) = (None, None);
    let header_len = if has_no_optional_header(stream_id) {
        6
    } else {
        if buf.len() < 9 {
            warn(
                out,
                format!("pes on pid 0x{pid:x} ended inside its header: dropped"),
            );
            return None;
        }
        if buf[6] & 0xC0 != 0x80 {
            warn(
                out,
                format!(
                    "pes on pid 0x{pid:x}: header byte 0x{:02x} lacks the '10' marker: dropped",
                    buf[6]
                ),
            );
            return None;
        }
        let flags = buf[7] >> 6;
        let hlen = buf[8] as usize;
        let header_len = 9 + hlen;
        let need = match flags {
            2 => 5,
            3 => 10,
            _ => 0,
        };
        if hlen < need || buf.len() < header_len {
            warn(
                out,
                format!(
                    "pes on pid 0x{pid:x}: PES_header_data_length {hlen} too short or beyond the data: dropped"
                ),
            );
            return None;
        }
        if flags & 2 != 0 {
            pts = Some(read_timestamp(&buf[9..14]));
        }
        if flags == 3 {
            dts = Some(read_timestamp(&buf[14..19]));
        }
        header_len
    };
    let _ = b.buf.split_to(header_len);
    Some(Pes {
        pid,
        stream_type: info.stream_type,
        stream_id,
        pts,
        dts,
        random_access: b.random_access,
        discontinuity: b.discontinuity,
        corrupt: b.corrupt,
        data: b.buf.freeze(),
        offset: b.offset,
    })
}
