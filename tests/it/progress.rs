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
    assert!(
        last.contains("frames=60 ") && last.contains("speed=1."),
        "{last}"
    );
    assert!(!err.contains('\r'), "{err:?}");
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
