//! What the channels report: `/stats` (every channel and watcher now) and `/metrics` (series
//! that outlive watchers and channels for a while, see `relay::metrics`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;

impl Channels {
    /// The channels' `/metrics` series at `now`: every channel, and those gone for less than
    /// `metrics::EXPIRY` (then forgotten); and the queue delay by watcher kind.
    pub fn metrics(&mut self, now: Instant) -> (Vec<ChannelMetrics>, [Histogram; N_KINDS]) {
        for (k, t) in self.retired.channels.iter_mut() {
            match (self.map.contains_key(k), t.gone_since) {
                (true, _) => t.gone_since = None,
                (false, None) => t.gone_since = Some(now),
                (false, Some(_)) => {}
            }
        }
        self.retired.expire(now);
        let mut delay = self.retired.delay;
        let mut out: Vec<ChannelMetrics> = Vec::new();
        let mut keys: Vec<&ChanKey> = self
            .map
            .keys()
            .chain(self.retired.channels.keys())
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let t = self.retired.channels.get(key).cloned().unwrap_or_default();
            let mut m = ChannelMetrics {
                user: key.0.clone(),
                channel: key.1.clone(),
                totals: t.by_kind,
                backpressure_secs: t.backpressure.as_secs_f64(),
                bytes_in: t.bytes_in.iter().map(|(p, n)| (*p, *n)).collect(),
                ..Default::default()
            };
            if let Some(ch) = self.map.get(key) {
                m.live = ch.live();
                m.paced = ch.live() && ch.paced();
                m.publish_uptime_secs = ch
                    .live_since
                    .filter(|_| ch.live())
                    .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
                m.cache_bytes = ch.cache.bytes();
                m.backpressure_secs += (ch.held_total
                    + ch.held_since
                        .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)))
                .as_secs_f64();
                for (p, n) in &ch.bytes_in_by {
                    match m.bytes_in.iter_mut().find(|b| b.0 == *p) {
                        Some(b) => b.1 += n,
                        None => m.bytes_in.push((p, *n)),
                    }
                }
                let lists = std::iter::once(&ch.watchers)
                    .chain(ch.views.iter().map(|v| &v.watchers))
                    .chain(ch.rtp.iter().flatten().map(|r| &r.watchers));
                for &w in lists.flatten() {
                    let Some(s) = self.subs.get(w) else { continue };
                    let k = kind_index(s.kind.name());
                    let st = s.stats();
                    m.watchers[k] += 1;
                    m.totals[k].bytes_out += st.bytes_sent;
                    m.totals[k].skips += st.skips;
                    m.totals[k].bytes_dropped += st.bytes_dropped;
                    delay[k].add(&s.delay());
                }
            }
            m.bytes_in.sort();
            out.push(m);
        }
        (out, delay)
    }

    /// Each channel's figures; `conn` gives a watcher's connection id, peer and age.
    pub fn stats(
        &self,
        now: Instant,
        conn: impl Fn(SubId) -> Option<(u64, SocketAddr, Instant)>,
    ) -> Vec<ChannelStats> {
        let mut channels: Vec<ChannelStats> = self
            .map
            .iter()
            .map(|(k, ch)| {
                let lists = std::iter::once(&ch.watchers)
                    .chain(ch.views.iter().map(|v| &v.watchers))
                    .chain(ch.rtp.iter().flatten().map(|r| &r.watchers));
                let mut watchers = Vec::new();
                for &w in lists.flatten() {
                    let (Some(s), Some((id, peer, since))) = (self.subs.get(w), conn(w)) else {
                        continue;
                    };
                    watchers.push(WatcherStats {
                        id,
                        peer: peer.to_string(),
                        connected_secs: now.duration_since(since).as_secs_f64(),
                        ..s.stats()
                    });
                }
                ChannelStats {
                    user: k.0.clone(),
                    channel: k.1.clone(),
                    live: ch.live(),
                    format: format_name(ch.format),
                    broadcaster: ch.publisher.and(ch.publisher_peer).map(|p| p.to_string()),
                    bytes_in: ch.bytes_in,
                    cache_bytes: ch.cache.bytes(),
                    broadcasts: ch.broadcasts,
                    waiting: ch.pending.len(),
                    delivery: match (&ch.pace, ch.live()) {
                        (_, false) => "",
                        (None, true) => "paced",
                        (Some(p), true) if p.regime() == Regime::Paced => "paced",
                        _ => "realtime",
                    },
                    backpressure_secs: (ch.held_total
                        + ch.held_since
                            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)))
                    .as_secs_f64(),
                    watchers,
                }
            })
            .collect();
        channels.sort_by(|a, b| (&a.user, &a.channel).cmp(&(&b.user, &b.channel)));
        channels
    }
}
