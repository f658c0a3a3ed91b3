//! HLS (RFC 8216) without I/O: when to cut a segment ([`Segmenter`]), what the media playlist
//! says ([`Playlist`]), and how DVR segment names are made ([`strftime`]).
//!
//! Time is an input everywhere: the segmenter gets each frame's timestamps and the wall clock
//! reading the caller took, and names get the time zone's offset from the caller, so tests drive
//! both with a fake clock and a fixed zone.

pub mod archive;
pub mod ll;
mod playlist;
pub mod retention;
mod segmenter;
pub mod uri;

pub use archive::Archive;
pub use playlist::{
    format_date_time, parse_date_time, Edge, Part, Playlist, PlaylistKind, Segment,
};
pub use segmenter::{round_secs, Cut, Segmenter, SegmenterConfig, MAX_MEASURED_TARGET_SECS};

/// Formats `unix_ms` with a strftime pattern, in the time zone `offset_ms` ahead of UTC (0 for
/// UTC; the caller reads the local zone's offset in force at `unix_ms`). Supports %Y %m %d %H %M
/// %S %j %s %%, and %F (%Y-%m-%d) and %T (%H:%M:%S). Any other `%x` is kept as written; %s is
/// the Unix time, whatever the zone.
pub fn strftime(pattern: &str, unix_ms: i64, offset_ms: i64) -> String {
    let secs = (unix_ms + offset_ms).div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let yday = days - days_from_civil(y, 1, 1) + 1;
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{y:04}")),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('H') => out.push_str(&format!("{:02}", sod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", sod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", sod % 60)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('s') => out.push_str(&unix_ms.div_euclid(1000).to_string()),
            Some('F') => out.push_str(&format!("{y:04}-{m:02}-{d:02}")),
            Some('T') => out.push_str(&format!(
                "{:02}:{:02}:{:02}",
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            )),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_patterns() {
        // 2026-11-22T04:10:05.250Z
        let t = 1_795_320_605_250;
        assert_eq!(strftime("%Y/%m/%d/%H%M%S.ts", t, 0), "2026/11/22/041005.ts");
        assert_eq!(
            strftime("%F %T %j %% %q", t, 0),
            "2026-11-22 04:10:05 326 % %q"
        );
        assert_eq!(strftime("%s", t, 0), "1795320605");
        assert_eq!(strftime("%Y-%m-%d", 0, 0), "1970-01-01");
        assert_eq!(strftime("%Y-%m-%d", 951_782_400_000, 0), "2000-02-29");
    }

    #[test]
    fn strftime_in_a_given_zone() {
        // 2026-11-22T04:10:05.250Z
        let t = 1_795_320_605_250;
        let hour = 3_600_000;
        assert_eq!(strftime("%F %T", t, 2 * hour), "2026-11-22 06:10:05");
        // West of UTC the local date is still the day before.
        assert_eq!(
            strftime("%F %T %j", t, -5 * hour),
            "2026-11-21 23:10:05 325"
        );
        assert_eq!(
            strftime("%F %T", t, 5 * hour + hour / 2),
            "2026-11-22 09:40:05"
        );
        assert_eq!(
            strftime("%s", t, -5 * hour),
            "1795320605",
            "%s is the Unix time"
        );
    }

    #[test]
    fn calendar_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
