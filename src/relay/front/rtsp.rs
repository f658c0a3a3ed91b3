//! The RTSP front: [`Session`]s driven on the hub's loop, with the hub as their [`Host`]. RECORD
//! makes the connection a broadcaster (RTP in, FLV for the channel); PLAY makes it a watcher of
//! the channel's RTP view, over interleaved TCP or the shared UDP pair.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use mio::net::UdpSocket;
use mio::Interest;

use super::super::cascade::Cascade;
use super::super::channel::{key_str, ChanKey, Channels};
use super::super::hooks::{self, Call, Hook};
use super::super::hub::{Front, Hub, State, MAX_IOV, UDP_RTCP, UDP_RTP};
use super::super::rtsp::{self as rfront, Gate, Player, Publisher, Role, RtspConn};
use super::super::users::Users;
use super::hooks::{Then, Waiter, Who};
use crate::net::{self, Reactor};
use crate::proto::names;
use crate::proto::rtp::ingest::{FlvIngest, Ingest};
use crate::proto::rtp::view::unframe;
use crate::proto::rtsp::{
    Access, AuthVerdict, Credentials, Event, Host, Lower, RtpInfo, Session, SessionConfig,
    StreamSetup,
};
use crate::proto::sdp::Sdp;
use crate::relay::metrics::Refused;

/// Datagrams read from one UDP socket per event before other sockets get a turn.
const UDP_BUDGET: usize = 512;
/// How long an RTSP player's connection stays after the end of the broadcast (its RTCP BYE), for
/// its TEARDOWN; players that neither tear down nor close are closed then.
const LINGER: Duration = Duration::from_secs(10);

/// Where datagrams from one client address go.
#[derive(Clone, Copy)]
struct UdpRoute {
    conn: usize,
    id: u64,
    stream: usize,
}

/// RTSP's RTP and RTCP over UDP: two sockets shared by all sessions.
pub(in crate::relay) struct Udp {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    ports: (u16, u16),
    /// Client RTP/RTCP source address → session.
    routes: HashMap<SocketAddr, UdpRoute>,
    /// Players waiting for the sockets to take more.
    blocked: Vec<usize>,
    /// A socket that was not drained within its budget (RTP, RTCP).
    again: [bool; 2],
    unknown: u64,
}

impl Udp {
    /// Binds the pair on `ip` (see [`net::udp::bind_pair`]) and registers it.
    pub fn bind(reactor: &Reactor, ip: IpAddr, port: u16) -> io::Result<Udp> {
        let (mut rtp, mut rtcp) = net::udp::bind_pair(ip, port)
            .map_err(|e| io::Error::new(e.kind(), format!("RTSP UDP port {port} on {ip}: {e}")))?;
        let rw = Interest::READABLE | Interest::WRITABLE;
        reactor.registry().register(&mut rtp, UDP_RTP, rw)?;
        reactor.registry().register(&mut rtcp, UDP_RTCP, rw)?;
        let ports = (rtp.local_addr()?.port(), rtcp.local_addr()?.port());
        Ok(Udp {
            rtp,
            rtcp,
            ports,
            routes: HashMap::new(),
            blocked: Vec::new(),
            again: [false; 2],
            unknown: 0,
        })
    }

    pub fn addrs(&self) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.rtp.local_addr()?, self.rtcp.local_addr()?))
    }

    /// A socket has datagrams left over from its last turn.
    pub fn again(&self) -> bool {
        self.again != [false; 2]
    }
}

/// What an RTSP request decided that needs the whole hub (done after the session returns).
enum Action {
    Publish {
        key: ChanKey,
        ingest: Ingest,
        password: Option<String>,
    },
    Play {
        key: ChanKey,
        udp: bool,
    },
    /// Ask `hook` about `call`; the session has parked the request.
    Hook {
        hook: Hook,
        access: Access,
        path: String,
        call: Call,
    },
    /// The request waits (an edge): for the pull of `key`, started with `pull`'s password when
    /// it is `Some`; the session has parked it.
    Wait {
        key: ChanKey,
        pull: Option<Option<String>>,
    },
}

/// How long an RTSP request may wait for an edge's pull before the usual answer (404, 503).
const EDGE_WAIT: Duration = Duration::from_secs(10);

/// Whether a session's streams go over UDP.
fn over_udp(streams: &[StreamSetup]) -> bool {
    streams
        .iter()
        .any(|s| matches!(s.transport.lower, Lower::Udp { .. }))
}

/// The hub as an RTSP session sees it while it handles a request from `peer`.
struct HubHost<'a> {
    users: &'a Users,
    channels: &'a mut Channels,
    actions: &'a mut Vec<Action>,
    peer: SocketAddr,
    /// Refusals to count once the session returns (the hub is borrowed meanwhile).
    refusals: &'a mut Vec<Refused>,
    origin: String,
    udp_ports: Option<(u16, u16)>,
    now: Instant,
    wall: SystemTime,
    /// The connection's id, and which of the publish and play hooks are set.
    id: u64,
    hooked: [bool; 2],
    /// A hook's decision for the request handled again, and what hooks are told of the client.
    gate: &'a mut Option<Gate>,
    call: &'a mut Option<Call>,
    cascade: &'a Cascade,
    /// An edge, and this connection has not waited for [`EDGE_WAIT`] yet.
    may_wait: bool,
}

impl HubHost<'_> {
    /// Logs a refusal, one line with the peer, and counts it.
    fn refuse(&mut self, reason: Refused, why: &str) {
        self.refusals.push(reason);
        log::warn!("{}: refused: {why}", self.peer);
    }

    /// A 401 for `what` ("RTSP publisher of …"): a refusal for `why` when credentials were
    /// presented, else the usual first step of a login.
    fn deny(&mut self, creds: &Credentials, what: &str, why: &str) -> AuthVerdict {
        if matches!(creds, Credentials::None) {
            log::info!("{}: {what}: 401, no credentials yet", self.peer);
        } else {
            self.refuse(Refused::Auth, &format!("{what}: {why}"));
        }
        AuthVerdict::Deny
    }

    /// The hub has let `call` in for `access` to `path`: so does the hook, if one is set (the
    /// request is parked until it decides, then handled again, and the decision is here). `keep`:
    /// the request will be handled again for another reason (an edge's pull), and an allowing
    /// decision stays for then.
    #[allow(clippy::too_many_arguments)]
    fn gate(
        &mut self,
        access: Access,
        path: &str,
        key: &ChanKey,
        uri: &str,
        user_password: Option<String>,
        channel_password: Option<String>,
        keep: bool,
    ) -> AuthVerdict {
        let call = Call {
            id: self.id,
            protocol: "rtsp",
            user: key.0.clone(),
            channel: key.1.clone(),
            remote_addr: self.peer,
            query: uri
                .split_once('?')
                .and_then(|(_, q)| hooks::query(q.split('#').next().unwrap_or(""))),
            user_password,
            channel_password,
        };
        let hook = match access {
            Access::Publish => Hook::Publish,
            Access::Play => Hook::Play,
        };
        if !self.hooked[usize::from(access == Access::Play)] {
            *self.call = Some(call);
            return AuthVerdict::Allow;
        }
        match self.gate.take() {
            Some(g)
                if g.access == access
                    && g.path == path
                    && g.channel_password == call.channel_password =>
            {
                if !g.allowed {
                    return AuthVerdict::Forbidden;
                }
                if keep {
                    *self.gate = Some(g);
                }
                *self.call = Some(call);
                AuthVerdict::Allow
            }
            _ => {
                self.actions.push(Action::Hook {
                    hook,
                    access,
                    path: path.to_string(),
                    call,
                });
                AuthVerdict::Pending
            }
        }
    }

    /// An edge's answer for a player of `key` while the channel comes from the origin: wait
    /// (pulling it with the player's Basic password, once the play hook allows), or a refusal
    /// the origin or the hook made; None when the channel is ready to describe.
    fn edge_verdict(
        &mut self,
        key: &ChanKey,
        path: &str,
        uri: &str,
        creds: &Credentials,
    ) -> Option<AuthVerdict> {
        let password = match creds {
            Credentials::Basic { password, .. } if !password.is_empty() => Some(password.clone()),
            _ => None,
        };
        if self.channels.live_password(key).is_some() {
            if !self.cascade.pulls.contains_key(key) {
                return None;
            }
            // The origin's first bytes carry the headers the SDP needs.
            let ready = match self.channels.rtp_view(key, false, self.now, self.wall) {
                Err(503) => false,
                Ok(rv) => rv.view.failed.is_some() || rv.view.sdp(&self.origin, "").is_some(),
                Err(_) => true,
            };
            if ready {
                return None;
            }
            self.actions.push(Action::Wait {
                key: key.clone(),
                pull: None,
            });
            return Some(AuthVerdict::Pending);
        }
        if self.cascade.was_refused(key, &password, self.now) {
            let what = format!("RTSP player of {}", key_str(key));
            return Some(match creds {
                // Digest never carries the password the origin needs.
                Credentials::Basic { .. } => self.deny(creds, &what, "refused by the origin"),
                _ => {
                    log::info!(
                        "{}: {what}: 401, Basic credentials for the origin",
                        self.peer
                    );
                    AuthVerdict::DenyBasic
                }
            });
        }
        // The hook first, as on every front: a player it refuses starts no pull. It is told the
        // password the pull would carry.
        let v = self.gate(Access::Play, path, key, uri, None, password.clone(), true);
        if !matches!(v, AuthVerdict::Allow) {
            return Some(v);
        }
        self.actions.push(Action::Wait {
            key: key.clone(),
            pull: Some(password),
        });
        Some(AuthVerdict::Pending)
    }

    /// The channel `path` names, or 400 (logged).
    fn key(&mut self, what: &str, path: &str) -> Result<ChanKey, u16> {
        rfront::parse_key(path).map_err(|why| {
            self.refuse(Refused::Auth, &format!("RTSP {what}: {why}"));
            400u16
        })
    }
}

impl Host for HubHost<'_> {
    fn authorize(
        &mut self,
        access: Access,
        path: &str,
        uri: &str,
        creds: &Credentials,
    ) -> AuthVerdict {
        let shown = || names::shown(path.as_bytes());
        match access {
            // The user and its password first; only then does the rest of the path count.
            Access::Publish => {
                let what = format!("RTSP publisher of {}", shown());
                let user = match rfront::path_user(path) {
                    Ok(u) => u,
                    Err(e) => return self.deny(creds, &what, &e.message("user")),
                };
                // The password the client proved it knows (in clear with Basic, by digest with
                // Digest): what the publish hook is told.
                let user_password = match self.users.password(&user) {
                    Ok(Some(pw)) if creds.user() == Some(user.as_str()) && creds.check(&pw) => pw,
                    Ok(_) => {
                        let why = format!("wrong user password or unknown user {user:?}");
                        return self.deny(creds, &what, &why);
                    }
                    Err(e) => {
                        log::error!("users: {e}");
                        self.refuse(
                            Refused::Auth,
                            &format!("RTSP publisher of {}: cannot check user {user:?}", shown()),
                        );
                        return AuthVerdict::Forbidden;
                    }
                };
                let cpw = rfront::query_password(uri).and_then(Result::ok);
                match self.key("publisher", path) {
                    Ok(key) => self.gate(access, path, &key, uri, Some(user_password), cpw, false),
                    Err(_) => AuthVerdict::BadRequest,
                }
            }
            Access::Play => {
                let Ok(key) = self.key("player", path) else {
                    return AuthVerdict::BadRequest;
                };
                if self.may_wait {
                    if let Some(v) = self.edge_verdict(&key, path, uri, creds) {
                        return v;
                    }
                }
                match self.channels.live_password(&key) {
                    Some(None) => self.gate(access, path, &key, uri, None, None, false),
                    Some(Some(pw)) if creds.check(pw) => {
                        let pw = Some(pw.to_string());
                        self.gate(access, path, &key, uri, None, pw, false)
                    }
                    Some(Some(_)) => {
                        let what = format!("RTSP player of {}", key_str(&key));
                        self.deny(creds, &what, "wrong channel password")
                    }
                    None => {
                        log::info!(
                            "{}: RTSP player of {}: not live (404)",
                            self.peer,
                            key_str(&key)
                        );
                        AuthVerdict::NotFound
                    }
                }
            }
        }
    }

    fn describe(&mut self, path: &str) -> Result<String, u16> {
        let key = self.key("player", path)?;
        let rv = self.channels.rtp_view(&key, false, self.now, self.wall)?;
        if let Some(why) = &rv.view.failed {
            log::warn!(
                "channel {}: cannot serve it over RTSP: {why}",
                key_str(&key)
            );
            return Err(415);
        }
        // Not ready: no keyframe cached yet (--no-gop-cache); the client may retry.
        rv.view.sdp(&self.origin, &key_str(&key)).ok_or(503u16)
    }

    fn record(
        &mut self,
        uri: &str,
        path: &str,
        sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<(), u16> {
        let key = self.key("publisher", path)?;
        let password = match rfront::query_password(uri) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                let why = format!("RTSP publisher of {}: channel-password: {e}", key_str(&key));
                self.refuse(Refused::Auth, &why);
                return Err(400);
            }
        };
        let ingest = Ingest::new(sdp, streams).map_err(|e| {
            log::warn!("{}: RTSP publish to {}: {e}", self.peer, key_str(&key));
            415u16
        })?;
        self.actions.push(Action::Publish {
            key,
            ingest,
            password,
        });
        Ok(())
    }

    fn play(
        &mut self,
        path: &str,
        _sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<Vec<RtpInfo>, u16> {
        let key = self.key("player", path)?;
        let udp = over_udp(streams);
        let rv = self.channels.rtp_view(&key, udp, self.now, self.wall)?;
        let join = rv.cache.join();
        let info = rv.view.rtp_info(join.chunks.iter().map(|c| &c.data[..]));
        self.actions.push(Action::Play { key, udp });
        Ok(streams
            .iter()
            .map(|s| {
                // rtptime: the RTP time of npt=0, the cached GOP's start, on every track
                // (RFC 2326 §12.33), so players put the first packet they get at 0.
                let (seq, rtptime) = info.get(s.index).copied().unwrap_or_default();
                RtpInfo { seq, rtptime }
            })
            .collect())
    }

    fn udp_ports(&self) -> Option<(u16, u16)> {
        self.udp_ports
    }
}

impl Hub {
    /// A new RTSP connection's session.
    pub(in crate::relay) fn rtsp_conn(&self, now: Instant) -> Box<RtspConn> {
        let d = SessionConfig::default();
        let cfg = SessionConfig {
            shared_streams: true,
            session_timeout: self.cfg.rtsp_timeout,
            idle_timeout: d.idle_timeout.min(self.cfg.rtsp_timeout),
            ..d
        };
        Box::new(RtspConn {
            session: Session::new(cfg, now, crate::proto::util::random_u64())
                .with_authenticator(self.rtsp_auth.clone()),
            role: Role::Idle,
            linger_until: None,
            gate: None,
            call: None,
            waiting: None,
        })
    }

    /// Feeds `data` to connection `idx`'s session (none: a parked request is handled again),
    /// then acts on what it decided.
    pub(in crate::relay) fn on_rtsp_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let peer = c.peer;
        let State::Rtsp(mut r) = std::mem::replace(&mut c.state, State::Closing) else {
            return;
        };
        let wall = SystemTime::now();
        let (mut out, mut events, mut actions) = (Vec::new(), Vec::new(), Vec::new());
        let mut refusals = Vec::new();
        let hooked = [Hook::Publish, Hook::Play].map(|h| self.hooks.cfg.target(h).is_some());
        let id = c.id;
        {
            let mut host = HubHost {
                users: &self.users,
                channels: &mut self.channels,
                actions: &mut actions,
                peer,
                refusals: &mut refusals,
                origin: self
                    .rtsp_addr
                    .map(|a| a.ip().to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                udp_ports: self.udp.as_ref().map(|u| u.ports),
                now,
                wall,
                id,
                hooked,
                gate: &mut r.gate,
                call: &mut r.call,
                cascade: &self.cascade,
                may_wait: self.cascade.origin.is_some()
                    && r.waiting
                        .as_ref()
                        .is_none_or(|w| now.saturating_duration_since(w.1) < EDGE_WAIT),
            };
            r.session.push(data, now, &mut host, &mut out, &mut events);
        }
        // It waits for the pull while its request stays parked for that (not for a hook).
        if !r.session.is_parked() || actions.iter().any(|a| matches!(a, Action::Hook { .. })) {
            r.waiting = None;
        }
        for reason in refusals {
            self.count_refused(Front::Rtsp, reason);
        }
        let mut ask = None;
        for a in actions {
            match a {
                Action::Hook {
                    hook,
                    access,
                    path,
                    call,
                } => {
                    let then = Then::Rtsp { access, path };
                    ask = Some((
                        hook,
                        Waiter {
                            who: Who::Conn { idx, id },
                            then,
                            call,
                        },
                    ));
                }
                Action::Publish {
                    key,
                    ingest,
                    password,
                } => {
                    self.udp_route(idx, peer, r.session.streams());
                    // Sets the connection's state to Publisher; the RTSP state is put back below.
                    self.start_broadcast(idx, key.clone(), password, now);
                    if let Some(call) = r.call.clone() {
                        self.hook_published(&key, call, now);
                    }
                    r.role = Role::Publisher(Box::new(Publisher {
                        key,
                        ingest: FlvIngest::new(ingest),
                    }));
                }
                Action::Play { key, udp } => {
                    let Some(srs) = self.channels.play_rtp(idx, &key, udp, now, wall) else {
                        continue;
                    };
                    let mut udp_dest = Vec::new();
                    for s in r.session.streams() {
                        if let Lower::Udp { client_port, .. } = s.transport.lower {
                            if udp_dest.len() <= s.index {
                                udp_dest.resize(s.index + 1, None);
                            }
                            udp_dest[s.index] = Some((
                                SocketAddr::new(peer.ip(), client_port.0),
                                SocketAddr::new(peer.ip(), client_port.1),
                            ));
                        }
                    }
                    if udp_dest.is_empty() {
                        for sr in srs {
                            out.extend_from_slice(&sr);
                        }
                    } else if let Some(u) = &self.udp {
                        for sr in srs {
                            if let Some((ch, data)) = unframe(&sr) {
                                if let Some(Some((_, to))) = udp_dest.get(usize::from(ch / 2)) {
                                    let _ = net::udp::send(&u.rtcp, data, *to);
                                }
                            }
                        }
                    }
                    log::info!(
                        "{peer}: playing {} over RTSP/{}",
                        key_str(&key),
                        if udp { "UDP" } else { "TCP" }
                    );
                    self.udp_route(idx, peer, r.session.streams());
                    r.role = Role::Player(Box::new(Player { key, udp_dest }));
                    self.fx.flush.push(idx);
                    if let Some(call) = r.call.clone() {
                        self.hook_playing(idx, call, now);
                    }
                }
                Action::Wait { key, pull } => {
                    if r.waiting.is_none() {
                        log::info!(
                            "{peer}: RTSP player of {} waits for the origin",
                            key_str(&key)
                        );
                        r.waiting = Some((key.clone(), now));
                    }
                    if let Some(password) = pull {
                        self.pull_with(&key, password, now);
                    }
                }
            }
        }
        let mut flv = Vec::new();
        let mut diags = Vec::new();
        let mut detach = Vec::new();
        let mut close_reason = None;
        let mut close_after = false;
        for e in events {
            match e {
                Event::Data { stream, rtcp, data } => {
                    if let Role::Publisher(p) = &mut r.role {
                        let at = r.session.position();
                        if let Err(e) = p.ingest.push(stream, rtcp, &data, at, &mut flv, &mut diags)
                        {
                            log::warn!("{peer}: RTSP publish: {e}");
                        }
                    }
                }
                Event::Teardown if r.linger_until.is_some() => {
                    close_after = true;
                }
                Event::Pause | Event::Teardown => {
                    detach.push(std::mem::replace(&mut r.role, Role::Idle));
                }
                Event::Close { reason } => close_reason = Some(reason),
            }
        }
        for d in diags {
            log::warn!("{peer}: RTSP publish: {d}");
        }
        let key = match &r.role {
            Role::Publisher(p) => Some(p.key.clone()),
            _ => None,
        };
        if let Some(c) = self.conns[idx].as_mut() {
            c.state = State::Rtsp(r);
            if !out.is_empty() {
                c.io.out.push_always(out.into());
            }
        }
        if let (Some(k), false) = (key, flv.is_empty()) {
            self.broadcast_data(&k, &flv, now);
        }
        for role in detach {
            self.rtsp_detach(idx, role, "RTSP TEARDOWN");
        }
        if close_reason.is_none() && close_after {
            close_reason = Some(String::new());
        }
        match close_reason {
            Some(reason) => {
                if !reason.is_empty() {
                    log::warn!("{peer}: RTSP: {reason}");
                }
                // What is queued (the last response) goes out, then the connection closes.
                self.respond_and_close(idx, Vec::new());
            }
            None => self.flush(idx, now),
        }
        // The session parked a request: the hook decides, then it is handled again.
        if let Some((hook, w)) = ask {
            self.ask_hook(hook, w, now);
        }
    }

    /// A hook decided about the parked request asking for `access` to `path`: the session
    /// handles it again, and is let in or answered 403.
    pub(in crate::relay) fn rtsp_decided(
        &mut self,
        idx: usize,
        access: Access,
        path: String,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let peer = c.peer;
        let State::Rtsp(r) = &mut c.state else {
            return;
        };
        if let Err(why) = &v {
            let what = match access {
                Access::Publish => "publisher",
                Access::Play => "player",
            };
            log::warn!(
                "{peer}: refused: RTSP {what} of {}/{}: {why}",
                call.user,
                call.channel
            );
        }
        r.gate = Some(Gate {
            access,
            path,
            channel_password: call.channel_password.clone(),
            allowed: v.is_ok(),
        });
        r.session.unpark();
        if v.is_err() {
            self.count_refused(Front::Rtsp, Refused::Auth);
        }
        self.on_rtsp_data(idx, &[], now);
    }

    /// Routes datagrams from the client's UDP ports of `streams` to connection `idx`.
    fn udp_route(&mut self, idx: usize, peer: SocketAddr, streams: &[StreamSetup]) {
        let Some(u) = self.udp.as_mut() else { return };
        let Some(id) = self.conns.get(idx).and_then(|c| c.as_ref()).map(|c| c.id) else {
            return;
        };
        for (stream, s) in streams.iter().enumerate() {
            if let Lower::Udp { client_port, .. } = s.transport.lower {
                for port in [client_port.0, client_port.1] {
                    let route = UdpRoute {
                        conn: idx,
                        id,
                        stream,
                    };
                    u.routes.insert(SocketAddr::new(peer.ip(), port), route);
                }
            }
        }
    }

    /// An event on the RTP or RTCP socket.
    pub(in crate::relay) fn on_udp_event(
        &mut self,
        rtcp: bool,
        writable: bool,
        readable: bool,
        now: Instant,
    ) {
        if writable {
            // The UDP sockets take data again: resume the players that had to wait.
            let blocked = self
                .udp
                .as_mut()
                .map(|u| std::mem::take(&mut u.blocked))
                .unwrap_or_default();
            for idx in blocked {
                self.flush(idx, now);
            }
        }
        if readable {
            self.on_udp(rtcp, now);
        }
    }

    /// Reads what the last turn's budget left on the UDP sockets.
    pub(in crate::relay) fn udp_again(&mut self, now: Instant) {
        if let Some([a, b]) = self.udp.as_ref().map(|u| u.again) {
            if a {
                self.on_udp(false, now);
            }
            if b {
                self.on_udp(true, now);
            }
        }
    }

    /// Reads datagrams from the RTP or RTCP socket: a UDP publisher's media goes into its
    /// broadcast; anything from a known client keeps its session alive.
    fn on_udp(&mut self, rtcp: bool, now: Instant) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(64 * 1024, 0);
        for n in 0..UDP_BUDGET {
            let Some(u) = self.udp.as_mut() else { break };
            u.again[usize::from(rtcp)] = n + 1 == UDP_BUDGET;
            let sock = if rtcp { &u.rtcp } else { &u.rtp };
            let (len, from) = match net::udp::recv(sock, &mut buf) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    log::debug!("RTSP UDP receive: {e}");
                    continue;
                }
            };
            let Some(route) = u.routes.get(&from).copied() else {
                u.unknown += 1;
                if u.unknown.is_power_of_two() {
                    log::debug!(
                        "{from}: {} datagrams from addresses no RTSP session set up",
                        u.unknown
                    );
                }
                continue;
            };
            self.on_udp_datagram(route, rtcp, &buf[..len], now);
        }
        buf.clear();
        self.buf = buf;
    }

    fn on_udp_datagram(&mut self, route: UdpRoute, rtcp: bool, data: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(route.conn).and_then(|c| c.as_mut()) else {
            return;
        };
        let peer = c.peer;
        if c.id != route.id {
            return;
        }
        let State::Rtsp(r) = &mut c.state else {
            return;
        };
        r.session.touch(now);
        let Role::Publisher(p) = &mut r.role else {
            // A player's receiver reports (or NAT punch packets): only signs of life.
            return;
        };
        let (mut flv, mut diags) = (Vec::new(), Vec::new());
        let at = r.session.position();
        if let Err(e) =
            p.ingest
                .push_datagram(route.stream, rtcp, data, at, now, &mut flv, &mut diags)
        {
            log::warn!("{peer}: RTSP publish over UDP: {e}");
        }
        for d in diags {
            log::warn!("{peer}: RTSP publish over UDP: {d}");
        }
        if !flv.is_empty() {
            let key = p.key.clone();
            self.broadcast_data(&key, &flv, now);
        }
    }

    /// An RTSP connection stops publishing or playing.
    pub(in crate::relay) fn rtsp_detach(&mut self, idx: usize, role: Role, why: &str) {
        if let Some(u) = self.udp.as_mut() {
            u.routes.retain(|_, r| r.conn != idx);
            u.blocked.retain(|&b| b != idx);
        }
        match role {
            Role::Publisher(mut p) => {
                if self.channels.is_publisher(&p.key, idx) {
                    // UDP: what waited in the reorder buffers is the end of the broadcast.
                    let (mut flv, mut diags) = (Vec::new(), Vec::new());
                    if let Err(e) = p.ingest.flush_datagrams(&mut flv, &mut diags) {
                        log::warn!("RTSP publish to {}: {e}", key_str(&p.key));
                    }
                    let now = Instant::now();
                    if !flv.is_empty() {
                        self.broadcast_data(&p.key, &flv, now);
                    }
                    log::info!("broadcast of {} ended ({why})", key_str(&p.key));
                    self.end_broadcast(&p.key, now, why);
                }
            }
            Role::Player(_) => {
                self.channels.leave(idx);
            }
            Role::Idle => {}
        }
    }

    /// Writes an RTSP connection's responses and, for a player, its queue: RTP in interleaved
    /// frames over TCP (responses only between frames), or one datagram a frame over UDP.
    pub(in crate::relay) fn flush_rtsp(&mut self, idx: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                return;
            };
            let mut sub = self.channels.sub_mut(idx);
            let at_boundary = sub
                .as_ref()
                .and_then(|s| s.queue.as_ref())
                .is_none_or(|q| q.at_chunk_start());
            if !c.io.out.is_empty() && at_boundary {
                match c.io.flush() {
                    Ok(w) if w.drained => continue,
                    Ok(_) => return,
                    Err(e) => {
                        self.close(idx, Some(&format!("write error: {e}")));
                        return;
                    }
                }
            }
            let out_pending = !c.io.out.is_empty();
            let State::Rtsp(r) = &mut c.state else {
                return;
            };
            let Role::Player(p) = &mut r.role else {
                return;
            };
            let Some(s) = sub.as_mut() else { return };
            let Some(q) = s.queue.as_mut() else { return };
            if q.is_empty() {
                if s.eof_after_drain {
                    // The RTCP BYE is out: ffmpeg and GStreamer end their reading on it and send
                    // TEARDOWN (GStreamer insists on an answer) or close; the connection stays
                    // for that, at most LINGER.
                    r.role = Role::Idle;
                    r.linger_until = Some(now + LINGER);
                    self.channels.leave(idx);
                    continue;
                }
                return;
            }
            if !p.udp_dest.is_empty() {
                // UDP: one datagram per interleaved frame, from the RTP or RTCP socket.
                let Some(u) = self.udp.as_mut() else { return };
                let Some(f) = q.front() else { return };
                let len = f.len();
                if let Some((ch, data)) = unframe(f) {
                    let dest = p.udp_dest.get(usize::from(ch / 2)).copied().flatten();
                    if let Some((rtp_to, rtcp_to)) = dest {
                        let (sock, to) = if ch % 2 == 0 {
                            (&u.rtp, rtp_to)
                        } else {
                            (&u.rtcp, rtcp_to)
                        };
                        match net::udp::send(sock, data, to) {
                            Ok(true) => {}
                            Ok(false) => {
                                if !u.blocked.contains(&idx) {
                                    u.blocked.push(idx);
                                }
                                return;
                            }
                            // Lost like any datagram; the next ones may go.
                            Err(e) => log::debug!("{}: RTSP UDP send to {to}: {e}", c.peer),
                        }
                    }
                }
                q.consume(len, now);
                continue;
            }
            let wrote = if out_pending {
                // Finish the frame in progress, then the response goes out.
                c.io.write_iov(&[IoSlice::new(q.front().unwrap_or(&[]))])
            } else {
                let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV);
                q.fill_iovecs(&mut iov, MAX_IOV);
                c.io.write_iov(&iov)
            };
            match wrote {
                Ok(Some(n)) => q.consume(n, now),
                Ok(None) => return,
                Err(e) => {
                    self.close(idx, Some(&format!("write error: {e}")));
                    return;
                }
            }
        }
    }
}
