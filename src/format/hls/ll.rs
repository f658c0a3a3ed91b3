//! LL-HLS delivery directives (RFC 8216bis 6.2.5): what a playlist request's `_HLS_msn`,
//! `_HLS_part` and `_HLS_skip` ask for, and whether to answer now, wait, or refuse. Pure: the HTTP
//! side ([`crate::http::hls`]) parks the requests that wait and answers them when
//! [`ready`] says so, or with 503 after [`blocking_limit_secs`].

use super::Edge;

/// The longest a query string may be before it is refused (a playlist request's directives are a
/// few dozen bytes).
pub const MAX_QUERY: usize = 1024;

/// The directives of one playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn=M`: wait for segment M.
    pub msn: Option<u64>,
    /// `_HLS_part=N`: wait for part N of segment M.
    pub part: Option<u64>,
    /// `_HLS_skip=YES` or `v2`: a delta update.
    pub skip: bool,
}

impl Directives {
    /// Reads the `_HLS_` parameters of a query string (without the `?`); other parameters are
    /// ignored. A malformed or repeated directive, or `_HLS_part` without `_HLS_msn`, is an error
    /// (400, RFC 8216bis 6.2.5.2).
    pub fn parse(query: &str) -> Result<Directives, &'static str> {
        if query.len() > MAX_QUERY {
            return Err("query string too long");
        }
        let mut d = Directives::default();
        let mut skip_seen = false;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "_HLS_msn" => {
                    if d.msn.is_some() {
                        return Err("_HLS_msn given twice");
                    }
                    d.msn = Some(number(v).ok_or("_HLS_msn is not a decimal integer")?);
                }
                "_HLS_part" => {
                    if d.part.is_some() {
                        return Err("_HLS_part given twice");
                    }
                    d.part = Some(number(v).ok_or("_HLS_part is not a decimal integer")?);
                }
                "_HLS_skip" => {
                    if skip_seen {
                        return Err("_HLS_skip given twice");
                    }
                    skip_seen = true;
                    d.skip = match v {
                        "YES" | "v2" => true,
                        _ => return Err("_HLS_skip must be YES or v2"),
                    };
                }
                _ => {}
            }
        }
        if d.part.is_some() && d.msn.is_none() {
            return Err("_HLS_part without _HLS_msn");
        }
        Ok(d)
    }

    /// Any directive at all (such a response may be cached only briefly).
    pub fn any(&self) -> bool {
        self.msn.is_some() || self.skip
    }
}

/// A decimal-integer as RFC 8216 4.2 has it: digits only, at most 20.
fn number(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// What to do with a playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer now with the playlist (a delta update when `skip`).
    Now { skip: bool },
    /// Wait until [`ready`] holds for `msn`/`part`, then answer (a delta update when `skip`).
    Wait {
        msn: u64,
        part: Option<u64>,
        skip: bool,
    },
    /// 400 at once.
    Refuse(&'static str),
}

/// The Advance Part Limit (RFC 8216bis 6.2.5.2): three divided by the part target when that is
/// under a second, else three.
pub fn advance_part_limit(part_target: f64) -> f64 {
    if part_target > 0.0 && part_target < 1.0 {
        3.0 / part_target
    } else {
        3.0
    }
}

/// How long a blocked request waits before 503: three target durations.
pub fn blocking_limit_secs(edge: &Edge) -> u64 {
    3 * edge.target.unwrap_or(1)
}

/// Decides a request. Directives are ignored when the playlist offers none (classic HLS) or has
/// ended (RFC 8216bis 6.2.5.1, 6.2.5.2); `_HLS_skip` alone answers at once.
pub fn decide(edge: &Edge, d: &Directives) -> Decision {
    if !edge.low_latency || edge.ended {
        return Decision::Now { skip: false };
    }
    let skip = d.skip;
    let Some(msn) = d.msn else {
        return Decision::Now { skip };
    };
    // "The Media Sequence Number of the last Media Segment in the current Playlist plus two":
    // the last complete segment is next_msn - 1.
    if msn > edge.next_msn + 1 {
        return Decision::Refuse("_HLS_msn is more than two segments past the last");
    }
    if let (Some(n), Some(pt)) = (d.part, edge.part_target) {
        // Parts from the last one listed to the one asked for.
        let ahead = if msn == edge.next_msn {
            n as f64 + 1.0 - edge.open_parts as f64
        } else if msn == edge.next_msn + 1 {
            let per_segment = (edge.target.unwrap_or(1) as f64 / pt).ceil();
            (per_segment - edge.open_parts as f64).max(0.0) + n as f64 + 1.0
        } else {
            0.0
        };
        if ahead > advance_part_limit(pt) + 1e-9 {
            return Decision::Refuse("_HLS_part is past the Advance Part Limit");
        }
    }
    if ready(edge, msn, d.part) {
        Decision::Now { skip }
    } else {
        Decision::Wait {
            msn,
            part: d.part,
            skip,
        }
    }
}

/// Whether the playlist holds segment `msn` (or a later one), or with `part`, part `part` of it
/// (a part index past a complete segment's last part means part 0 of the next, RFC 8216bis
/// 6.2.5.2). An ended playlist holds everything it ever will.
pub fn ready(edge: &Edge, msn: u64, part: Option<u64>) -> bool {
    if edge.ended {
        return true;
    }
    let Some(n) = part else {
        return msn < edge.next_msn;
    };
    if msn + 1 < edge.next_msn {
        true
    } else if msn + 1 == edge.next_msn {
        match edge.last_parts {
            Some(k) if n >= k => edge.open_parts >= 1,
            _ => true,
        }
    } else if msn == edge.next_msn {
        n < edge.open_parts
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(next_msn: u64, open_parts: u64, last_parts: Option<u64>) -> Edge {
        Edge {
            low_latency: true,
            ended: false,
            target: Some(2),
            part_target: Some(0.2),
            next_msn,
            open_parts,
            last_parts,
            version: 1,
        }
    }

    #[test]
    fn directives_parse() {
        let p = Directives::parse;
        assert_eq!(p(""), Ok(Directives::default()));
        assert_eq!(
            p("_HLS_msn=12&_HLS_part=3&x=1"),
            Ok(Directives {
                msn: Some(12),
                part: Some(3),
                skip: false
            })
        );
        assert_eq!(
            p("_HLS_skip=YES&_HLS_msn=4"),
            Ok(Directives {
                msn: Some(4),
                part: None,
                skip: true
            })
        );
        assert!(p("_HLS_skip=v2").unwrap().skip);
        assert!(p("_HLS_part=3").is_err(), "part without msn");
        assert!(p("_HLS_msn=-1").is_err());
        assert!(p("_HLS_msn=1e3").is_err());
        assert!(p("_HLS_msn=").is_err());
        assert!(p("_HLS_msn=99999999999999999999999").is_err());
        assert!(p("_HLS_msn=1&_HLS_msn=2").is_err());
        assert!(p("_HLS_skip=NO").is_err());
        assert!(p(&"a".repeat(MAX_QUERY + 1)).is_err());
    }

    #[test]
    fn blocking_waits_for_the_part_or_the_segment() {
        // Segments 0..=9 complete (the last with 10 parts), segment 10 has 3 parts.
        let e = edge(10, 3, Some(10));
        let d = |msn, part| {
            decide(
                &e,
                &Directives {
                    msn: Some(msn),
                    part,
                    skip: false,
                },
            )
        };
        assert_eq!(d(9, None), Decision::Now { skip: false });
        assert_eq!(d(10, Some(2)), Decision::Now { skip: false });
        assert!(matches!(d(10, Some(3)), Decision::Wait { .. }));
        assert!(matches!(d(10, None), Decision::Wait { .. }));
        assert!(matches!(d(11, Some(0)), Decision::Wait { .. }));
        // Old requests are answered (the whole playlist, RFC 8216bis 6.2.5.2).
        assert_eq!(d(0, Some(50)), Decision::Now { skip: false });
        // A part index past the last part of segment 9 is part 0 of segment 10, which exists.
        assert_eq!(d(9, Some(10)), Decision::Now { skip: false });
        assert!(!ready(&edge(10, 0, Some(10)), 9, Some(10)));
    }

    #[test]
    fn too_far_ahead_is_refused() {
        let e = edge(10, 3, Some(10));
        let d = |msn, part| {
            decide(
                &e,
                &Directives {
                    msn: Some(msn),
                    part,
                    skip: false,
                },
            )
        };
        // The last complete segment is 9: 11 is the furthest.
        assert!(matches!(d(11, None), Decision::Wait { .. }));
        assert!(matches!(d(12, None), Decision::Refuse(_)));
        // Advance Part Limit at 0.2 s parts: 15 parts past the last (part 2 of segment 10).
        assert!(matches!(d(10, Some(17)), Decision::Wait { .. }));
        assert!(matches!(d(10, Some(18)), Decision::Refuse(_)));
        // Into segment 11: 7 parts left in 10, then N + 1.
        assert!(matches!(d(11, Some(7)), Decision::Wait { .. }));
        assert!(matches!(d(11, Some(8)), Decision::Refuse(_)));
        assert_eq!(advance_part_limit(0.2), 15.0);
        assert_eq!(advance_part_limit(1.5), 3.0);
    }

    #[test]
    fn classic_and_ended_playlists_ignore_directives() {
        let mut e = edge(10, 3, Some(10));
        let far = Directives {
            msn: Some(100),
            part: Some(1),
            skip: true,
        };
        e.ended = true;
        assert_eq!(decide(&e, &far), Decision::Now { skip: false });
        e.ended = false;
        e.low_latency = false;
        assert_eq!(decide(&e, &far), Decision::Now { skip: false });
        assert_eq!(blocking_limit_secs(&e), 6);
    }
}
