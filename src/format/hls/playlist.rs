//! The media playlist (RFC 8216 section 4.3).

use std::collections::VecDeque;
use std::fmt::Write;

use super::civil_from_days;

/// One listed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// URI relative to the playlist.
    pub uri: String,
    /// Duration in seconds, from the media timestamps.
    pub duration: f64,
    /// Wall-clock time of the segment's first frame, Unix milliseconds.
    pub date_ms: i64,
    /// The segment follows a break in the source (EXT-X-DISCONTINUITY before it).
    pub discontinuity: bool,
}

/// What kind of playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// A sliding window of this many segments.
    Live { window: usize },
    /// Every segment is kept: `EXT-X-PLAYLIST-TYPE:EVENT` while live, `VOD` once ended.
    Dvr,
}

/// A media playlist being built.
#[derive(Debug, Clone)]
pub struct Playlist {
    kind: PlaylistKind,
    segments: VecDeque<Segment>,
    /// Sequence number of the first listed segment.
    media_sequence: u64,
    /// Discontinuities that left the window (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuity_sequence: u64,
    /// EXT-X-TARGETDURATION: at least the configured target, raised (never lowered) to the ceiling
    /// of the longest segment ever listed.
    target: u64,
    ended: bool,
}

impl Playlist {
    /// `target_secs` is the configured segment duration; the playlist's TARGETDURATION starts at
    /// its ceiling.
    pub fn new(kind: PlaylistKind, target_secs: f64) -> Self {
        Playlist {
            kind,
            segments: VecDeque::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            target: (target_secs.ceil() as u64).max(1),
            ended: false,
        }
    }

    /// Lists a complete segment. Returns the segments that left a live window (the caller deletes
    /// their files a little later).
    pub fn push(&mut self, seg: Segment) -> Vec<Segment> {
        // RFC 8216 4.3.3.1 wants EXTINF rounded to the nearest integer not to exceed the target;
        // like ffmpeg we use the stricter ceiling (less a millisecond of rounding noise).
        let ceil = (seg.duration - 0.001).ceil().max(1.0) as u64;
        if ceil > self.target {
            self.target = ceil;
        }
        self.segments.push_back(seg);
        let mut gone = Vec::new();
        if let PlaylistKind::Live { window } = self.kind {
            while self.segments.len() > window.max(1) {
                if let Some(s) = self.segments.pop_front() {
                    self.media_sequence += 1;
                    if s.discontinuity {
                        self.discontinuity_sequence += 1;
                    }
                    gone.push(s);
                }
            }
        }
        gone
    }

    /// The stream ended: EXT-X-ENDLIST, and a DVR playlist becomes VOD.
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn target_duration(&self) -> u64 {
        self.target
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    /// The playlist text.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(128 + self.segments.len() * 96);
        s.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target);
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                s,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        if self.kind == PlaylistKind::Dvr {
            s.push_str(if self.ended {
                "#EXT-X-PLAYLIST-TYPE:VOD\n"
            } else {
                "#EXT-X-PLAYLIST-TYPE:EVENT\n"
            });
        }
        for seg in &self.segments {
            if seg.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(
                s,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                format_date_time(seg.date_ms)
            );
            let _ = writeln!(s, "#EXTINF:{:.6},", seg.duration);
            s.push_str(&seg.uri);
            s.push('\n');
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }
}

/// ISO 8601 date-time in UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants it.
pub fn format_date_time(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(i: u32, dur: f64, disc: bool) -> Segment {
        Segment {
            uri: format!("movie-{i}.ts"),
            duration: dur,
            date_ms: 1_795_320_600_000 + i as i64 * 2000,
            discontinuity: disc,
        }
    }

    #[test]
    fn live_window_slides_and_reports_what_left() {
        let mut p = Playlist::new(PlaylistKind::Live { window: 3 }, 2.0);
        for i in 0..3 {
            assert!(p.push(seg(i, 2.0, false)).is_empty());
        }
        let gone = p.push(seg(3, 2.0, false));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].uri, "movie-0.ts");
        let text = p.render();
        assert!(text.starts_with(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
        ));
        assert!(!text.contains("movie-0.ts"));
        assert!(text.contains("#EXTINF:2.000000,\nmovie-3.ts\n"));
        assert!(!text.contains("ENDLIST"));
        assert!(!text.contains("PLAYLIST-TYPE"));
    }

    #[test]
    fn discontinuity_sequence_counts_what_left() {
        let mut p = Playlist::new(PlaylistKind::Live { window: 2 }, 2.0);
        p.push(seg(0, 2.0, false));
        p.push(seg(1, 2.0, true));
        p.push(seg(2, 2.0, false));
        assert!(p
            .render()
            .contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"));
        p.push(seg(3, 2.0, false));
        let t = p.render();
        assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{t}");
        assert!(!t.contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn dvr_is_event_then_vod() {
        let mut p = Playlist::new(PlaylistKind::Dvr, 2.0);
        for i in 0..10 {
            p.push(seg(i, 2.0, false));
        }
        let t = p.render();
        assert!(t.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert_eq!(t.matches("#EXTINF").count(), 10);
        p.end();
        let t = p.render();
        assert!(t.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(t.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn target_duration_never_below_any_rounded_extinf() {
        let mut p = Playlist::new(PlaylistKind::Dvr, 2.0);
        p.push(seg(0, 2.0004, false));
        assert_eq!(p.target_duration(), 2);
        p.push(seg(1, 4.2, false));
        assert_eq!(p.target_duration(), 5);
        p.push(seg(2, 1.0, false));
        assert_eq!(p.target_duration(), 5, "never lowered");
    }

    #[test]
    fn date_time_format() {
        assert_eq!(format_date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_date_time(1_795_320_605_250),
            "2026-11-22T04:10:05.250Z"
        );
    }
}
