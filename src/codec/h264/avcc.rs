//! AVCC (length-prefixed) access units, conversion to and from Annex B, and the avcC record.

use bytes::Bytes;
use memchr::memmem;

use super::{nal_type, nal_types, parse_sps, H264Error};
use crate::error::Diag;
use crate::media::VideoConfig;

/// Iterates over the NAL units of a length-prefixed (AVCC) buffer. `length_size` is 1, 2, 3 or 4.
///
/// Strict: a truncated length prefix or a length running past the end yields one `Err` (located in
/// `data`) and ends the iteration. Zero-length NAL units are yielded as empty slices.
pub fn avcc_nals(data: &[u8], length_size: u8) -> impl Iterator<Item = Result<&[u8], H264Error>> {
    let mut rest = data;
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || rest.is_empty() {
            return None;
        }
        let ls = usize::from(length_size);
        if !(1..=4).contains(&ls) {
            done = true;
            return Some(Err(H264Error::LengthSize(length_size)));
        }
        if rest.len() < ls {
            done = true;
            return Some(Err(H264Error::NalLength(Diag::new(
                pos as u64,
                format!(
                    "expected a {ls}-byte nal length at byte {pos}, found only {} bytes",
                    rest.len()
                ),
            ))));
        }
        let len = rest[..ls]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let body = &rest[ls..];
        if body.len() < len {
            done = true;
            return Some(Err(H264Error::NalLength(Diag::new(
                pos as u64,
                format!(
                    "expected a nal unit of {len} bytes at byte {pos}, found only {} bytes",
                    body.len()
                ),
            ))));
        }
        let (nal, tail) = body.split_at(len);
        rest = tail;
        pos += ls + len;
        Some(Ok(nal))
    })
}

/// Iterates over the NAL units of a complete Annex B buffer (3- or 4-byte start codes). Bytes
/// before the first start code, empty NAL units and trailing zero bytes of each NAL unit are
/// skipped.
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = memmem::find_iter(data, b"\x00\x00\x01")
        .map(|p| p + 3)
        .peekable();
    std::iter::from_fn(move || loop {
        let start = starts.next()?;
        let end = starts.peek().map_or(data.len(), |n| n - 3);
        let nal = data.get(start..end).unwrap_or(&[]);
        let len = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        if len > 0 {
            return Some(&nal[..len]);
        }
    })
}

/// Converts a complete Annex B buffer (one or more NAL units with start codes) to AVCC with 4-byte
/// lengths, appended to `out`. Bytes before the first start code, empty NAL units and trailing zero
/// bytes of each NAL unit are dropped. Returns the number of NAL units written.
pub fn annexb_to_avcc(data: &[u8], out: &mut Vec<u8>) -> usize {
    let mut count = 0;
    for nal in annexb_nals(data) {
        if let Ok(l) = u32::try_from(nal.len()) {
            out.extend_from_slice(&l.to_be_bytes());
            out.extend_from_slice(nal);
            count += 1;
        }
    }
    count
}

/// Rewrites an AVCC buffer with `length_size`-byte lengths (1 to 3, as some avcC records declare)
/// to 4-byte lengths, river's in-memory form.
pub fn avcc_relength(data: &[u8], length_size: u8) -> Result<Bytes, H264Error> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in avcc_nals(data, length_size) {
        let nal = nal?;
        let l = u32::try_from(nal.len()).map_err(|_| {
            // Where the unit's length prefix starts.
            let at = (nal.as_ptr() as usize - data.as_ptr() as usize) - usize::from(length_size);
            H264Error::NalLength(Diag::new(at as u64, "nal unit too large"))
        })?;
        out.extend_from_slice(&l.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(Bytes::from(out))
}

/// Whether an AVCC access unit (4-byte lengths) holds an IDR slice. Stops at the first malformed
/// length.
pub fn avcc_is_keyframe(data: &[u8]) -> bool {
    avcc_nals(data, 4)
        .map_while(Result::ok)
        .any(|n| nal_type(n) == nal_types::IDR)
}

const AUD: &[u8] = b"\x00\x00\x00\x01\x09\xf0";

/// Writes one access unit as Annex B: an AUD, then (when `keyframe` and the unit carries no SPS)
/// the configuration's SPS and PPS, then every NAL unit of the unit except AUDs. Every NAL unit gets
/// a 4-byte start code. A malformed length ends the unit early (what parsed is written).
///
/// This is how out-of-band parameter sets (FLV, MP4) are put back in band before each IDR for
/// MPEG-TS.
pub fn write_annexb_au(avcc_au: &[u8], cfg: &VideoConfig, keyframe: bool, out: &mut Vec<u8>) {
    let mut pieces = Vec::new();
    annexb_pieces(avcc_au, cfg, keyframe, &mut pieces);
    crate::codec::concat_into(&pieces, out);
}

/// [`write_annexb_au`] as pieces that borrow the unit and `cfg`, for a muxer that copies them once
/// into its packets ([`crate::format::ts::TsMuxer::write_pes_pieces`]).
pub fn annexb_pieces<'a>(
    avcc_au: &'a [u8],
    cfg: &'a VideoConfig,
    keyframe: bool,
    pieces: &mut Vec<&'a [u8]>,
) {
    crate::codec::annexb_pieces(
        avcc_au,
        AUD,
        cfg.sps.iter().chain(cfg.pps.iter()),
        |n| nal_type(n) == nal_types::SPS,
        |n| nal_type(n) == nal_types::AUD,
        keyframe,
        pieces,
    );
}

/// An AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avcc {
    pub profile_idc: u8,
    pub profile_compatibility: u8,
    pub level_idc: u8,
    /// Bytes per NAL length prefix: 1, 2 or 4.
    pub length_size: u8,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    /// The high-profile extension (profile_idc 100, 110, 122, 144), when present.
    pub ext: Option<AvccExt>,
}

/// The fields of the avcC high-profile extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvccExt {
    pub chroma_format: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    pub sps_ext: Vec<Bytes>,
}

impl Avcc {
    /// The [`VideoConfig`] for this record's parameter sets.
    pub fn video_config(&self) -> Result<VideoConfig, H264Error> {
        super::video_config(self.sps.clone(), self.pps.clone())
    }
}

fn has_high_ext(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 144)
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, message: String) -> H264Error {
        H264Error::Avcc(Diag::new(self.pos as u64, message))
    }

    fn u8(&mut self, what: &str) -> Result<u8, H264Error> {
        let b = *self.data.get(self.pos).ok_or_else(|| {
            self.err(format!(
                "expected {what} at byte {} of the avcc record, found its end",
                self.pos
            ))
        })?;
        self.pos += 1;
        Ok(b)
    }

    fn sets(&mut self, count: usize, what: &str) -> Result<Vec<Bytes>, H264Error> {
        let mut v = Vec::with_capacity(count);
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([self.u8(what)?, self.u8(what)?]));
            let body = self.data.get(self.pos..self.pos + len).ok_or_else(|| {
                self.err(format!(
                    "expected a {len}-byte {what} at byte {} of the avcc record, found {} bytes",
                    self.pos,
                    self.data.len() - self.pos
                ))
            })?;
            self.pos += len;
            v.push(Bytes::copy_from_slice(body));
        }
        Ok(v)
    }
}

/// Parses an AVCDecoderConfigurationRecord. Tolerates a missing or truncated high-profile
/// extension and trailing bytes.
pub fn parse_avcc(data: &[u8]) -> Result<Avcc, H264Error> {
    let mut c = Cursor { data, pos: 0 };
    let version = c.u8("configurationVersion")?;
    if version != 1 {
        return Err(H264Error::Avcc(Diag::new(
            0,
            format!("expected avcc configurationVersion 1, found {version}"),
        )));
    }
    let profile_idc = c.u8("AVCProfileIndication")?;
    let profile_compatibility = c.u8("profile_compatibility")?;
    let level_idc = c.u8("AVCLevelIndication")?;
    let length_size = (c.u8("lengthSizeMinusOne")? & 3) + 1;
    if length_size == 3 {
        return Err(H264Error::Avcc(Diag::new(
            4,
            "expected an avcc nal length size of 1, 2 or 4, found 3",
        )));
    }
    let num_sps = usize::from(c.u8("numOfSequenceParameterSets")? & 0x1f);
    let sps = c.sets(num_sps, "sps")?;
    let num_pps = usize::from(c.u8("numOfPictureParameterSets")?);
    let pps = c.sets(num_pps, "pps")?;
    let mut ext = None;
    if has_high_ext(profile_idc) && data.len() >= c.pos + 4 {
        let mut e = Cursor { data, pos: c.pos };
        let parsed = (|| -> Result<AvccExt, H264Error> {
            let chroma_format = e.u8("chroma_format")? & 3;
            let bit_depth_luma_minus8 = e.u8("bit_depth_luma_minus8")? & 7;
            let bit_depth_chroma_minus8 = e.u8("bit_depth_chroma_minus8")? & 7;
            let n = usize::from(e.u8("numOfSequenceParameterSetExt")?);
            let sps_ext = e.sets(n, "sps extension")?;
            Ok(AvccExt {
                chroma_format,
                bit_depth_luma_minus8,
                bit_depth_chroma_minus8,
                sps_ext,
            })
        })();
        ext = parsed.ok();
    }
    Ok(Avcc {
        profile_idc,
        profile_compatibility,
        level_idc,
        length_size,
        sps,
        pps,
        ext,
    })
}

/// Writes the AVCDecoderConfigurationRecord for a configuration the way ffmpeg does: 4-byte NAL
/// lengths, profile/compatibility/level copied from the first SPS, and for profile_idc 100, 110,
/// 122 and 144 the high-profile extension (chroma format and bit depths from the SPS, no SPS
/// extensions). Parameter sets longer than 65535 bytes, SPS past the 31st and PPS past the 255th
/// cannot be represented and are left out; the extension is left out if the SPS does not parse.
pub fn write_avcc(cfg: &VideoConfig) -> Bytes {
    let first = cfg.sps.first().map(|b| &b[..]).unwrap_or(&[]);
    let profile_idc = first.get(1).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(
        16 + cfg
            .sps
            .iter()
            .chain(&cfg.pps)
            .map(|s| s.len() + 2)
            .sum::<usize>(),
    );
    out.extend_from_slice(&[
        1,
        profile_idc,
        first.get(2).copied().unwrap_or(0),
        first.get(3).copied().unwrap_or(0),
        0xff,
    ]);
    let sps: Vec<&Bytes> = cfg
        .sps
        .iter()
        .filter(|s| s.len() <= usize::from(u16::MAX))
        .take(31)
        .collect();
    out.push(0xe0 | sps.len() as u8);
    for s in sps {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }
    let pps: Vec<&Bytes> = cfg
        .pps
        .iter()
        .filter(|s| s.len() <= usize::from(u16::MAX))
        .take(255)
        .collect();
    out.push(pps.len() as u8);
    for p in pps {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    if has_high_ext(profile_idc) {
        if let Ok(sps) = parse_sps(first) {
            let ci = &sps.chroma_info;
            out.extend_from_slice(&[
                0xfc | (ci.chroma_format.to_u32() & 3) as u8,
                0xf8 | (ci.bit_depth_luma_minus8 & 7),
                0xf8 | (ci.bit_depth_chroma_minus8 & 7),
                0,
            ]);
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::fixture_avcc;
    use super::*;

    fn cfg_from_fixture() -> VideoConfig {
        parse_avcc(&fixture_avcc()).unwrap().video_config().unwrap()
    }

    #[test]
    fn avcc_matches_ffmpeg_bytes() {
        let ff = fixture_avcc();
        let parsed = parse_avcc(&ff).unwrap();
        assert_eq!(parsed.profile_idc, 100);
        assert_eq!(parsed.length_size, 4);
        assert_eq!(parsed.sps.len(), 1);
        assert_eq!(parsed.pps.len(), 1);
        assert_eq!(
            parsed.ext,
            Some(AvccExt {
                chroma_format: 1,
                bit_depth_luma_minus8: 0,
                bit_depth_chroma_minus8: 0,
                sps_ext: vec![],
            })
        );
        let cfg = parsed.video_config().unwrap();
        assert_eq!(&write_avcc(&cfg)[..], &ff[..], "byte-exact with ffmpeg");
    }

    #[test]
    fn avcc_round_trip_and_tolerance() {
        let cfg = cfg_from_fixture();
        let rec = write_avcc(&cfg);
        let back = parse_avcc(&rec).unwrap();
        assert_eq!(back.sps, cfg.sps);
        assert_eq!(back.pps, cfg.pps);
        assert_eq!(back.video_config().unwrap(), cfg);
        // Without the extension, and with trailing bytes.
        let short = &rec[..rec.len() - 4];
        assert_eq!(parse_avcc(short).unwrap().ext, None);
        assert_eq!(parse_avcc(short).unwrap().sps, cfg.sps);
        let mut long = rec.to_vec();
        long.extend_from_slice(b"junk");
        assert_eq!(parse_avcc(&long).unwrap().sps, cfg.sps);
        // Every truncation inside the mandatory part is an error, never a panic.
        for n in 0..short.len() {
            assert!(parse_avcc(&rec[..n]).is_err(), "truncated to {n}");
        }
        assert!(parse_avcc(b"\x02\x64\x00\x0b\xff\xe0\x00").is_err());
        assert!(parse_avcc(b"\x01\x64\x00\x0b\xfe\xe0\x00").is_err());
    }

    #[test]
    fn avcc_errors_are_located_in_the_record() {
        let e = parse_avcc(b"\x02\x64\x00\x0b\xff\xe0\x00").unwrap_err();
        assert_eq!(
            e,
            H264Error::Avcc(Diag::new(
                0,
                "expected avcc configurationVersion 1, found 2"
            ))
        );
        let e = parse_avcc(b"\x01\x64\x00\x0b\xfe\xe0\x00").unwrap_err();
        assert_eq!(e.diag().map(|d| d.offset), Some(4));
        // Cut inside the SPS length: the offset is where the record ends.
        let e = parse_avcc(b"\x01\x64\x00\x0b\xff\xe1\x00").unwrap_err();
        assert_eq!(e.diag().map(|d| d.offset), Some(7));
        assert_eq!(
            e.to_string(),
            "expected sps at byte 7 of the avcc record, found its end"
        );
        // One SPS of 4 bytes announced, 1 there.
        let e = parse_avcc(b"\x01\x64\x00\x0b\xff\xe1\x00\x04\x67").unwrap_err();
        assert_eq!(e.diag().map(|d| d.offset), Some(8));
        // Moved into the stream the record came from.
        let d = e.diag().unwrap().clone().shift(1000);
        assert_eq!(d.offset, 1008);
    }

    #[test]
    fn avcc_nals_strict() {
        let data = b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x01\x65";
        let v: Vec<_> = avcc_nals(data, 4).collect();
        assert_eq!(v, vec![Ok(&b"\x09\xf0"[..]), Ok(&b"\x65"[..])]);
        let v: Vec<_> = avcc_nals(&data[..10], 4).collect();
        assert_eq!(v.len(), 2);
        assert!(v[1].is_err());
        assert_eq!(
            v[1],
            Err(H264Error::NalLength(Diag::new(
                6,
                "expected a nal unit of 1 bytes at byte 6, found only 0 bytes"
            )))
        );
        let v: Vec<_> = avcc_nals(&data[..8], 4).collect();
        assert!(v[1].is_err());
        assert_eq!(v[1].as_ref().unwrap_err().diag().map(|d| d.offset), Some(6));
        assert_eq!(
            avcc_relength(b"\x02\x09\xf0\x05\x65", 1)
                .unwrap_err()
                .diag()
                .map(|d| d.offset),
            Some(3)
        );
        let v: Vec<_> = avcc_nals(b"\x02\x09\xf0\x01\x65", 1).collect();
        assert_eq!(v, vec![Ok(&b"\x09\xf0"[..]), Ok(&b"\x65"[..])]);
        assert!(avcc_nals(b"\x01", 0).next().unwrap().is_err());
        assert_eq!(
            avcc_nals(b"\x01", 0).next(),
            Some(Err(H264Error::LengthSize(0)))
        );
        assert_eq!(avcc_nals(b"", 4).count(), 0);
        assert!(avcc_is_keyframe(
            b"\x00\x00\x00\x01\x67\x00\x00\x00\x01\x65"
        ));
        assert!(!avcc_is_keyframe(
            b"\x00\x00\x00\x01\x41\x00\x00\x00\x09\x65"
        ));
    }

    #[test]
    fn annexb_avcc_round_trip() {
        let annexb = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x67\x64\x00\x00\x00\x01\x65\x88\x00";
        let mut avcc = Vec::new();
        assert_eq!(annexb_to_avcc(annexb, &mut avcc), 3);
        assert_eq!(
            avcc,
            b"\x00\x00\x00\x02\x09\xf0\x00\x00\x00\x02\x67\x64\x00\x00\x00\x02\x65\x88"
        );
        let cfg = cfg_from_fixture();
        let mut out = Vec::new();
        write_annexb_au(&avcc, &cfg, true, &mut out);
        // AUD once, SPS present so no config parameter sets.
        assert_eq!(
            out,
            b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67\x64\x00\x00\x00\x01\x65\x88"
        );
        let mut back = Vec::new();
        annexb_to_avcc(&out, &mut back);
        assert_eq!(back, avcc);
    }

    #[test]
    fn write_annexb_inserts_parameter_sets() {
        let cfg = cfg_from_fixture();
        let au = b"\x00\x00\x00\x02\x65\x88";
        let mut out = Vec::new();
        write_annexb_au(au, &cfg, true, &mut out);
        let mut expect = b"\x00\x00\x00\x01\x09\xf0".to_vec();
        for ps in cfg.sps.iter().chain(&cfg.pps) {
            expect.extend_from_slice(b"\x00\x00\x00\x01");
            expect.extend_from_slice(ps);
        }
        expect.extend_from_slice(b"\x00\x00\x00\x01\x65\x88");
        assert_eq!(out, expect);
        out.clear();
        write_annexb_au(au, &cfg, false, &mut out);
        assert_eq!(out, b"\x00\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x65\x88");
    }
}
