//! RTCP (RFC 3550 6): sender reports with SDES CNAME, and a lenient reader.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from 1900 (NTP) to 1970 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (32.32 fixed point seconds since 1900) of a wall-clock time.
pub fn ntp_time(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Writes a compound RTCP packet: SR (no report blocks) + SDES with one CNAME.
pub fn write_sr(
    ssrc: u32,
    ntp: u64,
    rtp_time: u32,
    packets: u32,
    octets: u32,
    cname: &str,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&[0x80, 200, 0, 6]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&ntp.to_be_bytes());
    out.extend_from_slice(&rtp_time.to_be_bytes());
    out.extend_from_slice(&packets.to_be_bytes());
    out.extend_from_slice(&octets.to_be_bytes());
    let name = &cname.as_bytes()[..cname.len().min(255)];
    // SDES chunk: ssrc, item (type 1, len, text), end (0), padded to 32 bits.
    let chunk_len = 4 + 2 + name.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    let words = (4 + padded) / 4 - 1;
    out.extend_from_slice(&[0x81, 202]);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + padded - (4 + 2 + name.len()), 0);
}

/// Writes a BYE for `ssrc` (the stream ended).
pub fn write_bye(ssrc: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x81, 203, 0, 1]);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp {
    SenderReport { ssrc: u32, ntp: u64, rtp_time: u32 },
    ReceiverReport { ssrc: u32 },
    Bye { ssrcs: Vec<u32> },
    Other { packet_type: u8 },
}

/// Reads a compound packet; stops quietly at the first malformed part.
pub fn parse(data: &[u8]) -> Vec<Rtcp> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        if rest[0] >> 6 != 2 {
            break;
        }
        let count = usize::from(rest[0] & 0x1f);
        let pt = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            break;
        }
        let p = &rest[..len];
        let u32_at = |i: usize| -> Option<u32> {
            p.get(i..i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        match pt {
            200 => {
                if let (Some(ssrc), Some(hi), Some(lo), Some(rtp_time)) =
                    (u32_at(4), u32_at(8), u32_at(12), u32_at(16))
                {
                    out.push(Rtcp::SenderReport {
                        ssrc,
                        ntp: (u64::from(hi) << 32) | u64::from(lo),
                        rtp_time,
                    });
                }
            }
            201 => {
                if let Some(ssrc) = u32_at(4) {
                    out.push(Rtcp::ReceiverReport { ssrc });
                }
            }
            203 => out.push(Rtcp::Bye {
                ssrcs: (0..count).filter_map(|i| u32_at(4 + 4 * i)).collect(),
            }),
            other => out.push(Rtcp::Other { packet_type: other }),
        }
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_round_trip() {
        let mut out = Vec::new();
        write_sr(
            0xabcd,
            0x1122_3344_5566_7788,
            90000,
            10,
            1000,
            "river",
            &mut out,
        );
        assert_eq!(out.len() % 4, 0);
        let r = parse(&out);
        assert_eq!(
            r,
            vec![
                Rtcp::SenderReport {
                    ssrc: 0xabcd,
                    ntp: 0x1122_3344_5566_7788,
                    rtp_time: 90000
                },
                Rtcp::Other { packet_type: 202 }
            ]
        );
        for n in 0..out.len() {
            let _ = parse(&out[..n]);
        }
        // A receiver report and a BYE as ffmpeg sends them.
        let rr = [
            0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0,
        ];
        let bye = [0x81, 203, 0, 1, 0, 0, 0, 5];
        let mut both = rr.to_vec();
        both.extend_from_slice(&bye);
        assert_eq!(
            parse(&both),
            vec![
                Rtcp::ReceiverReport { ssrc: 1 },
                Rtcp::Bye { ssrcs: vec![5] }
            ]
        );
        let mut b = Vec::new();
        write_bye(9, &mut b);
        assert_eq!(parse(&b), vec![Rtcp::Bye { ssrcs: vec![9] }]);
        let t = ntp_time(UNIX_EPOCH + std::time::Duration::from_millis(1500));
        assert_eq!(t >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(t & 0xffff_ffff, 1 << 31);
    }
}
