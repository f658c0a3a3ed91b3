//! H.265 through river-mux-ts and river-mux-flv against real peers: Debian's ffmpeg 5.1 (libx265,
//! HEVC in MPEG-TS and Annex B) and ffmpeg 9 (Enhanced FLV). The H.264 counterparts are mux.rs and
//! roundtrip.rs; unsupported tracks (any codec) are here too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use river::codec::{h264, h265};
use river::format::flv;

use crate::common::*;

/// 4 s of 320x240 at 30 fps: x265 with B-frames (bframes=2, b-pyramid), a 1 s open GOP (CRA
/// pictures followed by RASL pictures after the first IDR), AAC.
const SECS: u32 = 4;

fn name() -> String {
    format!("hevc-320x240p30-bf2-opengop1s-aac-{SECS}s")
}

/// The source: MPEG-TS from Debian's ffmpeg (lavfi, libx265, AAC).
fn source_ts() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = tmpdir().join(format!("{}.ts", name()));
    if !path.exists() {
        let tmp = tmpdir().join(format!("{}.tmp.ts", name()));
        let video = format!("testsrc2=size=320x240:rate=30:duration={SECS}");
        let audio = format!("sine=frequency=440:sample_rate=44100:duration={SECS}");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            &audio,
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "bframes=2:keyint=30:min-keyint=30:scenecut=0:open-gop=1:frame-threads=1:pools=none:log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-bitexact",
            "-f",
            "mpegts",
            &tmp.to_string_lossy(),
        ]);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// The source as another input: `flv` (Enhanced FLV by ffmpeg 9) or `h265` (Annex B, video only).
pub(crate) fn input(form: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let src = source_ts();
    if form == "ts" {
        return src;
    }
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = tmpdir().join(format!("{}.{form}", name()));
    if !path.exists() {
        let tmp = tmpdir().join(format!("{}.tmp.{form}", name()));
        let (s, t) = (src.to_string_lossy(), tmp.to_string_lossy());
        match form {
            "flv" => ffmpeg9_run(&["-i", &s, "-c", "copy", "-bitexact", "-f", "flv", &t]),
            "h265" => ffmpeg(&[
                "-i",
                &s,
                "-an",
                "-c:v",
                "copy",
                "-bsf:v",
                "hevc_mp4toannexb",
                "-f",
                "hevc",
                &t,
            ]),
            other => panic!("no input form {other}"),
        }
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// ffmpeg 9's own `-c copy` of `input` to `format`: the timestamp reference.
fn reference(input: &Path, format: &str) -> PathBuf {
    let out = PathBuf::from(format!("{}.ref.{format}", input.display()));
    if !out.exists() {
        let tmp = PathBuf::from(format!("{}.ref.tmp.{format}", input.display()));
        ffmpeg9_run(&[
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

fn mux(tool: &str, input: &[u8], out_name: &str, extra: &[&str]) -> (PathBuf, String) {
    let out = run(&river(tool), extra, input);
    assert!(
        out.status.success(),
        "{tool} {out_name} failed ({}): {}",
        out.status,
        out.stderr
    );
    (write_tmp(out_name, &out.stdout), out.stderr)
}

/// Packets as the right peer reads them: Debian's ffprobe for MPEG-TS, ffmpeg 9 for FLV.
fn packets(path: &Path) -> Vec<Packet> {
    if path.extension().is_some_and(|e| e == "flv") {
        probe_packets9(path)
    } else {
        probe_packets(path)
    }
}

fn decodes_cleanly(path: &Path) {
    if path.extension().is_some_and(|e| e == "flv") {
        assert_decodes_cleanly9(path);
    } else {
        assert_decodes_cleanly(path);
    }
}

/// Every input form through both muxers: decodes cleanly, the same packets with the same
/// timestamps as ffmpeg's own remux (B-frames: PTS ≠ DTS), the same keyframes.
#[test]
fn ts_flv_annexb_through_both_muxers() {
    let src_packets = probe_packets(&source_ts());
    let src_video = src_packets.iter().filter(|p| p.kind == "video").count();
    assert_eq!(src_video, 30 * SECS as usize);
    assert!(
        src_packets
            .iter()
            .any(|p| p.kind == "video" && (p.pts - p.dts).abs() > 0.001),
        "the source has B-frames"
    );
    for form in ["ts", "flv", "h265"] {
        let inp = input(form);
        let data = std::fs::read(&inp).unwrap();
        for (tool, ext) in [("river-mux-ts", "ts"), ("river-mux-flv", "flv")] {
            let ctx = format!("{form} -> {tool}");
            let (out, stderr) = mux(tool, &data, &format!("{}.{form}.river.{ext}", name()), &[]);
            assert!(
                !stderr.contains("warning"),
                "{ctx}: unexpected warnings:\n{stderr}"
            );
            decodes_cleanly(&out);
            let got = packets(&out);
            let video: Vec<&Packet> = got.iter().filter(|p| p.kind == "video").collect();
            assert_eq!(video.len(), src_video, "{ctx}: video packets");
            assert!(video[0].key, "{ctx}: starts on a keyframe");
            let audio = got.iter().filter(|p| p.kind == "audio").count();
            let want_audio = if form == "h265" {
                0
            } else {
                src_packets.iter().filter(|p| p.kind == "audio").count()
            };
            assert_eq!(audio, want_audio, "{ctx}: audio packets");
            // Annex B has no timestamps: its reference is the source TS (the POC gives the
            // B-frames' PTS). Millisecond FLV on either side rounds: 1 ms.
            let (want, tol) = if form == "h265" {
                (
                    src_packets.clone(),
                    if ext == "ts" { 0.0001 } else { 0.0011 },
                )
            } else {
                let fmt = if ext == "ts" { "mpegts" } else { "flv" };
                let tol = if form == "ts" && ext == "ts" {
                    0.0001
                } else {
                    0.0011
                };
                (packets(&reference(&inp, fmt)), tol)
            };
            assert_same_timestamps(&got, &want, "video", tol, &ctx);
            if form != "h265" {
                assert_same_timestamps(&got, &want, "audio", tol, &ctx);
            }
            let keys = |p: &[Packet]| p.iter().filter(|p| p.kind == "video" && p.key).count();
            assert_eq!(keys(&got), keys(&src_packets), "{ctx}: keyframes");
        }
    }
}

/// Debian's ffprobe names the codec and size of river's MPEG-TS (stream type 0x24); ffmpeg 9 those
/// of its Enhanced FLV, and its onMetaData says `hvc1`.
#[test]
fn streams_are_announced_as_hevc() {
    let data = std::fs::read(source_ts()).unwrap();
    let (ts, _) = mux("river-mux-ts", &data, "announce.ts", &[]);
    let s = probe_streams(&ts);
    assert_eq!(s[0].codec, "hevc");
    assert_eq!((s[0].width, s[0].height), (Some(320), Some(240)));
    assert_eq!(s[1].codec, "aac");
    let (f, _) = mux("river-mux-flv", &data, "announce.flv", &[]);
    let out = run(
        &ffmpeg9(),
        &["-hide_banner", "-i", &f.to_string_lossy()],
        b"",
    );
    assert!(
        out.stderr.contains("Video: hevc") && out.stderr.contains("320x240"),
        "{}",
        out.stderr
    );
    // Enhanced onMetaData: videocodecid is the FourCC 'hvc1' as a number.
    let mut r = flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(&std::fs::read(&f).unwrap(), &mut evs);
    let meta = evs
        .iter()
        .find_map(|e| match e {
            flv::FlvEvent::Tag(t) if t.kind == flv::TagKind::Script => {
                flv::parse_script(&t.body).ok()
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        meta.number("videocodecid"),
        Some(f64::from(u32::from_be_bytes(*b"hvc1")))
    );
}

/// The video access units of an FLV (legacy AVC or Enhanced `hvc1`), each as its NAL units.
pub(crate) fn flv_access_units(data: &[u8]) -> Vec<Vec<Bytes>> {
    let mut r = flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(data, &mut evs);
    r.finish(&mut evs);
    let mut aus = Vec::new();
    for e in evs {
        match e {
            flv::FlvEvent::Tag(t) if t.kind == flv::TagKind::Video => {
                let v = flv::VideoTag::parse(&t.body).unwrap();
                if let flv::VideoPacket::Ex {
                    packet_type:
                        flv::ExVideoPacketType::CodedFrames | flv::ExVideoPacketType::CodedFramesX,
                    fourcc,
                    payload,
                    ..
                } = v.packet
                {
                    assert_eq!(fourcc, flv::FourCc::HVC1);
                    let nals = h264::avcc_nals(&payload, 4)
                        .map(|n| payload.slice_ref(n.unwrap()))
                        .collect();
                    aus.push(nals);
                }
            }
            flv::FlvEvent::Warning(d) => panic!("warning reading river's FLV: {d}"),
            _ => {}
        }
    }
    aus
}

fn through(tool: &str, input: &[u8], name: &str) -> Vec<u8> {
    let out = run(&river(tool), &[], input);
    assert!(out.status.success(), "{tool}: {}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{tool}: {}", out.stderr);
    decodes_cleanly(&write_tmp(name, &out.stdout));
    out.stdout
}

/// TS → FLV → TS → FLV: every NAL unit of the Annex B video but AUDs comes through in order, and
/// parameter sets are put back in band exactly before IRAP pictures.
#[test]
fn ts_flv_ts_flv_keeps_nal_payloads() {
    let ts0 = std::fs::read(source_ts()).unwrap();
    let flv1 = through("river-mux-flv", &ts0, "hevc-rt.1.flv");
    let ts2 = through("river-mux-ts", &flv1, "hevc-rt.2.ts");
    let flv3 = through("river-mux-flv", &ts2, "hevc-rt.3.flv");
    let annexb = std::fs::read(input("h265")).unwrap();
    let mut splitter = h264::NalSplitter::new();
    let (mut nals, mut warns) = (Vec::new(), Vec::new());
    splitter.push(&annexb, &mut nals, &mut warns);
    splitter.finish(&mut nals, &mut warns);
    assert!(warns.is_empty(), "{warns:?}");
    let want: Vec<Bytes> = nals
        .into_iter()
        .map(|n| n.data)
        .filter(|n| h265::nal_type(n) != h265::nal_types::AUD)
        .collect();
    let aus1 = flv_access_units(&flv1);
    let aus3 = flv_access_units(&flv3);
    assert_eq!(aus1.len(), 30 * SECS as usize, "one tag per access unit");
    let got1: Vec<Bytes> = aus1.iter().flatten().cloned().collect();
    assert!(
        got1 == want,
        "TS -> FLV changed NAL payloads ({} vs {} NAL units)",
        got1.len(),
        want.len()
    );
    assert!(aus1 == aus3, "FLV -> TS -> FLV changed access units");
    for (i, au) in aus3.iter().enumerate() {
        let irap = au.iter().any(|n| h265::is_irap(h265::nal_type(n)));
        let ps = au.iter().any(|n| h265::nal_type(n) == h265::nal_types::SPS);
        assert_eq!(
            ps, irap,
            "access unit {i}: parameter sets exactly before IRAP pictures"
        );
    }
    // The timestamps survive the round trip (within FLV's millisecond).
    let p0 = probe_packets(&source_ts());
    let p2 = probe_packets(&write_tmp("hevc-rt.2b.ts", &ts2));
    assert_same_timestamps(&p2, &p0, "video", 0.0011, "TS -> FLV -> TS");
    assert_same_timestamps(&p2, &p0, "audio", 0.0011, "TS -> FLV -> TS");
}

/// The byte offset of the second keyframe's PES in river's TS (PAT and PMT come right before it).
fn second_keyframe(ts: &[u8]) -> usize {
    let keys: Vec<usize> = (0..ts.len() / 188)
        .map(|i| i * 188)
        .filter(|&o| {
            let p = &ts[o..];
            u16::from_be_bytes([p[1] & 0x1f, p[2]]) == 0x100
                && p[1] & 0x40 != 0
                && p[3] & 0x20 != 0
                && p[4] > 0
                && p[5] & 0x40 != 0
        })
        .collect();
    assert!(keys.len() >= 3, "keyframes: {keys:?}");
    keys[1] - 376
}

/// A stream joined at a CRA picture (the second keyframe): its 2 RASL pictures reference pictures
/// before the join and are dropped; everything else comes out, starting on the CRA, and decodes.
#[test]
fn cra_started_stream_drops_its_rasl_pictures() {
    let ts0 = std::fs::read(source_ts()).unwrap();
    let (full, _) = mux("river-mux-ts", &ts0, "cra-full.ts", &[]);
    let full = std::fs::read(full).unwrap();
    let tail = &full[second_keyframe(&full)..];
    let all = probe_packets(&write_tmp("cra-tail.ts", tail));
    let tail_video = all.iter().filter(|p| p.kind == "video").count();
    for (tool, ext) in [("river-mux-flv", "flv"), ("river-mux-ts", "ts")] {
        let (out, stderr) = mux(tool, tail, &format!("cra-joined.{ext}"), &[]);
        assert!(
            stderr.contains("dropped 2 RASL pictures"),
            "{tool}: {stderr}"
        );
        decodes_cleanly(&out);
        let p = packets(&out);
        let video: Vec<&Packet> = p.iter().filter(|p| p.kind == "video").collect();
        assert!(video[0].key, "{tool}: starts on the CRA");
        assert_eq!(
            video.len(),
            tail_video - 2,
            "{tool}: all but the 2 RASL pictures"
        );
        // Presentation starts at the CRA: no picture is shown before it.
        let first_pts = video[0].pts;
        assert!(
            video.iter().all(|q| q.pts >= first_pts - 1e-9),
            "{tool}: a picture before the CRA"
        );
    }
    // Raw H.265 cut at the second VPS: the Annex B reader drops them too.
    let annexb = std::fs::read(input("h265")).unwrap();
    let vps: Vec<usize> = memchr::memmem::find_iter(&annexb, b"\x00\x00\x01\x40\x01").collect();
    let cut = &annexb[vps[1]..];
    // Pictures in the cut: VCL NAL units that start a picture (first_slice_segment_in_pic_flag).
    let pictures = cut
        .windows(6)
        .filter(|w| {
            w[..3] == [0, 0, 1] && h265::is_vcl((w[3] >> 1) & 0x3f) && w[4] == 1 && w[5] & 0x80 != 0
        })
        .count();
    let (out, stderr) = mux("river-mux-ts", cut, "cra-joined-annexb.ts", &["-f", "hevc"]);
    assert!(stderr.contains("dropped 2 RASL pictures"), "{stderr}");
    assert_decodes_cleanly(&out);
    let video = probe_packets(&out)
        .into_iter()
        .filter(|p| p.kind == "video")
        .count();
    assert_eq!(video, pictures - 2);
}

/// Annex B detection tells H.265 from H.264 by the NAL headers; `--input-format h264` keeps its
/// meaning (and so reads H.265 as garbage H.264, which fails).
#[test]
fn annexb_detection_and_input_format() {
    let annexb = std::fs::read(input("h265")).unwrap();
    for args in [
        &["-v"][..],
        &["-v", "--input-format", "h265"],
        &["-v", "-f", "hevc"],
    ] {
        let (out, stderr) = mux("river-mux-flv", &annexb, "detect.flv", args);
        assert!(stderr.contains("H.265 Annex B in"), "{args:?}: {stderr}");
        assert_eq!(
            probe_packets9(&out)
                .iter()
                .filter(|p| p.kind == "video")
                .count(),
            30 * SECS as usize,
            "{args:?}"
        );
    }
    let out = run(&river("river-mux-ts"), &["-f", "h264"], &annexb);
    assert!(!out.status.success(), "{}", out.stderr);
}

/// A test input with one stream river does not carry, made by Debian's ffmpeg.
fn unsupported_input(name: &str, args: &[&str]) -> Vec<u8> {
    let path = tmpdir().join(name);
    if !path.exists() {
        let tmp = tmpdir().join(format!("tmp.{name}"));
        let mut full = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=2",
        ];
        full.extend_from_slice(args);
        let t = tmp.to_string_lossy().to_string();
        full.push(&t);
        ffmpeg(&full);
        std::fs::rename(&tmp, &path).unwrap();
    }
    std::fs::read(path).unwrap()
}

/// MPEG-2 video beside AAC in MPEG-TS, and MP3 beside H.264 in FLV: a one-line error naming the
/// codec, the PID or tag and the byte offset, and a non-zero exit; with `--drop-unsupported` the
/// supported track alone, said once.
#[test]
fn unsupported_tracks_fail_by_name_or_are_dropped_on_request() {
    let mpeg2 = unsupported_input(
        "mpeg2-aac.ts",
        &["-c:v", "mpeg2video", "-c:a", "aac", "-f", "mpegts"],
    );
    let mp3 = unsupported_input(
        "h264-mp3.flv",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "libmp3lame",
            "-f",
            "flv",
        ],
    );
    for (tool, input, names, kept) in [
        (
            "river-mux-flv",
            &mpeg2,
            &["MPEG-2 video", "pid 0x100", "byte offset"][..],
            "audio",
        ),
        (
            "river-mux-ts",
            &mpeg2,
            &["MPEG-2 video", "pid 0x100"],
            "audio",
        ),
        (
            "river-mux-ts",
            &mp3,
            &["MP3", "FLV audio tag", "byte offset"],
            "video",
        ),
    ] {
        let out = run(&river(tool), &[], input);
        assert!(!out.status.success(), "{tool}: exit 0 without the track");
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{tool}: {}", out.stderr);
        for n in names {
            assert!(errors[0].contains(n), "{tool}: {n:?} in {}", errors[0]);
        }
        assert!(errors[0].contains("--drop-unsupported"), "{}", errors[0]);

        let out = run(&river(tool), &["--drop-unsupported"], input);
        assert!(out.status.success(), "{tool}: {}", out.stderr);
        let said = out.stderr.matches("--drop-unsupported").count();
        assert_eq!(said, 1, "{tool}: said once: {}", out.stderr);
        let ext = if tool == "river-mux-ts" { "ts" } else { "flv" };
        let p = write_tmp(&format!("dropped.{kept}.{ext}"), &out.stdout);
        assert_decodes_cleanly(&p);
        let kinds: Vec<String> = probe_packets(&p).into_iter().map(|p| p.kind).collect();
        assert!(
            !kinds.is_empty() && kinds.iter().all(|k| k == kept),
            "{tool}"
        );
    }
}

/// river-hls-seg on H.265 (MPEG-TS segments, stream type 0x24) from MPEG-TS and from Enhanced
/// FLV: every segment starts with PAT and PMT and an IRAP picture, Debian's ffprobe reads it as
/// HEVC and ffmpeg decodes it cleanly; the segments together carry every frame at the source's
/// timestamps (video against the source; audio against river's own MPEG-TS of the input, where
/// each AAC frame has its PES and PTS: the source TS packs several to a PES, see llhls.rs).
#[test]
fn hls_seg_cuts_hevc_into_ts_segments_with_the_source_timestamps() {
    use crate::hls::{check_segments, fresh_dir, parse_playlist};
    for form in ["ts", "flv"] {
        let src = input(form);
        let data = std::fs::read(&src).unwrap();
        let dir = fresh_dir(&format!("hevc-hls-{form}"));
        let d = dir.to_string_lossy().to_string();
        let out = run(
            &river("river-hls-seg"),
            &["--dir", &d, "--dvr", "--segment-time", "1"],
            &data,
        );
        assert!(out.status.success(), "{form}: {}", out.stderr);
        let l = parse_playlist(&dir.join("movie.m3u8"));
        assert!(l.ended, "{form}: {}", l.text);
        // 1 s GOPs over 4 s: a segment each.
        assert_eq!(l.segments.len(), SECS as usize, "{form}: {}", l.text);
        check_segments(&dir, &l);
        for (_, uri, _) in &l.segments {
            let streams = probe_streams(&dir.join(uri));
            assert!(
                streams.iter().any(|s| s.codec == "hevc"),
                "{form} {uri}: {streams:?}"
            );
        }
        let playlist = dir.join("movie.m3u8");
        assert_decodes_cleanly(&playlist);
        let got = probe_packets(&playlist);
        let want = packets(&src);
        let frames = want.iter().filter(|p| p.kind == "video").count();
        assert_eq!(frames, SECS as usize * 30, "{form}: source frames");
        assert_same_timestamps(&got, &want, "video", 1e-6, &format!("{form} video"));
        let ts = run(&river("river-mux-ts"), &[], &data);
        assert!(ts.status.success(), "{}", ts.stderr);
        let ts = write_tmp(&format!("hevc-hls-{form}-river.ts"), &ts.stdout);
        let want = probe_packets(&ts);
        let tol = 1.0 / 44_100.0 + 1e-6;
        assert_same_timestamps(&got, &want, "audio", tol, &format!("{form} audio"));
    }
}
