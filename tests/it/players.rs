//! The players people point at the hub, each on a real-time broadcast (ffmpeg -re, or a desktop
//! grabbed under Xvfb), checked by what they decoded or recorded, never by their logs:
//! - mpegts.js in headless Chromium plays the hub's own player pages (http-flv and http-ts), and a
//!   page from another origin plays through CORS;
//! - VLC (`cvlc`, run as an unprivileged user: it refuses root) records rtmp://, http-flv and
//!   http-ts for 5 s, and ffprobe reads the recordings. Debian's VLC cannot play rtsp://: it is
//!   built with `--disable-live555` (its `cvlc -vv` prints the configure line), and without
//!   live555 VLC 3 has no RTSP client for H.264/AAC (its satip and realrtsp modules only speak to
//!   SAT>IP and RealServer);
//! - the README's desktop broadcast (`ffmpeg -f x11grab … -f h264 - | river-relay … broadcast`)
//!   under Xvfb, decoded by an fstream watcher and an http-ts player.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::browser::{self, Playback, StartGap};
use crate::common::hub::{scratch, Hub, USERS, WAIT};
use crate::common::*;

/// A background process, killed on drop.
struct Bg {
    child: Child,
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broadcast every player test watches: 640x360 30 fps H.264 (2 B-frames, a keyframe every
/// second) and AAC, longer than any test plays it.
fn clip() -> Clip {
    Clip {
        width: 640,
        height: 360,
        fps: 30,
        bframes: 2,
        audio: true,
        gop_secs: 1,
        secs: 40,
    }
}

/// `ffmpeg -re` of [`clip`] published to the hub over RTMP as fier/cam; returns once the hub has
/// its headers.
fn broadcast(hub: &Hub) -> Bg {
    require("ffmpeg");
    let src = clip().flv().to_string_lossy().to_string();
    let url = format!("rtmp://{}/fier/cam?user-password=123", hub.rtmp);
    let child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-re", "-i", &src, "-c", "copy"])
        .args(["-f", "flv", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg");
    let bg = Bg { child };
    hub.log
        .wait_for("channel fier/cam: FLV content", "the hub (RTMP publish)");
    bg
}

/// Real playback at real speed: 5 s of media played with no player error, no stall over 1 s, a
/// decoded frame for each of them (30 fps) and audio; the hub kept the player fed (it never
/// waited for data once playing) and its clock never ran ahead of the wall clock (no catching up
/// on latency by rate or seeking).
fn assert_real_time(p: &Playback, what: &str) {
    eprintln!("{what}: {p:?}");
    p.assert_played(5.0, 30.0, StartGap::None, what);
    // The clock may fall behind the wall clock only where Chromium held up a player that had data
    // (`held_up`; on this 2-core machine under a load average of 12 to 14, 0.1 to 0.65 s, with
    // `starved` 0 and at least 0.18 s buffered ahead in every sample; idle, under 0.04 s in all).
    // Each sample's read jitter (under 20 ms) is left out of the split, and cancels out at
    // playback rate 1: what is left of `wall - advanced` stays under 0.1 s.
    let unexplained = (p.wall - p.advanced) - (p.starved + p.held_up - p.gained);
    assert!(
        p.starved <= 0.1 && p.gained <= 0.1 && unexplained.abs() <= 0.1,
        "{what}: the media clock advanced {:.3} s in {:.3} s of wall time: starved {:.3} s, \
         held up {:.3} s, ran ahead {:.3} s, {unexplained:.3} s unexplained: {p:#?}",
        p.advanced,
        p.wall,
        p.starved,
        p.held_up,
        p.gained
    );
}

#[test]
fn mpegts_js_plays_the_hubs_http_flv_page() {
    let hub = Hub::start(USERS);
    let _b = broadcast(&hub);
    let url = format!("http://{}/fier/cam", hub.http);
    let p = browser::play(&url, 5.0);
    assert_real_time(&p, &url);
    assert!(p.status.contains("state: playing"), "{p:#?}");
}

#[test]
fn mpegts_js_plays_the_hubs_http_ts_page() {
    let hub = Hub::start(USERS);
    let _b = broadcast(&hub);
    let url = format!("http://{}/fier/cam?format=ts", hub.http);
    let p = browser::play(&url, 5.0);
    assert_real_time(&p, &url);
}

/// Serves one page at `/` from 127.0.0.1:<another port> (another origin than the hub's) until
/// dropped; anything else is 404.
struct PageServer {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PageServer {
    fn start(page: String) -> PageServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(WAIT));
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match c.read(&mut b) {
                        Ok(n) if n > 0 => head.extend_from_slice(&b[..n]),
                        _ => break,
                    }
                }
                let resp = if head.starts_with(b"GET / ") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                        page.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = c.write_all(resp.as_bytes());
            }
        });
        PageServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_page_from_another_origin_plays_the_hub_through_cors() {
    // Debug level (clap keeps the subcommand's count of a global flag): the hub logs each
    // request, so the preflight is seen to reach it.
    let hub = Hub::start_with(USERS, &["-vv"]);
    let _b = broadcast(&hub);
    let base = format!("http://{}", hub.http);
    let page = river::relay::player::page(
        &format!("{base}/mpegts.js"),
        &format!("{base}/fier/cam.flv"),
        river::relay::player::Kind::Flv,
        "another origin",
    );
    // A request with a header outside the CORS safelist is preflighted: the page reads the
    // hub's stats with one, and records the outcome where the harness reads it.
    let probe = format!(
        r#"<script>
fetch("{base}/stats", {{ headers: {{ "X-River-Probe": "1" }} }})
  .then(function (r) {{ return r.json(); }})
  .then(function (j) {{ document.title = "stats: " + j.channels.length + " channel(s)"; }})
  .catch(function (e) {{ window.riverErrors.push("stats fetch: " + e); }});
</script>
</body>"#
    );
    let page = page.replace("</body>", &probe);
    let server = PageServer::start(page);
    let url = format!("http://{}/", server.addr);
    assert_ne!(server.addr, hub.http);
    let p = browser::play(&url, 5.0);
    assert_real_time(&p, &url);
    assert_eq!(p.title, "stats: 1 channel(s)", "{p:#?}");
    // The stream and the stats were asked for from the page's origin (CORS mode), after a
    // preflight of the stats request.
    hub.log
        .wait_for("OPTIONS \"/stats\"", "the hub (preflight)");
    hub.log
        .wait_for("GET \"/fier/cam.flv\"", "the hub (stream)");
}

/// One raw request to the hub's HTTP port: the response head.
fn head_of(addr: &str, req: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut v = Vec::new();
    let mut b = [0u8; 4096];
    // Heads only: a stream's body never ends, so stop at the blank line.
    while !v.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(n) if n > 0 => v.extend_from_slice(&b[..n]),
            _ => break,
        }
    }
    let end = v
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn cors_headers_on_the_wire() {
    let hub = Hub::start(USERS);
    let _b = broadcast(&hub);
    let origin = "Origin: http://player.example\r\n";
    for path in [
        "/fier/cam.flv",
        "/fier/cam.ts",
        "/stats",
        "/metrics",
        "/fier/cam",
    ] {
        let h = head_of(
            &hub.http,
            &format!("GET {path} HTTP/1.1\r\nHost: h\r\n{origin}Connection: close\r\n\r\n"),
        );
        assert!(h.starts_with("HTTP/1.1 200"), "{path}: {h}");
        assert_eq!(field(&h, "Access-Control-Allow-Origin"), Some("*"), "{h}");
    }
    // A refusal (a wrong channel password) carries it too, so the page can read why.
    let h = head_of(
        &hub.http,
        &format!("GET /fier/cam.flv?password=x HTTP/1.1\r\nHost: h\r\n{origin}\r\n"),
    );
    assert!(h.starts_with("HTTP/1.1 403"), "{h}");
    assert_eq!(field(&h, "Access-Control-Allow-Origin"), Some("*"), "{h}");
    // A preflight for the stream with a Range header and from a public page to a private address.
    let h = head_of(
        &hub.http,
        &format!(
            "OPTIONS /fier/cam.flv HTTP/1.1\r\nHost: h\r\n{origin}\
             Access-Control-Request-Method: GET\r\n\
             Access-Control-Request-Headers: range, x-player\r\n\
             Access-Control-Request-Private-Network: true\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(h.starts_with("HTTP/1.1 204"), "{h}");
    assert_eq!(field(&h, "Access-Control-Allow-Origin"), Some("*"), "{h}");
    let methods = field(&h, "Access-Control-Allow-Methods").unwrap_or("");
    assert!(methods.contains("GET") && methods.contains("POST"), "{h}");
    assert_eq!(
        field(&h, "Access-Control-Allow-Headers"),
        Some("range, x-player"),
        "{h}"
    );
    assert_eq!(field(&h, "Access-Control-Max-Age"), Some("86400"), "{h}");
    assert_eq!(
        field(&h, "Access-Control-Allow-Private-Network"),
        Some("true"),
        "{h}"
    );
    // The stats answer GET and HEAD only; an unknown path has nothing to preflight.
    let h = head_of(
        &hub.http,
        "OPTIONS /stats HTTP/1.1\r\nHost: h\r\nAccess-Control-Request-Method: GET\r\n\r\n",
    );
    assert!(h.starts_with("HTTP/1.1 204"), "{h}");
    assert_eq!(
        field(&h, "Access-Control-Allow-Methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(field(&h, "Access-Control-Allow-Headers"), None, "{h}");
    let h = head_of(&hub.http, "OPTIONS /nothing HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(h.starts_with("HTTP/1.1 404"), "{h}");
    let h = head_of(&hub.http, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(h.starts_with("HTTP/1.1 204"), "{h}");
    // The player's script and its licence.
    let (h, body) = hub.get("/mpegts.js");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert_eq!(
        field(&h, "Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(body, river::relay::player::MPEGTS_JS);
    let (h, body) = hub.get("/mpegts.js.LICENSE.txt");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(String::from_utf8_lossy(&body).contains("Apache License"));
    let (h, _) = hub.get("/fier/cam?format=mp4");
    assert!(h.starts_with("HTTP/1.1 400"), "{h}");
    // The page passes the channel password on, decoded once and encoded again.
    let (h, body) = hub.get("/fier/cam?format=ts&password=s3%20cr%26t");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    let page = String::from_utf8_lossy(&body);
    assert!(
        page.contains(r#"var src = "/fier/cam.ts?password=s3%20cr%26t", type = "mpegts";"#),
        "{page}"
    );
}

/// `cvlc` as a user VLC agrees to run as: root runs it as `nobody` (VLC refuses root).
fn cvlc(home: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut c = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "env"]);
        c.arg(format!("HOME={}", home.display()));
        c.arg("cvlc");
        c
    } else {
        let mut c = Command::new("cvlc");
        c.env("HOME", home);
        c
    };
    c.stdin(Stdio::null());
    c
}

fn require_vlc(home: &Path) {
    let ok = cvlc(home)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cvlc is required for this test but was not found; install it with \
         `apt-get install -y vlc-bin vlc-plugin-base` (Debian) or run .ci/run"
    );
}

/// A directory the unprivileged VLC user may write to, removed on drop. Under the system temp
/// directory: the checkout's may sit under a directory `nobody` cannot enter (/root is 0700).
struct VlcDir(PathBuf);

impl VlcDir {
    fn new() -> VlcDir {
        use std::os::unix::fs::PermissionsExt;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "river-vlc-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        VlcDir(d)
    }
}

impl Drop for VlcDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What ffprobe found in a recording: per stream its codec, the frames that decode, and the
/// timestamps of its packets in file order.
#[derive(Debug)]
struct Track {
    codec: String,
    frames: u64,
    first_key: bool,
    pts: Vec<f64>,
}

impl Track {
    /// How far the timestamps advance, and how many leading packets were left out: VLC 3 writes
    /// the first one or two video packets it records with an unset DTS (0, plus its TS mux's
    /// 0.4 s dts-delay: pts 0.4, 0.5) and every later one on its own clock (seconds since boot).
    /// Recording `ffmpeg -re -i clip.flv -c copy -f flv -listen 1 http://…` does the same, so
    /// it is VLC's. Left out: leading packets over 2 × `secs` below the median.
    fn span(&self, secs: f64) -> (f64, usize) {
        let mut sorted = self.pts.clone();
        sorted.sort_by(f64::total_cmp);
        let Some(&median) = sorted.get(sorted.len() / 2) else {
            return (0.0, 0);
        };
        let lead = self
            .pts
            .iter()
            .take_while(|&&p| p < median - 2.0 * secs)
            .count();
        let rest = &self.pts[lead..];
        let lo = rest.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rest.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (hi - lo, lead)
    }
}

fn tracks(path: &Path) -> Vec<Track> {
    let p = path.to_string_lossy().to_string();
    let out = run(
        Path::new("ffprobe"),
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=index,codec_type,codec_name,nb_read_frames",
            "-of",
            "json",
            &p,
        ],
        b"",
    );
    assert!(out.status.success(), "ffprobe {p}: {}", out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packets = probe_packets(path);
    let mut t: Vec<Track> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let kind = s["codec_type"].as_str().unwrap_or("");
            let mine: Vec<&Packet> = packets.iter().filter(|k| k.kind == kind).collect();
            Track {
                codec: s["codec_name"].as_str().unwrap_or("").to_string(),
                frames: s["nb_read_frames"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                first_key: mine.first().is_some_and(|k| k.key),
                pts: mine
                    .iter()
                    .map(|k| k.pts)
                    .filter(|p| p.is_finite())
                    .collect(),
            }
        })
        .collect();
    t.sort_by(|a, b| a.codec.cmp(&b.codec));
    t
}

/// VLC plays `url` for `secs` and records what it received (no transcoding) to an MPEG-TS file.
fn vlc_records(url: &str, dir: &Path, name: &str, secs: u32) -> (PathBuf, Child) {
    let out = dir.join(format!("{name}.ts"));
    let child = cvlc(dir)
        .args(["--no-video-title-show", &format!("--run-time={secs}"), url])
        .arg(format!(
            "--sout=#std{{access=file,mux=ts,dst={}}}",
            out.display()
        ))
        .arg("vlc://quit")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cvlc");
    (out, child)
}

#[test]
fn vlc_plays_rtmp_http_flv_and_http_ts_from_the_hub() {
    const SECS: u32 = 5;
    let tmp = VlcDir::new();
    let dir = tmp.0.clone();
    require_vlc(&dir);
    let hub = Hub::start(USERS);
    let _b = broadcast(&hub);
    // VLC joins a second into the broadcast, as a viewer does: joining at its very first frame,
    // VLC 3's FLV input (libavformat's) drops that keyframe in about half the runs, and the first
    // GOP does not decode. Recording `ffmpeg -re -i clip.flv -c copy -f flv -listen 1 http://…`
    // from its start does the same (3 of 6 runs), so it is VLC's, not the hub's.
    std::thread::sleep(Duration::from_millis(1500));
    let urls = [
        ("rtmp", format!("rtmp://{}/fier/cam", hub.rtmp)),
        ("http-flv", format!("http://{}/fier/cam.flv", hub.http)),
        ("http-ts", format!("http://{}/fier/cam.ts", hub.http)),
    ];
    let runs: Vec<_> = urls
        .iter()
        .map(|(name, url)| (*name, url, vlc_records(url, &dir, name, SECS)))
        .collect();
    for (name, url, (out, mut child)) in runs {
        let what = format!("cvlc {url}");
        // VLC's own log always holds errors (no audio device, no D-Bus): it is shown, not checked.
        let st = wait_deadline(&mut child, WAIT, &what);
        let mut log = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        assert!(st.success(), "{what}: {st}\n{log}");
        let len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{what}: recorded nothing\n{log}");
        let t = tracks(&out);
        let codecs: Vec<&str> = t.iter().map(|t| t.codec.as_str()).collect();
        assert_eq!(codecs, ["aac", "h264"], "{name}: {t:?}");
        let secs = SECS as f64;
        for tr in &t {
            let (span, lead) = tr.span(secs);
            eprintln!(
                "{name}: {} {} packets, {} frames decoded, {span:.3} s after {lead} left out",
                tr.codec,
                tr.pts.len(),
                tr.frames
            );
            // VLC stops SECS s after its input starts. Over that it got the hub's cached GOP
            // (at most 1 s of this clip) at once and the rest in real time, and its TS mux keeps
            // its last 0.4 s (`--sout-ts-dts-delay`, 400 ms) unwritten at the stop. Measured:
            // 4.67 to 4.99 s.
            assert!(
                (secs - 0.5..=secs + 1.0).contains(&span) && lead <= 2,
                "{name}: {} spans {span:.3} s after {lead} packets left out: {tr:?}\n{log}",
                tr.codec
            );
        }
        let video = &t[1];
        let (span, _) = video.span(secs);
        // It starts on a keyframe, and every frame in the span decodes (30 fps).
        assert!(video.first_key, "{name}: {video:?}");
        assert!(
            video.frames as f64 >= (span * 30.0).floor(),
            "{name}: {} frames decoded in {span:.3} s",
            video.frames
        );
    }
}

/// Xvfb with the README's screen on a free display (`-displayfd`), killed on drop.
fn xvfb() -> (Bg, u32) {
    let ok = Command::new("Xvfb")
        .arg("-help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Xvfb is required for this test but was not found; install it with \
         `apt-get install -y xvfb x11-apps` (Debian) or run .ci/run"
    );
    let mut fds = [0; 2];
    // SAFETY: pipe fills two fds, which we own from here on. Without O_CLOEXEC: Xvfb inherits
    // the write end.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let child = Command::new("Xvfb")
        .args(["-displayfd", &w.as_raw_fd().to_string()])
        .args(XVFB_ARGS.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn Xvfb");
    drop(w);
    let bg = Bg { child };
    // Xvfb writes the display number when it accepts connections.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::fs::File::from(r).read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let got = rx.recv_timeout(WAIT).expect("Xvfb did not start in time");
    let n = got
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb -displayfd: {got:?}"));
    (bg, n)
}

/// The README's desktop broadcast, with `{display}` and `{hub}` (the fstream address) to fill.
const DESKTOP_PIPELINE: &str = "ffmpeg -v error -f x11grab -framerate 30 -video_size 1280x720 -i :{display} -vf scale=-2:480 -c:v libx264 -preset veryfast -pix_fmt yuv420p -maxrate 1M -bufsize 2M -f h264 - | river-relay {hub} broadcast,user=fier,user-password=123,channel=desktop";

/// The README's virtual desktop: Xvfb's screen, and the clock drawn on it.
const XVFB_ARGS: &str = "-screen 0 1280x720x24 -br -nolisten tcp";
const XCLOCK_ARGS: &str = "-update 1 -geometry 400x400+100+100";

fn desktop_pipeline(display: u32, hub: &str) -> String {
    DESKTOP_PIPELINE
        .replace("{display}", &display.to_string())
        .replace("{hub}", hub)
}

#[test]
fn the_readme_shows_the_desktop_pipeline_as_tested() {
    let readme = include_str!("../../README.md");
    for line in [
        format!("Xvfb :99 {XVFB_ARGS} &"),
        format!("xclock -display :99 {XCLOCK_ARGS} &"),
        desktop_pipeline(99, "127.0.0.1:61920"),
    ] {
        assert!(readme.contains(&line), "README.md lacks:\n    {line}");
    }
}

/// The pid of `parent`'s child named `name` (from /proc), waiting for it to exist.
fn child_named(parent: u32, name: &str) -> u32 {
    let mut found = None;
    wait_until(&format!("{name} under pid {parent}"), WAIT, || {
        let list = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        found = list.split_whitespace().find_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim() == name).then(|| pid.parse().ok())?
        });
        found.is_some()
    });
    found.unwrap()
}

/// The share of bytes over 128 in a raw grey picture.
fn bright_share(gray: &[u8]) -> f64 {
    gray.iter().filter(|&&b| b > 128).count() as f64 / gray.len().max(1) as f64
}

#[test]
fn a_desktop_under_xvfb_grabbed_by_ffmpeg_plays_over_fstream_and_http_ts() {
    require("ffmpeg");
    let (_x, display) = xvfb();
    let dsp = format!(":{display}");
    // Something drawn: a 400x400 xclock (white face) on the black root (-br).
    let xclock = Command::new("xclock")
        .args(["-display", &dsp])
        .args(XCLOCK_ARGS.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xclock is required: apt-get install -y x11-apps, or run .ci/run");
    let _xclock = Bg { child: xclock };
    let hub = Hub::start(USERS);
    let dir = scratch("desktop");
    // The watchers wait for the channel, so they get the broadcast from its first byte.
    let fs_out = dir.join("fstream.h264");
    let watcher = Command::new(river("river-relay"))
        .arg(&hub.fstream)
        .arg("watch,user=fier,channel=desktop")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&fs_out).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watcher = Bg { child: watcher };
    let ts_out = dir.join("http.ts");
    let player = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(format!("http://{}/fier/desktop.ts", hub.http))
        .args(["-c", "copy", "-t", "5", "-y"])
        .arg(&ts_out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut player = Bg { child: player };
    hub.wait_watchers("fier", "desktop", 2);
    // The pipeline as the README has it, with river-relay from this build first on PATH.
    let bin = river("river-relay").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let line = desktop_pipeline(display, &hub.fstream);
    let pipeline = Command::new("sh")
        .args(["-c", &line])
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipeline = Bg { child: pipeline };
    let start = Instant::now();
    hub.log.wait_for("broadcasting fier/desktop", "the hub");
    let st = wait_deadline(&mut player.child, WAIT, "ffmpeg reading http-ts");
    let mut err = String::new();
    if let Some(mut e) = player.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(
        st.success(),
        "http-ts player: {err}\nhub:\n{}",
        hub.log.text()
    );
    // Stop the grab as one stops an encoder: SIGINT to ffmpeg, which flushes x264's delayed
    // frames and exits; river-relay sends what it has at EOF and exits 0, the hub ends the
    // broadcast, and the fstream watcher gets EOF.
    let ffmpeg = child_named(pipeline.child.id(), "ffmpeg");
    // SAFETY: kill(2) on a process of the pipeline this test started.
    unsafe { libc::kill(ffmpeg as libc::pid_t, libc::SIGINT) };
    let st = wait_deadline(&mut pipeline.child, WAIT, "desktop pipeline");
    let mut err = String::new();
    if let Some(mut e) = pipeline.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let broadcast_secs = start.elapsed().as_secs_f64();
    assert!(
        st.success() && err.trim().is_empty(),
        "pipeline: {st}: {err}"
    );
    let st = wait_deadline(&mut watcher.child, WAIT, "fstream watcher");
    assert!(
        st.success(),
        "fstream watcher: {st}\nhub:\n{}",
        hub.log.text()
    );
    let fs = check_desktop(&fs_out, "fstream watcher");
    let ts = check_desktop(&ts_out, "http-ts player");
    eprintln!(
        "desktop: fstream {} frames in {broadcast_secs:.2} s of broadcast; http-ts {} frames \
         over {:.3} s",
        fs.frames,
        ts.frames,
        ts.span(5.0).0
    );
    // The http-ts player asked for 5 s (`-t 5`), and the hub's TS carries every frame of them
    // at 1/30 s steps.
    let (span, lead) = ts.span(5.0);
    assert!(lead == 0 && span >= 4.9, "http-ts: {span:.3} s: {ts:?}");
    assert!(ts.frames as f64 >= (span * 30.0).floor(), "http-ts: {ts:?}");
    // The fstream watcher was there before the broadcast, as the http-ts player was, and stayed
    // to its end.
    assert!(fs.frames > ts.frames, "fstream {fs:?}, http-ts {ts:?}");
}

/// A recording of the grabbed desktop: 854x480 H.264 that starts on a keyframe, decodes cleanly
/// (every packet a frame), and shows the xclock's white face. Returns its video track.
fn check_desktop(path: &Path, what: &str) -> Track {
    let streams = probe_streams(path);
    assert_eq!(streams.len(), 1, "{what}: {streams:?}");
    let v = &streams[0];
    assert_eq!(v.codec, "h264", "{what}");
    assert_eq!((v.width, v.height), (Some(854), Some(480)), "{what}");
    assert_decodes_cleanly(path);
    let t = tracks(path).remove(0);
    assert!(t.first_key && t.frames == v.packets, "{what}: {v:?}, {t:?}");
    // The 30th picture, grey: the white face is 400x400 of the 1280x720 screen (17.4 %) on the
    // black root (-br), less the clock's marks and hands (measured: 16.9 %).
    let p = path.to_string_lossy().to_string();
    let out = run(
        Path::new("ffmpeg"),
        &[
            "-v",
            "error",
            "-i",
            &p,
            "-vf",
            "select=gte(n\\,30),format=gray",
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-",
        ],
        b"",
    );
    assert!(out.status.success(), "{what}: {}", out.stderr);
    assert_eq!(out.stdout.len(), 854 * 480, "{what}");
    let share = bright_share(&out.stdout);
    eprintln!("{what}: bright share {share:.4}");
    assert!(
        (0.15..=0.174).contains(&share),
        "{what}: bright share {share:.3}"
    );
    t
}
