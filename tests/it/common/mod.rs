//! Shared helpers for the integration tests: real binaries, real ffmpeg/ffprobe, deadlines on every
//! wait, loopback only.
#![allow(dead_code)]

pub mod browser;
pub mod hooks;
pub mod hub;
pub mod nginx;
pub mod playlist;
pub mod rtsp;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(120);

/// Path of a river binary built for this test run.
pub fn river(tool: &str) -> PathBuf {
    match tool {
        "river-mux-ts" => PathBuf::from(env!("CARGO_BIN_EXE_river-mux-ts")),
        "river-mux-flv" => PathBuf::from(env!("CARGO_BIN_EXE_river-mux-flv")),
        "river-hls-seg" => PathBuf::from(env!("CARGO_BIN_EXE_river-hls-seg")),
        "river-testsrc" => PathBuf::from(env!("CARGO_BIN_EXE_river-testsrc")),
        "river-thumb" => PathBuf::from(env!("CARGO_BIN_EXE_river-thumb")),
        "river-rtmp-in" => PathBuf::from(env!("CARGO_BIN_EXE_river-rtmp-in")),
        "river-rtsp-pull" => PathBuf::from(env!("CARGO_BIN_EXE_river-rtsp-pull")),
        "river-relay" => PathBuf::from(env!("CARGO_BIN_EXE_river-relay")),
        other => panic!("unknown tool {other}"),
    }
}

/// Fails (never skips) when a peer program is missing, with the install hint.
pub fn require(program: &str) {
    let ok = Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{program} is required for this test but was not found; install it with `apt-get install -y ffmpeg` (Debian) or run .ci/run"
    );
}

/// Fails (never skips) when `program` is missing (it must answer `--version`), naming the
/// install command.
pub fn require_with(program: &str, install: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{program} is required for this test but was not found; install it with `{install}` or run .ci/run"
    );
}

/// Runs a shell command line with a pseudo-terminal as its stdout (via util-linux `script`) and
/// returns what the terminal showed in `stdout`.
pub fn run_on_terminal(cmdline: &str) -> Out {
    let ok = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`script` (util-linux) is required: apt-get install -y bsdutils"
    );
    run(Path::new("script"), &["-qec", cmdline, "/dev/null"], b"")
}

pub struct Out {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Waits for a child with a deadline; kills it and panics when the deadline passes.
pub fn wait_deadline(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (with a deadline) for a child from `rtsp::spawn_quiet`; panics with its stderr if it failed.
/// Returns its stderr.
pub fn finish(mut c: Child, what: &str) -> String {
    let st = wait_deadline(&mut c, hub::WAIT * 2, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(st.success(), "{what} failed ({st}): {err}");
    err
}

/// [`finish`], with `log` (the hub's) in the panic message when the child failed.
pub fn finish_or_show(mut c: Child, what: &str, log: &hub::Log) -> String {
    let st = wait_deadline(&mut c, hub::WAIT * 2, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(
        st.success(),
        "{what} failed ({st}): {err}\nhub log:\n{}",
        log.text()
    );
    err
}

/// Polls `done` every 10 ms until it holds; panics naming `what` after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a program with `input` on stdin, collecting stdout and stderr, under a deadline.
pub fn run(program: &Path, args: &[&str], input: &[u8]) -> Out {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let r1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let r2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });
    let status = wait_deadline(&mut child, DEADLINE, &program.display().to_string());
    let _ = writer.join();
    Out {
        status,
        stdout: r1.join().unwrap(),
        stderr: r2.join().unwrap(),
    }
}

pub fn tmpdir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("river-it");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// ffmpeg with arguments; panics with its stderr on failure.
pub fn ffmpeg(args: &[&str]) {
    require("ffmpeg");
    let mut full = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    full.extend_from_slice(args);
    let out = run(Path::new("ffmpeg"), &full, b"");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        out.stderr
    );
}

/// A lavfi test clip. Every field goes into the file name, so a changed recipe makes a new file.
#[derive(Clone, Copy, Debug)]
pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bframes: u32,
    pub audio: bool,
    pub gop_secs: u32,
    pub secs: u32,
}

impl Clip {
    pub fn name(&self) -> String {
        format!(
            "{}x{}p{}-bf{}-{}-g{}s-{}s",
            self.width,
            self.height,
            self.fps,
            self.bframes,
            if self.audio { "aac" } else { "noaudio" },
            self.gop_secs,
            self.secs
        )
    }

    /// The source FLV, made by ffmpeg from lavfi (bit-exact, single-threaded).
    pub fn flv(&self) -> PathBuf {
        static LOCK: Mutex<()> = Mutex::new(());
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = tmpdir().join(format!("{}.flv", self.name()));
        if path.exists() {
            return path;
        }
        let tmp = tmpdir().join(format!("{}.tmp.flv", self.name()));
        let video = format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            self.width, self.height, self.fps, self.secs
        );
        let audio = format!(
            "sine=frequency=440:sample_rate=44100:duration={}",
            self.secs
        );
        let g = (self.gop_secs * self.fps).to_string();
        let bf = self.bframes.to_string();
        let tp = tmp.to_string_lossy().to_string();
        let mut args = vec!["-f", "lavfi", "-i", &video];
        if self.audio {
            args.extend_from_slice(&["-f", "lavfi", "-i", &audio]);
        }
        args.extend_from_slice(&[
            "-threads",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "superfast",
            "-bf",
            &bf,
            "-g",
            &g,
            "-keyint_min",
            &g,
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ]);
        if self.audio {
            args.extend_from_slice(&["-c:a", "aac", "-b:a", "96k"]);
        }
        args.extend_from_slice(&["-bitexact", "-f", "flv", &tp]);
        ffmpeg(&args);
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    /// The same media remuxed by ffmpeg to another container (`mpegts`, `h264`, `flv`).
    pub fn remux(&self, format: &str) -> PathBuf {
        static LOCK: Mutex<()> = Mutex::new(());
        let src = self.flv();
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let ext = match format {
            "mpegts" => "ts",
            "h264" => "h264",
            other => other,
        };
        let path = tmpdir().join(format!("{}.ffmpeg.{ext}", self.name()));
        if path.exists() {
            return path;
        }
        let tmp = tmpdir().join(format!("{}.ffmpeg.tmp.{ext}", self.name()));
        let (s, t) = (
            src.to_string_lossy().to_string(),
            tmp.to_string_lossy().to_string(),
        );
        let mut args = vec!["-i", s.as_str()];
        if format == "h264" {
            args.extend_from_slice(&["-an", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb"]);
        } else {
            args.extend_from_slice(&["-c", "copy"]);
        }
        args.extend_from_slice(&["-bitexact", "-f", format, &t]);
        ffmpeg(&args);
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

pub static CLIPS: OnceLock<()> = OnceLock::new();

/// ffprobe's view of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub codec: String,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub packets: u64,
}

/// One packet: (stream codec_type, pts seconds, dts seconds, keyframe).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: String,
    pub pts: f64,
    pub dts: f64,
    pub key: bool,
}

fn ffprobe_json(path: &Path, args: &[&str]) -> serde_json::Value {
    require("ffprobe");
    let p = path.to_string_lossy().to_string();
    let mut full = vec!["-v", "error", "-of", "json"];
    full.extend_from_slice(args);
    full.push(&p);
    let out = run(Path::new("ffprobe"), &full, b"");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        out.stderr
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

/// Streams sorted video first.
pub fn probe_streams(path: &Path) -> Vec<StreamInfo> {
    let v = ffprobe_json(
        path,
        &[
            "-count_packets",
            "-show_entries",
            "stream=codec_name,codec_type,width,height,nb_read_packets",
        ],
    );
    let mut s: Vec<(String, StreamInfo)> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                StreamInfo {
                    codec: s["codec_name"].as_str().unwrap_or("").to_string(),
                    width: s["width"].as_u64(),
                    height: s["height"].as_u64(),
                    packets: s["nb_read_packets"]
                        .as_str()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                },
            )
        })
        .collect();
    s.sort_by(|a, b| b.0.cmp(&a.0));
    s.into_iter().map(|x| x.1).collect()
}

pub fn probe_packets(path: &Path) -> Vec<Packet> {
    let v = ffprobe_json(
        path,
        &["-show_entries", "packet=codec_type,pts_time,dts_time,flags"],
    );
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let f = |k: &str| {
                p[k].as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            Packet {
                kind: p["codec_type"].as_str().unwrap_or("").to_string(),
                pts: f("pts_time"),
                dts: f("dts_time"),
                key: p["flags"].as_str().unwrap_or("").starts_with('K'),
            }
        })
        .collect()
}

/// Every packet of `path` in order: (codec type, dts in the stream's time base, MD5 of the
/// payload), to compare what a player got with its source byte for byte.
pub fn probe_packet_hashes(path: &Path) -> Vec<(String, i64, String)> {
    let v = ffprobe_json(
        path,
        &[
            "-show_data_hash",
            "MD5",
            "-show_entries",
            "packet=codec_type,dts,data_hash",
        ],
    );
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["codec_type"].as_str().unwrap_or("").to_string(),
                p["dts"].as_i64().unwrap_or(i64::MIN),
                p["data_hash"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Decoding `path`'s video and audio to raw outputs (muxers that check no timestamps) must
/// print nothing under `ffmpeg -v error`: decoding errors only, not the null muxer's complaints
/// about frame times that round to one tick. One output per kind of stream the file has (ffmpeg
/// fails an output that maps no stream: "Output file #1 does not contain any stream").
pub fn assert_decodes_without_errors(path: &Path) {
    require("ffmpeg");
    let p = path.to_string_lossy().to_string();
    let streams = ffprobe_json(path, &["-show_entries", "stream=codec_type"]);
    let has = |kind: &str| {
        streams["streams"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["codec_type"] == kind))
    };
    let mut args = vec!["-nostdin", "-v", "error", "-i", &p];
    if has("video") {
        args.extend_from_slice(&["-map", "0:v", "-f", "rawvideo", "-y", "/dev/null"]);
    }
    if has("audio") {
        args.extend_from_slice(&["-map", "0:a", "-f", "s16le", "-y", "/dev/null"]);
    }
    assert!(
        has("video") || has("audio"),
        "{}: no video or audio stream",
        path.display()
    );
    let out = run(Path::new("ffmpeg"), &args, b"");
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "ffmpeg reported errors decoding {}:\n{}",
        path.display(),
        out.stderr
    );
}

/// `ffmpeg -v error -i FILE -f null -` must print nothing.
pub fn assert_decodes_cleanly(path: &Path) {
    require("ffmpeg");
    let p = path.to_string_lossy().to_string();
    let out = run(
        Path::new("ffmpeg"),
        &["-nostdin", "-v", "error", "-i", &p, "-f", "null", "-"],
        b"",
    );
    assert!(
        out.status.success(),
        "ffmpeg failed to decode {}: {}",
        path.display(),
        out.stderr
    );
    assert!(
        out.stderr.trim().is_empty(),
        "ffmpeg reported errors decoding {}:\n{}",
        path.display(),
        out.stderr
    );
}

/// Per-stream packet timestamps of `got` equal those of `want` up to one constant offset per
/// stream (taken from the first packet), within `tol` seconds.
pub fn assert_same_timestamps(got: &[Packet], want: &[Packet], kind: &str, tol: f64, ctx: &str) {
    let g: Vec<&Packet> = got.iter().filter(|p| p.kind == kind).collect();
    let w: Vec<&Packet> = want.iter().filter(|p| p.kind == kind).collect();
    assert_eq!(g.len(), w.len(), "{ctx}: {kind} packet count");
    if g.is_empty() {
        return;
    }
    // Compare in decode order; the offset comes from the first packet's DTS.
    let off = w[0].dts - g[0].dts;
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let dd = (a.dts + off - b.dts).abs();
        let dp = (a.pts + off - b.pts).abs();
        assert!(
            dd <= tol && dp <= tol,
            "{ctx}: {kind} packet {i}: got pts {:.6} dts {:.6}, want pts {:.6} dts {:.6} (offset {off:.6})",
            a.pts,
            a.dts,
            b.pts,
            b.dts
        );
        assert!(a.pts >= a.dts - 1e-9, "{ctx}: {kind} packet {i}: pts < dts");
    }
}

/// Writes bytes to a file in the test temp dir and returns its path.
pub fn write_tmp(name: &str, data: &[u8]) -> PathBuf {
    let p = tmpdir().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// ffmpeg 9 (Enhanced FLV and RTMP, H.265, libx265): the static build PyPI's `imageio-ffmpeg`
/// ships, from the venv `.ci/run` makes (`.ci/venv`), else from `python3` on the PATH. Fails with
/// the install hint when neither has it.
pub fn ffmpeg9() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PATH.get_or_init(|| {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
        let python = if venv.exists() {
            venv
        } else {
            PathBuf::from("python3")
        };
        let out = Command::new(&python)
            .args([
                "-c",
                "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.exists() {
            Ok(p)
        } else {
            Err(format!("{} does not exist", p.display()))
        }
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!(
            "ffmpeg 9 (PyPI imageio-ffmpeg) is required for this test but was not found ({e}); \
             run .ci/run, or: python3 -m venv .ci/venv && .ci/venv/bin/pip install imageio-ffmpeg"
        ),
    }
}

/// ffmpeg 9 with arguments; panics with its stderr on failure.
pub fn ffmpeg9_run(args: &[&str]) {
    let mut full = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    full.extend_from_slice(args);
    let out = run(&ffmpeg9(), &full, b"");
    assert!(
        out.status.success(),
        "ffmpeg 9 {args:?} failed: {}",
        out.stderr
    );
}

/// Every packet of `path` as ffmpeg 9 demuxes it (its `framecrc` of a stream copy: per-stream
/// time base, media type, DTS, PTS and flags), for the containers Debian's ffprobe cannot read
/// (Enhanced FLV).
pub fn probe_packets9(path: &Path) -> Vec<Packet> {
    let p = path.to_string_lossy().to_string();
    let out = run(
        &ffmpeg9(),
        &[
            "-nostdin", "-v", "error", "-i", &p, "-map", "0", "-c", "copy", "-f", "framecrc", "-",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "ffmpeg 9 framecrc {}: {}",
        path.display(),
        out.stderr
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tb: std::collections::HashMap<usize, f64> = Default::default();
    let mut kind: std::collections::HashMap<usize, String> = Default::default();
    let mut packets = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#tb ") {
            let (i, r) = rest.split_once(": ").unwrap();
            let (n, d) = r.split_once('/').unwrap();
            tb.insert(
                i.parse().unwrap(),
                n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap(),
            );
        } else if let Some(rest) = line.strip_prefix("#media_type ") {
            let (i, k) = rest.split_once(": ").unwrap();
            kind.insert(i.parse().unwrap(), k.to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let i: usize = f[0].parse().unwrap();
            let t = tb[&i];
            // Flags are printed only when they differ from "keyframe" (F=0x1).
            let key = f
                .get(6)
                .and_then(|s| s.strip_prefix("F=0x"))
                .is_none_or(|h| u32::from_str_radix(h, 16).unwrap() & 1 != 0);
            packets.push(Packet {
                kind: kind.get(&i).cloned().unwrap_or_default(),
                dts: f[1].parse::<f64>().unwrap() * t,
                pts: f[2].parse::<f64>().unwrap() * t,
                key,
            });
        }
    }
    packets
}

/// ffmpeg 9 decoding `path` (every stream, to the null muxer) must print nothing under
/// `-v error`.
pub fn assert_decodes_cleanly9(path: &Path) {
    let p = path.to_string_lossy().to_string();
    let out = run(
        &ffmpeg9(),
        &["-nostdin", "-v", "error", "-i", &p, "-f", "null", "-"],
        b"",
    );
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "ffmpeg 9 reported errors decoding {}:\n{}",
        path.display(),
        out.stderr
    );
}
