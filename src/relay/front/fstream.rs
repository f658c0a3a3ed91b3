//! The fstream front: the handshake that makes a connection a broadcaster or a watcher, and a
//! broadcaster's byte stream (RTMP and RTSP broadcasters are connections of this kind too, fed
//! by their own fronts).

use crate::relay::metrics::Refused;
use std::time::Instant;

use super::super::channel::{key_str, ChanKey, SubKind};
use super::super::hooks::{Call, Hook};
use super::super::hub::{Hub, State};
use super::hooks::{Then, Waiter, Who};
use crate::proto::fstream::{self, Handshake, Role};

/// A broadcasting connection: everything after its handshake, until EOF, is the broadcast.
pub(in crate::relay) struct Publisher {
    pub key: ChanKey,
}

impl Publisher {
    pub fn raw(key: ChanKey) -> Self {
        Publisher { key }
    }
}

/// A new fstream connection: the handshake has its deadline.
pub(in crate::relay) fn new_conn(now: Instant) -> State {
    State::Handshake {
        hs: Handshake::new(),
        deadline: now + fstream::HANDSHAKE_TIMEOUT,
    }
}

impl Hub {
    pub(in crate::relay) fn on_fstream_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let State::Handshake { hs, .. } = &mut c.state else {
            return;
        };
        match hs.push(data) {
            Ok(None) => {}
            Ok(Some((req, used))) => self.on_handshake(idx, req, &data[used..], now),
            Err(e) => self.refuse(idx, Refused::Protocol, &e.to_string(), None),
        }
    }

    fn on_handshake(&mut self, idx: usize, req: fstream::Request, rest: &[u8], now: Instant) {
        let key = (req.user.clone(), req.channel.clone());
        let Some((id, peer)) = self.conns[idx].as_ref().map(|c| (c.id, c.peer)) else {
            return;
        };
        let call = Call {
            id,
            protocol: "fstream",
            user: req.user.clone(),
            channel: req.channel.clone(),
            remote_addr: peer,
            query: None,
            user_password: req.user_password.clone(),
            channel_password: req.channel_password.clone(),
        };
        let who = Who::Conn { idx, id };
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Hooked;
        }
        match req.role {
            Role::Broadcast => {
                let pw = req.user_password.clone().unwrap_or_default();
                if let Err(why) = self.check_user(&req.user, &pw) {
                    self.refuse(
                        idx,
                        Refused::Auth,
                        &format!("broadcaster for {}: {why}", key_str(&key)),
                        None,
                    );
                    return;
                }
                let then = Then::FstreamBroadcast {
                    key,
                    password: req.channel_password,
                    rest: rest.to_vec(),
                };
                self.ask_hook(Hook::Publish, Waiter { who, then, call }, now);
            }
            Role::Watch => {
                let then = Then::FstreamWatch {
                    key,
                    password: req.channel_password,
                    rest: rest.len() as u64,
                };
                self.ask_hook(Hook::Play, Waiter { who, then, call }, now);
            }
        }
    }

    /// The publish hook (if set) decided about broadcaster `idx`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::relay) fn fstream_broadcast_decided(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        rest: Vec<u8>,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        if let Err(why) = v {
            let why = format!("broadcaster for {}: {why}", key_str(&key));
            self.refuse(idx, Refused::Auth, &why, None);
            return;
        }
        self.start_broadcast(idx, key.clone(), password, now);
        self.hook_published(&key, call, now);
        if !rest.is_empty() {
            self.broadcast_data(&key, &rest, now);
        }
    }

    /// The play hook (if set) decided about watcher `idx`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::relay) fn fstream_watch_decided(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        rest: u64,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        if let Err(why) = v {
            let why = format!("watcher of {}: {why}", key_str(&key));
            self.refuse(idx, Refused::Auth, &why, None);
            return;
        }
        self.start_watcher(idx, key, password, SubKind::Fstream, now);
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        if let State::Watcher(w) = &mut c.state {
            w.input += rest;
            self.hook_playing(idx, call, now);
        }
    }

    /// Bytes from a broadcaster: they go to its channel.
    pub(in crate::relay) fn on_publisher_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(Some(c)) = self.conns.get(idx) else {
            return;
        };
        let State::Publisher(p) = &c.state else {
            return;
        };
        let key = p.key.clone();
        self.broadcast_data(&key, data, now);
    }

    /// A broadcaster closed: the end of its broadcast.
    pub(in crate::relay) fn publisher_eof(&mut self, idx: usize, now: Instant) {
        let Some(Some(c)) = self.conns.get(idx) else {
            return;
        };
        let State::Publisher(p) = &c.state else {
            return;
        };
        let key = p.key.clone();
        log::info!("{}: broadcast of {} ended", c.peer, key_str(&key));
        self.end_broadcast(&key, now, "end of broadcast");
        self.close(idx, None);
    }
}
