//! The GOP cache: what a watcher who joins late receives first.
//!
//! It keeps the newest chunk of each [`HeaderKind`] (in the order the kinds first appeared, which is
//! stream order: FLV file header, onMetaData, sequence headers; PAT, PMT; SPS, PPS) and every chunk
//! since the last [`Mark::Keyframe`] but H.265 RASL pictures ([`Mark::Rasl`]: the joiner starts on
//! their CRA and never has what they reference). The chunks are shared [`Bytes`](bytes::Bytes): nothing is
//! copied. When the GOP outgrows [`CacheLimits`] (bytes or age since its keyframe) it is dropped
//! whole and the next joiner waits for the next keyframe instead: a partial GOP cannot be decoded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::stream::{Chunk, HeaderKind, Mark};

/// Bounds of the cached GOP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_bytes: usize,
    pub max_age: Duration,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_bytes: 32 << 20,
            max_age: Duration::from_secs(30),
        }
    }
}

/// What a joining watcher gets first.
#[derive(Clone, Debug, Default)]
pub struct Join {
    /// Headers, then (if `starts_on_keyframe`) the GOP so far.
    pub chunks: Vec<Chunk>,
    /// The chunks after the headers start on a keyframe; `false` = the watcher must wait for the
    /// next keyframe (or, on opaque content, simply gets live data).
    pub starts_on_keyframe: bool,
}

impl Join {
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.data.len()).sum()
    }
}

pub struct GopCache {
    limits: CacheLimits,
    enabled: bool,
    headers: Vec<(HeaderKind, Chunk)>,
    gop: VecDeque<Chunk>,
    gop_bytes: usize,
    /// When the GOP's keyframe arrived; `None` = no valid GOP.
    gop_start: Option<Instant>,
    /// GOPs dropped for exceeding the limits.
    pub overflows: u64,
}

impl GopCache {
    /// `enabled: false` (`--no-gop-cache`) keeps the headers only.
    pub fn new(limits: CacheLimits, enabled: bool) -> Self {
        GopCache {
            limits,
            enabled,
            headers: Vec::new(),
            gop: VecDeque::new(),
            gop_bytes: 0,
            gop_start: None,
            overflows: 0,
        }
    }

    pub fn push(&mut self, chunk: &Chunk, now: Instant) {
        match chunk.mark {
            Mark::Header(kind) => {
                if let Some(slot) = self.headers.iter_mut().find(|(k, _)| *k == kind) {
                    slot.1 = chunk.clone();
                } else {
                    self.headers.push((kind, chunk.clone()));
                }
                self.append(chunk, now);
            }
            Mark::Keyframe => {
                if !self.enabled {
                    return;
                }
                self.clear_gop();
                self.gop_start = Some(now);
                self.append(chunk, now);
            }
            Mark::Data => self.append(chunk, now),
            // The GOP starts on its keyframe: a RASL picture in it belongs to that keyframe (a CRA)
            // and cannot be decoded by a watcher who starts there.
            Mark::Rasl => {}
        }
    }

    fn append(&mut self, chunk: &Chunk, now: Instant) {
        let Some(start) = self.gop_start else {
            return;
        };
        self.gop_bytes += chunk.data.len();
        self.gop.push_back(chunk.clone());
        if self.gop_bytes > self.limits.max_bytes
            || now.saturating_duration_since(start) > self.limits.max_age
        {
            self.overflows += 1;
            self.clear_gop();
        }
    }

    fn clear_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_start = None;
    }

    pub fn join(&self) -> Join {
        let mut chunks: Vec<Chunk> = self.headers.iter().map(|(_, c)| c.clone()).collect();
        let starts_on_keyframe = self.enabled && self.gop_start.is_some();
        if starts_on_keyframe {
            chunks.extend(self.gop.iter().cloned());
        }
        Join {
            chunks,
            starts_on_keyframe,
        }
    }

    /// Bytes held (headers and GOP; shared with the watchers' queues, not extra copies).
    pub fn bytes(&self) -> usize {
        self.gop_bytes
            + self
                .headers
                .iter()
                .map(|(_, c)| c.data.len())
                .sum::<usize>()
    }

    /// Bytes of the cached GOP alone.
    pub fn gop_bytes(&self) -> usize {
        self.gop_bytes
    }

    /// Age of the cached GOP (since its keyframe), if there is one.
    pub fn gop_age(&self, now: Instant) -> Option<Duration> {
        self.gop_start.map(|s| now.saturating_duration_since(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::stream::Splitter;
    use crate::relay::testdata;

    fn c(mark: Mark, n: usize, tag: u8) -> Chunk {
        Chunk::new(vec![tag; n], mark)
    }
    fn tags(j: &Join) -> Vec<u8> {
        j.chunks.iter().map(|c| c.data[0]).collect()
    }
    const PAT: Mark = Mark::Header(HeaderKind::TsPat);
    const PMT: Mark = Mark::Header(HeaderKind::TsPmt);

    #[test]
    fn rasl_pictures_are_not_cached() {
        let t = Instant::now();
        let mut g = GopCache::new(CacheLimits::default(), true);
        for ch in [
            c(Mark::Keyframe, 1, 1),
            c(Mark::Rasl, 1, 2),
            c(Mark::Data, 1, 3),
        ] {
            g.push(&ch, t);
        }
        let j = g.join();
        let ids: Vec<u8> = j.chunks.iter().map(|c| c.data[0]).collect();
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn headers_newest_per_kind_in_first_seen_order_then_the_gop() {
        let t = Instant::now();
        let mut g = GopCache::new(CacheLimits::default(), true);
        for ch in [c(PAT, 1, 1), c(PMT, 1, 2), c(Mark::Data, 1, 3)] {
            g.push(&ch, t);
        }
        let j = g.join();
        assert!(!j.starts_on_keyframe);
        assert_eq!(tags(&j), [1, 2]);
        for ch in [
            c(Mark::Keyframe, 1, 4),
            c(Mark::Data, 1, 5),
            c(PAT, 1, 6),
            c(Mark::Data, 1, 7),
        ] {
            g.push(&ch, t);
        }
        let j = g.join();
        assert!(j.starts_on_keyframe);
        assert_eq!(tags(&j), [6, 2, 4, 5, 6, 7]);
        g.push(&c(Mark::Keyframe, 1, 8), t);
        assert_eq!(tags(&g.join()), [6, 2, 8]);
        assert_eq!(g.bytes(), 3);
        // Shared, not copied.
        let k = c(Mark::Keyframe, 4, 9);
        g.push(&k, t);
        assert_eq!(g.join().chunks[2].data.as_ptr(), k.data.as_ptr());
    }

    #[test]
    fn disabled_keeps_headers_only() {
        let t = Instant::now();
        let mut g = GopCache::new(CacheLimits::default(), false);
        for ch in [c(PAT, 1, 1), c(Mark::Keyframe, 1, 4), c(Mark::Data, 1, 5)] {
            g.push(&ch, t);
        }
        let j = g.join();
        assert!(!j.starts_on_keyframe);
        assert_eq!(tags(&j), [1]);
    }

    #[test]
    fn a_gop_over_the_limits_is_dropped_whole() {
        let t = Instant::now();
        let lim = CacheLimits {
            max_bytes: 100,
            max_age: Duration::from_secs(2),
        };
        let mut g = GopCache::new(lim, true);
        g.push(&c(PAT, 1, 1), t);
        g.push(&c(Mark::Keyframe, 60, 2), t);
        g.push(&c(Mark::Data, 60, 3), t);
        let j = g.join();
        assert!(!j.starts_on_keyframe);
        assert_eq!(tags(&j), [1]);
        g.push(&c(Mark::Data, 1, 3), t);
        assert!(
            !g.join().starts_on_keyframe,
            "no GOP until the next keyframe"
        );
        g.push(&c(Mark::Keyframe, 10, 4), t);
        assert!(g.join().starts_on_keyframe);
        g.push(&c(Mark::Data, 10, 5), t + Duration::from_secs(3));
        assert!(!g.join().starts_on_keyframe, "too old");
        assert_eq!(g.overflows, 2);
    }

    #[test]
    fn join_from_a_real_stream_starts_with_headers_and_a_keyframe() {
        for (input, first) in [
            (testdata::flv(), HeaderKind::FlvFile),
            (testdata::ts(), HeaderKind::TsPat),
            (testdata::annexb(), HeaderKind::H264Sps),
        ] {
            let mut s = Splitter::new();
            let mut out = Vec::new();
            let t = Instant::now();
            let mut g = GopCache::new(CacheLimits::default(), true);
            // Stop in the middle of the third GOP.
            s.push(&input[..input.len() * 5 / 8], &mut out);
            for ch in &out {
                g.push(ch, t);
            }
            let j = g.join();
            assert!(j.starts_on_keyframe);
            assert_eq!(j.chunks[0].mark, Mark::Header(first));
            let k = j
                .chunks
                .iter()
                .position(|c| c.mark == Mark::Keyframe)
                .unwrap();
            assert!(j.chunks[..k]
                .iter()
                .all(|c| matches!(c.mark, Mark::Header(_))));
            assert!(j.bytes() < input.len() / 2);
        }
    }
}
