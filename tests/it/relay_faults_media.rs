//! river-relay's media through faults, with real peers on 127.0.0.1 (issue 15, items 5-7): an
//! Annex B broadcast watched as MPEG-TS, an RTMP takeover, and an RTMP player that stops reading.
//! The shared helpers are in `relay_faults`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::hub::*;
use crate::common::*;
use crate::relay_faults::{
    clip, ffmpeg_bg, one_timeline, path_str, peer_of, relay, sh, stderr_of, video,
};

/// Item 5 of issue 15: raw H.264 (Annex B, B-frames, no container clock) broadcast over fstream
/// and played as MPEG-TS over HTTP (`/<user>/<channel>.ts`, the hub's shared conversion): every
/// frame, timestamps at the SPS frame rate in presentation order, decodes cleanly.
#[test]
fn an_annex_b_broadcast_plays_as_mpeg_ts_with_every_frame() {
    let hub = Hub::start(USERS);
    let clip = Clip {
        width: 320,
        height: 240,
        fps: 25,
        bframes: 2,
        audio: false,
        gop_secs: 1,
        secs: 4,
    };
    let src = clip.remux("h264");
    let frames = (clip.fps * clip.secs) as usize;
    let out = tmpdir().join("faults-annexb.ts");
    // HTTP/1.0: the body is the stream itself, to the end of the broadcast.
    let http = hub.http.clone();
    let reader = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&http).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(b"GET /fier/ab.ts HTTP/1.0\r\n\r\n").unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).unwrap();
        v
    });
    hub.wait_watchers("fier", "ab", 1);
    let mut b = sh(&format!(
        "'{}' broadcast {} --user fier --password 123 --channel ab < '{}'",
        relay(),
        hub.fstream,
        src.display()
    ));
    let st = wait_deadline(&mut b, WAIT, "broadcast < h264");
    assert!(st.success(), "{}", stderr_of(&mut b));
    let got = reader.join().unwrap();
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&got[..split]);
    // An HTTP/1.0 request gets a close-delimited body (no chunked framing).
    assert!(
        head.starts_with("HTTP/1.1 200")
            && head.contains("video/mp2t")
            && !head.contains("Transfer-Encoding"),
        "{head}"
    );
    std::fs::write(&out, &got[split..]).unwrap();
    let pk = probe_packets(&out);
    let v = video(&pk);
    assert_eq!(v.len(), frames, "{}: video packets", out.display());
    assert!(v[0].key, "starts on a keyframe");
    for p in v.windows(2) {
        assert!(
            p[1].dts > p[0].dts,
            "dts not increasing: {:?} then {:?}",
            p[0],
            p[1]
        );
    }
    let mut pts: Vec<f64> = v.iter().map(|p| p.pts - v[0].dts).collect();
    pts.sort_by(f64::total_cmp);
    let step = 1.0 / f64::from(clip.fps);
    let first = pts[0];
    for (i, t) in pts.iter().enumerate() {
        assert!(
            (t - first - i as f64 * step).abs() < 0.0005,
            "frame {i} in presentation order at {t:.4}, want {:.4}",
            first + i as f64 * step
        );
    }
    assert_decodes_cleanly(&out);
    let ffprobe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    // The stream is listed twice: in its program and on its own.
    assert_eq!(
        String::from_utf8_lossy(&ffprobe.stdout).lines().next(),
        Some(frames.to_string().as_str()),
        "decoded frames; {}",
        String::from_utf8_lossy(&ffprobe.stderr)
    );
}

/// Item 6 of issue 15: the documented policy (README, `river-relay serve --help`): a second
/// broadcaster that authenticates takes the channel over, the first is closed, and watchers keep
/// their connection and continue with the new stream. Here both are `ffmpeg -f flv rtmp://…` on
/// the same key; an RTMP and an http-flv player record the whole broadcast.
#[test]
fn a_second_rtmp_publisher_takes_over_and_players_continue() {
    let hub = Hub::start(USERS);
    let src = clip(8).flv();
    let s = path_str(&src);
    let dir = tmpdir();
    let url = format!("rtmp://{}/fier/tk?user-password=123", hub.rtmp);
    let o_rtmp = dir.join("faults-takeover-rtmp.flv");
    let o_http = dir.join("faults-takeover-http.flv");
    let mut r = ffmpeg_bg(&[
        "-i",
        &format!("rtmp://{}/fier/tk", hub.rtmp),
        "-c",
        "copy",
        "-f",
        "flv",
        &path_str(&o_rtmp),
    ]);
    let mut h = ffmpeg_bg(&[
        "-i",
        &format!("http://{}/fier/tk.flv", hub.http),
        "-c",
        "copy",
        "-f",
        "flv",
        &path_str(&o_http),
    ]);
    hub.wait_watchers("fier", "tk", 2);
    let mut first = ffmpeg_bg(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &url]);
    hub.log.wait_for("channel fier/tk: FLV content", "the hub");
    std::thread::sleep(Duration::from_millis(2500));
    let mut second = ffmpeg_bg(&["-re", "-i", &s, "-c", "copy", "-f", "flv", &url]);
    hub.log.wait_for("takes over channel fier/tk", "the hub");
    let st = wait_deadline(&mut first, WAIT, "the first publisher");
    let first_err = stderr_of(&mut first);
    assert!(
        !st.success() && first_err.contains("Broken pipe"),
        "the first publisher was closed: {first_err}"
    );
    hub.log
        .wait_for("closed: replaced by a new broadcaster", "the hub");
    let st = wait_deadline(&mut second, WAIT, "the second publisher");
    assert!(st.success(), "second publisher: {}", stderr_of(&mut second));
    for (c, out) in [(&mut r, &o_rtmp), (&mut h, &o_http)] {
        let st = wait_deadline(c, WAIT, "player");
        let err = stderr_of(c);
        assert!(st.success() && err.is_empty(), "{}: {err}", out.display());
        // One timeline: the first stream until the takeover, then all of the second (its
        // watchers were waiting for it from its first byte), every step one frame (40 ms; at the
        // join, the audio's last frame ends up to 23 ms later).
        let pk = probe_packets(out);
        let v = video(&pk);
        assert!(
            v.len() >= 200 + 50,
            "{}: {} video packets",
            out.display(),
            v.len()
        );
        one_timeline(&v, &out.display().to_string());
        assert_decodes_cleanly(out);
    }
}

/// Shrinks a socket's receive buffer to 4 KiB (the kernel doubles it): a reader that stops now
/// leaves little room in the kernel.
fn shrink_receive_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on our own socket with a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
}

/// An RTMP player over a raw socket: handshake, connect, createStream, play `app/name`; returns
/// once the hub answered NetStream.Play.Start.
fn rtmp_play(addr: &str, app: &str, name: &str) -> TcpStream {
    use amf::amf0::Value;
    use river::proto::rtmp::handshake::{client_c0c1, client_c2, HANDSHAKE_SIZE};
    use river::proto::rtmp::message::object;
    use river::proto::rtmp::{ChunkWriter, Command as Cmd};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&client_c0c1(0)).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
    s.read_exact(&mut s0s1s2).unwrap();
    let mut out = client_c2(&s0s1s2);
    let mut w = ChunkWriter::new();
    let connect = object(vec![
        ("app", Value::String(app.into())),
        ("tcUrl", Value::String(format!("rtmp://{addr}/{app}"))),
    ]);
    w.write(
        3,
        20,
        0,
        0,
        &Cmd::encode("connect", 1.0, &[connect]),
        &mut out,
    );
    w.write(
        3,
        20,
        0,
        0,
        &Cmd::encode("createStream", 2.0, &[Value::Null]),
        &mut out,
    );
    let play = [Value::Null, Value::String(name.into())];
    w.write(8, 20, 1, 0, &Cmd::encode("play", 3.0, &play), &mut out);
    s.write_all(&out).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(20).any(|w| w == b"NetStream.Play.Start") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the hub closed the RTMP player");
        got.extend_from_slice(&buf[..n]);
    }
    s
}

/// Item 7 of issue 15: an RTMP player that completes the handshake and play, then stops reading
/// (a raw client, its receive buffer shrunk to 4 KiB) once the broadcast is known to be real time, against
/// a 40 Mbit/s stream: the hub's memory stays bounded, the stuck player skips and is dropped after
/// --max-behind with a log line naming it, and a healthy RTMP player (ffmpeg) beside it gets every
/// frame without a gap.
#[test]
fn a_stuck_rtmp_player_is_dropped_and_a_healthy_one_gets_every_frame() {
    let hub = Hub::start_with(
        USERS,
        &[
            "--queue-bytes",
            "2MiB",
            "--queue-time",
            "1s",
            "--max-behind",
            "2s",
        ],
    );
    // Lossless x264 of a noisy picture: about 5 MB/s, so a stuck player is far behind at once.
    let src = tmpdir().join("faults-heavy-640x360-8s.flv");
    if !src.exists() {
        let tmp = tmpdir().join("faults-heavy.tmp.flv");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=8,noise=alls=6:allf=t",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=8",
            "-threads",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-g",
            "25",
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-bitexact",
            "-f",
            "flv",
            &path_str(&tmp),
        ]);
        std::fs::rename(&tmp, &src).unwrap();
    }
    let size = std::fs::metadata(&src).unwrap().len();
    let want = video(&probe_packets(&src)).len();
    let o_good = tmpdir().join("faults-stuck-good.flv");
    let play = format!("rtmp://{}/fier/heavy", hub.rtmp);
    let mut good = ffmpeg_bg(&["-i", &play, "-c", "copy", "-f", "flv", &path_str(&o_good)]);
    let mut stuck = rtmp_play(&hub.rtmp, "fier", "heavy");
    let stuck_peer = peer_of(&stuck);
    hub.wait_watchers("fier", "heavy", 2);
    let base_rss = hub.rss_kib();
    let url = format!("rtmp://{}/fier/heavy?user-password=123", hub.rtmp);
    let mut p = ffmpeg_bg(&[
        "-re",
        "-i",
        &path_str(&src),
        "-c",
        "copy",
        "-f",
        "flv",
        &url,
    ]);
    // The stuck player reads until the hub knows the broadcast is real time (2 s of media), then
    // stops.
    stuck
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut read = 0;
    let start = Instant::now();
    while !hub.log.contains("channel fier/heavy: real time") {
        assert!(
            start.elapsed() < WAIT,
            "never real time:\n{}",
            hub.log.text()
        );
        if let Ok(n) = stuck.read(&mut buf) {
            read += n;
        }
    }
    shrink_receive_buffer(&stuck);
    let mut max_rss = 0;
    while p.try_wait().unwrap().is_none() {
        max_rss = max_rss.max(hub.rss_kib());
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = wait_deadline(&mut p, WAIT, "publisher");
    assert!(st.success(), "publisher: {}", stderr_of(&mut p));
    let st = wait_deadline(&mut good, WAIT, "healthy player");
    assert!(st.success(), "healthy player: {}", stderr_of(&mut good));
    let growth = max_rss.saturating_sub(base_rss);
    eprintln!("the stuck player read {read} bytes; {size} bytes broadcast; hub RSS {base_rss} KiB before, {max_rss} KiB peak (+{growth} KiB)");
    let line = hub.log.wait_for(
        &format!("{stuck_peer}: closed: slow watcher of fier/heavy"),
        "the hub",
    );
    assert!(line.ends_with("behind for too long"), "{line}");
    // The stuck player's 2 MiB queue, the channel's GOP cache (a 1 s GOP: about 5 MB here), the
    // RTMP session's 256 KiB and the healthy player's queue: far below the 40 MB broadcast.
    assert!(
        growth < 20 * 1024,
        "hub RSS grew by {growth} KiB\n{}",
        hub.log.text()
    );
    let pk = probe_packets(&o_good);
    let v = video(&pk);
    assert_eq!(
        v.len(),
        want,
        "the healthy player got every frame\n{}",
        hub.log.text()
    );
    for p in v.windows(2) {
        assert!(
            (p[1].dts - p[0].dts - 0.04).abs() < 0.0015,
            "a gap: {:?} then {:?}",
            p[0],
            p[1]
        );
    }
    assert_decodes_cleanly(&o_good);
    drop(stuck);
}
