//! river-rtmp-in against real ffmpeg publishers on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;

const CLIP: Clip = Clip {
    width: 160,
    height: 120,
    fps: 30,
    bframes: 2,
    audio: true,
    gop_secs: 1,
    secs: 2,
};

/// A running river-rtmp-in with stdout going to a file.
struct Server {
    child: Child,
    addr: String,
    stderr: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Server {
    fn start(args: &[&str], stdout: &Path) -> Server {
        Self::spawn(Command::new(river("river-rtmp-in")), args, stdout)
    }

    /// [`Server::start`] with at most `nofile` descriptors (RLIMIT_NOFILE).
    fn start_limited(nofile: u32, args: &[&str], stdout: &Path) -> Server {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(river("river-rtmp-in"));
        Self::spawn(sh, args, stdout)
    }

    fn spawn(mut cmd: Command, args: &[&str], stdout: &Path) -> Server {
        let out = std::fs::File::create(stdout).unwrap();
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "-v"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn river-rtmp-in");
        let (tx, rx) = mpsc::channel();
        let se = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(se).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            let l = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("river-rtmp-in did not print its address");
            log.push(l.clone());
            if let Some(rest) = l.split("rtmp://").nth(1) {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        Server {
            child,
            addr,
            stderr: rx,
            log,
        }
    }

    /// Waits (up to 30 s) for a stderr line containing `needle` and returns it.
    fn wait_log(&mut self, needle: &str) -> String {
        self.wait_lines(needle, 1).pop().unwrap()
    }

    /// Waits (up to 30 s) for `n` stderr lines containing `needle` and returns them.
    fn wait_lines(&mut self, needle: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<String> = self
                .log
                .iter()
                .filter(|l| l.contains(needle))
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            let Ok(l) = self
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                panic!("no {n} log lines with {needle:?}:\n{}", self.log.join("\n"));
            };
            self.log.push(l);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.addr)
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit; returns the status code and the whole stderr.
    fn wait(mut self) -> (Option<i32>, String) {
        let st = wait_deadline(&mut self.child, Duration::from_secs(30), "river-rtmp-in");
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.log.push(l);
        }
        (st.code(), self.log.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ffmpeg publishing `src` (copied) to `url`; returns (success, stderr).
fn publish(src: &Path, url: &str, realtime: bool) -> (bool, String) {
    require("ffmpeg");
    let s = src.to_string_lossy().to_string();
    let mut args = vec!["-nostdin", "-hide_banner", "-loglevel", "error"];
    if realtime {
        args.push("-re");
    }
    args.extend_from_slice(&["-i", &s, "-c", "copy", "-f", "flv", url]);
    let out = run(Path::new("ffmpeg"), &args, b"");
    (out.status.success(), out.stderr)
}

/// [`publish`] with ffmpeg's RTMP options (`-rtmp_app`, `-rtmp_playpath`) before the URL.
fn publish_with(src: &Path, url: &str, rtmp_opts: &[&str]) -> (bool, String) {
    require("ffmpeg");
    let s = src.to_string_lossy().to_string();
    let mut args = vec!["-nostdin", "-hide_banner", "-loglevel", "error"];
    args.extend_from_slice(&["-i", &s, "-c", "copy"]);
    args.extend_from_slice(rtmp_opts);
    args.extend_from_slice(&["-f", "flv", url]);
    let out = run(Path::new("ffmpeg"), &args, b"");
    (out.status.success(), out.stderr)
}

/// An ffmpeg publishing `src` (copied, in real time) to `url` from its stdin. The publish stays
/// on after the last packet until [`HeldPublish::release`] closes that stdin, however slowly the
/// test gets there.
struct HeldPublish {
    child: Child,
    feeder: std::thread::JoinHandle<std::process::ChildStdin>,
}

impl HeldPublish {
    fn start(src: &Path, url: &str) -> HeldPublish {
        require("ffmpeg");
        let mut child = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "flv",
                "-i",
                "pipe:0",
                "-c",
                "copy",
                "-f",
                "flv",
                url,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg");
        let mut stdin = child.stdin.take().unwrap();
        let data = std::fs::read(src).unwrap();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
            stdin
        });
        HeldPublish { child, feeder }
    }

    /// Closes ffmpeg's stdin: it sends what is left and ends the publish.
    fn release(self) -> Child {
        drop(self.feeder.join().unwrap());
        self.child
    }
}

fn out_path(name: &str) -> PathBuf {
    let d = tmpdir().join("rtmp");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The source clip's streams and packets, probed once.
fn source_probe() -> &'static (Vec<StreamInfo>, Vec<Packet>) {
    static P: std::sync::OnceLock<(Vec<StreamInfo>, Vec<Packet>)> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let src = CLIP.flv();
        (probe_streams(&src), probe_packets(&src))
    })
}

fn assert_same_as_source(got: &Path, ctx: &str) {
    let (ws, w) = source_probe();
    let gs = probe_streams(got);
    assert_eq!(&gs, ws, "{ctx}: streams");
    assert_eq!(gs.len(), 2, "{ctx}: h264 and aac");
    let g = probe_packets(got);
    assert_same_timestamps(&g, w, "video", 0.0015, ctx);
    assert_same_timestamps(&g, w, "audio", 0.0015, ctx);
    assert_decodes_cleanly(got);
}

#[test]
fn ffmpeg_publish_comes_out_as_the_source() {
    let out = out_path("publish.flv");
    let srv = Server::start(&["--key", "key"], &out);
    let (ok, err) = publish(&CLIP.flv(), &srv.url("live/key"), false);
    assert!(ok, "ffmpeg publish failed: {err}");
    // Without --persist the tool ends with the publish.
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("key key"),
        "the key is never logged in full: {log}"
    );
    assert_same_as_source(&out, "publish");
    // The tags come in the order FLV readers expect.
    let bytes = std::fs::read(&out).unwrap();
    let mut r = river::format::flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(&bytes, &mut evs);
    r.finish(&mut evs);
    let kinds: Vec<u8> = evs
        .iter()
        .filter_map(|e| match e {
            river::format::flv::FlvEvent::Tag(t) => Some(t.kind.as_u8()),
            river::format::flv::FlvEvent::Warning(w) => panic!("{w}"),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(kinds[0], 18, "onMetaData first");
}

#[test]
fn wrong_key_or_app_is_refused_with_a_clear_error() {
    let out = out_path("refused.flv");
    let srv = Server::start(&["--key", "right", "--app", "live"], &out);
    let (ok, err) = publish(&CLIP.flv(), &srv.url("live/wrong"), false);
    assert!(!ok, "a wrong key must fail");
    assert!(
        err.contains("stream key not accepted"),
        "ffmpeg said: {err}"
    );
    let (ok, err) = publish(&CLIP.flv(), &srv.url("other/right"), false);
    assert!(!ok, "a wrong app must fail");
    assert!(err.contains("unknown application"), "ffmpeg said: {err}");
    // The server is still there and takes the right one.
    let (ok, err) = publish(&CLIP.flv(), &srv.url("live/right"), false);
    assert!(ok, "{err}");
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("refused"), "{log}");
    assert_same_as_source(&out, "after refusals");
}

/// The application is trimmed of `/` on both sides (as river-relay's RTMP front does), and a
/// publish needs a key.
#[test]
fn the_app_is_trimmed_of_slashes_and_a_key_is_required() {
    let dir = out_path("trim");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_string_lossy();
    let cmd = format!("printf '%s' \"$RIVER_APP\" > {d}/$RIVER_KEY.app; cat > {d}/$RIVER_KEY.flv");
    let mut srv = Server::start(&["--app", "/live/", "--exec", &cmd], &dir.join("stdout"));
    let src = CLIP.flv();
    // ffmpeg sends the application as given: "/live/" and "/live" are the application "live".
    for (app, key) in [("/live/", "both"), ("/live", "lead"), ("live/", "trail")] {
        let url = srv.url("ignored/ignored");
        let (ok, err) = publish_with(&src, &url, &["-rtmp_app", app, "-rtmp_playpath", key]);
        assert!(ok, "app {app:?}: {err}");
    }
    // rtmp://HOST/live/ has no key: refused, as river-relay refuses it.
    let (ok, err) = publish(&src, &srv.url("live/"), false);
    assert!(!ok, "a publish without a key must fail");
    assert!(
        err.contains("publish to rtmp://HOST/<app>/<key>"),
        "ffmpeg said: {err}"
    );
    srv.wait_log("refused: publish to rtmp://HOST/<app>/<key>");
    // Each child ends once its stdin is closed (its publish ended).
    srv.wait_lines("(key ****(4 chars)) ended", 2);
    srv.wait_lines("(key tr…(5 chars)) ended", 1);
    for key in ["both", "lead", "trail"] {
        let app = dir.join(format!("{key}.app"));
        assert_eq!(std::fs::read_to_string(&app).unwrap(), "live", "{key}");
        assert_same_as_source(&dir.join(format!("{key}.flv")), key);
    }
    srv.signal(libc::SIGTERM);
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(log.matches("publishing app \"live\"").count(), 3, "{log}");
}

/// --max-connections: a connection over the cap is closed at once and logged with its address;
/// connections that never finish the handshake are closed at its deadline, which frees their
/// places.
#[test]
fn connections_over_the_cap_are_closed_and_silent_ones_time_out() {
    let out = out_path("cap.flv");
    let mut srv = Server::start(&["--max-connections", "2", "--key", "k"], &out);
    let t0 = Instant::now();
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&srv.addr).unwrap())
        .collect();
    let mut over = TcpStream::connect(&srv.addr).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut b = [0u8; 64];
    let r = over.read(&mut b);
    assert!(
        matches!(r, Ok(0)) || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection over the cap is closed"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "closed at once");
    let me = over.local_addr().unwrap();
    let line = srv.wait_log(&format!("{me}: refused: 2 connections open"));
    assert!(line.contains("--max-connections"), "{line}");
    // The two held connections send nothing: the handshake deadline (10 s) closes them.
    for mut h in held {
        h.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
        let r = h.read(&mut b);
        assert!(matches!(r, Ok(0)) || r.is_err(), "{r:?}");
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "closed at the handshake deadline, not {waited:?}"
    );
    srv.wait_log("handshake not done within 10s");
    // Their places are free again.
    let (ok, err) = publish(&CLIP.flv(), &srv.url("live/k"), false);
    assert!(ok, "{err}");
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    assert_same_as_source(&out, "after the cap");
}

/// Out of descriptors (a low RLIMIT_NOFILE), the connections the process cannot hold are closed
/// at once, without a flood of log lines, and once they are gone the server serves again.
#[test]
fn running_out_of_descriptors_sheds_connections_and_recovers() {
    let out = out_path("nofile.flv");
    let mut srv = Server::start_limited(32, &["--key", "k"], &out);
    let socks: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(&srv.addr).unwrap())
        .collect();
    srv.wait_log("Too many open files");
    // Some were closed by the server at once.
    let mut closed = 0;
    for mut s in socks {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 16];
        let r = s.read(&mut b);
        if matches!(r, Ok(0)) || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset) {
            closed += 1;
        }
    }
    assert!(closed > 0, "no connection was shed");
    // The rest are closed by the client now; the server notices and serves again.
    let mut tries = 0;
    loop {
        let (ok, err) = publish(&CLIP.flv(), &srv.url("live/k"), false);
        if ok {
            break;
        }
        tries += 1;
        assert!(
            tries < 20,
            "publish after running out of descriptors: {err}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    let lines = log.lines().filter(|l| l.contains("descriptor")).count();
    assert!(lines <= 4, "{lines} lines about descriptors: {log}");
    assert_same_as_source(&out, "after running out of descriptors");
}

#[test]
fn exec_runs_one_child_per_key_at_once() {
    let dir = out_path("exec");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "# test keys\nalpha\n\nbeta\n").unwrap();
    let d = dir.to_string_lossy();
    // The child ignores the end of its stdin: only SIGTERM ends it.
    let cmd = format!(
        "cat > {d}/$RIVER_KEY.flv; echo \"$RIVER_APP $RIVER_REMOTE_ADDR\" > {d}/$RIVER_KEY.env; \
         trap 'echo term > {d}/$RIVER_KEY.term; exit 0' TERM; sleep 60 & wait"
    );
    let srv = Server::start(
        &["--keys", &keys.to_string_lossy(), "--exec", &cmd],
        &dir.join("stdout"),
    );
    let src = CLIP.flv();
    let a = HeldPublish::start(&src, &srv.url("live/alpha"));
    let b = HeldPublish::start(&src, &srv.url("live/beta"));
    wait_for("both children", || {
        dir.join("alpha.flv").exists() && dir.join("beta.flv").exists()
    });
    // One publisher per key at a time: alpha's publish is still on (its stdin is open).
    let (ok, err) = publish(&src, &srv.url("live/alpha"), false);
    assert!(!ok && err.contains("already publishing"), "{err}");
    for (c, name) in [(a, "alpha"), (b, "beta")] {
        let mut c = c.release();
        let st = wait_deadline(&mut c, Duration::from_secs(30), name);
        assert!(st.success(), "ffmpeg {name}");
    }
    for k in ["alpha", "beta"] {
        wait_for("SIGTERM to reach the child", || {
            dir.join(format!("{k}.term")).exists()
        });
        let env = std::fs::read_to_string(dir.join(format!("{k}.env"))).unwrap();
        assert!(env.starts_with("live 127.0.0.1:"), "{env}");
        assert_same_as_source(&dir.join(format!("{k}.flv")), k);
    }
    assert_eq!(std::fs::read(dir.join("stdout")).unwrap().len(), 0);
    srv.signal(libc::SIGTERM);
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn persist_survives_a_killed_publisher() {
    let out = out_path("persist.flv");
    let srv = Server::start(&["--persist", "--key", "k"], &out);
    let src = CLIP.flv();
    // Killed while publishing: it cannot end on its own first (its stdin stays open).
    let first = HeldPublish::start(&src, &srv.url("live/k"));
    wait_for("the first publisher's data", || {
        std::fs::metadata(&out)
            .map(|m| m.len() > 20_000)
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_millis(300));
    let HeldPublish { mut child, feeder } = first;
    let _ = child.kill();
    let _ = child.wait();
    let _ = feeder.join();
    // The reconnect may race the server noticing the dead connection: retry briefly.
    let mut tries = 0;
    loop {
        let (ok, err) = publish(&src, &srv.url("live/k"), false);
        if ok {
            break;
        }
        tries += 1;
        assert!(tries < 20, "second publish failed: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    srv.signal(libc::SIGINT);
    let (code, log) = srv.wait();
    assert_eq!(code, Some(130), "{log}");
    // The whole spliced file decodes without a word from ffmpeg: its null muxer also checks
    // that no two frames of a track land on one tick of the track's rate.
    assert_decodes_cleanly(&out);
    let p = probe_packets(&out);
    for kind in ["video", "audio"] {
        let dts: Vec<f64> = p.iter().filter(|x| x.kind == kind).map(|x| x.dts).collect();
        assert!(dts.len() > 60 + 10, "{kind}: {} packets", dts.len());
        for w in dts.windows(2) {
            assert!(w[1] > w[0], "{kind}: dts does not increase: {w:?}");
        }
    }
    let s = probe_streams(&out);
    assert_eq!((s[0].codec.as_str(), s[1].codec.as_str()), ("h264", "aac"));
    // The unchanged sequence headers were written once.
    let bytes = std::fs::read(&out).unwrap();
    let mut r = river::format::flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(&bytes, &mut evs);
    r.finish(&mut evs);
    let seq = evs
        .iter()
        .filter(|e| matches!(e, river::format::flv::FlvEvent::Tag(t) if t.kind.as_u8() == 9 && t.body.get(1) == Some(&0)))
        .count();
    assert_eq!(seq, 1);
}

#[test]
fn hostile_chunk_streams_are_refused_without_a_crash() {
    use river::proto::rtmp::handshake::{client_c0c1, HANDSHAKE_SIZE};
    use river::proto::rtmp::ChunkWriter;
    let out = out_path("hostile.flv");
    let srv = Server::start(&[], &out);
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("huge chunk size", {
            let mut w = ChunkWriter::new();
            let mut b = Vec::new();
            w.write(2, 1, 0, 0, &0x7FFF_FFFFu32.to_be_bytes(), &mut b);
            b
        }),
        (
            "huge message length",
            vec![0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0, 1, 2, 3],
        ),
        ("unknown message types", {
            let mut w = ChunkWriter::new();
            let mut b = Vec::new();
            for t in [0u8, 7, 0x33, 0xFE] {
                w.write(5, t, 0, 0, &[9; 300], &mut b);
            }
            b
        }),
        ("not rtmp", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
    ];
    for (name, body) in attacks {
        let mut s = TcpStream::connect(&srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut msg = Vec::new();
        if name != "not rtmp" {
            msg.extend(client_c0c1(0));
            msg.extend(vec![0u8; HANDSHAKE_SIZE]);
        }
        msg.extend(&body);
        let _ = s.write_all(&msg);
        // The server answers the handshake, then closes (or, for unknown types, waits for
        // more: then the client closes after reading the handshake).
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let t = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if name == "unknown message types" && got.len() > 2 * HANDSHAKE_SIZE {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(25), "{name}: not closed");
        }
    }
    // Still serving.
    let (ok, err) = publish(&CLIP.flv(), &srv.url("live/any"), false);
    assert!(ok, "{err}");
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("set chunk size"), "{log}");
    assert!(log.contains("larger than the limit"), "{log}");
    assert!(log.contains("HTTP"), "{log}");
    assert_same_as_source(&out, "after attacks");
}

/// The play side of the session (what the hub serves), driven over a real socket from this test,
/// with ffmpeg as the player: the FLV it records holds the source's streams and packets.
#[test]
fn session_play_side_serves_ffmpeg() {
    use river::format::flv::{FlvEvent, FlvReader, TagKind};
    use river::proto::rtmp::{MediaKind, ServerConfig, ServerEvent, ServerSession};
    let src = CLIP.flv();
    let mut r = FlvReader::new();
    let mut evs = Vec::new();
    r.push(&std::fs::read(&src).unwrap(), &mut evs);
    r.finish(&mut evs);
    let tags: Vec<(TagKind, u32, bytes::Bytes)> = evs
        .into_iter()
        .filter_map(|e| match e {
            FlvEvent::Tag(t) => Some((t.kind, t.timestamp, t.body)),
            _ => None,
        })
        .collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut s = ServerSession::new(ServerConfig::default(), Instant::now(), 1);
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sent = false;
        while Instant::now() < deadline {
            let out = s.take_output();
            if !out.is_empty() && sock.write_all(&out).is_err() {
                break;
            }
            if sent {
                break;
            }
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => s.push(&buf[..n], Instant::now()).unwrap(),
                Err(_) => continue,
            }
            while let Some(e) = s.poll_event() {
                match e {
                    ServerEvent::Connect { app, .. } => {
                        assert_eq!(app, "live");
                        s.accept_connect().unwrap()
                    }
                    ServerEvent::Play {
                        stream_id,
                        stream_name,
                        ..
                    } => {
                        assert_eq!(stream_name, "cam");
                        s.accept_play(stream_id).unwrap();
                        for (kind, ts, body) in &tags {
                            match kind {
                                TagKind::Script => s.send_metadata(stream_id, *ts, body).unwrap(),
                                TagKind::Audio => s
                                    .send_media(stream_id, MediaKind::Audio, *ts, body)
                                    .unwrap(),
                                TagKind::Video => s
                                    .send_media(stream_id, MediaKind::Video, *ts, body)
                                    .unwrap(),
                                _ => {}
                            }
                        }
                        s.end_play(stream_id).unwrap();
                        sent = true;
                    }
                    _ => {}
                }
            }
        }
        // Let ffmpeg read everything, then close.
        std::thread::sleep(Duration::from_millis(500));
    });
    let out = out_path("played.flv");
    let o = out.to_string_lossy().to_string();
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    ffmpeg(&["-i", &url, "-c", "copy", "-f", "flv", &o]);
    server.join().unwrap();
    assert_same_as_source(&out, "played by ffmpeg");
}

/// `ffmpeg -i SRC -c copy [OPTS] -f flv URL` with options that may not be UTF-8: (success,
/// stderr).
fn publish_os(src: &Path, url: &str, opts: &[&std::ffi::OsStr]) -> (bool, String) {
    require("ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(src)
        .args(["-c", "copy"])
        .args(opts)
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg");
    let mut c = out;
    let st = wait_deadline(&mut c, Duration::from_secs(30), "ffmpeg");
    let mut err = String::new();
    let _ = c.stderr.take().unwrap().read_to_string(&mut err);
    (st.success(), err)
}

/// --exec puts the key in RIVER_KEY, which commands use in paths: a key or application that
/// breaks the name rule (src/proto/names.rs) is refused at publish with a status ffmpeg prints,
/// the command never runs, and the key is not shown; --key, --keys and --app are checked at
/// start.
#[test]
fn exec_refuses_bad_keys_and_never_runs_the_command() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = out_path("badkeys");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ran = dir.join("ran.log");
    let cmd = format!(
        "printf '%s\\n' \"$RIVER_APP/$RIVER_KEY\" >> '{}'; cat > /dev/null",
        ran.display()
    );
    let mut srv = Server::start(&["--exec", &cmd], &dir.join("stdout"));
    let src = CLIP.flv();
    let long = "k".repeat(4096);
    let cases: Vec<(String, Vec<&OsStr>, &str)> = vec![
        (
            srv.url("live/.."),
            vec![],
            "key is not allowed: it starts with '.'",
        ),
        (
            srv.url("live/a%2Fb"),
            vec![],
            "key is not allowed: '/' at byte 1",
        ),
        (
            srv.url("live/-rf"),
            vec![],
            "key is not allowed: it starts with '-'",
        ),
        (
            srv.url("live/%24(reboot)"),
            vec![],
            "key is not allowed: '$' at byte 0",
        ),
        (
            srv.url("live/a%0Ab"),
            vec![],
            "key is not allowed: '\\n' at byte 1",
        ),
        (
            srv.url("a%2Fb/key"),
            vec![],
            "app name \"a/b\" is not allowed: '/' at byte 1",
        ),
        (
            srv.url("x/y"),
            vec![
                "-rtmp_app".as_ref(),
                "live".as_ref(),
                "-rtmp_playpath".as_ref(),
                OsStr::from_bytes(b"a\x01b"),
            ],
            "key is not allowed: '\\u{1}' at byte 1",
        ),
        (
            srv.url("x/y"),
            vec![
                "-rtmp_app".as_ref(),
                "live".as_ref(),
                "-rtmp_playpath".as_ref(),
                long.as_ref(),
            ],
            "key is not allowed: it is 4096 bytes long",
        ),
        (
            srv.url("x/y"),
            vec![
                "-rtmp_app".as_ref(),
                "live".as_ref(),
                "-rtmp_playpath".as_ref(),
                OsStr::from_bytes(b"a\xffb"),
            ],
            "publish: amf0 value at script byte",
        ),
    ];
    for (url, opts, want) in &cases {
        let (ok, err) = publish_os(&src, url, opts);
        assert!(
            !ok && err.contains(&format!("Server error: {want}")),
            "{url} {opts:?}: {err}"
        );
        let line = srv.wait_log(want);
        assert!(line.contains("127.0.0.1:"), "{line}");
        assert!(
            !line.contains("reboot") && !line.contains("kkkkk"),
            "the key is not shown: {line}"
        );
    }
    // Nothing ran; a good key runs the command with the names as given.
    let (ok, err) = publish(&src, &srv.url("l%69ve/good-key_1"), false);
    assert!(ok, "{err}");
    wait_for("the command for the good key", || ran.exists());
    srv.signal(libc::SIGTERM);
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap(),
        "live/good-key_1\n",
        "{log}"
    );
    // The command line is checked at start; the key is not shown.
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "ok\n../x\n").unwrap();
    let k = keys.to_string_lossy().to_string();
    for (args, want) in [
        (
            vec!["--key", "../secret"],
            "--key (or RIVER_RTMP_KEY) is not allowed: '/' at byte 2",
        ),
        (vec!["--keys", &k], "the key on line 2 of"),
        (
            vec!["--app", "a/b", "--key", "k"],
            "--app: app name \"a/b\" is not allowed",
        ),
        (
            vec!["--key", ""],
            "--key (or RIVER_RTMP_KEY) is not allowed: it is empty",
        ),
    ] {
        let mut full = vec!["--listen", "127.0.0.1:0"];
        full.extend_from_slice(&args);
        full.extend_from_slice(&["--exec", "true"]);
        let out = run(&river("river-rtmp-in"), &full, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains("secret") && !out.stderr.contains("../x"),
            "{}",
            out.stderr
        );
    }
}

/// `--stats` and `--metrics`: publishes, refusals, connections, frames and bytes, checked by
/// promtool while a publish is live and after it ended.
#[test]
fn metrics_count_publishes_refusals_and_frames() {
    use crate::progress::{metric, metrics_addr, scrape_until};
    let out = out_path("metrics.flv");
    let mut srv = Server::start(
        &[
            "--key",
            "key",
            "--persist",
            "--metrics",
            "127.0.0.1:0",
            "--stats",
            "--stats-period",
            "500ms",
        ],
        &out,
    );
    let addr = metrics_addr(&srv.wait_log("metrics on http://")).unwrap();
    let (ok, _) = publish(&CLIP.flv(), &srv.url("live/wrong"), false);
    assert!(!ok, "a wrong key is refused");
    let held = HeldPublish::start(&CLIP.flv(), &srv.url("live/key"));
    let v = |b: &str, n: &str| {
        metric(b, &format!("river_rtmp_in_{n}")).unwrap_or_else(|| panic!("no {n}:\n{b}"))
    };
    let live = scrape_until(&addr, "a live publish", |b| {
        metric(b, "river_rtmp_in_publishing") == Some(1.0)
            && metric(b, "river_rtmp_in_video_frames_total").unwrap_or(0.0) >= 10.0
    });
    assert_eq!(v(&live, "connections"), 1.0, "{live}");
    assert_eq!(v(&live, "publishes_total"), 1.0, "{live}");
    assert_eq!(v(&live, "refused_total"), 1.0, "{live}");
    assert_eq!(v(&live, "connections_total"), 2.0, "{live}");
    assert!(v(&live, "bytes_in_total") > 0.0, "{live}");
    assert!(v(&live, "bytes_out_total") > 0.0, "{live}");
    assert!(v(&live, "media_seconds") > 0.0, "{live}");
    let mut ff = held.release();
    assert!(wait_deadline(&mut ff, Duration::from_secs(30), "ffmpeg").success());
    // The whole clip: 2 s at 30 fps.
    let done = scrape_until(&addr, "the publish's end", |b| {
        metric(b, "river_rtmp_in_publishing") == Some(0.0)
            && metric(b, "river_rtmp_in_connections") == Some(0.0)
    });
    assert_eq!(v(&done, "video_frames_total"), 60.0, "{done}");
    assert!(v(&done, "audio_frames_total") > 80.0, "{done}");
    assert_eq!(
        v(&done, "bytes_out_total"),
        std::fs::metadata(&out).unwrap().len() as f64
    );
    srv.signal(libc::SIGTERM);
    let (code, log) = srv.wait();
    assert_eq!(code, Some(0), "{log}");
    let last = log
        .lines()
        .rfind(|l| l.starts_with("river-rtmp-in: stats: "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        last.contains("frames=60 ")
            && last.contains(" publishes=1 ")
            && last.contains(" refused=1 "),
        "{last}"
    );
}
