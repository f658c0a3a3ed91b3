//! The hub's channels, pure: who broadcasts on each channel, who watches it, what each watcher has
//! queued, and every policy that decides it. No sockets and no clock: the fronts (`front/`) call
//! in with the time, and act on the [`Effects`] that come back (flush these watchers, close those).
//!
//! Where each policy lives:
//! - Attach ([`Channels::watch`], `attach_pending`): a watcher of a live channel whose format is
//!   known gets the GOP cache at once, in its container (the broadcast's, or a converted view's);
//!   before that it waits, at most `wait_timeout`, and at most `max_waiting` watchers wait in all.
//! - Deliver ([`Channels::push`]): the broadcast is cut into chunks, cached, and queued to every
//!   watcher and view. How depends on the broadcast's pace ([`super::pace`]):
//!   - real time: the broadcaster is never held back; a watcher that falls behind skips to the
//!     next keyframe ([`WatcherQueue::push`]) and one that stays behind comes back in
//!     [`Effects::drop`];
//!   - paced (faster than real time, or no clock): nothing is dropped; the hub reads the
//!     broadcaster only while [`Channels::room`] says every watcher has room, and
//!     [`Channels::tick`] drops a straggler: a watcher that drained nothing, or less than a tenth
//!     of what the fastest drained, over `max_behind` while the broadcaster was held back. RTSP
//!     players over UDP cannot push back and keep the real-time policy.
//! - Takeover ([`Channels::broadcast`]): a second broadcaster replaces the first; the watchers keep
//!   their queues, drain them, and continue with the new stream (without its FLV file header, its
//!   FLV timestamps continuing the old ones: [`super::restamp`]) when its format is theirs, or end
//!   when it is not.
//! - End ([`Channels::end`]): every watcher gets what is queued, then EOF.
//! - Removal ([`Channels::leave`]): one place takes a watcher out of every list.
//!
//! A watcher is a [`Sub`] known by a [`SubId`], the front's handle for its connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::cache::GopCache;
use super::convert::{Convert, ViewFormat};
use super::http::Ext;
use super::metrics::{
    kind_index, ChannelMetrics, ChannelTotals, Histogram, Leave, Retired, N_KINDS,
};
use super::pace::{PaceMeter, Regime};
use super::prechunk::Prechunker;
use super::queue::{QueueStats, WatcherQueue};
use super::restamp::Restamp;
use super::rtsp::RtpChannel;
use super::stats::{ChannelStats, WatcherStats};
use super::stream::{Chunk, HeaderKind, Mark, Splitter};
use crate::media::StreamFormat;
pub use api::{Config, Effects, Refusal, SubKind};
use subs::{feed_view, Subs};

/// A channel's name: (user, channel).
pub type ChanKey = (String, String);
/// A watcher's or broadcaster's handle, given by the front (the hub uses its connection slot).
pub type SubId = usize;

pub fn key_str(k: &ChanKey) -> String {
    format!("{}/{}", k.0, k.1)
}

pub fn format_name(f: Option<StreamFormat>) -> &'static str {
    match f {
        None => "",
        Some(StreamFormat::Flv) => "flv",
        Some(StreamFormat::Ts) => "ts",
        Some(StreamFormat::AnnexB) => "h264",
        Some(StreamFormat::AnnexBH265) => "h265",
        Some(StreamFormat::Opaque) => "opaque",
    }
}

fn ext_format(e: Ext) -> StreamFormat {
    match e {
        Ext::Flv => StreamFormat::Flv,
        Ext::Ts => StreamFormat::Ts,
    }
}

/// One watcher.
pub struct Sub {
    pub key: ChanKey,
    pub kind: SubKind,
    password: Option<String>,
    /// The queue being written; None while waiting for the channel.
    pub queue: Option<WatcherQueue>,
    /// After a takeover: the new stream's queue, written once `queue` is drained.
    next: Option<WatcherQueue>,
    /// The format of the bytes this watcher has been sent (None before any).
    out_format: Option<StreamFormat>,
    /// Fed by a converted view rather than the broadcast itself.
    pub converted: bool,
    wait_deadline: Option<Instant>,
    /// The broadcast ended: close once the queue is written.
    pub eof_after_drain: bool,
    /// Continuing after a takeover: the new stream's FLV file header is not for this watcher
    /// (one header per FLV stream; players read a second one as a tag).
    skip_flv_header: bool,
    dirty: bool,
    /// Its queue said disconnect: the hub drops it at the end of this call, and nothing more is
    /// queued for it (one drop per watcher, however many chunks the call carries).
    doomed: bool,
    /// Figures of queues already finished (before a takeover).
    prev: QueueStats,
    /// Bytes sent when the channel's straggler window began.
    window_sent: u64,
    /// The last time its bytes sent grew (seen by [`Channels::tick`]), and that count.
    progress: Option<(Instant, u64)>,
}

impl Sub {
    fn new(key: &ChanKey, kind: SubKind, password: Option<String>) -> Sub {
        Sub {
            key: key.clone(),
            kind,
            password,
            queue: None,
            next: None,
            out_format: None,
            converted: false,
            wait_deadline: None,
            eof_after_drain: false,
            skip_flv_header: false,
            doomed: false,
            dirty: false,
            prev: Default::default(),
            window_sent: 0,
            progress: None,
        }
    }

    fn live_queue(&mut self) -> Option<&mut WatcherQueue> {
        if self.next.is_some() {
            self.next.as_mut()
        } else {
            self.queue.as_mut()
        }
    }

    /// The queue is written: continue with the next stream's queue if there is one (true).
    pub fn advance(&mut self) -> bool {
        let Some(n) = self.next.take() else {
            return false;
        };
        if let Some(old) = self.queue.replace(n) {
            let st = old.stats();
            self.prev.bytes_sent += st.bytes_sent;
            self.prev.chunks_dropped += st.chunks_dropped;
            self.prev.bytes_dropped += st.bytes_dropped;
            self.prev.skips += st.skips;
            self.prev.delay.add(&st.delay);
        }
        true
    }

    /// Below its queue's byte bound (or not queued yet): a paced broadcast may be read for it.
    fn has_room(&self) -> bool {
        [&self.queue, &self.next]
            .into_iter()
            .flatten()
            .all(WatcherQueue::has_room)
    }

    fn bytes_sent(&self) -> u64 {
        self.prev.bytes_sent
            + [&self.queue, &self.next]
                .into_iter()
                .flatten()
                .map(|q| q.stats().bytes_sent)
                .sum::<u64>()
    }

    /// Anything left to write.
    pub fn busy(&self) -> bool {
        self.queue.as_ref().is_some_and(|q| !q.is_empty())
    }

    /// Its queue-delay histogram, over every queue it had.
    fn delay(&self) -> Histogram {
        let mut h = self.prev.delay;
        for q in [&self.queue, &self.next].into_iter().flatten() {
            h.add(&q.stats().delay);
        }
        h
    }

    fn stats(&self) -> WatcherStats {
        let mut s = WatcherStats {
            kind: self.kind.name(),
            converted: self.converted,
            bytes_sent: self.prev.bytes_sent,
            chunks_dropped: self.prev.chunks_dropped,
            bytes_dropped: self.prev.bytes_dropped,
            skips: self.prev.skips,
            ..Default::default()
        };
        for q in [&self.queue, &self.next].into_iter().flatten() {
            let st = q.stats();
            s.bytes_sent += st.bytes_sent;
            s.queue_bytes += q.bytes();
            s.chunks_dropped += st.chunks_dropped;
            s.bytes_dropped += st.bytes_dropped;
            s.skips += st.skips;
        }
        s
    }
}

/// A container view of a broadcast in another format.
struct View {
    ext: Ext,
    convert: Convert,
    splitter: Splitter,
    cache: GopCache,
    watchers: Vec<SubId>,
    failed: bool,
    /// Its tags as RTMP messages, when it is FLV.
    prechunk: Prechunker,
}

struct Channel {
    publisher: Option<SubId>,
    publisher_peer: Option<SocketAddr>,
    password: Option<String>,
    splitter: Splitter,
    /// One FLV timeline across takeovers.
    restamp: Restamp,
    /// An FLV broadcast's tags as RTMP messages, made once for its RTMP players.
    prechunk: Prechunker,
    cache: GopCache,
    format: Option<StreamFormat>,
    watchers: Vec<SubId>,
    pending: Vec<SubId>,
    views: Vec<View>,
    /// The broadcast as RTP, for RTSP players: `[TCP, UDP]` (made on the first DESCRIBE, and the
    /// first PLAY over UDP).
    rtp: [Option<RtpChannel>; 2],
    bytes_in: u64,
    broadcasts: u64,
    /// The front the broadcaster came in on (`fstream`, `http`, `rtmp`, `rtsp`), and since when.
    proto: &'static str,
    live_since: Option<Instant>,
    /// Bytes received by front, over its broadcasts.
    bytes_in_by: Vec<(&'static str, u64)>,
    /// The broadcast's pace (None until its format is known).
    pace: Option<PaceMeter>,
    /// The broadcaster is held back since then (a watcher has no room).
    held_since: Option<Instant>,
    held_total: Duration,
    /// The straggler window: since when, and whether the broadcaster was held back in it.
    window_start: Option<Instant>,
    window_held: bool,
}

impl Channel {
    fn new(cfg: &Config) -> Self {
        Channel {
            publisher: None,
            publisher_peer: None,
            password: None,
            splitter: Splitter::new(),
            restamp: Restamp::new(),
            prechunk: Prechunker::default(),
            cache: GopCache::new(cfg.cache, cfg.gop_cache),
            format: None,
            watchers: Vec::new(),
            pending: Vec::new(),
            views: Vec::new(),
            rtp: [None, None],
            bytes_in: 0,
            broadcasts: 0,
            proto: "",
            live_since: None,
            bytes_in_by: Vec::new(),
            pace: None,
            held_since: None,
            held_total: Duration::ZERO,
            window_start: None,
            window_held: false,
        }
    }

    fn paced(&self) -> bool {
        self.pace
            .as_ref()
            .is_none_or(|p| p.regime() == Regime::Paced)
    }

    /// The watchers that push back when the broadcast is paced: all but RTSP over UDP.
    fn paced_lists(&self) -> impl Iterator<Item = &SubId> {
        std::iter::once(&self.watchers)
            .chain(self.views.iter().map(|v| &v.watchers))
            .chain(self.rtp[0].iter().map(|r| &r.watchers))
            .flatten()
    }

    fn live(&self) -> bool {
        self.publisher.is_some()
    }
}

/// Every channel and watcher of a hub.
pub struct Channels {
    cfg: Config,
    map: HashMap<ChanKey, Channel>,
    subs: Subs,
    chunks: Vec<Chunk>,
    /// What `/metrics` keeps of watchers and channels that are gone.
    retired: Retired,
    /// When kept (`Some`, for `--on-stop`): every watcher that left, with the bytes it was sent,
    /// in order, until the hub takes them.
    pub departed: Option<Vec<(SubId, u64)>>,
    /// Channels that got a watcher other than an RTMP player, until the hub takes them: their
    /// broadcaster is read as its bytes come again ([`Self::rtmp_only`]).
    pub mixed: Vec<ChanKey>,
}

impl Channels {
    pub fn new(cfg: Config) -> Self {
        Channels {
            cfg,
            map: HashMap::new(),
            subs: Subs::default(),
            chunks: Vec::new(),
            retired: Retired::default(),
            departed: None,
            mixed: Vec::new(),
        }
    }

    pub fn sub(&self, id: SubId) -> Option<&Sub> {
        self.subs.get(id)
    }

    pub fn sub_mut(&mut self, id: SubId) -> Option<&mut Sub> {
        self.subs.get_mut(id)
    }

    /// The front flushes watcher `id` itself later (at a time it chose): it is not listed in
    /// [`Effects::flush`] again until [`Self::flushed`].
    pub fn flush_later(&mut self, id: SubId) {
        if let Some(s) = self.subs.get_mut(id) {
            s.dirty = true;
        }
    }

    /// A watcher in [`Effects::flush`] was flushed: it may be listed again.
    pub fn flushed(&mut self, id: SubId) {
        if let Some(s) = self.subs.get_mut(id) {
            s.dirty = false;
        }
    }

    /// Is `id` the broadcaster of `key`?
    pub fn is_publisher(&self, key: &ChanKey, id: SubId) -> bool {
        self.map.get(key).is_some_and(|ch| ch.publisher == Some(id))
    }

    /// The live channel's password (None: not live; Some(None): no password).
    pub fn live_password(&self, key: &ChanKey) -> Option<Option<&str>> {
        self.map
            .get(key)
            .filter(|c| c.live())
            .map(|c| c.password.as_deref())
    }

    /// The live channel's content, once detected.
    pub fn format(&self, key: &ChanKey) -> Option<StreamFormat> {
        self.map
            .get(key)
            .filter(|c| c.live())
            .and_then(|c| c.format)
    }

    pub fn keys(&self) -> Vec<ChanKey> {
        self.map.keys().cloned().collect()
    }

    /// Anything queued for any watcher.
    pub fn busy(&self) -> bool {
        self.subs.iter().any(|(_, s)| s.busy())
    }

    fn gc(&mut self, key: &ChanKey) {
        if let Some(ch) = self.map.get(key) {
            if ch.publisher.is_none() && ch.watchers.is_empty() && ch.pending.is_empty() {
                let (held, by) = (ch.held_total, ch.bytes_in_by.clone());
                self.map.remove(key);
                // Marked gone by the next `metrics` call, which has the time.
                let t = self.totals(key);
                t.backpressure += held;
                for (p, n) in by {
                    *t.bytes_in.entry(p).or_default() += n;
                }
            }
        }
    }

    /// A channel's totals for `/metrics`, made on first use.
    fn totals(&mut self, key: &ChanKey) -> &mut ChannelTotals {
        self.retired.channels.entry(key.clone()).or_default()
    }

    /// `id` (at `peer`) starts broadcasting on `key`. Returns the broadcaster it replaces, which
    /// the caller closes without ending the broadcast.
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast(
        &mut self,
        id: SubId,
        key: &ChanKey,
        password: Option<String>,
        peer: SocketAddr,
        proto: &'static str,
        now: Instant,
        fx: &mut Effects,
    ) -> Option<SubId> {
        let cfg = &self.cfg;
        let ch = self
            .map
            .entry(key.clone())
            .or_insert_with(|| Channel::new(cfg));
        let old = ch.publisher.take();
        if old == Some(id) {
            // An edge's pull from its origin, connected again (`relay::cascade`).
            log::info!("{peer}: channel {} resumes", key_str(key));
        } else if old.is_some() {
            log::warn!(
                "{peer}: takes over channel {} from {} (second broadcaster)",
                key_str(key),
                ch.publisher_peer.map(|p| p.to_string()).unwrap_or_default()
            );
        }
        if old.is_some() {
            // Existing watchers keep their queues and wait for the new stream's format.
            let mut moved: Vec<SubId> = std::mem::take(&mut ch.watchers);
            for v in ch.views.drain(..) {
                moved.extend(v.watchers);
            }
            ch.pending.extend(moved);
            ch.splitter = Splitter::new();
            ch.restamp.next_stream();
            ch.cache = GopCache::new(cfg.cache, cfg.gop_cache);
            ch.format = None;
            ch.pace = None;
        }
        ch.publisher = Some(id);
        ch.publisher_peer = Some(peer);
        ch.proto = proto;
        ch.live_since = Some(now);
        ch.password = password.clone();
        ch.broadcasts += 1;
        // Waiting watchers with another channel password are refused.
        let pending = ch.pending.clone();
        for w in pending {
            if self.subs.get(w).is_some_and(|s| s.password != password) {
                let why = format!(
                    "watcher of {}: the broadcaster set another channel password",
                    key_str(key)
                );
                self.leave_as(w, Leave::Refused);
                fx.refuse
                    .push((w, Refusal::new(why, 403, "wrong channel password")));
            }
        }
        old
    }

    /// `id` (at `peer`) watches `key` as `kind`. Refused: the wrong channel password, or too many
    /// waiting for channels that are not live.
    #[allow(clippy::too_many_arguments)]
    pub fn watch(
        &mut self,
        id: SubId,
        key: &ChanKey,
        password: Option<String>,
        kind: SubKind,
        peer: SocketAddr,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<(), Refusal> {
        let live = self.live_password(key).map(|p| p.map(str::to_string));
        if let Some(chpw) = &live {
            if *chpw != password {
                let why = format!("watcher of {}: wrong channel password", key_str(key));
                return Err(Refusal::new(why, 403, "wrong channel password"));
            }
        } else {
            let waiting: usize = self.map.values().map(|c| c.pending.len()).sum();
            if waiting >= self.cfg.max_waiting {
                let why = format!(
                    "watcher of {}: {waiting} watchers waiting (--max-waiting)",
                    key_str(key)
                );
                return Err(Refusal::new(why, 503, "too many watchers waiting"));
            }
        }
        log::info!(
            "{peer}: watching {}{}",
            key_str(key),
            if live.is_some() {
                ""
            } else {
                " (waiting for it to go live)"
            }
        );
        if kind != SubKind::Rtmp {
            self.mixed.push(key.clone());
        }
        let mut sub = Sub::new(key, kind, password);
        sub.wait_deadline = Some(now + self.cfg.wait_timeout);
        self.subs.insert(id, sub);
        let cfg = &self.cfg;
        let ch = self
            .map
            .entry(key.clone())
            .or_insert_with(|| Channel::new(cfg));
        ch.pending.push(id);
        if ch.format.is_some() {
            self.attach_pending(key, now, false, fx);
        }
        Ok(())
    }

    /// Attaches the channel's pending watchers (the format is known). `from_start`: the format was
    /// just detected, nothing of this broadcast has been delivered yet, and the watchers get it
    /// from its first byte (whatever precedes the first keyframe too: a TS file's SDT, audio
    /// before video); otherwise a watcher starts on the cached GOP's keyframe.
    fn attach_pending(&mut self, key: &ChanKey, now: Instant, from_start: bool, fx: &mut Effects) {
        let Some(ch) = self.map.get_mut(key) else {
            return;
        };
        let Some(format) = ch.format else { return };
        if ch.publisher.is_none() {
            return;
        }
        let pending = std::mem::take(&mut ch.pending);
        let mut refuse = Vec::new();
        for w in pending {
            let Some(s) = self.subs.get_mut(w) else {
                continue;
            };
            let continuing = s.out_format.is_some();
            // What this watcher needs: its container, from the broadcast or a view.
            let want = match s.kind {
                SubKind::Fstream | SubKind::Hls => s.out_format.unwrap_or(format),
                SubKind::Http(e) => ext_format(e),
                SubKind::Rtmp | SubKind::Rtsp { .. } => StreamFormat::Flv,
            };
            let source_view = if want == format {
                None
            } else if matches!(s.kind, SubKind::Http(_) | SubKind::Rtmp)
                && format != StreamFormat::Opaque
            {
                Some(match want {
                    StreamFormat::Flv => Ext::Flv,
                    _ => Ext::Ts,
                })
            } else {
                None
            };
            if want != format && source_view.is_none() {
                if continuing {
                    // The new stream is in another format: this watcher ends after its queue.
                    s.eof_after_drain = true;
                    fx.flush.push(w);
                } else {
                    let (f, wf) = (format_name(Some(format)), format_name(Some(want)));
                    let why = format!(
                        "HTTP watcher of {}: the broadcast is {f} content, not {wf}",
                        key_str(key)
                    );
                    let msg = format!("channel carries {f} content, not {wf}");
                    refuse.push((w, Refusal::new(why, 415, msg)));
                }
                continue;
            }
            let join = match source_view {
                None => ch.cache.join(),
                Some(ext) => {
                    let vi = match ch.views.iter().position(|v| v.ext == ext) {
                        Some(i) => i,
                        None => {
                            let vf = match ext {
                                Ext::Flv => ViewFormat::Flv,
                                Ext::Ts => ViewFormat::Ts,
                            };
                            let Some(convert) = Convert::new(format, vf) else {
                                let why =
                                    format!("HTTP watcher of {}: no conversion", key_str(key));
                                refuse.push((
                                    w,
                                    Refusal::new(why, 415, "cannot convert this channel"),
                                ));
                                continue;
                            };
                            let mut view = View {
                                ext,
                                convert,
                                splitter: Splitter::new(),
                                cache: GopCache::new(self.cfg.cache, true),
                                watchers: Vec::new(),
                                failed: false,
                                prechunk: Prechunker::default(),
                            };
                            // Prime it with the broadcast's headers and cached GOP.
                            let mut none = Subs::default();
                            let mut ignore = Effects::default();
                            for c in &ch.cache.join().chunks {
                                feed_view(
                                    &mut view,
                                    &c.data,
                                    &mut none,
                                    now,
                                    &mut ignore,
                                    key,
                                    false,
                                    false,
                                );
                            }
                            ch.views.push(view);
                            ch.views.len() - 1
                        }
                    };
                    ch.views[vi].cache.join()
                }
            };
            let mut join = join;
            join.starts_on_keyframe |= from_start;
            if continuing {
                join.chunks
                    .retain(|c| c.mark != Mark::Header(HeaderKind::FlvFile));
            }
            let q = WatcherQueue::new(self.cfg.queue, want, join, now);
            if continuing {
                s.next = Some(q);
                s.skip_flv_header = want == StreamFormat::Flv;
            } else {
                s.queue = Some(q);
            }
            s.out_format = Some(want);
            s.converted = source_view.is_some();
            s.wait_deadline = None;
            match source_view {
                None => ch.watchers.push(w),
                Some(ext) => {
                    if let Some(v) = ch.views.iter_mut().find(|v| v.ext == ext) {
                        v.watchers.push(w);
                    }
                }
            }
            if !s.dirty {
                s.dirty = true;
                fx.flush.push(w);
            }
        }
        for (w, r) in refuse {
            self.leave_as(w, Leave::Refused);
            fx.refuse.push((w, r));
        }
    }

    /// Bytes of the broadcast on `key`, arrived at `now` (`wall` on the wall clock, for RTCP
    /// sender reports).
    pub fn push(
        &mut self,
        key: &ChanKey,
        data: &[u8],
        now: Instant,
        wall: SystemTime,
        fx: &mut Effects,
    ) {
        let Some(ch) = self.map.get_mut(key) else {
            return;
        };
        ch.bytes_in += data.len() as u64;
        match ch.bytes_in_by.iter_mut().find(|b| b.0 == ch.proto) {
            Some(b) => b.1 += data.len() as u64,
            None => ch.bytes_in_by.push((ch.proto, data.len() as u64)),
        }
        let mut chunks = std::mem::take(&mut self.chunks);
        chunks.clear();
        ch.splitter.push(data, &mut chunks);
        if ch.splitter.format() == Some(StreamFormat::Flv) {
            ch.restamp.apply(&mut chunks);
        }
        self.deliver(key, &chunks, now, wall, false, fx);
        self.chunks = chunks;
    }

    fn deliver(
        &mut self,
        key: &ChanKey,
        chunks: &[Chunk],
        now: Instant,
        wall: SystemTime,
        finish: bool,
        fx: &mut Effects,
    ) {
        let Some(ch) = self.map.get_mut(key) else {
            return;
        };
        if ch.format.is_none() && ch.splitter.format().is_some() {
            ch.format = ch.splitter.format();
            ch.pace = ch.format.map(|f| PaceMeter::new(f, self.cfg.unclocked));
            log::info!(
                "channel {}: {} content",
                key_str(key),
                ch.format.map_or("unknown (opaque)", StreamFormat::describe)
            );
            self.attach_pending(key, now, true, fx);
        }
        let Some(ch) = self.map.get_mut(key) else {
            return;
        };
        let subs = &mut self.subs;
        for c in chunks {
            if let (Some(p), Some(f)) = (ch.pace.as_mut(), ch.format) {
                if let Some(change) = p.chunk(f, c, now) {
                    log::info!(
                        "channel {}: {} (media at {:.2}x real time)",
                        key_str(key),
                        match change.regime {
                            Regime::RealTime => "real time: slow watchers skip to keyframes",
                            Regime::Paced => "paced to its watchers: nothing is dropped",
                        },
                        change.speed
                    );
                }
            }
            let paced = ch.paced();
            let mut c = c.clone();
            let rtmp = (ch.format == Some(StreamFormat::Flv)).then_some(&mut ch.prechunk);
            subs.fan_out(&ch.watchers, &mut c, now, paced, fx, rtmp);
            ch.cache.push(&c, now);
            let c = &c;
            for v in &mut ch.views {
                feed_view(v, &c.data, subs, now, fx, key, false, paced);
            }
            for (udp, rv) in ch.rtp.iter_mut().enumerate() {
                let Some(rv) = rv else { continue };
                for mut x in rv.feed(&c.data, false, now, wall) {
                    subs.fan_out(&rv.watchers, &mut x, now, paced && udp == 0, fx, None);
                }
            }
        }
        if finish {
            let paced = ch.paced();
            for v in &mut ch.views {
                feed_view(v, &[], subs, now, fx, key, true, paced);
            }
            for (udp, rv) in ch.rtp.iter_mut().enumerate() {
                let Some(rv) = rv else { continue };
                for mut x in rv.feed(&[], true, now, wall) {
                    subs.fan_out(&rv.watchers, &mut x, now, paced && udp == 0, fx, None);
                }
            }
        }
    }

    /// The broadcast on `key` ended: flush the splitter, let every watcher drain then EOF.
    /// Returns the broadcaster, which has left the channel.
    pub fn end(
        &mut self,
        key: &ChanKey,
        now: Instant,
        wall: SystemTime,
        why: &str,
        fx: &mut Effects,
    ) -> Option<SubId> {
        if !self.map.get(key).is_some_and(Channel::live) {
            return None;
        }
        let mut chunks = Vec::new();
        if let Some(ch) = self.map.get_mut(key) {
            ch.splitter.finish(&mut chunks);
            if ch.splitter.format() == Some(StreamFormat::Flv) {
                ch.restamp.apply(&mut chunks);
            }
        }
        self.deliver(key, &chunks, now, wall, true, fx);
        let ch = self.map.get_mut(key)?;
        let publisher = ch.publisher.take();
        let mut ending: Vec<SubId> = std::mem::take(&mut ch.watchers);
        for v in ch.views.drain(..) {
            ending.extend(v.watchers);
        }
        for r in ch.rtp.iter_mut() {
            ending.extend(r.take().map(|r| r.watchers).unwrap_or_default());
        }
        // Watchers that were continuing from a replaced broadcast and never got the new one end
        // too.
        let (cont, waiting): (Vec<SubId>, Vec<SubId>) = std::mem::take(&mut ch.pending)
            .into_iter()
            .partition(|&w| self.subs.get(w).is_some_and(|s| s.queue.is_some()));
        ending.extend(cont);
        ch.pending = waiting;
        ch.splitter = Splitter::new();
        ch.restamp = Restamp::new();
        ch.cache = GopCache::new(self.cfg.cache, self.cfg.gop_cache);
        ch.format = None;
        ch.password = None;
        ch.pace = None;
        if let Some(t) = ch.held_since.take() {
            ch.held_total += now.saturating_duration_since(t);
        }
        ch.window_start = None;
        log::info!(
            "channel {}: {why}; {} watchers get what is queued, then EOF",
            key_str(key),
            ending.len()
        );
        for w in ending {
            if let Some(s) = self.subs.get_mut(w) {
                s.eof_after_drain = true;
                // A watcher between two streams finishes the old one only.
                if s.queue.is_none() {
                    s.queue = s.next.take();
                }
                // Out of every list now: only its queue is left.
                s.dirty = true;
            }
            fx.flush.push(w);
        }
        self.gc(key);
        publisher
    }

    /// `id` stops watching (closed, refused, torn down): out of every list, its queue dropped.
    pub fn leave(&mut self, id: SubId) -> Option<Sub> {
        let why = match self.subs.get(id)? {
            s if s.doomed => Leave::Slow,
            s if s.eof_after_drain => Leave::End,
            _ => Leave::Closed,
        };
        self.leave_as(id, why)
    }

    /// [`Self::leave`], counted in `/metrics` as `why`.
    fn leave_as(&mut self, id: SubId, why: Leave) -> Option<Sub> {
        let s = self.subs.remove(id)?;
        if let Some(d) = self.departed.as_mut() {
            d.push((id, s.bytes_sent()));
        }
        if s.queue.is_some() {
            let st = s.stats();
            let k = kind_index(s.kind.name());
            let t = &mut self.totals(&s.key).by_kind[k];
            t.bytes_out += st.bytes_sent;
            t.skips += st.skips;
            t.bytes_dropped += st.bytes_dropped;
            t.leaves[Leave::ALL.iter().position(|&l| l == why).unwrap_or(0)] += 1;
            self.retired.delay[k].add(&s.delay());
        }
        if let Some(ch) = self.map.get_mut(&s.key) {
            ch.watchers.retain(|&x| x != id);
            ch.pending.retain(|&x| x != id);
            for v in &mut ch.views {
                v.watchers.retain(|&x| x != id);
            }
            for rv in ch.rtp.iter_mut().flatten() {
                rv.watchers.retain(|&x| x != id);
            }
        }
        self.gc(&s.key);
        Some(s)
    }

    /// The broadcaster `id` of `key` is gone without ending it (taken over): nothing to do but
    /// forget empty channels.
    pub fn forget(&mut self, key: &ChanKey) {
        self.gc(key);
    }

    /// Watchers whose channel did not go live within the wait timeout.
    pub fn expired(&self, now: Instant) -> Vec<(SubId, Refusal)> {
        let mut out = Vec::new();
        for (&id, s) in self.subs.iter() {
            if s.wait_deadline.is_some_and(|d| now >= d) {
                let why = format!(
                    "watcher of {}: channel not live within the wait timeout",
                    key_str(&s.key)
                );
                out.push((id, Refusal::new(why, 404, "channel not live")));
            }
        }
        out
    }
}

mod api;
mod cascade;
mod merge;
mod paced;
mod report;
mod rtsp;
mod subs;
#[cfg(test)]
mod tests;
