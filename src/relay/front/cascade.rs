//! The hub's outbound fstream connections ([`crate::relay::cascade`] decides, this file dials):
//! an edge's pulls from its origin (`--origin`), which broadcast on the edge's channels, and
//! pushes of local broadcasts to another hub (`--push-to`), which watch them. Both connect on the
//! hub's reactor with a deadline ([`net::connect`]) and never block it.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Token;

use super::super::cascade::{Cascade, Lost, Outbound, Pull, PullState, Push, Tick, DIAL_TIMEOUT};
use super::super::channel::{key_str, ChanKey, SubId, SubKind};
use super::super::hub::{Config, Conn, Front, Hub, State, Watching, FIRST};
use crate::net;
use crate::proto::fstream::{Request, Role};

/// The hub's pulls and pushes as `cfg` sets them; the addresses are resolved here, once.
pub(in crate::relay) fn configure(cfg: &Config) -> io::Result<Cascade> {
    let resolve = |what: &str, a: &Option<String>| {
        a.as_deref()
            .map(|a| {
                net::listener::resolve(a)
                    .map_err(|e| io::Error::new(e.kind(), format!("{what} {a}: {e}")))
            })
            .transpose()
    };
    Ok(Cascade::new(
        resolve("--origin", &cfg.origin)?,
        resolve("--push-to", &cfg.push_to)?,
        cfg.origin_idle,
        cfg.wait_timeout,
    ))
}

impl Hub {
    /// A watcher waits for `key`: an edge that does not have it live pulls it from its origin,
    /// with the channel password of a waiting watcher, unless a pull of it is under way.
    pub(in crate::relay) fn pull_for(&mut self, key: &ChanKey, now: Instant) {
        if self.cascade.origin.is_none()
            || self.cascade.stopped
            || self.cascade.pulls.contains_key(key)
            || self.channels.live_password(key).is_some()
        {
            return;
        }
        // Watchers with a password the origin just refused are refused as it refused them.
        while let Some(password) = self.channels.waiting_password(key) {
            if !self.cascade.was_refused(key, &password, now) {
                self.pull_with(key, password, now);
                return;
            }
            self.refuse_waiting(key, &password, 403, REFUSED);
        }
    }

    /// An edge pulls `key` with `password`, unless it has it live or a pull of it is under way.
    pub(in crate::relay) fn pull_with(
        &mut self,
        key: &ChanKey,
        password: Option<String>,
        now: Instant,
    ) {
        let Some(origin) = self.cascade.origin else {
            return;
        };
        if self.cascade.stopped
            || self.cascade.pulls.contains_key(key)
            || self.channels.live_password(key).is_some()
        {
            return;
        }
        let id = self.cascade.pull_id();
        let pull = Pull::new(key.clone(), password, id, now);
        self.cascade.pulls.insert(key.clone(), pull);
        log::info!("{origin}: pulling {} from the origin", key_str(key));
        self.dial_pull(key, now);
    }

    /// Refuses the watchers waiting for `key` with `password`.
    fn refuse_waiting(&mut self, key: &ChanKey, password: &Option<String>, status: u16, m: &str) {
        self.channels
            .refuse_waiting(key, password, status, m, &mut self.fx);
        self.apply(Instant::now());
    }

    /// Is connection `idx` an outbound connect in progress?
    pub(in crate::relay) fn dialing(&self, idx: usize) -> bool {
        matches!(
            self.conns.get(idx),
            Some(Some(Conn {
                state: State::Dialing { .. },
                ..
            }))
        )
    }

    /// Starts connecting to `peer` for `purpose`: its connection slot, or None (logged).
    fn dial(&mut self, peer: SocketAddr, purpose: Outbound, now: Instant) -> Option<usize> {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let sock = match net::connect::start(peer, self.reactor.registry(), Token(idx + FIRST)) {
            Ok(s) => s,
            Err(e) => {
                self.free.push(idx);
                log::warn!("{peer}: connect: {e}");
                return None;
            }
        };
        self.conns[idx] = Some(Conn {
            io: net::Conn::new(sock, 1 << 20),
            peer,
            id: self.next_id,
            since: now,
            state: State::Dialing {
                deadline: now + DIAL_TIMEOUT,
            },
            rtmp: None,
            front: Front::Fstream,
            hook: None,
            parked: false,
            read_at: None,
        });
        self.next_id += 1;
        self.nconns += 1;
        self.cascade.outbound.insert(idx, purpose);
        Some(idx)
    }

    fn dial_pull(&mut self, key: &ChanKey, now: Instant) {
        let Some(origin) = self.cascade.origin else {
            return;
        };
        let slot = self.dial(origin, Outbound::Pull(key.clone()), now);
        let Some(p) = self.cascade.pulls.get_mut(key) else {
            return;
        };
        p.conn = slot;
        if slot.is_none() {
            self.pull_lost(key.clone(), now);
        }
    }

    fn dial_push(&mut self, key: &ChanKey, now: Instant) {
        let Some(to) = self.cascade.push_to else {
            return;
        };
        let slot = self.dial(to, Outbound::Push(key.clone()), now);
        let Some(p) = self.cascade.pushes.get_mut(key) else {
            return;
        };
        p.conn = slot;
        if slot.is_none() {
            p.lost(now);
        }
    }

    /// An event on a connect in progress, or its deadline: connected, still connecting, or
    /// failed (closed, which counts as lost).
    pub(in crate::relay) fn dial_event(&mut self, idx: usize, now: Instant) {
        let Some(Some(c)) = self.conns.get(idx) else {
            return;
        };
        let State::Dialing { deadline } = c.state else {
            return;
        };
        match net::connect::finished(&c.io.sock, c.peer, deadline, now) {
            Ok(false) => {}
            Ok(true) => self.outbound_connected(idx, now),
            Err(e) => self.close(idx, Some(&e.to_string())),
        }
    }

    /// Connected: a pull sends its watch handshake; a push sends its broadcast handshake and
    /// watches the local channel (from its headers and cached GOP, so the other hub gets a clean
    /// stream).
    fn outbound_connected(&mut self, idx: usize, now: Instant) {
        let Some(purpose) = self.cascade.outbound.get(&idx).cloned() else {
            return;
        };
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let _ = c.io.sock.set_nodelay(true);
        let peer = c.peer;
        match purpose {
            Outbound::Pull(key) => {
                let Some(p) = self.cascade.pulls.get_mut(&key) else {
                    self.close(idx, None);
                    return;
                };
                p.connected(now);
                let req = Request {
                    channel: key.1.clone(),
                    channel_password: p.password.clone(),
                    ..Request::new(Role::Watch, key.0.clone())
                };
                c.io.out.push_always(req.encode().into());
                c.state = State::Pull(key);
                self.flush(idx, now);
            }
            Outbound::Push(key) => {
                let Some(p) = self.cascade.pushes.get_mut(&key) else {
                    self.close(idx, None);
                    return;
                };
                p.connected(now);
                let Some(cpw) = self
                    .channels
                    .live_password(&key)
                    .map(|p| p.map(String::from))
                else {
                    self.close(idx, Some("push: the broadcast ended"));
                    return;
                };
                let user_pw = match self.users.password(&key.0) {
                    Ok(Some(pw)) => pw,
                    Ok(None) => {
                        log::error!(
                            "{peer}: cannot push {}: user {:?} has no password in the users \
                             directory (the push logs in as the broadcast's user)",
                            key_str(&key),
                            key.0
                        );
                        self.cascade.outbound.remove(&idx);
                        self.cascade.pushes.remove(&key);
                        self.close(idx, None);
                        return;
                    }
                    Err(e) => {
                        log::error!("{peer}: cannot push {}: {e}", key_str(&key));
                        self.cascade.outbound.remove(&idx);
                        self.cascade.pushes.remove(&key);
                        self.close(idx, None);
                        return;
                    }
                };
                let req = Request {
                    user_password: Some(user_pw),
                    channel: key.1.clone(),
                    channel_password: cpw.clone(),
                    ..Request::new(Role::Broadcast, key.0.clone())
                };
                c.io.out.push_always(req.encode().into());
                c.state = State::Watcher(Watching { input: 0 });
                log::info!("{peer}: pushing {}", key_str(&key));
                let r =
                    self.channels
                        .watch(idx, &key, cpw, SubKind::Fstream, peer, now, &mut self.fx);
                if let Err(r) = r {
                    self.close(idx, Some(&format!("push: {}", r.why)));
                    return;
                }
                self.apply(now);
                self.flush(idx, now);
            }
        }
    }

    /// Bytes from the origin on pull connection `idx`: the first make the channel live here (or
    /// resume it: a takeover by the same broadcaster, which restarts every watcher at the new
    /// stream's keyframe), all go to the channel.
    pub(in crate::relay) fn on_pull_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(Some(c)) = self.conns.get(idx) else {
            return;
        };
        let (State::Pull(key), peer) = (&c.state, c.peer) else {
            return;
        };
        let key = key.clone();
        let Some(p) = self
            .cascade
            .pulls
            .get_mut(&key)
            .filter(|p| p.conn == Some(idx))
        else {
            self.close(idx, Some("a pull nobody wants"));
            return;
        };
        if p.state != PullState::Receiving {
            let resumed = p.receiving();
            let (id, password) = (p.id, p.password.clone());
            if !resumed {
                log::info!("{peer}: the origin sends {}", key_str(&key));
            }
            let old = self.channels.broadcast(
                id,
                &key,
                password,
                peer,
                Front::Fstream.name(),
                now,
                &mut self.fx,
            );
            debug_assert!(
                old.is_none() || old == Some(id),
                "a pull replaces only itself"
            );
            self.apply(now);
        }
        self.broadcast_data(&key, data, now);
    }

    /// Outbound connection `idx`, for `purpose`, is gone (closed, failed, refused).
    pub(in crate::relay) fn outbound_closed(&mut self, idx: usize, o: Outbound, now: Instant) {
        match o {
            Outbound::Pull(key) => {
                if self
                    .cascade
                    .pulls
                    .get(&key)
                    .is_some_and(|p| p.conn == Some(idx))
                {
                    self.pull_lost(key, now);
                }
            }
            Outbound::Push(key) => {
                let live = self.local_broadcast(&key);
                let Some(p) = self.cascade.pushes.get_mut(&key) else {
                    return;
                };
                if p.conn != Some(idx) {
                    return;
                }
                if !live || self.cascade.stopped {
                    self.cascade.pushes.remove(&key);
                    return;
                }
                let at = p.lost(now);
                log::warn!(
                    "{}: push of {} lost; dialing again in {} ms",
                    self.cascade
                        .push_to
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    key_str(&key),
                    at.saturating_duration_since(now).as_millis()
                );
            }
        }
    }

    /// The pull of `key` lost its connection: retry, or (never on air) refuse its watchers.
    fn pull_lost(&mut self, key: ChanKey, now: Instant) {
        if self.cascade.stopped {
            self.cascade.pulls.remove(&key);
            return;
        }
        let origin = self
            .cascade
            .origin
            .map(|a| a.to_string())
            .unwrap_or_default();
        let Some(p) = self.cascade.pulls.get_mut(&key) else {
            return;
        };
        let password = p.password.clone();
        match p.lost(now) {
            Lost::Retry(at) => {
                let ms = at.saturating_duration_since(now).as_millis();
                if p.on_air {
                    log::warn!(
                        "{origin}: pull of {} lost; its watchers wait, dialing again in {ms} ms",
                        key_str(&key)
                    );
                } else {
                    log::info!(
                        "{origin}: pull of {}: dialing again in {ms} ms",
                        key_str(&key)
                    );
                }
            }
            Lost::Refused => {
                self.cascade.pulls.remove(&key);
                self.cascade.note_refusal(&key, &password, now);
                log::warn!("{origin}: the origin refused the pull of {}", key_str(&key));
                self.refuse_waiting(&key, &password, 403, REFUSED);
                self.pull_for(&key, now);
            }
            Lost::NotLive => {
                self.cascade.pulls.remove(&key);
                log::info!("{origin}: {} is not live at the origin", key_str(&key));
                self.refuse_waiting(&key, &password, 404, "channel not live at the origin");
                self.pull_for(&key, now);
            }
        }
    }

    /// Stops pulling `key`: its connection closes and, on air, its broadcast ends here.
    fn stop_pull(&mut self, key: &ChanKey, why: &str, now: Instant) {
        let Some(p) = self.cascade.pulls.remove(key) else {
            return;
        };
        let origin = self
            .cascade
            .origin
            .map(|a| a.to_string())
            .unwrap_or_default();
        log::info!("{origin}: stopped pulling {}: {why}", key_str(key));
        if let Some(slot) = p.conn {
            self.cascade.outbound.remove(&slot);
            self.close(slot, None);
        }
        if p.on_air {
            self.end_broadcast(key, now, why);
        }
    }

    /// A local broadcaster took over a pulled channel: the pull stops, its watchers continue
    /// with the new broadcast.
    pub(in crate::relay) fn pull_replaced(&mut self, id: SubId, _now: Instant) {
        let Some(key) = self.cascade.pull_by_id(id).map(|p| p.key.clone()) else {
            return;
        };
        if let Some(p) = self.cascade.pulls.remove(&key) {
            log::info!(
                "stopped pulling {}: a local broadcaster took it over",
                key_str(&key)
            );
            if let Some(slot) = p.conn {
                self.cascade.outbound.remove(&slot);
                self.close(slot, None);
            }
        }
    }

    /// Is `key` live from a broadcaster of this hub (not a pull)?
    fn local_broadcast(&self, key: &ChanKey) -> bool {
        self.channels.live_password(key).is_some() && !self.cascade.pulls.contains_key(key)
    }

    /// A local broadcast began on `key`: push it, unless a push of it is under way.
    pub(in crate::relay) fn push_start(&mut self, key: &ChanKey, now: Instant) {
        if self.cascade.push_to.is_none()
            || self.cascade.stopped
            || self.cascade.pushes.contains_key(key)
            || !self.local_broadcast(key)
        {
            return;
        }
        self.cascade
            .pushes
            .insert(key.clone(), Push::new(key.clone()));
        self.dial_push(key, now);
    }

    /// Pulls and pushes due for a dial, pulls to stop, connects past their deadline.
    pub(in crate::relay) fn cascade_timers(&mut self, now: Instant) {
        if self.cascade.origin.is_some() {
            self.rtsp_resume_waiting(now);
        }
        if self.cascade.outbound.is_empty()
            && self.cascade.pulls.is_empty()
            && self.cascade.pushes.is_empty()
        {
            return;
        }
        let late: Vec<usize> = self
            .cascade
            .outbound
            .keys()
            .copied()
            .filter(|&i| {
                matches!(self.conns.get(i), Some(Some(Conn { state: State::Dialing { deadline }, .. })) if now >= *deadline)
            })
            .collect();
        for i in late {
            self.dial_event(i, now);
        }
        if self.cascade.stopped {
            return;
        }
        let (idle, give_up) = (self.cascade.idle, self.cascade.give_up);
        let keys: Vec<ChanKey> = self.cascade.pulls.keys().cloned().collect();
        for key in keys {
            let audience = self.channels.audience(&key) + self.rtsp_waiting(&key);
            let Some(p) = self.cascade.pulls.get_mut(&key) else {
                continue;
            };
            match p.tick(now, audience, idle, give_up) {
                Tick::Nothing => {}
                Tick::Dial => self.dial_pull(&key, now),
                Tick::StopIdle if p.on_air => {
                    let why = format!("no watcher for {:?} (--origin-idle)", idle);
                    self.stop_pull(&key, &why, now);
                }
                Tick::StopIdle => self.stop_pull(&key, "no watcher waits", now),
                Tick::GiveUp => {
                    let why = format!("the origin has been gone for {give_up:?} (--wait-timeout)");
                    self.stop_pull(&key, &why, now);
                }
            }
        }
        let keys: Vec<ChanKey> = self.cascade.pushes.keys().cloned().collect();
        for key in keys {
            if !self.local_broadcast(&key) {
                if self
                    .cascade
                    .pushes
                    .get(&key)
                    .is_some_and(|p| p.conn.is_none())
                {
                    self.cascade.pushes.remove(&key);
                }
                continue;
            }
            if self
                .cascade
                .pushes
                .get_mut(&key)
                .is_some_and(|p| p.due(now))
            {
                self.dial_push(&key, now);
            }
        }
    }

    /// The RTSP connections whose request waits for the pull of `key`.
    fn rtsp_waiting(&self, key: &ChanKey) -> usize {
        self.conns
            .iter()
            .flatten()
            .filter(|c| match &c.state {
                State::Rtsp(r) => r.waiting.as_ref().is_some_and(|w| &w.0 == key),
                _ => false,
            })
            .count()
    }

    /// Asks again for every RTSP request that waits for an edge's pull.
    fn rtsp_resume_waiting(&mut self, now: Instant) {
        let waiting: Vec<usize> = (0..self.conns.len())
            .filter(|&i| {
                matches!(&self.conns[i], Some(c) if c.hook.is_none() && matches!(&c.state, State::Rtsp(r) if r.waiting.is_some()))
            })
            .collect();
        for i in waiting {
            if let Some(State::Rtsp(r)) = self.conns[i].as_mut().map(|c| &mut c.state) {
                r.session.unpark();
            }
            self.on_rtsp_data(i, &[], now);
        }
    }
}

/// What a watcher the origin refused is told.
const REFUSED: &str = "refused by the origin (wrong channel password?)";
