//! The fstream front: the handshake that makes a connection a broadcaster or a watcher, and a
//! broadcaster's byte stream (RTMP and RTSP broadcasters are connections of this kind too, fed
//! by their own fronts).

use crate::relay::metrics::Refused;
use std::time::Instant;

use super::super::channel::{key_str, ChanKey, SubKind};
use super::super::hub::{Hub, State};
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
                self.start_broadcast(idx, key.clone(), req.channel_password, now);
                if !rest.is_empty() {
                    self.broadcast_data(&key, rest, now);
                }
            }
            Role::Watch => {
                self.start_watcher(idx, key, req.channel_password, SubKind::Fstream, now);
                if let Some(Some(c)) = self.conns.get_mut(idx) {
                    if let State::Watcher(w) = &mut c.state {
                        w.input += rest.len() as u64;
                    }
                }
            }
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
