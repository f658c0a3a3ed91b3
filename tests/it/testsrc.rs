//! river-testsrc against real ffmpeg/ffprobe.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Runs river-testsrc with `args`; asserts success; returns stdout saved to a temp file.
fn testsrc(args: &[&str], name: &str) -> (std::path::PathBuf, Out) {
    let out = run(&river("river-testsrc"), args, b"");
    assert!(
        out.status.success(),
        "river-testsrc {args:?} failed ({}): {}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("warning") && !out.stderr.contains("error"),
        "river-testsrc {args:?}: unexpected stderr: {}",
        out.stderr
    );
    (write_tmp(name, &out.stdout), out)
}

/// Steps between consecutive DTS of one track, in seconds.
fn steps(p: &[Packet], kind: &str) -> Vec<f64> {
    let d: Vec<f64> = p.iter().filter(|q| q.kind == kind).map(|q| q.dts).collect();
    d.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn ten_seconds_in_every_format_decode_with_continuous_timestamps() {
    for (format, ext) in [("ts", "ts"), ("flv", "flv"), ("h264", "h264")] {
        let (path, _) = testsrc(
            &["--format", format, "--duration", "10s"],
            &format!("testsrc-10s.{ext}"),
        );
        assert_decodes_cleanly(&path);
        let streams = probe_streams(&path);
        let codecs: Vec<&str> = streams.iter().map(|s| s.codec.as_str()).collect();
        if format == "h264" {
            assert_eq!(codecs, ["h264"], "{format}");
        } else {
            assert_eq!(codecs, ["h264", "aac"], "{format}");
            // 10 s of 1024-sample frames at 32 kHz: the 313 frames that start before 10 s.
            assert_eq!(streams[1].packets, 313, "{format}: audio frames");
        }
        assert_eq!(streams[0].packets, 300, "{format}: video frames");
        assert_eq!(
            (streams[0].width, streams[0].height),
            (Some(640), Some(360)),
            "{format}"
        );

        let p = probe_packets(&path);
        let video: Vec<&Packet> = p.iter().filter(|q| q.kind == "video").collect();
        assert_eq!(video.len(), 300);
        // A keyframe every second (every 30th frame), each loop (every 120th) included.
        for (i, q) in video.iter().enumerate() {
            assert_eq!(
                q.key,
                i % 30 == 0,
                "{format}: video packet {i} keyframe flag"
            );
        }
        if format == "h264" {
            continue; // raw Annex B carries no timestamps to check
        }
        // Monotonic, evenly spaced DTS on both tracks, across the loop seams at 4 s and 8 s: every
        // step is one frame (FLV rounds to milliseconds, so allow 1 ms there).
        let tol = if format == "flv" { 0.0011 } else { 0.0001 };
        for (kind, step) in [("video", 1.0 / 30.0), ("audio", 0.032)] {
            for (i, s) in steps(&p, kind).iter().enumerate() {
                assert!(
                    (s - step).abs() <= tol,
                    "{format}: {kind} step {i} is {s:.6} s, want {step:.6} s"
                );
            }
        }
        for q in &p {
            assert!(q.pts >= q.dts - 1e-9, "{format}: pts < dts");
        }
        // Keyframes exactly one second apart; audio and video start together.
        let v0 = video[0].dts;
        for (k, q) in video.iter().filter(|q| q.key).enumerate() {
            assert!(
                (q.dts - v0 - k as f64).abs() <= tol,
                "{format}: keyframe {k} at {:.6} s",
                q.dts - v0
            );
        }
        let a0 = p.iter().find(|q| q.kind == "audio").unwrap().dts;
        assert!((a0 - v0).abs() <= tol, "{format}: audio starts with video");
        let v_last = video.last().unwrap().dts - v0;
        assert!(
            (v_last - 299.0 / 30.0).abs() <= tol,
            "{format}: last video dts"
        );
    }
}

#[test]
fn realtime_paces_to_the_wall_clock() {
    // A functional check with a generous upper bound, not a benchmark.
    let start = Instant::now();
    let (path, _) = testsrc(
        &["--realtime", "--duration", "2s", "--format", "flv"],
        "testsrc-realtime.flv",
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(10),
        "--realtime --duration 2s took {took:?}"
    );
    assert_decodes_cleanly(&path);
    assert_eq!(probe_streams(&path)[0].packets, 60);
    // Without --realtime the same 2 s come out at once (well under the media time).
    let start = Instant::now();
    testsrc(&["--duration", "20s"], "testsrc-fast.ts");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "20 s of media without --realtime took {:?}",
        start.elapsed()
    );
}

#[test]
fn output_feeds_river_muxers() {
    // Annex B from river-testsrc through river-mux-ts: the frame rate comes from the SPS.
    let h264 = run(&river("river-testsrc"), &["-f", "h264", "-t", "5s"], b"");
    assert!(h264.status.success(), "{}", h264.stderr);
    let ts = run(&river("river-mux-ts"), &[], &h264.stdout);
    assert!(ts.status.success(), "{}", ts.stderr);
    let path = write_tmp("testsrc-annexb-remux.ts", &ts.stdout);
    assert_decodes_cleanly(&path);
    let p = probe_packets(&path);
    assert_eq!(p.iter().filter(|q| q.kind == "video").count(), 150);
    for s in steps(&p, "video") {
        assert!((s - 1.0 / 30.0).abs() < 0.0001, "step {s}");
    }
    // TS from river-testsrc through river-mux-flv keeps every frame and its timing.
    let src = run(&river("river-testsrc"), &["-t", "9s"], b"");
    let flv = run(&river("river-mux-flv"), &[], &src.stdout);
    assert!(flv.status.success(), "{}", flv.stderr);
    let path = write_tmp("testsrc-ts-remux.flv", &flv.stdout);
    assert_decodes_cleanly(&path);
    let s = probe_streams(&path);
    assert_eq!((s[0].packets, s[1].packets), (270, 282));
}

fn spawn_testsrc(args: &[&str]) -> std::process::Child {
    Command::new(river("river-testsrc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn closed_downstream_pipe_is_a_quiet_exit() {
    for extra in [&[][..], &["--realtime"][..]] {
        // Endless: only the closed pipe can end it.
        let mut args = vec!["--format", "ts"];
        args.extend_from_slice(extra);
        let mut child = spawn_testsrc(&args);
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 4096];
        stdout.read_exact(&mut first).unwrap();
        assert_eq!(first[0], 0x47);
        drop(stdout);
        let status = wait_deadline(&mut child, Duration::from_secs(30), "river-testsrc");
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(0), "{extra:?} stderr: {err}");
        assert!(err.is_empty(), "{extra:?}: quiet: {err}");
    }
}

#[test]
fn sigterm_and_sigint_finish_cleanly() {
    for (sig, code) in [("TERM", 0), ("INT", 130)] {
        let mut child = spawn_testsrc(&["--realtime"]);
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stdout.read_to_end(&mut v);
            v
        });
        std::thread::sleep(Duration::from_millis(1500));
        let ok = Command::new("kill")
            .args(["-s", sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = wait_deadline(&mut child, Duration::from_secs(20), "river-testsrc");
        assert_eq!(status.code(), Some(code), "SIG{sig}");
        let out = reader.join().unwrap();
        assert!(!out.is_empty(), "SIG{sig}: output before the signal");
        assert_eq!(out.len() % 188, 0, "SIG{sig}: whole TS packets only");
        let path = write_tmp(&format!("testsrc-sig{sig}.ts"), &out);
        assert_decodes_cleanly(&path);
        let n = probe_streams(&path)[0].packets;
        assert!(
            (20..=100).contains(&n),
            "SIG{sig}: about 1.5 s of video in real time, got {n} frames"
        );
    }
}

#[test]
fn refuses_to_write_to_a_terminal() {
    let cmd = format!("{} -t 1s", river("river-testsrc").display());
    let out = run_on_terminal(&cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("refusing to write"), "{text}");
}

#[test]
fn help_version_and_usage_errors() {
    let tool = "river-testsrc";
    let out = run(&river(tool), &["--help"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Exit status") && text.contains("--realtime") && text.contains("Examples"),
        "{text}"
    );
    let out = run(&river(tool), &["--version"], b"");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("{tool} ")));
    for bad in [
        &["--bogus"][..],
        &["--format", "mp4"],
        &["--duration", "10x"],
        &["--duration", "0"],
    ] {
        let out = run(&river(tool), bad, b"");
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", out.stderr);
    }
}
