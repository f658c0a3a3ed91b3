//! Load generator for bench/relay.sh: one broadcaster and N watchers against river-relay (fstream)
//! or against a plain TCP fan-out copier (the anchor, also here: `copier` mode).
//!
//! The broadcaster sends fixed-size blocks, each starting with its send time (CLOCK_MONOTONIC ns,
//! u64 LE); the watchers (non-blocking sockets on THREADS mio loops, many per thread) read every
//! byte and take the latency of each block's first 8 bytes. All watchers join before the
//! broadcast starts, so block boundaries are known from byte 0.
//!
//!   relay_load copier WATCHER_ADDR BROADCAST_ADDR N     (prints the bound addresses; runs until the broadcaster ends)
//!   relay_load blast WATCHER_ADDR N                     (prints the bound address; a trivial server)
//!   relay_load run relay|copy|blast ADDR BCAST_ADDR N RATE_BPS SECS SERVER_PID [THREADS]
//!       RATE_BPS 0 = unthrottled; THREADS: epoll loops the watchers are spread over (1). Prints
//!       one line of key=value figures: delivered and sent MB/s, latency p50/p99 (ms), the
//!       server's CPU % and RSS, latency samples, watchers closed, and this process's own CPU %.
//!   relay_load idle ADDR N HUB_PID                      (RSS per idle watcher of a live channel)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};

const BLOCK: usize = 4096;

/// CLOCK_MONOTONIC in ns: one clock for every process on the machine (the `blast` server
/// stamps the blocks in another process).
fn now_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn handshake(payload: &str) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload.as_bytes());
    v
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 0; utime and stime are fields 11 and 12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn proc_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn copier(waddr: &str, baddr: &str, n: usize) {
    let wl = TcpListener::bind(waddr).unwrap();
    let bl = TcpListener::bind(baddr).unwrap();
    // Port 0 = any: print what was bound, for the bench script.
    println!("{} {}", wl.local_addr().unwrap(), bl.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let mut ws: Vec<TcpStream> = (0..n)
        .map(|_| {
            let (s, _) = wl.accept().unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let (mut b, _) = bl.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = match b.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => k,
        };
        // The plainest fan-out: the same buffer to every watcher, blocking.
        ws.retain_mut(|w| w.write_all(&buf[..k]).is_ok());
    }
}

/// The trivial server that checks the watchers' side alone: accepts N watchers, then writes
/// each timestamped blocks as fast as it takes them (non-blocking sockets on one epoll loop, 256
/// KiB stamped at a time per watcher), until they are gone. Nothing between a broadcaster and the
/// watchers: what the watchers measure against it is their own ceiling.
fn blast(waddr: &str, n: usize) {
    let wl = TcpListener::bind(waddr).unwrap();
    println!("{}", wl.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let mut poll = Poll::new().unwrap();
    // (socket, its 64 blocks, written of them, open)
    let mut ws: Vec<(MioStream, Vec<u8>, usize, bool)> = Vec::with_capacity(n);
    for i in 0..n {
        let (s, _) = wl.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut s = MioStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::WRITABLE)
            .unwrap();
        ws.push((s, vec![0xA5u8; 64 * BLOCK], 64 * BLOCK, true));
    }
    let mut events = Events::with_capacity(1024);
    let mut open = n;
    while open > 0 {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let (s, buf, off, live) = &mut ws[ev.token().0];
            while *live {
                if *off == buf.len() {
                    let t = now_ns().to_le_bytes();
                    for b in buf.chunks_mut(BLOCK) {
                        b[..8].copy_from_slice(&t);
                    }
                    *off = 0;
                }
                match s.write(&buf[*off..]) {
                    Ok(k) => *off += k,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        *live = false;
                        open -= 1;
                    }
                }
            }
        }
    }
}

struct W {
    s: MioStream,
    pos: u64,
    hdr: [u8; 8],
    open: bool,
}

/// What one watcher thread saw: latency samples in the window (µs), watchers closed.
struct Seen {
    lat: Vec<u32>,
    closed: usize,
}

/// One thread's watchers on one epoll loop until `stop`: every byte read, the latency of every
/// 4th block (from the send time in its first 8 bytes) sampled.
fn watch(socks: Vec<TcpStream>, stop: Arc<AtomicBool>) -> Seen {
    let mut poll = Poll::new().unwrap();
    let mut ws: Vec<W> = Vec::with_capacity(socks.len());
    for (i, s) in socks.into_iter().enumerate() {
        let mut s = MioStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap();
        ws.push(W {
            s,
            pos: 0,
            hdr: [0; 8],
            open: true,
        });
    }
    let mut seen = Seen {
        lat: Vec::new(),
        closed: 0,
    };
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut block_no: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        let count = COUNTING.load(Ordering::Relaxed);
        for ev in events.iter() {
            let w = &mut ws[ev.token().0];
            while w.open {
                match w.s.read(&mut buf) {
                    Ok(0) => w.open = false,
                    Ok(k) => {
                        let t = now_ns();
                        let data = &buf[..k];
                        let mut i = 0usize;
                        while i < k {
                            let off = (w.pos % BLOCK as u64) as usize;
                            if off < 8 {
                                let m = (8 - off).min(k - i);
                                w.hdr[off..off + m].copy_from_slice(&data[i..i + m]);
                                i += m;
                                w.pos += m as u64;
                                if off + m == 8 {
                                    block_no += 1;
                                    // Every 4th sample is enough for the percentiles.
                                    if count && block_no % 4 == 0 {
                                        let ts = u64::from_le_bytes(w.hdr);
                                        seen.lat.push(
                                            (t.saturating_sub(ts) / 1000).min(u32::MAX as u64)
                                                as u32,
                                        );
                                    }
                                }
                            } else {
                                // The rest of the block: skipped whole.
                                let m = (BLOCK - off).min(k - i);
                                i += m;
                                w.pos += m as u64;
                            }
                        }
                        if count {
                            WINDOW.fetch_add(k as u64, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => w.open = false,
                }
            }
        }
    }
    seen.closed = ws.iter().filter(|w| !w.open).count();
    seen
}

/// CPU seconds of this process so far (every thread, ended ones too).
fn own_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

#[allow(clippy::too_many_arguments)]
fn run(
    mode: &str,
    addr: &str,
    baddr: &str,
    n: usize,
    rate: u64,
    secs: f64,
    pid: u32,
    threads: usize,
) {
    let threads = threads.clamp(1, n.max(1));
    let mut groups: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        if mode == "relay" {
            s.write_all(&handshake("watch,user=bench,channel=b"))
                .unwrap();
        }
        s.set_nonblocking(true).unwrap();
        groups[i % threads].push(s);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = groups
        .into_iter()
        .map(|g| {
            let stop = stop.clone();
            std::thread::spawn(move || watch(g, stop))
        })
        .collect();
    // Let the hub register every watcher before the broadcast starts.
    std::thread::sleep(Duration::from_millis(500 + n as u64));
    let bstop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (stop2, sent2, baddr2, mode2) = (
        bstop.clone(),
        sent.clone(),
        baddr.to_string(),
        mode.to_string(),
    );
    // `blast`: the server makes the blocks itself (no broadcaster).
    let bcast = (mode != "blast").then(|| {
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&baddr2).unwrap();
            s.set_nodelay(true).unwrap();
            if mode2 == "relay" {
                s.write_all(&handshake(
                    "broadcast,user=bench,user-password=bench,channel=b",
                ))
                .unwrap();
            }
            let mut block = vec![0xA5u8; BLOCK];
            let start = Instant::now();
            let mut i: u64 = 0;
            while !stop2.load(Ordering::Relaxed) {
                if rate > 0 {
                    let due = start
                        + Duration::from_secs_f64(i as f64 * BLOCK as f64 * 8.0 / rate as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
                block[..8].copy_from_slice(&now_ns().to_le_bytes());
                if s.write_all(&block).is_err() {
                    break;
                }
                i += 1;
                sent2.fetch_add(BLOCK as u64, Ordering::Relaxed);
            }
        })
    });
    // The window starts once the first blocks are through (the same for every server).
    std::thread::sleep(Duration::from_millis(200));
    let cpu0 = proc_cpu_ticks(pid);
    let own0 = own_cpu_s();
    let sent0 = sent.load(Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut rss_max = 0;
    while t0.elapsed().as_secs_f64() < secs {
        rss_max = rss_max.max(proc_kib(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(200).min(Duration::from_secs_f64(secs)));
    }
    COUNTING.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = proc_cpu_ticks(pid);
    let own = own_cpu_s() - own0;
    let sent_bytes = sent.load(Ordering::Relaxed) - sent0;
    let rss_end = proc_kib(pid, "VmRSS:");
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = Vec::new();
    let mut closed = 0usize;
    for h in watchers {
        let s = h.join().unwrap();
        lat.extend(s.lat);
        closed += s.closed;
    }
    bstop.store(true, Ordering::Relaxed);
    if let Some(b) = bcast {
        let _ = b.join();
    }
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
    };
    println!(
        "delivered_MBps={:.1} sent_MBps={:.1} p50_ms={:.3} p99_ms={:.3} hub_cpu_pct={:.0} hub_rss_max_kib={} hub_rss_end_kib={} samples={} closed={} gen_cpu_pct={:.0}",
        WINDOW.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        sent_bytes as f64 / elapsed / 1e6,
        pct(0.5),
        pct(0.99),
        (cpu1 - cpu0) as f64 / elapsed,
        rss_max.max(rss_end),
        rss_end,
        lat.len(),
        closed,
        own / elapsed * 100.0
    );
}

/// Bytes the watchers read in the measured window, and whether it is open.
static WINDOW: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn idle(addr: &str, n: usize, pid: u32) {
    // A live channel at a trickle, so idle watchers are attached with empty queues.
    let mut b = TcpStream::connect(addr).unwrap();
    b.write_all(&handshake(
        "broadcast,user=bench,user-password=bench,channel=idle",
    ))
    .unwrap();
    b.write_all(&[0u8; 1000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = proc_kib(pid, "VmRSS:");
    let mut ws = Vec::new();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&handshake("watch,user=bench,channel=idle"))
            .unwrap();
        ws.push(s);
    }
    std::thread::sleep(Duration::from_millis(500 + n as u64));
    for _ in 0..10 {
        b.write_all(&[1u8; 100]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = proc_kib(pid, "VmRSS:");
    println!(
        "idle_watchers={n} rss_before_kib={before} rss_after_kib={after} per_watcher_kib={:.1}",
        (after.saturating_sub(before)) as f64 / n as f64
    );
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("copier") => copier(&a[2], &a[3], a[4].parse().unwrap()),
        Some("blast") => blast(&a[2], a[3].parse().unwrap()),
        Some("run") => {
            // run MODE ADDR BADDR N RATE SECS PID [THREADS]
            let n: usize = a[5].parse().unwrap();
            run(
                &a[2],
                &a[3],
                &a[4],
                n,
                a[6].parse().unwrap(),
                a[7].parse().unwrap(),
                a[8].parse().unwrap(),
                a.get(9).map_or(1, |t| t.parse().unwrap()),
            )
        }
        Some("idle") => idle(&a[2], a[3].parse().unwrap(), a[4].parse().unwrap()),
        _ => {
            eprintln!("usage: see the source");
            std::process::exit(2)
        }
    }
}
