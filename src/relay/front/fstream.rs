//! The fstream front: the handshake that makes a connection a broadcaster or a watcher, and a
//! broadcaster's byte stream, which HTTP pushes share (with a chunked or sized body).

use std::time::Instant;

use super::super::channel::{key_str, ChanKey, SubKind};
use super::super::http::{self, ChunkedDecoder};
use super::super::hub::{c_peer, Hub, State};
use crate::proto::fstream::{self, Handshake, Role};

/// A broadcaster's body.
pub(in crate::relay) enum Body {
    /// fstream: everything after the handshake, until EOF.
    Raw,
    Chunked(ChunkedDecoder),
    Length(u64),
}

/// A broadcasting connection.
pub(in crate::relay) struct Publisher {
    pub key: ChanKey,
    pub body: Body,
    pub http: bool,
}

impl Publisher {
    pub fn raw(key: ChanKey) -> Self {
        Publisher {
            key,
            body: Body::Raw,
            http: false,
        }
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
            Err(e) => self.refuse(idx, &format!("bad fstream handshake: {e}"), None),
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
                        &format!("broadcaster for {}: {why}", key_str(&key)),
                        None,
                    );
                    return;
                }
                let p = Publisher::raw(key.clone());
                self.start_broadcast(idx, key.clone(), req.channel_password, p, now);
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

    /// Bytes from a broadcaster: its body (raw, sized or chunked) goes to its channel.
    pub(in crate::relay) fn on_publisher_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(Some(c)) = self.conns.get_mut(idx) else {
            return;
        };
        let State::Publisher(p) = &mut c.state else {
            return;
        };
        let key = p.key.clone();
        let mut body = Vec::new();
        let mut done = false;
        let payload: &[u8] = match &mut p.body {
            Body::Raw => data,
            Body::Length(left) => {
                let take = (*left).min(data.len() as u64) as usize;
                *left -= take as u64;
                done = *left == 0;
                &data[..take]
            }
            Body::Chunked(d) => match d.push(data, &mut body) {
                Ok(_) => {
                    done = d.is_done();
                    &body
                }
                Err(e) => {
                    log::warn!("{}: HTTP push to {}: {e}", c.peer, key_str(&key));
                    self.end_broadcast(&key, now, "bad chunked body");
                    self.respond_and_close(idx, http::error_response(400, &e));
                    return;
                }
            },
        };
        if !payload.is_empty() {
            let payload = payload.to_vec();
            self.broadcast_data(&key, &payload, now);
        }
        if done {
            log::info!(
                "{}: HTTP push to {} complete",
                c_peer(&self.conns[idx]),
                key_str(&key)
            );
            self.end_broadcast(&key, now, "end of broadcast");
            self.respond_and_close(idx, http::response_head(200, &[], Some(0)));
        }
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
        if p.http && !matches!(p.body, Body::Raw) {
            log::warn!(
                "{}: HTTP push to {} ended before its body did",
                c.peer,
                key_str(&key)
            );
        }
        log::info!("{}: broadcast of {} ended", c.peer, key_str(&key));
        self.end_broadcast(&key, now, "end of broadcast");
        self.close(idx, None);
    }
}
