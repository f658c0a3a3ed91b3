//! A media playlist checker written from RFC 8216 and RFC 8216bis (LL-HLS), independent of
//! river's own playlist code: every playlist the HLS tests see goes through [`check`], and the
//! playlists of one stream in the order they were fetched through one [`Checker`], which also
//! checks what must hold from one version to the next.
//!
//! One playlist (RFC 8216 4.3, 8216bis 4.4):
//! - `#EXTM3U` first; the header tags (VERSION, TARGETDURATION, SERVER-CONTROL, PART-INF,
//!   MEDIA-SEQUENCE, DISCONTINUITY-SEQUENCE, PLAYLIST-TYPE, and SKIP after them) each at most once
//!   and before the first segment; ENDLIST last; nothing after the last segment but its open
//!   segment's parts, PRELOAD-HINT and ENDLIST.
//! - every EXTINF is followed by its URI, and rounded to the nearest integer is at most
//!   TARGETDURATION (4.3.3.1);
//! - EXT-X-VERSION is at least what the tags need: 3 for decimal EXTINF, 6 for EXT-X-MAP, 9 for
//!   EXT-X-SKIP;
//! - PART-TARGET is at least every part's DURATION; every part but a segment's last and an
//!   INDEPENDENT one lasts at least 85 % of it (4.4.4.9); a segment's parts add up to its EXTINF;
//! - EXT-X-SERVER-CONTROL: CAN-SKIP-UNTIL at least six target durations, PART-HOLD-BACK at least
//!   three part targets (4.4.3.8); EXT-X-SKIP only when CAN-SKIP-UNTIL is offered;
//! - at most one PRELOAD-HINT of a TYPE, and none after ENDLIST;
//! - PROGRAM-DATE-TIME advances by the EXTINF before it, to the millisecond, except across a
//!   discontinuity.
//!
//! From one version to the next (6.2.1, 6.2.2): TARGETDURATION and PART-TARGET never change;
//! MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE never decrease; a segment keeps its URI and duration
//! under its media sequence number, and its discontinuity sequence number (DISCONTINUITY-SEQUENCE
//! plus the EXT-X-DISCONTINUITY tags up to it: a window that drops a discontinuity must count it);
//! the part the PRELOAD-HINT named is the next part listed.

/// One listed part.
#[derive(Debug, Clone, PartialEq)]
pub struct PartInfo {
    pub uri: String,
    pub duration: f64,
    pub independent: bool,
}

/// One listed segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegInfo {
    pub msn: u64,
    pub uri: String,
    pub duration: f64,
    pub discontinuity: bool,
    pub map: Option<String>,
    pub parts: Vec<PartInfo>,
    /// EXT-X-PROGRAM-DATE-TIME in Unix ms.
    pub date_ms: Option<i64>,
    /// Its discontinuity sequence number, when the playlist skipped nothing.
    pub dsn: Option<u64>,
}

/// What a playlist says.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub text: String,
    pub version: u32,
    pub target: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<String>,
    pub part_target: Option<f64>,
    pub can_block_reload: bool,
    pub skip_until: Option<f64>,
    pub part_hold_back: Option<f64>,
    pub skipped: u64,
    pub segments: Vec<SegInfo>,
    /// Parts after the last segment (of the segment in progress).
    pub open_parts: Vec<PartInfo>,
    pub hint: Option<String>,
    pub ended: bool,
}

impl Parsed {
    /// Every part listed, in order.
    pub fn all_parts(&self) -> Vec<&PartInfo> {
        self.segments
            .iter()
            .flat_map(|s| s.parts.iter())
            .chain(self.open_parts.iter())
            .collect()
    }

    /// The sequence number the segment in progress will get.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence + self.skipped + self.segments.len() as u64
    }
}

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if k == name {
            return Some(v);
        }
        rest = next;
    }
    None
}

/// Unix ms of an ISO 8601 date-time as river and most servers write it
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let n = |a: usize, l: usize| s.get(a..a + l)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0, 4)?, n(5, 2)?, n(8, 2)?);
    let (h, mi, sec) = (n(11, 2)?, n(14, 2)?, n(17, 2)?);
    let ms = if b[19] == b'.' { n(20, 3)? } else { 0 };
    // Days from civil (H. Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2.rem_euclid(400);
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms)
}

/// Rounded to the nearest integer, halves up: how RFC 8216 4.3.3.1 compares EXTINF with the
/// target.
fn rounded(d: f64) -> u64 {
    (d + 0.5).floor() as u64
}

/// Checks one playlist on its own; panics with the text on the first broken rule.
pub fn check(text: &str) -> Parsed {
    let fail = |why: String| -> ! { panic!("playlist breaks a rule: {why}\n{text}") };
    let mut lines = text.lines();
    if lines.next() != Some("#EXTM3U") {
        fail("#EXTM3U is not the first line".into());
    }
    let mut p = Parsed {
        text: text.to_string(),
        ..Parsed::default()
    };
    let mut seen_header = std::collections::HashSet::new();
    let mut in_segments = false;
    let mut after_endlist = false;
    let mut pending_inf: Option<f64> = None;
    let mut pending_disc = false;
    let mut pending_date: Option<i64> = None;
    let mut map: Option<String> = None;
    let mut parts: Vec<PartInfo> = Vec::new();
    let mut hints = 0;
    let mut need_version = 1;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if after_endlist {
            fail(format!("{line:?} after EXT-X-ENDLIST"));
        }
        if !line.starts_with('#') {
            let Some(d) = pending_inf.take() else {
                fail(format!("URI {line:?} without EXTINF"));
            };
            if hints > 0 {
                fail("a segment after EXT-X-PRELOAD-HINT".into());
            }
            p.segments.push(SegInfo {
                msn: 0,
                uri: line.to_string(),
                duration: d,
                discontinuity: std::mem::take(&mut pending_disc),
                map: map.clone(),
                parts: std::mem::take(&mut parts),
                date_ms: pending_date.take(),
                dsn: None,
            });
            continue;
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let header = matches!(
            tag,
            "#EXT-X-VERSION"
                | "#EXT-X-TARGETDURATION"
                | "#EXT-X-SERVER-CONTROL"
                | "#EXT-X-PART-INF"
                | "#EXT-X-MEDIA-SEQUENCE"
                | "#EXT-X-DISCONTINUITY-SEQUENCE"
                | "#EXT-X-PLAYLIST-TYPE"
                | "#EXT-X-SKIP"
                | "#EXT-X-INDEPENDENT-SEGMENTS"
        );
        if header {
            if in_segments {
                fail(format!("{tag} after the first segment's tags"));
            }
            if !seen_header.insert(tag) {
                fail(format!("{tag} twice"));
            }
            if tag != "#EXT-X-SKIP" && seen_header.contains("#EXT-X-SKIP") {
                fail(format!("{tag} after EXT-X-SKIP"));
            }
        } else {
            in_segments = true;
        }
        let num = |v: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| fail(format!("{tag}: {v:?} is not a number")))
        };
        match tag {
            "#EXT-X-VERSION" => p.version = num(value) as u32,
            "#EXT-X-TARGETDURATION" => p.target = num(value) as u64,
            "#EXT-X-MEDIA-SEQUENCE" => p.media_sequence = num(value) as u64,
            "#EXT-X-DISCONTINUITY-SEQUENCE" => p.discontinuity_sequence = num(value) as u64,
            "#EXT-X-PLAYLIST-TYPE" => p.playlist_type = Some(value.to_string()),
            "#EXT-X-SERVER-CONTROL" => {
                p.can_block_reload = attr(value, "CAN-BLOCK-RELOAD") == Some("YES");
                p.skip_until = attr(value, "CAN-SKIP-UNTIL").map(num);
                p.part_hold_back = attr(value, "PART-HOLD-BACK").map(num);
            }
            "#EXT-X-PART-INF" => {
                p.part_target = Some(num(attr(value, "PART-TARGET")
                    .unwrap_or_else(|| fail("EXT-X-PART-INF without PART-TARGET".into()))))
            }
            "#EXT-X-SKIP" => {
                need_version = need_version.max(9);
                p.skipped = num(attr(value, "SKIPPED-SEGMENTS").unwrap_or("x")) as u64;
                if p.skip_until.is_none() {
                    fail("EXT-X-SKIP without CAN-SKIP-UNTIL".into());
                }
            }
            "#EXTINF" => {
                let d = num(value.split(',').next().unwrap_or(""));
                if value.split(',').next().is_some_and(|v| v.contains('.')) {
                    need_version = need_version.max(3);
                }
                if pending_inf.replace(d).is_some() {
                    fail("two EXTINF for one URI".into());
                }
            }
            "#EXT-X-DISCONTINUITY" => pending_disc = true,
            "#EXT-X-MAP" => {
                need_version = need_version.max(6);
                map = Some(
                    attr(value, "URI")
                        .unwrap_or_else(|| fail("EXT-X-MAP without URI".into()))
                        .to_string(),
                );
            }
            "#EXT-X-PROGRAM-DATE-TIME" => {
                pending_date =
                    Some(parse_date(value).unwrap_or_else(|| fail(format!("bad date {value:?}"))))
            }
            "#EXT-X-PART" => {
                if hints > 0 {
                    fail("EXT-X-PART after EXT-X-PRELOAD-HINT".into());
                }
                parts.push(PartInfo {
                    uri: attr(value, "URI")
                        .unwrap_or_else(|| fail("EXT-X-PART without URI".into()))
                        .to_string(),
                    duration: num(attr(value, "DURATION").unwrap_or("x")),
                    independent: attr(value, "INDEPENDENT") == Some("YES"),
                });
            }
            "#EXT-X-PRELOAD-HINT" => {
                hints += 1;
                if hints > 1 {
                    fail("two EXT-X-PRELOAD-HINT of TYPE=PART".into());
                }
                if attr(value, "TYPE") != Some("PART") {
                    fail("a PRELOAD-HINT that is not TYPE=PART".into());
                }
                p.hint = attr(value, "URI").map(str::to_string);
            }
            "#EXT-X-ENDLIST" => {
                p.ended = true;
                after_endlist = true;
            }
            _ => {}
        }
    }
    if pending_inf.is_some() {
        fail("EXTINF without its URI".into());
    }
    p.open_parts = parts;
    let open_date = pending_date;
    let open_disc = pending_disc;
    if !seen_header.contains("#EXT-X-TARGETDURATION") {
        fail("no EXT-X-TARGETDURATION".into());
    }
    if p.version < need_version {
        fail(format!(
            "EXT-X-VERSION {} but the tags need {need_version}",
            p.version
        ));
    }
    if p.ended && p.hint.is_some() {
        fail("EXT-X-PRELOAD-HINT with EXT-X-ENDLIST".into());
    }
    let mut dsn = p.discontinuity_sequence;
    for (i, s) in p.segments.iter_mut().enumerate() {
        s.msn = p.media_sequence + p.skipped + i as u64;
        dsn += s.discontinuity as u64;
        // Skipped segments may hold discontinuities this version does not show.
        s.dsn = (p.skipped == 0).then_some(dsn);
    }
    for s in &p.segments {
        if rounded(s.duration) > p.target {
            fail(format!(
                "{}: EXTINF {} rounds above TARGETDURATION {}",
                s.uri, s.duration, p.target
            ));
        }
        if !s.parts.is_empty() {
            let sum: f64 = s.parts.iter().map(|x| x.duration).sum();
            if (sum - s.duration).abs() > 0.001 + 1e-5 * s.parts.len() as f64 {
                fail(format!(
                    "{}: its parts add up to {sum}, EXTINF {}",
                    s.uri, s.duration
                ));
            }
        }
    }
    if let Some(pt) = p.part_target {
        let check_parts = |ps: &[PartInfo], last_is_final: bool| {
            for (i, x) in ps.iter().enumerate() {
                if x.duration > pt + 1e-9 {
                    fail(format!(
                        "part {} lasts {} > PART-TARGET {pt}",
                        x.uri, x.duration
                    ));
                }
                let is_last = i + 1 == ps.len();
                let exempt = x.independent || (is_last && last_is_final);
                if !exempt && x.duration < 0.85 * pt - 1e-9 {
                    fail(format!(
                        "part {} lasts {} < 85 % of PART-TARGET {pt}",
                        x.uri, x.duration
                    ));
                }
            }
        };
        for s in &p.segments {
            check_parts(&s.parts, true);
        }
        // The open segment's last part may turn out to be its final one.
        check_parts(&p.open_parts, true);
        if p.part_hold_back.is_none_or(|h| h < 3.0 * pt - 1e-9) {
            fail("PART-HOLD-BACK under three part targets".into());
        }
    } else if !p.all_parts().is_empty() {
        fail("EXT-X-PART without EXT-X-PART-INF".into());
    }
    if let Some(s) = p.skip_until {
        if s < 6.0 * p.target as f64 - 1e-9 {
            fail(format!(
                "CAN-SKIP-UNTIL {s} under six target durations ({})",
                p.target
            ));
        }
    }
    // Each segment's date, the one in progress too, follows the one before by its duration.
    let dates: Vec<(&str, Option<i64>, bool, f64)> = p
        .segments
        .iter()
        .map(|s| (s.uri.as_str(), s.date_ms, s.discontinuity, s.duration))
        .chain(std::iter::once((
            "(in progress)",
            open_date,
            open_disc,
            0.0,
        )))
        .collect();
    for w in dates.windows(2) {
        if let (Some(a), Some(b)) = (w[0].1, w[1].1) {
            let step = b - a;
            let want = (w[0].3 * 1000.0).round() as i64;
            if !w[1].2 && (step - want).abs() > 1 {
                fail(format!(
                    "PROGRAM-DATE-TIME of {} is {step} ms after {}'s, which lasts {want} ms",
                    w[1].0, w[0].0
                ));
            }
        }
    }
    p
}

/// Checks the successive versions of one stream's playlist.
#[derive(Default)]
pub struct Checker {
    last: Option<Parsed>,
    /// Every segment ever listed, by media sequence number, with its discontinuity sequence
    /// number once known.
    seen: std::collections::BTreeMap<u64, (String, f64, Option<u64>)>,
    /// The hint of the previous version, not yet listed as a part.
    hint: Option<String>,
    pub playlists: usize,
}

impl Checker {
    pub fn check(&mut self, text: &str) -> Parsed {
        let p = check(text);
        self.playlists += 1;
        let fail = |why: String| -> ! { panic!("playlist breaks a rule: {why}\n{text}") };
        if let Some(l) = &self.last {
            if p.target != l.target {
                fail(format!(
                    "TARGETDURATION changed from {} to {}",
                    l.target, p.target
                ));
            }
            if p.part_target != l.part_target && l.part_target.is_some() {
                fail(format!(
                    "PART-TARGET changed from {:?} to {:?}",
                    l.part_target, p.part_target
                ));
            }
            if p.media_sequence < l.media_sequence {
                fail("EXT-X-MEDIA-SEQUENCE decreased".into());
            }
            if p.discontinuity_sequence < l.discontinuity_sequence {
                fail("EXT-X-DISCONTINUITY-SEQUENCE decreased".into());
            }
        }
        for s in &p.segments {
            let mut dsn = s.dsn;
            if let Some((u, d, was)) = self.seen.get(&s.msn) {
                if *u != s.uri || (d - s.duration).abs() > 1e-9 {
                    fail(format!(
                        "segment {} was {u} ({d}), now {} ({})",
                        s.msn, s.uri, s.duration
                    ));
                }
                if let (Some(a), Some(b)) = (was, s.dsn) {
                    if *a != b {
                        fail(format!(
                            "segment {} ({}) had discontinuity sequence number {a}, now {b}",
                            s.msn, s.uri
                        ));
                    }
                }
                dsn = dsn.or(*was);
            }
            self.seen.insert(s.msn, (s.uri.clone(), s.duration, dsn));
        }
        if let Some(h) = self.hint.take() {
            // The hinted part is the first part after the ones listed before it.
            let parts = p.all_parts();
            let last = self
                .last
                .as_ref()
                .and_then(|l| l.all_parts().last().map(|x| x.uri.clone()));
            let pos = last
                .as_ref()
                .and_then(|u| parts.iter().position(|x| &x.uri == u));
            match pos {
                Some(i) if i + 1 < parts.len() => {
                    if parts[i + 1].uri != h {
                        fail(format!(
                            "the part after {} is {}, not the hinted {h}",
                            parts[i].uri,
                            parts[i + 1].uri
                        ));
                    }
                }
                // Nothing new yet, the previous last part scrolled out, or the stream ended.
                _ => {
                    if !p.ended && pos.is_some() {
                        self.hint = Some(h);
                    }
                }
            }
        }
        if p.hint.is_some() && self.hint.is_none() {
            self.hint = p.hint.clone();
        }
        self.last = Some(p.clone());
        p
    }
}

#[test]
fn checker_catches_what_it_checks() {
    let good = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.6\n\
        #EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:4\n\
        #EXT-X-MAP:URI=\"i.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z\n\
        #EXT-X-PART:DURATION=0.2,URI=\"p0.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.2,URI=\"p1.m4s\"\n#EXTINF:0.4,\ns4.m4s\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.400Z\n\
        #EXT-X-PART:DURATION=0.2,URI=\"p2.m4s\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p3.m4s\"\n";
    let p = check(good);
    assert_eq!((p.segments[0].msn, p.next_msn()), (4, 5));
    assert_eq!(p.hint.as_deref(), Some("p3.m4s"));
    let broken = [
        good.replace("EXTINF:0.4", "EXTINF:2.6"),
        good.replace("VERSION:9", "VERSION:3"),
        good.replace("CAN-SKIP-UNTIL=12.0", "CAN-SKIP-UNTIL=11.0"),
        good.replace("PART-HOLD-BACK=0.6", "PART-HOLD-BACK=0.4"),
        good.replace("URI=\"p1.m4s\"", "URI=\"p1.m4s\"\n#EXT-X-MEDIA-SEQUENCE:1"),
        good.replace("DURATION=0.2,URI=\"p1", "DURATION=0.25,URI=\"p1"),
        good.replace("DURATION=0.2,URI=\"p1", "DURATION=0.1,URI=\"p1"),
        good.replace("00:00:00.400Z", "00:00:00.500Z"),
        good.replace("s4.m4s\n", ""),
        format!("{good}#EXT-X-ENDLIST\n"),
    ];
    for b in broken {
        assert!(
            std::panic::catch_unwind(|| check(&b)).is_err(),
            "not caught:\n{b}"
        );
    }
    // From one version to the next: the hint must be the next part, the target must stay.
    let mut c = Checker::default();
    c.check(good);
    let next = good.replace(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p3.m4s\"",
        "#EXT-X-PART:DURATION=0.2,URI=\"p9.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p10.m4s\"",
    );
    assert!(std::panic::catch_unwind(move || c.check(&next)).is_err());
    let mut c = Checker::default();
    c.check(good);
    let next = good.replace("TARGETDURATION:2", "TARGETDURATION:3");
    assert!(std::panic::catch_unwind(move || c.check(&next)).is_err());
    // A window that drops a discontinuity must count it in DISCONTINUITY-SEQUENCE.
    let seg = |i: u32, disc: bool| {
        format!(
            "{}#EXTINF:2.0,\ns{i}.ts\n",
            if disc { "#EXT-X-DISCONTINUITY\n" } else { "" }
        )
    };
    let head = |ms: u32, ds: u32| {
        format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{ms}\n#EXT-X-DISCONTINUITY-SEQUENCE:{ds}\n")
    };
    let v1 = format!(
        "{}{}{}{}",
        head(0, 0),
        seg(0, false),
        seg(1, true),
        seg(2, false)
    );
    let right = format!("{}{}", head(2, 1), seg(2, false));
    let wrong = format!("{}{}", head(2, 0), seg(2, false));
    let mut c = Checker::default();
    c.check(&v1);
    c.check(&right);
    let mut c = Checker::default();
    c.check(&v1);
    assert!(std::panic::catch_unwind(move || c.check(&wrong)).is_err());
}
