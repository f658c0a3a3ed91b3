use super::*;

fn seg(i: u32, dur: f64, disc: bool) -> Segment {
    Segment {
        uri: format!("movie-{i}.ts"),
        duration: dur,
        date_ms: 1_795_320_600_000 + i as i64 * 2000,
        discontinuity: disc,
        map: None,
        parts: Vec::new(),
    }
}

fn live(window: usize) -> Playlist {
    let mut p = Playlist::new(PlaylistKind::Live { window }, false, false);
    p.set_target(2);
    p
}

#[test]
fn live_window_slides_and_reports_what_left() {
    let mut p = live(3);
    for i in 0..3 {
        assert!(p.push(seg(i, 2.0, false)).0.is_empty());
    }
    let (gone, _) = p.push(seg(3, 2.0, false));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].uri, "movie-0.ts");
    let text = p.render(false);
    assert!(text.starts_with(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n"
    ));
    assert!(!text.contains("movie-0.ts"));
    assert!(text.contains("#EXTINF:2.000000,\nmovie-3.ts\n"));
    assert!(!text.contains("ENDLIST"));
    assert!(!text.contains("PLAYLIST-TYPE"));
    assert_eq!(p.render(true), text, "no delta updates without LL-HLS");
}

#[test]
fn discontinuity_sequence_counts_what_left() {
    let mut p = live(2);
    p.push(seg(0, 2.0, false));
    p.push(seg(1, 2.0, true));
    p.push(seg(2, 2.0, false));
    assert!(p
        .render(false)
        .contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME"));
    p.push(seg(3, 2.0, false));
    let t = p.render(false);
    assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{t}");
    assert!(!t.contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn dvr_is_event_then_vod() {
    let mut p = Playlist::new(PlaylistKind::Dvr, false, false);
    p.set_target(2);
    for i in 0..10 {
        p.push(seg(i, 2.0, false));
    }
    let t = p.render(false);
    assert!(t.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
    assert_eq!(t.matches("#EXTINF").count(), 10);
    p.end();
    let t = p.render(false);
    assert!(t.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
    assert!(t.ends_with("#EXT-X-ENDLIST\n"));
}

#[test]
fn target_duration_is_set_once() {
    let mut p = live(3);
    p.set_target(5);
    assert_eq!(p.target_duration(), Some(2));
    p.push(seg(0, 2.4, false));
    assert!(p.render(false).contains("#EXT-X-TARGETDURATION:2\n"));
}

#[test]
fn maps_are_written_where_they_change_and_for_the_first_listed() {
    let mut p = Playlist::new(PlaylistKind::Live { window: 2 }, true, false);
    p.set_target(2);
    let a: Arc<str> = Arc::from("init-a.mp4");
    let b: Arc<str> = Arc::from("init-b.mp4");
    for (i, m, d) in [(0, &a, false), (1, &a, false), (2, &b, true)] {
        let mut s = seg(i, 2.0, d);
        s.map = Some(Arc::clone(m));
        p.push(s);
    }
    let t = p.render(false);
    assert!(t.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n"), "{t}");
    assert_eq!(t.matches("#EXT-X-MAP").count(), 2, "{t}");
    assert!(t.contains(
        "#EXT-X-MAP:URI=\"init-a.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:10:02.000Z\n"
    ));
    assert!(t.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-b.mp4\"\n"));
}

fn ll(kind: PlaylistKind) -> Playlist {
    let mut p = Playlist::new(kind, true, true);
    p.set_target(2);
    p.set_part_target(0.2);
    p
}

/// Lists segment `i` of 2 s as ten 0.2 s parts (the first independent), then opens the next.
fn ll_segment(p: &mut Playlist, i: u32) -> Vec<String> {
    let map: Arc<str> = Arc::from("init.mp4");
    p.open(
        1_795_320_600_000 + i as i64 * 2000,
        false,
        Some(map.clone()),
    );
    for k in 0..10 {
        p.push_part(
            Part {
                uri: format!("p{}.m4s", i * 10 + k),
                duration: 0.2,
                independent: k == 0,
            },
            Some(format!("p{}.m4s", i * 10 + k + 1)),
        );
    }
    let mut s = seg(i, 2.0, false);
    s.uri = format!("s{i}.m4s");
    s.map = Some(map);
    p.push(s).1
}

#[test]
fn ll_hls_lists_parts_at_the_live_edge_with_a_hint() {
    let mut p = ll(PlaylistKind::Live { window: 6 });
    let mut removed = Vec::new();
    for i in 0..5 {
        removed.extend(ll_segment(&mut p, i));
    }
    p.open(1_795_320_610_000, false, Some(Arc::from("init.mp4")));
    p.push_part(
        Part {
            uri: "p50.m4s".into(),
            duration: 0.2,
            independent: true,
        },
        Some("p51.m4s".into()),
    );
    let t = p.render(false);
    assert!(t.starts_with(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.600\n\
         #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:0\n"
    ));
    // Parts only within three target durations (6 s) of the end: segments 2, 3 and 4.
    assert!(!t.contains("\"p19.m4s\""), "{t}");
    assert!(t.contains("#EXT-X-PART:DURATION=0.20000,URI=\"p20.m4s\",INDEPENDENT=YES\n"));
    assert!(t.contains("#EXT-X-PART:DURATION=0.20000,URI=\"p21.m4s\"\n"));
    assert_eq!(removed.len(), 20);
    assert!(t.ends_with(
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:10:10.000Z\n\
         #EXT-X-PART:DURATION=0.20000,URI=\"p50.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p51.m4s\"\n"
    ));
    let e = p.edge();
    assert_eq!((e.next_msn, e.open_parts, e.last_parts), (5, 1, Some(10)));
    // The end: no parts, no hint.
    let gone = p.end();
    assert_eq!(gone.len(), 31);
    let t = p.render(false);
    assert!(
        !t.contains("EXT-X-PART:") && !t.contains("PRELOAD-HINT"),
        "{t}"
    );
    assert!(t.ends_with("#EXT-X-ENDLIST\n"));
}

#[test]
fn delta_updates_skip_what_ends_past_the_skip_boundary() {
    let mut p = ll(PlaylistKind::Dvr);
    for i in 0..12 {
        ll_segment(&mut p, i);
    }
    let full = p.render(false);
    assert_eq!(full.matches("#EXTINF").count(), 12);
    let t = p.render(true);
    // 12 s before the end of the last segment: segments 0-4 end more than that before it.
    assert!(
        t.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n"),
        "{t}"
    );
    assert_eq!(t.matches("#EXTINF").count(), 7);
    assert!(t.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n#EXT-X-MAP:URI=\"init.mp4\"\n"));
    assert!(!t.contains("s4.m4s") && t.contains("s5.m4s"));
    // Ended: no delta.
    p.end();
    assert!(!p.render(true).contains("#EXT-X-SKIP"));
}

#[test]
fn date_time_format() {
    assert_eq!(format_date_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        format_date_time(1_795_320_605_250),
        "2026-11-22T04:10:05.250Z"
    );
}

#[test]
fn dvr_renders_the_same_with_its_settled_text() {
    // The settled prefix must render exactly as a full render would: compare with a live
    // playlist whose window never slides, through parts, a map change and the end.
    let mut dvr = ll(PlaylistKind::Dvr);
    let mut live = ll(PlaylistKind::Live { window: 1000 });
    for i in 0..12 {
        for p in [&mut dvr, &mut live] {
            if i == 7 {
                p.open(
                    1_795_320_600_000 + i as i64 * 2000,
                    true,
                    Some(Arc::from("b.mp4")),
                );
                p.push_part(
                    Part {
                        uri: format!("q{i}.m4s"),
                        duration: 2.0,
                        independent: true,
                    },
                    None,
                );
                let mut s = seg(i, 2.0, true);
                s.map = Some(Arc::from("b.mp4"));
                p.push(s);
            } else {
                ll_segment(p, i);
            }
        }
        let strip = |t: String| t.replace("#EXT-X-PLAYLIST-TYPE:EVENT\n", "");
        assert_eq!(
            strip(dvr.render(false)),
            live.render(false),
            "after segment {i}"
        );
        assert!(dvr.settled_count > 0 || i < 3);
    }
    dvr.end();
    live.end();
    let t = dvr.render(false);
    assert_eq!(
        t.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", ""),
        live.render(false)
    );
    assert_eq!(dvr.settled_count, 12);
}

#[test]
fn an_archive_with_retention_is_a_sliding_window() {
    // Segments 0-2 on init a, 3-5 on init b after a discontinuity.
    let mut p = Playlist::new(PlaylistKind::Archive, true, false);
    p.set_target(2);
    for i in 0..6 {
        let mut s = seg(i, 2.0, i == 3);
        s.map = Some(Arc::from(if i < 3 { "a.mp4" } else { "b.mp4" }));
        p.push(s);
    }
    let t = p.render(false);
    assert!(!t.contains("PLAYLIST-TYPE"), "{t}");
    let (gone, _) = p.drop_oldest(2);
    assert_eq!(
        gone.iter().map(|s| &*s.uri).collect::<Vec<_>>(),
        ["movie-0.ts", "movie-1.ts"]
    );
    let t = p.render(false);
    assert!(t.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{t}");
    assert!(!t.contains("DISCONTINUITY-SEQUENCE"), "{t}");
    // The first listed segment names its init segment, though the one before it had the same.
    assert!(
        t.contains("#EXT-X-MAP:URI=\"a.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-22T04:10:04.000Z\n#EXTINF:2.000000,\nmovie-2.ts\n"),
        "{t}"
    );
    // The discontinuity leaves with segment 3: the sequence counts it.
    p.drop_oldest(2);
    let t = p.render(false);
    assert!(
        t.contains(
            "#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP:URI=\"b.mp4\"\n"
        ),
        "{t}"
    );
    assert!(!t.contains("#EXT-X-DISCONTINUITY\n"), "{t}");
    // Never the newest.
    let (gone, _) = p.drop_oldest(10);
    assert_eq!(gone.len(), 1);
    assert_eq!(p.segments().count(), 1);
    assert_eq!(p.drop_oldest(1).0.len(), 0);
    // The settled text follows: the same as a window that never slid, past the dropped.
    p.push(seg(6, 2.0, false));
    let mut live = Playlist::new(PlaylistKind::Live { window: 2 }, true, false);
    live.set_target(2);
    for i in 0..7 {
        let mut s = seg(i, 2.0, i == 3);
        s.map = Some(Arc::from(if i < 3 { "a.mp4" } else { "b.mp4" }));
        if i == 6 {
            s.map = None;
        }
        live.push(s);
    }
    assert_eq!(p.render(false), live.render(false));
    p.end();
    let t = p.render(false);
    assert!(
        !t.contains("PLAYLIST-TYPE") && t.ends_with("#EXT-X-ENDLIST\n"),
        "{t}"
    );
}

#[test]
fn a_resumed_playlist_continues_and_may_raise_its_target_once() {
    let mut p = Playlist::new(PlaylistKind::Dvr, false, false);
    p.resume(2, 40, 3, (0..3).map(|i| seg(i, 2.0, i == 1)));
    let t = p.render(false);
    assert!(
        t.contains("#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:40\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        "{t}"
    );
    assert_eq!(p.edge().next_msn, 43);
    assert!(!p.ended());
    // This run's segments need 4 s: raised once, then fixed.
    p.set_target(4);
    p.set_target(6);
    assert_eq!(p.target_duration(), Some(4));
    // Never lowered: the earlier segments were measured against it.
    let mut q = Playlist::new(PlaylistKind::Dvr, false, false);
    q.resume(6, 0, 0, [seg(0, 5.6, false)]);
    q.set_target(2);
    assert_eq!(q.target_duration(), Some(6));
}

#[test]
fn date_time_parse() {
    for ms in [0, 1_795_320_605_250, 951_782_400_999, -86_400_000] {
        assert_eq!(parse_date_time(&format_date_time(ms)), Some(ms));
    }
    assert_eq!(
        parse_date_time("2026-11-22T04:10:05Z"),
        Some(1_795_320_605_000)
    );
    assert_eq!(
        parse_date_time("2026-11-22T04:10:05.25Z"),
        Some(1_795_320_605_250)
    );
    assert_eq!(
        parse_date_time("2026-11-22T04:10:05.2501Z"),
        Some(1_795_320_605_250)
    );
    assert_eq!(
        parse_date_time("2026-11-22T06:10:05.250+02:00"),
        Some(1_795_320_605_250)
    );
    assert_eq!(
        parse_date_time("2026-11-21T23:10:05.250-05:00"),
        Some(1_795_320_605_250)
    );
    for bad in [
        "",
        "2026-11-22",
        "2026-11-22T04:10:05.250",
        "2026-13-22T04:10:05Z",
        "2026-11-22T24:10:05Z",
        "2026-11-22T04:10:05.Z",
        "2026-11-22T04:10:05.250+0200",
        "+026-11-22T04:10:05Z",
        "2026-11-22T04:10:05.250ZZ",
        "２０２６-11-22T04:10:05Z",
        "2026-11-22T04:10:05+0é00",
        "2026-11-22T04:10:05.1+é:00",
    ] {
        assert_eq!(parse_date_time(bad), None, "{bad:?}");
    }
}
