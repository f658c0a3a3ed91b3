//! Paced delivery (see the parent module): whether the broadcaster may be read, holding it back,
//! and the straggler policy.

use std::time::Instant;

use super::{key_str, ChanKey, Channels, Effects, Sub, SubId};

impl Channels {
    /// May the broadcaster of `key` be read? Always for a real-time broadcast and while its pace
    /// is probed (`relay::pace`); for a paced one, only while every watcher that pushes back has
    /// room.
    pub fn room(&self, key: &ChanKey) -> bool {
        let Some(ch) = self.map.get(key) else {
            return true;
        };
        !ch.paced()
            || ch.pace.as_ref().is_some_and(|p| p.probing())
            || ch
                .paced_lists()
                .all(|&w| self.subs.get(w).is_none_or(Sub::has_room))
    }

    /// The broadcaster of `key` is held back from `now` (no [`Self::room`]).
    pub fn hold(&mut self, key: &ChanKey, now: Instant) {
        if let Some(ch) = self.map.get_mut(key) {
            ch.held_since.get_or_insert(now);
            ch.window_held = true;
            if let Some(p) = ch.pace.as_mut() {
                p.held(now);
            }
        }
    }

    /// The broadcaster of `key` is read again from `now`.
    pub fn release(&mut self, key: &ChanKey, now: Instant) {
        if let Some(ch) = self.map.get_mut(key) {
            if let Some(t) = ch.held_since.take() {
                ch.held_total += now.saturating_duration_since(t);
            }
        }
    }

    /// The straggler policy of paced broadcasts, run every so often: each `max_behind` in which
    /// the broadcaster was held back, a watcher that drained nothing, or less than a tenth of what
    /// the fastest drained, is dropped (the hub then reads the broadcaster again).
    pub fn tick(&mut self, now: Instant, fx: &mut Effects) {
        let span = self.cfg.queue.max_behind;
        for (key, ch) in self.map.iter_mut() {
            // Still held: a probe of its pace may be due.
            if let (Some(p), Some(_)) = (ch.pace.as_mut(), ch.held_since) {
                p.held(now);
            }
            if !ch.live() || !ch.paced() || ch.format.is_none() {
                ch.window_start = None;
                continue;
            }
            // A watcher with bytes queued that wrote none of them for `max_behind` while the
            // broadcaster was held back is stalled (its socket buffer is full).
            for &w in ch.paced_lists() {
                let Some(s) = self.subs.get_mut(w) else {
                    continue;
                };
                let sent = s.bytes_sent();
                match s.progress {
                    Some((_, n)) if n == sent && s.busy() => {}
                    _ => s.progress = Some((now, sent)),
                }
                let since = s.progress.map_or(now, |p| p.0);
                if ch.held_since.is_some() && now.saturating_duration_since(since) >= span {
                    s.doomed = true;
                    fx.drop.push((
                        w,
                        format!(
                            "held back the paced broadcast of {}: wrote nothing in {} s",
                            key_str(key),
                            span.as_secs()
                        ),
                    ));
                    s.progress = Some((now, sent));
                }
            }
            let start = *ch.window_start.get_or_insert(now);
            if now < start + span {
                continue;
            }
            let ids: Vec<SubId> = ch.paced_lists().copied().collect();
            // Only a watcher with something to drain is judged: one that is caught up is not
            // slow, whatever it drained.
            let drained: Vec<(SubId, u64, bool)> = ids
                .iter()
                .filter_map(|&w| {
                    let s = self.subs.get(w)?;
                    Some((w, s.bytes_sent() - s.window_sent, s.busy()))
                })
                .collect();
            if ch.window_held {
                let fastest = drained.iter().map(|d| d.1).max().unwrap_or(0);
                for &(w, n, backlogged) in &drained {
                    if backlogged
                        && n.saturating_mul(10) < fastest
                        && !fx.drop.iter().any(|d| d.0 == w)
                    {
                        if let Some(s) = self.subs.get_mut(w) {
                            s.doomed = true;
                        }
                        fx.drop.push((
                            w,
                            format!(
                                "held back the paced broadcast of {}: drained {n} bytes in {} s \
                                 while the fastest watcher drained {fastest}",
                                key_str(key),
                                span.as_secs()
                            ),
                        ));
                    }
                }
            }
            for &w in &ids {
                if let Some(s) = self.subs.get_mut(w) {
                    s.window_sent = s.bytes_sent();
                }
            }
            ch.window_start = Some(now);
            ch.window_held = ch.held_since.is_some();
        }
    }
}
