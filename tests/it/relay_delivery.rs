//! The hub's delivery policy against real peers (issue 15): a file pushed unpaced reaches every
//! watcher that keeps up whole; a real-time broadcast never waits for a slow watcher, which skips
//! to keyframes and stays decodable; `--unclocked isolate` gives content without a clock the
//! real-time policy.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::hub::*;
use crate::common::*;
use crate::relay::{
    broadcast_file, handshake, pattern, read_repeating, spawn_relay, start_hub, stderr_of,
    watch_to_file, WAIT,
};

/// A TCP connection to `addr` whose receive buffer is set to `rcvbuf` bytes before it connects,
/// so the hub's writes stop at about what the reader took, not at the kernel's autotuned window.
fn small_window_connect(addr: &str, rcvbuf: i32) -> TcpStream {
    let addr: std::net::SocketAddrV4 = addr.parse().unwrap();
    // SAFETY: a fresh socket; every return code is checked; the fd is owned by the TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let s = TcpStream::from_raw_fd(fd);
        let r = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&rcvbuf as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(r, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        s
    }
}

/// Reads `s` at about `rate` bytes a second until `fast` is set, then as fast as it can, until
/// EOF or `deadline`.
fn read_slowly(
    mut s: TcpStream,
    rate: usize,
    fast: Arc<AtomicBool>,
    deadline: Duration,
) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    while start.elapsed() < deadline {
        let full = fast.load(Ordering::Relaxed);
        // Never ahead of the rate: wait until the bytes read so far are due.
        let due = Duration::from_secs_f64(got.len() as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()).filter(|_| !full) {
            std::thread::sleep(wait.min(Duration::from_millis(100)));
            continue;
        }
        let n = if full { buf.len() } else { 4096 };
        match s.read(&mut buf[..n]) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("slow reader: {e}"),
        }
    }
    panic!("slow reader: no EOF in {deadline:?} ({} bytes)", got.len());
}

/// A real-time broadcast (`ffmpeg -re` of a 16 s, 6 Mbit/s FLV) to two watchers that keep up and
/// one raw watcher reading at a quarter of the stream's rate, all three attached before the
/// broadcast starts. The broadcaster is not held back: the two get every frame, and the slow one
/// skips whole GOPs while what it got decodes cleanly. (At 6 Mbit/s the slow one falls behind by
/// more than the 4 MiB the kernel may buffer for it, `net.ipv4.tcp_wmem`'s maximum, within the
/// broadcast; the hub's queue is what skips.)
#[test]
fn a_real_time_broadcast_is_not_held_by_a_quarter_speed_watcher_which_skips_gops() {
    require("ffmpeg");
    require("ffprobe");
    const SECS: usize = 16;
    let dir = scratch("relay-rt-slow");
    let clip = dir.join("clip.flv");
    let d = SECS.to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=640x360:rate=30:duration={d}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=44100:duration={d}"),
        "-threads",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "superfast",
        // Noise: a 6 Mbit/s stream from a 640x360 test pattern.
        "-vf",
        "noise=alls=30:allf=t",
        "-b:v",
        "6M",
        "-maxrate",
        "6M",
        "-bufsize",
        "3M",
        "-g",
        "30",
        "-keyint_min",
        "30",
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-f",
        "flv",
        clip.to_str().unwrap(),
    ]);
    let rate = std::fs::metadata(&clip).unwrap().len() as usize / SECS;
    // 2 MiB is 2.8 s of this stream: the quarter-speed watcher falls behind by 0.56 MB/s and
    // skips within 4 s, while a watcher that reads as fast as it can outlasts a loaded machine's
    // scheduling (at 256 KiB, 0.35 s, one of them skipped a GOP, 451 of 480 frames, at a load
    // average of 11).
    let hub = start_hub(&["--queue-bytes", "2MiB", "--max-behind", "60s"]);
    let slow = small_window_connect(&hub.fstream, 4096);
    (&slow)
        .write_all(&handshake("watch,user=fier,channel=rt"))
        .unwrap();
    let outs: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("fast-{i}.flv"))).collect();
    let mut fast: Vec<Child> = outs
        .iter()
        .map(|o| watch_to_file(&hub, "fier", "rt", &[], o))
        .collect();
    hub.wait_watchers("fier", "rt", 3);
    let ended = Arc::new(AtomicBool::new(false));
    let e2 = ended.clone();
    let reader =
        std::thread::spawn(move || read_slowly(slow, rate / 4, e2, Duration::from_secs(120)));
    let mut src = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-re",
            "-i",
            clip.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut b = spawn_relay(
        &[
            "broadcast",
            &hub.fstream,
            "--user",
            "fier",
            "--password",
            "123",
            "--channel",
            "rt",
        ],
        Stdio::from(src.stdout.take().unwrap()),
        Stdio::null(),
    );
    // The slow watcher's skips, seen while it is attached.
    let mut skips = 0;
    let mut held = 0.0;
    while start.elapsed() < Duration::from_secs(SECS as u64 - 1) {
        std::thread::sleep(Duration::from_millis(250));
        let s = hub.stats();
        // Absent until the broadcaster has logged in.
        let ch = &s["channels"][0];
        held = ch["backpressure_secs"].as_f64().unwrap_or(held);
        skips = ch["watchers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["skips"].as_u64())
            .max()
            .unwrap_or(skips);
    }
    let st = wait_deadline(&mut b, WAIT, "broadcaster");
    assert!(st.success(), "{}", stderr_of(&mut b));
    let _ = wait_deadline(&mut src, WAIT, "ffmpeg -re");
    let wall = start.elapsed();
    // The test is over for the slow one: it may read the rest at full speed.
    ended.store(true, Ordering::Relaxed);
    let log = hub.log.text();
    assert!(
        skips >= 1,
        "the slow watcher never skipped; hub log:\n{log}"
    );
    assert!(
        log.contains("real time: slow watchers skip to keyframes"),
        "{log}"
    );
    eprintln!("broadcast of {SECS} s took {wall:?}; held back {held:.2} s; slow skips {skips}");
    for (w, o) in fast.iter_mut().zip(&outs) {
        assert!(wait_deadline(w, WAIT, "watcher").success());
        assert_decodes_cleanly(o);
        let frames = probe_packets(o)
            .iter()
            .filter(|p| p.kind == "video")
            .count();
        assert_eq!(frames, 30 * SECS, "{}: every frame", o.display());
    }
    let got = reader.join().unwrap();
    let slow_out = dir.join("slow.flv");
    std::fs::write(&slow_out, &got).unwrap();
    assert_decodes_cleanly(&slow_out);
    let frames = probe_packets(&slow_out)
        .iter()
        .filter(|p| p.kind == "video")
        .count();
    assert!(
        frames > 0 && frames < 30 * SECS,
        "the slow one got {frames} frames (some, not all)"
    );
    assert!(
        !log.contains("slow watcher of"),
        "nobody was dropped: {log}"
    );
}

/// `--unclocked isolate`: opaque content is never paced. A broadcaster sending 4 MB/s for 3 s is
/// never held back by a watcher that never reads, which is dropped when its queue overflows,
/// while the watcher that keeps up gets every byte.
#[test]
fn isolated_opaque_content_is_never_held_and_a_stuck_watcher_is_cut() {
    let hub = start_hub(&["--unclocked", "isolate", "--queue-bytes", "1MiB"]);
    let stuck = small_window_connect(&hub.fstream, 4096);
    (&stuck)
        .write_all(&handshake("watch,user=fier,channel=iso"))
        .unwrap();
    let mut w = spawn_relay(
        &["watch", &hub.fstream, "--user", "fier", "--channel", "iso"],
        Stdio::null(),
        Stdio::piped(),
    );
    hub.wait_watchers("fier", "iso", 2);
    let block = pattern(64 << 10, 5);
    let mut out = w.stdout.take().unwrap();
    let b2 = block.clone();
    let reader = std::thread::spawn(move || read_repeating(&mut out, &b2));
    let mut b = TcpStream::connect(&hub.fstream).unwrap();
    b.write_all(&handshake(
        "broadcast,user=fier,user-password=123,channel=iso",
    ))
    .unwrap();
    // 64 KiB every 16 ms for 3 s: 12 MiB, about 4 MB/s.
    let start = Instant::now();
    let n = 192;
    for i in 0..n {
        let due = Duration::from_millis(16 * i as u64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        b.write_all(&block).unwrap();
    }
    let s = hub.stats();
    assert_eq!(
        s["channels"][0]["backpressure_secs"].as_f64(),
        Some(0.0),
        "{s}\n{}",
        hub.log.text()
    );
    drop(b);
    assert!(wait_deadline(&mut w, WAIT, "watcher").success());
    let (got, ok) = reader.join().unwrap();
    assert!(
        got == n * block.len() && ok,
        "{got} of {} bytes",
        n * block.len()
    );
    let log = hub.log.text();
    assert!(
        log.contains("queue overflow on opaque content"),
        "the stuck one was cut: {log}"
    );
    drop(stuck);
}

/// Issue 15's first case: `cat` of a file (unpaced, opaque) to three `river-relay watch`
/// watchers that read as fast as they can, and one raw watcher that never reads. The broadcast is
/// paced to its watchers: the three get every byte, the stuck one is dropped after --max-behind
/// (2 s here). Size: RIVER_PACED_MIB (CI: 48; the note reports 1 GiB).
#[test]
fn an_unpaced_file_reaches_every_watcher_that_keeps_up_whole() {
    let mib: usize = std::env::var("RIVER_PACED_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let hub = start_hub(&["--max-behind", "2s"]);
    // A 1 MiB block (with a prime-length pattern, so it does not repeat within it) `mib` times.
    let block = pattern(1 << 20, 11);
    let input = tmpdir().join("relay-paced.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for _ in 0..mib {
            f.write_all(&block).unwrap();
        }
    }
    let mut stuck = TcpStream::connect(&hub.fstream).unwrap();
    stuck
        .write_all(&handshake("watch,user=fier,channel=paced"))
        .unwrap();
    let mut watchers: Vec<Child> = (0..3)
        .map(|_| {
            spawn_relay(
                &[
                    "watch",
                    &hub.fstream,
                    "--user",
                    "fier",
                    "--channel",
                    "paced",
                ],
                Stdio::null(),
                Stdio::piped(),
            )
        })
        .collect();
    hub.wait_watchers("fier", "paced", 4);
    let readers: Vec<_> = watchers
        .iter_mut()
        .map(|w| {
            let mut out = w.stdout.take().unwrap();
            let block = block.clone();
            // Checked as it arrives: (bytes, all equal to the input).
            std::thread::spawn(move || read_repeating(&mut out, &block))
        })
        .collect();
    let start = Instant::now();
    let mut b = broadcast_file(&hub, "fier", "123", "paced", &input);
    let st = wait_deadline(&mut b, Duration::from_secs(120), "broadcaster");
    assert!(st.success(), "broadcaster: {}", stderr_of(&mut b));
    for (i, (mut w, r)) in watchers.into_iter().zip(readers).enumerate() {
        let st = wait_deadline(&mut w, WAIT, "watcher");
        assert!(st.success(), "watcher {i}: {}", stderr_of(&mut w));
        let (n, ok) = r.join().unwrap();
        assert!(
            n == mib << 20 && ok,
            "watcher {i}: {n} of {} bytes (equal: {ok}); hub log:\n{}",
            mib << 20,
            hub.log.text()
        );
    }
    let _ = std::fs::remove_file(&input);
    eprintln!(
        "{mib} MiB to 3 watchers (and a stuck one) in {:?}",
        start.elapsed()
    );
    let log = hub.log.text();
    assert!(log.contains("wrote nothing in 2 s"), "{log}");
    assert_eq!(log.matches("slow watcher").count(), 1, "{log}");
    let s = hub.stats();
    assert!(s["refused"].as_u64().is_some());
}

/// Issue 15: a 20 s MPEG-TS file piped unpaced (media at many times real time) to three watchers
/// with 64 KiB queues: the broadcast is paced, and each watcher gets every byte (every packet, no
/// skip).
#[test]
fn an_unpaced_ts_file_is_paced_and_every_watcher_gets_every_packet() {
    require("ffmpeg");
    let clip = Clip {
        width: 640,
        height: 360,
        fps: 30,
        bframes: 2,
        audio: true,
        gop_secs: 2,
        secs: 20,
    };
    let ts = clip.remux("mpegts");
    // Small queues: under the real-time policy these watchers (writing files) would overflow and
    // skip; paced, the broadcaster waits for them.
    let hub = start_hub(&["--queue-bytes", "64KiB"]);
    let dir = tmpdir();
    let outs: Vec<PathBuf> = (0..3)
        .map(|i| dir.join(format!("relay-paced-ts-{i}.ts")))
        .collect();
    let mut ws: Vec<Child> = outs
        .iter()
        .map(|o| watch_to_file(&hub, "fier", "pts", &[], o))
        .collect();
    hub.wait_watchers("fier", "pts", 3);
    let mut b = broadcast_file(&hub, "fier", "123", "pts", &ts);
    let st = wait_deadline(&mut b, WAIT, "broadcaster");
    assert!(st.success(), "{}", stderr_of(&mut b));
    let want = std::fs::read(&ts).unwrap();
    for (w, o) in ws.iter_mut().zip(&outs) {
        let st = wait_deadline(w, WAIT, "watcher");
        assert!(st.success(), "{}", stderr_of(w));
        let got = std::fs::read(o).unwrap();
        assert!(
            got == want,
            "{}: {} of {} bytes",
            o.display(),
            got.len(),
            want.len()
        );
    }
    let log = hub.log.text();
    assert!(!log.contains("slow watcher"), "{log}");
    assert!(
        !log.contains("real time:"),
        "never taken for real time: {log}"
    );
}
