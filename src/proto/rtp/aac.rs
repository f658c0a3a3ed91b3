//! AAC over RTP, RFC 3640 `mpeg4-generic` in AAC-hbr mode (as ffmpeg and GStreamer send it).

use bytes::{Bytes, BytesMut};

use super::{Packet, Payload, Unwrapper};
use crate::error::Diag;
use crate::media::{AudioConfig, Codec, Frame, MediaEvent, Track, CLOCK_HZ};

/// Largest AAC access unit accepted (13-bit sizes allow 8191; fragments may add up to more).
pub const MAX_AU: usize = 64 * 1024;

/// A step back in RTP time larger than this (90 kHz: 10 s) is taken as the sender's clock
/// restarting: the stream is re-based to go on one frame after the last. Smaller steps back are
/// damage: those AUs are dropped.
pub const MAX_STEP_BACK: i64 = 10 * CLOCK_HZ;

/// RTP packets in, raw AAC frames out ([`MediaEvent::Frame`] of the audio track).
///
/// - AU headers of `size_length` + `index_length` (first) / `index_delta_length` bits; several
///   AUs per packet; one AU fragmented over packets with the same timestamp (marker on the last).
/// - AU n of a packet is timed at the packet's timestamp + n × 1024 samples.
/// - A sequence gap drops a fragmented AU in progress.
/// - PTS = DTS = the RTP time rescaled to 90 kHz, relative to the first packet, always increasing:
///   an AU whose time does not advance is dropped (one warning per run of them), and a step back
///   of more than [`MAX_STEP_BACK`] re-bases the clock (one warning).
pub struct Depacketizer {
    config: AudioConfig,
    size_length: u8,
    index_length: u8,
    index_delta_length: u8,
    frag: Option<(u32, BytesMut, usize)>,
    last_seq: Option<u16>,
    clock: Unwrapper,
    first: Option<i64>,
    announced: bool,
    /// Time of the last AU emitted (90 kHz, re-base included).
    last: Option<i64>,
    /// Added to every time after the sender's clock went back (90 kHz).
    rebase: i64,
    /// Dropping AUs that do not advance (warned once per run).
    dropping: bool,
    pub gaps: u64,
    /// AUs dropped because their time did not advance.
    pub dropped_back: u64,
}

impl Depacketizer {
    pub fn new(
        config: AudioConfig,
        size_length: u8,
        index_length: u8,
        index_delta_length: u8,
    ) -> Self {
        Depacketizer {
            config,
            size_length,
            index_length,
            index_delta_length,
            frag: None,
            last_seq: None,
            clock: Unwrapper::default(),
            first: None,
            announced: false,
            last: None,
            rebase: 0,
            dropping: false,
            gaps: 0,
            dropped_back: 0,
        }
    }

    pub fn config(&self) -> &AudioConfig {
        &self.config
    }

    fn emit(
        &mut self,
        ts: u32,
        index: u64,
        data: Bytes,
        offset: u64,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) {
        let ext = self.clock.unwrap(ts) + 1024 * index as i64;
        let first = *self.first.get_or_insert(ext);
        let rate = i64::from(self.config.sample_rate.max(1));
        let mut t = ((i128::from(ext - first) * i128::from(CLOCK_HZ)) / i128::from(rate)) as i64
            + self.rebase;
        if let Some(last) = self.last.filter(|&l| t <= l) {
            if last - t > MAX_STEP_BACK {
                let frame = (1024 * CLOCK_HZ / rate).max(1);
                diags.push(Diag::new(
                    offset,
                    format!(
                        "aac rtp: timestamp went back {:.3} s; clock re-based",
                        (last - t) as f64 / CLOCK_HZ as f64
                    ),
                ));
                self.rebase += last + frame - t;
                t = last + frame;
            } else {
                self.dropped_back += 1;
                if !self.dropping {
                    self.dropping = true;
                    diags.push(Diag::new(
                        offset,
                        format!(
                            "aac rtp: timestamp {ts} does not advance; frames dropped until it does"
                        ),
                    ));
                }
                return;
            }
        }
        self.dropping = false;
        self.last = Some(t);
        if !self.announced {
            self.announced = true;
            out.push(MediaEvent::Audio(self.config.clone()));
        }
        out.push(MediaEvent::Frame(Frame {
            track: Track::Audio,
            codec: Codec::Aac,
            dts: t,
            pts: t,
            keyframe: true,
            data,
        }));
    }

    pub fn push(
        &mut self,
        pkt: &Packet<'_>,
        offset: u64,
        out: &mut Vec<MediaEvent>,
        diags: &mut Vec<Diag>,
    ) {
        if let Some(last) = self.last_seq {
            let diff = pkt.seq.wrapping_sub(last) as i16;
            if diff <= 0 {
                return;
            }
            if diff != 1 {
                self.gaps += 1;
                self.frag = None;
            }
        }
        self.last_seq = Some(pkt.seq);
        let p = pkt.payload;
        if p.len() < 2 {
            diags.push(Diag::new(
                offset,
                "aac rtp: packet without AU headers skipped",
            ));
            return;
        }
        let header_bits = usize::from(u16::from_be_bytes([p[0], p[1]]));
        let header_bytes = header_bits.div_ceil(8);
        if p.len() < 2 + header_bytes {
            diags.push(Diag::new(
                offset,
                "aac rtp: truncated AU headers; packet skipped",
            ));
            return;
        }
        let mut bits = BitReader {
            data: &p[2..2 + header_bytes],
            pos: 0,
        };
        let mut sizes = Vec::new();
        let mut consumed = 0usize;
        while consumed < header_bits {
            let idx_len = if sizes.is_empty() {
                self.index_length
            } else {
                self.index_delta_length
            };
            let need = usize::from(self.size_length) + usize::from(idx_len);
            if need == 0 || consumed + need > header_bits {
                break;
            }
            let (Some(size), Some(_)) = (bits.read(self.size_length), bits.read(idx_len)) else {
                break;
            };
            consumed += need;
            sizes.push(size as usize);
            if sizes.len() > 512 {
                break;
            }
        }
        let mut data = &p[2 + header_bytes..];
        // A fragment of one large AU.
        if sizes.len() == 1 && sizes[0] > data.len() {
            let total = sizes[0];
            if total > MAX_AU {
                diags.push(Diag::new(
                    offset,
                    format!("aac rtp: AU of {total} bytes over the limit skipped"),
                ));
                self.frag = None;
                return;
            }
            match &mut self.frag {
                Some((ts, buf, want)) if *ts == pkt.timestamp && *want == total => {
                    buf.extend_from_slice(data);
                }
                _ => {
                    let mut b = BytesMut::with_capacity(total);
                    b.extend_from_slice(data);
                    self.frag = Some((pkt.timestamp, b, total));
                }
            }
            if let Some((ts, buf, want)) = &self.frag {
                if buf.len() >= *want || pkt.marker {
                    let (ts, buf, want) = (*ts, buf.clone(), *want);
                    self.frag = None;
                    if buf.len() == want {
                        self.emit(ts, 0, buf.freeze(), offset, out, diags);
                    } else {
                        diags.push(Diag::new(
                            offset,
                            "aac rtp: fragmented AU of the wrong size skipped",
                        ));
                    }
                }
            }
            return;
        }
        self.frag = None;
        for (i, size) in sizes.into_iter().enumerate() {
            if size > data.len() {
                diags.push(Diag::new(
                    offset,
                    "aac rtp: AU larger than the packet's rest; packet truncated",
                ));
                break;
            }
            let au = Bytes::copy_from_slice(&data[..size]);
            data = &data[size..];
            if !au.is_empty() {
                self.emit(pkt.timestamp, i as u64, au, offset, out, diags);
            }
        }
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, n: u8) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

/// One AAC frame per packet (13-bit size, 3-bit index), marker set; frames over 8191 bytes cannot
/// be described with 13 bits and are skipped (AAC frames are far smaller: at most 6144 bits per
/// channel).
#[derive(Debug, Clone, Default)]
pub struct Packetizer;

impl Packetizer {
    pub fn packetize(&self, frame: &Frame, out: &mut Vec<Payload>) {
        let n = frame.data.len();
        if n == 0 || n > 8191 {
            return;
        }
        let mut b = BytesMut::with_capacity(n + 4);
        b.extend_from_slice(&[0x00, 0x10]);
        b.extend_from_slice(&((n as u16) << 3).to_be_bytes());
        b.extend_from_slice(&frame.data);
        out.push(Payload {
            marker: true,
            pts: frame.pts,
            data: b.freeze(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::aac::AdtsReader;
    use crate::proto::rtp::{header, Sender};

    fn frames() -> (AudioConfig, Vec<Bytes>) {
        let data = include_bytes!("../../../tests/fixtures/codec/sine-44100-stereo.aac");
        let mut r = AdtsReader::new();
        let (mut out, mut w) = (Vec::new(), Vec::new());
        r.push(data, &mut out, &mut w);
        r.finish(&mut out, &mut w);
        (
            out[0].config.clone(),
            out.into_iter().map(|f| f.payload).collect(),
        )
    }

    #[test]
    fn round_trip() {
        let (cfg, aus) = frames();
        assert!(aus.len() > 40);
        let mut s = Sender::new(1, 65530, 12345, cfg.sample_rate, 97);
        let mut d = Depacketizer::new(cfg.clone(), 13, 3, 3);
        let (mut ev, mut diags) = (Vec::new(), Vec::new());
        for (i, au) in aus.iter().enumerate() {
            let f = Frame {
                track: Track::Audio,
                codec: Codec::Aac,
                dts: 0,
                pts: (i as i64) * 1024 * CLOCK_HZ / 44100,
                keyframe: true,
                data: au.clone(),
            };
            let mut pl = Vec::new();
            Packetizer.packetize(&f, &mut pl);
            for p in pl {
                let mut pkt = Vec::new();
                s.write(&p, &mut pkt);
                d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
            }
        }
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(ev[0], MediaEvent::Audio(cfg));
        let got: Vec<&Frame> = ev
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), aus.len());
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.data, aus[i]);
            let want = (i as i64) * 1024 * CLOCK_HZ / 44100;
            assert!((f.pts - want).abs() <= 2, "frame {i}: {} vs {want}", f.pts);
        }
    }

    #[test]
    fn several_aus_per_packet_and_fragments() {
        let (cfg, aus) = frames();
        let mut d = Depacketizer::new(cfg, 13, 3, 3);
        let (mut ev, mut diags) = (Vec::new(), Vec::new());
        // Two AUs in one packet (as ffmpeg aggregates them).
        let mut pkt = header(true, 97, 1, 1000, 9).to_vec();
        pkt.extend_from_slice(&[0x00, 0x20]);
        pkt.extend_from_slice(&((aus[0].len() as u16) << 3).to_be_bytes());
        pkt.extend_from_slice(&((aus[1].len() as u16) << 3).to_be_bytes());
        pkt.extend_from_slice(&aus[0]);
        pkt.extend_from_slice(&aus[1]);
        d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
        // One AU fragmented in two packets.
        let au = &aus[2];
        let half = au.len() / 2;
        for (seq, part, marker) in [(2u16, &au[..half], false), (3, &au[half..], true)] {
            let mut pkt = header(marker, 97, seq, 3048, 9).to_vec();
            pkt.extend_from_slice(&[0x00, 0x10]);
            pkt.extend_from_slice(&((au.len() as u16) << 3).to_be_bytes());
            pkt.extend_from_slice(part);
            d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
        }
        let f: Vec<(i64, Bytes)> = ev
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some((f.pts, f.data.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(f.len(), 3, "{diags:?}");
        assert_eq!(f[1].0, 1024 * CLOCK_HZ / 44100);
        assert_eq!(f[2].1, aus[2]);
        // Hostile packets.
        for bad in [&[][..], &[0xff, 0xff], &[0x00, 0x10, 0xff, 0xf8, 1, 2]] {
            let mut pkt = header(false, 97, 10, 0, 9).to_vec();
            pkt.extend_from_slice(bad);
            d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
        }
    }

    /// Found by fuzz/rtp_ingest: a packet whose timestamp went back (with the next sequence
    /// number) made the audio DTS go back. Such AUs are now dropped; a step back of more than
    /// [`MAX_STEP_BACK`] re-bases the clock instead.
    #[test]
    fn time_never_goes_back() {
        let (cfg, aus) = frames();
        let mut d = Depacketizer::new(cfg, 13, 3, 3);
        let (mut ev, mut diags) = (Vec::new(), Vec::new());
        let rtp = |seq: u16, ts: u32, au: &[u8]| {
            let mut pkt = header(true, 97, seq, ts, 9).to_vec();
            pkt.extend_from_slice(&[0x00, 0x10]);
            pkt.extend_from_slice(&((au.len() as u16) << 3).to_be_bytes());
            pkt.extend_from_slice(au);
            pkt
        };
        // 0, 1024, back to 0 (dropped), 512 (dropped), 2048, then 20 s back (re-based).
        let ts = [
            1_000_000u32,
            1_001_024,
            1_000_000,
            1_000_512,
            1_002_048,
            1_002_048 - 20 * 44_100,
            1_002_048 - 20 * 44_100 + 1024,
        ];
        for (i, &t) in ts.iter().enumerate() {
            let pkt = rtp(i as u16, t, &aus[i]);
            d.push(&Packet::parse(&pkt).unwrap(), i as u64, &mut ev, &mut diags);
        }
        let got: Vec<i64> = ev
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Frame(f) => Some(f.dts),
                _ => None,
            })
            .collect();
        let frame = 1024 * CLOCK_HZ / 44100;
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(&got[..3], &[0, frame, 2048 * CLOCK_HZ / 44100]);
        assert!((got[3] - got[2] - frame).abs() <= 1, "{got:?}");
        assert!((got[4] - got[3] - frame).abs() <= 1, "{got:?}");
        assert_eq!(d.dropped_back, 2);
        assert_eq!(diags.len(), 2, "{diags:?}");
    }
}
