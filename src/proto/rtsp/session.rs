//! One RTSP connection, server side: requests in, responses and events out.
//!
//! The session owns the parser, the request/response rules (CSeq echo, `Session` ids and
//! timeouts, method/state checks, transport negotiation, authentication challenges), and asks its
//! [`Host`] for everything that depends on the server's state: whether credentials are good, the
//! SDP of a broadcast, and whether recording or playing may start. Media travelling on the
//! connection (interleaved `$` frames) comes out as [`Event::Data`]; the host writes outgoing media
//! itself with [`super::message::write_interleaved`].
//!
//! Policies:
//! - A parse error is answered (400/413/431/505, echoing the CSeq when it was readable) and ends
//!   the connection ([`Event::Close`]): a byte stream cannot be resynchronised after one. A 400
//!   the [`Host`] decides (about what a request names) does not: the stream is in step.
//! - Authorization is asked once per connection for a path and an access kind, on the first
//!   request that needs it (DESCRIBE / ANNOUNCE, or SETUP without either). A Digest answer to a
//!   nonce this server did not issue, or issued more than [`super::auth::NONCE_TTL`] ago, counts
//!   as no credentials (401 with `stale=TRUE`); so does an `Authorization` header that does not
//!   parse.
//! - Authentication comes before anything else of an ANNOUNCE: one without good credentials gets
//!   401 whatever its URI, `Content-Type` or body, so an unauthenticated client learns nothing
//!   about how the rest would parse.
//! - One connection is either a publisher or a player. Streams can be set up only before
//!   RECORD/PLAY (455 after). Interleaved frames on channels no stream was set up for, or before
//!   RECORD/PLAY, are counted and skipped.
//! - All streams of a session use the same lower transport (TCP interleaved or UDP); a SETUP that
//!   would mix them gets 461.
//! - A host that cannot decide an authorization yet ([`AuthVerdict::Pending`]: a hook asked, an
//!   edge hub fetching the broadcast from its origin) parks the request: it stays unanswered, and
//!   everything the client sends after it waits behind it (at most [`MAX_PARKED`] messages, then
//!   503 and the close), until the host calls [`Session::unpark`] and the request is handled again
//!   from the start.
//! - Timeouts: [`SessionConfig::idle_timeout`] until a session exists, then
//!   [`SessionConfig::session_timeout`] since the last complete request or interleaved frame from
//!   the client (bytes of an unfinished one do not count: a client sending a byte a second is not
//!   alive). The host reports media that arrives elsewhere (UDP) with [`Session::touch`]. A
//!   request or frame must be complete within [`SessionConfig::request_timeout`] of its first
//!   byte ([`Session::request_late`]).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::{self, Authenticator, Credentials};
use super::message::{uri_path, Message, Method, Reader, Request, Response};
use super::transport::{self, Lower, Transport};
use crate::proto::sdp::Sdp;
use crate::proto::util::splitmix64;

/// Most messages (requests and frames) kept behind a parked request; one more closes the
/// connection.
pub const MAX_PARKED: usize = 64;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Advertised in `Session: id;timeout=N` and enforced.
    pub session_timeout: Duration,
    /// Before SETUP created a session.
    pub idle_timeout: Duration,
    /// A request or interleaved frame must be complete within this time of its first byte (or of
    /// the end of the message before it).
    pub request_timeout: Duration,
    /// Realm of the authentication challenges.
    pub realm: String,
    /// Players share one RTP stream per track (one packetization for all, see
    /// [`crate::proto::rtp::view`]): TCP interleaved channels are fixed at `2i-(2i+1)` for media
    /// section i whatever the client proposed, and no `ssrc` is announced in the SETUP answer.
    pub shared_streams: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            session_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
            realm: "river".to_string(),
            shared_streams: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// ANNOUNCE / RECORD.
    Publish,
    /// DESCRIBE / PLAY.
    Play,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    Allow,
    /// 401 with a fresh challenge.
    Deny,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 400: the path names nothing the server could serve (e.g. a name that breaks its rules).
    BadRequest,
    /// 401 with a Basic challenge only: the host needs the password itself (an edge hub passes
    /// it on to its origin; a Digest answer never carries it).
    DenyBasic,
    /// Not decided yet (the host asked someone else): the session parks the request, unanswered,
    /// with everything after it, until [`Session::unpark`]; then the request is handled again from
    /// the start, and the host is asked again.
    Pending,
}

/// One stream set up with SETUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSetup {
    /// Index of the media section in the session's SDP.
    pub index: usize,
    /// The media section's control attribute.
    pub control: String,
    /// As answered (`server_port`, our `ssrc` when playing).
    pub transport: Transport,
    /// Playing: the SSRC, first sequence number and RTP timestamp offset river must use. Recording:
    /// the client's SSRC if it named one (else 0), and zeros.
    pub ssrc: u32,
    pub seq: u16,
    pub rtptime: u32,
}

/// The server's side of things, asked by the session while it handles a request.
pub trait Host {
    /// Decides whether `creds` may `access` the broadcast at `path` (no leading slash), asked by
    /// a request for `uri` (as sent, query included).
    fn authorize(
        &mut self,
        access: Access,
        path: &str,
        uri: &str,
        creds: &Credentials,
    ) -> AuthVerdict;
    /// The SDP to play `path`, or an error status (404 when there is no such broadcast, 415 when
    /// its codecs cannot be served).
    fn describe(&mut self, path: &str) -> Result<String, u16>;
    /// RECORD: start receiving `streams` of `sdp` for `path`, announced at `uri` (query
    /// included). An error status refuses (e.g. 403 for a channel another publisher holds, 415
    /// for codecs river cannot carry).
    fn record(
        &mut self,
        uri: &str,
        path: &str,
        sdp: &Sdp,
        streams: &[StreamSetup],
    ) -> Result<(), u16>;
    /// PLAY: start sending `streams`. Returns, per stream, the sequence number and RTP timestamp
    /// of the first packet the player will get, when known (for `RTP-Info`).
    fn play(&mut self, path: &str, sdp: &Sdp, streams: &[StreamSetup])
        -> Result<Vec<RtpInfo>, u16>;
    /// The server's RTP and RTCP UDP ports, if UDP transport is offered.
    fn udp_ports(&self) -> Option<(u16, u16)>;
}

/// Where a player's stream starts, for the `RTP-Info` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpInfo {
    pub seq: Option<u16>,
    pub rtptime: Option<u32>,
}

/// What the session tells its host, besides responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An interleaved frame for a stream that is set up, while recording or playing.
    Data {
        stream: usize,
        rtcp: bool,
        data: Bytes,
    },
    /// PAUSE: stop sending until the next PLAY.
    Pause,
    /// TEARDOWN: the recording or playing is over (the connection may stay open).
    Teardown,
    /// Close the connection after writing what is in `out`.
    Close { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Ready,
    Playing,
    Recording,
}

pub struct Session {
    cfg: SessionConfig,
    /// The state of the session's own random numbers (see [`Session::new`]).
    rng: u64,
    reader: Reader,
    auth: Authenticator,
    state: State,
    id: Option<String>,
    mode: Option<Access>,
    /// Presentation path without leading slash, and the URI it was addressed by.
    path: Option<String>,
    base_uri: String,
    sdp: Option<Sdp>,
    streams: Vec<StreamSetup>,
    authorized: Option<(Access, String)>,
    last_activity: Instant,
    /// Since when the reader holds part of a message (None: nothing buffered).
    partial_since: Option<Instant>,
    closed: bool,
    msgs: Vec<Message>,
    fixed_id: Option<String>,
    /// The host answered this request 400 (about what it names, not how it parsed).
    host_400: bool,
    /// A request waits for the host's decision ([`AuthVerdict::Pending`]); it is the first of
    /// `msgs`.
    parked: bool,
    /// A parse error that came after the parked request: answered once the requests before it
    /// are.
    parse_error: Option<super::message::ParseError>,
    /// Interleaved frames skipped (unknown channel, or before RECORD/PLAY).
    pub skipped_frames: u64,
}

impl Session {
    /// `seed` draws the session id and the SSRCs, sequence numbers and RTP times a PLAY
    /// starts from (the caller draws it, [`crate::proto::util::random_u64`]; tests fix it).
    pub fn new(cfg: SessionConfig, now: Instant, seed: u64) -> Self {
        let mut rng = seed;
        let auth = Authenticator::new(&cfg.realm, now, splitmix64(&mut rng));
        Session {
            rng,
            cfg,
            reader: Reader::new(),
            auth,
            state: State::Init,
            id: None,
            mode: None,
            path: None,
            base_uri: String::new(),
            sdp: None,
            streams: Vec::new(),
            authorized: None,
            last_activity: now,
            partial_since: None,
            closed: false,
            msgs: Vec::new(),
            fixed_id: None,
            host_400: false,
            parked: false,
            parse_error: None,
            skipped_frames: 0,
        }
    }

    /// Uses this id for the session SETUP creates (replaying captures); random otherwise.
    pub fn with_session_id(mut self, id: &str) -> Self {
        self.fixed_id = Some(id.to_string());
        self
    }

    /// Shares one authenticator (one nonce secret) between the sessions of a server.
    pub fn with_authenticator(mut self, auth: Authenticator) -> Self {
        self.auth = auth;
        self
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Publisher or player, once known.
    pub fn mode(&self) -> Option<Access> {
        self.mode
    }

    /// The presentation path (no leading slash), once known.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The URI the presentation was addressed by (DESCRIBE/ANNOUNCE), query included.
    pub fn uri(&self) -> &str {
        &self.base_uri
    }

    pub fn sdp(&self) -> Option<&Sdp> {
        self.sdp.as_ref()
    }

    pub fn streams(&self) -> &[StreamSetup] {
        &self.streams
    }

    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    pub fn is_recording(&self) -> bool {
        self.state == State::Recording
    }

    /// Bytes of requests and frames parsed so far.
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// Media or RTCP from the client arrived another way (UDP).
    pub fn touch(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// When the session times out unless the client shows life (a complete message), or the
    /// message in progress must be complete, whichever comes first.
    pub fn deadline(&self) -> Instant {
        let t = if self.id.is_some() {
            self.cfg.session_timeout
        } else {
            self.cfg.idle_timeout
        };
        let idle = self.last_activity + t;
        match self.partial_since {
            Some(p) => idle.min(p + self.cfg.request_timeout),
            None => idle,
        }
    }

    /// Checks the timeouts: `true` once [`Self::deadline`] has passed.
    pub fn timed_out(&self, now: Instant) -> bool {
        now >= self.deadline()
    }

    /// The message in progress has taken longer than [`SessionConfig::request_timeout`].
    pub fn request_late(&self, now: Instant) -> bool {
        self.partial_since
            .is_some_and(|p| now >= p + self.cfg.request_timeout)
    }

    /// A request waits for the host's decision: feed nothing more until [`Self::unpark`] (what is
    /// fed meanwhile is parsed and kept, unanswered).
    pub fn is_parked(&self) -> bool {
        self.parked && !self.closed
    }

    /// The host has decided: the next [`Self::push`] (with no bytes, or more) handles the parked
    /// request again, then what came after it.
    pub fn unpark(&mut self) {
        self.parked = false;
    }

    /// Feeds bytes from the connection. Responses are appended to `out`, events to `events`.
    pub fn push(
        &mut self,
        data: &[u8],
        now: Instant,
        host: &mut dyn Host,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) {
        if self.closed {
            return;
        }
        let mut msgs = std::mem::take(&mut self.msgs);
        // Messages already waiting behind a parked request.
        let waiting = msgs.len();
        if self.parse_error.is_none() {
            if let Err(e) = self.reader.push(data, &mut msgs) {
                self.parse_error = Some(e);
            }
        }
        if msgs.len() > waiting {
            self.last_activity = now;
            self.partial_since = None;
        }
        if !self.reader.mid_message() {
            self.partial_since = None;
        } else if self.partial_since.is_none() {
            self.partial_since = Some(now);
        }
        if self.parked {
            if msgs.len() > MAX_PARKED + 1 {
                Response::new(503).write(None, out);
                self.close(
                    events,
                    format!("more than {MAX_PARKED} messages behind a request that waits"),
                );
                msgs.clear();
            }
            self.msgs = msgs;
            return;
        }
        let mut msgs = std::collections::VecDeque::from(msgs);
        while let Some(m) = msgs.pop_front() {
            match m {
                Message::Interleaved { channel, data } => self.interleaved(channel, data, events),
                Message::Request(req) => {
                    self.request(&req, now, host, out, events);
                    if self.parked {
                        msgs.push_front(Message::Request(req));
                        break;
                    }
                    if self.closed {
                        msgs.clear();
                        break;
                    }
                }
            }
        }
        self.msgs = msgs.into();
        if self.parked {
            return;
        }
        if let Some(e) = self.parse_error.take() {
            if !self.closed {
                Response::new(e.status).write(e.cseq.as_deref(), out);
                self.close(events, e.to_string());
            }
        }
    }

    fn close(&mut self, events: &mut Vec<Event>, reason: String) {
        self.closed = true;
        events.push(Event::Close { reason });
    }

    fn interleaved(&mut self, channel: u8, data: Bytes, events: &mut Vec<Event>) {
        if !matches!(self.state, State::Playing | State::Recording) {
            self.skipped_frames += 1;
            return;
        }
        for (i, s) in self.streams.iter().enumerate() {
            if let Lower::Tcp {
                interleaved: (a, b),
            } = s.transport.lower
            {
                if channel == a || channel == b {
                    events.push(Event::Data {
                        stream: i,
                        rtcp: channel == b && a != b,
                        data,
                    });
                    return;
                }
            }
        }
        self.skipped_frames += 1;
    }

    fn session_header(&self) -> Option<String> {
        self.id
            .as_ref()
            .map(|id| format!("{id};timeout={}", self.cfg.session_timeout.as_secs().max(1)))
    }

    fn request(
        &mut self,
        req: &Request,
        now: Instant,
        host: &mut dyn Host,
        out: &mut Vec<u8>,
        events: &mut Vec<Event>,
    ) {
        let resp = match self.handle(req, now, host, events) {
            Ok(r) => r,
            Err(r) => r,
        };
        if self.parked {
            return;
        }
        let mut resp = resp;
        if let (Some(s), false) = (
            self.session_header(),
            resp.headers.iter().any(|(n, _)| n == "Session"),
        ) {
            if resp.status == 200 {
                resp.headers.push(("Session".into(), s));
            }
        }
        resp.write(req.cseq(), out);
        // A 400 the host decided is about what the request names: the stream is in step.
        if resp.status == 400 && !std::mem::take(&mut self.host_400) {
            self.close(events, format!("malformed {} request", req.method.as_str()));
        }
    }

    /// A status from the host (see `host_400`).
    fn host_status(&mut self, status: u16) -> Response {
        self.host_400 = status == 400;
        Response::new(status)
    }

    fn check_session(&self, req: &Request) -> Result<(), Response> {
        if let Some(h) = req.header("Session") {
            let sent = h.split(';').next().unwrap_or("").trim();
            if self.id.as_deref() != Some(sent) {
                return Err(Response::new(454));
            }
        }
        Ok(())
    }

    fn authorize(
        &mut self,
        req: &Request,
        access: Access,
        path: &str,
        now: Instant,
        host: &mut dyn Host,
    ) -> Result<(), Response> {
        if let Some((a, p)) = &self.authorized {
            if *a == access && p == path {
                return Ok(());
            }
        }
        let creds = req
            .header("Authorization")
            .and_then(|v| auth::parse_authorization(v, req.method.as_str()).ok())
            .unwrap_or(Credentials::None);
        let (creds, stale) = self.auth.screen(creds, now);
        match host.authorize(access, path, &req.uri, &creds) {
            AuthVerdict::Allow => {
                self.authorized = Some((access, path.to_string()));
                Ok(())
            }
            AuthVerdict::Deny => {
                let mut r = Response::new(401);
                for c in self.auth.challenges(now, stale) {
                    r = r.header("WWW-Authenticate", c);
                }
                Err(r)
            }
            AuthVerdict::DenyBasic => Err(Response::new(401).header(
                "WWW-Authenticate",
                format!("Basic realm=\"{}\"", self.auth.realm),
            )),
            AuthVerdict::Forbidden => Err(Response::new(403)),
            AuthVerdict::NotFound => Err(Response::new(404)),
            AuthVerdict::BadRequest => Err(self.host_status(400)),
            AuthVerdict::Pending => {
                // Not answered: the request is handled again once the host has decided.
                self.parked = true;
                Err(Response::new(503))
            }
        }
    }

    fn handle(
        &mut self,
        req: &Request,
        now: Instant,
        host: &mut dyn Host,
        events: &mut Vec<Event>,
    ) -> Result<Response, Response> {
        self.check_session(req)?;
        match &req.method {
            Method::Options => Ok(Response::new(200).header(
                "Public",
                "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER",
            )),
            Method::GetParameter | Method::SetParameter => Ok(Response::new(200)),
            Method::Describe => self.describe(req, now, host),
            Method::Announce => self.announce(req, now, host),
            Method::Setup => self.setup(req, now, host),
            Method::Play => self.play(req, host),
            Method::Record => self.record(host),
            Method::Pause => match self.state {
                State::Playing => {
                    self.state = State::Ready;
                    events.push(Event::Pause);
                    Ok(Response::new(200))
                }
                State::Ready => Ok(Response::new(200)),
                _ => Err(Response::new(455)),
            },
            Method::Teardown => {
                let was = self.state;
                let resp = Response::new(200);
                self.state = State::Init;
                self.streams.clear();
                self.id = None;
                if matches!(was, State::Playing | State::Recording | State::Ready) {
                    events.push(Event::Teardown);
                }
                Ok(resp)
            }
            Method::Other(_) => Err(Response::new(501)),
        }
    }

    fn req_path(req: &Request) -> Result<String, Response> {
        let p = req.path().ok_or_else(|| Response::new(400))?;
        Ok(p.trim_start_matches('/').to_string())
    }

    fn set_mode(&mut self, access: Access) -> Result<(), Response> {
        match self.mode {
            Some(m) if m != access && self.state != State::Init => Err(Response::new(455)),
            _ => {
                self.mode = Some(access);
                Ok(())
            }
        }
    }

    fn describe(
        &mut self,
        req: &Request,
        now: Instant,
        host: &mut dyn Host,
    ) -> Result<Response, Response> {
        if matches!(self.state, State::Playing | State::Recording) {
            return Err(Response::new(455));
        }
        let path = Self::req_path(req)?;
        self.authorize(req, Access::Play, &path, now, host)?;
        let text = host.describe(&path).map_err(|st| self.host_status(st))?;
        let sdp = Sdp::parse(&text).map_err(|_| Response::new(500))?;
        self.set_mode(Access::Play)?;
        self.sdp = Some(sdp);
        self.path = Some(path);
        self.base_uri = req.uri.trim_end_matches('/').to_string();
        Ok(Response::new(200)
            .header("Content-Base", format!("{}/", self.base_uri))
            .body("application/sdp", text.into_bytes()))
    }

    fn announce(
        &mut self,
        req: &Request,
        now: Instant,
        host: &mut dyn Host,
    ) -> Result<Response, Response> {
        if self.state != State::Init {
            return Err(Response::new(455));
        }
        // Authentication first: an URI that names no path cannot authenticate either.
        let path = Self::req_path(req);
        let named = path.as_deref().unwrap_or("");
        self.authorize(req, Access::Publish, named, now, host)?;
        let path = path?;
        if let Some(ct) = req.header("Content-Type") {
            if !ct.to_ascii_lowercase().starts_with("application/sdp") {
                return Err(Response::new(415));
            }
        }
        let text = std::str::from_utf8(&req.body).map_err(|_| Response::new(400))?;
        let sdp = Sdp::parse(text).map_err(|_| Response::new(400))?;
        if sdp.media.is_empty() {
            return Err(Response::new(400));
        }
        self.set_mode(Access::Publish)?;
        self.sdp = Some(sdp);
        self.path = Some(path);
        self.base_uri = req.uri.trim_end_matches('/').to_string();
        Ok(Response::new(200))
    }

    /// The media index a SETUP URI addresses.
    fn find_media(&self, req_path: &str) -> Option<usize> {
        let sdp = self.sdp.as_ref()?;
        let base = self.path.as_deref()?;
        for (i, m) in sdp.media.iter().enumerate() {
            let Some(c) = &m.control else { continue };
            let full = if c.contains("://") {
                uri_path(c).map(|p| p.trim_start_matches('/').to_string())
            } else if c == "*" {
                Some(base.to_string())
            } else {
                Some(
                    format!("{}/{}", base, c.trim_start_matches('/'))
                        .trim_matches('/')
                        .to_string(),
                )
            };
            if full.as_deref() == Some(req_path) {
                return Some(i);
            }
        }
        if sdp.media.len() == 1 && req_path == base {
            return Some(0);
        }
        None
    }

    fn setup(
        &mut self,
        req: &Request,
        now: Instant,
        host: &mut dyn Host,
    ) -> Result<Response, Response> {
        if matches!(self.state, State::Playing | State::Recording) {
            return Err(Response::new(455));
        }
        let path = Self::req_path(req)?;
        if self.sdp.is_none() {
            // SETUP without DESCRIBE: the presentation is the parent of the track URI.
            let parent = path
                .rsplit_once('/')
                .map(|(p, _)| p.to_string())
                .unwrap_or_default();
            self.authorize(req, Access::Play, &parent, now, host)?;
            let text = host.describe(&parent).map_err(|st| self.host_status(st))?;
            let sdp = Sdp::parse(&text).map_err(|_| Response::new(500))?;
            self.set_mode(Access::Play)?;
            self.sdp = Some(sdp);
            self.path = Some(parent.clone());
            let uri = req.uri.trim_end_matches('/');
            self.base_uri = uri
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or_default();
        }
        let mode = self.mode.unwrap_or(Access::Play);
        let base = self.path.clone().unwrap_or_default();
        self.authorize(req, mode, &base, now, host)?;
        let index = self.find_media(&path).ok_or_else(|| Response::new(404))?;
        let header = req.header("Transport").ok_or_else(|| Response::new(461))?;
        let specs = transport::parse(header).map_err(|_| Response::new(461))?;
        let udp = host.udp_ports();
        let spec = specs
            .into_iter()
            .find(|t| !matches!(t.lower, Lower::Udp { .. }) || udp.is_some())
            .ok_or_else(|| Response::new(461))?;
        // One lower transport per session: the host sends a session's media one way.
        let tcp = |l: &Lower| matches!(l, Lower::Tcp { .. });
        if self
            .streams
            .iter()
            .any(|s| s.index != index && tcp(&s.transport.lower) != tcp(&spec.lower))
        {
            return Err(Response::new(461));
        }
        let mut t = spec.clone();
        let shared = self.cfg.shared_streams && mode == Access::Play;
        match &mut t.lower {
            Lower::Tcp { interleaved } if shared => {
                let c = u8::try_from(index * 2).map_err(|_| Response::new(461))?;
                *interleaved = (c, c + 1);
            }
            Lower::Tcp { interleaved } => {
                let used = |c: u8, streams: &[StreamSetup]| {
                    streams.iter().filter(|s| s.index != index).any(|s| {
                        matches!(s.transport.lower, Lower::Tcp { interleaved: (a, b) } if a == c || b == c)
                    })
                };
                if used(interleaved.0, &self.streams) || used(interleaved.1, &self.streams) {
                    let mut c = 0u8;
                    while used(c, &self.streams) || used(c + 1, &self.streams) {
                        c = c.checked_add(2).ok_or_else(|| Response::new(461))?;
                        if c == 254 {
                            return Err(Response::new(461));
                        }
                    }
                    *interleaved = (c, c + 1);
                }
            }
            Lower::Udp { server_port, .. } => *server_port = udp,
        }
        let control = self
            .sdp
            .as_ref()
            .and_then(|s| s.media[index].control.clone())
            .unwrap_or_default();
        let (ssrc, seq, rtptime) = match mode {
            Access::Play => {
                let r = splitmix64(&mut self.rng);
                t.ssrc = (!shared).then_some(r as u32);
                t.record = false;
                (r as u32, (r >> 32) as u16, (r >> 48) as u32 * 0x10001)
            }
            Access::Publish => {
                t.record = true;
                (spec.ssrc.unwrap_or(0), 0, 0)
            }
        };
        let setup = StreamSetup {
            index,
            control,
            transport: t.clone(),
            ssrc,
            seq,
            rtptime,
        };
        match self.streams.iter_mut().find(|s| s.index == index) {
            Some(s) => *s = setup,
            None => self.streams.push(setup),
        }
        if self.id.is_none() {
            self.id = Some(
                self.fixed_id
                    .clone()
                    .unwrap_or_else(|| format!("{:016X}", splitmix64(&mut self.rng))),
            );
        }
        self.state = State::Ready;
        Ok(Response::new(200).header("Transport", t.to_header()))
    }

    fn play(&mut self, req: &Request, host: &mut dyn Host) -> Result<Response, Response> {
        if self.mode != Some(Access::Play) || self.streams.is_empty() {
            return Err(Response::new(455));
        }
        if self.id.is_none() || req.header("Session").is_none() {
            return Err(Response::new(454));
        }
        if self.state == State::Playing {
            return Ok(Response::new(200).header("Range", "npt=0.000-"));
        }
        let (path, sdp) = (
            self.path.clone().unwrap_or_default(),
            self.sdp.clone().unwrap_or_default(),
        );
        let times = host
            .play(&path, &sdp, &self.streams)
            .map_err(|st| self.host_status(st))?;
        self.state = State::Playing;
        let info: Vec<String> = self
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let url = if s.control.contains("://") {
                    s.control.clone()
                } else {
                    format!("{}/{}", self.base_uri, s.control)
                };
                let info = times.get(i).copied().unwrap_or_default();
                let mut v = format!("url={url}");
                if let Some(q) = info.seq {
                    v.push_str(&format!(";seq={q}"));
                }
                if let Some(t) = info.rtptime {
                    v.push_str(&format!(";rtptime={t}"));
                }
                v
            })
            .collect();
        Ok(Response::new(200)
            .header("Range", "npt=0.000-")
            .header("RTP-Info", info.join(",")))
    }

    fn record(&mut self, host: &mut dyn Host) -> Result<Response, Response> {
        if self.mode != Some(Access::Publish) || self.streams.is_empty() {
            return Err(Response::new(455));
        }
        if self.state == State::Recording {
            return Ok(Response::new(200));
        }
        let (path, sdp) = (
            self.path.clone().unwrap_or_default(),
            self.sdp.clone().unwrap_or_default(),
        );
        host.record(&self.base_uri, &path, &sdp, &self.streams)
            .map_err(|st| self.host_status(st))?;
        self.state = State::Recording;
        Ok(Response::new(200))
    }
}

#[cfg(test)]
mod tests;
