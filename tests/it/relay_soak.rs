//! river-relay under faults, the short CI versions of bench/faults.sh: SIGTERM with 200 watchers
//! attached, a watcher frozen with SIGSTOP past --max-behind, and the hub at its descriptor limit.
//! Raw TCP clients on 127.0.0.1 and the hub's own `watch` client; every wait has a deadline.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::hub::*;
use crate::common::*;

fn handshake(payload: &str) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload.as_bytes());
    v
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

/// A raw fstream broadcaster of `channel` as fier.
fn broadcaster(hub: &Hub, channel: &str) -> TcpStream {
    let mut s = TcpStream::connect(&hub.fstream).unwrap();
    s.write_all(&handshake(&format!(
        "broadcast,user=fier,user-password=123,channel={channel}"
    )))
    .unwrap();
    s
}

fn fstream_watcher(hub: &Hub, channel: &str) -> TcpStream {
    let mut s = TcpStream::connect(&hub.fstream).unwrap();
    s.write_all(&handshake(&format!("watch,user=fier,channel={channel}")))
        .unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// How a watcher's stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Reset,
    Other(String),
}

/// Reads to the end: (bytes, how it ended).
fn read_all(s: &mut TcpStream) -> (Vec<u8>, End) {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (v, End::Eof),
            Ok(n) => v.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (v, End::Reset),
            Err(e) => return (v, End::Other(e.to_string())),
        }
    }
}

/// SIGTERM with 200 watchers attached: 150 fstream watchers of an opaque broadcast (paced: the
/// hub reads the broadcaster only while every queue has room, so each must get every byte) and
/// 50 HTTP watchers (flv and ts) of an FLV broadcast. Each gets its queue, then EOF (HTTP: after
/// the chunked body's last chunk), not a reset, and the hub exits with 0; the time it took is
/// printed (the stop gives watchers at most 2 s). This extends the one-watcher check that was
/// relay.rs's serve_stops_on_sigterm_and_watchers_get_eof.
#[test]
fn sigterm_with_200_watchers_each_gets_its_queue_then_eof() {
    require("ffmpeg");
    let mut hub = Hub::start(USERS);
    let mut live = broadcaster(&hub, "sig");
    let mut media = broadcaster(&hub, "sigm");
    // The media broadcast first (its HTTP watchers start on its cached keyframe); the opaque one
    // after its watchers have joined (they get it from their join point: all of it).
    let clip = Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 0,
        audio: true,
        gop_secs: 1,
        secs: 2,
    };
    let media_len = std::fs::metadata(clip.flv()).unwrap().len();
    media
        .write_all(&std::fs::read(clip.flv()).unwrap())
        .unwrap();
    let fs: Vec<TcpStream> = (0..150).map(|_| fstream_watcher(&hub, "sig")).collect();
    let http: Vec<(TcpStream, &str)> = (0..50)
        .map(|i| {
            let ext = if i % 2 == 0 { "flv" } else { "ts" };
            let mut s = TcpStream::connect(&hub.http).unwrap();
            write!(s, "GET /fier/sigm.{ext} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            (s, ext)
        })
        .collect();
    hub.wait_watchers("fier", "sig", 150);
    hub.wait_watchers("fier", "sigm", 50);
    let readers: Vec<_> = fs
        .into_iter()
        .map(|mut s| std::thread::spawn(move || read_all(&mut s)))
        .collect();
    let http_readers: Vec<_> = http
        .into_iter()
        .map(|(mut s, ext)| std::thread::spawn(move || (ext, read_all(&mut s))))
        .collect();
    let data = pattern(2 << 20, 11);
    live.write_all(&data).unwrap();
    // Both broadcasts are in the watchers' queues (or sent) before the signal: the hub has read
    // all of both, so "its queue" is everything.
    wait_until("the hub to read both broadcasts", WAIT, || {
        let s = hub.stats();
        let bytes_in = |c: &str| {
            s["channels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["channel"] == c)
                .map_or(0, |x| x["bytes_in"].as_u64().unwrap())
        };
        bytes_in("sig") == data.len() as u64 && bytes_in("sigm") == media_len
    });
    let t = Instant::now();
    hub.signal(libc::SIGTERM);
    let st = hub.wait_exit(WAIT);
    let took = t.elapsed();
    eprintln!("river-relay serve exited {took:?} after SIGTERM with 200 watchers");
    assert_eq!(st.code(), Some(0), "{}", hub.log.text());
    for (i, r) in readers.into_iter().enumerate() {
        let (got, end) = r.join().unwrap();
        assert_eq!(end, End::Eof, "fstream watcher {i}");
        assert!(
            got == data,
            "fstream watcher {i}: {} of {} bytes",
            got.len(),
            data.len()
        );
    }
    for (i, r) in http_readers.into_iter().enumerate() {
        let (ext, (got, end)) = r.join().unwrap();
        assert_eq!(end, End::Eof, "http-{ext} watcher {i}");
        assert!(
            got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"\r\n0\r\n\r\n"),
            "http-{ext} watcher {i}: {} bytes, ending {:?}",
            got.len(),
            String::from_utf8_lossy(&got[got.len().saturating_sub(16)..])
        );
    }
    // The listener is gone.
    assert!(TcpStream::connect(&hub.fstream).is_err());
}

/// A watcher frozen with SIGSTOP while a paced (opaque) broadcast goes on: once its socket
/// buffers and its queue (--queue-bytes 256KiB) are full it holds the broadcaster back, and after
/// --max-behind 2s it is dropped. The two watchers that read get every byte; after SIGCONT the
/// frozen one receives what its socket held, a prefix of the broadcast, then EOF.
#[test]
fn a_watcher_frozen_past_max_behind_is_dropped_and_the_others_get_every_byte() {
    let hub = Hub::start_with(USERS, &["--queue-bytes", "256KiB", "--max-behind", "2s"]);
    let mut live = broadcaster(&hub, "stop");
    let out = scratch("sigstop").join("frozen.bin");
    let mut frozen = Command::new(river("river-relay"))
        .args(["watch", &hub.fstream, "--user", "fier", "--channel", "stop"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut s = fstream_watcher(&hub, "stop");
            std::thread::spawn(move || read_all(&mut s))
        })
        .collect();
    hub.wait_watchers("fier", "stop", 3);
    let pid = frozen.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    // More than loopback's socket buffers hold (a few MiB each way), so the frozen watcher's
    // queue fills and it holds the broadcaster back.
    let data = Arc::new(pattern(48 << 20, 5));
    let d = data.clone();
    let writer = std::thread::spawn(move || live.write_all(&d).map(|_| live));
    hub.log
        .wait_for("closed: slow watcher of fier/stop", "the hub");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let live = writer
        .join()
        .unwrap()
        .expect("the broadcaster writes everything");
    drop(live);
    for r in readers {
        let (got, end) = r.join().unwrap();
        assert_eq!(end, End::Eof);
        assert!(got[..] == data[..], "{} of {} bytes", got.len(), data.len());
    }
    let st = wait_deadline(&mut frozen, WAIT, "the frozen watcher");
    assert!(st.success(), "{st}");
    let got = std::fs::read(&out).unwrap();
    assert!(
        !got.is_empty() && got.len() < data.len() && data.starts_with(&got),
        "the frozen watcher got {} bytes, not a prefix of the {} sent",
        got.len(),
        data.len()
    );
    assert_eq!(
        hub.log.count("closed: slow watcher"),
        1,
        "{}",
        hub.log.text()
    );
}

/// The hub at its descriptor limit (ulimit -n 64) with 100 watchers: the ones it holds are
/// served; the rest are closed at once (none is left hanging in the backlog); the hub does not
/// spin on EMFILE (its CPU stays low while connections keep arriving) and logs it a few times,
/// not per attempt; once the clients leave it serves again.
#[test]
fn at_its_descriptor_limit_the_hub_serves_what_it_holds_sheds_the_rest_and_recovers() {
    let hub = Hub::start_limited(USERS, &[], 64);
    let mut live = broadcaster(&hub, "full");
    wait_until("the broadcast to go live", WAIT, || {
        hub.stats()["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["channel"] == "full")
    });
    // A slow opaque broadcast from a thread: 4 KiB every 20 ms.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let feeder = std::thread::spawn(move || {
        let block = pattern(4096, 3);
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            if live.write_all(&block).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut socks: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(&hub.fstream).unwrap();
            // A shed connection may be closed before the handshake arrives: then this fails.
            let _ = s.write_all(&handshake("watch,user=fier,channel=full"));
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    hub.log.wait_for("Too many open files", "the hub");
    // Read every socket for 3 s; then knock once every 20 ms for 2 s and measure the hub's CPU.
    let (mut served, mut shed) = (vec![false; socks.len()], vec![false; socks.len()]);
    let read_round = |socks: &mut [TcpStream], served: &mut [bool], shed: &mut [bool]| {
        let mut buf = [0u8; 65536];
        for (i, s) in socks.iter_mut().enumerate() {
            if shed[i] {
                continue;
            }
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        shed[i] = true;
                        break;
                    }
                    Ok(_) => served[i] = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        shed[i] = true;
                        break;
                    }
                }
            }
        }
    };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(3) {
        read_round(&mut socks, &mut served, &mut shed);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (c0, t0) = (hub.cpu_ticks(), Instant::now());
    let mut knocks = 0;
    let mut hung = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        let mut k = TcpStream::connect(&hub.fstream).unwrap();
        k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match k.read(&mut [0u8; 1]) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => {
                hung += 1;
                eprintln!("a connection while full: {other:?}");
            }
        }
        knocks += 1;
        read_round(&mut socks, &mut served, &mut shed);
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu = (hub.cpu_ticks() - c0) as f64 / clock_ticks() / t0.elapsed().as_secs_f64();
    let (n_served, n_shed) = (
        (0..socks.len()).filter(|&i| served[i] && !shed[i]).count(),
        (0..socks.len()).filter(|&i| shed[i] && !served[i]).count(),
    );
    eprintln!(
        "at 64 descriptors: {n_served} served, {n_shed} closed at once, {knocks} knocks while \
         full ({hung} not closed); hub CPU {:.1}% of a core",
        cpu * 100.0
    );
    assert!(n_served >= 30, "{n_served} served:\n{}", hub.log.text());
    assert!(n_shed >= 30, "{n_shed} closed at once");
    assert_eq!(
        n_served + n_shed,
        socks.len(),
        "some were neither served nor closed"
    );
    assert_eq!(hung, 0, "connections made while full were left hanging");
    // A hub spinning on EMFILE takes a whole core; serving 40-odd watchers of 200 KiB/s and
    // closing 50 connections a second takes a few percent.
    assert!(cpu < 0.25, "hub CPU {:.0}% while full", cpu * 100.0);
    let lines = hub.log.count("Too many open files");
    assert!(
        lines <= 10,
        "{lines} log lines about EMFILE for {knocks} knocks"
    );
    assert!(hub.log.count("panicked") == 0, "{}", hub.log.text());
    drop(socks);
    // Serves again once the hub has seen them go: a new watcher gets the stream, and /stats
    // answers.
    let start = Instant::now();
    let _w = loop {
        let mut w = fstream_watcher(&hub, "full");
        w.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if w.read_exact(&mut [0u8; 4096]).is_ok() {
            break w;
        }
        assert!(
            start.elapsed() < WAIT,
            "no watcher served after the clients left"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_until(
        "the hub to count its watchers down to the new one",
        WAIT,
        || hub.watchers("fier", "full") == 1,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}
