//! [`HlsOut`](super::HlsOut)'s side of DVR retention: a ledger of the files it asked the caller
//! to store and has not yet removed, with their sizes, and the calls into the pure rules of
//! [`crate::format::hls::retention`]. Also what a restart needs: an earlier run's archive
//! ([`Resume`]) narrowed to what is still on disk.

use std::collections::{HashMap, VecDeque};

use crate::format::hls::retention::{self, Held, Limits};
use crate::format::hls::{Archive, Playlist, Segment};

/// An earlier run's archive, as the caller read it back, and the sizes of its files that exist
/// (segments, init segments, parts; a URI missing here is missing on disk).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub archive: Archive,
    pub sizes: HashMap<String, u64>,
}

/// What [`Resume::usable`] keeps.
pub(super) struct Usable {
    /// The segments to list again.
    pub segments: Vec<Segment>,
    /// Their first one's media sequence number, and the discontinuity sequence before it.
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// Listed segments dropped because their file (or their init segment), or a later one's,
    /// is gone; and those segments.
    pub missing: usize,
    pub lost: Vec<Segment>,
}

impl Resume {
    /// The longest run of newest segments whose files (and init segments) all exist: the
    /// segments before a missing one are dropped with it, so every kept segment keeps its media
    /// sequence number (RFC 8216 6.2.2). Old files deleted by hand are the usual cause.
    pub(super) fn usable(&self) -> Usable {
        let a = &self.archive;
        let present = |s: &Segment| {
            self.sizes.contains_key(&s.uri)
                && s.map.as_ref().is_none_or(|m| self.sizes.contains_key(&**m))
        };
        let start = a
            .segments
            .iter()
            .rposition(|s| !present(s))
            .map_or(0, |i| i + 1);
        let lost = &a.segments[..start];
        Usable {
            segments: a.segments[start..].to_vec(),
            media_sequence: a.media_sequence + start as u64,
            discontinuity_sequence: a.discontinuity_sequence
                + lost.iter().filter(|s| s.discontinuity).count() as u64,
            missing: start,
            lost: lost.to_vec(),
        }
    }
}

/// The ledger and the limits.
pub(super) struct Retainer {
    limits: Limits,
    sizes: HashMap<String, u64>,
    on_disk: u64,
}

impl Retainer {
    pub fn new(limits: Limits) -> Self {
        Retainer {
            limits,
            sizes: HashMap::new(),
            on_disk: 0,
        }
    }

    /// A file was stored (or replaced).
    pub fn stored(&mut self, uri: &str, bytes: u64) {
        if let Some(old) = self.sizes.insert(uri.to_string(), bytes) {
            self.on_disk -= old;
        }
        self.on_disk += bytes;
    }

    /// A file was removed.
    pub fn removed(&mut self, uri: &str) {
        if let Some(b) = self.sizes.remove(uri) {
            self.on_disk -= b;
        }
    }

    fn size(&self, uri: &str) -> u64 {
        self.sizes.get(uri).copied().unwrap_or(0)
    }

    /// The bytes of every file stored and not removed.
    pub fn on_disk(&self) -> u64 {
        self.on_disk
    }

    /// How many of the oldest listed segments leave now; `pending`: the files waiting out
    /// their grace period of `grace_secs`.
    pub fn to_drop(
        &self,
        playlist: &Playlist,
        pending: &VecDeque<(f64, String)>,
        grace_secs: f64,
        now_ms: i64,
    ) -> usize {
        let listed: Vec<Held> = playlist
            .segments()
            .map(|s| Held {
                bytes: self.size(&s.uri),
                duration: s.duration,
                date_ms: s.date_ms,
            })
            .collect();
        let listed_bytes: u64 = listed.iter().map(|h| h.bytes).sum();
        let pending_bytes: u64 = pending.iter().map(|(_, u)| self.size(u)).sum();
        let other = self
            .on_disk
            .saturating_sub(listed_bytes)
            .saturating_sub(pending_bytes);
        retention::to_drop(&listed, other, grace_secs, now_ms, &self.limits)
    }

    /// How many of the oldest `pending` files go now, before their grace period ends, so that
    /// what is on disk fits.
    pub fn to_expire(&self, pending: &VecDeque<(f64, String)>) -> usize {
        retention::to_expire(
            self.on_disk,
            pending.iter().map(|(_, u)| self.size(u)),
            &self.limits,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn seg(i: u64, disc: bool, map: &str) -> Segment {
        Segment {
            uri: format!("s{i}.m4s"),
            duration: 2.0,
            date_ms: 1_000_000 + 2000 * i as i64,
            discontinuity: disc,
            map: Some(Arc::from(map)),
            parts: Vec::new(),
        }
    }

    #[test]
    fn usable_keeps_the_newest_run_whose_files_exist() {
        let archive = Archive {
            target: 2,
            media_sequence: 10,
            discontinuity_sequence: 1,
            segments: vec![
                seg(0, false, "a.mp4"),
                seg(1, true, "b.mp4"),
                seg(2, false, "b.mp4"),
                seg(3, true, "c.mp4"),
                seg(4, false, "c.mp4"),
            ],
            parts: Vec::new(),
            ended: true,
        };
        let all: HashMap<String, u64> = ["s0.m4s", "s1.m4s", "s2.m4s", "s3.m4s", "s4.m4s"]
            .iter()
            .chain(&["a.mp4", "b.mp4", "c.mp4"])
            .map(|u| (u.to_string(), 100))
            .collect();
        let r = Resume {
            archive: archive.clone(),
            sizes: all.clone(),
        };
        let u = r.usable();
        assert_eq!((u.segments.len(), u.media_sequence, u.missing), (5, 10, 0));
        assert_eq!(u.discontinuity_sequence, 1);
        // s1 deleted by hand: s0 and s1 go; one discontinuity (s1's) left with them.
        let mut sizes = all.clone();
        sizes.remove("s1.m4s");
        let u = Resume {
            archive: archive.clone(),
            sizes,
        }
        .usable();
        assert_eq!((u.segments.len(), u.media_sequence, u.missing), (3, 12, 2));
        assert_eq!(u.discontinuity_sequence, 2);
        assert_eq!(u.segments[0].uri, "s2.m4s");
        // An init segment gone takes its segments (and all before them) along.
        let mut sizes = all;
        sizes.remove("c.mp4");
        let u = Resume { archive, sizes }.usable();
        assert!(u.segments.is_empty());
        assert_eq!(
            (u.media_sequence, u.discontinuity_sequence, u.missing),
            (15, 3, 5)
        );
    }

    #[test]
    fn ledger_counts_what_is_on_disk() {
        let mut r = Retainer::new(Limits {
            keep_ms: None,
            max_bytes: Some(1000),
        });
        r.stored("a", 300);
        r.stored("b", 400);
        r.stored("a", 350);
        assert_eq!(r.on_disk(), 750);
        r.removed("a");
        r.removed("a");
        r.removed("never");
        assert_eq!(r.on_disk(), 400);
        r.stored("c", 700);
        let pending: VecDeque<(f64, String)> = [(1.0, "b".to_string())].into();
        assert_eq!(r.to_expire(&pending), 1);
    }
}
