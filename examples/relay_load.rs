//! Load generator for bench/relay.sh: one broadcaster and N watchers against river-relay (fstream)
//! or against a plain TCP fan-out copier (the anchor, also here: `copier` mode).
//!
//! The broadcaster sends fixed-size blocks, each starting with its send time (ns since a process
//! epoch, u64 LE); the watchers (one mio thread) read every byte and take the latency of each
//! block's first 8 bytes. All watchers join before the broadcast starts, so block boundaries are
//! known from byte 0.
//!
//!   relay_load copier WATCHER_ADDR BROADCAST_ADDR N     (prints nothing; runs until the broadcaster ends)
//!   relay_load run relay|copy ADDR [BCAST_ADDR] N RATE_BPS SECS HUB_PID
//!       RATE_BPS 0 = unthrottled. Prints one line of key=value figures.
//!   relay_load idle ADDR N HUB_PID                      (RSS per idle watcher of a live channel)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};

const BLOCK: usize = 4096;
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
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

struct W {
    s: MioStream,
    pos: u64,
    hdr: [u8; 8],
    bytes: u64,
    open: bool,
}

#[allow(clippy::too_many_arguments)]
fn run(mode: &str, addr: &str, baddr: &str, n: usize, rate: u64, secs: f64, pid: u32) {
    EPOCH.get_or_init(Instant::now);
    let mut poll = Poll::new().unwrap();
    let mut ws: Vec<W> = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        if mode == "relay" {
            s.write_all(&handshake("watch,user=bench,channel=b"))
                .unwrap();
        }
        s.set_nonblocking(true).unwrap();
        let mut s = MioStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap();
        ws.push(W {
            s,
            pos: 0,
            hdr: [0; 8],
            bytes: 0,
            open: true,
        });
    }
    // Let the hub register every watcher before the broadcast starts.
    std::thread::sleep(Duration::from_millis(500 + n as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (stop2, sent2, baddr2, mode2) = (
        stop.clone(),
        sent.clone(),
        baddr.to_string(),
        mode.to_string(),
    );
    let bcast = std::thread::spawn(move || {
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
                let due =
                    start + Duration::from_secs_f64(i as f64 * BLOCK as f64 * 8.0 / rate as f64);
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
    });
    let cpu0 = proc_cpu_ticks(pid);
    let t0 = Instant::now();
    let mut lat: Vec<u32> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let mut block_no: u64 = 0;
    let mut rss_max = 0;
    let mut last_rss = Instant::now();
    while t0.elapsed().as_secs_f64() < secs {
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let w = &mut ws[ev.token().0];
            loop {
                match w.s.read(&mut buf) {
                    Ok(0) => {
                        w.open = false;
                        break;
                    }
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
                                    if block_no % 4 == 0 {
                                        let ts = u64::from_le_bytes(w.hdr);
                                        lat.push(
                                            (t.saturating_sub(ts) / 1000).min(u32::MAX as u64)
                                                as u32,
                                        );
                                    }
                                }
                            } else {
                                let m = (BLOCK - off).min(k - i);
                                i += m;
                                w.pos += m as u64;
                            }
                        }
                        w.bytes += k as u64;
                        TOTAL.fetch_add(k as u64, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        w.open = false;
                        break;
                    }
                }
            }
        }
        if last_rss.elapsed() > Duration::from_millis(200) {
            rss_max = rss_max.max(proc_kib(pid, "VmRSS:"));
            last_rss = Instant::now();
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = proc_cpu_ticks(pid);
    stop.store(true, Ordering::Relaxed);
    let rss_end = proc_kib(pid, "VmRSS:");
    let closed = ws.iter().filter(|w| !w.open).count();
    drop(std::mem::take(&mut ws));
    let _ = bcast.join();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
    };
    println!(
        "delivered_MBps={:.1} sent_MBps={:.1} p50_ms={:.3} p99_ms={:.3} hub_cpu_pct={:.0} hub_rss_max_kib={} hub_rss_end_kib={} samples={} closed={}",
        total_bytes() as f64 / elapsed / 1e6,
        sent.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        pct(0.5),
        pct(0.99),
        (cpu1 - cpu0) as f64 / elapsed,
        rss_max.max(rss_end),
        rss_end,
        lat.len(),
        closed
    );
}

static TOTAL: AtomicU64 = AtomicU64::new(0);
fn total_bytes() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

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
        Some("run") => {
            // run MODE ADDR BADDR N RATE SECS PID
            let n: usize = a[5].parse().unwrap();
            run(
                &a[2],
                &a[3],
                &a[4],
                n,
                a[6].parse().unwrap(),
                a[7].parse().unwrap(),
                a[8].parse().unwrap(),
            )
        }
        Some("idle") => idle(&a[2], a[3].parse().unwrap(), a[4].parse().unwrap()),
        _ => {
            eprintln!("usage: see the source");
            std::process::exit(2)
        }
    }
}
