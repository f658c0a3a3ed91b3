//! river-thumb on H.265 (libde265) against real ffmpeg: the PNG of the first keyframe matches
//! ffmpeg's decode (PSNR ≥ 40 dB) from MPEG-TS, Annex B and Enhanced FLV (ffmpeg 9), at 720p and
//! at a cropped 160x120, and from a stream that starts on a CRA picture. The H.264 counterparts are
//! in thumb.rs.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::common::*;
use crate::thumb::{dims, psnr, rgb24, thumb};

/// x265 with B-frames and a 1 s open GOP (an IDR, then CRA pictures with RASL pictures), AAC.
#[derive(Clone, Copy)]
struct HevcClip {
    width: u32,
    height: u32,
}

impl HevcClip {
    fn name(&self) -> String {
        format!("thumb-hevc-{}x{}-bf2-opengop1s-2s", self.width, self.height)
    }

    /// The source: MPEG-TS from Debian's ffmpeg (lavfi, libx265, AAC).
    fn ts(&self) -> PathBuf {
        static LOCK: Mutex<()> = Mutex::new(());
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = tmpdir().join(format!("{}.ts", self.name()));
        if !path.exists() {
            let tmp = tmpdir().join(format!("{}.tmp.ts", self.name()));
            let video = format!(
                "testsrc2=size={}x{}:rate=30:duration=2",
                self.width, self.height
            );
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                &video,
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100:duration=2",
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
                "-f",
                "mpegts",
                &tmp.to_string_lossy(),
            ]);
            std::fs::rename(&tmp, &path).unwrap();
        }
        path
    }

    /// The source as `flv` (Enhanced FLV, by ffmpeg 9) or `h265` (Annex B, video only).
    fn input(&self, form: &str) -> PathBuf {
        static LOCK: Mutex<()> = Mutex::new(());
        let src = self.ts();
        if form == "ts" {
            return src;
        }
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let path = tmpdir().join(format!("{}.{form}", self.name()));
        if !path.exists() {
            let tmp = tmpdir().join(format!("{}.tmp.{form}", self.name()));
            let (s, t) = (src.to_string_lossy(), tmp.to_string_lossy());
            match form {
                "flv" => ffmpeg9_run(&["-i", &s, "-c", "copy", "-f", "flv", &t]),
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
}

/// `(offset, nal_unit_type)` of every NAL unit of an Annex B stream (at its start code).
fn nal_units(data: &[u8]) -> Vec<(usize, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 < data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            let at = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            out.push((at, (data[i + 3] >> 1) & 0x3f));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn hevc_png_matches_ffmpeg_on_every_input_format() {
    for clip in [
        HevcClip {
            width: 1280,
            height: 720,
        },
        // 120 lines are cropped from 128 coded ones (the SPS conformance window).
        HevcClip {
            width: 160,
            height: 120,
        },
    ] {
        let want = rgb24(&clip.ts(), None);
        for form in ["ts", "h265", "flv"] {
            let ctx = format!("{} {form}", clip.name());
            let data = std::fs::read(clip.input(form)).unwrap();
            let out = thumb(&["--format", "png"], &data);
            assert!(out.status.success(), "{ctx}: {}", out.stderr);
            assert!(
                out.stderr.is_empty(),
                "{ctx}: unexpected output: {}",
                out.stderr
            );
            assert_eq!(&out.stdout[..8], b"\x89PNG\r\n\x1a\n", "{ctx}");
            let png = write_tmp(&format!("{}.{form}.png", clip.name()), &out.stdout);
            assert_eq!(dims(&png), (clip.width as u64, clip.height as u64), "{ctx}");
            let db = psnr(&rgb24(&png, None), &want);
            assert!(
                db >= 40.0,
                "{ctx}: PSNR {db:.2} dB against ffmpeg -frames:v 1"
            );
        }
    }
}

#[test]
fn hevc_stream_starting_on_a_cra_picture() {
    let clip = HevcClip {
        width: 320,
        height: 240,
    };
    let data = std::fs::read(clip.input("h265")).unwrap();
    let nals = nal_units(&data);
    // The first CRA picture, with the non-VCL NAL units that open its access unit.
    let cra = nals
        .iter()
        .position(|&(_, t)| t == 21)
        .expect("a CRA picture");
    assert!(
        nals[cra + 1..]
            .iter()
            .take_while(|&&(_, t)| !(16..=23).contains(&t))
            .any(|&(_, t)| t == 8 || t == 9),
        "x265's open GOP: RASL pictures follow the CRA"
    );
    let mut first = cra;
    while first > 0 && matches!(nals[first - 1].1, 32..=35 | 39) {
        first -= 1;
    }
    let mut cut = Vec::new();
    if !nals[first..cra].iter().any(|&(_, t)| t == 32) {
        // No parameter sets in band before the CRA: the stream's first ones, as a camera that
        // repeats them would send.
        for (i, &(at, t)) in nals.iter().enumerate().take_while(|(_, &(_, t))| t >= 32) {
            if matches!(t, 32..=34) {
                let end = nals.get(i + 1).map_or(data.len(), |n| n.0);
                cut.extend_from_slice(&data[at..end]);
            }
        }
    }
    cut.extend_from_slice(&data[nals[first].0..]);
    let path = write_tmp(&format!("{}.cra-start.h265", clip.name()), &cut);
    let out = thumb(&["--format", "png"], &cut);
    assert!(out.status.success(), "{}", out.stderr);
    let png = write_tmp(&format!("{}.cra-start.png", clip.name()), &out.stdout);
    assert_eq!(dims(&png), (320, 240));
    // ffmpeg starts on the same CRA picture (its RASL pictures are not output).
    let want = rgb24(&path, None);
    let db = psnr(&rgb24(&png, None), &want);
    assert!(
        db >= 40.0,
        "PSNR {db:.2} dB against ffmpeg's first picture of the cut"
    );
    // And it is not the IDR's picture: the cut really starts later.
    let idr = rgb24(&clip.input("h265"), None);
    assert!(
        psnr(&idr, &want) < 40.0,
        "the CRA's picture differs from the IDR's"
    );
}
