//! One watcher's queue of shared chunks, and the slow-watcher policy.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cache::Join;
use super::stream::{Chunk, HeaderKind, Mark, StreamFormat};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Unwritten bytes a watcher may have queued.
    pub max_bytes: usize,
    /// Age of the oldest unwritten chunk a watcher may have queued.
    pub max_age: Duration,
    /// How long a watcher may stay behind (from its first overflow until its queue drains) before
    /// it is disconnected.
    pub max_behind: Duration,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_bytes: 8 << 20,
            max_age: Duration::from_secs(5),
            max_behind: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Disconnect(&'static str),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub bytes_sent: u64,
    pub chunks_dropped: u64,
    pub bytes_dropped: u64,
    /// Times the watcher was skipped ahead to the next keyframe.
    pub skips: u64,
}

struct Entry {
    data: Bytes,
    mark: Mark,
    at: Instant,
}

pub struct WatcherQueue {
    limits: QueueLimits,
    format: StreamFormat,
    q: VecDeque<Entry>,
    /// Bytes of the front entry already written.
    front_off: usize,
    /// Unwritten bytes.
    bytes: usize,
    /// Data is skipped until the next keyframe.
    waiting: bool,
    /// Since when the watcher is behind (first overflow, cleared when the queue drains).
    behind_since: Option<Instant>,
    stats: QueueStats,
}

impl WatcherQueue {
    pub fn new(limits: QueueLimits, format: StreamFormat, join: Join, now: Instant) -> Self {
        let mut q = WatcherQueue {
            limits,
            format,
            q: VecDeque::new(),
            front_off: 0,
            bytes: 0,
            waiting: false,
            behind_since: None,
            stats: QueueStats::default(),
        };
        let known = format != StreamFormat::Opaque;
        // A GOP larger than the queue may hold would overflow at once: start on the next
        // keyframe instead, with the headers only.
        let use_gop = join.starts_on_keyframe && join.bytes() <= limits.max_bytes;
        q.waiting = known && !use_gop;
        for c in join.chunks {
            if use_gop || matches!(c.mark, Mark::Header(_)) {
                q.enqueue(c.data, c.mark, now);
            }
        }
        q
    }

    /// A watcher that joins with nothing cached: headers only, then the next keyframe.
    pub fn new_waiting(
        limits: QueueLimits,
        format: StreamFormat,
        headers: Vec<Chunk>,
        now: Instant,
    ) -> Self {
        Self::new(
            limits,
            format,
            Join {
                chunks: headers,
                starts_on_keyframe: false,
            },
            now,
        )
    }

    fn enqueue(&mut self, data: Bytes, mark: Mark, now: Instant) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len();
        self.q.push_back(Entry {
            data,
            mark,
            at: now,
        });
    }

    /// Queues a live chunk, applying the overflow policy.
    pub fn push(&mut self, chunk: &Chunk, now: Instant) -> Verdict {
        if self.waiting {
            match chunk.mark {
                Mark::Keyframe => self.waiting = false,
                Mark::Header(kind) => {
                    self.drop_queued_header(kind);
                    self.enqueue(chunk.data.clone(), chunk.mark, now);
                    return self.check(now);
                }
                Mark::Data => {
                    self.stats.chunks_dropped += 1;
                    self.stats.bytes_dropped += chunk.data.len() as u64;
                    return self.check(now);
                }
            }
        }
        self.enqueue(chunk.data.clone(), chunk.mark, now);
        if self.overflowing(now) {
            if self.format == StreamFormat::Opaque {
                return Verdict::Disconnect("queue overflow on opaque content");
            }
            self.skip(now);
        }
        self.check(now)
    }

    fn overflowing(&self, now: Instant) -> bool {
        if self.bytes > self.limits.max_bytes {
            return true;
        }
        match self.q.front() {
            Some(e) => now.saturating_duration_since(e.at) > self.limits.max_age,
            None => false,
        }
    }

    /// Drops everything queued except the partly written front chunk and the newest header of each
    /// kind; if the newest chunk is a keyframe it is kept and the watcher resumes there, otherwise
    /// Data is skipped until the next keyframe.
    fn skip(&mut self, now: Instant) {
        self.stats.skips += 1;
        self.behind_since.get_or_insert(now);
        let last_is_key = self
            .q
            .back()
            .map(|e| e.mark == Mark::Keyframe)
            .unwrap_or(false);
        let keep_front = self.front_off > 0;
        let old: Vec<Entry> = self.q.drain(..).collect();
        let n = old.len();
        let mut headers: Vec<Entry> = Vec::new();
        let mut front = None;
        let mut key = None;
        for (i, e) in old.into_iter().enumerate() {
            if i == 0 && keep_front {
                front = Some(e);
            } else if i == n - 1 && last_is_key {
                key = Some(e);
            } else if let Mark::Header(kind) = e.mark {
                if let Some(pos) = headers.iter().position(|h| h.mark == Mark::Header(kind)) {
                    let d = headers.remove(pos);
                    self.count_drop(&d);
                }
                headers.push(e);
            } else {
                self.count_drop(&e);
            }
        }
        self.bytes = 0;
        if let Some(f) = front {
            self.bytes += f.data.len() - self.front_off;
            self.q.push_back(f);
        } else {
            self.front_off = 0;
        }
        for h in headers {
            self.bytes += h.data.len();
            self.q.push_back(h);
        }
        self.waiting = key.is_none();
        if let Some(k) = key {
            self.bytes += k.data.len();
            self.q.push_back(k);
        }
    }

    fn count_drop(&mut self, e: &Entry) {
        self.stats.chunks_dropped += 1;
        self.stats.bytes_dropped += e.data.len() as u64;
    }

    fn drop_queued_header(&mut self, kind: HeaderKind) {
        let skip_front = usize::from(self.front_off > 0);
        if let Some(pos) = self
            .q
            .iter()
            .skip(skip_front)
            .position(|e| e.mark == Mark::Header(kind))
        {
            let e = self.q.remove(pos + skip_front).expect("index in range");
            self.bytes -= e.data.len();
            self.count_drop(&e);
        }
    }

    /// The time-based part of the policy, for callers that want to check without a push.
    pub fn check(&self, now: Instant) -> Verdict {
        match self.behind_since {
            Some(t) if now.saturating_duration_since(t) > self.limits.max_behind => {
                Verdict::Disconnect("behind for too long")
            }
            _ => Verdict::Ok,
        }
    }

    /// Unwritten bytes of the front chunk.
    pub fn front(&self) -> Option<&[u8]> {
        self.q.front().map(|e| &e.data[self.front_off..])
    }

    /// Marks `n` bytes as written.
    pub fn consume(&mut self, mut n: usize) {
        n = n.min(self.bytes);
        self.stats.bytes_sent += n as u64;
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.q.front() else { break };
            let left = front.data.len() - self.front_off;
            if n >= left {
                n -= left;
                self.q.pop_front();
                self.front_off = 0;
            } else {
                self.front_off += n;
                n = 0;
            }
        }
        if self.q.is_empty() {
            self.behind_since = None;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Unwritten bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Chunks queued.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Waiting for a keyframe (skipping Data).
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    /// Up to `max` slices of unwritten data, for `writev`.
    pub fn fill_iovecs<'a>(&'a self, out: &mut Vec<IoSlice<'a>>, max: usize) {
        for (i, e) in self.q.iter().enumerate().take(max) {
            let d = if i == 0 {
                &e.data[self.front_off..]
            } else {
                &e.data[..]
            };
            out.push(IoSlice::new(d));
        }
    }
}
