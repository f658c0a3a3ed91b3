//! The watchers of a hub by id, and the fan-out of a chunk to a list of them, straight or
//! through a view (FLV/TS conversion, split, GOP cache).

use std::collections::HashMap;
use std::time::Instant;

use super::super::http::Ext;
use super::super::prechunk::Prechunker;
use super::super::queue::Verdict;
use super::super::stream::{Chunk, HeaderKind, Mark};
use super::{key_str, ChanKey, Effects, Sub, SubId, SubKind, View};

/// Hashes a [`SubId`] (a small integer the hub chose) as itself: the watchers are looked up for
/// every chunk delivered, and SipHash's resistance to chosen keys buys nothing here.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Spread the low bits across the word (Fibonacci hashing): hashbrown uses the top bits.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

/// The watchers, by [`SubId`].
#[derive(Default)]
pub(super) struct Subs(HashMap<SubId, Sub, std::hash::BuildHasherDefault<IdHasher>>);

impl Subs {
    pub(super) fn get_mut(&mut self, id: SubId) -> Option<&mut Sub> {
        self.0.get_mut(&id)
    }

    pub(super) fn get(&self, id: SubId) -> Option<&Sub> {
        self.0.get(&id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&SubId, &Sub)> {
        self.0.iter()
    }

    pub(super) fn insert(&mut self, id: SubId, s: Sub) {
        self.0.insert(id, s);
    }

    pub(super) fn remove(&mut self, id: SubId) -> Option<Sub> {
        self.0.remove(&id)
    }

    /// Queues `chunk` to every watcher in `list`; notes the ones to flush and to drop. With
    /// `rtmp` (the list's FLV tags, in order): the first RTMP player makes the chunk's shared RTMP
    /// message, which stays in `chunk` (for the cache) and goes to every RTMP player.
    pub(super) fn fan_out(
        &mut self,
        list: &[SubId],
        chunk: &mut Chunk,
        now: Instant,
        paced: bool,
        fx: &mut Effects,
        mut rtmp: Option<&mut Prechunker>,
    ) {
        for &w in list {
            let Some(s) = self.get_mut(w).filter(|s| !s.doomed) else {
                continue;
            };
            if s.kind == SubKind::Rtmp && chunk.rtmp.is_none() {
                if let Some(p) = rtmp.take() {
                    chunk.rtmp = p.message(&chunk.data);
                }
            }
            if s.skip_flv_header && chunk.mark == Mark::Header(HeaderKind::FlvFile) {
                s.skip_flv_header = false;
                continue;
            }
            let Some(q) = s.live_queue() else { continue };
            let verdict = if paced {
                q.push_paced(chunk, now)
            } else {
                q.push(chunk, now)
            };
            match verdict {
                Verdict::Ok => {
                    if !s.dirty {
                        s.dirty = true;
                        fx.flush.push(w);
                    }
                }
                Verdict::Disconnect(r) => {
                    s.doomed = true;
                    fx.drop.push((w, r.to_string()));
                }
            }
        }
    }
}

/// Runs a chunk through a view: convert, split, cache, fan out.
#[allow(clippy::too_many_arguments)]
pub(super) fn feed_view(
    view: &mut View,
    data: &[u8],
    subs: &mut Subs,
    now: Instant,
    fx: &mut Effects,
    key: &ChanKey,
    finish: bool,
    paced: bool,
) {
    if view.failed {
        return;
    }
    let mut out = Vec::new();
    if let Err(e) = view.convert.push(data, &mut out) {
        log::warn!(
            "channel {}: {} view: {e}; its watchers get EOF",
            key_str(key),
            if view.ext == Ext::Flv { "FLV" } else { "TS" }
        );
        view.failed = true;
    }
    if finish && !view.failed {
        view.convert.finish(&mut out);
    }
    let mut chunks = Vec::new();
    view.splitter.push(&out, &mut chunks);
    if finish {
        view.splitter.finish(&mut chunks);
    }
    for mut c in chunks {
        let rtmp = (view.ext == Ext::Flv).then_some(&mut view.prechunk);
        subs.fan_out(&view.watchers, &mut c, now, paced, fx, rtmp);
        view.cache.push(&c, now);
    }
}
