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
