//! SDP (RFC 4566) as RTSP uses it: parse what a publisher ANNOUNCEs (ffmpeg, GStreamer), and write
//! the description river serves for playing.
//!
//! Codecs: H.264 (RFC 6184: `sprop-parameter-sets`, `packetization-mode`) and AAC (RFC 3640
//! `mpeg4-generic`, `mode=AAC-hbr`, `config=`, `sizelength`/`indexlength`/`indexdeltalength`).
//! fmtp parameter names are trimmed and compared case-insensitively (ffmpeg writes `; name=value`
//! with a space after each separator).

use bytes::Bytes;

use crate::codec::aac::{self, AacError};
use crate::codec::h264::{self, H264Error};
use crate::codec::h265::{self, H265Error};
use crate::media::{AudioConfig, VideoCodec, VideoConfig};
use crate::proto::util::{base64_decode, base64_encode, hex, unhex, Base64Error};

/// Largest SDP accepted, in bytes.
pub const MAX_SDP: usize = 64 * 1024;
/// Most media sections accepted.
pub const MAX_MEDIA: usize = 8;

/// An SDP that river cannot use, or a media section whose H.264/AAC parameters are malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// More than [`MAX_SDP`] bytes.
    TooLarge,
    /// More than [`MAX_MEDIA`] media sections.
    TooManyMedia,
    /// No `v=` line.
    NoVersion,
    /// A malformed line: its number (from 1) and what was expected.
    Line { line: usize, message: String },
    /// `sprop-parameter-sets` that is not base64.
    SpropBase64(Base64Error),
    /// `sprop-parameter-sets` without a PPS.
    SpropNoPps,
    /// `sprop-parameter-sets` whose SPS does not parse.
    H264(H264Error),
    /// `sprop-vps`/`sprop-sps`/`sprop-pps` that are not base64 (which one, and why).
    H265Sprop(&'static str, Base64Error),
    /// `sprop-vps`/`sprop-sps`/`sprop-pps` whose SPS does not parse, or one of them missing.
    H265(H265Error),
    /// An AAC `config=` that does not parse.
    Aac(AacError),
    /// Other AAC fmtp parameters (`config=` missing or not hex, a length out of range): what was
    /// expected and what came.
    AacFmtp(String),
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpError::TooLarge => write!(f, "expected an SDP of at most {MAX_SDP} bytes"),
            SdpError::TooManyMedia => write!(f, "expected at most {MAX_MEDIA} media sections"),
            SdpError::NoVersion => {
                f.write_str("expected an SDP starting with v=0, found no v= line")
            }
            SdpError::Line { line, message } => write!(f, "line {line}: {message}"),
            SdpError::SpropBase64(e) => write!(f, "bad sprop-parameter-sets: {e}"),
            SdpError::SpropNoPps => {
                f.write_str("expected a pps in sprop-parameter-sets, found none")
            }
            SdpError::H264(e) => write!(f, "{e}"),
            SdpError::H265Sprop(n, e) => write!(f, "bad {n}: {e}"),
            SdpError::H265(e) => write!(f, "{e}"),
            SdpError::Aac(e) => write!(f, "{e}"),
            SdpError::AacFmtp(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SdpError {}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp {
    /// Session-level `a=control:` (usually `*`).
    pub control: Option<String>,
    pub media: Vec<Media>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    /// `video`, `audio`, …
    pub kind: String,
    pub protocol: String,
    /// The first payload type of the `m=` line.
    pub payload_type: u8,
    /// `a=rtpmap` of that payload type: encoding name (as written), clock rate, channels.
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    /// `a=fmtp` parameters of that payload type, names lower-cased and trimmed.
    pub fmtp: Vec<(String, String)>,
    pub control: Option<String>,
}

/// What a media section carries, as far as river understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    H264 {
        /// From `sprop-parameter-sets`, when present and parseable.
        config: Option<VideoConfig>,
        packetization_mode: u8,
    },
    /// RFC 7798 without decoding order numbers (`sprop-max-don-diff` absent or 0).
    H265 {
        /// From `sprop-vps`, `sprop-sps` and `sprop-pps`, when all present and parseable.
        config: Option<VideoConfig>,
    },
    Aac {
        config: AudioConfig,
        size_length: u8,
        index_length: u8,
        index_delta_length: u8,
    },
    Unsupported(String),
}

impl Media {
    pub fn fmtp(&self, name: &str) -> Option<&str> {
        self.fmtp
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Interprets the section. `Err` for a section that claims H.264/AAC but is malformed.
    pub fn codec(&self) -> Result<Codec, SdpError> {
        let enc = self.encoding.to_ascii_lowercase();
        match enc.as_str() {
            "h264" => {
                let mode = self
                    .fmtp("packetization-mode")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let config = match self.fmtp("sprop-parameter-sets") {
                    Some(s) => Some(parse_sprop(s)?),
                    None => None,
                };
                Ok(Codec::H264 {
                    config,
                    packetization_mode: mode,
                })
            }
            "h265" => {
                let don = self.fmtp("sprop-max-don-diff").unwrap_or("0").trim();
                if don != "0" {
                    return Ok(Codec::Unsupported(format!(
                        "H265 with decoding order numbers (sprop-max-don-diff={don})"
                    )));
                }
                let mut sets = Vec::new();
                for name in ["sprop-vps", "sprop-sps", "sprop-pps"] {
                    let mut v = Vec::new();
                    for part in self.fmtp(name).unwrap_or("").split(',') {
                        let part = part.trim();
                        if !part.is_empty() {
                            let nal =
                                base64_decode(part).map_err(|e| SdpError::H265Sprop(name, e))?;
                            v.push(Bytes::from(nal));
                        }
                    }
                    sets.push(v);
                }
                let config = if sets.iter().all(|v| !v.is_empty()) {
                    let pps = sets.pop().unwrap_or_default();
                    let sps = sets.pop().unwrap_or_default();
                    let vps = sets.pop().unwrap_or_default();
                    Some(h265::video_config(vps, sps, pps).map_err(SdpError::H265)?)
                } else {
                    None
                };
                Ok(Codec::H265 { config })
            }
            "mpeg4-generic" => {
                let mode = self.fmtp("mode").unwrap_or("");
                if !mode.eq_ignore_ascii_case("aac-hbr") {
                    return Ok(Codec::Unsupported(format!("mpeg4-generic mode {mode:?}")));
                }
                let cfg = self.fmtp("config").ok_or_else(|| {
                    SdpError::AacFmtp("expected config= in the AAC fmtp, found none".into())
                })?;
                let asc = unhex(cfg).ok_or_else(|| {
                    SdpError::AacFmtp(format!("expected hex AAC config, found {cfg:?}"))
                })?;
                let config = aac::parse_asc(&asc).map_err(SdpError::Aac)?;
                let num = |n: &str, d: u8| -> Result<u8, SdpError> {
                    match self.fmtp(n) {
                        None => Ok(d),
                        Some(v) => v.parse::<u8>().ok().filter(|&x| x <= 32).ok_or_else(|| {
                            SdpError::AacFmtp(format!(
                                "expected a small number for {n}, found {v:?}"
                            ))
                        }),
                    }
                };
                let size_length = num("sizelength", 13)?;
                if size_length == 0 {
                    return Err(SdpError::AacFmtp("expected sizelength > 0".into()));
                }
                Ok(Codec::Aac {
                    config,
                    size_length,
                    index_length: num("indexlength", 3)?,
                    index_delta_length: num("indexdeltalength", 3)?,
                })
            }
            _ => Ok(Codec::Unsupported(self.encoding.clone())),
        }
    }
}

fn parse_sprop(s: &str) -> Result<VideoConfig, SdpError> {
    let mut sps = Vec::new();
    let mut pps = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let nal = base64_decode(part).map_err(SdpError::SpropBase64)?;
        match h264::nal_type(&nal) {
            h264::nal_types::SPS => sps.push(Bytes::from(nal)),
            h264::nal_types::PPS => pps.push(Bytes::from(nal)),
            _ => {}
        }
    }
    if pps.is_empty() {
        return Err(SdpError::SpropNoPps);
    }
    h264::video_config(sps, pps).map_err(SdpError::H264)
}

impl Sdp {
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        if text.len() > MAX_SDP {
            return Err(SdpError::TooLarge);
        }
        let mut sdp = Sdp::default();
        let mut saw_version = false;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(SdpError::Line {
                    line: n + 1,
                    message: format!("expected 'x=value', found {line:?}"),
                });
            };
            match k {
                "v" => saw_version = true,
                "m" => {
                    if sdp.media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooManyMedia);
                    }
                    let mut f = v.split_whitespace();
                    let kind = f.next().unwrap_or("").to_string();
                    let _port = f.next();
                    let protocol = f.next().unwrap_or("").to_string();
                    let pt = f
                        .next()
                        .and_then(|p| p.parse::<u8>().ok())
                        .filter(|&p| p < 128)
                        .ok_or_else(|| SdpError::Line {
                            line: n + 1,
                            message: "expected a payload type in m=".into(),
                        })?;
                    sdp.media.push(Media {
                        kind,
                        protocol,
                        payload_type: pt,
                        ..Default::default()
                    });
                }
                "a" => {
                    let (name, value) = match v.split_once(':') {
                        Some((a, b)) => (a, b),
                        None => (v, ""),
                    };
                    match (name, sdp.media.last_mut()) {
                        ("control", None) => sdp.control = Some(value.trim().to_string()),
                        ("control", Some(m)) => m.control = Some(value.trim().to_string()),
                        ("rtpmap", Some(m)) => {
                            let (pt, rest) = value.split_once(' ').unwrap_or((value, ""));
                            if pt.trim().parse::<u8>().ok() != Some(m.payload_type) {
                                continue;
                            }
                            let mut p = rest.trim().split('/');
                            m.encoding = p.next().unwrap_or("").to_string();
                            m.clock_rate = p.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                            m.channels = p.next().and_then(|c| c.parse().ok());
                        }
                        ("fmtp", Some(m)) => {
                            let (pt, rest) = value.split_once(' ').unwrap_or((value, ""));
                            if pt.trim().parse::<u8>().ok() != Some(m.payload_type) {
                                continue;
                            }
                            m.fmtp = rest
                                .split(';')
                                .filter_map(|kv| {
                                    let (k, v) = kv.split_once('=')?;
                                    Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
                                })
                                .take(64)
                                .collect();
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(SdpError::NoVersion);
        }
        // Static payload types without rtpmap.
        for m in &mut sdp.media {
            if m.encoding.is_empty() && m.payload_type < 96 {
                m.encoding = format!("static/{}", m.payload_type);
            }
        }
        Ok(sdp)
    }
}

/// Control attribute river gives each track it serves.
pub fn track_control(index: usize) -> String {
    format!("trackID={index}")
}

/// Payload types river uses when it serves.
pub const PT_H264: u8 = 96;
pub const PT_H265: u8 = 96;
pub const PT_AAC: u8 = 97;

/// Writes the SDP for playing a broadcast: video track first (if any), then audio. `origin` is the
/// server's address for the `o=` and `c=` lines.
pub fn write(
    video: Option<&VideoConfig>,
    audio: Option<&AudioConfig>,
    origin: &str,
    name: &str,
) -> String {
    let ip4 = !origin.contains(':');
    let net = if ip4 { "IP4" } else { "IP6" };
    let mut s = format!(
        "v=0\r\no=- 0 0 IN {net} {origin}\r\ns={name}\r\nc=IN {net} {}\r\nt=0 0\r\na=tool:river {}\r\na=control:*\r\n",
        if ip4 { "0.0.0.0" } else { "::" },
        env!("CARGO_PKG_VERSION")
    );
    let mut idx = 0;
    if let Some(v) = video.filter(|v| v.codec == VideoCodec::H265) {
        let b64 = |sets: &[Bytes]| -> String {
            sets.iter()
                .map(|n| base64_encode(n))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut fmtp = String::new();
        if !v.vps.is_empty() && !v.sps.is_empty() && !v.pps.is_empty() {
            fmtp = format!(
                "\r\na=fmtp:{PT_H265} sprop-vps={};sprop-sps={};sprop-pps={}",
                b64(&v.vps),
                b64(&v.sps),
                b64(&v.pps)
            );
        }
        s.push_str(&format!(
            "m=video 0 RTP/AVP {PT_H265}\r\na=rtpmap:{PT_H265} H265/90000{fmtp}\r\n"
        ));
        if let Some((n, d)) = v.frame_rate.filter(|&(_, d)| d > 0) {
            s.push_str(&format!(
                "a=framerate:{}\r\n",
                trim_rate(n as f64 / d as f64)
            ));
        }
        s.push_str(&format!("a=control:{}\r\n", track_control(idx)));
        idx += 1;
    } else if let Some(v) = video {
        let mut sprop: Vec<String> = v.sps.iter().map(|n| base64_encode(n)).collect();
        sprop.extend(v.pps.iter().map(|n| base64_encode(n)));
        let sprop = sprop.join(",");
        // Parameter sets that would not read back (no PPS, say) are left out: the player then
        // takes them from the stream (each keyframe is preceded by them).
        let sprop = if parse_sprop(&sprop).is_ok() {
            format!(";sprop-parameter-sets={sprop}")
        } else {
            String::new()
        };
        let plid = v
            .sps
            .first()
            .filter(|s| s.len() >= 4)
            .map(|s| hex(&s[1..4]))
            .unwrap_or_else(|| "42e01f".to_string());
        s.push_str(&format!(
            "m=video 0 RTP/AVP {PT_H264}\r\na=rtpmap:{PT_H264} H264/90000\r\na=fmtp:{PT_H264} packetization-mode=1;profile-level-id={plid}{sprop}\r\n"
        ));
        if let Some((n, d)) = v.frame_rate.filter(|&(_, d)| d > 0) {
            s.push_str(&format!(
                "a=framerate:{}\r\n",
                trim_rate(n as f64 / d as f64)
            ));
        }
        s.push_str(&format!("a=control:{}\r\n", track_control(idx)));
        idx += 1;
    }
    if let Some(a) = audio {
        s.push_str(&format!(
            "m=audio 0 RTP/AVP {PT_AAC}\r\na=rtpmap:{PT_AAC} MPEG4-GENERIC/{}/{}\r\na=fmtp:{PT_AAC} profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={}\r\na=control:{}\r\n",
            a.sample_rate,
            a.channels.max(1),
            hex(&a.asc),
            track_control(idx)
        ));
    }
    s
}

fn trim_rate(r: f64) -> String {
    let s = format!("{r:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) fn ffmpeg_sdp() -> &'static str {
        super::tests::FFMPEG_SDP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ffmpeg 5.1 ANNOUNCEs for `-c copy` of the x264 + AAC FLV fixture (from
    /// tests/fixtures/rtsp/ffmpeg-publish-tcp.c2s.bin).
    pub(crate) const FFMPEG_SDP: &str = "v=0
o=- 0 0 IN IP4 127.0.0.1
s=No Name
c=IN IP4 127.0.0.1
t=0 0
a=tool:libavformat LIBAVFORMAT_VERSION
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z/QAC5GbKFCPxOAiAAADAAIAAAMAeB4oUyw=,aOvjxEhE; profile-level-id=F4000B
a=control:streamid=0
m=audio 0 RTP/AVP 97
b=AS:69
a=rtpmap:97 MPEG4-GENERIC/44100/1
a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=120856E500
a=control:streamid=1
";

    #[test]
    fn parses_ffmpeg_announce() {
        let sdp = Sdp::parse(FFMPEG_SDP).unwrap();
        assert_eq!(sdp.media.len(), 2);
        let v = &sdp.media[0];
        assert_eq!(v.control.as_deref(), Some("streamid=0"));
        assert_eq!(
            v.fmtp("profile-level-id"),
            Some("F4000B"),
            "leading space trimmed"
        );
        match v.codec().unwrap() {
            Codec::H264 {
                config: Some(c),
                packetization_mode: 1,
            } => {
                assert_eq!((c.width, c.height), (160, 120));
                assert_eq!(c.pps.len(), 1);
            }
            c => panic!("{c:?}"),
        }
        let a = &sdp.media[1];
        assert_eq!(a.clock_rate, 44100);
        assert_eq!(a.channels, Some(1));
        match a.codec().unwrap() {
            Codec::Aac {
                config,
                size_length: 13,
                index_length: 3,
                index_delta_length: 3,
            } => {
                assert_eq!((config.sample_rate, config.channels), (44100, 1));
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn round_trip_of_what_river_writes() {
        let sdp = Sdp::parse(FFMPEG_SDP).unwrap();
        let Codec::H264 {
            config: Some(v), ..
        } = sdp.media[0].codec().unwrap()
        else {
            panic!()
        };
        let Codec::Aac { config: a, .. } = sdp.media[1].codec().unwrap() else {
            panic!()
        };
        let text = write(Some(&v), Some(&a), "127.0.0.1", "live/cam");
        let back = Sdp::parse(&text).unwrap();
        assert_eq!(back.media[0].control.as_deref(), Some("trackID=0"));
        assert_eq!(back.media[1].control.as_deref(), Some("trackID=1"));
        assert_eq!(
            back.media[0].codec().unwrap(),
            Codec::H264 {
                config: Some(v),
                packetization_mode: 1
            }
        );
        match back.media[1].codec().unwrap() {
            Codec::Aac { config, .. } => assert_eq!(config, a),
            c => panic!("{c:?}"),
        }
        let text = write(None, Some(&a), "::1", "x");
        assert!(text.contains("IN IP6 ::1"));
        assert!(text.contains("trackID=0"));
    }

    /// Found by fuzz/rtp_view: an FLV avcC with an SPS and no PPS gave an SDP whose
    /// sprop-parameter-sets river's own parser (and players) reject. Such sets are left out.
    #[test]
    fn parameter_sets_that_do_not_read_back_are_left_out() {
        let sdp = Sdp::parse(FFMPEG_SDP).unwrap();
        let Codec::H264 {
            config: Some(mut v),
            ..
        } = sdp.media[0].codec().unwrap()
        else {
            panic!()
        };
        v.pps.clear();
        let text = write(Some(&v), None, "127.0.0.1", "live/cam");
        assert!(!text.contains("sprop-parameter-sets"), "{text}");
        let back = Sdp::parse(&text).unwrap();
        assert_eq!(
            back.media[0].codec().unwrap(),
            Codec::H264 {
                config: None,
                packetization_mode: 1
            }
        );
    }

    #[test]
    fn hostile_sdp() {
        assert!(Sdp::parse("").is_err());
        assert!(Sdp::parse("v=0\r\nm=video\r\n").is_err());
        assert!(Sdp::parse("v=0\r\nnonsense\r\n").is_err());
        let many = "v=0\r\n".to_string() + &"m=video 0 RTP/AVP 96\r\n".repeat(MAX_MEDIA + 1);
        assert!(Sdp::parse(&many).is_err());
        assert_eq!(Sdp::parse(&many), Err(SdpError::TooManyMedia));
        assert_eq!(Sdp::parse(""), Err(SdpError::NoVersion));
        let e = Sdp::parse("v=0\r\nnonsense\r\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: expected 'x=value', found \"nonsense\""
        );
        assert!(matches!(
            Sdp::parse("v=0\r\nm=video\r\n"),
            Err(SdpError::Line { line: 2, .. })
        ));
        let sdp = Sdp::parse("v=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr;config=zz\r\n").unwrap();
        assert!(sdp.media[0].codec().is_err());
        assert_eq!(
            sdp.media[0].codec().unwrap_err().to_string(),
            "expected hex AAC config, found \"zz\""
        );
        let sdp = Sdp::parse("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 sprop-parameter-sets=!!\r\n").unwrap();
        assert!(sdp.media[0].codec().is_err());
        let e = sdp.media[0].codec().unwrap_err();
        assert!(matches!(e, SdpError::SpropBase64(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "bad sprop-parameter-sets: expected a base64 character at position 0, found '!'"
        );
        let sdp = Sdp::parse("v=0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr;config=1240\r\n").unwrap();
        assert!(matches!(sdp.media[0].codec(), Err(SdpError::Aac(_))));
        let sdp = Sdp::parse("v=0\r\nm=audio 0 RTP/AVP 0\r\n").unwrap();
        assert!(matches!(
            sdp.media[0].codec().unwrap(),
            Codec::Unsupported(_)
        ));
    }

    /// H.265 (RFC 7798): river's SDP carries sprop-vps/sps/pps and reads back; decoding order
    /// numbers are refused by name; an SPS that does not parse is an error.
    #[test]
    fn h265_sprop_round_trip() {
        let cfg = crate::codec::h265::parse_hvcc(&crate::codec::h265::tests::fixture_hvcc())
            .unwrap()
            .video_config()
            .unwrap();
        let text = write(Some(&cfg), None, "127.0.0.1", "live/x");
        assert!(
            text.contains("a=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps="),
            "{text}"
        );
        let sdp = Sdp::parse(&text).unwrap();
        assert_eq!(
            sdp.media[0].codec().unwrap(),
            Codec::H265 { config: Some(cfg) }
        );
        let sdp = Sdp::parse("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n").unwrap();
        assert_eq!(sdp.media[0].codec().unwrap(), Codec::H265 { config: None });
        let sdp = Sdp::parse("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-max-don-diff=2\r\n").unwrap();
        assert!(
            matches!(sdp.media[0].codec().unwrap(), Codec::Unsupported(w) if w.contains("sprop-max-don-diff=2"))
        );
        let sdp = Sdp::parse("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QAE=;sprop-sps=!;sprop-pps=RAE=\r\n").unwrap();
        let e = sdp.media[0].codec().unwrap_err().to_string();
        assert!(e.starts_with("bad sprop-sps: "), "{e}");
    }
}
