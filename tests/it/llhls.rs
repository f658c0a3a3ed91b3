//! river-hls-seg's fMP4 segments and LL-HLS, against ffmpeg/ffprobe, the spec's rules
//! ([`crate::common::playlist`]) and hls.js in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::browser::{play, quantile, StartGap};
use crate::common::playlist::{check, Checker, Parsed};
use crate::common::*;

fn fresh_dir(name: &str) -> PathBuf {
    let d = tmpdir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
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

fn read_playlist(dir: &Path) -> Parsed {
    check(&std::fs::read_to_string(dir.join("movie.m3u8")).unwrap())
}

/// `init` then `segments` (URIs under `dir`) as one file.
fn concat(dir: &Path, init: &str, segments: &[&str], name: &str) -> PathBuf {
    let mut data = std::fs::read(dir.join(init)).unwrap();
    for s in segments {
        data.extend(std::fs::read(dir.join(s)).unwrap());
    }
    write_tmp(name, &data)
}

/// One sample at 44.1 kHz, plus ffprobe's printing to the microsecond: the audio track's
/// timescale is its sample rate, so each 90 kHz time is rounded to the nearest sample (half a
/// sample either way), and the offset compared against is taken from the first packet, which is
/// rounded too.
const AUDIO_TOL: f64 = 1.0 / 44_100.0 + 1e-6;
/// ffprobe prints times to the microsecond; video keeps 90 kHz.
const VIDEO_TOL: f64 = 1e-6;

#[test]
fn fmp4_keeps_the_source_timestamps_across_a_discontinuity_and_a_new_sps() {
    // Two recordings back to back: 6 s at 320x240 with B-frames whose clock is 40 s ahead, then
    // 6 s at 640x360: a jump the timeline re-stamps, and new parameter sets.
    let a_clip = Clip {
        width: 320,
        height: 240,
        fps: 30,
        bframes: 3,
        audio: true,
        gop_secs: 1,
        secs: 12,
    };
    let b_clip = Clip {
        width: 640,
        height: 360,
        ..a_clip
    };
    let a = tmpdir().join("llhls-jump-a.ts");
    let b = tmpdir().join("llhls-jump-b.ts");
    for (clip, out, offset) in [(&a_clip, &a, "40"), (&b_clip, &b, "0")] {
        let src = clip.flv().to_string_lossy().to_string();
        let o = out.to_string_lossy().to_string();
        ffmpeg(&[
            "-i",
            &src,
            "-c",
            "copy",
            "-t",
            "6",
            "-output_ts_offset",
            offset,
            "-f",
            "mpegts",
            &o,
        ]);
    }
    let mut input = std::fs::read(&a).unwrap();
    input.extend(std::fs::read(&b).unwrap());
    let dir = fresh_dir("llhls-fmp4");
    let d = dir.to_string_lossy().to_string();
    let out = seg(
        &["--dir", &d, "--dvr", "--utc", "--segment-type", "fmp4"],
        &input,
    );
    assert!(out.stderr.contains("jumped"), "{}", out.stderr);
    let p = read_playlist(&dir);
    assert!(p.ended && p.version >= 6);
    // Two init segments; the second comes with the discontinuity.
    let maps: Vec<&str> = p.segments.iter().filter_map(|s| s.map.as_deref()).collect();
    let first = maps[0];
    let split = p
        .segments
        .iter()
        .position(|s| s.map.as_deref() != Some(first));
    let split = split.expect("a second EXT-X-MAP");
    assert!(p.segments[split].discontinuity, "{}", p.text);
    assert_eq!(p.segments.iter().filter(|s| s.discontinuity).count(), 1);
    assert_eq!(p.text.matches("#EXT-X-MAP").count(), 2, "{}", p.text);
    // Every segment, after its init segment, is read by ffprobe and decodes cleanly.
    for s in &p.segments {
        let one = concat(&dir, s.map.as_deref().unwrap(), &[&s.uri], "llhls-one.mp4");
        let streams = probe_streams(&one);
        assert_eq!(streams.len(), 2, "{}: {streams:?}", s.uri);
        assert_decodes_cleanly(&one);
    }
    // Each recording as init + its segments plays, with the source's timestamps up to one
    // offset per recording, and the second follows the first without the jump.
    let mut ends = Vec::new();
    // After the jump the timeline gives the audio the video's correction, which puts the second
    // recording's first audio frame on the first one's last DTS; it clamps that one frame a tick
    // later (timeline.rs "Stay monotonic"; river-mux-ts shows the same: 7.545000 then 7.568211
    // for the source's 1.444000 and 1.467222). The offset compared against comes from that first
    // frame, so each frame of the second recording may be a tick further off.
    let tick = 1.0 / 90_000.0;
    for (range, src, size, name, audio_tol) in [
        (0..split, &a, (320, 240), "llhls-a.mp4", AUDIO_TOL),
        (
            split..p.segments.len(),
            &b,
            (640, 360),
            "llhls-b.mp4",
            AUDIO_TOL + tick,
        ),
    ] {
        let segs: Vec<&str> = p.segments[range.clone()]
            .iter()
            .map(|s| s.uri.as_str())
            .collect();
        let init = p.segments[range.start].map.as_deref().unwrap();
        let whole = concat(&dir, init, &segs, name);
        assert_decodes_cleanly(&whole);
        let st = probe_streams(&whole);
        assert_eq!((st[0].width, st[0].height), (Some(size.0), Some(size.1)));
        let got = probe_packets(&whole);
        let want = probe_packets(src);
        assert_same_timestamps(&got, &want, "video", VIDEO_TOL, name);
        assert_same_timestamps(&got, &want, "audio", audio_tol, name);
        let v: Vec<f64> = got
            .iter()
            .filter(|x| x.kind == "video")
            .map(|x| x.dts)
            .collect();
        ends.push((v[0], v[v.len() - 1]));
    }
    let gap = ends[1].0 - ends[0].1;
    assert!(
        gap > 0.0 && gap < 0.1,
        "the second recording follows the first ({gap} s later)"
    );
    // And ffmpeg plays the playlist through both.
    assert_decodes_cleanly(&dir.join("movie.m3u8"));
}

#[test]
fn hevc_in_fmp4_is_hvc1_with_the_source_timestamps() {
    // 6 s of H.265 (B-frames, closed 1 s GOPs) and AAC from ffmpeg 9's libx265.
    let src = tmpdir().join("llhls-hevc.ts");
    if !src.exists() {
        let tmp = tmpdir().join("llhls-hevc.tmp.ts");
        ffmpeg9_run(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=6",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=30:min-keyint=30:bframes=2:scenecut=0:no-open-gop=1:log-level=error",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
            &tmp.to_string_lossy(),
        ]);
        std::fs::rename(&tmp, &src).unwrap();
    }
    let dir = fresh_dir("llhls-hevc");
    let d = dir.to_string_lossy().to_string();
    seg(
        &["--dir", &d, "--dvr", "--segment-type", "fmp4"],
        &std::fs::read(&src).unwrap(),
    );
    let p = read_playlist(&dir);
    assert_eq!(p.segments.len(), 3, "{}", p.text);
    let init = p.segments[0].map.clone().unwrap();
    let init_bytes = std::fs::read(dir.join(&init)).unwrap();
    assert!(init_bytes.windows(4).any(|w| w == b"hvc1"));
    assert!(init_bytes.windows(4).any(|w| w == b"hvcC"));
    for s in &p.segments {
        let one = concat(&dir, &init, &[&s.uri], "llhls-hevc-one.mp4");
        assert_eq!(probe_streams(&one)[0].codec, "hevc", "{}", s.uri);
        assert_decodes_cleanly9(&one);
    }
    let segs: Vec<&str> = p.segments.iter().map(|s| s.uri.as_str()).collect();
    let whole = concat(&dir, &init, &segs, "llhls-hevc.mp4");
    assert_decodes_cleanly9(&whole);
    let got = probe_packets9(&whole);
    let want = probe_packets9(&src);
    assert_same_timestamps(&got, &want, "video", VIDEO_TOL, "hevc fMP4");
    // The source packs several AAC frames to a PES with one PTS, so a reader interpolates the
    // others, each its own way (ffmpeg 9 adds 1024 samples rounded to 2090 ticks a frame and
    // reads the 75th frame at 154645 ticks; river's TS demuxer reads 154644): the audio is
    // compared with river's own MPEG-TS of the same input, where each frame has its PES and PTS.
    let ts = run(&river("river-mux-ts"), &[], &std::fs::read(&src).unwrap());
    assert!(ts.status.success(), "{}", ts.stderr);
    let ts = write_tmp("llhls-hevc-river.ts", &ts.stdout);
    let want = probe_packets9(&ts);
    assert_same_timestamps(&got, &want, "video", VIDEO_TOL, "hevc fMP4 vs river's TS");
    assert_same_timestamps(&got, &want, "audio", AUDIO_TOL, "hevc fMP4 vs river's TS");
}

#[test]
fn a_gop_that_grows_past_the_target_is_cut_without_a_keyframe() {
    // 1 s GOPs for 4 s, then 5 s GOPs, 14 s in all: the target is fixed at 2 from the start,
    // and the long GOPs are cut before a segment would round above it.
    let src = tmpdir().join("llhls-growing-gop.ts");
    if !src.exists() {
        let tmp = tmpdir().join("llhls-growing-gop.tmp.ts");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=14",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=14",
            "-threads",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "superfast",
            "-bf",
            "0",
            "-g",
            "1000",
            "-sc_threshold",
            "0",
            "-force_key_frames",
            "expr:if(lt(n,120),eq(mod(n,30),0),eq(mod(n-120,150),0))",
            "-c:a",
            "aac",
            "-bitexact",
            "-f",
            "mpegts",
            &tmp.to_string_lossy(),
        ]);
        std::fs::rename(&tmp, &src).unwrap();
    }
    let input = std::fs::read(&src).unwrap();
    for kind in ["ts", "fmp4"] {
        let dir = fresh_dir(&format!("llhls-gop-{kind}"));
        let d = dir.to_string_lossy().to_string();
        let out = seg(
            &["--dir", &d, "--dvr", "--segment-type", kind, "-v"],
            &input,
        );
        assert!(
            out.stderr.contains("starts without a keyframe"),
            "{kind}: logged: {}",
            out.stderr
        );
        let p = read_playlist(&dir);
        assert_eq!(p.target, 2, "{kind}: {}", p.text);
        assert!(!p.text.contains("INDEPENDENT-SEGMENTS"));
        let long = p.segments.iter().filter(|s| s.duration > 2.0).count();
        assert!(long > 0, "{kind}: segments use the half second: {}", p.text);
        let total: f64 = p.segments.iter().map(|s| s.duration).sum();
        assert!((total - 14.0).abs() < 0.05, "{kind}: {total}");
        // Some segments start without a keyframe; the whole recording still plays cleanly.
        let mut dependent = 0;
        for s in &p.segments {
            let file = match &s.map {
                Some(m) => concat(&dir, m, &[&s.uri], "llhls-gop-one.mp4"),
                None => dir.join(&s.uri),
            };
            let pk = probe_packets(&file);
            if !pk.iter().find(|x| x.kind == "video").unwrap().key {
                dependent += 1;
            }
        }
        assert!(
            dependent >= 2,
            "{kind}: {dependent} segments without a keyframe"
        );
        assert_decodes_cleanly(&dir.join("movie.m3u8"));
    }
}

/// A plain HTTP/1.1 GET on a new connection: (status, lower-case headers, body).
pub(crate) fn get(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read response");
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&all[..end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, all[end + 4..].to_vec())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `river-testsrc --realtime | river-hls-seg --serve 127.0.0.1:0 ARGS`; killed on drop.
pub(crate) struct Pipeline {
    src: Child,
    seg: Child,
    /// `http://127.0.0.1:PORT/live/movie.m3u8`.
    pub url: String,
    pub dir: PathBuf,
    /// river-hls-seg's stderr so far, each line prefixed with the seconds since the start.
    pub log: Arc<Mutex<String>>,
}

impl Pipeline {
    pub fn start(name: &str, secs: u32, extra: &[&str]) -> Pipeline {
        let dir = fresh_dir(name);
        let mut src = Command::new(river("river-testsrc"))
            .args(["--realtime", "--duration", &format!("{secs}s")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = dir.to_string_lossy().to_string();
        let mut args = vec!["--dir", &d, "--serve", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut seg = Command::new(river("river-hls-seg"))
            .args(&args)
            // The access log and the parts as they are made: a failed play shows both.
            .env(
                "RUST_LOG",
                "info,river::http::access=debug,river::app::hls_seg=debug",
            )
            .stdin(Stdio::from(src.stdout.take().unwrap()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = seg.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = log.clone();
        let t0 = Instant::now();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                // The playlist's URL (not another address the tool prints, such as --metrics').
                if let Some(url) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://") && w.ends_with(".m3u8"))
                {
                    let _ = tx.send(url.to_string());
                }
                let stamped = format!("{:8.3} {line}\n", t0.elapsed().as_secs_f64());
                keep.lock().unwrap().push_str(&stamped);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("river-hls-seg printed its URL");
        let p = Pipeline {
            src,
            seg,
            url,
            dir,
            log,
        };
        wait_until("the first playlist", Duration::from_secs(30), || {
            get(&p.url).0 == 200
        });
        p
    }

    fn base(&self) -> &str {
        self.url.trim_end_matches("movie.m3u8")
    }

    /// river-hls-seg's process id.
    pub fn seg_pid(&self) -> u32 {
        self.seg.id()
    }

    /// The playlist with this query (`""` for none), its status and headers.
    fn playlist(&self, query: &str) -> (u16, Vec<(String, String)>, String) {
        let url = if query.is_empty() {
            self.url.clone()
        } else {
            format!("{}?{query}", self.url)
        };
        let (st, h, body) = get(&url);
        (st, h, String::from_utf8(body).unwrap())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.src.kill();
        let _ = self.src.wait();
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.seg.id().to_string()])
            .status();
        let _ = wait_deadline(&mut self.seg, Duration::from_secs(20), "river-hls-seg");
    }
}

/// The next part after everything `p` lists: (msn, part index).
fn next_part(p: &Parsed) -> (u64, usize) {
    (p.next_msn(), p.open_parts.len())
}

#[test]
fn ll_hls_playlists_parts_and_delta_updates_follow_the_rules() {
    // 1 s segments so that six target durations (the skip boundary) pass within the test.
    let live = Pipeline::start(
        "llhls-rules",
        30,
        &["--low-latency", "--segment-time", "1", "--dvr"],
    );
    let mut checker = Checker::default();
    let (st, h, text) = live.playlist("");
    assert_eq!(st, 200);
    assert_eq!(
        header(&h, "content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(header(&h, "cache-control"), Some("public, max-age=0"));
    let mut p = checker.check(&text);
    assert!(p.can_block_reload && p.version >= 9);
    assert_eq!((p.target, p.part_target), (1, Some(0.2)));
    assert_eq!(p.playlist_type.as_deref(), Some("EVENT"));
    let init = p.segments[0].map.clone().expect("EXT-X-MAP");
    let (st, h, _) = get(&format!("{}{init}", live.base()));
    assert_eq!(st, 200);
    assert_eq!(
        header(&h, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    // Follow the stream part by part with blocking reloads, for 8 s: every playlist keeps the
    // rules and the hint becomes the next part; every part is served, immutable.
    let start = Instant::now();
    let mut parts_seen = std::collections::HashSet::new();
    let mut skipped = 0;
    while start.elapsed() < Duration::from_secs(8) {
        let (msn, part) = next_part(&p);
        let (st, h, text) = live.playlist(&format!("_HLS_msn={msn}&_HLS_part={part}"));
        assert_eq!(st, 200, "{text}");
        assert_eq!(header(&h, "cache-control"), Some("public, max-age=1"));
        p = checker.check(&text);
        let listed = p.all_parts();
        assert!(
            p.segments
                .iter()
                .any(|s| s.msn == msn && s.parts.len() > part)
                || (p.next_msn() == msn && p.open_parts.len() > part)
                || p.next_msn() > msn + 1
                || (p.next_msn() == msn + 1 && !p.open_parts.is_empty()),
            "blocking reload for {msn}/{part} answered without it:\n{text}"
        );
        for x in listed {
            if parts_seen.insert(x.uri.clone()) {
                let (st, h, body) = get(&format!("{}{}", live.base(), x.uri));
                assert_eq!(st, 200, "{}", x.uri);
                assert!(!body.is_empty());
                assert_eq!(header(&h, "content-type"), Some("video/iso.segment"));
                assert_eq!(
                    header(&h, "cache-control"),
                    Some("public, max-age=31536000, immutable")
                );
            }
        }
        // Delta updates: the same playlist with what lies past the skip boundary left out.
        let (st, _, delta) = live.playlist("_HLS_skip=YES");
        assert_eq!(st, 200);
        let d = check(&delta);
        skipped = skipped.max(d.skipped);
        assert!(d.skip_until.is_some_and(|s| s >= 6.0));
    }
    assert!(parts_seen.len() >= 30, "{} parts", parts_seen.len());
    assert!(checker.playlists >= 30);
    assert!(skipped >= 1, "a delta update skipped segments");
    // Parts are listed only near the live edge of the DVR playlist, which keeps everything.
    assert!(p.segments[0].parts.is_empty() && p.segments[0].msn == 0);
    let (_, _, delta) = live.playlist("_HLS_skip=YES");
    let d = check(&delta);
    assert!(
        d.text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="),
        "{}",
        d.text
    );
}

#[test]
fn blocking_reload_waits_for_the_part_and_refuses_what_is_too_far() {
    let live = Pipeline::start("llhls-blocking", 30, &["--low-latency"]);
    // The next part (the one the preload hint names): its file is not there when the request is
    // sent (checked just before; asked again should it have come meanwhile); the answer comes
    // once the part is made, lists it, and the part is served at once (from memory: its file
    // is written after the answer, so the disk never delays the live edge), with the bytes
    // its file then has.
    let text = loop {
        let (_, _, text) = live.playlist("");
        let p = check(&text);
        let hint = p.hint.clone().expect("a preload hint");
        let (msn, part) = next_part(&p);
        if live.dir.join(&hint).exists() {
            continue;
        }
        let (st, _, text) = live.playlist(&format!("_HLS_msn={msn}&_HLS_part={part}"));
        assert_eq!(st, 200);
        let t = Instant::now();
        let (st, _, body) = get(&format!("{}{hint}", live.base()));
        assert_eq!(st, 200, "{hint} listed but not served");
        assert!(t.elapsed() < Duration::from_secs(1), "{hint}: not at once");
        let file = live.dir.join(&hint);
        wait_until(&format!("{hint} on disk"), Duration::from_secs(10), || {
            file.exists()
        });
        assert_eq!(body, std::fs::read(&file).unwrap(), "{hint}");
        // Part `part` of segment `msn`, or (when that segment ended before it) part 0 of the
        // next: the hinted part either way, as parts are numbered across segments.
        assert!(text.contains(&format!("URI=\"{hint}\"")), "{text}");
        break text;
    };
    // The preload hint is answered when that part is complete, with its bytes.
    let p = check(&text);
    let hint = p.hint.clone().unwrap();
    let (st, _, body) = get(&format!("{}{hint}", live.base()));
    assert_eq!(st, 200);
    let file = live.dir.join(&hint);
    wait_until(&format!("{hint} on disk"), Duration::from_secs(10), || {
        file.exists()
    });
    assert_eq!(body, std::fs::read(&file).unwrap());
    // Refused at once: more than two segments ahead, past the Advance Part Limit, a part
    // without a segment, a malformed number.
    let (msn, part) = next_part(&p);
    for q in [
        format!("_HLS_msn={}", msn + 2),
        format!("_HLS_msn={msn}&_HLS_part={}", part + 16),
        "_HLS_part=1".to_string(),
        "_HLS_msn=x".to_string(),
    ] {
        let t = Instant::now();
        let (st, _, body) = live.playlist(&q);
        assert_eq!(st, 400, "{q}: {body}");
        assert!(t.elapsed() < Duration::from_secs(2), "{q}: not at once");
    }
    // A request that cannot be answered (the source is stopped) gets 503 after three target
    // durations (6 s).
    // SIGSTOP is not caught: the source just stops writing (it is killed at the end).
    let ok = Command::new("kill")
        .args(["-s", "STOP", &live.src.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    std::thread::sleep(Duration::from_millis(500));
    let (_, _, text) = live.playlist("");
    let p = check(&text);
    let (msn, part) = next_part(&p);
    let t = Instant::now();
    let (st, _, body) = live.playlist(&format!("_HLS_msn={msn}&_HLS_part={}", part + 1));
    let waited = t.elapsed();
    assert_eq!(st, 503, "{body}");
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(9),
        "503 after {waited:?}"
    );
}

/// Plays `live`'s page in Chromium for `secs`; returns what was played.
fn play_live(live: &Pipeline, secs: f64) -> crate::common::browser::Playback {
    let page = live.url.replace("/live/movie.m3u8", "/");
    play(&page, secs)
}

fn secs_from_env(default: f64) -> f64 {
    std::env::var("RIVER_LLHLS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn hls_js_in_headless_chromium_plays_ll_hls() {
    // CI plays 10 s; RIVER_LLHLS_SECS=60 plays longer.
    let secs = secs_from_env(10.0);
    let live = Pipeline::start("llhls-chromium", secs as u32 + 30, &["--low-latency"]);
    let played = play_live(&live, secs);
    let checked = std::panic::catch_unwind(|| {
        eprintln!(
            "LL-HLS in hls.js over {secs} s: hls.latency p50 {:.2} s p95 {:.2} s; behind the wall clock p50 {:.2} s p95 {:.2} s; longest stall {:.3} s ({:.3} s waiting for data)",
            quantile(&played.latency, 0.5),
            quantile(&played.latency, 0.95),
            quantile(&played.wall_latency, 0.5),
            quantile(&played.wall_latency, 0.95),
            played.max_stall,
            played.max_starved_stall
        );
        // Parts are 0.2 s of river-testsrc's media, from 0.
        played.assert_played(secs, 30.0, StartGap::LiveJoin { step: 0.2 }, &live.url);
        // The server's side, from its own log: every part and segment answered at once, and
        // every blocked playlist request answered as a part was made.
        let log = live.log.lock().unwrap().clone();
        let served = served(&log).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("river-hls-seg's side: {served:?}");
        // Listed files come from memory at once; a blocked playlist request is answered as its
        // part is made (within 1 s here: the log's stamps carry the scheduling of a loaded
        // machine, 120-270 ms at a load average of 11-15, where a defect would hold it for
        // parts or seconds).
        assert!(served.media_wait <= 0.05, "{served:?}");
        assert!(served.blocked_delay <= 1.0, "{served:?}");
        // No stall over 500 ms waiting for data, the goal; up to assert_played's 1 s when the
        // log shows every part answered within 300 ms of being made: the stall is then the
        // player's (at a load average of 15, with parts answered at once, hls.js ran down to
        // 0.09 s buffered and stalled 0.52 s).
        assert!(
            played.max_starved_stall <= 0.5
                || (played.max_starved_stall <= 1.0 && served.blocked_delay <= 0.3),
            "a stall of {:.3} s waiting for data: {played:#?}",
            played.max_starved_stall
        );
        assert!(!played.latency.is_empty(), "hls.latency was read");
    });
    if let Err(e) = checked {
        let log = live.log.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!("river-hls-seg's log:\n{log}");
        std::panic::resume_unwind(e);
    }
}

/// What river-hls-seg's timestamped log (`Pipeline::log`, access log on) shows of its side of a
/// play: how many parts, segments and init segments it served and the longest any waited in
/// the server (listed ones are answered from memory, so 0 ms unless something is wrong), and
/// how many playlist requests blocked and the longest from a part being made to the answer
/// that followed it (the two lines are stamped as the test reads them, so this includes the
/// scheduling of river-hls-seg's threads on a loaded machine).
#[derive(Debug)]
struct Served {
    media: usize,
    media_wait: f64,
    blocked: usize,
    blocked_delay: f64,
}

fn served(log: &str) -> Result<Served, String> {
    let mut last_part: Option<f64> = None;
    let mut s = Served {
        media: 0,
        media_wait: 0.0,
        blocked: 0,
        blocked_delay: 0.0,
    };
    for line in log.lines() {
        let mut w = line.split_whitespace();
        let Some(t) = w.next().and_then(|t| t.parse::<f64>().ok()) else {
            continue;
        };
        let rest: Vec<&str> = w.skip(2).collect();
        if rest.first() == Some(&"part") {
            last_part = Some(t);
            continue;
        }
        // PEER "GET PATH" STATUS BYTES MS ms
        if rest.len() != 7 || rest[1] != "\"GET" || rest[6] != "ms" {
            continue;
        }
        let path = rest[2].trim_end_matches('"');
        let waited: f64 = rest[5].parse::<f64>().map_err(|e| format!("{line}: {e}"))? / 1000.0;
        if path.ends_with(".m4s") || path.ends_with(".mp4") {
            s.media += 1;
            s.media_wait = s.media_wait.max(waited);
        } else if path.contains("_HLS_msn=") && waited > 0.05 {
            s.blocked += 1;
            let made = last_part.ok_or_else(|| format!("answered before any part: {line}"))?;
            s.blocked_delay = s.blocked_delay.max(t - made);
        }
    }
    if s.media == 0 {
        return Err(format!("no media request in the log:\n{log}"));
    }
    Ok(s)
}

#[test]
fn served_reads_the_log() {
    let ok = "\
   1.000 river-hls-seg: debug: part movie-1-part5.m4s (100 bytes)
   1.010 river-hls-seg: debug: 127.0.0.1:1 \"GET /live/movie.m3u8?_HLS_msn=0&_HLS_part=5\" 200 900 180 ms
   1.020 river-hls-seg: debug: 127.0.0.1:1 \"GET /live/movie-1-part5.m4s\" 200 100 7 ms
   1.400 river-hls-seg: debug: 127.0.0.1:1 \"GET /live/movie.m3u8?_HLS_msn=0&_HLS_part=6\" 200 900 30 ms
";
    let s = served(ok).unwrap();
    assert_eq!((s.media, s.blocked), (1, 1));
    assert!((s.media_wait - 0.007).abs() < 1e-9, "{s:?}");
    assert!((s.blocked_delay - 0.010).abs() < 1e-9, "{s:?}");
    let late = ok.replace("   1.010", "   1.300");
    assert!((served(&late).unwrap().blocked_delay - 0.3).abs() < 1e-9);
    assert!(served("").is_err());
}

/// Latency behind live in hls.js, classic HLS (2 s MPEG-TS segments) against LL-HLS, over
/// RIVER_BENCH_SECS (60) each. A benchmark, not a test: bench/llhls.sh runs it.
#[test]
#[ignore]
fn bench_latency_behind_live() {
    let secs: f64 = std::env::var("RIVER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let mut rows = Vec::new();
    for (name, args) in [
        ("classic 2 s TS", vec!["--segment-time", "2"]),
        ("LL-HLS 0.2 s parts", vec!["--low-latency"]),
    ] {
        let live = Pipeline::start("llhls-bench", secs as u32 + 40, &args);
        let p = play_live(&live, secs);
        rows.push((name, p));
    }
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "player: hls.js", "lat_p50", "lat_p95", "wall_p50", "wall_p95", "stall_max", "starved_max"
    );
    for (name, p) in &rows {
        println!(
            "{name:<20} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.3} {:>10.3}",
            quantile(&p.latency, 0.5),
            quantile(&p.latency, 0.95),
            quantile(&p.wall_latency, 0.5),
            quantile(&p.wall_latency, 0.95),
            p.max_stall,
            p.max_starved_stall
        );
    }
    println!(
        "median wall-clock latency ratio classic/LL-HLS: {:.1}x",
        quantile(&rows[0].1.wall_latency, 0.5) / quantile(&rows[1].1.wall_latency, 0.5)
    );
}
