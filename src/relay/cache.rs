//! The GOP cache: what a watcher who joins late receives first.
//!
//! It keeps the newest chunk of each [`HeaderKind`] (in the order the kinds first appeared, which is
//! stream order: FLV file header, onMetaData, sequence headers; PAT, PMT; SPS, PPS) and every chunk
//! since the last [`Mark::Keyframe`]. The chunks are shared [`Bytes`](bytes::Bytes): nothing is
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
