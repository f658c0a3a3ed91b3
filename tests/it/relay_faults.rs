//! river-relay under faults, with real peers on 127.0.0.1 (issue 15, items 1-4): a hub killed and
//! restarted under a `--retry` broadcaster and watcher, the connection cap, a watcher that talks
//! too much, slow handshakes on every front. Items 5-7 (media through faults) are in
//! `relay_faults_media`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::hub::*;
use crate::common::*;

pub(crate) fn stderr_of(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

pub(crate) fn ffmpeg_bg(args: &[&str]) -> Child {
    require("ffmpeg");
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg")
}

/// `sh -c CMD` with stderr piped.
pub(crate) fn sh(cmd: &str) -> Child {
    Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

pub(crate) fn relay() -> String {
    river("river-relay").display().to_string()
}

fn handshake(payload: &str) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload.as_bytes());
    v
}

pub(crate) fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// 320x240 at 25 fps, a keyframe every second, AAC, `secs` long.
pub(crate) fn clip(secs: u32) -> Clip {
    Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 0,
        audio: true,
        gop_secs: 1,
        secs,
    }
}

pub(crate) fn video(pk: &[Packet]) -> Vec<&Packet> {
    pk.iter().filter(|p| p.kind == "video").collect()
}

/// Video packets in decode order are one timeline of 25 fps frames from a keyframe: every step
/// one frame (40 ms), where two streams join (a takeover, a reconnect) at most 65 ms: the audio's
/// last frame (23 ms) may end after the video's.
pub(crate) fn one_timeline(v: &[&Packet], what: &str) {
    assert!(v[0].key, "{what}: starts on a keyframe");
    for w in v.windows(2) {
        let d = w[1].dts - w[0].dts;
        assert!(
            (0.0385..0.065).contains(&d),
            "{what}: dts {:.3} then {:.3}",
            w[0].dts,
            w[1].dts
        );
    }
}

/// Item 1 of issue 15: `ffmpeg -re | river-relay broadcast --retry` while the hub is killed
/// (SIGKILL) and started again on the same ports. The broadcaster reconnects and sends the headers
/// and the current GOP again; a `watch --retry` watcher reconnects too and its file is one FLV
/// stream, one timeline, from the first frame to the last (the GOP the broadcaster sent again
/// comes again, after what the watcher had); a player that joins the restarted hub gets every
/// frame from its first keyframe to the last.
#[test]
fn a_retrying_broadcaster_and_watcher_survive_a_hub_restart() {
    let mut hub = Hub::start(USERS);
    let src = clip(10).flv();
    let last = video(&probe_packets(&src)).last().unwrap().pts;
    let dir = tmpdir();
    let w_out = dir.join("faults-restart-watch.flv");
    let mut w = Command::new(river("river-relay"))
        .args([
            "-v",
            "watch",
            &hub.fstream,
            "--user",
            "fier",
            "--channel",
            "rs",
        ])
        .args(["--retry", "--retry-max-delay", "200ms"])
        .stdout(Stdio::from(std::fs::File::create(&w_out).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w_log = Log::follow(&mut w);
    hub.wait_watchers("fier", "rs", 1);
    let mut b = sh(&format!(
        "ffmpeg -nostdin -v error -re -i '{}' -c copy -f flv - | '{}' -v broadcast {} --user fier --password 123 --channel rs --retry --retry-max-delay 200ms",
        src.display(),
        relay(),
        hub.fstream
    ));
    let b_log = Log::follow(&mut b);
    hub.log.wait_for("channel fier/rs: FLV content", "the hub");
    std::thread::sleep(Duration::from_millis(3000));
    hub.restart();
    hub.log
        .wait_for("broadcasting fier/rs", "the restarted hub");
    let line = b_log.wait_for("reconnecting", "the broadcaster");
    assert!(line.contains("or the hub stopped"), "{line}");
    // A player joining the restarted hub.
    let p_out = dir.join("faults-restart-player.flv");
    let url = format!("http://{}/fier/rs.flv", hub.http);
    let mut p = ffmpeg_bg(&[
        "-i",
        &url,
        "-c",
        "copy",
        "-copyts",
        "-f",
        "flv",
        &path_str(&p_out),
    ]);
    let st = wait_deadline(&mut b, WAIT, "ffmpeg | broadcast --retry");
    assert!(st.success(), "broadcaster: {}", b_log.text());
    let st = wait_deadline(&mut p, WAIT, "http-flv player");
    assert!(st.success(), "player: {}", stderr_of(&mut p));
    // The watcher reconnects after the end too (--retry): stop it then.
    w_log.wait_for("end of broadcast after", "the watcher");
    let _ = w.kill();
    let _ = w.wait();
    assert_eq!(w_log.count("watching fier/rs"), 2, "{}", w_log.text());
    let pk = probe_packets(&p_out);
    let v = video(&pk);
    one_timeline(&v, "player");
    assert!(
        (v.last().unwrap().pts - last).abs() < 0.0015,
        "player: ends at {:?}",
        v.last()
    );
    assert_decodes_cleanly(&p_out);
    // The watcher's file: from the first frame on, one timeline; what came again (or was
    // skipped) at the reconnect is at most a GOP.
    let pk = probe_packets(&w_out);
    let v = video(&pk);
    one_timeline(&v, "watcher");
    let end = v.last().unwrap().pts;
    assert!(v[0].pts < 0.1, "watcher: starts at {:?}", v[0]);
    assert!(
        (last - 1.0..last + 1.07).contains(&end),
        "watcher: ends at {end}, the source at {last}"
    );
    assert_decodes_cleanly(&w_out);
}

/// A raw fstream client: the handshake sent, reads with a deadline.
fn fstream_client(hub: &Hub, payload: &str) -> TcpStream {
    let mut s = TcpStream::connect(&hub.fstream).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&handshake(payload)).unwrap();
    s
}

pub(crate) fn peer_of(s: &TcpStream) -> String {
    s.local_addr().unwrap().to_string()
}

/// Reads exactly `want.len()` bytes and checks them.
fn expect_bytes(s: &mut TcpStream, want: &[u8], what: &str) {
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(got == want, "{what}: the bytes differ");
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Connects without sending anything and reads until the peer closes: (bytes received, how it
/// ended, our address). Panics if it is still open after `WAIT`.
fn connect_and_read(addr: &str) -> (Vec<u8>, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let me = peer_of(&s);
    let mut got = Vec::new();
    let end = match s.read_to_end(&mut got) {
        Ok(_) => "EOF".to_string(),
        Err(e) => {
            assert!(
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut,
                "{addr}: still open after {WAIT:?}"
            );
            e.to_string()
        }
    };
    (got, end, me)
}

/// Item 2 of issue 15: `--max-connections 3`, filled by a broadcaster and two watchers. A client
/// over the cap, on any front, is accepted and closed at once without a byte (EOF), and the hub
/// logs its address; real clients fail with a clear message; the three keep being served; once a
/// watcher leaves, a new one is accepted.
#[test]
fn connections_over_the_cap_are_closed_at_once_and_the_rest_are_served() {
    let hub = Hub::start_with(USERS, &["--max-connections", "3"]);
    let mut b = fstream_client(&hub, "broadcast,user=fier,user-password=123,channel=cap");
    hub.log.wait_for(
        &format!("{}: broadcasting fier/cap", peer_of(&b)),
        "the hub",
    );
    let mut w1 = fstream_client(&hub, "watch,user=fier,channel=cap");
    hub.log
        .wait_for(&format!("{}: watching fier/cap", peer_of(&w1)), "the hub");
    let mut w2 = fstream_client(&hub, "watch,user=fier,channel=cap");
    hub.log
        .wait_for(&format!("{}: watching fier/cap", peer_of(&w2)), "the hub");
    let block = pattern(100_000, 1);
    b.write_all(&block).unwrap();
    expect_bytes(&mut w1, &block, "watcher 1");
    expect_bytes(&mut w2, &block, "watcher 2");
    let mut refused = 0;
    for (front, addr) in [
        ("fstream", &hub.fstream),
        ("http", &hub.http),
        ("rtmp", &hub.rtmp),
        ("rtsp", &hub.rtsp),
    ] {
        let (got, end, me) = connect_and_read(addr);
        let got = String::from_utf8_lossy(&got);
        // HTTP clients are told why; the other protocols have nothing to say before a handshake.
        let want = if front == "http" {
            "HTTP/1.1 503 Service Unavailable\r\n"
        } else {
            ""
        };
        assert!(
            got.starts_with(want) && (front == "http" || got.is_empty()) && end == "EOF",
            "{front}: got {got:?}, then {end}"
        );
        hub.log.wait_for(
            &format!("{me}: refused: 3 connections open (--max-connections)"),
            "the hub",
        );
        refused += 1;
    }
    // Real clients over the cap.
    let mut watch = Command::new(river("river-relay"))
        .args(["watch", &hub.fstream, "--user", "fier", "--channel", "cap"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_deadline(&mut watch, WAIT, "river-relay watch over the cap");
    let err = stderr_of(&mut watch);
    assert!(!st.success(), "{err}");
    assert!(
        err.contains("the hub closed the connection without sending anything"),
        "{err}"
    );
    refused += 1;
    let mut players = Vec::new();
    for url in [
        format!("http://{}/fier/cap.flv", hub.http),
        format!("rtmp://{}/fier/cap", hub.rtmp),
    ] {
        let mut p = ffmpeg_bg(&["-i", &url, "-c", "copy", "-f", "null", "-"]);
        let st = wait_deadline(&mut p, WAIT, &url);
        let err = stderr_of(&mut p);
        assert!(!st.success(), "{url}: {err}");
        players.push(format!("{url}: {}", err.trim()));
        refused += 1;
    }
    // ffmpeg reads the 503 over HTTP; over RTMP it sees the connection end (not a reset).
    assert!(players[0].contains("Server returned 5XX"), "{players:?}");
    assert!(
        players[1].contains("Cannot read RTMP handshake response")
            && players[1].contains("End of file"),
        "{players:?}"
    );
    // The three are still served.
    let block = pattern(100_000, 2);
    b.write_all(&block).unwrap();
    expect_bytes(&mut w1, &block, "watcher 1 after the refusals");
    expect_bytes(&mut w2, &block, "watcher 2 after the refusals");
    // One leaves: a new watcher is accepted in its place.
    let gone = peer_of(&w2);
    drop(w2);
    hub.log
        .wait_for(&format!("{gone}: closed: peer closed"), "the hub");
    let mut w3 = fstream_client(&hub, "watch,user=fier,channel=cap");
    hub.log
        .wait_for(&format!("{}: watching fier/cap", peer_of(&w3)), "the hub");
    let block = pattern(100_000, 3);
    b.write_all(&block).unwrap();
    expect_bytes(&mut w1, &block, "watcher 1 after the change");
    expect_bytes(&mut w3, &block, "the new watcher");
    // And an HTTP request once another leaves.
    let gone = peer_of(&w3);
    drop(w3);
    hub.log
        .wait_for(&format!("{gone}: closed: peer closed"), "the hub");
    let s = hub.stats();
    assert_eq!(s["refused"], refused, "{s}");
    assert_eq!(
        hub.log.count("(--max-connections)"),
        refused as usize,
        "{}",
        hub.log.text()
    );
}

/// Our socket's send queue and the hub's receive queue for one loopback connection, from
/// /proc/net/tcp: (bytes we have not had acknowledged, bytes the hub has not read).
fn tcp_queues(ours: &TcpStream) -> (u64, u64) {
    let hex = |a: std::net::SocketAddr| {
        let std::net::SocketAddr::V4(a) = a else {
            panic!("IPv4 only")
        };
        format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (me, hub) = (
        hex(ours.local_addr().unwrap()),
        hex(ours.peer_addr().unwrap()),
    );
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let queue = |local: &str, remote: &str| {
        table.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&local) && f.get(2) == Some(&remote)).then(|| {
                let (tx, rx) = f[4].split_once(':').unwrap();
                (
                    u64::from_str_radix(tx, 16).unwrap(),
                    u64::from_str_radix(rx, 16).unwrap(),
                )
            })
        })
    };
    let (tx, _) = queue(&me, &hub).expect("our socket in /proc/net/tcp");
    let (_, rx) = queue(&hub, &me).expect("the hub's socket in /proc/net/tcp");
    (tx, rx)
}

/// Waits until the hub has read everything sent on `s`.
fn wait_read_by_hub(s: &TcpStream) {
    wait_until("the hub reads what the watcher sent", WAIT, || {
        tcp_queues(s) == (0, 0)
    });
}

/// Item 3 of issue 15: a watcher may send up to 1 MiB after its handshake (read and discarded);
/// the byte past it closes the watcher, with a log line naming it; the other watcher gets every
/// byte throughout.
#[test]
fn a_watcher_that_sends_more_than_1_mib_is_closed_at_that_byte() {
    let hub = Hub::start(USERS);
    let mut b = fstream_client(&hub, "broadcast,user=fier,user-password=123,channel=talk");
    let mut talker = fstream_client(&hub, "watch,user=fier,channel=talk");
    let mut quiet = fstream_client(&hub, "watch,user=fier,channel=talk");
    hub.wait_watchers("fier", "talk", 2);
    let block = pattern(50_000, 4);
    b.write_all(&block).unwrap();
    expect_bytes(&mut talker, &block, "talker");
    expect_bytes(&mut quiet, &block, "quiet watcher");
    // Exactly 1 MiB, in pieces: read by the hub, and the talker is still served.
    for piece in pattern(1 << 20, 5).chunks(100_000) {
        talker.write_all(piece).unwrap();
    }
    wait_read_by_hub(&talker);
    let block = pattern(50_000, 6);
    b.write_all(&block).unwrap();
    expect_bytes(&mut quiet, &block, "quiet watcher");
    expect_bytes(&mut talker, &block, "talker at exactly 1 MiB");
    assert!(!hub.log.contains("more than 1 MiB"), "{}", hub.log.text());
    // One byte more.
    talker.write_all(b"x").unwrap();
    let line = hub
        .log
        .wait_for("closed: watcher sent more than 1 MiB", "the hub");
    assert!(
        line.contains(&format!("{}: closed", peer_of(&talker))),
        "{line}"
    );
    let mut rest = Vec::new();
    let _ = talker.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes after the close", rest.len());
    let block = pattern(50_000, 7);
    b.write_all(&block).unwrap();
    expect_bytes(&mut quiet, &block, "quiet watcher after the close");
    assert_eq!(hub.watchers("fier", "talk"), 1);
}

/// A client that sends `opening` one byte a second and never completes it: (how long after the
/// connect the hub closed the connection, what it received, its address).
fn slowloris(
    addr: String,
    opening: Vec<u8>,
) -> std::thread::JoinHandle<(Duration, Vec<u8>, String)> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        let start = Instant::now();
        let me = peer_of(&s);
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut sent = 0;
        loop {
            let t = start.elapsed();
            assert!(t < WAIT, "{addr}: never closed (sent {sent} bytes)");
            if sent < opening.len() - 1 && t >= Duration::from_secs(sent as u64) {
                if s.write_all(&opening[sent..sent + 1]).is_err() {
                    return (start.elapsed(), got, me);
                }
                sent += 1;
            }
            match s.read(&mut buf) {
                Ok(0) => return (start.elapsed(), got, me),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return (start.elapsed(), got, me),
            }
        }
    })
}

/// Item 4 of issue 15: slow handshakes (one byte a second) on fstream, HTTP, RTMP and RTSP are
/// closed at their 10 s deadline with a log line naming the client, while the hub serves others.
#[test]
fn slow_handshakes_on_every_front_are_closed_at_the_deadline() {
    use river::proto::rtmp::handshake::{client_c0c1, HANDSHAKE_SIZE};
    let hub = Hub::start(USERS);
    let openings: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "fstream",
            hub.fstream.clone(),
            handshake("watch,user=fier,channel=slow"),
        ),
        (
            "http",
            hub.http.clone(),
            b"GET /fier/slow.flv HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("rtmp", hub.rtmp.clone(), client_c0c1(0)),
        (
            "rtsp",
            hub.rtsp.clone(),
            format!(
                "OPTIONS rtsp://{}/fier/slow RTSP/1.0\r\nCSeq: 1\r\n\r\n",
                hub.rtsp
            )
            .into_bytes(),
        ),
    ];
    let slow: Vec<_> = openings
        .iter()
        .flat_map(|(front, addr, opening)| {
            (0..2).map(move |_| (*front, slowloris(addr.clone(), opening.clone())))
        })
        .collect();
    // Meanwhile, every front serves others.
    std::thread::sleep(Duration::from_secs(3));
    let mut b = fstream_client(&hub, "broadcast,user=fier,user-password=123,channel=fast");
    let mut w = fstream_client(&hub, "watch,user=fier,channel=fast");
    hub.wait_watchers("fier", "fast", 1);
    let block = pattern(100_000, 8);
    b.write_all(&block).unwrap();
    expect_bytes(&mut w, &block, "a watcher beside the slow clients");
    let mut r = TcpStream::connect(&hub.rtmp).unwrap();
    r.set_read_timeout(Some(WAIT)).unwrap();
    r.write_all(&client_c0c1(0)).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
    r.read_exact(&mut s0s1s2).unwrap();
    assert_eq!(s0s1s2[0], 3, "RTMP version");
    let mut t = TcpStream::connect(&hub.rtsp).unwrap();
    t.set_read_timeout(Some(WAIT)).unwrap();
    t.write_all(
        format!(
            "OPTIONS rtsp://{}/fier/fast RTSP/1.0\r\nCSeq: 7\r\n\r\n",
            hub.rtsp
        )
        .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 512];
    let n = t.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with("RTSP/1.0 200 OK") && answer.contains("CSeq: 7"),
        "{answer}"
    );
    let before = Instant::now();
    let (head, _) = hub.get("/stats");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    eprintln!("GET /stats beside the slow clients: {:?}", before.elapsed());
    for (front, h) in slow {
        let (after, got, me) = h.join().unwrap();
        let got = String::from_utf8_lossy(&got).into_owned();
        eprintln!("{front} {me}: closed after {after:?}, got {got:?}");
        assert!(
            after >= Duration::from_millis(9900) && after < Duration::from_secs(12),
            "{front}: closed after {after:?}\n{}",
            hub.log.text()
        );
        let line = match front {
            "fstream" => "refused: fstream handshake not completed within 10 s",
            "http" => "refused: request head not complete within 10 s (408)",
            "rtmp" => "refused: RTMP: rtmp: handshake not done within 10s of the connection",
            _ => "refused: RTSP request not complete within 10 s (408)",
        };
        hub.log.wait_for(&format!("{me}: {line}"), "the hub");
        match front {
            "http" => assert!(got.starts_with("HTTP/1.1 408 "), "{got}"),
            "rtsp" => assert!(got.starts_with("RTSP/1.0 408 "), "{got}"),
            _ => assert!(got.is_empty(), "{front}: {got:?}"),
        }
    }
}
