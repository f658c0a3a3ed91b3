//! The hub's Prometheus metrics: the figures that outlive a watcher (folded into its channel's
//! totals when it leaves) and a channel (kept for [`EXPIRY`] after it is gone, then dropped, so
//! the series count stays bounded), and the queue-delay histogram. Pure: time is an input.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// How long a gone channel's series stay in `/metrics`.
pub const EXPIRY: Duration = Duration::from_secs(300);

/// Upper bounds (seconds) of the queue-delay histogram's buckets; the last bucket is +Inf.
pub const DELAY_BOUNDS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A histogram of delays: counts per bucket of [`DELAY_BOUNDS`] (not cumulative; the last is
/// +Inf) and the sum in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; DELAY_BOUNDS.len() + 1],
    pub sum_us: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = DELAY_BOUNDS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(DELAY_BOUNDS.len());
        self.counts[i] += 1;
        self.sum_us += d.as_micros() as u64;
    }

    pub fn add(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Why a watcher left, as `/metrics` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// The broadcast ended and it got everything queued.
    End,
    /// Dropped by the delivery policy (too slow, stalled, overflow).
    Slow,
    /// Refused after it joined (another channel password, the wait timed out, another format).
    Refused,
    /// The client went away, or the connection failed.
    Closed,
}

impl Leave {
    pub const ALL: [Leave; 4] = [Leave::End, Leave::Slow, Leave::Refused, Leave::Closed];

    pub fn name(self) -> &'static str {
        match self {
            Leave::End => "end",
            Leave::Slow => "slow",
            Leave::Refused => "refused",
            Leave::Closed => "closed",
        }
    }
}

/// Why a connection or request was refused, as `/metrics` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Credentials: an unknown user, a wrong user or channel password, a name not allowed; or
    /// a publish or play hook that did not allow (whatever its answer, or none).
    Auth,
    /// A limit: --max-connections, --max-waiting, out of descriptors.
    Limit,
    /// Not the protocol: a bad handshake or request, a client that closed during it.
    Protocol,
    /// A deadline passed: the handshake, an RTSP or RTMP session.
    Timeout,
    /// Nothing to give: the channel did not go live in time, another format, no conversion.
    Unavailable,
}

impl Refused {
    pub const ALL: [Refused; 5] = [
        Refused::Auth,
        Refused::Limit,
        Refused::Protocol,
        Refused::Timeout,
        Refused::Unavailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Refused::Auth => "auth",
            Refused::Limit => "limit",
            Refused::Protocol => "protocol",
            Refused::Timeout => "timeout",
            Refused::Unavailable => "unavailable",
        }
    }

    /// The reason an HTTP status answers.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 | 403 => Refused::Auth,
            429 | 503 => Refused::Limit,
            408 => Refused::Timeout,
            404 | 409 | 410 | 415 => Refused::Unavailable,
            _ => Refused::Protocol,
        }
    }
}

/// Watcher kinds, in the order of [`KindTotals`] arrays (`SubKind::name`).
pub const KINDS: [&str; N_KINDS] = [
    "fstream", "http-flv", "http-ts", "rtmp", "rtsp", "rtsp/udp", "hls",
];
/// How many watcher kinds there are.
pub const N_KINDS: usize = 7;

/// Figures of the watchers of one kind that have left a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindTotals {
    pub bytes_out: u64,
    pub skips: u64,
    pub bytes_dropped: u64,
    pub leaves: [u64; 4],
}

/// A channel's figures that outlive its watchers and broadcasts.
#[derive(Clone, Debug, Default)]
pub struct ChannelTotals {
    /// Bytes received, by the front the broadcaster came in on.
    pub bytes_in: HashMap<&'static str, u64>,
    pub by_kind: [KindTotals; N_KINDS],
    pub backpressure: Duration,
    /// The channel is gone (no broadcaster, no watchers) since then.
    pub gone_since: Option<Instant>,
}

/// The index of a watcher kind in [`KINDS`].
pub fn kind_index(kind: &str) -> usize {
    KINDS.iter().position(|&k| k == kind).unwrap_or(0)
}

/// Totals of channels, and of the queue delay of watchers that left, by kind.
#[derive(Debug, Default)]
pub struct Retired {
    pub channels: HashMap<(String, String), ChannelTotals>,
    pub delay: [Histogram; N_KINDS],
}

impl Retired {
    /// Forgets channels gone for longer than [`EXPIRY`].
    pub fn expire(&mut self, now: Instant) {
        self.channels
            .retain(|_, t| t.gone_since.is_none_or(|g| now < g + EXPIRY));
    }
}

/// One channel's series.
#[derive(Clone, Debug, Default)]
pub struct ChannelMetrics {
    pub user: String,
    pub channel: String,
    pub live: bool,
    pub paced: bool,
    pub publish_uptime_secs: f64,
    pub cache_bytes: usize,
    pub backpressure_secs: f64,
    /// Bytes received, by front.
    pub bytes_in: Vec<(&'static str, u64)>,
    /// By watcher kind ([`KINDS`]): watchers attached now, and totals over every watcher.
    pub watchers: [usize; N_KINDS],
    pub totals: [KindTotals; N_KINDS],
}

/// One front's series.
#[derive(Clone, Debug, Default)]
pub struct FrontMetrics {
    pub name: &'static str,
    pub open: usize,
    /// Refusals by reason.
    pub refused: Vec<(&'static str, u64)>,
}

/// Everything `/metrics` shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub uptime_secs: f64,
    pub accepted: u64,
    pub fronts: Vec<FrontMetrics>,
    pub channels: Vec<ChannelMetrics>,
    /// Queue delay by watcher kind, over every watcher.
    pub delay: [Histogram; N_KINDS],
    /// Publish and play hooks (series only for those set).
    pub hooks: super::hooks::HookMetrics,
    /// HLS by channel (`None` without `--hls`).
    pub hls: Option<Vec<super::hls::HlsStats>>,
}

/// Escapes a label value (Prometheus text format 0.0.4).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a metric's HELP and TYPE lines.
fn head(o: &mut String, name: &str, ty: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {ty}");
}

impl Snapshot {
    /// The Prometheus text exposition (format 0.0.4). Per-watcher detail is in `/stats`; here
    /// the labels are the channel, the front or watcher protocol, and a reason, so the series
    /// count follows the channels, not the connections.
    pub fn to_prometheus(&self) -> String {
        let mut o = String::new();
        head(
            &mut o,
            "river_relay_uptime_seconds",
            "gauge",
            "Time since the hub started.",
        );
        let _ = writeln!(o, "river_relay_uptime_seconds {:.3}", self.uptime_secs);
        head(
            &mut o,
            "river_relay_accepted_total",
            "counter",
            "Connections accepted, all fronts.",
        );
        let _ = writeln!(o, "river_relay_accepted_total {}", self.accepted);
        head(
            &mut o,
            "river_relay_connections",
            "gauge",
            "Open connections by front.",
        );
        for f in &self.fronts {
            let _ = writeln!(
                o,
                "river_relay_connections{{front=\"{}\"}} {}",
                f.name, f.open
            );
        }
        head(
            &mut o,
            "river_relay_refused_total",
            "counter",
            "Connections and requests refused, by front and reason.",
        );
        for f in &self.fronts {
            for (r, n) in &f.refused {
                let _ = writeln!(
                    o,
                    "river_relay_refused_total{{front=\"{}\",reason=\"{r}\"}} {n}",
                    f.name
                );
            }
        }
        let ch = |c: &ChannelMetrics| {
            format!("user=\"{}\",channel=\"{}\"", esc(&c.user), esc(&c.channel))
        };
        type Per = (
            &'static str,
            &'static str,
            &'static str,
            fn(&ChannelMetrics) -> f64,
        );
        let per_channel: [Per; 5] = [
            (
                "river_relay_channel_live",
                "gauge",
                "1 while the channel has a broadcaster.",
                |c| f64::from(u8::from(c.live)),
            ),
            (
                "river_relay_channel_paced",
                "gauge",
                "1 while the broadcast is paced to its watchers (0: real time).",
                |c| f64::from(u8::from(c.paced)),
            ),
            (
                "river_relay_channel_publish_uptime_seconds",
                "gauge",
                "Time since the current broadcast began (0 when not live).",
                |c| c.publish_uptime_secs,
            ),
            (
                "river_relay_channel_cache_bytes",
                "gauge",
                "Bytes in the channel's GOP cache.",
                |c| c.cache_bytes as f64,
            ),
            (
                "river_relay_channel_backpressure_seconds_total",
                "counter",
                "Time the broadcaster was held back by watchers without room.",
                |c| c.backpressure_secs,
            ),
        ];
        for (name, ty, help, f) in per_channel {
            head(&mut o, name, ty, help);
            for c in &self.channels {
                let _ = writeln!(o, "{name}{{{}}} {}", ch(c), f(c));
            }
        }
        head(
            &mut o,
            "river_relay_channel_bytes_in_total",
            "counter",
            "Bytes received from broadcasters, by the front they came in on.",
        );
        for c in &self.channels {
            for (p, n) in &c.bytes_in {
                let _ = writeln!(
                    o,
                    "river_relay_channel_bytes_in_total{{{},protocol=\"{p}\"}} {n}",
                    ch(c)
                );
            }
        }
        // Per watcher protocol: only the kinds the channel has had.
        let seen = |c: &ChannelMetrics, k: usize| {
            c.watchers[k] > 0 || c.totals[k] != KindTotals::default()
        };
        type PerKind = (
            &'static str,
            &'static str,
            &'static str,
            fn(&ChannelMetrics, usize) -> u64,
        );
        let per_kind: [PerKind; 4] = [
            (
                "river_relay_channel_watchers",
                "gauge",
                "Watchers attached, by protocol.",
                |c, k| c.watchers[k] as u64,
            ),
            (
                "river_relay_channel_bytes_out_total",
                "counter",
                "Bytes written to watchers, by protocol.",
                |c, k| c.totals[k].bytes_out,
            ),
            (
                "river_relay_channel_keyframe_skips_total",
                "counter",
                "Times a watcher behind a real-time broadcast skipped to the next keyframe.",
                |c, k| c.totals[k].skips,
            ),
            (
                "river_relay_channel_bytes_dropped_total",
                "counter",
                "Bytes not sent to watchers that skipped, by protocol.",
                |c, k| c.totals[k].bytes_dropped,
            ),
        ];
        for (name, ty, help, f) in per_kind {
            head(&mut o, name, ty, help);
            for c in &self.channels {
                for (k, kind) in KINDS.iter().enumerate().filter(|(k, _)| seen(c, *k)) {
                    let _ = writeln!(o, "{name}{{{},protocol=\"{kind}\"}} {}", ch(c), f(c, k));
                }
            }
        }
        head(
            &mut o,
            "river_relay_channel_disconnects_total",
            "counter",
            "Watchers gone, by protocol and reason (end: the broadcast ended; slow: dropped by \
             the delivery policy; refused: after joining; closed: by the client or an error).",
        );
        for c in &self.channels {
            for (k, kind) in KINDS.iter().enumerate().filter(|(k, _)| seen(c, *k)) {
                for (i, r) in Leave::ALL.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "river_relay_channel_disconnects_total{{{},protocol=\"{kind}\",reason=\"{}\"}} {}",
                        ch(c),
                        r.name(),
                        c.totals[k].leaves[i]
                    );
                }
            }
        }
        let name = "river_relay_queue_delay_seconds";
        head(
            &mut o,
            name,
            "histogram",
            "Time a chunk waited in a watcher's queue before it was written, by protocol.",
        );
        for (k, kind) in KINDS.iter().enumerate() {
            let h = &self.delay[k];
            let mut cum = 0;
            for (i, b) in DELAY_BOUNDS.iter().enumerate() {
                cum += h.counts[i];
                let _ = writeln!(o, "{name}_bucket{{protocol=\"{kind}\",le=\"{b}\"}} {cum}");
            }
            let _ = writeln!(
                o,
                "{name}_bucket{{protocol=\"{kind}\",le=\"+Inf\"}} {}",
                h.count()
            );
            let _ = writeln!(
                o,
                "{name}_sum{{protocol=\"{kind}\"}} {}",
                h.sum_us as f64 / 1e6
            );
            let _ = writeln!(o, "{name}_count{{protocol=\"{kind}\"}} {}", h.count());
        }
        self.hooks.write_prometheus(&mut o);
        if let Some(h) = &self.hls {
            super::hls::HlsStats::prometheus(h, &mut o);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_sum() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(9));
        assert_eq!(h.counts[0], 2, "0.5 ms and 1 ms are <= 0.001");
        assert_eq!(h.counts[4], 1, "30 ms <= 0.05");
        assert_eq!(h.counts[DELAY_BOUNDS.len()], 1, "+Inf");
        assert_eq!(h.sum_us, 500 + 1000 + 30_000 + 9_000_000);
        let mut t = Histogram::default();
        t.add(&h);
        t.add(&h);
        assert_eq!(t.count(), 8);
    }

    #[test]
    fn gone_channels_expire() {
        let t0 = Instant::now();
        let mut r = Retired::default();
        r.channels.insert(
            ("a".into(), "b".into()),
            ChannelTotals {
                gone_since: Some(t0),
                ..Default::default()
            },
        );
        r.channels
            .insert(("a".into(), "c".into()), ChannelTotals::default());
        r.expire(t0 + EXPIRY - Duration::from_secs(1));
        assert_eq!(r.channels.len(), 2);
        r.expire(t0 + EXPIRY);
        assert_eq!(r.channels.len(), 1, "the live one stays");
    }
}
