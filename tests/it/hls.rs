//! river-hls-seg against real ffmpeg/ffprobe.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// 12 s, 1 s GOP, B-frames, AAC: six 2 s segments.
const CLIP: Clip = Clip {
    width: 320,
    height: 240,
    fps: 30,
    bframes: 3,
    audio: true,
    gop_secs: 1,
    secs: 12,
};

pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    let d = tmpdir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

pub(crate) struct Listed {
    pub target: u64,
    pub media_sequence: u64,
    pub segments: Vec<(f64, String, bool)>,
    pub ended: bool,
    pub text: String,
}

/// Reads a playlist and checks it against the spec's rules ([`crate::common::playlist`]).
pub(crate) fn parse_playlist(path: &Path) -> Listed {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let p = crate::common::playlist::check(&text);
    Listed {
        target: p.target,
        media_sequence: p.media_sequence,
        segments: p
            .segments
            .iter()
            .map(|s| (s.duration, s.uri.clone(), s.discontinuity))
            .collect(),
        ended: p.ended,
        text,
    }
}

/// Every listed segment decodes on its own, starts with PAT then PMT, and its first video packet
/// is a keyframe; TARGETDURATION holds.
pub(crate) fn check_segments(dir: &Path, l: &Listed) {
    for (d, uri, _) in &l.segments {
        let p = dir.join(uri);
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!(data.len() % 188, 0, "{uri}: whole packets");
        let pid = |o: usize| u16::from_be_bytes([data[o + 1] & 0x1f, data[o + 2]]);
        assert_eq!(
            (pid(0), pid(188)),
            (0, 0x1000),
            "{uri} starts with PAT, PMT"
        );
        assert_decodes_cleanly(&p);
        let pk = probe_packets(&p);
        assert!(
            pk.iter().find(|p| p.kind == "video").unwrap().key,
            "{uri} starts with a keyframe"
        );
        assert!(
            (d + 0.5).floor() as u64 <= l.target,
            "{uri}: EXTINF {d} rounds to at most TARGETDURATION {}",
            l.target
        );
    }
}

fn seg(args: &[&str], input: &[u8]) -> Out {
    let out = run(&river("river-hls-seg"), args, input);
    assert!(
        out.status.success(),
        "river-hls-seg {args:?}: {}",
        out.stderr
    );
    out
}

#[test]
fn live_window_segments_decode_and_old_ones_go() {
    let input = std::fs::read(CLIP.remux("mpegts")).unwrap();
    let dir = fresh_dir("hls-live");
    let d = dir.to_string_lossy().to_string();
    let out = seg(
        &[
            "--dir",
            &d,
            "--name",
            "movie",
            "--segment-time",
            "2",
            "--list-size",
            "3",
        ],
        &input,
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let l = parse_playlist(&dir.join("movie.m3u8"));
    assert!(l.ended, "EXT-X-ENDLIST at end of input");
    assert_eq!(l.segments.len(), 3, "{}", l.text);
    assert_eq!(l.media_sequence, 3);
    assert_eq!(l.target, 2, "TARGETDURATION is --segment-time (1 s GOPs)");
    assert!(!l.text.contains("PLAYLIST-TYPE"));
    assert!(l.text.contains("#EXT-X-PROGRAM-DATE-TIME:"));
    check_segments(&dir, &l);
    let ts_files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "ts")
        })
        .count();
    assert_eq!(
        ts_files, 3,
        "segments that left the window are deleted at the end"
    );
    // ffmpeg plays the playlist.
    assert_decodes_cleanly(&dir.join("movie.m3u8"));
}

#[test]
fn dvr_extinf_adds_up_and_ends_as_vod() {
    let input = std::fs::read(CLIP.remux("mpegts")).unwrap();
    let dir = fresh_dir("hls-dvr");
    let d = dir.to_string_lossy().to_string();
    let hook_log = dir.with_extension("hook.log");
    let _ = std::fs::remove_file(&hook_log);
    let hook = format!(
        "echo \"$RIVER_SEGMENT_URI $RIVER_SEGMENT_DURATION $(test -s \"$RIVER_SEGMENT\" && echo ok)\" >> {}",
        hook_log.display()
    );
    seg(
        &[
            "--dir",
            &d,
            "--dvr",
            "--utc",
            "--segment-name",
            "%Y/%m/%d/%H%M%S.ts",
            "--on-segment",
            &hook,
        ],
        &input,
    );
    let l = parse_playlist(&dir.join("movie.m3u8"));
    assert!(l.ended);
    assert!(l.text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
    assert_eq!(l.segments.len(), 6, "{}", l.text);
    assert!(
        l.segments
            .iter()
            .all(|(_, u, _)| u.matches('/').count() == 3),
        "strftime folders: {}",
        l.text
    );
    check_segments(&dir, &l);
    let total: f64 = l.segments.iter().map(|s| s.0).sum();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(CLIP.remux("mpegts"))
        .output()
        .unwrap();
    let media: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        (total - media).abs() <= 1.0 / 30.0,
        "EXTINF sum {total} vs media duration {media}"
    );
    // The whole recording plays as one.
    assert_decodes_cleanly(&dir.join("movie.m3u8"));
    let frames = probe_packets(&dir.join("movie.m3u8"))
        .iter()
        .filter(|p| p.kind == "video")
        .count();
    assert_eq!(frames, 12 * 30);
    // --on-segment ran once per segment, after the segment was complete.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&hook_log).unwrap_or_default();
        if log.lines().count() == 6 || Instant::now() > deadline {
            assert_eq!(log.lines().count(), 6, "{log}");
            assert!(log.lines().all(|l| l.ends_with(" ok")), "{log}");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn duration_stops_by_itself() {
    let input = std::fs::read(CLIP.remux("mpegts")).unwrap();
    let dir = fresh_dir("hls-duration");
    let d = dir.to_string_lossy().to_string();
    seg(&["--dir", &d, "--dvr", "--duration", "5s"], &input);
    let l = parse_playlist(&dir.join("movie.m3u8"));
    assert!(l.ended);
    let total: f64 = l.segments.iter().map(|s| s.0).sum();
    assert!((total - 5.0).abs() <= 0.05, "{total}");
    check_segments(&dir, &l);
}

#[test]
fn discontinuity_is_marked() {
    // Two recordings back to back, the second's clock 30 s behind.
    let src = CLIP.flv().to_string_lossy().to_string();
    let a = tmpdir().join("hls-jump-a.ts");
    let b = tmpdir().join("hls-jump-b.ts");
    ffmpeg(&[
        "-i",
        &src,
        "-c",
        "copy",
        "-t",
        "6",
        "-output_ts_offset",
        "40",
        "-f",
        "mpegts",
        &a.to_string_lossy(),
    ]);
    ffmpeg(&[
        "-i",
        &src,
        "-c",
        "copy",
        "-t",
        "6",
        "-f",
        "mpegts",
        &b.to_string_lossy(),
    ]);
    let mut input = std::fs::read(&a).unwrap();
    input.extend(std::fs::read(&b).unwrap());
    let dir = fresh_dir("hls-jump");
    let d = dir.to_string_lossy().to_string();
    let out = seg(&["--dir", &d, "--dvr"], &input);
    assert!(out.stderr.contains("jumped"), "{}", out.stderr);
    let l = parse_playlist(&dir.join("movie.m3u8"));
    let marked: Vec<usize> = l
        .segments
        .iter()
        .enumerate()
        .filter(|s| s.1 .2)
        .map(|s| s.0)
        .collect();
    assert_eq!(marked.len(), 1, "one break, marked once: {}", l.text);
    // The mark sits where the second recording starts.
    let before: f64 = l.segments[..marked[0]].iter().map(|s| s.0).sum();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&a)
        .output()
        .unwrap();
    let first: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        (before - first).abs() <= 0.05,
        "{before} s before the mark, first recording {first} s"
    );
    check_segments(&dir, &l);
}

/// river-hls-seg with `args`, stdin piped, stderr captured.
pub(crate) fn spawn_seg(args: &[&str]) -> std::process::Child {
    Command::new(river("river-hls-seg"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Writes the first `part` of the input, waits until `want` segments are listed, and returns
/// the child with its stdin still open.
fn run_until_listed(
    dir: &Path,
    part: f64,
    want: usize,
) -> (std::process::Child, std::process::ChildStdin) {
    let input = std::fs::read(CLIP.remux("mpegts")).unwrap();
    let d = dir.to_string_lossy().to_string();
    let mut child = spawn_seg(&["--dir", &d, "--dvr"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&input[..(input.len() as f64 * part) as usize])
        .unwrap();
    stdin.flush().unwrap();
    let playlist = dir.join("movie.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if playlist.exists() {
            // Atomic writes: every read is a whole playlist.
            let l = parse_playlist(&playlist);
            assert!(l.text.ends_with('\n'));
            if l.segments.len() >= want {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {want} segments listed in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, stdin)
}

#[test]
fn sigterm_finishes_the_segment_in_hand_and_ends_the_playlist() {
    let dir = fresh_dir("hls-sigterm");
    let (mut child, stdin) = run_until_listed(&dir, 0.6, 2);
    let ok = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = wait_deadline(
        &mut child,
        Duration::from_secs(20),
        "river-hls-seg after SIGTERM",
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    drop(stdin);
    let l = parse_playlist(&dir.join("movie.m3u8"));
    assert!(l.ended, "ENDLIST after SIGTERM: {}", l.text);
    assert!(l.text.contains("PLAYLIST-TYPE:VOD"));
    // Everything received was kept: about 60 % of 12 s.
    let total: f64 = l.segments.iter().map(|s| s.0).sum();
    assert!(total >= 6.0, "kept {total} s");
    check_segments(&dir, &l);
}

#[test]
fn sigkill_leaves_only_playable_entries() {
    let dir = fresh_dir("hls-sigkill");
    let (mut child, stdin) = run_until_listed(&dir, 0.7, 3);
    // The segment in hand is written under a hidden temporary name until it is complete.
    let temporaries = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while temporaries().is_empty() {
        assert!(Instant::now() < deadline, "no segment in progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = wait_deadline(
        &mut child,
        Duration::from_secs(20),
        "river-hls-seg after SIGKILL",
    );
    drop(stdin);
    let l = parse_playlist(&dir.join("movie.m3u8"));
    assert!(!l.ended);
    assert!(l.segments.len() >= 3);
    check_segments(&dir, &l);
    // The next run removes what the killed one left half-written.
    let left = temporaries();
    assert_eq!(left.len(), 1, "{left:?}");
    let d = dir.to_string_lossy().to_string();
    let out = run(&river("river-hls-seg"), &["--dir", &d, "--dvr"], b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("removed 1 temporary files"),
        "{}",
        out.stderr
    );
    assert_eq!(temporaries(), Vec::<String>::new());
}

#[test]
fn bad_options_are_usage_errors() {
    let dir = fresh_dir("hls-usage");
    let d = dir.to_string_lossy().to_string();
    for args in [
        vec!["--dir", &d, "--segment-time", "0"],
        vec!["--dir", &d, "--list-size", "0"],
        vec!["--dir", &d, "--name", "../x"],
        vec!["--dir", &d, "--align", "15m"],
    ] {
        let out = run(&river("river-hls-seg"), &args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
    }
    let out = run(
        &river("river-hls-seg"),
        &["--dir", &d, "--dvr", "--segment-name", "../%s.ts"],
        &std::fs::read(CLIP.remux("mpegts")).unwrap(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

/// `river-testsrc --realtime | river-hls-seg --serve 127.0.0.1:0`: returns both children and the
/// playlist URL the segmenter printed.
fn live_pipeline(dir: &Path, extra: &[&str]) -> (std::process::Child, std::process::Child, String) {
    let mut src = Command::new(river("river-testsrc"))
        .args(["--realtime", "--duration", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let d = dir.to_string_lossy().to_string();
    let mut args = vec!["--dir", &d, "--serve", "127.0.0.1:0", "--segment-time", "1"];
    args.extend_from_slice(extra);
    let mut seg = Command::new(river("river-hls-seg"))
        .args(&args)
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The bound address comes on stderr: "... serving http://127.0.0.1:PORT/live/movie.m3u8".
    let mut err = seg.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        loop {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if let Some(url) = all.split_whitespace().find(|w| w.starts_with("http://")) {
                        let _ = tx.send(url.to_string());
                        all.clear();
                    }
                }
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("river-hls-seg printed its URL");
    (src, seg, url)
}

#[test]
fn ffmpeg_plays_the_live_playlist_over_http() {
    let dir = fresh_dir("hls-serve");
    let (mut src, mut seg, url) = live_pipeline(&dir, &["--list-size", "4"]);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/live/movie.m3u8"),
        "{url}"
    );
    let playlist = dir.join("movie.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(playlist.exists() && parse_playlist(&playlist).segments.len() >= 3) {
        assert!(Instant::now() < deadline, "no segments listed in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run(
        Path::new("ffmpeg"),
        &[
            "-nostdin", "-v", "error", "-i", &url, "-t", "4", "-f", "null", "-",
        ],
        b"",
    );
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "ffmpeg over HTTP: {}",
        out.stderr
    );
    let _ = src.kill();
    let _ = src.wait();
    let ok = Command::new("kill")
        .args(["-s", "TERM", &seg.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = wait_deadline(
        &mut seg,
        Duration::from_secs(20),
        "river-hls-seg --serve after SIGTERM",
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn hls_js_in_headless_chromium_plays_river_hls_seg() {
    let dir = fresh_dir("hls-chromium");
    let (mut src, mut seg, url) = live_pipeline(&dir, &["--list-size", "6"]);
    let playlist = dir.join("movie.m3u8");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(playlist.exists() && parse_playlist(&playlist).segments.len() >= 3) {
        assert!(Instant::now() < deadline, "no segments listed in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = url.replace("/live/movie.m3u8", "/");
    let played = crate::common::browser::play(&page, 5.0);
    let _ = src.kill();
    let _ = src.wait();
    let _ = Command::new("kill")
        .args(["-s", "TERM", &seg.id().to_string()])
        .status();
    let _ = wait_deadline(&mut seg, Duration::from_secs(20), "river-hls-seg");
    // river-testsrc is 30 fps.
    played.assert_played(5.0, 30.0, crate::common::browser::StartGap::None, &page);
}
