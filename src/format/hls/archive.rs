//! Reading back a media playlist river-hls-seg wrote, so that a restart in the same directory
//! picks up its DVR archive: the segments, with their durations, dates, discontinuities and init
//! segments, and the sequence numbers to continue from.
//!
//! Pure (text in, [`Archive`] out), with a size limit ([`MAX_PLAYLIST`]). A URI must be a
//! relative path that stays inside the directory (no `..`, no absolute path, no scheme): the
//! caller deletes files by these names. What river does not write is refused rather than
//! guessed at: a delta update (EXT-X-SKIP), a segment without EXT-X-PROGRAM-DATE-TIME (the age
//! rule needs it), a number that does not parse. Parts and the preload hint of a run that did not
//! end cleanly are returned so the caller can delete them: segments hold the same bytes.

use std::sync::Arc;

use super::playlist::{parse_date_time, Segment};
use crate::error::Diag;

/// The largest playlist read back: a month of 2 s segments with dated names is about 170 MB.
pub const MAX_PLAYLIST: usize = 256 << 20;

/// What a playlist lists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Archive {
    /// EXT-X-TARGETDURATION.
    pub target: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    /// In order, without parts.
    pub segments: Vec<Segment>,
    /// URIs of listed parts and of the preload hint (LL-HLS), in order.
    pub parts: Vec<String>,
    /// EXT-X-ENDLIST was there.
    pub ended: bool,
}

impl Archive {
    /// Whether the segments are fMP4 (they have EXT-X-MAP).
    pub fn fmp4(&self) -> bool {
        self.segments.iter().any(|s| s.map.is_some())
    }

    /// The sequence number of the next segment.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }
}

/// Whether `uri` names a file inside the playlist's directory: relative, every component a plain
/// name (not empty, `.` or `..`), no scheme, no control characters or backslashes.
pub fn safe_uri(uri: &str) -> bool {
    !uri.is_empty()
        && !uri.starts_with('/')
        && !uri.contains("://")
        && !uri.chars().any(|c| c.is_control() || c == '\\')
        && uri
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The value of `name` in an attribute list (`A=1,B="x,y"`).
fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let (v, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], q[end + 1..].trim_start_matches(','))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if k.trim() == name {
            return Some(v);
        }
        rest = next;
    }
    None
}

impl Archive {
    /// Parses a whole media playlist. Errors carry the byte offset of the line at fault.
    pub fn parse(text: &str) -> Result<Archive, Diag> {
        if text.len() > MAX_PLAYLIST {
            return Err(Diag::new(
                MAX_PLAYLIST as u64,
                format!("playlist larger than {MAX_PLAYLIST} bytes"),
            ));
        }
        let mut a = Archive::default();
        let mut at = 0u64;
        let mut first = true;
        let mut duration: Option<f64> = None;
        let mut date: Option<i64> = None;
        let mut disc = false;
        let mut map: Option<Arc<str>> = None;
        let mut target = None;
        for raw in text.split_inclusive('\n') {
            let offset = at;
            at += raw.len() as u64;
            let line = raw.trim_end_matches(['\n', '\r']);
            let bad = |m: String| Diag::new(offset, m);
            if first {
                if line != "#EXTM3U" {
                    return Err(bad("not a playlist: the first line is not #EXTM3U".into()));
                }
                first = false;
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if a.ended {
                return Err(bad(format!("{line:?} after EXT-X-ENDLIST")));
            }
            let uri_ok = |u: &str| -> Result<String, Diag> {
                if safe_uri(u) {
                    Ok(u.to_string())
                } else {
                    Err(bad(format!(
                        "URI {u:?} is not a relative path inside the directory"
                    )))
                }
            };
            if !line.starts_with('#') {
                let Some(d) = duration.take() else {
                    return Err(bad(format!("URI {line:?} without EXTINF")));
                };
                let Some(date_ms) = date.take() else {
                    return Err(bad(format!(
                        "segment {line:?} has no EXT-X-PROGRAM-DATE-TIME"
                    )));
                };
                a.segments.push(Segment {
                    uri: uri_ok(line)?,
                    duration: d,
                    date_ms,
                    discontinuity: std::mem::take(&mut disc),
                    map: map.clone(),
                    parts: Vec::new(),
                });
                continue;
            }
            let (tag, value) = line.split_once(':').unwrap_or((line, ""));
            let int = |v: &str| -> Result<u64, Diag> {
                v.trim()
                    .parse()
                    .map_err(|_| bad(format!("{tag}: {v:?} is not a whole number")))
            };
            match tag {
                "#EXT-X-TARGETDURATION" => target = Some(int(value)?),
                "#EXT-X-MEDIA-SEQUENCE" => a.media_sequence = int(value)?,
                "#EXT-X-DISCONTINUITY-SEQUENCE" => a.discontinuity_sequence = int(value)?,
                "#EXT-X-DISCONTINUITY" => disc = true,
                "#EXT-X-ENDLIST" => a.ended = true,
                "#EXT-X-SKIP" => return Err(bad("a delta update (EXT-X-SKIP)".into())),
                "#EXTINF" => {
                    let v = value.split(',').next().unwrap_or("");
                    let d: f64 = v
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("EXTINF: {v:?} is not a number")))?;
                    if !(0.0..=86_400.0).contains(&d) {
                        return Err(bad(format!("EXTINF: {d} out of range")));
                    }
                    duration = Some(d);
                }
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    date = Some(
                        parse_date_time(value).ok_or_else(|| bad(format!("bad date {value:?}")))?,
                    )
                }
                "#EXT-X-MAP" => {
                    let u =
                        attr(value, "URI").ok_or_else(|| bad("EXT-X-MAP without URI".into()))?;
                    map = Some(Arc::from(uri_ok(u)?));
                }
                "#EXT-X-PART" | "#EXT-X-PRELOAD-HINT" => {
                    let u = attr(value, "URI").ok_or_else(|| bad(format!("{tag} without URI")))?;
                    a.parts.push(uri_ok(u)?);
                }
                _ => {}
            }
        }
        if first {
            return Err(Diag::new(0, "empty playlist"));
        }
        if duration.is_some() {
            return Err(Diag::new(at, "EXTINF without its URI at the end"));
        }
        a.target = target.ok_or_else(|| Diag::new(0, "no EXT-X-TARGETDURATION"))?;
        if a.target == 0 || a.target > 86_400 {
            return Err(Diag::new(
                0,
                format!("EXT-X-TARGETDURATION {} out of range", a.target),
            ));
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::hls::{Part, Playlist, PlaylistKind};

    fn seg(i: u32, disc: bool, map: Option<&str>) -> Segment {
        Segment {
            uri: format!("2026/11/22/04{i:04}.m4s"),
            duration: 2.0 + f64::from(i) / 1000.0,
            date_ms: 1_795_320_600_000 + i64::from(i) * 2000,
            discontinuity: disc,
            map: map.map(Arc::from),
            parts: Vec::new(),
        }
    }

    /// What river writes, read back, is what was written.
    #[test]
    fn reads_back_what_the_playlist_renders() {
        let mut p = Playlist::new(PlaylistKind::Dvr, true, true);
        p.set_target(2);
        p.set_part_target(0.2);
        let mut want = Vec::new();
        for i in 0..6 {
            let s = seg(
                i,
                i == 3,
                Some(if i < 3 { "a-init.mp4" } else { "b-init.mp4" }),
            );
            p.open(s.date_ms, s.discontinuity, s.map.clone());
            p.push_part(
                Part {
                    uri: format!("p{i}.m4s"),
                    duration: s.duration,
                    independent: true,
                },
                Some(format!("p{}.m4s", i + 1)),
            );
            p.push(s.clone());
            want.push(s);
        }
        let a = Archive::parse(&p.render(false)).unwrap();
        assert_eq!(a.target, 2);
        assert_eq!((a.media_sequence, a.discontinuity_sequence), (0, 0));
        assert_eq!(a.segments, want);
        assert!(a.fmp4());
        assert!(!a.ended);
        assert_eq!(a.next_msn(), 6);
        // The parts of the segments within three target durations (6 s) of the end (the last
        // two: the last three last 6.012 s), and the hint.
        assert_eq!(a.parts, ["p4.m4s", "p5.m4s", "p6.m4s"]);
        p.end();
        let a = Archive::parse(&p.render(false)).unwrap();
        assert!(a.ended && a.parts.is_empty());
        assert_eq!(a.segments, want);
    }

    #[test]
    fn sequence_numbers_and_crlf() {
        let t = "#EXTM3U\r\n#EXT-X-VERSION:3\r\n#EXT-X-TARGETDURATION:4\r\n#EXT-X-MEDIA-SEQUENCE:17\r\n\
                 #EXT-X-DISCONTINUITY-SEQUENCE:3\r\n#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:10:05.250Z\r\n\
                 #EXTINF:3.5,\r\na.ts\r\n";
        let a = Archive::parse(t).unwrap();
        assert_eq!(
            (a.target, a.media_sequence, a.discontinuity_sequence),
            (4, 17, 3)
        );
        assert_eq!(a.segments[0].uri, "a.ts");
        assert_eq!(a.segments[0].date_ms, 1_795_320_605_250);
        assert_eq!(a.next_msn(), 18);
        assert!(!a.fmp4());
    }

    #[test]
    fn refuses_what_river_does_not_write_with_the_offset() {
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n";
        let date = "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:10:05.250Z\n";
        let cases = [
            ("", "empty", 0),
            ("#EXTM3\n", "#EXTM3U", 0),
            ("#EXTM3U\n#EXTINF:2,\na.ts\n", "EXT-X-PROGRAM-DATE-TIME", 19),
            (
                &format!("{head}{date}#EXTINF:2,\n../a.ts\n"),
                "relative path",
                93,
            ),
            (
                &format!("{head}{date}#EXTINF:2,\n/etc/a.ts\n"),
                "relative path",
                93,
            ),
            (
                &format!("{head}{date}#EXTINF:2,\nhttp://x/a.ts\n"),
                "relative path",
                93,
            ),
            (
                &format!("{head}{date}#EXTINF:2,\na//b.ts\n"),
                "relative path",
                93,
            ),
            (
                &format!("{head}#EXT-X-MAP:URI=\"../i.mp4\"\n"),
                "relative path",
                32,
            ),
            (&format!("{head}#EXTINF:x,\n"), "not a number", 32),
            (&format!("{head}#EXTINF:-1,\n"), "out of range", 32),
            (
                &format!("{head}#EXT-X-MEDIA-SEQUENCE:-1\n"),
                "whole number",
                32,
            ),
            (
                &format!("{head}#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"),
                "delta",
                32,
            ),
            (&format!("{head}{date}#EXTINF:2,\n"), "EXTINF without", 93),
            (&format!("{head}a.ts\n"), "without EXTINF", 32),
            (
                &format!("{head}#EXT-X-ENDLIST\n#EXTINF:2,\n"),
                "after EXT-X-ENDLIST",
                47,
            ),
            ("#EXTM3U\n", "TARGETDURATION", 0),
            ("#EXTM3U\n#EXT-X-TARGETDURATION:0\n", "out of range", 0),
            (
                &format!("{head}#EXT-X-PROGRAM-DATE-TIME:yesterday\n"),
                "bad date",
                32,
            ),
        ];
        for (text, what, offset) in cases {
            let e = Archive::parse(text).unwrap_err();
            assert!(e.message.contains(what), "{text:?}: {e}");
            assert_eq!(e.offset, offset, "{text:?}: {e}");
        }
    }

    #[test]
    fn safe_uris() {
        for ok in ["a.ts", "2026/11/22/041005.ts", "x-1.m4s", "a..b.ts"] {
            assert!(safe_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "/a.ts",
            "../a.ts",
            "a/../b.ts",
            "./a.ts",
            "a//b",
            "a/",
            "s3://b/a.ts",
            "a\\b",
            "a\nb",
        ] {
            assert!(!safe_uri(bad), "{bad:?}");
        }
    }
}
