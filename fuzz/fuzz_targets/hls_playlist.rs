//! A media playlist read back for a DVR restart (`Archive::parse`), and EXT-X-PROGRAM-DATE-TIME
//! values, from any text: no panic; every URI accepted is a relative path inside the directory
//! (the caller deletes files by these names); an archive accepted renders and reads back the
//! same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use river::format::hls::archive::safe_uri;
use river::format::hls::{format_date_time, parse_date_time, Archive, Playlist, PlaylistKind};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Some(ms) = parse_date_time(text) {
        // What parses formats and parses to the same instant.
        assert_eq!(parse_date_time(&format_date_time(ms)), Some(ms));
    }
    let Ok(a) = Archive::parse(text) else {
        return;
    };
    assert!((1..=86_400).contains(&a.target));
    for s in &a.segments {
        assert!(safe_uri(&s.uri), "{:?}", s.uri);
        assert!(s.map.as_deref().is_none_or(safe_uri));
        assert!(s.duration.is_finite() && s.duration >= 0.0);
    }
    assert!(a.parts.iter().all(|p| safe_uri(p)));
    let mut p = Playlist::new(PlaylistKind::Archive, a.fmp4(), false);
    p.resume(
        a.target,
        a.media_sequence,
        a.discontinuity_sequence,
        a.segments.clone(),
    );
    let again = Archive::parse(&p.render(false)).expect("river's own rendering reads back");
    assert_eq!(again.segments.len(), a.segments.len());
    assert_eq!(again.media_sequence, a.media_sequence);
    for (x, y) in again.segments.iter().zip(&a.segments) {
        assert_eq!((&x.uri, x.date_ms, x.discontinuity, &x.map), (&y.uri, y.date_ms, y.discontinuity, &y.map));
    }
});
