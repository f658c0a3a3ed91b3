//! HLS from the hub (`serve --hls`): the glue between HTTP requests under `/<user>/<channel>/`,
//! the channels and the HLS sessions ([`super::super::hls`], pure).
//!
//! - A playlist request for a live channel starts its variant's session: an internal watcher
//!   ([`SubKind::Hls`], a [`SubId`] from [`HLS_SUBS`]) that gets the GOP cache at once and then
//!   every chunk of the broadcast, as it is, into the session. Its queue is drained into the
//!   session as soon as the channels flag it ([`Hub::hls_flush`]), so it is never behind.
//! - A session without a request for `--hls-idle-timeout` (and none waiting) leaves its channel
//!   and is dropped: a channel nobody plays over HLS costs nothing.
//! - Passwords: on a channel with a password, a playlist request needs `?password=` (or a
//!   token), and every other file a token; the playlist's URIs carry one
//!   ([`super::super::hls::token`]: a MAC over the channel, its password, the client's address
//!   and an expiry, checked in constant time). A channel without a password needs none.
//! - Requests that wait (the first playlist, blocking reloads, preload hints) are parked in the
//!   HTTP layer (no thread, no buffer) and answered from [`Hub::hls_flush`] or the timers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::super::channel::{key_str, ChanKey, Refusal, SubId, SubKind};
use super::super::hls::token::{TokenError, Tokens};
use super::super::hls::{Config, HlsStats, Session, Variant, VariantStats, Wanted};
use super::super::http as route;
use super::super::hub::{Front, Hub};
use super::super::metrics::{Refused, EXPIRY};
use crate::format::hls::uri::add_query;
use crate::http::response::reason;
use crate::http::server::{Body, Reply, ReqId, Request, Response};
use crate::media::StreamFormat;
use crate::pipeline::Wall;
use crate::proto::names;
use crate::proto::util::ct_eq;

/// HLS sessions' [`SubId`]s start here (within the HTTP range: never a connection slot).
pub(in crate::relay) const HLS_SUBS: SubId = usize::MAX / 4 * 3;

struct Slot {
    sub: Option<SubId>,
    session: Session,
    /// The channel password when it started (the session ends when the channel's changes).
    password: Option<String>,
}

/// A request parked in a session: its playlist answer gets the token when there is one.
struct Parked {
    key: (ChanKey, Variant),
    token: Option<String>,
}

/// Counters of one channel's HLS, kept [`EXPIRY`] after its last session.
#[derive(Default, Clone)]
struct Totals {
    playlists: u64,
    media: u64,
    refused: u64,
    bytes_out: u64,
    gone_since: Option<Instant>,
}

/// The hub's HLS state.
pub(in crate::relay) struct HlsFront {
    cfg: Config,
    tokens: Tokens,
    start: Instant,
    sessions: HashMap<(ChanKey, Variant), Slot>,
    by_sub: HashMap<SubId, (ChanKey, Variant)>,
    parked: HashMap<ReqId, Parked>,
    next_sub: SubId,
    last_run: u64,
    totals: HashMap<ChanKey, Totals>,
}

/// 32 bytes from the OS (getrandom(2)).
fn os_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    let mut got = 0;
    while got < k.len() {
        // SAFETY: getrandom writes at most the given length into the buffer we own.
        let n = unsafe { libc::getrandom(k[got..].as_mut_ptr().cast(), k.len() - got, 0) };
        if n > 0 {
            got += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // No getrandom: std's OS-seeded hash keys, 64 bits at a time.
            for c in k.chunks_mut(8) {
                c.copy_from_slice(&crate::proto::util::random_u64().to_le_bytes());
            }
            break;
        }
    }
    k
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn error(status: u16, message: &str) -> Response {
    Response::text(status, format!("{status} {}: {message}\n", reason(status)))
}

impl HlsFront {
    pub fn new(cfg: Config, now: Instant) -> Self {
        let ttl = cfg.token_ttl.as_millis() as u64;
        HlsFront {
            tokens: Tokens::new(os_key(), ttl),
            cfg,
            start: now,
            sessions: HashMap::new(),
            by_sub: HashMap::new(),
            parked: HashMap::new(),
            next_sub: HLS_SUBS,
            last_run: 0,
            totals: HashMap::new(),
        }
    }

    fn now_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }

    fn totals(&mut self, key: &ChanKey) -> &mut Totals {
        self.totals.entry(key.clone()).or_default()
    }

    /// A response on its way out: a playlist's URIs get the token, and the bytes are counted.
    fn finish(&mut self, key: &ChanKey, token: Option<&str>, mut r: Response) -> Response {
        let playlist = r
            .fields
            .iter()
            .any(|(k, v)| k == "Content-Type" && v == "application/vnd.apple.mpegurl");
        if let (Some(t), true, Body::Bytes(b)) = (token, playlist && r.status == 200, &r.body) {
            let signed = add_query(&String::from_utf8_lossy(b), &format!("token={t}"));
            r.body = Body::Bytes(Bytes::from(signed));
            if let Some(e) = r.etag.take() {
                r.etag = Some(format!("{}-{t}\"", e.trim_end_matches('"')));
            }
        }
        let t = self.totals(key);
        t.bytes_out += r.body.len();
        r
    }

    /// Channels whose last session is gone keep their counters for [`EXPIRY`], then lose them.
    fn tick(&mut self, now: Instant) {
        for (k, t) in self.totals.iter_mut() {
            let any = self.sessions.keys().any(|(c, _)| c == k);
            match (any, t.gone_since) {
                (true, _) => t.gone_since = None,
                (false, None) => t.gone_since = Some(now),
                (false, Some(_)) => {}
            }
        }
        self.totals
            .retain(|_, t| t.gone_since.is_none_or(|g| now < g + EXPIRY));
    }

    /// What `/stats` and `/metrics` show: every channel with a session, or with counters from
    /// one gone for less than [`EXPIRY`].
    pub fn stats(&self, now: Instant) -> Vec<HlsStats> {
        let mut out: Vec<HlsStats> = self
            .totals
            .iter()
            .map(|(k, t)| {
                let mut sessions: Vec<VariantStats> = self
                    .sessions
                    .iter()
                    .filter(|((c, _), _)| c == k)
                    .map(|((_, v), s)| VariantStats {
                        variant: v.name(),
                        segmenting: s.sub.is_some(),
                        ended: s.session.ended,
                        failed: s.session.failed.clone(),
                        since_secs: now.saturating_duration_since(s.session.since).as_secs_f64(),
                        idle_secs: now
                            .saturating_duration_since(s.session.last_request)
                            .as_secs_f64(),
                        parked: s.session.parked(),
                        stats: s.session.stats.clone(),
                    })
                    .collect();
                sessions.sort_by_key(|s| s.variant);
                HlsStats {
                    user: k.0.clone(),
                    channel: k.1.clone(),
                    sessions,
                    playlists: t.playlists,
                    media: t.media,
                    refused: t.refused,
                    bytes_out: t.bytes_out,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.user, &a.channel).cmp(&(&b.user, &b.channel)));
        out
    }
}

/// Why a request is refused: status, the client's message, the log's.
struct Denied(u16, String, String);

impl Hub {
    fn hls_respond(&mut self, id: ReqId, resp: Response, now: Instant) {
        if let Some(h) = self.http.as_mut() {
            h.complete(self.reactor.registry(), id, resp, now);
        }
    }

    /// Sends the answers a session gave for parked requests.
    fn hls_answers(&mut self, answers: Vec<(ReqId, Response)>, now: Instant) {
        for (id, resp) in answers {
            let Some(h) = self.hls.as_mut() else { return };
            let resp = match h.parked.remove(&id) {
                Some(p) => h.finish(&p.key.0, p.token.as_deref(), resp),
                None => resp,
            };
            self.hls_respond(id, resp, now);
        }
    }

    /// `GET|HEAD /<user>/<channel>/<file>`.
    pub(in crate::relay) fn hls_request(
        &mut self,
        r: &Request,
        head: &route::Head,
        key: ChanKey,
        file: &str,
        now: Instant,
    ) {
        // Without --hls, or a name no variant makes, it is any other unknown path: a 404 logged
        // as one.
        let not_found = |hub: &mut Hub, message: &str| {
            let why = format!("HTTP 404 {}", names::shown(head.path.as_bytes()));
            hub.http_refused(r, &why, 404, message, now);
        };
        let Some(h) = self.hls.as_ref() else {
            not_found(self, "HLS is not served here (serve --hls)");
            return;
        };
        let Some(wanted) = Wanted::of(file, h.cfg.default) else {
            not_found(self, "no such file");
            return;
        };
        let variant = match wanted {
            Wanted::Playlist(v) | Wanted::Media { variant: v, .. } => v,
        };
        match self.hls_admit(r, head, &key, variant, &wanted, now) {
            Ok(token) => self.hls_serve(r, head, key, variant, wanted, file, token, now),
            Err(Denied(status, message, why)) => {
                if let Some(h) = self.hls.as_mut() {
                    h.totals(&key).refused += 1;
                }
                self.count_refused(Front::Http, Refused::from_status(status));
                log::warn!(
                    "{}: refused: HLS {file} of {}: {why}",
                    r.peer,
                    key_str(&key)
                );
                self.hls_respond(r.id, error(status, &message), now);
            }
        }
    }

    /// Whether the request may have what it asks for; the token its playlist's URIs carry.
    fn hls_admit(
        &mut self,
        r: &Request,
        head: &route::Head,
        key: &ChanKey,
        variant: Variant,
        wanted: &Wanted,
        now: Instant,
    ) -> Result<Option<String>, Denied> {
        let h = self.hls.as_ref().expect("checked");
        let slot = h.sessions.get(&(key.clone(), variant));
        // The live channel's password; once it is not live, the password its session had.
        let password = match self.channels.live_password(key) {
            Some(p) => p.map(str::to_string),
            None => match slot {
                Some(s) => s.password.clone(),
                None => {
                    let m = "channel not live".to_string();
                    return Err(Denied(404, m.clone(), m));
                }
            },
        };
        let Some(pw) = password else {
            return Ok(None);
        };
        let ip: IpAddr = r.peer.ip();
        let now_ms = h.now_ms(now);
        let token = head.param("token");
        let (u, c) = (&key.0, &key.1);
        let checked = h.tokens.check(token, u, c, &pw, ip, now_ms);
        let ok = match wanted {
            Wanted::Playlist(_) => match head.password("password") {
                Some(Ok(p)) if ct_eq(p.as_bytes(), pw.as_bytes()) => Ok(()),
                Some(_) => Err("wrong channel password".to_string()),
                None => checked.map_err(|e| match e {
                    TokenError::Missing => "no channel password".to_string(),
                    e => e.message().to_string(),
                }),
            },
            Wanted::Media { .. } => checked.map_err(|e| e.message().to_string()),
        };
        match ok {
            Ok(()) => Ok(Some(h.tokens.make(u, c, &pw, ip, now_ms))),
            Err(why) => {
                let m = match wanted {
                    Wanted::Playlist(_) => "wrong channel password".to_string(),
                    Wanted::Media { .. } => why.clone(),
                };
                Err(Denied(403, m, why))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hls_serve(
        &mut self,
        r: &Request,
        head: &route::Head,
        key: ChanKey,
        variant: Variant,
        wanted: Wanted,
        file: &str,
        token: Option<String>,
        now: Instant,
    ) {
        let sk = (key.clone(), variant);
        let live = self.channels.live_password(&key).is_some();
        if let Wanted::Playlist(_) = wanted {
            let h = self.hls.as_ref().expect("checked");
            // A session of an earlier broadcast gives way to the channel's new one.
            let stale = h.sessions.get(&sk).is_some_and(|s| live && s.sub.is_none());
            if stale {
                self.hls_drop(&sk, "a new broadcast");
            }
            if !self
                .hls
                .as_ref()
                .expect("checked")
                .sessions
                .contains_key(&sk)
            {
                if let Err(Denied(status, message, why)) = self.hls_start(r, &key, variant, now) {
                    log::warn!("{}: refused: HLS of {}: {why}", r.peer, key_str(&key));
                    self.count_refused(Front::Http, Refused::from_status(status));
                    self.hls_respond(r.id, error(status, &message), now);
                    return;
                }
            }
        }
        let h = self.hls.as_mut().expect("checked");
        let Some(slot) = h.sessions.get_mut(&sk) else {
            self.hls_respond(r.id, error(404, "no such file (its session is gone)"), now);
            return;
        };
        let rel = match wanted {
            Wanted::Playlist(v) => v.playlist(),
            Wanted::Media { run, .. } if run != slot.session.run => {
                self.hls_respond(r.id, error(404, "no such file (another session's)"), now);
                return;
            }
            Wanted::Media { .. } => file,
        };
        let reply = slot.session.request(r, rel, &head.query, now);
        let t = h.totals(&key);
        match wanted {
            Wanted::Playlist(_) => t.playlists += 1,
            Wanted::Media { .. } => t.media += 1,
        }
        match reply {
            Reply::Now(resp) => {
                let resp = h.finish(&key, token.as_deref(), resp);
                self.hls_respond(r.id, resp, now);
            }
            Reply::Park => {
                h.parked.insert(r.id, Parked { key: sk, token });
            }
            Reply::Stream(resp) => self.hls_respond(r.id, resp, now),
        }
    }

    /// Starts `key`'s session in `variant`: an internal watcher of the live channel.
    fn hls_start(
        &mut self,
        r: &Request,
        key: &ChanKey,
        variant: Variant,
        now: Instant,
    ) -> Result<(), Denied> {
        let Some(password) = self.channels.live_password(key) else {
            let m = "channel not live".to_string();
            return Err(Denied(404, m.clone(), m));
        };
        let password = password.map(str::to_string);
        if self.channels.format(key) == Some(StreamFormat::Opaque) {
            let m = "channel carries opaque content, not H.264 or H.265".to_string();
            return Err(Denied(415, m.clone(), m));
        }
        let h = self.hls.as_mut().expect("checked");
        let sub = h.next_sub;
        h.next_sub += 1;
        // Unix ms at the start, made unique: part of every file name, never used again.
        let run = unix_ms().max(h.last_run + 1);
        h.last_run = run;
        let session = Session::new(&key_str(key), variant, &h.cfg, run, now);
        let res = self.channels.watch(
            sub,
            key,
            password.clone(),
            SubKind::Hls,
            r.peer,
            now,
            &mut self.fx,
        );
        if let Err(refusal) = res {
            return Err(Denied(refusal.status, refusal.message, refusal.why));
        }
        let h = self.hls.as_mut().expect("checked");
        let sk = (key.clone(), variant);
        h.by_sub.insert(sub, sk.clone());
        h.totals(key).gone_since = None;
        h.sessions.insert(
            sk,
            Slot {
                sub: Some(sub),
                session,
                password,
            },
        );
        log::info!(
            "{}: HLS of {} ({}) starts, run {run}",
            r.peer,
            key_str(key),
            variant.name()
        );
        self.apply(now);
        Ok(())
    }

    /// Drains session `sub`'s queue into it; at the end of the broadcast, ends its playlist.
    pub(in crate::relay) fn hls_flush(&mut self, sub: SubId, now: Instant) {
        let Some(h) = self.hls.as_mut() else { return };
        let Some(sk) = h.by_sub.get(&sub).cloned() else {
            self.channels.leave(sub);
            return;
        };
        let Some(slot) = h.sessions.get_mut(&sk) else {
            return;
        };
        let wall = Wall {
            unix_ms: unix_ms() as i64,
            zone_offset_ms: 0,
        };
        let mut answers = Vec::new();
        let mut ended = false;
        while let Some(s) = self.channels.sub_mut(sub) {
            let Some(q) = s.queue.as_mut() else { break };
            match q.front_bytes() {
                Some(b) => {
                    q.consume(b.len(), now);
                    answers.extend(slot.session.push(&b, wall, now));
                }
                None => {
                    if s.advance() {
                        continue;
                    }
                    ended = s.eof_after_drain;
                    break;
                }
            }
        }
        if ended {
            answers.extend(slot.session.finish(wall, now));
        }
        let stop = ended || slot.session.failed.is_some();
        if stop {
            slot.sub = None;
            h.by_sub.remove(&sub);
            self.channels.leave(sub);
            log::info!(
                "HLS of {} ({}): {}",
                key_str(&sk.0),
                sk.1.name(),
                if ended {
                    "the broadcast ended"
                } else {
                    "stopped"
                }
            );
        }
        self.hls_answers(answers, now);
    }

    /// The channels let session `sub` go (a takeover with another password, a format it cannot
    /// follow, a slow-watcher verdict): its playlist ends.
    pub(in crate::relay) fn hls_gone(&mut self, sub: SubId, why: &str) {
        let now = Instant::now();
        self.channels.leave(sub);
        let Some(h) = self.hls.as_mut() else { return };
        let Some(sk) = h.by_sub.remove(&sub) else {
            return;
        };
        let Some(slot) = h.sessions.get_mut(&sk) else {
            return;
        };
        log::info!("HLS of {} ({}): {why}", key_str(&sk.0), sk.1.name());
        slot.sub = None;
        let wall = Wall {
            unix_ms: unix_ms() as i64,
            zone_offset_ms: 0,
        };
        let answers = slot.session.finish(wall, now);
        self.hls_answers(answers, now);
    }

    /// [`Self::hls_gone`] for a refusal.
    pub(in crate::relay) fn hls_refused(&mut self, sub: SubId, r: &Refusal) {
        self.hls_gone(sub, &r.why);
    }

    /// Drops a session: out of its channel, and what waits gets 404.
    fn hls_drop(&mut self, sk: &(ChanKey, Variant), why: &str) {
        let now = Instant::now();
        let Some(h) = self.hls.as_mut() else { return };
        let Some(slot) = h.sessions.remove(sk) else {
            return;
        };
        log::info!(
            "HLS of {} ({}): dropped: {why}",
            key_str(&sk.0),
            sk.1.name()
        );
        if let Some(sub) = slot.sub {
            h.by_sub.remove(&sub);
            self.channels.leave(sub);
        }
        let h = self.hls.as_mut().expect("checked");
        let gone: Vec<ReqId> = h
            .parked
            .iter()
            .filter(|(_, p)| &p.key == sk)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            h.parked.remove(id);
        }
        for id in gone {
            self.hls_respond(id, error(404, "its session is gone"), now);
        }
    }

    /// Deadlines: parked requests that waited long enough, and sessions nobody asked for.
    pub(in crate::relay) fn hls_timers(&mut self, now: Instant) {
        let Some(h) = self.hls.as_mut() else { return };
        h.tick(now);
        let idle = h.cfg.idle;
        let mut answers = Vec::new();
        let mut drop = Vec::new();
        for (sk, slot) in h.sessions.iter_mut() {
            answers.extend(slot.session.expire(now));
            if slot.session.idle(now, idle) {
                drop.push(sk.clone());
            }
        }
        self.hls_answers(answers, now);
        for sk in drop {
            let why = format!("no request for {:.0} s", idle.as_secs_f64());
            self.hls_drop(&sk, &why);
        }
    }

    /// A parked request's connection is gone; whether it was an HLS one.
    pub(in crate::relay) fn hls_closed(&mut self, id: ReqId) -> bool {
        let Some(h) = self.hls.as_mut() else {
            return false;
        };
        let Some(p) = h.parked.remove(&id) else {
            return false;
        };
        if let Some(slot) = h.sessions.get_mut(&p.key) {
            slot.session.closed(id);
        }
        true
    }

    /// The HLS figures (`None` without `--hls`).
    pub(in crate::relay) fn hls_stats(&self, now: Instant) -> Option<Vec<HlsStats>> {
        self.hls.as_ref().map(|h| h.stats(now))
    }
}
