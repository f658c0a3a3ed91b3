//! Broadcasts and watchers, the hub's side of every front: a user's password checked, a
//! connection (or an HTTP push, or an edge's pull) made a channel's broadcaster, a watcher
//! attached, the broadcast's bytes, its end; and paced broadcasters held back while a watcher has
//! no room, then read again.

use std::net::SocketAddr;
use std::time::Instant;

use super::super::cascade::Cascade;
use super::super::channel::{key_str, ChanKey, SubId, SubKind};
use super::super::front::fstream::Publisher;
use super::super::metrics::Refused;
use super::{Front, Hub, State, Watching, HTTP_SUBS};

impl Hub {
    /// The channel a connection broadcasts on, if it broadcasts over TCP, and its broadcaster's
    /// [`SubId`] (the connection's, or its pull's).
    pub(super) fn publishing(&self, idx: usize) -> Option<(ChanKey, SubId)> {
        match &self.conns.get(idx)?.as_ref()?.state {
            State::Publisher(p) => Some((p.key.clone(), idx)),
            State::Rtsp(r) => match &r.role {
                super::super::rtsp::Role::Publisher(p) => Some((p.key.clone(), idx)),
                _ => None,
            },
            State::Pull(key) => self
                .cascade
                .pulls
                .get(key)
                .filter(|p| p.conn == Some(idx))
                .map(|p| (key.clone(), p.id)),
            _ => None,
        }
    }

    /// Holds broadcaster `id` of `key` back: its watchers have no room.
    pub(in crate::relay) fn hold(&mut self, id: SubId, key: ChanKey, now: Instant) {
        if !self.held.iter().any(|h| h.0 == id) {
            self.channels.hold(&key, now);
            self.held.push((id, key));
        }
    }

    /// Reads the held broadcasters whose watchers have room again.
    pub(super) fn release_held(&mut self, now: Instant) {
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        for (id, key) in held {
            if !self.channels.is_publisher(&key, id) {
                continue;
            }
            if !self.channels.room(&key) {
                self.held.push((id, key));
                continue;
            }
            self.channels.release(&key, now);
            if id >= HTTP_SUBS {
                self.http_resume(id, now);
            } else if Cascade::is_pull(id) {
                if let Some(slot) = self.cascade.pull_by_id(id).and_then(|p| p.conn) {
                    self.again.push(slot);
                }
            } else {
                self.again.push(id);
            }
        }
    }

    pub(in crate::relay) fn check_user(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<(), String> {
        match self.users.check(user, password) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("wrong user password or unknown user {user:?}")),
            Err(e) => {
                log::error!("users: {e}");
                Err(format!("cannot check user {user:?}: {e}"))
            }
        }
    }

    /// Connection `idx` broadcasts on `key` (its front has checked the user); a broadcaster it
    /// replaces is closed.
    pub(in crate::relay) fn start_broadcast(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        now: Instant,
    ) {
        let Some(peer) = self.conns[idx].as_ref().map(|c| c.peer) else {
            return;
        };
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Publisher(Publisher::raw(key.clone()));
        }
        let front = self.conns[idx].as_ref().map_or(Front::Fstream, |c| c.front);
        self.begin_broadcast(idx, peer, key, password, front, now);
    }

    /// `id` broadcasts on `key`: the channels' side, the log line, and the broadcaster it
    /// replaces closed.
    pub(in crate::relay) fn begin_broadcast(
        &mut self,
        id: SubId,
        peer: SocketAddr,
        key: ChanKey,
        password: Option<String>,
        front: Front,
        now: Instant,
    ) {
        let old = self.channels.broadcast(
            id,
            &key,
            password.clone(),
            peer,
            front.name(),
            now,
            &mut self.fx,
        );
        let how = match front {
            Front::Fstream => "",
            Front::Http => " over HTTP",
            Front::Rtmp => " over RTMP",
            Front::Rtsp => " over RTSP",
        };
        log::info!(
            "{peer}: broadcasting {}{}{how}",
            key_str(&key),
            if password.is_some() {
                " (channel password set)"
            } else {
                ""
            },
        );
        match old {
            Some(old) if old >= HTTP_SUBS => self.http_replaced(old),
            Some(old) if Cascade::is_pull(old) => self.pull_replaced(old, now),
            Some(old) => {
                if let Some(c) = self.conns[old].as_mut() {
                    // Detach first so closing it does not end the broadcast.
                    c.state = State::Closing;
                }
                self.close(old, Some("replaced by a new broadcaster"));
            }
            None => {}
        }
        // After a pull it replaced has stopped: a local broadcast is pushed, a pulled one not.
        self.push_start(&key, now);
        self.apply(now);
    }

    /// Connection `idx` watches `key` as `kind`, or is refused.
    pub(in crate::relay) fn start_watcher(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        kind: SubKind,
        now: Instant,
    ) {
        let Some(peer) = self.conns[idx].as_ref().map(|c| c.peer) else {
            return;
        };
        let r = self
            .channels
            .watch(idx, &key, password, kind, peer, now, &mut self.fx);
        if let Err(r) = r {
            self.refuse(idx, Refused::from_status(r.status), &r.why, None);
            return;
        }
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Watcher(Watching { input: 0 });
        }
        self.apply(now);
        self.pull_for(&key, now);
    }

    /// Bytes of the broadcast on `key`.
    pub(in crate::relay) fn broadcast_data(&mut self, key: &ChanKey, data: &[u8], now: Instant) {
        if self.hooks.sessions.track_publishes {
            self.hooks.sessions.bytes_in(key, data.len());
        }
        let wall = std::time::SystemTime::now();
        self.channels.push(key, data, now, wall, &mut self.fx);
        self.apply(now);
    }

    /// The broadcast on `key` ended: every watcher gets what is queued, then EOF.
    pub(in crate::relay) fn end_broadcast(&mut self, key: &ChanKey, now: Instant, why: &str) {
        let wall = std::time::SystemTime::now();
        self.hook_unpublished(key, now);
        if let Some(p) = self.channels.end(key, now, wall, why, &mut self.fx) {
            if let Some(Some(c)) = self.conns.get_mut(p).filter(|_| p < HTTP_SUBS) {
                if matches!(c.state, State::Publisher(_)) {
                    c.state = State::Closing;
                }
            }
        }
        self.apply(now);
        // The channels flagged these; flush them now rather than at the end of the turn.
        self.flush_dirty(now);
    }
}
