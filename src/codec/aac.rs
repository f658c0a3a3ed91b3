//! AAC elementary streams: ADTS framing (read and write) and the AudioSpecificConfig.
//!
//! Channel counts: [`AudioConfig::channels`] holds the number of channels; channel configuration 7
//! (7.1) is 8 channels, and 0 (layout given by a program config element in the stream) is 0.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::Diag;
use crate::media::AudioConfig;

/// Sampling frequencies by index (ISO 14496-3 Table 1.18).
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Largest ADTS frame: frame_length is 13 bits.
pub const MAX_ADTS_FRAME: usize = (1 << 13) - 1;

const HEADER_LEN: usize = 7;

/// The sampling frequency index of a rate, if it has one.
pub fn sample_rate_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES
        .iter()
        .position(|&r| r == rate)
        .map(|i| i as u8)
}

fn channels_from_config(config: u8) -> Option<u8> {
    match config {
        0..=6 => Some(config),
        7 => Some(8),
        _ => None,
    }
}

fn config_from_channels(channels: u8) -> Option<u8> {
    match channels {
        0..=6 => Some(channels),
        8 => Some(7),
        _ => None,
    }
}

/// One ADTS frame's payload and the configuration its header describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtsFrame {
    pub config: AudioConfig,
    /// The raw AAC frame: no ADTS header, no CRC.
    pub payload: Bytes,
    /// Absolute byte offset of the frame's ADTS header in the input stream.
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// The fixed-header bits (ID, layer, protection_absent, profile, sampling index, private bit,
    /// channel configuration, original/copy, home) as they sit in bytes 1 to 3.
    key: [u8; 3],
    object_type: u8,
    sfi: u8,
    channel_config: u8,
    header_len: usize,
    frame_length: usize,
    raw_blocks: u8,
}

fn parse_header(b: &[u8]) -> Option<Header> {
    let b = b.get(..HEADER_LEN)?;
    if b[0] != 0xff || b[1] & 0xf0 != 0xf0 {
        return None;
    }
    if b[1] & 0x06 != 0 {
        return None; // layer must be 0
    }
    let protection_absent = b[1] & 1 == 1;
    let sfi = (b[2] >> 2) & 0x0f;
    if usize::from(sfi) >= SAMPLE_RATES.len() {
        return None;
    }
    let header_len = if protection_absent { 7 } else { 9 };
    let frame_length =
        (usize::from(b[3] & 3) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
    if frame_length <= header_len {
        return None;
    }
    Some(Header {
        key: [b[1], b[2], b[3] & 0xf0],
        object_type: (b[2] >> 6) + 1,
        sfi,
        channel_config: ((b[2] & 1) << 2) | (b[3] >> 6),
        header_len,
        frame_length,
        raw_blocks: b[6] & 3,
    })
}

/// Finds the next possible sync word (0xFFF) at or after `from`.
fn find_sync(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(rel) = memchr::memchr(0xff, buf.get(i..)?) {
        let p = i + rel;
        match buf.get(p + 1) {
            Some(&n) if n & 0xf0 == 0xf0 => return Some(p),
            Some(_) => i = p + 1,
            // A lone 0xFF at the end may start a sync word.
            None => return Some(p),
        }
    }
    None
}

/// Push parser for an ADTS stream.
///
/// A header is accepted when it follows the previous frame directly with the same fixed header;
/// otherwise (at the start, after garbage, or when the fixed header changes) it must be confirmed
/// by a valid header with the same fixed fields right after the frame (at the end of the stream a
/// complete frame is accepted without one). Garbage is skipped with one warning per lost run.
/// Output does not depend on chunking. Buffering is bounded by one maximum frame plus one push.
#[derive(Debug, Default)]
pub struct AdtsReader {
    buf: BytesMut,
    buf_offset: u64,
    /// Fixed header of the frame that ended exactly at `buf[0]`.
    locked: Option<[u8; 3]>,
    /// Start of the current run of skipped bytes.
    lost_at: Option<u64>,
    config: Option<([u8; 3], AudioConfig)>,
}

impl AdtsReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; appends every frame that is now complete.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<AdtsFrame>, warnings: &mut Vec<Diag>) {
        if data.is_empty() {
            return;
        }
        self.buf.extend_from_slice(data);
        self.process(false, out, warnings);
    }

    /// Ends the stream: emits the last frame, reports a truncated frame or trailing garbage.
    pub fn finish(&mut self, out: &mut Vec<AdtsFrame>, warnings: &mut Vec<Diag>) {
        self.process(true, out, warnings);
        let end = self.buf_offset + self.buf.len() as u64;
        if let Some(at) = self.lost_at.take() {
            warnings.push(Diag::new(
                at,
                format!(
                    "expected an adts header, lost sync: skipped {} bytes up to the end",
                    end - at
                ),
            ));
        }
        self.buf.clear();
        self.buf_offset = end;
        self.locked = None;
    }

    fn skip(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        if self.lost_at.is_none() {
            self.lost_at = Some(self.buf_offset);
        }
        self.locked = None;
        self.buf.advance(n);
        self.buf_offset += n as u64;
    }

    fn process(&mut self, last: bool, out: &mut Vec<AdtsFrame>, warnings: &mut Vec<Diag>) {
        loop {
            if self.buf.is_empty() {
                return;
            }
            let Some(h) = parse_header(&self.buf) else {
                if self.buf.len() < HEADER_LEN && !last && self.buf[0] == 0xff {
                    // Could still become a header.
                    if self.buf.len() < 2 || self.buf[1] & 0xf0 == 0xf0 {
                        return;
                    }
                }
                match find_sync(&self.buf, 1) {
                    Some(p) => self.skip(p),
                    None => {
                        let n = self.buf.len();
                        self.skip(n);
                    }
                }
                if self.buf.len() < HEADER_LEN && !last {
                    return;
                }
                continue;
            };
            let len = h.frame_length;
            let confirmed = if self.locked == Some(h.key) {
                if self.buf.len() < len {
                    if !last {
                        return;
                    }
                    self.truncated(&h, warnings);
                    return;
                }
                true
            } else if self.buf.len() >= len + HEADER_LEN {
                parse_header(&self.buf[len..]).is_some_and(|n| n.key == h.key)
            } else if !last {
                return;
            } else if self.buf.len() >= len {
                // End of stream: a complete frame needs no confirmation, unless the bytes after it
                // show it is wrong.
                let tail = &self.buf[len..];
                tail.is_empty() || tail.len() < HEADER_LEN && tail[0] == 0xff
            } else {
                // An unconfirmed header running past the end: most likely a false sync word.
                false
            };
            if !confirmed {
                match find_sync(&self.buf, 1) {
                    Some(p) => self.skip(p),
                    None => {
                        let n = self.buf.len();
                        self.skip(n);
                    }
                }
                continue;
            }
            if let Some(at) = self.lost_at.take() {
                warnings.push(Diag::new(
                    at,
                    format!(
                        "expected an adts header, lost sync: skipped {} bytes",
                        self.buf_offset - at
                    ),
                ));
            }
            let offset = self.buf_offset;
            let frame = self.buf.split_to(len).freeze();
            self.buf_offset += len as u64;
            self.locked = Some(h.key);
            if h.raw_blocks > 0 {
                warnings.push(Diag::new(
                    offset,
                    format!(
                        "expected one raw data block per adts frame, found {}; frame skipped",
                        u32::from(h.raw_blocks) + 1
                    ),
                ));
                continue;
            }
            let config = self.config_for(&h);
            out.push(AdtsFrame {
                config,
                payload: frame.slice(h.header_len..),
                offset,
            });
        }
    }

    fn truncated(&mut self, h: &Header, warnings: &mut Vec<Diag>) {
        if let Some(at) = self.lost_at.take() {
            warnings.push(Diag::new(
                at,
                format!(
                    "expected an adts header, lost sync: skipped {} bytes",
                    self.buf_offset - at
                ),
            ));
        }
        warnings.push(Diag::new(
            self.buf_offset,
            format!(
                "expected an adts frame of {} bytes, found only {} before the end; dropped",
                h.frame_length,
                self.buf.len()
            ),
        ));
        let n = self.buf.len();
        self.buf.advance(n);
        self.buf_offset += n as u64;
    }

    fn config_for(&mut self, h: &Header) -> AudioConfig {
        if let Some((key, cfg)) = &self.config {
            if *key == h.key {
                return cfg.clone();
            }
        }
        let sample_rate = SAMPLE_RATES[usize::from(h.sfi)];
        let channels = channels_from_config(h.channel_config).unwrap_or(0);
        let cfg = AudioConfig {
            asc: asc_bytes(h.object_type, sample_rate, channels),
            object_type: h.object_type,
            sample_rate,
            channels,
        };
        self.config = Some((h.key, cfg.clone()));
        cfg
    }
}

/// What is wrong with AAC data or with a configuration handed to this module.
///
/// Displayed as the message alone: an AudioSpecificConfig's offset is relative to the config, not
/// a stream position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AacError {
    /// A truncated or invalid AudioSpecificConfig; the offset is the byte of the config where
    /// reading stopped or the bad field starts.
    Asc(Diag),
    /// ADTS has no object type field for this one (it signals 1 to 4).
    AdtsObjectType(u8),
    /// ADTS has no sampling frequency index for this rate (Hz).
    AdtsSampleRate(u32),
    /// ADTS has no channel configuration for this many channels.
    AdtsChannels(u8),
    /// A raw frame of this many bytes does not fit ADTS's 13-bit frame length.
    AdtsFrameSize(usize),
}

impl AacError {
    /// The located problem, for the kinds that have a byte offset.
    pub fn diag(&self) -> Option<&Diag> {
        match self {
            AacError::Asc(d) => Some(d),
            _ => None,
        }
    }
}

impl std::fmt::Display for AacError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AacError::Asc(d) => f.write_str(&d.message),
            AacError::AdtsObjectType(t) => {
                write!(
                    f,
                    "expected an aac object type of 1 to 4 for adts, found {t}"
                )
            }
            AacError::AdtsSampleRate(r) => {
                write!(f, "expected a sample rate adts can signal, found {r} hz")
            }
            AacError::AdtsChannels(c) => {
                write!(f, "expected 0 to 6 or 8 channels for adts, found {c}")
            }
            AacError::AdtsFrameSize(n) => write!(
                f,
                "expected an aac frame of at most {} bytes for adts, found {n}",
                MAX_ADTS_FRAME - HEADER_LEN
            ),
        }
    }
}

impl std::error::Error for AacError {}

/// Shim while `pipeline::TsOut::event` (src/pipeline.rs, being split) still returns
/// `Result<_, String>` and applies `?` to [`write_adts_header`]: the same text. Remove once it
/// returns a typed error.
impl From<AacError> for String {
    fn from(e: AacError) -> String {
        e.to_string()
    }
}

/// Appends a 7-byte ADTS header (MPEG-4, no CRC) for a raw AAC frame of `payload_len` bytes.
pub fn write_adts_header(
    cfg: &AudioConfig,
    payload_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), AacError> {
    if !(1..=4).contains(&cfg.object_type) {
        return Err(AacError::AdtsObjectType(cfg.object_type));
    }
    let sfi =
        sample_rate_index(cfg.sample_rate).ok_or(AacError::AdtsSampleRate(cfg.sample_rate))?;
    let chan = config_from_channels(cfg.channels).ok_or(AacError::AdtsChannels(cfg.channels))?;
    let len = payload_len
        .checked_add(HEADER_LEN)
        .filter(|&l| l <= MAX_ADTS_FRAME)
        .ok_or(AacError::AdtsFrameSize(payload_len))?;
    let fullness = 0x7ffu16;
    out.extend_from_slice(&[
        0xff,
        0xf1,
        ((cfg.object_type - 1) << 6) | (sfi << 2) | (chan >> 2),
        ((chan & 3) << 6) | (len >> 11) as u8,
        (len >> 3) as u8,
        (((len & 7) as u8) << 5) | (fullness >> 6) as u8,
        ((fullness & 0x3f) as u8) << 2,
    ]);
    Ok(())
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    /// The byte the next bit is in.
    fn byte_pos(&self) -> u64 {
        (self.pos / 8) as u64
    }

    fn read(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data.get(self.pos / 8).ok_or_else(|| {
                AacError::Asc(Diag::new(
                    self.data.len() as u64,
                    format!(
                        "expected more audio specific config bits, found the end after {} bytes",
                        self.data.len()
                    ),
                ))
            })?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

/// Parses an AudioSpecificConfig (ISO 14496-3 1.6.2.1): object type (with escape 31), sampling
/// frequency (with explicit index 15) and channel configuration. For SBR/PS signalled explicitly
/// (object type 5 or 29) the values are those of the core; the rest of the config is not read.
pub fn parse_asc(data: &[u8]) -> Result<AudioConfig, AacError> {
    let bad = |at: u64, m: String| AacError::Asc(Diag::new(at, m));
    let mut r = Bits { data, pos: 0 };
    let mut object_type = r.read(5)?;
    if object_type == 31 {
        object_type = 32 + r.read(6)?;
    }
    if object_type == 0 {
        return Err(bad(
            0,
            "expected an audio object type, found 0 (null)".into(),
        ));
    }
    let at = r.byte_pos();
    let sfi = r.read(4)?;
    let sample_rate = if sfi == 15 {
        r.read(24)?
    } else {
        *SAMPLE_RATES.get(sfi as usize).ok_or_else(|| {
            bad(
                at,
                format!("expected a sampling frequency index, found reserved {sfi}"),
            )
        })?
    };
    let at = r.byte_pos();
    let chan = r.read(4)? as u8;
    let channels = channels_from_config(chan).ok_or_else(|| {
        bad(
            at,
            format!("expected a channel configuration of 0 to 7, found {chan}"),
        )
    })?;
    Ok(AudioConfig {
        asc: Bytes::copy_from_slice(data),
        object_type: object_type as u8,
        sample_rate,
        channels,
    })
}

/// The AudioSpecificConfig for a plain configuration, as ffmpeg writes it when it builds one from
/// an ADTS header: object type, frequency index, channel configuration and three zero
/// GASpecificConfig bits (2 bytes for the common case). Object types from 31 on use the escape,
/// rates outside the table the explicit 24-bit frequency; channel counts without a configuration
/// are written as 0.
pub fn asc_bytes(object_type: u8, sample_rate: u32, channels: u8) -> Bytes {
    let mut bits: Vec<(u32, u32)> = Vec::with_capacity(6);
    if object_type >= 31 {
        bits.push((31, 5));
        bits.push((u32::from(object_type - 32) & 0x3f, 6));
    } else {
        bits.push((u32::from(object_type), 5));
    }
    match sample_rate_index(sample_rate) {
        Some(i) => bits.push((u32::from(i), 4)),
        None => {
            bits.push((15, 4));
            bits.push((sample_rate & 0xff_ffff, 24));
        }
    }
    bits.push((u32::from(config_from_channels(channels).unwrap_or(0)), 4));
    bits.push((0, 3));
    let mut acc: u64 = 0;
    let mut n = 0u32;
    let mut out = Vec::with_capacity(8);
    for (v, w) in bits {
        acc = (acc << w) | u64::from(v);
        n += w;
        while n >= 8 {
            out.push((acc >> (n - 8)) as u8);
            n -= 8;
        }
    }
    if n > 0 {
        out.push((acc << (8 - n)) as u8);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEREO: &[u8] = include_bytes!("../../tests/fixtures/codec/sine-44100-stereo.aac");
    const MONO: &[u8] = include_bytes!("../../tests/fixtures/codec/sine-48000-mono.aac");

    fn read(chunks: &[&[u8]]) -> (Vec<AdtsFrame>, Vec<Diag>) {
        let mut r = AdtsReader::new();
        let (mut out, mut w) = (Vec::new(), Vec::new());
        for c in chunks {
            r.push(c, &mut out, &mut w);
        }
        r.finish(&mut out, &mut w);
        (out, w)
    }

    fn check_chunking(input: &[u8]) -> (Vec<AdtsFrame>, Vec<Diag>) {
        let whole = read(&[input]);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(read(&[a, b]), whole, "split at {i}");
        }
        let ones: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(read(&ones), whole, "1-byte pushes");
        whole
    }

    /// The AAC sequence header payload (after AF 00) of the last one in an FLV file.
    fn flv_asc(flv: &[u8]) -> Vec<u8> {
        let mut p = 13;
        let mut asc = Vec::new();
        while p + 11 <= flv.len() {
            let n = u32::from_be_bytes([0, flv[p + 1], flv[p + 2], flv[p + 3]]) as usize;
            let body = &flv[p + 11..p + 11 + n];
            if flv[p] == 8 && body.len() >= 2 && body[1] == 0 {
                asc = body[2..].to_vec();
            }
            p += 11 + n + 4;
        }
        asc
    }

    #[test]
    fn fixture_frames_and_asc_match_ffmpeg_flv() {
        // (adts, flv made from it, frames, sample rate, channels)
        type Case<'a> = (&'a [u8], &'a [u8], usize, u32, u8);
        let cases: [Case; 2] = [
            (
                STEREO,
                include_bytes!("../../tests/fixtures/codec/sine-44100-stereo.from-adts.flv"),
                45,
                44100,
                2,
            ),
            (
                MONO,
                include_bytes!("../../tests/fixtures/codec/sine-48000-mono.from-adts.flv"),
                25,
                48000,
                1,
            ),
        ];
        for (adts, flv, n, rate, ch) in cases {
            let (frames, w) = check_chunking(adts);
            assert!(w.is_empty(), "{w:?}");
            assert_eq!(frames.len(), n);
            let c = &frames[0].config;
            assert_eq!((c.object_type, c.sample_rate, c.channels), (2, rate, ch));
            assert_eq!(&c.asc[..], &flv_asc(flv)[..]);
            assert_eq!(parse_asc(&c.asc).unwrap(), *c);
            // Frames tile the input.
            let mut pos = 0u64;
            for f in &frames {
                assert_eq!(f.offset, pos);
                pos += 7 + f.payload.len() as u64;
            }
            assert_eq!(pos, adts.len() as u64);
        }
        assert_eq!(&asc_bytes(2, 44100, 2)[..], &[0x12, 0x10]);
    }

    #[test]
    fn header_round_trip() {
        let (frames, _) = read(&[STEREO]);
        let mut rebuilt = Vec::new();
        for f in &frames {
            write_adts_header(&f.config, f.payload.len(), &mut rebuilt).unwrap();
            rebuilt.extend_from_slice(&f.payload);
        }
        // ffmpeg writes the same header fields (MPEG-4, no CRC, fullness 0x7FF).
        assert_eq!(rebuilt, STEREO);
        for ot in 1..=4u8 {
            for &rate in &SAMPLE_RATES {
                for ch in [0u8, 1, 2, 6, 8] {
                    let cfg = AudioConfig {
                        asc: asc_bytes(ot, rate, ch),
                        object_type: ot,
                        sample_rate: rate,
                        channels: ch,
                    };
                    for len in [1usize, 100, MAX_ADTS_FRAME - 7] {
                        let mut buf = Vec::new();
                        write_adts_header(&cfg, len, &mut buf).unwrap();
                        buf.resize(7 + len, 0xAB);
                        let (f, w) = read(&[&buf]);
                        assert!(w.is_empty());
                        assert_eq!(f.len(), 1);
                        assert_eq!(f[0].config, cfg);
                        assert_eq!(f[0].payload.len(), len);
                        assert_eq!(parse_asc(&cfg.asc).unwrap(), cfg);
                    }
                }
            }
        }
        let mut cfg = frames[0].config.clone();
        let mut out = Vec::new();
        assert!(write_adts_header(&cfg, MAX_ADTS_FRAME - 6, &mut out).is_err());
        cfg.sample_rate = 44000;
        assert!(write_adts_header(&cfg, 10, &mut out).is_err());
        cfg.sample_rate = 44100;
        cfg.object_type = 5;
        assert!(write_adts_header(&cfg, 10, &mut out).is_err());
        cfg.object_type = 2;
        cfg.channels = 7;
        assert!(write_adts_header(&cfg, 10, &mut out).is_err());
        assert!(out.is_empty());
        // Each refusal names its kind, in the words it always used.
        assert_eq!(
            write_adts_header(&cfg, 10, &mut out),
            Err(AacError::AdtsChannels(7))
        );
        assert_eq!(
            AacError::AdtsChannels(7).to_string(),
            "expected 0 to 6 or 8 channels for adts, found 7"
        );
        cfg.channels = 2;
        let e = write_adts_header(&cfg, MAX_ADTS_FRAME - 6, &mut out).unwrap_err();
        assert_eq!(e, AacError::AdtsFrameSize(MAX_ADTS_FRAME - 6));
        assert_eq!(
            e.to_string(),
            format!(
                "expected an aac frame of at most {} bytes for adts, found {}",
                MAX_ADTS_FRAME - 7,
                MAX_ADTS_FRAME - 6
            )
        );
        assert!(out.is_empty());
    }

    #[test]
    fn asc_escapes() {
        // Object type 42 (escape) at 44 kHz explicit frequency, stereo.
        let asc = asc_bytes(42, 44000, 2);
        let cfg = parse_asc(&asc).unwrap();
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (42, 44000, 2)
        );
        assert_eq!(&asc_bytes(2, 48000, 1)[..], &[0x11, 0x88]);
        assert_eq!(&asc_bytes(5, 24000, 2)[..], &[0x2b, 0x10]);
        // ffmpeg's own encoder extradata: LC 44.1 kHz stereo plus an SBR sync extension.
        let cfg = parse_asc(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(
            (cfg.object_type, cfg.sample_rate, cfg.channels),
            (2, 44100, 2)
        );
        assert!(parse_asc(&[0x12]).is_err());
        assert!(parse_asc(&[]).is_err());
        assert!(parse_asc(&[0x00, 0x00]).is_err());
        assert!(parse_asc(&[0x16, 0x90]).is_err()); // reserved frequency index 13
        assert!(parse_asc(&[0x12, 0x40]).is_err()); // channel configuration 8
                                                    // Located in the config: where the bits ran out, or where the bad field starts.
        let at = |d: &[u8]| parse_asc(d).unwrap_err().diag().map(|d| d.offset);
        assert_eq!(at(&[0x12]), Some(1));
        assert_eq!(at(&[]), Some(0));
        assert_eq!(at(&[0x00, 0x00]), Some(0));
        assert_eq!(at(&[0x16, 0x90]), Some(0));
        assert_eq!(at(&[0x12, 0x40]), Some(1));
        assert_eq!(
            parse_asc(&[0x12, 0x40]).unwrap_err().to_string(),
            "expected a channel configuration of 0 to 7, found 8"
        );
    }

    #[test]
    fn garbage_resync() {
        let (clean, _) = read(&[MONO]);
        let ends: Vec<usize> = clean
            .iter()
            .scan(0, |pos, f| {
                *pos += 7 + f.payload.len();
                Some(*pos)
            })
            .collect();
        // Garbage before the first frame (with a false sync word), between frames 1 and 2 (with
        // false sync words), and inside frame 3.
        let mut input = b"\xff\xf1junk\xff".to_vec();
        input.extend_from_slice(&MONO[..ends[1]]);
        input.extend_from_slice(b"\x00\xff\xff\xf1\x50");
        input.extend_from_slice(&MONO[ends[1]..ends[2] + 10]);
        input.extend_from_slice(b"GARBAGE");
        input.extend_from_slice(&MONO[ends[2] + 10..]);
        let (frames, w) = check_chunking(&input);
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(w[0].offset, 0);
        assert!(w[0].message.contains("skipped 7 bytes"), "{}", w[0].message);
        assert_eq!(w[1].offset, (7 + ends[1]) as u64);
        assert!(w[1].message.contains("skipped 5 bytes"), "{}", w[1].message);
        // In sync, frame 3's header is trusted: the frame takes the garbage in and leaves its own
        // last 7 bytes behind, which are skipped.
        assert_eq!(w[2].offset, (7 + ends[3] + 5) as u64);
        assert!(w[2].message.contains("skipped 7 bytes"), "{}", w[2].message);
        assert_eq!(frames.len(), clean.len());
        for (i, (a, b)) in frames.iter().zip(&clean).enumerate() {
            if i != 3 {
                assert_eq!(a.payload, b.payload, "frame {i}");
            }
        }
        assert_eq!(frames[4].offset, clean[4].offset + 7 + 5 + 7);
        // A frame followed by garbage before sync is established cannot be confirmed: dropped.
        let mut input = MONO[..ends[0]].to_vec();
        input.extend_from_slice(b"xyz");
        input.extend_from_slice(&MONO[ends[0]..]);
        let (frames, w) = check_chunking(&input);
        assert_eq!(frames.len(), clean.len() - 1);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].offset, 0);
    }

    #[test]
    fn truncation_and_crc_and_raw_blocks() {
        let (clean, _) = read(&[MONO]);
        let (frames, w) = check_chunking(&MONO[..MONO.len() - 3]);
        assert_eq!(frames.len(), clean.len() - 1);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("found only"), "{}", w[0].message);
        // CRC present: header with protection_absent = 0 and 2 CRC bytes.
        let mut input = Vec::new();
        for f in &clean[..3] {
            let mut h = Vec::new();
            write_adts_header(&f.config, f.payload.len() + 2, &mut h).unwrap();
            h[1] &= !1;
            input.extend_from_slice(&h);
            input.extend_from_slice(b"\xab\xcd");
            input.extend_from_slice(&f.payload);
        }
        let (frames, w) = check_chunking(&input);
        assert!(w.is_empty());
        assert_eq!(frames.len(), 3);
        for (a, b) in frames.iter().zip(&clean) {
            assert_eq!(a.payload, b.payload);
        }
        // number_of_raw_data_blocks_in_frame = 1: warned and skipped, sync kept.
        let mut input = Vec::new();
        for (i, f) in clean[..3].iter().enumerate() {
            let mut h = Vec::new();
            write_adts_header(&f.config, f.payload.len(), &mut h).unwrap();
            if i == 1 {
                h[6] |= 1;
            }
            input.extend_from_slice(&h);
            input.extend_from_slice(&f.payload);
        }
        let (frames, w) = check_chunking(&input);
        assert_eq!(frames.len(), 2);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("raw data block"));
    }

    #[test]
    fn random_mutations_chunk_invariant() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let mut input = STEREO.to_vec();
            for _ in 0..(rnd() % 10) {
                let i = (rnd() as usize) % input.len();
                input[i] = rnd() as u8;
            }
            let whole = read(&[&input]);
            let cut = (rnd() as usize) % input.len();
            let (a, b) = input.split_at(cut);
            assert_eq!(read(&[a, b]), whole, "cut {cut}");
            let sevens: Vec<&[u8]> = input.chunks(7).collect();
            assert_eq!(read(&sevens), whole);
        }
    }

    #[test]
    fn pure_garbage_bounded() {
        let mut r = AdtsReader::new();
        let (mut out, mut w) = (Vec::new(), Vec::new());
        let junk: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for _ in 0..10 {
            r.push(&junk, &mut out, &mut w);
            assert!(r.buf.len() <= MAX_ADTS_FRAME + 7);
        }
        r.finish(&mut out, &mut w);
        assert!(w.len() <= 2, "{w:?}");
        let (_, w) = check_chunking(b"\xff\xf1\x50\x80\x01\xff\xfc\xff\xff\xff");
        assert!(!w.is_empty());
    }
}
