//! Serving a live HLS playlist from memory: every river HLS server's playlist answers, LL-HLS
//! blocking reload and preload-hint requests, and the one Cache-Control rule.
//!
//! The producer (river-hls-seg's writer; the hub's HLS sessions, `relay::hls`) owns the
//! [`Playlist`](crate::format::hls::Playlist) and calls [`Live::publish`] after each change and
//! [`Live::part`] with each LL-HLS part. The HTTP threads answer from the latest [`Live`]
//! snapshot: a request that must wait (`_HLS_msn`/`_HLS_part` for something not there yet, or
//! the part EXT-X-PRELOAD-HINT names) is parked ([`Reply::Park`]) and costs no thread; it is
//! answered by the producer's next publish that satisfies it, or with 503 by its server thread's
//! timer after three target durations ([`Handler::expire`](super::server::Handler::expire)).
//! The decisions themselves are [`crate::format::hls::ll`]'s.
//!
//! Cache-Control ([`cache_control`]):
//!
//! | response | Cache-Control |
//! |---|---|
//! | classic live playlist | `max-age` = half the target duration, rounded down |
//! | LL-HLS playlist without directives | `max-age=0` (at most one part target) |
//! | playlist with `_HLS_msn`/`_HLS_part`/`_HLS_skip` | `max-age` = one target duration: the query is part of a cache's key |
//! | playlist after EXT-X-ENDLIST | `max-age=86400` (a restarted stream rewrites it) |
//! | init segments, segments, parts | `max-age=31536000, immutable` (names are never reused) |

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::run::Completer;
use super::server::{Body, Reply, ReqId, Request, Response};
use crate::format::hls::ll::{self, Decision, Directives};
use crate::format::hls::{Edge, Playlist};

/// What a response is, for [`cache_control`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// A playlist: LL-HLS or classic, ended or live, asked for with directives or not.
    Playlist {
        low_latency: bool,
        ended: bool,
        directives: bool,
        target: u64,
    },
    /// An init segment, a media segment or a part: never rewritten under its name.
    Media,
}

/// The Cache-Control of every river HLS response (see the module docs).
pub fn cache_control(what: Cached) -> String {
    match what {
        Cached::Media => "public, max-age=31536000, immutable".to_string(),
        Cached::Playlist { ended: true, .. } => "public, max-age=86400".to_string(),
        Cached::Playlist {
            directives: true,
            target,
            ..
        } => format!("public, max-age={target}"),
        Cached::Playlist {
            low_latency: true, ..
        } => "public, max-age=0".to_string(),
        Cached::Playlist { target, .. } => format!("public, max-age={}", target / 2),
    }
}

/// How many recent parts are kept in memory to answer from (more than three target durations'
/// worth at 0.2 s parts and 6 s targets is 90; parts older than that are read from the store).
const RECENT_PARTS: usize = 128;

/// How many recent whole files (segments and init segments) are kept in memory: the producer
/// hands each one over before it writes it to disk, and publishes the playlist that lists it
/// before the write too, so the disk never delays the live edge; a file is served from here
/// until it has surely reached the disk. Three segments, and at most [`RECENT_FILE_BYTES`].
const RECENT_FILES: usize = 4;
const RECENT_FILE_BYTES: usize = 64 << 20;

/// The playlist as last published.
struct Snapshot {
    edge: Edge,
    full: Bytes,
    delta: Bytes,
    hint: Option<String>,
}

/// What a parked request waits for.
#[derive(Debug, Clone)]
enum Wait {
    Playlist {
        msn: u64,
        part: Option<u64>,
        skip: bool,
        directives: bool,
    },
    Part(String),
}

struct Waiter {
    id: ReqId,
    deadline: Instant,
    what: Wait,
}

#[derive(Default)]
struct State {
    snapshot: Option<Snapshot>,
    parts: VecDeque<(String, Bytes)>,
    files: VecDeque<(String, Bytes)>,
    /// Parked requests, by the server thread that holds them.
    waiters: Vec<Vec<Waiter>>,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Requests parked (blocking reload or preload hint).
    pub parked: u64,
    /// Answered 503 after waiting three target durations.
    pub timed_out: u64,
    /// Refused with 400 (bad directives, too far ahead).
    pub refused: u64,
}

/// One live playlist being served; see the module docs.
pub struct Live {
    /// The playlist's path under the served directory (`NAME.m3u8`).
    name: String,
    /// Distinguishes this run's entity tags from an earlier run's.
    run: u64,
    state: Mutex<State>,
    stats: Mutex<LiveStats>,
    completer: OnceLock<Completer>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("name", &self.name).finish()
    }
}

impl Live {
    /// Serves the playlist `name` (its path under the served directory); `run` goes into the
    /// entity tags (the start time will do).
    pub fn new(name: &str, run: u64) -> Arc<Live> {
        Arc::new(Live {
            name: name.to_string(),
            run,
            state: Mutex::new(State::default()),
            stats: Mutex::new(LiveStats::default()),
            completer: OnceLock::new(),
        })
    }

    /// The server's completer, for answering parked requests from the producer's thread.
    pub fn set_completer(&self, c: Completer) {
        let _ = self.completer.set(c);
    }

    pub fn stats(&self) -> LiveStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn complete(&self, answers: Vec<(ReqId, Response)>) {
        if let Some(c) = self.completer.get() {
            for (id, r) in answers {
                c.complete(id, r);
            }
        }
    }

    /// The playlist changed: it is rendered once (whole, and as a delta update in LL-HLS), and
    /// the parked requests it satisfies are answered.
    pub fn publish(&self, playlist: &Playlist) {
        let answers = self.publish_answers(playlist);
        self.complete(answers);
    }

    /// [`Self::publish`], returning the answers for the caller to send (a server embedded in the
    /// producer's own loop, such as the hub's, has no [`Completer`]).
    pub fn publish_answers(&self, playlist: &Playlist) -> Vec<(ReqId, Response)> {
        let edge = playlist.edge();
        let full = Bytes::from(playlist.render(false));
        let delta = if edge.low_latency && !edge.ended {
            Bytes::from(playlist.render(true))
        } else {
            full.clone()
        };
        let hint = playlist.hint().map(str::to_string);
        let mut answers = Vec::new();
        {
            let mut st = self.lock();
            st.snapshot = Some(Snapshot {
                edge,
                full,
                delta,
                hint,
            });
            let State {
                snapshot,
                parts,
                waiters,
                ..
            } = &mut *st;
            let snap = snapshot.as_ref().expect("just set");
            for list in waiters.iter_mut() {
                let mut i = 0;
                while i < list.len() {
                    let answer = match &list[i].what {
                        Wait::Playlist {
                            msn,
                            part,
                            skip,
                            directives,
                        } => ll::ready(&snap.edge, *msn, *part)
                            .then(|| self.playlist_response(snap, *skip, *directives)),
                        Wait::Part(uri) => {
                            if snap.hint.as_deref() == Some(uri.as_str()) {
                                None
                            } else if let Some((_, data)) = parts.iter().find(|(u, _)| u == uri) {
                                Some(part_response(data.clone()))
                            } else {
                                // The hint moved on without this part (the stream ended).
                                Some(not_found())
                            }
                        }
                    };
                    match answer {
                        Some(r) => answers.push((list.swap_remove(i).id, r)),
                        None => i += 1,
                    }
                }
            }
        }
        answers
    }

    /// A part is complete: kept in memory for a while, and the requests parked on it (the
    /// preload hint) are answered.
    pub fn part(&self, uri: &str, data: Bytes) {
        let answers = self.part_answers(uri, data);
        self.complete(answers);
    }

    /// [`Self::part`], returning the answers for the caller to send.
    pub fn part_answers(&self, uri: &str, data: Bytes) -> Vec<(ReqId, Response)> {
        let mut answers = Vec::new();
        {
            let mut st = self.lock();
            if st.parts.len() >= RECENT_PARTS {
                st.parts.pop_front();
            }
            st.parts.push_back((uri.to_string(), data.clone()));
            for list in st.waiters.iter_mut() {
                let mut i = 0;
                while i < list.len() {
                    if matches!(&list[i].what, Wait::Part(u) if u == uri) {
                        answers.push((list.swap_remove(i).id, part_response(data.clone())));
                    } else {
                        i += 1;
                    }
                }
            }
        }
        answers
    }

    /// Whether a playlist was published (before that a playlist request is answered 404).
    pub fn published(&self) -> bool {
        self.lock().snapshot.is_some()
    }

    /// Requests parked now, on every server thread.
    pub fn parked(&self) -> usize {
        self.lock().waiters.iter().map(Vec::len).sum()
    }

    /// A whole segment or init segment, about to be written to disk: served from memory while it
    /// is among the most recent.
    pub fn file(&self, uri: &str, data: Bytes) {
        let mut st = self.lock();
        st.files.push_back((uri.to_string(), data));
        while st.files.len() > RECENT_FILES
            || (st.files.len() > 1
                && st.files.iter().map(|(_, d)| d.len()).sum::<usize>() > RECENT_FILE_BYTES)
        {
            st.files.pop_front();
        }
    }

    fn playlist_response(&self, snap: &Snapshot, skip: bool, directives: bool) -> Response {
        let e = &snap.edge;
        let body = if skip {
            snap.delta.clone()
        } else {
            snap.full.clone()
        };
        let mut r = Response::new(200, Body::Bytes(body))
            .field("Content-Type", "application/vnd.apple.mpegurl")
            .field(
                "Cache-Control",
                cache_control(Cached::Playlist {
                    low_latency: e.low_latency,
                    ended: e.ended,
                    directives,
                    target: e.target.unwrap_or(1),
                }),
            );
        r.etag = Some(format!(
            "\"{:x}-{}{}\"",
            self.run,
            e.version,
            if skip { "d" } else { "" }
        ));
        r
    }

    /// Answers a GET/HEAD for `rel` (a path under the served directory, `query` its query string
    /// without `?`) when it is the playlist, a recent part, or the part the preload hint names;
    /// `None` for everything else (the caller serves files).
    pub fn request(&self, req: &Request, rel: &Path, query: &str, now: Instant) -> Option<Reply> {
        let rel = rel.to_str()?;
        if rel == self.name {
            return Some(self.playlist_request(req, query, now));
        }
        let mut st = self.lock();
        if let Some((_, data)) = st.parts.iter().find(|(u, _)| u == rel) {
            return Some(Reply::Now(part_response(data.clone())));
        }
        if let Some((_, data)) = st.files.iter().find(|(u, _)| u == rel) {
            let mut r = Response::new(200, Body::Bytes(data.clone()))
                .field("Content-Type", super::mime::content_type(Path::new(rel)))
                .field("Cache-Control", cache_control(Cached::Media));
            r.ranges = true;
            return Some(Reply::Now(r));
        }
        let snap = st.snapshot.as_ref()?;
        if snap.hint.as_deref() != Some(rel) {
            return None;
        }
        let deadline = now + Duration::from_secs(ll::blocking_limit_secs(&snap.edge));
        self.park(
            &mut st,
            Waiter {
                id: req.id,
                deadline,
                what: Wait::Part(rel.to_string()),
            },
        );
        Some(Reply::Park)
    }

    fn park(&self, st: &mut State, w: Waiter) {
        let server = w.id.server as usize;
        if st.waiters.len() <= server {
            st.waiters.resize_with(server + 1, Vec::new);
        }
        st.waiters[server].push(w);
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).parked += 1;
    }

    fn playlist_request(&self, req: &Request, query: &str, now: Instant) -> Reply {
        let d = match Directives::parse(query) {
            Ok(d) => d,
            Err(why) => return self.refuse(why),
        };
        let mut st = self.lock();
        let Some(snap) = st.snapshot.as_ref() else {
            return Reply::Now(
                Response::text(404, "404 Not Found: no segment yet\n")
                    .field("Cache-Control", "no-cache"),
            );
        };
        match ll::decide(&snap.edge, &d) {
            Decision::Now { skip } => Reply::Now(self.playlist_response(snap, skip, d.any())),
            Decision::Refuse(why) => {
                drop(st);
                self.refuse(why)
            }
            Decision::Wait { msn, part, skip } => {
                let deadline = now + Duration::from_secs(ll::blocking_limit_secs(&snap.edge));
                self.park(
                    &mut st,
                    Waiter {
                        id: req.id,
                        deadline,
                        what: Wait::Playlist {
                            msn,
                            part,
                            skip,
                            directives: true,
                        },
                    },
                );
                Reply::Park
            }
        }
    }

    fn refuse(&self, why: &str) -> Reply {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).refused += 1;
        Reply::Now(
            Response::text(400, format!("400 Bad Request: {why}\n"))
                .field("Cache-Control", "no-cache"),
        )
    }

    /// A parked request's connection is gone.
    pub fn closed(&self, id: ReqId) {
        let mut st = self.lock();
        if let Some(list) = st.waiters.get_mut(id.server as usize) {
            list.retain(|w| w.id != id);
        }
    }

    /// The earliest deadline of the requests parked on server thread `server`.
    pub fn deadline(&self, server: u32) -> Option<Instant> {
        let st = self.lock();
        st.waiters
            .get(server as usize)?
            .iter()
            .map(|w| w.deadline)
            .min()
    }

    /// 503 for the requests parked on `server` that waited three target durations (RFC 8216bis
    /// 6.2.5.2).
    pub fn expire(&self, server: u32, now: Instant) -> Vec<(ReqId, Response)> {
        let mut st = self.lock();
        let Some(list) = st.waiters.get_mut(server as usize) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < list.len() {
            if list[i].deadline <= now {
                let w = list.swap_remove(i);
                out.push((
                    w.id,
                    Response::text(
                        503,
                        "503 Service Unavailable: not there after three target durations\n",
                    )
                    .field("Cache-Control", "no-cache")
                    .field("Retry-After", "1"),
                ));
            } else {
                i += 1;
            }
        }
        drop(st);
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .timed_out += out.len() as u64;
        out
    }
}

fn part_response(data: Bytes) -> Response {
    let mut r = Response::new(200, Body::Bytes(data))
        .field("Content-Type", "video/iso.segment")
        .field("Cache-Control", cache_control(Cached::Media));
    r.ranges = true;
    r
}

fn not_found() -> Response {
    Response::text(404, "404 Not Found: that part was not made\n")
        .field("Cache-Control", "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_follows_the_table() {
        let pl = |low_latency, ended, directives, target| {
            cache_control(Cached::Playlist {
                low_latency,
                ended,
                directives,
                target,
            })
        };
        assert_eq!(pl(false, false, false, 2), "public, max-age=1");
        assert_eq!(pl(false, false, false, 6), "public, max-age=3");
        assert_eq!(pl(true, false, false, 2), "public, max-age=0");
        assert_eq!(pl(true, false, true, 2), "public, max-age=2");
        assert_eq!(pl(true, true, true, 2), "public, max-age=86400");
        assert_eq!(pl(false, true, false, 2), "public, max-age=86400");
        assert_eq!(
            cache_control(Cached::Media),
            "public, max-age=31536000, immutable"
        );
    }
}
