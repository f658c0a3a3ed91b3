//! `--stats` and `--metrics` of the pipe tools: the progress line on a terminal (redrawn in place,
//! under `script`) and in a log, and the Prometheus endpoint checked by `promtool`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::relay_metrics::promtool_check;

fn testsrc_file(secs: u32, format: &str) -> std::path::PathBuf {
    let out = run(
        &river("river-testsrc"),
        &["--format", format, "--duration", &format!("{secs}s")],
        b"",
    );
    assert!(out.status.success(), "{}", out.stderr);
    write_tmp(&format!("progress-{secs}s.{format}"), &out.stdout)
}

/// On a terminal, the line is redrawn in place (carriage return, erase to the end of the line)
/// and the last one, with every frame counted, ends the line.
#[test]
fn stats_on_a_terminal_is_one_line_redrawn_in_place() {
    let input = testsrc_file(4, "flv");
    let out = tmpdir().join("progress-tty.ts");
    let t = run_on_terminal(&format!(
        "{} --stats < {} > {}",
        river("river-mux-ts").display(),
        input.display(),
        out.display()
    ));
    assert!(t.status.success(), "{}", t.stderr);
    let shown = String::from_utf8_lossy(&t.stdout).into_owned();
    assert!(shown.starts_with("\rriver-mux-ts: frames="), "{shown:?}");
    assert!(shown.contains("\x1b[K"), "{shown:?}");
    let last = shown.trim_end().rsplit('\r').next().unwrap();
    assert!(
        last.starts_with("river-mux-ts: frames=120 audio=")
            && last.contains(" time=00:00:03.96 ")
            && last.contains(" repairs=0 drops=0"),
        "{last:?}"
    );
    assert!(
        shown.ends_with("\r\n") || shown.ends_with('\n'),
        "{shown:?}"
    );
    assert_decodes_cleanly(&out);
}

/// Not on a terminal: a log line every --stats-period, and the last one at the end.
#[test]
fn stats_in_a_log_is_a_line_per_period() {
    let mut src = Command::new(river("river-testsrc"))
        .args(["--realtime", "--format", "ts", "--duration", "2s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut mux = Command::new(river("river-mux-flv"))
        .args(["--stats", "--stats-period", "500ms"])
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    mux.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(wait_deadline(&mut mux, Duration::from_secs(30), "river-mux-flv").success());
    let _ = src.wait();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("river-mux-flv: stats: frames="))
        .collect();
    // 2 s of real time at one line per 500 ms, and the last: at least 4.
    assert!(lines.len() >= 4, "{err}");
    let last = lines.last().unwrap();
    // A real-time source reads as about 1x: the wall clock runs from the tool's start, before
    // the source's first frame, which a loaded machine delays (0.97x at a load average of 13).
    let speed: f64 = last
        .split(" speed=")
        .nth(1)
        .and_then(|s| s.split('x').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no speed in {last}"));
    assert!(
        last.contains("frames=60 ") && (0.9..1.1).contains(&speed),
        "{last}"
    );
    assert!(!err.contains('\r'), "{err:?}");
}

/// `ADDR` from a tool's `PROG: metrics on http://ADDR/metrics` line in `log`.
pub(crate) fn metrics_addr(log: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.split(": metrics on http://").nth(1))
        .and_then(|a| a.strip_suffix("/metrics"))
        .map(str::to_string)
}

/// GET /metrics from `addr`: the body.
pub(crate) fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut v = String::new();
    s.read_to_string(&mut v).unwrap();
    assert!(v.starts_with("HTTP/1.1 200"), "{v}");
    v.split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string()
}

/// The value of the series `name` (without labels) in an exposition.
pub(crate) fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Scrapes `addr` until `ready` holds for the body (30 s at most); returns that body, checked by
/// promtool.
pub(crate) fn scrape_until(addr: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let body = scrape(addr);
        if ready(&body) {
            promtool_check(&body);
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: not within 30 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--metrics ADDR`: a running mux answers GET /metrics with counters promtool accepts.
#[test]
fn metrics_endpoint_of_a_running_mux() {
    let mut src = Command::new(river("river-testsrc"))
        .args(["--realtime", "--format", "flv", "--duration", "5s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut mux = Command::new(river("river-mux-ts"))
        .args(["--metrics", "127.0.0.1:0"])
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(mux.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("river-mux-ts: metrics on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let start = Instant::now();
    let body = loop {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut v = String::new();
        s.read_to_string(&mut v).unwrap();
        let body = v.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        let frames: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix("river_mux_ts_video_frames_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if frames >= 30.0 {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    promtool_check(&body);
    assert!(body.contains("river_mux_ts_bytes_out_total "), "{body}");
    let _ = mux.kill();
    let _ = mux.wait();
    let _ = src.kill();
    let _ = src.wait();
}

/// Collects a child's stderr as it comes.
fn collect(mut err: impl Read + Send + 'static) -> std::sync::Arc<std::sync::Mutex<String>> {
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let l = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            l.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    log
}

/// The frames the first `--stats` log line of `prog` shows.
fn first_line_frames(log: &str, prog: &str) -> u64 {
    let prefix = format!("{prog}: stats: frames=");
    let line = log
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no stats line:\n{log}"));
    line[prefix.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// river-hls-seg: the `--stats` lines (the first one comes after frames did, not at the first
/// read) and `--metrics`: segments, parts, writes, and the requests `--serve` answered.
#[test]
fn hls_seg_stats_and_metrics() {
    let dir = crate::hls::fresh_dir("progress-hls");
    let d = dir.to_string_lossy().to_string();
    let mut src = Command::new(river("river-testsrc"))
        .args(["--realtime", "--duration", "5s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seg = Command::new(river("river-hls-seg"))
        .args([
            "--dir",
            &d,
            "--low-latency",
            "--serve",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--stats",
            "--stats-period",
            "500ms",
        ])
        .stdin(Stdio::from(src.stdout.take().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect(seg.stderr.take().unwrap());
    let text = || log.lock().unwrap().clone();
    let mut addr = None;
    wait_until("the metrics address", Duration::from_secs(20), || {
        addr = metrics_addr(&text());
        addr.is_some()
    });
    let addr = addr.unwrap();
    let url = text()
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with(".m3u8"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{}", text()));
    let body = scrape_until(&addr, "two segments", |b| {
        metric(b, "river_hls_seg_segments_total").unwrap_or(0.0) >= 2.0
    });
    for _ in 0..3 {
        assert_eq!(crate::llhls::get(&url).0, 200);
    }
    let after = scrape_until(&addr, "the requests", |b| {
        metric(b, "river_hls_seg_http_requests_total").unwrap_or(0.0) >= 3.0
    });
    let v = |b: &str, n: &str| {
        metric(b, &format!("river_hls_seg_{n}")).unwrap_or_else(|| panic!("no {n}:\n{b}"))
    };
    assert!(v(&body, "video_frames_total") >= 60.0, "{body}");
    assert!(v(&body, "parts_total") >= 20.0, "{body}");
    assert!(v(&body, "bytes_out_total") > 0.0, "{body}");
    assert!(v(&body, "write_seconds_total") > 0.0, "{body}");
    assert!(v(&body, "playlist_segments") >= 2.0, "{body}");
    assert!(v(&body, "segment_close_seconds") >= 0.0, "{body}");
    assert_eq!(v(&after, "blocking_timeouts_total"), 0.0, "{after}");
    let ok = Command::new("kill")
        .args(["-s", "TERM", &seg.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(wait_deadline(&mut seg, Duration::from_secs(20), "river-hls-seg").success());
    let _ = src.kill();
    let _ = src.wait();
    let log = text();
    assert!(
        first_line_frames(&log, "river-hls-seg") > 0,
        "the first line comes after the first frames:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("river-hls-seg: stats: ") && l.contains(" segments=")),
        "{log}"
    );
}
