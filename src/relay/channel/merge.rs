//! Whether a broadcast may be read on the RTMP players' merge ticks: only when nobody else
//! watches it (the hub's `park`).

use super::{ChanKey, Channels, SubId, SubKind};

impl Channels {
    /// `key` is live and every watcher of its broadcast (direct, through a view, over RTP, or
    /// waiting for its format) is an RTMP player, or it has none. Such a broadcast reaches no one
    /// sooner than the players' merge windows let it, so the hub may read its broadcaster only on
    /// their ticks.
    pub fn rtmp_only(&self, key: &ChanKey) -> bool {
        let Some(ch) = self.map.get(key).filter(|c| c.live()) else {
            return false;
        };
        [&ch.watchers, &ch.pending]
            .into_iter()
            .chain(ch.views.iter().map(|v| &v.watchers))
            .chain(ch.rtp.iter().flatten().map(|r| &r.watchers))
            .flatten()
            .all(|&w| self.subs.get(w).is_some_and(|s| s.kind == SubKind::Rtmp))
    }

    /// The broadcaster of `key`, if it is live.
    pub fn publisher(&self, key: &ChanKey) -> Option<SubId> {
        self.map.get(key)?.publisher
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::{Config, Effects, SubKind};
    use super::*;
    use crate::relay::cache::CacheLimits;
    use crate::relay::http::Ext;
    use crate::relay::pace::Unclocked;
    use crate::relay::queue::QueueLimits;
    use crate::relay::testdata;

    fn channels() -> Channels {
        let d = std::time::Duration::from_secs(3600);
        Channels::new(Config {
            gop_cache: true,
            queue: QueueLimits {
                max_bytes: 1 << 26,
                max_age: d,
                max_behind: d,
            },
            cache: CacheLimits {
                max_bytes: 1 << 24,
                max_age: d,
            },
            max_waiting: 2,
            wait_timeout: d,
            unclocked: Unclocked::Pace,
        })
    }

    #[test]
    fn only_rtmp_players_or_none_and_any_other_watcher_is_told() {
        let (t0, wall) = (Instant::now(), std::time::SystemTime::now());
        let key: ChanKey = ("live".into(), "cam".into());
        let peer = "127.0.0.1:5000".parse().unwrap();
        let mut chs = channels();
        let mut fx = Effects::default();
        assert!(!chs.rtmp_only(&key), "not live");
        chs.broadcast(1, &key, None, peer, "rtmp", t0, &mut fx);
        assert_eq!(chs.publisher(&key), Some(1));
        assert!(chs.rtmp_only(&key), "no watcher");
        // Waiting for the format (nothing pushed yet).
        chs.watch(9, &key, None, SubKind::Fstream, peer, t0, &mut fx)
            .unwrap();
        assert!(!chs.rtmp_only(&key), "an fstream watcher waiting");
        chs.leave(9);
        chs.mixed.clear();
        chs.push(&key, &testdata::flv(), t0, wall, &mut fx);
        chs.watch(10, &key, None, SubKind::Rtmp, peer, t0, &mut fx)
            .unwrap();
        chs.watch(11, &key, None, SubKind::Rtmp, peer, t0, &mut fx)
            .unwrap();
        assert!(chs.rtmp_only(&key));
        assert!(chs.mixed.is_empty());
        chs.watch(12, &key, None, SubKind::Http(Ext::Ts), peer, t0, &mut fx)
            .unwrap();
        assert!(!chs.rtmp_only(&key), "a TS view's watcher");
        assert_eq!(std::mem::take(&mut chs.mixed), vec![key.clone()]);
        chs.leave(12);
        assert!(chs.rtmp_only(&key));
        chs.watch(13, &key, None, SubKind::Fstream, peer, t0, &mut fx)
            .unwrap();
        assert!(!chs.rtmp_only(&key), "an fstream watcher");
        chs.leave(13);
        chs.rtp_view(&key, false, t0, wall).unwrap();
        chs.play_rtp(14, &key, false, t0, wall).unwrap();
        assert!(!chs.rtmp_only(&key), "an RTSP player");
        assert_eq!(chs.mixed.len(), 2);
        chs.leave(14);
        assert!(chs.rtmp_only(&key));
        chs.end(&key, t0, wall, "end", &mut fx);
        assert!(!chs.rtmp_only(&key), "ended");
    }
}
