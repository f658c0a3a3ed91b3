//! The FLV push parser.

use bytes::{Buf, Bytes, BytesMut};

use super::{Tag, TagKind, HEADER_LEN, TAG_HEADER_LEN};
use crate::error::Diag;

/// Default for [`FlvReader::with_max_tag_size`]: 16 MiB, i.e. every size a tag header can express.
pub const DEFAULT_MAX_TAG_SIZE: u32 = 16 * 1024 * 1024;

/// Tags of a type other than audio, video and script are accepted only up to this size; a bigger
/// one is taken as a damaged header.
const OTHER_KIND_MAX_SIZE: u32 = 64 * 1024;

/// DataOffset values above this are taken as damage (version 1 files use 9).
const MAX_DATA_OFFSET: u32 = 64 * 1024;

/// While scanning for a tag header, input is taken in pieces of at least this size.
const RESYNC_CHUNK: usize = 64 * 1024;

/// What [`FlvReader`] produces, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvEvent {
    /// The 9-byte file header. `offset` is where it starts (0 unless garbage came first).
    Header {
        audio: bool,
        video: bool,
        offset: u64,
    },
    /// A complete tag (its PreviousTagSize is checked later, when it arrives).
    Tag(Tag),
    /// Something recovered from: a PreviousTagSize mismatch, damaged or missing bytes skipped, a
    /// truncated end.
    Warning(Diag),
}

/// Why a tag header is refused on the in-sync path (the reason a resync warning gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadHeader {
    /// The type byte has a reserved bit (0xC0) set.
    Reserved(u8),
    /// The type byte has the filter (encryption) bit set.
    Filtered(u8),
    /// An unknown tag type with a size above the limit for unknown types.
    UnknownTooLarge { kind: u8, size: u32, limit: u32 },
    /// A size above the reader's limit.
    TooLarge { size: u32, limit: u32 },
}

impl std::fmt::Display for BadHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BadHeader::Reserved(t) => write!(
                f,
                "tag header with reserved bits set in type byte 0x{t:02x}"
            ),
            BadHeader::Filtered(t) => write!(
                f,
                "tag header with the filter (encryption) bit set in type byte 0x{t:02x}"
            ),
            BadHeader::UnknownTooLarge { kind, size, limit } => write!(
                f,
                "tag header of unknown type {kind} with implausible size {size} (limit {limit})"
            ),
            BadHeader::TooLarge { size, limit } => {
                write!(f, "tag size {size} exceeds the limit of {limit} bytes")
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RawHeader {
    type_byte: u8,
    size: u32,
    timestamp: u32,
    stream_id: u32,
}

impl RawHeader {
    /// `b` must hold at least 11 bytes.
    fn parse(b: &[u8]) -> RawHeader {
        let u24 = |i: usize| u32::from_be_bytes([0, b[i], b[i + 1], b[i + 2]]);
        RawHeader {
            type_byte: b[0],
            size: u24(1),
            timestamp: u24(4) | (u32::from(b[7]) << 24),
            stream_id: u24(8),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Expecting the "FLV" signature.
    Start,
    /// Skipping the bytes between the 9-byte header and DataOffset.
    SkipHeaderExtra { remaining: u32 },
    /// Expecting PreviousTagSize0.
    PrevTagSize0,
    /// Expecting an 11-byte tag header.
    TagHeader,
    /// The header (still at the front of the buffer) was accepted; waiting for the body.
    Body { header: RawHeader },
    /// Expecting the PreviousTagSize of the tag just emitted.
    PrevTagSize { tag_offset: u64, expected: u32 },
    /// Scanning for a plausible tag header (or, before any header, the FLV signature).
    /// `start` is where the skipped stretch begins; `quiet` suppresses the warning when nothing
    /// is found (the reason was already reported).
    Resync {
        reason: String,
        start: u64,
        quiet: bool,
    },
    /// `finish` has run.
    Done,
}

enum Step {
    /// State changed or bytes were consumed: step again.
    Continue,
    /// Needs the buffer to hold this many bytes before it can go on (at end of stream: stop).
    Need(usize),
}

enum Verdict {
    Accept,
    Reject,
    Need(usize),
}

/// Streaming FLV parser. Feed bytes with [`push`](FlvReader::push) in chunks of any size, then call
/// [`finish`](FlvReader::finish) at the end of the stream. The events do not depend on chunking.
///
/// Memory is bounded: the buffer holds at most one tag plus a few headers (plus 64 KiB while
/// scanning damaged input). Bytes are copied once into the buffer; tag bodies are slices of it.
///
/// Recovery: a tag header with reserved or filter (encryption) bits set, a size above
/// `max_tag_size`, or an unknown type with a size above 64 KiB, and a PreviousTagSize that does not
/// match when no plausible tag header follows it, make the reader scan forward for a tag header of
/// type 8, 9 or 18 with stream id 0, a non-zero size within the limit, and either a matching
/// PreviousTagSize after its body or a plausible tag header after that. Such candidates are
/// confirmed only once all the bytes they need have arrived (or at `finish`), so the result does
/// not depend on chunking. Each skipped stretch yields one warning at its start offset.
///
/// Because a tag is emitted before its PreviousTagSize arrives, a tag with a damaged DataSize is
/// emitted with a wrong body; the warning that follows starts at that tag's offset (and the tags
/// it swallowed are then recovered by the scan, which restarts one byte after its header).
#[derive(Debug)]
pub struct FlvReader {
    max_tag_size: u32,
    state: State,
    buf: BytesMut,
    /// Absolute offset of `buf[0]`.
    buf_pos: u64,
    /// Whether an FLV header has been seen (only then is the signature no longer scanned for).
    header_seen: bool,
    /// The last emitted tag, header included, until its PreviousTagSize is confirmed: on a mismatch
    /// the scan restarts inside it.
    last_tag: Option<Bytes>,
}

impl Default for FlvReader {
    fn default() -> Self {
        FlvReader::new()
    }
}

impl FlvReader {
    pub fn new() -> FlvReader {
        FlvReader::with_max_tag_size(DEFAULT_MAX_TAG_SIZE)
    }

    /// A reader that treats tags whose DataSize exceeds `max_tag_size` as damage.
    pub fn with_max_tag_size(max_tag_size: u32) -> FlvReader {
        FlvReader {
            max_tag_size,
            state: State::Start,
            buf: BytesMut::new(),
            buf_pos: 0,
            header_seen: false,
            last_tag: None,
        }
    }

    /// Total bytes pushed so far.
    pub fn position(&self) -> u64 {
        self.buf_pos + self.buf.len() as u64
    }

    /// Feeds the next bytes of the stream. Ignored after [`finish`](FlvReader::finish).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<FlvEvent>) {
        let mut input = data;
        loop {
            match self.step(false, out) {
                Step::Continue => {}
                Step::Need(n) => {
                    if input.is_empty() || matches!(self.state, State::Done) {
                        return;
                    }
                    let mut want = n.saturating_sub(self.buf.len()).max(1);
                    if matches!(self.state, State::Resync { .. }) {
                        want = want.max(RESYNC_CHUNK);
                    }
                    let take = want.min(input.len());
                    let (now, rest) = input.split_at(take);
                    // Room for the rest of what is needed and the next tag's header, at once.
                    self.buf.reserve(want + 4 + TAG_HEADER_LEN);
                    self.buf.extend_from_slice(now);
                    input = rest;
                }
            }
        }
    }

    /// The reader's own buffer, with room reserved for `want` more bytes, for a caller that reads
    /// its input straight into it: appending there and then calling [`Self::parse_buffered`] is
    /// [`Self::push`] without copying the bytes (the tags' bodies are split off the buffer
    /// itself, and once they are dropped its allocation is used again). Append only; bytes already
    /// in the buffer are the reader's.
    pub fn input_buffer(&mut self, want: usize) -> &mut BytesMut {
        self.buf.reserve(want);
        &mut self.buf
    }

    /// Parses what was appended to [`Self::input_buffer`]. Ignored after
    /// [`finish`](FlvReader::finish).
    pub fn parse_buffered(&mut self, out: &mut Vec<FlvEvent>) {
        if matches!(self.state, State::Done) {
            self.consume(self.buf.len());
            return;
        }
        while let Step::Continue = self.step(false, out) {}
    }

    /// Ends the stream: reports a truncated last tag (and salvages tags from inside it, if any).
    pub fn finish(&mut self, out: &mut Vec<FlvEvent>) {
        while let Step::Continue = self.step(true, out) {}
        self.state = State::Done;
        self.consume(self.buf.len());
        self.buf = BytesMut::new();
        self.last_tag = None;
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.buf_pos += n as u64;
    }

    fn warn(out: &mut Vec<FlvEvent>, offset: u64, message: String) {
        out.push(FlvEvent::Warning(Diag::new(offset, message)));
    }

    fn resync(&mut self, reason: String, start: u64, quiet: bool) {
        self.state = State::Resync {
            reason,
            start,
            quiet,
        };
    }

    /// Checks a tag header against the rules for the normal (in-sync) path.
    fn check_header(&self, h: &RawHeader) -> Result<(), BadHeader> {
        if h.type_byte & 0xC0 != 0 {
            return Err(BadHeader::Reserved(h.type_byte));
        }
        if h.type_byte & 0x20 != 0 {
            return Err(BadHeader::Filtered(h.type_byte));
        }
        let kind = TagKind::from_u8(h.type_byte);
        let limit = match kind {
            TagKind::Other(_) => OTHER_KIND_MAX_SIZE.min(self.max_tag_size),
            _ => self.max_tag_size,
        };
        if h.size > limit {
            return Err(match kind {
                TagKind::Other(t) => BadHeader::UnknownTooLarge {
                    kind: t,
                    size: h.size,
                    limit,
                },
                _ => BadHeader::TooLarge {
                    size: h.size,
                    limit,
                },
            });
        }
        Ok(())
    }

    /// The stricter rules for a tag header found while scanning.
    fn strict_header(&self, h: &RawHeader) -> bool {
        matches!(h.type_byte, 8 | 9 | 18)
            && h.stream_id == 0
            && h.size > 0
            && self.check_header(h).is_ok()
    }

    /// Judges the candidate at `buf[0]` during a resync.
    fn candidate(&self, eof: bool) -> Verdict {
        let b = &self.buf[..];
        if b.first() == Some(&b'F') {
            // The FLV signature, strictly: version 1, no reserved flags, DataOffset 9, PTS0 0.
            const SIG_LEN: usize = HEADER_LEN + 4;
            if b.len() < SIG_LEN {
                return if eof {
                    Verdict::Reject
                } else {
                    Verdict::Need(SIG_LEN)
                };
            }
            let ok = &b[..4] == b"FLV\x01"
                && b[4] & !0x05 == 0
                && b[5..9] == [0, 0, 0, 9]
                && b[9..13] == [0, 0, 0, 0];
            return if ok { Verdict::Accept } else { Verdict::Reject };
        }
        if b.len() < TAG_HEADER_LEN {
            return if eof {
                Verdict::Reject
            } else {
                Verdict::Need(TAG_HEADER_LEN)
            };
        }
        let h = RawHeader::parse(b);
        if !self.strict_header(&h) {
            return Verdict::Reject;
        }
        let end = TAG_HEADER_LEN + h.size as usize;
        let with_pts = end + 4;
        if b.len() < with_pts {
            if eof {
                // Nothing more will come: let the normal path take it (and report a truncation).
                return Verdict::Accept;
            }
            return Verdict::Need(with_pts);
        }
        let pts = u32::from_be_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
        if pts == h.size + TAG_HEADER_LEN as u32 {
            return Verdict::Accept;
        }
        let next_end = with_pts + TAG_HEADER_LEN;
        if b.len() < next_end {
            return if eof {
                Verdict::Reject
            } else {
                Verdict::Need(next_end)
            };
        }
        if self.strict_header(&RawHeader::parse(&b[with_pts..])) {
            Verdict::Accept
        } else {
            Verdict::Reject
        }
    }

    fn step(&mut self, eof: bool, out: &mut Vec<FlvEvent>) -> Step {
        match &mut self.state {
            State::Done => Step::Need(usize::MAX),
            State::Start => {
                let n = self.buf.len();
                if !b"FLV".starts_with(&self.buf[..n.min(3)]) || (eof && n < 3 && n > 0) {
                    let reason = "input does not start with an flv header".to_string();
                    self.resync(reason, self.buf_pos, false);
                    return Step::Continue;
                }
                if n < HEADER_LEN {
                    if eof && n > 0 {
                        Self::warn(
                            out,
                            self.buf_pos,
                            format!("truncated flv header: {n} of {HEADER_LEN} bytes"),
                        );
                        self.consume(n);
                    }
                    return Step::Need(HEADER_LEN);
                }
                let b = &self.buf[..HEADER_LEN];
                let (version, flags) = (b[3], b[4]);
                let mut data_offset = u32::from_be_bytes([b[5], b[6], b[7], b[8]]);
                out.push(FlvEvent::Header {
                    audio: flags & 0x04 != 0,
                    video: flags & 0x01 != 0,
                    offset: self.buf_pos,
                });
                if version != 1 {
                    Self::warn(
                        out,
                        self.buf_pos + 3,
                        format!("flv version {version}, expected 1"),
                    );
                }
                if !(HEADER_LEN as u32..=MAX_DATA_OFFSET).contains(&data_offset) {
                    Self::warn(
                        out,
                        self.buf_pos + 5,
                        format!("flv header data offset {data_offset} is out of range, assuming 9"),
                    );
                    data_offset = HEADER_LEN as u32;
                }
                self.header_seen = true;
                self.consume(HEADER_LEN);
                let remaining = data_offset - HEADER_LEN as u32;
                self.state = if remaining > 0 {
                    State::SkipHeaderExtra { remaining }
                } else {
                    State::PrevTagSize0
                };
                Step::Continue
            }
            State::SkipHeaderExtra { remaining } => {
                let n = (*remaining as usize).min(self.buf.len());
                *remaining -= n as u32;
                let left = *remaining;
                self.consume(n);
                if left == 0 {
                    self.state = State::PrevTagSize0;
                    return Step::Continue;
                }
                if eof {
                    Self::warn(
                        out,
                        self.buf_pos,
                        format!("stream ends inside the flv header, {left} bytes before its end"),
                    );
                }
                Step::Need(left as usize)
            }
            State::PrevTagSize0 => {
                let n = self.buf.len();
                if n < 4 {
                    if eof && n > 0 {
                        Self::warn(
                            out,
                            self.buf_pos,
                            format!("truncated previous tag size 0: {n} of 4 bytes"),
                        );
                        self.consume(n);
                    }
                    return Step::Need(4);
                }
                let v = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if v == 0 {
                    self.consume(4);
                    self.state = State::TagHeader;
                } else {
                    let reason =
                        format!("expected previous tag size 0 after the header, found {v}");
                    self.resync(reason, self.buf_pos, false);
                }
                Step::Continue
            }
            State::TagHeader => {
                let n = self.buf.len();
                if n < TAG_HEADER_LEN {
                    if eof && n > 0 {
                        Self::warn(
                            out,
                            self.buf_pos,
                            format!("truncated tag header: {n} of {TAG_HEADER_LEN} bytes"),
                        );
                        self.consume(n);
                    }
                    return Step::Need(TAG_HEADER_LEN);
                }
                let header = RawHeader::parse(&self.buf);
                match self.check_header(&header) {
                    Ok(()) => {
                        // No reserve here: while earlier tags of this read are still held, the
                        // buffer cannot be reclaimed, and a reserve would copy it to fresh memory
                        // on every read that ends mid-tag. `push` reserves as it copies.
                        self.state = State::Body { header };
                    }
                    Err(reason) => self.resync(reason.to_string(), self.buf_pos, false),
                }
                Step::Continue
            }
            State::Body { header } => {
                let header = *header;
                let len = TAG_HEADER_LEN + header.size as usize;
                let n = self.buf.len();
                if n < len {
                    if eof {
                        let offset = self.buf_pos;
                        Self::warn(
                            out,
                            offset,
                            format!(
                                "truncated tag: header announces {} body bytes, {} missing",
                                header.size,
                                len - n
                            ),
                        );
                        // Salvage: a damaged size may have swallowed whole tags.
                        self.consume(1);
                        let reason = format!("data inside the truncated tag at offset {offset}");
                        self.resync(reason, offset + 1, true);
                        return Step::Continue;
                    }
                    return Step::Need(len);
                }
                let tag_offset = self.buf_pos;
                let whole = self.buf.split_to(len).freeze();
                self.buf_pos += len as u64;
                out.push(FlvEvent::Tag(Tag {
                    kind: TagKind::from_u8(header.type_byte),
                    timestamp: header.timestamp,
                    stream_id: header.stream_id,
                    body: whole.slice(TAG_HEADER_LEN..),
                    offset: tag_offset,
                }));
                self.last_tag = Some(whole);
                self.state = State::PrevTagSize {
                    tag_offset,
                    expected: len as u32,
                };
                Step::Continue
            }
            State::PrevTagSize {
                tag_offset,
                expected,
            } => {
                let (tag_offset, expected) = (*tag_offset, *expected);
                let n = self.buf.len();
                if n < 4 {
                    if eof {
                        let msg = if n == 0 {
                            format!("stream ends before the previous tag size of the tag at offset {tag_offset}")
                        } else {
                            format!("truncated previous tag size of the tag at offset {tag_offset}: {n} of 4 bytes")
                        };
                        Self::warn(out, self.buf_pos, msg);
                        self.consume(n);
                    }
                    return Step::Need(4);
                }
                let v = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if v == expected {
                    self.consume(4);
                    self.last_tag = None;
                    self.state = State::TagHeader;
                    return Step::Continue;
                }
                let mismatch = format!(
                    "previous tag size {v} does not match the {expected}-byte tag at offset {tag_offset}"
                );
                let next = 4 + TAG_HEADER_LEN;
                if n < next && !eof {
                    return Step::Need(next);
                }
                if n < next || self.strict_header(&RawHeader::parse(&self.buf[4..])) {
                    // The chain goes on (or the stream ends): only the size field is wrong.
                    Self::warn(out, self.buf_pos, mismatch);
                    self.consume(4);
                    self.last_tag = None;
                    self.state = State::TagHeader;
                    return Step::Continue;
                }
                // The tag's size was probably damaged: scan again from just after its start.
                let last = self.last_tag.take().unwrap_or_default();
                let mut rebuilt = BytesMut::with_capacity(last.len() + n);
                rebuilt.extend_from_slice(last.get(1..).unwrap_or_default());
                rebuilt.extend_from_slice(&self.buf);
                self.buf = rebuilt;
                self.buf_pos = tag_offset + 1;
                let reason = format!("{mismatch}, and no tag header follows it");
                self.resync(reason, tag_offset, false);
                Step::Continue
            }
            State::Resync { .. } => self.step_resync(eof, out),
        }
    }

    fn step_resync(&mut self, eof: bool, out: &mut Vec<FlvEvent>) -> Step {
        loop {
            let b = &self.buf[..];
            let tag = memchr::memchr3(8, 9, 18, b);
            let sig = if self.header_seen {
                None
            } else {
                memchr::memchr(b'F', b)
            };
            let found = match (tag, sig) {
                (Some(a), Some(c)) => Some(a.min(c)),
                (a, c) => a.or(c),
            };
            let Some(i) = found else {
                self.consume(self.buf.len());
                if eof {
                    self.end_resync(None, out);
                }
                return Step::Need(1);
            };
            self.consume(i);
            match self.candidate(eof) {
                Verdict::Need(n) => return Step::Need(n),
                Verdict::Reject => self.consume(1),
                Verdict::Accept => {
                    let at = self.buf_pos;
                    self.end_resync(Some(at), out);
                    self.state = if self.buf.first() == Some(&b'F') {
                        State::Start
                    } else {
                        State::TagHeader
                    };
                    return Step::Continue;
                }
            }
        }
    }

    /// Reports the end of a resync: found a header at `at`, or reached the end of the stream.
    fn end_resync(&mut self, at: Option<u64>, out: &mut Vec<FlvEvent>) {
        let state = std::mem::replace(&mut self.state, State::Done);
        let State::Resync {
            reason,
            start,
            quiet,
        } = state
        else {
            return;
        };
        let skipped = self.buf_pos - start;
        match at {
            Some(at) => Self::warn(
                out,
                start,
                format!("{reason}; skipped {skipped} bytes, resynchronised at offset {at}"),
            ),
            None if !quiet => Self::warn(
                out,
                start,
                format!("{reason}; skipped {skipped} bytes to the end of the stream"),
            ),
            None => {}
        }
    }
}
