//! A light RTMP player load for bench/relay_rtmp.sh: N players play rtmp://ADDR/APP/STREAM for
//! SECS seconds after all have connected, count the bytes they receive (not parsed beyond the
//! handshake) and print one line: `players=N connected=C fed=F bytes=B mbps=M load_cpu_s=S`
//! (S: this process's own CPU seconds in the measured window).
//!
//! The players are non-blocking sockets on THREADS epoll loops (mio; default 1), so the load
//! costs little CPU and few wake-ups: a thread reading many players is woken once for what
//! arrived on any of them, not once per write per player (a thread per player made each of the
//! server's writes wake a thread, a cost it paid on loopback).
//!
//!     cargo run --release --example rtmp_play_load -- 127.0.0.1:1935 fier cam 100 10 [THREADS]
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amf::amf0::Value;
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use river::proto::rtmp::handshake::{client_c0c1, client_c2, HANDSHAKE_SIZE};
use river::proto::rtmp::message::object;
use river::proto::rtmp::{ChunkWriter, Command};

fn player(addr: &str, app: &str, stream: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&client_c0c1(0))?;
    let mut s0s1 = vec![0u8; 1 + HANDSHAKE_SIZE];
    s.read_exact(&mut s0s1)?;
    let mut s2 = vec![0u8; HANDSHAKE_SIZE];
    s.read_exact(&mut s2)?;
    let mut out = client_c2(&s0s1);
    let mut w = ChunkWriter::new();
    let obj = object(vec![
        ("app", Value::String(app.into())),
        ("flashVer", Value::String("LNX 9,0,124,2".into())),
        ("tcUrl", Value::String(format!("rtmp://{addr}/{app}"))),
    ]);
    w.write(
        3,
        20,
        0,
        0,
        &Command::encode("connect", 1.0, &[obj]),
        &mut out,
    );
    w.write(
        3,
        20,
        0,
        0,
        &Command::encode("createStream", 2.0, &[Value::Null]),
        &mut out,
    );
    w.write(
        8,
        20,
        1,
        0,
        &Command::encode(
            "play",
            0.0,
            &[
                Value::Null,
                Value::String(stream.into()),
                Value::Number(-1000.0),
            ],
        ),
        &mut out,
    );
    s.write_all(&out)?;
    Ok(s)
}

/// One thread's players: read everything, count while `counting`, until `end`.
fn play(
    mut socks: Vec<TcpStream>,
    counting: Arc<AtomicBool>,
    end: Arc<Mutex<Option<Instant>>>,
    bytes: Arc<AtomicU64>,
    fed: Arc<AtomicUsize>,
) {
    let mut poll = Poll::new().unwrap();
    let mut ps: Vec<(MioStream, u64, bool)> = Vec::with_capacity(socks.len());
    for (i, s) in socks.drain(..).enumerate() {
        s.set_nonblocking(true).unwrap();
        let mut s = MioStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap();
        ps.push((s, 0, true));
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut mine = 0u64;
    loop {
        if let Some(e) = *end.lock().unwrap() {
            if Instant::now() >= e {
                break;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        let count = counting.load(Ordering::Relaxed);
        for ev in events.iter() {
            let (s, got, open) = &mut ps[ev.token().0];
            while *open {
                match s.read(&mut buf) {
                    Ok(0) => *open = false,
                    Ok(k) => {
                        if count {
                            *got += k as u64;
                            mine += k as u64;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => *open = false,
                }
            }
        }
    }
    bytes.fetch_add(mine, Ordering::SeqCst);
    fed.fetch_add(ps.iter().filter(|p| p.1 > 0).count(), Ordering::SeqCst);
}

/// CPU time of this process so far (user and system, every thread, ended ones too).
fn own_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 && a.len() != 7 {
        eprintln!("usage: rtmp_play_load ADDR APP STREAM N SECS [THREADS]");
        std::process::exit(2);
    }
    let (addr, app, stream) = (a[1].clone(), a[2].clone(), a[3].clone());
    let n: usize = a[4].parse().unwrap();
    let secs: u64 = a[5].parse().unwrap();
    let threads: usize = a
        .get(6)
        .map_or(1, |t| t.parse().unwrap())
        .clamp(1, n.max(1));
    let bytes = Arc::new(AtomicU64::new(0));
    let fed = Arc::new(AtomicUsize::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let end = Arc::new(Mutex::new(None::<Instant>));
    // Connected one after the other (handshake and play sent); the players of a thread start
    // reading together, each thread as soon as its players are connected.
    let mut connected = 0;
    let mut hs = Vec::new();
    let per = n.div_ceil(threads);
    let mut group = Vec::new();
    for i in 0..n {
        if let Ok(s) = player(&addr, &app, &stream) {
            connected += 1;
            group.push(s);
        }
        if group.len() == per || i + 1 == n {
            let (c, e, b, f) = (counting.clone(), end.clone(), bytes.clone(), fed.clone());
            let g = std::mem::take(&mut group);
            hs.push(std::thread::spawn(move || play(g, c, e, b, f)));
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    counting.store(true, Ordering::SeqCst);
    let cpu0 = own_cpu_s();
    let t0 = Instant::now();
    *end.lock().unwrap() = Some(t0 + Duration::from_secs(secs));
    // Marker for the bench script: the measured window starts now.
    eprintln!("measuring");
    for h in hs {
        let _ = h.join();
    }
    let el = t0.elapsed().as_secs_f64().min(secs as f64);
    let cpu = own_cpu_s() - cpu0;
    let b = bytes.load(Ordering::SeqCst);
    println!(
        "players={n} connected={connected} fed={} bytes={b} mbps={:.1} load_cpu_s={cpu:.3}",
        fed.load(Ordering::SeqCst),
        b as f64 * 8.0 / el / 1e6
    );
}
