//! The RTMP front: [`ServerSession`]s driven on the hub's loop. A publish becomes FLV for its
//! channel ([`FlvSplice`]); a play reads the watcher's FLV queue back into RTMP messages, only
//! while the session's own output is small, so the queue's slow-watcher policy applies to RTMP
//! players as to any other.

use crate::relay::metrics::Refused;
use std::cmp::Reverse;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::channel::{key_str, ChanKey, SubKind};
use super::super::hooks::{Call, Hook};
use super::super::hub::{Conn, Front, Hub, State};
use super::super::prechunk::{is_config, whole_tag, PlayerChunks, RtmpMsg, CHUNK_SIZE};
use super::super::stream::{HeaderKind, Mark};
use super::hooks::{Then, Waiter, Who};
use crate::format::flv::{FlvEvent, FlvReader, TagKind};
use crate::net::Outbox;
use crate::proto::names;
use crate::proto::rtmp::policy::{Access, Connect, PublishState, Refusal, Stream};
use crate::proto::rtmp::{unannounced_codec, FlvSplice, ServerConfig, ServerEvent, ServerSession};

/// An RTMP player gets more of its queue (moved to its outbox, shared, not copied) only when its
/// outbox is empty, at most this much at a time.
const LOW_WATER: usize = 256 * 1024;
/// A player's media waits for its merge window only while less than this is queued: more goes
/// out at once (a join's GOP, a broadcast faster than real time).
const MERGE_BYTES: usize = 64 * 1024;
/// How often RTMP players are pinged (they send nothing otherwise).
const PING: Duration = Duration::from_secs(10);

/// The RTMP part of a connection.
pub(in crate::relay) struct RtmpSide {
    pub session: ServerSession,
    /// What the connect named: the user (its `app`) and its query, where passwords may go.
    connect: Connect,
    /// The Enhanced RTMP `fourCcList` the connect announced (`None`: none; the player gets
    /// whatever the channel carries, as ffmpeg 6.1+ expects).
    fourcc_list: Option<Vec<String>>,
    /// The stream being published or played.
    stream_id: Option<u32>,
    /// A play waiting for `accept_play`/`reject_play`.
    play_pending: bool,
    /// Publish: the RTMP → FLV writer.
    splice: FlvSplice,
    /// Play: what the player was last sent on each media chunk stream.
    chunks: PlayerChunks,
    /// Play: an FLV reader for queued bytes that are not one tag each (the rare stream that
    /// stopped being FLV).
    reader: FlvReader,
    tags: Vec<FlvEvent>,
    /// Play: the first media timestamp (rebased to 0 for the player).
    base: Option<u32>,
    /// Play: the last media timestamp sent, and whether the watcher's queue was just replaced by
    /// the next stream's (a takeover).
    last_sent: Option<u32>,
    continuing: bool,
    last_ping: Instant,
    /// Play: media goes out no sooner than this (the merge window after the last write), and
    /// whether the hub holds a wake-up for it.
    write_at: Instant,
    wake_set: bool,
    /// Close once the session's output is written.
    close_after: bool,
}

impl RtmpSide {
    pub fn new(now: Instant) -> Box<Self> {
        Box::new(RtmpSide {
            session: ServerSession::new(
                ServerConfig {
                    // Players send nothing: they are pinged, and a dead one shows as a write
                    // error or a full queue.
                    idle_timeout: None,
                    ..ServerConfig::default()
                },
                now,
                crate::proto::util::random_u64(),
            ),
            connect: Connect::default(),
            fourcc_list: None,
            stream_id: None,
            play_pending: false,
            splice: FlvSplice::new(),
            chunks: PlayerChunks::default(),
            reader: FlvReader::new(),
            tags: Vec::new(),
            base: None,
            last_sent: None,
            continuing: false,
            last_ping: now,
            write_at: now,
            wake_set: false,
            close_after: false,
        })
    }
}

impl RtmpSide {
    /// One FLV tag of the player's queue (`msg`: the channel's shared message for it) into
    /// `out`: a video codec the player did not announce ends the play; the timestamp is rebased
    /// to the player's first frame.
    #[allow(clippy::too_many_arguments)]
    fn play_tag(
        &mut self,
        kind: TagKind,
        timestamp: u32,
        body: &Bytes,
        msg: Option<&RtmpMsg>,
        sid: u32,
        peer: &std::net::SocketAddr,
        out: &mut Outbox,
    ) {
        if self.close_after {
            return;
        }
        // A player that announced its codecs gets no video it did not name. A live channel's
        // codec was checked before the play started; one that came later (the player waited for
        // the broadcast) ends the play here, at its first tag (the sequence start, which the
        // queue sends before any frame), with NetStream.Play.Failed naming the codec.
        let refused = match (&self.fourcc_list, kind) {
            (Some(list), TagKind::Video) => codec_refusal(list, body),
            _ => None,
        };
        if let Some(why) = refused {
            log::warn!("{peer}: refused: RTMP player: {why}");
            let _ = self.session.fail_play(sid, &format!("river-relay: {why}"));
            self.close_after = true;
            return;
        }
        let media = matches!(kind, TagKind::Audio | TagKind::Video);
        let config = msg.map_or_else(|| is_config(kind, body), |m| m.seq_header);
        let frame = media && !config;
        if frame && self.base.is_none() {
            self.base = Some(timestamp);
        }
        // After a takeover an FLV broadcast continues its timeline (the channel restamps it); a
        // converted one starts again: then it continues after the last sent.
        if frame && self.continuing {
            self.continuing = false;
            if let (Some(b), Some(last)) = (self.base, self.last_sent) {
                if timestamp.wrapping_sub(b) as i32 <= last as i32 {
                    self.base = Some(timestamp.wrapping_sub(last.wrapping_add(1)));
                }
            }
        }
        let ts = self.base.map_or(0, |b| timestamp.wrapping_sub(b));
        let ts = if (ts as i32) < 0 { 0 } else { ts };
        if frame {
            self.last_sent = Some(ts);
        }
        let size = self.session.out_chunk_size();
        match msg {
            Some(m) if size == CHUNK_SIZE => {
                let o = self.chunks.send(m, ts, sid);
                if let Some(h) = o.head {
                    out.push_always(h);
                }
                out.push_always(o.body);
            }
            _ => {
                if let Some(b) = self.chunks.alone(kind, ts, sid, body, size) {
                    out.push_always(b);
                }
            }
        }
    }
}

impl Hub {
    pub(in crate::relay) fn on_rtmp_data(&mut self, idx: usize, data: &[u8], now: Instant) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if matches!(c.state, State::Closing) {
            return;
        }
        let Some(r) = c.rtmp.as_mut() else { return };
        if let Err(e) = r.session.push(data, now) {
            // What the session answered before it gave up (the error status of a command it
            // could not read) goes out, then the connection closes.
            log::warn!("{}: refused: RTMP: {e}", c.peer);
            r.close_after = true;
            c.state = State::Closing;
            self.count_refused(Front::Rtmp, Refused::Protocol);
            self.channels.leave(idx);
            self.flush(idx, now);
            return;
        }
        self.rtmp_events(idx, now);
        self.flush(idx, now);
    }

    /// Acts on the session's events, up to one that waits for a hook.
    pub(in crate::relay) fn rtmp_events(&mut self, idx: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) else {
                return;
            };
            if c.hook.is_some() {
                return;
            }
            let (peer, id) = (c.peer, c.id);
            let Some(r) = c.rtmp.as_mut() else { return };
            let Some(ev) = r.session.poll_event() else {
                return;
            };
            match ev {
                ServerEvent::Connect {
                    app,
                    tc_url,
                    fourcc_list,
                    ..
                } => {
                    // The hub serves any application (its users); the user is checked at publish.
                    r.connect = Connect::parse(&app, tc_url.as_deref());
                    r.fourcc_list = fourcc_list;
                    if let Err(e) = r.session.accept_connect() {
                        self.close(idx, Some(&format!("RTMP: {e}")));
                        return;
                    }
                }
                ServerEvent::Publish {
                    stream_id,
                    stream_key,
                    query,
                    ..
                } => {
                    let s = Stream::new(&r.connect, &stream_key, &query);
                    let st = PublishState {
                        conn_busy: !matches!(c.state, State::RtmpIdle),
                        ..Default::default()
                    };
                    // (log line, what the client is told)
                    let res = self.rtmp_publish_check(&s, st);
                    if res.is_err() {
                        self.count_refused(Front::Rtmp, Refused::Auth);
                    }
                    let Some(c) = self.conns[idx].as_mut() else {
                        return;
                    };
                    let Some(r) = c.rtmp.as_mut() else { return };
                    let (key, cpw) = match res {
                        Ok(x) => x,
                        Err((why, told)) => {
                            log::warn!(
                                "{peer}: refused: RTMP broadcaster for {}: {why}",
                                s.label()
                            );
                            let _ = r.session.reject_publish(
                                stream_id,
                                "NetStream.Publish.BadName",
                                &format!("river-relay: {told}"),
                            );
                            r.close_after = true;
                            c.state = State::Closing;
                            continue;
                        }
                    };
                    r.stream_id = Some(stream_id);
                    let call = Call {
                        id,
                        protocol: "rtmp",
                        user: key.0.clone(),
                        channel: key.1.clone(),
                        remote_addr: peer,
                        query: rtmp_query(&s),
                        user_password: s.user_password().ok().filter(|p| !p.is_empty()),
                        channel_password: cpw.clone(),
                    };
                    let then = Then::RtmpPublish {
                        stream_id,
                        key,
                        password: cpw,
                    };
                    let who = Who::Conn { idx, id };
                    self.ask_hook(Hook::Publish, Waiter { who, then, call }, now);
                }
                ServerEvent::Metadata { body, .. } => {
                    let State::Publisher(p) = &c.state else {
                        continue;
                    };
                    let key = p.key.clone();
                    r.splice.metadata(&body);
                    let b = r.splice.take();
                    self.broadcast_data(&key, &b, now);
                }
                ServerEvent::Media {
                    kind,
                    timestamp,
                    body,
                    ..
                } => {
                    let State::Publisher(p) = &c.state else {
                        continue;
                    };
                    let key = p.key.clone();
                    if let Some(note) = r.splice.media(kind, timestamp, &body) {
                        log::info!("{peer}: {}: {note}", key_str(&key));
                    }
                    let b = r.splice.take();
                    if !b.is_empty() {
                        self.broadcast_data(&key, &b, now);
                    }
                }
                ServerEvent::Unpublish { .. } => {
                    if let State::Publisher(p) = &c.state {
                        let key = p.key.clone();
                        r.close_after = true;
                        log::info!("{peer}: RTMP publish of {} ended", key_str(&key));
                        self.end_broadcast(&key, now, "end of broadcast");
                    }
                }
                ServerEvent::Play {
                    stream_id,
                    stream_name,
                    query,
                    ..
                } => {
                    let s = Stream::new(&r.connect, &stream_name, &query);
                    r.stream_id = Some(stream_id);
                    r.play_pending = true;
                    let busy = !matches!(c.state, State::RtmpIdle);
                    let n = match Access::hub().play(&s, busy) {
                        Ok(n) => n,
                        Err(refusal) => {
                            let reason = match refusal {
                                Refusal::Busy => Refused::Protocol,
                                _ => Refused::Auth,
                            };
                            let why = format!("RTMP player of {}: {refusal}", s.label());
                            self.refuse(idx, reason, &why, None);
                            return;
                        }
                    };
                    let key = (n.app, n.name);
                    let cpw = match s.channel_password() {
                        None => None,
                        Some(Ok(p)) => Some(p),
                        // Told apart from a wrong password only in the log.
                        Some(Err(e)) => {
                            self.count_refused(Front::Rtmp, Refused::Auth);
                            let k = key_str(&key);
                            log::warn!("{peer}: refused: watcher of {k}: channel password: {e}");
                            let told = format!("watcher of {k}: wrong channel password");
                            self.rtmp_refuse(idx, &told);
                            return;
                        }
                    };
                    let call = Call {
                        id,
                        protocol: "rtmp",
                        user: key.0.clone(),
                        channel: key.1.clone(),
                        remote_addr: peer,
                        query: rtmp_query(&s),
                        user_password: None,
                        channel_password: cpw.clone(),
                    };
                    let then = Then::RtmpPlay { key, password: cpw };
                    let who = Who::Conn { idx, id };
                    self.ask_hook(Hook::Play, Waiter { who, then, call }, now);
                }
                ServerEvent::PlayStop { .. } => {
                    r.close_after = true;
                }
                ServerEvent::Closed => return,
            }
        }
    }

    /// The publish hook (if set) decided about the publish on `stream_id`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::relay) fn rtmp_publish_decided(
        &mut self,
        idx: usize,
        stream_id: u32,
        key: ChanKey,
        password: Option<String>,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        let peer = c.peer;
        let Some(r) = c.rtmp.as_mut() else { return };
        if let Err(why) = v {
            log::warn!(
                "{peer}: refused: RTMP broadcaster for {}: {why}",
                key_str(&key)
            );
            let _ = r.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "river-relay: refused by the publish hook",
            );
            r.close_after = true;
            c.state = State::Closing;
            self.count_refused(Front::Rtmp, Refused::Auth);
            return;
        }
        if let Err(e) = r.session.accept_publish(stream_id) {
            self.close(idx, Some(&format!("RTMP: {e}")));
            return;
        }
        self.start_broadcast(idx, key.clone(), password, now);
        self.hook_published(&key, call, now);
    }

    /// The play hook (if set) decided about the pending play.
    pub(in crate::relay) fn rtmp_play_decided(
        &mut self,
        idx: usize,
        key: ChanKey,
        password: Option<String>,
        call: Call,
        v: Result<(), String>,
        now: Instant,
    ) {
        if let Err(why) = v {
            let Some(peer) = self.conns[idx].as_ref().map(|c| c.peer) else {
                return;
            };
            self.count_refused(Front::Rtmp, Refused::Auth);
            log::warn!("{peer}: refused: RTMP player of {}: {why}", key_str(&key));
            let told = "refused by the play hook";
            self.rtmp_refuse_as(idx, "NetStream.Play.Failed", told);
            return;
        }
        self.start_watcher(idx, key, password, SubKind::Rtmp, now);
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if !matches!(c.state, State::Watcher(_)) {
            return;
        }
        let Some(r) = c.rtmp.as_mut() else { return };
        let Some(stream_id) = r.stream_id else { return };
        // A live channel's video is known from the sequence start the join queued: a player that
        // did not name its codec is refused now, before NetStream.Play.Start.
        let refusal = match (&r.fourcc_list, self.channels.sub_mut(idx)) {
            (Some(list), Some(s)) => s.queue.as_ref().and_then(|q| queued_refusal(list, q)),
            _ => None,
        };
        if let Some(why) = refusal {
            log::warn!("{}: refused: RTMP player: {why}", c.peer);
            self.rtmp_refuse_as(idx, "NetStream.Play.Failed", &why);
            return;
        }
        r.play_pending = false;
        if let Err(e) = r.session.accept_play(stream_id) {
            self.close(idx, Some(&format!("RTMP: {e}")));
            return;
        }
        self.hook_playing(idx, call, now);
    }

    /// A publish, in this order: the user (the application) authenticates with its password
    /// before anything else counts, so a client without it is told only that; then one publish per
    /// connection, the channel name, the channel password. `Ok`: the channel and its password;
    /// `Err`: (what to log, what to tell the client).
    fn rtmp_publish_check(
        &mut self,
        s: &Stream,
        st: PublishState<'_>,
    ) -> Result<(ChanKey, Option<String>), (String, String)> {
        let auth = match (names::decode_name(&s.app), s.user_password()) {
            (Err(e), _) => Err(e.message("user")),
            (Ok(_), Err(e)) => Err(format!("user password: {e}")),
            (Ok(user), Ok(pw)) => self.check_user(&user, &pw),
        };
        if let Err(why) = auth {
            return Err((why, "wrong user password or unknown user".into()));
        }
        let n = Access::hub()
            .publish(s, st)
            .map_err(|r| (r.to_string(), r.to_string()))?;
        let cpw = match s.channel_password() {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                let m = format!("channel password not allowed: {e}");
                return Err((m.clone(), m));
            }
        };
        Ok(((n.app, n.name), cpw))
    }

    /// Refuses an RTMP client: a pending play gets `NetStream.Play.StreamNotFound` with `why`;
    /// the connection closes once that is written.
    pub(in crate::relay) fn rtmp_refuse(&mut self, idx: usize, why: &str) {
        self.rtmp_refuse_as(idx, "NetStream.Play.StreamNotFound", why);
    }

    /// [`Self::rtmp_refuse`] with another status `code` for a pending play.
    fn rtmp_refuse_as(&mut self, idx: usize, code: &str, why: &str) {
        let Some(c) = self.conns[idx].as_mut() else {
            return;
        };
        if let Some(r) = c.rtmp.as_mut() {
            if r.play_pending {
                r.play_pending = false;
                if let Some(sid) = r.stream_id {
                    let d = format!("river-relay: {why}");
                    let _ = r.session.reject_play_as(sid, code, &d);
                }
            }
            r.close_after = true;
        }
        c.state = State::Closing;
        self.channels.leave(idx);
        self.flush(idx, Instant::now());
    }

    /// Writes the session's output and, for players, the watcher queue's tags as RTMP messages
    /// (the channel's shared chunks, [`crate::relay::prechunk`]), taken from the queue only while
    /// the connection's outbox is empty, so the queue's slow-watcher policy applies.
    pub(in crate::relay) fn flush_rtmp(&mut self, idx: usize, now: Instant) {
        loop {
            let Some(Conn {
                io,
                state,
                rtmp,
                peer,
                ..
            }) = self.conns.get_mut(idx).and_then(|c| c.as_mut())
            else {
                return;
            };
            let Some(r) = rtmp.as_mut() else { return };
            if !r.session.pending_output().is_empty() {
                // After the messages already queued (whole messages both). The session may have
                // written on the data chunk stream: the player's next media message on each
                // chunk stream starts with a full header.
                io.out.push_always(Bytes::from(r.session.take_output()));
                r.chunks.forget();
            }
            if !io.out.is_empty() {
                match io.flush() {
                    Ok(w) if w.drained => {}
                    Ok(_) => return,
                    Err(e) => {
                        let why = format!("write error: {e}");
                        self.close(idx, Some(&why));
                        return;
                    }
                }
            }
            if r.close_after || matches!(state, State::Closing) {
                io.shutdown_write();
                self.close(idx, None);
                return;
            }
            let State::Watcher(_) = state else { return };
            let Some(sid) = r.stream_id else { return };
            if r.play_pending {
                return;
            }
            let Some(s) = self.channels.sub_mut(idx) else {
                return;
            };
            let Some(q) = s.queue.as_mut() else { return };
            if q.is_empty() {
                if s.advance() {
                    r.continuing = true;
                    continue;
                }
                if s.eof_after_drain {
                    let _ = r.session.end_play(sid);
                    r.close_after = true;
                    continue;
                }
                return;
            }
            // Little queued and written not long ago: wait, so what comes meanwhile goes out in
            // the same write (a write costs the kernel about as much for 100 bytes as for 10
            // KiB, and every player is written for every message otherwise).
            // The channel does not list it for a flush meanwhile (each message would).
            if r.write_at > now && q.bytes() < MERGE_BYTES {
                if !r.wake_set {
                    r.wake_set = true;
                    self.rtmp_wake.push(Reverse((r.write_at, idx)));
                }
                self.channels.flush_later(idx);
                return;
            }
            let playing = r.session.is_playing(sid);
            let mut moved = 0;
            while moved < LOW_WATER {
                let Some((data, mark, msg)) = q.front_chunk() else {
                    break;
                };
                let n = data.len();
                if playing && !r.close_after && mark != Mark::Header(HeaderKind::FlvFile) {
                    match (msg, whole_tag(data)) {
                        (Some(m), _) => r.play_tag(
                            m.kind,
                            m.timestamp,
                            &m.body,
                            Some(m),
                            sid,
                            peer,
                            &mut io.out,
                        ),
                        (None, Some(t)) => {
                            r.play_tag(t.kind, t.timestamp, &t.body, None, sid, peer, &mut io.out)
                        }
                        // Not one tag (a stream that stopped being FLV): read as FLV.
                        (None, None) => {
                            let mut tags = std::mem::take(&mut r.tags);
                            r.reader.push(data, &mut tags);
                            for ev in tags.drain(..) {
                                if let FlvEvent::Tag(t) = ev {
                                    r.play_tag(
                                        t.kind,
                                        t.timestamp,
                                        &t.body,
                                        None,
                                        sid,
                                        peer,
                                        &mut io.out,
                                    );
                                }
                            }
                            r.tags = tags;
                        }
                    }
                }
                q.consume(n, now);
                moved += n;
            }
            if moved > 0 {
                r.session.media_sent_elsewhere();
                r.write_at = next_tick(self.start, now, self.cfg.rtmp_merge);
            }
        }
    }

    /// Flushes the RTMP players whose merge window has passed.
    pub(in crate::relay) fn rtmp_merged(&mut self, now: Instant) {
        while let Some(&Reverse((t, idx))) = self.rtmp_wake.peek() {
            if t > now {
                return;
            }
            self.rtmp_wake.pop();
            // The slot may hold another connection by now: a flush does no harm.
            if let Some(r) = self.conns.get_mut(idx).and_then(|c| c.as_mut()) {
                if let Some(r) = r.rtmp.as_mut() {
                    r.wake_set = false;
                }
            }
            self.channels.flushed(idx);
            self.flush(idx, now);
        }
    }

    /// Session deadlines (handshake) and player pings.
    pub(in crate::relay) fn rtmp_timers(&mut self, now: Instant) {
        let mut fail = Vec::new();
        let mut flush = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            let Some(c) = c else { continue };
            let Some(r) = c.rtmp.as_mut() else { continue };
            if r.session.poll_deadline().is_some_and(|d| now >= d) {
                if let Err(e) = r.session.handle_timeout(now) {
                    fail.push((i, format!("RTMP: {e}")));
                    continue;
                }
            }
            if matches!(c.state, State::Watcher(_)) && now.duration_since(r.last_ping) >= PING {
                r.last_ping = now;
                r.session
                    .send_ping(now.duration_since(self.start).as_millis() as u32);
                flush.push(i);
            }
        }
        // A handshake or connect not done in time is refused as an fstream handshake is.
        for (i, why) in fail {
            self.refuse(i, Refused::Timeout, &why, None);
        }
        for i in flush {
            self.flush(i, now);
        }
    }
}

/// The first multiple of `period` after `start` that is later than `now` (`now` for a zero
/// period): every RTMP player's merge window ends on the same ticks, so the hub wakes once per
/// tick for all of them, not once per player, and a player is written at most once per tick (as
/// well as when 64 KiB or more is queued).
pub(in crate::relay) fn next_tick(start: Instant, now: Instant, period: Duration) -> Instant {
    if period.is_zero() {
        return now;
    }
    let p = period.as_nanos();
    let k = now.saturating_duration_since(start).as_nanos() / p + 1;
    start + Duration::from_nanos(u64::try_from(k * p).unwrap_or(u64::MAX))
}

/// A publish's or play's query as a hook is told it: the connect URL's and the stream name's,
/// joined with `&` (connect first); `None` when both are empty.
fn rtmp_query(s: &Stream) -> Option<String> {
    let q: Vec<&str> = [s.connect_query.as_str(), s.query.as_str()]
        .into_iter()
        .filter(|q| !q.is_empty())
        .collect();
    (!q.is_empty()).then(|| q.join("&"))
}

/// Why a player whose connect named `list` may not have this video tag: its codec is not named.
fn codec_refusal(list: &[String], body: &bytes::Bytes) -> Option<String> {
    let (fourcc, name) = unannounced_codec(list, body)?;
    Some(format!(
        "the stream's video is {name} ({fourcc}), which this player's fourCcList [{}] does not name; play it over http-ts or RTSP, or with a player that decodes {fourcc}",
        list.join(",")
    ))
}

/// [`codec_refusal`] of the first video tag in a watcher's queued FLV (its join: the file header,
/// metadata and sequence starts come first); `None` when no video tag is queued yet.
fn queued_refusal(list: &[String], q: &crate::relay::queue::WatcherQueue) -> Option<String> {
    let mut slices = Vec::new();
    q.fill_iovecs(&mut slices, 8);
    let mut reader = FlvReader::new();
    let mut tags = Vec::new();
    for s in &slices {
        reader.push(s, &mut tags);
        for ev in tags.drain(..) {
            if let FlvEvent::Tag(t) = ev {
                if t.kind == TagKind::Video {
                    return codec_refusal(list, &t.body);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_windows_end_on_shared_ticks() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let p = ms(100);
        assert_eq!(next_tick(t0, t0, p), t0 + p);
        assert_eq!(next_tick(t0, t0 + ms(30), p), t0 + p);
        assert_eq!(next_tick(t0, t0 + ms(100), p), t0 + ms(200));
        assert_eq!(next_tick(t0, t0 + ms(199), p), t0 + ms(200));
        // Days later, still on the grid.
        let d = Duration::from_secs(86_400 * 60);
        assert_eq!(next_tick(t0, t0 + d + ms(5), ms(1)), t0 + d + ms(6));
        assert_eq!(next_tick(t0, t0 + ms(7), Duration::ZERO), t0 + ms(7));
    }
}
