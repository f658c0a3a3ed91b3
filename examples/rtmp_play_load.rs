//! A light RTMP player load for bench/relay_rtmp.sh: N players (one thread each, blocking
//! sockets) play rtmp://ADDR/APP/STREAM for SECS seconds after all have connected, count the
//! bytes they receive (not parsed beyond the handshake) and print one line:
//! `players=N connected=C fed=F bytes=B mbps=M`.
//!
//!     cargo run --release --example rtmp_play_load -- 127.0.0.1:1935 fier cam 100 10
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amf::amf0::Value;
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

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: rtmp_play_load ADDR APP STREAM N SECS");
        std::process::exit(2);
    }
    let (addr, app, stream) = (a[1].clone(), a[2].clone(), a[3].clone());
    let n: usize = a[4].parse().unwrap();
    let secs: u64 = a[5].parse().unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let fed = Arc::new(AtomicUsize::new(0));
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hs = Vec::new();
    let end = Arc::new(std::sync::Mutex::new(None::<Instant>));
    for _ in 0..n {
        let (addr, app, stream) = (addr.clone(), app.clone(), stream.clone());
        let (bytes, connected, fed, counting, end) = (
            bytes.clone(),
            connected.clone(),
            fed.clone(),
            counting.clone(),
            end.clone(),
        );
        hs.push(
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let Ok(mut s) = player(&addr, &app, &stream) else {
                        return;
                    };
                    connected.fetch_add(1, Ordering::SeqCst);
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = 0u64;
                    loop {
                        if let Some(e) = *end.lock().unwrap() {
                            if Instant::now() >= e {
                                break;
                            }
                        }
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => {
                                if counting.load(Ordering::Relaxed) {
                                    bytes.fetch_add(k as u64, Ordering::Relaxed);
                                    got += k as u64;
                                }
                            }
                        }
                    }
                    if got > 0 {
                        fed.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_secs(1));
    counting.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    *end.lock().unwrap() = Some(t0 + Duration::from_secs(secs));
    // Marker for the bench script: the measured window starts now.
    eprintln!("measuring");
    for h in hs {
        let _ = h.join();
    }
    let el = t0.elapsed().as_secs_f64().min(secs as f64);
    let b = bytes.load(Ordering::SeqCst);
    println!(
        "players={n} connected={} fed={} bytes={b} mbps={:.1}",
        connected.load(Ordering::SeqCst),
        fed.load(Ordering::SeqCst),
        b as f64 * 8.0 / el / 1e6
    );
}
