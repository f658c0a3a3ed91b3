//! The hub's RTSP front, the parts without sockets: per-connection state, the per-channel RTP
//! view with its own GOP cache, and the mapping of RTSP paths to channels.
//!
//! - URL: `rtsp://HOST/<user>/<channel>`; a publisher may set the channel password with
//!   `?channel-password=…` on the ANNOUNCE URL (as HTTP push does).
//! - A publisher's RTP goes through [`FlvIngest`] into FLV bytes, which the hub broadcasts like any
//!   other publisher's (so every front can watch it).
//! - Players of a channel share one [`RtpView`]: each frame is packetized once into interleaved
//!   frames (chunks marked at video keyframes), cached from the last keyframe (late joiners start
//!   there) and queued per player with the usual slow-watcher policy.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::cache::{CacheLimits, GopCache};
use super::stream::{Chunk, Mark};
use crate::media::StreamFormat;
use crate::proto::names::{self, BadName, PasswordError};
use crate::proto::rtp::ingest::FlvIngest;
use crate::proto::rtp::view::{RtpView, ViewPacket};
use crate::proto::rtp::{MTU_TCP, MTU_UDP};
use crate::proto::rtsp::{Access, Session};
use crate::proto::util::random_u64;
use crate::relay::hooks::Call;

/// `<user>/<channel>` from an RTSP path as sent (no leading slash): split at `/`, then each name
/// decoded once and checked ([`crate::proto::names`]). `Err`: why not, one line.
pub fn parse_key(path: &str) -> Result<(String, String), String> {
    let Some((u, c)) = path.split_once('/').filter(|(_, c)| !c.contains('/')) else {
        return Err(format!(
            "path {} is not /<user>/<channel>",
            names::shown(path.as_bytes())
        ));
    };
    let user = names::decode_name(u).map_err(|e| e.message("user"))?;
    let channel = names::decode_name(c).map_err(|e| e.message("channel"))?;
    Ok((user, channel))
}

/// The user a publish to `path` names (its first segment, decoded and checked): it authenticates
/// with it before anything else of the request counts.
pub fn path_user(path: &str) -> Result<String, BadName> {
    names::decode_name(path.split('/').next().unwrap_or(""))
}

/// `channel-password=` from a URI's query, decoded and checked; `None` when absent or empty.
pub fn query_password(uri: &str) -> Option<Result<String, PasswordError>> {
    let q = uri.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or("");
    names::query_password(q, "channel-password")
        .filter(|p| p.as_ref().map_or(true, |p| !p.is_empty()))
}

pub struct Publisher {
    pub key: (String, String),
    pub ingest: FlvIngest,
}

pub struct Player {
    pub key: (String, String),
    /// UDP players: per media index, the client's RTP and RTCP addresses (empty over TCP).
    pub udp_dest: Vec<Option<(SocketAddr, SocketAddr)>>,
}

pub enum Role {
    Idle,
    Publisher(Box<Publisher>),
    Player(Box<Player>),
}

pub struct RtspConn {
    pub session: Session,
    pub role: Role,
    /// After the end of a broadcast (RTCP BYE sent): close at this time unless the player's
    /// TEARDOWN comes first.
    pub linger_until: Option<Instant>,
    /// A hook's decision, for the request the session handles again.
    pub gate: Option<Gate>,
    /// What hooks are told about this client, once it is let in (publish or play).
    pub call: Option<Call>,
    /// A request waits for an edge's pull of this channel, since then.
    pub waiting: Option<((String, String), Instant)>,
}

/// A hook's decision about a client's request for `access` to `path`, told `channel_password`:
/// it holds for that request handled again with the same (an edge's player that answers a Basic
/// challenge brings a password the hook has not seen, and is asked about again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub access: Access,
    pub path: String,
    pub channel_password: Option<String>,
    pub allowed: bool,
}

/// A channel seen as RTP, with its own GOP cache and players.
pub struct RtpChannel {
    pub view: RtpView,
    pub cache: GopCache,
    pub watchers: Vec<usize>,
    packets: Vec<ViewPacket>,
}

impl RtpChannel {
    /// `None` for opaque broadcasts. `udp`: RTP packets small enough for one datagram on an
    /// Ethernet path; over TCP they are larger (fewer interleaved frames for the same bytes).
    pub fn new(format: StreamFormat, limits: CacheLimits, udp: bool) -> Option<Self> {
        if format == StreamFormat::Opaque {
            return None;
        }
        let mtu = if udp { MTU_UDP } else { MTU_TCP };
        Some(RtpChannel {
            view: RtpView::new(Some(format), random_u64()).with_mtu(mtu),
            cache: GopCache::new(limits, true),
            watchers: Vec::new(),
            packets: Vec::new(),
        })
    }

    /// Feeds broadcast bytes (or, with `finish`, ends the broadcast) that arrived at `now` on the
    /// monotonic clock and `wall` on the wall clock (what sender reports map media time to);
    /// returns the chunks to fan out, already in the cache.
    pub fn feed(
        &mut self,
        data: &[u8],
        finish: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Chunk> {
        self.packets.clear();
        if finish {
            self.view.finish(now, wall, &mut self.packets);
        } else {
            self.view.push(data, now, wall, &mut self.packets);
        }
        let mut chunks = Vec::with_capacity(self.packets.len());
        for p in self.packets.drain(..) {
            let c = Chunk::new(
                p.data,
                if p.keyframe {
                    Mark::Keyframe
                } else {
                    Mark::Data
                },
            );
            // Sender reports are not cached: a joiner gets fresh ones first, and an old one
            // replayed after them would contradict them.
            if !p.rtcp {
                self.cache.push(&c, now);
            }
            chunks.push(c);
        }
        if finish {
            chunks.extend(
                self.view
                    .byes(wall)
                    .into_iter()
                    .map(|data: Bytes| Chunk::new(data, Mark::Data)),
            );
        }
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_passwords() {
        assert_eq!(parse_key("live/cam"), Ok(("live".into(), "cam".into())));
        assert_eq!(parse_key("live/%63am"), Ok(("live".into(), "cam".into())));
        for (path, why) in [
            ("live", "path \"live\" is not /<user>/<channel>"),
            ("live/cam/x", "is not /<user>/<channel>"),
            ("live/", "channel name \"\" is not allowed: it is empty"),
            ("../x", "user name \"..\" is not allowed"),
            (
                "live/a%2Fb",
                "channel name \"a/b\" is not allowed: '/' at byte 1",
            ),
            ("live%2Fcam", "is not /<user>/<channel>"),
            ("live/%FF", "not valid UTF-8"),
            ("live/a%0Db", "'\\r' at byte 1"),
        ] {
            let e = parse_key(path).unwrap_err();
            assert!(e.contains(why), "{path}: {e}");
        }
        assert_eq!(path_user("live/x/y").unwrap(), "live");
        assert_eq!(path_user("l%69ve/x").unwrap(), "live");
        assert!(path_user("").is_err());
        assert!(path_user("../x").is_err());
        assert_eq!(
            query_password("rtsp://h/a/b?channel-password=pw&x=1"),
            Some(Ok("pw".into()))
        );
        assert_eq!(
            query_password("rtsp://h/a/b?channel-password=p%26w"),
            Some(Ok("p&w".into()))
        );
        assert!(matches!(
            query_password("rtsp://h/a/b?channel-password=%0A"),
            Some(Err(PasswordError::Control(0)))
        ));
        assert_eq!(query_password("rtsp://h/a/b?channel-password="), None);
        assert_eq!(query_password("rtsp://h/a/b"), None);
    }

    #[test]
    fn udp_views_packetize_for_one_datagram_and_tcp_views_for_fewer_frames() {
        let flv = crate::relay::testdata::flv();
        let now = Instant::now();
        let limits = CacheLimits {
            max_bytes: 1 << 24,
            max_age: std::time::Duration::from_secs(30),
        };
        let mut sizes = Vec::new();
        for udp in [false, true] {
            let mut ch = RtpChannel::new(StreamFormat::Flv, limits, udp).unwrap();
            let wall = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_320_605);
            let mut chunks = ch.feed(&flv, false, now, wall);
            chunks.extend(ch.feed(&[], true, now, wall));
            let frames: Vec<usize> = chunks
                .iter()
                .map(|c| crate::proto::rtp::view::unframe(&c.data).unwrap().1.len())
                .collect();
            let max = *frames.iter().max().unwrap();
            if udp {
                // RTP header (12) + payload: one Ethernet-sized datagram.
                assert!(max <= 12 + MTU_UDP, "{max}");
            }
            sizes.push((frames.len(), max));
        }
        assert!(sizes[1].0 > sizes[0].0, "{sizes:?}");
        assert!(sizes[0].1 > MTU_UDP + 12, "{sizes:?}");
    }
}
