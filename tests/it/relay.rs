//! river-relay against real peers on 127.0.0.1: its own clients, fstream.py's command line, raw
//! TCP clients (hostile handshakes, a watcher that never reads), ffmpeg/ffprobe as broadcaster and
//! players over fstream and HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::hub::*;
use crate::common::*;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A hub with the users fier:123, live:pushpw and ann:456, whose file is written with CRLF line
/// ends and spaces around `=`, as Windows editors leave it.
pub(crate) fn start_hub(extra: &[&str]) -> Hub {
    let hub = Hub::start_with(USERS, extra);
    hub.write_user_file("ann", "[DEFAULT]\r\npassword = 456\r\n");
    hub
}

/// One HTTP GET over a raw socket (`Connection: close`, so the body ends with the connection):
/// (head, body).
pub(crate) fn http_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn http_raw(addr: &str, req: &[u8]) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req).unwrap();
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    let split = v
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(v.len());
    (
        String::from_utf8_lossy(&v[..split]).into_owned(),
        v[split..].to_vec(),
    )
}

/// Reads `r` to its end, checking each byte against `block` repeated: (bytes read, all equal).
pub(crate) fn read_repeating(r: &mut impl Read, block: &[u8]) -> (usize, bool) {
    let mut buf = vec![0u8; 1 << 16];
    let (mut n, mut ok) = (0usize, true);
    loop {
        let k = r.read(&mut buf).unwrap();
        if k == 0 {
            return (n, ok);
        }
        let mut done = 0;
        while done < k {
            let off = (n + done) % block.len();
            let m = (k - done).min(block.len() - off);
            ok &= buf[done..done + m] == block[off..off + m];
            done += m;
        }
        n += k;
    }
}

pub(crate) fn handshake(payload: &str) -> Vec<u8> {
    let mut v = b"\n\n".to_vec();
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.push(0);
    v.extend_from_slice(payload.as_bytes());
    v
}

/// Connects, sends `bytes`, and returns everything received until the hub closes (deadline).
pub(crate) fn raw_exchange(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.write_all(bytes);
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    v
}

/// `river-relay ARGS` with stdout to a file, stderr collected.
pub(crate) fn spawn_relay(args: &[&str], stdin: Stdio, stdout: Stdio) -> Child {
    Command::new(river("river-relay"))
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn river-relay")
}

pub(crate) fn stderr_of(c: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// A watcher process writing to a file.
pub(crate) fn watch_to_file(
    hub: &Hub,
    user: &str,
    channel: &str,
    extra: &[&str],
    out: &Path,
) -> Child {
    let mut args = vec!["watch", &hub.fstream, "--user", user, "--channel", channel];
    args.extend_from_slice(extra);
    spawn_relay(
        &args,
        Stdio::null(),
        Stdio::from(std::fs::File::create(out).unwrap()),
    )
}

/// A broadcaster process fed from a file.
pub(crate) fn broadcast_file(
    hub: &Hub,
    user: &str,
    pw: &str,
    channel: &str,
    input: &Path,
) -> Child {
    spawn_relay(
        &[
            "broadcast",
            &hub.fstream,
            "--user",
            user,
            "--password",
            pw,
            "--channel",
            channel,
        ],
        Stdio::from(std::fs::File::open(input).unwrap()),
        Stdio::null(),
    )
}

pub(crate) fn pattern(len: usize, seed: u64) -> Vec<u8> {
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

fn clip4s() -> Clip {
    Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 0,
        audio: true,
        gop_secs: 4,
        secs: 12,
    }
}

fn clip1s() -> Clip {
    Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 2,
        audio: true,
        gop_secs: 1,
        secs: 3,
    }
}

#[test]
fn opaque_fan_out_is_byte_exact_to_20_watchers_then_eof() {
    let hub = start_hub(&[]);
    let data = pattern(4 << 20, 7);
    let input = write_tmp("relay-fanout.bin", &data);
    let dir = tmpdir();
    let mut watchers = Vec::new();
    for i in 0..20 {
        let out = dir.join(format!("relay-fanout-{i}.out"));
        // Half of them use fstream.py's command line.
        let w = if i % 2 == 0 {
            watch_to_file(&hub, "fier", "fan", &[], &out)
        } else {
            spawn_relay(
                &[&hub.fstream, "watch,user=fier,channel=fan"],
                Stdio::null(),
                Stdio::from(std::fs::File::create(&out).unwrap()),
            )
        };
        watchers.push((w, out));
    }
    hub.wait_watchers("fier", "fan", 20);
    let mut b = spawn_relay(
        &[
            &hub.fstream,
            "broadcast,user=fier,user-password=123,channel=fan",
        ],
        Stdio::from(std::fs::File::open(&input).unwrap()),
        Stdio::null(),
    );
    let st = wait_deadline(&mut b, WAIT, "broadcaster");
    assert!(st.success(), "broadcaster: {}", stderr_of(&mut b));
    for (mut w, out) in watchers {
        // End of broadcast: everything queued, then EOF, so the watcher exits 0.
        let st = wait_deadline(&mut w, WAIT, "watcher");
        assert!(st.success(), "watcher: {}", stderr_of(&mut w));
        let got = std::fs::read(&out).unwrap();
        assert!(
            got == data,
            "{}: {} bytes, want {}",
            out.display(),
            got.len(),
            data.len()
        );
    }
    assert!(hub.log.text().contains("end of broadcast"));
}

#[test]
fn a_watcher_that_never_reads_is_dropped_and_the_reader_gets_every_byte_with_bounded_rss() {
    // A 32 MiB queue gives the reading watcher (a debug build, on a busy 2-core machine) a second
    // of slack at the paced rate; the stuck one overflows it after a second either way.
    let hub = start_hub(&["--queue-bytes", "32MiB", "--queue-time", "30s"]);
    // The stuck watcher: handshake, then never read.
    let mut stuck = TcpStream::connect(&hub.fstream).unwrap();
    stuck
        .write_all(&handshake("watch,user=fier,channel=big"))
        .unwrap();
    let mut good = spawn_relay(
        &["watch", &hub.fstream, "--user", "fier", "--channel", "big"],
        Stdio::null(),
        Stdio::piped(),
    );
    hub.wait_watchers("fier", "big", 2);
    let total: usize = 256 << 20;
    // The password comes from the environment here: check that path too.
    let mut b = Command::new(river("river-relay"))
        .args([
            "broadcast",
            &hub.fstream,
            "--user",
            "fier",
            "--channel",
            "big",
        ])
        .env("RIVER_USER_PASSWORD", "123")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bin = b.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Paced at about 32 MiB/s, so a watcher that reads keeps up even in a debug build on a
        // busy machine; the stuck one falls behind at once either way.
        let block = pattern(1 << 20, 3);
        let start = Instant::now();
        for i in 0..(total >> 20) {
            let due = start + Duration::from_millis(i as u64 * 32);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            bin.write_all(&block).unwrap();
        }
    });
    let mut gout = good.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let block = pattern(1 << 20, 3);
        read_repeating(&mut gout, &block)
    });
    let mut max_rss = 0;
    let start = Instant::now();
    while !writer.is_finished() {
        max_rss = max_rss.max(hub.rss_kib());
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "256 MiB did not flow"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    writer.join().unwrap();
    let st = wait_deadline(&mut b, WAIT, "broadcaster");
    assert!(st.success(), "broadcaster: {}", stderr_of(&mut b));
    let st = wait_deadline(&mut good, WAIT, "good watcher");
    assert!(st.success());
    let (n, ok) = reader.join().unwrap();
    assert_eq!(
        n,
        total,
        "the reading watcher got everything; hub log:\n{}",
        hub.log.text()
    );
    assert!(ok, "the reading watcher's bytes are exact");
    // Opaque content is paced: the stuck watcher held the broadcaster back until it was dropped
    // for writing nothing in --max-behind.
    assert!(
        hub.log.text().contains("wrote nothing in 10 s"),
        "{}",
        hub.log.text()
    );
    // One 32 MiB queue (shared Bytes) + socket buffers + the process itself: far below the
    // 256 MiB that flowed.
    assert!(max_rss < 80 * 1024, "hub RSS reached {max_rss} KiB");
    eprintln!("hub RSS peak while 256 MiB flowed: {max_rss} KiB");
    drop(stuck);
}

#[test]
fn auth_refusals_close_without_data() {
    let hub = start_hub(&["--wait-timeout", "20s"]);
    let data = pattern(100_000, 9);
    let input = write_tmp("relay-auth.bin", &data);
    // Wrong user password and unknown user: the broadcaster fails, nothing reaches the channel.
    for (user, pw) in [("fier", "nope"), ("nobody", "123"), ("ann", "123")] {
        let mut b = broadcast_file(&hub, user, pw, "x", &input);
        let st = wait_deadline(&mut b, WAIT, "refused broadcaster");
        let err = stderr_of(&mut b);
        assert!(!st.success(), "{user}/{pw} accepted");
        assert!(err.contains("closed the connection"), "{err}");
    }
    hub.log
        .wait_for("wrong user password or unknown user \"nobody\"", "the hub");
    // The raw view: a refused broadcaster is sent nothing.
    let got = raw_exchange(
        &hub.fstream,
        &handshake("broadcast,user=fier,user-password=bad"),
    );
    assert!(got.is_empty());
    // A watcher with the wrong channel password on a live channel: nothing, then closed.
    let mut live = TcpStream::connect(&hub.fstream).unwrap();
    live.write_all(&handshake(
        "broadcast,user=ann,user-password=456,channel=c,channel-password=pw",
    ))
    .unwrap();
    live.write_all(&pattern(1000, 1)).unwrap();
    hub.log.wait_for("broadcasting ann/c", "the hub");
    let got = raw_exchange(
        &hub.fstream,
        &handshake("watch,user=ann,channel=c,channel-password=wrong"),
    );
    assert!(got.is_empty());
    let got = raw_exchange(&hub.fstream, &handshake("watch,user=ann,channel=c"));
    assert!(got.is_empty());
    hub.log
        .wait_for("watcher of ann/c: wrong channel password", "the hub");
    // The right password gets data.
    let mut ok = TcpStream::connect(&hub.fstream).unwrap();
    ok.write_all(&handshake("watch,user=ann,channel=c,channel-password=pw"))
        .unwrap();
    hub.wait_watchers("ann", "c", 1);
    live.write_all(&pattern(1000, 2)).unwrap();
    ok.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = [0u8; 10];
    assert!(ok.read(&mut b).unwrap() > 0);
    // HTTP: wrong password → 403.
    let (head, _) = http_get(&hub.http, "/ann/c.flv?password=wrong");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    // A watcher waiting for a channel that is not live yet is dropped when the broadcaster sets
    // another password.
    let out = tmpdir().join("relay-auth-wait.out");
    let mut w = watch_to_file(&hub, "fier", "later", &["--channel-password", "old"], &out);
    hub.wait_watchers("fier", "later", 1);
    let mut b = spawn_relay(
        &[
            "broadcast",
            &hub.fstream,
            "--user",
            "fier",
            "--channel",
            "later",
            "--channel-password",
            "new",
        ],
        Stdio::piped(),
        Stdio::null(),
    );
    // Password from the environment is not set here: --password missing must be a usage error.
    let st = wait_deadline(&mut b, WAIT, "broadcaster without password");
    assert_eq!(st.code(), Some(2));
    let pwfile = write_tmp("relay-pw.txt", b"123\n");
    let mut b = spawn_relay(
        &[
            "broadcast",
            &hub.fstream,
            "--user",
            "fier",
            "--channel",
            "later",
            "--channel-password",
            "new",
            "--password-file",
            pwfile.to_str().unwrap(),
        ],
        Stdio::from(std::fs::File::open(&input).unwrap()),
        Stdio::null(),
    );
    let st = wait_deadline(&mut w, WAIT, "dropped waiting watcher");
    assert!(!st.success());
    assert!(std::fs::read(&out).unwrap().is_empty());
    hub.log
        .wait_for("the broadcaster set another channel password", "the hub");
    let st = wait_deadline(&mut b, WAIT, "broadcaster");
    assert!(st.success(), "{}", stderr_of(&mut b));
    // Users are re-read: a new user file takes effect without a restart.
    let users = hub.users_dir().to_path_buf();
    std::fs::write(users.join("newbie.ini"), "[DEFAULT]\npassword=fresh\n").unwrap();
    let mut b = broadcast_file(&hub, "newbie", "fresh", "x", &input);
    let st = wait_deadline(&mut b, WAIT, "new user");
    assert!(st.success(), "{}", stderr_of(&mut b));
}

#[test]
fn hostile_handshakes_and_requests_are_closed_and_the_hub_survives() {
    let hub = start_hub(&[]);
    let mut huge = b"\n\n".to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    huge.push(0);
    huge.extend_from_slice(&[b'a'; 1000]);
    let mut nonutf8 = b"\n\n\x00\x00\x00\x04\x00".to_vec();
    nonutf8.extend_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("huge length", huge),
        ("garbage", pattern(5000, 5)),
        ("non-UTF-8", nonutf8),
        ("unknown role", handshake("dance,user=fier")),
        ("path in name", handshake("watch,user=../etc,channel=x")),
        ("zero length", b"\n\n\x00\x00\x00\x00\x00".to_vec()),
    ];
    for (what, bytes) in &cases {
        let got = raw_exchange(&hub.fstream, bytes);
        assert!(got.is_empty(), "{what}: got {} bytes", got.len());
    }
    hub.log.wait_for("bad fstream handshake", "the hub");
    // HTTP: garbage → 400, oversized head → 431, unknown path → 404, opaque as .flv → 415.
    let (head, _) = http_raw(&hub.http, b"\x01\x02garbage\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let mut big = b"GET /fier/x.flv HTTP/1.1\r\nX-Big: ".to_vec();
    big.extend_from_slice(&[b'a'; 10_000]);
    big.extend_from_slice(b"\r\n\r\n");
    let (head, _) = http_raw(&hub.http, &big);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    let (head, _) = http_get(&hub.http, "/nothing");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = http_raw(
        &hub.http,
        b"OPTIONS /fier/x.flv HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        head.starts_with("HTTP/1.1 204") && head.contains("Access-Control-Allow-Origin: *"),
        "{head}"
    );
    let mut live = TcpStream::connect(&hub.fstream).unwrap();
    live.write_all(&handshake(
        "broadcast,user=fier,user-password=123,channel=op",
    ))
    .unwrap();
    live.write_all(&pattern(4000, 8)).unwrap();
    hub.log.wait_for("unknown (opaque) content", "the hub");
    let (head, _) = http_get(&hub.http, "/fier/op.flv");
    assert!(head.starts_with("HTTP/1.1 415"), "{head}");
    // The hub still works.
    let s = hub.stats();
    assert!(s["refused"].as_u64().unwrap() >= cases.len() as u64);
}

/// Runs ffmpeg → `river-relay broadcast` (format `fmt`) with -re, and watchers over fstream and
/// HTTP, and checks each decodes.
fn through_the_hub(fmt: &str) {
    require("ffmpeg");
    let hub = start_hub(&[]);
    let clip = clip1s();
    let src = clip.flv();
    let dir = tmpdir();
    let ext = if fmt == "flv" { "flv" } else { "ts" };
    let chan = format!("cam-{ext}");
    let w_fs = dir.join(format!("relay-{ext}-fstream.{ext}"));
    let mut w1 = watch_to_file(&hub, "fier", &chan, &[], &w_fs);
    // HTTP players (ffmpeg), same container and the converted one.
    let mut players = Vec::new();
    for e in ["flv", "ts"] {
        let out = dir.join(format!("relay-{ext}-http.{e}"));
        let url = format!("http://{}/fier/{chan}.{e}", hub.http);
        let c = Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-i",
                &url,
                "-c",
                "copy",
                "-f",
                if e == "flv" { "flv" } else { "mpegts" },
            ])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        players.push((c, out));
    }
    hub.wait_watchers("fier", &chan, 3);
    let s = src.to_string_lossy().to_string();
    let cmd = format!(
        "ffmpeg -nostdin -v error -re -i '{s}' -c copy -f {} - | '{}' broadcast {} --user fier --password 123 --channel {chan}",
        if fmt == "flv" { "flv" } else { "mpegts" },
        river("river-relay").display(),
        hub.fstream
    );
    let mut b = Command::new("sh")
        .args(["-c", &cmd])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let st = wait_deadline(&mut b, WAIT, "ffmpeg | broadcast");
    assert!(st.success(), "{}", stderr_of(&mut b));
    let st = wait_deadline(&mut w1, WAIT, "watcher");
    assert!(st.success(), "{}", stderr_of(&mut w1));
    for (mut p, out) in players {
        let st = wait_deadline(&mut p, WAIT, "ffmpeg player");
        let err = stderr_of(&mut p);
        assert!(st.success(), "{}: {err}", out.display());
        // HTTP/1.1: the stream is chunked, so the end of the broadcast is a clean end, not
        // "Stream ends prematurely".
        assert!(
            err.trim().is_empty(),
            "{}: ffmpeg -v error said: {err}",
            out.display()
        );
        let streams = probe_streams(&out);
        assert_eq!(streams[0].codec, "h264", "{}", out.display());
        assert!(streams[0].packets >= 70, "{}: {streams:?}", out.display());
        assert_eq!(streams.len(), 2, "{}: {streams:?}", out.display());
        let pk = probe_packets(&out);
        assert!(
            pk.iter().find(|p| p.kind == "video").unwrap().key,
            "{}: starts on a keyframe",
            out.display()
        );
    }
    let streams = probe_streams(&w_fs);
    assert_eq!(streams[0].codec, "h264");
    assert_eq!(
        streams[0].packets, 75,
        "the watcher from the start got every frame"
    );
    assert_decodes_cleanly(&w_fs);
    // /stats saw the broadcast.
    assert!(hub
        .log
        .text()
        .contains(&format!("broadcasting fier/{chan}")));
}

#[test]
fn ffmpeg_flv_through_broadcast_to_fstream_and_http_watchers() {
    through_the_hub("flv");
}

#[test]
fn ffmpeg_ts_through_broadcast_to_fstream_and_http_watchers() {
    through_the_hub("ts");
}

#[test]
fn http_push_from_ffmpeg_watched_over_fstream_with_ffprobe() {
    require("ffmpeg");
    let hub = start_hub(&[]);
    let src = clip1s().flv();
    // `river-relay watch | ffprobe -`, as a user types it.
    let cmd = format!(
        "'{}' watch {} --user live --channel stream1 | ffprobe -v error -count_packets -show_entries stream=codec_name,nb_read_packets -of csv -",
        river("river-relay").display(),
        hub.fstream
    );
    let probe = Command::new("sh")
        .args(["-c", &cmd])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    hub.wait_watchers("live", "stream1", 1);
    let url = format!("http://{}/live/stream1?user-password=pushpw", hub.http);
    ffmpeg(&[
        "-re",
        "-i",
        src.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "flv",
        &url,
    ]);
    let mut probe = probe;
    let st = wait_deadline(&mut probe, WAIT, "watch | ffprobe");
    let mut out = String::new();
    probe
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(st.success(), "{}", stderr_of(&mut probe));
    assert!(out.contains("stream,h264,75"), "{out}");
    assert!(out.contains("stream,aac,"), "{out}");
    hub.log
        .wait_for("HTTP push to live/stream1 complete", "the hub");
    // A push with the wrong password is refused with 403.
    let (head, _) = http_raw(
        &hub.http,
        b"POST /live/stream1?user-password=bad HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}

/// Broadcasts the 12 s clip (4 s GOP) with -re through a hub started with `hub_args`, joins a raw
/// watcher 5.5 s in (mid-GOP) and reads to the end. Returns the time to the first 13 bytes, the
/// first video packet's pts, and the received file.
fn late_join(hub_args: &[&str], name: &str) -> (Duration, f64, PathBuf) {
    let hub = start_hub(hub_args);
    let src = clip4s().flv();
    let cmd = format!(
        "ffmpeg -nostdin -v error -re -i '{}' -c copy -f flv - | '{}' broadcast {} --user fier --password 123 --channel late",
        src.display(),
        river("river-relay").display(),
        hub.fstream
    );
    let mut b = Command::new("sh")
        .args(["-c", &cmd])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    hub.log
        .wait_for("channel fier/late: FLV content", "the hub");
    // Join in the middle of the second GOP (4 s .. 8 s of media).
    std::thread::sleep(Duration::from_millis(5500));
    let joined = Instant::now();
    let mut s = TcpStream::connect(&hub.fstream).unwrap();
    s.write_all(&handshake("watch,user=fier,channel=late"))
        .unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let first = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "EOF before any data");
        got.extend_from_slice(&buf[..n]);
        if got.len() >= 13 {
            break joined.elapsed();
        }
    };
    // Read on to the end of the broadcast.
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let st = wait_deadline(&mut b, WAIT, "broadcaster");
    assert!(st.success(), "{}", stderr_of(&mut b));
    let path = write_tmp(name, &got);
    let pk = probe_packets(&path);
    let video: Vec<&Packet> = pk.iter().filter(|p| p.kind == "video").collect();
    assert!(video[0].key, "{name}: the late joiner starts on a keyframe");
    assert_decodes_cleanly(&path);
    (first, video[0].pts, path)
}

#[test]
fn late_joiner_on_a_4s_gop_starts_at_once_on_the_cached_keyframe() {
    require("ffmpeg");
    // The same join with and without the GOP cache, side by side.
    let without = std::thread::spawn(|| late_join(&["--no-gop-cache"], "relay-late-nocache.flv"));
    let (first, pts, _) = late_join(&[], "relay-late.flv");
    // The first frame is the cached keyframe at 4 s, not the next one at 8 s: the joiner did not
    // wait for a keyframe. (Timestamps are the broadcast's own.)
    assert!((pts - 4.0).abs() < 0.1, "first video pts {pts}");
    // The first bytes came right away: far less than the 2.5 s until the next keyframe.
    assert!(
        first < Duration::from_millis(1500),
        "first bytes after {first:?}"
    );
    eprintln!("late joiner: first bytes after {first:?}, first video pts {pts}");
    // Without the cache (as nginx-rtmp and fstream do) the first decodable frame is the next
    // keyframe, 8 s in: up to a whole GOP of waiting.
    let (_, pts_nc, _) = without.join().unwrap();
    assert!(
        (pts_nc - 8.0).abs() < 0.1,
        "--no-gop-cache: first video pts {pts_nc}"
    );
}

#[test]
fn second_broadcaster_takes_over_and_watchers_continue() {
    let hub = start_hub(&[]);
    let out = tmpdir().join("relay-takeover.out");
    let mut w = watch_to_file(&hub, "fier", "tk", &[], &out);
    hub.wait_watchers("fier", "tk", 1);
    let mut first = TcpStream::connect(&hub.fstream).unwrap();
    first
        .write_all(&handshake(
            "broadcast,user=fier,user-password=123,channel=tk",
        ))
        .unwrap();
    let a = vec![b'A'; 10_000];
    first.write_all(&a).unwrap();
    // Wait until the watcher has the first stream's bytes.
    let start = Instant::now();
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < a.len() as u64 {
        assert!(start.elapsed() < WAIT, "first stream never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = pattern(300_000, 4);
    let input = write_tmp("relay-takeover.bin", &second);
    let mut b = broadcast_file(&hub, "fier", "123", "tk", &input);
    let st = wait_deadline(&mut b, WAIT, "second broadcaster");
    assert!(st.success(), "{}", stderr_of(&mut b));
    // The old broadcaster was closed by the hub.
    first.set_read_timeout(Some(WAIT)).unwrap();
    let mut x = [0u8; 1];
    assert_eq!(first.read(&mut x).unwrap_or(0), 0);
    let st = wait_deadline(&mut w, WAIT, "watcher");
    assert!(st.success(), "{}", stderr_of(&mut w));
    let got = std::fs::read(&out).unwrap();
    let mut want = a.clone();
    want.extend_from_slice(&second);
    assert!(
        got == want,
        "watcher got {} bytes, want the first stream then the whole second ({})",
        got.len(),
        want.len()
    );
    hub.log.wait_for("takes over channel fier/tk", "the hub");
}

/// Reads one response with a Content-Length body from `s`: (head, body). `rest` holds what was
/// read past it (the next pipelined response's start).
fn read_response(s: &mut TcpStream, rest: &mut Vec<u8>) -> (String, Vec<u8>) {
    let mut b = [0u8; 4096];
    loop {
        if let Some(p) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..p + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            while rest.len() < p + 4 + len {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0, "closed inside a body: {head}");
                rest.extend_from_slice(&b[..n]);
            }
            let body = rest[p + 4..p + 4 + len].to_vec();
            rest.drain(..p + 4 + len);
            return (head, body);
        }
        let n = s.read(&mut b).unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(rest)
        );
        rest.extend_from_slice(&b[..n]);
    }
}

/// The hub's HTTP side is the HTTP layer's: one connection serves requests in turn
/// (pipelined), HEAD of a stream gets the head a GET would, and an HTTP/1.1 stream is chunked.
#[test]
fn http_keep_alive_pipelining_head_and_a_chunked_stream() {
    let hub = start_hub(&[]);
    let mut s = TcpStream::connect(&hub.http).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(
        b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /fier/ka.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut rest = Vec::new();
    let (h1, b1) = read_response(&mut s, &mut rest);
    assert!(
        h1.starts_with("HTTP/1.1 200") && h1.contains("application/json"),
        "{h1}"
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&b1).is_ok());
    let (h2, b2) = read_response(&mut s, &mut rest);
    assert!(h2.starts_with("HTTP/1.1 200"), "{h2}");
    assert!(String::from_utf8_lossy(&b2).contains("river_"), "{h2}");
    let (h3, b3) = read_response(&mut s, &mut rest);
    assert!(
        h3.starts_with("HTTP/1.1 200") && h3.contains("video/x-flv"),
        "{h3}"
    );
    assert!(b3.is_empty());
    // The same connection then watches: a chunked body carrying the broadcast byte for byte,
    // ended by the last chunk (the connection stays open for another request).
    let clip = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/testsrc/clip.flv"))
        .unwrap();
    let mut live = TcpStream::connect(&hub.fstream).unwrap();
    live.write_all(&handshake(
        "broadcast,user=fier,user-password=123,channel=ka",
    ))
    .unwrap();
    s.write_all(b"GET /fier/ka.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    hub.wait_watchers("fier", "ka", 1);
    live.write_all(&clip).unwrap();
    drop(live);
    let mut v = Vec::new();
    let mut b = [0u8; 65536];
    while !v.ends_with(b"\r\n0\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "closed before the last chunk");
        v.extend_from_slice(&b[..n]);
    }
    let p = v.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&v[..p]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    let (mut body, mut at) = (Vec::new(), p);
    loop {
        let eol = at + v[at..].windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&v[at..eol]).unwrap(), 16).unwrap();
        if n == 0 {
            break;
        }
        body.extend_from_slice(&v[eol + 2..eol + 2 + n]);
        at = eol + 2 + n + 2;
    }
    assert!(body == clip, "{} bytes, want {}", body.len(), clip.len());
}

#[test]
fn usage_errors() {
    for args in [
        vec!["127.0.0.1:1", "dance,user=x"],
        vec!["nonsense"],
        vec!["127.0.0.1:1", "broadcast,user=fier"],
    ] {
        let out = run(&river("river-relay"), &args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
    }
    let out = run(&river("river-relay"), &["--help"], b"");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("watch,user=fier,channel=c"), "{help}");
}
