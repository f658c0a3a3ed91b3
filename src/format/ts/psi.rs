//! Program-specific information: PAT and PMT sections, parsed and built, and the assembler that
//! collects a section from the payloads of consecutive transport packets.

use super::crc::crc32_mpeg2;
use super::StreamInfo;

/// Longest PSI section (3-byte header + section_length, which is at most 1021 for PAT/PMT; private
/// sections may reach 4096).
pub const MAX_SECTION: usize = 4096;

pub const TABLE_ID_PAT: u8 = 0x00;
pub const TABLE_ID_PMT: u8 = 0x02;

/// A PSI problem: how a section could not be collected, or why a section or PMT does not parse.
/// The demuxer reports it as a warning at the offset of the packet that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsiError {
    /// payload_unit_start on a packet with no payload.
    EmptyStart,
    /// A pointer_field past the payload (pointer, payload bytes after it).
    PointerBeyond { pointer: usize, len: usize },
    /// A section that did not end where the next one starts.
    CutShort,
    /// A section_length outside what PSI allows.
    SectionLength(usize),
    /// A section too short for the long form (its length).
    TooShort(usize),
    /// A section without section_syntax_indicator (its table_id).
    NoSyntaxIndicator(u8),
    /// A CRC that does not match.
    Crc {
        table_id: u8,
        computed: u32,
        stored: u32,
    },
    /// A PMT body shorter than its fixed fields.
    PmtTooShort,
    /// program_info_length past the section.
    ProgramInfoOverrun(usize),
    /// A stream entry cut short (bytes left).
    EntryTruncated(usize),
    /// ES_info_length past the section (length, pid).
    EsInfoOverrun { len: usize, pid: u16 },
}

impl std::fmt::Display for PsiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PsiError::EmptyStart => f.write_str("empty psi payload with payload_unit_start"),
            PsiError::PointerBeyond { pointer, len } => write!(
                f,
                "psi pointer_field {pointer} beyond the {len} payload bytes"
            ),
            PsiError::CutShort => f.write_str("psi section cut short by the next section start"),
            PsiError::SectionLength(n) => write!(f, "psi section_length {n} out of range"),
            PsiError::TooShort(n) => write!(f, "psi section of {n} bytes is too short"),
            PsiError::NoSyntaxIndicator(t) => write!(
                f,
                "psi table 0x{t:02x} without section_syntax_indicator"
            ),
            PsiError::Crc {
                table_id,
                computed,
                stored,
            } => write!(
                f,
                "psi table 0x{table_id:02x} crc mismatch: computed 0x{computed:08x}, stored 0x{stored:08x}"
            ),
            PsiError::PmtTooShort => f.write_str("pmt body shorter than 4 bytes"),
            PsiError::ProgramInfoOverrun(n) => {
                write!(f, "pmt program_info_length {n} overruns the section")
            }
            PsiError::EntryTruncated(n) => write!(f, "pmt stream entry truncated ({n} bytes)"),
            PsiError::EsInfoOverrun { len, pid } => write!(
                f,
                "pmt ES_info_length {len} of pid 0x{pid:x} overruns the section"
            ),
        }
    }
}

impl std::error::Error for PsiError {}

/// Collects one PSI section at a time from packet payloads.
#[derive(Debug, Default)]
pub struct SectionAssembler {
    buf: Vec<u8>,
    /// A section is being collected (its start was seen).
    active: bool,
}

/// Result of feeding a packet payload: complete sections, and problems found.
pub enum SectionPiece<'a> {
    /// A complete section (header through CRC).
    Section(&'a [u8]),
    /// A malformed pointer field or section length.
    Error(PsiError),
}

impl SectionAssembler {
    pub fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    /// Feeds the payload of one packet of this PID and calls `f` for each completed section or
    /// problem.
    pub fn feed(&mut self, payload: &[u8], pusi: bool, mut f: impl FnMut(SectionPiece<'_>)) {
        let mut rest = payload;
        if pusi {
            let Some((&pointer, after)) = rest.split_first() else {
                f(SectionPiece::Error(PsiError::EmptyStart));
                self.reset();
                return;
            };
            let pointer = pointer as usize;
            if pointer > after.len() {
                f(SectionPiece::Error(PsiError::PointerBeyond {
                    pointer,
                    len: after.len(),
                }));
                self.reset();
                return;
            }
            let (tail, start) = after.split_at(pointer);
            if self.active {
                self.append(tail, &mut f);
                if self.active {
                    // The previous section did not end where the pointer says the next begins.
                    f(SectionPiece::Error(PsiError::CutShort));
                }
            }
            self.buf.clear();
            self.active = true;
            rest = start;
        } else if !self.active {
            return;
        }
        self.append(rest, &mut f);
    }

    /// Appends bytes to the section being collected; completes sections, and starts new ones that
    /// follow immediately (a table_id other than 0xFF).
    fn append(&mut self, mut data: &[u8], f: &mut impl FnMut(SectionPiece<'_>)) {
        while self.active && !data.is_empty() {
            if self.buf.is_empty() && data[0] == 0xFF {
                // Stuffing after the last section of the packet.
                self.active = false;
                return;
            }
            let need = if self.buf.len() < 3 {
                3 - self.buf.len()
            } else {
                let total = section_total_len(&self.buf);
                total - self.buf.len()
            };
            let take = need.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < 3 {
                return;
            }
            let total = section_total_len(&self.buf);
            if !(3 + 5 + 4..=MAX_SECTION).contains(&total) {
                f(SectionPiece::Error(PsiError::SectionLength(total - 3)));
                self.reset();
                return;
            }
            if self.buf.len() == total {
                f(SectionPiece::Section(&self.buf));
                self.buf.clear();
                // Another section may start right here in the same payload; one cannot start in
                // the next packet without payload_unit_start.
                if data.is_empty() {
                    self.active = false;
                }
            }
        }
    }
}

fn section_total_len(hdr: &[u8]) -> usize {
    3 + ((((hdr[1] & 0x0F) as usize) << 8) | hdr[2] as usize)
}

/// The fields common to long-form sections, after checking the CRC.
#[derive(Debug)]
pub struct LongSection<'a> {
    pub table_id: u8,
    pub id: u16,
    #[cfg_attr(not(test), allow(dead_code))]
    pub version: u8,
    pub current_next: bool,
    /// The bytes between the 8-byte header and the CRC.
    pub body: &'a [u8],
}

/// Checks syntax and CRC of a complete section.
pub fn parse_long_section(sec: &[u8]) -> Result<LongSection<'_>, PsiError> {
    if sec.len() < 12 {
        return Err(PsiError::TooShort(sec.len()));
    }
    if sec[1] & 0x80 == 0 {
        return Err(PsiError::NoSyntaxIndicator(sec[0]));
    }
    let crc_stored = u32::from_be_bytes([
        sec[sec.len() - 4],
        sec[sec.len() - 3],
        sec[sec.len() - 2],
        sec[sec.len() - 1],
    ]);
    let crc = crc32_mpeg2(&sec[..sec.len() - 4]);
    if crc != crc_stored {
        return Err(PsiError::Crc {
            table_id: sec[0],
            computed: crc,
            stored: crc_stored,
        });
    }
    Ok(LongSection {
        table_id: sec[0],
        id: u16::from_be_bytes([sec[3], sec[4]]),
        version: (sec[5] >> 1) & 0x1F,
        current_next: sec[5] & 1 != 0,
        body: &sec[8..sec.len() - 4],
    })
}

/// PAT body: the first program with a non-zero number, as (program_number, pmt_pid).
pub fn pat_first_program(body: &[u8]) -> Option<(u16, u16)> {
    body.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        let pid = u16::from_be_bytes([e[2] & 0x1F, e[3]]);
        (program != 0).then_some((program, pid))
    })
}

/// PMT body: (pcr_pid, streams).
pub fn parse_pmt(body: &[u8]) -> Result<(u16, Vec<StreamInfo>), PsiError> {
    if body.len() < 4 {
        return Err(PsiError::PmtTooShort);
    }
    let pcr_pid = u16::from_be_bytes([body[0] & 0x1F, body[1]]);
    let info_len = (u16::from_be_bytes([body[2] & 0x0F, body[3]])) as usize;
    let mut rest = body
        .get(4 + info_len..)
        .ok_or(PsiError::ProgramInfoOverrun(info_len))?;
    let mut streams = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err(PsiError::EntryTruncated(rest.len()));
        }
        let stream_type = rest[0];
        let pid = u16::from_be_bytes([rest[1] & 0x1F, rest[2]]);
        let es_info_len = u16::from_be_bytes([rest[3] & 0x0F, rest[4]]) as usize;
        rest = rest.get(5 + es_info_len..).ok_or(PsiError::EsInfoOverrun {
            len: es_info_len,
            pid,
        })?;
        streams.push(StreamInfo { pid, stream_type });
    }
    Ok((pcr_pid, streams))
}

/// Builds a long-form section: header, body, CRC.
fn build_section(table_id: u8, id: u16, version: u8, body: &[u8]) -> Vec<u8> {
    let section_length = 5 + body.len() + 4;
    let mut s = Vec::with_capacity(3 + section_length);
    s.push(table_id);
    s.push(0xB0 | ((section_length >> 8) as u8 & 0x0F));
    s.push(section_length as u8);
    s.extend_from_slice(&id.to_be_bytes());
    s.push(0xC1 | ((version & 0x1F) << 1));
    s.push(0); // section_number
    s.push(0); // last_section_number
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A PAT with a single program.
pub fn build_pat(transport_stream_id: u16, program_number: u16, pmt_pid: u16) -> Vec<u8> {
    let mut body = [0u8; 4];
    body[..2].copy_from_slice(&program_number.to_be_bytes());
    body[2..].copy_from_slice(&(0xE000 | (pmt_pid & 0x1FFF)).to_be_bytes());
    build_section(TABLE_ID_PAT, transport_stream_id, 0, &body)
}

/// A PMT without descriptors.
pub fn build_pmt(
    program_number: u16,
    version: u8,
    pcr_pid: u16,
    streams: &[StreamInfo],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + 5 * streams.len());
    body.extend_from_slice(&(0xE000 | (pcr_pid & 0x1FFF)).to_be_bytes());
    body.extend_from_slice(&0xF000u16.to_be_bytes());
    for s in streams {
        body.push(s.stream_type);
        body.extend_from_slice(&(0xE000 | (s.pid & 0x1FFF)).to_be_bytes());
        body.extend_from_slice(&0xF000u16.to_be_bytes());
    }
    build_section(TABLE_ID_PMT, program_number, version, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_PAT: [u8; 16] = [
        0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x2A, 0xB1, 0x04,
        0xB2,
    ];

    #[test]
    fn build_pat_matches_ffmpeg() {
        assert_eq!(build_pat(1, 1, 0x1000), FFMPEG_PAT);
    }

    #[test]
    fn parse_ffmpeg_pat() {
        let s = parse_long_section(&FFMPEG_PAT).unwrap();
        assert_eq!(s.table_id, TABLE_ID_PAT);
        assert_eq!(pat_first_program(s.body), Some((1, 0x1000)));
        let mut bad = FFMPEG_PAT;
        bad[10] ^= 1;
        assert!(parse_long_section(&bad)
            .unwrap_err()
            .to_string()
            .contains("crc mismatch"));
        assert!(matches!(
            parse_long_section(&bad),
            Err(PsiError::Crc { table_id: 0, .. })
        ));
    }

    #[test]
    fn pmt_round_trip() {
        let streams = vec![
            StreamInfo {
                pid: 0x100,
                stream_type: 0x1B,
            },
            StreamInfo {
                pid: 0x101,
                stream_type: 0x0F,
            },
        ];
        let sec = build_pmt(1, 3, 0x100, &streams);
        let s = parse_long_section(&sec).unwrap();
        assert_eq!((s.table_id, s.id, s.version), (TABLE_ID_PMT, 1, 3));
        assert_eq!(parse_pmt(s.body).unwrap(), (0x100, streams));
    }

    #[test]
    fn pmt_overrun_is_error() {
        // program_info_length 10 with no bytes behind it.
        assert!(parse_pmt(&[0xE1, 0x00, 0xF0, 0x0A]).is_err());
        assert_eq!(
            parse_pmt(&[0xE1, 0x00, 0xF0, 0x0A]),
            Err(PsiError::ProgramInfoOverrun(10))
        );
        assert_eq!(
            PsiError::ProgramInfoOverrun(10).to_string(),
            "pmt program_info_length 10 overruns the section"
        );
        // stream entry with ES_info_length beyond the end.
        assert!(parse_pmt(&[0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x05]).is_err());
    }

    #[test]
    fn assembler_across_packets_and_pointer() {
        let sec = build_pmt(
            1,
            0,
            0x100,
            &[StreamInfo {
                pid: 0x100,
                stream_type: 0x1B,
            }],
        );
        let mut a = SectionAssembler::default();
        let mut got = Vec::new();
        // First piece with pointer 0, split in the middle of the section.
        let mut p1 = vec![0u8];
        p1.extend_from_slice(&sec[..5]);
        a.feed(&p1, true, |p| {
            if let SectionPiece::Section(s) = p {
                got.push(s.to_vec())
            }
        });
        assert!(got.is_empty());
        let mut p2 = sec[5..].to_vec();
        p2.extend_from_slice(&[0xFF; 20]);
        a.feed(&p2, false, |p| {
            if let SectionPiece::Section(s) = p {
                got.push(s.to_vec())
            }
        });
        assert_eq!(got, vec![sec.clone()]);
        // Two sections back to back in one payload.
        let mut p3 = vec![0u8];
        p3.extend_from_slice(&sec);
        p3.extend_from_slice(&sec);
        p3.push(0xFF);
        got.clear();
        a.feed(&p3, true, |p| {
            if let SectionPiece::Section(s) = p {
                got.push(s.to_vec())
            }
        });
        assert_eq!(got.len(), 2);
    }
}
