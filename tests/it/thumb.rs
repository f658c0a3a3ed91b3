//! river-thumb against real ffmpeg: pictures match ffmpeg's decode, --tee is byte-exact in a live
//! pipe, --every replaces atomically, --serve answers 50 concurrent requests, --timeout fails.
//! Loopback only; a deadline on every wait.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::*;

/// 720p, no B-frames, 1 s GOP, 2 s (shared with the mux tests).
const C720: Clip = Clip {
    width: 1280,
    height: 720,
    fps: 30,
    bframes: 0,
    audio: true,
    gop_secs: 1,
    secs: 2,
};
/// 160×120 (cropped from 128 coded lines), B-frames, 4 s GOP.
const C120: Clip = Clip {
    width: 160,
    height: 120,
    fps: 30,
    bframes: 3,
    audio: true,
    gop_secs: 4,
    secs: 9,
};
/// 720p, 1 s GOP, 4 s: the live input for --every and --tee.
const LIVE: Clip = Clip {
    width: 1280,
    height: 720,
    fps: 30,
    bframes: 0,
    audio: true,
    gop_secs: 1,
    secs: 4,
};

fn input_of(clip: &Clip, input: &str) -> PathBuf {
    match input {
        "flv" => clip.flv(),
        "ts" => clip.remux("mpegts"),
        "h264" => clip.remux("h264"),
        _ => unreachable!(),
    }
}

/// ffmpeg decodes an image (or the first frame of a stream) to raw RGB24, optionally scaled.
pub(crate) fn rgb24(path: &Path, scale: Option<&str>) -> Vec<u8> {
    require("ffmpeg");
    let p = path.to_string_lossy().to_string();
    let mut args = vec!["-nostdin", "-v", "error", "-i", &p, "-frames:v", "1"];
    if let Some(s) = scale {
        args.extend_from_slice(&["-vf", s]);
    }
    args.extend_from_slice(&["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    let out = run(Path::new("ffmpeg"), &args, b"");
    assert!(out.status.success(), "ffmpeg rgb24 of {p}: {}", out.stderr);
    out.stdout
}

pub(crate) fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "picture sizes differ");
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum();
    let mse = se / a.len() as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// (width, height) of an image, by ffprobe.
pub(crate) fn dims(path: &Path) -> (u64, u64) {
    let s = probe_streams(path);
    (s[0].width.unwrap(), s[0].height.unwrap())
}

pub(crate) fn thumb(args: &[&str], input: &[u8]) -> Out {
    run(&river("river-thumb"), args, input)
}

#[test]
fn one_shot_png_matches_ffmpeg_on_every_input_format() {
    for clip in [C720, C120] {
        let want = rgb24(&clip.flv(), None);
        for input in ["flv", "ts", "h264"] {
            let ctx = format!("{} {input}", clip.name());
            let data = std::fs::read(input_of(&clip, input)).unwrap();
            let out = thumb(&["--format", "png"], &data);
            assert!(out.status.success(), "{ctx}: {}", out.stderr);
            assert!(
                out.stderr.is_empty(),
                "{ctx}: unexpected output: {}",
                out.stderr
            );
            assert_eq!(&out.stdout[..8], b"\x89PNG\r\n\x1a\n", "{ctx}");
            let png = write_tmp(&format!("thumb.{}.{input}.png", clip.name()), &out.stdout);
            assert_eq!(dims(&png), (clip.width as u64, clip.height as u64), "{ctx}");
            let db = psnr(&rgb24(&png, None), &want);
            assert!(
                db >= 40.0,
                "{ctx}: PSNR {db:.2} dB against ffmpeg -frames:v 1"
            );
        }
    }
}

#[test]
fn one_shot_jpeg_to_file_and_quality() {
    let data = std::fs::read(C720.remux("mpegts")).unwrap();
    let want = rgb24(&C720.flv(), None);
    let mut sizes = Vec::new();
    for q in ["30", "95"] {
        let path = tmpdir().join(format!("thumb.q{q}.jpg"));
        let _ = std::fs::remove_file(&path);
        let p = path.to_string_lossy().to_string();
        let out = thumb(&["--out", &p, "--quality", q], &data);
        assert!(out.status.success(), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "--out leaves stdout empty");
        let jpg = std::fs::read(&path).unwrap();
        assert_eq!(&jpg[..3], &[0xff, 0xd8, 0xff]);
        assert_eq!(dims(&path), (1280, 720));
        let db = psnr(&rgb24(&path, None), &want);
        assert!(db >= 30.0, "q{q}: JPEG PSNR {db:.2} dB");
        sizes.push(jpg.len());
    }
    assert!(
        sizes[1] > sizes[0] * 2,
        "quality changes the size: {sizes:?}"
    );
}

#[test]
fn width_and_height_keep_the_aspect_ratio() {
    let data = std::fs::read(C720.flv()).unwrap();
    for (args, want) in [
        (&["--width", "320"][..], (320, 180)),
        (&["--height", "90"][..], (160, 90)),
        (&["--width", "100", "--height", "100"][..], (100, 56)),
        (&["--width", "640", "--height", "90"][..], (160, 90)),
    ] {
        let mut a = vec!["--format", "png"];
        a.extend_from_slice(args);
        let out = thumb(&a, &data);
        assert!(out.status.success(), "{args:?}: {}", out.stderr);
        let png = write_tmp("thumb.scaled.png", &out.stdout);
        assert_eq!(dims(&png), want, "{args:?}");
        if want == (320, 180) {
            // The picture itself: close to ffmpeg's bilinear (triangle) downscale of the same frame.
            let reference = rgb24(&C720.flv(), Some("scale=320:180:flags=bilinear"));
            let db = psnr(&rgb24(&png, None), &reference);
            assert!(
                db >= 30.0,
                "scaled PSNR {db:.2} dB against ffmpeg's bilinear scaler"
            );
        }
    }
}

#[test]
fn corrupt_keyframe_is_skipped_for_the_next() {
    let mut data = std::fs::read(C720.remux("h264")).unwrap();
    // Smash the middle of the first IDR slice.
    let idr = (0..data.len() - 4)
        .find(|&i| data[i..i + 3] == [0, 0, 1] && data[i + 3] & 0x1f == 5)
        .unwrap();
    for (k, b) in data[idr + 200..idr + 4000].iter_mut().enumerate() {
        *b = (k * 131) as u8;
    }
    let out = thumb(&["--format", "png"], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("keyframe 1") && out.stderr.contains("trying the next keyframe"),
        "{}",
        out.stderr
    );
    // The picture is the second keyframe (t = 1 s).
    let png = write_tmp("thumb.after-corrupt.png", &out.stdout);
    let want = rgb24(&C720.flv(), Some("select=eq(n\\,30)"));
    let db = psnr(&rgb24(&png, None), &want);
    assert!(db >= 40.0, "PSNR {db:.2} dB against frame 30");
}

#[test]
fn timeout_without_keyframe_exits_non_zero() {
    for extra in [
        &[][..],
        &["--serve", "127.0.0.1:0"][..],
        &["--every", "1s", "--out", "never.jpg"][..],
    ] {
        let mut args = vec!["--timeout", "700ms"];
        args.extend_from_slice(extra);
        let mut child = Command::new(river("river-thumb"))
            .args(&args)
            .current_dir(tmpdir())
            .stdin(Stdio::piped()) // kept open and silent: the read would block forever
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = wait_deadline(&mut child, Duration::from_secs(20), "river-thumb --timeout");
        let took = start.elapsed();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(1), "{extra:?}: {err}");
        assert!(
            err.contains("no ") && err.contains("--timeout 700ms"),
            "{extra:?}: {err}"
        );
        assert!(
            took >= Duration::from_millis(600) && took < Duration::from_secs(10),
            "{extra:?}: {took:?}"
        );
    }
}

#[test]
fn no_keyframe_and_other_codecs_are_clear_errors() {
    let out = thumb(&[], &[0u8; 4000]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("without an H.264 or H.265 keyframe"),
        "{}",
        out.stderr
    );
    // MPEG-2 video in MPEG-TS: named, and no picture (H.265 is decoded: hevc_thumb.rs).
    let mpeg2 = tmpdir().join("thumb.mpeg2.ts");
    if !mpeg2.exists() {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=1",
            "-c:v",
            "mpeg2video",
            "-f",
            "mpegts",
            &mpeg2.to_string_lossy(),
        ]);
    }
    let out = thumb(&[], &std::fs::read(&mpeg2).unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("MPEG-2 video"), "{}", out.stderr);
}

#[test]
fn usage_errors() {
    let out = thumb(&["--tee"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("--out FILE or --serve"),
        "{}",
        out.stderr
    );
    let out = thumb(&["--every", "1s"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = thumb(&["--timeout", "soon"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("invalid duration"), "{}", out.stderr);
}

#[test]
fn refuses_an_image_to_a_terminal() {
    let cmd = format!("{} < /dev/null", river("river-thumb").display());
    let out = run_on_terminal(&cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refusing to write an image"));
}

/// `ffmpeg -re` streaming `clip` as FLV on its stdout: a live source.
fn live_ffmpeg(clip: &Clip) -> Child {
    require("ffmpeg");
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-re", "-i"])
        .arg(clip.flv())
        .args(["-c", "copy", "-f", "flv", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn tee_is_byte_identical_in_a_live_pipe() {
    let mut src = live_ffmpeg(&LIVE);
    let out_path = tmpdir().join("thumb.tee.jpg");
    let _ = std::fs::remove_file(&out_path);
    let mut child = Command::new(river("river-thumb"))
        .args(["--tee", "--every", "1s", "--out"])
        .arg(&out_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Forward ffmpeg's output as it comes, keeping a copy; note when the last byte went in.
    let mut from = src.stdout.take().unwrap();
    let mut to = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    to.write_all(&buf[..n]).unwrap();
                    sent.extend_from_slice(&buf[..n]);
                }
            }
        }
        (sent, Instant::now())
    });
    let mut so = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut first = None;
        let mut buf = [0u8; 16384];
        loop {
            match so.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    first.get_or_insert_with(Instant::now);
                    got.extend_from_slice(&buf[..n]);
                }
            }
        }
        (got, first)
    });
    wait_deadline(&mut src, DEADLINE, "ffmpeg -re");
    let status = wait_deadline(&mut child, DEADLINE, "river-thumb --tee");
    let (sent, input_done) = feeder.join().unwrap();
    let (got, first_out) = reader.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(sent.len() > 100_000, "live input: {} bytes", sent.len());
    assert!(
        got == sent,
        "--tee output differs from the input ({} vs {} bytes)",
        got.len(),
        sent.len()
    );
    // Live: output started flowing long before the 4 s input ended.
    let first_out = first_out.unwrap();
    assert!(
        input_done.duration_since(first_out) > Duration::from_secs(2),
        "first output only {:?} before the input ended",
        input_done.duration_since(first_out)
    );
    assert_eq!(dims(&out_path), (1280, 720));
}

#[test]
fn every_replaces_the_file_atomically() {
    let dir = tmpdir().join("thumb-every");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("live.jpg");
    let mut src = live_ffmpeg(&LIVE);
    let mut child = Command::new(river("river-thumb"))
        .args([
            "--every",
            "500ms",
            "--width",
            "960",
            "--quality",
            "95",
            "--out",
        ])
        .arg(&path)
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Poll the file as fast as possible while the stream runs; every read must be a whole JPEG.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let (mut reads, mut versions, mut last) = (0u64, Vec::<Vec<u8>>::new(), Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let Ok(data) = std::fs::read(&path) else {
                    continue;
                };
                reads += 1;
                assert!(
                    data.len() > 1000
                        && data.starts_with(&[0xff, 0xd8])
                        && data.ends_with(&[0xff, 0xd9]),
                    "read {reads}: a partial JPEG ({} bytes)",
                    data.len()
                );
                if data != last {
                    versions.push(data.clone());
                    last = data;
                }
            }
            (reads, versions)
        })
    };
    wait_deadline(&mut src, DEADLINE, "ffmpeg -re");
    let status = wait_deadline(&mut child, DEADLINE, "river-thumb --every");
    stop.store(true, Ordering::SeqCst);
    let (reads, versions) = poller.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(reads > 50, "the poller read the file {reads} times");
    // Keyframes at 0, 1, 2, 3 s: each is newer than the last write and 500 ms apart. On a loaded
    // machine a debug-build decode can fall behind and --every then takes the newest keyframe, so
    // one of them may be skipped; the file must still have been replaced at least once.
    assert!(
        (2..=4).contains(&versions.len()),
        "{} distinct versions",
        versions.len()
    );
    let last = write_tmp("thumb.every.last.jpg", versions.last().unwrap());
    assert_eq!(dims(&last), (960, 540));
    // No temporary files left behind.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// One HTTP/1.0 GET on loopback: (status, headers, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, resp[split + 4..].to_vec())
}

#[test]
fn serve_answers_503_then_50_concurrent_requests() {
    let mut child = Command::new(river("river-thumb"))
        .args(["--serve", "127.0.0.1:0", "--width", "640"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    assert!(addr.ip().is_loopback());
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });

    let (code, head, body) = get(addr, "/thumb.jpg");
    assert_eq!(code, 503, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("no keyframe yet"));
    assert_eq!(get(addr, "/other").0, 404);

    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&std::fs::read(C720.flv()).unwrap())
        .unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    while get(addr, "/thumb.jpg").0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no picture after the input"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let n = 50;
    let barrier = Arc::new(Barrier::new(n));
    let workers: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/thumb.jpg"
                } else {
                    "/thumb.png"
                };
                barrier.wait();
                (path, get(addr, path))
            })
        })
        .collect();
    let mut jpeg = None;
    for w in workers {
        let (path, (code, head, body)) = w.join().unwrap();
        assert_eq!(code, 200, "{path}: {head}");
        if path.ends_with("jpg") {
            assert!(
                head.contains("image/jpeg") && body.starts_with(&[0xff, 0xd8]),
                "{head}"
            );
            jpeg = Some(body);
        } else {
            assert!(
                head.contains("image/png") && body.starts_with(b"\x89PNG"),
                "{head}"
            );
        }
    }
    let p = write_tmp("thumb.served.jpg", &jpeg.unwrap());
    assert_eq!(dims(&p), (640, 360));

    drop(stdin); // end of input: the server stops
    let status = wait_deadline(&mut child, DEADLINE, "river-thumb --serve");
    assert!(status.success());
}

/// `--stats` and `--metrics`: keyframes, pictures and their making time, bytes in and out (the
/// pictures, and the stream itself with --tee), checked by promtool.
#[test]
fn metrics_count_keyframes_and_pictures() {
    use crate::progress::{metric, metrics_addr, scrape_until};
    let dir = tmpdir().join("thumb-metrics");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("live.jpg");
    let mut src = Command::new(river("river-testsrc"))
        .args(["--realtime", "--format", "flv", "--duration", "4s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Command::new(river("river-thumb"))
        .args([
            "--tee",
            "--every",
            "1s",
            "--metrics",
            "127.0.0.1:0",
            "--stats",
        ])
        .args(["--stats-period", "500ms", "--out"])
        .arg(&path)
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = metrics_addr(&line).unwrap_or_else(|| panic!("{line}"));
    let v = |b: &str, n: &str| {
        metric(b, &format!("river_thumb_{n}")).unwrap_or_else(|| panic!("no {n}:\n{b}"))
    };
    let body = scrape_until(&addr, "two pictures", |b| {
        metric(b, "river_thumb_pictures_total").unwrap_or(0.0) >= 2.0
    });
    // river-testsrc has a keyframe every second.
    assert!(v(&body, "keyframes_total") >= 2.0, "{body}");
    assert_eq!(v(&body, "picture_failures_total"), 0.0, "{body}");
    assert!(v(&body, "picture_seconds") > 0.0, "{body}");
    let (inp, out) = (v(&body, "bytes_in_total"), v(&body, "bytes_out_total"));
    let jpeg = std::fs::metadata(&path).unwrap().len() as f64;
    assert!(
        out >= inp + jpeg,
        "--tee: the stream and the pictures out: {body}"
    );
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(wait_deadline(&mut child, Duration::from_secs(30), "river-thumb").success());
    let _ = src.wait();
    let last = rest
        .lines()
        .rfind(|l| l.starts_with("river-thumb: stats: frames="))
        .unwrap_or_else(|| panic!("{rest}"));
    assert!(
        last.starts_with("river-thumb: stats: frames=120 "),
        "{last}"
    );
    assert!(last.contains(" pictures="), "{last}");
}
