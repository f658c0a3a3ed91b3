//! The hub's statistics as plain values, rendered as JSON (`GET /stats`), Prometheus text
//! (`GET /metrics` is `relay::metrics`) and one log line per channel.

use std::fmt::Write;

/// One watcher's figures.
#[derive(Debug, Clone, Default)]
pub struct WatcherStats {
    pub id: u64,
    pub peer: String,
    /// `fstream`, `http-flv`, `http-ts` or `rtsp`.
    pub kind: &'static str,
    /// Whether it gets a converted view of the broadcast.
    pub converted: bool,
    pub connected_secs: f64,
    pub bytes_sent: u64,
    pub queue_bytes: usize,
    pub chunks_dropped: u64,
    pub bytes_dropped: u64,
    pub skips: u64,
}

/// One channel's figures.
#[derive(Debug, Clone, Default)]
pub struct ChannelStats {
    pub user: String,
    pub channel: String,
    pub live: bool,
    /// `flv`, `ts`, `h264`, `h265`, `opaque`, or empty while undecided.
    pub format: &'static str,
    pub broadcaster: Option<String>,
    pub bytes_in: u64,
    pub cache_bytes: usize,
    pub broadcasts: u64,
    pub waiting: usize,
    /// `paced` (the broadcaster is read only while every watcher has room) or `realtime`;
    /// empty while no broadcast.
    pub delivery: &'static str,
    /// Time the broadcaster was held back because a watcher had no room (all broadcasts).
    pub backpressure_secs: f64,
    pub watchers: Vec<WatcherStats>,
}

/// The whole hub.
#[derive(Debug, Clone, Default)]
pub struct HubStats {
    pub uptime_secs: f64,
    pub connections: usize,
    pub accepted: u64,
    pub refused: u64,
    pub channels: Vec<ChannelStats>,
    /// HLS by channel (`None` without `--hls`).
    pub hls: Option<Vec<super::hls::HlsStats>>,
}

pub(crate) fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl HubStats {
    pub fn to_json(&self) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "{{\"uptime_secs\":{:.3},\"connections\":{},\"accepted\":{},\"refused\":{},\"channels\":[",
            self.uptime_secs, self.connections, self.accepted, self.refused
        );
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"user\":");
            json_str(&c.user, &mut o);
            o.push_str(",\"channel\":");
            json_str(&c.channel, &mut o);
            let _ = write!(o, ",\"live\":{},\"format\":", c.live);
            json_str(c.format, &mut o);
            o.push_str(",\"broadcaster\":");
            match &c.broadcaster {
                Some(b) => json_str(b, &mut o),
                None => o.push_str("null"),
            }
            let _ = write!(
                o,
                ",\"bytes_in\":{},\"cache_bytes\":{},\"broadcasts\":{},\"waiting\":{},\"delivery\":\"{}\",\"backpressure_secs\":{:.3},\"watchers\":[",
                c.bytes_in, c.cache_bytes, c.broadcasts, c.waiting, c.delivery, c.backpressure_secs
            );
            for (j, w) in c.watchers.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                let _ = write!(o, "{{\"id\":{},\"peer\":", w.id);
                json_str(&w.peer, &mut o);
                o.push_str(",\"kind\":");
                json_str(w.kind, &mut o);
                let _ = write!(
                    o,
                    ",\"converted\":{},\"connected_secs\":{:.3},\"bytes_sent\":{},\"queue_bytes\":{},\"chunks_dropped\":{},\"bytes_dropped\":{},\"skips\":{}}}",
                    w.converted, w.connected_secs, w.bytes_sent, w.queue_bytes, w.chunks_dropped, w.bytes_dropped, w.skips
                );
            }
            o.push_str("]}");
        }
        o.push(']');
        if let Some(h) = &self.hls {
            o.push_str(",\"hls\":");
            super::hls::HlsStats::json(h, &mut o);
        }
        o.push_str("}\n");
        o
    }
}

impl ChannelStats {
    /// One log line.
    pub fn log_line(&self) -> String {
        let sent: u64 = self.watchers.iter().map(|w| w.bytes_sent).sum();
        let dropped: u64 = self.watchers.iter().map(|w| w.bytes_dropped).sum();
        let queued: usize = self.watchers.iter().map(|w| w.queue_bytes).sum();
        let maxq = self
            .watchers
            .iter()
            .map(|w| w.queue_bytes)
            .max()
            .unwrap_or(0);
        format!(
            "channel {}/{}: {} {}, {} bytes in, {} watchers ({} waiting), {} bytes sent, {} bytes dropped, queued {} bytes (max {}), cache {} bytes",
            self.user,
            self.channel,
            if self.live { "live" } else { "idle" },
            if self.format.is_empty() { "?" } else { self.format },
            self.bytes_in,
            self.watchers.len(),
            self.waiting,
            sent,
            dropped,
            queued,
            maxq,
            self.cache_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let s = HubStats {
            uptime_secs: 1.5,
            connections: 2,
            accepted: 3,
            refused: 1,
            channels: vec![ChannelStats {
                user: "fi\"er".into(),
                channel: "c".into(),
                live: true,
                format: "flv",
                broadcaster: Some("127.0.0.1:1".into()),
                bytes_in: 10,
                watchers: vec![WatcherStats {
                    id: 7,
                    peer: "127.0.0.1:2".into(),
                    kind: "fstream",
                    bytes_sent: 9,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            hls: None,
        };
        let j = s.to_json();
        assert!(j.contains("\"user\":\"fi\\\"er\""), "{j}");
        assert!(j.contains("\"bytes_sent\":9"), "{j}");
        assert!(s.channels[0].log_line().contains("1 watchers"));
    }
}
