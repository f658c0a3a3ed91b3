//! Publish and play hooks on the hub's reactor: each call is a [`Post`] on a token of its own
//! (from [`HOOK_TOKENS`], never reused), so the hub never waits for one. A client waiting for a
//! decision is parked: its connection is not read (what it sent stays in the socket, or in the
//! session that parsed it), every other client is served, and the call's deadline
//! (`--hook-timeout`) bounds the wait. The decision goes back to the client's front, which lets it
//! in or refuses it as that front refuses anything ([`Then`]). Notifications (`--on-unpublish`,
//! `--on-stop`) are calls nobody waits for, at most [`MAX_NOTIFYING`] at once.
//!
//! What is told and what answers mean is pure, in [`super::super::hooks`].

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use mio::Token;

use super::super::channel::{ChanKey, SubId};
use super::super::hooks::MAX_NOTIFYING;
use super::super::hooks::{verdict, Call, Config, Hook, HookMetrics, Outcome, Sessions};
use super::super::http::Ext;
use super::super::hub::{Hub, HOOK_TOKENS};
use crate::http::client::Post;
use crate::proto::rtsp::Access;

/// Who waits for a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::relay) enum Who {
    /// A hub connection: its slot and its id (a slot is used again).
    Conn { idx: usize, id: u64 },
    /// An HTTP request, by its [`SubId`] (never used again).
    Http(SubId),
}

/// What a front does once the decision is in.
pub(in crate::relay) enum Then {
    /// An fstream broadcaster, with what came after its handshake.
    FstreamBroadcast {
        key: ChanKey,
        password: Option<String>,
        rest: Vec<u8>,
    },
    /// An fstream watcher, with the bytes it sent after its handshake.
    FstreamWatch {
        key: ChanKey,
        password: Option<String>,
        rest: u64,
    },
    HttpPush {
        key: ChanKey,
        password: Option<String>,
    },
    HttpWatch {
        key: ChanKey,
        password: Option<String>,
        ext: Ext,
    },
    RtmpPublish {
        stream_id: u32,
        key: ChanKey,
        password: Option<String>,
    },
    RtmpPlay {
        key: ChanKey,
        password: Option<String>,
    },
    /// The RTSP session's request asking for `access` to `path` is handled again.
    Rtsp { access: Access, path: String },
}

/// A client waiting for a decision.
pub(in crate::relay) struct Waiter {
    pub who: Who,
    pub then: Then,
    pub call: Call,
}

struct Pending {
    post: Post,
    hook: Hook,
    since: Instant,
    /// None: a notification.
    wait: Option<Waiter>,
}

/// The hub's hooks: the calls in flight, the broadcasts and plays to notify about, the figures.
pub(in crate::relay) struct Hooks {
    pub cfg: Config,
    calls: HashMap<usize, Pending>,
    next: usize,
    notifying: usize,
    pub sessions: Sessions,
    pub metrics: HookMetrics,
}

impl Hooks {
    pub fn new(cfg: Config) -> Hooks {
        let mut metrics = HookMetrics::default();
        for h in Hook::ALL {
            metrics.set[h as usize] = cfg.target(h).is_some();
        }
        let mut sessions = Sessions::default();
        sessions.track_publishes = cfg.target(Hook::Unpublish).is_some();
        sessions.track_plays = cfg.target(Hook::Stop).is_some();
        Hooks {
            cfg,
            calls: HashMap::new(),
            next: 0,
            notifying: 0,
            sessions,
            metrics,
        }
    }

    /// Notifications still on their way (the stop waits for them, as for watchers).
    pub fn notifying(&self) -> bool {
        self.notifying > 0
    }

    /// Forgets call `tok` (its client is gone): the socket closes, no outcome is counted.
    pub fn cancel(&mut self, tok: usize) {
        if let Some(p) = self.calls.remove(&tok) {
            self.metrics.pending[p.hook as usize] -= 1;
        }
    }

    fn start(
        &mut self,
        hook: Hook,
        body: &str,
        now: Instant,
        hub: &mio::Registry,
    ) -> io::Result<usize> {
        let Some((target, addr)) = self.cfg.target(hook) else {
            return Err(io::Error::other("no hook"));
        };
        let tok = self.next;
        let post = Post::start(
            *addr,
            &target.host,
            &target.path,
            "application/json",
            body.as_bytes(),
            now + self.cfg.timeout,
            hub,
            Token(HOOK_TOKENS + tok),
        )
        .map_err(|e| io::Error::new(e.kind(), format!("POST to {}: {e}", target.url)))?;
        self.next += 1;
        self.calls.insert(
            tok,
            Pending {
                post,
                hook,
                since: now,
                wait: None,
            },
        );
        self.metrics.pending[hook as usize] += 1;
        Ok(tok)
    }
}

impl Hub {
    /// Asks `hook` whether `w` may go on, or lets it go on at once when the hook is not set. While
    /// the hook decides, the client is parked (its connection is not read).
    pub(in crate::relay) fn ask_hook(&mut self, hook: Hook, w: Waiter, now: Instant) {
        if self.hooks.cfg.target(hook).is_none() {
            self.hook_decided(w, Ok(()), now);
            return;
        }
        let body = w.call.to_json(hook, None);
        match self.hooks.start(hook, &body, now, self.reactor.registry()) {
            Ok(tok) => {
                self.park(w.who, Some(tok));
                if let Some(p) = self.hooks.calls.get_mut(&tok) {
                    p.wait = Some(w);
                }
            }
            Err(e) => {
                self.hooks
                    .metrics
                    .record(hook, Outcome::Error, Some(Duration::ZERO));
                let (_, v) = verdict(hook, &Err(e));
                self.hook_decided(w, v, now);
            }
        }
    }

    /// Sends a notification, if one is due and its hook is set; nothing waits for it.
    pub(in crate::relay) fn notify(&mut self, n: Option<(Hook, String)>, now: Instant) {
        let Some((hook, body)) = n else { return };
        let Some(url) = self.hooks.cfg.target(hook).map(|t| t.0.url.clone()) else {
            return;
        };
        if self.hooks.notifying >= MAX_NOTIFYING {
            self.hooks.metrics.record(hook, Outcome::Dropped, None);
            log::warn!(
                "{} hook {url}: not told, {MAX_NOTIFYING} notifications in flight",
                hook.name()
            );
            return;
        }
        match self.hooks.start(hook, &body, now, self.reactor.registry()) {
            Ok(_) => self.hooks.notifying += 1,
            Err(e) => {
                self.hooks
                    .metrics
                    .record(hook, Outcome::Error, Some(Duration::ZERO));
                log::warn!("{} hook: {e}", hook.name());
            }
        }
    }

    /// Marks the client waiting for call `tok` (None: no longer waiting); false if it is gone.
    fn park(&mut self, who: Who, tok: Option<usize>) -> bool {
        match who {
            Who::Conn { idx, id } => match self.conns.get_mut(idx).and_then(|c| c.as_mut()) {
                Some(c) if c.id == id => {
                    c.hook = tok;
                    true
                }
                _ => false,
            },
            Who::Http(sub) => match self.http_reqs.get_mut(&sub) {
                Some(r) => {
                    r.hook = tok;
                    if tok.is_some() {
                        self.http_pause(sub);
                    }
                    true
                }
                None => false,
            },
        }
    }

    /// An event on a hook call's token.
    pub(in crate::relay) fn hook_event(&mut self, token: Token, now: Instant) {
        let tok = token.0 - HOOK_TOKENS;
        let Some(p) = self.hooks.calls.get_mut(&tok) else {
            return;
        };
        if let Some(r) = p.post.poll(self.reactor.registry(), now) {
            self.hook_done(tok, r, now);
        }
    }

    /// Calls past their deadline (their `poll` says so).
    pub(in crate::relay) fn hook_timers(&mut self, now: Instant) {
        let due: Vec<usize> = self
            .hooks
            .calls
            .iter()
            .filter(|(_, p)| now >= p.post.deadline())
            .map(|(&t, _)| t)
            .collect();
        for tok in due {
            let Some(p) = self.hooks.calls.get_mut(&tok) else {
                continue;
            };
            if let Some(r) = p.post.poll(self.reactor.registry(), now) {
                self.hook_done(tok, r, now);
            }
        }
    }

    /// The earliest deadline of a call in flight.
    pub(in crate::relay) fn hook_deadline(&self) -> Option<Instant> {
        self.hooks.calls.values().map(|p| p.post.deadline()).min()
    }

    fn hook_done(
        &mut self,
        tok: usize,
        r: io::Result<crate::http::client::ClientResponse>,
        now: Instant,
    ) {
        let Some(p) = self.hooks.calls.remove(&tok) else {
            return;
        };
        let hook = p.hook;
        self.hooks.metrics.pending[hook as usize] -= 1;
        let (outcome, v) = verdict(hook, &r);
        let took = now.saturating_duration_since(p.since);
        self.hooks.metrics.record(hook, outcome, Some(took));
        let Some(w) = p.wait else {
            self.hooks.notifying -= 1;
            if let Err(why) = v {
                log::warn!("{why}");
            }
            return;
        };
        if !self.park(w.who, None) {
            return;
        }
        let who = w.who;
        self.hook_decided(w, v, now);
        // What the client sent meanwhile is read now (its connection had no turn), unless it is
        // held back for another reason (a paced broadcast whose watchers have no room).
        match who {
            Who::Conn { idx, id } => {
                let live = self.conns.get(idx).and_then(|c| c.as_ref());
                if !live.is_some_and(|c| c.id == id && c.hook.is_none()) {
                    return;
                }
                if live.is_some_and(|c| c.rtmp.is_some()) {
                    // The session's events after the publish or play.
                    self.rtmp_events(idx, now);
                    self.flush(idx, now);
                }
                if !self.held.iter().any(|h| h.0 == idx) {
                    self.read_again(idx);
                }
            }
            Who::Http(sub) => {
                if self.http_reqs.contains_key(&sub) && !self.held.iter().any(|h| h.0 == sub) {
                    self.http_resume(sub, now);
                }
            }
        }
    }

    /// The decision is in: the front lets the client in or refuses it.
    fn hook_decided(&mut self, w: Waiter, v: Result<(), String>, now: Instant) {
        match (w.who, w.then) {
            (
                Who::Conn { idx, .. },
                Then::FstreamBroadcast {
                    key,
                    password,
                    rest,
                },
            ) => self.fstream_broadcast_decided(idx, key, password, rest, w.call, v, now),
            (
                Who::Conn { idx, .. },
                Then::FstreamWatch {
                    key,
                    password,
                    rest,
                },
            ) => self.fstream_watch_decided(idx, key, password, rest, w.call, v, now),
            (
                Who::Conn { idx, .. },
                Then::RtmpPublish {
                    stream_id,
                    key,
                    password,
                },
            ) => self.rtmp_publish_decided(idx, stream_id, key, password, w.call, v, now),
            (Who::Conn { idx, .. }, Then::RtmpPlay { key, password }) => {
                self.rtmp_play_decided(idx, key, password, w.call, v, now)
            }
            (Who::Conn { idx, .. }, Then::Rtsp { access, path }) => {
                self.rtsp_decided(idx, access, path, w.call, v, now)
            }
            (Who::Http(sub), Then::HttpPush { key, password }) => {
                self.http_push_decided(sub, key, password, w.call, v, now)
            }
            (Who::Http(sub), Then::HttpWatch { key, password, ext }) => {
                self.http_watch_decided(sub, key, password, ext, w.call, v, now)
            }
            (who, _) => log::error!("hook decision for {who:?} has no front to go to"),
        }
    }

    /// A broadcast started as `call` says (for `--on-unpublish`).
    pub(in crate::relay) fn hook_published(&mut self, key: &ChanKey, call: Call, now: Instant) {
        let n = self.hooks.sessions.publish(key, call, now);
        self.notify(n, now);
    }

    /// The broadcast on `key` ended.
    pub(in crate::relay) fn hook_unpublished(&mut self, key: &ChanKey, now: Instant) {
        let n = self.hooks.sessions.unpublish(key, now);
        self.notify(n, now);
    }

    /// Watcher `sub` plays as `call` says (for `--on-stop`).
    pub(in crate::relay) fn hook_playing(&mut self, sub: SubId, call: Call, now: Instant) {
        // Departures first: `sub` may be a slot whose last watcher just left.
        self.hook_departures(now);
        self.hooks.sessions.play(sub, call, now);
    }

    /// Watchers that left their channel: their `stop`.
    pub(in crate::relay) fn hook_departures(&mut self, now: Instant) {
        let Some(gone) = self.channels.departed.as_mut().map(std::mem::take) else {
            return;
        };
        for (sub, bytes) in gone {
            let n = self.hooks.sessions.stop(sub, bytes, now);
            self.notify(n, now);
        }
    }
}
