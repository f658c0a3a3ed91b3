//! The channels driven with no sockets: the embedded clip (FLV, 4 s, an IDR every 30 frames, AAC)
//! as the broadcast, watchers as ids, time as an input.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::format::flv::{FlvEvent, FlvReader, TagKind};
use crate::relay::cache::CacheLimits;
use crate::relay::pace::Unclocked;
use crate::relay::queue::QueueLimits;
use crate::relay::testdata;

const PEER: &str = "127.0.0.1:5000";
const PUB: SubId = 1;
const PUB2: SubId = 2;
const W: SubId = 10;
const W2: SubId = 11;

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

/// A fixed wall clock (what RTCP sender reports carry; no RTSP players here).
fn wall() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn key() -> ChanKey {
    ("live".into(), "cam".into())
}

fn config(queue: QueueLimits) -> Config {
    Config {
        gop_cache: true,
        queue,
        cache: CacheLimits {
            max_bytes: 1 << 24,
            max_age: Duration::from_secs(30),
        },
        max_waiting: 2,
        wait_timeout: Duration::from_secs(5),
        unclocked: Unclocked::Pace,
    }
}

fn roomy() -> QueueLimits {
    QueueLimits {
        max_bytes: 1 << 26,
        max_age: Duration::from_secs(3600),
        max_behind: Duration::from_secs(3600),
    }
}

/// The tags of `flv`: (offset of the tag header, kind, keyframe).
fn tags(flv: &[u8]) -> Vec<(usize, TagKind, bool)> {
    tags_ts(flv).into_iter().map(|t| (t.0, t.1, t.2)).collect()
}

/// The tags of `flv`: (offset, kind, keyframe, timestamp).
fn tags_ts(flv: &[u8]) -> Vec<(usize, TagKind, bool, u32)> {
    let mut r = FlvReader::new();
    let mut ev = Vec::new();
    r.push(flv, &mut ev);
    ev.into_iter()
        .filter_map(|e| match e {
            FlvEvent::Tag(t) => {
                let key = t.kind == TagKind::Video && t.body.first().is_some_and(|b| b >> 4 == 1);
                Some((t.offset as usize, t.kind, key, t.timestamp))
            }
            _ => None,
        })
        .collect()
}

/// The offset of the `n`th video keyframe's tag (0-based).
fn keyframe_at(flv: &[u8], n: usize) -> usize {
    tags(flv)
        .into_iter()
        .filter(|t| t.2)
        .nth(n)
        .map(|t| t.0)
        .unwrap()
}

/// Writes out everything queued for `id` (after a takeover, the next stream's queue too).
fn drain(chs: &mut Channels, id: SubId) -> Vec<u8> {
    let mut out = Vec::new();
    let s = chs.sub_mut(id).unwrap();
    while let Some(q) = s.queue.as_mut() {
        while let Some(f) = q.front() {
            let n = f.len();
            out.extend_from_slice(f);
            q.consume(n, Instant::now());
        }
        if !s.advance() {
            break;
        }
    }
    out
}

/// Writes out at most `max` bytes queued for `id`, as a slow socket would.
fn drain_at_most(chs: &mut Channels, id: SubId, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let q = chs.sub_mut(id).unwrap().queue.as_mut().unwrap();
    while let Some(f) = q.front() {
        let n = f.len().min(max - out.len());
        out.extend_from_slice(&f[..n]);
        q.consume(n, Instant::now());
        if out.len() == max {
            break;
        }
    }
    out
}

fn video_tags(flv: &[u8]) -> Vec<bool> {
    tags(flv)
        .into_iter()
        .filter(|t| t.1 == TagKind::Video)
        .map(|t| t.2)
        .collect()
}

#[test]
fn a_watcher_waiting_before_the_broadcast_gets_all_of_it() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.watch(W, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap();
    assert!(chs.sub(W).unwrap().queue.is_none(), "waits: not live");
    assert!(fx.flush.is_empty());
    assert_eq!(
        chs.broadcast(
            PUB,
            &key(),
            None,
            peer(),
            "fstream",
            Instant::now(),
            &mut fx
        ),
        None
    );
    // Fed in uneven pieces, as a socket would.
    let mut rng = testdata::Rng(7);
    let mut at = 0;
    for n in rng.cuts(flv.len(), 3000) {
        chs.push(&key(), &flv[at..at + n], t0, wall(), &mut fx);
        at += n;
    }
    assert_eq!(fx.flush, [W], "one flush entry until flushed");
    assert!(fx.drop.is_empty() && fx.refuse.is_empty());
    assert_eq!(chs.end(&key(), t0, wall(), "end", &mut fx), Some(PUB));
    assert!(chs.sub(W).unwrap().eof_after_drain);
    assert_eq!(drain(&mut chs, W), flv);
}

#[test]
fn a_watcher_joining_mid_broadcast_starts_at_the_last_keyframe() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    // Up to the end of the second IDR's tag (the third video keyframe tag, after the sequence
    // header and the first IDR): the cache holds the GOP it starts. (A tag still incomplete is
    // not in the cache yet.)
    let k2 = keyframe_at(&flv, 2);
    let cut = tags(&flv).iter().find(|t| t.0 > k2).unwrap().0 + 100;
    chs.push(&key(), &flv[..cut], t0, wall(), &mut fx);
    chs.watch(W, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap();
    assert_eq!(fx.flush, [W]);
    chs.push(&key(), &flv[cut..], t0, wall(), &mut fx);
    let got = drain(&mut chs, W);
    // The FLV header and sequence headers, then the stream from the third keyframe on.
    let first_tag = tags(&flv)[0].0;
    let headers: Vec<u8> = flv[..first_tag]
        .iter()
        .chain(
            tags(&flv)
                .iter()
                .take_while(|t| t.0 < keyframe_at(&flv, 0))
                .flat_map(|t| {
                    let end = tags(&flv)
                        .iter()
                        .find(|u| u.0 > t.0)
                        .map_or(flv.len(), |u| u.0);
                    flv[t.0..end].iter()
                }),
        )
        .copied()
        .collect();
    assert!(got.starts_with(&headers), "starts with the headers");
    let v = video_tags(&got);
    assert!(v[0], "the sequence header");
    // The sequence header, then every video tag from the IDR on.
    assert_eq!(v.len(), 1 + video_tags(&flv[k2..]).len());
    assert!(v[1], "the first frame is the IDR");
    assert!(got.ends_with(&flv[k2 + 200..]), "then the rest, unchanged");
}

#[test]
fn a_takeover_keeps_the_watchers_and_continues_without_a_second_file_header() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    chs.watch(W, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap();
    let half = keyframe_at(&flv, 2);
    chs.push(&key(), &flv[..half], t0, wall(), &mut fx);
    assert_eq!(
        chs.broadcast(
            PUB2,
            &key(),
            None,
            peer(),
            "fstream",
            Instant::now(),
            &mut fx
        ),
        Some(PUB)
    );
    assert!(chs.is_publisher(&key(), PUB2) && !chs.is_publisher(&key(), PUB));
    chs.push(&key(), &flv, t0, wall(), &mut fx);
    chs.end(&key(), t0, wall(), "end", &mut fx);
    let got = drain(&mut chs, W);
    assert_eq!(got.windows(3).filter(|w| w == b"FLV").count(), 1);
    assert!(got.starts_with(&flv[..half]), "the first stream as it was");
    let v = video_tags(&got);
    assert_eq!(
        v.len(),
        video_tags(&flv[..half]).len() + video_tags(&flv).len()
    );
    // The new stream from its last cached GOP on, its timestamps moved on past the old stream's
    // (one timeline for the watcher); the tags' bodies unchanged.
    let tail = &flv[keyframe_at(&flv, 3)..];
    let got_tail = &got[got.len() - tail.len()..];
    let strip = |b: &[u8]| {
        let mut v = b.to_vec();
        for (off, ..) in tags_ts(b) {
            v[off + 4..off + 8].fill(0);
        }
        v
    };
    assert!(strip(got_tail) == strip(tail));
    let t = tags_ts(&got);
    for kind in [TagKind::Video, TagKind::Audio] {
        let ts: Vec<u32> = t.iter().filter(|x| x.1 == kind).map(|x| x.3).collect();
        assert!(ts.windows(2).all(|w| w[1] >= w[0]), "{kind:?}: {ts:?}");
    }
}

#[test]
fn the_end_leaves_full_queues_to_drain_then_eof() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    for id in [W, W2] {
        chs.watch(id, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
            .unwrap();
    }
    chs.push(&key(), &flv, t0, wall(), &mut fx);
    fx.flush.clear();
    assert_eq!(chs.end(&key(), t0, wall(), "end", &mut fx), Some(PUB));
    // Nothing more to deliver, but both are told to write out and finish.
    assert_eq!(fx.flush, [W, W2]);
    assert!(chs.live_password(&key()).is_none(), "not live");
    for id in [W, W2] {
        assert!(chs.sub(id).unwrap().eof_after_drain);
        assert_eq!(drain(&mut chs, id), flv, "nothing lost");
    }
    // The channel goes once its last watcher does.
    assert!(chs.leave(W).is_some() && chs.leave(W2).is_some());
    assert!(chs.keys().is_empty());
}

#[test]
fn a_stalled_watcher_is_dropped_and_the_others_are_not() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let limits = QueueLimits {
        max_bytes: 32 * 1024,
        max_age: Duration::from_secs(3600),
        max_behind: Duration::from_secs(1),
    };
    let mut chs = Channels::new(config(limits));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    for id in [W, W2] {
        chs.watch(id, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
            .unwrap();
    }
    // In real time: one tag every 15 ms (the clip's pace, about), W2 reading everything.
    let ts = tags(&flv);
    let mut prev = 0;
    for (i, t) in ts.iter().enumerate().skip(1) {
        let now = t0 + Duration::from_millis(15 * i as u64);
        chs.push(&key(), &flv[prev..t.0], now, wall(), &mut fx);
        prev = t.0;
        drain(&mut chs, W2);
        if !fx.drop.is_empty() {
            break;
        }
    }
    assert_eq!(fx.drop.len(), 1, "{:?}", fx.drop);
    assert_eq!(fx.drop[0].0, W);
    assert!(chs.sub(W2).is_some());
}

#[test]
fn refusals_passwords_waiting_limit_and_removal() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    // Two may wait (max_waiting 2), the third is refused with 503.
    chs.watch(
        W,
        &key(),
        Some("pw".into()),
        SubKind::Http(Ext::Flv),
        peer(),
        t0,
        &mut fx,
    )
    .unwrap();
    chs.watch(W2, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap();
    let r = chs
        .watch(12, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap_err();
    assert_eq!(r.status, 503);
    // The broadcaster sets no password: the watcher that gave one is refused (403).
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    assert_eq!(fx.refuse.len(), 1);
    assert_eq!((fx.refuse[0].0, fx.refuse[0].1.status), (W, 403));
    assert!(chs.sub(W).is_none(), "left its channel");
    // A live channel with a password refuses a wrong one at once.
    let other: ChanKey = ("live".into(), "other".into());
    chs.broadcast(
        PUB2,
        &other,
        Some("secret".into()),
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    let r = chs
        .watch(13, &other, None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap_err();
    assert_eq!(r.status, 403);
    // A watcher that leaves gets nothing more.
    chs.leave(W2);
    fx.flush.clear();
    chs.push(&key(), &flv, t0, wall(), &mut fx);
    assert!(fx.flush.is_empty());
    // One that waits too long expires.
    chs.watch(
        14,
        &("a".into(), "b".into()),
        None,
        SubKind::Fstream,
        peer(),
        t0,
        &mut fx,
    )
    .unwrap();
    assert!(chs.expired(t0 + Duration::from_secs(4)).is_empty());
    let e = chs.expired(t0 + Duration::from_secs(5));
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].0, e[0].1.status), (14, 404));
}

#[test]
fn an_http_watcher_of_ts_gets_a_converted_view() {
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    chs.push(&key(), &flv[..keyframe_at(&flv, 1)], t0, wall(), &mut fx);
    chs.watch(W, &key(), None, SubKind::Http(Ext::Ts), peer(), t0, &mut fx)
        .unwrap();
    chs.push(&key(), &flv[keyframe_at(&flv, 1)..], t0, wall(), &mut fx);
    chs.end(&key(), t0, wall(), "end", &mut fx);
    let s = chs.sub(W).unwrap();
    assert!(s.converted);
    let got = drain(&mut chs, W);
    assert!(
        !got.is_empty() && got.len() % 188 == 0,
        "{} bytes",
        got.len()
    );
    assert!(got.chunks(188).all(|p| p[0] == 0x47), "TS packets");
}

/// Opaque bytes (no clock: paced) pushed in 64 KiB reads while `room` allows, to watchers that
/// each read `rates[i]` bytes per 10 ms step; returns what each received and who was dropped.
fn paced_run(rates: &[usize], total: usize, secs: u64) -> (Vec<Vec<u8>>, Vec<SubId>) {
    opaque_run(Unclocked::Pace, usize::MAX, rates, total, secs)
}

/// Opaque bytes pushed in 64 KiB reads, at most `per_step` bytes per 10 ms step, while `room`
/// allows, to watchers that each read `rates[i]` bytes per step; returns what each received and
/// who was dropped.
fn opaque_run(
    unclocked: Unclocked,
    per_step: usize,
    rates: &[usize],
    total: usize,
    secs: u64,
) -> (Vec<Vec<u8>>, Vec<SubId>) {
    let data = paced_data(total);
    let limits = QueueLimits {
        max_bytes: 1 << 20,
        max_age: Duration::from_millis(500),
        max_behind: Duration::from_secs(2),
    };
    let t0 = Instant::now();
    let mut chs = Channels::new(Config {
        unclocked,
        ..config(limits)
    });
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    let ids: Vec<SubId> = (0..rates.len()).map(|i| W + i).collect();
    for &id in &ids {
        chs.watch(id, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
            .unwrap();
    }
    let mut got = vec![Vec::new(); rates.len()];
    let mut dropped = Vec::new();
    let mut at: usize = 0;
    for step in 0..secs * 100 {
        let now = t0 + Duration::from_millis(10 * step);
        // The hub: read the broadcaster while there is room.
        let step_end = at.saturating_add(per_step).min(total);
        while at < step_end && chs.room(&key()) {
            let n = (step_end - at).min(64 * 1024);
            chs.push(&key(), &data[at..at + n], now, wall(), &mut fx);
            at += n;
        }
        if at < step_end {
            chs.hold(&key(), now);
        } else {
            chs.release(&key(), now);
        }
        for (i, &id) in ids.iter().enumerate() {
            if chs.sub(id).is_some() && rates[i] > 0 {
                got[i].extend(drain_at_most(&mut chs, id, rates[i]));
            }
        }
        chs.tick(now, &mut fx);
        for (w, _) in fx.drop.drain(..) {
            chs.leave(w);
            dropped.push(w);
        }
        assert!(fx.refuse.is_empty());
    }
    for (i, &id) in ids.iter().enumerate() {
        if chs.sub(id).is_some() {
            got[i].extend(drain(&mut chs, id));
        }
    }
    assert_eq!(at, total, "the whole broadcast was read");
    (got, dropped)
}

fn paced_data(total: usize) -> Vec<u8> {
    (0..total as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect()
}

#[test]
fn paced_equal_watchers_get_every_byte() {
    let total = 32 << 20;
    let (got, dropped) = paced_run(&[256 * 1024; 3], total, 20);
    assert!(dropped.is_empty(), "{dropped:?}");
    let want = paced_data(total);
    for g in &got {
        assert!(*g == want, "{} of {} bytes", g.len(), total);
    }
}

#[test]
fn paced_a_half_speed_watcher_slows_the_broadcast_and_is_not_cut() {
    let total = 16 << 20;
    let (got, dropped) = paced_run(&[256 * 1024, 256 * 1024, 128 * 1024], total, 20);
    assert!(dropped.is_empty(), "{dropped:?}");
    let want = paced_data(total);
    assert!(got.iter().all(|g| *g == want));
}

#[test]
fn paced_a_stalled_or_crawling_watcher_is_dropped_and_the_others_get_every_byte() {
    let total = 16 << 20;
    // A watcher that never reads, and one at 40 KB/s: over a 2 s window the others drain its
    // 80 KB plus the 1 MiB queue bound it holds them to, more than ten times as much.
    let (got, dropped) = paced_run(&[256 * 1024, 256 * 1024, 0, 400], total, 30);
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert!(dropped.contains(&(W + 2)) && dropped.contains(&(W + 3)));
    let want = paced_data(total);
    assert!(got[0] == want && got[1] == want);
}

#[test]
fn isolated_opaque_content_is_never_held_and_a_watcher_that_cannot_keep_up_is_cut() {
    // 128 KiB per 10 ms pushed; two watchers read 256 KiB per step, one never reads.
    let total = 16 << 20;
    let (got, dropped) = opaque_run(
        Unclocked::Isolate,
        128 * 1024,
        &[256 * 1024, 256 * 1024, 0],
        total,
        20,
    );
    assert_eq!(dropped, vec![W + 2], "only the one that never reads");
    let want = paced_data(total);
    assert!(got[0] == want && got[1] == want);
    // Paced instead, the one that never reads holds the broadcast until --max-behind (2 s) and is
    // then dropped: the same outcome, later.
    let (got, dropped) = opaque_run(
        Unclocked::Pace,
        128 * 1024,
        &[256 * 1024, 256 * 1024, 0],
        total,
        20,
    );
    assert_eq!(dropped, vec![W + 2]);
    assert!(got[0] == want && got[1] == want);
}

#[test]
fn isolated_opaque_content_drops_a_watcher_at_half_speed_where_pacing_keeps_it() {
    let total = 16 << 20;
    let rates = [256 * 1024, 256 * 1024, 64 * 1024];
    let (got, dropped) = opaque_run(Unclocked::Isolate, 128 * 1024, &rates, total, 20);
    assert_eq!(dropped, vec![W + 2], "isolated: it overflows its queue");
    let want = paced_data(total);
    assert!(got[0] == want && got[1] == want);
    let (got, dropped) = opaque_run(Unclocked::Pace, 128 * 1024, &rates, total, 30);
    assert!(dropped.is_empty(), "paced: {dropped:?}");
    assert!(got.iter().all(|g| *g == want));
}

/// The clip's tags re-stamped over `laps` loops: (tag bytes, timestamp ms, video keyframe or
/// not video). The first entry is the FLV header and whatever precedes the first tag.
fn live_tags(flv: &[u8], laps: u32) -> Vec<(Vec<u8>, u32, Option<bool>)> {
    let ts = tags_ts(flv);
    let mut out = vec![(flv[..ts[0].0].to_vec(), 0, None)];
    for lap in 0..laps {
        for (i, t) in ts.iter().enumerate() {
            let end = ts.get(i + 1).map_or(flv.len(), |n| n.0);
            let mut tag = flv[t.0..end].to_vec();
            let stamp = t.3 + 4000 * lap;
            tag[4..7].copy_from_slice(&stamp.to_be_bytes()[1..]);
            tag[7] = (stamp >> 24) as u8;
            out.push((tag, stamp, (t.1 == TagKind::Video).then_some(t.2)));
        }
    }
    out
}

#[test]
fn real_time_a_live_source_held_from_its_start_by_a_slow_watcher_is_found_and_released() {
    // A live source (each tag available when its timestamp is due) and, from the start, a watcher
    // reading a quarter of the rate with its queue full: the hub must still find the broadcast is
    // live, stop holding it, and let the slow watcher skip.
    let flv = testdata::flv();
    let tags = live_tags(&flv, 4);
    let limits = QueueLimits {
        max_bytes: 24 * 1024,
        max_age: Duration::from_secs(30),
        max_behind: Duration::from_secs(60),
    };
    let t0 = Instant::now();
    let mut chs = Channels::new(config(limits));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    for id in [W, W2] {
        chs.watch(id, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
            .unwrap();
    }
    let rate = flv.len() / 4 / 100; // the clip's bytes per 10 ms
    let (mut fast, mut at) = (Vec::new(), 0);
    let mut lag_ms = 0u64;
    for step in 0..1800u64 {
        let now = t0 + Duration::from_millis(10 * step);
        let due = |t: &(Vec<u8>, u32, Option<bool>)| u64::from(t.1) <= 10 * step;
        while at < tags.len() && due(&tags[at]) && chs.room(&key()) {
            chs.push(&key(), &tags[at].0, now, wall(), &mut fx);
            at += 1;
        }
        if at < tags.len() && due(&tags[at]) {
            chs.hold(&key(), now);
            lag_ms = lag_ms.max(10 * step - u64::from(tags[at].1));
        } else {
            chs.release(&key(), now);
        }
        fast.extend(drain(&mut chs, W));
        drain_at_most(&mut chs, W2, rate / 4);
        chs.tick(now, &mut fx);
        assert!(fx.drop.is_empty(), "{:?}", fx.drop);
    }
    assert_eq!(at, tags.len(), "the whole broadcast was read in time");
    let st = chs.sub(W2).unwrap().stats();
    assert!(st.skips >= 1, "the slow watcher skipped: {st:?}");
    assert!(chs.stats(t0, |_| None)[0].delivery == "realtime");
    let frames = tags.iter().filter(|t| t.2.is_some()).count();
    assert_eq!(
        video_tags(&fast).len(),
        frames,
        "the fast one got every frame"
    );
    assert!(lag_ms <= 5000, "held back {lag_ms} ms behind the source");
}

#[test]
fn paced_a_file_held_below_real_time_is_probed_and_stays_paced_with_nothing_lost() {
    // The clip pushed as a file (every tag available at once) to a watcher at real-time speed and
    // one at half of it: held at or below real time, it is probed (read freely), runs ahead of the
    // clock, and stays paced. Nothing is skipped, and the probes add a bounded excess to queues.
    let flv = testdata::flv();
    let tags = live_tags(&flv, 3);
    let limits = QueueLimits {
        max_bytes: 24 * 1024,
        max_age: Duration::from_secs(1),
        max_behind: Duration::from_secs(60),
    };
    let t0 = Instant::now();
    let mut chs = Channels::new(config(limits));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    for id in [W, W2] {
        chs.watch(id, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
            .unwrap();
    }
    let rate = flv.len() / 4 / 100; // the clip's bytes per 10 ms
    let (mut a, mut b, mut at) = (Vec::new(), Vec::new(), 0);
    let mut most = 0;
    let mut step = 0u64;
    while chs
        .sub(W2)
        .is_some_and(|s| s.queue.as_ref().is_some_and(|q| !q.is_empty()))
        || at < tags.len()
    {
        let now = t0 + Duration::from_millis(10 * step);
        while at < tags.len() && chs.room(&key()) {
            chs.push(&key(), &tags[at].0, now, wall(), &mut fx);
            at += 1;
        }
        if at < tags.len() {
            chs.hold(&key(), now);
        } else {
            chs.release(&key(), now);
        }
        let q = |chs: &Channels, w| chs.sub(w).unwrap().queue.as_ref().unwrap().bytes();
        most = most.max(q(&chs, W)).max(q(&chs, W2));
        a.extend(drain_at_most(&mut chs, W, rate));
        b.extend(drain_at_most(&mut chs, W2, rate / 2));
        chs.tick(now, &mut fx);
        assert!(fx.drop.is_empty(), "{:?}", fx.drop);
        step += 1;
        assert!(step < 6000, "the broadcast never ended");
    }
    a.extend(drain(&mut chs, W));
    let frames = tags.iter().filter(|t| t.2.is_some()).count();
    assert_eq!(video_tags(&a).len(), frames);
    assert_eq!(video_tags(&b).len(), frames);
    for w in [W, W2] {
        assert_eq!(chs.sub(w).unwrap().stats().skips, 0);
    }
    assert!(chs.stats(t0, |_| None)[0].delivery == "paced");
    // A probe reads until the file is LIVE_LEAD_MS ahead of the clock: about that much media
    // (the clip is ~70 KB/s) on top of the bound.
    assert!(
        (24 * 1024 + 1..24 * 1024 + 400 * 1024).contains(&most),
        "queues reached {most} bytes: a probe passes the bound, by at most the lead"
    );
}

#[test]
fn real_time_a_slow_watcher_skips_and_the_broadcaster_is_not_held() {
    // The clip as a live source: one tag per its own timestamp, a watcher reading everything and
    // one at a quarter of the rate.
    let flv = testdata::flv();
    let ts = tags_ts(&flv);
    let limits = QueueLimits {
        max_bytes: 24 * 1024,
        max_age: Duration::from_secs(30),
        max_behind: Duration::from_secs(30),
    };
    let t0 = Instant::now();
    let mut chs = Channels::new(config(limits));
    let mut fx = Effects::default();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    for id in [W, W2] {
        chs.watch(id, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
            .unwrap();
    }
    let budget = flv.len() / ts.len() / 4;
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    // The video tags sent, in order: (timestamp, keyframe).
    let mut clip: Vec<(u32, bool)> = Vec::new();
    // Three loops of the clip, re-stamped, so the pace is measured: 12 s at real time.
    for lap in 0..3u32 {
        for (i, t) in ts.iter().enumerate() {
            let end = ts.get(i + 1).map_or(flv.len(), |n| n.0);
            let mut tag = flv[t.0..end].to_vec();
            let stamp = t.3 + 4000 * lap;
            if tag.len() >= 11 && matches!(tag[0] & 0x1f, 8 | 9) {
                tag[4..7].copy_from_slice(&stamp.to_be_bytes()[1..]);
                tag[7] = (stamp >> 24) as u8;
            }
            if t.1 == TagKind::Video {
                clip.push((stamp, t.2));
            }
            let now = t0 + Duration::from_millis(u64::from(stamp));
            if lap == 0 && i == 0 {
                chs.push(&key(), &flv[..t.0], now, wall(), &mut fx);
            }
            chs.push(&key(), &tag, now, wall(), &mut fx);
            fast.extend(drain(&mut chs, W));
            slow.extend(drain_at_most(&mut chs, W2, budget));
        }
    }
    assert!(fx.drop.is_empty(), "{:?}", fx.drop);
    let st = chs.sub(W2).unwrap().stats();
    assert!(st.skips >= 1, "the slow watcher skipped: {st:?}");
    assert_eq!(chs.sub(W).unwrap().stats().skips, 0, "the fast one did not");
    assert!(chs.room(&key()), "real time: the broadcaster is never held");
    // What the slow one got decodes: wherever frames are missing, it resumes on a keyframe.
    let mut at: Option<usize> = None;
    let mut starts = 0;
    for t in tags_ts(&slow).into_iter().filter(|t| t.1 == TagKind::Video) {
        // The sequence header and the first IDR share timestamp 0: search forward.
        let from = at.map_or(0, |a| a + 1);
        let i = from + clip[from..].iter().position(|c| *c == (t.3, t.2)).unwrap();
        if at.is_none_or(|a| i != a + 1) {
            starts += 1;
            assert!(
                clip[i].1,
                "resumes at video tag {i} ({} ms), not a keyframe",
                t.3
            );
        }
        at = Some(i);
    }
    assert!(starts >= 2, "{starts} starts");
    assert_eq!(
        video_tags(&fast).len(),
        clip.len(),
        "the fast one got every frame"
    );
    assert!(chs.stats(t0, |_| None)[0].delivery == "realtime");
}

#[test]
fn a_watcher_waiting_before_a_ts_broadcast_gets_what_precedes_its_first_keyframe() {
    // An SDT packet (PID 17, as ffmpeg writes first), then river's TS of the clip.
    let mut ts = vec![0x47, 0x40, 0x11, 0x10];
    ts.resize(188, 0xff);
    ts.extend(testdata::ts());
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.watch(W, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap();
    chs.broadcast(
        PUB,
        &key(),
        None,
        peer(),
        "fstream",
        Instant::now(),
        &mut fx,
    );
    for piece in ts.chunks(1000) {
        chs.push(&key(), piece, t0, wall(), &mut fx);
    }
    chs.end(&key(), t0, wall(), "end", &mut fx);
    assert_eq!(drain(&mut chs, W), ts);
}

#[test]
fn metrics_keep_what_watchers_and_channels_leave_behind() {
    use crate::relay::metrics::{kind_index, Leave, EXPIRY};
    let flv = testdata::flv();
    let t0 = Instant::now();
    let mut chs = Channels::new(config(roomy()));
    let mut fx = Effects::default();
    chs.broadcast(PUB, &key(), None, peer(), "rtmp", t0, &mut fx);
    chs.watch(W, &key(), None, SubKind::Fstream, peer(), t0, &mut fx)
        .unwrap();
    chs.watch(
        W2,
        &key(),
        None,
        SubKind::Http(Ext::Flv),
        peer(),
        t0,
        &mut fx,
    )
    .unwrap();
    chs.push(&key(), &flv, t0, wall(), &mut fx);
    let a = drain(&mut chs, W);
    let b = drain(&mut chs, W2);
    assert_eq!(a.len(), flv.len());
    chs.leave(W);
    let (fs, hf) = (kind_index("fstream"), kind_index("http-flv"));
    let closed = Leave::ALL.iter().position(|&l| l == Leave::Closed).unwrap();
    let end = Leave::ALL.iter().position(|&l| l == Leave::End).unwrap();
    let t1 = t0 + Duration::from_secs(3);
    let (m, delay) = chs.metrics(t1);
    assert_eq!(m.len(), 1);
    let c = &m[0];
    assert!(c.live);
    assert_eq!(c.publish_uptime_secs, 3.0);
    assert_eq!(c.bytes_in, vec![("rtmp", flv.len() as u64)]);
    assert_eq!((c.watchers[fs], c.watchers[hf]), (0, 1));
    assert_eq!(c.totals[fs].bytes_out, a.len() as u64, "kept after it left");
    assert_eq!(c.totals[fs].leaves[closed], 1);
    assert_eq!(c.totals[hf].bytes_out, b.len() as u64);
    assert!(delay[fs].count() > 0 && delay[hf].count() > 0);
    // The broadcast ends: the HTTP watcher drains, leaves as "end"; the channel goes.
    chs.end(&key(), t1, wall(), "end", &mut fx);
    assert!(chs.sub(W2).unwrap().eof_after_drain);
    chs.leave(W2);
    let (m, _) = chs.metrics(t1);
    assert_eq!(m.len(), 1, "a gone channel's series stay a while");
    assert!(!m[0].live);
    assert_eq!(m[0].totals[hf].leaves[end], 1);
    assert_eq!(m[0].bytes_in, vec![("rtmp", flv.len() as u64)]);
    let (m, delay) = chs.metrics(t1 + EXPIRY);
    assert!(m.is_empty(), "then they go");
    assert!(delay[fs].count() > 0, "the hub-wide histogram stays");
}
