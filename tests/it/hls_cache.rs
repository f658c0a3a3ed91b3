//! HLS behind a cache, the CDN stand-in: nginx with `proxy_cache`, configured by
//! docs/nginx-hls-cache.conf exactly as the README gives it, in front of `river-hls-seg --serve`,
//! and a hundred players following the live playlist through it.
//!
//! - the origin gets one request per segment however many players fetch it, and about one per
//!   playlist expiry (nginx's access log says which requests went upstream);
//! - every player gets every segment, the same bytes as every other player;
//! - no player ever gets a playlist naming a segment the origin had already deleted (a watcher
//!   notes when each file disappears from the origin's directory);
//! - every playlist a player gets passes the playlist checker, version after version.
//!
//! CI runs 16 s of stream; `RIVER_HLS_CACHE_SECS=300` runs longer. bench/hls_cache.sh compares
//! the origin's load with the players on it directly and through the cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::nginx::Nginx;
use crate::common::playlist::Checker;
use crate::common::*;
use crate::llhls::{get, Pipeline};
use crate::progress::{metric, metrics_addr, scrape, scrape_until};

const PLAYERS: usize = 100;

/// docs/nginx-hls-cache.conf with the test's addresses: each replaced text must be there once,
/// so the file cannot drift from what the test runs.
fn cache_config(origin: &str, cache_dir: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/nginx-hls-cache.conf");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        ("server 127.0.0.1:9000;", format!("server {origin};")),
        ("listen 8080;", "listen 127.0.0.1:{port};".to_string()),
        (
            "/var/lib/nginx/river-hls",
            cache_dir.to_string_lossy().to_string(),
        ),
    ] {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{}: {from:?} once",
            path.display()
        );
        text = text.replace(from, &to);
    }
    text
}

/// When each `.ts` file left the origin's directory (first seen missing), polled every 5 ms.
fn watch_deletions(
    dir: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<HashMap<String, Instant>> {
    std::thread::spawn(move || {
        let mut present = std::collections::HashSet::new();
        let mut gone = HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            let now: std::collections::HashSet<String> = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .filter(|n| n.ends_with(".ts") && !n.starts_with('.'))
                        .collect()
                })
                .unwrap_or_default();
            let t = Instant::now();
            for f in present.difference(&now) {
                gone.entry(f.clone()).or_insert(t);
            }
            present = now;
            std::thread::sleep(Duration::from_millis(5));
        }
        gone
    })
}

/// What one player got.
#[derive(Default)]
struct Played {
    /// Every playlist: when it arrived, and the segments it named.
    playlists: Vec<(Instant, Vec<String>)>,
    /// Segments by media sequence number: URI, size, FNV-1a hash of the bytes.
    segments: BTreeMap<u64, (String, usize, u64)>,
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Follows the live playlist at `url` as a player does: reload about once a second (a little
/// off the others' rhythm), fetch each new segment once, stop at EXT-X-ENDLIST.
fn player(i: usize, url: String, deadline: Instant) -> Result<Played, String> {
    let base = url.trim_end_matches("movie.m3u8").to_string();
    let mut played = Played::default();
    let mut checker = Checker::default();
    let mut next: Option<u64> = None;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
        assert!(
            Instant::now() < deadline,
            "player {i}: no EXT-X-ENDLIST in time"
        );
        let (st, _, body) = get(&url);
        let t = Instant::now();
        assert_eq!(
            st,
            200,
            "player {i}: playlist {}",
            String::from_utf8_lossy(&body)
        );
        let p = checker.check(&String::from_utf8(body).unwrap());
        played
            .playlists
            .push((t, p.segments.iter().map(|s| s.uri.clone()).collect()));
        let from = *next.get_or_insert(p.media_sequence);
        assert!(
            from >= p.media_sequence,
            "player {i}: segment {from} left the window before it was fetched: {}",
            p.text
        );
        for s in p.segments.iter().filter(|s| s.msn >= from) {
            let (st, _, data) = get(&format!("{base}{}", s.uri));
            assert_eq!(st, 200, "player {i}: {}", s.uri);
            assert!(
                !data.is_empty() && data.len() % 188 == 0 && data[0] == 0x47,
                "player {i}: {} is not MPEG-TS ({} bytes)",
                s.uri,
                data.len()
            );
            played
                .segments
                .insert(s.msn, (s.uri.clone(), data.len(), fnv(&data)));
            next = Some(s.msn + 1);
        }
        if p.ended {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000 + (i as u64 * 37) % 250));
    }))
    .map(|()| played)
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn secs_from_env(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// [`PLAYERS`] players on `url` at once until the stream ends; what each got, and how long
/// they played.
fn play_all(url: &str, secs: u32) -> (Vec<(usize, Played)>, Duration) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(u64::from(secs) + 60);
    let players: Vec<_> = (0..PLAYERS)
        .map(|i| {
            let url = url.to_string();
            std::thread::spawn(move || (i, player(i, url, deadline)))
        })
        .collect();
    let mut played = Vec::new();
    for p in players {
        let (i, r) = p.join().unwrap();
        played.push((i, r.unwrap_or_else(|e| panic!("{e}"))));
    }
    (played, start.elapsed())
}

/// The origin: a live window of three 2 s segments, so segments leave (and are deleted four
/// target durations later) while the players play.
fn origin(name: &str, secs: u32) -> (Pipeline, String) {
    let live = Pipeline::start(
        name,
        secs,
        &["--list-size", "3", "--metrics", "127.0.0.1:0"],
    );
    let addr = live
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    (live, addr)
}

fn nginx_in_front(name: &str, origin: &str) -> Nginx {
    let cache_dir = tmpdir().join(format!("{name}-cache"));
    let _ = std::fs::remove_dir_all(&cache_dir);
    Nginx::start(name, &cache_config(origin, &cache_dir))
}

/// The requests nginx passed to the origin: (segments, playlists).
fn upstream(log: &[crate::common::nginx::Access]) -> (usize, usize) {
    let n = |suffix: &str| {
        log.iter()
            .filter(|a| a.upstream.is_some() && a.uri.ends_with(suffix))
            .count()
    };
    (n(".ts"), n(".m3u8"))
}

fn requests(played: &[(usize, Played)]) -> usize {
    played
        .iter()
        .map(|(_, p)| p.playlists.len() + p.segments.len())
        .sum()
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces: utime and
    // stime are the 12th and 13th.
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn a_hundred_players_through_nginx_proxy_cache() {
    let secs = secs_from_env("RIVER_HLS_CACHE_SECS", 16);
    let (live, addr) = origin("hls-cache", secs);
    // What the origin says it answered, independently of nginx's log.
    let metrics = metrics_addr(&live.log.lock().unwrap()).expect("the metrics address");
    let answered = |b: &str| metric(b, "river_hls_seg_http_requests_total").unwrap_or(0.0) as usize;
    // The meter takes the server's count at each read of the input: settled once two scrapes
    // 250 ms apart agree (Pipeline::start's own requests came just before).
    let mut before = answered(&scrape(&metrics));
    wait_until(
        "the origin's count settles",
        Duration::from_secs(10),
        || {
            std::thread::sleep(Duration::from_millis(250));
            let now = answered(&scrape(&metrics));
            std::mem::replace(&mut before, now) == now
        },
    );
    let nginx = nginx_in_front("hls-cache-nginx", &addr);
    let url = format!("{}/live/movie.m3u8", nginx.base());
    let stop = Arc::new(AtomicBool::new(false));
    let deletions = watch_deletions(live.dir.clone(), Arc::clone(&stop));
    let (played, wall) = play_all(&url, secs);
    stop.store(true, Ordering::SeqCst);
    let gone = deletions.join().unwrap();

    // Every player got every segment, from the first, the same bytes as the others.
    let first = &played[0].1.segments;
    assert_eq!(
        first.keys().next(),
        Some(&0),
        "the players started at the first segment"
    );
    let count = first.len() as u64;
    assert_eq!(first.keys().last(), Some(&(count - 1)), "no gap");
    assert!(count as u32 >= secs / 2 - 1, "{count} segments in {secs} s");
    for (i, p) in &played {
        assert_eq!(&p.segments, first, "player {i} got what player 0 got");
    }
    // One player's segments, end to end, decode cleanly.
    let whole: Vec<u8> = first
        .values()
        .flat_map(|(uri, _, _)| {
            let (st, _, b) = get(&format!("{}/live/{uri}", nginx.base()));
            assert_eq!(st, 200, "{uri} from the cache after the end");
            b
        })
        .collect();
    assert_decodes_cleanly(&write_tmp("hls-cache-played.ts", &whole));

    // No playlist named a segment the origin had deleted by the time the player got it.
    for (i, p) in &played {
        for (t, uris) in &p.playlists {
            for u in uris {
                if let Some(d) = gone.get(u) {
                    assert!(
                        d >= t,
                        "player {i} got a playlist naming {u} {:?} after the origin deleted it",
                        t.duration_since(*d)
                    );
                }
            }
        }
    }
    assert!(
        !gone.is_empty(),
        "segments were deleted while the players played"
    );

    // The origin: one request per segment, about one per playlist expiry.
    let log = nginx.accesses();
    assert!(log.iter().all(|a| a.status == 200), "{log:?}");
    let mut per_segment: BTreeMap<&str, usize> = BTreeMap::new();
    for a in log
        .iter()
        .filter(|a| a.upstream.is_some() && a.uri.ends_with(".ts"))
    {
        *per_segment.entry(a.uri.as_str()).or_default() += 1;
    }
    // What the players asked, and the whole-stream read above (each segment once more).
    let asked = requests(&played) + count as usize;
    let (seg_up, pl_up) = upstream(&log);
    eprintln!(
        "{PLAYERS} players, {count} segments, {:.1} s: {asked} requests to nginx, {} to the origin ({seg_up} segments, {pl_up} playlists): {:.1} player requests per origin request",
        wall.as_secs_f64(),
        seg_up + pl_up,
        asked as f64 / (seg_up + pl_up) as f64
    );
    assert_eq!(
        per_segment.len() as u64,
        count,
        "every segment went to the origin"
    );
    assert!(
        per_segment.values().all(|&n| n == 1),
        "segments fetched from the origin more than once: {per_segment:?}"
    );
    // river-hls-seg counted the same requests nginx passed on (its figures follow within
    // 100 ms once the input has ended).
    let up = seg_up + pl_up;
    scrape_until(
        &metrics,
        &format!("the origin's count ({before} before)"),
        |b| answered(b) - before == up,
    );
    // The playlist's max-age is 1 s (half the 2 s target): at most one refresh a second, and
    // the first fetch.
    assert!(
        pl_up as f64 <= wall.as_secs_f64() + 2.0,
        "{pl_up} playlist requests to the origin in {wall:?}"
    );
}

/// The origin's load with [`PLAYERS`] players on it directly, and through nginx's cache, over
/// RIVER_BENCH_SECS (60) each: requests it answers and its CPU time. A benchmark, not a test:
/// bench/hls_cache.sh runs it.
#[test]
#[ignore]
fn bench_origin_load_with_and_without_the_cache() {
    let secs = secs_from_env("RIVER_BENCH_SECS", 60);
    let mut rows = Vec::new();
    for cached in [false, true] {
        let (live, addr) = origin("hls-cache-bench", secs);
        let nginx = cached.then(|| nginx_in_front("hls-cache-bench-nginx", &addr));
        let url = match &nginx {
            Some(n) => format!("{}/live/movie.m3u8", n.base()),
            None => live.url.clone(),
        };
        let cpu0 = cpu_secs(live.seg_pid());
        let (played, wall) = play_all(&url, secs);
        let cpu = cpu_secs(live.seg_pid()) - cpu0;
        let asked = requests(&played);
        let at_origin = match &nginx {
            Some(n) => {
                let (s, p) = upstream(&n.accesses());
                s + p
            }
            None => asked,
        };
        rows.push((cached, asked, at_origin, cpu, wall));
    }
    println!(
        "{PLAYERS} players, {secs} s of live HLS (2 s segments) each way; origin: river-hls-seg --serve"
    );
    println!(
        "{:<14} {:>14} {:>16} {:>12} {:>8}",
        "players on", "player_reqs", "origin_reqs", "origin_cpu_s", "wall_s"
    );
    for (cached, asked, at, cpu, wall) in &rows {
        println!(
            "{:<14} {asked:>14} {at:>16} {cpu:>12.2} {:>8.1}",
            if *cached { "nginx cache" } else { "the origin" },
            wall.as_secs_f64()
        );
    }
    let (d, c) = (&rows[0], &rows[1]);
    println!(
        "origin requests direct/cached: {:.1}x; origin CPU direct/cached: {:.1}x",
        d.2 as f64 / c.2.max(1) as f64,
        d.3 / c.3.max(0.01)
    );
}
