//! Publish and play hooks, the pure part: where each hook goes, what it is told (one JSON object),
//! what its answer means, the notifications' bookkeeping, and the hooks' `/metrics` series. The
//! calls themselves run on the hub's reactor (`front/hooks.rs`, with [`crate::http::client`]).
//!
//! - `--on-publish URL`, `--on-play URL` decide: a 2xx answer allows; any other status, no answer
//!   before `--hook-timeout`, or no answer at all (connection refused, reset, a malformed
//!   response) refuses. They are asked after the hub's own checks of the names and, for a
//!   broadcaster, of the user's password (the users file): a client the hub refuses never reaches
//!   the hook.
//! - `--on-unpublish URL`, `--on-stop URL` are told when a broadcast or a play that started ends;
//!   their answer changes nothing.
//!
//! The JSON object (every key always present; `null` where the client gave nothing):
//!
//! ```text
//! {"action":"publish"|"play"|"unpublish"|"stop", "id":17, "protocol":"fstream"|"http"|"rtmp"|"rtsp",
//!  "user":"fier", "channel":"cam", "remote_addr":"127.0.0.1:50412", "query":"token=abc"|null,
//!  "user_password":"…"|null, "channel_password":"…"|null}
//! ```
//!
//! plus `"bytes"` (received from the broadcaster, or sent to the player) and `"duration_secs"` in
//! `unpublish` and `stop`. `id` is the hub's connection id (as `/stats` shows it), the same in a
//! `publish` and its `unpublish`, a `play` and its `stop`.

use std::collections::HashMap;
use std::fmt::Write;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::channel::{ChanKey, SubId};
use super::metrics::{Histogram, DELAY_BOUNDS};
use super::stats::json_str;
use crate::http::client::ClientResponse;

/// Most notifications in flight at once; more are dropped (and counted): a hook that is down must
/// not cost the hub a descriptor per broadcast or player that ends.
pub const MAX_NOTIFYING: usize = 256;

/// The four hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    Publish,
    Play,
    Unpublish,
    Stop,
}

impl Hook {
    pub const ALL: [Hook; 4] = [Hook::Publish, Hook::Play, Hook::Unpublish, Hook::Stop];

    /// Its `action` in the JSON and its label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Publish => "publish",
            Hook::Play => "play",
            Hook::Unpublish => "unpublish",
            Hook::Stop => "stop",
        }
    }

    /// Its answer decides (publish, play) rather than being a notification.
    pub fn decides(self) -> bool {
        matches!(self, Hook::Publish | Hook::Play)
    }
}

/// Where a hook is POSTed: `http://HOST[:PORT]/PATH[?QUERY]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (for logs).
    pub url: String,
    /// `HOST:PORT`, to resolve and for the `Host` header.
    pub host: String,
    /// The request target: the path and the query.
    pub path: String,
}

impl Target {
    /// Parses a hook URL. Only `http://` (the hook is a local service; river has no TLS client).
    pub fn parse(url: &str) -> Result<Target, String> {
        let u = url::Url::parse(url).map_err(|e| format!("hook URL {url:?}: {e}"))?;
        if u.scheme() != "http" {
            return Err(format!(
                "hook URL {url:?}: only http:// URLs (not {}://)",
                u.scheme()
            ));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(format!("hook URL {url:?}: no user or password in the URL"));
        }
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            Some(h) => h.to_string(),
            None => return Err(format!("hook URL {url:?}: no host")),
        };
        let port = u.port_or_known_default().unwrap_or(80);
        let mut path = u.path().to_string();
        if let Some(q) = u.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Target {
            url: url.to_string(),
            host: format!("{host}:{port}"),
            path,
        })
    }
}

/// The hooks a hub calls, with their addresses resolved (once, at start), and the deadline of
/// each call.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// In [`Hook::ALL`] order.
    pub targets: [Option<(Target, SocketAddr)>; 4],
    pub timeout: Duration,
}

impl Config {
    pub fn target(&self, hook: Hook) -> Option<&(Target, SocketAddr)> {
        self.targets[hook as usize].as_ref()
    }

    pub fn any(&self) -> bool {
        self.targets.iter().any(Option::is_some)
    }
}

/// What a hook is told about a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The hub's connection id (as `/stats` shows it).
    pub id: u64,
    /// The front: `fstream`, `http`, `rtmp`, `rtsp`.
    pub protocol: &'static str,
    pub user: String,
    pub channel: String,
    pub remote_addr: SocketAddr,
    /// The query as sent (not decoded), without `?`; `None` when there is none.
    pub query: Option<String>,
    pub user_password: Option<String>,
    pub channel_password: Option<String>,
}

impl Call {
    /// The JSON object POSTed to `hook`; `ended`: the bytes and the time of a broadcast or play
    /// that ended (`unpublish`, `stop`).
    pub fn to_json(&self, hook: Hook, ended: Option<(u64, Duration)>) -> String {
        let mut o = String::with_capacity(256);
        let opt = |v: &Option<String>, o: &mut String| match v {
            Some(s) => json_str(s, o),
            None => o.push_str("null"),
        };
        let _ = write!(
            o,
            "{{\"action\":\"{}\",\"id\":{},\"protocol\":\"{}\",\"user\":",
            hook.name(),
            self.id,
            self.protocol
        );
        json_str(&self.user, &mut o);
        o.push_str(",\"channel\":");
        json_str(&self.channel, &mut o);
        let _ = write!(o, ",\"remote_addr\":\"{}\",\"query\":", self.remote_addr);
        opt(&self.query, &mut o);
        o.push_str(",\"user_password\":");
        opt(&self.user_password, &mut o);
        o.push_str(",\"channel_password\":");
        opt(&self.channel_password, &mut o);
        if let Some((bytes, d)) = ended {
            let _ = write!(
                o,
                ",\"bytes\":{bytes},\"duration_secs\":{:.3}",
                d.as_secs_f64()
            );
        }
        o.push('}');
        o
    }
}

/// A query as a hook is told it: `None` when empty.
pub fn query(q: &str) -> Option<String> {
    (!q.is_empty()).then(|| q.to_string())
}

/// How a call ended, as `/metrics` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer: allowed.
    Ok,
    /// Another status: refused.
    Status,
    /// No HTTP answer: connection refused or reset, a malformed response. Refused.
    Error,
    /// No answer within `--hook-timeout`. Refused.
    Timeout,
    /// A notification not sent: [`MAX_NOTIFYING`] were in flight.
    Dropped,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Status,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Dropped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Status => "status",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Dropped => "dropped",
        }
    }
}

/// What an answer means: the outcome, and `Err(why)` (one line, for the log) unless it allows.
pub fn verdict(hook: Hook, r: &io::Result<ClientResponse>) -> (Outcome, Result<(), String>) {
    match r {
        Ok(resp) if (200..300).contains(&resp.status) => (Outcome::Ok, Ok(())),
        Ok(resp) => {
            // The body's first line, shown as a name is (quoted, bounded), may say why.
            let body = resp.body.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            let said = if body.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::proto::names::shown(body))
            };
            let why = format!("the {} hook answered {}{said}", hook.name(), resp.status);
            (Outcome::Status, Err(why))
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => (
            Outcome::Timeout,
            Err(format!(
                "the {} hook did not answer in time: {e}",
                hook.name()
            )),
        ),
        Err(e) => (
            Outcome::Error,
            Err(format!("the {} hook failed: {e}", hook.name())),
        ),
    }
}

/// The hooks' figures for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct HookMetrics {
    /// Calls by hook ([`Hook::ALL`]) and outcome ([`Outcome::ALL`]).
    pub calls: [[u64; 5]; 4],
    /// Time from the call to its answer (or failure), by hook.
    pub latency: [Histogram; 4],
    /// Calls in flight, by hook.
    pub pending: [usize; 4],
    /// Which hooks are set: only those have series.
    pub set: [bool; 4],
}

impl HookMetrics {
    pub fn record(&mut self, hook: Hook, outcome: Outcome, took: Option<Duration>) {
        self.calls[hook as usize][outcome as usize] += 1;
        if let Some(d) = took {
            self.latency[hook as usize].observe(d);
        }
    }

    /// The Prometheus text of the hooks that are set (nothing when none is).
    pub fn write_prometheus(&self, o: &mut String) {
        let set: Vec<Hook> = Hook::ALL
            .into_iter()
            .filter(|&h| self.set[h as usize])
            .collect();
        if set.is_empty() {
            return;
        }
        let head = |o: &mut String, name: &str, ty: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {ty}");
        };
        let name = "river_relay_hook_calls_total";
        head(
            o,
            name,
            "counter",
            "Hook calls by hook and outcome (ok: a 2xx answer, which allows; status: another \
             status; error: no HTTP answer; timeout: none within --hook-timeout; dropped: a \
             notification not sent, too many in flight). Publish and play hooks refuse on all but ok.",
        );
        for &h in &set {
            for (i, r) in Outcome::ALL.iter().enumerate() {
                let n = self.calls[h as usize][i];
                let _ = writeln!(
                    o,
                    "{name}{{hook=\"{}\",outcome=\"{}\"}} {n}",
                    h.name(),
                    r.name()
                );
            }
        }
        let name = "river_relay_hook_pending";
        head(o, name, "gauge", "Hook calls in flight, by hook.");
        for &h in &set {
            let _ = writeln!(
                o,
                "{name}{{hook=\"{}\"}} {}",
                h.name(),
                self.pending[h as usize]
            );
        }
        let name = "river_relay_hook_duration_seconds";
        head(
            o,
            name,
            "histogram",
            "Time from a hook call to its answer or failure, by hook.",
        );
        for &h in &set {
            let l = &self.latency[h as usize];
            let mut cum = 0;
            for (i, b) in DELAY_BOUNDS.iter().enumerate() {
                cum += l.counts[i];
                let _ = writeln!(o, "{name}_bucket{{hook=\"{}\",le=\"{b}\"}} {cum}", h.name());
            }
            let n = l.count();
            let _ = writeln!(o, "{name}_bucket{{hook=\"{}\",le=\"+Inf\"}} {n}", h.name());
            let sum = l.sum_us as f64 / 1e6;
            let _ = writeln!(o, "{name}_sum{{hook=\"{}\"}} {sum}", h.name());
            let _ = writeln!(o, "{name}_count{{hook=\"{}\"}} {n}", h.name());
        }
    }
}

/// A broadcast or play that started, for its `unpublish` or `stop`.
#[derive(Clone, Debug)]
struct Started {
    call: Call,
    since: Instant,
    bytes: u64,
}

/// The broadcasts and plays that started, kept only while `--on-unpublish` (broadcasts) or
/// `--on-stop` (plays) is set. Each method returns the notification to send, if one is due:
/// (hook, JSON).
#[derive(Debug, Default)]
pub struct Sessions {
    publishes: HashMap<ChanKey, Started>,
    plays: HashMap<SubId, Started>,
    pub track_publishes: bool,
    pub track_plays: bool,
}

impl Sessions {
    fn ended(hook: Hook, s: Started, now: Instant) -> (Hook, String) {
        let d = now.saturating_duration_since(s.since);
        (hook, s.call.to_json(hook, Some((s.bytes, d))))
    }

    /// A broadcast on `key` starts as `call` says; one it took the channel over from has ended.
    pub fn publish(&mut self, key: &ChanKey, call: Call, now: Instant) -> Option<(Hook, String)> {
        if !self.track_publishes {
            return None;
        }
        let s = Started {
            call,
            since: now,
            bytes: 0,
        };
        let old = self.publishes.insert(key.clone(), s)?;
        Some(Self::ended(Hook::Unpublish, old, now))
    }

    /// Bytes of the broadcast on `key`.
    pub fn bytes_in(&mut self, key: &ChanKey, n: usize) {
        if let Some(s) = self.publishes.get_mut(key) {
            s.bytes += n as u64;
        }
    }

    /// The broadcast on `key` ended.
    pub fn unpublish(&mut self, key: &ChanKey, now: Instant) -> Option<(Hook, String)> {
        let s = self.publishes.remove(key)?;
        Some(Self::ended(Hook::Unpublish, s, now))
    }

    /// Watcher `sub` plays as `call` says. The caller has passed [`Self::stop`] every departure
    /// so far, so a slot used again is a new play.
    pub fn play(&mut self, sub: SubId, call: Call, now: Instant) {
        if self.track_plays {
            let s = Started {
                call,
                since: now,
                bytes: 0,
            };
            self.plays.insert(sub, s);
        }
    }

    /// Watcher `sub` left its channel after `bytes` were sent to it.
    pub fn stop(&mut self, sub: SubId, bytes: u64, now: Instant) -> Option<(Hook, String)> {
        let mut s = self.plays.remove(&sub)?;
        s.bytes = bytes;
        Some(Self::ended(Hook::Stop, s, now))
    }

    /// Broadcasts and plays being tracked.
    pub fn len(&self) -> usize {
        self.publishes.len() + self.plays.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call {
            id: 7,
            protocol: "rtmp",
            user: "fier".into(),
            channel: "cam".into(),
            remote_addr: "127.0.0.1:5000".parse().unwrap(),
            query: Some("token=a\"b&x=\\".into()),
            user_password: Some("p\u{e9}".into()),
            channel_password: None,
        }
    }

    #[test]
    fn the_json_object_parses_and_holds_every_key() {
        let j = call().to_json(Hook::Publish, None);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["action"], "publish");
        assert_eq!(v["id"], 7);
        assert_eq!(v["protocol"], "rtmp");
        assert_eq!(v["user"], "fier");
        assert_eq!(v["channel"], "cam");
        assert_eq!(v["remote_addr"], "127.0.0.1:5000");
        assert_eq!(v["query"], "token=a\"b&x=\\");
        assert_eq!(v["user_password"], "p\u{e9}");
        assert!(v["channel_password"].is_null());
        assert!(v.get("bytes").is_none());
        let j = call().to_json(Hook::Stop, Some((1234, Duration::from_millis(2500))));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["action"], "stop");
        assert_eq!(v["bytes"], 1234);
        assert_eq!(v["duration_secs"], 2.5);
        assert_eq!(v.as_object().unwrap().len(), 11);
    }

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080/hooks/publish?x=1").unwrap();
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/hooks/publish?x=1");
        let t = Target::parse("http://localhost").unwrap();
        assert_eq!((t.host.as_str(), t.path.as_str()), ("localhost:80", "/"));
        let t = Target::parse("http://[::1]:9/a").unwrap();
        assert_eq!(t.host, "[::1]:9");
        for (bad, why) in [
            ("https://h/x", "only http://"),
            ("h:80/x", "only http://"),
            ("http://u:p@h/x", "no user or password"),
            ("not a url", "relative URL without a base"),
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn only_a_2xx_allows() {
        let resp = |status: u16, body: &[u8]| {
            Ok(ClientResponse {
                status,
                body: body.to_vec(),
            })
        };
        for s in [200, 204, 299] {
            assert_eq!(verdict(Hook::Play, &resp(s, b"")), (Outcome::Ok, Ok(())));
        }
        let (o, r) = verdict(Hook::Publish, &resp(403, b"banned\r\nmore"));
        assert_eq!(o, Outcome::Status);
        assert_eq!(r.unwrap_err(), "the publish hook answered 403: \"banned\"");
        let (o, r) = verdict(Hook::Publish, &resp(302, b""));
        assert_eq!(o, Outcome::Status);
        assert_eq!(r.unwrap_err(), "the publish hook answered 302");
        let (o, r) = verdict(Hook::Publish, &resp(500, b"\x1b[31m"));
        assert_eq!(o, Outcome::Status);
        assert!(r.unwrap_err().ends_with("\"\\u{1b}[31m\""));
        let t = io::Error::new(io::ErrorKind::TimedOut, "POST to x: no answer");
        let (o, r) = verdict(Hook::Play, &Err(t));
        assert_eq!(o, Outcome::Timeout);
        assert!(r.unwrap_err().contains("did not answer in time"));
        let e = io::Error::new(io::ErrorKind::ConnectionRefused, "connect to x: refused");
        let (o, r) = verdict(Hook::Play, &Err(e));
        assert_eq!(o, Outcome::Error);
        assert_eq!(
            r.unwrap_err(),
            "the play hook failed: connect to x: refused"
        );
    }

    #[test]
    fn sessions_pair_each_start_with_its_end() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let key: ChanKey = ("fier".into(), "cam".into());
        let mut ss = Sessions::default();
        // Not tracked unless asked.
        assert!(ss.publish(&key, call(), t0).is_none());
        ss.play(2, call(), t0);
        assert!(ss.is_empty());
        ss.track_publishes = true;
        ss.track_plays = true;
        assert!(ss.publish(&key, call(), t0).is_none());
        ss.bytes_in(&key, 100);
        ss.bytes_in(&key, 50);
        // A takeover: the first broadcaster's broadcast ended.
        let (h, j) = ss.publish(&key, call(), t0 + 2 * s).unwrap();
        assert_eq!(h, Hook::Unpublish);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(
            (v["bytes"].as_u64(), v["duration_secs"].as_f64()),
            (Some(150), Some(2.0))
        );
        ss.bytes_in(&key, 7);
        let (_, j) = ss.unpublish(&key, t0 + 3 * s).unwrap();
        assert!(j.contains("\"bytes\":7,\"duration_secs\":1.000"), "{j}");
        assert!(ss.unpublish(&key, t0).is_none());
        ss.play(2, call(), t0);
        let (h, j) = ss.stop(2, 4096, t0 + s).unwrap();
        assert_eq!(h, Hook::Stop);
        assert!(
            j.contains("\"action\":\"stop\"") && j.contains("\"bytes\":4096"),
            "{j}"
        );
        assert!(ss.stop(2, 1, t0).is_none(), "once");
        assert!(ss.is_empty());
    }

    #[test]
    fn metrics_text_only_for_hooks_that_are_set() {
        let mut m = HookMetrics::default();
        let mut o = String::new();
        m.write_prometheus(&mut o);
        assert!(o.is_empty());
        m.set[Hook::Publish as usize] = true;
        m.record(Hook::Publish, Outcome::Ok, Some(Duration::from_millis(3)));
        m.record(
            Hook::Publish,
            Outcome::Timeout,
            Some(Duration::from_secs(3)),
        );
        m.pending[0] = 2;
        m.write_prometheus(&mut o);
        for want in [
            "# TYPE river_relay_hook_calls_total counter",
            "river_relay_hook_calls_total{hook=\"publish\",outcome=\"ok\"} 1",
            "river_relay_hook_calls_total{hook=\"publish\",outcome=\"timeout\"} 1",
            "river_relay_hook_pending{hook=\"publish\"} 2",
            "river_relay_hook_duration_seconds_bucket{hook=\"publish\",le=\"0.005\"} 1",
            "river_relay_hook_duration_seconds_bucket{hook=\"publish\",le=\"+Inf\"} 2",
            "river_relay_hook_duration_seconds_sum{hook=\"publish\"} 3.003",
        ] {
            assert!(o.contains(want), "{want}:\n{o}");
        }
        assert!(!o.contains("hook=\"play\""), "{o}");
    }
}
