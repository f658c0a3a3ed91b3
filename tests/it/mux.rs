//! river-mux-ts and river-mux-flv against real ffmpeg/ffprobe.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const CLIPS: [Clip; 4] = [
    Clip {
        width: 1280,
        height: 720,
        fps: 30,
        bframes: 3,
        audio: true,
        gop_secs: 1,
        secs: 3,
    },
    Clip {
        width: 160,
        height: 120,
        fps: 30,
        bframes: 0,
        audio: false,
        gop_secs: 4,
        secs: 9,
    },
    Clip {
        width: 160,
        height: 120,
        fps: 30,
        bframes: 3,
        audio: true,
        gop_secs: 4,
        secs: 9,
    },
    Clip {
        width: 1280,
        height: 720,
        fps: 30,
        bframes: 0,
        audio: true,
        gop_secs: 1,
        secs: 2,
    },
];

fn input_of(clip: &Clip, input: &str) -> PathBuf {
    match input {
        "flv" => clip.flv(),
        "ts" => clip.remux("mpegts"),
        "h264" => clip.remux("h264"),
        _ => unreachable!(),
    }
}

/// ffmpeg's own `-c copy` remux of `input` to `format`: the timestamp reference.
fn ffmpeg_reference(input: &Path, format: &str) -> PathBuf {
    let ext = if format == "mpegts" { "ts" } else { format };
    let out = PathBuf::from(format!("{}.ref.{ext}", input.display()));
    if !out.exists() {
        let tmp = PathBuf::from(format!("{}.ref.tmp.{ext}", input.display()));
        ffmpeg(&[
            "-i",
            &input.to_string_lossy(),
            "-c",
            "copy",
            "-f",
            format,
            &tmp.to_string_lossy(),
        ]);
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

fn mux(tool: &str, input: &Path, out_name: &str, extra: &[&str]) -> (PathBuf, String) {
    let data = std::fs::read(input).unwrap();
    let out = run(&river(tool), extra, &data);
    assert!(
        out.status.success(),
        "{tool} on {} failed ({}): {}",
        input.display(),
        out.status,
        out.stderr
    );
    (write_tmp(out_name, &out.stdout), out.stderr)
}

/// The whole matrix for one clip: every input form through both muxers.
fn check_clip(clip: Clip) {
    let src = clip.flv();
    let want_streams = probe_streams(&src);
    let src_packets = probe_packets(&src);
    for input in ["flv", "ts", "h264"] {
        let inp = input_of(&clip, input);
        for (tool, ext, fmt) in [
            ("river-mux-ts", "ts", "mpegts"),
            ("river-mux-flv", "flv", "flv"),
        ] {
            let ctx = format!("{} {input} -> {tool}", clip.name());
            let (out, stderr) = mux(
                tool,
                &inp,
                &format!("{}.{input}.river.{ext}", clip.name()),
                &[],
            );
            assert!(
                !stderr.contains("warning"),
                "{ctx}: unexpected warnings:\n{stderr}"
            );
            assert_decodes_cleanly(&out);
            let got = probe_streams(&out);
            let want: Vec<StreamInfo> = if input == "h264" {
                want_streams
                    .iter()
                    .filter(|s| s.codec == "h264")
                    .cloned()
                    .collect()
            } else {
                want_streams.clone()
            };
            assert_eq!(got, want, "{ctx}: streams (codec, size, packet count)");

            let got_p = probe_packets(&out);
            let first_video = got_p.iter().find(|p| p.kind == "video").unwrap();
            assert!(first_video.key, "{ctx}: first video packet is a keyframe");
            // Timestamps: equal to ffmpeg's own remux of the same input, up to a constant offset.
            // Millisecond containers round, so allow 1 ms where FLV is on either side.
            let (reference, tol) = if input == "h264" {
                (src_packets.clone(), 0.0011)
            } else {
                let r = ffmpeg_reference(&inp, fmt);
                let tol = if input == "ts" && ext == "ts" {
                    0.0001
                } else {
                    0.0011
                };
                (probe_packets(&r), tol)
            };
            for kind in ["video", "audio"] {
                if input == "h264" && kind == "audio" {
                    continue;
                }
                assert_same_timestamps(&got_p, &reference, kind, tol, &ctx);
            }
            let keys_got = got_p.iter().filter(|p| p.kind == "video" && p.key).count();
            let keys_src = src_packets
                .iter()
                .filter(|p| p.kind == "video" && p.key)
                .count();
            assert_eq!(keys_got, keys_src, "{ctx}: keyframe count");
        }
    }
}

#[test]
fn clip_720p30_bframes_aac_gop1s() {
    check_clip(CLIPS[0]);
}

#[test]
fn clip_160x120_no_bframes_no_audio_gop4s() {
    check_clip(CLIPS[1]);
}

#[test]
fn clip_160x120_bframes_aac_gop4s() {
    check_clip(CLIPS[2]);
}

#[test]
fn clip_720p30_no_bframes_aac_gop1s() {
    check_clip(CLIPS[3]);
}

#[test]
fn every_keyframe_in_ts_output_is_a_clean_join_point() {
    // Cut river's TS just before the second keyframe (the first packet of a video PES with the
    // random_access_indicator set, plus the PAT/PMT right before it): the tail alone must decode
    // without errors and start on a keyframe.
    let clip = CLIPS[2];
    let (out, _) = mux("river-mux-ts", &clip.flv(), "join.ts", &[]);
    let data = std::fs::read(&out).unwrap();
    let pid = |o: usize| u16::from_be_bytes([data[o + 1] & 0x1f, data[o + 2]]);
    let rai = |o: usize| data[o + 3] & 0x20 != 0 && data[o + 4] > 0 && data[o + 5] & 0x40 != 0;
    let keys: Vec<usize> = (0..data.len() / 188)
        .map(|i| i * 188)
        .filter(|&o| pid(o) == 0x100 && data[o + 1] & 0x40 != 0 && rai(o))
        .collect();
    assert!(keys.len() >= 3, "keyframes with RAI: {}", keys.len());
    for &k in &keys {
        assert!(
            k >= 376 && pid(k - 376) == 0 && pid(k - 188) == 0x1000,
            "PAT, PMT right before the keyframe at {k}"
        );
    }
    let tail = write_tmp("join-tail.ts", &data[keys[1] - 376..]);
    assert_decodes_cleanly(&tail);
    let p = probe_packets(&tail);
    assert!(p.iter().find(|p| p.kind == "video").unwrap().key);
}

#[test]
fn wrapped_ts_timestamps_come_out_monotonic() {
    // ffmpeg writes timestamps modulo 2^33; starting 2 s before the wrap crosses it.
    let clip = CLIPS[2];
    let wrap = tmpdir().join("wrap.ts");
    let offset = format!("{:.3}", (1u64 << 33) as f64 / 90000.0 - 2.0);
    ffmpeg(&[
        "-i",
        &clip.flv().to_string_lossy(),
        "-c",
        "copy",
        "-output_ts_offset",
        &offset,
        "-f",
        "mpegts",
        &wrap.to_string_lossy(),
    ]);
    for (tool, ext) in [("river-mux-flv", "flv"), ("river-mux-ts", "ts")] {
        let (out, stderr) = mux(tool, &wrap, &format!("wrap.out.{ext}"), &["-v"]);
        assert_decodes_cleanly(&out);
        let p = probe_packets(&out);
        assert_monotonic(&p, tool);
        let src = probe_packets(&clip.flv());
        assert_eq!(p.len(), src.len(), "{tool}: packet count");
        let total = p.iter().map(|p| p.dts).fold(f64::MIN, f64::max)
            - p.iter().map(|p| p.dts).fold(f64::MAX, f64::min);
        assert!(
            total < clip.secs as f64 + 1.0,
            "{tool}: no giant gap at the wrap ({total} s)"
        );
        assert!(
            stderr.contains("1 wraps") || stderr.contains("2 wraps"),
            "{tool}: wrap counted: {stderr}"
        );
    }
}

fn assert_monotonic(p: &[Packet], ctx: &str) {
    for kind in ["video", "audio"] {
        let mut last = f64::MIN;
        for (i, q) in p.iter().filter(|q| q.kind == kind).enumerate() {
            assert!(
                q.dts > last,
                "{ctx}: {kind} packet {i} dts {} after {}",
                q.dts,
                last
            );
            assert!(q.pts >= q.dts - 1e-9, "{ctx}: {kind} packet {i} pts < dts");
            last = q.dts;
        }
    }
}

#[test]
fn backward_jump_of_twenty_seconds_is_restamped() {
    // Two recordings concatenated: the second's clock is 20 s behind the first's end.
    let clip = CLIPS[2];
    let a = tmpdir().join("jump-a.ts");
    let b = tmpdir().join("jump-b.ts");
    let src = clip.flv().to_string_lossy().to_string();
    ffmpeg(&[
        "-i",
        &src,
        "-c",
        "copy",
        "-output_ts_offset",
        "30",
        "-f",
        "mpegts",
        &a.to_string_lossy(),
    ]);
    ffmpeg(&[
        "-i",
        &src,
        "-c",
        "copy",
        "-f",
        "mpegts",
        &b.to_string_lossy(),
    ]);
    let mut joined = std::fs::read(&a).unwrap();
    joined.extend(std::fs::read(&b).unwrap());
    let input = write_tmp("jump.ts", &joined);
    for (tool, ext) in [("river-mux-flv", "flv"), ("river-mux-ts", "ts")] {
        let (out, stderr) = mux(tool, &input, &format!("jump.out.{ext}"), &[]);
        assert!(
            stderr.contains("jumped"),
            "{tool}: the jump is reported: {stderr}"
        );
        assert_decodes_cleanly(&out);
        let p = probe_packets(&out);
        assert_monotonic(&p, tool);
        let n_src = probe_packets(&clip.flv()).len();
        assert_eq!(p.len(), 2 * n_src, "{tool}: both halves kept");
        let span = p.iter().map(|p| p.dts).fold(f64::MIN, f64::max)
            - p.iter().map(|p| p.dts).fold(f64::MAX, f64::min);
        assert!(
            span < 2.0 * clip.secs as f64 + 1.0,
            "{tool}: re-stamped, not a 30 s gap ({span} s)"
        );
    }
}

#[test]
fn truncated_input_keeps_what_arrived() {
    let clip = CLIPS[0];
    for (input, cut) in [("flv", 0.6), ("ts", 0.5), ("h264", 0.7)] {
        let data = std::fs::read(input_of(&clip, input)).unwrap();
        let n = (data.len() as f64 * cut) as usize + 7;
        let inp = write_tmp(&format!("trunc.{input}"), &data[..n]);
        let (out, stderr) = mux("river-mux-ts", &inp, &format!("trunc.{input}.ts"), &[]);
        // An Annex B NAL unit has no length: a cut one cannot be told from a whole one, so its
        // last frame may not decode. FLV and TS cuts are detected and the damaged frame dropped.
        if input != "h264" {
            assert_decodes_cleanly(&out);
        }
        let got = probe_packets(&out)
            .iter()
            .filter(|p| p.kind == "video")
            .count();
        let all = probe_packets(&clip.flv())
            .iter()
            .filter(|p| p.kind == "video")
            .count();
        assert!(
            got as f64 >= all as f64 * cut - 3.0,
            "{input}: kept {got} of {all} frames"
        );
        if input == "flv" {
            // The cut tag is named by its own offset.
            let cut_tag = flv_tag_offsets(&data)
                .into_iter()
                .rfind(|&t| t < n)
                .unwrap();
            assert!(
                stderr.contains("warning: stdin: truncated tag: header announces")
                    && stderr.contains(&format!("missing (at byte offset {cut_tag})")),
                "{input}: truncation reported at the cut tag's offset {cut_tag}: {stderr}"
            );
        }
    }
}

#[test]
fn garbage_between_units_is_skipped_with_its_offset() {
    let clip = CLIPS[2];
    for (input, tool) in [
        ("ts", "river-mux-flv"),
        ("flv", "river-mux-ts"),
        ("h264", "river-mux-ts"),
    ] {
        let data = std::fs::read(input_of(&clip, input)).unwrap();
        // 1000 bytes of noise at a packet/tag boundary near the middle (for TS a packet boundary;
        // for the others wherever it lands, which is the harder case).
        let at = if input == "ts" {
            (data.len() / 2) / 188 * 188
        } else {
            data.len() / 2
        };
        let mut bad = data[..at].to_vec();
        // For Annex B, where a NAL unit has no length, "garbage between units" is a start code
        // followed by bytes that are no NAL unit (forbidden_zero_bit set).
        if input == "h264" {
            bad.extend_from_slice(&[0, 0, 0, 1, 0xff]);
        }
        let mut x: u32 = 12345;
        for _ in 0..1000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            bad.push((x >> 16) as u8 | 1);
        }
        bad.extend_from_slice(&data[at..]);
        let inp = write_tmp(&format!("garbage.{input}"), &bad);
        let out = run(&river(tool), &[], &bad);
        assert!(out.status.success(), "{input}: {}", out.stderr);
        // The warning names where the damage starts: for TS the first garbage byte; for FLV the
        // tag the garbage landed in (its size no longer leads to a tag) and the next whole tag,
        // 1000 bytes later than in the source; for Annex B the NAL header with its
        // forbidden_zero_bit set, after the 4-byte start code.
        let want = match input {
            "ts" => {
                format!("skipped 1000 bytes to the next confirmed sync byte (at byte offset {at})")
            }
            "flv" => {
                let tags = flv_tag_offsets(&data);
                let hit = tags.iter().rev().find(|&&t| t <= at).unwrap();
                let next = tags.iter().find(|&&t| t > at).unwrap();
                format!(
                    "tag at offset {hit}, and no tag header follows it; skipped {} bytes, resynchronised at offset {} (at byte offset {hit})",
                    next + 1000 - hit,
                    next + 1000
                )
            }
            _ => format!("1111 bytes of garbage skipped (at byte offset {})", at + 4),
        };
        let warnings: Vec<&str> = out.stderr.lines().collect();
        assert!(
            warnings.len() == 1 && warnings[0].ends_with(&want),
            "{input}: want one warning ending {want:?}, got:\n{}",
            out.stderr
        );
        let o = write_tmp(&format!("garbage.{input}.out"), &out.stdout);
        let got = probe_packets(&o)
            .iter()
            .filter(|p| p.kind == "video")
            .count();
        let all = probe_packets(&clip.flv())
            .iter()
            .filter(|p| p.kind == "video")
            .count();
        assert!(
            got + 70 >= all,
            "{input}: only a GOP's worth may be lost: {got} of {all}"
        );
        let _ = inp;
    }
}

#[test]
fn ts_continuity_errors_are_reported() {
    let clip = CLIPS[2];
    let data = std::fs::read(clip.remux("mpegts")).unwrap();
    // Drop every 50th packet.
    let bad: Vec<u8> = data
        .chunks(188)
        .enumerate()
        .filter(|(i, _)| i % 50 != 49)
        .flat_map(|(_, c)| c.to_vec())
        .collect();
    let out = run(&river("river-mux-flv"), &[], &bad);
    assert!(out.status.success(), "{}", out.stderr);
    // Each dropped packet with a payload is a gap seen at the next packet of its PID, named by
    // that packet's offset in the damaged stream. river follows the PAT, the PMT and the two
    // elementary streams ffmpeg writes (0x0, 0x1000, 0x100, 0x101); the SDT (0x11) is not read.
    let mut want = std::collections::BTreeSet::new();
    let mut lost = std::collections::HashSet::new();
    let mut at = 0usize;
    for (i, p) in data.chunks(188).enumerate() {
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        let payload = p[3] & 0x10 != 0;
        if i % 50 == 49 {
            if payload && [0, 0x1000, 0x100, 0x101].contains(&pid) {
                lost.insert(pid);
            }
            continue;
        }
        if payload && lost.remove(&pid) {
            want.insert((pid, at));
        }
        at += 188;
    }
    let got: std::collections::BTreeSet<(u16, usize)> = out
        .stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split("continuity counter gap on pid 0x").nth(1)?;
            let pid = u16::from_str_radix(rest.split(':').next()?, 16).ok()?;
            let off = rest.split("(at byte offset ").nth(1)?.trim_end_matches(')');
            Some((pid, off.parse().ok()?))
        })
        .collect();
    assert!(want.len() > 40, "{} gaps made", want.len());
    assert_eq!(
        got, want,
        "continuity gaps by (pid, offset): {}",
        out.stderr
    );
    // The AAC damage those gaps cause is named by the input offset of the audio PES that holds
    // the skipped bytes: a truncated one, or the one after it when the cut frame's length ran on
    // into it. Never an offset in the audio elementary stream.
    let offset = |l: &str| -> u64 {
        let o = l.rsplit("(at byte offset ").next().unwrap();
        o.trim_end_matches(')').parse().unwrap()
    };
    let audio_pes: Vec<u64> = bad
        .chunks(188)
        .enumerate()
        .filter(|(_, p)| u16::from_be_bytes([p[1] & 0x1f, p[2]]) == 0x101 && p[1] & 0x40 != 0)
        .map(|(i, _)| i as u64 * 188)
        .collect();
    let mut damaged = Vec::new();
    for l in out
        .stderr
        .lines()
        .filter(|l| l.contains("pes on pid 0x101 truncated"))
    {
        let at = offset(l);
        damaged.push(at);
        damaged.extend(audio_pes.iter().find(|&&o| o > at));
    }
    let adts: Vec<&str> = out.stderr.lines().filter(|l| l.contains("adts")).collect();
    assert!(!adts.is_empty(), "{}", out.stderr);
    for l in adts {
        assert!(
            l.contains("into the audio PES on pid 0x101") && damaged.contains(&offset(l)),
            "{l}\nnot at a damaged audio PES or the next: {damaged:?}"
        );
    }
    assert!(!out.stdout.is_empty());
}

/// Offsets of the tags of a well-formed FLV.
fn flv_tag_offsets(data: &[u8]) -> Vec<usize> {
    let mut off = 13usize;
    let mut tags = Vec::new();
    while off + 11 <= data.len() {
        let size = u32::from_be_bytes([0, data[off + 1], data[off + 2], data[off + 3]]) as usize;
        tags.push(off);
        off += 11 + size + 4;
    }
    tags
}

#[test]
fn broken_flv_tag_size_is_reported_and_resynced() {
    let clip = CLIPS[2];
    let mut data = std::fs::read(clip.flv()).unwrap();
    // Find a video tag header in the middle and corrupt its DataSize.
    let tags = flv_tag_offsets(&data);
    let victim = tags[tags.len() / 2];
    data[victim + 1] = 0xff;
    data[victim + 2] = 0xff;
    let out = run(&river("river-mux-ts"), &[], &data);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("offset {victim}")),
        "the broken tag's offset {victim} is named: {}",
        out.stderr
    );
    let o = write_tmp("broken-tag.ts", &out.stdout);
    let got = probe_packets(&o)
        .iter()
        .filter(|p| p.kind == "video")
        .count();
    let all = probe_packets(&clip.flv())
        .iter()
        .filter(|p| p.kind == "video")
        .count();
    assert!(
        got + 5 >= all,
        "tags after the damage still come out: {got} of {all}"
    );
}

#[test]
fn non_media_input_is_an_error() {
    let noise: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
        .collect();
    for tool in ["river-mux-ts", "river-mux-flv"] {
        let out = run(&river(tool), &[], &noise);
        assert_eq!(out.status.code(), Some(1), "{tool}: {}", out.stderr);
        let last = out.stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with(&format!("{tool}: error: ")),
            "{tool}: one-line error: {}",
            out.stderr
        );
    }
    // Empty input is not an error: nothing in, nothing out.
    let out = run(&river("river-mux-ts"), &[], b"");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn help_version_and_usage_errors() {
    for tool in ["river-mux-ts", "river-mux-flv"] {
        let out = run(&river(tool), &["--help"], b"");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Exit status") && text.contains("--input-format"),
            "{text}"
        );
        let out = run(&river(tool), &["--version"], b"");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("{tool} ")));
        let out = run(&river(tool), &["--bogus"], b"");
        assert_eq!(out.status.code(), Some(2));
        let out = run(&river(tool), &["--fps", "0"], b"");
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn refuses_to_write_to_a_terminal() {
    // `script` gives the child a pseudo-terminal as stdout.
    let cmd = format!("{} < /dev/null", river("river-mux-ts").display());
    let out = run_on_terminal(&cmd);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("refusing to write"));
}

#[test]
fn closed_downstream_pipe_is_a_quiet_exit() {
    let clip = CLIPS[0];
    let data = std::fs::read(clip.flv()).unwrap();
    let mut child = Command::new(river("river-mux-ts"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = wait_deadline(&mut child, DEADLINE, "river-mux-ts");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = writer.join();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("error"), "quiet: {err}");
}

/// Starts a muxer fed through a pipe we keep open; returns the child and a reader thread's output.
fn live_child(tool: &str) -> (std::process::Child, std::sync::mpsc::Receiver<Vec<u8>>) {
    let mut child = Command::new(river(tool))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (child, rx)
}

#[test]
fn output_streams_before_input_ends() {
    // Feed the first half of an FLV and keep the pipe open: the TS for it must come out now, not at
    // EOF. (Functional check with a generous deadline, not a timing benchmark.)
    let clip = CLIPS[2];
    let data = std::fs::read(clip.flv()).unwrap();
    let (mut child, rx) = live_child("river-mux-ts");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..data.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < data.len() / 3 && start.elapsed() < Duration::from_secs(20) {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            got.extend(chunk);
        }
    }
    assert!(
        got.len() >= data.len() / 3,
        "only {} bytes of TS out after half the input ({} bytes) with the pipe still open",
        got.len(),
        data.len() / 2
    );
    drop(stdin);
    let status = wait_deadline(&mut child, DEADLINE, "river-mux-ts");
    assert!(status.success());
}

#[test]
fn sigterm_and_sigint_finish_cleanly() {
    let clip = CLIPS[2];
    let data = std::fs::read(clip.flv()).unwrap();
    for (sig, code) in [(libc_sig("TERM"), 0), (libc_sig("INT"), 130)] {
        let (mut child, rx) = live_child("river-mux-ts");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&data[..data.len() / 2]).unwrap();
        stdin.flush().unwrap();
        // Wait until output flows, then signal while stdin is still open.
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("output before the signal");
        std::thread::sleep(Duration::from_millis(200));
        let ok = Command::new("kill")
            .args(["-s", sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = wait_deadline(
            &mut child,
            Duration::from_secs(20),
            "river-mux-ts after signal",
        );
        assert_eq!(status.code(), Some(code), "SIG{sig}");
        let mut out = first;
        while let Ok(c) = rx.recv_timeout(Duration::from_secs(2)) {
            out.extend(c);
        }
        assert_eq!(out.len() % 188, 0, "SIG{sig}: whole TS packets only");
        let o = write_tmp(&format!("sig{sig}.ts"), &out);
        assert_decodes_cleanly(&o);
        drop(stdin);
    }
}

fn libc_sig(name: &str) -> &str {
    name
}
