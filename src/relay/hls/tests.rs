use super::*;
use crate::http::head::{BodyFraming, Head};
use crate::pipeline::TsOut;
use crate::testsrc::Clip;

fn cfg() -> Config {
    Config {
        default: Variant::LowLatency,
        segment_secs: 1.0,
        part_secs: 0.2,
        window: 4,
        idle: Duration::from_secs(30),
        token_ttl: Duration::from_secs(120),
    }
}

/// `secs` of the test clip as MPEG-TS, from `from` secs on (continuous timestamps).
fn ts(from: f64, secs: f64) -> Vec<u8> {
    let clip = Clip::embedded().unwrap();
    let mut mux = TsOut::new();
    let mut out = Vec::new();
    let (a, b) = ((from * 90_000.0) as i64, ((from + secs) * 90_000.0) as i64);
    for ev in clip.events(Some(b)) {
        if let MediaEvent::Frame(f) = &ev {
            if f.dts < a {
                continue;
            }
        }
        mux.event(&ev, &mut out).unwrap();
    }
    out
}

fn req(serial: u64) -> Request {
    Request {
        id: ReqId::for_tests(serial),
        head: Head {
            method: "GET".into(),
            target: "/".into(),
            version: 1,
            headers: Vec::new(),
            body: BodyFraming::None,
            keep_alive: true,
        },
        peer: "127.0.0.1:1".parse().unwrap(),
    }
}

fn body(r: &Response) -> String {
    match &r.body {
        Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn field<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// Pushes `data` in 1316-byte reads; returns the answers.
fn feed(s: &mut Session, data: &[u8], now: Instant) -> Vec<(ReqId, Response)> {
    let mut out = Vec::new();
    for c in data.chunks(1316) {
        out.extend(s.push(c, Wall::default(), now));
    }
    out
}

#[test]
fn files_are_named_by_variant_and_run() {
    let d = Variant::Ts;
    assert_eq!(Wanted::of("index.m3u8", d), Some(Wanted::Playlist(d)));
    assert_eq!(
        Wanted::of("ll.m3u8", d),
        Some(Wanted::Playlist(Variant::LowLatency))
    );
    assert_eq!(
        Wanted::of("fmp4-17-3-init.mp4", d),
        Some(Wanted::Media {
            variant: Variant::Fmp4,
            run: 17
        })
    );
    assert_eq!(
        Wanted::of("ll-5-p12.m4s", d),
        Some(Wanted::Media {
            variant: Variant::LowLatency,
            run: 5
        })
    );
    for bad in [
        "x.m3u8",
        "ll.m3u",
        "hd-1-2.ts",
        "ts-+1-2.ts",
        "ts-1",
        "ts-a-1.ts",
        "index",
    ] {
        assert_eq!(Wanted::of(bad, d), None, "{bad}");
    }
}

#[test]
fn the_first_playlist_request_waits_for_the_first_segment() {
    let t0 = Instant::now();
    let mut s = Session::new("fier/cam", Variant::LowLatency, &cfg(), 42, t0);
    assert!(matches!(s.request(&req(1), "ll.m3u8", "", t0), Reply::Park));
    assert_eq!(s.parked(), 1);
    // Less than a segment: nothing yet.
    assert!(feed(&mut s, &ts(0.0, 0.5), t0).is_empty());
    let answers = feed(&mut s, &ts(0.5, 2.5), t0);
    let (id, r) = answers
        .iter()
        .find(|(id, _)| *id == ReqId::for_tests(1))
        .expect("answered");
    assert_eq!(*id, ReqId::for_tests(1));
    assert_eq!(r.status, 200);
    assert_eq!(field(r, "cache-control"), Some("public, max-age=0"));
    let text = body(r);
    assert!(text.contains("#EXT-X-PART:"), "{text}");
    assert!(
        text.contains("#EXT-X-MAP:URI=\"ll-42-0-init.mp4\""),
        "{text}"
    );
    assert!(text.contains("ll-42-0.m4s"), "{text}");
    // Every file it names is served from memory, immutable.
    for uri in ["ll-42-0-init.mp4", "ll-42-0.m4s", "ll-42-p0.m4s"] {
        let Reply::Now(r) = s.request(&req(2), uri, "", t0) else {
            panic!("{uri} parked")
        };
        assert_eq!(r.status, 200, "{uri}");
        assert!(!r.body.is_empty());
        assert_eq!(
            field(&r, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
    }
    let Reply::Now(r) = s.request(&req(3), "ll-42-999.m4s", "", t0) else {
        panic!()
    };
    assert_eq!(r.status, 404);
    assert_eq!(s.parked(), 0);
}

#[test]
fn blocking_reloads_are_answered_by_the_part_they_wait_for() {
    let t0 = Instant::now();
    let mut s = Session::new("fier/cam", Variant::LowLatency, &cfg(), 1, t0);
    feed(&mut s, &ts(0.0, 3.0), t0);
    let Reply::Now(r) = s.request(&req(1), "ll.m3u8", "", t0) else {
        panic!()
    };
    let text = body(&r);
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a preload hint")
        .to_string();
    // The hinted part and a blocking reload for what comes next wait; the next part answers both.
    assert!(matches!(s.request(&req(2), &hint, "", t0), Reply::Park));
    let msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let listed = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    let q = format!("_HLS_msn={}", msn + listed + 1);
    assert!(matches!(s.request(&req(3), "ll.m3u8", &q, t0), Reply::Park));
    assert_eq!(s.parked(), 2);
    let answers = feed(&mut s, &ts(3.0, 2.5), t0);
    let ids: Vec<ReqId> = answers.iter().map(|(id, _)| *id).collect();
    assert!(ids.contains(&ReqId::for_tests(2)), "{ids:?}");
    assert!(ids.contains(&ReqId::for_tests(3)), "{ids:?}");
    // The next segment after everything listed now: not there for a while.
    let Reply::Now(r) = s.request(&req(5), "ll.m3u8", "", t0) else {
        panic!()
    };
    let text = body(&r);
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let listed = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    let far = format!("_HLS_msn={}", first + listed + 3);
    let Reply::Now(r) = s.request(&req(4), "ll.m3u8", &far, t0) else {
        panic!("more than two segments ahead: refused at once")
    };
    assert_eq!(r.status, 400);
    // A blocking reload that cannot be answered gets 503 after three target durations.
    let q = format!("_HLS_msn={}", first + listed + 1);
    assert!(matches!(s.request(&req(6), "ll.m3u8", &q, t0), Reply::Park));
    assert!(s.expire(t0 + Duration::from_secs(2)).is_empty());
    let late = s.expire(t0 + Duration::from_secs(3));
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].1.status, 503);
}

#[test]
fn memory_follows_the_window_and_the_end_lists_everything() {
    let t0 = Instant::now();
    let mut s = Session::new("fier/cam", Variant::Ts, &cfg(), 7, t0);
    feed(&mut s, &ts(0.0, 20.0), t0);
    let at20 = s.stats.memory_bytes;
    let files20 = s.files.len();
    feed(&mut s, &ts(20.0, 40.0), t0);
    assert!(s.stats.segments >= 55, "{:?}", s.stats);
    // Four segments listed, and those left within four target durations: the same count.
    assert!(
        s.files.len() <= files20 + 1,
        "{} then {}",
        files20,
        s.files.len()
    );
    assert!(
        s.stats.memory_bytes < at20 * 3 / 2,
        "{at20} then {}",
        s.stats.memory_bytes
    );
    assert!(s
        .files
        .keys()
        .all(|k| k.starts_with("ts-7-") && k.ends_with(".ts")));
    s.finish(Wall::default(), t0);
    assert!(s.ended);
    let Reply::Now(r) = s.request(&req(1), "ts.m3u8", "", t0) else {
        panic!()
    };
    let text = body(&r);
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(!text.contains("#EXT-X-PART"));
    assert_eq!(field(&r, "cache-control"), Some("public, max-age=86400"));
}

#[test]
fn what_is_not_media_fails_the_session_and_its_waiters() {
    let t0 = Instant::now();
    let mut s = Session::new("fier/cam", Variant::LowLatency, &cfg(), 1, t0);
    assert!(matches!(s.request(&req(1), "ll.m3u8", "", t0), Reply::Park));
    let junk = vec![0x5au8; (MAX_DETECT + 4096) as usize];
    let answers = feed(&mut s, &junk, t0);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].1.status, 503);
    assert!(s.failed.is_some());
    let Reply::Now(r) = s.request(&req(2), "ll.m3u8", "", t0) else {
        panic!()
    };
    assert_eq!(r.status, 503);
    assert!(s.idle(t0 + Duration::from_secs(30), Duration::from_secs(30)));
    assert!(!s.idle(t0 + Duration::from_secs(29), Duration::from_secs(30)));
}

#[test]
fn a_first_playlist_that_never_comes_is_503_after_the_start_wait() {
    let t0 = Instant::now();
    let mut s = Session::new("fier/cam", Variant::Fmp4, &cfg(), 1, t0);
    assert!(matches!(
        s.request(&req(1), "fmp4.m3u8", "", t0),
        Reply::Park
    ));
    assert!(!s.idle(t0 + Duration::from_secs(60), Duration::from_secs(30)));
    assert!(s
        .expire(t0 + START_WAIT - Duration::from_millis(1))
        .is_empty());
    let late = s.expire(t0 + START_WAIT);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].1.status, 503);
    assert_eq!(s.parked(), 0);
    // A request whose connection closed is forgotten.
    assert!(matches!(
        s.request(&req(2), "fmp4.m3u8", "", t0),
        Reply::Park
    ));
    s.closed(ReqId::for_tests(2));
    assert_eq!(s.parked(), 0);
}
