//! One watcher's queue of shared chunks, and the slow-watcher policy.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use std::sync::Arc;

use bytes::Bytes;

use super::prechunk::RtmpMsg;

use super::cache::Join;
use super::metrics::Histogram;
use super::stream::{annexb_starts_au, Chunk, HeaderKind, Mark};
use crate::media::{StreamFormat, VideoCodec};

const TS_PACKET: usize = 188;
/// An empty queue whose ring holds more entries than this gives the memory back.
const SHRINK_ABOVE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// Unwritten bytes a watcher may have queued.
    pub max_bytes: usize,
    /// Age of the oldest unwritten chunk a watcher may have queued.
    pub max_age: Duration,
    /// How long a watcher may stay behind before it is disconnected: from its first overflow until
    /// it has written its whole queue while not waiting for a keyframe (caught up with the live
    /// edge). A watcher that keeps overflowing, or that waits longer than this for a keyframe
    /// after a skip, is cut off.
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
    /// Time from queueing to written, per chunk.
    pub delay: Histogram,
}

struct Entry {
    data: Bytes,
    mark: Mark,
    /// The chunk as a shared RTMP message, for RTMP players ([`Chunk::rtmp`]).
    rtmp: Option<Arc<RtmpMsg>>,
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
    /// The watcher's pictures start on the current GOP's keyframe (it joined or skipped there):
    /// that keyframe's RASL pictures ([`Mark::Rasl`]) cannot decode and are not queued. Cleared
    /// at the next keyframe, whose RASL pictures reference pictures the watcher has.
    started_at_key: bool,
    /// Since when the watcher is behind (first overflow, cleared when the queue drains).
    behind_since: Option<Instant>,
    /// After a skip: the rest of the access unit / PES packets in progress at the cut, still to
    /// be delivered so the last frame sent is whole.
    tail: Tail,
    stats: QueueStats,
}

/// The tail of what was in progress when a watcher was skipped ahead.
#[derive(Debug, Default)]
enum Tail {
    #[default]
    None,
    /// Annex B: chunks continue the cut access unit until one starts a new one.
    AnnexB(VideoCodec),
    /// MPEG-TS: packets of PIDs whose PES was in progress at the cut, up to each PID's next PES
    /// start; `closed` lists the PIDs already past that point.
    Ts { closed: Vec<u16> },
}

enum TailCut {
    /// Not part of the tail: the usual policy applies.
    No,
    /// Deliver these pieces (possibly none); the rest of the chunk is dropped.
    Keep(Vec<Bytes>, usize),
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
            started_at_key: false,
            behind_since: None,
            tail: Tail::None,
            stats: QueueStats::default(),
        };
        let known = format != StreamFormat::Opaque;
        // A GOP larger than the queue may hold would overflow at once: start on the next
        // keyframe instead, with the headers only.
        let use_gop = join.starts_on_keyframe && join.bytes() <= limits.max_bytes;
        q.waiting = known && !use_gop;
        q.started_at_key = use_gop;
        for c in join.chunks {
            if use_gop || matches!(c.mark, Mark::Header(_)) {
                q.enqueue(c.data, c.mark, c.rtmp, now);
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

    /// The format this queue's policy follows.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// For a watcher that joined before the broadcast's format was known (it was created with
    /// [`StreamFormat::Opaque`] and an empty join, so it receives the stream from its first byte):
    /// switches the overflow policy once the [`Splitter`](super::stream::Splitter) has decided.
    pub fn set_format(&mut self, format: StreamFormat) {
        self.format = format;
    }

    fn enqueue(&mut self, data: Bytes, mark: Mark, rtmp: Option<Arc<RtmpMsg>>, now: Instant) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len();
        self.q.push_back(Entry {
            data,
            mark,
            rtmp,
            at: now,
        });
    }

    /// Queues a live chunk, applying the overflow policy.
    pub fn push(&mut self, chunk: &Chunk, now: Instant) -> Verdict {
        let resumes = self.waiting && chunk.mark == Mark::Keyframe;
        if self.waiting {
            match chunk.mark {
                Mark::Keyframe => {
                    self.waiting = false;
                    self.tail = Tail::None;
                }
                Mark::Header(kind) => {
                    self.drop_queued_header(kind);
                    self.enqueue(chunk.data.clone(), chunk.mark, chunk.rtmp.clone(), now);
                    return self.check(now);
                }
                Mark::Data | Mark::Rasl => {
                    match self.tail_cut(&chunk.data) {
                        TailCut::Keep(pieces, dropped) => {
                            for p in pieces {
                                self.enqueue(p, Mark::Data, None, now);
                            }
                            if self.bytes > self.limits.max_bytes {
                                // A tail that does not end (a PID without PES starts): stop.
                                self.tail = Tail::None;
                            }
                            self.stats.bytes_dropped += dropped as u64;
                            if dropped == chunk.data.len() {
                                self.stats.chunks_dropped += 1;
                            }
                        }
                        TailCut::No => {
                            self.stats.chunks_dropped += 1;
                            self.stats.bytes_dropped += chunk.data.len() as u64;
                        }
                    }
                    return self.check(now);
                }
            }
        }
        if !self.keeps(chunk.mark) {
            return self.check(now);
        }
        if resumes {
            // The watcher's pictures start here again.
            self.started_at_key = true;
        }
        self.enqueue(chunk.data.clone(), chunk.mark, chunk.rtmp.clone(), now);
        if self.overflowing(now) {
            if self.format == StreamFormat::Opaque {
                return Verdict::Disconnect("queue overflow on opaque content");
            }
            self.skip(now);
        }
        self.check(now)
    }

    /// Queues a live chunk of a paced broadcast (see `relay::channel`): nothing is dropped for
    /// size or age, because the hub reads the broadcaster only while every queue
    /// [`has_room`](Self::has_room). A queue still waiting for a keyframe (it skipped while the
    /// broadcast was real-time, or joined mid-GOP) goes on waiting.
    pub fn push_paced(&mut self, chunk: &Chunk, now: Instant) -> Verdict {
        if self.waiting {
            return self.push(chunk, now);
        }
        if self.keeps(chunk.mark) {
            self.enqueue(chunk.data.clone(), chunk.mark, chunk.rtmp.clone(), now);
        }
        self.behind_since = None;
        Verdict::Ok
    }

    /// Whether a live chunk goes into a queue that is not waiting: not a RASL picture of the
    /// keyframe the watcher started on. A later keyframe ends that start.
    fn keeps(&mut self, mark: Mark) -> bool {
        match mark {
            Mark::Keyframe => {
                self.started_at_key = false;
                true
            }
            Mark::Rasl => !self.started_at_key,
            _ => true,
        }
    }

    /// Below its byte bound: a paced broadcast may be read for this watcher.
    pub fn has_room(&self) -> bool {
        self.bytes < self.limits.max_bytes
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
        let mut front: Option<Entry> = None;
        let mut key = None;
        let mut tail: Vec<Entry> = Vec::new();
        self.tail = match self.format {
            StreamFormat::AnnexB => Tail::AnnexB(VideoCodec::H264),
            StreamFormat::AnnexBH265 => Tail::AnnexB(VideoCodec::H265),
            StreamFormat::Ts => Tail::Ts { closed: Vec::new() },
            _ => Tail::None,
        };
        for (i, e) in old.into_iter().enumerate() {
            if i == 0 && keep_front {
                front = Some(e);
                continue;
            }
            if i == n - 1 && last_is_key {
                key = Some(e);
                continue;
            }
            if e.mark == Mark::Data || e.mark == Mark::Keyframe {
                if let TailCut::Keep(pieces, dropped) = self.tail_cut(&e.data) {
                    self.stats.bytes_dropped += dropped as u64;
                    if pieces.is_empty() {
                        self.stats.chunks_dropped += 1;
                    }
                    tail.extend(pieces.into_iter().map(|data| Entry {
                        data,
                        mark: Mark::Data,
                        rtmp: None,
                        at: now,
                    }));
                    continue;
                }
            }
            if let Mark::Header(kind) = e.mark {
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
        // What is kept starts its clock again, or its age would overflow the queue at once.
        if let Some(f) = front.as_mut() {
            f.at = now;
        }
        for h in headers.iter_mut() {
            h.at = now;
        }
        if let Some(f) = front {
            self.bytes += f.data.len() - self.front_off;
            self.q.push_back(f);
        } else {
            self.front_off = 0;
        }
        for e in tail.into_iter().chain(headers) {
            self.bytes += e.data.len();
            self.q.push_back(e);
        }
        self.waiting = key.is_none();
        if !self.waiting {
            self.tail = Tail::None;
            self.started_at_key = true;
        }
        if let Some(k) = key {
            self.bytes += k.data.len();
            self.q.push_back(k);
        }
    }

    /// Applies the tail rule to a chunk that would be dropped: the rest of what was in progress at
    /// the cut is kept.
    fn tail_cut(&mut self, data: &Bytes) -> TailCut {
        match &mut self.tail {
            Tail::None => TailCut::No,
            Tail::AnnexB(codec) => {
                if annexb_starts_au(data, *codec) {
                    self.tail = Tail::None;
                    TailCut::No
                } else {
                    TailCut::Keep(vec![data.clone()], 0)
                }
            }
            Tail::Ts { closed } => {
                if data.len() % TS_PACKET != 0 {
                    // Resync garbage: nothing of a PES.
                    return TailCut::No;
                }
                let mut pieces = Vec::new();
                let mut run: Option<usize> = None;
                let mut dropped = 0;
                for (i, p) in data.chunks_exact(TS_PACKET).enumerate() {
                    let pid = (((p[1] & 0x1F) as u16) << 8) | p[2] as u16;
                    let pusi = p[1] & 0x40 != 0;
                    let keep = p[0] == 0x47 && pid != 0x1FFF && !pusi && !closed.contains(&pid);
                    if pusi && p[0] == 0x47 && !closed.contains(&pid) && closed.len() < 64 {
                        closed.push(pid);
                    }
                    if keep {
                        run.get_or_insert(i);
                    } else {
                        dropped += TS_PACKET;
                        if let Some(s) = run.take() {
                            pieces.push(data.slice(s * TS_PACKET..i * TS_PACKET));
                        }
                    }
                }
                if let Some(s) = run {
                    pieces.push(data.slice(s * TS_PACKET..));
                }
                TailCut::Keep(pieces, dropped)
            }
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

    /// Nothing of the front chunk has been written yet (a message-framed stream such as RTSP
    /// interleaved can insert its own bytes here).
    pub fn at_chunk_start(&self) -> bool {
        self.front_off == 0
    }

    /// Unwritten bytes of the front chunk.
    pub fn front(&self) -> Option<&[u8]> {
        self.q.front().map(|e| &e.data[self.front_off..])
    }

    /// Unwritten bytes of the front chunk, shared (no copy), for a writer that queues chunks
    /// elsewhere; [`Self::consume`] them once taken.
    pub fn front_bytes(&self) -> Option<Bytes> {
        self.q.front().map(|e| e.data.slice(self.front_off..))
    }

    /// The front chunk whole (nothing of it consumed yet), with its mark and shared RTMP message,
    /// for a writer that consumes whole chunks.
    pub fn front_chunk(&self) -> Option<(&Bytes, Mark, Option<&Arc<RtmpMsg>>)> {
        self.q
            .front()
            .filter(|_| self.front_off == 0)
            .map(|e| (&e.data, e.mark, e.rtmp.as_ref()))
    }

    /// Marks `n` bytes as written at `now` (each chunk written whole counts in the delay
    /// histogram).
    pub fn consume(&mut self, mut n: usize, now: Instant) {
        n = n.min(self.bytes);
        self.stats.bytes_sent += n as u64;
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.q.front() else { break };
            let left = front.data.len() - self.front_off;
            if n >= left {
                n -= left;
                self.stats
                    .delay
                    .observe(now.saturating_duration_since(front.at));
                self.q.pop_front();
                self.front_off = 0;
            } else {
                self.front_off += n;
                n = 0;
            }
        }
        if self.q.is_empty() {
            // A burst (a join's GOP) grew the ring: give it back, so idle watchers hold little.
            if self.q.capacity() > SHRINK_ABOVE {
                self.q.shrink_to(SHRINK_ABOVE / 4);
            }
            if !self.waiting {
                // Caught up with the live edge (not merely waiting for a keyframe).
                self.behind_since = None;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(mark: Mark, n: usize, tag: u8) -> Chunk {
        Chunk::new(vec![tag; n], mark)
    }
    const SPS: Mark = Mark::Header(HeaderKind::H264Sps);
    const PAT: Mark = Mark::Header(HeaderKind::TsPat);

    fn limits() -> QueueLimits {
        QueueLimits {
            max_bytes: 1000,
            max_age: Duration::from_secs(5),
            max_behind: Duration::from_secs(10),
        }
    }

    fn drain(q: &mut WatcherQueue) -> Vec<u8> {
        let mut v = Vec::new();
        while let Some(f) = q.front() {
            let f = f.to_vec();
            q.consume(f.len(), Instant::now());
            v.extend_from_slice(&f);
        }
        v
    }

    fn live(fmt: StreamFormat, t: Instant) -> WatcherQueue {
        WatcherQueue::new(
            limits(),
            fmt,
            Join {
                chunks: vec![],
                starts_on_keyframe: true,
            },
            t,
        )
    }

    #[test]
    fn delivers_in_order_and_shares_the_bytes() {
        let t = Instant::now();
        let mut q = live(StreamFormat::Ts, t);
        let a = c(Mark::Keyframe, 10, 1);
        assert_eq!(q.push(&a, t), Verdict::Ok);
        assert_eq!(q.push(&c(Mark::Data, 5, 2), t), Verdict::Ok);
        // No copy: the queued slice is the chunk's own memory.
        assert_eq!(q.front().unwrap().as_ptr(), a.data.as_ptr());
        let mut io = Vec::new();
        q.fill_iovecs(&mut io, 8);
        assert_eq!(io.len(), 2);
        drop(io);
        q.consume(3, Instant::now());
        assert_eq!(q.bytes(), 12);
        assert_eq!(q.front().unwrap().len(), 7);
        let mut io = Vec::new();
        q.fill_iovecs(&mut io, 1);
        assert_eq!(io.len(), 1);
        assert_eq!(io[0].len(), 7);
        drop(io);
        assert_eq!(drain(&mut q), [vec![1; 7], vec![2; 5]].concat());
        assert!(q.is_empty());
        assert_eq!(q.stats().bytes_sent, 15);
    }

    #[test]
    fn rasl_pictures_of_the_keyframe_a_watcher_starts_on_are_not_queued() {
        let t = Instant::now();
        let rasl = |id| c(Mark::Rasl, 2, id);
        // Joined on the cached GOP's keyframe (a CRA): its RASL pictures are not queued, the next
        // keyframe's are.
        let join = Join {
            chunks: vec![c(Mark::Keyframe, 10, 1)],
            starts_on_keyframe: true,
        };
        let mut q = WatcherQueue::new(limits(), StreamFormat::Flv, join, t);
        for ch in [
            rasl(2),
            c(Mark::Data, 3, 3),
            c(Mark::Keyframe, 4, 4),
            rasl(5),
        ] {
            assert_eq!(q.push(&ch, t), Verdict::Ok);
        }
        assert_eq!(
            drain(&mut q),
            [vec![1; 10], vec![3; 3], vec![4; 4], vec![5; 2]].concat()
        );
        // Waiting for a keyframe (nothing cached): the same from the keyframe it starts on.
        let mut q = WatcherQueue::new_waiting(limits(), StreamFormat::Flv, vec![], t);
        for ch in [
            rasl(1),
            c(Mark::Keyframe, 4, 2),
            rasl(3),
            c(Mark::Data, 3, 4),
        ] {
            q.push(&ch, t);
        }
        assert_eq!(drain(&mut q), [vec![2; 4], vec![4; 3]].concat());
        // Paced delivery too.
        let join = Join {
            chunks: vec![c(Mark::Keyframe, 10, 1)],
            starts_on_keyframe: true,
        };
        let mut q = WatcherQueue::new(limits(), StreamFormat::Flv, join, t);
        q.push_paced(&rasl(2), t);
        q.push_paced(&c(Mark::Keyframe, 4, 3), t);
        q.push_paced(&rasl(4), t);
        assert_eq!(
            drain(&mut q),
            [vec![1; 10], vec![3; 4], vec![4; 2]].concat()
        );
    }

    #[test]
    fn join_gop_then_live_or_wait_for_keyframe() {
        let t = Instant::now();
        let join = Join {
            chunks: vec![c(SPS, 3, 7), c(Mark::Keyframe, 10, 1), c(Mark::Data, 5, 2)],
            starts_on_keyframe: true,
        };
        let mut q = WatcherQueue::new(limits(), StreamFormat::AnnexB, join, t);
        q.push(&c(Mark::Data, 4, 3), t);
        assert_eq!(
            drain(&mut q),
            [vec![7; 3], vec![1; 10], vec![2; 5], vec![3; 4]].concat()
        );

        // Nothing cached: headers, then nothing until the next keyframe (headers meanwhile).
        let mut q =
            WatcherQueue::new_waiting(limits(), StreamFormat::AnnexB, vec![c(SPS, 3, 7)], t);
        assert!(q.waiting());
        q.push(&c(Mark::Data, 4, 3), t);
        q.push(&c(SPS, 3, 8), t);
        q.push(&c(Mark::Keyframe, 2, 9), t);
        q.push(&c(Mark::Data, 1, 4), t);
        assert_eq!(drain(&mut q), [vec![8; 3], vec![9; 2], vec![4; 1]].concat());
        assert_eq!(q.stats().chunks_dropped, 2, "the Data and the older SPS");

        // A GOP bigger than the queue may hold: headers only, then wait.
        let join = Join {
            chunks: vec![c(SPS, 3, 7), c(Mark::Keyframe, 2000, 1)],
            starts_on_keyframe: true,
        };
        let mut q = WatcherQueue::new(limits(), StreamFormat::AnnexB, join, t);
        assert!(q.waiting());
        assert_eq!(drain(&mut q), vec![7; 3]);
    }

    #[test]
    fn opaque_starts_live_and_overflow_disconnects() {
        let t = Instant::now();
        let mut q = WatcherQueue::new(limits(), StreamFormat::Opaque, Join::default(), t);
        assert!(!q.waiting());
        assert_eq!(q.push(&c(Mark::Data, 600, 1), t), Verdict::Ok);
        assert!(matches!(
            q.push(&c(Mark::Data, 600, 2), t),
            Verdict::Disconnect(_)
        ));
        // By age too.
        let mut q = WatcherQueue::new(limits(), StreamFormat::Opaque, Join::default(), t);
        q.push(&c(Mark::Data, 1, 1), t);
        assert!(matches!(
            q.push(&c(Mark::Data, 1, 2), t + Duration::from_secs(6)),
            Verdict::Disconnect(_)
        ));
    }

    #[test]
    fn overflow_skips_to_the_next_keyframe_finishing_the_front_chunk() {
        let t = Instant::now();
        let mut q = live(StreamFormat::Flv, t);
        q.push(&c(Mark::Keyframe, 400, 1), t);
        q.push(&c(Mark::Data, 400, 2), t);
        q.consume(100, Instant::now()); // the front is partly written
        q.push(&c(SPS, 10, 5), t);
        q.push(&c(SPS, 10, 6), t);
        assert_eq!(q.push(&c(Mark::Data, 400, 3), t), Verdict::Ok); // 300+400+20+400 > 1000
        assert!(q.waiting());
        assert_eq!(q.stats().skips, 1);
        assert_eq!(q.push(&c(Mark::Data, 50, 4), t), Verdict::Ok);
        q.push(&c(Mark::Keyframe, 20, 7), t);
        q.push(&c(Mark::Data, 20, 8), t);
        // The rest of the front chunk, the newest header, then the next GOP; never a broken GOP.
        assert_eq!(
            drain(&mut q),
            [vec![1; 300], vec![6; 10], vec![7; 20], vec![8; 20]].concat()
        );
        let s = q.stats();
        assert_eq!(s.chunks_dropped, 4); // Data 2, older SPS, Data 3, Data 4
        assert_eq!(s.bytes_dropped, 400 + 10 + 400 + 50);
        assert_eq!(s.bytes_sent, 450);
    }

    #[test]
    fn overflow_on_a_keyframe_resumes_there() {
        let t = Instant::now();
        let mut q = live(StreamFormat::Ts, t);
        q.push(&c(Mark::Keyframe, 600, 1), t);
        q.push(&c(Mark::Keyframe, 600, 2), t);
        assert!(!q.waiting());
        assert_eq!(drain(&mut q), vec![2; 600]);
    }

    #[test]
    fn overflow_by_age_and_disconnect_when_behind_too_long() {
        let t = Instant::now();
        let mut q = live(StreamFormat::Ts, t);
        q.push(&c(PAT, 10, 0), t);
        q.push(&c(Mark::Keyframe, 10, 1), t);
        let s = Duration::from_secs(1);
        // Never reads: skips by age, then is cut off after max_behind.
        let mut verdict = Verdict::Ok;
        let mut secs = 0;
        for i in 1..30u64 {
            let mark = if i % 3 == 0 {
                Mark::Keyframe
            } else {
                Mark::Data
            };
            verdict = q.push(&c(mark, 10, i as u8), t + s * i as u32);
            if verdict != Verdict::Ok {
                secs = i;
                break;
            }
        }
        assert!(matches!(verdict, Verdict::Disconnect(_)), "{:?}", q.stats());
        assert!(q.stats().skips >= 1);
        // First overflow at 6 s (age > 5 s), disconnect once behind > 10 s.
        assert!((16..=17).contains(&secs), "disconnected at {secs} s");
        // A watcher that catches up is no longer behind.
        let mut q = live(StreamFormat::Ts, t);
        q.push(&c(Mark::Keyframe, 10, 1), t);
        q.push(&c(Mark::Data, 10, 1), t + s * 6);
        assert_eq!(q.stats().skips, 1);
        drain(&mut q);
        assert_eq!(q.check(t + s * 8), Verdict::Ok);
        // Waiting for a keyframe is still behind ...
        assert!(matches!(q.check(t + s * 17), Verdict::Disconnect(_)));
        // ... until the keyframe comes and is written.
        q.push(&c(Mark::Keyframe, 10, 2), t + s * 9);
        drain(&mut q);
        assert_eq!(q.check(t + s * 30), Verdict::Ok);
        // Kept headers do not re-trigger the age overflow.
        let mut q = live(StreamFormat::Ts, t);
        q.push(&c(PAT, 10, 0), t);
        q.push(&c(Mark::Keyframe, 10, 1), t);
        q.push(&c(Mark::Data, 10, 1), t + s * 6);
        q.push(&c(Mark::Keyframe, 10, 1), t + s * 6);
        q.push(&c(Mark::Data, 10, 1), t + s * 7);
        assert_eq!(q.stats().skips, 1);
    }

    fn ts_packet(pid: u16, pusi: bool, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; 188];
        p[0] = 0x47;
        p[1] = ((pid >> 8) as u8 & 0x1F) | if pusi { 0x40 } else { 0 };
        p[2] = pid as u8;
        p[3] = 0x10;
        p
    }

    #[test]
    fn ts_skip_finishes_the_pes_packets_in_progress() {
        let t = Instant::now();
        let lim = QueueLimits {
            max_bytes: 1050,
            ..limits()
        };
        let mut q = WatcherQueue::new(
            lim,
            StreamFormat::Ts,
            Join {
                chunks: vec![],
                starts_on_keyframe: true,
            },
            t,
        );
        let k = ts_packet(0x100, true, b'K');
        q.push(&Chunk::new(k, Mark::Keyframe), t);
        q.consume(100, Instant::now());
        let d1 = [
            ts_packet(0x100, false, b'A'),
            ts_packet(0x101, true, b'B'),
            ts_packet(0x101, false, b'C'),
        ]
        .concat();
        q.push(&Chunk::new(d1, Mark::Data), t);
        let d2 = [
            ts_packet(0x100, false, b'D'),
            ts_packet(0x100, true, b'E'),
            ts_packet(0x100, false, b'F'),
            ts_packet(0x101, false, b'G'),
            ts_packet(0x102, false, b'X'),
        ]
        .concat();
        q.push(&Chunk::new(d2, Mark::Data), t);
        assert!(q.waiting());
        // Still the tail: 0x102's PES started before the cut; 0x100 and 0x101 are past it.
        q.push(
            &Chunk::new(
                [ts_packet(0x100, false, b'H'), ts_packet(0x102, false, b'Y')].concat(),
                Mark::Data,
            ),
            t,
        );
        q.push(&Chunk::new(ts_packet(0x100, true, b'N'), Mark::Keyframe), t);
        let got = drain(&mut q);
        assert_eq!(got.len() % 188, 88);
        assert_eq!(&got[..88], &ts_packet(0x100, true, b'K')[100..]);
        assert_eq!(
            got[88..].chunks(188).map(|p| p[100]).collect::<Vec<u8>>(),
            b"ADXYN".to_vec()
        );
        assert_eq!(q.stats().skips, 1);
    }

    #[test]
    fn annexb_skip_finishes_the_access_unit_in_progress() {
        let t = Instant::now();
        let lim = QueueLimits {
            max_bytes: 1000,
            ..limits()
        };
        let mut q = WatcherQueue::new(
            lim,
            StreamFormat::AnnexB,
            Join {
                chunks: vec![],
                starts_on_keyframe: true,
            },
            t,
        );
        let nal = |hdr: &[u8], n: usize, fill: u8| {
            let mut v = hdr.to_vec();
            v.resize(n, fill);
            Chunk::new(v, Mark::Data)
        };
        let mut k = nal(&[0, 0, 0, 1, 0x65, 0x88], 300, 1);
        k.mark = Mark::Keyframe;
        q.push(&k, t);
        q.consume(10, Instant::now());
        q.push(&nal(&[], 300, 2), t); // the rest of the IDR slice
        q.push(&nal(&[0, 0, 0, 1, 0x65, 0x08], 100, 3), t); // its second slice (first_mb != 0)
        q.push(&nal(&[0, 0, 0, 1, 0x41, 0x9A], 200, 4), t); // next picture
        q.push(&nal(&[], 400, 5), t); // overflow
        assert!(q.waiting());
        q.push(&nal(&[], 50, 6), t);
        let got = drain(&mut q);
        assert_eq!(got.len(), 290 + 300 + 100);
        assert!(got[290..590].iter().all(|&b| b == 2));
        assert_eq!(q.stats().bytes_dropped, 200 + 400 + 50);
    }

    #[test]
    fn joined_before_detection_gets_everything_then_the_known_policy() {
        let t = Instant::now();
        let mut q = WatcherQueue::new(limits(), StreamFormat::Opaque, Join::default(), t);
        q.set_format(StreamFormat::Flv);
        assert_eq!(q.format(), StreamFormat::Flv);
        q.push(&c(Mark::Header(HeaderKind::FlvFile), 13, 1), t);
        q.push(&c(Mark::Keyframe, 600, 2), t);
        // Overflow skips instead of disconnecting.
        assert_eq!(q.push(&c(Mark::Data, 600, 3), t), Verdict::Ok);
        assert!(q.waiting());
        assert_eq!(drain(&mut q), vec![1; 13]);
    }
}
