//! What an edge hub asks of its channels (see [`crate::relay::cascade`]): how many watch a
//! pulled channel, which channel password a waiting watcher brings, and refusing the waiting
//! watchers whose password the origin refused.

use super::{key_str, ChanKey, Channels, Effects, Leave, Refusal};

impl Channels {
    /// The watchers of `key`, attached (to the broadcast, a view or RTP) or waiting.
    pub fn audience(&self, key: &ChanKey) -> usize {
        self.map.get(key).map_or(0, |ch| {
            ch.watchers.len()
                + ch.pending.len()
                + ch.views.iter().map(|v| v.watchers.len()).sum::<usize>()
                + ch.rtp
                    .iter()
                    .flatten()
                    .map(|r| r.watchers.len())
                    .sum::<usize>()
        })
    }

    /// The channel password of a watcher waiting for `key` (the earliest), if any waits.
    pub fn waiting_password(&self, key: &ChanKey) -> Option<Option<String>> {
        let ch = self.map.get(key)?;
        ch.pending
            .iter()
            .filter_map(|&w| self.subs.get(w))
            .find(|s| s.queue.is_none())
            .map(|s| s.password.clone())
    }

    /// Refuses the watchers waiting for `key` with `password` (their refusals go to `fx`).
    pub fn refuse_waiting(
        &mut self,
        key: &ChanKey,
        password: &Option<String>,
        status: u16,
        message: &str,
        fx: &mut Effects,
    ) {
        let Some(ch) = self.map.get(key) else { return };
        let refused: Vec<_> = ch
            .pending
            .iter()
            .copied()
            .filter(|&w| {
                self.subs
                    .get(w)
                    .is_some_and(|s| s.queue.is_none() && &s.password == password)
            })
            .collect();
        for w in refused {
            let why = format!("watcher of {}: {message}", key_str(key));
            self.leave_as(w, Leave::Refused);
            fx.refuse.push((w, Refusal::new(why, status, message)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use super::super::{Config, SubKind};
    use super::*;
    use crate::relay::cache::CacheLimits;
    use crate::relay::pace::Unclocked;
    use crate::relay::queue::QueueLimits;

    fn channels() -> Channels {
        Channels::new(Config {
            gop_cache: true,
            queue: QueueLimits {
                max_bytes: 1 << 20,
                max_age: Duration::from_secs(5),
                max_behind: Duration::from_secs(10),
            },
            cache: CacheLimits {
                max_bytes: 1 << 20,
                max_age: Duration::from_secs(30),
            },
            max_waiting: 8,
            wait_timeout: Duration::from_secs(5),
            unclocked: Unclocked::Pace,
        })
    }

    #[test]
    fn waiting_watchers_are_refused_by_password_and_counted() {
        let mut c = channels();
        let k: ChanKey = ("fier".into(), "cam".into());
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let now = Instant::now();
        let mut fx = Effects::default();
        for (id, pw) in [(1, Some("a")), (2, Some("b")), (3, Some("a"))] {
            c.watch(
                id,
                &k,
                pw.map(String::from),
                SubKind::Fstream,
                peer,
                now,
                &mut fx,
            )
            .unwrap();
        }
        assert_eq!(c.audience(&k), 3);
        assert_eq!(c.waiting_password(&k), Some(Some("a".into())));
        c.refuse_waiting(&k, &Some("a".into()), 403, "refused by the origin", &mut fx);
        let ids: Vec<_> = fx.refuse.iter().map(|r| (r.0, r.1.status)).collect();
        assert_eq!(ids, [(1, 403), (3, 403)]);
        assert_eq!(c.audience(&k), 1);
        assert_eq!(c.waiting_password(&k), Some(Some("b".into())));
        assert!(c.sub(1).is_none() && c.sub(2).is_some());
    }
}
