//! river-relay's pure modules against real media from ffmpeg: keyframe marks match ffprobe's
//! keyframes, a late joiner's bytes (GOP cache) and a slow watcher's bytes (queue skips) decode
//! cleanly, and the converted views decode with every frame. No network, no binaries.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::*;
use river::media::StreamFormat;
use river::relay::cache::{CacheLimits, GopCache};
use river::relay::convert::{Convert, ViewFormat};
use river::relay::queue::{QueueLimits, Verdict, WatcherQueue};
use river::relay::stream::{Chunk, Mark, Splitter};

/// 2 s GOPs with B-frames and audio, 6 s.
const CLIP: Clip = Clip {
    width: 320,
    height: 240,
    fps: 25,
    bframes: 2,
    audio: true,
    gop_secs: 2,
    secs: 6,
};

fn inputs() -> Vec<(PathBuf, StreamFormat)> {
    vec![
        (CLIP.flv(), StreamFormat::Flv),
        (CLIP.remux("mpegts"), StreamFormat::Ts),
        (CLIP.remux("h264"), StreamFormat::AnnexB),
    ]
}

fn split(data: &[u8], cut: usize) -> (Vec<Chunk>, StreamFormat) {
    let mut s = Splitter::new();
    let mut out = Vec::new();
    for piece in data.chunks(cut) {
        s.push(piece, &mut out);
    }
    s.finish(&mut out);
    (out, s.format().unwrap())
}

fn ext(f: StreamFormat) -> &'static str {
    match f {
        StreamFormat::Flv => "flv",
        StreamFormat::Ts => "ts",
        _ => "h264",
    }
}

#[test]
fn keyframe_marks_match_ffprobe_keyframes() {
    for (path, fmt) in inputs() {
        let data = std::fs::read(&path).unwrap();
        let want = probe_packets(&path)
            .iter()
            .filter(|p| p.kind == "video" && p.key)
            .count();
        assert_eq!(want, 3, "{}", path.display());
        for cut in [1000, 4096, 65536, 1 << 24] {
            let (chunks, got_fmt) = split(&data, cut);
            assert_eq!(got_fmt, fmt);
            let keys = chunks.iter().filter(|c| c.mark == Mark::Keyframe).count();
            assert_eq!(keys, want, "{} cut {cut}", path.display());
            let cat: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
            assert!(cat == data, "{}: bytes changed", path.display());
        }
    }
}

#[test]
fn late_joiner_gets_a_decodable_stream() {
    for (path, fmt) in inputs() {
        let data = std::fs::read(&path).unwrap();
        let (chunks, _) = split(&data, 1316);
        let t = Instant::now();
        let mut cache = GopCache::new(CacheLimits::default(), true);
        // Join 1 s into the second GOP (chunks carry no time; stop by bytes: ~45 %).
        let mut at = 0;
        let mut i = 0;
        while at < data.len() * 45 / 100 {
            cache.push(&chunks[i], t);
            at += chunks[i].data.len();
            i += 1;
        }
        let join = cache.join();
        assert!(join.starts_on_keyframe, "{}", path.display());
        let mut q = WatcherQueue::new(QueueLimits::default(), fmt, join, t);
        for c in &chunks[i..] {
            assert_eq!(q.push(c, t), Verdict::Ok);
        }
        let mut got = Vec::new();
        while let Some(f) = q.front() {
            let n = f.len();
            got.extend_from_slice(f);
            q.consume(n, Instant::now());
        }
        let out = write_tmp(&format!("relay-core-join.{}", ext(fmt)), &got);
        assert_decodes_cleanly(&out);
        let pk = probe_packets(&out);
        let first_video = pk.iter().find(|p| p.kind == "video").unwrap();
        assert!(
            first_video.key,
            "{}: starts on a non-keyframe",
            path.display()
        );
        let keys = pk.iter().filter(|p| p.kind == "video" && p.key).count();
        assert_eq!(keys, 2, "{}: joined in GOP 2 of 3", path.display());
        assert!(got.len() < data.len() * 3 / 4);
    }
}

#[test]
fn slow_watcher_skips_whole_gops_and_stays_decodable() {
    for (path, fmt) in inputs() {
        let data = std::fs::read(&path).unwrap();
        let (chunks, _) = split(&data, 1316);
        let t0 = Instant::now();
        let limits = QueueLimits {
            max_bytes: data.len() / 8,
            max_age: Duration::from_secs(60),
            max_behind: Duration::from_secs(3600),
        };
        let mut cache = GopCache::new(CacheLimits::default(), true);
        let mut q = None;
        let mut got = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            cache.push(c, t0);
            let q = q.get_or_insert_with(|| WatcherQueue::new(limits, fmt, cache.join(), t0));
            if i > 0 {
                assert_eq!(q.push(c, t0), Verdict::Ok);
            }
            // Writes 300 bytes per chunk: far slower than the stream.
            let mut budget = 300;
            while budget > 0 {
                let Some(f) = q.front() else { break };
                let n = f.len().min(budget);
                got.extend_from_slice(&f[..n]);
                q.consume(n, t0);
                budget -= n;
            }
        }
        let q = q.unwrap();
        assert!(q.stats().skips >= 1, "{}: {:?}", path.display(), q.stats());
        assert!(q.stats().bytes_dropped > 0);
        let out = write_tmp(&format!("relay-core-slow.{}", ext(fmt)), &got);
        assert_decodes_cleanly(&out);
        let pk = probe_packets(&out);
        assert!(pk.iter().find(|p| p.kind == "video").unwrap().key);
    }
}

#[test]
fn converted_views_decode_with_every_frame() {
    let src = CLIP.flv();
    let want = probe_packets(&src);
    let count = |pk: &[Packet], kind: &str| pk.iter().filter(|p| p.kind == kind).count();
    for (path, fmt, to, e) in [
        (CLIP.flv(), StreamFormat::Flv, ViewFormat::Ts, "ts"),
        (
            CLIP.remux("mpegts"),
            StreamFormat::Ts,
            ViewFormat::Flv,
            "flv",
        ),
        (
            CLIP.remux("h264"),
            StreamFormat::AnnexB,
            ViewFormat::Flv,
            "flv",
        ),
        (
            CLIP.remux("h264"),
            StreamFormat::AnnexB,
            ViewFormat::Ts,
            "ts",
        ),
    ] {
        let data = std::fs::read(&path).unwrap();
        let mut c = Convert::new(fmt, to).unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(3000) {
            c.push(piece, &mut out).unwrap();
        }
        c.finish(&mut out);
        let file = write_tmp(&format!("relay-core-view-{}.{e}", ext(fmt)), &out);
        assert_decodes_cleanly(&file);
        let got = probe_packets(&file);
        assert_eq!(
            count(&got, "video"),
            count(&want, "video"),
            "{}",
            file.display()
        );
        if fmt != StreamFormat::AnnexB {
            assert_eq!(
                count(&got, "audio"),
                count(&want, "audio"),
                "{}",
                file.display()
            );
        }
        // The view is itself a known format the hub can split and cache.
        let (chunks, vf) = split(&out, 4096);
        assert_eq!(
            vf,
            if e == "ts" {
                StreamFormat::Ts
            } else {
                StreamFormat::Flv
            }
        );
        assert_eq!(
            chunks.iter().filter(|c| c.mark == Mark::Keyframe).count(),
            3
        );
    }
}

/// Splitter throughput, for the report, next to the anchor every hub pays anyway: copying the same
/// bytes in the same 64 KiB pieces into a buffer.
/// `cargo test --release --test relay_core -- --ignored --nocapture splitter_throughput`
#[test]
#[ignore]
fn splitter_throughput() {
    let big = Clip {
        width: 1280,
        height: 720,
        fps: 30,
        bframes: 3,
        audio: true,
        gop_secs: 2,
        secs: 10,
    };
    fn rate(data: &[u8], mut f: impl FnMut(&[u8])) -> f64 {
        let t = Instant::now();
        let mut total = 0usize;
        while t.elapsed() < Duration::from_millis(300) {
            f(data);
            total += data.len();
        }
        total as f64 / t.elapsed().as_secs_f64() / 1e6
    }
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }
    for (path, name) in [
        (big.flv(), "flv"),
        (big.remux("mpegts"), "ts"),
        (big.remux("h264"), "h264"),
    ] {
        let data = std::fs::read(&path).unwrap();
        let (mut split_rates, mut copy_rates) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        let mut sink: Vec<u8> = Vec::with_capacity(1 << 20);
        for _ in 0..7 {
            split_rates.push(rate(&data, |d| {
                let mut s = Splitter::new();
                for piece in d.chunks(64 * 1024) {
                    s.push(piece, &mut out);
                    out.clear();
                }
                s.finish(&mut out);
                out.clear();
            }));
            copy_rates.push(rate(&data, |d| {
                for piece in d.chunks(64 * 1024) {
                    sink.clear();
                    sink.extend_from_slice(piece);
                    std::hint::black_box(&sink);
                }
            }));
        }
        let (s, c) = (median(split_rates), median(copy_rates));
        println!(
            "splitter {name}: {} bytes in 64 KiB pushes: median {s:.0} MB/s; anchor copy {c:.0} MB/s; ratio {:.2}",
            data.len(),
            s / c
        );
    }
}
