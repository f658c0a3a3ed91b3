//! DVR retention (`--keep`, `--max-size`): which of an archive's oldest segments leave its
//! playlist, and which files that already left must go before their grace period ends. Pure: the
//! caller passes what is listed, what is on disk, and the wall clock.
//!
//! Rules:
//! - **Oldest first, never the newest.** Only a prefix of the listed segments leaves, and the
//!   newest complete segment always stays, so the playlist always has something to play. The
//!   segment being written is not listed yet, so it is never a candidate.
//! - **Age** (`keep_ms`): a segment leaves once it ended (EXT-X-PROGRAM-DATE-TIME plus EXTINF)
//!   more than `keep_ms` before the edge: the end of the newest listed segment, or the wall clock
//!   when that is later (an archive picked up after a pause ages by the pause). The archive
//!   then covers between `keep_ms` and `keep_ms` plus one segment.
//! - **Size** (`max_bytes`): the files on disk (listed segments, init segments and parts in use,
//!   and the files that left the playlist and wait out their grace period, during which a player
//!   that loaded an older playlist may still fetch them) stay within `max_bytes`. The listed
//!   segments are kept within `max_bytes` less the files in use besides them, less a reserve for
//!   the grace period: the bytes of the newest segments spanning it (the same bitrate is assumed).
//!   When that estimate falls short (the bitrate went up), [`to_expire`] ends the grace of the
//!   oldest leavers early rather than go over.

/// `--keep` and `--max-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Milliseconds of wall clock (EXT-X-PROGRAM-DATE-TIME) to keep.
    pub keep_ms: Option<i64>,
    /// Bytes on disk at most.
    pub max_bytes: Option<u64>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.keep_ms.is_some() || self.max_bytes.is_some()
    }
}

/// A listed segment as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Held {
    /// Its file's size.
    pub bytes: u64,
    /// EXTINF, seconds.
    pub duration: f64,
    /// EXT-X-PROGRAM-DATE-TIME, Unix ms.
    pub date_ms: i64,
}

impl Held {
    fn end_ms(&self) -> i64 {
        self.date_ms + (self.duration * 1000.0).round() as i64
    }
}

/// How many of the oldest `listed` segments (oldest first) leave the playlist now.
///
/// `other_bytes`: the files in use besides the listed segments (init segments, listed parts);
/// `grace_secs`: how long a segment's file stays after it leaves; `now_ms`: the wall clock.
pub fn to_drop(
    listed: &[Held],
    other_bytes: u64,
    grace_secs: f64,
    now_ms: i64,
    limits: &Limits,
) -> usize {
    if listed.len() < 2 {
        return 0;
    }
    let last = listed.len() - 1;
    let mut drop = 0;
    if let Some(keep) = limits.keep_ms {
        let edge = listed.iter().map(Held::end_ms).max().unwrap_or(now_ms);
        let edge = edge.max(now_ms);
        while drop < last && listed[drop].end_ms() < edge.saturating_sub(keep) {
            drop += 1;
        }
    }
    if let Some(max) = limits.max_bytes {
        // The reserve: the newest segments that span the grace period (at least one).
        let mut reserve = 0u64;
        let mut spanned = 0.0;
        for h in listed.iter().rev() {
            reserve = reserve.saturating_add(h.bytes);
            spanned += h.duration;
            if spanned >= grace_secs {
                break;
            }
        }
        let budget = max.saturating_sub(other_bytes).saturating_sub(reserve);
        let mut kept: u64 = listed[drop..].iter().map(|h| h.bytes).sum();
        while drop < last && kept > budget {
            kept -= listed[drop].bytes;
            drop += 1;
        }
    }
    drop
}

/// How many of the oldest files waiting out their grace period (`pending`, oldest first, their
/// sizes) go now so that the `on_disk` bytes fit within `--max-size`.
pub fn to_expire(on_disk: u64, pending: impl IntoIterator<Item = u64>, limits: &Limits) -> usize {
    let Some(max) = limits.max_bytes else {
        return 0;
    };
    let mut total = on_disk;
    let mut n = 0;
    for b in pending {
        if total <= max {
            break;
        }
        total = total.saturating_sub(b);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` segments of 2 s and `bytes` each, the first dated `t0`.
    fn archive(n: usize, bytes: u64, t0: i64) -> Vec<Held> {
        (0..n)
            .map(|i| Held {
                bytes,
                duration: 2.0,
                date_ms: t0 + 2000 * i as i64,
            })
            .collect()
    }

    const T0: i64 = 1_795_320_600_000;

    #[test]
    fn nothing_without_limits() {
        let a = archive(100, 1000, T0);
        assert_eq!(to_drop(&a, 0, 8.0, T0 * 2, &Limits::default()), 0);
        assert_eq!(to_expire(u64::MAX, [1, 2, 3], &Limits::default()), 0);
    }

    #[test]
    fn keep_drops_what_ended_before_the_window() {
        // 60 segments: 0..120 s. Keep 60 s: the edge is 120 s, so segments ending before 60 s
        // (the first 29, ending at 2..58 s) go; the one ending at exactly 60 s stays.
        let a = archive(60, 1000, T0);
        let keep = Limits {
            keep_ms: Some(60_000),
            max_bytes: None,
        };
        assert_eq!(to_drop(&a, 0, 8.0, T0, &keep), 29);
        let left: f64 = a[29..].iter().map(|h| h.duration).sum();
        assert!((60.0..=62.0).contains(&left), "{left}");
        // A wall clock ahead of the archive ages it further: 10 s later, 5 more go.
        assert_eq!(to_drop(&a, 0, 8.0, T0 + 130_000, &keep), 34);
    }

    #[test]
    fn an_old_archive_keeps_only_its_newest_segment() {
        let a = archive(10, 1000, T0);
        let keep = Limits {
            keep_ms: Some(60_000),
            max_bytes: None,
        };
        assert_eq!(to_drop(&a, 0, 8.0, T0 + 86_400_000, &keep), 9);
        assert_eq!(to_drop(&a[..1], 0, 8.0, T0 + 86_400_000, &keep), 0);
        assert_eq!(to_drop(&[], 0, 8.0, T0, &keep), 0);
    }

    #[test]
    fn size_keeps_room_for_the_grace_period_and_the_files_in_use() {
        // 100 segments of 1000 bytes; 10 000 bytes allowed, 500 of them in init segments; the
        // grace period spans 8 s = 4 segments = 4000 bytes. Listed: at most 5500 bytes, 5
        // segments.
        let a = archive(100, 1000, T0);
        let max = Limits {
            keep_ms: None,
            max_bytes: Some(10_000),
        };
        assert_eq!(to_drop(&a, 500, 8.0, T0, &max), 95);
        // Within the budget: nothing.
        assert_eq!(to_drop(&a[95..], 500, 8.0, T0, &max), 0);
        // A reserve or files in use past the limit still leave the newest segment.
        assert_eq!(to_drop(&a, 20_000, 8.0, T0, &max), 99);
        let huge = [Held {
            bytes: 50_000,
            duration: 2.0,
            date_ms: T0,
        }; 3];
        assert_eq!(to_drop(&huge, 0, 8.0, T0, &max), 2);
    }

    #[test]
    fn the_stricter_limit_wins() {
        let a = archive(100, 1000, T0);
        let both = |keep, bytes| Limits {
            keep_ms: Some(keep),
            max_bytes: Some(bytes),
        };
        // Age keeps 31 segments, size 16: size wins.
        assert_eq!(to_drop(&a, 0, 8.0, T0, &both(60_000, 20_000)), 84);
        // Age keeps 31, size 96: age wins.
        assert_eq!(to_drop(&a, 0, 8.0, T0, &both(60_000, 100_000)), 69);
    }

    #[test]
    fn expire_ends_the_oldest_grace_periods_until_it_fits() {
        let max = Limits {
            keep_ms: None,
            max_bytes: Some(10_000),
        };
        assert_eq!(to_expire(9_000, [1000, 1000], &max), 0);
        assert_eq!(to_expire(10_000, [1000, 1000], &max), 0);
        assert_eq!(to_expire(10_500, [300, 300, 300], &max), 2);
        // Not enough waiting: all of it, and the listed files are the caller's floor.
        assert_eq!(to_expire(20_000, [300, 300], &max), 2);
    }
}
