//! The reactor: one mio `Poll`, its events, a waker for other threads, and timers.
//!
//! [`Timers`] is pure (deadlines in, due keys out, the time passed in) and lazy: a cancelled or
//! moved deadline is not removed from the heap; its owner compares the key's current deadline when
//! it comes due and ignores a stale one. That keeps setting a deadline O(log n) with no handle to
//! keep.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token, Waker};

/// Deadlines keyed by a `usize` (a connection slot, a listener), earliest first.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Timers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes `key` at `at` (as well as at any deadline it already has).
    pub fn at(&mut self, at: Instant, key: usize) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Moves every key due at `now` into `out` (in deadline order; a key may appear twice).
    pub fn due(&mut self, now: Instant, out: &mut Vec<usize>) {
        while let Some(Reverse((t, k))) = self.heap.peek().copied() {
            if t > now {
                break;
            }
            self.heap.pop();
            out.push(k);
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// How long to wait in `poll` for the next deadline: none means `cap`, a past one means zero.
pub fn wait_for(next: Option<Instant>, now: Instant, cap: Duration) -> Duration {
    next.map_or(cap, |t| t.saturating_duration_since(now).min(cap))
}

/// A mio `Poll` with its event buffer and a waker on [`Reactor::WAKER`].
pub struct Reactor {
    poll: Poll,
    pub events: Events,
    waker: Arc<Waker>,
}

impl Reactor {
    /// The token the waker fires on; callers number their own tokens from 1.
    pub const WAKER: Token = Token(0);

    pub fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), Self::WAKER)?);
        Ok(Reactor {
            poll,
            events: Events::with_capacity(1024),
            waker,
        })
    }

    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// A handle another thread uses to wake this reactor.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Waits for events until `deadline` (or `cap` at most); EINTR is an empty wake. Returns the
    /// time after the wait, the one clock reading the caller uses for this turn.
    pub fn poll(&mut self, deadline: Option<Instant>, cap: Duration) -> io::Result<Instant> {
        let timeout = wait_for(deadline, Instant::now(), cap);
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(e),
        }
        Ok(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_due_in_order() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Timers::new();
        t.at(t0 + 3 * s, 3);
        t.at(t0 + s, 1);
        t.at(t0 + 2 * s, 2);
        assert_eq!(t.next(), Some(t0 + s));
        let mut out = Vec::new();
        t.due(t0, &mut out);
        assert!(out.is_empty());
        t.due(t0 + 2 * s, &mut out);
        assert_eq!(out, [1, 2]);
        assert_eq!(t.len(), 1);
        t.due(t0 + 10 * s, &mut out);
        assert_eq!(out, [1, 2, 3]);
        assert!(t.is_empty());
    }

    #[test]
    fn wait_is_capped_and_never_negative() {
        let t0 = Instant::now();
        let cap = Duration::from_millis(100);
        assert_eq!(wait_for(None, t0, cap), cap);
        assert_eq!(wait_for(Some(t0 + Duration::from_secs(5)), t0, cap), cap);
        assert_eq!(
            wait_for(Some(t0 + Duration::from_millis(7)), t0, cap),
            Duration::from_millis(7)
        );
        assert_eq!(wait_for(Some(t0), t0 + cap, cap), Duration::ZERO);
    }

    #[test]
    fn the_waker_wakes_a_poll() {
        let mut r = Reactor::new().unwrap();
        let w = r.waker();
        std::thread::spawn(move || w.wake().unwrap());
        let t = Instant::now();
        loop {
            r.poll(None, Duration::from_secs(5)).unwrap();
            if r.events.iter().any(|e| e.token() == Reactor::WAKER) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "no wake");
        }
    }
}
