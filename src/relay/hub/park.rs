//! Broadcasters read on the RTMP players' merge ticks.
//!
//! With `--rtmp-merge`, an RTMP player is written at most once per tick (the hub's grid of merge
//! periods, [`next_tick`]): what arrives between two ticks waits for the next one. When every
//! watcher of a broadcast is such a player ([`Channels::rtmp_only`]), reading the broadcaster as
//! each of its messages arrives buys nothing: ffmpeg `-re` writes every RTMP message by itself
//! (about 70 a second for 25 fps video and AAC), and each cost the hub a wake-up, an
//! `epoll_wait`, a `read` and a pass through the channel for a few hundred bytes. So such a
//! broadcaster is *parked*: it is read once per tick, just before the players are written (what
//! it read goes out on that same tick, as it would have), and its socket's `SO_RCVLOWAT` is
//! [`LOW_WATER`], so between ticks the kernel wakes the hub only once that much has come (a
//! broadcast faster than `LOW_WATER` per tick is read as it comes, as before) or at the end.
//!
//! A channel that gets any other watcher ([`Channels::mixed`]) has its broadcaster unparked and
//! read at once; every read that drains a broadcaster decides again.
//!
//! [`Channels::rtmp_only`]: crate::relay::channel::Channels::rtmp_only
//! [`Channels::mixed`]: crate::relay::channel::Channels::mixed

use std::cmp::Reverse;
use std::time::Instant;

use super::super::cascade::Cascade;
use super::super::channel::ChanKey;
use super::super::front::rtmp::next_tick;
use super::{Hub, HTTP_SUBS};

/// A parked broadcaster's socket wakes the hub between ticks once this much is waiting (half of
/// what makes an RTMP player be written before its tick).
pub(super) const LOW_WATER: usize = 32 * 1024;

impl Hub {
    /// After a read that drained connection `idx`: a broadcaster whose channel only RTMP players
    /// watch is parked until the next tick; any other connection is not (any more).
    pub(super) fn park_or_not(&mut self, idx: usize, now: Instant) {
        let merge = self.cfg.rtmp_merge;
        let park = !merge.is_zero()
            && self
                .publishing(idx)
                .is_some_and(|(key, _)| self.channels.rtmp_only(&key));
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if !park {
            if c.parked {
                self.unpark(idx);
            }
            return;
        }
        if !c.parked {
            if let Err(e) = c.io.set_recv_low_water(LOW_WATER) {
                // Read as its bytes come, as without the merge window.
                log::debug!("{}: SO_RCVLOWAT: {e}", c.peer);
                return;
            }
            c.parked = true;
        }
        if c.read_at.is_none() {
            let t = next_tick(self.start, now, merge);
            c.read_at = Some(t);
            self.read_wake.push(Reverse((t, idx, c.id)));
        }
    }

    /// Reads the parked broadcasters whose tick has come.
    pub(super) fn read_parked(&mut self, now: Instant) {
        while let Some(&Reverse((t, idx, id))) = self.read_wake.peek() {
            if t > now {
                return;
            }
            self.read_wake.pop();
            // The slot may hold another connection by now.
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                continue;
            };
            if c.id != id {
                continue;
            }
            c.read_at = None;
            if c.parked {
                // A FIN raises an event whatever the low-water mark (read then to the end): a
                // short read here drained the socket.
                self.on_readable(idx, true, now);
            }
        }
    }

    /// Unparks the broadcasters of the channels that got a watcher other than an RTMP player.
    pub(super) fn unpark_mixed(&mut self) {
        if self.channels.mixed.is_empty() {
            return;
        }
        for key in std::mem::take(&mut self.channels.mixed) {
            if let Some(idx) = self.broadcaster_conn(&key) {
                if self.conns[idx].as_ref().is_some_and(|c| c.parked) {
                    self.unpark(idx);
                }
            }
        }
    }

    /// Connection `idx` wakes the hub for every byte again, and is read at the next turn (what
    /// came while it was parked).
    fn unpark(&mut self, idx: usize) {
        let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
            return;
        };
        if let Err(e) = c.io.set_recv_low_water(1) {
            log::debug!("{}: SO_RCVLOWAT: {e}", c.peer);
        }
        c.parked = false;
        self.read_again(idx);
    }

    /// The connection broadcasting on `key` (its own, or its pull's), if it is one of the hub's.
    fn broadcaster_conn(&self, key: &ChanKey) -> Option<usize> {
        let id = self.channels.publisher(key)?;
        if id >= HTTP_SUBS {
            None
        } else if Cascade::is_pull(id) {
            self.cascade.pull_by_id(id).and_then(|p| p.conn)
        } else {
            Some(id)
        }
    }
}
