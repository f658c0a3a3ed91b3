//! river-hls-seg's DVR retention (`--keep`, `--max-size`) and restarts in the same directory,
//! against the real ffmpeg and the independent playlist checker ([`crate::common::playlist`]).
//!
//! The recording is three minutes of `river-testsrc`, written faster than real time (about 35x)
//! so that retention runs dozens of times, while a watcher reads the playlist as fast as it can:
//! every version passes the checker and the version-to-version rules, every file a version names
//! exists, and the files on disk stay within `--max-size`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::playlist::{check, Checker, Parsed};
use crate::common::*;
use crate::hls::{fresh_dir, spawn_seg};

/// `river-testsrc --duration SPAN` (MPEG-TS, as fast as it goes).
fn testsrc(span: &str) -> Vec<u8> {
    let out = run(&river("river-testsrc"), &["--duration", span], b"");
    assert!(out.status.success(), "river-testsrc: {}", out.stderr);
    out.stdout
}

/// Writes `data` in 32 KiB pieces 15 ms apart (about 35 times real time for river-testsrc's
/// 365 kbit/s), then closes stdin.
fn feed(mut c: std::process::ChildStdin, data: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for chunk in data.chunks(32 * 1024) {
            if c.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    })
}

/// The files a playlist names: segments, init segments and parts (not the preload hint).
fn named(p: &Parsed) -> Vec<String> {
    let mut v = Vec::new();
    for s in &p.segments {
        v.extend(s.map.clone());
        v.extend(s.parts.iter().map(|x| x.uri.clone()));
        v.push(s.uri.clone());
    }
    v.extend(p.open_parts.iter().map(|x| x.uri.clone()));
    v.sort();
    v.dedup();
    v
}

/// Every regular file under `dir`: (path relative to it, size).
fn files(dir: &Path) -> Vec<(String, u64)> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, u64)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => walk(root, &p, out),
                // A file deleted between the listing and here is simply gone.
                Ok(m) => out.push((
                    p.strip_prefix(root).unwrap().to_string_lossy().to_string(),
                    m.len(),
                )),
                Err(_) => {}
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v
}

/// Every folder under `dir` (not `dir` itself).
fn folders(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                v.push(e.path());
                todo.push(e.path());
            }
        }
    }
    v
}

/// What the watcher saw.
#[derive(Default, Debug)]
struct Seen {
    playlists: usize,
    /// The most bytes on disk at once, counting every file but the playlist and the temporary
    /// file of the segment being written.
    most_on_disk: u64,
    /// The largest segment file listed.
    largest_segment: u64,
    /// Some version had dropped segments (MEDIA-SEQUENCE above 0).
    slid: bool,
    /// Consistent views of the disk taken.
    snapshots: usize,
    last: Option<Parsed>,
}

/// Reads DIR/movie.m3u8 as fast as it can until `stop`: see the module docs.
fn watch(dir: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Result<Seen, String>> {
    std::thread::spawn(move || {
        let pl = dir.join("movie.m3u8");
        let mut seen = Seen::default();
        let mut checker = Checker::default();
        let mut last_text = String::new();
        let mut sizes = std::collections::HashMap::new();
        let body = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
            let done = stop.load(Ordering::SeqCst);
            if let Ok(text) = std::fs::read_to_string(&pl) {
                if text != last_text {
                    // Renamed into place: every read is a whole version.
                    let p = checker.check(&text);
                    seen.playlists += 1;
                    seen.slid |= p.media_sequence > 0;
                    for uri in named(&p) {
                        match std::fs::metadata(dir.join(&uri)) {
                            Ok(m) => {
                                sizes.insert(uri.clone(), m.len());
                            }
                            Err(_) => {
                                // Gone: legitimate only if it left the playlist since.
                                let now = std::fs::read_to_string(&pl).unwrap_or_default();
                                let still = named(&check(&now)).contains(&uri);
                                assert!(!still, "{uri} is listed and missing:\n{now}");
                            }
                        }
                    }
                    for s in &p.segments {
                        if let Some(&b) = sizes.get(&s.uri) {
                            seen.largest_segment = seen.largest_segment.max(b);
                        }
                    }
                    seen.last = Some(p);
                    last_text = text;
                }
            }
            // A walk of the folders is no snapshot: it may count a file about to be deleted in
            // one folder and one created meanwhile in the next. Two walks alike list files that
            // all existed at once (at the first's end: a name is never reused), so their sum is
            // bytes that were on disk together.
            let walk = || {
                let mut v: Vec<(String, u64)> = files(&dir)
                    .into_iter()
                    .filter(|(f, _)| !f.ends_with(".m3u8") && !f.ends_with(".tmp"))
                    .collect();
                v.sort();
                v
            };
            let a = walk();
            if a == walk() {
                let on_disk: u64 = a.iter().map(|(_, b)| b).sum();
                seen.most_on_disk = seen.most_on_disk.max(on_disk);
                seen.snapshots += 1;
            }
            if done {
                break;
            }
        }));
        match body {
            Ok(()) => Ok(seen),
            Err(e) => Err(e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()),
        }
    })
}

/// Runs `river-hls-seg --dir DIR ARGS` on three minutes of river-testsrc under the watcher;
/// returns what it saw and river-hls-seg's stderr. Once the playlist has slid, ffmpeg reads it
/// live.
fn record(dir: &Path, args: &[&str]) -> (Seen, String) {
    let input = testsrc("3m");
    let d = dir.to_string_lossy().to_string();
    let mut all = vec!["--dir", &d, "--dvr"];
    all.extend_from_slice(args);
    let mut seg = spawn_seg(&all);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(dir.to_path_buf(), Arc::clone(&stop));
    let feeder = feed(seg.stdin.take().unwrap(), input);
    // The sliding playlist plays while it slides: ffmpeg opens it live (at its last segments)
    // and reads four seconds.
    let pl = dir.join("movie.m3u8");
    wait_until("the playlist slides", Duration::from_secs(60), || {
        std::fs::read_to_string(&pl).is_ok_and(|t| !t.contains("#EXT-X-MEDIA-SEQUENCE:0\n"))
    });
    let p = pl.to_string_lossy().to_string();
    let out = run(
        Path::new("ffmpeg"),
        &[
            "-nostdin", "-v", "error", "-i", &p, "-t", "4", "-c", "copy", "-f", "null", "-",
        ],
        b"",
    );
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "ffmpeg reading the live playlist: {}",
        out.stderr
    );
    feeder.join().unwrap();
    let err = finish(seg, "river-hls-seg");
    stop.store(true, Ordering::SeqCst);
    let seen = watcher
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{err}"));
    (seen, err)
}

/// The final playlist: checked, ended, a sliding window (no PLAYLIST-TYPE), every listed file
/// there and nothing else on disk, no empty folder left, and ffmpeg decodes it all cleanly.
fn check_final(dir: &Path, seen: &Seen) -> Parsed {
    let text = std::fs::read_to_string(dir.join("movie.m3u8")).unwrap();
    let p = check(&text);
    assert!(p.ended, "{text}");
    assert!(
        p.playlist_type.is_none(),
        "an EVENT playlist may not lose segments: {text}"
    );
    assert!(p.media_sequence > 0, "{text}");
    let mut on_disk: Vec<String> = files(dir)
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| f != "movie.m3u8")
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, named(&p), "only what is listed is left");
    for f in folders(dir) {
        assert!(
            std::fs::read_dir(&f).unwrap().next().is_some(),
            "{} is empty",
            f.display()
        );
    }
    assert_decodes_cleanly(&dir.join("movie.m3u8"));
    assert!(
        seen.playlists >= 30 && seen.slid && seen.snapshots >= 30,
        "the watcher saw {} versions, {} snapshots of the disk",
        seen.playlists,
        seen.snapshots
    );
    p
}

#[test]
fn ts_archive_within_max_size_while_it_is_written() {
    let dir = fresh_dir("dvr-max-size");
    let max: u64 = 2 << 20;
    let (seen, err) = record(
        &dir,
        &[
            "--keep",
            "1m",
            "--max-size",
            "2MiB",
            "--utc",
            "--segment-name",
            "%Y%m%d/%H%M/%S.ts",
        ],
    );
    let p = check_final(&dir, &seen);
    // Bounded: everything but the segment being written. A watcher that lists the directory
    // while a batch is carried out may also count the segment just renamed into place before
    // the deletions it causes (HlsWriter::apply renames, writes the playlist, then deletes), so
    // one segment more.
    assert!(
        seen.most_on_disk <= max + seen.largest_segment,
        "{} bytes on disk at most, --max-size {max}, largest segment {}\n{err}",
        seen.most_on_disk,
        seen.largest_segment
    );
    // Size was the stricter limit: less than a minute is listed (2 MiB of 365 kbit/s less four
    // target durations of room for files in their grace period: about 38 s).
    let listed: f64 = p.segments.iter().map(|s| s.duration).sum();
    assert!(
        (20.0..60.0).contains(&listed),
        "{listed} s listed\n{}",
        p.text
    );
    // Minute folders: the early ones went when their last segment did.
    let minutes = folders(&dir).len();
    assert!(minutes <= 3, "{minutes} folders left: {:?}", folders(&dir));
}

#[test]
fn ll_hls_archive_keeps_the_last_minute() {
    let dir = fresh_dir("dvr-keep-ll");
    let (seen, err) = record(
        &dir,
        &["--low-latency", "--keep", "1m", "--max-size", "64MiB"],
    );
    let p = check_final(&dir, &seen);
    assert!(
        p.segments.iter().all(|s| s.map.is_some()),
        "fMP4: {}",
        p.text
    );
    // Age was the stricter limit: between a minute and a minute and one segment (2 s).
    let listed: f64 = p.segments.iter().map(|s| s.duration).sum();
    assert!(
        (60.0 - 1e-6..=62.0 + 1e-6).contains(&listed),
        "{listed} s listed\n{}\n{err}",
        p.text
    );
    assert!(seen.most_on_disk <= 64 << 20);
}

/// Waits for river-hls-seg and returns its stderr, failing on a non-zero exit.
fn finish_seg(c: Child) -> String {
    finish(c, "river-hls-seg")
}

#[test]
fn a_restart_picks_up_the_archive() {
    let dir = fresh_dir("dvr-restart");
    let d = dir.to_string_lossy().to_string();
    let pl = dir.join("movie.m3u8");
    // Run 1: 40 s, keeping 30 s.
    let mut seg = spawn_seg(&["--dir", &d, "--dvr", "--keep", "30s"]);
    feed(seg.stdin.take().unwrap(), testsrc("40s"))
        .join()
        .unwrap();
    finish_seg(seg);
    let mut checker = Checker::default();
    let first = checker.check(&std::fs::read_to_string(&pl).unwrap());
    assert!(first.ended && first.media_sequence > 0, "{}", first.text);
    // Run 2 keeps 20 s: before any input it lists the archive again, live, trimmed to 20 s.
    let mut seg = spawn_seg(&["--dir", &d, "--dvr", "--keep", "20s", "-v"]);
    let stdin = seg.stdin.take().unwrap();
    let mut resumed = None;
    wait_until(
        "run 2 picks up the archive",
        Duration::from_secs(30),
        || {
            let t = std::fs::read_to_string(&pl).unwrap_or_default();
            let done = !t.contains("#EXT-X-ENDLIST");
            if done {
                resumed = Some(t);
            }
            done
        },
    );
    let resumed = checker.check(&resumed.unwrap());
    let listed: f64 = resumed.segments.iter().map(|s| s.duration).sum();
    assert!(
        (20.0..=22.0).contains(&listed),
        "{listed}: {}",
        resumed.text
    );
    assert_eq!(resumed.next_msn(), first.next_msn(), "{}", resumed.text);
    // Then 10 s more.
    feed(stdin, testsrc("10s")).join().unwrap();
    let err = finish_seg(seg);
    assert!(err.contains("picked up"), "{err}");
    let last = checker.check(&std::fs::read_to_string(&pl).unwrap());
    assert!(last.ended);
    // Numbering continues, after a discontinuity, dated from where the archive ended (run 1 was
    // written faster than real time, so its dates run ahead of the clock).
    let new = last
        .segments
        .iter()
        .find(|s| s.msn == first.next_msn())
        .unwrap_or_else(|| panic!("no segment {}: {}", first.next_msn(), last.text));
    assert!(new.discontinuity, "{}", last.text);
    let old_end = first
        .segments
        .last()
        .map(|s| s.date_ms.unwrap() + (s.duration * 1000.0).round() as i64);
    assert_eq!(new.date_ms, old_end, "{}", last.text);
    assert!(
        last.segments.iter().any(|s| s.msn < first.next_msn()),
        "run 1's newest segments are still listed: {}",
        last.text
    );
    let listed: f64 = last.segments.iter().map(|s| s.duration).sum();
    assert!((20.0..=22.0).contains(&listed), "{listed}: {}", last.text);
    // Run 1's files that left are gone; what is listed plays across the restart.
    let ts = files(&dir)
        .iter()
        .filter(|(f, _)| f.ends_with(".ts"))
        .count();
    assert_eq!(ts, last.segments.len());
    assert_decodes_cleanly(&pl);
}
