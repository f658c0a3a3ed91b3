//! The HTTP front, on the one HTTP layer ([`crate::http::server`]): the layer owns the
//! connections (keep-alive, head limits and deadlines, HEAD, the connection cap) and hands every
//! request to [`Inbox`], which only records it; the hub acts on the records after each call:
//! - `GET /<user>/<channel>.flv|.ts`: a watcher, parked until its channel is live, then a
//!   streaming response (chunked over HTTP/1.1, close-delimited over HTTP/1.0) fed from its queue
//!   while the connection's outbox has room;
//! - `POST|PUT /<user>/<channel>` with a sized or chunked body: a broadcast;
//! - `GET /<user>/<channel>[?format=ts|hls]`: the player page ([`player`]), and `/mpegts.js` with
//!   its licence at `/mpegts.js.LICENSE.txt`, `/hls.min.js`;
//! - `GET /<user>/<channel>/<file>`: HLS (`--hls`, [`super::hls`]);
//! - `/stats` (JSON), `/metrics` and `/stats?format=prometheus` (Prometheus text);
//! - `OPTIONS`: a CORS preflight answer ([`route::preflight`]); every response carries
//!   `Access-Control-Allow-Origin: *`, so pages from anywhere can play and read the stats.

use crate::relay::metrics::Refused;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::channel::{key_str, ChanKey, Refusal, SubId, SubKind};
use super::super::hooks::{self, Call, Hook};
use super::super::http::{self as route, Asset, Ext, Route};
use super::super::hub::{Front, Hub};
use super::super::player;
use super::hooks::{Then, Waiter, Who};
use crate::http::head::Limits;
use crate::http::response::reason;
use crate::http::server::{
    Body, Handler, Options, Reply, ReqId, Request, Response, SendError, Server,
};
use crate::proto::names;

/// What a stream may hold in its connection's outbox beyond its queue: enough for the socket to
/// stay busy, small enough that the queue's slow-watcher policy decides what a slow reader gets.
const STREAM_OUTBOX: usize = 256 * 1024;
/// The most of a push's body kept while the publish hook decides: what the HTTP layer had read
/// when the request came (its connection is not read meanwhile), so at most a socket buffer.
const MAX_HELD: usize = 8 << 20;

/// What the HTTP layer reported during a call, for the hub to act on afterwards.
pub(in crate::relay) enum Event {
    Request(Box<Request>),
    Body {
        id: ReqId,
        data: Vec<u8>,
        end: bool,
    },
    Closed(ReqId),
    Writable(ReqId),
    /// The HTTP layer refused a head itself.
    Refused {
        peer: SocketAddr,
        status: u16,
        message: String,
    },
}

/// The hub's [`Handler`]: every request is parked and recorded.
#[derive(Default)]
pub(in crate::relay) struct Inbox {
    events: Vec<Event>,
}

impl Handler for Inbox {
    fn request(&mut self, req: &Request, _now: Instant) -> Reply {
        self.events.push(Event::Request(Box::new(Request {
            id: req.id,
            head: req.head.clone(),
            peer: req.peer,
        })));
        Reply::Park
    }

    fn body(&mut self, id: ReqId, data: &[u8], end: bool) -> Option<Response> {
        self.events.push(Event::Body {
            id,
            data: data.to_vec(),
            end,
        });
        None
    }

    fn closed(&mut self, id: ReqId) {
        self.events.push(Event::Closed(id));
    }

    fn writable(&mut self, id: ReqId) {
        self.events.push(Event::Writable(id));
    }

    fn refused(&mut self, peer: SocketAddr, status: u16, message: &str) {
        self.events.push(Event::Refused {
            peer,
            status,
            message: message.to_string(),
        });
    }
}

/// The hub's HTTP server: connections are capped by the hub (all fronts together).
pub(in crate::relay) fn server(max_connections: usize) -> Server<Inbox> {
    let opts = Options {
        max_connections,
        limits: Limits {
            max_line: route::MAX_HEAD,
            max_head: route::MAX_HEAD,
            max_headers: 48,
        },
        head_timeout: Duration::from_secs(10),
        max_output: STREAM_OUTBOX,
        base_fields: vec![
            ("Server", "river-relay"),
            ("Access-Control-Allow-Origin", "*"),
            ("Cache-Control", "no-cache"),
        ],
        ..Options::default()
    };
    let counters = Arc::new(Default::default());
    Server::new(
        Inbox::default(),
        opts,
        super::super::hub::HTTP_TOKENS,
        0,
        counters,
    )
}

/// An HTTP watcher or push.
pub(in crate::relay) struct HttpReq {
    id: ReqId,
    pub conn_id: u64,
    pub peer: SocketAddr,
    pub since: Instant,
    kind: ReqKind,
    /// The hook call it waits for.
    pub hook: Option<usize>,
    /// A push's body that came while the publish hook decided, and whether it ended there.
    held: Vec<u8>,
    held_end: bool,
}

enum ReqKind {
    /// `started`: the response head is out and the body streams.
    Watch {
        ext: Ext,
        started: bool,
    },
    Push {
        key: ChanKey,
    },
}

/// A plain-text error answer: "STATUS REASON: message".
fn error(status: u16, message: &str) -> Response {
    Response::text(status, format!("{status} {}: {message}\n", reason(status)))
}

impl Hub {
    /// Acts on what the HTTP layer recorded.
    pub(in crate::relay) fn http_events(&mut self, now: Instant) {
        loop {
            let Some(h) = self.http.as_mut() else { return };
            if h.handler.events.is_empty() {
                return;
            }
            let events = std::mem::take(&mut h.handler.events);
            for e in events {
                match e {
                    Event::Request(r) => self.http_request(*r, now),
                    Event::Body { id, data, end } => self.http_body(id, &data, end, now),
                    Event::Closed(id) => self.http_closed(id, now),
                    Event::Writable(id) => {
                        if let Some(&sub) = self.by_req.get(&id) {
                            self.flush_http(sub, now);
                        }
                    }
                    Event::Refused {
                        peer,
                        status,
                        message,
                    } => {
                        self.count_refused(Front::Http, Refused::from_status(status));
                        log::warn!("{peer}: refused: HTTP {status}: {message}");
                    }
                }
            }
        }
    }

    fn http_respond(&mut self, id: ReqId, resp: Response, now: Instant) {
        if let Some(h) = self.http.as_mut() {
            h.complete(self.reactor.registry(), id, resp, now);
        }
    }

    /// Answers a request with an error and counts it refused.
    pub(in crate::relay) fn http_refused(
        &mut self,
        r: &Request,
        why: &str,
        status: u16,
        message: &str,
        now: Instant,
    ) {
        self.http_refused_with(r, why, status, error(status, message), now);
    }

    /// [`Self::http_refused`] with the answer given (its status is `status`).
    fn http_refused_with(
        &mut self,
        r: &Request,
        why: &str,
        status: u16,
        resp: Response,
        now: Instant,
    ) {
        self.count_refused(Front::Http, Refused::from_status(status));
        log::warn!("{}: refused: {why}", r.peer);
        self.http_respond(r.id, resp, now);
    }

    fn http_request(&mut self, r: Request, now: Instant) {
        if r.head.method == "OPTIONS" && r.head.target == "*" {
            // The server as a whole (RFC 9110 9.3.7).
            let all = "GET, HEAD, POST, PUT, OPTIONS";
            let resp = Response::new(204, Body::Empty).field("Allow", all);
            self.http_respond(r.id, resp, now);
            return;
        }
        let head = match route::from_head(r.head.clone()) {
            Ok(h) => h,
            Err(e) => {
                let why = format!("HTTP {}: {}", e.status, e.message);
                self.http_refused(&r, &why, e.status, &e.message, now);
                return;
            }
        };
        log::debug!(
            "{}: {} {}",
            r.peer,
            head.method,
            names::shown(head.path.as_bytes())
        );
        match (head.method.as_str(), route::route(&head)) {
            ("OPTIONS", Route::BadName(why)) => {
                let log = format!("HTTP 400 OPTIONS: {why}");
                self.http_refused(&r, &log, 400, &why, now);
            }
            ("OPTIONS", route) => {
                let Some(methods) = route::allowed_methods(&route) else {
                    let why = format!("HTTP 404 OPTIONS {}", names::shown(head.path.as_bytes()));
                    self.http_refused(&r, &why, 404, "no such path", now);
                    return;
                };
                let fields = route::preflight(
                    methods,
                    r.head.header("Access-Control-Request-Headers"),
                    r.head
                        .header("Access-Control-Request-Private-Network")
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                );
                let resp = fields
                    .into_iter()
                    .fold(Response::new(204, Body::Empty), |resp, (k, v)| {
                        resp.field(k, v)
                    });
                self.http_respond(r.id, resp, now);
            }
            ("GET" | "HEAD", Route::Asset(asset)) => {
                let (ct, body): (&str, &'static [u8]) = match asset {
                    Asset::MpegtsJs => ("text/javascript; charset=utf-8", player::MPEGTS_JS),
                    Asset::HlsJs => ("text/javascript; charset=utf-8", crate::http::index::HLS_JS),
                    Asset::MpegtsJsLicense => (
                        "text/plain; charset=utf-8",
                        player::MPEGTS_JS_LICENSE.as_bytes(),
                    ),
                };
                let resp = Response::new(200, Body::Bytes(Bytes::from_static(body)))
                    .field("Content-Type", ct);
                self.http_respond(r.id, resp, now);
            }
            ("GET" | "HEAD", Route::Stats { prometheus }) => {
                let (ct, body) = if prometheus {
                    (
                        "text/plain; version=0.0.4; charset=utf-8",
                        self.metrics(now).to_prometheus(),
                    )
                } else {
                    ("application/json", self.stats(now).to_json())
                };
                let resp =
                    Response::new(200, Body::Bytes(Bytes::from(body))).field("Content-Type", ct);
                self.http_respond(r.id, resp, now);
            }
            ("GET" | "HEAD", Route::Stream { user, channel, ext }) => {
                let Some(ext) = ext else {
                    self.http_page(&r, &head, &user, &channel, now);
                    return;
                };
                if head.method == "HEAD" {
                    let resp =
                        Response::new(200, Body::Empty).field("Content-Type", ext.content_type());
                    if let Some(h) = self.http.as_mut() {
                        h.stream(self.reactor.registry(), r.id, resp, now);
                    }
                    return;
                }
                let key = (user, channel);
                let pw = match head.password("password") {
                    None => None,
                    Some(Ok(p)) => Some(p).filter(|p| !p.is_empty()),
                    // Told apart from a wrong password only in the log.
                    Some(Err(e)) => {
                        let why = format!("watcher of {}: channel password: {e}", key_str(&key));
                        self.http_refused(&r, &why, 403, "wrong channel password", now);
                        return;
                    }
                };
                self.http_watch(&r, &head.query, key, pw, ext, now);
            }
            (
                "GET" | "HEAD",
                Route::Hls {
                    user,
                    channel,
                    file,
                },
            ) => self.hls_request(&r, &head, (user, channel), &file, now),
            ("GET" | "HEAD", Route::BadName(why)) => {
                let log = format!("HTTP 400 {}: {why}", head.method);
                self.http_refused(&r, &log, 400, &why, now);
            }
            ("POST" | "PUT", route) if !matches!(route, Route::Stats { .. }) => {
                self.http_push(&r, &head, route, now)
            }
            (_, Route::NotFound) => {
                let why = format!("HTTP 404 {}", names::shown(head.path.as_bytes()));
                self.http_refused(&r, &why, 404, "no such path", now);
            }
            (m, route) => {
                let why = format!("HTTP 405 {m}");
                let mut resp = error(405, &format!("method {m} not allowed here"));
                if let Some(methods) = route::allowed_methods(&route) {
                    resp = resp.field("Allow", methods);
                }
                self.http_refused_with(&r, &why, 405, resp, now);
            }
        }
    }

    /// `GET /<user>/<channel>`: the page that plays the channel with mpegts.js, over http-flv or,
    /// with `?format=ts`, http-ts; `?password=` goes on to the stream's URL.
    fn http_page(&mut self, r: &Request, head: &route::Head, user: &str, chan: &str, now: Instant) {
        let kind = match head.param("format") {
            None | Some("flv") => Some(player::Kind::Flv),
            Some("ts") => Some(player::Kind::Ts),
            Some("hls") => None,
            Some(_) => {
                let m = "format is flv, ts or hls";
                self.http_refused(r, "HTTP page with a bad ?format=", 400, m, now);
                return;
            }
        };
        let pw = match head.password("password") {
            None => None,
            Some(Ok(p)) => Some(p).filter(|p| !p.is_empty()),
            Some(Err(e)) => {
                let why = format!("page of {user}/{chan}: channel password: {e}");
                self.http_refused(r, &why, 403, "wrong channel password", now);
                return;
            }
        };
        let page = match kind {
            Some(kind) => {
                let src = player::stream_path(user, chan, kind, pw.as_deref());
                player::page("/mpegts.js", &src, kind, &format!("{user}/{chan}"))
            }
            None => player::hls_page(user, chan, pw.as_deref()),
        };
        let resp = Response::new(200, Body::Bytes(Bytes::from(page)))
            .field("Content-Type", "text/html; charset=utf-8");
        self.http_respond(r.id, resp, now);
    }

    /// `POST|PUT /<user>/<channel>`: the user authenticates before anything else of the request
    /// is looked at, so a client without the user's password learns nothing from the answer (403,
    /// whatever the path, query or body); the log says what was wrong.
    fn http_push(&mut self, r: &Request, head: &route::Head, route: Route, now: Instant) {
        let pw = head
            .password("user-password")
            .or_else(|| head.password("password"));
        let user_password = pw.clone().and_then(Result::ok).filter(|p| !p.is_empty());
        let auth = match (head.push_user(), pw) {
            (Err(e), _) => Err(e.message("user")),
            (Ok(_), Some(Err(e))) => Err(format!("user password: {e}")),
            (Ok(user), pw) => {
                let pw = pw.and_then(Result::ok).unwrap_or_default();
                self.check_user(&user, &pw)
            }
        };
        if let Err(why) = auth {
            let why = format!(
                "HTTP broadcaster to {}: {why}",
                names::shown(head.path.as_bytes())
            );
            self.http_refused(r, &why, 403, "wrong user password or unknown user", now);
            return;
        }
        let (user, channel) = match route {
            Route::Stream { user, channel, .. } => (user, channel),
            Route::BadName(why) => {
                let log = format!("HTTP 400 {}: {why}", head.method);
                self.http_refused(r, &log, 400, &why, now);
                return;
            }
            _ => {
                let why = format!("HTTP 404 {}", names::shown(head.path.as_bytes()));
                self.http_refused(r, &why, 404, "no such path", now);
                return;
            }
        };
        let key = (user, channel);
        if !head.chunked && head.content_length.is_none() {
            let m = "a push needs a chunked or Content-Length body";
            self.http_refused(r, "HTTP push without a body length", 411, m, now);
            return;
        }
        let cpw = match head.password("channel-password") {
            None => None,
            Some(Ok(p)) => Some(p).filter(|p| !p.is_empty()),
            Some(Err(e)) => {
                let m = format!("channel-password not allowed: {e}");
                let why = format!("HTTP broadcaster for {}: {m}", key_str(&key));
                self.http_refused(r, &why, 400, &m, now);
                return;
            }
        };
        let sub = self.http_sub(r, ReqKind::Push { key: key.clone() }, now);
        if head.content_length == Some(0) {
            if let Some(req) = self.http_reqs.get_mut(&sub) {
                req.held_end = true;
            }
        }
        let call = self.http_call(sub, &key, &head.query, user_password, cpw.clone());
        let then = Then::HttpPush { key, password: cpw };
        let who = Who::Http(sub);
        self.ask_hook(Hook::Publish, Waiter { who, then, call }, now);
    }

    /// What a hook is told about HTTP request `sub`.
    fn http_call(
        &self,
        sub: SubId,
        key: &ChanKey,
        query: &str,
        user_password: Option<String>,
        channel_password: Option<String>,
    ) -> Call {
        let (id, peer) = self
            .http_reqs
            .get(&sub)
            .map_or((0, ([0, 0, 0, 0], 0).into()), |r| (r.conn_id, r.peer));
        Call {
            id,
            protocol: "http",
            user: key.0.clone(),
            channel: key.1.clone(),
            remote_addr: peer,
            query: hooks::query(query),
            user_password,
            channel_password,
        }
    }

    /// Refuses a push or a watcher the hook did not let in: 403.
    fn http_hook_refused(&mut self, sub: SubId, what: &str, hook: Hook, why: &str) {
        let Some(req) = self.http_forget(sub) else {
            return;
        };
        self.count_refused(Front::Http, Refused::Auth);
        log::warn!("{}: refused: {what}: {why}", req.peer);
        let m = format!("refused by the {} hook", hook.name());
        self.http_respond(req.id, error(403, &m), Instant::now());
    }

    /// The publish hook (if set) decided about push `sub`: its broadcast starts with what of its
    /// body came meanwhile.
    pub(in crate::relay) fn http_push_decided(
        &mut self,
        sub: SubId,
        key: ChanKey,
        password: Option<String>,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        if let Err(why) = v {
            let what = format!("HTTP broadcaster for {}", key_str(&key));
            self.http_hook_refused(sub, &what, Hook::Publish, &why);
            return;
        }
        let Some(req) = self.http_reqs.get_mut(&sub) else {
            return;
        };
        let (peer, id) = (req.peer, req.id);
        let held = std::mem::take(&mut req.held);
        let end = req.held_end;
        self.begin_broadcast(sub, peer, key.clone(), password, Front::Http, now);
        self.hook_published(&key, call, now);
        if end {
            if !held.is_empty() {
                self.broadcast_data(&key, &held, now);
            }
            self.http_push_done(sub, "end of broadcast", now);
            return;
        }
        self.http_body(id, &held, false, now);
    }

    /// A new HTTP watcher or push: its [`SubId`], never reused.
    fn http_sub(&mut self, r: &Request, kind: ReqKind, now: Instant) -> SubId {
        let sub = self.next_http_sub;
        self.next_http_sub += 1;
        let conn_id = self.next_id;
        self.next_id += 1;
        self.http_reqs.insert(
            sub,
            HttpReq {
                id: r.id,
                conn_id,
                peer: r.peer,
                since: now,
                kind,
                hook: None,
                held: Vec::new(),
                held_end: false,
            },
        );
        self.by_req.insert(r.id, sub);
        sub
    }

    /// Forgets an HTTP watcher or push (its request is answered or gone).
    fn http_forget(&mut self, sub: SubId) -> Option<HttpReq> {
        let r = self.http_reqs.remove(&sub)?;
        self.by_req.remove(&r.id);
        if let Some(tok) = r.hook {
            self.hooks.cancel(tok);
        }
        self.channels.leave(sub);
        Some(r)
    }

    fn http_watch(
        &mut self,
        r: &Request,
        query: &str,
        key: ChanKey,
        password: Option<String>,
        ext: Ext,
        now: Instant,
    ) {
        let sub = self.http_sub(
            r,
            ReqKind::Watch {
                ext,
                started: false,
            },
            now,
        );
        let call = self.http_call(sub, &key, query, None, password.clone());
        let then = Then::HttpWatch { key, password, ext };
        self.ask_hook(
            Hook::Play,
            Waiter {
                who: Who::Http(sub),
                then,
                call,
            },
            now,
        );
    }

    /// The play hook (if set) decided about HTTP watcher `sub`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::relay) fn http_watch_decided(
        &mut self,
        sub: SubId,
        key: ChanKey,
        password: Option<String>,
        ext: Ext,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        if let Err(why) = v {
            let what = format!("HTTP watcher of {}", key_str(&key));
            self.http_hook_refused(sub, &what, Hook::Play, &why);
            return;
        }
        let Some(peer) = self.http_reqs.get(&sub).map(|r| r.peer) else {
            return;
        };
        let kind = SubKind::Http(ext);
        match self
            .channels
            .watch(sub, &key, password, kind, peer, now, &mut self.fx)
        {
            Ok(()) => {
                self.hook_playing(sub, call, now);
                self.apply(now);
                self.pull_for(&key, now);
            }
            Err(refusal) => self.http_refuse(sub, &refusal),
        }
    }

    /// Refuses an HTTP watcher: its status if its response has not started, else the close.
    pub(in crate::relay) fn http_refuse(&mut self, sub: SubId, r: &Refusal) {
        let Some(req) = self.http_forget(sub) else {
            return;
        };
        self.count_refused(Front::Http, Refused::from_status(r.status));
        log::warn!("{}: refused: {}", req.peer, r.why);
        let now = Instant::now();
        match req.kind {
            ReqKind::Watch { started: false, .. } => {
                self.http_respond(req.id, error(r.status, &r.message), now)
            }
            _ => {
                if let Some(h) = self.http.as_mut() {
                    h.abort(self.reactor.registry(), req.id);
                }
            }
        }
    }

    /// Drops an HTTP watcher the slow-watcher policy gave up on: its connection closes at once.
    pub(in crate::relay) fn http_drop(&mut self, sub: SubId, why: &str) {
        let Some(req) = self.http_forget(sub) else {
            return;
        };
        log::info!("{}: closed: {why}", req.peer);
        if let Some(h) = self.http.as_mut() {
            h.abort(self.reactor.registry(), req.id);
        }
    }

    /// An HTTP push was replaced by a new broadcaster: it is answered 409 and its connection
    /// closes (its body is still coming).
    pub(in crate::relay) fn http_replaced(&mut self, sub: SubId) {
        let Some(req) = self.http_forget(sub) else {
            return;
        };
        log::info!("{}: closed: replaced by a new broadcaster", req.peer);
        let resp = error(409, "replaced by a new broadcaster");
        self.http_respond(req.id, resp, Instant::now());
    }

    fn http_body(&mut self, id: ReqId, data: &[u8], end: bool, now: Instant) {
        let Some(&sub) = self.by_req.get(&id) else {
            return;
        };
        if let Some(req) = self.http_reqs.get_mut(&sub).filter(|r| r.hook.is_some()) {
            // The publish hook decides: kept for the broadcast (the connection is paused).
            req.held.extend_from_slice(data);
            req.held_end |= end;
            if req.held.len() > MAX_HELD {
                let why = format!("more than {MAX_HELD} bytes of body while the hook decided");
                let r = Refusal {
                    why: format!("HTTP broadcaster: {why}"),
                    status: 503,
                    message: why,
                };
                self.http_refuse(sub, &r);
            }
            return;
        }
        let Some(ReqKind::Push { key }) = self.http_reqs.get(&sub).map(|r| &r.kind) else {
            return;
        };
        let key = key.clone();
        if !data.is_empty() {
            self.broadcast_data(&key, data, now);
            // A paced broadcast: no more until every watcher has room.
            if !end && self.channels.is_publisher(&key, sub) && !self.channels.room(&key) {
                if let Some(h) = self.http.as_mut() {
                    h.pause(id);
                }
                self.hold(sub, key.clone(), now);
            }
        }
        if end {
            if let Some(r) = self.http_reqs.get(&sub) {
                log::info!("{}: HTTP push to {} complete", r.peer, key_str(&key));
            }
            self.http_push_done(sub, "end of broadcast", now);
        }
    }

    /// Pauses reading request `sub`'s connection (a hook decides).
    pub(in crate::relay) fn http_pause(&mut self, sub: SubId) {
        if let (Some(req), Some(h)) = (self.http_reqs.get(&sub), self.http.as_mut()) {
            h.pause(req.id);
        }
    }

    /// Reads a held HTTP push again.
    pub(in crate::relay) fn http_resume(&mut self, sub: SubId, now: Instant) {
        let Some(req) = self.http_reqs.get(&sub) else {
            return;
        };
        let id = req.id;
        if let Some(h) = self.http.as_mut() {
            h.resume(self.reactor.registry(), id, now);
        }
        self.http_events(now);
    }

    /// A push's body is complete: the end of its broadcast, and 200.
    fn http_push_done(&mut self, sub: SubId, why: &str, now: Instant) {
        let Some(req) = self.http_forget(sub) else {
            return;
        };
        if let ReqKind::Push { key } = &req.kind {
            if self.channels.is_publisher(key, sub) {
                self.end_broadcast(key, now, why);
            }
        }
        self.http_respond(req.id, Response::new(200, Body::Empty), now);
    }

    /// A parked or streaming request's connection is gone.
    fn http_closed(&mut self, id: ReqId, now: Instant) {
        if self.hls_closed(id) {
            return;
        }
        let Some(&sub) = self.by_req.get(&id) else {
            return;
        };
        let Some(req) = self.http_forget(sub) else {
            return;
        };
        match req.kind {
            ReqKind::Push { key } => {
                log::warn!(
                    "{}: HTTP push to {} ended before its body did",
                    req.peer,
                    key_str(&key)
                );
                if self.channels.is_publisher(&key, sub) {
                    log::info!("{}: broadcast of {} ended", req.peer, key_str(&key));
                    self.end_broadcast(&key, now, "end of broadcast");
                }
            }
            ReqKind::Watch { .. } => log::info!("{}: closed: peer closed", req.peer),
        }
    }

    /// Moves an HTTP watcher's queue into its response while the connection has room; ends the
    /// response once the queue of an ended broadcast is written.
    pub(in crate::relay) fn flush_http(&mut self, sub: SubId, now: Instant) {
        let Some(req) = self.http_reqs.get_mut(&sub) else {
            return;
        };
        let Some(h) = self.http.as_mut() else { return };
        let registry = self.reactor.registry();
        let Some(s) = self.channels.sub_mut(sub) else {
            return;
        };
        let ReqKind::Watch { ext, started } = &mut req.kind else {
            return;
        };
        if s.queue.is_none() {
            return;
        }
        if !*started {
            *started = true;
            let resp = Response::new(200, Body::Empty).field("Content-Type", ext.content_type());
            h.stream(registry, req.id, resp, now);
        }
        let id = req.id;
        let mut gone = false;
        let mut done = false;
        while let Some(q) = s.queue.as_mut() {
            let Some(b) = q.front_bytes() else {
                if s.advance() {
                    continue;
                }
                done = s.eof_after_drain;
                break;
            };
            let n = b.len();
            match h.queue(id, b) {
                Ok(()) => q.consume(n, now),
                Err(SendError::Full | SendError::Busy) => break,
                Err(SendError::Gone) => {
                    gone = true;
                    break;
                }
            }
        }
        if done {
            h.end(registry, id, now);
        } else {
            h.kick(registry, id, now);
        }
        if done || gone {
            if let Some(r) = self.http_forget(sub) {
                if done {
                    log::info!("{}: closed: end of broadcast: all sent", r.peer);
                }
            }
        }
    }
}
