//! Cascading hubs, the pure parts: an edge's pulls from its origin (`serve --origin`) and a hub's
//! pushes to another hub (`serve --push-to`). When to dial, what a lost connection means, when to
//! stop. Time is an input; the hub's glue (`front/cascade.rs`) owns the sockets.
//!
//! A pull is one fstream watch of a channel on the origin, made when a local watcher asks for a
//! channel that is not live here, with that watcher's channel password. The pull is the channel's
//! broadcaster on the edge (one [`SubId`] for its whole life, across reconnects), so every local
//! watcher on every front is served from it. Its life:
//! - dialing: connecting, then waiting for the origin's first byte. The origin refuses a watcher
//!   at its handshake (a wrong channel password, its limits) by closing at once without a byte;
//!   a channel that is not live there is held, then closed after the origin's `--wait-timeout`.
//!   So a close without data within [`REFUSAL_WINDOW`] is a refusal, a later one is "not live".
//! - receiving: the first byte makes the channel live here (again, after a reconnect: the
//!   channel's takeover policy then resumes every watcher at the new stream's keyframe).
//! - lost after it was on air: the watchers stay attached while it dials again with backoff,
//!   until the origin has been gone for the give-up time (the hub's `--wait-timeout`).
//! - stopped: no local watcher for `--origin-idle` (or, before it was ever on air, none left).
//!
//! A push is one fstream broadcast of a local channel to another hub, made when the broadcast
//! starts, redialled with backoff while the broadcast lasts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::channel::{ChanKey, SubId};

/// Longest connect to the origin or a push target.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// A pull closed by the origin without a byte within this long of its handshake was refused; a
/// later close without data means the channel was not live there in time.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(2);
/// How long a refused (channel, password) is remembered: RTSP players that ask again within it
/// get the answer without another pull.
pub const REFUSAL_MEMORY: Duration = Duration::from_secs(5);
/// Pull redial delays: fast first (an origin restart takes about a second), then bounded.
const PULL_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// Push redial delays: a refused push (wrong user password at the target) is retried this often
/// at most.
const PUSH_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(10));
/// A push that was up this long starts its backoff again from the shortest delay.
const PUSH_STEADY: Duration = Duration::from_secs(10);
/// The [`SubId`]s of pulls (a channel's broadcaster on an edge) start here: above any connection
/// slot, below the HTTP range ([`super::hub`]).
pub const PULL_SUBS: SubId = usize::MAX / 4;

/// Doubling delays from `min` to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// A failure at `now`: when to try again.
    pub fn next_at(&mut self, now: Instant) -> Instant {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        now + d
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Where a pull stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    /// Connecting (`connected` false), or connected and waiting for the origin's first byte since
    /// `since`.
    Dialing { since: Instant, connected: bool },
    /// Receiving the channel.
    Receiving,
    /// Waiting to dial again.
    Backoff { until: Instant },
}

/// One channel pulled from the origin.
#[derive(Debug)]
pub struct Pull {
    pub key: ChanKey,
    /// The channel password it watches with (a local watcher's).
    pub password: Option<String>,
    /// The channel's broadcaster on this hub, for the whole life of the pull.
    pub id: SubId,
    pub state: PullState,
    /// The hub's connection slot while dialing or connected.
    pub conn: Option<usize>,
    /// The channel went live here from this pull.
    pub on_air: bool,
    /// On air, and the origin's stream stopped at this time (None while receiving).
    pub lost_since: Option<Instant>,
    /// No local watcher since then.
    idle_since: Option<Instant>,
    backoff: Backoff,
    /// Connections that resumed the channel after a loss.
    pub resumes: u64,
}

/// What a lost pull connection means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Never on air, and the origin closed it at once: it refused the channel password.
    Refused,
    /// Never on air, and the origin closed it after a while: not live there in time.
    NotLive,
    /// Dial again at this time.
    Retry(Instant),
}

/// What a pull should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Nothing,
    /// Dial the origin (the backoff is over).
    Dial,
    /// No local watcher for the idle time (or none left before it went on air).
    StopIdle,
    /// On air, but the origin has been gone for the give-up time.
    GiveUp,
}

impl Pull {
    /// A pull that dials at once.
    pub fn new(key: ChanKey, password: Option<String>, id: SubId, now: Instant) -> Pull {
        Pull {
            key,
            password,
            id,
            state: PullState::Dialing {
                since: now,
                connected: false,
            },
            conn: None,
            on_air: false,
            lost_since: None,
            idle_since: None,
            backoff: Backoff::new(PULL_BACKOFF.0, PULL_BACKOFF.1),
            resumes: 0,
        }
    }

    /// The TCP connection is up and the handshake is on its way.
    pub fn connected(&mut self, now: Instant) {
        self.state = PullState::Dialing {
            since: now,
            connected: true,
        };
    }

    /// The first bytes on this connection. True when they resume a channel that was on air.
    pub fn receiving(&mut self) -> bool {
        let resumed = self.on_air;
        self.on_air = true;
        self.state = PullState::Receiving;
        self.lost_since = None;
        self.backoff.reset();
        if resumed {
            self.resumes += 1;
        }
        resumed
    }

    /// The connection or the dial ended at `now`.
    pub fn lost(&mut self, now: Instant) -> Lost {
        self.conn = None;
        if !self.on_air {
            if let PullState::Dialing {
                since,
                connected: true,
            } = self.state
            {
                return if now.saturating_duration_since(since) < REFUSAL_WINDOW {
                    Lost::Refused
                } else {
                    Lost::NotLive
                };
            }
        } else if self.lost_since.is_none() {
            self.lost_since = Some(now);
        }
        let at = self.backoff.next_at(now);
        self.state = PullState::Backoff { until: at };
        Lost::Retry(at)
    }

    /// At `now`, with `audience` local watchers (waiting ones included), `idle` the time a pull
    /// on air outlives its last watcher and `give_up` the time its watchers wait for a lost
    /// origin.
    pub fn tick(
        &mut self,
        now: Instant,
        audience: usize,
        idle: Duration,
        give_up: Duration,
    ) -> Tick {
        if audience > 0 {
            self.idle_since = None;
        } else {
            let since = *self.idle_since.get_or_insert(now);
            if !self.on_air || now.saturating_duration_since(since) >= idle {
                return Tick::StopIdle;
            }
        }
        if self
            .lost_since
            .is_some_and(|t| now.saturating_duration_since(t) >= give_up)
        {
            return Tick::GiveUp;
        }
        match self.state {
            PullState::Backoff { until } if now >= until => {
                self.state = PullState::Dialing {
                    since: now,
                    connected: false,
                };
                Tick::Dial
            }
            _ => Tick::Nothing,
        }
    }
}

/// One local broadcast pushed to another hub.
#[derive(Debug)]
pub struct Push {
    pub key: ChanKey,
    /// The hub's connection slot while dialing or connected.
    pub conn: Option<usize>,
    /// Connected since then.
    up_since: Option<Instant>,
    /// Dial again at this time (None: dialing or connected).
    pub retry_at: Option<Instant>,
    backoff: Backoff,
    /// Connections lost so far.
    pub failures: u64,
}

impl Push {
    pub fn new(key: ChanKey) -> Push {
        Push {
            key,
            conn: None,
            up_since: None,
            retry_at: None,
            backoff: Backoff::new(PUSH_BACKOFF.0, PUSH_BACKOFF.1),
            failures: 0,
        }
    }

    pub fn connected(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// The connection or the dial ended at `now`: when to dial again.
    pub fn lost(&mut self, now: Instant) -> Instant {
        if self
            .up_since
            .take()
            .is_some_and(|t| now.saturating_duration_since(t) >= PUSH_STEADY)
        {
            self.backoff.reset();
        }
        self.conn = None;
        self.failures += 1;
        let at = self.backoff.next_at(now);
        self.retry_at = Some(at);
        at
    }

    /// Is it time to dial again? (Then it is dialing.)
    pub fn due(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            return true;
        }
        false
    }
}

/// What an outbound connection is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Pull(ChanKey),
    Push(ChanKey),
}

/// A hub's pulls and pushes.
#[derive(Debug)]
pub struct Cascade {
    /// The origin (an edge), resolved at start.
    pub origin: Option<SocketAddr>,
    /// Where local broadcasts are pushed, resolved at start.
    pub push_to: Option<SocketAddr>,
    /// How long a pull outlives its last local watcher.
    pub idle: Duration,
    /// How long the watchers of a pulled channel wait for a lost origin.
    pub give_up: Duration,
    pub pulls: HashMap<ChanKey, Pull>,
    pub pushes: HashMap<ChanKey, Push>,
    /// Outbound connection slots and what each is for.
    pub outbound: HashMap<usize, Outbound>,
    /// (channel, password) the origin refused, and when.
    refused: Vec<(ChanKey, Option<String>, Instant)>,
    next_id: SubId,
    /// The hub is stopping: nothing is dialled any more.
    pub stopped: bool,
}

impl Cascade {
    pub fn new(
        origin: Option<SocketAddr>,
        push_to: Option<SocketAddr>,
        idle: Duration,
        give_up: Duration,
    ) -> Self {
        Cascade {
            origin,
            push_to,
            idle,
            give_up,
            pulls: HashMap::new(),
            pushes: HashMap::new(),
            outbound: HashMap::new(),
            refused: Vec::new(),
            next_id: PULL_SUBS,
            stopped: false,
        }
    }

    /// A new pull's [`SubId`], never reused.
    pub fn pull_id(&mut self) -> SubId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn is_pull(id: SubId) -> bool {
        (PULL_SUBS..super::hub::HTTP_SUBS).contains(&id)
    }

    /// The pull whose broadcaster id is `id`.
    pub fn pull_by_id(&self, id: SubId) -> Option<&Pull> {
        self.pulls.values().find(|p| p.id == id)
    }

    /// The origin refused `key` with `password` at `now`.
    pub fn note_refusal(&mut self, key: &ChanKey, password: &Option<String>, now: Instant) {
        self.refused
            .retain(|r| now.saturating_duration_since(r.2) < REFUSAL_MEMORY);
        self.refused.push((key.clone(), password.clone(), now));
    }

    /// Did the origin refuse `key` with `password` within [`REFUSAL_MEMORY`]?
    pub fn was_refused(&self, key: &ChanKey, password: &Option<String>, now: Instant) -> bool {
        self.refused.iter().any(|r| {
            &r.0 == key && &r.1 == password && now.saturating_duration_since(r.2) < REFUSAL_MEMORY
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ChanKey {
        ("fier".into(), "cam".into())
    }

    const IDLE: Duration = Duration::from_secs(10);
    const GIVE_UP: Duration = Duration::from_secs(60);

    #[test]
    fn a_close_without_data_at_the_handshake_is_a_refusal_a_late_one_not_live() {
        let t0 = Instant::now();
        let mut p = Pull::new(key(), Some("pw".into()), PULL_SUBS, t0);
        p.connected(t0);
        assert_eq!(p.lost(t0 + Duration::from_millis(5)), Lost::Refused);
        let mut p = Pull::new(key(), None, PULL_SUBS, t0);
        p.connected(t0);
        assert_eq!(p.lost(t0 + Duration::from_secs(60)), Lost::NotLive);
    }

    #[test]
    fn a_failed_dial_retries_with_doubling_bounded_delays() {
        let t0 = Instant::now();
        let mut p = Pull::new(key(), None, PULL_SUBS, t0);
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..7 {
            let Lost::Retry(at) = p.lost(now) else {
                panic!("a failed dial is retried");
            };
            delays.push(at - now);
            assert_eq!(
                p.tick(at - Duration::from_millis(1), 1, IDLE, GIVE_UP),
                Tick::Nothing
            );
            assert_eq!(p.tick(at, 1, IDLE, GIVE_UP), Tick::Dial);
            now = at;
        }
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn on_air_a_loss_keeps_retrying_until_the_give_up_time_and_data_resets_the_backoff() {
        let t0 = Instant::now();
        let mut p = Pull::new(key(), None, PULL_SUBS, t0);
        p.connected(t0);
        assert!(!p.receiving(), "the first data starts the channel");
        // Lost right at the start of a connection: on air, so not a refusal.
        p.connected(t0);
        let lost_at = t0 + Duration::from_secs(5);
        assert!(matches!(p.lost(lost_at), Lost::Retry(_)));
        let mut now = lost_at;
        for _ in 0..5 {
            p.connected(now);
            now += Duration::from_millis(10);
            assert!(matches!(p.lost(now), Lost::Retry(_)));
        }
        assert_eq!(p.lost_since, Some(lost_at), "lost since the first loss");
        assert_eq!(p.tick(lost_at + GIVE_UP, 3, IDLE, GIVE_UP), Tick::GiveUp);
        // Data again before that: resumed, and the next loss starts from the shortest delay.
        p.connected(now);
        assert!(p.receiving(), "resumes");
        assert_eq!(p.resumes, 1);
        assert_eq!(p.lost_since, None);
        let Lost::Retry(at) = p.lost(now) else {
            panic!()
        };
        assert_eq!(at - now, Duration::from_millis(100));
    }

    #[test]
    fn stops_after_the_idle_time_on_air_and_at_once_before() {
        let t0 = Instant::now();
        let mut p = Pull::new(key(), None, PULL_SUBS, t0);
        assert_eq!(p.tick(t0, 0, IDLE, GIVE_UP), Tick::StopIdle, "nobody waits");
        let mut p = Pull::new(key(), None, PULL_SUBS, t0);
        p.connected(t0);
        p.receiving();
        assert_eq!(p.tick(t0, 2, IDLE, GIVE_UP), Tick::Nothing);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(p.tick(t1, 0, IDLE, GIVE_UP), Tick::Nothing, "idle from t1");
        assert_eq!(
            p.tick(t1 + IDLE / 2, 1, IDLE, GIVE_UP),
            Tick::Nothing,
            "a watcher came"
        );
        let t2 = t1 + IDLE;
        assert_eq!(
            p.tick(t2, 0, IDLE, GIVE_UP),
            Tick::Nothing,
            "idle again from t2"
        );
        assert_eq!(p.tick(t2 + IDLE, 0, IDLE, GIVE_UP), Tick::StopIdle);
    }

    #[test]
    fn a_push_backs_off_while_refused_and_starts_over_once_it_was_steady() {
        let t0 = Instant::now();
        let mut p = Push::new(key());
        let mut now = t0;
        let mut delays = Vec::new();
        for _ in 0..6 {
            p.connected(now);
            let at = p.lost(now + Duration::from_millis(1));
            delays.push((at - now).as_millis());
            assert!(!p.due(at - Duration::from_millis(1)));
            assert!(p.due(at));
            assert!(!p.due(at), "due once");
            now = at;
        }
        assert_eq!(delays, [501, 1001, 2001, 4001, 8001, 10001]);
        p.connected(now);
        let at = p.lost(now + PUSH_STEADY);
        assert_eq!(at - (now + PUSH_STEADY), Duration::from_millis(500));
        assert_eq!(p.failures, 7);
    }

    #[test]
    fn refusals_are_remembered_for_a_while_per_password() {
        let t0 = Instant::now();
        let mut c = Cascade::new(None, None, IDLE, GIVE_UP);
        c.note_refusal(&key(), &Some("a".into()), t0);
        assert!(c.was_refused(&key(), &Some("a".into()), t0 + Duration::from_secs(1)));
        assert!(!c.was_refused(&key(), &None, t0));
        assert!(!c.was_refused(&key(), &Some("a".into()), t0 + REFUSAL_MEMORY));
        let a = c.pull_id();
        let b = c.pull_id();
        assert!(a != b && Cascade::is_pull(a) && Cascade::is_pull(b));
        assert!(!Cascade::is_pull(7) && !Cascade::is_pull(super::super::hub::HTTP_SUBS));
    }
}
