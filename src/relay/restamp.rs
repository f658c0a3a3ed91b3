//! One FLV timeline across a takeover. Watchers that continue from one broadcaster's FLV into the
//! next one's (the channel's takeover policy) would otherwise see time go back: a new encoder
//! starts at 0, and a reconnecting `river-relay broadcast --retry` resends its current GOP.
//! ffmpeg recording an RTMP player through an RTMP takeover wrote a file whose decode reported
//! "non monotonically increasing dts" (tests/it/relay_faults.rs).
//!
//! The rule: the first stream passes untouched (not even copied). After a takeover, the new
//! stream's first audio or video frame (not a sequence header) is placed at the continuation
//! point, the latest of each track's last timestamp plus its last frame interval, and every later
//! tag keeps its distance from that frame. Tags before that frame (onMetaData, sequence headers)
//! are placed at the continuation point. Audio and video timestamps of the new stream never go
//! below their track's previous one (+1 ms). Timestamps are FLV's 32-bit milliseconds, wrapping.

use bytes::Bytes;

use super::stream::{Chunk, HeaderKind, Mark};

const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
const SCRIPT: u8 = 18;
/// A frame interval above this is a gap in the stream, not a frame's duration.
const MAX_INTERVAL: u32 = 1000;

/// Is this FLV audio/video body a sequence header (AVC/AAC, or an Enhanced-RTMP SequenceStart)?
pub(crate) fn is_seq_header(video: bool, body: &[u8]) -> bool {
    if video {
        match body.first() {
            Some(b) if b & 0x80 != 0 => b & 0x0f == 0,
            Some(b) => b & 0x0f == 7 && body.get(1) == Some(&0),
            None => false,
        }
    } else {
        body.first().is_some_and(|b| b >> 4 == 10) && body.get(1) == Some(&0)
    }
}

#[derive(Clone, Copy, Debug)]
struct Track {
    /// The last output timestamp.
    ts: u32,
    /// The interval before it (0 when unknown).
    interval: u32,
}

/// A channel's FLV timeline; see the module docs.
#[derive(Debug, Default)]
pub struct Restamp {
    /// Audio, video.
    tracks: [Option<Track>; 2],
    /// Added to the current stream's timestamps once it is placed (None: not placed yet).
    shift: Option<u32>,
    /// Since a takeover: where the current stream continues (until placed), and that the clamps
    /// apply.
    target: Option<u32>,
    active: bool,
}

/// A tag chunk's type and timestamp, when the chunk is one whole tag.
fn tag(data: &[u8]) -> Option<(u8, u32)> {
    if data.len() < 15 {
        return None;
    }
    let kind = data[0] & 0x1f;
    let size = u32::from_be_bytes([0, data[1], data[2], data[3]]) as usize;
    if !matches!(kind, AUDIO | VIDEO | SCRIPT) || 11 + size + 4 != data.len() {
        return None;
    }
    let ts = u32::from_be_bytes([data[7], data[4], data[5], data[6]]);
    Some((kind, ts))
}

impl Restamp {
    pub fn new() -> Self {
        Restamp::default()
    }

    /// The channel continues with another broadcaster's stream.
    pub fn next_stream(&mut self) {
        let target = self
            .tracks
            .iter()
            .flatten()
            .map(|t| t.ts.wrapping_add(t.interval))
            .max();
        if target.is_some() {
            self.active = true;
            self.target = target;
            self.shift = None;
        }
    }

    /// Restamps the current stream's chunks (an FLV broadcast's, after the splitter).
    pub fn apply(&mut self, chunks: &mut [Chunk]) {
        for c in chunks {
            if c.mark == Mark::Header(HeaderKind::FlvFile) {
                continue;
            }
            let Some((kind, ts)) = tag(&c.data) else {
                continue;
            };
            // Audio and video frames; sequence headers are configuration, not frames.
            let frame = matches!(kind, AUDIO | VIDEO)
                && !is_seq_header(kind == VIDEO, &c.data[11..c.data.len() - 4]);
            let track = usize::from(kind == VIDEO);
            let mut out = ts;
            if self.active {
                if self.shift.is_none() && frame {
                    self.shift = self.target.map(|t| t.wrapping_sub(ts));
                }
                out = match (self.shift, self.target) {
                    (Some(s), _) => ts.wrapping_add(s),
                    (None, Some(t)) => t,
                    (None, None) => ts,
                };
                if let Some(t) = self.tracks[track].filter(|_| frame) {
                    if (out.wrapping_sub(t.ts) as i32) <= 0 {
                        out = t.ts.wrapping_add(1);
                    }
                }
            }
            if frame {
                let slot = &mut self.tracks[track];
                let interval = slot
                    .map(|t| out.wrapping_sub(t.ts))
                    .filter(|&d| d <= MAX_INTERVAL)
                    .unwrap_or(0);
                *slot = Some(Track { ts: out, interval });
            }
            if out != ts {
                let mut v = c.data.to_vec();
                let b = out.to_be_bytes();
                v[4..7].copy_from_slice(&b[1..4]);
                v[7] = b[0];
                c.data = Bytes::from(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag_chunk(kind: u8, ts: u32, body: &[u8]) -> Chunk {
        let mut v = vec![kind];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        let b = ts.to_be_bytes();
        v.extend_from_slice(&[b[1], b[2], b[3], b[0], 0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        Chunk::new(v, Mark::Data)
    }

    /// An encoder's stream from `t0`: metadata, sequence headers, then a video frame every 40 ms
    /// and an audio frame every 23 ms for `ms`, in timestamp order.
    fn stream(t0: u32, ms: u32) -> Vec<Chunk> {
        let mut v = vec![
            tag_chunk(SCRIPT, 0, b"\x02\x00\x0aonMetaData"),
            tag_chunk(VIDEO, 0, &[0x17, 0, 0, 0, 1]),
            tag_chunk(AUDIO, 0, &[0xaf, 0]),
        ];
        let (mut a, mut f) = (0, 0);
        while a < ms || f < ms {
            if f <= a {
                v.push(tag_chunk(
                    VIDEO,
                    t0 + f,
                    &[if f % 1000 == 0 { 0x17 } else { 0x27 }, 1],
                ));
                f += 40;
            } else {
                v.push(tag_chunk(AUDIO, t0 + a, &[0xaf, 1, 9]));
                a += 23;
            }
        }
        v
    }

    fn stamps(chunks: &[Chunk]) -> Vec<(u8, u32)> {
        chunks.iter().filter_map(|c| tag(&c.data)).collect()
    }

    #[test]
    fn the_first_stream_passes_untouched() {
        let mut r = Restamp::new();
        let mut s = stream(5000, 2000);
        let before: Vec<Bytes> = s.iter().map(|c| c.data.clone()).collect();
        r.apply(&mut s);
        for (a, b) in s.iter().zip(&before) {
            assert_eq!(a.data.as_ptr(), b.as_ptr(), "not copied");
        }
    }

    #[test]
    fn a_new_stream_from_0_continues_after_the_old_one() {
        let mut r = Restamp::new();
        let mut old = stream(0, 3000);
        r.apply(&mut old);
        let (last_v, last_a) = (2960, 2990);
        r.next_stream();
        let mut new = stream(0, 2000);
        r.apply(&mut new);
        let got = stamps(&new);
        // The continuation point: audio's last (2990) + 23 = 3013 beats video's 2960 + 40.
        assert_eq!(got[0], (SCRIPT, 3013));
        assert_eq!(got[1], (VIDEO, 3013), "sequence header at the point");
        assert_eq!(got[3], (VIDEO, 3013), "the first frame");
        let (mut pv, mut pa) = (last_v, last_a);
        for &(k, t) in &got[3..] {
            let p = if k == VIDEO { &mut pv } else { &mut pa };
            assert!(t > *p, "{k}: {t} after {p}");
            *p = t;
        }
        assert_eq!(pv, 3013 + 1960, "distances kept");
    }

    #[test]
    fn a_resent_gop_with_its_own_timestamps_moves_forward() {
        // `broadcast --retry`: headers (ts 0) and the GOP from 2000 again, after 2960 was sent.
        let mut r = Restamp::new();
        let mut old = stream(0, 3000);
        r.apply(&mut old);
        r.next_stream();
        let sent = stream(2000, 1000);
        let mut new = sent.clone();
        r.apply(&mut new);
        let got = stamps(&new);
        assert_eq!(got[0].1, 3013, "headers not sent 2 s ahead of the frames");
        assert_eq!(got[3], (VIDEO, 3013));
        for (g, s) in got[3..].iter().zip(&stamps(&sent)[3..]) {
            assert_eq!(g.1, s.1 + 1013, "every frame 1013 ms later");
        }
    }

    #[test]
    fn garbage_and_the_file_header_pass() {
        let mut r = Restamp::new();
        let mut old = stream(0, 500);
        r.apply(&mut old);
        r.next_stream();
        let mut new = vec![
            Chunk::new(
                &b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"[..],
                Mark::Header(HeaderKind::FlvFile),
            ),
            Chunk::new(&b"not a tag at all"[..], Mark::Data),
        ];
        let before: Vec<Vec<u8>> = new.iter().map(|c| c.data.to_vec()).collect();
        r.apply(&mut new);
        for (a, b) in new.iter().zip(&before) {
            assert_eq!(&a.data[..], &b[..]);
        }
    }
}
