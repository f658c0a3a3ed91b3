//! river-rtsp-pull against a real RTSP server: gst-rtsp-server through python3-gi
//! (tests/fixtures/rtsp/server.py), on 127.0.0.1 with ephemeral ports; outputs checked with
//! ffprobe and `ffmpeg -v error`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

const INSTALL_HINT: &str =
    "the RTSP tests need gst-rtsp-server with python3-gi, run by /usr/bin/python3: \
apt-get install -y python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
(or run .ci/run)";

/// How long a camera or a pull may take to answer, on a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rtsp/server.py")
}

/// The stand-in camera: a gst-rtsp-server child process.
struct Camera {
    child: Child,
    port: u16,
    args: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

impl Camera {
    /// Starts a camera on an ephemeral port (or `port`), waiting for its "listening" line.
    fn start_on(args: &[&str], port: u16) -> Camera {
        let ok = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('GstRtsp', '1.0'); from gi.repository import GstRtspServer",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "{INSTALL_HINT}");
        let port_s = port.to_string();
        let mut full: Vec<String> = vec![
            server_script().to_string_lossy().into(),
            "--port".into(),
            port_s,
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let mut child = Command::new("/usr/bin/python3")
            .args(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting /usr/bin/python3: {e}; {INSTALL_HINT}"));
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = WAIT.saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening rtsp://127.0.0.1:") {
                        let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                        return Camera {
                            child,
                            port,
                            args: args.iter().map(|s| s.to_string()).collect(),
                            stderr: rx,
                        };
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the RTSP test server did not start within {WAIT:?}: {}\n{INSTALL_HINT}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    fn start(args: &[&str]) -> Camera {
        Camera::start_on(args, 0)
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Kills the server hard (a camera losing power) and reaps it.
    fn kill(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new server on the same port (a camera coming back after a reboot).
    fn restart(&mut self) {
        self.kill();
        let args: Vec<&str> = self.args.iter().map(|s| s.as_str()).collect();
        let start = Instant::now();
        // The port may stay busy for a moment after the kill.
        loop {
            let attempt = std::panic::catch_unwind(|| Camera::start_on(&args, self.port));
            match attempt {
                Ok(c) => {
                    *self = c;
                    return;
                }
                Err(_) if start.elapsed() < WAIT => std::thread::sleep(Duration::from_millis(200)),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.kill();
        while self.stderr.try_recv().is_ok() {}
    }
}

/// A running river-rtsp-pull writing to a file.
struct Pull {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    started: Instant,
}

impl Pull {
    fn spawn(args: &[&str], name: &str, env: &[(&str, &str)]) -> Pull {
        let out = tmpdir().join(name);
        let err = tmpdir().join(format!("{name}.stderr"));
        let child = Command::new(river("river-rtsp-pull"))
            .args(args)
            .env_remove("RIVER_RTSP_PASSWORD")
            .env_remove("RIVER_RTSP_USER")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("spawning river-rtsp-pull");
        Pull {
            child,
            out,
            err,
            started: Instant::now(),
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn out_len(&self) -> u64 {
        std::fs::metadata(&self.out).map(|m| m.len()).unwrap_or(0)
    }

    /// Waits until the output has grown to at least `n` bytes.
    fn wait_output(&mut self, n: u64) {
        let start = Instant::now();
        while self.out_len() < n {
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!("river-rtsp-pull exited early ({s}): {}", self.stderr());
            }
            assert!(
                start.elapsed() < WAIT,
                "no output from river-rtsp-pull within {WAIT:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits for the exit; returns (exit code, stderr, seconds since start).
    fn finish(mut self) -> (Option<i32>, String, f64, PathBuf) {
        let status = wait_deadline(&mut self.child, WAIT * 2, "river-rtsp-pull");
        let secs = self.started.elapsed().as_secs_f64();
        (status.code(), self.stderr(), secs, self.out.clone())
    }
}

/// Runs a pull to the end.
fn pull(args: &[&str], name: &str, env: &[(&str, &str)]) -> (Option<i32>, String, f64, PathBuf) {
    Pull::spawn(args, name, env).finish()
}

fn assert_ok(r: &(Option<i32>, String, f64, PathBuf), what: &str) {
    assert_eq!(r.0, Some(0), "{what}: exit status; stderr:\n{}", r.1);
    assert!(
        !r.1.contains("river-rtsp-pull: error"),
        "{what}: unexpected stderr:\n{}",
        r.1
    );
}

/// DTS strictly increasing per stream, and no gap over `max_gap` seconds.
fn assert_monotonic(path: &Path, max_gap: f64) {
    let p = probe_packets(path);
    for kind in ["video", "audio"] {
        let d: Vec<f64> = p
            .iter()
            .filter(|q| q.kind == kind && !q.dts.is_nan())
            .map(|q| q.dts)
            .collect();
        for w in d.windows(2) {
            assert!(
                w[1] > w[0],
                "{}: {kind} DTS not increasing: {} then {}",
                path.display(),
                w[0],
                w[1]
            );
            assert!(
                w[1] - w[0] <= max_gap,
                "{}: {kind} DTS jumps from {} to {}",
                path.display(),
                w[0],
                w[1]
            );
        }
    }
}

fn codecs(path: &Path) -> Vec<String> {
    probe_streams(path).into_iter().map(|s| s.codec).collect()
}

/// Annex B NAL unit types in order.
fn nal_types(data: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            t.push(data[i + 3] & 0x1f);
            i += 3;
        } else {
            i += 1;
        }
    }
    t
}

/// How many TS packets carry discontinuity_indicator.
fn ts_discontinuities(data: &[u8]) -> usize {
    data.chunks_exact(188)
        .filter(|p| p[0] == 0x47 && p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0)
        .count()
}

fn video_packets(path: &Path) -> u64 {
    probe_streams(path)[0].packets
}

#[test]
fn h264_over_tcp_and_udp_with_parameter_sets_before_every_idr() {
    let cam = Camera::start(&[]);
    let url = cam.url();
    for transport in ["tcp", "udp"] {
        let r = pull(
            &[
                &url,
                "--transport",
                transport,
                "--format",
                "h264",
                "--duration",
                "2s",
            ],
            &format!("rtsp-{transport}.h264"),
            &[],
        );
        assert_ok(&r, transport);
        let path = &r.3;
        assert_eq!(codecs(path), ["h264"], "{transport}");
        let n = video_packets(path);
        assert!(
            (50..=62).contains(&n),
            "{transport}: {n} video frames in 2 s"
        );
        assert_decodes_cleanly(path);
        let types = nal_types(&std::fs::read(path).unwrap());
        // Access units start with an AUD; each one with an IDR slice carries SPS and PPS first.
        let aus: Vec<&[u8]> = types.split(|&t| t == 9).skip(1).collect();
        assert!(
            aus[0].contains(&5),
            "{transport}: starts on an IDR: {:?}",
            aus[0]
        );
        let idr: Vec<&&[u8]> = aus.iter().filter(|au| au.contains(&5)).collect();
        assert!(idr.len() >= 2, "{transport}: a keyframe every second");
        for au in idr {
            assert!(au.starts_with(&[7, 8]), "{transport}: IDR unit {au:?}");
        }
    }
}

#[test]
fn audio_is_carried_in_ts_and_flv() {
    let cam = Camera::start(&["--audio"]);
    let url = cam.url();
    for format in ["ts", "flv"] {
        let r = pull(
            &[&url, "--format", format, "--duration", "2s"],
            &format!("rtsp-audio.{format}"),
            &[],
        );
        assert_ok(&r, format);
        let path = &r.3;
        let s = probe_streams(path);
        assert_eq!(codecs(path), ["h264", "aac"], "{format}");
        assert!(
            s[1].packets >= 80,
            "{format}: {} AAC frames in 2 s",
            s[1].packets
        );
        assert_decodes_cleanly(path);
        assert_monotonic(path, 0.2);
        let p = probe_packets(path);
        let first_video = p.iter().find(|q| q.kind == "video").unwrap();
        assert!(first_video.key, "{format}: starts on a keyframe");
    }
}

#[test]
fn basic_and_digest_auth_and_a_wrong_password() {
    for method in ["basic", "digest"] {
        let cam = Camera::start(&["--auth", method, "--user", "cam", "--password", "s3cr:t"]);
        let hostpath = format!("127.0.0.1:{}/cam", cam.port);
        let pwfile = write_tmp(&format!("rtsp-{method}.pass"), b"s3cr:t\n");
        let pw = pwfile.to_string_lossy().to_string();
        // Credentials in the URL (percent-encoded), in a file, in the environment.
        let in_url = format!("rtsp://cam:s3cr%3At@{hostpath}");
        let bare = format!("rtsp://{hostpath}");
        type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            // Even retina's trace log (every request and response) must not show the secret.
            (vec![&in_url], vec![("RUST_LOG", "trace")]),
            (vec![&bare, "--user", "cam", "--password-file", &pw], vec![]),
            (
                vec![&bare],
                vec![
                    ("RIVER_RTSP_USER", "cam"),
                    ("RIVER_RTSP_PASSWORD", "s3cr:t"),
                ],
            ),
        ];
        for (i, (args, env)) in cases.into_iter().enumerate() {
            let mut a = args.clone();
            a.extend(["--duration", "1s", "-v"]);
            let r = pull(&a, &format!("rtsp-{method}-{i}.ts"), &env);
            assert_ok(&r, &format!("{method} case {i}"));
            assert!(
                !r.1.contains("s3cr"),
                "{method}: the password was logged:\n{}",
                r.1
            );
            assert_eq!(codecs(&r.3), ["h264"]);
            assert_decodes_cleanly(&r.3);
        }
        // A wrong password: one clear line, exit 1, quickly, even with --retry.
        let wrong = format!("rtsp://cam:hunter2@{hostpath}");
        let r = pull(
            &[&wrong, "--retry"],
            &format!("rtsp-{method}-wrong.ts"),
            &[],
        );
        assert_eq!(r.0, Some(1), "{method}: {}", r.1);
        assert!(r.1.contains("401 Unauthorized"), "{method}: {}", r.1);
        assert!(r.1.contains("\"cam\" were refused"), "{method}: {}", r.1);
        assert!(
            !r.1.contains("hunter2"),
            "{method}: the password was printed: {}",
            r.1
        );
        assert_eq!(r.1.trim().lines().count(), 1, "{method}: {}", r.1);
        assert!(r.2 < 10.0, "{method}: took {:.1} s to fail", r.2);
        // No credentials at all: say how to give them.
        let r = pull(&[&bare], &format!("rtsp-{method}-none.ts"), &[]);
        assert_eq!(r.0, Some(1), "{method}: {}", r.1);
        assert!(
            r.1.contains("needs credentials") && r.1.contains("--password-file"),
            "{}",
            r.1
        );
    }
}

#[test]
fn clear_errors_for_404_refused_and_timeout() {
    let cam = Camera::start(&[]);
    let r = pull(
        &[&format!("rtsp://127.0.0.1:{}/nope", cam.port)],
        "rtsp-404.ts",
        &[],
    );
    assert_eq!(r.0, Some(1), "{}", r.1);
    assert!(
        r.1.contains("404 Not Found") && r.1.contains("\"/nope\""),
        "{}",
        r.1
    );

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = pull(
        &[&format!("rtsp://127.0.0.1:{port}/cam")],
        "rtsp-refused.ts",
        &[],
    );
    assert_eq!(r.0, Some(1), "{}", r.1);
    assert!(r.1.contains("connection refused"), "{}", r.1);
    assert!(r.1.contains(&format!("127.0.0.1:{port}")), "{}", r.1);

    // H.265 is carried now (tests/it/hevc_rtsp.rs); --format h264 refusing it is tested there.

    // A server that accepts the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = pull(
        &[
            &format!("rtsp://127.0.0.1:{port}/cam"),
            "--stall-timeout",
            "1s",
        ],
        "rtsp-timeout.ts",
        &[],
    );
    drop(silent);
    assert_eq!(r.0, Some(1), "{}", r.1);
    assert!(
        r.1.contains("timeout") && r.1.contains("DESCRIBE"),
        "{}",
        r.1
    );
    assert!(r.2 < 8.0, "took {:.1} s", r.2);

    // Usage errors: exit 2.
    let r = pull(&["http://127.0.0.1/cam"], "rtsp-usage.ts", &[]);
    assert_eq!(r.0, Some(2), "{}", r.1);
}

#[test]
fn camera_restart_with_retry_gives_one_continuous_stream() {
    let mut cam = Camera::start(&["--audio"]);
    let url = cam.url();
    let mut p = Pull::spawn(
        &[&url, "--retry", "--stall-timeout", "3s", "-v"],
        "rtsp-restart.ts",
        &[],
    );
    p.wait_output(100_000);
    std::thread::sleep(Duration::from_secs(1));
    cam.restart();
    let before = p.out_len();
    p.wait_output(before + 150_000);
    p.signal(libc::SIGTERM);
    let r = p.finish();
    assert_ok(&r, "restart");
    assert!(r.1.contains("reconnecting"), "{}", r.1);
    assert!(r.1.contains("2 session(s)"), "{}", r.1);
    let path = &r.3;
    assert_eq!(codecs(path), ["h264", "aac"]);
    assert_decodes_cleanly(path);
    // Timestamps continue across the break: no gap beyond a frame or two, never backward.
    assert_monotonic(path, 0.2);
    let data = std::fs::read(path).unwrap();
    assert_eq!(
        ts_discontinuities(&data),
        2,
        "one mark per stream at the reconnect"
    );

    // Without --retry, the same event is a one-line error.
    let mut p = Pull::spawn(&[&cam.url()], "rtsp-restart-noretry.ts", &[]);
    p.wait_output(50_000);
    cam.kill();
    let r = p.finish();
    assert_eq!(r.0, Some(1), "{}", r.1);
    assert!(
        r.1.contains("ended the session") || r.1.contains("during PLAY"),
        "{}",
        r.1
    );
    assert_eq!(r.1.trim().lines().count(), 1, "{}", r.1);
    assert_decodes_cleanly(&r.3);
}

#[test]
fn a_stalled_camera_is_detected() {
    let cam = Camera::start(&[]);
    let mut p = Pull::spawn(
        &[&cam.url(), "--stall-timeout", "1500ms"],
        "rtsp-stall.ts",
        &[],
    );
    p.wait_output(30_000);
    cam.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let r = p.finish();
    let waited = stopped.elapsed().as_secs_f64();
    cam.signal(libc::SIGCONT);
    assert_eq!(r.0, Some(1), "{}", r.1);
    assert!(r.1.contains("stalled: no media for 1.5 s"), "{}", r.1);
    assert!(
        (1.0..10.0).contains(&waited),
        "stall reported after {waited:.1} s"
    );
    assert_decodes_cleanly(&r.3);
}

#[test]
fn duration_ends_on_time_and_sigint_finishes_cleanly() {
    let cam = Camera::start(&["--audio"]);
    let r = pull(&[&cam.url(), "--duration", "3s"], "rtsp-duration.ts", &[]);
    assert_ok(&r, "duration");
    assert!(r.2 < 8.0, "--duration 3s took {:.1} s", r.2);
    let p = probe_packets(&r.3);
    let v: Vec<f64> = p
        .iter()
        .filter(|q| q.kind == "video")
        .map(|q| q.pts)
        .collect();
    let span = v.last().unwrap() - v.first().unwrap();
    assert!((2.8..3.0).contains(&span), "video spans {span:.3} s");
    assert_decodes_cleanly(&r.3);

    let mut p = Pull::spawn(&[&cam.url(), "--format", "flv"], "rtsp-sigint.flv", &[]);
    p.wait_output(50_000);
    p.signal(libc::SIGINT);
    let r = p.finish();
    assert_eq!(r.0, Some(130), "{}", r.1);
    assert_eq!(codecs(&r.3), ["h264", "aac"]);
    assert_decodes_cleanly(&r.3);

    // The reader closing the pipe ends the tool quietly with 0, also with --retry.
    let mut child = Command::new(river("river-rtsp-pull"))
        .args([&cam.url(), "--retry"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut first = [0u8; 10_000];
    std::io::Read::read_exact(&mut so, &mut first).unwrap();
    drop(so);
    let status = wait_deadline(&mut child, WAIT, "river-rtsp-pull | head");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn keepalives_hold_the_session_past_the_camera_timeout_and_teardown_ends_it() {
    // The camera expires sessions after 2 s without a request; retina keeps them alive.
    let cam = Camera::start(&["--session-timeout", "2"]);
    for transport in ["tcp", "udp"] {
        let r = pull(
            &[&cam.url(), "--transport", transport, "--duration", "5s"],
            &format!("rtsp-keepalive-{transport}.ts"),
            &[("RUST_LOG", "retina=trace,river=debug")],
        );
        assert_ok(&r, transport);
        assert!(
            r.1.contains("keepalive succeeded"),
            "{transport}: no keepalive: {}",
            r.1
        );
        assert!(r.1.contains("TEARDOWN done"), "{transport}: {}", r.1);
        let p = probe_packets(&r.3);
        let v: Vec<f64> = p
            .iter()
            .filter(|q| q.kind == "video")
            .map(|q| q.pts)
            .collect();
        let span = v.last().unwrap() - v.first().unwrap();
        assert!(
            span > 4.8,
            "{transport}: the session ended early ({span:.2} s)"
        );
    }
    let expired: Vec<String> = cam
        .stderr
        .try_iter()
        .filter(|l| l.contains("expired"))
        .collect();
    assert!(
        expired.is_empty(),
        "the camera expired a session: {expired:?}"
    );
}

/// `--stats` and `--metrics`: sessions, stall timeouts and reconnections as a camera stalls and
/// comes back, checked by promtool at each step.
#[test]
fn metrics_count_stalls_and_reconnects() {
    use crate::progress::{metric, metrics_addr, scrape_until};
    let cam = Camera::start(&[]);
    let mut p = Pull::spawn(
        &[
            &cam.url(),
            "--retry",
            "--stall-timeout",
            "1500ms",
            "--metrics",
            "127.0.0.1:0",
            "--stats",
            "--stats-period",
            "500ms",
        ],
        "rtsp-metrics.ts",
        &[],
    );
    p.wait_output(30_000);
    let addr = metrics_addr(&p.stderr()).unwrap_or_else(|| panic!("{}", p.stderr()));
    let v = |b: &str, n: &str| {
        metric(b, &format!("river_rtsp_pull_{n}")).unwrap_or_else(|| panic!("no {n}:\n{b}"))
    };
    let playing = scrape_until(&addr, "a playing session", |b| {
        metric(b, "river_rtsp_pull_connected") == Some(1.0)
            && metric(b, "river_rtsp_pull_video_frames_total").unwrap_or(0.0) >= 10.0
    });
    assert_eq!(v(&playing, "sessions_total"), 1.0, "{playing}");
    assert_eq!(v(&playing, "stall_timeouts_total"), 0.0, "{playing}");
    assert!(v(&playing, "bytes_in_total") > 0.0, "{playing}");
    assert!(v(&playing, "bytes_out_total") > 0.0, "{playing}");
    // The camera stops answering: a stall, and reconnection attempts.
    cam.signal(libc::SIGSTOP);
    let stalled = scrape_until(&addr, "the stall", |b| {
        metric(b, "river_rtsp_pull_stall_timeouts_total").unwrap_or(0.0) >= 1.0
            && metric(b, "river_rtsp_pull_connected") == Some(0.0)
    });
    assert_eq!(v(&stalled, "stall_timeouts_total"), 1.0, "{stalled}");
    // It comes back: a new session plays.
    cam.signal(libc::SIGCONT);
    let back = scrape_until(&addr, "the new session", |b| {
        metric(b, "river_rtsp_pull_sessions_total").unwrap_or(0.0) >= 2.0
            && metric(b, "river_rtsp_pull_connected") == Some(1.0)
    });
    assert!(v(&back, "reconnects_total") >= 1.0, "{back}");
    p.signal(libc::SIGINT);
    let r = p.finish();
    assert_eq!(r.0, Some(130), "{}", r.1);
    assert!(
        r.1.lines()
            .rfind(|l| l.starts_with("river-rtsp-pull: stats: "))
            .is_some_and(|l| l.contains(" stall_timeouts=1 ") && l.contains(" sessions=")),
        "{}",
        r.1
    );
}
