//! The media playlist (RFC 8216 4.3, RFC 8216bis 4.4 for LL-HLS).
//!
//! Tags, in the order they are written:
//!
//! ```text
//! #EXTM3U
//! #EXT-X-VERSION                3 (MPEG-TS), 6 (fMP4: EXT-X-MAP), 9 (LL-HLS: EXT-X-SKIP)
//! #EXT-X-TARGETDURATION         fixed before the first segment is listed, never changed
//! #EXT-X-SERVER-CONTROL         LL-HLS: CAN-BLOCK-RELOAD, CAN-SKIP-UNTIL (6 targets),
//!                               PART-HOLD-BACK (3 part targets)
//! #EXT-X-PART-INF               LL-HLS: PART-TARGET
//! #EXT-X-MEDIA-SEQUENCE
//! #EXT-X-DISCONTINUITY-SEQUENCE when a discontinuity left the window
//! #EXT-X-PLAYLIST-TYPE          DVR: EVENT while live, VOD at the end (not with retention)
//! #EXT-X-SKIP                   a delta update: the segments it replaces
//! then per segment: EXT-X-DISCONTINUITY, EXT-X-MAP (when it changes), EXT-X-PROGRAM-DATE-TIME,
//! its EXT-X-PARTs (near the live edge), EXTINF and the URI; the parts of the segment in
//! progress; EXT-X-PRELOAD-HINT for the next part; EXT-X-ENDLIST at the end.
//! ```
//!
//! Parts are listed only for the segments within three target durations of the end (RFC 8216bis
//! 6.2.2), and not at all once the playlist has ended: a DVR playlist keeps every segment and
//! lists parts only at its live edge. A DVR archive with retention ([`PlaylistKind::Archive`])
//! loses its oldest segments when the caller drops them ([`Playlist::drop_oldest`]), so it is a
//! sliding window without EXT-X-PLAYLIST-TYPE, as RFC 8216 6.2.1 requires (an EVENT playlist may
//! only grow). A playlist can be picked up again from what an earlier run listed
//! ([`Playlist::resume`]).

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Arc;

use super::{civil_from_days, days_from_civil};

/// One listed part (LL-HLS).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub uri: String,
    /// Seconds.
    pub duration: f64,
    /// It starts with a keyframe.
    pub independent: bool,
}

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
    /// The init segment (EXT-X-MAP) of an fMP4 segment.
    pub map: Option<Arc<str>>,
    /// Its parts, while it is near the live edge (LL-HLS).
    pub parts: Vec<Part>,
}

/// The segment in progress (LL-HLS): what is known of it, and its parts so far.
#[derive(Debug, Clone, PartialEq)]
struct Open {
    date_ms: i64,
    discontinuity: bool,
    map: Option<Arc<str>>,
    parts: Vec<Part>,
}

/// What kind of playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistKind {
    /// A sliding window of this many segments.
    Live { window: usize },
    /// Every segment is kept: `EXT-X-PLAYLIST-TYPE:EVENT` while live, `VOD` once ended.
    Dvr,
    /// A DVR archive with retention: every segment until the caller drops the oldest
    /// ([`Playlist::drop_oldest`]); no EXT-X-PLAYLIST-TYPE, EXT-X-ENDLIST at the end.
    Archive,
}

impl PlaylistKind {
    /// Segments stay until the caller drops them (DVR, with or without retention).
    pub fn archive(self) -> bool {
        matches!(self, PlaylistKind::Dvr | PlaylistKind::Archive)
    }
}

/// What the blocking-reload and delta-update rules need to know of a playlist: a small copy
/// for the HTTP side ([`super::ll`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Parts, blocking reload and delta updates are offered.
    pub low_latency: bool,
    pub ended: bool,
    /// EXT-X-TARGETDURATION (seconds), once fixed.
    pub target: Option<u64>,
    /// PART-TARGET (seconds), once fixed.
    pub part_target: Option<f64>,
    /// The media sequence number the next complete segment gets (the one in progress).
    pub next_msn: u64,
    /// Parts of the segment in progress so far.
    pub open_parts: u64,
    /// Parts of the last complete segment, when it lists them.
    pub last_parts: Option<u64>,
    /// Bumped on every change (for entity tags).
    pub version: u64,
}

/// A media playlist being built.
#[derive(Debug, Clone)]
pub struct Playlist {
    kind: PlaylistKind,
    fmp4: bool,
    low_latency: bool,
    segments: VecDeque<Segment>,
    /// Sequence number of the first listed segment.
    media_sequence: u64,
    /// Discontinuities that left the window (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuity_sequence: u64,
    /// EXT-X-TARGETDURATION, set once before the first segment is listed.
    target: Option<u64>,
    /// Picked up from an earlier run: the first [`Playlist::set_target`] may still raise the
    /// target to what this run needs.
    resumed: bool,
    /// PART-TARGET in seconds (LL-HLS), set once.
    part_target: Option<f64>,
    open: Option<Open>,
    hint: Option<String>,
    ended: bool,
    version: u64,
    /// DVR: the text of the leading segments that can no longer change (no parts listed), how
    /// many, and the EXT-X-MAP in force after them. A DVR playlist only grows, so this saves
    /// rendering hours of segments again for every part.
    settled: String,
    settled_count: usize,
    settled_map: Option<Arc<str>>,
}

impl Playlist {
    /// A playlist of MPEG-TS (`fmp4` false) or fMP4 segments; `low_latency` lists parts and
    /// offers blocking reload and delta updates (fMP4 only).
    pub fn new(kind: PlaylistKind, fmp4: bool, low_latency: bool) -> Self {
        Playlist {
            kind,
            fmp4,
            low_latency: low_latency && fmp4,
            segments: VecDeque::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            target: None,
            resumed: false,
            part_target: None,
            open: None,
            hint: None,
            ended: false,
            version: 0,
            settled: String::new(),
            settled_count: 0,
            settled_map: None,
        }
    }

    /// Fixes EXT-X-TARGETDURATION (seconds); later calls change nothing (RFC 8216 6.2.1: it
    /// never changes). After [`Playlist::resume`] the first call may raise the earlier run's
    /// target (never lower it: its segments were measured against it), once, when this run's
    /// segments need more.
    pub fn set_target(&mut self, secs: u64) {
        if std::mem::take(&mut self.resumed) {
            self.target = Some(self.target.unwrap_or(1).max(secs));
        }
        if self.target.is_none() {
            self.target = Some(secs.max(1));
        }
    }

    /// Lists what an earlier run listed: its `segments` (without parts), numbered from
    /// `media_sequence`, with its DISCONTINUITY-SEQUENCE and target duration. The playlist is
    /// live again (no EXT-X-ENDLIST) and the next segment pushed continues the numbering.
    pub fn resume(
        &mut self,
        target: u64,
        media_sequence: u64,
        discontinuity_sequence: u64,
        segments: impl IntoIterator<Item = Segment>,
    ) {
        self.segments = segments
            .into_iter()
            .map(|mut s| {
                s.parts.clear();
                s
            })
            .collect();
        self.media_sequence = media_sequence;
        self.discontinuity_sequence = discontinuity_sequence;
        self.target = Some(target.max(1));
        self.resumed = true;
        self.open = None;
        self.hint = None;
        self.ended = false;
        self.version += 1;
        self.resettle();
    }

    /// Drops the `n` oldest segments (at most all but the newest), as a live window does when
    /// they scroll out: MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE advance. Returns them, and the
    /// URIs of their parts that were listed.
    pub fn drop_oldest(&mut self, n: usize) -> (Vec<Segment>, Vec<String>) {
        let n = n.min(self.segments.len().saturating_sub(1));
        let mut gone = Vec::with_capacity(n);
        for _ in 0..n {
            if let Some(s) = self.segments.pop_front() {
                self.media_sequence += 1;
                if s.discontinuity {
                    self.discontinuity_sequence += 1;
                }
                gone.push(s);
            }
        }
        let parts = gone
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.parts))
            .map(|p| p.uri)
            .collect();
        if n > 0 {
            self.version += 1;
            self.resettle();
        }
        (gone, parts)
    }

    /// Renders the settled text again from the first segment (its EXT-X-MAP is written anew).
    fn resettle(&mut self) {
        self.settled.clear();
        self.settled_count = 0;
        self.settled_map = None;
        self.settle();
    }

    /// Fixes PART-TARGET (seconds); later calls change nothing.
    pub fn set_part_target(&mut self, secs: f64) {
        if self.part_target.is_none() {
            self.part_target = Some(secs);
        }
    }

    pub fn target_duration(&self) -> Option<u64> {
        self.target
    }

    pub fn low_latency(&self) -> bool {
        self.low_latency
    }

    /// A segment begins (LL-HLS: its parts are listed as they come).
    pub fn open(&mut self, date_ms: i64, discontinuity: bool, map: Option<Arc<str>>) {
        if self.low_latency {
            self.open = Some(Open {
                date_ms,
                discontinuity,
                map,
                parts: Vec::new(),
            });
        }
    }

    /// A part of the segment in progress is complete (LL-HLS); `hint` is the URI of the next.
    pub fn push_part(&mut self, part: Part, hint: Option<String>) {
        if let Some(o) = &mut self.open {
            o.parts.push(part);
            self.hint = hint;
            self.version += 1;
        }
    }

    /// Lists a complete segment; in LL-HLS its parts are those of the segment in progress.
    /// Returns the segments that left a live window, and the URIs of the parts no longer listed
    /// (the caller deletes their files a little later).
    pub fn push(&mut self, mut seg: Segment) -> (Vec<Segment>, Vec<String>) {
        if let Some(o) = self.open.take() {
            seg.parts = o.parts;
        }
        self.segments.push_back(seg);
        self.version += 1;
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
        let mut parts: Vec<String> = gone
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.parts))
            .map(|p| p.uri)
            .collect();
        self.trim_parts(&mut parts);
        self.settle();
        (gone, parts)
    }

    /// DVR: renders the segments that no longer list parts into the settled text.
    fn settle(&mut self) {
        if !self.kind.archive() {
            return;
        }
        let mut map = self.settled_map.take();
        while let Some(seg) = self.segments.get(self.settled_count) {
            if !seg.parts.is_empty() {
                break;
            }
            {
                let mut m = map.as_deref();
                render_segment(&mut self.settled, seg, &mut m);
            }
            if seg.map.is_some() {
                map = seg.map.clone();
            }
            self.settled_count += 1;
        }
        self.settled_map = map;
    }

    /// Drops the parts of the segments more than three target durations from the end.
    fn trim_parts(&mut self, removed: &mut Vec<String>) {
        let keep = 3.0 * self.target.unwrap_or(1) as f64;
        let mut from_end = 0.0;
        for s in self.segments.iter_mut().rev() {
            from_end += s.duration;
            if from_end > keep + 1e-9 {
                if s.parts.is_empty() {
                    break;
                }
                removed.extend(s.parts.drain(..).map(|p| p.uri));
            }
        }
    }

    /// The stream ended: EXT-X-ENDLIST, a DVR playlist becomes VOD, and parts and the hint go.
    /// Returns the URIs of the parts no longer listed.
    pub fn end(&mut self) -> Vec<String> {
        self.ended = true;
        self.version += 1;
        self.hint = None;
        let mut parts: Vec<String> = self
            .open
            .take()
            .map(|o| o.parts.into_iter().map(|p| p.uri).collect())
            .unwrap_or_default();
        for s in &mut self.segments {
            parts.extend(s.parts.drain(..).map(|p| p.uri));
        }
        self.settle();
        parts
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The URI EXT-X-PRELOAD-HINT names: the next part.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    /// The numbers the blocking-reload rules use.
    pub fn edge(&self) -> Edge {
        Edge {
            low_latency: self.low_latency,
            ended: self.ended,
            target: self.target,
            part_target: self.part_target,
            next_msn: self.media_sequence + self.segments.len() as u64,
            open_parts: self.open.as_ref().map_or(0, |o| o.parts.len() as u64),
            last_parts: self
                .segments
                .back()
                .filter(|s| !s.parts.is_empty())
                .map(|s| s.parts.len() as u64),
            version: self.version,
        }
    }

    /// CAN-SKIP-UNTIL in seconds: six target durations (RFC 8216bis 4.4.3.8).
    pub fn skip_until(&self) -> f64 {
        6.0 * self.target.unwrap_or(1) as f64
    }

    /// How many leading segments a delta update replaces with EXT-X-SKIP: those that end more
    /// than CAN-SKIP-UNTIL before the end of the last segment.
    fn skippable(&self) -> usize {
        if !self.low_latency || self.ended {
            return 0;
        }
        let boundary = self.skip_until();
        let mut after = 0.0;
        let mut keep = 0;
        for s in self.segments.iter().rev() {
            if after > boundary {
                break;
            }
            after += s.duration;
            keep += 1;
        }
        self.segments.len() - keep
    }

    fn version_tag(&self) -> u8 {
        if self.low_latency {
            9
        } else if self.fmp4 {
            6
        } else {
            3
        }
    }

    /// The playlist text; `skip` asks for a delta update (honoured in LL-HLS while live).
    pub fn render(&self, skip: bool) -> String {
        let skipped = if skip { self.skippable() } else { 0 };
        let listed = self.segments.len() - skipped;
        let mut s = String::with_capacity(256 + listed * 110);
        let _ = writeln!(s, "#EXTM3U\n#EXT-X-VERSION:{}", self.version_tag());
        let target = self.target.unwrap_or(1);
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
        if self.low_latency {
            let pt = self.part_target.unwrap_or(1.0);
            let _ = writeln!(
                s,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}",
                self.skip_until(),
                3.0 * pt
            );
            let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={pt:.3}");
        }
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                s,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        if self.kind == PlaylistKind::Dvr {
            // Not with retention (Archive): an EVENT playlist may not lose segments.
            s.push_str(if self.ended {
                "#EXT-X-PLAYLIST-TYPE:VOD\n"
            } else {
                "#EXT-X-PLAYLIST-TYPE:EVENT\n"
            });
        }
        if skipped > 0 {
            let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let mut map: Option<&str> = None;
        let mut from = skipped;
        if skipped == 0 && self.settled_count > 0 {
            s.push_str(&self.settled);
            map = self.settled_map.as_deref();
            from = self.settled_count;
        }
        for seg in self.segments.iter().skip(from) {
            render_segment(&mut s, seg, &mut map);
        }
        if let Some(o) = self.open.as_ref().filter(|o| !o.parts.is_empty()) {
            head(
                &mut s,
                o.discontinuity,
                o.map.as_deref(),
                &mut map,
                o.date_ms,
            );
            for p in &o.parts {
                part(&mut s, p);
            }
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{h}\"");
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }
}

/// One complete segment: its tags, parts, EXTINF and URI.
fn render_segment<'a>(s: &mut String, seg: &'a Segment, map: &mut Option<&'a str>) {
    head(s, seg.discontinuity, seg.map.as_deref(), map, seg.date_ms);
    for p in &seg.parts {
        part(s, p);
    }
    let _ = writeln!(s, "#EXTINF:{:.6},", seg.duration);
    s.push_str(&seg.uri);
    s.push('\n');
}

/// The tags before a segment's parts and EXTINF.
fn head<'a>(
    s: &mut String,
    discontinuity: bool,
    seg_map: Option<&'a str>,
    map: &mut Option<&'a str>,
    date_ms: i64,
) {
    if discontinuity {
        s.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if let Some(m) = seg_map {
        if *map != Some(m) {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{m}\"");
            *map = Some(m);
        }
    }
    let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", format_date_time(date_ms));
}

fn part(s: &mut String, p: &Part) {
    let _ = write!(
        s,
        "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
        p.duration, p.uri
    );
    if p.independent {
        s.push_str(",INDEPENDENT=YES");
    }
    s.push('\n');
}

/// Unix ms of an EXT-X-PROGRAM-DATE-TIME as [`format_date_time`] writes it
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`; the fraction may be absent or of any length, a `+HH:MM` or
/// `-HH:MM` offset may replace `Z`).
pub fn parse_date_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |a: usize, l: usize| -> Option<i64> {
        let d = s.get(a..a + l)?;
        d.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| d.parse().ok())
            .flatten()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        ms = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let z = &b[i..];
    let offset_min = match z {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let m = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000 + ms)
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
mod tests;
